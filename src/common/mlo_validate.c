/*
 * mlo_validate.c - MLflow's rules for keys and values, applied at the log call
 * so one bad key never sinks a batch of good data on the server.
 *
 * Keys (metric, param, tag), as the server checks them (../shared/MLFLOW.md):
 *  - 1 to 250 characters (Unicode code points);
 *  - letters and digits of any script, '_', '-', '.', ' ', '/', ':'
 *    (Python's [/\w.\- :]); non-ASCII characters are classified with the
 *    C.UTF-8 locale's iswalnum, a close match to Python's str.isalnum;
 *  - a normalized relative path: posixpath.normpath(key) == key, and not ".",
 *    not starting with ".." or "/".  That is: no empty component (leading,
 *    doubled or trailing '/'), no "." or ".." component, no leading "..".
 * Values: valid UTF-8; params keep 6000 characters and tags 8000, longer
 * values are truncated on a character boundary, as the default server does.
 *
 * Threads: pure functions; the locale object is created once (pthread_once).
 */
#define _GNU_SOURCE
#include "mlo_validate.h"

#include "mlo.h"
#include "mlo_config.h"

#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <wctype.h>

/* 1 = allowed ASCII key character */
static const unsigned char key_ascii[128] = {
    [' '] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1, [':'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1,
    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,
    ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static pthread_once_t loc_once = PTHREAD_ONCE_INIT;
static locale_t utf8_loc;

static void loc_init(void) {
    utf8_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decodes one UTF-8 sequence at s (n bytes left).  Returns its length and
 * the code point in *cp, or 0 when malformed (overlong, surrogate, > U+10FFFF,
 * truncated). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        uint32_t v = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))
            return 0;
        *cp = v;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        uint32_t v =
            ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
        if (v < 0x10000 || v > 0x10FFFF)
            return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

int mlo__validate_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_next(p + i, n - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

int mlo__validate_key(const char *key, size_t *len_out) {
    const unsigned char *p = (const unsigned char *)key;
    size_t i = 0, chars = 0;
    size_t comp_start = 0; /* byte offset where the current path component starts */
    int non_ascii = 0;
    for (;;) {
        unsigned c = p[i];
        if (c == '/' || c == 0) {
            size_t clen = i - comp_start;
            /* empty component: leading '/', "//", trailing '/', or empty key */
            if (clen == 0)
                return MLO_ERR_INVALID_KEY;
            if (p[comp_start] == '.' && (clen == 1 || (clen == 2 && p[comp_start + 1] == '.')))
                return MLO_ERR_INVALID_KEY;
            if (c == 0)
                break;
            comp_start = i + 1;
            i++;
            chars++;
            continue;
        }
        if (c < 0x80) {
            if (!key_ascii[c])
                return MLO_ERR_INVALID_KEY;
            i++;
        } else {
            uint32_t cp;
            size_t k = utf8_next(p + i, 4, &cp); /* NUL stops a truncated sequence */
            if (!k)
                return MLO_ERR_INVALID_UTF8;
            if (!non_ascii) {
                pthread_once(&loc_once, loc_init);
                non_ascii = 1;
            }
            /* without the locale, leave the decision to the server */
            if (utf8_loc && !iswalnum_l((wint_t)cp, utf8_loc))
                return MLO_ERR_INVALID_KEY;
            i += k;
        }
        if (++chars > MLO_MAX_KEY_CHARS)
            return MLO_ERR_INVALID_KEY;
    }
    if (chars > MLO_MAX_KEY_CHARS)
        return MLO_ERR_INVALID_KEY;
    /* posixpath.normpath keeps "..x" but MLflow refuses keys starting with ".." */
    if (p[0] == '.' && p[1] == '.')
        return MLO_ERR_INVALID_KEY;
    *len_out = i;
    return MLO_OK;
}

int mlo__validate_value(const char *v, size_t max_chars, size_t *len_out, int *truncated) {
    const unsigned char *p = (const unsigned char *)v;
    size_t i = 0, chars = 0, keep = 0;
    *truncated = 0;
    while (p[i]) {
        size_t k = 1;
        if (p[i] >= 0x80) {
            uint32_t cp;
            k = utf8_next(p + i, 4, &cp);
            if (!k)
                return MLO_ERR_INVALID_UTF8;
        }
        i += k;
        if (++chars == max_chars)
            keep = i;
    }
    if (chars > max_chars) {
        *truncated = 1;
        *len_out = keep;
    } else {
        *len_out = i;
    }
    return MLO_OK;
}

int mlo__validate_artifact_path(const char *p, int allow_empty) {
    if (!p || !*p)
        return allow_empty ? MLO_OK : MLO_ERR_INVALID_PATH;
    size_t n = strlen(p);
    if (n > 4096 || p[0] == '/')
        return MLO_ERR_INVALID_PATH;
    if (!mlo__validate_utf8(p, n))
        return MLO_ERR_INVALID_UTF8;
    const char *seg = p;
    for (size_t i = 0;; i++) {
        char ch = p[i];
        /* a backslash (a separator elsewhere), control characters (the
         * server refuses them: a file named "a\nb" would only fail later) */
        if (ch == '\\' || (ch > 0 && ch < 0x20) || ch == 0x7f)
            return MLO_ERR_INVALID_PATH;
        if (ch == '/' || ch == '\0') {
            size_t len = (size_t)(p + i - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return MLO_ERR_INVALID_PATH; /* "a//b", "a/", "./a", "../a" */
            if (ch == '\0')
                break;
            seg = p + i + 1;
        }
    }
    return MLO_OK;
}
