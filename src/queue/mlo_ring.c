/*
 * mlo_ring.c - the lock-free event queue: a bounded multi-producer,
 * single-consumer ring of variable-length records (after Aeron's
 * ManyToOneRingBuffer).
 *
 * Owns: one memory block, laid out as
 *
 *     offset 0           struct ring: configuration, then tail, head cache,
 *                        head and the sleep/wake words, each on its own
 *                        RING_LINE-byte line (see the struct)
 *     offset data_off    capacity bytes of records (capacity a power of two)
 *
 * Everything in the block is fixed-width integers and offsets from its start,
 * never pointers, so the same bytes can later live in a MAP_SHARED file that
 * outlives the process (crash recovery): mlo__ring_init_in() lays a ring over
 * memory the caller provides; the create op only allocates and calls it.
 *
 * Record framing in the data area: records are laid end to end at offsets
 * that are multiples of MLO_REC_ALIGN; each starts with the mlo_rec header
 * whose first 32-bit word, `size`, is the publication word:
 *     size == 0            nothing claimed or published here yet
 *     size == n | CLAIMED  claimed by a producer that is still writing the
 *                          record's n bytes (the consumer stops)
 *     size == n            a complete record of n bytes; `type` says what
 *                          it is
 * (n is a multiple of MLO_REC_ALIGN, so the low bit is free for CLAIMED.)
 * A record never wraps.  When the bytes left before the end of the data area
 * cannot hold a record, the producer claims them too and fills them with a
 * PAD record (type RING_REC_PAD, only size and type meaningful, possibly just
 * 8 bytes), and puts its record at offset 0.  The consumer skips PAD records.
 *
 * Counters: `tail` (producers) and `head` (consumer) are free-running 64-bit
 * byte counters, masked with capacity - 1 on use.  Invariants:
 *  - head <= tail <= head + capacity; both multiples of MLO_REC_ALIGN.
 *  - Every byte outside [head, tail) is zero.  The consumer zeroes what it
 *    consumed before it moves head past it, so the publication word of any
 *    future record reads 0 until its producer publishes it.
 *  - A record is at most capacity / 2 bytes: with its pad it always fits an
 *    empty ring.
 *
 * Protocol:
 *  - push (any thread, `_mp`): claim [tail, tail + pad + size) with a CAS on
 *    tail after checking room against the cached head (refreshed from head
 *    only when the cache says full); store size | CLAIMED in the size word;
 *    copy the header (minus size), key and value in; release-store the plain
 *    size.  Then, Dekker style, a seq_cst
 *    fence and a look at `sleeping`: only when the consumer sleeps does the
 *    producer bump `futex_word` and make the wake system call.
 *  - drain (consumer, `_sc`): acquire-load the size word at head; 0 = stop.
 *    Process, zero the consumed bytes, release-store head.
 *  - wait (consumer): set `sleeping`, seq_cst fence, re-check the word at
 *    head, then futex-wait on `futex_word`.
 *  - peek/release (consumer, for a ring in a file that must not lose what it
 *    held): peek reads records like drain without giving their space back;
 *    release(pos) first stores `committed` = pos (the records before pos are
 *    safe elsewhere), then zeroes and moves head like drain.
 *
 * Crash recovery (mlo__ring_recover, on the block of a dead process): walk
 * [max(head, committed), tail).  A word with CLAIMED is a record its producer
 * never finished: skipped by its size.  A zero word inside [head, tail) is a
 * claim whose producer died between the CAS on tail and the CLAIMED store:
 * nothing of it was written (the CLAIMED store comes first in program order,
 * and a killed thread's executed stores all reach the shared pages), so it is
 * zero up to the next record and the walk steps over it one MLO_REC_ALIGN at a
 * time.  Published records are handed out in order; anything malformed ends
 * the walk.  A producer killed between claim and publish therefore costs only
 * its own record.
 *
 * Full ring: MLO_Q_FULL at once when full_wait_ns == 0; otherwise the producer
 * polls for room (sched_yield, then 50 µs sleeps) until full_wait_ns passes
 * or the ring is closed.  Only this path makes system calls on the producer
 * side, apart from waking a sleeping consumer.
 */
#define _GNU_SOURCE /* syscall() */

#include "mlo_ring.h"

#include "mlo_clock.h"

#include <assert.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Producer/consumer fields sit this many bytes apart: two 64-byte lines, as
 * the adjacent-line prefetcher of x86 cores pulls lines in pairs. */
#define RING_LINE 128u
#define RING_MAGIC 0x524f4c4du /* "MLOR" little-endian */
#define RING_VERSION 2u
/* Low bit of the size word: claimed, not yet published. */
#define RING_CLAIMED 1u
/* Private record type of the filler at the end of the data area. */
#define RING_REC_PAD 0xFFFFu
/* Full-wait backoff: this many sched_yield() rounds, then sleeps. */
#define RING_FULL_YIELDS 16
#define RING_FULL_SLEEP_NS 50000

/* Layout of the block's first bytes.  Only fixed-width fields, no pointers. */
typedef struct ring {
    /* Written by init, then read only (except `closed`, set once). */
    alignas(RING_LINE) uint32_t magic;
    uint32_t version;
    uint64_t capacity; /* data bytes, a power of two */
    uint64_t mask;     /* capacity - 1 */
    uint64_t data_off; /* offset of the data area from the block's start */
    int64_t full_wait_ns;
    uint32_t heap_owned; /* 1: create allocated the block, destroy frees it */
    _Atomic uint32_t closed;

    /* Producers: claimed bytes.  CAS by producers only. */
    alignas(RING_LINE) _Atomic uint64_t tail;
    /* Producers: a recent value of head, so that a push need not read the
     * consumer's line.  May lag head (and even move back): it only ever
     * understates the room. */
    alignas(RING_LINE) _Atomic uint64_t head_cache;
    /* Consumer: bytes consumed and zeroed.  Stored by the consumer only. */
    alignas(RING_LINE) _Atomic uint64_t head;
    /* Consumer: records before this are safe elsewhere (peek/release); only
     * crash recovery reads it.  >= head once set, or 0. */
    _Atomic uint64_t committed;

    /* Consumer sleep and wake-up. */
    alignas(RING_LINE) _Atomic uint32_t sleeping; /* SLEEP_DEEP / SLEEP_LIGHT: the consumer may
                                                     be in futex wait; 0: awake */
    _Atomic uint32_t futex_word;                  /* bumped on each wake; futex address */
    _Atomic uint32_t wake_pending;                /* wake()/close() not yet seen by wait */
} ring;

_Static_assert(sizeof(ring) % RING_LINE == 0, "ring header fills whole lines");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "the ring needs lock-free 32- and 64-bit atomics (also across processes)");
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "atomic size word overlays mlo_rec");
_Static_assert(offsetof(mlo_rec, size) == 0 && offsetof(mlo_rec, type) == 4,
               "publication word first, then type");

enum { SLEEP_DEEP = 1, SLEEP_LIGHT = 2 };

static ring *ring_of(mlo_queue *q) {
    return (ring *)q;
}

static unsigned char *ring_data(ring *r) {
    return (unsigned char *)r + r->data_off;
}

/* The publication word of the record at data offset idx. */
static _Atomic uint32_t *size_word(ring *r, uint64_t idx) {
    return (_Atomic uint32_t *)(void *)(ring_data(r) + idx);
}

static uint16_t rec_type(ring *r, uint64_t idx) {
    uint16_t t;
    memcpy(&t, ring_data(r) + idx + offsetof(mlo_rec, type), sizeof t);
    return t;
}

static int64_t mono_ns(void) {
    return mlo__clock_mono(NULL);
}

/* now + ns on the monotonic clock; ns < 0 or too far: never. */
static int64_t deadline_after(int64_t ns) {
    int64_t now = mono_ns();
    return ns < 0 || ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

/* ---- Futex (the consumer's bed) --------------------------------------------
 * Not FUTEX_PRIVATE: the word may live in memory shared between processes.
 * Elsewhere than Linux the consumer naps in short steps instead. */

static void futex_wait(_Atomic uint32_t *w, uint32_t seen, int64_t timeout_ns) {
#if defined(__linux__)
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    /* Sleeps only while *w == seen (checked atomically by the kernel). */
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seen, tp, NULL, 0);
#else
    (void)w;
    (void)seen;
    int64_t ns = timeout_ns >= 0 && timeout_ns < 1000000 ? timeout_ns : 1000000;
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
#endif
}

static void futex_wake(_Atomic uint32_t *w) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
#else
    (void)w;
#endif
}

/* Any thread: make a sleeping (or about to sleep) consumer return from its
 * futex wait.  The release publishes what the caller stored before (a
 * record, wake_pending) to the consumer's acquire load of futex_word. */
static void kick_consumer(ring *r) {
    atomic_fetch_add_explicit(&r->futex_word, 1, memory_order_release);
    futex_wake(&r->futex_word);
}

/* ---- Create, init, destroy ------------------------------------------------ */

/* Bytes of the block a ring of `capacity` data bytes needs; 0 if capacity is
 * not a power of two in [RING_LINE, 2^31]. */
size_t mlo__ring_bytes(size_t capacity) {
    if (capacity < RING_LINE || capacity > ((size_t)1 << 31) || (capacity & (capacity - 1)))
        return 0;
    return sizeof(ring) + capacity;
}

/* Lays an empty ring over `bytes` bytes at `mem` (aligned to RING_LINE) and
 * returns it as a queue; the data area is the largest power of two that
 * fits.  Zeroes the whole block.  NULL if mem is misaligned or too small.
 * The caller keeps ownership of mem: do not pass the queue to destroy
 * expecting it freed (destroy frees only what create allocated). */
mlo_queue *mlo__ring_init_in(void *mem, size_t bytes, int64_t full_wait_ns) {
    if (!mem || ((uintptr_t)mem % RING_LINE) != 0 || bytes < sizeof(ring) + RING_LINE)
        return NULL;
    size_t cap = RING_LINE;
    while (cap * 2 <= bytes - sizeof(ring) && cap * 2 <= ((size_t)1 << 31))
        cap *= 2;
    /* Every byte outside [head, tail) is zero: the whole data area, now. */
    memset(mem, 0, sizeof(ring) + cap);
    ring *r = mem;
    r->magic = RING_MAGIC;
    r->version = RING_VERSION;
    r->capacity = cap;
    r->mask = cap - 1;
    r->data_off = sizeof(ring);
    r->full_wait_ns = full_wait_ns;
    r->heap_owned = 0;
    atomic_init(&r->closed, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->head_cache, 0);
    atomic_init(&r->head, 0);
    atomic_init(&r->committed, 0);
    atomic_init(&r->sleeping, 0);
    atomic_init(&r->futex_word, 0);
    atomic_init(&r->wake_pending, 0);
    return (mlo_queue *)r;
}

static mlo_queue *ring_create(size_t capacity, int64_t full_wait_ns) {
    size_t bytes = mlo__ring_bytes(capacity);
    if (!bytes)
        return NULL;
    /* One allocation, line aligned; bytes is a multiple of RING_LINE. */
    void *mem = aligned_alloc(RING_LINE, bytes);
    if (!mem)
        return NULL;
    mlo_queue *q = mlo__ring_init_in(mem, bytes, full_wait_ns);
    assert(q && ring_of(q)->capacity == capacity);
    ring_of(q)->heap_owned = 1;
    return q;
}

static void ring_destroy(mlo_queue *q) {
    if (q && ring_of(q)->heap_owned)
        free(q);
}

/* ---- Producers ------------------------------------------------------------ */

/* Any thread: one attempt to claim room for a record of `size` bytes.  On
 * MLO_Q_OK, *at is where the claim starts and *pad how many bytes of PAD come
 * first.  The CAS loop repeats only when another producer claimed meanwhile
 * (each failure is someone else's progress). */
static int claim_mp(ring *r, uint64_t size, uint64_t *at, uint64_t *pad) {
    const uint64_t cap = r->capacity;
    /* acquire: pairs with the release store of head_cache by another producer,
     * which acquired it from the consumer's head: the bytes below it were
     * zeroed by the consumer before we write them. */
    uint64_t head = atomic_load_explicit(&r->head_cache, memory_order_acquire);
    /* relaxed: tail only divides space among producers; the CAS below
     * validates the value. */
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        uint64_t to_end = cap - (tail & r->mask);
        uint64_t p = size > to_end ? to_end : 0;
        uint64_t need = p + size;
        /* Signed: after a CAS failure our tail may be older than a freshly
         * read head; the difference is then negative (room), and the CAS
         * below fails and brings a current tail. */
        if ((int64_t)(tail + need - head) > (int64_t)cap) {
            /* The cache says full: look at the real head (the consumer's line).
             * acquire: pairs with the consumer's release store of head, which
             * publishes the zeroing of the bytes it consumed. */
            head = atomic_load_explicit(&r->head, memory_order_acquire);
            if ((int64_t)(tail + need - head) > (int64_t)cap)
                return MLO_Q_FULL;
            /* release: passes on what the acquire above got (zeroed bytes) to
             * producers that trust the cache. */
            atomic_store_explicit(&r->head_cache, head, memory_order_release);
        }
        /* relaxed both ways: the claim publishes nothing (the size word does);
         * the atomicity of the CAS alone makes claims disjoint.  On failure
         * tail is reloaded and the room checked again. */
        if (atomic_compare_exchange_weak_explicit(&r->tail, &tail, tail + need,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            *at = tail;
            *pad = p;
            return MLO_Q_OK;
        }
    }
}

/* Any thread, full ring, full_wait_ns != 0: poll for room with a short
 * backoff until the wait ends or the ring is closed. */
static int claim_wait_mp(ring *r, uint64_t size, uint64_t *at, uint64_t *pad) {
    int64_t deadline = deadline_after(r->full_wait_ns);
    for (int round = 0;; round++) {
        /* relaxed: `closed` is a flag that publishes no data. */
        if (atomic_load_explicit(&r->closed, memory_order_relaxed))
            return MLO_Q_CLOSED;
        int64_t left = deadline - mono_ns();
        if (left <= 0)
            return MLO_Q_FULL; /* waited the whole full_wait_ns */
        if (round < RING_FULL_YIELDS) {
            sched_yield();
        } else {
            struct timespec ts = {0, (long)(left < RING_FULL_SLEEP_NS ? left : RING_FULL_SLEEP_NS)};
            nanosleep(&ts, NULL);
        }
        if (claim_mp(r, size, at, pad) == MLO_Q_OK)
            return MLO_Q_OK;
    }
}

static int ring_push_mp(mlo_queue *q, const mlo_rec *hdr, const char *key, const char *val) {
    ring *r = ring_of(q);
    size_t raw = sizeof(mlo_rec) + (size_t)hdr->key_len + (size_t)hdr->val_len;
    if (raw > r->capacity / 2)
        return MLO_Q_TOO_BIG;
    uint32_t size = mlo__rec_size(hdr->key_len, hdr->val_len);
    /* relaxed: `closed` is a flag that publishes no data; a push racing with
     * close may go either way. */
    if (atomic_load_explicit(&r->closed, memory_order_relaxed))
        return MLO_Q_CLOSED;

    uint64_t at, pad;
    int rc = claim_mp(r, size, &at, &pad);
    if (rc != MLO_Q_OK) {
        if (r->full_wait_ns == 0)
            return rc;
        rc = claim_wait_mp(r, size, &at, &pad);
        if (rc != MLO_Q_OK)
            return rc;
    }

    uint64_t idx = at & r->mask;
    if (pad) {
        /* The pad: type, then publish its size.  release: the type field. */
        uint16_t t = RING_REC_PAD;
        memcpy(ring_data(r) + idx + offsetof(mlo_rec, type), &t, sizeof t);
        atomic_store_explicit(size_word(r, idx), (uint32_t)pad, memory_order_release);
        idx = 0;
    }
    /* Mark the claim, so that crash recovery can step over this record if
     * we die before publishing it.  relaxed: the consumer reading it (CLAIMED:
     * stop) needs nothing else; the signal fence keeps the compiler from
     * moving the record's stores above it (program order is what a killed
     * thread leaves behind in the shared pages). */
    atomic_store_explicit(size_word(r, idx), size | RING_CLAIMED, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    /* Fill everything but the size word, which the consumer may be reading.
     * Bytes after the value up to `size` are already zero. */
    unsigned char *p = ring_data(r) + idx;
    memcpy(p + offsetof(mlo_rec, type), (const unsigned char *)hdr + offsetof(mlo_rec, type),
           sizeof(mlo_rec) - offsetof(mlo_rec, type));
    if (hdr->key_len)
        memcpy(p + sizeof(mlo_rec), key, hdr->key_len);
    if (hdr->val_len)
        memcpy(p + sizeof(mlo_rec) + hdr->key_len, val, hdr->val_len);
    /* release: publishes the header, key and value written above to the
     * consumer's acquire load of this word. */
    atomic_store_explicit(size_word(r, idx), size, memory_order_release);

    /* Dekker with ring_wait_sc: we store the size word then load `sleeping`;
     * the consumer stores `sleeping` then loads the size word at head.  A
     * store followed by a load of another location may be reordered on every
     * CPU (x86's store buffer included), and then both sides would miss each
     * other: the consumer sleeps on a record nobody wakes it for.  With a
     * seq_cst fence on both sides at least one sees the other's store. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed load: ordered by the fence; the exchange lets only one producer
     * pay for the wake-up system call. */
    uint32_t s = atomic_load_explicit(&r->sleeping, memory_order_relaxed);
    /* A light sleeper is woken only once a share of the ring is in use: a
     * steady trickle of records then costs no system call (the consumer
     * collects it on its timer).
     * relaxed read of the consumer's head: an estimate of the fill, read only
     * while the consumer sleeps (so its line is not being written and stays
     * shared in our cache).  head_cache would be cheaper but lags far behind
     * in steady use and made almost every push look like a quarter fill: a
     * futex wake per call (measured by tests/bench_client.c). */
    if (s == SLEEP_LIGHT && at + pad + size - atomic_load_explicit(&r->head, memory_order_relaxed) <
                                r->capacity / MLO_Q_WAKE_DIVISOR)
        s = 0;
    if (s && atomic_exchange_explicit(&r->sleeping, 0, memory_order_relaxed))
        kick_consumer(r);
    return MLO_Q_OK;
}

/* ---- Consumer ------------------------------------------------------------- */

/* Consumer only: zero [from, to) and hand it back to producers. */
static void release_sc(ring *r, uint64_t from, uint64_t to) {
    uint64_t i = from & r->mask;
    uint64_t n = to - from;
    uint64_t first = n < r->capacity - i ? n : r->capacity - i;
    memset(ring_data(r) + i, 0, first);
    if (n > first)
        memset(ring_data(r), 0, n - first);
    /* release: publishes the zeroing above to producers' acquire of head: they
     * may now write these bytes. */
    atomic_store_explicit(&r->head, to, memory_order_release);
}

static size_t ring_drain_sc(mlo_queue *q, size_t max_records, mlo_rec_fn fn, void *ctx) {
    ring *r = ring_of(q);
    /* relaxed: the consumer is head's only writer. */
    const uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t start = head, pos = head;
    size_t n = 0;
    for (;;) {
        uint64_t idx = pos & r->mask;
        /* acquire: pairs with the producer's release store of the size word:
         * the record's bytes are visible. */
        uint32_t size = atomic_load_explicit(size_word(r, idx), memory_order_acquire);
        if (size == 0 || (size & RING_CLAIMED))
            break; /* not published yet */
        assert(size % MLO_REC_ALIGN == 0 && size <= r->capacity - idx);
        if (rec_type(r, idx) != RING_REC_PAD) {
            if (n == max_records)
                break;
            fn(ctx, (const mlo_rec *)(const void *)(ring_data(r) + idx));
            n++;
        }
        pos += size;
        /* On a long drain give room back every quarter ring, so producers
         * need not wait for the end of it. */
        if (pos - start >= r->capacity / 4) {
            release_sc(r, start, pos);
            start = pos;
        }
    }
    if (pos != start)
        release_sc(r, start, pos);
    return n;
}

/* Consumer only: is a record (not just a pad) published at head? */
static bool ready_sc(ring *r) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours */
    uint64_t idx = head & r->mask;
    /* acquire: pairs with the producer's publication (for the type read). */
    uint32_t size = atomic_load_explicit(size_word(r, idx), memory_order_acquire);
    if (size == 0 || (size & RING_CLAIMED))
        return false;
    if (rec_type(r, idx) != RING_REC_PAD)
        return true;
    /* A pad is followed by its producer's record at offset 0. */
    uint32_t next =
        atomic_load_explicit(size_word(r, (head + size) & r->mask), memory_order_acquire);
    return next != 0 && !(next & RING_CLAIMED);
}

/* Consumer only: consume a pending wake()/close(). */
static bool take_wake_sc(ring *r) {
    /* The relaxed load keeps the common case (no wake) a plain read.
     * acquire on the exchange: pairs with the release store in ring_wake
     * (what the waker stored before calling wake is visible). */
    return atomic_load_explicit(&r->wake_pending, memory_order_relaxed) &&
           atomic_exchange_explicit(&r->wake_pending, 0, memory_order_acquire);
}

/* Consumer only: the condition that ends a wait. */
static bool wait_over_sc(ring *r, int deep) {
    if (take_wake_sc(r))
        return true;
    if (deep)
        return ready_sc(r);
    /* relaxed: an estimate; the records themselves are read with acquire by drain */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    return tail - head >= r->capacity / MLO_Q_WAKE_DIVISOR;
}

static void ring_wait_sc(mlo_queue *q, int64_t timeout_ns, int deep) {
    ring *r = ring_of(q);
    if (wait_over_sc(r, deep) || timeout_ns == 0)
        return;
    int64_t deadline = deadline_after(timeout_ns);
    for (;;) {
        /* acquire: pairs with kick_consumer's release; read before the
         * re-check so that a kick after it makes the futex wait return. */
        uint32_t seen = atomic_load_explicit(&r->futex_word, memory_order_acquire);
        /* Dekker with ring_push_mp (see there): announce the sleep, fence,
         * then look for data once more. */
        atomic_store_explicit(&r->sleeping, deep ? SLEEP_DEEP : SLEEP_LIGHT, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        if (wait_over_sc(r, deep))
            break;
        int64_t left = deadline == INT64_MAX ? -1 : deadline - mono_ns();
        if (deadline != INT64_MAX && left <= 0)
            break;
        futex_wait(&r->futex_word, seen, left);
        atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed); /* flag only */
        if (wait_over_sc(r, deep))
            return;
        if (deadline != INT64_MAX && mono_ns() >= deadline)
            return;
    }
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed); /* flag only */
}

/* ---- Consumer: peek and release (a ring that must not lose what it holds) --- */

uint64_t mlo__ring_head_sc(mlo_queue *q) {
    /* relaxed: the consumer is head's only writer. */
    return atomic_load_explicit(&ring_of(q)->head, memory_order_relaxed);
}

size_t mlo__ring_peek_sc(mlo_queue *q, uint64_t *pos, size_t max_records, mlo_rec_fn fn,
                         void *ctx) {
    ring *r = ring_of(q);
    uint64_t p = *pos;
    size_t n = 0;
    /* Never past the producers' claim position.  Space is zeroed when it is
     * released, so a walk meets a 0 size word at the first claimed-but-
     * unmarked record -- except when the ring is exactly full (tail - head ==
     * capacity): then the slot at tail is the slot at head, which still holds
     * the first record, and an unbounded walk would go round again.
     * relaxed: only a bound; each record is still read through its size
     * word's acquire load. */
    const uint64_t end = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (p < end) {
        uint64_t idx = p & r->mask;
        /* acquire: pairs with the producer's release store of the size word. */
        uint32_t size = atomic_load_explicit(size_word(r, idx), memory_order_acquire);
        if (size == 0 || (size & RING_CLAIMED))
            break;
        assert(size % MLO_REC_ALIGN == 0 && size <= r->capacity - idx);
        if (rec_type(r, idx) != RING_REC_PAD) {
            if (n == max_records)
                break;
            fn(ctx, (const mlo_rec *)(const void *)(ring_data(r) + idx));
            n++;
        }
        p += size;
    }
    *pos = p;
    return n;
}

void mlo__ring_release_sc(mlo_queue *q, uint64_t pos) {
    ring *r = ring_of(q);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* ours */
    if (pos == head)
        return;
    /* relaxed: read only by crash recovery of the file, after this process
     * is dead (all its stores then visible). */
    atomic_store_explicit(&r->committed, pos, memory_order_relaxed);
    release_sc(r, head, pos);
}

long mlo__ring_recover(void *mem, size_t bytes, mlo_rec_fn fn, void *ctx, uint64_t *skipped) {
    ring *r = mem;
    if (skipped)
        *skipped = 0;
    if (!mem || bytes < sizeof(ring) || r->magic != RING_MAGIC || r->version != RING_VERSION ||
        r->data_off != sizeof(ring) || r->capacity < RING_LINE ||
        (r->capacity & (r->capacity - 1)) || r->mask != r->capacity - 1 ||
        r->capacity > bytes - sizeof(ring))
        return -1;
    /* relaxed: the owner is dead; its stores are all in the pages. */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t committed = atomic_load_explicit(&r->committed, memory_order_relaxed);
    if (tail < head || tail - head > r->capacity || head % MLO_REC_ALIGN || tail % MLO_REC_ALIGN)
        return -1;
    uint64_t pos = committed > head && committed <= tail ? committed : head;
    long n = 0;
    while (pos < tail) {
        uint64_t idx = pos & r->mask;
        uint32_t w = atomic_load_explicit(size_word(r, idx), memory_order_relaxed);
        if (w == 0) {
            pos += MLO_REC_ALIGN; /* an unwritten claim: zero up to the next record */
            continue;
        }
        uint32_t size = w & ~RING_CLAIMED;
        if (size % MLO_REC_ALIGN || size < MLO_REC_ALIGN || size > r->capacity - idx ||
            size > tail - pos)
            break; /* malformed: stop here */
        uint16_t type = rec_type(r, idx);
        if (!(w & RING_CLAIMED) && type != RING_REC_PAD) {
            const mlo_rec *rec = (const mlo_rec *)(const void *)(ring_data(r) + idx);
            if (size < sizeof(mlo_rec) ||
                sizeof(mlo_rec) + (uint64_t)rec->key_len + rec->val_len > size)
                break;
            fn(ctx, rec);
            n++;
        } else if ((w & RING_CLAIMED) && skipped) {
            (*skipped)++;
        }
        pos += size;
    }
    return n;
}

/* ---- Any thread ----------------------------------------------------------- */

static void ring_wake(mlo_queue *q) {
    ring *r = ring_of(q);
    /* release: publishes what the caller did before wake() to the consumer's
     * take_wake_sc.  Sticky until a wait sees it, so a wake just before the
     * consumer's wait is not lost.  Always kicks: wake is rare. */
    atomic_store_explicit(&r->wake_pending, 1, memory_order_release);
    kick_consumer(r);
}

static void ring_close(mlo_queue *q) {
    ring *r = ring_of(q);
    /* relaxed: a flag that publishes no data.  Producers polling a full ring
     * see it within one backoff step; the consumer gets a wake. */
    atomic_store_explicit(&r->closed, 1, memory_order_relaxed);
    ring_wake(q);
}

static size_t ring_used(mlo_queue *q) {
    ring *r = ring_of(q);
    /* relaxed: an estimate.  head first: tail read after it is not smaller. */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    return tail > head ? (size_t)(tail - head) : 0;
}

const mlo_queue_ops mlo__ring_ops = {
    .name = "ring",
    .create = ring_create,
    .destroy = ring_destroy,
    .push = ring_push_mp,
    .drain = ring_drain_sc,
    .wait = ring_wait_sc,
    .wake = ring_wake,
    .close = ring_close,
    .used = ring_used,
};
