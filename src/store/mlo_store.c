/*
 * mlo_store.c - the store directory: the durable run log that is at once the
 * local store (no tracking URI), the outbox (what the server has not
 * acknowledged yet) and the crash journal (the event queue in a file).
 *
 * ==== Layout (directories 0700, files 0600) ====
 *
 *   <store>/segments/<procid>-<n>.seg   run log segments (format: mlo_log.c),
 *                                       n = 000001, 000002, ... per process;
 *                                       n = 999999 holds the records that
 *                                       were still in the process's ring when
 *                                       it died (written by whoever recovered
 *                                       them, via <name>.tmp + rename)
 *   <store>/rings/<procid>.ring         the process's event queue: an
 *                                       mlo_ring.c block in a MAP_SHARED file
 *                                       (space reserved with fallocate, pages
 *                                       pre-faulted at open); its live owner
 *                                       holds an exclusive flock on it.  A
 *                                       symlink to /dev/shm/mlo-ring-<procid>-
 *                                       <rand> when tmpfs is there (no
 *                                       write-back faults on log calls), else
 *                                       the file itself.  The tmpfs file ends
 *                                       with an owner record (the store's
 *                                       absolute path and the procid, 4 KiB
 *                                       after the ring: see create_ring), so
 *                                       that orphans can be told apart
 *   <store>/rings/<procid>.runs         run index -> local id: slot i at byte
 *                                       33 * i is "<32 hex>\n" (a ring record
 *                                       names its run by index)
 *   <store>/acks/<procid>.lock          exclusive flock held by whoever owns
 *                                       the procid's files: the live process,
 *                                       then whoever recovers or adopts them
 *   <store>/acks/<procid>.target        the tracking URI the process sent to
 *                                       (empty: a local-store process)
 *   <store>/acks/<procid>-<n>.ack       how far the server acknowledged
 *                                       segment n: "%020llu <uri> %020lld\n",
 *                                       a block boundary, and when (ms since
 *                                       the epoch, the env's clock: what
 *                                       retention counts from; files without
 *                                       it: their mtime).  An ack for another
 *                                       URI counts as none for sending
 *   <store>/runs.map                    "<local_id> <server_run_id> <uri>\n"
 *                                       per run created (or found) on a
 *                                       server; appended with one write and
 *                                       fdatasync'd before anything is sent
 *                                       to the run
 *   <store>/artifacts/<id>.blob         an artifact's content, staged by
 *                                       mlo_log_artifact[_bytes] before the
 *                                       call returns: copied in 1 MiB chunks
 *                                       with its SHA-256, as <id>.blob.tmp,
 *                                       fsync'd, renamed.  id = <procid>-<8
 *                                       digits>: the procid of the client that
 *                                       staged it
 *   <store>/artifacts/<id>.art          its manifest, pending upload: run
 *                                       local id, artifact path, size,
 *                                       SHA-256, the tracking URI it is bound
 *                                       for ("-": a local store), creation
 *                                       time (text lines, format at the top of
 *                                       mlo_artifact.c); written after the
 *                                       blob via <id>.art.tmp + fsync + rename.
 *                                       Whoever uploads it holds an exclusive
 *                                       flock on it.  Uploaded: the manifest
 *                                       is removed, then the blob (an orphan
 *                                       blob is removed by whoever claims its
 *                                       procid)
 *   <store>/artifacts/<id>.failed       a manifest the server refused for
 *                                       good, with the reason (`error` line);
 *                                       the blob is kept, `mlo sync` tries
 *                                       again
 *   <store>/summaries/<run id>.sum      what retention removed of a run,
 *                                       folded (store/mlo_retention.c): the
 *                                       segment format, with START_RUN, the
 *                                       last PARAM and TAG values, DATASETs,
 *                                       one METRIC_SUMMARY per metric (count,
 *                                       finite min and max, MLflow's latest
 *                                       point) and END_RUN.  `mlo ls/show/
 *                                       gate` read the summaries first, then
 *                                       the segments left
 *   <store>/summaries/.lock             flock'd by a retention pass (one per
 *                                       store at a time)
 *   <store>/summaries/removing          a pass's journal: the summaries it
 *                                       renamed into place and the segments
 *                                       it removes; redone by the next pass
 *                                       if present (a crash in between)
 *
 * procid = <start time in ms, 13 digits>-<pid>-<k>, k counting the clients
 * of the process: unique per client, and names sort by start time.
 *
 * Opening a store (mlo__store_open, one per client):
 *  1. take a procid, lock acks/<procid>.lock, write acks/<procid>.target;
 *  2. recover: every rings/<procid>.ring whose acks lock and ring flock can both be
 *     taken (the owner is dead) is mapped read-only, its published records
 *     (mlo__ring_recover: torn and unfinished records skipped) are written
 *     to segments/<procid>-999999.seg with the dead process's .runs table
 *     for the local ids, fsync'd, renamed into place; then the ring and
 *     .runs files are removed.  If that segment already exists (a recovery
 *     that died after its rename) the ring is just removed;
 *  3. the client's own ring: created, fallocate'd (so a full disk cannot
 *     SIGBUS the log calls later), mapped MAP_SHARED, laid out by
 *     mlo__ring_init_in (which zeroes, i.e. pre-faults, every page);
 *  4. adopt: with a tracking URI, the segments of every dead process that
 *     sent to the same URI, in procid order, are claimed (their acks lock is
 *     kept until close) for this client's sender.  Local-store processes'
 *     segments wait for `mlo sync`.  Dead processes with the same URI that
 *     left artifact manifests are claimed alike (also without a segment);
 *     the client's artifact uploader takes the manifests of its own procid
 *     and of the claimed ones (mlo__store_owns), so one uploader per
 *     manifest.
 * Closing removes the ring and .runs files when the writer emptied the ring
 * into a segment (else they stay for recovery), and releases the locks.
 *
 * Two processes never write the same file: each writes its own segments,
 * ring and acks; runs.map lines are appended with O_APPEND, one write each.
 *
 * mlo__store_open_all (for `mlo sync`, send/mlo_sync.c): recovers and
 * adopts every dead process's files, whatever its URI.
 * mlo__store_open_admin (for `mlo gc` and `mlo rm`): claims every dead
 * process, whatever it holds.
 *
 * ==== What is removed when (store/mlo_retention.c) ====
 *
 *  - A segment, once it is closed (a later segment of its process exists,
 *    or its process is dead and the remover claimed it) and acknowledged to
 *    its end (by any URI; a segment without a block is removed by `mlo gc`
 *    only, once its process is dead):
 *    retention after its ack's time (MLO_STORE_RETENTION, default 7 days;
 *    0 at once, -1 never), or earlier when the store is over
 *    MLO_STORE_MAX_BYTES (oldest acknowledgement first).  Its runs are first
 *    folded into their summaries, which stay (only `mlo rm` removes them):
 *    `mlo ls`, `show` and `gate` keep every run's params, tags, status,
 *    datasets and each metric's latest value, count, min and max; `show
 *    --history` lists the points still in segments and says how many were
 *    removed.  Its ack goes with it.  Segments not acknowledged to their
 *    end (unsent; every segment of a local store) are never removed, cap or
 *    not: over the cap the running client reports it through the error
 *    callback (at most every 10 minutes) and goes on.
 *  - The writer rolls its segment over by age (retention / 8, 1 min to 1 h)
 *    and by size (cap / 8, 64 KiB to 64 MiB), so that what is acknowledged
 *    becomes removable; a running client's writer makes a pass at most
 *    once a minute, `mlo gc` on demand.
 *  - An ack whose segment is gone; an artifact blob whose manifest is gone
 *    (uploaded: the uploader removes manifest, then blob) and temp files,
 *    of dead processes the remover claimed; acks/<procid>.lock and .target
 *    of a dead process once nothing else of it is left (the lock file
 *    while its flock is held).
 *  - `mlo rm RUN...`: the run's events from every segment (a segment shared
 *    with other runs is rewritten without them, its ack resized; refused
 *    while a live process writes it or when it is only partly
 *    acknowledged), its summary, its staged artifacts.
 *  - /dev/shm/mlo-ring-*: a dead process's queue file (its flock free)
 *    whose store no longer refers to it (the store or its rings/ link gone)
 *    is removed by every client's open and by `mlo gc`
 *    (mlo__store_reclaim_shm); a file its store still links is recovered
 *    by the next client or `mlo sync`/`gc` there; files without an owner
 *    record (older mlo) are never touched.
 */
#define _GNU_SOURCE
#include "mlo_store.h"

#include "mlo_buf.h"
#include "mlo_fs.h"
#include "mlo_log.h"
#include "mlo_payload.h"
#include "mlo_ring.h"
#include "mlo_runs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_RECOVERED 999999u
#ifndef MLO_SHM_DIR
#define MLO_SHM_DIR "/dev/shm"
#endif

/* Where queue files live: $MLO_SHM_DIR when set (a container's small
 * /dev/shm, or tests that must not see each other's files), else tmpfs. */
static const char *shm_dir(void) {
    const char *d = getenv("MLO_SHM_DIR");
    return d && *d ? d : MLO_SHM_DIR;
}

typedef struct map_ent {
    char lid[33];
    char *sid;
} map_ent;

struct mlo_store {
    char *dir;
    char *uri; /* NULL: local store */
    char procid[48];
    mlo_env *env; /* reports and counts recovery; NULL: quiet */
    int lock_fd;
    int ring_fd;
    void *ring_mem;
    size_t ring_len;
    mlo_queue *ring;
    int runs_fd;
    /* adopted segments, and the locks that claim their processes */
    mlo_seg_ref *adopted;
    size_t nadopted;
    int *locks;
    char (*claimed)[48]; /* procid of each lock */
    size_t nlocks;
    /* runs.map, cached */
    pthread_mutex_t map_lock;
    map_ent *map;
    size_t nmap, capmap;
    off_t map_read; /* bytes of runs.map already parsed */
    int fsync_policy;
    uint64_t recovered;
    size_t live_skipped; /* processes skipped because they are alive (sync) */
};

static void report(mlo_store *s, int st, int rate_limited, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(mlo_store *s, int st, int rate_limited, const char *fmt, ...) {
    if (!s->env)
        return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mlo__env_report(s->env, st, rate_limited, "%s", msg);
}

static char *path_of(const mlo_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *path_of(const mlo_store *s, const char *fmt, ...) {
    mlo_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    char tail[512];
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    if (mlo__buf_printf(&b, "%s/%s", s->dir, tail) != 0) {
        mlo__buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Opens and exclusively locks <store>/acks/<procid>.lock without waiting.
 * The fd, or -1 (locked by someone else, or an error). */
static int lock_procid(const mlo_store *s, const char *procid) {
    char *p = path_of(s, "acks/%s.lock", procid);
    if (!p)
        return -1;
    int fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    free(p);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int keep_lock(mlo_store *s, int fd, const char *procid) {
    int *n = realloc(s->locks, (s->nlocks + 1) * sizeof *n);
    if (!n)
        return -1;
    s->locks = n;
    char(*c)[48] = realloc(s->claimed, (s->nlocks + 1) * sizeof *c);
    if (!c)
        return -1;
    s->claimed = c;
    snprintf(s->claimed[s->nlocks], 48, "%s", procid);
    s->locks[s->nlocks++] = fd;
    return 0;
}

const char *mlo__store_procid(const mlo_store *s) {
    return s->procid;
}
const char *mlo__store_uri(const mlo_store *s) {
    return s->uri;
}
int mlo__store_fsync_policy(const mlo_store *s) {
    return s->fsync_policy;
}
mlo_queue *mlo__store_ring(mlo_store *s) {
    return s->ring;
}
const char *mlo__store_dir(const mlo_store *s) {
    return s->dir;
}
static int is_claimed(const mlo_store *s, const char *procid);
int mlo__store_owns(const mlo_store *s, const char *procid) {
    return !strcmp(procid, s->procid) || is_claimed(s, procid);
}
const mlo_seg_ref *mlo__store_adopted(const mlo_store *s, size_t *n) {
    *n = s->nadopted;
    return s->adopted;
}

char *mlo__store_seg_path(const mlo_store *s, const char *procid, uint32_t n) {
    return path_of(s, "segments/%s-%06u.seg", procid, n);
}

/* ---- acks ------------------------------------------------------------------ */

uint64_t mlo__store_ack_get(mlo_store *s, const char *procid, uint32_t n) {
    char *p = path_of(s, "acks/%s-%06u.ack", procid, n);
    if (!p)
        return 0;
    char *t = mlo__fs_read_file(p, NULL);
    free(p);
    if (!t)
        return 0;
    unsigned long long off = 0;
    char uri[2048] = "";
    int k = sscanf(t, "%20llu %2047s", &off, uri);
    free(t);
    if (k < 1)
        return 0;
    if (strcmp(uri, s->uri ? s->uri : "") != 0)
        return 0; /* acknowledged by another server */
    return off;
}

int mlo__store_ack_set(mlo_store *s, const char *procid, uint32_t n, uint64_t off, int do_fsync) {
    char *p = path_of(s, "acks/%s-%06u.ack", procid, n);
    if (!p)
        return -1;
    int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    free(p);
    if (fd < 0)
        return -1;
    char line[2130];
    /* the acknowledgement's time (the env's clock: tests inject it) comes
     * last, so that readers from before it (offset, URI) read these lines */
    int64_t now_ms = mlo__clock_now_ms(s->env ? mlo__env_clock(s->env) : NULL);
    int len = snprintf(line, sizeof line, "%020llu %s %020lld\n", (unsigned long long)off,
                       s->uri ? s->uri : "", (long long)now_ms);
    /* One pwrite at 0 of a line whose length never changes for a store+URI:
     * the offset is replaced in place. */
    int rc = len > 0 && pwrite(fd, line, (size_t)len, 0) == len ? 0 : -1;
    if (rc == 0 && ftruncate(fd, len) != 0)
        rc = -1;
    if (rc == 0 && do_fsync)
        fdatasync(fd);
    close(fd);
    return rc;
}

int mlo__store_ack_read(const mlo_store *s, const char *name, uint64_t *off, int64_t *ack_ms) {
    char *p = path_of(s, "acks/%s", name);
    if (!p)
        return 0;
    struct stat sb;
    char *t = stat(p, &sb) == 0 ? mlo__fs_read_file(p, NULL) : NULL;
    free(p);
    if (!t)
        return 0;
    unsigned long long o = 0;
    long long ms = -1;
    char uri[2048] = "";
    int k = sscanf(t, "%20llu %2047s %20lld", &o, uri, &ms);
    free(t);
    if (k < 1)
        return 0;
    *off = o;
    /* ack files from before the time field: their modification time */
    *ack_ms = k == 3 && ms >= 0 ? (int64_t)ms
                                : (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    return 1;
}

/* ---- runs.map -------------------------------------------------------------- */

static void map_load_locked(mlo_store *s) {
    char *p = path_of(s, "runs.map");
    if (!p)
        return;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size <= s->map_read) {
        close(fd);
        return;
    }
    size_t n = (size_t)(sb.st_size - s->map_read);
    char *buf = malloc(n + 1);
    ssize_t got = buf ? pread(fd, buf, n, s->map_read) : -1;
    close(fd);
    if (got <= 0) {
        free(buf);
        return;
    }
    buf[got] = 0;
    /* only whole lines; a partial last line is read again next time */
    char *line = buf, *nl;
    while ((nl = memchr(line, '\n', (size_t)(buf + got - line)))) {
        *nl = 0;
        char lid[64], sid[128], uri[2048] = "";
        if (sscanf(line, "%63s %127s %2047s", lid, sid, uri) >= 2 && strlen(lid) == 32 &&
            strcmp(uri, s->uri ? s->uri : "") == 0) {
            if (s->nmap == s->capmap) {
                size_t nc = s->capmap ? 2 * s->capmap : 64;
                map_ent *m = realloc(s->map, nc * sizeof *m);
                if (!m)
                    break;
                s->map = m;
                s->capmap = nc;
            }
            memcpy(s->map[s->nmap].lid, lid, 33);
            s->map[s->nmap].sid = strdup(sid);
            if (s->map[s->nmap].sid)
                s->nmap++;
        }
        line = nl + 1;
    }
    s->map_read += line - buf;
    free(buf);
}

static const char *map_find_locked(mlo_store *s, const char *lid) {
    /* newest first: a later line for the same id wins */
    for (size_t i = s->nmap; i-- > 0;)
        if (memcmp(s->map[i].lid, lid, 32) == 0)
            return s->map[i].sid;
    return NULL;
}

int mlo__store_map_get(mlo_store *s, const char *lid, char **sid) {
    pthread_mutex_lock(&s->map_lock);
    const char *f = map_find_locked(s, lid);
    if (!f) {
        map_load_locked(s);
        f = map_find_locked(s, lid);
    }
    *sid = f ? strdup(f) : NULL;
    pthread_mutex_unlock(&s->map_lock);
    return *sid != NULL;
}

int mlo__store_map_put(mlo_store *s, const char *lid, const char *sid) {
    char *p = path_of(s, "runs.map");
    if (!p)
        return -1;
    char line[2300];
    int len = snprintf(line, sizeof line, "%.32s %s %s\n", lid, sid, s->uri ? s->uri : "");
    pthread_mutex_lock(&s->map_lock);
    int fd = open(p, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    free(p);
    int rc = -1;
    if (fd >= 0 && len > 0 && (size_t)len < sizeof line) {
        rc = mlo__fs_write_all(fd, line, (size_t)len);
        if (rc == 0 && fdatasync(fd) != 0)
            rc = -1;
    }
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&s->map_lock);
    return rc;
}

/* ---- the run table of a process (rings/<procid>.runs) ----------------------- */

int mlo__store_set_run(mlo_store *s, uint32_t index, const char *lid) {
    if (s->runs_fd < 0)
        return -1;
    char slot[33];
    memset(slot, 0, sizeof slot);
    memcpy(slot, lid, strnlen(lid, 32)); /* NUL-padded: resumed ids may be shorter */
    slot[32] = '\n';
    return pwrite(s->runs_fd, slot, 33, (off_t)index * 33) == 33 ? 0 : -1;
}

/* ---- recovery of dead processes' rings --------------------------------------- */

typedef struct recover_ctx {
    mlo_logw *w;
    const char *runs;
    size_t runs_len;
    mlo_buf scratch;
    mlo_startrun sr;
    uint64_t n, orphans;
    int failed;
} recover_ctx;

static void recover_rec(void *ctx, const mlo_rec *r) {
    recover_ctx *x = ctx;
    if (x->failed || r->type == MLO_REC_FLUSH)
        return;
    char lid[33];
    if ((size_t)r->run * 33 + 33 > x->runs_len || x->runs[(size_t)r->run * 33 + 32] != '\n') {
        x->orphans++; /* no local id recorded for that run: cannot be attributed */
        return;
    }
    memcpy(lid, x->runs + (size_t)r->run * 33, 32);
    lid[32] = 0;
    mlo_log_event ev;
    int rc = mlo__payload_to_event(r, lid, &x->scratch, &x->sr, &ev);
    if (rc < 0 || (rc > 0 && mlo__logw_add(x->w, &ev) != 0))
        x->failed = 1;
    else if (rc > 0)
        x->n++;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Removes a ring file, and its tmpfs target when it is a symlink. */
static void unlink_ring(const char *p) {
    char target[512];
    ssize_t n = readlink(p, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        unlink(target);
    }
    unlink(p);
}

/* Recovers the ring of dead process `procid` (its acks lock is held). */
static void recover_ring(mlo_store *s, const char *procid) {
    char *ring = path_of(s, "rings/%s.ring", procid);
    char *runs = path_of(s, "rings/%s.runs", procid);
    char *seg = mlo__store_seg_path(s, procid, SEG_RECOVERED);
    char *tmp = seg ? path_of(s, "segments/%s-%06u.seg.tmp", procid, SEG_RECOVERED) : NULL;
    char err[256] = "";
    int fd = -1;
    void *mem = MAP_FAILED;
    struct stat sb;
    recover_ctx x = {0};
    if (!ring || !runs || !seg || !tmp)
        goto out;
    fd = open(ring, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            goto remove; /* a tmpfs ring gone with a reboot: nothing left to recover */
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        goto out; /* alive after all */
    if (file_exists(seg)) {
        /* a recovery that died after its rename: the records are in seg */
        goto remove;
    }
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0)
        goto remove;
    mem = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        goto out;
    x.runs = mlo__fs_read_file(runs, &x.runs_len);
    unlink(tmp);
    x.w = mlo__logw_create(tmp, err, sizeof err);
    if (!x.w) {
        report(s, MLO_ERR_STORE, 0, "store %s: cannot recover the queue of process %s: %s", s->dir,
               procid, err);
        goto out;
    }
    uint64_t skipped = 0;
    long n = mlo__ring_recover(mem, (size_t)sb.st_size, recover_rec, &x, &skipped);
    if (n < 0)
        report(s, MLO_ERR_STORE, 0,
               "store %s: the queue file of process %s is not readable; removed", s->dir, procid);
    mlo_log_off end;
    if (x.failed || (x.n && mlo__logw_commit(x.w, 1, &end) != 0)) {
        report(s, MLO_ERR_STORE, 0,
               "store %s: cannot write the recovered events of process %s (%s); its queue "
               "file is kept for a later try",
               s->dir, procid, strerror(errno));
        mlo__logw_close(x.w);
        x.w = NULL;
        unlink(tmp);
        goto out;
    }
    mlo__logw_close(x.w);
    x.w = NULL;
    if (x.n) {
        if (rename(tmp, seg) != 0)
            goto out;
        char *sd = path_of(s, "segments");
        if (sd)
            mlo__fs_fsync_dir(sd);
        free(sd);
    } else {
        unlink(tmp);
    }
    s->recovered += x.n;
    if (s->env && x.n)
        mlo__env_stat(s->env, MLO_STAT_RECOVERED, x.n);
    if (x.orphans)
        report(s, MLO_ERR_STORE, 0,
               "store %s: %" PRIu64 " events of process %s name no known run; dropped", s->dir,
               x.orphans, procid);
remove:
    unlink(runs);
    unlink_ring(ring);
out:
    if (mem != MAP_FAILED)
        munmap(mem, (size_t)sb.st_size);
    if (fd >= 0)
        close(fd);
    mlo__buf_free(&x.scratch);
    free((void *)x.runs);
    free(ring);
    free(runs);
    free(seg);
    free(tmp);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in <store>/<sub> ending in suffix, sorted. */
static char **list_dir(const mlo_store *s, const char *sub, const char *suffix, size_t *n) {
    *n = 0;
    char *p = path_of(s, "%s", sub);
    DIR *d = p ? opendir(p) : NULL;
    free(p);
    if (!d)
        return NULL;
    char **v = NULL;
    size_t cap = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0 || l >= 200)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
        }
        v[*n] = strdup(e->d_name);
        if (v[*n])
            (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int is_claimed(const mlo_store *s, const char *procid) {
    for (size_t i = 0; i < s->nlocks; i++)
        if (!strcmp(s->claimed[i], procid))
            return 1;
    return 0;
}

/* all_targets: sync (every dead process) instead of those that sent to uri. */
static void recover_and_adopt(mlo_store *s, int all_targets) {
    size_t nr, ns;
    char **rings = list_dir(s, "rings", ".ring", &nr);
    for (size_t i = 0; i < nr; i++) {
        char procid[48];
        size_t l = strlen(rings[i]) - 5;
        if (l >= sizeof procid)
            continue;
        memcpy(procid, rings[i], l);
        procid[l] = 0;
        if (!strcmp(procid, s->procid))
            continue;
        int fd = lock_procid(s, procid);
        if (fd < 0) {
            s->live_skipped++;
            continue;
        }
        recover_ring(s, procid);
        close(fd);
    }
    free_list(rings, nr);

    if (!all_targets && !s->uri)
        return; /* a local store sends nothing */
    char **segs = list_dir(s, "segments", ".seg", &ns);
    for (size_t i = 0; i < ns; i++) {
        /* <procid>-<n>.seg, procid itself has dashes: n is after the last */
        char *dash = strrchr(segs[i], '-');
        if (!dash)
            continue;
        char procid[48];
        size_t l = (size_t)(dash - segs[i]);
        if (l == 0 || l >= sizeof procid)
            continue;
        memcpy(procid, segs[i], l);
        procid[l] = 0;
        unsigned n = (unsigned)strtoul(dash + 1, NULL, 10);
        if (!n || !strcmp(procid, s->procid))
            continue;
        if (!is_claimed(s, procid)) {
            int fd = lock_procid(s, procid);
            if (fd < 0) {
                s->live_skipped++;
                continue;
            }
            int take = all_targets;
            if (!take) {
                char *tp = path_of(s, "acks/%s.target", procid);
                char *t = tp ? mlo__fs_read_file(tp, NULL) : NULL;
                take = t && !strcmp(t, s->uri);
                free(t);
                free(tp);
            }
            if (!take || keep_lock(s, fd, procid) != 0) {
                close(fd);
                /* remember the refusal so the next segment of it is skipped fast */
                continue;
            }
        }
        /* fully acknowledged (for this server): nothing to send */
        char *sp = mlo__store_seg_path(s, procid, n);
        struct stat sb;
        int done =
            sp && stat(sp, &sb) == 0 && mlo__store_ack_get(s, procid, n) >= (uint64_t)sb.st_size;
        free(sp);
        if (done)
            continue;
        mlo_seg_ref *na = realloc(s->adopted, (s->nadopted + 1) * sizeof *na);
        if (!na)
            break;
        s->adopted = na;
        mlo_seg_ref *r = &s->adopted[s->nadopted++];
        memset(r, 0, sizeof *r);
        snprintf(r->procid, sizeof r->procid, "%s", procid);
        r->n = n;
        r->adopted = 1;
    }
    free_list(segs, ns);

    /* Artifacts (mlo_artifact.c): <procid>-<n>.art (and, for sync, .failed)
     * of dead processes not claimed above (a process may have staged
     * artifacts and no segment): claimed by the same rule. */
    for (int pass = 0; pass < (all_targets ? 2 : 1); pass++) {
        size_t na;
        char **arts = list_dir(s, "artifacts", pass ? ".failed" : ".art", &na);
        for (size_t i = 0; i < na; i++) {
            char *dash = strrchr(arts[i], '-');
            char procid[48];
            size_t l = dash ? (size_t)(dash - arts[i]) : 0;
            if (l == 0 || l >= sizeof procid)
                continue;
            memcpy(procid, arts[i], l);
            procid[l] = 0;
            if (!strcmp(procid, s->procid) || is_claimed(s, procid))
                continue;
            int fd = lock_procid(s, procid);
            if (fd < 0) {
                s->live_skipped++;
                continue;
            }
            int take = all_targets;
            if (!take) {
                char *tp = path_of(s, "acks/%s.target", procid);
                char *t = tp ? mlo__fs_read_file(tp, NULL) : NULL;
                take = t && !strcmp(t, s->uri);
                free(t);
                free(tp);
            }
            if (!take || keep_lock(s, fd, procid) != 0)
                close(fd);
        }
        free_list(arts, na);
    }
}

/* ---- open / close ------------------------------------------------------------ */

static _Atomic uint32_t client_counter;

/* The tracking URI as the store writes it (acks, .target, runs.map, artifact
 * manifests) and compares it: without the user:password@ part a URI may
 * carry, so that no credential is ever written to disk.  malloc'd. */
static char *uri_for_store(const char *uri) {
    const char *auth = strstr(uri, "://");
    if (!auth)
        return strdup(uri);
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    if (!at)
        return strdup(uri);
    size_t head = (size_t)(auth - uri), tail = strlen(at + 1);
    char *out = malloc(head + tail + 1);
    if (!out)
        return NULL;
    memcpy(out, uri, head);
    memcpy(out + head, at + 1, tail + 1);
    return out;
}

static mlo_store *store_new(const char *dir, const char *uri, mlo_env *env) {
    mlo_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lock_fd = s->ring_fd = s->runs_fd = -1;
    s->env = env;
    s->fsync_policy = env ? env->cfg->fsync_policy : MLO_FSYNC_INTERVAL;
    pthread_mutex_init(&s->map_lock, NULL);
    s->dir = strdup(dir);
    s->uri = uri ? uri_for_store(uri) : NULL;
    if (!s->dir || (uri && !s->uri)) {
        free(s->dir);
        free(s->uri);
        free(s);
        return NULL;
    }
    /* strip trailing slashes (not the root's) */
    size_t l = strlen(s->dir);
    while (l > 1 && s->dir[l - 1] == '/')
        s->dir[--l] = 0;
    return s;
}

/* The program may change its working directory later: keep an absolute path. */
static void absolute(mlo_store *s) {
    char *abs = realpath(s->dir, NULL);
    if (abs) {
        free(s->dir);
        s->dir = abs;
    }
}

static int make_layout(mlo_store *s, char *err, size_t errlen) {
    const char *subs[] = {"", "/segments", "/rings", "/acks"};
    for (size_t i = 0; i < 4; i++) {
        char *p = path_of(s, "%s", subs[i] + (i ? 1 : 0));
        if (!p)
            return MLO_ERR_NO_MEMORY;
        int rc = i == 0 ? mlo__fs_mkdir_p(s->dir, 0700)
                        : (mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0);
        int e = errno;
        free(p);
        if (rc != 0) {
            mlo__buf_errf(err, errlen, "cannot create %s%s: %s", s->dir, subs[i], strerror(e));
            return MLO_ERR_STORE;
        }
    }
    char *probe = path_of(s, "acks");
    int ok = probe && access(probe, W_OK | X_OK) == 0;
    free(probe);
    if (!ok) {
        mlo__buf_errf(err, errlen, "%s/acks is not writable", s->dir);
        return MLO_ERR_STORE;
    }
    return MLO_OK;
}

/* ---- /dev/shm: the owner record of a ring file, and reclaiming orphans ------------
 *
 * A ring file in tmpfs outlives its store if the store is deleted by hand
 * (or its process dies and nobody ever opens the store again).  So that
 * such files can be told from files someone can still recover, each one
 * carries, after the ring (which mlo__ring_recover ignores: it reads the
 * ring's own header for its size), an owner record of SHM_OWNER_LEN bytes:
 * "MLO-RING-OWNER 1\n<absolute store dir>\n<procid>\n", NUL-padded.
 * mlo__store_reclaim_shm removes a file only when (1) its flock can be
 * taken (no live process: the owner holds it for its whole life, and
 * recovery holds it while it reads), (2) it has an owner record, and (3) the
 * store's <dir>/rings/<procid>.ring is no longer a symlink to it (the store
 * or its rings directory is gone, or the ring was replaced): nobody can
 * recover it any more.  Files without an owner record (mlo before it, or a
 * creation that died before writing it) are never touched. */
#define SHM_OWNER_LEN 4096
#define SHM_OWNER_MAGIC "MLO-RING-OWNER 1\n"

static int write_owner(const mlo_store *s, int fd, size_t at) {
    char rec[SHM_OWNER_LEN];
    memset(rec, 0, sizeof rec);
    int n = snprintf(rec, sizeof rec, "%s%s\n%s\n", SHM_OWNER_MAGIC, s->dir, s->procid);
    if (n < 0 || (size_t)n >= sizeof rec)
        return 0; /* a store path too long to record: the file stays unclaimable */
    return pwrite(fd, rec, sizeof rec, (off_t)at) == (ssize_t)sizeof rec ? 0 : -1;
}

/* What reclaiming decides about one file whose flock we hold: 1 orphan, 0
 * keep.  *why gets the reason for a removal. */
static int shm_orphan(int fd, const char *path, const char **why) {
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < SHM_OWNER_LEN)
        return 0;
    char rec[SHM_OWNER_LEN + 1];
    if (pread(fd, rec, SHM_OWNER_LEN, sb.st_size - SHM_OWNER_LEN) != SHM_OWNER_LEN)
        return 0;
    rec[SHM_OWNER_LEN] = 0;
    size_t ml = strlen(SHM_OWNER_MAGIC);
    if (memcmp(rec, SHM_OWNER_MAGIC, ml) != 0)
        return 0; /* no owner record: never touched */
    char *dir = rec + ml, *nl = strchr(dir, '\n');
    if (!nl || nl == dir)
        return 0;
    *nl = 0;
    char *procid = nl + 1;
    nl = strchr(procid, '\n');
    if (!nl || nl == procid || nl - procid >= 48)
        return 0;
    *nl = 0;
    char link[PATH_MAX + 64], target[PATH_MAX];
    if (snprintf(link, sizeof link, "%s/rings/%s.ring", dir, procid) >= (int)sizeof link)
        return 0;
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            struct stat ds;
            *why = stat(dir, &ds) != 0 ? "its store is gone" : "its store no longer refers to it";
            return 1;
        }
        if (errno == EINVAL) {
            *why = "its store no longer refers to it";
            return 1; /* not a symlink: a ring file of another process there */
        }
        return 0; /* EACCES and the like: cannot tell, keep */
    }
    target[n] = 0;
    if (strcmp(target, path) == 0)
        return 0; /* the store still has it: the next client there recovers it */
    *why = "its store no longer refers to it";
    return 1;
}

size_t mlo__store_reclaim_shm(int dry_run,
                              void (*fn)(void *ctx, const char *path, uint64_t bytes,
                                         const char *why),
                              void *ctx) {
    const char *dir = shm_dir();
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "mlo-ring-", 9) != 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        /* O_NOFOLLOW: only regular files of our own; others' are 0600 and
         * fail to open, which is a "keep" */
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        const char *why = NULL;
        struct stat sb;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &sb) == 0 && sb.st_uid == geteuid() &&
            shm_orphan(fd, path, &why)) {
            /* unlinked while we hold the flock: nobody can be recovering it */
            if (dry_run || unlink(path) == 0) {
                removed++;
                if (fn)
                    fn(ctx, path, (uint64_t)sb.st_size, why);
            }
        }
        close(fd);
    }
    closedir(d);
    return removed;
}

static int create_ring(mlo_store *s, size_t capacity, int64_t full_wait_ns, char *err,
                       size_t errlen) {
    size_t bytes = mlo__ring_bytes(capacity);
    char *p = path_of(s, "rings/%s.ring", s->procid);
    char *rp = path_of(s, "rings/%s.runs", s->procid);
    if (!bytes || !p || !rp) {
        free(p);
        free(rp);
        return MLO_ERR_NO_MEMORY;
    }
    int st = MLO_ERR_STORE;
    int e;
    /* In tmpfs when there is one, behind a symlink: a disk file's pages are
     * written back every few seconds, and the next write to each then
     * faults, on ext4 behind the journal (milliseconds when the writer
     * fsyncs); tmpfs pages never are.  A crash keeps either; a reboot keeps
     * neither reliably (the ring is never fsynced). */
    char shm[PATH_MAX];
    char rnd[33];
    mlo__runs_new_id(rnd);
    if (snprintf(shm, sizeof shm, "%s/mlo-ring-%s-%.8s", shm_dir(), s->procid, rnd) >=
        (int)sizeof shm)
        shm[0] = 0; /* too long: straight to the store's own file below */
    s->ring_fd = shm[0] ? open(shm, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600) : -1;
    if (s->ring_fd >= 0) {
        if (flock(s->ring_fd, LOCK_EX | LOCK_NB) != 0 ||
            posix_fallocate(s->ring_fd, 0, (off_t)(bytes + SHM_OWNER_LEN)) != 0 ||
            write_owner(s, s->ring_fd, bytes) != 0 || symlink(shm, p) != 0) {
            close(s->ring_fd);
            s->ring_fd = -1;
            unlink(shm);
        }
    }
    if (s->ring_fd < 0) {
        s->ring_fd = open(p, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
        if (s->ring_fd < 0 || flock(s->ring_fd, LOCK_EX | LOCK_NB) != 0) {
            mlo__buf_errf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            goto fail;
        }
        /* Reserve the blocks now: a page of a MAP_SHARED file that cannot
         * get a block (disk full) would be a SIGBUS in a log call later. */
        e = posix_fallocate(s->ring_fd, 0, (off_t)bytes);
        if (e != 0) {
            mlo__buf_errf(err, errlen, "cannot reserve %zu bytes for %s: %s", bytes, p,
                          strerror(e));
            goto fail;
        }
    }
    s->ring_mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->ring_fd, 0);
    if (s->ring_mem == MAP_FAILED) {
        s->ring_mem = NULL;
        mlo__buf_errf(err, errlen, "cannot map %s: %s", p, strerror(errno));
        goto fail;
    }
    s->ring_len = bytes;
    /* zeroes the whole block: every page faulted in, writable, before the
     * first log call */
    s->ring = mlo__ring_init_in(s->ring_mem, bytes, full_wait_ns);
    if (!s->ring) {
        mlo__buf_errf(err, errlen, "cannot lay the ring over %s", p);
        goto fail;
    }
    s->runs_fd = open(rp, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (s->runs_fd < 0) {
        mlo__buf_errf(err, errlen, "cannot create %s: %s", rp, strerror(errno));
        goto fail;
    }
    free(p);
    free(rp);
    return MLO_OK;
fail:
    if (s->ring_mem)
        munmap(s->ring_mem, bytes);
    s->ring_mem = NULL;
    s->ring = NULL;
    if (s->ring_fd >= 0) {
        close(s->ring_fd);
        unlink_ring(p);
    }
    s->ring_fd = -1;
    if (s->runs_fd >= 0)
        close(s->runs_fd);
    s->runs_fd = -1;
    unlink(rp);
    free(p);
    free(rp);
    return st;
}

static void store_free(mlo_store *s) {
    for (size_t i = 0; i < s->nlocks; i++)
        close(s->locks[i]);
    free(s->locks);
    free(s->claimed);
    free(s->adopted);
    for (size_t i = 0; i < s->nmap; i++)
        free(s->map[i].sid);
    free(s->map);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->map_lock);
    free(s->dir);
    free(s->uri);
    free(s);
}

int mlo__store_open(const char *dir, const char *uri, size_t capacity, int64_t full_wait_ns,
                    mlo_env *env, mlo_store **out, char *err, size_t errlen) {
    *out = NULL;
    mlo_store *s = store_new(dir, uri, env);
    if (!s)
        return MLO_ERR_NO_MEMORY;
    int st = make_layout(s, err, errlen);
    if (st != MLO_OK) {
        store_free(s);
        return st;
    }
    absolute(s);
    snprintf(s->procid, sizeof s->procid, "%013lld-%ld-%u", (long long)mlo__clock_now_ms(NULL),
             (long)getpid(), (unsigned)atomic_fetch_add(&client_counter, 1));
    s->lock_fd = lock_procid(s, s->procid);
    char *tp = path_of(s, "acks/%s.target", s->procid);
    int tfd = tp ? open(tp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600) : -1;
    free(tp);
    if (s->lock_fd < 0 || tfd < 0 ||
        mlo__fs_write_all(tfd, s->uri ? s->uri : "", s->uri ? strlen(s->uri) : 0) != 0) {
        mlo__buf_errf(err, errlen, "cannot write in %s/acks: %s", s->dir, strerror(errno));
        if (tfd >= 0)
            close(tfd);
        store_free(s);
        return MLO_ERR_STORE;
    }
    close(tfd);
    recover_and_adopt(s, 0);
    /* queue files in /dev/shm of dead processes whose store is gone */
    mlo__store_reclaim_shm(0, NULL, NULL);
    if (capacity) {
        st = create_ring(s, capacity, full_wait_ns, err, errlen);
        if (st != MLO_OK) {
            /* the store still works for segments; the queue lives in memory */
            report(s, MLO_ERR_STORE, 0,
                   "store %s: %s; the event queue lives in memory (a crash loses what it holds)",
                   s->dir, err);
            err[0] = 0;
        }
    }
    *out = s;
    return MLO_OK;
}

void mlo__store_close(mlo_store *s, int ring_empty) {
    if (!s)
        return;
    if (s->ring_mem) {
        munmap(s->ring_mem, s->ring_len);
        if (ring_empty) {
            char *p = path_of(s, "rings/%s.ring", s->procid);
            char *rp = path_of(s, "rings/%s.runs", s->procid);
            if (rp)
                unlink(rp);
            if (p)
                unlink_ring(p);
            free(p);
            free(rp);
        }
    }
    if (s->ring_fd >= 0)
        close(s->ring_fd);
    if (s->runs_fd >= 0)
        close(s->runs_fd);
    store_free(s);
}

int mlo__store_open_all(const char *dir, const char *uri, mlo_env *env, mlo_store **out, char *err,
                        size_t errlen) {
    *out = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        mlo__buf_errf(err, errlen, "%s: not a store directory", dir);
        return MLO_ERR_STORE;
    }
    mlo_store *s = store_new(dir, uri, env);
    if (!s)
        return MLO_ERR_NO_MEMORY;
    absolute(s);
    /* a procid of our own only to tell our files from others' */
    snprintf(s->procid, sizeof s->procid, "sync-%ld", (long)getpid());
    recover_and_adopt(s, 1);
    *out = s;
    return MLO_OK;
}

/* `mlo gc` and `mlo rm`: every dead process's files are claimed (their
 * acks locks taken and kept), whatever they hold; with recover, dead
 * processes' rings are recovered into segments first. */
int mlo__store_open_admin(const char *dir, int recover, mlo_env *env, mlo_store **out, char *err,
                          size_t errlen) {
    *out = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        mlo__buf_errf(err, errlen, "%s: not a store directory", dir);
        return MLO_ERR_STORE;
    }
    mlo_store *s = store_new(dir, NULL, env);
    if (!s)
        return MLO_ERR_NO_MEMORY;
    absolute(s);
    snprintf(s->procid, sizeof s->procid, "admin-%ld", (long)getpid());
    if (recover)
        recover_and_adopt(s, 1);
    /* every procid has an acks/<procid>.lock (mlo__store_open makes it):
     * the live ones are counted here, once each */
    s->live_skipped = 0;
    size_t n;
    char **locks = list_dir(s, "acks", ".lock", &n);
    for (size_t i = 0; i < n; i++) {
        char procid[48];
        size_t l = strlen(locks[i]) - 5;
        if (l == 0 || l >= sizeof procid)
            continue;
        memcpy(procid, locks[i], l);
        procid[l] = 0;
        if (is_claimed(s, procid))
            continue;
        int fd = lock_procid(s, procid);
        if (fd < 0) {
            s->live_skipped++;
            continue;
        }
        if (keep_lock(s, fd, procid) != 0)
            close(fd);
    }
    free_list(locks, n);
    *out = s;
    return MLO_OK;
}

size_t mlo__store_live_skipped(const mlo_store *s) {
    return s->live_skipped;
}
