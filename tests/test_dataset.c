/*
 * test_dataset.c - mlo_log_dataset end to end against the test server
 * (tests/mlflow_test_server.py): what the server stored (runs/get
 * run.inputs.dataset_inputs, /_test/dump), the digest of files and
 * directories against independent computations (sha256sum; the directory
 * rule of src/mlo_dataset.c reproduced in Python), source types and MLflow's
 * source JSON, the order of a dataset among metrics, a refused dataset and
 * an outage around one, the local store then sync (and `mlo show`), kill -9
 * with the record still in the ring, memory mode, and every argument refused
 * at the call.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlo.h"
#include "mlo_sync.h"
#include "testutil.h"

/* src/mlo_dataset.c */
int mlo__dataset_digest(const char *path, char hex[33], char *err, size_t errlen);

#ifndef MLO_TEST_PYTHON
#define MLO_TEST_PYTHON "/usr/bin/python3"
#endif

static testsrv *srv;
static char *g_tmp; /* a fresh directory per test, below the process's scratch directory */

/* ---- helpers ---- */

static char *tmp_path(const char *rel) {
    static char bufs[8][PATH_MAX];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", g_tmp, rel);
    return b;
}

static void write_str(const char *path, const char *s) {
    tu_write_file(path, s, strlen(s));
}

static void mkdir_p(const char *path) {
    assert_int_equal(mkdir(path, 0700), 0);
}

/* A client on its own store (a temporary directory), with the test server
 * (uri non-NULL) or as a local store. */
static mlo_client_t *open_client(const char *uri, tu_errors *cap, int durable) {
    tu_client_cfg k = {.uri = uri,
                       .store = tmp_path("store"),
                       .memory_only = !durable,
                       .retries = 3,
                       .backoff_s = 0.05,
                       .jitter_s = 0.01,
                       .timeout_s = 5,
                       .flush_ms = 20,
                       .errors = cap};
    return tu_open(&k);
}

static json_t *get_json(const char *path) {
    return tu_get_json(srv, path);
}

/* runs/get: run.inputs.dataset_inputs (a new reference; an empty array when none). */
static json_t *inputs_of(const char *run_id) {
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/runs/get?run_id=%s", run_id);
    json_t *j = get_json(path);
    json_t *in =
        json_object_get(json_object_get(json_object_get(j, "run"), "inputs"), "dataset_inputs");
    json_t *out = in ? json_incref(in) : json_array();
    json_decref(j);
    return out;
}

/* The dataset of inputs named name (borrowed), or NULL. */
static json_t *dataset_named(json_t *inputs, const char *name) {
    size_t i;
    json_t *in;
    json_array_foreach(inputs, i, in) {
        json_t *ds = json_object_get(in, "dataset");
        const char *n = json_string_value(json_object_get(ds, "name"));
        if (n && !strcmp(n, name))
            return ds;
    }
    return NULL;
}

/* o[k], "" when absent */
static const char *str_at(json_t *o, const char *k) {
    const char *s = tu_str(o, k);
    return s ? s : "";
}

static void check_dataset(json_t *inputs, const char *name, const char *digest,
                          const char *source_type, const char *source) {
    json_t *ds = dataset_named(inputs, name);
    if (!ds)
        fail_msg("dataset %s not stored", name);
    if (digest)
        assert_string_equal(str_at(ds, "digest"), digest);
    assert_string_equal(str_at(ds, "source_type"), source_type);
    assert_string_equal(str_at(ds, "source"), source);
}

/* First 32 hex characters of `sha256sum path`. */
static void sha256sum32(const char *path, char out[33]) {
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    memcpy(out, line, 32);
    out[32] = 0;
}

/* The directory rule of src/mlo_dataset.c, written again in Python: every
 * file below root (links followed), sorted by its relative path as bytes:
 * path, NUL, 8-byte little-endian size, content. */
static void py_dir_digest(const char *root, char out[33]) {
    static const char *script =
        "import hashlib, os, struct, sys\n"
        "root = sys.argv[1]\n"
        "files = []\n"
        "for dp, dn, fn in os.walk(root, followlinks=True):\n"
        "    for f in fn:\n"
        "        files.append(os.path.relpath(os.path.join(dp, f), root).encode())\n"
        "files.sort()\n"
        "h = hashlib.sha256()\n"
        "for rel in files:\n"
        "    data = open(os.path.join(root.encode(), rel), 'rb').read()\n"
        "    h.update(rel + b'\\0' + struct.pack('<Q', len(data)) + data)\n"
        "print(h.hexdigest()[:32])\n";
    char *sp = tmp_path("digest.py");
    write_str(sp, script);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "%s '%s' '%s'", MLO_TEST_PYTHON, sp, root);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    assert_true(strlen(line) >= 32);
    memcpy(out, line, 32);
    out[32] = 0;
    unlink(sp);
}

static void digest_ok(const char *path, char out[33]) {
    char err[512] = "";
    int st = mlo__dataset_digest(path, out, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("digest of %s: %s (%s)", path, mlo_strerror(st), err);
    assert_int_equal(strlen(out), 32);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    g_tmp = tu_tmpdir("t");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rm_rf(g_tmp);
    free(g_tmp);
    g_tmp = NULL;
    return 0;
}

/* ---- tests ---- */

/* An explicit digest: stored as given, with the source type and JSON of the
 * URI; counted like any event. */
static void test_explicit_digest(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "explicit", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "iris", "s3://bucket/iris/train.csv", "abc123"), MLO_OK);
    /* a digest of exactly 36 characters is MLflow's limit */
    const char *d36 = "0123456789abcdef0123456789abcdef0123";
    assert_int_equal(mlo_log_dataset(run, "iris-36", "gs://b/x", d36), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 2, 0);

    json_t *in = inputs_of(mlo_run_id(run));
    assert_int_equal(json_array_size(in), 2);
    check_dataset(in, "iris", "abc123", "s3", "{\"uri\": \"s3://bucket/iris/train.csv\"}");
    check_dataset(in, "iris-36", d36, "gs", "{\"uri\": \"gs://b/x\"}");
    /* no context given: no input tags (MLflow's log_input default) */
    assert_null(json_object_get(json_array_get(in, 0), "tags"));
    json_decref(in);
    assert_int_equal(cap.n, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* A file's digest is the SHA-256 of its content (sha256sum, known vectors);
 * a relative path is sent as its absolute path. */
static void test_file_digest(void **state) {
    (void)state;
    char d[33];
    /* known vectors: SHA-256("abc"), SHA-256("") */
    write_str(tmp_path("abc.txt"), "abc");
    digest_ok(tmp_path("abc.txt"), d);
    assert_string_equal(d, "ba7816bf8f01cfea414140de5dae2223");
    tu_write_file(tmp_path("empty"), "", 0);
    digest_ok(tmp_path("empty"), d);
    assert_string_equal(d, "e3b0c44298fc1c149afbf4c8996fb924");

    /* 3 MiB + 7 bytes: several 1 MiB chunks and a partial one */
    size_t n = (3u << 20) + 7;
    unsigned char *big = malloc(n);
    assert_non_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (unsigned char)(x >> 16);
    }
    mkdir_p(tmp_path("data"));
    tu_write_file(tmp_path("data/train.bin"), big, n);
    free(big);
    char want[33];
    sha256sum32(tmp_path("data/train.bin"), want);
    digest_ok(tmp_path("data/train.bin"), d);
    assert_string_equal(d, want);

    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "file", NULL, &run), MLO_OK);
    /* relative to the working directory, computed digest */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(g_tmp), 0);
    int st1 = mlo_log_dataset(run, "train", "data/train.bin", NULL);
    int st2 = mlo_log_dataset(run, "dot", "./data/../abc.txt", NULL);
    int st3 = mlo_log_dataset(run, "later", "./not-yet/there.csv", "feedface");
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(st1, MLO_OK);
    assert_int_equal(st2, MLO_OK);
    assert_int_equal(st3, MLO_OK);
    /* an absolute path, as given */
    assert_int_equal(mlo_log_dataset(run, "abs", tmp_path("abc.txt"), NULL), MLO_OK);
    /* a file: URI is local too */
    char uri[PATH_MAX + 16];
    snprintf(uri, sizeof uri, "file://%s", tmp_path("abc.txt"));
    assert_int_equal(mlo_log_dataset(run, "file-uri", uri, NULL), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 5, 0);

    char real[PATH_MAX], src[PATH_MAX + 32];
    assert_non_null(realpath(g_tmp, real)); /* /tmp may be a link */
    json_t *in = inputs_of(mlo_run_id(run));
    assert_int_equal(json_array_size(in), 5);
    snprintf(src, sizeof src, "{\"uri\": \"%s/data/train.bin\"}", real);
    check_dataset(in, "train", want, "local", src);
    snprintf(src, sizeof src, "{\"uri\": \"%s/abc.txt\"}", real);
    check_dataset(in, "dot", "ba7816bf8f01cfea414140de5dae2223", "local", src);
    snprintf(src, sizeof src, "{\"uri\": \"%s/not-yet/there.csv\"}", real);
    check_dataset(in, "later", "feedface", "local", src);
    snprintf(src, sizeof src, "{\"uri\": \"%s\"}", tmp_path("abc.txt"));
    check_dataset(in, "abs", "ba7816bf8f01cfea414140de5dae2223", "local", src);
    snprintf(src, sizeof src, "{\"uri\": \"%s\"}", uri);
    check_dataset(in, "file-uri", "ba7816bf8f01cfea414140de5dae2223", "local", src);
    json_decref(in);
    assert_int_equal(cap.n, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* A directory's digest: as the documented rule (checked against Python),
 * the same every time, changed by a content change, a rename or a new file,
 * unchanged by empty directories, FIFOs and a link cycle. */
static void test_directory_digest(void **state) {
    (void)state;
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", tmp_path("ds"));
    mkdir_p(root);
    mkdir_p(tmp_path("ds/b"));
    mkdir_p(tmp_path("ds/b/d"));
    mkdir_p(tmp_path("ds/a.b")); /* sorts before "a/...", after "a b" */
    mkdir_p(tmp_path("ds/a"));
    write_str(tmp_path("ds/a.txt"), "first file\n");
    write_str(tmp_path("ds/a b"), "a space in the name\n");
    write_str(tmp_path("ds/a/x"), "in a\n");
    write_str(tmp_path("ds/a.b/y"), "in a.b\n");
    write_str(tmp_path("ds/b/c.csv"), "x,y\n1,2\n");
    tu_write_file(tmp_path("ds/b/d/zero"), "", 0);
    unsigned char bin[3000];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7);
    tu_write_file(tmp_path("ds/b/d/e.bin"), bin, sizeof bin);
    /* a link to a file outside the directory is followed (a DVC cache) */
    write_str(tmp_path("outside.dat"), "cached content\n");
    assert_int_equal(symlink(tmp_path("outside.dat"), tmp_path("ds/b/linked.dat")), 0);

    char d1[33], d2[33], py[33];
    digest_ok(root, d1);
    digest_ok(root, d2);
    assert_string_equal(d1, d2);
    py_dir_digest(root, py);
    assert_string_equal(d1, py);

    /* ignored: an empty directory, a FIFO, a link back to an ancestor */
    mkdir_p(tmp_path("ds/empty"));
    assert_int_equal(mkfifo(tmp_path("ds/b/pipe"), 0600), 0);
    assert_int_equal(symlink("..", tmp_path("ds/b/d/up")), 0);
    digest_ok(root, d2);
    assert_string_equal(d1, d2);
    unlink(tmp_path("ds/b/d/up"));
    unlink(tmp_path("ds/b/pipe"));

    /* one byte changed */
    bin[1234] ^= 1;
    tu_write_file(tmp_path("ds/b/d/e.bin"), bin, sizeof bin);
    digest_ok(root, d2);
    assert_string_not_equal(d1, d2);
    py_dir_digest(root, py);
    assert_string_equal(d2, py);
    bin[1234] ^= 1;
    tu_write_file(tmp_path("ds/b/d/e.bin"), bin, sizeof bin);
    digest_ok(root, d2);
    assert_string_equal(d1, d2);
    /* the linked file's content counts */
    write_str(tmp_path("outside.dat"), "cached content, v2\n");
    digest_ok(root, d2);
    assert_string_not_equal(d1, d2);
    write_str(tmp_path("outside.dat"), "cached content\n");
    /* a rename (same content, other path) */
    assert_int_equal(rename(tmp_path("ds/a.txt"), tmp_path("ds/a2.txt")), 0);
    digest_ok(root, d2);
    assert_string_not_equal(d1, d2);
    assert_int_equal(rename(tmp_path("ds/a2.txt"), tmp_path("ds/a.txt")), 0);
    /* a new empty file */
    tu_write_file(tmp_path("ds/new"), "", 0);
    digest_ok(root, d2);
    assert_string_not_equal(d1, d2);
    unlink(tmp_path("ds/new"));
    digest_ok(root, d2);
    assert_string_equal(d1, d2);

    /* an empty directory: SHA-256 of nothing */
    mkdir_p(tmp_path("nothing"));
    digest_ok(tmp_path("nothing"), d2);
    assert_string_equal(d2, "e3b0c44298fc1c149afbf4c8996fb924");

    /* unreadable: a link to nothing inside; the message names it */
    assert_int_equal(symlink(tmp_path("gone"), tmp_path("ds/b/dangling")), 0);
    char err[512] = "", hex[33];
    assert_int_equal(mlo__dataset_digest(root, hex, err, sizeof err), MLO_ERR_IO);
    assert_non_null(strstr(err, "b/dangling"));

    /* through the pipeline */
    unlink(tmp_path("ds/b/dangling"));
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "dir", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "tree", root, NULL), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 1, 0);
    json_t *in = inputs_of(mlo_run_id(run));
    char src[PATH_MAX + 32];
    snprintf(src, sizeof src, "{\"uri\": \"%s\"}", root);
    check_dataset(in, "tree", d1, "local", src);
    json_decref(in);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* URIs: the scheme is the source type (http and https: "http", with
 * MLflow's {"url": ...}); the JSON is written as Python's json.dumps does. */
static void test_uri_sources(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "uris", NULL, &run), MLO_OK);
    assert_int_equal(
        mlo_log_dataset(run, "dvc", "dvc://github.com/org/repo/data/train.csv@v1.2", "d1"), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "lakefs", "lakefs://repo/main/data/", "d2"), MLO_OK);
    assert_int_equal(
        mlo_log_dataset(run, "https", "https://example.com/data.csv?v=2&x=\"q\"", "d3"), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "http", "http://example.com/a.csv", "d4"), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "upper", "S3://Bucket/Key", "d5"), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "unicode",
                                     "gs://b/donn\xc3\xa9"
                                     "es/\xf0\x9f\x98\x80\\x",
                                     "d6"),
                     MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "models", "models:/iris/3", "d7"), MLO_OK);
    /* the same name and digest again: the server links it once */
    assert_int_equal(
        mlo_log_dataset(run, "dvc", "dvc://github.com/org/repo/data/train.csv@v1.2", "d1"), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 8, 0);

    json_t *in = inputs_of(mlo_run_id(run));
    assert_int_equal(json_array_size(in), 7);
    check_dataset(in, "dvc", "d1", "dvc",
                  "{\"uri\": \"dvc://github.com/org/repo/data/train.csv@v1.2\"}");
    check_dataset(in, "lakefs", "d2", "lakefs", "{\"uri\": \"lakefs://repo/main/data/\"}");
    check_dataset(in, "https", "d3", "http",
                  "{\"url\": \"https://example.com/data.csv?v=2&x=\\\"q\\\"\"}");
    check_dataset(in, "http", "d4", "http", "{\"url\": \"http://example.com/a.csv\"}");
    check_dataset(in, "upper", "d5", "s3", "{\"uri\": \"S3://Bucket/Key\"}");
    check_dataset(in, "unicode", "d6", "gs",
                  "{\"uri\": \"gs://b/donn\\u00e9es/\\ud83d\\ude00\\\\x\"}");
    check_dataset(in, "models", "d7", "models", "{\"uri\": \"models:/iris/3\"}");
    /* the JSON is what Python's json.dumps({"uri": ...}) writes, and reads back */
    json_t *src = json_loads(str_at(dataset_named(in, "unicode"), "source"), 0, NULL);
    assert_non_null(src);
    assert_string_equal(str_at(src, "uri"), "gs://b/donn\xc3\xa9"
                                            "es/\xf0\x9f\x98\x80\\x");
    json_decref(src);
    json_decref(in);
    assert_int_equal(cap.n, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* The request log's paths of one kind, in order: 'B' log-batch, 'I'
 * log-inputs. */
static void request_kinds(char *out, size_t cap) {
    json_t *reqs = get_json("/_test/requests");
    size_t i, k = 0;
    json_t *r;
    json_array_foreach(reqs, i, r) {
        const char *p = str_at(r, "path");
        size_t l = strlen(p);
        char kind = 0;
        if (l >= 14 && !strcmp(p + l - 14, "runs/log-batch"))
            kind = 'B';
        else if (l >= 15 && !strcmp(p + l - 15, "runs/log-inputs"))
            kind = 'I';
        if (kind && k + 1 < cap)
            out[k++] = kind;
    }
    out[k] = 0;
    json_decref(reqs);
}

/* Metrics logged before and after a dataset arrive, in their order, with
 * the dataset between them. */
static void test_order_with_metrics(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "order", NULL, &run), MLO_OK);
    for (int64_t s = 0; s < 300; s++)
        assert_int_equal(
            mlo_log_metric_ts(run, "loss", 1.0 / (double)(s + 1), s, 1700000000000 + s), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "train", "s3://b/train", "t1"), MLO_OK);
    for (int64_t s = 300; s < 600; s++)
        assert_int_equal(
            mlo_log_metric_ts(run, "loss", 1.0 / (double)(s + 1), s, 1700000000000 + s), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 600 + 1 + 1, 0);

    json_t *d = tu_dump(srv);
    json_t *r = tu_find_run(d, mlo_run_id(run)), *x;
    size_t i;
    assert_string_equal(str_at(json_object_get(r, "info"), "status"), "FINISHED");
    json_t *ms = json_object_get(r, "metrics");
    assert_int_equal(json_array_size(ms), 600);
    json_array_foreach(ms, i, x) /* stored in the order they arrived */
        assert_int_equal(json_integer_value(json_object_get(x, "step")), (json_int_t)i);
    assert_int_equal(json_array_size(json_object_get(r, "inputs")), 1);
    json_decref(d);

    char kinds[256];
    request_kinds(kinds, sizeof kinds);
    char *inp = strchr(kinds, 'I');
    assert_non_null(inp);
    assert_null(strchr(inp + 1, 'I'));
    assert_true(inp > kinds && inp[-1] == 'B'); /* the metrics before it were sent first */
    assert_non_null(strchr(inp, 'B'));          /* and the ones after it after */
    assert_int_equal(cap.n, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* A dataset the server refuses (400) is reported once and counted as
 * failed; the run's other events all arrive. */
static void test_refused_keeps_other_events(void **state) {
    (void)state;
    assert_int_equal(testsrv_fault(srv, "{\"status\": 400, \"path_prefix\": \"runs/log-inputs\", "
                                        "\"content_type\": \"application/json\", \"body\": "
                                        "\"{\\\"error_code\\\": \\\"INVALID_PARAMETER_VALUE\\\", "
                                        "\\\"message\\\": \\\"dataset refused by the test\\\"}\"}"),
                     0);
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "refused", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "m", 1.0, 0), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "bad", "s3://b/bad", "x1"), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "m", 2.0, 1), MLO_OK);
    assert_int_equal(mlo_log_param(run, "p", "v"), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "good", "s3://b/good", "x2"), MLO_OK);
    assert_int_equal(mlo_set_tag(run, "t", "w"), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 7, 1);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, "dataset \"bad\""), 1);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, "dataset refused by the test"),
                     1);
    assert_int_equal(cap.n, 1);

    json_t *in = inputs_of(mlo_run_id(run));
    assert_int_equal(json_array_size(in), 1);
    check_dataset(in, "good", "x2", "s3", "{\"uri\": \"s3://b/good\"}");
    json_decref(in);
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/runs/get?run_id=%s", mlo_run_id(run));
    json_t *g = get_json(path);
    json_t *rr = json_object_get(g, "run");
    assert_string_equal(str_at(json_object_get(rr, "info"), "status"), "FINISHED");
    json_t *data = json_object_get(rr, "data");
    assert_int_equal(json_array_size(json_object_get(data, "params")), 1);
    json_t *m = json_array_get(json_object_get(data, "metrics"), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "step")), 1);
    json_decref(g);
    snprintf(path, sizeof path, "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=m",
             mlo_run_id(run));
    json_t *h = get_json(path);
    assert_int_equal(json_array_size(json_object_get(h, "metrics")), 2);
    json_decref(h);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* The server failing (503) longer than the transport's retries around a
 * dataset: the sender resends the stage, nothing is lost or stored twice. */
static void test_outage_retried(void **state) {
    (void)state;
    assert_int_equal(testsrv_fault(srv, "{\"status\": 503, \"count\": 9, "
                                        "\"path_prefix\": \"runs/log-inputs\"}"),
                     0);
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "outage", NULL, &run), MLO_OK);
    for (int64_t s = 0; s < 20; s++)
        assert_int_equal(mlo_log_metric(run, "a", (double)s, s), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "train", "s3://b/t", "o1"), MLO_OK);
    for (int64_t s = 20; s < 40; s++)
        assert_int_equal(mlo_log_metric(run, "a", (double)s, s), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 30000), MLO_OK);
    tu_expect_counts(c, 41, 0);
    assert_int_equal(tu_errors_count(&cap, MLO_ERR_SERVER_INVALID, NULL), 0);

    json_t *in = inputs_of(mlo_run_id(run));
    assert_int_equal(json_array_size(in), 1);
    check_dataset(in, "train", "o1", "s3", "{\"uri\": \"s3://b/t\"}");
    json_decref(in);
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=a",
             mlo_run_id(run));
    json_t *h = get_json(path);
    assert_int_equal(json_array_size(json_object_get(h, "metrics")), 40); /* once each */
    json_decref(h);
    char kinds[256];
    request_kinds(kinds, sizeof kinds);
    size_t ni = 0;
    for (char *k = kinds; *k; k++)
        ni += *k == 'I';
    assert_true(ni >= 10); /* 9 failures, then the one that landed */
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* Path of the `mlo` tool next to this test's build directory. */
static void cli_path(char *out, size_t cap) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    snprintf(out, cap, "%s/../src/mlo", dirname(self));
}

/* No tracking URI: the dataset waits in the local store, `mlo show` lists
 * it, and mlo__sync_store delivers it with the run. */
static void test_local_store_then_sync(void **state) {
    (void)state;
    unsetenv("MLFLOW_TRACKING_URI");
    write_str(tmp_path("train.csv"), "x,y\n1,2\n3,4\n");
    char want[33];
    sha256sum32(tmp_path("train.csv"), want);
    tu_errors cap;
    mlo_client_t *c = open_client(NULL, &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets-local", "offline", NULL, &run), MLO_OK);
    char lid[33];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
    assert_int_equal(mlo_log_metric(run, "acc", 0.5, 0), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "train", tmp_path("train.csv"), NULL), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "dvc-ref", "dvc://repo/data.csv", "v1"), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "acc", 0.9, 1), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    assert_int_equal(tu_stat(c, MLO_STAT_ACCEPTED), 5);
    assert_int_equal(tu_stat(c, MLO_STAT_FAILED), 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(cap.n, 0);

    /* mlo show RUN STORE */
    char cli[PATH_MAX], cmd[3 * PATH_MAX];
    cli_path(cli, sizeof cli);
    snprintf(cmd, sizeof cmd, "'%s' show %s '%s' --ascii", cli, lid, tmp_path("store"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[16384];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(out, "Datasets (2)"));
    char line[PATH_MAX + 128];
    snprintf(line, sizeof line, "digest %s  local %s", want, tmp_path("train.csv"));
    if (!strstr(out, line))
        fail_msg("mlo show lacks \"%s\":\n%s", line, out);
    assert_non_null(strstr(out, "digest v1  dvc dvc://repo/data.csv"));

    /* sync */
    char err[512] = "";
    int st = mlo__sync_store(tmp_path("store"), testsrv_uri(srv), NULL, NULL, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("sync: %s", err);
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    char sid[64];
    snprintf(sid, sizeof sid, "%s", str_at(json_object_get(r, "info"), "run_id"));
    json_t *in = inputs_of(sid);
    assert_int_equal(json_array_size(in), 2);
    char src[PATH_MAX + 32];
    snprintf(src, sizeof src, "{\"uri\": \"%s\"}", tmp_path("train.csv"));
    check_dataset(in, "train", want, "local", src);
    check_dataset(in, "dvc-ref", "v1", "dvc", "{\"uri\": \"dvc://repo/data.csv\"}");
    json_decref(in);
    assert_int_equal(json_array_size(json_object_get(r, "metrics")), 2);
    json_decref(d);
    /* twice: nothing new */
    assert_int_equal(
        mlo__sync_store(tmp_path("store"), testsrv_uri(srv), NULL, NULL, err, sizeof err), MLO_OK);
    in = inputs_of(sid);
    assert_int_equal(json_array_size(in), 2);
    json_decref(in);
}

/* kill -9 right after the call returned, the record still in the ring file
 * (a flush interval of a minute keeps the writer from taking it): the next
 * opener of the store, here mlo sync, recovers and delivers it. */
static void test_kill9_recovers(void **state) {
    (void)state;
    unsetenv("MLFLOW_TRACKING_URI");
    write_str(tmp_path("train.csv"), "a,b\n");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        mlo_options_t *o = mlo_options_new();
        mlo_options_set_store_dir(o, tmp_path("store"));
        mlo_options_set_flush_interval_ms(o, 60000);
        mlo_client_t *c = NULL;
        mlo_run_t *run = NULL;
        if (mlo_client_open(o, &c) != MLO_OK ||
            mlo_start_run(c, "datasets-crash", "killed", NULL, &run) != MLO_OK ||
            mlo_log_metric(run, "m", 1.0, 0) != MLO_OK ||
            mlo_log_dataset(run, "train", tmp_path("train.csv"), NULL) != MLO_OK)
            _exit(3);
        char lid[33];
        snprintf(lid, sizeof lid, "%s", mlo_run_id(run));
        if (write(fds[1], lid, 32) != 32)
            _exit(4);
        raise(SIGKILL);
        _exit(5);
    }
    close(fds[1]);
    char lid[33] = "";
    ssize_t n = read(fds[0], lid, 32);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(n, 32);
    lid[32] = 0;

    char err[512] = "";
    int st = mlo__sync_store(tmp_path("store"), testsrv_uri(srv), NULL, NULL, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("sync: %s", err);
    json_t *d = tu_dump(srv);
    json_t *r = tu_run_by_tag(d, "mlo.local_id", lid);
    assert_int_equal(json_array_size(json_object_get(r, "metrics")), 1);
    json_t *in = json_object_get(r, "inputs");
    assert_int_equal(json_array_size(in), 1);
    char want[33], src[PATH_MAX + 32];
    sha256sum32(tmp_path("train.csv"), want);
    snprintf(src, sizeof src, "{\"uri\": \"%s\"}", tmp_path("train.csv"));
    check_dataset(in, "train", want, "local", src);
    json_decref(d);
}

/* Without a store (memory only) the dataset goes the same way. */
static void test_memory_mode(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 0);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "memory", NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "m", 1.0, 0), MLO_OK);
    assert_int_equal(mlo_log_dataset(run, "mem", "https://h/x.parquet", "m1"), MLO_OK);
    assert_int_equal(mlo_log_metric(run, "m", 2.0, 1), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 3, 0);
    json_t *in = inputs_of(mlo_run_id(run));
    check_dataset(in, "mem", "m1", "http", "{\"url\": \"https://h/x.parquet\"}");
    json_decref(in);
    assert_int_equal(cap.n, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

/* Every argument the header refuses: the status, nothing queued, counted
 * in MLO_STAT_REJECTED and reported. */
static void test_bad_arguments(void **state) {
    (void)state;
    tu_errors cap;
    mlo_client_t *c = open_client(testsrv_uri(srv), &cap, 1);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "datasets", "bad-args", NULL, &run), MLO_OK);
    int refused = 0;
#define REFUSED(st, call)                                                                          \
    do {                                                                                           \
        assert_int_equal((call), (st));                                                            \
        refused++;                                                                                 \
    } while (0)

    /* handles: not counted (no client to count in) */
    assert_int_equal(mlo_log_dataset(NULL, "n", "s3://b", "d"), MLO_ERR_INVALID_ARGUMENT);
    mlo_run_t *zero = calloc(1, 256);
    assert_int_equal(mlo_log_dataset(zero, "n", "s3://b", "d"), MLO_ERR_INVALID_ARGUMENT);
    free(zero);
    assert_int_equal(mlo_log_dataset((mlo_run_t *)c, "n", "s3://b", "d"), MLO_ERR_INVALID_ARGUMENT);

    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, NULL, "s3://b", "d"));
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", NULL, "d"));
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "", "s3://b", "d"));
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", "", "d"));
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", "s3://b", ""));
    /* lengths in characters: 500 x "é" is fine, 501 is not */
    char name[1100] = "";
    for (int i = 0; i < 501; i++)
        strcat(name, "\xc3\xa9");
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, name, "s3://b", "d"));
    name[1000] = 0;
    assert_int_equal(mlo_log_dataset(run, name, "s3://b/long-name", "ok1"), MLO_OK);
    REFUSED(MLO_ERR_INVALID_ARGUMENT,
            mlo_log_dataset(run, "n", "s3://b", "0123456789abcdef0123456789abcdef01234"));
    /* UTF-8 */
    REFUSED(MLO_ERR_INVALID_UTF8, mlo_log_dataset(run, "bad\xff", "s3://b", "d"));
    REFUSED(MLO_ERR_INVALID_UTF8, mlo_log_dataset(run, "n", "s3://b/\xc0\xaf", "d"));
    REFUSED(MLO_ERR_INVALID_UTF8, mlo_log_dataset(run, "n", "s3://b", "\xed\xa0\x80"));
    /* no digest and nothing local to compute it from */
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", "https://h/x.csv", NULL));
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", "dvc://repo/x", NULL));
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", "file://otherhost/x", NULL));
    /* a local source that cannot be read */
    REFUSED(MLO_ERR_IO, mlo_log_dataset(run, "n", tmp_path("missing.csv"), NULL));
    REFUSED(MLO_ERR_IO, mlo_log_dataset(run, "n", "relative/missing.csv", NULL));
    assert_int_equal(mkfifo(tmp_path("fifo"), 0600), 0);
    REFUSED(MLO_ERR_IO, mlo_log_dataset(run, "n", tmp_path("fifo"), NULL));
    REFUSED(MLO_ERR_IO, mlo_log_dataset(run, "n", "/dev/null", NULL));
    mkdir_p(tmp_path("d"));
    assert_int_equal(symlink(tmp_path("nowhere"), tmp_path("d/link")), 0);
    REFUSED(MLO_ERR_IO, mlo_log_dataset(run, "n", tmp_path("d"), NULL));
    if (geteuid() != 0) { /* root reads anything */
        write_str(tmp_path("secret"), "x");
        assert_int_equal(chmod(tmp_path("secret"), 0), 0);
        REFUSED(MLO_ERR_IO, mlo_log_dataset(run, "n", tmp_path("secret"), NULL));
    }
    /* MLflow's storage limits: a source type over 36 characters, a source
     * JSON over 65535 */
    REFUSED(MLO_ERR_INVALID_ARGUMENT,
            mlo_log_dataset(run, "n", "abcdefghijabcdefghijabcdefghijabcdefghij://x", "d"));
    size_t big = 70000;
    char *huge = malloc(big + 1);
    memcpy(huge, "https://h/", 10);
    memset(huge + 10, 'a', big - 10);
    huge[big] = 0;
    REFUSED(MLO_ERR_INVALID_ARGUMENT, mlo_log_dataset(run, "n", huge, "d"));
    /* but one just under the limit lands: {"url": "<65524 characters>"} = 65535 */
    huge[65524] = 0;
    assert_int_equal(mlo_log_dataset(run, "long-source", huge, "ok2"), MLO_OK);
#undef REFUSED

    /* a queue of 64 KiB takes records up to 32 KiB: that source is refused
     * there (not MLO_ERR_INTERNAL), and counted */
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_store_dir(o, tmp_path("store-small")), MLO_OK);
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(srv)), MLO_OK);
    assert_int_equal(mlo_options_set_queue_bytes(o, 65536), MLO_OK);
    mlo_client_t *small = NULL;
    assert_int_equal(mlo_client_open(o, &small), MLO_OK);
    mlo_options_free(o);
    mlo_run_t *srun;
    assert_int_equal(mlo_start_run(small, "datasets", "small-queue", NULL, &srun), MLO_OK);
    assert_int_equal(mlo_log_dataset(srun, "long-source", huge, "ok2"), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(tu_stat(small, MLO_STAT_REJECTED), 1);
    huge[30000] = 0;
    assert_int_equal(mlo_log_dataset(srun, "shorter", huge, "ok3"), MLO_OK);
    assert_int_equal(mlo_client_flush(small, 10000), MLO_OK);
    tu_expect_counts(small, 1, 0);
    assert_int_equal(mlo_client_close(small), MLO_OK);
    free(huge);

    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    tu_expect_counts(c, 2, 0);
    assert_int_equal(tu_stat(c, MLO_STAT_REJECTED), (uint64_t)refused);
    assert_int_equal(cap.n, refused); /* each refusal reported once */
    assert_true(tu_errors_count(&cap, MLO_ERR_IO, "missing.csv") == 2);
    assert_true(tu_errors_count(&cap, MLO_ERR_IO, "d/link") == 1);
    json_t *in = inputs_of(mlo_run_id(run));
    assert_int_equal(json_array_size(in), 2);
    assert_non_null(dataset_named(in, name));
    assert_non_null(dataset_named(in, "long-source"));
    json_decref(in);
    assert_int_equal(mlo_client_close(c), MLO_OK);
}

int main(int argc, char **argv) {
    tu_init("dataset");
    srv = testsrv_start(NULL);
    if (!srv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_explicit_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uri_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_with_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_keeps_other_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_store_then_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    int rc = tu_run_group("test_dataset", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
