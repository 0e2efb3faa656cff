/*
 * mlo_cli.h - what the files of the `mlo` command-line tool share.
 *
 * The tool is not part of the library: a program linked with the static
 * archive (src/cli/meson.build).  Its files:
 *   mlo_cli_main.c    main: dispatch, usage texts, option parsing helpers
 *   mlo_cli_mem.c     the tool's allocator (everything freed after a command)
 *   mlo_cli_store.c   the local store replayed into runs (the run model below)
 *   mlo_cli_remote.c  the same run model read from a tracking server through
 *                     the library's REST layer (src/mlo_api_read.h)
 *   mlo_cli_table.c   text tables, sparklines, number and time formatting
 *   mlo_cli_json.c    a JSON writer and the little JSON reading the tool does
 *   mlo_cli_html.c    escaping for the HTML page
 *   mlo_cli_chart.c   the page's SVG charts
 *   mlo_cli_ls.c, mlo_cli_show.c, mlo_cli_gate.c, mlo_cli_sync.c,
 *   mlo_cli_report.c  one command each
 *   mlo_cli_gc.c      gc and rm: the store's cleanup (src/store/mlo_retention.c)
 *
 * Cross-file names carry the prefix cli_ (the x* allocation family excepted,
 * the usual idiom for "allocate or exit").
 *
 * Threads: one.  Memory: every allocation goes through xmalloc & co. and is
 * freed by main after the command (xfree_all), so commands may return from
 * anywhere without leaking.
 */
#ifndef MLO_CLI_H
#define MLO_CLI_H

#include "mlo.h"
#include "mlo_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { EXIT_PASS = 0, EXIT_GATE_FAIL = 1, EXIT_ERROR = 2 };

#define CLI_DEFAULT_STORE "./mlo-store"
#define CLI_MAX_METRIC_COLUMNS 8

/* ---- memory (mlo_cli_mem.c): exit(EXIT_ERROR) when out of memory ---- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Says "out of memory" and exits (EXIT_ERROR). */
void cli_oom(void) __attribute__((noreturn));
void xfree(void *p);
/* xrealloc(p, n) for an array of which the first used bytes matter: large
 * ones are copied into pages populated beforehand (mlo_cli_mem.c). */
void *xgrow(void *p, size_t used, size_t n);
void xfree_all(void);
char *xstrdup(const char *s);
/* *dst := a copy of s (the old value freed). */
void cli_set_str(char **dst, const char *s);

/* ---- the run model: a run as the store or a server knows it ---- */
typedef struct point {
    int64_t step, ts;
    double v;
} point;

typedef struct metric {
    char *key;
    point last; /* MLflow's latest: greatest (step, timestamp, value) */
    size_t count;
    point *hist; /* only for runs loaded with their history */
    size_t nh, caph;
    /* points no longer in the store's segments (removed by retention; the
     * run's summary keeps their count, finite min and max and the latest) */
    size_t removed;
    double rmin, rmax; /* rmin > rmax: none finite */
} metric;

typedef struct kv {
    char *k, *v;
} kv;

typedef struct kvs {
    kv *a;
    size_t n, cap;
} kvs;

/* A dataset input of a run (mlo_log_dataset), as the server keeps it: one
 * per (name, digest), the first one logged. */
typedef struct dataset {
    char *name, *digest, *source_type, *source, *context;
} dataset;

/* An artifact of a run: from the store, one not uploaded yet (pending, or
 * refused for good with a reason); from a server, one listed there. */
enum { ART_PENDING, ART_FAILED, ART_UPLOADED };
typedef struct artifact {
    char *path;
    long long size; /* -1 unknown */
    int state;      /* ART_* */
    char *detail;   /* FAILED: the reason; PENDING: the upload URI or "" */
} artifact;

/* A registered model version made from a run (from a server only: the
 * store keeps no registrations, mlo_register_model needs a server). */
typedef struct modelver {
    char *name, *version, *status, *aliases; /* aliases: ", "-joined, "" for none */
} modelver;

typedef struct run {
    char *id, *exp_name, *exp_id, *name, *parent, *server_id;
    int status;
    bool started, ended, keep_hist;
    int64_t start, end;
    kvs params, tags;
    metric *m;
    size_t nm, capm, last_m;
    dataset *ds;
    size_t nds, capds;
    artifact *art;
    size_t nart;
    bool art_known; /* the artifacts were looked up */
    modelver *mv;
    size_t nmv;
    bool mv_known; /* the registry was asked */
} run;

/* A set of runs: a local store, or runs read from a server. */
typedef struct store {
    const char *dir; /* the store directory, or NULL */
    const char *uri; /* the server, or NULL */
    run **runs;
    size_t n, cap;
    run **tab; /* open addressing on id */
    run *last; /* the run of the last event folded in */
    size_t tabcap;
    const char *hist_prefix; /* keep metric histories of runs whose id starts so */
    size_t segments, summaries, events, damaged;
    bool quiet; /* no warnings (a second pass over the same files) */
} store;

/* ---- the local store (mlo_cli_store.c) ---- */
/* The store directory: arg, else $MLO_STORE_DIR, else ./mlo-store. */
const char *cli_store_dir(const char *arg);
/* Loads every segment of the store at dir; keeps the histories of runs whose
 * id starts with hist_prefix ("" = all, NULL = none).  0, or -1 with a
 * message on stderr when the store is not there. */
int cli_store_load(store *s, const char *dir, const char *hist_prefix, bool quiet);
/* Empties s (for runs read from elsewhere). */
void cli_store_init(store *s);
run *cli_store_find(const store *s, const char *id);
/* The run of that id, created when missing. */
run *cli_store_run(store *s, const char *id);
/* Finds RUN: an exact id, a unique id prefix, a server id (or prefix), a
 * unique name.  NULL with a message on stderr. */
run *cli_resolve(const store *s, const char *arg);
/* Fills r->art from <dir>/artifacts manifests (pending and failed uploads). */
void cli_store_artifacts(const char *dir, run *r);
metric *cli_run_metric(run *r, const char *key, bool create);
/* Adds a point (history kept when r->keep_hist). */
void cli_run_point(run *r, const char *key, point p);
void cli_kvs_set(kvs *s, const char *k, const char *v);
const char *cli_kvs_get(const kvs *s, const char *k);
const char *cli_run_name(const run *r);
/* The experiment's name, "id N", "Default" or "-"; buf holds the "id N" form. */
const char *cli_run_experiment(const run *r, char *buf, size_t n);
bool cli_latest(const run *r, const char *key, double *v);
/* Sorts a history by (step, timestamp, value) and drops exact duplicates (a
 * replayed event is stored once, as MLflow does); returns the new count. */
size_t cli_history_normalize(point *p, size_t n);
int cli_by_strcmp(const void *a, const void *b);

/* ---- a tracking server (mlo_cli_remote.c) ---- */
typedef struct cli_remote cli_remote;
/* Connects the library's REST layer to uri (the MLFLOW_TRACKING_* variables
 * apply).  NULL with a message in err. */
cli_remote *cli_remote_open(const char *uri, char *err, size_t errlen);
void cli_remote_close(cli_remote *rm);
/* runs/get of run_id into s (and, with history, metrics/get-history of each
 * of its metrics).  0 (*out set), -1 with a message in err, -2 when the
 * server has no such run. */
int cli_remote_get_run(cli_remote *rm, store *s, const char *run_id, bool history, run **out,
                       char *err, size_t errlen);
/* runs/search of the experiment named exp (NULL: $MLFLOW_EXPERIMENT_ID, else
 * $MLFLOW_EXPERIMENT_NAME, else MLflow's Default experiment, id "0") into s,
 * at most max_runs, newest first.  0, or -1 with a message in err. */
int cli_remote_search(cli_remote *rm, store *s, const char *exp, size_t max_runs, bool history,
                      char *err, size_t errlen);
/* The run's artifacts as the server lists them (artifacts/list, depth-first,
 * at most max entries).  0, or -1 with a message in err. */
int cli_remote_artifacts(cli_remote *rm, run *r, size_t max, char *err, size_t errlen);
/* The model versions registered from the run (model-versions/search with
 * run_id='<its id>').  0, or -1 with a message in err. */
int cli_remote_model_versions(cli_remote *rm, run *r, char *err, size_t errlen);

/* ---- output helpers (mlo_cli_table.c) ---- */
typedef struct table {
    size_t ncol, nrow; /* rows incl. the header */
    char **cell;       /* nrow * ncol */
    bool *right;       /* per column */
} table;
void cli_table_init(table *t, size_t ncol, size_t nrow);
void cli_table_set(table *t, size_t row, size_t col, const char *s);
void cli_table_print(const table *t, FILE *f);
/* A one-line chart of p[0..n): at most width cells. */
void cli_sparkline(const point *p, size_t n, size_t width, bool ascii, mlo_buf *out);
size_t cli_utf8_width(const char *s);
bool cli_utf8_locale(void);
/* Local time "YYYY-MM-DD HH:MM:SS", or "-" for ms <= 0. */
void cli_fmt_time(int64_t ms, char *out, size_t n);
/* A metric value for people: 6 significant digits, NaN, Infinity. */
void cli_fmt_num(double v, char *out, size_t n);
/* The shortest decimal that reads back as exactly v (1 to 17 significant
 * digits, C locale), or NaN, Infinity, -Infinity.  n >= 32. */
void cli_fmt_shortest(double v, char *out, size_t n);
const char *cli_status_name(int st, bool ended);

/* ---- HTML (mlo_cli_html.c) ---- */
/* Appends s as HTML text or a double-quoted attribute value: & < > " ' as
 * character references, control characters as their Unicode control
 * pictures (U+2400...; tab and newline kept when keep_ws), invalid UTF-8 as
 * U+FFFD.  Nothing from a run reaches the page any other way. */
void cli_html_esc(mlo_buf *out, const char *s, bool keep_ws);
/* Appends at most max code points of s, escaped, with "..." when cut. */
void cli_html_esc_cut(mlo_buf *out, const char *s, size_t max);

/* ---- charts (mlo_cli_chart.c) ---- */
typedef struct cli_series {
    const char *run_id; /* data-run of the path */
    const char *label;  /* legend and tooltip */
    int color;          /* colour class c<color> */
    const point *p;     /* sorted by (step, timestamp) */
    size_t n;
} cli_series;
/* Appends a <figure> with one <svg class="chart"> holding every series as a
 * <path> (steps on x; log y when the values span two decades or more;
 * non-finite values break the line; more points than pixel columns are
 * reduced to each column's minimum and maximum) and an HTML legend. */
void cli_chart_metric(mlo_buf *out, const char *key, const cli_series *s, size_t ns);
/* Appends an <svg class="parcoords">: one axis per param (numeric or
 * categorical) and the metric's latest value last, one line per run. */
void cli_chart_parcoords(mlo_buf *out, run *const *runs, const int *colors, size_t nruns,
                         char *const *params, size_t nparams, const char *metric);

/* ---- the little JSON the tool reads (mlo_cli_json.c) ---- */
/* The string member `key` of the top-level JSON object in json, unescaped
 * (malloc'd with xmalloc), or NULL when absent or not a string. */
char *cli_json_get_string(const char *json, const char *key);
/* Appends s as a JSON string (NULL: null). */
void cli_json_str(mlo_buf *b, const char *s);
/* Appends v: the shortest round-trip decimal, or "NaN", "Infinity",
 * "-Infinity" as strings. */
void cli_json_num(mlo_buf *b, double v);
/* Appends "<name>_ms":ms,"<name>":"YYYY-MM-DDTHH:MM:SS.mmmZ" (both null
 * when ms <= 0). */
void cli_json_time(mlo_buf *b, const char *name, int64_t ms);
/* Appends the fields every run object has ("id" ... "parent_id", no braces). */
void cli_json_run_fields(mlo_buf *b, const run *r);
/* Appends {"step":..,"timestamp_ms":..,"timestamp":..,"value":..}. */
void cli_json_point(mlo_buf *b, const point *p);
/* Writes b and a newline to stdout, and frees b. */
void cli_json_write(mlo_buf *b);

/* ---- option parsing (mlo_cli_main.c): long options with a value as
 * "--opt VALUE" or "--opt=VALUE"; the rest are positionals ---- */
typedef struct args {
    int argc;
    char **argv;
    int i;
} args;
/* True and *val set when argv[i] is --name[=value] (exits 2 when the value
 * is missing). */
bool cli_opt_val(args *a, const char *name, const char **val);
bool cli_is_help(const char *s);
/* Prints "mlo: <fmt with what>", the usage, and returns EXIT_ERROR. */
int cli_bad_usage(void (*usage)(FILE *), const char *fmt, const char *what);

/* ---- gate conditions (mlo_cli_gate.c) ---- */
typedef enum { OP_GE, OP_LE, OP_GT, OP_LT, OP_EQ, OP_NE } cli_gate_op;
typedef struct cli_cond {
    char *text; /* as written, trimmed */
    char *metric;
    cli_gate_op op;
    double threshold;
    char *baseline; /* run id, or NULL */
} cli_cond;
/* Parses "METRIC OP THRESHOLD" (THRESHOLD a number or baseline:RUN).  0, or
 * -1 with a message on stderr. */
int cli_cond_parse(const char *in, cli_cond *c);
/* Whether c holds for r's latest value (base: the baseline run, for a
 * baseline condition).  *value and *threshold get what was compared (NaN
 * when missing), *why the reason of a failure ("FAIL (no such metric)"...). */
bool cli_cond_check(const cli_cond *c, const run *r, const run *base, double *value,
                    double *threshold, const char **why);

/* ---- the commands, each with its usage text ---- */
void cli_usage_ls(FILE *f);
void cli_usage_show(FILE *f);
void cli_usage_sync(FILE *f);
void cli_usage_gate(FILE *f);
void cli_usage_report(FILE *f);
void cli_usage_gc(FILE *f);
void cli_usage_rm(FILE *f);
int cli_cmd_ls(int argc, char **argv);
int cli_cmd_show(int argc, char **argv);
int cli_cmd_sync(int argc, char **argv);
int cli_cmd_gate(int argc, char **argv);
int cli_cmd_report(int argc, char **argv);
int cli_cmd_gc(int argc, char **argv);
int cli_cmd_rm(int argc, char **argv);
extern const char *const cli_exit_text;
extern const char *const cli_store_text;

#endif /* MLO_CLI_H */
