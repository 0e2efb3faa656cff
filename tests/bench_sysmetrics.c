/*
 * bench_sysmetrics.c - what system metrics (src/common/mlo_sysmetrics.c)
 * cost: the sampler's CPU per hour at the default interval, and the cost of
 * mlo_log_metric with the sampler off and on, side by side in one run.
 *
 * Usage: bench_sysmetrics [calls_per_round [rounds]]   (defaults 200000, 5)
 *
 * Part 1, the sampler's CPU, on this machine's real sources (/proc, the
 * store's file system, NVML when there is one):
 *   a) one round timed on the calling thread (CLOCK_THREAD_CPUTIME_ID):
 *      2,000 rounds of one run with the sampler driven by hand
 *      (cfg->sys_manual), each reading every source and logging its 8+
 *      metrics (one sample per step: the most work per round); the
 *      process's CPU over the same rounds (after a flush) adds the writer's
 *      work for the metrics logged;
 *   b) the sampler's own thread at a 10 ms interval for 3 s
 *      (pthread_getcpuclockid of the thread: wake-ups, sleeps and rounds),
 *      divided by the rounds that reached the (in-memory) server.
 *   Per hour at the default 10 s interval = 360 rounds; the share of one
 *   core = that / 3600 s.  Target: under 0.1 %.
 *
 * Part 2, mlo_log_metric per call, one producer thread, three clients
 * (each its own store and 64 MiB queue, MLO_FULL_DROP, one run): sampler
 * off; on at the default 10 s; on at 10 ms (a hundred rounds a second
 * logging into the same queue, the worst case).  Rounds interleave the
 * three (order rotated); each round times calls_per_round calls in batches
 * of 64 with rdtsc (bench_common.h: mean per call from the batches, and the
 * median batch / 64, which a neighbour's preemption does not move;
 * percentiles from the first call of each batch).  The clients are flushed
 * between rounds.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "mlo.h"
#include "mlo_client.h"
#include "mlo_config.h"
#include "mlo_fake_transport.h"
#include "mlo_sysmetrics.h"

#include <pthread.h>
#include <time.h>

#define BATCH 64
#define QUEUE_BYTES ((size_t)64 << 20)

static void die(const char *what, int st) {
    fprintf(stderr, "bench_sysmetrics: %s: %s\n", what, mlo_strerror(st));
    exit(1);
}

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t process_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A client with one run; sys: 0 off, else the sampler on at interval_s;
 * manual: no sampler thread.  fs: over that fake server (NULL: local store). */
static mlo_client_t *open_client(int sys, double interval_s, int manual, fake_server *fs,
                                 mlo_run_t **run) {
    mlo_options_t *o = mlo_options_new();
    if (!o)
        die("options", MLO_ERR_NO_MEMORY);
    if (fs) {
        mlo_options_set_tracking_uri(o, "http://mlflow.bench:5000");
        mlo__config_set_transport(o, fake_transport_new, fs);
    }
    mlo_options_set_store_dir(o, bench_store_dir());
    mlo_options_set_queue_bytes(o, QUEUE_BYTES);
    mlo_options_set_full_policy(o, MLO_FULL_DROP, 0);
    mlo_options_set_system_metrics(o, sys);
    if (sys)
        mlo_options_set_system_metrics_sampling(o, interval_s, 1);
    if (manual)
        mlo__config_set_sysmetrics_sources(o, NULL, NULL, NULL, 1);
    mlo_client_t *c;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st)
        die("mlo_client_open", st);
    st = mlo_start_run(c, "bench_sysmetrics", NULL, NULL, run);
    if (st)
        die("mlo_start_run", st);
    return c;
}

static void flush(mlo_client_t *c) {
    int st = mlo_client_flush(c, 120000);
    if (st)
        die("mlo_client_flush", st);
}

/* ---- Part 1 ------------------------------------------------------------------ */

static void part1(void) {
    enum { ROUNDS = 2000 };
    mlo_run_t *run;
    mlo_client_t *c = open_client(1, 10, 1, NULL, &run);
    mlo_sysmetrics *sm = mlo__client_sysmetrics(c);
    mlo__sysmetrics_tick(sm); /* the baselines */
    static uint64_t each[ROUNDS];
    long metrics = 0;
    flush(c);
    int64_t p0 = process_cpu_ns(), w0 = bench_mono_ns();
    for (int i = 0; i < ROUNDS; i++) {
        int64_t t0 = thread_cpu_ns();
        metrics += mlo__sysmetrics_tick(sm);
        each[i] = (uint64_t)(thread_cpu_ns() - t0);
    }
    flush(c);
    int64_t p1 = process_cpu_ns(), w1 = bench_mono_ns();
    int gpus = mlo__sysmetrics_gpus(sm);
    mlo_client_close(c);
    double sum = 0;
    for (int i = 0; i < ROUNDS; i++)
        sum += (double)each[i];
    qsort(each, ROUNDS, sizeof each[0], bench_cmp_u64);
    double mean = sum / ROUNDS;
    double proc = (double)(p1 - p0) / ROUNDS;
    printf("\npart 1a: one sampler round on the calling thread (%d rounds, %.1f metrics each, "
           "%d GPU(s) through NVML)\n",
           ROUNDS, (double)metrics / ROUNDS, gpus);
    printf("  round CPU: mean %.1f us, p50 %.1f us, p99 %.1f us; with the writer's work for "
           "the metrics: %.1f us/round (%.2f s wall)\n",
           mean / 1e3, (double)bench_pct(each, ROUNDS, 0.5) / 1e3,
           (double)bench_pct(each, ROUNDS, 0.99) / 1e3, proc / 1e3, (double)(w1 - w0) / 1e9);
    printf("  at the default 10 s interval: 360 rounds/hour = %.1f ms CPU per hour "
           "(%.5f %% of one core; with the writer %.1f ms, %.5f %%)\n",
           360 * mean / 1e6, 360 * mean / 3600e9 * 100, 360 * proc / 1e6,
           360 * proc / 3600e9 * 100);

    /* b) the sampler's thread */
    fake_server *fs = fake_server_new(NULL);
    c = open_client(1, 0.01, 0, fs, &run);
    sm = mlo__client_sysmetrics(c);
    int64_t t0 = bench_mono_ns();
    struct timespec ts = {3, 0};
    nanosleep(&ts, NULL);
    int64_t cpu = mlo__sysmetrics_cpu_ns(sm);
    int64_t t1 = bench_mono_ns();
    mlo_end_run(run, MLO_RUN_FINISHED);
    flush(c);
    size_t rounds = fake_metric_points(fs, mlo_run_id(run), "system/cpu_utilization_percentage");
    mlo_client_close(c);
    fake_server_free(fs);
    double per = rounds ? (double)cpu / (double)rounds : 0;
    printf("\npart 1b: the sampler thread at 10 ms for %.2f s: %zu rounds logged, thread CPU "
           "%.1f ms = %.1f us/round (wake-up and sleep included)\n",
           (double)(t1 - t0) / 1e9, rounds, (double)cpu / 1e6, per / 1e3);
    double hour = 360 * per;
    printf("  at the default 10 s interval: %.1f ms CPU per hour = %.5f %% of one core: "
           "target < 0.1 %%: %s\n",
           hour / 1e6, hour / 3600e9 * 100, hour / 3600e9 * 100 < 0.1 ? "MET" : "MISSED");
}

/* ---- Part 2 ------------------------------------------------------------------ */

typedef struct cfg {
    const char *name;
    mlo_client_t *c;
    mlo_run_t *run;
    uint64_t *call, *batch;
    size_t ncall, nbatch, cap;
    double batch_sum;
    uint64_t calls, notok;
} cfg;

static void measure(cfg *k, long calls) {
    flush(k->c);
    size_t need = k->ncall + (size_t)(calls / BATCH) + 1;
    if (need > k->cap) {
        k->cap = need * 2;
        k->call = realloc(k->call, k->cap * sizeof *k->call);
        k->batch = realloc(k->batch, k->cap * sizeof *k->batch);
        if (!k->call || !k->batch)
            die("samples", MLO_ERR_NO_MEMORY);
    }
    int64_t step = 0;
    long notok = 0;
    for (long b = 0; b < calls / BATCH; b++) {
        uint64_t t0 = bench_ticks();
        notok += mlo_log_metric(k->run, "loss", 0.5 + 1.0 / (double)(step + 2), step) != MLO_OK;
        step++;
        uint64_t t1 = bench_ticks();
        for (int i = 1; i < BATCH; i++) {
            notok += mlo_log_metric(k->run, "loss", 0.5 + 1.0 / (double)(step + 2), step) != MLO_OK;
            step++;
        }
        uint64_t t2 = bench_ticks();
        k->call[k->ncall++] = t1 - t0;
        k->batch[k->nbatch++] = t2 - t0;
        k->batch_sum += (double)(t2 - t0);
    }
    k->calls += (uint64_t)(calls / BATCH) * BATCH;
    k->notok += (uint64_t)notok;
}

static void part2(long calls, int rounds) {
    cfg k[3] = {
        {.name = "sampler off"}, {.name = "sampler on, 10 s"}, {.name = "sampler on, 10 ms"}};
    k[0].c = open_client(0, 10, 0, NULL, &k[0].run);
    k[1].c = open_client(1, 10, 0, NULL, &k[1].run);
    k[2].c = open_client(1, 0.01, 0, NULL, &k[2].run);
    /* warm up: one lap of each queue, so no first-touch page fault is measured */
    for (int i = 0; i < 3; i++)
        for (long done = 0; done < (long)(QUEUE_BYTES / 56) + 250000; done += 250000) {
            for (long j = 0; j < 250000; j++)
                mlo_log_metric(k[i].run, "warmup", 1.0, done + j);
            flush(k[i].c);
        }
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 3; i++)
            measure(&k[(i + r) % 3], calls);
    printf("\npart 2: mlo_log_metric, 1 thread, %d rounds of %ld calls per configuration "
           "(interleaved)\n",
           rounds, calls);
    printf("  %-18s | %8s %10s | %8s %8s %8s %9s | %s\n", "configuration", "mean ns", "batch p50",
           "p50", "p99", "p99.9", "max", "not OK");
    double oh = bench_timer_overhead;
    double means[3];
    for (int i = 0; i < 3; i++) {
        qsort(k[i].call, k[i].ncall, sizeof *k[i].call, bench_cmp_u64);
        qsort(k[i].batch, k[i].nbatch, sizeof *k[i].batch, bench_cmp_u64);
        /* the median batch per call: what a call costs when no other thread
         * preempts the producer (robust on a shared machine) */
        double bmed = bench_to_ns(((double)bench_pct(k[i].batch, k[i].nbatch, 0.5) - oh) / BATCH);
#define NS(x) (bench_to_ns((double)(x)-oh) < 0 ? 0 : bench_to_ns((double)(x)-oh))
        means[i] = bench_to_ns((k[i].batch_sum - oh * (double)k[i].nbatch) / (double)k[i].calls);
        printf("  %-18s | %8.1f %10.1f | %8.0f %8.0f %8.0f %9.0f | %lu\n", k[i].name, means[i],
               bmed, NS(bench_pct(k[i].call, k[i].ncall, 0.5)),
               NS(bench_pct(k[i].call, k[i].ncall, 0.99)),
               NS(bench_pct(k[i].call, k[i].ncall, 0.999)), NS(k[i].call[k[i].ncall - 1]),
               (unsigned long)k[i].notok);
#undef NS
        free(k[i].call);
        free(k[i].batch);
    }
    printf("  mean with the sampler on (10 s) / off: %.3f; (10 ms) / off: %.3f\n",
           means[1] / means[0], means[2] / means[0]);
    for (int i = 0; i < 3; i++)
        mlo_client_close(k[i].c);
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (calls < BATCH || rounds < 1) {
        fprintf(stderr, "usage: bench_sysmetrics [calls_per_round [rounds]]\n");
        return 2;
    }
    bench_print_machine();
    bench_print_load();
    bench_calibrate();
    bench_load l;
    bench_load_begin(&l, 0, 0);
    part1();
    part2(calls, rounds);
    bench_load_end(&l, "the benchmark");
    bench_store_cleanup();
    return 0;
}
