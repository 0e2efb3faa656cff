/*
 * mlo_client.c - client and run handles, the log calls, flush, statistics
 * and the error callback.
 *
 * Owns: the client (config, environment, store, queue, run table,
 * histograms, flush gate, and the engines: writer, outbox, uploader,
 * system-metrics sampler) and the runs.  struct mlo_client is defined here
 * and nowhere else; the other public calls reach what they need through
 * mlo_client.h, and the engines get an mlo_env, never the client.  A log call validates, takes the
 * time and pushes one record into the queue: no lock, no allocation, no system call of its own (the
 * queue's push is the only shared write).  With a store (the default) the queue is a ring laid over
 * a file in the store (mlo_store.c), so what a log call put there survives the process.
 *
 * Runs: mlo_start_run gives the run a local id (random, 32 hex), records
 * index -> local id in the store's run table and pushes a START_RUN record
 * (experiment, name, start time, system tags, parent) through the queue like
 * any event; the sender creates the run on the server and hands its server id
 * back through the run table (mlo__runs_created), which start_run waits for
 * within a bound.
 * mlo_resume_run stays synchronous (it checks the run exists) and uses the
 * server id as the local id.
 *
 * System metrics: the sampler (common/mlo_sysmetrics.c) is made at open and
 * logs through mlo__client_emit_metric, like histograms; start and resume
 * switch a run on when the configuration says so (resume first reads the
 * run's last system step from the same runs/get that checks it exists),
 * mlo_run_set_system_metrics switches it on or off, end_run off.  None of
 * it is on the log calls' path.
 *
 * Threads: log calls, start/end run, flush and stat from any thread; close
 * from one thread once the others are done.
 */
#define _GNU_SOURCE
#include "mlo_client.h"

#include "mlo_api.h"
#include "mlo_api_read.h"
#include "mlo_config.h"
#include "mlo_gate.h"
#include "mlo_http.h"
#include "mlo_kv.h"
#include "mlo_outbox.h"
#include "mlo_payload.h"
#include "mlo_pipe.h"
#include "mlo_proc.h"
#include "mlo_sha256.h"
#include "mlo_store.h"
#include "mlo_sysinfo.h"
#include "mlo_sysmetrics.h"
#include "mlo_uploader.h"
#include "mlo_validate.h"
#include "mlo_worker.h"
#include "mlo_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MLO_CLIENT_MAGIC 0x6d6c6f43u        /* "mloC" */
#define MLO_CLIENT_CLOSED_MAGIC 0x6d6c6f58u /* "mloX": a closed client's tombstone */

struct mlo_client {
    uint32_t magic;
    unsigned gen;                /* fork generation it was opened in (mlo_proc.h) */
    struct mlo_client *reg_next; /* the process's client registry */
    _Atomic int closing;
    mlo_config cfg;
    mlo_env env;
    const mlo_queue_ops *qops;
    mlo_queue *queue;
    mlo_runs runs;
    mlo_hists hists;
    mlo_gate flush;
    /* synchronous calls (resume) share one api object under a lock */
    pthread_mutex_t sync_lock;
    mlo_api *sync_api;
    /* the engines */
    mlo_store *store; /* NULL: memory only (durability off or store unusable) */
    mlo_pipe pipe;    /* writer -> outbox (with a store) */
    mlo_writer *writer;
    mlo_outbox *outbox;     /* a store and a tracking URI */
    mlo_uploader *uploader; /* likewise */
    mlo_sysmetrics *sys;    /* the system-metrics sampler (no thread until a run is on) */
};

/* ---- what the other public calls may ask (mlo_client.h) ------------------ */

static int client_ok(const mlo_client *c) {
    return c && c->magic == MLO_CLIENT_MAGIC && !mlo__proc_forked(c->gen);
}
static int run_ok(const mlo_run *r) {
    return r && r->magic == MLO_RUN_MAGIC && client_ok(r->client);
}
/* Why a client handle is not usable: closed (or inherited across fork) is
 * MLO_ERR_CLOSED, anything else MLO_ERR_INVALID_ARGUMENT. */
static int client_bad(const mlo_client *c) {
    if (c && (c->magic == MLO_CLIENT_CLOSED_MAGIC ||
              (c->magic == MLO_CLIENT_MAGIC && mlo__proc_forked(c->gen))))
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

int mlo__client_run_check(const mlo_run *r) {
    if (!run_ok(r))
        return run_bad(r);
    return mlo__client_check(r->client);
}

mlo_env *mlo__client_env(const mlo_client *c) {
    return (mlo_env *)&c->env;
}
mlo_runs *mlo__client_runs(mlo_client *c) {
    return &c->runs;
}
mlo_hists *mlo__client_hists(mlo_client *c) {
    return &c->hists;
}
struct mlo_store *mlo__client_store(mlo_client *c) {
    return c->store;
}
struct mlo_uploader *mlo__client_uploader(mlo_client *c) {
    return c->uploader;
}
struct mlo_sysmetrics *mlo__client_sysmetrics(mlo_client *c) {
    return c->sys;
}
void mlo__client_wake(mlo_client *c) {
    if (c->writer)
        mlo__writer_wake(c->writer);
}

/* ---- process-wide state: the client registry and exit -----------------------
 *
 * Every client ever opened is on `registry` (under reg_lock) until the
 * process ends: open ones, and closed ones as tombstones (their magic says
 * closed; everything but the struct and its run table is freed), so a call on
 * a closed client or one of its runs answers MLO_ERR_CLOSED instead of
 * touching freed memory.
 *
 * fork(): see mlo_proc.h.  A client inherited across fork answers
 * MLO_ERR_CLOSED; the child opens its own (mlo_resume_run joins the
 * parent's run).
 *
 * exit(): an atexit handler flushes every open client of this process within
 * its close timeout, so events logged just before exit() are delivered (or,
 * with the store, at least written to it) and exit never hangs longer. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mlo_client *registry;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

static void registry_atfork_child(void) {
    /* the lock may have been held by a parent thread at fork: start afresh */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    reg_lock = fresh;
}

static void flush_at_exit(void);

static void proc_init(void) {
    mlo__proc_init(registry_atfork_child);
    atexit(flush_at_exit);
}

/* ---- open / close --------------------------------------------------------- */

/* Stops and frees what open started; the client's own memory stays. */
static void teardown(mlo_client *c, int64_t deadline) {
    mlo__sysmetrics_free(c->sys); /* it pushes into the queue: first */
    c->sys = NULL;
    if (c->writer) {
        c->qops->close(c->queue);
        mlo__writer_stop(c->writer);
    }
    /* the writer emptied the queue into the store (local disk: not bounded by
     * the deadline); the outbox stops at the deadline at the latest */
    mlo__outbox_stop(c->outbox, deadline);
    c->outbox = NULL;
    int ring_left = c->writer && mlo__writer_ring_left(c->writer);
    mlo__writer_free(c->writer);
    c->writer = NULL;
    if (c->queue && (!c->store || c->queue != mlo__store_ring(c->store)))
        c->qops->destroy(c->queue);
    c->queue = NULL;
    if (c->store)
        mlo__store_close(c->store, !ring_left);
    c->store = NULL;
    mlo__pipe_destroy(&c->pipe);
    mlo__api_free(c->sync_api);
    c->sync_api = NULL;
}

MLO_API int mlo_client_open(const mlo_options_t *opts, mlo_client_t **out) {
    if (!out)
        return MLO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    mlo_client *c = calloc(1, sizeof *c);
    if (!c)
        return MLO_ERR_NO_MEMORY;
    mlo__env_init(&c->env, &c->cfg);
    char err[512] = "";
    int st = mlo__config_resolve(opts, &c->cfg, err, sizeof err);
    if (st != MLO_OK) {
        /* the callback lives in opts; report through it before giving up */
        mlo__env_report(&c->env, st, 0, "mlo_client_open: %s", err);
        free(c);
        return st;
    }
    if (mlo__runs_init(&c->runs) != 0) {
        mlo__config_free(&c->cfg);
        free(c);
        return MLO_ERR_NO_MEMORY;
    }
    /* before anything starts threads that use curl or the crypto library */
    mlo__sha256_global_init();
    mlo__http_global_init();
    pthread_once(&proc_once, proc_init);
    c->gen = mlo__proc_gen();
    c->magic = MLO_CLIENT_MAGIC;
    pthread_mutex_init(&c->sync_lock, NULL);
    mlo__hists_init(&c->hists, &c->env);
    mlo__gate_init(&c->flush);
    mlo__pipe_init(&c->pipe, &c->flush);

    c->qops = c->cfg.queue_impl == 1 ? &mlo__queue_mutex_ops : &mlo__ring_ops;
    int64_t wait_ns =
        c->cfg.full_policy == MLO_FULL_DROP ? 0 : (int64_t)c->cfg.full_wait_ms * 1000000;
    if (c->cfg.durable) {
        /* the ring goes into the store unless the mutex queue was asked for */
        size_t cap = c->qops == &mlo__ring_ops ? c->cfg.queue_bytes : 0;
        st = mlo__store_open(c->cfg.store_dir, c->cfg.tracking_uri, cap, wait_ns, &c->env,
                             &c->store, err, sizeof err);
        if (st != MLO_OK) {
            if (!c->cfg.tracking_uri)
                mlo__env_report(&c->env, st, 0,
                                "mlo_client_open: store %s unusable: %s; with no tracking URI "
                                "events go nowhere (counted as failed)",
                                c->cfg.store_dir, err);
            else
                mlo__env_report(&c->env, st, 0,
                                "mlo_client_open: store %s unusable: %s; events are kept in "
                                "memory only",
                                c->cfg.store_dir, err);
            c->store = NULL;
        }
    }
    if (c->store)
        c->queue = mlo__store_ring(c->store);
    if (!c->queue)
        c->queue = c->qops->create(c->cfg.queue_bytes, wait_ns);
    c->sync_api = c->cfg.tracking_uri ? mlo__api_new(&c->env) : NULL;
    /* the disk metrics describe the store's file system unless told otherwise */
    const char *disk = c->cfg.sys_disk_path;
    if (!disk)
        disk = c->store ? c->cfg.store_dir : "/";
    c->sys = mlo__sysmetrics_new(&c->env, disk, mlo__client_emit_metric, c);
    if (!c->queue || (c->cfg.tracking_uri && !c->sync_api) || !c->sys) {
        st = MLO_ERR_NO_MEMORY;
        goto fail;
    }
    mlo_writer_cfg wc = {.env = &c->env,
                         .queue = c->queue,
                         .qops = c->qops,
                         .peek = c->store && c->queue == mlo__store_ring(c->store),
                         .store = c->store,
                         .pipe = &c->pipe,
                         .runs = &c->runs,
                         .hists = &c->hists,
                         .flush = &c->flush};
    c->writer = mlo__writer_start(&wc);
    if (!c->writer) {
        st = MLO_ERR_NO_MEMORY;
        goto fail;
    }
    if (c->store && c->cfg.tracking_uri) {
        c->outbox = mlo__outbox_start(&c->env, c->store, &c->pipe, &c->runs);
        /* the artifact uploader, last: nothing after it can fail */
        c->uploader = c->outbox ? mlo__uploader_start(&c->env, c->store, &c->runs) : NULL;
        if (!c->outbox || !c->uploader) {
            st = MLO_ERR_NO_MEMORY;
            goto fail;
        }
    }
    pthread_mutex_lock(&reg_lock);
    c->reg_next = registry;
    registry = c;
    pthread_mutex_unlock(&reg_lock);
    *out = c;
    return MLO_OK;
fail:
    mlo__env_report(&c->env, st, 0, "mlo_client_open: %s", mlo_strerror(st));
    mlo__env_set_abort_at(&c->env, mlo__env_mono(&c->env));
    teardown(c, mlo__env_mono(&c->env));
    mlo__runs_destroy(&c->runs);
    mlo__hists_destroy(&c->hists);
    mlo__gate_destroy(&c->flush);
    pthread_mutex_destroy(&c->sync_lock);
    mlo__config_free(&c->cfg);
    c->magic = 0;
    free(c);
    return st;
}

/* Pushes a flush marker and waits for the writer (and, with a server, the
 * outbox) to pass it. */
static int flush_until(mlo_client *c, int64_t deadline_ns) {
    uint64_t seq = mlo__gate_ticket(&c->flush);
    mlo_rec h = {.type = MLO_REC_FLUSH, .step = (int64_t)seq};
    for (;;) {
        int q = c->qops->push(c->queue, &h, "", "");
        if (q == MLO_Q_OK) {
            /* a flush should not wait for the writer's next interval */
            mlo__writer_wake(c->writer);
            break;
        }
        if (q != MLO_Q_FULL)
            return q == MLO_Q_CLOSED ? MLO_ERR_CLOSED : MLO_ERR_INTERNAL;
        if (mlo__env_mono(&c->env) >= deadline_ns)
            return MLO_ERR_TIMEOUT;
        mlo__clock_sleep(NULL, 1000000);
    }
    return mlo__gate_wait(&c->flush, seq, mlo__env_real_deadline(&c->env, deadline_ns));
}

/* atexit: flush every client still open in this process, within its close
 * timeout.  Clients are not closed (other threads may still be using them);
 * what does not reach the server in time stays in the store. */
static void flush_at_exit(void) {
    pthread_mutex_lock(&reg_lock);
    for (mlo_client *c = registry; c; c = c->reg_next) {
        if (c->magic != MLO_CLIENT_MAGIC || mlo__proc_forked(c->gen) ||
            atomic_load_explicit(&c->closing, memory_order_acquire))
            continue;
        int64_t deadline = mlo__env_mono(&c->env) + (int64_t)c->cfg.close_timeout_ms * 1000000;
        if (flush_until(c, deadline) == MLO_OK)
            /* what is left stays in the store */
            mlo__uploader_flush(c->uploader, mlo__env_real_deadline(&c->env, deadline));
    }
    pthread_mutex_unlock(&reg_lock);
}

MLO_API int mlo_client_flush(mlo_client_t *c, unsigned timeout_ms) {
    int st = mlo__client_check(c);
    if (st != MLO_OK)
        return st;
    int64_t deadline = mlo__env_mono(&c->env) + (int64_t)timeout_ms * 1000000;
    st = flush_until(c, deadline);
    /* artifacts staged before the call: uploaded, refused or parked */
    if (st == MLO_OK)
        st = mlo__uploader_flush(c->uploader, mlo__env_real_deadline(&c->env, deadline));
    return st;
}

MLO_API int mlo_client_close(mlo_client_t *c) {
    if (!client_ok(c))
        return client_bad(c);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->closing, &expected, 1))
        return MLO_ERR_CLOSED;
    int64_t deadline = mlo__env_mono(&c->env) + (int64_t)c->cfg.close_timeout_ms * 1000000;
    /* the network gives up at the deadline, so close is bounded */
    mlo__env_set_abort_at(&c->env, deadline);
    mlo__runs_close(&c->runs);
    /* the sampler stops (a round in progress ends) before the last flush */
    mlo__sysmetrics_free(c->sys);
    c->sys = NULL;
    /* histograms the program did not free emit their last intervals first */
    mlo__hists_free_all(&c->hists, mlo__client_emit_metric, c);
    int st = flush_until(c, deadline);
    /* artifact uploads get what is left of the deadline; the rest stays in
     * the store for the next client or `mlo sync` */
    int ast = mlo__uploader_stop(c->uploader, deadline);
    c->uploader = NULL;
    if (st == MLO_OK)
        st = ast;
    teardown(c, deadline);
    mlo__runs_destroy(&c->runs);
    mlo__hists_destroy(&c->hists);
    mlo__gate_destroy(&c->flush);
    pthread_mutex_destroy(&c->sync_lock);
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
    *value = mlo__env_stat_get(&c->env, which);
    return MLO_OK;
}

/* ---- runs ------------------------------------------------------------------ */

/* Registers a run with local id lid (server id and experiment id when known). */
static mlo_run *register_run(mlo_client *c, const char *lid, const char *sid, const char *exp) {
    mlo_run *r = mlo__runs_add(&c->runs, c, lid, sid, exp);
    if (r && c->store && mlo__store_set_run(c->store, r->index, r->local_id) != 0)
        mlo__env_report(&c->env, MLO_ERR_STORE, 1,
                        "store: cannot record run %s in the run table: a crash before its "
                        "events are written would lose them",
                        r->local_id);
    return r;
}

static void report_api(mlo_client *c, const char *what, const mlo_api_error *e) {
    mlo__env_report(&c->env, e->status, 0, "%s: %s", what,
                    e->message[0] ? e->message : mlo_strerror(e->status));
}

/* MLflow's SystemMetricsMonitor._get_next_logging_step: one after the
 * highest step of the run's latest "system/" metrics (0 without any). */
static int64_t next_system_step(const mlo_read_run *rr) {
    int64_t next = 0;
    for (size_t i = 0; i < rr->nmetrics; i++)
        if (rr->metrics[i].key && !strncmp(rr->metrics[i].key, "system/", 7) &&
            rr->metrics[i].last.step >= next)
            next = rr->metrics[i].last.step + 1;
    return next;
}

/* Switches system metrics of run r on when the configuration says so
 * (next_step: as mlo__sysmetrics_set). */
static void sys_default(mlo_client *c, mlo_run *r, int64_t next_step) {
    if ((c->cfg.sys_enabled || next_step > 0) &&
        mlo__sysmetrics_set(c->sys, r->index, c->cfg.sys_enabled, next_step) != MLO_OK)
        mlo__env_report(&c->env, MLO_ERR_NO_MEMORY, 1,
                        "system metrics: run %s logs none (no memory or no thread)", r->local_id);
}

static int resume(mlo_client *c, const char *run_id, mlo_run **out) {
    char *exp = NULL;
    int64_t sys_step = -1;
    if (c->cfg.tracking_uri) {
        mlo_api_error e;
        mlo_read_run rr;
        pthread_mutex_lock(&c->sync_lock);
        mlo__api_set_deadline(c->sync_api, 0);
        /* runs/get: that it exists, its experiment, its last system step */
        int st = mlo__api_read_run(c->sync_api, run_id, &rr, &e);
        if (st == MLO_OK) {
            if (!rr.experiment_id) {
                e.status = st = MLO_ERR_PROTOCOL;
                snprintf(e.message, sizeof e.message,
                         "runs/get: the answer lacks the expected fields");
            } else {
                exp = rr.experiment_id;
                rr.experiment_id = NULL;
                sys_step = next_system_step(&rr);
            }
            mlo__api_read_run_free(&rr);
        }
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
            mlo__env_report(&c->env, MLO_ERR_STORE, 1,
                            "store: cannot record resumed run %s in runs.map", run_id);
    }
    mlo_run *r = register_run(c, run_id, c->cfg.tracking_uri ? run_id : NULL, exp);
    free(exp);
    if (!r)
        return MLO_ERR_NO_MEMORY;
    sys_default(c, r, sys_step);
    *out = r;
    return MLO_OK;
}

static int check_str(const char *s, int allow_null) {
    if (!s)
        return allow_null ? MLO_OK : MLO_ERR_INVALID_ARGUMENT;
    if (!mlo__validate_utf8(s, strlen(s)))
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
        if (mlo__env_mono(&c->env) >= deadline_ns)
            return MLO_ERR_QUEUE_FULL;
        mlo__clock_sleep(NULL, 1000000);
    }
}

/* Waits for the sender to create run r on the server, at most wait_ns; but
 * once the server is known to be unreachable (a refused or timed-out
 * connection, until the next answer) at most DOWN_WAIT_NS from the call:
 * the run goes on offline and is created when the server is back. */
#define DOWN_WAIT_NS 50000000LL
#define WAIT_SLICE_NS 20000000LL
static int wait_created(mlo_client *c, mlo_run *r, int64_t wait_ns) {
    int64_t t0 = mlo__env_mono(&c->env), deadline = t0 + wait_ns;
    for (;;) {
        int64_t now = mlo__env_mono(&c->env);
        int64_t until = now + WAIT_SLICE_NS < deadline ? now + WAIT_SLICE_NS : deadline;
        int st = mlo__runs_wait(&c->runs, r, until, NULL);
        if (st != MLO_ERR_TIMEOUT)
            return st;
        now = mlo__env_mono(&c->env);
        if (now >= deadline || (mlo__env_net_down(&c->env) && now - t0 >= DOWN_WAIT_NS))
            return MLO_ERR_TIMEOUT;
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
    if (mlo__payload_startrun_encode(&payload, &sr) != 0) {
        mlo__buf_free(&payload);
        mlo__kv_free(tags, ntags);
        return MLO_ERR_NO_MEMORY;
    }
    mlo__kv_free(tags, ntags);
    char lid[33];
    mlo__runs_new_id(lid);
    mlo_run *r = register_run(c, lid, NULL, sr.exp_id);
    if (!r) {
        mlo__buf_free(&payload);
        return MLO_ERR_NO_MEMORY;
    }
    int64_t wait_ns =
        c->cfg.tracking_uri ? (int64_t)((c->cfg.timeout_s < 10 ? c->cfg.timeout_s : 10) * 1e9) : 0;
    int64_t now = mlo__env_mono(&c->env);
    int64_t deadline = now + (wait_ns > 1000000000 ? wait_ns : 1000000000);
    mlo_rec h = {.type = MLO_EV_START_RUN,
                 .key_len = 32,
                 .run = r->index,
                 .val_len = (uint32_t)payload.len,
                 .timestamp = mlo__env_now_ms(&c->env)};
    st = push_must(c, &h, lid, payload.data, deadline);
    mlo__buf_free(&payload);
    if (st != MLO_OK) {
        r->magic = 0;
        return st;
    }
    if (wait_ns) {
        /* the writer is asleep for up to a flush interval: this record
         * should not wait for that */
        mlo__writer_wake(c->writer);
        st = wait_created(c, r, wait_ns);
        if (st != MLO_OK && st != MLO_ERR_TIMEOUT && st != MLO_ERR_CLOSED) {
            r->magic = 0; /* refused for good: no handle */
            return st;
        }
    }
    sys_default(c, r, -1);
    *out = r;
    return MLO_OK;
}

MLO_API const char *mlo_run_id(const mlo_run_t *r) {
    if (!run_ok(r))
        return NULL;
    /* acquire: the string is complete */
    const char *sid = mlo__runs_sid(r);
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
        mlo__env_stat(&c->env, MLO_STAT_DROPPED, 1);
        mlo__env_report(&c->env, MLO_ERR_QUEUE_FULL, 1,
                        "event queue full: dropped an event of run %s", mlo_run_id(r));
        return MLO_ERR_QUEUE_FULL;
    }
    return q == MLO_Q_CLOSED ? MLO_ERR_CLOSED : MLO_ERR_INTERNAL;
}

int mlo__client_run_push(mlo_run *r, int type, const char *key, size_t klen, const char *val,
                         size_t vlen, int64_t ts, int64_t step, double value) {
    return push(r, type, key, klen, val, vlen, ts, step, value);
}

int mlo__client_emit_metric(void *ctx, uint32_t run, const char *key, size_t klen, double value,
                            int64_t step, int64_t ts_ms) {
    mlo_client *c = ctx;
    mlo_run *r = mlo__runs_get(&c->runs, run);
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
    int utf8 = mlo__validate_utf8(dst, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)dst[i];
        if (ch < 0x20 || ch == 0x7F || (!utf8 && ch >= 0x80))
            dst[i] = '?';
    }
}

static int refuse(mlo_run *r, int st, const char *what, const char *key) {
    mlo__env_stat(&r->client->env, MLO_STAT_REJECTED, 1);
    char shown[256];
    printable_key(shown, sizeof shown, key);
    if (st == MLO_ERR_INVALID_KEY || st == MLO_ERR_INVALID_UTF8)
        mlo__env_report(&r->client->env, st, 1, "%s: key \"%s\" refused: %s", what, shown,
                        mlo_strerror(st));
    else
        mlo__env_report(&r->client->env, st, 1, "%s: %s", what, mlo_strerror(st));
    return st;
}

static int metric(mlo_run *r, const char *key, double value, int64_t step, int64_t ts) {
    size_t klen;
    int st = mlo__validate_key(key, &klen);
    if (st != MLO_OK)
        return refuse(r, st, "log_metric", key);
    return push(r, MLO_REC_METRIC, key, klen, "", 0,
                ts < 0 ? mlo__clock_now_ms(r->client->cfg.clock) : ts, step, value);
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
        mlo__env_stat(&r->client->env, MLO_STAT_TRUNCATED, 1);
        mlo__env_report(&r->client->env, MLO_WARN_TRUNCATED, 1,
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
            int64_t ts = timestamps_ms
                             ? timestamps_ms[i]
                             : (now < 0 ? (now = mlo__clock_now_ms(r->client->cfg.clock)) : now);
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

MLO_API int mlo_run_set_system_metrics(mlo_run_t *r, int enable) {
    int st = mlo__client_run_check(r);
    if (st != MLO_OK)
        return st;
    return mlo__sysmetrics_set(r->client->sys, r->index, enable != 0, -1);
}

MLO_API int mlo_end_run(mlo_run_t *r, mlo_run_status status) {
    if (!run_ok(r))
        return run_bad(r);
    if (status != MLO_RUN_FINISHED && status != MLO_RUN_FAILED && status != MLO_RUN_KILLED)
        return MLO_ERR_INVALID_STATUS;
    /* no system metric after the end (MLflow stops the monitor at end_run) */
    if (!atomic_load_explicit(&r->client->closing, memory_order_acquire))
        mlo__sysmetrics_set(r->client->sys, r->index, 0, -1);
    return push(r, MLO_REC_END_RUN, "", 0, "", 0, mlo__env_now_ms(&r->client->env), 0,
                (double)status);
}

/* mlo_log_artifact, mlo_log_artifact_bytes: mlo_artifact.c */
