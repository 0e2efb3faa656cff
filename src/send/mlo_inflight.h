/*
 * mlo_inflight.h - requests in flight (mlo_inflight.c): a pool of up to N
 * workers (mlo_worker.h), each with its own mlo_api (its own connection),
 * that run the sender's jobs.  The sender decides what may overlap (one job
 * per run at a time, mlo_sender.c); the pool only runs what it is given and
 * hands finished jobs back.
 */
#ifndef MLO_INFLIGHT_H
#define MLO_INFLIGHT_H

#include "mlo_buf.h"
#include "mlo_env.h"
#include "mlo_payload.h"
#include "mlo_queue.h"

#include <stddef.h>
#include <stdint.h>

enum { MLO_JOB_BATCH = 1, MLO_JOB_END, MLO_JOB_DATASET };

/* One request (with its 400-splitting) for a worker.  The sender fills the
 * request fields before handing it over; the worker fills the rest. */
typedef struct mlo_job {
    struct mlo_job *next; /* ready queue, finished list, or the sender's free list */
    int kind;
    uint32_t run;         /* the sender's run index (the sender's thread only) */
    const char *sid;      /* the run's server id */
    const mlo_rec **recs; /* MLO_JOB_BATCH: n records (capacity cap) */
    size_t n, cap;
    const mlo_rec *rec; /* MLO_JOB_END, MLO_JOB_DATASET */
    mlo_dataset_payload ds;
    /* MLO_JOB_END of a run whose creation was ambiguous: first remove the
     * empty copies carrying its local id (mlo__requests_sweep) */
    const char *sweep_lid, *sweep_exp;
    /* written by the worker */
    int status; /* MLO_OK, or a transient status: the request is tried again */
    uint64_t sent, adopted, failed;
    mlo_buf reports; /* [int32 status][message NUL]... for the error callback */
    /* the sender's bookkeeping (its thread only) */
    struct mlo_job *run_next; /* the run's outstanding jobs, in order */
    uint64_t seq;             /* order within the run */
    int lane;                 /* free, ordered or barrier (mlo_sender.c) */
    int state;                /* waiting, in flight */
    int attempts;             /* transient failures so far */
    int64_t retry_at;         /* not before (CLOCK_MONOTONIC of the env's clock) */
} mlo_job;

typedef struct mlo_inflight mlo_inflight;

/* A pool of at most max workers (none started yet).  keep: as the sender's.
 * NULL when out of memory. */
mlo_inflight *mlo__inflight_new(mlo_env *env, int keep, int max);
/* Stops and joins the workers (no job may be out). */
void mlo__inflight_free(mlo_inflight *p);
size_t mlo__inflight_workers(const mlo_inflight *p);
/* Starts one more worker.  0, or -1 (at the maximum, or out of memory). */
int mlo__inflight_spawn(mlo_inflight *p);
/* A new stage: jobs are sent again (cancel cleared). */
void mlo__inflight_begin(mlo_inflight *p);
/* The stage failed with st: jobs still queued are not sent (they come back
 * with that status). */
void mlo__inflight_cancel(mlo_inflight *p, int st);
/* Hands a job over; starts a worker when none is idle and there is room. */
void mlo__inflight_push(mlo_inflight *p, mlo_job *j);
/* The finished jobs (a list through next, in finishing order); with wait,
 * at least one. */
mlo_job *mlo__inflight_collect(mlo_inflight *p, int wait);
/* fn(ctx) is called (on the worker's thread) each time a job has finished:
 * the sender's worker wakes up to collect it. */
void mlo__inflight_set_notify(mlo_inflight *p, void (*fn)(void *ctx), void *ctx);

#endif /* MLO_INFLIGHT_H */
