/*
 * mlo_fake_transport.c - a scripted transport over a small MLflow server in
 * memory, and a virtual clock (mlo_fake_transport.h).
 */
#define _GNU_SOURCE
#include "mlo_fake_transport.h"

#include "mlo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the virtual clock ---------------------------------------------------- */

static int64_t vc_mono(void *ctx) {
    fake_clock *fc = ctx;
    return atomic_load(&fc->mono_ns);
}
static int64_t vc_real(void *ctx) {
    fake_clock *fc = ctx;
    /* a fixed epoch in 2026 plus the virtual monotonic time */
    return 1780000000000LL + atomic_load(&fc->mono_ns) / 1000000;
}
static void vc_sleep(void *ctx, int64_t ns) {
    fake_clock *fc = ctx;
    if (ns <= 0)
        return;
    atomic_fetch_add(&fc->mono_ns, ns);
    atomic_fetch_add(&fc->slept_ns, ns);
}

void fake_clock_init(fake_clock *fc) {
    atomic_init(&fc->mono_ns, 1000 * MLO_NS_PER_S);
    atomic_init(&fc->slept_ns, 0);
    fc->clock = (mlo_clock){vc_mono, vc_real, vc_sleep, fc};
}

/* ---- the server's state ------------------------------------------------- */

typedef struct kv {
    char *k, *v;
} kv;

typedef struct point {
    char *key;
    double value;
    int64_t ts, step;
} point;

typedef struct run {
    char id[33];
    char exp[16];
    char status[16];
    int deleted;
    size_t received; /* metric points received, duplicates included */
    kv *tags, *params;
    size_t ntags, nparams;
    point *pts;
    size_t npts, cappts;
    size_t *pt_tab; /* open addressing on (key, ts, step): index + 1 */
    size_t pt_tabcap;
    kv *counts; /* points per key, the count as a decimal string's pointer */
    size_t *count_n;
    size_t ncounts;
    size_t inputs;
} run;

typedef struct delay {
    char path[128];
    int ms;
} delay;

typedef struct live {
    char path[272];
    char run[64];
} live;

struct fake_server {
    pthread_mutex_t lock;
    fake_clock *fc;
    fake_req *reqs;
    size_t nreqs, capreqs;
    fake_fault *faults;
    size_t nfaults;
    delay *delays;
    size_t ndelays;
    char **refused;
    size_t nrefused;
    run *runs;
    size_t nruns;
    char **exps; /* experiment names; id = index + 1 ("0" is Default) */
    size_t nexps;
    int conns;
    /* requests carried out late: (method, path, body), run after `left` more */
    struct {
        char method[16], path[256], query[512];
        json_t *json;
        int left;
    } deferred[16];
    size_t ndeferred;
    /* random faults */
    char rpath[128];
    int rpermille;
    uint64_t rstate;
    int rkind;
    live *live; /* requests in flight */
    size_t nlive, caplive;
    /* the most in flight at once, per (path, run) seen */
    struct {
        char path[272];
        char run[64];
        int max;
    } peaks[256];
    size_t npeaks;
};

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

fake_server *fake_server_new(fake_clock *fc) {
    fake_server *fs = calloc(1, sizeof *fs);
    pthread_mutex_init(&fs->lock, NULL);
    fs->fc = fc;
    return fs;
}

static void kv_free(kv *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(v[i].k);
        free(v[i].v);
    }
    free(v);
}

void fake_server_free(fake_server *fs) {
    if (!fs)
        return;
    for (size_t i = 0; i < fs->nreqs; i++) {
        free(fs->reqs[i].body);
        json_decref(fs->reqs[i].json);
    }
    free(fs->reqs);
    free(fs->faults);
    free(fs->delays);
    for (size_t i = 0; i < fs->nrefused; i++)
        free(fs->refused[i]);
    free(fs->refused);
    for (size_t i = 0; i < fs->nruns; i++) {
        run *r = &fs->runs[i];
        kv_free(r->tags, r->ntags);
        kv_free(r->params, r->nparams);
        for (size_t j = 0; j < r->npts; j++)
            free(r->pts[j].key);
        free(r->pts);
        free(r->pt_tab);
        for (size_t j = 0; j < r->ncounts; j++)
            free(r->counts[j].k);
        free(r->counts);
        free(r->count_n);
    }
    free(fs->runs);
    for (size_t i = 0; i < fs->nexps; i++)
        free(fs->exps[i]);
    free(fs->exps);
    for (size_t i = 0; i < fs->ndeferred; i++)
        json_decref(fs->deferred[i].json);
    free(fs->live);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

void fake_fault_add(fake_server *fs, const fake_fault *f) {
    pthread_mutex_lock(&fs->lock);
    fs->faults = realloc(fs->faults, (fs->nfaults + 1) * sizeof *fs->faults);
    fs->faults[fs->nfaults++] = *f;
    pthread_mutex_unlock(&fs->lock);
}

void fake_fault_clear(fake_server *fs) {
    pthread_mutex_lock(&fs->lock);
    fs->nfaults = 0;
    fs->rpermille = 0;
    pthread_mutex_unlock(&fs->lock);
}

void fake_fault_random(fake_server *fs, const char *path, int permille, uint64_t seed) {
    pthread_mutex_lock(&fs->lock);
    snprintf(fs->rpath, sizeof fs->rpath, "%s", path);
    fs->rpermille = permille;
    fs->rstate = seed ? seed : 1;
    pthread_mutex_unlock(&fs->lock);
}

void fake_delay(fake_server *fs, const char *path, int ms) {
    pthread_mutex_lock(&fs->lock);
    fs->delays = realloc(fs->delays, (fs->ndelays + 1) * sizeof *fs->delays);
    snprintf(fs->delays[fs->ndelays].path, sizeof fs->delays->path, "%s", path);
    fs->delays[fs->ndelays++].ms = ms;
    pthread_mutex_unlock(&fs->lock);
}

void fake_refuse_param(fake_server *fs, const char *key) {
    pthread_mutex_lock(&fs->lock);
    fs->refused = realloc(fs->refused, (fs->nrefused + 1) * sizeof *fs->refused);
    fs->refused[fs->nrefused++] = strdup(key);
    pthread_mutex_unlock(&fs->lock);
}

size_t fake_nreq(fake_server *fs) {
    pthread_mutex_lock(&fs->lock);
    size_t n = fs->nreqs;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

const fake_req *fake_req_at(fake_server *fs, size_t i) {
    pthread_mutex_lock(&fs->lock);
    const fake_req *r = i < fs->nreqs ? &fs->reqs[i] : NULL;
    pthread_mutex_unlock(&fs->lock);
    return r;
}

size_t fake_count(fake_server *fs, const char *suffix) {
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->nreqs; i++)
        n += ends_with(fs->reqs[i].path, suffix);
    pthread_mutex_unlock(&fs->lock);
    return n;
}

int fake_connections(fake_server *fs) {
    pthread_mutex_lock(&fs->lock);
    int n = fs->conns;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

int fake_max_inflight(fake_server *fs, const char *suffix, const char *run_id) {
    int best = 0;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->npeaks; i++)
        if (ends_with(fs->peaks[i].path, suffix) &&
            (run_id ? !strcmp(fs->peaks[i].run, run_id) : !fs->peaks[i].run[0]) &&
            fs->peaks[i].max > best)
            best = fs->peaks[i].max;
    pthread_mutex_unlock(&fs->lock);
    return best;
}

static run *find_run(fake_server *fs, const char *id) {
    for (size_t i = 0; id && i < fs->nruns; i++)
        if (!strcmp(fs->runs[i].id, id))
            return &fs->runs[i];
    return NULL;
}

static const char *kv_get(const kv *v, size_t n, const char *k) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].k, k))
            return v[i].v;
    return NULL;
}

static void kv_set(kv **v, size_t *n, const char *k, const char *val) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].k, k)) {
            free((*v)[i].v);
            (*v)[i].v = strdup(val);
            return;
        }
    *v = realloc(*v, (*n + 1) * sizeof **v);
    (*v)[*n].k = strdup(k);
    (*v)[(*n)++].v = strdup(val);
}

size_t fake_runs(fake_server *fs) {
    pthread_mutex_lock(&fs->lock);
    size_t n = fs->nruns;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

const char *fake_run_by_tag(fake_server *fs, const char *key, const char *value) {
    const char *id = NULL;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->nruns && !id; i++) {
        const char *v = kv_get(fs->runs[i].tags, fs->runs[i].ntags, key);
        if (v && !strcmp(v, value))
            id = fs->runs[i].id;
    }
    pthread_mutex_unlock(&fs->lock);
    return id;
}

size_t fake_runs_with_tag(fake_server *fs, const char *key, const char *value) {
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->nruns; i++) {
        const char *v = kv_get(fs->runs[i].tags, fs->runs[i].ntags, key);
        n += v && !strcmp(v, value);
    }
    pthread_mutex_unlock(&fs->lock);
    return n;
}

size_t fake_metric_points(fake_server *fs, const char *id, const char *key) {
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    for (size_t i = 0; r && i < r->ncounts; i++)
        if (!strcmp(r->counts[i].k, key))
            n = r->count_n[i];
    pthread_mutex_unlock(&fs->lock);
    return n;
}

int fake_metric_get(fake_server *fs, const char *id, const char *key, size_t i, double *value,
                    int64_t *step, int64_t *ts) {
    int found = 0;
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    for (size_t j = 0, n = 0; r && j < r->npts && !found; j++)
        if (!strcmp(r->pts[j].key, key) && n++ == i) {
            if (value)
                *value = r->pts[j].value;
            if (step)
                *step = r->pts[j].step;
            if (ts)
                *ts = r->pts[j].ts;
            found = 1;
        }
    pthread_mutex_unlock(&fs->lock);
    return found;
}

size_t fake_metric_keys(fake_server *fs, const char *id, const char *prefix) {
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    for (size_t j = 0; r && j < r->npts; j++) {
        if (strncmp(r->pts[j].key, prefix, strlen(prefix)))
            continue;
        int seen = 0;
        for (size_t k = 0; k < j && !seen; k++)
            seen = !strcmp(r->pts[k].key, r->pts[j].key);
        n += !seen;
    }
    pthread_mutex_unlock(&fs->lock);
    return n;
}

const char *fake_param(fake_server *fs, const char *id, const char *key) {
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    const char *v = r ? kv_get(r->params, r->nparams, key) : NULL;
    pthread_mutex_unlock(&fs->lock);
    return v;
}

const char *fake_tag(fake_server *fs, const char *id, const char *key) {
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    const char *v = r ? kv_get(r->tags, r->ntags, key) : NULL;
    pthread_mutex_unlock(&fs->lock);
    return v;
}

const char *fake_status(fake_server *fs, const char *id) {
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    const char *v = r ? r->status : NULL;
    pthread_mutex_unlock(&fs->lock);
    return v;
}

size_t fake_points_received(fake_server *fs, const char *id) {
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    size_t n = r ? r->received : 0;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

size_t fake_live_runs_with_tag(fake_server *fs, const char *key, const char *value) {
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->nruns; i++) {
        const char *v = kv_get(fs->runs[i].tags, fs->runs[i].ntags, key);
        n += !fs->runs[i].deleted && v && !strcmp(v, value);
    }
    pthread_mutex_unlock(&fs->lock);
    return n;
}

size_t fake_inputs(fake_server *fs, const char *id) {
    pthread_mutex_lock(&fs->lock);
    run *r = find_run(fs, id);
    size_t n = r ? r->inputs : 0;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

/* ---- answering ------------------------------------------------------------ */

typedef struct answer {
    int status;
    json_t *body; /* stolen */
} answer;

static answer ok(json_t *body) {
    return (answer){200, body ? body : json_object()};
}

static answer error(int status, const char *code, const char *msg) {
    return (answer){status, json_pack("{s:s, s:s}", "error_code", code, "message", msg)};
}

static const char *jstr(json_t *o, const char *k) {
    json_t *v = o ? json_object_get(o, k) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(json_t *o, const char *k) {
    json_t *v = o ? json_object_get(o, k) : NULL;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static double jnum(json_t *v) {
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_string(v))
        return strtod(json_string_value(v), NULL); /* "NaN", "Infinity" */
    return 0;
}

static json_t *run_json(const run *r) {
    json_t *tags = json_array(), *params = json_array();
    for (size_t i = 0; i < r->ntags; i++)
        json_array_append_new(tags,
                              json_pack("{s:s, s:s}", "key", r->tags[i].k, "value", r->tags[i].v));
    for (size_t i = 0; i < r->nparams; i++)
        json_array_append_new(
            params, json_pack("{s:s, s:s}", "key", r->params[i].k, "value", r->params[i].v));
    /* the latest value of each key, as MLflow's: the largest (step, timestamp, value) */
    json_t *metrics = json_array();
    for (size_t i = 0; i < r->npts; i++) {
        const point *p = &r->pts[i], *best = p;
        int first = 1;
        for (size_t j = 0; j < r->npts; j++) {
            const point *q = &r->pts[j];
            if (strcmp(q->key, p->key))
                continue;
            if (j < i)
                first = 0;
            if (q->step > best->step || (q->step == best->step && q->ts > best->ts) ||
                (q->step == best->step && q->ts == best->ts && q->value > best->value))
                best = q;
        }
        if (first)
            json_array_append_new(metrics,
                                  json_pack("{s:s, s:f, s:I, s:I}", "key", best->key, "value",
                                            best->value, "timestamp", (json_int_t)best->ts, "step",
                                            (json_int_t)best->step));
    }
    char uri[128];
    snprintf(uri, sizeof uri, "mlflow-artifacts:/%s/%s/artifacts", r->exp, r->id);
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:{s:o, s:o, s:o}}", "info", "run_id",
                     r->id, "run_uuid", r->id, "experiment_id", r->exp, "status", r->status,
                     "artifact_uri", uri, "lifecycle_stage", r->deleted ? "deleted" : "active",
                     "data", "tags", tags, "params", params, "metrics", metrics);
}

/* "name=value&..." -> value of name (URL-decoded into out). */
static int query_get(const char *q, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            p += nl + 1;
            size_t n = 0;
            while (*p && *p != '&' && n + 1 < cap) {
                if (*p == '%' && p[1] && p[2]) {
                    char h[3] = {p[1], p[2], 0};
                    out[n++] = (char)strtol(h, NULL, 16);
                    p += 3;
                } else {
                    out[n++] = *p == '+' ? ' ' : *p;
                    p++;
                }
            }
            out[n] = 0;
            return 1;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

static uint64_t point_hash(const point *p) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = p->key; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    h = (h ^ (uint64_t)p->ts) * 0x100000001b3ull;
    return (h ^ (uint64_t)p->step) * 0x100000001b3ull;
}

/* A point with the same key, timestamp and step and the same value (or the
 * new one NaN) is there already. */
static int point_dup(const run *r, const point *pt) {
    if (!r->pt_tabcap)
        return 0;
    for (size_t i = point_hash(pt) & (r->pt_tabcap - 1);; i = (i + 1) & (r->pt_tabcap - 1)) {
        if (!r->pt_tab[i])
            return 0;
        const point *q = &r->pts[r->pt_tab[i] - 1];
        if (!strcmp(q->key, pt->key) && q->ts == pt->ts && q->step == pt->step &&
            (q->value == pt->value || pt->value != pt->value))
            return 1;
    }
}

static void point_add(run *r, point *pt) {
    if (r->npts == r->cappts) {
        r->cappts = r->cappts ? 2 * r->cappts : 64;
        r->pts = realloc(r->pts, r->cappts * sizeof *r->pts);
    }
    pt->key = strdup(pt->key);
    r->pts[r->npts++] = *pt;
    if (r->npts * 2 > r->pt_tabcap) {
        r->pt_tabcap = r->pt_tabcap ? 2 * r->pt_tabcap : 256;
        free(r->pt_tab);
        r->pt_tab = calloc(r->pt_tabcap, sizeof *r->pt_tab);
        for (size_t j = 0; j < r->npts; j++) {
            size_t i = point_hash(&r->pts[j]) & (r->pt_tabcap - 1);
            while (r->pt_tab[i])
                i = (i + 1) & (r->pt_tabcap - 1);
            r->pt_tab[i] = j + 1;
        }
    } else {
        size_t i = point_hash(pt) & (r->pt_tabcap - 1);
        while (r->pt_tab[i])
            i = (i + 1) & (r->pt_tabcap - 1);
        r->pt_tab[i] = r->npts;
    }
    size_t k = 0;
    while (k < r->ncounts && strcmp(r->counts[k].k, pt->key))
        k++;
    if (k == r->ncounts) {
        r->counts = realloc(r->counts, (k + 1) * sizeof *r->counts);
        r->count_n = realloc(r->count_n, (k + 1) * sizeof *r->count_n);
        r->counts[k].k = strdup(pt->key);
        r->counts[k].v = NULL;
        r->count_n[k] = 0;
        r->ncounts++;
    }
    r->count_n[k]++;
}

static answer log_batch(fake_server *fs, json_t *b) {
    run *r = find_run(fs, jstr(b, "run_id"));
    if (!r)
        return error(404, "RESOURCE_DOES_NOT_EXIST", "run not found");
    if (r->deleted)
        return error(400, "INVALID_PARAMETER_VALUE", "The run must be in the 'active' state");
    json_t *m = json_object_get(b, "metrics"), *p = json_object_get(b, "params"),
           *t = json_object_get(b, "tags");
    size_t nm = json_array_size(m), np = json_array_size(p), nt = json_array_size(t);
    if (nm > 1000 || np > 100 || nt > 100 || nm + np + nt > 1000)
        return error(400, "INVALID_PARAMETER_VALUE",
                     "A batch logging request can contain at most 1000 metrics, 100 params, "
                     "100 tags");
    /* refused keys, duplicate keys, changed params: the whole batch stores nothing */
    for (size_t i = 0; i < np; i++) {
        const char *k = jstr(json_array_get(p, i), "key"), *v = jstr(json_array_get(p, i), "value");
        if (!k || !v)
            return error(400, "INVALID_PARAMETER_VALUE", "param without key or value");
        for (size_t j = 0; j < fs->nrefused; j++)
            if (!strcmp(fs->refused[j], k))
                return error(400, "INVALID_PARAMETER_VALUE", "refused param key");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(k, jstr(json_array_get(p, j), "key")))
                return error(400, "INVALID_PARAMETER_VALUE", "duplicate param key in batch");
        const char *old = kv_get(r->params, r->nparams, k);
        if (old && strcmp(old, v))
            return error(400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed");
    }
    for (size_t i = 0; i < np; i++)
        kv_set(&r->params, &r->nparams, jstr(json_array_get(p, i), "key"),
               jstr(json_array_get(p, i), "value"));
    for (size_t i = 0; i < nt; i++)
        kv_set(&r->tags, &r->ntags, jstr(json_array_get(t, i), "key"),
               jstr(json_array_get(t, i), "value"));
    r->received += nm;
    for (size_t i = 0; i < nm; i++) {
        json_t *o = json_array_get(m, i);
        point pt = {(char *)jstr(o, "key"), jnum(json_object_get(o, "value")), jint(o, "timestamp"),
                    jint(o, "step")};
        if (point_dup(r, &pt))
            continue; /* an identical point is stored once */
        point_add(r, &pt);
    }
    return ok(NULL);
}

static answer route(fake_server *fs, const char *method, const char *path, const char *query,
                    json_t *b) {
    const char *api = "/api/2.0/mlflow/";
    if (strncmp(path, api, strlen(api)))
        return (answer){404, NULL};
    const char *p = path + strlen(api);
    char v[512];
    if (!strcmp(p, "experiments/get-by-name") && !strcmp(method, "GET")) {
        if (!query_get(query, "experiment_name", v, sizeof v))
            return error(400, "INVALID_PARAMETER_VALUE", "missing experiment_name");
        if (!strcmp(v, "Default"))
            return ok(
                json_pack("{s:{s:s, s:s}}", "experiment", "experiment_id", "0", "name", "Default"));
        for (size_t i = 0; i < fs->nexps; i++)
            if (!strcmp(fs->exps[i], v)) {
                char id[32];
                snprintf(id, sizeof id, "%zu", i + 1);
                return ok(
                    json_pack("{s:{s:s, s:s}}", "experiment", "experiment_id", id, "name", v));
            }
        return error(404, "RESOURCE_DOES_NOT_EXIST", "no such experiment");
    }
    if (!strcmp(p, "experiments/create")) {
        const char *name = jstr(b, "name");
        if (!name)
            return error(400, "INVALID_PARAMETER_VALUE", "missing name");
        for (size_t i = 0; i < fs->nexps; i++)
            if (!strcmp(fs->exps[i], name))
                return error(400, "RESOURCE_ALREADY_EXISTS", "exists");
        fs->exps = realloc(fs->exps, (fs->nexps + 1) * sizeof *fs->exps);
        fs->exps[fs->nexps++] = strdup(name);
        char id[32];
        snprintf(id, sizeof id, "%zu", fs->nexps);
        return ok(json_pack("{s:s}", "experiment_id", id));
    }
    if (!strcmp(p, "runs/create")) {
        fs->runs = realloc(fs->runs, (fs->nruns + 1) * sizeof *fs->runs);
        run *r = &fs->runs[fs->nruns++];
        memset(r, 0, sizeof *r);
        snprintf(r->id, sizeof r->id, "%032zx", fs->nruns);
        snprintf(r->exp, sizeof r->exp, "%s",
                 jstr(b, "experiment_id") ? jstr(b, "experiment_id") : "0");
        snprintf(r->status, sizeof r->status, "RUNNING");
        json_t *t = json_object_get(b, "tags");
        for (size_t i = 0; i < json_array_size(t); i++)
            kv_set(&r->tags, &r->ntags, jstr(json_array_get(t, i), "key"),
                   jstr(json_array_get(t, i), "value"));
        return ok(json_pack("{s:o}", "run", run_json(r)));
    }
    if (!strcmp(p, "runs/search")) {
        /* tags.`key` = 'value' */
        const char *f = jstr(b, "filter");
        char key[256] = "", val[512] = "";
        if (f)
            sscanf(f, "tags.`%255[^`]` = '%511[^']'", key, val);
        json_t *runs = json_array();
        for (size_t i = 0; i < fs->nruns; i++) {
            const char *tv = kv_get(fs->runs[i].tags, fs->runs[i].ntags, key);
            if (!fs->runs[i].deleted && tv && !strcmp(tv, val))
                json_array_append_new(runs, run_json(&fs->runs[i]));
        }
        return ok(json_pack("{s:o}", "runs", runs));
    }
    if (!strcmp(p, "runs/get")) {
        run *r = query_get(query, "run_id", v, sizeof v) ? find_run(fs, v) : NULL;
        if (!r)
            return error(404, "RESOURCE_DOES_NOT_EXIST", "run not found");
        return ok(json_pack("{s:o}", "run", run_json(r)));
    }
    if (!strcmp(p, "runs/update")) {
        run *r = find_run(fs, jstr(b, "run_id"));
        if (!r)
            return error(404, "RESOURCE_DOES_NOT_EXIST", "run not found");
        if (jstr(b, "status"))
            snprintf(r->status, sizeof r->status, "%s", jstr(b, "status"));
        return ok(json_pack("{s:{s:s, s:s}}", "run_info", "run_id", r->id, "status", r->status));
    }
    if (!strcmp(p, "runs/log-batch"))
        return log_batch(fs, b);
    if (!strcmp(p, "runs/delete")) {
        run *r = find_run(fs, jstr(b, "run_id"));
        if (!r)
            return error(404, "RESOURCE_DOES_NOT_EXIST", "run not found");
        r->deleted = 1;
        return ok(NULL);
    }
    if (!strcmp(p, "runs/set-tag")) {
        run *r = find_run(fs, jstr(b, "run_id"));
        if (!r)
            return error(404, "RESOURCE_DOES_NOT_EXIST", "run not found");
        if (jstr(b, "key") && jstr(b, "value"))
            kv_set(&r->tags, &r->ntags, jstr(b, "key"), jstr(b, "value"));
        return ok(NULL);
    }
    if (!strcmp(p, "runs/log-inputs")) {
        run *r = find_run(fs, jstr(b, "run_id"));
        if (!r)
            return error(404, "RESOURCE_DOES_NOT_EXIST", "run not found");
        r->inputs += json_array_size(json_object_get(b, "datasets"));
        return ok(NULL);
    }
    return (answer){404, NULL};
}

/* ---- the transport -------------------------------------------------------- */

typedef struct fake_transport {
    mlo_transport base;
    fake_server *fs;
    int conn;
} fake_transport;

static void peak(fake_server *fs, const char *path, const char *run_id) {
    /* count what is live for (path, run_id) and (path, any) */
    for (int any = 0; any < 2; any++) {
        const char *rid = any ? "" : run_id;
        int n = 0;
        for (size_t i = 0; i < fs->nlive; i++)
            n += !strcmp(fs->live[i].path, path) && (any || !strcmp(fs->live[i].run, rid));
        size_t k = 0;
        while (k < fs->npeaks && (strcmp(fs->peaks[k].path, path) || strcmp(fs->peaks[k].run, rid)))
            k++;
        if (k == fs->npeaks) {
            if (fs->npeaks == 256)
                continue;
            /* paths are shorter than 128 (a precision says so to -Wformat-truncation) */
            snprintf(fs->peaks[k].path, sizeof fs->peaks[k].path, "%.127s", path);
            snprintf(fs->peaks[k].run, sizeof fs->peaks[k].run, "%s", rid);
            fs->peaks[k].max = 0;
            fs->npeaks++;
        }
        if (n > fs->peaks[k].max)
            fs->peaks[k].max = n;
    }
}

static int perform(mlo_transport *base, const mlo_xfer *x, mlo_xfer_result *r) {
    fake_transport *t = (fake_transport *)base;
    fake_server *fs = t->fs;
    mlo_buf *sink = r->body;
    memset(r, 0, sizeof *r);
    r->body = sink;
    mlo__buf_reset(sink);
    if (x->should_abort && x->should_abort(x->ctx)) {
        r->outcome = MLO_XF_ABORTED;
        return r->outcome;
    }
    /* the request as the server sees it */
    fake_req q;
    memset(&q, 0, sizeof q);
    snprintf(q.method, sizeof q.method, "%s", x->method);
    const char *after = strstr(x->url, "://");
    const char *path = after ? strchr(after + 3, '/') : NULL;
    if (!path)
        path = "/";
    const char *qm = strchr(path, '?');
    snprintf(q.path, sizeof q.path, "%.*s", (int)(qm ? (size_t)(qm - path) : strlen(path)), path);
    snprintf(q.query, sizeof q.query, "%s", qm ? qm + 1 : "");
    q.body = strndup(x->body ? x->body : "", x->body ? x->len : 0);
    q.json = json_loads(q.body, 0, NULL);
    q.t_ns = t->fs->fc ? atomic_load(&t->fs->fc->mono_ns) : 0;
    q.conn = t->conn;
    for (size_t i = 0; i < x->nheaders; i++)
        if (!strncasecmp(x->headers[i], "Authorization:", 14))
            snprintf(q.auth, sizeof q.auth, "%s", x->headers[i]);
    const char *run_id = q.json ? jstr(q.json, "run_id") : NULL;

    pthread_mutex_lock(&fs->lock);
    /* requests carried out late: their time has come */
    for (size_t i = 0; i < fs->ndeferred;) {
        if (--fs->deferred[i].left > 0) {
            i++;
            continue;
        }
        answer a = route(fs, fs->deferred[i].method, fs->deferred[i].path, fs->deferred[i].query,
                         fs->deferred[i].json);
        json_decref(a.body);
        json_decref(fs->deferred[i].json);
        fs->deferred[i] = fs->deferred[--fs->ndeferred];
    }
    fake_fault *f = NULL;
    for (size_t i = 0; i < fs->nfaults && !f; i++)
        if (fs->faults[i].times > 0 && ends_with(q.path, fs->faults[i].path))
            f = &fs->faults[i];
    fake_fault fault = {0};
    if (f) {
        f->times--;
        fault = *f;
    } else if (fs->rpermille && ends_with(q.path, fs->rpath)) {
        uint64_t x = fs->rstate; /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        fs->rstate = x;
        if ((int)(x % 1000) < fs->rpermille) {
            static const char *html = "<html><body>502 Bad Gateway</body></html>";
            switch (fs->rkind++ % 6) {
            case 0:
                fault = (fake_fault){.status = 503};
                break;
            case 1:
                fault = (fake_fault){.status = 429, .retry_after = "0"};
                break;
            case 2:
                fault = (fake_fault){.status = 502, .body = html};
                break;
            case 3:
                fault = (fake_fault){.status = 200, .body = "not json"};
                break;
            case 4:
                fault = (fake_fault){.outcome = MLO_XF_LOST};
                break;
            default:
                fault = (fake_fault){.outcome = MLO_XF_LOST, .executed = 1};
                break;
            }
            f = &fault;
        }
    }
    int delay_ms = 0;
    for (size_t i = 0; i < fs->ndelays; i++)
        if (ends_with(q.path, fs->delays[i].path))
            delay_ms = fs->delays[i].ms;
    /* in flight from here to the answer */
    if (fs->nlive == fs->caplive) {
        fs->caplive = fs->caplive ? 2 * fs->caplive : 16;
        fs->live = realloc(fs->live, fs->caplive * sizeof *fs->live);
    }
    /* log-batch requests holding params or tags are also tracked as
     * "<path>#kv" (their order matters, metrics' does not) */
    char kvpath[sizeof q.path + 4];
    int kv = q.json && (json_array_size(json_object_get(q.json, "params")) ||
                        json_array_size(json_object_get(q.json, "tags")));
    snprintf(kvpath, sizeof kvpath, "%s%s", q.path, kv ? "#kv" : "");
    live *lv = &fs->live[fs->nlive++];
    snprintf(lv->path, sizeof lv->path, "%s", kvpath);
    snprintf(lv->run, sizeof lv->run, "%s", run_id ? run_id : "");
    peak(fs, kvpath, run_id ? run_id : "");
    pthread_mutex_unlock(&fs->lock);

    if (delay_ms) {
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }

    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->nlive; i++)
        if (!strcmp(fs->live[i].path, kvpath) && !strcmp(fs->live[i].run, run_id ? run_id : "")) {
            fs->live[i] = fs->live[--fs->nlive];
            break;
        }
    answer a = {0, NULL};
    int outcome = MLO_XF_RESPONSE;
    if (f && fault.outcome != MLO_XF_RESPONSE) {
        outcome = fault.outcome;
        if (fault.executed == 1) {
            a = route(fs, q.method, q.path, q.query, q.json);
        } else if (fault.executed == 2 && fs->ndeferred < 16) {
            snprintf(fs->deferred[fs->ndeferred].method, 16, "%s", q.method);
            snprintf(fs->deferred[fs->ndeferred].path, 256, "%s", q.path);
            snprintf(fs->deferred[fs->ndeferred].query, 512, "%s", q.query);
            fs->deferred[fs->ndeferred].json = json_incref(q.json);
            fs->deferred[fs->ndeferred++].left = fault.defer > 0 ? fault.defer : 1;
        }
        json_decref(a.body);
        a.body = NULL;
        q.status = -outcome;
    } else if (f) {
        q.status = fault.status;
    } else {
        a = route(fs, q.method, q.path, q.query, q.json);
        q.status = a.status;
    }
    if (fs->nreqs == fs->capreqs) {
        fs->capreqs = fs->capreqs ? 2 * fs->capreqs : 64;
        fs->reqs = realloc(fs->reqs, fs->capreqs * sizeof *fs->reqs);
    }
    fs->reqs[fs->nreqs++] = q;
    pthread_mutex_unlock(&fs->lock);

    if (outcome != MLO_XF_RESPONSE) {
        r->outcome = outcome;
        r->reused_fast_fail = fault.reused;
        snprintf(r->detail, sizeof r->detail, "fake transport failure %d on %s", outcome, x->url);
        return outcome;
    }
    r->outcome = MLO_XF_RESPONSE;
    r->new_connections = 0;
    if (f) {
        r->http_code = fault.status;
        if (fault.retry_after)
            snprintf(r->retry_after, sizeof r->retry_after, "%s", fault.retry_after);
        const char *body = fault.body ? fault.body
                                      : "{\"error_code\": \"TEMPORARILY_UNAVAILABLE\", "
                                        "\"message\": \"scripted\"}";
        mlo__buf_appends(sink, body);
        snprintf(r->content_type, sizeof r->content_type, "%s",
                 body[0] == '{' ? "application/json" : "text/html");
    } else if (a.body) {
        char *s = json_dumps(a.body, JSON_COMPACT);
        mlo__buf_appends(sink, s);
        free(s);
        json_decref(a.body);
        r->http_code = a.status;
        snprintf(r->content_type, sizeof r->content_type, "application/json");
    } else {
        r->http_code = a.status;
        mlo__buf_appends(sink, "<html><body>Not Found</body></html>");
        snprintf(r->content_type, sizeof r->content_type, "text/html");
    }
    r->bytes_sent = x->len;
    r->bytes_received = sink->len;
    return r->outcome;
}

static void fake_free(mlo_transport *base) {
    free(base);
}

static const mlo_transport_vtable fake_vtable = {perform, fake_free};

mlo_transport *fake_transport_new(const mlo_transport_opts *o, void *user) {
    (void)o;
    fake_server *fs = user;
    fake_transport *t = calloc(1, sizeof *t);
    t->base.vt = &fake_vtable;
    t->fs = fs;
    pthread_mutex_lock(&fs->lock);
    t->conn = ++fs->conns;
    pthread_mutex_unlock(&fs->lock);
    return &t->base;
}
