/*
 * test_queue.c - unit and stress tests of the event queue, run once per
 * implementation behind mlo_queue_ops (mutex baseline, lock-free ring).
 *
 * cmocka's assert_* are not thread safe: worker threads record failures in
 * atomic counters and the test thread asserts on those.
 *
 * MLO_STRESS_EVENTS (environment) sets the events per producer of the stress
 * tests (default 200000); sanitizer runs may lower it.
 */
#define _GNU_SOURCE /* ftruncate, mmap */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlo_queue.h"
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The implementation under test; set before each cmocka group runs. */
static const mlo_queue_ops *g_ops;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns) {
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- Collecting drained records -------------------------------------------- */

typedef struct got {
    size_t n, cap;
    mlo_rec *hdr; /* copies of the headers */
    char **key;
    char **val;
    size_t bad_type; /* records of a type the producer never pushes (a PAD leak) */
} got;

static void got_fn(void *ctx, const mlo_rec *r) {
    got *g = ctx;
    if (r->type < MLO_REC_METRIC || r->type > MLO_REC_END_RUN)
        g->bad_type++;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->hdr = realloc(g->hdr, g->cap * sizeof *g->hdr);
        g->key = realloc(g->key, g->cap * sizeof *g->key);
        g->val = realloc(g->val, g->cap * sizeof *g->val);
    }
    g->hdr[g->n] = *r;
    g->key[g->n] = malloc((size_t)r->key_len + 1);
    memcpy(g->key[g->n], mlo__rec_key(r), r->key_len);
    g->key[g->n][r->key_len] = 0;
    g->val[g->n] = malloc((size_t)r->val_len + 1);
    memcpy(g->val[g->n], mlo__rec_val(r), r->val_len);
    g->val[g->n][r->val_len] = 0;
    g->n++;
}

static void got_free(got *g) {
    for (size_t i = 0; i < g->n; i++) {
        free(g->key[i]);
        free(g->val[i]);
    }
    free(g->hdr);
    free(g->key);
    free(g->val);
    memset(g, 0, sizeof *g);
}

static int push_kv(mlo_queue *q, uint16_t type, const char *key, const char *val, size_t val_len,
                   int64_t step, double value) {
    mlo_rec h = {.type = type,
                 .key_len = (uint16_t)strlen(key),
                 .run = 7,
                 .val_len = (uint32_t)val_len,
                 .timestamp = 1700000000000 + step,
                 .step = step,
                 .value = value};
    return g_ops->push(q, &h, key, val);
}

/* A record of exactly `size` bytes (a multiple of 8, >= 48) with key "k". */
static int push_sized(mlo_queue *q, size_t size, int64_t step) {
    static char fill[1 << 16];
    size_t val_len = size - sizeof(mlo_rec) - 1;
    memset(fill, 'a' + (int)(step % 26), val_len);
    return push_kv(q, MLO_REC_PARAM, "k", fill, val_len, step, 0);
}

static char *pattern(size_t n, unsigned seed) {
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('!' + (i * 131 + seed) % 90);
    s[n] = 0;
    return s;
}

/* ---- Single-thread behaviour ------------------------------------------------ */

static void test_round_trip(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(1 << 16, 0);
    assert_non_null(q);
    assert_int_equal(g_ops->used(q), 0);

    char *v24 = pattern(24000, 1);
    char *v32 = pattern(32000, 2);
    assert_int_equal(push_kv(q, MLO_REC_METRIC, "loss", NULL, 0, 1, 0.25), MLO_Q_OK);
    assert_int_equal(g_ops->used(q), mlo__rec_size(4, 0));
    assert_int_equal(push_kv(q, MLO_REC_PARAM, "big_param", v24, 24000, 2, 0), MLO_Q_OK);
    assert_int_equal(push_kv(q, MLO_REC_METRIC, "acc", NULL, 0, 3, -1.5e300), MLO_Q_OK);

    got g = {0};
    assert_int_equal(g_ops->drain(q, 1, got_fn, &g), 1);
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 2);
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 0);
    assert_int_equal(g_ops->used(q), 0);
    /* A 32,000-byte tag now fits (the 24,000-byte param was released). */
    assert_int_equal(push_kv(q, MLO_REC_TAG, "mlflow.note.content", v32, 32000, 4, 0), MLO_Q_OK);
    assert_int_equal(push_kv(q, MLO_REC_END_RUN, "", NULL, 0, 5, 1), MLO_Q_OK);
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 2);

    assert_int_equal(g.n, 5);
    assert_int_equal(g.bad_type, 0);
    const char *keys[] = {"loss", "big_param", "acc", "mlflow.note.content", ""};
    const uint16_t types[] = {MLO_REC_METRIC, MLO_REC_PARAM, MLO_REC_METRIC, MLO_REC_TAG,
                              MLO_REC_END_RUN};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(g.key[i], keys[i]);
        assert_int_equal(g.hdr[i].type, types[i]);
        assert_int_equal(g.hdr[i].run, 7);
        assert_int_equal(g.hdr[i].step, (int64_t)i + 1);
        assert_int_equal(g.hdr[i].timestamp, 1700000000000 + (int64_t)i + 1);
        assert_int_equal(g.hdr[i].size % MLO_REC_ALIGN, 0);
        assert_int_equal(g.hdr[i].size, mlo__rec_size(g.hdr[i].key_len, g.hdr[i].val_len));
    }
    assert_true(g.hdr[0].value == 0.25);
    assert_true(g.hdr[2].value == -1.5e300);
    assert_int_equal(g.hdr[1].val_len, 24000);
    assert_memory_equal(g.val[1], v24, 24000);
    assert_int_equal(g.hdr[3].val_len, 32000);
    assert_memory_equal(g.val[3], v32, 32000);
    assert_int_equal(g.hdr[0].val_len, 0);

    got_free(&g);
    free(v24);
    free(v32);
    g_ops->destroy(q);
}

/* Records of varied sizes through a small ring, many laps: every wrap that
 * does not land exactly on the end goes through a PAD, which drain must hide. */
static void test_wrap_pad(void **state) {
    (void)state;
    /* At most 3 records of <= 440 bytes plus one pad per lap: fits 2048. */
    mlo_queue *q = g_ops->create(2048, 0);
    assert_non_null(q);
    got g = {0};
    int64_t pushed = 0;
    size_t pads_seen = 0;
    for (int lap = 0; lap < 2000; lap++) {
        /* 1 to 3 records of 48..440 bytes, then drain. */
        int k = 1 + lap % 3;
        for (int j = 0; j < k; j++) {
            size_t size = 48 + (size_t)((lap * 7 + j * 13) % 50) * 8;
            size_t before = g_ops->used(q);
            assert_int_equal(push_sized(q, size, pushed), MLO_Q_OK);
            /* used grows by the record, or by record + pad at the wrap. */
            size_t grew = g_ops->used(q) - before;
            assert_true(grew >= size);
            if (grew > size)
                pads_seen++;
            pushed++;
        }
        g_ops->drain(q, SIZE_MAX, got_fn, &g);
        assert_int_equal(g_ops->used(q), 0);
    }
    assert_true(pads_seen > 100);
    assert_int_equal(g.bad_type, 0);
    assert_int_equal((int64_t)g.n, pushed);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.hdr[i].step, (int64_t)i);
        size_t vl = g.hdr[i].val_len;
        for (size_t b = 0; b < vl; b++)
            if (g.val[i][b] != 'a' + (int)(i % 26))
                fail_msg("record %zu byte %zu corrupt", i, b);
    }
    got_free(&g);
    g_ops->destroy(q);
}

static void test_too_big(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(1024, 0);
    assert_non_null(q);
    static char v[2048];
    /* Exactly half the ring: allowed. */
    assert_int_equal(push_kv(q, MLO_REC_PARAM, "k", v, 512 - sizeof(mlo_rec) - 1, 0, 0), MLO_Q_OK);
    assert_int_equal(push_kv(q, MLO_REC_PARAM, "k", v, 512 - sizeof(mlo_rec), 0, 0), MLO_Q_TOO_BIG);
    assert_int_equal(push_kv(q, MLO_REC_PARAM, "k", v, 2000, 0, 0), MLO_Q_TOO_BIG);
    mlo_rec h = {.type = MLO_REC_PARAM, .key_len = 1, .val_len = UINT32_MAX};
    assert_int_equal(g_ops->push(q, &h, "k", v), MLO_Q_TOO_BIG);
    got g = {0};
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 1);
    got_free(&g);
    g_ops->destroy(q);

    /* Not a power of two, or too small: refused. */
    assert_null(g_ops->create(1000, 0));
    assert_null(g_ops->create(0, 0));
}

/* Fill a ring of `cap` with 128-byte records; returns how many went in. */
static int fill(mlo_queue *q) {
    int n = 0;
    while (push_sized(q, 128, n) == MLO_Q_OK)
        n++;
    return n;
}

static void test_full_drop(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(4096, 0);
    assert_non_null(q);
    int n = fill(q);
    assert_int_equal(n, 4096 / 128);
    int64_t t0 = now_ns();
    assert_int_equal(push_sized(q, 128, 99), MLO_Q_FULL);
    assert_true(now_ns() - t0 < 100000000); /* at once, no waiting */
    got g = {0};
    assert_int_equal(g_ops->drain(q, 1, got_fn, &g), 1);
    assert_int_equal(push_sized(q, 128, 100), MLO_Q_OK);
    assert_int_equal(push_sized(q, 128, 101), MLO_Q_FULL);
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), (size_t)n);
    assert_int_equal(g.hdr[n].step, 100);
    got_free(&g);
    g_ops->destroy(q);
}

typedef struct drainer_arg {
    mlo_queue *q;
    int64_t delay_ns;
    size_t drained;
} drainer_arg;

static void count_fn(void *ctx, const mlo_rec *r) {
    (void)r;
    (*(size_t *)ctx)++;
}

static void *delayed_drainer(void *p) {
    drainer_arg *a = p;
    sleep_ns(a->delay_ns);
    g_ops->drain(a->q, 2, count_fn, &a->drained);
    return NULL;
}

static void test_full_wait_gets_room(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(4096, 2000000000); /* wait up to 2 s */
    assert_non_null(q);
    /* fill() would block for 2 s on the last push: fill by count instead. */
    for (int i = 0; i < 4096 / 128; i++)
        assert_int_equal(push_sized(q, 128, i), MLO_Q_OK);
    drainer_arg a = {.q = q, .delay_ns = 30000000};
    pthread_t th;
    int64_t t0 = now_ns();
    assert_int_equal(pthread_create(&th, NULL, delayed_drainer, &a), 0);
    assert_int_equal(push_sized(q, 128, 1000), MLO_Q_OK);
    int64_t el = now_ns() - t0;
    pthread_join(th, NULL);
    assert_int_equal(a.drained, 2);
    assert_true(el >= 25000000);  /* it did wait for the consumer */
    assert_true(el < 1500000000); /* and did not sit out the whole wait */
    g_ops->destroy(q);
}

static void test_full_wait_times_out(void **state) {
    (void)state;
    const int64_t wait = 40000000; /* 40 ms */
    mlo_queue *q = g_ops->create(4096, wait);
    assert_non_null(q);
    for (int i = 0; i < 4096 / 128; i++)
        assert_int_equal(push_sized(q, 128, i), MLO_Q_OK);
    int64_t t0 = now_ns();
    assert_int_equal(push_sized(q, 128, 99), MLO_Q_FULL);
    int64_t el = now_ns() - t0;
    assert_true(el >= wait);
    assert_true(el < wait + 1000000000);
    g_ops->destroy(q);
}

typedef struct pusher_arg {
    mlo_queue *q;
    int rc;
    int64_t elapsed;
} pusher_arg;

static void *blocked_pusher(void *p) {
    pusher_arg *a = p;
    int64_t t0 = now_ns();
    a->rc = push_sized(a->q, 128, 1);
    a->elapsed = now_ns() - t0;
    return NULL;
}

static void test_close(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(4096, 10000000000); /* producers may wait 10 s */
    assert_non_null(q);
    for (int i = 0; i < 4096 / 128; i++)
        assert_int_equal(push_sized(q, 128, i), MLO_Q_OK);
    /* A producer blocked on the full ring gives up at once on close. */
    pusher_arg a = {.q = q};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_pusher, &a), 0);
    sleep_ns(20000000);
    g_ops->close(q);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, MLO_Q_CLOSED);
    assert_true(a.elapsed < 2000000000);
    /* Later pushes are refused even when there is room... */
    got g = {0};
    assert_int_equal(g_ops->drain(q, 3, got_fn, &g), 3);
    assert_int_equal(push_sized(q, 128, 1), MLO_Q_CLOSED);
    /* ...and records pushed before close stay drainable. */
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 4096 / 128 - 3);
    for (size_t i = 0; i < g.n; i++)
        assert_int_equal(g.hdr[i].step, (int64_t)i);
    assert_int_equal(g_ops->used(q), 0);
    got_free(&g);
    g_ops->destroy(q);
}

typedef struct waiter_arg {
    mlo_queue *q;
    int64_t timeout;
    int light;
    _Atomic int started;
    _Atomic int64_t returned_at;
} waiter_arg;

static void *waiter(void *p) {
    waiter_arg *a = p;
    atomic_store(&a->started, 1);
    g_ops->wait(a->q, a->timeout, !a->light);
    atomic_store(&a->returned_at, now_ns());
    return NULL;
}

/* A light sleep is not ended by a trickle of records (no system call for the
 * producers), only by a fill of 1/MLO_Q_WAKE_DIVISOR, wake() or the timeout. */
static void test_light_sleep(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(4096, 0);
    assert_non_null(q);
    got g = {0};
    waiter_arg a = {.q = q, .timeout = 300000000, .light = 1};
    pthread_t th;
    int64_t t0 = now_ns();
    assert_int_equal(pthread_create(&th, NULL, waiter, &a), 0);
    while (!atomic_load(&a.started))
        sched_yield();
    sleep_ns(20000000);
    /* a few small records: well under a quarter of 4096 bytes */
    for (int i = 0; i < 4; i++)
        assert_int_equal(push_kv(q, MLO_REC_METRIC, "m", NULL, 0, 0, i), MLO_Q_OK);
    pthread_join(th, NULL);
    assert_true(atomic_load(&a.returned_at) - t0 >= 300000000); /* slept its timeout */
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 4);

    /* crossing the fill threshold ends it long before the timeout */
    waiter_arg b = {.q = q, .timeout = 10000000000, .light = 1};
    assert_int_equal(pthread_create(&th, NULL, waiter, &b), 0);
    while (!atomic_load(&b.started))
        sched_yield();
    sleep_ns(20000000);
    t0 = now_ns();
    for (int i = 0; i < 40; i++) /* 40 x 48 bytes > 1024 */
        assert_int_equal(push_kv(q, MLO_REC_METRIC, "m", NULL, 0, 0, i), MLO_Q_OK);
    pthread_join(th, NULL);
    assert_true(atomic_load(&b.returned_at) - t0 < 5000000000);
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 40);

    /* wake() ends it */
    waiter_arg c = {.q = q, .timeout = 10000000000, .light = 1};
    assert_int_equal(pthread_create(&th, NULL, waiter, &c), 0);
    while (!atomic_load(&c.started))
        sched_yield();
    sleep_ns(20000000);
    t0 = now_ns();
    g_ops->wake(q);
    pthread_join(th, NULL);
    assert_true(atomic_load(&c.returned_at) - t0 < 5000000000);
    got_free(&g);
    g_ops->destroy(q);
}

static int64_t run_waiter(mlo_queue *q, int64_t timeout, int what, int64_t delay) {
    waiter_arg a = {.q = q, .timeout = timeout};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waiter, &a), 0);
    while (!atomic_load(&a.started))
        sched_yield();
    sleep_ns(delay); /* let it fall asleep */
    int64_t t0 = now_ns();
    if (what == 1)
        assert_int_equal(push_kv(q, MLO_REC_METRIC, "m", NULL, 0, 0, 1), MLO_Q_OK);
    else if (what == 2)
        g_ops->wake(q);
    else if (what == 3)
        g_ops->close(q);
    pthread_join(th, NULL);
    return atomic_load(&a.returned_at) - t0;
}

static void test_wait_wakeups(void **state) {
    (void)state;
    mlo_queue *q = g_ops->create(4096, 0);
    assert_non_null(q);
    got g = {0};

    /* Timeout on an empty queue: sleeps at least the timeout. */
    int64_t t0 = now_ns();
    g_ops->wait(q, 30000000, 1);
    int64_t el = now_ns() - t0;
    assert_true(el >= 30000000);
    assert_true(el < 1000000000);
    /* Zero timeout: returns at once. */
    t0 = now_ns();
    g_ops->wait(q, 0, 1);
    assert_true(now_ns() - t0 < 100000000);

    /* A push wakes a consumer asleep with no timeout (repeat: races). */
    for (int i = 0; i < 20; i++) {
        int64_t d = run_waiter(q, -1, 1, i % 2 ? 0 : 2000000);
        assert_true(d < 1000000000);
        assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 1);
    }
    /* wake() wakes it, also when it comes just before the wait. */
    for (int i = 0; i < 20; i++)
        assert_true(run_waiter(q, -1, 2, i % 2 ? 0 : 2000000) < 1000000000);
    g_ops->wake(q);
    g_ops->wait(q, -1, 1); /* consumes the pending wake: must not block */

    /* Records already waiting: wait returns at once. */
    assert_int_equal(push_kv(q, MLO_REC_METRIC, "m", NULL, 0, 0, 1), MLO_Q_OK);
    t0 = now_ns();
    g_ops->wait(q, 10000000000, 1);
    assert_true(now_ns() - t0 < 100000000);
    assert_int_equal(g_ops->drain(q, SIZE_MAX, got_fn, &g), 1);

    /* close() wakes the consumer. */
    assert_true(run_waiter(q, -1, 3, 2000000) < 1000000000);
    got_free(&g);
    g_ops->destroy(q);
}

/* ---- Stress: many producers, one consumer ----------------------------------- */

#define STRESS_MAX_THREADS 8

typedef struct stress {
    mlo_queue *q;
    int threads;
    int64_t events;
    bool retry_on_full; /* drop policy: producers retry themselves */
    _Atomic int producers_done;
    _Atomic int64_t push_errors;
    /* consumer side */
    int64_t next_seq[STRESS_MAX_THREADS];
    int64_t received;
    int64_t bad;
    char first_bad[160];
} stress;

typedef struct producer_arg {
    stress *s;
    uint32_t id;
} producer_arg;

/* Everything in an event is a function of (thread, seq). */
static uint32_t ev_val_len(uint32_t t, int64_t i) {
    uint64_t h = (uint64_t)i * 2654435761u + t * 40503u;
    if (h % 997 == 0)
        return 3000 + (uint32_t)(h % 5000); /* now and then a big one */
    return (uint32_t)(h % 120);
}
static char ev_byte(uint32_t t, int64_t i, size_t j) {
    return (char)('0' + (t * 7 + (uint64_t)i * 13 + j) % 64);
}
static uint16_t ev_type(int64_t i) {
    return (uint16_t)(MLO_REC_METRIC + i % 4);
}

static void *producer(void *p) {
    producer_arg *a = p;
    stress *s = a->s;
    char key[64];
    char *val = malloc(9000);
    for (int64_t i = 0; i < s->events; i++) {
        int kl = snprintf(key, sizeof key, "t%u.s%lld", a->id, (long long)i);
        uint32_t vl = ev_val_len(a->id, i);
        for (uint32_t j = 0; j < vl; j++)
            val[j] = ev_byte(a->id, i, j);
        mlo_rec h = {.type = ev_type(i),
                     .key_len = (uint16_t)kl,
                     .run = a->id,
                     .val_len = vl,
                     .timestamp = i ^ 0x5555,
                     .step = i,
                     .value = (double)a->id * 1e9 + (double)i};
        int rc;
        while ((rc = g_ops->push(s->q, &h, key, val)) == MLO_Q_FULL && s->retry_on_full)
            sched_yield();
        if (rc != MLO_Q_OK)
            atomic_fetch_add(&s->push_errors, 1);
    }
    free(val);
    atomic_fetch_add_explicit(&s->producers_done, 1, memory_order_release);
    g_ops->wake(s->q); /* the consumer may be asleep with nothing left to wake it */
    return NULL;
}

static void stress_fn(void *ctx, const mlo_rec *r) {
    stress *s = ctx;
    s->received++;
    uint32_t t = r->run;
    char why[100] = "";
    if (t >= (uint32_t)s->threads) {
        snprintf(why, sizeof why, "bad thread id %u", t);
    } else {
        int64_t i = r->step;
        char key[64];
        int kl = snprintf(key, sizeof key, "t%u.s%lld", t, (long long)i);
        if (i != s->next_seq[t])
            snprintf(why, sizeof why, "thread %u: seq %lld, expected %lld", t, (long long)i,
                     (long long)s->next_seq[t]);
        else if (r->type != ev_type(i) || r->timestamp != (i ^ 0x5555) ||
                 r->value != (double)t * 1e9 + (double)i)
            snprintf(why, sizeof why, "thread %u seq %lld: header fields", t, (long long)i);
        else if (r->key_len != kl || memcmp(mlo__rec_key(r), key, (size_t)kl) != 0)
            snprintf(why, sizeof why, "thread %u seq %lld: key", t, (long long)i);
        else if (r->val_len != ev_val_len(t, i) || r->size != mlo__rec_size(r->key_len, r->val_len))
            snprintf(why, sizeof why, "thread %u seq %lld: lengths", t, (long long)i);
        else {
            const char *v = mlo__rec_val(r);
            for (uint32_t j = 0; j < r->val_len; j++)
                if (v[j] != ev_byte(t, i, j)) {
                    snprintf(why, sizeof why, "thread %u seq %lld: value byte %u", t, (long long)i,
                             j);
                    break;
                }
        }
        if (i >= s->next_seq[t])
            s->next_seq[t] = i + 1;
    }
    if (why[0]) {
        if (s->bad++ == 0)
            snprintf(s->first_bad, sizeof s->first_bad, "%s", why);
    }
}

static int64_t stress_events(void) {
    const char *e = getenv("MLO_STRESS_EVENTS");
    /* each access instrumented under a sanitizer: a quarter is plenty */
    const int64_t dflt = TU_SANITIZED ? 50000 : 200000;
    return e && atoll(e) > 0 ? atoll(e) : dflt;
}

static void run_stress(int threads, size_t cap, int64_t full_wait_ns, bool retry_on_full,
                       size_t batch) {
    stress s = {.threads = threads, .events = stress_events(), .retry_on_full = retry_on_full};
    s.q = g_ops->create(cap, full_wait_ns);
    assert_non_null(s.q);
    pthread_t th[STRESS_MAX_THREADS];
    producer_arg pa[STRESS_MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        pa[t] = (producer_arg){.s = &s, .id = (uint32_t)t};
        assert_int_equal(pthread_create(&th[t], NULL, producer, &pa[t]), 0);
    }
    /* Consume concurrently: drain, and sleep in wait() when there is nothing;
     * only a push or the producers' final wake() ends a wait (a lost wake-up
     * shows as a wait that runs to its 10 s timeout). */
    int64_t longest_wait = 0;
    for (;;) {
        bool done = atomic_load_explicit(&s.producers_done, memory_order_acquire) == threads;
        size_t n = g_ops->drain(s.q, batch, stress_fn, &s);
        if (n == 0) {
            if (done)
                break;
            int64_t t0 = now_ns();
            g_ops->wait(s.q, 10000000000, 1);
            if (now_ns() - t0 > longest_wait)
                longest_wait = now_ns() - t0;
        }
    }
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    /* Anything left after the last producer finished. */
    while (g_ops->drain(s.q, SIZE_MAX, stress_fn, &s) != 0) {
    }
    if (s.bad)
        fail_msg("%lld bad records; first: %s", (long long)s.bad, s.first_bad);
    assert_int_equal(atomic_load(&s.push_errors), 0);
    assert_int_equal(s.received, (int64_t)threads * s.events);
    for (int t = 0; t < threads; t++)
        assert_int_equal(s.next_seq[t], s.events);
    assert_int_equal(g_ops->used(s.q), 0);
    assert_true(longest_wait < 9000000000);
    g_ops->destroy(s.q);
}

/* Ping-pong: the producer pushes only once the consumer has taken the
 * previous record, so the consumer is asleep (or falling asleep) at nearly
 * every push: any lost wake-up leaves it in a 2 s wait. */
typedef struct pingpong {
    mlo_queue *q;
    int64_t rounds;
    _Atomic int64_t consumed;
} pingpong;

static void *ping_producer(void *p) {
    pingpong *pp = p;
    for (int64_t i = 0; i < pp->rounds; i++) {
        while (atomic_load_explicit(&pp->consumed, memory_order_acquire) < i)
            sched_yield();
        mlo_rec h = {.type = MLO_REC_METRIC, .key_len = 1, .step = i};
        while (g_ops->push(pp->q, &h, "m", NULL) != MLO_Q_OK)
            sched_yield();
    }
    return NULL;
}

static void ping_fn(void *ctx, const mlo_rec *r) {
    pingpong *pp = ctx;
    if (r->step == atomic_load_explicit(&pp->consumed, memory_order_relaxed))
        atomic_fetch_add_explicit(&pp->consumed, 1, memory_order_release);
}

static void test_no_lost_wakeup(void **state) {
    (void)state;
    pingpong pp = {.q = g_ops->create(256, 0), .rounds = stress_events() / 10};
    assert_non_null(pp.q);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ping_producer, &pp), 0);
    int64_t lost = 0;
    while (atomic_load(&pp.consumed) < pp.rounds) {
        if (g_ops->drain(pp.q, SIZE_MAX, ping_fn, &pp) == 0) {
            int64_t t0 = now_ns();
            g_ops->wait(pp.q, 2000000000, 1);
            if (now_ns() - t0 >= 2000000000)
                lost++;
        }
    }
    pthread_join(th, NULL);
    assert_int_equal(lost, 0);
    assert_int_equal(atomic_load(&pp.consumed), pp.rounds);
    g_ops->destroy(pp.q);
}

/* 4 producers, a small ring (many wraps and full waits), waiting policy. */
static void test_stress_4_wait(void **state) {
    (void)state;
    run_stress(4, 1 << 16, 10000000000, false, 64);
}

/* 8 producers, drop policy with producers retrying: exercises FULL under
 * contention; the consumer drains everything at each call. */
static void test_stress_8_drop_retry(void **state) {
    (void)state;
    run_stress(8, 1 << 17, 0, true, SIZE_MAX);
}

/* ---- Lock-free ring internals ------------------------------------------------ */

/* From mlo_ring.c (internal). */
size_t mlo__ring_bytes(size_t capacity);
mlo_queue *mlo__ring_init_in(void *mem, size_t bytes, int64_t full_wait_ns);

/* The ring keeps all its state as offsets inside its block: the same bytes
 * mapped twice, at two addresses, are the same queue. */
static void test_ring_in_shared_mapping(void **state) {
    (void)state;
    const size_t cap = 1 << 16;
    size_t bytes = mlo__ring_bytes(cap);
    assert_true(bytes > cap && bytes - cap <= 4096);
    assert_int_equal(mlo__ring_bytes(1000), 0);
    assert_int_equal(mlo__ring_bytes(64), 0);

    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)bytes), 0);
    void *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
    void *b = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
    assert_true(a != MAP_FAILED && b != MAP_FAILED && a != b);

    assert_null(mlo__ring_init_in((char *)a + 8, bytes - 8, 0)); /* misaligned */
    assert_null(mlo__ring_init_in(a, 256, 0));                   /* too small */
    mlo_queue *qa = mlo__ring_init_in(a, bytes, 0);
    assert_ptr_equal(qa, a);
    mlo_queue *qb = (mlo_queue *)b;

    /* The data area is the whole requested capacity. */
    static char v[1 << 15];
    memset(v, 'v', sizeof v);
    assert_int_equal(push_kv(qa, MLO_REC_TAG, "k", v, cap / 2 - sizeof(mlo_rec) - 1, 1, 0),
                     MLO_Q_OK);
    assert_int_equal(push_kv(qa, MLO_REC_TAG, "k", v, cap / 2 - sizeof(mlo_rec), 2, 0),
                     MLO_Q_TOO_BIG);
    assert_int_equal(push_kv(qa, MLO_REC_METRIC, "loss", NULL, 0, 3, 0.5), MLO_Q_OK);
    assert_int_equal(mlo__ring_ops.used(qb), cap / 2 + mlo__rec_size(4, 0));

    got g = {0};
    assert_int_equal(mlo__ring_ops.drain(qb, SIZE_MAX, got_fn, &g), 2);
    assert_int_equal(g.hdr[0].step, 1);
    assert_int_equal(g.hdr[0].val_len, cap / 2 - sizeof(mlo_rec) - 1);
    assert_string_equal(g.key[1], "loss");
    assert_int_equal(mlo__ring_ops.used(qa), 0);
    /* Wrap through the second mapping, drain through the first. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(push_kv(qb, MLO_REC_PARAM, "p", v, 3000 + (size_t)i, i, 0), MLO_Q_OK);
        assert_int_equal(mlo__ring_ops.drain(qa, SIZE_MAX, got_fn, &g), 1);
        assert_int_equal(g.hdr[g.n - 1].val_len, 3000 + i);
    }
    assert_int_equal(g.bad_type, 0);
    got_free(&g);

    /* destroy leaves caller memory alone (ASan would catch a free). */
    mlo__ring_ops.destroy(qa);
    munmap(a, bytes);
    munmap(b, bytes);
    fclose(f);
}

/* From mlo_ring.c (internal; declared in queue/mlo_ring.h). */
uint64_t mlo__ring_head_sc(mlo_queue *q);
size_t mlo__ring_peek_sc(mlo_queue *q, uint64_t *pos, size_t max_records, mlo_rec_fn fn, void *ctx);
void mlo__ring_release_sc(mlo_queue *q, uint64_t pos);
long mlo__ring_recover(void *mem, size_t bytes, mlo_rec_fn fn, void *ctx, uint64_t *skipped);

/* Crash recovery of a ring block: a producer killed between claim and publish
 * costs only its own record; peeked records released as committed are not
 * handed out again; a consumer meets a claimed record as "not yet". */
static void test_ring_recover(void **state) {
    (void)state;
    g_ops = &mlo__ring_ops;
    const size_t cap = 1 << 12;
    size_t bytes = mlo__ring_bytes(cap);
    void *mem = aligned_alloc(128, bytes);
    mlo_queue *q = mlo__ring_init_in(mem, bytes, 0);
    assert_non_null(q);
    /* find where records land: each metric "m" is 48 bytes */
    for (int i = 0; i < 6; i++)
        assert_int_equal(push_kv(q, MLO_REC_METRIC, "m", NULL, 0, i, i), MLO_Q_OK);
    const size_t rs = mlo__rec_size(1, 0);
    unsigned char *data = (unsigned char *)mem + (bytes - cap);
    uint32_t *w1 = (uint32_t *)(void *)(data + 1 * rs);
    /* record 1: claimed, never published (producer died while copying) */
    *w1 |= 1u;
    /* record 3: claimed by the CAS on tail only: nothing of it written */
    memset(data + 3 * rs, 0, rs);

    /* a live consumer stops at the claimed record */
    got g = {0};
    assert_int_equal(mlo__ring_ops.drain(q, SIZE_MAX, got_fn, &g), 1);
    assert_int_equal(g.hdr[0].step, 0);
    got_free(&g);

    uint64_t skipped = 0;
    assert_int_equal(mlo__ring_recover(mem, bytes, got_fn, &g, &skipped), 3);
    assert_int_equal(skipped, 1);
    assert_int_equal(g.hdr[0].step, 2);
    assert_int_equal(g.hdr[1].step, 4);
    assert_int_equal(g.hdr[2].step, 5);
    assert_string_equal(g.key[2], "m");
    got_free(&g);

    /* peek + release: released records are committed, not recovered again */
    void *mem2 = aligned_alloc(128, bytes);
    q = mlo__ring_init_in(mem2, bytes, 0);
    for (int i = 0; i < 200; i++) { /* wraps the 4 KiB ring several times */
        assert_int_equal(push_kv(q, MLO_REC_METRIC, "m", NULL, 0, i, i), MLO_Q_OK);
        if (i % 10 == 9) {
            uint64_t pos = mlo__ring_head_sc(q);
            assert_int_equal(mlo__ring_peek_sc(q, &pos, SIZE_MAX, got_fn, &g), 10);
            if (i < 190)
                mlo__ring_release_sc(q, pos);
        }
    }
    assert_int_equal(g.n, 200);
    got_free(&g);
    /* the last 10 were peeked, not released: recovery hands out exactly them */
    assert_int_equal(mlo__ring_recover(mem2, bytes, got_fn, &g, NULL), 10);
    assert_int_equal(g.hdr[0].step, 190);
    assert_int_equal(g.hdr[9].step, 199);
    got_free(&g);
    /* garbage is refused */
    memset(mem2, 0x5a, 64);
    assert_int_equal(mlo__ring_recover(mem2, bytes, got_fn, &g, NULL), -1);
    free(mem);
    free(mem2);
}

/* ---- Main ------------------------------------------------------------------- */

#define QUEUE_TESTS                                                                                \
    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_wrap_pad),                            \
        cmocka_unit_test(test_too_big), cmocka_unit_test(test_full_drop),                          \
        cmocka_unit_test(test_full_wait_gets_room), cmocka_unit_test(test_full_wait_times_out),    \
        cmocka_unit_test(test_close), cmocka_unit_test(test_wait_wakeups),                         \
        cmocka_unit_test(test_light_sleep), cmocka_unit_test(test_stress_4_wait),                  \
        cmocka_unit_test(test_stress_8_drop_retry), cmocka_unit_test(test_no_lost_wakeup)

int main(void) {
    const struct CMUnitTest tests[] = {QUEUE_TESTS};
    int failed = 0;
    g_ops = &mlo__queue_mutex_ops;
    failed += cmocka_run_group_tests_name("queue_mutex", tests, NULL, NULL);
    g_ops = &mlo__ring_ops;
    failed += cmocka_run_group_tests_name("queue_ring", tests, NULL, NULL);
    const struct CMUnitTest ring_tests[] = {cmocka_unit_test(test_ring_in_shared_mapping),
                                            cmocka_unit_test(test_ring_recover)};
    failed += cmocka_run_group_tests_name("ring_internal", ring_tests, NULL, NULL);
    return failed ? 1 : 0;
}
