/*
 * test_alloc.c - allocation failures (issue 12, item 7), as curl's torture
 * tests: for each public call family, fail the 1st, 2nd, ... n-th allocation
 * the call makes, until it makes fewer than n (it then succeeds with no
 * failure injected).  Each attempt must
 *  - return a documented status: MLO_ERR_NO_MEMORY (what running out of
 *    memory is, whatever the function's comment lists) or one that the
 *    function's comment in include/mlo.h lists (MLO_OK included: a call may
 *    work around a failed allocation);
 *  - keep what it says: an event whose call returned MLO_OK reaches the test
 *    server exactly once, one whose call failed never does;
 *  - lose nothing already accepted: events logged before every attempt (to
 *    a run of their own) reach the server exactly once;
 *  - leak nothing: under ASan, LeakSanitizer checks after each family
 *    (every client closed), and at exit.
 *
 * The allocations counted are those of the thread making the call, through
 * malloc, calloc, realloc, strdup, strndup, asprintf, vasprintf, realpath
 * (with a NULL buffer), aligned_alloc and posix_memalign (the linker's
 * --wrap on this executable, which links the static library: the library's
 * own calls are wrapped; see tests/meson.build) and jansson's allocator
 * (json_set_alloc_funcs).  The library's background threads and the shared
 * libraries it uses (libcurl, libcrypto, zstd, protobuf-c, glibc's own
 * fopen/opendir) allocate normally.
 *
 * The families: options (mlo_options_new and every string setter), open,
 * start and resume a run, every log call (metric, metric_ts, param, tag,
 * the batch calls, dataset with a given and a computed digest, end),
 * histograms, artifacts (file, directory, bytes; with a store and without
 * one, synchronous), the registry (register, alias, list, download), flush
 * and close, and `mlo sync` (mlo__sync_store, the mlo tool's function:
 * after a failed sync a second one must deliver everything exactly once).
 *
 * It runs in the plain and ASan builds, not under TSan (tests/meson.build):
 * what it checks is statuses, delivery and leaks, not threads.
 *
 * Three bugs it found in src/ are fixed, each kept as a case of its own
 * (test_decode_oom, test_reader_oom, test_map_oom, at the end).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

/* the mlo tool's sync (src/mlo_store.c): the "sync" family */
int mlo__sync_store(const char *store_dir, const char *uri,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                    char *err, size_t errlen);

/* ---- the allocator: the n-th allocation of the armed thread fails ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t k);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
char *__real_realpath(const char *path, char *resolved);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **out, size_t align, size_t n);

static _Thread_local int armed;
static _Thread_local long seen;    /* allocations of this thread since it was armed */
static _Thread_local long fail_at; /* 1-based: which one fails */
static _Thread_local int injected; /* it did fail */

static int trace; /* $MLO_ALLOC_TRACE: print where each injected failure happens */
/* Inside jansson's parser (json_loadb, json_loads): its allocations are not
 * counted.  jansson 2.14 itself crashes (a write through a stale pointer in
 * its lexer, SEGV) when some of them fail: a bug of jansson, not of mlo.
 * parse_fail makes the parser's first allocation fail instead (it fails
 * cleanly there), for test_parse_oom. */
static _Thread_local int in_parse;
static _Thread_local int parse_fail;
/* Inside the run log's reader, inside the runs.map writer (reader_fail,
 * map_fail fail an allocation only there); inside the decoder of an answer. */
static _Thread_local int in_decode, in_reader, in_map;

static _Thread_local int reader_fail; /* fail the reader's next allocation (test_reader_oom) */
static _Thread_local int map_fail;    /* the same in mlo__store_map_put (test_map_oom) */

static int fail_now(void) {
    if (in_parse) {
        if (!parse_fail)
            return 0;
        parse_fail = 0;
        injected = 1;
        return 1;
    }
    if ((in_reader && reader_fail) || (in_map && map_fail)) {
        reader_fail = map_fail = 0;
        injected = 1;
        return 1;
    }
    if (!armed)
        return 0;
    if (++seen != fail_at)
        return 0;
    injected = 1;
    if (trace) {
        void *frames[16];
        int n = backtrace(frames, 16);
        fprintf(stderr, "-- allocation %ld fails here:\n", seen);
        backtrace_symbols_fd(frames + 1, n - 1, 2);
    }
    return 1;
}

static void arm(long n) {
    seen = 0;
    fail_at = n;
    injected = 0;
    armed = 1;
}

static void disarm(void) {
    armed = 0;
}

void *__wrap_malloc(size_t n) {
    return fail_now() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t k) {
    return fail_now() ? NULL : __real_calloc(n, k);
}
void *__wrap_realloc(void *p, size_t n) {
    return fail_now() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) {
    return fail_now() ? NULL : __real_strdup(s);
}
char *__wrap_strndup(const char *s, size_t n) {
    return fail_now() ? NULL : __real_strndup(s, n);
}
int __wrap_vasprintf(char **out, const char *fmt, va_list ap) {
    if (fail_now()) {
        *out = NULL;
        return -1;
    }
    return __real_vasprintf(out, fmt, ap);
}
int __wrap_asprintf(char **out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return rc;
}
char *__wrap_realpath(const char *path, char *resolved) {
    if (!resolved && fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realpath(path, resolved);
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
    return fail_now() ? NULL : __real_aligned_alloc(align, n);
}
int __wrap_posix_memalign(void **out, size_t align, size_t n) {
    return fail_now() ? ENOMEM : __real_posix_memalign(out, align, n);
}
static void *json_alloc(size_t n) {
    return __wrap_malloc(n);
}
json_t *__real_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);
json_t *__real_json_loads(const char *s, size_t flags, json_error_t *err);
json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err) {
    in_parse++;
    json_t *j = __real_json_loadb(buf, len, flags, err);
    in_parse--;
    return j;
}
json_t *__wrap_json_loads(const char *s, size_t flags, json_error_t *err) {
    in_parse++;
    json_t *j = __real_json_loads(s, flags, err);
    in_parse--;
    return j;
}
/* Two internals of the library, wrapped only to know where a failure
 * happened (tests/meson.build): the JSON decoder of answers
 * (src/mlo_pbjson.c), the run log's reader (src/mlo_log.c) and the writer
 * of runs.map (src/mlo_store.c). */
int __real_mlo__pbjson_decode(const void *desc, const char *json, size_t len, void **out, char *err,
                              size_t errlen);
int __wrap_mlo__pbjson_decode(const void *desc, const char *json, size_t len, void **out, char *err,
                              size_t errlen) {
    in_decode++;
    int rc = __real_mlo__pbjson_decode(desc, json, len, out, err, errlen);
    in_decode--;
    return rc;
}
int __real_mlo__store_map_put(void *s, const char *lid, const char *sid);
int __wrap_mlo__store_map_put(void *s, const char *lid, const char *sid) {
    in_map++;
    int rc = __real_mlo__store_map_put(s, lid, sid);
    in_map--;
    return rc;
}
int __real_mlo__logr_next(void *r, void *ev, char *err, size_t errlen);
int __wrap_mlo__logr_next(void *r, void *ev, char *err, size_t errlen) {
    in_reader++;
    int rc = __real_mlo__logr_next(r, ev, err, errlen);
    in_reader--;
    return rc;
}

/* ---- the torture loop ---- */

/* Statuses a call may answer besides MLO_OK and MLO_ERR_NO_MEMORY: -1 ends. */
#define ST(...) ((const int[]){__VA_ARGS__, -1})

static testsrv *srv;
static long attempts_total;
/* --stride K/N: the sync family makes only the attempts n with n % N == K
 * (each of its attempts lasts up to a second: meson runs N of them at once) */
static long stride_k = 0, stride_n = 1;

typedef struct family {
    const char *name;
    long attempts;    /* calls made, the last one without a failure */
    long failed;      /* attempts that returned an error */
    long ok_injected; /* attempts that returned MLO_OK although an allocation failed */
} family;

static int allowed(int st, const int *also) {
    if (st == MLO_OK || st == MLO_ERR_NO_MEMORY)
        return 1;
    for (; also && *also >= 0; also++)
        if (st == *also)
            return 1;
    return 0;
}

static void attempt_done(family *f, long n, int st, int inj, const int *also, const char *what) {
    f->attempts++;
    attempts_total++;
    if (st != MLO_OK)
        f->failed++;
    else if (inj)
        f->ok_injected++;
    if (!allowed(st, also))
        fail_msg("%s: allocation %ld failed: %s returned %s (%d), not a documented status", f->name,
                 n, what, mlo_strerror(st), st);
    if (!inj && st != MLO_OK)
        fail_msg("%s: no allocation failed (%ld made), yet %s returned %s", f->name, seen, what,
                 mlo_strerror(st));
}

static int attempt_begin(long n) {
    arm(n);
    return 0;
}

static int attempt_end(family *f, long n, const int *also, int *was_injected, int st,
                       const char *what) {
    disarm();
    *was_injected = injected;
    attempt_done(f, n, st, injected, also, what);
    return st;
}

/* One attempt: arms for allocation n, runs the call, disarms, checks the
 * status and returns it; *was_injected says whether the n-th allocation
 * happened (if not, the call made fewer: the loop is over).  Only the call
 * argument has side effects, so the order C evaluates the others in does
 * not matter. */
#define ATTEMPT(fam, n, also, was_injected, call)                                                  \
    attempt_end((fam), (n), (also), (was_injected), (attempt_begin(n), (call)), #call)

static void report(const family *f) {
    printf("ALLOC %-22s %4ld attempts: %4ld refused (documented status), %3ld worked around "
           "the failure",
           f->name, f->attempts, f->failed, f->ok_injected);
    printf("\n");
    fflush(stdout);
}

/* Under ASan: no leak now (every client of the family is closed). */
static void leak_check(const char *what) {
#if defined(__SANITIZE_ADDRESS__)
    if (__lsan_do_recoverable_leak_check())
        fail_msg("%s: LeakSanitizer found leaks (above)", what);
#else
    (void)what;
#endif
}

/* The longest run of attempts: a call that keeps failing an allocation
 * forever is a bug of this test's reasoning, not a reason to loop. */
#define MAX_ATTEMPTS 20000

/* ---- helpers ---- */

static mlo_client_t *client(const char *uri, tu_errors *e) {
    tu_client_cfg k = {.uri = uri,
                       .retries = 2,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = 5,
                       .flush_ms = 20,
                       .errors = e};
    return tu_open(&k);
}

/* The run named name on the server (NULL: none); fails when there are several. */
static json_t *run_named(json_t *d, const char *name) {
    json_t *r = NULL;
    int n = tu_runs_with_tag(d, "mlflow.runName", name, &r);
    if (n > 1)
        fail_msg("%d runs named %s", n, name);
    return r;
}

/* Metric key holds exactly steps [1, n] of the "before" events, once each. */
static void check_before(json_t *run, const char *key, long n) {
    unsigned char *seen_step = calloc((size_t)n + 2, 1);
    assert_non_null(seen_step);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        if (strcmp(tu_str(m, "key"), key))
            continue;
        json_int_t s = json_integer_value(json_object_get(m, "step"));
        if (s < 1 || s > n)
            fail_msg("%s: step %lld was never logged", key, (long long)s);
        if (seen_step[s]++)
            fail_msg("%s: step %lld stored twice", key, (long long)s);
    }
    for (long s = 1; s <= n; s++)
        if (!seen_step[s])
            fail_msg("%s: step %ld, accepted before an attempt, was lost", key, s);
    free(seen_step);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    return 0;
}

/* ---- options ---- */

static void test_options(void **state) {
    (void)state;
    family f = {.name = "options"};
    int inj;
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        arm(n);
        mlo_options_t *o = mlo_options_new();
        disarm();
        f.attempts++;
        if (!o) {
            assert_true(injected); /* NULL only when out of memory */
            f.failed++;
            continue;
        }
        if (!injected) {
            mlo_options_free(o);
            break;
        }
        mlo_options_free(o);
    }
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    /* each string setter: fails cleanly, and the option keeps working */
    static const int none[] = {-1};
    for (int which = 0; which < 8; which++) {
        for (long n = 1; n < MAX_ATTEMPTS; n++) {
            int st = 0;
            switch (which) {
            case 0:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_tracking_uri(o, "http://h:1/p"));
                break;
            case 1:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_experiment_name(o, "exp"));
                break;
            case 2:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_experiment_id(o, "12"));
                break;
            case 3:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_token(o, "tok"));
                break;
            case 4:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_basic_auth(o, "u", "p"));
                break;
            case 5:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_ca_cert_path(o, "/x/ca.pem"));
                break;
            case 6:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_client_cert_path(o, "/x/c.pem"));
                break;
            case 7:
                st = ATTEMPT(&f, n, none, &inj, mlo_options_set_store_dir(o, "/tmp/x"));
                break;
            }
            (void)st;
            if (!inj)
                break;
        }
    }
    mlo_options_free(o);
    report(&f);
    leak_check(f.name);
}

/* ---- open ---- */

static void test_open(void **state) {
    (void)state;
    family f = {.name = "client_open"};
    int inj;
    long n_ok = 0;
    char names[64][48];
    for (int store = 0; store < 2; store++) {
        for (long n = 1; n < MAX_ATTEMPTS; n++) {
            tu_errors e;
            mlo_options_t *o = mlo_options_new();
            assert_non_null(o);
            assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
            if (store) {
                char *dir = tu_new_path("store");
                assert_int_equal(mlo_options_set_store_dir(o, dir), MLO_OK);
                free(dir);
            } else {
                assert_int_equal(mlo_options_set_durable(o, 0), MLO_OK);
            }
            tu_errors_init(&e);
            assert_int_equal(mlo_options_set_error_callback(o, tu_errors_cb, &e), MLO_OK);
            mlo_client_t *c = (mlo_client_t *)(uintptr_t)1; /* must stay untouched on failure */
            int st = ATTEMPT(&f, n, ST(MLO_ERR_CONFIG), &inj, mlo_client_open(o, &c));
            mlo_options_free(o);
            if (st != MLO_OK) {
                assert_true(c == NULL || c == (mlo_client_t *)(uintptr_t)1); /* no handle */
                continue;
            }
            /* it opened (maybe without its store): it must work */
            mlo_run_t *r;
            char name[48];
            snprintf(name, sizeof name, "open-%d-%ld", store, n);
            assert_int_equal(mlo_start_run(c, "alloc-open", name, NULL, &r), MLO_OK);
            assert_int_equal(mlo_log_metric(r, "m", 1, n), MLO_OK);
            assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
            assert_int_equal(mlo_client_flush(c, 20000), MLO_OK);
            assert_int_equal(mlo_client_close(c), MLO_OK);
            if (n_ok < 64)
                snprintf(names[n_ok], sizeof names[0], "%s", name);
            n_ok++;
            if (!inj)
                break;
        }
    }
    json_t *d = tu_dump(srv);
    for (long i = 0; i < n_ok && i < 64; i++) {
        json_t *r = run_named(d, names[i]);
        if (!r)
            fail_msg("run %s of a client that opened is not on the server", names[i]);
        assert_int_equal(tu_count_metric(r, "m"), 1);
    }
    json_decref(d);
    report(&f);
    leak_check(f.name);
}

/* ---- runs ---- */

static void test_start_resume(void **state) {
    (void)state;
    family f = {.name = "start_run"};
    int inj;
    mlo_client_t *c = client(testsrv_uri(srv), NULL);
    mlo_run_t *before;
    assert_int_equal(mlo_start_run(c, "alloc-runs", "before", NULL, &before), MLO_OK);
    long nb = 0, last_ok = 0;
    /* start_run's statuses besides NO_MEMORY (its comment) */
    const int *also = ST(MLO_ERR_QUEUE_FULL, MLO_ERR_SERVER_INVALID, MLO_ERR_NOT_FOUND);
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        assert_int_equal(mlo_log_metric(before, "b", 0, ++nb), MLO_OK);
        char name[32];
        snprintf(name, sizeof name, "start-%ld", n);
        mlo_run_t *r = (mlo_run_t *)(uintptr_t)1;
        int st = ATTEMPT(&f, n, also, &inj, mlo_start_run(c, "alloc-runs", name, before, &r));
        if (st == MLO_OK) {
            assert_int_equal(mlo_log_metric(r, "in", 1, n), MLO_OK);
            assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
            last_ok = n;
        } else {
            assert_true(r == NULL || r == (mlo_run_t *)(uintptr_t)1); /* no handle */
        }
        if (!inj)
            break;
    }
    long nstart = f.attempts;
    report(&f);

    family g = {.name = "resume_run"};
    const char *rid = mlo_run_id(before);
    /* any network/server status is documented for resume; none should come here */
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        assert_int_equal(mlo_log_metric(before, "b", 0, ++nb), MLO_OK);
        mlo_run_t *r = (mlo_run_t *)(uintptr_t)1;
        int st = ATTEMPT(&g, n, ST(MLO_ERR_NOT_FOUND), &inj, mlo_resume_run(c, rid, &r));
        if (st == MLO_OK) {
            assert_string_equal(mlo_run_id(r), rid);
            assert_int_equal(mlo_log_metric(r, "resumed", 1, n), MLO_OK);
        } else {
            assert_true(r == NULL || r == (mlo_run_t *)(uintptr_t)1); /* no handle */
        }
        if (!inj)
            break;
    }
    report(&g);
    assert_int_equal(mlo_end_run(before, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    tu_expect_counts(c, tu_stat(c, MLO_STAT_ACCEPTED), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);

    /* on the server: every "before" point once; exactly the runs whose
     * start returned MLO_OK, each with its point */
    json_t *d = tu_dump(srv);
    json_t *b = run_named(d, "before");
    assert_non_null(b);
    check_before(b, "b", nb);
    long resumed_ok = (long)tu_count_metric(b, "resumed");
    assert_int_equal(resumed_ok, g.attempts - g.failed);
    for (long n = 1; n <= nstart; n++) {
        char name[32];
        snprintf(name, sizeof name, "start-%ld", n);
        json_t *r = run_named(d, name);
        (void)last_ok;
        /* f.failed attempts returned an error: their runs must not exist */
        if (r)
            assert_int_equal(tu_count_metric(r, "in"), 1);
    }
    long runs_started = 0;
    for (long n = 1; n <= nstart; n++) {
        char name[32];
        snprintf(name, sizeof name, "start-%ld", n);
        runs_started += run_named(d, name) != NULL;
    }
    if (runs_started != nstart - f.failed)
        fail_msg("start_run: %ld runs on the server, %ld calls returned MLO_OK", runs_started,
                 nstart - f.failed);
    json_decref(d);
    leak_check("start_run/resume_run");
}

/* ---- log calls ---- */

enum {
    L_METRIC,
    L_METRIC_TS,
    L_PARAM,
    L_TAG,
    L_METRICS,
    L_PARAMS,
    L_TAGS,
    L_DATASET,
    L_DATASET_FILE,
    L_END,
    L_HIST_NEW,
    L_HIST_FREE,
    L_N
};
static const char *const log_names[L_N] = {
    "log_metric", "log_metric_ts", "log_param",      "set_tag", "log_metrics",   "log_params",
    "set_tags",   "log_dataset",   "dataset_digest", "end_run", "histogram_new", "histogram_free"};

typedef struct log_ctx {
    mlo_client_t *c;
    mlo_run_t *run;
    const char *file; /* a dataset file */
    char key[3][48], val[3][48];
} log_ctx;

static int log_call(log_ctx *x, int which, long n, mlo_run_t **ended, mlo_histogram_t **h) {
    const char *const keys[3] = {x->key[0], x->key[1], x->key[2]};
    const char *const vals[3] = {x->val[0], x->val[1], x->val[2]};
    const double dv[3] = {1, 2, 3};
    const int64_t steps[3] = {n, n, n};
    switch (which) {
    case L_METRIC:
        return mlo_log_metric(x->run, x->key[0], 1.5, n);
    case L_METRIC_TS:
        return mlo_log_metric_ts(x->run, x->key[0], 2.5, n, 1700000000000 + n);
    case L_PARAM:
        return mlo_log_param(x->run, x->key[0], x->val[0]);
    case L_TAG:
        return mlo_set_tag(x->run, x->key[0], x->val[0]);
    case L_METRICS:
        return mlo_log_metrics(x->run, 3, keys, dv, steps, NULL);
    case L_PARAMS:
        return mlo_log_params(x->run, 3, keys, vals);
    case L_TAGS:
        return mlo_set_tags(x->run, 3, keys, vals);
    case L_DATASET:
        return mlo_log_dataset(x->run, x->key[0], "s3://bucket/data.csv", "d1gest");
    case L_DATASET_FILE:
        return mlo_log_dataset(x->run, x->key[0], x->file, NULL);
    case L_END:
        return mlo_end_run(*ended, MLO_RUN_FINISHED);
    case L_HIST_NEW:
        return mlo_histogram_new(x->run, x->key[0], 3600000, h);
    case L_HIST_FREE:
        return mlo_histogram_free(*h);
    }
    return MLO_ERR_INTERNAL;
}

/* The statuses each log call documents besides MLO_OK and NO_MEMORY. */
static const int *log_also(int which) {
    static const int dataset[] = {MLO_ERR_QUEUE_FULL, MLO_ERR_IO, -1};
    static const int hist[] = {-1};
    static const int queued[] = {MLO_ERR_QUEUE_FULL, -1};
    switch (which) {
    case L_DATASET:
    case L_DATASET_FILE:
        return dataset;
    case L_HIST_NEW:
    case L_HIST_FREE:
        return hist;
    default:
        return queued;
    }
}

static void test_log_calls(void **state) {
    (void)state;
    tu_errors e;
    mlo_client_t *c = client(testsrv_uri(srv), &e);
    log_ctx x = {.c = c};
    assert_int_equal(mlo_start_run(c, "alloc-log", "log", NULL, &x.run), MLO_OK);
    mlo_run_t *before;
    assert_int_equal(mlo_start_run(c, "alloc-log", "log-before", NULL, &before), MLO_OK);
    char *dir = tu_tmpdir("data");
    char *file = tu_join(dir, "train.csv");
    tu_write_file(file, "x,y\n1,2\n", 8);
    x.file = file;
    long nb = 0;
    long ok_calls[L_N] = {0}, attempts[L_N] = {0};
    char ended_names[512][32];
    long nended = 0;
    for (int which = 0; which < L_N; which++) {
        family f = {.name = log_names[which]};
        for (long n = 1; n < MAX_ATTEMPTS; n++) {
            assert_int_equal(mlo_log_metric(before, "b", 0, ++nb), MLO_OK);
            for (int k = 0; k < 3; k++) {
                snprintf(x.key[k], sizeof x.key[k], "%s.%ld.%d", log_names[which], n, k);
                snprintf(x.val[k], sizeof x.val[k], "v%ld.%d", n, k);
            }
            mlo_run_t *ended = NULL;
            mlo_histogram_t *h = NULL;
            if (which == L_END) {
                snprintf(ended_names[nended % 512], sizeof ended_names[0], "end-%ld", n);
                assert_int_equal(
                    mlo_start_run(c, "alloc-log", ended_names[nended % 512], NULL, &ended), MLO_OK);
                nended++;
            }
            if (which == L_HIST_FREE) {
                assert_int_equal(mlo_histogram_new(x.run, x.key[0], 3600000, &h), MLO_OK);
                assert_int_equal(mlo_histogram_record(h, (double)n), MLO_OK);
            }
            int inj;
            int st = ATTEMPT(&f, n, log_also(which), &inj, log_call(&x, which, n, &ended, &h));
            if (which == L_HIST_NEW && st == MLO_OK) {
                assert_int_equal(mlo_histogram_record(h, (double)n), MLO_OK);
                assert_int_equal(mlo_histogram_free(h), MLO_OK);
            }
            ok_calls[which] += st == MLO_OK;
            attempts[which]++;
            if (!inj)
                break;
        }
        report(&f);
    }
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_int_equal(tu_stat(c, MLO_STAT_FAILED), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);

    /* the server: each call that returned MLO_OK landed, once; no other */
    json_t *d = tu_dump(srv);
    json_t *r = run_named(d, "log"), *b = run_named(d, "log-before");
    assert_non_null(r);
    assert_non_null(b);
    check_before(b, "b", nb);
    json_t *params = json_object_get(r, "params"), *tags = json_object_get(r, "tags");
    for (int which = 0; which < L_N; which++) {
        long landed = 0;
        for (long n = 1; n <= attempts[which]; n++) {
            char k0[48], k1[48];
            snprintf(k0, sizeof k0, "%s.%ld.0", log_names[which], n);
            snprintf(k1, sizeof k1, "%s.%ld.1", log_names[which], n);
            long here = 0;
            switch (which) {
            case L_METRIC:
            case L_METRIC_TS:
                here = (long)tu_count_metric(r, k0);
                break;
            case L_METRICS: /* all three or none */
                here = (long)tu_count_metric(r, k0);
                assert_int_equal(tu_count_metric(r, k1), (size_t)here);
                break;
            case L_PARAM:
            case L_PARAMS:
                here = json_object_get(params, k0) != NULL;
                if (which == L_PARAMS)
                    assert_int_equal(json_object_get(params, k1) != NULL, here);
                break;
            case L_TAG:
            case L_TAGS:
                here = json_object_get(tags, k0) != NULL;
                if (which == L_TAGS)
                    assert_int_equal(json_object_get(tags, k1) != NULL, here);
                break;
            case L_DATASET:
            case L_DATASET_FILE: {
                size_t i;
                json_t *in;
                json_array_foreach(json_object_get(r, "inputs"), i, in) {
                    const char *nm = tu_str(json_object_get(in, "dataset"), "name");
                    here += nm && !strcmp(nm, k0);
                }
                break;
            }
            case L_HIST_NEW:
            case L_HIST_FREE: {
                char ck[64];
                snprintf(ck, sizeof ck, "%s.count", k0);
                here = (long)tu_count_metric(r, ck);
                break;
            }
            case L_END: {
                char nm[24];
                snprintf(nm, sizeof nm, "end-%ld", n);
                json_t *er = run_named(d, nm);
                assert_non_null(er);
                here = !strcmp(tu_str(json_object_get(er, "info"), "status"), "FINISHED");
                break;
            }
            }
            if (here > 1)
                fail_msg("%s attempt %ld stored %ld times", log_names[which], n, here);
            landed += here;
        }
        if (landed != ok_calls[which])
            fail_msg("%s: %ld calls returned MLO_OK, %ld landed", log_names[which], ok_calls[which],
                     landed);
    }
    json_decref(d);
    free(file);
    free(dir);
    leak_check("log calls");
}

/* ---- artifacts ---- */

static void test_artifacts(void **state) {
    (void)state;
    char *dir = tu_tmpdir("art");
    char *file = tu_join(dir, "model.bin");
    tu_write_file(file, "weights", 7);
    char *tree = tu_join(dir, "tree");
    assert_int_equal(mkdir(tree, 0700), 0);
    char *a = tu_join(tree, "a.txt"), *sub = tu_join(tree, "sub");
    tu_write_file(a, "a", 1);
    assert_int_equal(mkdir(sub, 0700), 0);
    char *b = tu_join(sub, "b.txt");
    tu_write_file(b, "bb", 2);
    const int *also = ST(MLO_ERR_IO, MLO_ERR_STORE);
    for (int durable = 1; durable >= 0; durable--) {
        tu_client_cfg k = {.uri = testsrv_uri(srv),
                           .memory_only = !durable,
                           .retries = 2,
                           .backoff_s = 0.05,
                           .jitter_s = 0.01,
                           .timeout_s = 5};
        mlo_client_t *c = tu_open(&k);
        mlo_run_t *run;
        assert_int_equal(mlo_start_run(c, "alloc-art", durable ? "art" : "art-sync", NULL, &run),
                         MLO_OK);
        assert_int_equal(mlo_client_flush(c, 10000), MLO_OK); /* the run is on the server */
        long ok[3] = {0}, tries[3] = {0};
        for (int which = 0; which < 3; which++) {
            static const char *const nm[2][3] = {
                {"artifact_file_sync", "artifact_dir_sync", "artifact_bytes_sync"},
                {"artifact_file", "artifact_dir", "artifact_bytes"}};
            family f = {.name = nm[durable][which]};
            for (long n = 1; n < MAX_ATTEMPTS; n++) {
                char path[64];
                snprintf(path, sizeof path, "%d/%ld", which, n);
                int inj, st;
                if (which == 0)
                    st = ATTEMPT(&f, n, also, &inj, mlo_log_artifact(run, file, path));
                else if (which == 1)
                    st = ATTEMPT(&f, n, also, &inj, mlo_log_artifact(run, tree, path));
                else
                    st = ATTEMPT(&f, n, also, &inj, mlo_log_artifact_bytes(run, "bytes", 5, path));
                ok[which] += st == MLO_OK;
                tries[which]++;
                if (!inj)
                    break;
            }
            report(&f);
        }
        assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
        assert_int_equal(tu_stat(c, MLO_STAT_FAILED), 0);
        /* on the server: every attempt that returned MLO_OK, whole; no other */
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s/%s/artifacts/", mlo_run_experiment_id(run),
                 mlo_run_id(run));
        json_t *d = tu_dump(srv);
        long files[3] = {0};
        size_t i;
        json_t *af;
        json_array_foreach(json_object_get(d, "artifacts"), i, af) {
            const char *p = tu_str(af, "path");
            if (!p || strncmp(p, prefix, strlen(prefix)))
                continue;
            int w = p[strlen(prefix)] - '0';
            assert_true(w >= 0 && w < 3);
            files[w]++;
        }
        json_decref(d);
        if (durable) {
            /* a call that failed queued nothing */
            assert_int_equal(files[0], ok[0]);
            assert_int_equal(files[1], 2 * ok[1]); /* a.txt and sub/b.txt, or nothing */
            assert_int_equal(files[2], ok[2]);
        } else {
            /* synchronous: a call may fail after the server stored the file
             * (reading its answer), as with a connection cut then; never the
             * other way round */
            assert_true(files[0] >= ok[0] && files[0] <= tries[0]);
            assert_true(files[1] >= 2 * ok[1] && files[1] <= 2 * tries[1]);
            assert_true(files[2] >= ok[2] && files[2] <= tries[2]);
        }
        assert_int_equal(mlo_client_close(c), MLO_OK);
    }
    free(a);
    free(b);
    free(sub);
    free(tree);
    free(file);
    free(dir);
    leak_check("artifacts");
}

/* ---- the registry ---- */

static int count_entry(void *user, const char *path, int is_dir, int64_t size) {
    (void)path;
    (void)is_dir;
    (void)size;
    (*(int *)user)++;
    return 0;
}

static void test_registry(void **state) {
    (void)state;
    mlo_client_t *c = client(testsrv_uri(srv), NULL);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "alloc-reg", "reg", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, "w", 1, "model/w.bin"), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, "{}", 2, "model/MLmodel"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    const int *net = ST(MLO_ERR_TIMEOUT, MLO_ERR_NETWORK, MLO_ERR_PROTOCOL, MLO_ERR_SERVER,
                        MLO_ERR_NOT_FOUND, MLO_ERR_IO);
    char *dir = tu_tmpdir("dl");

    family f = {.name = "register_model"};
    long versions = 0, nversions_ok = 0;
    int inj;
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        int64_t v = 0;
        int st = ATTEMPT(&f, n, net, &inj, mlo_register_model(run, "model", "alloc-model", &v));
        if (st == MLO_OK) {
            /* the next version (a failed attempt may have made one on the server) */
            assert_true(v > versions);
            versions = v;
            nversions_ok++;
        }
        if (!inj)
            break;
    }
    report(&f);
    json_t *d = tu_dump(srv);
    size_t i;
    json_t *m, *model = NULL;
    json_array_foreach(json_object_get(d, "registered_models"), i, m) {
        if (!strcmp(tu_str(m, "name"), "alloc-model"))
            model = m;
    }
    assert_non_null(model);
    /* a failed register may have created the registered model or a version
     * before the allocation that failed; every MLO_OK gave the next one */
    assert_true((long)json_array_size(json_object_get(model, "versions")) >= nversions_ok);
    assert_true((long)json_array_size(json_object_get(model, "versions")) == versions);
    json_decref(d);

    family g = {.name = "set_model_alias"};
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        int st = ATTEMPT(&g, n, net, &inj, mlo_set_model_alias(c, "alloc-model", "champion", 1));
        (void)st;
        if (!inj)
            break;
    }
    report(&g);

    family l = {.name = "list_artifacts"};
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        int entries = 0;
        int st = ATTEMPT(&l, n, net, &inj,
                         mlo_list_artifacts(c, mlo_run_id(run), "model", count_entry, &entries));
        if (st == MLO_OK && !inj)
            assert_int_equal(entries, 2);
        if (!inj)
            break;
    }
    report(&l);

    family dl = {.name = "download_artifacts"};
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        char sub[32];
        snprintf(sub, sizeof sub, "d%ld", n);
        char *dest = tu_join(dir, sub);
        int st = ATTEMPT(&dl, n, net, &inj,
                         mlo_download_artifacts(c, "models:/alloc-model@champion", NULL, dest));
        if (st == MLO_OK) {
            char *w = tu_join(dest, "w.bin");
            size_t len = 0;
            unsigned char *got = tu_read_file(w, &len);
            assert_non_null(got);
            assert_int_equal(len, 1);
            free(got);
            free(w);
        }
        free(dest);
        if (!inj)
            break;
    }
    report(&dl);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    free(dir);
    leak_check("registry");
}

/* ---- flush and close ---- */

static void test_flush_close(void **state) {
    (void)state;
    family f = {.name = "client_flush"}, g = {.name = "client_close"};
    const int *flush_also = ST(MLO_ERR_TIMEOUT);
    int inj;
    char names[2][1024][32];
    long nn[2] = {0};
    for (int which = 0; which < 2; which++) {
        for (long n = 1; n < MAX_ATTEMPTS; n++) {
            mlo_client_t *c = client(testsrv_uri(srv), NULL);
            mlo_run_t *r;
            char *name = names[which][nn[which]++ % 1024];
            snprintf(name, sizeof names[0][0], "%s-%ld", which ? "close" : "flush", n);
            assert_int_equal(mlo_start_run(c, "alloc-fc", name, NULL, &r), MLO_OK);
            for (int i = 0; i < 10; i++)
                assert_int_equal(mlo_log_metric(r, "m", i, i), MLO_OK);
            if (which == 0) {
                int st = ATTEMPT(&f, n, flush_also, &inj, mlo_client_flush(c, 20000));
                (void)st;
                assert_int_equal(mlo_client_close(c), MLO_OK);
            } else {
                int st = ATTEMPT(&g, n, flush_also, &inj, mlo_client_close(c));
                (void)st;
            }
            if (!inj)
                break;
        }
    }
    report(&f);
    report(&g);
    /* whatever flush and close answered, every event was delivered, once */
    json_t *d = tu_dump(srv);
    for (int which = 0; which < 2; which++)
        for (long i = 0; i < nn[which] && i < 1024; i++) {
            json_t *r = run_named(d, names[which][i]);
            if (!r)
                fail_msg("run %s lost", names[which][i]);
            assert_int_equal(tu_count_metric(r, "m"), 10);
        }
    json_decref(d);
    leak_check("flush/close");
}

/* ---- mlo sync ---- */

/* A local store with a run, events and an artifact (no server). */
static char *local_store(long n) {
    char *store = tu_new_path("local");
    tu_client_cfg k = {.store = store, .retries = -1};
    mlo_client_t *c = tu_open(&k);
    mlo_run_t *r;
    char name[32];
    snprintf(name, sizeof name, "sync-%ld", n);
    assert_int_equal(mlo_start_run(c, "alloc-sync", name, NULL, &r), MLO_OK);
    assert_int_equal(mlo_log_param(r, "p", "v"), MLO_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(mlo_log_metric(r, "m", i, i), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(r, "art", 3, "a/x.txt"), MLO_OK);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    return store;
}

static void test_sync(void **state) {
    (void)state;
    family f = {.name = "sync"};
    /* a sync that cannot create a run waits for it about a request timeout
     * before it gives up on the run's artifacts: 2 s, not MLflow's 120 */
    setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2", 1);
    const int *also =
        ST(MLO_ERR_STORE, MLO_ERR_NETWORK, MLO_ERR_SERVER, MLO_ERR_PROTOCOL, MLO_ERR_TIMEOUT);
    static long tried[MAX_ATTEMPTS];
    long ntried = 0;
    for (long n = 1; n < MAX_ATTEMPTS; n++) {
        if (n % stride_n != stride_k)
            continue; /* another meson test's attempt */
        double t0 = tu_now();
        char *store = local_store(n);
        double t1 = tu_now();
        char err[512] = "";
        int inj;
        int st = ATTEMPT(&f, n, also, &inj,
                         mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err));
        if (trace)
            fprintf(stderr, "-- sync %ld: %s: %s (store %.2f s, sync %.2f s)\n", n,
                    mlo_strerror(st), err, t1 - t0, tu_now() - t1);
        if (st != MLO_OK) {
            /* a second sync delivers what the first one did not */
            int again = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
            if (again != MLO_OK)
                fail_msg("sync after a failed one (allocation %ld): %s: %s", n, mlo_strerror(again),
                         err);
        }
        tu_rm_rf(store);
        free(store);
        tried[ntried++] = n;
        if (!inj)
            break;
    }
    unsetenv("MLFLOW_HTTP_REQUEST_TIMEOUT");
    report(&f);
    json_t *d = tu_dump(srv);
    for (long i = 0; i < ntried; i++) {
        long n = tried[i];
        char name[32];
        snprintf(name, sizeof name, "sync-%ld", n);
        json_t *r = run_named(d, name); /* fails on two runs */
        if (!r)
            fail_msg("%s lost", name);
        assert_int_equal(tu_count_metric(r, "m"), 20);
        assert_string_equal(tu_str(json_object_get(r, "params"), "p"), "v");
        assert_string_equal(tu_str(json_object_get(r, "info"), "status"), "FINISHED");
    }
    json_decref(d);
    leak_check(f.name);
}

/* ---- the bugs this test found (fixed), each as a case of its own ---- */

/* BUG 1 (fixed: mlo__pbjson_decode returns -2, finish() MLO_ERR_NO_MEMORY): an answer the decoder
 * has no memory for is taken for a malformed one.  src/mlo_pbjson.c, mlo__pbjson_decode: -1 for
 * every failure (json_loadb returning NULL with json_error_out_of_memory in je; dec_message's
 * malloc, mlo_pbjson.c:1345, and the decoder's other allocations), and
 * src/mlo_api.c finish() (mlo_api.c:216 and :229) answers MLO_ERR_PROTOCOL
 * "unreadable answer" / "not a JSON object": every synchronous REST call
 * (resume, register, alias, list, download, uploads without a store) says
 * the server misbehaved when the client ran out of memory.  Here the first
 * allocation of jansson's parser fails in mlo_resume_run: it must answer
 * MLO_ERR_NO_MEMORY. */
static void test_decode_oom(void **state) {
    (void)state;
    mlo_client_t *c = client(testsrv_uri(srv), NULL);
    mlo_run_t *r;
    assert_int_equal(mlo_start_run(c, "alloc-parse", "parse", NULL, &r), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    char rid[64];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(r));
    mlo_run_t *again = NULL;
    injected = 0;
    parse_fail = 1;
    int st = mlo_resume_run(c, rid, &again);
    parse_fail = 0;
    assert_true(injected);
    if (st != MLO_ERR_NO_MEMORY)
        fail_msg("resume_run with no memory to parse the answer: %s", mlo_strerror(st));
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* BUG 2 (fixed: the reader returns -2, nothing moves; callers retry): an allocation the run log's
 * reader cannot make is taken for damage, and the block is skipped for good: its events are lost.
 * src/mlo_log.c: grow() (mlo_log.c:393, the realloc of the read buffer)
 * failing in rd_get (:851) makes load_block (:971) and so mlo__logr_next
 * (:1022) return -1, "damage at the current offset"; the sender
 * (src/mlo_sender.c read_stage, :1286, under mlo__sender_drain_segments)
 * moves past it (mlo__logr_skip_damage) and acknowledges it: `mlo sync` says
 * "segment ... damaged (offset 32: No such file or directory): the intact
 * blocks were uploaded" (a stale errno) and a second sync has nothing left
 * to send; the run was never created.  The same reader runs in every
 * client's sender thread.  Here the reader's first allocation fails during a
 * sync: the sync may fail, but a second one must deliver the run whole. */
static void test_reader_oom(void **state) {
    (void)state;
    char *store = local_store(0);
    char err[512] = "";
    injected = 0;
    reader_fail = 1;
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    reader_fail = 0;
    assert_true(injected);
    fprintf(stderr, "  first sync: %s: %s\n", mlo_strerror(st), err);
    assert_true(st == MLO_OK || st == MLO_ERR_NO_MEMORY);
    st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("second sync: %s: %s", mlo_strerror(st), err);
    json_t *d = tu_dump(srv);
    json_t *r = run_named(d, "sync-0");
    if (!r)
        fail_msg("the run of the store was lost");
    assert_int_equal(tu_count_metric(r, "m"), 20);
    json_decref(d);
    tu_rm_rf(store);
    free(store);
}

/* BUG 3 (fixed: the sender writes the runs.map line again before acknowledging
 * anything after it, retry_maps): a sync that cannot write runs.map leaves the run's artifacts
 * in the store for good.  src/mlo_sender.c start_run (:617): when
 * mlo__store_map_put (src/mlo_store.c:419, its path_of allocation) fails
 * after the run was created, the sender reports MLO_ERR_STORE and goes on
 * (the events are delivered), but `mlo sync`'s uploader
 * (src/mlo_artifact.c, mlo__store_map_get at :1242) finds a run's server id
 * only in runs.map: this sync and every later one time out with "run ... of
 * artifact ... is not on the server", the artifact stays in the store.  Here
 * that allocation fails once: a second sync must upload the artifact. */
static void test_map_oom(void **state) {
    (void)state;
    setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2", 1);
    char *store = local_store(0);
    char err[512] = "";
    injected = 0;
    map_fail = 1;
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    map_fail = 0;
    assert_true(injected);
    fprintf(stderr, "  first sync: %s: %s\n", mlo_strerror(st), err);
    st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    unsetenv("MLFLOW_HTTP_REQUEST_TIMEOUT");
    if (st != MLO_OK)
        fail_msg("second sync: %s: %s", mlo_strerror(st), err);
    json_t *d = tu_dump(srv);
    json_t *r = run_named(d, "sync-0");
    assert_non_null(r);
    char want[300];
    snprintf(want, sizeof want, "%s/%s/artifacts/a/x.txt",
             tu_str(json_object_get(r, "info"), "experiment_id"),
             tu_str(json_object_get(r, "info"), "run_id"));
    int found = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(d, "artifacts"), i, a) found |=
        !strcmp(tu_str(a, "path"), want);
    json_decref(d);
    assert_true(found);
    tu_rm_rf(store);
    free(store);
}

int main(int argc, char **argv) {
    tu_init("alloc");
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--stride") &&
            (sscanf(argv[i + 1], "%ld/%ld", &stride_k, &stride_n) != 2 || stride_n < 1 ||
             stride_k < 0 || stride_k >= stride_n)) {
            fprintf(stderr, "--stride K/N with 0 <= K < N\n");
            return 2;
        }
    if (getenv("MLO_ALLOC_TRACE")) {
        void *frames[4];
        backtrace(frames, 4); /* loads libgcc now, not while an allocation fails */
        trace = 1;
    }
    json_set_alloc_funcs(json_alloc, free);
    srv = testsrv_start("");
    if (!srv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_options, setup),
        cmocka_unit_test_setup(test_open, setup),
        cmocka_unit_test_setup(test_start_resume, setup),
        cmocka_unit_test_setup(test_log_calls, setup),
        cmocka_unit_test_setup(test_artifacts, setup),
        cmocka_unit_test_setup(test_registry, setup),
        cmocka_unit_test_setup(test_flush_close, setup),
        cmocka_unit_test_setup(test_sync, setup),
        cmocka_unit_test_setup(test_decode_oom, setup),
        cmocka_unit_test_setup(test_reader_oom, setup),
        cmocka_unit_test_setup(test_map_oom, setup),
    };
    int rc = tu_run_group("test_alloc", tests, sizeof tests / sizeof tests[0], argc, argv);
    printf("ALLOC %ld attempts in all\n", attempts_total);
    testsrv_stop(srv);
    return rc;
}
