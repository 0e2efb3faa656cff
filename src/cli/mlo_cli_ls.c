/*
 * mlo_cli_ls.c - `mlo ls`: the runs of the local store with their latest
 * metrics, newest first or best first by a metric.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_usage_ls(FILE *f) {
    fprintf(f,
            "usage: mlo ls [STORE] [--sort METRIC [--asc]] [--metrics K1,K2,...]\n"
            "              [--experiment NAME] [--long] [--json]\n"
            "\n"
            "Lists the runs of the local store: id, experiment, name, status, start time\n"
            "and the latest value of each metric (at most %d metric columns unless\n"
            "--metrics names them).\n"
            "\n"
            "  --sort METRIC      best first by METRIC: highest first, lowest first with\n"
            "                     --asc; runs without it last.  Default: newest first.\n"
            "  --asc              with --sort: lower is better (loss, latency)\n"
            "  --metrics LIST     the metric columns to show, comma-separated\n"
            "  --experiment NAME  only runs of this experiment (name or id)\n"
            "  --long             full run ids (default: the first 12 characters, which\n"
            "                     show and gate accept as a prefix)\n"
            "  --json             one JSON document instead of the table (fields: README)\n"
            "%s%s",
            CLI_MAX_METRIC_COLUMNS, cli_store_text, cli_exit_text);
}

typedef struct ls_opts {
    const char *sort;
    bool asc;
} ls_opts;

static ls_opts g_ls; /* for qsort's comparison */

static int ls_cmp(const void *pa, const void *pb) {
    const run *a = *(run *const *)pa, *b = *(run *const *)pb;
    if (g_ls.sort) {
        double va, vb;
        bool ha = cli_latest(a, g_ls.sort, &va) && !isnan(va);
        bool hb = cli_latest(b, g_ls.sort, &vb) && !isnan(vb);
        if (ha != hb)
            return ha ? -1 : 1;
        if (ha && va != vb)
            return (g_ls.asc ? va < vb : va > vb) ? -1 : 1;
    }
    if (a->start != b->start)
        return a->start > b->start ? -1 : 1; /* newest first */
    return strcmp(a->id, b->id);
}

static bool has_col(char *const *cols, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i], key) == 0)
            return true;
    return false;
}

int cli_cmd_ls(int argc, char **argv) {
    const char *store_arg = NULL, *metrics_opt = NULL, *exp_filter = NULL;
    bool long_ids = false, json = false;
    memset(&g_ls, 0, sizeof g_ls);
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_ls(stdout);
            return EXIT_PASS;
        } else if (cli_opt_val(&a, "--sort", &v))
            g_ls.sort = v;
        else if (strcmp(s, "--asc") == 0)
            g_ls.asc = true;
        else if (strcmp(s, "--long") == 0)
            long_ids = true;
        else if (strcmp(s, "--json") == 0)
            json = true;
        else if (cli_opt_val(&a, "--metrics", &v))
            metrics_opt = v;
        else if (cli_opt_val(&a, "--experiment", &v))
            exp_filter = v;
        else if (s[0] == '-' && s[1])
            return cli_bad_usage(cli_usage_ls, "unknown option %s", s);
        else if (!store_arg)
            store_arg = s;
        else
            return cli_bad_usage(cli_usage_ls, "unexpected argument %s", s);
    }
    if (g_ls.asc && !g_ls.sort)
        return cli_bad_usage(cli_usage_ls, "%s needs --sort METRIC", "--asc");
    store st;
    if (cli_store_load(&st, cli_store_dir(store_arg), NULL, false) != 0)
        return EXIT_ERROR;

    /* the runs to list */
    run **rows = xmalloc((st.n + 1) * sizeof *rows);
    size_t nr = 0;
    for (size_t i = 0; i < st.n; i++) {
        run *r = st.runs[i];
        char eb[300];
        if (exp_filter && strcmp(cli_run_experiment(r, eb, sizeof eb), exp_filter) != 0 &&
            !(r->exp_id && strcmp(r->exp_id, exp_filter) == 0))
            continue;
        rows[nr++] = r;
    }
    if (nr == 0 && !json) {
        printf("no runs in %s%s\n", st.dir, exp_filter ? " for that experiment" : "");
        return EXIT_PASS;
    }

    /* metric columns */
    char **cols = NULL;
    size_t ncols = 0, capc = 0, hidden = 0;
    if (metrics_opt) {
        char *list = xstrdup(metrics_opt), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (ncols == capc)
                cols = xrealloc(cols, (capc = capc ? capc * 2 : 8) * sizeof *cols);
            cols[ncols++] = xstrdup(t);
        }
        xfree(list);
    } else {
        for (size_t i = 0; i < nr; i++)
            for (size_t k = 0; k < rows[i]->nm; k++) {
                const char *key = rows[i]->m[k].key;
                bool have = false;
                for (size_t c = 0; c < ncols && !have; c++)
                    have = strcmp(cols[c], key) == 0;
                if (have)
                    continue;
                if (ncols == capc)
                    cols = xrealloc(cols, (capc = capc ? capc * 2 : 8) * sizeof *cols);
                cols[ncols++] = xstrdup(key);
            }
        if (ncols)
            qsort(cols, ncols, sizeof *cols, cli_by_strcmp);
        /* the sort metric first */
        for (size_t c = 0; g_ls.sort && c < ncols; c++)
            if (strcmp(cols[c], g_ls.sort) == 0) {
                char *x = cols[c];
                memmove(cols + 1, cols, c * sizeof *cols);
                cols[0] = x;
                break;
            }
        if (ncols > CLI_MAX_METRIC_COLUMNS) {
            hidden = ncols - CLI_MAX_METRIC_COLUMNS;
            ncols = CLI_MAX_METRIC_COLUMNS;
        }
    }
    if (g_ls.sort) {
        bool any = false;
        for (size_t i = 0; i < nr && !any; i++)
            any = cli_run_metric(rows[i], g_ls.sort, false) != NULL;
        if (!any)
            fprintf(stderr, "mlo: warning: no run has a metric '%s'; sorted by start time\n",
                    g_ls.sort);
    }
    qsort(rows, nr, sizeof *rows, ls_cmp);
    if (json) {
        mlo_buf b = {0};
        mlo__buf_appends(&b, "{\"store\":");
        cli_json_str(&b, st.dir);
        mlo__buf_appends(&b, ",\"runs\":[");
        for (size_t i = 0; i < nr; i++) {
            run *r = rows[i];
            mlo__buf_appends(&b, i ? ",{" : "{");
            cli_json_run_fields(&b, r);
            mlo__buf_appends(&b, ",\"metrics\":{");
            bool first = true;
            for (size_t k = 0; k < r->nm; k++) {
                if (metrics_opt && !has_col(cols, ncols, r->m[k].key))
                    continue;
                if (!first)
                    mlo__buf_appendc(&b, ',');
                first = false;
                cli_json_str(&b, r->m[k].key);
                mlo__buf_appendc(&b, ':');
                cli_json_point(&b, &r->m[k].last);
            }
            mlo__buf_appends(&b, "}}");
        }
        mlo__buf_printf(&b, "],\"damaged\":%zu}", st.damaged);
        cli_json_write(&b);
        return EXIT_PASS;
    }

    bool any_server = false;
    for (size_t i = 0; i < nr; i++)
        any_server |= rows[i]->server_id != NULL;
    size_t fixed = any_server ? 6 : 5;
    table t;
    cli_table_init(&t, fixed + ncols, nr + 1);
    size_t c0 = 0;
    cli_table_set(&t, 0, c0++, "RUN");
    if (any_server)
        cli_table_set(&t, 0, c0++, "SERVER RUN");
    cli_table_set(&t, 0, c0++, "EXPERIMENT");
    cli_table_set(&t, 0, c0++, "NAME");
    cli_table_set(&t, 0, c0++, "STATUS");
    cli_table_set(&t, 0, c0++, "START");
    for (size_t c = 0; c < ncols; c++) {
        cli_table_set(&t, 0, fixed + c, cols[c]);
        t.right[fixed + c] = true;
    }
    for (size_t i = 0; i < nr; i++) {
        const run *r = rows[i];
        char buf[64], eb[300];
        size_t c = 0;
        snprintf(buf, sizeof buf, "%.*s", long_ids ? 63 : 12, r->id);
        cli_table_set(&t, i + 1, c++, buf);
        if (any_server) {
            snprintf(buf, sizeof buf, "%.*s", long_ids ? 63 : 12,
                     r->server_id ? r->server_id : "-");
            cli_table_set(&t, i + 1, c++, buf);
        }
        cli_table_set(&t, i + 1, c++, cli_run_experiment(r, eb, sizeof eb));
        cli_table_set(&t, i + 1, c++, cli_run_name(r));
        cli_table_set(&t, i + 1, c++, cli_status_name(r->status, r->ended));
        cli_fmt_time(r->start, buf, sizeof buf);
        cli_table_set(&t, i + 1, c++, buf);
        for (size_t k = 0; k < ncols; k++) {
            double v;
            if (cli_latest(r, cols[k], &v))
                cli_fmt_num(v, buf, sizeof buf);
            else
                snprintf(buf, sizeof buf, "-");
            cli_table_set(&t, i + 1, fixed + k, buf);
        }
    }
    cli_table_print(&t, stdout);
    if (hidden)
        printf("(%zu more metric%s not shown: choose columns with --metrics)\n", hidden,
               hidden == 1 ? "" : "s");
    if (st.damaged)
        fprintf(stderr, "mlo: warning: %zu damaged place%s in the store's segments (see above)\n",
                st.damaged, st.damaged == 1 ? "" : "s");
    return EXIT_PASS;
}
