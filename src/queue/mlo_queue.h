/*
 * mlo_queue.h - the event queue between log calls (many producers) and the
 * shipper thread (one consumer).
 *
 * Two implementations sit behind one table of operations:
 *  - mlo_queue_mutex.c: a byte ring guarded by a mutex and a condition
 *    variable.  The foundation's queue, kept as the benchmark baseline.
 *  - mlo_ring.c: the lock-free multi-producer single-consumer ring.
 *
 * Records have variable length: a fixed header (mlo_rec) followed by the key
 * bytes and then the value bytes, padded to MLO_REC_ALIGN.  Producers pass the
 * header and the two strings; the queue copies them in.  The consumer sees
 * each published record once, in the order the producers claimed their space,
 * and must copy out what it needs before the record's space is released.
 */
#ifndef MLO_QUEUE_H
#define MLO_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define MLO_REC_ALIGN 8u

enum mlo_rec_type {
    MLO_REC_METRIC = 1,
    MLO_REC_PARAM = 2,
    MLO_REC_TAG = 3,
    MLO_REC_END_RUN = 4, /* value = status (mlo_run_status), timestamp = end time */
    MLO_REC_FLUSH = 5,   /* step = flush sequence number; no key, no value */
    MLO_REC_DATASET = 6, /* key = dataset name; value = its payload (below); timestamp =
                          * when it was logged */
};

/* The values of DATASET and START_RUN records are laid out as
 * queue/mlo_payload.h says. */

/* The fixed part of every record.  `size` is written by the queue. */
typedef struct mlo_rec {
    uint32_t size;    /* whole record incl. header and padding, multiple of MLO_REC_ALIGN */
    uint16_t type;    /* enum mlo_rec_type */
    uint16_t key_len; /* bytes of key after the header (<= 1000) */
    uint32_t run;     /* index of the run in the client's run table */
    uint32_t val_len; /* bytes of value after the key */
    int64_t timestamp;
    int64_t step;
    double value;
    /* char data[key_len + val_len] follows */
} mlo_rec;

_Static_assert(sizeof(mlo_rec) == 40, "mlo_rec layout");

static inline const char *mlo__rec_key(const mlo_rec *r) {
    return (const char *)(r + 1);
}
static inline const char *mlo__rec_val(const mlo_rec *r) {
    return (const char *)(r + 1) + r->key_len;
}
static inline uint32_t mlo__rec_size(size_t key_len, size_t val_len) {
    size_t n = sizeof(mlo_rec) + key_len + val_len;
    return (uint32_t)((n + MLO_REC_ALIGN - 1) & ~(size_t)(MLO_REC_ALIGN - 1));
}

/* Return codes of push. */
enum { MLO_Q_OK = 0, MLO_Q_FULL = 1, MLO_Q_CLOSED = 2, MLO_Q_TOO_BIG = 3 };

typedef struct mlo_queue mlo_queue;

/* A light sleep (wait with deep == 0) ends when this share of the capacity is in use. */
#define MLO_Q_WAKE_DIVISOR 4u

/* Called by drain on each record; the record is valid only during the call. */
typedef void (*mlo_rec_fn)(void *ctx, const mlo_rec *rec);

typedef struct mlo_queue_ops {
    const char *name;
    /* capacity: bytes, a power of two.  full_wait_ns: how long push waits for
     * room (0 = drop at once).  Returns NULL on failure. */
    mlo_queue *(*create)(size_t capacity, int64_t full_wait_ns);
    void (*destroy)(mlo_queue *q);
    /* Any thread.  Copies hdr (type, key_len, run, val_len, timestamp, step,
     * value), then key and val into the queue.  MLO_Q_OK, MLO_Q_FULL (after
     * waiting up to full_wait_ns), MLO_Q_CLOSED, MLO_Q_TOO_BIG (the record can
     * never fit). */
    int (*push)(mlo_queue *q, const mlo_rec *hdr, const char *key, const char *val);
    /* Consumer thread only.  Calls fn on up to max_records published records
     * in order and releases their space.  Returns the number of records. */
    size_t (*drain)(mlo_queue *q, size_t max_records, mlo_rec_fn fn, void *ctx);
    /* Consumer thread only.  Sleeps until wake is called, timeout_ns passes
     * (< 0: no timeout), or records arrive: with deep != 0 any record wakes
     * it (the producer that ends the sleep pays one system call); with
     * deep == 0 only a fill of 1/MLO_Q_WAKE_DIVISOR of the capacity does, so
     * that logging at any steady rate costs producers no system call and the
     * consumer collects records every timeout_ns.  Returns at once when that
     * condition already holds. */
    void (*wait)(mlo_queue *q, int64_t timeout_ns, int deep);
    /* Any thread.  Wakes the consumer out of wait. */
    void (*wake)(mlo_queue *q);
    /* Any thread.  After close, push returns MLO_Q_CLOSED and waiting producers
     * give up at once.  Records already pushed stay drainable. */
    void (*close)(mlo_queue *q);
    /* Any thread, approximate: bytes in use. */
    size_t (*used)(mlo_queue *q);
} mlo_queue_ops;

extern const mlo_queue_ops mlo__queue_mutex_ops;
extern const mlo_queue_ops mlo__ring_ops;

#endif /* MLO_QUEUE_H */
