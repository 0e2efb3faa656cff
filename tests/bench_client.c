/*
 * bench_client.c - what a log call costs the caller: latency and throughput
 * of the public mlo_log_metric, the lock-free ring and the mutex queue side
 * by side in one run; heap allocations and system calls per call.
 *
 * Usage:
 *   bench_client [--latency|--steady] [calls_per_config [rounds]]
 *                                              (defaults: both parts, 400000, 5)
 *   bench_client --probe N [ring|mutex [calls_per_second]]
 *                                              (for tests/bench_syscalls.sh)
 *
 * Part 1, latency and throughput.  Two clients talk to the loopback MLflow
 * test server (tests/mlflow_test_server.py, started here), so their shippers
 * really send: one on the lock-free ring, one on the mutex queue
 * (mlo__config_set_queue_impl(opts, 1)), each with a 64 MiB queue and
 * MLO_FULL_DROP, each warmed by one full lap of its queue (so no first-touch
 * page fault lands in a measurement).  For 1, 2, 4 and 8 producer threads,
 * each thread logs calls_per_config / threads metrics through
 * mlo_log_metric; between configurations the client is flushed so every
 * measurement starts against an idle shipper and server.  The whole grid is
 * repeated `rounds` times, ring first in even rounds and mutex first in odd
 * ones.  Drops (MLO_STAT_DROPPED) are reported per configuration.
 *
 * Timing method: the timer is rdtsc between lfences (on x86-64; else
 * CLOCK_MONOTONIC).  It is read once per batch of 64 calls, so it costs under
 * 1 ns per call in the batch mean.  The first call of each batch is also
 * timed alone: those 1-in-64 samples give the per-call percentiles.  The
 * cost of an empty timed region (minimum of 100,000 tries) is subtracted
 * from every sample.  Throughput = calls of all threads / wall time from
 * "go" to the last thread's end; the median over the rounds is reported.
 *
 * Part 2, allocations and system calls per call in steady state, one thread,
 * after a warm-up: a thread-local allocation counter (tests/alloc_count.c,
 * linked in) and a perf counter of the raw_syscalls:sys_enter tracepoint
 * attached to the logging thread alone, both read right around the loop.
 * Once as a burst (as fast as possible) and once paced at 50,000 calls/s
 * (a rate the test server keeps up with).  tests/bench_syscalls.sh checks the
 * system call figure independently with strace.
 */
#define _GNU_SOURCE
#include "alloc_count.h"
#include "bench_common.h"
#include "mlo.h"
#include "mlo_config.h"
#include "testsrv.h"

#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#define BATCH 64
#define MAX_THREADS 8
#define QUEUE_BYTES ((size_t)64 << 20)
#define FLUSH_MS 120000u

typedef struct client {
    const char *name;
    int impl;
    mlo_client_t *c;
    mlo_run_t *run;
} client;

static void die(const char *what, int st) {
    fprintf(stderr, "bench_client: %s: %s\n", what, mlo_strerror(st));
    exit(1);
}

static uint64_t stat_of(client *cl, mlo_stat s) {
    uint64_t v = 0;
    mlo_client_stat(cl->c, s, &v);
    return v;
}

static void open_client(client *cl, const char *uri, const char *name, int impl,
                        mlo_full_policy policy) {
    mlo_options_t *o = mlo_options_new();
    if (!o)
        die("options", MLO_ERR_NO_MEMORY);
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, bench_store_dir()); /* the default durable store, not in . */
    mlo_options_set_queue_bytes(o, QUEUE_BYTES);
    mlo_options_set_full_policy(o, policy, 100);
    mlo_options_set_close_timeout_ms(o, 2000);
    mlo__config_set_queue_impl(o, impl);
    cl->name = name;
    cl->impl = impl;
    int st = mlo_client_open(o, &cl->c);
    mlo_options_free(o);
    if (st)
        die("mlo_client_open", st);
    st = mlo_start_run(cl->c, "bench_client", name, NULL, &cl->run);
    if (st)
        die("mlo_start_run", st);
}

static void flush(client *cl) {
    int st = mlo_client_flush(cl->c, FLUSH_MS);
    if (st)
        die("mlo_client_flush", st);
}

/* One lap of the queue (and a bit) through the public API, in flushed
 * chunks so that nothing is dropped. */
static void warm_up(client *cl) {
    const long chunk = 250000;
    long laps_calls = (long)(QUEUE_BYTES / 56) + chunk;
    for (long done = 0; done < laps_calls; done += chunk) {
        for (long i = 0; i < chunk; i++)
            mlo_log_metric(cl->run, "warmup/loss", 1.0 / (double)(done + i + 1), done + i);
        flush(cl);
    }
}

/* ---- Part 1: latency and throughput ----------------------------------------- */

typedef struct prod {
    mlo_run_t *run;
    char key[32];
    long calls;
    _Atomic int *go;
    _Atomic int *ready;
    uint64_t *call; /* single-call samples, ticks */
    uint64_t *batch;
    long ncall, nbatch;
    long notok;
    int64_t end_ns;
} prod;

static void *producer(void *arg) {
    prod *p = arg;
    mlo_run_t *run = p->run;
    const char *key = p->key;
    long batches = p->calls / BATCH, notok = 0;
    int64_t step = 0;
    atomic_fetch_add(p->ready, 1);
    while (!atomic_load_explicit(p->go, memory_order_acquire)) {
    }
    for (long b = 0; b < batches; b++) {
        uint64_t t0 = bench_ticks();
        notok += mlo_log_metric(run, key, 0.5 + 1.0 / (double)(step + 2), step) != MLO_OK;
        step++;
        uint64_t t1 = bench_ticks();
        for (int i = 1; i < BATCH; i++) {
            notok += mlo_log_metric(run, key, 0.5 + 1.0 / (double)(step + 2), step) != MLO_OK;
            step++;
        }
        uint64_t t2 = bench_ticks();
        p->call[p->ncall++] = t1 - t0;
        p->batch[p->nbatch++] = t2 - t0;
    }
    p->end_ns = bench_mono_ns();
    p->notok = notok;
    return NULL;
}

typedef struct result {
    uint64_t *call, *batch; /* pooled over rounds */
    size_t ncall, nbatch, cap;
    double batch_sum; /* ticks */
    double rate[16];  /* calls/s per round */
    int nrates;
    uint64_t drops, notok, calls;
} result;

static void result_add(result *r, const prod *p) {
    if (r->ncall + (size_t)p->ncall > r->cap) {
        size_t nc = (r->cap + (size_t)p->ncall) * 2;
        r->call = realloc(r->call, nc * sizeof *r->call);
        r->batch = realloc(r->batch, nc * sizeof *r->batch);
        if (!r->call || !r->batch)
            die("samples", MLO_ERR_NO_MEMORY);
        r->cap = nc;
    }
    memcpy(r->call + r->ncall, p->call, (size_t)p->ncall * sizeof *p->call);
    memcpy(r->batch + r->nbatch, p->batch, (size_t)p->nbatch * sizeof *p->batch);
    r->ncall += (size_t)p->ncall;
    r->nbatch += (size_t)p->nbatch;
    for (long i = 0; i < p->nbatch; i++)
        r->batch_sum += (double)p->batch[i];
    r->notok += (uint64_t)p->notok;
    r->calls += (uint64_t)p->nbatch * BATCH;
}

static void run_config(client *cl, int threads, long calls, result *res) {
    flush(cl); /* start against an idle shipper and server */
    uint64_t drops0 = stat_of(cl, MLO_STAT_DROPPED);
    _Atomic int go = 0, ready = 0;
    pthread_t tid[MAX_THREADS];
    prod p[MAX_THREADS];
    long per = calls / threads;
    for (int t = 0; t < threads; t++) {
        p[t] = (prod){.run = cl->run, .calls = per, .go = &go, .ready = &ready};
        snprintf(p[t].key, sizeof p[t].key, "thread%d/loss", t);
        p[t].call = malloc((size_t)(per / BATCH + 1) * sizeof(uint64_t));
        p[t].batch = malloc((size_t)(per / BATCH + 1) * sizeof(uint64_t));
        if (!p[t].call || !p[t].batch)
            die("samples", MLO_ERR_NO_MEMORY);
        /* touch the sample arrays now, not during the measurement */
        memset(p[t].call, 0, (size_t)(per / BATCH + 1) * sizeof(uint64_t));
        memset(p[t].batch, 0, (size_t)(per / BATCH + 1) * sizeof(uint64_t));
        pthread_create(&tid[t], NULL, producer, &p[t]);
    }
    while (atomic_load(&ready) < threads) {
    }
    int64_t start = bench_mono_ns();
    atomic_store_explicit(&go, 1, memory_order_release);
    int64_t end = start;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        if (p[t].end_ns > end)
            end = p[t].end_ns;
    }
    long total = 0;
    for (int t = 0; t < threads; t++) {
        result_add(res, &p[t]);
        total += p[t].nbatch * BATCH;
        free(p[t].call);
        free(p[t].batch);
    }
    res->rate[res->nrates++] = (double)total / ((double)(end - start) / 1e9);
    res->drops += stat_of(cl, MLO_STAT_DROPPED) - drops0;
}

typedef struct summary {
    double p50, p99, p999, max, mean, mean1, rate, rate_lo, rate_hi;
} summary;

static summary summarize(result *r) {
    summary s;
    double oh = bench_timer_overhead;
    qsort(r->call, r->ncall, sizeof *r->call, bench_cmp_u64);
#define NS(x) (bench_to_ns((double)(x)-oh) < 0 ? 0 : bench_to_ns((double)(x)-oh))
    s.p50 = NS(bench_pct(r->call, r->ncall, 0.50));
    s.p99 = NS(bench_pct(r->call, r->ncall, 0.99));
    s.p999 = NS(bench_pct(r->call, r->ncall, 0.999));
    s.max = NS(r->call[r->ncall - 1]);
#undef NS
    s.mean = bench_to_ns((r->batch_sum - oh * (double)r->nbatch) / (double)r->calls);
    double sum1 = 0;
    for (size_t i = 0; i < r->ncall; i++)
        sum1 += (double)r->call[i];
    s.mean1 = bench_to_ns(sum1 / (double)r->ncall - oh);
    double rates[16];
    memcpy(rates, r->rate, (size_t)r->nrates * sizeof *rates);
    s.rate = bench_median(rates, (size_t)r->nrates);
    s.rate_lo = rates[0];
    s.rate_hi = rates[r->nrates - 1];
    return s;
}

static void part1(const char *uri, long calls, int rounds) {
    static const int counts[] = {1, 2, 4, 8};
    enum { NCOUNTS = 4 };
    client cl[2];
    open_client(&cl[0], uri, "ring", 0, MLO_FULL_DROP);
    open_client(&cl[1], uri, "mutex", 1, MLO_FULL_DROP);
    printf("warming up: one lap of each 64 MiB queue through mlo_log_metric (flushed)...\n");
    fflush(stdout);
    warm_up(&cl[0]);
    warm_up(&cl[1]);

    result res[NCOUNTS][2];
    memset(res, 0, sizeof res);
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < NCOUNTS; c++)
            for (int k = 0; k < 2; k++) {
                int q = (r % 2) ? 1 - k : k;
                run_config(&cl[q], counts[c], calls, &res[c][q]);
            }

    printf("\n%-6s %3s %9s %6s | %8s | %8s %8s %8s %8s %9s | %14s %19s\n", "queue", "thr", "calls",
           "drops", "mean ns", "1-call", "p50", "p99", "p99.9", "max", "calls/s median",
           "(min - max)");
    double rate4[2] = {0, 0}, p50_1 = 0, p99_1 = 0, p999_1 = 0;
    uint64_t drops_total = 0;
    for (int c = 0; c < NCOUNTS; c++)
        for (int q = 0; q < 2; q++) {
            summary s = summarize(&res[c][q]);
            printf("%-6s %3d %9lu %6lu | %8.1f | %8.1f %8.0f %8.0f %8.0f %9.0f | %14.3e "
                   "(%.2e - %.2e)\n",
                   cl[q].name, counts[c], (unsigned long)res[c][q].calls,
                   (unsigned long)res[c][q].drops, s.mean, s.mean1, s.p50, s.p99, s.p999, s.max,
                   s.rate, s.rate_lo, s.rate_hi);
            if (res[c][q].notok != res[c][q].drops)
                printf("  !! %lu calls did not return MLO_OK, %lu drops\n",
                       (unsigned long)res[c][q].notok, (unsigned long)res[c][q].drops);
            drops_total += res[c][q].drops;
            if (counts[c] == 4)
                rate4[q] = s.rate;
            if (counts[c] == 1 && q == 0) {
                p50_1 = s.p50;
                p99_1 = s.p99;
                p999_1 = s.p999;
            }
        }
    double ratio = rate4[0] / rate4[1];
    printf("\nring / mutex aggregate throughput at 4 threads: %.2fx\n", ratio);
    printf("targets: ring 1 thread p50 <= 60 ns: %.1f ns %s; p99 <= 250 ns: %.1f ns %s "
           "(p99.9 %.1f ns)\n",
           p50_1, p50_1 <= 60 ? "MET" : "MISSED", p99_1, p99_1 <= 250 ? "MET" : "MISSED", p999_1);
    printf("         ring >= 5x mutex at 4 threads: %.2fx %s; drops in all configurations: %lu\n",
           ratio, ratio >= 5 ? "MET" : "MISSED", (unsigned long)drops_total);
    for (int q = 0; q < 2; q++) {
        flush(&cl[q]);
        printf("%s client: accepted %lu, sent %lu, dropped %lu, failed %lu, requests %lu\n",
               cl[q].name, (unsigned long)stat_of(&cl[q], MLO_STAT_ACCEPTED),
               (unsigned long)stat_of(&cl[q], MLO_STAT_SENT),
               (unsigned long)stat_of(&cl[q], MLO_STAT_DROPPED),
               (unsigned long)stat_of(&cl[q], MLO_STAT_FAILED),
               (unsigned long)stat_of(&cl[q], MLO_STAT_REQUESTS));
        mlo_client_close(cl[q].c);
    }
    for (int c = 0; c < NCOUNTS; c++)
        for (int q = 0; q < 2; q++) {
            free(res[c][q].call);
            free(res[c][q].batch);
        }
}

/* ---- Part 2: allocations and system calls per call ---------------------------- */

/* A counter of this thread's system calls (raw_syscalls:sys_enter), or -1. */
static int syscall_counter_open(void) {
    static const char *paths[] = {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                                  "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
    long id = -1;
    for (size_t i = 0; i < 2 && id < 0; i++) {
        FILE *f = fopen(paths[i], "r");
        if (f) {
            if (fscanf(f, "%ld", &id) != 1)
                id = -1;
            fclose(f);
        }
    }
    if (id < 0)
        return -1;
    struct perf_event_attr pa;
    memset(&pa, 0, sizeof pa);
    pa.type = PERF_TYPE_TRACEPOINT;
    pa.size = sizeof pa;
    pa.config = (uint64_t)id;
    pa.sample_period = 0;
    /* pid 0, cpu -1: this thread only, on any CPU; not inherited by threads
     * created later */
    return (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static uint64_t syscall_counter_read(int fd) {
    uint64_t v = 0;
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        return 0;
    return v;
}

typedef struct steady {
    long calls;
    alloc_counts thr;  /* the logging thread, around the loop */
    alloc_counts all;  /* every thread, loop + flush */
    int64_t syscalls;  /* the logging thread, around the loop; -1 unknown */
    uint64_t requests; /* HTTP requests the shipper sent for these calls */
    double secs;
} steady;

/* Logs `calls` metrics on this thread, one every gap_ns (0: as fast as it
 * can; pacing busy-waits on the cycle counter, no system call). */
static steady measure_steady(client *cl, int fd, long calls, double gap_ns) {
    steady s = {.calls = calls};
    uint64_t gap = (uint64_t)(gap_ns * bench_ticks_per_ns);
    /* the counter's cost: the read pair around an empty region */
    uint64_t e0 = syscall_counter_read(fd);
    uint64_t e1 = syscall_counter_read(fd);
    int64_t base = (int64_t)(e1 - e0);

    uint64_t rq0 = stat_of(cl, MLO_STAT_REQUESTS);
    alloc_count_global_begin();
    int64_t t0 = bench_mono_ns();
    uint64_t next = bench_ticks();
    alloc_count_thread_begin();
    uint64_t c0 = syscall_counter_read(fd);
    for (long i = 0; i < calls; i++) {
        if (gap) {
            while (bench_ticks() < next) {
            }
            next += gap;
        }
        mlo_log_metric(cl->run, "steady/loss", 0.5 + 1.0 / (double)(i + 2), i);
    }
    uint64_t c1 = syscall_counter_read(fd);
    s.thr = alloc_count_thread_end();
    s.secs = (double)(bench_mono_ns() - t0) / 1e9;
    flush(cl);
    s.all = alloc_count_global_end();
    s.requests = stat_of(cl, MLO_STAT_REQUESTS) - rq0;
    s.syscalls = fd < 0 ? -1 : (int64_t)(c1 - c0) - base;
    return s;
}

static void print_steady(const char *q, const char *mode, const steady *s, uint64_t drops) {
    char sc[64];
    if (s->syscalls < 0)
        snprintf(sc, sizeof sc, "%12s %9s", "n/a", "n/a");
    else
        snprintf(sc, sizeof sc, "%12ld %9.2g", (long)s->syscalls,
                 (double)s->syscalls / (double)s->calls);
    printf("%-6s %-18s %9ld %6lu | %9lu %9lu %9.2g | %s | %10.3g %9lu\n", q, mode, s->calls,
           (unsigned long)drops, (unsigned long)s->thr.allocs, (unsigned long)s->thr.frees,
           (double)s->thr.allocs / (double)s->calls, sc, (double)s->all.allocs / (double)s->calls,
           (unsigned long)s->requests);
}

static void part2(const char *uri) {
    if (alloc_count_selftest() != 0) {
        printf("!! the allocation interposer is not in the malloc path: figures below are void\n");
    }
    int fd = syscall_counter_open();
    if (fd < 0)
        printf("(no perf counter of raw_syscalls:sys_enter here: system calls n/a; "
               "tests/bench_syscalls.sh counts them with strace)\n");
    printf("\nsteady state, one logging thread, after a 200,000-call warm-up; counted on the "
           "logging\nthread only, right around the loop (allocations: tests/alloc_count.c, "
           "thread-local;\nsystem calls: perf counter of raw_syscalls:sys_enter on this thread, "
           "read-pair cost\nsubtracted).  'all thr/ev' = allocations of every thread (shipper, "
           "libcurl) during the\nloop and the flush after it, per event; 'requests' = "
           "log-batch requests the shipper sent\nfor the loop's events (fewer = fuller "
           "batches).\n\n");
    printf("%-6s %-18s %9s %6s | %9s %9s %9s | %12s %9s | %10s %9s\n", "queue", "mode", "calls",
           "drops", "mallocs", "frees", "per call", "syscalls", "per call", "all thr/ev",
           "requests");
    for (int q = 0; q < 2; q++) {
        client cl;
        open_client(&cl, uri, q ? "mutex" : "ring", q, MLO_FULL_DROP);
        for (long i = 0; i < 200000; i++)
            mlo_log_metric(cl.run, "steady/loss", (double)i, i);
        flush(&cl);
        uint64_t d0 = stat_of(&cl, MLO_STAT_DROPPED);
        steady b = measure_steady(&cl, fd, 1000000, 0);
        uint64_t d1 = stat_of(&cl, MLO_STAT_DROPPED);
        print_steady(cl.name, "burst (max rate)", &b, d1 - d0);
        steady p = measure_steady(&cl, fd, 100000, 20000);
        print_steady(cl.name, "paced 50k calls/s", &p, stat_of(&cl, MLO_STAT_DROPPED) - d1);
        mlo_client_close(cl.c);
    }
    printf("\ntarget: 0 heap allocations and 0 system calls per call in steady state.\n");
    if (fd >= 0)
        close(fd);
}

/* ---- Probe mode for tests/bench_syscalls.sh ------------------------------------ */

static int probe(long n, int impl, double rate) {
    const char *uri = getenv("MLFLOW_TRACKING_URI");
    if (!uri || !*uri) {
        fprintf(stderr, "bench_client --probe: set MLFLOW_TRACKING_URI\n");
        return 2;
    }
    client cl;
    open_client(&cl, uri, impl ? "mutex" : "ring", impl, MLO_FULL_DROP);
    for (long i = 0; i < 200000; i++)
        mlo_log_metric(cl.run, "probe/loss", (double)i, i);
    flush(&cl);
    long tid = syscall(SYS_gettid);
    uint64_t gap = 0;
    if (rate > 0) {
        bench_calibrate();
        gap = (uint64_t)(1e9 / rate * bench_ticks_per_ns);
    }
    printf("probe: queue %s, logging thread tid %ld, %ld calls\n", cl.name, tid, n);
    fflush(stdout);
    /* markers in the trace: writes to fd -1 fail with EBADF and do nothing */
    ssize_t rc = write(-1, "mlo-probe-begin", 15);
    uint64_t next = bench_ticks();
    for (long i = 0; i < n; i++) {
        if (gap) { /* pacing: busy-wait on the cycle counter, no system call */
            while (bench_ticks() < next) {
            }
            next += gap;
        }
        mlo_log_metric(cl.run, "probe/loss", 0.5 + 1.0 / (double)(i + 2), i);
    }
    rc += write(-1, "mlo-probe-end", 13);
    (void)rc;
    printf("probe: dropped %lu\n", (unsigned long)stat_of(&cl, MLO_STAT_DROPPED));
    fflush(stdout);
    mlo_client_close(cl.c); /* close timeout 2 s: delivery is not the point here */
    bench_store_cleanup();
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "--probe") == 0)
        return probe(atol(argv[2]), argc > 3 && strcmp(argv[3], "mutex") == 0,
                     argc > 4 ? atof(argv[4]) : 0);
    int parts = 3; /* 1: latency/throughput, 2: allocations/system calls */
    if (argc > 1 && strcmp(argv[1], "--steady") == 0) {
        parts = 2;
        argc--, argv++;
    } else if (argc > 1 && strcmp(argv[1], "--latency") == 0) {
        parts = 1;
        argc--, argv++;
    }
    if (argc > 1 && argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_client [--latency|--steady] [calls_per_config [rounds]]\n"
                        "       bench_client --probe N [ring|mutex [calls_per_second]]\n");
        return 2;
    }
    long calls = argc > 1 ? atol(argv[1]) : 400000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (calls < BATCH * MAX_THREADS)
        calls = BATCH * MAX_THREADS;
    if (rounds < 1 || rounds > 16)
        rounds = 5;

    bench_print_machine();
    bench_print_load();
    bench_calibrate();
    printf("timer: %s, %.3f ticks/ns, resolution %.0f ticks (%.1f ns); empty timed region: "
           "mean %.1f ticks\n  (%.1f ns, subtracted from every sample), min %.0f ticks\n",
           BENCH_HAVE_TSC ? "rdtsc between lfences" : "clock_gettime(MONOTONIC)",
           bench_ticks_per_ns, bench_timer_step, bench_to_ns(bench_timer_step),
           bench_timer_overhead, bench_to_ns(bench_timer_overhead), bench_timer_min);
    printf("workload: mlo_log_metric(run, \"threadN/loss\", value, step) from 1/2/4/8 threads, "
           "%ld calls per\n  configuration split among the threads, %d rounds; two clients on "
           "the loopback test server\n  (their shippers really send), 64 MiB queue each, "
           "MLO_FULL_DROP, queues warmed by one lap,\n  default durable store (in a temporary "
           "directory).\n",
           calls, rounds);
    printf("method: timer read once per batch of %d calls (mean ns = batch time / %d); the "
           "first call of\n  every batch also timed alone (1-in-%d sample: 1-call mean, "
           "p50/p99/p99.9/max; single-call\n  figures are quantized to the timer's resolution, "
           "means are not); empty-timer mean cost\n  subtracted; calls/s = all calls / wall "
           "time of the producers, median of the rounds.\n",
           BATCH, BATCH, BATCH);
    fflush(stdout);

    testsrv *srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "bench_client: cannot start the test server\n");
        return 1;
    }
    bench_load l;
    if (parts & 1) {
        bench_load_begin(&l, testsrv_pid(srv), 0);
        part1(testsrv_uri(srv), calls, rounds);
        bench_load_end(&l, "latency and throughput");
    }
    if (parts & 2) {
        bench_load_begin(&l, testsrv_pid(srv), 0);
        part2(testsrv_uri(srv));
        bench_load_end(&l, "allocations and system calls");
    }
    bench_store_cleanup();
    testsrv_stop(srv);
    return 0;
}
