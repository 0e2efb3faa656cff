/*
 * test_hostile.c - every public function of include/mlo.h against every bad
 * input that applies to it (issue 8, item 7): NULL, empty, over-length,
 * illegal key characters, invalid UTF-8, NaN/+-Inf, negative and huge steps
 * and timestamps, path traversal, bad enums, zero and huge sizes, handles of
 * the wrong kind.  One table (ROWS below) is both the test and the README's
 * "Hostile input" table: `test_hostile --markdown` prints it.
 *
 * The calls go to a real client talking to the test server, and around every
 * row the test logs a good metric point ("good", steps 2i and 2i+1).  At the
 * end it asserts on what the server stored: every good point landed, every
 * value a row expects to land did (NaN, truncated values, extreme steps, the
 * good entries of a batch with a bad one), nothing a row refused did (keys
 * stored are only "good", "ok.*" and the system tags), and the client's
 * counters add up (ACCEPTED == SENT + FAILED, FAILED == the two param
 * conflicts the table provokes on purpose, nothing dropped).
 *
 * A row lists the statuses it accepts: the first is the one the header
 * documents (the README shows it); a second one is tolerated only where a
 * finding was reported and not fixed yet, and the row's note says so.
 */
#define _GNU_SOURCE
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlo.h"
#include "testsrv.h"

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

/* Not a handle: zeroed memory (every handle check must refuse it). */
static _Alignas(64) unsigned char zeros[8192];
#define ZC ((mlo_client_t *)(void *)zeros)
#define ZR ((mlo_run_t *)(void *)zeros)
#define ZO ((mlo_options_t *)(void *)zeros)
#define ZH ((mlo_histogram_t *)(void *)zeros)

/* long strings, made once */
static char *K250;  /* "ok." + 247 letters: the longest valid key */
static char *K251;  /* 251 letters */
static char *K241;  /* 241 letters: one over the histogram key limit */
static char *K10M;  /* 10 MB key */
static char *V6001; /* 6001 characters */
static char *V1M;   /* 1 MB value */
static char *V7000E; /* 7000 x "é" (two bytes each) */
static char *V8001; /* 8001 characters */
static char *N501;  /* 501-character experiment name */
static char *P1M;   /* a 1 MB path */

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

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    pthread_mutex_lock(&cb_lock);
    cb_calls++;
    if (!msg)
        cb_null_messages++;
    if (st == MLO_ERR_STORE)
        cb_store_errors++;
    pthread_mutex_unlock(&cb_lock);
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

/*
 * The table.  X_(id, function, bad input, result text (NULL: the status's
 * name), note (NULL: none), the call, accepted statuses...).  A row that
 * tries several inputs uses ALL(A(call), A(call), ...): the calls run in that
 * order and the row gets their common status (MIXED if they differ).
 * Keys that a row expects to land start with "ok."; keys it expects refused
 * never do.
 */
#define ROWS(X_)                                                                                    \
    /* ---- statuses ---- */                                                                       \
    X_(strerror_unknown, "mlo_strerror", "-1, INT_MIN, INT_MAX, 1000", "\"unknown status\"", NULL,  \
      ALL(A(str_is(mlo_strerror(-1), "unknown status")),                                           \
          A(str_is(mlo_strerror(INT_MIN), "unknown status")),                                      \
          A(str_is(mlo_strerror(INT_MAX), "unknown status")),                                      \
          A(str_is(mlo_strerror(1000), "unknown status"))),                                        \
      MLO_OK)                                                                                      \
    /* ---- options ---- */                                                                        \
    X_(opt_free_null, "mlo_options_free", "NULL, zeroed memory, a client", "no-op", NULL,           \
      NO_CRASH((mlo_options_free(NULL), mlo_options_free(ZO), mlo_options_free((mlo_options_t *)C))),\
      MLO_OK)                                                                                      \
    X_(uri_null_opts, "mlo_options_set_tracking_uri", "opts NULL, a client, zeroed memory", NULL,   \
      NULL,                                                                                        \
      ALL(A(mlo_options_set_tracking_uri(NULL, "http://h")),                                       \
          A(mlo_options_set_tracking_uri((mlo_options_t *)C, "http://h")),                         \
          A(mlo_options_set_tracking_uri(ZO, "http://h"))),                                        \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(uri_null, "mlo_options_set_tracking_uri", "uri NULL", NULL, "unsets it",                     \
      mlo_options_set_tracking_uri(O, NULL), MLO_OK)                                               \
    X_(uri_scheme, "mlo_options_set_tracking_uri",                                                  \
      "\"\", `ftp://h`, `file:///x`, `sqlite:///x.db`, `h:5000`, `http://`", NULL, NULL,           \
      ALL(A(mlo_options_set_tracking_uri(O, "")), A(mlo_options_set_tracking_uri(O, "ftp://h")),   \
          A(mlo_options_set_tracking_uri(O, "file:///x")),                                         \
          A(mlo_options_set_tracking_uri(O, "sqlite:///x.db")),                                    \
          A(mlo_options_set_tracking_uri(O, "h:5000")),                                            \
          A(mlo_options_set_tracking_uri(O, "http://"))),                                          \
      MLO_ERR_CONFIG)                                                                              \
    X_(uri_slashes, "mlo_options_set_tracking_uri", "`http:///` (no host, only slashes)", NULL,     \
      "no host: refused",                                                                          \
      mlo_options_set_tracking_uri(O, "http:///"), MLO_ERR_CONFIG)                                 \
    X_(uri_utf8, "mlo_options_set_tracking_uri", "invalid UTF-8", NULL,                             \
      "the header lists only OK, INVALID_ARGUMENT, CONFIG, NO_MEMORY for this setter",             \
      mlo_options_set_tracking_uri(O, "http://h\xff/"), MLO_ERR_INVALID_UTF8)                      \
    X_(uri_long, "mlo_options_set_tracking_uri", "1 MB long", NULL, NULL,                           \
      mlo_options_set_tracking_uri(O, P1M), MLO_OK)                                                \
    X_(expname_empty, "mlo_options_set_experiment_name, _experiment_id", "\"\"", NULL, NULL,        \
      ALL(A(mlo_options_set_experiment_name(O, "")), A(mlo_options_set_experiment_id(O, ""))),     \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(expname_utf8, "mlo_options_set_experiment_name, _experiment_id", "invalid UTF-8", NULL, NULL,\
      ALL(A(mlo_options_set_experiment_name(O, "e\xc0\xaf")),                                      \
          A(mlo_options_set_experiment_id(O, "1\xff"))),                                           \
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(token_utf8, "mlo_options_set_token", "invalid UTF-8", NULL, NULL,                            \
      mlo_options_set_token(O, "t\xed\xa0\x80"), MLO_ERR_INVALID_UTF8)                             \
    X_(basic_half, "mlo_options_set_basic_auth", "user without password, password without user",    \
      NULL, NULL,                                                                                  \
      ALL(A(mlo_options_set_basic_auth(O, "u", NULL)), A(mlo_options_set_basic_auth(O, NULL, "p"))),\
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(basic_utf8, "mlo_options_set_basic_auth", "invalid UTF-8 password", NULL, NULL,             \
      mlo_options_set_basic_auth(O, "u", "p\xff"), MLO_ERR_INVALID_UTF8)                           \
    X_(insecure_any, "mlo_options_set_insecure_tls", "-5, INT_MAX", NULL,                           \
      "any non-zero value means insecure",                                                         \
      ALL(A(mlo_options_set_insecure_tls(O, -5)), A(mlo_options_set_insecure_tls(O, INT_MAX))),    \
      MLO_OK)                                                                                      \
    X_(paths_utf8, "mlo_options_set_ca_cert_path, _client_cert_path", "invalid UTF-8", NULL, NULL,  \
      ALL(A(mlo_options_set_ca_cert_path(O, "/ca\xff.pem")),                                       \
          A(mlo_options_set_client_cert_path(O, "/c\xc3.pem"))),                                   \
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(paths_missing, "mlo_options_set_ca_cert_path, _client_cert_path", "a file that does not exist",\
      NULL, "requests then fail with MLO_ERR_TLS (test_tls)",                                      \
      ALL(A(mlo_options_set_ca_cert_path(O, "/nonexistent/ca.pem")),                               \
          A(mlo_options_set_client_cert_path(O, "../../nonexistent.pem"))),                        \
      MLO_OK)                                                                                      \
    X_(retries_over, "mlo_options_set_retries", "max_retries 11, INT_MAX", NULL, NULL,              \
      ALL(A(mlo_options_set_retries(O, 11, -1, -1, -1)),                                           \
          A(mlo_options_set_retries(O, INT_MAX, -1, -1, -1))),                                     \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(retries_nan, "mlo_options_set_retries", "NaN or +Infinity backoff, jitter or timeout", NULL, \
      NULL,                                                                                        \
      ALL(A(mlo_options_set_retries(O, 1, NAN, -1, -1)),                                           \
          A(mlo_options_set_retries(O, 1, -1, NAN, -1)),                                           \
          A(mlo_options_set_retries(O, 1, -1, -1, NAN)),                                           \
          A(mlo_options_set_retries(O, 1, INFINITY, -1, -1)),                                      \
          A(mlo_options_set_retries(O, 1, -1, INFINITY, -1)),                                      \
          A(mlo_options_set_retries(O, 1, -1, -1, INFINITY))),                                     \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(retries_huge, "mlo_options_set_retries", "backoff or jitter 3601 s, timeout 0 or 86401 s",   \
      NULL, NULL,                                                                                  \
      ALL(A(mlo_options_set_retries(O, 1, 3601, -1, -1)),                                          \
          A(mlo_options_set_retries(O, 1, -1, 3601, -1)),                                          \
          A(mlo_options_set_retries(O, 1, -1, -1, 0)),                                             \
          A(mlo_options_set_retries(O, 1, -1, -1, 86401))),                                        \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(retries_negative, "mlo_options_set_retries", "INT_MIN, -Infinity, -1e300", NULL,             \
      "negative: keep the environment's or the default value",                                     \
      mlo_options_set_retries(O, INT_MIN, -INFINITY, -1, -1e300), MLO_OK)                          \
    X_(queue_bytes, "mlo_options_set_queue_bytes", "0, 1, 65535, 1 GiB + 1, SIZE_MAX", NULL, NULL,  \
      ALL(A(mlo_options_set_queue_bytes(O, 0)), A(mlo_options_set_queue_bytes(O, 1)),              \
          A(mlo_options_set_queue_bytes(O, 65535)),                                                \
          A(mlo_options_set_queue_bytes(O, (1u << 30) + 1)),                                       \
          A(mlo_options_set_queue_bytes(O, SIZE_MAX))),                                            \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(policy, "mlo_options_set_full_policy", "policy 2 or -1; wait_ms 60001 or UINT_MAX", NULL, NULL,\
      ALL(A(mlo_options_set_full_policy(O, (mlo_full_policy)2, 10)),                               \
          A(mlo_options_set_full_policy(O, (mlo_full_policy)-1, 10)),                              \
          A(mlo_options_set_full_policy(O, MLO_FULL_WAIT, 60001)),                                 \
          A(mlo_options_set_full_policy(O, MLO_FULL_DROP, UINT_MAX))),                             \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(close_timeout_huge, "mlo_options_set_close_timeout_ms", "UINT_MAX", NULL,                    \
      "accepted: a close may then wait ~49 days for a server that is down",                        \
      mlo_options_set_close_timeout_ms(O, UINT_MAX), MLO_OK)                                       \
    X_(flush_interval, "mlo_options_set_flush_interval_ms", "0, 60001, UINT_MAX", NULL, NULL,       \
      ALL(A(mlo_options_set_flush_interval_ms(O, 0)),                                              \
          A(mlo_options_set_flush_interval_ms(O, 60001)),                                          \
          A(mlo_options_set_flush_interval_ms(O, UINT_MAX))),                                      \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(store_dir_empty, "mlo_options_set_store_dir", "\"\"", NULL, NULL,                           \
      mlo_options_set_store_dir(O, ""), MLO_ERR_INVALID_ARGUMENT)                                  \
    X_(store_dir_utf8, "mlo_options_set_store_dir", "invalid UTF-8", NULL, NULL,                   \
      mlo_options_set_store_dir(O, "/tmp/s\xc3"), MLO_ERR_INVALID_UTF8)                            \
    X_(durable_any, "mlo_options_set_durable", "-5, INT_MAX", NULL, "any non-zero value means on", \
      ALL(A(mlo_options_set_durable(O, -5)), A(mlo_options_set_durable(O, INT_MAX))), MLO_OK)      \
    X_(fsync_bad, "mlo_options_set_fsync", "policy 3 or -1; INTERVAL with 0 or 3600001 ms", NULL,  \
      NULL,                                                                                        \
      ALL(A(mlo_options_set_fsync(O, (mlo_fsync_policy)3, 1000)),                                  \
          A(mlo_options_set_fsync(O, (mlo_fsync_policy)-1, 1000)),                                 \
          A(mlo_options_set_fsync(O, MLO_FSYNC_INTERVAL, 0)),                                      \
          A(mlo_options_set_fsync(O, MLO_FSYNC_INTERVAL, 3600001))),                               \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(callback_null, "mlo_options_set_error_callback", "fn NULL with user data", NULL,             \
      "no callback", mlo_options_set_error_callback(O, NULL, (void *)1), MLO_OK)                   \
    X_(setters_null_opts, "mlo_options_set_* (all the others)",                                    \
      "opts NULL, a client, zeroed memory", NULL, NULL,                                            \
      ALL(A(every_setter(NULL)), A(every_setter((mlo_options_t *)C)), A(every_setter(ZO))),        \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    /* ---- client ---- */                                                                         \
    X_(open_out_null, "mlo_client_open", "out NULL", NULL, NULL, mlo_client_open(NULL, NULL),       \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(open_bad_opts, "mlo_client_open", "opts is a client, zeroed memory", NULL, "*out set to NULL",\
      ALL(A(open_bad_handle((const mlo_options_t *)C)), A(open_bad_handle(ZO))),                   \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(open_no_uri, "mlo_client_open", "no tracking URI at all", NULL,                              \
      "OK once the local store is in (runs kept on disk)", open_env(NULL, NULL), MLO_ERR_CONFIG,   \
      MLO_OK)                                                                                      \
    X_(open_env_uri, "mlo_client_open",                                                             \
      "`MLFLOW_TRACKING_URI` = `ftp://h`, `h:5000`, `http://`, invalid UTF-8", NULL, NULL,         \
      ALL(A(open_env("MLFLOW_TRACKING_URI", "ftp://h")),                                           \
          A(open_env("MLFLOW_TRACKING_URI", "h:5000")),                                            \
          A(open_env("MLFLOW_TRACKING_URI", "http://")),                                           \
          A(open_env("MLFLOW_TRACKING_URI", "http://h\xff"))),                                     \
      MLO_ERR_CONFIG)                                                                              \
    X_(open_env_retries, "mlo_client_open",                                                         \
      "`MLFLOW_HTTP_REQUEST_MAX_RETRIES` = `abc`, `2.5`, `-1`, `nan`, `3 `", NULL, NULL,           \
      ALL(A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "abc", NULL, NULL, NULL)),                \
          A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2.5", NULL, NULL, NULL)),                \
          A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "-1", NULL, NULL, NULL)),                 \
          A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "nan", NULL, NULL, NULL)),                \
          A(open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3 ", NULL, NULL, NULL))),                \
      MLO_ERR_CONFIG)                                                                              \
    X_(open_env_retries_huge, "mlo_client_open", "`MLFLOW_HTTP_REQUEST_MAX_RETRIES=1000000000`",    \
      NULL, "capped at 10, as MLflow does",                                                        \
      open_with("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1000000000", NULL, NULL, NULL), MLO_OK)        \
    X_(open_env_timeout, "mlo_client_open",                                                         \
      "`MLFLOW_HTTP_REQUEST_TIMEOUT` = `0`, `-3`, `1e400`; `..._BACKOFF_FACTOR=-1`", NULL, NULL,   \
      ALL(A(open_with("MLFLOW_HTTP_REQUEST_TIMEOUT", "0", NULL, NULL, NULL)),                      \
          A(open_with("MLFLOW_HTTP_REQUEST_TIMEOUT", "-3", NULL, NULL, NULL)),                     \
          A(open_with("MLFLOW_HTTP_REQUEST_TIMEOUT", "1e400", NULL, NULL, NULL)),                  \
          A(open_with("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "-1", NULL, NULL, NULL))),             \
      MLO_ERR_CONFIG)                                                                              \
    X_(open_env_bool, "mlo_client_open",                                                            \
      "`MLFLOW_TRACKING_INSECURE_TLS=maybe`, `MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER=2`", NULL,    \
      NULL,                                                                                        \
      ALL(A(open_with("MLFLOW_TRACKING_INSECURE_TLS", "maybe", NULL, NULL, NULL)),                 \
          A(open_with("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", "2", NULL, NULL, NULL))),          \
      MLO_ERR_CONFIG)                                                                              \
    X_(open_store_unusable, "mlo_client_open",                                                     \
      "store directory a regular file, under one, or where it cannot be created", NULL,            \
      "opens; MLO_ERR_STORE to the callback; events kept in memory still land",                    \
      ALL(A(open_store(store_file)), A(open_store(store_under_file)),                              \
          A(open_store("/proc/mlo-no-such/store"))),                                               \
      MLO_OK)                                                                                      \
    X_(open_token_crlf, "mlo_options_set_token, _basic_auth",                                     \
      "token, user or password with CR/LF (header injection), user with `:`", NULL,               \
      "refused by the setter; what was set before stays",                                         \
      ALL(A(open_with(NULL, NULL, "tok\r\nX-Injected: 1", NULL, NULL)),                            \
          A(open_with(NULL, NULL, NULL, "u\r\nX: y", "p")),                                        \
          A(open_with(NULL, NULL, NULL, "u", "p\nX: y")),                                          \
          A(open_with(NULL, NULL, NULL, "a:b", "p"))),                                             \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(open_token_crlf_env, "mlo_client_open",                                                     \
      "`MLFLOW_TRACKING_TOKEN` (or _USERNAME/_PASSWORD) with CR/LF", NULL,                         \
      "refused, the message names the variables, not their values",                               \
      open_with("MLFLOW_TRACKING_TOKEN", "t\r\nX: 1", NULL, NULL, NULL), MLO_ERR_CONFIG)            \
    X_(flush_null, "mlo_client_flush", "NULL, a run, zeroed memory", NULL, NULL,                    \
      ALL(A(mlo_client_flush(NULL, 10)), A(mlo_client_flush((mlo_client_t *)R, 10)),               \
          A(mlo_client_flush(ZC, 10))),                                                            \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(flush_zero, "mlo_client_flush", "timeout 0", NULL, "OK when nothing is pending",             \
      mlo_client_flush(C, 0), MLO_ERR_TIMEOUT, MLO_OK)                                             \
    X_(close_null, "mlo_client_close", "NULL, a run, an options object, zeroed memory", NULL,       \
      "nothing closed",                                                                            \
      ALL(A(mlo_client_close(NULL)), A(mlo_client_close((mlo_client_t *)R)),                       \
          A(mlo_client_close((mlo_client_t *)O)), A(mlo_client_close(ZC))),                        \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(stat_null, "mlo_client_stat", "client NULL or zeroed; value NULL", NULL, NULL,               \
      ALL(A(stat_of(NULL, MLO_STAT_SENT)), A(stat_of(ZC, MLO_STAT_SENT)),                          \
          A(mlo_client_stat(C, MLO_STAT_SENT, NULL))),                                             \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(stat_enum, "mlo_client_stat", "which -1, 64, INT_MAX", NULL, NULL,                           \
      ALL(A(stat_of(C, -1)), A(stat_of(C, 64)), A(stat_of(C, INT_MAX))),                           \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    /* ---- runs ---- */                                                                           \
    X_(start_null, "mlo_start_run", "client NULL, a run, zeroed memory; out NULL", NULL,            \
      "*out set to NULL",                                                                          \
      ALL(A(start_on(NULL, "e")), A(start_on((mlo_client_t *)R, "e")), A(start_on(ZC, "e")),       \
          A(mlo_start_run(C, "e", NULL, NULL, NULL))),                                             \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(start_empty, "mlo_start_run", "experiment or run name \"\"", NULL, NULL,                     \
      ALL(A(start("", NULL, NULL)), A(start("e", "", NULL))), MLO_ERR_INVALID_ARGUMENT)            \
    X_(start_utf8, "mlo_start_run", "experiment or run name with invalid UTF-8", NULL, NULL,        \
      ALL(A(start("e\xff", NULL, NULL)), A(start("e", "r\xe2\x82", NULL))), MLO_ERR_INVALID_UTF8)  \
    X_(start_parent, "mlo_start_run", "parent of another client, a client, zeroed memory", NULL,    \
      NULL, ALL(A(start("e", NULL, R2)), A(start("e", NULL, (mlo_run_t *)C)), A(start("e", NULL, ZR))),\
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(start_exp_long, "mlo_start_run", "experiment name of 501 characters", NULL,                  \
      "refused by the server (limit 500)", start(N501, NULL, NULL), MLO_ERR_SERVER_INVALID)        \
    X_(start_exp_traversal, "mlo_start_run", "experiment name `../../etc/passwd`", NULL,            \
      "a name, not a path: created as given", start("../../etc/passwd", "ok-traversal", NULL),     \
      MLO_OK)                                                                                      \
    X_(start_run_name_long, "mlo_start_run", "run name of 1 MB", NULL,                              \
      "the server keeps 8000 characters of mlflow.runName", start("hostile", V1M, NULL), MLO_OK)   \
    X_(resume_null, "mlo_resume_run", "client NULL, out NULL, run_id NULL or \"\"", NULL, NULL,     \
      ALL(A(resume_on(NULL, "0123456789abcdef0123456789abcdef")),                                  \
          A(mlo_resume_run(C, "0123456789abcdef0123456789abcdef", NULL)), A(resume(NULL)),         \
          A(resume(""))),                                                                          \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(resume_utf8, "mlo_resume_run", "run_id with invalid UTF-8", NULL, NULL, resume("ab\xff"),    \
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(resume_traversal, "mlo_resume_run", "run_id `../../x`, `a&run_id=b`, `a b`", NULL,          \
      "sent URL-encoded; the server refuses the id",                                               \
      ALL(A(resume("../../x")), A(resume("a&run_id=b")), A(resume("a b"))),                        \
      MLO_ERR_SERVER_INVALID)                                                                      \
    X_(resume_long, "mlo_resume_run", "run_id of 300 characters", NULL,                            \
      "refused at the call, or by the server", resume(V6001 + 5701),                               \
      MLO_ERR_INVALID_ARGUMENT, MLO_ERR_SERVER_INVALID)                                            \
    X_(resume_unknown, "mlo_resume_run", "a well-formed id of no run", NULL, NULL,                  \
      resume("0123456789abcdef0123456789abcdef"), MLO_ERR_NOT_FOUND)                               \
    X_(run_id_null, "mlo_run_id, mlo_run_experiment_id", "NULL, a client, zeroed memory", "NULL",   \
      NULL,                                                                                        \
      ALL(A(is_null(mlo_run_id(NULL))), A(is_null(mlo_run_id((mlo_run_t *)C))),                    \
          A(is_null(mlo_run_id(ZR))), A(is_null(mlo_run_experiment_id(NULL))),                     \
          A(is_null(mlo_run_experiment_id((mlo_run_t *)C))), A(is_null(mlo_run_experiment_id(ZR)))),\
      MLO_OK)                                                                                      \
    X_(end_null, "mlo_end_run", "NULL, a client, zeroed memory", NULL, NULL,                        \
      ALL(A(mlo_end_run(NULL, MLO_RUN_FINISHED)), A(mlo_end_run((mlo_run_t *)C, MLO_RUN_FINISHED)),\
          A(mlo_end_run(ZR, MLO_RUN_FINISHED))),                                                   \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(end_enum, "mlo_end_run", "status 0, -1, 6, INT_MAX, RUNNING, SCHEDULED", NULL, NULL,         \
      ALL(A(mlo_end_run(R, (mlo_run_status)0)), A(mlo_end_run(R, (mlo_run_status)-1)),             \
          A(mlo_end_run(R, (mlo_run_status)6)), A(mlo_end_run(R, (mlo_run_status)INT_MAX)),        \
          A(mlo_end_run(R, MLO_RUN_RUNNING)), A(mlo_end_run(R, MLO_RUN_SCHEDULED))),               \
      MLO_ERR_INVALID_STATUS)                                                                      \
    X_(end_twice, "mlo_end_run", "a run ended twice (FINISHED, then KILLED)", NULL,                 \
      "the last one wins, as on the server",                                                       \
      ALL(A(mlo_end_run(R2, MLO_RUN_FINISHED)), A(mlo_end_run(R2, MLO_RUN_KILLED))), MLO_OK)       \
    /* ---- metrics ---- */                                                                        \
    X_(metric_run_null, "mlo_log_metric", "run NULL, a client, zeroed memory", NULL, NULL,          \
      ALL(A(mlo_log_metric(NULL, "k", 1, 0)), A(mlo_log_metric((mlo_run_t *)C, "k", 1, 0)),        \
          A(mlo_log_metric(ZR, "k", 1, 0))),                                                       \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(metric_key_null, "mlo_log_metric", "key NULL", NULL, NULL, mlo_log_metric(R, NULL, 1, 0),    \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(metric_key_empty, "mlo_log_metric", "key \"\"", NULL, NULL, mlo_log_metric(R, "", 1, 0),     \
      MLO_ERR_INVALID_KEY)                                                                         \
    X_(metric_key_251, "mlo_log_metric", "key of 251 characters; of 10 MB", NULL, NULL,             \
      ALL(A(mlo_log_metric(R, K251, 1, 0)), A(mlo_log_metric(R, K10M, 1, 0))), MLO_ERR_INVALID_KEY)\
    X_(metric_key_250, "mlo_log_metric", "key of 250 characters", NULL, "lands",                    \
      mlo_log_metric(R, K250, 1, 0), MLO_OK)                                                       \
    X_(metric_key_chars, "mlo_log_metric",                                                          \
      "key `bad key!`, `a,b`, `a=b`, `a\\tb`, `a\\nb`, `a\\\\b`, `a;b`, `é!`, an emoji", NULL, NULL,\
      ALL(A(mlo_log_metric(R, "bad key!", 1, 0)), A(mlo_log_metric(R, "a,b", 1, 0)),               \
          A(mlo_log_metric(R, "a=b", 1, 0)), A(mlo_log_metric(R, "a\tb", 1, 0)),                   \
          A(mlo_log_metric(R, "a\nb", 1, 0)), A(mlo_log_metric(R, "a\\b", 1, 0)),                  \
          A(mlo_log_metric(R, "a;b", 1, 0)), A(mlo_log_metric(R, "\xc3\xa9!", 1, 0)),              \
          A(mlo_log_metric(R, "loss\xf0\x9f\x98\x80", 1, 0))),                                     \
      MLO_ERR_INVALID_KEY)                                                                         \
    X_(metric_key_path, "mlo_log_metric",                                                           \
      "key `../x`, `a/../b`, `..`, `..x`, `.`, `a/./b`, `a//b`, `/abs`, `a/`", NULL, NULL,         \
      ALL(A(mlo_log_metric(R, "../x", 1, 0)), A(mlo_log_metric(R, "a/../b", 1, 0)),                \
          A(mlo_log_metric(R, "..", 1, 0)), A(mlo_log_metric(R, "..x", 1, 0)),                     \
          A(mlo_log_metric(R, ".", 1, 0)), A(mlo_log_metric(R, "a/./b", 1, 0)),                    \
          A(mlo_log_metric(R, "a//b", 1, 0)), A(mlo_log_metric(R, "/abs", 1, 0)),                  \
          A(mlo_log_metric(R, "a/", 1, 0))),                                                       \
      MLO_ERR_INVALID_KEY)                                                                         \
    X_(metric_key_utf8, "mlo_log_metric",                                                           \
      "key with a stray byte, an overlong `/`, a surrogate, a cut-off sequence", NULL, NULL,       \
      ALL(A(mlo_log_metric(R, "k\xff", 1, 0)), A(mlo_log_metric(R, "a\xc0\xaf", 1, 0)),            \
          A(mlo_log_metric(R, "\xed\xa0\x80", 1, 0)), A(mlo_log_metric(R, "k\xe2\x82", 1, 0))),    \
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(metric_key_mixed, "mlo_log_metric", "key with a bad character before invalid UTF-8", NULL,   \
      "the first problem found wins",                                                              \
      mlo_log_metric(R, "bad!\xff", 1, 0), MLO_ERR_INVALID_KEY)                                    \
    X_(metric_key_unicode, "mlo_log_metric", "key `ok.größe/温度` (letters of any script)", NULL,     \
      "lands", mlo_log_metric(R, "ok.größe/温度", 1, 0), MLO_OK)                                     \
    X_(metric_nan, "mlo_log_metric", "value NaN, +Infinity, -Infinity", NULL,                       \
      "land as NaN and ±1.797e308 (how the server stores infinities)",                             \
      ALL(A(mlo_log_metric(R, "ok.nan", NAN, 0)), A(mlo_log_metric(R, "ok.inf", INFINITY, 0)),     \
          A(mlo_log_metric(R, "ok.ninf", -INFINITY, 0))),                                          \
      MLO_OK)                                                                                      \
    X_(metric_extreme, "mlo_log_metric", "value -0.0, DBL_MAX, 5e-324", NULL, "land",               \
      ALL(A(mlo_log_metric(R, "ok.negzero", -0.0, 0)), A(mlo_log_metric(R, "ok.max", DBL_MAX, 0)), \
          A(mlo_log_metric(R, "ok.min", 5e-324, 0))),                                              \
      MLO_OK)                                                                                      \
    X_(metric_steps, "mlo_log_metric", "step -1, INT64_MIN, INT64_MAX", NULL, "land",               \
      ALL(A(mlo_log_metric(R, "ok.step", 1, -1)), A(mlo_log_metric(R, "ok.step", 2, INT64_MIN)),   \
          A(mlo_log_metric(R, "ok.step", 3, INT64_MAX))),                                          \
      MLO_OK)                                                                                      \
    X_(metric_ts_null, "mlo_log_metric_ts", "run NULL, key NULL", NULL, NULL,                       \
      ALL(A(mlo_log_metric_ts(NULL, "k", 1, 0, 1)), A(mlo_log_metric_ts(R, NULL, 1, 0, 1))),       \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(metric_ts_neg, "mlo_log_metric_ts", "timestamp -1, INT64_MIN", NULL, NULL,                   \
      ALL(A(mlo_log_metric_ts(R, "no.ts", 1, 0, -1)),                                              \
          A(mlo_log_metric_ts(R, "no.ts", 1, 0, INT64_MIN))),                                      \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(metric_ts_edge, "mlo_log_metric_ts", "timestamp 0, INT64_MAX", NULL, "land",                 \
      ALL(A(mlo_log_metric_ts(R, "ok.ts", 1, 0, 0)), A(mlo_log_metric_ts(R, "ok.ts", 2, 1, INT64_MAX))),\
      MLO_OK)                                                                                      \
    X_(metric_ts_key, "mlo_log_metric_ts", "key `../x`", NULL, NULL,                                \
      mlo_log_metric_ts(R, "../x", 1, 0, 1), MLO_ERR_INVALID_KEY)                                  \
    /* ---- params and tags ---- */                                                                \
    X_(param_null, "mlo_log_param", "run NULL or zeroed, key NULL, value NULL", NULL, NULL,         \
      ALL(A(mlo_log_param(NULL, "k", "v")), A(mlo_log_param(ZR, "k", "v")),                        \
          A(mlo_log_param(R, NULL, "v")), A(mlo_log_param(R, "no.k", NULL))),                      \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(param_key, "mlo_log_param", "key \"\", `../etc/passwd`, `a b!`, 251 characters", NULL, NULL, \
      ALL(A(mlo_log_param(R, "", "v")), A(mlo_log_param(R, "../etc/passwd", "v")),                 \
          A(mlo_log_param(R, "a b!", "v")), A(mlo_log_param(R, K251, "v"))),                       \
      MLO_ERR_INVALID_KEY)                                                                         \
    X_(param_utf8, "mlo_log_param", "key or value with invalid UTF-8", NULL, NULL,                  \
      ALL(A(mlo_log_param(R, "no.v", "v\xc3")), A(mlo_log_param(R, "no\xff", "v"))),               \
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(param_empty, "mlo_log_param", "value \"\"", NULL, "lands", mlo_log_param(R, "ok.empty", ""), \
      MLO_OK)                                                                                      \
    X_(param_long, "mlo_log_param", "value of 6001 characters; of 1 MB; 7000 x `é`", NULL,          \
      "truncated to 6000 characters (on a character boundary), MLO_WARN_TRUNCATED",                \
      ALL(A(mlo_log_param(R, "ok.long", V6001)), A(mlo_log_param(R, "ok.1m", V1M)),                \
          A(mlo_log_param(R, "ok.longe", V7000E))),                                                \
      MLO_OK)                                                                                      \
    X_(param_same, "mlo_log_param", "the same key and value again", NULL, "stored once",            \
      ALL(A(mlo_log_param(R, "ok.same", "v")), A(mlo_log_param(R, "ok.same", "v"))), MLO_OK)       \
    X_(param_conflict, "mlo_log_param", "the same key with another value", NULL,                    \
      "refused later by the server: MLO_ERR_SERVER_INVALID to the callback, MLO_STAT_FAILED; "     \
      "the first value stays, nothing else is lost",                                               \
      ALL(A(mlo_log_param(R, "ok.conflict", "first")), A(mlo_log_param(R, "ok.conflict", "second"))),\
      MLO_OK)                                                                                      \
    X_(tag_null, "mlo_set_tag", "run NULL, key NULL, value NULL", NULL, NULL,                       \
      ALL(A(mlo_set_tag(NULL, "k", "v")), A(mlo_set_tag(R, NULL, "v")),                            \
          A(mlo_set_tag(R, "no.k", NULL))),                                                        \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(tag_key, "mlo_set_tag", "key `/abs`, `a//b`, 251 characters", NULL, NULL,                    \
      ALL(A(mlo_set_tag(R, "/abs", "v")), A(mlo_set_tag(R, "a//b", "v")),                          \
          A(mlo_set_tag(R, K251, "v"))),                                                           \
      MLO_ERR_INVALID_KEY)                                                                         \
    X_(tag_utf8, "mlo_set_tag", "value above U+10FFFF", NULL, NULL,                                 \
      mlo_set_tag(R, "no.t", "\xf4\x90\x80\x80"), MLO_ERR_INVALID_UTF8)                            \
    X_(tag_long, "mlo_set_tag", "value of 8001 characters", NULL,                                   \
      "truncated to 8000 characters, MLO_WARN_TRUNCATED", mlo_set_tag(R, "ok.longtag", V8001),     \
      MLO_OK)                                                                                      \
    /* ---- batches ---- */                                                                        \
    X_(metrics_n0, "mlo_log_metrics, mlo_log_params, mlo_set_tags", "n 0 with NULL arrays", NULL,   \
      "nothing to do",                                                                             \
      ALL(A(mlo_log_metrics(R, 0, NULL, NULL, NULL, NULL)), A(mlo_log_params(R, 0, NULL, NULL)),   \
          A(mlo_set_tags(R, 0, NULL, NULL))),                                                      \
      MLO_OK)                                                                                      \
    X_(metrics_null, "mlo_log_metrics", "run NULL; keys or values NULL; n SIZE_MAX with NULL",      \
      NULL, "nothing queued",                                                                      \
      ALL(A(mlo_log_metrics(NULL, 3, KEYS_BAD_MID, VALS3, NULL, NULL)),                            \
          A(mlo_log_metrics(R, 3, NULL, VALS3, NULL, NULL)),                                       \
          A(mlo_log_metrics(R, 3, KEYS_BAD_MID, NULL, NULL, NULL)),                                \
          A(mlo_log_metrics(R, SIZE_MAX, NULL, NULL, NULL, NULL))),                                \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(metrics_key_null_mid, "mlo_log_metrics", "keys[1] NULL", NULL, "keys[0] and keys[2] land",   \
      mlo_log_metrics(R, 3, KEYS_NULL_MID, VALS3, STEPS3, NULL), MLO_ERR_INVALID_ARGUMENT)         \
    X_(metrics_key_bad_mid, "mlo_log_metrics", "keys[1] `no key!`", NULL, "keys[0] and keys[2] land",\
      mlo_log_metrics(R, 3, KEYS_BAD_MID, VALS3, NULL, NULL), MLO_ERR_INVALID_KEY)                 \
    X_(metrics_key_utf8_mid, "mlo_log_metrics", "keys[1] invalid UTF-8", NULL,                      \
      "keys[0] and keys[2] land", mlo_log_metrics(R, 3, KEYS_UTF8_MID, VALS3, NULL, NULL),         \
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(metrics_ts_mid, "mlo_log_metrics", "timestamps_ms[1] -5", NULL, "entries 0 and 2 land",      \
      mlo_log_metrics(R, 3, KEYS_TS, VALS3, NULL, TS_NEG_MID), MLO_ERR_INVALID_ARGUMENT)           \
    X_(params_null, "mlo_log_params, mlo_set_tags",                                                 \
      "run NULL; keys or values NULL (n 3); n SIZE_MAX with NULL", NULL, "nothing queued",         \
      ALL(A(mlo_log_params(NULL, 3, PKEYS, PVALS_NULL_MID)),                                       \
          A(mlo_log_params(R, 3, NULL, PVALS_NULL_MID)), A(mlo_log_params(R, 3, PKEYS, NULL)),     \
          A(mlo_log_params(R, SIZE_MAX, NULL, NULL)), A(mlo_set_tags(NULL, 3, TKEYS, TVALS)),      \
          A(mlo_set_tags(R, 3, NULL, TVALS)), A(mlo_set_tags(R, 3, TKEYS, NULL)),                  \
          A(mlo_set_tags(R, SIZE_MAX, NULL, NULL))),                                               \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(params_null_mid, "mlo_log_params", "values[1] NULL", NULL, "entries 0 and 2 land",           \
      mlo_log_params(R, 3, PKEYS, PVALS_NULL_MID), MLO_ERR_INVALID_ARGUMENT)                       \
    X_(params_utf8_mid, "mlo_log_params", "values[1] invalid UTF-8", NULL, "entries 0 and 2 land",  \
      mlo_log_params(R, 3, PKEYS2, PVALS_UTF8_MID), MLO_ERR_INVALID_UTF8)                          \
    X_(params_dup, "mlo_log_params", "one key twice, with two values", NULL,                        \
      "the first lands; the server refuses the second (MLO_STAT_FAILED)",                          \
      mlo_log_params(R, 2, PKEYS_DUP, PVALS_DUP), MLO_OK)                                          \
    X_(tags_key_mid, "mlo_set_tags", "keys[1] `../no`", NULL, "entries 0 and 2 land",               \
      mlo_set_tags(R, 3, TKEYS, TVALS), MLO_ERR_INVALID_KEY)                                       \
    X_(tags_value_null, "mlo_set_tags", "values[1] NULL", NULL, "entry 0 lands",                    \
      mlo_set_tags(R, 2, TKEYS_NULLV, TVALS_NULLV), MLO_ERR_INVALID_ARGUMENT)                      \
    /* ---- artifacts ---- */                                                                      \
    X_(artifact_null, "mlo_log_artifact", "run NULL or zeroed, local_path NULL or \"\"", NULL, NULL,\
      ALL(A(mlo_log_artifact(NULL, "/etc/hostname", NULL)),                                        \
          A(mlo_log_artifact(ZR, "/etc/hostname", NULL)), A(mlo_log_artifact(R, NULL, NULL)),      \
          A(mlo_log_artifact(R, "", NULL))),                                                       \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(artifact_utf8, "mlo_log_artifact", "local_path or artifact_path with invalid UTF-8", NULL,   \
      NULL,                                                                                        \
      ALL(A(mlo_log_artifact(R, "/tmp/\xff", NULL)), A(mlo_log_artifact(R, "/etc/hostname", "a\xc3"))),\
      MLO_ERR_INVALID_UTF8)                                                                        \
    X_(artifact_traversal, "mlo_log_artifact", "artifact_path `../../x`, `/abs`, `a/../../b`", NULL,\
      "refused at the call: nothing staged, nothing sent",                                         \
      ALL(A(mlo_log_artifact(R, "/etc/hostname", "../../x")),                                      \
          A(mlo_log_artifact(R, "/etc/hostname", "/abs")),                                         \
          A(mlo_log_artifact(R, "/etc/hostname", "a/../../b"))),                                   \
      MLO_ERR_INVALID_PATH)                                                                        \
    X_(artifact_missing, "mlo_log_artifact", "local_path that does not exist; of 1 MB", NULL,       \
      "the message names the path and the reason",                                                 \
      ALL(A(mlo_log_artifact(R, "/nonexistent/x", NULL)), A(mlo_log_artifact(R, P1M, NULL))),      \
      MLO_ERR_IO)                                                                                  \
    /* ---- histograms ---- */                                                                     \
    X_(hist_null, "mlo_histogram_new", "run NULL or zeroed, key NULL, out NULL", NULL, NULL,        \
      ALL(A(hist_new(NULL, "ok.h", 1000)), A(hist_new(ZR, "ok.h", 1000)),                          \
          A(hist_new(R, NULL, 1000)), A(mlo_histogram_new(R, "ok.h", 1000, NULL))),                                     \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(hist_key, "mlo_histogram_new", "key \"\", `a//b`, 241 characters", NULL,                     \
      "240 is the limit: the suffixes must fit",                                                   \
      ALL(A(hist_new(R, "", 1000)), A(hist_new(R, "a//b", 1000)), A(hist_new(R, K241, 1000))),     \
      MLO_ERR_INVALID_KEY)                                                                         \
    X_(hist_utf8, "mlo_histogram_new", "key with invalid UTF-8", NULL, NULL,                        \
      hist_new(R, "h\xff", 1000), MLO_ERR_INVALID_UTF8)                                            \
    X_(hist_interval, "mlo_histogram_new", "interval_ms 0, 99, 3600001, UINT_MAX", NULL, NULL,      \
      ALL(A(hist_new(R, "ok.h", 0)), A(hist_new(R, "ok.h", 99)), A(hist_new(R, "ok.h", 3600001)),  \
          A(hist_new(R, "ok.h", UINT_MAX))),                                                       \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(hist_record_null, "mlo_histogram_record", "NULL, zeroed memory", NULL, NULL,                 \
      ALL(A(mlo_histogram_record(NULL, 1)), A(mlo_histogram_record(ZH, 1))), MLO_ERR_INVALID_ARGUMENT)         \
    X_(hist_record_bad, "mlo_histogram_record", "NaN, -1, -Infinity, -DBL_MIN", NULL, NULL,         \
      ALL(A(hist_record(NAN)), A(hist_record(-1)), A(hist_record(-INFINITY)),                      \
          A(hist_record(-DBL_MIN))),                                                               \
      MLO_ERR_INVALID_ARGUMENT)                                                                    \
    X_(hist_record_edge, "mlo_histogram_record", "-0.0, 5e-324, DBL_MAX, +Infinity", NULL,          \
      "kept (below 1e-9 counts as 0; +Infinity only in max)",                                      \
      ALL(A(hist_record(-0.0)), A(hist_record(5e-324)), A(hist_record(DBL_MAX)),                   \
          A(hist_record(INFINITY))),                                                               \
      MLO_OK)                                                                                      \
    X_(hist_free_null, "mlo_histogram_free", "NULL", NULL, "no-op", mlo_histogram_free(NULL), MLO_OK)

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
    static const char *const names[] = {
        "MLO_OK", "MLO_ERR_INVALID_ARGUMENT", "MLO_ERR_INVALID_KEY", "MLO_ERR_INVALID_UTF8",
        "MLO_ERR_INVALID_STATUS", "MLO_ERR_QUEUE_FULL", "MLO_ERR_CLOSED", "MLO_ERR_NO_MEMORY",
        "MLO_ERR_TIMEOUT", "MLO_ERR_NETWORK", "MLO_ERR_TLS", "MLO_ERR_SERVER_INVALID",
        "MLO_ERR_ALREADY_EXISTS", "MLO_ERR_NOT_FOUND", "MLO_ERR_PERMISSION",
        "MLO_ERR_RATE_LIMITED", "MLO_ERR_SERVER", "MLO_ERR_PROTOCOL", "MLO_ERR_CONFIG",
        "MLO_ERR_NOT_SUPPORTED", "MLO_ERR_INTERNAL", "MLO_WARN_TRUNCATED", "MLO_WARN_RETRY",
        "MLO_ERR_STORE", "MLO_ERR_IO", "MLO_ERR_INVALID_PATH", "MLO_ERR_ARTIFACTS_NOT_PROXIED"};
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
            snprintf(note, sizeof note, "%s%s%s", finding ? "**" : "", r->note, finding ? "**" : "");
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
    long code = 0;
    char *body = testsrv_get(srv, "/_test/dump", &code);
    assert_non_null(body);
    assert_int_equal(code, 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    return j;
}

static json_t *find_run(json_t *d, const char *run_id) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        const char *id = json_string_value(json_object_get(json_object_get(r, "info"), "run_id"));
        if (id && !strcmp(id, run_id))
            return r;
    }
    fail_msg("run %s not stored", run_id);
    return NULL;
}

static size_t count_metric(json_t *run, const char *key) {
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        if (!strcmp(json_string_value(json_object_get(m, "key")), key))
            n++;
    }
    return n;
}

static json_t *metric(json_t *run, const char *key, int64_t step) {
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        if (!strcmp(json_string_value(json_object_get(m, "key")), key) &&
            json_integer_value(json_object_get(m, "step")) == step)
            return m;
    }
    fail_msg("metric %s step %lld not stored", key, (long long)step);
    return NULL;
}

static const char *param(json_t *run, const char *kind, const char *key) {
    const char *v = json_string_value(json_object_get(json_object_get(run, kind), key));
    if (!v)
        fail_msg("%s %s not stored", kind, key);
    return v;
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
               !ok || st == r->accepted[0]          ? ""
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
    assert_int_equal(failed, 2); /* param_conflict and params_dup, on purpose */
    assert_int_equal(acc, sent + failed);
    assert_true(rejected > 0);
    assert_true(cb_calls > 0);
    assert_int_equal(cb_null_messages, 0);

    json_t *d = dump();
    json_t *run = find_run(d, mlo_run_id(R));
    assert_string_equal(json_string_value(json_object_get(json_object_get(run, "info"), "status")),
                        "FINISHED");
    /* every good point, once */
    assert_int_equal(count_metric(run, "good"), 2 * NROWS);
    for (size_t i = 0; i < 2 * NROWS; i++)
        metric(run, "good", (int64_t)i);
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
    assert_int_equal(count_metric(run, K250), 1);
    assert_int_equal(count_metric(run, "ok.größe/温度"), 1);
    assert_string_equal(json_string_value(json_object_get(metric(run, "ok.nan", 0), "value")), "NaN");
    double inf = json_number_value(json_object_get(metric(run, "ok.inf", 0), "value"));
    if (json_is_string(json_object_get(metric(run, "ok.inf", 0), "value")))
        inf = INFINITY;
    assert_true(inf >= DBL_MAX);
    double ninf = json_number_value(json_object_get(metric(run, "ok.ninf", 0), "value"));
    if (json_is_string(json_object_get(metric(run, "ok.ninf", 0), "value")))
        ninf = -INFINITY;
    assert_true(ninf <= -DBL_MAX);
    assert_true(json_number_value(json_object_get(metric(run, "ok.max", 0), "value")) == DBL_MAX);
    assert_true(json_number_value(json_object_get(metric(run, "ok.min", 0), "value")) == 5e-324);
    assert_true(json_number_value(json_object_get(metric(run, "ok.negzero", 0), "value")) == 0);
    metric(run, "ok.step", -1);
    metric(run, "ok.step", INT64_MIN);
    metric(run, "ok.step", INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(metric(run, "ok.ts", 0), "timestamp")), 0);
    assert_int_equal(json_integer_value(json_object_get(metric(run, "ok.ts", 1), "timestamp")),
                     INT64_MAX);
    static const char *const landed[] = {"ok.b0", "ok.b2", "ok.c0", "ok.c2", "ok.u0",
                                         "ok.u2", "ok.t0", "ok.t2"};
    for (size_t j = 0; j < sizeof landed / sizeof landed[0]; j++)
        assert_int_equal(count_metric(run, landed[j]), 1);
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
    assert_true(count_metric(run, "ok.hist.count") >= 1);

    /* the other client's run: ended twice, the last status wins */
    json_t *run2 = find_run(d, mlo_run_id(R2));
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

static int setup(void **state) {
    (void)state;
    C = open_client();
    C2 = open_client();
    assert_int_equal(mlo_start_run(C, "hostile", "hostile-input", NULL, &R), MLO_OK);
    assert_int_equal(mlo_start_run(C2, "hostile", "other-client", NULL, &R2), MLO_OK);
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
    return 0;
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
    if (argc > 1 && !strcmp(argv[1], "--markdown")) {
        print_markdown();
        return 0;
    }
    /* a store of our own (the durable run log), and no tracking settings from outside */
    snprintf(store_dir, sizeof store_dir, "%s/mlo-hostile-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(store_dir));
    setenv("MLO_STORE_DIR", store_dir, 1);
    snprintf(store_file, sizeof store_file, "%s/a-file", store_dir);
    snprintf(store_under_file, sizeof store_under_file, "%s/sub", store_file);
    FILE *f = fopen(store_file, "w");
    assert_non_null(f);
    fclose(f);
    static const char *const clear[] = {
        "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
        "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER"};
    for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++)
        unsetenv(clear[i]);

    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_row, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    testsrv_stop(srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", store_dir);
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
    return rc;
}
