/*
 * bench_report.c - `mlo report` at scale (issue 17): 100 runs x 10 metrics
 * x 10,000 steps (10 million points) written as a local store with the
 * segment writer, then `mlo report STORE --sort loss --asc -o page.html`
 * run as a child process.  Prints the machine, the page's size, the
 * child's CPU time (user + system, from wait4) and wall time, and the
 * report's own split into reading and rendering (mlo report -v).
 *
 * Budget (issue 17): the page under 5 MB, under 2 s of CPU.  The size is
 * deterministic: over 5 MB fails (exit 1).  The CPU time is printed with
 * the budget beside it, never failed on (the machine may be shared).
 *
 * Usage: bench_report MLO [RUNS METRICS STEPS]
 * MLO_BENCH_KEEP=1 keeps the store and the page (for profiling).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlo.h"
#include "mlo_log.h"
#include "mlo_queue.h"

static const char *KEYS[10] = {"loss",          "accuracy",   "val_loss", "val_accuracy",
                               "learning_rate", "grad_norm",  "f1",       "throughput",
                               "system/cpu",    "latency.p95"};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double noise(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

static void add(mlo_logw *w, const mlo_log_event *e) {
    if (mlo__logw_add(w, e) != 0) {
        perror("bench_report: add");
        exit(2);
    }
}

static void commit(mlo_logw *w) {
    mlo_log_off end;
    if (mlo__logw_commit(w, 0, &end) != 0) {
        perror("bench_report: commit");
        exit(2);
    }
}

static void machine(void) {
    struct utsname u;
    char model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    uname(&u);
    printf("machine: %s %s %s, %s, %ld CPUs online\n", u.sysname, u.release, u.machine, model,
           sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: bench_report MLO [RUNS METRICS STEPS]\n");
        return 2;
    }
    int nruns = argc == 5 ? atoi(argv[2]) : 100, nmet = argc == 5 ? atoi(argv[3]) : 10;
    long steps = argc == 5 ? atol(argv[4]) : 10000;
    if (nmet > 10)
        nmet = 10;
    machine();
    char dir[] = "/tmp/mlo-bench-report.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/store/segments", dir);
    snprintf(path, sizeof path, "%s/store", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/store/segments", dir);
    mkdir(path, 0700);

    double t0 = now_s();
    for (int r = 0; r < nruns; r++) {
        char id[33], name[64], seg[4200], err[256], lr[32], bs[32];
        snprintf(id, sizeof id, "%032x", r + 1);
        snprintf(name, sizeof name, "run-%03d", r);
        snprintf(seg, sizeof seg, "%s/%08d.seg", path, r);
        mlo_logw *w = mlo__logw_create(seg, err, sizeof err);
        if (!w) {
            fprintf(stderr, "bench_report: %s\n", err);
            return 2;
        }
        long long ts = 1700000000000LL + r * 1000000LL;
        add(w, &(mlo_log_event){.type = MLO_EV_START_RUN,
                                .run_id = id,
                                .key = "bench",
                                .value = name,
                                .timestamp = ts});
        snprintf(lr, sizeof lr, "%g", 0.001 * (1 + r % 10));
        snprintf(bs, sizeof bs, "%d", 16 << (r % 4));
        add(w, &(mlo_log_event){.type = MLO_REC_PARAM, .run_id = id, .key = "lr", .value = lr});
        add(w, &(mlo_log_event){.type = MLO_REC_PARAM, .run_id = id, .key = "batch", .value = bs});
        double rate = 1.0 + (r % 10) * 0.3;
        for (long s = 0; s < steps; s++) {
            double x = (double)s / (double)steps;
            for (int k = 0; k < nmet; k++) {
                double v;
                switch (k) {
                case 0:
                case 2:
                    v = exp(-rate * 4 * x) + 0.02 * noise() + 0.05 * (k == 2);
                    break;
                case 1:
                case 3:
                case 6:
                    v = 1 - 0.9 * exp(-rate * 5 * x) + 0.01 * noise();
                    break;
                case 4:
                    v = 0.01 * pow(0.5, floor(x * 10)); /* a step schedule, decades apart */
                    break;
                default:
                    v = 50 + 10 * sin(x * 40 + r) + 5 * noise();
                }
                add(w, &(mlo_log_event){.type = MLO_REC_METRIC,
                                        .run_id = id,
                                        .key = KEYS[k],
                                        .value_num = v,
                                        .step = s,
                                        .timestamp = ts + s});
            }
            if (s % 500 == 499)
                commit(w);
        }
        add(w, &(mlo_log_event){.type = MLO_REC_END_RUN,
                                .run_id = id,
                                .value_num = MLO_RUN_FINISHED,
                                .timestamp = ts + steps});
        commit(w);
        mlo__logw_close(w);
    }
    double t1 = now_s();
    printf("store: %d runs x %d metrics x %ld steps = %.1f million points, written in %.1f s\n",
           nruns, nmet, steps, (double)nruns * nmet * (double)steps / 1e6, t1 - t0);
    fflush(stdout);

    char store[4200], page[4200];
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(page, sizeof page, "%s/page.html", dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl(argv[1], argv[1], "report", store, "--sort", "loss", "--asc", "-v", "-o", page,
              (char *)NULL);
        perror(argv[1]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    double w0 = now_s();
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) {
        perror("bench_report: fork/wait4");
        return 2;
    }
    double wall = now_s() - w0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_report: mlo report failed (status %d)\n", status);
        return 1;
    }
    struct stat sb;
    if (stat(page, &sb) != 0) {
        perror(page);
        return 1;
    }
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double mb = (double)sb.st_size / 1e6;
    printf("mlo report: page %.2f MB (budget < 5 MB: %s), CPU %.2f s = user %.2f + sys %.2f "
           "(budget < 2 s: %s), wall %.2f s, peak RSS %.0f MB\n",
           mb, mb < 5 ? "yes" : "NO", cpu,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, cpu < 2 ? "yes" : "no",
           wall, (double)ru.ru_maxrss / 1024.0);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (getenv("MLO_BENCH_KEEP")) /* for profiling the report by hand */
        printf("kept %s\n", dir);
    else if (system(cmd) != 0)
        fprintf(stderr, "bench_report: could not remove %s\n", dir);
    return mb < 5 ? 0 : 1;
}
