/*
 * test_artifact.c - mlo_log_artifact / mlo_log_artifact_bytes end to end
 * against the test server (tests/mlflow_test_server.py), asserting on what
 * the server stored (GET /_test/dump: every stored file with its size and
 * SHA-256; the request log; a GET of the file): a file, a directory tree
 * (nested, an empty file, symbolic links in and out of it), bytes, the
 * caller overwriting and deleting its file right after the call, a large
 * file with bounded memory, the artifact API down then back, kill -9 before
 * the upload then a new client on the same store, multipart (presigned part
 * PUTs without credentials) and its fallback, a run whose artifacts are not
 * proxied (s3://), every rejected artifact path, a local store uploaded by
 * `mlo sync` (mlo__sync_store), and no store at all (synchronous upload).
 *
 * The large file is 200 MB in the plain build (about 3 s), 32 MB under ASan
 * and TSan, or $MLO_TEST_ARTIFACT_MB megabytes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "mlo.h"
#include "mlo_artifact.h"
#include "mlo_client.h"
#include "mlo_clock.h"
#include "mlo_manifest.h"
#include "mlo_sync.h"
#include "mlo_uploader.h"
#include "testutil.h"

#define SANITIZED TU_SANITIZED /* shadow memory: the absolute RSS says little */
/* 32 MB under ASan/TSan (tests/meson.build): still 32 times the 1 MiB chunk */
#define MLO_ARTIFACT_BIG_MB (SANITIZED ? 12 : 200)

static testsrv *srv;

/* ---- scratch directories ---- */
/* Under $TMPDIR (default /tmp): point it at another file system to run the
 * tests there (a reflink one: XFS, btrfs). */
static char *tmpdir(const char *tag) {
    return tu_tmpdir(tag);
}

static char *path_join(const char *a, const char *b) {
    return tu_join(a, b);
}

static void write_file(const char *path, const void *data, size_t len) {
    tu_write_file(path, data, len);
}

/* The whole file, malloc'd and NUL-terminated; *len (may be NULL) its size. */
static char *slurp(const char *path, size_t *len) {
    char *b = (char *)tu_read_file(path, len);
    assert_non_null(b);
    return b;
}

static void sha_hex(const void *data, size_t len, char out[65]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    assert_int_equal(EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < dl; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* Entries of <store>/artifacts (pending or failed manifests and blobs). */
static int count_store_files(const char *store, const char *suffix) {
    char *d = path_join(store, "artifacts");
    DIR *dir = opendir(d);
    free(d);
    if (!dir)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (l > sl && !strcmp(e->d_name + l - sl, suffix))
            n++;
    }
    closedir(dir);
    return n;
}

/* ---- the client ---- */
typedef struct copts {
    const char *store; /* NULL: durable off */
    int no_uri;
    const char *token;
    unsigned close_ms;
    double timeout_s; /* 0: 10 s */
} copts;

static mlo_client_t *open_client(tu_errors *cap, const copts *co) {
    tu_client_cfg k = {.uri = co->no_uri ? NULL : testsrv_uri(srv),
                       .store = co->store,
                       .memory_only = !co->store,
                       .retries = 2,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = co->timeout_s > 0 ? co->timeout_s : 10,
                       .close_ms = co->close_ms ? co->close_ms : 10000,
                       .token = co->token,
                       .errors = cap};
    return tu_open(&k);
}

/* ---- the server side ---- */
static json_t *get_json(const char *path) {
    return tu_get_json(srv, path);
}

static void server_config(const char *json) {
    tu_config(srv, json);
}

/* The stored file <exp>/<run>/artifacts/<rel>: its size (-1: not there)
 * and SHA-256 into sha (may be NULL). */
static int64_t stored(const char *exp, const char *run_id, const char *rel, char sha[65]) {
    char want[1024];
    snprintf(want, sizeof want, "%s/%s/artifacts/%s", exp, run_id, rel);
    json_t *d = get_json("/_test/dump");
    int64_t size = -1;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(d, "artifacts"), i, a) {
        const char *p = json_string_value(json_object_get(a, "path"));
        if (p && !strcmp(p, want)) {
            size = json_integer_value(json_object_get(a, "size"));
            if (sha)
                snprintf(sha, 65, "%s", json_string_value(json_object_get(a, "sha256")));
        }
    }
    json_decref(d);
    return size;
}

/* Stored files of the run (count). */
static int stored_count(const char *exp, const char *run_id) {
    char want[512];
    snprintf(want, sizeof want, "%s/%s/artifacts/", exp, run_id);
    json_t *d = get_json("/_test/dump");
    int n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(d, "artifacts"), i, a) {
        const char *p = json_string_value(json_object_get(a, "path"));
        if (p && !strncmp(p, want, strlen(want)))
            n++;
    }
    json_decref(d);
    return n;
}

static int count_requests(const char *method, const char *prefix, int *with_auth);

static void assert_stored(mlo_run_t *run, const char *rel, const void *data, size_t len) {
    char sha[65] = "", want[65];
    sha_hex(data, len, want);
    int64_t size = stored(mlo_run_experiment_id(run), mlo_run_id(run), rel, sha);
    if (size != (int64_t)len)
        fail_msg("artifact %s: stored size %lld, expected %zu", rel, (long long)size, len);
    assert_string_equal(sha, want);
}

/* Waits until rel of the run is stored (or 30 s pass); its size, -1 if not. */
static int64_t wait_stored(const char *exp, const char *run_id, const char *rel, char sha[65]) {
    int64_t size = -1;
    TU_WAIT_UNTIL((size = stored(exp, run_id, rel, sha)) >= 0, 30000);
    return size;
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    server_config("{\"serve_artifacts\": true, \"multipart\": true, \"artifacts_down\": false}");
    return 0;
}

/* ---- tests ---- */

/* One file, under an artifact path and at the root; read back with a GET. */
static void test_file(void **state) {
    (void)state;
    char *dir = tmpdir("file"), *store = path_join(dir, "store"), *f = path_join(dir, "model.txt");
    const char *content = "weights: 1 2 3\nbias: 0.5\n";
    write_file(f, content, strlen(content));
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-file", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, f, "model"), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, f, NULL), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_stored(run, "model/model.txt", content, strlen(content));
    assert_stored(run, "model.txt", content, strlen(content));
    uint64_t files = 0, bytes = 0;
    assert_int_equal(mlo_client_stat(c, MLO_STAT_ARTIFACT_FILES, &files), MLO_OK);
    assert_int_equal(mlo_client_stat(c, MLO_STAT_ARTIFACT_BYTES, &bytes), MLO_OK);
    assert_int_equal(files, 2);
    assert_int_equal(bytes, 2 * strlen(content));
    /* byte for byte through the artifact API */
    char path[512];
    snprintf(path, sizeof path,
             "/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/model/model.txt",
             mlo_run_experiment_id(run), mlo_run_id(run));
    long code = 0;
    char *got = testsrv_get(srv, path, &code);
    assert_int_equal(code, 200);
    assert_string_equal(got, content);
    free(got);
    /* uploaded: nothing left in the store */
    assert_int_equal(count_store_files(store, ".art"), 0);
    assert_int_equal(count_store_files(store, ".blob"), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* A directory: nested, an empty file, a symlink inside (followed), one
 * escaping it (skipped, reported), a FIFO (skipped). */
static void test_directory_tree(void **state) {
    (void)state;
    char *dir = tmpdir("tree"), *store = path_join(dir, "store"), *out = path_join(dir, "out");
    char *secret = path_join(dir, "secret.txt");
    write_file(secret, "outside", 7);
    assert_int_equal(mkdir(out, 0755), 0);
    char *p;
    p = path_join(out, "a");
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = path_join(out, "a/b");
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = path_join(out, "a/b/deep.txt");
    write_file(p, "deep", 4);
    free(p);
    p = path_join(out, "a/empty.bin");
    write_file(p, "", 0);
    free(p);
    p = path_join(out, "top.txt");
    write_file(p, "top level", 9);
    free(p);
    p = path_join(out, "link_in");
    assert_int_equal(symlink("top.txt", p), 0);
    free(p);
    p = path_join(out, "a/link_out");
    assert_int_equal(symlink(secret, p), 0);
    free(p);
    p = path_join(out, "a/loop");
    assert_int_equal(symlink("..", p), 0); /* inside, but back up: not walked twice */
    free(p);
    p = path_join(out, "fifo");
    assert_int_equal(mkfifo(p, 0600), 0);
    free(p);

    tu_errors cap;
    copts co = {.store = store};
    mlo_client_t *c = open_client(&cap, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-tree", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, out, "tree"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_stored(run, "tree/top.txt", "top level", 9);
    assert_stored(run, "tree/link_in", "top level", 9);
    assert_stored(run, "tree/a/b/deep.txt", "deep", 4);
    assert_stored(run, "tree/a/empty.bin", "", 0);
    const char *exp = mlo_run_experiment_id(run), *rid = mlo_run_id(run);
    assert_int_equal(stored(exp, rid, "tree/a/link_out", NULL), -1);
    assert_int_equal(stored(exp, rid, "tree/fifo", NULL), -1);
    assert_int_equal(stored_count(exp, rid), 4);
    assert_true(tu_errors_count(&cap, MLO_ERR_INVALID_PATH, "link_out") >= 1);
    assert_true(tu_errors_count(&cap, MLO_ERR_IO, "fifo") >= 1);

    /* the root of the run, NULL artifact path: the directory's name is not kept */
    assert_int_equal(mlo_log_artifact(run, out, NULL), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_stored(run, "a/b/deep.txt", "deep", 4);
    assert_int_equal(stored_count(exp, rid), 8);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(out);
    free(secret);
}

/* Bytes from memory, binary, and an empty buffer. */
static void test_bytes(void **state) {
    (void)state;
    char *dir = tmpdir("bytes"), *store = path_join(dir, "store");
    unsigned char buf[70000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 31 + (i >> 8));
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-bytes", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, buf, sizeof buf, "weights/w.bin"), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, NULL, 0, "weights/empty"), MLO_OK);
    memset(buf, 0, sizeof buf); /* the call copied it */
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    unsigned char again[70000];
    for (size_t i = 0; i < sizeof again; i++)
        again[i] = (unsigned char)(i * 31 + (i >> 8));
    assert_stored(run, "weights/w.bin", again, sizeof again);
    assert_stored(run, "weights/empty", "", 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* The caller overwrites, then deletes its file right after the call: the
 * server gets what the file held at the call. */
static void test_caller_deletes_file(void **state) {
    (void)state;
    char *dir = tmpdir("del"), *store = path_join(dir, "store"), *f = path_join(dir, "ckpt.bin");
    char orig[5000];
    for (size_t i = 0; i < sizeof orig; i++)
        orig[i] = (char)('a' + i % 26);
    write_file(f, orig, sizeof orig);
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-del", NULL, NULL, &run), MLO_OK);
    /* the artifact API is down: the upload cannot happen before the file changes */
    server_config("{\"artifacts_down\": true}");
    assert_int_equal(mlo_log_artifact(run, f, "ckpt"), MLO_OK);
    write_file(f, "overwritten", 11);
    assert_int_equal(unlink(f), 0);
    server_config("{\"artifacts_down\": false}");
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_stored(run, "ckpt/ckpt.bin", orig, sizeof orig);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* A large file: streamed through the store in chunks, memory bounded. */
static void test_large_file(void **state) {
    (void)state;
    long mb = MLO_ARTIFACT_BIG_MB;
    const char *env = getenv("MLO_TEST_ARTIFACT_MB");
    if (env && atol(env) > 0)
        mb = atol(env);
    char *dir = tmpdir("big"), *store = path_join(dir, "store"), *f = path_join(dir, "big.bin");
    /* a pattern that differs in every MiB, hashed as it is written */
    size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    assert_non_null(buf);
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestInit_ex(x, EVP_sha256(), NULL), 1);
    int fd = open(f, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    for (long i = 0; i < mb; i++) {
        for (size_t k = 0; k < chunk; k += 8) {
            uint64_t v = ((uint64_t)i << 32) ^ (k * 0x9E3779B97F4A7C15ull);
            memcpy(buf + k, &v, 8);
        }
        EVP_DigestUpdate(x, buf, chunk);
        assert_int_equal(write(fd, buf, chunk), (ssize_t)chunk);
    }
    /* and an odd tail */
    EVP_DigestUpdate(x, "tail", 4);
    assert_int_equal(write(fd, "tail", 4), 4);
    close(fd);
    free(buf);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    EVP_DigestFinal_ex(x, d, &dl);
    EVP_MD_CTX_free(x);
    char want[65];
    for (unsigned i = 0; i < dl; i++)
        sprintf(want + 2 * i, "%02x", d[i]);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss_before_kb = ru.ru_maxrss;
    copts co = {.store = store, .close_ms = 120000};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-big", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, f, "big"), MLO_OK);
    assert_int_equal(unlink(f), 0); /* the store has its own copy */
    assert_int_equal(mlo_client_flush(c, 300000), MLO_OK);
    getrusage(RUSAGE_SELF, &ru);
    long grown_mb = (ru.ru_maxrss - rss_before_kb) / 1024;
    char sha[65] = "";
    int64_t size = stored(mlo_run_experiment_id(run), mlo_run_id(run), "big/big.bin", sha);
    assert_int_equal(size, (int64_t)mb * 1024 * 1024 + 4);
    assert_string_equal(sha, want);
    uint64_t bytes = 0;
    assert_int_equal(mlo_client_stat(c, MLO_STAT_ARTIFACT_BYTES, &bytes), MLO_OK);
    assert_int_equal(bytes, (uint64_t)size);
    /* and back: the download streams to disk and the checksum matches */
    char *dldir = path_join(dir, "dl");
    assert_int_equal(mlo_download_artifacts(c, mlo_run_id(run), "big/big.bin", dldir), MLO_OK);
    char *got = path_join(dldir, "big.bin");
    fd = open(got, O_RDONLY);
    assert_true(fd >= 0);
    buf = malloc(chunk);
    assert_non_null(buf);
    x = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestInit_ex(x, EVP_sha256(), NULL), 1);
    ssize_t nr;
    int64_t total = 0;
    while ((nr = read(fd, buf, chunk)) > 0) {
        EVP_DigestUpdate(x, buf, (size_t)nr);
        total += nr;
    }
    close(fd);
    free(buf);
    EVP_DigestFinal_ex(x, d, &dl);
    EVP_MD_CTX_free(x);
    char back[65];
    for (unsigned i = 0; i < dl; i++)
        sprintf(back + 2 * i, "%02x", d[i]);
    assert_int_equal(total, size);
    assert_string_equal(back, want);
    free(got);
    free(dldir);
    getrusage(RUSAGE_SELF, &ru);
    grown_mb = (ru.ru_maxrss - rss_before_kb) / 1024;
    fprintf(stderr, "large artifact: %ld MB up and down, peak RSS grew by %ld MB (peak %ld MB)\n",
            mb, grown_mb, ru.ru_maxrss / 1024);
    /* chunks of 1 MiB: far below the file's size (a bound that means
     * something with the plain build's 200 MB; under the sanitizers, whose
     * file is 12 MB, RSS says little anyway) */
    assert_true(grown_mb < 40);
    if (mb >= 200 && !SANITIZED)
        assert_true(ru.ru_maxrss / 1024 < mb / 4);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* The artifact API answers 503 during the upload: flush times out, nothing is
 * lost; once it is back the upload completes. */
static void test_server_down_then_back(void **state) {
    (void)state;
    char *dir = tmpdir("down"), *store = path_join(dir, "store");
    tu_errors cap;
    copts co = {.store = store};
    mlo_client_t *c = open_client(&cap, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-down", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    server_config("{\"artifacts_down\": true}");
    assert_int_equal(mlo_log_artifact_bytes(run, "survives", 8, "notes/a.txt"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 1500), MLO_ERR_TIMEOUT);
    assert_int_equal(stored(mlo_run_experiment_id(run), mlo_run_id(run), "notes/a.txt", NULL), -1);
    assert_int_equal(count_store_files(store, ".art"), 1);
    uint64_t failed = 0;
    assert_int_equal(mlo_client_stat(c, MLO_STAT_FAILED, &failed), MLO_OK);
    assert_int_equal(failed, 0);
    server_config("{\"artifacts_down\": false}");
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    assert_stored(run, "notes/a.txt", "survives", 8);
    assert_int_equal(count_store_files(store, ".art"), 0);

    /* the connection dropped in the middle of the body: sent again, whole */
    size_t n = 3 * 1024 * 1024;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 13 + 7);
    assert_int_equal(testsrv_fault(srv,
                                   "{\"path_prefix\": \"/api/2.0/mlflow-artifacts/artifacts/\", "
                                   "\"method\": \"PUT\", \"drop_after_bytes\": 1000000, "
                                   "\"count\": 1}"),
                     0);
    assert_int_equal(mlo_log_artifact_bytes(run, data, n, "notes/cut.bin"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    assert_stored(run, "notes/cut.bin", data, n);
    char put[512];
    snprintf(put, sizeof put, "/api/2.0/mlflow-artifacts/artifacts/%s/%s/artifacts/notes/cut.bin",
             mlo_run_experiment_id(run), mlo_run_id(run));
    assert_true(count_requests("PUT", put, NULL) >= 2); /* the cut one, then the whole */
    free(data);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* The child of the kill -9 test: opens a client on the store, logs an
 * artifact, says so on stdout with the run's ids, waits to be killed. */
static int kill_child(const char *uri, const char *store, const char *file) {
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, store);
    mlo_options_set_retries(o, 1, 0.05, 0.01, 10);
    mlo_client_t *c;
    if (mlo_client_open(o, &c) != MLO_OK)
        return 3;
    mlo_options_free(o);
    mlo_run_t *run;
    if (mlo_start_run(c, "art-kill", NULL, NULL, &run) != MLO_OK)
        return 4;
    if (mlo_client_flush(c, 10000) != MLO_OK)
        return 5;
    if (mlo_log_artifact(run, file, "model") != MLO_OK)
        return 6;
    printf("LOGGED %s %s\n", mlo_run_experiment_id(run), mlo_run_id(run));
    fflush(stdout);
    for (;;)
        pause();
}

/* Starts the kill -9 child (a fresh image of this program: sanitizers and
 * fork) on store and file; waits until it logged the artifact; its run's
 * experiment and run ids into exp and rid.  *in is its stdout (fclose it). */
static pid_t start_kill_child(const char *store, const char *file, char exp[64], char rid[64],
                              FILE **in) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl("/proc/self/exe", "test_artifact", "--kill-child", testsrv_uri(srv), store, file,
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    *in = fdopen(pfd[0], "r");
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, *in));
    assert_int_equal(sscanf(line, "LOGGED %63s %63s", exp, rid), 2);
    return pid;
}

static void kill9(pid_t pid, FILE *in) {
    kill(pid, SIGKILL);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws));
    fclose(in);
}

/* kill -9 after mlo_log_artifact returned, before the upload: the next
 * client on the same store uploads it. */
static void test_kill9_then_recovery(void **state) {
    (void)state;
    char *dir = tmpdir("kill"), *store = path_join(dir, "store"), *f = path_join(dir, "m.bin");
    char content[3000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (char)(i % 251);
    write_file(f, content, sizeof content);
    server_config("{\"artifacts_down\": true}"); /* the child cannot upload */
    char exp[64] = "", rid[64] = "";
    FILE *in;
    pid_t pid = start_kill_child(store, f, exp, rid, &in);
    kill9(pid, in);
    assert_int_equal(count_store_files(store, ".art"), 1);
    assert_int_equal(stored(exp, rid, "model/m.bin", NULL), -1);
    unlink(f);

    server_config("{\"artifacts_down\": false}");
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    char sha[65] = "", want[65];
    sha_hex(content, sizeof content, want);
    assert_int_equal(wait_stored(exp, rid, "model/m.bin", sha), (int64_t)sizeof content);
    assert_string_equal(sha, want);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(count_store_files(store, ".art"), 0);
    assert_int_equal(count_store_files(store, ".blob"), 0);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

static unsigned char *pattern(size_t n);

/* kill -9 in the middle of the PUT's body: the server holds the request
 * (a delay before it reads the body), the child's upload blocks with part of
 * the file sent; the next client on the store uploads the whole file again. */
static void test_kill9_mid_upload(void **state) {
    (void)state;
    char *dir = tmpdir("killmid"), *store = path_join(dir, "store"), *f = path_join(dir, "m.bin");
    size_t n = (size_t)24 << 20;
    unsigned char *content = pattern(n);
    write_file(f, (const char *)content, n);
    assert_int_equal(testsrv_fault(srv, "{\"delay_ms\": 6000, \"count\": 1, \"method\": \"PUT\", "
                                        "\"path_prefix\": \"/api/2.0/mlflow-artifacts/\"}"),
                     0);
    free(testsrv_post(srv, "/_test/requests/clear", "{}", NULL));
    char exp[64] = "", rid[64] = "";
    FILE *in;
    pid_t pid = start_kill_child(store, f, exp, rid, &in);
    /* the upload has started: the server has the request's headers */
    TU_WAIT_UNTIL(count_requests("PUT", "/api/2.0/mlflow-artifacts/", NULL) >= 1, 4000);
    assert_true(count_requests("PUT", "/api/2.0/mlflow-artifacts/", NULL) >= 1);
    tu_sleep_ms(200); /* let the body fill the socket buffers (nothing to wait on) */
    kill9(pid, in);
    assert_int_equal(count_store_files(store, ".art"), 1);
    unlink(f);
    tu_faults_clear(srv);

    copts co = {.store = store, .close_ms = 60000};
    mlo_client_t *c = open_client(NULL, &co);
    char sha[65] = "", want[65];
    sha_hex((const char *)content, n, want);
    assert_int_equal(wait_stored(exp, rid, "model/m.bin", sha), (int64_t)n);
    assert_string_equal(sha, want);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(count_store_files(store, ".art"), 0);
    free(content);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* Requests of the log whose path starts with prefix (and method). */
static int count_requests(const char *method, const char *prefix, int *with_auth) {
    return tu_count_requests(srv, method, prefix, with_auth);
}

static void set_mpu_env(void) {
    setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "6291456", 1); /* 6 MiB */
    setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", "5242880", 1);        /* 5 MiB */
}

static void unset_mpu_env(void) {
    unsetenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE");
    unsetenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE");
    unsetenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD");
}

static unsigned char *pattern(size_t n) {
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 7919) >> 3);
    return b;
}

/* Above the (lowered) threshold: mpu/create, three presigned part PUTs
 * without the client's credentials, mpu/complete. */
static void test_multipart(void **state) {
    (void)state;
    char *dir = tmpdir("mpu"), *store = path_join(dir, "store");
    size_t n = 12 * 1024 * 1024 + 123;
    unsigned char *data = pattern(n);
    set_mpu_env();
    copts co = {.store = store, .token = "sekrit-token"};
    mlo_client_t *c = open_client(NULL, &co);
    unset_mpu_env();
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-mpu", NULL, NULL, &run), MLO_OK);
    long code;
    free(testsrv_post(srv, "/_test/requests/clear", "{}", &code));
    assert_int_equal(mlo_log_artifact_bytes(run, data, n, "big/parts.bin"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    assert_stored(run, "big/parts.bin", data, n);
    int auth = -1;
    assert_int_equal(count_requests("PUT", "/_presigned/", &auth), 3);
    assert_int_equal(auth, 0);
    assert_int_equal(count_requests("POST", "/api/2.0/mlflow-artifacts/mpu/create/", NULL), 1);
    assert_int_equal(count_requests("POST", "/api/2.0/mlflow-artifacts/mpu/complete/", NULL), 1);
    assert_int_equal(count_requests("PUT", "/api/2.0/mlflow-artifacts/artifacts/", NULL), 0);
    /* a small file still goes in one PUT, with the credentials */
    assert_int_equal(mlo_log_artifact_bytes(run, "small", 5, "big/small.txt"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_int_equal(count_requests("PUT", "/api/2.0/mlflow-artifacts/artifacts/", &auth), 1);
    assert_int_equal(auth, 1);
    json_t *d = get_json("/_test/dump");
    assert_int_equal(json_array_size(json_object_get(d, "multipart_uploads")), 0);
    json_decref(d);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    free(data);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* A server without multipart (501): the same file goes in a single PUT;
 * MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false skips mpu/create altogether. */
static void test_multipart_not_offered(void **state) {
    (void)state;
    char *dir = tmpdir("nompu"), *store = path_join(dir, "store");
    size_t n = 7 * 1024 * 1024;
    unsigned char *data = pattern(n);
    server_config("{\"multipart\": false}");
    set_mpu_env();
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-nompu", NULL, NULL, &run), MLO_OK);
    long code;
    free(testsrv_post(srv, "/_test/requests/clear", "{}", &code));
    assert_int_equal(mlo_log_artifact_bytes(run, data, n, "one.bin"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    assert_stored(run, "one.bin", data, n);
    assert_int_equal(count_requests("POST", "/api/2.0/mlflow-artifacts/mpu/create/", NULL), 1);
    assert_int_equal(count_requests("PUT", "/_presigned/", NULL), 0);
    assert_int_equal(count_requests("PUT", "/api/2.0/mlflow-artifacts/artifacts/", NULL), 1);
    assert_int_equal(mlo_client_close(c), MLO_OK);

    /* multipart turned off by the environment: not even asked */
    server_config("{\"multipart\": true}");
    setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false", 1);
    c = open_client(NULL, &co);
    unset_mpu_env();
    assert_int_equal(mlo_start_run(c, "art-nompu", NULL, NULL, &run), MLO_OK);
    free(testsrv_post(srv, "/_test/requests/clear", "{}", &code));
    assert_int_equal(mlo_log_artifact_bytes(run, data, n, "two.bin"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    assert_stored(run, "two.bin", data, n);
    assert_int_equal(count_requests("POST", "/api/2.0/mlflow-artifacts/mpu/create/", NULL), 0);
    assert_int_equal(count_requests("PUT", "/api/2.0/mlflow-artifacts/artifacts/", NULL), 1);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    free(data);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* A run whose artifact URI is s3://: MLO_ERR_ARTIFACTS_NOT_PROXIED through
 * the callback, once for the run; the artifacts stay in the store. */
static void test_not_proxied(void **state) {
    (void)state;
    char *dir = tmpdir("s3"), *store = path_join(dir, "store");
    server_config("{\"serve_artifacts\": false}");
    tu_errors cap;
    copts co = {.store = store};
    mlo_client_t *c = open_client(&cap, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-s3", NULL, NULL, &run), MLO_OK);
    server_config("{\"serve_artifacts\": true}");
    assert_int_equal(mlo_log_artifact_bytes(run, "x", 1, "a.txt"), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, "y", 1, "b.txt"), MLO_OK);
    /* parked artifacts do not hold a flush */
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_ARTIFACTS_NOT_PROXIED, "--serve-artifacts"), 1);
    assert_true(tu_errors_count(&cap, MLO_ERR_ARTIFACTS_NOT_PROXIED, "s3://") >= 1);
    const mlo_run *r = (const mlo_run *)run;
    assert_int_equal(mlo__uploader_wait_run(mlo__client_uploader(c), r->local_id, NULL,
                                            mlo__clock_mono(NULL) + 1000000000),
                     MLO_ERR_ARTIFACTS_NOT_PROXIED);
    assert_int_equal(stored_count(mlo_run_experiment_id(run), mlo_run_id(run)), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(count_store_files(store, ".art"), 2);
    assert_int_equal(count_store_files(store, ".blob"), 2);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* Every artifact path that could escape its root is refused at the call;
 * nothing reaches the store. */
static void test_rejected_paths(void **state) {
    (void)state;
    char *dir = tmpdir("paths"), *store = path_join(dir, "store"), *f = path_join(dir, "ok.txt");
    write_file(f, "ok", 2);
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-paths", NULL, NULL, &run), MLO_OK);
    static const char *bad[] = {"..", "../x", "a/../b", "a/..", "/abs", "/",    "a\\b",
                                "\\", "a//b", "a/",     "./a",  ".",    "a/./b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (mlo_log_artifact(run, f, bad[i]) != MLO_ERR_INVALID_PATH)
            fail_msg("log_artifact accepted \"%s\"", bad[i]);
        if (mlo_log_artifact_bytes(run, "x", 1, bad[i]) != MLO_ERR_INVALID_PATH)
            fail_msg("log_artifact_bytes accepted \"%s\"", bad[i]);
    }
    assert_int_equal(mlo_log_artifact(run, f, "bad\xff/x"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_log_artifact_bytes(run, "x", 1, "\xc3\x28"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_log_artifact_bytes(run, "x", 1, ""), MLO_ERR_INVALID_PATH);
    assert_int_equal(mlo_log_artifact_bytes(run, "x", 1, NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_artifact_bytes(run, NULL, 1, "x"), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_artifact(run, NULL, "x"), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_log_artifact(NULL, f, "x"), MLO_ERR_INVALID_ARGUMENT);
    char *missing = path_join(dir, "nope");
    assert_int_equal(mlo_log_artifact(run, missing, "x"), MLO_ERR_IO);
    free(missing);
    assert_int_equal(mlo_log_artifact(run, "/dev/null", "x"), MLO_ERR_IO); /* not a file */
    assert_int_equal(count_store_files(store, ".art"), 0);
    assert_int_equal(count_store_files(store, ".blob"), 0);
    assert_int_equal(count_store_files(store, ".tmp"), 0);
    /* a valid one still goes */
    assert_int_equal(mlo_log_artifact(run, f, "fine/path with space"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    assert_stored(run, "fine/path with space/ok.txt", "ok", 2);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, f, "x"), MLO_ERR_CLOSED);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* The run's server id: the run created by `mlo sync` carries the local id
 * as tag mlo.local_id. */
static char *server_run_of(const char *lid, char **exp) {
    json_t *d = get_json("/_test/dump");
    char *found = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        const char *v =
            json_string_value(json_object_get(json_object_get(r, "tags"), "mlo.local_id"));
        if (v && !strcmp(v, lid) && !found) {
            json_t *info = json_object_get(r, "info");
            found = strdup(json_string_value(json_object_get(info, "run_id")));
            *exp = strdup(json_string_value(json_object_get(info, "experiment_id")));
        }
    }
    json_decref(d);
    return found;
}

/* No tracking URI: artifacts wait in the local store; mlo sync uploads them
 * after creating the run. */
static void test_local_store_then_sync(void **state) {
    (void)state;
    char *dir = tmpdir("sync"), *store = path_join(dir, "store"), *f = path_join(dir, "r.txt");
    write_file(f, "report", 6);
    copts co = {.store = store, .no_uri = 1};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-sync", NULL, NULL, &run), MLO_OK);
    char lid[33];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    assert_int_equal(mlo_log_param(run, "p", "1"), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, f, "reports"), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, "raw", 3, "raw/r.bin"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK); /* no server: not waited for */
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(count_store_files(store, ".art"), 2);

    char err[1024] = "";
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("sync: %s: %s", mlo_strerror(st), err);
    char *exp = NULL, *rid = server_run_of(lid, &exp);
    assert_non_null(rid);
    char sha[65], want[65];
    sha_hex("report", 6, want);
    assert_int_equal(stored(exp, rid, "reports/r.txt", sha), 6);
    assert_string_equal(sha, want);
    sha_hex("raw", 3, want);
    assert_int_equal(stored(exp, rid, "raw/r.bin", sha), 3);
    assert_string_equal(sha, want);
    assert_int_equal(count_store_files(store, ".art"), 0);
    assert_int_equal(count_store_files(store, ".blob"), 0);
    /* idempotent: a second sync has nothing left to do */
    st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    assert_int_equal(st, MLO_OK);
    assert_int_equal(stored_count(exp, rid), 2);
    free(rid);
    free(exp);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* The server refuses an upload for good (400): reported, counted as failed,
 * the manifest becomes .failed with the blob kept, flush does not hang on
 * it; `mlo sync` later tries it again and delivers it. */
static void test_permanent_refusal(void **state) {
    (void)state;
    char *dir = tmpdir("refused"), *store = path_join(dir, "store");
    tu_errors cap;
    copts co = {.store = store};
    mlo_client_t *c = open_client(&cap, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-refused", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    assert_int_equal(testsrv_fault(srv,
                                   "{\"path_prefix\": \"/api/2.0/mlflow-artifacts/artifacts/\", "
                                   "\"method\": \"PUT\", \"status\": 400, \"count\": 1}"),
                     0);
    assert_int_equal(mlo_log_artifact_bytes(run, "refused once", 12, "r/x.txt"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    uint64_t failed = 0;
    assert_int_equal(mlo_client_stat(c, MLO_STAT_FAILED, &failed), MLO_OK);
    assert_int_equal(failed, 1);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, "refused for good"), 1);
    const mlo_run *r = (const mlo_run *)run;
    /* the refusal counts for the paths it is under, not for the whole run */
    const char *hit[] = {NULL, "", "r", "r/x.txt"}, *miss[] = {"other", "r/x", "rr", "r/x.txt2"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(mlo__uploader_wait_run(mlo__client_uploader(c), r->local_id, hit[i],
                                                mlo__clock_mono(NULL)),
                         MLO_ERR_SERVER_INVALID);
        assert_int_equal(mlo__uploader_wait_run(mlo__client_uploader(c), r->local_id, miss[i],
                                                mlo__clock_mono(NULL)),
                         MLO_OK);
    }
    /* so a model elsewhere in the run can still be registered */
    assert_int_equal(mlo_log_artifact_bytes(run, "weights", 7, "model/w.bin"), MLO_OK);
    int64_t version = 0;
    assert_int_equal(mlo_register_model(run, "model", "art-refused-model", &version), MLO_OK);
    assert_int_equal(version, 1);
    assert_int_equal(mlo_register_model(run, "r", "art-refused-model", &version),
                     MLO_ERR_SERVER_INVALID);
    assert_int_equal(count_store_files(store, ".failed"), 1);
    assert_int_equal(count_store_files(store, ".blob"), 1);
    assert_int_equal(count_store_files(store, ".art"), 0);
    char exp[64], rid[64];
    snprintf(exp, sizeof exp, "%s", mlo_run_experiment_id(run));
    snprintf(rid, sizeof rid, "%s", mlo_run_id(run));
    assert_int_equal(stored(exp, rid, "r/x.txt", NULL), -1);
    assert_int_equal(mlo_client_close(c), MLO_OK);

    char err[1024] = "";
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("sync: %s: %s", mlo_strerror(st), err);
    char sha[65], want[65];
    sha_hex("refused once", 12, want);
    assert_int_equal(stored(exp, rid, "r/x.txt", sha), 12);
    assert_string_equal(sha, want);
    assert_int_equal(count_store_files(store, ".failed"), 0);
    assert_int_equal(count_store_files(store, ".blob"), 0);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* No store (durability off): the call uploads synchronously. */
static void test_no_store_synchronous(void **state) {
    (void)state;
    char *dir = tmpdir("nostore"), *f = path_join(dir, "n.txt");
    write_file(f, "direct", 6);
    copts co = {.store = NULL};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-nostore", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_artifact(run, f, "d"), MLO_OK);
    assert_int_equal(mlo_log_artifact_bytes(run, "mem", 3, "d/m.bin"), MLO_OK);
    /* on the server when the calls return */
    assert_stored(run, "d/n.txt", "direct", 6);
    assert_stored(run, "d/m.bin", "mem", 3);
    server_config("{\"artifacts_down\": true}");
    assert_int_not_equal(mlo_log_artifact_bytes(run, "z", 1, "d/z"), MLO_OK);
    server_config("{\"artifacts_down\": false}");
    assert_int_equal(mlo_client_close(c), MLO_OK);
    tu_rm_rf(dir);
    free(dir);
    free(f);
}

/* ---- the staging copy and the staged blob's identity (issue 13, item 5) ---- */

/* Whether dst clones src on this file system (a probe with FICLONE). */
static int can_clone(const char *dir) {
    char *a = path_join(dir, "probe-a"), *b = path_join(dir, "probe-b");
    write_file(a, "x", 1);
    int s = open(a, O_RDONLY), d = open(b, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    int ok = s >= 0 && d >= 0 && ioctl(d, FICLONE, s) == 0;
    close(s);
    close(d);
    unlink(a);
    unlink(b);
    free(a);
    free(b);
    return ok;
}

/* Copies src into a new file by `methods`; checks the copy byte for byte,
 * *used, and the digest (computed in the pass exactly when only the buffer
 * copied).  Returns *used. */
static unsigned copy_with(const char *src, const char *dst, unsigned methods) {
    int s = open(src, O_RDONLY), d = open(dst, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(s >= 0 && d >= 0);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    char hex[65] = "?";
    int64_t size = -1;
    unsigned used = 99;
    int side = -1;
    assert_int_equal(
        mlo__artifact_copy(s, d, methods, buf, 1 << 20, hex, &size, &used, &side, NULL, NULL), 0);
    assert_int_equal(lseek(s, 0, SEEK_CUR), 0); /* the caller's offset untouched */
    close(s);
    size_t la = 0, lb = 0;
    char *a = slurp(src, &la), *b = slurp(dst, &lb);
    assert_int_equal(size, (int64_t)lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    char want[65];
    sha_hex(a, la, want);
    if (used == MLO_COPY_BUFFER || (used == 0 && (methods & MLO_COPY_BUFFER)))
        assert_string_equal(hex, want);
    else
        assert_string_equal(hex, "");
    /* and the digest afterwards, from the blob */
    char later[65];
    assert_int_equal(mlo__artifact_hash(d, NULL, 0, buf, 1 << 20, later, NULL, NULL), 0);
    assert_string_equal(later, want);
    close(d);
    free(buf);
    free(a);
    free(b);
    unlink(dst);
    return used;
}

static int say_sent(void *ctx) {
    int *calls = ctx;
    return ++*calls >= 2; /* sent after the first piece */
}

/* mlo__artifact_copy's chain: a clone where the file system offers it, else
 * copy_file_range, else the buffer (a procfs file: copy_file_range cannot
 * copy it; another file system: it may not), each with the right content
 * and digest; and the digest that stops once the blob is sent. */
static void test_copy_methods(void **state) {
    (void)state;
    char *dir = tmpdir("copy"), *src = path_join(dir, "src.bin"), *dst = path_join(dir, "dst");
    size_t n = (3u << 20) + 12345; /* several pieces and an odd tail */
    unsigned char *data = pattern(n);
    write_file(src, (const char *)data, n);
    unsigned all = copy_with(src, dst, MLO_COPY_ALL);
    if (can_clone(dir))
        assert_int_equal(all, MLO_COPY_CLONE);
    else
        assert_int_equal(all, MLO_COPY_RANGE); /* one file system: the kernel copies */
    assert_int_equal(copy_with(src, dst, MLO_COPY_RANGE | MLO_COPY_BUFFER), MLO_COPY_RANGE);
    assert_int_equal(copy_with(src, dst, MLO_COPY_RANGE), MLO_COPY_RANGE);
    assert_int_equal(copy_with(src, dst, MLO_COPY_BUFFER), MLO_COPY_BUFFER);
    /* size 0 but content for read(): copy_file_range copies nothing (or
     * refuses the pair), the buffer takes over */
    assert_int_equal(copy_with("/proc/version", dst, MLO_COPY_ALL), MLO_COPY_BUFFER);
    /* and without the buffer that is an error, not an empty copy */
    {
        int s = open("/proc/version", O_RDONLY), d = open(dst, O_CREAT | O_TRUNC | O_RDWR, 0600);
        unsigned char b[4096];
        char hex[65];
        int64_t size;
        unsigned used;
        int side;
        assert_int_equal(mlo__artifact_copy(s, d, MLO_COPY_RANGE, b, sizeof b, hex, &size, &used,
                                            &side, NULL, NULL),
                         -1);
        close(s);
        close(d);
        unlink(dst);
    }
    /* from another file system: the kernel copies if it can, else the buffer */
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char other[] = "/dev/shm/mlo-art-copy-XXXXXX";
        int fd = mkstemp(other);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t)n);
        close(fd);
        unsigned u = copy_with(other, dst, MLO_COPY_RANGE | MLO_COPY_BUFFER);
        assert_true(u == MLO_COPY_RANGE || u == MLO_COPY_BUFFER);
        unlink(other);
    }
    /* an empty file */
    char *empty = path_join(dir, "empty");
    write_file(empty, "", 0);
    assert_true(copy_with(empty, dst, MLO_COPY_ALL) == 0 ||
                can_clone(dir)); /* a clone of nothing is a clone */
    assert_int_equal(copy_with(empty, dst, MLO_COPY_RANGE | MLO_COPY_BUFFER), 0);
    /* the digest stops as soon as the blob is sent (asked before the first
     * piece, then every few MiB) */
    int s = open(src, O_RDONLY), calls = 0;
    unsigned char *buf = malloc(1 << 20), *big = pattern(16u << 20);
    char hex[65] = "?";
    assert_int_equal(mlo__artifact_hash(s, big, 16u << 20, buf, 1 << 20, hex, say_sent, &calls), 1);
    assert_int_equal(calls, 2);
    assert_string_equal(hex, "");
    free(big);
    calls = -100; /* never sent */
    char want[65];
    sha_hex(data, n, want);
    assert_int_equal(mlo__artifact_hash(s, data, n, buf, 1 << 20, hex, say_sent, &calls), 0);
    assert_string_equal(hex, want);
    close(s);
    free(buf);
    free(data);
    free(empty);
    tu_rm_rf(dir);
    free(dir);
    free(src);
    free(dst);
}

/* The manifest of store's staged artifact rel (malloc'd path). */
static char *find_manifest(const char *store, const char *rel, const char *suffix) {
    char *d = path_join(store, "artifacts");
    DIR *dir = opendir(d);
    assert_non_null(dir);
    char *found = NULL, want[600];
    snprintf(want, sizeof want, "\npath %s\n", rel);
    struct dirent *e;
    while ((e = readdir(dir)) && !found) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix))
            continue;
        char *p = path_join(d, e->d_name);
        char *text = slurp(p, NULL);
        if (strstr(text, want))
            found = p;
        else
            free(p);
        free(text);
    }
    closedir(dir);
    free(d);
    return found;
}

/* Replaces the value of line `key` of a manifest (NULL: removes the line),
 * as a new file renamed over it. */
static void manifest_edit(const char *path, const char *key, const char *value) {
    char *text = slurp(path, NULL), *out = NULL;
    size_t cap = strlen(text) + 256, len = 0, kl = strlen(key);
    out = malloc(cap);
    assert_non_null(out);
    for (char *line = text, *nl; *line; line = nl) {
        nl = strchr(line, '\n');
        nl = nl ? nl + 1 : line + strlen(line);
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            if (value)
                len += (size_t)snprintf(out + len, cap - len, "%s %s\n", key, value);
            continue;
        }
        memcpy(out + len, line, (size_t)(nl - line));
        len += (size_t)(nl - line);
    }
    char *tmp = NULL;
    assert_true(asprintf(&tmp, "%s.edit", path) > 0);
    write_file(tmp, out, len);
    assert_int_equal(rename(tmp, path), 0);
    free(tmp);
    free(text);
    free(out);
}

/* The value of line key of a manifest (malloc'd), NULL if absent. */
static char *manifest_get(const char *path, const char *key) {
    char *text = slurp(path, NULL), *v = NULL, want[64];
    snprintf(want, sizeof want, "\n%s ", key);
    char *at = strstr(text, want);
    if (at) {
        at += strlen(want);
        v = strndup(at, strcspn(at, "\n"));
    }
    free(text);
    return v;
}

/* The blob of a manifest path ("<id>.art" -> "<id>.blob"). */
static char *blob_of(const char *art) {
    char *b = NULL;
    size_t l = strlen(art);
    assert_true(asprintf(&b, "%.*s.blob", (int)(l - 4), art) > 0);
    return b;
}

/* Writes byte v at offset 0 of path in place, until its ctime differs from
 * the one the manifest recorded (file times move in clock ticks). */
static void change_in_place(const char *blob, const char *art, unsigned char v) {
    char *ident = manifest_get(art, "blob");
    assert_non_null(ident);
    long long dev, ino, mt, ct;
    char boot[64];
    assert_int_equal(sscanf(ident, "%63s %lld %lld %lld %lld", boot, &dev, &ino, &mt, &ct), 5);
    free(ident);
    int fd = open(blob, O_WRONLY);
    assert_true(fd >= 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(pwrite(fd, &v, 1, 0), 1);
        struct stat sb;
        assert_int_equal(fstat(fd, &sb), 0);
        if ((long long)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec != ct)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    close(fd);
}

/* What the manifest records of a staged blob decides whether the uploader
 * reads it before sending: as staged (identity unchanged), it is sent as it
 * is, without its SHA-256 being computed again -- even a wrong or pending
 * digest in the manifest does not matter; changed (written in place,
 * replaced, another boot, or an old manifest without the record), it is
 * hashed first, and refused as damaged if the digest does not match or was
 * never recorded.  Staged in a local store, uploaded by `mlo sync`. */
static void test_blob_identity(void **state) {
    (void)state;
    char *dir = tmpdir("ident"), *store = path_join(dir, "store");
    enum { N = 9 };
    static const char *const rel[N] = {
        "as-staged/wrong-sha.bin", "as-staged/pending-sha.bin", "old/intact.bin",
        "old/wrong-sha.bin",       "changed/in-place.bin",      "changed/replaced.bin",
        "reboot/intact.bin",       "reboot/wrong-sha.bin",      "changed/pending-sha.bin"};
    /* which ones must arrive */
    static const int arrives[N] = {1, 1, 1, 0, 0, 1, 1, 0, 0};
    unsigned char *content[N];
    size_t len[N];
    copts co = {.store = store, .no_uri = 1};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-ident", NULL, NULL, &run), MLO_OK);
    char lid[33];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    for (int i = 0; i < N; i++) {
        /* two larger than the copy buffer: their digest is computed after the
         * hand-over (none here: a local store) and written into the manifest */
        len[i] = i == 2 || i == 5 ? (3u << 20) + 77 : 300000;
        content[i] = pattern(len[i]);
        content[i][7] = (unsigned char)i;
        char *f = path_join(dir, "f.bin");
        write_file(f, (const char *)content[i], len[i]);
        /* logged from a file named as its artifact path's last part */
        char sub[64];
        size_t dl = strcspn(rel[i], "/");
        snprintf(sub, sizeof sub, "%.*s", (int)dl, rel[i]);
        char *named = path_join(dir, rel[i] + dl + 1);
        assert_int_equal(rename(f, named), 0);
        assert_int_equal(mlo_log_artifact(run, named, sub), MLO_OK);
        unlink(named);
        free(named);
        free(f);
    }
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_close(c), MLO_OK);

    static const char wrong[] = "0000000000000000000000000000000000000000000000000000000000000000";
    char *art[N];
    for (int i = 0; i < N; i++) {
        art[i] = find_manifest(store, rel[i], ".art");
        assert_non_null(art[i]);
        char *sha = manifest_get(art[i], "sha256"), want[65];
        sha_hex(content[i], len[i], want);
        assert_string_equal(sha, want); /* the log call recorded the digest */
        free(sha);
        char *ident = manifest_get(art[i], "blob");
        assert_non_null(ident); /* and the identity */
        free(ident);
    }
    manifest_edit(art[0], "sha256", wrong);
    manifest_edit(art[1], "sha256", MLO_MANIFEST_SHA_PENDING); /* a kill -9 before the digest */
    manifest_edit(art[2], "blob", NULL);                       /* written by an older mlo */
    manifest_edit(art[3], "blob", NULL);
    manifest_edit(art[3], "sha256", wrong);
    char *b4 = blob_of(art[4]);
    change_in_place(b4, art[4], 0xee);
    free(b4);
    {
        /* replaced by a copy of itself: another inode, the same bytes */
        char *b = blob_of(art[5]), *tmp = path_join(dir, "replacement");
        write_file(tmp, (const char *)content[5], len[5]);
        assert_int_equal(rename(tmp, b), 0);
        free(b);
        free(tmp);
    }
    for (int i = 6; i <= 7; i++) {
        /* staged in another boot (a machine restarted) */
        char *ident = manifest_get(art[i], "blob");
        memcpy(ident, "00000000-0000-0000-0000-000000000000", 36);
        manifest_edit(art[i], "blob", ident);
        free(ident);
    }
    manifest_edit(art[7], "sha256", wrong);
    manifest_edit(art[8], "sha256", MLO_MANIFEST_SHA_PENDING);
    char *b8 = blob_of(art[8]);
    change_in_place(b8, art[8], content[8][0]); /* the same byte: only its times change */
    free(b8);

    char err[1024] = "";
    int st = mlo__sync_store(store, testsrv_uri(srv), NULL, NULL, err, sizeof err);
    assert_int_equal(st, MLO_ERR_STORE);
    assert_non_null(strstr(err, "damaged"));
    char *exp = NULL, *rid = server_run_of(lid, &exp);
    assert_non_null(rid);
    int refused = 0;
    for (int i = 0; i < N; i++) {
        char sha[65] = "", want[65];
        sha_hex(content[i], len[i], want);
        int64_t size = stored(exp, rid, rel[i], sha);
        if (arrives[i]) {
            if (size != (int64_t)len[i])
                fail_msg("%s: stored %lld bytes, expected %zu", rel[i], (long long)size, len[i]);
            assert_string_equal(sha, want);
        } else {
            if (size != -1)
                fail_msg("%s was uploaded, it should have been refused", rel[i]);
            char *failed = find_manifest(store, rel[i], ".failed");
            assert_non_null(failed);
            char *why = manifest_get(failed, "error");
            assert_non_null(why);
            assert_non_null(strstr(why, "damaged"));
            free(why);
            free(failed);
            refused++;
        }
        free(art[i]);
        free(content[i]);
    }
    assert_int_equal(count_store_files(store, ".failed"), refused);
    assert_int_equal(count_store_files(store, ".art"), 0);
    assert_int_equal(count_store_files(store, ".blob"), refused); /* kept, as before */
    free(rid);
    free(exp);
    tu_rm_rf(dir);
    free(dir);
    free(store);
}

/* A file larger than the copy buffer is handed to the uploader before its
 * digest is known: the log call computes it meanwhile and writes it into the
 * manifest (the uploader cannot send it: the artifact API is down), so the
 * staged copy can be checked later; then it is sent whole. */
static void test_digest_while_sending(void **state) {
    (void)state;
    char *dir = tmpdir("digest"), *store = path_join(dir, "store"), *f = path_join(dir, "w.bin");
    size_t n = (5u << 20) + 3;
    unsigned char *data = pattern(n);
    write_file(f, (const char *)data, n);
    copts co = {.store = store};
    mlo_client_t *c = open_client(NULL, &co);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "art-digest", NULL, NULL, &run), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    server_config("{\"artifacts_down\": true}");
    assert_int_equal(mlo_log_artifact(run, f, "w"), MLO_OK);
    assert_int_equal(unlink(f), 0);
    char *art = find_manifest(store, "w/w.bin", ".art");
    assert_non_null(art);
    char *sha = manifest_get(art, "sha256"), *ident = manifest_get(art, "blob"), want[65];
    sha_hex(data, n, want);
    assert_string_equal(sha, want);
    assert_non_null(ident);
    server_config("{\"artifacts_down\": false}");
    assert_int_equal(mlo_client_flush(c, 60000), MLO_OK);
    assert_stored(run, "w/w.bin", data, n);
    assert_int_equal(count_store_files(store, ".art"), 0);
    assert_int_equal(count_store_files(store, ".blob"), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    free(sha);
    free(ident);
    free(art);
    free(data);
    tu_rm_rf(dir);
    free(dir);
    free(store);
    free(f);
}

/* ---- the upload that follows the copy ---- */

#define ART_PUT "/api/2.0/mlflow-artifacts/artifacts/"

/* PUTs of the request log under ART_PUT by the status they were answered
 * with (0: the client hung up mid-body), and in all. */
static int count_puts(int status, int *all) {
    json_t *log = tu_requests(srv);
    int n = 0;
    *all = 0;
    size_t i;
    json_t *q;
    json_array_foreach(log, i, q) {
        const char *m = tu_str(q, "method"), *p = tu_str(q, "path");
        if (!m || strcmp(m, "PUT") || !p || strncmp(p, ART_PUT, strlen(ART_PUT)))
            continue;
        (*all)++;
        n += json_integer_value(json_object_get(q, "status")) == status;
    }
    json_decref(log);
    return n;
}

/* What the hook does, once, when `at` bytes are copied, after waiting
 * until the server has the PUT that follows the copy. */
enum { F_WAIT_PUT, F_WAIT_SENT, F_SHRINK, F_GROW };
static struct {
    int what;
    int64_t at;
    const char *path; /* the source */
    int64_t to;       /* F_SHRINK: its new size */
    const unsigned char *more;
    size_t nmore; /* F_GROW: appended */
    int done, saw_put;
    int64_t size; /* as the log call saw it */
} fh;

static void piece_hook(int src, int64_t copied, int64_t size) {
    (void)src;
    fh.size = size;
    if (fh.done || copied < fh.at)
        return;
    fh.done = 1;
    /* the copy waits: the upload must have started without it */
    int all = 0;
    TU_WAIT_UNTIL((count_puts(-1, &all), all >= 1), 10000);
    count_puts(-1, &all);
    fh.saw_put = all;
    switch (fh.what) {
    case F_WAIT_PUT:
        break;
    case F_WAIT_SENT: /* and stored, before the copy has said it is complete */
        TU_WAIT_UNTIL(count_puts(200, &all) >= 1, 10000);
        fh.saw_put = 1 + count_puts(200, &all);
        break;
    case F_SHRINK:
        assert_int_equal(truncate(fh.path, (off_t)fh.to), 0);
        break;
    case F_GROW: {
        int fd = open(fh.path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, fh.more, fh.nmore), (ssize_t)fh.nmore);
        close(fd);
        break;
    }
    }
}

/* One case of the upload that follows the copy: a file of n bytes (the
 * pattern; data holds `cap` bytes of it, for a file that grows), a client
 * on a store of its own, and the hook set to `what` at `at` bytes. */
typedef struct fcase {
    const char *tag; /* also the run's name */
    char *dir, *store, *f;
    unsigned char *data;
    size_t n;
    mlo_client_t *c;
    mlo_run_t *run;
} fcase;

static void fcase_open(fcase *k, const char *tag, size_t n, size_t cap, double timeout_s, int what,
                       int64_t at) {
    memset(k, 0, sizeof *k);
    k->tag = tag;
    k->dir = tmpdir(tag);
    k->store = path_join(k->dir, "store");
    k->f = path_join(k->dir, "m.bin");
    k->n = n;
    k->data = pattern(cap > n ? cap : n);
    write_file(k->f, (const char *)k->data, n);
    copts co = {.store = k->store, .timeout_s = timeout_s};
    k->c = open_client(NULL, &co);
    memset(&fh, 0, sizeof fh);
    fh.what = what;
    fh.at = at;
    fh.path = k->f;
}

/* Logs the file with the hook set, deletes it, then flushes within
 * flush_ms; the hook must have acted, after seeing the PUT under way. */
static void fcase_log(fcase *k, int flush_ms) {
    assert_int_equal(mlo_start_run(k->c, k->tag, NULL, NULL, &k->run), MLO_OK);
    assert_int_equal(mlo_client_flush(k->c, 10000), MLO_OK); /* created on the server */
    free(testsrv_post(srv, "/_test/requests/clear", "{}", NULL));
    mlo__artifact_piece_hook = piece_hook;
    int st = mlo_log_artifact(k->run, k->f, "m");
    mlo__artifact_piece_hook = NULL;
    assert_int_equal(st, MLO_OK);
    assert_int_equal(unlink(k->f), 0);
    assert_int_equal(mlo_client_flush(k->c, flush_ms), MLO_OK);
    assert_true(fh.done);
    assert_true(fh.saw_put >= 1);
}

/* The server holds exactly `len` bytes of the pattern, the client counted
 * them, the store is empty; closes the client and frees the case. */
static void fcase_close(fcase *k, size_t len) {
    assert_stored(k->run, "m/m.bin", k->data, len);
    uint64_t bytes = 0;
    assert_int_equal(mlo_client_stat(k->c, MLO_STAT_ARTIFACT_BYTES, &bytes), MLO_OK);
    assert_int_equal(bytes, (uint64_t)len);
    assert_int_equal(count_store_files(k->store, ".art"), 0);
    assert_int_equal(count_store_files(k->store, ".blob"), 0);
    assert_int_equal(mlo_client_close(k->c), MLO_OK);
    free(k->data);
    tu_rm_rf(k->dir);
    free(k->dir);
    free(k->store);
    free(k->f);
}

/* A large file is sent while it is copied: with the copy held at half
 * way, the server already has the PUT; one PUT in all, the bytes exact. */
static void test_upload_follows_copy(void **state) {
    (void)state;
    fcase k;
    size_t n = ((size_t)16 << 20) + 5;
    fcase_open(&k, "follow", n, 0, 0, F_WAIT_PUT, (int64_t)n / 2);
    fcase_log(&k, 60000);
    assert_int_equal(fh.size, (int64_t)n);
    assert_int_equal(fh.saw_put, 1); /* under way before the copy was complete */
    int all = 0;
    assert_int_equal(count_puts(200, &all), 1);
    assert_int_equal(all, 1); /* not sent again after the copy */
    fcase_close(&k, n);
}

/* The upload that followed the copy is done before the log call has said
 * the copy is complete (the hook holds it after the last piece until the
 * server has stored the file): the hand-over still finds it sent; one
 * PUT. */
static void test_follow_done_first(void **state) {
    (void)state;
    fcase k;
    size_t n = ((size_t)9 << 20) + 3;
    fcase_open(&k, "first", n, 0, 0, F_WAIT_SENT, (int64_t)n);
    fcase_log(&k, 60000);
    assert_int_equal(fh.saw_put, 2); /* stored while the hook held the call */
    int all = 0;
    assert_int_equal(count_puts(200, &all), 1);
    assert_int_equal(all, 1);
    fcase_close(&k, n);
}

/* The file shrinks during the copy: the upload that followed it stops
 * mid-body (the server keeps nothing of it), and what was staged, the
 * shorter file, is sent the usual way. */
static void test_follow_source_shrinks(void **state) {
    (void)state;
    fcase k;
    size_t cut = ((size_t)10 << 20) + 7;
    /* the request timeout far above the flush's: an upload left waiting
     * for bytes that never come would hold the flush past its deadline */
    fcase_open(&k, "shrink", (size_t)16 << 20, 0, 300, F_SHRINK, 4 << 20);
    fh.to = (int64_t)cut;
    fcase_log(&k, 30000);
    int all = 0;
    assert_int_equal(count_puts(200, &all), 1);
    assert_int_equal(count_puts(0, &all), 1); /* the one that followed the copy: cut off */
    assert_int_equal(all, 2);
    fcase_close(&k, cut);
}

/* The file grows during the copy: the copy takes the new end, the upload
 * that followed it sent only the size the copy began with, so the staged
 * file is sent again, whole; the server ends with every byte. */
static void test_follow_source_grows(void **state) {
    (void)state;
    fcase k;
    size_t n = (size_t)12 << 20, more = ((size_t)3 << 20) + 11;
    fcase_open(&k, "grow", n, n + more, 0, F_GROW, 2 << 20);
    fh.more = k.data + n;
    fh.nmore = more;
    fcase_log(&k, 60000);
    int all = 0;
    assert_int_equal(count_puts(200, &all), 2); /* n bytes as it followed, then all of it */
    assert_int_equal(all, 2);
    fcase_close(&k, n + more);
}

/* The PUT that follows the copy is refused (503) on every attempt the
 * client makes (3: retries 2): the staged file is sent again the usual way
 * once the copy is complete. */
static void test_follow_put_fails(void **state) {
    (void)state;
    fcase k;
    size_t n = ((size_t)12 << 20) + 1;
    fcase_open(&k, "follow503", n, 0, 0, F_WAIT_PUT, 6 << 20);
    assert_int_equal(testsrv_fault(srv, "{\"status\": 503, \"count\": 3, \"method\": \"PUT\", "
                                        "\"path_prefix\": \"" ART_PUT "\"}"),
                     0);
    fcase_log(&k, 60000);
    tu_faults_clear(srv);
    int all = 0;
    assert_int_equal(count_puts(200, &all), 1);
    assert_int_equal(count_puts(503, &all), 3);
    assert_int_equal(all, 4);
    fcase_close(&k, n);
}

/* ---- the log call gives way to an upload that will end first ---- */

/* Logs k's file (no hook) into a new run, with the digests the log call
 * computed after the hand-over meanwhile (*digests) and the PUTs the server
 * had answered 200 when it returned (*done). */
static void log_weighed(fcase *k, uint64_t *digests, int *done) {
    assert_int_equal(mlo_start_run(k->c, k->tag, NULL, NULL, &k->run), MLO_OK);
    assert_int_equal(mlo_client_flush(k->c, 10000), MLO_OK); /* created on the server */
    free(testsrv_post(srv, "/_test/requests/clear", "{}", NULL));
    uint64_t d0 = atomic_load(&mlo__artifact_late_digests);
    assert_int_equal(mlo_log_artifact(k->run, k->f, "m"), MLO_OK);
    *digests = atomic_load(&mlo__artifact_late_digests) - d0;
    int all = 0;
    *done = count_puts(200, &all);
    assert_int_equal(unlink(k->f), 0);
    assert_int_equal(mlo_client_flush(k->c, 60000), MLO_OK);
}

/* The server holds the PUT's body delay_ms; the log call reckons its digest
 * at bps bytes/s (0: its own figure).  When the call returns, the server has
 * answered `done` PUTs with 200 and the call has computed `digests`
 * digests after the hand-over. */
static void give_way_case(const char *tag, int delay_ms, double bps, int done, uint64_t digests) {
    fcase k;
    size_t n = ((size_t)16 << 20) + 9;
    fcase_open(&k, tag, n, 0, 0, -1, 0);
    char fault[256];
    snprintf(fault, sizeof fault,
             "{\"delay_ms\": %d, \"count\": 1, \"method\": \"PUT\", \"process\": true, "
             "\"path_prefix\": \"" ART_PUT "\"}",
             delay_ms);
    assert_int_equal(testsrv_fault(srv, fault), 0);
    mlo__artifact_hash_bps = bps;
    uint64_t got_digests = 0;
    int got_done = 0;
    int64_t rate0 = mlo__artifact_hash_rate();
    log_weighed(&k, &got_digests, &got_done);
    mlo__artifact_hash_bps = 0;
    tu_faults_clear(srv);
    assert_int_equal(got_done, done);
    assert_int_equal(got_digests, digests);
    /* a digest computed is a speed measured, reckoned with from then on */
    if (digests)
        assert_true(mlo__artifact_hash_rate() > 0 && mlo__artifact_hash_rate() != rate0);
    fcase_close(&k, n);
}

/* The server holds the body 300 ms; the digest and fsyncs are reckoned
 * slower (at 1 MB/s): the call waits for the upload, returns once the
 * server has the file, and computes no digest. */
static void test_give_way_to_upload(void **state) {
    (void)state;
    give_way_case("giveway", 300, 1e6, 1, 0);
}

/* The server holds the body 2.5 s: a stalled upload is not waited for;
 * the call computes the digest (and forces the file to disk) and returns
 * before the server has it. */
static void test_no_give_way_to_slow_upload(void **state) {
    (void)state;
    give_way_case("slowput", 2500, 0, 0, 1);
}

/* mlo__manifest_set_sha: the pending digest written in place (same inode:
 * an uploader's flock stays valid), into <id>.failed if the manifest was
 * refused for good meanwhile, nothing if it was sent. */
static void test_manifest_set_sha(void **state) {
    (void)state;
    char *dir = tmpdir("setsha");
    static const char digest[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    mlo_manifest m = {.path = "a/b c%.bin", .size = 5, .created = 1, .uri = "http://x"};
    snprintf(m.lid, sizeof m.lid, "run1");
    memcpy(m.sha, MLO_MANIFEST_SHA_PENDING, 65);
    int fd = open("/proc/self/exe", O_RDONLY);
    assert_int_equal(mlo__manifest_ident_fd(fd, &m.blob), 0);
    close(fd);
    assert_int_equal(mlo__manifest_write(dir, "p-1", ".art", &m, 0), 0);
    char *art = mlo__manifest_path(dir, "p-1", ".art");
    struct stat before, after;
    assert_int_equal(stat(art, &before), 0);
    assert_int_equal(mlo__manifest_set_sha(dir, "p-1", digest, 1), 0);
    assert_int_equal(stat(art, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    int afd = open(art, O_RDONLY);
    mlo_manifest r;
    assert_int_equal(mlo__manifest_read_fd(afd, &r), 0);
    close(afd);
    assert_string_equal(r.sha, digest);
    assert_string_equal(r.path, "a/b c%.bin");
    assert_true(mlo__manifest_ident_same(&r.blob, &m.blob));
    mlo__manifest_free(&r);
    /* refused for good meanwhile */
    assert_int_equal(mlo__manifest_write(dir, "p-2", ".failed", &m, 0), 0);
    assert_int_equal(mlo__manifest_set_sha(dir, "p-2", digest, 0), 0);
    char *failed = mlo__manifest_path(dir, "p-2", ".failed");
    afd = open(failed, O_RDONLY);
    assert_int_equal(mlo__manifest_read_fd(afd, &r), 0);
    close(afd);
    assert_string_equal(r.sha, digest);
    mlo__manifest_free(&r);
    /* sent: nothing there, nothing written */
    assert_int_equal(mlo__manifest_set_sha(dir, "p-3", digest, 0), 0);
    char *gone = mlo__manifest_path(dir, "p-3", ".art");
    assert_int_equal(access(gone, F_OK), -1);
    /* an old manifest without the identity still parses; a damaged one is
     * unknown, never trusted */
    char old[] = "mlo-artifact 1\nrun r\npath x.bin\nsize 1\nsha256 "
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
                 "created 1\nuri -\n";
    assert_int_equal(mlo__manifest_parse(old, &r), 0);
    assert_int_equal(r.blob.set, 0);
    mlo__manifest_free(&r);
    char bad[] = "mlo-artifact 1\nrun r\npath x.bin\nsize 1\nsha256 "
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
                 "created 1\nuri -\nblob 00000000-0000-0000-0000-000000000000 1 2 x 4\n";
    assert_int_equal(mlo__manifest_parse(bad, &r), 0);
    assert_int_equal(r.blob.set, 0);
    mlo__manifest_free(&r);
    free(art);
    free(failed);
    free(gone);
    tu_rm_rf(dir);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--kill-child"))
        return kill_child(argv[2], argv[3], argv[4]);
    tu_init("artifact");
    srv = testsrv_start("");
    if (!srv) {
        fprintf(stderr, "could not start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_file, setup),
        cmocka_unit_test_setup(test_directory_tree, setup),
        cmocka_unit_test_setup(test_bytes, setup),
        cmocka_unit_test_setup(test_caller_deletes_file, setup),
        cmocka_unit_test_setup(test_large_file, setup),
        cmocka_unit_test_setup(test_server_down_then_back, setup),
        cmocka_unit_test_setup(test_kill9_then_recovery, setup),
        cmocka_unit_test_setup(test_kill9_mid_upload, setup),
        cmocka_unit_test_setup(test_multipart, setup),
        cmocka_unit_test_setup(test_multipart_not_offered, setup),
        cmocka_unit_test_setup(test_not_proxied, setup),
        cmocka_unit_test_setup(test_rejected_paths, setup),
        cmocka_unit_test_setup(test_local_store_then_sync, setup),
        cmocka_unit_test_setup(test_permanent_refusal, setup),
        cmocka_unit_test_setup(test_no_store_synchronous, setup),
        cmocka_unit_test_setup(test_copy_methods, setup),
        cmocka_unit_test_setup(test_blob_identity, setup),
        cmocka_unit_test_setup(test_manifest_set_sha, setup),
        cmocka_unit_test_setup(test_digest_while_sending, setup),
        cmocka_unit_test_setup(test_upload_follows_copy, setup),
        cmocka_unit_test_setup(test_follow_done_first, setup),
        cmocka_unit_test_setup(test_follow_source_shrinks, setup),
        cmocka_unit_test_setup(test_follow_source_grows, setup),
        cmocka_unit_test_setup(test_follow_put_fails, setup),
        cmocka_unit_test_setup(test_give_way_to_upload, setup),
        cmocka_unit_test_setup(test_no_give_way_to_slow_upload, setup),
    };
    int rc = tu_run_group("test_artifact", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
