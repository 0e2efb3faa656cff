/* mlo_pbjson: one generic codec between protobuf-c messages and the JSON
 * that MLflow's REST API speaks, driven only by the protobuf-c descriptors:
 * a new message in proto/mlflow_service.proto needs no code here.
 *
 * Mapping (proto3 JSON mapping, adapted to the MLflow server):
 *   field names    written as the proto names (snake_case, as MLflow does);
 *                  read as the proto name or the lowerCamelCase JSON name
 *   presence       proto2: has_xxx / non-NULL (and not the default pointer)
 *                  / n > 0; proto3: non-zero; oneof: the selected member
 *   int32..uint64  JSON numbers (MLflow reads them; uint64 above INT64_MAX
 *                  as a decimal string, since int64-based parsers such as
 *                  jansson refuse such numbers); read from numbers (integral
 *                  reals too) or decimal strings
 *   double, float  a short decimal that reads back exactly (Grisu2: the
 *                  shortest in all but ~0.1% of cases), never a non-JSON
 *                  token: integers below 2^53 as integers ("3"), plain
 *                  notation for 1e-6 <= |v| < 1e15 ("0.25"), else exponent
 *                  notation ("1e21", "1.5e-7"), -0.0 as "-0.0"; floats
 *                  survive decimal -> double -> float;
 *                  NaN, +inf, -inf as the strings "NaN", "Infinity",
 *                  "-Infinity"; read from numbers, those strings, or numeric
 *                  strings
 *   bool           true / false
 *   enum           the value's name ("FINISHED"), its number if it has no
 *                  name; read by name (unknown name: error) or by number
 *                  (any int32, kept as is)
 *   string         JSON string; invalid UTF-8 is written as U+FFFD
 *   bytes          standard base64 with padding; read standard or URL-safe,
 *                  padding optional
 *   message        object; repeated: array; JSON null: field absent
 * Unknown JSON members are ignored. Nesting is bounded by
 * MLO_PBJSON_MAX_DEPTH on both sides.
 *
 * Threads: no global state; any thread may call, each with its own buffers.
 */
#ifndef MLO_PBJSON_H
#define MLO_PBJSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "mlo_buf.h"

#define MLO_PBJSON_MAX_DEPTH 64

/* Appends the compact JSON of msg to out (out keeps what it held before).
 * Returns 0, or -1 on out-of-memory (or a message nested deeper than
 * MLO_PBJSON_MAX_DEPTH); on -1, out->len is back to its value at entry. */
int mlo__pbjson_encode(const ProtobufCMessage *msg, mlo_buf *out);

/* Parses JSON text (len bytes, need not be NUL-terminated) into a new
 * message of type desc. On success returns 0 and *out, which the caller
 * frees with protobuf_c_message_free_unpacked(*out, NULL). On malformed
 * JSON or a type mismatch returns -1, out of memory -2; either sets *out to NULL and
 * writes a short NUL-terminated reason into err (if err is non-NULL and
 * errlen > 0), e.g. "mlflow.Metric.value: expected a number". */
int mlo__pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                       ProtobufCMessage **out, char *err, size_t errlen);

/* Writes the JSON token the encoder uses for a double: a short decimal
 * (Grisu2) that reads back as exactly v ("0.1", "1e-7", "123", "-0.0"), or "\"NaN\"",
 * "\"Infinity\"", "\"-Infinity\"" (with the quotes). out must hold at least
 * MLO_PBJSON_DTOA_MAX bytes; returns the length written (no NUL is added).
 * Locale-independent. */
#define MLO_PBJSON_DTOA_MAX 32
size_t mlo__pbjson_dtoa(double v, char *out);

#endif /* MLO_PBJSON_H */
