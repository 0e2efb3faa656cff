/*
 * mlo_queue_mutex.c - the event queue as a byte ring guarded by one mutex.
 *
 * The baseline the lock-free ring (mlo_ring.c) is measured against, and a
 * fallback that is easy to reason about.
 *
 * Owns: one heap block of `cap` bytes (a power of two) holding records laid
 * end to end, and two free-running byte counters, head (consumer) and tail
 * (producers), masked with cap - 1 on use.  Bytes [head, tail) hold records.
 *
 * Invariants (all under `mu`):
 *  - 0 <= tail - head <= cap; head and tail are multiples of MLO_REC_ALIGN.
 *  - A record never wraps.  When the bytes from tail to the end of the buffer
 *    cannot hold the next record, push writes a PAD record filling them (only
 *    its size and type fields are meaningful, it may be as small as 8 bytes)
 *    and puts the record at offset 0, as Aeron's many-to-one ring does.  drain
 *    skips PAD records and never shows them to its callback.
 *  - A record is at most cap / 2 bytes, so once the ring is empty any record
 *    fits, pad included.
 *
 * Threads: push, wake, close, used from any thread; drain and wait from the
 * one consumer thread.  drain calls its callback without holding `mu`: the
 * records [head, tail snapshot) cannot be overwritten until drain itself
 * advances head, so producers keep pushing while the consumer works.
 */
#define _POSIX_C_SOURCE 200809L

#include "mlo_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Private record type for the filler at the end of the buffer. */
#define MQ_REC_PAD 0xFFFFu
/* The smallest piece of a PAD record that is written: size + type. */
#define MQ_PAD_MIN 8u

_Static_assert(MQ_PAD_MIN % MLO_REC_ALIGN == 0, "pad granularity");

typedef struct mq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* the consumer sleeps here in wait() */
    pthread_cond_t not_full;  /* producers sleep here when the ring is full */
    unsigned char *buf;
    size_t cap;  /* bytes, a power of two */
    size_t mask; /* cap - 1 */
    int64_t full_wait_ns;
    /* Everything below is guarded by mu. */
    uint64_t head;              /* free-running; advanced by drain only */
    uint64_t tail;              /* free-running; advanced by push */
    unsigned producers_waiting; /* producers blocked on not_full */
    bool consumer_waiting;      /* the consumer is blocked on not_empty */
    bool consumer_deep;         /* ... and wants any record (else only a fill) */
    bool wake_pending;          /* wake()/close() not yet seen by wait() */
    bool closed;
} mq;

static mq *mq_of(mlo_queue *q) {
    return (mq *)q;
}

/* ns > 0.  Far deadlines stay representable: time_t is 64-bit here. */
static void deadline_after(struct timespec *ts, int64_t ns) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t sec = ns / 1000000000;
    int64_t nsec = ts->tv_nsec + ns % 1000000000;
    if (nsec >= 1000000000) {
        nsec -= 1000000000;
        sec++;
    }
    ts->tv_sec += (time_t)sec;
    ts->tv_nsec = (long)nsec;
}

static mlo_queue *mq_create(size_t capacity, int64_t full_wait_ns) {
    /* A power of two, large enough for a header-only record, small enough
     * that sizes fit the 32-bit size field. */
    if (capacity < 2 * sizeof(mlo_rec) || capacity > ((size_t)1 << 31) ||
        (capacity & (capacity - 1)) != 0)
        return NULL;
    mq *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->buf = malloc(capacity);
    if (!m->buf)
        goto fail_buf;
    m->cap = capacity;
    m->mask = capacity - 1;
    m->full_wait_ns = full_wait_ns;

    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        goto fail_attr;
    /* Timed waits use the monotonic clock: immune to wall-clock steps. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&m->mu, NULL) != 0)
        goto fail_mu;
    if (pthread_cond_init(&m->not_empty, &ca) != 0)
        goto fail_ne;
    if (pthread_cond_init(&m->not_full, &ca) != 0)
        goto fail_nf;
    pthread_condattr_destroy(&ca);
    return (mlo_queue *)m;

fail_nf:
    pthread_cond_destroy(&m->not_empty);
fail_ne:
    pthread_mutex_destroy(&m->mu);
fail_mu:
    pthread_condattr_destroy(&ca);
fail_attr:
    free(m->buf);
fail_buf:
    free(m);
    return NULL;
}

static void mq_destroy(mlo_queue *q) {
    mq *m = mq_of(q);
    if (!m)
        return;
    pthread_cond_destroy(&m->not_full);
    pthread_cond_destroy(&m->not_empty);
    pthread_mutex_destroy(&m->mu);
    free(m->buf);
    free(m);
}

/* Bytes push must find free for a record of `size` at the current tail: the
 * record, plus the pad when it does not fit before the end.  Caller holds mu. */
static size_t need_at_tail(const mq *m, size_t size, size_t *pad) {
    size_t off = (size_t)(m->tail & m->mask);
    size_t to_end = m->cap - off;
    *pad = size > to_end ? to_end : 0;
    return size + *pad;
}

static int mq_push(mlo_queue *q, const mlo_rec *hdr, const char *key, const char *val) {
    mq *m = mq_of(q);
    size_t raw = sizeof(mlo_rec) + (size_t)hdr->key_len + (size_t)hdr->val_len;
    if (raw > m->cap / 2)
        return MLO_Q_TOO_BIG;
    size_t size = mlo__rec_size(hdr->key_len, hdr->val_len);

    pthread_mutex_lock(&m->mu);
    size_t pad;
    size_t need = need_at_tail(m, size, &pad);
    if (!m->closed && need > m->cap - (size_t)(m->tail - m->head) && m->full_wait_ns != 0) {
        struct timespec dl;
        bool forever = m->full_wait_ns < 0;
        if (!forever)
            deadline_after(&dl, m->full_wait_ns);
        m->producers_waiting++;
        while (!m->closed && need > m->cap - (size_t)(m->tail - m->head)) {
            int rc = forever ? pthread_cond_wait(&m->not_full, &m->mu)
                             : pthread_cond_timedwait(&m->not_full, &m->mu, &dl);
            /* Other producers may have moved tail meanwhile. */
            need = need_at_tail(m, size, &pad);
            if (rc == ETIMEDOUT)
                break;
        }
        m->producers_waiting--;
    }
    if (m->closed) {
        pthread_mutex_unlock(&m->mu);
        return MLO_Q_CLOSED;
    }
    if (need > m->cap - (size_t)(m->tail - m->head)) {
        pthread_mutex_unlock(&m->mu);
        return MLO_Q_FULL;
    }

    unsigned char *p = m->buf + (m->tail & m->mask);
    if (pad) {
        mlo_rec ph = {.size = (uint32_t)pad, .type = MQ_REC_PAD};
        memcpy(p, &ph, MQ_PAD_MIN); /* size + type; the rest is never read */
        p = m->buf;
    }
    mlo_rec h = *hdr;
    h.size = (uint32_t)size;
    memcpy(p, &h, sizeof h);
    if (h.key_len)
        memcpy(p + sizeof h, key, h.key_len);
    if (h.val_len)
        memcpy(p + sizeof h + h.key_len, val, h.val_len);
    size_t used_bytes = sizeof h + h.key_len + h.val_len;
    memset(p + used_bytes, 0, size - used_bytes); /* alignment padding */
    m->tail += need;

    /* The consumer can only be asleep on an empty queue; signal it only then,
     * not on every push. */
    bool signal = m->consumer_waiting &&
                  (m->consumer_deep || m->tail - m->head >= m->cap / MLO_Q_WAKE_DIVISOR);
    pthread_mutex_unlock(&m->mu);
    if (signal)
        pthread_cond_signal(&m->not_empty);
    return MLO_Q_OK;
}

static size_t mq_drain(mlo_queue *q, size_t max_records, mlo_rec_fn fn, void *ctx) {
    mq *m = mq_of(q);
    pthread_mutex_lock(&m->mu);
    uint64_t head = m->head;
    uint64_t tail = m->tail;
    pthread_mutex_unlock(&m->mu);

    /* [head, tail) was written under mu before our lock: visible, and ours
     * until we advance m->head. */
    size_t n = 0;
    uint64_t pos = head;
    while (pos != tail && n < max_records) {
        const mlo_rec *r = (const mlo_rec *)(m->buf + (pos & m->mask));
        uint32_t size = r->size;
        if (r->type != MQ_REC_PAD) {
            fn(ctx, r);
            n++;
        }
        pos += size;
    }
    /* A pad right after the last record shown is released too. */
    if (pos != tail) {
        const mlo_rec *r = (const mlo_rec *)(m->buf + (pos & m->mask));
        if (r->type == MQ_REC_PAD)
            pos += r->size;
    }
    if (pos == head)
        return 0;

    pthread_mutex_lock(&m->mu);
    m->head = pos;
    bool signal = m->producers_waiting != 0;
    pthread_mutex_unlock(&m->mu);
    /* Records differ in size: a freed range may suit any waiting producer. */
    if (signal)
        pthread_cond_broadcast(&m->not_full);
    return n;
}

static bool mq_wait_over(const mq *m, int deep) {
    if (m->wake_pending)
        return true;
    return deep ? m->head != m->tail : m->tail - m->head >= m->cap / MLO_Q_WAKE_DIVISOR;
}

static void mq_wait(mlo_queue *q, int64_t timeout_ns, int deep) {
    mq *m = mq_of(q);
    pthread_mutex_lock(&m->mu);
    if (!mq_wait_over(m, deep) && timeout_ns != 0) {
        struct timespec dl;
        if (timeout_ns > 0)
            deadline_after(&dl, timeout_ns);
        m->consumer_waiting = true;
        m->consumer_deep = deep != 0;
        while (!mq_wait_over(m, deep)) {
            int rc = timeout_ns < 0 ? pthread_cond_wait(&m->not_empty, &m->mu)
                                    : pthread_cond_timedwait(&m->not_empty, &m->mu, &dl);
            if (rc == ETIMEDOUT)
                break;
        }
        m->consumer_waiting = false;
    }
    m->wake_pending = false; /* a wake is consumed by the wait it ends */
    pthread_mutex_unlock(&m->mu);
}

static void mq_wake(mlo_queue *q) {
    mq *m = mq_of(q);
    pthread_mutex_lock(&m->mu);
    /* Sticky until a wait() sees it, so a wake just before wait is not lost. */
    m->wake_pending = true;
    pthread_mutex_unlock(&m->mu);
    pthread_cond_signal(&m->not_empty);
}

static void mq_close(mlo_queue *q) {
    mq *m = mq_of(q);
    pthread_mutex_lock(&m->mu);
    m->closed = true;
    m->wake_pending = true;
    pthread_mutex_unlock(&m->mu);
    pthread_cond_broadcast(&m->not_full);
    pthread_cond_signal(&m->not_empty);
}

static size_t mq_used(mlo_queue *q) {
    mq *m = mq_of(q);
    pthread_mutex_lock(&m->mu);
    size_t n = (size_t)(m->tail - m->head);
    pthread_mutex_unlock(&m->mu);
    return n;
}

const mlo_queue_ops mlo__queue_mutex_ops = {
    .name = "mutex",
    .create = mq_create,
    .destroy = mq_destroy,
    .push = mq_push,
    .drain = mq_drain,
    .wait = mq_wait,
    .wake = mq_wake,
    .close = mq_close,
    .used = mq_used,
};
