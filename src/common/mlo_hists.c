/*
 * mlo_hists.c - histograms: a stream of non-negative values (latencies)
 * recorded from any number of threads, summarised every interval as MLflow
 * metrics <key>.p50 .p95 .p99 .max .count .rate.  The engine: recording,
 * intervals, summaries; the public new/free calls that check a run handle
 * are in calls/mlo_hist.c.
 *
 * Owns: each mlo_histogram (one aligned block: the recorders' line, the
 * ticker's state, a scratch array and two banks of bucket counters), and the
 * set of them a client has (mlo_hists: a list under its lock).
 *
 * Buckets (DDSketch's idea with its LinearlyInterpolatedMapping: log2
 * approximated by exponent + linear mantissa, no log() call).  A value
 * x = 2^e * (1 + f), 0 <= f < 1, read from its IEEE-754 bits (e the unbiased
 * exponent, F the 52 fraction bits, f = F / 2^52), goes to bucket
 *
 *     j = SUB * (e - E_MIN) + s,   s = ceil(SUB * f) = (SUB * F + 2^52 - 1) >> 52
 *
 * computed exactly in 64-bit integer arithmetic (SUB * F < 2^58).  With
 * U(j) = 2^(E_MIN + j div SUB) * (1 + (j mod SUB) / SUB), bucket j holds
 * exactly the x in (U(j-1), U(j)] (x = 2^e itself gets s = 0, the top bucket
 * of the octave below: the same j).  Accuracy, proven:
 *   - s in 1..SUB: the bucket is (2^e (1 + (s-1)/SUB), 2^e (1 + s/SUB)], so
 *     hi/lo = (SUB + s) / (SUB - 1 + s) <= (SUB + 1) / SUB = 1.02 for SUB = 50;
 *   - the representative value is the harmonic mean r = 2 lo hi / (lo + hi),
 *     whose relative error for any x in the bucket is at most
 *     (hi - lo) / (hi + lo) = 1 / (2 SUB - 1 + 2 s) <= 1 / 101 = 0.990 %.
 *   So every quantile is within 0.99 % of the exact order statistic (plus a
 *   few ulps of rounding in computing r): DDSketch's bound for alpha = 1 %
 *   (gamma = 1.01 / 0.99 = 1.0202; our widest bucket is 1.02).  The price of
 *   the linear mantissa is 50 buckets per octave instead of log(2)/log(gamma)
 *   = 35, as DDSketch documents (+44 %).
 * Range: octaves E_MIN = -30 .. E_MAX = 39, i.e. [2^-30, 2^40) ~ [9.3e-10,
 * 1.1e12): 3501 buckets.  Plus bucket ZERO for x < 1e-9 (reported as 0) and
 * bucket OVER for finite x >= 2^40 (reported as the interval's max: no bound
 * there).  +Infinity only raises max.  Quantile q of n values: the bucket
 * holding the value of 0-based rank floor(q (n - 1)) in sorted order; its
 * representative, computed with hi lowered to the interval's max when max
 * lies in the bucket (the values there lie in (lo, max]: a narrower range,
 * the same bound).
 *
 * Recording (any thread, mlo_histogram_record): bucket index from the bits,
 * one relaxed load of the epoch, one relaxed fetch-add on the bucket of bank
 * (epoch & 1), and a relaxed load of that bank's max, with a CAS only while
 * the value is bigger than the max seen.  No lock, no allocation, no system
 * call; the count is the sum of the buckets, so no shared counter.
 *
 * Intervals (the writer thread, mlo__hists_tick, under the set's lock): two phases.
 *   1. swap: at the due time, epoch += 1, so recorders move to the other bank;
 *      remember the old bank, the step and the interval's duration.
 *   2. drain: GRACE_NS later (the tick asks to be called again then), move
 *      every counter of the old bank out with an atomic exchange to 0, and
 *      the max likewise, and emit the interval's metrics.
 * Race semantics, honestly: a recorder reads the epoch and then increments.
 * If the swap falls between the two (a window of a few instructions), the
 * value lands in the old bank; the grace period lets it arrive before the
 * drain, so it is reported with the interval that just ended.  Only a thread
 * descheduled for more than GRACE_NS inside that window increments after the
 * drain: its value stays in the old bank, which is drained again at the end
 * of the interval after next, and is reported there.  Every increment is an
 * atomic read-modify-write of the counter and every drain an exchange of the
 * same counter, so in that counter's modification order each increment comes
 * either before a drain (counted by it) or after (left for the next): no value
 * is ever lost or counted twice, whatever the memory orders.  The same holds
 * for max, except that such a straggler's max and count may be reported in
 * different intervals.
 *
 * Steps: intervals are numbered from 0 at creation: interval k spans
 * [t0 + k I, t0 + (k+1) I).  A swap at time t reports step
 * floor((t - t0) / I) - 1, the last interval that ended; if the ticker was
 * late, that report also covers the earlier missed intervals (its count and
 * rate are still exact: the rate divides by the measured time between swaps).
 * Reported steps strictly increase.  Timestamps are the wall clock at
 * emission.  An interval with nothing recorded emits nothing.
 *
 * Threads: recorders, any number; new from any thread; the ticker is the
 * writer thread (under the set's lock; it touches a histogram's ticker state
 * and scratch only under the lock); mlo_histogram_free from one thread once
 * the recorders have stopped: it unlinks under the lock, after which the
 * ticker never sees the histogram again, then drains both banks and emits
 * the last intervals (mlo__hists_finish, into the client's queue).
 * mlo__hists_free_all (close) does the same for every histogram left.
 */
#include "mlo_hists.h"

#include "mlo_proc.h"

#include <stdlib.h>
#include <string.h>

#define MLO_HIST_MAGIC 0x6d6c6f48u /* "mloH" */
#define GRACE_NS 2000000           /* swap -> drain: 2 ms */

#define SUB 50 /* linear sub-buckets per octave */
#define E_MIN (-30)
#define E_MAX 39
#define NOCT (E_MAX - E_MIN + 1)
#define B_ZERO 0
#define B_FIRST 1                         /* bucket j = 0 */
#define B_OVER (B_FIRST + SUB * NOCT + 1) /* after j = SUB * NOCT */
#define NBUCKETS (B_OVER + 1)
#define FRAC_BITS 52
#define FRAC_MASK ((UINT64_C(1) << FRAC_BITS) - 1)
#define ZERO_BITS UINT64_C(0x3e112e0be826d695)                /* 1e-9 */
#define OVER_BITS ((uint64_t)(1023 + E_MAX + 1) << FRAC_BITS) /* 2^40 */
#define INF_BITS UINT64_C(0x7ff0000000000000)

_Static_assert(UINT64_MAX / (SUB + 1) > FRAC_MASK, "SUB * F + FRAC_MASK must not overflow");
_Static_assert(NBUCKETS == 3503, "bucket layout");

#define LINE 64

typedef struct hbank {
    /* bits of the largest value recorded (non-negative doubles order as their
     * bits); own line: read by every record, written rarely */
    _Alignas(LINE) _Atomic uint64_t max_bits;
    _Alignas(LINE) _Atomic uint64_t counts[NBUCKETS];
} hbank;

struct mlo_histogram {
    /* read by every record, written once per interval (epoch) */
    _Alignas(LINE) uint32_t magic;
    _Atomic uint32_t epoch; /* recorders write bank[epoch & 1] */
    unsigned gen;           /* fork generation it was made in */
    mlo_hists *set;
    struct mlo_client *owner;
    uint32_t run;

    /* ticker state: under the set's lock while linked, the freeing thread's after */
    _Alignas(LINE) struct mlo_histogram *next;
    int64_t interval_ns;
    int64_t t0_ns;        /* creation, CLOCK_MONOTONIC */
    int64_t last_swap_ns; /* start of the interval being recorded */
    int64_t next_due_ns;  /* when to swap next */
    int64_t last_step;    /* last step reported or pending, -1 none */
    int pending;          /* a swapped bank waits for its drain */
    uint32_t pending_bank;
    int64_t pending_step;
    int64_t pending_dur_ns;
    int64_t drain_at_ns;
    size_t klen;
    char key[MLO_HIST_MAX_KEY + 1];
    uint64_t scratch[NBUCKETS]; /* drained counts */

    hbank bank[2];
};

const char *const mlo__hists_suffix[6] = {".p50", ".p95", ".p99", ".max", ".count", ".rate"};

/* ---- the bucket mapping ------------------------------------------------------ */

static inline uint64_t dbits(double v) {
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}
static inline double bitsd(uint64_t b) {
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Bucket of a value whose bits are b (b < OVER_BITS and b >= ZERO_BITS). */
static inline size_t bucket_of(uint64_t b) {
    uint64_t s = (SUB * (b & FRAC_MASK) + FRAC_MASK) >> FRAC_BITS; /* ceil(SUB * f): 0..SUB */
    uint64_t oct = (b >> FRAC_BITS) - (uint64_t)(1023 + E_MIN);    /* e - E_MIN: 0..NOCT-1 */
    return B_FIRST + (size_t)(SUB * oct + s);
}

/* U(j): the upper bound of bucket j (j >= -1), exact powers of two built from bits. */
static double upper(int64_t j) {
    int64_t oct = j >= 0 ? j / SUB : -1;
    int64_t s = j - oct * SUB;
    double p2 = bitsd((uint64_t)(1023 + E_MIN + oct) << FRAC_BITS);
    return p2 * (1.0 + (double)s / SUB);
}

/* The value reported for bucket i, given the interval's max. */
static double representative(size_t i, double max) {
    if (i == B_ZERO)
        return 0.0;
    if (i == B_OVER)
        return max;
    int64_t j = (int64_t)i - B_FIRST;
    double lo = upper(j - 1), hi = upper(j);
    /* max in this bucket: its values lie in (lo, max], a narrower range */
    if (max > lo && max < hi)
        hi = max;
    return 2.0 * lo * hi / (lo + hi);
}

/* ---- recording --------------------------------------------------------------- */

MLO_API int mlo_histogram_record(mlo_histogram_t *h, double value) {
    if (!h || h->magic != MLO_HIST_MAGIC)
        return MLO_ERR_INVALID_ARGUMENT;
    if (mlo__proc_forked(h->gen)) /* inherited across fork() */
        return MLO_ERR_CLOSED;
    if (!(value >= 0)) { /* negative or NaN */
        mlo__env_stat(h->set->env, MLO_STAT_REJECTED, 1);
        return MLO_ERR_INVALID_ARGUMENT;
    }
    uint64_t b = dbits(value) & ~(UINT64_C(1) << 63); /* -0.0 -> +0.0 */
    /* relaxed: the epoch publishes nothing; the bank it names was allocated
     * before the handle reached this thread.  Which bank we hit only decides
     * the interval, and every counter update is an atomic RMW (see the top). */
    uint32_t ep = atomic_load_explicit(&h->epoch, memory_order_relaxed);
    hbank *bk = &h->bank[ep & 1];
    size_t i;
    if (b < ZERO_BITS)
        i = B_ZERO;
    else if (b < OVER_BITS)
        i = bucket_of(b);
    else if (b < INF_BITS)
        i = B_OVER;
    else
        goto max; /* +Infinity: max only */
    /* relaxed: the counter publishes only itself; the drain's exchange reads it */
    atomic_fetch_add_explicit(&bk->counts[i], 1, memory_order_relaxed);
max:;
    /* relaxed load and CAS: max publishes only itself.  The loop retries only
     * while our value is still bigger than the one seen, so it ends after at
     * most as many rounds as there are concurrent bigger updates. */
    uint64_t cur = atomic_load_explicit(&bk->max_bits, memory_order_relaxed);
    while (b > cur && !atomic_compare_exchange_weak_explicit(
                          &bk->max_bits, &cur, b, memory_order_relaxed, memory_order_relaxed))
        ;
    return MLO_OK;
}

/* ---- intervals --------------------------------------------------------------- */

typedef struct summary {
    uint64_t count;
    double max;
    double q[3]; /* p50, p95, p99 */
} summary;

/* Moves bank k's counts into scratch (exchange with 0) and summarises them. */
static void drain(mlo_histogram_t *h, uint32_t k, summary *out) {
    hbank *bk = &h->bank[k & 1];
    uint64_t n = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        /* relaxed exchange: see the top; an increment is counted by exactly one drain */
        uint64_t v = atomic_load_explicit(&bk->counts[i], memory_order_relaxed);
        if (v)
            v = atomic_exchange_explicit(&bk->counts[i], 0, memory_order_relaxed);
        h->scratch[i] = v;
        n += v;
    }
    out->count = n;
    out->max = bitsd(atomic_exchange_explicit(&bk->max_bits, 0, memory_order_relaxed));
    static const double qs[3] = {0.50, 0.95, 0.99};
    if (n == 0) {
        out->q[0] = out->q[1] = out->q[2] = 0;
        return;
    }
    uint64_t cum = 0;
    int qi = 0;
    for (size_t i = 0; i < NBUCKETS && qi < 3; i++) {
        cum += h->scratch[i];
        /* rank floor(q (n-1)): the first bucket where cum > rank holds it */
        while (qi < 3 && cum > (uint64_t)(qs[qi] * (double)(n - 1))) {
            out->q[qi] = representative(i, out->max);
            qi++;
        }
    }
}

/* Emits one interval's six metrics through emit; returns the first failure. */
static int emit_summary(mlo_histogram_t *h, const summary *s, int64_t step, int64_t dur_ns,
                        mlo_hists_emit_fn emit, void *ctx) {
    if (s->count == 0 && s->max == 0)
        return MLO_OK; /* nothing recorded */
    if (dur_ns <= 0)
        dur_ns = h->interval_ns;
    double rate = (double)s->count * 1e9 / (double)dur_ns;
    double vals[6] = {s->q[0], s->q[1], s->q[2], s->max, (double)s->count, rate};
    char key[MLO_HIST_MAX_KEY + 8];
    memcpy(key, h->key, h->klen);
    int64_t ts = mlo__env_now_ms(h->set->env);
    int first = MLO_OK;
    for (int m = 0; m < 6; m++) {
        if (s->count == 0 && m < 3)
            continue; /* only +Infinity was recorded: no quantile */
        size_t sl = strlen(mlo__hists_suffix[m]);
        memcpy(key + h->klen, mlo__hists_suffix[m], sl + 1);
        int st = emit(ctx, h->run, key, h->klen + sl, vals[m], step, ts);
        if (st != MLO_OK && first == MLO_OK)
            first = st;
        if (st == MLO_ERR_CLOSED)
            break;
    }
    return first;
}

static void do_drain_pending(mlo_histogram_t *h, mlo_hists_emit_fn emit, void *ctx, int *first) {
    summary s;
    drain(h, h->pending_bank, &s);
    int st = emit_summary(h, &s, h->pending_step, h->pending_dur_ns, emit, ctx);
    if (first && st != MLO_OK && *first == MLO_OK)
        *first = st;
    h->pending = 0;
}

static void do_swap(mlo_histogram_t *h, int64_t now) {
    /* relaxed load: only the ticker (under hist_lock) writes the epoch */
    uint32_t ep = atomic_load_explicit(&h->epoch, memory_order_relaxed);
    /* relaxed store: it publishes nothing (the bank recorders move to was
     * allocated at creation and emptied by exchanges, RMWs that the recorders'
     * own RMWs are ordered against); it only needs to become visible soon,
     * which the grace period before the drain allows for. */
    atomic_store_explicit(&h->epoch, ep + 1, memory_order_relaxed);
    int64_t k = (now - h->t0_ns) / h->interval_ns; /* interval now running */
    int64_t step = k - 1;
    if (step <= h->last_step)
        step = h->last_step + 1;
    h->pending = 1;
    h->pending_bank = ep & 1;
    h->pending_step = step;
    h->pending_dur_ns = now - h->last_swap_ns;
    h->drain_at_ns = now + GRACE_NS;
    h->last_step = step;
    h->last_swap_ns = now;
    h->next_due_ns = h->t0_ns + (k + 1) * h->interval_ns;
    if (h->next_due_ns <= now) /* step was bumped past the clock */
        h->next_due_ns = now + h->interval_ns;
}

int64_t mlo__hists_tick(mlo_hists *set, int64_t now_ns, mlo_hists_emit_fn emit, void *ctx) {
    int64_t next = INT64_MAX;
    pthread_mutex_lock(&set->lock);
    for (mlo_histogram_t *h = set->head; h; h = h->next) {
        if (h->pending && now_ns >= h->drain_at_ns)
            do_drain_pending(h, emit, ctx, NULL);
        if (!h->pending && now_ns >= h->next_due_ns)
            do_swap(h, now_ns);
        int64_t due = h->pending ? h->drain_at_ns : h->next_due_ns;
        int64_t wait = due - now_ns;
        if (wait < next)
            next = wait;
    }
    pthread_mutex_unlock(&set->lock);
    return next < 0 ? 0 : next;
}

/* ---- the set, create / free ----------------------------------------------------- */

void mlo__hists_init(mlo_hists *set, mlo_env *env) {
    pthread_mutex_init(&set->lock, NULL);
    set->head = NULL;
    set->env = env;
}

void mlo__hists_destroy(mlo_hists *set) {
    pthread_mutex_destroy(&set->lock);
}

mlo_histogram_t *mlo__hists_create(mlo_hists *set, struct mlo_client *owner, uint32_t run,
                                   const char *key, size_t klen, int64_t interval_ns) {
    mlo_histogram_t *h = aligned_alloc(LINE, sizeof *h);
    if (!h)
        return NULL;
    /* writing every page now also keeps page faults off the record path */
    memset(h, 0, sizeof *h);
    atomic_init(&h->epoch, 0);
    for (int k = 0; k < 2; k++) {
        atomic_init(&h->bank[k].max_bits, 0);
        for (size_t i = 0; i < NBUCKETS; i++)
            atomic_init(&h->bank[k].counts[i], 0);
    }
    h->gen = mlo__proc_gen();
    h->set = set;
    h->owner = owner;
    h->run = run;
    h->interval_ns = interval_ns;
    h->t0_ns = mlo__env_mono(set->env);
    h->last_swap_ns = h->t0_ns;
    h->next_due_ns = h->t0_ns + h->interval_ns;
    h->last_step = -1;
    h->klen = klen;
    memcpy(h->key, key, klen);
    h->key[klen] = 0;
    h->magic = MLO_HIST_MAGIC;
    pthread_mutex_lock(&set->lock);
    h->next = set->head;
    set->head = h;
    pthread_mutex_unlock(&set->lock);
    return h;
}

int mlo__hists_check(const mlo_histogram_t *h) {
    if (!h || h->magic != MLO_HIST_MAGIC)
        return MLO_ERR_INVALID_ARGUMENT;
    /* inherited across fork(): the parent's writer may hold the lock
     * forever here, and the queue is the parent's */
    if (mlo__proc_forked(h->gen))
        return MLO_ERR_CLOSED;
    return MLO_OK;
}

struct mlo_client *mlo__hists_owner(const mlo_histogram_t *h) {
    return h->owner;
}

int mlo__hists_unlink(mlo_histogram_t *h) {
    mlo_hists *set = h->set;
    int found = 0;
    pthread_mutex_lock(&set->lock);
    for (mlo_histogram_t **p = &set->head; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&set->lock);
    return found;
}

int mlo__hists_finish(mlo_histogram_t *h, mlo_hists_emit_fn emit, void *ctx) {
    int first = MLO_OK;
    if (h->pending)
        do_drain_pending(h, emit, ctx, &first);
    int64_t now = mlo__env_mono(h->set->env);
    if (now < h->last_swap_ns) /* a tick was given a clock ahead of ours (tests) */
        now = h->last_swap_ns;
    int64_t step = (now - h->t0_ns) / h->interval_ns;
    if (step <= h->last_step)
        step = h->last_step + 1;
    summary s;
    drain(h, atomic_load_explicit(&h->epoch, memory_order_relaxed), &s);
    int st = emit_summary(h, &s, step, now - h->last_swap_ns, emit, ctx);
    if (st != MLO_OK && first == MLO_OK)
        first = st;
    h->magic = 0;
    free(h);
    return first;
}

void mlo__hists_free_all(mlo_hists *set, mlo_hists_emit_fn emit, void *ctx) {
    pthread_mutex_lock(&set->lock);
    mlo_histogram_t *h = set->head;
    set->head = NULL;
    pthread_mutex_unlock(&set->lock);
    while (h) {
        mlo_histogram_t *next = h->next;
        (void)mlo__hists_finish(h, emit, ctx); /* a closed queue refuses: nothing else to do */
        h = next;
    }
}
