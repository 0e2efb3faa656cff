/*
 * test_hist.c - unit tests of the histograms without a server: the public
 * calls' argument checks on a real client (a local store), and the engine
 * (src/common/mlo_hists.c) on a set of the test's own, whose writer's part
 * is played by calling mlo__hists_tick with a clock the test controls and an
 * emit function that collects the metrics.
 *
 * Checked: argument validation; every quantile of known distributions within
 * the documented bound (1/101 = 0.990 %, under the 1 % promised) of the exact
 * order statistic of rank floor(q (n - 1)); values on and next to every bucket
 * boundary of the range; exact counts from 4 threads x 1M values; bank swaps
 * while 4 threads record lose and duplicate nothing; steps, rate and the
 * tick's requested wake-up times.
 *
 * MLO_STRESS_EVENTS (environment) sets the values per thread of the
 * multithreaded tests (default 1000000); sanitizer runs may lower it.
 * cmocka's asserts are not thread safe: worker threads only record.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlo.h"
#include "mlo_clock.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_hists.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOUND (1.0 / 101.0) /* proven in mlo_hists.c */
#define GRACE_NS 2000000    /* mlo_hists.c's swap -> drain delay */

/* ---- a set of histograms of the test's own, and a real run ------------------ */

static mlo_config g_cfg; /* zero: the system clock, no callback */
static mlo_env g_env;
static mlo_hists g_set;
static mlo_client_t *g_client; /* a client on a local store: for the public calls' checks */
static mlo_run_t *g_run;
static char g_store[64];

static int setup(void **state) {
    (void)state;
    mlo__env_init(&g_env, &g_cfg);
    mlo__hists_init(&g_set, &g_env);
    snprintf(g_store, sizeof g_store, "/tmp/mlo-test-hist-XXXXXX");
    assert_non_null(mkdtemp(g_store));
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_store_dir(o, g_store), MLO_OK);
    assert_int_equal(mlo_client_open(o, &g_client), MLO_OK);
    mlo_options_free(o);
    assert_int_equal(mlo_start_run(g_client, "hist", "r", NULL, &g_run), MLO_OK);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    assert_null(g_set.head); /* every test frees its histograms */
    mlo__hists_destroy(&g_set);
    mlo_end_run(g_run, MLO_RUN_FINISHED);
    assert_int_equal(mlo_client_close(g_client), MLO_OK);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_store);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int discard(void *ctx, uint32_t run, const char *key, size_t klen, double value,
                   int64_t step, int64_t ts_ms) {
    (void)ctx, (void)run, (void)key, (void)klen, (void)value, (void)step, (void)ts_ms;
    return MLO_OK;
}

/* A histogram of run index 7 in the test's set. */
static int hnew(const char *key, unsigned interval_ms, mlo_histogram_t **out) {
    *out = mlo__hists_create(&g_set, NULL, 7, key, strlen(key), (int64_t)interval_ms * 1000000);
    return *out ? MLO_OK : MLO_ERR_NO_MEMORY;
}

static int hfree(mlo_histogram_t *h) {
    if (!mlo__hists_unlink(h))
        return MLO_ERR_INVALID_ARGUMENT;
    return mlo__hists_finish(h, discard, NULL);
}

/* ---- collecting what a tick emits ------------------------------------------- */

typedef struct point {
    char key[256];
    uint32_t run;
    double value;
    int64_t step, ts;
} point;

typedef struct sink {
    size_t n, cap;
    point *p;
} sink;

static int emit(void *ctx, uint32_t run, const char *key, size_t klen, double value, int64_t step,
                int64_t ts_ms) {
    (void)klen;
    sink *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->p = realloc(s->p, s->cap * sizeof *s->p);
    }
    point *p = &s->p[s->n++];
    snprintf(p->key, sizeof p->key, "%s", key);
    p->run = run;
    p->value = value;
    p->step = step;
    p->ts = ts_ms;
    return MLO_OK;
}

/* The last emitted value of key (NAN when none). */
static double got(const sink *s, const char *key) {
    for (size_t i = s->n; i-- > 0;)
        if (!strcmp(s->p[i].key, key))
            return s->p[i].value;
    return NAN;
}

/* Ends the interval running at clock *t: swap at the next due time, then drain. */
static void end_interval(mlo_histogram_t *h, int64_t *t, int64_t interval_ns, sink *s) {
    (void)h;
    *t += interval_ns;
    mlo__hists_tick(&g_set, *t, emit, s);
    *t += GRACE_NS;
    mlo__hists_tick(&g_set, *t, emit, s);
}

/* cmocka 1.1.5 has no assert_double_equal */
#define assert_near(a, b, eps) assert_near_at((a), (b), (eps), #a, __LINE__)
static void assert_near_at(double a, double b, double eps, const char *what, int line) {
    if (!(fabs(a - b) <= eps))
        fail_msg("line %d: %s = %.17g, expected %.17g (+- %g)", line, what, a, b, eps);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static double uniform01(void) {
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double gauss(void) {
    double u = uniform01() + 1e-300, v = uniform01();
    return sqrt(-2 * log(u)) * cos(2 * 3.14159265358979323846 * v);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t stress_events(void) {
    const char *e = getenv("MLO_STRESS_EVENTS");
    long n = e ? atol(e) : 0;
    /* every access instrumented under a sanitizer: a tenth (the threads
     * still interleave thousands of times; volume adds nothing they watch) */
    const size_t dflt = TU_SANITIZED ? 100000 : 1000000;
    return n > 0 ? (size_t)n : dflt;
}

/* ---- argument validation ------------------------------------------------------ */

static void test_arguments(void **state) {
    (void)state;
    mlo_histogram_t *h = (mlo_histogram_t *)1;
    assert_int_equal(mlo_histogram_new(g_run, "lat", 1000, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_new(NULL, "lat", 1000, &h), MLO_ERR_INVALID_ARGUMENT);
    assert_null(h);
    assert_int_equal(mlo_histogram_new(g_run, NULL, 1000, &h), MLO_ERR_INVALID_ARGUMENT);
    uint32_t bad[64] = {0}; /* not a run handle */
    assert_int_equal(mlo_histogram_new((mlo_run_t *)bad, "lat", 1000, &h),
                     MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_new(g_run, "", 1000, &h), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_histogram_new(g_run, "a//b", 1000, &h), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_histogram_new(g_run, "../x", 1000, &h), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_histogram_new(g_run, "lat!", 1000, &h), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_histogram_new(g_run, "l\xc3\x28", 1000, &h), MLO_ERR_INVALID_UTF8);
    assert_null(h);

    char key[300];
    memset(key, 'k', sizeof key);
    key[241] = 0; /* 241 characters: the suffixes would not fit */
    assert_int_equal(mlo_histogram_new(g_run, key, 1000, &h), MLO_ERR_INVALID_KEY);
    key[240] = 0;
    assert_int_equal(mlo_histogram_new(g_run, key, 1000, &h), MLO_OK);
    assert_int_equal(mlo_histogram_free(h), MLO_OK);

    assert_int_equal(mlo_histogram_new(g_run, "lat", 99, &h), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_new(g_run, "lat", 3600001, &h), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_new(g_run, "lat", 0, &h), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_new(g_run, "lat", 100, &h), MLO_OK);
    assert_int_equal(mlo_histogram_free(h), MLO_OK);
    assert_int_equal(mlo_histogram_new(g_run, "a/b.c d:e-f_g", 3600000, &h), MLO_OK);
    assert_int_equal(mlo_histogram_free(h), MLO_OK);
    assert_int_equal(hnew("a/b.c d:e-f_g", 3600000, &h), MLO_OK);

    assert_int_equal(mlo_histogram_record(NULL, 1.0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_record(h, -1.0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_record(h, -1e-300), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_record(h, -INFINITY), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_record(h, NAN), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_histogram_record(h, 0.0), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, -0.0), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, 5e-324), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, 1e-9), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, 3.0), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, 1e12), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, DBL_MAX), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, INFINITY), MLO_OK);
    uint64_t rejected = mlo__env_stat_get(&g_env, MLO_STAT_REJECTED);
    assert_true(rejected >= 4);

    /* what that interval reports: 7 finite values, +Infinity in max only */
    sink s = {0};
    int64_t t = mlo__clock_mono(NULL);
    end_interval(h, &t, 3600000000000, &s);
    assert_int_equal(s.n, 6);
    assert_near(got(&s, "a/b.c d:e-f_g.count"), 7, 0);
    assert_true(isinf(got(&s, "a/b.c d:e-f_g.max")));
    assert_near(got(&s, "a/b.c d:e-f_g.p50"), 1e-9, 1e-9 * BOUND);
    /* ranks floor(q * 6) = 3, 5, 5 of 0, 0, 5e-324, 1e-9, 3, 1e12, DBL_MAX */
    assert_near(got(&s, "a/b.c d:e-f_g.p95"), 1e12, 1e12 * BOUND);
    assert_near(got(&s, "a/b.c d:e-f_g.p99"), 1e12, 1e12 * BOUND);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.p[i].run, 7);
        assert_int_equal(s.p[i].step, 0);
    }
    /* values over 2^40 (the overflow bucket) are reported as the max */
    s.n = 0;
    assert_int_equal(mlo_histogram_record(h, 2e12), MLO_OK);
    assert_int_equal(mlo_histogram_record(h, 3e15), MLO_OK);
    end_interval(h, &t, 3600000000000, &s);
    assert_near(got(&s, "a/b.c d:e-f_g.p50"), 3e15, 0);
    assert_near(got(&s, "a/b.c d:e-f_g.count"), 2, 0);
    free(s.p);
    assert_int_equal(hfree(h), MLO_OK);
    assert_int_equal(mlo_histogram_free(NULL), MLO_OK);
}

/* ---- quantiles of known distributions ------------------------------------------ */

static double g_worst; /* worst relative error seen by check_quantiles */

static void check_quantiles(const char *name, double *v, size_t n) {
    mlo_histogram_t *h;
    assert_int_equal(hnew("d", 1000, &h), MLO_OK);
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mlo_histogram_record(h, v[i]), MLO_OK);
        if (v[i] > mx)
            mx = v[i];
    }
    sink s = {0};
    int64_t t = mlo__clock_mono(NULL);
    end_interval(h, &t, 1000000000, &s);
    qsort(v, n, sizeof *v, cmp_double);
    static const double qs[3] = {0.50, 0.95, 0.99};
    static const char *const keys[3] = {"d.p50", "d.p95", "d.p99"};
    for (int k = 0; k < 3; k++) {
        double exact = v[(size_t)(qs[k] * (double)(n - 1))];
        double est = got(&s, keys[k]);
        double err = exact >= 1e-9 ? fabs(est - exact) / exact : est;
        if (err > g_worst)
            g_worst = err;
        if (err > BOUND)
            fail_msg("%s %s: %.17g for exact %.17g (relative error %.4g%%)", name, keys[k], est,
                     exact, 100 * err);
    }
    assert_near(got(&s, "d.max"), mx, 0);
    assert_near(got(&s, "d.count"), (double)n, 0);
    free(s.p);
    assert_int_equal(hfree(h), MLO_OK);
}

static void test_distributions(void **state) {
    (void)state;
    const size_t n = 200000;
    double *v = malloc(n * sizeof *v);
    for (int seed = 1; seed <= 3; seed++) {
        rng_state = (uint64_t)seed * 0x2545f4914f6cdd1du;
        for (size_t i = 0; i < n; i++)
            v[i] = 100 * uniform01();
        check_quantiles("uniform(0,100)", v, n);
        for (size_t i = 0; i < n; i++)
            v[i] = -10 * log(1 - uniform01()); /* exponential, mean 10 */
        check_quantiles("exponential(10)", v, n);
        for (size_t i = 0; i < n; i++)
            v[i] = exp(1.0 + 2.0 * gauss()); /* log-normal(1, 2) */
        check_quantiles("lognormal(1,2)", v, n);
        for (size_t i = 0; i < n; i++)
            v[i] = 42.0;
        check_quantiles("constant 42", v, n);
        for (size_t i = 0; i < n; i++)
            v[i] = pow(10, -6 + 15 * uniform01()); /* log-uniform over 1e-6 .. 1e9 */
        check_quantiles("loguniform(1e-6,1e9)", v, n);
        for (size_t i = 0; i < n; i++)
            v[i] = uniform01() < 0.97 ? 2 + uniform01() : 200 + 50 * uniform01(); /* bimodal */
        check_quantiles("bimodal", v, n);
    }
    /* small samples: every rank matters */
    for (int round = 0; round < 2000; round++) {
        size_t k = 1 + (size_t)(uniform01() * 7);
        for (size_t i = 0; i < k; i++)
            v[i] = pow(10, -9 + 21 * uniform01());
        check_quantiles("small sample", v, k);
    }
    printf("# worst relative error of p50/p95/p99: %.4f%% (bound %.4f%%)\n", 100 * g_worst,
           100 * BOUND);
    free(v);
}

/* Every bucket boundary of the range, and its neighbours: recorded alone with
 * +Infinity (which only raises max), so the quantile is the bucket's value
 * without the lowering to max. */
static void test_boundaries(void **state) {
    (void)state;
    mlo_histogram_t *h;
    assert_int_equal(hnew("b", 1000, &h), MLO_OK);
    sink s = {0};
    int64_t t = mlo__clock_mono(NULL);
    double worst = 0;
    size_t checked = 0;
    for (int e = -30; e <= 39; e++)
        for (int sub = 0; sub <= 50; sub++) {
            double x0 = ldexp(1.0 + sub / 50.0, e);
            double xs[3] = {nextafter(x0, 0), x0, nextafter(x0, INFINITY)};
            for (int k = 0; k < 3; k++) {
                double x = xs[k];
                if (x < 1e-9 || x >= 0x1p40)
                    continue;
                assert_int_equal(mlo_histogram_record(h, x), MLO_OK);
                assert_int_equal(mlo_histogram_record(h, INFINITY), MLO_OK);
                s.n = 0;
                end_interval(h, &t, 1000000000, &s);
                double est = got(&s, "b.p50");
                double err = fabs(est - x) / x;
                if (err > worst)
                    worst = err;
                if (err > BOUND)
                    fail_msg("value %.17g reported as %.17g (%.4g%%)", x, est, 100 * err);
                assert_near(got(&s, "b.count"), 1, 0);
                checked++;
            }
        }
    printf("# %zu values at bucket boundaries: worst relative error %.4f%%\n", checked,
           100 * worst);
    /* the bound is tight: the widest bucket's edges reach it */
    assert_true(worst > 0.98 * BOUND);
    assert_true(checked > 10000);
    free(s.p);
    assert_int_equal(hfree(h), MLO_OK);
}

/* ---- many threads --------------------------------------------------------------- */

typedef struct worker {
    mlo_histogram_t *h;
    size_t n;
    size_t yield_every; /* 0: never */
    uint64_t seed;
    double max;
    size_t failed;
    atomic_int *running;
} worker;

static void *record_main(void *arg) {
    worker *w = arg;
    uint64_t x = w->seed;
    for (size_t i = 0; i < w->n; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        /* latencies: 0.1 .. ~400 ms, spread over many buckets */
        double v = 0.1 * (double)(1 + ((x >> 33) & 0xfff));
        if (v > w->max)
            w->max = v;
        if (mlo_histogram_record(w->h, v) != MLO_OK)
            w->failed++;
        if (w->yield_every && i % w->yield_every == 0)
            sched_yield(); /* on few cores, let the ticker in between values */
    }
    atomic_fetch_sub(w->running, 1);
    return NULL;
}

static void run_workers(mlo_histogram_t *h, worker *w, pthread_t *th, int nt, size_t n,
                        size_t yield_every, atomic_int *running) {
    atomic_store(running, nt);
    for (int i = 0; i < nt; i++) {
        w[i] = (worker){.h = h,
                        .n = n,
                        .yield_every = yield_every,
                        .seed = 1000u + (uint64_t)i,
                        .running = running};
        assert_int_equal(pthread_create(&th[i], NULL, record_main, &w[i]), 0);
    }
}

static void test_threads_count_exactly(void **state) {
    (void)state;
    const int nt = 4;
    size_t n = stress_events();
    mlo_histogram_t *h;
    assert_int_equal(hnew("mt", 1000, &h), MLO_OK);
    worker w[4];
    pthread_t th[4];
    atomic_int running;
    run_workers(h, w, th, nt, n, 0, &running);
    double mx = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
        if (w[i].max > mx)
            mx = w[i].max;
    }
    sink s = {0};
    int64_t t = mlo__clock_mono(NULL);
    end_interval(h, &t, 1000000000, &s);
    assert_near(got(&s, "mt.count"), (double)(nt * n), 0);
    assert_near(got(&s, "mt.max"), mx, 0);
    free(s.p);
    assert_int_equal(hfree(h), MLO_OK);
}

static void test_swaps_lose_nothing(void **state) {
    (void)state;
    const int nt = 4;
    size_t n = stress_events();
    mlo_histogram_t *h;
    assert_int_equal(hnew("sw", 100, &h), MLO_OK);
    worker w[4];
    pthread_t th[4];
    atomic_int running;
    sink s = {0};
    int64_t t = mlo__clock_mono(NULL);
    run_workers(h, w, th, nt, n, 1024, &running);
    size_t intervals = 0;
    /* the ticker swaps and drains as fast as it can while the workers record */
    while (atomic_load(&running) > 0) {
        end_interval(h, &t, 100000000, &s);
        intervals++;
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    /* two more intervals drain both banks */
    end_interval(h, &t, 100000000, &s);
    end_interval(h, &t, 100000000, &s);
    double total = 0;
    int64_t last_step = -1;
    size_t reports = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (strcmp(s.p[i].key, "sw.count"))
            continue;
        total += s.p[i].value;
        assert_true(s.p[i].step > last_step);
        last_step = s.p[i].step;
        reports++;
    }
    printf("# %zu intervals ticked while recording, %zu reported, %.0f values\n", intervals,
           reports, total);
    assert_near(total, (double)(nt * n), 0);
    assert_true(reports >= 4); /* the swaps really happened under recording */
    free(s.p);
    assert_int_equal(hfree(h), MLO_OK);
}

/* ---- intervals: steps, rate, empty intervals, wake-up times --------------------- */

static void test_steps_and_rate(void **state) {
    (void)state;
    mlo_histogram_t *h;
    int64_t t0 = mlo__clock_mono(NULL);
    assert_int_equal(hnew("lat", 1000, &h), MLO_OK);
    int64_t t1 = mlo__clock_mono(NULL); /* the histogram's t0 is in [t0, t1] */
    sink s = {0};

    /* before the first due time: nothing, and the wait asked for is at most I */
    int64_t wait = mlo__hists_tick(&g_set, t1, emit, &s);
    assert_true(wait > 0 && wait <= 1000000000);
    assert_int_equal(s.n, 0);

    /* an empty interval emits nothing */
    int64_t t = t1 + 1000000000;
    wait = mlo__hists_tick(&g_set, t, emit, &s); /* swap */
    assert_true(wait > 0 && wait <= GRACE_NS);
    wait = mlo__hists_tick(&g_set, t + GRACE_NS, emit, &s); /* drain */
    assert_int_equal(s.n, 0);
    assert_true(wait > 0 && wait <= 1000000000);

    /* 500 values, then a ticker 2.5 intervals late: one report, step 3 (the
     * last interval that ended), the rate over the measured 2.5 s */
    for (int i = 0; i < 500; i++)
        assert_int_equal(mlo_histogram_record(h, 10.0), MLO_OK);
    int64_t late = t0 + 4500000000;
    mlo__hists_tick(&g_set, late, emit, &s);
    assert_int_equal(s.n, 0); /* swapped, not yet drained */
    mlo__hists_tick(&g_set, late + GRACE_NS, emit, &s);
    assert_int_equal(s.n, 6);
    const char *order[6] = {"lat.p50", "lat.p95", "lat.p99", "lat.max", "lat.count", "lat.rate"};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(s.p[i].key, order[i]);
        assert_int_equal(s.p[i].step, 3);
        assert_true(s.p[i].ts > 1600000000000); /* wall clock, ms */
    }
    assert_near(got(&s, "lat.p50"), 10.0, 10.0 * BOUND);
    assert_near(got(&s, "lat.max"), 10.0, 0);
    assert_near(got(&s, "lat.count"), 500, 0);
    double dur = (double)(late - t) / 1e9;
    assert_near(got(&s, "lat.rate"), 500 / dur, 1e-6);

    /* the next interval: step 4 */
    s.n = 0;
    assert_int_equal(mlo_histogram_record(h, 1.0), MLO_OK);
    t = t0 + 5000000000 + (t1 - t0);
    mlo__hists_tick(&g_set, t, emit, &s);
    mlo__hists_tick(&g_set, t + GRACE_NS, emit, &s);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.p[0].step, 4);
    free(s.p);
    assert_int_equal(hfree(h), MLO_OK);
}

/* Several histograms: the tick asks for the earliest due time among them. */
static void test_several(void **state) {
    (void)state;
    mlo_histogram_t *a, *b, *c;
    assert_int_equal(hnew("a", 100, &a), MLO_OK);
    assert_int_equal(hnew("b", 5000, &b), MLO_OK);
    assert_int_equal(hnew("c", 60000, &c), MLO_OK);
    sink s = {0};
    int64_t now = mlo__clock_mono(NULL);
    int64_t wait = mlo__hists_tick(&g_set, now, emit, &s);
    assert_true(wait <= 100000000);
    assert_int_equal(hfree(a), MLO_OK);
    wait = mlo__hists_tick(&g_set, now, emit, &s);
    assert_true(wait > 100000000 && wait <= 5000000000);
    /* histograms left over are freed at close (empty ones emit nothing, so
     * no queue is needed here) */
    mlo__hists_free_all(&g_set, discard, NULL);
    assert_null(g_set.head);
    wait = mlo__hists_tick(&g_set, now, emit, &s);
    assert_true(wait == INT64_MAX);
    assert_int_equal(s.n, 0);
    free(s.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_distributions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_count_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swaps_lose_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_steps_and_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
