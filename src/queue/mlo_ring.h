/*
 * mlo_ring.h - the lock-free ring's extras beyond the queue operations
 * (mlo_ring.c): laying it over caller memory (a file mapping in the store),
 * peeking without releasing (the writer releases space only once the
 * records are safe in a segment), and crash recovery of a dead process's
 * ring.
 */
#ifndef MLO_RING_H
#define MLO_RING_H

#include "mlo_queue.h"

#include <stddef.h>
#include <stdint.h>

/* The ring laid over caller memory (a later issue maps it from a file):
 * bytes needed for a capacity, and init in place. */
size_t mlo__ring_bytes(size_t capacity);
mlo_queue *mlo__ring_init_in(void *mem, size_t bytes, int64_t full_wait_ns);

/* Consumer: the ring's head (where a peek starts). */
uint64_t mlo__ring_head_sc(mlo_queue *q);
/* Consumer: calls fn on up to max_records published records from *pos on,
 * without giving their space back; *pos moves past them.  Returns the count. */
size_t mlo__ring_peek_sc(mlo_queue *q, uint64_t *pos, size_t max_records, mlo_rec_fn fn, void *ctx);
/* Consumer: the records before pos are safe elsewhere: mark them committed
 * (crash recovery will not hand them out again), then free their space. */
void mlo__ring_release_sc(mlo_queue *q, uint64_t pos);
/* Crash recovery of the ring block of a dead process: calls fn on every
 * published, uncommitted record in order, stepping over records whose
 * producer died before publishing (counted in *skipped, may be NULL).
 * Returns the number of records, or -1 if mem is not a ring block. */
long mlo__ring_recover(void *mem, size_t bytes, mlo_rec_fn fn, void *ctx, uint64_t *skipped);

#endif /* MLO_RING_H */
