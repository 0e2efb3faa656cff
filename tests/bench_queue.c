/*
 * bench_queue.c - push latency and throughput of the event queue, mutex
 * baseline and lock-free ring side by side in one run.
 *
 * Usage: bench_queue [pushes_per_thread] [queue_bytes]
 *        (defaults 1000000 and 8 MiB, mlo's default queue size)
 *
 * For 1, 2, 4 and 8 producer threads and each implementation, producers push
 * 56-byte metric records as fast as they can while one consumer thread drains
 * everything, reading each record.  When the queue is empty the consumer
 * either calls wait(1 ms), so producers wake it (consumer A), or naps 1 ms
 * with nanosleep, so producers never pay for a wake-up (consumer B): the
 * difference is the cost of the wake protocol.  The full policy is mlo's
 * default: wait up to 100 ms for room.
 *
 * Timing method (printed with the results): the cycle counter (rdtsc fenced
 * with lfence on x86, else CLOCK_MONOTONIC) is read once per batch of 64
 * pushes, so the timer costs < 1 ns per push in the batch figures.  Inside
 * each batch the first push is also timed alone; those 1-in-64 samples give
 * the per-call percentiles, minus the measured cost of an empty timed region.
 */
#define _GNU_SOURCE

#include "mlo_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#define BATCH 64
#define MAX_THREADS 8

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Ticks of the timer; ticks_per_ns calibrated at start. */
static inline uint64_t ticks(void) {
#if HAVE_TSC
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return (uint64_t)mono_ns();
#endif
}

static double ticks_per_ns = 1.0;
static double timer_overhead_ticks = 0; /* an empty timed region */

static void calibrate(void) {
#if HAVE_TSC
    int64_t n0 = mono_ns();
    uint64_t t0 = ticks();
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    int64_t n1 = mono_ns();
    uint64_t t1 = ticks();
    ticks_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
#endif
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 100000; i++) {
        uint64_t a = ticks();
        uint64_t b = ticks();
        if (b - a < best)
            best = b - a;
    }
    timer_overhead_ticks = (double)best;
}

static void print_cpu(void) {
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c += 2;
                    c[strcspn(c, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    printf("CPU: %s, %ld cores online\n", model, sysconf(_SC_NPROCESSORS_ONLN));
}

/* ---- One run ---------------------------------------------------------------- */

typedef struct run {
    const mlo_queue_ops *ops;
    mlo_queue *q;
    int threads;
    long pushes; /* per thread */
    _Atomic int ready;
    _Atomic int go;
    _Atomic int done;
    _Atomic long full;
    _Atomic bool stop_consumer;
    bool poll; /* consumer naps 1 ms instead of wait(): producers never wake it */
    long consumed;
    long sleeps; /* consumer naps/waits on an empty queue */
    double checksum;
} run;

typedef struct prod {
    run *r;
    int id;
    uint64_t *call;  /* per-call samples (ticks) */
    uint64_t *batch; /* per-batch totals (ticks) */
    long n_call, n_batch;
    int64_t end_ns;
} prod;

static void *producer(void *p) {
    prod *a = p;
    run *r = a->r;
    const mlo_queue_ops *ops = r->ops;
    static const char key[] = "train/loss"; /* 40 + 10 -> 56-byte record */
    mlo_rec h = {.type = MLO_REC_METRIC, .key_len = sizeof key - 1, .run = (uint32_t)a->id};
    long full = 0;
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load_explicit(&r->go, memory_order_acquire)) {
    }
    long batches = r->pushes / BATCH;
    int64_t step = 0;
    for (long b = 0; b < batches; b++) {
        uint64_t t0 = ticks();
        h.step = step++;
        h.value = (double)step;
        full += ops->push(r->q, &h, key, NULL) != MLO_Q_OK;
        uint64_t t1 = ticks();
        for (int i = 1; i < BATCH; i++) {
            h.step = step++;
            h.value = (double)step;
            full += ops->push(r->q, &h, key, NULL) != MLO_Q_OK;
        }
        uint64_t t2 = ticks();
        a->call[a->n_call++] = t1 - t0;
        a->batch[a->n_batch++] = t2 - t0;
    }
    a->end_ns = mono_ns();
    atomic_fetch_add(&r->full, full);
    atomic_fetch_add(&r->done, 1);
    return NULL;
}

static void consume_fn(void *ctx, const mlo_rec *rec) {
    run *r = ctx;
    r->consumed++;
    r->checksum += rec->value;
}

static void *consumer(void *p) {
    run *r = p;
    for (;;) {
        size_t n = r->ops->drain(r->q, SIZE_MAX, consume_fn, r);
        if (n == 0) {
            if (atomic_load(&r->stop_consumer))
                break;
            r->sleeps++;
            if (r->poll) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            } else {
                r->ops->wait(r->q, 1000000, 1);
            }
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, long n, double p) {
    long i = (long)(p * (double)(n - 1) + 0.5);
    return (double)v[i];
}

static double to_ns(double t) {
    return t / ticks_per_ns;
}

static void bench(const mlo_queue_ops *ops, int threads, long pushes, size_t qbytes, bool poll) {
    run r = {.ops = ops, .threads = threads, .pushes = pushes, .poll = poll};
    r.q = ops->create(qbytes, 100000000);
    if (!r.q) {
        fprintf(stderr, "%s: create failed\n", ops->name);
        exit(1);
    }
    /* Warm up: one lap through the whole queue, single threaded, so that no
     * implementation pays first-touch page faults in the measurement. */
    mlo_rec h = {.type = MLO_REC_METRIC, .key_len = 10};
    for (size_t i = 0; i < qbytes / 56; i++) {
        if (ops->push(r.q, &h, "train/loss", NULL) != MLO_Q_OK)
            ops->drain(r.q, SIZE_MAX, consume_fn, &r);
    }
    ops->drain(r.q, SIZE_MAX, consume_fn, &r);
    r.consumed = 0;
    r.sleeps = 0;

    pthread_t ct, pt[MAX_THREADS];
    prod pa[MAX_THREADS];
    long per = pushes / BATCH + 1;
    pthread_create(&ct, NULL, consumer, &r);
    for (int t = 0; t < threads; t++) {
        pa[t] = (prod){.r = &r, .id = t};
        pa[t].call = malloc((size_t)per * sizeof(uint64_t));
        pa[t].batch = malloc((size_t)per * sizeof(uint64_t));
        pthread_create(&pt[t], NULL, producer, &pa[t]);
    }
    while (atomic_load(&r.ready) < threads) {
    }
    int64_t start = mono_ns();
    atomic_store_explicit(&r.go, 1, memory_order_release);
    for (int t = 0; t < threads; t++)
        pthread_join(pt[t], NULL);
    int64_t end = 0;
    for (int t = 0; t < threads; t++)
        if (pa[t].end_ns > end)
            end = pa[t].end_ns;
    atomic_store(&r.stop_consumer, true);
    ops->wake(r.q);
    pthread_join(ct, NULL);

    /* Merge samples. */
    long nc = 0, nb = 0;
    for (int t = 0; t < threads; t++) {
        nc += pa[t].n_call;
        nb += pa[t].n_batch;
    }
    uint64_t *call = malloc((size_t)nc * sizeof *call);
    uint64_t *batch = malloc((size_t)nb * sizeof *batch);
    long ic = 0, ib = 0;
    double sum = 0;
    for (int t = 0; t < threads; t++) {
        memcpy(call + ic, pa[t].call, (size_t)pa[t].n_call * sizeof *call);
        memcpy(batch + ib, pa[t].batch, (size_t)pa[t].n_batch * sizeof *batch);
        ic += pa[t].n_call;
        ib += pa[t].n_batch;
        for (long i = 0; i < pa[t].n_batch; i++)
            sum += (double)pa[t].batch[i];
        free(pa[t].call);
        free(pa[t].batch);
    }
    qsort(call, (size_t)nc, sizeof *call, cmp_u64);
    qsort(batch, (size_t)nb, sizeof *batch, cmp_u64);
    long total = nb * BATCH;
    double oh = timer_overhead_ticks;
    double mean = to_ns((sum - oh * (double)nb) / (double)total);
    double b50 = to_ns((pct(batch, nb, 0.50) - oh) / BATCH);
    double b99 = to_ns((pct(batch, nb, 0.99) - oh) / BATCH);
    double c50 = to_ns(pct(call, nc, 0.50) - oh);
    double c99 = to_ns(pct(call, nc, 0.99) - oh);
    double c999 = to_ns(pct(call, nc, 0.999) - oh);
    double cmax = to_ns(pct(call, nc, 1.0) - oh);
    double secs = (double)(end - start) / 1e9;
    long full = atomic_load(&r.full);
    printf("%-6s %3d %9ld %6ld %7ld %8.1f %8.1f %8.1f | %8.1f %8.1f %9.1f %10.1f | %8.2f\n",
           ops->name, threads, total, full, r.sleeps, mean, b50, b99, c50, c99, c999, cmax,
           (double)total / secs / 1e6);
    if (r.consumed != total - full)
        printf("  !! consumed %ld of %ld accepted\n", r.consumed, total - full);
    free(call);
    free(batch);
    ops->destroy(r.q);
}

/* Sparse pushes, as real log calls come: one every ~50 µs from one thread,
 * each timed alone.  With consumer A the consumer is asleep in wait() at
 * nearly every push, so this is the price of waking it. */
static void bench_sparse(const mlo_queue_ops *ops, bool poll, long n) {
    run r = {.ops = ops, .threads = 1, .poll = poll};
    r.q = ops->create((size_t)1 << 20, 100000000);
    if (!r.q)
        exit(1);
    pthread_t ct;
    pthread_create(&ct, NULL, consumer, &r);
    uint64_t *v = malloc((size_t)n * sizeof *v);
    mlo_rec h = {.type = MLO_REC_METRIC, .key_len = 10};
    struct timespec gap = {0, 50000};
    for (long i = 0; i < n; i++) {
        nanosleep(&gap, NULL);
        h.step = i;
        uint64_t t0 = ticks();
        ops->push(r.q, &h, "train/loss", NULL);
        uint64_t t1 = ticks();
        v[i] = t1 - t0;
    }
    atomic_store(&r.stop_consumer, true);
    ops->wake(r.q);
    pthread_join(ct, NULL);
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    double oh = timer_overhead_ticks;
    printf("%-6s %-8s %7ld %7ld | %8.1f %8.1f %9.1f %10.1f\n", ops->name,
           poll ? "B (nap)" : "A (wait)", n, r.sleeps, to_ns(pct(v, n, 0.5) - oh),
           to_ns(pct(v, n, 0.99) - oh), to_ns(pct(v, n, 0.999) - oh), to_ns(pct(v, n, 1.0) - oh));
    free(v);
    ops->destroy(r.q);
}

int main(int argc, char **argv) {
    long pushes = argc > 1 ? atol(argv[1]) : 1000000;
    size_t qbytes = argc > 2 ? (size_t)atol(argv[2]) : (size_t)8 << 20;
    if (pushes < BATCH)
        pushes = BATCH;
    print_cpu();
    calibrate();
    printf("timer: %s, %.3f ticks/ns, empty timed region %.0f ticks (%.1f ns), subtracted\n",
           HAVE_TSC ? "rdtsc (lfence-fenced)" : "clock_gettime(MONOTONIC)", ticks_per_ns,
           timer_overhead_ticks, to_ns(timer_overhead_ticks));
    printf("workload: %ld pushes/thread of a 56-byte metric record, queue %zu bytes, full "
           "policy wait 100 ms,\n          one consumer draining concurrently\n",
           pushes, qbytes);
    printf("method: the timer is read once per batch of %d pushes (mean, batch p50/p99 = batch "
           "time / %d);\n        the first push of every batch is also timed alone (per-call "
           "p50/p99/p99.9/max,\n        1-in-%d sample); Mpush/s = all pushes / wall time of "
           "the producers.\n\n",
           BATCH, BATCH, BATCH);
    const mlo_queue_ops *impls[] = {&mlo__queue_mutex_ops, &mlo__ring_ops};
    const int counts[] = {1, 2, 4, 8};
    for (int poll = 0; poll < 2; poll++) {
        printf(poll ? "\nconsumer B: drains, then naps 1 ms (nanosleep) when empty: producers "
                      "never wake it\n"
                    : "consumer A: drains, then wait(1 ms) when empty: the next push wakes it\n");
        printf("%-6s %3s %9s %6s %7s %8s %8s %8s | %8s %8s %9s %10s | %8s\n", "queue", "thr",
               "pushes", "full", "sleeps", "mean ns", "b64 p50", "b64 p99", "call p50", "p99",
               "p99.9", "max", "Mpush/s");
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
            for (size_t i = 0; i < 2; i++)
                bench(impls[i], counts[c], pushes, qbytes, poll);
    }
    printf("\nsparse: one producer, a push every ~50 us (nanosleep), each push timed alone\n");
    printf("%-6s %-8s %7s %7s | %8s %8s %9s %10s\n", "queue", "consumer", "pushes", "sleeps",
           "call p50", "p99", "p99.9", "max");
    for (int poll = 0; poll < 2; poll++)
        for (size_t i = 0; i < 2; i++)
            bench_sparse(impls[i], poll, 10000);
    printf("\nns per push; sleeps = times the consumer found the queue empty and waited/napped;\n"
           "full = pushes refused after the 100 ms wait.\n");
    return 0;
}
