/*
 * mlo_client.c - client and run handles, the log calls, flush, statistics
 * and the error callback.
 *
 * Owns: the client (config, store, queue, run table, writer and sender
 * threads) and the runs.  A log call validates, takes the time and pushes one
 * record into the queue: no lock, no allocation, no system call of its own
 * (the queue's push is the only shared write).  With a store (the default)
 * the queue is a ring laid over a file in the store (mlo_store.c), so what
 * a log call put there survives the process.
 *
 * Runs: mlo_start_run gives the run a local id (random, 32 hex), records
 * index -> local id in the store's run table and pushes a START_RUN record
 * (experiment, name, start time, system tags, parent) through the queue like
 * any event; the sender creates the run on the server and hands its server id
 * back (mlo__client_run_created), which start_run waits for within a bound.
 * mlo_resume_run stays synchronous (it checks the run exists) and uses the
 * server id as the local id.
 *
 * Threads: log calls, start/end run, flush and stat from any thread; close
 * from one thread once the others are done.
 */
#define _GNU_SOURCE
#include "mlo_internal.h"

#include "mlo_artifact.h"
#include "mlo_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/random.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small shared helpers ------------------------------------------------ */

int64_t mlo__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mlo__mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

MLO_API const char *mlo_version(void) {
#define MLO_STR2(x) #x
#define MLO_STR(x) MLO_STR2(x)
    return MLO_STR(MLO_VERSION_MAJOR) "." MLO_STR(MLO_VERSION_MINOR) "." MLO_STR(
        MLO_VERSION_PATCH);
}

MLO_API unsigned mlo_version_number(void) {
    return MLO_VERSION_NUMBER;
}

MLO_API const char *mlo_strerror(int status) {
    switch (status) {
    case MLO_OK: return "ok";
    case MLO_ERR_INVALID_ARGUMENT: return "invalid argument";
    case MLO_ERR_INVALID_KEY: return "invalid key (MLflow allows 1-250 letters, digits, _ - . space / : as a normalized relative path)";
    case MLO_ERR_INVALID_UTF8: return "string is not valid UTF-8";
    case MLO_ERR_INVALID_STATUS: return "invalid run status";
    case MLO_ERR_QUEUE_FULL: return "event queue full: event dropped";
    case MLO_ERR_CLOSED: return "client is closed";
    case MLO_ERR_NO_MEMORY: return "out of memory";
    case MLO_ERR_TIMEOUT: return "timed out";
    case MLO_ERR_NETWORK: return "tracking server unreachable";
    case MLO_ERR_TLS: return "TLS failure";
    case MLO_ERR_SERVER_INVALID: return "server refused the request as invalid";
    case MLO_ERR_ALREADY_EXISTS: return "resource already exists";
    case MLO_ERR_NOT_FOUND: return "resource does not exist";
    case MLO_ERR_PERMISSION: return "permission denied or not authenticated";
    case MLO_ERR_RATE_LIMITED: return "rate limited by the server";
    case MLO_ERR_SERVER: return "server error";
    case MLO_ERR_PROTOCOL: return "unexpected answer from the server";
    case MLO_ERR_CONFIG: return "invalid or missing configuration";
    case MLO_ERR_NOT_SUPPORTED: return "not supported yet";
    case MLO_ERR_INTERNAL: return "internal error";
    case MLO_WARN_TRUNCATED: return "value truncated to the server's limit";
    case MLO_WARN_RETRY: return "request retried";
    case MLO_ERR_STORE: return "store directory unusable (see the error callback)";
    case MLO_ERR_IO: return "local file could not be read or written";
    case MLO_ERR_INVALID_PATH: return "invalid artifact path";
    case MLO_ERR_ARTIFACTS_NOT_PROXIED:
        return "the run's artifact store is not served by the tracking server (start it with "
               "--serve-artifacts)";
    default: return "unknown status";
    }
}

void mlo__stat_add(mlo_client *c, mlo_stat which, uint64_t n) {
    /* relaxed: counters publish nothing but themselves */
    atomic_fetch_add_explicit(&c->st[which], n, memory_order_relaxed);
}

void mlo__report(mlo_client *c, int status, int rate_limited, const char *fmt, ...) {
    if (!c->cfg.error_fn)
        return;
    if (rate_limited) {
        /* at most 20 messages a second; the rest are counted in stats only */
        int64_t now = mlo__now_ms() / 1000;
        int64_t win = atomic_load_explicit(&c->err_window_start_ms, memory_order_relaxed);
        if (win != now &&
            atomic_compare_exchange_strong_explicit(&c->err_window_start_ms, &win, now,
                                                    memory_order_relaxed, memory_order_relaxed))
            atomic_store_explicit(&c->err_in_window, 0, memory_order_relaxed);
        if (atomic_fetch_add_explicit(&c->err_in_window, 1, memory_order_relaxed) >= 20)
            return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->cfg.error_fn(c->cfg.error_user, (mlo_status)status, msg);
}

mlo_run *mlo__client_run(mlo_client *c, uint32_t index) {
    /* acquire: pairs with the release store that published the chunk */
    mlo_run *chunk =
        atomic_load_explicit(&c->run_chunks[index / MLO_RUN_CHUNK], memory_order_acquire);
    return chunk ? &chunk[index % MLO_RUN_CHUNK] : NULL;
}

static uint32_t lid_bucket(const char *lid) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 32 && lid[i]; i++)
        h = (h ^ (unsigned char)lid[i]) * 16777619u;
    return h & (LID_BUCKETS - 1);
}

mlo_run *mlo__client_run_by_lid(mlo_client *c, const char *lid) {
    mlo_run *found = NULL;
    pthread_mutex_lock(&c->runs_lock);
    if (c->lid_heads)
        for (uint32_t i = c->lid_heads[lid_bucket(lid)]; i;) {
            mlo_run *r = mlo__client_run(c, i - 1);
            if (!strncmp(r->local_id, lid, 32)) {
                found = r;
                break;
            }
            i = r->lid_next;
        }
    pthread_mutex_unlock(&c->runs_lock);
    return found;
}

/* Sets *slot to a copy of v if it is still NULL.  Readers load it with
 * acquire: the string is complete before the pointer is seen. */
static void set_once(_Atomic(char *) *slot, const char *v) {
    if (!v || atomic_load_explicit(slot, memory_order_acquire))
        return;
    char *copy = strdup(v);
    char *expected = NULL;
    if (!copy ||
        !atomic_compare_exchange_strong_explicit(slot, &expected, copy, memory_order_release,
                                                 memory_order_acquire))
        free(copy);
}

void mlo__client_run_created(mlo_client *c, const char *lid, const char *server_id,
                             const char *exp_id, int st) {
    mlo_run *r = mlo__client_run_by_lid(c, lid);
    if (!r)
        return;
    pthread_mutex_lock(&c->runs_lock);
    if (st == MLO_OK) {
        set_once(&r->server_id, server_id);
        set_once(&r->experiment_id, exp_id);
    } else {
        atomic_store_explicit(&r->create_status, st, memory_order_release);
    }
    pthread_cond_broadcast(&c->runs_cond);
    pthread_mutex_unlock(&c->runs_lock);
}

void mlo__new_local_id(char out[33]) {
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof b) {
        /* no entropy source: time, pid and a counter are unique enough here */
        static _Atomic uint64_t ctr;
        uint64_t x = (uint64_t)mlo__now_ms() ^ ((uint64_t)getpid() << 40);
        uint64_t y = (uint64_t)mlo__mono_ns() ^ atomic_fetch_add(&ctr, 1);
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = 0;
}

/* ---- process-wide state: the client registry, fork and exit ----------------
 *
 * Every client ever opened is on `registry` (under reg_lock) until the
 * process ends: open ones, and closed ones as tombstones (their magic says
 * closed; everything but the struct and its run table is freed), so a call on
 * a closed client or one of its runs answers MLO_ERR_CLOSED instead of
 * touching freed memory.
 *
 * fork(): the child has none of the parent's threads, so a client inherited
 * across fork cannot ship anything.  The atfork child handler bumps
 * mlo__fork_gen; every call compares it with the generation the client was opened
 * in and answers MLO_ERR_CLOSED on a mismatch: nothing in the child ever waits
 * for a thread that does not exist.  The child opens its own client
 * (mlo_resume_run joins the parent's run).
 *
 * exit(): an atexit handler flushes every open client of this process within
 * its close timeout, so events logged just before exit() are delivered (or,
 * with the store, at least written to it) and exit never hangs longer. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mlo_client *registry;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
/* relaxed everywhere: a generation number written in the single-threaded
 * child right after fork, read by that same child's threads created later */
_Atomic unsigned mlo__fork_gen; /* mlo_internal.h: mlo__client_forked */

static void atfork_child(void) {
    atomic_fetch_add_explicit(&mlo__fork_gen, 1, memory_order_relaxed);
    /* the lock may have been held by a parent thread at fork: start afresh */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    reg_lock = fresh;
}


static void flush_at_exit(void);

static void proc_init(void) {
    pthread_atfork(NULL, NULL, atfork_child);
    atexit(flush_at_exit);
}

static int client_ok(const mlo_client *c) {
    return c && c->magic == MLO_CLIENT_MAGIC && !mlo__client_forked(c);
}
static int run_ok(const mlo_run *r) {
    return r && r->magic == MLO_RUN_MAGIC && client_ok(r->client);
}
/* Why a client handle is not usable: closed (or inherited across fork) is
 * MLO_ERR_CLOSED, anything else MLO_ERR_INVALID_ARGUMENT. */
static int client_bad(const mlo_client *c) {
    if (c && (c->magic == MLO_CLIENT_CLOSED_MAGIC ||
              (c->magic == MLO_CLIENT_MAGIC && mlo__client_forked(c))))
        return MLO_ERR_CLOSED;
    return MLO_ERR_INVALID_ARGUMENT;
}
static int run_bad(const mlo_run *r) {
    if (r && r->magic == MLO_RUN_MAGIC)
        return client_bad(r->client);
    return MLO_ERR_INVALID_ARGUMENT;
}

int mlo__client_check(const mlo_client *c) {
    if (!client_ok(c))
        return client_bad(c);
    if (atomic_load_explicit(&c->closing, memory_order_acquire))
        return MLO_ERR_CLOSED;
    return MLO_OK;
}

int mlo__run_check(const mlo_run *r) {
    if (!run_ok(r))
        return run_bad(r);
    return mlo__client_check(r->client);
}

/* ---- open / close --------------------------------------------------------- */

MLO_API int mlo_client_open(const mlo_options_t *opts, mlo_client_t **out) {
    if (!out)
        return MLO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    mlo_client *c = calloc(1, sizeof *c);
    if (!c)
        return MLO_ERR_NO_MEMORY;
    char err[512] = "";
    int st = mlo__config_resolve(opts, &c->cfg, err, sizeof err);
    if (st != MLO_OK) {
        /* the callback lives in opts; report through it before giving up */
        mlo__report(c, st, 0, "mlo_client_open: %s", err);
        free(c);
        return st;
    }
    mlo__artifacts_global_init();
    pthread_once(&proc_once, proc_init);
    c->gen = atomic_load_explicit(&mlo__fork_gen, memory_order_relaxed);
    c->magic = MLO_CLIENT_MAGIC;
    pthread_mutex_init(&c->runs_lock, NULL);
    pthread_mutex_init(&c->sync_lock, NULL);
    pthread_mutex_init(&c->flush_lock, NULL);
    pthread_mutex_init(&c->hist_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->flush_cond, &ca);
    pthread_cond_init(&c->runs_cond, &ca);
    c->lid_heads = calloc(LID_BUCKETS, sizeof *c->lid_heads);

    c->qops = c->cfg.queue_impl == 1 ? &mlo__queue_mutex_ops : &mlo__queue_ring_ops;
    int64_t wait_ns =
        c->cfg.full_policy == MLO_FULL_DROP ? 0 : (int64_t)c->cfg.full_wait_ms * 1000000;
    if (c->cfg.durable) {
        /* the ring goes into the store unless the mutex queue was asked for */
        size_t cap = c->qops == &mlo__queue_ring_ops ? c->cfg.queue_bytes : 0;
        st = mlo__store_open(c->cfg.store_dir, c->cfg.tracking_uri, cap, wait_ns, c, &c->store,
                             err, sizeof err);
        if (st != MLO_OK) {
            if (!c->cfg.tracking_uri) {
                mlo__report(c, st, 0,
                            "mlo_client_open: store %s unusable: %s; with no tracking URI "
                            "events go nowhere (counted as failed)",
                            c->cfg.store_dir, err);
            } else {
                mlo__report(c, st, 0,
                            "mlo_client_open: store %s unusable: %s; events are kept in memory "
                            "only",
                            c->cfg.store_dir, err);
            }
            c->store = NULL;
        }
    }
    if (c->store) {
        c->pipe = calloc(1, sizeof *c->pipe);
        if (c->pipe) {
            pthread_mutex_init(&c->pipe->lock, NULL);
            pthread_cond_init(&c->pipe->cond, &ca);
        }
        c->queue = mlo__store_ring(c->store);
    }
    pthread_condattr_destroy(&ca);
    if (!c->queue)
        c->queue = c->qops->create(c->cfg.queue_bytes, wait_ns);
    c->sync_api = c->cfg.tracking_uri ? mlo__api_new(&c->cfg, c) : NULL;
    if (!c->queue || (c->cfg.tracking_uri && !c->sync_api) || !c->lid_heads ||
        (c->store && !c->pipe)) {
        st = MLO_ERR_NO_MEMORY;
        goto fail;
    }
    if (pthread_create(&c->shipper, NULL, mlo__shipper_main, c) != 0) {
        st = MLO_ERR_NO_MEMORY;
        goto fail;
    }
    c->shipper_started = 1;
    if (c->store && c->cfg.tracking_uri) {
        if (pthread_create(&c->sender, NULL, mlo__sender_main, c) != 0) {
            st = MLO_ERR_NO_MEMORY;
            goto fail;
        }
        c->sender_started = 1;
    }
    /* the artifact uploader (store + URI), last: nothing after it can fail */
    st = mlo__artifacts_start(c);
    if (st != MLO_OK)
        goto fail;
    pthread_mutex_lock(&reg_lock);
    c->reg_next = registry;
    registry = c;
    pthread_mutex_unlock(&reg_lock);
    *out = c;
    return MLO_OK;
fail:
    mlo__report(c, st, 0, "mlo_client_open: %s", mlo_strerror(st));
    if (c->shipper_started) {
        c->qops->close(c->queue);
        atomic_store_explicit(&c->stop, 1, memory_order_release);
        c->qops->wake(c->queue);
        pthread_join(c->shipper, NULL);
    }
    if (c->sender_started) {
        /* started before what failed (the artifact uploader): stop it now */
        atomic_store_explicit(&c->abort_at_ns, mlo__mono_ns(), memory_order_release);
        pthread_mutex_lock(&c->pipe->lock);
        c->pipe->stop = 1;
        pthread_cond_broadcast(&c->pipe->cond);
        pthread_mutex_unlock(&c->pipe->lock);
        pthread_join(c->sender, NULL);
    }
    if (c->queue && (!c->store || c->queue != mlo__store_ring(c->store)))
        c->qops->destroy(c->queue);
    if (c->store)
        mlo__store_close(c->store, 1);
    if (c->pipe) {
        pthread_mutex_destroy(&c->pipe->lock);
        pthread_cond_destroy(&c->pipe->cond);
        free(c->pipe);
    }
    if (c->sync_api)
        mlo__api_free(c->sync_api);
    free(c->lid_heads);
    mlo__config_free(&c->cfg);
    c->magic = 0;
    free(c);
    return st;
}

/* Pushes a flush marker and waits for the shipper to pass it. */
static int flush_until(mlo_client *c, int64_t deadline_ns) {
    pthread_mutex_lock(&c->flush_lock);
    uint64_t seq = ++c->flush_next;
    pthread_mutex_unlock(&c->flush_lock);

    mlo_rec h = {.type = MLO_REC_FLUSH, .step = (int64_t)seq};
    for (;;) {
        int q = c->qops->push(c->queue, &h, "", "");
        if (q == MLO_Q_OK) {
            /* a flush should not wait for the writer's next interval */
            c->qops->wake(c->queue);
            break;
        }
        if (q != MLO_Q_FULL)
            return q == MLO_Q_CLOSED ? MLO_ERR_CLOSED : MLO_ERR_INTERNAL;
        if (mlo__mono_ns() >= deadline_ns)
            return MLO_ERR_TIMEOUT;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec abs = {deadline_ns / 1000000000, deadline_ns % 1000000000};
    int st = MLO_OK;
    pthread_mutex_lock(&c->flush_lock);
    while (c->flush_done < seq) {
        if (pthread_cond_timedwait(&c->flush_cond, &c->flush_lock, &abs) == ETIMEDOUT &&
            c->flush_done < seq) {
            st = MLO_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&c->flush_lock);
    return st;
}

/* atexit: flush every client still open in this process, within its close
 * timeout.  Clients are not closed (other threads may still be using them);
 * what does not reach the server in time stays in the store. */
static void flush_at_exit(void) {
    pthread_mutex_lock(&reg_lock);
    for (mlo_client *c = registry; c; c = c->reg_next) {
        if (c->magic != MLO_CLIENT_MAGIC || mlo__client_forked(c) ||
            atomic_load_explicit(&c->closing, memory_order_acquire))
            continue;
        int64_t deadline = mlo__mono_ns() + (int64_t)c->cfg.close_timeout_ms * 1000000;
        if (flush_until(c, deadline) == MLO_OK)
            mlo__artifacts_flush(c, deadline); /* what is left stays in the store */
    }
    pthread_mutex_unlock(&reg_lock);
}

MLO_API int mlo_client_flush(mlo_client_t *c, unsigned timeout_ms) {
    if (!client_ok(c))
        return client_bad(c);
    if (atomic_load_explicit(&c->closing, memory_order_acquire))
        return MLO_ERR_CLOSED;
    int64_t deadline = mlo__mono_ns() + (int64_t)timeout_ms * 1000000;
    int st = flush_until(c, deadline);
    /* artifacts staged before the call: uploaded, refused or parked */
    if (st == MLO_OK)
        st = mlo__artifacts_flush(c, deadline);
    return st;
}

MLO_API int mlo_client_close(mlo_client_t *c) {
    if (!client_ok(c))
        return client_bad(c);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->closing, &expected, 1))
        return MLO_ERR_CLOSED;
    int64_t deadline = mlo__mono_ns() + (int64_t)c->cfg.close_timeout_ms * 1000000;
    /* the sender gives up on the network at the deadline, so close is bounded */
    atomic_store_explicit(&c->abort_at_ns, deadline, memory_order_release);
    /* histograms the program did not free emit their last intervals first */
    mlo__hist_free_all(c);
    int st = flush_until(c, deadline);
    /* artifact uploads get what is left of the deadline; the rest stays in
     * the store for the next client or `mlo sync` */
    int ast = mlo__artifacts_stop(c, deadline);
    if (st == MLO_OK)
        st = ast;
    c->qops->close(c->queue);
    atomic_store_explicit(&c->stop, 1, memory_order_release);
    c->qops->wake(c->queue);
    /* the writer empties the queue into the store (local disk: not bounded by
     * the deadline), then the sender stops at the deadline at the latest */
    if (c->shipper_started)
        pthread_join(c->shipper, NULL);
    if (c->pipe) {
        pthread_mutex_lock(&c->pipe->lock);
        c->pipe->stop = 1;
        pthread_cond_broadcast(&c->pipe->cond);
        pthread_mutex_unlock(&c->pipe->lock);
    }
    if (c->sender_started)
        pthread_join(c->sender, NULL);
    if (c->store) {
        int ring_in_store = c->queue == mlo__store_ring(c->store);
        if (!ring_in_store)
            c->qops->destroy(c->queue);
        mlo__store_close(c->store,
                         !atomic_load_explicit(&c->ring_left, memory_order_acquire));
    } else {
        c->qops->destroy(c->queue);
    }
    if (c->pipe) {
        pthread_mutex_destroy(&c->pipe->lock);
        pthread_cond_destroy(&c->pipe->cond);
        free(c->pipe);
    }
    if (c->sync_api)
        mlo__api_free(c->sync_api);
    for (size_t i = 0; i < MLO_RUN_CHUNKS; i++) {
        mlo_run *chunk = atomic_load_explicit(&c->run_chunks[i], memory_order_relaxed);
        if (!chunk)
            break;
        for (size_t j = 0; j < MLO_RUN_CHUNK; j++) {
            free(atomic_load_explicit(&chunk[j].server_id, memory_order_relaxed));
            free(atomic_load_explicit(&chunk[j].experiment_id, memory_order_relaxed));
            atomic_store_explicit(&chunk[j].server_id, NULL, memory_order_relaxed);
            atomic_store_explicit(&chunk[j].experiment_id, NULL, memory_order_relaxed);
            /* the run keeps its magic: calls on it answer MLO_ERR_CLOSED */
        }
    }
    free(c->lid_heads);
    mlo__kv_free(c->exp_cache, c->nexp_cache);
    pthread_mutex_destroy(&c->runs_lock);
    pthread_cond_destroy(&c->runs_cond);
    pthread_mutex_destroy(&c->sync_lock);
    pthread_mutex_destroy(&c->flush_lock);
    pthread_cond_destroy(&c->flush_cond);
    mlo__config_free(&c->cfg);
    /* a tombstone: the struct and its run table stay on the registry */
    c->magic = MLO_CLIENT_CLOSED_MAGIC;
    return st;
}

MLO_API int mlo_client_stat(const mlo_client_t *c, mlo_stat which, uint64_t *value) {
    if (!client_ok(c))
        return client_bad(c);
    if (!value || (unsigned)which >= MLO_STAT_COUNT)
        return MLO_ERR_INVALID_ARGUMENT;
    *value = atomic_load_explicit(&((mlo_client *)c)->st[which], memory_order_relaxed);
    return MLO_OK;
}

/* ---- runs ------------------------------------------------------------------ */

/* Registers a run with local id lid (server id and experiment id when known). */
static mlo_run *register_run(mlo_client *c, const char *lid, const char *sid, const char *exp) {
    pthread_mutex_lock(&c->runs_lock);
    uint32_t idx = c->nruns;
    mlo_run *chunk = NULL;
    if (idx < (uint32_t)MLO_RUN_CHUNK * MLO_RUN_CHUNKS) {
        chunk = atomic_load_explicit(&c->run_chunks[idx / MLO_RUN_CHUNK], memory_order_relaxed);
        if (!chunk) {
            chunk = calloc(MLO_RUN_CHUNK, sizeof *chunk);
            /* release: the zeroed chunk is visible to whoever loads the pointer */
            if (chunk)
                atomic_store_explicit(&c->run_chunks[idx / MLO_RUN_CHUNK], chunk,
                                      memory_order_release);
        }
    }
    mlo_run *r = NULL;
    char *sidc = sid ? strdup(sid) : NULL, *expc = exp ? strdup(exp) : NULL;
    if (chunk && (!sid || sidc) && (!exp || expc)) {
        r = &chunk[idx % MLO_RUN_CHUNK];
        r->index = idx;
        r->client = c;
        snprintf(r->local_id, sizeof r->local_id, "%.32s", lid);
        atomic_store_explicit(&r->server_id, sidc, memory_order_relaxed);
        atomic_store_explicit(&r->experiment_id, expc, memory_order_relaxed);
        atomic_store_explicit(&r->create_status, MLO_OK, memory_order_relaxed);
        uint32_t b = lid_bucket(r->local_id);
        r->lid_next = c->lid_heads[b];
        c->lid_heads[b] = idx + 1;
        r->magic = MLO_RUN_MAGIC;
        c->nruns++;
    } else {
        free(sidc);
        free(expc);
    }
    pthread_mutex_unlock(&c->runs_lock);
    if (r && c->store && mlo__store_set_run(c->store, r->index, r->local_id) != 0)
        mlo__report(c, MLO_ERR_STORE, 1,
                    "store: cannot record run %s in the run table: a crash before its events "
                    "are written would lose them",
                    r->local_id);
    return r;
}

static void report_api(mlo_client *c, const char *what, const mlo_api_error *e) {
    mlo__report(c, e->status, 0, "%s: %s", what, e->message[0] ? e->message : mlo_strerror(e->status));
}

static int resume(mlo_client *c, const char *run_id, mlo_run **out) {
    char *exp = NULL;
    if (c->cfg.tracking_uri) {
        mlo_api_error e;
        pthread_mutex_lock(&c->sync_lock);
        mlo__api_set_deadline(c->sync_api, 0);
        int st = mlo__api_get_run(c->sync_api, run_id, &exp, &e);
        if (st == MLO_OK)
            st = mlo__api_update_run(c->sync_api, run_id, MLO_RUN_RUNNING, -1, &e);
        pthread_mutex_unlock(&c->sync_lock);
        if (st != MLO_OK) {
            report_api(c, "resume run", &e);
            free(exp);
            return st;
        }
        /* its local id is its server id: the sender maps it through runs.map */
        if (c->store && mlo__store_map_put(c->store, run_id, run_id) != 0)
            mlo__report(c, MLO_ERR_STORE, 1, "store: cannot record resumed run %s in runs.map",
                        run_id);
    }
    mlo_run *r = register_run(c, run_id, c->cfg.tracking_uri ? run_id : NULL, exp);
    free(exp);
    if (!r)
        return MLO_ERR_NO_MEMORY;
    *out = r;
    return MLO_OK;
}

static int check_str(const char *s, int allow_null) {
    if (!s)
        return allow_null ? MLO_OK : MLO_ERR_INVALID_ARGUMENT;
    if (!mlo__utf8_valid(s, strlen(s)))
        return MLO_ERR_INVALID_UTF8;
    return MLO_OK;
}

MLO_API int mlo_resume_run(mlo_client_t *c, const char *run_id, mlo_run_t **out) {
    if (out)
        *out = NULL;
    if (!client_ok(c))
        return client_bad(c);
    if (!out || !run_id || !*run_id)
        return MLO_ERR_INVALID_ARGUMENT;
    int st = check_str(run_id, 0);
    if (st)
        return st;
    if (strlen(run_id) > 32)
        return MLO_ERR_INVALID_ARGUMENT; /* MLflow run ids are 32 hex characters */
    if (atomic_load_explicit(&c->closing, memory_order_acquire))
        return MLO_ERR_CLOSED;
    return resume(c, run_id, out);
}

/* Pushes a record that must not be dropped (START_RUN), waiting for room
 * until deadline_ns. */
static int push_must(mlo_client *c, const mlo_rec *h, const char *key, const char *val,
                     int64_t deadline_ns) {
    for (;;) {
        int q = c->qops->push(c->queue, h, key, val);
        if (q == MLO_Q_OK)
            return MLO_OK;
        if (q != MLO_Q_FULL)
            return q == MLO_Q_CLOSED ? MLO_ERR_CLOSED : MLO_ERR_INTERNAL;
        if (mlo__mono_ns() >= deadline_ns)
            return MLO_ERR_QUEUE_FULL;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

MLO_API int mlo_start_run(mlo_client_t *c, const char *experiment_name, const char *run_name,
                          mlo_run_t *parent, mlo_run_t **out) {
    if (out)
        *out = NULL;
    if (!client_ok(c))
        return client_bad(c);
    if (!out)
        return MLO_ERR_INVALID_ARGUMENT;
    if ((experiment_name && !*experiment_name) || (run_name && !*run_name))
        return MLO_ERR_INVALID_ARGUMENT;
    if (parent && (!run_ok(parent) || parent->client != c))
        return MLO_ERR_INVALID_ARGUMENT;
    int st = check_str(experiment_name, 1);
    if (!st)
        st = check_str(run_name, 1);
    if (st)
        return st;
    if (atomic_load_explicit(&c->closing, memory_order_acquire))
        return MLO_ERR_CLOSED;
    if (!parent && c->cfg.run_id_env)
        return resume(c, c->cfg.run_id_env, out);

    mlo_kv *tags = NULL;
    size_t ntags = 0;
    if (mlo__sysinfo_tags(&tags, &ntags) ||
        (run_name && mlo__kv_push(&tags, &ntags, "mlflow.runName", run_name))) {
        mlo__kv_free(tags, ntags);
        return MLO_ERR_NO_MEMORY;
    }
    /* The experiment as the call and the configuration say; the sender turns
     * a name into an id (creating the experiment if missing). */
    mlo_startrun sr = {0};
    if (experiment_name)
        sr.exp_name = experiment_name;
    else if (c->cfg.experiment_id)
        sr.exp_id = c->cfg.experiment_id;
    else if (c->cfg.experiment_name)
        sr.exp_name = c->cfg.experiment_name;
    else
        sr.exp_id = "0";
    sr.run_name = run_name;
    sr.parent = parent ? parent->local_id : NULL;
    for (size_t i = 0; i < ntags && sr.ntags < MLO_START_MAX_TAGS; i++) {
        sr.keys[sr.ntags] = tags[i].key;
        sr.values[sr.ntags++] = tags[i].value;
    }
    mlo_buf payload = {0};
    if (mlo__startrun_encode(&payload, &sr) != 0) {
        mlo__buf_free(&payload);
        mlo__kv_free(tags, ntags);
        return MLO_ERR_NO_MEMORY;
    }
    mlo__kv_free(tags, ntags);
    char lid[33];
    mlo__new_local_id(lid);
    mlo_run *r = register_run(c, lid, NULL, sr.exp_id);
    if (!r) {
        mlo__buf_free(&payload);
        return MLO_ERR_NO_MEMORY;
    }
    int64_t wait_ns = c->cfg.tracking_uri
                          ? (int64_t)((c->cfg.timeout_s < 10 ? c->cfg.timeout_s : 10) * 1e9)
                          : 0;
    /* the sender already knows the server is down: do not make every new
     * run wait the whole bound for it (relaxed: a hint) */
    if (wait_ns > 200000000 && atomic_load_explicit(&c->sender_failing, memory_order_relaxed))
        wait_ns = 200000000;
    int64_t deadline = mlo__mono_ns() + (wait_ns > 1000000000 ? wait_ns : 1000000000);
    mlo_rec h = {.type = MLO_EV_START_RUN,
                 .key_len = 32,
                 .run = r->index,
                 .val_len = (uint32_t)payload.len,
                 .timestamp = mlo__now_ms()};
    st = push_must(c, &h, lid, payload.data, deadline);
    mlo__buf_free(&payload);
    if (st != MLO_OK) {
        r->magic = 0;
        return st;
    }
    if (wait_ns) {
        /* the writer is asleep for up to a flush interval: this record
         * should not wait for that */
        c->qops->wake(c->queue);
        int64_t until = mlo__mono_ns() + wait_ns;
        struct timespec abs = {until / 1000000000, until % 1000000000};
        pthread_mutex_lock(&c->runs_lock);
        while (!atomic_load_explicit(&r->server_id, memory_order_acquire) &&
               atomic_load_explicit(&r->create_status, memory_order_acquire) == MLO_OK &&
               !atomic_load_explicit(&c->closing, memory_order_acquire)) {
            if (pthread_cond_timedwait(&c->runs_cond, &c->runs_lock, &abs) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&c->runs_lock);
        st = atomic_load_explicit(&r->create_status, memory_order_acquire);
        if (st != MLO_OK) {
            r->magic = 0; /* refused for good: no handle */
            return st;
        }
    }
    *out = r;
    return MLO_OK;
}

MLO_API const char *mlo_run_id(const mlo_run_t *r) {
    if (!run_ok(r))
        return NULL;
    /* acquire: pairs with set_once's release; the string is complete */
    const char *sid = atomic_load_explicit(&((mlo_run *)r)->server_id, memory_order_acquire);
    return sid ? sid : r->local_id;
}

MLO_API const char *mlo_run_experiment_id(const mlo_run_t *r) {
    if (!run_ok(r))
        return NULL;
    return atomic_load_explicit(&((mlo_run *)r)->experiment_id, memory_order_acquire);
}

/* ---- the log calls --------------------------------------------------------- */

static int push(mlo_run *r, int type, const char *key, size_t klen, const char *val, size_t vlen,
                int64_t ts, int64_t step, double value) {
    mlo_client *c = r->client;
    mlo_rec h = {.type = (uint16_t)type,
                 .key_len = (uint16_t)klen,
                 .run = r->index,
                 .val_len = (uint32_t)vlen,
                 .timestamp = ts,
                 .step = step,
                 .value = value};
    int q = c->qops->push(c->queue, &h, key, val);
    if (q == MLO_Q_OK)
        return MLO_OK;
    if (q == MLO_Q_FULL) {
        mlo__stat_add(c, MLO_STAT_DROPPED, 1);
        mlo__report(c, MLO_ERR_QUEUE_FULL, 1, "event queue full: dropped an event of run %s",
                    mlo_run_id(r));
        return MLO_ERR_QUEUE_FULL;
    }
    return q == MLO_Q_CLOSED ? MLO_ERR_CLOSED : MLO_ERR_INTERNAL;
}

int mlo__run_push(mlo_run *r, int type, const char *key, size_t klen, const char *val,
                  size_t vlen, int64_t ts, int64_t step, double value) {
    return push(r, type, key, klen, val, vlen, ts, step, value);
}

int mlo__client_push_metric(mlo_client *c, uint32_t run, const char *key, size_t klen,
                            double value, int64_t step, int64_t ts_ms) {
    mlo_run *r = mlo__client_run(c, run);
    if (!r)
        return MLO_ERR_INVALID_ARGUMENT;
    return push(r, MLO_REC_METRIC, key, klen, "", 0, ts_ms, step, value);
}

/* A refused key as it may appear in a message: at most 200 bytes, cut on a
 * character boundary, control characters and (if the key is not UTF-8) every
 * non-ASCII byte shown as '?', so callbacks always get one line of UTF-8. */
static void printable_key(char *dst, size_t cap, const char *key) {
    size_t n = 0;
    while (key[n] && n + 1 < cap && n < 200)
        n++;
    memcpy(dst, key, n);
    dst[n] = 0;
    if (key[n]) /* cut: drop a partial UTF-8 sequence at the end */
        while (n > 0 && ((unsigned char)dst[n - 1] & 0xC0) == 0x80)
            dst[--n] = 0;
    if (n > 0 && (unsigned char)dst[n - 1] >= 0xC0)
        dst[--n] = 0;
    int utf8 = mlo__utf8_valid(dst, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)dst[i];
        if (ch < 0x20 || ch == 0x7F || (!utf8 && ch >= 0x80))
            dst[i] = '?';
    }
}

static int refuse(mlo_run *r, int st, const char *what, const char *key) {
    mlo__stat_add(r->client, MLO_STAT_REJECTED, 1);
    char shown[256];
    printable_key(shown, sizeof shown, key);
    if (st == MLO_ERR_INVALID_KEY || st == MLO_ERR_INVALID_UTF8)
        mlo__report(r->client, st, 1, "%s: key \"%s\" refused: %s", what, shown,
                    mlo_strerror(st));
    else
        mlo__report(r->client, st, 1, "%s: %s", what, mlo_strerror(st));
    return st;
}

static int metric(mlo_run *r, const char *key, double value, int64_t step, int64_t ts) {
    size_t klen;
    int st = mlo__validate_key(key, &klen);
    if (st != MLO_OK)
        return refuse(r, st, "log_metric", key);
    return push(r, MLO_REC_METRIC, key, klen, "", 0, ts < 0 ? mlo__now_ms() : ts, step, value);
}

MLO_API int mlo_log_metric(mlo_run_t *r, const char *key, double value, int64_t step) {
    if (!run_ok(r))
        return run_bad(r);
    if (!key)
        return refuse(r, MLO_ERR_INVALID_ARGUMENT, "log_metric", "");
    return metric(r, key, value, step, -1);
}

MLO_API int mlo_log_metric_ts(mlo_run_t *r, const char *key, double value, int64_t step,
                              int64_t timestamp_ms) {
    if (!run_ok(r))
        return run_bad(r);
    if (!key || timestamp_ms < 0)
        return refuse(r, MLO_ERR_INVALID_ARGUMENT, "log_metric", "");
    return metric(r, key, value, step, timestamp_ms);
}

static int keyval(mlo_run *r, int type, const char *key, const char *value) {
    const char *what = type == MLO_REC_PARAM ? "log_param" : "set_tag";
    size_t klen, vlen;
    int truncated;
    int st = mlo__validate_key(key, &klen);
    if (st != MLO_OK)
        return refuse(r, st, what, key);
    st = mlo__validate_value(value, type == MLO_REC_PARAM ? MLO_MAX_PARAM_CHARS : MLO_MAX_TAG_CHARS,
                             &vlen, &truncated);
    if (st != MLO_OK)
        return refuse(r, st, what, key);
    if (truncated) {
        mlo__stat_add(r->client, MLO_STAT_TRUNCATED, 1);
        mlo__report(r->client, MLO_WARN_TRUNCATED, 1,
                    "%s: value of \"%s\" truncated to %d characters, as the server would", what,
                    key, type == MLO_REC_PARAM ? MLO_MAX_PARAM_CHARS : MLO_MAX_TAG_CHARS);
    }
    return push(r, type, key, klen, value, vlen, 0, 0, 0);
}

MLO_API int mlo_log_param(mlo_run_t *r, const char *key, const char *value) {
    if (!run_ok(r))
        return run_bad(r);
    if (!key || !value)
        return refuse(r, MLO_ERR_INVALID_ARGUMENT, "log_param", "");
    return keyval(r, MLO_REC_PARAM, key, value);
}

MLO_API int mlo_set_tag(mlo_run_t *r, const char *key, const char *value) {
    if (!run_ok(r))
        return run_bad(r);
    if (!key || !value)
        return refuse(r, MLO_ERR_INVALID_ARGUMENT, "set_tag", "");
    return keyval(r, MLO_REC_TAG, key, value);
}

MLO_API int mlo_log_metrics(mlo_run_t *r, size_t n, const char *const *keys, const double *values,
                            const int64_t *steps, const int64_t *timestamps_ms) {
    if (!run_ok(r))
        return run_bad(r);
    if (n && (!keys || !values))
        return MLO_ERR_INVALID_ARGUMENT;
    int first = MLO_OK;
    int64_t now = -1;
    for (size_t i = 0; i < n; i++) {
        int st;
        if (!keys[i] || (timestamps_ms && timestamps_ms[i] < 0)) {
            st = refuse(r, MLO_ERR_INVALID_ARGUMENT, "log_metrics", "");
        } else {
            int64_t ts = timestamps_ms ? timestamps_ms[i] : (now < 0 ? (now = mlo__now_ms()) : now);
            st = metric(r, keys[i], values[i], steps ? steps[i] : 0, ts);
        }
        if (st != MLO_OK && first == MLO_OK)
            first = st;
        if (st == MLO_ERR_CLOSED)
            break;
    }
    return first;
}

static int keyvals(mlo_run *r, int type, size_t n, const char *const *keys,
                   const char *const *values) {
    if (!run_ok(r))
        return run_bad(r);
    if (n && (!keys || !values))
        return MLO_ERR_INVALID_ARGUMENT;
    int first = MLO_OK;
    for (size_t i = 0; i < n; i++) {
        int st = (!keys[i] || !values[i])
                     ? refuse(r, MLO_ERR_INVALID_ARGUMENT,
                              type == MLO_REC_PARAM ? "log_params" : "set_tags", "")
                     : keyval(r, type, keys[i], values[i]);
        if (st != MLO_OK && first == MLO_OK)
            first = st;
        if (st == MLO_ERR_CLOSED)
            break;
    }
    return first;
}

MLO_API int mlo_log_params(mlo_run_t *r, size_t n, const char *const *keys,
                           const char *const *values) {
    return keyvals(r, MLO_REC_PARAM, n, keys, values);
}

MLO_API int mlo_set_tags(mlo_run_t *r, size_t n, const char *const *keys,
                         const char *const *values) {
    return keyvals(r, MLO_REC_TAG, n, keys, values);
}

MLO_API int mlo_end_run(mlo_run_t *r, mlo_run_status status) {
    if (!run_ok(r))
        return run_bad(r);
    if (status != MLO_RUN_FINISHED && status != MLO_RUN_FAILED && status != MLO_RUN_KILLED)
        return MLO_ERR_INVALID_STATUS;
    return push(r, MLO_REC_END_RUN, "", 0, "", 0, mlo__now_ms(), 0, (double)status);
}

/* mlo_log_artifact, mlo_log_artifact_bytes: mlo_artifact.c */
