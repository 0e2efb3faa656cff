/*
 * mlo_gate.h - the flush gate: "flush with a timeout" for work that passes
 * through a worker.  A waiter takes a ticket (a sequence number it hands to
 * the work, e.g. in a FLUSH record), the worker marks sequence numbers done
 * as the work passes them, and the waiter waits with a deadline.
 *
 * Threads: any.
 */
#ifndef MLO_GATE_H
#define MLO_GATE_H

#include <pthread.h>
#include <stdint.h>

typedef struct mlo_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t next; /* tickets handed out */
    uint64_t done; /* everything up to here is done */
} mlo_gate;

void mlo__gate_init(mlo_gate *g);
void mlo__gate_destroy(mlo_gate *g);
/* A new sequence number (1, 2, ...). */
uint64_t mlo__gate_ticket(mlo_gate *g);
/* Everything up to seq is done (a smaller seq than already done: no-op). */
void mlo__gate_done(mlo_gate *g, uint64_t seq);
/* Waits until seq is done or deadline_ns (CLOCK_MONOTONIC) passes.  MLO_OK
 * or MLO_ERR_TIMEOUT. */
int mlo__gate_wait(mlo_gate *g, uint64_t seq, int64_t deadline_ns);

#endif /* MLO_GATE_H */
