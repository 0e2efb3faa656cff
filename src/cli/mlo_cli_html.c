/*
 * mlo_cli_html.c - escaping for the HTML the tool writes (mlo report).
 * Every string that comes from a run (names, ids, params, tags, keys,
 * dataset sources, artifact paths) goes through cli_html_esc: it is safe
 * in element text and in a double-quoted attribute, in HTML and in inline
 * SVG.  The page never puts run data inside <script> or <style>.
 *
 * Threads: one.
 */
#include "mlo_cli.h"

#include <string.h>

/* The length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if ((c & 0xE0) == 0xC0)
        n = 2, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0)
        n = 3, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0)
        n = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

static void esc(mlo_buf *out, const char *s, bool keep_ws, size_t max) {
    const unsigned char *p = (const unsigned char *)s;
    size_t cps = 0;
    while (*p) {
        if (cps++ == max) {
            mlo__buf_appends(out, "...");
            return;
        }
        unsigned c = *p;
        switch (c) {
        case '&':
            mlo__buf_appends(out, "&amp;");
            p++;
            continue;
        case '<':
            mlo__buf_appends(out, "&lt;");
            p++;
            continue;
        case '>':
            mlo__buf_appends(out, "&gt;");
            p++;
            continue;
        case '"':
            mlo__buf_appends(out, "&quot;");
            p++;
            continue;
        case '\'':
            mlo__buf_appends(out, "&#39;");
            p++;
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7F) {
            if (keep_ws && (c == '\n' || c == '\t'))
                mlo__buf_appendc(out, (char)c);
            else /* U+2400 + c (U+2421 for DEL): a visible symbol for it */
                mlo__buf_printf(out, "&#x%X;", c == 0x7F ? 0x2421u : 0x2400u + c);
            p++;
            continue;
        }
        size_t n = utf8_seq(p);
        if (n == 0) {
            mlo__buf_appends(out, "\xEF\xBF\xBD"); /* U+FFFD */
            p++;
            continue;
        }
        /* C1 controls (U+0080..U+009F) are shown as U+FFFD too */
        if (n == 2 && p[0] == 0xC2 && p[1] < 0xA0)
            mlo__buf_appends(out, "\xEF\xBF\xBD");
        else
            mlo__buf_append(out, p, n);
        p += n;
    }
}

void cli_html_esc(mlo_buf *out, const char *s, bool keep_ws) {
    esc(out, s ? s : "", keep_ws, (size_t)-1);
}

void cli_html_esc_cut(mlo_buf *out, const char *s, size_t max) {
    esc(out, s ? s : "", false, max);
}
