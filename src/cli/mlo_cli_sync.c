/*
 * mlo_cli_sync.c - `mlo sync`: uploads the local store to a tracking server
 * with the library's store sync (mlo__sync_run, src/send/mlo_sync.c):
 * progress on a terminal (runs, events, bytes, rate, ETA), a line per
 * retried request, one clear line when it fails, and exit codes a script
 * can act on.
 *
 * Threads: one (the sync itself uses the library's workers; retry lines
 * may come from them, under a lock).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"
#include "mlo_sync.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* exit codes of sync beyond the common ones */
enum { EXIT_SYNC_UNREACHABLE = 3, EXIT_SYNC_REFUSED = 4 };

void cli_usage_sync(FILE *f) {
    fprintf(f,
            "usage: mlo sync [STORE] [--to URI] [--max-inflight N] [--quiet] [--progress]\n"
            "\n"
            "Uploads the store's runs and every event the server has not acknowledged\n"
            "to the tracking server URI (default: $MLFLOW_TRACKING_URI), then their\n"
            "artifacts.  Resumable and idempotent: running it again creates nothing\n"
            "twice.  Authentication, TLS and retries: the MLFLOW_TRACKING_* and\n"
            "MLFLOW_HTTP_REQUEST_* variables.\n"
            "\n"
            "On a terminal it shows its progress on stderr: runs and events done, bytes,\n"
            "rate and time left.  A request the server answers with 5xx or 429 is\n"
            "retried as MLflow's client does, with a line per retry; a server that\n"
            "cannot be reached (connection refused, unknown host, no answer) ends the\n"
            "sync within about 10 s.  Nothing is lost either way: what the server did\n"
            "not acknowledge stays in the store for the next sync.\n"
            "\n"
            "  --to URI          the tracking server\n"
            "  --max-inflight N  requests in flight at once, 1 to 16 (default\n"
            "                    $MLO_MAX_INFLIGHT, else 4): runs overlap\n"
            "  --quiet           no progress and no retry lines (errors only)\n"
            "  --progress        progress lines even when stderr is not a terminal\n"
            "                    (one line a second)\n"
            "%s"
            "Exit status: 0 everything uploaded; 2 usage error or a local failure (no\n"
            "store, a damaged segment: the rest was uploaded); 3 the server could not be\n"
            "reached or kept failing (nothing lost: run sync again later); 4 the server\n"
            "refused some events or artifacts for good (everything else uploaded).\n",
            cli_store_text);
}

typedef struct progress {
    bool tty, lines, quiet;
    bool shown; /* a \r line is on the terminal */
    int64_t start_ns, last_ns;
    mlo_sync_progress last;
    pthread_mutex_t lock;
} progress;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fmt_bytes(uint64_t b, char *out, size_t n) {
    if (b >= 1000000000ull)
        snprintf(out, n, "%.2f GB", (double)b / 1e9);
    else if (b >= 1000000)
        snprintf(out, n, "%.1f MB", (double)b / 1e6);
    else if (b >= 1000)
        snprintf(out, n, "%.1f kB", (double)b / 1e3);
    else
        snprintf(out, n, "%llu B", (unsigned long long)b);
}

static void fmt_secs(double s, char *out, size_t n) {
    if (s < 0 || s > 360000)
        snprintf(out, n, "?");
    else if (s >= 3600)
        snprintf(out, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(out, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

/* "12/40 runs  120,500/287,000 events  4.1/9.8 MB  1.2 MB/s  ETA 0:05" */
static void progress_text(const progress *p, char *out, size_t n) {
    const mlo_sync_progress *s = &p->last;
    double el = (double)(mono_ns() - p->start_ns) / 1e9;
    double rate = el > 0.05 ? (double)s->bytes_done / el : 0;
    char bd[32], bt[32], rt[32], eta[32];
    fmt_bytes(s->bytes_done, bd, sizeof bd);
    fmt_bytes(s->bytes_total, bt, sizeof bt);
    fmt_bytes((uint64_t)rate, rt, sizeof rt);
    if (s->bytes_done >= s->bytes_total)
        snprintf(eta, sizeof eta, "0:00");
    else if (rate > 0)
        fmt_secs((double)(s->bytes_total - s->bytes_done) / rate, eta, sizeof eta);
    else
        snprintf(eta, sizeof eta, "?");
    int pct = s->bytes_total ? (int)(s->bytes_done * 100 / s->bytes_total) : 100;
    snprintf(out, n, "sync %3d%%  %zu/%zu runs  %llu/%llu events  %s/%s  %s/s  ETA %s", pct,
             s->runs_done, s->runs_total, (unsigned long long)s->events_done,
             (unsigned long long)s->events_total, bd, bt, rt, eta);
}

static void show(progress *p) {
    char line[300];
    progress_text(p, line, sizeof line);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        p->shown = true;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static void on_progress(void *ctx, const mlo_sync_progress *s) {
    progress *p = ctx;
    pthread_mutex_lock(&p->lock);
    p->last = *s;
    int64_t now = mono_ns();
    bool done = s->bytes_done >= s->bytes_total;
    /* a terminal: at most 5 redraws a second; plain lines: one a second */
    int64_t gap = p->tty ? 200000000 : 1000000000;
    if ((p->tty || p->lines) && !p->quiet && (done || !p->last_ns || now - p->last_ns >= gap)) {
        p->last_ns = now;
        show(p);
    }
    pthread_mutex_unlock(&p->lock);
}

static void on_retry(void *ctx, const char *message) {
    progress *p = ctx;
    if (p->quiet)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->shown)
        fprintf(stderr, "\r\033[K");
    fprintf(stderr, "mlo: sync: %s\n", message);
    if (p->shown)
        show(p);
    fflush(stderr);
    pthread_mutex_unlock(&p->lock);
}

int cli_cmd_sync(int argc, char **argv) {
    const char *store_arg = NULL, *uri = NULL, *inflight = NULL;
    bool quiet = false, lines = false;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_sync(stdout);
            return EXIT_PASS;
        } else if (cli_opt_val(&a, "--to", &v))
            uri = v;
        else if (cli_opt_val(&a, "--max-inflight", &v))
            inflight = v;
        else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0)
            quiet = true;
        else if (strcmp(s, "--progress") == 0)
            lines = true;
        else if (s[0] == '-' && s[1])
            return cli_bad_usage(cli_usage_sync, "unknown option %s", s);
        else if (!store_arg)
            store_arg = s;
        else
            return cli_bad_usage(cli_usage_sync, "unexpected argument %s", s);
    }
    int max_inflight = 0;
    if (inflight) {
        char *end;
        long n = strtol(inflight, &end, 10);
        if (*end || end == inflight || n < 1 || n > 16)
            return cli_bad_usage(cli_usage_sync, "--max-inflight takes 1 to 16, not '%s'",
                                 inflight);
        max_inflight = (int)n;
    }
    if (!uri || !*uri)
        uri = getenv("MLFLOW_TRACKING_URI");
    if (!uri || !*uri)
        return cli_bad_usage(cli_usage_sync, "%s",
                             "no server to sync to: give --to URI or set MLFLOW_TRACKING_URI");
    const char *dir = cli_store_dir(store_arg);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mlo: no store at %s\n", dir);
        return EXIT_ERROR;
    }
    progress p = {
        .tty = isatty(STDERR_FILENO) == 1, .lines = lines, .quiet = quiet, .start_ns = mono_ns()};
    pthread_mutex_init(&p.lock, NULL);
    mlo_sync_opts o = {.store_dir = dir,
                       .uri = uri,
                       .max_inflight = max_inflight,
                       .progress = on_progress,
                       .retry = on_retry,
                       .ctx = &p};
    char err[1200] = "";
    int rc = mlo__sync_run(&o, err, sizeof err);
    pthread_mutex_lock(&p.lock);
    if (p.shown) /* the terminal's progress line stays, finished */
        fputc('\n', stderr);
    pthread_mutex_unlock(&p.lock);
    pthread_mutex_destroy(&p.lock);
    if (rc != MLO_OK) {
        fprintf(stderr, "mlo: sync to %s failed: %s\n", uri, err[0] ? err : mlo_strerror(rc));
        if (rc == MLO_ERR_NETWORK || rc == MLO_ERR_TIMEOUT || rc == MLO_ERR_SERVER)
            return EXIT_SYNC_UNREACHABLE;
        if (rc == MLO_ERR_SERVER_INVALID)
            return EXIT_SYNC_REFUSED;
        return EXIT_ERROR;
    }
    if (err[0])
        fprintf(stderr, "mlo: note: %s\n", err);
    char b[32];
    fmt_bytes(p.last.bytes_total, b, sizeof b);
    printf("synced %s to %s: %zu runs, %llu events, %s in %.1f s\n", dir, uri, p.last.runs_total,
           (unsigned long long)p.last.events_total, b, (double)(mono_ns() - p.start_ns) / 1e9);
    return EXIT_PASS;
}
