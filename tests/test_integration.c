/*
 * test_integration.c - the public API end to end against the MLflow-compatible
 * test server (tests/mlflow_test_server.py), asserting on what the server
 * stored: values, steps, timestamps, tags, run status; retries against
 * injected faults; isolation of a conflicting param; bounded close.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlo.h"
#include "testutil.h"

static testsrv *srv;

/* A client of the test server on a store of its own: fast retries so the
 * fault tests stay quick. */
static mlo_client_t *open_client(tu_errors *errors, unsigned close_ms) {
    tu_client_cfg k = {.uri = testsrv_uri(srv),
                       .retries = 3,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = 5,
                       .close_ms = close_ms,
                       .errors = errors};
    return tu_open(&k);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    return 0;
}

/* ---- tests ---- */

static void test_end_to_end(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap, 0);
    mlo_run_t *run = NULL;
    assert_int_equal(mlo_start_run(c, "integration", "first-run", NULL, &run), MLO_OK);
    const char *rid = mlo_run_id(run);
    assert_non_null(rid);
    assert_int_equal(strlen(rid), 32);

    assert_int_equal(mlo_log_param(run, "lr", "0.001"), MLO_OK);
    assert_int_equal(mlo_log_param(run, "layers", "4"), MLO_OK);
    assert_int_equal(mlo_set_tag(run, "team", "vision"), MLO_OK);
    for (int64_t s = 0; s < 50; s++)
        assert_int_equal(
            mlo_log_metric_ts(run, "loss", 1.0 / (double)(s + 1), s, 1700000000000 + s), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "nan", NAN, 0), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "inf", INFINITY, 1), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "ninf", -INFINITY, -5), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "big", 1.2345678901234567e300, INT64_MAX), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "tiny", 5e-324, INT64_MIN), MLO_OK);
    const char *keys[] = {"acc", "f1"};
    double vals[] = {0.93, 0.91};
    int64_t steps[] = {7, 7};
    assert_int_equal(mlo_log_metrics(run, 2, keys, vals, steps, NULL), MLO_OK);
    int64_t before = (int64_t)time(NULL) * 1000 - 5000;
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);

    uint64_t acc, sent, failed, dropped;
    mlo_client_stat(c, MLO_STAT_ACCEPTED, &acc);
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    mlo_client_stat(c, MLO_STAT_DROPPED, &dropped);
    assert_int_equal(acc, 3 + 50 + 5 + 2 + 1);
    assert_int_equal(sent, acc);
    assert_int_equal(failed, 0);
    assert_int_equal(dropped, 0);

    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, rid);
    json_t *info = json_object_get(r, "info");
    assert_string_equal(tu_str(info, "status"), "FINISHED");
    assert_string_equal(tu_str(info, "run_name"), "first-run");
    assert_true(json_integer_value(json_object_get(info, "end_time")) >= before);
    json_t *params = json_object_get(r, "params");
    assert_string_equal(tu_str(params, "lr"), "0.001");
    assert_string_equal(tu_str(params, "layers"), "4");
    json_t *tags = json_object_get(r, "tags");
    assert_string_equal(tu_str(tags, "team"), "vision");
    assert_string_equal(tu_str(tags, "mlflow.runName"), "first-run");
    assert_string_equal(tu_str(tags, "mlflow.source.type"), "LOCAL");
    assert_non_null(tu_str(tags, "mlflow.user"));
    assert_non_null(strstr(tu_str(tags, "mlflow.source.name"), "test_integration"));

    assert_int_equal(tu_count_metric(r, "loss"), 50);
    for (int64_t s = 0; s < 50; s++) {
        json_t *m = tu_metric(r, "loss", s);
        assert_true(tu_num(json_object_get(m, "value")) == 1.0 / (double)(s + 1));
        assert_int_equal(json_integer_value(json_object_get(m, "timestamp")), 1700000000000 + s);
    }
    assert_true(isnan(tu_num(json_object_get(tu_metric(r, "nan", 0), "value"))));
    assert_true(tu_num(json_object_get(tu_metric(r, "inf", 1), "value")) >= 1.7976931348623157e308);
    assert_true(tu_num(json_object_get(tu_metric(r, "ninf", -5), "value")) <=
                -1.7976931348623157e308);
    assert_true(tu_num(json_object_get(tu_metric(r, "big", INT64_MAX), "value")) ==
                1.2345678901234567e300);
    assert_true(tu_num(json_object_get(tu_metric(r, "tiny", INT64_MIN), "value")) == 5e-324);
    assert_true(tu_num(json_object_get(tu_metric(r, "acc", 7), "value")) == 0.93);
    /* the call's own timestamp is "now" in ms */
    assert_true(json_integer_value(json_object_get(tu_metric(r, "nan", 0), "timestamp")) >= before);
    json_decref(d);

    /* the MLflow API of the server says the same */
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=loss",
             rid);
    long code;
    char *body = testsrv_get(srv, path, &code);
    assert_int_equal(code, 200);
    json_t *h = json_loads(body, 0, NULL);
    free(body);
    assert_int_equal(json_array_size(json_object_get(h, "metrics")), 50);
    json_decref(h);

    /* the experiment was created by name */
    body = testsrv_get(srv, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=integration",
                       &code);
    assert_int_equal(code, 200);
    free(body);
    assert_int_equal(cap.n, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_nested_and_resume(void **state) {
    (void)state;
    mlo_client_t *c = open_client(NULL, 0);
    mlo_run_t *parent, *child, *again;
    assert_int_equal(mlo_start_run(c, NULL, NULL, NULL, &parent), MLO_OK);
    assert_string_equal(mlo_run_experiment_id(parent), "0"); /* Default */
    assert_int_equal(mlo_start_run(c, NULL, "child", parent, &child), MLO_OK);
    assert_int_equal(mlo_end_run(child, MLO_RUN_FAILED), MLO_OK);
    assert_int_equal(mlo_end_run(parent, MLO_RUN_KILLED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    assert_int_equal(mlo_resume_run(c, mlo_run_id(parent), &again), MLO_OK);
    assert_int_equal(mlo_log_metric(again, "after", 1, 0), MLO_OK);
    assert_int_equal(mlo_resume_run(c, "0123456789abcdef0123456789abcdef", &child),
                     MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    json_t *d = tu_dump(srv);
    json_t *rp = tu_find_run(d, mlo_run_id(parent));
    assert_string_equal(mlo_run_id(again), mlo_run_id(parent));
    assert_string_equal(tu_str(json_object_get(rp, "info"), "status"), "RUNNING"); /* resumed */
    assert_int_equal(tu_count_metric(rp, "after"), 1);
    size_t i;
    json_t *r;
    int found_child = 0;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        const char *pid = tu_str(json_object_get(r, "tags"), "mlflow.parentRunId");
        if (pid && !strcmp(pid, mlo_run_id(parent))) {
            found_child = 1;
            assert_string_equal(tu_str(json_object_get(r, "info"), "status"), "FAILED");
            assert_string_equal(tu_str(json_object_get(r, "tags"), "mlflow.runName"), "child");
        }
    }
    assert_true(found_child);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_env_run_id_resumes(void **state) {
    (void)state;
    mlo_client_t *c = open_client(NULL, 0);
    mlo_run_t *first;
    assert_int_equal(mlo_start_run(c, "envexp", NULL, NULL, &first), MLO_OK);
    char rid[64];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(first));
    assert_int_equal(mlo_client_close(c), MLO_OK);
    setenv("MLFLOW_RUN_ID", rid, 1);
    c = open_client(NULL, 0);
    mlo_run_t *r;
    assert_int_equal(mlo_start_run(c, "ignored", NULL, NULL, &r), MLO_OK);
    assert_string_equal(mlo_run_id(r), rid);
    unsetenv("MLFLOW_RUN_ID");
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

typedef struct race_arg {
    const char *exp;
    char id[64];
    int st;
} race_arg;

static void *race(void *p) {
    race_arg *a = p;
    mlo_client_t *c = open_client(NULL, 0);
    mlo_run_t *r;
    a->st = mlo_start_run(c, a->exp, NULL, NULL, &r);
    if (a->st == MLO_OK)
        snprintf(a->id, sizeof a->id, "%s", mlo_run_experiment_id(r));
    mlo_client_close(c);
    return NULL;
}

static void test_experiment_race(void **state) {
    (void)state;
    enum { N = 6 };
    pthread_t t[N];
    race_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i].exp = "raced-experiment";
        pthread_create(&t[i], NULL, race, &a[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].st, MLO_OK);
        assert_string_equal(a[i].id, a[0].id);
    }
}

static void test_param_conflict_isolated(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap, 0);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "conflicts", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_param(run, "p", "1"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    /* one conflicting param among good entries in the same batch */
    for (int i = 0; i < 40; i++)
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
    assert_int_equal(mlo_log_param(run, "p", "2"), MLO_OK);
    assert_int_equal(mlo_log_param(run, "q", "ok"), MLO_OK);
    assert_int_equal(mlo_set_tag(run, "t", "v"), MLO_OK);
    for (int i = 40; i < 80; i++)
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    uint64_t failed, sent;
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    assert_int_equal(failed, 1);
    assert_int_equal(sent, 1 + 80 + 2);
    assert_true(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, "\"p\""));
    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, mlo_run_id(run));
    assert_string_equal(tu_str(json_object_get(r, "params"), "p"), "1");
    assert_string_equal(tu_str(json_object_get(r, "params"), "q"), "ok");
    assert_string_equal(tu_str(json_object_get(r, "tags"), "t"), "v");
    assert_int_equal(tu_count_metric(r, "m"), 80);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_bad_input_refused_at_call(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap, 0);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "validation", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "bad key!", 1, 0), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_log_metric(run, "../up", 1, 0), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_log_metric(run, "", 1, 0), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_log_metric(run, NULL, 1, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_metric(NULL, "k", 1, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_metric_ts(run, "k", 1, 0, -1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_param(run, "k\xFF", "v"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_log_param(run, "k", "v\xC3"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_log_param(run, "k", NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_set_tag(run, "a//b", "v"), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_end_run(run, (mlo_run_status)9), MLO_ERR_INVALID_STATUS);
    assert_int_equal(mlo_end_run(run, MLO_RUN_RUNNING), MLO_ERR_INVALID_STATUS);
    assert_int_equal(mlo_log_artifact(run, "/etc/hostname", "../x"), MLO_ERR_INVALID_PATH);
    assert_int_equal(mlo_log_artifact(run, NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_start_run(c, "", NULL, NULL, &run), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_start_run(c, "x\xFF", NULL, NULL, &run), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_start_run(NULL, NULL, NULL, NULL, &run), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_start_run(c, NULL, NULL, NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_start_run(c, "validation", NULL, NULL, &run), MLO_OK);
    /* a batch with bad entries queues the good ones */
    const char *keys[] = {"good1", "bad key!", NULL, "good2"};
    double vals[] = {1, 2, 3, 4};
    assert_int_equal(mlo_log_metrics(run, 4, keys, vals, NULL, NULL), MLO_ERR_INVALID_KEY);
    const char *pk[] = {"pa", "pb"};
    const char *pv[] = {"1", NULL};
    assert_int_equal(mlo_log_params(run, 2, pk, pv), MLO_ERR_INVALID_ARGUMENT);
    /* truncation as the server does, reported */
    char *longv = malloc(7001);
    memset(longv, 'v', 7000);
    longv[7000] = 0;
    assert_int_equal(mlo_log_param(run, "long", longv), MLO_OK);
    assert_int_equal(mlo_set_tag(run, "longtag", longv), MLO_OK);
    char *longt = malloc(9001);
    memset(longt, 't', 9000);
    longt[9000] = 0;
    assert_int_equal(mlo_set_tag(run, "longtag2", longt), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    assert_true(tu_errors_count(&cap, MLO_ERR_INVALID_KEY, "bad key!"));
    assert_true(tu_errors_count(&cap, MLO_WARN_TRUNCATED, "long"));
    uint64_t rejected, truncated, failed;
    mlo_client_stat(c, MLO_STAT_REJECTED, &rejected);
    mlo_client_stat(c, MLO_STAT_TRUNCATED, &truncated);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    assert_int_equal(truncated, 2);
    assert_int_equal(failed, 0);
    assert_int_equal(rejected, 13); /* the artifact path counts too */
    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, mlo_run_id(run));
    assert_int_equal(tu_count_metric(r, "good1"), 1);
    assert_int_equal(tu_count_metric(r, "good2"), 1);
    assert_int_equal(strlen(tu_str(json_object_get(r, "params"), "long")), 6000);
    assert_string_equal(tu_str(json_object_get(r, "params"), "pa"), "1");
    assert_int_equal(strlen(tu_str(json_object_get(r, "tags"), "longtag")), 7000);
    assert_int_equal(strlen(tu_str(json_object_get(r, "tags"), "longtag2")), 8000);
    json_decref(d);
    free(longv);
    free(longt);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_large_volume(void **state) {
    (void)state;
    mlo_client_t *c = open_client(NULL, 0);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "volume", NULL, NULL, &run), MLO_OK);
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        assert_int_equal(mlo_log_metric(run, i % 2 ? "odd" : "even", i, i), MLO_OK);
    char k[32];
    for (int i = 0; i < 250; i++) {
        snprintf(k, sizeof k, "p%d", i);
        assert_int_equal(mlo_log_param(run, k, k), MLO_OK);
    }
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    uint64_t sent;
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    assert_int_equal(sent, N + 250);
    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, mlo_run_id(run));
    assert_int_equal(tu_count_metric(r, "odd"), N / 2);
    assert_int_equal(tu_count_metric(r, "even"), N / 2);
    assert_int_equal(json_object_size(json_object_get(r, "params")), 250);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_retries(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap, 0);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "retries", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    uint64_t before;
    mlo_client_stat(c, MLO_STAT_RETRIED, &before);

    tu_fault(srv, "{\"status\": 503, \"count\": 2}");
    assert_int_equal(mlo_log_metric(run, "a", 1, 0), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);

    tu_fault(srv, "{\"status\": 429, \"count\": 1, \"retry_after\": 1}");
    double t0 = tu_now();
    assert_int_equal(mlo_log_metric(run, "b", 2, 0), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    double el = tu_now() - t0;
    assert_true(el >= 0.9); /* Retry-After: 1 honoured */

    tu_fault(srv, "{\"drop\": true, \"count\": 1}");
    assert_int_equal(mlo_log_metric(run, "c", 3, 0), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);

    /* an HTML 502 from a proxy: retried, then lands */
    tu_fault(srv, "{\"status\": 502, \"count\": 1, \"body\": \"<html>bad gateway</html>\", "
                  "\"content_type\": \"text/html\"}");
    assert_int_equal(mlo_log_metric(run, "d", 4, 0), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);

    uint64_t retried, sent, failed;
    mlo_client_stat(c, MLO_STAT_RETRIED, &retried);
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    /* 503 x2, 429, 502: counted retries; the dropped connection may be
     * resent at once by the transport as a reconnect, not counted */
    assert_true(retried - before >= 4);
    assert_int_equal(failed, 0);
    assert_true(tu_errors_count(&cap, MLO_WARN_RETRY, NULL));
    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, mlo_run_id(run));
    assert_int_equal(tu_count_metric(r, "a"), 1);
    assert_int_equal(tu_count_metric(r, "b"), 1);
    assert_int_equal(tu_count_metric(r, "c"), 1);
    assert_int_equal(tu_count_metric(r, "d"), 1);
    json_decref(d);

    /* retries exhausted: reported, and (the store being the outbox) the
     * event is kept and sent again once the server answers: nothing fails */
    tu_fault(srv, "{\"status\": 503, \"count\": 10}");
    assert_int_equal(mlo_log_metric(run, "e", 5, 0), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 20000), MLO_OK);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    assert_int_equal(failed, 0);
    assert_true(tu_errors_count(&cap, MLO_ERR_SERVER, NULL));
    d = tu_dump(srv);
    assert_int_equal(tu_count_metric(tu_find_run(d, mlo_run_id(run)), "e"), 1);
    json_decref(d);
    tu_faults_clear(srv);

    /* requests carry mlo's User-Agent */
    long code;
    char *reqs = testsrv_get(srv, "/_test/requests", &code);
    assert_non_null(strstr(reqs, "mlo/0.1.0"));
    free(reqs);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_auth_header(void **state) {
    (void)state;
    setenv("MLFLOW_TRACKING_TOKEN", "s3cret-token", 1);
    mlo_client_t *c = open_client(NULL, 0);
    unsetenv("MLFLOW_TRACKING_TOKEN");
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    long code;
    char *reqs = testsrv_get(srv, "/_test/requests", &code);
    assert_non_null(strstr(reqs, "Bearer s3cret-token"));
    free(reqs);
}

static void test_close_bounded_when_server_gone(void **state) {
    (void)state;
    testsrv *own = testsrv_start("");
    assert_non_null(own);
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, testsrv_uri(own));
    mlo_options_set_retries(o, 10, 2, 1, 120); /* MLflow-like long retries */
    mlo_options_set_close_timeout_ms(o, 500);
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, NULL, NULL, &run), MLO_OK);
    testsrv_stop(own);
    for (int i = 0; i < 100; i++)
        assert_int_equal(mlo_log_metric(run, "x", i, i), MLO_OK);
    double t0 = tu_now();
    assert_int_equal(mlo_client_flush(c, 200), MLO_ERR_TIMEOUT);
    assert_int_equal(mlo_client_close(c), MLO_ERR_TIMEOUT);
    double el = tu_now() - t0;
    assert_true(el < 3.0);
}

static void test_client_args(void **state) {
    (void)state;
    uint64_t v;
    assert_int_equal(mlo_client_flush(NULL, 10), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_client_close(NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_client_stat(NULL, MLO_STAT_SENT, &v), MLO_ERR_INVALID_ARGUMENT);
    mlo_client_t *c = open_client(NULL, 0);
    assert_int_equal(mlo_client_stat(c, (mlo_stat)99, &v), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_client_stat(c, MLO_STAT_SENT, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_null(mlo_run_id(NULL));
    assert_null(mlo_run_experiment_id(NULL));
    assert_int_equal(mlo_resume_run(c, NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_metrics(NULL, 0, NULL, NULL, NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* Points of key stored for run_id (the dump: 0 while the run is not there). */
static size_t stored_points(const char *run_id, const char *key) {
    json_t *d = tu_dump(srv);
    size_t n = tu_count_metric(tu_find_run(d, run_id), key);
    json_decref(d);
    return n;
}

/* An event logged to an idle client reaches the server within about the
 * flush interval: after a long idle spell (the shipper in its deep sleep) and
 * while it naps between intervals. */
static void test_wakeup_latency(void **state) {
    (void)state;
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_flush_interval_ms(o, 200), MLO_OK);
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "wakeup", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    for (int round = 0; round < 2; round++) {
        /* round 0: idle 1.5 s (deep sleep); round 1: at once (light sleep) */
        if (round == 0)
            tu_sleep_ms(1500);
        char key[16];
        snprintf(key, sizeof key, "wake%d", round);
        double t0 = tu_now();
        assert_int_equal(mlo_log_metric(run, key, 1, 0), MLO_OK);
        TU_WAIT_UNTIL(stored_points(mlo_run_id(run), key) == 1, 10000);
        double el = tu_now() - t0;
        assert_int_equal(stored_points(mlo_run_id(run), key), 1);
        /* the interval (0.2 s) plus room for the request on a loaded machine */
        assert_true(el < 1.5);
    }
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

int main(int argc, char **argv) {
    tu_init("integration");
    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_end_to_end, setup),
        cmocka_unit_test_setup(test_nested_and_resume, setup),
        cmocka_unit_test_setup(test_env_run_id_resumes, setup),
        cmocka_unit_test_setup(test_experiment_race, setup),
        cmocka_unit_test_setup(test_param_conflict_isolated, setup),
        cmocka_unit_test_setup(test_bad_input_refused_at_call, setup),
        cmocka_unit_test_setup(test_large_volume, setup),
        cmocka_unit_test_setup(test_retries, setup),
        cmocka_unit_test_setup(test_auth_header, setup),
        cmocka_unit_test_setup(test_close_bounded_when_server_gone, setup),
        cmocka_unit_test_setup(test_client_args, setup),
        cmocka_unit_test_setup(test_wakeup_latency, setup),
    };
    int rc = tu_run_group("test_integration", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
