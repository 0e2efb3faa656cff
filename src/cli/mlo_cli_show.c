/*
 * mlo_cli_show.c - `mlo show RUN`: one run of the local store, with its
 * params, tags, datasets, artifacts not uploaded yet and metric histories.
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

void cli_usage_show(FILE *f) {
    fprintf(f,
            "usage: mlo show RUN [STORE] [--history] [--metric KEY] [--ascii]\n"
            "\n"
            "Prints a run's status, times, params, tags, the datasets it used (name,\n"
            "digest, source), its artifacts not uploaded yet and, for each metric, its\n"
            "latest value, range and a sparkline of its history (by step).\n"
            "RUN is a run id, a unique prefix of one, a server run id (after sync) or a\n"
            "unique run name.\n"
            "\n"
            "  --history     also every point: step, time, value\n"
            "  --metric KEY  only this metric (may be repeated)\n"
            "  --ascii       ASCII chart characters (default: Unicode blocks when the\n"
            "                locale is UTF-8)\n"
            "%s%s",
            cli_store_text, cli_exit_text);
}

static void show_artifacts(const run *r) {
    if (!r->nart)
        return;
    printf("\nArtifacts not uploaded yet (%zu)\n", r->nart);
    for (size_t i = 0; i < r->nart; i++) {
        const artifact *a = &r->art[i];
        printf("  %s  %lld bytes  ", a->path, a->size);
        if (a->state == ART_FAILED)
            printf("failed: %.300s\n", a->detail);
        else if (!a->detail[0])
            printf("pending (mlo sync uploads it)\n");
        else
            printf("pending upload to %s\n", a->detail);
    }
}

static size_t key_width_kvs(const kvs *s) {
    size_t kw = 0;
    for (size_t i = 0; i < s->n; i++)
        kw = cli_utf8_width(s->a[i].k) > kw ? cli_utf8_width(s->a[i].k) : kw;
    return kw;
}

int cli_cmd_show(int argc, char **argv) {
    const char *run_arg = NULL, *store_arg = NULL;
    const char **only = NULL;
    size_t nonly = 0;
    bool history = false, ascii = !cli_utf8_locale();
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_show(stdout);
            return EXIT_PASS;
        } else if (strcmp(s, "--history") == 0)
            history = true;
        else if (strcmp(s, "--ascii") == 0)
            ascii = true;
        else if (cli_opt_val(&a, "--metric", &v)) {
            only = xrealloc(only, (nonly + 1) * sizeof *only);
            only[nonly++] = v;
        } else if (s[0] == '-' && s[1])
            return cli_bad_usage(cli_usage_show, "unknown option %s", s);
        else if (!run_arg)
            run_arg = s;
        else if (!store_arg)
            store_arg = s;
        else
            return cli_bad_usage(cli_usage_show, "unexpected argument %s", s);
    }
    if (!run_arg)
        return cli_bad_usage(cli_usage_show, "%s", "which run? (mlo ls lists them)");
    const char *dir = cli_store_dir(store_arg);
    store st;
    if (cli_store_load(&st, dir, run_arg, false) != 0)
        return EXIT_ERROR;
    run *r = cli_resolve(&st, run_arg);
    if (!r)
        return EXIT_ERROR;
    if (!r->keep_hist) {
        /* found by name or server id: read again keeping its history */
        char *id = xstrdup(r->id);
        if (cli_store_load(&st, dir, id, true) != 0 || !(r = cli_store_find(&st, id)))
            return EXIT_ERROR;
    }
    cli_store_artifacts(dir, r);

    char t1[64], t2[64], eb[300];
    printf("Run         %s\n", r->id);
    if (r->server_id)
        printf("Server run  %s\n", r->server_id);
    printf("Name        %s\n", cli_run_name(r));
    printf("Experiment  %s", cli_run_experiment(r, eb, sizeof eb));
    if (r->exp_id && r->exp_name)
        printf(" (id %s)", r->exp_id);
    printf("\n");
    printf("Status      %s\n", cli_status_name(r->status, r->ended));
    cli_fmt_time(r->start, t1, sizeof t1);
    printf("Start       %s\n", t1);
    if (r->ended) {
        cli_fmt_time(r->end, t2, sizeof t2);
        printf("End         %s", t2);
        if (r->start > 0 && r->end >= r->start)
            printf("  (%.1f s)", (double)(r->end - r->start) / 1000.0);
        printf("\n");
    }
    if (r->parent)
        printf("Parent      %s\n", r->parent);

    size_t kw = key_width_kvs(&r->params);
    printf("\nParams (%zu)\n", r->params.n);
    for (size_t i = 0; i < r->params.n; i++)
        printf("  %s%*s  %s\n", r->params.a[i].k, (int)(kw - cli_utf8_width(r->params.a[i].k)), "",
               r->params.a[i].v);
    kw = key_width_kvs(&r->tags);
    printf("\nTags (%zu)\n", r->tags.n);
    for (size_t i = 0; i < r->tags.n; i++) {
        const char *v = r->tags.a[i].v;
        size_t vl = strlen(v);
        /* long values (notes, commands) are cut for the terminal */
        printf("  %s%*s  %.*s%s\n", r->tags.a[i].k, (int)(kw - cli_utf8_width(r->tags.a[i].k)), "",
               vl > 200 ? 200 : (int)vl, v, vl > 200 ? "..." : "");
    }

    if (r->nds) {
        /* the location out of MLflow's source JSON ({"uri": ...}, {"url": ...}) */
        kw = 0;
        for (size_t i = 0; i < r->nds; i++)
            kw = cli_utf8_width(r->ds[i].name) > kw ? cli_utf8_width(r->ds[i].name) : kw;
        printf("\nDatasets (%zu)\n", r->nds);
        for (size_t i = 0; i < r->nds; i++) {
            const dataset *d = &r->ds[i];
            char *loc = cli_json_get_string(d->source, "uri");
            if (!loc)
                loc = cli_json_get_string(d->source, "url");
            printf("  %s%*s  digest %s  %s %s", d->name, (int)(kw - cli_utf8_width(d->name)), "",
                   d->digest, d->source_type, loc ? loc : d->source);
            if (d->context[0])
                printf("  (context %s)", d->context);
            printf("\n");
            xfree(loc);
        }
    }

    show_artifacts(r);

    printf("\nMetrics (%zu)\n", r->nm);
    kw = 0;
    for (size_t i = 0; i < r->nm; i++)
        kw = cli_utf8_width(r->m[i].key) > kw ? cli_utf8_width(r->m[i].key) : kw;
    int shown = 0;
    for (size_t i = 0; i < r->nm; i++) {
        metric *m = &r->m[i];
        bool want = nonly == 0;
        for (size_t k = 0; k < nonly && !want; k++)
            want = strcmp(only[k], m->key) == 0;
        if (!want)
            continue;
        shown++;
        m->nh = cli_history_normalize(m->hist, m->nh);
        double lo = INFINITY, hi = -INFINITY;
        for (size_t k = 0; k < m->nh; k++)
            if (isfinite(m->hist[k].v)) {
                lo = m->hist[k].v < lo ? m->hist[k].v : lo;
                hi = m->hist[k].v > hi ? m->hist[k].v : hi;
            }
        char last[64], a1[64], a2[64];
        cli_fmt_num(m->last.v, last, sizeof last);
        printf("  %s%*s  last %s (step %lld)", m->key, (int)(kw - cli_utf8_width(m->key)), "", last,
               (long long)m->last.step);
        if (m->nh > 1 && lo <= hi) {
            cli_fmt_num(lo, a1, sizeof a1);
            cli_fmt_num(hi, a2, sizeof a2);
            printf("  min %s  max %s  %zu points, steps %lld..%lld", a1, a2, m->nh,
                   (long long)m->hist[0].step, (long long)m->hist[m->nh - 1].step);
        }
        printf("\n");
        if (m->nh > 1) {
            mlo_buf line = {0};
            cli_sparkline(m->hist, m->nh, 60, ascii, &line);
            printf("  %*s  %s\n", (int)kw, "", line.data ? line.data : "");
            mlo__buf_free(&line);
        }
        if (history) {
            printf("  %*s  %12s  %-19s  %s\n", (int)kw, "", "step", "time", "value");
            for (size_t k = 0; k < m->nh; k++) {
                char tv[64], vv[64];
                cli_fmt_time(m->hist[k].ts, tv, sizeof tv);
                cli_fmt_num(m->hist[k].v, vv, sizeof vv);
                printf("  %*s  %12lld  %-19s  %s\n", (int)kw, "", (long long)m->hist[k].step, tv,
                       vv);
            }
        }
    }
    for (size_t k = 0; k < nonly; k++)
        if (!cli_run_metric(r, only[k], false))
            fprintf(stderr, "mlo: run has no metric '%s'\n", only[k]);
    if (nonly && !shown)
        return EXIT_ERROR;
    return EXIT_PASS;
}
