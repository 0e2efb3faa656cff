/*
 * mlo_api_read.h - MLflow REST calls that read what a server holds: a run
 * with its data, metric histories, run searches, an experiment's name, a
 * run's artifact listing, the registered model versions made from a run.  Used by the `mlo` tool
 * (gate --uri, report --uri) and by mlo_resume_run (a run's latest metrics: its last system step);
 * never installed.
 *
 * Everything handed back is plain C (no protobuf type leaves
 * mlo_api_read.c), malloc'd, and freed with the matching _free call.
 * Strings the server left out are NULL.  Every call returns an mlo_status
 * and fills e on failure (MLO_ERR_NOT_FOUND for a run the server does not
 * know); on failure nothing is handed back.
 *
 * Threads: as every mlo_api call, the thread that owns the api object.
 */
#ifndef MLO_API_READ_H
#define MLO_API_READ_H

#include "mlo_api.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_read_kv {
    char *key, *value;
} mlo_read_kv;

/* One metric point (MLflow's Metric without its key). */
typedef struct mlo_read_point {
    int64_t step, timestamp;
    double value;
} mlo_read_point;

typedef struct mlo_read_metric {
    char *key;
    mlo_read_point last; /* runs/get's latest value */
} mlo_read_metric;

typedef struct mlo_read_dataset {
    char *name, *digest, *source_type, *source;
    char *context; /* the input tag mlflow.data.context, or NULL */
} mlo_read_dataset;

typedef struct mlo_read_run {
    char *run_id, *run_name, *experiment_id, *user_id, *artifact_uri, *lifecycle_stage;
    int status;                   /* mlo_run_status (MLflow's numbers), 0 when not given */
    int64_t start_time, end_time; /* ms since the epoch, 0 when not given */
    mlo_read_kv *params;
    size_t nparams;
    mlo_read_kv *tags;
    size_t ntags;
    mlo_read_metric *metrics;
    size_t nmetrics;
    mlo_read_dataset *datasets;
    size_t ndatasets;
} mlo_read_run;

typedef struct mlo_read_file {
    char *path; /* relative to the run's artifact root */
    int is_dir;
    int64_t size; /* -1 for a directory or when not given */
} mlo_read_file;

/* runs/get: *out gets the run's info, params, tags, latest metrics and
 * dataset inputs (free with mlo__api_read_run_free). */
int mlo__api_read_run(mlo_api *a, const char *run_id, mlo_read_run *out, mlo_api_error *e);
void mlo__api_read_run_free(mlo_read_run *r);

/* runs/search over one experiment with an optional filter (NULL: all active
 * runs), following next_page_token until max_runs runs (0: no limit) or
 * the end.  *runs (free with mlo__api_read_runs_free) in the server's order
 * (MLflow's default: newest first). */
int mlo__api_read_search(mlo_api *a, const char *experiment_id, const char *filter, size_t max_runs,
                         mlo_read_run **runs, size_t *n, mlo_api_error *e);
void mlo__api_read_runs_free(mlo_read_run *runs, size_t n);

/* metrics/get-history of one metric, every page: *pts (free()) as the
 * server orders them. */
int mlo__api_read_history(mlo_api *a, const char *run_id, const char *key, mlo_read_point **pts,
                          size_t *n, mlo_api_error *e);

/* experiments/get: the experiment's name (*name malloc'd). */
int mlo__api_read_experiment(mlo_api *a, const char *experiment_id, char **name, mlo_api_error *e);

/* artifacts/list (the tracking API's listing) of one directory of the run
 * (path NULL or "": the root), every page.  Free with
 * mlo__api_read_files_free. */
int mlo__api_read_artifacts(mlo_api *a, const char *run_id, const char *path, mlo_read_file **files,
                            size_t *n, mlo_api_error *e);
void mlo__api_read_files_free(mlo_read_file *files, size_t n);

/* A registered model version (the registry's ModelVersion, in part). */
typedef struct mlo_read_model_version {
    char *name, *version;
    char *status; /* "READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION", or NULL */
    char **aliases;
    size_t naliases;
} mlo_read_model_version;

/* model-versions/search with the filter run_id='<run_id>', every page: the
 * versions registered from that run, in the server's order.  A run id
 * holding anything but letters, digits, '-' and '_' finds none (no request:
 * it could not be quoted in the filter).  Free with
 * mlo__api_read_model_versions_free. */
int mlo__api_read_model_versions(mlo_api *a, const char *run_id, mlo_read_model_version **out,
                                 size_t *n, mlo_api_error *e);
void mlo__api_read_model_versions_free(mlo_read_model_version *v, size_t n);

#endif /* MLO_API_READ_H */
