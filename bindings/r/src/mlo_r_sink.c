/*
 * The error callback of the R package.  libmlo calls it from the thread that made a
 * failing call (here: R's main thread) or from its shipper thread; R may only be
 * called from the main thread, so the callback only copies the message into one of
 * two small queues, under a mutex:
 *   "sync"  errors of a call made by R (read right after the call fails, to give
 *           the R error the library's message);
 *   "later" everything else: failures found while sending, and warnings (a value
 *           truncated, a request retried), turned into R warnings by the package.
 */
#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>
#include <pthread.h>
#include <string.h>

#include "mlo.h"

#define MLOR_SLOTS 64
#define MLOR_MSG 512

typedef struct {
    int status;
    char msg[MLOR_MSG];
} mlor_ent;

typedef struct {
    mlor_ent e[MLOR_SLOTS];
    int n;       /* entries held (the oldest are overwritten when full) */
    int head;    /* next slot to write */
    double lost; /* entries overwritten before being read */
} mlor_queue;

static pthread_mutex_t mlor_mu = PTHREAD_MUTEX_INITIALIZER;
static mlor_queue mlor_sync, mlor_later;
static pthread_t mlor_main;
static int mlor_have_main;

void mlor_sink_init(void) {
    mlor_main = pthread_self();
    mlor_have_main = 1;
}

void mlor_error_sink(void *user_data, mlo_status status, const char *message) {
    (void)user_data;
    int on_main = mlor_have_main && pthread_equal(pthread_self(), mlor_main);
    /* warnings are not the detail of a failed call; errors numbered after them
     * (MLO_ERR_STORE, MLO_ERR_IO, ...) are */
    int warning = status == MLO_WARN_TRUNCATED || status == MLO_WARN_RETRY;
    mlor_queue *q = (on_main && !warning) ? &mlor_sync : &mlor_later;
    pthread_mutex_lock(&mlor_mu);
    mlor_ent *e = &q->e[q->head];
    e->status = (int)status;
    strncpy(e->msg, message ? message : "", MLOR_MSG - 1);
    e->msg[MLOR_MSG - 1] = '\0';
    q->head = (q->head + 1) % MLOR_SLOTS;
    if (q->n < MLOR_SLOTS)
        q->n++;
    else
        q->lost += 1;
    pthread_mutex_unlock(&mlor_mu);
}

/* which: "sync" or "later".  Returns list(status = integer, message = character,
 * lost = number) with the queued entries, oldest first, and empties the queue. */
SEXP mlor_take_errors(SEXP which) {
    const char *w =
        (TYPEOF(which) == STRSXP && XLENGTH(which) == 1) ? CHAR(STRING_ELT(which, 0)) : "";
    mlor_queue *q = strcmp(w, "sync") == 0 ? &mlor_sync : &mlor_later;
    mlor_ent copy[MLOR_SLOTS];
    pthread_mutex_lock(&mlor_mu);
    int n = q->n;
    double lost = q->lost;
    for (int i = 0; i < n; i++)
        copy[i] = q->e[(q->head - n + i + MLOR_SLOTS) % MLOR_SLOTS];
    q->n = 0;
    q->lost = 0;
    pthread_mutex_unlock(&mlor_mu);

    SEXP st = PROTECT(Rf_allocVector(INTSXP, n));
    SEXP msg = PROTECT(Rf_allocVector(STRSXP, n));
    for (int i = 0; i < n; i++) {
        INTEGER(st)[i] = copy[i].status;
        SET_STRING_ELT(msg, i, Rf_mkCharCE(copy[i].msg, CE_UTF8));
    }
    SEXP res = PROTECT(Rf_allocVector(VECSXP, 3));
    SEXP nm = PROTECT(Rf_allocVector(STRSXP, 3));
    SET_VECTOR_ELT(res, 0, st);
    SET_VECTOR_ELT(res, 1, msg);
    SET_VECTOR_ELT(res, 2, Rf_ScalarReal(lost));
    SET_STRING_ELT(nm, 0, Rf_mkChar("status"));
    SET_STRING_ELT(nm, 1, Rf_mkChar("message"));
    SET_STRING_ELT(nm, 2, Rf_mkChar("lost"));
    Rf_setAttrib(res, R_NamesSymbol, nm);
    UNPROTECT(4);
    return res;
}
