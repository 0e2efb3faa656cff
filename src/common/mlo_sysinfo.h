/*
 * mlo_sysinfo.h - the system tags MLflow's Python client sets at run start
 * (mlo_sysinfo.c).
 */
#ifndef MLO_SYSINFO_H
#define MLO_SYSINFO_H

#include "mlo_kv.h"

/* Appends MLflow's system tags to *tags (growing *n); 0 or -1 on OOM. */
int mlo__sysinfo_tags(mlo_kv **tags, size_t *n);

#endif /* MLO_SYSINFO_H */
