/*
 * bench_ceiling.c - how much of the server's capacity mlo uses (issue 13):
 * side by side in one run, against the loopback test server with every
 * log-batch taking D ms (a server whose workers each take D ms per request;
 * the test server is threaded, so delays overlap as several workers' would):
 *
 *   raw   the ceiling: pre-encoded 1,000-metric log-batch bodies (encoded
 *         before the clock starts) posted by N threads, each on its own
 *         connection (the library's HTTP layer, no batching, no store);
 *   mlo   the same metrics through the public API (durable store, N
 *         requests in flight), from the first log call to mlo_client_flush's
 *         return.
 *
 * Shapes: one run (100,000 metrics) and 16 interleaved runs (6,250 each).
 * The figure is mlo's events/s over raw's; the target is >= 0.9.
 *
 * Usage: bench_ceiling [delay_ms] [N]   (defaults 20 ms, 4)
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "mlo.h"
#include "mlo_api.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_http.h"
#include "mlo_payload.h"
#include "testsrv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTAL 100000
#define PER_REQ 1000

static void die(const char *what, int st) {
    fprintf(stderr, "bench_ceiling: %s: %s\n", what, mlo_strerror(st));
    exit(1);
}

/* ---- raw: pre-encoded bodies on N connections ---- */

typedef struct raw_job {
    const char *uri;
    mlo_buf *bodies;
    size_t nbodies;
    _Atomic size_t *next;
    int failed;
} raw_job;

static void *raw_thread(void *arg) {
    raw_job *j = arg;
    mlo_http_config hc = {.base_uri = j->uri, .max_retries = 0, .timeout_s = 60};
    mlo_http *h = mlo__http_new(&hc);
    for (;;) {
        size_t i = atomic_fetch_add(j->next, 1);
        if (i >= j->nbodies)
            break;
        mlo_http_result r;
        if (mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, j->bodies[i].data,
                           j->bodies[i].len, 0, &r) != MLO_OK ||
            r.http_code != 200)
            j->failed = 1;
        mlo__http_result_free(&r);
    }
    mlo__http_free(h);
    return NULL;
}

/* Encodes TOTAL metrics of runs (interleaved) into bodies of PER_REQ. */
static mlo_buf *encode(mlo_api *api, char **run_ids, int runs, size_t *n) {
    size_t per_run = TOTAL / (size_t)runs, per_body = PER_REQ;
    size_t nb = (per_run + per_body - 1) / per_body * (size_t)runs;
    mlo_buf *bodies = calloc(nb, sizeof *bodies);
    const mlo_rec **recs = calloc(per_body, sizeof *recs);
    char *arena = calloc(per_body, 128);
    size_t k = 0;
    for (size_t start = 0; start < per_run; start += per_body)
        for (int r = 0; r < runs; r++) {
            size_t m = per_run - start < per_body ? per_run - start : per_body;
            for (size_t i = 0; i < m; i++) {
                mlo_rec *rec = (mlo_rec *)(arena + i * 128);
                memset(rec, 0, sizeof *rec);
                rec->type = MLO_REC_METRIC;
                rec->key_len = 4;
                rec->value = 0.5 + 1.0 / (double)(start + i + 3);
                rec->step = (int64_t)(start + i);
                rec->timestamp = 1780000000000LL + (int64_t)(start + i);
                memcpy(mlo__payload_staged_key(rec), "loss", 5);
                mlo__payload_staged_val(rec)[0] = 0;
                recs[i] = rec;
            }
            if (mlo__api_encode_log_batch(api, run_ids[r], recs, m, &bodies[k++]) != MLO_OK)
                die("encode", MLO_ERR_NO_MEMORY);
        }
    free(recs);
    free(arena);
    *n = k;
    return bodies;
}

static double raw_rate(const char *uri, int runs, unsigned n) {
    /* the runs, then the bodies, before the clock starts */
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_config cfg;
    char err[256];
    int st = mlo__config_resolve(o, &cfg, err, sizeof err);
    mlo_options_free(o);
    if (st)
        die(err, st);
    static mlo_env env;
    mlo__env_init(&env, &cfg);
    mlo_api *api = mlo__api_new(&env);
    char *ids[16];
    for (int r = 0; r < runs; r++) {
        mlo_api_error e;
        if ((st = mlo__api_create_run(api, "0", "raw", 1780000000000LL, NULL, 0, &ids[r], &e)))
            die("create run", st);
    }
    size_t nb;
    mlo_buf *bodies = encode(api, ids, runs, &nb);
    _Atomic size_t next = 0;
    raw_job jobs[16];
    pthread_t th[16];
    int64_t t0 = bench_mono_ns();
    for (unsigned i = 0; i < n; i++) {
        jobs[i] = (raw_job){.uri = uri, .bodies = bodies, .nbodies = nb, .next = &next};
        pthread_create(&th[i], NULL, raw_thread, &jobs[i]);
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    for (unsigned i = 0; i < n; i++)
        if (jobs[i].failed)
            die("a raw request failed", MLO_ERR_SERVER);
    for (size_t i = 0; i < nb; i++)
        mlo__buf_free(&bodies[i]);
    free(bodies);
    for (int r = 0; r < runs; r++)
        free(ids[r]);
    mlo__api_free(api);
    mlo__config_free(&cfg);
    return TOTAL / s;
}

/* ---- mlo: the public API ---- */

static double mlo_rate(const char *uri, int runs, unsigned n, uint64_t *requests) {
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, bench_store_dir());
    mlo_options_set_queue_bytes(o, (size_t)64 << 20);
    mlo_options_set_max_inflight(o, n);
    mlo_client_t *c;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st)
        die("mlo_client_open", st);
    mlo_run_t *r[16];
    for (int k = 0; k < runs; k++)
        if ((st = mlo_start_run(c, "bench_ceiling", NULL, NULL, &r[k])))
            die("mlo_start_run", st);
    if ((st = mlo_client_flush(c, 600000)))
        die("mlo_client_flush", st);
    uint64_t req0, req1;
    mlo_client_stat(c, MLO_STAT_REQUESTS, &req0);
    int per_run = TOTAL / runs;
    int64_t t0 = bench_mono_ns();
    for (int i = 0; i < per_run; i++)
        for (int k = 0; k < runs; k++)
            mlo_log_metric(r[k], "loss", 0.5 + 1.0 / (double)(i + 3), i);
    if ((st = mlo_client_flush(c, 1200000)))
        die("mlo_client_flush", st);
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    mlo_client_stat(c, MLO_STAT_REQUESTS, &req1);
    *requests = req1 - req0;
    mlo_client_close(c);
    return TOTAL / s;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int delay = argc > 1 ? atoi(argv[1]) : 20;
    unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
    bench_print_machine();
    bench_print_load();
    testsrv *srv = testsrv_start("");
    if (!srv)
        die("cannot start the test server", MLO_ERR_INTERNAL);
    const char *uri = testsrv_uri(srv);
    char rule[160];
    snprintf(rule, sizeof rule,
             "{\"path_prefix\": \"runs/log-batch\", \"delay_ms\": %d, \"count\": -1}", delay);
    printf("ceiling: %d metrics per shape, %d ms per log-batch on the test server, N = %u "
           "connections / requests in flight; median of 3\n",
           TOTAL, delay, n);
    printf("%-22s | %12s %12s | %8s %9s\n", "shape", "raw ev/s", "mlo ev/s", "mlo/raw", "requests");
    static const int shapes[2] = {1, 16};
    for (int sh = 0; sh < 2; sh++) {
        double raw[3], mlo[3];
        uint64_t reqs = 0;
        for (int k = 0; k < 3; k++) {
            free(testsrv_post(srv, "/_test/reset", "{}", NULL));
            if (testsrv_fault(srv, rule) != 0)
                die("fault rule", MLO_ERR_INTERNAL);
            raw[k] = raw_rate(uri, shapes[sh], n);
            free(testsrv_post(srv, "/_test/reset", "{}", NULL));
            if (testsrv_fault(srv, rule) != 0)
                die("fault rule", MLO_ERR_INTERNAL);
            mlo[k] = mlo_rate(uri, shapes[sh], n, &reqs);
        }
        double r = bench_median(raw, 3), m = bench_median(mlo, 3);
        char name[32];
        snprintf(name, sizeof name, "%d run%s", shapes[sh], shapes[sh] > 1 ? "s interleaved" : "");
        printf("%-22s | %12.0f %12.0f | %8.2f %9llu\n", name, r, m, m / r,
               (unsigned long long)reqs);
    }
    testsrv_stop(srv);
    bench_store_cleanup();
    return 0;
}
