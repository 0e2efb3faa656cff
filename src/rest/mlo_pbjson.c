/* mlo_pbjson: protobuf-c message <-> MLflow JSON (see mlo_pbjson.h for the
 * mapping).
 *
 * Owns nothing long-lived: no globals, no caches; every call works on the
 * caller's buffers, so any thread may call it.
 *
 * Encoder: walks ProtobufCMessageDescriptor.fields (sorted by field number,
 * so output order is field-number order) and writes straight into the
 * mlo_buf: one reserve per scalar, no allocation per field. It is on the
 * shipper's hot path (LogBatch bodies of 1000 metrics), hence the hand-made
 * integer formatting and the Grisu2 double formatting below instead of
 * snprintf: "%.17g" costs ~135 ns a value here (Grisu2 ~50 ns), is
 * locale-dependent (a decimal comma after setlocale) and not shortest;
 * "%.15g" + strtod check + "%.17g" fallback measured ~340 ns, as most real
 * metric values need 16-17 digits. A LogBatch of 1000 metrics encodes at
 * ~45-90 ns per metric. Invariant while encoding: b->len only ever moves
 * past fully written bytes; the terminating NUL is restored before
 * returning.
 *
 * Decoder: jansson parses the whole text (bounded depth inside jansson), then
 * dec_message() walks the *descriptor* fields and looks each one up in the
 * JSON object by its proto name, then by its lowerCamelCase name. So each
 * field is set at most once and unknown members are ignored for free. The
 * message under construction is valid for protobuf_c_message_free_unpacked()
 * at every step (pointers are stored only once complete, repeated counts are
 * bumped per finished element), so any error just frees it. Input is
 * untrusted (server responses): every type is checked, every size overflow
 * checked, recursion bounded by MLO_PBJSON_MAX_DEPTH.
 */
#include "mlo_pbjson.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ------------------------------------------------------------------------ */
/* Number formatting                                                        */
/* ------------------------------------------------------------------------ */

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static unsigned count_digits64(uint64_t v) {
    unsigned n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Writes v in decimal at p, returns the end. At most 20 bytes. Digits go
 * straight to their place, two at a time. */
static char *put_u64(char *p, uint64_t v) {
    unsigned n = count_digits64(v);
    char *end = p + n, *t = end;
    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;
        v /= 100;
        t -= 2;
        t[0] = digit_pairs[i];
        t[1] = digit_pairs[i + 1];
    }
    if (v >= 10) {
        unsigned i = (unsigned)v * 2;
        t[-2] = digit_pairs[i];
        t[-1] = digit_pairs[i + 1];
    } else {
        t[-1] = (char)('0' + v);
    }
    return end;
}

/* At most 20 bytes ("-9223372036854775808"). */
static char *put_i64(char *p, int64_t v) {
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* Grisu2 (Florian Loitsch, "Printing Floating-Point Numbers Quickly and
 * Accurately with Integers", PLDI 2010), written here for IEEE binary64 and
 * binary32. It always produces digits that read back as exactly the input
 * (they lie strictly inside the input's rounding interval, narrowed by one
 * unit of the 64-bit arithmetic); in rare cases (~0.1%) the result is one
 * digit longer than the shortest. Checked against strtod on 20M random
 * doubles and on every finite float (tests/test_pbjson.c keeps a sample). */

typedef struct diyfp {
    uint64_t f;
    int e;
} diyfp;

/* 10^k for k = -348, -340, ..., 340 as normalized 64-bit significand and
 * binary exponent (rounded to nearest), generated with exact rational
 * arithmetic. */
static const uint64_t pow10_f[87] = {
    0xfa8fd5a0081c0288u, 0xbaaee17fa23ebf76u, 0x8b16fb203055ac76u, 0xcf42894a5dce35eau,
    0x9a6bb0aa55653b2du, 0xe61acf033d1a45dfu, 0xab70fe17c79ac6cau, 0xff77b1fcbebcdc4fu,
    0xbe5691ef416bd60cu, 0x8dd01fad907ffc3cu, 0xd3515c2831559a83u, 0x9d71ac8fada6c9b5u,
    0xea9c227723ee8bcbu, 0xaecc49914078536du, 0x823c12795db6ce57u, 0xc21094364dfb5637u,
    0x9096ea6f3848984fu, 0xd77485cb25823ac7u, 0xa086cfcd97bf97f4u, 0xef340a98172aace5u,
    0xb23867fb2a35b28eu, 0x84c8d4dfd2c63f3bu, 0xc5dd44271ad3cdbau, 0x936b9fcebb25c996u,
    0xdbac6c247d62a584u, 0xa3ab66580d5fdaf6u, 0xf3e2f893dec3f126u, 0xb5b5ada8aaff80b8u,
    0x87625f056c7c4a8bu, 0xc9bcff6034c13053u, 0x964e858c91ba2655u, 0xdff9772470297ebdu,
    0xa6dfbd9fb8e5b88fu, 0xf8a95fcf88747d94u, 0xb94470938fa89bcfu, 0x8a08f0f8bf0f156bu,
    0xcdb02555653131b6u, 0x993fe2c6d07b7facu, 0xe45c10c42a2b3b06u, 0xaa242499697392d3u,
    0xfd87b5f28300ca0eu, 0xbce5086492111aebu, 0x8cbccc096f5088ccu, 0xd1b71758e219652cu,
    0x9c40000000000000u, 0xe8d4a51000000000u, 0xad78ebc5ac620000u, 0x813f3978f8940984u,
    0xc097ce7bc90715b3u, 0x8f7e32ce7bea5c70u, 0xd5d238a4abe98068u, 0x9f4f2726179a2245u,
    0xed63a231d4c4fb27u, 0xb0de65388cc8ada8u, 0x83c7088e1aab65dbu, 0xc45d1df942711d9au,
    0x924d692ca61be758u, 0xda01ee641a708deau, 0xa26da3999aef774au, 0xf209787bb47d6b85u,
    0xb454e4a179dd1877u, 0x865b86925b9bc5c2u, 0xc83553c5c8965d3du, 0x952ab45cfa97a0b3u,
    0xde469fbd99a05fe3u, 0xa59bc234db398c25u, 0xf6c69a72a3989f5cu, 0xb7dcbf5354e9beceu,
    0x88fcf317f22241e2u, 0xcc20ce9bd35c78a5u, 0x98165af37b2153dfu, 0xe2a0b5dc971f303au,
    0xa8d9d1535ce3b396u, 0xfb9b7cd9a4a7443cu, 0xbb764c4ca7a44410u, 0x8bab8eefb6409c1au,
    0xd01fef10a657842cu, 0x9b10a4e5e9913129u, 0xe7109bfba19c0c9du, 0xac2820d9623bf429u,
    0x80444b5e7aa7cf85u, 0xbf21e44003acdd2du, 0x8e679c2f5e44ff8fu, 0xd433179d9c8cb841u,
    0x9e19db92b4e31ba9u, 0xeb96bf6ebadf77d9u, 0xaf87023b9bf0ee6bu,
};
static const int16_t pow10_e[87] = {
    -1220, -1193, -1166, -1140, -1113, -1087, -1060, -1034, -1007, -980, -954, -927, -901,
    -874,  -847,  -821,  -794,  -768,  -741,  -715,  -688,  -661,  -635, -608, -582, -555,
    -529,  -502,  -475,  -449,  -422,  -396,  -369,  -343,  -316,  -289, -263, -236, -210,
    -183,  -157,  -130,  -103,  -77,   -50,   -24,   3,     30,    56,   83,   109,  136,
    162,   189,   216,   242,   269,   295,   322,   348,   375,   402,  428,  455,  481,
    508,   534,   561,   588,   614,   641,   667,   694,   720,   747,  774,  800,  827,
    853,   880,   907,   933,   960,   986,   1013,  1039,  1066,
};

static diyfp diy_mul(diyfp a, diyfp b) {
#ifdef __SIZEOF_INT128__
    __extension__ typedef unsigned __int128 u128;
    u128 p = (u128)a.f * b.f;
    uint64_t h = (uint64_t)(p >> 64);
    uint64_t l = (uint64_t)p;
    if (l & ((uint64_t)1 << 63))
        h++; /* round; cannot overflow: h <= 2^64 - 2 */
#else
    const uint64_t M32 = 0xFFFFFFFFu;
    uint64_t a_ = a.f >> 32, b_ = a.f & M32, c_ = b.f >> 32, d_ = b.f & M32;
    uint64_t ac = a_ * c_, bc = b_ * c_, ad = a_ * d_, bd = b_ * d_;
    uint64_t tmp = (bd >> 32) + (ad & M32) + (bc & M32);
    tmp += (uint64_t)1 << 31; /* round */
    uint64_t h = ac + (ad >> 32) + (bc >> 32) + (tmp >> 32);
#endif
    diyfp r = {h, a.e + b.e + 64};
    return r;
}

static int clz64(uint64_t x) {
    return __builtin_clzll(x);
}

static unsigned count_digits32(uint32_t n) {
    if (n < 10)
        return 1;
    if (n < 100)
        return 2;
    if (n < 1000)
        return 3;
    if (n < 10000)
        return 4;
    if (n < 100000)
        return 5;
    if (n < 1000000)
        return 6;
    if (n < 10000000)
        return 7;
    if (n < 100000000)
        return 8;
    if (n < 1000000000)
        return 9;
    return 10;
}

static const uint64_t pow10_u64[20] = {
    1u,
    10u,
    100u,
    1000u,
    10000u,
    100000u,
    1000000u,
    10000000u,
    100000000u,
    1000000000u,
    10000000000u,
    100000000000u,
    1000000000000u,
    10000000000000u,
    100000000000000u,
    1000000000000000u,
    10000000000000000u,
    100000000000000000u,
    1000000000000000000u,
    10000000000000000000u,
};

static void grisu_round(char *buf, int len, uint64_t delta, uint64_t rest, uint64_t ten_kappa,
                        uint64_t wp_w) {
    while (rest < wp_w && delta - rest >= ten_kappa &&
           (rest + ten_kappa < wp_w || /* closer */
            wp_w - rest > rest + ten_kappa - wp_w)) {
        buf[len - 1]--;
        rest += ten_kappa;
    }
}

static void digit_gen(diyfp w, diyfp mp, uint64_t delta, char *buf, int *len, int *K) {
    const int sh = -mp.e; /* in [32, 60] thanks to the cached power choice */
    const uint64_t one = (uint64_t)1 << sh;
    const uint64_t wp_w = mp.f - w.f;
    uint32_t p1 = (uint32_t)(mp.f >> sh);
    uint64_t p2 = mp.f & (one - 1);
    int kappa = (int)count_digits32(p1);
    int n = 0;

    while (kappa > 0) {
        uint32_t d;
        /* constant divisors: the compiler turns them into multiplications */
        switch (kappa) {
        case 10:
            d = p1 / 1000000000;
            p1 %= 1000000000;
            break;
        case 9:
            d = p1 / 100000000;
            p1 %= 100000000;
            break;
        case 8:
            d = p1 / 10000000;
            p1 %= 10000000;
            break;
        case 7:
            d = p1 / 1000000;
            p1 %= 1000000;
            break;
        case 6:
            d = p1 / 100000;
            p1 %= 100000;
            break;
        case 5:
            d = p1 / 10000;
            p1 %= 10000;
            break;
        case 4:
            d = p1 / 1000;
            p1 %= 1000;
            break;
        case 3:
            d = p1 / 100;
            p1 %= 100;
            break;
        case 2:
            d = p1 / 10;
            p1 %= 10;
            break;
        default:
            d = p1;
            p1 = 0;
            break;
        }
        if (d || n)
            buf[n++] = (char)('0' + d);
        kappa--;
        uint64_t rest = ((uint64_t)p1 << sh) + p2;
        if (rest <= delta) {
            *K += kappa;
            *len = n;
            grisu_round(buf, n, delta, rest, pow10_u64[kappa] << sh, wp_w);
            return;
        }
    }
    for (;;) {
        p2 *= 10;
        delta *= 10;
        char d = (char)(p2 >> sh);
        if (d || n)
            buf[n++] = (char)('0' + d);
        p2 &= one - 1;
        kappa--;
        if (p2 < delta) {
            int idx = -kappa;
            *K += kappa;
            *len = n;
            grisu_round(buf, n, delta, p2, one, idx < 20 ? wp_w * pow10_u64[idx] : 0);
            return;
        }
    }
}

/* v = f * 2^e (0 < f < 2^53). The digits are chosen strictly inside
 * (mi, pl) where mi = mif * 2^be and pl = plf * 2^be are the rounding
 * boundaries of v (see put_double / put_float), and pl's normalized exponent
 * equals v's. Writes the digits (no NUL) and returns their count; value =
 * digits * 10^K. At most 17 digits. */
static int grisu2(uint64_t f, int e, uint64_t plf, uint64_t mif, int be, char *buf, int *K) {
    int s = clz64(plf);
    diyfp pl = {plf << s, be - s};
    diyfp mi = {mif << s, be - s};

    diyfp v = {f, e};
    s = clz64(v.f);
    v.f <<= s;
    v.e -= s;

    /* Cached power c = 10^-K such that the products' exponents land in
     * [-60, -32]. */
    double dk = (-61 - pl.e) * 0.30102999566398114 + 347;
    int k = (int)dk;
    if (dk - k > 0.0)
        k++;
    unsigned idx = (unsigned)((k >> 3) + 1);
    *K = -(-348 + (int)(idx << 3));
    diyfp c = {pow10_f[idx], pow10_e[idx]};

    diyfp w = diy_mul(v, c);
    diyfp wp = diy_mul(pl, c);
    diyfp wm = diy_mul(mi, c);
    wm.f++;
    wp.f--;
    int len;
    digit_gen(w, wp, wp.f - wm.f, buf, &len, K);
    return len;
}

/* Lays out digits * 10^K as a JSON number at p (no sign), returns the end.
 * Plain notation for 1e-6 <= v < 1e15 (so integers stay below 2^63 and every
 * JSON parser reads them), exponent notation otherwise: 1e21, 1.5e-7. */
static char *layout(char *p, const char *dig, int len, int K) {
    int n = len + K; /* 10^(n-1) <= v < 10^n */
    if (K >= 0 && n <= 15) {
        memcpy(p, dig, (size_t)len);
        p += len;
        memset(p, '0', (size_t)K);
        return p + K;
    }
    if (n > 0 && n <= 15) { /* K < 0: point inside the digits */
        memcpy(p, dig, (size_t)n);
        p += n;
        *p++ = '.';
        memcpy(p, dig + n, (size_t)(len - n));
        return p + (len - n);
    }
    if (n > -6 && n <= 0) {
        *p++ = '0';
        *p++ = '.';
        memset(p, '0', (size_t)-n);
        p += -n;
        memcpy(p, dig, (size_t)len);
        return p + len;
    }
    *p++ = dig[0];
    if (len > 1) {
        *p++ = '.';
        memcpy(p, dig + 1, (size_t)(len - 1));
        p += len - 1;
    }
    *p++ = 'e';
    return put_i64(p, n - 1);
}

static char *put_nonfinite(char *p, double v) {
    const char *s = isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Integral values below 2^53 in magnitude: plain integer, the common case
 * for counters and steps, and faster than Grisu. Returns NULL if v is not
 * such a value. -0.0 is excluded (written "-0.0" to keep its sign). */
static char *put_small_int(char *p, double v) {
    if (v >= -9007199254740992.0 && v <= 9007199254740992.0) {
        int64_t i = (int64_t)v;
        if ((double)i == v && (i != 0 || !signbit(v)))
            return put_i64(p, i);
    }
    return NULL;
}

/* At most MLO_PBJSON_DTOA_MAX - 1 bytes. */
static char *put_double(char *p, double v) {
    char *q;
    if (!isfinite(v))
        return put_nonfinite(p, v);
    if ((q = put_small_int(p, v)) != NULL)
        return q;
    if (v == 0) { /* -0.0 */
        memcpy(p, "-0.0", 4);
        return p + 4;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (bits >> 63) {
        *p++ = '-';
    }
    int be = (int)((bits >> 52) & 0x7FF);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    uint64_t f;
    int e;
    if (be) {
        f = frac | ((uint64_t)1 << 52);
        e = be - 1075;
    } else {
        f = frac;
        e = -1074;
    }
    /* Boundaries: halfway to the neighbours, at exponent e - 2. The lower
     * neighbour is half as far when v is a power of two above the smallest
     * normal. */
    char dig[24];
    int K;
    bool lower_closer = frac == 0 && be > 1;
    int len = grisu2(f, e, (f << 2) + 2, (f << 2) - (lower_closer ? 1 : 2), e - 2, dig, &K);
    return layout(p, dig, len, K);
}

static char *put_float(char *p, float v) {
    char *q;
    if (!isfinite(v))
        return put_nonfinite(p, (double)v);
    if ((q = put_small_int(p, (double)v)) != NULL)
        return q;
    if (v == 0) {
        memcpy(p, "-0.0", 4);
        return p + 4;
    }
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (bits >> 31)
        *p++ = '-';
    int be = (int)((bits >> 23) & 0xFF);
    uint32_t frac = bits & ((1u << 23) - 1);
    uint64_t f;
    int e;
    if (be) {
        f = frac | (1u << 23);
        e = be - 150;
    } else {
        f = frac;
        e = -149;
    }
    /* A reader gets the decimal as a double first, then rounds that to
     * float; the first rounding moves it by up to 2^-29 float ulps, which
     * could land exactly on a float rounding boundary. So the interval is
     * narrowed by 2^-28 ulp on each side (boundaries at exponent e - 30). */
    char dig[24];
    int K;
    bool lower_closer = frac == 0 && be > 1;
    const uint64_t half = (uint64_t)1 << 29, tiny = 4;
    int len = grisu2(f, e, (f << 30) + half - tiny,
                     (f << 30) - (lower_closer ? half / 2 : half) + tiny, e - 30, dig, &K);
    return layout(p, dig, len, K);
}

size_t mlo__pbjson_dtoa(double v, char *out) {
    return (size_t)(put_double(out, v) - out);
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

/* Room for any scalar token (number, bool, enum number) with slack. */
#define SCALAR_MAX 40
/* Field names up to this length take the fast path in enc_message. */
#define KEY_FAST 64

#define MEMBER(T, msg, off) (*(T *)((char *)(msg) + (off)))
#define CMEMBER(T, msg, off) (*(const T *)((const char *)(msg) + (off)))

/* 0: copy as is; 1: escape; 2: start of a multi-byte UTF-8 sequence;
 * 3: the terminating NUL */
// clang-format off
static const uint8_t str_class[256] = {
    3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x5C '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
// clang-format on

/* Length of the well-formed UTF-8 sequence at s (NUL-terminated), or 0 if
 * it is not one (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * Reads a byte only after the previous one proved a continuation byte, so
 * never past the NUL. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* put_string keeps STR_ROOM bytes of output room ahead and re-checks after
 * every STR_STEP input bytes: one input byte writes at most 6 (\u00XX), a
 * k-byte UTF-8 sequence k, plus the two quotes. */
#define STR_STEP 256
#define STR_ROOM (6 * STR_STEP + 16)

/* Writes the NUL-terminated s as a JSON string, in one pass (no strlen).
 * Plain bytes are copied one at a time: keys and values on the hot path are
 * short, and a libc call per run costs more. Invalid UTF-8 bytes become
 * U+FFFD so the body is always valid JSON (the server would refuse it). */
static int put_string(mlo_buf *b, const char *str) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    if (mlo__buf_reserve(b, STR_ROOM))
        return -1;
    char *p = b->data + b->len;
    *p++ = '"';
    long budget = STR_STEP;
    for (;;) {
        unsigned char c = *s;
        switch (str_class[c]) {
        case 0:
            *p++ = (char)c;
            s++;
            budget--;
            break;
        case 1:
            *p++ = '\\';
            switch (c) {
            case '"':
                *p++ = '"';
                break;
            case '\\':
                *p++ = '\\';
                break;
            case '\b':
                *p++ = 'b';
                break;
            case '\f':
                *p++ = 'f';
                break;
            case '\n':
                *p++ = 'n';
                break;
            case '\r':
                *p++ = 'r';
                break;
            case '\t':
                *p++ = 't';
                break;
            default:
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 15];
            }
            s++;
            budget--;
            break;
        case 2: {
            size_t l = utf8_seq(s);
            if (l) {
                for (size_t i = 0; i < l; i++)
                    *p++ = (char)s[i];
                s += l;
                budget -= (long)l;
            } else { /* invalid byte */
                *p++ = (char)0xEF;
                *p++ = (char)0xBF;
                *p++ = (char)0xBD;
                s++;
                budget--;
            }
            break;
        }
        default: /* NUL */
            *p++ = '"';
            b->len = (size_t)(p - b->data);
            return 0;
        }
        if (budget <= 0) {
            b->len = (size_t)(p - b->data);
            if (mlo__buf_reserve(b, STR_ROOM))
                return -1;
            p = b->data + b->len;
            budget = STR_STEP;
        }
    }
}

static int put_base64(mlo_buf *b, const uint8_t *d, size_t n) {
    if (n > (SIZE_MAX - 8) / 4 * 3 - 3)
        return -1;
    return mlo__buf_appendc(b, '"') || mlo__buf_base64(b, d, n) || mlo__buf_appendc(b, '"') ? -1
                                                                                            : 0;
}

static size_t elem_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int); /* protobuf-c forces enums to int size */
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* A map field (map<K, V> in the .proto) is, to protobuf-c, a repeated
 * message "...Entry" with fields key = 1 and value = 2; in JSON it is an
 * object {"k": v, ...}.  protobuf-c keeps no map flag, so recognise the
 * shape. */
static bool is_map_field(const ProtobufCFieldDescriptor *f) {
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (!e || e->n_fields != 2 || !e->name)
        return false;
    size_t n = strlen(e->name);
    return n > 5 && !strcmp(e->name + n - 5, "Entry") && e->fields[0].id == 1 &&
           e->fields[1].id == 2 && !strcmp(e->fields[0].name, "key") &&
           !strcmp(e->fields[1].name, "value");
}

static int enc_message(const ProtobufCMessage *m, mlo_buf *b, int depth);

/* Writes one value of field f stored at v. */
static int enc_value(const ProtobufCFieldDescriptor *f, const void *v, mlo_buf *b, int depth) {
    char *p;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        return put_string(b, s ? s : "");
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
        if (!sub) /* NULL in a repeated field: caller bug, stay valid */
            return mlo__buf_append(b, "{}", 2);
        return enc_message(sub, b, depth + 1);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = v;
        return put_base64(b, bd->data, bd->data ? bd->len : 0);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int ev = *(const int *)v;
        const ProtobufCEnumValue *en = protobuf_c_enum_descriptor_get_value(f->descriptor, ev);
        if (en) {
            size_t n = strlen(en->name);
            if (mlo__buf_reserve(b, n + 2))
                return -1;
            p = b->data + b->len;
            *p++ = '"';
            memcpy(p, en->name, n);
            p += n;
            *p++ = '"';
            b->len = (size_t)(p - b->data);
            return 0;
        }
        if (mlo__buf_reserve(b, SCALAR_MAX))
            return -1;
        p = put_i64(b->data + b->len, ev);
        break;
    }
    default:
        if (mlo__buf_reserve(b, SCALAR_MAX))
            return -1;
        p = b->data + b->len;
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            p = put_i64(p, *(const int32_t *)v);
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            p = put_u64(p, *(const uint32_t *)v);
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            p = put_i64(p, *(const int64_t *)v);
            break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64: {
            /* Above INT64_MAX as a string: parsers that hold integers in
             * int64 (jansson included) refuse such a number outright. */
            uint64_t u = *(const uint64_t *)v;
            if (u > (uint64_t)INT64_MAX) {
                *p++ = '"';
                p = put_u64(p, u);
                *p++ = '"';
            } else {
                p = put_u64(p, u);
            }
            break;
        }
        case PROTOBUF_C_TYPE_FLOAT:
            p = put_float(p, *(const float *)v);
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            p = put_double(p, *(const double *)v);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            if (*(const protobuf_c_boolean *)v) {
                memcpy(p, "true", 4);
                p += 4;
            } else {
                memcpy(p, "false", 5);
                p += 5;
            }
            break;
        default:
            return -1; /* unknown type from a newer protobuf-c */
        }
        break;
    }
    b->len = (size_t)(p - b->data);
    return 0;
}

/* proto3 (LABEL_NONE) presence: the value differs from the type's zero. */
static bool is_zeroish(const ProtobufCFieldDescriptor *f, const void *v) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)v == NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)v)->len == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)v == 0 && !signbit(*(const float *)v);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)v == 0 && !signbit(*(const double *)v);
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)v == 0;
    default: {
        size_t n = elem_size(f->type);
        return n == 8 ? *(const uint64_t *)v == 0 : *(const uint32_t *)v == 0;
    }
    }
}

/* Whether field f of message m is to be written; for repeated fields sets
 * *count. Mirrors protobuf-c's own packing rules. */
static bool field_present(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                          size_t *count) {
    const void *v = (const char *)m + f->offset;
    bool ptr_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (CMEMBER(uint32_t, m, f->quantifier_offset) != f->id)
            return false;
        return !ptr_type ||
               (*(const void *const *)v != NULL && *(const void *const *)v != f->default_value);
    }
    switch (f->label) {
    case PROTOBUF_C_LABEL_REPEATED:
        *count = CMEMBER(size_t, m, f->quantifier_offset);
        return *count > 0 && *(const void *const *)v != NULL;
    case PROTOBUF_C_LABEL_REQUIRED:
        return !ptr_type || *(const void *const *)v != NULL;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (ptr_type)
            return *(const void *const *)v != NULL && *(const void *const *)v != f->default_value;
        return CMEMBER(protobuf_c_boolean, m, f->quantifier_offset) != 0;
    case PROTOBUF_C_LABEL_NONE:
    default:
        return !is_zeroish(f, v);
    }
}

static int enc_message(const ProtobufCMessage *m, mlo_buf *b, int depth) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > MLO_PBJSON_MAX_DEPTH || !d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return -1;
    if (mlo__buf_appendc(b, '{'))
        return -1;
    bool first = true;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t count = 0;
        if (!field_present(f, m, &count))
            continue;
        /* ,"name": -- names are identifiers, no escaping. Copied a byte at
         * a time (no strlen + memcpy calls); names longer than KEY_FAST go
         * the slow way. */
        if (mlo__buf_reserve(b, KEY_FAST + 4 + SCALAR_MAX))
            return -1;
        char *p = b->data + b->len;
        if (!first)
            *p++ = ',';
        first = false;
        *p++ = '"';
        const char *nm = f->name;
        for (int room = KEY_FAST; *nm && room; room--)
            *p++ = *nm++;
        if (*nm) {
            size_t rest = strlen(nm);
            b->len = (size_t)(p - b->data);
            if (mlo__buf_reserve(b, rest + 2 + SCALAR_MAX))
                return -1;
            p = b->data + b->len;
            memcpy(p, nm, rest);
            p += rest;
        }
        *p++ = '"';
        *p++ = ':';
        b->len = (size_t)(p - b->data);

        const char *v = (const char *)m + f->offset;
        if (is_map_field(f)) {
            /* {"key": value, ...}: keys are JSON strings whatever their type */
            const ProtobufCMessage *const *ents = *(const ProtobufCMessage *const *const *)v;
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            const ProtobufCFieldDescriptor *kf = &ed->fields[0];
            const ProtobufCFieldDescriptor *vf = &ed->fields[1];
            if (mlo__buf_appendc(b, '{'))
                return -1;
            for (size_t j = 0; j < count; j++) {
                const char *ent = (const char *)ents[j];
                if (j && mlo__buf_appendc(b, ','))
                    return -1;
                bool quote = kf->type != PROTOBUF_C_TYPE_STRING;
                if ((quote && mlo__buf_appendc(b, '"')) ||
                    enc_value(kf, ent + kf->offset, b, depth + 1) ||
                    (quote && mlo__buf_appendc(b, '"')) || mlo__buf_appendc(b, ':') ||
                    enc_value(vf, ent + vf->offset, b, depth + 1))
                    return -1;
            }
            if (mlo__buf_appendc(b, '}'))
                return -1;
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const char *arr = *(const char *const *)v;
            size_t esz = elem_size(f->type);
            if (mlo__buf_appendc(b, '['))
                return -1;
            for (size_t j = 0; j < count; j++) {
                if (j && mlo__buf_appendc(b, ','))
                    return -1;
                if (enc_value(f, arr + j * esz, b, depth))
                    return -1;
            }
            if (mlo__buf_appendc(b, ']'))
                return -1;
        } else if (enc_value(f, v, b, depth)) {
            return -1;
        }
    }
    return mlo__buf_appendc(b, '}');
}

int mlo__pbjson_encode(const ProtobufCMessage *msg, mlo_buf *out) {
    if (!msg || !out)
        return -1;
    size_t start = out->len;
    if (enc_message(msg, out, 0) != 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return -1;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct dctx {
    char *err;
    size_t errlen;
    bool failed; /* the first (innermost) error wins */
    bool oom;    /* an allocation failed (not the JSON's fault) */
} dctx;

static int fail(dctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(dctx *c, const char *fmt, ...) {
    if (!c->failed) {
        c->failed = true;
        if (c->err && c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err, c->errlen, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static int ffail(dctx *c, const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                 const char *what) {
    return fail(c, "%s.%s: %s", d->name, f->name, what);
}

static int oom(dctx *c, const ProtobufCFieldDescriptor *f, const char *dname) {
    c->oom = true;
    return f ? fail(c, "%s.%s: out of memory", dname, f->name)
             : fail(c, "%s: out of memory", dname);
}

/* "-"? digits, nothing else; magnitude into *mag. 0 ok, -1 bad/overflow. */
static int parse_dec(const char *s, size_t n, bool *neg, uint64_t *mag) {
    size_t i = 0;
    *neg = false;
    if (i < n && s[i] == '-') {
        *neg = true;
        i++;
    }
    if (i >= n)
        return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *mag = v;
    return 0;
}

/* Signed integer in [lo, hi] from a JSON integer, an integral real, or a
 * decimal string. */
static int get_int(const json_t *j, int64_t lo, int64_t hi, int64_t *out) {
    int64_t v;
    if (json_is_integer(j)) {
        v = (int64_t)json_integer_value(j);
    } else if (json_is_real(j)) {
        double r = json_real_value(j);
        if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0))
            return -1;
        v = (int64_t)r;
        if ((double)v != r)
            return -1;
    } else if (json_is_string(j)) {
        bool neg;
        uint64_t mag;
        if (parse_dec(json_string_value(j), json_string_length(j), &neg, &mag))
            return -1;
        if (neg) {
            if (mag > (uint64_t)INT64_MAX + 1)
                return -1;
            v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        } else {
            if (mag > (uint64_t)INT64_MAX)
                return -1;
            v = (int64_t)mag;
        }
    } else {
        return -1;
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int get_uint(const json_t *j, uint64_t hi, uint64_t *out) {
    uint64_t v;
    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        if (i < 0)
            return -1;
        v = (uint64_t)i;
    } else if (json_is_real(j)) {
        double r = json_real_value(j);
        if (!(r >= 0 && r < 18446744073709551616.0))
            return -1;
        v = (uint64_t)r;
        if ((double)v != r)
            return -1;
    } else if (json_is_string(j)) {
        bool neg;
        if (parse_dec(json_string_value(j), json_string_length(j), &neg, &v))
            return -1;
        if (neg && v != 0)
            return -1;
    } else {
        return -1;
    }
    if (v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Whether s is exactly a JSON number token. */
static bool is_json_number(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == n;
}

static int get_double(const json_t *j, double *out) {
    if (json_is_real(j)) {
        *out = json_real_value(j);
        return 0;
    }
    if (json_is_integer(j)) {
        *out = (double)json_integer_value(j);
        return 0;
    }
    if (!json_is_string(j))
        return -1;
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n == 3 && memcmp(s, "NaN", 3) == 0) {
        *out = NAN;
        return 0;
    }
    if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
        *out = INFINITY;
        return 0;
    }
    if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (!is_json_number(s, n))
        return -1;
    /* A numeric string ("1.5"): let jansson read the token; unlike strtod it
     * does not depend on the process locale. Rare path. */
    json_t *num = json_loadb(s, n, JSON_DECODE_ANY, NULL);
    if (!num)
        return -1; /* e.g. 1e999 */
    int rc = 0;
    if (json_is_real(num))
        *out = json_real_value(num);
    else if (json_is_integer(num))
        *out = (double)json_integer_value(num);
    else
        rc = -1;
    json_decref(num);
    return rc;
}

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional. 0 ok, -1 bad, -2 OOM. */
static int get_bytes(const json_t *j, ProtobufCBinaryData *out) {
    if (!json_is_string(j))
        return -1;
    const unsigned char *s = (const unsigned char *)json_string_value(j);
    size_t n = json_string_length(j);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (json_string_length(j) - n > 2 || n % 4 == 1)
        return -1;
    size_t cap = n / 4 * 3 + 3;
    uint8_t *d = malloc(cap ? cap : 1);
    if (!d)
        return -2;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(s[i]);
        if (v < 0) {
            free(d);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = d;
    out->len = o;
    return 0;
}

static ProtobufCMessage *dec_message(const ProtobufCMessageDescriptor *d, const json_t *obj,
                                     int depth, dctx *c);

/* Decodes one value of field f from j into dst (an element of the field's C
 * type). Nothing is allocated on failure. */
static int dec_value(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                     const json_t *j, void *dst, int depth, dctx *c) {
    int64_t i;
    uint64_t u;
    double x;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (get_int(j, INT32_MIN, INT32_MAX, &i))
            return ffail(c, d, f, "expected a 32-bit integer");
        *(int32_t *)dst = (int32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (get_int(j, INT64_MIN, INT64_MAX, &i))
            return ffail(c, d, f, "expected a 64-bit integer");
        *(int64_t *)dst = i;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (get_uint(j, UINT32_MAX, &u))
            return ffail(c, d, f, "expected an unsigned 32-bit integer");
        *(uint32_t *)dst = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (get_uint(j, UINT64_MAX, &u))
            return ffail(c, d, f, "expected an unsigned 64-bit integer");
        *(uint64_t *)dst = u;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (get_double(j, &x))
            return ffail(c, d, f, "expected a number");
        *(double *)dst = x;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (get_double(j, &x))
            return ffail(c, d, f, "expected a number");
        if (isfinite(x) && (x > FLT_MAX || x < -FLT_MAX)) {
            /* allow what rounds to +-FLT_MAX, refuse what would be inf */
            float fx = (float)x;
            if (isinf(fx))
                return ffail(c, d, f, "number out of float range");
        }
        *(float *)dst = (float)x;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j))
            return ffail(c, d, f, "expected true or false");
        *(protobuf_c_boolean *)dst = json_is_true(j);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        if (json_is_string(j)) {
            const ProtobufCEnumValue *ev = NULL;
            /* names never contain NUL; a string that does is unknown */
            if (strlen(json_string_value(j)) == json_string_length(j))
                ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor,
                                                                  json_string_value(j));
            if (!ev)
                return ffail(c, d, f, "unknown enum value name");
            *(int *)dst = ev->value;
            return 0;
        }
        if (get_int(j, INT32_MIN, INT32_MAX, &i))
            return ffail(c, d, f, "expected an enum name or number");
        *(int *)dst = (int)i;
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(j))
            return ffail(c, d, f, "expected a string");
        size_t n = json_string_length(j);
        char *s = malloc(n + 1);
        if (!s)
            return oom(c, f, d->name);
        memcpy(s, json_string_value(j), n + 1);
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        int rc = get_bytes(j, (ProtobufCBinaryData *)dst);
        if (rc == -2)
            return oom(c, f, d->name);
        if (rc)
            return ffail(c, d, f, "expected a base64 string");
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object(j))
            return ffail(c, d, f, "expected an object");
        ProtobufCMessage *sub = dec_message(f->descriptor, j, depth + 1, c);
        if (!sub)
            return -1;
        *(ProtobufCMessage **)dst = sub;
        return 0;
    }
    }
    return ffail(c, d, f, "unsupported field type");
}

/* lowerCamelCase JSON name of a proto field name (protobuf's ToJsonName):
 * "run_id" -> "runId". Returns false if it equals the name or is too long. */
static bool json_name(const char *name, char *out, size_t cap) {
    bool up = false, changed = false;
    size_t o = 0;
    for (const char *s = name; *s; s++) {
        if (*s == '_') {
            up = true;
            changed = true;
            continue;
        }
        if (o + 1 >= cap)
            return false;
        char ch = *s;
        if (up && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        up = false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return changed;
}

static ProtobufCMessage *dec_message(const ProtobufCMessageDescriptor *d, const json_t *obj,
                                     int depth, dctx *c) {
    if (depth > MLO_PBJSON_MAX_DEPTH) {
        fail(c, "%s: nested deeper than %d", d->name, MLO_PBJSON_MAX_DEPTH);
        return NULL;
    }
    if (!json_is_object(obj)) {
        fail(c, "%s: expected an object", d->name);
        return NULL;
    }
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (!m) {
        oom(c, NULL, d->name);
        return NULL;
    }
    protobuf_c_message_init(d, m);

    for (unsigned fi = 0; fi < d->n_fields; fi++) {
        const ProtobufCFieldDescriptor *f = &d->fields[fi];
        json_t *j = json_object_get(obj, f->name);
        if (!j) {
            char jn[128];
            if (json_name(f->name, jn, sizeof jn))
                j = json_object_get(obj, jn);
        }
        if (!j || json_is_null(j))
            continue;
        char *dst = (char *)m + f->offset;

        if (is_map_field(f)) {
            /* {"k": v, ...} -> one entry message {"key": "k", "value": v} each */
            if (!json_is_object(j)) {
                ffail(c, d, f, "expected an object (a map)");
                goto bad;
            }
            size_t n = json_object_size(j);
            if (n == 0)
                continue;
            ProtobufCMessage **arr = calloc(n, sizeof *arr);
            if (!arr) {
                oom(c, f, d->name);
                goto bad;
            }
            size_t *cnt = &MEMBER(size_t, m, f->quantifier_offset);
            *(ProtobufCMessage ***)dst = arr;
            *cnt = 0;
            const char *k;
            json_t *v;
            json_object_foreach(j, k, v) {
                json_t *ent = json_object();
                if (!ent || json_object_set_new(ent, "key", json_string(k)) ||
                    json_object_set(ent, "value", v)) {
                    json_decref(ent);
                    oom(c, f, d->name);
                    goto bad;
                }
                arr[*cnt] = dec_message(f->descriptor, ent, depth + 1, c);
                json_decref(ent);
                if (!arr[*cnt])
                    goto bad;
                (*cnt)++;
            }
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!json_is_array(j)) {
                ffail(c, d, f, "expected an array");
                goto bad;
            }
            size_t n = json_array_size(j);
            if (n == 0)
                continue;
            size_t esz = elem_size(f->type);
            if (esz == 0) {
                ffail(c, d, f, "unsupported field type");
                goto bad;
            }
            char *arr = calloc(n, esz);
            if (!arr) {
                oom(c, f, d->name);
                goto bad;
            }
            size_t *cnt = &MEMBER(size_t, m, f->quantifier_offset);
            *(char **)dst = arr;
            *cnt = 0;
            for (size_t k = 0; k < n; k++) {
                const json_t *e = json_array_get(j, k);
                if (json_is_null(e)) {
                    ffail(c, d, f, "null inside an array");
                    goto bad;
                }
                if (dec_value(d, f, e, arr + k * esz, depth, c))
                    goto bad;
                (*cnt)++; /* element k is complete: free_unpacked owns it */
            }
            continue;
        }

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = &MEMBER(uint32_t, m, f->quantifier_offset);
            if (*which != 0 && *which != f->id) {
                ffail(c, d, f, "more than one member of a oneof is set");
                goto bad;
            }
            if (dec_value(d, f, j, dst, depth, c))
                goto bad;
            *which = f->id;
            continue;
        }
        if (dec_value(d, f, j, dst, depth, c))
            goto bad;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
            MEMBER(protobuf_c_boolean, m, f->quantifier_offset) = 1;
    }
    return m;

bad:
    protobuf_c_message_free_unpacked(m, NULL);
    return NULL;
}

int mlo__pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                       ProtobufCMessage **out, char *err, size_t errlen) {
    dctx c = {err, errlen, false, false};
    if (err && errlen)
        err[0] = '\0';
    if (out)
        *out = NULL;
    if (!desc || !out || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return fail(&c, "invalid arguments");
    if (!json) {
        json = "";
        len = 0;
    }
    json_error_t je;
    memset(&je, 0, sizeof je);
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        /* jansson says "out of memory", or nothing at all when its lexer
         * could not allocate its buffer */
        if (json_error_code(&je) == json_error_out_of_memory || !je.text[0])
            return fail(&c, "out of memory"), -2;
        return fail(&c, "invalid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    }
    ProtobufCMessage *m = NULL;
    if (!json_is_object(root))
        fail(&c, "%s: expected a JSON object", desc->name);
    else
        m = dec_message(desc, root, 0, &c);
    json_decref(root);
    if (!m)
        return c.oom ? -2 : -1;
    *out = m;
    return 0;
}
