/*
 * mlo_sender.c - the sender's core: creates runs on the server and sends
 * their events in requests within MLflow's limits, as many in flight as the
 * configuration allows, and says when a chunk of events is wholly
 * delivered (the outbox acknowledges it then).  The requests themselves are
 * mlo_requests.c; the workers that carry them, mlo_inflight.c.
 *
 * Intake.  Events arrive in chunks (the outbox: whole blocks of a segment;
 * the writer without a store: what it drained), are copied into the chunk's
 * slabs (records never move, so requests can point at them) and taken in
 * order:
 *  - START_RUN: the run's server id from runs.map, else from a search on its
 *    `mlo.local_id` tag (a creation whose runs.map line was lost in a crash),
 *    else runs/create with the original start time, name and tags; the
 *    mapping is written to runs.map (fsync'd) before anything is sent to the
 *    run, and handed to mlo_start_run waiting in the client.  When the
 *    answer to runs/create was lost the run is marked ambiguous: the server
 *    may carry the request out late, and the run's end first removes such
 *    copies (mlo__requests_sweep).
 *  - METRIC/PARAM/TAG go to their run's open batch; a batch that would break
 *    a limit (1000 metrics, 100 params, 100 tags, 1000 entries, ~900 KB, or
 *    a param/tag key already in it) becomes a request.
 *  - END_RUN and DATASET close the run's open batches, then become a
 *    request of their own.
 *  A run whose creation the server refused for good has its events counted
 *  as failed.  A transient failure of creation (or of resolving a run seen
 *  without its start) stops the intake; it is tried again after the outbox
 *  pause while requests already made go on.
 *
 * Order.  Metrics are order-free on the server (history is keyed by step
 * and timestamp; the latest value compares step, timestamp, value), so
 * batches holding only metrics of one run may be in flight together
 * ("free" requests).  Batches holding params or tags (a tag's last value
 * wins) go one after the other ("ordered").  A run's end and a dataset input ("barriers") wait
 * until every earlier request of the run is done, and later ones wait for them: a run ends only
 * after all its data is acknowledged.  Different runs never wait for each other.
 *
 * Requests in flight.  Up to max_inflight requests are with the workers at
 * once (mlo_inflight.c; max_inflight = 1: every request on the calling
 * thread).  There is no stage barrier: more events are taken while requests
 * are out, and a request that fails transiently (network, 5xx/429 after the
 * transport's retries, 401/403, an unreadable answer) is tried again alone
 * after its own pause (mlo__retry_backoff_ns) while the others go on.  A
 * batch the server refuses as invalid is split by the request itself until
 * the offending entries stand alone (mlo_requests.c).
 *
 * Delivery.  A chunk is done when every event of it was delivered or
 * refused for good; chunks are done in their order (mlo__sender_pump calls
 * the ack function, the outbox writes the acknowledgement then), so a crash
 * resends at most what was not acknowledged, which the server takes
 * idempotently (an identical metric point is stored once, an identical
 * param accepted, tags are last-write-wins, runs are found by runs.map or
 * their tag).
 *
 * Synchronous use (mlo__sender_process: the writer without a store, `mlo
 * sync`): the staged events are sent and waited for; with keep (an outbox)
 * a transient failure drops what is not delivered and returns the status
 * (the caller reads it again); without keep (memory only) what cannot be
 * sent after the transport's retries counts as failed.
 *
 * Threads: a sender belongs to one thread (the outbox's worker, the writer,
 * `mlo sync`).  It shares with others the environment's counters, the
 * client's run table (mlo__runs_created) and, with its own workers, the
 * jobs (mlo_inflight.c).
 */
#define _GNU_SOURCE
#include "mlo_sender.h"

#include "mlo_api.h"
#include "mlo_inflight.h"
#include "mlo_kv.h"
#include "mlo_log.h"
#include "mlo_payload.h"
#include "mlo_requests.h"
#include "mlo_retry.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRUN_BUCKETS 4096
#define SLAB_BYTES (256u * 1024u)
#define LOCAL_ID_TAG "mlo.local_id"
#define ACK_NONE UINT64_MAX - 1 /* a chunk without an acknowledgement to write */

enum { SRUN_UNKNOWN = 0, SRUN_MAPPED = 1, SRUN_FAILED = 2 };
enum { LANE_FREE = 0, LANE_ORDERED = 1, LANE_BARRIER = 2 };
enum { JOB_WAITING = 0, JOB_OUT = 1 };

/* ---- chunks: staged events, their slabs and their delivery -------------------- */

typedef struct slab {
    struct slab *next;
    size_t used, cap;
    _Alignas(8) char data[];
} slab;

typedef struct chunk chunk;

/* A staged record: which chunk it belongs to, then the mlo_rec header, the
 * key, NUL, the value, NUL (mlo__payload_staged_key/_val read it). */
typedef struct srec {
    chunk *c;
    mlo_rec r;
} srec;

struct chunk {
    chunk *next;
    slab *slabs;
    const mlo_rec **recs; /* in order */
    size_t n, cap;
    size_t taken;   /* records the intake has handled */
    size_t pending; /* events handed to requests and not done */
    int closed;     /* every record of it is in (the ack position is known) */
    char procid[48];
    uint32_t seg;
    uint64_t end; /* ACK_NONE: nothing to acknowledge */
};

static chunk *rec_chunk(const mlo_rec *r) {
    return ((const srec *)((const char *)r - offsetof(srec, r)))->c;
}

/* ---- runs ----------------------------------------------------------------------- */

typedef struct batch {
    const mlo_rec **recs;
    uint32_t n, nmetrics, nparams, ntags;
    size_t bytes;
} batch;

typedef struct srun {
    char lid[33];
    char *sid;
    char *exp;
    int state;
    int fail_status;
    int ambiguous;             /* runs/create may have been carried out unseen */
    int map_pending;           /* created, its runs.map line not written yet */
    uint32_t next;             /* hash chain: index + 1 */
    batch open;                /* the open batch */
    int open_listed;           /* on the sender's list of runs with open batches */
    mlo_job *jobs, *jobs_tail; /* outstanding requests, in order */
    int active_listed;         /* on the list of runs with outstanding requests */
    uint64_t seq;
} srun;

struct mlo_sender {
    mlo_env *env;
    mlo_runs *client_runs; /* told when a run gets its server id (NULL: nobody) */
    mlo_store *st;
    int keep;
    mlo_api *api;
    mlo_inflight *pool; /* NULL: one request at a time, on this thread */
    size_t max_out, out;
    size_t map_pending; /* runs created whose runs.map line could not be written */
    mlo_job *free_jobs;
    /* chunks, oldest first; the last one may be open */
    chunk *head, *tail;
    size_t staged; /* events staged and not done */
    /* intake: the chunk and record it is at; a transient failure pauses it */
    int64_t intake_retry_at;
    int intake_fails;
    /* runs seen */
    srun *runs;
    size_t nruns, capruns;
    uint32_t *heads;
    uint32_t *open, nopen, capopen;       /* runs with open batches */
    uint32_t *active, nactive, capactive; /* runs with outstanding requests */
    /* experiment name -> id */
    mlo_kv *exps;
    size_t nexps;
    int failing; /* requests fail transiently (reported once, until one goes through) */
    /* synchronous use: the first transient failure */
    int sync_mode;
    int sync_st;
    mlo_reqctx cx; /* this thread's requests */
    mlo_buf scratch;
    mlo_sender_ack_fn ack;
    void *ack_ctx;
};

/* ---- new / free --------------------------------------------------------------- */

mlo_sender *mlo__sender_new(mlo_env *env, mlo_store *st, int keep, mlo_runs *runs) {
    mlo_sender *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const mlo_config *cfg = env->cfg;
    s->env = env;
    s->client_runs = runs;
    s->st = st;
    s->keep = keep;
    s->api = cfg->tracking_uri ? mlo__api_new(env) : NULL;
    s->heads = calloc(SRUN_BUCKETS, sizeof *s->heads);
    if ((cfg->tracking_uri && !s->api) || !s->heads) {
        mlo__sender_free(s);
        return NULL;
    }
    s->cx = (mlo_reqctx){.env = env, .api = s->api, .keep = keep};
    s->max_out = 1;
    /* workers only to send; they start with the first request, as many as
     * requests are waiting, up to max_inflight */
    if (s->api && cfg->max_inflight > 1) {
        s->pool = mlo__inflight_new(env, keep, cfg->max_inflight);
        if (s->pool)
            s->max_out = (size_t)cfg->max_inflight;
    }
    return s;
}

static void collect(mlo_sender *s, int wait);

static void chunk_free(chunk *c) {
    while (c->slabs) {
        slab *n = c->slabs->next;
        free(c->slabs);
        c->slabs = n;
    }
    free(c->recs);
    free(c);
}

static void job_free(mlo_job *j) {
    free(j->recs);
    mlo__buf_free(&j->reports);
    free(j);
}

void mlo__sender_free(mlo_sender *s) {
    if (!s)
        return;
    /* no request may be out when a sender is freed: wait for the workers */
    while (s->pool && s->out)
        collect(s, 1);
    mlo__inflight_free(s->pool);
    for (size_t i = 0; i < s->nruns; i++) {
        srun *r = &s->runs[i];
        free(r->sid);
        free(r->exp);
        free(r->open.recs);
        for (mlo_job *j = r->jobs; j;) {
            mlo_job *n = j->run_next;
            job_free(j);
            j = n;
        }
    }
    while (s->free_jobs) {
        mlo_job *j = s->free_jobs;
        s->free_jobs = j->next;
        job_free(j);
    }
    while (s->head) {
        chunk *c = s->head;
        s->head = c->next;
        chunk_free(c);
    }
    free(s->runs);
    free(s->heads);
    free(s->open);
    free(s->active);
    mlo__kv_free(s->exps, s->nexps);
    mlo__buf_free(&s->scratch);
    if (s->api)
        mlo__api_free(s->api);
    free(s);
}

void mlo__sender_set_ack(mlo_sender *s, mlo_sender_ack_fn fn, void *ctx) {
    s->ack = fn;
    s->ack_ctx = ctx;
}

void mlo__sender_set_notify(mlo_sender *s, void (*fn)(void *ctx), void *ctx) {
    if (s->pool)
        mlo__inflight_set_notify(s->pool, fn, ctx);
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

static int list_add(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t x) {
    if (*n == *cap) {
        uint32_t nc = *cap ? 2 * *cap : 64;
        uint32_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

/* ---- staging -------------------------------------------------------------------- */

static chunk *open_chunk(mlo_sender *s) {
    if (s->tail && !s->tail->closed)
        return s->tail;
    chunk *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->end = ACK_NONE;
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    return c;
}

static void *slab_alloc(chunk *c, size_t need) {
    slab *sl = c->slabs;
    if (!sl || sl->cap - sl->used < need) {
        size_t cap = need > SLAB_BYTES ? need : SLAB_BYTES;
        slab *n = malloc(sizeof *n + cap);
        if (!n)
            return NULL;
        n->used = 0;
        n->cap = cap;
        n->next = c->slabs;
        c->slabs = n;
        sl = n;
    }
    void *p = sl->data + sl->used;
    sl->used += need;
    return p;
}

int mlo__sender_add(mlo_sender *s, int type, const char *lid, const char *key, size_t klen,
                    const char *val, size_t vlen, double num, int64_t ts, int64_t step, int flags) {
    long run = srun_for(s, lid, strlen(lid));
    chunk *c = run < 0 ? NULL : open_chunk(s);
    if (!c)
        return -1;
    if (type == MLO_EV_START_RUN) {
        key = lid;
        klen = strlen(lid);
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 1024;
        const mlo_rec **nr = realloc(c->recs, nc * sizeof *nr);
        if (!nr)
            return -1;
        c->recs = nr;
        c->cap = nc;
    }
    size_t need = sizeof(srec) + klen + 1 + vlen + 1;
    need = (need + MLO_REC_ALIGN - 1) & ~(size_t)(MLO_REC_ALIGN - 1);
    srec *sr = slab_alloc(c, need);
    if (!sr)
        return -1;
    sr->c = c;
    sr->r = (mlo_rec){.size = (uint32_t)flags,
                      .type = (uint16_t)type,
                      .key_len = (uint16_t)klen,
                      .run = (uint32_t)run,
                      .val_len = (uint32_t)vlen,
                      .timestamp = ts,
                      .step = step,
                      .value = num};
    char *p = (char *)(&sr->r + 1);
    if (klen)
        memcpy(p, key, klen);
    p[klen] = 0;
    if (vlen)
        memcpy(p + klen + 1, val, vlen);
    p[klen + 1 + vlen] = 0;
    c->recs[c->n++] = &sr->r;
    if (type != MLO_EV_START_RUN)
        s->staged++;
    return 0;
}

void mlo__sender_close_chunk(mlo_sender *s, const char *procid, uint32_t seg, uint64_t end) {
    chunk *c = open_chunk(s);
    if (!c)
        return; /* out of memory: the records of the open chunk (if any) stay unacknowledged */
    snprintf(c->procid, sizeof c->procid, "%s", procid ? procid : "");
    c->seg = seg;
    c->end = procid ? end : ACK_NONE;
    c->closed = 1;
}

size_t mlo__sender_staged(const mlo_sender *s) {
    return s->staged;
}

int mlo__sender_idle(const mlo_sender *s) {
    return !s->head;
}

/* ---- delivery --------------------------------------------------------------------- */

/* n events of records recs are done (delivered or refused for good). */
static void done_recs(mlo_sender *s, const mlo_rec *const *recs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        chunk *c = rec_chunk(recs[i]);
        c->pending--;
        s->staged--;
    }
}

/* An event that never became a request: counted failed, done. */
static void fail_rec(mlo_sender *s, const mlo_rec *r) {
    mlo__env_stat(s->env, MLO_STAT_FAILED, 1);
    s->staged--;
    (void)r;
}

/* Chunks done in order: acknowledged, freed. */
/* Writes the runs.map lines that could not be written when their runs
 * were created (out of memory, a full disk): MLO_OK when none is left. */
static int retry_maps(mlo_sender *s) {
    for (size_t i = 0; i < s->nruns && s->map_pending; i++) {
        srun *r = &s->runs[i];
        if (r->map_pending && mlo__store_map_put(s->st, r->lid, r->sid) == 0) {
            r->map_pending = 0;
            s->map_pending--;
        }
    }
    return s->map_pending ? MLO_ERR_STORE : MLO_OK;
}

/* Acknowledges the chunks wholly delivered, in order.  Not while a run's
 * runs.map line is missing: a chunk acknowledged is never read again, and
 * the mapping (`mlo sync`'s artifacts look a run up there) would be lost
 * with it. */
static void ack_chunks(mlo_sender *s) {
    if (s->map_pending)
        return;
    while (s->head && s->head->closed && s->head->taken == s->head->n && !s->head->pending) {
        chunk *c = s->head;
        s->head = c->next;
        if (!s->head)
            s->tail = NULL;
        if (s->ack && c->end != ACK_NONE)
            s->ack(s->ack_ctx, c->procid, c->seg, c->end);
        chunk_free(c);
    }
}

/* ---- runs on the server -------------------------------------------------------------- */

static int exp_id_for(mlo_sender *s, const char *name, char **out, mlo_api_error *e) {
    const char *known = mlo__kv_get(s->exps, s->nexps, name);
    if (known) {
        *out = strdup(known);
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
    mlo__api_set_deadline(s->api, mlo__env_abort_at(s->env));
}

static void mapped(mlo_sender *s, srun *r, char *sid, char *exp) {
    r->sid = sid;
    if (exp) {
        free(r->exp);
        r->exp = exp;
    }
    r->state = SRUN_MAPPED;
    if (s->client_runs)
        mlo__runs_created(s->client_runs, r->lid, sid, exp, MLO_OK);
}

static void run_failed(mlo_sender *s, srun *r, int st, const char *msg) {
    r->state = SRUN_FAILED;
    r->fail_status = st;
    mlo__env_report(s->env, st, 1, "run %s: %s", r->lid, msg);
    if (s->client_runs)
        mlo__runs_created(s->client_runs, r->lid, NULL, NULL, st);
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
    if (mlo__retry_permanent(st)) {
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
        if (s->client_runs)
            mlo__runs_created(s->client_runs, r->lid, r->sid, r->exp, MLO_OK);
        return MLO_OK;
    }
    if (r->state == SRUN_FAILED)
        return MLO_OK;
    char *sid = NULL;
    if (s->st && mlo__store_map_get(s->st, r->lid, &sid)) {
        mapped(s, r, sid, NULL);
        return MLO_OK;
    }
    mlo_startrun sr;
    if (mlo__payload_startrun_parse(mlo__payload_staged_val(rec), rec->val_len, &sr) != 0) {
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
            r = &s->runs[rec->run]; /* srun_for may have moved the table */
            if (pi >= 0) {
                int pst = resolve(s, &s->runs[pi]);
                if (pst != MLO_OK && !mlo__retry_permanent(pst)) {
                    mlo__kv_free(tags, ntags);
                    free(exp);
                    return pst;
                }
                if (s->runs[pi].sid)
                    oom |= mlo__kv_push(&tags, &ntags, "mlflow.parentRunId", s->runs[pi].sid);
            }
        }
        if (oom) {
            mlo__kv_free(tags, ntags);
            free(exp);
            return MLO_ERR_NO_MEMORY;
        }
        /* runs/create is not repeated by the transport once it may have
         * reached the server (a lost answer would create the run twice): look
         * for the run's tag, and only then create again.  With an outbox a
         * later pass does that after the pause; memory-only, here, within
         * the retry budget.  Either way the run is marked ambiguous: the
         * server may still carry out a request it received late. */
        for (int attempt = 0;; attempt++) {
            st = mlo__api_create_run(s->api, exp, sr.run_name, rec->timestamp, tags, ntags, &sid,
                                     &e);
            if (st != MLO_ERR_NETWORK && st != MLO_ERR_TIMEOUT)
                break;
            r->ambiguous = 1;
            mlo__env_report(s->env, MLO_WARN_RETRY, 1,
                            "run %s: create run: %s; looking for it by its %s tag before trying "
                            "again",
                            r->lid, e.message[0] ? e.message : mlo_strerror(st), LOCAL_ID_TAG);
            mlo_api_error e2;
            int fst = mlo__api_search_run_by_tag(s->api, exp, LOCAL_ID_TAG, r->lid, &sid, &e2);
            if (fst == MLO_OK) {
                st = MLO_OK;
                break;
            }
            if (fst != MLO_ERR_NOT_FOUND || attempt >= s->env->cfg->max_retries ||
                mlo__env_aborted(s->env))
                break;
            mlo__clock_sleep(mlo__env_clock(s->env),
                             200 * 1000000LL << (attempt < 3 ? attempt : 3));
        }
        mlo__kv_free(tags, ntags);
    }
    if (st == MLO_OK) {
        if (s->st && mlo__store_map_put(s->st, r->lid, sid) != 0) {
            /* its events go on (the tag search finds the run after a
             * crash); the line is written again before anything after it
             * is acknowledged (retry_maps) */
            mlo__env_report(s->env, MLO_ERR_STORE, 1,
                            "run %s: cannot record its server id in runs.map yet: %s", r->lid,
                            strerror(errno));
            r->map_pending = 1;
            s->map_pending++;
        }
        mapped(s, r, sid, exp);
        return MLO_OK;
    }
    free(exp);
    char msg[700];
    snprintf(msg, sizeof msg, "create run: %s", e.message[0] ? e.message : mlo_strerror(st));
    if (mlo__retry_permanent(st) || !s->keep) {
        run_failed(s, r, st, msg);
        return MLO_OK;
    }
    mlo__env_report(s->env, st, 1, "run %s: %s (will retry)", r->lid, msg);
    return st;
}

/* ---- requests ------------------------------------------------------------------------ */

static mlo_job *job_new(mlo_sender *s, int kind, uint32_t run, int lane) {
    mlo_job *j = s->free_jobs;
    if (j) {
        s->free_jobs = j->next;
    } else {
        j = calloc(1, sizeof *j);
        if (!j)
            return NULL;
    }
    j->kind = kind;
    j->run = run;
    j->n = 0;
    j->rec = NULL;
    j->sweep_lid = j->sweep_exp = NULL;
    j->lane = lane;
    j->state = JOB_WAITING;
    j->attempts = 0;
    j->retry_at = 0;
    j->run_next = NULL;
    j->next = NULL;
    return j;
}

static void job_recycle(mlo_sender *s, mlo_job *j) {
    j->next = s->free_jobs;
    s->free_jobs = j;
}

/* Appends j to its run's outstanding requests. */
static int job_enqueue(mlo_sender *s, mlo_job *j) {
    srun *r = &s->runs[j->run];
    if (!r->active_listed) {
        if (list_add(&s->active, &s->nactive, &s->capactive, j->run) != 0)
            return -1;
        r->active_listed = 1;
    }
    j->seq = ++r->seq;
    if (r->jobs_tail)
        r->jobs_tail->run_next = j;
    else
        r->jobs = j;
    r->jobs_tail = j;
    return 0;
}

/* Makes a request of the open batch b of run `run`: free when it holds only
 * metrics, ordered when it holds params or tags. */
static int batch_to_job(mlo_sender *s, uint32_t run, batch *b) {
    if (b->n == 0)
        return MLO_OK;
    int lane = b->nparams || b->ntags ? LANE_ORDERED : LANE_FREE;
    mlo_job *j = job_new(s, MLO_JOB_BATCH, run, lane);
    if (!j)
        return MLO_ERR_NO_MEMORY;
    /* enqueued before anything moves: out of memory leaves the batch as it
     * was, open, for the next try */
    if (job_enqueue(s, j) != 0) {
        job_recycle(s, j);
        return MLO_ERR_NO_MEMORY;
    }
    /* the batch's array moves to the job, the job's old one (if any) to the batch */
    const mlo_rec **keep = j->recs;
    size_t kcap = j->cap;
    j->recs = b->recs;
    j->n = b->n;
    j->cap = MLO_BATCH_MAX_TOTAL;
    b->recs = kcap >= MLO_BATCH_MAX_TOTAL ? keep : NULL;
    if (!b->recs)
        free(keep);
    b->n = b->nmetrics = b->nparams = b->ntags = 0;
    b->bytes = 0;
    return MLO_OK;
}

static int close_batches(mlo_sender *s, uint32_t run) {
    return batch_to_job(s, run, &s->runs[run].open);
}

/* The first `k` open batches (in the order they were opened) become
 * requests; UINT32_MAX: every one (nothing more is coming for now). */
static void close_open_batches(mlo_sender *s, uint32_t k) {
    uint32_t n = k < s->nopen ? k : s->nopen, kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t run = s->open[i];
        if (close_batches(s, run) != MLO_OK)
            s->open[kept++] = run; /* out of memory: still open, tried again later */
        else
            s->runs[run].open_listed = 0;
    }
    if (s->nopen > n)
        memmove(s->open + kept, s->open + n, (s->nopen - n) * sizeof *s->open);
    s->nopen -= n - kept;
}

static void close_all_batches(mlo_sender *s) {
    close_open_batches(s, UINT32_MAX);
}

static int has_key(const batch *b, int type, const char *key) {
    for (uint32_t i = 0; i < b->n; i++)
        if (b->recs[i]->type == type && strcmp(mlo__payload_staged_key(b->recs[i]), key) == 0)
            return 1;
    return 0;
}

static int add_event(mlo_sender *s, const mlo_rec *rec) {
    srun *r = &s->runs[rec->run];
    batch *b = &r->open;
    if (!b->recs && !(b->recs = malloc(MLO_BATCH_MAX_TOTAL * sizeof *b->recs)))
        return MLO_ERR_NO_MEMORY;
    size_t bytes = (size_t)rec->key_len + rec->val_len + 96;
    int full = b->n + 1 > MLO_BATCH_MAX_TOTAL || b->bytes + bytes > MLO_BATCH_MAX_BYTES;
    if (rec->type == MLO_REC_METRIC)
        full |= b->nmetrics + 1 > MLO_BATCH_MAX_METRICS;
    else if (rec->type == MLO_REC_PARAM)
        full |= b->nparams + 1 > MLO_BATCH_MAX_PARAMS ||
                has_key(b, MLO_REC_PARAM, mlo__payload_staged_key(rec));
    else
        full |= b->ntags + 1 > MLO_BATCH_MAX_TAGS ||
                has_key(b, MLO_REC_TAG, mlo__payload_staged_key(rec));
    if (full) {
        int st = batch_to_job(s, rec->run, b);
        if (st != MLO_OK)
            return st;
        if (!b->recs && !(b->recs = malloc(MLO_BATCH_MAX_TOTAL * sizeof *b->recs)))
            return MLO_ERR_NO_MEMORY;
    }
    if (!r->open_listed) {
        if (list_add(&s->open, &s->nopen, &s->capopen, rec->run) != 0)
            return MLO_ERR_NO_MEMORY;
        r->open_listed = 1;
    }
    b->recs[b->n++] = rec;
    b->bytes += bytes;
    if (rec->type == MLO_REC_METRIC)
        b->nmetrics++;
    else if (rec->type == MLO_REC_PARAM)
        b->nparams++;
    else
        b->ntags++;
    rec_chunk(rec)->pending++;
    return MLO_OK;
}

/* END_RUN or DATASET: the run's open batches first, then a request of its
 * own that waits for everything before it. */
static int barrier(mlo_sender *s, const mlo_rec *rec, int kind) {
    srun *r = &s->runs[rec->run];
    if (close_batches(s, rec->run) != MLO_OK)
        return MLO_ERR_NO_MEMORY; /* the record is taken again later */
    mlo_job *j = job_new(s, kind, rec->run, LANE_BARRIER);
    if (!j)
        return MLO_ERR_NO_MEMORY;
    j->rec = rec;
    if (kind == MLO_JOB_DATASET &&
        mlo__payload_dataset_parse(mlo__payload_staged_val(rec), rec->val_len, &j->ds) != 0) {
        job_recycle(s, j);
        mlo__env_report(s->env, MLO_ERR_INTERNAL, 1, "run %s: dataset \"%.250s\": malformed record",
                        r->sid, mlo__payload_staged_key(rec));
        fail_rec(s, rec);
        return MLO_OK;
    }
    if (kind == MLO_JOB_END && r->ambiguous) {
        j->sweep_lid = r->lid;
        j->sweep_exp = r->exp;
    }
    if (job_enqueue(s, j) != 0) {
        job_recycle(s, j);
        return MLO_ERR_NO_MEMORY;
    }
    rec_chunk(rec)->pending++;
    return MLO_OK;
}

/* The intake: records in order, from where it stopped.  A transient failure
 * (creating or resolving a run) stops it: MLO_OK when it got through all
 * closed chunks' records, else that status. */
static int intake(mlo_sender *s) {
    int64_t now = mlo__env_mono(s->env);
    if (s->intake_retry_at && now < s->intake_retry_at)
        return MLO_ERR_NETWORK;
    s->intake_retry_at = 0;
    for (chunk *c = s->head; c; c = c->next) {
        while (c->taken < c->n) {
            const mlo_rec *rec = c->recs[c->taken];
            srun *run = &s->runs[rec->run];
            int st = MLO_OK;
            if (rec->type == MLO_EV_START_RUN) {
                st = s->api ? start_run(s, rec) : MLO_OK;
            } else if (!s->api) {
                fail_rec(s, rec); /* no server: nowhere to send */
            } else {
                st = resolve(s, run);
                if (st != MLO_OK && !s->keep) {
                    run_failed(s, run, st, "the server could not be asked about it");
                    st = MLO_OK;
                }
                if (st == MLO_OK) {
                    if (run->state == SRUN_FAILED)
                        fail_rec(s, rec);
                    else if (rec->type == MLO_REC_END_RUN)
                        st = barrier(s, rec, MLO_JOB_END);
                    else if (rec->type == MLO_REC_DATASET)
                        st = barrier(s, rec, MLO_JOB_DATASET);
                    else if (rec->type == MLO_REC_METRIC || rec->type == MLO_REC_PARAM ||
                             rec->type == MLO_REC_TAG)
                        st = add_event(s, rec);
                    else
                        fail_rec(s, rec);
                }
            }
            if (st != MLO_OK) {
                s->intake_retry_at =
                    now + mlo__retry_backoff_ns(s->env->cfg->backoff_factor_s, s->intake_fails++);
                return st;
            }
            c->taken++;
        }
        if (!c->closed)
            break;
    }
    s->intake_fails = 0;
    return MLO_OK;
}

/* Whether job j of run r may be handed over now. */
static int ready(const srun *r, const mlo_job *j, int64_t now) {
    if (r->state != SRUN_MAPPED || j->state != JOB_WAITING || j->retry_at > now)
        return 0;
    for (const mlo_job *k = r->jobs; k && k != j; k = k->run_next) {
        if (j->lane == LANE_BARRIER || k->lane == LANE_BARRIER)
            return 0;
        if (j->lane == LANE_ORDERED && k->lane == LANE_ORDERED)
            return 0;
    }
    return 1;
}

static void report_deferred(mlo_sender *s, mlo_job *j) {
    for (size_t off = 0; off + sizeof(int32_t) < j->reports.len;) {
        int32_t st;
        memcpy(&st, j->reports.data + off, sizeof st);
        const char *msg = j->reports.data + off + sizeof st;
        mlo__env_report(s->env, st, 1, "%s", msg);
        off += sizeof st + strlen(msg) + 1;
    }
    mlo__buf_reset(&j->reports);
}

/* A request is back: done (delivered, or refused for good and counted), or
 * to be tried again after its pause. */
static void job_done(mlo_sender *s, mlo_job *j) {
    report_deferred(s, j);
    srun *r = &s->runs[j->run];
    if (j->status != MLO_OK) {
        j->state = JOB_WAITING;
        if (s->sync_mode && s->sync_st == MLO_OK)
            s->sync_st = j->status;
        /* once per outage: the requests that fail during it say nothing more */
        if (!s->sync_mode && !s->failing)
            mlo__env_report(s->env, j->status, 1,
                            "server unreachable or failing (%s): events are kept in the store "
                            "and sent when it answers",
                            mlo_strerror(j->status));
        s->failing = 1;
        j->retry_at = mlo__env_mono(s->env) +
                      mlo__retry_backoff_ns(s->env->cfg->backoff_factor_s, j->attempts++);
        return;
    }
    s->failing = 0;
    mlo__env_stat(s->env, MLO_STAT_SENT, j->sent);
    mlo__env_stat(s->env, MLO_STAT_ADOPTED, j->adopted);
    mlo__env_stat(s->env, MLO_STAT_FAILED, j->failed);
    if (j->kind == MLO_JOB_BATCH)
        done_recs(s, j->recs, j->n);
    else
        done_recs(s, &j->rec, 1);
    /* off the run's list (it may be anywhere in it: free requests finish out
     * of order) */
    mlo_job **pp = &r->jobs, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->run_next;
    }
    if (*pp)
        *pp = j->run_next;
    if (r->jobs_tail == j)
        r->jobs_tail = prev;
    job_recycle(s, j);
}

static void run_job_here(mlo_sender *s, mlo_job *j) {
    s->cx.sent = s->cx.adopted = s->cx.failed = 0;
    s->cx.defer = NULL;
    set_deadline(s);
    switch (j->kind) {
    case MLO_JOB_BATCH:
        j->status = mlo__requests_batch(&s->cx, j->sid, j->recs, j->n);
        break;
    case MLO_JOB_END:
        if (j->sweep_lid)
            mlo__requests_sweep(&s->cx, j->sweep_exp, j->sweep_lid, j->sid);
        j->status = mlo__requests_end(&s->cx, j->sid, j->rec);
        break;
    default:
        j->status = mlo__requests_dataset(&s->cx, j->sid, j->rec, &j->ds);
        break;
    }
    j->sent = s->cx.sent;
    j->adopted = s->cx.adopted;
    j->failed = s->cx.failed;
}

/* Collects finished requests (with wait: at least one, if any is out). */
static void collect(mlo_sender *s, int wait) {
    if (!s->pool || !s->out)
        return;
    mlo_job *j = mlo__inflight_collect(s->pool, wait);
    while (j) {
        mlo_job *n = j->next;
        s->out--;
        job_done(s, j);
        j = n;
    }
}

/* Hands over every request that may go now; *next_ns gets when a waiting
 * one is due (INT64_MAX: none waits on time). */
static void dispatch(mlo_sender *s, int64_t *next_ns) {
    int64_t now = mlo__env_mono(s->env);
    *next_ns = INT64_MAX;
    for (uint32_t i = 0; i < s->nactive;) {
        uint32_t run = s->active[i];
        srun *r = &s->runs[run];
        for (mlo_job *j = r->jobs; j && s->out < s->max_out;) {
            if (j->state == JOB_WAITING && j->retry_at > now && j->retry_at < *next_ns)
                *next_ns = j->retry_at;
            if (!ready(r, j, now) || (s->sync_mode && s->sync_st != MLO_OK)) {
                j = j->run_next;
                continue;
            }
            j->sid = r->sid;
            j->state = JOB_OUT;
            if (s->pool && (mlo__inflight_workers(s->pool) || mlo__inflight_spawn(s->pool) == 0)) {
                s->out++;
                mlo__inflight_push(s->pool, j);
                j = j->run_next;
            } else {
                /* on this thread: done (or waiting again) when it returns, and
                 * the run's list may have changed: look again from its start */
                run_job_here(s, j);
                job_done(s, j);
                now = mlo__env_mono(s->env);
                j = r->jobs;
            }
        }
        if (!r->jobs) {
            r->active_listed = 0;
            s->active[i] = s->active[--s->nactive];
            continue;
        }
        i++;
    }
}

/* Requests that could go now and have no request waiting for them: the
 * slots left after the requests ready now. */
static uint32_t free_slots(mlo_sender *s) {
    if (s->out >= s->max_out)
        return 0;
    uint32_t n = (uint32_t)(s->max_out - s->out);
    int64_t now = mlo__env_mono(s->env);
    for (uint32_t i = 0; i < s->nactive && n; i++) {
        const srun *r = &s->runs[s->active[i]];
        for (const mlo_job *j = r->jobs; j && n; j = j->run_next)
            if (ready(r, j, now))
                n--;
    }
    return n;
}

int mlo__sender_pump(mlo_sender *s, int caught_up, int64_t *next_ns) {
    collect(s, 0);
    int st = intake(s);
    /* nothing more to take for now: what is open goes out when a request
     * can go now; while every slot is busy the batches keep filling, so a
     * steady stream goes in full batches (a transient failure of the intake
     * leaves later records waiting; the batches of earlier ones need not
     * wait for them) */
    if (st != MLO_OK || (caught_up && !s->pool))
        close_all_batches(s);
    else if (caught_up)
        close_open_batches(s, free_slots(s));
    int64_t due;
    dispatch(s, &due);
    collect(s, 0);
    int mst = retry_maps(s);
    if (mst != MLO_OK && s->sync_mode && st == MLO_OK && !s->out)
        st = mst; /* process() gives up rather than spin */
    ack_chunks(s);
    if (next_ns) {
        *next_ns = due;
        if (st != MLO_OK && s->intake_retry_at < *next_ns)
            *next_ns = s->intake_retry_at;
    }
    return st;
}

/* ---- synchronous use ------------------------------------------------------------------------ */

void mlo__sender_reset(mlo_sender *s) {
    while (s->pool && s->out)
        collect(s, 1);
    for (size_t i = 0; i < s->nruns; i++) {
        srun *r = &s->runs[i];
        r->open.n = r->open.nmetrics = r->open.nparams = r->open.ntags = 0;
        r->open.bytes = 0;
        r->open_listed = 0;
        while (r->jobs) {
            mlo_job *j = r->jobs;
            r->jobs = j->run_next;
            job_recycle(s, j);
        }
        r->jobs_tail = NULL;
        r->active_listed = 0;
    }
    s->nopen = s->nactive = 0;
    while (s->head) {
        chunk *c = s->head;
        s->head = c->next;
        chunk_free(c);
    }
    s->tail = NULL;
    s->staged = 0;
    s->intake_retry_at = 0;
}

int mlo__sender_process(mlo_sender *s) {
    mlo__sender_close_chunk(s, NULL, 0, 0);
    s->sync_mode = 1;
    s->sync_st = MLO_OK;
    int st = MLO_OK;
    while (s->head) {
        int64_t next;
        st = mlo__sender_pump(s, 1, &next);
        if (st == MLO_OK && s->sync_st != MLO_OK)
            st = s->sync_st;
        if (st != MLO_OK)
            break;
        if (!s->head)
            break;
        if (s->out)
            collect(s, 1);
        else if (next != INT64_MAX)
            mlo__clock_sleep(mlo__env_clock(s->env), next - mlo__env_mono(s->env));
    }
    s->sync_mode = 0;
    if (st != MLO_OK) {
        /* the caller sends it all again: nothing counted twice but what was
         * delivered already (the server takes it once) */
        mlo__sender_reset(s);
        s->intake_fails = 0;
    }
    return st;
}

/* ---- events read from the run log ---------------------------------------------------------- */

int mlo__sender_add_event(mlo_sender *s, const mlo_log_event *ev, int flags) {
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
        return mlo__sender_add(s, ev->type, ev->run_id, "", 0, "", 0, ev->value_num, ev->timestamp,
                               0, flags);
    case MLO_REC_DATASET: {
        /* back into the record's payload (mlo_payload.h); a dataset without
         * name, source, digest or type would only be refused: counted failed */
        mlo_dataset_payload ds = {ev->value, ev->digest, ev->source_type, ev->context};
        mlo__buf_reset(&s->scratch);
        if (mlo__payload_dataset_encode(&s->scratch, &ds) != 0)
            return -1;
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
        if (mlo__payload_startrun_encode(&s->scratch, &sr) != 0)
            return -1;
        return mlo__sender_add(s, ev->type, ev->run_id, NULL, 0, s->scratch.data, s->scratch.len, 0,
                               ev->timestamp, 0, flags);
    }
    default:
        return 0; /* a type this version does not know: skipped */
    }
}
