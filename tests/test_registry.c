/*
 * test_registry.c - reading artifacts back and the model registry, through
 * the public API against the test server (tests/mlflow_test_server.py):
 * mlo_list_artifacts, mlo_download_artifacts (run ids, runs:/ and models:/
 * URIs), mlo_register_model, mlo_set_model_alias.
 *
 * Artifacts are put on the server with plain HTTP PUTs to the proxied
 * artifact API (independent of mlo's upload code), and every assertion is
 * on what the server stores (its /_test/dump) or on the bytes that land on
 * disk.  Hostile servers are played by the server's fault rules (a listing
 * answered with names such as "../evil"); planted symbolic links are made
 * in the download directory by the test.  Every test works in its own
 * temporary directory and checks nothing was written outside it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlo.h"
#include "testutil.h"

static testsrv *srv;

/* ---- files ------------------------------------------------------------------------ */

/* A fresh empty directory below the scratch directory (kept until the process ends). */
static const char *scratch(void) {
    static char *dirs[64];
    static int n;
    free(dirs[n % 64]);
    dirs[n % 64] = tu_tmpdir("t");
    return dirs[n++ % 64];
}

static char *path2(const char *a, const char *b) {
    return tu_join(a, b);
}

static unsigned char *read_all(const char *path, size_t *len) {
    return tu_read_file(path, len);
}

static void write_all(const char *path, const void *data, size_t len) {
    tu_write_file(path, data, len);
}

/* Asserts the file at dir/rel holds exactly data. */
static void assert_file(const char *dir, const char *rel, const void *data, size_t len) {
    char *p = path2(dir, rel);
    struct stat sb;
    if (lstat(p, &sb) != 0)
        fail_msg("%s is missing", p);
    assert_true(S_ISREG(sb.st_mode));
    size_t n = 0;
    unsigned char *got = read_all(p, &n);
    assert_non_null(got);
    if (n != len || (len && memcmp(got, data, len) != 0))
        fail_msg("%s: %zu bytes differ from the %zu uploaded", p, n, len);
    free(got);
    free(p);
}

/* Counts the entries (files, directories, links) below dir, recursively,
 * without following links; *parts gets the ".mlo-part" files among them. */
static int count_below(const char *dir, int *parts) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        size_t l = strlen(e->d_name);
        if (parts && l > 9 && !strcmp(e->d_name + l - 9, ".mlo-part"))
            (*parts)++;
        char *p = path2(dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            n += count_below(p, parts);
        free(p);
    }
    closedir(d);
    return n;
}

/* ---- content ------------------------------------------------------------------------ */

static unsigned char *pattern(size_t len, uint32_t seed) {
    unsigned char *b = malloc(len ? len : 1);
    assert_non_null(b);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    return b;
}

/* ---- the server ---------------------------------------------------------------------- */

/* PUT data as the artifact <rel> of run (exp, run) through the proxied API. */
static void put_artifact(const char *exp, const char *run, const char *rel, const void *data,
                         size_t len) {
    char enc[512] = "";
    for (const char *p = rel; *p; p++) /* the only character the tree needs encoded */
        snprintf(enc + strlen(enc), sizeof enc - strlen(enc), *p == ' ' ? "%%20" : "%c", *p);
    char path[1024];
    snprintf(path, sizeof path, "/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/%s", exp, run,
             enc);
    long code = 0;
    char *body = testsrv_request(srv, "PUT", path, len ? data : "", len, "application/octet-stream",
                                 &code, NULL);
    assert_non_null(body);
    free(body);
    assert_int_equal(code, 200);
}

static json_t *dump(void) {
    return tu_dump(srv);
}

static void fault(const char *json) {
    tu_fault(srv, json);
}

static void server_config(const char *json) {
    tu_config(srv, json);
}

/* The registered model `name` of the dump (NULL if none).  Borrowed from d. */
static json_t *find_model(json_t *d, const char *name) {
    json_t *models = json_object_get(d, "registered_models");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        const char *n = json_string_value(json_object_get(m, "name"));
        if (n && !strcmp(n, name))
            return m;
    }
    return NULL;
}

/* Version v ("1", ...) of model m. */
static json_t *find_version(json_t *m, const char *v) {
    size_t i;
    json_t *mv;
    json_array_foreach(json_object_get(m, "versions"), i, mv) {
        const char *s = json_string_value(json_object_get(mv, "version"));
        json_int_t iv = json_integer_value(json_object_get(mv, "version"));
        if ((s && !strcmp(s, v)) || (!s && iv == atoll(v)))
            return mv;
    }
    return NULL;
}

/* ---- clients and runs ------------------------------------------------------------------ */

/* A client on a store of its own; request timeout timeout_s (the bound of
 * the waits of mlo_start_run and mlo_register_model). */
static mlo_client_t *open_client_t(tu_errors *cap, const char *uri, double timeout_s) {
    tu_client_cfg k = {.uri = uri,
                       .retries = 2,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = timeout_s,
                       .close_ms = 5000,
                       .errors = cap};
    return tu_open(&k);
}

static mlo_client_t *open_client_uri(tu_errors *cap, const char *uri) {
    return open_client_t(cap, uri, 5);
}

static mlo_client_t *open_client(tu_errors *cap) {
    return open_client_uri(cap, testsrv_uri(srv));
}

/* Starts a run and waits until it is on the server (its id is the server's). */
static mlo_run_t *start_run(mlo_client_t *c, const char *exp_name) {
    mlo_run_t *r = NULL;
    assert_int_equal(mlo_start_run(c, exp_name, NULL, NULL, &r), MLO_OK);
    TU_WAIT_UNTIL(mlo_run_experiment_id(r), 5000);
    assert_non_null(mlo_run_experiment_id(r));
    assert_int_equal(strlen(mlo_run_id(r)), 32);
    return r;
}

/* The tree every download test uses, put on run r. */
typedef struct afile {
    const char *rel;
    size_t len;
    unsigned char *data;
} afile;

static afile tree[] = {
    {"a.txt", 3, NULL},
    {"model/weights.bin", 3 * 1024 * 1024 + 17, NULL}, /* several transport chunks */
    {"model/MLmodel", 200, NULL},
    {"model/sub/empty.txt", 0, NULL},
    {"model/sub/deeper/x y.json", 1000, NULL}, /* a space: percent-encoded on the way */
    {"plots/loss.png", 5000, NULL},
};
#define NTREE (sizeof tree / sizeof tree[0])

static void put_tree(mlo_run_t *r) {
    for (size_t i = 0; i < NTREE; i++) {
        if (!tree[i].data)
            tree[i].data = pattern(tree[i].len, (uint32_t)i + 1);
        put_artifact(mlo_run_experiment_id(r), mlo_run_id(r), tree[i].rel, tree[i].data,
                     tree[i].len);
    }
}

static const afile *tree_file(const char *rel) {
    for (size_t i = 0; i < NTREE; i++)
        if (!strcmp(tree[i].rel, rel))
            return &tree[i];
    fail_msg("no tree file %s", rel);
    return NULL;
}

/* Asserts dir holds exactly the tree's files below prefix ("" or "model"),
 * at their paths relative to prefix, and nothing else (no .mlo-part). */
static void assert_tree(const char *dir, const char *prefix) {
    size_t pl = strlen(prefix);
    int want = 0;
    char seen_dirs[32][256];
    int nd = 0;
    for (size_t i = 0; i < NTREE; i++) {
        const char *rel = tree[i].rel;
        if (pl && (strncmp(rel, prefix, pl) != 0 || rel[pl] != '/'))
            continue;
        const char *sub = pl ? rel + pl + 1 : rel;
        assert_file(dir, sub, tree[i].data, tree[i].len);
        want++;
        /* count the directories on the way, once each */
        for (const char *s = strchr(sub, '/'); s; s = strchr(s + 1, '/')) {
            int known = 0;
            for (int k = 0; k < nd; k++)
                if (strlen(seen_dirs[k]) == (size_t)(s - sub) &&
                    !strncmp(seen_dirs[k], sub, (size_t)(s - sub)))
                    known = 1;
            if (!known) {
                snprintf(seen_dirs[nd], sizeof seen_dirs[0], "%.*s", (int)(s - sub), sub);
                nd++;
                want++;
            }
        }
    }
    int parts = 0;
    assert_int_equal(count_below(dir, &parts), want);
    assert_int_equal(parts, 0);
}

/* ---- listing ---------------------------------------------------------------------------- */

typedef struct listing {
    int n;
    char paths[32][256];
    int is_dir[32];
    int64_t size[32];
    int stop_after; /* 0: never */
} listing;

static int on_entry(void *user, const char *path, int is_dir, int64_t size) {
    listing *l = user;
    if (l->n < 32) {
        snprintf(l->paths[l->n], sizeof l->paths[0], "%s", path);
        l->is_dir[l->n] = is_dir;
        l->size[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int listing_find(const listing *l, const char *path) {
    for (int i = 0; i < l->n && i < 32; i++)
        if (!strcmp(l->paths[i], path))
            return i;
    return -1;
}

static void assert_entry(const listing *l, const char *path, int is_dir, int64_t size) {
    int i = listing_find(l, path);
    if (i < 0)
        fail_msg("listing lacks %s", path);
    assert_int_equal(l->is_dir[i], is_dir);
    assert_int_equal(l->size[i], size);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    return 0;
}

static void test_list(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-list");
    put_tree(r);
    const char *rid = mlo_run_id(r);

    listing l = {0};
    assert_int_equal(mlo_list_artifacts(c, rid, NULL, on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 3);
    assert_entry(&l, "a.txt", 0, 3);
    assert_entry(&l, "model", 1, -1);
    assert_entry(&l, "plots", 1, -1);

    memset(&l, 0, sizeof l);
    assert_int_equal(mlo_list_artifacts(c, rid, "model", on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 3);
    assert_entry(&l, "model/weights.bin", 0, (int64_t)tree_file("model/weights.bin")->len);
    assert_entry(&l, "model/MLmodel", 0, 200);
    assert_entry(&l, "model/sub", 1, -1);

    memset(&l, 0, sizeof l);
    assert_int_equal(mlo_list_artifacts(c, rid, "model/sub", on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 2);
    assert_entry(&l, "model/sub/empty.txt", 0, 0);
    assert_entry(&l, "model/sub/deeper", 1, -1);

    /* a path that does not exist, and a file's path: no entries */
    memset(&l, 0, sizeof l);
    assert_int_equal(mlo_list_artifacts(c, rid, "missing/dir", on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(mlo_list_artifacts(c, rid, "a.txt", on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 0);

    /* runs:/ URIs: paths relative to what the URI names */
    char uri[128];
    snprintf(uri, sizeof uri, "runs:/%s", rid);
    memset(&l, 0, sizeof l);
    assert_int_equal(mlo_list_artifacts(c, uri, "plots", on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 1);
    assert_entry(&l, "plots/loss.png", 0, 5000);
    snprintf(uri, sizeof uri, "runs:/%s/model/sub", rid);
    memset(&l, 0, sizeof l);
    assert_int_equal(mlo_list_artifacts(c, uri, NULL, on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 2);
    assert_entry(&l, "empty.txt", 0, 0);
    assert_entry(&l, "deeper", 1, -1);

    /* the callback stops the listing */
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    assert_int_equal(mlo_list_artifacts(c, rid, NULL, on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 1);

    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- downloads ---------------------------------------------------------------------------- */

static void test_download_tree(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-download");
    put_tree(r);
    const char *rid = mlo_run_id(r);
    const char *top = scratch();

    /* everything, into a directory that does not exist yet (nor its parent) */
    char *dest = path2(top, "new/dest");
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, dest), MLO_OK);
    assert_tree(dest, "");
    /* again into the same place: files are replaced, nothing piles up */
    char *stale = path2(dest, "a.txt");
    write_all(stale, "stale content", 13);
    free(stale);
    assert_int_equal(mlo_download_artifacts(c, rid, "", dest), MLO_OK);
    assert_tree(dest, "");
    free(dest);

    /* a directory: its content lands directly in dest_dir */
    dest = path2(top, "model-only");
    assert_int_equal(mlo_download_artifacts(c, rid, "model", dest), MLO_OK);
    assert_tree(dest, "model");
    free(dest);

    /* the same through runs:/<id>/model */
    char uri[128];
    snprintf(uri, sizeof uri, "runs:/%s/model", rid);
    dest = path2(top, "runs-uri");
    assert_int_equal(mlo_download_artifacts(c, uri, NULL, dest), MLO_OK);
    assert_tree(dest, "model");
    free(dest);

    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_download_file(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-download-file");
    put_tree(r);
    const char *rid = mlo_run_id(r);
    const char *top = scratch();
    const afile *w = tree_file("model/weights.bin");

    /* a file path: dest_dir/<basename>, nothing else */
    char *dest = path2(top, "one");
    assert_int_equal(mlo_download_artifacts(c, rid, "model/weights.bin", dest), MLO_OK);
    assert_file(dest, "weights.bin", w->data, w->len);
    assert_int_equal(count_below(dest, NULL), 1);

    /* an empty file, and a file at the root */
    assert_int_equal(mlo_download_artifacts(c, rid, "model/sub/empty.txt", dest), MLO_OK);
    assert_file(dest, "empty.txt", "", 0);
    assert_int_equal(mlo_download_artifacts(c, rid, "a.txt", dest), MLO_OK);
    assert_file(dest, "a.txt", tree_file("a.txt")->data, 3);

    /* a stale part from an interrupted download is replaced; the file too */
    char *part = path2(dest, "weights.bin.mlo-part");
    write_all(part, "junk", 4);
    free(part);
    char *old = path2(dest, "weights.bin");
    write_all(old, "old", 3);
    free(old);
    assert_int_equal(mlo_download_artifacts(c, rid, "model/weights.bin", dest), MLO_OK);
    assert_file(dest, "weights.bin", w->data, w->len);
    assert_int_equal(count_below(dest, NULL), 3);

    /* a runs:/ URI naming the file itself */
    char uri[160];
    snprintf(uri, sizeof uri, "runs:/%s/model/MLmodel", rid);
    char *dest2 = path2(top, "two");
    assert_int_equal(mlo_download_artifacts(c, uri, NULL, dest2), MLO_OK);
    assert_file(dest2, "MLmodel", tree_file("model/MLmodel")->data, 200);
    assert_int_equal(count_below(dest2, NULL), 1);
    free(dest2);

    /* a path that is not there: not found, and the directory is not made */
    char *dest3 = path2(top, "three");
    assert_int_equal(mlo_download_artifacts(c, rid, "model/nope.bin", dest3), MLO_ERR_NOT_FOUND);
    assert_true(tu_errors_count(&cap, MLO_ERR_NOT_FOUND, "model/nope.bin"));
    struct stat sb;
    assert_int_not_equal(stat(dest3, &sb), 0);
    free(dest3);

    /* a file the server lists but cannot serve: the part file goes */
    fault("{\"path_prefix\": \"/api/2.0/mlflow-artifacts/artifacts/\", \"method\": \"GET\", "
          "\"status\": 404, \"count\": 1}");
    assert_int_equal(mlo_download_artifacts(c, rid, "plots/loss.png", dest), MLO_ERR_NOT_FOUND);
    int parts = 0;
    count_below(dest, &parts);
    assert_int_equal(parts, 0);
    char *png = path2(dest, "loss.png");
    assert_int_not_equal(lstat(png, &sb), 0);
    free(png);
    free(dest);

    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- the registry ------------------------------------------------------------------------ */

static void test_register_alias_download(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-models");
    put_tree(r);
    const char *rid = mlo_run_id(r);
    const char *exp = mlo_run_experiment_id(r);
    /* a second model directory with other content, for version 2 */
    unsigned char *v2 = pattern(4321, 99);
    put_artifact(exp, rid, "model2/weights.bin", v2, 4321);

    int64_t v = 0;
    assert_int_equal(mlo_register_model(r, "model", "Fraud Model", &v), MLO_OK);
    assert_int_equal(v, 1);
    assert_int_equal(mlo_register_model(r, "model2", "Fraud Model", &v), MLO_OK);
    assert_int_equal(v, 2);
    assert_int_equal(mlo_register_model(r, "model", "Fraud Model", NULL), MLO_OK); /* 3 */

    /* what the server stores: one model, versions pointing at the run */
    json_t *d = dump();
    json_t *m = find_model(d, "Fraud Model");
    assert_non_null(m);
    assert_int_equal(json_array_size(json_object_get(m, "versions")), 3);
    char want[256];
    snprintf(want, sizeof want, "mlflow-artifacts:/%s/%s/artifacts/model", exp, rid);
    json_t *mv = find_version(m, "1");
    assert_non_null(mv);
    assert_string_equal(json_string_value(json_object_get(mv, "source")), want);
    assert_string_equal(json_string_value(json_object_get(mv, "run_id")), rid);
    mv = find_version(m, "2");
    assert_non_null(mv);
    snprintf(want, sizeof want, "mlflow-artifacts:/%s/%s/artifacts/model2", exp, rid);
    assert_string_equal(json_string_value(json_object_get(mv, "source")), want);
    json_decref(d);

    /* aliases: set, then move */
    assert_int_equal(mlo_set_model_alias(c, "Fraud Model", "champion", 1), MLO_OK);
    assert_int_equal(mlo_set_model_alias(c, "Fraud Model", "challenger", 2), MLO_OK);
    d = dump();
    json_t *aliases = json_object_get(find_model(d, "Fraud Model"), "aliases");
    assert_string_equal(json_string_value(json_object_get(aliases, "champion")), "1");
    assert_string_equal(json_string_value(json_object_get(aliases, "challenger")), "2");
    json_decref(d);

    const char *top = scratch();
    char *dest = path2(top, "champion");
    assert_int_equal(mlo_download_artifacts(c, "models:/Fraud Model@champion", NULL, dest), MLO_OK);
    assert_tree(dest, "model");
    free(dest);

    dest = path2(top, "challenger");
    assert_int_equal(mlo_download_artifacts(c, "models:/Fraud Model@challenger", NULL, dest),
                     MLO_OK);
    assert_file(dest, "weights.bin", v2, 4321);
    assert_int_equal(count_below(dest, NULL), 1);
    free(dest);

    /* move champion to 2: the same URI now gives version 2's files */
    assert_int_equal(mlo_set_model_alias(c, "Fraud Model", "champion", 2), MLO_OK);
    d = dump();
    aliases = json_object_get(find_model(d, "Fraud Model"), "aliases");
    assert_string_equal(json_string_value(json_object_get(aliases, "champion")), "2");
    json_decref(d);
    dest = path2(top, "champion-moved");
    assert_int_equal(mlo_download_artifacts(c, "models:/Fraud Model@champion", NULL, dest), MLO_OK);
    assert_file(dest, "weights.bin", v2, 4321);
    free(dest);

    /* by version number, with a path below the model */
    dest = path2(top, "v1");
    assert_int_equal(mlo_download_artifacts(c, "models:/Fraud Model/1", NULL, dest), MLO_OK);
    assert_tree(dest, "model");
    free(dest);
    dest = path2(top, "v1-sub");
    assert_int_equal(mlo_download_artifacts(c, "models:/Fraud Model/1", "sub", dest), MLO_OK);
    assert_tree(dest, "model/sub");
    free(dest);
    dest = path2(top, "v3-file");
    assert_int_equal(mlo_download_artifacts(c, "models:/Fraud Model/3", "MLmodel", dest), MLO_OK);
    assert_file(dest, "MLmodel", tree_file("model/MLmodel")->data, 200);
    assert_int_equal(count_below(dest, NULL), 1);
    free(dest);

    /* and the run's own URI, as MLflow's docs write it */
    char uri[128];
    snprintf(uri, sizeof uri, "runs:/%s/model", rid);
    dest = path2(top, "runs");
    assert_int_equal(mlo_download_artifacts(c, uri, NULL, dest), MLO_OK);
    assert_tree(dest, "model");
    free(dest);

    /* listing through a model URI: relative to the model's directory */
    listing l = {0};
    assert_int_equal(mlo_list_artifacts(c, "models:/Fraud Model/1", NULL, on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 3);
    assert_entry(&l, "weights.bin", 0, (int64_t)tree_file("model/weights.bin")->len);
    assert_entry(&l, "MLmodel", 0, 200);
    assert_entry(&l, "sub", 1, -1);

    /* a model name holding '@': the alias is after the last one (as MLflow) */
    assert_int_equal(mlo_register_model(r, "model2", "team@fraud", &v), MLO_OK);
    assert_int_equal(v, 1);
    assert_int_equal(mlo_set_model_alias(c, "team@fraud", "prod", 1), MLO_OK);
    dest = path2(top, "at-name");
    assert_int_equal(mlo_download_artifacts(c, "models:/team@fraud@prod", NULL, dest), MLO_OK);
    assert_file(dest, "weights.bin", v2, 4321);
    free(dest);
    dest = path2(top, "at-name-v");
    assert_int_equal(mlo_download_artifacts(c, "models:/team@fraud/1", NULL, dest), MLO_OK);
    assert_file(dest, "weights.bin", v2, 4321);
    free(dest);

    free(v2);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* A model version whose source is a runs:/ URI or another models:/ URI
 * (made by hand, as other clients do) resolves too. */
static void test_version_sources(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-sources");
    put_tree(r);
    const char *rid = mlo_run_id(r);
    long code = 0;
    free(testsrv_post(srv, "/api/2.0/mlflow/registered-models/create", "{\"name\": \"byhand\"}",
                      &code));
    assert_int_equal(code, 200);
    char body[256];
    snprintf(body, sizeof body, "{\"name\": \"byhand\", \"source\": \"runs:/%s/model/sub\"}", rid);
    free(testsrv_post(srv, "/api/2.0/mlflow/model-versions/create", body, &code));
    assert_int_equal(code, 200);
    free(testsrv_post(srv, "/api/2.0/mlflow/model-versions/create",
                      "{\"name\": \"byhand\", \"source\": \"models:/byhand/1\"}", &code));
    assert_int_equal(code, 200); /* MLflow 2.21 takes a models:/ source */
    char *dest = path2(scratch(), "via-models");
    assert_int_equal(mlo_download_artifacts(c, "models:/byhand/2", NULL, dest), MLO_OK);
    assert_tree(dest, "model/sub");
    free(dest);
    dest = path2(scratch(), "via-runs");
    assert_int_equal(mlo_download_artifacts(c, "models:/byhand/1", NULL, dest), MLO_OK);
    assert_tree(dest, "model/sub");
    free(dest);

    /* an artifact store the client cannot reach through the server */
    free(testsrv_post(srv, "/api/2.0/mlflow/model-versions/create",
                      "{\"name\": \"byhand\", \"source\": \"s3://bucket/some/model\"}", &code));
    assert_int_equal(code, 200);
    json_t *d = dump();
    size_t nv = json_array_size(json_object_get(find_model(d, "byhand"), "versions"));
    json_decref(d);
    char uri[64];
    snprintf(uri, sizeof uri, "models:/byhand/%zu", nv);
    dest = path2(scratch(), "s3");
    assert_int_equal(mlo_download_artifacts(c, uri, NULL, dest), MLO_ERR_ARTIFACTS_NOT_PROXIED);
    assert_true(tu_errors_count(&cap, MLO_ERR_ARTIFACTS_NOT_PROXIED, "--serve-artifacts"));
    free(dest);

    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* mlo_register_model waits for the run to be created on the server. */
static void test_register_waits_for_run(void **state) {
    (void)state;
    tu_errors cap;
    /* a request timeout of 1.5 s bounds the waits below (start_run's, then
     * register_model's): the test needs them to expire, not to be long */
    mlo_client_t *c = open_client_t(&cap, testsrv_uri(srv), 1.5);
    /* the server refuses to create runs for a while: the run starts
     * locally, without a server id */
    fault("{\"path_prefix\": \"runs/create\", \"status\": 503, \"count\": -1}");
    mlo_run_t *r = NULL;
    assert_int_equal(mlo_start_run(c, "registry-wait", NULL, NULL, &r), MLO_OK);
    assert_null(mlo_run_experiment_id(r));
    /* still down after the wait (the request timeout, 1.5 s here): a timeout */
    int64_t v = 0;
    assert_int_equal(mlo_register_model(r, "model", "waited", &v), MLO_ERR_TIMEOUT);
    assert_true(tu_errors_count(&cap, MLO_ERR_TIMEOUT, "not on the server"));
    json_t *d = dump();
    assert_null(find_model(d, "waited"));
    json_decref(d);
    /* back: register waits for the creation, then registers */
    tu_faults_clear(srv);
    assert_int_equal(mlo_register_model(r, "model", "waited", &v), MLO_OK);
    assert_int_equal(v, 1);
    d = dump();
    json_t *mv = find_version(find_model(d, "waited"), "1");
    assert_non_null(mv);
    assert_string_equal(json_string_value(json_object_get(mv, "run_id")), mlo_run_id(r));
    json_decref(d);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* The whole flow through mlo only: log a model directory and bytes, register
 * at once (the call waits for the uploads), alias, download byte-exact. */
static void test_log_register_download(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-flow");
    const char *top = scratch();
    char *src = path2(top, "out");
    assert_int_equal(mkdir(src, 0700), 0);
    char *sub = path2(src, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    const size_t wlen = 2 * 1024 * 1024 + 5;
    unsigned char *w = pattern(wlen, 7);
    char *f1 = path2(src, "weights.bin"), *f2 = path2(sub, "vocab.txt");
    write_all(f1, w, wlen);
    write_all(f2, "a b c\n", 6);
    assert_int_equal(mlo_log_artifact(r, src, "model"), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(r, "{\"k\": 1}", 8, "model/MLmodel"), MLO_OK);
    /* the caller may delete its files at once */
    assert_int_equal(unlink(f1), 0);
    assert_int_equal(unlink(f2), 0);

    /* at once: the registration waits for the uploads, so the version
     * points at files that are there */
    int64_t v = 0;
    assert_int_equal(mlo_register_model(r, "model", "flow", &v), MLO_OK);
    assert_int_equal(v, 1);
    json_t *d = dump();
    size_t i;
    json_t *a;
    int seen = 0;
    json_array_foreach(json_object_get(d, "artifacts"), i, a) {
        const char *p = json_string_value(json_object_get(a, "path"));
        if (p && strstr(p, mlo_run_id(r)) &&
            (strstr(p, "model/weights.bin") || strstr(p, "model/sub/vocab.txt") ||
             strstr(p, "model/MLmodel")))
            seen++;
    }
    assert_int_equal(seen, 3);
    json_decref(d);
    assert_int_equal(mlo_set_model_alias(c, "flow", "champion", v), MLO_OK);

    char *dest = path2(top, "served");
    assert_int_equal(mlo_download_artifacts(c, "models:/flow@champion", NULL, dest), MLO_OK);
    assert_file(dest, "weights.bin", w, wlen);
    assert_file(dest, "sub/vocab.txt", "a b c\n", 6);
    assert_file(dest, "MLmodel", "{\"k\": 1}", 8);
    assert_int_equal(count_below(dest, NULL), 4);
    free(dest);

    listing l = {0};
    assert_int_equal(mlo_list_artifacts(c, mlo_run_id(r), "model", on_entry, &l), MLO_OK);
    assert_int_equal(l.n, 3);
    assert_entry(&l, "model/weights.bin", 0, (int64_t)wlen);
    assert_entry(&l, "model/MLmodel", 0, 8);
    assert_entry(&l, "model/sub", 1, -1);

    free(f1);
    free(f2);
    free(sub);
    free(src);
    free(w);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* Uploads that cannot finish within the request timeout: no version. */
static void test_register_waits_for_uploads(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client_t(&cap, testsrv_uri(srv), 1.5); /* the wait's bound */
    mlo_run_t *r = start_run(c, "registry-upload-wait");
    server_config("{\"artifacts_down\": true}");
    assert_int_equal(mlo_log_artifact_bytes(r, "weights", 7, "model/w.bin"), MLO_OK);
    int64_t v = 0;
    assert_int_equal(mlo_register_model(r, "model", "slow", &v), MLO_ERR_TIMEOUT);
    assert_true(tu_errors_count(&cap, MLO_ERR_TIMEOUT, "uploaded"));
    json_t *d = dump();
    assert_null(find_model(d, "slow"));
    json_decref(d);
    server_config("{\"artifacts_down\": false}");
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_int_equal(mlo_register_model(r, "model", "slow", &v), MLO_OK);
    assert_int_equal(v, 1);
    char *dest = path2(scratch(), "d");
    assert_int_equal(mlo_download_artifacts(c, "models:/slow/1", NULL, dest), MLO_OK);
    assert_file(dest, "w.bin", "weights", 7);
    free(dest);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- hostile servers ------------------------------------------------------------------------ */

/* The listing route answers `files_json` (count times; -1: always). */
static void hostile_listing(const char *files_json, int count) {
    char *rule = NULL;
    json_t *b =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:i}", "path_prefix",
                  "/api/2.0/mlflow-artifacts/artifacts", "method", "GET", "body", files_json,
                  "status", 200, "content_type", "application/json", "count", count);
    assert_non_null(b);
    rule = json_dumps(b, 0);
    json_decref(b);
    fault(rule);
    free(rule);
}

static void test_hostile_names(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-hostile");
    put_tree(r);
    const char *rid = mlo_run_id(r);
    static const char *const bad[] = {
        "../evil", "a/b", ".", "..", "", "a\\b", "/etc/evil", "../../../../../../tmp/mlo-evil"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *top = scratch();
        char *dest = path2(top, "dest");
        assert_int_equal(mkdir(dest, 0700), 0);
        char files[512];
        json_t *f =
            json_pack("{s:[{s:s,s:b,s:i},{s:s,s:b,s:i}]}", "files", "path", "ok.txt", "is_dir", 0,
                      "file_size", 3, "path", bad[i], "is_dir", 0, "file_size", 5);
        char *s = json_dumps(f, 0);
        json_decref(f);
        snprintf(files, sizeof files, "%s", s);
        free(s);

        /* the whole tree: refused before anything is fetched */
        hostile_listing(files, 1);
        cap.n = 0;
        assert_int_equal(mlo_download_artifacts(c, rid, NULL, dest), MLO_ERR_INVALID_PATH);
        assert_true(tu_errors_count(&cap, MLO_ERR_INVALID_PATH, "refused"));
        assert_int_equal(count_below(top, NULL), 1); /* dest itself, empty */

        /* the same name as a directory one level down */
        f = json_pack("{s:[{s:s,s:b}]}", "files", "path", bad[i], "is_dir", 1);
        s = json_dumps(f, 0);
        json_decref(f);
        char rule[512];
        snprintf(rule, sizeof rule, "%s", s);
        free(s);
        hostile_listing("{\"files\": [{\"path\": \"d\", \"is_dir\": true}]}", 1);
        hostile_listing(rule, 1);
        assert_int_equal(mlo_download_artifacts(c, rid, NULL, dest), MLO_ERR_INVALID_PATH);
        assert_int_equal(count_below(top, NULL), 2); /* dest and dest/d */

        /* listing refuses it too */
        hostile_listing(files, 1);
        listing l = {0};
        assert_int_equal(mlo_list_artifacts(c, rid, NULL, on_entry, &l), MLO_ERR_INVALID_PATH);
        tu_faults_clear(srv);
        free(dest);
    }
    struct stat sb;
    assert_int_not_equal(lstat("/tmp/mlo-evil", &sb), 0);

    /* a server that lists directories forever: bounded, refused */
    const char *top = scratch();
    char *dest = path2(top, "deep");
    hostile_listing("{\"files\": [{\"path\": \"d\", \"is_dir\": true}]}", -1);
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, dest), MLO_ERR_INVALID_PATH);
    assert_true(tu_errors_count(&cap, MLO_ERR_INVALID_PATH, "deep"));
    tu_faults_clear(srv);
    free(dest);

    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

static void test_planted_symlinks(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-symlinks");
    put_tree(r);
    const char *rid = mlo_run_id(r);

    /* a link where a downloaded directory goes, pointing outside */
    const char *top = scratch();
    char *dest = path2(top, "dest");
    char *outside = path2(top, "outside");
    assert_int_equal(mkdir(dest, 0700), 0);
    assert_int_equal(mkdir(outside, 0700), 0);
    char *link = path2(dest, "model");
    assert_int_equal(symlink(outside, link), 0);
    cap.n = 0;
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, dest), MLO_ERR_INVALID_PATH);
    assert_true(tu_errors_count(&cap, MLO_ERR_INVALID_PATH, "symbolic link"));
    assert_int_equal(count_below(outside, NULL), 0);
    /* the caller's own dest_dir may be a link: that one is followed */
    assert_int_equal(mlo_download_artifacts(c, rid, "plots", link), MLO_OK);
    assert_int_equal(count_below(outside, NULL), 1);
    assert_int_equal(unlink(link), 0);
    tu_rm_rf(outside);
    assert_int_equal(mkdir(outside, 0700), 0);
    free(link);

    /* a link where a downloaded file goes, pointing at a file outside */
    char *victim = path2(outside, "victim");
    write_all(victim, "precious", 8);
    link = path2(dest, "a.txt");
    unlink(link); /* the first download above got that far */
    assert_int_equal(symlink(victim, link), 0);
    assert_int_equal(mlo_download_artifacts(c, rid, "a.txt", dest), MLO_ERR_INVALID_PATH);
    size_t n = 0;
    unsigned char *got = read_all(victim, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(got, "precious", 8);
    free(got);
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode)); /* left as it was */
    assert_int_equal(unlink(link), 0);
    free(link);

    /* a link planted as the part file: removed, never written through */
    link = path2(dest, "a.txt.mlo-part");
    assert_int_equal(symlink(victim, link), 0);
    assert_int_equal(mlo_download_artifacts(c, rid, "a.txt", dest), MLO_OK);
    got = read_all(victim, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(got, "precious", 8);
    free(got);
    assert_file(dest, "a.txt", tree_file("a.txt")->data, 3);
    assert_int_not_equal(lstat(link, &sb), 0);
    free(link);

    /* a dangling link where a file goes: not created through it either */
    char *target = path2(outside, "created");
    link = path2(dest, "loss.png");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(mlo_download_artifacts(c, rid, "plots", dest), MLO_ERR_INVALID_PATH);
    assert_int_not_equal(lstat(target, &sb), 0);
    assert_int_equal(count_below(outside, NULL), 1); /* the victim only */
    free(link);
    free(target);

    free(victim);
    free(outside);
    free(dest);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* ---- arguments ------------------------------------------------------------------------------ */

static void test_bad_arguments(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(&cap);
    mlo_run_t *r = start_run(c, "registry-args");
    put_tree(r);
    const char *rid = mlo_run_id(r);
    const char *top = scratch();
    char *dest = path2(top, "dest");
    listing l = {0};

    /* NULL handles */
    assert_int_equal(mlo_list_artifacts(NULL, rid, NULL, on_entry, &l), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_download_artifacts(NULL, rid, NULL, dest), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_register_model(NULL, "model", "m", NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_set_model_alias(NULL, "m", "a", 1), MLO_ERR_INVALID_ARGUMENT);

    /* NULL / empty / not UTF-8 strings */
    assert_int_equal(mlo_list_artifacts(c, NULL, NULL, on_entry, &l), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_list_artifacts(c, "", NULL, on_entry, &l), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_list_artifacts(c, rid, NULL, NULL, &l), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_list_artifacts(c, "\xff\xfe", NULL, on_entry, &l), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_download_artifacts(c, NULL, NULL, dest), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, ""), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_register_model(r, "model", NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_register_model(r, "model", "", NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_register_model(r, "model", "bad\xc3", NULL), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_set_model_alias(c, NULL, "a", 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_set_model_alias(c, "m", NULL, 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_set_model_alias(c, "m", "", 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_set_model_alias(c, "m", "a", 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_set_model_alias(c, "m", "a", -3), MLO_ERR_INVALID_ARGUMENT);

    /* artifact paths that could escape their root */
    static const char *const paths[] = {"../x", "/abs",   "a//b",  "a\\b", "a/",
                                        "./a",  "a/../b", "a/./b", ".."};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(mlo_list_artifacts(c, rid, paths[i], on_entry, &l), MLO_ERR_INVALID_PATH);
        assert_int_equal(mlo_download_artifacts(c, rid, paths[i], dest), MLO_ERR_INVALID_PATH);
        assert_int_equal(mlo_register_model(r, paths[i], "m", NULL), MLO_ERR_INVALID_PATH);
    }
    char uri[160];
    snprintf(uri, sizeof uri, "runs:/%s/../x", rid);
    assert_int_equal(mlo_download_artifacts(c, uri, NULL, dest), MLO_ERR_INVALID_PATH);

    /* URIs that are not a run, a runs:/ or a models:/ URI we take */
    static const char *const uris[] = {
        "runs:/",
        "runs:",
        "runs://host/x",
        "models:/",
        "models:/onlyname",
        "models:/m/latest",
        "models:/m/Production",
        "models:/a/b/c",
        "models://profile@databricks/m/1",
        "models:/m@",
        "models:/@alias",
        "models:/ /1",
        "s3://bucket/run",
        "a/b",
        "models:/m/1?x=1",
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        cap.n = 0;
        if (mlo_download_artifacts(c, uris[i], NULL, dest) != MLO_ERR_INVALID_ARGUMENT)
            fail_msg("%s was not refused", uris[i]);
        assert_int_equal(mlo_list_artifacts(c, uris[i], NULL, on_entry, &l),
                         MLO_ERR_INVALID_ARGUMENT);
        assert_true(tu_errors_count(&cap, MLO_ERR_INVALID_ARGUMENT, NULL));
    }
    assert_int_equal(l.n, 0);
    struct stat sb;
    assert_int_not_equal(stat(dest, &sb), 0); /* nothing was made */

    /* what the server does not know */
    assert_int_equal(mlo_download_artifacts(c, "0123456789abcdef0123456789abcdef", NULL, dest),
                     MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_download_artifacts(c, "models:/nope/1", NULL, dest), MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_download_artifacts(c, "models:/nope@champion", NULL, dest),
                     MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_list_artifacts(c, "models:/nope/1", NULL, on_entry, &l),
                     MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_set_model_alias(c, "nope", "champion", 1), MLO_ERR_NOT_FOUND);
    int64_t v = 0;
    assert_int_equal(mlo_register_model(r, "model", "known", &v), MLO_OK);
    assert_int_equal(mlo_set_model_alias(c, "known", "champion", 7), MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_download_artifacts(c, "models:/known@nope", NULL, dest),
                     MLO_ERR_NOT_FOUND);
    assert_int_equal(mlo_download_artifacts(c, "models:/known/2", NULL, dest), MLO_ERR_NOT_FOUND);
    assert_int_not_equal(stat(dest, &sb), 0);

    /* aliases the server refuses */
    cap.n = 0;
    assert_int_equal(mlo_set_model_alias(c, "known", "latest", 1), MLO_ERR_SERVER_INVALID);
    assert_true(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, "mlo_set_model_alias"));
    assert_int_equal(mlo_set_model_alias(c, "known", "v1", 1), MLO_ERR_SERVER_INVALID);
    assert_int_equal(mlo_set_model_alias(c, "known", "bad alias!", 1), MLO_ERR_SERVER_INVALID);
    json_t *d = dump();
    assert_int_equal(json_object_size(json_object_get(find_model(d, "known"), "aliases")), 0);
    json_decref(d);

    /* dest_dir that cannot be a directory */
    char *file = path2(top, "a-file");
    write_all(file, "x", 1);
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, file), MLO_ERR_IO);
    char *under = path2(file, "sub");
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, under), MLO_ERR_IO);
    free(under);
    free(file);

    /* artifacts not served by the tracking server */
    server_config("{\"serve_artifacts\": false}");
    mlo_run_t *r2 = start_run(c, "registry-args-s3");
    cap.n = 0;
    assert_int_equal(mlo_list_artifacts(c, mlo_run_id(r2), NULL, on_entry, &l),
                     MLO_ERR_ARTIFACTS_NOT_PROXIED);
    assert_true(tu_errors_count(&cap, MLO_ERR_ARTIFACTS_NOT_PROXIED, "--serve-artifacts"));
    assert_int_equal(mlo_download_artifacts(c, mlo_run_id(r2), NULL, dest),
                     MLO_ERR_ARTIFACTS_NOT_PROXIED);
    /* registering needs no access to the files: the source is the s3:// URI */
    assert_int_equal(mlo_register_model(r2, "model", "on-s3", &v), MLO_OK);
    server_config("{\"serve_artifacts\": true}");
    d = dump();
    const char *src =
        json_string_value(json_object_get(find_version(find_model(d, "on-s3"), "1"), "source"));
    assert_non_null(src);
    assert_true(!strncmp(src, "s3://", 5));
    assert_non_null(strstr(src, "/artifacts/model"));
    json_decref(d);
    assert_int_equal(mlo_end_run(r2, MLO_RUN_FINISHED), MLO_OK);

    /* no tracking URI: a configuration error, said through the callback */
    tu_errors cap2;
    mlo_client_t *local = open_client_uri(&cap2, NULL);
    mlo_run_t *lr = NULL;
    assert_int_equal(mlo_start_run(local, "local", NULL, NULL, &lr), MLO_OK);
    assert_int_equal(mlo_list_artifacts(local, rid, NULL, on_entry, &l), MLO_ERR_CONFIG);
    assert_int_equal(mlo_download_artifacts(local, rid, NULL, dest), MLO_ERR_CONFIG);
    assert_int_equal(mlo_register_model(lr, "model", "m", NULL), MLO_ERR_CONFIG);
    assert_int_equal(mlo_set_model_alias(local, "m", "a", 1), MLO_ERR_CONFIG);
    assert_true(tu_errors_count(&cap2, MLO_ERR_CONFIG, "tracking URI"));
    assert_int_equal(mlo_end_run(lr, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(local), MLO_OK);

    /* a closed client (and its runs) */
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(mlo_list_artifacts(c, rid, NULL, on_entry, &l), MLO_ERR_CLOSED);
    assert_int_equal(mlo_download_artifacts(c, rid, NULL, dest), MLO_ERR_CLOSED);
    assert_int_equal(mlo_register_model(r, "model", "m", NULL), MLO_ERR_CLOSED);
    assert_int_equal(mlo_set_model_alias(c, "m", "a", 1), MLO_ERR_CLOSED);
    assert_int_equal(l.n, 0);
    free(dest);
}

int main(int argc, char **argv) {
    tu_init("registry");
    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list, setup),
        cmocka_unit_test_setup(test_download_tree, setup),
        cmocka_unit_test_setup(test_download_file, setup),
        cmocka_unit_test_setup(test_register_alias_download, setup),
        cmocka_unit_test_setup(test_version_sources, setup),
        cmocka_unit_test_setup(test_register_waits_for_run, setup),
        cmocka_unit_test_setup(test_log_register_download, setup),
        cmocka_unit_test_setup(test_register_waits_for_uploads, setup),
        cmocka_unit_test_setup(test_hostile_names, setup),
        cmocka_unit_test_setup(test_planted_symlinks, setup),
        cmocka_unit_test_setup(test_bad_arguments, setup),
    };
    int rc = tu_run_group("test_registry", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    for (size_t i = 0; i < NTREE; i++)
        free(tree[i].data);
    return rc;
}
