/*
 * mlo_pipe.h - the hand-over from the writer (which commits blocks to the
 * process's own segments) to the sender (which reads them back and sends
 * them), and the flush targets between the two.
 *
 * The writer announces each segment it begins and each commit (end offset;
 * a FLUSH record seen in the block becomes a target "own segment s
 * acknowledged up to off"); the sender reads that state, sends, and reports
 * how far the server acknowledged, which completes the targets it reaches
 * through the client's flush gate.  Each announcement wakes the sender.
 *
 * Threads: the writer, the sender; everything under the pipe's lock.
 */
#ifndef MLO_PIPE_H
#define MLO_PIPE_H

#include "mlo_gate.h"
#include "mlo_worker.h"

#include <pthread.h>
#include <stdint.h>

#define MLO_PIPE_TARGETS 256

typedef struct mlo_flush_target {
    uint64_t seq;
    uint32_t seg;
    uint64_t off;
} mlo_flush_target;

typedef struct mlo_pipe {
    pthread_mutex_t lock;
    uint32_t seg;       /* the writer's current segment number (0: none yet) */
    uint64_t committed; /* end of committed blocks in it */
    int writer_done;    /* the writer has exited: seg/committed are final */
    mlo_flush_target targets[MLO_PIPE_TARGETS];
    size_t ntargets;
    uint32_t acked_seg; /* sender progress on own segments */
    uint64_t acked_off;
    mlo_gate *flush;    /* the client's flush gate */
    mlo_worker *reader; /* woken on every announcement (the sender), or NULL */
} mlo_pipe;

void mlo__pipe_init(mlo_pipe *p, mlo_gate *flush);
void mlo__pipe_destroy(mlo_pipe *p);
/* The sender's worker, woken by the writer's announcements. */
void mlo__pipe_set_reader(mlo_pipe *p, mlo_worker *reader);
/* Writer: segment seg begun, committed bytes so far. */
void mlo__pipe_segment(mlo_pipe *p, uint32_t seg, uint64_t committed);
/* Writer: blocks committed up to end; flush_seq (0: none) is done once the
 * sender has acknowledged that far. */
void mlo__pipe_committed(mlo_pipe *p, uint64_t end, uint64_t flush_seq);
/* Writer: it has exited. */
void mlo__pipe_writer_done(mlo_pipe *p);
/* Sender: the writer's state. */
void mlo__pipe_read(mlo_pipe *p, uint32_t *seg, uint64_t *committed, int *writer_done);
/* Sender: own segment seg acknowledged up to off (UINT64_MAX: all);
 * completes the flush targets it reaches. */
void mlo__pipe_acked(mlo_pipe *p, uint32_t seg, uint64_t off);

#endif /* MLO_PIPE_H */
