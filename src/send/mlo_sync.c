/*
 * mlo_sync.c - `mlo sync`: recovers and adopts every dead process's files of
 * a store, whatever URI they were bound for (mlo__store_open_all), sends
 * their segments (mlo__outbox_drain), then uploads their artifacts, pending
 * and failed (mlo__uploader_sync: the runs exist by then).  Resumable (acks
 * at block boundaries; an artifact's manifest goes only once it is
 * uploaded) and idempotent (runs.map + the mlo.local_id tag; a PUT twice
 * stores the same file).
 *
 * The engines run in an environment of sync's own: the configuration comes
 * from the MLflow environment variables (and the URI given), errors are
 * collected to say what went wrong, no client exists.
 *
 * Threads: the calling thread (plus the sender's in-flight workers).
 */
#define _GNU_SOURCE
#include "mlo_sync.h"

#include "mlo.h"
#include "mlo_buf.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_outbox.h"
#include "mlo_sender.h"
#include "mlo_store.h"
#include "mlo_uploader.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct sync_errs {
    char first[512];
    int n;
} sync_errs;

static void sync_err_cb(void *user, mlo_status st, const char *msg) {
    sync_errs *e = user;
    if (st == MLO_WARN_RETRY || st == MLO_WARN_TRUNCATED)
        return;
    if (!e->n++)
        snprintf(e->first, sizeof e->first, "%s", msg);
}

int mlo__sync_store(const char *store_dir, const char *uri,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                    char *err, size_t errlen) {
    if (err && errlen)
        err[0] = 0;
    if (!store_dir) {
        mlo__buf_errf(err, errlen, "no store directory given");
        return MLO_ERR_INVALID_ARGUMENT;
    }
    mlo_options_t *o = mlo_options_new();
    if (!o)
        return MLO_ERR_NO_MEMORY;
    int st = uri ? mlo_options_set_tracking_uri(o, uri) : MLO_OK;
    if (st != MLO_OK) {
        mlo_options_free(o);
        mlo__buf_errf(err, errlen, "invalid tracking URI");
        return st;
    }
    sync_errs errs = {0};
    mlo_options_set_error_callback(o, sync_err_cb, &errs);
    mlo_config cfg;
    st = mlo__config_resolve(o, &cfg, err, errlen);
    mlo_options_free(o);
    if (st != MLO_OK)
        return st;
    if (!cfg.tracking_uri) {
        mlo__buf_errf(err, errlen, "no tracking URI: pass one or set MLFLOW_TRACKING_URI");
        mlo__config_free(&cfg);
        return MLO_ERR_CONFIG;
    }
    mlo_env env;
    mlo__env_init(&env, &cfg);
    mlo_store *s = NULL;
    st = mlo__store_open_all(store_dir, cfg.tracking_uri, &env, &s, err, errlen);
    if (st != MLO_OK) {
        mlo__config_free(&cfg);
        return st;
    }
    size_t nad;
    const mlo_seg_ref *ad = mlo__store_adopted(s, &nad);
    mlo_sender *snd = mlo__sender_new(&env, s, 1, NULL);
    if (!snd) {
        st = MLO_ERR_NO_MEMORY;
    } else {
        st = mlo__outbox_drain(&env, snd, s, ad, nad, progress, ctx, err, errlen);
        mlo__sender_free(snd);
    }
    uint64_t refused = mlo__env_stat_get(&env, MLO_STAT_FAILED);
    /* artifacts after the segments: their runs exist on the server now */
    char aerr[768] = "";
    int ast = st == MLO_OK ? mlo__uploader_sync(&env, s, aerr, sizeof aerr) : MLO_OK;
    if (st == MLO_OK && !refused && ast != MLO_OK) {
        st = ast;
        mlo__buf_errf(err, errlen, "%s", aerr[0] ? aerr : mlo_strerror(ast));
    }
    if (st == MLO_OK && refused) {
        st = MLO_ERR_SERVER_INVALID;
        mlo__buf_errf(err, errlen,
             "%llu events were refused by the server (first: %s); everything else was uploaded",
             (unsigned long long)refused, errs.n ? errs.first : "see the error callback");
    } else if (st == MLO_OK && mlo__store_live_skipped(s)) {
        mlo__buf_errf(err, errlen,
             "%zu files belong to processes still running (they send their own events); "
             "they were left alone",
             mlo__store_live_skipped(s));
    } else if (st != MLO_OK && err && !err[0] && errs.n) {
        mlo__buf_errf(err, errlen, "%s", errs.first);
    }
    mlo__store_close(s, 0);
    mlo__config_free(&cfg);
    return st;
}
