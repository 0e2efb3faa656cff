/*
 * mlo_writer.c - the writer: drains the event queue into the store's
 * run log and hands over to the sender.
 *
 * With a store (the default) each cycle peeks up to STAGE_MAX records from
 * the ring (a ring in a file keeps them until they are safe), adds them as
 * events to the process's current segment (mlo__logw_add) and commits them
 * as one block (mlo__logw_commit: one compressed write, fdatasync'd as the
 * fsync policy says).  Only then is the ring's space released
 * (mlo__ring_release_sc, which first marks the records committed so crash
 * recovery does not hand them out twice).  The commit is announced to the
 * sender through the client's mlo_pipe (segment number, committed end);
 * FLUSH markers become flush targets "own segment s acknowledged up to off"
 * (with a server) or are done at once (a local store: committed is the
 * promise).  A segment is closed at SEG_MAX_BYTES and the next one begun.
 *
 * Retention (store/mlo_retention.c) removes only closed segments, so with
 * a retention period or a size cap the writer also rolls over to a new
 * segment by age (retention / 8, between a minute and an hour, on the env's
 * clock; an hour with only a cap) and by size (cap / 8, 64 KiB to
 * SEG_MAX_BYTES), and closes an idle segment that is that old; and it runs
 * the retention pass (mlo__retention_tick, at most once a minute) after its
 * cycles.
 *
 * A commit that fails (disk full, I/O error) leaves the events in the ring
 * (and the block pending in the writer): the writer stops taking records and
 * retries every second; meanwhile log calls fill the ring and then meet the
 * queue's full policy.  Nothing is lost unless the ring overflows; at close
 * a still-failing writer leaves its ring file for the next process to recover.
 *
 * Without a store (durability off, or the store unusable) the writer is the
 * whole pipeline, as before the store: it drains the queue into the sender
 * core (mlo_sender.c) and sends in this thread; events that cannot be sent
 * after the retries count as failed.
 *
 * Waiting (a worker of mlo_worker.h that sleeps on the queue): a light
 * sleep of one flush interval, which producers do not interrupt (so a log
 * call never pays for a wake-up system call) unless the queue fills to a
 * quarter; after a second without events, a deep sleep that the next event
 * ends (one system call after an idle spell).  Histograms due earlier cut
 * the sleep short.
 *
 * Threads: only the writer's thread runs this file.
 */
#define _GNU_SOURCE
#include "mlo_writer.h"

#include "mlo_log.h"
#include "mlo_payload.h"
#include "mlo_retention.h"
#include "mlo_ring.h"
#include "mlo_sender.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STAGE_MAX 4096
#define SEG_MAX_BYTES (64u << 20)
#define RETRY_NS 1000000000
#define FAILING_PAUSE_NS 50000000
#define IDLE_DEEP_NS 1000000000
#define DEEP_SLEEP_NS 10000000000LL
#define ROLL_EMPTY_BYTES 32 /* a segment's header alone */
#define ROLL_MIN_MS 60000LL
#define ROLL_MAX_MS 3600000LL
#define ROLL_MIN_BYTES (64u << 10)

struct mlo_writer {
    mlo_writer_cfg cfg;
    mlo_worker worker;
    mlo_logw *w;
    int sync_fd; /* read-only fd of the current segment, for interval fsyncs */
    uint32_t seg;
    mlo_buf scratch;
    mlo_startrun sr;
    uint64_t peek_end;
    uint64_t events;    /* events added since the last commit */
    uint64_t flush_seq; /* highest FLUSH seen since the last commit */
    int failing;
    int64_t retry_at;
    int64_t last_sync;
    int dirty;
    int oom;
    size_t taken;         /* records of this peek handled (before an out-of-memory) */
    mlo_sender *snd;      /* memory mode */
    int64_t hist_next_ns; /* when the histograms want the next tick (relative) */
    int64_t idle_ns;      /* light sleeps since the last record */
    int deep;             /* the next sleep is a deep one */
    int ring_left;
    /* retention: segments rolled over by age and size, the pass's timer */
    int64_t seg_start_ms;
    int64_t roll_ms; /* 0: by size only */
    uint64_t roll_bytes;
    mlo_retention ret;
};

static mlo_env *env_of(mlo_writer *w) {
    return w->cfg.env;
}
static int64_t now_ns(mlo_writer *w) {
    return mlo__env_mono(w->cfg.env);
}

/* ---- the durable path ---------------------------------------------------------- */

static void write_cb(void *ctx, const mlo_rec *r) {
    mlo_writer *w = ctx;
    if (w->oom)
        return; /* not taken: stays in the ring */
    if (r->type == MLO_REC_FLUSH) {
        if ((uint64_t)r->step > w->flush_seq)
            w->flush_seq = (uint64_t)r->step;
        w->taken++;
        return;
    }
    mlo_run *run = mlo__runs_get(w->cfg.runs, r->run);
    if (!run) {
        mlo__env_stat(env_of(w), MLO_STAT_FAILED, 1);
        w->taken++;
        return;
    }
    mlo_log_event ev;
    int rc = mlo__payload_to_event(r, run->local_id, &w->scratch, &w->sr, &ev);
    if (rc < 0 || (rc > 0 && mlo__logw_add(w->w, &ev) != 0)) {
        w->oom = 1;
        return;
    }
    if (rc > 0 && r->type != MLO_EV_START_RUN)
        w->events++;
    w->taken++;
}

static void noop_cb(void *ctx, const mlo_rec *r) {
    (void)ctx;
    (void)r;
}

/* Histogram emissions (mlo__hists_tick) go into the pipeline like any metric. */
static int emit_durable(void *ctx, uint32_t run, const char *key, size_t klen, double value,
                        int64_t step, int64_t ts_ms) {
    (void)klen;
    mlo_writer *w = ctx;
    mlo_run *r = mlo__runs_get(w->cfg.runs, run);
    if (!r || !w->w)
        return MLO_OK;
    mlo_log_event ev = {.type = MLO_REC_METRIC,
                        .run_id = r->local_id,
                        .key = key,
                        .value_num = value,
                        .timestamp = ts_ms,
                        .step = step};
    if (mlo__logw_add(w->w, &ev) == 0)
        w->events++;
    else
        w->oom = 1;
    return MLO_OK;
}

static int emit_memory(void *ctx, uint32_t run, const char *key, size_t klen, double value,
                       int64_t step, int64_t ts_ms) {
    mlo_writer *w = ctx;
    mlo_run *r = mlo__runs_get(w->cfg.runs, run);
    if (!r)
        return MLO_OK;
    mlo__env_stat(env_of(w), MLO_STAT_ACCEPTED, 1);
    if (mlo__sender_add(w->snd, MLO_REC_METRIC, r->local_id, key, klen, "", 0, value, ts_ms, step,
                        0) != 0)
        mlo__env_stat(env_of(w), MLO_STAT_FAILED, 1);
    return MLO_OK;
}

static void fail(mlo_writer *w, const char *what) {
    int e = errno;
    if (!w->failing)
        mlo__env_report(env_of(w), MLO_ERR_STORE, 0,
                        "store: %s (%s): events wait in the queue and the write is retried every "
                        "second; log calls meet the full policy once the queue is full",
                        what, strerror(e));
    w->failing = 1;
    w->retry_at = now_ns(w) + RETRY_NS;
}

static int ensure_segment(mlo_writer *w) {
    if (w->w)
        return 0;
    mlo_store *st = w->cfg.store;
    char *path = mlo__store_seg_path(st, mlo__store_procid(st), w->seg + 1);
    char err[256] = "";
    mlo_logw *lw = path ? mlo__logw_create(path, err, sizeof err) : NULL;
    if (!lw && path && errno == EEXIST) {
        /* cannot happen with unique procids; never write into another's file */
        free(path);
        w->seg++;
        return -1;
    }
    if (!lw) {
        free(path);
        fail(w, "cannot create a segment");
        return -1;
    }
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    w->sync_fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    w->w = lw;
    w->seg++;
    w->seg_start_ms = mlo__env_now_ms(env_of(w));
    mlo__pipe_segment(w->cfg.pipe, w->seg, mlo__logw_size(lw));
    return 0;
}

/* Announces a successful commit ending at end. */
static void committed(mlo_writer *w, uint64_t end) {
    if (w->events)
        mlo__env_stat(env_of(w), MLO_STAT_ACCEPTED, w->events);
    w->events = 0;
    uint64_t seq = w->flush_seq;
    w->flush_seq = 0;
    if (mlo__store_uri(w->cfg.store) == NULL) {
        /* a local store: committed is the promise */
        mlo__pipe_committed(w->cfg.pipe, end, 0);
        if (seq)
            mlo__gate_done(w->cfg.flush, seq);
    } else {
        mlo__pipe_committed(w->cfg.pipe, end, seq);
    }
}

static int do_commit(mlo_writer *w) {
    int64_t now = now_ns(w);
    const mlo_config *cfg = env_of(w)->cfg;
    int pol = cfg->fsync_policy;
    int do_fsync = pol == MLO_FSYNC_ALWAYS ||
                   (pol == MLO_FSYNC_INTERVAL &&
                    now - w->last_sync >= (int64_t)cfg->fsync_interval_ms * 1000000);
    mlo_log_off end;
    size_t pending = mlo__logw_pending(w->w);
    if (mlo__logw_commit(w->w, do_fsync && pending, &end) != 0) {
        fail(w, "cannot write the run log");
        return -1;
    }
    if (pending) {
        if (do_fsync) {
            w->last_sync = now;
            w->dirty = 0;
        } else {
            w->dirty = 1;
        }
    }
    if (w->failing)
        mlo__env_report(env_of(w), MLO_ERR_STORE, 0, "store: writing the run log works again");
    w->failing = 0;
    if (w->cfg.peek)
        mlo__ring_release_sc(w->cfg.queue, w->peek_end);
    committed(w, end);
    if (end >= w->roll_bytes ||
        (w->roll_ms && mlo__env_now_ms(env_of(w)) - w->seg_start_ms >= w->roll_ms)) {
        mlo__logw_close(w->w);
        w->w = NULL;
    }
    return 0;
}

/* Interval fsync of what was committed without one. */
static void interval_sync(mlo_writer *w) {
    const mlo_config *cfg = env_of(w)->cfg;
    if (!w->dirty || cfg->fsync_policy != MLO_FSYNC_INTERVAL || w->sync_fd < 0)
        return;
    int64_t now = now_ns(w);
    if (now - w->last_sync < (int64_t)cfg->fsync_interval_ms * 1000000)
        return;
    fdatasync(w->sync_fd);
    w->last_sync = now;
    w->dirty = 0;
}

/* One cycle: take records, commit.  Returns the number of records taken. */
static size_t cycle(mlo_writer *w) {
    mlo_queue *q = w->cfg.queue;
    if (w->failing) {
        if (now_ns(w) < w->retry_at)
            return 0;
        if (ensure_segment(w) != 0)
            return 0;
        /* retry the pending block; the records stay peeked meanwhile */
        if (mlo__logw_pending(w->w) || w->flush_seq)
            do_commit(w);
        else
            w->failing = 0;
        return 0;
    }
    if (ensure_segment(w) != 0)
        return 0;
    w->hist_next_ns = mlo__hists_tick(w->cfg.hists, now_ns(w), emit_durable, w);
    size_t n;
    w->taken = 0;
    if (w->cfg.peek) {
        w->peek_end = mlo__ring_head_sc(q);
        n = mlo__ring_peek_sc(q, &w->peek_end, STAGE_MAX, write_cb, w);
    } else {
        n = w->cfg.qops->drain(q, STAGE_MAX, write_cb, w);
    }
    if (w->oom) {
        w->oom = 0;
        if (w->cfg.peek) {
            /* release, later, only what went into the block */
            w->peek_end = mlo__ring_head_sc(q);
            mlo__ring_peek_sc(q, &w->peek_end, w->taken, noop_cb, NULL);
        } else {
            mlo__env_stat(env_of(w), MLO_STAT_FAILED, n - w->taken);
        }
        errno = ENOMEM;
        fail(w, "out of memory");
        return n;
    }
    if (n || mlo__logw_pending(w->w))
        do_commit(w);
    return n;
}

/* How long to sleep now that there is nothing to do: one flush interval
 * (light), cut short when a histogram is due; after a second of those, a
 * deep sleep that any record ends. */
static int64_t idle_sleep(mlo_writer *w) {
    int64_t interval_ns = (int64_t)env_of(w)->cfg->flush_interval_ms * 1000000;
    w->deep = 0;
    if (w->hist_next_ns != INT64_MAX) /* relative: ns until the next tick is due */
        return w->hist_next_ns < interval_ns ? (w->hist_next_ns > 0 ? w->hist_next_ns : 0)
                                             : interval_ns;
    if (w->idle_ns >= IDLE_DEEP_NS) {
        w->deep = 1;
        return DEEP_SLEEP_NS;
    }
    w->idle_ns += interval_ns;
    return interval_ns;
}

/* The writer is done: the segment is closed (fsync'd when the policy says
 * so) and the sender told. */
static int64_t finish_durable(mlo_writer *w) {
    if (w->w) {
        if (w->dirty && env_of(w)->cfg->fsync_policy != MLO_FSYNC_NONE && w->sync_fd >= 0)
            fdatasync(w->sync_fd);
        mlo__logw_close(w->w);
        w->w = NULL;
    }
    /* the ring may be removed at close only if it holds nothing */
    w->ring_left = w->failing;
    mlo__pipe_writer_done(w->cfg.pipe);
    return MLO_WORKER_EXIT;
}

/* An idle segment that has data and is as old as the roll-over age is
 * closed (fsync'd as the policy says), so that retention may take it once
 * it is acknowledged; the next record begins a new one. */
static void roll_idle(mlo_writer *w) {
    if (!w->w || !w->roll_ms || w->failing || mlo__logw_pending(w->w) ||
        mlo__logw_size(w->w) <= ROLL_EMPTY_BYTES ||
        mlo__env_now_ms(env_of(w)) - w->seg_start_ms < w->roll_ms)
        return;
    if (w->dirty && env_of(w)->cfg->fsync_policy != MLO_FSYNC_NONE && w->sync_fd >= 0)
        fdatasync(w->sync_fd);
    w->dirty = 0;
    mlo__logw_close(w->w);
    w->w = NULL;
}

static int64_t run_durable(void *ctx, mlo_worker *wk) {
    mlo_writer *w = ctx;
    size_t n = cycle(w);
    interval_sync(w);
    if (!n)
        roll_idle(w);
    mlo__retention_tick(&w->ret, w->cfg.store, env_of(w));
    if (n) {
        w->idle_ns = 0;
        return 0;
    }
    /* after the stop was asked for, the queue is closed: empty it */
    if (mlo__worker_stopping(wk)) {
        if (w->failing) {
            /* one last try, then leave the rest in the ring file */
            w->retry_at = 0;
            cycle(w);
            return w->failing ? finish_durable(w) : 0;
        }
        return cycle(w) ? 0 : finish_durable(w);
    }
    if (w->failing) {
        w->deep = -1; /* a plain pause: the queue filling up must not spin us */
        return FAILING_PAUSE_NS;
    }
    return idle_sleep(w);
}

/* ---- memory only ------------------------------------------------------------------ */

typedef struct mem_ctx {
    mlo_writer *w;
    uint64_t events;
    uint64_t flush_seq;
} mem_ctx;

static void mem_cb(void *ctx, const mlo_rec *r) {
    mem_ctx *m = ctx;
    mlo_writer *w = m->w;
    if (r->type == MLO_REC_FLUSH) {
        if ((uint64_t)r->step > m->flush_seq)
            m->flush_seq = (uint64_t)r->step;
        /* everything before the flush is sent before it is done: a flush
         * ends the stage (run_memory sends what is staged) */
        return;
    }
    mlo_run *run = mlo__runs_get(w->cfg.runs, r->run);
    int rc = run ? mlo__sender_add(w->snd, r->type, run->local_id, mlo__rec_key(r), r->key_len,
                                   mlo__rec_val(r), r->val_len, r->value, r->timestamp, r->step, 0)
                 : -1;
    if (r->type != MLO_EV_START_RUN) {
        m->events++;
        if (rc != 0)
            mlo__env_stat(env_of(w), MLO_STAT_FAILED, 1);
    }
}

static int64_t run_memory(void *ctx, mlo_worker *wk) {
    mlo_writer *w = ctx;
    mem_ctx m = {.w = w};
    w->hist_next_ns = mlo__hists_tick(w->cfg.hists, now_ns(w), emit_memory, w);
    size_t n = w->cfg.qops->drain(w->cfg.queue, STAGE_MAX, mem_cb, &m);
    if (!n && mlo__sender_staged(w->snd))
        mlo__sender_process(w->snd); /* histogram metrics only */
    if (n) {
        mlo__env_stat(env_of(w), MLO_STAT_ACCEPTED, m.events);
        mlo__sender_process(w->snd);
        if (m.flush_seq)
            mlo__gate_done(w->cfg.flush, m.flush_seq);
        w->idle_ns = 0;
        return 0;
    }
    if (mlo__worker_stopping(wk))
        return MLO_WORKER_EXIT; /* the drain above found nothing: closed and empty */
    return idle_sleep(w);
}

/* ---- the worker ------------------------------------------------------------------- */

static void writer_sleep(void *ctx, int64_t ns) {
    mlo_writer *w = ctx;
    if (w->deep < 0) {
        mlo__clock_sleep(NULL, ns);
        return;
    }
    w->cfg.qops->wait(w->cfg.queue, ns, w->deep);
}

static void writer_wake(void *ctx) {
    mlo_writer *w = ctx;
    w->cfg.qops->wake(w->cfg.queue);
}

static const mlo_worker_ops durable_ops = {"mlo-writer", run_durable, writer_sleep, writer_wake};
static const mlo_worker_ops memory_ops = {"mlo-writer", run_memory, writer_sleep, writer_wake};

mlo_writer *mlo__writer_start(const mlo_writer_cfg *cfg) {
    mlo_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cfg = *cfg;
    w->sync_fd = -1;
    w->hist_next_ns = INT64_MAX;
    mlo__buf_init(&w->scratch);
    w->last_sync = now_ns(w);
    const mlo_config *c = cfg->env->cfg;
    w->roll_bytes = SEG_MAX_BYTES;
    if (c->store_max_bytes > 0 && (uint64_t)c->store_max_bytes / 8 < SEG_MAX_BYTES)
        w->roll_bytes = (uint64_t)c->store_max_bytes / 8 < ROLL_MIN_BYTES
                            ? ROLL_MIN_BYTES
                            : (uint64_t)c->store_max_bytes / 8;
    if (c->store_retention_ms >= 0) {
        int64_t r = c->store_retention_ms / 8;
        w->roll_ms = r < ROLL_MIN_MS ? ROLL_MIN_MS : r > ROLL_MAX_MS ? ROLL_MAX_MS : r;
    } else if (c->store_max_bytes > 0) {
        w->roll_ms = ROLL_MAX_MS;
    }
    const mlo_worker_ops *ops = &durable_ops;
    if (!cfg->store) {
        w->snd = mlo__sender_new(cfg->env, NULL, 0, cfg->runs);
        ops = &memory_ops;
        if (!w->snd) { /* the client does not open: nothing could be sent */
            free(w);
            return NULL;
        }
    }
    if (mlo__worker_start(&w->worker, ops, w) != 0) {
        mlo__sender_free(w->snd);
        free(w);
        return NULL;
    }
    return w;
}

void mlo__writer_wake(mlo_writer *w) {
    mlo__worker_wake(&w->worker);
}

void mlo__writer_stop(mlo_writer *w) {
    mlo__worker_stop(&w->worker, 0);
}

int mlo__writer_ring_left(const mlo_writer *w) {
    return w->ring_left;
}

void mlo__writer_free(mlo_writer *w) {
    if (!w)
        return;
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    mlo__sender_free(w->snd);
    mlo__buf_free(&w->scratch);
    free(w);
}
