/*
 * fuzz_log.c - libFuzzer target: run-log segments (src/mlo_log.c) as they
 * may be found on disk after a crash, a bit flip or tampering.
 *
 * Input: the bytes of a whole segment file.  Three passes over it:
 *  1. mlo__log_parse_buffer (in memory), touching every string of every
 *     event (ASan sees an over-read or a missing NUL);
 *  2. the file reader (mlo__logr_open/next/skip_damage) over the same bytes
 *     in a memfd: it must return the same events as pass 1 up to the first
 *     damage, then resynchronise without crashing (at most 100000 steps);
 *  3. mlo__logw_reopen on a copy: whatever survives the torn-tail cut must
 *     take one more event, and the file must then end with it.
 * Checks abort (libFuzzer reports a crash).  mlo_fuzz_accepted = 1 when the
 * segment opened and read to its end with no damage, else 0: the corpus's
 * ok-/bad- names (tests/fuzz_replay.c) are decisions about validity.
 *
 * The libFuzzer build compiles mlo_log.c with
 * -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which ignores CRC mismatches so
 * that mutated inputs reach zstd and protobuf-c; the replay build (plain
 * compiler, libmlo) checks CRCs as in production.
 *
 * Every field of every event goes into the comparison hash, the DATASET
 * record's digest, source type and context (LogEvent fields 11-13) included.
 *
 * Seeds: tests/corpus/log, written by tests/fuzz_log_seeds.c
 * (build/tests/fuzz_log_seeds tests/corpus/log); ok-dataset holds DATASET
 * events (type 6) with and without a context, between a run's other events.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mlo_log.h"

/* defined by fuzz_replay.c; libFuzzer builds get this weak one */
__attribute__((weak)) int mlo_fuzz_accepted;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_log: check failed: %s (line %d)\n", #c, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct seen {
    size_t n;
    uint64_t hash; /* of every event's fields, in order */
} seen;

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mixs(uint64_t h, const char *s) {
    return s ? mix(h, s, strlen(s) + 1) : mix(h, "\xff", 1);
}

static uint64_t event_hash(uint64_t h, const mlo_log_event *e) {
    CHECK(e->run_id != NULL);
    h = mix(h, &e->type, sizeof e->type);
    h = mixs(h, e->run_id);
    h = mixs(h, e->key);
    h = mixs(h, e->value);
    h = mix(h, &e->value_num, sizeof e->value_num);
    h = mix(h, &e->timestamp, sizeof e->timestamp);
    h = mix(h, &e->step, sizeof e->step);
    h = mixs(h, e->experiment_id);
    h = mixs(h, e->parent_run_id);
    CHECK(e->ntags == 0 || (e->tag_keys && e->tag_values));
    for (size_t i = 0; i < e->ntags; i++) {
        CHECK(e->tag_keys[i] && e->tag_values[i]);
        h = mixs(h, e->tag_keys[i]);
        h = mixs(h, e->tag_values[i]);
    }
    /* DATASET fields (LogEvent 11-13; NULL when absent), so both readers
     * must agree on them too */
    h = mixs(h, e->digest);
    h = mixs(h, e->source_type);
    h = mixs(h, e->context);
    return h;
}

static void on_event(void *ctx, const mlo_log_event *e) {
    seen *s = ctx;
    s->n++;
    s->hash = event_hash(s->hash, e);
}

static int memfd_with(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz_log", MFD_CLOEXEC);
    CHECK(fd >= 0);
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        CHECK(k > 0);
        done += (size_t)k;
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    seen mem = {0, 0xcbf29ce484222325ull};
    size_t n = mlo__log_parse_buffer(data, size, on_event, &mem);
    CHECK(n == mem.n);

    /* 2: the file reader */
    int fd = memfd_with(data, size);
    char path[64], err[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    mlo_logr *r = mlo__logr_open(path, err, sizeof err);
    int damaged = 0;
    if (r) {
        seen file = {0, 0xcbf29ce484222325ull};
        mlo_log_event e;
        for (int steps = 0; steps < 100000; steps++) {
            memset(err, 0, sizeof err);
            int rc = mlo__logr_next(r, &e, err, sizeof err);
            CHECK(rc >= -1 && rc <= 1);
            if (rc == 1) {
                if (!damaged)
                    on_event(&file, &e);
                else
                    (void)event_hash(0, &e);
                CHECK(mlo__logr_block_end(r) <= size);
                continue;
            }
            if (rc == 0)
                break;
            CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err));
            damaged = 1;
            if (!mlo__logr_skip_damage(r))
                break;
        }
        /* up to the first damage the two readers agree */
        CHECK(file.n == mem.n && file.hash == mem.hash);
        mlo__logr_close(r);
    } else {
        CHECK(n == 0 && err[0] != '\0');
    }
    mlo_fuzz_accepted = r != NULL && !damaged;

    /* 3: reopen cuts a torn tail and appends */
    mlo_logw *w = mlo__logw_reopen(path, err, sizeof err);
    if (w) {
        mlo_log_off before = mlo__logw_size(w), end = 0;
        CHECK(before <= size);
        mlo_log_event e = {0};
        e.type = 1;
        e.run_id = "ffffffffffffffffffffffffffffffff";
        e.key = "fuzz";
        e.value_num = 1.5;
        CHECK(mlo__logw_add(w, &e) == 0);
        CHECK(mlo__logw_commit(w, 0, &end) == 0);
        CHECK(end > before && end == mlo__logw_size(w));
        CHECK((off_t)end == lseek(fd, 0, SEEK_END));
        mlo__logw_close(w);
    }
    close(fd);
    return 0;
}
