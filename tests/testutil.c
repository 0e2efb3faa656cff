/* testutil: see testutil.h.
 *
 * The scratch directory belongs to the process that called tu_init: forked
 * children that exit() run the atexit handler too, so it checks the pid and
 * only the owner removes it.  Removal walks the tree first for rings/<x>.ring
 * symbolic links (a client that died without closing leaves its queue file
 * in /dev/shm, linked from its store) and removes their targets.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "mlo_config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char scratch[PATH_MAX];
static pid_t scratch_owner;
static _Atomic int scratch_n; /* tests open clients from several threads */

/* ---- files ---- */

static int unlink_ring_target(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    size_t l = strlen(p);
    if (flag == FTW_SL && l > 5 && !strcmp(p + l - 5, ".ring") && strstr(p, "/rings/")) {
        char target[PATH_MAX];
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            if (!strncmp(target, "/dev/shm/", 9))
                unlink(target);
        }
    }
    return 0;
}

static int make_writable(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DNR)
        chmod(p, (sb->st_mode & 07777) | 0700);
    return 0;
}

static int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

void tu_rm_rf(const char *path) {
    if (!path || !*path)
        return;
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    /* directories first made writable and searchable (a test may chmod 0) */
    chmod(path, (sb.st_mode & 07777) | 0700);
    nftw(path, make_writable, 16, FTW_PHYS);
    nftw(path, unlink_ring_target, 16, FTW_PHYS);
    nftw(path, remove_one, 16, FTW_PHYS | FTW_DEPTH);
}

static void remove_scratch(void) {
    if (scratch[0] && getpid() == scratch_owner && !getenv("MLO_TEST_KEEP"))
        tu_rm_rf(scratch);
}

void tu_init(const char *name) {
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/mlo-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(scratch)) {
        perror("tu_init: mkdtemp");
        exit(1);
    }
    scratch_owner = getpid();
    atexit(remove_scratch);
    for (size_t i = 0; mlo__config_env[i]; i++)
        unsetenv(mlo__config_env[i]);
    char store[PATH_MAX + 16];
    snprintf(store, sizeof store, "%s/default-store", scratch);
    setenv("MLO_STORE_DIR", store, 1);
}

const char *tu_scratch(void) {
    if (!scratch[0]) {
        fprintf(stderr, "testutil: tu_init was not called\n");
        abort();
    }
    return scratch;
}

char *tu_join(const char *a, const char *b) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

char *tu_new_path(const char *tag) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s-%d", tu_scratch(), tag, atomic_fetch_add(&scratch_n, 1) + 1) >
                0);
    return p;
}

char *tu_tmpdir(const char *tag) {
    char *p = tu_new_path(tag);
    if (mkdir(p, 0700) != 0)
        fail_msg("mkdir %s: %s", p, strerror(errno));
    return p;
}

void tu_write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail_msg("write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    assert_int_equal(close(fd), 0);
}

unsigned char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap + 1);
    assert_non_null(b);
    size_t got;
    while ((got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
            assert_non_null(b);
        }
    }
    fclose(f);
    b[n] = 0;
    if (len)
        *len = n;
    return b;
}

/* ---- running a group ---- */

/* Matches one of the patterns and none of the "!pattern"s. */
static int name_matches(const char *name, const char *patterns) {
    char *list = strdup(patterns), *save = NULL;
    assert_non_null(list);
    int hit = 0, out = 0;
    for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (*p == '!')
            out |= fnmatch(p + 1, name, 0) == 0;
        else
            hit |= fnmatch(p, name, 0) == 0;
    }
    free(list);
    return hit && !out;
}

int tu_run_group(const char *name, const struct CMUnitTest *tests, size_t n, int argc,
                 char **argv) {
    long shard = -1, nshards = 0;
    const char *cases = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--shard")) {
            if (sscanf(argv[i + 1], "%ld/%ld", &shard, &nshards) != 2 || nshards < 1 || shard < 0 ||
                shard >= nshards) {
                fprintf(stderr, "%s: --shard K/N with 0 <= K < N, not %s\n", name, argv[i + 1]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--case")) {
            cases = argv[i + 1];
        }
    }
    struct CMUnitTest *sel = calloc(n ? n : 1, sizeof *sel);
    if (!sel)
        return 1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (nshards && (long)(i % (size_t)nshards) != shard)
            continue;
        if (cases && !name_matches(tests[i].name, cases))
            continue;
        sel[k++] = tests[i];
    }
    int rc;
    if (k == 0) {
        fprintf(stderr, "%s: no case selected\n", name);
        rc = 2;
    } else {
        rc = _cmocka_run_group_tests(name, sel, k, NULL, NULL);
    }
    free(sel);
    return rc;
}

/* ---- the error callback ---- */

void tu_errors_init(tu_errors *e) {
    memset(e, 0, sizeof *e);
    e->verbose = getenv("MLO_TEST_VERBOSE") != NULL;
    pthread_mutex_init(&e->lock, NULL);
}

void tu_errors_cb(void *user, mlo_status st, const char *msg) {
    tu_errors *e = user;
    pthread_mutex_lock(&e->lock);
    if (e->n < TU_ERRORS_MAX) {
        e->statuses[e->n] = st;
        snprintf(e->messages[e->n], sizeof e->messages[0], "%s", msg ? msg : "(null)");
    }
    e->n++;
    if ((int)st >= 0 && (int)st < 64)
        e->by_status[st]++;
    if (e->verbose)
        fprintf(stderr, "    callback: [%s] %s\n", mlo_strerror(st), msg ? msg : "(null)");
    pthread_mutex_unlock(&e->lock);
}

int tu_errors_count2(tu_errors *e, int st, const char *n1, const char *n2) {
    int n = 0;
    pthread_mutex_lock(&e->lock);
    if (st >= 0 && st < 64 && !n1 && !n2) {
        n = e->by_status[st];
    } else {
        for (int i = 0; i < e->n && i < TU_ERRORS_MAX; i++)
            if ((st < 0 || e->statuses[i] == st) && (!n1 || strstr(e->messages[i], n1)) &&
                (!n2 || strstr(e->messages[i], n2)))
                n++;
    }
    pthread_mutex_unlock(&e->lock);
    return n;
}

int tu_errors_count(tu_errors *e, int st, const char *needle) {
    return tu_errors_count2(e, st, needle, NULL);
}

int tu_errors_total(tu_errors *e) {
    pthread_mutex_lock(&e->lock);
    int n = e->n;
    pthread_mutex_unlock(&e->lock);
    return n;
}

int tu_errors_first(tu_errors *e, char *out, size_t cap) {
    pthread_mutex_lock(&e->lock);
    int st = e->n ? e->statuses[0] : -1;
    snprintf(out, cap, "%s", e->n ? e->messages[0] : "");
    pthread_mutex_unlock(&e->lock);
    return st;
}

void tu_errors_print(tu_errors *e, const char *what) {
    pthread_mutex_lock(&e->lock);
    for (int i = 0; i < e->n && i < TU_ERRORS_MAX; i++)
        printf("  [%s] %s: %s\n", what, mlo_strerror(e->statuses[i]), e->messages[i]);
    pthread_mutex_unlock(&e->lock);
}

/* ---- clients ---- */

mlo_client_t *tu_open(const tu_client_cfg *k) {
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    if (k->uri)
        assert_int_equal(mlo_options_set_tracking_uri(o, k->uri), MLO_OK);
    if (k->retries == 0 && k->backoff_s == 0 && k->jitter_s == 0 && k->timeout_s == 0)
        assert_int_equal(mlo_options_set_retries(o, TU_FAST_RETRIES), MLO_OK);
    else if (k->retries >= 0 || k->backoff_s != 0 || k->jitter_s != 0 || k->timeout_s != 0)
        assert_int_equal(mlo_options_set_retries(o, k->retries, k->backoff_s ? k->backoff_s : -1,
                                                 k->jitter_s ? k->jitter_s : -1,
                                                 k->timeout_s ? k->timeout_s : -1),
                         MLO_OK);
    if (k->memory_only) {
        assert_int_equal(mlo_options_set_durable(o, 0), MLO_OK);
    } else {
        char *store = k->store ? NULL : tu_new_path("store");
        assert_int_equal(mlo_options_set_store_dir(o, k->store ? k->store : store), MLO_OK);
        free(store);
    }
    if (k->close_ms)
        assert_int_equal(mlo_options_set_close_timeout_ms(o, k->close_ms), MLO_OK);
    if (k->flush_ms)
        assert_int_equal(mlo_options_set_flush_interval_ms(o, k->flush_ms), MLO_OK);
    if (k->inflight)
        assert_int_equal(mlo_options_set_max_inflight(o, k->inflight), MLO_OK);
    if (k->queue_bytes)
        assert_int_equal(mlo_options_set_queue_bytes(o, k->queue_bytes), MLO_OK);
    if (k->token)
        assert_int_equal(mlo_options_set_token(o, k->token), MLO_OK);
    if (k->errors) {
        tu_errors_init(k->errors);
        assert_int_equal(mlo_options_set_error_callback(o, tu_errors_cb, k->errors), MLO_OK);
    }
    mlo_client_t *c = NULL;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    return c;
}

mlo_client_t *tu_open_uri(const char *uri, tu_errors *errors) {
    tu_client_cfg k = {.uri = uri, .errors = errors};
    return tu_open(&k);
}

uint64_t tu_stat(const mlo_client_t *c, mlo_stat which) {
    uint64_t v = 0;
    assert_int_equal(mlo_client_stat(c, which, &v), MLO_OK);
    return v;
}

void tu_expect_counts(const mlo_client_t *c, uint64_t accepted, uint64_t failed) {
    uint64_t acc = tu_stat(c, MLO_STAT_ACCEPTED), sent = tu_stat(c, MLO_STAT_SENT),
             fl = tu_stat(c, MLO_STAT_FAILED), dropped = tu_stat(c, MLO_STAT_DROPPED);
    if (acc != accepted || fl != failed || sent != accepted - failed || dropped != 0)
        fprintf(stderr,
                "counters: accepted %llu (want %llu), sent %llu, failed %llu (want %llu), "
                "dropped %llu\n",
                (unsigned long long)acc, (unsigned long long)accepted, (unsigned long long)sent,
                (unsigned long long)fl, (unsigned long long)failed, (unsigned long long)dropped);
    assert_int_equal(acc, accepted);
    assert_int_equal(dropped, 0);
    assert_int_equal(fl, failed);
    assert_int_equal(sent, accepted - failed);
}

/* ---- the test server ---- */

static void post_ok(const testsrv *s, const char *path, const char *json) {
    long code = 0;
    char *body = testsrv_post(s, path, json, &code);
    if (!body || code != 200)
        fail_msg("POST %s %s: %ld %s", path, json, code, body ? body : "(no answer)");
    free(body);
}

void tu_reset(const testsrv *s) {
    post_ok(s, "/_test/reset", "{}");
    post_ok(s, "/_test/faults/clear", "{}");
    post_ok(s, "/_test/requests/clear", "{}");
}

void tu_faults_clear(const testsrv *s) {
    post_ok(s, "/_test/faults/clear", "{}");
}

void tu_fault(const testsrv *s, const char *json) {
    post_ok(s, "/_test/faults", json);
}

void tu_config(const testsrv *s, const char *json) {
    post_ok(s, "/_test/config", json);
}

json_t *tu_get_json(const testsrv *s, const char *path) {
    long code = 0;
    char *body = testsrv_get(s, path, &code);
    if (!body)
        fail_msg("GET %s: no answer", path);
    if (code != 200)
        fail_msg("GET %s: %ld %s", path, code, body);
    json_error_t err;
    json_t *j = json_loads(body, JSON_ALLOW_NUL, &err);
    if (!j)
        fail_msg("GET %s: not JSON (%s)", path, err.text);
    free(body);
    return j;
}

json_t *tu_dump(const testsrv *s) {
    return tu_get_json(s, "/_test/dump");
}

json_t *tu_requests(const testsrv *s) {
    json_t *r = tu_get_json(s, "/_test/requests");
    assert_true(json_is_array(r));
    return r;
}

int tu_count_requests(const testsrv *s, const char *method, const char *part, int *with_auth) {
    json_t *log = tu_requests(s);
    int n = 0;
    if (with_auth)
        *with_auth = 0;
    size_t i;
    json_t *q;
    json_array_foreach(log, i, q) {
        const char *m = tu_str(q, "method"), *p = tu_str(q, "path");
        int hit = p && (part[0] == '/' ? !strncmp(p, part, strlen(part)) : strstr(p, part) != NULL);
        if (!hit || (method && (!m || strcmp(m, method))))
            continue;
        n++;
        if (with_auth && json_is_true(json_object_get(q, "has_authorization")))
            (*with_auth)++;
    }
    json_decref(log);
    return n;
}

size_t tu_history_len(const testsrv *s, const char *run_id, const char *key) {
    char path[512];
    snprintf(path, sizeof path, "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=%s",
             run_id, key);
    json_t *h = tu_get_json(s, path);
    size_t n = json_array_size(json_object_get(h, "metrics"));
    json_decref(h);
    return n;
}

/* ---- reading a dump ---- */

const char *tu_str(json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

double tu_num(json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "Infinity"))
            return INFINITY;
        if (!strcmp(s, "-Infinity"))
            return -INFINITY;
        return NAN;
    }
    return json_number_value(v);
}

json_t *tu_find_run(json_t *d, const char *run_id) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        const char *id = tu_str(json_object_get(r, "info"), "run_id");
        if (id && run_id && !strcmp(id, run_id))
            return r;
    }
    fail_msg("run %s not stored", run_id ? run_id : "(null)");
    return NULL;
}

int tu_runs_with_tag(json_t *d, const char *key, const char *value, json_t **last) {
    size_t i;
    json_t *r;
    int n = 0;
    if (last)
        *last = NULL;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        const char *v = tu_str(json_object_get(r, "tags"), key);
        if (v && !strcmp(v, value)) {
            n++;
            if (last)
                *last = r;
        }
    }
    return n;
}

json_t *tu_run_by_tag(json_t *d, const char *key, const char *value) {
    json_t *r = NULL;
    int n = tu_runs_with_tag(d, key, value, &r);
    if (n != 1)
        fail_msg("%d runs with tag %s=%s", n, key, value);
    return r;
}

size_t tu_nruns(json_t *d) {
    return json_array_size(json_object_get(d, "runs"));
}

size_t tu_count_metric(json_t *run, const char *key) {
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        const char *k = tu_str(m, "key");
        n += k && !strcmp(k, key);
    }
    return n;
}

json_t *tu_metric_at(json_t *run, const char *key, int64_t step) {
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        const char *k = tu_str(m, "key");
        if (k && !strcmp(k, key) && json_integer_value(json_object_get(m, "step")) == step)
            return m;
    }
    return NULL;
}

json_t *tu_metric(json_t *run, const char *key, int64_t step) {
    json_t *m = tu_metric_at(run, key, step);
    if (!m)
        fail_msg("metric %s step %lld not stored", key, (long long)step);
    return m;
}

/* ---- time ---- */

double tu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int64_t tu_wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void tu_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}
