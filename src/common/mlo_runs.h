/*
 * mlo_runs.h - a client's run table: run handles by index (what a queue
 * record names) and by local id, and the server ids the sender hands back.
 *
 * A run gets a local id (32 hex) at start; the sender creates it on the
 * server and reports its server id (mlo__runs_created), which mlo_start_run,
 * the registry calls and direct artifact uploads wait for (mlo__runs_wait).
 * Runs are stored in chunks that never move once published, so the writer
 * reads a run by index without a lock (the record that names a run was
 * pushed after the run was stored: the queue's publication orders the two).
 *
 * Threads: any.  Adding, lookups by local id and waiting take the table's
 * lock; mlo__runs_get takes none.
 */
#ifndef MLO_RUNS_H
#define MLO_RUNS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define MLO_RUN_MAGIC 0x6d6c6f52u /* "mloR" */
#define MLO_RUN_CHUNK 256
#define MLO_RUN_CHUNKS 1024 /* at most 262,144 runs per client */
#define MLO_RUNS_LID_BUCKETS 4096

struct mlo_client;

typedef struct mlo_run {
    uint32_t magic;
    uint32_t index;
    struct mlo_client *client; /* the owner (opaque here) */
    char local_id[33];         /* 32 hex: the run's id in the store */
    /* Set once (by the sender when it has created or found the run on the
     * server; by start/resume when known at once), freed by
     * mlo__runs_destroy.  Readers load with acquire: the string is complete
     * before the pointer is seen. */
    _Atomic(char *) server_id;
    _Atomic(char *) experiment_id;
    _Atomic int create_status; /* MLO_OK until the server refused the run for good */
    uint32_t lid_next;         /* local-id hash chain, under the table's lock */
} mlo_run;

typedef struct mlo_runs {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a run got its server id or failed; or the table closed */
    mlo_run *_Atomic chunks[MLO_RUN_CHUNKS];
    uint32_t n;
    uint32_t *lid_heads; /* local id -> index + 1, chained; MLO_RUNS_LID_BUCKETS */
    int closed;
} mlo_runs;

/* 0, or -1 out of memory. */
int mlo__runs_init(mlo_runs *t);
/* Frees the ids and the index but keeps the chunks: handles of a closed
 * client still answer MLO_ERR_CLOSED through their magic. */
void mlo__runs_destroy(mlo_runs *t);
/* Adds a run (server id and experiment id when known), owned by owner.
 * The run's magic is set: the caller may clear it to withdraw the handle.
 * NULL when out of memory or full. */
mlo_run *mlo__runs_add(mlo_runs *t, struct mlo_client *owner, const char *lid, const char *sid,
                       const char *exp);
/* Run `index`, or NULL.  No lock (acquire load of the chunk). */
static inline mlo_run *mlo__runs_get(mlo_runs *t, uint32_t index) {
    if (index / MLO_RUN_CHUNK >= MLO_RUN_CHUNKS)
        return NULL;
    /* acquire: pairs with the release store that published the chunk */
    mlo_run *chunk = atomic_load_explicit(&t->chunks[index / MLO_RUN_CHUNK], memory_order_acquire);
    return chunk ? &chunk[index % MLO_RUN_CHUNK] : NULL;
}
/* The run whose local id is lid, or NULL. */
mlo_run *mlo__runs_find(mlo_runs *t, const char *lid);
/* The sender: run lid now has a server id (st == MLO_OK; exp may be NULL),
 * or was refused for good (st); wakes the waiters.  No-op for a local id
 * that is not in the table (a run of another process). */
void mlo__runs_created(mlo_runs *t, const char *lid, const char *sid, const char *exp, int st);
/* Waits until r has a server id or was refused, until deadline_ns
 * (CLOCK_MONOTONIC), or until the table closes.  MLO_OK (*sid = the
 * server id, borrowed for the table's life; sid may be NULL), the status
 * the server refused the run with, MLO_ERR_CLOSED or MLO_ERR_TIMEOUT. */
int mlo__runs_wait(mlo_runs *t, mlo_run *r, int64_t deadline_ns, const char **sid);
/* Close: waiters give up (MLO_ERR_CLOSED). */
void mlo__runs_close(mlo_runs *t);
/* A fresh local id: 32 lower-case hex characters + NUL (getrandom; time,
 * pid and a counter without an entropy source). */
void mlo__runs_new_id(char out[33]);
/* The server id of r, or NULL (acquire). */
static inline const char *mlo__runs_sid(const mlo_run *r) {
    return atomic_load_explicit(&((mlo_run *)r)->server_id, memory_order_acquire);
}

#endif /* MLO_RUNS_H */
