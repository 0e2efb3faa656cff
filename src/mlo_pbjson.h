/* mlo_pbjson: one generic codec between protobuf-c messages and the JSON
 * that MLflow's REST API speaks, driven only by the protobuf-c descriptors:
 * a new message in proto/mlflow_service.proto needs no code here.
 *
 * Mapping (proto3 JSON mapping, adapted to the MLflow server):
 *   field names    written as the proto names (snake_case, as MLflow does);
 *                  read as the proto name or the lowerCamelCase JSON name
 *   presence       proto2: has_xxx / non-NULL (and not the default pointer)
 *                  / n > 0; proto3: non-zero; oneof: the selected member
 *   int32..uint64  JSON numbers; read from numbers (integral reals too) or
 *                  decimal strings
 *   double, float  shortest round-trip decimal (never a non-JSON token);
 *                  NaN, +inf, -inf as the strings "NaN", "Infinity",
 *                  "-Infinity"; read from numbers, those strings, or numeric
 *                  strings
 *   bool           true / false
 *   enum           the value's name ("FINISHED"), its number if it has no
 *                  name; read by name (unknown name: error) or number
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
 * JSON, a type mismatch or out-of-memory returns -1, sets *out to NULL and
 * writes a short NUL-terminated reason into err (if err is non-NULL and
 * errlen > 0), e.g. "mlflow.Metric.value: expected a number". */
int mlo__pbjson_decode(const ProtobufCMessageDescriptor *desc,
                       const char *json, size_t len,
                       ProtobufCMessage **out, char *err, size_t errlen);

/* Writes the JSON token the encoder uses for a double: the shortest decimal
 * that reads back as exactly v ("0.1", "1e-7", "123", "-0.0"), or "\"NaN\"",
 * "\"Infinity\"", "\"-Infinity\"" (with the quotes). out must hold at least
 * MLO_PBJSON_DTOA_MAX bytes; returns the length written (no NUL is added).
 * Locale-independent. */
#define MLO_PBJSON_DTOA_MAX 32
size_t mlo__pbjson_dtoa(double v, char *out);

#endif /* MLO_PBJSON_H */
