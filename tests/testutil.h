/* testutil: what the integration tests share (issue 12, item 6), through the
 * public API only: a private scratch directory per process (and a private
 * default store in it, so no test ever touches ./mlo-store), clients opened
 * on a temporary store, the error callback's messages captured, the test
 * server's dump read and searched, waits on a condition with a deadline.
 *
 * Design: every helper that can fail fails the current cmocka test (assert_*,
 * fail_msg), except those documented to return a value to test.  Threads:
 * tu_errors_* may be called from any thread (the library reports from its
 * own); everything else from the test's thread.  json_t results are new
 * references (json_decref them) unless the comment says "borrowed".
 */
#ifndef MLO_TESTUTIL_H
#define MLO_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>

#include "mlo.h"
#include "testsrv.h"

/* ---- process set-up ------------------------------------------------------------------- */

/* Call first in main (also in re-executed children, who get their own): makes
 * this process's scratch directory ($TMPDIR or /tmp, "mlo-<name>-XXXXXX"),
 * points MLO_STORE_DIR at a store inside it (so a client opened without a
 * store directory never shares one with another test running at the same
 * time), unsets the MLFLOW_* and MLO_* variables a caller's environment could
 * leak into the tests, and removes the directory (and the /dev/shm queue
 * files its stores link to) when the process that made it exits. */
void tu_init(const char *name);

/* The scratch directory of tu_init (borrowed). */
const char *tu_scratch(void);

/* Runs the cmocka group (no group set-up), or the part of it that argv asks
 * for, so that meson can run a long group as several tests in parallel:
 *   --shard K/N    the cases whose index i has i % N == K (every case is in
 *                  exactly one of the N shards, whatever is added later);
 *   --case P[,P]   the cases whose name matches one of the fnmatch patterns
 *                  and none of those written "!P".
 * Other arguments are left to the caller.  Returns cmocka's result; a
 * selection that matches no case is an error (a typo in meson.build). */
int tu_run_group(const char *name, const struct CMUnitTest *tests, size_t n, int argc, char **argv);

/* ---- files ------------------------------------------------------------------------------ */

/* A fresh empty directory below the scratch directory ("<tag>-<n>"), malloc'd. */
char *tu_tmpdir(const char *tag);
/* "<a>/<b>", malloc'd. */
char *tu_join(const char *a, const char *b);
/* A path below the scratch directory that does not exist yet ("<tag>-<n>"), e.g.
 * a store directory the library creates itself (with its own modes); malloc'd. */
char *tu_new_path(const char *tag);
/* Removes path and everything below it (made writable first), and the
 * /dev/shm files that stores' rings/ below it link to.  Missing is fine. */
void tu_rm_rf(const char *path);
/* Writes len bytes to path (created or truncated, mode 0644). */
void tu_write_file(const char *path, const void *data, size_t len);
/* The whole file, malloc'd with a NUL after it (*len may be NULL); NULL if it
 * cannot be read. */
unsigned char *tu_read_file(const char *path, size_t *len);

/* ---- the error callback ------------------------------------------------------------------- */

#define TU_ERRORS_MAX 256

typedef struct tu_errors {
    pthread_mutex_t lock;
    int n;             /* messages received (may exceed TU_ERRORS_MAX) */
    int by_status[64]; /* messages per status */
    int statuses[TU_ERRORS_MAX];
    char messages[TU_ERRORS_MAX][512];
    int verbose; /* print each message on stderr ($MLO_TEST_VERBOSE set) */
} tu_errors;

/* Empties e (also to start counting again); verbose when $MLO_TEST_VERBOSE is set. */
void tu_errors_init(tu_errors *e);
/* The mlo_error_fn: user_data is a tu_errors. */
void tu_errors_cb(void *user, mlo_status st, const char *msg);
/* Messages with status st (any when st < 0) that contain needle (any when NULL). */
int tu_errors_count(tu_errors *e, int st, const char *needle);
/* The same, with two needles that must both be in one message. */
int tu_errors_count2(tu_errors *e, int st, const char *n1, const char *n2);
/* All messages received. */
int tu_errors_total(tu_errors *e);
/* The first message (into out; "" if none) and its status (-1 if none). */
int tu_errors_first(tu_errors *e, char *out, size_t cap);
/* Prints every message kept, prefixed by what. */
void tu_errors_print(tu_errors *e, const char *what);

/* ---- clients -------------------------------------------------------------------------------- */

/* Fast retries: 3 attempts more, backoff 0.05 s, jitter 0.01 s, 10 s per request. */
#define TU_FAST_RETRIES 3, 0.05, 0.01, 10

typedef struct tu_client_cfg {
    const char *uri;   /* tracking URI; NULL: none (the local store) */
    const char *store; /* store directory; NULL: a fresh one below the scratch dir */
    int memory_only;   /* mlo_options_set_durable(0) */
    /* mlo_options_set_retries; all zero: TU_FAST_RETRIES; retries < 0 with the
     * others zero: leave the environment's or the library's defaults */
    int retries;
    double backoff_s, jitter_s, timeout_s;
    unsigned close_ms;  /* 0: the default */
    unsigned flush_ms;  /* mlo_options_set_flush_interval_ms; 0: the default */
    unsigned inflight;  /* mlo_options_set_max_inflight; 0: the default */
    size_t queue_bytes; /* 0: the default */
    const char *token;  /* mlo_options_set_token */
    tu_errors *errors;  /* initialised and set as the error callback */
} tu_client_cfg;

/* Opens a client as cfg says (asserting every option and the open succeed). */
mlo_client_t *tu_open(const tu_client_cfg *cfg);
/* A client on uri with fast retries, a fresh store, errors captured (may be NULL). */
mlo_client_t *tu_open_uri(const char *uri, tu_errors *errors);

/* One counter (asserting mlo_client_stat succeeds). */
uint64_t tu_stat(const mlo_client_t *c, mlo_stat which);
/* ACCEPTED == accepted, FAILED == failed, SENT == accepted - failed, DROPPED == 0. */
void tu_expect_counts(const mlo_client_t *c, uint64_t accepted, uint64_t failed);

/* ---- the test server -------------------------------------------------------------------- */

/* POST /_test/reset, /_test/faults/clear and /_test/requests/clear. */
void tu_reset(const testsrv *s);
/* POST /_test/faults/clear. */
void tu_faults_clear(const testsrv *s);
/* POST /_test/faults rule(s) (asserting the server took them). */
void tu_fault(const testsrv *s, const char *json);
/* POST /_test/config (asserting the server took it). */
void tu_config(const testsrv *s, const char *json);
/* GET path: 200 and JSON (NUL allowed in strings) or the test fails. */
json_t *tu_get_json(const testsrv *s, const char *path);
/* GET /_test/dump. */
json_t *tu_dump(const testsrv *s);
/* GET /_test/requests (the request log, an array). */
json_t *tu_requests(const testsrv *s);
/* Requests of the log whose method is method (any when NULL) and whose path
 * starts with part (when part starts with '/') or contains it (otherwise);
 * *with_auth (may be NULL) gets those that carried an Authorization. */
int tu_count_requests(const testsrv *s, const char *method, const char *part, int *with_auth);
/* Points of key in run_id's history (metrics/get-history). */
size_t tu_history_len(const testsrv *s, const char *run_id, const char *key);

/* ---- reading a dump (borrowed results) --------------------------------------------------------
 */

/* The string at o[k]; NULL when absent or not a string. */
const char *tu_str(json_t *o, const char *k);
/* A number as the server writes it ("NaN", "Infinity", "-Infinity" too). */
double tu_num(json_t *v);
/* The run of the dump with this run id; the test fails without one. */
json_t *tu_find_run(json_t *dump, const char *run_id);
/* The one run whose tag key is value (NULL: fails when there is not exactly one). */
json_t *tu_run_by_tag(json_t *dump, const char *key, const char *value);
/* How many runs have tag key = value; *last (may be NULL) gets the last one. */
int tu_runs_with_tag(json_t *dump, const char *key, const char *value, json_t **last);
/* Number of runs in the dump. */
size_t tu_nruns(json_t *dump);
/* Points of metric key in the run. */
size_t tu_count_metric(json_t *run, const char *key);
/* The point of key at step, or NULL. */
json_t *tu_metric_at(json_t *run, const char *key, int64_t step);
/* The same, failing the test when it is not there. */
json_t *tu_metric(json_t *run, const char *key, int64_t step);

/* ---- time ---------------------------------------------------------------------------------- */

/* Monotonic seconds. */
double tu_now(void);
/* Wall clock, ms since the epoch. */
int64_t tu_wall_ms(void);
void tu_sleep_ms(long ms);

/* Polls cond (an expression evaluated again each round, ~5 ms apart) until it
 * holds or timeout_ms passed.  Check cond (or what it computed) afterwards. */
#define TU_WAIT_UNTIL(cond, timeout_ms)                                                            \
    do {                                                                                           \
        double tu_deadline_ = tu_now() + (double)(timeout_ms) / 1000.0;                            \
        while (!(cond) && tu_now() < tu_deadline_)                                                 \
            tu_sleep_ms(5);                                                                        \
    } while (0)

/* ---- sanitizers ---------------------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#else
#define TU_SANITIZED 0
#endif

#endif
