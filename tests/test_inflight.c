/*
 * test_inflight.c - several log-batch requests in flight at once
 * (mlo_options_set_max_inflight, issue 3 item 4), through the public API
 * against the test server.
 *
 * What it proves, with N = 4 unless said:
 *  - 50 runs logging metrics, params and a tag set ten times each (a repeated
 *    tag key closes a batch, so every run sends ten requests one after the
 *    other): every event arrives, nothing fails, the counters add up, each
 *    run's tag ends with its last value; the same in memory-only mode.
 *  - Overlap is real: with a 300 ms delay on every log-batch, the server's
 *    request log (each request's start time; each lasts at least the delay)
 *    shows several log-batch requests in flight at once with N = 4, never
 *    more than 4, and never two with N = 1; and the N = 4 client finishes the
 *    same work in less than half the N = 1 time (measured in the same test).
 *  - One run's requests never overlap: one run with four batches, a tag
 *    between them and its end, N = 4: at most one request of it at a time,
 *    runs/update after the last batch has finished, the tag's last value;
 *    and one worker is enough for it (one connection).
 *  - A conflicting param is isolated (400-splitting) while other runs'
 *    batches are in flight: exactly that entry fails, everything else lands.
 *  - mlo_client_flush returns only when every request in flight has
 *    finished: right after it the server has everything.
 *  - close with the server gone stays bounded (store and memory-only).
 *  - `mlo sync` (mlo__sync_store) of a local store sends through the workers
 *    too ($MLO_MAX_INFLIGHT): overlap seen, everything delivered.
 *  - the option's bounds and its environment variable.
 *
 * Server-side concurrency: the test server logs each request's start
 * (time_ms, before the fault's delay).  Every log-batch lasts at least the
 * delay d, so requests whose starts lie within a window shorter than d were
 * all in flight together at the last of those starts: the largest number of
 * starts inside any window of d - 100 ms is a lower bound of the concurrency
 * reached and, with one request at a time, is 1 exactly.
 */
#define _GNU_SOURCE
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
#include "mlo_config.h"
#include "mlo_sync.h"
#include "testutil.h"

static testsrv *srv;

/* ---- clients, each on a store of its own ---- */

typedef struct client_cfg {
    const char *uri;   /* NULL: the test server */
    unsigned inflight; /* 0: the default */
    int memory_only;
    unsigned close_ms;
    int long_retries; /* MLflow-like retries (for the server-gone tests) */
    tu_errors *cap;
} client_cfg;

static mlo_client_t *open_client(const client_cfg *k) {
    tu_client_cfg t = {.uri = k->uri ? k->uri : testsrv_uri(srv),
                       .inflight = k->inflight,
                       .memory_only = k->memory_only,
                       .close_ms = k->close_ms,
                       .errors = k->cap};
    if (k->long_retries) {
        t.retries = 10;
        t.backoff_s = 2;
        t.jitter_s = 1;
        t.timeout_s = 120;
    } else {
        t.retries = 3;
        t.backoff_s = 0.05;
        t.jitter_s = 0.01;
        t.timeout_s = 10;
    }
    return tu_open(&t);
}

/* ---- what the server stored, and its request log ---- */
static json_t *get_json(const char *path) {
    return tu_get_json(srv, path);
}

static const char *str_at(json_t *o, const char *k) {
    return tu_str(o, k);
}

/* Start times (ms) of the logged requests whose path ends with suffix (any
 * of two, b may be NULL), in log order; *n gets their number. */
static int64_t *starts(const char *a, const char *b, size_t *n) {
    json_t *log = get_json("/_test/requests");
    int64_t *t = calloc(json_array_size(log) + 1, sizeof *t);
    size_t i, k = 0;
    json_t *e;
    json_array_foreach(log, i, e) {
        const char *p = str_at(e, "path");
        size_t pl = p ? strlen(p) : 0;
        int hit = 0;
        if (p && pl >= strlen(a) && !strcmp(p + pl - strlen(a), a))
            hit = 1;
        if (p && b && pl >= strlen(b) && !strcmp(p + pl - strlen(b), b))
            hit = 1;
        if (hit)
            t[k++] = json_integer_value(json_object_get(e, "time_ms"));
    }
    json_decref(log);
    *n = k;
    return t;
}

/* Connections (the server's numbers) that requests ending with suffix came on. */
static int distinct_conns(const char *suffix) {
    json_t *log = get_json("/_test/requests");
    int64_t seen[64];
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e) {
        const char *p = str_at(e, "path");
        if (!p || strlen(p) < strlen(suffix) || strcmp(p + strlen(p) - strlen(suffix), suffix))
            continue;
        int64_t conn = json_integer_value(json_object_get(e, "conn"));
        int k = 0;
        while (k < n && seen[k] != conn)
            k++;
        if (k == n && n < 64)
            seen[n++] = conn;
    }
    json_decref(log);
    return n;
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* The most starts inside any window of `window_ms` (see the top). */
static int max_concurrent(int64_t *t, size_t n, int64_t window_ms) {
    qsort(t, n, sizeof *t, cmp_i64);
    int best = 0;
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        for (size_t j = i; j < n && t[j] - t[i] < window_ms; j++)
            k++;
        if (k > best)
            best = k;
    }
    return best;
}

static void clear_log(void) {
    free(testsrv_post(srv, "/_test/requests/clear", "{}", NULL));
}

static void clear_faults(void) {
    tu_faults_clear(srv);
}

static void delay_batches(int ms) {
    char f[200];
    snprintf(f, sizeof f,
             "[{\"path_prefix\": \"runs/log-batch\", \"delay_ms\": %d, \"count\": -1},"
             " {\"path_prefix\": \"runs/update\", \"delay_ms\": %d, \"count\": -1}]",
             ms, ms);
    assert_int_equal(testsrv_fault(srv, f), 0);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    return 0;
}

/* ---- the option ---- */

static void test_option(void **state) {
    (void)state;
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_max_inflight(NULL, 4), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_max_inflight(o, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_max_inflight(o, 17), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_max_inflight(o, 1), MLO_OK);
    assert_int_equal(mlo_options_set_max_inflight(o, 16), MLO_OK);
    mlo_config cfg;
    char err[256];
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    assert_int_equal(cfg.max_inflight, 16);
    mlo__config_free(&cfg);
    mlo_options_free(o);

    o = mlo_options_new();
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    assert_int_equal(cfg.max_inflight, MLO_MAX_INFLIGHT_DEFAULT);
    mlo__config_free(&cfg);
    setenv("MLO_MAX_INFLIGHT", "7", 1);
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    assert_int_equal(cfg.max_inflight, 7);
    mlo__config_free(&cfg);
    const char *bad[] = {"0", "17", "2.5", "x", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("MLO_MAX_INFLIGHT", bad[i], 1);
        assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_ERR_CONFIG);
        assert_non_null(strstr(err, "MLO_MAX_INFLIGHT"));
    }
    /* the option wins over the environment */
    assert_int_equal(mlo_options_set_max_inflight(o, 2), MLO_OK);
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    assert_int_equal(cfg.max_inflight, 2);
    mlo__config_free(&cfg);
    unsetenv("MLO_MAX_INFLIGHT");
    mlo_options_free(o);
}

/* ---- 50 runs, every event once, tags end with their last value ---- */

enum { RUNS = 50, METRICS = 120, PARAMS = 5, TAGSETS = 10 };

static void many_runs(int memory_only) {
    tu_errors cap;
    client_cfg k = {.inflight = 4, .memory_only = memory_only, .cap = &cap};
    mlo_client_t *c = open_client(&k);
    mlo_run_t *runs[RUNS];
    char name[32];
    for (int r = 0; r < RUNS; r++) {
        snprintf(name, sizeof name, "run-%d", r);
        assert_int_equal(mlo_start_run(c, "inflight", name, NULL, &runs[r]), MLO_OK);
    }
    /* interleaved: every run has events in every stage; each tag set ends a
     * batch of its run (the key is in it already) */
    char key[32], val[32];
    for (int i = 0; i < METRICS; i++) {
        for (int r = 0; r < RUNS; r++) {
            assert_int_equal(mlo_log_metric(runs[r], i % 2 ? "loss" : "acc", r * 1000.0 + i, i),
                             MLO_OK);
            if (i % (METRICS / TAGSETS) == 0) {
                snprintf(val, sizeof val, "v%d", i / (METRICS / TAGSETS));
                assert_int_equal(mlo_set_tag(runs[r], "phase", val), MLO_OK);
            }
            if (i < PARAMS) {
                snprintf(key, sizeof key, "p%d", i);
                snprintf(val, sizeof val, "%d", r * 10 + i);
                assert_int_equal(mlo_log_param(runs[r], key, val), MLO_OK);
            }
        }
    }
    for (int r = 0; r < RUNS; r++)
        assert_int_equal(mlo_end_run(runs[r], MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 120000), MLO_OK);
    tu_expect_counts(c, (uint64_t)RUNS * (METRICS + PARAMS + TAGSETS + 1), 0);
    assert_int_equal(cap.n, 0);

    json_t *d = tu_dump(srv);
    for (int r = 0; r < RUNS; r++) {
        json_t *run = tu_find_run(d, mlo_run_id(runs[r]));
        assert_int_equal(tu_count_metric(run, "loss"), METRICS / 2);
        assert_int_equal(tu_count_metric(run, "acc"), METRICS / 2);
        /* values are per run: nothing went to another run */
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(run, "metrics"), i, m) {
            double v = json_number_value(json_object_get(m, "value"));
            int64_t step = json_integer_value(json_object_get(m, "step"));
            assert_true(v == r * 1000.0 + (double)step);
        }
        snprintf(val, sizeof val, "v%d", TAGSETS - 1);
        assert_string_equal(str_at(json_object_get(run, "tags"), "phase"), val);
        json_t *params = json_object_get(run, "params");
        for (int p = 0; p < PARAMS; p++) {
            snprintf(key, sizeof key, "p%d", p);
            snprintf(val, sizeof val, "%d", r * 10 + p);
            assert_string_equal(str_at(params, key), val);
        }
        assert_string_equal(str_at(json_object_get(run, "info"), "status"), "FINISHED");
    }
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_many_runs_exactly_once(void **state) {
    (void)state;
    many_runs(0);
}

static void test_many_runs_memory_only(void **state) {
    (void)state;
    many_runs(1);
}

/* ---- overlap, N = 1 against N = 4 in the same test ---- */

enum { DELAY_MS = 300, OV_RUNS = 8 };

/* OV_RUNS runs log one metric each; returns the seconds from the first log
 * call to flush's return and the server-side concurrency of log-batch. */
static double overlap_once(unsigned n, int *conc, size_t *nbatches) {
    client_cfg k = {.inflight = n};
    mlo_client_t *c = open_client(&k);
    mlo_run_t *runs[OV_RUNS];
    for (int r = 0; r < OV_RUNS; r++)
        assert_int_equal(mlo_start_run(c, "overlap", NULL, NULL, &runs[r]), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    clear_log();
    delay_batches(DELAY_MS);
    double t0 = tu_now();
    for (int r = 0; r < OV_RUNS; r++)
        assert_int_equal(mlo_log_metric(runs[r], "m", r, 0), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    double el = tu_now() - t0;
    clear_faults();
    int64_t *t = starts("runs/log-batch", NULL, nbatches);
    *conc = max_concurrent(t, *nbatches, DELAY_MS - 100);
    free(t);
    tu_expect_counts(c, OV_RUNS, 0);
    json_t *d = tu_dump(srv);
    for (int r = 0; r < OV_RUNS; r++)
        assert_int_equal(tu_count_metric(tu_find_run(d, mlo_run_id(runs[r])), "m"), 1);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    return el;
}

static void test_overlap_happens(void **state) {
    (void)state;
    int c1, c4;
    size_t n1, n4;
    double t1 = overlap_once(1, &c1, &n1);
    clear_log();
    double t4 = overlap_once(4, &c4, &n4);
    fprintf(stderr,
            "  %d runs, %d ms per log-batch: N=1 %.2f s (%zu requests, at most %d at once), "
            "N=4 %.2f s (%zu requests, at most %d at once)\n",
            OV_RUNS, DELAY_MS, t1, n1, c1, t4, n4, c4);
    assert_true(n1 >= OV_RUNS);
    assert_true(n4 >= OV_RUNS);
    assert_int_equal(c1, 1);         /* one at a time, as before */
    assert_true(c4 >= 2 && c4 <= 4); /* several at once, never more than N */
    assert_true(t1 >= OV_RUNS * DELAY_MS / 1000.0 * 0.95);
    assert_true(t4 * 2 < t1); /* the same work in less than half the time */
}

/* ---- one run: its metrics batches overlap, its end comes after them ---- */

static void test_one_run_in_order(void **state) {
    (void)state;
    client_cfg k = {.inflight = 4};
    mlo_client_t *c = open_client(&k);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "order", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    clear_log();
    delay_batches(150);
    char v[16];
    for (int i = 0; i < 3500; i++) {
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
        if (i % 1000 == 0) {
            snprintf(v, sizeof v, "t%d", i / 1000);
            assert_int_equal(mlo_set_tag(run, "last", v), MLO_OK);
        }
    }
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    clear_faults();
    size_t nb, nu;
    int64_t *tb = starts("runs/log-batch", NULL, &nb);
    int64_t *tu = starts("runs/update", NULL, &nu);
    assert_true(nb >= 4);
    assert_int_equal(nu, 1);
    int64_t last = 0;
    for (size_t i = 0; i < nb; i++)
        last = tb[i] > last ? tb[i] : last;
    /* runs/update started after the last batch had ended (>= its start + delay) */
    assert_true(tu[0] >= last + 150 - 2);
    free(tb);
    free(tu);
    /* metrics are order-free on the server: one run's metrics batches may
     * be in flight together (issue 13; how many depends on how the log
     * calls met the writer's commits here, so it is shown, not asserted:
     * tests/test_sender.c proves the overlap in process) */
    int64_t *all = starts("runs/log-batch", NULL, &nb);
    fprintf(stderr, "  one run: at most %d log-batch requests at once, on %d connections\n",
            max_concurrent(all, nb, 150 - 50), distinct_conns("runs/log-batch"));
    free(all);
    tu_expect_counts(c, 3500 + 4 + 1, 0);
    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, mlo_run_id(run));
    assert_int_equal(tu_count_metric(r, "m"), 3500);
    assert_string_equal(str_at(json_object_get(r, "tags"), "last"), "t3");
    assert_string_equal(str_at(json_object_get(r, "info"), "status"), "FINISHED");
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- a param conflict isolated while other runs' batches are in flight ---- */

static void test_param_conflict_isolated(void **state) {
    (void)state;
    tu_errors cap;
    client_cfg k = {.inflight = 4, .cap = &cap};
    mlo_client_t *c = open_client(&k);
    enum { NR = 10 };
    mlo_run_t *runs[NR];
    for (int r = 0; r < NR; r++)
        assert_int_equal(mlo_start_run(c, "conflict", NULL, NULL, &runs[r]), MLO_OK);
    assert_int_equal(mlo_log_param(runs[0], "p", "1"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    /* the other runs' requests last long enough to be in flight meanwhile */
    assert_int_equal(testsrv_fault(srv, "{\"path_prefix\": \"runs/log-batch\", \"delay_ms\": 40, "
                                        "\"count\": -1}"),
                     0);
    clear_log();
    for (int i = 0; i < 20; i++) {
        for (int r = 1; r < NR; r++)
            assert_int_equal(mlo_log_metric(runs[r], "m", i, i), MLO_OK);
        assert_int_equal(mlo_log_metric(runs[0], "m", i, i), MLO_OK);
        if (i == 10) {
            assert_int_equal(mlo_log_param(runs[0], "p", "2"), MLO_OK); /* conflict */
            assert_int_equal(mlo_log_param(runs[0], "q", "ok"), MLO_OK);
            assert_int_equal(mlo_set_tag(runs[0], "t", "v"), MLO_OK);
        }
    }
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    clear_faults();
    tu_expect_counts(c, 1 + NR * 20 + 3, 1);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, "\"p\""), 1);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, NULL), 1);
    size_t nb;
    int64_t *t = starts("runs/log-batch", NULL, &nb);
    int conc = max_concurrent(t, nb, 40);
    free(t);
    fprintf(stderr, "  %zu log-batch requests, up to %d at once\n", nb, conc);
    assert_true(conc <= 4);
    json_t *d = tu_dump(srv);
    json_t *r0 = tu_find_run(d, mlo_run_id(runs[0]));
    assert_string_equal(str_at(json_object_get(r0, "params"), "p"), "1");
    assert_string_equal(str_at(json_object_get(r0, "params"), "q"), "ok");
    assert_string_equal(str_at(json_object_get(r0, "tags"), "t"), "v");
    for (int r = 0; r < NR; r++)
        assert_int_equal(tu_count_metric(tu_find_run(d, mlo_run_id(runs[r])), "m"), 20);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- flush waits for every request in flight ---- */

static void test_flush_waits_for_inflight(void **state) {
    (void)state;
    client_cfg k = {.inflight = 4};
    mlo_client_t *c = open_client(&k);
    enum { NR = 12 };
    mlo_run_t *runs[NR];
    for (int r = 0; r < NR; r++)
        assert_int_equal(mlo_start_run(c, "flush", NULL, NULL, &runs[r]), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    for (int round = 0; round < 3; round++) {
        /* a different delay per round: the last request in flight is a
         * different one each time */
        char f[128];
        snprintf(f, sizeof f,
                 "{\"path_prefix\": \"runs/log-batch\", \"delay_ms\": %d, "
                 "\"count\": -1}",
                 100 + 150 * round);
        assert_int_equal(testsrv_fault(srv, f), 0);
        for (int r = 0; r < NR; r++)
            assert_int_equal(mlo_log_metric(runs[r], "f", r, round), MLO_OK);
        assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
        /* no polling: everything flushed is on the server already */
        json_t *d = tu_dump(srv);
        for (int r = 0; r < NR; r++)
            assert_int_equal(tu_count_metric(tu_find_run(d, mlo_run_id(runs[r])), "f"),
                             (size_t)round + 1);
        json_decref(d);
        uint64_t sent;
        mlo_client_stat(c, MLO_STAT_SENT, &sent);
        assert_int_equal(sent, (uint64_t)NR * (round + 1));
        clear_faults();
    }
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- close with the server gone stays bounded ---- */

static void close_bounded(int memory_only) {
    testsrv *own = testsrv_start("");
    assert_non_null(own);
    client_cfg k = {.uri = testsrv_uri(own),
                    .inflight = 4,
                    .memory_only = memory_only,
                    .close_ms = 500,
                    .long_retries = 1};
    mlo_client_t *c = open_client(&k);
    enum { NR = 20 };
    mlo_run_t *runs[NR];
    for (int r = 0; r < NR; r++)
        assert_int_equal(mlo_start_run(c, NULL, NULL, NULL, &runs[r]), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    testsrv_stop(own);
    for (int i = 0; i < 50; i++)
        for (int r = 0; r < NR; r++)
            assert_int_equal(mlo_log_metric(runs[r], "x", i, i), MLO_OK);
    double t0 = tu_now();
    assert_int_equal(mlo_client_flush(c, 200), MLO_ERR_TIMEOUT);
    int st = mlo_client_close(c);
    double el = tu_now() - t0;
    fprintf(stderr, "  %s: flush + close took %.2f s (close: %s)\n",
            memory_only ? "memory only" : "store", el, mlo_strerror(st));
    assert_int_equal(st, MLO_ERR_TIMEOUT);
    assert_true(el < 3.0);
}

static void test_close_bounded_server_gone(void **state) {
    (void)state;
    close_bounded(0);
}

static void test_close_bounded_server_gone_memory(void **state) {
    (void)state;
    close_bounded(1);
}

/* ---- mlo sync through the workers ---- */

static void test_sync_inflight(void **state) {
    (void)state;
    char *store = tu_new_path("store");
    tu_client_cfg k = {.store = store}; /* no URI: the local store */
    mlo_client_t *c = tu_open(&k);
    enum { NR = 12 };
    mlo_run_t *runs[NR];
    char lids[NR][40];
    for (int r = 0; r < NR; r++) {
        assert_int_equal(mlo_start_run(c, "offline", NULL, NULL, &runs[r]), MLO_OK);
        snprintf(lids[r], sizeof lids[r], "%s", mlo_run_id(runs[r]));
        for (int i = 0; i < 30; i++)
            assert_int_equal(mlo_log_metric(runs[r], "s", i, i), MLO_OK);
        assert_int_equal(mlo_set_tag(runs[r], "k", "a"), MLO_OK);
        assert_int_equal(mlo_set_tag(runs[r], "k", "b"), MLO_OK);
        assert_int_equal(mlo_end_run(runs[r], MLO_RUN_FINISHED), MLO_OK);
    }
    assert_int_equal(mlo_client_close(c), MLO_OK);

    delay_batches(DELAY_MS);
    setenv("MLO_MAX_INFLIGHT", "4", 1);
    char err[512] = "";
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    unsetenv("MLO_MAX_INFLIGHT");
    clear_faults();
    assert_int_equal(st, MLO_OK);
    size_t nb;
    int64_t *t = starts("runs/log-batch", NULL, &nb);
    int conc = max_concurrent(t, nb, DELAY_MS - 100);
    free(t);
    fprintf(stderr, "  sync: %zu log-batch requests, up to %d at once\n", nb, conc);
    assert_true(conc >= 2 && conc <= 4);
    json_t *d = tu_dump(srv);
    size_t i;
    json_t *r;
    int found = 0;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        json_t *tags = json_object_get(r, "tags");
        const char *lid = str_at(tags, "mlo.local_id");
        for (int k = 0; lid && k < NR; k++)
            if (!strcmp(lid, lids[k])) {
                found++;
                assert_int_equal(tu_count_metric(r, "s"), 30);
                assert_string_equal(str_at(tags, "k"), "b");
                assert_string_equal(str_at(json_object_get(r, "info"), "status"), "FINISHED");
            }
    }
    assert_int_equal(found, NR);
    json_decref(d);
    free(store);
}

int main(int argc, char **argv) {
    tu_init("inflight");
    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_option, setup),
        cmocka_unit_test_setup(test_many_runs_exactly_once, setup),
        cmocka_unit_test_setup(test_many_runs_memory_only, setup),
        cmocka_unit_test_setup(test_overlap_happens, setup),
        cmocka_unit_test_setup(test_one_run_in_order, setup),
        cmocka_unit_test_setup(test_param_conflict_isolated, setup),
        cmocka_unit_test_setup(test_flush_waits_for_inflight, setup),
        cmocka_unit_test_setup(test_close_bounded_server_gone, setup),
        cmocka_unit_test_setup(test_close_bounded_server_gone_memory, setup),
        cmocka_unit_test_setup(test_sync_inflight, setup),
    };
    int rc = tu_run_group("test_inflight", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
