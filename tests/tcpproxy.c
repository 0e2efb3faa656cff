/* tcpproxy: see tcpproxy.h. */
#define _GNU_SOURCE
#include "tcpproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 20
#define SHORT_REQUEST_MS 200

typedef struct conn {
    struct tcpproxy *p;
    int cfd, ufd;
    unsigned gen;
    pthread_t th;
    _Atomic int finished;
    struct conn *next;
} conn;

struct tcpproxy {
    int upstream_port;
    int port;
    char uri[64];
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int want_up;   /* under lock */
    int listening; /* under lock */
    conn *conns;   /* under lock */
    _Atomic int stop;
    _Atomic unsigned kill_gen;
    _Atomic int reset_budget;
    _Atomic size_t reset_after;
    _Atomic int resets_done;
    _Atomic long nconns;
    _Atomic int recording;
    pthread_mutex_t rec_lock;
    char *rec;
    size_t rec_len, rec_cap;
};

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rst_close(int fd) {
    if (fd < 0)
        return;
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int write_all(int fd, const char *b, size_t n) {
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void record(tcpproxy *p, const char *b, size_t n) {
    if (!atomic_load(&p->recording))
        return;
    pthread_mutex_lock(&p->rec_lock);
    if (p->rec_len + n + 1 > p->rec_cap) {
        size_t cap = (p->rec_len + n + 1) * 2;
        char *r = realloc(p->rec, cap);
        if (!r) {
            pthread_mutex_unlock(&p->rec_lock);
            return;
        }
        p->rec = r;
        p->rec_cap = cap;
    }
    memcpy(p->rec + p->rec_len, b, n);
    p->rec_len += n;
    pthread_mutex_unlock(&p->rec_lock);
}

static int claim_reset(tcpproxy *p) {
    int b = atomic_load(&p->reset_budget);
    while (b > 0)
        if (atomic_compare_exchange_weak(&p->reset_budget, &b, b - 1))
            return 1;
    return 0;
}

static void *conn_main(void *arg) {
    conn *c = arg;
    tcpproxy *p = c->p;
    char buf[65536];
    int doomed = 0;
    size_t got = 0;
    long long last = 0;
    for (;;) {
        if (atomic_load(&p->stop) || atomic_load(&p->kill_gen) != c->gen)
            break;
        if (doomed &&
            (got >= atomic_load(&p->reset_after) || mono_ms() - last > SHORT_REQUEST_MS)) {
            atomic_fetch_add(&p->resets_done, 1);
            break;
        }
        struct pollfd fds[2] = {{c->cfd, POLLIN, 0}, {c->ufd, POLLIN, 0}};
        int r = poll(fds, 2, TICK_MS);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (fds[0].revents) {
            ssize_t n = recv(c->cfd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) { /* the client closed: close the upstream side too */
                close(c->ufd);
                c->ufd = -1;
                close(c->cfd);
                c->cfd = -1;
                break;
            }
            if (!doomed && claim_reset(p))
                doomed = 1;
            if (doomed) {
                got += (size_t)n;
                last = mono_ms();
                continue; /* nothing of it reaches the server */
            }
            record(p, buf, (size_t)n);
            if (write_all(c->ufd, buf, (size_t)n) != 0)
                break;
        }
        if (fds[1].revents && !doomed) {
            ssize_t n = recv(c->ufd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) { /* the server closed: the client sees it closed */
                close(c->cfd);
                c->cfd = -1;
                close(c->ufd);
                c->ufd = -1;
                break;
            }
            if (write_all(c->cfd, buf, (size_t)n) != 0)
                break;
        }
    }
    rst_close(c->cfd);
    if (c->ufd >= 0)
        close(c->ufd);
    c->cfd = c->ufd = -1;
    atomic_store(&c->finished, 1);
    return NULL;
}

static int listen_on(int port, int *bound) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *bound = ntohs(a.sin_port);
    return fd;
}

static int connect_upstream(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void *acceptor_main(void *arg) {
    tcpproxy *p = arg;
    int lfd = -1;
    while (!atomic_load(&p->stop)) {
        pthread_mutex_lock(&p->lock);
        int want = p->want_up;
        if (want && lfd < 0) {
            int bound = 0;
            lfd = listen_on(p->port, &bound);
            if (lfd >= 0 && p->port == 0)
                p->port = bound;
        } else if (!want && lfd >= 0) {
            close(lfd); /* what waits in the backlog is reset */
            lfd = -1;
        }
        p->listening = lfd >= 0;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (lfd < 0) {
            struct timespec ts = {0, TICK_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd pf = {lfd, POLLIN, 0};
        if (poll(&pf, 1, TICK_MS) <= 0)
            continue;
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add(&p->nconns, 1);
        int ufd = connect_upstream(p->upstream_port);
        conn *c = calloc(1, sizeof *c);
        if (ufd < 0 || !c) {
            rst_close(cfd);
            if (ufd >= 0)
                close(ufd);
            free(c);
            continue;
        }
        c->p = p;
        c->cfd = cfd;
        c->ufd = ufd;
        c->gen = atomic_load(&p->kill_gen);
        if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
            rst_close(cfd);
            close(ufd);
            free(c);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        c->next = p->conns;
        p->conns = c;
        pthread_mutex_unlock(&p->lock);
    }
    if (lfd >= 0)
        close(lfd);
    pthread_mutex_lock(&p->lock);
    p->listening = 0;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Waits (at most 5 s) until listening == want; 0 when reached. */
static int wait_listening(tcpproxy *p, int want) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    while (p->listening != want && rc == 0) /* a failed bind is retried every tick */
        rc = pthread_cond_timedwait(&p->cond, &p->lock, &dl);
    int ok = p->listening == want;
    pthread_mutex_unlock(&p->lock);
    return ok ? 0 : -1;
}

tcpproxy *tcpproxy_start(int upstream_port, int listen_port) {
    tcpproxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->upstream_port = upstream_port;
    p->port = listen_port;
    p->want_up = 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_mutex_init(&p->rec_lock, NULL);
    if (pthread_create(&p->acceptor, NULL, acceptor_main, p) != 0) {
        free(p);
        return NULL;
    }
    if (wait_listening(p, 1) != 0) {
        fprintf(stderr, "tcpproxy: cannot listen on port %d\n", listen_port);
        tcpproxy_stop(p);
        return NULL;
    }
    snprintf(p->uri, sizeof p->uri, "http://127.0.0.1:%d", p->port);
    return p;
}

int tcpproxy_port(const tcpproxy *p) {
    return p ? p->port : 0;
}

const char *tcpproxy_uri(const tcpproxy *p) {
    return p ? p->uri : NULL;
}

/* Joins the connection threads that have finished (all when stopping). */
static void reap(tcpproxy *p, int all) {
    pthread_mutex_lock(&p->lock);
    conn *list = p->conns;
    p->conns = NULL;
    pthread_mutex_unlock(&p->lock);
    conn *keep = NULL;
    while (list) {
        conn *c = list;
        list = c->next;
        if (all || atomic_load(&c->finished)) {
            pthread_join(c->th, NULL);
            free(c);
        } else {
            c->next = keep;
            keep = c;
        }
    }
    pthread_mutex_lock(&p->lock);
    while (keep) {
        conn *c = keep;
        keep = c->next;
        c->next = p->conns;
        p->conns = c;
    }
    pthread_mutex_unlock(&p->lock);
}

void tcpproxy_down(tcpproxy *p) {
    pthread_mutex_lock(&p->lock);
    p->want_up = 0;
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_add(&p->kill_gen, 1);
    wait_listening(p, 0);
    /* the connections notice within a tick */
    struct timespec ts = {0, 3 * TICK_MS * 1000000L};
    nanosleep(&ts, NULL);
    reap(p, 0);
}

int tcpproxy_up(tcpproxy *p) {
    pthread_mutex_lock(&p->lock);
    p->want_up = 1;
    pthread_mutex_unlock(&p->lock);
    return wait_listening(p, 1);
}

void tcpproxy_reset_requests(tcpproxy *p, int n, size_t after) {
    atomic_store(&p->reset_after, after);
    atomic_store(&p->reset_budget, n);
}

int tcpproxy_resets_done(const tcpproxy *p) {
    return atomic_load(&((tcpproxy *)p)->resets_done);
}

long tcpproxy_connections(const tcpproxy *p) {
    return atomic_load(&((tcpproxy *)p)->nconns);
}

void tcpproxy_record(tcpproxy *p, int on) {
    atomic_store(&p->recording, on);
}

char *tcpproxy_recorded(tcpproxy *p, size_t *len) {
    pthread_mutex_lock(&p->rec_lock);
    char *out = malloc(p->rec_len + 1);
    if (out) {
        if (p->rec_len)
            memcpy(out, p->rec, p->rec_len);
        out[p->rec_len] = '\0';
        if (len)
            *len = p->rec_len;
    }
    pthread_mutex_unlock(&p->rec_lock);
    return out;
}

void tcpproxy_stop(tcpproxy *p) {
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->acceptor, NULL);
    reap(p, 1);
    free(p->rec);
    pthread_mutex_destroy(&p->rec_lock);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
