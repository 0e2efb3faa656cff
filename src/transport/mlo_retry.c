/*
 * mlo_retry.c - MLflow's retry policy (mlo_retry.h).
 */
#define _GNU_SOURCE
#include "mlo_retry.h"

#include "mlo.h"
#include "mlo_transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mlo__retry_http_code(long code) {
    return code == 408 || code == 429 || code == 500 || code == 502 || code == 503 || code == 504;
}

int mlo__retry_outcome(int outcome) {
    return outcome == MLO_XF_CONNECT || outcome == MLO_XF_LOST || outcome == MLO_XF_TIMEOUT ||
           outcome == MLO_XF_TLS_HANDSHAKE;
}

int mlo__retry_permanent(int st) {
    switch (st) {
    case MLO_ERR_SERVER_INVALID:
    case MLO_ERR_NOT_FOUND:
    case MLO_ERR_ALREADY_EXISTS:
    case MLO_ERR_INVALID_PATH:
    case MLO_ERR_INVALID_ARGUMENT:
    case MLO_ERR_STORE:
    case MLO_ERR_IO:
        return 1;
    default:
        return 0;
    }
}

double mlo__retry_wait_s(const mlo_retry_policy *p, int n, double retry_after_s, double u) {
    if (p->respect_retry_after && retry_after_s > 0)
        return retry_after_s < MLO_RETRY_MAX_WAIT_S ? retry_after_s : MLO_RETRY_MAX_WAIT_S;
    int k = n - 1 < 0 ? 0 : n - 1 > 20 ? 20 : n - 1;
    double w = p->factor_s * (double)(1ULL << k);
    if (w > MLO_RETRY_MAX_WAIT_S)
        w = MLO_RETRY_MAX_WAIT_S;
    return w + p->jitter_s * u;
}

double mlo__retry_after_parse(const char *v, int64_t now_s) {
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return -1;
    if (*v >= '0' && *v <= '9') {
        char *end;
        errno = 0;
        double s = strtod(v, &end);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno || *end)
            return -1;
        return s;
    }
    /* HTTP dates (RFC 9110 5.6.7), always GMT */
    static const char *const fmts[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                       "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(v, fmts[i], &tm);
        if (!end)
            continue;
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            continue;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            return -1;
        double d = (double)((int64_t)t - now_s);
        return d > 0 ? d : 0;
    }
    return -1;
}

int64_t mlo__retry_backoff_ns(double factor_s, int k) {
    double f = factor_s > 0 ? factor_s : 0.05;
    double secs = f * (double)(1u << (k < 10 ? (k < 0 ? 0 : k) : 10));
    if (secs < 0.05)
        secs = 0.05;
    if (secs > 60)
        secs = 60;
    return (int64_t)(secs * 1e9);
}

int64_t mlo__retry_sync_pause_ns(int status, int n) {
    int64_t unit = status == MLO_ERR_NO_MEMORY ? 50000000LL : 1000000000LL; /* 1/20 s, 1 s */
    return (int64_t)n * unit;
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mlo__retry_rng_seed(mlo_rng *r, uint64_t seed) {
    r->s = splitmix64(seed);
    if (r->s == 0)
        r->s = 0x2545f4914f6cdd1dULL;
}

double mlo__retry_rng_unit(mlo_rng *r) {
    uint64_t x = r->s; /* xorshift64* (Vigna) */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return (double)((x * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}
