/*
 * mlo_sync.c - `mlo sync`: recovers and adopts every dead process's files of
 * a store, whatever URI they were bound for (mlo__store_open_all), sends
 * their segments (mlo__outbox_drain), then uploads their artifacts, pending
 * and failed (mlo__uploader_sync: the runs exist by then).  Resumable (acks
 * at block boundaries; an artifact's manifest goes only once it is
 * uploaded) and idempotent (runs.map + the mlo.local_id tag; a PUT twice
 * stores the same file).
 *
 * The engines run in an environment of sync's own: the configuration comes
 * from the MLflow environment variables (and the URI given), errors are
 * collected to say what went wrong, no client exists.
 *
 * What a person running it sees (issue 16):
 *  - progress: before sending, the unsent part of every segment is read
 *    once (events per block, the block where each run's last unsent event
 *    is), so that the drain's byte progress maps to events and runs done;
 *  - a server that cannot be reached ends the sync within about 10 s: a
 *    probe (experiments/get-by-name, no retries of its own; connection
 *    failures tried 3 times over about 3 s, all within PROBE_S) before
 *    anything is read, and during the sync a connection failure sets the
 *    env's network deadline CONN_GIVE_UP_S ahead (cleared by the next stage
 *    the server acknowledges), after which requests and the drain's own
 *    retries stop.  Answers with a retryable status (5xx, 429) are retried
 *    by MLflow's rules as before; each retry is handed to opts->retry;
 *  - a message that says what failed, that nothing is lost, how to go on.
 * At the end, a retention pass over the store (store/mlo_retention.c):
 * what the server acknowledged MLO_STORE_RETENTION ago goes, as in `mlo gc`.
 *
 * Threads: the calling thread (plus the sender's in-flight workers, which
 * report retries: the callback's state is under a lock).
 */
#define _GNU_SOURCE
#include "mlo_sync.h"

#include "mlo.h"
#include "mlo_api.h"
#include "mlo_buf.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_log.h"
#include "mlo_outbox.h"
#include "mlo_retention.h"
#include "mlo_sender.h"
#include "mlo_store.h"
#include "mlo_uploader.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROBE_S 8
#define PROBE_TRIES 3
#define CONN_GIVE_UP_S 6

typedef struct sync_ctx {
    const mlo_sync_opts *o;
    mlo_env *env;
    pthread_mutex_t lock;
    char first[512];
    int nerr;
    /* connection failures (no HTTP answer) since the last acknowledged stage */
    int conn_failing;
    char conn_detail[400];
    /* progress: block ends in drain coordinates and the events up to each;
     * where each run's last unsent event is */
    uint64_t *blk_pos, *blk_events;
    size_t nblk, capblk;
    uint64_t *run_end;
    size_t nruns;
    mlo_sync_progress p;
} sync_ctx;

static void sync_err_cb(void *user, mlo_status st, const char *msg) {
    sync_ctx *x = user;
    if (st == MLO_WARN_TRUNCATED || st == MLO_WARN_RETRY)
        return; /* retries come through sync_on_retry */
    pthread_mutex_lock(&x->lock);
    if (!x->nerr++)
        snprintf(x->first, sizeof x->first, "%s", msg);
    pthread_mutex_unlock(&x->lock);
}

/* Every retry: one line each (o->retry); a connection failure (code 0)
 * starts the give-up clock. */
static void sync_on_retry(void *user, long code, const char *what) {
    sync_ctx *x = user;
    pthread_mutex_lock(&x->lock);
    if (code == 0) {
        /* what failed, without "; retry n of m in s" */
        const char *r = strstr(what, "; retry ");
        int l = r ? (int)(r - what) : (int)strlen(what);
        snprintf(x->conn_detail, sizeof x->conn_detail, "%.*s", l, what);
        if (!x->conn_failing) {
            x->conn_failing = 1;
            mlo__env_set_abort_at(x->env,
                                  mlo__env_mono(x->env) + (int64_t)CONN_GIVE_UP_S * MLO_NS_PER_S);
        }
    }
    if (x->o->retry)
        x->o->retry(x->o->ctx, what);
    pthread_mutex_unlock(&x->lock);
}

/* ---- progress ------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

typedef struct run_tab {
    char **ids;
    size_t *slot; /* index + 1 */
    size_t cap, n;
    size_t *touched; /* runs with an event in the current block */
    size_t ntouched, captouched;
    uint64_t *blk_seq; /* per run: the block it was last touched in */
} run_tab;

/* The index of run id, added when new; -1 when out of memory. */
static long run_index(run_tab *t, const char *id) {
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        size_t *s = calloc(cap, sizeof *s);
        if (!s)
            return -1;
        for (size_t j = 0; j < t->n; j++) {
            size_t i = hash_str(t->ids[j]) & (cap - 1);
            while (s[i])
                i = (i + 1) & (cap - 1);
            s[i] = j + 1;
        }
        free(t->slot);
        t->slot = s;
        t->cap = cap;
        char **ids = realloc(t->ids, cap * sizeof *ids);
        uint64_t *seq = realloc(t->blk_seq, cap * sizeof *seq);
        if (ids)
            t->ids = ids;
        if (seq)
            t->blk_seq = seq;
        if (!ids || !seq)
            return -1;
    }
    size_t i = hash_str(id) & (t->cap - 1);
    for (; t->slot[i]; i = (i + 1) & (t->cap - 1))
        if (!strcmp(t->ids[t->slot[i] - 1], id))
            return (long)(t->slot[i] - 1);
    if (!(t->ids[t->n] = strdup(id)))
        return -1;
    t->blk_seq[t->n] = 0;
    t->slot[i] = ++t->n;
    return (long)(t->n - 1);
}

static void run_tab_free(run_tab *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->ids[i]);
    free(t->ids);
    free(t->slot);
    free(t->touched);
    free(t->blk_seq);
}

static int add_block(sync_ctx *x, uint64_t pos, uint64_t events) {
    if (x->nblk == x->capblk) {
        size_t c = x->capblk ? 2 * x->capblk : 256;
        uint64_t *a = realloc(x->blk_pos, c * sizeof *a);
        if (a)
            x->blk_pos = a;
        uint64_t *b = a ? realloc(x->blk_events, c * sizeof *b) : NULL;
        if (b)
            x->blk_events = b;
        if (!a || !b)
            return -1;
        x->capblk = c;
    }
    x->blk_pos[x->nblk] = pos;
    x->blk_events[x->nblk++] = events;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads the unsent part of every segment once, in the drain's order and
 * byte coordinates (mlo__outbox_drain: the segments' unacknowledged bytes
 * laid end to end).  Best effort: progress only. */
static void prescan(sync_ctx *x, mlo_store *s, const mlo_seg_ref *segs, size_t n) {
    run_tab t = {0};
    uint64_t base = 0, events = 0, seq = 0;
    int oom = 0;
    for (size_t i = 0; i < n && !oom; i++) {
        char *path = mlo__store_seg_path(s, segs[i].procid, segs[i].n);
        struct stat sb;
        uint64_t size = path && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        uint64_t ack = mlo__store_ack_get(s, segs[i].procid, segs[i].n);
        char err[256];
        mlo_logr *r = size > ack ? mlo__logr_open(path, err, sizeof err) : NULL;
        free(path);
        if (!r)
            continue;
        uint64_t from = ack;
        if (ack && mlo__logr_seek(r, ack) != 0)
            from = 0;
        mlo_log_event ev;
        int rc;
        while (!oom && (rc = mlo__logr_next(r, &ev, err, sizeof err)) != 0) {
            if (rc == -2) {
                oom = 1;
                break;
            }
            if (rc == -1) {
                if (mlo__logr_skip_damage(r) != 1)
                    break;
                continue;
            }
            events++;
            long k = run_index(&t, ev.run_id);
            if (k < 0) {
                oom = 1;
                break;
            }
            if (t.blk_seq[k] != seq + 1) {
                t.blk_seq[k] = seq + 1;
                if (t.ntouched == t.captouched) {
                    size_t c = t.captouched ? 2 * t.captouched : 64;
                    size_t *nt = realloc(t.touched, c * sizeof *nt);
                    if (!nt) {
                        oom = 1;
                        break;
                    }
                    t.touched = nt;
                    t.captouched = c;
                }
                t.touched[t.ntouched++] = (size_t)k;
            }
            if (mlo__logr_at_block_end(r)) {
                uint64_t pos = base + (mlo__logr_block_end(r) - from);
                if (add_block(x, pos, events) != 0) {
                    oom = 1;
                    break;
                }
                if (!x->run_end || x->nruns < t.n) {
                    uint64_t *re = realloc(x->run_end, t.cap * sizeof *re);
                    if (!re) {
                        oom = 1;
                        break;
                    }
                    for (size_t j = x->nruns; j < t.n; j++)
                        re[j] = 0;
                    x->run_end = re;
                    x->nruns = t.n;
                }
                for (size_t j = 0; j < t.ntouched; j++)
                    x->run_end[t.touched[j]] = pos;
                t.ntouched = 0;
                seq++;
            }
        }
        mlo__logr_close(r);
        base += size - from;
    }
    if (oom) {
        x->nblk = 0;
        x->nruns = 0;
    } else if (x->nruns > 1) {
        qsort(x->run_end, x->nruns, sizeof *x->run_end, cmp_u64);
    }
    x->p.events_total = oom ? 0 : events;
    x->p.runs_total = oom ? 0 : x->nruns;
    run_tab_free(&t);
}

static void on_drain_progress(void *ctx, uint64_t done, uint64_t total) {
    sync_ctx *x = ctx;
    if (done > x->p.bytes_done) {
        /* a stage was acknowledged: the connection works */
        pthread_mutex_lock(&x->lock);
        if (x->conn_failing) {
            x->conn_failing = 0;
            mlo__env_set_abort_at(x->env, 0);
        }
        pthread_mutex_unlock(&x->lock);
    }
    x->p.bytes_done = done;
    x->p.bytes_total = total;
    /* the last block ending at or before done */
    size_t lo = 0, hi = x->nblk;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->blk_pos[mid] <= done)
            lo = mid + 1;
        else
            hi = mid;
    }
    x->p.events_done = lo ? x->blk_events[lo - 1] : 0;
    if (done >= total)
        x->p.events_done = x->p.events_total;
    lo = 0;
    hi = x->nruns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->run_end[mid] <= done)
            lo = mid + 1;
        else
            hi = mid;
    }
    x->p.runs_done = done >= total ? x->nruns : lo;
    if (x->o->progress)
        x->o->progress(x->o->ctx, &x->p);
}

/* ---- the probe ----------------------------------------------------------------------------- */

/* Whether the server answers at all (any HTTP status will do): MLO_OK, or
 * MLO_ERR_NETWORK with what failed in detail (connection refused, name not
 * resolved, nothing answered), after PROBE_TRIES tries within PROBE_S. */
static int probe(const mlo_config *cfg, char *detail, size_t n) {
    mlo_config pc = *cfg; /* borrowed strings: never freed through pc */
    pc.max_retries = 0;
    pc.error_fn = NULL;
    mlo_env pe;
    mlo__env_init(&pe, &pc);
    mlo_api *a = mlo__api_new(&pe);
    if (!a)
        return MLO_OK; /* out of memory: let the sync say so */
    int64_t start = mlo__env_mono(&pe);
    int64_t deadline = start + (int64_t)PROBE_S * MLO_NS_PER_S;
    mlo__api_set_deadline(a, deadline);
    int st = MLO_OK;
    for (int i = 0;; i++) {
        char *id = NULL;
        mlo_api_error e;
        memset(&e, 0, sizeof e);
        int rc = mlo__api_get_experiment_by_name(a, "Default", &id, &e);
        free(id);
        if (rc == MLO_OK || e.http_code != 0 || (rc != MLO_ERR_NETWORK && rc != MLO_ERR_TIMEOUT)) {
            break; /* an answer (or a TLS/config problem the sync reports itself) */
        }
        int64_t wait = (int64_t)(i + 1) * MLO_NS_PER_S;
        if (i + 1 >= PROBE_TRIES || mlo__env_mono(&pe) + wait >= deadline) {
            /* the transport's own words ("Failed to connect to ...", "Could
             * not resolve host: ..."): after the request's name, without
             * the retry count */
            const char *m = e.message[0] ? e.message : mlo_strerror(rc);
            const char *q = strstr(m, "get-by-name: ");
            while (q && strstr(q + 13, "get-by-name: "))
                q = strstr(q + 13, "get-by-name: ");
            if (q)
                m = q + 13;
            size_t l = strlen(m);
            const char *tail = strstr(m, " (after ");
            if (tail && tail[strlen(tail) - 1] == ')')
                l = (size_t)(tail - m);
            mlo__buf_errf(detail, n, "%.*s; tried %d times in %.0f s", (int)l, m, i + 1,
                          (double)(mlo__env_mono(&pe) - start) / 1e9);
            st = MLO_ERR_NETWORK;
            break;
        }
        mlo__clock_sleep(mlo__env_clock(&pe), wait);
    }
    mlo__api_free(a);
    return st;
}

/* ---- sync ----------------------------------------------------------------------------------- */

int mlo__sync_run(const mlo_sync_opts *o, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = 0;
    if (!o->store_dir) {
        mlo__buf_errf(err, errlen, "no store directory given");
        return MLO_ERR_INVALID_ARGUMENT;
    }
    mlo_options_t *opts = mlo_options_new();
    if (!opts)
        return MLO_ERR_NO_MEMORY;
    int st = o->uri ? mlo_options_set_tracking_uri(opts, o->uri) : MLO_OK;
    if (st != MLO_OK) {
        mlo_options_free(opts);
        mlo__buf_errf(err, errlen, "invalid tracking URI");
        return st;
    }
    if (o->max_inflight &&
        mlo_options_set_max_inflight(opts, (unsigned)o->max_inflight) != MLO_OK) {
        mlo_options_free(opts);
        mlo__buf_errf(err, errlen, "--max-inflight must be 1 to %d", MLO_MAX_INFLIGHT_LIMIT);
        return MLO_ERR_INVALID_ARGUMENT;
    }
    sync_ctx x;
    memset(&x, 0, sizeof x);
    x.o = o;
    pthread_mutex_init(&x.lock, NULL);
    mlo_options_set_error_callback(opts, sync_err_cb, &x);
    mlo_config cfg;
    st = mlo__config_resolve(opts, &cfg, err, errlen);
    mlo_options_free(opts);
    if (st != MLO_OK) {
        pthread_mutex_destroy(&x.lock);
        return st;
    }
    if (!cfg.tracking_uri) {
        mlo__buf_errf(err, errlen, "no tracking URI: pass one or set MLFLOW_TRACKING_URI");
        mlo__config_free(&cfg);
        pthread_mutex_destroy(&x.lock);
        return MLO_ERR_CONFIG;
    }
    mlo_env env;
    mlo__env_init(&env, &cfg);
    env.on_retry = sync_on_retry;
    env.on_retry_user = &x;
    x.env = &env;
    char detail[400] = "";
    if (probe(&cfg, detail, sizeof detail) != MLO_OK) {
        mlo__buf_errf(err, errlen,
                      "cannot reach %s (%s); nothing was sent and nothing is lost: the store "
                      "keeps every event; run `mlo sync` again when the server is up",
                      cfg.tracking_uri, detail);
        mlo__config_free(&cfg);
        pthread_mutex_destroy(&x.lock);
        return MLO_ERR_NETWORK;
    }
    mlo_store *s = NULL;
    st = mlo__store_open_all(o->store_dir, cfg.tracking_uri, &env, &s, err, errlen);
    if (st != MLO_OK) {
        mlo__config_free(&cfg);
        pthread_mutex_destroy(&x.lock);
        return st;
    }
    size_t nad;
    const mlo_seg_ref *ad = mlo__store_adopted(s, &nad);
    prescan(&x, s, ad, nad);
    mlo_sender *snd = mlo__sender_new(&env, s, 1, NULL);
    if (!snd) {
        st = MLO_ERR_NO_MEMORY;
    } else {
        st = mlo__outbox_drain(&env, snd, s, ad, nad, on_drain_progress, &x, err, errlen);
        mlo__sender_free(snd);
    }
    pthread_mutex_lock(&x.lock);
    int lost = x.conn_failing;
    pthread_mutex_unlock(&x.lock);
    if (st != MLO_OK && lost) {
        mlo__buf_errf(err, errlen,
                      "lost the connection to %s (%s); what was sent is acknowledged and nothing "
                      "is lost: run `mlo sync` again when the server is up",
                      cfg.tracking_uri, x.conn_detail);
        st = MLO_ERR_NETWORK;
    }
    uint64_t refused = mlo__env_stat_get(&env, MLO_STAT_FAILED);
    /* artifacts after the segments: their runs exist on the server now */
    char aerr[768] = "";
    int ast = st == MLO_OK ? mlo__uploader_sync(&env, s, aerr, sizeof aerr) : MLO_OK;
    if (st == MLO_OK && !refused && ast != MLO_OK) {
        st = ast;
        mlo__buf_errf(err, errlen, "%s", aerr[0] ? aerr : mlo_strerror(ast));
    }
    if (st == MLO_OK && refused) {
        st = MLO_ERR_SERVER_INVALID;
        mlo__buf_errf(
            err, errlen,
            "%llu events were refused by the server (first: %s); everything else was uploaded",
            (unsigned long long)refused, x.nerr ? x.first : "see the error callback");
    } else if (st == MLO_OK && mlo__store_live_skipped(s)) {
        mlo__buf_errf(err, errlen,
                      "%zu files belong to processes still running (they send their own events); "
                      "they were left alone",
                      mlo__store_live_skipped(s));
    } else if (st != MLO_OK && err && !err[0] && x.nerr) {
        mlo__buf_errf(err, errlen, "%s", x.first);
    }
    /* what the server acknowledged long enough ago (MLO_STORE_RETENTION),
     * of every dead process sync claimed: as `mlo gc` would */
    mlo_gc_opts go = {.now_ms = mlo__env_now_ms(&env),
                      .retention_ms = cfg.store_retention_ms,
                      .max_bytes = cfg.store_max_bytes,
                      .remove_empty = 1};
    mlo_gc_result gr;
    char gerr[256];
    mlo__retention_pass(s, &env, &go, &gr, gerr, sizeof gerr);
    mlo__store_close(s, 0);
    mlo__config_free(&cfg);
    free(x.blk_pos);
    free(x.blk_events);
    free(x.run_end);
    pthread_mutex_destroy(&x.lock);
    return st;
}

typedef struct bytes_only {
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *ctx;
} bytes_only;

static void bytes_progress(void *ctx, const mlo_sync_progress *p) {
    bytes_only *b = ctx;
    b->progress(b->ctx, p->bytes_done, p->bytes_total);
}

int mlo__sync_store(const char *store_dir, const char *uri,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                    char *err, size_t errlen) {
    bytes_only b = {progress, ctx};
    mlo_sync_opts o = {.store_dir = store_dir,
                       .uri = uri,
                       .progress = progress ? bytes_progress : NULL,
                       .ctx = &b};
    return mlo__sync_run(&o, err, errlen);
}
