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
            "usage: mlo show RUN [STORE] [--history] [--metric KEY] [--ascii] [--json]\n"
            "\n"
            "Prints a run's status, times, params, tags, the datasets it used (name,\n"
            "digest, source), its artifacts not uploaded yet and, for each metric, its\n"
            "latest value, range and a sparkline of its history (by step).  Values are\n"
            "printed with the fewest digits that read back exactly.\n"
            "RUN is a run id, a unique prefix of one, a server run id (after sync) or a\n"
            "unique run name.\n"
            "\n"
            "  --history     also every point: step, time, value\n"
            "  --metric KEY  only this metric (may be repeated)\n"
            "  --ascii       ASCII chart characters (default: Unicode blocks when the\n"
            "                locale is UTF-8)\n"
            "  --json        one JSON document instead of the text (fields: README);\n"
            "                with --history, each metric's points too\n"
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

/* A metric's finite min and max over its history and its removed points
 * (lo > hi: none). */
static void range(const metric *m, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t k = 0; k < m->nh; k++)
        if (isfinite(m->hist[k].v)) {
            *lo = m->hist[k].v < *lo ? m->hist[k].v : *lo;
            *hi = m->hist[k].v > *hi ? m->hist[k].v : *hi;
        }
    if (m->removed && m->rmin <= m->rmax) {
        *lo = m->rmin < *lo ? m->rmin : *lo;
        *hi = m->rmax > *hi ? m->rmax : *hi;
    }
}

static bool wanted(const char *key, const char **only, size_t nonly) {
    bool want = nonly == 0;
    for (size_t k = 0; k < nonly && !want; k++)
        want = strcmp(only[k], key) == 0;
    return want;
}

/* MLflow's system metrics: "system/..." (system_metrics_monitor.py's prefix). */
static int is_system(const char *key) {
    return strncmp(key, "system/", 7) == 0;
}

/* One metric of the text view: latest, range, sparkline, and with
 * --history every point. */
static void show_metric(metric *m, size_t kw, bool ascii, bool history) {
    m->nh = cli_history_normalize(m->hist, m->nh);
    double lo, hi;
    range(m, &lo, &hi);
    char last[64], a1[64], a2[64];
    cli_fmt_shortest(m->last.v, last, sizeof last);
    printf("  %s%*s  last %s (step %lld)", m->key, (int)(kw - cli_utf8_width(m->key)), "", last,
           (long long)m->last.step);
    if (m->nh + m->removed > 1 && lo <= hi) {
        cli_fmt_shortest(lo, a1, sizeof a1);
        cli_fmt_shortest(hi, a2, sizeof a2);
        printf("  min %s  max %s  %zu points", a1, a2, m->nh + m->removed);
        if (m->nh)
            printf(", steps %lld..%lld", (long long)m->hist[0].step,
                   (long long)m->hist[m->nh - 1].step);
    }
    if (m->removed)
        printf("  (%zu removed by the store's retention: counted, not charted)", m->removed);
    printf("\n");
    if (m->nh > 1) {
        mlo_buf line = {0};
        cli_sparkline(m->hist, m->nh, 60, ascii, &line);
        printf("  %*s  %s\n", (int)kw, "", line.data ? line.data : "");
        mlo__buf_free(&line);
    }
    if (history) {
        if (m->removed)
            printf("  %*s  %zu earlier points are no longer in the store (retention): their "
                   "count, min, max and the latest value are kept\n",
                   (int)kw, "", m->removed);
        printf("  %*s  %12s  %-19s  %s\n", (int)kw, "", "step", "time", "value");
        for (size_t k = 0; k < m->nh; k++) {
            char tv[64], vv[64];
            cli_fmt_time(m->hist[k].ts, tv, sizeof tv);
            cli_fmt_shortest(m->hist[k].v, vv, sizeof vv);
            printf("  %*s  %12lld  %-19s  %s\n", (int)kw, "", (long long)m->hist[k].step, tv, vv);
        }
    }
}

static void json_kvs(mlo_buf *b, const char *name, const kvs *s) {
    mlo__buf_printf(b, ",\"%s\":{", name);
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            mlo__buf_appendc(b, ',');
        cli_json_str(b, s->a[i].k);
        mlo__buf_appendc(b, ':');
        cli_json_str(b, s->a[i].v);
    }
    mlo__buf_appendc(b, '}');
}

/* show --json: the document the README describes. */
static int show_json(run *r, const char **only, size_t nonly, bool history) {
    mlo_buf b = {0};
    mlo__buf_appendc(&b, '{');
    cli_json_run_fields(&b, r);
    mlo__buf_appends(&b, ",\"duration_s\":");
    if (r->ended && r->start > 0 && r->end >= r->start)
        cli_json_num(&b, (double)(r->end - r->start) / 1000.0);
    else
        mlo__buf_appends(&b, "null");
    json_kvs(&b, "params", &r->params);
    json_kvs(&b, "tags", &r->tags);
    mlo__buf_appends(&b, ",\"datasets\":[");
    for (size_t i = 0; i < r->nds; i++) {
        const dataset *d = &r->ds[i];
        mlo__buf_appends(&b, i ? ",{\"name\":" : "{\"name\":");
        cli_json_str(&b, d->name);
        mlo__buf_appends(&b, ",\"digest\":");
        cli_json_str(&b, d->digest);
        mlo__buf_appends(&b, ",\"source_type\":");
        cli_json_str(&b, d->source_type);
        mlo__buf_appends(&b, ",\"source\":");
        cli_json_str(&b, d->source);
        mlo__buf_appends(&b, ",\"context\":");
        cli_json_str(&b, d->context[0] ? d->context : NULL);
        mlo__buf_appendc(&b, '}');
    }
    mlo__buf_appends(&b, "],\"artifacts_pending\":[");
    for (size_t i = 0; i < r->nart; i++) {
        const artifact *a = &r->art[i];
        mlo__buf_appends(&b, i ? ",{\"path\":" : "{\"path\":");
        cli_json_str(&b, a->path);
        mlo__buf_printf(&b, ",\"size\":%lld,\"state\":\"%s\",\"detail\":", a->size,
                        a->state == ART_FAILED ? "failed" : "pending");
        cli_json_str(&b, a->detail[0] ? a->detail : NULL);
        mlo__buf_appendc(&b, '}');
    }
    mlo__buf_appends(&b, "],\"metrics\":{");
    size_t shown = 0;
    for (size_t i = 0; i < r->nm; i++) {
        metric *m = &r->m[i];
        if (!wanted(m->key, only, nonly))
            continue;
        m->nh = cli_history_normalize(m->hist, m->nh);
        double lo, hi;
        range(m, &lo, &hi);
        if (shown++)
            mlo__buf_appendc(&b, ',');
        cli_json_str(&b, m->key);
        mlo__buf_appends(&b, ":{\"latest\":");
        cli_json_point(&b, &m->last);
        mlo__buf_printf(&b, ",\"count\":%zu,\"removed\":%zu,\"min\":", m->nh + m->removed,
                        m->removed);
        if (lo <= hi) {
            cli_json_num(&b, lo);
            mlo__buf_appends(&b, ",\"max\":");
            cli_json_num(&b, hi);
        } else
            mlo__buf_appends(&b, "null,\"max\":null");
        if (history) {
            mlo__buf_appends(&b, ",\"history\":[");
            for (size_t k = 0; k < m->nh; k++) {
                if (k)
                    mlo__buf_appendc(&b, ',');
                cli_json_point(&b, &m->hist[k]);
            }
            mlo__buf_appendc(&b, ']');
        }
        mlo__buf_appendc(&b, '}');
    }
    mlo__buf_appends(&b, "}}");
    for (size_t k = 0; k < nonly; k++)
        if (!cli_run_metric(r, only[k], false))
            fprintf(stderr, "mlo: run has no metric '%s'\n", only[k]);
    if (nonly && !shown) {
        mlo__buf_free(&b);
        return EXIT_ERROR;
    }
    cli_json_write(&b);
    return EXIT_PASS;
}

int cli_cmd_show(int argc, char **argv) {
    const char *run_arg = NULL, *store_arg = NULL;
    const char **only = NULL;
    size_t nonly = 0;
    bool history = false, json = false, ascii = !cli_utf8_locale();
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
        else if (strcmp(s, "--json") == 0)
            json = true;
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
    if (json)
        return show_json(r, only, nonly, history);

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

    /* the run's own metrics, then MLflow's system metrics (system/...) under
     * their own heading, as the MLflow UI and `mlo report` group them */
    int shown = 0;
    for (int sys = 0; sys < 2; sys++) {
        size_t n = 0;
        kw = 0;
        for (size_t i = 0; i < r->nm; i++)
            if (is_system(r->m[i].key) == sys) {
                n++;
                kw = cli_utf8_width(r->m[i].key) > kw ? cli_utf8_width(r->m[i].key) : kw;
            }
        if (sys && !n)
            break;
        printf("\n%s (%zu)\n", sys ? "System metrics" : "Metrics", n);
        for (size_t i = 0; i < r->nm; i++)
            if (is_system(r->m[i].key) == sys && wanted(r->m[i].key, only, nonly)) {
                show_metric(&r->m[i], kw, ascii, history);
                shown++;
            }
    }
    for (size_t k = 0; k < nonly; k++)
        if (!cli_run_metric(r, only[k], false))
            fprintf(stderr, "mlo: run has no metric '%s'\n", only[k]);
    if (nonly && !shown)
        return EXIT_ERROR;
    return EXIT_PASS;
}
