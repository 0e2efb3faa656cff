/*
 * test_log.c - the run log's segment format (src/mlo_log.c): round trips of
 * every event type, many blocks, reopen and append, torn tails at every byte,
 * corrupted bytes, wrong magic and version, a reader following a live writer,
 * a failed commit retried, file mode.
 *
 * Every test works in its own fresh directory under $TMPDIR (or /tmp).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, ftruncate */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlo_log.h"
#include "mlo_payload.h"
#include "mlo_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t mlo__log_crc32c(const void *data, size_t n); /* mlo_log.c */

static const char *RUN = "0123456789abcdef0123456789abcdef";

/* ---- helpers ---- */

static char g_dir[256];

static int setup_dir(void **state) {
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/mlo_test_log_XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path_in(const char *name) {
    static char p[2][400];
    static int i;
    i ^= 1;
    snprintf(p[i], sizeof p[i], "%s/%s", g_dir, name);
    return p[i];
}

static mlo_log_event metric(const char *key, double v, int64_t step) {
    mlo_log_event e = {0};
    e.type = MLO_REC_METRIC;
    e.run_id = RUN;
    e.key = key;
    e.value_num = v;
    e.timestamp = step > 0 && step < 1000000000 ? 1700000000000 + step : 1700000000000;
    e.step = step;
    return e;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spill(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Writes nblocks blocks of per events each (metric "m", step = running
 * index); ends[i] gets the end offset of block i. */
static void write_blocks(const char *path, int nblocks, int per, mlo_log_off *ends) {
    char err[256];
    mlo_logw *w = mlo__logw_create(path, err, sizeof err);
    assert_non_null(w);
    int64_t step = 0;
    for (int b = 0; b < nblocks; b++) {
        for (int i = 0; i < per; i++) {
            mlo_log_event e = metric("m", (double)step * 0.5, step);
            assert_int_equal(mlo__logw_add(w, &e), 0);
            step++;
        }
        assert_int_equal(mlo__logw_pending(w), (size_t)per);
        mlo_log_off end;
        assert_int_equal(mlo__logw_commit(w, 0, &end), 0);
        assert_int_equal(end, mlo__logw_size(w));
        if (ends)
            ends[b] = end;
    }
    mlo__logw_close(w);
}

/* Reads metric events until next() returns non-1; checks they are steps
 * first, first+1, ...; returns the count and the final code in *rc. */
static char g_err[256]; /* read_steps' last message */

static int64_t read_steps(mlo_logr *r, int64_t first, int *rc) {
    mlo_log_event e;
    int64_t n = 0;
    g_err[0] = '\0';
    while ((*rc = mlo__logr_next(r, &e, g_err, sizeof g_err)) == 1) {
        assert_int_equal(e.type, MLO_REC_METRIC);
        assert_string_equal(e.run_id, RUN);
        assert_int_equal(e.step, first + n);
        assert_true(e.value_num == (double)(first + n) * 0.5);
        n++;
    }
    return n;
}

/* ---- tests ---- */

static void test_crc32c(void **state) {
    (void)state;
    assert_int_equal(mlo__log_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(mlo__log_crc32c("", 0), 0);
    /* agrees with the bitwise definition on every length and alignment */
    uint8_t buf[300];
    for (int i = 0; i < 300; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 7) {
            uint32_t c = 0xFFFFFFFFu;
            for (size_t i = 0; i < n; i++) {
                c ^= buf[off + i];
                for (int k = 0; k < 8; k++)
                    c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            }
            assert_int_equal(mlo__log_crc32c(buf + off, n), ~c);
        }
}

static void test_round_trip_every_type(void **state) {
    (void)state;
    char err[256];
    const char *p = path_in("rt.seg");
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    assert_non_null(w);

    char *big = malloc(32 * 1024 + 1);
    assert_non_null(big);
    for (int i = 0; i < 32 * 1024; i++)
        big[i] = (char)('a' + i % 26);
    big[32 * 1024] = '\0';
    const char *tk[] = {"mlflow.user", "big", "empty"};
    const char *tv[] = {"alice", big, ""};

    mlo_log_event start = {0};
    start.type = MLO_EV_START_RUN;
    start.run_id = RUN;
    start.key = "my-experiment";
    start.value = "baseline";
    start.timestamp = 1700000000123;
    start.experiment_id = "42";
    start.parent_run_id = "fedcba9876543210fedcba9876543210";
    start.ntags = 3;
    start.tag_keys = tk;
    start.tag_values = tv;

    mlo_log_event start2 = {0}; /* NULL everything optional */
    start2.type = MLO_EV_START_RUN;
    start2.run_id = "11111111111111111111111111111111";

    mlo_log_event m1 = metric("loss", 0.25, 7);
    mlo_log_event m2 = metric("neg", -0.0, -3);
    mlo_log_event m3 = metric("nan", NAN, 0);
    mlo_log_event m4 = metric("inf", -INFINITY, INT64_MAX);
    mlo_log_event par = {
        .type = MLO_REC_PARAM, .run_id = RUN, .key = "lr", .value = "0.01", .timestamp = 5};
    mlo_log_event tag = {.type = MLO_REC_TAG, .run_id = RUN, .key = "team", .value = "vision"};
    mlo_log_event end = {
        .type = MLO_REC_END_RUN, .run_id = RUN, .value_num = 3, .timestamp = 1700000009999};
    mlo_log_event unk = {.type = 999, .run_id = RUN}; /* passed through */

    const mlo_log_event *all[] = {&start, &start2, &m1, &m2, &m3, &m4, &par, &tag, &end, &unk};
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mlo__logw_add(w, all[i]), 0);
    assert_int_equal(mlo__logw_pending(w), n);
    mlo_log_off endoff;
    assert_int_equal(mlo__logw_commit(w, 1, &endoff), 0);
    assert_int_equal(mlo__logw_pending(w), 0);
    assert_int_equal(mlo__logw_commit(w, 0, &endoff), 0); /* nothing pending: no block */
    assert_int_equal(endoff, mlo__logw_size(w));
    mlo__logw_close(w);

    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal((unsigned long long)st.st_size, endoff);

    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    assert_non_null(r);
    mlo_log_event e;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 1);
        const mlo_log_event *x = all[i];
        assert_int_equal(e.type, x->type);
        assert_string_equal(e.run_id, x->run_id);
        if (x->key)
            assert_string_equal(e.key, x->key);
        else
            assert_null(e.key);
        if (x->value)
            assert_string_equal(e.value, x->value);
        else
            assert_null(e.value);
        assert_memory_equal(&e.value_num, &x->value_num, sizeof(double)); /* bitwise: -0, NaN */
        assert_int_equal(e.timestamp, x->timestamp);
        assert_int_equal(e.step, x->step);
        if (x->experiment_id)
            assert_string_equal(e.experiment_id, x->experiment_id);
        else
            assert_null(e.experiment_id);
        if (x->parent_run_id)
            assert_string_equal(e.parent_run_id, x->parent_run_id);
        else
            assert_null(e.parent_run_id);
        assert_int_equal(e.ntags, x->ntags);
        for (size_t t = 0; t < x->ntags; t++) {
            assert_string_equal(e.tag_keys[t], x->tag_keys[t]);
            assert_string_equal(e.tag_values[t], x->tag_values[t]);
        }
        assert_int_equal(mlo__logr_at_block_end(r), i == n - 1);
        assert_int_equal(mlo__logr_block_end(r), endoff);
    }
    assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 0);
    mlo__logr_close(r);

    /* the same bytes through the in-memory parser */
    size_t len;
    uint8_t *bytes = slurp(p, &len);
    assert_int_equal(mlo__log_parse_buffer(bytes, len, NULL, NULL), n);
    free(bytes);
    free(big);
}

static void test_invalid_add(void **state) {
    (void)state;
    char err[256];
    mlo_logw *w = mlo__logw_create(path_in("inv.seg"), err, sizeof err);
    assert_non_null(w);
    mlo_log_event e = metric("m", 1, 1);
    e.run_id = NULL;
    assert_int_equal(mlo__logw_add(w, &e), -1);
    e.run_id = RUN;
    e.ntags = 1; /* arrays missing */
    assert_int_equal(mlo__logw_add(w, &e), -1);
    assert_int_equal(mlo__logw_pending(w), 0);
    mlo__logw_close(w);
    /* create refuses an existing file */
    assert_null(mlo__logw_create(path_in("inv.seg"), err, sizeof err));
    assert_non_null(strstr(err, "exists"));
}

static void test_many_blocks_and_seek(void **state) {
    (void)state;
    enum { NB = 200, PER = 500 };
    mlo_log_off ends[NB];
    const char *p = path_in("many.seg");
    write_blocks(p, NB, PER, ends);
    char err[256];
    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    assert_non_null(r);
    mlo_log_event e;
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < PER; i++) {
            assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 1);
            assert_int_equal(e.step, (int64_t)b * PER + i);
            assert_int_equal(mlo__logr_block_end(r), ends[b]);
            assert_int_equal(mlo__logr_at_block_end(r), i == PER - 1);
        }
    assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 0);
    /* seek to a block boundary, and back to the start */
    assert_int_equal(mlo__logr_seek(r, ends[149]), 0);
    int rc;
    assert_int_equal(read_steps(r, 150 * PER, &rc), 50 * PER);
    assert_int_equal(rc, 0);
    assert_int_equal(mlo__logr_seek(r, 0), 0);
    assert_int_equal(read_steps(r, 0, &rc), NB * PER);
    assert_int_equal(rc, 0);
    assert_int_equal(mlo__logr_seek(r, 3), -1); /* inside the header */
    mlo__logr_close(r);
}

static void test_reopen_and_append(void **state) {
    (void)state;
    const char *p = path_in("reopen.seg");
    mlo_log_off ends[3];
    write_blocks(p, 3, 100, ends);
    char err[256];
    mlo_logw *w = mlo__logw_reopen(p, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(mlo__logw_size(w), ends[2]);
    for (int i = 300; i < 450; i++) {
        mlo_log_event e = metric("m", i * 0.5, i);
        assert_int_equal(mlo__logw_add(w, &e), 0);
    }
    assert_int_equal(mlo__logw_commit(w, 1, NULL), 0);
    mlo__logw_close(w);
    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    assert_non_null(r);
    int rc;
    assert_int_equal(read_steps(r, 0, &rc), 450);
    assert_int_equal(rc, 0);
    mlo__logr_close(r);
    /* reopen of something that is not there */
    assert_null(mlo__logw_reopen(path_in("nope.seg"), err, sizeof err));
}

/* Truncating the file at every byte offset of the last block: the earlier
 * blocks all read, the reader says "nothing more yet" (0), parse_buffer
 * agrees, and reopen cuts the tail so that appending works. */
static void test_torn_tail_every_offset(void **state) {
    (void)state;
    const char *p = path_in("torn.seg");
    mlo_log_off ends[3];
    write_blocks(p, 3, 40, ends);
    size_t len;
    uint8_t *bytes = slurp(p, &len);
    assert_int_equal(len, ends[2]);
    const char *q = path_in("torn_cut.seg");
    char err[256];
    for (size_t cut = ends[1]; cut < ends[2]; cut++) {
        assert_int_equal(mlo__log_parse_buffer(bytes, cut, NULL, NULL), 80);
        spill(q, bytes, cut);
        mlo_logr *r = mlo__logr_open(q, err, sizeof err);
        assert_non_null(r);
        int rc;
        assert_int_equal(read_steps(r, 0, &rc), 80);
        assert_int_equal(rc, 0);
        mlo__logr_close(r);

        mlo_logw *w = mlo__logw_reopen(q, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(mlo__logw_size(w), ends[1]);
        mlo_log_event e = metric("m", 80 * 0.5, 80);
        assert_int_equal(mlo__logw_add(w, &e), 0);
        assert_int_equal(mlo__logw_commit(w, 0, NULL), 0);
        mlo__logw_close(w);
        r = mlo__logr_open(q, err, sizeof err);
        assert_non_null(r);
        assert_int_equal(read_steps(r, 0, &rc), 81);
        assert_int_equal(rc, 0);
        mlo__logr_close(r);
        unlink(q);
    }
    /* a torn header: open and reopen fail with a message */
    for (size_t cut = 0; cut < 32; cut++) {
        assert_int_equal(mlo__log_parse_buffer(bytes, cut, NULL, NULL), 0);
        spill(q, bytes, cut);
        assert_null(mlo__logr_open(q, err, sizeof err));
        assert_true(strlen(err) > 0);
        assert_null(mlo__logw_reopen(q, err, sizeof err));
        unlink(q);
    }
    free(bytes);
}

/* A flipped byte anywhere in a middle block: -1 at that block, skip_damage
 * resumes at the next one; reopen refuses to cut intact blocks. */
static void test_corrupt_middle_block(void **state) {
    (void)state;
    const char *p = path_in("corrupt.seg");
    mlo_log_off ends[3];
    write_blocks(p, 3, 40, ends);
    size_t len;
    uint8_t *bytes = slurp(p, &len);
    const char *q = path_in("corrupt_x.seg");
    char err[256];
    for (size_t at = ends[0]; at < ends[1]; at++) {
        bytes[at] ^= 0x5A;
        spill(q, bytes, len);
        bytes[at] ^= 0x5A;
        mlo_logr *r = mlo__logr_open(q, err, sizeof err);
        assert_non_null(r);
        int rc;
        assert_int_equal(read_steps(r, 0, &rc), 40);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(g_err, "offset"));
        /* still -1 when asked again */
        mlo_log_event e;
        assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), -1);
        assert_int_equal(mlo__logr_skip_damage(r), 1);
        assert_int_equal(read_steps(r, 80, &rc), 40);
        assert_int_equal(rc, 0);
        mlo__logr_close(r);
        assert_int_equal(mlo__log_parse_buffer(bytes, len, NULL, NULL), 120);
        assert_null(mlo__logw_reopen(q, err, sizeof err));
        assert_non_null(strstr(err, "intact blocks after"));
    }
    /* damage in the last block: skip finds nothing; reopen cuts it */
    bytes[ends[1] + 30] ^= 1;
    spill(q, bytes, len);
    mlo_logr *r = mlo__logr_open(q, err, sizeof err);
    int rc;
    assert_int_equal(read_steps(r, 0, &rc), 80);
    assert_int_equal(rc, -1);
    assert_int_equal(mlo__logr_skip_damage(r), 0);
    mlo__logr_close(r);
    mlo_logw *w = mlo__logw_reopen(q, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(mlo__logw_size(w), ends[1]);
    mlo__logw_close(w);
    free(bytes);
}

static void test_wrong_magic_and_version(void **state) {
    (void)state;
    const char *p = path_in("hdr.seg");
    write_blocks(p, 1, 10, NULL);
    size_t len;
    uint8_t *bytes = slurp(p, &len);
    const char *q = path_in("hdr_x.seg");
    char err[256];

    bytes[0] = 'X';
    spill(q, bytes, len);
    assert_null(mlo__logr_open(q, err, sizeof err));
    assert_non_null(strstr(err, "magic"));
    assert_null(mlo__logw_reopen(q, err, sizeof err));
    assert_non_null(strstr(err, "magic"));
    bytes[0] = 'M';

    /* version 2 with a valid header CRC: refused, naming the version */
    bytes[6] = 2;
    uint32_t c = mlo__log_crc32c(bytes, 28);
    uint8_t save[4];
    memcpy(save, bytes + 28, 4);
    bytes[28] = (uint8_t)c;
    bytes[29] = (uint8_t)(c >> 8);
    bytes[30] = (uint8_t)(c >> 16);
    bytes[31] = (uint8_t)(c >> 24);
    spill(q, bytes, len);
    assert_null(mlo__logr_open(q, err, sizeof err));
    assert_non_null(strstr(err, "version 2"));
    assert_int_equal(mlo__log_parse_buffer(bytes, len, NULL, NULL), 0);
    bytes[6] = 1;

    /* header checksum */
    spill(q, bytes, len); /* version 1 but the CRC of version 2 */
    assert_null(mlo__logr_open(q, err, sizeof err));
    assert_non_null(strstr(err, "checksum"));
    memcpy(bytes + 28, save, 4);

    /* not a segment at all */
    spill(q, (const uint8_t *)"hello", 5);
    assert_null(mlo__logr_open(q, err, sizeof err));
    assert_null(mlo__logr_open(path_in("missing.seg"), err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    free(bytes);
}

/* A reader that reached the end sees blocks committed later. */
static void test_reader_follows_writer(void **state) {
    (void)state;
    const char *p = path_in("live.seg");
    char err[256];
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    assert_non_null(w);
    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    assert_non_null(r);
    mlo_log_event e;
    assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 0); /* empty segment */
    int64_t step = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5; i++) {
            mlo_log_event m = metric("m", step * 0.5, step);
            step++;
            assert_int_equal(mlo__logw_add(w, &m), 0);
        }
        /* added but not committed: nothing to see */
        assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 0);
        assert_int_equal(mlo__logw_commit(w, 0, NULL), 0);
        int rc;
        assert_int_equal(read_steps(r, step - 5, &rc), 5);
        assert_int_equal(rc, 0);
        assert_int_equal(mlo__logr_block_end(r), mlo__logw_size(w));
    }
    mlo__logw_close(w);
    mlo__logr_close(r);
}

/* A commit that fails (file size limit) leaves the file as it was and the
 * events pending; the retry writes them once. */
static void test_commit_failure_retry(void **state) {
    (void)state;
    const char *p = path_in("efbig.seg");
    char err[256];
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    assert_non_null(w);
    mlo_log_event m = metric("m", 0, 0);
    assert_int_equal(mlo__logw_add(w, &m), 0);
    assert_int_equal(mlo__logw_commit(w, 0, NULL), 0);
    mlo_log_off before = mlo__logw_size(w);
    for (int i = 1; i < 2000; i++) {
        m = metric("m", i * 0.5, i);
        assert_int_equal(mlo__logw_add(w, &m), 0);
    }
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = before + 40; /* the write goes partly through, then EFBIG */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(mlo__logw_commit(w, 0, NULL), -1);
    assert_int_equal(errno, EFBIG);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(mlo__logw_pending(w), 1999);
    assert_int_equal(mlo__logw_size(w), before);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal((unsigned long long)st.st_size, before);
    assert_int_equal(mlo__logw_commit(w, 0, NULL), 0);
    mlo__logw_close(w);
    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    int rc;
    assert_int_equal(read_steps(r, 0, &rc), 2000);
    assert_int_equal(rc, 0);
    mlo__logr_close(r);
}

static void test_file_mode(void **state) {
    (void)state;
    mode_t old = umask(0);
    const char *p = path_in("mode.seg");
    char err[256];
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    umask(old);
    assert_non_null(w);
    mlo__logw_close(w);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* an unwritable place gives a message */
    assert_null(mlo__logw_create("/nonexistent-dir/x.seg", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/x.seg"));
}

/* Random garbage and random bit flips never crash the parser (the fuzzer
 * does this properly; this is the quick version in every run). */
static void test_garbage(void **state) {
    (void)state;
    const char *p = path_in("garbage.seg");
    write_blocks(p, 4, 30, NULL);
    size_t len;
    uint8_t *bytes = slurp(p, &len);
    uint32_t seed = 12345;
    for (int t = 0; t < 3000; t++) {
        uint8_t *c = malloc(len);
        memcpy(c, bytes, len);
        int flips = 1 + t % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            c[(seed >> 8) % len] ^= (uint8_t)(1u << (seed % 8));
        }
        size_t n = mlo__log_parse_buffer(c, len, NULL, NULL);
        assert_true(n <= 120);
        free(c);
    }
    free(bytes);
}

/* The reader's fast path for common events (decode_fast in mlo_log.c) must
 * read every frame it takes exactly as protobuf-c does: random frames built
 * from LogEvent's fields (every field number 0-17, right and wrong wire
 * types, duplicates, over-long and 10-byte varints, empty and embedded-NUL
 * strings, truncation, stray bytes) go through both decoders; they must agree
 * whenever the fast path takes one, and it must take the plain events. */
static uint32_t g_seed = 777;
static uint32_t rnd(uint32_t n) {
    g_seed = g_seed * 1103515245u + 12345u;
    return (g_seed >> 8) % n;
}
static size_t put_varint(uint8_t *p, uint64_t v, int overlong) {
    size_t i = 0;
    while (v >= 0x80 || overlong > 0) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
        if (v < 0x80)
            overlong--;
    }
    p[i++] = (uint8_t)v;
    return i;
}

static void test_fast_decode_matches_protobuf(void **state) {
    (void)state;
    static const uint64_t VARS[] = {0,
                                    1,
                                    5,
                                    127,
                                    128,
                                    300,
                                    0xFFFFFFFFull,
                                    0x100000000ull,
                                    (uint64_t)-1,
                                    (uint64_t)-12345,
                                    1700000000000ull};
    uint8_t f[512];
    int taken = 0, declined = 0, mixed = 0;
    for (int t = 0; t < 200000; t++) {
        size_t n = 0;
        int plain = rnd(4) == 0; /* a METRIC as the writer makes it */
        int nf = plain ? 0 : 1 + (int)rnd(8);
        if (plain) {
            f[n++] = 0x08;
            f[n++] = 1; /* type */
            f[n++] = 0x12;
            f[n++] = 32;
            memcpy(f + n, RUN, 32);
            n += 32;
            f[n++] = 0x1a;
            f[n++] = 4;
            memcpy(f + n, "loss", 4);
            n += 4;
            f[n++] = 0x29;
            double d = (double)rnd(1000) / 7;
            memcpy(f + n, &d, 8);
            n += 8;
            f[n++] = 0x30;
            n += put_varint(f + n, 1700000000000ull + rnd(100000), 0);
            f[n++] = 0x38;
            n += put_varint(f + n, rnd(100000), 0);
        }
        if (!plain && rnd(2) == 0) { /* type and run id, then random fields */
            f[n++] = 0x08;
            f[n++] = (uint8_t)rnd(20);
            f[n++] = 0x12;
            f[n++] = 3;
            memcpy(f + n, "abc", 3);
            n += 3;
        }
        for (int k = 0; k < nf && n < sizeof f - 64; k++) {
            uint32_t field = rnd(18), wt = rnd(10) < 8 ? 99 : rnd(8);
            if (wt == 99) /* the declared type */
                wt = field == 5 || field == 15 || field == 16                    ? 1
                     : (field >= 2 && field <= 4) || (field >= 8 && field <= 13) ? 2
                                                                                 : 0;
            n += put_varint(f + n, field << 3 | wt, rnd(10) == 0);
            if (wt == 0) {
                n += put_varint(f + n, VARS[rnd(sizeof VARS / sizeof *VARS)], rnd(6) == 0);
            } else if (wt == 1) {
                for (int b = 0; b < 8; b++)
                    f[n++] = (uint8_t)rnd(256);
            } else if (wt == 5) {
                for (int b = 0; b < 4; b++)
                    f[n++] = (uint8_t)rnd(256);
            } else if (wt == 2) {
                uint32_t l = rnd(5) == 0 ? 0 : rnd(40);
                n += put_varint(f + n, l, rnd(8) == 0);
                for (uint32_t b = 0; b < l; b++)
                    f[n++] = rnd(20) == 0 ? 0 : (uint8_t)('a' + rnd(26));
            }
        }
        int changed = 0;
        if (rnd(8) == 0 && n > 0) { /* cut short */
            n -= 1 + rnd((uint32_t)n);
            changed = 1;
        }
        if (rnd(16) == 0 && n > 0) { /* a stray byte */
            f[rnd((uint32_t)n)] = (uint8_t)rnd(256);
            changed = 1;
        }
        int rc = mlo__log_decode_compare(f, n);
        if (rc == -1) {
            fprintf(stderr, "frame %d (%zu bytes):", t, n);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %02x", f[i]);
            fprintf(stderr, "\n");
        }
        assert_int_not_equal(rc, -1);
        assert_int_not_equal(rc, -2);
        if (plain && !changed)
            assert_int_equal(rc, 1);
        taken += rc == 1;
        mixed += rc == 1 && !plain;
        declined += rc == 0;
    }
    fprintf(stderr, "fast path took %d frames (%d not plain), declined %d\n", taken, mixed,
            declined);
    /* both paths were exercised, many times */
    assert_true(taken > 40000);
    assert_true(mixed > 5000);
    assert_true(declined > 50000);
}

/* DATASET events (type 6): name in key, source JSON in value, and the
 * fields digest, source_type, context that only they use; their record
 * payload (mlo_queue.h) splits into the same four strings. */
static void test_dataset_event(void **state) {
    (void)state;
    char err[256];
    const char *p = path_in("ds.seg");
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    assert_non_null(w);
    mlo_log_event d1 = {.type = MLO_REC_DATASET,
                        .run_id = RUN,
                        .key = "train",
                        .value = "{\"uri\": \"s3://b/train.csv\"}",
                        .timestamp = 1700000000001,
                        .digest = "0123456789abcdef0123456789abcdef",
                        .source_type = "s3",
                        .context = "training"};
    mlo_log_event d2 = d1; /* no context */
    d2.context = NULL;
    mlo_log_event m = metric("loss", 0.5, 1);
    assert_int_equal(mlo__logw_add(w, &d1), 0);
    assert_int_equal(mlo__logw_add(w, &d2), 0);
    assert_int_equal(mlo__logw_add(w, &m), 0);
    assert_int_equal(mlo__logw_commit(w, 0, NULL), 0);
    mlo__logw_close(w);

    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    assert_non_null(r);
    mlo_log_event e;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 1);
        assert_int_equal(e.type, MLO_REC_DATASET);
        assert_string_equal(e.key, "train");
        assert_string_equal(e.value, d1.value);
        assert_int_equal(e.timestamp, d1.timestamp);
        assert_string_equal(e.digest, d1.digest);
        assert_string_equal(e.source_type, "s3");
        if (i == 0)
            assert_string_equal(e.context, "training");
        else
            assert_null(e.context);
    }
    assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 1); /* other events: none */
    assert_int_equal(e.type, MLO_REC_METRIC);
    assert_null(e.digest);
    assert_null(e.source_type);
    assert_null(e.context);
    assert_int_equal(mlo__logr_next(r, &e, err, sizeof err), 0);
    mlo__logr_close(r);

    /* the ring record's payload: source, digest, type, context */
    mlo_dataset_payload ds;
    const char full[] = "{}\0dg\0local\0ctx";
    assert_int_equal(mlo__payload_dataset_parse(full, sizeof full - 1, &ds), 0);
    assert_string_equal(ds.source, "{}");
    assert_string_equal(ds.digest, "dg");
    assert_string_equal(ds.source_type, "local");
    assert_string_equal(ds.context, "ctx");
    const char empty_ctx[] = "{}\0dg\0local\0";
    assert_int_equal(mlo__payload_dataset_parse(empty_ctx, sizeof empty_ctx - 1, &ds), 0);
    assert_string_equal(ds.context, "");
    const char three[] = "{}\0dg\0local"; /* context missing: "" */
    assert_int_equal(mlo__payload_dataset_parse(three, sizeof three - 1, &ds), 0);
    assert_string_equal(ds.source_type, "local");
    assert_string_equal(ds.context, "");
    const char five[] = "{}\0dg\0local\0ctx\0future"; /* a later field: ignored */
    assert_int_equal(mlo__payload_dataset_parse(five, sizeof five - 1, &ds), 0);
    assert_string_equal(ds.context, "ctx");
    const char two[] = "{}\0dg";
    assert_int_equal(mlo__payload_dataset_parse(two, sizeof two - 1, &ds), -1);
    assert_int_equal(mlo__payload_dataset_parse("", 0, &ds), -1);
}

/* A segment written before datasets existed (tests/corpus/log/ok-full,
 * committed with the format in c0bc9e7 and never rewritten since) reads
 * with this reader: every event, none with the dataset fields. */
static void test_old_segment_reads(void **state) {
    (void)state;
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s", MLO_TEST_SERVER_PY); /* <source>/tests/... */
    char *slash = strrchr(path, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof path - (size_t)(slash - path), "/corpus/log/ok-full");
    mlo_logr *r = mlo__logr_open(path, err, sizeof err);
    if (!r)
        fail_msg("%s", err);
    mlo_log_event e;
    int n = 0, rc, metrics = 0;
    while ((rc = mlo__logr_next(r, &e, err, sizeof err)) == 1) {
        assert_true(e.type == MLO_EV_START_RUN || e.type == MLO_REC_PARAM ||
                    e.type == MLO_REC_TAG || e.type == MLO_REC_METRIC || e.type == MLO_REC_END_RUN);
        assert_null(e.digest);
        assert_null(e.source_type);
        assert_null(e.context);
        metrics += e.type == MLO_REC_METRIC;
        if (n == 0) {
            assert_int_equal(e.type, MLO_EV_START_RUN);
            assert_string_equal(e.key, "exp");
            assert_int_equal(e.ntags, 2);
        }
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 44);
    assert_int_equal(metrics, 40);
    mlo__logr_close(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_round_trip_every_type, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_invalid_add, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_many_blocks_and_seek, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen_and_append, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_block, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_wrong_magic_and_version, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reader_follows_writer, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_commit_failure_retry, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_file_mode, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_garbage, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dataset_event, setup_dir, teardown_dir),
        cmocka_unit_test(test_old_segment_reads),
        cmocka_unit_test(test_fast_decode_matches_protobuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
