/*
 * mlo_cli_table.c - what the `mlo` tool prints for people: aligned text
 * tables, one-line sparklines of a metric's history, times and numbers.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"

#include <langinfo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Display width of a UTF-8 string: its code points (no East Asian wide
 * characters in run names is assumed; close enough for a table). */
size_t cli_utf8_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

bool cli_utf8_locale(void) {
    const char *cs = nl_langinfo(CODESET);
    return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

void cli_fmt_time(int64_t ms, char *out, size_t n) {
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, n, "%lld", (long long)ms);
}

void cli_fmt_num(double v, char *out, size_t n) {
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(out, n, "%.6g", v);
}

const char *cli_status_name(int st, bool ended) {
    if (!ended)
        return "RUNNING";
    switch (st) {
    case MLO_RUN_RUNNING:
        return "RUNNING";
    case MLO_RUN_SCHEDULED:
        return "SCHEDULED";
    case MLO_RUN_FINISHED:
        return "FINISHED";
    case MLO_RUN_FAILED:
        return "FAILED";
    case MLO_RUN_KILLED:
        return "KILLED";
    default:
        return "UNKNOWN";
    }
}

void cli_table_init(table *t, size_t ncol, size_t nrow) {
    t->ncol = ncol;
    t->nrow = nrow;
    t->cell = xcalloc(ncol * nrow, sizeof *t->cell);
    t->right = xcalloc(ncol, sizeof *t->right);
}

void cli_table_set(table *t, size_t row, size_t col, const char *s) {
    cli_set_str(&t->cell[row * t->ncol + col], s);
}

void cli_table_print(const table *t, FILE *f) {
    size_t *w = xcalloc(t->ncol, sizeof *w);
    for (size_t r = 0; r < t->nrow; r++)
        for (size_t c = 0; c < t->ncol; c++) {
            const char *s = t->cell[r * t->ncol + c];
            size_t l = s ? cli_utf8_width(s) : 0;
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrow; r++) {
        mlo_buf line = {0};
        for (size_t c = 0; c < t->ncol; c++) {
            const char *s = t->cell[r * t->ncol + c];
            if (!s)
                s = "";
            size_t pad = w[c] - cli_utf8_width(s);
            if (c)
                mlo__buf_appends(&line, "  ");
            if (t->right[c])
                for (size_t k = 0; k < pad; k++)
                    mlo__buf_appendc(&line, ' ');
            mlo__buf_appends(&line, s);
            if (!t->right[c] && c + 1 < t->ncol)
                for (size_t k = 0; k < pad; k++)
                    mlo__buf_appendc(&line, ' ');
        }
        fprintf(f, "%s\n", line.data ? line.data : "");
        mlo__buf_free(&line);
    }
    xfree(w);
}

/* At most width cells, each the mean of its share of the points, scaled
 * between the smallest and largest cell. */
void cli_sparkline(const point *p, size_t n, size_t width, bool ascii, mlo_buf *out) {
    static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                          "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char levels[] = "_.-:=+*#";
    size_t cells = n < width ? n : width;
    if (cells == 0)
        return;
    double *val = xmalloc(cells * sizeof *val);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t c = 0; c < cells; c++) {
        size_t a = c * n / cells, b = (c + 1) * n / cells;
        double sum = 0;
        size_t k = 0;
        for (size_t i = a; i < b; i++)
            if (isfinite(p[i].v)) {
                sum += p[i].v;
                k++;
            }
        val[c] = k ? sum / (double)k : NAN;
        if (k) {
            lo = val[c] < lo ? val[c] : lo;
            hi = val[c] > hi ? val[c] : hi;
        }
    }
    for (size_t c = 0; c < cells; c++) {
        if (isnan(val[c])) {
            mlo__buf_appendc(out, ' '); /* no finite value in this cell */
            continue;
        }
        int lv = hi > lo ? (int)lround((val[c] - lo) / (hi - lo) * 7.0) : 3;
        lv = lv < 0 ? 0 : lv > 7 ? 7 : lv;
        if (ascii)
            mlo__buf_appendc(out, levels[lv]);
        else
            mlo__buf_appends(out, blocks[lv]);
    }
    xfree(val);
}

void cli_fmt_shortest(double v, char *out, size_t n) {
    if (isnan(v) || isinf(v)) {
        cli_fmt_num(v, out, n);
        return;
    }
    /* the fewest significant digits that read back as exactly v (LC_NUMERIC
     * is "C": main sets it) */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}
