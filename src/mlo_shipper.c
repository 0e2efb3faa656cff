/*
 * mlo_shipper.c - the background thread: drains the queue, groups events per
 * run into `runs/log-batch` requests within MLflow's limits and sends them.
 *
 * Cycle: drain up to STAGE_MAX records, copying each into the stage (an arena
 * owned by this thread; key and value NUL-terminated so the codec can point at
 * them), so the queue's space is released before any network I/O.  Then walk
 * the stage in order: events go to their run's open batch; a batch that would
 * break a limit (1000 metrics, 100 params, 100 tags, 1000 entries, ~900 KB, or
 * a param/tag key already in it) is sent first.  END_RUN sends the run's batch
 * and then `runs/update`, so the status lands after the run's data.  FLUSH
 * sends everything open and then reports the flush as done.  At the end of a
 * stage every open batch is sent: a batch never outlives its stage.
 *
 * A batch the server refuses as invalid (400) stores nothing, so it is split
 * in halves and resent until the offending entries stand alone; those are
 * reported and counted as failed, every other entry is delivered.  Other
 * failures (network, 5xx after retries, deadline) fail the whole batch.
 *
 * Threads: only the shipper thread runs this file; it shares with others only
 * the queue, the run table (read-only here) and the counters.
 */
#define _GNU_SOURCE
#include "mlo_internal.h"

#include <stdlib.h>
#include <string.h>

#define STAGE_MAX 4096

typedef struct batch {
    uint32_t run;
    uint32_t n, nmetrics, nparams, ntags;
    size_t bytes;
    const mlo_rec **recs; /* capacity MLO_BATCH_MAX_TOTAL */
} batch;

typedef struct shipper {
    mlo_client *c;
    mlo_api *api;
    mlo_buf stage;    /* staged records, MLO_REC_ALIGN-aligned */
    size_t *offs;     /* offsets of staged records in stage */
    size_t nstaged;
    batch *batches;   /* open batches of this stage */
    size_t nbatches, cap_batches;
    int32_t *slot;    /* run index -> batch, open addressing, HASH_SIZE */
    uint32_t *slot_run;
    const mlo_rec **scratch;
} shipper;

#define HASH_SIZE 8192 /* > 2 * STAGE_MAX */

/* Staged layout: mlo_rec header, key, NUL, value, NUL. */
static inline const char *skey(const mlo_rec *r) {
    return (const char *)(r + 1);
}
static inline const char *sval(const mlo_rec *r) {
    return (const char *)(r + 1) + r->key_len + 1;
}

static void stage_cb(void *ctx, const mlo_rec *r) {
    shipper *s = ctx;
    size_t need = sizeof(mlo_rec) + r->key_len + 1 + r->val_len + 1;
    need = (need + MLO_REC_ALIGN - 1) & ~(size_t)(MLO_REC_ALIGN - 1);
    if (mlo__buf_reserve(&s->stage, need) != 0) {
        /* out of memory: the event is lost, and counted */
        mlo__stat_add(s->c, MLO_STAT_ACCEPTED, r->type == MLO_REC_FLUSH ? 0 : 1);
        mlo__stat_add(s->c, MLO_STAT_FAILED, r->type == MLO_REC_FLUSH ? 0 : 1);
        return;
    }
    char *p = s->stage.data + s->stage.len;
    memcpy(p, r, sizeof *r);
    memcpy(p + sizeof *r, mlo__rec_key(r), r->key_len);
    p[sizeof *r + r->key_len] = 0;
    memcpy(p + sizeof *r + r->key_len + 1, mlo__rec_val(r), r->val_len);
    p[sizeof *r + r->key_len + 1 + r->val_len] = 0;
    s->offs[s->nstaged++] = s->stage.len;
    s->stage.len += need;
}

/* Sends recs[0..n) of one run; on a 400 splits to isolate the bad entries. */
static void send_recs(shipper *s, mlo_run *run, const mlo_rec **recs, size_t n) {
    if (n == 0)
        return;
    mlo_api_error e;
    mlo__api_set_deadline(s->api, atomic_load_explicit(&s->c->abort_at_ns, memory_order_acquire));
    int st = mlo__api_log_batch(s->api, run->run_id, recs, n, &e);
    if (st == MLO_OK) {
        mlo__stat_add(s->c, MLO_STAT_SENT, n);
        return;
    }
    if (st == MLO_ERR_SERVER_INVALID && n > 1) {
        size_t h = n / 2;
        send_recs(s, run, recs, h);
        send_recs(s, run, recs + h, n - h);
        return;
    }
    mlo__stat_add(s->c, MLO_STAT_FAILED, n);
    if (n == 1) {
        const mlo_rec *r = recs[0];
        const char *kind = r->type == MLO_REC_METRIC ? "metric"
                           : r->type == MLO_REC_PARAM ? "param"
                                                      : "tag";
        mlo__report(s->c, st, 1, "run %s: %s \"%.250s\" refused: %s", run->run_id, kind, skey(r),
                    e.message[0] ? e.message : mlo_strerror(st));
    } else {
        mlo__report(s->c, st, 1, "run %s: %zu events not delivered: %s", run->run_id, n,
                    e.message[0] ? e.message : mlo_strerror(st));
    }
}

static void send_batch(shipper *s, batch *b) {
    if (b->n == 0)
        return;
    mlo_run *run = mlo__client_run(s->c, b->run);
    if (run)
        send_recs(s, run, b->recs, b->n);
    else
        mlo__stat_add(s->c, MLO_STAT_FAILED, b->n);
    b->n = b->nmetrics = b->nparams = b->ntags = 0;
    b->bytes = 0;
}

static batch *batch_for(shipper *s, uint32_t run) {
    uint32_t h = (run * 2654435761u) & (HASH_SIZE - 1);
    while (s->slot[h] >= 0) {
        if (s->slot_run[h] == run)
            return &s->batches[s->slot[h]];
        h = (h + 1) & (HASH_SIZE - 1);
    }
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
        if (b->recs[i]->type == type && strcmp(skey(b->recs[i]), key) == 0)
            return 1;
    return 0;
}

static void add_event(shipper *s, const mlo_rec *r) {
    batch *b = batch_for(s, r->run);
    if (!b) {
        mlo__stat_add(s->c, MLO_STAT_FAILED, 1);
        return;
    }
    size_t bytes = (size_t)r->key_len + r->val_len + 96;
    int full = b->n + 1 > MLO_BATCH_MAX_TOTAL || b->bytes + bytes > MLO_BATCH_MAX_BYTES;
    if (r->type == MLO_REC_METRIC)
        full |= b->nmetrics + 1 > MLO_BATCH_MAX_METRICS;
    else if (r->type == MLO_REC_PARAM)
        full |= b->nparams + 1 > MLO_BATCH_MAX_PARAMS || has_key(b, MLO_REC_PARAM, skey(r));
    else
        full |= b->ntags + 1 > MLO_BATCH_MAX_TAGS || has_key(b, MLO_REC_TAG, skey(r));
    if (full)
        send_batch(s, b);
    b->recs[b->n++] = r;
    b->bytes += bytes;
    if (r->type == MLO_REC_METRIC)
        b->nmetrics++;
    else if (r->type == MLO_REC_PARAM)
        b->nparams++;
    else
        b->ntags++;
}

static void send_all(shipper *s) {
    for (size_t i = 0; i < s->nbatches; i++)
        send_batch(s, &s->batches[i]);
}

static void end_run(shipper *s, const mlo_rec *r) {
    batch *b = batch_for(s, r->run);
    if (b)
        send_batch(s, b);
    mlo_run *run = mlo__client_run(s->c, r->run);
    if (!run) {
        mlo__stat_add(s->c, MLO_STAT_FAILED, 1);
        return;
    }
    mlo_api_error e;
    mlo__api_set_deadline(s->api, atomic_load_explicit(&s->c->abort_at_ns, memory_order_acquire));
    int st = mlo__api_update_run(s->api, run->run_id, (int)r->value, r->timestamp, &e);
    if (st == MLO_OK) {
        mlo__stat_add(s->c, MLO_STAT_SENT, 1);
    } else {
        mlo__stat_add(s->c, MLO_STAT_FAILED, 1);
        mlo__report(s->c, st, 1, "run %s: end run failed: %s", run->run_id,
                    e.message[0] ? e.message : mlo_strerror(st));
    }
}

static void flush_done(shipper *s, uint64_t seq) {
    mlo_client *c = s->c;
    pthread_mutex_lock(&c->flush_lock);
    if (seq > c->flush_done)
        c->flush_done = seq;
    pthread_cond_broadcast(&c->flush_cond);
    pthread_mutex_unlock(&c->flush_lock);
}

static void process_stage(shipper *s) {
    uint64_t flushed = 0;
    uint64_t events = 0;
    for (size_t i = 0; i < s->nstaged; i++) {
        const mlo_rec *r = (const mlo_rec *)(s->stage.data + s->offs[i]);
        switch (r->type) {
        case MLO_REC_METRIC:
        case MLO_REC_PARAM:
        case MLO_REC_TAG:
            events++;
            add_event(s, r);
            break;
        case MLO_REC_END_RUN:
            events++;
            end_run(s, r);
            break;
        case MLO_REC_FLUSH:
            send_all(s);
            if ((uint64_t)r->step > flushed)
                flushed = (uint64_t)r->step;
            break;
        default:
            break;
        }
    }
    mlo__stat_add(s->c, MLO_STAT_ACCEPTED, events);
    send_all(s);
    if (flushed)
        flush_done(s, flushed);
    /* reset the stage and the batch table */
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

void *mlo__shipper_main(void *arg) {
    mlo_client *c = arg;
    shipper s = {.c = c};
    mlo__buf_init(&s.stage);
    s.api = mlo__api_new(&c->cfg, c);
    s.offs = malloc(STAGE_MAX * sizeof *s.offs);
    s.slot = malloc(HASH_SIZE * sizeof *s.slot);
    s.slot_run = calloc(HASH_SIZE, sizeof *s.slot_run);
    if (!s.api || !s.offs || !s.slot || !s.slot_run) {
        mlo__report(c, MLO_ERR_NO_MEMORY, 0, "shipper: out of memory, nothing will be sent");
        /* keep draining so producers and flushes are not stuck; count as failed */
    } else {
        for (size_t i = 0; i < HASH_SIZE; i++)
            s.slot[i] = -1;
    }
    int ok = s.api && s.offs && s.slot && s.slot_run;
    /* Waiting: a light sleep of one flush interval, which producers do not
     * interrupt (so a log call never pays for a wake-up system call) unless
     * the queue fills to a quarter; after a second without events, a deep
     * sleep that the next event ends (one system call after an idle spell). */
    int64_t interval_ns = (int64_t)c->cfg.flush_interval_ms * 1000000;
    int64_t idle_ns = 0;
    for (;;) {
        size_t n;
        if (ok) {
            n = c->qops->drain(c->queue, STAGE_MAX, stage_cb, &s);
            if (n)
                process_stage(&s);
        } else {
            n = 0;
        }
        if (n) {
            idle_ns = 0;
            continue;
        }
        /* acquire: pairs with close's release store; the queue is closed by then */
        if (atomic_load_explicit(&c->stop, memory_order_acquire)) {
            if (ok && c->qops->drain(c->queue, STAGE_MAX, stage_cb, &s)) {
                process_stage(&s);
                continue;
            }
            break;
        }
        if (idle_ns >= 1000000000) {
            c->qops->wait(c->queue, 10000000000, 1);
        } else {
            c->qops->wait(c->queue, interval_ns, 0);
            idle_ns += interval_ns;
        }
    }
    for (size_t i = 0; i < s.cap_batches; i++)
        free(s.batches[i].recs);
    free(s.batches);
    free(s.offs);
    free(s.slot);
    free(s.slot_run);
    mlo__buf_free(&s.stage);
    if (s.api)
        mlo__api_free(s.api);
    return NULL;
}
