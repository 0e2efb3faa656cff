/*
 * mlo_hist.c - the public histogram calls that take a run handle or free:
 * mlo_histogram_new checks the run and the key and makes the histogram in
 * its client's set; mlo_histogram_free unlinks it and pushes its last
 * intervals through the client's queue.  The engine (recording, intervals,
 * summaries) is common/mlo_hists.c.
 *
 * Threads: new from any thread; free from one thread once the recorders
 * have stopped.
 */
#include "mlo_client.h"
#include "mlo_hists.h"
#include "mlo_validate.h"

#include <string.h>

MLO_API int mlo_histogram_new(mlo_run_t *run, const char *key, unsigned interval_ms,
                              mlo_histogram_t **out) {
    if (out)
        *out = NULL;
    if (!out || !key)
        return MLO_ERR_INVALID_ARGUMENT;
    int rst = mlo__client_run_check(run); /* closed or inherited across fork(): CLOSED */
    if (rst != MLO_OK)
        return rst;
    mlo_client *c = run->client;
    mlo_env *env = mlo__client_env(c);
    size_t klen;
    int st = mlo__validate_key(key, &klen);
    if (st == MLO_OK && klen > MLO_HIST_MAX_KEY)
        st = MLO_ERR_INVALID_KEY;
    if (st != MLO_OK) {
        mlo__env_stat(env, MLO_STAT_REJECTED, 1);
        mlo__env_report(env, st, 1,
                        "histogram_new: key \"%.300s\" refused (at most %d characters): %s", key,
                        MLO_HIST_MAX_KEY, mlo_strerror(st));
        return st;
    }
    if (interval_ms < MLO_HIST_MIN_INTERVAL_MS || interval_ms > MLO_HIST_MAX_INTERVAL_MS)
        return MLO_ERR_INVALID_ARGUMENT;
    /* a valid key stays valid with a suffix (its last path component only
     * grows); check anyway, once, rather than have the server refuse it */
    for (int m = 0; m < 6; m++) {
        char full[MLO_HIST_MAX_KEY + 8];
        size_t fl;
        memcpy(full, key, klen);
        strcpy(full + klen, mlo__hists_suffix[m]);
        if (mlo__validate_key(full, &fl) != MLO_OK)
            return MLO_ERR_INVALID_KEY;
    }
    mlo_histogram_t *h = mlo__hists_create(mlo__client_hists(c), c, run->index, key, klen,
                                           (int64_t)interval_ms * 1000000);
    if (!h)
        return MLO_ERR_NO_MEMORY;
    /* the writer may be in a long sleep that does not know this due time */
    mlo__client_wake(c);
    *out = h;
    return MLO_OK;
}

MLO_API int mlo_histogram_free(mlo_histogram_t *h) {
    if (!h)
        return MLO_OK;
    int st = mlo__hists_check(h);
    if (st != MLO_OK)
        return st;
    mlo_client *c = mlo__hists_owner(h);
    if (!mlo__hists_unlink(h))
        return MLO_ERR_INVALID_ARGUMENT;
    return mlo__hists_finish(h, mlo__client_emit_metric, c);
}
