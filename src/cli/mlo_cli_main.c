/*
 * mlo_cli_main.c - the `mlo` command-line tool: ls, show, sync, gate, report.
 * Dispatch, the usage texts and option parsing; each command has its file
 * (mlo_cli.h lists them).
 *
 * Exit codes (all commands): 0 success (gate: every condition holds),
 * 1 gate: a condition fails, 2 usage error or the command could not do its
 * job (no store, unknown run, server failure); sync also 3 (server
 * unreachable or failing) and 4 (events refused), see mlo_cli_sync.c.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_cli.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_exit_text = "Exit status: 0 success (gate: all conditions hold), 1 gate: a "
                                  "condition fails,\n"
                                  "2 usage error or failure (no store, unknown run, server "
                                  "error); sync also\n"
                                  "3 (server unreachable or failing) and 4 (events refused).\n";

const char *const cli_store_text =
    "STORE is the local store directory: the argument, else $MLO_STORE_DIR, else ./mlo-store.\n";

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: mlo <command> [options]\n"
            "\n"
            "Commands:\n"
            "  ls [STORE]                   list local runs with their latest metrics\n"
            "  show RUN [STORE]             a run's params, tags and metric histories\n"
            "  sync [STORE] [--to URI]      upload local runs to an MLflow tracking server\n"
            "  gate RUN [STORE|--uri URI] CONDITION...\n"
            "                               check a run's metrics against thresholds\n"
            "  report [STORE|--uri URI] -o FILE.html\n"
            "                               one HTML page comparing runs: table, charts\n"
            "  gc [STORE] [--dry-run]       remove what the server acknowledged (retention,\n"
            "                               size cap) and dead processes' leftovers\n"
            "  rm RUN... [--store STORE]    remove runs from the store\n"
            "  help [COMMAND]               this text, or a command's\n"
            "\n"
            "Every command takes --help.  mlo --version prints the version.\n"
            "%s%s",
            cli_store_text, cli_exit_text);
}

bool cli_opt_val(args *a, const char *name, const char **val) {
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0)
        return false;
    if (s[n] == '=') {
        *val = s + n + 1;
        return true;
    }
    if (s[n] != '\0')
        return false;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "mlo: %s needs a value\n", name);
        exit(EXIT_ERROR);
    }
    *val = a->argv[++a->i];
    return true;
}

bool cli_is_help(const char *s) {
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

int cli_bad_usage(void (*usage)(FILE *), const char *fmt, const char *what) {
    fprintf(stderr, "mlo: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return EXIT_ERROR;
}

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *f);
} command;

static const command COMMANDS[] = {
    {"ls", cli_cmd_ls, cli_usage_ls},
    {"show", cli_cmd_show, cli_usage_show},
    {"sync", cli_cmd_sync, cli_usage_sync},
    {"gate", cli_cmd_gate, cli_usage_gate},
    {"report", cli_cmd_report, cli_usage_report},
    {"gc", cli_cmd_gc, cli_usage_gc},
    {"rm", cli_cmd_rm, cli_usage_rm},
};

static const command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

int main(int argc, char **argv) {
    setlocale(LC_ALL, "");
    /* numbers are read and written with '.', whatever the locale: what the
     * tool prints is parsed by scripts (--json, gate thresholds) */
    setlocale(LC_NUMERIC, "C");
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_ERROR;
    }
    const char *cmd = argv[1];
    if (cli_is_help(cmd) || strcmp(cmd, "help") == 0) {
        const command *c = find_command(argc > 2 ? argv[2] : "");
        if (c)
            c->usage(stdout);
        else
            usage_main(stdout);
        return EXIT_PASS;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("mlo %s\n", mlo_version());
        return EXIT_PASS;
    }
    const command *c = find_command(cmd);
    if (!c) {
        fprintf(stderr, "mlo: unknown command '%s'\n\n", cmd);
        usage_main(stderr);
        return EXIT_ERROR;
    }
    int rc = c->run(argc - 1, argv + 1);
    fflush(stdout);
    xfree_all();
    return rc;
}
