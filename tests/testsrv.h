/* testsrv: start, stop and query tests/mlflow_test_server.py from C tests.
 *
 * Design: the server runs as a child process (fork + execv of MLO_TEST_PYTHON, default
 * /usr/bin/python3, on the script MLO_TEST_SERVER_PY, which meson passes with
 * -DMLO_TEST_SERVER_PY="..."), on a free port ("--port 0"); its stdout is a pipe on which we
 * wait (at most 10 s) for the line "PORT <n>".  The child gets PR_SET_PDEATHSIG(SIGTERM), so
 * it dies with the test (strictly: with the thread that called testsrv_start).  The HTTP
 * helpers use a fresh plain libcurl handle per call (60 s timeout, no proxy, TLS peer checks
 * off), independent of the library under test.  Not thread-safe per server object: use one
 * testsrv from one thread, or serialize.
 *
 * Control endpoints worth knowing (see the server's docstring for all):
 *   GET /_test/dump, GET /_test/requests, POST /_test/reset, POST /_test/faults {...},
 *   POST /_test/faults/clear, POST /_test/config {...}, POST /_test/shutdown.
 * The server's artifact store: --artifact-root DIR (default a temporary directory),
 * --no-serve-artifacts, --no-multipart; /_test/dump lists stored artifacts with sha256.
 */
#ifndef MLO_TESTSRV_H
#define MLO_TESTSRV_H

#include <stddef.h>

typedef struct testsrv testsrv;

/* Starts the server with "--port 0" plus extra_args (may be NULL), split on spaces (so no
 * spaces inside one argument).  Returns NULL on failure (with a message on stderr). */
testsrv *testsrv_start(const char *extra_args);

/* "http://127.0.0.1:<port>" ("https://" when --tls-cert was given; the --host if one was). */
const char *testsrv_uri(const testsrv *s);
int testsrv_port(const testsrv *s);
int testsrv_pid(const testsrv *s); /* the child's pid, e.g. to SIGKILL it in a crash test */

/* SIGTERM, waitpid, SIGKILL after 5 s; frees s.  NULL is fine. */
void testsrv_stop(testsrv *s);

/* Plain libcurl requests, 60 s timeout.  path is e.g. "/_test/dump" or
 * "/api/2.0/mlflow/runs/get?run_id=...".  Return the malloc'd NUL-terminated response body
 * (caller frees; "" for an empty body) or NULL when no HTTP response came back; *code (if
 * non-NULL) gets the HTTP status, 0 without a response.  testsrv_post sends json_body with
 * Content-Type: application/json. */
char *testsrv_get(const testsrv *s, const char *path, long *code);
char *testsrv_post(const testsrv *s, const char *path, const char *json_body, long *code);

/* POST /_test/faults with fault_json (one rule object or an array of them); 0 on success. */
int testsrv_fault(const testsrv *s, const char *fault_json);

/* POST /_test/config with config_json (e.g. "{\"artifacts_down\": true}"); 0 on success. */
int testsrv_config(const testsrv *s, const char *config_json);

/* Any request, e.g. PUT an artifact to seed a download test or DELETE a registry alias.
 * method: "GET", "PUT", "DELETE", "HEAD", ... (NULL: GET, or POST with a body).  body: NULL
 * for none, else body_len bytes (binary is fine; a PUT body of 0 bytes: body "" and
 * body_len 0), sent with Content-Type: content_type (NULL: no Content-Type).  Returns the
 * response body as testsrv_get does; *resp_len (if non-NULL) gets its length, for binary
 * bodies.  Example: testsrv_request(s, "PUT",
 * "/api/2.0/mlflow-artifacts/artifacts/0/<run>/artifacts/f.bin", buf, n, NULL, &code, NULL). */
char *testsrv_request(const testsrv *s, const char *method, const char *path, const void *body,
                      size_t body_len, const char *content_type, long *code, size_t *resp_len);

#endif
