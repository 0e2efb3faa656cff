/*
 * mlo_api_int.h - what the REST-call files share (mlo_api.c and the files
 * that add calls of one area: mlo_api_artifacts.c, mlo_api_registry.c).
 * They are the only files that include the generated protobuf-c code.
 * Never installed.
 */
#ifndef MLO_API_INT_H
#define MLO_API_INT_H

#include "mlflow_service.pb-c.h"
#include "mlo_api.h"
#include "mlo_http.h"
#include "mlo_pbjson.h"

struct mlo_api {
    mlo_http *http;
    mlo_env *env;
    int64_t deadline_ns;
    int not_idempotent;           /* the next POST: see mlo_http_req.not_idempotent */
    _Atomic int64_t *upload_sent; /* artifact bodies' progress (mlo__api_watch_uploads) */
    mlo_buf body;
    mlo_buf query;
    mlo_buf path;
    /* reusable arrays for log-batch */
    Mlflow__Metric *metrics;
    Mlflow__Metric **pmetrics;
    Mlflow__Param *params;
    Mlflow__Param **pparams;
    Mlflow__RunTag *tags;
    Mlflow__RunTag **ptags;
};

/* POSTs msg as JSON to path: relative to "/api/2.0/mlflow/", or taken as is
 * when it starts with '/' (e.g. "/api/2.0/mlflow-artifacts/mpu/create/...").
 * A 2xx answer is decoded into *resp when rdesc is non-NULL (caller frees
 * with protobuf_c_message_free_unpacked).  Counts requests, classifies
 * failures into e.  Returns e->status (MLO_OK on success). */
int mlo__api_post(mlo_api *a, const char *path, const ProtobufCMessage *msg,
                  const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                  mlo_api_error *e);
/* GETs path (as mlo__api_post) with an encoded query (or NULL). */
int mlo__api_get(mlo_api *a, const char *path, const char *query,
                 const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                 mlo_api_error *e);
/* Appends "&key=<val percent-encoded>" ("key=..." when q is empty) to q;
 * val NULL appends nothing.  0, or -1 when out of memory.  Does not add the
 * final NUL: append '\0' before passing q->data on. */
int mlo__api_query(mlo_api *a, mlo_buf *q, const char *key, const char *val);
/* Turns a transport result into a status: MLflow's error body when there is
 * one, else the HTTP status.  Fills e; returns e->status. */
int mlo__api_classify(const mlo_http_result *r, const char *what, mlo_api_error *e);
/* e := MLO_ERR_NO_MEMORY "<what>: out of memory"; returns it. */
int mlo__api_no_memory(mlo_api_error *e, const char *what);
/* e := MLO_ERR_PROTOCOL "the answer lacks the expected fields". */
int mlo__api_missing(mlo_api_error *e, const char *what);
/* *out := strdup(s), or MLO_ERR_NO_MEMORY in e. */
int mlo__api_dup(char **out, const char *s, mlo_api_error *e);

#endif /* MLO_API_INT_H */
