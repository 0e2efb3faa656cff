/*
 * mlo_inflight.c - the pool of requests in flight (mlo_inflight.h).
 *
 * Jobs pass between the sender's thread and the workers under the pool's
 * lock: a ready queue (FIFO) and a finished list.  A job's fields are
 * written by one side before it is handed over.  Workers are started when a
 * job finds none idle, up to the maximum: a client with one run (whose
 * requests never overlap) has one, a sync with nothing to send none.  An
 * idle worker sleeps until a job is handed to it (mlo__worker_wake).
 *
 * Threads: the sender's thread calls everything here; the workers run
 * worker_run.
 */
#include "mlo_inflight.h"

#include "mlo_api.h"
#include "mlo_requests.h"
#include "mlo_worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker {
    mlo_inflight *p;
    mlo_api *api;
    mlo_worker w;
    int idle; /* waiting for a job (under the pool's lock) */
} worker;

struct mlo_inflight {
    mlo_env *env;
    int keep;
    pthread_mutex_t lock;
    pthread_cond_t done; /* a job has finished */
    mlo_job *ready, *ready_tail;
    mlo_job *fin, *fin_tail;
    int cancel;           /* != MLO_OK: the stage failed; jobs still queued are not sent */
    size_t nworkers, max; /* nworkers: the sender's thread only */
    worker *w;
    void (*notify)(void *ctx);
    void *notify_ctx;
};

static void run_job(worker *w, mlo_job *j) {
    mlo_inflight *p = w->p;
    mlo__buf_reset(&j->reports);
    mlo_reqctx x = {.env = p->env, .api = w->api, .keep = p->keep, .defer = &j->reports};
    switch (j->kind) {
    case MLO_JOB_BATCH:
        j->status = mlo__requests_batch(&x, j->sid, j->recs, j->n);
        break;
    case MLO_JOB_END:
        if (j->sweep_lid)
            mlo__requests_sweep(&x, j->sweep_exp, j->sweep_lid, j->sid);
        j->status = mlo__requests_end(&x, j->sid, j->rec);
        break;
    default:
        j->status = mlo__requests_dataset(&x, j->sid, j->rec, &j->ds);
        break;
    }
    j->sent = x.sent;
    j->adopted = x.adopted;
    j->failed = x.failed;
}

static int64_t worker_run(void *ctx, mlo_worker *wk) {
    worker *w = ctx;
    mlo_inflight *p = w->p;
    pthread_mutex_lock(&p->lock);
    mlo_job *j = p->ready;
    if (!j) {
        int stop = mlo__worker_stopping(wk);
        w->idle = !stop;
        pthread_mutex_unlock(&p->lock);
        return stop ? MLO_WORKER_EXIT : MLO_WORKER_IDLE;
    }
    p->ready = j->next;
    if (!p->ready)
        p->ready_tail = NULL;
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
    /* idle from here on, in the same locked section: the sender, which
     * hands this run's next job over as soon as it sees this one finished,
     * must find this worker idle rather than start another one */
    int more = p->ready != NULL;
    w->idle = !more;
    /* under the lock: once set_notify(NULL) returns, no notify is under way
     * (the callback only wakes a worker: pool lock, then worker lock) */
    if (p->notify)
        p->notify(p->notify_ctx);
    pthread_mutex_unlock(&p->lock);
    return more ? 0 : MLO_WORKER_IDLE;
}

static const mlo_worker_ops worker_ops = {"mlo-inflight", worker_run, NULL, NULL};

mlo_inflight *mlo__inflight_new(mlo_env *env, int keep, int max) {
    mlo_inflight *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->w = calloc((size_t)max, sizeof *p->w);
    if (!p->w) {
        free(p);
        return NULL;
    }
    p->env = env;
    p->keep = keep;
    p->max = (size_t)max;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->done, NULL);
    return p;
}

void mlo__inflight_free(mlo_inflight *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->nworkers; i++)
        mlo__worker_stop(&p->w[i].w, 0);
    for (size_t i = 0; i < p->nworkers; i++)
        mlo__api_free(p->w[i].api);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p->w);
    free(p);
}

size_t mlo__inflight_workers(const mlo_inflight *p) {
    return p->nworkers;
}

int mlo__inflight_spawn(mlo_inflight *p) {
    if (p->nworkers >= p->max)
        return -1;
    worker *w = &p->w[p->nworkers];
    memset(w, 0, sizeof *w);
    w->p = p;
    w->api = mlo__api_new(p->env);
    if (!w->api)
        return -1;
    if (mlo__worker_start(&w->w, &worker_ops, w) != 0) {
        mlo__worker_stop(&w->w, 0);
        mlo__api_free(w->api);
        w->api = NULL;
        return -1;
    }
    p->nworkers++;
    return 0;
}

void mlo__inflight_begin(mlo_inflight *p) {
    pthread_mutex_lock(&p->lock);
    p->cancel = MLO_OK;
    pthread_mutex_unlock(&p->lock);
}

void mlo__inflight_cancel(mlo_inflight *p, int st) {
    pthread_mutex_lock(&p->lock);
    if (p->cancel == MLO_OK)
        p->cancel = st;
    pthread_mutex_unlock(&p->lock);
}

void mlo__inflight_push(mlo_inflight *p, mlo_job *j) {
    j->next = NULL;
    worker *idle = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->ready_tail)
        p->ready_tail->next = j;
    else
        p->ready = j;
    p->ready_tail = j;
    for (size_t i = 0; i < p->nworkers && !idle; i++)
        if (p->w[i].idle) {
            idle = &p->w[i];
            idle->idle = 0; /* this job is its: the next push looks further */
        }
    pthread_mutex_unlock(&p->lock);
    if (idle)
        mlo__worker_wake(&idle->w);
    else if (p->nworkers < p->max)
        mlo__inflight_spawn(p);
}

mlo_job *mlo__inflight_collect(mlo_inflight *p, int wait) {
    pthread_mutex_lock(&p->lock);
    while (wait && !p->fin)
        pthread_cond_wait(&p->done, &p->lock);
    mlo_job *j = p->fin;
    p->fin = p->fin_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return j;
}

void mlo__inflight_set_notify(mlo_inflight *p, void (*fn)(void *ctx), void *ctx) {
    pthread_mutex_lock(&p->lock);
    p->notify = fn;
    p->notify_ctx = ctx;
    pthread_mutex_unlock(&p->lock);
}
