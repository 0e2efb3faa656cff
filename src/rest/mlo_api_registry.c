/*
 * mlo_api_registry.c - the model registry's REST calls (MLflow's
 * model_registry.proto): registered-models/create, model-versions/create,
 * registered-models/alias (set and get), model-versions/get.
 *
 * Same rules as mlo_api.c: every request is an MLflow message encoded by
 * mlo__api_post / mlo__api_get, every answer decoded into its Response
 * message; failures are classified into an mlo_api_error.  Strings handed
 * back are malloc'd copies (the decoded answer is freed before returning).
 *
 * Threads: as every mlo_api call, the thread that owns the api object.
 */
#define _GNU_SOURCE
#include "mlo_api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET path?k1=v1[&k2=v2] (a NULL value is left out) into *resp. */
static int reg_get(mlo_api *a, const char *path, const char *k1, const char *v1, const char *k2,
                   const char *v2, const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                   mlo_api_error *e) {
    mlo__buf_reset(&a->query);
    if (mlo__api_query(a, &a->query, k1, v1) || mlo__api_query(a, &a->query, k2, v2) ||
        mlo__buf_appendc(&a->query, '\0'))
        return mlo__api_no_memory(e, path);
    return mlo__api_get(a, path, a->query.data, rdesc, resp, e);
}

int mlo__api_create_registered_model(mlo_api *a, const char *name, mlo_api_error *e) {
    Mlflow__CreateRegisteredModel req = MLFLOW__CREATE_REGISTERED_MODEL__INIT;
    req.name = (char *)name;
    int st = mlo__api_post(a, "registered-models/create", &req.base, NULL, NULL, e);
    if (st == MLO_ERR_ALREADY_EXISTS) {
        /* MLflow's register_model: an existing model is what we wanted
         * (400 RESOURCE_ALREADY_EXISTS, read from the error code) */
        memset(e, 0, sizeof *e);
        st = MLO_OK;
    }
    return st;
}

int mlo__api_create_model_version(mlo_api *a, const char *name, const char *source,
                                  const char *run_id, char **version, mlo_api_error *e) {
    Mlflow__CreateModelVersion req = MLFLOW__CREATE_MODEL_VERSION__INIT;
    req.name = (char *)name;
    req.source = (char *)source;
    req.run_id = (char *)run_id;
    ProtobufCMessage *m = NULL;
    int st = mlo__api_post(a, "model-versions/create", &req.base,
                           &mlflow__create_model_version__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    const Mlflow__CreateModelVersion__Response *r = (const Mlflow__CreateModelVersion__Response *)m;
    if (r->model_version && r->model_version->version && *r->model_version->version)
        st = version ? mlo__api_dup(version, r->model_version->version, e) : MLO_OK;
    else
        st = mlo__api_missing(e, "model-versions/create");
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

int mlo__api_set_model_alias(mlo_api *a, const char *name, const char *alias, const char *version,
                             mlo_api_error *e) {
    Mlflow__SetRegisteredModelAlias req = MLFLOW__SET_REGISTERED_MODEL_ALIAS__INIT;
    req.name = (char *)name;
    req.alias = (char *)alias;
    req.version = (char *)version;
    return mlo__api_post(a, "registered-models/alias", &req.base, NULL, NULL, e);
}

int mlo__api_get_model_version(mlo_api *a, const char *name, const char *version, const char *alias,
                               char **source, char **run_id, char **version_out, mlo_api_error *e) {
    const char *what = alias ? "registered-models/alias" : "model-versions/get";
    ProtobufCMessage *m = NULL;
    int st;
    const Mlflow__ModelVersion *mv;
    if (alias) {
        st = reg_get(a, what, "name", name, "alias", alias,
                     &mlflow__get_model_version_by_alias__response__descriptor, &m, e);
        /* MLflow's SQL registry answers an unknown alias (or model) with
         * 400 INVALID_PARAMETER_VALUE "Registered model alias X not found."
         * rather than 404: it means "not found" all the same */
        if (st == MLO_ERR_SERVER_INVALID && strstr(e->message, "not found")) {
            st = e->status = MLO_ERR_NOT_FOUND;
        }
        if (st != MLO_OK)
            return st;
        mv = ((const Mlflow__GetModelVersionByAlias__Response *)m)->model_version;
    } else {
        st = reg_get(a, what, "name", name, "version", version,
                     &mlflow__get_model_version__response__descriptor, &m, e);
        if (st != MLO_OK)
            return st;
        mv = ((const Mlflow__GetModelVersion__Response *)m)->model_version;
    }
    char *src = NULL, *rid = NULL, *ver = NULL;
    if (!mv || !mv->source || (version_out && (!mv->version || !*mv->version))) {
        st = mlo__api_missing(e, what);
    } else {
        st = source ? mlo__api_dup(&src, mv->source, e) : MLO_OK;
        if (st == MLO_OK && run_id)
            st = mlo__api_dup(&rid, mv->run_id ? mv->run_id : "", e);
        if (st == MLO_OK && version_out)
            st = mlo__api_dup(&ver, mv->version, e);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    if (st != MLO_OK) {
        free(src);
        free(rid);
        free(ver);
        if (st == MLO_ERR_NO_MEMORY)
            mlo__api_no_memory(e, what);
        return st;
    }
    if (source)
        *source = src;
    if (run_id)
        *run_id = rid;
    if (version_out)
        *version_out = ver;
    return MLO_OK;
}
