/*
 * fake_nvml.c - a stand-in for NVIDIA's libnvidia-ml.so.1 with the entry
 * points mlo's sampler loads (src/common/mlo_sysmetrics.c), built by the
 * tests as a shared library: two GPUs whose values the test sets through
 * fake_nvml_set (found with dlsym on the same handle the sampler opened,
 * dlopen giving one instance per path).  Every NVML call is counted.
 *
 * The types follow nvml.h: nvmlReturn_t is an int (0 NVML_SUCCESS, 3
 * NVML_ERROR_NOT_SUPPORTED), nvmlDevice_t an opaque pointer, nvmlMemory_t
 * {total, free, used} unsigned long long, nvmlUtilization_t {gpu, memory}
 * unsigned int; power in milliwatts.
 */
#include <stdatomic.h>

#define FAKE_GPUS 2
#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_UNINITIALIZED 1

#define EXPORT __attribute__((visibility("default")))

typedef struct {
    unsigned long long total, free, used;
} nvml_memory;
typedef struct {
    unsigned int gpu, memory;
} nvml_util;

typedef struct fake_gpu {
    int index;
    unsigned long long total, used;
    unsigned util;
    unsigned power_mw, limit_mw; /* limit 0: power not supported */
} fake_gpu;

static fake_gpu gpus[FAKE_GPUS] = {{0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0}};
static _Atomic int initialized;
static _Atomic long calls;

EXPORT void fake_nvml_set(int i, unsigned long long total, unsigned long long used, unsigned util,
                          unsigned power_mw, unsigned limit_mw) {
    if (i < 0 || i >= FAKE_GPUS)
        return;
    gpus[i].total = total;
    gpus[i].used = used;
    gpus[i].util = util;
    gpus[i].power_mw = power_mw;
    gpus[i].limit_mw = limit_mw;
}

EXPORT long fake_nvml_calls(void) {
    return atomic_load(&calls);
}

EXPORT int fake_nvml_initialized(void) {
    return atomic_load(&initialized);
}

EXPORT int nvmlInit_v2(void) {
    atomic_fetch_add(&calls, 1);
    atomic_store(&initialized, 1);
    return NVML_SUCCESS;
}

EXPORT int nvmlShutdown(void) {
    atomic_fetch_add(&calls, 1);
    atomic_store(&initialized, 0);
    return NVML_SUCCESS;
}

EXPORT int nvmlDeviceGetCount_v2(unsigned *n) {
    atomic_fetch_add(&calls, 1);
    if (!atomic_load(&initialized))
        return NVML_ERROR_UNINITIALIZED;
    *n = FAKE_GPUS;
    return NVML_SUCCESS;
}

EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned i, fake_gpu **dev) {
    atomic_fetch_add(&calls, 1);
    if (i >= FAKE_GPUS)
        return NVML_ERROR_INVALID_ARGUMENT;
    *dev = &gpus[i];
    return NVML_SUCCESS;
}

EXPORT int nvmlDeviceGetMemoryInfo(fake_gpu *d, nvml_memory *m) {
    atomic_fetch_add(&calls, 1);
    m->total = d->total;
    m->used = d->used;
    m->free = d->total - d->used;
    return NVML_SUCCESS;
}

EXPORT int nvmlDeviceGetUtilizationRates(fake_gpu *d, nvml_util *u) {
    atomic_fetch_add(&calls, 1);
    u->gpu = d->util;
    u->memory = 0;
    return NVML_SUCCESS;
}

EXPORT int nvmlDeviceGetPowerUsage(fake_gpu *d, unsigned *mw) {
    atomic_fetch_add(&calls, 1);
    if (!d->limit_mw)
        return NVML_ERROR_NOT_SUPPORTED;
    *mw = d->power_mw;
    return NVML_SUCCESS;
}

EXPORT int nvmlDeviceGetEnforcedPowerLimit(fake_gpu *d, unsigned *mw) {
    atomic_fetch_add(&calls, 1);
    if (!d->limit_mw)
        return NVML_ERROR_NOT_SUPPORTED;
    *mw = d->limit_mw;
    return NVML_SUCCESS;
}
