/*
 * mlo_cli.c - the `mlo` command-line tool: ls, show, sync, gate.
 *
 * Not part of the library: a program linked with it (the whole static
 * archive, see src/meson.build) that reads the local store's segments with
 * the run-log reader (mlo_log.h) and, for `gate --uri`, asks a tracking
 * server with libcurl + jansson directly.
 *
 * The store (issue 4): a directory, from the STORE argument, else
 * $MLO_STORE_DIR, else ./mlo-store.  Read here:
 *   <store>/segments/NAME.seg  run-log segments (format: top of mlo_log.c), all
 *                           of them, in name order;
 *   <store>/runs.map        optional, lines "<local_id> <server_run_id>"
 *                           written by sync (src/mlo_store.c);
 *   <store>/artifacts/<id>.art and .failed: manifests of artifacts not uploaded
 *                           yet (`show` lists a run's; src/mlo_artifact.c).
 * A run's state is the fold of its events in that order: START_RUN gives
 * experiment, name, parent, start time and tags; PARAM and TAG set (the last
 * value wins); METRIC adds a point; END_RUN gives status and end time (a run
 * without it is RUNNING).  A metric's "latest" value is MLflow's: the point
 * with the greatest (step, timestamp, value).  Damaged segments are reported
 * on stderr and read past (mlo__logr_skip_damage); they never stop a command.
 *
 * Exit codes (all commands): 0 success (gate: every condition holds),
 * 1 gate: a condition fails, 2 usage error or the command could not do its
 * job (no store, unknown run, server or sync failure).
 *
 * Threads: one.  Memory: everything is freed at exit by the OS, except what
 * the loops would accumulate (the store is loaded once per command).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo.h"
#include "mlo_buf.h"
#include "mlo_log.h"
#include "mlo_queue.h"
#include "mlo_sync.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_PASS = 0, EXIT_GATE_FAIL = 1, EXIT_ERROR = 2 };

static bool g_curl_started;

#define DEFAULT_STORE "./mlo-store"
#define MAX_METRIC_COLUMNS 8

/* ------------------------------------------------------------------ */
/* usage texts                                                          */

static const char *EXIT_TEXT = "Exit status: 0 success (gate: all conditions hold), 1 gate: a "
                               "condition fails,\n"
                               "2 usage error or failure (no store, unknown run, server or sync "
                               "error).\n";

static const char *STORE_TEXT =
    "STORE is the local store directory: the argument, else $MLO_STORE_DIR, else ./mlo-store.\n";

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: mlo <command> [options]\n"
            "\n"
            "Commands:\n"
            "  ls [STORE]                   list local runs with their latest metrics\n"
            "  show RUN [STORE]             a run's params, tags and metric histories\n"
            "  sync [STORE] [--to URI]      upload local runs to an MLflow tracking server\n"
            "  gate RUN [STORE|--uri URI] CONDITION...\n"
            "                               check a run's metrics against thresholds\n"
            "  help [COMMAND]               this text, or a command's\n"
            "\n"
            "Every command takes --help.  mlo --version prints the version.\n"
            "%s%s",
            STORE_TEXT, EXIT_TEXT);
}

static void usage_ls(FILE *f) {
    fprintf(f,
            "usage: mlo ls [STORE] [--sort METRIC [--asc]] [--metrics K1,K2,...]\n"
            "              [--experiment NAME] [--long]\n"
            "\n"
            "Lists the runs of the local store: id, experiment, name, status, start time\n"
            "and the latest value of each metric (at most %d metric columns unless\n"
            "--metrics names them).\n"
            "\n"
            "  --sort METRIC      best first by METRIC: highest first, lowest first with\n"
            "                     --asc; runs without it last.  Default: newest first.\n"
            "  --asc              with --sort: lower is better (loss, latency)\n"
            "  --metrics LIST     the metric columns to show, comma-separated\n"
            "  --experiment NAME  only runs of this experiment (name or id)\n"
            "  --long             full run ids (default: the first 12 characters, which\n"
            "                     show and gate accept as a prefix)\n"
            "%s%s",
            MAX_METRIC_COLUMNS, STORE_TEXT, EXIT_TEXT);
}

static void usage_show(FILE *f) {
    fprintf(f,
            "usage: mlo show RUN [STORE] [--history] [--metric KEY] [--ascii]\n"
            "\n"
            "Prints a run's status, times, params, tags, the datasets it used (name,\n"
            "digest, source), its artifacts not uploaded yet and, for each metric, its\n"
            "latest value, range and a sparkline of its history (by step).\n"
            "RUN is a run id, a unique prefix of one, a server run id (after sync) or a\n"
            "unique run name.\n"
            "\n"
            "  --history     also every point: step, time, value\n"
            "  --metric KEY  only this metric (may be repeated)\n"
            "  --ascii       ASCII chart characters (default: Unicode blocks when the\n"
            "                locale is UTF-8)\n"
            "%s%s",
            STORE_TEXT, EXIT_TEXT);
}

static void usage_sync(FILE *f) {
    fprintf(f,
            "usage: mlo sync [STORE] [--to URI]\n"
            "\n"
            "Uploads the store's runs and every event the server has not acknowledged\n"
            "to the tracking server URI (default: $MLFLOW_TRACKING_URI).  Resumable and\n"
            "idempotent: running it again creates nothing twice.  Shows a progress bar\n"
            "on a terminal.  Authentication and TLS: the MLFLOW_TRACKING_* variables.\n"
            "%s%s",
            STORE_TEXT, EXIT_TEXT);
}

static void usage_gate(FILE *f) {
    fprintf(f,
            "usage: mlo gate RUN [STORE | --store DIR | --uri URI] [--file F] CONDITION...\n"
            "\n"
            "Checks the latest value of a run's metrics against conditions, prints a\n"
            "pass/fail table and exits 0 when all hold, 1 when any fails: a CI step that\n"
            "blocks a deploy.  A condition is METRIC OP THRESHOLD with OP one of\n"
            ">= <= > < == !=, THRESHOLD a number or baseline:RUN_ID (that run's latest\n"
            "value of the same metric), e.g.\n"
            "    accuracy>=0.9   latency.p95<100   demographic_parity_diff<0.1\n"
            "    accuracy>=baseline:4f2a9c1b7e3d\n"
            "A missing or NaN metric fails its condition.  Quote conditions in the shell.\n"
            "\n"
            "  --file F     conditions from F, one per line ('#' starts a comment)\n"
            "  --uri URI    read the run from this MLflow tracking server\n"
            "               (GET /api/2.0/mlflow/runs/get; MLFLOW_TRACKING_TOKEN,\n"
            "               _USERNAME/_PASSWORD, _INSECURE_TLS, _SERVER_CERT_PATH apply)\n"
            "  --store DIR  the local store (also the first argument without an operator)\n"
            "%s%s",
            STORE_TEXT, EXIT_TEXT);
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

/* Every allocation of the tool goes through these and is linked into one
 * list, which main frees after the command: commands return from anywhere
 * without leaking (LeakSanitizer runs the tests). */
typedef union blk {
    struct {
        union blk *prev, *next;
    } l;
    max_align_t align;
} blk;

static blk g_blocks = {{&g_blocks, &g_blocks}};

static void oom(void) {
    fprintf(stderr, "mlo: out of memory\n");
    exit(EXIT_ERROR);
}

static void blk_link(blk *b) {
    b->l.prev = &g_blocks;
    b->l.next = g_blocks.l.next;
    g_blocks.l.next->l.prev = b;
    g_blocks.l.next = b;
}

static void blk_unlink(blk *b) {
    b->l.prev->l.next = b->l.next;
    b->l.next->l.prev = b->l.prev;
}

static void *xmalloc(size_t n) {
    if (n > SIZE_MAX - sizeof(blk))
        oom();
    blk *b = malloc(sizeof *b + n);
    if (!b)
        oom();
    blk_link(b);
    return b + 1;
}

static void *xcalloc(size_t n, size_t size) {
    if (size && n > (SIZE_MAX - sizeof(blk)) / size)
        oom();
    void *p = xmalloc(n * size);
    memset(p, 0, n * size);
    return p;
}

static void *xrealloc(void *p, size_t n) {
    if (!p)
        return xmalloc(n);
    if (n > SIZE_MAX - sizeof(blk))
        oom();
    blk *b = (blk *)p - 1;
    blk_unlink(b);
    blk *nb = realloc(b, sizeof *nb + n);
    if (!nb) {
        blk_link(b);
        oom();
    }
    blk_link(nb);
    return nb + 1;
}

static void xfree(void *p) {
    if (!p)
        return;
    blk *b = (blk *)p - 1;
    blk_unlink(b);
    free(b);
}

static void xfree_all(void) {
    while (g_blocks.l.next != &g_blocks) {
        blk *b = g_blocks.l.next;
        blk_unlink(b);
        free(b);
    }
}

static char *xstrdup(const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static void set_str(char **dst, const char *s) {
    xfree(*dst);
    *dst = xstrdup(s);
}

/* Display width of a UTF-8 string: its code points (no East Asian wide
 * characters in run names is assumed; close enough for a table). */
static size_t utf8_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static bool utf8_locale(void) {
    const char *cs = nl_langinfo(CODESET);
    return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

static void fmt_time(int64_t ms, char *out, size_t n) {
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, n, "%lld", (long long)ms);
}

static void fmt_num(double v, char *out, size_t n) {
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(out, n, "%.6g", v);
}

static const char *status_name(int st, bool ended) {
    if (!ended)
        return "RUNNING";
    switch (st) {
    case MLO_RUN_RUNNING:
        return "RUNNING";
    case MLO_RUN_SCHEDULED:
        return "SCHEDULED";
    case MLO_RUN_FINISHED:
        return "FINISHED";
    case MLO_RUN_FAILED:
        return "FAILED";
    case MLO_RUN_KILLED:
        return "KILLED";
    default:
        return "UNKNOWN";
    }
}

static const char *store_dir(const char *arg) {
    if (arg)
        return arg;
    const char *e = getenv("MLO_STORE_DIR");
    return e && *e ? e : DEFAULT_STORE;
}

/* ------------------------------------------------------------------ */
/* the store, folded into runs                                          */

typedef struct point {
    int64_t step, ts;
    double v;
} point;

typedef struct metric {
    char *key;
    point last; /* MLflow's latest: greatest (step, timestamp, value) */
    size_t count;
    point *hist; /* only for runs loaded with their history (show) */
    size_t nh, caph;
} metric;

typedef struct kv {
    char *k, *v;
} kv;

typedef struct kvs {
    kv *a;
    size_t n, cap;
} kvs;

/* A dataset input of a run (mlo_log_dataset), as the server keeps it: one
 * per (name, digest), the first one logged. */
typedef struct dataset {
    char *name, *digest, *source_type, *source, *context;
} dataset;

typedef struct run {
    char *id, *exp_name, *exp_id, *name, *parent, *server_id;
    int status;
    bool started, ended, keep_hist;
    int64_t start, end;
    kvs params, tags;
    metric *m;
    size_t nm, capm, last_m;
    dataset *ds;
    size_t nds, capds;
} run;

typedef struct store {
    const char *dir;
    run **runs;
    size_t n, cap;
    run **tab; /* open addressing on id */
    size_t tabcap;
    const char *hist_prefix; /* keep metric histories of runs whose id starts so */
    size_t segments, events, damaged;
    bool quiet; /* no warnings (a second pass over the same files) */
} store;

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void kvs_set(kvs *s, const char *k, const char *v) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->a[i].k, k) == 0) {
            set_str(&s->a[i].v, v);
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

static const char *kvs_get(const kvs *s, const char *k) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->a[i].k, k) == 0)
            return s->a[i].v;
    return NULL;
}

static run *store_find(const store *s, const char *id) {
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

static run *store_run(store *s, const char *id) {
    run *r = store_find(s, id);
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

static metric *run_metric(run *r, const char *key, bool create) {
    if (r->last_m < r->nm && strcmp(r->m[r->last_m].key, key) == 0)
        return &r->m[r->last_m];
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
    run *r = store_run(s, e->run_id);
    switch (e->type) {
    case MLO_EV_START_RUN:
        if (e->key)
            set_str(&r->exp_name, e->key);
        if (e->value && *e->value)
            set_str(&r->name, e->value);
        if (e->experiment_id)
            set_str(&r->exp_id, e->experiment_id);
        if (e->parent_run_id)
            set_str(&r->parent, e->parent_run_id);
        r->start = e->timestamp;
        r->started = true;
        for (size_t i = 0; i < e->ntags; i++)
            kvs_set(&r->tags, e->tag_keys[i], e->tag_values[i]);
        break;
    case MLO_REC_PARAM:
        if (e->key)
            kvs_set(&r->params, e->key, e->value ? e->value : "");
        break;
    case MLO_REC_TAG:
        if (e->key)
            kvs_set(&r->tags, e->key, e->value ? e->value : "");
        break;
    case MLO_REC_METRIC: {
        if (!e->key)
            break;
        metric *m = run_metric(r, e->key, true);
        point p = {e->step, e->timestamp, e->value_num};
        if (m->count++ == 0 || point_later(&p, &m->last))
            m->last = p;
        if (r->keep_hist) {
            if (m->nh == m->caph) {
                m->caph = m->caph ? m->caph * 2 : 64;
                m->hist = xrealloc(m->hist, m->caph * sizeof *m->hist);
            }
            m->hist[m->nh++] = p;
        }
        break;
    }
    case MLO_REC_END_RUN:
        r->status = (int)e->value_num;
        r->end = e->timestamp;
        r->ended = true;
        break;
    case MLO_REC_DATASET:
        run_dataset(r, e);
        break;
    default:
        break; /* FLUSH, or a type of a newer mlo: nothing a reader shows */
    }
}

static int by_strcmp(const void *a, const void *b) {
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
            run *r = store_find(s, local);
            if (r)
                set_str(&r->server_id, remote);
        }
    }
    fclose(f);
}

/* Loads every segment of the store.  0, or -1 with a message when the store
 * is not there. */
static int store_load(store *s, const char *dir, const char *hist_prefix, bool quiet) {
    memset(s, 0, sizeof *s);
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
    char segdir[4096];
    snprintf(segdir, sizeof segdir, "%s/segments", dir);
    DIR *d = opendir(segdir);
    if (!d) {
        if (errno != ENOENT) {
            fprintf(stderr, "mlo: %s: %s\n", segdir, strerror(errno));
            return -1;
        }
        return 0; /* a store that has recorded nothing yet */
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".seg") != 0 || de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_strcmp);
    for (size_t i = 0; i < n; i++) {
        char path[8192], err[512];
        snprintf(path, sizeof path, "%s/%s", segdir, names[i]);
        mlo_logr *r = mlo__logr_open(path, err, sizeof err);
        if (!r) {
            if (!s->quiet)
                fprintf(stderr, "mlo: warning: skipping %s\n", err);
            s->damaged++;
            xfree(names[i]);
            continue;
        }
        s->segments++;
        mlo_log_event e;
        int rc;
        while ((rc = mlo__logr_next(r, &e, err, sizeof err)) != 0) {
            if (rc == 1) {
                apply(s, &e);
                s->events++;
                continue;
            }
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
    read_map(s);
    return 0;
}

static const char *run_name(const run *r) {
    if (r->name)
        return r->name;
    const char *t = kvs_get(&r->tags, "mlflow.runName");
    return t ? t : "-";
}

static const char *run_experiment(const run *r, char *buf, size_t n) {
    if (r->exp_name)
        return r->exp_name;
    if (r->exp_id) {
        snprintf(buf, n, "id %s", r->exp_id);
        return buf;
    }
    return r->started ? "Default" : "-";
}

/* Finds RUN: an exact id, a unique id prefix, a server id (or prefix), a
 * unique name.  NULL with a message on stderr. */
static run *resolve(const store *s, const char *arg) {
    run *r = store_find(s, arg);
    if (r)
        return r;
    size_t alen = strlen(arg);
    for (int pass = 0; pass < 3; pass++) {
        run *hit = NULL;
        size_t hits = 0;
        for (size_t i = 0; i < s->n; i++) {
            const run *x = s->runs[i];
            bool m = pass == 0   ? strncmp(x->id, arg, alen) == 0
                     : pass == 1 ? x->server_id && strncmp(x->server_id, arg, alen) == 0
                                 : strcmp(run_name(x), arg) == 0;
            if (m) {
                hits++;
                hit = s->runs[i];
            }
        }
        if (hits == 1)
            return hit;
        if (hits > 1) {
            fprintf(stderr, "mlo: '%s' matches %zu runs:", arg, hits);
            for (size_t i = 0, k = 0; i < s->n && k < 10; i++) {
                const run *x = s->runs[i];
                bool m = pass == 0   ? strncmp(x->id, arg, alen) == 0
                         : pass == 1 ? x->server_id && strncmp(x->server_id, arg, alen) == 0
                                     : strcmp(run_name(x), arg) == 0;
                if (m) {
                    fprintf(stderr, " %s", x->id);
                    k++;
                }
            }
            fprintf(stderr, "; give more of the id\n");
            return NULL;
        }
    }
    fprintf(stderr, "mlo: no run '%s' in %s\n", arg, s->dir);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* option parsing: long options with a value as "--opt VALUE" or
 * "--opt=VALUE"; the rest are positionals.                             */

typedef struct args {
    int argc;
    char **argv;
    int i;
} args;

/* Returns true and sets *val when argv[i] is --name[=value]. */
static bool opt_val(args *a, const char *name, const char **val) {
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0)
        return false;
    if (s[n] == '=') {
        *val = s + n + 1;
        return true;
    }
    if (s[n] != '\0')
        return false;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "mlo: %s needs a value\n", name);
        exit(EXIT_ERROR);
    }
    *val = a->argv[++a->i];
    return true;
}

static bool is_help(const char *s) {
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

static int bad_usage(void (*usage)(FILE *), const char *fmt, const char *what) {
    fprintf(stderr, "mlo: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return EXIT_ERROR;
}

/* ------------------------------------------------------------------ */
/* ls                                                                   */

typedef struct ls_opts {
    const char *sort;
    bool asc;
} ls_opts;

static ls_opts g_ls;

static bool latest(const run *r, const char *key, double *v) {
    run *rr = (run *)r;
    metric *m = run_metric(rr, key, false);
    if (!m)
        return false;
    *v = m->last.v;
    return true;
}

static int ls_cmp(const void *pa, const void *pb) {
    const run *a = *(run *const *)pa, *b = *(run *const *)pb;
    if (g_ls.sort) {
        double va, vb;
        bool ha = latest(a, g_ls.sort, &va) && !isnan(va);
        bool hb = latest(b, g_ls.sort, &vb) && !isnan(vb);
        if (ha != hb)
            return ha ? -1 : 1;
        if (ha && va != vb)
            return (g_ls.asc ? va < vb : va > vb) ? -1 : 1;
    }
    if (a->start != b->start)
        return a->start > b->start ? -1 : 1; /* newest first */
    return strcmp(a->id, b->id);
}

typedef struct table {
    size_t ncol, nrow; /* rows incl. the header */
    char **cell;       /* nrow * ncol */
    bool *right;       /* per column */
} table;

static void table_init(table *t, size_t ncol, size_t nrow) {
    t->ncol = ncol;
    t->nrow = nrow;
    t->cell = xcalloc(ncol * nrow, sizeof *t->cell);
    t->right = xcalloc(ncol, sizeof *t->right);
}

static void table_set(table *t, size_t row, size_t col, const char *s) {
    set_str(&t->cell[row * t->ncol + col], s);
}

static void table_print(const table *t, FILE *f) {
    size_t *w = calloc(t->ncol, sizeof *w);
    if (!w)
        return;
    for (size_t r = 0; r < t->nrow; r++)
        for (size_t c = 0; c < t->ncol; c++) {
            const char *s = t->cell[r * t->ncol + c];
            size_t l = s ? utf8_width(s) : 0;
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrow; r++) {
        mlo_buf line = {0};
        for (size_t c = 0; c < t->ncol; c++) {
            const char *s = t->cell[r * t->ncol + c];
            if (!s)
                s = "";
            size_t pad = w[c] - utf8_width(s);
            if (c)
                mlo__buf_appends(&line, "  ");
            if (t->right[c])
                for (size_t k = 0; k < pad; k++)
                    mlo__buf_appendc(&line, ' ');
            mlo__buf_appends(&line, s);
            if (!t->right[c] && c + 1 < t->ncol)
                for (size_t k = 0; k < pad; k++)
                    mlo__buf_appendc(&line, ' ');
        }
        fprintf(f, "%s\n", line.data ? line.data : "");
        mlo__buf_free(&line);
    }
    free(w);
}

static int cmd_ls(int argc, char **argv) {
    const char *store_arg = NULL, *metrics_opt = NULL, *exp_filter = NULL;
    bool long_ids = false;
    memset(&g_ls, 0, sizeof g_ls);
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (is_help(s)) {
            usage_ls(stdout);
            return EXIT_PASS;
        } else if (opt_val(&a, "--sort", &v))
            g_ls.sort = v;
        else if (strcmp(s, "--asc") == 0)
            g_ls.asc = true;
        else if (strcmp(s, "--long") == 0)
            long_ids = true;
        else if (opt_val(&a, "--metrics", &v))
            metrics_opt = v;
        else if (opt_val(&a, "--experiment", &v))
            exp_filter = v;
        else if (s[0] == '-' && s[1])
            return bad_usage(usage_ls, "unknown option %s", s);
        else if (!store_arg)
            store_arg = s;
        else
            return bad_usage(usage_ls, "unexpected argument %s", s);
    }
    if (g_ls.asc && !g_ls.sort)
        return bad_usage(usage_ls, "%s needs --sort METRIC", "--asc");
    store st;
    if (store_load(&st, store_dir(store_arg), NULL, false) != 0)
        return EXIT_ERROR;

    /* the runs to list */
    run **rows = xmalloc((st.n + 1) * sizeof *rows);
    size_t nr = 0;
    for (size_t i = 0; i < st.n; i++) {
        run *r = st.runs[i];
        char eb[300];
        if (exp_filter && strcmp(run_experiment(r, eb, sizeof eb), exp_filter) != 0 &&
            !(r->exp_id && strcmp(r->exp_id, exp_filter) == 0))
            continue;
        rows[nr++] = r;
    }
    if (nr == 0) {
        printf("no runs in %s%s\n", st.dir, exp_filter ? " for that experiment" : "");
        return EXIT_PASS;
    }

    /* metric columns */
    char **cols = NULL;
    size_t ncols = 0, capc = 0, hidden = 0;
    if (metrics_opt) {
        char *list = xstrdup(metrics_opt), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (ncols == capc)
                cols = xrealloc(cols, (capc = capc ? capc * 2 : 8) * sizeof *cols);
            cols[ncols++] = xstrdup(t);
        }
        xfree(list);
    } else {
        for (size_t i = 0; i < nr; i++)
            for (size_t k = 0; k < rows[i]->nm; k++) {
                const char *key = rows[i]->m[k].key;
                bool have = false;
                for (size_t c = 0; c < ncols && !have; c++)
                    have = strcmp(cols[c], key) == 0;
                if (have)
                    continue;
                if (ncols == capc)
                    cols = xrealloc(cols, (capc = capc ? capc * 2 : 8) * sizeof *cols);
                cols[ncols++] = xstrdup(key);
            }
        if (ncols)
            qsort(cols, ncols, sizeof *cols, by_strcmp);
        /* the sort metric first */
        for (size_t c = 0; g_ls.sort && c < ncols; c++)
            if (strcmp(cols[c], g_ls.sort) == 0) {
                char *x = cols[c];
                memmove(cols + 1, cols, c * sizeof *cols);
                cols[0] = x;
                break;
            }
        if (ncols > MAX_METRIC_COLUMNS) {
            hidden = ncols - MAX_METRIC_COLUMNS;
            ncols = MAX_METRIC_COLUMNS;
        }
    }
    if (g_ls.sort) {
        bool any = false;
        for (size_t i = 0; i < nr && !any; i++)
            any = run_metric(rows[i], g_ls.sort, false) != NULL;
        if (!any)
            fprintf(stderr, "mlo: warning: no run has a metric '%s'; sorted by start time\n",
                    g_ls.sort);
    }
    qsort(rows, nr, sizeof *rows, ls_cmp);

    bool any_server = false;
    for (size_t i = 0; i < nr; i++)
        any_server |= rows[i]->server_id != NULL;
    size_t fixed = any_server ? 6 : 5;
    table t;
    table_init(&t, fixed + ncols, nr + 1);
    size_t c0 = 0;
    table_set(&t, 0, c0++, "RUN");
    if (any_server)
        table_set(&t, 0, c0++, "SERVER RUN");
    table_set(&t, 0, c0++, "EXPERIMENT");
    table_set(&t, 0, c0++, "NAME");
    table_set(&t, 0, c0++, "STATUS");
    table_set(&t, 0, c0++, "START");
    for (size_t c = 0; c < ncols; c++) {
        table_set(&t, 0, fixed + c, cols[c]);
        t.right[fixed + c] = true;
    }
    for (size_t i = 0; i < nr; i++) {
        const run *r = rows[i];
        char buf[64], eb[300];
        size_t c = 0;
        snprintf(buf, sizeof buf, "%.*s", long_ids ? 63 : 12, r->id);
        table_set(&t, i + 1, c++, buf);
        if (any_server) {
            snprintf(buf, sizeof buf, "%.*s", long_ids ? 63 : 12,
                     r->server_id ? r->server_id : "-");
            table_set(&t, i + 1, c++, buf);
        }
        table_set(&t, i + 1, c++, run_experiment(r, eb, sizeof eb));
        table_set(&t, i + 1, c++, run_name(r));
        table_set(&t, i + 1, c++, status_name(r->status, r->ended));
        fmt_time(r->start, buf, sizeof buf);
        table_set(&t, i + 1, c++, buf);
        for (size_t k = 0; k < ncols; k++) {
            double v;
            if (latest(r, cols[k], &v))
                fmt_num(v, buf, sizeof buf);
            else
                snprintf(buf, sizeof buf, "-");
            table_set(&t, i + 1, fixed + k, buf);
        }
    }
    table_print(&t, stdout);
    if (hidden)
        printf("(%zu more metric%s not shown: choose columns with --metrics)\n", hidden,
               hidden == 1 ? "" : "s");
    if (st.damaged)
        fprintf(stderr, "mlo: warning: %zu damaged place%s in the store's segments (see above)\n",
                st.damaged, st.damaged == 1 ? "" : "s");
    return EXIT_PASS;
}

/* ------------------------------------------------------------------ */
/* show                                                                 */

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

/* Sorts by (step, timestamp, value) and drops exact duplicates (a replayed
 * event is stored once, as MLflow does). */
static size_t history_normalize(point *p, size_t n) {
    if (n == 0)
        return 0;
    qsort(p, n, sizeof *p, point_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (memcmp(&p[i], &p[k - 1], sizeof *p) != 0)
            p[k++] = p[i];
    return k;
}

/* A one-line chart of p[0..n): at most width cells, each the mean of its
 * share of the points, scaled between the smallest and largest cell. */
static void sparkline(const point *p, size_t n, size_t width, bool ascii, mlo_buf *out) {
    static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                          "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char levels[] = "_.-:=+*#";
    size_t cells = n < width ? n : width;
    if (cells == 0)
        return;
    double *val = xmalloc(cells * sizeof *val);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t c = 0; c < cells; c++) {
        size_t a = c * n / cells, b = (c + 1) * n / cells;
        double sum = 0;
        size_t k = 0;
        for (size_t i = a; i < b; i++)
            if (isfinite(p[i].v)) {
                sum += p[i].v;
                k++;
            }
        val[c] = k ? sum / (double)k : NAN;
        if (k) {
            lo = val[c] < lo ? val[c] : lo;
            hi = val[c] > hi ? val[c] : hi;
        }
    }
    for (size_t c = 0; c < cells; c++) {
        if (isnan(val[c])) {
            mlo__buf_appendc(out, ' '); /* no finite value in this cell */
            continue;
        }
        int lv = hi > lo ? (int)lround((val[c] - lo) / (hi - lo) * 7.0) : 3;
        lv = lv < 0 ? 0 : lv > 7 ? 7 : lv;
        if (ascii)
            mlo__buf_appendc(out, levels[lv]);
        else
            mlo__buf_appends(out, blocks[lv]);
    }
    xfree(val);
}

/* Artifacts of run `id` still in the store (src/mlo_artifact.c): the
 * manifests <store>/artifacts/<id>.art (pending upload) and .failed
 * (refused for good), text lines "key value" with path, uri and error
 * percent-encoded.  Printed only when there are some. */
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

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void show_pending_artifacts(const char *dir, const char *id) {
    char path[4096];
    snprintf(path, sizeof path, "%s/artifacts", dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    char **lines = NULL;
    size_t n = 0;
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
        char line[8192], run[64] = "", apath[4096] = "?", uri[2048] = "-", err[2048] = "";
        long long size = -1;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            char *v = strchr(line, ' ');
            if (!v)
                continue;
            *v++ = 0;
            if (!strcmp(line, "run"))
                snprintf(run, sizeof run, "%s", v);
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
        if (strcmp(run, id) != 0)
            continue;
        pct_decode(apath);
        pct_decode(uri);
        pct_decode(err);
        mlo_buf out = {0};
        mlo__buf_printf(&out, "  %s  %lld bytes  ", apath, size);
        if (failed)
            mlo__buf_printf(&out, "failed: %.300s", err);
        else if (!strcmp(uri, "-"))
            mlo__buf_printf(&out, "pending (mlo sync uploads it)");
        else
            mlo__buf_printf(&out, "pending upload to %s", uri);
        char **nl = out.data ? realloc(lines, (n + 1) * sizeof *lines) : NULL;
        if (!nl) {
            mlo__buf_free(&out);
            continue;
        }
        lines = nl;
        lines[n++] = out.data; /* malloc'd by mlo_buf: plain free */
    }
    closedir(d);
    if (n > 1)
        qsort(lines, n, sizeof *lines, cmp_cstr);
    if (n)
        printf("\nArtifacts not uploaded yet (%zu)\n", n);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
}

static int cmd_show(int argc, char **argv) {
    const char *run_arg = NULL, *store_arg = NULL;
    const char **only = NULL;
    size_t nonly = 0;
    bool history = false, ascii = !utf8_locale();
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (is_help(s)) {
            usage_show(stdout);
            return EXIT_PASS;
        } else if (strcmp(s, "--history") == 0)
            history = true;
        else if (strcmp(s, "--ascii") == 0)
            ascii = true;
        else if (opt_val(&a, "--metric", &v)) {
            only = xrealloc(only, (nonly + 1) * sizeof *only);
            only[nonly++] = v;
        } else if (s[0] == '-' && s[1])
            return bad_usage(usage_show, "unknown option %s", s);
        else if (!run_arg)
            run_arg = s;
        else if (!store_arg)
            store_arg = s;
        else
            return bad_usage(usage_show, "unexpected argument %s", s);
    }
    if (!run_arg)
        return bad_usage(usage_show, "%s", "which run? (mlo ls lists them)");
    const char *dir = store_dir(store_arg);
    store st;
    if (store_load(&st, dir, run_arg, false) != 0)
        return EXIT_ERROR;
    run *r = resolve(&st, run_arg);
    if (!r)
        return EXIT_ERROR;
    if (!r->keep_hist) {
        /* found by name or server id: read again keeping its history */
        char *id = xstrdup(r->id);
        if (store_load(&st, dir, id, true) != 0 || !(r = store_find(&st, id)))
            return EXIT_ERROR;
    }

    char t1[64], t2[64], eb[300];
    printf("Run         %s\n", r->id);
    if (r->server_id)
        printf("Server run  %s\n", r->server_id);
    printf("Name        %s\n", run_name(r));
    printf("Experiment  %s", run_experiment(r, eb, sizeof eb));
    if (r->exp_id && r->exp_name)
        printf(" (id %s)", r->exp_id);
    printf("\n");
    printf("Status      %s\n", status_name(r->status, r->ended));
    fmt_time(r->start, t1, sizeof t1);
    printf("Start       %s\n", t1);
    if (r->ended) {
        fmt_time(r->end, t2, sizeof t2);
        printf("End         %s", t2);
        if (r->start > 0 && r->end >= r->start)
            printf("  (%.1f s)", (double)(r->end - r->start) / 1000.0);
        printf("\n");
    }
    if (r->parent)
        printf("Parent      %s\n", r->parent);

    size_t kw = 0;
    for (size_t i = 0; i < r->params.n; i++)
        kw = utf8_width(r->params.a[i].k) > kw ? utf8_width(r->params.a[i].k) : kw;
    printf("\nParams (%zu)\n", r->params.n);
    for (size_t i = 0; i < r->params.n; i++)
        printf("  %s%*s  %s\n", r->params.a[i].k, (int)(kw - utf8_width(r->params.a[i].k)), "",
               r->params.a[i].v);
    kw = 0;
    for (size_t i = 0; i < r->tags.n; i++)
        kw = utf8_width(r->tags.a[i].k) > kw ? utf8_width(r->tags.a[i].k) : kw;
    printf("\nTags (%zu)\n", r->tags.n);
    for (size_t i = 0; i < r->tags.n; i++) {
        const char *v = r->tags.a[i].v;
        size_t vl = strlen(v);
        /* long values (notes, commands) are cut for the terminal */
        printf("  %s%*s  %.*s%s\n", r->tags.a[i].k, (int)(kw - utf8_width(r->tags.a[i].k)), "",
               vl > 200 ? 200 : (int)vl, v, vl > 200 ? "..." : "");
    }

    if (r->nds) {
        /* the location out of MLflow's source JSON ({"uri": ...}, {"url": ...}) */
        kw = 0;
        for (size_t i = 0; i < r->nds; i++)
            kw = utf8_width(r->ds[i].name) > kw ? utf8_width(r->ds[i].name) : kw;
        printf("\nDatasets (%zu)\n", r->nds);
        for (size_t i = 0; i < r->nds; i++) {
            const dataset *d = &r->ds[i];
            json_t *j = json_loads(d->source, JSON_DECODE_ANY, NULL);
            const char *loc = json_string_value(json_object_get(j, "uri"));
            if (!loc)
                loc = json_string_value(json_object_get(j, "url"));
            printf("  %s%*s  digest %s  %s %s", d->name, (int)(kw - utf8_width(d->name)), "",
                   d->digest, d->source_type, loc ? loc : d->source);
            if (d->context[0])
                printf("  (context %s)", d->context);
            printf("\n");
            json_decref(j);
        }
    }

    show_pending_artifacts(dir, r->id);

    printf("\nMetrics (%zu)\n", r->nm);
    kw = 0;
    for (size_t i = 0; i < r->nm; i++)
        kw = utf8_width(r->m[i].key) > kw ? utf8_width(r->m[i].key) : kw;
    int shown = 0;
    for (size_t i = 0; i < r->nm; i++) {
        metric *m = &r->m[i];
        bool want = nonly == 0;
        for (size_t k = 0; k < nonly && !want; k++)
            want = strcmp(only[k], m->key) == 0;
        if (!want)
            continue;
        shown++;
        m->nh = history_normalize(m->hist, m->nh);
        double lo = INFINITY, hi = -INFINITY;
        for (size_t k = 0; k < m->nh; k++)
            if (isfinite(m->hist[k].v)) {
                lo = m->hist[k].v < lo ? m->hist[k].v : lo;
                hi = m->hist[k].v > hi ? m->hist[k].v : hi;
            }
        char last[64], a1[64], a2[64];
        fmt_num(m->last.v, last, sizeof last);
        printf("  %s%*s  last %s (step %lld)", m->key, (int)(kw - utf8_width(m->key)), "", last,
               (long long)m->last.step);
        if (m->nh > 1 && lo <= hi) {
            fmt_num(lo, a1, sizeof a1);
            fmt_num(hi, a2, sizeof a2);
            printf("  min %s  max %s  %zu points, steps %lld..%lld", a1, a2, m->nh,
                   (long long)m->hist[0].step, (long long)m->hist[m->nh - 1].step);
        }
        printf("\n");
        if (m->nh > 1) {
            mlo_buf line = {0};
            sparkline(m->hist, m->nh, 60, ascii, &line);
            printf("  %*s  %s\n", (int)kw, "", line.data ? line.data : "");
            mlo__buf_free(&line);
        }
        if (history) {
            printf("  %*s  %12s  %-19s  %s\n", (int)kw, "", "step", "time", "value");
            for (size_t k = 0; k < m->nh; k++) {
                char tv[64], vv[64];
                fmt_time(m->hist[k].ts, tv, sizeof tv);
                fmt_num(m->hist[k].v, vv, sizeof vv);
                printf("  %*s  %12lld  %-19s  %s\n", (int)kw, "", (long long)m->hist[k].step, tv,
                       vv);
            }
        }
    }
    for (size_t k = 0; k < nonly; k++)
        if (!run_metric(r, only[k], false))
            fprintf(stderr, "mlo: run has no metric '%s'\n", only[k]);
    if (nonly && !shown)
        return EXIT_ERROR;
    return EXIT_PASS;
}

/* ------------------------------------------------------------------ */
/* sync                                                                 */

typedef struct progress {
    bool tty;
    int last_pct;
    int64_t last_ns;
} progress;

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
    progress *p = ctx;
    if (!p->tty)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int pct = total ? (int)(done * 100 / total) : 0;
    if (pct == p->last_pct && now - p->last_ns < 200000000 && done != total)
        return;
    p->last_pct = pct;
    p->last_ns = now;
    char bar[41];
    int fill = total ? (int)(done * 40 / total) : 0;
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "\rsync [%s] %3d%%  %llu/%llu events", bar, pct, (unsigned long long)done,
            (unsigned long long)total);
    fflush(stderr);
}

static int cmd_sync(int argc, char **argv) {
    const char *store_arg = NULL, *uri = NULL;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (is_help(s)) {
            usage_sync(stdout);
            return EXIT_PASS;
        } else if (opt_val(&a, "--to", &v))
            uri = v;
        else if (s[0] == '-' && s[1])
            return bad_usage(usage_sync, "unknown option %s", s);
        else if (!store_arg)
            store_arg = s;
        else
            return bad_usage(usage_sync, "unexpected argument %s", s);
    }
    if (!uri || !*uri)
        uri = getenv("MLFLOW_TRACKING_URI");
    if (!uri || !*uri)
        return bad_usage(usage_sync, "%s",
                         "no server to sync to: give --to URI or set MLFLOW_TRACKING_URI");
    const char *dir = store_dir(store_arg);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mlo: no store at %s\n", dir);
        return EXIT_ERROR;
    }
    progress p = {isatty(STDERR_FILENO) == 1, -1, 0};
    char err[1024] = "";
    int rc = mlo__sync_store(dir, uri, on_progress, &p, err, sizeof err);
    if (p.tty && p.last_pct >= 0)
        fprintf(stderr, "\n");
    if (rc != 0) {
        fprintf(stderr, "mlo: sync to %s failed: %s\n", uri, err[0] ? err : "unknown error");
        return EXIT_ERROR;
    }
    printf("synced %s to %s\n", dir, uri);
    return EXIT_PASS;
}

/* ------------------------------------------------------------------ */
/* gate                                                                 */

typedef enum { OP_GE, OP_LE, OP_GT, OP_LT, OP_EQ, OP_NE } gate_op;
static const char *const OP_TEXT[] = {">=", "<=", ">", "<", "==", "!="};

typedef struct cond {
    char *text; /* as written, trimmed */
    char *metric;
    gate_op op;
    double threshold;
    char *baseline; /* run id, or NULL */
} cond;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool has_op(const char *s) {
    return strpbrk(s, "<>=!") != NULL;
}

/* Parses "METRIC OP THRESHOLD".  0, or -1 with a message. */
static int cond_parse(const char *in, cond *c) {
    memset(c, 0, sizeof *c);
    char *buf = xstrdup(in), *s = trim(buf);
    char *o = strpbrk(s, "<>=!");
    if (!o || o == s) {
        fprintf(stderr, "mlo: condition '%s': expected METRIC OP VALUE, OP one of %s\n", in,
                ">= <= > < == !=");
        xfree(buf);
        return -1;
    }
    size_t ol;
    if (o[0] == '>' && o[1] == '=')
        c->op = OP_GE, ol = 2;
    else if (o[0] == '<' && o[1] == '=')
        c->op = OP_LE, ol = 2;
    else if (o[0] == '=' && o[1] == '=')
        c->op = OP_EQ, ol = 2;
    else if (o[0] == '!' && o[1] == '=')
        c->op = OP_NE, ol = 2;
    else if (o[0] == '>')
        c->op = OP_GT, ol = 1;
    else if (o[0] == '<')
        c->op = OP_LT, ol = 1;
    else if (o[0] == '=')
        c->op = OP_EQ, ol = 1;
    else {
        fprintf(stderr, "mlo: condition '%s': unknown operator\n", in);
        xfree(buf);
        return -1;
    }
    char *rhs = trim(o + ol);
    *o = '\0';
    char *lhs = trim(s);
    if (!*lhs || !*rhs || strpbrk(rhs, "<>=!")) {
        fprintf(stderr, "mlo: condition '%s': expected METRIC OP VALUE\n", in);
        xfree(buf);
        return -1;
    }
    c->metric = xstrdup(lhs);
    if (strncmp(rhs, "baseline:", 9) == 0) {
        char *id = trim(rhs + 9);
        if (!*id) {
            fprintf(stderr, "mlo: condition '%s': baseline: needs a run id\n", in);
            xfree(buf);
            xfree(c->metric);
            return -1;
        }
        c->baseline = xstrdup(id);
    } else {
        char *end;
        errno = 0;
        c->threshold = strtod(rhs, &end);
        if (end == rhs || *trim(end) || isnan(c->threshold)) {
            fprintf(stderr, "mlo: condition '%s': '%s' is not a number or baseline:RUN_ID\n", in,
                    rhs);
            xfree(buf);
            xfree(c->metric);
            return -1;
        }
    }
    mlo_buf t = {0};
    mlo__buf_printf(&t, "%s %s %s", c->metric, OP_TEXT[c->op], rhs);
    c->text = xstrdup(t.data ? t.data : in);
    mlo__buf_free(&t);
    xfree(buf);
    return 0;
}

static bool cond_holds(gate_op op, double v, double th) {
    switch (op) {
    case OP_GE:
        return v >= th;
    case OP_LE:
        return v <= th;
    case OP_GT:
        return v > th;
    case OP_LT:
        return v < th;
    case OP_EQ:
        return v == th;
    case OP_NE:
        return v != th;
    }
    return false;
}

/* The metrics of one run, however obtained. */
typedef struct run_metrics {
    char *id, *name;
    size_t n;
    char **key;
    double *val;
} run_metrics;

static bool rm_get(const run_metrics *m, const char *key, double *v) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) {
            *v = m->val[i];
            return true;
        }
    return false;
}

static void rm_add(run_metrics *m, const char *key, double v) {
    m->key = xrealloc(m->key, (m->n + 1) * sizeof *m->key);
    m->val = xrealloc(m->val, (m->n + 1) * sizeof *m->val);
    m->key[m->n] = xstrdup(key);
    m->val[m->n] = v;
    m->n++;
}

static void rm_from_run(run_metrics *out, const run *r) {
    memset(out, 0, sizeof *out);
    out->id = xstrdup(r->id);
    out->name = xstrdup(run_name(r));
    for (size_t i = 0; i < r->nm; i++)
        rm_add(out, r->m[i].key, r->m[i].last.v);
}

/* ---- the server: GET runs/get with libcurl ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    mlo_buf *b = ud;
    if (b->len + size * n > (64u << 20))
        return 0; /* a run is never 64 MB of JSON */
    return mlo__buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* MLflow may answer bare NaN / Infinity tokens (Python's json): make them
 * strings, which the value parser below understands, so jansson can read
 * the rest. */
static char *quote_nonfinite(const char *in) {
    mlo_buf out = {0};
    bool str = false;
    for (const char *p = in; *p; p++) {
        if (str) {
            mlo__buf_appendc(&out, *p);
            if (*p == '\\' && p[1])
                mlo__buf_appendc(&out, *++p);
            else if (*p == '"')
                str = false;
            continue;
        }
        if (*p == '"') {
            str = true;
            mlo__buf_appendc(&out, *p);
        } else if (strncmp(p, "NaN", 3) == 0) {
            mlo__buf_appends(&out, "\"NaN\"");
            p += 2;
        } else if (strncmp(p, "-Infinity", 9) == 0) {
            mlo__buf_appends(&out, "\"-Infinity\"");
            p += 8;
        } else if (strncmp(p, "Infinity", 8) == 0) {
            mlo__buf_appends(&out, "\"Infinity\"");
            p += 7;
        } else {
            mlo__buf_appendc(&out, *p);
        }
    }
    char *r = xstrdup(out.data ? out.data : "");
    mlo__buf_free(&out);
    return r;
}

static double json_num(const json_t *v, bool *ok) {
    *ok = true;
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (end != s && !*end)
            return d;
    }
    *ok = false;
    return NAN;
}

/* Fetches a run's latest metrics.  0, -1 with a message (server or network
 * error), -2 when the server says the run does not exist. */
static int server_run(const char *uri, const char *run_id, run_metrics *out, char *err,
                      size_t errlen) {
    memset(out, 0, sizeof *out);
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    char *esc = curl_easy_escape(h, run_id, 0);
    mlo_buf url = {0}, body = {0};
    size_t ul = strlen(uri);
    while (ul && uri[ul - 1] == '/')
        ul--;
    mlo__buf_printf(&url, "%.*s/api/2.0/mlflow/runs/get?run_id=%s", (int)ul, uri, esc ? esc : "");
    curl_free(esc);
    struct curl_slist *hdr = NULL;
    const char *user = getenv("MLFLOW_TRACKING_USERNAME"),
               *pass = getenv("MLFLOW_TRACKING_PASSWORD"), *token = getenv("MLFLOW_TRACKING_TOKEN"),
               *insecure = getenv("MLFLOW_TRACKING_INSECURE_TLS"),
               *ca = getenv("MLFLOW_TRACKING_SERVER_CERT_PATH"),
               *cert = getenv("MLFLOW_TRACKING_CLIENT_CERT_PATH");
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mlo-cli");
    if (user && *user && pass) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
    } else if (token && *token) {
        mlo_buf a = {0};
        mlo__buf_printf(&a, "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, a.data);
        mlo__buf_free(&a);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    }
    if (insecure && strcasecmp(insecure, "true") == 0) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (ca && *ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (cert && *cert)
        curl_easy_setopt(h, CURLOPT_SSLCERT, cert);

    int rc = -1;
    long code = 0;
    /* three tries for what MLflow's clients retry: no answer, 429, 5xx */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt)
            sleep((unsigned)attempt);
        mlo__buf_reset(&body);
        ebuf[0] = '\0';
        CURLcode cc = curl_easy_perform(h);
        code = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (cc != CURLE_OK) {
            snprintf(err, errlen, "%s: %s", uri, ebuf[0] ? ebuf : curl_easy_strerror(cc));
            continue;
        }
        if (code == 429 || code >= 500) {
            snprintf(err, errlen, "%s answered HTTP %ld", uri, code);
            continue;
        }
        break;
    }
    if (code == 200) {
        char *fixed = quote_nonfinite(body.data ? body.data : "");
        json_error_t je;
        json_t *root = json_loads(fixed, 0, &je);
        xfree(fixed);
        json_t *run = json_object_get(root, "run");
        json_t *info = json_object_get(run, "info");
        json_t *metrics = json_object_get(json_object_get(run, "data"), "metrics");
        if (!root || !json_is_object(run)) {
            snprintf(err, errlen, "%s: unexpected answer to runs/get (%s)", uri,
                     root ? "no run" : je.text);
        } else {
            const char *id = json_string_value(json_object_get(info, "run_id"));
            const char *name = json_string_value(json_object_get(info, "run_name"));
            out->id = xstrdup(id ? id : run_id);
            out->name = xstrdup(name ? name : "-");
            size_t i;
            json_t *m;
            json_array_foreach(metrics, i, m) {
                const char *k = json_string_value(json_object_get(m, "key"));
                bool ok;
                double v = json_num(json_object_get(m, "value"), &ok);
                if (k)
                    rm_add(out, k, ok ? v : NAN);
            }
            rc = 0;
        }
        json_decref(root);
    } else if (code) {
        json_t *root = json_loads(body.data ? body.data : "", 0, NULL);
        const char *ec = json_string_value(json_object_get(root, "error_code"));
        const char *msg = json_string_value(json_object_get(root, "message"));
        if (code == 404 || (ec && strcmp(ec, "RESOURCE_DOES_NOT_EXIST") == 0)) {
            snprintf(err, errlen, "no run '%s' on %s", run_id, uri);
            rc = -2;
        } else {
            snprintf(err, errlen, "%s answered HTTP %ld%s%s%s%s", uri, code, ec ? " " : "",
                     ec ? ec : "", msg ? ": " : "", msg ? msg : "");
        }
        json_decref(root);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    mlo__buf_free(&url);
    mlo__buf_free(&body);
    return rc;
}

static int read_cond_file(const char *path, cond **cs, size_t *n) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "mlo: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int rc = 0, ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        *cs = xrealloc(*cs, (*n + 1) * sizeof **cs);
        if (cond_parse(s, &(*cs)[*n]) != 0) {
            fprintf(stderr, "mlo: in %s, line %d\n", path, ln);
            rc = -1;
            break;
        }
        (*n)++;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static int cmd_gate(int argc, char **argv) {
    const char *run_arg = NULL, *store_arg = NULL, *uri = NULL;
    cond *cs = NULL;
    size_t nc = 0;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (is_help(s)) {
            usage_gate(stdout);
            return EXIT_PASS;
        } else if (opt_val(&a, "--uri", &v))
            uri = v;
        else if (opt_val(&a, "--store", &v))
            store_arg = v;
        else if (opt_val(&a, "--file", &v)) {
            if (read_cond_file(v, &cs, &nc) != 0)
                return EXIT_ERROR;
        } else if (s[0] == '-' && s[1] && !has_op(s))
            return bad_usage(usage_gate, "unknown option %s", s);
        else if (!run_arg)
            run_arg = s;
        else if (!has_op(s) && !store_arg && !uri)
            store_arg = s;
        else if (!has_op(s))
            return bad_usage(usage_gate, "'%s' is not a condition (METRIC OP VALUE)", s);
        else {
            cs = xrealloc(cs, (nc + 1) * sizeof *cs);
            if (cond_parse(s, &cs[nc]) != 0)
                return EXIT_ERROR;
            nc++;
        }
    }
    if (!run_arg)
        return bad_usage(usage_gate, "%s", "which run?");
    if (nc == 0)
        return bad_usage(usage_gate, "%s", "no conditions (give some, or --file F)");
    if (uri && store_arg)
        return bad_usage(usage_gate, "%s", "give a store or --uri, not both");

    run_metrics target, *bases = NULL;
    size_t nb = 0;
    char err[1024];
    store st;
    if (uri) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_curl_started = true;
        int rc = server_run(uri, run_arg, &target, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "mlo: %s\n", err);
            return EXIT_ERROR;
        }
    } else {
        if (store_load(&st, store_dir(store_arg), NULL, false) != 0)
            return EXIT_ERROR;
        run *r = resolve(&st, run_arg);
        if (!r)
            return EXIT_ERROR;
        rm_from_run(&target, r);
    }
    /* the baselines, each fetched once */
    for (size_t i = 0; i < nc; i++) {
        if (!cs[i].baseline)
            continue;
        bool have = false;
        for (size_t k = 0; k < nb && !have; k++)
            have = strcmp(bases[k].id, cs[i].baseline) == 0;
        if (have)
            continue;
        bases = xrealloc(bases, (nb + 1) * sizeof *bases);
        if (uri) {
            if (server_run(uri, cs[i].baseline, &bases[nb], err, sizeof err) != 0) {
                fprintf(stderr, "mlo: baseline: %s\n", err);
                return EXIT_ERROR;
            }
        } else {
            run *b = resolve(&st, cs[i].baseline);
            if (!b)
                return EXIT_ERROR;
            rm_from_run(&bases[nb], b);
        }
        /* keep the id as written, to match the conditions */
        set_str(&bases[nb].id, cs[i].baseline);
        nb++;
    }

    printf("gate: run %s (%s)\n\n", target.id, target.name);
    table t;
    table_init(&t, 4, nc + 1);
    table_set(&t, 0, 0, "CONDITION");
    table_set(&t, 0, 1, "VALUE");
    table_set(&t, 0, 2, "THRESHOLD");
    table_set(&t, 0, 3, "RESULT");
    t.right[1] = t.right[2] = true;
    size_t failed = 0;
    for (size_t i = 0; i < nc; i++) {
        const cond *c = &cs[i];
        char vb[64] = "-", tb[64] = "-";
        const char *why = NULL;
        double v = NAN, th = c->threshold;
        bool have = rm_get(&target, c->metric, &v);
        if (c->baseline) {
            const run_metrics *b = NULL;
            for (size_t k = 0; k < nb; k++)
                if (strcmp(bases[k].id, c->baseline) == 0)
                    b = &bases[k];
            if (!b || !rm_get(b, c->metric, &th)) {
                th = NAN;
                why = "FAIL (baseline has no such metric)";
            }
        }
        if (have)
            fmt_num(v, vb, sizeof vb);
        if (!isnan(th))
            fmt_num(th, tb, sizeof tb);
        bool ok = false;
        if (!have)
            why = "FAIL (no such metric)";
        else if (isnan(v))
            why = "FAIL (value is NaN)";
        else if (!why)
            ok = cond_holds(c->op, v, th);
        if (!ok)
            failed++;
        table_set(&t, i + 1, 0, c->text);
        table_set(&t, i + 1, 1, vb);
        table_set(&t, i + 1, 2, tb);
        table_set(&t, i + 1, 3, ok ? "pass" : why ? why : "FAIL");
    }
    table_print(&t, stdout);
    printf("\n");
    if (failed) {
        printf("result: FAIL (%zu of %zu condition%s failed)\n", failed, nc, nc == 1 ? "" : "s");
        return EXIT_GATE_FAIL;
    }
    printf("result: pass (%zu condition%s)\n", nc, nc == 1 ? "" : "s");
    return EXIT_PASS;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv) {
    setlocale(LC_ALL, "");
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_ERROR;
    }
    const char *cmd = argv[1];
    if (is_help(cmd) || strcmp(cmd, "help") == 0) {
        const char *what = argc > 2 ? argv[2] : "";
        if (!strcmp(what, "ls"))
            usage_ls(stdout);
        else if (!strcmp(what, "show"))
            usage_show(stdout);
        else if (!strcmp(what, "sync"))
            usage_sync(stdout);
        else if (!strcmp(what, "gate"))
            usage_gate(stdout);
        else
            usage_main(stdout);
        return EXIT_PASS;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("mlo %s\n", mlo_version());
        return EXIT_PASS;
    }
    int (*fn)(int, char **) = !strcmp(cmd, "ls")     ? cmd_ls
                              : !strcmp(cmd, "show") ? cmd_show
                              : !strcmp(cmd, "sync") ? cmd_sync
                              : !strcmp(cmd, "gate") ? cmd_gate
                                                     : NULL;
    if (!fn) {
        fprintf(stderr, "mlo: unknown command '%s'\n\n", cmd);
        usage_main(stderr);
        return EXIT_ERROR;
    }
    int rc = fn(argc - 1, argv + 1);
    fflush(stdout);
    xfree_all();
    if (g_curl_started)
        curl_global_cleanup();
    return rc;
}
