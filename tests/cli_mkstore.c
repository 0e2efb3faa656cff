/*
 * cli_mkstore.c - writes the local store that tests/test_cli.sh runs the
 * `mlo` tool against, with the segment writer (src/mlo_log.h).
 *
 * Usage: cli_mkstore STORE
 * Makes STORE/segments/ with:
 *   0001.seg  runs A (iris/knn-k1, FINISHED, accuracy 0.80..0.93 over steps
 *             0-3, loss over 10 steps) and B (iris/knn-k5, FINISHED,
 *             accuracy 0.96)
 *   0002.seg  run C (other/knn-k9, no END_RUN: RUNNING; accuracy 0.7 logged
 *             twice identically, a NaN metric "weird"), and a late param of A
 *   0003.seg  run D (iris/damaged-run) over three blocks, the middle one
 *             corrupted: accuracy 0.5 (step 0) and 0.55 (step 2) survive,
 *             0.6 (step 1) is lost
 * and STORE/runs.map mapping B to the server id "srv-b-0001".
 * Ids: A aaaa0000...0001, B bbbb...0002, C cccc...0003, D dddd...0004.
 * Start times (ms): A 1700000000000, B +100 s, C +200 s, D +300 s.
 *
 * Usage: cli_mkstore --api STORE DIR
 * Makes a second local store STORE through the public API (no tracking URI:
 * a local client), with one run "with-artifacts" of experiment "artifacts":
 * param k=7, metric accuracy 0.5 (step 0) and 0.75 (step 1), and
 *   artifacts  data/data.csv      mlo_log_artifact of DIR/data.csv (written here:
 *                                 3000 bytes, byte i = (i * 7 + 3) & 255)
 *              model/weights.bin  mlo_log_artifact_bytes, the same 3000 bytes
 *              notes/100% done.txt  mlo_log_artifact_bytes of "done\n" (a name
 *                                 the manifest must percent-encode)
 *              empty.bin          mlo_log_artifact_bytes(NULL, 0): an empty file
 *   datasets   "iris-train" from s3://bucket/iris/train.csv, digest
 *              "0123456789abcdef0123456789abcdef" (given)
 *              "iris-local" from DIR/data.csv, digest computed (the first 32
 *              hex characters of its SHA-256)
 * then ends it (FINISHED) and closes the client; every call must return
 * MLO_OK.  Prints the run's local id on stdout.
 *
 * Usage: cli_mkstore --dead-ring STORE
 * A child process opens a local client on STORE, logs a metric and dies
 * without closing it (as after a crash): its queue file stays in /dev/shm
 * (behind STORE/rings/<procid>.ring).  Prints that file's path.
 *
 * Usage: cli_mkstore --hostile STORE
 * Makes a store for the escaping test of `mlo report` (tests/test_report.sh)
 * with the segment writer, which checks no key: every string a run has
 * (experiment, name, param and tag keys and values, metric keys, a
 * dataset's name and source) carries markup that would run a script or
 * set document.title to "PWNED" if it reached the page unescaped, quotes of
 * both kinds, control characters and invalid UTF-8.  Run H1 (FINISHED):
 * metric "acc<script>" over steps 0-9, "loss" over 0-9 with NaN at step 4
 * and +Infinity at step 7 (three pieces: steps 0-3, 5-6, 8-9), system/cpu,
 * lat.p50/.p95/.p99; run H2 (FAILED): "loss" over 5000 steps (more than a
 * chart's pixel columns: drawn as min/max per column), "acc<script>" 0.5.
 * Ids: H1 eeee...0005, H2 ffff...0006.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlo.h"
#include "mlo_log.h"
#include "mlo_queue.h"

#define A "aaaa0000000000000000000000000001"
#define B "bbbb0000000000000000000000000002"
#define C "cccc0000000000000000000000000003"
#define D "dddd0000000000000000000000000004"
#define T0 1700000000000LL

static char store[2048];

static mlo_logw *seg(const char *name) {
    char p[4096], err[256];
    snprintf(p, sizeof p, "%s/segments/%s", store, name);
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    if (!w) {
        fprintf(stderr, "cli_mkstore: %s\n", err);
        exit(1);
    }
    return w;
}

static void add(mlo_logw *w, mlo_log_event e) {
    if (mlo__logw_add(w, &e) != 0) {
        perror("cli_mkstore: add");
        exit(1);
    }
}

static mlo_log_off commit(mlo_logw *w) {
    mlo_log_off end;
    if (mlo__logw_commit(w, 0, &end) != 0) {
        perror("cli_mkstore: commit");
        exit(1);
    }
    return end;
}

static void start(mlo_logw *w, const char *id, const char *exp, const char *name, long long ts) {
    static const char *tk[] = {"mlflow.user", "team"};
    static const char *tv[] = {"tester", "vision"};
    add(w, (mlo_log_event){.type = MLO_EV_START_RUN,
                           .run_id = id,
                           .key = exp,
                           .value = name,
                           .timestamp = ts,
                           .ntags = 2,
                           .tag_keys = tk,
                           .tag_values = tv});
}

static void metric(mlo_logw *w, const char *id, const char *key, double v, long long step,
                   long long ts) {
    add(w, (mlo_log_event){.type = MLO_REC_METRIC,
                           .run_id = id,
                           .key = key,
                           .value_num = v,
                           .step = step,
                           .timestamp = ts});
}

static void param(mlo_logw *w, const char *id, const char *key, const char *v) {
    add(w, (mlo_log_event){.type = MLO_REC_PARAM, .run_id = id, .key = key, .value = v});
}

static void end(mlo_logw *w, const char *id, int status, long long ts) {
    add(w, (mlo_log_event){
               .type = MLO_REC_END_RUN, .run_id = id, .value_num = status, .timestamp = ts});
}

static void api_ok(int st, const char *what) {
    if (st != MLO_OK) {
        fprintf(stderr, "cli_mkstore: %s: %s\n", what, mlo_strerror(st));
        exit(1);
    }
}

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    fprintf(stderr, "cli_mkstore: callback: %s: %s\n", mlo_strerror(st), msg ? msg : "(null)");
}

/* cli_mkstore --api STORE DIR: see the top. */
static int api_store(const char *dir, const char *files) {
    char data_path[4096];
    snprintf(data_path, sizeof data_path, "%s/data.csv", files);
    unsigned char bytes[3000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)((i * 7 + 3) & 255);
    FILE *f = fopen(data_path, "wb");
    if (!f || fwrite(bytes, 1, sizeof bytes, f) != sizeof bytes || fclose(f) != 0) {
        perror(data_path);
        return 1;
    }
    mlo_options_t *o = mlo_options_new();
    if (!o)
        return 1;
    api_ok(mlo_options_set_tracking_uri(o, NULL), "set_tracking_uri");
    api_ok(mlo_options_set_store_dir(o, dir), "set_store_dir");
    api_ok(mlo_options_set_error_callback(o, on_error, NULL), "set_error_callback");
    mlo_client_t *c;
    api_ok(mlo_client_open(o, &c), "client_open");
    mlo_options_free(o);
    mlo_run_t *r;
    api_ok(mlo_start_run(c, "artifacts", "with-artifacts", NULL, &r), "start_run");
    api_ok(mlo_log_param(r, "k", "7"), "log_param");
    api_ok(mlo_log_metric(r, "accuracy", 0.5, 0), "log_metric");
    api_ok(mlo_log_metric(r, "accuracy", 0.75, 1), "log_metric");
    api_ok(mlo_log_artifact(r, data_path, "data"), "log_artifact");
    api_ok(mlo_log_artifact_bytes(r, bytes, sizeof bytes, "model/weights.bin"),
           "log_artifact_bytes");
    api_ok(mlo_log_artifact_bytes(r, "done\n", 5, "notes/100% done.txt"), "log_artifact_bytes");
    api_ok(mlo_log_artifact_bytes(r, NULL, 0, "empty.bin"), "log_artifact_bytes (empty)");
    api_ok(mlo_log_dataset(r, "iris-train", "s3://bucket/iris/train.csv",
                           "0123456789abcdef0123456789abcdef"),
           "log_dataset (s3)");
    api_ok(mlo_log_dataset(r, "iris-local", data_path, NULL), "log_dataset (local)");
    api_ok(mlo_end_run(r, MLO_RUN_FINISHED), "end_run");
    printf("%s\n", mlo_run_id(r));
    api_ok(mlo_client_flush(c, 10000), "client_flush");
    api_ok(mlo_client_close(c), "client_close");
    return 0;
}

#define H1 "eeee0000000000000000000000000005"
#define H2 "ffff0000000000000000000000000006"
#define EVIL "<script>document.title='PWNED'</script>"

/* cli_mkstore --hostile STORE: see the top. */
static int hostile_store(void) {
    char p[4096];
    mkdir(store, 0700);
    snprintf(p, sizeof p, "%s/segments", store);
    if (mkdir(p, 0700) != 0) {
        perror(p);
        return 1;
    }
    static const char *tk[] = {"mlflow.note.content", "t\"" EVIL};
    static const char *tv[] = {"line one\nline two\t\x07"
                               "bell \xff\xfe"
                               " bad UTF-8",
                               "<svg onload=\"document.title='PWNED'\">\x1b[31m"};
    mlo_logw *w = seg("0001.seg");
    add(w, (mlo_log_event){.type = MLO_EV_START_RUN,
                           .run_id = H1,
                           .key = "exp" EVIL,
                           .value = "h1" EVIL "\"'&amp;\x01\x1b",
                           .timestamp = T0,
                           .ntags = 2,
                           .tag_keys = tk,
                           .tag_values = tv});
    param(w, H1, "\"><img src=x onerror=\"document.title='PWNED'\">", "</td></tr></table>" EVIL);
    param(w, H1, "lr", "0.1");
    for (int i = 0; i < 10; i++) {
        metric(w, H1, "acc" EVIL, 0.5 + i * 0.05, i, T0 + i);
        metric(w, H1, "loss", i == 4 ? NAN : i == 7 ? INFINITY : 1.0 / (i + 1), i, T0 + i);
        metric(w, H1, "system/cpu", 40 + i, i, T0 + i);
        metric(w, H1, "lat.p50", 10 + i, i, T0 + i);
        metric(w, H1, "lat.p95", 20 + i, i, T0 + i);
        metric(w, H1, "lat.p99", 30 + i, i, T0 + i);
    }
    add(w, (mlo_log_event){.type = MLO_REC_DATASET,
                           .run_id = H1,
                           .key = "ds" EVIL,
                           .value = "{\"uri\": \"s3://b/</script><script>document.title="
                                    "'PWNED'</script>\"}",
                           .digest = "d\"igest",
                           .source_type = "s3'",
                           .context = "train<b>",
                           .timestamp = T0});
    end(w, H1, 3, T0 + 2000);
    commit(w);
    add(w, (mlo_log_event){.type = MLO_EV_START_RUN,
                           .run_id = H2,
                           .key = "exp" EVIL,
                           .value = "'onmouseover='document.title=\"PWNED\"",
                           .timestamp = T0 + 10000});
    param(w, H2, "\"><img src=x onerror=\"document.title='PWNED'\">", "x");
    param(w, H2, "lr", "0.01");
    for (int i = 0; i < 5000; i++)
        metric(w, H2, "loss", 1.0 / (i + 1) + (i % 7) * 0.001, i, T0 + 10000 + i);
    metric(w, H2, "acc" EVIL, 0.5, 9, T0 + 20000);
    end(w, H2, 4, T0 + 20000);
    commit(w);
    mlo__logw_close(w);
    return 0;
}

/* cli_mkstore --dead-ring STORE: see the top. */
static int dead_ring(const char *dir) {
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        mlo_options_t *o = mlo_options_new();
        mlo_options_set_store_dir(o, dir);
        mlo_options_set_tracking_uri(o, NULL);
        mlo_client_t *c;
        mlo_run_t *r;
        if (mlo_client_open(o, &c) != MLO_OK ||
            mlo_start_run(c, "shm", "dead", NULL, &r) != MLO_OK ||
            mlo_log_metric(r, "x", 1, 0) != MLO_OK)
            _exit(2);
        _exit(0); /* no close */
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    char rd[4096];
    snprintf(rd, sizeof rd, "%s/rings", dir);
    DIR *d = opendir(rd);
    if (!d)
        return 1;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".ring"))
            continue;
        char lp[8192], target[4096];
        snprintf(lp, sizeof lp, "%s/%s", rd, e->d_name);
        ssize_t n = readlink(lp, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            printf("%s\n", target);
            found = 1;
        }
    }
    closedir(d);
    return found ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--dead-ring"))
        return dead_ring(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "--api"))
        return api_store(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "--hostile")) {
        snprintf(store, sizeof store, "%s", argv[2]);
        return hostile_store();
    }
    if (argc != 2) {
        fprintf(stderr, "usage: cli_mkstore STORE | --api STORE DIR | --hostile STORE | "
                        "--dead-ring STORE\n");
        return 2;
    }
    snprintf(store, sizeof store, "%s", argv[1]);
    char p[4096];
    mkdir(store, 0700);
    snprintf(p, sizeof p, "%s/segments", store);
    if (mkdir(p, 0700) != 0) {
        perror(p);
        return 1;
    }

    mlo_logw *w = seg("0001.seg");
    start(w, A, "iris", "knn-k1", T0);
    param(w, A, "k", "1");
    param(w, A, "distance", "euclid");
    const double acc[] = {0.80, 0.85, 0.90, 0.93};
    for (int i = 0; i < 4; i++)
        metric(w, A, "accuracy", acc[i], i, T0 + 100 * i);
    for (int i = 0; i < 10; i++)
        metric(w, A, "loss", 1.0 / (i + 1), i, T0 + 50 * i);
    metric(w, A, "f1", 0.91, 0, T0 + 500);
    metric(w, A, "latency.p95", 80, 0, T0 + 500);
    metric(w, A, "demographic_parity_diff", 0.05, 0, T0 + 500);
    commit(w);
    start(w, B, "iris", "knn-k5", T0 + 100000);
    param(w, B, "k", "5");
    metric(w, B, "accuracy", 0.96, 0, T0 + 100100);
    metric(w, B, "f1", 0.95, 0, T0 + 100100);
    metric(w, B, "latency.p95", 120, 0, T0 + 100100);
    metric(w, B, "demographic_parity_diff", 0.02, 0, T0 + 100100);
    end(w, B, 3, T0 + 101000);
    end(w, A, 3, T0 + 3200);
    commit(w);
    mlo__logw_close(w);

    w = seg("0002.seg");
    start(w, C, "other", "knn-k9", T0 + 200000);
    metric(w, C, "accuracy", 0.7, 0, T0 + 200100);
    metric(w, C, "accuracy", 0.7, 0, T0 + 200100); /* a replayed duplicate */
    metric(w, C, "weird", NAN, 0, T0 + 200100);
    param(w, A, "seed", "42");
    commit(w);
    mlo__logw_close(w);

    w = seg("0003.seg");
    start(w, D, "iris", "damaged-run", T0 + 300000);
    metric(w, D, "accuracy", 0.5, 0, T0 + 300100);
    mlo_log_off e1 = commit(w);
    metric(w, D, "accuracy", 0.6, 1, T0 + 300200);
    mlo_log_off e2 = commit(w);
    metric(w, D, "accuracy", 0.55, 2, T0 + 300300);
    commit(w);
    mlo__logw_close(w);
    /* flip a byte in the middle block's payload */
    snprintf(p, sizeof p, "%s/segments/0003.seg", store);
    int fd = open(p, O_RDWR);
    unsigned char b;
    off_t at = (off_t)(e1 + (e2 - e1) / 2 + 8);
    if (fd < 0 || pread(fd, &b, 1, at) != 1)
        return 1;
    b ^= 0xFF;
    if (pwrite(fd, &b, 1, at) != 1)
        return 1;
    close(fd);

    snprintf(p, sizeof p, "%s/runs.map", store);
    FILE *f = fopen(p, "w");
    if (!f)
        return 1;
    fprintf(f, "%s srv-b-0001\n", B);
    fclose(f);
    return 0;
}
