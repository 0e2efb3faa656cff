/*
 * test_validate.c - MLflow's key and value rules as mlo applies them at the
 * log call (the same examples ../shared/MLFLOW.md records from a real server),
 * and the option/environment resolution.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mlo.h"
#include "mlo_api.h"
#include "mlo_config.h"
#include "mlo_validate.h"

static int key_status(const char *k) {
    size_t len;
    return mlo__validate_key(k, &len);
}

static void test_keys_accepted(void **state) {
    (void)state;
    const char *ok[] = {"loss",    "a..b",       "train/loss", "a-b_c.d e:f", "x/y/z",
                        "Ünïcödé", "日本語キー", "0",          "a.b.",        "a/b.c/d"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        size_t len = 0;
        assert_int_equal(mlo__validate_key(ok[i], &len), MLO_OK);
        assert_int_equal(len, strlen(ok[i]));
    }
}

static void test_keys_refused(void **state) {
    (void)state;
    const char *bad[] = {"",
                         "../x",
                         "a//b",
                         "/abs",
                         "a/",
                         ".",
                         "a/./b",
                         "bad key!",
                         "a,b",
                         "a=b",
                         "a\tb",
                         "..",
                         "..x",
                         "a/..",
                         "a/../b",
                         "x\n",
                         "emoji\xF0\x9F\x98\x80",
                         "a\\b",
                         "a;b",
                         "a*b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(key_status(bad[i]), MLO_ERR_INVALID_KEY);
}

static void test_key_length(void **state) {
    (void)state;
    char k[300];
    memset(k, 'a', 250);
    k[250] = 0;
    assert_int_equal(key_status(k), MLO_OK);
    k[250] = 'a';
    k[251] = 0;
    assert_int_equal(key_status(k), MLO_ERR_INVALID_KEY);
    /* 250 two-byte characters are 250 characters, not 500 */
    char u[600];
    for (int i = 0; i < 250; i++) {
        u[2 * i] = (char)0xC3;
        u[2 * i + 1] = (char)0xA9; /* é */
    }
    u[500] = 0;
    assert_int_equal(key_status(u), MLO_OK);
    u[500] = 'x';
    u[501] = 0;
    assert_int_equal(key_status(u), MLO_ERR_INVALID_KEY);
}

static void test_key_utf8(void **state) {
    (void)state;
    assert_int_equal(key_status("a\xC3"), MLO_ERR_INVALID_UTF8);            /* truncated */
    assert_int_equal(key_status("a\xC0\xAF"), MLO_ERR_INVALID_UTF8);        /* overlong */
    assert_int_equal(key_status("\xED\xA0\x80"), MLO_ERR_INVALID_UTF8);     /* surrogate */
    assert_int_equal(key_status("\xF4\x90\x80\x80"), MLO_ERR_INVALID_UTF8); /* > U+10FFFF */
    assert_int_equal(key_status("\xFF"), MLO_ERR_INVALID_UTF8);
}

static void test_value_truncation(void **state) {
    (void)state;
    size_t len;
    int tr;
    char *v = malloc(7000);
    memset(v, 'x', 6999);
    v[6999] = 0;
    assert_int_equal(mlo__validate_value(v, 6000, &len, &tr), MLO_OK);
    assert_int_equal(tr, 1);
    assert_int_equal(len, 6000);
    v[6000] = 0;
    assert_int_equal(mlo__validate_value(v, 6000, &len, &tr), MLO_OK);
    assert_int_equal(tr, 0);
    assert_int_equal(len, 6000);
    /* truncation counts characters and cuts on a character boundary */
    for (int i = 0; i < 3000; i++) {
        v[2 * i] = (char)0xC3;
        v[2 * i + 1] = (char)0xA9;
    }
    v[6000] = 0;
    assert_int_equal(mlo__validate_value(v, 2999, &len, &tr), MLO_OK);
    assert_int_equal(tr, 1);
    assert_int_equal(len, 2 * 2999);
    assert_int_equal(mlo__validate_value("ok\xC3", 10, &len, &tr), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo__validate_value("", 10, &len, &tr), MLO_OK);
    assert_int_equal(len, 0);
    free(v);
}

static void clear_env(void) {
    for (size_t i = 0; mlo__config_env[i]; i++)
        unsetenv(mlo__config_env[i]);
}

static void test_config_env(void **state) {
    (void)state;
    clear_env();
    mlo_config c;
    char err[256];
    /* no URI: a local store (./mlo-store unless MLO_STORE_DIR says otherwise) */
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_OK);
    assert_null(c.tracking_uri);
    assert_int_equal(c.durable, 1);
    assert_string_equal(c.store_dir, "./mlo-store");
    mlo__config_free(&c);
    setenv("MLO_STORE_DIR", "/tmp/somewhere", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_OK);
    assert_string_equal(c.store_dir, "/tmp/somewhere");
    mlo__config_free(&c);
    unsetenv("MLO_STORE_DIR");
    /* no URI and the store turned off: a clear configuration error */
    mlo_options_t *nodur = mlo_options_new();
    assert_int_equal(mlo_options_set_durable(nodur, 0), MLO_OK);
    assert_int_equal(mlo__config_resolve(nodur, &c, err, sizeof err), MLO_ERR_CONFIG);
    assert_non_null(strstr(err, "MLFLOW_TRACKING_URI"));
    mlo_options_free(nodur);

    setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000///", 1);
    setenv("MLFLOW_EXPERIMENT_NAME", "exp", 1);
    setenv("MLFLOW_EXPERIMENT_ID", "42", 1);
    setenv("MLFLOW_RUN_ID", "abc", 1);
    setenv("MLFLOW_TRACKING_TOKEN", "tok", 1);
    setenv("MLFLOW_TRACKING_INSECURE_TLS", "true", 1);
    setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem", 1);
    setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", "/client.pem", 1);
    setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "50", 1);
    setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.5", 1);
    setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0.25", 1);
    setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7", 1);
    setenv("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", "false", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_OK);
    assert_string_equal(c.tracking_uri, "http://127.0.0.1:5000");
    assert_string_equal(c.experiment_name, "exp");
    assert_string_equal(c.experiment_id, "42");
    assert_string_equal(c.run_id_env, "abc");
    assert_string_equal(c.token, "tok");
    assert_null(c.user);
    assert_int_equal(c.insecure_tls, 1);
    assert_string_equal(c.ca_path, "/ca.pem");
    assert_string_equal(c.client_cert_path, "/client.pem");
    assert_int_equal(c.max_retries, 10); /* capped like MLflow */
    assert_true(c.backoff_factor_s == 0.5);
    assert_true(c.jitter_s == 0.25);
    assert_true(c.timeout_s == 7);
    assert_int_equal(c.respect_retry_after, 0);
    assert_int_equal(c.queue_bytes, 8u << 20);
    assert_int_equal(c.full_policy, MLO_FULL_WAIT);
    mlo__config_free(&c);

    /* basic auth wins over the token when both user and password are set */
    setenv("MLFLOW_TRACKING_USERNAME", "u", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_OK);
    assert_null(c.user); /* password missing: not used */
    assert_string_equal(c.token, "tok");
    mlo__config_free(&c);
    setenv("MLFLOW_TRACKING_PASSWORD", "p", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_OK);
    assert_string_equal(c.user, "u");
    assert_string_equal(c.password, "p");
    assert_null(c.token);
    mlo__config_free(&c);

    /* options win over the environment */
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_tracking_uri(o, "https://example.test/prefix/"), MLO_OK);
    assert_int_equal(mlo_options_set_insecure_tls(o, 0), MLO_OK);
    assert_int_equal(mlo_options_set_retries(o, 1, 0.01, 0, 3), MLO_OK);
    assert_int_equal(mlo_options_set_queue_bytes(o, 100000), MLO_OK);
    assert_int_equal(mlo__config_resolve(o, &c, err, sizeof err), MLO_OK);
    assert_string_equal(c.tracking_uri, "https://example.test/prefix");
    assert_int_equal(c.insecure_tls, 0);
    assert_int_equal(c.max_retries, 1);
    assert_true(c.timeout_s == 3);
    assert_int_equal(c.queue_bytes, 128u << 10);
    mlo__config_free(&c);
    mlo_options_free(o);

    /* malformed environment values are configuration errors, named */
    setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "lots", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_ERR_CONFIG);
    assert_non_null(strstr(err, "MLFLOW_HTTP_REQUEST_MAX_RETRIES"));
    setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3", 1);
    setenv("MLFLOW_TRACKING_INSECURE_TLS", "maybe", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_ERR_CONFIG);
    setenv("MLFLOW_TRACKING_INSECURE_TLS", "false", 1);
    setenv("MLFLOW_TRACKING_URI", "ftp://x", 1);
    assert_int_equal(mlo__config_resolve(NULL, &c, err, sizeof err), MLO_ERR_CONFIG);
    clear_env();
}

static void test_options_args(void **state) {
    (void)state;
    assert_int_equal(mlo_options_set_tracking_uri(NULL, "http://x"), MLO_ERR_INVALID_ARGUMENT);
    mlo_options_t *o = mlo_options_new();
    assert_non_null(o);
    assert_int_equal(mlo_options_set_tracking_uri(o, "file:///tmp"), MLO_ERR_CONFIG);
    assert_int_equal(mlo_options_set_tracking_uri(o, "http://"), MLO_ERR_CONFIG);
    assert_int_equal(mlo_options_set_tracking_uri(o, "http:///"), MLO_ERR_CONFIG);
    assert_int_equal(mlo_options_set_tracking_uri(o, "https://?x"), MLO_ERR_CONFIG);
    /* a refused credential keeps the one set before; line breaks are refused */
    assert_int_equal(mlo_options_set_token(o, "good"), MLO_OK);
    assert_int_equal(mlo_options_set_token(o, "bad\xff"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_options_set_token(o, "a\r\nX-Forged: 1"), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_tracking_uri(o, "http://h"), MLO_OK);
    mlo_config cfg;
    char err[256];
    clear_env();
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    assert_string_equal(cfg.token, "good");
    mlo__config_free(&cfg);
    assert_int_equal(mlo_options_set_basic_auth(o, "u", "p"), MLO_OK);
    assert_int_equal(mlo_options_set_basic_auth(o, "u2", "p\xff"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_options_set_basic_auth(o, "a:b", "p"), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    assert_string_equal(cfg.user, "u");
    assert_string_equal(cfg.password, "p");
    mlo__config_free(&cfg);
    setenv("MLFLOW_TRACKING_TOKEN", "x\ny", 1);
    mlo_options_t *o2 = mlo_options_new();
    assert_int_equal(mlo__config_resolve(o2, &cfg, err, sizeof err), MLO_ERR_CONFIG);
    assert_non_null(strstr(err, "line breaks"));
    assert_null(strstr(err, "x\ny"));
    mlo_options_free(o2);
    unsetenv("MLFLOW_TRACKING_TOKEN");
    assert_int_equal(mlo_options_set_tracking_uri(o, NULL), MLO_OK);
    assert_int_equal(mlo_options_set_tracking_uri(o, "http://h\xFF"), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo_options_set_experiment_name(o, ""), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_basic_auth(o, "u", NULL), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_retries(o, 11, 1, 1, 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_retries(o, 1, 1, 1, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_queue_bytes(o, 10), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_queue_bytes(o, (size_t)1 << 31), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_full_policy(o, (mlo_full_policy)7, 0),
                     MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_error_callback(o, NULL, NULL), MLO_OK);
    mlo_options_free(o);
    mlo_options_free(NULL);
    assert_int_equal(mlo_client_open(NULL, NULL), MLO_ERR_INVALID_ARGUMENT);
    clear_env();
    mlo_client_t *c = (mlo_client_t *)1;
    o = mlo_options_new();
    assert_int_equal(mlo_options_set_durable(o, 0), MLO_OK); /* no URI, no store */
    assert_int_equal(mlo_client_open(o, &c), MLO_ERR_CONFIG);
    assert_null(c);
    assert_int_equal(mlo_options_set_store_dir(o, ""), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_fsync(o, (mlo_fsync_policy)9, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_fsync(o, MLO_FSYNC_INTERVAL, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_fsync(o, MLO_FSYNC_ALWAYS, 0), MLO_OK);
    mlo_options_free(o);
}

static void test_strerror_and_version(void **state) {
    (void)state;
    for (int s = 0; s <= MLO_WARN_RETRY; s++) {
        assert_non_null(mlo_strerror(s));
        assert_string_not_equal(mlo_strerror(s), "unknown status");
    }
    assert_string_equal(mlo_strerror(-1), "unknown status");
    assert_string_equal(mlo_strerror(9999), "unknown status");
    assert_int_equal(mlo_version_number(), MLO_VERSION_NUMBER);
    assert_string_equal(mlo_version(), MLO_EXPECTED_VERSION); /* meson's project version */
}

/* Artifact paths: relative, normalized, no backslash; and the proxied
 * artifact root of a run's artifact URI. */
static void test_artifact_paths(void **state) {
    (void)state;
    const char *ok[] = {"a", "model/weights.bin", "a..b/c", ".hidden", "x/.y", "sp ace/ü", "a:b"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (mlo__validate_artifact_path(ok[i], 0) != MLO_OK)
            fail_msg("refused %s", ok[i]);
    const char *bad[] = {"",       "/abs", "a//b", "a/",  "..",   "../x",
                         "a/../b", ".",    "./a",  "a/.", "a\\b", "\\x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (mlo__validate_artifact_path(bad[i], 0) != MLO_ERR_INVALID_PATH)
            fail_msg("accepted %s", bad[i]);
    assert_int_equal(mlo__validate_artifact_path("\xff\xfe", 0), MLO_ERR_INVALID_UTF8);
    assert_int_equal(mlo__validate_artifact_path(NULL, 1), MLO_OK);
    assert_int_equal(mlo__validate_artifact_path("", 1), MLO_OK);
    assert_int_equal(mlo__validate_artifact_path(NULL, 0), MLO_ERR_INVALID_PATH);
    char *longp = malloc(5000);
    memset(longp, 'a', 4999);
    longp[4999] = 0;
    assert_int_equal(mlo__validate_artifact_path(longp, 0), MLO_ERR_INVALID_PATH);
    free(longp);

    char *root = NULL;
    assert_int_equal(mlo__api_artifact_root("mlflow-artifacts:/0/abc/artifacts", &root), MLO_OK);
    assert_string_equal(root, "0/abc/artifacts");
    free(root);
    assert_int_equal(mlo__api_artifact_root("mlflow-artifacts://h:5000/7/r/artifacts/", &root),
                     MLO_OK);
    assert_string_equal(root, "7/r/artifacts");
    free(root);
    assert_int_equal(mlo__api_artifact_root("mlflow-artifacts:", &root), MLO_OK);
    assert_string_equal(root, "");
    free(root);
    assert_int_equal(mlo__api_artifact_root("s3://bucket/0/r/artifacts", &root),
                     MLO_ERR_ARTIFACTS_NOT_PROXIED);
    assert_null(root);
    assert_int_equal(mlo__api_artifact_root("file:///tmp/x", &root), MLO_ERR_ARTIFACTS_NOT_PROXIED);
    assert_int_equal(mlo__api_artifact_root(NULL, &root), MLO_ERR_ARTIFACTS_NOT_PROXIED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_artifact_paths),
        cmocka_unit_test(test_keys_accepted),
        cmocka_unit_test(test_keys_refused),
        cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_key_utf8),
        cmocka_unit_test(test_value_truncation),
        cmocka_unit_test(test_config_env),
        cmocka_unit_test(test_options_args),
        cmocka_unit_test(test_strerror_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
