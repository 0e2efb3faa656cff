/*
 * mlo_env.c - statistics and error reporting of an environment (mlo_env.h).
 */
#include "mlo_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mlo__env_init(mlo_env *e, const mlo_config *cfg) {
    memset(e, 0, sizeof *e);
    e->cfg = cfg;
}

void mlo__env_report(mlo_env *e, int status, int rate_limited, const char *fmt, ...) {
    if (!e->cfg || !e->cfg->error_fn)
        return;
    if (rate_limited) {
        /* at most 20 messages a second; the rest are counted in stats only */
        int64_t now = mlo__clock_now_ms(NULL) / 1000;
        int64_t win = atomic_load_explicit(&e->err_window_s, memory_order_relaxed);
        if (win != now &&
            atomic_compare_exchange_strong_explicit(&e->err_window_s, &win, now,
                                                    memory_order_relaxed, memory_order_relaxed))
            atomic_store_explicit(&e->err_in_window, 0, memory_order_relaxed);
        if (atomic_fetch_add_explicit(&e->err_in_window, 1, memory_order_relaxed) >= 20)
            return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->cfg->error_fn(e->cfg->error_user, (mlo_status)status, msg);
}
