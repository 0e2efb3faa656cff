/*
 * mlo_retention.h - what the store removes, and when (mlo_retention.c):
 * acknowledged segments after the retention period or over the size cap
 * (their runs folded into per-run summaries first), leftovers of dead
 * processes, and runs removed with `mlo rm`.
 */
#ifndef MLO_RETENTION_H
#define MLO_RETENTION_H

#include "mlo_env.h"
#include "mlo_store.h"

#include <stddef.h>
#include <stdint.h>

/* Each file removed (or, in a dry run, that would be): kind ("segment",
 * "ack", "summary", "artifact", "leftover"), its path relative to the store,
 * its size, and why. */
typedef void (*mlo_gc_fn)(void *ctx, const char *kind, const char *path, uint64_t bytes,
                          const char *why);

typedef struct mlo_gc_opts {
    int64_t now_ms;       /* the time (ms since the epoch: the env's clock) */
    int64_t retention_ms; /* acknowledged segments kept this long; -1: forever */
    int64_t max_bytes;    /* the cap; 0: none */
    int dry_run;          /* say what would go, touch nothing */
    /* also segments without a block of dead processes this handle claimed
     * (`mlo gc`: nobody sends them; a running client leaves them alone,
     * its outbox may still open them by name) */
    int remove_empty;
    mlo_gc_fn on_remove; /* may be NULL */
    void *ctx;
} mlo_gc_opts;

typedef struct mlo_gc_result {
    uint64_t files, bytes; /* removed (dry run: would be) */
    uint64_t store_bytes;  /* the store's size after (regular files; not the queue's) */
    uint64_t unsent_bytes; /* of it: events and artifacts the server has not acknowledged */
    size_t summaries;      /* run summaries written */
    int busy;              /* another process held the store's retention lock: nothing done */
} mlo_gc_result;

/* One pass over the store s: removes what o says may go (see the layout
 * comment atop mlo_store.c: "what is removed when").  Only files of
 * processes s owns (its own and the dead ones it claimed) or that no live
 * process can still write are touched; never anything unacknowledged.  env
 * (may be NULL) gets the reports of I/O problems.  MLO_OK, or a status with
 * a message in err (what was done before the problem stays done).
 * Threads: any one; passes of several processes on one store exclude each
 * other (a lock file). */
int mlo__retention_pass(mlo_store *s, mlo_env *env, const mlo_gc_opts *o, mlo_gc_result *res,
                        char *err, size_t errlen);

/* The running client's retention, called by its writer after each cycle:
 * a pass at most once a minute (env's clock) with the configured retention
 * and cap; over the cap with only unacknowledged data left, a report through
 * the error callback at most every 10 minutes.  Zero-initialised. */
typedef struct mlo_retention {
    int64_t next_ms;
    int64_t reported_ms;
} mlo_retention;
void mlo__retention_tick(mlo_retention *t, mlo_store *s, mlo_env *env);

/* `mlo rm`: removes every trace of the runs ids (exact run ids as the
 * segments name them) from the store: their events from every segment
 * (segments of other runs are rewritten without them), their summaries,
 * their staged artifacts.  Refuses, changing nothing, when a live process
 * still writes a segment or artifact of one of them, or when a segment
 * holding one is partly acknowledged (rewriting would lose the offset):
 * MLO_ERR_STORE with a message in err.  s: opened with
 * mlo__store_open_admin.  dry_run and on_remove as for a pass. */
int mlo__retention_rm(mlo_store *s, mlo_env *env, const char *const *ids, size_t n, int dry_run,
                      mlo_gc_fn on_remove, void *ctx, char *err, size_t errlen);

#endif /* MLO_RETENTION_H */
