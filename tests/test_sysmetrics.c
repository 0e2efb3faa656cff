/*
 * test_sysmetrics.c - system metrics (src/common/mlo_sysmetrics.c) as they
 * reach the server: MLflow's names, averages (rounded as Python's round(x,
 * 1), ties to even), steps, node id prefix, resumed runs, the per-run
 * switch, and the variables behind them.
 *
 * The sampler reads a fake root (proc/stat, proc/meminfo, proc/net/dev,
 * proc/self/cgroup, sys/fs/cgroup/...) written here, a fake statvfs, and
 * a fake libnvidia-ml (tests/fake_nvml.c, two GPUs, loaded by the sampler
 * through dlopen as the real one would be; the test sets its values
 * through the same handle).  Clients run over the fake transport
 * (in-memory MLflow server, real time) with cfg->sys_manual: no sampler thread, the
 * test drives the rounds (mlo__sysmetrics_tick), so every sample is the
 * one the test wrote.  The expected figures were computed with Python
 * from MLflow's formulas (psutil's arithmetic, round(sum / n, 1)).
 *
 * Also: offline (local store, `mlo show`'s heading, then `mlo sync` to the
 * loopback test server, where the node id's names, the cgroup v2 limit and
 * the fake GPUs' figures are checked), a run of the real sampler thread on
 * the real /proc, cgroup v1 and an unlimited limit, NVML absent, and a run
 * switched off while a round emits.
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
#include "mlo_sync.h"
#include "mlo_sysmetrics.h"
#include "testsrv.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define URI "http://mlflow.test:5000"

static char g_tmp[64];

static char *tmp_path(const char *rel) {
    static char bufs[8][PATH_MAX];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", g_tmp, rel);
    return b;
}

/* Writes root/<rel> (directories made as needed). */
static void put(const char *rel, const char *text) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/root/%s", g_tmp, rel);
    for (char *p = path + strlen(g_tmp) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void put_stat(const long long t[10]) {
    char b[512];
    snprintf(b, sizeof b,
             "cpu  %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld\n"
             "cpu0 1 1 1 1 1 1 1 1 0 0\nintr 1 2 3\nctxt 42\n",
             t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]);
    put("proc/stat", b);
}

static void put_meminfo(long long free_kb) {
    char b[512];
    snprintf(b, sizeof b,
             "MemTotal:       16000000 kB\nMemFree:        %lld kB\n"
             "MemAvailable:    9000000 kB\nBuffers:         1000000 kB\n"
             "Cached:          2000000 kB\nSwapCached:            0 kB\n"
             "SReclaimable:    1000000 kB\n",
             free_kb);
    put("proc/meminfo", b);
}

static void put_netdev(long long lo_rx, long long lo_tx, long long eth_rx, long long eth_tx) {
    char b[1024];
    snprintf(b, sizeof b,
             "Inter-|   Receive                                                |  Transmit\n"
             " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
             "packets errs drop fifo colls carrier compressed\n"
             "    lo: %lld 10 0 0 0 0 0 0 %lld 10 0 0 0 0 0 0\n"
             "  eth0:%lld 99 0 0 0 0 0 0 %lld 77 0 0 0 0 0 0\n",
             lo_rx, lo_tx, eth_rx, eth_tx);
    put("proc/net/dev", b);
}

/* statvfs as the sampler sees it: 4 KiB blocks, 60 % used */
static char g_statvfs_path[PATH_MAX];
static int fake_statvfs(const char *path, struct statvfs *st) {
    snprintf(g_statvfs_path, sizeof g_statvfs_path, "%s", path);
    memset(st, 0, sizeof *st);
    st->f_bsize = st->f_frsize = 4096;
    st->f_blocks = 1000000;
    st->f_bfree = 400000;
    st->f_bavail = 300000;
    return 0;
}

/* The fake NVML's control.  The test keeps the library loaded for the
 * whole process, so the sampler's dlopen of the same path gets this
 * instance (and its dlclose does not unload it). */
static void *nvml_handle(void) {
    static void *h;
    if (!h)
        h = dlopen(FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        fail_msg("dlopen %s: %s", FAKE_NVML_PATH, dlerror());
    return h;
}

static void nvml_set(int i, unsigned long long total, unsigned long long used, unsigned util,
                     unsigned power_mw, unsigned limit_mw) {
    void (*set)(int, unsigned long long, unsigned long long, unsigned, unsigned, unsigned);
    *(void **)&set = dlsym(nvml_handle(), "fake_nvml_set");
    assert_non_null(set);
    set(i, total, used, util, power_mw, limit_mw);
}

static int nvml_initialized(void) {
    int (*fn)(void);
    *(void **)&fn = dlsym(nvml_handle(), "fake_nvml_initialized");
    assert_non_null(fn);
    return fn();
}

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/mlo-test-sys-XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    g_statvfs_path[0] = 0;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    return 0;
}

/* ---- a client over the fake server, the sampler driven by the test ---------- */

typedef struct fx {
    fake_clock fc;
    fake_server *fs;
    mlo_client_t *c;
    mlo_sysmetrics *sm;
    int own_fs;
    char errors[16][512];
    int nerr;
} fx;

static void on_error(void *user, mlo_status st, const char *msg) {
    fx *f = user;
    (void)st;
    if (f->nerr < 16)
        snprintf(f->errors[f->nerr++], sizeof f->errors[0], "%s", msg);
}

typedef struct fx_opts {
    int server;       /* over the fake server (else the local store only) */
    int on;           /* runs log system metrics by default (-1: the environment says) */
    int samples;      /* -1: the environment's */
    const char *nvml; /* NULL: the fake NVML */
    const char *root; /* NULL: g_tmp/root */
    int manual;
    double interval_s; /* -1: the environment's */
    fx *share;         /* another fixture whose fake server (and clock) to use */
} fx_opts;

static fx *fx_open(const fx_opts *o) {
    fx *f = calloc(1, sizeof *f);
    fake_clock_init(&f->fc);
    if (o->share) {
        f->fs = o->share->fs;
    } else {
        f->fs = fake_server_new(&f->fc);
        f->own_fs = 1;
    }
    mlo_options_t *opts = mlo_options_new();
    if (o->server) {
        assert_int_equal(mlo_options_set_tracking_uri(opts, URI), MLO_OK);
        assert_int_equal(mlo__config_set_transport(opts, fake_transport_new, f->fs), MLO_OK);
    }
    assert_int_equal(mlo_options_set_store_dir(opts, tmp_path("store")), MLO_OK);
    assert_int_equal(mlo_options_set_error_callback(opts, on_error, f), MLO_OK);
    assert_int_equal(mlo_options_set_close_timeout_ms(opts, 5000), MLO_OK);
    if (o->on >= 0)
        assert_int_equal(mlo_options_set_system_metrics(opts, o->on), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_sampling(opts, o->interval_s, o->samples),
                     MLO_OK);
    assert_int_equal(mlo__config_set_sysmetrics_sources(opts, o->root ? o->root : tmp_path("root"),
                                                        o->nvml ? o->nvml : FAKE_NVML_PATH,
                                                        o->manual ? fake_statvfs : NULL, o->manual),
                     MLO_OK);
    int st = mlo_client_open(opts, &f->c);
    mlo_options_free(opts);
    assert_int_equal(st, MLO_OK);
    f->sm = mlo__client_sysmetrics(f->c);
    assert_non_null(f->sm);
    return f;
}

static void fx_close(fx *f) {
    if (f->c)
        assert_int_equal(mlo_client_close(f->c), MLO_OK);
    if (f->own_fs)
        fake_server_free(f->fs);
    free(f);
}

static mlo_run_t *start(fx *f, const char *name) {
    mlo_run_t *r = NULL;
    assert_int_equal(mlo_start_run(f->c, "sys", name, NULL, &r), MLO_OK);
    /* created on the server before the test reads its id */
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);
    return r;
}

/* metric key of run sid, point i: its value and step (fails when missing) */
static double value_at(fx *f, const char *sid, const char *key, size_t i, int64_t *step) {
    double v;
    int64_t s;
    if (!fake_metric_get(f->fs, sid, key, i, &v, &s, NULL))
        fail_msg("the server has no point %zu of %s", i, key);
    if (step)
        *step = s;
    return v;
}

static void expect(fx *f, const char *sid, const char *key, size_t i, int64_t step, double want) {
    int64_t s;
    double v = value_at(f, sid, key, i, &s);
    if (v != want || s != step)
        fail_msg("%s point %zu: %.17g at step %lld, expected %.17g at step %lld", key, i, v,
                 (long long)s, want, (long long)step);
}

static const long long B0[10] = {100, 0, 100, 800, 0, 0, 0, 0, 0, 0};
static const long long S1[10] = {200, 0, 200, 1400, 0, 0, 0, 0, 0, 0};
static const long long S2[10] = {500, 0, 300, 1500, 100, 0, 0, 0, 50, 0};
static const long long S3[10] = {600, 0, 350, 2000, 100, 0, 0, 0, 50, 0};

static const char *const BASE[8] = {
    "cpu_utilization_percentage", "system_memory_usage_megabytes", "system_memory_usage_percentage",
    "disk_usage_percentage",      "disk_usage_megabytes",          "disk_available_megabytes",
    "network_receive_megabytes",  "network_transmit_megabytes"};

/* Two averages of two samples each, 2 GPUs (the second without power
 * readings), against MLflow's figures. */
static void test_names_averages_steps(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    nvml_set(0, 16000000000ULL, 4000000000ULL, 50, 150000, 300000);
    nvml_set(1, 8000000000ULL, 2000000000ULL, 20, 0, 0);
    fx_opts o = {.server = 1, .on = 1, .samples = 2, .manual = 1, .interval_s = -1};
    fx *f = fx_open(&o);
    mlo_run_t *r = start(f, "averages");
    const char *sid = mlo_run_id(r);
    assert_non_null(fake_status(f->fs, sid)); /* created on the server */

    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0); /* the baselines */
    assert_int_equal(mlo__sysmetrics_gpus(f->sm), 2);
    put_stat(S1);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0); /* one sample of two */
    put_stat(S2);
    put_netdev(501000, 501000, 8000000, 3500000);
    nvml_set(1, 8000000000ULL, 3000000000ULL, 45, 0, 0);
    /* 8 + 5 for gpu 0 + 3 for gpu 1 (no power) */
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 16);
    put_stat(S3);
    put_netdev(501000, 501000, 9000000, 3500000);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);
    put_meminfo(3000000);
    put_netdev(501000, 501000, 10000000, 4000000);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 16);
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);

    assert_int_equal(fake_metric_keys(f->fs, sid, "system/"), 16);
    /* step 0 */
    expect(f, sid, "system/cpu_utilization_percentage", 0, 0, 45.9); /* (25.0 + 66.7) / 2 */
    expect(f, sid, "system/system_memory_usage_megabytes", 0, 0, 8192.0);
    expect(f, sid, "system/system_memory_usage_percentage", 0, 0, 50.0);
    expect(f, sid, "system/disk_usage_percentage", 0, 0, 66.7);
    expect(f, sid, "system/disk_usage_megabytes", 0, 0, 2457.6);
    expect(f, sid, "system/disk_available_megabytes", 0, 0, 1228.8);
    /* network: since the run's first sample, not averaged, not rounded */
    expect(f, sid, "system/network_receive_megabytes", 0, 0, 8501000 / 1e6 - 5001000 / 1e6);
    expect(f, sid, "system/network_transmit_megabytes", 0, 0, 4001000 / 1e6 - 2001000 / 1e6);
    expect(f, sid, "system/gpu_0_memory_usage_percentage", 0, 0, 25.0);
    expect(f, sid, "system/gpu_0_memory_usage_megabytes", 0, 0, 4000.0);
    expect(f, sid, "system/gpu_0_utilization_percentage", 0, 0, 50.0);
    expect(f, sid, "system/gpu_0_power_usage_watts", 0, 0, 150.0);
    expect(f, sid, "system/gpu_0_power_usage_percentage", 0, 0, 50.0);
    expect(f, sid, "system/gpu_1_memory_usage_percentage", 0, 0, 31.2); /* 31.25: ties to even */
    expect(f, sid, "system/gpu_1_memory_usage_megabytes", 0, 0, 2500.0);
    expect(f, sid, "system/gpu_1_utilization_percentage", 0, 0, 32.5);
    assert_int_equal(fake_metric_points(f->fs, sid, "system/gpu_1_power_usage_watts"), 0);
    /* step 1 */
    expect(f, sid, "system/cpu_utilization_percentage", 1, 1, 11.6); /* (23.1 + 0.0) / 2 */
    expect(f, sid, "system/system_memory_usage_megabytes", 1, 1, 8704.0);
    expect(f, sid, "system/system_memory_usage_percentage", 1, 1, 53.1);
    expect(f, sid, "system/network_receive_megabytes", 1, 1, 10501000 / 1e6 - 5001000 / 1e6);
    expect(f, sid, "system/network_transmit_megabytes", 1, 1, 4501000 / 1e6 - 2001000 / 1e6);
    expect(f, sid, "system/gpu_1_memory_usage_percentage", 1, 1, 37.5);
    /* one timestamp per step, from the client's clock */
    int64_t ts0, ts;
    assert_true(
        fake_metric_get(f->fs, sid, "system/cpu_utilization_percentage", 0, NULL, NULL, &ts0));
    for (int k = 0; k < 8; k++) {
        char key[128];
        snprintf(key, sizeof key, "system/%s", BASE[k]);
        assert_true(fake_metric_get(f->fs, sid, key, 0, NULL, NULL, &ts));
        assert_int_equal(ts, ts0);
    }
    /* the disk metrics describe the store's file system */
    assert_string_equal(g_statvfs_path, tmp_path("store"));

    /* the end turns them off: no more rounds for the run */
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);
    assert_int_equal(fake_metric_points(f->fs, sid, "system/cpu_utilization_percentage"), 2);
    assert_string_equal(fake_status(f->fs, sid), "FINISHED");
    assert_int_equal(f->nerr, 0);
    assert_true(nvml_initialized());
    fx_close(f);
    assert_false(nvml_initialized()); /* nvmlShutdown at close */
}

/* Which runs log them: the client's default, the per-run switch; a run
 * switched off mid-average drops the partial average. */
static void test_per_run_switch(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    fx_opts o = {.server = 1, .on = 0, .samples = 2, .manual = 1, .nvml = "", .interval_s = -1};
    fx *f = fx_open(&o);
    mlo_run_t *a = start(f, "a"), *b = start(f, "b"), *c = start(f, "c");
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0); /* no run on: nothing */
    assert_int_equal(mlo_run_set_system_metrics(a, 1), MLO_OK);
    assert_int_equal(mlo_run_set_system_metrics(c, 1), MLO_OK);
    assert_int_equal(mlo_run_set_system_metrics(c, 1), MLO_OK); /* twice: as once */
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);           /* baselines */
    assert_int_equal(mlo__sysmetrics_gpus(f->sm), 0);           /* no NVML: no GPU */
    put_stat(S1);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);
    assert_int_equal(mlo_run_set_system_metrics(a, 0), MLO_OK); /* a's half average: dropped */
    put_stat(S2);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 8); /* c only */
    assert_int_equal(mlo_run_set_system_metrics(a, 1), MLO_OK);
    put_stat(S3);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0); /* c: 1 of 2, a: 1 of 2 */
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 16);
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);
    const char *sa = mlo_run_id(a), *sb = mlo_run_id(b), *sc = mlo_run_id(c);
    assert_int_equal(fake_metric_keys(f->fs, sb, "system/"), 0);
    assert_int_equal(fake_metric_keys(f->fs, sa, "system/"), 8);
    assert_int_equal(fake_metric_keys(f->fs, sc, "system/"), 8);
    assert_int_equal(fake_metric_points(f->fs, sa, "system/cpu_utilization_percentage"), 1);
    assert_int_equal(fake_metric_points(f->fs, sc, "system/cpu_utilization_percentage"), 2);
    expect(f, sa, "system/cpu_utilization_percentage", 0, 0, 11.6); /* S2->S3, S3->S3 */
    expect(f, sc, "system/cpu_utilization_percentage", 0, 0, 45.9);
    expect(f, sc, "system/cpu_utilization_percentage", 1, 1, 11.6);
    /* a's network baseline is its own first sample after it came back */
    expect(f, sa, "system/network_receive_megabytes", 0, 0, 0.0);

    assert_int_equal(mlo_run_set_system_metrics(NULL, 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_client_close(f->c), MLO_OK);
    assert_int_equal(mlo_run_set_system_metrics(a, 1), MLO_ERR_CLOSED);
    f->c = NULL;
    fx_close(f);
}

/* A resumed run continues after the highest step of its system/ metrics
 * on the server (MLflow's resume_logging), turned on by default or later. */
static void test_resume_continues(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    fx_opts o = {.server = 1, .on = 0, .samples = 1, .manual = 1, .nvml = "", .interval_s = -1};
    fx *f = fx_open(&o);
    mlo_run_t *r = start(f, "resumed");
    char sid[64];
    snprintf(sid, sizeof sid, "%s", mlo_run_id(r));
    assert_int_equal(mlo_log_metric(r, "system/cpu_utilization_percentage", 3, 4), MLO_OK);
    assert_int_equal(mlo_log_metric(r, "system/node_1/gpu_0_utilization_percentage", 1, 6), MLO_OK);
    assert_int_equal(mlo_log_metric(r, "loss", 0.5, 100), MLO_OK); /* not a system metric */
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);
    assert_int_equal(mlo_client_close(f->c), MLO_OK);
    f->c = NULL;

    /* a second client over the same server, system metrics on by default:
     * the resumed run goes on at 7 (one after gpu's step 6) */
    fx_opts o2 = {
        .server = 1, .on = 1, .samples = 1, .manual = 1, .nvml = "", .interval_s = -1, .share = f};
    fx *g = fx_open(&o2);
    mlo_run_t *r2 = NULL;
    assert_int_equal(mlo_resume_run(g->c, sid, &r2), MLO_OK);
    assert_int_equal(mlo__sysmetrics_tick(g->sm), 0);
    put_stat(S1);
    assert_int_equal(mlo__sysmetrics_tick(g->sm), 8);
    assert_int_equal(mlo_client_flush(g->c, 10000), MLO_OK);
    expect(g, sid, "system/cpu_utilization_percentage", 1, 7, 25.0);
    assert_int_equal(mlo_client_close(g->c), MLO_OK);
    g->c = NULL;

    /* a third, off by default: switched on later, it goes on at 8 */
    fx_opts o3 = {
        .server = 1, .on = 0, .samples = 1, .manual = 1, .nvml = "", .interval_s = -1, .share = f};
    fx *h = fx_open(&o3);
    mlo_run_t *r3 = NULL;
    assert_int_equal(mlo_resume_run(h->c, sid, &r3), MLO_OK);
    assert_int_equal(mlo__sysmetrics_tick(h->sm), 0); /* off */
    assert_int_equal(mlo_run_set_system_metrics(r3, 1), MLO_OK);
    assert_int_equal(mlo__sysmetrics_tick(h->sm), 0);
    put_stat(S2);
    assert_int_equal(mlo__sysmetrics_tick(h->sm), 8);
    assert_int_equal(mlo_client_flush(h->c, 10000), MLO_OK);
    expect(h, sid, "system/cpu_utilization_percentage", 2, 8, 66.7);
    fx_close(h);
    fx_close(g);
    fx_close(f);
}

/* Offline: MLflow's variables (on, one sample per step, a node id), a
 * cgroup v2 memory limit, the local store; then `mlo sync` uploads the
 * system metrics to the test server like any metric. */
static void test_offline_node_cgroup_sync(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    /* the process's cgroup and its parent: the smaller limit binds */
    put("proc/self/cgroup", "0::/kubepods/pod1\n");
    put("sys/fs/cgroup/kubepods/memory.max", "8192000000\n");
    put("sys/fs/cgroup/kubepods/pod1/memory.max", "4096000000\n");
    put("sys/fs/cgroup/kubepods/pod1/memory.current", "2048000000\n");
    put("sys/fs/cgroup/kubepods/pod1/memory.stat",
        "anon 1000\nfile 2000\nactive_file 5\ninactive_file 1024000000\n");
    nvml_set(0, 16000000000ULL, 4000000000ULL, 50, 150000, 300000);
    nvml_set(1, 8000000000ULL, 2000000000ULL, 20, 0, 0);
    setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true", 1);
    setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1", 1);
    setenv("MLFLOW_SYSTEM_METRICS_NODE_ID", "node_0", 1);
    unsetenv("MLFLOW_TRACKING_URI");
    fx_opts o = {.server = 0, .on = -1, .samples = -1, .manual = 1, .interval_s = -1};
    fx *f = fx_open(&o);
    unsetenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING");
    unsetenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING");
    unsetenv("MLFLOW_SYSTEM_METRICS_NODE_ID");
    mlo_run_t *r = start(f, "offline");
    char lid[64];
    snprintf(lid, sizeof lid, "%s", mlo_run_id(r));
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);
    put_stat(S1);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 16);
    put_stat(S2);
    put_netdev(501000, 501000, 8000000, 3500000);
    nvml_set(1, 8000000000ULL, 3000000000ULL, 45, 0, 0);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 16);
    assert_int_equal(mlo_log_metric(r, "loss", 0.25, 1), MLO_OK);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    fx_close(f);

    /* mlo show: the run's metrics, then the system metrics under their heading */
    char self[PATH_MAX], cmd[3 * PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(sl > 0);
    self[sl] = 0;
    snprintf(cmd, sizeof cmd, "'%s/../src/mlo' show %s '%s' --ascii", dirname(self), lid,
             tmp_path("store"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    const char *mh = strstr(out, "\nMetrics (1)\n"), *sh = strstr(out, "\nSystem metrics (16)\n");
    const char *loss = strstr(out, "  loss "), *cpu = strstr(out, "  system/node_0/cpu_");
    if (!mh || !sh || !loss || !cpu || !(mh < loss && loss < sh && sh < cpu))
        fail_msg("mlo show does not group the system metrics:\n%s", out);

    testsrv *srv = testsrv_start(NULL);
    assert_non_null(srv);
    char err[512] = "";
    int st = mlo__sync_store(tmp_path("store"), testsrv_uri(srv), NULL, NULL, err, sizeof err);
    if (st != MLO_OK)
        fail_msg("sync: %s", err);
    long code = 0;
    char *body = testsrv_get(srv, "/_test/dump", &code);
    assert_non_null(body);
    assert_int_equal(code, 200);
    json_t *d = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(d);
    json_t *run = NULL, *x;
    size_t i;
    json_array_foreach(json_object_get(d, "runs"), i, x) {
        const char *t =
            json_string_value(json_object_get(json_object_get(x, "tags"), "mlo.local_id"));
        if (t && !strcmp(t, lid))
            run = x;
    }
    if (!run)
        fail_msg("run %s not on the server after sync", lid);
    /* the 8 base names, then gpu 0's 5 and gpu 1's 3 (no power readings) */
    static const char *const names[16] = {
        "cpu_utilization_percentage",     "system_memory_usage_megabytes",
        "system_memory_usage_percentage", "disk_usage_percentage",
        "disk_usage_megabytes",           "disk_available_megabytes",
        "network_receive_megabytes",      "network_transmit_megabytes",
        "gpu_0_memory_usage_percentage",  "gpu_0_memory_usage_megabytes",
        "gpu_0_utilization_percentage",   "gpu_0_power_usage_watts",
        "gpu_0_power_usage_percentage",   "gpu_1_memory_usage_percentage",
        "gpu_1_memory_usage_megabytes",   "gpu_1_utilization_percentage"};
    /* each once at steps 0 and 1, from the run's metric history */
    int seen[16][2] = {{0}};
    json_t *m;
    json_array_foreach(json_object_get(run, "metrics"), i, m) {
        const char *key = json_string_value(json_object_get(m, "key"));
        if (strncmp(key, "system/", 7))
            continue;
        if (strncmp(key, "system/node_0/", 14))
            fail_msg("%s: not under the node id", key);
        int64_t step = json_integer_value(json_object_get(m, "step"));
        double v = json_number_value(json_object_get(m, "value"));
        int k = 0;
        while (k < 16 && strcmp(key + 14, names[k]))
            k++;
        if (k == 16 || step < 0 || step > 1) {
            fail_msg("unexpected metric %s at step %lld", key, (long long)step);
            continue;
        }
        seen[k][step]++;
        if (k == 1) /* the cgroup's working set: 2048 MB - 1024 MB inactive file */
            assert_true(v == 1024.0);
        if (k == 2) /* against the pod's 4096 MB limit */
            assert_true(v == 25.0);
        if (k == 0)
            assert_true(v == (step == 0 ? 25.0 : 66.7));
        if (k == 6)
            assert_true(v == (step == 0 ? 0.0 : 8501000 / 1e6 - 5001000 / 1e6));
        if (k == 11)
            assert_true(v == 150.0);
        if (k == 12)
            assert_true(v == 50.0);
        if (k == 13) /* 2 of 8 GB, then 3 of 8 */
            assert_true(v == (step == 0 ? 25.0 : 37.5));
        if (k == 15)
            assert_true(v == (step == 0 ? 20.0 : 45.0));
    }
    for (int k = 0; k < 16; k++)
        for (int st2 = 0; st2 < 2; st2++)
            if (seen[k][st2] != 1)
                fail_msg("system/node_0/%s at step %d: %d points", names[k], st2, seen[k][st2]);
    json_decref(d);
    testsrv_stop(srv);
}

/* cgroup v1's memory controller; a limit above the machine's memory (v1's
 * "unlimited") is no limit: /proc/meminfo's figures.  A missing NVML: no GPU. */
static void test_cgroup_v1_no_nvml(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    put("proc/self/cgroup", "12:cpu,cpuacct:/docker/abc\n5:memory:/docker/abc\n0::/\n");
    put("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "4096000000\n");
    put("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "2048000000\n");
    put("sys/fs/cgroup/memory/docker/abc/memory.stat",
        "cache 5\ninactive_file 7\ntotal_inactive_file 1024000000\n");
    fx_opts o = {.server = 1,
                 .on = 1,
                 .samples = 1,
                 .manual = 1,
                 .nvml = "/nonexistent/libnvidia-ml.so.1",
                 .interval_s = -1};
    fx *f = fx_open(&o);
    mlo_run_t *r = start(f, "v1");
    const char *sid = mlo_run_id(r);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 0);
    assert_int_equal(mlo__sysmetrics_gpus(f->sm), 0);
    put_stat(S1);
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 8);
    put("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
    assert_int_equal(mlo__sysmetrics_tick(f->sm), 8);
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);
    expect(f, sid, "system/system_memory_usage_megabytes", 0, 0, 1024.0);
    expect(f, sid, "system/system_memory_usage_percentage", 0, 0, 25.0);
    expect(f, sid, "system/system_memory_usage_megabytes", 1, 1, 8192.0);
    expect(f, sid, "system/system_memory_usage_percentage", 1, 1, 50.0);
    /* no CPU change between the two last samples: 0 % */
    expect(f, sid, "system/cpu_utilization_percentage", 1, 1, 0.0);
    assert_int_equal(fake_metric_keys(f->fs, sid, "system/gpu"), 0);
    fx_close(f);
}

/* The real sampler thread on this machine's /proc at 20 ms: steps 0, 1,
 * 2, ... of every base metric reach the server, with sane values; close
 * stops the thread. */
static void test_thread_real_sources(void **state) {
    (void)state;
    fx_opts o = {.server = 1,
                 .on = 1,
                 .samples = 1,
                 .manual = 0,
                 .nvml = "",
                 .root = "",
                 .interval_s = 0.02};
    fx *f = fx_open(&o);
    mlo_run_t *r = start(f, "thread");
    const char *sid = mlo_run_id(r);
    const char *cpu = "system/cpu_utilization_percentage";
    /* three rounds of the thread (baselines, then a sample each 20 ms) */
    assert_int_equal(mlo__sysmetrics_wait(f->sm, 3, mlo__clock_mono(NULL) + 30 * MLO_NS_PER_S),
                     MLO_OK);
    assert_true(mlo__sysmetrics_cpu_ns(f->sm) > 0);
    assert_int_equal(mlo_end_run(r, MLO_RUN_FINISHED), MLO_OK);
    assert_int_equal(mlo_client_flush(f->c, 10000), MLO_OK);
    size_t n = fake_metric_points(f->fs, sid, cpu);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        int64_t step;
        double v = value_at(f, sid, cpu, i, &step);
        assert_int_equal(step, (int64_t)i);
        assert_true(v >= 0 && v <= 100);
    }
    for (int k = 0; k < 8; k++) {
        char key[128];
        snprintf(key, sizeof key, "system/%s", BASE[k]);
        if (fake_metric_points(f->fs, sid, key) != n)
            fail_msg("%s: %zu points, cpu has %zu", key, fake_metric_points(f->fs, sid, key), n);
    }
    double pct = value_at(f, sid, "system/system_memory_usage_percentage", 0, NULL);
    assert_true(pct > 0 && pct <= 100);
    assert_true(value_at(f, sid, "system/disk_usage_megabytes", 0, NULL) > 0);
    assert_int_equal(fake_metric_keys(f->fs, sid, "system/"), 8);
    fx_close(f);
}

static int open_status(void) {
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_store_dir(o, tmp_path("store"));
    mlo_client_t *c = NULL;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (c)
        mlo_client_close(c);
    return st;
}

/* MLflow's variables: malformed values refuse the client (MLO_ERR_CONFIG),
 * 0 means the default as in MLflow; the setters' ranges. */
static void test_config(void **state) {
    (void)state;
    unsetenv("MLFLOW_TRACKING_URI");
    static const struct {
        const char *var, *value;
        int st;
    } cases[] = {
        {"MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "maybe", MLO_ERR_CONFIG},
        {"MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "TRUE", MLO_OK},
        {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "abc", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "-1", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.0001", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0", MLO_OK},
        {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5", MLO_OK},
        {"MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1.5", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "-2", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "0", MLO_OK},
        {"MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "5", MLO_OK},
        {"MLFLOW_SYSTEM_METRICS_NODE_ID", "a//b", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_NODE_ID", "../x", MLO_ERR_CONFIG},
        {"MLFLOW_SYSTEM_METRICS_NODE_ID", "rank 3.gpu-node_1", MLO_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv(cases[i].var, cases[i].value, 1);
        int st = open_status();
        unsetenv(cases[i].var);
        if (st != cases[i].st)
            fail_msg("%s=%s: %s, expected %s", cases[i].var, cases[i].value, mlo_strerror(st),
                     mlo_strerror(cases[i].st));
    }
    mlo_options_t *o = mlo_options_new();
    assert_int_equal(mlo_options_set_system_metrics(NULL, 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, NAN, 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, 0, 1), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, 86401, 1),
                     MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, 1, 0), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, 1, 1000001),
                     MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, -1, -1), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_sampling(o, 0.001, 1000000), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_node_id(o, "../x"), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_options_set_system_metrics_node_id(o, "a\tb"), MLO_ERR_INVALID_KEY);
    char longid[300];
    memset(longid, 'n', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    assert_int_equal(mlo_options_set_system_metrics_node_id(o, longid), MLO_ERR_INVALID_KEY);
    assert_int_equal(mlo_options_set_system_metrics_node_id(o, "node_0"), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_node_id(o, ""), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_node_id(o, NULL), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_disk_path(o, ""), MLO_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlo_options_set_system_metrics_disk_path(o, "/"), MLO_OK);
    mlo_options_free(o);
}

/* The option wins over the environment; "" as node id means none. */
static void test_option_over_env(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    setenv("MLFLOW_SYSTEM_METRICS_NODE_ID", "from_env", 1);
    setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false", 1);
    fake_server *fs = fake_server_new(NULL);
    mlo_options_t *opts = mlo_options_new();
    mlo_options_set_tracking_uri(opts, URI);
    mlo__config_set_transport(opts, fake_transport_new, fs);
    mlo_options_set_store_dir(opts, tmp_path("store"));
    assert_int_equal(mlo_options_set_system_metrics(opts, 1), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_node_id(opts, ""), MLO_OK);
    assert_int_equal(mlo_options_set_system_metrics_disk_path(opts, g_tmp), MLO_OK);
    mlo__config_set_sysmetrics_sources(opts, tmp_path("root"), "", fake_statvfs, 1);
    mlo_client_t *c = NULL;
    assert_int_equal(mlo_client_open(opts, &c), MLO_OK);
    mlo_options_free(opts);
    unsetenv("MLFLOW_SYSTEM_METRICS_NODE_ID");
    unsetenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING");
    mlo_run_t *r = NULL;
    assert_int_equal(mlo_start_run(c, "sys", "opt", NULL, &r), MLO_OK);
    mlo_sysmetrics *sm = mlo__client_sysmetrics(c);
    assert_int_equal(mlo__sysmetrics_tick(sm), 0);
    assert_int_equal(mlo__sysmetrics_tick(sm), 8);
    assert_int_equal(mlo_client_flush(c, 10000), MLO_OK);
    assert_int_equal(fake_metric_points(fs, mlo_run_id(r), "system/disk_usage_percentage"), 1);
    assert_string_equal(g_statvfs_path, g_tmp);
    assert_int_equal(mlo_client_close(c), MLO_OK);
    fake_server_free(fs);
}

/* The sampler alone, with an emit callback of the test's: switching a run
 * off from inside the callback (an error callback ending a run) does not
 * deadlock; switching it off from another thread waits for the round that
 * is emitting, so nothing of the run follows. */
typedef struct rec {
    mlo_sysmetrics *s;
    _Atomic int n;
    int self_off;      /* the callback switches its run off */
    _Atomic int block; /* the callback waits for `release` (first call) */
    _Atomic int entered, release;
} rec;

static int rec_emit(void *ctx, uint32_t run, const char *key, size_t klen, double value,
                    int64_t step, int64_t ts_ms) {
    rec *e = ctx;
    (void)key, (void)klen, (void)value, (void)step, (void)ts_ms;
    atomic_fetch_add(&e->n, 1);
    if (e->self_off)
        assert_int_equal(mlo__sysmetrics_set(e->s, run, 0, -1), MLO_OK);
    if (atomic_exchange(&e->block, 0)) {
        atomic_store(&e->entered, 1);
        while (!atomic_load(&e->release))
            sched_yield();
    }
    return MLO_OK;
}

typedef struct offer {
    rec *e;
    _Atomic int calling, returned_before_release;
} offer;

static void *switch_off(void *arg) {
    offer *o = arg;
    atomic_store(&o->calling, 1);
    assert_int_equal(mlo__sysmetrics_set(o->e->s, 1, 0, -1), MLO_OK);
    atomic_store(&o->returned_before_release, !atomic_load(&o->e->release));
    return NULL;
}

static void *tick_thread(void *arg) {
    rec *e = arg;
    mlo__sysmetrics_tick(e->s);
    return NULL;
}

static void test_switch_off_while_emitting(void **state) {
    (void)state;
    put_stat(B0);
    put_meminfo(4000000);
    put_netdev(1000, 1000, 5000000, 2000000);
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_system_metrics_sampling(o, -1, 1);
    mlo__config_set_sysmetrics_sources(o, tmp_path("root"), "", fake_statvfs, 1);
    mlo_config cfg;
    char err[256];
    assert_int_equal(mlo__config_resolve(o, &cfg, err, sizeof err), MLO_OK);
    mlo_options_free(o);
    mlo_env env;
    mlo__env_init(&env, &cfg);
    rec e = {0};
    e.s = mlo__sysmetrics_new(&env, "/", rec_emit, &e);
    assert_non_null(e.s);

    /* from inside the callback: the round goes on, the run is off after it */
    assert_int_equal(mlo__sysmetrics_set(e.s, 0, 1, -1), MLO_OK);
    assert_int_equal(mlo__sysmetrics_tick(e.s), 0);
    e.self_off = 1;
    assert_int_equal(mlo__sysmetrics_tick(e.s), 8);
    e.self_off = 0;
    assert_int_equal(mlo__sysmetrics_tick(e.s), 0); /* no run on */

    /* from another thread while a round emits: set waits for the round */
    assert_int_equal(mlo__sysmetrics_set(e.s, 1, 1, -1), MLO_OK);
    assert_int_equal(mlo__sysmetrics_tick(e.s), 0); /* the baselines again */
    atomic_store(&e.block, 1);
    pthread_t t, u;
    assert_int_equal(pthread_create(&t, NULL, tick_thread, &e), 0);
    while (!atomic_load(&e.entered))
        sched_yield();
    offer of = {.e = &e};
    assert_int_equal(pthread_create(&u, NULL, switch_off, &of), 0);
    while (!atomic_load(&of.calling))
        sched_yield();
    for (int i = 0; i < 10000; i++) /* give it every chance to return too early */
        sched_yield();
    atomic_store(&e.release, 1);
    pthread_join(t, NULL);
    pthread_join(u, NULL);
    assert_false(atomic_load(&of.returned_before_release));
    assert_int_equal(atomic_load(&e.n), 16);
    assert_int_equal(mlo__sysmetrics_tick(e.s), 0);
    mlo__sysmetrics_free(e.s);
    mlo__config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_averages_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_run_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_node_cgroup_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v1_no_nvml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_real_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_over_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_switch_off_while_emitting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
