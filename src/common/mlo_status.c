/*
 * mlo_status.c - the library's version and the names of its statuses
 * (public: mlo_version, mlo_version_number, mlo_strerror).  A leaf every
 * module may use for its messages.
 */
#include "mlo.h"

MLO_API const char *mlo_version(void) {
#define MLO_STR2(x) #x
#define MLO_STR(x) MLO_STR2(x)
    return MLO_STR(MLO_VERSION_MAJOR) "." MLO_STR(MLO_VERSION_MINOR) "." MLO_STR(MLO_VERSION_PATCH);
}

MLO_API unsigned mlo_version_number(void) {
    return MLO_VERSION_NUMBER;
}

MLO_API const char *mlo_strerror(int status) {
    switch (status) {
    case MLO_OK:
        return "ok";
    case MLO_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case MLO_ERR_INVALID_KEY:
        return "invalid key (MLflow allows 1-250 letters, digits, _ - . space / : as a normalized "
               "relative path)";
    case MLO_ERR_INVALID_UTF8:
        return "string is not valid UTF-8";
    case MLO_ERR_INVALID_STATUS:
        return "invalid run status";
    case MLO_ERR_QUEUE_FULL:
        return "event queue full: event dropped";
    case MLO_ERR_CLOSED:
        return "client is closed";
    case MLO_ERR_NO_MEMORY:
        return "out of memory";
    case MLO_ERR_TIMEOUT:
        return "timed out";
    case MLO_ERR_NETWORK:
        return "tracking server unreachable";
    case MLO_ERR_TLS:
        return "TLS failure";
    case MLO_ERR_SERVER_INVALID:
        return "server refused the request as invalid";
    case MLO_ERR_ALREADY_EXISTS:
        return "resource already exists";
    case MLO_ERR_NOT_FOUND:
        return "resource does not exist";
    case MLO_ERR_PERMISSION:
        return "permission denied or not authenticated";
    case MLO_ERR_RATE_LIMITED:
        return "rate limited by the server";
    case MLO_ERR_SERVER:
        return "server error";
    case MLO_ERR_PROTOCOL:
        return "unexpected answer from the server";
    case MLO_ERR_CONFIG:
        return "invalid or missing configuration";
    case MLO_ERR_NOT_SUPPORTED:
        return "not supported yet";
    case MLO_ERR_INTERNAL:
        return "internal error";
    case MLO_WARN_TRUNCATED:
        return "value truncated to the server's limit";
    case MLO_WARN_RETRY:
        return "request retried";
    case MLO_ERR_STORE:
        return "store directory unusable (see the error callback)";
    case MLO_ERR_IO:
        return "local file could not be read or written";
    case MLO_ERR_INVALID_PATH:
        return "invalid artifact path";
    case MLO_ERR_ARTIFACTS_NOT_PROXIED:
        return "the run's artifact store is not served by the tracking server (start it with "
               "--serve-artifacts)";
    default:
        return "unknown status";
    }
}
