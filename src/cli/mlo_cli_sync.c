/*
 * mlo_cli_sync.c - `mlo sync`: uploads the local store to a tracking server
 * with the library's store sync (mlo__store_sync, src/mlo_store.c), showing
 * a progress bar on a terminal.
 *
 * Threads: one (the sync itself may use the library's workers).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"
#include "mlo_sync.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void cli_usage_sync(FILE *f) {
    fprintf(f,
            "usage: mlo sync [STORE] [--to URI]\n"
            "\n"
            "Uploads the store's runs and every event the server has not acknowledged\n"
            "to the tracking server URI (default: $MLFLOW_TRACKING_URI).  Resumable and\n"
            "idempotent: running it again creates nothing twice.  Shows a progress bar\n"
            "on a terminal.  Authentication and TLS: the MLFLOW_TRACKING_* variables.\n"
            "%s%s",
            cli_store_text, cli_exit_text);
}

typedef struct progress {
    bool tty;
    int last_pct;
    int64_t last_ns;
} progress;

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
    progress *p = ctx;
    if (!p->tty)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int pct = total ? (int)(done * 100 / total) : 0;
    if (pct == p->last_pct && now - p->last_ns < 200000000 && done != total)
        return;
    p->last_pct = pct;
    p->last_ns = now;
    char bar[41];
    int fill = total ? (int)(done * 40 / total) : 0;
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "\rsync [%s] %3d%%  %llu/%llu events", bar, pct, (unsigned long long)done,
            (unsigned long long)total);
    fflush(stderr);
}

int cli_cmd_sync(int argc, char **argv) {
    const char *store_arg = NULL, *uri = NULL;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_sync(stdout);
            return EXIT_PASS;
        } else if (cli_opt_val(&a, "--to", &v))
            uri = v;
        else if (s[0] == '-' && s[1])
            return cli_bad_usage(cli_usage_sync, "unknown option %s", s);
        else if (!store_arg)
            store_arg = s;
        else
            return cli_bad_usage(cli_usage_sync, "unexpected argument %s", s);
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
    progress p = {isatty(STDERR_FILENO) == 1, -1, 0};
    char err[1024] = "";
    int rc = mlo__sync_store(dir, uri, on_progress, &p, err, sizeof err);
    if (p.tty && p.last_pct >= 0)
        fprintf(stderr, "\n");
    if (rc != 0) {
        fprintf(stderr, "mlo: sync to %s failed: %s\n", uri, err[0] ? err : "unknown error");
        return EXIT_ERROR;
    }
    printf("synced %s to %s\n", dir, uri);
    return EXIT_PASS;
}
