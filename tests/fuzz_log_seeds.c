/*
 * fuzz_log_seeds.c - writes the seed corpus of tests/fuzz_log.c with the
 * segment writer itself: build/tests/fuzz_log_seeds tests/corpus/log
 * (existing files of the same names are replaced).  The names say what the
 * reader must decide (tests/fuzz_replay.c): ok- reads to the end without
 * damage, bad- has damage.  ok-dataset / bad-dataset-last-block-crc hold
 * DATASET events (type 6: digest, source_type, context).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlo_log.h"
#include "mlo_queue.h"

static const char *dir;
static const char *RUN = "00112233445566778899aabbccddeeff";

static char *path_of(const char *name) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static mlo_logw *create(const char *name) {
    char err[256];
    unlink(path_of(name));
    mlo_logw *w = mlo__logw_create(path_of(name), err, sizeof err);
    if (!w) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return w;
}

static void add(mlo_logw *w, const mlo_log_event *e) {
    if (mlo__logw_add(w, e) != 0 || mlo__logw_pending(w) == 0) {
        perror("add");
        exit(1);
    }
}

static void commit(mlo_logw *w) {
    if (mlo__logw_commit(w, 0, NULL) != 0) {
        perror("commit");
        exit(1);
    }
}

/* Every event type in one block, then metrics in two more blocks. */
static void write_full(const char *name) {
    mlo_logw *w = create(name);
    const char *tk[] = {"mlflow.user", "mlflow.source.name"};
    const char *tv[] = {"alice", "train.c"};
    mlo_log_event s = {.type = MLO_EV_START_RUN,
                       .run_id = RUN,
                       .key = "exp",
                       .value = "run-a",
                       .timestamp = 1700000000000,
                       .experiment_id = "1",
                       .parent_run_id = "ffeeddccbbaa99887766554433221100",
                       .ntags = 2,
                       .tag_keys = tk,
                       .tag_values = tv};
    add(w, &s);
    mlo_log_event p = {.type = MLO_REC_PARAM, .run_id = RUN, .key = "lr", .value = "0.1"};
    add(w, &p);
    mlo_log_event t = {.type = MLO_REC_TAG, .run_id = RUN, .key = "team", .value = "x"};
    add(w, &t);
    commit(w);
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < 20; i++) {
            mlo_log_event m = {.type = MLO_REC_METRIC,
                               .run_id = RUN,
                               .key = i % 2 ? "loss" : "acc",
                               .value_num = 1.0 / (i + 1),
                               .timestamp = 1700000000000 + i,
                               .step = b * 20 + i};
            add(w, &m);
        }
        commit(w);
    }
    mlo_log_event e = {
        .type = MLO_REC_END_RUN, .run_id = RUN, .value_num = 3, .timestamp = 1700000001000};
    add(w, &e);
    commit(w);
    mlo__logw_close(w);
}

/* A run that used datasets: START_RUN, DATASET events (type 6, with the
 * fields digest, source_type and context that only they carry; context
 * absent, empty and set), a metric and END_RUN, in two blocks. */
static void write_dataset(const char *name) {
    mlo_logw *w = create(name);
    mlo_log_event s = {.type = MLO_EV_START_RUN,
                       .run_id = RUN,
                       .key = "iris",
                       .value = "with-data",
                       .timestamp = 1700000000000};
    add(w, &s);
    mlo_log_event d1 = {.type = MLO_REC_DATASET,
                        .run_id = RUN,
                        .key = "iris-train",
                        .value = "{\"uri\": \"/data/iris/train.csv\"}",
                        .timestamp = 1700000000001,
                        .digest = "0123456789abcdef0123456789abcdef",
                        .source_type = "local"};
    add(w, &d1);
    mlo_log_event d2 = {.type = MLO_REC_DATASET,
                        .run_id = RUN,
                        .key = "donn\xc3\xa9"
                               "es-test",
                        .value = "{\"uri\": \"s3://bucket/iris/test.parquet\"}",
                        .timestamp = 1700000000002,
                        .digest = "abcdefabcdefabcdefabcdefabcdefabcdef", /* 36: the limit */
                        .source_type = "s3",
                        .context = "eval"};
    add(w, &d2);
    commit(w);
    mlo_log_event m = {.type = MLO_REC_METRIC,
                       .run_id = RUN,
                       .key = "accuracy",
                       .value_num = 0.93,
                       .timestamp = 1700000000003,
                       .step = 1};
    add(w, &m);
    mlo_log_event d3 = {.type = MLO_REC_DATASET,
                        .run_id = RUN,
                        .key = "web",
                        .value = "{\"url\": \"https://example.org/iris.csv\"}",
                        .timestamp = 1700000000004,
                        .digest = "ffffffffffffffffffffffffffffffff",
                        .source_type = "http",
                        .context = ""};
    add(w, &d3);
    mlo_log_event e = {
        .type = MLO_REC_END_RUN, .run_id = RUN, .value_num = 3, .timestamp = 1700000001000};
    add(w, &e);
    commit(w);
    mlo__logw_close(w);
}

static unsigned char *slurp(const char *name, size_t *n) {
    FILE *f = fopen(path_of(name), "rb");
    if (!f)
        exit(1);
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void spill(const char *name, const unsigned char *b, size_t n) {
    FILE *f = fopen(path_of(name), "wb");
    if (!f || fwrite(b, 1, n, f) != n)
        exit(1);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_log_seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    mlo__logw_close(create("ok-empty"));
    write_full("ok-full");

    size_t n;
    unsigned char *b = slurp("ok-full", &n);
    spill("ok-torn-tail", b, n - 7); /* a block cut short: "not yet" */
    spill("bad-short-header", b, 20);
    b[0] ^= 0x20;
    spill("bad-magic", b, n);
    b[0] ^= 0x20;
    b[6] = 9; /* version 9, header CRC now wrong too */
    spill("bad-version", b, n);
    b[6] = 1;
    b[32 + 50] ^= 0x01; /* the first block's payload */
    spill("bad-first-block-crc", b, n);
    b[32 + 50] ^= 0x01;
    b[n - 40] ^= 0x80;
    spill("bad-last-block-crc", b, n);
    free(b);

    write_dataset("ok-dataset");
    b = slurp("ok-dataset", &n);
    b[n - 30] ^= 0x40; /* the last block (second dataset block) damaged */
    spill("bad-dataset-last-block-crc", b, n);
    free(b);

    /* a START_RUN with a 10 KB tag value */
    mlo_logw *w = create("ok-big-tag");
    char *big = malloc(10001);
    for (int i = 0; i < 10000; i++)
        big[i] = (char)('a' + (i * 7) % 26);
    big[10000] = 0;
    const char *tk[] = {"note"};
    const char *tv[] = {big};
    mlo_log_event s = {
        .type = MLO_EV_START_RUN, .run_id = RUN, .ntags = 1, .tag_keys = tk, .tag_values = tv};
    add(w, &s);
    commit(w);
    mlo__logw_close(w);
    free(big);
    return 0;
}
