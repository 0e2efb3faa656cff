/*
 * mlo_sysinfo.c - the system tags MLflow's Python client sets at run start:
 * mlflow.user, mlflow.source.name, mlflow.source.type, and, when the program
 * runs inside a git work tree, mlflow.source.git.commit / .branch / .repoURL.
 *
 * Git is read from the files (.git/HEAD, refs, packed-refs, config), never by
 * running git.  The work tree is looked for above the executable's directory
 * first (a program built inside its repository), then above the current
 * directory.  Threads: any; no shared state.
 */
#define _GNU_SOURCE
#include "mlo_sysinfo.h"

#include "mlo.h"
#include "mlo_validate.h"

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads a small file into buf (NUL-terminated, trailing newline removed). */
static int read_small(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return 0;
}

/* Finds the git dir for a work tree containing `start`; 0 on success. */
static int find_git_dir(const char *start, char *gitdir, size_t cap) {
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", start) >= (int)sizeof dir)
        return -1;
    for (;;) {
        char cand[PATH_MAX + 8];
        struct stat st;
        snprintf(cand, sizeof cand, "%s/.git", dir);
        if (stat(cand, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                if (snprintf(gitdir, cap, "%s", cand) >= (int)cap)
                    return -1;
                return 0;
            }
            /* a worktree or submodule: ".git" is a file "gitdir: <path>" */
            char line[PATH_MAX];
            if (read_small(cand, line, sizeof line) == 0 && strncmp(line, "gitdir: ", 8) == 0) {
                const char *g = line + 8;
                int w = g[0] == '/' ? snprintf(gitdir, cap, "%s", g)
                                    : snprintf(gitdir, cap, "%s/%s", dir, g);
                return w > 0 && w < (int)cap ? 0 : -1;
            }
            return -1;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            return -1;
        *slash = 0;
    }
}

static int is_hex40(const char *s) {
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 40;
}

/* Resolves a ref ("refs/heads/main") to a commit via loose refs or packed-refs. */
static int resolve_ref(const char *gitdir, const char *ref, char *out41) {
    char path[PATH_MAX + 256], buf[256];
    /* worktrees keep refs in the common dir; try both */
    const char *dirs[2] = {gitdir, NULL};
    char common[PATH_MAX + 512];
    snprintf(path, sizeof path, "%s/commondir", gitdir);
    if (read_small(path, buf, sizeof buf) == 0) {
        int w = buf[0] == '/' ? snprintf(common, sizeof common, "%s", buf)
                              : snprintf(common, sizeof common, "%s/%s", gitdir, buf);
        if (w > 0 && w < (int)sizeof common)
            dirs[1] = common;
    }
    for (int d = 0; d < 2 && dirs[d]; d++) {
        snprintf(path, sizeof path, "%s/%s", dirs[d], ref);
        if (read_small(path, buf, sizeof buf) == 0 && is_hex40(buf)) {
            memcpy(out41, buf, 41);
            return 0;
        }
        snprintf(path, sizeof path, "%s/packed-refs", dirs[d]);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        char line[1024];
        size_t rl = strlen(ref);
        while (fgets(line, sizeof line, f)) {
            if (strlen(line) > 41 && line[40] == ' ' && strncmp(line + 41, ref, rl) == 0 &&
                (line[41 + rl] == '\n' || line[41 + rl] == 0)) {
                line[40] = 0;
                if (is_hex40(line)) {
                    memcpy(out41, line, 41);
                    fclose(f);
                    return 0;
                }
            }
        }
        fclose(f);
    }
    return -1;
}

static void origin_url(const char *gitdir, char *out, size_t cap) {
    char path[PATH_MAX + 16];
    out[0] = 0;
    snprintf(path, sizeof path, "%s/config", gitdir);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[2048];
    int in_origin = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '[') {
            in_origin = strncmp(s, "[remote \"origin\"]", 17) == 0;
            continue;
        }
        if (in_origin && strncmp(s, "url", 3) == 0) {
            char *eq = strchr(s, '=');
            if (!eq)
                continue;
            eq++;
            while (*eq == ' ')
                eq++;
            size_t n = strcspn(eq, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, eq, n);
            out[n] = 0;
            break;
        }
    }
    fclose(f);
}

static int git_tags(const char *start, mlo_kv **tags, size_t *n) {
    char gitdir[PATH_MAX], head[512], commit[41] = "", path[PATH_MAX + 8];
    if (find_git_dir(start, gitdir, sizeof gitdir))
        return 1;
    snprintf(path, sizeof path, "%s/HEAD", gitdir);
    if (read_small(path, head, sizeof head))
        return 1;
    const char *branch = NULL;
    if (strncmp(head, "ref: ", 5) == 0) {
        if (resolve_ref(gitdir, head + 5, commit))
            return 1; /* a repository without commits */
        if (strncmp(head + 5, "refs/heads/", 11) == 0)
            branch = head + 16;
    } else if (is_hex40(head)) {
        memcpy(commit, head, 41);
    } else {
        return 1;
    }
    char url[1024];
    origin_url(gitdir, url, sizeof url);
    if (!mlo__validate_utf8(url, strlen(url)))
        url[0] = 0;
    if (mlo__kv_push(tags, n, "mlflow.source.git.commit", commit))
        return -1;
    if (branch && mlo__validate_utf8(branch, strlen(branch)) &&
        mlo__kv_push(tags, n, "mlflow.source.git.branch", branch))
        return -1;
    if (url[0] && mlo__kv_push(tags, n, "mlflow.source.git.repoURL", url))
        return -1;
    return 0;
}

int mlo__sysinfo_tags(mlo_kv **tags, size_t *n) {
    /* user: the OS user, as getpass.getuser() finds it */
    const char *user = getenv("LOGNAME");
    if (!user || !*user)
        user = getenv("USER");
    struct passwd pw, *res = NULL;
    char pwbuf[1024];
    if ((!user || !*user) && getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res)
        user = res->pw_name;
    if (user && *user && mlo__validate_utf8(user, strlen(user)) &&
        mlo__kv_push(tags, n, "mlflow.user", user))
        return -1;

    /* source: the program's path (argv[0] resolved), as MLflow uses the script */
    char exe[PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el > 0) {
        exe[el] = 0;
        if (mlo__validate_utf8(exe, (size_t)el) && mlo__kv_push(tags, n, "mlflow.source.name", exe))
            return -1;
    }
    if (mlo__kv_push(tags, n, "mlflow.source.type", "LOCAL"))
        return -1;

    int g = 1;
    if (el > 0) {
        char *slash = strrchr(exe, '/');
        if (slash && slash != exe) {
            *slash = 0;
            g = git_tags(exe, tags, n);
        }
    }
    if (g > 0) {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd))
            g = git_tags(cwd, tags, n);
    }
    return g < 0 ? -1 : 0;
}
