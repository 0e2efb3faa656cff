/*
 * mlo_cli_json.c - JSON in the `mlo` tool.  Reading: a member of a
 * dataset's source ({"uri": "s3://..."}); input is untrusted (it comes from
 * the store), anything unexpected gives "absent", nesting is bounded.
 * Writing: the --json documents of ls, show and gate (their fields are in
 * the README): strings as valid UTF-8 (U+FFFD for invalid bytes), numbers
 * with the shortest decimal that reads back exactly, NaN and +-Infinity as
 * the strings MLflow uses, times as milliseconds and ISO 8601 (UTC).
 *
 * Threads: one.
 */
#include "mlo_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 64

typedef struct rd {
    const char *p;
} rd;

static void ws(rd *r) {
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(mlo_buf *b, unsigned cp) {
    if (cp < 0x80) {
        mlo__buf_appendc(b, (char)cp);
    } else if (cp < 0x800) {
        mlo__buf_appendc(b, (char)(0xC0 | (cp >> 6)));
        mlo__buf_appendc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        mlo__buf_appendc(b, (char)(0xE0 | (cp >> 12)));
        mlo__buf_appendc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        mlo__buf_appendc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        mlo__buf_appendc(b, (char)(0xF0 | (cp >> 18)));
        mlo__buf_appendc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        mlo__buf_appendc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        mlo__buf_appendc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* A string at r->p (on its opening quote), unescaped into out when out is
 * non-NULL.  0, or -1 when malformed. */
static int str(rd *r, mlo_buf *out) {
    if (*r->p != '"')
        return -1;
    r->p++;
    for (;;) {
        char c = *r->p;
        if (c == '\0' || (unsigned char)c < 0x20)
            return -1;
        r->p++;
        if (c == '"')
            return 0;
        if (c != '\\') {
            if (out)
                mlo__buf_appendc(out, c);
            continue;
        }
        char e = *r->p++;
        unsigned cp;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            cp = (unsigned char)e;
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (hex4(r->p, &cp) != 0)
                return -1;
            r->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (r->p[0] != '\\' || r->p[1] != 'u' || hex4(r->p + 2, &lo) != 0 || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return -1;
                r->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1;
            }
            if (cp == 0)
                return -1; /* no NUL inside a C string */
            break;
        default:
            return -1;
        }
        if (out)
            put_utf8(out, cp);
    }
}

static int skip_value(rd *r, int depth) {
    if (depth > MAX_DEPTH)
        return -1;
    ws(r);
    char c = *r->p;
    if (c == '"')
        return str(r, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        r->p++;
        ws(r);
        if (*r->p == close) {
            r->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                ws(r);
                if (str(r, NULL) != 0)
                    return -1;
                ws(r);
                if (*r->p++ != ':')
                    return -1;
            }
            if (skip_value(r, depth + 1) != 0)
                return -1;
            ws(r);
            if (*r->p == ',') {
                r->p++;
                continue;
            }
            if (*r->p++ != close)
                return -1;
            return 0;
        }
    }
    /* a number or a literal */
    const char *start = r->p;
    while (*r->p && strchr("+-.0123456789eEtrufalsn", *r->p))
        r->p++;
    return r->p > start ? 0 : -1;
}

char *cli_json_get_string(const char *json, const char *key) {
    if (!json)
        return NULL;
    rd r = {json};
    ws(&r);
    if (*r.p++ != '{')
        return NULL;
    ws(&r);
    if (*r.p == '}')
        return NULL;
    char *found = NULL;
    for (;;) {
        mlo_buf k = {0}, v = {0};
        ws(&r);
        if (str(&r, &k) != 0 || mlo__buf_appendc(&k, '\0') != 0) {
            mlo__buf_free(&k);
            break;
        }
        ws(&r);
        int ok = *r.p++ == ':';
        ws(&r);
        if (ok && *r.p == '"' && strcmp(k.data, key) == 0) {
            ok = str(&r, &v) == 0 && mlo__buf_appendc(&v, '\0') == 0;
            if (ok) {
                xfree(found);
                found = xstrdup(v.data); /* the last one, as most readers do */
            }
        } else if (ok) {
            ok = skip_value(&r, 1) == 0;
        }
        mlo__buf_free(&k);
        mlo__buf_free(&v);
        ws(&r);
        if (!ok || *r.p != ',')
            break;
        r.p++;
    }
    return found;
}

/* ---- writing ---- */

void cli_json_str(mlo_buf *b, const char *s) {
    if (!s) {
        mlo__buf_appends(b, "null");
        return;
    }
    mlo__buf_appendc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            mlo__buf_appendc(b, '\\');
            mlo__buf_appendc(b, (char)c);
            p++;
        } else if (c < 0x20 || c == 0x7F) {
            mlo__buf_printf(b, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            mlo__buf_appendc(b, (char)c);
            p++;
        } else {
            /* copy a valid UTF-8 sequence, else U+FFFD for the byte */
            size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            unsigned cp = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
            size_t i = 1;
            for (; n && i < n && (p[i] & 0xC0) == 0x80; i++)
                cp = (cp << 6) | (p[i] & 0x3F);
            bool ok = n && i == n &&
                      cp >= (n == 2   ? 0x80u
                             : n == 3 ? 0x800u
                                      : 0x10000u) &&
                      cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
            if (ok) {
                mlo__buf_append(b, p, n);
                p += n;
            } else {
                mlo__buf_appends(b, "\\ufffd");
                p++;
            }
        }
    }
    mlo__buf_appendc(b, '"');
}

void cli_json_num(mlo_buf *b, double v) {
    char s[40];
    cli_fmt_shortest(v, s, sizeof s);
    if (isfinite(v))
        mlo__buf_appends(b, s);
    else
        mlo__buf_printf(b, "\"%s\"", s); /* as MLflow writes them */
}

void cli_json_time(mlo_buf *b, const char *name, int64_t ms) {
    mlo__buf_printf(b, "\"%s_ms\":", name);
    if (ms <= 0) {
        mlo__buf_printf(b, "null,\"%s\":null", name);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char iso[64] = "";
    if (gmtime_r(&t, &tm))
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
    mlo__buf_printf(b, "%lld,\"%s\":\"%s.%03dZ\"", (long long)ms, name, iso, (int)(ms % 1000));
}

void cli_json_write(mlo_buf *b) {
    mlo__buf_appendc(b, '\n');
    fwrite(b->data, 1, b->len, stdout);
    mlo__buf_free(b);
}

void cli_json_run_fields(mlo_buf *b, const run *r) {
    mlo__buf_appends(b, "\"id\":");
    cli_json_str(b, r->id);
    mlo__buf_appends(b, ",\"server_id\":");
    cli_json_str(b, r->server_id);
    mlo__buf_appends(b, ",\"name\":");
    cli_json_str(b, r->name ? r->name : cli_kvs_get(&r->tags, "mlflow.runName"));
    mlo__buf_appends(b, ",\"experiment\":");
    cli_json_str(b, r->exp_name ? r->exp_name : r->exp_id || !r->started ? NULL : "Default");
    mlo__buf_appends(b, ",\"experiment_id\":");
    cli_json_str(b, r->exp_id);
    mlo__buf_printf(b, ",\"status\":\"%s\",", cli_status_name(r->status, r->ended));
    cli_json_time(b, "start_time", r->start);
    mlo__buf_appendc(b, ',');
    cli_json_time(b, "end_time", r->ended ? r->end : 0);
    mlo__buf_appends(b, ",\"parent_id\":");
    cli_json_str(b, r->parent);
}

void cli_json_point(mlo_buf *b, const point *p) {
    mlo__buf_printf(b, "{\"step\":%lld,", (long long)p->step);
    cli_json_time(b, "timestamp", p->ts);
    mlo__buf_appends(b, ",\"value\":");
    cli_json_num(b, p->v);
    mlo__buf_appendc(b, '}');
}
