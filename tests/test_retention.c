/*
 * test_retention.c - what the store removes, and when (issue 16): the
 * retention period and the size cap over acknowledged segments
 * (src/store/mlo_retention.c), the run summaries that keep what `mlo
 * ls/show/gate` read, a pass interrupted by a crash, `mlo rm`, the
 * leftovers of dead processes, the queue files in /dev/shm, and a month of
 * an inference server's logging (with and without a day's outage) on a
 * virtual clock over the fake transport (tests/mlo_fake_transport.h).
 *
 * Segments are written with the run log's own writer (mlo_log.h) and
 * acknowledged with the store's ack files, as the outbox does; the month
 * runs the whole client (writer, outbox, retention in the writer) with the
 * virtual clock moved by the test.  Worker sleeps stay in real time: the
 * test wakes the writer after each simulated hour and waits (real time,
 * bounded) for the fake server to hold what was logged.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mlo.h"
#include "mlo_client.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_fake_transport.h"
#include "mlo_log.h"
#include "mlo_manifest.h"
#include "mlo_retention.h"
#include "mlo_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#else
#define TU_SANITIZED 0
#endif

#define URI "http://mlflow.test:5000"
#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

/* ---- helpers ------------------------------------------------------------------------------ */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}
static void rm_rf(const char *dir) {
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmpdir(void) {
    char t[] = "/tmp/mlo-ret.XXXXXX";
    char *d = mkdtemp(t);
    assert_non_null(d);
    return strdup(d);
}

static int file_exists(const char *dir, const char *rel) {
    char p[8800];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* Files in dir/sub ending in suffix. */
static size_t count_files(const char *dir, const char *sub, const char *suffix) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), k = strlen(suffix);
        if (e->d_name[0] != '.' && l > k && !strcmp(e->d_name + l - k, suffix))
            n++;
    }
    closedir(d);
    return n;
}

/* The store's size: regular files below it, the queue's file excepted. */
static uint64_t du_total;
static int du_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)f;
    size_t l = strlen(p);
    if (flag == FTW_F && S_ISREG(sb->st_mode) && !(l > 5 && !strcmp(p + l - 5, ".ring")))
        du_total += (uint64_t)sb->st_size;
    return 0;
}
static uint64_t du(const char *dir) {
    du_total = 0;
    nftw(dir, du_cb, 16, FTW_PHYS);
    return du_total;
}

typedef struct errs {
    /* counted on the writer's thread, read by the test while it runs */
    _Atomic int n, cap_reports;
    char last[512]; /* read only where the test made the call itself */
} errs;

static void on_error(void *user, mlo_status st, const char *msg) {
    errs *e = user;
    e->n++;
    if (st == MLO_ERR_STORE && strstr(msg, "MLO_STORE_MAX_BYTES"))
        e->cap_reports++;
    snprintf(e->last, sizeof e->last, "%s", msg);
}

/* A store handle, an env on the virtual clock, and a writer of segments. */
typedef struct fx {
    char *dir;
    fake_clock fc;
    mlo_config cfg;
    mlo_env env;
    errs e;
} fx;

static fx *fx_new(void) {
    fx *f = calloc(1, sizeof *f);
    f->dir = tmpdir();
    fake_clock_init(&f->fc);
    f->cfg.clock = &f->fc.clock;
    f->cfg.error_fn = on_error;
    f->cfg.error_user = &f->e;
    f->cfg.fsync_policy = MLO_FSYNC_NONE;
    f->cfg.store_retention_ms = -1;
    mlo__env_init(&f->env, &f->cfg);
    return f;
}

static void fx_free(fx *f) {
    rm_rf(f->dir);
    free(f->dir);
    free(f);
}

static int64_t now_ms(fx *f) {
    return mlo__clock_now_ms(&f->fc.clock);
}
static void advance_ms(fx *f, int64_t ms) {
    atomic_fetch_add(&f->fc.mono_ns, ms * MLO_NS_PER_MS);
}

static mlo_store *open_store(fx *f, const char *uri) {
    mlo_store *s = NULL;
    char err[256];
    assert_int_equal(mlo__store_open(f->dir, uri, 0, 0, &f->env, &s, err, sizeof err), MLO_OK);
    return s;
}

static mlo_store *open_admin(fx *f) {
    mlo_store *s = NULL;
    char err[256];
    assert_int_equal(mlo__store_open_admin(f->dir, 1, &f->env, &s, err, sizeof err), MLO_OK);
    return s;
}

/* A segment n of the store's own procid holding the events ev[0..n). */
static uint64_t write_seg(mlo_store *s, uint32_t n, const mlo_log_event *ev, size_t nev) {
    char *p = mlo__store_seg_path(s, mlo__store_procid(s), n);
    char err[256];
    mlo_logw *w = mlo__logw_create(p, err, sizeof err);
    assert_non_null(w);
    for (size_t i = 0; i < nev; i++) {
        assert_int_equal(mlo__logw_add(w, &ev[i]), 0);
        if (i % 500 == 499) {
            mlo_log_off end;
            assert_int_equal(mlo__logw_commit(w, 0, &end), 0);
        }
    }
    mlo_log_off end;
    assert_int_equal(mlo__logw_commit(w, 0, &end), 0);
    mlo__logw_close(w);
    free(p);
    return end;
}

/* n metric points of run id, key, pseudo-random values (so that the
 * segment does not compress to nothing). */
static mlo_log_event *points(const char *id, const char *key, size_t n, uint64_t seed,
                             int64_t ts0) {
    mlo_log_event *ev = calloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        ev[i] = (mlo_log_event){.type = MLO_REC_METRIC,
                                .run_id = id,
                                .key = key,
                                .value_num = (double)(seed >> 11) / 9007199254740992.0,
                                .timestamp = ts0 + (int64_t)i,
                                .step = (int64_t)i};
    }
    return ev;
}

typedef struct seen {
    int start, end, param, tag;
    uint64_t count;
    double min, max, latest;
    int64_t latest_step;
    size_t summaries;
    double status;
    char name[64];
} seen;

static void read_summary_cb(seen *x, const mlo_log_event *e) {
    switch (e->type) {
    case MLO_EV_START_RUN:
        x->start++;
        snprintf(x->name, sizeof x->name, "%s", e->value ? e->value : "");
        break;
    case MLO_REC_END_RUN:
        x->end++;
        x->status = e->value_num;
        break;
    case MLO_REC_PARAM:
        x->param++;
        break;
    case MLO_REC_TAG:
        x->tag++;
        break;
    case MLO_EV_METRIC_SUMMARY:
        x->summaries++;
        x->count += e->count;
        x->min = e->min;
        x->max = e->max;
        x->latest = e->value_num;
        x->latest_step = e->step;
        break;
    case MLO_REC_METRIC:
        x->count++;
        break;
    default:
        break;
    }
}

/* Reads <dir>/<rel> (a summary or a segment) into x. */
static void read_file_into(const char *dir, const char *rel, seen *x) {
    char p[4096], err[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    mlo_logr *r = mlo__logr_open(p, err, sizeof err);
    assert_non_null(r);
    mlo_log_event e;
    while (mlo__logr_next(r, &e, err, sizeof err) == 1)
        read_summary_cb(x, &e);
    mlo__logr_close(r);
}

/* ---- retention ------------------------------------------------------------------------------ */

static const char *R1 = "11111111111111111111111111111111";
static const char *R2 = "22222222222222222222222222222222";
static const char *R3 = "33333333333333333333333333333333";

/* An acknowledged segment goes once its acknowledgement is older than the
 * retention, its run folded into a summary; the unacknowledged one stays. */
static void test_retention_period(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, URI);
    const char *tk[] = {"team"}, *tv[] = {"vision"};
    int64_t t0 = now_ms(f);
    mlo_log_event ev[] = {
        {.type = MLO_EV_START_RUN,
         .run_id = R1,
         .key = "exp",
         .value = "r1",
         .timestamp = t0,
         .ntags = 1,
         .tag_keys = tk,
         .tag_values = tv},
        {.type = MLO_REC_PARAM, .run_id = R1, .key = "lr", .value = "0.1"},
        {.type = MLO_REC_METRIC, .run_id = R1, .key = "loss", .value_num = 0.5, .step = 0},
        {.type = MLO_REC_METRIC, .run_id = R1, .key = "loss", .value_num = 0.4, .step = 1},
        {.type = MLO_REC_METRIC, .run_id = R1, .key = "loss", .value_num = NAN, .step = 2},
        {.type = MLO_REC_METRIC, .run_id = R1, .key = "loss", .value_num = 0.2, .step = 4},
        {.type = MLO_REC_METRIC, .run_id = R1, .key = "loss", .value_num = 0.3, .step = 3},
        {.type = MLO_REC_END_RUN, .run_id = R1, .value_num = MLO_RUN_FINISHED, .timestamp = t0 + 5},
    };
    uint64_t end1 = write_seg(s, 1, ev, 8);
    mlo_log_event *p2 = points(R2, "x", 100, 7, t0);
    uint64_t end2 = write_seg(s, 2, p2, 100);
    free(p2);
    assert_int_equal(mlo__store_ack_set(s, mlo__store_procid(s), 1, end1, 0), 0);
    assert_int_equal(mlo__store_ack_set(s, mlo__store_procid(s), 2, end2 / 2, 0), 0); /* partly */
    char procid[48];
    snprintf(procid, sizeof procid, "%s", mlo__store_procid(s));
    mlo__store_close(s, 1);

    mlo_store *a = open_admin(f);
    mlo_gc_opts o = {.now_ms = now_ms(f) + 30 * 60000, .retention_ms = HOUR_MS};
    mlo_gc_result r;
    char err[256];
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_int_equal(r.files, 0); /* acknowledged half an hour ago: kept */
    char seg1[128], seg2[128], ack1[128];
    snprintf(seg1, sizeof seg1, "segments/%s-000001.seg", procid);
    snprintf(seg2, sizeof seg2, "segments/%s-000002.seg", procid);
    snprintf(ack1, sizeof ack1, "acks/%s-000001.ack", procid);
    assert_true(file_exists(f->dir, seg1));

    o.now_ms = now_ms(f) + 2 * HOUR_MS;
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_false(file_exists(f->dir, seg1));
    assert_false(file_exists(f->dir, ack1));
    assert_true(file_exists(f->dir, seg2)); /* not all acknowledged: never removed */
    assert_int_equal(r.summaries, 1);
    assert_true(r.unsent_bytes >= end2 - end2 / 2);
    char sum[128];
    snprintf(sum, sizeof sum, "summaries/%s.sum", R1);
    seen x = {0};
    read_file_into(f->dir, sum, &x);
    assert_int_equal(x.start, 1);
    assert_string_equal(x.name, "r1");
    assert_int_equal(x.param, 1);
    assert_int_equal(x.tag, 1);
    assert_int_equal(x.summaries, 1);
    assert_int_equal(x.count, 5);
    assert_true(x.min == 0.2 && x.max == 0.5); /* NaN left out of the range */
    assert_true(x.latest == 0.2 && x.latest_step == 4);
    assert_int_equal(x.end, 1);
    assert_true(x.status == MLO_RUN_FINISHED);

    /* again: nothing more, the summary unchanged (folded once) */
    o.now_ms += HOUR_MS;
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_int_equal(r.files, 0);
    memset(&x, 0, sizeof x);
    read_file_into(f->dir, sum, &x);
    assert_int_equal(x.count, 5);
    /* retention -1: acknowledged data is kept forever */
    mlo__store_close(a, 0);
    fx_free(f);
}

/* Over the cap: acknowledged segments go oldest acknowledgement first; the
 * unacknowledged one never, and a client that meets that says so, at most
 * every 10 minutes. */
static void test_size_cap(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, URI);
    uint64_t size[6];
    for (uint32_t n = 1; n <= 5; n++) {
        mlo_log_event *ev = points(R1, "v", 3000, n, now_ms(f));
        size[n] = write_seg(s, n, ev, 3000);
        free(ev);
    }
    /* acknowledged in the order 3, 1, 4, 2; 5 not at all */
    uint32_t order[] = {3, 1, 4, 2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mlo__store_ack_set(s, mlo__store_procid(s), order[i], size[order[i]], 0),
                         0);
        advance_ms(f, 60000);
    }
    char procid[48];
    snprintf(procid, sizeof procid, "%s", mlo__store_procid(s));
    mlo__store_close(s, 1);
    mlo_store *a = open_admin(f);
    uint64_t total = du(f->dir);
    mlo_gc_opts o = {.now_ms = now_ms(f),
                     .retention_ms = -1,
                     .max_bytes = (int64_t)(total - size[3] - size[1] / 2)};
    mlo_gc_result r;
    char err[256];
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    char p[160];
    int gone[6] = {0};
    for (int n = 1; n <= 5; n++) {
        snprintf(p, sizeof p, "segments/%s-%06d.seg", procid, n);
        gone[n] = !file_exists(f->dir, p);
    }
    /* the two acknowledged first are gone, the others stay */
    assert_true(gone[3] && gone[1] && !gone[4] && !gone[2] && !gone[5]);
    assert_true(r.store_bytes <= (uint64_t)o.max_bytes);

    /* a cap nothing acknowledged can meet: all of it goes, the rest stays */
    o.max_bytes = 1;
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_int_equal(count_files(f->dir, "segments", ".seg"), 1);
    snprintf(p, sizeof p, "segments/%s-000005.seg", procid);
    assert_true(file_exists(f->dir, p));
    assert_true(r.store_bytes > 1 && r.unsent_bytes >= size[5] - 64);

    /* the client's tick: one report, then quiet for 10 minutes */
    f->cfg.store_max_bytes = 1;
    mlo_retention t = {0};
    mlo__retention_tick(&t, a, &f->env);
    assert_int_equal(f->e.cap_reports, 1);
    advance_ms(f, 5 * 60000);
    mlo__retention_tick(&t, a, &f->env);
    assert_int_equal(f->e.cap_reports, 1);
    advance_ms(f, 6 * 60000);
    mlo__retention_tick(&t, a, &f->env);
    assert_int_equal(f->e.cap_reports, 2);
    assert_non_null(strstr(f->e.last, "never removed"));
    mlo__store_close(a, 0);
    fx_free(f);
}

/* A local store's runs (no URI, no acknowledgement) are never removed by
 * retention, whatever it is. */
static void test_local_store_kept(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, NULL);
    mlo_log_event *ev = points(R1, "acc", 50, 3, now_ms(f));
    write_seg(s, 1, ev, 50);
    write_seg(s, 2, ev, 50);
    free(ev);
    mlo__store_close(s, 1);
    mlo_store *a = open_admin(f);
    mlo_gc_opts o = {.now_ms = now_ms(f) + 100 * DAY_MS, .retention_ms = 0, .max_bytes = 1};
    mlo_gc_result r;
    char err[256];
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_int_equal(r.files, 0);
    assert_int_equal(count_files(f->dir, "segments", ".seg"), 2);
    mlo__store_close(a, 0);
    fx_free(f);
}

/* A live process's segment it may still append to is never taken, even
 * acknowledged; its earlier ones are. */
static void test_live_process(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, URI); /* stays open: alive */
    mlo_log_event *ev = points(R1, "acc", 50, 3, now_ms(f));
    uint64_t e1 = write_seg(s, 1, ev, 50), e2 = write_seg(s, 2, ev, 50);
    free(ev);
    mlo__store_ack_set(s, mlo__store_procid(s), 1, e1, 0);
    mlo__store_ack_set(s, mlo__store_procid(s), 2, e2, 0);
    mlo_store *a = open_admin(f);
    assert_int_equal(mlo__store_live_skipped(a), 1); /* one process */
    mlo_gc_opts o = {.now_ms = now_ms(f), .retention_ms = 0};
    mlo_gc_result r;
    char err[256], p[160];
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    snprintf(p, sizeof p, "segments/%s-000001.seg", mlo__store_procid(s));
    assert_false(file_exists(f->dir, p));
    snprintf(p, sizeof p, "segments/%s-000002.seg", mlo__store_procid(s));
    assert_true(file_exists(f->dir, p));
    snprintf(p, sizeof p, "acks/%s.lock", mlo__store_procid(s));
    assert_true(file_exists(f->dir, p)); /* a live process's lock: never */
    mlo__store_close(a, 0);
    mlo__store_close(s, 1);
    fx_free(f);
}

/* A pass that died after its journal is redone by the next one: the
 * segment it had folded is removed, not folded twice. */
static void test_crash_after_journal(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, URI);
    mlo_log_event *ev = points(R3, "m", 40, 5, now_ms(f));
    uint64_t e1 = write_seg(s, 1, ev, 40);
    free(ev);
    mlo__store_ack_set(s, mlo__store_procid(s), 1, e1, 0);
    char procid[48], seg[160], saved[4096], segp[4096];
    snprintf(procid, sizeof procid, "%s", mlo__store_procid(s));
    mlo__store_close(s, 1);
    snprintf(seg, sizeof seg, "%s-000001.seg", procid);
    snprintf(segp, sizeof segp, "%s/segments/%s", f->dir, seg);
    snprintf(saved, sizeof saved, "%s/saved.seg", f->dir);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp -p '%s' '%s'", segp, saved);
    assert_int_equal(system(cmd), 0);

    mlo_store *a = open_admin(f);
    mlo_gc_opts o = {.now_ms = now_ms(f), .retention_ms = 0};
    mlo_gc_result r;
    char err[256];
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_int_equal(r.summaries, 1);
    char sum[128];
    snprintf(sum, sizeof sum, "summaries/%s.sum", R3);
    seen x = {0};
    read_file_into(f->dir, sum, &x);
    assert_int_equal(x.count, 40);

    /* as if the pass had died after renaming the summary, before removing
     * the segment: the segment is back, the journal names both */
    snprintf(cmd, sizeof cmd, "cp -p '%s' '%s'", saved, segp);
    assert_int_equal(system(cmd), 0);
    char jp[4096];
    snprintf(jp, sizeof jp, "%s/summaries/removing", f->dir);
    FILE *j = fopen(jp, "w");
    fprintf(j, "sum %s.sum\nseg %s\n", R3, seg);
    fclose(j);
    /* and a stray temp file of a pass that died before its journal */
    snprintf(jp, sizeof jp, "%s/summaries/%s.sum.tmp", f->dir, R2);
    j = fopen(jp, "w");
    fclose(j);
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    char rel[200];
    snprintf(rel, sizeof rel, "segments/%s", seg);
    assert_false(file_exists(f->dir, rel));
    assert_false(file_exists(f->dir, "summaries/removing"));
    snprintf(rel, sizeof rel, "summaries/%s.sum.tmp", R2);
    assert_false(file_exists(f->dir, rel));
    memset(&x, 0, sizeof x);
    read_file_into(f->dir, sum, &x);
    assert_int_equal(x.count, 40); /* not 80 */
    mlo__store_close(a, 0);
    fx_free(f);
}

/* Leftovers of dead processes: a blob whose manifest is gone and temp
 * files go; a pending artifact stays, and so does its process's lock; a
 * dead process with nothing left loses its lock and target. */
static void test_leftovers(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, URI);
    char procid[48];
    snprintf(procid, sizeof procid, "%s", mlo__store_procid(s));
    write_seg(s, 1, NULL, 0); /* a segment without a block */
    mlo__store_close(s, 1);
    mlo_store *q = open_store(f, URI); /* another process with nothing at all */
    char qid[48];
    snprintf(qid, sizeof qid, "%s", mlo__store_procid(q));
    mlo__store_close(q, 1);
    char ad[4096], p[4400];
    snprintf(ad, sizeof ad, "%s/artifacts", f->dir);
    mkdir(ad, 0700);
    const char *names[] = {"00000001.blob", "00000002.blob", "00000003.blob.tmp"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s-%s", ad, procid, names[i]);
        FILE *fp = fopen(p, "w");
        fputs("data", fp);
        fclose(fp);
    }
    mlo_manifest m = {.path = "a.bin", .size = 4, .created = 1, .uri = URI};
    memcpy(m.lid, R1, 33);
    memset(m.sha, 'a', 64);
    char id[80];
    snprintf(id, sizeof id, "%s-00000002", procid);
    assert_int_equal(mlo__manifest_write(ad, id, ".art", &m, 0), 0);

    mlo_store *a = open_admin(f);
    mlo_gc_opts o = {.now_ms = now_ms(f), .retention_ms = 0};
    mlo_gc_result r;
    char err[256], rel[200];
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    /* the empty segment: only gc's passes (remove_empty) take it */
    snprintf(rel, sizeof rel, "segments/%s-000001.seg", procid);
    assert_true(file_exists(f->dir, rel));
    o.remove_empty = 1;
    assert_int_equal(mlo__retention_pass(a, &f->env, &o, &r, err, sizeof err), MLO_OK);
    assert_false(file_exists(f->dir, rel));
    snprintf(rel, sizeof rel, "artifacts/%s-00000001.blob", procid);
    assert_false(file_exists(f->dir, rel));
    snprintf(rel, sizeof rel, "artifacts/%s-00000003.blob.tmp", procid);
    assert_false(file_exists(f->dir, rel));
    snprintf(rel, sizeof rel, "artifacts/%s-00000002.blob", procid);
    assert_true(file_exists(f->dir, rel));
    snprintf(rel, sizeof rel, "acks/%s.lock", procid);
    assert_true(file_exists(f->dir, rel)); /* its artifact is pending */
    snprintf(rel, sizeof rel, "acks/%s.lock", qid);
    assert_false(file_exists(f->dir, rel));
    snprintf(rel, sizeof rel, "acks/%s.target", qid);
    assert_false(file_exists(f->dir, rel));
    mlo__store_close(a, 0);
    fx_free(f);
}

/* ---- mlo rm -----------------------------------------------------------------------------------
 */

static void test_rm(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, NULL);
    /* segment 1: runs 1 and 2 interleaved; segment 2: run 3 */
    mlo_log_event *a1 = points(R1, "m", 600, 1, 0), *a2 = points(R2, "m", 600, 2, 0);
    mlo_log_event mix[1200];
    for (int i = 0; i < 600; i++) {
        mix[2 * i] = a1[i];
        mix[2 * i + 1] = a2[i];
    }
    write_seg(s, 1, mix, 1200);
    mlo_log_event *a3 = points(R3, "m", 10, 3, 0);
    write_seg(s, 2, a3, 10);
    char procid[48];
    snprintf(procid, sizeof procid, "%s", mlo__store_procid(s));
    /* an artifact staged for run 1 */
    char ad[4096], p[4400], id[80];
    snprintf(ad, sizeof ad, "%s/artifacts", f->dir);
    mkdir(ad, 0700);
    snprintf(id, sizeof id, "%s-00000001", procid);
    snprintf(p, sizeof p, "%s/%s.blob", ad, id);
    FILE *fp = fopen(p, "w");
    fputs("data", fp);
    fclose(fp);
    mlo_manifest m = {.path = "a.bin", .size = 4, .created = 1};
    memcpy(m.lid, R1, 33);
    memset(m.sha, 'a', 64);
    assert_int_equal(mlo__manifest_write(ad, id, ".art", &m, 0), 0);

    /* while its process lives: refused, nothing changed */
    mlo_store *a = open_admin(f);
    const char *ids[] = {R1};
    char err[512];
    assert_int_equal(mlo__retention_rm(a, &f->env, ids, 1, 0, NULL, NULL, err, sizeof err),
                     MLO_ERR_STORE);
    assert_non_null(strstr(err, "still running"));
    mlo__store_close(a, 0);
    char seg1[200];
    snprintf(seg1, sizeof seg1, "segments/%s-000001.seg", procid);
    seen x = {0};
    read_file_into(f->dir, seg1, &x);
    assert_int_equal(x.count, 1200);
    mlo__store_close(s, 1);

    a = open_admin(f);
    assert_int_equal(mlo__retention_rm(a, &f->env, ids, 1, 0, NULL, NULL, err, sizeof err), MLO_OK);
    memset(&x, 0, sizeof x);
    read_file_into(f->dir, seg1, &x);
    assert_int_equal(x.count, 600); /* run 2's events, all of them */
    char seg2[200];
    snprintf(seg2, sizeof seg2, "segments/%s-000002.seg", procid);
    memset(&x, 0, sizeof x);
    read_file_into(f->dir, seg2, &x);
    assert_int_equal(x.count, 10);
    snprintf(p, sizeof p, "artifacts/%s.blob", id);
    assert_false(file_exists(f->dir, p));
    snprintf(p, sizeof p, "artifacts/%s.art", id);
    assert_false(file_exists(f->dir, p));
    /* run 3 alone in its segment: the segment goes */
    const char *ids3[] = {R3};
    assert_int_equal(mlo__retention_rm(a, &f->env, ids3, 1, 0, NULL, NULL, err, sizeof err),
                     MLO_OK);
    assert_false(file_exists(f->dir, seg2));
    mlo__store_close(a, 0);
    free(a1);
    free(a2);
    free(a3);
    fx_free(f);
}

/* rm refuses a segment that other runs share and the server acknowledged
 * only in part (rewriting it would lose the offset). */
static void test_rm_partly_acknowledged(void **state) {
    (void)state;
    fx *f = fx_new();
    mlo_store *s = open_store(f, URI);
    mlo_log_event *a1 = points(R1, "m", 600, 1, 0), *a2 = points(R2, "m", 600, 2, 0);
    mlo_log_event mix[1200];
    for (int i = 0; i < 600; i++) {
        mix[2 * i] = a1[i];
        mix[2 * i + 1] = a2[i];
    }
    uint64_t end = write_seg(s, 1, mix, 1200);
    mlo__store_ack_set(s, mlo__store_procid(s), 1, end / 3, 0);
    mlo__store_close(s, 1);
    mlo_store *a = open_admin(f);
    const char *ids[] = {R1};
    char err[512];
    assert_int_equal(mlo__retention_rm(a, &f->env, ids, 1, 0, NULL, NULL, err, sizeof err),
                     MLO_ERR_STORE);
    assert_non_null(strstr(err, "mlo sync"));
    mlo__store_close(a, 0);
    free(a1);
    free(a2);
    fx_free(f);
}

/* ---- /dev/shm -------------------------------------------------------------------------------- */

/* The queue file in /dev/shm of the one process that used the store at
 * dir (the target of its rings/<procid>.ring link), into path. */
static void shm_path(const char *dir, char *path, size_t n) {
    char rd[4200];
    snprintf(rd, sizeof rd, "%s/rings", dir);
    DIR *d = opendir(rd);
    assert_non_null(d);
    struct dirent *e;
    path[0] = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".ring")) {
            char lp[4600];
            snprintf(lp, sizeof lp, "%s/%s", rd, e->d_name);
            ssize_t k = readlink(lp, path, n - 1);
            assert_true(k > 0);
            path[k] = 0;
        }
    }
    closedir(d);
    const char *sd = getenv("MLO_SHM_DIR");
    char want[1024];
    snprintf(want, sizeof want, "%s/mlo-ring-", sd && *sd ? sd : "/dev/shm");
    assert_true(!strncmp(path, want, strlen(want)));
}

static int there(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A child that opens a client on dir, logs, and then either dies without
 * closing (hold = 0: _exit) or signals the parent and waits to be killed
 * (hold = 1).  Returns its pid. */
static pid_t child_client(const char *dir, int hold) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        mlo_options_t *o = mlo_options_new();
        mlo_options_set_store_dir(o, dir);
        mlo_options_set_tracking_uri(o, NULL);
        mlo_client_t *c;
        if (mlo_client_open(o, &c) != MLO_OK)
            _exit(2);
        mlo_run_t *r;
        mlo_start_run(c, "shm", "child", NULL, &r);
        mlo_log_metric(r, "x", 1.0, 0);
        if (write(pfd[1], "k", 1) != 1)
            _exit(3);
        if (hold)
            for (;;)
                pause();
        _exit(0); /* no close: the ring stays, as after a crash */
    }
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    return pid;
}

static void test_shm_reclaim(void **state) {
    (void)state;
    unsetenv("MLFLOW_TRACKING_URI");
    /* queue files in a directory of this test's own (MLO_SHM_DIR): every
     * client that opens a store reclaims orphaned ones, so a test running
     * beside this one would take the dead child's file first */
    char *shm = tmpdir();
    setenv("MLO_SHM_DIR", shm, 1);
    char *d1 = tmpdir(), *d2 = tmpdir(), *d3 = tmpdir();
    pid_t dead = child_client(d1, 0);
    waitpid(dead, NULL, 0);
    char dead_ring[512], live_ring[512];
    shm_path(d1, dead_ring, sizeof dead_ring);
    assert_true(there(dead_ring));
    pid_t live = child_client(d2, 1);
    shm_path(d2, live_ring, sizeof live_ring);
    assert_true(there(live_ring));
    /* a file without an owner record (as mlo made them before) */
    char legacy[1024];
    snprintf(legacy, sizeof legacy, "%s/mlo-ring-0000000000000-%ld-9-legacy", shm, (long)getpid());
    int fd = open(legacy, O_CREAT | O_EXCL | O_RDWR, 0600);
    assert_true(fd >= 0);
    char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);

    /* the dead process's store is there: recoverable, kept */
    mlo__store_reclaim_shm(0, NULL, NULL);
    assert_true(there(dead_ring));
    /* both stores gone: the dead one's file goes (here: by a client that
     * opens another store), the live one's stays, the legacy one too */
    rm_rf(d1);
    rm_rf(d2);
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_store_dir(o, d3);
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    assert_false(there(dead_ring));
    assert_true(there(live_ring));
    assert_true(there(legacy));
    assert_int_equal(mlo_client_close(c), MLO_OK);
    mlo_options_free(o);
    /* the live one dies: now the gc path (what `mlo gc` calls) takes it */
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    size_t would = mlo__store_reclaim_shm(1, NULL, NULL);
    assert_true(would >= 1);
    assert_true(there(live_ring)); /* a dry run */
    mlo__store_reclaim_shm(0, NULL, NULL);
    assert_false(there(live_ring));
    assert_true(there(legacy));
    unlink(legacy);
    rm_rf(d3);
    unsetenv("MLO_SHM_DIR");
    rm_rf(shm);
    free(shm);
    free(d1);
    free(d2);
    free(d3);
}

/* ---- a month of an inference server -------------------------------------------------------------
 */

static const char *const KEYS[] = {"latency_ms.p50", "latency_ms.p95",   "latency_ms.p99",
                                   "latency_ms.max", "latency_ms.count", "latency_ms.rate"};

/* Waits (real time, at most about 60 s) until the fake server holds `want`
 * points of every key of the run whose name is name.  Virtual time moves
 * on meanwhile (10 ms every 5 ms), and the client is woken every 50 ms, as
 * a program's clock would move and its writer wake: a commit or a retry
 * due later in virtual time would otherwise wait forever. */
static int64_t real_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int delivered(fx *f, mlo_client_t *c, fake_server *fs, size_t want) {
    int64_t end = real_ms() + 60000;
    for (int i = 0; real_ms() < end; i++) {
        const char *sid = fake_run_by_tag(fs, "mlflow.runName", "month");
        size_t ok = 0;
        for (size_t k = 0; sid && k < 6; k++)
            ok += fake_metric_points(fs, sid, KEYS[k]) == want;
        if (ok == 6)
            return 1;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        advance_ms(f, 10);
        if (i % 10 == 9)
            mlo__client_wake((mlo_client *)c);
    }
    const char *sid = fake_run_by_tag(fs, "mlflow.runName", "month");
    fprintf(stderr, "    not delivered: want %zu points of each key, the server has", want);
    for (size_t k = 0; sid && k < 6; k++)
        fprintf(stderr, " %zu", fake_metric_points(fs, sid, KEYS[k]));
    fprintf(stderr, " (%zu requests)\n", fake_nreq(fs));
    return 0;
}

/* Counts the points of KEYS[0] in the store: summaries + segments. */
static uint64_t store_points(const char *dir) {
    uint64_t n = 0;
    const char *subs[] = {"summaries", "segments"};
    for (int k = 0; k < 2; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, subs[k]);
        DIR *d = opendir(p);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (e->d_name[0] == '.' || l < 5 ||
                (strcmp(e->d_name + l - 4, ".sum") && strcmp(e->d_name + l - 4, ".seg")))
                continue;
            char q[4400], err[256];
            snprintf(q, sizeof q, "%s/%s", p, e->d_name);
            mlo_logr *r = mlo__logr_open(q, err, sizeof err);
            if (!r)
                continue;
            mlo_log_event ev;
            while (mlo__logr_next(r, &ev, err, sizeof err) == 1)
                if (ev.key && !strcmp(ev.key, KEYS[0]))
                    n += ev.type == MLO_EV_METRIC_SUMMARY ? ev.count
                         : ev.type == MLO_REC_METRIC      ? 1
                                                          : 0;
            mlo__logr_close(r);
        }
        closedir(d);
    }
    return n;
}

/*
 * 30 simulated days (10 under a sanitizer) of examples/inference_server.c's logging: the six
 * metrics of a latency histogram per interval (one virtual minute here; the
 * example's default is a second, which only scales the bytes).  The writer
 * is woken every 3 simulated hours (it rolls its segment over each time:
 * the roll-over age is an hour).
 *
 * Without outage: the default retention (7 days); the store stays under a
 * bound fixed from the first day's size (9 days' worth), and its last week
 * is no bigger than its second.  With outage: retention an hour and a cap
 * of 24 KiB (about 14 hours of this data), and the server refuses every
 * connection for day 14: the unsent day goes over the cap, the client says
 * so (rate-limited), the store at the end of that day still holds every
 * point logged (nothing unsent removed), and once the server is back
 * everything arrives and the store is under the cap again.  Both: the
 * server ends up with every point once, and summaries + segments still
 * count every point (what ls/show/gate read).
 */
static void month(int outage) {
    fx *f = fx_new();
    fake_server *fs = fake_server_new(&f->fc);
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, URI);
    mlo_options_set_store_dir(o, f->dir);
    mlo_options_set_error_callback(o, on_error, &f->e);
    mlo_options_set_flush_interval_ms(o, 5);
    mlo_options_set_fsync(o, MLO_FSYNC_NONE, 0);
    mlo_options_set_retries(o, 2, 2, 0, 30);
    mlo__config_set_transport(o, fake_transport_new, fs);
    mlo__config_set_clock(o, &f->fc.clock);
    const int64_t cap = 24 * 1024;
    if (outage) {
        mlo_options_set_store_retention(o, 3600);
        mlo_options_set_store_max_bytes(o, cap);
    }
    mlo_client_t *c;
    assert_int_equal(mlo_client_open(o, &c), MLO_OK);
    mlo_run_t *run;
    assert_int_equal(mlo_start_run(c, "serving", "month", NULL, &run), MLO_OK);
    /* Under a sanitizer 10 days: retention removes segments from day 8 on
     * (the day's outage on day 4), which is what the sanitizers watch; the
     * store's settled size (last week against the second) is compared over
     * 30 days in the plain build. */
    const int per_hour = 60, days = TU_SANITIZED ? 10 : 30, outage_day = TU_SANITIZED ? 4 : 14,
              week = 7;
    uint64_t day_bytes = 0, bound = 0, max_seen = 0, sizes[31] = {0};
    size_t interval = 0;
    for (int day = 0; day < days; day++) {
        int down = outage && day == outage_day;
        if (down) {
            fake_fault ff = {.path = "", .times = INT_MAX, .outcome = MLO_XF_CONNECT};
            fake_fault_add(fs, &ff);
        }
        for (int h = 0; h < 24; h++) {
            for (int k = 0; k < per_hour; k++) {
                advance_ms(f, 60000);
                double p50 = 0.2 + 0.01 * (double)(interval % 17);
                double v[6] = {
                    p50, p50 * 3, p50 * 6, p50 * 9, 240000.0 + (double)(interval % 100), 4000.0};
                for (int m = 0; m < 6; m++)
                    assert_int_equal(mlo_log_metric(run, KEYS[m], v[m], (int64_t)interval), MLO_OK);
                interval++;
            }
            if (h % 3 != 2)
                continue; /* the writer is woken every 3 simulated hours */
            mlo__client_wake((mlo_client *)c);
            if (!down)
                assert_true(delivered(f, c, fs, interval));
            else {
                /* no one to deliver to: let the writer commit (and run the
                 * retention pass) before time moves on */
                struct timespec ts = {0, 20000000};
                nanosleep(&ts, NULL);
            }
        }
        sizes[day] = du(f->dir);
        /* the cap is kept by the writer's passes (about once a minute of
         * the client's time), after the acknowledgements: give the last
         * ones a pass, with time moving as in delivered() */
        for (int64_t end = real_ms() + 30000;
             !down && bound && sizes[day] > bound && real_ms() < end;) {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
            advance_ms(f, 1000);
            mlo__client_wake((mlo_client *)c);
            sizes[day] = du(f->dir);
        }
        if (down) {
            /* nothing acknowledged all day, so no pass could race this
             * reading: every point logged is still in the store, once the
             * writer has committed the last ones (slow under a sanitizer) */
            for (int64_t end = real_ms() + 60000;
                 store_points(f->dir) < interval && real_ms() < end;) {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
                mlo__client_wake((mlo_client *)c);
            }
            /* and the writer says the store is over the cap: its passes run
             * about once a minute of the client's time, and a loaded machine
             * may have given it none while the day went by */
            for (int64_t end = real_ms() + 30000; f->e.cap_reports == 0 && real_ms() < end;) {
                struct timespec ts = {0, 5000000};
                nanosleep(&ts, NULL);
                advance_ms(f, 1000);
                mlo__client_wake((mlo_client *)c);
            }
            sizes[day] = du(f->dir);
            assert_int_equal(store_points(f->dir), interval);
            assert_true(sizes[day] > (uint64_t)cap);
            assert_in_range(f->e.cap_reports, 1, 24 * 6 + 1);
            fake_fault_clear(fs);
            /* the outbox's pause is virtual time: it resumes at the next wake */
        }
        if (day == 0) {
            day_bytes = sizes[0];
            /* a fixed bound: 7 days of retention + 1 (the open hour, the
             * day being acknowledged), plus summaries and files; with the
             * cap, the cap */
            bound = outage ? (uint64_t)cap : 9 * day_bytes + 64 * 1024;
        }
        if (sizes[day] > max_seen)
            max_seen = sizes[day];
        if (!outage || day != outage_day)
            assert_true(sizes[day] <= bound);
    }
    /* everything arrived, exactly once */
    assert_true(delivered(f, c, fs, interval));
    const char *sid = fake_run_by_tag(fs, "mlflow.runName", "month");
    for (int m = 0; m < 6; m++)
        assert_int_equal(fake_metric_points(fs, sid, KEYS[m]), interval);
    /* the store no longer grows: the last week no bigger than the second,
     * give or take a day (a day's reading holds the expired segments the
     * writer's passes, once a minute of the client's time after the
     * acknowledgements, have not removed yet: on a loaded machine the last
     * week once read more than a quarter day over the second; a store that
     * grew would hold another week).  With the cap, the bound above is the
     * cap itself. */
    uint64_t w2 = 0, w4 = 0;
    for (int d = 7; d < 7 + week; d++)
        w2 = sizes[d] > w2 ? sizes[d] : w2;
    for (int d = days - week; d < days; d++)
        w4 = sizes[d] > w4 ? sizes[d] : w4;
    if (!outage && days >= 3 * week && w4 > w2 + day_bytes)
        fail_msg("the store grew: last week up to %llu bytes, second week %llu, a day %llu",
                 (unsigned long long)w4, (unsigned long long)w2, (unsigned long long)day_bytes);
    /* what ls/show count: summaries + the segments left (read with the
     * client closed: its writer's passes would race the reading) */
    assert_int_equal(mlo_client_close(c), MLO_OK);
    assert_int_equal(store_points(f->dir), interval);
    assert_true(count_files(f->dir, "summaries", ".sum") == 1);
    fprintf(stderr,
            "    month%s: %zu intervals x 6 metrics; store after day 1 %llu bytes, bound %llu, "
            "largest %llu, on the last day %llu; %zu segments left; %d over-the-cap reports\n",
            outage ? " with a day's outage, retention 1 h, cap 24 KiB" : ", retention 7 days",
            interval, (unsigned long long)day_bytes, (unsigned long long)bound,
            (unsigned long long)max_seen, (unsigned long long)sizes[days - 1],
            count_files(f->dir, "segments", ".seg"), f->e.cap_reports);
    mlo_options_free(o);
    fake_server_free(fs);
    fx_free(f);
}

static void test_month(void **state) {
    (void)state;
    month(0);
}

static void test_month_outage(void **state) {
    (void)state;
    month(1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_period),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_local_store_kept),
        cmocka_unit_test(test_live_process),
        cmocka_unit_test(test_crash_after_journal),
        cmocka_unit_test(test_leftovers),
        cmocka_unit_test(test_rm),
        cmocka_unit_test(test_rm_partly_acknowledged),
        cmocka_unit_test(test_shm_reclaim),
        cmocka_unit_test(test_month),
        cmocka_unit_test(test_month_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
