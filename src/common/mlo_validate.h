/*
 * mlo_validate.h - MLflow's key and value rules (as the server applies
 * them), UTF-8, and artifact paths.  Threads: any; no state.
 */
#ifndef MLO_VALIDATE_H
#define MLO_VALIDATE_H

#include <stddef.h>

/* Returns MLO_OK, MLO_ERR_INVALID_KEY or MLO_ERR_INVALID_UTF8; *len gets strlen. */
int mlo__validate_key(const char *key, size_t *len);
/* Validates UTF-8 and truncates to max_chars code points: *len gets the byte
 * length to keep, *truncated 1 when shorter than the string. */
int mlo__validate_value(const char *v, size_t max_chars, size_t *len, int *truncated);
/* 1 when s[0..n) is valid UTF-8. */
int mlo__validate_utf8(const char *s, size_t n);
/* A relative artifact path: UTF-8, no NUL (by construction), no backslash,
 * not absolute, no "." or ".." segment, no empty segment ("a//b", "a/"), no
 * control character, at most 4096 bytes.  allow_empty: NULL and "" are fine
 * (the root).  MLO_OK, MLO_ERR_INVALID_PATH, MLO_ERR_INVALID_UTF8. */
int mlo__validate_artifact_path(const char *p, int allow_empty);

#endif /* MLO_VALIDATE_H */
