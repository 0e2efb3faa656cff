/*
 * test_examples.c - end to end against the MLflow-compatible test server
 * (tests/mlflow_test_server.py): the histogram API through a real client,
 * and the example programs examples/train_grid and examples/inference_server
 * run as a user would, checked by what the server stored (/_test/dump).
 *
 *   test_examples <path of train_grid> <path of inference_server>
 *
 * (examples/meson.build registers it: the examples are built after tests/.)
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlo.h"
#include "testutil.h"

static testsrv *srv;
static const char *train_grid_exe, *inference_server_exe;

/* ---- reading back what the server stored ---------------------------------------- */

static json_t *dump(void) {
    return tu_dump(srv);
}

static const char *str_at(json_t *o, const char *k) {
    return tu_str(o, k);
}

static const char *experiment_id(json_t *d, const char *name) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(d, "experiments"), i, e) {
        if (!strcmp(str_at(e, "name"), name))
            return str_at(e, "experiment_id");
    }
    fail_msg("experiment %s not stored", name);
    return NULL;
}

/* The runs of an experiment, in creation order (at most max). */
static size_t runs_of(json_t *d, const char *exp_id, json_t **out, size_t max) {
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        if (!strcmp(str_at(json_object_get(r, "info"), "experiment_id"), exp_id) && n < max)
            out[n++] = r;
    }
    return n;
}

/* Points of one metric key: values and steps in storage order; returns how many. */
static size_t points(json_t *run, const char *key, double *vals, int64_t *steps, size_t max) {
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        if (strcmp(str_at(m, "key"), key) || n >= max)
            continue;
        vals[n] = tu_num(json_object_get(m, "value"));
        steps[n] = json_integer_value(json_object_get(m, "step"));
        n++;
    }
    return n;
}

/* The value of key at step (fails when absent). */
static double value_at(json_t *run, const char *key, int64_t step) {
    double v[4096];
    int64_t s[4096];
    size_t n = points(run, key, v, s, 4096);
    for (size_t i = 0; i < n; i++)
        if (s[i] == step)
            return v[i];
    fail_msg("metric %s step %lld not stored", key, (long long)step);
    return NAN;
}

static void assert_within(double got, double want, double rel, const char *what) {
    if (!(fabs(got - want) <= rel * fabs(want)))
        fail_msg("%s = %.17g, expected %.17g within %g%%", what, got, want, 100 * rel);
}

/* Runs an example with MLFLOW_TRACKING_URI pointing at the test server;
 * returns its exit status; its output is echoed with a "# " prefix. */
static int run_example(const char *exe, const char *args) {
    char log[] = "/tmp/mlo-example-XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "MLFLOW_TRACKING_URI='%s' '%s' %s >'%s' 2>&1", testsrv_uri(srv), exe,
             args, log);
    int st = system(cmd);
    FILE *f = fopen(log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        printf("# %s", line);
    if (f)
        fclose(f);
    unlink(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    return 0;
}

/* A client of the test server with the library's defaults, on a store of its own. */
static mlo_client_t *open_client(void) {
    tu_client_cfg k = {.uri = testsrv_uri(srv), .retries = -1};
    return tu_open(&k);
}

/* ---- the histogram API through a real client --------------------------------------- */

/* 1..1000 recorded, freed (the interval is emitted by mlo_histogram_free),
 * flushed: the server holds the six metrics with the right values. */
static void test_histogram_values(void **state) {
    (void)state;
    mlo_client_t *c = open_client();
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "hist-e2e", "values", NULL, &run), MLO_OK);
    mlo_histogram_t *h;
    /* an hour: the only interval is the one mlo_histogram_free emits */
    assert_int_equal(mlo_histogram_new(run, "lat", 3600000, &h), MLO_OK);
    assert_int_equal(mlo_histogram_new(run, "bad//key", 1000, &(mlo_histogram_t *){0}),
                     MLO_ERR_INVALID_KEY);
    int64_t before = (int64_t)time(NULL) * 1000;
    for (int i = 1000; i >= 1; i--)
        assert_int_equal(mlo_histogram_record(h, (double)i), MLO_OK);
    assert_int_equal(mlo_histogram_free(h), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    char rid[40];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
    assert_int_equal(mlo_client_close(c), MLO_OK);

    json_t *d = dump();
    json_t *r = tu_find_run(d, rid);
    /* exact: ranks floor(q * 999) of 1..1000 are 500, 950, 990 */
    assert_within(value_at(r, "lat.p50", 0), 500, 0.01, "lat.p50");
    assert_within(value_at(r, "lat.p95", 0), 950, 0.01, "lat.p95");
    assert_within(value_at(r, "lat.p99", 0), 990, 0.01, "lat.p99");
    assert_true(value_at(r, "lat.max", 0) == 1000);
    assert_true(value_at(r, "lat.count", 0) == 1000);
    assert_true(value_at(r, "lat.rate", 0) > 0);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r, "metrics"), i, m) {
        int64_t ts = json_integer_value(json_object_get(m, "timestamp"));
        assert_true(ts >= before - 1000 && ts <= before + 60000);
    }
    assert_int_equal(json_array_size(json_object_get(r, "metrics")), 6);
    json_decref(d);
}

typedef struct rec_job {
    mlo_histogram_t *h;
    int64_t until_ns;
    uint64_t n;
} rec_job;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *rec_main(void *arg) {
    rec_job *j = arg;
    uint64_t n = 0;
    while (mono_ns() < j->until_ns) {
        for (int k = 0; k < 100; k++)
            n += mlo_histogram_record(j->h, 0.5 + (double)(n % 97)) == MLO_OK;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    j->n = n;
    return NULL;
}

/* 4 threads record for 0.7 s into a 100 ms histogram: the counts the server
 * holds add up to what was recorded, one point per step. */
static void test_histogram_threads(void **state) {
    (void)state;
    mlo_client_t *c = open_client();
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "hist-e2e", "threads", NULL, &run), MLO_OK);
    mlo_histogram_t *h;
    assert_int_equal(mlo_histogram_new(run, "lat", 100, &h), MLO_OK);
    pthread_t th[4];
    rec_job jobs[4];
    int64_t until = mono_ns() + 700000000;
    for (int i = 0; i < 4; i++) {
        jobs[i] = (rec_job){.h = h, .until_ns = until};
        assert_int_equal(pthread_create(&th[i], NULL, rec_main, &jobs[i]), 0);
    }
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += jobs[i].n;
    }
    assert_int_equal(mlo_histogram_free(h), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    char rid[40];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
    assert_int_equal(mlo_client_close(c), MLO_OK);

    json_t *d = dump();
    json_t *r = tu_find_run(d, rid);
    double v[1024];
    int64_t s[1024];
    size_t n = points(r, "lat.count", v, s, 1024);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        for (size_t k = 0; k < i; k++)
            assert_true(s[k] != s[i]);
        assert_true(value_at(r, "lat.p50", s[i]) <= value_at(r, "lat.p99", s[i]));
        assert_true(value_at(r, "lat.p99", s[i]) <= value_at(r, "lat.max", s[i]));
    }
    printf("# %llu values in %zu intervals of 100 ms%s\n", (unsigned long long)total, n,
           n == 1 ? " (only the last: is the shipper calling mlo__hist_tick?)" : "");
    assert_true(n >= 1);
    assert_true(sum == (double)total);
    json_decref(d);
}

/* ---- examples/train_grid ------------------------------------------------------------ */

static void check_grid(json_t *d, const char *exp_name, json_t **runs) {
    size_t n = runs_of(d, experiment_id(d, exp_name), runs, 16);
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++) {
        json_t *r = runs[i], *info = json_object_get(r, "info");
        json_t *params = json_object_get(r, "params");
        assert_string_equal(str_at(info, "status"), "FINISHED");
        char name[64];
        snprintf(name, sizeof name, "softmax-lr%s-l2_%s", str_at(params, "learning_rate"),
                 str_at(params, "l2"));
        assert_string_equal(str_at(info, "run_name"), name);
        assert_string_equal(str_at(params, "epochs"), "60");
        assert_string_equal(str_at(params, "seed"), "42");
        assert_string_equal(str_at(params, "test_rows"), "45");
        assert_string_equal(str_at(params, "train_rows"), "105");
        assert_string_equal(str_at(params, "model"), "softmax_regression");
        assert_string_equal(str_at(json_object_get(r, "tags"), "dataset"), "iris");
        double acc = value_at(r, "accuracy", 60), f1 = value_at(r, "f1_macro", 60);
        assert_true(acc > 0.3 && acc <= 1.0);
        assert_true(f1 > 0.3 && f1 <= 1.0);
        double v[128];
        int64_t s[128];
        assert_int_equal(points(r, "loss", v, s, 128), 60);
        assert_int_equal(points(r, "train_accuracy", v, s, 128), 60);
        for (int e = 0; e < 60; e++)
            assert_int_equal(s[e], e);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(str_at(json_object_get(runs[k], "info"), "run_name"), name);
    }
}

static void test_train_grid(void **state) {
    (void)state;
    char *dir = tu_tmpdir("grid");
    char args[256];
    snprintf(args, sizeof args, "--out '%s'", dir);
    assert_int_equal(run_example(train_grid_exe, args), 0);
    snprintf(args, sizeof args, "--out '%s' --experiment iris-grid-again", dir);
    assert_int_equal(run_example(train_grid_exe, args), 0);

    json_t *d = dump();
    json_t *a[16], *b[16];
    check_grid(d, "iris-grid", a);
    check_grid(d, "iris-grid-again", b);
    /* deterministic: the same seed gives the same numbers; the grid learns */
    double best = 0;
    for (int i = 0; i < 9; i++) {
        assert_string_equal(str_at(json_object_get(a[i], "info"), "run_name"),
                            str_at(json_object_get(b[i], "info"), "run_name"));
        assert_true(value_at(a[i], "accuracy", 60) == value_at(b[i], "accuracy", 60));
        assert_true(value_at(a[i], "f1_macro", 60) == value_at(b[i], "f1_macro", 60));
        assert_true(value_at(a[i], "loss", 59) == value_at(b[i], "loss", 59));
        if (value_at(a[i], "accuracy", 60) > best)
            best = value_at(a[i], "accuracy", 60);
        /* the model file of each run, and the same bytes as the run's artifact
         * model/<run name>.model on the server */
        char path[512];
        const char *rname = str_at(json_object_get(a[i], "info"), "run_name");
        snprintf(path, sizeof path, "%s/%s.model", dir, rname);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char local[65536];
        size_t nlocal = fread(local, 1, sizeof local, f);
        fclose(f);
        assert_true(nlocal > 0 && nlocal < sizeof local);
        for (json_t **runs = a; runs; runs = runs == a ? b : NULL) {
            json_t *info = json_object_get(runs[i], "info");
            char url[512];
            snprintf(url, sizeof url,
                     "/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/model/%s.model",
                     str_at(info, "experiment_id"), str_at(info, "run_id"), rname);
            long code = 0;
            char *body = testsrv_get(srv, url, &code);
            assert_non_null(body);
            if (code != 200)
                fail_msg("GET %s: HTTP %ld", url, code);
            assert_int_equal(strlen(body), nlocal); /* the model file is text */
            assert_memory_equal(body, local, nlocal);
            free(body);
        }
        unlink(path);
    }
    assert_true(best >= 0.9);
    assert_int_equal(rmdir(dir), 0); /* nothing else was written there */
    free(dir);
    json_decref(d);
}

/* ---- examples/inference_server ----------------------------------------------------- */

static void test_inference_server(void **state) {
    (void)state;
    assert_int_equal(run_example(inference_server_exe, "--seconds 2 --threads 4"), 0);
    json_t *d = dump();
    json_t *runs[4];
    assert_int_equal(runs_of(d, experiment_id(d, "iris-serving"), runs, 4), 1);
    json_t *r = runs[0];
    assert_string_equal(str_at(json_object_get(r, "info"), "status"), "FINISHED");
    assert_string_equal(str_at(json_object_get(r, "params"), "threads"), "4");

    double v[256];
    int64_t s[256];
    size_t n = points(r, "latency_ms.count", v, s, 256);
    assert_true(n >= 1);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        double p50 = value_at(r, "latency_ms.p50", s[i]), p95 = value_at(r, "latency_ms.p95", s[i]);
        double p99 = value_at(r, "latency_ms.p99", s[i]), mx = value_at(r, "latency_ms.max", s[i]);
        /* a 0.2 ms median sleep, plus scheduling: in an interval of a few
         * requests (the last, cut short when the run ends) a thread held off
         * the CPU by a loaded machine can make the median alone */
        if (v[i] >= 100 && !(p50 > 0.1 && p50 < 50))
            fail_msg("interval %lld: p50 %g ms, p95 %g, p99 %g, max %g, count %g", (long long)s[i],
                     p50, p95, p99, mx, v[i]);
        assert_true(p50 <= p95 && p95 <= p99 && p99 <= mx);
        assert_true(value_at(r, "latency_ms.rate", s[i]) > 0);
    }
    assert_true(sum == value_at(r, "requests", 0));
    assert_true(sum > 1000);
    size_t na = points(r, "accuracy", v, s, 256);
    assert_true(na >= 2);
    for (size_t i = 0; i < na; i++)
        assert_true(v[i] > 0.6 && v[i] <= 1.0);
    printf("# %.0f requests, latency reported for %zu interval(s), accuracy for %zu\n", sum, n, na);
    json_decref(d);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <train_grid> <inference_server>\n", argv[0]);
        return 2;
    }
    train_grid_exe = argv[1];
    inference_server_exe = argv[2];
    tu_init("examples"); /* the examples inherit its MLO_STORE_DIR: a store of their own */
    srv = testsrv_start(NULL);
    if (!srv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_histogram_values, setup),
        cmocka_unit_test_setup(test_histogram_threads, setup),
        cmocka_unit_test_setup(test_train_grid, setup),
        cmocka_unit_test_setup(test_inference_server, setup),
    };
    int rc = tu_run_group("test_examples", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
