/* testsrv: child-process wrapper around tests/mlflow_test_server.py (see testsrv.h).
 *
 * Design: everything the child needs (argv) is built before fork(); between fork() and
 * execv() the child only calls async-signal-safe functions (prctl, getppid, sigprocmask,
 * dup2, execv, _exit), so starting a server from a multi-threaded test is safe.  The stdout
 * pipe is O_CLOEXEC so that other children do not inherit it; we keep our end open until
 * testsrv_stop so the server never writes into a closed pipe.  libcurl is initialised with
 * curl_global_init per server (reference counted by libcurl) and cleaned up in
 * testsrv_stop.
 */
#define _GNU_SOURCE
#include "testsrv.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MLO_TEST_SERVER_PY
#error "define MLO_TEST_SERVER_PY (path of tests/mlflow_test_server.py)"
#endif
#ifndef MLO_TEST_PYTHON
#define MLO_TEST_PYTHON "/usr/bin/python3"
#endif

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define HTTP_TIMEOUT_MS                                                                            \
    60000L /* a dump of 100,000 points on a loaded machine under TSan took over 10 s */

struct testsrv {
    pid_t pid;
    int port;
    int out_fd;
    int tls;
    char uri[320];
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Reaps the child: SIGTERM, up to 5 s, then SIGKILL. */
static void kill_child(pid_t pid) {
    int status;
    if (pid <= 0)
        return;
    if (waitpid(pid, &status, WNOHANG) == pid)
        return;
    kill(pid, SIGTERM);
    long long deadline = now_ms() + STOP_TIMEOUT_MS;
    while (now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r == -1 && errno != EINTR))
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
    }
}

/* Looks for "PORT <n>\n" in buf; returns n, or 0 if not (yet) there. */
static int find_port(const char *buf) {
    const char *p = strstr(buf, "PORT ");
    if (!p)
        return 0;
    p += 5;
    char *end;
    long n = strtol(p, &end, 10);
    if (end == p || *end != '\n' || n <= 0 || n > 65535)
        return 0;
    return (int)n;
}

testsrv *testsrv_start(const char *extra_args) {
    testsrv *s = calloc(1, sizeof *s);
    char *args = strdup(extra_args ? extra_args : "");
    size_t max_argv = 8 + strlen(args) / 2 + 1;
    char **argv = calloc(max_argv, sizeof *argv);
    if (!s || !args || !argv) {
        free(s);
        free(args);
        free(argv);
        return NULL;
    }
    s->out_fd = -1;

    size_t argc = 0;
    argv[argc++] = (char *)MLO_TEST_PYTHON;
    argv[argc++] = (char *)MLO_TEST_SERVER_PY;
    argv[argc++] = (char *)"--port";
    argv[argc++] = (char *)"0";
    const char *host = "127.0.0.1";
    char *save = NULL;
    for (char *tok = strtok_r(args, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if (argc + 1 < max_argv)
            argv[argc++] = tok;
        if (strcmp(tok, "--tls-cert") == 0 || strncmp(tok, "--tls-cert=", 11) == 0)
            s->tls = 1;
    }
    argv[argc] = NULL;
    for (size_t i = 4; i + 1 < argc; i++)
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
    if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("testsrv: pipe2");
        goto fail;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("testsrv: fork");
        close(fds[0]);
        close(fds[1]);
        goto fail;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    s->pid = pid;
    s->out_fd = fds[0];

    char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    long long deadline = now_ms() + START_TIMEOUT_MS;
    while (!(s->port = find_port(buf))) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "testsrv: no PORT line from the server within 10 s\n");
            goto fail_child;
        }
        struct pollfd pfd = {s->out_fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        if (len + 1 >= sizeof buf) { /* junk before PORT: keep the tail */
            memmove(buf, buf + len / 2, len - len / 2 + 1);
            len -= len / 2;
        }
        ssize_t n = read(s->out_fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "testsrv: the server exited before printing PORT (%s %s)\n",
                    MLO_TEST_PYTHON, MLO_TEST_SERVER_PY);
            goto fail_child;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    if (strchr(host, ':'))
        snprintf(s->uri, sizeof s->uri, "%s://[%s]:%d", s->tls ? "https" : "http", host, s->port);
    else
        snprintf(s->uri, sizeof s->uri, "%s://%s:%d", s->tls ? "https" : "http", host, s->port);
    free(args);
    free(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return s;

fail_child:
    kill_child(s->pid);
    close(s->out_fd);
fail:
    free(args);
    free(argv);
    free(s);
    return NULL;
}

const char *testsrv_uri(const testsrv *s) {
    return s ? s->uri : NULL;
}

int testsrv_port(const testsrv *s) {
    return s ? s->port : 0;
}

int testsrv_pid(const testsrv *s) {
    return s ? (int)s->pid : 0;
}

void testsrv_stop(testsrv *s) {
    if (!s)
        return;
    kill_child(s->pid);
    if (s->out_fd >= 0)
        close(s->out_fd);
    free(s);
    curl_global_cleanup();
}

struct membuf {
    char *data;
    size_t len, cap;
    int oom;
};

/* The buffer doubles: a realloc per 16 KB chunk copies a 10 MB dump some 600
 * times under the sanitizers' allocators (which never grow in place): 20 s. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct membuf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return 0;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* method NULL: GET, or POST when a body is given.  body NULL: no body. */
static char *request(const testsrv *s, const char *method, const char *path, const void *body,
                     size_t body_len, const char *content_type, long *code, size_t *resp_len) {
    if (code)
        *code = 0;
    if (resp_len)
        *resp_len = 0;
    if (!s || !path)
        return NULL;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    size_t url_len = strlen(s->uri) + strlen(path) + 1;
    char *url = malloc(url_len);
    struct membuf b = {NULL, 0, 0, 0};
    struct curl_slist *hdrs = NULL;
    char *result = NULL;
    if (!url)
        goto out;
    snprintf(url, url_len, "%s%s", s->uri, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mlo-testsrv");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (s->tls) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body) {
        if (content_type) {
            size_t n = strlen("Content-Type: ") + strlen(content_type) + 1;
            char *h = malloc(n);
            if (!h)
                goto out;
            snprintf(h, n, "Content-Type: %s", content_type);
            hdrs = curl_slist_append(hdrs, h);
            free(h);
        } else {
            hdrs = curl_slist_append(hdrs, "Content-Type:"); /* none (curl would add one) */
        }
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method && strcmp(method, body ? "POST" : "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK || b.oom)
        goto out;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (code)
        *code = status;
    if (resp_len)
        *resp_len = b.len;
    result = b.data ? b.data : strdup("");
    b.data = NULL;
out:
    free(b.data);
    free(url);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return result;
}

char *testsrv_get(const testsrv *s, const char *path, long *code) {
    return request(s, NULL, path, NULL, 0, NULL, code, NULL);
}

char *testsrv_post(const testsrv *s, const char *path, const char *json_body, long *code) {
    if (!json_body)
        json_body = "{}";
    return request(s, NULL, path, json_body, strlen(json_body), "application/json", code, NULL);
}

char *testsrv_request(const testsrv *s, const char *method, const char *path, const void *body,
                      size_t body_len, const char *content_type, long *code, size_t *resp_len) {
    if (body == NULL && body_len != 0) {
        if (code)
            *code = 0;
        return NULL;
    }
    return request(s, method, path, body ? body : NULL, body_len, content_type, code, resp_len);
}

int testsrv_config(const testsrv *s, const char *config_json) {
    long code = 0;
    char *body = testsrv_post(s, "/_test/config", config_json, &code);
    int ok = body != NULL && code == 200;
    free(body);
    return ok ? 0 : -1;
}

int testsrv_fault(const testsrv *s, const char *fault_json) {
    long code = 0;
    char *body = testsrv_post(s, "/_test/faults", fault_json, &code);
    int ok = body != NULL && code == 200;
    free(body);
    return ok ? 0 : -1;
}
