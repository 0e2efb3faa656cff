/*
 * mlo_payload.h - how records carry what does not fit the fixed header,
 * and how a queue record becomes a run-log event: one place for the layouts
 * the log calls write and the writer, the store's crash recovery and the
 * sender read.
 */
#ifndef MLO_PAYLOAD_H
#define MLO_PAYLOAD_H

#include "mlo_buf.h"
#include "mlo_log.h"
#include "mlo_queue.h"

#include <stddef.h>

/* MLO_REC_DATASET payload: four strings separated by NUL bytes (no NUL after
 * the last): source (MLflow's source JSON, e.g. {"uri": "/data/train.csv"}),
 * digest, source type ("local", "http", "s3", ...), input context (MLflow's
 * mlflow.data.context input tag: "" for none).  A reader takes a missing
 * trailing field as "" and ignores fields after the fourth (room to grow). */
typedef struct mlo_dataset_payload {
    const char *source, *digest, *source_type, *context;
} mlo_dataset_payload;

/* Splits the payload p[0..len) in place; p[len] must be readable and NUL
 * (the writer's scratch copy and the sender's stage both end values so).
 * 0, or -1 when source, digest or source type is missing. */
int mlo__payload_dataset_parse(const char *p, size_t len, mlo_dataset_payload *o);
/* Appends the payload (source, digest, source type, context) to out.  0 / -1 (OOM). */
int mlo__payload_dataset_encode(mlo_buf *out, const mlo_dataset_payload *in);

/* START_RUN payload.  In the ring and the sender's stage a START_RUN record
 * has the local id as key and, as value, NUL-terminated strings one after
 * the other: experiment name, experiment id, run name, parent local id (each
 * "" when absent), then tag key, tag value pairs; timestamp = start time. */
#define MLO_START_MAX_TAGS 64
typedef struct mlo_startrun {
    const char *exp_name, *exp_id, *run_name, *parent; /* NULL when absent */
    size_t ntags;
    const char *keys[MLO_START_MAX_TAGS];
    const char *values[MLO_START_MAX_TAGS];
} mlo_startrun;
/* 0, or -1 if the payload is malformed. */
int mlo__payload_startrun_parse(const char *payload, size_t len, mlo_startrun *out);
/* Appends the payload to out (reset first by the caller).  0 or -1 (OOM). */
int mlo__payload_startrun_encode(mlo_buf *out, const mlo_startrun *in);

/* A queue record of the run with local id lid as a run-log event: ev points
 * into scratch (the caller's reusable buffer) and sr (START_RUN's tags) until
 * their next use.  1 (ev filled), 0 (a record that is no event: FLUSH, an
 * unknown type, a malformed payload), -1 out of memory. */
int mlo__payload_to_event(const mlo_rec *r, const char *lid, mlo_buf *scratch, mlo_startrun *sr,
                          mlo_log_event *ev);

/* Staged records (the sender's stage, read by the REST layer): the mlo_rec
 * header, the key, NUL, the value, NUL, so that the protobuf messages can
 * point at them. */
static inline char *mlo__payload_staged_key(const mlo_rec *r) {
    return (char *)(r + 1);
}
static inline char *mlo__payload_staged_val(const mlo_rec *r) {
    return (char *)(r + 1) + r->key_len + 1;
}

#endif /* MLO_PAYLOAD_H */
