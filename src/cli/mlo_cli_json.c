/*
 * mlo_cli_json.c - the little JSON the `mlo` tool reads: a member of a
 * dataset's source ({"uri": "s3://..."}).  Input is untrusted (it comes from
 * the store); anything unexpected gives "absent".  Nesting is bounded.
 *
 * Threads: one.
 */
#include "mlo_cli.h"

#include <stdlib.h>
#include <string.h>

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
