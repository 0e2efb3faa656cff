/*
 * bench_log.c - run-log segment throughput (src/mlo_log.c), one thread.
 *
 * Usage: bench_log [events] [read_events] [dir]
 *        (defaults 2000000, 10000000, $TMPDIR or /tmp)
 *
 * 1. Write: `events` metric events (8 keys in turn, a 32-hex run id, a
 *    noisy decaying value, step and a millisecond timestamp advancing as a
 *    training loop's would) through mlo__logw_add + mlo__logw_commit, one
 *    block per N events for N in 256, 1024, 4096, 16384, no fsync: the
 *    writer's CPU cost (protobuf packing, zstd level 1, CRC-32C, write()).
 *    Reports events/s, raw (uncompressed frame) MB/s, file MB/s, the
 *    compression ratio and bytes per event on disk.
 * 2. Read back: `read_events` events written as 10 segments of blocks of 4096
 *    events, then read with mlo__logr_next (CRC, zstd, protobuf-c unpack of
 *    every event), cold from the page cache's point of view only if the
 *    system dropped it (it normally did not: this measures CPU).  Also the
 *    time mlo__logw_reopen takes to walk all 10 segments (header + CRC of
 *    every block, no decompression): the cost of recovery on open.
 * All files are removed at the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "mlo_log.h"
#include "mlo_queue.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *KEYS[8] = {"loss",          "accuracy",  "val_loss",   "val_accuracy",
                              "learning_rate", "grad_norm", "epoch_time", "throughput"};
static const char *RUN = "4f2a9c1b7e3d4a5b8c6d9e0f1a2b3c4d";

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double noise(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 - 0.5;
}

/* Writes n events into a new segment at path, committing every per events.
 * Returns the seconds spent. */
static double write_segment(const char *path, long n, long per, int64_t step0) {
    char err[256];
    mlo_logw *w = mlo__logw_create(path, err, sizeof err);
    if (!w) {
        fprintf(stderr, "bench_log: %s\n", err);
        exit(1);
    }
    mlo_log_event e = {0};
    e.type = MLO_REC_METRIC;
    e.run_id = RUN;
    int64_t ts = 1700000000000;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int64_t step = step0 + i / 8;
        e.key = KEYS[i & 7];
        e.value_num = exp(-(double)step * 1e-5) * (1.0 + 0.1 * noise());
        e.step = step;
        e.timestamp = ts + step / 4; /* ~4 steps per ms */
        if (mlo__logw_add(w, &e) != 0) {
            perror("add");
            exit(1);
        }
        if ((i + 1) % per == 0 && mlo__logw_commit(w, 0, NULL) != 0) {
            perror("commit");
            exit(1);
        }
    }
    if (mlo__logw_commit(w, 0, NULL) != 0) {
        perror("commit");
        exit(1);
    }
    double t = now_s() - t0;
    mlo__logw_close(w);
    return t;
}

/* Sums raw_len over the blocks of a segment (the format in mlo_log.c:
 * 32-byte header, blocks of a 24-byte header with comp_len at 4, raw_len at 8). */
static double raw_bytes(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    double raw = 0;
    unsigned char h[24];
    long off = 32;
    while (fseek(f, off, SEEK_SET) == 0 && fread(h, 1, 24, f) == 24) {
        unsigned long comp = h[4] | h[5] << 8 | h[6] << 16 | (unsigned long)h[7] << 24;
        unsigned long rl = h[8] | h[9] << 8 | h[10] << 16 | (unsigned long)h[11] << 24;
        raw += (double)rl;
        off += 24 + (long)comp;
    }
    fclose(f);
    return raw;
}

int main(int argc, char **argv) {
    long events = argc > 1 ? atol(argv[1]) : 2000000;
    long read_events = argc > 2 ? atol(argv[2]) : 10000000;
    const char *tmp = argc > 3 ? argv[3] : getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/mlo_bench_log_XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_log: %ld metric events per write run, one thread, zstd level 1, no fsync, "
           "files in %s\n",
           events, dir);
    printf("%-14s %12s %10s %10s %8s %9s\n", "events/block", "events/s", "raw MB/s", "file MB/s",
           "ratio", "B/event");

    long pers[] = {256, 1024, 4096, 16384};
    for (size_t k = 0; k < sizeof pers / sizeof pers[0]; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/w%zu.seg", dir, k);
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) { /* best of 3 */
            unlink(path);
            double t = write_segment(path, events, pers[k], 0);
            if (t < best)
                best = t;
        }
        struct stat st;
        stat(path, &st);
        double raw = raw_bytes(path);
        /* and everything reads back */
        char err[256];
        mlo_logr *r = mlo__logr_open(path, err, sizeof err);
        mlo_log_event e;
        long got = 0;
        while (mlo__logr_next(r, &e, err, sizeof err) == 1)
            got++;
        mlo__logr_close(r);
        if (got != events) {
            fprintf(stderr, "bench_log: read %ld of %ld events\n", got, events);
            return 1;
        }
        printf("%-14ld %12.0f %10.1f %10.1f %8.2f %9.2f\n", pers[k], (double)events / best,
               raw / best / 1e6, (double)st.st_size / best / 1e6, raw / (double)st.st_size,
               (double)st.st_size / (double)events);
        unlink(path);
    }

    /* ---- read back and recovery over a segment set ---- */
    const int nseg = 10;
    long per_seg = read_events / nseg;
    double tw = 0;
    off_t total = 0;
    for (int s = 0; s < nseg; s++) {
        char path[600];
        snprintf(path, sizeof path, "%s/set%02d.seg", dir, s);
        tw += write_segment(path, per_seg, 4096, (int64_t)s * per_seg / 8);
        struct stat st;
        stat(path, &st);
        total += st.st_size;
    }
    long n = 0;
    double t0 = now_s();
    for (int s = 0; s < nseg; s++) {
        char path[600], err[256];
        snprintf(path, sizeof path, "%s/set%02d.seg", dir, s);
        mlo_logr *r = mlo__logr_open(path, err, sizeof err);
        if (!r) {
            fprintf(stderr, "bench_log: %s\n", err);
            return 1;
        }
        mlo_log_event e;
        int rc;
        double sum = 0;
        while ((rc = mlo__logr_next(r, &e, err, sizeof err)) == 1) {
            sum += e.value_num;
            n++;
        }
        if (rc != 0) {
            fprintf(stderr, "bench_log: %s\n", err);
            return 1;
        }
        mlo__logr_close(r);
        if (sum < 0)
            printf("?");
    }
    double tr = now_s() - t0;
    t0 = now_s();
    for (int s = 0; s < nseg; s++) {
        char path[600], err[256];
        snprintf(path, sizeof path, "%s/set%02d.seg", dir, s);
        mlo_logw *w = mlo__logw_reopen(path, err, sizeof err);
        if (!w) {
            fprintf(stderr, "bench_log: %s\n", err);
            return 1;
        }
        mlo__logw_close(w);
    }
    double tv = now_s() - t0;
    printf("segment set: %ld events in %d segments, %.1f MB on disk, written in %.2f s\n", n, nseg,
           (double)total / 1e6, tw);
    printf("read back (CRC + zstd + protobuf-c unpack of every event): %.2f s, %.0f events/s, "
           "%.0f MB/s of file\n",
           tr, (double)n / tr, (double)total / tr / 1e6);
    printf("recovery walk (mlo__logw_reopen of every segment: headers + CRCs): %.3f s, %.0f MB/s\n",
           tv, (double)total / tv / 1e6);
    for (int s = 0; s < nseg; s++) {
        char path[600];
        snprintf(path, sizeof path, "%s/set%02d.seg", dir, s);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
