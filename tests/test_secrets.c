/*
 * test_secrets.c - secrets (issue 8, item 10): a distinctive bearer token, a
 * basic-auth password (and a password inside the tracking URI) go through a
 * client's whole life - logging, a param and tags, 503s and retries, a
 * dropped connection, a 401, the server gone for 2 s (connections refused),
 * flushes that time out, the error callback - and then every byte the
 * library wrote is searched for them, in every form a secret can take here
 * (as is, base64 of user:password, URL-encoded):
 *  - every file under the store directory (segments, rings, acks, runs.map,
 *    artifacts if any), while the client is open and after it is closed;
 *  - the queue files in /dev/shm the store's rings/ link to, while open;
 *  - everything passed to the error callback;
 *  - everything the process wrote to stderr while a client was open;
 *  - what the server stored (the request bodies end up there).
 * Three lives: a token (from $MLFLOW_TRACKING_TOKEN), basic auth with the
 * token also set, and a password inside the tracking URI
 * (http://user:password@host).
 * Files must be 0600 and directories 0700 (the store's own, and the /dev/shm
 * queue files).  On the wire (a recording proxy in front of the server) the
 * token may appear only as "Authorization: Bearer <token>", the credentials
 * only as "Authorization: Basic <base64>", never the raw password; the
 * server's request log has them only in its authorization field.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlo.h"
#include "tcpproxy.h"
#include "testutil.h"

#define TOKEN "mlo-T0KEN-7f3a9c1e5b24d8"
#define USER "mlo-user-x"
#define PASSWORD "mlo-PA55W0RD-2d8e6b91c0"
#define URI_PASSWORD "mlo-UR1PASS-9c4b17e2a6"

/* ---- the forms to look for ---- */

static char secrets[8][128];
static const char *secret_names[8];
static int nsecrets;

static void b64(const char *in, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static void add_secret(const char *name, const char *s) {
    snprintf(secrets[nsecrets], sizeof secrets[0], "%s", s);
    secret_names[nsecrets++] = name;
}

static char basic_b64[128], uri_basic_b64[128];

static void init_secrets(void) {
    add_secret("token", TOKEN);
    add_secret("password", PASSWORD);
    b64(USER ":" PASSWORD, basic_b64);
    add_secret("base64(user:password)", basic_b64);
    add_secret("URI password", URI_PASSWORD);
    b64(USER ":" URI_PASSWORD, uri_basic_b64);
    add_secret("base64(user:URI password)", uri_basic_b64);
    /* the distinctive middles, in case a secret is cut, reversed or encoded */
    add_secret("token fragment", "7f3a9c1e5b");
    add_secret("password fragment", "2d8e6b91c0");
    add_secret("URI password fragment", "9c4b17e2a6");
}

/* First secret found in buf[0..n), or NULL. */
static const char *find_secret(const char *buf, size_t n) {
    for (int i = 0; i < nsecrets; i++)
        if (memmem(buf, n, secrets[i], strlen(secrets[i])))
            return secret_names[i];
    return NULL;
}

/* ---- the error callback: every message kept ---- */

typedef struct msgs {
    pthread_mutex_t lock;
    char *all;
    size_t len, cap;
    int n;
} msgs;

static void on_error(void *user, mlo_status st, const char *msg) {
    msgs *m = user;
    pthread_mutex_lock(&m->lock);
    size_t l = strlen(msg) + 64;
    if (m->len + l + 1 > m->cap) {
        m->cap = (m->len + l + 1) * 2;
        m->all = realloc(m->all, m->cap);
    }
    if (m->all)
        m->len += (size_t)sprintf(m->all + m->len, "[%s] %s\n", mlo_strerror(st), msg);
    m->n++;
    pthread_mutex_unlock(&m->lock);
}

/* ---- scanning files ---- */

typedef struct scan {
    long files, dirs, bytes, links;
    int bad_mode;
    const char *found; /* a secret name */
    char where[512];
    char bad_mode_path[512];
} scan;

static scan *cur_scan;

static void scan_file(scan *sc, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* removed meanwhile (a ring at close) */
    struct stat st;
    fstat(fd, &st);
    if ((st.st_mode & 07777) != 0600 && !sc->bad_mode) {
        sc->bad_mode = (int)(st.st_mode & 07777);
        snprintf(sc->bad_mode_path, sizeof sc->bad_mode_path, "%s", path);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && n < cap && (r = read(fd, buf + n, cap - n)) > 0)
        n += (size_t)r;
    close(fd);
    sc->files++;
    sc->bytes += (long)n;
    const char *f = buf ? find_secret(buf, n) : NULL;
    if (f && !sc->found) {
        sc->found = f;
        snprintf(sc->where, sizeof sc->where, "%s", path);
    }
    free(buf);
}

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    scan *sc = cur_scan;
    if (type == FTW_D || type == FTW_DP) {
        sc->dirs++;
        if ((st->st_mode & 07777) != 0700 && !sc->bad_mode) {
            sc->bad_mode = (int)(st->st_mode & 07777);
            snprintf(sc->bad_mode_path, sizeof sc->bad_mode_path, "%s", path);
        }
    } else if (type == FTW_SL) {
        /* a ring linked to /dev/shm: the target is a file the library wrote */
        char target[512];
        ssize_t n = readlink(path, target, sizeof target - 1);
        sc->links++;
        if (n > 0) {
            target[n] = '\0';
            scan_file(sc, target);
        }
    } else if (type == FTW_F) {
        scan_file(sc, path);
    }
    return 0;
}

static void scan_dir(scan *sc, const char *dir) {
    cur_scan = sc;
    nftw(dir, walk_cb, 16, FTW_PHYS);
}

/* /dev/shm queue files of this store's processes (named after their
 * procids, which acks/<procid>.lock gives). */
static void scan_shm_of(scan *sc, const char *store) {
    char acks[600];
    snprintf(acks, sizeof acks, "%s/acks", store);
    DIR *d = opendir(acks);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".lock"))
            continue;
        char prefix[300];
        snprintf(prefix, sizeof prefix, "mlo-ring-%.*s-", (int)(l - 5), e->d_name);
        DIR *shm = opendir("/dev/shm");
        if (!shm)
            break;
        struct dirent *f;
        while ((f = readdir(shm)))
            if (!strncmp(f->d_name, prefix, strlen(prefix))) {
                char p[600];
                snprintf(p, sizeof p, "/dev/shm/%s", f->d_name);
                scan_file(sc, p);
            }
        closedir(shm);
    }
    closedir(d);
}

static void assert_clean(scan *sc, const char *what) {
    if (sc->found)
        fprintf(stderr, "%s: the %s is in %s\n", what, sc->found, sc->where);
    if (sc->bad_mode)
        fprintf(stderr, "%s: mode %o on %s\n", what, sc->bad_mode, sc->bad_mode_path);
    assert_null(sc->found);
    assert_int_equal(sc->bad_mode, 0);
}

/* ---- stderr captured while a client lives ---- */

static int saved_stderr = -1;
static char err_path[] = "/tmp/mlo-secrets-stderr-XXXXXX";

static void capture_stderr(void) {
    int fd = mkstemp(err_path);
    assert_true(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static void restore_stderr(scan *sc) {
    if (saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    scan tmp;
    memset(&tmp, 0, sizeof tmp);
    chmod(err_path, 0600);
    scan_file(&tmp, err_path);
    if (tmp.found && !sc->found) {
        sc->found = tmp.found;
        snprintf(sc->where, sizeof sc->where, "the process's stderr");
    }
    /* show what was written, for the record */
    FILE *f = fopen(err_path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "  (stderr) %s", line);
    if (f)
        fclose(f);
    unlink(err_path);
    strcpy(err_path, "/tmp/mlo-secrets-stderr-XXXXXX");
}

/* ---- one life of a client ---- */

static testsrv *srv;

static void post_config(const char *json) {
    tu_config(srv, json);
}

typedef enum { AUTH_TOKEN, AUTH_BASIC_AND_TOKEN, AUTH_URI } auth_mode;

typedef struct life {
    const char *name;
    auth_mode mode;
    char require[256]; /* the Authorization the server wants */
} life;

static void one_life(const life *L, tcpproxy *px, const char *store, msgs *m, scan *sc) {
    char uri[256];
    if (L->mode == AUTH_URI)
        snprintf(uri, sizeof uri, "http://" USER ":" URI_PASSWORD "@127.0.0.1:%d",
                 tcpproxy_port(px));
    else
        snprintf(uri, sizeof uri, "%s", tcpproxy_uri(px));
    char cfg[400];
    snprintf(cfg, sizeof cfg, "{\"require_auth\": \"%s\"}", L->require);
    post_config(cfg);

    capture_stderr();
    if (L->mode != AUTH_URI) /* the token from the environment, as MLflow's clients take it */
        setenv("MLFLOW_TRACKING_TOKEN", TOKEN, 1);
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_tracking_uri(o, uri), MLO_OK);
    assert_int_equal(mlo_options_set_store_dir(o, store), MLO_OK);
    assert_int_equal(mlo_options_set_retries(o, 2, 0.05, 0.01, 2), MLO_OK);
    assert_int_equal(mlo_options_set_close_timeout_ms(o, 3000), MLO_OK);
    assert_int_equal(mlo_options_set_error_callback(o, on_error, m), MLO_OK);
    if (L->mode == AUTH_BASIC_AND_TOKEN)
        assert_int_equal(mlo_options_set_basic_auth(o, USER, PASSWORD), MLO_OK);
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    unsetenv("MLFLOW_TRACKING_TOKEN");

    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "secrets", L->name, NULL, &run), MLO_OK);
    assert_int_equal(mlo_log_param(run, "lr", "0.1"), MLO_OK);
    assert_int_equal(mlo_set_tag(run, "team", "vision"), MLO_OK);
    for (int i = 0; i < 300; i++)
        assert_int_equal(mlo_log_metric(run, "loss", 1.0 / (i + 1), i), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 20000), MLO_OK);

    /* 503s (retried, reported), a connection dropped, a 401 */
    assert_int_equal(testsrv_fault(srv, "{\"status\": 503, \"count\": 4}"), 0);
    for (int i = 300; i < 400; i++)
        mlo_log_metric(run, "loss", 1.0 / (i + 1), i);
    assert_int_equal(mlo_client_flush(c, 20000), MLO_OK);
    assert_int_equal(testsrv_fault(srv, "{\"drop\": true, \"count\": 2}"), 0);
    for (int i = 400; i < 500; i++)
        mlo_log_metric(run, "loss", 1.0 / (i + 1), i);
    assert_int_equal(mlo_client_flush(c, 20000), MLO_OK);
    post_config("{\"require_auth\": \"Bearer somebody-else\"}");
    for (int i = 500; i < 600; i++)
        mlo_log_metric(run, "loss", 1.0 / (i + 1), i);
    assert_int_equal(mlo_client_flush(c, 1000), MLO_ERR_TIMEOUT); /* 401: kept, retried */
    post_config(cfg);
    /* the server gone for 2 s: connections refused */
    tcpproxy_down(px);
    for (int i = 600; i < 700; i++)
        mlo_log_metric(run, "loss", 1.0 / (i + 1), i);
    assert_int_equal(mlo_client_flush(c, 2000), MLO_ERR_TIMEOUT);
    assert_int_equal(tcpproxy_up(px), 0);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(c, 120000), MLO_OK);

    /* everything on disk and in /dev/shm while the client is open */
    scan_dir(sc, store);
    scan_shm_of(sc, store);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    scan_dir(sc, store);
    restore_stderr(sc);

    /* every point landed (so the faults really were lived through) */
    long code;
    char *body = testsrv_get(srv, "/_test/dump", &code);
    assert_non_null(body);
    assert_null(find_secret(body, strlen(body))); /* nothing stored holds a secret */
    free(body);
    json_t *d = tu_dump(srv);
    char run_id[64];
    snprintf(
        run_id, sizeof run_id, "%s",
        tu_str(json_object_get(tu_run_by_tag(d, "mlflow.runName", L->name), "info"), "run_id"));
    json_decref(d);
    post_config("{\"require_auth\": null}");
    assert_int_equal(tu_history_len(srv, run_id, "loss"), 700);
}

/* The token on the wire only in Authorization headers; the raw password never. */
static void check_wire(tcpproxy *px, const char *allowed_prefix, const char *value) {
    size_t n;
    char *w = tcpproxy_recorded(px, &n);
    assert_non_null(w);
    assert_true(n > 0);
    long in_header = 0;
    for (int s = 0; s < nsecrets; s++) {
        const char *sec = secrets[s];
        size_t sl = strlen(sec);
        for (char *p = w; (p = memmem(p, n - (size_t)(p - w), sec, sl)); p += sl) {
            /* the line it is on */
            char *ls = p;
            while (ls > w && ls[-1] != '\n')
                ls--;
            size_t pl = strlen(allowed_prefix);
            size_t vl = strlen(value);
            int ok = !strncasecmp(ls, allowed_prefix, pl) && ls + pl <= p &&
                     p + sl <= ls + pl + vl && !strncmp(ls + pl, value, vl) &&
                     (ls[pl + vl] == '\r' || ls[pl + vl] == '\n');
            if (!ok) {
                fprintf(stderr, "wire: the %s outside '%s...': %.80s\n", secret_names[s],
                        allowed_prefix, ls);
                fail();
            }
            in_header++;
        }
    }
    assert_true(in_header > 0); /* it was sent, where it belongs */
    long carried = 0;
    for (char *p = w; (p = memmem(p, n - (size_t)(p - w), value, strlen(value))); p++)
        carried++;
    printf("SECRETS wire: %zu bytes sent by the client; the credential in %ld requests, each "
           "time in the Authorization header, nowhere else\n",
           n, carried);
    free(w);
}

static void check_request_log(const char *expect_auth) {
    long code;
    char *body = testsrv_get(srv, "/_test/requests", &code);
    assert_non_null(body);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    size_t i;
    json_t *e;
    long with_auth = 0;
    json_array_foreach(j, i, e) {
        const char *k;
        json_t *v;
        json_object_foreach(e, k, v) {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            const char *f = s ? find_secret(s, strlen(s)) : NULL;
            if (f && strcmp(k, "authorization")) {
                fprintf(stderr, "request log: the %s in field %s\n", f, k);
                fail();
            }
            free(s);
        }
        const char *a = json_string_value(json_object_get(e, "authorization"));
        if (a && !strcmp(a, expect_auth))
            with_auth++;
    }
    assert_true(with_auth > 0);
    json_decref(j);
}

static int setup(void **state) {
    (void)state;
    tu_reset(srv);
    post_config("{\"require_auth\": null}");
    return 0;
}

/* After a failure inside a life, stderr is still captured: give it back
 * (and show what it got, the failure message among it). */
static int teardown(void **state) {
    (void)state;
    scan sc;
    memset(&sc, 0, sizeof sc);
    restore_stderr(&sc);
    return 0;
}

/* A store path the library creates (so its own modes are what is checked). */
static char *new_store(void) {
    return tu_new_path("store");
}

static void rm_store(char *store) {
    tu_rm_rf(store);
    free(store);
}

static void run_life(auth_mode mode, const char *name) {
    tcpproxy *px = tcpproxy_start(testsrv_port(srv), 0);
    assert_non_null(px);
    tcpproxy_record(px, 1);
    char *store = new_store();
    msgs m;
    memset(&m, 0, sizeof m);
    pthread_mutex_init(&m.lock, NULL);
    scan sc;
    memset(&sc, 0, sizeof sc);
    life L = {.name = name, .mode = mode};
    char value[200];
    if (mode == AUTH_TOKEN)
        snprintf(value, sizeof value, "%s", TOKEN);
    else
        snprintf(value, sizeof value, "%s", mode == AUTH_URI ? uri_basic_b64 : basic_b64);
    snprintf(L.require, sizeof L.require, "%s %s", mode == AUTH_TOKEN ? "Bearer" : "Basic", value);

    one_life(&L, px, store, &m, &sc);

    printf("SECRETS %s: %ld files (%ld bytes; %ld of them queue files in /dev/shm, read while "
           "the client was open) and %ld directories scanned, %d callback messages (%zu bytes): "
           "%s\n",
           name, sc.files, sc.bytes, sc.links, sc.dirs, m.n, m.len, sc.found ? "FOUND" : "clean");
    assert_true(sc.files > 0 && sc.links > 0);
    assert_clean(&sc, name);
    assert_true(m.n > 0); /* the faults were reported ... */
    const char *f = m.all ? find_secret(m.all, m.len) : NULL;
    if (f)
        fprintf(stderr, "the %s is in an error message:\n%s", f, m.all);
    assert_null(f); /* ... without a secret */
    check_wire(px, mode == AUTH_TOKEN ? "Authorization: Bearer " : "Authorization: Basic ", value);
    check_request_log(L.require);
    free(m.all);
    tcpproxy_stop(px);
    rm_store(store);
}

static void test_token(void **state) {
    (void)state;
    run_life(AUTH_TOKEN, "secrets-token");
}

static void test_basic_auth_and_token(void **state) {
    (void)state;
    run_life(AUTH_BASIC_AND_TOKEN, "secrets-basic");
}

static void test_password_in_uri(void **state) {
    (void)state;
    /* found by this test: the store wrote the URI with its password into
     * acks and runs.map (fixed in c114649: written without user:password@) */
    run_life(AUTH_URI, "secrets-uri");
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    init_secrets();
    tu_init("secrets");
    srv = testsrv_start("");
    if (!srv)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth_and_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_in_uri, setup, teardown),
    };
    int rc = tu_run_group("test_secrets", tests, sizeof tests / sizeof tests[0], argc, argv);
    testsrv_stop(srv);
    return rc;
}
