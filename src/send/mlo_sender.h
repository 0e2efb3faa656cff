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

/* keep: 1 = an outbox (transient failures keep the stage for a retry);
 * 0 = memory only (they count as failed).  st: the store (runs.map), or
 * NULL.  runs: the client's run table, told when a run gets its server id
 * (NULL: nobody waits, as in `mlo sync`).  NULL when out of memory. */
mlo_sender *mlo__sender_new(mlo_env *env, mlo_store *st, int keep, mlo_runs *runs);
void mlo__sender_free(mlo_sender *s);
/* Stages one event (copied).  lid: the run's local id.  flags:
 * MLO_SENDER_ADOPTED or 0.  0 or -1 (OOM). */
int mlo__sender_add(mlo_sender *s, int type, const char *lid, const char *key, size_t klen,
                    const char *val, size_t vlen, double num, int64_t ts, int64_t step,
                    int flags);
/* Stages one event read from a segment.  0, or -1 (OOM). */
int mlo__sender_add_event(mlo_sender *s, const mlo_log_event *ev, int flags);
size_t mlo__sender_staged(const mlo_sender *s);
/* Drops the stage (after a failure to read it whole). */
void mlo__sender_reset(mlo_sender *s);
/* Sends the stage.  MLO_OK: done (refused entries counted as failed);
 * else a transient status: nothing counted, the caller resends the stage
 * later (keep = 1).  The stage is emptied either way. */
int mlo__sender_process(mlo_sender *s);

#endif /* MLO_SENDER_H */
