/*
 * mlo_cli_gate.c - `mlo gate RUN CONDITION...`: a run's latest metrics
 * against thresholds (or a baseline run's values), for CI.  The run comes
 * from the local store or, with --uri, from a tracking server through the
 * library's REST layer (mlo_cli_remote.c).
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_usage_gate(FILE *f) {
    fprintf(f,
            "usage: mlo gate RUN [STORE | --store DIR | --uri URI] [--file F] [--json]\n"
            "                CONDITION...\n"
            "\n"
            "Checks the latest value of a run's metrics against conditions, prints a\n"
            "pass/fail table and exits 0 when all hold, 1 when any fails: a CI step that\n"
            "blocks a deploy.  A condition is METRIC OP THRESHOLD with OP one of\n"
            ">= <= > < == !=, THRESHOLD a number or baseline:RUN_ID (that run's latest\n"
            "value of the same metric), e.g.\n"
            "    accuracy>=0.9   latency.p95<100   demographic_parity_diff<0.1\n"
            "    accuracy>=baseline:4f2a9c1b7e3d\n"
            "A missing or NaN metric fails its condition.  Quote conditions in the shell.\n"
            "\n"
            "  --file F     conditions from F, one per line ('#' starts a comment)\n"
            "  --uri URI    read the run from this MLflow tracking server\n"
            "               (GET /api/2.0/mlflow/runs/get; MLFLOW_TRACKING_TOKEN,\n"
            "               _USERNAME/_PASSWORD, _INSECURE_TLS, _SERVER_CERT_PATH apply)\n"
            "  --store DIR  the local store (also the first argument without an operator)\n"
            "  --json       one JSON document instead of the table (fields: README); the\n"
            "               exit status is the same\n"
            "%s%s",
            cli_store_text, cli_exit_text);
}

static const char *const OP_TEXT[] = {">=", "<=", ">", "<", "==", "!="};

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool has_op(const char *s) {
    return strpbrk(s, "<>=!") != NULL;
}

int cli_cond_parse(const char *in, cli_cond *c) {
    memset(c, 0, sizeof *c);
    char *buf = xstrdup(in), *s = trim(buf);
    char *o = strpbrk(s, "<>=!");
    if (!o || o == s) {
        fprintf(stderr, "mlo: condition '%s': expected METRIC OP VALUE, OP one of %s\n", in,
                ">= <= > < == !=");
        xfree(buf);
        return -1;
    }
    size_t ol;
    if (o[0] == '>' && o[1] == '=')
        c->op = OP_GE, ol = 2;
    else if (o[0] == '<' && o[1] == '=')
        c->op = OP_LE, ol = 2;
    else if (o[0] == '=' && o[1] == '=')
        c->op = OP_EQ, ol = 2;
    else if (o[0] == '!' && o[1] == '=')
        c->op = OP_NE, ol = 2;
    else if (o[0] == '>')
        c->op = OP_GT, ol = 1;
    else if (o[0] == '<')
        c->op = OP_LT, ol = 1;
    else if (o[0] == '=')
        c->op = OP_EQ, ol = 1;
    else {
        fprintf(stderr, "mlo: condition '%s': unknown operator\n", in);
        xfree(buf);
        return -1;
    }
    char *rhs = trim(o + ol);
    *o = '\0';
    char *lhs = trim(s);
    if (!*lhs || !*rhs || strpbrk(rhs, "<>=!")) {
        fprintf(stderr, "mlo: condition '%s': expected METRIC OP VALUE\n", in);
        xfree(buf);
        return -1;
    }
    c->metric = xstrdup(lhs);
    if (strncmp(rhs, "baseline:", 9) == 0) {
        char *id = trim(rhs + 9);
        if (!*id) {
            fprintf(stderr, "mlo: condition '%s': baseline: needs a run id\n", in);
            xfree(buf);
            xfree(c->metric);
            return -1;
        }
        c->baseline = xstrdup(id);
    } else {
        char *end;
        errno = 0;
        c->threshold = strtod(rhs, &end);
        if (end == rhs || *trim(end) || isnan(c->threshold)) {
            fprintf(stderr, "mlo: condition '%s': '%s' is not a number or baseline:RUN_ID\n", in,
                    rhs);
            xfree(buf);
            xfree(c->metric);
            return -1;
        }
    }
    mlo_buf t = {0};
    mlo__buf_printf(&t, "%s %s %s", c->metric, OP_TEXT[c->op], rhs);
    c->text = xstrdup(t.data ? t.data : in);
    mlo__buf_free(&t);
    xfree(buf);
    return 0;
}

static bool cond_holds(cli_gate_op op, double v, double th) {
    switch (op) {
    case OP_GE:
        return v >= th;
    case OP_LE:
        return v <= th;
    case OP_GT:
        return v > th;
    case OP_LT:
        return v < th;
    case OP_EQ:
        return v == th;
    case OP_NE:
        return v != th;
    }
    return false;
}

bool cli_cond_check(const cli_cond *c, const run *r, const run *base, double *value,
                    double *threshold, const char **why) {
    double v = NAN, th = c->threshold;
    *why = NULL;
    bool have = cli_latest(r, c->metric, &v);
    if (c->baseline && (!base || !cli_latest(base, c->metric, &th))) {
        th = NAN;
        *why = "FAIL (baseline has no such metric)";
    }
    *value = have ? v : NAN;
    *threshold = th;
    bool ok = false;
    if (!have)
        *why = "FAIL (no such metric)";
    else if (isnan(v))
        *why = "FAIL (value is NaN)";
    else if (!*why)
        ok = cond_holds(c->op, v, th);
    if (!ok && !*why)
        *why = "FAIL";
    return ok;
}

static int read_cond_file(const char *path, cli_cond **cs, size_t *n) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "mlo: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int rc = 0, ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        *cs = xrealloc(*cs, (*n + 1) * sizeof **cs);
        if (cli_cond_parse(s, &(*cs)[*n]) != 0) {
            fprintf(stderr, "mlo: in %s, line %d\n", path, ln);
            rc = -1;
            break;
        }
        (*n)++;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

/* A run of the server into s: NULL with a message on stderr. */
static run *server_run(cli_remote *rm, store *s, const char *id, const char *what) {
    char err[1024];
    run *r = NULL;
    int rc = cli_remote_get_run(rm, s, id, false, &r, err, sizeof err);
    if (rc == -2)
        fprintf(stderr, "mlo: %sno run '%s' on %s\n", what, id, s->uri);
    else if (rc != 0)
        fprintf(stderr, "mlo: %s%s\n", what, err);
    return rc == 0 ? r : NULL;
}

/* gate --json: the document the README describes; the same exit status. */
static int gate_json(const run *target, const cli_cond *cs, size_t nc, run *const *bases,
                     const char *source) {
    mlo_buf b = {0};
    mlo__buf_appends(&b, "{\"run\":{");
    cli_json_run_fields(&b, target);
    mlo__buf_appends(&b, "},\"source\":");
    cli_json_str(&b, source);
    mlo__buf_appends(&b, ",\"conditions\":[");
    size_t failed = 0;
    for (size_t i = 0; i < nc; i++) {
        const cli_cond *c = &cs[i];
        double v, th;
        const char *why;
        bool ok = cli_cond_check(c, target, bases[i], &v, &th, &why);
        failed += !ok;
        mlo__buf_appends(&b, i ? ",{\"condition\":" : "{\"condition\":");
        cli_json_str(&b, c->text);
        mlo__buf_appends(&b, ",\"metric\":");
        cli_json_str(&b, c->metric);
        mlo__buf_printf(&b, ",\"op\":\"%s\",\"baseline\":", OP_TEXT[c->op]);
        cli_json_str(&b, c->baseline);
        mlo__buf_appends(&b, ",\"threshold\":");
        if (isnan(th))
            mlo__buf_appends(&b, "null");
        else
            cli_json_num(&b, th);
        mlo__buf_appends(&b, ",\"value\":");
        if (cli_run_metric((run *)target, c->metric, false))
            cli_json_num(&b, v);
        else
            mlo__buf_appends(&b, "null");
        mlo__buf_printf(&b, ",\"passed\":%s,\"reason\":", ok ? "true" : "false");
        /* "FAIL (no such metric)" -> "no such metric" */
        char reason[96];
        size_t wl = why ? strlen(why) : 0;
        if (why && wl > 7 && strncmp(why, "FAIL (", 6) == 0)
            snprintf(reason, sizeof reason, "%.*s", (int)(wl - 7), why + 6);
        else
            snprintf(reason, sizeof reason, "condition does not hold");
        cli_json_str(&b, ok ? NULL : reason);
        mlo__buf_appendc(&b, '}');
    }
    mlo__buf_printf(&b, "],\"passed\":%s,\"failed\":%zu}", failed ? "false" : "true", failed);
    cli_json_write(&b);
    return failed ? EXIT_GATE_FAIL : EXIT_PASS;
}

int cli_cmd_gate(int argc, char **argv) {
    const char *run_arg = NULL, *store_arg = NULL, *uri = NULL;
    cli_cond *cs = NULL;
    size_t nc = 0;
    bool json = false;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_gate(stdout);
            return EXIT_PASS;
        } else if (strcmp(s, "--json") == 0)
            json = true;
        else if (cli_opt_val(&a, "--uri", &v))
            uri = v;
        else if (cli_opt_val(&a, "--store", &v))
            store_arg = v;
        else if (cli_opt_val(&a, "--file", &v)) {
            if (read_cond_file(v, &cs, &nc) != 0)
                return EXIT_ERROR;
        } else if (s[0] == '-' && s[1] && !has_op(s))
            return cli_bad_usage(cli_usage_gate, "unknown option %s", s);
        else if (!run_arg)
            run_arg = s;
        else if (!has_op(s) && !store_arg && !uri)
            store_arg = s;
        else if (!has_op(s))
            return cli_bad_usage(cli_usage_gate, "'%s' is not a condition (METRIC OP VALUE)", s);
        else {
            cs = xrealloc(cs, (nc + 1) * sizeof *cs);
            if (cli_cond_parse(s, &cs[nc]) != 0)
                return EXIT_ERROR;
            nc++;
        }
    }
    if (!run_arg)
        return cli_bad_usage(cli_usage_gate, "%s", "which run?");
    if (nc == 0)
        return cli_bad_usage(cli_usage_gate, "%s", "no conditions (give some, or --file F)");
    if (uri && store_arg)
        return cli_bad_usage(cli_usage_gate, "%s", "give a store or --uri, not both");

    store st;
    cli_remote *rm = NULL;
    run *target;
    if (uri) {
        char err[1024];
        if (!(rm = cli_remote_open(uri, err, sizeof err))) {
            fprintf(stderr, "mlo: %s\n", err);
            return EXIT_ERROR;
        }
        cli_store_init(&st);
        st.uri = uri;
        target = server_run(rm, &st, run_arg, "");
    } else {
        if (cli_store_load(&st, cli_store_dir(store_arg), NULL, false) != 0)
            return EXIT_ERROR;
        target = cli_resolve(&st, run_arg);
    }
    /* the baselines (each fetched once), as bases[i] for condition i */
    run **bases = xcalloc(nc, sizeof *bases);
    for (size_t i = 0; target && i < nc; i++) {
        if (!cs[i].baseline)
            continue;
        for (size_t k = 0; k < i && !bases[i]; k++)
            if (cs[k].baseline && strcmp(cs[k].baseline, cs[i].baseline) == 0)
                bases[i] = bases[k];
        if (bases[i])
            continue;
        bases[i] = rm ? server_run(rm, &st, cs[i].baseline, "baseline: ")
                      : cli_resolve(&st, cs[i].baseline);
        if (!bases[i])
            target = NULL;
    }
    cli_remote_close(rm);
    if (!target)
        return EXIT_ERROR;

    if (json)
        return gate_json(target, cs, nc, bases, uri ? uri : st.dir);
    printf("gate: run %s (%s)\n\n", target->id, cli_run_name(target));
    table t;
    cli_table_init(&t, 4, nc + 1);
    cli_table_set(&t, 0, 0, "CONDITION");
    cli_table_set(&t, 0, 1, "VALUE");
    cli_table_set(&t, 0, 2, "THRESHOLD");
    cli_table_set(&t, 0, 3, "RESULT");
    t.right[1] = t.right[2] = true;
    size_t failed = 0;
    for (size_t i = 0; i < nc; i++) {
        const cli_cond *c = &cs[i];
        char vb[64] = "-", tb[64] = "-";
        const char *why;
        double v, th;
        bool ok = cli_cond_check(c, target, bases[i], &v, &th, &why);
        if (cli_run_metric(target, c->metric, false))
            cli_fmt_num(v, vb, sizeof vb);
        if (!isnan(th))
            cli_fmt_num(th, tb, sizeof tb);
        if (!ok)
            failed++;
        cli_table_set(&t, i + 1, 0, c->text);
        cli_table_set(&t, i + 1, 1, vb);
        cli_table_set(&t, i + 1, 2, tb);
        cli_table_set(&t, i + 1, 3, ok ? "pass" : why);
    }
    cli_table_print(&t, stdout);
    printf("\n");
    if (failed) {
        printf("result: FAIL (%zu of %zu condition%s failed)\n", failed, nc, nc == 1 ? "" : "s");
        return EXIT_GATE_FAIL;
    }
    printf("result: pass (%zu condition%s)\n", nc, nc == 1 ? "" : "s");
    return EXIT_PASS;
}
