/*
 * mlo_sender.c - the sender: creates runs on the server and sends their
 * events, grouped per run into `runs/log-batch` requests within MLflow's
 * limits; reads the run log back from the acknowledged offset and moves the
 * acknowledgement forward.
 *
 * The core works on a stage: events copied into an arena (mlo_rec header,
 * key, NUL, value, NUL; the header's `run` is an index into the sender's run
 * table, its `size` holds flags).  Processing walks the stage in order:
 *  - START_RUN: the run's server id from runs.map, else from a search on its
 *    `mlo.local_id` tag (a creation whose runs.map line was lost in a crash),
 *    else runs/create with the original start time, name and tags; the
 *    mapping is written to runs.map (fsync'd) before anything is sent to the
 *    run, and handed to mlo_start_run waiting in the client.
 *  - METRIC/PARAM/TAG go to their run's open batch; a batch that would break
 *    a limit (1000 metrics, 100 params, 100 tags, 1000 entries, ~900 KB, or
 *    a param/tag key already in it) is sent first.
 *  - END_RUN sends the run's batch and then `runs/update`.
 *  - DATASET sends the run's batch and then `runs/log-inputs` (one dataset
 *    input): events reach the server in the order they were logged, so
 *    metrics on either side of a dataset keep their order.  Logging it again
 *    is harmless (the server links a (name, digest) to a run once), so a
 *    resend after a transient failure is safe like the rest; a refusal (400)
 *    is reported and counted as failed, and the run's other events go on.
 *  At the end of the stage every open batch is sent.
 * A batch the server refuses as invalid (400) stores nothing: it is split in
 * halves and resent until the offending entries stand alone; those are
 * reported and counted as failed, every other entry is delivered.
 *
 * Transient failures (network, 5xx/429 after the transport's retries,
 * 401/403, an unreadable answer, the close deadline): with keep (an outbox)
 * the whole stage is abandoned uncounted and resent later from the
 * acknowledged offset (resending is safe: the server stores an identical
 * metric point once, accepts an identical param, tags are last-write-wins,
 * runs are found by runs.map or their tag); without keep (no store) the
 * events count as failed, as they did before the store.  Counters of a stage
 * are added only when it completes.
 *
 * Reading (mlo__sender_main, one thread per client with a store and a
 * server; mlo__sender_drain_segments for `mlo sync`): segments in order -
 * adopted segments of dead processes first, then the client's own, following
 * the writer through mlo_pipe.  A stage is whole blocks (about STAGE_TARGET
 * events); after it is processed the block end is the new acknowledged
 * offset (acks/<procid>-<n>.ack) and flushes whose target it reaches are
 * done.  Damage in a segment is reported, skipped past if an intact block
 * follows; what was before it is kept.
 *
 * Requests in flight (max_inflight = N > 1, mlo_options_set_max_inflight):
 * the sender owns N worker threads, each with its own mlo_api (one curl
 * handle, one connection).  The sender's thread still walks the stage in
 * order, creates runs (START_RUN, synchronously) and groups events into
 * batches; a batch it would have sent, an END_RUN's runs/update and a
 * DATASET's runs/log-inputs become a job (kept with pointers into the stage,
 * which does not move until the stage ends) handed to the workers through a
 * queue, and it goes on grouping while they build, encode and send.  Order:
 * a run has at most one job in the workers at a time; its later jobs wait in
 * the run's own FIFO and are handed over when the one before finishes.  So
 * requests of different runs overlap, those of one run never do and keep the
 * order of the log (metric steps, tags last-write-wins, a param conflict
 * isolated by the same 400-splitting, done by the worker).  The stage ends
 * when every job has finished: its counters are added and it is acknowledged
 * only then; if any job failed transiently the jobs not yet sent are dropped
 * and the stage is sent again whole, as with one request at a time.  Workers
 * report refused entries through the job (the sender's thread passes them to
 * the error callback); retry warnings come from the worker retrying.  The
 * queue holds at most one job per run; jobs, and the pointer arena their
 * batches live in, are bounded by the stage.  Workers are started when a
 * job finds none idle, up to N: one run logging uses one (its requests never
 * overlap), a sync with nothing to send none.  N = 1: no worker, every
 * request on the sender's thread, as before.
 *
 * Threads: a sender belongs to one thread.  It shares with others only the
 * client's counters, run table (mlo__client_run_created), the pipe, and with
 * its own workers the pool (jobs pass between them under pool.lock; a job's
 * fields are written by one side before it is handed over).
 */
#define _GNU_SOURCE
#include "mlo_internal.h"
#include "mlo_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define STAGE_TARGET 4096
#define HASH_SIZE 8192
#define SRUN_BUCKETS 4096
#define LOCAL_ID_TAG "mlo.local_id"
#define FLAG_ADOPTED 1u

enum { SRUN_UNKNOWN = 0, SRUN_MAPPED = 1, SRUN_FAILED = 2 };

struct job;

typedef struct srun {
    char lid[33];
    char *sid;
    char *exp;
    int state;
    int fail_status;
    uint32_t next; /* hash chain: index + 1 */
    /* requests in flight: a job of this run is with the workers; the run's
     * later jobs wait here, in order */
    int busy;
    struct job *pend_head, *pend_tail;
} srun;

typedef struct batch {
    uint32_t run;
    uint32_t n, nmetrics, nparams, ntags;
    size_t bytes;
    const mlo_rec **recs; /* capacity MLO_BATCH_MAX_TOTAL */
} batch;

/* What sending needs, on the sender's thread or on a worker's. */
typedef struct sendctx {
    mlo_client *c;
    mlo_api *api;
    int keep;
    uint64_t sent, adopted, failed; /* counters of the stage, added at its end */
    mlo_buf *defer;                 /* NULL: report at once; else queued for the sender */
} sendctx;

enum { JOB_BATCH = 1, JOB_END, JOB_DATASET };

/* One request (with its 400-splitting) for a worker. */
typedef struct job {
    struct job *next; /* ready queue, finished list, the run's FIFO or the free list */
    int kind;
    uint32_t run;         /* index in the sender's run table (the sender's thread only) */
    const char *sid;      /* the run's server id (lives as long as the sender) */
    const mlo_rec **recs; /* JOB_BATCH: a slice of the stage's arena */
    size_t n;
    const mlo_rec *rec;   /* JOB_END, JOB_DATASET */
    mlo_dataset_payload ds;
    /* written by the worker */
    int status; /* MLO_OK, or the transient status that sends the stage again */
    uint64_t sent, adopted, failed;
    mlo_buf reports; /* [int32 status][message NUL]... for the error callback */
} job;

typedef struct pool pool;

typedef struct worker {
    pool *p;
    mlo_api *api;
    pthread_t thread;
} worker;

struct pool {
    mlo_client *c;
    int keep;
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job is ready, or quit */
    pthread_cond_t done; /* a job has finished */
    job *ready, *ready_tail;
    size_t nready; /* jobs in the ready queue */
    int idle;      /* workers waiting for one */
    job *fin, *fin_tail;
    int quit;
    int cancel; /* != MLO_OK: the stage failed; jobs still queued are not sent */
    /* workers are started when a job finds none idle, up to max: a client
     * with one run (whose requests never overlap) has one, a sync with
     * nothing to send none (the sender's thread only: no lock) */
    size_t nworkers, max;
    worker *w;
};

struct mlo_sender {
    mlo_client *c;
    mlo_store *st;
    int keep;
    mlo_api *api;
    /* requests in flight (NULL: one at a time, on this thread) */
    pool *pool;
    int pool_on;          /* this stage goes through the pool */
    int stage_st;         /* first transient failure of a job in this stage */
    size_t outstanding;   /* jobs of this stage not finished (queued, sending, waiting) */
    job *free_jobs;
    const mlo_rec **arena; /* the batches of the stage's jobs */
    size_t arena_len, arena_cap;
    /* the stage */
    mlo_buf stage;
    size_t *offs;
    size_t nstaged, capstaged;
    /* open batches of the stage, by run */
    batch *batches;
    size_t nbatches, cap_batches;
    int32_t *slot;
    uint32_t *slot_run;
    /* runs seen */
    srun *runs;
    size_t nruns, capruns;
    uint32_t *heads;
    /* experiment name -> id */
    mlo_kv *exps;
    size_t nexps;
    /* this thread's sending, and the counters of the stage in progress */
    sendctx cx;
    mlo_buf scratch;
};

/* ---- START_RUN payload ------------------------------------------------------- */

int mlo__startrun_parse(const char *p, size_t len, mlo_startrun *o) {
    memset(o, 0, sizeof *o);
    const char *f[4];
    size_t pos = 0;
    for (int i = 0; i < 4; i++) {
        const char *z = pos < len ? memchr(p + pos, 0, len - pos) : NULL;
        if (!z)
            return -1;
        f[i] = p + pos;
        pos = (size_t)(z - p) + 1;
    }
    o->exp_name = *f[0] ? f[0] : NULL;
    o->exp_id = *f[1] ? f[1] : NULL;
    o->run_name = *f[2] ? f[2] : NULL;
    o->parent = *f[3] ? f[3] : NULL;
    while (pos < len && o->ntags < MLO_START_MAX_TAGS) {
        const char *k = p + pos;
        const char *z = memchr(k, 0, len - pos);
        if (!z)
            return -1;
        pos = (size_t)(z - p) + 1;
        const char *v = p + pos;
        z = pos < len ? memchr(v, 0, len - pos) : NULL;
        if (!z)
            return -1;
        pos = (size_t)(z - p) + 1;
        o->keys[o->ntags] = k;
        o->values[o->ntags++] = v;
    }
    return 0;
}

int mlo__startrun_encode(mlo_buf *b, const mlo_startrun *in) {
    const char *f[4] = {in->exp_name, in->exp_id, in->run_name, in->parent};
    for (int i = 0; i < 4; i++)
        if (mlo__buf_append(b, f[i] ? f[i] : "", f[i] ? strlen(f[i]) + 1 : 1) != 0)
            return -1;
    for (size_t i = 0; i < in->ntags; i++)
        if (mlo__buf_append(b, in->keys[i], strlen(in->keys[i]) + 1) != 0 ||
            mlo__buf_append(b, in->values[i], strlen(in->values[i]) + 1) != 0)
            return -1;
    return 0;
}

/* ---- new / free --------------------------------------------------------------- */

static pool *pool_new(mlo_client *c, int keep, int n);
static void pool_free(pool *p);

mlo_sender *mlo__sender_new(mlo_client *c, mlo_store *st, int keep) {
    mlo_sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->c = c;
    s->st = st;
    s->keep = keep;
    s->api = c->cfg.tracking_uri ? mlo__api_new(&c->cfg, c) : NULL;
    s->slot = malloc(HASH_SIZE * sizeof *s->slot);
    s->slot_run = calloc(HASH_SIZE, sizeof *s->slot_run);
    s->heads = calloc(SRUN_BUCKETS, sizeof *s->heads);
    if ((c->cfg.tracking_uri && !s->api) || !s->slot || !s->slot_run || !s->heads) {
        mlo__sender_free(s);
        return NULL;
    }
    for (size_t i = 0; i < HASH_SIZE; i++)
        s->slot[i] = -1;
    /* workers only to send: without a server (a store that could not be
     * used) nothing is sent; they start with the first stage that sends,
     * as many as requests are waiting, up to max_inflight */
    if (s->api && c->cfg.max_inflight > 1)
        s->pool = pool_new(c, keep, c->cfg.max_inflight);
    return s;
}

void mlo__sender_free(mlo_sender *s) {
    if (!s)
        return;
    pool_free(s->pool); /* no job is out: a stage ends when all have finished */
    while (s->free_jobs) {
        job *j = s->free_jobs;
        s->free_jobs = j->next;
        mlo__buf_free(&j->reports);
        free(j);
    }
    free(s->arena);
    for (size_t i = 0; i < s->cap_batches; i++)
        free(s->batches[i].recs);
    free(s->batches);
    free(s->offs);
    free(s->slot);
    free(s->slot_run);
    for (size_t i = 0; i < s->nruns; i++) {
        free(s->runs[i].sid);
        free(s->runs[i].exp);
    }
    free(s->runs);
    free(s->heads);
    mlo__kv_free(s->exps, s->nexps);
    mlo__buf_free(&s->stage);
    mlo__buf_free(&s->scratch);
    if (s->api)
        mlo__api_free(s->api);
    free(s);
}

/* ---- the run table ------------------------------------------------------------- */

static uint32_t lid_hash(const char *lid) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 32 && lid[i]; i++)
        h = (h ^ (unsigned char)lid[i]) * 16777619u;
    return h;
}

/* Index of the run with local id lid, added if new; -1 on OOM. */
static long srun_for(mlo_sender *s, const char *lid, size_t len) {
    char key[33];
    if (len > 32)
        len = 32;
    memcpy(key, lid, len);
    key[len] = 0;
    uint32_t b = lid_hash(key) & (SRUN_BUCKETS - 1);
    for (uint32_t i = s->heads[b]; i; i = s->runs[i - 1].next)
        if (!strcmp(s->runs[i - 1].lid, key))
            return (long)(i - 1);
    if (s->nruns == s->capruns) {
        size_t nc = s->capruns ? 2 * s->capruns : 64;
        srun *n = realloc(s->runs, nc * sizeof *n);
        if (!n)
            return -1;
        s->runs = n;
        s->capruns = nc;
    }
    srun *r = &s->runs[s->nruns];
    memset(r, 0, sizeof *r);
    memcpy(r->lid, key, len + 1);
    r->next = s->heads[b];
    s->heads[b] = (uint32_t)++s->nruns;
    return (long)(s->nruns - 1);
}

/* ---- staging --------------------------------------------------------------------- */


int mlo__sender_add(mlo_sender *s, int type, const char *lid, const char *key, size_t klen,
                    const char *val, size_t vlen, double num, int64_t ts, int64_t step,
                    int flags) {
    long run = srun_for(s, lid, strlen(lid));
    if (run < 0)
        return -1;
    if (type == MLO_EV_START_RUN) {
        key = lid;
        klen = strlen(lid);
    }
    size_t need = sizeof(mlo_rec) + klen + 1 + vlen + 1;
    need = (need + MLO_REC_ALIGN - 1) & ~(size_t)(MLO_REC_ALIGN - 1);
    if (s->nstaged == s->capstaged) {
        size_t nc = s->capstaged ? 2 * s->capstaged : 4096;
        size_t *n = realloc(s->offs, nc * sizeof *n);
        if (!n)
            return -1;
        s->offs = n;
        s->capstaged = nc;
    }
    if (mlo__buf_reserve(&s->stage, need) != 0)
        return -1;
    char *p = s->stage.data + s->stage.len;
    mlo_rec h = {.size = (uint32_t)flags,
                 .type = (uint16_t)type,
                 .key_len = (uint16_t)klen,
                 .run = (uint32_t)run,
                 .val_len = (uint32_t)vlen,
                 .timestamp = ts,
                 .step = step,
                 .value = num};
    memcpy(p, &h, sizeof h);
    if (klen)
        memcpy(p + sizeof h, key, klen);
    p[sizeof h + klen] = 0;
    if (vlen)
        memcpy(p + sizeof h + klen + 1, val, vlen);
    p[sizeof h + klen + 1 + vlen] = 0;
    s->offs[s->nstaged++] = s->stage.len;
    s->stage.len += need;
    return 0;
}

size_t mlo__sender_staged(const mlo_sender *s) {
    return s->nstaged;
}

/* ---- failures ---------------------------------------------------------------------- */

/* Refusals that resending cannot fix. */
static int permanent(int st) {
    return st == MLO_ERR_SERVER_INVALID || st == MLO_ERR_NOT_FOUND || st == MLO_ERR_ALREADY_EXISTS;
}

/* Counts n events of a stage as failed (at the stage's end). */
static void fail_n(mlo_sender *s, uint64_t n) {
    s->cx.failed += n;
}

static void count_sent(sendctx *x, const mlo_rec *const *recs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (recs[i]->size & FLAG_ADOPTED)
            x->adopted++;
        else
            x->sent++;
    }
}

/* Deferred reports of one job: at most this much text (the callback is
 * rate-limited to 20 messages a second anyway; the counters count all). */
#define DEFER_MAX (32u * 1024u)

/* Reports a failure found while sending: at once on the sender's thread, or
 * queued in the job for it (a worker). */
static void cx_report(sendctx *x, int st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cx_report(sendctx *x, int st, const char *fmt, ...) {
    if (!x->c->cfg.error_fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->defer) {
        mlo__report(x->c, st, 1, "%s", msg);
        return;
    }
    int32_t s32 = st;
    if (x->defer->len < DEFER_MAX && mlo__buf_append(x->defer, &s32, sizeof s32) == 0 &&
        mlo__buf_append(x->defer, msg, strlen(msg) + 1) != 0)
        x->defer->len -= sizeof s32; /* out of memory: the message is lost, not the count */
}

static int64_t abort_at(mlo_client *c) {
    return atomic_load_explicit(&c->abort_at_ns, memory_order_acquire);
}

/* ---- runs on the server -------------------------------------------------------------- */

static int exp_id_for(mlo_sender *s, const char *name, char **out, mlo_api_error *e) {
    for (size_t i = 0; i < s->nexps; i++)
        if (!strcmp(s->exps[i].key, name)) {
            *out = strdup(s->exps[i].value);
            return *out ? MLO_OK : MLO_ERR_NO_MEMORY;
        }
    int st = mlo__api_get_experiment_by_name(s->api, name, out, e);
    if (st == MLO_ERR_NOT_FOUND) {
        st = mlo__api_create_experiment(s->api, name, out, e);
        /* another process created it between our two calls: read it back */
        if (st == MLO_ERR_ALREADY_EXISTS)
            st = mlo__api_get_experiment_by_name(s->api, name, out, e);
    }
    if (st == MLO_OK && mlo__kv_push(&s->exps, &s->nexps, name, *out))
        return MLO_ERR_NO_MEMORY;
    return st;
}

static void set_deadline(mlo_sender *s) {
    mlo__api_set_deadline(s->api, abort_at(s->c));
}

static void mapped(mlo_sender *s, srun *r, char *sid, char *exp) {
    r->sid = sid;
    free(r->exp);
    r->exp = exp;
    r->state = SRUN_MAPPED;
    mlo__client_run_created(s->c, r->lid, sid, exp, MLO_OK);
}

static void run_failed(mlo_sender *s, srun *r, int st, const char *msg) {
    r->state = SRUN_FAILED;
    r->fail_status = st;
    mlo__report(s->c, st, 1, "run %s: %s", r->lid, msg);
    mlo__client_run_created(s->c, r->lid, NULL, NULL, st);
}

/* A run seen without its START_RUN (resumed by id, or started in a part of
 * the log already acknowledged): runs.map, else the id as a server id. */
static int resolve(mlo_sender *s, srun *r) {
    if (r->state != SRUN_UNKNOWN)
        return MLO_OK;
    char *sid = NULL;
    if (s->st && mlo__store_map_get(s->st, r->lid, &sid)) {
        mapped(s, r, sid, NULL);
        return MLO_OK;
    }
    if (!s->api)
        return MLO_ERR_CONFIG;
    char *exp = NULL;
    mlo_api_error e;
    set_deadline(s);
    int st = mlo__api_get_run(s->api, r->lid, &exp, &e);
    if (st == MLO_OK) {
        sid = strdup(r->lid);
        if (!sid) {
            free(exp);
            return MLO_ERR_NO_MEMORY;
        }
        if (s->st && mlo__store_map_put(s->st, r->lid, sid) != 0) {
            free(sid);
            free(exp);
            return MLO_ERR_STORE;
        }
        mapped(s, r, sid, exp);
        return MLO_OK;
    }
    if (permanent(st)) {
        run_failed(s, r, st,
                   "its start is not in the store and the server has no run of that id; its "
                   "events cannot be delivered");
        return MLO_OK;
    }
    return st;
}

static int start_run(mlo_sender *s, const mlo_rec *rec) {
    srun *r = &s->runs[rec->run];
    if (r->state == SRUN_MAPPED) {
        mlo__client_run_created(s->c, r->lid, r->sid, r->exp, MLO_OK);
        return MLO_OK;
    }
    char *sid = NULL;
    if (s->st && mlo__store_map_get(s->st, r->lid, &sid)) {
        mapped(s, r, sid, NULL);
        return MLO_OK;
    }
    mlo_startrun sr;
    if (mlo__startrun_parse(mlo__staged_val(rec), rec->val_len, &sr) != 0) {
        run_failed(s, r, MLO_ERR_INTERNAL, "malformed start record");
        return MLO_OK;
    }
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    char *exp = NULL;
    set_deadline(s);
    int st = sr.exp_id ? ((exp = strdup(sr.exp_id)) ? MLO_OK : MLO_ERR_NO_MEMORY)
                       : exp_id_for(s, sr.exp_name ? sr.exp_name : "Default", &exp, &e);
    /* an acknowledgement lost in a crash: the run exists, with our tag (an
     * outbox only; without a store a run is only ever created once) */
    int create = 0;
    if (st == MLO_OK && s->keep) {
        st = mlo__api_search_run_by_tag(s->api, exp, LOCAL_ID_TAG, r->lid, &sid, &e);
        if (st == MLO_ERR_NOT_FOUND) {
            st = MLO_OK;
            create = 1;
        }
    } else if (st == MLO_OK) {
        create = 1;
    }
    if (create) {
        mlo_kv *tags = NULL;
        size_t ntags = 0;
        int oom = 0;
        for (size_t i = 0; i < sr.ntags; i++)
            oom |= mlo__kv_push(&tags, &ntags, sr.keys[i], sr.values[i]);
        oom |= mlo__kv_push(&tags, &ntags, LOCAL_ID_TAG, r->lid);
        if (sr.parent) {
            long pi = srun_for(s, sr.parent, strlen(sr.parent));
            if (pi >= 0) {
                int pst = resolve(s, &s->runs[pi]);
                if (pst != MLO_OK && !permanent(pst)) {
                    mlo__kv_free(tags, ntags);
                    free(exp);
                    return pst;
                }
                if (s->runs[pi].sid)
                    oom |= mlo__kv_push(&tags, &ntags, "mlflow.parentRunId", s->runs[pi].sid);
            }
            r = &s->runs[rec->run]; /* srun_for may have moved the table */
        }
        if (oom) {
            mlo__kv_free(tags, ntags);
            free(exp);
            return MLO_ERR_NO_MEMORY;
        }
        /* runs/create is not repeated by the transport once it may have
         * reached the server (a lost answer would create the run twice): look
         * for the run's tag, and only then create again.  With an outbox a
         * later pass does that after the backoff; memory-only, here, within
         * the retry budget. */
        for (int attempt = 0;; attempt++) {
            st = mlo__api_create_run(s->api, exp, sr.run_name, rec->timestamp, tags, ntags, &sid,
                                     &e);
            if (st != MLO_ERR_NETWORK && st != MLO_ERR_TIMEOUT)
                break;
            mlo__report(s->c, MLO_WARN_RETRY, 1,
                        "run %s: create run: %s; looking for it by its %s tag before trying again",
                        r->lid, e.message[0] ? e.message : mlo_strerror(st), LOCAL_ID_TAG);
            mlo_api_error e2;
            int fst = mlo__api_search_run_by_tag(s->api, exp, LOCAL_ID_TAG, r->lid, &sid, &e2);
            if (fst == MLO_OK) {
                st = MLO_OK;
                break;
            }
            if (fst != MLO_ERR_NOT_FOUND || attempt >= s->c->cfg.max_retries ||
                atomic_load_explicit(&s->c->stop, memory_order_acquire))
                break;
            struct timespec pause = {0, 200 * 1000000L << (attempt < 3 ? attempt : 3)};
            nanosleep(&pause, NULL);
        }
        mlo__kv_free(tags, ntags);
    }
    if (st == MLO_OK) {
        if (s->st && mlo__store_map_put(s->st, r->lid, sid) != 0) {
            /* without the mapping on disk a crash could create it twice; the
             * tag search still finds it, so go on, but say so */
            mlo__report(s->c, MLO_ERR_STORE, 1, "run %s: cannot record its server id in %s",
                        r->lid, "runs.map");
        }
        mapped(s, r, sid, exp);
        return MLO_OK;
    }
    free(exp);
    char msg[700];
    snprintf(msg, sizeof msg, "create run: %s", e.message[0] ? e.message : mlo_strerror(st));
    if (permanent(st) || !s->keep) {
        run_failed(s, r, st, msg);
        return MLO_OK;
    }
    mlo__report(s->c, st, 1, "run %s: %s (will retry)", r->lid, msg);
    return st;
}

/* ---- batches ---------------------------------------------------------------------------- */

/* Sends recs[0..n) of the run with server id sid; on a 400 splits to
 * isolate the bad entries.  MLO_OK, or a transient status (keep only). */
static int send_recs(sendctx *x, const char *sid, const mlo_rec *const *recs, size_t n) {
    if (n == 0)
        return MLO_OK;
    mlo_api_error e;
    mlo__api_set_deadline(x->api, abort_at(x->c));
    int st = mlo__api_log_batch(x->api, sid, recs, n, &e);
    if (st == MLO_OK) {
        count_sent(x, recs, n);
        return MLO_OK;
    }
    if (st == MLO_ERR_SERVER_INVALID && n > 1) {
        size_t h = n / 2;
        int a = send_recs(x, sid, recs, h);
        if (a != MLO_OK)
            return a;
        return send_recs(x, sid, recs + h, n - h);
    }
    if (!permanent(st) && x->keep)
        return st;
    x->failed += n;
    if (n == 1) {
        const mlo_rec *r = recs[0];
        const char *kind = r->type == MLO_REC_METRIC ? "metric"
                           : r->type == MLO_REC_PARAM ? "param"
                                                      : "tag";
        cx_report(x, st, "run %s: %s \"%.250s\" refused: %s", sid, kind, mlo__staged_key(r),
                  e.message[0] ? e.message : mlo_strerror(st));
    } else {
        cx_report(x, st, "run %s: %zu events not delivered: %s", sid, n,
                  e.message[0] ? e.message : mlo_strerror(st));
    }
    return MLO_OK;
}

/* runs/update for an END_RUN record. */
static int send_end(sendctx *x, const char *sid, const mlo_rec *r) {
    mlo_api_error e;
    mlo__api_set_deadline(x->api, abort_at(x->c));
    int st = mlo__api_update_run(x->api, sid, (int)r->value, r->timestamp, &e);
    if (st == MLO_OK) {
        count_sent(x, &r, 1);
        return MLO_OK;
    }
    if (!permanent(st) && x->keep)
        return st;
    x->failed++;
    cx_report(x, st, "run %s: end run failed: %s", sid,
              e.message[0] ? e.message : mlo_strerror(st));
    return MLO_OK;
}

/* runs/log-inputs for a DATASET record (key = name) whose payload is ds. */
static int send_dataset(sendctx *x, const char *sid, const mlo_rec *r,
                        const mlo_dataset_payload *ds) {
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    mlo__api_set_deadline(x->api, abort_at(x->c));
    int st = mlo__api_log_inputs(x->api, sid, mlo__staged_key(r), ds->digest, ds->source_type,
                                 ds->source, ds->context, &e);
    if (st == MLO_OK) {
        count_sent(x, &r, 1);
        return MLO_OK;
    }
    if (!permanent(st) && x->keep)
        return st;
    x->failed++;
    cx_report(x, st, "run %s: dataset \"%.250s\" (digest %s) refused: %s", sid,
              mlo__staged_key(r), ds->digest, e.message[0] ? e.message : mlo_strerror(st));
    return MLO_OK;
}

/* ---- requests in flight: the pool ------------------------------------------------------ */

static void run_job(worker *w, job *j) {
    pool *p = w->p;
    mlo__buf_reset(&j->reports);
    sendctx x = {.c = p->c, .api = w->api, .keep = p->keep, .defer = &j->reports};
    switch (j->kind) {
    case JOB_BATCH:
        j->status = send_recs(&x, j->sid, j->recs, j->n);
        break;
    case JOB_END:
        j->status = send_end(&x, j->sid, j->rec);
        break;
    default:
        j->status = send_dataset(&x, j->sid, j->rec, &j->ds);
        break;
    }
    j->sent = x.sent;
    j->adopted = x.adopted;
    j->failed = x.failed;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    pool *p = w->p;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->ready && !p->quit) {
            p->idle++;
            pthread_cond_wait(&p->work, &p->lock);
            p->idle--;
        }
        if (!p->ready)
            break; /* quit, and nothing left */
        job *j = p->ready;
        p->ready = j->next;
        if (!p->ready)
            p->ready_tail = NULL;
        p->nready--;
        int cancel = p->cancel;
        pthread_mutex_unlock(&p->lock);
        if (cancel != MLO_OK) {
            /* the stage failed already: it will be sent again whole */
            j->status = cancel;
            j->sent = j->adopted = j->failed = 0;
            mlo__buf_reset(&j->reports);
        } else {
            run_job(w, j);
        }
        pthread_mutex_lock(&p->lock);
        j->next = NULL;
        if (p->fin_tail)
            p->fin_tail->next = j;
        else
            p->fin = j;
        p->fin_tail = j;
        pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pool_free(pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->nworkers; i++)
        pthread_join(p->w[i].thread, NULL);
    for (size_t i = 0; i < p->nworkers; i++)
        mlo__api_free(p->w[i].api);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p->w);
    free(p);
}

/* No thread yet: see spawn. */
static pool *pool_new(mlo_client *c, int keep, int n) {
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->w = calloc((size_t)n, sizeof *p->w);
    if (!p->w) {
        free(p);
        return NULL;
    }
    p->c = c;
    p->keep = keep;
    p->max = (size_t)n;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    return p;
}

/* One more worker (its own api: one curl handle).  0, or -1 (fewer
 * workers then, which is fine). */
static int spawn(pool *p) {
    if (p->nworkers >= p->max)
        return -1;
    worker *w = &p->w[p->nworkers];
    w->p = p;
    w->api = mlo__api_new(&p->c->cfg, p->c);
    if (!w->api)
        return -1;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        mlo__api_free(w->api);
        w->api = NULL;
        return -1;
    }
    p->nworkers++;
    return 0;
}

static void pool_cancel(mlo_sender *s, int st) {
    if (s->stage_st == MLO_OK)
        s->stage_st = st;
    pthread_mutex_lock(&s->pool->lock);
    if (s->pool->cancel == MLO_OK)
        s->pool->cancel = st;
    pthread_mutex_unlock(&s->pool->lock);
}

static void pool_push(pool *p, job *j) {
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->ready_tail)
        p->ready_tail->next = j;
    else
        p->ready = j;
    p->ready_tail = j;
    /* a worker signalled but not yet running still counts as idle, and its
     * job as ready: more ready than idle means this one would wait */
    int more = ++p->nready > (size_t)p->idle;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    if (more && p->nworkers < p->max)
        spawn(p);
}

static void job_recycle(mlo_sender *s, job *j) {
    j->next = s->free_jobs;
    s->free_jobs = j;
    s->outstanding--;
}

/* A job is back from the workers: its counters and reports join the stage's;
 * the run's next job goes to the workers (or, the stage having failed, is
 * dropped). */
static void job_finished(mlo_sender *s, job *j) {
    if (j->status != MLO_OK) {
        pool_cancel(s, j->status);
    } else {
        s->cx.sent += j->sent;
        s->cx.adopted += j->adopted;
        s->cx.failed += j->failed;
    }
    for (size_t off = 0; off + sizeof(int32_t) < j->reports.len;) {
        int32_t st;
        memcpy(&st, j->reports.data + off, sizeof st);
        const char *msg = j->reports.data + off + sizeof st;
        mlo__report(s->c, st, 1, "%s", msg);
        off += sizeof st + strlen(msg) + 1;
    }
    srun *r = &s->runs[j->run];
    job_recycle(s, j);
    while (r->pend_head && s->stage_st != MLO_OK) {
        job *k = r->pend_head;
        r->pend_head = k->next;
        job_recycle(s, k);
    }
    job *next = r->pend_head;
    if (!next) {
        r->pend_tail = NULL;
        r->busy = 0;
        return;
    }
    r->pend_head = next->next;
    if (!r->pend_head)
        r->pend_tail = NULL;
    pool_push(s->pool, next);
}

/* Takes the jobs the workers have finished; with wait, at least one. */
static void pool_collect(mlo_sender *s, int wait) {
    pool *p = s->pool;
    pthread_mutex_lock(&p->lock);
    while (wait && !p->fin)
        pthread_cond_wait(&p->done, &p->lock);
    job *j = p->fin;
    p->fin = p->fin_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (j) {
        job *next = j->next;
        job_finished(s, j);
        j = next;
    }
}

static void pool_wait_all(mlo_sender *s) {
    while (s->outstanding)
        pool_collect(s, 1);
}

/* Hands a job for run `run` over: to the workers if the run has none
 * there, else to the run's FIFO.  Returns the stage's status so far. */
static int submit(mlo_sender *s, job *j) {
    srun *r = &s->runs[j->run];
    j->sid = r->sid;
    j->status = MLO_OK;
    j->next = NULL;
    s->outstanding++;
    if (r->busy) {
        if (r->pend_tail)
            r->pend_tail->next = j;
        else
            r->pend_head = j;
        r->pend_tail = j;
    } else {
        r->busy = 1;
        pool_push(s->pool, j);
    }
    pool_collect(s, 0);
    return s->stage_st;
}

static job *job_new(mlo_sender *s, int kind, uint32_t run) {
    job *j = s->free_jobs;
    if (j) {
        s->free_jobs = j->next;
    } else {
        j = calloc(1, sizeof *j);
        if (!j)
            return NULL;
    }
    j->kind = kind;
    j->run = run;
    j->recs = NULL;
    j->n = 0;
    j->rec = NULL;
    return j;
}

/* Out of memory for a job: the run's jobs are all done first (order), then
 * this thread sends it itself. */
static void run_idle(mlo_sender *s, uint32_t run) {
    while (s->runs[run].busy)
        pool_collect(s, 1);
}

static int send_batch(mlo_sender *s, batch *b) {
    if (b->n == 0)
        return MLO_OK;
    int st;
    job *j = s->pool_on && s->arena_len + b->n <= s->arena_cap ? job_new(s, JOB_BATCH, b->run)
                                                               : NULL;
    if (j) {
        j->recs = s->arena + s->arena_len;
        j->n = b->n;
        memcpy(j->recs, b->recs, b->n * sizeof *b->recs);
        s->arena_len += b->n;
        st = submit(s, j);
    } else {
        if (s->pool_on)
            run_idle(s, b->run);
        set_deadline(s);
        st = send_recs(&s->cx, s->runs[b->run].sid, b->recs, b->n);
        if (st != MLO_OK && s->pool_on)
            pool_cancel(s, st);
    }
    b->n = b->nmetrics = b->nparams = b->ntags = 0;
    b->bytes = 0;
    return st;
}

static batch *batch_for(mlo_sender *s, uint32_t run) {
    uint32_t h = (run * 2654435761u) & (HASH_SIZE - 1);
    while (s->slot[h] >= 0) {
        if (s->slot_run[h] == run)
            return &s->batches[s->slot[h]];
        h = (h + 1) & (HASH_SIZE - 1);
    }
    if (s->nbatches >= HASH_SIZE / 2)
        return NULL;
    if (s->nbatches == s->cap_batches) {
        size_t nc = s->cap_batches ? s->cap_batches * 2 : 16;
        batch *nb = realloc(s->batches, nc * sizeof *nb);
        if (!nb)
            return NULL;
        memset(nb + s->cap_batches, 0, (nc - s->cap_batches) * sizeof *nb);
        s->batches = nb;
        s->cap_batches = nc;
    }
    batch *b = &s->batches[s->nbatches];
    if (!b->recs) {
        b->recs = malloc(MLO_BATCH_MAX_TOTAL * sizeof *b->recs);
        if (!b->recs)
            return NULL;
    }
    b->run = run;
    b->n = b->nmetrics = b->nparams = b->ntags = 0;
    b->bytes = 0;
    s->slot[h] = (int32_t)s->nbatches++;
    s->slot_run[h] = run;
    return b;
}

static int has_key(const batch *b, int type, const char *key) {
    for (uint32_t i = 0; i < b->n; i++)
        if (b->recs[i]->type == type && strcmp(mlo__staged_key(b->recs[i]), key) == 0)
            return 1;
    return 0;
}

static int send_all(mlo_sender *s) {
    for (size_t i = 0; i < s->nbatches; i++) {
        int st = send_batch(s, &s->batches[i]);
        if (st != MLO_OK)
            return st;
    }
    return MLO_OK;
}

static int add_event(mlo_sender *s, const mlo_rec *r) {
    batch *b = batch_for(s, r->run);
    if (!b) {
        /* too many runs in one stage for the table: send what is open */
        int st = send_all(s);
        if (st != MLO_OK)
            return st;
        b = batch_for(s, r->run);
        if (!b) {
            fail_n(s, 1);
            return MLO_OK;
        }
    }
    size_t bytes = (size_t)r->key_len + r->val_len + 96;
    int full = b->n + 1 > MLO_BATCH_MAX_TOTAL || b->bytes + bytes > MLO_BATCH_MAX_BYTES;
    if (r->type == MLO_REC_METRIC)
        full |= b->nmetrics + 1 > MLO_BATCH_MAX_METRICS;
    else if (r->type == MLO_REC_PARAM)
        full |= b->nparams + 1 > MLO_BATCH_MAX_PARAMS || has_key(b, MLO_REC_PARAM, mlo__staged_key(r));
    else
        full |= b->ntags + 1 > MLO_BATCH_MAX_TAGS || has_key(b, MLO_REC_TAG, mlo__staged_key(r));
    if (full) {
        int st = send_batch(s, b);
        if (st != MLO_OK)
            return st;
    }
    b->recs[b->n++] = r;
    b->bytes += bytes;
    if (r->type == MLO_REC_METRIC)
        b->nmetrics++;
    else if (r->type == MLO_REC_PARAM)
        b->nparams++;
    else
        b->ntags++;
    return MLO_OK;
}

/* A runs/update or runs/log-inputs (kind) for record r, after the run's
 * requests before it: a job, or at once on this thread. */
static int send_one(mlo_sender *s, int kind, const mlo_rec *r, const mlo_dataset_payload *ds) {
    job *j = s->pool_on ? job_new(s, kind, r->run) : NULL;
    if (j) {
        j->rec = r;
        if (ds)
            j->ds = *ds;
        return submit(s, j);
    }
    if (s->pool_on)
        run_idle(s, r->run);
    const char *sid = s->runs[r->run].sid;
    int st = kind == JOB_END ? send_end(&s->cx, sid, r) : send_dataset(&s->cx, sid, r, ds);
    if (st != MLO_OK && s->pool_on)
        pool_cancel(s, st);
    return st;
}

static int end_run(mlo_sender *s, const mlo_rec *r) {
    batch *b = batch_for(s, r->run);
    if (b) {
        int st = send_batch(s, b);
        if (st != MLO_OK)
            return st;
    }
    return send_one(s, JOB_END, r, NULL);
}

/* runs/log-inputs for one staged DATASET record (key = name, value = the
 * payload of mlo_queue.h), after the run's open batch (order). */
static int log_dataset(mlo_sender *s, const mlo_rec *r) {
    srun *run = &s->runs[r->run];
    batch *b = batch_for(s, r->run);
    if (b) {
        int st = send_batch(s, b);
        if (st != MLO_OK)
            return st;
    }
    mlo_dataset_payload ds;
    if (mlo__dataset_payload_parse(mlo__staged_val(r), r->val_len, &ds) != 0) {
        fail_n(s, 1);
        mlo__report(s->c, MLO_ERR_INTERNAL, 1, "run %s: dataset \"%.250s\": malformed record",
                    run->sid, mlo__staged_key(r));
        return MLO_OK;
    }
    return send_one(s, JOB_DATASET, r, &ds);
}

static void reset_stage(mlo_sender *s) {
    for (size_t i = 0; i < s->nbatches; i++) {
        uint32_t run = s->batches[i].run;
        uint32_t h = (run * 2654435761u) & (HASH_SIZE - 1);
        while (s->slot_run[h] != run || s->slot[h] < 0)
            h = (h + 1) & (HASH_SIZE - 1);
        s->slot[h] = -1;
    }
    s->nbatches = 0;
    s->nstaged = 0;
    mlo__buf_reset(&s->stage);
}

/* Ready to send a stage through the pool: the arena holds every event of
 * the stage at most once (a batch never takes one twice). */
static int pool_begin(mlo_sender *s) {
    if (!s->pool || (!s->pool->nworkers && spawn(s->pool) != 0))
        return 0; /* no worker: this stage one request at a time */
    if (s->arena_cap < s->nstaged) {
        const mlo_rec **a = realloc(s->arena, s->nstaged * sizeof *a);
        if (!a)
            return 0; /* this stage one request at a time */
        s->arena = a;
        s->arena_cap = s->nstaged;
    }
    s->arena_len = 0;
    s->stage_st = MLO_OK;
    pthread_mutex_lock(&s->pool->lock);
    s->pool->cancel = MLO_OK;
    pthread_mutex_unlock(&s->pool->lock);
    return 1;
}

int mlo__sender_process(mlo_sender *s) {
    int st = MLO_OK;
    s->cx = (sendctx){.c = s->c, .api = s->api, .keep = s->keep};
    if (!s->api) {
        /* no server: nowhere to send (a memory-only client without a URI
         * cannot be opened; this is a store that could not be used) */
        uint64_t n = 0;
        for (size_t i = 0; i < s->nstaged; i++)
            n += ((const mlo_rec *)(s->stage.data + s->offs[i]))->type != MLO_EV_START_RUN;
        mlo__stat_add(s->c, MLO_STAT_FAILED, n);
        reset_stage(s);
        return MLO_OK;
    }
    s->pool_on = pool_begin(s);
    for (size_t i = 0; i < s->nstaged && st == MLO_OK; i++) {
        const mlo_rec *r = (const mlo_rec *)(s->stage.data + s->offs[i]);
        srun *run = &s->runs[r->run];
        switch (r->type) {
        case MLO_EV_START_RUN:
            st = start_run(s, r);
            break;
        case MLO_REC_METRIC:
        case MLO_REC_PARAM:
        case MLO_REC_TAG:
        case MLO_REC_END_RUN:
        case MLO_REC_DATASET:
            st = resolve(s, run);
            if (st != MLO_OK && !s->keep) {
                run_failed(s, run, st, "the server could not be asked about it");
                st = MLO_OK;
            }
            if (st != MLO_OK)
                break;
            if (run->state == SRUN_FAILED) {
                fail_n(s, 1);
                break;
            }
            st = r->type == MLO_REC_END_RUN   ? end_run(s, r)
                 : r->type == MLO_REC_DATASET ? log_dataset(s, r)
                                              : add_event(s, r);
            break;
        default:
            break;
        }
    }
    if (st == MLO_OK)
        st = send_all(s);
    if (s->pool_on) {
        /* the stage is done when every request of it is */
        if (st != MLO_OK)
            pool_cancel(s, st);
        pool_wait_all(s);
        if (st == MLO_OK)
            st = s->stage_st;
        s->pool_on = 0;
    }
    reset_stage(s);
    if (st != MLO_OK)
        return st; /* nothing counted: the stage will be sent again */
    mlo__stat_add(s->c, MLO_STAT_SENT, s->cx.sent);
    mlo__stat_add(s->c, MLO_STAT_ADOPTED, s->cx.adopted);
    mlo__stat_add(s->c, MLO_STAT_FAILED, s->cx.failed);
    return MLO_OK;
}

/* ---- reading the run log ------------------------------------------------------------------ */

/* Stages one event read from a segment. */
static int stage_event(mlo_sender *s, const mlo_log_event *ev, int flags) {
    if (!ev->run_id || !ev->run_id[0] || strlen(ev->run_id) > 32)
        return 0;
    switch (ev->type) {
    case MLO_REC_METRIC:
        return mlo__sender_add(s, ev->type, ev->run_id, ev->key ? ev->key : "",
                               ev->key ? strlen(ev->key) : 0, "", 0, ev->value_num, ev->timestamp,
                               ev->step, flags);
    case MLO_REC_PARAM:
    case MLO_REC_TAG:
        return mlo__sender_add(s, ev->type, ev->run_id, ev->key ? ev->key : "",
                               ev->key ? strlen(ev->key) : 0, ev->value ? ev->value : "",
                               ev->value ? strlen(ev->value) : 0, 0, 0, 0, flags);
    case MLO_REC_END_RUN:
        return mlo__sender_add(s, ev->type, ev->run_id, "", 0, "", 0, ev->value_num,
                               ev->timestamp, 0, flags);
    case MLO_REC_DATASET: {
        /* back into the record's payload (mlo_queue.h); a dataset without
         * name, source, digest or type would only be refused: counted failed */
        const char *f[4] = {ev->value, ev->digest, ev->source_type,
                            ev->context ? ev->context : ""};
        mlo__buf_reset(&s->scratch);
        for (int i = 0; i < 4; i++) {
            const char *v = f[i] ? f[i] : "";
            if (mlo__buf_append(&s->scratch, v, strlen(v) + (i < 3)) != 0)
                return -1;
        }
        return mlo__sender_add(s, ev->type, ev->run_id, ev->key ? ev->key : "",
                               ev->key ? strlen(ev->key) : 0, s->scratch.data, s->scratch.len, 0,
                               ev->timestamp, 0, flags);
    }
    case MLO_EV_START_RUN: {
        mlo_startrun sr = {.exp_name = ev->key,
                           .exp_id = ev->experiment_id,
                           .run_name = ev->value,
                           .parent = ev->parent_run_id};
        sr.ntags = ev->ntags < MLO_START_MAX_TAGS ? ev->ntags : MLO_START_MAX_TAGS;
        for (size_t i = 0; i < sr.ntags; i++) {
            sr.keys[i] = ev->tag_keys[i] ? ev->tag_keys[i] : "";
            sr.values[i] = ev->tag_values[i] ? ev->tag_values[i] : "";
        }
        mlo__buf_reset(&s->scratch);
        if (mlo__startrun_encode(&s->scratch, &sr) != 0)
            return -1;
        return mlo__sender_add(s, ev->type, ev->run_id, NULL, 0, s->scratch.data, s->scratch.len,
                               0, ev->timestamp, 0, flags);
    }
    default:
        return 0; /* a type this version does not know: skipped */
    }
}

/* Reads whole blocks from r into the stage, about STAGE_TARGET events.
 * Returns 1 (stage full, more may follow), 0 (no more complete blocks for
 * now), -1 (damage: err says what) or -2 (out of memory); *end gets the end
 * of the last block staged (unchanged if none). */
static int read_stage(mlo_sender *s, mlo_logr *r, int flags, uint64_t *end, char *err,
                      size_t errlen) {
    for (;;) {
        mlo_log_event ev;
        int rc = mlo__logr_next(r, &ev, err, errlen);
        if (rc != 1)
            return rc;
        if (stage_event(s, &ev, flags) != 0)
            return -2;
        if (mlo__logr_at_block_end(r)) {
            *end = mlo__logr_block_end(r);
            if (s->nstaged >= STAGE_TARGET)
                return 1;
        }
    }
}

/* ---- the outbox thread ---------------------------------------------------------------------- */

static void flush_done(mlo_client *c, uint64_t seq) {
    pthread_mutex_lock(&c->flush_lock);
    if (seq > c->flush_done)
        c->flush_done = seq;
    pthread_cond_broadcast(&c->flush_cond);
    pthread_mutex_unlock(&c->flush_lock);
}

/* The sender has acknowledged own segment seg up to off (UINT64_MAX: all). */
static void acked(mlo_client *c, uint32_t seg, uint64_t off) {
    mlo_pipe *p = c->pipe;
    uint64_t done = 0;
    pthread_mutex_lock(&p->lock);
    p->acked_seg = seg;
    p->acked_off = off;
    size_t k = 0;
    while (k < p->ntargets &&
           (p->targets[k].seg < seg || (p->targets[k].seg == seg && p->targets[k].off <= off)))
        done = p->targets[k++].seq;
    if (k) {
        memmove(p->targets, p->targets + k, (p->ntargets - k) * sizeof *p->targets);
        p->ntargets -= k;
    }
    pthread_mutex_unlock(&p->lock);
    if (done)
        flush_done(c, done);
}

/* Backoff after a transient failure: ends early only when closing and the
 * close deadline has passed.  Returns 1 when the thread should stop. */
static int backoff(mlo_client *c, int k) {
    double f = c->cfg.backoff_factor_s > 0 ? c->cfg.backoff_factor_s : 0.05;
    double secs = f * (double)(1u << (k < 10 ? k : 10));
    if (secs < 0.05)
        secs = 0.05;
    if (secs > 60)
        secs = 60;
    int64_t until = mlo__mono_ns() + (int64_t)(secs * 1e9);
    for (;;) {
        int64_t now = mlo__mono_ns();
        int64_t ab = abort_at(c);
        pthread_mutex_lock(&c->pipe->lock);
        int stop = c->pipe->stop;
        pthread_mutex_unlock(&c->pipe->lock);
        if (stop && ab && now >= ab)
            return 1;
        if (now >= until)
            return 0;
        int64_t step = until - now;
        if (ab && ab > now && ab - now < step)
            step = ab - now;
        if (step > 100000000)
            step = 100000000;
        struct timespec ts = {0, (long)(step > 0 ? step : 1000000)};
        nanosleep(&ts, NULL);
    }
}

/* A position in one segment the sender goes through. */
typedef struct cursor {
    const char *procid;
    uint32_t n;
    int flags;
    mlo_logr *r;
    uint64_t ack;
} cursor;

enum { STEP_MORE = 1, STEP_END = 0, STEP_FAIL = -1 };

static void cursor_close(cursor *k) {
    if (k->r)
        mlo__logr_close(k->r);
    k->r = NULL;
}

/* One stage of a segment: read, send, acknowledge.  STEP_MORE (more may
 * follow at once), STEP_END (no more complete blocks for now, or the segment
 * is unreadable past damage), STEP_FAIL (transient failure: the stage will
 * be read again from the acknowledged offset). */
static int step(mlo_sender *s, cursor *k) {
    mlo_client *c = s->c;
    char err[256] = "";
    if (!k->r) {
        char *path = mlo__store_seg_path(s->st, k->procid, k->n);
        k->r = path ? mlo__logr_open(path, err, sizeof err) : NULL;
        if (!k->r) {
            mlo__report(c, MLO_ERR_STORE, 1, "store: cannot read %s: %s; skipped",
                        path ? path : "a segment", err);
            free(path);
            return STEP_END;
        }
        free(path);
        k->ack = mlo__store_ack_get(s->st, k->procid, k->n);
        if (k->ack && mlo__logr_seek(k->r, k->ack) != 0) {
            k->ack = 0;
            mlo__logr_seek(k->r, 0);
        }
    }
    uint64_t end = k->ack;
    int rc = read_stage(s, k->r, k->flags, &end, err, sizeof err);
    if (rc == -2) {
        reset_stage(s);
        mlo__logr_seek(k->r, k->ack);
        return STEP_FAIL;
    }
    if (mlo__sender_staged(s)) {
        int st = mlo__sender_process(s);
        if (st != MLO_OK) {
            mlo__report(c, st, 1,
                        "server unreachable or failing (%s): events are kept in the store and "
                        "sent when it answers",
                        mlo_strerror(st));
            mlo__logr_seek(k->r, k->ack);
            return STEP_FAIL;
        }
        if (end != k->ack) {
            k->ack = end;
            mlo__store_ack_set(s->st, k->procid, k->n, k->ack,
                               mlo__store_fsync_policy(s->st) == MLO_FSYNC_ALWAYS);
        }
    }
    if (rc == 1)
        return STEP_MORE;
    if (rc == -1) {
        mlo__report(c, MLO_ERR_STORE, 1, "store: segment %s-%06u damaged: %s", k->procid, k->n,
                    err);
        return mlo__logr_skip_damage(k->r) == 1 ? STEP_MORE : STEP_END;
    }
    return STEP_END;
}

/* Own segments first (so a flush or a new run never waits behind a backlog),
 * then, whenever the own log is caught up, one stage at a time of what
 * earlier processes left unsent. */
void *mlo__sender_main(void *arg) {
    mlo_client *c = arg;
    mlo_pipe *p = c->pipe;
    mlo_sender *s = mlo__sender_new(c, c->store, 1);
    if (!s) {
        mlo__report(c, MLO_ERR_NO_MEMORY, 0,
                    "sender: out of memory; events stay in the store for the next process");
        return NULL;
    }
    size_t nad;
    const mlo_seg_ref *ad = mlo__store_adopted(c->store, &nad);
    size_t ai = 0;
    cursor own = {.procid = mlo__store_procid(c->store), .n = 1};
    cursor old = {0};
    int fails = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        uint32_t wseg = p->seg;
        uint64_t wcommitted = p->committed;
        int wdone = p->writer_done, stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        int64_t ab = abort_at(c);
        if (stop && ab && mlo__mono_ns() >= ab)
            break;
        int caught_up = 1;
        if (wseg && own.n <= wseg) {
            int r = step(s, &own);
            if (r == STEP_FAIL) {
                atomic_store_explicit(&c->sender_failing, 1, memory_order_relaxed);
                if (backoff(c, fails++))
                    break;
                continue;
            }
            atomic_store_explicit(&c->sender_failing, 0, memory_order_relaxed);
            fails = 0;
            if (r == STEP_MORE)
                continue;
            if (own.n < wseg) {
                /* the writer has moved on: this segment is complete */
                acked(c, own.n, UINT64_MAX);
                cursor_close(&own);
                own.n++;
                continue;
            }
            /* everything the writer had committed before we read is sent */
            acked(c, own.n, wcommitted > own.ack ? wcommitted : own.ack);
        } else if (wseg) {
            caught_up = 1;
        }
        if (stop && wdone && caught_up)
            break;
        if (!stop && ai < nad) {
            if (!old.r) {
                old.procid = ad[ai].procid;
                old.n = ad[ai].n;
                old.flags = FLAG_ADOPTED;
            }
            int r = step(s, &old);
            if (r == STEP_FAIL) {
                if (backoff(c, fails++))
                    break;
                continue;
            }
            fails = 0;
            if (r == STEP_END) {
                cursor_close(&old);
                ai++;
            }
            continue;
        }
        pthread_mutex_lock(&p->lock);
        if (p->seg == wseg && p->committed == wcommitted && !p->stop) {
            int64_t t = mlo__mono_ns() + 1000000000;
            struct timespec ts = {t / 1000000000, t % 1000000000};
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        }
        pthread_mutex_unlock(&p->lock);
    }
    cursor_close(&own);
    cursor_close(&old);
    mlo__sender_free(s);
    return NULL;
}

/* ---- sync ---------------------------------------------------------------------------------- */

int mlo__sender_drain_segments(mlo_sender *s, const mlo_seg_ref *segs, size_t n,
                               void (*progress)(void *ctx, uint64_t done, uint64_t total),
                               void *ctx, char *errbuf, size_t errlen) {
    mlo_client *c = s->c;
    uint64_t total = 0, done = 0;
    uint64_t *acks = calloc(n ? n : 1, sizeof *acks);
    uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    if (!acks || !sizes) {
        free(acks);
        free(sizes);
        return MLO_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        char *path = mlo__store_seg_path(s->st, segs[i].procid, segs[i].n);
        struct stat sb;
        if (path && stat(path, &sb) == 0)
            sizes[i] = (uint64_t)sb.st_size;
        free(path);
        acks[i] = mlo__store_ack_get(s->st, segs[i].procid, segs[i].n);
        if (sizes[i] > acks[i])
            total += sizes[i] - (acks[i] ? acks[i] : 0);
    }
    if (progress)
        progress(ctx, 0, total);
    int result = MLO_OK, damaged = 0;
    char err[256];
    for (size_t i = 0; i < n && result == MLO_OK; i++) {
        char *path = mlo__store_seg_path(s->st, segs[i].procid, segs[i].n);
        err[0] = 0;
        mlo_logr *r = path ? mlo__logr_open(path, err, sizeof err) : NULL;
        if (!r) {
            mlo__report(c, MLO_ERR_STORE, 0, "cannot read %s: %s", path ? path : "a segment",
                        err);
            if (errbuf && errlen && !errbuf[0])
                snprintf(errbuf, errlen, "cannot read %s: %s", path ? path : "a segment", err);
            free(path);
            damaged = 1;
            continue;
        }
        uint64_t ack = acks[i];
        if (ack && mlo__logr_seek(r, ack) != 0)
            ack = 0;
        uint64_t base = ack;
        int tries = 0;
        for (;;) {
            uint64_t end = ack;
            err[0] = 0;
            int rc = read_stage(s, r, FLAG_ADOPTED, &end, err, sizeof err);
            if (rc == -2) {
                reset_stage(s);
                result = MLO_ERR_NO_MEMORY;
                break;
            }
            if (mlo__sender_staged(s)) {
                int st = mlo__sender_process(s);
                if (st != MLO_OK) {
                    if (++tries <= 2) {
                        struct timespec ts = {tries, 0};
                        nanosleep(&ts, NULL);
                        mlo__logr_seek(r, ack);
                        continue;
                    }
                    if (errbuf && errlen)
                        snprintf(errbuf, errlen,
                                 "the server could not take the events (%s); nothing is lost: "
                                 "run sync again later",
                                 mlo_strerror(st));
                    result = st;
                    break;
                }
                tries = 0;
                if (end != ack) {
                    done += end - ack;
                    ack = end;
                    mlo__store_ack_set(s->st, segs[i].procid, segs[i].n, ack, 1);
                    if (progress)
                        progress(ctx, done, total);
                }
            }
            if (rc == 1)
                continue;
            if (rc == -1) {
                mlo__report(c, MLO_ERR_STORE, 0, "segment %s damaged: %s", path, err);
                if (errbuf && errlen && !errbuf[0])
                    snprintf(errbuf, errlen,
                             "segment %s damaged (%s): the intact blocks were uploaded", path,
                             err);
                damaged = 1;
                if (mlo__logr_skip_damage(r) == 1)
                    continue;
            }
            break;
        }
        if (result == MLO_OK && sizes[i] > base && done < total) {
            /* a torn tail or damage: count the segment as done */
            uint64_t rest = sizes[i] - ack;
            done += rest;
            if (progress)
                progress(ctx, done > total ? total : done, total);
        }
        mlo__logr_close(r);
        free(path);
    }
    free(acks);
    free(sizes);
    return result == MLO_OK && damaged ? MLO_ERR_STORE : result;
}
