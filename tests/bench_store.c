/*
 * bench_store.c - what the durable run log costs and delivers.
 *
 * Usage: bench_store [calls_per_config [recovery_events]]
 *        (defaults: 1,000,000 and 10,000,000)
 *
 * Part 1, the log call with and without the durable log, side by side in
 * one run: four clients, each with a 64 MiB queue and MLO_FULL_DROP:
 *   memory    durability off (mlo_options_set_durable(0)), sending to the
 *             loopback test server told to answer every log-batch with 200
 *             at once (so the shipper keeps up and nothing is dropped)
 *   disk      the store in a directory under /tmp (segments on disk; the
 *             ring in /dev/shm behind a symlink, as by default)
 *   tmpfs     the whole store under /dev/shm
 *   fsync     disk, MLO_FSYNC_ALWAYS
 * Rounds rotate the order.  Per call: the mean over batches of 64 calls and
 * the percentiles of the first call of each batch (rdtsc between lfences
 * on x86-64, else CLOCK_MONOTONIC; the mean cost of an empty timed region
 * subtracted).  Then the writer's
 * throughput for the disk store: events/s and MB/s from the first call to
 * the flush that has them all in the segment, bytes per event on disk and
 * the compression ratio read from the segment's block headers (raw_len /
 * comp_len, mlo_log.c's format).
 *
 * Part 2, recovery: a child logs recovery_events metric points into a local
 * store, then a last burst, and is killed with SIGKILL before its writer
 * takes that burst from the ring.  Measured: mlo_client_open on that store
 * (recovering the dead ring into a segment), and reading every event back
 * from the segments (the read side of `mlo sync`, without the network).
 */
#define _GNU_SOURCE
#include "mlo.h"
#include "mlo_log.h"
#include "testsrv.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BATCH 64

/* ---- timing (self-contained) ---- */
static int64_t bench_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static inline uint64_t bench_ticks(void) {
#if defined(__x86_64__)
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return (uint64_t)bench_mono_ns();
#endif
}
static double ticks_per_ns = 1.0, bench_timer_overhead = 0;
static void bench_calibrate(void) {
#if defined(__x86_64__)
    int64_t n0 = bench_mono_ns();
    uint64_t t0 = bench_ticks();
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    ticks_per_ns = (double)(bench_ticks() - t0) / (double)(bench_mono_ns() - n0);
#endif
    double sum = 0;
    long kept = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t a = bench_ticks(), b = bench_ticks();
        if (b - a < 4096) {
            sum += (double)(b - a);
            kept++;
        }
    }
    bench_timer_overhead = kept ? sum / (double)kept : 0;
}
static double bench_to_ns(double ticks) {
    return ticks / ticks_per_ns;
}
static int bench_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static uint64_t bench_pct(const uint64_t *v, size_t n, double p) {
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double bench_median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}
static void bench_print_machine(void) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = 0;
            }
            break;
        }
    if (f)
        fclose(f);
    printf("machine: %ld CPUs, %s\n", ncpu, model);
}
#define QUEUE ((size_t)64 << 20)

static void rm_rf(const char *p) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", p);
}

/* Sum of raw_len and comp_len over the blocks of every segment of a store;
 * returns bytes on disk. */
static uint64_t segments_size(const char *store, uint64_t *raw, uint64_t *comp) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/segments", store);
    DIR *d = opendir(dir);
    uint64_t total = 0;
    *raw = *comp = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".seg"))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int fd = open(p, O_RDONLY);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        total += (uint64_t)sb.st_size;
        uint64_t off = 32; /* segment header */
        unsigned char h[24];
        while (pread(fd, h, sizeof h, (off_t)off) == (ssize_t)sizeof h && !memcmp(h, "MLOB", 4)) {
            uint32_t c, r;
            memcpy(&c, h + 4, 4);
            memcpy(&r, h + 8, 4);
            *comp += c;
            *raw += r;
            off += 24 + c;
        }
        close(fd);
    }
    closedir(d);
    return total;
}

typedef struct config {
    const char *name;
    char store[256];
    mlo_client_t *c;
    mlo_run_t *run;
    double mean_ns[8];
    uint64_t *samples;
    size_t nsamples;
    uint64_t dropped;
} config;

static testsrv *srv;

static mlo_client_t *open_config(config *k, int durable, int fsync_always) {
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_queue_bytes(o, QUEUE);
    mlo_options_set_full_policy(o, MLO_FULL_DROP, 0);
    if (durable) {
        mlo_options_set_store_dir(o, k->store);
        mlo_options_set_tracking_uri(o, NULL);
        if (fsync_always)
            mlo_options_set_fsync(o, MLO_FSYNC_ALWAYS, 0);
    } else {
        mlo_options_set_durable(o, 0);
        mlo_options_set_tracking_uri(o, testsrv_uri(srv));
    }
    mlo_client_t *c;
    if (mlo_client_open(o, &c) != MLO_OK) {
        fprintf(stderr, "cannot open the %s client\n", k->name);
        exit(1);
    }
    mlo_options_free(o);
    return c;
}

static void measure(config *k, size_t calls, int round) {
    static const char *const keys[4] = {"loss", "accuracy", "lr", "grad_norm"};
    size_t batches = calls / BATCH;
    uint64_t t_start = bench_ticks();
    for (size_t b = 0; b < batches; b++) {
        int64_t step = (int64_t)(b * BATCH);
        uint64_t a = bench_ticks();
        mlo_log_metric(k->run, keys[b & 3], (double)step * 0.001, step);
        uint64_t z = bench_ticks();
        k->samples[k->nsamples++] = z - a;
        for (int i = 1; i < BATCH; i++)
            mlo_log_metric(k->run, keys[(b + (size_t)i) & 3], (double)(step + i) * 0.001, step + i);
    }
    uint64_t t_end = bench_ticks();
    k->mean_ns[round] = bench_to_ns((double)(t_end - t_start)) / (double)(batches * BATCH);
}

static void part1(size_t calls, int rounds) {
    char base[] = "/tmp/mlo-bench-store-XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        exit(1);
    }
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/mlo-bench-store-%ld", (long)getpid());
    config k[4] = {{.name = "memory"}, {.name = "disk"}, {.name = "tmpfs"}, {.name = "fsync"}};
    snprintf(k[1].store, sizeof k[1].store, "%s/disk", base);
    snprintf(k[2].store, sizeof k[2].store, "%s", shm);
    snprintf(k[3].store, sizeof k[3].store, "%s/fsync", base);
    for (int i = 0; i < 4; i++) {
        k[i].c = open_config(&k[i], i != 0, i == 3);
        if (mlo_start_run(k[i].c, NULL, k[i].name, NULL, &k[i].run) != MLO_OK) {
            fprintf(stderr, "start_run failed\n");
            exit(1);
        }
        k[i].samples = malloc(sizeof(uint64_t) * (calls / BATCH + 1) * (size_t)rounds);
        /* warm: one lap of the queue's pages from this thread */
        for (int j = 0; j < 200000; j++)
            mlo_log_metric(k[i].run, "warm", j, j);
        mlo_client_flush(k[i].c, 60000);
    }
    printf(
        "\n== mlo_log_metric with and without the durable log (%zu calls x %d rounds, 1 thread)\n",
        calls, rounds);
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < 4; j++) {
            config *x = &k[(j + r) % 4];
            measure(x, calls, r);
            /* let the writer catch up outside the measurement */
            mlo_client_flush(x->c, 120000);
        }
    }
    printf("%-8s %10s %10s %10s %10s %10s %10s\n", "config", "mean ns", "p50 ns", "p99 ns",
           "p99.9 ns", "max us", "dropped");
    for (int i = 0; i < 4; i++) {
        double m[8];
        memcpy(m, k[i].mean_ns, sizeof m);
        double med = bench_median(m, (size_t)rounds);
        qsort(k[i].samples, k[i].nsamples, sizeof(uint64_t), bench_cmp_u64);
        double ov = bench_timer_overhead;
        double p50 = bench_to_ns((double)bench_pct(k[i].samples, k[i].nsamples, 0.50) - ov);
        double p99 = bench_to_ns((double)bench_pct(k[i].samples, k[i].nsamples, 0.99) - ov);
        double p999 = bench_to_ns((double)bench_pct(k[i].samples, k[i].nsamples, 0.999) - ov);
        double mx = bench_to_ns((double)k[i].samples[k[i].nsamples - 1] - ov) / 1000.0;
        mlo_client_stat(k[i].c, MLO_STAT_DROPPED, &k[i].dropped);
        printf("%-8s %10.1f %10.1f %10.1f %10.1f %10.1f %10llu\n", k[i].name, med,
               p50 < 0 ? 0 : p50, p99, p999, mx, (unsigned long long)k[i].dropped);
    }

    /* the writer's throughput, disk store, a fresh client */
    config w = {.name = "throughput"};
    snprintf(w.store, sizeof w.store, "%s/throughput", base);
    mlo_client_t *c = open_config(&w, 1, 0);
    mlo_run_t *run;
    mlo_start_run(c, NULL, "throughput", NULL, &run);
    mlo_client_flush(c, 10000);
    size_t n = calls * 2;
    int64_t t0 = bench_mono_ns();
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        while (mlo_log_metric(run, (i & 1) ? "loss" : "accuracy", (double)i * 1e-6, (int64_t)i) !=
               MLO_OK) {
        }
        ok++;
    }
    mlo_client_flush(c, 600000);
    int64_t t1 = bench_mono_ns();
    mlo_client_close(c);
    uint64_t raw, comp;
    uint64_t disk = segments_size(w.store, &raw, &comp);
    double secs = (double)(t1 - t0) / 1e9;
    printf("\n== run-log writer, store on disk, 1 producer thread at full speed\n");
    printf("%zu events in %.2f s: %.2f M events/s written; %.1f MB/s of protobuf frames, "
           "%.1f MB/s to disk\n",
           ok, secs, (double)ok / secs / 1e6, (double)raw / secs / 1e6, (double)disk / secs / 1e6);
    printf("on disk %.2f bytes/event (raw frames %.1f bytes/event); compression ratio %.1f\n",
           (double)disk / (double)ok, (double)raw / (double)ok,
           comp ? (double)raw / (double)comp : 0);
    for (int i = 0; i < 4; i++) {
        mlo_client_close(k[i].c);
        free(k[i].samples);
    }
    rm_rf(base);
    rm_rf(shm);
}

static size_t count_events(const char *store, int64_t *ns) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/segments", store);
    int64_t t0 = bench_mono_ns();
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strstr(e->d_name, ".seg") || strstr(e->d_name, ".tmp"))
            continue;
        char p[1024], err[256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        mlo_logr *r = mlo__logr_open(p, err, sizeof err);
        if (!r)
            continue;
        mlo_log_event ev;
        while (mlo__logr_next(r, &ev, err, sizeof err) == 1)
            n++;
        mlo__logr_close(r);
    }
    if (d)
        closedir(d);
    *ns = bench_mono_ns() - t0;
    return n;
}

static void part2(size_t events) {
    char base[] = "/tmp/mlo-bench-recover-XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        exit(1);
    }
    char store[300];
    snprintf(store, sizeof store, "%s/store", base);
    _Atomic int *ready =
        mmap(NULL, sizeof *ready, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *ready = 0;
    size_t burst = 100000;
    int64_t t0 = bench_mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        mlo_options_t *o = mlo_options_new();
        mlo_options_set_store_dir(o, store);
        mlo_options_set_tracking_uri(o, NULL);
        mlo_options_set_queue_bytes(o, QUEUE);
        mlo_options_set_flush_interval_ms(o, 60000); /* the last burst stays in the ring */
        mlo_client_t *c;
        if (mlo_client_open(o, &c) != MLO_OK)
            _exit(1);
        mlo_run_t *run;
        mlo_start_run(c, NULL, "ten-million", NULL, &run);
        for (size_t i = 0; i < events; i++)
            while (mlo_log_metric(run, (i & 1) ? "loss" : "accuracy", (double)i * 1e-6,
                                  (int64_t)i) != MLO_OK) {
            }
        mlo_client_flush(c, 600000);
        for (size_t i = 0; i < burst; i++)
            mlo_log_metric(run, "burst", (double)i, (int64_t)i);
        atomic_store(ready, 1);
        pause();
        _exit(0);
    }
    while (!atomic_load(ready))
        usleep(1000);
    int64_t t1 = bench_mono_ns();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    uint64_t raw, comp;
    uint64_t disk = segments_size(store, &raw, &comp);
    printf("\n== recovery: a store of %zu events (+%zu in the queue of a process killed with "
           "SIGKILL)\n",
           events, burst);
    printf("written by the child in %.2f s; segments %.1f MB on disk\n", (double)(t1 - t0) / 1e9,
           (double)disk / 1e6);
    /* drop the page cache of the store? not without root rights everywhere:
     * the figures are warm-cache ones */
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_store_dir(o, store);
    mlo_options_set_tracking_uri(o, NULL);
    int64_t a = bench_mono_ns();
    mlo_client_t *c;
    if (mlo_client_open(o, &c) != MLO_OK) {
        fprintf(stderr, "open failed\n");
        exit(1);
    }
    int64_t b = bench_mono_ns();
    uint64_t rec = 0;
    mlo_client_stat(c, MLO_STAT_RECOVERED, &rec);
    mlo_client_close(c);
    mlo_options_free(o);
    printf("mlo_client_open on it: %.1f ms, %llu events recovered from the dead queue\n",
           (double)(b - a) / 1e6, (unsigned long long)rec);
    int64_t ns;
    size_t n = count_events(store, &ns);
    printf("reading every event back (the read side of mlo sync): %zu events in %.2f s, "
           "%.2f M events/s\n",
           n, (double)ns / 1e9, (double)n / ((double)ns / 1e9) / 1e6);
    rm_rf(base);
}

int main(int argc, char **argv) {
    /* 1,000,000 calls fit a 64 MiB queue: no drop distorts the figures */
    size_t calls = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t events = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
    unsetenv("MLFLOW_TRACKING_URI");
    srv = testsrv_start("");
    if (!srv || testsrv_fault(srv, "{\"status\": 200, \"body\": \"{}\", \"count\": -1, "
                                   "\"path_prefix\": \"runs/log-batch\"}") != 0) {
        fprintf(stderr, "cannot start the test server\n");
        return 1;
    }
    bench_print_machine();
    bench_calibrate();
    part1(calls, 3);
    part2(events);
    testsrv_stop(srv);
    return 0;
}
