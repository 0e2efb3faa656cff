/*
 * mlo_sender.h - the sender's core (mlo_sender.c): a stage of events made
 * into MLflow requests (runs created, log-batch within MLflow's limits, end
 * run, dataset inputs), with a pool of requests in flight
 * (mlo_inflight.c).  The outbox worker (mlo_outbox.c) feeds it from the
 * store's segments; the writer feeds it directly without a store.
 */
#ifndef MLO_SENDER_H
#define MLO_SENDER_H

#include "mlo_env.h"
#include "mlo_log.h"
#include "mlo_runs.h"
#include "mlo_store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_sender mlo_sender;

#define MLO_SENDER_ADOPTED 1u /* event flag: from an earlier (dead) process */

/* A chunk of events is wholly delivered (or refused for good): the caller
 * may acknowledge segment seg of procid up to end. */
typedef void (*mlo_sender_ack_fn)(void *ctx, const char *procid, uint32_t seg, uint64_t end);

/* keep: 1 = an outbox (transient failures keep the events for a retry);
 * 0 = memory only (they count as failed).  st: the store (runs.map), or
 * NULL.  runs: the client's run table, told when a run gets its server id
 * (NULL: nobody waits, as in `mlo sync`).  NULL when out of memory. */
mlo_sender *mlo__sender_new(mlo_env *env, mlo_store *st, int keep, mlo_runs *runs);
/* Waits for the requests out, then frees everything. */
void mlo__sender_free(mlo_sender *s);
/* Where wholly delivered chunks are told (the outbox). */
void mlo__sender_set_ack(mlo_sender *s, mlo_sender_ack_fn fn, void *ctx);
/* fn(ctx) is called from a worker's thread when a request it carried is
 * back (the outbox wakes up to collect it). */
void mlo__sender_set_notify(mlo_sender *s, void (*fn)(void *ctx), void *ctx);
/* Stages one event (copied) into the open chunk.  lid: the run's local id.
 * flags: MLO_SENDER_ADOPTED or 0.  0 or -1 (OOM). */
int mlo__sender_add(mlo_sender *s, int type, const char *lid, const char *key, size_t klen,
                    const char *val, size_t vlen, double num, int64_t ts, int64_t step, int flags);
/* Stages one event read from a segment.  0, or -1 (OOM). */
int mlo__sender_add_event(mlo_sender *s, const mlo_log_event *ev, int flags);
/* The events staged since the last close form a chunk; once all are
 * delivered the ack function gets (procid, seg, end) (procid NULL: nothing
 * to acknowledge). */
void mlo__sender_close_chunk(mlo_sender *s, const char *procid, uint32_t seg, uint64_t end);
/* Events staged and not yet delivered (the window). */
size_t mlo__sender_staged(const mlo_sender *s);
/* 1 when nothing is staged or out. */
int mlo__sender_idle(const mlo_sender *s);
/* One step of the pipeline, without waiting: finished requests collected,
 * new records taken, requests handed over, delivered chunks acknowledged.
 * caught_up: nothing more is coming for now (open batches go out).
 * MLO_OK, or the transient status that paused the intake (creating a run:
 * it is tried again after the pause).  *next_ns (may be NULL) gets when
 * something waits to be tried again (INT64_MAX: nothing). */
int mlo__sender_pump(mlo_sender *s, int caught_up, int64_t *next_ns);
/* Drops everything staged and not delivered (waiting for requests out). */
void mlo__sender_reset(mlo_sender *s);
/* Sends what is staged and waits for it.  MLO_OK: done (refused entries
 * counted as failed); else (keep) a transient status: what was not
 * delivered is dropped, the caller sends it again later. */
int mlo__sender_process(mlo_sender *s);

#endif /* MLO_SENDER_H */
