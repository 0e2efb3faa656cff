/* Unit tests for mlo_pbjson (protobuf-c <-> JSON) and mlo_buf.
 *
 * Every MLflow message of proto/mlflow_service.proto is filled, field by
 * field, through its descriptor (so a field added later is covered without
 * touching this file), encoded, decoded, compared field by field and encoded
 * again. Hand-built messages check the exact JSON the server gets; a
 * hand-written descriptor ("test.AllTypes") covers the scalar types, oneofs,
 * proto3 fields and recursion that MLflow's messages do not use. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mlflow_service.pb-c.h"
#include "mlo_buf.h"
#include "mlo_pbjson.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static ProtobufCMessage *new_msg(const ProtobufCMessageDescriptor *d) {
    ProtobufCMessage *m = malloc(d->sizeof_message);
    assert_non_null(m);
    protobuf_c_message_init(d, m);
    return m;
}

/* Encodes into a fresh malloc'd string. */
static char *enc(const ProtobufCMessage *m) {
    mlo_buf b;
    mlo__buf_init(&b);
    assert_int_equal(mlo__pbjson_encode(m, &b), 0);
    assert_non_null(b.data);
    assert_int_equal(strlen(b.data), b.len);
    return b.data;
}

static ProtobufCMessage *dec_ok(const ProtobufCMessageDescriptor *d, const char *json) {
    ProtobufCMessage *m = NULL;
    char err[256] = "";
    int rc = mlo__pbjson_decode(d, json, strlen(json), &m, err, sizeof err);
    if (rc != 0)
        fail_msg("decode of %s failed: %s", json, err);
    assert_non_null(m);
    assert_ptr_equal(m->descriptor, d);
    return m;
}

/* Decoding must fail; returns the reason (static buffer). */
static const char *dec_bad(const ProtobufCMessageDescriptor *d, const char *json, size_t len) {
    static char err[256];
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    strcpy(err, "untouched");
    int rc = mlo__pbjson_decode(d, json, len, &m, err, sizeof err);
    if (rc != -1)
        fail_msg("decode of %.*s unexpectedly succeeded", (int)len, json);
    assert_null(m);
    assert_true(strlen(err) > 0);
    assert_string_not_equal(err, "untouched");
    return err;
}

#define DEC_BAD(d, s) dec_bad((d), (s), strlen(s))

static size_t type_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    default:
        return 4;
    }
}

/* Field-by-field equality of two messages, driven by the descriptor.
 * Doubles and floats compare bitwise (so NaN == NaN, -0.0 != 0.0). */
static void assert_msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

static void assert_value_equal(const ProtobufCFieldDescriptor *f, const void *x, const void *y) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)x, *t = *(char *const *)y;
        if (!s || !t)
            assert_ptr_equal(s, t);
        else
            assert_string_equal(s, t);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = x, *t = y;
        assert_int_equal(s->len, t->len);
        if (s->len)
            assert_memory_equal(s->data, t->data, s->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *s = *(ProtobufCMessage *const *)x;
        const ProtobufCMessage *t = *(ProtobufCMessage *const *)y;
        if (!s || !t)
            assert_ptr_equal(s, t);
        else
            assert_msg_equal(s, t);
        break;
    }
    default:
        assert_memory_equal(x, y, type_size(f->type));
    }
}

static void assert_msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b) {
    assert_ptr_equal(a->descriptor, b->descriptor);
    const ProtobufCMessageDescriptor *d = a->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *x = (const char *)a + f->offset, *y = (const char *)b + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)a + f->quantifier_offset);
            size_t m = *(const size_t *)((const char *)b + f->quantifier_offset);
            if (n != m)
                fail_msg("%s.%s: %zu vs %zu elements", d->name, f->name, n, m);
            const char *xa = *(char *const *)x, *ya = *(char *const *)y;
            for (size_t k = 0; k < n; k++)
                assert_value_equal(f, xa + k * type_size(f->type), ya + k * type_size(f->type));
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t ca = *(const uint32_t *)((const char *)a + f->quantifier_offset);
            uint32_t cb = *(const uint32_t *)((const char *)b + f->quantifier_offset);
            assert_int_equal(ca, cb);
            if (ca == f->id)
                assert_value_equal(f, x, y);
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE) {
            protobuf_c_boolean ha =
                *(const protobuf_c_boolean *)((const char *)a + f->quantifier_offset);
            protobuf_c_boolean hb =
                *(const protobuf_c_boolean *)((const char *)b + f->quantifier_offset);
            if (ha != hb)
                fail_msg("%s.%s: has %d vs %d", d->name, f->name, ha, hb);
            if (!ha)
                continue;
        }
        assert_value_equal(f, x, y);
    }
}

/* encode -> decode -> compare -> encode again -> same text. Returns the
 * first JSON (caller frees). */
static char *roundtrip(const ProtobufCMessage *m) {
    char *j1 = enc(m);
    ProtobufCMessage *back = dec_ok(m->descriptor, j1);
    assert_msg_equal(m, back);
    char *j2 = enc(back);
    assert_string_equal(j1, j2);
    free(j2);
    protobuf_c_message_free_unpacked(back, NULL);
    return j1;
}

/* Fills every field of a new message of type d with a distinctive value
 * (repeated fields get two elements, nested messages are filled too). */
static int fill_counter;
static ProtobufCMessage *fill_all(const ProtobufCMessageDescriptor *d, int depth);

static void fill_value(const ProtobufCFieldDescriptor *f, void *v, int depth) {
    int k = ++fill_counter;
    char s[96];
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        /* a few specials: quotes, backslash, control, multi-byte UTF-8 */
        snprintf(s, sizeof s, "%s-%d%s", f->name, k,
                 k % 3 == 0 ? " \"q\" \\ \n\t\x01 h\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80" : "");
        *(char **)v = xstrdup(s);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = v;
        bd->len = (size_t)(k % 5);
        bd->data = malloc(bd->len + 1);
        for (size_t i = 0; i < bd->len; i++)
            bd->data[i] = (uint8_t)(0xF0 + i + (size_t)k);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)v = fill_all(f->descriptor, depth + 1);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)v = (k % 2) ? INT64_C(1700000000000) + k : -(INT64_C(1) << 62) - k;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)v = UINT64_MAX - (uint64_t)k;
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)v = (k % 2) ? 1000 + k : INT32_MIN + k;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)v = UINT32_MAX - (uint32_t)k;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)v = k / 3.0 + 0.1;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)v = (float)k / 3.0f;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)v = k % 2;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int *)v = ed->values[(unsigned)k % ed->n_values].value;
        break;
    }
    }
}

static void fill_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int depth) {
    char *v = (char *)m + f->offset;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 6)
        return;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = 2, sz = type_size(f->type);
        char *arr = calloc(n, sz);
        assert_non_null(arr);
        for (size_t i = 0; i < n; i++) {
            fill_value(f, arr + i * sz, depth);
        }
        *(char **)v = arr;
        *(size_t *)((char *)m + f->quantifier_offset) = n;
        return;
    }
    fill_value(f, v, depth);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
}

static ProtobufCMessage *fill_all(const ProtobufCMessageDescriptor *d, int depth) {
    ProtobufCMessage *m = new_msg(d);
    uint32_t oneof_done = 0; /* set only the first member of a oneof */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (oneof_done & (1u << (f->quantifier_offset % 32)))
                continue;
            oneof_done |= 1u << (f->quantifier_offset % 32);
        }
        fill_field(m, f, depth);
    }
    return m;
}

/* Every MLflow message of proto/mlflow_service.proto, nested Responses
 * included. */
static const ProtobufCMessageDescriptor *const all_messages[] = {
    &mlflow__metric__descriptor,
    &mlflow__param__descriptor,
    &mlflow__run_tag__descriptor,
    &mlflow__experiment_tag__descriptor,
    &mlflow__run_info__descriptor,
    &mlflow__run_data__descriptor,
    &mlflow__run_inputs__descriptor,
    &mlflow__run_outputs__descriptor,
    &mlflow__run__descriptor,
    &mlflow__experiment__descriptor,
    &mlflow__input_tag__descriptor,
    &mlflow__dataset__descriptor,
    &mlflow__dataset_input__descriptor,
    &mlflow__model_input__descriptor,
    &mlflow__model_output__descriptor,
    &mlflow__create_experiment__descriptor,
    &mlflow__create_experiment__response__descriptor,
    &mlflow__get_experiment_by_name__descriptor,
    &mlflow__get_experiment_by_name__response__descriptor,
    &mlflow__get_experiment__descriptor,
    &mlflow__get_experiment__response__descriptor,
    &mlflow__create_run__descriptor,
    &mlflow__create_run__response__descriptor,
    &mlflow__update_run__descriptor,
    &mlflow__update_run__response__descriptor,
    &mlflow__get_run__descriptor,
    &mlflow__get_run__response__descriptor,
    &mlflow__get_metric_history__descriptor,
    &mlflow__get_metric_history__response__descriptor,
    &mlflow__log_batch__descriptor,
    &mlflow__log_batch__response__descriptor,
    &mlflow__log_metric__descriptor,
    &mlflow__log_metric__response__descriptor,
    &mlflow__log_param__descriptor,
    &mlflow__log_param__response__descriptor,
    &mlflow__set_tag__descriptor,
    &mlflow__set_tag__response__descriptor,
    &mlflow__delete_tag__descriptor,
    &mlflow__delete_tag__response__descriptor,
    &mlflow__log_inputs__descriptor,
    &mlflow__log_inputs__response__descriptor,
    &mlflow__search_runs__descriptor,
    &mlflow__search_runs__response__descriptor,
    &mlflow__error_response__descriptor,
};

/* ------------------------------------------------------------------------ */
/* A hand-written descriptor for what MLflow's messages do not exercise:    */
/* every scalar type, repeated scalars, bytes, a oneof, proto3 fields and a */
/* recursive message.                                                       */
/* ------------------------------------------------------------------------ */

typedef enum { COLOR_RED = 0, COLOR_GREEN = 1, COLOR_BLUE = 7 } Color;

static const ProtobufCEnumValue color_values[] = {
    {"RED", "COLOR_RED", 0},
    {"GREEN", "COLOR_GREEN", 1},
    {"BLUE", "COLOR_BLUE", 7},
};
static const ProtobufCEnumValueIndex color_by_name[] = {{"BLUE", 2}, {"GREEN", 1}, {"RED", 0}};
static const ProtobufCIntRange color_ranges[] = {{0, 0}, {7, 2}, {0, 3}};
static const ProtobufCEnumDescriptor color_descriptor = {
    PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    "test.Color",
    "Color",
    "Color",
    "test",
    3,
    color_values,
    3,
    color_by_name,
    2,
    color_ranges,
    NULL,
    NULL,
    NULL,
    NULL,
};

typedef struct AllTypes AllTypes;
struct AllTypes {
    ProtobufCMessage base;
    protobuf_c_boolean has_i32;
    int32_t i32;
    protobuf_c_boolean has_s64;
    int64_t s64;
    protobuf_c_boolean has_u32;
    uint32_t u32;
    protobuf_c_boolean has_u64;
    uint64_t u64;
    protobuf_c_boolean has_fx64;
    uint64_t fx64;
    protobuf_c_boolean has_f;
    float f;
    protobuf_c_boolean has_b;
    protobuf_c_boolean b;
    protobuf_c_boolean has_raw;
    ProtobufCBinaryData raw;
    protobuf_c_boolean has_color;
    int color;
    size_t n_ri64;
    int64_t *ri64;
    size_t n_rd;
    double *rd;
    size_t n_rb;
    protobuf_c_boolean *rb;
    size_t n_rs;
    char **rs;
    size_t n_rraw;
    ProtobufCBinaryData *rraw;
    size_t n_rcolor;
    int *rcolor;
    uint32_t choice_case;
    union {
        char *c_str;
        int32_t c_num;
    };
    char *p3_str;   /* proto3 (LABEL_NONE) */
    int64_t p3_num; /* proto3 (LABEL_NONE) */
    AllTypes *child;
    char *with_default; /* proto2 string with a default value */
};

static const char with_default_default[] = "dflt";
extern const ProtobufCMessageDescriptor alltypes_descriptor;

#define OPT(name, id, type)                                                                        \
    {                                                                                              \
#name, id, PROTOBUF_C_LABEL_OPTIONAL, type, offsetof(AllTypes, has_##name),                \
            offsetof(AllTypes, name), NULL, NULL, 0, 0, NULL, NULL                                 \
    }
#define REP(name, id, type, desc)                                                                  \
    {                                                                                              \
#name, id, PROTOBUF_C_LABEL_REPEATED, type, offsetof(AllTypes, n_##name),                  \
            offsetof(AllTypes, name), desc, NULL, 0, 0, NULL, NULL                                 \
    }

static const ProtobufCFieldDescriptor alltypes_fields[] = {
    OPT(i32, 1, PROTOBUF_C_TYPE_INT32),
    OPT(s64, 2, PROTOBUF_C_TYPE_SINT64),
    OPT(u32, 3, PROTOBUF_C_TYPE_UINT32),
    OPT(u64, 4, PROTOBUF_C_TYPE_UINT64),
    OPT(fx64, 5, PROTOBUF_C_TYPE_FIXED64),
    OPT(f, 6, PROTOBUF_C_TYPE_FLOAT),
    OPT(b, 7, PROTOBUF_C_TYPE_BOOL),
    OPT(raw, 8, PROTOBUF_C_TYPE_BYTES),
    {"color", 9, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_ENUM, offsetof(AllTypes, has_color),
     offsetof(AllTypes, color), &color_descriptor, NULL, 0, 0, NULL, NULL},
    REP(ri64, 10, PROTOBUF_C_TYPE_INT64, NULL),
    REP(rd, 11, PROTOBUF_C_TYPE_DOUBLE, NULL),
    REP(rb, 12, PROTOBUF_C_TYPE_BOOL, NULL),
    REP(rs, 13, PROTOBUF_C_TYPE_STRING, NULL),
    REP(rraw, 14, PROTOBUF_C_TYPE_BYTES, NULL),
    REP(rcolor, 15, PROTOBUF_C_TYPE_ENUM, &color_descriptor),
    {"c_str", 16, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING,
     offsetof(AllTypes, choice_case), offsetof(AllTypes, c_str), NULL, NULL,
     PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL},
    {"c_num", 17, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_INT32, offsetof(AllTypes, choice_case),
     offsetof(AllTypes, c_num), NULL, NULL, PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL},
    {"p3_str", 18, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(AllTypes, p3_str),
     NULL, &protobuf_c_empty_string, 0, 0, NULL, NULL},
    {"p3_num", 19, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT64, 0, offsetof(AllTypes, p3_num),
     NULL, NULL, 0, 0, NULL, NULL},
    {"child", 20, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0, offsetof(AllTypes, child),
     &alltypes_descriptor, NULL, 0, 0, NULL, NULL},
    {"with_default", 21, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING, 0,
     offsetof(AllTypes, with_default), NULL, with_default_default, 0, 0, NULL, NULL},
};
static const unsigned alltypes_by_name[] = {0}; /* unused by the codec */
static const ProtobufCIntRange alltypes_ranges[] = {{1, 0}, {0, 21}};

static void alltypes_init(AllTypes *m) {
    memset(m, 0, sizeof *m);
    m->base.descriptor = &alltypes_descriptor;
    m->p3_str = (char *)protobuf_c_empty_string;
    m->with_default = (char *)with_default_default;
}

const ProtobufCMessageDescriptor alltypes_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.AllTypes",
    "AllTypes",
    "AllTypes",
    "test",
    sizeof(AllTypes),
    sizeof alltypes_fields / sizeof *alltypes_fields,
    alltypes_fields,
    alltypes_by_name,
    1,
    alltypes_ranges,
    (ProtobufCMessageInit)alltypes_init,
    NULL,
    NULL,
    NULL,
};

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_every_message_roundtrips(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof all_messages / sizeof *all_messages; i++) {
        const ProtobufCMessageDescriptor *d = all_messages[i];
        ProtobufCMessage *m = fill_all(d, 0);
        char *json = roundtrip(m);
        /* all fields set: each one's name is in the JSON */
        for (unsigned k = 0; k < d->n_fields; k++) {
            char key[128];
            snprintf(key, sizeof key, "\"%s\":", d->fields[k].name);
            if (!strstr(json, key))
                fail_msg("%s: %s missing in %s", d->name, key, json);
        }
        /* an empty message is {} */
        ProtobufCMessage *e = new_msg(d);
        char *ej = roundtrip(e);
        assert_string_equal(ej, "{}");
        free(ej);
        protobuf_c_message_free_unpacked(e, NULL);
        free(json);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void test_alltypes_roundtrip(void **state) {
    (void)state;
    ProtobufCMessage *m = fill_all(&alltypes_descriptor, 0);
    char *json = roundtrip(m);
    assert_non_null(strstr(json, "\"c_str\":"));
    assert_null(strstr(json, "\"c_num\":"));
    free(json);
    protobuf_c_message_free_unpacked(m, NULL);

    /* the other oneof member */
    AllTypes *a = (AllTypes *)new_msg(&alltypes_descriptor);
    a->choice_case = 17;
    a->c_num = -5;
    json = roundtrip(&a->base);
    assert_string_equal(json, "{\"c_num\":-5}");
    free(json);
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void test_alltypes_exact(void **state) {
    (void)state;
    AllTypes *a = (AllTypes *)new_msg(&alltypes_descriptor);
    a->has_i32 = 1;
    a->i32 = INT32_MIN;
    a->has_s64 = 1;
    a->s64 = INT64_MIN;
    a->has_u32 = 1;
    a->u32 = UINT32_MAX;
    a->has_u64 = 1;
    a->u64 = UINT64_MAX;
    a->has_f = 1;
    a->f = 0.1f;
    a->has_b = 1;
    a->b = 0;
    a->has_raw = 1;
    a->raw.data = malloc(5);
    memcpy(a->raw.data, "\x00\xff\x10hi", 5);
    a->raw.len = 5;
    a->has_color = 1;
    a->color = COLOR_BLUE;
    a->n_rcolor = 2;
    a->rcolor = malloc(2 * sizeof(int));
    a->rcolor[0] = COLOR_GREEN;
    a->rcolor[1] = 42;
    a->n_rd = 3;
    a->rd = malloc(3 * sizeof(double));
    a->rd[0] = NAN;
    a->rd[1] = -INFINITY;
    a->rd[2] = 2.5;
    a->p3_num = -1;
    char *json = roundtrip(&a->base);
    assert_string_equal(
        json, "{\"i32\":-2147483648,\"s64\":-9223372036854775808,\"u32\":4294967295,"
              "\"u64\":\"18446744073709551615\",\"f\":0.1,\"b\":false,\"raw\":\"AP8QaGk=\","
              "\"color\":\"BLUE\",\"rd\":[\"NaN\",\"-Infinity\",2.5],\"rcolor\":[\"GREEN\",42],"
              "\"p3_num\":-1}");
    free(json);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    /* proto3 zero values and the proto2 default pointer are "not present" */
    a = (AllTypes *)new_msg(&alltypes_descriptor);
    json = enc(&a->base);
    assert_string_equal(json, "{}");
    free(json);
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void test_alltypes_decode_forms(void **state) {
    (void)state;
    const char *json =
        "{\"i32\":\"-7\",\"s64\":1e3,\"u32\":\"4294967295\",\"u64\":\"18446744073709551615\","
        "\"fx64\":5.0,\"f\":\"NaN\",\"b\":true,\"raw\":\"AP8QaGk\",\"color\":7,"
        "\"ri64\":[1,\"-2\",3.0],\"rd\":[1,\"2.5\",\"-1e-3\",\"Infinity\"],\"rb\":[true,false],"
        "\"rs\":[\"a\",\"\"],\"rraw\":[\"_-8=\",\"\"],\"rcolor\":[\"RED\",1],"
        "\"cNum\":9,\"p3Str\":\"x\",\"p3Num\":\"12\",\"child\":{\"child\":{\"i32\":1}},"
        "\"withDefault\":\"set\"}";
    AllTypes *a = (AllTypes *)dec_ok(&alltypes_descriptor, json);
    assert_int_equal(a->i32, -7);
    assert_true(a->has_s64 && a->s64 == 1000);
    assert_true(a->u32 == UINT32_MAX);
    assert_true(a->u64 == UINT64_MAX);
    assert_true(a->has_fx64 && a->fx64 == 5);
    assert_true(a->has_f && isnan(a->f));
    assert_true(a->has_b && a->b);
    assert_int_equal(a->raw.len, 5);
    assert_memory_equal(a->raw.data, "\x00\xff\x10hi", 5);
    assert_int_equal(a->color, COLOR_BLUE);
    assert_int_equal(a->n_ri64, 3);
    assert_true(a->ri64[0] == 1 && a->ri64[1] == -2 && a->ri64[2] == 3);
    assert_int_equal(a->n_rd, 4);
    assert_true(a->rd[0] == 1.0 && a->rd[1] == 2.5 && a->rd[2] == -1e-3 && isinf(a->rd[3]));
    assert_int_equal(a->n_rs, 2);
    assert_string_equal(a->rs[1], "");
    assert_int_equal(a->n_rraw, 2);
    assert_int_equal(a->rraw[0].len, 2);
    assert_memory_equal(a->rraw[0].data, "\xff\xef", 2);
    assert_int_equal(a->rraw[1].len, 0);
    assert_true(a->n_rcolor == 2 && a->rcolor[0] == COLOR_RED && a->rcolor[1] == COLOR_GREEN);
    assert_int_equal(a->choice_case, 17);
    assert_int_equal(a->c_num, 9);
    assert_string_equal(a->p3_str, "x");
    assert_int_equal(a->p3_num, 12);
    assert_non_null(a->child);
    assert_non_null(a->child->child);
    assert_true(a->child->child->has_i32 && a->child->child->i32 == 1);
    assert_string_equal(a->with_default, "set");
    protobuf_c_message_free_unpacked(&a->base, NULL);

    /* untouched default string pointer is not freed by free_unpacked */
    a = (AllTypes *)dec_ok(&alltypes_descriptor, "{\"i32\":1}");
    assert_ptr_equal(a->with_default, with_default_default);
    assert_ptr_equal(a->p3_str, protobuf_c_empty_string);
    protobuf_c_message_free_unpacked(&a->base, NULL);

    /* range and type errors */
    DEC_BAD(&alltypes_descriptor, "{\"i32\":2147483648}");
    DEC_BAD(&alltypes_descriptor, "{\"i32\":\"-2147483649\"}");
    DEC_BAD(&alltypes_descriptor, "{\"u32\":-1}");
    DEC_BAD(&alltypes_descriptor, "{\"u32\":4294967296}");
    DEC_BAD(&alltypes_descriptor, "{\"u64\":\"18446744073709551616\"}");
    DEC_BAD(&alltypes_descriptor, "{\"u64\":\"-1\"}");
    DEC_BAD(&alltypes_descriptor, "{\"u64\":1.5}");
    DEC_BAD(&alltypes_descriptor, "{\"f\":1e300}");
    DEC_BAD(&alltypes_descriptor, "{\"b\":1}");
    DEC_BAD(&alltypes_descriptor, "{\"b\":\"true\"}");
    DEC_BAD(&alltypes_descriptor, "{\"raw\":\"***\"}");
    DEC_BAD(&alltypes_descriptor, "{\"raw\":\"A\"}");
    DEC_BAD(&alltypes_descriptor, "{\"raw\":\"AA===\"}");
    DEC_BAD(&alltypes_descriptor, "{\"raw\":5}");
    DEC_BAD(&alltypes_descriptor, "{\"color\":\"PURPLE\"}");
    DEC_BAD(&alltypes_descriptor, "{\"color\":1.5}");
    DEC_BAD(&alltypes_descriptor, "{\"color\":true}");
    DEC_BAD(&alltypes_descriptor, "{\"rcolor\":[\"RED\",\"NOPE\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"rs\":[\"a\",1]}");
    DEC_BAD(&alltypes_descriptor, "{\"rs\":[\"a\",null]}");
    DEC_BAD(&alltypes_descriptor, "{\"rraw\":[\"AA\",\"!\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"rd\":[1,\"x\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"rd\":[\"1.\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"rd\":[\"nan\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"rd\":[\"1e999\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"rd\":[\" 1\"]}");
    DEC_BAD(&alltypes_descriptor, "{\"c_str\":\"a\",\"c_num\":1}");
    DEC_BAD(&alltypes_descriptor, "{\"child\":{\"child\":{\"i32\":\"x\"}}}");
    DEC_BAD(&alltypes_descriptor, "{\"child\":[]}");
    DEC_BAD(&alltypes_descriptor, "{\"p3_num\":{}}");
}

static void test_depth_limit(void **state) {
    (void)state;
    /* decode: nesting of 64 child levels is fine, 65+ is refused */
    for (int depth = 60; depth <= 70; depth++) {
        mlo_buf b;
        mlo__buf_init(&b);
        for (int i = 0; i < depth; i++)
            mlo__buf_appends(&b, "{\"child\":");
        mlo__buf_appends(&b, "{\"i32\":1}");
        for (int i = 0; i < depth; i++)
            mlo__buf_appendc(&b, '}');
        ProtobufCMessage *m = NULL;
        char err[128];
        int rc = mlo__pbjson_decode(&alltypes_descriptor, b.data, b.len, &m, err, sizeof err);
        if (depth <= MLO_PBJSON_MAX_DEPTH) {
            assert_int_equal(rc, 0);
            /* and the encoder writes it back identically */
            char *again = enc(m);
            assert_string_equal(again, b.data);
            free(again);
            protobuf_c_message_free_unpacked(m, NULL);
        } else {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "deeper"));
        }
        mlo__buf_free(&b);
    }

    /* encode: a too deep (here: cyclic) message fails cleanly */
    AllTypes a;
    alltypes_init(&a);
    a.child = &a;
    mlo_buf b;
    mlo__buf_init(&b);
    mlo__buf_appends(&b, "keep");
    assert_int_equal(mlo__pbjson_encode(&a.base, &b), -1);
    assert_string_equal(b.data, "keep");
    mlo__buf_free(&b);

    /* jansson's own depth limit on arrays: error, no crash */
    static char deep[6 + 100000 + 1];
    memcpy(deep, "{\"rs\":", 6);
    memset(deep + 6, '[', sizeof deep - 7);
    deep[sizeof deep - 1] = '\0';
    dec_bad(&alltypes_descriptor, deep, sizeof deep - 1);
}

static Mlflow__Metric *mk_metric(const char *key, double value, int64_t ts, int64_t step) {
    Mlflow__Metric *m = malloc(sizeof *m);
    mlflow__metric__init(m);
    m->key = xstrdup(key);
    m->has_value = 1;
    m->value = value;
    m->has_timestamp = 1;
    m->timestamp = ts;
    m->has_step = 1;
    m->step = step;
    return m;
}

static void test_logbatch_exact(void **state) {
    (void)state;
    Mlflow__LogBatch *lb = malloc(sizeof *lb);
    mlflow__log_batch__init(lb);
    lb->run_id = xstrdup("0123456789abcdef0123456789abcdef");
    lb->n_metrics = 6;
    lb->metrics = calloc(6, sizeof *lb->metrics);
    lb->metrics[0] = mk_metric("loss", 0.1, 1700000000000, 0);
    lb->metrics[1] = mk_metric("acc", 1.0 / 3, 1700000000001, 1);
    lb->metrics[2] = mk_metric("nan", NAN, 1700000000002, -1);
    lb->metrics[3] = mk_metric("inf", INFINITY, 1, INT64_MAX);
    lb->metrics[4] = mk_metric("ninf", -INFINITY, 0, INT64_MIN);
    lb->metrics[5] = mk_metric("big", 1e300, 2, 3);
    lb->n_params = 1;
    lb->params = calloc(1, sizeof *lb->params);
    lb->params[0] = malloc(sizeof(Mlflow__Param));
    mlflow__param__init(lb->params[0]);
    lb->params[0]->key = xstrdup("lr");
    lb->params[0]->value = xstrdup("0.001");
    lb->n_tags = 1;
    lb->tags = calloc(1, sizeof *lb->tags);
    lb->tags[0] = malloc(sizeof(Mlflow__RunTag));
    mlflow__run_tag__init(lb->tags[0]);
    lb->tags[0]->key = xstrdup("mlflow.note.content");
    lb->tags[0]->value = xstrdup("say \"hi\"\n");

    char *json = roundtrip(&lb->base);
    assert_string_equal(
        json,
        "{\"run_id\":\"0123456789abcdef0123456789abcdef\",\"metrics\":["
        "{\"key\":\"loss\",\"value\":0.1,\"timestamp\":1700000000000,\"step\":0},"
        "{\"key\":\"acc\",\"value\":0.3333333333333333,\"timestamp\":1700000000001,\"step\":1},"
        "{\"key\":\"nan\",\"value\":\"NaN\",\"timestamp\":1700000000002,\"step\":-1},"
        "{\"key\":\"inf\",\"value\":\"Infinity\",\"timestamp\":1,\"step\":9223372036854775807},"
        "{\"key\":\"ninf\",\"value\":\"-Infinity\",\"timestamp\":0,\"step\":-9223372036854775808},"
        "{\"key\":\"big\",\"value\":1e300,\"timestamp\":2,\"step\":3}],"
        "\"params\":[{\"key\":\"lr\",\"value\":\"0.001\"}],"
        "\"tags\":[{\"key\":\"mlflow.note.content\",\"value\":\"say \\\"hi\\\"\\n\"}]}");
    free(json);

    /* the encoder appends to what the buffer holds */
    mlo_buf b;
    mlo__buf_init(&b);
    mlo__buf_appends(&b, "X");
    Mlflow__LogBatch__Response resp = MLFLOW__LOG_BATCH__RESPONSE__INIT;
    assert_int_equal(mlo__pbjson_encode(&resp.base, &b), 0);
    assert_string_equal(b.data, "X{}");
    mlo__buf_free(&b);

    protobuf_c_message_free_unpacked(&lb->base, NULL);
}

static void test_nonfinite_and_int64(void **state) {
    (void)state;
    Mlflow__Metric *m;
    m = (Mlflow__Metric *)dec_ok(&mlflow__metric__descriptor,
                                 "{\"key\":\"k\",\"value\":\"NaN\",\"timestamp\":"
                                 "9223372036854775807,\"step\":-9223372036854775808}");
    assert_true(isnan(m->value));
    assert_true(m->timestamp == INT64_MAX);
    assert_true(m->step == INT64_MIN);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    m = (Mlflow__Metric *)dec_ok(&mlflow__metric__descriptor,
                                 "{\"value\":\"Infinity\",\"timestamp\":\"9223372036854775807\","
                                 "\"step\":\"-9223372036854775808\"}");
    assert_true(isinf(m->value) && m->value > 0);
    assert_true(m->timestamp == INT64_MAX);
    assert_true(m->step == INT64_MIN);
    assert_null(m->key);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    m = (Mlflow__Metric *)dec_ok(&mlflow__metric__descriptor,
                                 "{\"value\":\"-Infinity\",\"step\":\"0\"}");
    assert_true(isinf(m->value) && m->value < 0);
    assert_true(m->has_step && m->step == 0);
    assert_false(m->has_timestamp);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    /* numbers of every JSON shape for a double */
    m = (Mlflow__Metric *)dec_ok(&mlflow__metric__descriptor, "{\"value\":-12}");
    assert_true(m->value == -12.0);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    m = (Mlflow__Metric *)dec_ok(&mlflow__metric__descriptor, "{\"value\":1.7976931348623157e308}");
    assert_true(m->value == 1.7976931348623157e308);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    /* encoded as numbers */
    Mlflow__Metric x = MLFLOW__METRIC__INIT;
    x.has_timestamp = 1;
    x.timestamp = INT64_MIN;
    x.has_step = 1;
    x.step = INT64_MAX;
    x.has_value = 1;
    x.value = -0.0;
    char *json = roundtrip(&x.base);
    assert_string_equal(
        json, "{\"value\":-0.0,\"timestamp\":-9223372036854775808,\"step\":9223372036854775807}");
    free(json);

    /* out of range / malformed */
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"9223372036854775808\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"-9223372036854775809\"}");
    DEC_BAD(&mlflow__metric__descriptor,
            "{\"timestamp\":9223372036854775808}"); /* jansson: too big */
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":1e19}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":1.5}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"1.5\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"-\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"12a\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":\"+12\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"timestamp\":true}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":NaN}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":Infinity}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":\"nan\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":\"inf\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":\"0x10\"}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":1e309}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":[]}");
    DEC_BAD(&mlflow__metric__descriptor, "{\"value\":false}");
}

static void test_double_formatting(void **state) {
    (void)state;
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "-0.0"},
        {1.0, "1"},
        {-1.0, "-1"},
        {0.1, "0.1"},
        {0.5, "0.5"},
        {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"},
        {0.000001, "0.000001"},
        {1e21, "1e21"},
        {123456789012345.0, "123456789012345"},
        {1e100, "1e100"},
        {9007199254740992.0, "9007199254740992"},
        {9007199254740994.0, "9.007199254740994e15"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e308"},
        {-2.2250738585072014e-308, "-2.2250738585072014e-308"},
        {3.141592653589793, "3.141592653589793"},
        {0.30000000000000004, "0.30000000000000004"},
        {123.456, "123.456"},
        {-0.001, "-0.001"},
    };
    char out[MLO_PBJSON_DTOA_MAX + 1];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = mlo__pbjson_dtoa(cases[i].v, out);
        out[n] = '\0';
        assert_string_equal(out, cases[i].s);
    }
    /* random bit patterns and random "typical" values read back exactly,
     * through jansson as the decoder does */
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 300000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double v;
        if (i % 2) {
            memcpy(&v, &s, sizeof v);
        } else {
            v = (double)(s >> 11) / 9007199254740992.0 * ((i % 3) ? 1e3 : 1e-5);
        }
        if (!isfinite(v))
            continue;
        size_t n = mlo__pbjson_dtoa(v, out);
        assert_true(n < MLO_PBJSON_DTOA_MAX);
        out[n] = '\0';
        double back = strtod(out, NULL);
        if (memcmp(&back, &v, sizeof v) != 0)
            fail_msg("%a -> %s -> %a", v, out, back);
        json_t *j = json_loadb(out, n, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        double jb = json_is_real(j) ? json_real_value(j) : (double)json_integer_value(j);
        json_decref(j);
        if (memcmp(&jb, &v, sizeof v) != 0 && v != 0)
            fail_msg("%a -> %s -> jansson %a", v, out, jb);
    }
}

static void test_string_escaping(void **state) {
    (void)state;
    Mlflow__Param p = MLFLOW__PARAM__INIT;
    p.key = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f";
    p.value = "h\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF";
    char *json = roundtrip(&p.base);
    assert_string_equal(
        json, "{\"key\":\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\","
              "\"value\":\"h\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF\"}");
    free(json);

    /* invalid UTF-8 becomes U+FFFD, so the body is always valid JSON */
    static const struct {
        const char *in, *out;
    } bad[] = {
        {"a\xff"
         "b",
         "a\xEF\xBF\xBD"
         "b"},
        {"\xC3", "\xEF\xBF\xBD"},                                                 /* truncated */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                                 /* overlong */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"\xE6\x97", "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xF0\x9F\x98\x80\x80", "\xF0\x9F\x98\x80\xEF\xBF\xBD"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Mlflow__Param q = MLFLOW__PARAM__INIT;
        q.key = (char *)bad[i].in;
        char *j = enc(&q.base);
        Mlflow__Param *back = (Mlflow__Param *)dec_ok(&mlflow__param__descriptor, j);
        assert_string_equal(back->key, bad[i].out);
        protobuf_c_message_free_unpacked(&back->base, NULL);
        free(j);
    }

    /* decoding escapes, including a surrogate pair */
    Mlflow__Param *d = (Mlflow__Param *)dec_ok(
        &mlflow__param__descriptor, "{\"key\":\"\\u00e9\\ud83d\\ude00\\/\\\"\",\"value\":\"\"}");
    assert_string_equal(d->key, "\xC3\xA9\xF0\x9F\x98\x80/\"");
    assert_string_equal(d->value, "");
    protobuf_c_message_free_unpacked(&d->base, NULL);

    /* a long string crossing the escaper's chunk boundaries */
    size_t n = 3 * 4096 + 17;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 7 == 0 ? '"' : i % 11 == 0 ? '\n' : 'a' + (int)(i % 26));
    memcpy(big + 4094, "\xF0\x9F\x98\x80", 4); /* straddles the first chunk end */
    big[n] = '\0';
    Mlflow__Param q = MLFLOW__PARAM__INIT;
    q.key = big;
    json = roundtrip(&q.base);
    free(json);
    free(big);
}

static void test_unknown_and_camel_case(void **state) {
    (void)state;
    Mlflow__LogBatch *lb = (Mlflow__LogBatch *)dec_ok(
        &mlflow__log_batch__descriptor,
        "{\"runId\":\"r1\",\"future_field\":{\"x\":[1,2,{\"y\":null}]},\"unknown\":[],"
        "\"metrics\":[{\"key\":\"k\",\"value\":1,\"timestamp\":\"5\",\"extra\":true,"
        "\"datasetName\":\"d\"}],"
        "\"params\":[],\"tags\":null}");
    assert_string_equal(lb->run_id, "r1");
    assert_int_equal(lb->n_metrics, 1);
    assert_string_equal(lb->metrics[0]->key, "k");
    assert_true(lb->metrics[0]->has_value && lb->metrics[0]->value == 1.0);
    assert_true(lb->metrics[0]->has_timestamp && lb->metrics[0]->timestamp == 5);
    assert_false(lb->metrics[0]->has_step);
    assert_string_equal(lb->metrics[0]->dataset_name, "d");
    assert_int_equal(lb->n_params, 0);
    assert_int_equal(lb->n_tags, 0);
    protobuf_c_message_free_unpacked(&lb->base, NULL);

    /* the proto name wins over the camelCase one; null means absent */
    Mlflow__RunInfo *ri = (Mlflow__RunInfo *)dec_ok(
        &mlflow__run_info__descriptor,
        "{\"runId\":\"camel\",\"run_id\":\"proto\",\"experimentId\":\"7\",\"startTime\":12,"
        "\"endTime\":null,\"lifecycleStage\":\"active\",\"artifactUri\":\"mlflow-artifacts:/x\","
        "\"status\":\"FINISHED\",\"run_name\":null}");
    assert_string_equal(ri->run_id, "proto");
    assert_string_equal(ri->experiment_id, "7");
    assert_true(ri->has_start_time && ri->start_time == 12);
    assert_false(ri->has_end_time);
    assert_string_equal(ri->lifecycle_stage, "active");
    assert_string_equal(ri->artifact_uri, "mlflow-artifacts:/x");
    assert_true(ri->has_status && ri->status == MLFLOW__RUN_STATUS__FINISHED);
    assert_null(ri->run_name);
    protobuf_c_message_free_unpacked(&ri->base, NULL);

    /* enums by number too; any int32 number is kept */
    Mlflow__UpdateRun *ur =
        (Mlflow__UpdateRun *)dec_ok(&mlflow__update_run__descriptor, "{\"status\":5}");
    assert_int_equal(ur->status, MLFLOW__RUN_STATUS__KILLED);
    protobuf_c_message_free_unpacked(&ur->base, NULL);
    ur = (Mlflow__UpdateRun *)dec_ok(&mlflow__update_run__descriptor, "{\"status\":99}");
    assert_int_equal(ur->status, 99);
    char *json = enc(&ur->base);
    assert_string_equal(json, "{\"status\":99}");
    free(json);
    protobuf_c_message_free_unpacked(&ur->base, NULL);
    DEC_BAD(&mlflow__update_run__descriptor, "{\"status\":\"finished\"}");
    DEC_BAD(&mlflow__update_run__descriptor, "{\"status\":\"\"}");
    const char *err = DEC_BAD(&mlflow__update_run__descriptor, "{\"status\":\"BOGUS\"}");
    assert_non_null(strstr(err, "mlflow.UpdateRun.status"));
}

static void test_responses(void **state) {
    (void)state;
    /* shaped like MLflow 2.x server answers */
    Mlflow__GetRun__Response *gr = (Mlflow__GetRun__Response *)dec_ok(
        &mlflow__get_run__response__descriptor,
        "{\"run\": {\"info\": {\"run_uuid\": \"abc\", \"experiment_id\": \"1\", \"run_name\": "
        "\"r\","
        " \"user_id\": \"me\", \"status\": \"RUNNING\", \"start_time\": 1700000000000,"
        " \"artifact_uri\": \"mlflow-artifacts:/1/abc/artifacts\", \"lifecycle_stage\": \"active\","
        " \"run_id\": \"abc\"}, \"data\": {\"metrics\": [{\"key\": \"loss\", \"value\": \"NaN\","
        " \"timestamp\": 1700000000001, \"step\": 3}], \"params\": [{\"key\": \"lr\", \"value\": "
        "\"0.1\"}],"
        " \"tags\": [{\"key\": \"mlflow.user\", \"value\": \"me\"}]}, \"inputs\": {}}}");
    assert_non_null(gr->run);
    assert_string_equal(gr->run->info->run_id, "abc");
    assert_int_equal(gr->run->info->status, MLFLOW__RUN_STATUS__RUNNING);
    assert_int_equal(gr->run->data->n_metrics, 1);
    assert_true(isnan(gr->run->data->metrics[0]->value));
    assert_int_equal(gr->run->data->metrics[0]->step, 3);
    assert_string_equal(gr->run->data->params[0]->value, "0.1");
    assert_string_equal(gr->run->data->tags[0]->key, "mlflow.user");
    assert_non_null(gr->run->inputs);
    assert_int_equal(gr->run->inputs->n_dataset_inputs, 0);
    assert_null(gr->run->outputs);
    char *json = roundtrip(&gr->base);
    free(json);
    protobuf_c_message_free_unpacked(&gr->base, NULL);

    Mlflow__GetExperimentByName__Response *ge = (Mlflow__GetExperimentByName__Response *)dec_ok(
        &mlflow__get_experiment_by_name__response__descriptor,
        "{\"experiment\":{\"experiment_id\":\"0\",\"name\":\"Default\",\"artifact_location\":\"/"
        "a\","
        "\"lifecycle_stage\":\"active\",\"last_update_time\":1,\"creation_time\":2,"
        "\"tags\":[{\"key\":\"k\",\"value\":\"v\"}]}}");
    assert_string_equal(ge->experiment->name, "Default");
    assert_int_equal(ge->experiment->n_tags, 1);
    assert_true(ge->experiment->has_creation_time && ge->experiment->creation_time == 2);
    protobuf_c_message_free_unpacked(&ge->base, NULL);

    Mlflow__CreateExperiment__Response *ce = (Mlflow__CreateExperiment__Response *)dec_ok(
        &mlflow__create_experiment__response__descriptor, "{\"experiment_id\":\"42\"}");
    assert_string_equal(ce->experiment_id, "42");
    protobuf_c_message_free_unpacked(&ce->base, NULL);

    Mlflow__UpdateRun__Response *ur = (Mlflow__UpdateRun__Response *)dec_ok(
        &mlflow__update_run__response__descriptor,
        "{\"run_info\":{\"run_id\":\"x\",\"status\":\"KILLED\",\"end_time\":5}}");
    assert_int_equal(ur->run_info->status, MLFLOW__RUN_STATUS__KILLED);
    assert_int_equal(ur->run_info->end_time, 5);
    protobuf_c_message_free_unpacked(&ur->base, NULL);

    Mlflow__GetMetricHistory__Response *mh = (Mlflow__GetMetricHistory__Response *)dec_ok(
        &mlflow__get_metric_history__response__descriptor,
        "{\"metrics\":[{\"key\":\"m\",\"value\":1.7976931348623157e308,\"timestamp\":1,\"step\":0},"
        "{\"key\":\"m\",\"value\":-1.7976931348623157e308,\"timestamp\":2,\"step\":1}],"
        "\"next_page_token\":\"tok\"}");
    assert_int_equal(mh->n_metrics, 2);
    assert_true(mh->metrics[1]->value == -1.7976931348623157e308);
    assert_string_equal(mh->next_page_token, "tok");
    protobuf_c_message_free_unpacked(&mh->base, NULL);

    Mlflow__SearchRuns__Response *sr = (Mlflow__SearchRuns__Response *)dec_ok(
        &mlflow__search_runs__response__descriptor,
        "{\"runs\":[{\"info\":{\"run_id\":\"a\"}},{\"info\":{\"run_id\":\"b\"},\"data\":{}}],"
        "\"next_page_token\":\"n\"}");
    assert_int_equal(sr->n_runs, 2);
    assert_string_equal(sr->runs[1]->info->run_id, "b");
    protobuf_c_message_free_unpacked(&sr->base, NULL);

    Mlflow__ErrorResponse *er = (Mlflow__ErrorResponse *)dec_ok(
        &mlflow__error_response__descriptor, "{\"error_code\":\"RESOURCE_ALREADY_EXISTS\","
                                             "\"message\":\"Experiment 'x' already exists.\"}");
    assert_string_equal(er->error_code, "RESOURCE_ALREADY_EXISTS");
    protobuf_c_message_free_unpacked(&er->base, NULL);

    /* empty write answers */
    const ProtobufCMessageDescriptor *empties[] = {
        &mlflow__log_batch__response__descriptor,  &mlflow__log_metric__response__descriptor,
        &mlflow__log_param__response__descriptor,  &mlflow__set_tag__response__descriptor,
        &mlflow__delete_tag__response__descriptor, &mlflow__log_inputs__response__descriptor,
    };
    for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
        ProtobufCMessage *m = dec_ok(empties[i], "{}");
        protobuf_c_message_free_unpacked(m, NULL);
        m = dec_ok(empties[i], " {\"whatever\": [1, {\"a\": \"b\"}]} \n");
        protobuf_c_message_free_unpacked(m, NULL);
    }

    /* LogInputs request as MLFLOW.md shows it */
    Mlflow__LogInputs *li = (Mlflow__LogInputs *)dec_ok(
        &mlflow__log_inputs__descriptor, "{\"run_id\":\"r\",\"datasets\":[{\"tags\":[{\"key\":"
                                         "\"mlflow.data.context\",\"value\":\"train\"}],"
                                         "\"dataset\":{\"name\":\"d\",\"digest\":\"123\",\"source_"
                                         "type\":\"local\",\"source\":\"{}\"}}]}");
    assert_int_equal(li->n_datasets, 1);
    assert_string_equal(li->datasets[0]->dataset->source_type, "local");
    assert_null(li->datasets[0]->dataset->schema);
    json = enc(&li->base);
    assert_string_equal(json, "{\"run_id\":\"r\",\"datasets\":[{\"tags\":[{\"key\":\"mlflow.data."
                              "context\",\"value\":\"train\"}],"
                              "\"dataset\":{\"name\":\"d\",\"digest\":\"123\",\"source_type\":"
                              "\"local\",\"source\":\"{}\"}}]}");
    free(json);
    protobuf_c_message_free_unpacked(&li->base, NULL);
}

static void test_malformed_rejected(void **state) {
    (void)state;
    const ProtobufCMessageDescriptor *d = &mlflow__get_run__response__descriptor;
    const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "[]",
        "null",
        "1",
        "\"s\"",
        "{\"run\":}",
        "{'run':1}",
        "{\"run\":{}} x",
        "{\"run\":{}}{}",
        "{\"run\":[]}",
        "{\"run\":1}",
        "{\"run\":\"x\"}",
        "{\"run\":{\"info\":[]}}",
        "{\"run\":{\"info\":{\"run_id\":5}}}",
        "{\"run\":{\"data\":{\"metrics\":{}}}}",
        "{\"run\":{\"data\":{\"metrics\":[1]}}}",
        "{\"run\":{\"data\":{\"metrics\":[null]}}}",
        "{\"run\":{\"data\":{\"metrics\":[{\"key\":[]}]}}}",
        "{\"run\":{\"info\":{\"status\":\"DONE\"}}}",
        "{\"run\":{\"info\":{\"start_time\":\"soon\"}}}",
        "{\"run\":{\"info\":{\"run_id\":\"\xff\"}}}",
        "{\"run\":{\"info\":{\"run_id\":\"a\\u0000b\"}}}",
        "<html><body>502 Bad Gateway</body></html>",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        DEC_BAD(d, bad[i]);

    /* embedded NUL, no terminator, NULL buffer, NULL err */
    dec_bad(d, "{}\0{}", 5);
    char nt[2] = {'{', '}'};
    ProtobufCMessage *m = NULL;
    assert_int_equal(mlo__pbjson_decode(d, nt, 2, &m, NULL, 0), 0);
    protobuf_c_message_free_unpacked(m, NULL);
    assert_int_equal(mlo__pbjson_decode(d, NULL, 0, &m, NULL, 0), -1);
    assert_null(m);
    assert_int_equal(mlo__pbjson_decode(d, "[", 1, &m, NULL, 0), -1);
    char tiny[4];
    assert_int_equal(mlo__pbjson_decode(d, "[", 1, &m, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), 3);
    assert_int_equal(mlo__pbjson_decode(NULL, "{}", 2, &m, NULL, 0), -1);
    assert_int_equal(mlo__pbjson_decode(d, "{}", 2, NULL, NULL, 0), -1);
    assert_int_equal(mlo__pbjson_encode(NULL, NULL), -1);

    /* error text names the field */
    const char *err = DEC_BAD(&mlflow__metric__descriptor, "{\"value\":\"x\"}");
    assert_string_equal(err, "mlflow.Metric.value: expected a number");
    err = DEC_BAD(d, "{\"run\":{\"data\":{\"params\":[{\"key\":\"a\"},{\"value\":1}]}}}");
    assert_string_equal(err, "mlflow.Param.value: expected a string");
    err = DEC_BAD(d, "{");
    assert_non_null(strstr(err, "invalid JSON"));
}

/* Random mutations of valid bodies: must never crash or leak (run under
 * ASan), and whatever decodes must re-encode. */
static void test_mutations_no_crash(void **state) {
    (void)state;
    ProtobufCMessage *seed_msgs[3] = {
        fill_all(&mlflow__get_run__response__descriptor, 0),
        fill_all(&mlflow__search_runs__response__descriptor, 0),
        fill_all(&alltypes_descriptor, 0),
    };
    uint64_t s = 12345;
    for (int k = 0; k < 3; k++) {
        char *json = enc(seed_msgs[k]);
        size_t n = strlen(json);
        char *buf = malloc(n + 8);
        for (int it = 0; it < 4000; it++) {
            memcpy(buf, json, n);
            size_t len = n;
            int edits = 1 + it % 4;
            for (int e = 0; e < edits; e++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                size_t pos = (size_t)(s >> 8) % len;
                switch (s % 5) {
                case 0:
                    buf[pos] = (char)(s >> 40);
                    break;
                case 1:
                    len = pos + 1;
                    break;
                case 2:
                    buf[pos] = "{}[]\",:0-.eE\\"[(s >> 32) % 13];
                    break;
                case 3:
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    if (len > 1)
                        len--;
                    break;
                default:
                    buf[pos] = (char)('0' + (s >> 20) % 10);
                    break;
                }
            }
            ProtobufCMessage *m = NULL;
            char err[128];
            if (mlo__pbjson_decode(seed_msgs[k]->descriptor, buf, len, &m, err, sizeof err) == 0) {
                char *again = enc(m);
                ProtobufCMessage *m2 = dec_ok(seed_msgs[k]->descriptor, again);
                assert_msg_equal(m, m2);
                protobuf_c_message_free_unpacked(m2, NULL);
                free(again);
                protobuf_c_message_free_unpacked(m, NULL);
            } else {
                assert_null(m);
            }
        }
        free(buf);
        free(json);
        protobuf_c_message_free_unpacked(seed_msgs[k], NULL);
    }
}

/* map<string,string> fields (MultipartUploadCredential.headers) are JSON
 * objects both ways, not arrays of entry messages. */
static void test_map_field(void **state) {
    (void)state;
    const char *in = "{\"upload_id\":\"u1\",\"credentials\":[{\"url\":\"http://h/p?x=1\","
                     "\"part_number\":2,\"headers\":{\"x-ms-blob-type\":\"BlockBlob\","
                     "\"Content-Type\":\"a/b\"}}]}";
    ProtobufCMessage *m = NULL;
    char err[128] = "";
    assert_int_equal(mlo__pbjson_decode(&mlflow__create_multipart_upload__response__descriptor, in,
                                        strlen(in), &m, err, sizeof err),
                     0);
    Mlflow__CreateMultipartUpload__Response *r = (Mlflow__CreateMultipartUpload__Response *)m;
    assert_string_equal(r->upload_id, "u1");
    assert_int_equal(r->n_credentials, 1);
    Mlflow__MultipartUploadCredential *c = r->credentials[0];
    assert_int_equal(c->part_number, 2);
    assert_int_equal(c->n_headers, 2);
    int seen = 0;
    for (size_t i = 0; i < c->n_headers; i++) {
        if (!strcmp(c->headers[i]->key, "x-ms-blob-type")) {
            assert_string_equal(c->headers[i]->value, "BlockBlob");
            seen |= 1;
        } else if (!strcmp(c->headers[i]->key, "Content-Type")) {
            assert_string_equal(c->headers[i]->value, "a/b");
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    mlo_buf b = {0};
    assert_int_equal(mlo__pbjson_encode(&c->base, &b), 0);
    assert_non_null(
        strstr(b.data, "\"headers\":{\"x-ms-blob-type\":\"BlockBlob\",\"Content-Type\":\"a/b\"}")
            ? b.data
            : strstr(b.data,
                     "\"headers\":{\"Content-Type\":\"a/b\",\"x-ms-blob-type\":\"BlockBlob\"}"));
    mlo__buf_free(&b);
    protobuf_c_message_free_unpacked(m, NULL);
    /* an array where a map belongs is refused, not misread */
    const char *bad = "{\"credentials\":[{\"headers\":[{\"key\":\"a\",\"value\":\"b\"}]}]}";
    assert_int_equal(mlo__pbjson_decode(&mlflow__create_multipart_upload__response__descriptor, bad,
                                        strlen(bad), &m, err, sizeof err),
                     -1);
}

static void test_buf(void **state) {
    (void)state;
    mlo_buf b;
    mlo__buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    mlo__buf_reset(&b);
    assert_int_equal(mlo__buf_append(&b, "", 0), 0);
    assert_string_equal(b.data, "");
    assert_int_equal(mlo__buf_appends(&b, "ab"), 0);
    assert_int_equal(mlo__buf_appendc(&b, 'c'), 0);
    assert_int_equal(mlo__buf_printf(&b, "-%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "abc-42-x");
    assert_int_equal(b.len, 8);
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(mlo__buf_printf(&b, "%s|%s", big, big), 0);
    assert_int_equal(b.len, 8 + 2 * 999 + 1);
    assert_int_equal(strlen(b.data), b.len);
    size_t cap = b.cap;
    mlo__buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 100000; i++)
        assert_int_equal(mlo__buf_appendc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 100000);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(mlo__buf_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(mlo__buf_reserve(&b, SIZE_MAX - b.len), -1);
    assert_int_equal(b.len, 100000);
    mlo__buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    mlo__buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_map_field),
        cmocka_unit_test(test_every_message_roundtrips),
        cmocka_unit_test(test_alltypes_roundtrip),
        cmocka_unit_test(test_alltypes_exact),
        cmocka_unit_test(test_alltypes_decode_forms),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_logbatch_exact),
        cmocka_unit_test(test_nonfinite_and_int64),
        cmocka_unit_test(test_double_formatting),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_unknown_and_camel_case),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_malformed_rejected),
        cmocka_unit_test(test_mutations_no_crash),
    };
    return cmocka_run_group_tests_name("pbjson", tests, NULL, NULL);
}
