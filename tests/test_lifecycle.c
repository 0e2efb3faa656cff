/*
 * test_lifecycle.c - the client's life around the edges (issue 8, items 3-4):
 * close twice, use after close, fork() while other threads log, exit()
 * without closing (events delivered, bounded when the server is gone).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlo.h"
#include "testutil.h"

static testsrv *srv;

static mlo_client_t *open_client(const char *uri, unsigned close_ms) {
    tu_client_cfg k = {.uri = uri,
                       .retries = 2,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = 5,
                       .close_ms = close_ms};
    return tu_open(&k);
}

/* Number of points of metric `key` stored for run_id. */
static size_t points(const char *run_id, const char *key) {
    return tu_history_len(srv, run_id, key);
}

static void test_close_twice_and_use_after_close(void **state) {
    (void)state;
    mlo_client_t *c = open_client(testsrv_uri(srv), 5000);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "lifecycle", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "before", 1, 0), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    /* a closed client and its runs answer CLOSED, never touch freed memory */
    assert_int_equal(mlo_client_close(c), MLO_ERR_CLOSED);
    assert_int_equal(mlo_client_flush(c, 10), MLO_ERR_CLOSED);
    uint64_t v;
    assert_int_equal(mlo_client_stat(c, MLO_STAT_SENT, &v), MLO_ERR_CLOSED);
    assert_int_equal(mlo_log_metric(run, "after", 1, 0), MLO_ERR_CLOSED);
    assert_int_equal(mlo_log_param(run, "p", "v"), MLO_ERR_CLOSED);
    assert_int_equal(mlo_set_tag(run, "t", "v"), MLO_ERR_CLOSED);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_ERR_CLOSED);
    mlo_run_t *r2;
    assert_int_equal(mlo_start_run(c, NULL, NULL, NULL, &r2), MLO_ERR_CLOSED);
    assert_null(mlo_run_id(run));
}

typedef struct closer_arg {
    mlo_client_t *c;
    int st;
} closer_arg;

static void *closer(void *p) {
    closer_arg *a = p;
    a->st = mlo_client_close(a->c);
    return NULL;
}

static void test_close_from_another_thread(void **state) {
    (void)state;
    mlo_client_t *c = open_client(testsrv_uri(srv), 5000);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "lifecycle", NULL, NULL, &run), MLO_OK);
    char rid[64];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
    closer_arg a = {.c = c};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, closer, &a), 0);
    pthread_join(t, NULL);
    assert_int_equal(a.st, MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_ERR_CLOSED);
    assert_int_equal(points(rid, "m"), 1000);
}

/* ---- fork under load ---- */
typedef struct logger_arg {
    mlo_run_t *run;
    const char *key;
    _Atomic int stop;
    long n;
} logger_arg;

static void *logger(void *p) {
    logger_arg *a = p;
    struct timespec pause = {0, 100000}; /* ~10,000 events/s per thread */
    while (!atomic_load(&a->stop)) {
        assert_int_equal(mlo_log_metric(a->run, a->key, (double)a->n, a->n), MLO_OK);
        a->n++;
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* A forked child's own client: joins the parent's run and logs "child" at
 * step k.  Returns 0 when everything went as it should. */
static int child_logs(const char *uri, const char *rid, int k) {
    int bad = 0;
    mlo_options_t *o = mlo_options_new();
    char *dir = tu_new_path("child-store");
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, dir);
    free(dir);
    mlo_client_t *own;
    bad |= mlo_client_open(o, &own) != MLO_OK;
    mlo_options_free(o);
    if (bad)
        return 1;
    mlo_run_t *same;
    bad |= mlo_resume_run(own, rid, &same) != MLO_OK;
    bad |= !same || mlo_log_metric(same, "child", k, k) != MLO_OK;
    bad |= mlo_client_flush(own, 10000) != MLO_OK;
    bad |= mlo_client_close(own) != MLO_OK;
    return bad;
}

static void test_fork_while_logging(void **state) {
    (void)state;
    mlo_client_t *c = open_client(testsrv_uri(srv), 5000);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "lifecycle", "forked", NULL, &run), MLO_OK);
    char rid[64];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
    logger_arg la[2] = {{.run = run, .key = "parent0"}, {.run = run, .key = "parent1"}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, logger, &la[i]), 0);

    /* 4 under the sanitizers, whose re-executed children are slow: the atfork
     * handlers run with threads logging all the same (tests/meson.build) */
    enum { FORKS = TU_SANITIZED ? 4 : 12 };
    for (int k = 0; k < FORKS; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(120); /* a deadlock ends as a failure, not a hang (20 s was hit by a
                         * slow but live child in a loaded ASan run) */
            /* the inherited client answers at once, without waiting on threads
             * that do not exist here */
            int bad = mlo_log_metric(run, "inherited", 1, k) != MLO_ERR_CLOSED;
            bad |= mlo_client_flush(c, 1000) != MLO_ERR_CLOSED;
            if (bad)
                _exit(3);
                /* the child logs through a client of its own, to the same run.
                 * ThreadSanitizer cannot start threads after a multi-threaded
                 * fork, so under it the child re-executes itself for this part. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
            char kstr[16];
            snprintf(kstr, sizeof kstr, "%d", k);
            execl("/proc/self/exe", "test_lifecycle", "--child", testsrv_uri(srv), rid, kstr,
                  (char *)NULL);
            _exit(4);
#else
            bad = child_logs(testsrv_uri(srv), rid, k);
#endif
            _exit(bad ? 3 : 0);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    for (int i = 0; i < 2; i++) {
        atomic_store(&la[i].stop, 1);
        pthread_join(th[i], NULL);
    }
    assert_int_equal(mlo_client_flush(c, 20000), MLO_OK);
    /* the parent is unaffected: every point it logged landed, once */
    assert_true(la[0].n > 0 && la[1].n > 0);
    assert_int_equal(points(rid, "parent0"), (size_t)la[0].n);
    assert_int_equal(points(rid, "parent1"), (size_t)la[1].n);
    uint64_t failed, dropped;
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    mlo_client_stat(c, MLO_STAT_DROPPED, &dropped);
    assert_int_equal(failed, 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(points(rid, "child"), FORKS);
    assert_int_equal(points(rid, "inherited"), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- exit() without close ----
 * The children exit with their client still open, on purpose: the memory its
 * threads hold is not freed, and LeakSanitizer would call that a leak.  So a
 * child re-executes this program with leak detection off for that process. */
static void exec_exit_child(const char *mode, const char *uri, const char *rid) {
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    execl("/proc/self/exe", "test_lifecycle", mode, uri, rid, (char *)NULL);
    _exit(4);
}

/* --exit-child: logs 500 points to run rid, then exit(0) without flush or close. */
static int exit_child(const char *uri, const char *rid) {
    char *dir = tu_new_path("exit-store");
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, dir);
    free(dir);
    mlo_options_set_close_timeout_ms(o, 10000);
    mlo_client_t *c;
    if (mlo_client_open(o, &c) != MLO_OK)
        return 3;
    mlo_options_free(o);
    mlo_run_t *r;
    if (mlo_resume_run(c, rid, &r) != MLO_OK)
        return 3;
    for (int i = 0; i < 500; i++)
        mlo_log_metric(r, "at_exit", i, i);
    exit(0); /* no flush, no close: the atexit handler flushes */
}

/* --exit-gone: a server that is gone, MLflow-like long retries (10, backoff
 * factor 2 s), exit(0).  The request timeout is 2 s, not MLflow's 120: a
 * refused connection never waits for it, and mlo_start_run waits for the
 * server at most min(timeout, 10 s), so this keeps the test at ~3 s instead
 * of ~11 s without changing what exit has to bound. */
static int exit_gone(const char *uri) {
    mlo_options_t *o = mlo_options_new();
    char *dir = tu_new_path("gone-store");
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, dir);
    free(dir);
    mlo_options_set_retries(o, 10, 2, 1, 2);
    mlo_options_set_close_timeout_ms(o, 500);
    mlo_client_t *c;
    if (mlo_client_open(o, &c) != MLO_OK)
        return 3;
    mlo_options_free(o);
    mlo_run_t *r;
    mlo_start_run(c, NULL, NULL, NULL, &r); /* offline run */
    for (int i = 0; i < 100; i++)
        mlo_log_metric(r, "x", i, i);
    exit(0);
}
static void test_exit_without_close_delivers(void **state) {
    (void)state;
    mlo_client_t *probe = open_client(testsrv_uri(srv), 5000);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(probe, "lifecycle", "exit", NULL, &run), MLO_OK);
    char rid[64];
    snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
    assert_int_equal(mlo_client_close(probe), MLO_OK);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exec_exit_child("--exit-child", testsrv_uri(srv), rid);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(points(rid, "at_exit"), 500);
}

static void test_exit_bounded_when_server_gone(void **state) {
    (void)state;
    testsrv *gone = testsrv_start("");
    assert_non_null(gone);
    char uri[128];
    snprintf(uri, sizeof uri, "%s", testsrv_uri(gone));
    testsrv_stop(gone);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        exec_exit_child("--exit-gone", uri, "-");
    double t0 = tu_now();
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    double el = tu_now() - t0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* start_run waits at most its own bound, exit at most the close timeout */
    assert_true(el < 15.0);
}

int main(int argc, char **argv) {
    tu_init("lifecycle");
    if (argc == 4 && !strcmp(argv[1], "--exit-child"))
        return exit_child(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "--exit-gone"))
        return exit_gone(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "--child"))
        return child_logs(argv[2], argv[3], atoi(argv[4])) ? 3 : 0;
    srv = testsrv_start("");
    if (!srv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_twice_and_use_after_close),
        cmocka_unit_test(test_close_from_another_thread),
        cmocka_unit_test(test_fork_while_logging),
        cmocka_unit_test(test_exit_without_close_delivers),
        cmocka_unit_test(test_exit_bounded_when_server_gone),
    };
    int rc = tu_run_group("test_lifecycle", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
