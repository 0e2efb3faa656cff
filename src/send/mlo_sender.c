/*
 * mlo_sender.c - the sender's core: creates runs on the server and sends
 * their events, grouped per run into `runs/log-batch` requests within
 * MLflow's limits (the requests themselves: mlo_requests.c).
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
 * Stages come from the outbox (mlo_outbox.c: whole blocks of the store's
 * segments, acknowledged once processed) or, without a store, from the
 * writer.
 *
 * Requests in flight (max_inflight = N > 1, mlo_options_set_max_inflight):
 * the sender owns a pool of N workers (mlo_inflight.c), each with its own
 * mlo_api (one connection).  The sender's thread still walks the stage in
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
 * environment's counters, the client's run table (mlo__runs_created), and
 * with its own workers the pool (mlo_inflight.c).
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
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define HASH_SIZE 8192
#define SRUN_BUCKETS 4096
#define LOCAL_ID_TAG "mlo.local_id"

enum { SRUN_UNKNOWN = 0, SRUN_MAPPED = 1, SRUN_FAILED = 2 };

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
    mlo_job *pend_head, *pend_tail;
} srun;

typedef struct batch {
    uint32_t run;
    uint32_t n, nmetrics, nparams, ntags;
    size_t bytes;
    const mlo_rec **recs; /* capacity MLO_BATCH_MAX_TOTAL */
} batch;

struct mlo_sender {
    mlo_env *env;
    mlo_runs *client_runs; /* told when a run gets its server id (NULL: nobody) */
    mlo_store *st;
    int keep;
    mlo_api *api;
    /* requests in flight (NULL: one at a time, on this thread) */
    mlo_inflight *pool;
    int pool_on;          /* this stage goes through the pool */
    int stage_st;         /* first transient failure of a job in this stage */
    size_t outstanding;   /* jobs of this stage not finished (queued, sending, waiting) */
    mlo_job *free_jobs;
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
    mlo_reqctx cx;
    mlo_buf scratch;
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
    s->slot = malloc(HASH_SIZE * sizeof *s->slot);
    s->slot_run = calloc(HASH_SIZE, sizeof *s->slot_run);
    s->heads = calloc(SRUN_BUCKETS, sizeof *s->heads);
    if ((cfg->tracking_uri && !s->api) || !s->slot || !s->slot_run || !s->heads) {
        mlo__sender_free(s);
        return NULL;
    }
    for (size_t i = 0; i < HASH_SIZE; i++)
        s->slot[i] = -1;
    /* workers only to send: without a server (a store that could not be
     * used) nothing is sent; they start with the first stage that sends,
     * as many as requests are waiting, up to max_inflight */
    if (s->api && cfg->max_inflight > 1)
        s->pool = mlo__inflight_new(env, keep, cfg->max_inflight);
    return s;
}

void mlo__sender_free(mlo_sender *s) {
    if (!s)
        return;
    mlo__inflight_free(s->pool); /* no job is out: a stage ends when all have finished */
    while (s->free_jobs) {
        mlo_job *j = s->free_jobs;
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

/* Counts n events of a stage as failed (at the stage's end). */
static void fail_n(mlo_sender *s, uint64_t n) {
    s->cx.failed += n;
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
    mlo__api_set_deadline(s->api, mlo__env_abort_at(s->env));
}

static void mapped(mlo_sender *s, srun *r, char *sid, char *exp) {
    r->sid = sid;
    free(r->exp);
    r->exp = exp;
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
            mlo__env_report(s->env, MLO_WARN_RETRY, 1,
                        "run %s: create run: %s; looking for it by its %s tag before trying again",
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
            mlo__clock_sleep(mlo__env_clock(s->env), 200 * 1000000LL << (attempt < 3 ? attempt : 3));
        }
        mlo__kv_free(tags, ntags);
    }
    if (st == MLO_OK) {
        if (s->st && mlo__store_map_put(s->st, r->lid, sid) != 0) {
            /* without the mapping on disk a crash could create it twice; the
             * tag search still finds it, so go on, but say so */
            mlo__env_report(s->env, MLO_ERR_STORE, 1, "run %s: cannot record its server id in %s",
                        r->lid, "runs.map");
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

/* ---- requests in flight: one job per run at a time ------------------------------------ */

static void pool_cancel(mlo_sender *s, int st) {
    if (s->stage_st == MLO_OK)
        s->stage_st = st;
    mlo__inflight_cancel(s->pool, st);
}

static void job_recycle(mlo_sender *s, mlo_job *j) {
    j->next = s->free_jobs;
    s->free_jobs = j;
    s->outstanding--;
}

/* A job is back from the workers: its counters and reports join the stage's;
 * the run's next job goes to the workers (or, the stage having failed, is
 * dropped). */
static void job_finished(mlo_sender *s, mlo_job *j) {
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
        mlo__env_report(s->env, st, 1, "%s", msg);
        off += sizeof st + strlen(msg) + 1;
    }
    srun *r = &s->runs[j->run];
    job_recycle(s, j);
    while (r->pend_head && s->stage_st != MLO_OK) {
        mlo_job *k = r->pend_head;
        r->pend_head = k->next;
        job_recycle(s, k);
    }
    mlo_job *next = r->pend_head;
    if (!next) {
        r->pend_tail = NULL;
        r->busy = 0;
        return;
    }
    r->pend_head = next->next;
    if (!r->pend_head)
        r->pend_tail = NULL;
    mlo__inflight_push(s->pool, next);
}

/* Takes the jobs the workers have finished; with wait, at least one. */
static void pool_collect(mlo_sender *s, int wait) {
    mlo_job *j = mlo__inflight_collect(s->pool, wait);
    while (j) {
        mlo_job *next = j->next;
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
static int submit(mlo_sender *s, mlo_job *j) {
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
        mlo__inflight_push(s->pool, j);
    }
    pool_collect(s, 0);
    return s->stage_st;
}

static mlo_job *job_new(mlo_sender *s, int kind, uint32_t run) {
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
    mlo_job *j = s->pool_on && s->arena_len + b->n <= s->arena_cap
                     ? job_new(s, MLO_JOB_BATCH, b->run)
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
        st = mlo__requests_batch(&s->cx, s->runs[b->run].sid, b->recs, b->n);
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
        if (b->recs[i]->type == type && strcmp(mlo__payload_staged_key(b->recs[i]), key) == 0)
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
        full |= b->nparams + 1 > MLO_BATCH_MAX_PARAMS || has_key(b, MLO_REC_PARAM, mlo__payload_staged_key(r));
    else
        full |= b->ntags + 1 > MLO_BATCH_MAX_TAGS || has_key(b, MLO_REC_TAG, mlo__payload_staged_key(r));
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
    mlo_job *j = s->pool_on ? job_new(s, kind, r->run) : NULL;
    if (j) {
        j->rec = r;
        if (ds)
            j->ds = *ds;
        return submit(s, j);
    }
    if (s->pool_on)
        run_idle(s, r->run);
    const char *sid = s->runs[r->run].sid;
    int st = kind == MLO_JOB_END ? mlo__requests_end(&s->cx, sid, r)
                                 : mlo__requests_dataset(&s->cx, sid, r, ds);
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
    return send_one(s, MLO_JOB_END, r, NULL);
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
    if (mlo__payload_dataset_parse(mlo__payload_staged_val(r), r->val_len, &ds) != 0) {
        fail_n(s, 1);
        mlo__env_report(s->env, MLO_ERR_INTERNAL, 1, "run %s: dataset \"%.250s\": malformed record",
                    run->sid, mlo__payload_staged_key(r));
        return MLO_OK;
    }
    return send_one(s, MLO_JOB_DATASET, r, &ds);
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
    if (!s->pool || (!mlo__inflight_workers(s->pool) && mlo__inflight_spawn(s->pool) != 0))
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
    mlo__inflight_begin(s->pool);
    return 1;
}

int mlo__sender_process(mlo_sender *s) {
    int st = MLO_OK;
    s->cx = (mlo_reqctx){.env = s->env, .api = s->api, .keep = s->keep};
    if (!s->api) {
        /* no server: nowhere to send (a memory-only client without a URI
         * cannot be opened; this is a store that could not be used) */
        uint64_t n = 0;
        for (size_t i = 0; i < s->nstaged; i++)
            n += ((const mlo_rec *)(s->stage.data + s->offs[i]))->type != MLO_EV_START_RUN;
        mlo__env_stat(s->env, MLO_STAT_FAILED, n);
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
    mlo__env_stat(s->env, MLO_STAT_SENT, s->cx.sent);
    mlo__env_stat(s->env, MLO_STAT_ADOPTED, s->cx.adopted);
    mlo__env_stat(s->env, MLO_STAT_FAILED, s->cx.failed);
    return MLO_OK;
}

/* ---- reading the run log ------------------------------------------------------------------ */

/* Stages one event read from a segment. */
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
        return mlo__sender_add(s, ev->type, ev->run_id, "", 0, "", 0, ev->value_num,
                               ev->timestamp, 0, flags);
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
        return mlo__sender_add(s, ev->type, ev->run_id, NULL, 0, s->scratch.data, s->scratch.len,
                               0, ev->timestamp, 0, flags);
    }
    default:
        return 0; /* a type this version does not know: skipped */
    }
}

void mlo__sender_reset(mlo_sender *s) {
    reset_stage(s);
}
