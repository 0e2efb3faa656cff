/*
 * mlo_cli_report.c - `mlo report`: one self-contained HTML page comparing
 * runs, from the local store or a tracking server.
 *
 * The page: a runs table (best first by the sort metric, sortable by any
 * column, the gate's verdict per run), one chart per metric with every
 * run's history (mlo_cli_chart.c) grouped as metrics, system metrics
 * (system/...) and histogram quantiles (....p50/.p95/.p99), parallel
 * coordinates of params against the sort metric, and per run its params,
 * tags, datasets and artifacts, and (from a server) the registered model
 * versions made from it.
 *
 * Self-contained and safe: no network (a Content-Security-Policy of
 * default-src 'none'), no external script, style or font; one inline
 * <script> and one <style>, both carrying a random nonce the policy names,
 * so no other script can run even if some markup slipped through.  Every
 * string from a run is escaped (cli_html_esc) and none is put inside the
 * script or the style: the script reads the DOM.  Without JavaScript the
 * page is complete (already sorted); the script adds sorting by a click on
 * a column head and highlighting a run's lines on hover, then marks
 * <html data-ready="1">.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARAM_AXES 12
#define MAX_TABLE_PARAMS 16
#define MAX_TABLE_METRICS 12
#define MAX_ARTIFACTS 200
#define MAX_SERVER_RUNS 1000

void cli_usage_report(FILE *f) {
    fprintf(f,
            "usage: mlo report [STORE | --uri URI] [--experiment NAME] [--runs ID...]\n"
            "                  [--metric KEY...] [--sort METRIC [--asc]] [--gate COND...]\n"
            "                  -o FILE.html\n"
            "\n"
            "Writes one self-contained HTML page comparing runs: a table of the runs\n"
            "(best first by --sort, sortable), one chart per metric with every run's\n"
            "history, parallel coordinates of the params against the sort metric,\n"
            "system metrics and histogram quantiles under their own headings, and each\n"
            "run's params, tags, datasets and artifacts (and, from a server, the model\n"
            "versions registered from it).  No network is needed to view it: attach it\n"
            "to a CI job or mail it.\n"
            "\n"
            "  -o FILE            where to write the page ('-': standard output)\n"
            "  --uri URI          read the runs from this MLflow tracking server (the\n"
            "                     MLFLOW_TRACKING_* variables apply) instead of a store\n"
            "  --experiment NAME  only this experiment's runs (name or id; with --uri:\n"
            "                     default $MLFLOW_EXPERIMENT_NAME, else Default)\n"
            "  --runs ID...       only these runs (ids, prefixes or names)\n"
            "  --metric KEY...    only these metrics (default: all)\n"
            "  --sort METRIC      best first by METRIC's latest value: highest first,\n"
            "                     lowest first with --asc (default: newest first)\n"
            "  --gate COND...     conditions as in mlo gate: pass/fail per run\n"
            "  -v, --verbose      what was read and the time it took, on stderr\n"
            "Options taking several values take the arguments up to the next option.\n"
            "%s%s",
            cli_store_text, cli_exit_text);
}

typedef struct ropts {
    const char *store_arg, *uri, *exp, *sort, *out;
    bool asc, verbose;
    const char **runs, **metrics;
    size_t nruns, nmetrics;
    cli_cond *conds;
    size_t nconds;
} ropts;

static ropts g_ro; /* for qsort */

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int best_first(const void *pa, const void *pb) {
    const run *a = *(run *const *)pa, *b = *(run *const *)pb;
    if (g_ro.sort) {
        double va, vb;
        bool ha = cli_latest(a, g_ro.sort, &va) && !isnan(va);
        bool hb = cli_latest(b, g_ro.sort, &vb) && !isnan(vb);
        if (ha != hb)
            return ha ? -1 : 1;
        if (ha && va != vb)
            return (g_ro.asc ? va < vb : va > vb) ? -1 : 1;
    }
    if (a->start != b->start)
        return a->start > b->start ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* The metric groups, in page order. */
enum { G_MAIN, G_SYSTEM, G_QUANTILE, G_N };
static const char *const GROUP_TITLE[G_N] = {"Metrics", "System metrics", "Histogram quantiles"};

static int group_of(const char *key) {
    if (strncmp(key, "system/", 7) == 0)
        return G_SYSTEM;
    size_t n = strlen(key);
    if (n > 4 && (!strcmp(key + n - 4, ".p50") || !strcmp(key + n - 4, ".p95") ||
                  !strcmp(key + n - 4, ".p99")))
        return G_QUANTILE;
    return G_MAIN;
}

static bool has_str(char *const *a, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], s) == 0)
            return true;
    return false;
}

static void push_str(char ***a, size_t *n, const char *s) {
    *a = xrealloc(*a, (*n + 1) * sizeof **a);
    (*a)[(*n)++] = (char *)s;
}

/* Takes the values after option argv[*i] up to the next option. */
static void take_list(int argc, char **argv, int *i, const char *inline_val, const char ***out,
                      size_t *n) {
    if (inline_val) { /* --opt=a,b */
        char *list = xstrdup(inline_val), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
            push_str((char ***)out, n, t);
        return;
    }
    while (*i + 1 < argc && !(argv[*i + 1][0] == '-' && argv[*i + 1][1]))
        push_str((char ***)out, n, argv[++*i]);
}

/* "--name" or "--name=..." at argv[i]: true, *inline_val the part after '='. */
static bool opt_list(const char *s, const char *name, const char **inline_val) {
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0 || (s[n] && s[n] != '='))
        return false;
    *inline_val = s[n] == '=' ? s + n + 1 : NULL;
    return true;
}

static const char *PALETTE[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void color_css(mlo_buf *b, size_t i) {
    if (i < 10)
        mlo__buf_printf(b, ".c%zu{stroke:%s;fill:%s}", i, PALETTE[i], PALETTE[i]);
    else /* golden-angle hues: neighbours stay apart */
        mlo__buf_printf(b, ".c%zu{stroke:hsl(%d,65%%,42%%);fill:hsl(%d,65%%,42%%)}", i,
                        (int)((double)i * 137.508) % 360, (int)((double)i * 137.508) % 360);
}

static const char *CSS =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "margin:24px;color:#1f2328;background:#fff}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px "
    "solid #d0d7de;padding-bottom:4px}"
    ".meta{color:#59636e;margin:0 0 12px}.meta code{color:#1f2328}"
    "table{border-collapse:collapse;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid "
    "#d8dee4;text-align:left;white-space:nowrap}"
    "#runs th{cursor:pointer;background:#f6f8fa;position:sticky;top:0}"
    "#runs th.sorted-asc::after{content:' \\25B2'}#runs th.sorted-desc::after{content:' \\25BC'}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.gate{font-weight:600}td.gate.pass{background:#dafbe1;color:#1a7f37}"
    "td.gate.fail{background:#ffebe9;color:#cf222e}"
    ".conds li.pass{color:#1a7f37}.conds li.fail{color:#cf222e}"
    ".tablewrap{overflow-x:auto;max-height:70vh}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}"
    "figure{margin:0;border:1px solid #d8dee4;border-radius:6px;padding:8px}"
    "figcaption{font-weight:600;margin-bottom:4px;overflow-wrap:anywhere}"
    "svg.chart{width:100%;height:auto;display:block}"
    "svg.parcoords{max-width:100%;height:auto;display:block}"
    ".grid line{stroke:#eaeef2}.grid .frame{fill:none;stroke:#d0d7de}"
    ".grid text,.axis text{fill:#59636e;stroke:none;font-size:10px}"
    ".yl{text-anchor:end}.xl{text-anchor:middle}.xt{text-anchor:end}.al{text-anchor:middle;"
    "font-weight:600}.axis line{stroke:#8c959f}.axis.metric line{stroke:#1f2328;stroke-width:2}"
    "path.s{fill:none;stroke-width:1.5;stroke-linejoin:round;stroke-linecap:round}"
    "g.d circle{stroke:none}.none{fill:#59636e;text-anchor:middle}"
    ".dim{opacity:.12}"
    "ul.legend{list-style:none;padding:0;margin:6px 0 0;font-size:12px;display:flex;"
    "flex-wrap:wrap;gap:2px 12px;max-height:6.5em;overflow:auto}"
    "ul.legend li{display:flex;align-items:center;gap:4px}"
    "svg.sw{width:10px;height:10px;flex:none}svg.sw rect{stroke:none}"
    "details{margin:4px 0}summary{cursor:pointer}details table{margin:6px 0 10px 16px}"
    "details td{white-space:normal;overflow-wrap:anywhere;max-width:60em}"
    ".muted{color:#59636e}";

/* Sorting by a click on a column head (numbers by data-v, missing last),
 * highlighting a run's lines while the pointer is on its row or legend
 * entry.  No run data in here: it reads the DOM. */
static const char *JS =
    "(function(){'use strict';"
    "var t=document.getElementById('runs');"
    "if(t&&t.tHead){var hs=t.tHead.rows[0].cells;"
    "Array.prototype.forEach.call(hs,function(h,i){h.addEventListener('click',function(){"
    "var asc=!(h.classList.contains('sorted-asc'));"
    "Array.prototype.forEach.call(hs,function(x){x.classList.remove('sorted-asc','sorted-desc')});"
    "h.classList.add(asc?'sorted-asc':'sorted-desc');"
    "var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);"
    "function k(r){var c=r.cells[i];if(!c)return null;var v=c.getAttribute('data-v');"
    "if(v===null)return c.textContent;var n=parseFloat(v);return isNaN(n)?null:n}"
    "rows.sort(function(a,c){var x=k(a),y=k(c);if(x===null&&y===null)return 0;"
    "if(x===null)return 1;if(y===null)return -1;"
    "var r=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));"
    "return asc?r:-r});"
    "rows.forEach(function(r){b.appendChild(r)})})})}"
    "var marks=document.querySelectorAll('svg [data-run]');"
    "function hl(id){Array.prototype.forEach.call(marks,function(e){"
    "e.classList.toggle('dim',id!==null&&e.getAttribute('data-run')!==id)})}"
    "Array.prototype.forEach.call(document.querySelectorAll('tr[data-run],li[data-run]'),"
    "function(e){e.addEventListener('mouseenter',function(){hl(e.getAttribute('data-run'))});"
    "e.addEventListener('mouseleave',function(){hl(null)})});"
    "document.documentElement.setAttribute('data-ready','1')})();";

static void nonce(char out[33]) {
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* no entropy source: still unguessable enough for a static file */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        for (size_t i = 0; i < sizeof raw; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void td_num(mlo_buf *b, bool have, double v) {
    if (!have) {
        mlo__buf_appends(b, "<td class=\"num\" data-v=\"\">-</td>");
        return;
    }
    char full[40], shown[40];
    cli_fmt_shortest(v, full, sizeof full);
    cli_fmt_num(v, shown, sizeof shown);
    mlo__buf_printf(b, "<td class=\"num\" data-v=\"%s\" title=\"%s\">%s</td>", isnan(v) ? "" : full,
                    full, shown);
}

static void fmt_duration(const run *r, char *out, size_t n, double *secs) {
    *secs = NAN;
    if (!r->ended || r->start <= 0 || r->end < r->start) {
        snprintf(out, n, "-");
        return;
    }
    double s = (double)(r->end - r->start) / 1000.0;
    *secs = s;
    if (s < 60)
        snprintf(out, n, "%.1f s", s);
    else if (s < 3600)
        snprintf(out, n, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(out, n, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void kv_table(mlo_buf *b, const char *title, const kvs *s) {
    if (!s->n)
        return;
    mlo__buf_printf(b, "<table><thead><tr><th>%s</th><th></th></tr></thead><tbody>", title);
    for (size_t i = 0; i < s->n; i++) {
        mlo__buf_appends(b, "<tr><td>");
        cli_html_esc(b, s->a[i].k, false);
        mlo__buf_appends(b, "</td><td>");
        cli_html_esc(b, s->a[i].v, true);
        mlo__buf_appends(b, "</td></tr>");
    }
    mlo__buf_appends(b, "</tbody></table>");
}

static void run_details(mlo_buf *b, const run *r, int color) {
    mlo__buf_appends(b, "<details data-run=\"");
    cli_html_esc(b, r->id, false);
    mlo__buf_printf(b,
                    "\"><summary><svg class=\"sw\" viewBox=\"0 0 10 10\"><rect class=\"c%d\" "
                    "width=\"10\" height=\"10\"/></svg> ",
                    color);
    cli_html_esc(b, cli_run_name(r), false);
    mlo__buf_appends(b, " <span class=\"muted\">");
    cli_html_esc(b, r->id, false);
    if (r->server_id) {
        mlo__buf_appends(b, " (server run ");
        cli_html_esc(b, r->server_id, false);
        mlo__buf_appends(b, ")");
    }
    mlo__buf_printf(b, " &middot; %zu params, %zu tags, %zu datasets, %zu artifacts", r->params.n,
                    r->tags.n, r->nds, r->nart);
    if (r->mv_known)
        mlo__buf_printf(b, ", %zu model versions", r->nmv);
    mlo__buf_appends(b, "</span></summary>");
    kv_table(b, "Param", &r->params);
    kv_table(b, "Tag", &r->tags);
    if (r->nds) {
        mlo__buf_appends(b, "<table><thead><tr><th>Dataset</th><th>digest</th><th>source</th>"
                            "<th>context</th></tr></thead><tbody>");
        for (size_t i = 0; i < r->nds; i++) {
            const dataset *d = &r->ds[i];
            char *loc = cli_json_get_string(d->source, "uri");
            if (!loc)
                loc = cli_json_get_string(d->source, "url");
            mlo__buf_appends(b, "<tr><td>");
            cli_html_esc(b, d->name, false);
            mlo__buf_appends(b, "</td><td>");
            cli_html_esc(b, d->digest, false);
            mlo__buf_appends(b, "</td><td>");
            cli_html_esc(b, d->source_type, false);
            mlo__buf_appends(b, " ");
            cli_html_esc(b, loc ? loc : d->source, false);
            mlo__buf_appends(b, "</td><td>");
            cli_html_esc(b, d->context, false);
            mlo__buf_appends(b, "</td></tr>");
            xfree(loc);
        }
        mlo__buf_appends(b, "</tbody></table>");
    }
    if (r->nmv) {
        mlo__buf_appends(b, "<table class=\"models\"><thead><tr><th>Registered model</th>"
                            "<th>version</th><th>status</th><th>aliases</th></tr></thead><tbody>");
        for (size_t i = 0; i < r->nmv; i++) {
            const modelver *m = &r->mv[i];
            mlo__buf_appends(b, "<tr><td>");
            cli_html_esc(b, m->name, false);
            mlo__buf_appends(b, "</td><td class=\"num\">");
            cli_html_esc(b, m->version, false);
            mlo__buf_appends(b, "</td><td>");
            cli_html_esc(b, m->status, false);
            mlo__buf_appends(b, "</td><td>");
            cli_html_esc(b, m->aliases, false);
            mlo__buf_appends(b, "</td></tr>");
        }
        mlo__buf_appends(b, "</tbody></table>");
    }
    if (r->nart) {
        mlo__buf_appends(b, "<table><thead><tr><th>Artifact</th><th>bytes</th><th>state</th>"
                            "</tr></thead><tbody>");
        for (size_t i = 0; i < r->nart; i++) {
            const artifact *a = &r->art[i];
            mlo__buf_appends(b, "<tr><td>");
            cli_html_esc(b, a->path, false);
            mlo__buf_printf(b, "</td><td class=\"num\">%lld</td><td>", a->size);
            if (a->state == ART_UPLOADED)
                mlo__buf_appends(b, "on the server");
            else if (a->state == ART_FAILED) {
                mlo__buf_appends(b, "refused: ");
                cli_html_esc_cut(b, a->detail, 300);
            } else
                mlo__buf_appends(b, "not uploaded yet (mlo sync uploads it)");
            mlo__buf_appends(b, "</td></tr>");
        }
        mlo__buf_appends(b, "</tbody></table>");
    }
    mlo__buf_appends(b, "</details>\n");
}

/* Loads the runs: the store (every history) or the server. */
static int load(const ropts *o, store *st) {
    if (!o->uri) {
        const char *dir = cli_store_dir(o->store_arg);
        if (cli_store_load(st, dir, "", false) != 0)
            return -1;
        return 0;
    }
    char err[1024];
    cli_remote *rm = cli_remote_open(o->uri, err, sizeof err);
    if (!rm) {
        fprintf(stderr, "mlo: %s\n", err);
        return -1;
    }
    cli_store_init(st);
    st->uri = o->uri;
    int rc = 0;
    if (o->nruns) {
        for (size_t i = 0; i < o->nruns && rc == 0; i++) {
            int r = cli_remote_get_run(rm, st, o->runs[i], true, NULL, err, sizeof err);
            if (r != 0) {
                fprintf(stderr, "mlo: %s\n", err);
                rc = -1;
            }
        }
    } else if (cli_remote_search(rm, st, o->exp, MAX_SERVER_RUNS, true, err, sizeof err) != 0) {
        fprintf(stderr, "mlo: %s\n", err);
        rc = -1;
    }
    /* baselines of the gate: their latest values only */
    for (size_t i = 0; i < o->nconds && rc == 0; i++)
        if (o->conds[i].baseline && !cli_store_find(st, o->conds[i].baseline) &&
            cli_remote_get_run(rm, st, o->conds[i].baseline, false, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "mlo: baseline: %s\n", err);
            rc = -1;
        }
    for (size_t i = 0; i < st->n && rc == 0; i++)
        if (cli_remote_artifacts(rm, st->runs[i], MAX_ARTIFACTS, err, sizeof err) != 0) {
            /* a server that does not serve artifacts: the page says "unknown" */
            if (o->verbose)
                fprintf(stderr, "mlo: artifacts of %s: %s\n", st->runs[i]->id, err);
            st->runs[i]->art_known = false;
        }
    for (size_t i = 0; i < st->n && rc == 0; i++)
        if (cli_remote_model_versions(rm, st->runs[i], err, sizeof err) != 0 && o->verbose)
            /* a server without the registry: the page shows none */
            fprintf(stderr, "mlo: model versions of %s: %s\n", st->runs[i]->id, err);
    cli_remote_close(rm);
    return rc;
}

int cli_cmd_report(int argc, char **argv) {
    memset(&g_ro, 0, sizeof g_ro);
    ropts *o = &g_ro;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_report(stdout);
            return EXIT_PASS;
        } else if (cli_opt_val(&a, "--uri", &v))
            o->uri = v;
        else if (cli_opt_val(&a, "--experiment", &v))
            o->exp = v;
        else if (cli_opt_val(&a, "--sort", &v))
            o->sort = v;
        else if (strcmp(s, "--asc") == 0)
            o->asc = true;
        else if (strcmp(s, "-v") == 0 || strcmp(s, "--verbose") == 0)
            o->verbose = true;
        else if (cli_opt_val(&a, "-o", &v) || cli_opt_val(&a, "--output", &v))
            o->out = v;
        else if (opt_list(s, "--runs", &v))
            take_list(argc, argv, &a.i, v, &o->runs, &o->nruns);
        else if (opt_list(s, "--metric", &v) || opt_list(s, "--metrics", &v))
            take_list(argc, argv, &a.i, v, &o->metrics, &o->nmetrics);
        else if (opt_list(s, "--gate", &v)) {
            const char **cs = NULL;
            size_t n = 0;
            take_list(argc, argv, &a.i, v, &cs, &n);
            if (n == 0)
                return cli_bad_usage(cli_usage_report, "%s needs conditions", "--gate");
            o->conds = xrealloc(o->conds, (o->nconds + n) * sizeof *o->conds);
            for (size_t k = 0; k < n; k++)
                if (cli_cond_parse(cs[k], &o->conds[o->nconds++]) != 0)
                    return EXIT_ERROR;
        } else if (s[0] == '-' && s[1])
            return cli_bad_usage(cli_usage_report, "unknown option %s", s);
        else if (!o->store_arg)
            o->store_arg = s;
        else
            return cli_bad_usage(cli_usage_report, "unexpected argument %s", s);
    }
    if (!o->out)
        return cli_bad_usage(cli_usage_report, "%s", "where to? give -o FILE.html");
    if (o->asc && !o->sort)
        return cli_bad_usage(cli_usage_report, "%s needs --sort METRIC", "--asc");
    if (o->uri && o->store_arg)
        return cli_bad_usage(cli_usage_report, "%s", "give a store or --uri, not both");

    double c0 = cpu_s();
    store st;
    if (load(o, &st) != 0)
        return EXIT_ERROR;
    double c1 = cpu_s();

    /* the runs on the page */
    run **rows = xmalloc((st.n + 1) * sizeof *rows);
    size_t nr = 0;
    if (o->nruns && !o->uri) {
        for (size_t i = 0; i < o->nruns; i++) {
            run *r = cli_resolve(&st, o->runs[i]);
            if (!r)
                return EXIT_ERROR;
            bool dup = false;
            for (size_t k = 0; k < nr && !dup; k++)
                dup = rows[k] == r;
            if (!dup)
                rows[nr++] = r;
        }
    } else {
        for (size_t i = 0; i < st.n; i++) {
            run *r = st.runs[i];
            if (o->uri) {
                bool want = !o->nruns; /* baselines were added too */
                for (size_t k = 0; k < o->nruns && !want; k++)
                    want = strcmp(r->id, o->runs[k]) == 0;
                if (!want)
                    continue;
            } else if (o->exp) {
                char eb[300];
                if (strcmp(cli_run_experiment(r, eb, sizeof eb), o->exp) != 0 &&
                    !(r->exp_id && strcmp(r->exp_id, o->exp) == 0))
                    continue;
            }
            if (!r->started && !r->nm && !r->params.n)
                continue; /* nothing but an artifact manifest or a stray event */
            rows[nr++] = r;
        }
    }
    if (nr == 0) {
        fprintf(stderr, "mlo: no runs to report%s\n", o->exp ? " for that experiment" : "");
        return EXIT_ERROR;
    }
    qsort(rows, nr, sizeof *rows, best_first);
    int *colors = xmalloc(nr * sizeof *colors);
    for (size_t i = 0; i < nr; i++) {
        colors[i] = (int)i;
        for (size_t k = 0; k < rows[i]->nm; k++)
            rows[i]->m[k].nh = cli_history_normalize(rows[i]->m[k].hist, rows[i]->m[k].nh);
        if (!o->uri && !rows[i]->art_known)
            cli_store_artifacts(st.dir, rows[i]);
    }

    /* metric keys by group */
    char **keys = NULL;
    size_t nkeys = 0;
    if (o->nmetrics) {
        for (size_t k = 0; k < o->nmetrics; k++) {
            bool any = false;
            for (size_t i = 0; i < nr && !any; i++)
                any = cli_run_metric(rows[i], o->metrics[k], false) != NULL;
            if (!any)
                fprintf(stderr, "mlo: warning: no run has a metric '%s'\n", o->metrics[k]);
            else if (!has_str(keys, nkeys, o->metrics[k]))
                push_str(&keys, &nkeys, o->metrics[k]);
        }
    } else {
        for (size_t i = 0; i < nr; i++)
            for (size_t k = 0; k < rows[i]->nm; k++)
                if (!has_str(keys, nkeys, rows[i]->m[k].key))
                    push_str(&keys, &nkeys, rows[i]->m[k].key);
        if (nkeys)
            qsort(keys, nkeys, sizeof *keys, cli_by_strcmp);
    }
    for (size_t c = 0; o->sort && c < nkeys; c++) /* the sort metric first */
        if (strcmp(keys[c], o->sort) == 0) {
            char *x = keys[c];
            memmove(keys + 1, keys, c * sizeof *keys);
            keys[0] = x;
            break;
        }
    if (o->sort) {
        bool any = false;
        for (size_t i = 0; i < nr && !any; i++)
            any = cli_run_metric(rows[i], o->sort, false) != NULL;
        if (!any)
            fprintf(stderr, "mlo: warning: no run has a metric '%s'; sorted by start time\n",
                    o->sort);
    }

    /* params: the ones that differ between runs first (all when none do) */
    char **params = NULL, **varying = NULL;
    size_t nparams = 0, nvarying = 0;
    for (size_t i = 0; i < nr; i++)
        for (size_t k = 0; k < rows[i]->params.n; k++)
            if (!has_str(params, nparams, rows[i]->params.a[k].k))
                push_str(&params, &nparams, rows[i]->params.a[k].k);
    if (nparams)
        qsort(params, nparams, sizeof *params, cli_by_strcmp);
    for (size_t p = 0; p < nparams; p++) {
        const char *first = NULL;
        bool differs = false;
        for (size_t i = 0; i < nr && !differs; i++) {
            const char *v = cli_kvs_get(&rows[i]->params, params[p]);
            if (i == 0)
                first = v;
            else
                differs = (v == NULL) != (first == NULL) || (v && strcmp(v, first) != 0);
        }
        if (differs)
            push_str(&varying, &nvarying, params[p]);
    }
    char **tparams = nvarying ? varying : params;
    size_t ntparams = nvarying ? nvarying : nparams;
    size_t hidden_params = ntparams > MAX_TABLE_PARAMS ? ntparams - MAX_TABLE_PARAMS : 0;
    if (hidden_params)
        ntparams = MAX_TABLE_PARAMS;

    /* the gate: per run, pass or the failed conditions */
    store *bst = &st;
    size_t npass = 0;
    bool *passed = xcalloc(nr, sizeof *passed);
    run **bases = xcalloc(o->nconds + 1, sizeof *bases);
    for (size_t c = 0; c < o->nconds; c++)
        if (o->conds[c].baseline && !(bases[c] = o->uri ? cli_store_find(bst, o->conds[c].baseline)
                                                        : cli_resolve(bst, o->conds[c].baseline)))
            return EXIT_ERROR;

    /* ---- the page ---- */
    char nc[33], when[64];
    nonce(nc);
    cli_fmt_time((int64_t)time(NULL) * 1000, when, sizeof when);
    mlo_buf b = {0};
    mlo__buf_printf(&b,
                    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "script-src 'nonce-%s'; style-src 'nonce-%s'; img-src data:\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta name=\"generator\" content=\"mlo %s\">\n<title>mlo report: ",
                    nc, nc, mlo_version());
    cli_html_esc(&b, o->exp ? o->exp : o->uri ? o->uri : cli_store_dir(o->store_arg), false);
    mlo__buf_printf(&b, "</title>\n<style nonce=\"%s\">%s", nc, CSS);
    for (size_t i = 0; i < nr; i++)
        color_css(&b, (size_t)colors[i]);
    mlo__buf_appends(&b, "</style>\n</head><body>\n<h1>mlo report</h1>\n<p class=\"meta\">");
    mlo__buf_printf(&b, "%zu run%s from <code>", nr, nr == 1 ? "" : "s");
    cli_html_esc(&b, o->uri ? o->uri : cli_store_dir(o->store_arg), false);
    mlo__buf_appends(&b, "</code>");
    if (o->exp) {
        mlo__buf_appends(&b, ", experiment <code>");
        cli_html_esc(&b, o->exp, false);
        mlo__buf_appends(&b, "</code>");
    }
    if (o->sort) {
        mlo__buf_appends(&b, ", best first by <code>");
        cli_html_esc(&b, o->sort, false);
        mlo__buf_printf(&b, "</code> (%s is better)", o->asc ? "lower" : "higher");
    } else
        mlo__buf_appends(&b, ", newest first");
    mlo__buf_printf(&b, "; made %s by mlo %s</p>\n", when, mlo_version());

    /* the runs table */
    mlo__buf_appends(&b, "<h2 id=\"runs-h\">Runs</h2>\n");
    if (o->nconds) {
        for (size_t i = 0; i < nr; i++) {
            passed[i] = true;
            for (size_t c = 0; c < o->nconds; c++) {
                double v, th;
                const char *why;
                passed[i] &= cli_cond_check(&o->conds[c], rows[i], bases[c], &v, &th, &why);
            }
            npass += passed[i];
        }
        mlo__buf_printf(&b,
                        "<p class=\"gate-summary\">Gate: %zu of %zu runs pass</p><ul "
                        "class=\"conds\">",
                        npass, nr);
        for (size_t c = 0; c < o->nconds; c++) {
            mlo__buf_appends(&b, "<li><code>");
            cli_html_esc(&b, o->conds[c].text, false);
            mlo__buf_appends(&b, "</code></li>");
        }
        mlo__buf_appends(&b, "</ul>\n");
    }
    mlo__buf_appends(&b, "<div class=\"tablewrap\"><table id=\"runs\"><thead><tr><th>#</th>"
                         "<th>Run</th><th>Status</th><th>Start</th><th>Duration</th>");
    if (o->nconds)
        mlo__buf_appends(&b, "<th>Gate</th>");
    for (size_t p = 0; p < ntparams; p++) {
        mlo__buf_appends(&b, "<th class=\"param\">");
        cli_html_esc(&b, tparams[p], false);
        mlo__buf_appends(&b, "</th>");
    }
    size_t ntm = 0;
    for (size_t k = 0; k < nkeys && ntm < MAX_TABLE_METRICS; k++)
        if (group_of(keys[k]) == G_MAIN) {
            mlo__buf_appends(&b, "<th class=\"metric\">");
            cli_html_esc(&b, keys[k], false);
            mlo__buf_appends(&b, "</th>");
            ntm++;
        }
    mlo__buf_appends(&b, "</tr></thead><tbody>\n");
    for (size_t i = 0; i < nr; i++) {
        const run *r = rows[i];
        char t[64], dur[64];
        double secs;
        mlo__buf_appends(&b, "<tr data-run=\"");
        cli_html_esc(&b, r->id, false);
        mlo__buf_printf(&b, "\"%s><td class=\"num\" data-v=\"%zu\">%zu</td><td data-v=\"",
                        o->nconds ? passed[i] ? " class=\"pass\"" : " class=\"fail\"" : "", i + 1,
                        i + 1);
        cli_html_esc(&b, cli_run_name(r), false);
        mlo__buf_printf(&b,
                        "\"><svg class=\"sw\" viewBox=\"0 0 10 10\"><rect class=\"c%d\" "
                        "width=\"10\" height=\"10\"/></svg> ",
                        colors[i]);
        cli_html_esc_cut(&b, cli_run_name(r), 60);
        mlo__buf_appends(&b, " <span class=\"muted\">");
        cli_html_esc_cut(&b, r->id, 12);
        mlo__buf_appends(&b, "</span></td><td>");
        mlo__buf_appends(&b, cli_status_name(r->status, r->ended));
        cli_fmt_time(r->start, t, sizeof t);
        mlo__buf_printf(&b, "</td><td data-v=\"%lld\">%s</td>", (long long)r->start, t);
        fmt_duration(r, dur, sizeof dur, &secs);
        if (isnan(secs))
            mlo__buf_printf(&b, "<td class=\"num\" data-v=\"\">%s</td>", dur);
        else
            mlo__buf_printf(&b, "<td class=\"num\" data-v=\"%.3f\">%s</td>", secs, dur);
        if (o->nconds) {
            mlo_buf why = {0};
            for (size_t c = 0; c < o->nconds; c++) {
                double v, th;
                const char *w;
                if (cli_cond_check(&o->conds[c], r, bases[c], &v, &th, &w))
                    continue;
                char vb[40];
                cli_fmt_shortest(v, vb, sizeof vb);
                if (why.len)
                    mlo__buf_appends(&why, "; ");
                mlo__buf_printf(&why, "%s: %s (%s)", o->conds[c].text, w,
                                isnan(v) ? "no value" : vb);
            }
            mlo__buf_printf(&b, "<td class=\"gate %s\"", passed[i] ? "pass" : "fail");
            if (why.len) {
                mlo__buf_appends(&b, " title=\"");
                cli_html_esc(&b, why.data, false);
                mlo__buf_appends(&b, "\"");
            }
            mlo__buf_printf(&b, ">%s</td>", passed[i] ? "pass" : "FAIL");
            mlo__buf_free(&why);
        }
        for (size_t p = 0; p < ntparams; p++) {
            const char *v = cli_kvs_get(&r->params, tparams[p]);
            double d;
            char *end = NULL;
            bool num = v && *v && (d = strtod(v, &end), end && !*end && isfinite(d));
            mlo__buf_appends(&b, num ? "<td class=\"num\" data-v=\"" : "<td data-v=\"");
            cli_html_esc(&b, v ? v : "", false);
            mlo__buf_appends(&b, "\">");
            cli_html_esc_cut(&b, v ? v : "-", 40);
            mlo__buf_appends(&b, "</td>");
        }
        size_t shown = 0;
        for (size_t k = 0; k < nkeys && shown < MAX_TABLE_METRICS; k++)
            if (group_of(keys[k]) == G_MAIN) {
                double v;
                bool have = cli_latest(r, keys[k], &v);
                td_num(&b, have, v);
                shown++;
            }
        mlo__buf_appends(&b, "</tr>\n");
    }
    mlo__buf_appends(&b, "</tbody></table></div>\n");
    if (hidden_params)
        mlo__buf_printf(&b, "<p class=\"muted\">%zu more params in the run details below.</p>\n",
                        hidden_params);

    /* the charts, by group */
    cli_series *ser = xmalloc(nr * sizeof *ser);
    for (int g = 0; g < G_N; g++) {
        size_t ing = 0;
        for (size_t k = 0; k < nkeys; k++)
            ing += group_of(keys[k]) == g;
        if (!ing)
            continue;
        mlo__buf_printf(&b, "<h2>%s</h2>\n<div class=\"charts\">\n", GROUP_TITLE[g]);
        for (size_t k = 0; k < nkeys; k++) {
            if (group_of(keys[k]) != g)
                continue;
            size_t ns = 0;
            for (size_t i = 0; i < nr; i++) {
                metric *m = cli_run_metric(rows[i], keys[k], false);
                if (!m)
                    continue;
                ser[ns].run_id = rows[i]->id;
                ser[ns].label = cli_run_name(rows[i]);
                ser[ns].color = colors[i];
                /* a run read without its history (a server baseline) has its
                 * latest point only */
                ser[ns].p = m->nh ? m->hist : &m->last;
                ser[ns].n = m->nh ? m->nh : 1;
                ns++;
            }
            cli_chart_metric(&b, keys[k], ser, ns);
        }
        mlo__buf_appends(&b, "</div>\n");
    }

    /* params against the sort metric */
    const char *pcm = o->sort;
    for (size_t k = 0; !pcm && k < nkeys; k++)
        if (group_of(keys[k]) == G_MAIN)
            pcm = keys[k];
    mlo__buf_appends(&b, "<h2>Params against ");
    if (pcm && nparams) {
        char **axes = nvarying ? varying : params;
        size_t naxes = nvarying ? nvarying : nparams;
        naxes = naxes > MAX_PARAM_AXES ? MAX_PARAM_AXES : naxes;
        cli_html_esc(&b, pcm, false);
        mlo__buf_appends(&b, "</h2>\n");
        cli_chart_parcoords(&b, rows, colors, nr, axes, naxes, pcm);
    } else {
        mlo__buf_appends(&b, "the score</h2>\n<p class=\"muted\">No params or no metric to "
                             "compare them with.</p>\n");
    }

    /* per run: params, tags, datasets, artifacts */
    mlo__buf_appends(&b, "<h2>Run details</h2>\n");
    for (size_t i = 0; i < nr; i++)
        run_details(&b, rows[i], colors[i]);
    if (o->uri)
        mlo__buf_appends(&b, "<p class=\"muted\">Artifacts as the server lists them (at most "
                             "200 per run).  Registered model versions are not shown.</p>\n");
    else
        mlo__buf_appends(&b, "<p class=\"muted\">Artifacts listed are those the store still "
                             "holds (not uploaded yet).  Registered model versions are not "
                             "shown.</p>\n");
    mlo__buf_printf(&b, "<script nonce=\"%s\">%s</script>\n</body></html>\n", nc, JS);

    double c2 = cpu_s();
    int rc = EXIT_PASS;
    FILE *f = strcmp(o->out, "-") == 0 ? stdout : fopen(o->out, "w");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || (f != stdout && fclose(f) != 0)) {
        fprintf(stderr, "mlo: %s: %s\n", o->out, strerror(errno));
        rc = EXIT_ERROR;
    }
    if (o->verbose) {
        size_t points = 0;
        for (size_t i = 0; i < nr; i++)
            for (size_t k = 0; k < rows[i]->nm; k++)
                points += rows[i]->m[k].nh;
        fprintf(stderr,
                "mlo: report: %zu runs, %zu metrics, %zu points; %zu bytes; CPU %.3f s "
                "reading, %.3f s rendering\n",
                nr, nkeys, points, b.len, c1 - c0, c2 - c1);
    }
    if (rc == EXIT_PASS && f != stdout)
        printf("wrote %s (%zu runs, %zu charts, %.1f kB)\n", o->out, nr, nkeys,
               (double)b.len / 1000.0);
    mlo__buf_free(&b);
    return rc;
}
