/*
 * mlo_sysmetrics.c - system metrics as MLflow's SystemMetricsMonitor logs
 * them (mlflow/system_metrics/): the same names, units, averages and steps,
 * read from Linux's own files instead of psutil and from NVIDIA's NVML
 * loaded at run time instead of pynvml.
 *
 * Owns: one client's sampler: the runs that asked for system metrics (by
 * run index, each with its next step and, while on, its accumulators), the
 * sampler thread (an mlo_worker, started by the first run switched on, idle
 * while no run is on), and what sampling needs between rounds (the last
 * CPU times, the network counters, the cgroup found, the NVML library).
 *
 * What a round does (MLflow's monitor loop, shared by every run):
 *  - every interval it reads the machine once (a sample) and adds it to
 *    each run that is on; a run switched on gets its first sample at the
 *    next round;
 *  - when a run has `samples` samples, it logs their averages, each
 *    rounded to one decimal as Python's round(x, 1) (exactly: through the
 *    correctly rounded "%.1f"), at the run's next step (0, 1, 2, ...), all
 *    with the round's timestamp; network metrics are not averaged: the
 *    traffic since the run's first sample, in MB (MLflow's NetworkMonitor);
 *  - switching a run off drops its partial average (MLflow's finish()
 *    discards it too).
 * The first round after no run was on only reads the CPU baseline, so
 * every CPU sample covers one interval (psutil.cpu_percent() between two
 * calls).
 *
 * Sources (psutil's arithmetic, so values match MLflow's on one machine):
 *   cpu_utilization_percentage: /proc/stat's "cpu" line: busy / total of
 *     the per-field deltas (negative deltas as 0), busy = total - idle -
 *     iowait, total without guest and guest_nice; rounded per sample.
 *   system_memory_usage_megabytes/_percentage: /proc/meminfo: used = total
 *     - free - buffers - cached - SReclaimable (total - free if negative),
 *     / 1e6 and / total * 100.  In a cgroup with a memory limit below
 *     MemTotal (a container): the cgroup's usage minus its inactive file
 *     cache (the working set `docker stats` shows) against the limit; v2
 *     (memory.max, memory.current) or v1 (memory.limit_in_bytes,
 *     memory.usage_in_bytes), the smallest limit on the way from the
 *     process's cgroup up to the mount's root.
 *   disk_usage_percentage/_megabytes, disk_available_megabytes: statvfs of
 *     the disk path: used = (blocks - bfree) * frsize, available = bavail *
 *     frsize, percent = used / (used + available) * 100 rounded per sample.
 *   network_receive/transmit_megabytes: /proc/net/dev, every interface
 *     (psutil.net_io_counters() sums them all, loopback included); a
 *     counter that goes down (an interface gone) adds nothing.
 *   gpu_{i}_*: NVML (dlopen("libnvidia-ml.so.1") on the sampler thread at
 *     its first round; absent without it, silently): memory used / total *
 *     100 rounded per sample, used / 1e6, utilization.gpu, power mW / 1000
 *     and power / enforced limit * 100.  A call that fails leaves its
 *     metrics out of that sample (MLflow catches NVMLError per group).
 *
 * Threads: mlo__sysmetrics_set from any thread (under `lock`); the
 * sampling state (below "the sampling thread's") is touched by one thread
 * at a time: the sampler's own, or with cfg->sys_manual (no thread) the
 * test's that calls mlo__sysmetrics_tick.  A round accumulates under
 * `lock`, then emits its averages with the lock released (the emit
 * callback pushes into the client's queue, may wait for room there as any
 * log call does, and may call the program's error callback); switching a
 * run off waits for a round that is emitting, so nothing of the run
 * follows (its end is queued behind its last system metrics).  Not waited
 * for on the round's own thread (an error callback that ends a run).
 */
#define _GNU_SOURCE
#include "mlo_sysmetrics.h"

#include "mlo_config.h"
#include "mlo_worker.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* The metrics, in MLflow's order (cpu, disk, network, gpu monitors). */
enum { M_CPU, M_MEM_MB, M_MEM_PCT, M_DISK_PCT, M_DISK_MB, M_DISK_AVAIL, M_NET_RX, M_NET_TX, M_GPU };
enum { G_MEM_PCT, G_MEM_MB, G_UTIL, G_POWER_W, G_POWER_PCT, G_COUNT };
#define SLOTS (M_GPU + G_COUNT * MLO_SYS_MAX_GPUS)
#define KEY_MAX 256          /* a key is at most 250 characters (checked at config) */
#define BUF_SIZE (64 * 1024) /* /proc/net/dev of a host with many interfaces */

static const char *const base_names[M_GPU] = {
    "cpu_utilization_percentage", "system_memory_usage_megabytes", "system_memory_usage_percentage",
    "disk_usage_percentage",      "disk_usage_megabytes",          "disk_available_megabytes",
    "network_receive_megabytes",  "network_transmit_megabytes"};
static const char *const gpu_names[G_COUNT] = {"memory_usage_percentage", "memory_usage_megabytes",
                                               "utilization_percentage", "power_usage_watts",
                                               "power_usage_percentage"};

/* ---- NVML, declared here (no header, no build dependency) ----------------- */

typedef struct nvml_device *nvml_dev;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory; /* nvmlMemory_t */
typedef struct {
    unsigned int gpu, memory;
} nvml_util; /* nvmlUtilization_t */

typedef struct nvml {
    void *lib;
    int (*shutdown)(void);
    int (*memory)(nvml_dev, nvml_memory *);
    int (*util)(nvml_dev, nvml_util *);
    int (*power)(nvml_dev, unsigned *);
    int (*limit)(nvml_dev, unsigned *);
    nvml_dev dev[MLO_SYS_MAX_GPUS];
    int n;
} nvml;

/* ---- the sampler -------------------------------------------------------- */

/* A run's sums while it is on. */
typedef struct sys_acc {
    double sum[SLOTS];
    uint32_t n[SLOTS];
    uint64_t net_base[2]; /* the network counters at its first sample */
    double net_last[2];
    int count; /* samples in the current average */
    int fresh; /* no sample yet */
} sys_acc;

typedef struct sys_run {
    sys_acc *acc; /* NULL: off */
    int64_t next_step;
} sys_run;

/* One average to emit. */
typedef struct sys_out {
    uint32_t run;
    int slot;
    double value;
    int64_t step;
} sys_out;

/* /proc/stat's cpu fields: user nice system idle iowait irq softirq steal
 * guest guest_nice (psutil's scputimes on Linux). */
#define CPU_FIELDS 10

struct mlo_sysmetrics {
    mlo_env *env;
    mlo_sysmetrics_emit_fn emit;
    void *emit_ctx;
    int64_t interval_ns;
    int samples;
    char *disk_path;
    const char *root;     /* "" for the real /proc and /sys */
    long hz;              /* /proc/stat's ticks per second */
    char prefix[KEY_MAX]; /* "system/" or "system/<node id>/" */
    char keys[SLOTS][KEY_MAX];
    size_t klen[SLOTS];

    pthread_mutex_t lock; /* runs, cap, non, started, ngpu, samples_taken, emitting */
    pthread_cond_t cond;  /* a round ended (mlo__sysmetrics_wait, set waiting for emits) */
    uint64_t samples_taken;
    int emitting; /* a round is emitting (outside the lock) on thread `emitter` */
    pthread_t emitter;
    sys_run *runs; /* by run index */
    uint32_t cap;
    uint32_t non; /* runs on */
    int started;
    int ngpu;
    mlo_worker w;

    /* the sampling thread's (see the top) */
    int primed; /* the CPU baseline is read: rounds sample */
    int probed; /* cgroup and NVML looked for */
    int64_t next_due;
    double cpu_prev[CPU_FIELDS];
    int cpu_have;
    uint64_t net_raw[2], net_mono[2]; /* rx, tx bytes: as read, and never going down */
    int net_have;
    int cg_version; /* 0 none, 1 or 2 */
    char cg_dir[PATH_MAX];
    nvml gpu;
    char *buf;
    sys_out *out; /* a round's averages, emitted after the lock is released */
    size_t outcap;
};

/* Python's round(x, 1): the correctly rounded decimal, ties to even on
 * the exact binary value, which glibc's printf also gives. */
static double round1(double x) {
    if (!isfinite(x))
        return x;
    char b[400];
    snprintf(b, sizeof b, "%.1f", x);
    return strtod(b, NULL);
}

/* The file root+rel into s->buf (NUL-terminated, at most BUF_SIZE - 1
 * bytes).  Its length, or -1. */
static ssize_t slurp(mlo_sysmetrics *s, const char *dir, const char *rel) {
    char path[PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s%s", dir, rel) >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n < BUF_SIZE - 1) {
        ssize_t r = read(fd, s->buf + n, BUF_SIZE - 1 - n);
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    s->buf[n] = 0;
    return (ssize_t)n;
}

/* "key <number>" lines (meminfo's "MemTotal:  123 kB", memory.stat's
 * "inactive_file 123"): the number after the line that starts with key. */
static int field(const char *text, const char *key, uint64_t *out) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == '\t')) {
            char *end;
            unsigned long long v = strtoull(p + kl, &end, 10);
            if (end == p + kl)
                return -1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* A cgroup file holding one number ("max" and anything else: -1). */
static int number_file(mlo_sysmetrics *s, const char *dir, const char *name, uint64_t *out) {
    if (slurp(s, dir, name) <= 0)
        return -1;
    char *end;
    if (s->buf[0] < '0' || s->buf[0] > '9')
        return -1;
    unsigned long long v = strtoull(s->buf, &end, 10);
    if (*end && *end != '\n')
        return -1;
    *out = v;
    return 0;
}

/* ---- CPU ---------------------------------------------------------------------- */

static int read_cpu(mlo_sysmetrics *s, double t[CPU_FIELDS]) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/proc", s->root);
    if (slurp(s, dir, "/stat") <= 0 || strncmp(s->buf, "cpu ", 4))
        return -1;
    const char *p = s->buf + 4;
    int i = 0;
    for (; i < CPU_FIELDS; i++) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p)
            break;
        t[i] = (double)v / (double)s->hz; /* psutil's seconds */
        p = end;
    }
    if (i < 4)
        return -1;
    for (; i < CPU_FIELDS; i++)
        t[i] = 0;
    return 0;
}

/* psutil.cpu_percent between two readings. */
static double cpu_percent(const double a[CPU_FIELDS], const double b[CPU_FIELDS]) {
    double d[CPU_FIELDS], tot = 0;
    for (int i = 0; i < CPU_FIELDS; i++) {
        d[i] = b[i] - a[i];
        if (d[i] < 0)
            d[i] = 0;
        tot += d[i];
    }
    tot -= d[8]; /* guest and guest_nice are in user and nice already */
    tot -= d[9];
    double busy = tot - d[3] - d[4];
    if (tot == 0)
        return 0.0;
    return round1(busy / tot * 100);
}

/* ---- memory --------------------------------------------------------------------- */

/* The cgroup whose memory limit binds the process: v2 first, then v1's
 * memory controller; the smallest limit from the process's cgroup up. */
static void probe_cgroup(mlo_sysmetrics *s) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/proc/self", s->root);
    if (slurp(s, dir, "/cgroup") <= 0)
        return;
    char v2[PATH_MAX] = "", v1[PATH_MAX] = "";
    int have2 = 0, have1 = 0;
    for (char *line = s->buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1) {
                snprintf(v2, sizeof v2, "%s", c2 + 1);
                have2 = 1;
            } else {
                /* a controller list such as "cpu,memory" */
                for (char *p = c1 + 1; p < c2;) {
                    char *q = memchr(p, ',', (size_t)(c2 - p));
                    size_t len = (size_t)((q ? q : c2) - p);
                    if (len == 6 && !strncmp(p, "memory", 6)) {
                        snprintf(v1, sizeof v1, "%s", c2 + 1);
                        have1 = 1;
                    }
                    p = q ? q + 1 : c2;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    for (int version = 2; version >= 1; version--) {
        if (!(version == 2 ? have2 : have1))
            continue;
        char mount[PATH_MAX], path[PATH_MAX];
        snprintf(mount, sizeof mount, "%s/sys/fs/cgroup%s", s->root, version == 2 ? "" : "/memory");
        const char *rel = version == 2 ? v2 : v1;
        if ((size_t)snprintf(path, sizeof path, "%s%s", mount, strcmp(rel, "/") ? rel : "") >=
            sizeof path)
            continue;
        const char *limit = version == 2 ? "/memory.max" : "/memory.limit_in_bytes";
        uint64_t best = UINT64_MAX;
        for (;;) {
            uint64_t v;
            if (number_file(s, path, limit, &v) == 0 && v < best) {
                best = v;
                snprintf(s->cg_dir, sizeof s->cg_dir, "%s", path);
                s->cg_version = version;
            }
            if (strlen(path) <= strlen(mount))
                break;
            char *slash = strrchr(path + strlen(mount), '/');
            if (!slash)
                break;
            *slash = 0;
        }
        if (s->cg_version)
            return;
    }
}

/* used and total memory, bytes: the cgroup's when its limit is below the
 * machine's memory, else /proc/meminfo's (psutil's "used"). */
static int read_memory(mlo_sysmetrics *s, double *used, double *total) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/proc", s->root);
    uint64_t mt, mf, bu = 0, ca = 0, sr = 0;
    if (slurp(s, dir, "/meminfo") <= 0 || field(s->buf, "MemTotal:", &mt) ||
        field(s->buf, "MemFree:", &mf))
        return -1;
    field(s->buf, "Buffers:", &bu);
    field(s->buf, "Cached:", &ca);
    field(s->buf, "SReclaimable:", &sr);
    mt *= 1024, mf *= 1024, bu *= 1024, ca *= 1024, sr *= 1024;
    if (s->cg_version) {
        int v2 = s->cg_version == 2;
        uint64_t lim, cur, inactive = 0;
        if (number_file(s, s->cg_dir, v2 ? "/memory.max" : "/memory.limit_in_bytes", &lim) == 0 &&
            lim > 0 && lim < mt &&
            number_file(s, s->cg_dir, v2 ? "/memory.current" : "/memory.usage_in_bytes", &cur) ==
                0) {
            if (slurp(s, s->cg_dir, "/memory.stat") > 0)
                field(s->buf, v2 ? "inactive_file" : "total_inactive_file", &inactive);
            *used = (double)(cur > inactive ? cur - inactive : 0);
            *total = (double)lim;
            return 0;
        }
    }
    int64_t u = (int64_t)mt - (int64_t)mf - (int64_t)(ca + sr) - (int64_t)bu;
    if (u < 0)
        u = (int64_t)mt - (int64_t)mf;
    *used = (double)u;
    *total = (double)mt;
    return 0;
}

/* ---- network ------------------------------------------------------------------------ */

static void read_net(mlo_sysmetrics *s) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/proc/net", s->root);
    if (slurp(s, dir, "/dev") <= 0)
        return;
    uint64_t rx = 0, tx = 0;
    int any = 0;
    for (const char *line = s->buf; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *colon = strchr(line, ':');
        if (colon && (!nl || colon < nl) && !strchr(line, '|')) {
            /* "iface: rx_bytes packets errs drop fifo frame compressed
             * multicast tx_bytes ..." */
            const char *p = colon + 1;
            uint64_t f[9];
            int i = 0;
            for (; i < 9; i++) {
                char *end;
                f[i] = strtoull(p, &end, 10);
                if (end == p)
                    break;
                p = end;
            }
            if (i == 9) {
                rx += f[0];
                tx += f[8];
                any = 1;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!any)
        return;
    uint64_t raw[2] = {rx, tx};
    for (int k = 0; k < 2; k++) {
        if (!s->net_have)
            s->net_mono[k] = raw[k];
        else if (raw[k] >= s->net_raw[k])
            s->net_mono[k] += raw[k] - s->net_raw[k];
        s->net_raw[k] = raw[k];
    }
    s->net_have = 1;
}

/* ---- GPUs ------------------------------------------------------------------------------- */

#define SYM(lib, name, dst) (*(void **)(&(dst)) = dlsym((lib), (name)))

static void load_nvml(mlo_sysmetrics *s) {
    const char *path = s->env->cfg->sys_nvml;
    if (path && !*path)
        return;
    void *lib = dlopen(path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return;
    int (*init)(void) = NULL;
    int (*count)(unsigned *) = NULL;
    int (*handle)(unsigned, nvml_dev *) = NULL;
    nvml *g = &s->gpu;
    if (!SYM(lib, "nvmlInit_v2", init))
        SYM(lib, "nvmlInit", init);
    if (!SYM(lib, "nvmlDeviceGetCount_v2", count))
        SYM(lib, "nvmlDeviceGetCount", count);
    if (!SYM(lib, "nvmlDeviceGetHandleByIndex_v2", handle))
        SYM(lib, "nvmlDeviceGetHandleByIndex", handle);
    SYM(lib, "nvmlShutdown", g->shutdown);
    SYM(lib, "nvmlDeviceGetMemoryInfo", g->memory);
    SYM(lib, "nvmlDeviceGetUtilizationRates", g->util);
    SYM(lib, "nvmlDeviceGetPowerUsage", g->power);
    SYM(lib, "nvmlDeviceGetEnforcedPowerLimit", g->limit);
    unsigned n = 0;
    if (!init || !count || !handle || init() != 0) {
        dlclose(lib);
        memset(g, 0, sizeof *g);
        return;
    }
    g->lib = lib;
    if (count(&n) != 0)
        n = 0;
    for (unsigned i = 0; i < n && g->n < MLO_SYS_MAX_GPUS; i++)
        if (handle(i, &g->dev[g->n]) == 0)
            g->n++;
        else
            break; /* keep gpu_{i} numbered as NVML numbers them */
    for (int i = 0; i < g->n; i++)
        for (int m = 0; m < G_COUNT; m++) {
            int slot = M_GPU + i * G_COUNT + m;
            s->klen[slot] =
                (size_t)snprintf(s->keys[slot], KEY_MAX, "%sgpu_%d_%s", s->prefix, i, gpu_names[m]);
        }
    pthread_mutex_lock(&s->lock);
    s->ngpu = g->n;
    pthread_mutex_unlock(&s->lock);
}

static void read_gpus(mlo_sysmetrics *s, double *v, uint8_t *have) {
    nvml *g = &s->gpu;
    for (int i = 0; i < g->n; i++) {
        double *gv = v + M_GPU + i * G_COUNT;
        uint8_t *gh = have + M_GPU + i * G_COUNT;
        nvml_memory m;
        if (g->memory && g->memory(g->dev[i], &m) == 0 && m.total) {
            gv[G_MEM_PCT] = round1((double)m.used / (double)m.total * 100);
            gv[G_MEM_MB] = (double)m.used / 1e6;
            gh[G_MEM_PCT] = gh[G_MEM_MB] = 1;
        }
        nvml_util u;
        if (g->util && g->util(g->dev[i], &u) == 0) {
            gv[G_UTIL] = (double)u.gpu;
            gh[G_UTIL] = 1;
        }
        unsigned mw, lim;
        if (g->power && g->limit && g->power(g->dev[i], &mw) == 0 &&
            g->limit(g->dev[i], &lim) == 0 && lim) {
            gv[G_POWER_W] = (double)mw / 1000;
            gv[G_POWER_PCT] = (double)mw / (double)lim * 100;
            gh[G_POWER_W] = gh[G_POWER_PCT] = 1;
        }
    }
}

/* ---- rounds -------------------------------------------------------------------------------- */

static int statvfs_of(mlo_sysmetrics *s, struct statvfs *st) {
    int (*fn)(const char *, struct statvfs *) = s->env->cfg->sys_statvfs;
    return fn ? fn(s->disk_path, st) : statvfs(s->disk_path, st);
}

/* The baselines: cgroup and NVML once, the CPU times and network counters
 * at every start (after no run was on). */
static void prime(mlo_sysmetrics *s) {
    if (!s->probed) {
        probe_cgroup(s);
        load_nvml(s);
        s->probed = 1;
    }
    s->cpu_have = read_cpu(s, s->cpu_prev) == 0;
    read_net(s);
}

/* One sample, added to every run that is on; the averages that are
 * complete are emitted.  Returns the number of metrics emitted. */
static int sample(mlo_sysmetrics *s) {
    double v[SLOTS];
    uint8_t have[SLOTS];
    memset(have, 0, sizeof have);

    double cpu[CPU_FIELDS];
    if (read_cpu(s, cpu) == 0) {
        if (s->cpu_have) {
            v[M_CPU] = cpu_percent(s->cpu_prev, cpu);
            have[M_CPU] = 1;
        }
        memcpy(s->cpu_prev, cpu, sizeof cpu);
        s->cpu_have = 1;
    }
    double used, total;
    if (read_memory(s, &used, &total) == 0 && total > 0) {
        v[M_MEM_MB] = used / 1e6;
        v[M_MEM_PCT] = used / total * 100;
        have[M_MEM_MB] = have[M_MEM_PCT] = 1;
    }
    struct statvfs st;
    if (statvfs_of(s, &st) == 0) {
        uint64_t used_b = (uint64_t)(st.f_blocks - st.f_bfree) * st.f_frsize;
        uint64_t avail_b = (uint64_t)st.f_bavail * st.f_frsize;
        double total_user = (double)(used_b + avail_b);
        v[M_DISK_PCT] = total_user > 0 ? round1((double)used_b / total_user * 100) : 0.0;
        v[M_DISK_MB] = (double)used_b / 1e6;
        v[M_DISK_AVAIL] = (double)avail_b / 1e6;
        have[M_DISK_PCT] = have[M_DISK_MB] = have[M_DISK_AVAIL] = 1;
    }
    read_net(s);
    read_gpus(s, v, have);
    int64_t ts = mlo__env_now_ms(s->env);

    size_t nout = 0;
    pthread_mutex_lock(&s->lock);
    int room = 1;
    if (s->non && s->outcap < (size_t)s->non * SLOTS) {
        sys_out *o = realloc(s->out, (size_t)s->non * SLOTS * sizeof *o);
        if (o) {
            s->out = o;
            s->outcap = (size_t)s->non * SLOTS;
        } else {
            room = 0;
        }
    }
    for (uint32_t r = 0; r < s->cap; r++) {
        sys_acc *a = s->runs[r].acc;
        if (!a)
            continue;
        if (a->fresh && s->net_have) {
            memcpy(a->net_base, s->net_mono, sizeof a->net_base);
            a->fresh = 0;
        }
        for (int k = 0; k < SLOTS; k++) {
            if (k == M_NET_RX || k == M_NET_TX)
                continue;
            if (have[k]) {
                a->sum[k] += v[k];
                a->n[k]++;
            }
        }
        if (s->net_have && !a->fresh)
            for (int k = 0; k < 2; k++) {
                /* MLflow: bytes / 1e6 - initial bytes / 1e6 */
                a->net_last[k] = (double)s->net_mono[k] / 1e6 - (double)a->net_base[k] / 1e6;
                a->n[M_NET_RX + k] = 1;
            }
        if (++a->count < s->samples)
            continue;
        if (room) {
            int64_t step = s->runs[r].next_step++;
            for (int k = 0; k < SLOTS; k++)
                if (a->n[k])
                    s->out[nout++] =
                        (sys_out){r, k,
                                  k == M_NET_RX || k == M_NET_TX ? a->net_last[k - M_NET_RX]
                                                                 : round1(a->sum[k] / a->n[k]),
                                  step};
        } /* else out of memory: this average is lost, the step not used */
        memset(a->sum, 0, sizeof a->sum);
        memset(a->n, 0, sizeof a->n);
        a->count = 0;
    }
    s->emitting = 1;
    s->emitter = pthread_self();
    pthread_mutex_unlock(&s->lock);
    if (!room)
        mlo__env_report(s->env, MLO_ERR_NO_MEMORY, 1, "system metrics: out of memory, a step lost");

    /* outside the lock: a push may wait for room in the queue, and the error
     * callback it may call may switch runs (set does not wait for its own
     * thread's round) */
    for (size_t i = 0; i < nout; i++) {
        const sys_out *o = &s->out[i];
        s->emit(s->emit_ctx, o->run, s->keys[o->slot], s->klen[o->slot], o->value, o->step, ts);
    }

    pthread_mutex_lock(&s->lock);
    s->emitting = 0;
    s->samples_taken++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return (int)nout;
}

static uint32_t runs_on(mlo_sysmetrics *s) {
    pthread_mutex_lock(&s->lock);
    uint32_t n = s->non;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int mlo__sysmetrics_tick(mlo_sysmetrics *s) {
    if (!runs_on(s)) {
        s->primed = 0;
        return 0;
    }
    if (!s->primed) {
        prime(s);
        s->primed = 1;
        return 0;
    }
    return sample(s);
}

static int64_t worker_run(void *ctx, mlo_worker *w) {
    mlo_sysmetrics *s = ctx;
    if (mlo__worker_stopping(w))
        return MLO_WORKER_EXIT;
    if (!runs_on(s)) {
        s->primed = 0; /* the next start reads fresh baselines */
        return MLO_WORKER_IDLE;
    }
    int64_t now = mlo__env_mono(s->env);
    if (!s->primed) {
        prime(s);
        s->primed = 1;
        s->next_due = now + s->interval_ns;
        return s->interval_ns;
    }
    if (now < s->next_due)
        return s->next_due - now;
    sample(s);
    s->next_due += s->interval_ns;
    now = mlo__env_mono(s->env);
    if (s->next_due <= now) /* a round took longer than the interval: skip, no burst */
        s->next_due = now + s->interval_ns;
    return s->next_due - now;
}

static const mlo_worker_ops worker_ops = {.name = "mlo-sysmetrics", .run = worker_run};

/* ---- the calls ------------------------------------------------------------------------------- */

mlo_sysmetrics *mlo__sysmetrics_new(mlo_env *env, const char *disk_path,
                                    mlo_sysmetrics_emit_fn emit, void *emit_ctx) {
    mlo_sysmetrics *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const mlo_config *cfg = env->cfg;
    s->env = env;
    s->emit = emit;
    s->emit_ctx = emit_ctx;
    s->interval_ns = (int64_t)(cfg->sys_interval_s * 1e9);
    if (s->interval_ns < 1000000)
        s->interval_ns = 1000000;
    s->samples = cfg->sys_samples > 0 ? cfg->sys_samples : 1;
    s->root = cfg->sys_root ? cfg->sys_root : "";
    s->disk_path = strdup(disk_path ? disk_path : "/");
    s->buf = malloc(BUF_SIZE);
    if (!s->disk_path || !s->buf) {
        free(s->disk_path);
        free(s->buf);
        free(s);
        return NULL;
    }
    long hz = sysconf(_SC_CLK_TCK);
    s->hz = hz > 0 ? hz : 100;
    const char *node = cfg->sys_node_id;
    snprintf(s->prefix, sizeof s->prefix, "system/%s%s", node ? node : "", node ? "/" : "");
    for (int k = 0; k < M_GPU; k++)
        s->klen[k] = (size_t)snprintf(s->keys[k], KEY_MAX, "%s%s", s->prefix, base_names[k]);
    pthread_mutex_init(&s->lock, NULL);
    mlo__clock_cond_init(&s->cond);
    return s;
}

int mlo__sysmetrics_set(mlo_sysmetrics *s, uint32_t run, int on, int64_t next_step) {
    int st = MLO_OK;
    pthread_mutex_lock(&s->lock);
    if (run >= s->cap) {
        if (!on && next_step < 0)
            goto out; /* a run never seen, off: nothing to remember */
        uint32_t cap = s->cap ? s->cap : 16;
        while (cap <= run)
            cap *= 2;
        sys_run *nr = realloc(s->runs, (size_t)cap * sizeof *nr);
        if (!nr) {
            st = MLO_ERR_NO_MEMORY;
            goto out;
        }
        memset(nr + s->cap, 0, (size_t)(cap - s->cap) * sizeof *nr);
        s->runs = nr;
        s->cap = cap;
    }
    sys_run *r = &s->runs[run];
    if (next_step >= 0)
        r->next_step = next_step;
    if (on && !r->acc) {
        if (!s->started && !s->env->cfg->sys_manual) {
            if (mlo__worker_start(&s->w, &worker_ops, s) != 0) {
                mlo__worker_stop(&s->w, 0); /* frees what start made */
                mlo__env_report(s->env, MLO_ERR_NO_MEMORY, 1,
                                "system metrics: cannot start the sampler thread");
                st = MLO_ERR_NO_MEMORY;
                goto out;
            }
            s->started = 1;
        }
        if (!(r->acc = calloc(1, sizeof *r->acc))) {
            st = MLO_ERR_NO_MEMORY;
            goto out;
        }
        r->acc->fresh = 1;
        /* the sampler may sleep without a due time while no run is on */
        if (s->non++ == 0 && s->started)
            mlo__worker_wake(&s->w);
    } else if (!on && r->acc) {
        free(r->acc);
        r->acc = NULL;
        s->non--;
    }
    /* off: a round emitting now may hold averages of this run; once it is
     * done none follows (not waited for on the round's own thread: an
     * error callback of its pushes) */
    while (!on && s->emitting && !pthread_equal(s->emitter, pthread_self()))
        pthread_cond_wait(&s->cond, &s->lock);
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

int mlo__sysmetrics_wait(mlo_sysmetrics *s, uint64_t n, int64_t deadline_ns) {
    pthread_mutex_lock(&s->lock);
    while (s->samples_taken < n && mlo__clock_mono(NULL) < deadline_ns) {
        struct timespec abs = mlo__clock_abs(deadline_ns);
        pthread_cond_timedwait(&s->cond, &s->lock, &abs);
    }
    int ok = s->samples_taken >= n;
    pthread_mutex_unlock(&s->lock);
    return ok ? MLO_OK : MLO_ERR_TIMEOUT;
}

int mlo__sysmetrics_gpus(mlo_sysmetrics *s) {
    pthread_mutex_lock(&s->lock);
    int n = s->ngpu;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int64_t mlo__sysmetrics_cpu_ns(mlo_sysmetrics *s) {
    int64_t ns = 0;
    pthread_mutex_lock(&s->lock);
    clockid_t cid;
    struct timespec ts;
    if (s->started && pthread_getcpuclockid(s->w.thread, &cid) == 0 && clock_gettime(cid, &ts) == 0)
        ns = (int64_t)ts.tv_sec * MLO_NS_PER_S + ts.tv_nsec;
    pthread_mutex_unlock(&s->lock);
    return ns;
}

void mlo__sysmetrics_free(mlo_sysmetrics *s) {
    if (!s)
        return;
    if (s->started)
        mlo__worker_stop(&s->w, 0);
    if (s->gpu.lib) {
        if (s->gpu.shutdown)
            s->gpu.shutdown();
        dlclose(s->gpu.lib);
    }
    for (uint32_t r = 0; r < s->cap; r++)
        free(s->runs[r].acc);
    free(s->runs);
    free(s->out);
    free(s->disk_path);
    free(s->buf);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
