/*
 * inference_server.c - request latencies and prediction quality of a model
 * being served, logged with mlo.
 *
 * An in-process request loop under load: --threads workers (default 4) serve
 * requests back to back for --seconds (default 3).  A request is an iris
 * flower measured with some noise (a row of examples/iris.csv plus Gaussian
 * noise of 0.25 cm); serving it means fetching its features (simulated: a
 * sleep of a log-normal time, median 0.2 ms, with a long tail, as a feature
 * store or a cache miss would take) and predicting its species with a softmax
 * regression (trained here at start-up, or read from a file train_grid wrote:
 * --model FILE).  Each request's latency goes to an mlo histogram
 * (mlo_histogram_record: no lock, no allocation, no system call), which mlo
 * turns every --interval-ms (default 1000) into the metrics latency_ms.p50,
 * .p95, .p99, .max, .count and .rate of the run.  Every interval the main
 * thread also logs the prediction quality over that interval, `accuracy`
 * (the species is known for every request), with the interval number as step.
 * At the end: the metric `requests` (the total), the run ends FINISHED.
 *
 *   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 ./inference_server [--seconds S]
 *       [--threads N] [--interval-ms MS] [--model FILE] [--data iris.csv]
 *       [--experiment NAME (default iris-serving)]
 *
 * Exit status: 0 when every event was delivered, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iris_model.h"
#include "mlo.h"

#ifndef MLO_IRIS_CSV
#define MLO_IRIS_CSV "examples/iris.csv"
#endif

#define MAX_THREADS 64
#define NOISE_CM 0.25

static iris g_data;
static softmax g_model;
static mlo_histogram_t *g_latency;
static atomic_int g_stop;

/* per-worker counters, each on its own cache line: read by the main thread */
typedef struct worker {
    _Alignas(64) _Atomic uint64_t requests, correct;
    uint64_t seed;
    pthread_t th;
} worker;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

static void *serve(void *arg) {
    worker *w = arg;
    rng r = rng_seed(w->seed);
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        /* the request: a flower of a known species, measured with noise */
        int row = (int)(rng_uniform(&r) * IRIS_N);
        double x[IRIS_D];
        for (int j = 0; j < IRIS_D; j++)
            x[j] = g_data.x[row][j] + NOISE_CM * rng_gauss(&r);
        double fetch_ns = 200000.0 * exp(0.6 * rng_gauss(&r)); /* log-normal, median 0.2 ms */

        int64_t t0 = now_ns();
        sleep_ns((int64_t)fetch_ns); /* feature fetch */
        int pred = softmax_predict(&g_model, x);
        int64_t t1 = now_ns();

        mlo_histogram_record(g_latency, (double)(t1 - t0) / 1e6); /* milliseconds */
        /* relaxed: counters, read approximately by the main thread */
        atomic_fetch_add_explicit(&w->requests, 1, memory_order_relaxed);
        if (pred == g_data.y[row])
            atomic_fetch_add_explicit(&w->correct, 1, memory_order_relaxed);
    }
    return NULL;
}

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    fprintf(stderr, "mlo: %s (%s)\n", msg, mlo_strerror(st));
}

static void totals(worker *w, int n, uint64_t *req, uint64_t *ok) {
    *req = *ok = 0;
    for (int i = 0; i < n; i++) {
        *req += atomic_load_explicit(&w[i].requests, memory_order_relaxed);
        *ok += atomic_load_explicit(&w[i].correct, memory_order_relaxed);
    }
}

int main(int argc, char **argv) {
    const char *data = MLO_IRIS_CSV, *model_path = NULL, *experiment = "iris-serving";
    double seconds = 3;
    int nthreads = 4;
    unsigned interval_ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seconds") && v)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "--threads") && v)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(a, "--interval-ms") && v)
            interval_ms = (unsigned)atoi(argv[++i]);
        else if (!strcmp(a, "--model") && v)
            model_path = argv[++i];
        else if (!strcmp(a, "--data") && v)
            data = argv[++i];
        else if (!strcmp(a, "--experiment") && v)
            experiment = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--seconds S] [--threads N] [--interval-ms MS] [--model FILE] "
                    "[--data iris.csv] [--experiment NAME]\n",
                    argv[0]);
            return 2;
        }
    }
    if (nthreads < 1 || nthreads > MAX_THREADS || seconds <= 0) {
        fprintf(stderr, "--threads 1..%d, --seconds > 0\n", MAX_THREADS);
        return 2;
    }

    if (iris_load(data, &g_data) != 0)
        return 1;
    if (model_path) {
        if (softmax_load(&g_model, model_path) != 0) {
            fprintf(stderr, "%s: not a model written by train_grid\n", model_path);
            return 1;
        }
    } else { /* train_grid's best configuration, on its split */
        int train[IRIS_N], test[IRIS_N], ntest;
        int ntrain = iris_split(&g_data, 42, 15, train, test, &ntest);
        rng r = rng_seed(43);
        softmax_init(&g_model, &g_data, train, ntrain);
        for (int e = 0; e < 60; e++) {
            double acc;
            softmax_epoch(&g_model, &g_data, train, ntrain, 16, 0.3, 0.0, &r, &acc);
        }
    }

    mlo_options_t *opts = mlo_options_new();
    mlo_options_set_error_callback(opts, on_error, NULL);
    /* a server must never block on its metrics: drop if the queue is full */
    mlo_options_set_full_policy(opts, MLO_FULL_DROP, 0);
    mlo_client_t *client;
    int st = mlo_client_open(opts, &client);
    mlo_options_free(opts);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo_client_open: %s (is MLFLOW_TRACKING_URI set?)\n", mlo_strerror(st));
        return 1;
    }
    char name[64];
    snprintf(name, sizeof name, "serve-%dthreads", nthreads);
    mlo_run_t *run;
    st = mlo_start_run(client, experiment, name, NULL, &run);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo_start_run: %s\n", mlo_strerror(st));
        mlo_client_close(client);
        return 1;
    }
    char run_id[40], buf[64];
    snprintf(run_id, sizeof run_id, "%s", mlo_run_id(run)); /* the handle dies with the client */
    snprintf(buf, sizeof buf, "%d", nthreads);
    mlo_log_param(run, "threads", buf);
    snprintf(buf, sizeof buf, "%g", seconds);
    mlo_log_param(run, "seconds", buf);
    snprintf(buf, sizeof buf, "%u", interval_ms);
    mlo_log_param(run, "interval_ms", buf);
    mlo_log_param(run, "model", model_path ? model_path : "softmax_regression lr=0.3 (built in)");
    snprintf(buf, sizeof buf, "%g", NOISE_CM);
    mlo_log_param(run, "noise_cm", buf);
    st = mlo_histogram_new(run, "latency_ms", interval_ms, &g_latency);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo_histogram_new: %s\n", mlo_strerror(st));
        mlo_client_close(client);
        return 1;
    }

    static worker w[MAX_THREADS];
    int64_t start = now_ns();
    for (int i = 0; i < nthreads; i++) {
        w[i].seed = 1000 + (uint64_t)i;
        if (pthread_create(&w[i].th, NULL, serve, &w[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }

    /* every interval: the prediction quality of the requests served in it */
    printf("%-8s %10s %10s %9s\n", "interval", "requests", "req/s", "accuracy");
    int64_t end = start + (int64_t)(seconds * 1e9), interval_ns = (int64_t)interval_ms * 1000000;
    uint64_t prev_req = 0, prev_ok = 0;
    for (int64_t step = 0;; step++) {
        int64_t t = start + (step + 1) * interval_ns;
        int last = t >= end;
        if (last)
            t = end;
        int64_t now = now_ns();
        if (t > now)
            sleep_ns(t - now);
        if (last)
            atomic_store(&g_stop, 1);
        if (last)
            for (int i = 0; i < nthreads; i++)
                pthread_join(w[i].th, NULL);
        uint64_t req, ok;
        totals(w, nthreads, &req, &ok);
        uint64_t dreq = req - prev_req, dok = ok - prev_ok;
        if (dreq) {
            mlo_log_metric(run, "accuracy", (double)dok / (double)dreq, step);
            printf("%-8lld %10llu %10.0f %9.4f\n", (long long)step, (unsigned long long)dreq,
                   (double)dreq * 1e9 / (double)(t - (start + step * interval_ns)),
                   (double)dok / (double)dreq);
        }
        prev_req = req;
        prev_ok = ok;
        if (last)
            break;
    }

    /* the histogram's last (partial) interval is emitted here */
    mlo_histogram_free(g_latency);
    uint64_t req, ok;
    totals(w, nthreads, &req, &ok);
    mlo_log_metric(run, "requests", (double)req, 0);
    mlo_end_run(run, MLO_RUN_FINISHED);
    st = mlo_client_flush(client, 30000);
    uint64_t sent = 0, failed = 0, dropped = 0;
    mlo_client_stat(client, MLO_STAT_SENT, &sent);
    mlo_client_stat(client, MLO_STAT_FAILED, &failed);
    mlo_client_stat(client, MLO_STAT_DROPPED, &dropped);
    int cst = mlo_client_close(client);
    printf("run %s: %llu requests in %.1f s from %d threads, accuracy %.4f; latency_ms.p50/.p95/"
           ".p99/.max/.count/.rate logged every %u ms\n",
           run_id, (unsigned long long)req, seconds, nthreads, req ? (double)ok / (double)req : 0.0,
           interval_ms);
    printf("events sent %llu, failed %llu, dropped %llu\n", (unsigned long long)sent,
           (unsigned long long)failed, (unsigned long long)dropped);
    return st == MLO_OK && cst == MLO_OK && failed == 0 && dropped == 0 ? 0 : 1;
}
