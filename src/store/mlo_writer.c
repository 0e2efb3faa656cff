/*
 * mlo_shipper.c - the writer thread: drains the event queue into the store's
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
 * Waiting: a light sleep of one flush interval, which producers do not
 * interrupt (so a log call never pays for a wake-up system call) unless the
 * queue fills to a quarter; after a second without events, a deep sleep that
 * the next event ends (one system call after an idle spell).
 *
 * Threads: only the writer thread runs this file (mlo__writer_add_rec is
 * also used by crash recovery, on the thread that opens the store).
 */
#define _GNU_SOURCE
#include "mlo_internal.h"
#include "mlo_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STAGE_MAX 4096
#define SEG_MAX_BYTES (64u << 20)
#define RETRY_NS 1000000000

typedef struct writer {
    mlo_client *c;
    mlo_store *st;
    mlo_pipe *p;
    mlo_logw *w;
    int sync_fd; /* read-only fd of the current segment, for interval fsyncs */
    uint32_t seg;
    mlo_buf scratch;
    int use_peek;
    uint64_t peek_end;
    uint64_t events;    /* events added since the last commit */
    uint64_t flush_seq; /* highest FLUSH seen since the last commit */
    int failing;
    int64_t retry_at;
    int64_t last_sync;
    int dirty;
    int oom;
    size_t taken; /* records of this peek handled (before an out-of-memory) */
    mlo_sender *snd; /* memory mode */
    int64_t hist_next_ns; /* when the histograms want the next tick (relative) */
} writer;

/* ---- records -> log events ------------------------------------------------- */

int mlo__writer_add_rec(struct mlo_logw *w, const mlo_rec *r, const char *lid, mlo_buf *scratch) {
    mlo_log_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = r->type;
    ev.run_id = lid;
    mlo__buf_reset(scratch);
    if (mlo__buf_append(scratch, mlo__rec_key(r), r->key_len) != 0 ||
        mlo__buf_appendc(scratch, 0) != 0 ||
        mlo__buf_append(scratch, mlo__rec_val(r), r->val_len) != 0 ||
        mlo__buf_appendc(scratch, 0) != 0)
        return -1;
    const char *key = scratch->data;
    const char *val = scratch->data + r->key_len + 1;
    mlo_startrun sr;
    mlo_dataset_payload ds;
    switch (r->type) {
    case MLO_REC_METRIC:
        ev.key = key;
        ev.value_num = r->value;
        ev.timestamp = r->timestamp;
        ev.step = r->step;
        break;
    case MLO_REC_PARAM:
    case MLO_REC_TAG:
        ev.key = key;
        ev.value = val;
        break;
    case MLO_REC_END_RUN:
        ev.value_num = r->value;
        ev.timestamp = r->timestamp;
        break;
    case MLO_REC_DATASET:
        if (mlo__dataset_payload_parse(val, r->val_len, &ds) != 0)
            return 0;
        ev.key = key;
        ev.value = ds.source;
        ev.timestamp = r->timestamp;
        ev.digest = ds.digest;
        ev.source_type = ds.source_type;
        ev.context = ds.context;
        break;
    case MLO_EV_START_RUN:
        if (mlo__startrun_parse(val, r->val_len, &sr) != 0)
            return 0;
        ev.key = sr.exp_name;
        ev.value = sr.run_name;
        ev.timestamp = r->timestamp;
        ev.experiment_id = sr.exp_id;
        ev.parent_run_id = sr.parent;
        ev.ntags = sr.ntags;
        ev.tag_keys = sr.keys;
        ev.tag_values = sr.values;
        break;
    default:
        return 0;
    }
    return mlo__logw_add(w, &ev) == 0 ? 1 : -1;
}

/* ---- the durable path ---------------------------------------------------------- */

static void write_cb(void *ctx, const mlo_rec *r) {
    writer *w = ctx;
    if (w->oom)
        return; /* not taken: stays in the ring */
    if (r->type == MLO_REC_FLUSH) {
        if ((uint64_t)r->step > w->flush_seq)
            w->flush_seq = (uint64_t)r->step;
        w->taken++;
        return;
    }
    mlo_run *run = mlo__client_run(w->c, r->run);
    if (!run) {
        mlo__stat_add(w->c, MLO_STAT_FAILED, 1);
        w->taken++;
        return;
    }
    int rc = mlo__writer_add_rec(w->w, r, run->local_id, &w->scratch);
    if (rc < 0) {
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

/* Histogram emissions (mlo__hist_tick) go into the pipeline like any metric. */
static void emit_durable(void *ctx, uint32_t run, const char *key, double value, int64_t step,
                         int64_t ts_ms) {
    writer *w = ctx;
    mlo_run *r = mlo__client_run(w->c, run);
    if (!r || !w->w)
        return;
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
}

static void emit_memory(void *ctx, uint32_t run, const char *key, double value, int64_t step,
                        int64_t ts_ms) {
    writer *w = ctx;
    mlo_run *r = mlo__client_run(w->c, run);
    if (!r)
        return;
    mlo__stat_add(w->c, MLO_STAT_ACCEPTED, 1);
    if (mlo__sender_add(w->snd, MLO_REC_METRIC, r->local_id, key, strlen(key), "", 0, value,
                        ts_ms, step, 0) != 0)
        mlo__stat_add(w->c, MLO_STAT_FAILED, 1);
}

static void flush_done(mlo_client *c, uint64_t seq) {
    pthread_mutex_lock(&c->flush_lock);
    if (seq > c->flush_done)
        c->flush_done = seq;
    pthread_cond_broadcast(&c->flush_cond);
    pthread_mutex_unlock(&c->flush_lock);
}

void mlo__pipe_signal(mlo_pipe *p) {
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void fail(writer *w, const char *what) {
    int e = errno;
    if (!w->failing)
        mlo__report(w->c, MLO_ERR_STORE, 0,
                    "store: %s (%s): events wait in the queue and the write is retried every "
                    "second; log calls meet the full policy once the queue is full",
                    what, strerror(e));
    w->failing = 1;
    w->retry_at = mlo__mono_ns() + RETRY_NS;
}

static int ensure_segment(writer *w) {
    if (w->w)
        return 0;
    char *path = mlo__store_seg_path(w->st, mlo__store_procid(w->st), w->seg + 1);
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
    pthread_mutex_lock(&w->p->lock);
    w->p->seg = w->seg;
    w->p->committed = mlo__logw_size(lw);
    pthread_mutex_unlock(&w->p->lock);
    return 0;
}

static void rotate(writer *w) {
    mlo__logw_close(w->w);
    w->w = NULL;
}

/* Announces a successful commit ending at end. */
static void committed(writer *w, uint64_t end) {
    mlo_client *c = w->c;
    if (w->events)
        mlo__stat_add(c, MLO_STAT_ACCEPTED, w->events);
    w->events = 0;
    uint64_t seq = w->flush_seq;
    w->flush_seq = 0;
    pthread_mutex_lock(&w->p->lock);
    w->p->committed = end;
    int local = mlo__store_uri(w->st) == NULL;
    if (seq && !local) {
        if (w->p->ntargets == MLO_PIPE_TARGETS)
            w->p->ntargets--; /* a later target covers the one it replaces */
        w->p->targets[w->p->ntargets++] =
            (mlo_flush_target){.seq = seq, .seg = w->seg, .off = end};
    }
    pthread_cond_broadcast(&w->p->cond);
    pthread_mutex_unlock(&w->p->lock);
    if (seq && local)
        flush_done(c, seq);
}

static int do_commit(writer *w) {
    int64_t now = mlo__mono_ns();
    int pol = w->c->cfg.fsync_policy;
    int do_fsync = pol == MLO_FSYNC_ALWAYS ||
                   (pol == MLO_FSYNC_INTERVAL &&
                    now - w->last_sync >= (int64_t)w->c->cfg.fsync_interval_ms * 1000000);
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
        mlo__report(w->c, MLO_ERR_STORE, 0, "store: writing the run log works again");
    w->failing = 0;
    if (w->use_peek)
        mlo__ring_release_sc(w->c->queue, w->peek_end);
    committed(w, end);
    if (end >= SEG_MAX_BYTES)
        rotate(w);
    return 0;
}

/* Interval fsync of what was committed without one. */
static void interval_sync(writer *w) {
    if (!w->dirty || w->c->cfg.fsync_policy != MLO_FSYNC_INTERVAL || w->sync_fd < 0)
        return;
    int64_t now = mlo__mono_ns();
    if (now - w->last_sync < (int64_t)w->c->cfg.fsync_interval_ms * 1000000)
        return;
    fdatasync(w->sync_fd);
    w->last_sync = now;
    w->dirty = 0;
}

/* One cycle: take records, commit.  Returns the number of records taken. */
static size_t cycle(writer *w) {
    mlo_client *c = w->c;
    if (w->failing) {
        if (mlo__mono_ns() < w->retry_at)
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
    w->hist_next_ns = mlo__hist_tick(c, mlo__mono_ns(), emit_durable, w);
    size_t n;
    w->taken = 0;
    if (w->use_peek) {
        w->peek_end = mlo__ring_head_sc(c->queue);
        n = mlo__ring_peek_sc(c->queue, &w->peek_end, STAGE_MAX, write_cb, w);
    } else {
        n = c->qops->drain(c->queue, STAGE_MAX, write_cb, w);
    }
    if (w->oom) {
        w->oom = 0;
        if (w->use_peek) {
            /* release, later, only what went into the block */
            w->peek_end = mlo__ring_head_sc(c->queue);
            mlo__ring_peek_sc(c->queue, &w->peek_end, w->taken, noop_cb, NULL);
        } else {
            mlo__stat_add(c, MLO_STAT_FAILED, n - w->taken);
        }
        errno = ENOMEM;
        fail(w, "out of memory");
        return n;
    }
    if (n || mlo__logw_pending(w->w))
        do_commit(w);
    return n;
}

/* The light sleep, cut short when a histogram is due. */
static int64_t sleep_ns(const writer *w, int64_t interval_ns) {
    int64_t t = w->hist_next_ns - mlo__mono_ns();
    if (w->hist_next_ns == INT64_MAX || t >= interval_ns)
        return interval_ns;
    return t > 0 ? t : 0;
}

static void run_durable(writer *w) {
    mlo_client *c = w->c;
    int64_t interval_ns = (int64_t)c->cfg.flush_interval_ms * 1000000;
    int64_t idle_ns = 0;
    for (;;) {
        size_t n = cycle(w);
        interval_sync(w);
        if (n) {
            idle_ns = 0;
            continue;
        }
        /* acquire: pairs with close's release store; the queue is closed by then */
        if (atomic_load_explicit(&c->stop, memory_order_acquire)) {
            if (w->failing) {
                /* one last try, then leave the rest in the ring file */
                w->retry_at = 0;
                cycle(w);
                if (w->failing)
                    break;
                continue;
            }
            if (cycle(w))
                continue;
            break;
        }
        if (w->failing) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
            continue;
        }
        int64_t sl = sleep_ns(w, interval_ns);
        if (w->hist_next_ns != INT64_MAX) {
            c->qops->wait(c->queue, sl, 0); /* histograms tick: no deep sleep */
        } else if (idle_ns >= 1000000000) {
            c->qops->wait(c->queue, 10000000000, 1);
        } else {
            c->qops->wait(c->queue, interval_ns, 0);
            idle_ns += interval_ns;
        }
    }
    if (w->w) {
        if (w->dirty && c->cfg.fsync_policy != MLO_FSYNC_NONE && w->sync_fd >= 0)
            fdatasync(w->sync_fd);
        mlo__logw_close(w->w);
        w->w = NULL;
    }
}

/* ---- memory only ------------------------------------------------------------------ */

typedef struct mem_ctx {
    writer *w;
    uint64_t events;
    uint64_t flush_seq;
} mem_ctx;

static void mem_cb(void *ctx, const mlo_rec *r) {
    mem_ctx *m = ctx;
    mlo_client *c = m->w->c;
    if (r->type == MLO_REC_FLUSH) {
        if ((uint64_t)r->step > m->flush_seq)
            m->flush_seq = (uint64_t)r->step;
        /* everything before the flush is sent before it is done: a flush
         * ends the stage (process_mem sends what is staged) */
        return;
    }
    mlo_run *run = mlo__client_run(c, r->run);
    int rc = run ? mlo__sender_add(m->w->snd, r->type, run->local_id, mlo__rec_key(r),
                                   r->key_len, mlo__rec_val(r), r->val_len, r->value,
                                   r->timestamp, r->step, 0)
                 : -1;
    if (r->type != MLO_EV_START_RUN) {
        m->events++;
        if (rc != 0)
            mlo__stat_add(c, MLO_STAT_FAILED, 1);
    }
}

static void run_memory(writer *w) {
    mlo_client *c = w->c;
    int64_t interval_ns = (int64_t)c->cfg.flush_interval_ms * 1000000;
    int64_t idle_ns = 0;
    for (;;) {
        mem_ctx m = {.w = w};
        w->hist_next_ns = mlo__hist_tick(c, mlo__mono_ns(), emit_memory, w);
        size_t n = c->qops->drain(c->queue, STAGE_MAX, mem_cb, &m);
        if (!n && mlo__sender_staged(w->snd))
            mlo__sender_process(w->snd); /* histogram metrics only */
        if (n) {
            mlo__stat_add(c, MLO_STAT_ACCEPTED, m.events);
            mlo__sender_process(w->snd);
            if (m.flush_seq)
                flush_done(c, m.flush_seq);
            idle_ns = 0;
            continue;
        }
        if (atomic_load_explicit(&c->stop, memory_order_acquire))
            break; /* the drain above found nothing: the queue is closed and empty */
        int64_t sl = sleep_ns(w, interval_ns);
        if (w->hist_next_ns != INT64_MAX) {
            c->qops->wait(c->queue, sl, 0); /* histograms tick: no deep sleep */
        } else if (idle_ns >= 1000000000) {
            c->qops->wait(c->queue, 10000000000, 1);
        } else {
            c->qops->wait(c->queue, interval_ns, 0);
            idle_ns += interval_ns;
        }
    }
}

static void discard_cb(void *ctx, const mlo_rec *r) {
    mlo_client *c = ctx;
    if (r->type == MLO_REC_FLUSH) {
        flush_done(c, (uint64_t)r->step);
        return;
    }
    if (r->type != MLO_EV_START_RUN) {
        mlo__stat_add(c, MLO_STAT_ACCEPTED, 1);
        mlo__stat_add(c, MLO_STAT_FAILED, 1);
    }
}

void *mlo__shipper_main(void *arg) {
    mlo_client *c = arg;
    writer w = {.c = c, .st = c->store, .p = c->pipe, .sync_fd = -1};
    mlo__buf_init(&w.scratch);
    w.last_sync = mlo__mono_ns();
    if (c->store) {
        w.use_peek = c->qops == &mlo__queue_ring_ops;
        run_durable(&w);
        pthread_mutex_lock(&c->pipe->lock);
        c->pipe->writer_done = 1;
        pthread_cond_broadcast(&c->pipe->cond);
        pthread_mutex_unlock(&c->pipe->lock);
        /* the ring may be removed at close only if it holds nothing */
        atomic_store_explicit(&c->ring_left, w.failing, memory_order_release);
    } else {
        w.snd = mlo__sender_new(c, NULL, 0);
        if (!w.snd) {
            mlo__report(c, MLO_ERR_NO_MEMORY, 0, "shipper: out of memory, nothing will be sent");
            /* keep draining so producers are not stuck; count as failed */
            for (;;) {
                size_t n = c->qops->drain(c->queue, STAGE_MAX, discard_cb, c);
                if (!n && atomic_load_explicit(&c->stop, memory_order_acquire))
                    break;
                if (!n)
                    c->qops->wait(c->queue, 100000000, 1);
            }
        } else {
            run_memory(&w);
            mlo__sender_free(w.snd);
        }
    }
    if (w.sync_fd >= 0)
        close(w.sync_fd);
    mlo__buf_free(&w.scratch);
    return NULL;
}
