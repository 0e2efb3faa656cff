/*
 * mlo_writer.h - the writer (mlo_writer.c): the worker that drains the event
 * queue into the store's run log and hands over to the sender, or, without
 * a store, sends itself.
 */
#ifndef MLO_WRITER_H
#define MLO_WRITER_H

#include "mlo_env.h"
#include "mlo_gate.h"
#include "mlo_hists.h"
#include "mlo_pipe.h"
#include "mlo_queue.h"
#include "mlo_runs.h"
#include "mlo_store.h"
#include "mlo_worker.h"

typedef struct mlo_writer mlo_writer;

typedef struct mlo_writer_cfg {
    mlo_env *env;
    mlo_queue *queue;
    const mlo_queue_ops *qops;
    int peek;         /* the queue is the ring in the store: peek, release once committed */
    mlo_store *store; /* NULL: memory only (send from this thread) */
    mlo_pipe *pipe;   /* with a store: the hand-over to the sender */
    mlo_runs *runs;   /* run index -> local id */
    mlo_hists *hists; /* ticked by the writer */
    mlo_gate *flush;  /* FLUSH records are done through it */
} mlo_writer_cfg;

/* Starts the writer's thread.  NULL when out of memory. */
mlo_writer *mlo__writer_start(const mlo_writer_cfg *cfg);
/* Wakes the writer (the queue's wake: a flush, a new histogram). */
void mlo__writer_wake(mlo_writer *w);
/* Close, after the queue was closed: the writer empties it into the store
 * (local disk: not bounded by a deadline; a writer that cannot write gives
 * up after one more try and leaves the ring file for recovery), then exits;
 * joined here. */
void mlo__writer_stop(mlo_writer *w);
/* After stop: 1 when records were left in the ring (the ring file must
 * stay for recovery). */
int mlo__writer_ring_left(const mlo_writer *w);
void mlo__writer_free(mlo_writer *w);

#endif /* MLO_WRITER_H */
