/*
 * mlo_outbox.c - the outbox: the worker that reads the store's segments
 * back from their acknowledged offsets and sends them through the sender's
 * core (mlo_sender.c), and the same loop once over every segment for `mlo
 * sync` (mlo__outbox_drain).
 *
 * Segments in order: the client's own first (following the writer through
 * mlo_pipe, so a flush or a new run never waits behind a backlog), then,
 * whenever the own log is caught up, one stage at a time of what earlier
 * (dead) processes left unsent.  A stage is whole blocks (about
 * STAGE_TARGET events); after it is processed the block end is the new
 * acknowledged offset (acks/<procid>-<n>.ack) and flushes whose target it
 * reaches are done.  Damage in a segment is reported, skipped past if an
 * intact block follows; what was before it is kept.
 *
 * A stage that fails transiently is read again from the acknowledged offset
 * after the outbox pause (mlo__retry_backoff_ns: factor * 2^k, 0.05..60 s).
 * Close asks the worker to stop with a deadline: it stops once the writer is
 * done and its own log is sent, or at the deadline (what is left stays in
 * the store for the next client or `mlo sync`).
 *
 * Threads: the outbox's worker.
 */
#define _GNU_SOURCE
#include "mlo_outbox.h"

#include "mlo_log.h"
#include "mlo_retry.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STAGE_TARGET 4096
#define IDLE_NS 1000000000LL
#define WINDOW_EVENTS (16 * STAGE_TARGET) /* staged and not yet delivered */

/* A position in one segment the sender goes through. */
typedef struct cursor {
    const char *procid;
    uint32_t n;
    int flags;
    mlo_logr *r;
    uint64_t ack;
} cursor;

static void cursor_close(cursor *k) {
    if (k->r)
        mlo__logr_close(k->r);
    k->r = NULL;
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
        if (mlo__sender_add_event(s, &ev, flags) != 0)
            return -2;
        if (mlo__logr_at_block_end(r)) {
            *end = mlo__logr_block_end(r);
            if (mlo__sender_staged(s) >= STAGE_TARGET)
                return 1;
        }
    }
}

struct mlo_outbox {
    mlo_env *env;
    mlo_store *st;
    mlo_pipe *pipe;
    mlo_sender *s;
    mlo_worker w;
    const mlo_seg_ref *ad; /* adopted segments */
    size_t nad, ai;
    cursor own, old;
    uint64_t own_read; /* end of the last block read from the own segment */
    int fails;
    int64_t retry_at; /* reading is paused until then (out of memory) */
};

/* A chunk of the sender is wholly delivered: the acknowledgement is
 * written, and flushes whose target it reaches are done. */
static void on_ack(void *ctx, const char *procid, uint32_t seg, uint64_t end) {
    mlo_outbox *o = ctx;
    int own = !strcmp(procid, mlo__store_procid(o->st));
    if (end != UINT64_MAX)
        mlo__store_ack_set(o->st, procid, seg, end,
                           mlo__store_fsync_policy(o->st) == MLO_FSYNC_ALWAYS);
    if (own)
        mlo__pipe_acked(o->pipe, seg, end);
}

/* A request is back (a worker's thread): wake up to collect it. */
static void on_done(void *ctx) {
    mlo_outbox *o = ctx;
    mlo__worker_wake(&o->w);
}

enum { READ_MORE = 1, READ_END = 0 };

/* Reads whole blocks of the segment at k into one chunk of the sender,
 * about STAGE_TARGET events.  READ_MORE (more may follow at once) or
 * READ_END (no more complete blocks for now; or the segment is unreadable
 * past damage, reported). */
static int read_chunk(mlo_outbox *o, cursor *k, uint64_t *read_end) {
    mlo_sender *s = o->s;
    char err[256] = "";
    if (!k->r) {
        char *path = mlo__store_seg_path(o->st, k->procid, k->n);
        k->r = path ? mlo__logr_open(path, err, sizeof err) : NULL;
        if (!k->r) {
            mlo__env_report(o->env, MLO_ERR_STORE, 1, "store: cannot read %s: %s; skipped",
                            path ? path : "a segment", err);
            free(path);
            return READ_END;
        }
        free(path);
        k->ack = mlo__store_ack_get(o->st, k->procid, k->n);
        if (k->ack && mlo__logr_seek(k->r, k->ack) != 0) {
            k->ack = 0;
            mlo__logr_seek(k->r, 0);
        }
        if (read_end) /* where reading starts: the header's end for a new segment */
            *read_end = mlo__logr_block_end(k->r);
    }
    uint64_t end = 0;
    size_t events = 0;
    int rc;
    for (;;) {
        mlo_log_event ev;
        rc = mlo__logr_next(k->r, &ev, err, sizeof err);
        if (rc != 1)
            break;
        if (mlo__sender_add_event(s, &ev, k->flags) != 0) {
            rc = -2;
            break;
        }
        events++;
        if (mlo__logr_at_block_end(k->r)) {
            end = mlo__logr_block_end(k->r);
            if (events >= STAGE_TARGET) {
                rc = 2;
                break;
            }
        }
    }
    if (rc == -2) {
        /* out of memory: start again from what the server acknowledged */
        mlo__sender_reset(s);
        cursor_close(&o->own);
        cursor_close(&o->old);
        o->retry_at = mlo__env_mono(o->env) + MLO_NS_PER_S;
        return READ_END;
    }
    if (end) {
        mlo__sender_close_chunk(s, k->procid, k->n, end);
        if (read_end)
            *read_end = end;
    }
    if (rc == 2)
        return READ_MORE;
    if (rc == -1) {
        mlo__env_report(o->env, MLO_ERR_STORE, 1, "store: segment %s-%06u damaged: %s", k->procid,
                        k->n, err);
        return mlo__logr_skip_damage(k->r) == 1 ? READ_MORE : READ_END;
    }
    return READ_END;
}

static int64_t outbox_run(void *ctx, mlo_worker *wk) {
    mlo_outbox *o = ctx;
    mlo_sender *s = o->s;
    if (mlo__worker_overdue(wk))
        return MLO_WORKER_EXIT;
    int stopping = mlo__worker_stopping(wk);
    uint32_t wseg;
    uint64_t wcommitted;
    int wdone;
    mlo__pipe_read(o->pipe, &wseg, &wcommitted, &wdone);
    int64_t now = mlo__env_mono(o->env);
    int room = mlo__sender_staged(s) < WINDOW_EVENTS && now >= o->retry_at;
    int progress = 0, own_caught_up = !wseg;
    /* own segments first, so a flush or a new run never waits behind a backlog */
    if (room && wseg && o->own.n <= wseg) {
        int r = read_chunk(o, &o->own, &o->own_read);
        if (r == READ_MORE) {
            progress = 1;
        } else if (o->own.n < wseg) {
            /* the writer has moved on: this segment is complete */
            mlo__sender_close_chunk(s, o->own.procid, o->own.n, UINT64_MAX);
            cursor_close(&o->own);
            o->own.n++;
            o->own_read = 0;
            progress = 1;
        } else {
            own_caught_up = 1;
        }
    }
    /* then, whenever the own log is caught up, what earlier processes left */
    if (room && !progress && !stopping && o->ai < o->nad) {
        if (!o->old.r) {
            o->old.procid = o->ad[o->ai].procid;
            o->old.n = o->ad[o->ai].n;
            o->old.flags = MLO_SENDER_ADOPTED;
        }
        if (read_chunk(o, &o->old, NULL) == READ_END) {
            cursor_close(&o->old);
            o->ai++;
        }
        progress = 1;
    }
    int64_t next = INT64_MAX;
    mlo__sender_pump(s, !progress, &next);
    if (!progress && mlo__sender_idle(s)) {
        /* everything the writer had committed before we read is delivered
         * (a flush with no new event completes here) */
        if (wseg && own_caught_up && o->own.n == wseg)
            mlo__pipe_acked(o->pipe, wseg, wcommitted > o->own_read ? o->own_read : wcommitted);
        if (stopping && wdone && (!wseg || o->own.n >= wseg))
            return MLO_WORKER_EXIT;
    }
    if (progress)
        return 0;
    now = mlo__env_mono(o->env);
    int64_t t = next == INT64_MAX ? IDLE_NS : next - now;
    if (o->retry_at > now && o->retry_at - now < t)
        t = o->retry_at - now;
    int64_t d = mlo__worker_deadline(wk);
    if (stopping && d && d - now < t)
        t = d - now;
    return t > 0 ? (t < IDLE_NS ? t : IDLE_NS) : 0;
}

static const mlo_worker_ops outbox_ops = {"mlo-sender", outbox_run, NULL, NULL};

mlo_outbox *mlo__outbox_start(mlo_env *env, mlo_store *st, mlo_pipe *pipe, mlo_runs *runs) {
    mlo_outbox *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->env = env;
    o->st = st;
    o->pipe = pipe;
    o->s = mlo__sender_new(env, st, 1, runs);
    if (!o->s) {
        free(o);
        return NULL;
    }
    mlo__sender_set_ack(o->s, on_ack, o);
    mlo__sender_set_notify(o->s, on_done, o);
    o->ad = mlo__store_adopted(st, &o->nad);
    o->own.procid = mlo__store_procid(st);
    o->own.n = 1;
    mlo__pipe_set_reader(pipe, &o->w);
    if (mlo__worker_start(&o->w, &outbox_ops, o) != 0) {
        mlo__pipe_set_reader(pipe, NULL);
        mlo__worker_stop(&o->w, 0);
        mlo__sender_free(o->s);
        free(o);
        return NULL;
    }
    return o;
}

void mlo__outbox_stop(mlo_outbox *o, int64_t deadline_ns) {
    if (!o)
        return;
    mlo__pipe_set_reader(o->pipe, NULL);
    mlo__worker_join(&o->w, deadline_ns);
    /* a request still out may come back now: it must not wake a freed
     * worker (notify runs under the pool's lock, so none is under way
     * once this returns) */
    mlo__sender_set_notify(o->s, NULL, NULL);
    mlo__worker_stop(&o->w, deadline_ns);
    /* requests still out give up at the env's deadline (close set it) */
    mlo__sender_free(o->s);
    cursor_close(&o->own);
    cursor_close(&o->old);
    free(o);
}

/* ---- mlo sync: every claimed segment, once -------------------------------------------------- */

int mlo__outbox_drain(mlo_env *env, mlo_sender *s, mlo_store *store, const mlo_seg_ref *segs,
                      size_t n, void (*progress)(void *ctx, uint64_t done, uint64_t total),
                      void *ctx, char *errbuf, size_t errlen) {
    uint64_t total = 0, done = 0;
    uint64_t *acks = calloc(n ? n : 1, sizeof *acks);
    uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    if (!acks || !sizes) {
        free(acks);
        free(sizes);
        return MLO_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        char *path = mlo__store_seg_path(store, segs[i].procid, segs[i].n);
        struct stat sb;
        if (path && stat(path, &sb) == 0)
            sizes[i] = (uint64_t)sb.st_size;
        free(path);
        acks[i] = mlo__store_ack_get(store, segs[i].procid, segs[i].n);
        if (sizes[i] > acks[i])
            total += sizes[i] - (acks[i] ? acks[i] : 0);
    }
    if (progress)
        progress(ctx, 0, total);
    int result = MLO_OK, damaged = 0;
    char err[256];
    for (size_t i = 0; i < n && result == MLO_OK; i++) {
        char *path = mlo__store_seg_path(store, segs[i].procid, segs[i].n);
        err[0] = 0;
        mlo_logr *r = path ? mlo__logr_open(path, err, sizeof err) : NULL;
        if (!r) {
            mlo__env_report(env, MLO_ERR_STORE, 0, "cannot read %s: %s", path ? path : "a segment",
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
            int rc = read_stage(s, r, MLO_SENDER_ADOPTED, &end, err, sizeof err);
            if (rc == -2) {
                mlo__sender_reset(s);
                result = MLO_ERR_NO_MEMORY;
                break;
            }
            if (mlo__sender_staged(s)) {
                int st = mlo__sender_process(s);
                if (st != MLO_OK) {
                    /* issue 16 (mlo sync): past the env's network deadline (sync
                     * sets one when the server stops answering) a retry cannot help */
                    if (++tries <= 2 && !mlo__env_aborted(env)) {
                        mlo__clock_sleep(mlo__env_clock(env), mlo__retry_sync_pause_ns(st, tries));
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
                    mlo__store_ack_set(store, segs[i].procid, segs[i].n, ack, 1);
                    if (progress)
                        progress(ctx, done, total);
                }
            }
            if (rc == 1)
                continue;
            if (rc == -1) {
                mlo__env_report(env, MLO_ERR_STORE, 0, "segment %s damaged: %s", path, err);
                if (errbuf && errlen && !errbuf[0])
                    snprintf(errbuf, errlen,
                             "segment %s damaged (%s): the intact blocks were uploaded", path, err);
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
