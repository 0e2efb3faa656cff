/*
 * mlo_proc.c - the fork generation (mlo_proc.h).
 */
#include "mlo_proc.h"

#include <pthread.h>
#include <stddef.h>

_Atomic unsigned mlo__proc_fork_gen;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void (*hook)(void);

static void atfork_child(void) {
    atomic_fetch_add_explicit(&mlo__proc_fork_gen, 1, memory_order_relaxed);
    if (hook)
        hook();
}

static void init_once(void) {
    pthread_atfork(NULL, NULL, atfork_child);
}

void mlo__proc_init(void (*child_hook)(void)) {
    if (child_hook)
        hook = child_hook; /* set before the handler can run: init is called before any fork */
    pthread_once(&once, init_once);
}
