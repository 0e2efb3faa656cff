/*
 * mlo_log.h - the run log's segment files: append-only, zstd-compressed
 * blocks of length-delimited protobuf frames (proto/mlo_log.proto), each block
 * checksummed, each file with a versioned header.  The format is written down
 * at the top of mlo_log.c.
 *
 * A segment has one writer (the process's shipper thread) and any number of
 * readers (the sender thread, `mlo sync`, `mlo ls`, recovery).  Readers treat
 * the bytes as untrusted: a torn or corrupted block ends the readable part of
 * a segment (intact blocks before it are kept; reading may resynchronise on
 * the next block magic after damage).
 */
#ifndef MLO_LOG_H
#define MLO_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "mlo_buf.h"

/* Event types in the log: the queue's record types (mlo_queue.h) plus: */
#define MLO_EV_START_RUN 16
/* Only in run summaries (<store>/summaries, mlo_retention.c): a metric's
 * points that were removed, folded (key; value_num, timestamp, step: the
 * latest point; count, min, max), and the name of a segment folded in (key). */
#define MLO_EV_METRIC_SUMMARY 17
#define MLO_EV_SUMMARY_SOURCE 18

/* One event, as written to or read from the log.  Strings are NUL-terminated
 * and borrowed (from the caller on write; from the reader until its next call
 * on read). */
typedef struct mlo_log_event {
    uint16_t type;      /* MLO_REC_METRIC, _PARAM, _TAG, _END_RUN, _DATASET, MLO_EV_START_RUN */
    const char *run_id; /* the run's local id (32 hex characters) */
    const char *key;    /* metric/param/tag key; START_RUN: experiment name or NULL;
                         * DATASET: dataset name */
    const char *value;  /* param/tag value; START_RUN: run name or NULL; DATASET: source JSON */
    double value_num;   /* metric value; END_RUN: status */
    int64_t timestamp;  /* ms; START_RUN: start time; END_RUN: end time; DATASET: logged at */
    int64_t step;
    /* START_RUN only */
    const char *experiment_id; /* or NULL (then key names the experiment, or Default) */
    const char *parent_run_id; /* local id of the parent, or NULL */
    size_t ntags;
    const char *const *tag_keys;
    const char *const *tag_values;
    /* DATASET only (NULL when absent, e.g. in other events) */
    const char *digest;
    const char *source_type;
    const char *context; /* mlflow.data.context input tag, NULL or "" for none */
    /* METRIC_SUMMARY only (0 when absent) */
    uint64_t count;
    double min, max;
} mlo_log_event;

/* A position in a segment: the byte offset of a block boundary. */
typedef uint64_t mlo_log_off;

/* ---- writer ---- */
typedef struct mlo_logw mlo_logw;

/* Creates (O_EXCL, mode 0600) the segment file at path and writes its header.
 * NULL on failure with a message in err.  One thread at a time. */
mlo_logw *mlo__logw_create(const char *path, char *err, size_t errlen);
/* Reopens an existing segment for appending after its last intact block
 * (a torn tail is cut off).  NULL on failure. */
mlo_logw *mlo__logw_reopen(const char *path, char *err, size_t errlen);
/* Adds one event to the current block (in memory).  0, or -1 on OOM. */
int mlo__logw_add(mlo_logw *w, const mlo_log_event *ev);
/* Compresses and writes the current block, if it holds any event, with one
 * write(); with do_fsync, fdatasyncs after.  *end gets the offset after the
 * block (the segment's size).  0, or -1 on an I/O error (errno kept; the block
 * stays pending so a later commit may retry, e.g. after disk full). */
int mlo__logw_commit(mlo_logw *w, int do_fsync, mlo_log_off *end);
/* Bytes written to the segment so far (header included). */
mlo_log_off mlo__logw_size(const mlo_logw *w);
/* Events added since the last successful commit. */
size_t mlo__logw_pending(const mlo_logw *w);
void mlo__logw_close(mlo_logw *w);

/* ---- reader ---- */
typedef struct mlo_logr mlo_logr;

/* Opens a segment for reading (validates the header).  NULL with a message
 * in err if it is not a segment of a known version. */
mlo_logr *mlo__logr_open(const char *path, char *err, size_t errlen);
/* Positions the reader at a block boundary previously returned by
 * mlo__logr_block_end or mlo__logw_commit (0 = first block). */
int mlo__logr_seek(mlo_logr *r, mlo_log_off off);
/* Reads the next event.  1 = *ev filled (valid until the next call), 0 = no
 * more complete blocks for now (the writer may add more later: call again),
 * -1 = damage at the current offset (err says what; mlo__logr_skip_damage
 * moves past it), -2 = out of memory (nothing moved: call again later). */
int mlo__logr_next(mlo_logr *r, mlo_log_event *ev, char *err, size_t errlen);
/* The offset after the block the last returned event came from. */
mlo_log_off mlo__logr_block_end(const mlo_logr *r);
/* True when the last event returned was the last of its block. */
int mlo__logr_at_block_end(const mlo_logr *r);
/* After -1 from next: looks for the next intact block after the damage.
 * 1 = found (reading continues there), 0 = none. */
int mlo__logr_skip_damage(mlo_logr *r);
void mlo__logr_close(mlo_logr *r);

/* Fuzzing and tests: parses a whole segment held in memory, calling fn on each
 * event; returns the number of events, stops quietly at damage. */
size_t mlo__log_parse_buffer(const uint8_t *data, size_t len,
                             void (*fn)(void *ctx, const mlo_log_event *ev), void *ctx);

/* Tests: decodes one LogEvent frame with the reader's fast path and with
 * protobuf-c.  1 = the fast path took it and both agree, 0 = the fast path
 * declined it (protobuf-c decides), -1 = they disagree, -2 = out of memory. */
int mlo__log_decode_compare(const uint8_t *frame, size_t len);

#endif /* MLO_LOG_H */
