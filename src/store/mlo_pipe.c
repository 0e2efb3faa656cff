/*
 * mlo_pipe.c - the writer -> sender hand-over (mlo_pipe.h).
 */
#include "mlo_pipe.h"

#include <string.h>

void mlo__pipe_init(mlo_pipe *p, mlo_gate *flush) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->flush = flush;
}

void mlo__pipe_destroy(mlo_pipe *p) {
    pthread_mutex_destroy(&p->lock);
}

void mlo__pipe_set_reader(mlo_pipe *p, mlo_worker *reader) {
    pthread_mutex_lock(&p->lock);
    p->reader = reader;
    pthread_mutex_unlock(&p->lock);
}

static void wake_reader(mlo_pipe *p) {
    pthread_mutex_lock(&p->lock);
    mlo_worker *r = p->reader;
    pthread_mutex_unlock(&p->lock);
    if (r)
        mlo__worker_wake(r);
}

void mlo__pipe_segment(mlo_pipe *p, uint32_t seg, uint64_t committed) {
    pthread_mutex_lock(&p->lock);
    p->seg = seg;
    p->committed = committed;
    pthread_mutex_unlock(&p->lock);
}

void mlo__pipe_committed(mlo_pipe *p, uint64_t end, uint64_t flush_seq) {
    pthread_mutex_lock(&p->lock);
    p->committed = end;
    if (flush_seq) {
        if (p->ntargets == MLO_PIPE_TARGETS)
            p->ntargets--; /* a later target covers the one it replaces */
        p->targets[p->ntargets++] = (mlo_flush_target){.seq = flush_seq, .seg = p->seg, .off = end};
    }
    pthread_mutex_unlock(&p->lock);
    wake_reader(p);
}

void mlo__pipe_writer_done(mlo_pipe *p) {
    pthread_mutex_lock(&p->lock);
    p->writer_done = 1;
    pthread_mutex_unlock(&p->lock);
    wake_reader(p);
}

void mlo__pipe_read(mlo_pipe *p, uint32_t *seg, uint64_t *committed, int *writer_done) {
    pthread_mutex_lock(&p->lock);
    *seg = p->seg;
    *committed = p->committed;
    *writer_done = p->writer_done;
    pthread_mutex_unlock(&p->lock);
}

void mlo__pipe_acked(mlo_pipe *p, uint32_t seg, uint64_t off) {
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
    if (done && p->flush)
        mlo__gate_done(p->flush, done);
}
