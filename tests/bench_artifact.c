/*
 * bench_artifact.c - a large artifact through mlo (mlo_log_artifact +
 * mlo_client_flush) side by side with a plain streamed upload of the same
 * file to the same server, in one run (issue 13, item 5).
 *
 * Usage: bench_artifact [MB [rounds]]   (defaults: 200 MB, 5 rounds)
 *
 * One loopback test server (tests/mlflow_test_server.py, serving artifacts);
 * one file of MB MiB in a temporary directory on the same file system as the
 * stores (so a reflink or copy_file_range is possible where the file system
 * offers it), in the page cache for every contender alike.  Per round, in a
 * rotating order:
 *   curl -T      /usr/bin/curl -sS -T FILE <the run's proxied artifact PUT
 *                URL>: the reference the issue names (a separate process: its
 *                start, a few ms, is in the figure)
 *   mlo PUT      the library's own HTTP layer doing that single streamed PUT
 *                (mlo__api_artifact_put on the file): what our transport
 *                costs without any staging
 *   mlo fsync    mlo_log_artifact + mlo_client_flush, store with the default
 *                policy (MLO_FSYNC_INTERVAL: the staged copy is forced to disk
 *                before the call returns)
 *   mlo nofsync  the same with MLO_FSYNC_NONE (survives kill -9, not a power
 *                loss)
 *   down: log fsync / nofsync
 *                the log call alone while the server's artifact API is down
 *                (503): nothing can be sent meanwhile, so the call pays the
 *                whole of staging, durability included (flushed afterwards,
 *                untimed, once the API is back)
 * Each mlo contender is a fresh client and run (started and created on the
 * server before the clock starts); the log call alone is timed too.  After
 * each upload the stored size is checked (the server's dump) and the file
 * deleted from the server.  Printed: the machine and its load, then per
 * contender the median and the minimum wall time, the median of the log call
 * alone, and the ratio of the medians to curl -T's; the process's peak RSS
 * growth over the whole benchmark (memory stays flat: far below the file's
 * size).  A benchmark, not a test: no threshold.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "mlo.h"
#include "mlo_api.h"
#include "mlo_client.h"
#include "testsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

enum { C_CURL, C_PUT, C_FSYNC, C_NOFSYNC, C_DOWN_FSYNC, C_DOWN_NOFSYNC, NC };
static const char *names[NC] = {"curl -T",     "mlo PUT",         "mlo fsync",
                                "mlo nofsync", "down: log fsync", "down: log nofsync"};

static testsrv *srv;
static const char *file;
static int64_t file_size;

static void die(const char *what) {
    fprintf(stderr, "bench_artifact: %s\n", what);
    bench_store_cleanup();
    testsrv_stop(srv);
    exit(1);
}

static mlo_client_t *open_client(int fsync_policy) {
    mlo_options_t *o = mlo_options_new();
    if (!o || mlo_options_set_tracking_uri(o, testsrv_uri(srv)) != MLO_OK ||
        mlo_options_set_store_dir(o, bench_store_dir()) != MLO_OK ||
        mlo_options_set_fsync(o, (mlo_fsync_policy)fsync_policy, 1000) != MLO_OK ||
        mlo_options_set_close_timeout_ms(o, 120000) != MLO_OK)
        die("options");
    mlo_client_t *c = NULL;
    if (mlo_client_open(o, &c) != MLO_OK)
        die("mlo_client_open");
    mlo_options_free(o);
    return c;
}

/* The stored size of <exp>/<run>/artifacts/<rel> (-1: not there). */
static int64_t stored_size(const char *exp, const char *rid, const char *rel) {
    char want[512];
    snprintf(want, sizeof want, "%s/%s/artifacts/%s", exp, rid, rel);
    long code = 0;
    char *body = testsrv_get(srv, "/_test/dump", &code);
    json_t *d = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    int64_t size = -1;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(d, "artifacts"), i, a) {
        const char *p = json_string_value(json_object_get(a, "path"));
        if (p && !strcmp(p, want))
            size = json_integer_value(json_object_get(a, "size"));
    }
    json_decref(d);
    return size;
}

static void check_and_delete(const char *exp, const char *rid, const char *rel) {
    int64_t got = stored_size(exp, rid, rel);
    if (got != file_size) {
        fprintf(stderr, "bench_artifact: %s stored with %lld bytes, expected %lld\n", rel,
                (long long)got, (long long)file_size);
        die("upload incomplete");
    }
    char path[768];
    snprintf(path, sizeof path, "/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/%s", exp, rid,
             rel);
    long code = 0;
    free(testsrv_request(srv, "DELETE", path, NULL, 0, NULL, &code, NULL));
}

/* The file system under path and whether it clones files (FICLONE). */
static const char *fs_kind(const char *path) {
    static char out[128];
    struct statfs sf;
    const char *t = "?";
    if (!path)
        return t;
    if (statfs(path, &sf) == 0) {
        switch ((unsigned long)sf.f_type) {
        case 0xef53:
            t = "ext4";
            break;
        case 0x58465342:
            t = "xfs";
            break;
        case 0x9123683e:
            t = "btrfs";
            break;
        case 0x01021994:
            t = "tmpfs";
            break;
        case 0x794c7630:
            t = "overlayfs";
            break;
        default:
            t = "other";
            break;
        }
    }
    char probe[300];
    snprintf(probe, sizeof probe, "%s.probe", path);
    int src = open(path, O_RDONLY | O_CLOEXEC);
    int dst = open(probe, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    int clone = src >= 0 && dst >= 0 && ioctl(dst, FICLONE, src) == 0;
    if (src >= 0)
        close(src);
    if (dst >= 0)
        close(dst);
    unlink(probe);
    snprintf(out, sizeof out, "file system %s (%s)", t,
             clone ? "clones files: staging is a reflink"
                   : "no reflink: staging is a copy_file_range");
    return out;
}

/* curl -T: seconds, or -1. */
static double run_curl(const char *exp, const char *rid, const char *rel) {
    char url[768];
    snprintf(url, sizeof url, "%s/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/%s",
             testsrv_uri(srv), exp, rid, rel);
    int64_t t0 = bench_mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0)
            dup2(nul, 1);
        execl("/usr/bin/curl", "curl", "-sS", "--fail", "--noproxy", "*", "-T", file, url,
              (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return -1;
    return (double)(bench_mono_ns() - t0) / 1e9;
}

/* The library's own HTTP layer, one streamed PUT (the internals this
 * benchmark reaches: mlo_api, on the client's environment). */
static double run_put(mlo_client_t *c, const char *exp, const char *rid, const char *rel) {
    char root[256];
    snprintf(root, sizeof root, "%s/%s/artifacts", exp, rid);
    mlo_api *api = mlo__api_new(mlo__client_env(c));
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (!api || fd < 0)
        die("mlo PUT set-up");
    mlo_api_error e;
    int64_t t0 = bench_mono_ns();
    int st = mlo__api_artifact_put(api, root, rel, fd, 0, file_size, &e);
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    close(fd);
    mlo__api_free(api);
    if (st != MLO_OK) {
        fprintf(stderr, "bench_artifact: PUT: %s %s\n", mlo_strerror(st), e.message);
        return -1;
    }
    return s;
}

/* log + flush (no flush: log_only): seconds, the log call alone into
 * *call_s. */
static double run_mlo(mlo_client_t *c, mlo_run_t *run, const char *dir, double *call_s,
                      int log_only) {
    int64_t t0 = bench_mono_ns();
    int st = mlo_log_artifact(run, file, dir);
    int64_t t1 = bench_mono_ns();
    if (st == MLO_OK && !log_only)
        st = mlo_client_flush(c, 300000);
    int64_t t2 = bench_mono_ns();
    if (st != MLO_OK) {
        fprintf(stderr, "bench_artifact: log/flush: %s\n", mlo_strerror(st));
        return -1;
    }
    *call_s = (double)(t1 - t0) / 1e9;
    return (double)(t2 - t0) / 1e9;
}

int main(int argc, char **argv) {
    long mb = argc > 1 ? atol(argv[1]) : 200;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (mb <= 0 || rounds <= 0) {
        fprintf(stderr, "usage: bench_artifact [MB [rounds]]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bench_print_machine();
    bench_print_load();
    long hwm0 = bench_status_kb("VmHWM");
    srv = testsrv_start(NULL);
    if (!srv)
        die("cannot start the test server");

    /* the file, next to the stores */
    const char *d0 = bench_store_dir();
    char *dir = strdup(d0);
    if (!dir || mkdir(dir, 0700) != 0)
        die("scratch directory");
    static char fpath[256];
    snprintf(fpath, sizeof fpath, "%s/model.bin", dir);
    file = fpath;
    unsigned char *buf = malloc(1 << 20);
    int fd = open(file, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (!buf || fd < 0)
        die("file");
    for (long i = 0; i < mb; i++) {
        for (size_t k = 0; k < (1u << 20); k += 8) {
            uint64_t v = ((uint64_t)i << 32) ^ (k * 0x9E3779B97F4A7C15ull);
            memcpy(buf + k, &v, 8);
        }
        if (write(fd, buf, 1 << 20) != 1 << 20)
            die("writing the file");
    }
    close(fd);
    free(buf);
    free(dir);
    file_size = (int64_t)mb << 20;
    printf("file: %ld MiB in %s, %s\n", mb, file, fs_kind(file));

    double wall[NC][64], call[NC][64];
    int n[NC] = {0};
    if (rounds > 64)
        rounds = 64;
    bench_load load;
    bench_load_begin(&load, testsrv_pid(srv), 0);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < NC; k++) {
            int which = (k + r) % NC;
            int nofsync = which == C_NOFSYNC || which == C_DOWN_NOFSYNC;
            int down = which == C_DOWN_FSYNC || which == C_DOWN_NOFSYNC;
            mlo_client_t *c = open_client(nofsync ? MLO_FSYNC_NONE : MLO_FSYNC_INTERVAL);
            mlo_run_t *run;
            if (mlo_start_run(c, "bench-artifact", NULL, NULL, &run) != MLO_OK ||
                mlo_client_flush(c, 30000) != MLO_OK)
                die("run");
            char exp[64], rid[64], rel[128], sub[64];
            snprintf(exp, sizeof exp, "%s", mlo_run_experiment_id(run));
            snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
            snprintf(sub, sizeof sub, "r%d", r);
            snprintf(rel, sizeof rel, "r%d/model.bin", r);
            double s = -1, cs = 0;
            switch (which) {
            case C_CURL:
                s = run_curl(exp, rid, rel);
                break;
            case C_PUT:
                s = run_put(c, exp, rid, rel);
                break;
            default:
                if (down && testsrv_config(srv, "{\"artifacts_down\": true}") != 0)
                    die("config");
                s = run_mlo(c, run, sub, &cs, down);
                if (down && (testsrv_config(srv, "{\"artifacts_down\": false}") != 0 ||
                             mlo_client_flush(c, 300000) != MLO_OK))
                    die("flush after the artifact API came back");
                if (down)
                    s = cs;
                break;
            }
            if (s < 0)
                die(names[which]);
            check_and_delete(exp, rid, rel);
            wall[which][n[which]] = s;
            call[which][n[which]++] = cs;
            mlo_end_run(run, MLO_RUN_FINISHED);
            if (mlo_client_close(c) != MLO_OK)
                die("close");
        }
    }
    bench_load_end(&load, "the rounds");
    double ref = 0;
    printf("\n%-18s %10s %10s %12s %14s\n", "contender", "median s", "min s", "log call s",
           "vs curl -T");
    for (int k = 0; k < NC; k++) {
        double mn = wall[k][0];
        for (int i = 1; i < n[k]; i++)
            if (wall[k][i] < mn)
                mn = wall[k][i];
        double med = bench_median(wall[k], (size_t)n[k]);
        double cmed = bench_median(call[k], (size_t)n[k]);
        if (k == C_CURL)
            ref = med;
        if (k == C_FSYNC || k == C_NOFSYNC)
            printf("%-18s %10.3f %10.3f %12.3f %13.2fx\n", names[k], med, mn, cmed,
                   ref > 0 ? med / ref : 0);
        else if (k == C_CURL || k == C_PUT)
            printf("%-18s %10.3f %10.3f %12s %13.2fx\n", names[k], med, mn, "-",
                   ref > 0 ? med / ref : 0);
        else
            printf("%-18s %10s %10s %12.3f %14s\n", names[k], "-", "-", cmed, "-");
    }
    long hwm1 = bench_status_kb("VmHWM");
    printf("\n%d rounds of %ld MiB; peak RSS grew by %ld MiB over the whole benchmark\n", rounds,
           mb, (hwm1 - hwm0) / 1024);
    testsrv_stop(srv);
    bench_store_cleanup();
    return 0;
}
