/*
 * mlo_proc.h - process-wide state: the fork generation.
 *
 * fork(): the child has none of the parent's threads, so a client (or a
 * histogram) inherited across fork cannot ship anything and its locks may be
 * held forever.  An atfork child handler bumps the generation; every handle
 * remembers the generation it was made in and answers MLO_ERR_CLOSED on a
 * mismatch: nothing in the child ever waits for a thread that does not
 * exist.
 *
 * Threads: any.  Relaxed everywhere: the generation is written in the
 * single-threaded child right after fork and read by that child's threads
 * created later.
 */
#ifndef MLO_PROC_H
#define MLO_PROC_H

#include <stdatomic.h>

extern _Atomic unsigned mlo__proc_fork_gen;

/* Installs the atfork handler, once (then calls child_hook, if any, in the
 * child after each fork: the client registry resets its lock there). */
void mlo__proc_init(void (*child_hook)(void));
static inline unsigned mlo__proc_gen(void) {
    return atomic_load_explicit(&mlo__proc_fork_gen, memory_order_relaxed);
}
/* 1 when a handle made in generation gen was inherited across fork(). */
static inline int mlo__proc_forked(unsigned gen) {
    return gen != mlo__proc_gen();
}

#endif /* MLO_PROC_H */
