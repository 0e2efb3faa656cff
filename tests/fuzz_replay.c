/*
 * fuzz_replay.c - runs a libFuzzer target over files, without libFuzzer.
 *
 * Linked (gcc, with whatever sanitizer the build directory uses) with one
 * fuzz_*.c target that defines LLVMFuzzerTestOneInput, so the committed
 * corpus is replayed by every test run, also under ASan+UBSan and TSan.
 *
 * Usage: fuzz_<target>_replay DIR_OR_FILE...
 * Every regular file (directories: their direct entries, sorted) is read
 * into an exactly-sized heap block (so ASan sees an over-read, as under
 * libFuzzer) and passed to the target.  The target's own checks abort on a
 * broken invariant.  The target may also set mlo_fuzz_accepted (1 accepted,
 * 0 refused, -1 no verdict); a file whose name starts with "ok-" must be
 * accepted and one starting with "bad-" refused: the corpus doubles as a
 * table of decisions.
 *
 * Prints one line per file that breaks an expectation and a summary; exits
 * non-zero if any did.  Threads: single-threaded.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int mlo_fuzz_accepted = -1;

static int nfiles, nbad;

static void run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        nbad++;
        return;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        nbad++;
        return;
    }
    /* exactly sized, as libFuzzer hands inputs over */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        nbad++;
        return;
    }
    memcpy(exact, buf, len);
    free(buf);

    mlo_fuzz_accepted = -1;
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    nfiles++;

    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strncmp(base, "ok-", 3) && mlo_fuzz_accepted != 1) {
        printf("replay: %s: expected to be accepted, was %s\n", path,
               mlo_fuzz_accepted == 0 ? "refused" : "not judged");
        nbad++;
    } else if (!strncmp(base, "bad-", 4) && mlo_fuzz_accepted != 0) {
        printf("replay: %s: expected to be refused, was %s\n", path,
               mlo_fuzz_accepted == 1 ? "accepted" : "not judged");
        nbad++;
    }
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: no such file or directory\n", path);
        nbad++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s\n", path);
        nbad++;
        return;
    }
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, ents[i]->d_name);
        struct stat es;
        if (ents[i]->d_name[0] != '.' && stat(full, &es) == 0 && S_ISREG(es.st_mode))
            run_file(full);
        free(ents[i]);
    }
    free(ents);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("replay: %d inputs, %d broke an expectation\n", nfiles, nbad);
    if (nfiles == 0) {
        printf("replay: no input found\n");
        return 1;
    }
    return nbad ? 1 : 0;
}
