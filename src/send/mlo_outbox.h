/*
 * mlo_outbox.h - the outbox worker (mlo_outbox.c): the store's segments,
 * read back and sent, with acknowledgements; and `mlo sync`'s drain.
 */
#ifndef MLO_OUTBOX_H
#define MLO_OUTBOX_H

#include "mlo_env.h"
#include "mlo_pipe.h"
#include "mlo_runs.h"
#include "mlo_sender.h"
#include "mlo_store.h"

typedef struct mlo_outbox mlo_outbox;

/* Starts the outbox of a client with a store and a tracking URI: adopted
 * segments, then its own as the writer commits them (pipe).  runs: the
 * client's run table.  NULL when out of memory. */
mlo_outbox *mlo__outbox_start(mlo_env *env, mlo_store *st, mlo_pipe *pipe, mlo_runs *runs);
/* After the writer has stopped: sends what is left until deadline_ns, then
 * stops; frees o.  NULL is fine. */
void mlo__outbox_stop(mlo_outbox *o, int64_t deadline_ns);
/* `mlo sync`: sends every segment of segs once (with a short retry of a
 * failed stage), acknowledging as it goes.  progress (may be NULL) gets
 * segment bytes done and in total.  MLO_OK, or a status with a message in
 * err. */
int mlo__outbox_drain(mlo_env *env, mlo_sender *s, mlo_store *st, const mlo_seg_ref *segs, size_t n,
                      void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                      char *err, size_t errlen);

#endif /* MLO_OUTBOX_H */
