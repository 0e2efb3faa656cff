/*
 * fuzz_pbjson.c - libFuzzer target: decoding what a tracking server (or a
 * proxy in front of it) answers, with mlo__pbjson_decode, then encoding what
 * decoded.
 *
 * Input: one selector byte, then the response body.  The selector picks the
 * message type, (byte - 'A') modulo the table size, so that a readable corpus
 * file starts with its letter:
 *   A ErrorResponse             F UpdateRun.Response        K LogMetric.Response
 *   B GetExperimentByName.Resp  G LogBatch.Response         L LogParam.Response
 *   C CreateExperiment.Response H GetMetricHistory.Response M SetTag.Response
 *   D CreateRun.Response        I SearchRuns.Response       N DeleteTag.Response
 *   E GetRun.Response           J GetExperiment.Response    O LogInputs.Response
 *   P not a message: the body's first 8 bytes as a double through
 *     mlo__pbjson_dtoa, which must read back (strtod) as the same bits.
 * The table is append-only: corpus files depend on the letters.
 *
 * Checks (abort on failure, which libFuzzer reports as a crash):
 *  - decode returns 0 with a message of the asked type, or -1 with *out NULL
 *    and a non-empty reason that fits the error buffer (bytes past errlen
 *    untouched);
 *  - what decoded encodes; the encoding is valid UTF-8 JSON that decodes
 *    again, and encodes to the very same bytes (the codec is a fixed point
 *    after one pass: nothing the server sent can make the client write
 *    something it cannot read back);
 *  - no leak (libFuzzer's LeakSanitizer), no memory or UB error (ASan, UBSan).
 * Built two ways: with clang -fsanitize=fuzzer (tests/meson.build) and, with
 * tests/fuzz_replay.c, as a plain program replaying tests/corpus/pbjson.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlflow_service.pb-c.h"
#include "mlo_buf.h"
#include "mlo_pbjson.h"

/* defined by fuzz_replay.c; libFuzzer builds get this weak one */
__attribute__((weak)) int mlo_fuzz_accepted;

int mlo__validate_utf8(const char *s, size_t n); /* mlo_validate.c */

static const ProtobufCMessageDescriptor *const targets[] = {
    &mlflow__error_response__descriptor,
    &mlflow__get_experiment_by_name__response__descriptor,
    &mlflow__create_experiment__response__descriptor,
    &mlflow__create_run__response__descriptor,
    &mlflow__get_run__response__descriptor,
    &mlflow__update_run__response__descriptor,
    &mlflow__log_batch__response__descriptor,
    &mlflow__get_metric_history__response__descriptor,
    &mlflow__search_runs__response__descriptor,
    &mlflow__get_experiment__response__descriptor,
    &mlflow__log_metric__response__descriptor,
    &mlflow__log_param__response__descriptor,
    &mlflow__set_tag__response__descriptor,
    &mlflow__delete_tag__response__descriptor,
    &mlflow__log_inputs__response__descriptor,
};
#define NTARGETS (sizeof targets / sizeof targets[0])
#define NSEL (NTARGETS + 1) /* + the dtoa check */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_pbjson: check failed: %s: ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ERRLEN 96
#define CANARY 0x5a

/* Decodes with the error-buffer contract checked; returns the message or NULL. */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                                char *reason) {
    char err[ERRLEN + 16];
    memset(err, CANARY, sizeof err);
    ProtobufCMessage *m = (ProtobufCMessage *)&err; /* must be overwritten */
    int rc = mlo__pbjson_decode(d, json, len, &m, err, ERRLEN);
    for (size_t i = ERRLEN; i < sizeof err; i++)
        CHECK(err[i] == CANARY, "decode wrote past errlen");
    CHECK(memchr(err, 0, ERRLEN) != NULL, "reason not NUL-terminated within errlen");
    if (rc == 0) {
        CHECK(m != NULL && m->descriptor == d, "decode returned 0 without a %s", d->name);
    } else {
        CHECK(rc == -1, "decode returned %d", rc);
        CHECK(m == NULL, "decode failed but left *out set");
        CHECK(err[0] != 0, "decode failed without a reason");
        m = NULL;
    }
    if (reason)
        memcpy(reason, err, ERRLEN); /* NUL within ERRLEN: checked above */
    return m;
}

static void check_dtoa(const uint8_t *data, size_t size) {
    double v = 0;
    memcpy(&v, data, size < sizeof v ? size : sizeof v);
    char out[MLO_PBJSON_DTOA_MAX + 1];
    memset(out, CANARY, sizeof out);
    size_t n = mlo__pbjson_dtoa(v, out);
    CHECK(n > 0 && n < MLO_PBJSON_DTOA_MAX, "dtoa length %zu", n);
    CHECK((unsigned char)out[MLO_PBJSON_DTOA_MAX] == CANARY, "dtoa wrote past its bound");
    out[n] = 0;
    if (isnan(v)) {
        CHECK(!strcmp(out, "\"NaN\""), "NaN written as %s", out);
        return;
    }
    if (isinf(v)) {
        CHECK(!strcmp(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\""), "inf written as %s", out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        CHECK(strchr("0123456789-.e", out[i]) != NULL, "dtoa wrote %s", out);
    char *end;
    double back = strtod(out, &end);
    CHECK(*end == 0, "dtoa output %s not a number", out);
    CHECK(memcmp(&back, &v, sizeof v) == 0, "%.17g written as %s reads back as %.17g", v, out,
          back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mlo_fuzz_accepted = -1;
    if (size < 1)
        return 0;
    unsigned sel = (unsigned)(uint8_t)(data[0] - 'A') % NSEL;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (sel == NTARGETS) {
        check_dtoa(data + 1, len);
        return 0;
    }
    const ProtobufCMessageDescriptor *d = targets[sel];

    ProtobufCMessage *m = decode(d, body, len, NULL);
    mlo_fuzz_accepted = m != NULL;
    if (!m)
        return 0;

    mlo_buf j1, j2;
    mlo__buf_init(&j1);
    mlo__buf_init(&j2);
    CHECK(mlo__pbjson_encode(m, &j1) == 0, "%s decoded but does not encode", d->name);
    CHECK(j1.data != NULL && strlen(j1.data) == j1.len, "encoding has an embedded NUL");
    CHECK(mlo__validate_utf8(j1.data, j1.len), "encoding is not valid UTF-8: %s", j1.data);

    char why[ERRLEN];
    ProtobufCMessage *m2 = decode(d, j1.data, j1.len, why);
    CHECK(m2 != NULL, "own encoding of %s does not decode (%s): %s", d->name, why, j1.data);
    CHECK(mlo__pbjson_encode(m2, &j2) == 0, "re-decoded %s does not encode", d->name);
    CHECK(j1.len == j2.len && memcmp(j1.data, j2.data, j1.len) == 0,
          "encode(decode(encode(m))) != encode(m):\n  %s\n  %s", j1.data, j2.data);

    /* appending keeps what the buffer held */
    size_t before = j2.len;
    CHECK(mlo__pbjson_encode(m2, &j2) == 0 && j2.len == 2 * before &&
              memcmp(j2.data, j2.data + before, before) == 0,
          "encode does not append");

    protobuf_c_message_free_unpacked(m2, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    mlo__buf_free(&j1);
    mlo__buf_free(&j2);
    return 0;
}
