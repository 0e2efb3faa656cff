/*
 * test_sender.c - the sender's rules, in process: the sender core
 * (src/send/mlo_sender.c) with its requests, retries and in-flight pool,
 * over the fake transport and the virtual clock (mlo_fake_transport.h).  No
 * socket, no server process, no real waiting: backoff and Retry-After are
 * checked by how much virtual time they slept.
 *
 * Checked: batches within MLflow's limits (1000 metrics, 100 params, 100
 * tags, 1000 entries, ~900 KB, a param/tag key once per batch); a refused
 * batch split until the bad entry stands alone; the order of one run (end
 * after its data, datasets between their neighbours, tags last-write-wins);
 * retries of 5xx/429/HTML/transport failures with MLflow's backoff and
 * Retry-After (seconds and HTTP dates); what an outbox keeps and what
 * memory-only sending counts as failed; the close deadline; runs/create
 * whose answer was lost (found by its tag, never created twice); requests
 * in flight (runs overlap, one run's requests never do); experiments
 * created once.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlo.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_fake_transport.h"
#include "mlo_log.h"
#include "mlo_payload.h"
#include "mlo_sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCAL_ID_TAG "mlo.local_id"

/* ---- a sender over the fake server ------------------------------------------ */

typedef struct fx {
    fake_clock fc;
    fake_server *fs;
    mlo_config cfg;
    mlo_env env;
    mlo_sender *s;
    char errors[64][512]; /* what the error callback said */
    int errs[64];
    int nerr;
    int keep;
} fx;

static void on_error(void *user, mlo_status st, const char *msg) {
    fx *f = user;
    if (f->nerr < 64) {
        f->errs[f->nerr] = st;
        snprintf(f->errors[f->nerr++], sizeof f->errors[0], "%s", msg);
    }
}

static fx *fx_new(int keep, int inflight) {
    fx *f = calloc(1, sizeof *f);
    fake_clock_init(&f->fc);
    f->fs = fake_server_new(&f->fc);
    f->cfg.tracking_uri = (char *)"http://mlflow.test:5000";
    f->cfg.max_retries = 5;
    f->cfg.backoff_factor_s = 2;
    f->cfg.jitter_s = 0;
    f->cfg.timeout_s = 120;
    f->cfg.respect_retry_after = 1;
    f->cfg.max_inflight = inflight;
    f->cfg.error_fn = on_error;
    f->cfg.error_user = f;
    f->cfg.new_transport = fake_transport_new;
    f->cfg.transport_user = f->fs;
    f->cfg.clock = &f->fc.clock;
    f->keep = keep;
    mlo__env_init(&f->env, &f->cfg);
    return f;
}

/* The sender, made at first use: a test may change f->cfg before (the HTTP
 * layer reads its retry settings when it is made). */
static mlo_sender *S(fx *f) {
    if (!f->s) {
        f->s = mlo__sender_new(&f->env, NULL, f->keep, NULL);
        assert_non_null(f->s);
    }
    return f->s;
}

static void fx_free(fx *f) {
    mlo__sender_free(f->s);
    fake_server_free(f->fs);
    free(f);
}

static uint64_t stat_of(fx *f, mlo_stat k) {
    return mlo__env_stat_get(&f->env, k);
}

static int64_t slept_ms(fx *f) {
    return atomic_load(&f->fc.slept_ns) / 1000000;
}

static int said(fx *f, const char *needle) {
    for (int i = 0; i < f->nerr; i++)
        if (strstr(f->errors[i], needle))
            return 1;
    return 0;
}

static void start(fx *f, const char *lid, const char *exp) {
    mlo_startrun sr = {.exp_name = exp, .run_name = lid};
    mlo_buf b = {0};
    assert_int_equal(mlo__payload_startrun_encode(&b, &sr), 0);
    assert_int_equal(mlo__sender_add(S(f), MLO_EV_START_RUN, lid, NULL, 0, b.data, b.len, 0,
                                     1780000000000LL, 0, 0),
                     0);
    mlo__buf_free(&b);
}

static void metric(fx *f, const char *lid, const char *key, double v, int64_t step) {
    assert_int_equal(mlo__sender_add(S(f), MLO_REC_METRIC, lid, key, strlen(key), "", 0, v,
                                     1780000000000LL + step, step, 0),
                     0);
}

static void keyval(fx *f, int type, const char *lid, const char *key, const char *v) {
    assert_int_equal(mlo__sender_add(S(f), type, lid, key, strlen(key), v, strlen(v), 0, 0, 0, 0),
                     0);
}

static void end(fx *f, const char *lid) {
    assert_int_equal(mlo__sender_add(S(f), MLO_REC_END_RUN, lid, "", 0, "", 0, MLO_RUN_FINISHED,
                                     1780000009000LL, 0, 0),
                     0);
}

static void dataset(fx *f, const char *lid, const char *name) {
    mlo_dataset_payload ds = {"{\"uri\": \"/d\"}", "0123abcd", "local", ""};
    mlo_buf b = {0};
    assert_int_equal(mlo__payload_dataset_encode(&b, &ds), 0);
    assert_int_equal(mlo__sender_add(S(f), MLO_REC_DATASET, lid, name, strlen(name), b.data, b.len,
                                     0, 1780000000000LL, 0, 0),
                     0);
    mlo__buf_free(&b);
}

/* The server id of the run with local id lid. */
static const char *sid_of(fx *f, const char *lid) {
    const char *sid = fake_run_by_tag(f->fs, LOCAL_ID_TAG, lid);
    assert_non_null(sid);
    return sid;
}

/* Index of the first / last request whose path ends with suffix (and whose
 * run_id is sid, when given); -1 if none. */
static long req_index(fx *f, const char *suffix, const char *sid, int last) {
    long found = -1;
    for (size_t i = 0; i < fake_nreq(f->fs); i++) {
        const fake_req *q = fake_req_at(f->fs, i);
        size_t a = strlen(q->path), b = strlen(suffix);
        if (a < b || strcmp(q->path + a - b, suffix))
            continue;
        const char *rid = q->json ? json_string_value(json_object_get(q->json, "run_id")) : NULL;
        if (sid && (!rid || strcmp(rid, sid)))
            continue;
        found = (long)i;
        if (!last)
            break;
    }
    return found;
}

static void fault(fx *f, const char *path, int times, int status, const char *retry_after,
                  const char *body) {
    fake_fault ff = {.times = times, .status = status, .retry_after = retry_after, .body = body};
    snprintf(ff.path, sizeof ff.path, "%s", path);
    fake_fault_add(f->fs, &ff);
}

static void fault_wire(fx *f, const char *path, int times, int outcome, int executed) {
    fake_fault ff = {.times = times, .outcome = outcome, .executed = executed};
    snprintf(ff.path, sizeof ff.path, "%s", path);
    fake_fault_add(f->fs, &ff);
}

/* ---- batching ------------------------------------------------------------------ */

static void test_batches_within_limits(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    char k[32], v[32];
    for (int i = 0; i < 2500; i++)
        metric(f, "run1", "loss", i * 0.5, i);
    for (int i = 0; i < 150; i++) {
        snprintf(k, sizeof k, "p%d", i);
        snprintf(v, sizeof v, "v%d", i);
        keyval(f, MLO_REC_PARAM, "run1", k, v);
        snprintf(k, sizeof k, "t%d", i);
        keyval(f, MLO_REC_TAG, "run1", k, v);
    }
    end(f, "run1");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    const char *sid = sid_of(f, "run1");
    size_t batches = 0;
    for (size_t i = 0; i < fake_nreq(f->fs); i++) {
        const fake_req *q = fake_req_at(f->fs, i);
        if (!strstr(q->path, "log-batch"))
            continue;
        batches++;
        size_t m = json_array_size(json_object_get(q->json, "metrics"));
        size_t p = json_array_size(json_object_get(q->json, "params"));
        size_t t = json_array_size(json_object_get(q->json, "tags"));
        assert_true(m <= 1000 && p <= 100 && t <= 100 && m + p + t <= 1000);
        assert_true(strlen(q->body) < 1000000);
        assert_int_equal(q->status, 200);
    }
    assert_true(batches >= 3);
    assert_int_equal(fake_metric_points(f->fs, sid, "loss"), 2500);
    assert_string_equal(fake_param(f->fs, sid, "p149"), "v149");
    assert_string_equal(fake_tag(f->fs, sid, "t0"), "v0");
    assert_string_equal(fake_status(f->fs, sid), "FINISHED");
    /* the end comes after the run's last batch */
    assert_true(req_index(f, "runs/update", sid, 0) > req_index(f, "runs/log-batch", sid, 1));
    assert_int_equal(stat_of(f, MLO_STAT_SENT), 2500 + 300 + 1);
    assert_int_equal(stat_of(f, MLO_STAT_FAILED), 0);
    fx_free(f);
}

/* A param or tag key twice in one stage: two batches (MLflow refuses a key
 * twice in one), and the tag's last value wins. */
static void test_same_key_twice(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    keyval(f, MLO_REC_PARAM, "run1", "lr", "0.1");
    keyval(f, MLO_REC_TAG, "run1", "phase", "warmup");
    keyval(f, MLO_REC_PARAM, "run1", "lr", "0.1");
    keyval(f, MLO_REC_TAG, "run1", "phase", "train");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    const char *sid = sid_of(f, "run1");
    assert_int_equal(fake_count(f->fs, "runs/log-batch"), 2);
    assert_string_equal(fake_tag(f->fs, sid, "phase"), "train");
    assert_string_equal(fake_param(f->fs, sid, "lr"), "0.1");
    assert_int_equal(stat_of(f, MLO_STAT_FAILED), 0);
    fx_free(f);
}

/* Big values: batches stay under ~900 KB. */
static void test_bytes_limit(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    char *big = malloc(8001);
    memset(big, 'x', 8000);
    big[8000] = 0;
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "note%d", i);
        keyval(f, MLO_REC_TAG, "run1", k, big);
        snprintf(k, sizeof k, "hyper%d", i);
        keyval(f, MLO_REC_PARAM, "run1", k, big);
    }
    free(big);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    for (size_t i = 0; i < fake_nreq(f->fs); i++) {
        const fake_req *q = fake_req_at(f->fs, i);
        if (strstr(q->path, "log-batch"))
            assert_true(strlen(q->body) <= 1000000);
    }
    assert_true(fake_count(f->fs, "runs/log-batch") >= 2);
    assert_non_null(fake_tag(f->fs, sid_of(f, "run1"), "note99"));
    assert_non_null(fake_param(f->fs, sid_of(f, "run1"), "hyper99"));
    fx_free(f);
}

/* A batch the server refuses stores nothing: it is split until the bad
 * entry stands alone; everything else is delivered. */
static void test_refused_entry_isolated(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    fake_refuse_param(f->fs, "bad");
    start(f, "run1", "exp");
    char k[32];
    for (int i = 0; i < 99; i++) {
        snprintf(k, sizeof k, "p%02d", i);
        keyval(f, MLO_REC_PARAM, "run1", k, "1");
        if (i == 50)
            keyval(f, MLO_REC_PARAM, "run1", "bad", "1");
    }
    for (int i = 0; i < 10; i++)
        metric(f, "run1", "m", i, i);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    const char *sid = sid_of(f, "run1");
    assert_int_equal(stat_of(f, MLO_STAT_FAILED), 1);
    assert_int_equal(stat_of(f, MLO_STAT_SENT), 99 + 10);
    assert_null(fake_param(f->fs, sid, "bad"));
    assert_string_equal(fake_param(f->fs, sid, "p98"), "1");
    assert_int_equal(fake_metric_points(f->fs, sid, "m"), 10);
    assert_true(said(f, "\"bad\" refused"));
    /* halving: about 2 log2(n) requests, not n */
    assert_true(fake_count(f->fs, "runs/log-batch") <= 16);
    fx_free(f);
}

/* ---- order ------------------------------------------------------------------------ */

static void test_dataset_between_metrics(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    metric(f, "run1", "before", 1, 0);
    dataset(f, "run1", "train");
    metric(f, "run1", "after", 2, 0);
    end(f, "run1");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    const char *sid = sid_of(f, "run1");
    long in = req_index(f, "runs/log-inputs", sid, 0);
    assert_true(req_index(f, "runs/log-batch", sid, 0) < in);
    assert_true(req_index(f, "runs/log-batch", sid, 1) > in);
    assert_true(req_index(f, "runs/update", sid, 0) > req_index(f, "runs/log-batch", sid, 1));
    assert_int_equal(fake_inputs(f->fs, sid), 1);
    fx_free(f);
}

/* Experiments: found or created once, then remembered. */
static void test_experiment_once(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "grid");
    start(f, "run2", "grid");
    start(f, "run3", "Default");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(fake_count(f->fs, "experiments/create"), 1);
    assert_int_equal(fake_count(f->fs, "experiments/get-by-name"), 2); /* grid, Default */
    assert_int_equal(fake_runs(f->fs), 3);
    fx_free(f);
}

/* ---- retries ------------------------------------------------------------------------ */

/* 503 twice: the request is retried after factor * 2^(n-1) s each time
 * (2 s, 4 s: jitter 0), delivered once. */
static void test_retry_backoff(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    metric(f, "run1", "m", 1, 0);
    fault(f, "runs/log-batch", 2, 503, NULL, NULL);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(fake_metric_points(f->fs, sid_of(f, "run1"), "m"), 1);
    assert_int_equal(stat_of(f, MLO_STAT_RETRIED), 2);
    assert_int_equal(slept_ms(f), 2000 + 4000);
    assert_true(said(f, "retry 1 of 5"));
    fx_free(f);
}

/* Jitter adds at most jitter_s per retry. */
static void test_retry_jitter(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    f->cfg.jitter_s = 1.0;
    start(f, "run1", "exp");
    metric(f, "run1", "m", 1, 0);
    fault(f, "runs/log-batch", 3, 500, NULL, NULL);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    int64_t ms = slept_ms(f);
    assert_true(ms >= 2000 + 4000 + 8000 && ms < 2000 + 4000 + 8000 + 3000);
    fx_free(f);
}

/* 429 with Retry-After: the server's wait, not the backoff; ignored when
 * MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER is false. */
static void test_retry_after(void **state) {
    (void)state;
    for (int respect = 0; respect < 2; respect++) {
        fx *f = fx_new(1, 1);
        f->cfg.respect_retry_after = respect;
        start(f, "run1", "exp");
        metric(f, "run1", "m", 1, 0);
        fault(f, "runs/log-batch", 1, 429, "7",
              "{\"error_code\": \"REQUEST_LIMIT_EXCEEDED\", \"message\": \"slow down\"}");
        assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
        assert_int_equal(slept_ms(f), respect ? 7000 : 2000);
        assert_int_equal(fake_metric_points(f->fs, sid_of(f, "run1"), "m"), 1);
        fx_free(f);
    }
}

/* Retry-After as an HTTP date, 9 s after the (virtual) now. */
static void test_retry_after_date(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    metric(f, "run1", "m", 1, 0);
    /* the fake clock's wall time is 1780000000 s + its monotonic seconds */
    time_t when = (time_t)(1780000000LL + atomic_load(&f->fc.mono_ns) / MLO_NS_PER_S + 9);
    struct tm tm;
    gmtime_r(&when, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    fault(f, "runs/log-batch", 1, 503, date, NULL);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_true(slept_ms(f) >= 8000 && slept_ms(f) <= 10000);
    fx_free(f);
}

/* A proxy's HTML 502, a reset connection, a timeout: retried. */
static void test_retry_html_and_wire(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    metric(f, "run1", "m", 1, 0);
    fault(f, "runs/log-batch", 1, 502, NULL, "<html><body>Bad Gateway</body></html>");
    fault_wire(f, "runs/log-batch", 1, MLO_XF_LOST, 0);
    fault_wire(f, "runs/log-batch", 1, MLO_XF_TIMEOUT, 0);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(fake_metric_points(f->fs, sid_of(f, "run1"), "m"), 1);
    assert_int_equal(stat_of(f, MLO_STAT_RETRIED), 3);
    fx_free(f);
}

/* An outbox keeps what a failing server does not take: nothing counted, the
 * stage is sent again later, and resending creates nothing twice. */
static void test_outbox_keeps(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    f->cfg.max_retries = 2;
    fault(f, "runs/log-batch", 3, 503, NULL, NULL);
    for (int pass = 0; pass < 2; pass++) {
        start(f, "run1", "exp");
        metric(f, "run1", "m", 1, 0);
        metric(f, "run1", "m", 2, 1);
        end(f, "run1");
        int st = mlo__sender_process(S(f));
        if (pass == 0) {
            assert_int_equal(st, MLO_ERR_SERVER);
            assert_int_equal(stat_of(f, MLO_STAT_SENT), 0);
            assert_int_equal(stat_of(f, MLO_STAT_FAILED), 0);
        } else {
            assert_int_equal(st, MLO_OK);
        }
    }
    const char *sid = sid_of(f, "run1");
    assert_int_equal(fake_runs_with_tag(f->fs, LOCAL_ID_TAG, "run1"), 1);
    assert_int_equal(fake_metric_points(f->fs, sid, "m"), 2);
    assert_string_equal(fake_status(f->fs, sid), "FINISHED");
    assert_int_equal(stat_of(f, MLO_STAT_SENT), 3);
    fx_free(f);
}

/* 401/403 and an unreadable 200 are transient for an outbox too. */
static void test_outbox_transient_kinds(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    start(f, "run1", "exp");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    const char *kinds[][2] = {
        {"403", "{\"error_code\": \"PERMISSION_DENIED\", \"message\": \"no\"}"},
        {"200", "garbage"}};
    int want[] = {MLO_ERR_PERMISSION, MLO_ERR_PROTOCOL};
    for (int i = 0; i < 2; i++) {
        fault(f, "runs/log-batch", 1, atoi(kinds[i][0]), NULL, kinds[i][1]);
        metric(f, "run1", "m", i, i);
        assert_int_equal(mlo__sender_process(S(f)), want[i]);
        assert_int_equal(stat_of(f, MLO_STAT_FAILED), 0);
        metric(f, "run1", "m", i, i);
        assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    }
    assert_int_equal(fake_metric_points(f->fs, sid_of(f, "run1"), "m"), 2);
    fx_free(f);
}

/* Without an outbox (memory only) events that cannot be sent count as
 * failed, and the call does not fail. */
static void test_memory_counts_failed(void **state) {
    (void)state;
    fx *f = fx_new(0, 1);
    f->cfg.max_retries = 1;
    start(f, "run1", "exp");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    fault(f, "runs/log-batch", 10, 503, NULL, NULL);
    for (int i = 0; i < 5; i++)
        metric(f, "run1", "m", i, i);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(stat_of(f, MLO_STAT_FAILED), 5);
    assert_int_equal(stat_of(f, MLO_STAT_SENT), 0);
    fx_free(f);
}

/* The close deadline ends retrying: nothing waits past it. */
static void test_deadline_ends_retries(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    f->cfg.max_retries = 10;
    start(f, "run1", "exp");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    fault(f, "runs/log-batch", 100, 503, NULL, NULL);
    mlo__env_set_abort_at(&f->env, mlo__env_mono(&f->env) + 5 * MLO_NS_PER_S);
    metric(f, "run1", "m", 1, 0);
    assert_int_equal(mlo__sender_process(S(f)), MLO_ERR_TIMEOUT);
    assert_true(slept_ms(f) <= 5000);
    fx_free(f);
}

/* ---- runs/create -------------------------------------------------------------------- */

/* The answer to runs/create is lost after the server created the run: the
 * sender finds it by its mlo.local_id tag and does not create it again. */
static void test_create_answer_lost(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    fault_wire(f, "runs/create", 1, MLO_XF_LOST, 1);
    start(f, "run1", "exp");
    metric(f, "run1", "m", 1, 0);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(fake_runs(f->fs), 1);
    assert_int_equal(fake_count(f->fs, "runs/create"), 1);
    assert_int_equal(fake_metric_points(f->fs, sid_of(f, "run1"), "m"), 1);
    assert_true(said(f, "looking for it by its mlo.local_id tag"));
    fx_free(f);
}

/* Lost before the server saw it: found nowhere, created (once) again. */
static void test_create_lost_before(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    fault_wire(f, "runs/create", 1, MLO_XF_TIMEOUT, 0);
    start(f, "run1", "exp");
    metric(f, "run1", "m", 1, 0);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(fake_runs(f->fs), 1);
    assert_int_equal(fake_count(f->fs, "runs/create"), 2);
    fx_free(f);
}

/* Refused connections are retried like any request (nothing was sent). */
static void test_create_connect_retried(void **state) {
    (void)state;
    fx *f = fx_new(1, 1);
    fault_wire(f, "runs/create", 2, MLO_XF_CONNECT, 0);
    start(f, "run1", "exp");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_int_equal(fake_runs(f->fs), 1);
    assert_int_equal(slept_ms(f), 2000 + 4000);
    fx_free(f);
}

/* ---- requests in flight --------------------------------------------------------------- */

/* Four runs, four workers: requests of different runs overlap, and so do
 * one run's metrics batches (metrics are order-free on the server); each
 * run ends after all its data. */
static void test_inflight_runs_overlap(void **state) {
    (void)state;
    fx *f = fx_new(1, 4);
    fake_delay(f->fs, "runs/log-batch", 15);
    const char *lids[4] = {"runA", "runB", "runC", "runD"};
    for (int r = 0; r < 4; r++)
        start(f, lids[r], "exp");
    for (int i = 0; i < 2500; i++)
        for (int r = 0; r < 4; r++)
            metric(f, lids[r], "m", i, i);
    for (int r = 0; r < 4; r++)
        end(f, lids[r]);
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    assert_true(fake_max_inflight(f->fs, "runs/log-batch", NULL) > 1);
    for (int r = 0; r < 4; r++) {
        const char *sid = sid_of(f, lids[r]);
        assert_int_equal(fake_metric_points(f->fs, sid, "m"), 2500);
        assert_true(req_index(f, "runs/update", sid, 0) > req_index(f, "runs/log-batch", sid, 1));
        assert_string_equal(fake_status(f->fs, sid), "FINISHED");
    }
    assert_int_equal(stat_of(f, MLO_STAT_SENT), 4 * 2501);
    fx_free(f);
}

/* One run alone fills every worker with its metrics batches; its params and
 * tags batches never overlap each other (a tag's last value wins). */
static void test_inflight_one_run(void **state) {
    (void)state;
    fx *f = fx_new(1, 4);
    /* long enough that workers started on a loaded machine still meet */
    fake_delay(f->fs, "runs/log-batch", 50);
    start(f, "run1", "exp");
    char k[32], v[32];
    for (int i = 0; i < 8000; i++)
        metric(f, "run1", "m", i, i);
    for (int i = 0; i < 400; i++) {
        snprintf(k, sizeof k, "t%d", i % 150);
        snprintf(v, sizeof v, "v%d", i);
        keyval(f, MLO_REC_TAG, "run1", k, v);
    }
    end(f, "run1");
    assert_int_equal(mlo__sender_process(S(f)), MLO_OK);
    const char *sid = sid_of(f, "run1");
    assert_true(fake_max_inflight(f->fs, "runs/log-batch", sid) >= 3);
    assert_int_equal(fake_metric_points(f->fs, sid, "m"), 8000);
    /* the last value of every tag is the last one logged */
    for (int t = 0; t < 150; t++) {
        int last = -1;
        for (int i = 0; i < 400; i++)
            if (i % 150 == t)
                last = i;
        snprintf(k, sizeof k, "t%d", t);
        snprintf(v, sizeof v, "v%d", last);
        assert_string_equal(fake_tag(f->fs, sid, k), v);
    }
    /* batches holding tags never overlapped */
    assert_true(fake_count(f->fs, "runs/log-batch") >= 8 + 4);
    assert_int_equal(fake_max_inflight(f->fs, "runs/log-batch#kv", sid), 1);
    assert_true(req_index(f, "runs/update", sid, 0) > req_index(f, "runs/log-batch", sid, 1));
    fx_free(f);
}

/* Synchronous use: a request that fails transiently in flight ends the
 * call; what it staged is sent again whole, nothing lost or doubled. */
static void test_inflight_failure_resends(void **state) {
    (void)state;
    fx *f = fx_new(1, 3);
    f->cfg.max_retries = 0;
    const char *lids[3] = {"r1", "r2", "r3"};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            fault(f, "runs/log-batch", 1, 503, NULL, NULL);
        for (int r = 0; r < 3; r++)
            start(f, lids[r], "exp");
        for (int i = 0; i < 1500; i++)
            for (int r = 0; r < 3; r++)
                metric(f, lids[r], "m", i, i);
        int st = mlo__sender_process(S(f));
        assert_int_equal(st, pass == 0 ? MLO_ERR_SERVER : MLO_OK);
    }
    for (int r = 0; r < 3; r++)
        assert_int_equal(fake_metric_points(f->fs, sid_of(f, lids[r]), "m"), 1500);
    assert_int_equal(fake_runs(f->fs), 3);
    /* counted as delivered: what the first pass delivered may count twice */
    assert_true(stat_of(f, MLO_STAT_SENT) >= 3 * 1500);
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_within_limits),
        cmocka_unit_test(test_same_key_twice),
        cmocka_unit_test(test_bytes_limit),
        cmocka_unit_test(test_refused_entry_isolated),
        cmocka_unit_test(test_dataset_between_metrics),
        cmocka_unit_test(test_experiment_once),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_retry_jitter),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_retry_after_date),
        cmocka_unit_test(test_retry_html_and_wire),
        cmocka_unit_test(test_outbox_keeps),
        cmocka_unit_test(test_outbox_transient_kinds),
        cmocka_unit_test(test_memory_counts_failed),
        cmocka_unit_test(test_deadline_ends_retries),
        cmocka_unit_test(test_create_answer_lost),
        cmocka_unit_test(test_create_lost_before),
        cmocka_unit_test(test_create_connect_retried),
        cmocka_unit_test(test_inflight_runs_overlap),
        cmocka_unit_test(test_inflight_one_run),
        cmocka_unit_test(test_inflight_failure_resends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
