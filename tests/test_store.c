/*
 * test_store.c - the durable run log end to end: a local run synced later
 * (field by field, twice), a server down for the first half of a run, an
 * outbox left by one client and delivered by the next, a corrupted segment,
 * a full disk (RLIMIT_FSIZE in a child), an unusable store directory, two
 * processes on one store, a store locked by a live process.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlo.h"
#include "mlo_sync.h"
#include "testutil.h"

static testsrv *srv;

/* ---- helpers ---- */

/* A path for a store the library creates itself (with its own modes). */
static char *new_store(void) {
    return tu_new_path("store");
}

static mlo_client_t *open_at(const char *store, const char *uri, tu_errors *cap,
                             unsigned close_ms) {
    tu_client_cfg k = {.store = store,
                       .uri = uri,
                       .retries = 1,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = 2,
                       .close_ms = close_ms,
                       .errors = cap};
    return tu_open(&k);
}

/* A client of the local store (no tracking URI). */
static mlo_client_t *open_local(const char *store) {
    tu_client_cfg k = {.store = store, .retries = -1};
    return tu_open(&k);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    return 0;
}

static int count_requests(const char *path_part) {
    return tu_count_requests(srv, NULL, path_part, NULL);
}

/* ---- a full run with no server, then sync, compared field by field ---- */

static void test_local_run_then_sync_twice(void **state) {
    (void)state;
    char *store = new_store();
    tu_errors cap;
    tu_client_cfg k = {.store = store, .retries = -1, .errors = &cap}; /* no tracking URI */
    mlo_client_t *c = tu_open(&k);
    int64_t t0 = tu_wall_ms();
    mlo_run_t *run, *child;
    assert_int_equal(mlo_start_run(c, "offline-exp", "offline-run", NULL, &run), MLO_OK);
    int64_t t1 = tu_wall_ms();
    char lid[64];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    assert_int_equal(strlen(lid), 32);
    assert_null(mlo_run_experiment_id(run)); /* a named experiment: not known offline */
    assert_int_equal(mlo_start_run(c, NULL, "offline-child", run, &child), MLO_OK);
    assert_string_equal(mlo_run_experiment_id(child), "0");
    assert_int_equal(mlo_log_param(run, "lr", "0.01"), MLO_OK);
    assert_int_equal(mlo_set_tag(run, "team", "vision"), MLO_OK);
    for (int64_t s = 0; s < 300; s++) {
        assert_int_equal(
            mlo_log_metric_ts(run, "loss", 1.0 / (double)(s + 1), s, 1700000000000 + s), MLO_OK);
        if (s % 100 == 99)
            assert_int_equal(mlo_client_flush(c, 5000), MLO_OK); /* several blocks */
    }
    assert_int_equal(mlo_log_metric(run, "nan", NAN, 3), MLO_OK);
    assert_int_equal(mlo_log_metric(child, "acc", 0.5, 1), MLO_OK);
    assert_int_equal(mlo_end_run(child, MLO_RUN_FAILED), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    int64_t t_end = tu_wall_ms();
    assert_int_equal(mlo_client_flush(c, 5000), MLO_OK);
    uint64_t acc;
    mlo_client_stat(c, MLO_STAT_ACCEPTED, &acc);
    assert_int_equal(acc, 2 + 300 + 1 + 1 + 2);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(cap.n, 0);

    /* nothing on the server yet */
    json_t *d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 0);
    json_decref(d);

    char err[512];
    assert_int_equal(mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 2);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    json_t *info = json_object_get(r, "info");
    assert_string_equal(tu_str(info, "run_name"), "offline-run");
    assert_string_equal(tu_str(info, "status"), "FINISHED");
    int64_t st = json_integer_value(json_object_get(info, "start_time"));
    assert_true(st >= t0 && st <= t1); /* the original start time, not the sync's */
    int64_t et = json_integer_value(json_object_get(info, "end_time"));
    assert_true(et >= t1 && et <= t_end);
    json_t *tags = json_object_get(r, "tags");
    assert_string_equal(tu_str(tags, "team"), "vision");
    assert_string_equal(tu_str(tags, "mlflow.runName"), "offline-run");
    assert_string_equal(tu_str(tags, "mlflow.source.type"), "LOCAL");
    assert_non_null(tu_str(tags, "mlflow.user"));
    assert_string_equal(tu_str(json_object_get(r, "params"), "lr"), "0.01");
    assert_int_equal(tu_count_metric(r, "loss"), 300);
    for (int64_t s = 0; s < 300; s++) {
        json_t *m = tu_metric_at(r, "loss", s);
        assert_non_null(m);
        assert_true(json_number_value(json_object_get(m, "value")) == 1.0 / (double)(s + 1));
        assert_int_equal(json_integer_value(json_object_get(m, "timestamp")), 1700000000000 + s);
    }
    json_t *nm = tu_metric_at(r, "nan", 3);
    assert_non_null(nm);
    assert_true(json_is_string(json_object_get(nm, "value")));
    const char *exp_id = tu_str(info, "experiment_id");
    char path[256];
    snprintf(path, sizeof path,
             "/api/2.0/mlflow/experiments/get-by-name?experiment_name=offline-exp");
    long code;
    char *body = testsrv_get(srv, path, &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body, exp_id));
    free(body);
    /* the child: nested under the parent's server id, in the Default experiment */
    json_t *cr = tu_run_by_tag(d, "mlflow.runName", "offline-child");
    assert_string_equal(tu_str(json_object_get(cr, "tags"), "mlflow.parentRunId"),
                        tu_str(info, "run_id"));
    assert_string_equal(tu_str(json_object_get(cr, "info"), "experiment_id"), "0");
    assert_string_equal(tu_str(json_object_get(cr, "info"), "status"), "FAILED");
    assert_int_equal(tu_count_metric(cr, "acc"), 1);
    json_decref(d);

    /* runs.map says where it went (what `mlo ls` shows) */
    char mp[600];
    snprintf(mp, sizeof mp, "%s/runs.map", store);
    FILE *f = fopen(mp, "r");
    assert_non_null(f);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f))
        found |= !strncmp(line, lid, 32);
    fclose(f);
    assert_true(found);

    /* sync again: nothing is created or sent twice */
    free(testsrv_post(srv, "/_test/requests/clear", "{}", NULL));
    assert_int_equal(mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    assert_int_equal(count_requests("runs/create"), 0);
    assert_int_equal(count_requests("runs/log-batch"), 0);
    d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 2);
    json_decref(d);

    /* the runs.map lost (an ack lost in a crash): the tag finds the runs */
    unlink(mp);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/acks/*.ack", store);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    assert_int_equal(count_requests("runs/create"), 0);
    d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 2);
    r = tu_run_by_tag(d, "mlo.local_id", lid);
    assert_int_equal(tu_count_metric(r, "loss"), 300); /* resent, stored once */
    json_decref(d);
    tu_rm_rf(store);
    free(store);
}

/* ---- the server down for the first half of a run, then up ---- */

static void test_server_down_then_up(void **state) {
    (void)state;
    char *store = new_store();
    /* every API request fails: the connection is dropped without an answer */
    assert_int_equal(testsrv_fault(srv, "{\"drop\": true, \"count\": -1}"), 0);
    tu_errors cap;
    mlo_client_t *c = open_at(store, testsrv_uri(srv), &cap, 2000);
    int64_t t0 = tu_wall_ms();
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "outage", "through-outage", NULL, &run), MLO_OK);
    char lid[64];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run)); /* offline: the local id */
    for (int i = 0; i < 500; i++)
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
    assert_int_equal(mlo_log_param(run, "p", "1"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 300), MLO_ERR_TIMEOUT);
    uint64_t failed;
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    assert_int_equal(failed, 0);
    /* the server comes back */
    tu_faults_clear(srv);
    for (int i = 500; i < 1000; i++)
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    uint64_t sent, acc;
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    mlo_client_stat(c, MLO_STAT_ACCEPTED, &acc);
    mlo_client_stat(c, MLO_STAT_FAILED, &failed);
    assert_int_equal(acc, 1002);
    assert_int_equal(sent, 1002);
    assert_int_equal(failed, 0);
    /* the handle now names the server's run */
    assert_string_not_equal(mlo_run_id(run), lid);
    json_t *d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 1);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    assert_string_equal(tu_str(json_object_get(r, "info"), "run_id"), mlo_run_id(run));
    assert_string_equal(tu_str(json_object_get(r, "info"), "run_name"), "through-outage");
    assert_string_equal(tu_str(json_object_get(r, "info"), "status"), "FINISHED");
    int64_t st = json_integer_value(json_object_get(json_object_get(r, "info"), "start_time"));
    assert_true(st >= t0 && st <= t0 + 5000);
    assert_int_equal(tu_count_metric(r, "m"), 1000);
    json_decref(d);
    assert_true(tu_errors_count(&cap, MLO_ERR_NETWORK, NULL));
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(store);
    free(store);
}

/* ---- what one client could not send, the next one delivers ---- */

static void test_outbox_adopted_by_next_client(void **state) {
    (void)state;
    char *store = new_store();
    assert_int_equal(testsrv_fault(srv, "{\"status\": 503, \"count\": -1}"), 0);
    mlo_client_t *a = open_at(store, testsrv_uri(srv), NULL, 300);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(a, NULL, "left-behind", NULL, &run), MLO_OK);
    char lid[64];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    for (int i = 0; i < 200; i++)
        assert_int_equal(mlo_log_metric(run, "x", i, i), MLO_OK);
    assert_int_equal(mlo_client_close(a), MLO_ERR_TIMEOUT); /* kept in the store */
    tu_faults_clear(srv);

    mlo_client_t *b = open_at(store, testsrv_uri(srv), NULL, 0);
    mlo_run_t *own;
    assert_int_equal(mlo_start_run(b, NULL, "next", NULL, &own), MLO_OK);
    assert_int_equal(mlo_log_metric(own, "y", 1, 1), MLO_OK);
    assert_int_equal(mlo_client_flush(b, 10000), MLO_OK);
    TU_WAIT_UNTIL(tu_stat(b, MLO_STAT_ADOPTED) >= 200, 5000);
    assert_int_equal(tu_stat(b, MLO_STAT_ADOPTED), 200);
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    assert_int_equal(tu_count_metric(r, "x"), 200);
    json_decref(d);
    assert_int_equal(mlo_client_close(b), MLO_OK);
    tu_rm_rf(store);
    free(store);
}

/* ---- a corrupted segment: the intact blocks are kept ---- */

static char *only_segment(const char *store) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/segments", store);
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    struct dirent *e;
    char *found = NULL;
    while ((e = readdir(dd)))
        if (strstr(e->d_name, ".seg")) {
            assert_null(found);
            found = malloc(strlen(dir) + strlen(e->d_name) + 2);
            sprintf(found, "%s/%s", dir, e->d_name);
        }
    closedir(dd);
    assert_non_null(found);
    return found;
}

static void test_corrupted_segment(void **state) {
    (void)state;
    char *store = new_store();
    mlo_client_t *c = open_local(store);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, "damaged", NULL, &run), MLO_OK);
    char lid[64];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    /* ten blocks of 100 metrics each */
    for (int b = 0; b < 10; b++) {
        for (int i = 0; i < 100; i++)
            assert_int_equal(mlo_log_metric(run, "v", b * 100 + i, b * 100 + i), MLO_OK);
        assert_int_equal(mlo_client_flush(c, 5000), MLO_OK);
    }
    assert_int_equal(mlo_client_close(c), MLO_OK);
    char *seg = only_segment(store);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    /* flip bytes in the middle of the file */
    int fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    char junk[16];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, sb.st_size / 2), (ssize_t)sizeof junk);
    close(fd);
    char err[512] = "";
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    assert_int_equal(st, MLO_ERR_STORE);
    assert_non_null(strstr(err, "damaged"));
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    size_t n = tu_count_metric(r, "v");
    /* one block lost (maybe two if the damage straddles), the rest kept */
    assert_true(n >= 800 && n < 1000);
    assert_non_null(tu_metric_at(r, "v", 0));
    assert_non_null(tu_metric_at(r, "v", 999)); /* blocks after the damage too */
    json_decref(d);
    free(seg);
    tu_rm_rf(store);
    free(store);
}

/* ---- a truncated segment (a torn last block): what is before it is kept ---- */

static void test_truncated_segment(void **state) {
    (void)state;
    char *store = new_store();
    /* blocks end at the flushes, not at the writer's own interval, which
     * never comes */
    tu_client_cfg k = {.store = store, .retries = -1, .flush_ms = 60000};
    mlo_client_t *c = tu_open(&k);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, "torn", NULL, &run), MLO_OK);
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < 100; i++)
            assert_int_equal(mlo_log_metric(run, "v", b * 100 + i, b * 100 + i), MLO_OK);
        assert_int_equal(mlo_client_flush(c, 5000), MLO_OK);
    }
    assert_int_equal(mlo_client_close(c), MLO_OK);
    char *seg = only_segment(store);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    assert_int_equal(truncate(seg, sb.st_size - 7), 0); /* the last block torn */
    char err[512] = "";
    assert_int_equal(mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlflow.runName", "torn");
    /* the blocks before the torn one: the first two batches at least (each
     * flush ends a block), and maybe the start of the third, which the
     * writer's cycle right after the second flush may have committed on its
     * own; never its last point, which is in the torn block */
    size_t n = tu_count_metric(r, "v");
    printf("torn segment: %zu points kept\n", n);
    assert_true(n >= 200 && n < 300);
    for (size_t i = 0; i < n; i++)
        assert_non_null(tu_metric_at(r, "v", (int64_t)i));
    assert_null(tu_metric_at(r, "v", 299));
    json_decref(d);
    free(seg);
    tu_rm_rf(store);
    free(store);
}

/* ---- disk full: writes fail, logging goes on, nothing crashes ---- */

static void test_disk_full(void **state) {
    (void)state;
    char *store = new_store();
    const char *uri = testsrv_uri(srv);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child: files may not grow past 600 KiB (writes fail with
         * EFBIG, as with a full disk), SIGXFSZ ignored */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        struct rlimit small = {600 << 10, rl.rlim_max};
        tu_errors cap;
        tu_errors_init(&cap);
        mlo_options_t *o = mlo_options_new();
        mlo_options_set_store_dir(o, store);
        mlo_options_set_tracking_uri(o, uri);
        mlo_options_set_queue_bytes(o, 256 << 10);
        mlo_options_set_full_policy(o, MLO_FULL_DROP, 0);
        mlo_options_set_error_callback(o, tu_errors_cb, &cap);
        mlo_client_t *c;
        if (mlo_client_open(o, &c) != MLO_OK)
            _exit(10);
        mlo_options_free(o);
        mlo_run_t *run;
        if (mlo_start_run(c, NULL, "disk-full", NULL, &run) != MLO_OK)
            _exit(11);
        if (setrlimit(RLIMIT_FSIZE, &small) != 0)
            _exit(12);
        /* random-ish values compress badly: the segment grows fast.  Until
         * the writer has said it cannot write and the queue has overflowed
         * (the disk is full: more calls would show the same), within 120 s:
         * under TSan on a loaded machine 200,000 calls were not always
         * enough for the writer to reach the limit */
        uint64_t x = 88172645463325252ull;
        int ok = 0, full = 0;
        double deadline = tu_now() + 120;
        for (int i = 0; i < 10000000; i++) {
            if (i % 1000 == 0 &&
                ((full > 1000 && tu_errors_count(&cap, MLO_ERR_STORE, "cannot write")) ||
                 tu_now() > deadline))
                break;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int st = mlo_log_metric(run, "noise", (double)x, i);
            if (st == MLO_OK)
                ok++;
            else if (st == MLO_ERR_QUEUE_FULL)
                full++;
            else
                _exit(13);
            if (i % 5000 == 0)
                usleep(20000);
        }
        if (!tu_errors_count(&cap, MLO_ERR_STORE, "cannot write"))
            _exit(14);
        /* room again: the writer's retry goes through, and what the ring
         * held is delivered */
        setrlimit(RLIMIT_FSIZE, &rl);
        int st = MLO_ERR_QUEUE_FULL;
        for (int i = 0; i < 100 && st == MLO_ERR_QUEUE_FULL; i++) {
            usleep(50000); /* the queue empties once the writer retries */
            st = mlo_log_metric(run, "after", 1, 1);
        }
        if (st != MLO_OK)
            _exit(15);
        if (mlo_client_flush(c, 30000) != MLO_OK)
            _exit(16);
        uint64_t sent;
        mlo_client_stat(c, MLO_STAT_SENT, &sent);
        if (sent != (uint64_t)ok + 1)
            _exit(17);
        mlo_client_close(c);
        _exit(full > 0 ? 0 : 18);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlflow.runName", "disk-full");
    assert_int_equal(tu_count_metric(r, "after"), 1);
    assert_true(tu_count_metric(r, "noise") > 0);
    json_decref(d);
    tu_rm_rf(store);
    free(store);
}

/* ---- an unusable store: a clear message, events go on in memory ---- */

static void test_unusable_store(void **state) {
    (void)state;
    tu_errors cap;
    /* a store under a regular file can never be created */
    mlo_client_t *c = open_at("/dev/null/mlo-store", testsrv_uri(srv), &cap, 0);
    assert_true(tu_errors_count(&cap, MLO_ERR_STORE, "/dev/null/mlo-store"));
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, "memory-only", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "m", 1, 1), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    json_t *d = tu_dump(srv);
    assert_int_equal(tu_count_metric(tu_run_by_tag(d, "mlflow.runName", "memory-only"), "m"), 1);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- two processes on one store, and a store locked by a live one ---- */

static void test_two_processes_one_store(void **state) {
    (void)state;
    char *store = new_store();
    const char *uri = testsrv_uri(srv);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char b;
            close(go[1]);
            if (read(go[0], &b, 1) != 0)
                _exit(20);
            mlo_options_t *o = mlo_options_new();
            mlo_options_set_store_dir(o, store);
            mlo_options_set_tracking_uri(o, uri);
            mlo_client_t *c;
            if (mlo_client_open(o, &c) != MLO_OK)
                _exit(21);
            mlo_options_free(o);
            mlo_run_t *run;
            char name[32];
            snprintf(name, sizeof name, "proc-%d", k);
            if (mlo_start_run(c, NULL, name, NULL, &run) != MLO_OK)
                _exit(22);
            for (int i = 0; i < 5000; i++)
                if (mlo_log_metric(run, "m", i, i) != MLO_OK)
                    _exit(23);
            if (mlo_client_flush(c, 30000) != MLO_OK)
                _exit(24);
            _exit(mlo_client_close(c) == MLO_OK ? 0 : 25);
        }
    }
    close(go[0]);
    close(go[1]); /* both start at once */
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    json_t *d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 2);
    assert_int_equal(tu_count_metric(tu_run_by_tag(d, "mlflow.runName", "proc-0"), "m"), 5000);
    assert_int_equal(tu_count_metric(tu_run_by_tag(d, "mlflow.runName", "proc-1"), "m"), 5000);
    json_decref(d);

    /* a live process holds its files: sync leaves them alone and says so */
    mlo_client_t *live = open_local(store);
    mlo_run_t *lr;
    assert_int_equal(mlo_start_run(live, NULL, "live-local", NULL, &lr), MLO_OK);
    assert_int_equal(mlo_log_metric(lr, "z", 1, 1), MLO_OK);
    assert_int_equal(mlo_client_flush(live, 5000), MLO_OK);
    {
        /* in this process: its files' locks are the live client's (flock
         * conflicts between open files, in one process too), and a fork
         * beside the client's threads could hang the child (ASan's locks) */
        char err[512] = "";
        assert_int_equal(mlo__sync_store(store, uri, NULL, NULL, err, sizeof err), MLO_OK);
        if (!strstr(err, "still running"))
            fail_msg("sync beside a live client: \"%s\"", err);
    }
    d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 2); /* the live process's run was not taken */
    json_decref(d);
    assert_int_equal(mlo_client_close(live), MLO_OK);
    /* now it is gone: sync takes it */
    char err[512];
    assert_int_equal(mlo__sync_store(store, uri, NULL, NULL, err, sizeof err), MLO_OK);
    d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), 3);
    assert_int_equal(tu_count_metric(tu_run_by_tag(d, "mlflow.runName", "live-local"), "z"), 1);
    json_decref(d);
    tu_rm_rf(store);
    free(store);
}

/* ---- many runs, nested: the sender's run table grows while resolving ---- */

static void test_many_nested_runs(void **state) {
    (void)state;
    char *store = new_store();
    mlo_client_t *c = open_local(store);
    enum { N = 150 };
    mlo_run_t *runs[N];
    char lids[N][40];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%d", i);
        /* run i is nested under run i / 2 (a tree) */
        assert_int_equal(mlo_start_run(c, NULL, name, i ? runs[i / 2] : NULL, &runs[i]), MLO_OK);
        snprintf(lids[i], sizeof lids[i], "%s", mlo_run_id(runs[i]));
        assert_int_equal(mlo_log_metric(runs[i], "i", i, 0), MLO_OK);
    }
    assert_int_equal(mlo_client_close(c), MLO_OK);
    char err[512];
    assert_int_equal(mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    json_t *d = tu_dump(srv);
    assert_int_equal(tu_nruns(d), N);
    for (int i = 1; i < N; i++) {
        json_t *r = tu_run_by_tag(d, "mlo.local_id", lids[i]);
        json_t *p = tu_run_by_tag(d, "mlo.local_id", lids[i / 2]);
        assert_string_equal(tu_str(json_object_get(r, "tags"), "mlflow.parentRunId"),
                            tu_str(json_object_get(p, "info"), "run_id"));
        assert_int_equal(tu_count_metric(r, "i"), 1);
    }
    json_decref(d);
    tu_rm_rf(store);
    free(store);
}

/* ---- sync: a server down is an error to retry later; refusals are said ---- */

static void test_sync_resumable_and_refusals(void **state) {
    (void)state;
    char *store = new_store();
    mlo_client_t *c = open_local(store);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, "to-sync", NULL, &run), MLO_OK);
    char lid[40];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    assert_int_equal(mlo_log_param(run, "p", "1"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 5000), MLO_OK);
    assert_int_equal(mlo_log_param(run, "p", "2"), MLO_OK); /* the server will refuse it */
    for (int i = 0; i < 50; i++)
        assert_int_equal(mlo_log_metric(run, "m", i, i), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);

    setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0", 1);
    assert_int_equal(testsrv_fault(srv, "{\"status\": 503, \"count\": -1}"), 0);
    char err[512] = "";
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    assert_int_equal(st, MLO_ERR_SERVER);
    assert_non_null(strstr(err, "run sync again"));
    tu_faults_clear(srv);
    unsetenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES");
    st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    assert_int_equal(st, MLO_ERR_SERVER_INVALID);
    assert_non_null(strstr(err, "1 events were refused"));
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    assert_string_equal(tu_str(json_object_get(r, "params"), "p"), "1");
    assert_int_equal(tu_count_metric(r, "m"), 50);
    json_decref(d);
    tu_rm_rf(store);
    free(store);
}

/* ---- a relative store path is taken where the client opened ---- */

static void test_relative_store_survives_chdir(void **state) {
    (void)state;
    char *dir = tu_tmpdir("rel");
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_store_dir(o, "rel-store");
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    assert_int_equal(chdir("/"), 0); /* the program moves elsewhere */
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, NULL, "rel", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "m", 1, 1), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    char store[600];
    snprintf(store, sizeof store, "%s/rel-store", dir);
    char err[512];
    assert_int_equal(mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    json_t *d = tu_dump(srv);
    assert_int_equal(tu_count_metric(tu_run_by_tag(d, "mlflow.runName", "rel"), "m"), 1);
    json_decref(d);
    assert_int_equal(chdir(cwd), 0);
    tu_rm_rf(dir);
    free(dir);
}

int main(int argc, char **argv) {
    tu_init("store");
    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_local_run_then_sync_twice, setup),
        cmocka_unit_test_setup(test_server_down_then_up, setup),
        cmocka_unit_test_setup(test_outbox_adopted_by_next_client, setup),
        cmocka_unit_test_setup(test_corrupted_segment, setup),
        cmocka_unit_test_setup(test_truncated_segment, setup),
        cmocka_unit_test_setup(test_disk_full, setup),
        cmocka_unit_test_setup(test_unusable_store, setup),
        cmocka_unit_test_setup(test_two_processes_one_store, setup),
        cmocka_unit_test_setup(test_many_nested_runs, setup),
        cmocka_unit_test_setup(test_sync_resumable_and_refusals, setup),
        cmocka_unit_test_setup(test_relative_store_survives_chdir, setup),
    };
    int rc = tu_run_group("test_store", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
