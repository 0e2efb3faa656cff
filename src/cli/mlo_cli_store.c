/*
 * mlo_cli_store.c - the local store, folded into runs (the run model of
 * mlo_cli.h), and finding a run by what a user types.
 *
 * The store (issue 4): a directory, from the STORE argument, else
 * $MLO_STORE_DIR, else ./mlo-store.  Read here:
 *   <store>/summaries/RUN.sum  per-run summaries of what retention removed
 *                           (src/store/mlo_retention.c; the segment format),
 *                           read first: they hold the oldest state;
 *   <store>/segments/NAME.seg  run-log segments (format: top of mlo_log.c), all
 *                           of them, in name order;
 *   <store>/runs.map        optional, lines "<local_id> <server_run_id>"
 *                           written by sync (src/mlo_store.c);
 *   <store>/artifacts/<id>.art and .failed: manifests of artifacts not uploaded
 *                           yet (src/mlo_artifact.c).
 * A run's state is the fold of its events in that order: START_RUN gives
 * experiment, name, parent, start time and tags; PARAM and TAG set (the last
 * value wins); METRIC adds a point; END_RUN gives status and end time (a run
 * without it is RUNNING); a summary's METRIC_SUMMARY adds its removed points
 * (count, min, max, latest: not their history).  A metric's "latest" value
 * is MLflow's: the point with the greatest (step, timestamp, value).  Damaged segments are reported
 * on stderr and read past (mlo__logr_skip_damage); they never stop a command.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"
#include "mlo_log.h"
#include "mlo_queue.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_store_dir(const char *arg) {
    if (arg)
        return arg;
    const char *e = getenv("MLO_STORE_DIR");
    return e && *e ? e : CLI_DEFAULT_STORE;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

void cli_kvs_set(kvs *s, const char *k, const char *v) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->a[i].k, k) == 0) {
            cli_set_str(&s->a[i].v, v);
            return;
        }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->a = xrealloc(s->a, s->cap * sizeof *s->a);
    }
    s->a[s->n].k = xstrdup(k);
    s->a[s->n].v = xstrdup(v);
    s->n++;
}

const char *cli_kvs_get(const kvs *s, const char *k) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->a[i].k, k) == 0)
            return s->a[i].v;
    return NULL;
}

run *cli_store_find(const store *s, const char *id) {
    if (!s->tabcap)
        return NULL;
    for (size_t i = hash_str(id) & (s->tabcap - 1);; i = (i + 1) & (s->tabcap - 1)) {
        if (!s->tab[i])
            return NULL;
        if (strcmp(s->tab[i]->id, id) == 0)
            return s->tab[i];
    }
}

static void tab_put(run **tab, size_t cap, run *r) {
    size_t i = hash_str(r->id) & (cap - 1);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = r;
}

run *cli_store_run(store *s, const char *id) {
    run *r = cli_store_find(s, id);
    if (r)
        return r;
    if ((s->n + 1) * 2 > s->tabcap) {
        size_t cap = s->tabcap ? s->tabcap * 2 : 64;
        run **t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < s->n; i++)
            tab_put(t, cap, s->runs[i]);
        xfree(s->tab);
        s->tab = t;
        s->tabcap = cap;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->runs = xrealloc(s->runs, s->cap * sizeof *s->runs);
    }
    r = xcalloc(1, sizeof *r);
    r->id = xstrdup(id);
    r->keep_hist = s->hist_prefix && strncmp(id, s->hist_prefix, strlen(s->hist_prefix)) == 0;
    s->runs[s->n++] = r;
    tab_put(s->tab, s->tabcap, r);
    return r;
}

metric *cli_run_metric(run *r, const char *key, bool create) {
    if (r->last_m < r->nm && strcmp(r->m[r->last_m].key, key) == 0)
        return &r->m[r->last_m];
    /* metrics logged in the same order every step: the next one */
    size_t next = r->last_m + 1 < r->nm ? r->last_m + 1 : 0;
    if (next < r->nm && strcmp(r->m[next].key, key) == 0) {
        r->last_m = next;
        return &r->m[next];
    }
    for (size_t i = 0; i < r->nm; i++)
        if (strcmp(r->m[i].key, key) == 0) {
            r->last_m = i;
            return &r->m[i];
        }
    if (!create)
        return NULL;
    if (r->nm == r->capm) {
        r->capm = r->capm ? r->capm * 2 : 8;
        r->m = xrealloc(r->m, r->capm * sizeof *r->m);
    }
    metric *m = &r->m[r->nm];
    memset(m, 0, sizeof *m);
    m->key = xstrdup(key);
    r->last_m = r->nm++;
    return m;
}

/* MLflow's order for "latest": step, then timestamp, then value. */
static bool point_later(const point *a, const point *b) {
    if (a->step != b->step)
        return a->step > b->step;
    if (a->ts != b->ts)
        return a->ts > b->ts;
    return a->v > b->v;
}

void cli_run_point(run *r, const char *key, point p) {
    metric *m = cli_run_metric(r, key, true);
    if (m->count++ == 0 || point_later(&p, &m->last))
        m->last = p;
    if (r->keep_hist) {
        if (m->nh == m->caph) {
            m->caph = m->caph ? m->caph * 2 : 64;
            m->hist = xgrow(m->hist, m->nh * sizeof *m->hist, m->caph * sizeof *m->hist);
        }
        m->hist[m->nh++] = p;
    }
}

/* A summary of points removed from the store (retention): counted, their
 * latest competes for the metric's, their range kept apart from the
 * history's (metric.rmin/rmax, valid while removed > 0). */
static void run_removed(run *r, const mlo_log_event *e) {
    metric *m = cli_run_metric(r, e->key, true);
    point p = {e->step, e->timestamp, e->value_num};
    if (m->removed == 0) {
        m->rmin = INFINITY;
        m->rmax = -INFINITY;
    }
    if (e->count && (m->count == 0 || point_later(&p, &m->last)))
        m->last = p;
    m->count += e->count;
    m->removed += e->count;
    if (e->min <= e->max) {
        m->rmin = e->min < m->rmin ? e->min : m->rmin;
        m->rmax = e->max > m->rmax ? e->max : m->rmax;
    }
}

bool cli_latest(const run *r, const char *key, double *v) {
    metric *m = cli_run_metric((run *)r, key, false);
    if (!m)
        return false;
    *v = m->last.v;
    return true;
}

static void run_dataset(run *r, const mlo_log_event *e) {
    if (!e->key || !e->digest)
        return;
    for (size_t i = 0; i < r->nds; i++)
        if (strcmp(r->ds[i].name, e->key) == 0 && strcmp(r->ds[i].digest, e->digest) == 0)
            return;
    if (r->nds == r->capds) {
        r->capds = r->capds ? r->capds * 2 : 4;
        r->ds = xrealloc(r->ds, r->capds * sizeof *r->ds);
    }
    dataset *d = &r->ds[r->nds++];
    d->name = xstrdup(e->key);
    d->digest = xstrdup(e->digest);
    d->source_type = xstrdup(e->source_type ? e->source_type : "");
    d->source = xstrdup(e->value ? e->value : "");
    d->context = xstrdup(e->context ? e->context : "");
}

static void apply(store *s, const mlo_log_event *e) {
    /* events come in runs of the same run: the last one found first */
    run *r = s->last && strcmp(s->last->id, e->run_id) == 0 ? s->last : cli_store_run(s, e->run_id);
    s->last = r;
    switch (e->type) {
    case MLO_EV_START_RUN:
        if (e->key)
            cli_set_str(&r->exp_name, e->key);
        if (e->value && *e->value)
            cli_set_str(&r->name, e->value);
        if (e->experiment_id)
            cli_set_str(&r->exp_id, e->experiment_id);
        if (e->parent_run_id)
            cli_set_str(&r->parent, e->parent_run_id);
        r->start = e->timestamp;
        r->started = true;
        for (size_t i = 0; i < e->ntags; i++)
            cli_kvs_set(&r->tags, e->tag_keys[i], e->tag_values[i]);
        break;
    case MLO_REC_PARAM:
        if (e->key)
            cli_kvs_set(&r->params, e->key, e->value ? e->value : "");
        break;
    case MLO_REC_TAG:
        if (e->key)
            cli_kvs_set(&r->tags, e->key, e->value ? e->value : "");
        break;
    case MLO_REC_METRIC:
        if (e->key)
            cli_run_point(r, e->key, (point){e->step, e->timestamp, e->value_num});
        break;
    case MLO_REC_END_RUN:
        r->status = (int)e->value_num;
        r->end = e->timestamp;
        r->ended = true;
        break;
    case MLO_REC_DATASET:
        run_dataset(r, e);
        break;
    case MLO_EV_METRIC_SUMMARY:
        if (e->key)
            run_removed(r, e);
        break;
    default:
        break; /* FLUSH, or a type of a newer mlo: nothing a reader shows */
    }
}

int cli_by_strcmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void read_map(store *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/runs.map", s->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char local[256], remote[256];
        if (sscanf(line, "%255s %255s", local, remote) == 2) {
            run *r = cli_store_find(s, local);
            if (r)
                cli_set_str(&r->server_id, remote);
        }
    }
    fclose(f);
}

/* Folds every file of <dir>/<sub> ending in suffix, in name order.  0, or
 * -1 with a message when the directory exists and cannot be read. */
static int read_dir(store *s, const char *dir, const char *sub, const char *suffix) {
    char segdir[4096];
    snprintf(segdir, sizeof segdir, "%s/%s", dir, sub);
    DIR *d = opendir(segdir);
    if (!d) {
        if (errno != ENOENT) {
            fprintf(stderr, "mlo: %s: %s\n", segdir, strerror(errno));
            return -1;
        }
        return 0; /* nothing recorded (or removed) yet */
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    size_t sl = strlen(suffix);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l <= sl || strcmp(de->d_name + l - sl, suffix) != 0 || de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cli_by_strcmp);
    bool summaries = strcmp(sub, "summaries") == 0;
    for (size_t i = 0; i < n; i++) {
        char path[8192], err[512];
        snprintf(path, sizeof path, "%s/%s", segdir, names[i]);
        mlo_logr *r = mlo__logr_open(path, err, sizeof err);
        if (!r) {
            /* removed by retention since the listing: nothing to say */
            if (access(path, F_OK) == 0) {
                if (!s->quiet)
                    fprintf(stderr, "mlo: warning: skipping %s\n", err);
                s->damaged++;
            }
            xfree(names[i]);
            continue;
        }
        if (summaries)
            s->summaries++;
        else
            s->segments++;
        mlo_log_event e;
        int rc;
        while ((rc = mlo__logr_next(r, &e, err, sizeof err)) != 0) {
            if (rc == 1) {
                apply(s, &e);
                s->events++;
                continue;
            }
            if (rc == -2)
                cli_oom();
            s->damaged++;
            int found = mlo__logr_skip_damage(r);
            if (!s->quiet)
                fprintf(stderr, "mlo: warning: %s: %s; %s\n", path, err,
                        found ? "reading on from the next intact block"
                              : "nothing intact after it");
            if (!found)
                break;
        }
        mlo__logr_close(r);
        xfree(names[i]);
    }
    xfree(names);
    return 0;
}

void cli_store_init(store *s) {
    memset(s, 0, sizeof *s);
}

int cli_store_load(store *s, const char *dir, const char *hist_prefix, bool quiet) {
    cli_store_init(s);
    s->quiet = quiet;
    s->dir = dir;
    s->hist_prefix = hist_prefix;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "mlo: no store at %s (give STORE, or set MLO_STORE_DIR; runs are recorded "
                "there when no tracking URI is set)\n",
                dir);
        return -1;
    }
    if (read_dir(s, dir, "summaries", ".sum") != 0 || read_dir(s, dir, "segments", ".seg") != 0)
        return -1;
    read_map(s);
    return 0;
}

const char *cli_run_name(const run *r) {
    if (r->name)
        return r->name;
    const char *t = cli_kvs_get(&r->tags, "mlflow.runName");
    return t ? t : "-";
}

const char *cli_run_experiment(const run *r, char *buf, size_t n) {
    if (r->exp_name)
        return r->exp_name;
    if (r->exp_id) {
        snprintf(buf, n, "id %s", r->exp_id);
        return buf;
    }
    return r->started ? "Default" : "-";
}

static bool resolve_match(const run *x, int pass, const char *arg, size_t alen) {
    return pass == 0   ? strncmp(x->id, arg, alen) == 0
           : pass == 1 ? x->server_id && strncmp(x->server_id, arg, alen) == 0
                       : strcmp(cli_run_name(x), arg) == 0;
}

run *cli_resolve(const store *s, const char *arg) {
    run *r = cli_store_find(s, arg);
    if (r)
        return r;
    size_t alen = strlen(arg);
    for (int pass = 0; pass < 3; pass++) {
        run *hit = NULL;
        size_t hits = 0;
        for (size_t i = 0; i < s->n; i++)
            if (resolve_match(s->runs[i], pass, arg, alen)) {
                hits++;
                hit = s->runs[i];
            }
        if (hits == 1)
            return hit;
        if (hits > 1) {
            fprintf(stderr, "mlo: '%s' matches %zu runs:", arg, hits);
            for (size_t i = 0, k = 0; i < s->n && k < 10; i++)
                if (resolve_match(s->runs[i], pass, arg, alen)) {
                    fprintf(stderr, " %s", s->runs[i]->id);
                    k++;
                }
            fprintf(stderr, "; give more of the id\n");
            return NULL;
        }
    }
    fprintf(stderr, "mlo: no run '%s' in %s\n", arg, s->dir ? s->dir : s->uri ? s->uri : "?");
    return NULL;
}

static int point_cmp(const void *pa, const void *pb) {
    const point *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return 0;
}

size_t cli_history_normalize(point *p, size_t n) {
    if (n == 0)
        return 0;
    bool sorted = true; /* the usual case: logged in step order */
    for (size_t i = 1; i < n && sorted; i++)
        sorted = point_cmp(&p[i - 1], &p[i]) <= 0;
    if (!sorted)
        qsort(p, n, sizeof *p, point_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (memcmp(&p[i], &p[k - 1], sizeof *p) != 0)
            p[k++] = p[i];
    return k;
}

/* ---- artifacts not uploaded yet ----
 * The manifests <store>/artifacts/<id>.art (pending upload) and .failed
 * (refused for good), text lines "key value" with path, uri and error
 * percent-encoded (src/mlo_artifact.c). */

static void pct_decode(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        unsigned v;
        if (*r == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
            sscanf(r + 1, "%2x", &v) == 1) {
            *w++ = (char)v;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static int art_cmp(const void *a, const void *b) {
    const artifact *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : x->state - y->state;
}

void cli_store_artifacts(const char *dir, run *r) {
    r->art_known = true;
    char path[4096];
    snprintf(path, sizeof path, "%s/artifacts", dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        bool failed = l > 7 && !strcmp(e->d_name + l - 7, ".failed");
        if (!failed && !(l > 4 && !strcmp(e->d_name + l - 4, ".art")))
            continue;
        snprintf(path, sizeof path, "%s/artifacts/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char line[8192], rid[64] = "", apath[4096] = "?", uri[2048] = "-", err[2048] = "";
        long long size = -1;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            char *v = strchr(line, ' ');
            if (!v)
                continue;
            *v++ = 0;
            if (!strcmp(line, "run"))
                snprintf(rid, sizeof rid, "%s", v);
            else if (!strcmp(line, "path"))
                snprintf(apath, sizeof apath, "%s", v);
            else if (!strcmp(line, "size"))
                size = atoll(v);
            else if (!strcmp(line, "uri"))
                snprintf(uri, sizeof uri, "%s", v);
            else if (!strcmp(line, "error"))
                snprintf(err, sizeof err, "%s", v);
        }
        fclose(f);
        if (strcmp(rid, r->id) != 0)
            continue;
        pct_decode(apath);
        pct_decode(uri);
        pct_decode(err);
        if (r->nart == cap) {
            cap = cap ? cap * 2 : 8;
            r->art = xrealloc(r->art, cap * sizeof *r->art);
        }
        artifact *a = &r->art[r->nart++];
        a->path = xstrdup(apath);
        a->size = size;
        a->state = failed ? ART_FAILED : ART_PENDING;
        a->detail = xstrdup(failed ? err : strcmp(uri, "-") == 0 ? "" : uri);
    }
    closedir(d);
    if (r->nart > 1)
        qsort(r->art, r->nart, sizeof *r->art, art_cmp);
}
