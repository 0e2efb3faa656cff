/*
 * test_hostile.c - every public function of include/mlo.h against every bad
 * input that applies to it (issue 8, item 7): NULL, empty, over-length,
 * illegal key characters, invalid UTF-8, NaN/+-Inf, negative and huge steps
 * and timestamps, path traversal, bad enums, zero and huge sizes, handles of
 * the wrong kind, closed handles, hostile URIs and download directories.
 * One table (ROWS below) is both the test and the README's "Hostile input"
 * table: `test_hostile --markdown` prints it.
 *
 * The calls go to a real client talking to the test server, and around every
 * row the test logs a good metric point ("good", steps 2i and 2i+1).  At the
 * end it asserts on what the server stored: every good point landed, every
 * value a row expects to land did (NaN, truncated values, extreme steps, the
 * good entries of a batch with a bad one), nothing a row refused did (keys
 * stored are only "good", "ok.*" and the system tags), and the client's
 * counters add up (ACCEPTED == SENT + FAILED, FAILED == the two param
 * conflicts and the one artifact the server refuses that the table provokes
 * on purpose, nothing dropped).  Artifacts and datasets likewise: every
 * artifact stored is one of run R's under "ok/" (with the SHA-256 of what was
 * logged), every dataset of R is named "ok.*", the registered model has the
 * versions and the alias the rows made.
 *
 * Besides C and R, the rows use: CC/CR, a client closed in setup() and its
 * run (MLO_ERR_CLOSED); CL/RL, a client without a tracking URI (its own
 * local store); CN, a client without a store (artifacts uploaded in the
 * call), with RND (R resumed) and RNN; and NP_RUN, a run made on the test
 * server while it did not serve artifacts (its artifact URI is s3://: not
 * proxied), resumed on C as RNP and on CN as RNN.
 *
 * A row lists the statuses it accepts: the first is the one the header
 * documents (the README shows it); a second one is tolerated only where a
 * finding was reported and not fixed yet, and the row's note says so.
 *
 * It runs in the plain and ASan+UBSan builds, not under TSan
 * (tests/meson.build): one thread feeds the bad input, and what it is about,
 * memory safety, is ASan's part; under TSan it took a minute.
 */
#define _GNU_SOURCE
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlo.h"
#include "testutil.h"

#define NOT_NULL (-1001) /* a pointer-returning function returned non-NULL */
#define MISMATCH (-1002) /* a string-returning function returned something else */

static testsrv *srv;
static mlo_client_t *C;  /* the client every row talks through */
static mlo_run_t *R;     /* its run: the bad calls and the good events around them */
static mlo_client_t *C2; /* another client ... */
static mlo_run_t *R2;    /* ... and its run (a parent from another client; end twice) */
static mlo_options_t *O; /* a fresh options object for each row */
static mlo_histogram_t *H;
static char store_dir[256];
static char store_file[300], store_under_file[320]; /* a regular file; a path under it */
static mlo_client_t *CC;                            /* a client closed in setup() ... */
static mlo_run_t *CR;                               /* ... and its run */
static mlo_client_t *CL; /* a client without a tracking URI (a local store) ... */
static mlo_run_t *RL;    /* ... and its run */
static mlo_client_t *CN; /* a client without a store (durable off) */
static mlo_run_t *RND;   /* R resumed on CN */
static mlo_run_t *RNN;   /* NP_RUN resumed on CN */
static mlo_run_t *RNP;   /* NP_RUN resumed on C */
static mlo_run_t *RX;    /* a run of C with an artifact the server refuses */
static char NP_RUN[64];  /* a run whose artifact URI is s3://: not proxied */
static char fifo_path[300], data_file[300], adir[300], outside_file[300], nl_file[320],
    odd_dir[300], empty_dir[300], dl_base[300], D5K[5400];

/* Not a handle: zeroed memory (every handle check must refuse it). */
static _Alignas(64) unsigned char zeros[8192];
#define ZC ((mlo_client_t *)(void *)zeros)
#define ZR ((mlo_run_t *)(void *)zeros)
#define ZO ((mlo_options_t *)(void *)zeros)
#define ZH ((mlo_histogram_t *)(void *)zeros)

/* long strings, made once */
static char *K250;                /* "ok." + 247 letters: the longest valid key */
static char *K251;                /* 251 letters */
static char *K241;                /* 241 letters: one over the histogram key limit */
static char *K10M;                /* 10 MB key */
static char *V6001;               /* 6001 characters */
static char *V1M;                 /* 1 MB value */
static char *V7000E;              /* 7000 x "é" (two bytes each) */
static char *V8001;               /* 8001 characters */
static char *N501;                /* 501-character experiment name */
static char *P1M;                 /* a 1 MB path */
static char *P4097;               /* a 4097-byte relative artifact path ("p/p/...") */
static char *DN500;               /* "ok." + 497 letters: the longest dataset name */
static char *DN501;               /* 501 letters */
static char *DN501E;              /* 501 x "é": 501 characters */
static char *S70K;                /* a 70,000-character dataset source */
static char *SCH37;               /* a 37-letter URI scheme + "://x" */
static char *A256;                /* a 256-letter alias */
static unsigned char BYTES[1000]; /* what "ok/bytes.bin" holds */

static char *rep(const char *unit, size_t n, const char *prefix) {
    size_t u = strlen(unit), p = prefix ? strlen(prefix) : 0;
    char *s = malloc(p + u * n + 1);
    assert_non_null(s);
    memcpy(s, prefix ? prefix : "", p);
    for (size_t i = 0; i < n; i++)
        memcpy(s + p + i * u, unit, u);
    s[p + u * n] = 0;
    return s;
}

/* ---- error callback: counted, and every message checked ---- */

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static int cb_calls, cb_null_messages, cb_store_errors;
static int cb_by_status[64];

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    pthread_mutex_lock(&cb_lock);
    cb_calls++;
    if (!msg)
        cb_null_messages++;
    if (st == MLO_ERR_STORE)
        cb_store_errors++;
    if ((unsigned)st < 64)
        cb_by_status[st]++;
    if (getenv("MLO_HOSTILE_VERBOSE")) /* every message, for a row's why */
        fprintf(stderr, "    callback: %s: %s\n", mlo_strerror(st), msg ? msg : "(NULL)");
    pthread_mutex_unlock(&cb_lock);
}

static int cb_count(int st) {
    pthread_mutex_lock(&cb_lock);
    int n = cb_by_status[st];
    pthread_mutex_unlock(&cb_lock);
    return n;
}

/* ---- helpers the rows call ---- */

static int str_is(const char *got, const char *want) {
    return got && !strcmp(got, want) ? MLO_OK : MISMATCH;
}

static int is_null(const void *p) {
    return p ? NOT_NULL : MLO_OK;
}

static int void_ok(void) {
    return MLO_OK;
}
#define NO_CRASH(stmt) ((stmt), void_ok())

/* Opens a client for the test server with one environment variable set
 * (name NULL: none) and the token / basic auth given; closes it again. */
static int open_with(const char *name, const char *value, const char *token, const char *user,
                     const char *password) {
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_close_timeout_ms(o, 2000), MLO_OK);
    /* a setter that refuses its value is the answer */
    int set = token ? mlo_options_set_token(o, token) : MLO_OK;
    if (set == MLO_OK && user)
        set = mlo_options_set_basic_auth(o, user, password);
    if (set != MLO_OK) {
        mlo_options_free(o);
        return set;
    }
    if (name)
        setenv(name, value, 1);
    mlo_client_t *c = NULL;
    int st = mlo_client_open(o, &c);
    if (name)
        unsetenv(name);
    mlo_options_free(o);
    if (st == MLO_OK) {
        assert_non_null(c);
        mlo_client_close(c);
    } else {
        assert_null(c);
    }
    return st;
}

/* Opens a client from the environment alone (no options) with one variable
 * set (name NULL: none, so no tracking URI at all); closes it again. */
static int open_env(const char *name, const char *value) {
    if (name)
        setenv(name, value, 1);
    mlo_client_t *c = NULL;
    int st = mlo_client_open(NULL, &c);
    if (name)
        unsetenv(name);
    if (st == MLO_OK)
        mlo_client_close(c);
    return st;
}

/* A client whose store directory cannot be used: it must open anyway, say
 * MLO_ERR_STORE through the callback, and still deliver (memory only). */
static int open_store(const char *dir) {
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_store_dir(o, dir), MLO_OK);
    assert_int_equal(mlo_options_set_error_callback(o, on_error, NULL), MLO_OK);
    pthread_mutex_lock(&cb_lock);
    int before = cb_store_errors;
    pthread_mutex_unlock(&cb_lock);
    mlo_client_t *c = NULL;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st != MLO_OK)
        return st;
    mlo_run_t *r = NULL;
    st = mlo_start_run(c, "hostile", "memory-only", NULL, &r);
    if (st == MLO_OK)
        st = mlo_log_metric(r, "ok.memory_only", 1, 0);
    if (st == MLO_OK)
        st = mlo_end_run(r, MLO_RUN_FINISHED);
    if (st == MLO_OK)
        st = mlo_client_flush(c, 20000);
    int close_st = mlo_client_close(c);
    if (st == MLO_OK)
        st = close_st;
    pthread_mutex_lock(&cb_lock);
    int said = cb_store_errors > before;
    pthread_mutex_unlock(&cb_lock);
    return st == MLO_OK && !said ? MISMATCH : st;
}

static int open_bad_handle(const mlo_options_t *o) {
    mlo_client_t *c = (mlo_client_t *)1;
    int st = mlo_client_open(o, &c);
    if (st == MLO_OK)
        mlo_client_close(c);
    else if (c != NULL)
        return MISMATCH; /* *out must be cleared on failure */
    return st;
}

/* Starts a run on C, ends it when started. */
static int start(const char *exp, const char *name, mlo_run_t *parent) {
    mlo_run_t *r = (mlo_run_t *)1;
    int st = mlo_start_run(C, exp, name, parent, &r);
    if (st == MLO_OK)
        mlo_end_run(r, MLO_RUN_FINISHED);
    else if (r != NULL)
        return MISMATCH;
    return st;
}

static int resume(const char *run_id) {
    mlo_run_t *r = (mlo_run_t *)1;
    int st = mlo_resume_run(C, run_id, &r);
    if (st != MLO_OK && r != NULL)
        return MISMATCH;
    return st;
}

static int stat_of(const mlo_client_t *c, int which) {
    uint64_t v;
    return mlo_client_stat(c, (mlo_stat)which, &v);
}

static int hist_new(mlo_run_t *run, const char *key, unsigned interval) {
    mlo_histogram_t *h = (mlo_histogram_t *)1;
    int st = mlo_histogram_new(run, key, interval, &h);
    if (st == MLO_OK)
        mlo_histogram_free(h);
    else if (h != NULL)
        return MISMATCH;
    return st;
}

/* into the histogram of run R made by setup() */
static int hist_record(double v) {
    return mlo_histogram_record(H, v);
}

static int start_on(mlo_client_t *c, const char *exp) {
    mlo_run_t *r = (mlo_run_t *)1;
    int st = mlo_start_run(c, exp, NULL, NULL, &r);
    return st != MLO_OK && r != NULL ? MISMATCH : st;
}

static int resume_on(mlo_client_t *c, const char *run_id) {
    mlo_run_t *r = (mlo_run_t *)1;
    int st = mlo_resume_run(c, run_id, &r);
    return st != MLO_OK && r != NULL ? MISMATCH : st;
}

/* Every setter not in a row of its own, on a handle that is not an options
 * object: each must say MLO_ERR_INVALID_ARGUMENT. */
static int every_setter(mlo_options_t *o) {
    int st[] = {
        mlo_options_set_experiment_name(o, "e"),
        mlo_options_set_experiment_id(o, "1"),
        mlo_options_set_token(o, "t"),
        mlo_options_set_basic_auth(o, "u", "p"),
        mlo_options_set_insecure_tls(o, 1),
        mlo_options_set_ca_cert_path(o, "/ca.pem"),
        mlo_options_set_client_cert_path(o, "/c.pem"),
        mlo_options_set_retries(o, 1, 1, 1, 1),
        mlo_options_set_queue_bytes(o, 1u << 20),
        mlo_options_set_full_policy(o, MLO_FULL_DROP, 0),
        mlo_options_set_close_timeout_ms(o, 1),
        mlo_options_set_flush_interval_ms(o, 100),
        mlo_options_set_error_callback(o, on_error, NULL),
        mlo_options_set_store_dir(o, "/tmp/s"),
        mlo_options_set_durable(o, 1),
        mlo_options_set_fsync(o, MLO_FSYNC_ALWAYS, 0),
        mlo_options_set_max_inflight(o, 4),
        mlo_options_set_system_metrics(o, 1),
        mlo_options_set_system_metrics_sampling(o, 1, 1),
        mlo_options_set_system_metrics_node_id(o, "n"),
        mlo_options_set_system_metrics_disk_path(o, "/"),
        mlo_options_set_store_retention(o, 3600),
        mlo_options_set_store_max_bytes(o, 1 << 20),
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        if (st[i] != MLO_ERR_INVALID_ARGUMENT)
            return st[i] == MLO_OK ? MISMATCH : st[i];
    return MLO_ERR_INVALID_ARGUMENT;
}

/* ALL(A(x), A(y), ...): runs x, y, ... in order (the comma operator) and gives
 * their common status, MIXED if they differ.  Not nested. */
#define MIXED (-1003)
static int acc_state;
static int acc_begin(void) {
    acc_state = INT_MIN;
    return 0;
}
static int acc(int st) {
    if (acc_state == INT_MIN)
        acc_state = st;
    else if (acc_state != st)
        acc_state = MIXED;
    return 0;
}
#define A(call) acc(call)
#define ALL(...) (acc_begin(), __VA_ARGS__, acc_state)

/* ---- helpers of the artifact, registry and dataset rows ---- */

/* "runs:/<R's id><suffix>" (four buffers in turn: several per row) */
static const char *runs_uri(const char *suffix) {
    static char b[4][256];
    static int i;
    char *p = b[i++ % 4];
    snprintf(p, sizeof b[0], "runs:/%s%s", mlo_run_id(R), suffix);
    return p;
}
#define RID (mlo_run_id(R))

/* <store_dir>/<name> (four buffers in turn) */
static const char *in_store(const char *name) {
    static char b[4][600];
    static int i;
    char *p = b[i++ % 4];
    snprintf(p, sizeof b[0], "%s/%s", store_dir, name);
    return p;
}

/* Waits for C's events and artifact uploads (rows that read back). */
static int settle(void) {
    return mlo_client_flush(C, 30000);
}

static int list_n, list_bad;
static int on_entry(void *user, const char *path, int is_dir, int64_t size) {
    (void)user;
    list_n++;
    if (!path || !*path || path[0] == '/' || (is_dir && size != -1) || (!is_dir && size < 0))
        list_bad++;
    return 0;
}
static int on_entry_stop(void *user, const char *path, int is_dir, int64_t size) {
    on_entry(user, path, is_dir, size);
    return 1;
}

static int list_on(mlo_client_t *c, const char *run_id, const char *path) {
    list_n = list_bad = 0;
    int st = mlo_list_artifacts(c, run_id, path, on_entry, NULL);
    return st == MLO_OK && list_bad ? MISMATCH : st;
}

/* Lists run_id/path on C after the uploads: want entries (-1: at least one);
 * stop: the callback stops at the first. */
static int list_expect(const char *run_id, const char *path, int want, int stop) {
    int st = settle();
    if (st != MLO_OK)
        return st;
    list_n = list_bad = 0;
    st = mlo_list_artifacts(C, run_id, path, stop ? on_entry_stop : on_entry, NULL);
    if (st == MLO_OK && (list_bad || (want >= 0 ? list_n != want : list_n < 1)))
        return MISMATCH;
    return st;
}

static int dl_on(mlo_client_t *c, const char *run_id, const char *path, const char *dest) {
    return mlo_download_artifacts(c, run_id, path, dest);
}

/* Compares the file at path with n bytes of want. */
static int same_file(const char *path, const void *want, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return MISMATCH;
    unsigned char buf[2048];
    size_t got = fread(buf, 1, sizeof buf, f);
    int eof = fgetc(f) == EOF;
    fclose(f);
    return got == n && eof && !memcmp(buf, want, n) ? MLO_OK : MISMATCH;
}

/* Downloads run_id/path after the uploads into <store_dir>/<sub> (must not
 * exist yet: created) and compares the file <sub>/<file> with BYTES. */
static int dl_expect(const char *run_id, const char *path, const char *sub, const char *file) {
    int st = settle();
    if (st != MLO_OK)
        return st;
    char dest[600], f[700];
    snprintf(dest, sizeof dest, "%s/%s", dl_base, sub);
    st = mlo_download_artifacts(C, run_id, path, dest);
    if (st != MLO_OK)
        return st;
    snprintf(f, sizeof f, "%s/%s", dest, file);
    return same_file(f, BYTES, sizeof BYTES);
}

/* A download directory holding a symbolic link where a downloaded file goes
 * (bytes.bin -> a file outside): never followed, the target never made. */
static int dl_through_link(void) {
    int st = settle();
    if (st != MLO_OK)
        return st;
    char dest[600], link[700], target[700];
    snprintf(dest, sizeof dest, "%s/with-link", dl_base);
    snprintf(link, sizeof link, "%s/bytes.bin", dest);
    snprintf(target, sizeof target, "%s/link-target", store_dir);
    if (mkdir(dest, 0700) != 0 || symlink(target, link) != 0)
        return MISMATCH;
    st = mlo_download_artifacts(C, RID, "ok", dest);
    struct stat sb;
    if (lstat(target, &sb) == 0)
        return MISMATCH; /* written through the link */
    return st;
}

static int64_t reg_version;
static int reg_on(mlo_run_t *r, const char *path, const char *name) {
    int64_t v = -7;
    int st = mlo_register_model(r, path, name, &v);
    if (st == MLO_OK)
        reg_version = v;
    else if (v != -7)
        return MISMATCH; /* *version touched on failure */
    return st;
}
/* registers R's path as a version of name: the version must be want */
static int reg_expect(const char *path, const char *name, int64_t want) {
    int st = reg_on(R, path, name);
    return st == MLO_OK && reg_version != want ? MISMATCH : st;
}

/* Logs to run r of C (a store) one artifact whose run is not proxied: staged
 * (MLO_OK); the uploader must then report MLO_ERR_ARTIFACTS_NOT_PROXIED
 * through the callback and park it. */
static int bytes_parked(mlo_run_t *r) {
    int before = cb_count(MLO_ERR_ARTIFACTS_NOT_PROXIED);
    int st = mlo_log_artifact_bytes(r, "x", 1, "ok/parked.bin");
    if (st != MLO_OK)
        return st;
    if ((st = settle()) != MLO_OK)
        return st;
    return cb_count(MLO_ERR_ARTIFACTS_NOT_PROXIED) > before ? MLO_OK : MISMATCH;
}

/* Downloads R's ok/ after the uploads into dest. */
static int dl_to(const char *dest) {
    int st = settle();
    return st != MLO_OK ? st : mlo_download_artifacts(C, RID, "ok", dest);
}

/* Downloads R's ok/ into a directory whose name is not valid UTF-8. */
static int dl_utf8_dest(void) {
    int st = settle();
    if (st != MLO_OK)
        return st;
    char dest[600], f[700];
    snprintf(dest, sizeof dest, "%s/bad\xff", dl_base);
    st = mlo_download_artifacts(C, RID, "ok", dest);
    if (st != MLO_OK)
        return st;
    snprintf(f, sizeof f, "%s/bytes.bin", dest);
    return same_file(f, BYTES, sizeof BYTES);
}

/* batch inputs (compound literals would not survive the row macro) */
static const char *const KEYS_NULL_MID[] = {"ok.b0", NULL, "ok.b2"};
static const char *const KEYS_BAD_MID[] = {"ok.c0", "no key!", "ok.c2"};
static const char *const KEYS_UTF8_MID[] = {"ok.u0", "no\xff", "ok.u2"};
static const char *const KEYS_TS[] = {"ok.t0", "no.t1", "ok.t2"};
static const double VALS3[] = {1.5, NAN, -INFINITY};
static const int64_t STEPS3[] = {INT64_MIN, 0, INT64_MAX};
static const int64_t TS_NEG_MID[] = {1700000000000, -5, 1700000000002};
static const char *const PKEYS[] = {"ok.p0", "no.p1", "ok.p2"};
static const char *const PVALS_NULL_MID[] = {"a", NULL, "c"};
static const char *const PKEYS2[] = {"ok.q0", "no.q1", "ok.q2"};
static const char *const PVALS_UTF8_MID[] = {"a", "\xc3\x28", "c"};
static const char *const PKEYS_DUP[] = {"ok.dup", "ok.dup"};
static const char *const PVALS_DUP[] = {"x", "y"};
static const char *const TKEYS[] = {"ok.s0", "../no", "ok.s2"};
static const char *const TVALS[] = {"a", "b", "c"};
static const char *const TKEYS_NULLV[] = {"ok.v0", "no.v1"};
static const char *const TVALS_NULLV[] = {"a", NULL};

/* texts shared by rows */
#define BAD_URIS_TEXT                                                                              \
    "run_id `models:/`, `models:/x@`, `models:/@x`, `runs:/`, `models:/a/b/c`, `?`, `../../x`, "   \
    "`models://host/m/1`, `models:/m/latest`, `models:/m/Production`, `runs:/<id>?x=1`"
#define UNKNOWN_TEXT                                                                               \
    "run_id a well-formed id of no run, `models:/no-such-model/1`, "                               \
    "`models:/no-such-model@champion`"
#define NP_NOTE "the run was made on the test server while it did not serve artifacts"
#define NEWLINE_NOTE                                                                               \
    "refused at the call (control characters: the server would refuse the path later)"
#define NEWLINE_FAILS 0 /* refused at the call now: nothing reaches the server */

/*
 * The table.  X_(id, function, bad input, result text (NULL: the status's
 * name), note (NULL: none), the call, accepted statuses...).  A row that
 * tries several inputs uses ALL(A(call), A(call), ...): the calls run in that
 * order and the row gets their common status (MIXED if they differ).
 * Keys that a row expects to land start with "ok."; keys it expects refused
 * never do.
 */
// clang-format off (a table: one row per case, laid out by hand)
#define ROWS(X_)                                                                                   \
    /* ---- statuses ---- */                                                                       \
    X_(strerror_unknown, "mlo_strerror", "-1, INT_MIN, INT_MAX, 1000", "\"unknown status\"", NULL, \
       ALL(A(str_is(mlo_strerror(-1), "unknown status")),                                          \
           A(str_is(mlo_strerror(INT_MIN), "unknown status")),                                     \
           A(str_is(mlo_strerror(INT_MAX), "unknown status")),                                     \
           A(str_is(mlo_strerror(1000), "unknown status"))),                                       \
       MLO_OK)                                                                                     \
    /* ---- options ---- */                                                                        \
    X_(opt_free_null, "mlo_options_free", "NULL, zeroed memory, a client", "no-op", NULL,          \
       NO_CRASH(                                                                                   \
           (mlo_options_free(NULL), mlo_options_free(ZO), mlo_options_free((mlo_options_t *)C))),  \
       MLO_OK)                                                                                     \
    X_(uri_null_opts, "mlo_options_set_tracking_uri", "opts NULL, a client, zeroed memory", NULL,  \
       NULL,                                                                                       \
       ALL(A(mlo_options_set_tracking_uri(NULL, "http://h")),                                      \
           A(mlo_options_set_tracking_uri((mlo_options_t *)C, "http://h")),                        \
           A(mlo_options_set_tracking_uri(ZO, "http://h"))),                                       \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(uri_null, "mlo_options_set_tracking_uri", "uri NULL", NULL, "unsets it",                    \
       mlo_options_set_tracking_uri(O, NULL), MLO_OK)                                              \
    X_(uri_scheme, "mlo_options_set_tracking_uri",                                                 \
       "\"\", `ftp://h`, `file:///x`, `sqlite:///x.db`, `h:5000`, `http://`", NULL, NULL,          \
       ALL(A(mlo_options_set_tracking_uri(O, "")), A(mlo_options_set_tracking_uri(O, "ftp://h")),  \
           A(mlo_options_set_tracking_uri(O, "file:///x")),                                        \
           A(mlo_options_set_tracking_uri(O, "sqlite:///x.db")),                                   \
           A(mlo_options_set_tracking_uri(O, "h:5000")),                                           \
           A(mlo_options_set_tracking_uri(O, "http://"))),                                         \
       MLO_ERR_CONFIG)                                                                             \
    X_(uri_slashes, "mlo_options_set_tracking_uri", "`http:///` (no host, only slashes)", NULL,    \
       "no host: refused", mlo_options_set_tracking_uri(O, "http:///"), MLO_ERR_CONFIG)            \
    X_(uri_utf8, "mlo_options_set_tracking_uri", "invalid UTF-8", NULL,                            \
       "the header lists only OK, INVALID_ARGUMENT, CONFIG, NO_MEMORY for this setter",            \
       mlo_options_set_tracking_uri(O, "http://h\xff/"), MLO_ERR_INVALID_UTF8)                     \
    X_(uri_long, "mlo_options_set_tracking_uri", "1 MB long", NULL, NULL,                          \
       mlo_options_set_tracking_uri(O, P1M), MLO_OK)                                               \
    X_(expname_empty, "mlo_options_set_experiment_name, _experiment_id", "\"\"", NULL, NULL,       \
       ALL(A(mlo_options_set_experiment_name(O, "")), A(mlo_options_set_experiment_id(O, ""))),    \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(expname_utf8, "mlo_options_set_experiment_name, _experiment_id", "invalid UTF-8", NULL,     \
       NULL,                                                                                       \
       ALL(A(mlo_options_set_experiment_name(O, "e\xc0\xaf")),                                     \
           A(mlo_options_set_experiment_id(O, "1\xff"))),                                          \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(token_utf8, "mlo_options_set_token", "invalid UTF-8", NULL, NULL,                           \
       mlo_options_set_token(O, "t\xed\xa0\x80"), MLO_ERR_INVALID_UTF8)                            \
    X_(basic_half, "mlo_options_set_basic_auth", "user without password, password without user",   \
       NULL, NULL,                                                                                 \
       ALL(A(mlo_options_set_basic_auth(O, "u", NULL)),                                            \
           A(mlo_options_set_basic_auth(O, NULL, "p"))),                                           \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(basic_utf8, "mlo_options_set_basic_auth", "invalid UTF-8 password", NULL, NULL,             \
       mlo_options_set_basic_auth(O, "u", "p\xff"), MLO_ERR_INVALID_UTF8)                          \
    X_(insecure_any, "mlo_options_set_insecure_tls", "-5, INT_MAX", NULL,                          \
       "any non-zero value means insecure",                                                        \
       ALL(A(mlo_options_set_insecure_tls(O, -5)), A(mlo_options_set_insecure_tls(O, INT_MAX))),   \
       MLO_OK)                                                                                     \
    X_(paths_utf8, "mlo_options_set_ca_cert_path, _client_cert_path", "invalid UTF-8", NULL, NULL, \
       ALL(A(mlo_options_set_ca_cert_path(O, "/ca\xff.pem")),                                      \
           A(mlo_options_set_client_cert_path(O, "/c\xc3.pem"))),                                  \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(paths_missing, "mlo_options_set_ca_cert_path, _client_cert_path",                           \
       "a file that does not exist", NULL, "requests then fail with MLO_ERR_TLS (test_tls)",       \
       ALL(A(mlo_options_set_ca_cert_path(O, "/nonexistent/ca.pem")),                              \
           A(mlo_options_set_client_cert_path(O, "../../nonexistent.pem"))),                       \
       MLO_OK)                                                                                     \
    X_(retries_over, "mlo_options_set_retries", "max_retries 11, INT_MAX", NULL, NULL,             \
       ALL(A(mlo_options_set_retries(O, 11, -1, -1, -1)),                                          \
           A(mlo_options_set_retries(O, INT_MAX, -1, -1, -1))),                                    \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(retries_nan, "mlo_options_set_retries", "NaN or +Infinity backoff, jitter or timeout",      \
       NULL, NULL,                                                                                 \
       ALL(A(mlo_options_set_retries(O, 1, NAN, -1, -1)),                                          \
           A(mlo_options_set_retries(O, 1, -1, NAN, -1)),                                          \
           A(mlo_options_set_retries(O, 1, -1, -1, NAN)),                                          \
           A(mlo_options_set_retries(O, 1, INFINITY, -1, -1)),                                     \
           A(mlo_options_set_retries(O, 1, -1, INFINITY, -1)),                                     \
           A(mlo_options_set_retries(O, 1, -1, -1, INFINITY))),                                    \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(retries_huge, "mlo_options_set_retries", "backoff or jitter 3601 s, timeout 0 or 86401 s",  \
       NULL, NULL,                                                                                 \
       ALL(A(mlo_options_set_retries(O, 1, 3601, -1, -1)),                                         \
           A(mlo_options_set_retries(O, 1, -1, 3601, -1)),                                         \
           A(mlo_options_set_retries(O, 1, -1, -1, 0)),                                            \
           A(mlo_options_set_retries(O, 1, -1, -1, 86401))),                                       \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(retries_negative, "mlo_options_set_retries", "INT_MIN, -Infinity, -1e300", NULL,            \
       "negative: keep the environment's or the default value",                                    \
       mlo_options_set_retries(O, INT_MIN, -INFINITY, -1, -1e300), MLO_OK)                         \
    X_(queue_bytes, "mlo_options_set_queue_bytes", "0, 1, 65535, 1 GiB + 1, SIZE_MAX", NULL, NULL, \
       ALL(A(mlo_options_set_queue_bytes(O, 0)), A(mlo_options_set_queue_bytes(O, 1)),             \
           A(mlo_options_set_queue_bytes(O, 65535)),                                               \
           A(mlo_options_set_queue_bytes(O, (1u << 30) + 1)),                                      \
           A(mlo_options_set_queue_bytes(O, SIZE_MAX))),                                           \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(policy, "mlo_options_set_full_policy", "policy 2 or -1; wait_ms 60001 or UINT_MAX", NULL,   \
       NULL,                                                                                       \
       ALL(A(mlo_options_set_full_policy(O, (mlo_full_policy)2, 10)),                              \
           A(mlo_options_set_full_policy(O, (mlo_full_policy)-1, 10)),                             \
           A(mlo_options_set_full_policy(O, MLO_FULL_WAIT, 60001)),                                \
           A(mlo_options_set_full_policy(O, MLO_FULL_DROP, UINT_MAX))),                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(close_timeout_huge, "mlo_options_set_close_timeout_ms", "UINT_MAX", NULL,                   \
       "accepted: a close may then wait ~49 days for a server that is down",                       \
       mlo_options_set_close_timeout_ms(O, UINT_MAX), MLO_OK)                                      \
    X_(flush_interval, "mlo_options_set_flush_interval_ms", "0, 60001, UINT_MAX", NULL, NULL,      \
       ALL(A(mlo_options_set_flush_interval_ms(O, 0)),                                             \
           A(mlo_options_set_flush_interval_ms(O, 60001)),                                         \
           A(mlo_options_set_flush_interval_ms(O, UINT_MAX))),                                     \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(store_dir_empty, "mlo_options_set_store_dir", "\"\"", NULL, NULL,                           \
       mlo_options_set_store_dir(O, ""), MLO_ERR_INVALID_ARGUMENT)                                 \
    X_(store_dir_utf8, "mlo_options_set_store_dir", "invalid UTF-8", NULL, NULL,                   \
       mlo_options_set_store_dir(O, "/tmp/s\xc3"), MLO_ERR_INVALID_UTF8)                           \
    X_(durable_any, "mlo_options_set_durable", "-5, INT_MAX", NULL, "any non-zero value means on", \
       ALL(A(mlo_options_set_durable(O, -5)), A(mlo_options_set_durable(O, INT_MAX))), MLO_OK)     \
    X_(fsync_bad, "mlo_options_set_fsync", "policy 3 or -1; INTERVAL with 0 or 3600001 ms", NULL,  \
       NULL,                                                                                       \
       ALL(A(mlo_options_set_fsync(O, (mlo_fsync_policy)3, 1000)),                                 \
           A(mlo_options_set_fsync(O, (mlo_fsync_policy)-1, 1000)),                                \
           A(mlo_options_set_fsync(O, MLO_FSYNC_INTERVAL, 0)),                                     \
           A(mlo_options_set_fsync(O, MLO_FSYNC_INTERVAL, 3600001))),                              \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(inflight_bad, "mlo_options_set_max_inflight", "0, 17, UINT_MAX", NULL, "1 to 16",           \
       ALL(A(mlo_options_set_max_inflight(O, 0)), A(mlo_options_set_max_inflight(O, 17)),          \
           A(mlo_options_set_max_inflight(O, UINT_MAX))),                                          \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(sys_sampling_bad, "mlo_options_set_system_metrics_sampling",                                \
       "interval NaN, 0, 0.0009, 86401, +Inf; samples 0, 1000001", NULL,                           \
       "0.001 to 86400 s, 1 to 1,000,000 samples (negative: keep)",                                \
       ALL(A(mlo_options_set_system_metrics_sampling(O, NAN, 1)),                                  \
           A(mlo_options_set_system_metrics_sampling(O, 0, 1)),                                    \
           A(mlo_options_set_system_metrics_sampling(O, 0.0009, 1)),                               \
           A(mlo_options_set_system_metrics_sampling(O, 86401, 1)),                                \
           A(mlo_options_set_system_metrics_sampling(O, INFINITY, 1)),                             \
           A(mlo_options_set_system_metrics_sampling(O, 10, 0)),                                   \
           A(mlo_options_set_system_metrics_sampling(O, 10, 1000001))),                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(sys_node_bad, "mlo_options_set_system_metrics_node_id",                                     \
       "`../x`, `a//b`, a control character, 251 characters", NULL,                                \
       "system/<node id>/... must be keys MLflow takes",                                           \
       ALL(A(mlo_options_set_system_metrics_node_id(O, "../x")),                                   \
           A(mlo_options_set_system_metrics_node_id(O, "a//b")),                                   \
           A(mlo_options_set_system_metrics_node_id(O, "a\x01")),                                  \
           A(mlo_options_set_system_metrics_node_id(O, K251))),                                    \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(sys_node_utf8, "mlo_options_set_system_metrics_node_id", "invalid UTF-8", NULL, NULL,       \
       mlo_options_set_system_metrics_node_id(O, "n\xc3"), MLO_ERR_INVALID_UTF8)                   \
    X_(sys_disk_bad, "mlo_options_set_system_metrics_disk_path", "\"\"", NULL, NULL,               \
       mlo_options_set_system_metrics_disk_path(O, ""), MLO_ERR_INVALID_ARGUMENT)                  \
    X_(retention_bad, "mlo_options_set_store_retention", "-2, INT64_MIN", NULL,                    \
       "-1 is forever, 0 at once",                                                                 \
       ALL(A(mlo_options_set_store_retention(O, -2)),                                              \
           A(mlo_options_set_store_retention(O, INT64_MIN))),                                      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(max_bytes_bad, "mlo_options_set_store_max_bytes", "-1, INT64_MIN", NULL, "0 is no cap",     \
       ALL(A(mlo_options_set_store_max_bytes(O, -1)),                                              \
           A(mlo_options_set_store_max_bytes(O, INT64_MIN))),                                      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(callback_null, "mlo_options_set_error_callback", "fn NULL with user data", NULL,            \
       "no callback", mlo_options_set_error_callback(O, NULL, (void *)1), MLO_OK)                  \
    X_(setters_null_opts, "mlo_options_set_* (all the others)",                                    \
       "opts NULL, a client, zeroed memory", NULL, NULL,                                           \
       ALL(A(every_setter(NULL)), A(every_setter((mlo_options_t *)C)), A(every_setter(ZO))),       \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    /* ---- client ---- */                                                                         \
    X_(open_out_null, "mlo_client_open", "out NULL", NULL, NULL, mlo_client_open(NULL, NULL),      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(open_bad_opts, "mlo_client_open", "opts is a client, zeroed memory", NULL,                  \
       "*out set to NULL",                                                                         \
       ALL(A(open_bad_handle((const mlo_options_t *)C)), A(open_bad_handle(ZO))),                  \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(open_no_uri, "mlo_client_open", "no tracking URI at all", NULL,                             \
       "a local store: runs kept on disk for `mlo sync`", open_env(NULL, NULL), MLO_OK)            \
    X_(open_env_uri, "mlo_client_open",                                                            \
       "`MLFLOW_TRACKING_URI` = `ftp://h`, `h:5000`, `http://`, invalid UTF-8", NULL, NULL,        \
       ALL(A(open_env("MLFLOW_TRACKING_URI", "ftp://h")),                                          \
           A(open_env("MLFLOW_TRACKING_URI", "h:5000")),                                           \
           A(open_env("MLFLOW_TRACKING_URI", "http://")),                                          \
           A(open_env("MLFLOW_TRACKING_URI", "http://h\xff"))),                                    \
       MLO_ERR_CONFIG)                                                                             \
    X_(open_env_retries, "mlo_client_open",                                                        \
       "`MLFLOW_HTTP_REQUEST_MAX_RETRIES` = `abc`, `2.5`, `-1`, `nan`, `3 `", NULL, NULL,          \
       ALL(A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "abc", NULL, NULL, NULL)),               \
           A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2.5", NULL, NULL, NULL)),               \
           A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "-1", NULL, NULL, NULL)),                \
           A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "nan", NULL, NULL, NULL)),               \
           A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3 ", NULL, NULL, NULL))),               \
       MLO_ERR_CONFIG)                                                                             \
    X_(open_env_retries_huge, "mlo_client_open", "`MLFLOW_HTTP_REQUEST_MAX_RETRIES=1000000000`",   \
       NULL, "capped at 10, as MLflow does",                                                       \
       open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1000000000", NULL, NULL, NULL), MLO_OK)       \
    X_(open_env_timeout, "mlo_client_open",                                                        \
       "`MLFLOW_HTTP_REQUEST_TIMEOUT` = `0`, `-3`, `1e400`; `..._BACKOFF_FACTOR=-1`", NULL, NULL,  \
       ALL(A(open_with("MLFLOW_HTTP_REQUEST_TIMEOUT", "0", NULL, NULL, NULL)),                     \
           A(open_with("MLFLOW_HTTP_REQUEST_TIMEOUT", "-3", NULL, NULL, NULL)),                    \
           A(open_with("MLFLOW_HTTP_REQUEST_TIMEOUT", "1e400", NULL, NULL, NULL)),                 \
           A(open_with("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "-1", NULL, NULL, NULL))),            \
       MLO_ERR_CONFIG)                                                                             \
    X_(open_env_inflight, "mlo_client_open", "`MLO_MAX_INFLIGHT` = `0`, `17`, `2.5`, `four`",      \
       NULL, NULL,                                                                                 \
       ALL(A(open_with("MLO_MAX_INFLIGHT", "0", NULL, NULL, NULL)),                                \
           A(open_with("MLO_MAX_INFLIGHT", "17", NULL, NULL, NULL)),                               \
           A(open_with("MLO_MAX_INFLIGHT", "2.5", NULL, NULL, NULL)),                              \
           A(open_with("MLO_MAX_INFLIGHT", "four", NULL, NULL, NULL))),                            \
       MLO_ERR_CONFIG)                                                                             \
    X_(open_env_store, "mlo_client_open",                                                          \
       "`MLO_STORE_RETENTION` = `-2`, `7x`, `1.5d`, `d`; `MLO_STORE_MAX_BYTES` = `-1`, `5Q`, "     \
       "`1e9`",                                                                                    \
       NULL, NULL,                                                                                 \
       ALL(A(open_with("MLO_STORE_RETENTION", "-2", NULL, NULL, NULL)),                            \
           A(open_with("MLO_STORE_RETENTION", "7x", NULL, NULL, NULL)),                            \
           A(open_with("MLO_STORE_RETENTION", "1.5d", NULL, NULL, NULL)),                          \
           A(open_with("MLO_STORE_RETENTION", "d", NULL, NULL, NULL)),                             \
           A(open_with("MLO_STORE_MAX_BYTES", "-1", NULL, NULL, NULL)),                            \
           A(open_with("MLO_STORE_MAX_BYTES", "5Q", NULL, NULL, NULL)),                            \
           A(open_with("MLO_STORE_MAX_BYTES", "1e9", NULL, NULL, NULL))),                          \
       MLO_ERR_CONFIG)                                                                             \
    X_(open_env_bool, "mlo_client_open",                                                           \
       "`MLFLOW_TRACKING_INSECURE_TLS=maybe`, `MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER=2`", NULL,   \
       NULL,                                                                                       \
       ALL(A(open_with("MLFLOW_TRACKING_INSECURE_TLS", "maybe", NULL, NULL, NULL)),                \
           A(open_with("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", "2", NULL, NULL, NULL))),         \
       MLO_ERR_CONFIG)                                                                             \
    X_(open_store_unusable, "mlo_client_open",                                                     \
       "store directory a regular file, under one, or where it cannot be created", NULL,           \
       "opens; MLO_ERR_STORE to the callback; events kept in memory still land",                   \
       ALL(A(open_store(store_file)), A(open_store(store_under_file)),                             \
           A(open_store("/proc/mlo-no-such/store"))),                                              \
       MLO_OK)                                                                                     \
    X_(open_token_crlf, "mlo_options_set_token, _basic_auth",                                      \
       "token, user or password with CR/LF (header injection), user with `:`", NULL,               \
       "refused by the setter; what was set before stays",                                         \
       ALL(A(open_with(NULL, NULL, "tok\r\nX-Injected: 1", NULL, NULL)),                           \
           A(open_with(NULL, NULL, NULL, "u\r\nX: y", "p")),                                       \
           A(open_with(NULL, NULL, NULL, "u", "p\nX: y")),                                         \
           A(open_with(NULL, NULL, NULL, "a:b", "p"))),                                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(open_token_crlf_env, "mlo_client_open",                                                     \
       "`MLFLOW_TRACKING_TOKEN` (or _USERNAME/_PASSWORD) with CR/LF", NULL,                        \
       "refused, the message names the variables, not their values",                               \
       open_with("MLFLOW_TRACKING_TOKEN", "t\r\nX: 1", NULL, NULL, NULL), MLO_ERR_CONFIG)          \
    X_(flush_null, "mlo_client_flush", "NULL, a run, zeroed memory", NULL, NULL,                   \
       ALL(A(mlo_client_flush(NULL, 10)), A(mlo_client_flush((mlo_client_t *)R, 10)),              \
           A(mlo_client_flush(ZC, 10))),                                                           \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(flush_zero, "mlo_client_flush", "timeout 0", NULL, "OK when nothing is pending",            \
       mlo_client_flush(C, 0), MLO_ERR_TIMEOUT, MLO_OK)                                            \
    X_(close_null, "mlo_client_close", "NULL, a run, an options object, zeroed memory", NULL,      \
       "nothing closed",                                                                           \
       ALL(A(mlo_client_close(NULL)), A(mlo_client_close((mlo_client_t *)R)),                      \
           A(mlo_client_close((mlo_client_t *)O)), A(mlo_client_close(ZC))),                       \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(stat_null, "mlo_client_stat", "client NULL or zeroed; value NULL", NULL, NULL,              \
       ALL(A(stat_of(NULL, MLO_STAT_SENT)), A(stat_of(ZC, MLO_STAT_SENT)),                         \
           A(mlo_client_stat(C, MLO_STAT_SENT, NULL))),                                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(stat_enum, "mlo_client_stat", "which -1, 64, INT_MAX", NULL, NULL,                          \
       ALL(A(stat_of(C, -1)), A(stat_of(C, 64)), A(stat_of(C, INT_MAX))),                          \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    /* ---- runs ---- */                                                                           \
    X_(start_null, "mlo_start_run", "client NULL, a run, zeroed memory; out NULL", NULL,           \
       "*out set to NULL",                                                                         \
       ALL(A(start_on(NULL, "e")), A(start_on((mlo_client_t *)R, "e")), A(start_on(ZC, "e")),      \
           A(mlo_start_run(C, "e", NULL, NULL, NULL))),                                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(start_empty, "mlo_start_run", "experiment or run name \"\"", NULL, NULL,                    \
       ALL(A(start("", NULL, NULL)), A(start("e", "", NULL))), MLO_ERR_INVALID_ARGUMENT)           \
    X_(start_utf8, "mlo_start_run", "experiment or run name with invalid UTF-8", NULL, NULL,       \
       ALL(A(start("e\xff", NULL, NULL)), A(start("e", "r\xe2\x82", NULL))), MLO_ERR_INVALID_UTF8) \
    X_(start_parent, "mlo_start_run", "parent of another client, a client, zeroed memory", NULL,   \
       NULL,                                                                                       \
       ALL(A(start("e", NULL, R2)), A(start("e", NULL, (mlo_run_t *)C)), A(start("e", NULL, ZR))), \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(start_exp_long, "mlo_start_run", "experiment name of 501 characters", NULL,                 \
       "refused by the server (limit 500)", start(N501, NULL, NULL), MLO_ERR_SERVER_INVALID)       \
    X_(start_exp_traversal, "mlo_start_run", "experiment name `../../etc/passwd`", NULL,           \
       "a name, not a path: created as given", start("../../etc/passwd", "ok-traversal", NULL),    \
       MLO_OK)                                                                                     \
    X_(start_run_name_long, "mlo_start_run", "run name of 1 MB", NULL,                             \
       "the server keeps 8000 characters of mlflow.runName", start("hostile", V1M, NULL), MLO_OK)  \
    X_(resume_null, "mlo_resume_run", "client NULL, out NULL, run_id NULL or \"\"", NULL, NULL,    \
       ALL(A(resume_on(NULL, "0123456789abcdef0123456789abcdef")),                                 \
           A(mlo_resume_run(C, "0123456789abcdef0123456789abcdef", NULL)), A(resume(NULL)),        \
           A(resume(""))),                                                                         \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(resume_utf8, "mlo_resume_run", "run_id with invalid UTF-8", NULL, NULL, resume("ab\xff"),   \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(resume_traversal, "mlo_resume_run", "run_id `../../x`, `a&run_id=b`, `a b`", NULL,          \
       "sent URL-encoded; the server refuses the id",                                              \
       ALL(A(resume("../../x")), A(resume("a&run_id=b")), A(resume("a b"))),                       \
       MLO_ERR_SERVER_INVALID)                                                                     \
    X_(resume_long, "mlo_resume_run", "run_id of 300 characters", NULL,                            \
       "refused at the call, or by the server", resume(V6001 + 5701), MLO_ERR_INVALID_ARGUMENT,    \
       MLO_ERR_SERVER_INVALID)                                                                     \
    X_(resume_unknown, "mlo_resume_run", "a well-formed id of no run", NULL, NULL,                 \
       resume("0123456789abcdef0123456789abcdef"), MLO_ERR_NOT_FOUND)                              \
    X_(run_id_null, "mlo_run_id, mlo_run_experiment_id", "NULL, a client, zeroed memory", "NULL",  \
       NULL,                                                                                       \
       ALL(A(is_null(mlo_run_id(NULL))), A(is_null(mlo_run_id((mlo_run_t *)C))),                   \
           A(is_null(mlo_run_id(ZR))), A(is_null(mlo_run_experiment_id(NULL))),                    \
           A(is_null(mlo_run_experiment_id((mlo_run_t *)C))),                                      \
           A(is_null(mlo_run_experiment_id(ZR)))),                                                 \
       MLO_OK)                                                                                     \
    X_(sys_run_null, "mlo_run_set_system_metrics", "NULL, a client, zeroed memory", NULL, NULL,    \
       ALL(A(mlo_run_set_system_metrics(NULL, 1)),                                                 \
           A(mlo_run_set_system_metrics((mlo_run_t *)C, 1)),                                       \
           A(mlo_run_set_system_metrics(ZR, 0))),                                                  \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(sys_run_closed, "mlo_run_set_system_metrics", "a run of a closed client", NULL, NULL,       \
       mlo_run_set_system_metrics(CR, 1), MLO_ERR_CLOSED)                                          \
    X_(end_null, "mlo_end_run", "NULL, a client, zeroed memory", NULL, NULL,                       \
       ALL(A(mlo_end_run(NULL, MLO_RUN_FINISHED)),                                                 \
           A(mlo_end_run((mlo_run_t *)C, MLO_RUN_FINISHED)),                                       \
           A(mlo_end_run(ZR, MLO_RUN_FINISHED))),                                                  \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(end_enum, "mlo_end_run", "status 0, -1, 6, INT_MAX, RUNNING, SCHEDULED", NULL, NULL,        \
       ALL(A(mlo_end_run(R, (mlo_run_status)0)), A(mlo_end_run(R, (mlo_run_status)-1)),            \
           A(mlo_end_run(R, (mlo_run_status)6)), A(mlo_end_run(R, (mlo_run_status)INT_MAX)),       \
           A(mlo_end_run(R, MLO_RUN_RUNNING)), A(mlo_end_run(R, MLO_RUN_SCHEDULED))),              \
       MLO_ERR_INVALID_STATUS)                                                                     \
    X_(end_twice, "mlo_end_run", "a run ended twice (FINISHED, then KILLED)", NULL,                \
       "the last one wins, as on the server",                                                      \
       ALL(A(mlo_end_run(R2, MLO_RUN_FINISHED)), A(mlo_end_run(R2, MLO_RUN_KILLED))), MLO_OK)      \
    /* ---- metrics ---- */                                                                        \
    X_(metric_run_null, "mlo_log_metric", "run NULL, a client, zeroed memory", NULL, NULL,         \
       ALL(A(mlo_log_metric(NULL, "k", 1, 0)), A(mlo_log_metric((mlo_run_t *)C, "k", 1, 0)),       \
           A(mlo_log_metric(ZR, "k", 1, 0))),                                                      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(metric_key_null, "mlo_log_metric", "key NULL", NULL, NULL, mlo_log_metric(R, NULL, 1, 0),   \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(metric_key_empty, "mlo_log_metric", "key \"\"", NULL, NULL, mlo_log_metric(R, "", 1, 0),    \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(metric_key_251, "mlo_log_metric", "key of 251 characters; of 10 MB", NULL, NULL,            \
       ALL(A(mlo_log_metric(R, K251, 1, 0)), A(mlo_log_metric(R, K10M, 1, 0))),                    \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(metric_key_250, "mlo_log_metric", "key of 250 characters", NULL, "lands",                   \
       mlo_log_metric(R, K250, 1, 0), MLO_OK)                                                      \
    X_(metric_key_chars, "mlo_log_metric",                                                         \
       "key `bad key!`, `a,b`, `a=b`, `a\\tb`, `a\\nb`, `a\\\\b`, `a;b`, `é!`, an emoji", NULL,    \
       NULL,                                                                                       \
       ALL(A(mlo_log_metric(R, "bad key!", 1, 0)), A(mlo_log_metric(R, "a,b", 1, 0)),              \
           A(mlo_log_metric(R, "a=b", 1, 0)), A(mlo_log_metric(R, "a\tb", 1, 0)),                  \
           A(mlo_log_metric(R, "a\nb", 1, 0)), A(mlo_log_metric(R, "a\\b", 1, 0)),                 \
           A(mlo_log_metric(R, "a;b", 1, 0)), A(mlo_log_metric(R, "\xc3\xa9!", 1, 0)),             \
           A(mlo_log_metric(R, "loss\xf0\x9f\x98\x80", 1, 0))),                                    \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(metric_key_path, "mlo_log_metric",                                                          \
       "key `../x`, `a/../b`, `..`, `..x`, `.`, `a/./b`, `a//b`, `/abs`, `a/`", NULL, NULL,        \
       ALL(A(mlo_log_metric(R, "../x", 1, 0)), A(mlo_log_metric(R, "a/../b", 1, 0)),               \
           A(mlo_log_metric(R, "..", 1, 0)), A(mlo_log_metric(R, "..x", 1, 0)),                    \
           A(mlo_log_metric(R, ".", 1, 0)), A(mlo_log_metric(R, "a/./b", 1, 0)),                   \
           A(mlo_log_metric(R, "a//b", 1, 0)), A(mlo_log_metric(R, "/abs", 1, 0)),                 \
           A(mlo_log_metric(R, "a/", 1, 0))),                                                      \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(metric_key_utf8, "mlo_log_metric",                                                          \
       "key with a stray byte, an overlong `/`, a surrogate, a cut-off sequence", NULL, NULL,      \
       ALL(A(mlo_log_metric(R, "k\xff", 1, 0)), A(mlo_log_metric(R, "a\xc0\xaf", 1, 0)),           \
           A(mlo_log_metric(R, "\xed\xa0\x80", 1, 0)), A(mlo_log_metric(R, "k\xe2\x82", 1, 0))),   \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(metric_key_mixed, "mlo_log_metric", "key with a bad character before invalid UTF-8", NULL,  \
       "the first problem found wins", mlo_log_metric(R, "bad!\xff", 1, 0), MLO_ERR_INVALID_KEY)   \
    X_(metric_key_unicode, "mlo_log_metric", "key `ok.größe/温度` (letters of any script)", NULL,  \
       "lands", mlo_log_metric(R, "ok.größe/温度", 1, 0), MLO_OK)                                  \
    X_(metric_nan, "mlo_log_metric", "value NaN, +Infinity, -Infinity", NULL,                      \
       "land as NaN and ±1.797e308 (how the server stores infinities)",                            \
       ALL(A(mlo_log_metric(R, "ok.nan", NAN, 0)), A(mlo_log_metric(R, "ok.inf", INFINITY, 0)),    \
           A(mlo_log_metric(R, "ok.ninf", -INFINITY, 0))),                                         \
       MLO_OK)                                                                                     \
    X_(metric_extreme, "mlo_log_metric", "value -0.0, DBL_MAX, 5e-324", NULL, "land",              \
       ALL(A(mlo_log_metric(R, "ok.negzero", -0.0, 0)),                                            \
           A(mlo_log_metric(R, "ok.max", DBL_MAX, 0)), A(mlo_log_metric(R, "ok.min", 5e-324, 0))), \
       MLO_OK)                                                                                     \
    X_(metric_steps, "mlo_log_metric", "step -1, INT64_MIN, INT64_MAX", NULL, "land",              \
       ALL(A(mlo_log_metric(R, "ok.step", 1, -1)), A(mlo_log_metric(R, "ok.step", 2, INT64_MIN)),  \
           A(mlo_log_metric(R, "ok.step", 3, INT64_MAX))),                                         \
       MLO_OK)                                                                                     \
    X_(metric_ts_null, "mlo_log_metric_ts", "run NULL, key NULL", NULL, NULL,                      \
       ALL(A(mlo_log_metric_ts(NULL, "k", 1, 0, 1)), A(mlo_log_metric_ts(R, NULL, 1, 0, 1))),      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(metric_ts_neg, "mlo_log_metric_ts", "timestamp -1, INT64_MIN", NULL, NULL,                  \
       ALL(A(mlo_log_metric_ts(R, "no.ts", 1, 0, -1)),                                             \
           A(mlo_log_metric_ts(R, "no.ts", 1, 0, INT64_MIN))),                                     \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(metric_ts_edge, "mlo_log_metric_ts", "timestamp 0, INT64_MAX", NULL, "land",                \
       ALL(A(mlo_log_metric_ts(R, "ok.ts", 1, 0, 0)),                                              \
           A(mlo_log_metric_ts(R, "ok.ts", 2, 1, INT64_MAX))),                                     \
       MLO_OK)                                                                                     \
    X_(metric_ts_key, "mlo_log_metric_ts", "key `../x`", NULL, NULL,                               \
       mlo_log_metric_ts(R, "../x", 1, 0, 1), MLO_ERR_INVALID_KEY)                                 \
    /* ---- params and tags ---- */                                                                \
    X_(param_null, "mlo_log_param", "run NULL or zeroed, key NULL, value NULL", NULL, NULL,        \
       ALL(A(mlo_log_param(NULL, "k", "v")), A(mlo_log_param(ZR, "k", "v")),                       \
           A(mlo_log_param(R, NULL, "v")), A(mlo_log_param(R, "no.k", NULL))),                     \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(param_key, "mlo_log_param", "key \"\", `../etc/passwd`, `a b!`, 251 characters", NULL,      \
       NULL,                                                                                       \
       ALL(A(mlo_log_param(R, "", "v")), A(mlo_log_param(R, "../etc/passwd", "v")),                \
           A(mlo_log_param(R, "a b!", "v")), A(mlo_log_param(R, K251, "v"))),                      \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(param_utf8, "mlo_log_param", "key or value with invalid UTF-8", NULL, NULL,                 \
       ALL(A(mlo_log_param(R, "no.v", "v\xc3")), A(mlo_log_param(R, "no\xff", "v"))),              \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(param_empty, "mlo_log_param", "value \"\"", NULL, "lands",                                  \
       mlo_log_param(R, "ok.empty", ""), MLO_OK)                                                   \
    X_(param_long, "mlo_log_param", "value of 6001 characters; of 1 MB; 7000 x `é`", NULL,         \
       "truncated to 6000 characters (on a character boundary), MLO_WARN_TRUNCATED",               \
       ALL(A(mlo_log_param(R, "ok.long", V6001)), A(mlo_log_param(R, "ok.1m", V1M)),               \
           A(mlo_log_param(R, "ok.longe", V7000E))),                                               \
       MLO_OK)                                                                                     \
    X_(param_same, "mlo_log_param", "the same key and value again", NULL, "stored once",           \
       ALL(A(mlo_log_param(R, "ok.same", "v")), A(mlo_log_param(R, "ok.same", "v"))), MLO_OK)      \
    X_(param_conflict, "mlo_log_param", "the same key with another value", NULL,                   \
       "refused later by the server: MLO_ERR_SERVER_INVALID to the callback, MLO_STAT_FAILED; "    \
       "the first value stays, nothing else is lost",                                              \
       ALL(A(mlo_log_param(R, "ok.conflict", "first")),                                            \
           A(mlo_log_param(R, "ok.conflict", "second"))),                                          \
       MLO_OK)                                                                                     \
    X_(tag_null, "mlo_set_tag", "run NULL, key NULL, value NULL", NULL, NULL,                      \
       ALL(A(mlo_set_tag(NULL, "k", "v")), A(mlo_set_tag(R, NULL, "v")),                           \
           A(mlo_set_tag(R, "no.k", NULL))),                                                       \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(tag_key, "mlo_set_tag", "key `/abs`, `a//b`, 251 characters", NULL, NULL,                   \
       ALL(A(mlo_set_tag(R, "/abs", "v")), A(mlo_set_tag(R, "a//b", "v")),                         \
           A(mlo_set_tag(R, K251, "v"))),                                                          \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(tag_utf8, "mlo_set_tag", "value above U+10FFFF", NULL, NULL,                                \
       mlo_set_tag(R, "no.t", "\xf4\x90\x80\x80"), MLO_ERR_INVALID_UTF8)                           \
    X_(tag_long, "mlo_set_tag", "value of 8001 characters", NULL,                                  \
       "truncated to 8000 characters, MLO_WARN_TRUNCATED", mlo_set_tag(R, "ok.longtag", V8001),    \
       MLO_OK)                                                                                     \
    /* ---- batches ---- */                                                                        \
    X_(metrics_n0, "mlo_log_metrics, mlo_log_params, mlo_set_tags", "n 0 with NULL arrays", NULL,  \
       "nothing to do",                                                                            \
       ALL(A(mlo_log_metrics(R, 0, NULL, NULL, NULL, NULL)), A(mlo_log_params(R, 0, NULL, NULL)),  \
           A(mlo_set_tags(R, 0, NULL, NULL))),                                                     \
       MLO_OK)                                                                                     \
    X_(metrics_null, "mlo_log_metrics", "run NULL; keys or values NULL; n SIZE_MAX with NULL",     \
       NULL, "nothing queued",                                                                     \
       ALL(A(mlo_log_metrics(NULL, 3, KEYS_BAD_MID, VALS3, NULL, NULL)),                           \
           A(mlo_log_metrics(R, 3, NULL, VALS3, NULL, NULL)),                                      \
           A(mlo_log_metrics(R, 3, KEYS_BAD_MID, NULL, NULL, NULL)),                               \
           A(mlo_log_metrics(R, SIZE_MAX, NULL, NULL, NULL, NULL))),                               \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(metrics_key_null_mid, "mlo_log_metrics", "keys[1] NULL", NULL, "keys[0] and keys[2] land",  \
       mlo_log_metrics(R, 3, KEYS_NULL_MID, VALS3, STEPS3, NULL), MLO_ERR_INVALID_ARGUMENT)        \
    X_(metrics_key_bad_mid, "mlo_log_metrics", "keys[1] `no key!`", NULL,                          \
       "keys[0] and keys[2] land", mlo_log_metrics(R, 3, KEYS_BAD_MID, VALS3, NULL, NULL),         \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(metrics_key_utf8_mid, "mlo_log_metrics", "keys[1] invalid UTF-8", NULL,                     \
       "keys[0] and keys[2] land", mlo_log_metrics(R, 3, KEYS_UTF8_MID, VALS3, NULL, NULL),        \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(metrics_ts_mid, "mlo_log_metrics", "timestamps_ms[1] -5", NULL, "entries 0 and 2 land",     \
       mlo_log_metrics(R, 3, KEYS_TS, VALS3, NULL, TS_NEG_MID), MLO_ERR_INVALID_ARGUMENT)          \
    X_(params_null, "mlo_log_params, mlo_set_tags",                                                \
       "run NULL; keys or values NULL (n 3); n SIZE_MAX with NULL", NULL, "nothing queued",        \
       ALL(A(mlo_log_params(NULL, 3, PKEYS, PVALS_NULL_MID)),                                      \
           A(mlo_log_params(R, 3, NULL, PVALS_NULL_MID)), A(mlo_log_params(R, 3, PKEYS, NULL)),    \
           A(mlo_log_params(R, SIZE_MAX, NULL, NULL)), A(mlo_set_tags(NULL, 3, TKEYS, TVALS)),     \
           A(mlo_set_tags(R, 3, NULL, TVALS)), A(mlo_set_tags(R, 3, TKEYS, NULL)),                 \
           A(mlo_set_tags(R, SIZE_MAX, NULL, NULL))),                                              \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(params_null_mid, "mlo_log_params", "values[1] NULL", NULL, "entries 0 and 2 land",          \
       mlo_log_params(R, 3, PKEYS, PVALS_NULL_MID), MLO_ERR_INVALID_ARGUMENT)                      \
    X_(params_utf8_mid, "mlo_log_params", "values[1] invalid UTF-8", NULL, "entries 0 and 2 land", \
       mlo_log_params(R, 3, PKEYS2, PVALS_UTF8_MID), MLO_ERR_INVALID_UTF8)                         \
    X_(params_dup, "mlo_log_params", "one key twice, with two values", NULL,                       \
       "the first lands; the server refuses the second (MLO_STAT_FAILED)",                         \
       mlo_log_params(R, 2, PKEYS_DUP, PVALS_DUP), MLO_OK)                                         \
    X_(tags_key_mid, "mlo_set_tags", "keys[1] `../no`", NULL, "entries 0 and 2 land",              \
       mlo_set_tags(R, 3, TKEYS, TVALS), MLO_ERR_INVALID_KEY)                                      \
    X_(tags_value_null, "mlo_set_tags", "values[1] NULL", NULL, "entry 0 lands",                   \
       mlo_set_tags(R, 2, TKEYS_NULLV, TVALS_NULLV), MLO_ERR_INVALID_ARGUMENT)                     \
    /* ---- artifacts: mlo_log_artifact ---- */                                                    \
    X_(artifact_null, "mlo_log_artifact", "run NULL, zeroed or a client; local_path NULL or \"\"", \
       NULL, NULL,                                                                                 \
       ALL(A(mlo_log_artifact(NULL, data_file, NULL)), A(mlo_log_artifact(ZR, data_file, NULL)),   \
           A(mlo_log_artifact((mlo_run_t *)C, data_file, NULL)),                                   \
           A(mlo_log_artifact(R, NULL, NULL)), A(mlo_log_artifact(R, "", NULL))),                  \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(artifact_closed, "mlo_log_artifact", "a run of a closed client", NULL, NULL,                \
       mlo_log_artifact(CR, data_file, "ok"), MLO_ERR_CLOSED)                                      \
    X_(artifact_utf8, "mlo_log_artifact", "local_path or artifact_path with invalid UTF-8", NULL,  \
       NULL,                                                                                       \
       ALL(A(mlo_log_artifact(R, "/tmp/\xff", NULL)), A(mlo_log_artifact(R, data_file, "a\xc3"))), \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(artifact_traversal, "mlo_log_artifact",                                                     \
       "artifact_path `..`, `../x`, `../../x`, `a/../../b`, `/abs`, `a\\\\b`, `a//b`, `a/`, `.`, " \
       "`./x`",                                                                                    \
       NULL, "refused at the call: nothing staged, nothing sent",                                  \
       ALL(A(mlo_log_artifact(R, data_file, "..")), A(mlo_log_artifact(R, data_file, "../x")),     \
           A(mlo_log_artifact(R, data_file, "../../x")),                                           \
           A(mlo_log_artifact(R, data_file, "a/../../b")),                                         \
           A(mlo_log_artifact(R, data_file, "/abs")), A(mlo_log_artifact(R, data_file, "a\\b")),   \
           A(mlo_log_artifact(R, data_file, "a//b")), A(mlo_log_artifact(R, data_file, "a/")),     \
           A(mlo_log_artifact(R, data_file, ".")), A(mlo_log_artifact(R, data_file, "./x"))),      \
       MLO_ERR_INVALID_PATH)                                                                       \
    X_(artifact_path_long, "mlo_log_artifact", "artifact_path of 4097 bytes", NULL,                \
       "4096 is the limit", mlo_log_artifact(R, data_file, P4097), MLO_ERR_INVALID_PATH)           \
    X_(artifact_missing, "mlo_log_artifact", "local_path that does not exist; of 1 MB", NULL,      \
       "the message names the path and the reason",                                                \
       ALL(A(mlo_log_artifact(R, "/nonexistent/x", NULL)), A(mlo_log_artifact(R, P1M, NULL))),     \
       MLO_ERR_IO)                                                                                 \
    X_(artifact_special, "mlo_log_artifact", "local_path a FIFO (no writer), `/dev/null`", NULL,   \
       "not a regular file or directory; the FIFO never blocks the call",                          \
       ALL(A(mlo_log_artifact(R, fifo_path, "ok")), A(mlo_log_artifact(R, "/dev/null", "ok"))),    \
       MLO_ERR_IO)                                                                                 \
    X_(artifact_dir_link, "mlo_log_artifact",                                                      \
       "a directory holding a symbolic link to a file outside it", NULL,                           \
       "the link is skipped (and reported); the other file lands",                                 \
       mlo_log_artifact(R, adir, "ok/dir"), MLO_OK)                                                \
    X_(artifact_dir_odd, "mlo_log_artifact",                                                       \
       "a directory holding a file named with invalid UTF-8, a FIFO and a good file", NULL,        \
       "the first two are skipped (and reported); the good file lands",                            \
       mlo_log_artifact(R, odd_dir, "ok/odd"), MLO_OK)                                             \
    X_(artifact_dir_empty, "mlo_log_artifact", "an empty directory", NULL, "nothing to upload",    \
       mlo_log_artifact(R, empty_dir, "ok/none"), MLO_OK)                                          \
    X_(artifact_name_newline, "mlo_log_artifact", "a file whose name holds a newline", NULL,       \
       NEWLINE_NOTE, mlo_log_artifact(RX, nl_file, "ok"), MLO_ERR_INVALID_PATH)                    \
    X_(artifact_no_store_np, "mlo_log_artifact",                                                   \
       "client without a store, run whose artifacts are at s3:// (not proxied)", NULL,             \
       "uploaded in the call, so refused in the call", mlo_log_artifact(RNN, data_file, "ok"),     \
       MLO_ERR_ARTIFACTS_NOT_PROXIED)                                                              \
    /* ---- artifacts: mlo_log_artifact_bytes ---- */                                              \
    X_(bytes_null, "mlo_log_artifact_bytes",                                                       \
       "run NULL, zeroed or a client; artifact_path NULL; data NULL with len 1 or SIZE_MAX", NULL, \
       NULL,                                                                                       \
       ALL(A(mlo_log_artifact_bytes(NULL, "x", 1, "ok/x")),                                        \
           A(mlo_log_artifact_bytes(ZR, "x", 1, "ok/x")),                                          \
           A(mlo_log_artifact_bytes((mlo_run_t *)C, "x", 1, "ok/x")),                              \
           A(mlo_log_artifact_bytes(R, "x", 1, NULL)),                                             \
           A(mlo_log_artifact_bytes(R, NULL, 1, "ok/x")),                                          \
           A(mlo_log_artifact_bytes(R, NULL, SIZE_MAX, "ok/x"))),                                  \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(bytes_closed, "mlo_log_artifact_bytes", "a run of a closed client", NULL, NULL,             \
       mlo_log_artifact_bytes(CR, "x", 1, "ok/x"), MLO_ERR_CLOSED)                                 \
    X_(bytes_path_empty, "mlo_log_artifact_bytes", "artifact_path \"\"", NULL,                     \
       "a file needs a name", mlo_log_artifact_bytes(R, "x", 1, ""), MLO_ERR_INVALID_PATH)         \
    X_(bytes_traversal, "mlo_log_artifact_bytes",                                                  \
       "artifact_path `..`, `../x`, `a/../../b`, `/abs`, `a\\\\b`, `a//b`, `a/`, `.`, `./x`",      \
       NULL, "refused at the call: nothing staged, nothing sent",                                  \
       ALL(A(mlo_log_artifact_bytes(R, "x", 1, "..")),                                             \
           A(mlo_log_artifact_bytes(R, "x", 1, "../x")),                                           \
           A(mlo_log_artifact_bytes(R, "x", 1, "a/../../b")),                                      \
           A(mlo_log_artifact_bytes(R, "x", 1, "/abs")),                                           \
           A(mlo_log_artifact_bytes(R, "x", 1, "a\\b")),                                           \
           A(mlo_log_artifact_bytes(R, "x", 1, "a//b")),                                           \
           A(mlo_log_artifact_bytes(R, "x", 1, "a/")), A(mlo_log_artifact_bytes(R, "x", 1, ".")),  \
           A(mlo_log_artifact_bytes(R, "x", 1, "./x"))),                                           \
       MLO_ERR_INVALID_PATH)                                                                       \
    X_(bytes_path_long, "mlo_log_artifact_bytes", "artifact_path of 4097 bytes", NULL, NULL,       \
       mlo_log_artifact_bytes(R, "x", 1, P4097), MLO_ERR_INVALID_PATH)                             \
    X_(bytes_utf8, "mlo_log_artifact_bytes", "artifact_path with a stray byte, an overlong `/`",   \
       NULL, NULL,                                                                                 \
       ALL(A(mlo_log_artifact_bytes(R, "x", 1, "ok/\xff")),                                        \
           A(mlo_log_artifact_bytes(R, "x", 1, "ok\xc0\xafx"))),                                   \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(bytes_empty, "mlo_log_artifact_bytes", "data NULL with len 0", NULL,                        \
       "lands as an empty file", mlo_log_artifact_bytes(R, NULL, 0, "ok/empty.bin"), MLO_OK)       \
    X_(bytes_ok, "mlo_log_artifact_bytes", "1000 bytes; a name with a space, `%` and `ü`", NULL,   \
       "land byte for byte",                                                                       \
       ALL(A(mlo_log_artifact_bytes(R, BYTES, sizeof BYTES, "ok/bytes.bin")),                      \
           A(mlo_log_artifact_bytes(R, "odd", 3, "ok/sub dir/100% \xc3\xbc.bin"))),                \
       MLO_OK)                                                                                     \
    X_(bytes_twice, "mlo_log_artifact_bytes", "the same artifact_path twice", NULL,                \
       "the second replaces the first, as in MLflow",                                              \
       ALL(A(mlo_log_artifact_bytes(R, "first", 5, "ok/twice.bin")),                               \
           A(mlo_log_artifact_bytes(R, "second", 6, "ok/twice.bin"))),                             \
       MLO_OK)                                                                                     \
    X_(bytes_no_uri, "mlo_log_artifact_bytes", "a client without a tracking URI", NULL,            \
       "kept in its store for `mlo sync`", mlo_log_artifact_bytes(RL, "x", 1, "ok/local.bin"),     \
       MLO_OK)                                                                                     \
    X_(bytes_not_proxied, "mlo_log_artifact_bytes",                                                \
       "a run whose artifacts are at s3:// (not proxied)", NULL,                                   \
       "staged; the uploader reports MLO_ERR_ARTIFACTS_NOT_PROXIED and keeps it in the store",     \
       bytes_parked(RNP), MLO_OK)                                                                  \
    X_(bytes_no_store, "mlo_log_artifact_bytes", "client without a store", NULL,                   \
       "uploaded in the call; lands",                                                              \
       mlo_log_artifact_bytes(RND, BYTES, sizeof BYTES, "ok/direct.bin"), MLO_OK)                  \
    X_(bytes_no_store_np, "mlo_log_artifact_bytes",                                                \
       "client without a store, run whose artifacts are at s3://", NULL, NULL,                     \
       mlo_log_artifact_bytes(RNN, "x", 1, "ok/x"), MLO_ERR_ARTIFACTS_NOT_PROXIED)                 \
    /* ---- artifacts: mlo_list_artifacts ---- */                                                  \
    X_(list_null, "mlo_list_artifacts",                                                            \
       "client NULL, zeroed or a run; fn NULL; run_id NULL or \"\"", NULL, NULL,                   \
       ALL(A(list_on(NULL, RID, NULL)), A(list_on(ZC, RID, NULL)),                                 \
           A(list_on((mlo_client_t *)R, RID, NULL)),                                               \
           A(mlo_list_artifacts(C, RID, NULL, NULL, NULL)), A(list_on(C, NULL, NULL)),             \
           A(list_on(C, "", NULL))),                                                               \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(list_closed, "mlo_list_artifacts", "a closed client", NULL, NULL, list_on(CC, RID, NULL),   \
       MLO_ERR_CLOSED)                                                                             \
    X_(list_utf8, "mlo_list_artifacts", "run_id or artifact_path with invalid UTF-8", NULL, NULL,  \
       ALL(A(list_on(C, "ab\xff", NULL)), A(list_on(C, RID, "ok\xc3"))), MLO_ERR_INVALID_UTF8)     \
    X_(list_traversal, "mlo_list_artifacts",                                                       \
       "artifact_path `..`, `../x`, `/abs`, `a\\\\b`, `a//b`, `a/`, `.`; of 4097 bytes; run_id "   \
       "`runs:/<id>/../x`, `runs:/<id>/a//b`",                                                     \
       NULL, "refused before any request",                                                         \
       ALL(A(list_on(C, RID, "..")), A(list_on(C, RID, "../x")), A(list_on(C, RID, "/abs")),       \
           A(list_on(C, RID, "a\\b")), A(list_on(C, RID, "a//b")), A(list_on(C, RID, "a/")),       \
           A(list_on(C, RID, ".")), A(list_on(C, RID, P4097)),                                     \
           A(list_on(C, runs_uri("/../x"), NULL)), A(list_on(C, runs_uri("/a//b"), NULL))),        \
       MLO_ERR_INVALID_PATH)                                                                       \
    X_(list_uri_bad, "mlo_list_artifacts", BAD_URIS_TEXT, NULL, "refused before any request",      \
       ALL(A(list_on(C, "models:/", NULL)), A(list_on(C, "models:/x@", NULL)),                     \
           A(list_on(C, "models:/@x", NULL)), A(list_on(C, "runs:/", NULL)),                       \
           A(list_on(C, "models:/a/b/c", NULL)), A(list_on(C, "?", NULL)),                         \
           A(list_on(C, "../../x", NULL)), A(list_on(C, "models://host/m/1", NULL)),               \
           A(list_on(C, "models:/m/latest", NULL)), A(list_on(C, "models:/m/Production", NULL)),   \
           A(list_on(C, runs_uri("?x=1"), NULL))),                                                 \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(list_unknown, "mlo_list_artifacts", UNKNOWN_TEXT, NULL,                                     \
       "the server's 404 (for an unknown alias its 400 \"... not found\")",                        \
       ALL(A(list_on(C, "0123456789abcdef0123456789abcdef", NULL)),                                \
           A(list_on(C, "models:/no-such-model/1", NULL)),                                         \
           A(list_on(C, "models:/no-such-model@champion", NULL))),                                 \
       MLO_ERR_NOT_FOUND)                                                                          \
    X_(list_np, "mlo_list_artifacts", "a run whose artifacts are at s3:// (not proxied)", NULL,    \
       NP_NOTE, list_on(C, NP_RUN, NULL), MLO_ERR_ARTIFACTS_NOT_PROXIED)                           \
    X_(list_no_uri, "mlo_list_artifacts", "a client without a tracking URI", NULL, NULL,           \
       list_on(CL, RID, NULL), MLO_ERR_CONFIG)                                                     \
    X_(list_missing, "mlo_list_artifacts", "artifact_path that does not exist", NULL,              \
       "no entries", list_expect(RID, "no/such/dir", 0, 0), MLO_OK)                                \
    X_(list_stop, "mlo_list_artifacts", "a callback that stops at once", NULL,                     \
       "one entry seen, nothing else", list_expect(RID, "ok", 1, 1), MLO_OK)                       \
    X_(list_ok, "mlo_list_artifacts", "run_id as an id with artifact_path `ok`; `runs:/<id>/ok`",  \
       NULL, "the entries under ok/",                                                              \
       ALL(A(list_expect(RID, "ok", -1, 0)), A(list_expect(runs_uri("/ok"), NULL, -1, 0))),        \
       MLO_OK)                                                                                     \
    /* ---- artifacts: mlo_download_artifacts ---- */                                              \
    X_(dl_null, "mlo_download_artifacts",                                                          \
       "client NULL, zeroed or a run; run_id NULL or \"\"; dest_dir NULL or \"\"", NULL, NULL,     \
       ALL(A(dl_on(NULL, RID, "ok", dl_base)), A(dl_on(ZC, RID, "ok", dl_base)),                   \
           A(dl_on((mlo_client_t *)R, RID, "ok", dl_base)), A(dl_on(C, NULL, "ok", dl_base)),      \
           A(dl_on(C, "", "ok", dl_base)), A(dl_on(C, RID, "ok", NULL)),                           \
           A(dl_on(C, RID, "ok", ""))),                                                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(dl_closed, "mlo_download_artifacts", "a closed client", NULL, NULL,                         \
       dl_on(CC, RID, "ok", dl_base), MLO_ERR_CLOSED)                                              \
    X_(dl_utf8, "mlo_download_artifacts", "run_id or artifact_path with invalid UTF-8", NULL,      \
       NULL, ALL(A(dl_on(C, "ab\xff", NULL, dl_base)), A(dl_on(C, RID, "ok\xff", dl_base))),       \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(dl_traversal, "mlo_download_artifacts",                                                     \
       "artifact_path `..`, `../x`, `/abs`, `a\\\\b`, `a//b`, `a/`, `.`; of 4097 bytes; run_id "   \
       "`runs:/<id>/../x`",                                                                        \
       NULL, "refused before any request: nothing written",                                        \
       ALL(A(dl_on(C, RID, "..", dl_base)), A(dl_on(C, RID, "../x", dl_base)),                     \
           A(dl_on(C, RID, "/abs", dl_base)), A(dl_on(C, RID, "a\\b", dl_base)),                   \
           A(dl_on(C, RID, "a//b", dl_base)), A(dl_on(C, RID, "a/", dl_base)),                     \
           A(dl_on(C, RID, ".", dl_base)), A(dl_on(C, RID, P4097, dl_base)),                       \
           A(dl_on(C, runs_uri("/../x"), NULL, dl_base))),                                         \
       MLO_ERR_INVALID_PATH)                                                                       \
    X_(dl_uri_bad, "mlo_download_artifacts", BAD_URIS_TEXT, NULL, "refused before any request",    \
       ALL(A(dl_on(C, "models:/", NULL, dl_base)), A(dl_on(C, "models:/x@", NULL, dl_base)),       \
           A(dl_on(C, "models:/@x", NULL, dl_base)), A(dl_on(C, "runs:/", NULL, dl_base)),         \
           A(dl_on(C, "models:/a/b/c", NULL, dl_base)), A(dl_on(C, "?", NULL, dl_base)),           \
           A(dl_on(C, "../../x", NULL, dl_base)), A(dl_on(C, "models://host/m/1", NULL, dl_base)), \
           A(dl_on(C, "models:/m/latest", NULL, dl_base)),                                         \
           A(dl_on(C, "models:/m/Production", NULL, dl_base)),                                     \
           A(dl_on(C, runs_uri("?x=1"), NULL, dl_base))),                                          \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(dl_unknown, "mlo_download_artifacts", UNKNOWN_TEXT "; artifact_path that does not exist",   \
       NULL, NULL,                                                                                 \
       ALL(A(dl_on(C, "0123456789abcdef0123456789abcdef", NULL, dl_base)),                         \
           A(dl_on(C, "models:/no-such-model/1", NULL, dl_base)),                                  \
           A(dl_on(C, "models:/no-such-model@champion", NULL, dl_base)),                           \
           A(dl_on(C, RID, "no/such", dl_base))),                                                  \
       MLO_ERR_NOT_FOUND)                                                                          \
    X_(dl_np, "mlo_download_artifacts", "a run whose artifacts are at s3:// (not proxied)", NULL,  \
       NP_NOTE, dl_on(C, NP_RUN, NULL, dl_base), MLO_ERR_ARTIFACTS_NOT_PROXIED)                    \
    X_(dl_no_uri, "mlo_download_artifacts", "a client without a tracking URI", NULL, NULL,         \
       dl_on(CL, RID, "ok", dl_base), MLO_ERR_CONFIG)                                              \
    X_(dl_dest_bad, "mlo_download_artifacts",                                                      \
       "dest_dir a regular file; under one; where it cannot be created; of 5000 characters", NULL, \
       "nothing written",                                                                          \
       ALL(A(dl_to(store_file)), A(dl_to(store_under_file)), A(dl_to("/proc/mlo-no-such/dl")),     \
           A(dl_to(D5K))),                                                                         \
       MLO_ERR_IO)                                                                                 \
    X_(dl_dest_link, "mlo_download_artifacts",                                                     \
       "dest_dir holding a symbolic link where a downloaded file goes", NULL,                      \
       "never followed: nothing written through it", dl_through_link(), MLO_ERR_INVALID_PATH)      \
    X_(dl_dest_utf8, "mlo_download_artifacts", "dest_dir with invalid UTF-8", NULL,                \
       "a local path, any bytes: the files land there (mlo_log_artifact refuses such a "           \
       "local_path: MLO_ERR_INVALID_UTF8)",                                                        \
       dl_utf8_dest(), MLO_OK)                                                                     \
    X_(dl_ok, "mlo_download_artifacts",                                                            \
       "`runs:/<id>/ok/bytes.bin` (a file); run_id with artifact_path `ok`", NULL,                 \
       "byte for byte",                                                                            \
       ALL(A(dl_expect(runs_uri("/ok/bytes.bin"), NULL, "file", "bytes.bin")),                     \
           A(dl_expect(RID, "ok", "dir", "bytes.bin"))),                                           \
       MLO_OK)                                                                                     \
    X_(dl_again, "mlo_download_artifacts", "into a directory that already holds the files", NULL,  \
       "replaced", dl_expect(RID, "ok", "dir", "bytes.bin"), MLO_OK)                               \
    /* ---- model registry ---- */                                                                 \
    X_(reg_null, "mlo_register_model", "run NULL, zeroed or a client; name NULL or \"\"", NULL,    \
       "`*version` untouched",                                                                     \
       ALL(A(reg_on(NULL, "ok", "m")), A(reg_on(ZR, "ok", "m")),                                   \
           A(reg_on((mlo_run_t *)C, "ok", "m")), A(reg_on(R, "ok", NULL)),                         \
           A(reg_on(R, "ok", ""))),                                                                \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(reg_closed, "mlo_register_model", "a run of a closed client", NULL, NULL,                   \
       reg_on(CR, "ok", "m"), MLO_ERR_CLOSED)                                                      \
    X_(reg_utf8, "mlo_register_model", "name or artifact_path with invalid UTF-8", NULL, NULL,     \
       ALL(A(reg_on(R, "ok", "m\xff")), A(reg_on(R, "ok\xff", "m"))), MLO_ERR_INVALID_UTF8)        \
    X_(reg_traversal, "mlo_register_model",                                                        \
       "artifact_path `..`, `../x`, `/abs`, `a\\\\b`, `a//b`, `a/`, `.`; of 4097 bytes", NULL,     \
       "refused before any request",                                                               \
       ALL(A(reg_on(R, "..", "m")), A(reg_on(R, "../x", "m")), A(reg_on(R, "/abs", "m")),          \
           A(reg_on(R, "a\\b", "m")), A(reg_on(R, "a//b", "m")), A(reg_on(R, "a/", "m")),          \
           A(reg_on(R, ".", "m")), A(reg_on(R, P4097, "m"))),                                      \
       MLO_ERR_INVALID_PATH)                                                                       \
    X_(reg_no_uri, "mlo_register_model", "a run of a client without a tracking URI", NULL, NULL,   \
       reg_on(RL, "ok", "m"), MLO_ERR_CONFIG)                                                      \
    X_(reg_ok, "mlo_register_model", "artifact_path `ok` (its uploads pending)", NULL,             \
       "waits for them; version 1 of a new model", reg_expect("ok", "hostile-model", 1), MLO_OK)   \
    X_(reg_version_null, "mlo_register_model", "version NULL", NULL, "version 2",                  \
       mlo_register_model(R, "ok", "hostile-model", NULL), MLO_OK)                                 \
    X_(reg_missing, "mlo_register_model", "artifact_path under which nothing was logged", NULL,    \
       "version 3: as MLflow, the source is not checked",                                          \
       reg_expect("no/such/dir", "hostile-model", 3), MLO_OK)                                      \
    X_(alias_null, "mlo_set_model_alias",                                                          \
       "client NULL, zeroed or a run; name or alias NULL or \"\"", NULL, NULL,                     \
       ALL(A(mlo_set_model_alias(NULL, "hostile-model", "a", 1)),                                  \
           A(mlo_set_model_alias(ZC, "hostile-model", "a", 1)),                                    \
           A(mlo_set_model_alias((mlo_client_t *)R, "hostile-model", "a", 1)),                     \
           A(mlo_set_model_alias(C, NULL, "a", 1)), A(mlo_set_model_alias(C, "", "a", 1)),         \
           A(mlo_set_model_alias(C, "hostile-model", NULL, 1)),                                    \
           A(mlo_set_model_alias(C, "hostile-model", "", 1))),                                     \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(alias_closed, "mlo_set_model_alias", "a closed client", NULL, NULL,                         \
       mlo_set_model_alias(CC, "hostile-model", "a", 1), MLO_ERR_CLOSED)                           \
    X_(alias_utf8, "mlo_set_model_alias", "name or alias with invalid UTF-8", NULL, NULL,          \
       ALL(A(mlo_set_model_alias(C, "m\xff", "a", 1)),                                             \
           A(mlo_set_model_alias(C, "hostile-model", "a\xc3", 1))),                                \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(alias_version, "mlo_set_model_alias", "version 0, -1, INT64_MIN", NULL, NULL,               \
       ALL(A(mlo_set_model_alias(C, "hostile-model", "a", 0)),                                     \
           A(mlo_set_model_alias(C, "hostile-model", "a", -1)),                                    \
           A(mlo_set_model_alias(C, "hostile-model", "a", INT64_MIN))),                            \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(alias_reserved, "mlo_set_model_alias", "alias `latest`, `LATEST`, `v1`, `V12`", NULL,       \
       "refused by the server (reserved names)",                                                   \
       ALL(A(mlo_set_model_alias(C, "hostile-model", "latest", 1)),                                \
           A(mlo_set_model_alias(C, "hostile-model", "LATEST", 1)),                                \
           A(mlo_set_model_alias(C, "hostile-model", "v1", 1)),                                    \
           A(mlo_set_model_alias(C, "hostile-model", "V12", 1))),                                  \
       MLO_ERR_SERVER_INVALID)                                                                     \
    X_(alias_chars, "mlo_set_model_alias", "alias `a b`, `a/b`, `a.b`; of 256 characters", NULL,   \
       "refused by the server (letters, digits, `_` and `-`; at most 255)",                        \
       ALL(A(mlo_set_model_alias(C, "hostile-model", "a b", 1)),                                   \
           A(mlo_set_model_alias(C, "hostile-model", "a/b", 1)),                                   \
           A(mlo_set_model_alias(C, "hostile-model", "a.b", 1)),                                   \
           A(mlo_set_model_alias(C, "hostile-model", A256, 1))),                                   \
       MLO_ERR_SERVER_INVALID)                                                                     \
    X_(alias_unicode, "mlo_set_model_alias", "alias `größe` (letters of any script)", NULL,        \
       "set: MLflow's `\\w` takes them", mlo_set_model_alias(C, "hostile-model", "größe", 1),      \
       MLO_OK)                                                                                     \
    X_(alias_unknown, "mlo_set_model_alias", "a model that does not exist; version INT64_MAX",     \
       NULL, NULL,                                                                                 \
       ALL(A(mlo_set_model_alias(C, "no-such-model", "a", 1)),                                     \
           A(mlo_set_model_alias(C, "hostile-model", "a", INT64_MAX))),                            \
       MLO_ERR_NOT_FOUND)                                                                          \
    X_(alias_no_uri, "mlo_set_model_alias", "a client without a tracking URI", NULL, NULL,         \
       mlo_set_model_alias(CL, "hostile-model", "a", 1), MLO_ERR_CONFIG)                           \
    X_(alias_ok, "mlo_set_model_alias", "`champion` set on version 1, then moved to 2", NULL,      \
       "as MLflow: an alias points at one version",                                                \
       ALL(A(mlo_set_model_alias(C, "hostile-model", "champion", 1)),                              \
           A(mlo_set_model_alias(C, "hostile-model", "champion", 2))),                             \
       MLO_OK)                                                                                     \
    X_(dl_model, "mlo_download_artifacts",                                                         \
       "`models:/hostile-model@champion`, `models:/hostile-model/1`", NULL,                        \
       "the version's files, byte for byte",                                                       \
       ALL(A(dl_expect("models:/hostile-model@champion", NULL, "champion", "bytes.bin")),          \
           A(dl_expect("models:/hostile-model/1", NULL, "v1", "bytes.bin"))),                      \
       MLO_OK)                                                                                     \
    /* ---- datasets ---- */                                                                       \
    X_(ds_null, "mlo_log_dataset", "run NULL, zeroed or a client; name NULL; source NULL", NULL,   \
       NULL,                                                                                       \
       ALL(A(mlo_log_dataset(NULL, "ok.d", "s3://b/x", "d")),                                      \
           A(mlo_log_dataset(ZR, "ok.d", "s3://b/x", "d")),                                        \
           A(mlo_log_dataset((mlo_run_t *)C, "ok.d", "s3://b/x", "d")),                            \
           A(mlo_log_dataset(R, NULL, "s3://b/x", "d")),                                           \
           A(mlo_log_dataset(R, "no.d", NULL, "d"))),                                              \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(ds_closed, "mlo_log_dataset", "a run of a closed client", NULL, NULL,                       \
       mlo_log_dataset(CR, "ok.d", "s3://b/x", "d"), MLO_ERR_CLOSED)                               \
    X_(ds_empty, "mlo_log_dataset", "name, source or digest \"\"", NULL, NULL,                     \
       ALL(A(mlo_log_dataset(R, "", "s3://b/x", "d")), A(mlo_log_dataset(R, "no.d", "", "d")),     \
           A(mlo_log_dataset(R, "no.d", "s3://b/x", ""))),                                         \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(ds_utf8, "mlo_log_dataset", "name, source or digest with invalid UTF-8", NULL, NULL,        \
       ALL(A(mlo_log_dataset(R, "no\xff", "s3://b/x", "d")),                                       \
           A(mlo_log_dataset(R, "no.d", "s3://b/\xc3", "d")),                                      \
           A(mlo_log_dataset(R, "no.d", "s3://b/x", "d\xed\xa0\x80"))),                            \
       MLO_ERR_INVALID_UTF8)                                                                       \
    X_(ds_long, "mlo_log_dataset", "name of 501 characters (also 501 x `é`); digest of 37", NULL,  \
       "MLflow's limits: 500 and 36 characters",                                                   \
       ALL(A(mlo_log_dataset(R, DN501, "s3://b/x", "d")),                                          \
           A(mlo_log_dataset(R, DN501E, "s3://b/x", "d")),                                         \
           A(mlo_log_dataset(R, "no.d", "s3://b/x", K251 + 214))),                                 \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(ds_limits, "mlo_log_dataset", "name of 500 characters; digest of 36", NULL, "land",         \
       ALL(A(mlo_log_dataset(R, DN500, "s3://b/x", "d")),                                          \
           A(mlo_log_dataset(R, "ok.digest36", "s3://b/x",                                         \
                             "abcdefabcdefabcdefabcdefabcdefabcdef"))),                            \
       MLO_OK)                                                                                     \
    X_(ds_no_digest, "mlo_log_dataset",                                                            \
       "digest NULL with source `s3://b/x`, `https://h/x.csv`, `dvc://r/x`, `file://host/x`",      \
       NULL, "no local file to compute a digest from",                                             \
       ALL(A(mlo_log_dataset(R, "no.d", "s3://b/x", NULL)),                                        \
           A(mlo_log_dataset(R, "no.d", "https://h/x.csv", NULL)),                                 \
           A(mlo_log_dataset(R, "no.d", "dvc://r/x", NULL)),                                       \
           A(mlo_log_dataset(R, "no.d", "file://host/x", NULL))),                                  \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(ds_source_long, "mlo_log_dataset",                                                          \
       "a source whose scheme is 37 letters; of 70,000 characters", NULL,                          \
       "MLflow's limits: source type 36, source 65535",                                            \
       ALL(A(mlo_log_dataset(R, "no.d", SCH37, "d")), A(mlo_log_dataset(R, "no.d", S70K, "d"))),   \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(ds_missing, "mlo_log_dataset",                                                              \
       "digest NULL, source a local path that does not exist, `file:///nonexistent/x`", NULL,      \
       "the message names the path and the reason",                                                \
       ALL(A(mlo_log_dataset(R, "no.d", "/nonexistent/x", NULL)),                                  \
           A(mlo_log_dataset(R, "no.d", "file:///nonexistent/x", NULL))),                          \
       MLO_ERR_IO)                                                                                 \
    X_(ds_special, "mlo_log_dataset", "digest NULL, source a FIFO (no writer), `/dev/null`", NULL, \
       "not a regular file or directory; the FIFO never blocks the call",                          \
       ALL(A(mlo_log_dataset(R, "no.d", fifo_path, NULL)),                                         \
           A(mlo_log_dataset(R, "no.d", "/dev/null", NULL))),                                      \
       MLO_ERR_IO)                                                                                 \
    X_(ds_local, "mlo_log_dataset", "digest NULL, source a local file", NULL,                      \
       "lands with the first 32 hex characters of its SHA-256",                                    \
       mlo_log_dataset(R, "ok.local", data_file, NULL), MLO_OK)                                    \
    X_(ds_traversal, "mlo_log_dataset", "source `../../etc/passwd` with a digest", NULL,           \
       "a location, never read: lands as its absolute path",                                       \
       mlo_log_dataset(R, "ok.traversal", "../../etc/passwd", "d"), MLO_OK)                        \
    X_(ds_twice, "mlo_log_dataset", "the same dataset twice", NULL, "linked to the run once",      \
       ALL(A(mlo_log_dataset(R, "ok.twice", "s3://b/t", "t")),                                     \
           A(mlo_log_dataset(R, "ok.twice", "s3://b/t", "t"))),                                    \
       MLO_OK)                                                                                     \
    X_(ds_no_uri, "mlo_log_dataset", "a client without a tracking URI", NULL,                      \
       "kept in its store for `mlo sync`", mlo_log_dataset(RL, "ok.d", "s3://b/x", "d"), MLO_OK)   \
    /* ---- histograms ---- */                                                                     \
    X_(hist_null, "mlo_histogram_new", "run NULL or zeroed, key NULL, out NULL", NULL, NULL,       \
       ALL(A(hist_new(NULL, "ok.h", 1000)), A(hist_new(ZR, "ok.h", 1000)),                         \
           A(hist_new(R, NULL, 1000)), A(mlo_histogram_new(R, "ok.h", 1000, NULL))),               \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(hist_key, "mlo_histogram_new", "key \"\", `a//b`, 241 characters", NULL,                    \
       "240 is the limit: the suffixes must fit",                                                  \
       ALL(A(hist_new(R, "", 1000)), A(hist_new(R, "a//b", 1000)), A(hist_new(R, K241, 1000))),    \
       MLO_ERR_INVALID_KEY)                                                                        \
    X_(hist_utf8, "mlo_histogram_new", "key with invalid UTF-8", NULL, NULL,                       \
       hist_new(R, "h\xff", 1000), MLO_ERR_INVALID_UTF8)                                           \
    X_(hist_interval, "mlo_histogram_new", "interval_ms 0, 99, 3600001, UINT_MAX", NULL, NULL,     \
       ALL(A(hist_new(R, "ok.h", 0)), A(hist_new(R, "ok.h", 99)), A(hist_new(R, "ok.h", 3600001)), \
           A(hist_new(R, "ok.h", UINT_MAX))),                                                      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(hist_record_null, "mlo_histogram_record", "NULL, zeroed memory", NULL, NULL,                \
       ALL(A(mlo_histogram_record(NULL, 1)), A(mlo_histogram_record(ZH, 1))),                      \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(hist_record_bad, "mlo_histogram_record", "NaN, -1, -Infinity, -DBL_MIN", NULL, NULL,        \
       ALL(A(hist_record(NAN)), A(hist_record(-1)), A(hist_record(-INFINITY)),                     \
           A(hist_record(-DBL_MIN))),                                                              \
       MLO_ERR_INVALID_ARGUMENT)                                                                   \
    X_(hist_record_edge, "mlo_histogram_record", "-0.0, 5e-324, DBL_MAX, +Infinity", NULL,         \
       "kept (below 1e-9 counts as 0; +Infinity only in max)",                                     \
       ALL(A(hist_record(-0.0)), A(hist_record(5e-324)), A(hist_record(DBL_MAX)),                  \
           A(hist_record(INFINITY))),                                                              \
       MLO_OK)                                                                                     \
    X_(hist_free_null, "mlo_histogram_free", "NULL", NULL, "no-op", mlo_histogram_free(NULL),      \
       MLO_OK)
// clang-format on

/* ---- the table, expanded ---- */

#define DEF(id, fn, input, result, note, expr, ...)                                                \
    static int row_##id(void) {                                                                    \
        return (expr);                                                                             \
    }                                                                                              \
    static const int st_##id[] = {__VA_ARGS__};
ROWS(DEF)
#undef DEF

typedef struct row {
    const char *id, *fn, *input, *result, *note;
    int (*call)(void);
    const int *accepted;
    size_t naccepted;
} row;

#define ENT(id, fn, input, result, note, expr, ...)                                                \
    {#id, fn, input, result, note, row_##id, st_##id, sizeof st_##id / sizeof st_##id[0]},
static const row rows[] = {ROWS(ENT)};
#undef ENT
#define NROWS (sizeof rows / sizeof rows[0])

static const char *status_name(int st) {
    static const char *const names[] = {"MLO_OK",
                                        "MLO_ERR_INVALID_ARGUMENT",
                                        "MLO_ERR_INVALID_KEY",
                                        "MLO_ERR_INVALID_UTF8",
                                        "MLO_ERR_INVALID_STATUS",
                                        "MLO_ERR_QUEUE_FULL",
                                        "MLO_ERR_CLOSED",
                                        "MLO_ERR_NO_MEMORY",
                                        "MLO_ERR_TIMEOUT",
                                        "MLO_ERR_NETWORK",
                                        "MLO_ERR_TLS",
                                        "MLO_ERR_SERVER_INVALID",
                                        "MLO_ERR_ALREADY_EXISTS",
                                        "MLO_ERR_NOT_FOUND",
                                        "MLO_ERR_PERMISSION",
                                        "MLO_ERR_RATE_LIMITED",
                                        "MLO_ERR_SERVER",
                                        "MLO_ERR_PROTOCOL",
                                        "MLO_ERR_CONFIG",
                                        "MLO_ERR_NOT_SUPPORTED",
                                        "MLO_ERR_INTERNAL",
                                        "MLO_WARN_TRUNCATED",
                                        "MLO_WARN_RETRY",
                                        "MLO_ERR_STORE",
                                        "MLO_ERR_IO",
                                        "MLO_ERR_INVALID_PATH",
                                        "MLO_ERR_ARTIFACTS_NOT_PROXIED"};
    static char buf[4][48];
    static int i;
    if (st >= 0 && (size_t)st < sizeof names / sizeof names[0])
        return names[st];
    if (st == MIXED)
        return "(differing statuses)";
    if (st == NOT_NULL)
        return "(not NULL)";
    if (st == MISMATCH)
        return "(wrong result)";
    char *b = buf[i++ % 4];
    snprintf(b, sizeof buf[0], "%d (unknown)", st);
    return b;
}

/* The README table. */
static void print_markdown(void) {
    printf("| function | bad input | result | notes |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        char res[200], note[700] = "";
        if (r->result)
            snprintf(res, sizeof res, "%s", r->result);
        else
            snprintf(res, sizeof res, "`%s`", status_name(r->accepted[0]));
        int finding = r->note && !strncmp(r->note, "finding", 7);
        if (r->note)
            snprintf(note, sizeof note, "%s%s%s", finding ? "**" : "", r->note,
                     finding ? "**" : "");
        for (size_t k = 1; k < r->naccepted; k++) {
            size_t n = strlen(note);
            snprintf(note + n, sizeof note - n, "%s`%s` accepted too", k == 1 ? " (" : ", ",
                     status_name(r->accepted[k]));
            if (k + 1 == r->naccepted)
                snprintf(note + strlen(note), sizeof note - strlen(note), ")");
        }
        printf("| `%s` | %s | %s | %s |\n", r->fn, r->input, res, note);
    }
}

/* ---- reading back what the server stored ---- */

static json_t *dump(void) {
    return tu_dump(srv);
}

static const char *param(json_t *run, const char *kind, const char *key) {
    const char *v = json_string_value(json_object_get(json_object_get(run, kind), key));
    if (!v)
        fail_msg("%s %s not stored", kind, key);
    return v;
}

static json_t *artifact(json_t *d, const char *root, const char *rel) {
    size_t i;
    json_t *a;
    size_t rl = strlen(root);
    json_array_foreach(json_object_get(d, "artifacts"), i, a) {
        const char *p = json_string_value(json_object_get(a, "path"));
        if (p && !strncmp(p, root, rl) && !strcmp(p + rl, rel))
            return a;
    }
    fail_msg("artifact %s not stored", rel);
    return NULL;
}
static long long art_size(json_t *d, const char *root, const char *rel) {
    return json_integer_value(json_object_get(artifact(d, root, rel), "size"));
}
static const char *art_sha(json_t *d, const char *root, const char *rel) {
    return json_string_value(json_object_get(artifact(d, root, rel), "sha256"));
}

static json_t *dataset(json_t *d, const char *name) {
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(d, "datasets"), i, x) {
        if (!strcmp(json_string_value(json_object_get(x, "name")), name))
            return x;
    }
    fail_msg("dataset %.60s not stored", name);
    return NULL;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A key stored in the run must be one the table lets land. */
static void check_key_allowed(const char *kind, const char *key) {
    if (!strcmp(key, "good") || !strncmp(key, "ok.", 3) || !strncmp(key, "mlflow.", 7) ||
        !strncmp(key, "mlo.", 4))
        return;
    fail_msg("%s \"%.60s\" reached the server though the table refused it", kind, key);
}

/* ---- the test ---- */

static void test_every_row(void **state) {
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const row *r = &rows[i];
        assert_int_equal(mlo_log_metric(R, "good", (double)i, (int64_t)(2 * i)), MLO_OK);
        O = mlo_options_new();
        assert_non_null(O);
        int st = r->call();
        mlo_options_free(O);
        O = NULL;
        assert_int_equal(mlo_log_metric(R, "good", (double)i, (int64_t)(2 * i + 1)), MLO_OK);
        int ok = 0;
        for (size_t k = 0; k < r->naccepted; k++)
            ok |= st == r->accepted[k];
        printf("  %-34s %-55.55s %s%s\n", r->fn, r->input, status_name(st),
               !ok || st == r->accepted[0]                  ? ""
               : r->note && !strncmp(r->note, "finding", 7) ? "  <- FINDING, tolerated"
                                                            : "  <- accepted too (see note)");
        if (!ok)
            fail_msg("%s (%s): got %s, expected %s", r->fn, r->input, status_name(st),
                     status_name(r->accepted[0]));
    }
    printf("  %zu rows\n", NROWS);

    /* everything around the bad calls lands */
    assert_int_equal(mlo_histogram_free(H), MLO_OK);
    H = NULL;
    assert_int_equal(mlo_end_run(R, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(C, 30000), MLO_OK);
    assert_int_equal(mlo_client_flush(C2, 30000), MLO_OK);

    uint64_t acc, sent, failed, dropped, rejected;
    mlo_client_stat(C, MLO_STAT_ACCEPTED, &acc);
    mlo_client_stat(C, MLO_STAT_SENT, &sent);
    mlo_client_stat(C, MLO_STAT_FAILED, &failed);
    mlo_client_stat(C, MLO_STAT_DROPPED, &dropped);
    mlo_client_stat(C, MLO_STAT_REJECTED, &rejected);
    printf("  accepted %llu, sent %llu, failed %llu, dropped %llu, rejected at the call %llu, "
           "callback calls %d\n",
           (unsigned long long)acc, (unsigned long long)sent, (unsigned long long)failed,
           (unsigned long long)dropped, (unsigned long long)rejected, cb_calls);
    assert_int_equal(dropped, 0);
    /* param_conflict and params_dup, on purpose (and the artifact the server
     * refuses, which is no event: not in ACCEPTED) */
    assert_int_equal(failed, 2 + NEWLINE_FAILS);
    assert_int_equal(acc, sent + failed - NEWLINE_FAILS);
    assert_true(rejected > 0);
    assert_true(cb_calls > 0);
    assert_int_equal(cb_null_messages, 0);

    json_t *d = dump();
    json_t *run = tu_find_run(d, mlo_run_id(R));
    assert_string_equal(json_string_value(json_object_get(json_object_get(run, "info"), "status")),
                        "FINISHED");
    /* every good point, once */
    assert_int_equal(tu_count_metric(run, "good"), 2 * NROWS);
    for (size_t i = 0; i < 2 * NROWS; i++)
        tu_metric(run, "good", (int64_t)i);
    /* nothing refused reached the server */
    size_t i;
    json_t *m;
    const char *k;
    json_t *v;
    json_array_foreach(json_object_get(run, "metrics"), i, m)
        check_key_allowed("metric", json_string_value(json_object_get(m, "key")));
    json_object_foreach(json_object_get(run, "params"), k, v) check_key_allowed("param", k);
    json_object_foreach(json_object_get(run, "tags"), k, v) check_key_allowed("tag", k);

    /* what the OK rows logged, as the server keeps it */
    assert_int_equal(tu_count_metric(run, K250), 1);
    assert_int_equal(tu_count_metric(run, "ok.größe/温度"), 1);
    assert_string_equal(json_string_value(json_object_get(tu_metric(run, "ok.nan", 0), "value")),
                        "NaN");
    double inf = json_number_value(json_object_get(tu_metric(run, "ok.inf", 0), "value"));
    if (json_is_string(json_object_get(tu_metric(run, "ok.inf", 0), "value")))
        inf = INFINITY;
    assert_true(inf >= DBL_MAX);
    double ninf = json_number_value(json_object_get(tu_metric(run, "ok.ninf", 0), "value"));
    if (json_is_string(json_object_get(tu_metric(run, "ok.ninf", 0), "value")))
        ninf = -INFINITY;
    assert_true(ninf <= -DBL_MAX);
    assert_true(json_number_value(json_object_get(tu_metric(run, "ok.max", 0), "value")) ==
                DBL_MAX);
    assert_true(json_number_value(json_object_get(tu_metric(run, "ok.min", 0), "value")) == 5e-324);
    assert_true(json_number_value(json_object_get(tu_metric(run, "ok.negzero", 0), "value")) == 0);
    tu_metric(run, "ok.step", -1);
    tu_metric(run, "ok.step", INT64_MIN);
    tu_metric(run, "ok.step", INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(tu_metric(run, "ok.ts", 0), "timestamp")),
                     0);
    assert_int_equal(json_integer_value(json_object_get(tu_metric(run, "ok.ts", 1), "timestamp")),
                     INT64_MAX);
    static const char *const landed[] = {"ok.b0", "ok.b2", "ok.c0", "ok.c2",
                                         "ok.u0", "ok.u2", "ok.t0", "ok.t2"};
    for (size_t j = 0; j < sizeof landed / sizeof landed[0]; j++)
        assert_int_equal(tu_count_metric(run, landed[j]), 1);
    assert_string_equal(param(run, "params", "ok.empty"), "");
    assert_int_equal(strlen(param(run, "params", "ok.long")), 6000);
    assert_int_equal(strlen(param(run, "params", "ok.1m")), 6000);
    assert_int_equal(utf8_chars(param(run, "params", "ok.longe")), 6000);
    assert_string_equal(param(run, "params", "ok.same"), "v");
    assert_string_equal(param(run, "params", "ok.conflict"), "first");
    assert_string_equal(param(run, "params", "ok.dup"), "x");
    assert_string_equal(param(run, "params", "ok.p0"), "a");
    assert_string_equal(param(run, "params", "ok.p2"), "c");
    assert_string_equal(param(run, "params", "ok.q0"), "a");
    assert_string_equal(param(run, "params", "ok.q2"), "c");
    assert_int_equal(strlen(param(run, "tags", "ok.longtag")), 8000);
    assert_string_equal(param(run, "tags", "ok.s0"), "a");
    assert_string_equal(param(run, "tags", "ok.s2"), "c");
    assert_string_equal(param(run, "tags", "ok.v0"), "a");
    assert_true(tu_count_metric(run, "ok.hist.count") >= 1);

    /* artifacts: only R's, only under ok/, each as logged */
    char root[200];
    snprintf(root, sizeof root, "%s/%s/artifacts/",
             json_string_value(json_object_get(json_object_get(run, "info"), "experiment_id")),
             mlo_run_id(R));
    size_t nart = 0;
    json_array_foreach(json_object_get(d, "artifacts"), i, m) {
        const char *path = json_string_value(json_object_get(m, "path"));
        if (!path || strncmp(path, root, strlen(root)) != 0 ||
            strncmp(path + strlen(root), "ok/", 3) != 0)
            fail_msg("artifact \"%.100s\" stored: not one the table lets land", path);
        nart++;
    }
    static const char sha_empty[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_int_equal(art_size(d, root, "ok/empty.bin"), 0);
    assert_string_equal(art_sha(d, root, "ok/empty.bin"), sha_empty);
    assert_int_equal(art_size(d, root, "ok/bytes.bin"), sizeof BYTES);
    assert_int_equal(art_size(d, root, "ok/direct.bin"), sizeof BYTES);
    assert_string_equal(art_sha(d, root, "ok/direct.bin"), art_sha(d, root, "ok/bytes.bin"));
    assert_int_equal(art_size(d, root, "ok/sub dir/100% \xc3\xbc.bin"), 3);
    assert_int_equal(art_size(d, root, "ok/twice.bin"), 6); /* the second */
    assert_int_equal(art_size(d, root, "ok/dir/inside.txt"), 7);
    assert_int_equal(art_size(d, root, "ok/odd/good.bin"), 5);
    assert_int_equal(nart, 7); /* not the link, the bad name, the FIFO, the newline */
    uint64_t files_c = 0, files_n = 0;
    assert_int_equal(mlo_client_stat(C, MLO_STAT_ARTIFACT_FILES, &files_c), MLO_OK);
    assert_int_equal(mlo_client_stat(CN, MLO_STAT_ARTIFACT_FILES, &files_n), MLO_OK);
    assert_int_equal(files_c, 7); /* twice.bin twice; not the parked one, not the newline */
    assert_int_equal(files_n, 1); /* direct.bin, in the call */

    /* datasets: R's are the five the table lets land, each once */
    size_t nds = 0;
    json_array_foreach(json_object_get(d, "datasets"), i, m) {
        json_t *runs = json_object_get(m, "runs"), *r;
        size_t k, mine = 0;
        json_array_foreach(runs, k, r) mine += !strcmp(json_string_value(r), mlo_run_id(R));
        if (!mine)
            continue;
        const char *name = json_string_value(json_object_get(m, "name"));
        if (strncmp(name, "ok.", 3) != 0)
            fail_msg("dataset \"%.60s\" reached the server though the table refused it", name);
        assert_int_equal(mine, 1);
        nds++;
    }
    assert_int_equal(nds, 5);
    assert_string_equal(json_string_value(json_object_get(dataset(d, DN500), "digest")), "d");
    assert_string_equal(json_string_value(json_object_get(dataset(d, "ok.local"), "digest")),
                        "7407db4b52396127ade22078ee087db1"); /* sha256 of data.txt, 32 */
    assert_string_equal(json_string_value(json_object_get(dataset(d, "ok.local"), "source_type")),
                        "local");
    assert_true(!strncmp(json_string_value(json_object_get(dataset(d, "ok.traversal"), "source")),
                         "{\"uri\": \"/", 9));
    dataset(d, "ok.digest36");
    dataset(d, "ok.twice");

    /* the registered model: three versions of R, the alias moved to 2 */
    json_t *model = NULL;
    json_array_foreach(json_object_get(d, "registered_models"), i, m) {
        if (!strcmp(json_string_value(json_object_get(m, "name")), "hostile-model"))
            model = m;
    }
    assert_non_null(model);
    json_t *versions = json_object_get(model, "versions");
    assert_int_equal(json_array_size(versions), 3);
    json_array_foreach(versions, i, m) {
        assert_string_equal(json_string_value(json_object_get(m, "run_id")), mlo_run_id(R));
        char want[24];
        snprintf(want, sizeof want, "%zu", i + 1);
        assert_string_equal(json_string_value(json_object_get(m, "version")), want);
    }
    const char *src1 = json_string_value(json_object_get(json_array_get(versions, 0), "source"));
    assert_true(strlen(src1) > 3 && !strcmp(src1 + strlen(src1) - 3, "/ok"));
    assert_int_equal(json_object_size(json_object_get(model, "aliases")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(model, "aliases"), "größe")), "1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(model, "aliases"), "champion")), "2");

    /* the other client's run: ended twice, the last status wins */
    json_t *run2 = tu_find_run(d, mlo_run_id(R2));
    assert_string_equal(json_string_value(json_object_get(json_object_get(run2, "info"), "status")),
                        "KILLED");
    /* the experiment named like a path is only a name */
    int found = 0;
    json_array_foreach(json_object_get(d, "experiments"), i, m) {
        const char *name = json_string_value(json_object_get(m, "name"));
        found |= name && !strcmp(name, "../../etc/passwd");
    }
    assert_true(found);
    json_decref(d);
}

static mlo_client_t *open_client(void) {
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_retries(o, 2, 0.05, 0.01, 10), MLO_OK);
    assert_int_equal(mlo_options_set_error_callback(o, on_error, NULL), MLO_OK);
    mlo_client_t *c = NULL;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    return c;
}

/* NP_RUN: a run made while the test server did not serve artifacts (the
 * experiment too, so its artifact location is s3://...: not proxied). */
static void make_np_run(void) {
    long code = 0;
    assert_int_equal(testsrv_config(srv, "{\"serve_artifacts\": false}"), 0);
    char *body = testsrv_post(srv, "/api/2.0/mlflow/experiments/create",
                              "{\"name\": \"hostile-s3\"}", &code);
    assert_int_equal(code, 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    char req[200];
    snprintf(req, sizeof req,
             "{\"experiment_id\": \"%s\", \"run_name\": \"not-proxied\", \"start_time\": 1}",
             json_string_value(json_object_get(j, "experiment_id")));
    json_decref(j);
    body = testsrv_post(srv, "/api/2.0/mlflow/runs/create", req, &code);
    assert_int_equal(code, 200);
    j = json_loads(body, 0, NULL);
    free(body);
    json_t *info = json_object_get(json_object_get(j, "run"), "info");
    snprintf(NP_RUN, sizeof NP_RUN, "%s", json_string_value(json_object_get(info, "run_id")));
    assert_true(!strncmp(json_string_value(json_object_get(info, "artifact_uri")), "s3://", 5));
    json_decref(j);
    assert_int_equal(testsrv_config(srv, "{\"serve_artifacts\": true}"), 0);
}

static int setup(void **state) {
    (void)state;
    C = open_client();
    C2 = open_client();
    assert_int_equal(mlo_start_run(C, "hostile", "hostile-input", NULL, &R), MLO_OK);
    assert_int_equal(mlo_start_run(C2, "hostile", "other-client", NULL, &R2), MLO_OK);
    assert_int_equal(mlo_start_run(C, "hostile", "refused-artifact", NULL, &RX), MLO_OK);
    /* a closed client and its run */
    CC = open_client();
    assert_int_equal(mlo_start_run(CC, "hostile", "closed", NULL, &CR), MLO_OK);
    assert_int_equal(mlo_client_close(CC), MLO_OK);
    /* a client without a tracking URI: runs in a local store of its own */
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    assert_int_equal(mlo_options_set_store_dir(o, in_store("local-store")), MLO_OK);
    assert_int_equal(mlo_options_set_error_callback(o, on_error, NULL), MLO_OK);
    assert_int_equal(mlo_client_open(o, &CL), MLO_OK);
    mlo_options_free(o);
    assert_int_equal(mlo_start_run(CL, "hostile", "local", NULL, &RL), MLO_OK);
    /* a run whose artifacts are not proxied, on C and on a client without a store */
    make_np_run();
    assert_int_equal(mlo_resume_run(C, NP_RUN, &RNP), MLO_OK);
    o = mlo_options_new();
    assert_non_null(o);
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_durable(o, 0), MLO_OK);
    assert_int_equal(mlo_options_set_retries(o, 2, 0.05, 0.01, 10), MLO_OK);
    assert_int_equal(mlo_options_set_error_callback(o, on_error, NULL), MLO_OK);
    assert_int_equal(mlo_client_open(o, &CN), MLO_OK);
    mlo_options_free(o);
    assert_int_equal(mlo_resume_run(CN, mlo_run_id(R), &RND), MLO_OK);
    assert_int_equal(mlo_resume_run(CN, NP_RUN, &RNN), MLO_OK);
    assert_int_equal(mlo_histogram_new(R, "ok.hist", 100, &H), MLO_OK);
    assert_int_equal(mlo_histogram_record(H, 1.0), MLO_OK);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (H)
        mlo_histogram_free(H);
    assert_int_equal(mlo_client_close(C), MLO_OK);
    assert_int_equal(mlo_client_close(C2), MLO_OK);
    assert_int_equal(mlo_client_close(CL), MLO_OK);
    assert_int_equal(mlo_client_close(CN), MLO_OK);
    return 0;
}

/* The files the artifact and dataset rows read, in store_dir. */
static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_files(void) {
    snprintf(data_file, sizeof data_file, "%s/data.txt", store_dir);
    put_file(data_file, "hostile dataset\n");
    snprintf(fifo_path, sizeof fifo_path, "%s/fifo", store_dir);
    assert_int_equal(mkfifo(fifo_path, 0600), 0);
    /* adir: inside.txt, and escape -> a file outside it */
    snprintf(adir, sizeof adir, "%s/adir", store_dir);
    snprintf(outside_file, sizeof outside_file, "%s/outside.txt", store_dir);
    put_file(outside_file, "secret\n");
    assert_int_equal(mkdir(adir, 0700), 0);
    put_file(in_store("adir/inside.txt"), "inside\n");
    assert_int_equal(symlink(outside_file, in_store("adir/escape")), 0);
    /* odd: good.bin, a name that is not UTF-8, a FIFO */
    snprintf(odd_dir, sizeof odd_dir, "%s/odd", store_dir);
    assert_int_equal(mkdir(odd_dir, 0700), 0);
    put_file(in_store("odd/good.bin"), "good\n");
    put_file(in_store("odd/bad\xff.bin"), "bad\n");
    assert_int_equal(mkfifo(in_store("odd/pipe"), 0600), 0);
    snprintf(empty_dir, sizeof empty_dir, "%s/empty", store_dir);
    assert_int_equal(mkdir(empty_dir, 0700), 0);
    assert_int_equal(mkdir(in_store("nl"), 0700), 0);
    snprintf(nl_file, sizeof nl_file, "%s/nl/a\nb.txt", store_dir);
    put_file(nl_file, "newline\n");
    snprintf(dl_base, sizeof dl_base, "%s/dl", store_dir);
    assert_int_equal(mkdir(dl_base, 0700), 0);
    int n = snprintf(D5K, sizeof D5K, "%s/", store_dir);
    memset(D5K + n, 'd', 5000);
    D5K[n + 5000] = 0;
    for (size_t i = 0; i < sizeof BYTES; i++)
        BYTES[i] = (unsigned char)(i * 31 + 7);
}

int main(int argc, char **argv) {
    K250 = rep("a", 247, "ok.");
    K251 = rep("b", 251, NULL);
    K241 = rep("h", 241, NULL);
    K10M = rep("c", 10u << 20, NULL);
    V6001 = rep("p", 6001, NULL);
    V1M = rep("q", 1u << 20, NULL);
    V7000E = rep("\xc3\xa9", 7000, NULL);
    V8001 = rep("t", 8001, NULL);
    N501 = rep("n", 501, NULL);
    P1M = rep("/x", 1u << 19, "http://h"); /* a URI for set_tracking_uri, a path otherwise */
    P4097 = rep("/p", 2046, "ok/pp");      /* valid but for its length */
    DN500 = rep("n", 497, "ok.");
    DN501 = rep("n", 501, NULL);
    DN501E = rep("\xc3\xa9", 501, NULL);
    S70K = rep("s", 70000, "s3://b/");
    SCH37 = rep("a", 37, NULL);
    SCH37 = realloc(SCH37, 37 + 5);
    assert_non_null(SCH37);
    strcpy(SCH37 + 37, "://x");
    A256 = rep("a", 256, NULL);
    if (argc > 1 && !strcmp(argv[1], "--markdown")) {
        print_markdown();
        return 0;
    }
    /* a store of our own (the durable run log); tu_init cleared the tracking
     * settings a caller's environment could bring */
    tu_init("hostile");
    char *sd = tu_tmpdir("store");
    snprintf(store_dir, sizeof store_dir, "%s", sd);
    free(sd);
    setenv("MLO_STORE_DIR", store_dir, 1);
    snprintf(store_file, sizeof store_file, "%s/a-file", store_dir);
    snprintf(store_under_file, sizeof store_under_file, "%s/sub", store_file);
    FILE *f = fopen(store_file, "w");
    assert_non_null(f);
    fclose(f);
    make_files();

    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_row, setup, teardown),
    };
    int rc = tu_run_group("test_hostile", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    free(K250);
    free(K251);
    free(K241);
    free(K10M);
    free(V6001);
    free(V1M);
    free(V7000E);
    free(V8001);
    free(N501);
    free(P1M);
    free(P4097);
    free(DN500);
    free(DN501);
    free(DN501E);
    free(S70K);
    free(SCH37);
    free(A256);
    return rc;
}
