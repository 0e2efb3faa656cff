/*
 * mlo_retry.h - MLflow's retry policy, in one place for events, artifacts
 * and the registry: which answers and failures are worth another try, how
 * long to wait (backoff, jitter, Retry-After, the cap), and which statuses
 * no retry can fix.
 *
 * The rules are those of MLflow's Python client (../shared/MLFLOW.md
 * "Retries"): HTTP 408, 429, 500, 502, 503, 504 and connection failures,
 * every method; retry n waits min(factor * 2^(n-1), 120) s plus jitter in
 * [0, jitter] s, or the server's Retry-After (seconds or an HTTP date,
 * <= 120 s) when respected.  Pure functions: the time and the random draw
 * are arguments, so tests drive them with a virtual clock.
 *
 * Threads: any (an mlo_rng belongs to one thread).
 */
#ifndef MLO_RETRY_H
#define MLO_RETRY_H

#include <stdint.h>

#define MLO_RETRY_MAX_WAIT_S 120.0 /* cap of a backoff or a Retry-After */
#define MLO_RETRY_MAX_RETRIES 10

typedef struct mlo_retry_policy {
    int max_retries;         /* 0..10 */
    double factor_s;         /* backoff factor (>= 0) */
    double jitter_s;         /* jitter bound (>= 0) */
    int respect_retry_after; /* honour Retry-After */
} mlo_retry_policy;

/* 1 for the HTTP codes MLflow's client retries. */
int mlo__retry_http_code(long code);
/* 1 for an attempt outcome (mlo_xfer_outcome) worth another attempt: not
 * connected, lost, timed out, a TLS handshake that broke off. */
int mlo__retry_outcome(int outcome);
/* 1 for an mlo_status that sending the same request again cannot change:
 * the server refused it (400, 404, already exists), or a local problem with
 * what is sent (a path, a file, an argument).  Everything else (network,
 * TLS, timeouts, 5xx/429 after the transport's retries, 401/403, an
 * unreadable answer, out of memory) is transient for the outbox, which
 * keeps the data and tries again later. */
int mlo__retry_permanent(int status);
/* Seconds before counted retry n (1-based): the Retry-After (seconds, < 0
 * when none) when respected and > 0, capped; else min(factor * 2^(n-1), cap)
 * + jitter * u (u in [0, 1)). */
double mlo__retry_wait_s(const mlo_retry_policy *p, int n, double retry_after_s, double u);
/* A Retry-After value (delta-seconds or an HTTP date: IMF-fixdate, RFC 850
 * or asctime) as seconds from now_s (seconds since the epoch); an HTTP date
 * in the past is 0.  < 0 when empty or unreadable. */
double mlo__retry_after_parse(const char *v, int64_t now_s);
/* The outbox's pause after its k-th failed pass in a row (k from 0): factor
 * * 2^k s, at least 0.05 s, at most 60 s (the sender's stages and the
 * uploader's files; the requests inside a pass have had their own retries). */
int64_t mlo__retry_backoff_ns(double factor_s, int k);
/* mlo sync's pause before its n-th pass again (n from 1) after a pass that
 * failed with status (the requests' own retries spent): n seconds for the
 * server; out of memory needs no such wait, n twentieths of a second. */
int64_t mlo__retry_sync_pause_ns(int status, int n);

/* Jitter draws: xorshift64*, seeded per sender (never rand()). */
typedef struct mlo_rng {
    uint64_t s;
} mlo_rng;
void mlo__retry_rng_seed(mlo_rng *r, uint64_t seed);
double mlo__retry_rng_unit(mlo_rng *r); /* [0, 1) */

#endif /* MLO_RETRY_H */
