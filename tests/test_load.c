/*
 * test_load.c - load (issue 8, item 5): 8 threads log across 1,000 runs open
 * at once, with 250-character keys and param/tag values of the maximum size
 * (6000 / 8000 characters) mixed in, through the public API, to the test
 * server, the store on.
 *
 *   test_load --case drop  MLO_FULL_DROP and the smallest queue (64 KiB), the
 *                          store on: 8 threads at full speed overflow it, most
 *                          calls are dropped, by policy
 *   test_load --case drop-nostore  the same with the store off (an in-memory
 *                          client, as an inference server may run it), paced
 *                          at about 1 M calls/s in all (the queue then drains
 *                          only as fast as the server takes batches)
 *   test_load --case wait  MLO_FULL_WAIT (100 ms), a 1 MiB queue, the store on
 *
 * The drop case found a crash (fixed in d2704a5): the writer's ring peek had
 * no bound, and a ring filled exactly made it go round again and release
 * more than the ring (SIGSEGV in the writer thread).
 *
 * Each case runs in its own process (meson runs the two), so its peak RSS
 * is its own.  Asserted, after mlo_client_flush:
 *  - every log call returned MLO_OK (accepted) or MLO_ERR_QUEUE_FULL (dropped):
 *    accepted + dropped == attempted; MLO_STAT_ACCEPTED and MLO_STAT_DROPPED
 *    say the same as the calls (plus the 1,000 end-of-run records);
 *  - ACCEPTED == SENT + FAILED, FAILED == 0;
 *  - the server holds exactly the accepted events: every metric point,
 *    param and tag that was accepted is there once, in the run it was logged
 *    to, with its full value, and nothing else (each event is identified by
 *    its thread and sequence number, in the key and the step);
 *  - memory is bounded: peak RSS (getrusage, before reading the server's
 *    dump) below the queue size + 96 MiB (the margin covers the library's
 *    fixed costs, libcurl and the test's own bitmaps; it is a bound, not a
 *    measurement).  Not checked under ASan/TSan, whose shadow memory and
 *    allocator quarantine make RSS meaningless.
 *
 * Sizes: in the plain build 1,000 runs and 8 x 250,000 = 2,000,000 calls (each drop case)
 * and 250 runs, 8 x 20,000 = 160,000 calls (wait).  Under ASan the counts are divided
 * by 8, under TSan by 10 (both slow every call and the server is the same), over
 * 250 runs (tests/meson.build: the suite's time);
 * MLO_LOAD_DIVISOR overrides the divisor.  The figures are printed as a
 * LOAD line.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mlo.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#define DIVISOR 8
#elif defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#define DIVISOR 10
#else
#define SANITIZED 0
#define DIVISOR 1
#endif

#define THREADS 8
/* 1,000 runs open at once in the drop cases of the plain build; 250 under a
 * sanitizer and in the wait case (each run a runs/create and a runs/update of
 * its own: time, not a different path) */
#define RUNS_MAX 1000
static int RUNS = RUNS_MAX;
#define BURST 256 /* consecutive events of a thread go to one run */

static const char *the_case = "drop";

/* ---- the events: everything about event i of thread t follows from (t, i) ---- */

enum { EV_METRIC, EV_LONG_METRIC, EV_PARAM, EV_TAG };

static int kind_of(long i) {
    if (i % 1000 == 500)
        return EV_PARAM;
    if (i % 1000 == 999)
        return EV_TAG;
    if (i % 50 == 7)
        return EV_LONG_METRIC;
    return EV_METRIC;
}

static int run_of(int t, long i) {
    return (int)((t * (RUNS / THREADS) + i / BURST) % RUNS);
}

/* key of (t, i): metrics "m_<t>" or "L_<t>_kkk..." (250 characters); params
 * and tags "p_<t>_<i>_xxx..." / "g_<t>_<i>_xxx..." (250 characters). */
static void key_of(char out[256], int kind, int t, long i) {
    int n;
    switch (kind) {
    case EV_METRIC:
        snprintf(out, 256, "m_%d", t);
        return;
    case EV_LONG_METRIC:
        n = snprintf(out, 256, "L_%d_", t);
        break;
    case EV_PARAM:
        n = snprintf(out, 256, "p_%d_%ld_", t, i);
        break;
    default:
        n = snprintf(out, 256, "g_%d_%ld_", t, i);
        break;
    }
    memset(out + n, kind == EV_LONG_METRIC ? 'k' : 'x', 250 - (size_t)n);
    out[250] = '\0';
}

/* value of a param (6000 characters) or a tag (8000): a prefix naming the
 * event, then filler. */
static void value_of(char *out, int kind, int t, long i) {
    size_t len = kind == EV_PARAM ? 6000 : 8000;
    int n = snprintf(out, 64, "%d/%ld/", t, i);
    memset(out + n, 'v', len - (size_t)n);
    out[len] = '\0';
}

/* ---- the logging threads ---- */

typedef struct worker {
    int t;
    long n;
    int pace; /* sleep 1 ms every 128 calls */
    mlo_run_t **runs;
    unsigned char *accepted; /* bit per i */
    long ok, dropped, other;
    long ok_kind[4];
    int first_bad;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    char key[256];
    char *val = malloc(8001);
    if (!val) {
        w->other++;
        return NULL;
    }
    for (long i = 0; i < w->n; i++) {
        if (w->pace && i % 128 == 127) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        int kind = kind_of(i);
        mlo_run_t *run = w->runs[run_of(w->t, i)];
        key_of(key, kind, w->t, i);
        int st;
        if (kind == EV_METRIC || kind == EV_LONG_METRIC) {
            st = mlo_log_metric(run, key, (double)i, i);
        } else {
            value_of(val, kind, w->t, i);
            st = kind == EV_PARAM ? mlo_log_param(run, key, val) : mlo_set_tag(run, key, val);
        }
        if (st == MLO_OK) {
            w->ok++;
            w->ok_kind[kind]++;
            w->accepted[i / 8] |= (unsigned char)(1u << (i % 8));
        } else if (st == MLO_ERR_QUEUE_FULL) {
            w->dropped++;
        } else {
            if (!w->other)
                w->first_bad = st;
            w->other++;
        }
    }
    free(val);
    return NULL;
}

/* ---- what the server holds ---- */

typedef struct tally {
    long metrics, params, tags;
    long foreign, doubled, misplaced, bad_value;
} tally;

static unsigned char *seen[THREADS];

/* Marks event (t, i) seen in run r; counts what is wrong with it. */
static void see(worker *ws, tally *ty, int r, int kind, int t, long i) {
    if (t < 0 || t >= THREADS || i < 0 || i >= ws[t].n || kind_of(i) != kind ||
        !(ws[t].accepted[i / 8] & (1u << (i % 8)))) {
        ty->foreign++;
        return;
    }
    if (seen[t][i / 8] & (1u << (i % 8))) {
        ty->doubled++;
        return;
    }
    seen[t][i / 8] |= (unsigned char)(1u << (i % 8));
    if (run_of(t, i) != r)
        ty->misplaced++;
}

typedef struct grow {
    char *p;
    size_t n, cap;
} grow;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    grow *g = user;
    size_t k = size * nmemb;
    if (g->n + k + 1 > g->cap) { /* doubling: see testsrv.c on_data */
        size_t cap = g->cap ? g->cap : 1 << 16;
        while (cap < g->n + k + 1)
            cap *= 2;
        char *q = realloc(g->p, cap);
        if (!q)
            return 0;
        g->p = q;
        g->cap = cap;
    }
    memcpy(g->p + g->n, data, k);
    g->n += k;
    g->p[g->n] = '\0';
    return k;
}

/* GET with a long timeout (testsrv_get gives up after 10 s; a dump of a
 * million points takes longer to make). */
static char *big_get(testsrv *srv, const char *path) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", testsrv_uri(srv), path);
    CURL *h = curl_easy_init();
    grow g = {NULL, 0, 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &g);
    long code = 0;
    if (curl_easy_perform(h) != CURLE_OK ||
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200) {
        free(g.p);
        g.p = NULL;
    }
    curl_easy_cleanup(h);
    return g.p;
}

static void check_server(testsrv *srv, worker *ws, char ids[RUNS_MAX][40], tally *ty) {
    char *body = big_get(srv, "/_test/dump");
    assert_non_null(body);
    json_t *d = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(d);
    size_t ri;
    json_t *run;
    int runs_found = 0;
    json_array_foreach(json_object_get(d, "runs"), ri, run) {
        const char *id = json_string_value(json_object_get(json_object_get(run, "info"), "run_id"));
        int r = -1;
        for (int k = 0; k < RUNS && id; k++)
            if (!strcmp(ids[k], id)) {
                r = k;
                break;
            }
        assert_true(r >= 0);
        runs_found++;
        size_t mi;
        json_t *m;
        json_array_foreach(json_object_get(run, "metrics"), mi, m) {
            const char *k = json_string_value(json_object_get(m, "key"));
            int t = -1;
            char c = 0;
            if (!k || sscanf(k, "%c_%d", &c, &t) != 2 || (c != 'm' && c != 'L')) {
                ty->foreign++;
                continue;
            }
            long i = (long)json_integer_value(json_object_get(m, "step"));
            if (json_number_value(json_object_get(m, "value")) != (double)i)
                ty->bad_value++;
            see(ws, ty, r, c == 'm' ? EV_METRIC : EV_LONG_METRIC, t, i);
            ty->metrics++;
        }
        for (int pass = 0; pass < 2; pass++) {
            const char *kk;
            json_t *v;
            json_object_foreach(json_object_get(run, pass ? "tags" : "params"), kk, v) {
                if (!strncmp(kk, "mlflow.", 7) || !strncmp(kk, "mlo.", 4))
                    continue; /* system tags */
                int t = -1;
                long i = -1;
                char c = 0;
                if (sscanf(kk, "%c_%d_%ld_", &c, &t, &i) != 3 || c != (pass ? 'g' : 'p')) {
                    ty->foreign++;
                    continue;
                }
                int kind = pass ? EV_TAG : EV_PARAM;
                char want[8001];
                if (t >= 0 && t < THREADS && i >= 0) {
                    value_of(want, kind, t, i);
                    if (strcmp(json_string_value(v), want))
                        ty->bad_value++;
                }
                see(ws, ty, r, kind, t, i);
                if (pass)
                    ty->tags++;
                else
                    ty->params++;
            }
        }
    }
    assert_int_equal(runs_found, RUNS);
    json_decref(d);
}

/* ---- the case ---- */

static void test_load(void **state) {
    (void)state;
    int drop = !strncmp(the_case, "drop", 4);
    int durable = strcmp(the_case, "drop-nostore") != 0;
    long divisor = DIVISOR;
    if (getenv("MLO_LOAD_DIVISOR"))
        divisor = atol(getenv("MLO_LOAD_DIVISOR"));
    if (divisor < 1)
        divisor = 1;
    /* the wait case: three times fewer (each call may wait for room; 8 x
     * 20,000 calls, ~8 MiB, still fill the 1 MiB queue many times over),
     * over 250 runs (the drop cases open the 1,000) */
    if (!drop && !getenv("MLO_LOAD_DIVISOR"))
        divisor *= 3;
    RUNS = SANITIZED || !drop ? 250 : RUNS_MAX;
    long per_thread = (drop ? 250000 : 60000) / divisor;
    size_t queue = drop ? (64u << 10) : (1u << 20);

    testsrv *srv = testsrv_start("");
    assert_non_null(srv);
    char *dir = tu_new_path("store");

    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_store_dir(o, dir), MLO_OK);
    assert_int_equal(mlo_options_set_durable(o, durable), MLO_OK);
    assert_int_equal(mlo_options_set_queue_bytes(o, queue), MLO_OK);
    assert_int_equal(mlo_options_set_full_policy(o, drop ? MLO_FULL_DROP : MLO_FULL_WAIT, 100),
                     MLO_OK);
    assert_int_equal(mlo_options_set_fsync(o, MLO_FSYNC_NONE, 1000), MLO_OK);
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);

    /* 1,000 runs open at once */
    double t0 = tu_now();
    static mlo_run_t *runs[RUNS_MAX];
    static char ids[RUNS_MAX][40];
    for (int r = 0; r < RUNS; r++) {
        /* over 10 experiments: the test server's search (which the sender
         * makes before each creation) reads every run of the experiment */
        char name[32], exp[32];
        snprintf(name, sizeof name, "load-%d", r);
        snprintf(exp, sizeof exp, "load-%d", r % 10);
        assert_int_equal(mlo_start_run(c, exp, name, NULL, &runs[r]), MLO_OK);
    }
    double t_runs = tu_now() - t0;

    worker ws[THREADS];
    pthread_t th[THREADS];
    memset(ws, 0, sizeof ws);
    t0 = tu_now();
    for (int t = 0; t < THREADS; t++) {
        ws[t].t = t;
        ws[t].n = per_thread;
        /* without the store, the drop case logs at about 1 M calls/s in all
         * (the queue drains only as fast as the server takes batches: at full
         * speed nearly everything would be dropped); with the store the
         * writer drains it to disk, and full speed is what overflows it */
        ws[t].pace = drop && !durable;
        ws[t].runs = runs;
        ws[t].accepted = calloc((size_t)per_thread / 8 + 1, 1);
        seen[t] = calloc((size_t)per_thread / 8 + 1, 1);
        assert_non_null(ws[t].accepted);
        assert_non_null(seen[t]);
        assert_int_equal(pthread_create(&th[t], NULL, work, &ws[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    double t_log = tu_now() - t0;

    long attempted = 0, ok = 0, dropped = 0, other = 0, ok_kind[4] = {0};
    for (int t = 0; t < THREADS; t++) {
        attempted += ws[t].n;
        ok += ws[t].ok;
        dropped += ws[t].dropped;
        other += ws[t].other;
        for (int k = 0; k < 4; k++)
            ok_kind[k] += ws[t].ok_kind[k];
        if (ws[t].other)
            fprintf(stderr, "thread %d: %ld calls returned %s\n", t, ws[t].other,
                    mlo_strerror(ws[t].first_bad));
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok + dropped, attempted);

    /* end every run (an end may meet a full queue too: counted, retried) */
    long end_dropped = 0;
    for (int r = 0; r < RUNS; r++) {
        snprintf(ids[r], sizeof ids[r], "%s", mlo_run_id(runs[r]));
        int st;
        while ((st = mlo_end_run(runs[r], MLO_RUN_FINISHED)) == MLO_ERR_QUEUE_FULL) {
            end_dropped++;
            usleep(1000);
        }
        assert_int_equal(st, MLO_OK);
    }
    t0 = tu_now();
    assert_int_equal(mlo_client_flush(c, 600000), MLO_OK);
    double t_flush = tu_now() - t0;

    uint64_t acc, sent, failed, sdropped;
    mlo_client_stat(c, MLO_STAT_ACCEPTED, &acc);
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    mlo_client_stat(c, MLO_STAT_DROPPED, &sdropped);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long peak_kb = ru.ru_maxrss;
    long bound_kb = (long)(queue >> 10) + 96 * 1024;

    assert_int_equal(acc, (uint64_t)ok + RUNS);
    assert_int_equal(sdropped, (uint64_t)dropped + (uint64_t)end_dropped);
    assert_int_equal(acc, sent + failed);
    assert_int_equal(failed, 0);
    for (int r = 0; r < RUNS; r++) /* still the server's ids */
        assert_string_equal(ids[r], mlo_run_id(runs[r]));
    assert_int_equal(mlo_client_close(c), MLO_OK);

    t0 = tu_now();
    tally ty;
    memset(&ty, 0, sizeof ty);
    check_server(srv, ws, ids, &ty);
    double t_check = tu_now() - t0;

    printf("LOAD %s: %d threads, %d runs, %ld calls (%ld accepted, %ld dropped = %.1f%%), "
           "%ld metrics + %ld params + %ld tags on the server (expected %ld + %ld + %ld), "
           "%ld foreign, %ld doubled, %ld misplaced, %ld bad values; "
           "start runs %.1f s, log %.2f s (%.1f M calls/s), flush %.1f s, check %.1f s; "
           "peak RSS %ld KiB (bound %ld KiB, queue %zu KiB)%s\n",
           the_case, THREADS, RUNS, attempted, ok, dropped,
           100.0 * (double)dropped / (double)attempted, ty.metrics, ty.params, ty.tags,
           ok_kind[EV_METRIC] + ok_kind[EV_LONG_METRIC], ok_kind[EV_PARAM], ok_kind[EV_TAG],
           ty.foreign, ty.doubled, ty.misplaced, ty.bad_value, t_runs, t_log,
           (double)attempted / t_log / 1e6, t_flush, t_check, peak_kb, bound_kb, queue >> 10,
           SANITIZED ? " (sanitized build: RSS not checked)" : "");
    fflush(stdout);

    assert_int_equal(ty.foreign, 0);
    assert_int_equal(ty.doubled, 0);
    assert_int_equal(ty.misplaced, 0);
    assert_int_equal(ty.bad_value, 0);
    assert_int_equal(ty.metrics, ok_kind[EV_METRIC] + ok_kind[EV_LONG_METRIC]);
    assert_int_equal(ty.params, ok_kind[EV_PARAM]);
    assert_int_equal(ty.tags, ok_kind[EV_TAG]);
    if (drop)
        assert_true(dropped > 0); /* the small queue did overflow */
    if (!SANITIZED)
        assert_true(peak_kb < bound_kb);

    for (int t = 0; t < THREADS; t++) {
        free(ws[t].accepted);
        free(seen[t]);
    }
    testsrv_stop(srv);
    tu_rm_rf(dir);
    free(dir);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--case"))
            the_case = argv[i + 1];
    if (strcmp(the_case, "drop") && strcmp(the_case, "wait") && strcmp(the_case, "drop-nostore")) {
        fprintf(stderr, "usage: %s [--case drop|drop-nostore|wait]\n", argv[0]);
        return 2;
    }

    tu_init("load");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_load)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
