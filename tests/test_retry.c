/*
 * test_retry.c - MLflow's retry policy (src/transport/mlo_retry.c) and the
 * HTTP layer's use of it (src/transport/mlo_http.c), in process: the pure
 * rules with explicit arguments, and whole requests over the fake transport
 * with a virtual clock (tests/mlo_fake_transport.c).
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlo.h"
#include "mlo_fake_transport.h"
#include "mlo_http.h"
#include "mlo_retry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the rules ------------------------------------------------------------------- */

static void test_codes_and_outcomes(void **state) {
    (void)state;
    long yes[] = {408, 429, 500, 502, 503, 504},
         no[] = {200, 201, 301, 400, 401, 403, 404, 409, 501};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(mlo__retry_http_code(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(mlo__retry_http_code(no[i]));
    assert_true(mlo__retry_outcome(MLO_XF_CONNECT));
    assert_true(mlo__retry_outcome(MLO_XF_LOST));
    assert_true(mlo__retry_outcome(MLO_XF_TIMEOUT));
    assert_true(mlo__retry_outcome(MLO_XF_TLS_HANDSHAKE));
    assert_false(mlo__retry_outcome(MLO_XF_TLS));
    assert_false(mlo__retry_outcome(MLO_XF_URL));
    assert_false(mlo__retry_outcome(MLO_XF_BODY_FILE));
    assert_false(mlo__retry_outcome(MLO_XF_RESPONSE));
    /* what an outbox gives up on, and what it keeps trying */
    int perm[] = {MLO_ERR_SERVER_INVALID,
                  MLO_ERR_NOT_FOUND,
                  MLO_ERR_ALREADY_EXISTS,
                  MLO_ERR_INVALID_PATH,
                  MLO_ERR_INVALID_ARGUMENT,
                  MLO_ERR_STORE,
                  MLO_ERR_IO};
    int trans[] = {MLO_ERR_NETWORK,      MLO_ERR_TIMEOUT,    MLO_ERR_TLS,      MLO_ERR_SERVER,
                   MLO_ERR_RATE_LIMITED, MLO_ERR_PERMISSION, MLO_ERR_PROTOCOL, MLO_ERR_NO_MEMORY};
    for (size_t i = 0; i < sizeof perm / sizeof *perm; i++)
        assert_true(mlo__retry_permanent(perm[i]));
    for (size_t i = 0; i < sizeof trans / sizeof *trans; i++)
        assert_false(mlo__retry_permanent(trans[i]));
}

static void test_waits(void **state) {
    (void)state;
    mlo_retry_policy p = {.max_retries = 5, .factor_s = 2, .jitter_s = 1, .respect_retry_after = 1};
    /* factor * 2^(n-1) + jitter * u */
    assert_true(fabs(mlo__retry_wait_s(&p, 1, -1, 0) - 2) < 1e-9);
    assert_true(fabs(mlo__retry_wait_s(&p, 2, -1, 0) - 4) < 1e-9);
    assert_true(fabs(mlo__retry_wait_s(&p, 3, -1, 0.5) - 8.5) < 1e-9);
    /* capped at 120 s before the jitter */
    assert_true(fabs(mlo__retry_wait_s(&p, 10, -1, 0.25) - 120.25) < 1e-9);
    assert_true(fabs(mlo__retry_wait_s(&p, 60, -1, 0) - 120) < 1e-9);
    /* Retry-After wins when respected, capped at 120 s, no jitter */
    assert_true(fabs(mlo__retry_wait_s(&p, 1, 7, 0.9) - 7) < 1e-9);
    assert_true(fabs(mlo__retry_wait_s(&p, 1, 900, 0.9) - 120) < 1e-9);
    p.respect_retry_after = 0;
    assert_true(fabs(mlo__retry_wait_s(&p, 1, 7, 0) - 2) < 1e-9);
    /* the outbox pause: factor * 2^k within [0.05, 60] s */
    assert_int_equal(mlo__retry_backoff_ns(2, 0), 2000000000LL);
    assert_int_equal(mlo__retry_backoff_ns(2, 3), 16000000000LL);
    assert_int_equal(mlo__retry_backoff_ns(2, 9), 60000000000LL);
    /* mlo sync's pause between passes: n s, n/20 s after out of memory */
    assert_int_equal(mlo__retry_sync_pause_ns(MLO_ERR_NETWORK, 2), 2000000000LL);
    assert_int_equal(mlo__retry_sync_pause_ns(MLO_ERR_NO_MEMORY, 2), 100000000LL);
    assert_int_equal(mlo__retry_backoff_ns(0, 0), 50000000LL);
    assert_int_equal(mlo__retry_backoff_ns(0.001, 0), 50000000LL);
    /* jitter draws in [0, 1) */
    mlo_rng r;
    mlo__retry_rng_seed(&r, 42);
    double lo = 1, hi = 0;
    for (int i = 0; i < 10000; i++) {
        double u = mlo__retry_rng_unit(&r);
        assert_true(u >= 0 && u < 1);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    assert_true(lo < 0.01 && hi > 0.99);
}

static void test_retry_after_forms(void **state) {
    (void)state;
    int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_true(fabs(mlo__retry_after_parse("7", now) - 7) < 1e-9);
    assert_true(fabs(mlo__retry_after_parse(" 2.5 ", now) - 2.5) < 1e-9);
    assert_true(fabs(mlo__retry_after_parse("Sun, 06 Nov 1994 08:49:47 GMT", now) - 10) < 1e-9);
    assert_true(fabs(mlo__retry_after_parse("Sunday, 06-Nov-94 08:49:57 GMT", now) - 20) < 1e-9);
    assert_true(fabs(mlo__retry_after_parse("Sun Nov  6 08:50:07 1994", now) - 30) < 1e-9);
    assert_true(mlo__retry_after_parse("Sun, 06 Nov 1994 08:00:00 GMT", now) == 0); /* past */
    assert_true(mlo__retry_after_parse("", now) < 0);
    assert_true(mlo__retry_after_parse(NULL, now) < 0);
    assert_true(mlo__retry_after_parse("soon", now) < 0);
    assert_true(mlo__retry_after_parse("7 seconds", now) < 0);
}

/* ---- whole requests over the fake transport --------------------------------------------- */

typedef struct hx {
    fake_clock fc;
    fake_server *fs;
    mlo_http *h;
    int retries_seen;
    char last_retry[256];
} hx;

static void on_retry(void *ctx, long code, const char *msg) {
    hx *x = ctx;
    (void)code;
    x->retries_seen++;
    snprintf(x->last_retry, sizeof x->last_retry, "%s", msg);
}

static hx *hx_new(const char *base, int max_retries) {
    hx *x = calloc(1, sizeof *x);
    fake_clock_init(&x->fc);
    x->fs = fake_server_new(&x->fc);
    mlo_http_config c = {.base_uri = base,
                         .user = "alice",
                         .password = "s3cr3t-pw",
                         .max_retries = max_retries,
                         .backoff_factor_s = 2,
                         .jitter_s = 0,
                         .timeout_s = 30,
                         .respect_retry_after = 1,
                         .on_retry = on_retry,
                         .ctx = x,
                         .new_transport = fake_transport_new,
                         .transport_user = x->fs,
                         .clock = &x->fc.clock};
    x->h = mlo__http_new(&c);
    assert_non_null(x->h);
    return x;
}

static void hx_free(hx *x) {
    mlo__http_free(x->h);
    fake_server_free(x->fs);
    free(x);
}

static void wire(hx *x, const char *path, int times, int outcome, int executed, int reused) {
    fake_fault f = {.times = times, .outcome = outcome, .executed = executed, .reused = reused};
    snprintf(f.path, sizeof f.path, "%s", path);
    fake_fault_add(x->fs, &f);
}

/* Basic auth on every request to the server, never to a presigned URL. */
static void test_auth_headers(void **state) {
    (void)state;
    hx *x = hx_new("http://mlflow.test", 0);
    mlo_http_result r;
    assert_int_equal(
        mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", "run_id=1", NULL, 0, 0, &r),
        MLO_OK);
    mlo__http_result_free(&r);
    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "PUT";
    q.path = "https://bucket.s3.test/part?X-Amz-Signature=abcdef123456";
    q.body = "xyz";
    q.len = 3;
    assert_int_equal(mlo__http_request(x->h, &q, &r), MLO_OK);
    mlo__http_result_free(&r);
    assert_int_equal(fake_nreq(x->fs), 2);
    assert_string_equal(fake_req_at(x->fs, 0)->auth, "Authorization: Basic YWxpY2U6czNjcjN0LXB3");
    assert_string_equal(fake_req_at(x->fs, 1)->auth, "");
    hx_free(x);
}

/* A reused keep-alive connection that fails at once: one immediate retry,
 * not counted, no backoff. */
static void test_reconnect_once(void **state) {
    (void)state;
    hx *x = hx_new("http://mlflow.test", 5);
    wire(x, "runs/get", 1, MLO_XF_LOST, 0, 1);
    mlo_http_result r;
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_OK);
    assert_int_equal(r.reconnects, 1);
    assert_int_equal(r.retries, 0);
    assert_int_equal(x->retries_seen, 0);
    assert_int_equal(atomic_load(&x->fc.slept_ns), 0);
    mlo__http_result_free(&r);
    /* twice in a row: the second is a counted retry with a backoff */
    wire(x, "runs/get", 2, MLO_XF_LOST, 0, 1);
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_OK);
    assert_int_equal(r.reconnects, 1);
    assert_int_equal(r.retries, 1);
    assert_int_equal(atomic_load(&x->fc.slept_ns), 2 * MLO_NS_PER_S);
    mlo__http_result_free(&r);
    hx_free(x);
}

/* A request that creates something is not repeated once it may have
 * reached the server; one that was never sent is. */
static void test_not_idempotent(void **state) {
    (void)state;
    hx *x = hx_new("http://mlflow.test", 5);
    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "POST";
    q.path = "/api/2.0/mlflow/runs/create";
    q.body = "{}";
    q.len = 2;
    q.not_idempotent = 1;
    mlo_http_result r;
    int outcomes[] = {MLO_XF_LOST, MLO_XF_TIMEOUT};
    for (int i = 0; i < 2; i++) {
        wire(x, "runs/create", 1, outcomes[i], 1, 0);
        assert_int_equal(mlo__http_request(x->h, &q, &r), MLO_ERR_NETWORK);
        assert_non_null(strstr(r.message, "may have taken effect"));
        assert_int_equal(r.retries, 0);
        mlo__http_result_free(&r);
    }
    wire(x, "runs/create", 2, MLO_XF_CONNECT, 0, 0);
    assert_int_equal(mlo__http_request(x->h, &q, &r), MLO_OK);
    assert_int_equal(r.retries, 2);
    mlo__http_result_free(&r);
    hx_free(x);
}

/* Failures outliving the retries; TLS failures that no retry fixes. */
static void test_give_up(void **state) {
    (void)state;
    hx *x = hx_new("http://mlflow.test", 3);
    mlo_http_result r;
    wire(x, "runs/get", 10, MLO_XF_CONNECT, 0, 0);
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_ERR_NETWORK);
    assert_int_equal(r.retries, 3);
    assert_non_null(strstr(r.message, "after 3 retries"));
    assert_int_equal(atomic_load(&x->fc.slept_ns), (2 + 4 + 8) * MLO_NS_PER_S);
    mlo__http_result_free(&r);
    hx_free(x);
    x = hx_new("http://mlflow.test", 3);
    wire(x, "runs/get", 1, MLO_XF_TLS, 0, 0);
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_ERR_TLS);
    assert_non_null(strstr(r.message, "MLFLOW_TRACKING_SERVER_CERT_PATH"));
    assert_int_equal(r.retries, 0);
    mlo__http_result_free(&r);
    wire(x, "runs/get", 1, MLO_XF_TLS_CLIENT_CERT, 0, 0);
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_ERR_TLS);
    assert_non_null(strstr(r.message, "MLFLOW_TRACKING_CLIENT_CERT_PATH"));
    mlo__http_result_free(&r);
    /* a handshake that keeps breaking off: retried, then TLS */
    wire(x, "runs/get", 10, MLO_XF_TLS_HANDSHAKE, 0, 0);
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_ERR_TLS);
    assert_int_equal(r.retries, 3);
    mlo__http_result_free(&r);
    hx_free(x);
}

/* The deadline bounds everything: no retry whose wait would pass it. */
static void test_deadline(void **state) {
    (void)state;
    hx *x = hx_new("http://mlflow.test", 10);
    fake_fault f = {.path = "runs/get", .times = 100, .status = 503};
    fake_fault_add(x->fs, &f);
    mlo_http_result r;
    int64_t now = atomic_load(&x->fc.mono_ns);
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0,
                                    now + 10 * MLO_NS_PER_S, &r),
                     MLO_ERR_TIMEOUT);
    /* 2 s + 4 s slept; the next 8 s would pass the deadline */
    assert_int_equal(atomic_load(&x->fc.slept_ns), 6 * MLO_NS_PER_S);
    assert_int_equal(r.http_code, 503); /* the last answer is kept */
    assert_non_null(strstr(r.message, "deadline leaves no time"));
    mlo__http_result_free(&r);
    hx_free(x);
}

/* No credential in any message: the transport's words quote the URL with
 * user:password@, and the scrubber takes them out. */
static void test_messages_scrubbed(void **state) {
    (void)state;
    hx *x = hx_new("http://bob:hunter2-secret@mlflow.test", 1);
    wire(x, "runs/get", 5, MLO_XF_LOST, 0, 0);
    mlo_http_result r;
    assert_int_equal(mlo__http_call(x->h, "GET", "/api/2.0/mlflow/runs/get", NULL, NULL, 0, 0, &r),
                     MLO_ERR_NETWORK);
    assert_null(strstr(r.message, "hunter2-secret"));
    assert_null(strstr(r.message, "s3cr3t-pw"));
    assert_null(strstr(x->last_retry, "hunter2-secret"));
    assert_non_null(strstr(x->last_retry, "***"));
    mlo__http_result_free(&r);
    hx_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_and_outcomes),
        cmocka_unit_test(test_waits),
        cmocka_unit_test(test_retry_after_forms),
        cmocka_unit_test(test_auth_headers),
        cmocka_unit_test(test_reconnect_once),
        cmocka_unit_test(test_not_idempotent),
        cmocka_unit_test(test_give_up),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_messages_scrubbed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
