/*
 * mlo_payload.c - record payloads and the record -> event conversion
 * (mlo_payload.h).
 */
#include "mlo_payload.h"

#include <string.h>

int mlo__payload_dataset_parse(const char *p, size_t len, mlo_dataset_payload *o) {
    const char *f[4] = {"", "", "", ""};
    size_t pos = 0;
    int n = 0;
    while (n < 4) {
        f[n++] = p + pos;
        while (pos < len && p[pos])
            pos++;
        if (pos >= len)
            break;
        pos++; /* past the NUL */
    }
    if (n < 3)
        return -1;
    o->source = f[0];
    o->digest = f[1];
    o->source_type = f[2];
    o->context = f[3];
    return 0;
}

int mlo__payload_dataset_encode(mlo_buf *out, const mlo_dataset_payload *in) {
    const char *f[4] = {in->source, in->digest, in->source_type, in->context ? in->context : ""};
    for (int i = 0; i < 4; i++) {
        const char *v = f[i] ? f[i] : "";
        if (mlo__buf_append(out, v, strlen(v) + (i < 3)) != 0)
            return -1;
    }
    return 0;
}

int mlo__payload_startrun_parse(const char *p, size_t len, mlo_startrun *o) {
    memset(o, 0, sizeof *o);
    const char *f[4];
    size_t pos = 0;
    for (int i = 0; i < 4; i++) {
        const char *z = pos < len ? memchr(p + pos, 0, len - pos) : NULL;
        if (!z)
            return -1;
        f[i] = p + pos;
        pos = (size_t)(z - p) + 1;
    }
    o->exp_name = *f[0] ? f[0] : NULL;
    o->exp_id = *f[1] ? f[1] : NULL;
    o->run_name = *f[2] ? f[2] : NULL;
    o->parent = *f[3] ? f[3] : NULL;
    while (pos < len && o->ntags < MLO_START_MAX_TAGS) {
        const char *k = p + pos;
        const char *z = memchr(k, 0, len - pos);
        if (!z)
            return -1;
        pos = (size_t)(z - p) + 1;
        const char *v = p + pos;
        z = pos < len ? memchr(v, 0, len - pos) : NULL;
        if (!z)
            return -1;
        pos = (size_t)(z - p) + 1;
        o->keys[o->ntags] = k;
        o->values[o->ntags++] = v;
    }
    return 0;
}

int mlo__payload_startrun_encode(mlo_buf *b, const mlo_startrun *in) {
    const char *f[4] = {in->exp_name, in->exp_id, in->run_name, in->parent};
    for (int i = 0; i < 4; i++)
        if (mlo__buf_append(b, f[i] ? f[i] : "", f[i] ? strlen(f[i]) + 1 : 1) != 0)
            return -1;
    for (size_t i = 0; i < in->ntags; i++)
        if (mlo__buf_append(b, in->keys[i], strlen(in->keys[i]) + 1) != 0 ||
            mlo__buf_append(b, in->values[i], strlen(in->values[i]) + 1) != 0)
            return -1;
    return 0;
}

int mlo__payload_to_event(const mlo_rec *r, const char *lid, mlo_buf *scratch, mlo_startrun *sr,
                          mlo_log_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->type = r->type;
    ev->run_id = lid;
    mlo__buf_reset(scratch);
    if (mlo__buf_append(scratch, mlo__rec_key(r), r->key_len) != 0 ||
        mlo__buf_appendc(scratch, 0) != 0 ||
        mlo__buf_append(scratch, mlo__rec_val(r), r->val_len) != 0 ||
        mlo__buf_appendc(scratch, 0) != 0)
        return -1;
    const char *key = scratch->data;
    const char *val = scratch->data + r->key_len + 1;
    mlo_dataset_payload ds;
    switch (r->type) {
    case MLO_REC_METRIC:
        ev->key = key;
        ev->value_num = r->value;
        ev->timestamp = r->timestamp;
        ev->step = r->step;
        return 1;
    case MLO_REC_PARAM:
    case MLO_REC_TAG:
        ev->key = key;
        ev->value = val;
        return 1;
    case MLO_REC_END_RUN:
        ev->value_num = r->value;
        ev->timestamp = r->timestamp;
        return 1;
    case MLO_REC_DATASET:
        if (mlo__payload_dataset_parse(val, r->val_len, &ds) != 0)
            return 0;
        ev->key = key;
        ev->value = ds.source;
        ev->timestamp = r->timestamp;
        ev->digest = ds.digest;
        ev->source_type = ds.source_type;
        ev->context = ds.context;
        return 1;
    case MLO_EV_START_RUN:
        if (mlo__payload_startrun_parse(val, r->val_len, sr) != 0)
            return 0;
        ev->key = sr->exp_name;
        ev->value = sr->run_name;
        ev->timestamp = r->timestamp;
        ev->experiment_id = sr->exp_id;
        ev->parent_run_id = sr->parent;
        ev->ntags = sr->ntags;
        ev->tag_keys = sr->keys;
        ev->tag_values = sr->values;
        return 1;
    default:
        return 0;
    }
}
