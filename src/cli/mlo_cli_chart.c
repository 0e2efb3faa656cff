/*
 * mlo_cli_chart.c - inline SVG charts for `mlo report`: one metric's
 * history of several runs overlaid, and parallel coordinates of params
 * against a metric.
 *
 * A metric chart is a viewBox of CW x CH units with a plot area of PW x PH;
 * steps go on x, values on y (log10 when every finite value is > 0 and the
 * largest is at least 100 times the smallest).  Each run is one <path>
 * whose every vertex has its own command letter (M, l or v), so a reader
 * counts vertices by counting letters:
 *   - at most PW points: every point, in tenths of a unit ("M" absolute,
 *     then "l" relative to the previous vertex, differences of the rounded
 *     absolute positions so nothing drifts);
 *   - more: per pixel column, the column's smallest and largest value in
 *     the order they came (one vertex when they round to the same pixel),
 *     in whole units ("l" into a column, "v" within it).  A page of 100
 *     runs x 10 metrics x 10,000 steps stays near 3 MB.
 * A non-finite value (NaN, +-Infinity) ends the line: the next finite
 * point starts a new "M".  A vertex alone between gaps gets a dot (circle).
 *
 * Threads: one.
 */
#include "mlo_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CW 480
#define CH 260
#define ML 58
#define MR 14
#define MT 12
#define MB 34
#define PW (CW - ML - MR)
#define PH (CH - MT - MB)

typedef struct scale {
    double d0, d1; /* domain (log10 of values when lg) */
    double r0, r1; /* range in SVG units */
    bool lg;
} scale;

static double sc(const scale *s, double v) {
    double t = s->lg ? log10(v) : v;
    return s->r0 + (t - s->d0) / (s->d1 - s->d0) * (s->r1 - s->r0);
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double span, int n) {
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void fmt_tick(double v, char *out, size_t n) {
    if (fabs(v) < 1e-12)
        v = 0;
    snprintf(out, n, "%.4g", v);
}

/* Appends tenths of a unit as a decimal ("12.3", "-0.5", "7"). */
static void put_tenths(mlo_buf *b, long long t) {
    if (t < 0) {
        mlo__buf_appendc(b, '-');
        t = -t;
    }
    if (t % 10)
        mlo__buf_printf(b, "%lld.%lld", t / 10, t % 10);
    else
        mlo__buf_printf(b, "%lld", t / 10);
}

typedef struct pathw {
    mlo_buf *b;
    long long px, py; /* the last vertex */
    bool open;        /* a subpath is open */
    size_t sub_n;     /* vertices in the open subpath */
    long long sx, sy; /* its first vertex */
    mlo_buf *dots;    /* circles for lone vertices */
    int unit;         /* 10: coordinates in tenths; 1: whole units */
    size_t vertices;
} pathw;

static void dot_if_alone(pathw *w) {
    if (w->open && w->sub_n == 1) {
        mlo__buf_appends(w->dots, "<circle cx=\"");
        put_tenths(w->dots, w->sx * (10 / w->unit));
        mlo__buf_appends(w->dots, "\" cy=\"");
        put_tenths(w->dots, w->sy * (10 / w->unit));
        mlo__buf_appends(w->dots, "\" r=\"2.5\"/>");
    }
}

static void gap(pathw *w) {
    dot_if_alone(w);
    w->open = false;
    w->sub_n = 0;
}

static void vertex(pathw *w, long long x, long long y) {
    int k = 10 / w->unit;
    if (!w->open) {
        mlo__buf_appendc(w->b, 'M');
        put_tenths(w->b, x * k);
        mlo__buf_appendc(w->b, ' ');
        put_tenths(w->b, y * k);
        w->open = true;
        w->sx = x;
        w->sy = y;
    } else if (x == w->px) {
        mlo__buf_appendc(w->b, 'v');
        put_tenths(w->b, (y - w->py) * k);
    } else {
        mlo__buf_appendc(w->b, 'l');
        put_tenths(w->b, (x - w->px) * k);
        mlo__buf_appendc(w->b, ' ');
        put_tenths(w->b, (y - w->py) * k);
    }
    w->px = x;
    w->py = y;
    w->sub_n++;
    w->vertices++;
}

/* The path data of one series into b; lone vertices as circles into dots.
 * Returns the number of finite points. */
static size_t series_path(const cli_series *s, const scale *xs, const scale *ys, mlo_buf *b,
                          mlo_buf *dots) {
    size_t finite = 0;
    for (size_t i = 0; i < s->n; i++)
        finite += isfinite(s->p[i].v) && (!ys->lg || s->p[i].v > 0);
    pathw w = {.b = b, .dots = dots, .unit = s->n > PW ? 1 : 10};
    if (w.unit == 10) {
        for (size_t i = 0; i < s->n; i++) {
            double v = s->p[i].v;
            if (!isfinite(v) || (ys->lg && v <= 0)) {
                gap(&w);
                continue;
            }
            vertex(&w, llround(sc(xs, (double)s->p[i].step) * 10), llround(sc(ys, v) * 10));
        }
        gap(&w);
        return finite;
    }
    /* per pixel column: its min and max, in the order they came */
    long long col = -1;
    double lo = 0, hi = 0;
    size_t ilo = 0, ihi = 0;
    bool have = false;
    for (size_t i = 0; i <= s->n; i++) {
        bool end = i == s->n;
        double v = end ? NAN : s->p[i].v;
        bool ok = !end && isfinite(v) && (!ys->lg || v > 0);
        long long c = -1;
        if (ok) {
            c = (long long)floor(sc(xs, (double)s->p[i].step) - ML);
            c = c < 0 ? 0 : c >= PW ? PW - 1 : c;
        }
        if (have && (!ok || c != col)) {
            long long x = ML + col, ya = llround(sc(ys, ilo < ihi ? lo : hi)),
                      yb = llround(sc(ys, ilo < ihi ? hi : lo));
            vertex(&w, x, ya);
            if (yb != ya)
                vertex(&w, x, yb);
            have = false;
        }
        if (!ok) {
            if (!end)
                gap(&w);
            continue;
        }
        if (!have) {
            col = c;
            lo = hi = v;
            ilo = ihi = i;
            have = true;
        } else if (v < lo) {
            lo = v;
            ilo = i;
        } else if (v > hi) {
            hi = v;
            ihi = i;
        }
    }
    gap(&w);
    return finite;
}

void cli_chart_metric(mlo_buf *out, const char *key, const cli_series *s, size_t ns) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    size_t nonpos = 0, finite = 0;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double x = (double)s[k].p[i].step, v = s[k].p[i].v;
            x0 = x < x0 ? x : x0;
            x1 = x > x1 ? x : x1;
            if (!isfinite(v))
                continue;
            finite++;
            nonpos += v <= 0;
            y0 = v < y0 ? v : y0;
            y1 = v > y1 ? v : y1;
        }
    mlo__buf_appends(out, "<figure class=\"chart\" data-metric=\"");
    cli_html_esc(out, key, false);
    mlo__buf_appends(out, "\"><figcaption>");
    cli_html_esc(out, key, false);
    bool lg = finite && !nonpos && y1 / y0 >= 100;
    if (lg)
        mlo__buf_appends(out, " <small>(log scale)</small>");
    mlo__buf_appends(out, "</figcaption>");
    mlo__buf_printf(out, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
                    CW, CH);
    cli_html_esc(out, key, false);
    mlo__buf_appends(out, "\">");
    if (!finite) {
        mlo__buf_printf(out, "<text class=\"none\" x=\"%d\" y=\"%d\">no finite values</text>",
                        CW / 2, CH / 2);
        x0 = x0 > x1 ? 0 : x0;
        x1 = x1 < x0 ? 1 : x1;
        y0 = 0;
        y1 = 1;
    }
    if (x0 == x1)
        x0 -= 1, x1 += 1;
    scale xs = {x0, x1, ML, ML + PW, false}, ys;
    /* y ticks, and the domain widened to them */
    double ticks[64];
    int nt = 0;
    if (lg) {
        double d0 = floor(log10(y0)), d1 = ceil(log10(y1));
        if (d1 == d0)
            d1 += 1;
        int every = (int)ceil((d1 - d0) / 6);
        for (double d = d0; d <= d1 && nt < 64; d += every)
            ticks[nt++] = pow(10, d);
        ys = (scale){d0, d1, MT + PH, MT, true};
    } else {
        if (y0 == y1) {
            double pad = fabs(y0) > 0 ? fabs(y0) * 0.1 : 0.5;
            y0 -= pad, y1 += pad;
        }
        double st = nice_step(y1 - y0, 4), d0 = floor(y0 / st) * st, d1 = ceil(y1 / st) * st;
        for (double t = d0; t <= d1 + st * 1e-9 && nt < 64; t += st)
            ticks[nt++] = t;
        ys = (scale){d0, d1, MT + PH, MT, false};
    }
    mlo__buf_appends(out, "<g class=\"grid\">");
    for (int i = 0; i < nt; i++) {
        char lab[32];
        fmt_tick(ticks[i], lab, sizeof lab);
        double y = sc(&ys, ticks[i]);
        mlo__buf_printf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", ML, ML + PW, y,
                        y);
        mlo__buf_printf(out, "<text class=\"yl\" x=\"%d\" y=\"%.1f\">%s</text>", ML - 6, y + 4,
                        lab);
    }
    double xst = nice_step(x1 - x0, 5);
    if (xst < 1)
        xst = 1; /* steps are integers */
    for (double t = ceil(x0 / xst) * xst; t <= x1; t += xst) {
        char lab[32];
        fmt_tick(t, lab, sizeof lab);
        double x = sc(&xs, t);
        mlo__buf_printf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>", x, x, MT + PH,
                        MT + PH + 4);
        mlo__buf_printf(out, "<text class=\"xl\" x=\"%.1f\" y=\"%d\">%s</text>", x, MT + PH + 16,
                        lab);
    }
    mlo__buf_printf(out,
                    "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
                    "<text class=\"xt\" x=\"%d\" y=\"%d\">step</text></g>",
                    ML, MT, PW, PH, ML + PW, CH - 2);
    mlo_buf dots = {0};
    for (size_t k = 0; k < ns; k++) {
        if (!s[k].n)
            continue;
        size_t mark = out->len;
        mlo__buf_printf(out, "<path class=\"s c%d\" data-run=\"", s[k].color);
        cli_html_esc(out, s[k].run_id, false);
        mlo__buf_appends(out, "\" d=\"");
        size_t dmark = out->len;
        mlo__buf_reset(&dots);
        size_t n = series_path(&s[k], &xs, &ys, out, &dots);
        if (out->len == dmark) { /* nothing drawable: no path */
            out->len = mark;
            out->data[mark] = '\0';
            continue;
        }
        mlo__buf_printf(out, "\" data-points=\"%zu\" data-decimated=\"%d\"><title>", n,
                        s[k].n > PW);
        cli_html_esc(out, s[k].label, false);
        mlo__buf_appends(out, "</title></path>");
        if (dots.len) {
            mlo__buf_printf(out, "<g class=\"d c%d\" data-run=\"", s[k].color);
            cli_html_esc(out, s[k].run_id, false);
            mlo__buf_printf(out, "\">%s</g>", dots.data);
        }
    }
    mlo__buf_free(&dots);
    mlo__buf_appends(out, "</svg><ul class=\"legend\">");
    for (size_t k = 0; k < ns; k++) {
        if (!s[k].n)
            continue;
        mlo__buf_printf(out, "<li data-run=\"");
        cli_html_esc(out, s[k].run_id, false);
        mlo__buf_printf(out,
                        "\"><svg class=\"sw\" viewBox=\"0 0 10 10\"><rect class=\"c%d\" "
                        "width=\"10\" height=\"10\"/></svg>",
                        s[k].color);
        cli_html_esc_cut(out, s[k].label, 60);
        mlo__buf_appends(out, "</li>");
    }
    mlo__buf_appends(out, "</ul></figure>\n");
}

/* ---- parallel coordinates ---- */

#define PC_H 320
#define PC_T 40
#define PC_B 40
#define PC_GAP 130
#define PC_SIDE 70
#define PC_MAX_CATS 64

typedef struct axis {
    const char *label;
    bool numeric, lg; /* lg: log10 (every value > 0, spanning two decades) */
    double lo, hi;
    char **cats; /* categorical: sorted distinct values */
    size_t ncats;
} axis;

static const char *param_of(const run *r, const char *key) {
    return cli_kvs_get(&r->params, key);
}

static bool as_number(const char *s, double *v) {
    if (!s || !*s)
        return false;
    char *end;
    *v = strtod(s, &end);
    return !*end && isfinite(*v);
}

/* The position of a run on axis a (NAN: no value). */
static double axis_pos(const axis *a, const run *r, const char *metric, bool is_metric) {
    double v;
    double top = PC_T, bottom = PC_H - PC_B;
    if (is_metric) {
        if (!cli_latest(r, metric, &v) || !isfinite(v))
            return NAN;
    } else {
        const char *s = param_of(r, a->label);
        if (!s)
            return NAN;
        if (!a->numeric) {
            for (size_t i = 0; i < a->ncats; i++)
                if (strcmp(a->cats[i], s) == 0)
                    return a->ncats == 1
                               ? (top + bottom) / 2
                               : bottom - (bottom - top) * (double)i / (double)(a->ncats - 1);
            return NAN;
        }
        if (!as_number(s, &v))
            return NAN;
    }
    if (a->hi == a->lo)
        return (top + bottom) / 2;
    if (a->lg)
        return bottom - (bottom - top) * (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    return bottom - (bottom - top) * (v - a->lo) / (a->hi - a->lo);
}

void cli_chart_parcoords(mlo_buf *out, run *const *runs, const int *colors, size_t nruns,
                         char *const *params, size_t nparams, const char *metric) {
    size_t na = nparams + 1;
    axis *ax = xcalloc(na, sizeof *ax);
    for (size_t k = 0; k < na; k++) {
        axis *a = &ax[k];
        bool is_metric = k == nparams;
        a->label = is_metric ? metric : params[k];
        a->numeric = true;
        a->lo = INFINITY;
        a->hi = -INFINITY;
        for (size_t i = 0; i < nruns; i++) {
            double v;
            if (is_metric) {
                if (!cli_latest(runs[i], metric, &v) || !isfinite(v))
                    continue;
            } else {
                const char *s = param_of(runs[i], a->label);
                if (!s)
                    continue;
                if (!as_number(s, &v))
                    a->numeric = false;
                bool have = false;
                for (size_t c = 0; c < a->ncats && !have; c++)
                    have = strcmp(a->cats[c], s) == 0;
                if (!have && a->ncats < PC_MAX_CATS) {
                    a->cats = xrealloc(a->cats, (a->ncats + 1) * sizeof *a->cats);
                    a->cats[a->ncats++] = (char *)s;
                }
                if (!a->numeric)
                    continue;
            }
            a->lo = v < a->lo ? v : a->lo;
            a->hi = v > a->hi ? v : a->hi;
        }
        if (a->ncats > 1)
            qsort(a->cats, a->ncats, sizeof *a->cats, cli_by_strcmp);
        a->lg = a->numeric && a->lo > 0 && a->hi / a->lo >= 100;
    }
    int w = 2 * PC_SIDE + PC_GAP * (int)(na - 1);
    mlo__buf_printf(out,
                    "<svg class=\"parcoords\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                    "role=\"img\" aria-label=\"params against the metric\">",
                    w, PC_H, w, PC_H);
    for (size_t k = 0; k < na; k++) {
        const axis *a = &ax[k];
        int x = PC_SIDE + PC_GAP * (int)k;
        mlo__buf_printf(out,
                        "<g class=\"axis%s\"><line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>"
                        "<text class=\"al\" x=\"%d\" y=\"%d\"><title>",
                        k == nparams ? " metric" : "", x, x, PC_T, PC_H - PC_B, x, PC_T - 14);
        cli_html_esc(out, a->label, false);
        mlo__buf_appends(out, "</title>");
        cli_html_esc_cut(out, a->label, 18);
        mlo__buf_appends(out, "</text>");
        if (a->numeric && a->lo <= a->hi) {
            char l[32], h[32];
            fmt_tick(a->lo, l, sizeof l);
            fmt_tick(a->hi, h, sizeof h);
            mlo__buf_printf(out,
                            "<text class=\"tl\" x=\"%d\" y=\"%d\">%s</text>"
                            "<text class=\"tl\" x=\"%d\" y=\"%d\">%s%s</text>",
                            x + 4, PC_H - PC_B + 14, l, x + 4, PC_T - 2, h, a->lg ? " (log)" : "");
        } else if (!a->numeric) {
            size_t every = a->ncats > 12 ? (a->ncats + 11) / 12 : 1;
            for (size_t c = 0; c < a->ncats; c += every) {
                double y = a->ncats == 1 ? (PC_T + PC_H - PC_B) / 2.0
                                         : (PC_H - PC_B) - (PC_H - PC_B - PC_T) * (double)c /
                                                               (double)(a->ncats - 1);
                mlo__buf_printf(out, "<text class=\"tl\" x=\"%d\" y=\"%.1f\">", x + 4, y + 4);
                cli_html_esc_cut(out, a->cats[c], 14);
                mlo__buf_appends(out, "</text>");
            }
        }
        mlo__buf_appends(out, "</g>");
    }
    for (size_t i = 0; i < nruns; i++) {
        mlo__buf_printf(out, "<path class=\"s c%d\" data-run=\"", colors[i]);
        cli_html_esc(out, runs[i]->id, false);
        mlo__buf_appends(out, "\" d=\"");
        bool open = false;
        for (size_t k = 0; k < na; k++) {
            double y = axis_pos(&ax[k], runs[i], metric, k == nparams);
            if (isnan(y)) {
                open = false;
                continue;
            }
            mlo__buf_printf(out, "%c%d %.1f", open ? 'L' : 'M', PC_SIDE + PC_GAP * (int)k, y);
            open = true;
        }
        mlo__buf_appends(out, "\"><title>");
        cli_html_esc(out, cli_run_name(runs[i]), false);
        mlo__buf_appends(out, "</title></path>");
    }
    mlo__buf_appends(out, "</svg>\n");
    for (size_t k = 0; k < na; k++)
        xfree(ax[k].cats);
    xfree(ax);
}
