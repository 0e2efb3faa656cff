/*
 * mlo_requests.h - one request of the sender and what its answer means
 * (mlo_requests.c): a log-batch with MLflow's 400-splitting, a run's end, a
 * dataset input.  Run on the sender's thread or on an in-flight worker's.
 */
#ifndef MLO_REQUESTS_H
#define MLO_REQUESTS_H

#include "mlo_api.h"
#include "mlo_buf.h"
#include "mlo_env.h"
#include "mlo_payload.h"

#include <stdint.h>

/* What sending needs, and the counters of what was sent. */
typedef struct mlo_reqctx {
    mlo_env *env;
    mlo_api *api;
    int keep;                       /* an outbox: transient failures are returned, not counted */
    uint64_t sent, adopted, failed; /* counters, added by the caller at its stage's end */
    mlo_buf *defer;                 /* NULL: report at once; else queued for the sender */
} mlo_reqctx;

/* Sends recs[0..n) of the run with server id sid; a 400 is split in halves
 * until the offending entries stand alone (reported, counted failed).
 * MLO_OK, or a transient status (keep only: nothing counted). */
int mlo__requests_batch(mlo_reqctx *x, const char *sid, const mlo_rec *const *recs, size_t n);
/* runs/update for an END_RUN record. */
int mlo__requests_end(mlo_reqctx *x, const char *sid, const mlo_rec *r);
/* runs/log-inputs for a DATASET record (key = name) whose payload is ds. */
int mlo__requests_dataset(mlo_reqctx *x, const char *sid, const mlo_rec *r,
                          const mlo_dataset_payload *ds);

/* A run whose creation was ambiguous (the answer to runs/create was lost,
 * and the server may have carried it out late): every run of experiment
 * exp carrying the tag mlo.local_id = lid other than sid is an unwanted
 * copy.  Empty copies (no metric, no param, no tag but MLflow's system
 * tags and the local id) are deleted (runs/delete), or, when the server
 * refuses that, ended as KILLED with the tag mlo.duplicate_of = sid.  A
 * copy that holds data is left alone and reported.  Best effort: failures
 * are reported, not returned. */
void mlo__requests_sweep(mlo_reqctx *x, const char *exp, const char *lid, const char *sid);

#endif /* MLO_REQUESTS_H */
