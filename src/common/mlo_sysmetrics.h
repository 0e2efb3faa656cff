/*
 * mlo_sysmetrics.h - the system-metrics sampler (mlo_sysmetrics.c): a
 * client's background thread that samples the machine (CPU, memory, disk,
 * network, NVIDIA GPUs) and logs the averages as MLflow's system metrics of
 * the runs that asked for them.
 *
 * The sampler knows runs by their index in the client's run table and
 * never calls the client: what it logs goes through the emit callback the
 * client hands it (mlo__client_emit_metric), as histograms do.
 *
 * Threads: set from any thread; tick on one thread at a time (the
 * sampler's own, or a test's with cfg->sys_manual); free once, from the
 * controlling thread, after every other call has returned.
 */
#ifndef MLO_SYSMETRICS_H
#define MLO_SYSMETRICS_H

#include "mlo_env.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_sysmetrics mlo_sysmetrics;

/* Where the averages go: run index, key, value, step, timestamp (ms).
 * Returns an mlo_status.  Called on the sampler's thread (or the one of
 * mlo__sysmetrics_tick) without the sampler's lock. */
typedef int (*mlo_sysmetrics_emit_fn)(void *ctx, uint32_t run, const char *key, size_t klen,
                                      double value, int64_t step, int64_t ts_ms);

/* A sampler for env's configuration (cfg->sys_*), whose disk metrics are
 * those of disk_path's file system (copied).  Starts no thread: the first
 * run switched on does.  NULL when out of memory. */
mlo_sysmetrics *mlo__sysmetrics_new(mlo_env *env, const char *disk_path,
                                    mlo_sysmetrics_emit_fn emit, void *emit_ctx);
/* Switches system metrics of run `run` on (on != 0) or off.  next_step >= 0
 * sets the step its next average is logged at (a resumed run); < 0 keeps
 * what the run had (0 for a run never seen).  Off drops a partial average
 * and waits for a round that is emitting: once this returns nothing more
 * is emitted for the run (called from the emit callback's own thread, the
 * rest of that round's averages may still follow).  MLO_OK or
 * MLO_ERR_NO_MEMORY (no memory, or no thread could be started: the run
 * stays off). */
int mlo__sysmetrics_set(mlo_sysmetrics *s, uint32_t run, int on, int64_t next_step);
/* One round of the sampler now, on the calling thread, as the sampler's
 * thread does when a tick is due: the first round after no run was on
 * reads the baselines (CPU times), later ones take a sample and emit the
 * averages that are complete.  Returns the number of metrics emitted.
 * For tests (cfg->sys_manual) and benchmarks. */
int mlo__sysmetrics_tick(mlo_sysmetrics *s);
/* Waits until the sampler has taken n samples since it was made (rounds
 * with at least one run on), or until deadline_ns (CLOCK_MONOTONIC).
 * MLO_OK or MLO_ERR_TIMEOUT.  For tests of the sampler's thread. */
int mlo__sysmetrics_wait(mlo_sysmetrics *s, uint64_t n, int64_t deadline_ns);
/* GPUs found through NVML (after the first round; 0 without NVML). */
int mlo__sysmetrics_gpus(mlo_sysmetrics *s);
/* CPU time the sampler's thread has used, ns (0 when it never started). */
int64_t mlo__sysmetrics_cpu_ns(mlo_sysmetrics *s);
/* Stops the thread (a tick in progress finishes) and frees s.  NULL: no-op. */
void mlo__sysmetrics_free(mlo_sysmetrics *s);

#endif /* MLO_SYSMETRICS_H */
