/*
 * test_ranks.c - many processes, one run (issue 8, item 6): N = 4 processes,
 * as the ranks of a distributed training job, each with its own client on
 * ONE shared store directory, attach to the same run and log at the same
 * time: their own keys ("rank<k>/loss", "rank<k>/m<j>" through
 * mlo_log_metrics, a param and a tag each), disjoint steps of one shared key
 * ("loss": rank k logs steps [k*M, (k+1)*M)) and the same param with the same
 * value ("world_size" = 4, accepted again by the server).  Ranks 0 and 2
 * attach with mlo_resume_run, ranks 1 and 3 through $MLFLOW_RUN_ID and
 * mlo_start_run, as a launcher would set it.
 *
 * The run is created through the server's REST API before any process has
 * a client; each rank is fork + exec of this program (a fresh process, as a
 * launcher starts it), held at a barrier so that all four log at once.
 * Asserted: every rank's counters (ACCEPTED == SENT, nothing failed or
 * dropped); on the server (metrics/get-history), every key has exactly its
 * points, each step once, with its value; one run only.
 *
 * M = 20,000 per key in the plain build (4 x 40,000 events), 5,000 under
 * ASan/TSan.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlo.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define M 5000
#else
#define M 20000
#endif
#define RANKS 4
#define EXTRA 4 /* rank<k>/m0..m3, every 10th step */

static testsrv *srv;

/* ---- a rank (its own process) ---- */

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "rank %d: ", k);                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        return code;                                                                               \
    } while (0)

static int rank_main(int k, const char *uri, const char *run_id, const char *store, int go_fd) {
    char b;
    if (read(go_fd, &b, 1) != 0) /* EOF: the parent let everyone go */
        FAIL(10, "barrier");
    close(go_fd);
    if (k % 2)
        setenv("MLFLOW_RUN_ID", run_id, 1);
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, store);
    mlo_client_t *c;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st != MLO_OK)
        FAIL(11, "open: %s", mlo_strerror(st));
    mlo_run_t *run;
    st = k % 2 ? mlo_start_run(c, NULL, NULL, NULL, &run) : mlo_resume_run(c, run_id, &run);
    if (st != MLO_OK)
        FAIL(12, "attach: %s", mlo_strerror(st));
    if (strcmp(mlo_run_id(run), run_id))
        FAIL(13, "attached to %s, not %s", mlo_run_id(run), run_id);
    char own[32], extra[EXTRA][32], pk[32], tk[32], tv[32];
    snprintf(own, sizeof own, "rank%d/loss", k);
    const char *ek[EXTRA];
    for (int j = 0; j < EXTRA; j++) {
        snprintf(extra[j], sizeof extra[j], "rank%d/m%d", k, j);
        ek[j] = extra[j];
    }
    snprintf(pk, sizeof pk, "rank%d.lr", k);
    snprintf(tk, sizeof tk, "rank%d.host", k);
    snprintf(tv, sizeof tv, "node-%d", k);
    long events = 0;
    double t0 = tu_now();
    for (int64_t i = 0; i < M; i++) {
        if (mlo_log_metric(run, own, (double)(k * 1000000 + i), i) != MLO_OK)
            FAIL(20, "log own");
        if (mlo_log_metric(run, "loss", (double)(k * M + i) * 0.25, k * M + i) != MLO_OK)
            FAIL(21, "log shared");
        events += 2;
        if (i % 10 == 0) {
            double v[EXTRA];
            int64_t s[EXTRA];
            for (int j = 0; j < EXTRA; j++) {
                v[j] = (double)(j * M + i);
                s[j] = i;
            }
            if (mlo_log_metrics(run, EXTRA, ek, v, s, NULL) != MLO_OK)
                FAIL(22, "log_metrics");
            events += EXTRA;
        }
    }
    char lr[16];
    snprintf(lr, sizeof lr, "0.%d", k + 1);
    if (mlo_log_param(run, pk, lr) != MLO_OK || mlo_log_param(run, "world_size", "4") != MLO_OK ||
        mlo_set_tag(run, tk, tv) != MLO_OK)
        FAIL(23, "params/tags");
    events += 3;
    double t_log = tu_now() - t0;
    st = mlo_client_flush(c, 180000);
    if (st != MLO_OK)
        FAIL(30, "flush: %s", mlo_strerror(st));
    uint64_t acc, sent, failed, dropped;
    mlo_client_stat(c, MLO_STAT_ACCEPTED, &acc);
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    mlo_client_stat(c, MLO_STAT_DROPPED, &dropped);
    if (acc != (uint64_t)events || sent != acc || failed || dropped)
        FAIL(31, "counters: accepted %llu (logged %ld), sent %llu, failed %llu, dropped %llu",
             (unsigned long long)acc, events, (unsigned long long)sent, (unsigned long long)failed,
             (unsigned long long)dropped);
    if (mlo_client_close(c) != MLO_OK)
        FAIL(32, "close");
    printf("RANK %d: %ld events logged in %.2f s, delivered in %.2f s more\n", k, events, t_log,
           tu_now() - t0 - t_log);
    fflush(stdout);
    return 0;
}

/* ---- the job ---- */

static json_t *history(const char *run_id, const char *key) {
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=%s",
             run_id, key);
    return tu_get_json(srv, path);
}

/* key holds steps [from, from + n) exactly once each, value(step) as given */
static void check_key(const char *run_id, const char *key, int64_t from, int64_t n, double mul,
                      double add_per_step_base) {
    json_t *h = history(run_id, key);
    json_t *ms = json_object_get(h, "metrics");
    unsigned char *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    size_t i;
    json_t *m;
    long doubled = 0, foreign = 0, bad = 0;
    json_array_foreach(ms, i, m) {
        int64_t s = json_integer_value(json_object_get(m, "step"));
        if (s < from || s >= from + n) {
            foreign++;
            continue;
        }
        if (seen[s - from]++)
            doubled++;
        if (json_number_value(json_object_get(m, "value")) != add_per_step_base + (double)s * mul)
            bad++;
    }
    long lost = 0;
    for (int64_t s = 0; s < n; s++)
        lost += !seen[s];
    if (lost || doubled || foreign || bad || (int64_t)json_array_size(ms) != n)
        fprintf(stderr, "%s: %zu points, %ld lost, %ld doubled, %ld foreign, %ld bad values\n", key,
                json_array_size(ms), lost, doubled, foreign, bad);
    assert_int_equal(json_array_size(ms), (size_t)n);
    assert_int_equal(lost + doubled + foreign + bad, 0);
    free(seen);
    json_decref(h);
}

static const char *self_exe;

static void test_four_ranks_one_run(void **state) {
    (void)state;
    /* the run, before any client exists */
    char body[256];
    snprintf(body, sizeof body,
             "{\"experiment_id\": \"0\", \"run_name\": \"ranks\", \"start_time\": %lld}",
             (long long)time(NULL) * 1000);
    long code = 0;
    char *resp = testsrv_post(srv, "/api/2.0/mlflow/runs/create", body, &code);
    assert_non_null(resp);
    assert_int_equal(code, 200);
    json_t *j = json_loads(resp, 0, NULL);
    free(resp);
    char run_id[64];
    snprintf(run_id, sizeof run_id, "%s",
             json_string_value(
                 json_object_get(json_object_get(json_object_get(j, "run"), "info"), "run_id")));
    json_decref(j);
    assert_int_equal(strlen(run_id), 32);

    char *store = tu_new_path("store"); /* one store, four processes */
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[RANKS];
    double t0 = tu_now();
    for (int k = 0; k < RANKS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            close(go[1]);
            alarm(600); /* a hang ends as a failure */
            char ks[16], fd[16];
            snprintf(ks, sizeof ks, "%d", k);
            snprintf(fd, sizeof fd, "%d", go[0]);
            execl(self_exe, "test_ranks", "--rank", ks, testsrv_uri(srv), run_id, store, fd,
                  (char *)NULL);
            _exit(127);
        }
    }
    close(go[0]);
    close(go[1]); /* all four go at once */
    int bad = 0;
    for (int k = 0; k < RANKS; k++) {
        int status = 0;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "rank %d: %s %d\n", k, WIFEXITED(status) ? "exit" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            bad++;
        }
    }
    double el = tu_now() - t0;
    assert_int_equal(bad, 0);

    for (int k = 0; k < RANKS; k++) {
        char key[32];
        snprintf(key, sizeof key, "rank%d/loss", k);
        check_key(run_id, key, 0, M, 1.0, (double)k * 1000000);
        for (int jj = 0; jj < EXTRA; jj++) {
            /* every 10th step, value j*M + step */
            snprintf(key, sizeof key, "rank%d/m%d", k, jj);
            json_t *h = history(run_id, key);
            json_t *ms = json_object_get(h, "metrics");
            assert_int_equal(json_array_size(ms), (size_t)(M / 10));
            size_t i;
            json_t *m;
            unsigned char seen[M / 10] = {0};
            json_array_foreach(ms, i, m) {
                int64_t s = json_integer_value(json_object_get(m, "step"));
                assert_true(s >= 0 && s < M && s % 10 == 0);
                assert_int_equal(seen[s / 10]++, 0);
                assert_true(json_number_value(json_object_get(m, "value")) == (double)(jj * M + s));
            }
            json_decref(h);
        }
    }
    check_key(run_id, "loss", 0, (int64_t)RANKS * M, 0.25, 0);

    /* params, tags, and one run only */
    json_t *d = tu_dump(srv);
    assert_int_equal(json_array_size(json_object_get(d, "runs")), 1);
    json_t *r = json_array_get(json_object_get(d, "runs"), 0);
    json_t *params = json_object_get(r, "params"), *tags = json_object_get(r, "tags");
    assert_string_equal(json_string_value(json_object_get(params, "world_size")), "4");
    for (int k = 0; k < RANKS; k++) {
        char key[32], want[32];
        snprintf(key, sizeof key, "rank%d.lr", k);
        snprintf(want, sizeof want, "0.%d", k + 1);
        assert_string_equal(json_string_value(json_object_get(params, key)), want);
        snprintf(key, sizeof key, "rank%d.host", k);
        snprintf(want, sizeof want, "node-%d", k);
        assert_string_equal(json_string_value(json_object_get(tags, key)), want);
    }
    assert_int_equal(json_object_size(params), 1 + RANKS);
    json_decref(d);
    long per_rank = 2L * M + (long)EXTRA * (M / 10) + 3;
    printf("RANKS: %d processes x %ld events into one run in %.1f s: all %ld on the server, "
           "each once\n",
           RANKS, per_rank, el, RANKS * per_rank);
    tu_rm_rf(store);
    free(store);
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "--rank"))
        return rank_main(atoi(argv[2]), argv[3], argv[4], argv[5], atoi(argv[6]));
    tu_init("ranks");
    self_exe = "/proc/self/exe";
    char *exe = realpath("/proc/self/exe", NULL);
    if (exe)
        self_exe = exe;
    srv = testsrv_start("");
    if (!srv)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_four_ranks_one_run)};
    int rc = tu_run_group("test_ranks", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    free(exe);
    return rc;
}
