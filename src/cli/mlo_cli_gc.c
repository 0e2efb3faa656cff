/*
 * mlo_cli_gc.c - `mlo gc` and `mlo rm`: the store's cleanup on demand, with
 * the library's retention (src/store/mlo_retention.c): what a running
 * client removes by itself, plus what only a process that claims every dead
 * process may remove (their last segments, their leftovers), and the queue
 * files in /dev/shm nobody can recover any more; and runs removed by hand.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_retention.h"
#include "mlo_store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cli_usage_gc(FILE *f) {
    fprintf(f,
            "usage: mlo gc [STORE] [--dry-run] [--retention DURATION] [--max-bytes SIZE]\n"
            "\n"
            "Removes from the store what the server has acknowledged once its retention\n"
            "is up ($MLO_STORE_RETENTION, default 7d; -1 keeps it forever) and, over the\n"
            "size cap ($MLO_STORE_MAX_BYTES, default none), more of it, oldest first;\n"
            "each run's params, tags, status and latest metric values stay in a small\n"
            "summary, so ls, show and gate keep working.  Never removes anything the\n"
            "server has not acknowledged, nor runs of a local store (mlo rm does).  Also\n"
            "removes the leftovers of dead processes (acknowledged files, uploaded\n"
            "artifacts' blobs) and queue files in /dev/shm that no process holds and\n"
            "whose store is gone.  Prints what it removes, one line each.\n"
            "\n"
            "  --dry-run           print what would be removed, remove nothing\n"
            "  --retention D       this retention instead: seconds, or with s, m, h, d\n"
            "                      (0: every acknowledged segment)\n"
            "  --max-bytes N       this cap instead: bytes, or with K, M, G, T\n"
            "%s%s",
            cli_store_text, cli_exit_text);
}

void cli_usage_rm(FILE *f) {
    fprintf(f,
            "usage: mlo rm RUN... [--store STORE] [--dry-run]\n"
            "\n"
            "Removes runs from the store: their events (segments shared with other runs\n"
            "are rewritten without them), their summary and the artifacts staged for\n"
            "them.  Only the local copy: a run already on a server stays there.  Refuses\n"
            "(and changes nothing) while a process still writes one of them.\n"
            "RUN is a run id, a unique prefix of one, a server run id or a unique name.\n"
            "\n"
            "  --store STORE  the store (default: $MLO_STORE_DIR, else ./mlo-store)\n"
            "  --dry-run      print what would be removed, remove nothing\n"
            "%s",
            cli_exit_text);
}

static void human(uint64_t b, char *out, size_t n) {
    if (b >= (1ull << 30))
        snprintf(out, n, "%.1f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(out, n, "%.1f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024.0);
    else
        snprintf(out, n, "%llu B", (unsigned long long)b);
}

typedef struct printer {
    bool dry;
    bool quiet;
} printer;

static void on_remove(void *ctx, const char *kind, const char *path, uint64_t bytes,
                      const char *why) {
    printer *p = ctx;
    (void)kind;
    if (p->quiet)
        return;
    char h[32];
    human(bytes, h, sizeof h);
    printf("%s %s  %s  (%s)\n", p->dry ? "would remove" : "removed", path, h, why);
}

static void on_shm(void *ctx, const char *path, uint64_t bytes, const char *why) {
    on_remove(ctx, "ring", path, bytes, why);
}

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    (void)st;
    fprintf(stderr, "mlo: %s\n", msg);
}

/* The configuration (MLO_STORE_* and the rest of the environment), with the
 * command's overrides put in the environment first so that they are read
 * (and refused) the same way. */
static int gc_config(const char *retention, const char *max_bytes, mlo_config *cfg) {
    if (retention)
        setenv("MLO_STORE_RETENTION", retention, 1);
    if (max_bytes)
        setenv("MLO_STORE_MAX_BYTES", max_bytes, 1);
    mlo_options_t *o = mlo_options_new();
    if (!o)
        return -1;
    mlo_options_set_error_callback(o, on_error, NULL);
    char err[512];
    int st = mlo__config_resolve(o, cfg, err, sizeof err);
    mlo_options_free(o);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo: %s\n", err);
        return -1;
    }
    return 0;
}

int cli_cmd_gc(int argc, char **argv) {
    const char *store_arg = NULL, *retention = NULL, *max_bytes = NULL;
    bool dry = false;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_gc(stdout);
            return EXIT_PASS;
        } else if (strcmp(s, "--dry-run") == 0)
            dry = true;
        else if (cli_opt_val(&a, "--retention", &v))
            retention = v;
        else if (cli_opt_val(&a, "--max-bytes", &v))
            max_bytes = v;
        else if (s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9'))
            return cli_bad_usage(cli_usage_gc, "unknown option %s", s);
        else if (!store_arg)
            store_arg = s;
        else
            return cli_bad_usage(cli_usage_gc, "unexpected argument %s", s);
    }
    const char *dir = cli_store_dir(store_arg);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "mlo: no store at %s\n", dir);
        return EXIT_ERROR;
    }
    mlo_config cfg;
    if (gc_config(retention, max_bytes, &cfg) != 0)
        return EXIT_ERROR;
    mlo_env env;
    mlo__env_init(&env, &cfg);
    mlo_store *st = NULL;
    char err[1024] = "";
    /* a dry run recovers nothing either (recovery writes segments) */
    if (mlo__store_open_admin(dir, !dry, &env, &st, err, sizeof err) != MLO_OK) {
        fprintf(stderr, "mlo: %s\n", err);
        mlo__config_free(&cfg);
        return EXIT_ERROR;
    }
    printer p = {dry, false};
    mlo_gc_opts o = {.now_ms = mlo__env_now_ms(&env),
                     .retention_ms = cfg.store_retention_ms,
                     .max_bytes = cfg.store_max_bytes,
                     .dry_run = dry,
                     .remove_empty = 1,
                     .on_remove = on_remove,
                     .ctx = &p};
    mlo_gc_result r;
    int rc = mlo__retention_pass(st, &env, &o, &r, err, sizeof err);
    size_t shm = mlo__store_reclaim_shm(dry, on_shm, &p);
    size_t live = mlo__store_live_skipped(st);
    mlo__store_close(st, 0);
    mlo__config_free(&cfg);
    if (rc != MLO_OK) {
        fprintf(stderr, "mlo: gc of %s: %s\n", dir, err);
        return EXIT_ERROR;
    }
    if (r.busy) {
        fprintf(stderr, "mlo: another process is cleaning %s up right now; nothing done\n", dir);
        return EXIT_PASS;
    }
    char h1[32], h2[32], h3[32];
    human(r.bytes, h1, sizeof h1);
    human(r.store_bytes, h2, sizeof h2);
    human(r.unsent_bytes, h3, sizeof h3);
    printf("%s %llu files (%s) of %s", dry ? "would remove" : "removed",
           (unsigned long long)r.files, h1, dir);
    if (shm)
        printf(" and %zu queue files in /dev/shm", shm);
    printf("; the store %s %s, of which %s not acknowledged by a server yet",
           dry ? "would hold" : "holds", h2, h3);
    if (live)
        printf("; %zu processes still running were left alone", live);
    printf("\n");
    return EXIT_PASS;
}

int cli_cmd_rm(int argc, char **argv) {
    const char *store_arg = NULL;
    const char **runs = NULL;
    size_t nruns = 0;
    bool dry = false;
    args a = {argc, argv, 0};
    for (a.i = 1; a.i < argc; a.i++) {
        const char *s = argv[a.i], *v;
        if (cli_is_help(s)) {
            cli_usage_rm(stdout);
            return EXIT_PASS;
        } else if (strcmp(s, "--dry-run") == 0)
            dry = true;
        else if (cli_opt_val(&a, "--store", &v))
            store_arg = v;
        else if (s[0] == '-' && s[1])
            return cli_bad_usage(cli_usage_rm, "unknown option %s", s);
        else {
            runs = xrealloc(runs, (nruns + 1) * sizeof *runs);
            runs[nruns++] = s;
        }
    }
    if (!nruns)
        return cli_bad_usage(cli_usage_rm, "%s", "which runs? (mlo ls lists them)");
    const char *dir = cli_store_dir(store_arg);
    mlo_config cfg;
    if (gc_config(NULL, NULL, &cfg) != 0)
        return EXIT_ERROR;
    mlo_env env;
    mlo__env_init(&env, &cfg);
    struct stat sb;
    mlo_store *st = NULL;
    char err[1024] = "";
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
        mlo__store_open_admin(dir, !dry, &env, &st, err, sizeof err) != MLO_OK) {
        fprintf(stderr, "mlo: no store at %s%s%s\n", dir, err[0] ? ": " : "", err);
        mlo__config_free(&cfg);
        return EXIT_ERROR;
    }
    int rc = EXIT_ERROR;
    store s;
    const char **ids = xcalloc(nruns, sizeof *ids);
    if (cli_store_load(&s, dir, NULL, true) != 0)
        goto out;
    for (size_t i = 0; i < nruns; i++) {
        run *r = cli_resolve(&s, runs[i]);
        if (!r)
            goto out;
        ids[i] = r->id;
    }
    printer p = {dry, false};
    if (mlo__retention_rm(st, &env, ids, nruns, dry, on_remove, &p, err, sizeof err) != MLO_OK) {
        fprintf(stderr, "mlo: rm: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < nruns; i++) {
        run *r = cli_store_find(&s, ids[i]);
        printf("%s run %s (%s)%s\n", dry ? "would remove" : "removed", ids[i],
               r ? cli_run_name(r) : "-", r && r->server_id ? "; it stays on the server" : "");
    }
    rc = EXIT_PASS;
out:
    mlo__store_close(st, 0);
    mlo__config_free(&cfg);
    return rc;
}
