/*
 * bench_common.h - what mlo's benchmarks share: the machine line, a cheap
 * cycle timer, percentiles, the process's resident memory.
 *
 * Header only (static functions), included by bench_client.c and
 * bench_e2e.c.  Linux/x86-64 first; elsewhere the timer falls back to
 * CLOCK_MONOTONIC.
 */
#ifndef MLO_BENCH_COMMON_H
#define MLO_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#else
#define BENCH_HAVE_TSC 0
#endif

static inline int64_t bench_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Timer ticks.  lfence before: earlier instructions have completed; lfence
 * after: later ones do not start before the counter is read. */
static inline uint64_t bench_ticks(void) {
#if BENCH_HAVE_TSC
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return (uint64_t)bench_mono_ns();
#endif
}

static double bench_ticks_per_ns = 1.0;
static double bench_timer_overhead = 0; /* ticks of an empty timed region (mean) */
static double bench_timer_min = 0;      /* ... its minimum */
static double bench_timer_step = 1;     /* the counter's smallest step, ticks */

/* Calibrates the tick rate against CLOCK_MONOTONIC (200 ms), the counter's
 * resolution and the cost of an empty timed region over 100,000 tries.
 * The mean is what gets subtracted: where the counter advances in coarse
 * steps (AMD Zen's TSC moves in steps of about 10 ns) a measured interval is
 * the true one rounded up or down at random, so means add up exactly while
 * the minimum is an artefact of the rounding. */
static inline void bench_calibrate(void) {
#if BENCH_HAVE_TSC
    int64_t n0 = bench_mono_ns();
    uint64_t t0 = bench_ticks();
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    int64_t n1 = bench_mono_ns();
    uint64_t t1 = bench_ticks();
    bench_ticks_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
#endif
    enum { N = 100000, H = 4096 };
    static uint32_t hist[H];
    memset(hist, 0, sizeof hist);
    uint64_t best = UINT64_MAX;
    double sum = 0;
    long kept = 0;
    for (int i = 0; i < N; i++) {
        uint64_t a = bench_ticks();
        uint64_t b = bench_ticks();
        if (b - a < best)
            best = b - a;
        if (b - a < H) { /* an interrupt's outlier would skew the mean */
            hist[b - a]++;
            sum += (double)(b - a);
            kept++;
        }
    }
    /* resolution: the smallest gap between two durations that each occur in
     * at least 1% of the tries (a fine counter shows many nearby values) */
    uint64_t prev = UINT64_MAX, step = UINT64_MAX;
    for (uint64_t d = 0; d < H; d++) {
        if (hist[d] < N / 100)
            continue;
        if (prev != UINT64_MAX && d - prev < step)
            step = d - prev;
        prev = d;
    }
    bench_timer_min = (double)best;
    bench_timer_overhead = kept ? sum / (double)kept : (double)best;
    bench_timer_step = step == UINT64_MAX ? 1 : (double)step;
}

static inline double bench_to_ns(double ticks) {
    return ticks / bench_ticks_per_ns;
}

/* CPU model, cores online, compiler: printed before every benchmark's figures. */
static inline void bench_print_machine(void) {
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c += 1 + (c[1] == ' ');
                    c[strcspn(c, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    printf("machine: CPU %s, %ld cores online; compiler %s%s\n", model,
           sysconf(_SC_NPROCESSORS_ONLN),
#ifdef __VERSION__
           "gcc-compatible " __VERSION__,
#else
           "unknown",
#endif
#ifdef __OPTIMIZE__
           " (optimized)"
#else
           " (NOT optimized: figures are meaningless)"
#endif
    );
}

/* Reads the aggregate "cpu" line of /proc/stat: busy and total jiffies, and
 * (if irq is not NULL) the time spent in interrupts and softirqs, which on
 * loopback networking is largely the benchmark's own. */
static inline int bench_cpu_jiffies3(unsigned long long *busy, unsigned long long *total,
                                     unsigned long long *irq) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 5)
        return -1;
    *total = 0;
    for (int i = 0; i < 8; i++) /* guest time is already in user */
        *total += v[i];
    *busy = *total - v[3] - v[4]; /* minus idle and iowait */
    if (irq)
        *irq = v[5] + v[6];
    return 0;
}

static inline int bench_cpu_jiffies(unsigned long long *busy, unsigned long long *total) {
    return bench_cpu_jiffies3(busy, total, NULL);
}

/* Benchmarks on a shared machine measure their neighbours too: prints the
 * load average and how busy the CPUs were over the last 500 ms (before this
 * benchmark started any thread), and warns when other work was running. */
static inline void bench_print_load(void) {
    unsigned long long b0, t0, b1, t1;
    double busy = -1;
    if (bench_cpu_jiffies(&b0, &t0) == 0) {
        struct timespec ts = {0, 500000000};
        nanosleep(&ts, NULL);
        if (bench_cpu_jiffies(&b1, &t1) == 0 && t1 > t0)
            busy = 100.0 * (double)(b1 - b0) / (double)(t1 - t0);
    }
    char la[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(la, sizeof la, f))
            la[strcspn(la, "\n")] = 0;
        fclose(f);
    }
    printf("load: loadavg %s; CPUs %.0f%% busy in the 500 ms before the run%s\n", la, busy,
           busy > 10 ? "  !! OTHER WORK IS RUNNING: figures are disturbed" : "");
}

/* CPU time (user + system, jiffies) of a process from /proc/<pid>/stat, 0 if unknown. */
static inline unsigned long long bench_pid_jiffies(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

/* How busy the machine was during a benchmark, and how much of it was ours. */
typedef struct bench_load {
    unsigned long long busy, total, irq, self, child;
    long pids[2]; /* the benchmark's own server processes (0: none) */
} bench_load;

static inline unsigned long long bench_children_jiffies(const bench_load *l) {
    unsigned long long j = 0;
    for (int i = 0; i < 2; i++)
        if (l->pids[i] > 0)
            j += bench_pid_jiffies(l->pids[i]);
    return j;
}

static inline void bench_load_begin(bench_load *l, long pid1, long pid2) {
    l->pids[0] = pid1;
    l->pids[1] = pid2;
    bench_cpu_jiffies3(&l->busy, &l->total, &l->irq);
    l->self = bench_pid_jiffies((long)getpid());
    l->child = bench_children_jiffies(l);
}

static inline void bench_load_end(const bench_load *l, const char *what) {
    unsigned long long busy, total, irq;
    if (bench_cpu_jiffies3(&busy, &total, &irq) != 0 || total <= l->total)
        return;
    double all = (double)(total - l->total);
    double b = 100.0 * (double)(busy - l->busy) / all;
    double in_irq = 100.0 * (double)(irq - l->irq) / all;
    double self = 100.0 * (double)(bench_pid_jiffies((long)getpid()) - l->self) / all;
    double child = 100.0 * (double)(bench_children_jiffies(l) - l->child) / all;
    double other = b - self - child - in_irq;
    printf("load during %s: CPUs %.0f%% busy: this process %.0f%%, its servers %.0f%%, "
           "interrupts %.0f%%, other processes and kernel threads %.0f%%%s\n",
           what, b, self, child, in_irq, other < 0 ? 0 : other,
           other > 10 ? "  !! OTHER WORK WAS RUNNING: figures are disturbed" : "");
}

static inline int bench_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* v sorted ascending, n > 0: the p-quantile (nearest rank). */
static inline uint64_t bench_pct(const uint64_t *v, size_t n, double p) {
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, size_t n) {
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A field of /proc/self/status in kB ("VmRSS", "VmHWM"); -1 if unknown. */
static inline long bench_status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            kb = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* mlo keeps a durable store by default ("./mlo-store"): benchmarks give each
 * client a directory of its own under one temporary directory instead, and
 * remove it at exit (bench_store_cleanup). */
static char bench_store_root[64];

static inline const char *bench_store_dir(void) {
    static int n;
    static char dir[128];
    if (!bench_store_root[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(bench_store_root, sizeof bench_store_root, "%s/mlo-bench-XXXXXX",
                 t && *t && strlen(t) < 40 ? t : "/tmp");
        if (!mkdtemp(bench_store_root)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    snprintf(dir, sizeof dir, "%s/client%d", bench_store_root, n++);
    return dir;
}

static inline void bench_store_cleanup(void) {
    if (bench_store_root[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", bench_store_root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", bench_store_root);
        bench_store_root[0] = 0;
    }
}

#endif /* MLO_BENCH_COMMON_H */
