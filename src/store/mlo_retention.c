/*
 * mlo_retention.c - what the store removes, and when: the retention period
 * and the size cap over acknowledged segments, the per-run summaries that
 * keep `mlo ls`, `mlo show` and `mlo gate` working once a run's segments are
 * gone, the leftovers of dead processes, and `mlo rm`.  The rules are written
 * down in the layout comment atop mlo_store.c ("What is removed when").
 *
 * A pass (mlo__retention_pass):
 *  1. takes <store>/summaries/.lock (flock, without waiting: a pass of
 *     another process is at it, this one is skipped), redoes an interrupted
 *     pass from its journal and removes stray summary temp files;
 *  2. lists acks, then segments (in that order: an ack whose segment is not
 *     in the later listing is an orphan), and classifies each segment:
 *     closed (nobody appends to it any more: a later segment of its process
 *     exists, or its process is dead and this store handle claimed it) and
 *     acknowledged (its ack file, for whatever URI, reaches its end; a
 *     segment without a block counts as acknowledged, and is removed only
 *     by `mlo gc`: a running client's outbox may still open it by name);
 *  3. chooses: closed and acknowledged segments whose acknowledgement is
 *     older than the retention; then, over the cap, more of the closed and
 *     acknowledged ones, oldest acknowledgement first.  Never any other;
 *  4. folds the chosen segments' events into their runs' summaries
 *     (<store>/summaries/<run id>.sum, the segment format of mlo_log.c:
 *     START_RUN, PARAM, TAG, DATASET, METRIC_SUMMARY per metric with its
 *     count, min, max and latest point, END_RUN), written as temp files;
 *     then the journal <store>/summaries/removing lists the summaries to
 *     rename and the segments to remove (tmp + fsync + rename), the
 *     summaries are renamed into place, the segments and their acks
 *     removed, the journal removed.  A crash anywhere leaves either stray
 *     temp files (the segments are still there: folded again next time) or
 *     the journal (redone next time): every event is in exactly one of a
 *     segment or a summary;
 *  5. leftovers: acks without their segment; for dead processes this store
 *     handle claimed: artifact blobs without a manifest (uploaded, or a
 *     staging that died) and temp files, and once nothing of the process is
 *     left, its acks/<procid>.lock and .target.
 *
 * The running client's writer calls mlo__retention_tick after its cycles:
 * a pass at most once a minute of the env's clock; `mlo gc` and `mlo rm`
 * open the store with mlo__store_open_admin (every dead process claimed).
 *
 * Threads: the calling thread; several processes exclude each other with
 * the lock file.
 */
#define _GNU_SOURCE
#include "mlo_retention.h"

#include "mlo_buf.h"
#include "mlo_fs.h"
#include "mlo_log.h"
#include "mlo_manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_EMPTY_BYTES 32 /* a segment's header alone (mlo_log.c): no block */
#define PASS_EVERY_MS 60000
#define REPORT_EVERY_MS 600000
#define SUM_SUB "summaries"
#define JOURNAL "removing"
#define COMMIT_EVERY 2048

/* ---- small helpers ---------------------------------------------------------------------- */

/* snprintf for paths and messages: cut at n (paths this long do not occur
 * in a store; a message may be cut). */
static void fmt(char *out, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t n, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, n, f, ap);
    va_end(ap);
}

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_free(names *x) {
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i]);
    free(x->v);
    memset(x, 0, sizeof *x);
}

static int names_add(names *x, const char *s) {
    if (x->n == x->cap) {
        size_t c = x->cap ? 2 * x->cap : 32;
        char **v = realloc(x->v, c * sizeof *v);
        if (!v)
            return -1;
        x->v = v;
        x->cap = c;
    }
    if (!(x->v[x->n] = strdup(s)))
        return -1;
    x->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suf) {
    size_t l = strlen(s), k = strlen(suf);
    return l > k && strcmp(s + l - k, suf) == 0;
}

/* Names in root/sub ending in suffix ("" any), sorted; dot files left out. */
static int list_names(const char *root, const char *sub, const char *suffix, names *out) {
    memset(out, 0, sizeof *out);
    char p[4096];
    fmt(p, sizeof p, "%s/%s", root, sub);
    DIR *d = opendir(p);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (*suffix && !has_suffix(e->d_name, suffix)) ||
            strlen(e->d_name) >= 256)
            continue;
        if (names_add(out, e->d_name) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (rc != 0)
        names_free(out); /* callers free only what a success returned */
    else if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return rc;
}

static int names_has(const names *x, const char *s) {
    return x->n && bsearch(&s, x->v, x->n, sizeof *x->v, cmp_str) != NULL;
}

/* "<procid>-<n><rest>": the procid (before the last '-') and n. */
static int split_procid(const char *name, char procid[48], uint32_t *n) {
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || (size_t)(dash - name) >= 48)
        return -1;
    memcpy(procid, name, (size_t)(dash - name));
    procid[dash - name] = 0;
    if (n)
        *n = (uint32_t)strtoul(dash + 1, NULL, 10);
    return 0;
}

static uint64_t file_size(const char *root, const char *sub, const char *name) {
    char p[4096];
    fmt(p, sizeof p, "%s/%s/%s", root, sub, name);
    struct stat sb;
    return lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
}

static int exists(const char *root, const char *sub, const char *name) {
    char p[4096];
    fmt(p, sizeof p, "%s/%s/%s", root, sub, name);
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static int unlink_in(const char *root, const char *sub, const char *name) {
    char p[4096];
    fmt(p, sizeof p, "%s/%s/%s", root, sub, name);
    return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
}

/* The store's size: its regular files, one level of subdirectories, not
 * the queue's file (rings/<procid>.ring, fixed and reserved at open). */
static uint64_t store_bytes(const char *root) {
    uint64_t total = 0;
    DIR *d = opendir(root);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        fmt(p, sizeof p, "%s/%s", root, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISREG(sb.st_mode)) {
            total += (uint64_t)sb.st_size;
        } else if (S_ISDIR(sb.st_mode)) {
            DIR *sd = opendir(p);
            if (!sd)
                continue;
            int rings = !strcmp(e->d_name, "rings");
            struct dirent *f;
            while ((f = readdir(sd))) {
                if (rings && has_suffix(f->d_name, ".ring"))
                    continue;
                char q[4400];
                fmt(q, sizeof q, "%s/%s", p, f->d_name);
                if (lstat(q, &sb) == 0 && S_ISREG(sb.st_mode))
                    total += (uint64_t)sb.st_size;
            }
            closedir(sd);
        }
    }
    closedir(d);
    return total;
}

static void say(const mlo_gc_opts *o, mlo_gc_result *res, const char *kind, const char *sub,
                const char *name, uint64_t bytes, const char *why) {
    res->files++;
    res->bytes += bytes;
    if (o->on_remove) {
        char rel[600];
        fmt(rel, sizeof rel, "%s/%s", sub, name);
        o->on_remove(o->ctx, kind, rel, bytes, why);
    }
}

static void report(mlo_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(mlo_env *env, const char *fmt, ...) {
    if (!env)
        return;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mlo__env_report(env, MLO_ERR_STORE, 1, "%s", msg);
}

/* ---- run summaries ----------------------------------------------------------------------- */

typedef struct skv {
    char *k, *v;
} skv;

typedef struct smetric {
    char *key;
    uint64_t count;
    int has_latest;
    double v;
    int64_t step, ts;
    double min, max; /* finite values only; min > max: none */
} smetric;

typedef struct sds {
    char *name, *digest, *source_type, *source, *context;
    int64_t ts;
} sds;

typedef struct summary {
    char *id;
    int started, ended;
    char *exp_name, *run_name, *exp_id, *parent;
    int64_t start, end;
    double status;
    skv *params, *tags;
    size_t np, capp, nt, capt;
    sds *ds;
    size_t nds, capds;
    smetric *m;
    size_t nm, capm;
    size_t *mtab; /* open addressing on key: index + 1 */
    size_t mtabcap;
    int oom;
} summary;

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The summary file of a run: its id when that is a plain name, else a hash
 * (the id inside the file is what counts). */
static void sum_fname(const char *id, char *out, size_t n) {
    size_t l = strlen(id);
    int plain = l > 0 && l <= 128;
    for (size_t i = 0; i < l && plain; i++)
        plain = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
                (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '_' || id[i] == '-';
    if (plain)
        fmt(out, n, "%s.sum", id);
    else
        fmt(out, n, "x%016" PRIx64 ".sum", hash_str(id));
}

static int set_str(summary *s, char **dst, const char *v) {
    char *c = strdup(v ? v : "");
    if (!c) {
        s->oom = 1;
        return -1;
    }
    free(*dst);
    *dst = c;
    return 0;
}

static void kv_set(summary *s, skv **a, size_t *n, size_t *cap, const char *k, const char *v) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*a)[i].k, k)) {
            set_str(s, &(*a)[i].v, v);
            return;
        }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        skv *na = realloc(*a, c * sizeof *na);
        if (!na) {
            s->oom = 1;
            return;
        }
        *a = na;
        *cap = c;
    }
    skv *e = &(*a)[*n];
    e->k = strdup(k);
    e->v = strdup(v ? v : "");
    if (!e->k || !e->v) {
        free(e->k);
        free(e->v);
        s->oom = 1;
        return;
    }
    (*n)++;
}

static smetric *metric_get(summary *s, const char *key) {
    if (s->mtabcap) {
        for (size_t i = hash_str(key) & (s->mtabcap - 1);; i = (i + 1) & (s->mtabcap - 1)) {
            if (!s->mtab[i])
                break;
            if (!strcmp(s->m[s->mtab[i] - 1].key, key))
                return &s->m[s->mtab[i] - 1];
        }
    }
    if ((s->nm + 1) * 2 > s->mtabcap) {
        size_t cap = s->mtabcap ? 2 * s->mtabcap : 16;
        size_t *t = calloc(cap, sizeof *t);
        if (!t) {
            s->oom = 1;
            return NULL;
        }
        for (size_t j = 0; j < s->nm; j++) {
            size_t i = hash_str(s->m[j].key) & (cap - 1);
            while (t[i])
                i = (i + 1) & (cap - 1);
            t[i] = j + 1;
        }
        free(s->mtab);
        s->mtab = t;
        s->mtabcap = cap;
    }
    if (s->nm == s->capm) {
        size_t c = s->capm ? 2 * s->capm : 8;
        smetric *nm = realloc(s->m, c * sizeof *nm);
        if (!nm) {
            s->oom = 1;
            return NULL;
        }
        s->m = nm;
        s->capm = c;
    }
    smetric *m = &s->m[s->nm];
    memset(m, 0, sizeof *m);
    if (!(m->key = strdup(key))) {
        s->oom = 1;
        return NULL;
    }
    m->min = INFINITY;
    m->max = -INFINITY;
    size_t i = hash_str(key) & (s->mtabcap - 1);
    while (s->mtab[i])
        i = (i + 1) & (s->mtabcap - 1);
    s->mtab[i] = ++s->nm;
    return m;
}

/* MLflow's "latest": the greatest (step, timestamp, value). */
static void metric_point(smetric *m, double v, int64_t step, int64_t ts) {
    int later = !m->has_latest || step > m->step || (step == m->step && ts > m->ts) ||
                (step == m->step && ts == m->ts && v > m->v);
    if (later) {
        m->has_latest = 1;
        m->v = v;
        m->step = step;
        m->ts = ts;
    }
}

static void dataset_add(summary *s, const mlo_log_event *e) {
    for (size_t i = 0; i < s->nds; i++)
        if (!strcmp(s->ds[i].name, e->key) && !strcmp(s->ds[i].digest, e->digest))
            return; /* the server keeps the first one of (name, digest) */
    if (s->nds == s->capds) {
        size_t c = s->capds ? 2 * s->capds : 4;
        sds *n = realloc(s->ds, c * sizeof *n);
        if (!n) {
            s->oom = 1;
            return;
        }
        s->ds = n;
        s->capds = c;
    }
    sds *d = &s->ds[s->nds];
    memset(d, 0, sizeof *d);
    d->ts = e->timestamp;
    if (set_str(s, &d->name, e->key) || set_str(s, &d->digest, e->digest) ||
        set_str(s, &d->source_type, e->source_type) || set_str(s, &d->source, e->value) ||
        set_str(s, &d->context, e->context)) {
        free(d->name);
        free(d->digest);
        free(d->source_type);
        free(d->source);
        free(d->context);
        return;
    }
    s->nds++;
}

/* Folds one event into the run's summary, as `mlo ls`/`show` fold a run's
 * events (src/cli/mlo_cli_store.c): the last param/tag value wins, START_RUN
 * and END_RUN set what they carry, each metric keeps its count, finite min
 * and max and MLflow's latest point. */
static void fold(summary *s, const mlo_log_event *e) {
    switch (e->type) {
    case MLO_EV_START_RUN:
        if (e->key)
            set_str(s, &s->exp_name, e->key);
        if (e->value && *e->value)
            set_str(s, &s->run_name, e->value);
        if (e->experiment_id)
            set_str(s, &s->exp_id, e->experiment_id);
        if (e->parent_run_id)
            set_str(s, &s->parent, e->parent_run_id);
        s->start = e->timestamp;
        s->started = 1;
        for (size_t i = 0; i < e->ntags; i++)
            kv_set(s, &s->tags, &s->nt, &s->capt, e->tag_keys[i], e->tag_values[i]);
        break;
    case MLO_REC_PARAM:
        if (e->key)
            kv_set(s, &s->params, &s->np, &s->capp, e->key, e->value);
        break;
    case MLO_REC_TAG:
        if (e->key)
            kv_set(s, &s->tags, &s->nt, &s->capt, e->key, e->value);
        break;
    case MLO_REC_METRIC: {
        smetric *m = e->key ? metric_get(s, e->key) : NULL;
        if (!m)
            break;
        m->count++;
        metric_point(m, e->value_num, e->step, e->timestamp);
        if (isfinite(e->value_num)) {
            m->min = e->value_num < m->min ? e->value_num : m->min;
            m->max = e->value_num > m->max ? e->value_num : m->max;
        }
        break;
    }
    case MLO_EV_METRIC_SUMMARY: {
        smetric *m = e->key ? metric_get(s, e->key) : NULL;
        if (!m)
            break;
        m->count += e->count;
        metric_point(m, e->value_num, e->step, e->timestamp);
        if (e->min <= e->max) {
            m->min = e->min < m->min ? e->min : m->min;
            m->max = e->max > m->max ? e->max : m->max;
        }
        break;
    }
    case MLO_REC_END_RUN:
        s->ended = 1;
        s->status = e->value_num;
        s->end = e->timestamp;
        break;
    case MLO_REC_DATASET:
        if (e->key && e->digest)
            dataset_add(s, e);
        break;
    default:
        break; /* FLUSH, or a type of a newer mlo: nothing a reader shows */
    }
}

static void summary_free(summary *s) {
    if (!s)
        return;
    free(s->id);
    free(s->exp_name);
    free(s->run_name);
    free(s->exp_id);
    free(s->parent);
    for (size_t i = 0; i < s->np; i++) {
        free(s->params[i].k);
        free(s->params[i].v);
    }
    for (size_t i = 0; i < s->nt; i++) {
        free(s->tags[i].k);
        free(s->tags[i].v);
    }
    free(s->params);
    free(s->tags);
    for (size_t i = 0; i < s->nds; i++) {
        free(s->ds[i].name);
        free(s->ds[i].digest);
        free(s->ds[i].source_type);
        free(s->ds[i].source);
        free(s->ds[i].context);
    }
    free(s->ds);
    for (size_t i = 0; i < s->nm; i++)
        free(s->m[i].key);
    free(s->m);
    free(s->mtab);
    free(s);
}

/* Adds every event of the segment file at path to fn; 0, or -1 with a
 * message (damage is read past, with a report). */
static int read_events(const char *path, mlo_env *env,
                       void (*fn)(void *ctx, const mlo_log_event *e), void *ctx, char *err,
                       size_t errlen) {
    mlo_logr *r = mlo__logr_open(path, err, errlen);
    if (!r)
        return -1;
    mlo_log_event e;
    char derr[256];
    int rc;
    while ((rc = mlo__logr_next(r, &e, derr, sizeof derr)) != 0) {
        if (rc == 1) {
            fn(ctx, &e);
            continue;
        }
        if (rc == -2) { /* not damage: the pass stops and is made again later */
            fmt(err, errlen, "%s: %s", path, derr);
            mlo__logr_close(r);
            return -1;
        }
        report(env, "store: %s: %s", path, derr);
        if (mlo__logr_skip_damage(r) != 1)
            break;
    }
    mlo__logr_close(r);
    return 0;
}

/* The summaries a pass touches, by run id. */
typedef struct sumset {
    const char *root;
    mlo_env *env;
    summary **v;
    size_t n, cap;
    size_t *tab;
    size_t tabcap;
    summary *last;
    int oom;
} sumset;

static void load_cb(void *ctx, const mlo_log_event *e) {
    summary *s = ctx;
    if (!strcmp(e->run_id, s->id))
        fold(s, e);
}

static summary *sumset_get(sumset *x, const char *id) {
    if (x->last && !strcmp(x->last->id, id))
        return x->last;
    if (x->tabcap)
        for (size_t i = hash_str(id) & (x->tabcap - 1);; i = (i + 1) & (x->tabcap - 1)) {
            if (!x->tab[i])
                break;
            if (!strcmp(x->v[x->tab[i] - 1]->id, id))
                return x->last = x->v[x->tab[i] - 1];
        }
    if ((x->n + 1) * 2 > x->tabcap) {
        size_t cap = x->tabcap ? 2 * x->tabcap : 64;
        size_t *t = calloc(cap, sizeof *t);
        if (!t)
            goto oom;
        for (size_t j = 0; j < x->n; j++) {
            size_t i = hash_str(x->v[j]->id) & (cap - 1);
            while (t[i])
                i = (i + 1) & (cap - 1);
            t[i] = j + 1;
        }
        free(x->tab);
        x->tab = t;
        x->tabcap = cap;
    }
    if (x->n == x->cap) {
        size_t c = x->cap ? 2 * x->cap : 16;
        summary **nv = realloc(x->v, c * sizeof *nv);
        if (!nv)
            goto oom;
        x->v = nv;
        x->cap = c;
    }
    summary *s = calloc(1, sizeof *s);
    if (!s || !(s->id = strdup(id))) {
        free(s);
        goto oom;
    }
    /* what earlier passes folded */
    char fname[300], path[4096], err[256];
    sum_fname(id, fname, sizeof fname);
    fmt(path, sizeof path, "%s/%s/%s", x->root, SUM_SUB, fname);
    if (access(path, F_OK) == 0 && read_events(path, x->env, load_cb, s, err, sizeof err) != 0)
        report(x->env, "store: run summary %s unreadable (%s); started again", path, err);
    x->v[x->n] = s;
    size_t i = hash_str(id) & (x->tabcap - 1);
    while (x->tab[i])
        i = (i + 1) & (x->tabcap - 1);
    x->tab[i] = ++x->n;
    return x->last = s;
oom:
    x->oom = 1;
    return NULL;
}

static void fold_cb(void *ctx, const mlo_log_event *e) {
    sumset *x = ctx;
    summary *s = sumset_get(x, e->run_id);
    if (s)
        fold(s, e);
}

static void sumset_free(sumset *x) {
    for (size_t i = 0; i < x->n; i++)
        summary_free(x->v[i]);
    free(x->v);
    free(x->tab);
}

static int add_ev(mlo_logw *w, const mlo_log_event *e, size_t *pending) {
    if (mlo__logw_add(w, e) != 0)
        return -1;
    mlo_log_off end;
    if (++*pending >= COMMIT_EVERY) {
        *pending = 0;
        return mlo__logw_commit(w, 0, &end);
    }
    return 0;
}

/* Writes s as the segment-format file at path (created; fsync'd when
 * sync). */
static int summary_write(const summary *s, const char *path, int sync, char *err, size_t errlen) {
    unlink(path);
    mlo_logw *w = mlo__logw_create(path, err, errlen);
    if (!w)
        return -1;
    size_t pending = 0;
    int rc = 0;
    if (s->started) {
        mlo_log_event e = {.type = MLO_EV_START_RUN,
                           .run_id = s->id,
                           .key = s->exp_name,
                           .value = s->run_name,
                           .timestamp = s->start,
                           .experiment_id = s->exp_id,
                           .parent_run_id = s->parent};
        rc |= add_ev(w, &e, &pending);
    }
    for (size_t i = 0; i < s->np && !rc; i++) {
        mlo_log_event e = {
            .type = MLO_REC_PARAM, .run_id = s->id, .key = s->params[i].k, .value = s->params[i].v};
        rc |= add_ev(w, &e, &pending);
    }
    for (size_t i = 0; i < s->nt && !rc; i++) {
        mlo_log_event e = {
            .type = MLO_REC_TAG, .run_id = s->id, .key = s->tags[i].k, .value = s->tags[i].v};
        rc |= add_ev(w, &e, &pending);
    }
    for (size_t i = 0; i < s->nds && !rc; i++) {
        const sds *d = &s->ds[i];
        mlo_log_event e = {.type = MLO_REC_DATASET,
                           .run_id = s->id,
                           .key = d->name,
                           .value = d->source,
                           .timestamp = d->ts,
                           .digest = d->digest,
                           .source_type = d->source_type,
                           .context = d->context};
        rc |= add_ev(w, &e, &pending);
    }
    for (size_t i = 0; i < s->nm && !rc; i++) {
        const smetric *m = &s->m[i];
        mlo_log_event e = {.type = MLO_EV_METRIC_SUMMARY,
                           .run_id = s->id,
                           .key = m->key,
                           .value_num = m->v,
                           .timestamp = m->ts,
                           .step = m->step,
                           .count = m->count,
                           .min = m->min,
                           .max = m->max};
        rc |= add_ev(w, &e, &pending);
    }
    if (s->ended && !rc) {
        mlo_log_event e = {
            .type = MLO_REC_END_RUN, .run_id = s->id, .value_num = s->status, .timestamp = s->end};
        rc |= add_ev(w, &e, &pending);
    }
    mlo_log_off end;
    if (rc || mlo__logw_commit(w, sync, &end) != 0) {
        fmt(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
    mlo__logw_close(w);
    if (rc)
        unlink(path);
    return rc;
}

/* ---- the journal of a pass ------------------------------------------------------------------ */

/* Applies the journal: "sum <file>" renames summaries/<file>.tmp into
 * place, "seg <name>" removes the segment and its ack.  Then removes it. */
static void journal_redo(const char *root) {
    char p[4096];
    fmt(p, sizeof p, "%s/%s/%s", root, SUM_SUB, JOURNAL);
    char *t = mlo__fs_read_file(p, NULL);
    if (!t)
        return;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        char from[4400], to[4400];
        if (!strncmp(line, "sum ", 4) && !strchr(line + 4, '/')) {
            fmt(to, sizeof to, "%s/%s/%s", root, SUM_SUB, line + 4);
            fmt(from, sizeof from, "%s.tmp", to);
            rename(from, to); /* ENOENT: renamed already */
        } else if (!strncmp(line, "seg ", 4) && !strchr(line + 4, '/') &&
                   has_suffix(line + 4, ".seg")) {
            unlink_in(root, "segments", line + 4);
            size_t l = strlen(line + 4) - 4;
            fmt(from, sizeof from, "%.*s.ack", (int)l, line + 4);
            unlink_in(root, "acks", from);
        }
    }
    free(t);
    fmt(p, sizeof p, "%s/%s", root, SUM_SUB);
    mlo__fs_fsync_dir(p);
    fmt(p, sizeof p, "%s/segments", root);
    mlo__fs_fsync_dir(p);
    fmt(p, sizeof p, "%s/%s/%s", root, SUM_SUB, JOURNAL);
    unlink(p);
}

static int journal_write(const char *root, const mlo_buf *b, int sync) {
    char p[4096], tmp[4200];
    fmt(p, sizeof p, "%s/%s/%s", root, SUM_SUB, JOURNAL);
    fmt(tmp, sizeof tmp, "%s.new", p);
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = mlo__fs_write_all(fd, b->data ? b->data : "", b->len);
    if (rc == 0 && sync && fsync(fd) != 0)
        rc = -1;
    close(fd);
    if (rc == 0 && rename(tmp, p) != 0)
        rc = -1;
    if (rc != 0) {
        unlink(tmp);
        return -1;
    }
    fmt(p, sizeof p, "%s/%s", root, SUM_SUB);
    if (sync)
        mlo__fs_fsync_dir(p);
    return 0;
}

/* Takes the store's retention lock (and redoes an interrupted pass).  The
 * fd, -2 when another process holds it, -1 on an error. */
static int lock_store(const char *root) {
    char p[4096];
    fmt(p, sizeof p, "%s/%s", root, SUM_SUB);
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return -1;
    fmt(p, sizeof p, "%s/%s/.lock", root, SUM_SUB);
    int fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -2;
    }
    journal_redo(root);
    names tmps;
    if (list_names(root, SUM_SUB, ".tmp", &tmps) == 0)
        for (size_t i = 0; i < tmps.n; i++)
            unlink_in(root, SUM_SUB, tmps.v[i]); /* a pass that died before its journal */
    names_free(&tmps);
    return fd;
}

/* Folds the segments marked in segs[] into their runs' summaries, writes
 * them and the journal and renames them into place; the caller then removes
 * the segments and the journal.  0, or -1 (nothing changed) with err. */
typedef struct seg {
    char *name;
    char procid[48];
    uint32_t n;
    uint64_t size, ack;
    int64_t ack_ms;
    int has_ack, acked, closed, remove, empty;
    const char *why;
} seg;

static int fold_and_journal(const char *root, mlo_env *env, seg *segs, size_t n, int sync,
                            size_t *nsum, char *err, size_t errlen) {
    sumset x = {.root = root, .env = env};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!segs[i].remove || segs[i].empty)
            continue;
        char p[4400];
        fmt(p, sizeof p, "%s/segments/%s", root, segs[i].name);
        char e2[256];
        if (read_events(p, env, fold_cb, &x, e2, sizeof e2) != 0) {
            fmt(err, errlen, "cannot read %s: %s", p, e2);
            rc = -1;
        }
        if (x.oom) {
            fmt(err, errlen, "out of memory folding %s", p);
            rc = -1;
        }
    }
    for (size_t i = 0; i < x.n && !rc; i++)
        if (x.v[i]->oom) {
            fmt(err, errlen, "out of memory folding run %s", x.v[i]->id);
            rc = -1;
        }
    mlo_buf j = {0};
    for (size_t i = 0; i < x.n && !rc; i++) {
        char fname[300], p[4400];
        sum_fname(x.v[i]->id, fname, sizeof fname);
        fmt(p, sizeof p, "%s/%s/%s.tmp", root, SUM_SUB, fname);
        if (summary_write(x.v[i], p, sync, err, errlen) != 0 ||
            mlo__buf_printf(&j, "sum %s\n", fname) != 0)
            rc = -1;
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (segs[i].remove && mlo__buf_printf(&j, "seg %s\n", segs[i].name) != 0)
            rc = -1;
    if (!rc && journal_write(root, &j, sync) != 0) {
        fmt(err, errlen, "cannot write %s/%s/%s: %s", root, SUM_SUB, JOURNAL, strerror(errno));
        rc = -1;
    }
    if (rc) {
        for (size_t i = 0; i < x.n; i++) {
            char fname[300];
            sum_fname(x.v[i]->id, fname, sizeof fname);
            char t[320];
            fmt(t, sizeof t, "%s.tmp", fname);
            unlink_in(root, SUM_SUB, t);
        }
    } else {
        for (size_t i = 0; i < x.n; i++) {
            char fname[300], from[4400], to[4400];
            sum_fname(x.v[i]->id, fname, sizeof fname);
            fmt(to, sizeof to, "%s/%s/%s", root, SUM_SUB, fname);
            fmt(from, sizeof from, "%s.tmp", to);
            rename(from, to);
        }
        char p[4096];
        fmt(p, sizeof p, "%s/%s", root, SUM_SUB);
        if (sync)
            mlo__fs_fsync_dir(p);
        *nsum = x.n;
    }
    mlo__buf_free(&j);
    sumset_free(&x);
    return rc;
}

/* ---- a pass ------------------------------------------------------------------------------ */

static int by_ack_time(const void *a, const void *b) {
    const seg *x = *(seg *const *)a, *y = *(seg *const *)b;
    if (x->ack_ms != y->ack_ms)
        return x->ack_ms < y->ack_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const char *ago(int64_t ms, char *buf, size_t n) {
    double s = (double)ms / 1000.0;
    if (s < 120)
        fmt(buf, n, "%.0f s", s);
    else if (s < 7200)
        fmt(buf, n, "%.0f min", s / 60);
    else if (s < 172800)
        fmt(buf, n, "%.1f h", s / 3600);
    else
        fmt(buf, n, "%.1f days", s / 86400);
    return buf;
}

/* Reads the segments of the store into *out (sorted by name) and
 * classifies them (closed, acknowledged).  acks: the ack files, listed
 * before the segments. */
static int scan_segments(mlo_store *st, const char *root, seg **out, size_t *nout) {
    names sn;
    *out = NULL;
    *nout = 0;
    if (list_names(root, "segments", ".seg", &sn) != 0)
        return -1;
    seg *segs = calloc(sn.n ? sn.n : 1, sizeof *segs);
    if (!segs) {
        names_free(&sn);
        return -1;
    }
    size_t n = 0;
    const char *own = mlo__store_procid(st);
    for (size_t i = 0; i < sn.n; i++) {
        seg *g = &segs[n];
        /* a name without "<procid>-<n>" is no writer's (tests, copies):
         * procid "" */
        if (split_procid(sn.v[i], g->procid, &g->n) != 0 || !g->n) {
            g->procid[0] = 0;
            g->n = 0;
        }
        char p[4400];
        fmt(p, sizeof p, "%s/segments/%s", root, sn.v[i]);
        struct stat sb;
        if (stat(p, &sb) != 0)
            continue; /* gone meanwhile */
        g->name = sn.v[i];
        sn.v[i] = NULL;
        g->size = (uint64_t)sb.st_size;
        char an[300];
        fmt(an, sizeof an, "%.*s.ack", (int)(strlen(g->name) - 4), g->name);
        g->has_ack = mlo__store_ack_read(st, an, &g->ack, &g->ack_ms);
        g->empty = g->size <= SEG_EMPTY_BYTES;
        g->acked = g->empty || (g->has_ack && g->ack >= g->size);
        n++;
    }
    /* closed: a later segment of the same process exists (names sort by
     * procid, then by the zero-padded n), or the process is dead and ours */
    for (size_t i = 0; i < n; i++) {
        int later = i + 1 < n && !strcmp(segs[i + 1].procid, segs[i].procid);
        segs[i].closed = !segs[i].procid[0] || later ||
                         (mlo__store_owns(st, segs[i].procid) && strcmp(segs[i].procid, own) != 0);
    }
    names_free(&sn);
    *out = segs;
    *nout = n;
    return 0;
}

static void segs_free(seg *segs, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(segs[i].name);
    free(segs);
}

/* Artifacts of dead processes this handle claimed: blobs whose manifest is
 * gone, temp files.  Pending bytes (blobs with a manifest) into *pending. */
static void artifact_leftovers(mlo_store *st, const char *root, const mlo_gc_opts *o,
                               mlo_gc_result *res, uint64_t *pending) {
    names an;
    if (list_names(root, MLO_ARTIFACTS_SUB, "", &an) != 0)
        return;
    const char *own = mlo__store_procid(st);
    for (size_t i = 0; i < an.n; i++) {
        const char *nm = an.v[i];
        char procid[48], base[300];
        if (split_procid(nm, procid, NULL) != 0)
            continue;
        int blob = has_suffix(nm, ".blob"), tmp = has_suffix(nm, ".tmp");
        if (blob) {
            fmt(base, sizeof base, "%.*s", (int)(strlen(nm) - 5), nm);
            char art[320], failed[320];
            fmt(art, sizeof art, "%s.art", base);
            fmt(failed, sizeof failed, "%s.failed", base);
            if (names_has(&an, art) || names_has(&an, failed)) {
                *pending += file_size(root, MLO_ARTIFACTS_SUB, nm);
                continue;
            }
        }
        if ((!blob && !tmp) || !mlo__store_owns(st, procid) || !strcmp(procid, own))
            continue;
        uint64_t b = file_size(root, MLO_ARTIFACTS_SUB, nm);
        if (!o->dry_run && unlink_in(root, MLO_ARTIFACTS_SUB, nm) != 0)
            continue;
        say(o, res, blob ? "artifact" : "leftover", MLO_ARTIFACTS_SUB, nm, b,
            blob ? "uploaded (its manifest is gone)" : "a temp file of a dead process");
    }
    names_free(&an);
}

/* acks/<procid>.lock and .target of dead processes this handle claimed once
 * nothing else of them is left. */
static void procid_leftovers(mlo_store *st, const char *root, const mlo_gc_opts *o,
                             mlo_gc_result *res) {
    names locks, segs, acks, arts, rings;
    if (list_names(root, "acks", ".lock", &locks) != 0)
        return;
    list_names(root, "segments", "", &segs);
    list_names(root, "acks", ".ack", &acks);
    list_names(root, MLO_ARTIFACTS_SUB, "", &arts);
    list_names(root, "rings", "", &rings);
    const char *own = mlo__store_procid(st);
    for (size_t i = 0; i < locks.n; i++) {
        char procid[48];
        size_t l = strlen(locks.v[i]) - 5;
        if (l >= sizeof procid)
            continue;
        memcpy(procid, locks.v[i], l);
        procid[l] = 0;
        if (!mlo__store_owns(st, procid) || !strcmp(procid, own))
            continue;
        int left = 0;
        names *all[] = {&segs, &acks, &arts, &rings};
        for (size_t k = 0; k < 4 && !left; k++)
            for (size_t j = 0; j < all[k]->n && !left; j++)
                left = !strncmp(all[k]->v[j], procid, l) &&
                       (all[k]->v[j][l] == '-' || all[k]->v[j][l] == '.');
        if (left)
            continue;
        char target[80];
        fmt(target, sizeof target, "%s.target", procid);
        uint64_t b = file_size(root, "acks", target) + file_size(root, "acks", locks.v[i]);
        /* the lock file goes while we hold its flock, last */
        if (!o->dry_run &&
            (unlink_in(root, "acks", target) != 0 || unlink_in(root, "acks", locks.v[i]) != 0))
            continue;
        say(o, res, "leftover", "acks", locks.v[i], b,
            "lock and target of a dead process with nothing left");
    }
    names_free(&locks);
    names_free(&segs);
    names_free(&acks);
    names_free(&arts);
    names_free(&rings);
}

int mlo__retention_pass(mlo_store *st, mlo_env *env, const mlo_gc_opts *o, mlo_gc_result *res,
                        char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    if (err && errlen)
        err[0] = 0;
    const char *root = mlo__store_dir(st);
    /* the store's fsync policy: MLO_FSYNC_NONE survives a process crash
     * (the journal still orders everything), not a power loss */
    int sync = mlo__store_fsync_policy(st) != MLO_FSYNC_NONE;
    int lockfd = -1;
    if (!o->dry_run) {
        lockfd = lock_store(root);
        if (lockfd == -2) {
            res->busy = 1;
            return MLO_OK;
        }
        if (lockfd < 0) {
            mlo__buf_errf(err, errlen, "cannot lock %s/%s: %s", root, SUM_SUB, strerror(errno));
            return MLO_ERR_STORE;
        }
    }
    int st_rc = MLO_OK;
    names acks;
    if (list_names(root, "acks", ".ack", &acks) != 0) {
        mlo__buf_errf(err, errlen, "cannot list %s/acks: %s", root, strerror(errno));
        if (lockfd >= 0)
            close(lockfd);
        return MLO_ERR_STORE;
    }
    seg *segs;
    size_t n;
    if (scan_segments(st, root, &segs, &n) != 0) {
        mlo__buf_errf(err, errlen, "cannot list %s/segments: %s", root, strerror(errno));
        names_free(&acks);
        if (lockfd >= 0)
            close(lockfd);
        return MLO_ERR_STORE;
    }

    /* choose */
    uint64_t total = store_bytes(root), freed = 0, unsent = 0;
    seg **cand = calloc(n ? n : 1, sizeof *cand);
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        seg *g = &segs[i];
        if (!g->acked) {
            unsent += g->size - (g->has_ack && g->ack < g->size ? g->ack : 0);
            continue;
        }
        if (!g->closed)
            continue;
        if (g->empty) {
            if (!o->remove_empty || !g->procid[0] || !mlo__store_owns(st, g->procid))
                continue;
            g->remove = 1;
            g->why = "empty";
        } else if (o->retention_ms >= 0 && o->now_ms - g->ack_ms >= o->retention_ms) {
            g->remove = 1;
            g->why = "retention";
        } else if (cand) {
            cand[nc++] = g;
            continue;
        }
        freed += g->size + (g->has_ack ? 64 : 0);
    }
    if (o->max_bytes > 0 && total - (freed < total ? freed : total) > (uint64_t)o->max_bytes &&
        nc) {
        qsort(cand, nc, sizeof *cand, by_ack_time);
        for (size_t i = 0; i < nc && total - freed > (uint64_t)o->max_bytes; i++) {
            cand[i]->remove = 1;
            cand[i]->why = "cap";
            freed += cand[i]->size + (cand[i]->has_ack ? 64 : 0);
        }
    }
    free(cand);

    /* fold, journal, remove */
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= segs[i].remove && !segs[i].empty;
    int journaled = 0;
    if (any && !o->dry_run) {
        char ferr[600] = "";
        if (fold_and_journal(root, env, segs, n, sync, &res->summaries, ferr, sizeof ferr) != 0) {
            report(env, "store %s: acknowledged segments kept: %s", root, ferr);
            mlo__buf_errf(err, errlen, "%s", ferr);
            st_rc = MLO_ERR_STORE;
            for (size_t i = 0; i < n; i++)
                if (!segs[i].empty)
                    segs[i].remove = 0;
        } else {
            journaled = 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        seg *g = &segs[i];
        if (!g->remove)
            continue;
        char an[300];
        fmt(an, sizeof an, "%.*s.ack", (int)(strlen(g->name) - 4), g->name);
        uint64_t ab = g->has_ack ? file_size(root, "acks", an) : 0;
        if (!o->dry_run &&
            (unlink_in(root, "segments", g->name) != 0 || unlink_in(root, "acks", an) != 0)) {
            report(env, "store %s: cannot remove segments/%s: %s", root, g->name, strerror(errno));
            continue;
        }
        char why[160], a[40];
        if (!strcmp(g->why, "empty"))
            fmt(why, sizeof why, "holds no event");
        else
            fmt(why, sizeof why, "%s: acknowledged %s ago",
                !strcmp(g->why, "cap") ? "over the size cap" : "retention",
                ago(o->now_ms - g->ack_ms, a, sizeof a));
        say(o, res, "segment", "segments", g->name, g->size + ab, why);
    }
    if (journaled) {
        char p[4096];
        fmt(p, sizeof p, "%s/segments", root);
        if (sync)
            mlo__fs_fsync_dir(p);
        fmt(p, sizeof p, "%s/%s/%s", root, SUM_SUB, JOURNAL);
        unlink(p);
    }

    /* leftovers: acks without their segment (listed before the segments,
     * so a segment created since cannot be missed) */
    names sn;
    if (list_names(root, "segments", ".seg", &sn) == 0) {
        for (size_t i = 0; i < acks.n; i++) {
            char sname[300];
            fmt(sname, sizeof sname, "%.*s.seg", (int)(strlen(acks.v[i]) - 4), acks.v[i]);
            if (names_has(&sn, sname) || !exists(root, "acks", acks.v[i]))
                continue;
            int removed_now = 0;
            for (size_t k = 0; k < n && !removed_now; k++)
                removed_now = segs[k].remove && !strcmp(segs[k].name, sname);
            if (removed_now)
                continue;
            uint64_t b = file_size(root, "acks", acks.v[i]);
            if (!o->dry_run && unlink_in(root, "acks", acks.v[i]) != 0)
                continue;
            say(o, res, "ack", "acks", acks.v[i], b, "its segment is gone");
        }
        names_free(&sn);
    }
    uint64_t pending = 0;
    artifact_leftovers(st, root, o, res, &pending);
    procid_leftovers(st, root, o, res);

    res->store_bytes =
        o->dry_run ? (total > res->bytes ? total - res->bytes : 0) : store_bytes(root);
    res->unsent_bytes = unsent + pending;
    segs_free(segs, n);
    names_free(&acks);
    if (lockfd >= 0)
        close(lockfd);
    return st_rc;
}

/* ---- the running client ------------------------------------------------------------------ */

static void human(uint64_t b, char *out, size_t n) {
    if (b >= (1ull << 30))
        fmt(out, n, "%.1f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        fmt(out, n, "%.1f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024)
        fmt(out, n, "%.1f KiB", (double)b / 1024.0);
    else
        fmt(out, n, "%llu bytes", (unsigned long long)b);
}

void mlo__retention_tick(mlo_retention *t, mlo_store *s, mlo_env *env) {
    int64_t now = mlo__env_now_ms(env);
    if (now < t->next_ms)
        return;
    t->next_ms = now + PASS_EVERY_MS;
    const mlo_config *cfg = env->cfg;
    mlo_gc_opts o = {
        .now_ms = now, .retention_ms = cfg->store_retention_ms, .max_bytes = cfg->store_max_bytes};
    mlo_gc_result r;
    char err[600];
    if (mlo__retention_pass(s, env, &o, &r, err, sizeof err) != MLO_OK || r.busy)
        return;
    if (cfg->store_max_bytes > 0 && r.store_bytes > (uint64_t)cfg->store_max_bytes &&
        (!t->reported_ms || now - t->reported_ms >= REPORT_EVERY_MS)) {
        t->reported_ms = now;
        char a[32], b[32], c[32];
        human(r.store_bytes, a, sizeof a);
        human((uint64_t)cfg->store_max_bytes, b, sizeof b);
        human(r.unsent_bytes, c, sizeof c);
        mlo__env_report(env, MLO_ERR_STORE, 1,
                        "store %s holds %s, over MLO_STORE_MAX_BYTES (%s): %s of it the server "
                        "has not acknowledged yet, which is never removed; logging goes on",
                        mlo__store_dir(s), a, b, c);
    }
}

/* ---- mlo rm ------------------------------------------------------------------------------ */

typedef struct rm_scan {
    const char *const *ids;
    size_t nids;
    uint64_t hits, total;
} rm_scan;

static int is_removed(const rm_scan *x, const char *id) {
    for (size_t i = 0; i < x->nids; i++)
        if (!strcmp(x->ids[i], id))
            return 1;
    return 0;
}

static void rm_count_cb(void *ctx, const mlo_log_event *e) {
    rm_scan *x = ctx;
    x->total++;
    if (is_removed(x, e->run_id))
        x->hits++;
}

/* Rewrites the segment at path without the removed runs' events, block by
 * block, into path.rm.tmp, then renames it over.  0 or -1 (err). */
static int rewrite_without(const char *path, const rm_scan *x, uint64_t *new_size, char *err,
                           size_t errlen) {
    char tmp[4400];
    fmt(tmp, sizeof tmp, "%s.rm.tmp", path);
    unlink(tmp);
    mlo_logr *r = mlo__logr_open(path, err, errlen);
    if (!r)
        return -1;
    mlo_logw *w = mlo__logw_create(tmp, err, errlen);
    if (!w) {
        mlo__logr_close(r);
        return -1;
    }
    mlo_log_event e;
    char derr[256];
    int rc, bad = 0;
    mlo_log_off end = 0;
    while ((rc = mlo__logr_next(r, &e, derr, sizeof derr)) != 0) {
        if (rc == -2) {
            bad = 1;
            errno = ENOMEM;
            break;
        }
        if (rc == -1) {
            if (mlo__logr_skip_damage(r) != 1)
                break;
            continue;
        }
        if (!is_removed(x, e.run_id) && mlo__logw_add(w, &e) != 0) {
            bad = 1;
            break;
        }
        if (mlo__logr_at_block_end(r) && mlo__logw_pending(w) &&
            mlo__logw_commit(w, 0, &end) != 0) {
            bad = 1;
            break;
        }
    }
    mlo__logr_close(r);
    if (bad || mlo__logw_commit(w, 1, &end) != 0) {
        fmt(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        mlo__logw_close(w);
        unlink(tmp);
        return -1;
    }
    *new_size = mlo__logw_size(w);
    mlo__logw_close(w);
    if (rename(tmp, path) != 0) {
        fmt(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Sets the ack file of a rewritten, fully acknowledged segment to its new
 * size, keeping the URI and time. */
static void ack_resize(const char *root, const char *ack_name, uint64_t size) {
    char p[4400], tmp[4500];
    fmt(p, sizeof p, "%s/acks/%s", root, ack_name);
    char *t = mlo__fs_read_file(p, NULL);
    if (!t)
        return;
    unsigned long long off;
    char uri[2048] = "";
    long long ms = 0;
    int k = sscanf(t, "%20llu %2047s %20lld", &off, uri, &ms);
    free(t);
    if (k < 1)
        return;
    char line[2200];
    if (k == 3)
        fmt(line, sizeof line, "%020llu %s %020lld\n", (unsigned long long)size, uri, ms);
    else
        fmt(line, sizeof line, "%020llu %s\n", (unsigned long long)size, uri);
    size_t len = strlen(line);
    fmt(tmp, sizeof tmp, "%s.tmp", p);
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int ok = mlo__fs_write_all(fd, line, len) == 0 && fdatasync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, p) != 0)
        unlink(tmp);
}

/* Whether the artifact manifest <root>/artifacts/<name> (readable) belongs
 * to one of the runs ids[0..nids) (local ids). */
static int manifest_of_runs(const char *root, const char *name, const char *const *ids,
                            size_t nids) {
    char p[4400];
    fmt(p, sizeof p, "%s/%s/%s", root, MLO_ARTIFACTS_SUB, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    mlo_manifest m;
    int ok = mlo__manifest_read_fd(fd, &m) == 0;
    close(fd);
    if (!ok)
        return 0;
    int mine = 0;
    for (size_t k = 0; k < nids && !mine; k++)
        mine = !strcmp(m.lid, ids[k]);
    mlo__manifest_free(&m);
    return mine;
}

int mlo__retention_rm(mlo_store *st, mlo_env *env, const char *const *ids, size_t nids, int dry_run,
                      mlo_gc_fn on_remove, void *ctx, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = 0;
    const char *root = mlo__store_dir(st);
    mlo_gc_opts o = {.dry_run = dry_run, .on_remove = on_remove, .ctx = ctx};
    mlo_gc_result res = {0};
    int lockfd = -1;
    if (!dry_run) {
        lockfd = lock_store(root);
        if (lockfd < 0) {
            mlo__buf_errf(err, errlen,
                          lockfd == -2 ? "another process is cleaning the store up; try again"
                                       : "cannot lock the store's summaries: %s",
                          strerror(errno));
            return MLO_ERR_STORE;
        }
    }
    int rc = MLO_OK;
    seg *segs = NULL;
    size_t n = 0;
    names arts = {0};
    uint64_t *hits = NULL, *totals = NULL;
    if (scan_segments(st, root, &segs, &n) != 0 || list_names(root, MLO_ARTIFACTS_SUB, "", &arts)) {
        mlo__buf_errf(err, errlen, "cannot list the store %s: %s", root, strerror(errno));
        rc = MLO_ERR_STORE;
        goto out;
    }
    hits = calloc(n ? n : 1, sizeof *hits);
    totals = calloc(n ? n : 1, sizeof *totals);
    if (!hits || !totals) {
        rc = MLO_ERR_NO_MEMORY;
        goto out;
    }
    /* 1. check everything before changing anything */
    for (size_t i = 0; i < n; i++) {
        rm_scan x = {ids, nids, 0, 0};
        char p[4400], e2[256];
        fmt(p, sizeof p, "%s/segments/%s", root, segs[i].name);
        if (!segs[i].empty && read_events(p, env, rm_count_cb, &x, e2, sizeof e2) != 0) {
            mlo__buf_errf(err, errlen, "cannot read %s: %s", p, e2);
            rc = MLO_ERR_STORE;
            goto out;
        }
        hits[i] = x.hits;
        totals[i] = x.total;
        if (!x.hits)
            continue;
        if (segs[i].procid[0] && !mlo__store_owns(st, segs[i].procid)) {
            mlo__buf_errf(err, errlen,
                          "segments/%s belongs to a process that is still running (or to "
                          "another mlo gc/rm/sync): stop it, then try again",
                          segs[i].name);
            rc = MLO_ERR_STORE;
            goto out;
        }
        if (x.hits < x.total && segs[i].has_ack && segs[i].ack > 0 && segs[i].ack < segs[i].size) {
            mlo__buf_errf(err, errlen,
                          "segments/%s also holds events of other runs that are not all "
                          "acknowledged by the server: run `mlo sync` first",
                          segs[i].name);
            rc = MLO_ERR_STORE;
            goto out;
        }
    }
    for (size_t i = 0; i < arts.n; i++) {
        if (!has_suffix(arts.v[i], ".art") && !has_suffix(arts.v[i], ".failed"))
            continue;
        int mine = manifest_of_runs(root, arts.v[i], ids, nids);
        char procid[48];
        if (mine && (split_procid(arts.v[i], procid, NULL) != 0 || !mlo__store_owns(st, procid))) {
            mlo__buf_errf(err, errlen,
                          "artifacts/%s belongs to a process that is still running: stop it, "
                          "then try again",
                          arts.v[i]);
            rc = MLO_ERR_STORE;
            goto out;
        }
    }

    /* 2. act */
    for (size_t i = 0; i < n; i++) {
        if (!hits[i])
            continue;
        seg *g = &segs[i];
        char an[300], p[4400], e2[600];
        fmt(an, sizeof an, "%.*s.ack", (int)(strlen(g->name) - 4), g->name);
        fmt(p, sizeof p, "%s/segments/%s", root, g->name);
        if (hits[i] == totals[i]) {
            uint64_t b = g->size + file_size(root, "acks", an);
            if (!dry_run && (unlink_in(root, "segments", g->name) || unlink_in(root, "acks", an))) {
                mlo__buf_errf(err, errlen, "cannot remove %s: %s", p, strerror(errno));
                rc = MLO_ERR_STORE;
                goto out;
            }
            say(&o, &res, "segment", "segments", g->name, b, "holds only removed runs");
            continue;
        }
        uint64_t ns = g->size;
        rm_scan x = {ids, nids, 0, 0};
        if (!dry_run) {
            if (rewrite_without(p, &x, &ns, e2, sizeof e2) != 0) {
                mlo__buf_errf(err, errlen, "%s", e2);
                rc = MLO_ERR_STORE;
                goto out;
            }
            if (g->has_ack && g->ack >= g->size)
                ack_resize(root, an, ns);
        }
        char why[120];
        fmt(why, sizeof why, "%" PRIu64 " of its %" PRIu64 " events removed; rewritten", hits[i],
            totals[i]);
        say(&o, &res, "events", "segments", g->name, dry_run ? 0 : g->size - ns, why);
    }
    if (!dry_run) {
        char p[4096];
        fmt(p, sizeof p, "%s/segments", root);
        mlo__fs_fsync_dir(p);
    }
    for (size_t k = 0; k < nids; k++) {
        char fname[300];
        sum_fname(ids[k], fname, sizeof fname);
        if (!exists(root, SUM_SUB, fname))
            continue;
        uint64_t b = file_size(root, SUM_SUB, fname);
        if (!dry_run && unlink_in(root, SUM_SUB, fname) != 0)
            continue;
        say(&o, &res, "summary", SUM_SUB, fname, b, "summary of a removed run");
    }
    for (size_t i = 0; i < arts.n; i++) {
        int art = has_suffix(arts.v[i], ".art"), failed = has_suffix(arts.v[i], ".failed");
        if (!art && !failed)
            continue;
        int mine = manifest_of_runs(root, arts.v[i], ids, nids);
        if (!mine)
            continue;
        char blob[320];
        fmt(blob, sizeof blob, "%.*s.blob", (int)(strlen(arts.v[i]) - (art ? 4 : 7)), arts.v[i]);
        uint64_t b = file_size(root, MLO_ARTIFACTS_SUB, arts.v[i]) +
                     file_size(root, MLO_ARTIFACTS_SUB, blob);
        if (!dry_run && (unlink_in(root, MLO_ARTIFACTS_SUB, arts.v[i]) ||
                         unlink_in(root, MLO_ARTIFACTS_SUB, blob)))
            continue;
        say(&o, &res, "artifact", MLO_ARTIFACTS_SUB, arts.v[i], b,
            art ? "staged artifact of a removed run, never uploaded"
                : "artifact of a removed run the server refused");
    }
out:
    free(hits);
    free(totals);
    names_free(&arts);
    segs_free(segs, n);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}
