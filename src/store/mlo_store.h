/*
 * mlo_store.h - the store directory (mlo_store.c: its layout is written
 * down at the top): the process's ring file, crash recovery of dead
 * processes' rings, segment paths, acknowledgements, runs.map and the
 * adoption of dead processes' files.
 */
#ifndef MLO_STORE_H
#define MLO_STORE_H

#include "mlo_env.h"
#include "mlo_queue.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_store mlo_store;

/* An adopted or own segment the sender goes through, in order. */
typedef struct mlo_seg_ref {
    char procid[48];
    uint32_t n;
    int adopted; /* 1: written by an earlier (dead) process */
} mlo_seg_ref;

/* Opens (creating, 0700) the store at dir for a client sending to uri (NULL:
 * local store): takes a process id, recovers the rings of dead processes,
 * creates this process's ring file (capacity bytes; 0: no ring file) and
 * claims the segments of dead processes that sent to the same uri.  env:
 * where recovery reports and counts.  MLO_OK or a status with a message in
 * err. */
int mlo__store_open(const char *dir, const char *uri, size_t capacity, int64_t full_wait_ns,
                    mlo_env *env, mlo_store **out, char *err, size_t errlen);
/* For `mlo sync`: opens the store at dir without a ring of its own and
 * recovers and claims every dead process's files whatever its URI.  MLO_OK
 * or a status with a message in err. */
int mlo__store_open_all(const char *dir, const char *uri, mlo_env *env, mlo_store **out, char *err,
                        size_t errlen);
/* For `mlo gc` and `mlo rm`: opens the store at dir without a ring of its
 * own and claims every dead process's files (whatever their URI); with
 * recover, recovers dead processes' rings into segments first.  MLO_OK or a
 * status with a message in err. */
int mlo__store_open_admin(const char *dir, int recover, mlo_env *env, mlo_store **out, char *err,
                          size_t errlen);
/* Removes the queue files in /dev/shm (mlo-ring-*) that no live process
 * holds and whose store no longer refers to them (the store deleted): what
 * nobody can recover any more (the rule is written down atop create_ring
 * in mlo_store.c).  dry_run: only says what it would remove.  fn (may be
 * NULL) gets each file, its size and why.  Returns how many. */
size_t mlo__store_reclaim_shm(int dry_run,
                              void (*fn)(void *ctx, const char *path, uint64_t bytes,
                                         const char *why),
                              void *ctx);
/* Reads acks/<name> ("<procid>-<n>.ack") whatever URI acknowledged it: the
 * offset and when (ms since the epoch, the env's clock; the file's mtime
 * for acks written before mlo recorded the time).  1, or 0 when absent or
 * unreadable. */
int mlo__store_ack_read(const mlo_store *s, const char *name, uint64_t *off, int64_t *ack_ms);

/* Closes the store; removes this process's ring and run table when
 * ring_empty (everything in them is in a segment). */
void mlo__store_close(mlo_store *s, int ring_empty);

/* The queue laid over this process's ring file, or NULL if the ring could
 * not be put in a file (then the caller allocates one in memory). */
mlo_queue *mlo__store_ring(mlo_store *s);
const char *mlo__store_procid(const mlo_store *s);
const char *mlo__store_uri(const mlo_store *s);
/* The store's directory (absolute). */
const char *mlo__store_dir(const mlo_store *s);
int mlo__store_fsync_policy(const mlo_store *s);
/* Processes skipped because they are alive (mlo__store_open_all). */
size_t mlo__store_live_skipped(const mlo_store *s);
/* Writes the local id of run `index` into this process's run table. */
int mlo__store_set_run(mlo_store *s, uint32_t index, const char *lid);
/* Path of segment n of procid (malloc'd). */
char *mlo__store_seg_path(const mlo_store *s, const char *procid, uint32_t n);
/* Segments of the adopted (dead) processes, in order (borrowed). */
const mlo_seg_ref *mlo__store_adopted(const mlo_store *s, size_t *n);
/* 1 when the files of procid belong to this store handle: its own procid,
 * or a dead process it claimed (adopted) when it was opened; else 0. */
int mlo__store_owns(const mlo_store *s, const char *procid);
/* Acknowledged offset of a segment (0 when none). */
uint64_t mlo__store_ack_get(mlo_store *s, const char *procid, uint32_t n);
int mlo__store_ack_set(mlo_store *s, const char *procid, uint32_t n, uint64_t off, int do_fsync);
/* runs.map: looks lid up for this store's uri (reading lines other
 * processes appended since the last call).  1 found (*sid malloc'd), 0 not. */
int mlo__store_map_get(mlo_store *s, const char *lid, char **sid);
/* Appends "<lid> <sid> <uri>" and fdatasyncs.  0 or -1. */
int mlo__store_map_put(mlo_store *s, const char *lid, const char *sid);

#endif /* MLO_STORE_H */
