#!/usr/bin/python3
"""MLflow-compatible tracking test server for mlo's tests.

Design
------
* Standard library only (Debian's /usr/bin/python3, 3.11): ThreadingHTTPServer speaking
  HTTP/1.1 with keep-alive, an in-memory sqlite3 database behind one lock, json, ssl.
* Behaviour follows /work/shared/MLFLOW.md (a real MLflow 2.21 server): same routes, same
  validation, same error bodies and status codes, same quirks.  The most important quirk is
  how MLflow reads a request: it parses the JSON body into a protobuf message with
  google.protobuf.json_format.ParseDict, which is *not* transactional: it walks the JSON
  object in document order and, on the first value it cannot convert (a bare NaN, 1e309, the
  string "nan", a fractional timestamp, a number where a string belongs, ...), it stops,
  leaving every field set before that point set and everything after at its default.  MLflow
  swallows that ParseError and carries on with the partial message.  `proto_parse()` below
  reproduces this, which is where "bare NaN is stored as value 0, timestamp 0" comes from
  (and also: the rest of that batch after the bad value is silently dropped).
* Every tracking route is a row in ROUTES (path under /api/2.0/mlflow/ or /ajax-api/2.0/mlflow/
  -> {method: handler}); a handler takes a Request and returns the JSON response object or
  raises MlflowError.  PREFIX_ROUTES resolves the proxied artifact routes
  (/api/2.0/mlflow-artifacts/...); their handlers return a Response and may stream.
* Test control lives under /_test/ (never logged, never faulted): fault injection, a dump of
  everything stored, the request log, reset, config, shutdown (see Handler.handle_control).
* Nothing may crash the server: every request is wrapped; an unexpected exception in a
  handler gives 500 {"error_code": "INTERNAL_ERROR", ...}.

Tracking routes (under /api/2.0/mlflow/): experiments/create, get, get-by-name, search; runs/create,
update, delete, restore, get, search, log-batch, log-metric, log-parameter, set-tag,
delete-tag, log-inputs; metrics/get-history; artifacts/list (GET, run-relative listing of a
proxied run's artifacts; other artifact roots list nothing).

Dataset inputs (runs/log-inputs): name, digest, source_type, source required (2.21 would store
empty strings; the client must send them anyway), digest <= 36, name <= 500, source <= 65535,
schema <= 1048575, profile <= 16777215 characters, input tag key <= 255, value <= 500; the run
must exist (404) and be active (400).  As MLflow's SQL store, datasets are kept per experiment
by (name, digest), the first one logged wins, and a run links a dataset once (logging it again,
in the same request or later, changes nothing).  runs/get and runs/search show them as
run.inputs.dataset_inputs [{tags?, dataset{name, digest, source_type, source, schema?,
profile?}}].

Model registry (under /api/2.0/mlflow/), as MLflow 2.21 with a SQL registry store:
  POST registered-models/create {name, tags?, description?} -> {registered_model}; 400
       RESOURCE_ALREADY_EXISTS "Registered Model (name=X) already exists. ..."; 400 for a
       missing/empty name (schema check) or a bad tag (key <= 250, value <= 5000).
  GET  registered-models/get?name= -> {registered_model: {name, creation_timestamp,
       last_updated_timestamp, description? (if non-empty), latest_versions? (newest version
       per stage), tags?, aliases? [{alias, version}]}}; 404 "Registered Model with name=X not
       found".  Empty lists are left out, as MLflow's JSON does.
  POST model-versions/create {name, source, run_id?, tags?, run_link?, description?} ->
       {model_version: {name, version ("1", "2", ... per model), creation_timestamp,
       last_updated_timestamp, current_stage "None", description "", source, run_id "",
       status "READY", tags?, run_link "", aliases?}}; 404 if the model is missing; 400 for a
       local source (a path, file:) outside a local run artifact dir, or a source with
       relative parts ("..", %2e%2e, "/./"); run_id is not checked otherwise (as MLflow).
  GET  model-versions/get?name=&version= ; 404 "Model Version (name=X, version=N) not found",
       400 "Parameter 'version' must be an integer, got 'x'."
  GET  model-versions/get-download-uri?name=&version= -> {artifact_uri} (the source, or for a
       models:/ source the version it points to)
  POST registered-models/alias {name, alias, version} -> {}; alias rules: not empty, only
       [A-Za-z0-9_-], <= 255, not "latest" (any case), not v<digits>/V<digits> (400); the
       version must exist (404 Model Version ... not found); setting it again moves it.
  GET  registered-models/alias?name=&alias= -> {model_version: {..., aliases: [...]}}; an
       unknown alias (or model) is 400 INVALID_PARAMETER_VALUE "Registered model alias X not
       found." -- not 404: that is what MLflow's SQL store says.
  GET  model-versions/search?filter=&page_token= -> {model_versions: [...],
       next_page_token?}: only the filters "run_id = '<id>'" and "name = '<name>'" (MLflow
       takes more; 400 INVALID_PARAMETER_VALUE here), at most 100 per page, by name, then
       newest version first.
  DELETE registered-models/alias with a JSON body {name, alias} (MLflow reads no query
       string on DELETE) -> {}; 404 for an unknown model, fine for an unknown alias.

Artifacts, as `mlflow server --serve-artifacts` (the default; --no-serve-artifacts or config
"serve_artifacts": false turns it off):
* Experiments get artifact_location mlflow-artifacts:/<experiment_id>; runs get artifact_uri
  mlflow-artifacts:/<experiment_id>/<run_id>/artifacts.  Not serving: new experiments get
  s3://mlo-test-bucket/<experiment_id>, new runs s3://mlo-test-bucket/<experiment_id>/<run_id>/
  artifacts, and every mlflow-artifacts route answers as MLflow does: 503 text/html "Endpoint:
  /api/2.0/mlflow-artifacts/artifacts/<path:artifact_path> disabled due to the mlflow server
  running with `--no-serve-artifacts`. ..." (not JSON).
* Files are stored under --artifact-root DIR at their artifact paths (default: a temporary
  directory removed at exit); the server's own scratch space is DIR/.mlflow-test-server/.
  Uploads stream to a staging file (1 MiB pieces; Content-Length or chunked) and are renamed
  into place; downloads stream from the file.
* Routes (also under /ajax-api/2.0/mlflow-artifacts/):
  PUT    /api/2.0/mlflow-artifacts/artifacts/<path>   body = the file -> 200 {} (any
         Content-Type; an empty body stores an empty file)
  GET    /api/2.0/mlflow-artifacts/artifacts/<path>   -> the bytes, Content-Length (config
         "chunked_downloads": chunked instead), Content-Type guessed, Content-Disposition:
         attachment; missing (or a directory): 404 RESOURCE_DOES_NOT_EXIST JSON (real MLflow
         answers a Flask 500 HTML page: config "missing_artifact_status": 500)
  DELETE /api/2.0/mlflow-artifacts/artifacts/<path>   file or directory -> 200 {} (also if
         missing)
  GET    /api/2.0/mlflow-artifacts/artifacts?path=<dir> -> {"files": [{"path": "<basename>",
         "is_dir": false, "file_size": n} | {"path": "<basename>", "is_dir": true}]} sorted by
         name; no such directory (or a file): {}
  POST   /api/2.0/mlflow-artifacts/mpu/create/<dir>   {"path": <client's local file>,
         "num_parts": N} -> {"upload_id", "credentials": [{"url", "part_number", "headers":
         {}}]}; as MLflow's S3 repository the object is <dir>/<basename of "path">.  (MLflow
         leaves an empty headers map out; this server sends {}.)
  POST   /api/2.0/mlflow-artifacts/mpu/complete/<dir> {"path", "upload_id", "parts":
         [{"part_number", "etag", "url"}]} -> {} once the listed parts (ascending, each
         uploaded with that ETag, all but the last >= config mpu_min_part_size, default 5 MiB
         as S3) are joined into the file; else 400 INVALID_PARAMETER_VALUE quoting the S3 error
         (InvalidPart, InvalidPartOrder, EntityTooSmall, MalformedXML); unknown upload 404
         (NoSuchUpload).  A retried complete with the same parts answers {} again.  (Real
         MLflow passes S3 errors on as a bare 500.)
  POST   /api/2.0/mlflow-artifacts/mpu/abort/<dir>    {"path", "upload_id"} -> {} (parts
         dropped); unknown upload 404.
  mpu/* answer 501 {"error_code": "NOT_IMPLEMENTED", "message": "Multipart upload is not
  supported for the current artifact repository"} with --no-multipart / config "multipart":
  false (what MLflow says for a local artifact store).
  Bad paths ("..", absolute, "C:/", file:, backslash, control characters incl. NUL, "#",
  empty, a trailing "/" on PUT, the same percent-encoded any number of times): 400
  INVALID_PARAMETER_VALUE "Invalid path".
* Presigned part uploads ("S3"): PUT <credentials url> =
  http://127.0.0.1:<port>/_presigned/<upload_id>/<part>?uploadId=..&X-Amz-...&X-Amz-Signature=..
  (https with TLS).  Not under /_test: logged (with has_authorization) and faultable; no
  tracking-server auth or client certificate applies.  As S3: 200, no body, ETag: "<md5 hex>";
  the query must be kept (403 SignatureDoesNotMatch); an Authorization header is refused (400
  InvalidArgument); Transfer-Encoding: chunked is refused (501 NotImplemented) and
  Content-Length required (411); unknown/finished upload 404 NoSuchUpload; XML error bodies.
* Config "artifacts_down": true makes every artifact and presigned route answer 503 (JSON
  TEMPORARILY_UNAVAILABLE; XML ServiceUnavailable for presigned) until set false again.
  Fault rules target these routes by path prefix; "drop_after_bytes" cuts an upload midway.

CLI:  mlflow_test_server.py [--host 127.0.0.1] [--port 0] [--close]
          [--tls-cert F --tls-key F [--tls-client-ca F]] [--artifact-root DIR]
          [--no-serve-artifacts] [--no-multipart]
          [--idle-timeout SECONDS] [--require-basic USER:PASS] [--require-bearer TOKEN]
          [--verbose]
Prints "PORT <n>" on stdout once listening; stops on SIGTERM/SIGINT or POST /_test/shutdown.
"""

import argparse
import atexit
import base64
import hashlib
import hmac
import json
import math
import mimetypes
import os
import pathlib
import posixpath
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

MAX_DOUBLE = 1.7976931348623157e308
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 5000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
MAX_MODEL_REGISTRY_TAG_KEY_LENGTH = 250
MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH = 5000
MAX_REGISTERED_MODEL_ALIAS_LENGTH = 255

RUN_NAME_TAG = "mlflow.runName"
RUN_STATUSES = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}
VIEW_TYPES = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}

ERROR_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}
STATUS_ERROR_CODE = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}

API_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
API_DOCS_HINT = " See the API docs for more information about request parameters."

HTML_404 = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. If you entered the URL manually "
    "please check your spelling and try again.</p>\n"
)
HTML_405 = (
    "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
    "<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"
)
HTML_400 = (
    "<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n"
    "<p>The browser (or proxy) sent a request that this server could not understand.</p>\n"
)
HTML_500 = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable "
    "to complete your request. Either the server is overloaded or there is an error in the "
    "application.</p>\n"
)
NGINX_NO_CLIENT_CERT = (
    "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n"
    "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
    "<center>No required SSL certificate was sent</center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
UNAUTHENTICATED_TEXT = (
    "You are not authenticated. Please see "
    "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow "
    "on how to authenticate."
)


def nginx_html(status, reason):
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def now_ms():
    return int(time.time() * 1000)


class MlflowError(Exception):
    def __init__(self, message, error_code="INVALID_PARAMETER_VALUE"):
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    @property
    def status(self):
        return ERROR_STATUS.get(self.error_code, 500)

    def body(self):
        return {"error_code": self.error_code, "message": self.message}


def invalid_value(path, value, message=None):
    try:
        formatted = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except Exception:
        formatted = f"<{type(value).__name__}>"
    if message:
        return f"Invalid value {formatted} for parameter '{path}' supplied: {message}"
    return f"Invalid value {formatted} for parameter '{path}' supplied."


# ---------------------------------------------------------------------------------------------
# ParseDict emulation (see the module docstring)
# ---------------------------------------------------------------------------------------------


class ParseError(Exception):
    pass


STRING = ("string",)
DOUBLE = ("double",)
INT64 = ("int", INT64_MIN, INT64_MAX)
INT32 = ("int", INT32_MIN, INT32_MAX)


def ENUM(values):
    return ("enum", values)


def MSG(fields):
    return ("message", fields)


def REP(kind):
    return ("repeated", kind)


_SURROGATE = re.compile("[\ud800-\udfff]")


def convert_scalar(value, kind):
    """One scalar, as google.protobuf.json_format._ConvertScalarFieldValue does it."""
    t = kind[0]
    try:
        if t == "string":
            if not isinstance(value, str):
                raise ParseError(f"expected a string, got {type(value).__name__}")
            if _SURROGATE.search(value):
                raise ParseError("Unpaired surrogate")
            return value
        if t == "double":
            if isinstance(value, float):
                if math.isnan(value):
                    raise ParseError("Couldn't parse NaN, use quoted \"NaN\" instead")
                if math.isinf(value):
                    raise ParseError("Couldn't parse Infinity, use quoted \"Infinity\" instead")
                return value
            if value == "nan":
                raise ParseError("Couldn't parse float \"nan\", use \"NaN\" instead")
            if isinstance(value, (list, dict)):
                raise ParseError("Couldn't parse float")
            return float(value)  # Python syntax: "NaN", "Infinity", "1e309", " 5 " all work
        if t == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ParseError(f"Couldn't parse integer: {value}")
            if isinstance(value, str) and " " in value:
                raise ParseError(f"Couldn't parse integer: \"{value}\"")
            if isinstance(value, bool):
                raise ParseError(f"Bool value {value} is not acceptable for integer field")
            if isinstance(value, (list, dict)):
                raise ParseError("Couldn't parse integer")
            n = int(value)
            if not kind[1] <= n <= kind[2]:
                raise ParseError(f"Value out of range: {n}")
            return n
        if t == "enum":
            values = kind[1]
            if isinstance(value, str) and value in values:
                return value
            if isinstance(value, (list, dict)):
                raise ParseError("Invalid enum value")
            number = int(value)
            for name, num in values.items():
                if num == number:
                    return name
            raise ParseError(f"Invalid enum value {value}")
    except ParseError:
        raise
    except (ValueError, TypeError, OverflowError, ArithmeticError) as e:
        raise ParseError(str(e)) from None
    raise ParseError("unknown field kind")


def proto_parse(js, fields, out):
    """Fill `out` from JSON object `js` field by field in document order, like ParseDict with
    ignore_unknown_fields=True; raises ParseError at the first bad field, leaving `out`
    partially filled (exactly what MLflow then works with)."""
    if not isinstance(js, dict):
        raise ParseError("expected a JSON object")
    for name, value in js.items():
        kind = fields.get(name)
        if kind is None:
            continue
        if value is None:
            out.pop(name, None)
            continue
        if kind[0] == "repeated":
            lst = out[name] = []
            if not isinstance(value, list):
                raise ParseError(f"repeated field {name} must be in []")
            sub = kind[1]
            for item in value:
                if item is None:
                    raise ParseError("null is not allowed in a repeated field")
                if sub[0] == "message":
                    m = {}
                    lst.append(m)
                    proto_parse(item, sub[1], m)
                else:
                    lst.append(convert_scalar(item, sub))
        elif kind[0] == "message":
            m = out.setdefault(name, {})
            proto_parse(value, kind[1], m)
        else:
            out[name] = convert_scalar(value, kind)


def stringify_experiment_ids(x):
    """mlflow.utils.proto_json_utils._stringify_all_experiment_ids: experiment ids given as
    numbers become strings (iterative here, so deep nesting cannot blow the stack)."""

    def s(v):
        return str(v) if v is None or isinstance(v, (bool, int, float, str)) else v

    stack = [x]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in list(cur.items()):
                if k == "experiment_id":
                    cur[k] = s(v)
                elif k == "experiment_ids":
                    if isinstance(v, list):
                        cur[k] = [s(w) for w in v]
                elif k not in ("params", "tags", "metrics"):
                    stack.append(v)
        elif isinstance(cur, list):
            stack.extend(cur)


KV = MSG({"key": STRING, "value": STRING})
METRIC = MSG({"key": STRING, "value": DOUBLE, "timestamp": INT64, "step": INT64})
DATASET = MSG(
    {
        "name": STRING,
        "digest": STRING,
        "source_type": STRING,
        "source": STRING,
        "schema": STRING,
        "profile": STRING,
    }
)
DATASET_INPUT = MSG({"tags": REP(KV), "dataset": DATASET})

M_CREATE_EXPERIMENT = {"name": STRING, "artifact_location": STRING, "tags": REP(KV)}
M_GET_EXPERIMENT = {"experiment_id": STRING}
M_GET_EXPERIMENT_BY_NAME = {"experiment_name": STRING}
M_CREATE_RUN = {
    "experiment_id": STRING,
    "user_id": STRING,
    "run_name": STRING,
    "start_time": INT64,
    "tags": REP(KV),
}
M_UPDATE_RUN = {
    "run_id": STRING,
    "run_uuid": STRING,
    "status": ENUM(RUN_STATUSES),
    "end_time": INT64,
    "run_name": STRING,
}
M_RUN_ID = {"run_id": STRING, "run_uuid": STRING}
M_LOG_BATCH = {"run_id": STRING, "metrics": REP(METRIC), "params": REP(KV), "tags": REP(KV)}
M_LOG_METRIC = {
    "run_id": STRING,
    "run_uuid": STRING,
    "key": STRING,
    "value": DOUBLE,
    "timestamp": INT64,
    "step": INT64,
}
M_LOG_PARAM = {"run_id": STRING, "run_uuid": STRING, "key": STRING, "value": STRING}
M_SET_TAG = M_LOG_PARAM
M_DELETE_TAG = {"run_id": STRING, "key": STRING}
M_LOG_INPUTS = {"run_id": STRING, "datasets": REP(DATASET_INPUT)}
M_GET_METRIC_HISTORY = {
    "run_id": STRING,
    "run_uuid": STRING,
    "metric_key": STRING,
    "page_token": STRING,
    "max_results": INT32,
}
M_SEARCH_RUNS = {
    "experiment_ids": REP(STRING),
    "filter": STRING,
    "run_view_type": ENUM(VIEW_TYPES),
    "max_results": INT32,
    "order_by": REP(STRING),
    "page_token": STRING,
}
M_SEARCH_EXPERIMENTS = {
    "max_results": INT64,
    "page_token": STRING,
    "filter": STRING,
    "order_by": REP(STRING),
    "view_type": ENUM(VIEW_TYPES),
}
M_LIST_ARTIFACTS = {"run_id": STRING, "run_uuid": STRING, "path": STRING, "page_token": STRING}

# model registry (model_registry.proto)
M_CREATE_REGISTERED_MODEL = {"name": STRING, "tags": REP(KV), "description": STRING}
M_NAME = {"name": STRING}
M_CREATE_MODEL_VERSION = {
    "name": STRING,
    "source": STRING,
    "run_id": STRING,
    "tags": REP(KV),
    "run_link": STRING,
    "description": STRING,
}
M_NAME_VERSION = {"name": STRING, "version": STRING}
M_SET_ALIAS = {"name": STRING, "alias": STRING, "version": STRING}
M_NAME_ALIAS = {"name": STRING, "alias": STRING}

# proxied artifacts (mlflow_artifacts.proto)
M_MA_LIST = {"path": STRING}
M_MPU_CREATE = {"path": STRING, "num_parts": INT64}
M_MPU_COMPLETE = {
    "path": STRING,
    "upload_id": STRING,
    "parts": REP(MSG({"part_number": INT64, "etag": STRING, "url": STRING})),
}
M_MPU_ABORT = {"path": STRING, "upload_id": STRING}


# --- request schema validators (mlflow.server.handlers._assert_*) ------------------------------


def assert_string(x):
    assert isinstance(x, str)


def assert_intlike(x):
    try:
        x = int(x)
    except ValueError:
        pass
    assert isinstance(x, int)


def assert_floatlike(x):
    try:
        x = float(x)
    except ValueError:
        pass
    assert isinstance(x, float)


def assert_array(x):
    assert isinstance(x, list)


def assert_item_type_string(x):
    assert all(isinstance(i, str) for i in x)


def assert_required(x, path=None):
    if path is None:
        assert x is not None
        assert x != ""
    else:
        msg = f"Missing value for required parameter '{path}'."
        assert x is not None, msg
        assert x != "", msg


TYPE_VALIDATORS = {assert_string, assert_intlike, assert_floatlike, assert_array,
                   assert_item_type_string}


def validate_schema(raw, schema, parse_ok):
    for key, fns in schema.items():
        if key in raw or assert_required in fns:
            value = raw.get(key)
            if key == "run_id" and value is None and "run_uuid" in raw:
                value = raw.get("run_uuid")
            for f in fns:
                if f in TYPE_VALIDATORS and parse_ok:
                    continue
                try:
                    f(value)
                except AssertionError as e:
                    if e.args:
                        message = e.args[0]
                    elif f is assert_required:
                        message = f"Missing value for required parameter '{key}'."
                    else:
                        message = invalid_value(
                            key, value, f" Hint: Value was of type '{type(value).__name__}'."
                        )
                    raise MlflowError(message + API_DOCS_HINT) from None
                except (TypeError, ValueError, AttributeError, OverflowError, KeyError):
                    # The real server answers some of these with a bare 500; 400 is kinder.
                    message = invalid_value(
                        key, value, f" Hint: Value was of type '{type(value).__name__}'."
                    )
                    raise MlflowError(message + API_DOCS_HINT) from None


def items_field_present(prefix, fields):
    def check(items):
        for idx, item in enumerate(items):
            if not isinstance(item, dict):
                raise AssertionError(invalid_value(f"{prefix}[{idx}]", item))
            for f in fields:
                assert_required(item.get(f), path=f"{prefix}[{idx}].{f}")

    return check


# ---------------------------------------------------------------------------------------------
# Validation of keys and values (mlflow.utils.validation)
# ---------------------------------------------------------------------------------------------

# Same regex and same use (re.match) as MLflow on POSIX: note that "$" also matches before a
# trailing newline, so "abc\n" passes, exactly as on the real server.
_VALID_NAMES = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_REGEX = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_BAD_CHARACTERS_MESSAGE = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)


def path_not_unique(name):
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


def validate_name(kind, name):
    if name is None:
        raise MlflowError(f"{kind} name cannot be None. A key name must be provided.")
    if not _VALID_NAMES.match(name):
        raise MlflowError(f"Invalid {kind.lower()} name: '{name}'. {_BAD_CHARACTERS_MESSAGE}")
    if path_not_unique(name):
        raise MlflowError(
            f"Invalid {kind.lower()} name: '{name}'. Names may be treated as files in certain "
            "cases, and must not resolve to other names when treated as such. This name would "
            f"resolve to '{posixpath.normpath(name)}'"
        )


class Config:
    """Mutable server configuration (some of it changeable through /_test/config)."""

    def __init__(self):
        self.truncate_override = None  # None: follow env MLFLOW_TRUNCATE_LONG_VALUES
        self.close_all = False
        self.require_auth = None  # expected Authorization header value
        self.client_cert_required = False
        self.verbose = False
        self.artifact_root = None
        # artifacts (see the module docstring, "Artifacts")
        self.serve_artifacts = True  # False: like `mlflow server --no-serve-artifacts`
        self.multipart = True  # False: mpu/create answers 501 (a local artifact store)
        self.artifacts_down = False  # True: every artifact and presigned route answers 503
        self.mpu_min_part_size = 5 * 1024 * 1024  # S3: every part but the last >= 5 MiB
        self.chunked_downloads = False  # True: downloads go out chunked, no Content-Length
        self.missing_artifact_status = 404  # 500: what a real server answers (Flask HTML)
        self.public_base = None  # "http://127.0.0.1:<port>": where presigned URLs point

    def truncate_long_values(self):
        if self.truncate_override is not None:
            return self.truncate_override
        v = os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES")
        if v is None:
            return True
        v = v.strip().lower()
        if v in ("false", "0"):
            return False
        return True


CONFIG = Config()


def validate_length(entity, limit, value, truncate=False):
    if value is None or len(value) <= limit:
        return value
    if truncate and CONFIG.truncate_long_values():
        if CONFIG.verbose:
            log(f"{entity} '{value[:100]}...' ({len(value)} characters) is truncated to "
                f"{limit} characters to meet the length limit.")
        return value[:limit]
    raise MlflowError(
        f"{entity} '{value[:250]}' had length {len(value)}, which exceeded length limit of {limit}"
    )


def validate_run_id(run_id):
    if not isinstance(run_id, str) or _RUN_ID_REGEX.match(run_id) is None:
        raise MlflowError(f"Invalid run ID: '{run_id}'")


def validate_metric(key, value, timestamp, step):
    validate_name("Metric", key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise MlflowError(
            f"Got invalid value {value} for metric '{key}' (timestamp={timestamp}). "
            "Please specify value as a valid double (64-bit floating point)"
        )
    if not isinstance(timestamp, int) or timestamp < 0:
        raise MlflowError(
            f"Got invalid timestamp {timestamp} for metric '{key}' (value={value}). "
            "Timestamp must be a nonnegative long (64-bit integer) "
        )
    if not isinstance(step, int):
        raise MlflowError(
            f"Got invalid step {step} for metric '{key}' (value={value}). "
            "Step must be a valid long (64-bit integer)."
        )
    validate_length("Metric name", MAX_ENTITY_KEY_LENGTH, key)


def validate_param(key, value):
    validate_name("Parameter", key)
    return (
        validate_length("Param key", MAX_ENTITY_KEY_LENGTH, key),
        validate_length("Param value", MAX_PARAM_VAL_LENGTH, value, truncate=True),
    )


def validate_tag(key, value):
    validate_name("Tag", key)
    return (
        validate_length("Tag key", MAX_ENTITY_KEY_LENGTH, key),
        validate_length("Tag value", MAX_TAG_VAL_LENGTH, value, truncate=True),
    )


def validate_batch_limit(entity, limit, length):
    if length > limit:
        raise MlflowError(
            f"A batch logging request can contain at most {limit} {entity}. "
            f"Got {length} {entity}. Please split up {entity} across multiple"
            " requests and try again."
        )


def metric_storage(value):
    """(stored value, is_nan) the way MLflow's SQL store keeps a double."""
    if math.isnan(value):
        return 0.0, 1
    if math.isinf(value):
        return (MAX_DOUBLE if value > 0 else -MAX_DOUBLE), 0
    return float(value), 0


def metric_json_value(value, is_nan):
    return "NaN" if is_nan else value


# ---------------------------------------------------------------------------------------------
# Store: sqlite in memory, one lock
# ---------------------------------------------------------------------------------------------

SCHEMA_SQL = """
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT,
    lifecycle_stage TEXT NOT NULL,
    creation_time INTEGER,
    last_update_time INTEGER
);
CREATE TABLE experiment_tags (
    experiment_id INTEGER, key TEXT, value TEXT, PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    run_uuid TEXT PRIMARY KEY, seq INTEGER, name TEXT, experiment_id INTEGER, user_id TEXT,
    status TEXT, start_time INTEGER, end_time INTEGER, artifact_uri TEXT,
    lifecycle_stage TEXT, deleted_time INTEGER
);
CREATE TABLE params (
    run_uuid TEXT, key TEXT, value TEXT, seq INTEGER, PRIMARY KEY (run_uuid, key)
);
CREATE TABLE tags (
    run_uuid TEXT, key TEXT, value TEXT, seq INTEGER, PRIMARY KEY (run_uuid, key)
);
CREATE TABLE metrics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_uuid TEXT, key TEXT, value REAL,
    is_nan INTEGER, timestamp INTEGER, step INTEGER,
    UNIQUE (run_uuid, key, value, is_nan, timestamp, step)
);
CREATE INDEX metrics_by_key ON metrics (run_uuid, key);
CREATE TABLE latest_metrics (
    run_uuid TEXT, key TEXT, value REAL, is_nan INTEGER, timestamp INTEGER, step INTEGER,
    seq INTEGER, PRIMARY KEY (run_uuid, key)
);
CREATE TABLE datasets (
    dataset_uuid TEXT PRIMARY KEY, experiment_id INTEGER, name TEXT, digest TEXT,
    source_type TEXT, source TEXT, schema TEXT, profile TEXT, seq INTEGER,
    UNIQUE (experiment_id, name, digest)
);
CREATE TABLE inputs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_uuid TEXT, dataset_uuid TEXT, tags TEXT,
    UNIQUE (run_uuid, dataset_uuid)
);
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY, creation_time INTEGER, last_updated_time INTEGER, description TEXT,
    seq INTEGER
);
CREATE TABLE registered_model_tags (
    name TEXT, key TEXT, value TEXT, seq INTEGER, PRIMARY KEY (name, key)
);
CREATE TABLE model_versions (
    name TEXT, version INTEGER, creation_time INTEGER, last_updated_time INTEGER,
    description TEXT, user_id TEXT, current_stage TEXT, source TEXT, storage_location TEXT,
    run_id TEXT, run_link TEXT, status TEXT, status_message TEXT, PRIMARY KEY (name, version)
);
CREATE TABLE model_version_tags (
    name TEXT, version INTEGER, key TEXT, value TEXT, seq INTEGER,
    PRIMARY KEY (name, version, key)
);
CREATE TABLE registered_model_aliases (
    name TEXT, alias TEXT, version INTEGER, seq INTEGER, PRIMARY KEY (name, alias)
);
"""

TEST_BUCKET = "s3://mlo-test-bucket"


def default_artifact_location(experiment_id):
    """Where a new experiment's artifacts go: proxied (`--serve-artifacts`, the default) or,
    with serving off, straight into an S3 bucket the client cannot reach through us."""
    if CONFIG.serve_artifacts:
        return f"mlflow-artifacts:/{experiment_id}"
    return f"{TEST_BUCKET}/{experiment_id}"

_PREDICATES = ["abundant", "agreeable", "bold", "brave", "bright", "calm", "clean", "clever",
               "crisp", "dapper", "eager", "fair", "gentle", "glamorous", "honest", "humble",
               "kindly", "likeable", "loud", "mysterious", "nimble", "polite", "rare", "sassy",
               "shy", "silent", "skillful", "smiling", "spiffy", "thoughtful", "unique", "wise"]
_NOUNS = ["ant", "bass", "bat", "bear", "cat", "colt", "crab", "crow", "deer", "doe", "dove",
          "eel", "finch", "fox", "goat", "gull", "hare", "hawk", "hen", "horse", "jay", "koi",
          "lamb", "lark", "mole", "moth", "owl", "ram", "seal", "shrew", "snail", "wolf"]


def generate_run_name():
    return f"{random.choice(_PREDICATES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.db = None
        self.seq = 0
        self.reset()

    def reset(self):
        with self.lock:
            if self.db is not None:
                self.db.close()
            self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self.db.executescript(SCHEMA_SQL)
            t = now_ms()
            self.db.execute(
                "INSERT INTO experiments VALUES (0, 'Default', ?, 'active', ?, ?)",
                (default_artifact_location(0), t, t),
            )
            self.seq = 0

    def next_seq(self):
        self.seq += 1
        return self.seq

    def q(self, sql, args=()):
        return self.db.execute(sql, args).fetchall()

    def q1(self, sql, args=()):
        return self.db.execute(sql, args).fetchone()

    class _Tx:
        def __init__(self, store):
            self.store = store

        def __enter__(self):
            self.store.lock.acquire()
            self.store.db.execute("BEGIN")
            return self.store

        def __exit__(self, et, ev, tb):
            try:
                self.store.db.execute("ROLLBACK" if et else "COMMIT")
            finally:
                self.store.lock.release()
            return False

    def tx(self):
        return Store._Tx(self)

    # --- experiments -----------------------------------------------------------------------

    def experiment_row(self, experiment_id):
        """Row for an id given as a string (MLflow's ids are decimal strings)."""
        if not isinstance(experiment_id, str) or not re.fullmatch(r"[0-9]{1,18}", experiment_id):
            return None
        return self.q1("SELECT * FROM experiments WHERE experiment_id = ?", (int(experiment_id),))

    def get_experiment(self, experiment_id):
        row = self.experiment_row(experiment_id)
        if row is None:
            raise MlflowError(f"No Experiment with id={experiment_id} exists",
                              "RESOURCE_DOES_NOT_EXIST")
        return row

    def experiment_json(self, row):
        exp = {
            "experiment_id": str(row[0]),
            "name": row[1],
            "artifact_location": row[2],
            "lifecycle_stage": row[3],
            "last_update_time": row[5],
            "creation_time": row[4],
        }
        tags = self.q("SELECT key, value FROM experiment_tags WHERE experiment_id = ? "
                      "ORDER BY rowid", (row[0],))
        if tags:
            exp["tags"] = [{"key": k, "value": v} for k, v in tags]
        return exp

    # --- runs ---------------------------------------------------------------------------------

    def run_row(self, run_id):
        row = self.q1("SELECT * FROM runs WHERE run_uuid = ?", (run_id,))
        if row is None:
            raise MlflowError(f"Run with id={run_id} not found", "RESOURCE_DOES_NOT_EXIST")
        return row

    def active_run_row(self, run_id):
        row = self.run_row(run_id)
        if row[9] != "active":
            raise MlflowError(
                f"The run {run_id} must be in the 'active' state. Current state is {row[9]}."
            )
        return row

    @staticmethod
    def run_info_json(row):
        info = {
            "run_uuid": row[0],
            "experiment_id": str(row[3]),
            "run_name": row[2],
            "user_id": row[4],
            "status": row[5],
            "start_time": row[6],
        }
        if row[7] is not None:
            info["end_time"] = row[7]
        info["artifact_uri"] = row[8]
        info["lifecycle_stage"] = row[9]
        info["run_id"] = row[0]
        return info

    def run_json(self, row):
        run_id = row[0]
        data = {}
        metrics = self.q(
            "SELECT key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid = ? "
            "ORDER BY seq", (run_id,))
        if metrics:
            data["metrics"] = [
                {"key": k, "value": metric_json_value(v, n), "timestamp": ts, "step": st}
                for k, v, n, ts, st in metrics
            ]
        params = self.q("SELECT key, value FROM params WHERE run_uuid = ? ORDER BY seq",
                        (run_id,))
        if params:
            data["params"] = [{"key": k, "value": v} for k, v in params]
        tags = self.q("SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY seq", (run_id,))
        if tags:
            data["tags"] = [{"key": k, "value": v} for k, v in tags]
        inputs = {}
        dataset_inputs = self.inputs_json(run_id)
        if dataset_inputs:
            inputs["dataset_inputs"] = dataset_inputs
        return {"info": self.run_info_json(row), "data": data, "inputs": inputs}

    def inputs_json(self, run_id):
        out = []
        for name, digest, st, src, schema, profile, tags in self.q(
            "SELECT d.name, d.digest, d.source_type, d.source, d.schema, d.profile, i.tags "
            "FROM inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid "
            "WHERE i.run_uuid = ? ORDER BY i.seq", (run_id,)):
            ds = {"name": name, "digest": digest, "source_type": st, "source": src}
            if schema is not None:
                ds["schema"] = schema
            if profile is not None:
                ds["profile"] = profile
            item = {}
            tag_list = json.loads(tags)
            if tag_list:
                item["tags"] = tag_list
            item["dataset"] = ds
            out.append(item)
        return out

    def set_tag_in_tx(self, run_id, key, value):
        """Last write wins; mlflow.runName also renames the run, as MLflow does."""
        self.db.execute(
            "INSERT INTO tags (run_uuid, key, value, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
            (run_id, key, value, self.next_seq()),
        )
        if key == RUN_NAME_TAG:
            self.db.execute("UPDATE runs SET name = ? WHERE run_uuid = ?", (value, run_id))

    def insert_metrics_in_tx(self, run_id, metrics):
        """metrics: list of (key, float value, timestamp, step); identical points stored once."""
        for key, value, ts, step in metrics:
            v, is_nan = metric_storage(value)
            cur = self.db.execute(
                "INSERT OR IGNORE INTO metrics (run_uuid, key, value, is_nan, timestamp, step) "
                "VALUES (?, ?, ?, ?, ?, ?)", (run_id, key, v, is_nan, ts, step))
            if cur.rowcount == 0:
                continue
            latest = self.q1("SELECT value, timestamp, step FROM latest_metrics "
                             "WHERE run_uuid = ? AND key = ?", (run_id, key))
            if latest is None:
                self.db.execute(
                    "INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, key, v, is_nan, ts, step, self.next_seq()))
            elif (step, ts, v) > (latest[2], latest[1], latest[0]):
                self.db.execute(
                    "UPDATE latest_metrics SET value = ?, is_nan = ?, timestamp = ?, step = ? "
                    "WHERE run_uuid = ? AND key = ?", (v, is_nan, ts, step, run_id, key))

    def check_params_in_tx(self, run_id, params):
        """Returns the params not stored yet; raises on a changed value."""
        existing = dict(self.q("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)))
        new, mismatched = [], []
        for key, value in params:
            if key in existing:
                if existing[key] != value:
                    mismatched.append(
                        {"key": key, "old_value": existing[key], "new_value": value})
                continue
            new.append((key, value))
        if mismatched:
            raise MlflowError(
                "Changing param values is not allowed. Params were already"
                f" logged='{mismatched}' for run ID='{run_id}'."
            )
        return new

    def insert_params_in_tx(self, run_id, params):
        for key, value in params:
            self.db.execute("INSERT INTO params VALUES (?, ?, ?, ?)",
                            (run_id, key, value, self.next_seq()))

    # --- model registry -----------------------------------------------------------------------
    # Rows: registered_models (name, creation_time, last_updated_time, description, seq);
    # model_versions (name 0, version 1, creation_time 2, last_updated_time 3, description 4,
    # user_id 5, current_stage 6, source 7, storage_location 8, run_id 9, run_link 10,
    # status 11, status_message 12).

    def registered_model_row(self, name):
        row = self.q1("SELECT name, creation_time, last_updated_time, description "
                      "FROM registered_models WHERE name = ?", (name,))
        if row is None:
            raise MlflowError(f"Registered Model with name={name} not found",
                              "RESOURCE_DOES_NOT_EXIST")
        return row

    def model_version_row(self, name, version):
        """version: the request's string (already checked to be an integer)."""
        n = int(version)
        row = None
        if INT64_MIN <= n <= INT64_MAX:
            row = self.q1("SELECT * FROM model_versions WHERE name = ? AND version = ? "
                          "AND current_stage != 'Deleted_Internal'", (name, n))
        if row is None:
            raise MlflowError(f"Model Version (name={name}, version={version}) not found",
                              "RESOURCE_DOES_NOT_EXIST")
        return row

    def model_version_json(self, row, with_aliases=True):
        """ModelVersion.to_proto() as MLflow's JSON shows it: fields in proto order, None
        fields left out, empty repeated fields left out."""
        name, version = row[0], row[1]
        mv = {"name": name, "version": str(version), "creation_timestamp": row[2]}
        if row[3] is not None:
            mv["last_updated_timestamp"] = row[3]
        if row[5] is not None:
            mv["user_id"] = row[5]
        mv["current_stage"] = row[6]
        if row[4] is not None:
            mv["description"] = row[4]
        mv["source"] = row[7]
        if row[9] is not None:
            mv["run_id"] = row[9]
        mv["status"] = row[11]
        if row[12]:
            mv["status_message"] = row[12]
        tags = self.q("SELECT key, value FROM model_version_tags WHERE name = ? AND version = ? "
                      "ORDER BY seq", (name, version))
        if tags:
            mv["tags"] = [{"key": k, "value": v} for k, v in tags]
        if row[10] is not None:
            mv["run_link"] = row[10]
        if with_aliases:
            aliases = [a for (a,) in self.q(
                "SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ? "
                "ORDER BY seq", (name, version))]
            if aliases:
                mv["aliases"] = aliases
        return mv

    def registered_model_json(self, row):
        """RegisteredModel.to_proto(): latest_versions holds the newest version of each stage
        (without their aliases, as the SQL store builds them); description only if non-empty."""
        name = row[0]
        rm = {"name": name}
        if row[1] is not None:
            rm["creation_timestamp"] = row[1]
        if row[2]:
            rm["last_updated_timestamp"] = row[2]
        if row[3]:
            rm["description"] = row[3]
        latest = {}
        for mv in self.q("SELECT * FROM model_versions WHERE name = ? ORDER BY version", (name,)):
            if mv[6] != "Deleted_Internal":
                latest[mv[6]] = mv
        if latest:
            rm["latest_versions"] = [self.model_version_json(mv, with_aliases=False)
                                     for mv in latest.values()]
        tags = self.q("SELECT key, value FROM registered_model_tags WHERE name = ? ORDER BY seq",
                      (name,))
        if tags:
            rm["tags"] = [{"key": k, "value": v} for k, v in tags]
        aliases = self.q("SELECT alias, version FROM registered_model_aliases WHERE name = ? "
                         "ORDER BY seq", (name,))
        if aliases:
            rm["aliases"] = [{"alias": a, "version": str(v)} for a, v in aliases]
        return rm

    def dump_registry(self):
        out = []
        for name, ct, lt, desc in self.q("SELECT name, creation_time, last_updated_time, "
                                         "description FROM registered_models ORDER BY seq"):
            versions = []
            for mv in self.q("SELECT * FROM model_versions WHERE name = ? ORDER BY version",
                             (name,)):
                versions.append({
                    "version": str(mv[1]), "source": mv[7], "storage_location": mv[8],
                    "run_id": mv[9], "run_link": mv[10], "description": mv[4],
                    "current_stage": mv[6], "status": mv[11], "creation_timestamp": mv[2],
                    "last_updated_timestamp": mv[3],
                    "tags": dict(self.q("SELECT key, value FROM model_version_tags WHERE "
                                        "name = ? AND version = ? ORDER BY seq", (name, mv[1]))),
                    "aliases": [a for (a,) in self.q(
                        "SELECT alias FROM registered_model_aliases WHERE name = ? AND "
                        "version = ? ORDER BY seq", (name, mv[1]))],
                })
            out.append({
                "name": name, "creation_timestamp": ct, "last_updated_timestamp": lt,
                "description": desc,
                "tags": dict(self.q("SELECT key, value FROM registered_model_tags WHERE "
                                    "name = ? ORDER BY seq", (name,))),
                "aliases": {a: str(v) for a, v in self.q(
                    "SELECT alias, version FROM registered_model_aliases WHERE name = ? "
                    "ORDER BY seq", (name,))},
                "versions": versions,
            })
        return out

    def dump_datasets(self):
        out = []
        for exp_id, name, digest, st, src, schema, profile, uid in self.q(
                "SELECT experiment_id, name, digest, source_type, source, schema, profile, "
                "dataset_uuid FROM datasets ORDER BY seq"):
            d = {"experiment_id": str(exp_id), "name": name, "digest": digest, "source_type": st,
                 "source": src}
            if schema is not None:
                d["schema"] = schema
            if profile is not None:
                d["profile"] = profile
            d["runs"] = [r for (r,) in self.q(
                "SELECT run_uuid FROM inputs WHERE dataset_uuid = ? ORDER BY seq", (uid,))]
            out.append(d)
        return out

    # --- dump ---------------------------------------------------------------------------------

    def dump(self):
        with self.lock:
            exps = []
            for row in self.q("SELECT * FROM experiments ORDER BY experiment_id"):
                e = self.experiment_json(row)
                e["tags"] = {t["key"]: t["value"] for t in e.get("tags", [])}
                exps.append(e)
            runs = []
            for row in self.q("SELECT * FROM runs ORDER BY seq"):
                run_id = row[0]
                runs.append({
                    "info": self.run_info_json(row),
                    "params": dict(self.q(
                        "SELECT key, value FROM params WHERE run_uuid = ? ORDER BY seq",
                        (run_id,))),
                    "tags": dict(self.q(
                        "SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY seq",
                        (run_id,))),
                    "metrics": [
                        {"key": k, "value": metric_json_value(v, n), "timestamp": ts, "step": st}
                        for k, v, n, ts, st in self.q(
                            "SELECT key, value, is_nan, timestamp, step FROM metrics "
                            "WHERE run_uuid = ? ORDER BY seq", (run_id,))
                    ],
                    "latest_metrics": {
                        k: {"value": metric_json_value(v, n), "timestamp": ts, "step": st}
                        for k, v, n, ts, st in self.q(
                            "SELECT key, value, is_nan, timestamp, step FROM latest_metrics "
                            "WHERE run_uuid = ? ORDER BY seq", (run_id,))
                    },
                    "inputs": self.inputs_json(run_id),
                })
            return {"experiments": exps, "runs": runs, "datasets": self.dump_datasets(),
                    "registered_models": self.dump_registry()}


STORE = Store()


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query  # dict name -> list of values
        self.headers = headers
        self.body = body

    def json_body(self):
        """mlflow.server.handlers._get_request_json + the fallbacks of _get_request_message."""
        if self.method in ("POST", "PUT"):
            ct = self.headers.get("Content-Type")
            if ct is None:
                raise MlflowError("Bad Request. Content-Type header is missing.", "BAD_REQUEST")
            if ct.split(";")[0] not in ("application/json",):
                raise MlflowError("Bad Request. Content-Type must be one of ['application/json'].",
                                  "BAD_REQUEST")
        enc = (self.headers.get("Content-Encoding") or "").strip().lower()
        if enc and enc != "identity":
            # MLflow never decodes a compressed body: it reads as malformed JSON -> {}.
            return {}
        try:
            data = json.loads(self.body) if self.body else None
            if isinstance(data, str):  # double-encoded JSON from old clients
                data = json.loads(data)
        except Exception:
            data = None
        if not isinstance(data, dict):
            data = {}
        return data

    def message(self, fields, schema):
        """mlflow.server.handlers._get_request_message: (partial) message + schema checks."""
        if self.method in ("GET", "HEAD") and self.query:
            raw = {}
            for name, kind in fields.items():
                if name in self.query:
                    vals = self.query[name]
                    raw[name] = list(vals) if kind[0] == "repeated" else vals[0]
        else:
            raw = self.json_body()
        stringify_experiment_ids(raw)
        msg = {}
        parse_ok = True
        try:
            proto_parse(raw, fields, msg)
        except (ParseError, RecursionError):
            parse_ok = False
        validate_schema(raw, schema or {}, parse_ok)
        return msg


def run_id_of(msg):
    return msg.get("run_id") or msg.get("run_uuid") or ""


# ---------------------------------------------------------------------------------------------
# Tracking handlers
# ---------------------------------------------------------------------------------------------


def h_create_experiment(req):
    msg = req.message(M_CREATE_EXPERIMENT, {
        "name": [assert_required, assert_string],
        "artifact_location": [assert_string],
        "tags": [assert_array],
    })
    name = msg.get("name", "")
    if name == "":
        raise MlflowError(f"Invalid experiment name: '{name}'")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise MlflowError(
            f"Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} "
            "characters")
    location = msg.get("artifact_location") or None
    if location is not None:
        if location.startswith("runs:"):
            raise MlflowError(
                f"Artifact location cannot be a runs:/ URI. Given: '{location}'")
        parsed = urlsplit(location)
        if parsed.fragment or ";" in parsed.path:
            raise MlflowError("'artifact_location' URL can't include fragments or params.")
    tags = []
    for t in msg.get("tags", []):
        key, value = t.get("key", ""), t.get("value", "")
        validate_name("Tag", key)
        validate_length("Tag key", MAX_ENTITY_KEY_LENGTH, key)
        validate_length("Tag value", MAX_EXPERIMENT_TAG_VAL_LENGTH, value)
        tags.append((key, value))
    with STORE.tx() as st:
        if st.q1("SELECT 1 FROM experiments WHERE name = ?", (name,)):
            raise MlflowError(
                f"Experiment(name={name}) already exists. Error: (raised by the test server) "
                "UNIQUE constraint failed: experiments.name",
                "RESOURCE_ALREADY_EXISTS")
        t = now_ms()
        cur = st.db.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time,"
            " last_update_time) VALUES (?, ?, 'active', ?, ?)", (name, location, t, t))
        exp_id = cur.lastrowid
        if location is None:
            st.db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                          (default_artifact_location(exp_id), exp_id))
        for key, value in tags:
            st.db.execute("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)",
                          (exp_id, key, value))
    return {"experiment_id": str(exp_id)}


def h_get_experiment(req):
    msg = req.message(M_GET_EXPERIMENT, {"experiment_id": [assert_required, assert_string]})
    with STORE.lock:
        row = STORE.get_experiment(msg.get("experiment_id", ""))
        return {"experiment": STORE.experiment_json(row)}


def h_get_experiment_by_name(req):
    msg = req.message(M_GET_EXPERIMENT_BY_NAME,
                      {"experiment_name": [assert_required, assert_string]})
    name = msg.get("experiment_name", "")
    with STORE.lock:
        row = STORE.q1("SELECT * FROM experiments WHERE name = ?", (name,))
        if row is None:
            raise MlflowError(f"Could not find experiment with name '{name}'",
                              "RESOURCE_DOES_NOT_EXIST")
        return {"experiment": STORE.experiment_json(row)}


def h_create_run(req):
    msg = req.message(M_CREATE_RUN, {
        "experiment_id": [assert_string],
        "user_id": [assert_string],
        "start_time": [assert_intlike],
        "tags": [assert_array],
        "run_name": [assert_string],
    })
    tags = [(t.get("key", ""), t.get("value", "")) for t in msg.get("tags", [])]
    run_name = msg.get("run_name", "")
    with STORE.tx() as st:
        exp = st.get_experiment(msg.get("experiment_id") or "0")
        if exp[3] != "active":
            raise MlflowError(f"The experiment {exp[0]} must be in the 'active' state. "
                              f"Current state is {exp[3]}.")
        run_name_tag = None
        for k, v in tags:
            if k == RUN_NAME_TAG:
                run_name_tag = v
        if run_name and run_name_tag and run_name != run_name_tag:
            raise MlflowError(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{run_name_tag}').")
        run_name = run_name or run_name_tag or generate_run_name()
        if not run_name_tag:
            tags.append((RUN_NAME_TAG, run_name))
        run_id = uuid.uuid4().hex
        base = exp[2]
        if not CONFIG.serve_artifacts and base.startswith("mlflow-artifacts:"):
            base = f"{TEST_BUCKET}/{exp[0]}"  # serving switched off after the experiment
        artifact_uri = f"{base.rstrip('/')}/{run_id}/artifacts"
        st.db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, NULL, ?, 'active', NULL)",
            (run_id, st.next_seq(), run_name, exp[0], msg.get("user_id", ""),
             msg.get("start_time", 0), artifact_uri))
        for k, v in tags:
            st.set_tag_in_tx(run_id, k, v)
        return {"run": st.run_json(st.run_row(run_id))}


def h_update_run(req):
    msg = req.message(M_UPDATE_RUN, {
        "run_id": [assert_required, assert_string],
        "end_time": [assert_intlike],
        "status": [assert_string],
        "run_name": [assert_string],
    })
    run_id = run_id_of(msg)
    validate_run_id(run_id)
    with STORE.tx() as st:
        st.active_run_row(run_id)
        if "status" in msg:
            st.db.execute("UPDATE runs SET status = ? WHERE run_uuid = ?", (msg["status"], run_id))
        if "end_time" in msg:
            st.db.execute("UPDATE runs SET end_time = ? WHERE run_uuid = ?",
                          (msg["end_time"], run_id))
        if msg.get("run_name"):
            st.db.execute("UPDATE runs SET name = ? WHERE run_uuid = ?", (msg["run_name"], run_id))
            st.set_tag_in_tx(run_id, RUN_NAME_TAG, msg["run_name"])
        return {"run_info": st.run_info_json(st.run_row(run_id))}


def h_delete_run(req):
    msg = req.message(M_RUN_ID, {"run_id": [assert_required, assert_string]})
    run_id = msg.get("run_id", "")
    validate_run_id(run_id)
    with STORE.tx() as st:
        st.run_row(run_id)
        st.db.execute("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? "
                      "WHERE run_uuid = ?", (now_ms(), run_id))
    return {}


def h_restore_run(req):
    msg = req.message(M_RUN_ID, {"run_id": [assert_required, assert_string]})
    run_id = msg.get("run_id", "")
    validate_run_id(run_id)
    with STORE.tx() as st:
        st.run_row(run_id)
        st.db.execute("UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL "
                      "WHERE run_uuid = ?", (run_id,))
    return {}


def h_get_run(req):
    msg = req.message(M_RUN_ID, {"run_id": [assert_required, assert_string]})
    run_id = run_id_of(msg)
    validate_run_id(run_id)
    with STORE.lock:
        return {"run": STORE.run_json(STORE.run_row(run_id))}


def h_log_batch(req):
    msg = req.message(M_LOG_BATCH, {
        "run_id": [assert_string, assert_required],
        "metrics": [assert_array, items_field_present("metrics", ("key", "value", "timestamp"))],
        "params": [assert_array, items_field_present("params", ("key",))],
        "tags": [assert_array, items_field_present("tags", ("key",))],
    })
    run_id = msg.get("run_id", "")
    validate_run_id(run_id)
    metrics = [(m.get("key", ""), m.get("value", 0.0), m.get("timestamp", 0), m.get("step", 0))
               for m in msg.get("metrics", [])]
    for key, value, ts, step in metrics:
        validate_metric(key, value, ts, step)
    params = [validate_param(p.get("key", ""), p.get("value", "")) for p in msg.get("params", [])]
    tags = [validate_tag(t.get("key", ""), t.get("value", "")) for t in msg.get("tags", [])]
    validate_batch_limit("metrics", MAX_METRICS_PER_BATCH, len(metrics))
    validate_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(params))
    validate_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tags))
    validate_batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH,
                         len(metrics) + len(params) + len(tags))
    seen, dupes = set(), []
    for key, _ in params:
        if key in seen:
            dupes.append(key)
        seen.add(key)
    if dupes:
        raise MlflowError(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure "
            "the request contains only one param value per param key.")
    with STORE.tx() as st:  # any error in here rolls the whole batch back
        st.active_run_row(run_id)
        new_params = st.check_params_in_tx(run_id, params)
        st.insert_params_in_tx(run_id, new_params)
        st.insert_metrics_in_tx(run_id, metrics)
        for key, value in tags:
            st.set_tag_in_tx(run_id, key, value)
    return {}


def h_log_metric(req):
    msg = req.message(M_LOG_METRIC, {
        "run_id": [assert_required, assert_string],
        "key": [assert_required, assert_string],
        "value": [assert_required, assert_floatlike],
        "timestamp": [assert_intlike, assert_required],
        "step": [assert_intlike],
    })
    run_id = run_id_of(msg)
    validate_run_id(run_id)
    metric = (msg.get("key", ""), msg.get("value", 0.0), msg.get("timestamp", 0),
              msg.get("step", 0))
    validate_metric(*metric)
    with STORE.tx() as st:
        st.active_run_row(run_id)
        st.insert_metrics_in_tx(run_id, [metric])
    return {}


def h_log_param(req):
    msg = req.message(M_LOG_PARAM, {
        "run_id": [assert_required, assert_string],
        "key": [assert_required, assert_string],
        "value": [assert_string],
    })
    run_id = run_id_of(msg)
    validate_run_id(run_id)
    param = validate_param(msg.get("key", ""), msg.get("value", ""))
    with STORE.tx() as st:
        st.active_run_row(run_id)
        st.insert_params_in_tx(run_id, st.check_params_in_tx(run_id, [param]))
    return {}


def h_set_tag(req):
    msg = req.message(M_SET_TAG, {
        "run_id": [assert_required, assert_string],
        "key": [assert_required, assert_string],
        "value": [assert_string],
    })
    run_id = run_id_of(msg)
    validate_run_id(run_id)
    key, value = validate_tag(msg.get("key", ""), msg.get("value", ""))
    with STORE.tx() as st:
        st.active_run_row(run_id)
        st.set_tag_in_tx(run_id, key, value)
    return {}


def h_delete_tag(req):
    msg = req.message(M_DELETE_TAG, {
        "run_id": [assert_required, assert_string],
        "key": [assert_required, assert_string],
    })
    run_id = msg.get("run_id", "")
    validate_run_id(run_id)
    key = msg.get("key", "")
    with STORE.tx() as st:
        st.active_run_row(run_id)
        cur = st.db.execute("DELETE FROM tags WHERE run_uuid = ? AND key = ?", (run_id, key))
        if cur.rowcount == 0:
            raise MlflowError(f"No tag with name: {key} in run with id {run_id}",
                              "RESOURCE_DOES_NOT_EXIST")
    return {}


def h_log_inputs(req):
    msg = req.message(M_LOG_INPUTS, {
        "run_id": [assert_required, assert_string],
        "datasets": [assert_array],
    })
    run_id = msg.get("run_id", "")
    validate_run_id(run_id)
    rows = []
    for idx, di in enumerate(msg.get("datasets", [])):
        ds = di.get("dataset", {})
        for f in ("name", "digest", "source_type", "source"):
            if not ds.get(f):
                raise MlflowError(f"Missing value for required parameter "
                                  f"'datasets[{idx}].dataset.{f}'.{API_DOCS_HINT}")
        for f, limit in (("name", MAX_DATASET_NAME_SIZE), ("digest", MAX_DATASET_DIGEST_SIZE),
                         ("source", MAX_DATASET_SOURCE_SIZE),
                         ("schema", MAX_DATASET_SCHEMA_SIZE),
                         ("profile", MAX_DATASET_PROFILE_SIZE)):
            if f in ds and len(ds[f]) > limit:
                raise MlflowError(f"Dataset {f} exceeds the maximum length of {limit}")
        tags = []
        for t in di.get("tags", []):
            key, value = t.get("key", ""), t.get("value", "")
            if key == "":
                raise MlflowError("Input tag key cannot be empty")
            if len(key) > MAX_INPUT_TAG_KEY_SIZE:
                raise MlflowError(f"'key' exceeds the maximum length of {MAX_INPUT_TAG_KEY_SIZE}")
            if len(value) > MAX_INPUT_TAG_VALUE_SIZE:
                raise MlflowError(
                    f"'value' exceeds the maximum length of {MAX_INPUT_TAG_VALUE_SIZE}")
            tags.append({"key": key, "value": value})
        rows.append((ds["name"], ds["digest"], ds["source_type"], ds["source"],
                     ds.get("schema"), ds.get("profile"), json.dumps(tags)))
    # As MLflow's SQL store: datasets live per experiment, keyed by (name, digest); the first
    # one logged wins (a later one with the same name and digest but another source just
    # links the existing row).  A run links a dataset once: logging it again, with other input
    # tags or not, changes nothing.
    with STORE.tx() as st:
        run = st.active_run_row(run_id)
        exp_id = run[3]
        for row in rows:
            found = st.q1("SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND "
                          "name = ? AND digest = ?", (exp_id, row[0], row[1]))
            if found:
                dataset_uuid = found[0]
            else:
                dataset_uuid = uuid.uuid4().hex
                st.db.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (dataset_uuid, exp_id) + row[:6] + (st.next_seq(),))
            st.db.execute("INSERT OR IGNORE INTO inputs (run_uuid, dataset_uuid, tags) "
                          "VALUES (?, ?, ?)", (run_id, dataset_uuid, row[6]))
    return {}


def h_get_metric_history(req):
    msg = req.message(M_GET_METRIC_HISTORY, {
        "run_id": [assert_string, assert_required],
        "metric_key": [assert_string, assert_required],
        "page_token": [assert_string],
    })
    run_id = run_id_of(msg)
    # MLflow's SQL store does not check that the run exists here: unknown run -> no metrics.
    with STORE.lock:
        rows = STORE.q(
            "SELECT key, value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ? AND "
            "key = ? ORDER BY step, timestamp, seq", (run_id, msg.get("metric_key", "")))
    resp = {}
    if rows:
        resp["metrics"] = [
            {"key": k, "value": metric_json_value(v, n), "timestamp": ts, "step": st}
            for k, v, n, ts, st in rows
        ]
    return resp


# --- runs/search: a deliberately small subset ---------------------------------------------
# Supported: experiment_ids, run_view_type, max_results, page_token, and a filter made of
# clauses joined by AND, each `<ident> <op> <value>` where ident is tags.X, params.X,
# metrics.X or attributes.X (also attribute./attr./run.; X may be quoted with `` or "),
# op is = != < <= > >= LIKE ILIKE, value a quoted string or a number.  Anything else in the
# filter is refused with 400 (rather than silently ignored).  order_by is ignored: runs come
# back by start_time descending, then run_id, which is MLflow's default order.

_FILTER_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"""|(?P<op>!=|>=|<=|=|<|>)"""
    r"""|(?P<ident>(?:tags|tag|params|param|metrics|metric|attributes|attribute|attr|run)\."""
    r"""(?:`[^`]*`|"[^"]*"|[\w.\-/:]+))"""
    r"""|(?P<word>[A-Za-z_]+)"""
    r"""|(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))""")


def parse_filter(text):
    tokens, pos = [], 0
    text = text or ""
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _FILTER_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise MlflowError(f"mlflow_test_server: unsupported filter {text!r}")
        pos = m.end()
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
    clauses, i = [], 0
    while i < len(tokens):
        if len(tokens) - i < 3 or tokens[i][0] != "ident":
            raise MlflowError(f"mlflow_test_server: unsupported filter {text!r}")
        ident = tokens[i][1]
        op_kind, op = tokens[i + 1]
        if op_kind == "word" and op.upper() in ("LIKE", "ILIKE"):
            op = op.upper()
        elif op_kind != "op":
            raise MlflowError(f"mlflow_test_server: unsupported filter {text!r}")
        vkind, vtext = tokens[i + 2]
        if vkind == "str":
            value = vtext[1:-1].replace("\\'", "'").replace('\\"', '"')
        elif vkind == "num":
            value = float(vtext)
        else:
            raise MlflowError(f"mlflow_test_server: unsupported filter {text!r}")
        entity, _, key = ident.partition(".")
        if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
            key = key[1:-1]
        entity = {"tag": "tags", "param": "params", "metric": "metrics", "attribute":
                  "attributes", "attr": "attributes", "run": "attributes"}.get(entity, entity)
        clauses.append((entity, key.strip(), op, value))
        i += 3
        if i < len(tokens):
            if tokens[i][0] != "word" or tokens[i][1].upper() != "AND":
                raise MlflowError(f"mlflow_test_server: unsupported filter {text!r}")
            i += 1
            if i >= len(tokens):
                raise MlflowError(f"mlflow_test_server: unsupported filter {text!r}")
    return clauses


def _compare(actual, op, value):
    if actual is None:
        return False
    if op in ("LIKE", "ILIKE"):
        if not isinstance(value, str):
            return False
        pat = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
        return re.fullmatch(pat, str(actual), re.S | (re.I if op == "ILIKE" else 0)) is not None
    if isinstance(value, float):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    elif not isinstance(actual, str):
        actual = str(actual)
    return {"=": actual == value, "!=": actual != value, "<": actual < value,
            "<=": actual <= value, ">": actual > value, ">=": actual >= value}[op]


def run_matches(run, clauses):
    data = run["data"]
    for entity, key, op, value in clauses:
        if entity == "tags":
            actual = {t["key"]: t["value"] for t in data.get("tags", [])}.get(key)
        elif entity == "params":
            actual = {p["key"]: p["value"] for p in data.get("params", [])}.get(key)
        elif entity == "metrics":
            actual = {m["key"]: m["value"] for m in data.get("metrics", [])}.get(key)
            if actual == "NaN":
                actual = math.nan
        elif entity == "attributes":
            info = run["info"]
            actual = info.get({"name": "run_name"}.get(key, key))
        else:
            return False
        if not _compare(actual, op, value):
            return False
    return True


def h_search_runs(req):
    def le_50000(x):
        assert int(x) <= 50000

    msg = req.message(M_SEARCH_RUNS, {
        "experiment_ids": [assert_array],
        "filter": [assert_string],
        "max_results": [assert_intlike, le_50000],
        "order_by": [assert_array, assert_item_type_string],
    })
    clauses = parse_filter(msg.get("filter", ""))
    view = msg.get("run_view_type", "ACTIVE_ONLY")
    stages = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",),
              "ALL": ("active", "deleted")}[view]
    max_results = msg.get("max_results", 1000)
    if max_results <= 0 or max_results > 50000:
        raise MlflowError(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a "
            "positive integer less than or equal to 50000")
    offset = 0
    token = msg.get("page_token")
    if token:
        try:
            offset = int(json.loads(base64.b64decode(token))["offset"])
        except Exception:
            raise MlflowError(f"Invalid page token, could not base64-decode. Token: {token}")
    exp_ids = [int(e) for e in msg.get("experiment_ids", []) if re.fullmatch(r"[0-9]{1,18}", e)]
    with STORE.lock:
        runs = []
        for row in STORE.q("SELECT * FROM runs ORDER BY start_time DESC, run_uuid"):
            if row[3] in exp_ids and row[9] in stages:
                run = STORE.run_json(row)
                if run_matches(run, clauses):
                    runs.append(run)
    page = runs[offset:offset + max_results]
    resp = {}
    if page:
        resp["runs"] = page
    if offset + max_results < len(runs):
        resp["next_page_token"] = base64.b64encode(
            json.dumps({"offset": offset + max_results}).encode()).decode()
    return resp


_EXPERIMENT_ATTRS = ("name", "creation_time", "last_update_time", "experiment_id")


def h_search_experiments(req):
    """experiments/search as MLflow's SQL store: filter on the name, creation_time,
    last_update_time (bare or attribute.) and tags; order_by those attributes (default
    creation_time DESC), experiment_id ASC breaking ties; pages as runs/search."""
    msg = req.message(M_SEARCH_EXPERIMENTS, {
        "max_results": [assert_intlike],
        "order_by": [assert_array, assert_item_type_string],
    })
    max_results = msg.get("max_results", 1000)
    if max_results <= 0 or max_results > 50000:
        raise MlflowError("Invalid value for max_results. It must be at most 50000, but got "
                          f"{max_results}" if max_results > 0 else
                          "Invalid value for max_results. It must be a positive integer, but "
                          f"got {max_results}")
    text = re.sub(r"(?<![\w.`\"])(%s)(?=\s*(?:=|!=|<|>|(?i:LIKE|ILIKE)))"
                  % "|".join(_EXPERIMENT_ATTRS), r"attributes.\1", msg.get("filter", "") or "")
    clauses = parse_filter(text)
    for entity, key, _op, _v in clauses:
        if entity not in ("attributes", "tags") or (entity == "attributes"
                                                   and key not in _EXPERIMENT_ATTRS):
            raise MlflowError(f"Invalid attribute key '{key}' specified. Valid keys are "
                              f"'{set(_EXPERIMENT_ATTRS)}'")
    view = msg.get("view_type", "ACTIVE_ONLY")
    stages = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",),
              "ALL": ("active", "deleted")}[view]
    order = []
    for clause in msg.get("order_by", []) or ["creation_time DESC"]:
        parts = clause.split()
        key = parts[0].split(".", 1)[-1] if parts else ""
        if key not in _EXPERIMENT_ATTRS or len(parts) > 2 or \
                (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise MlflowError(f"Invalid order_by clause '{clause}'.")
        order.append((key, len(parts) == 2 and parts[1].upper() == "DESC"))
    offset = 0
    token = msg.get("page_token")
    if token:
        try:
            offset = int(json.loads(base64.b64decode(token))["offset"])
        except Exception:
            raise MlflowError(f"Invalid page token, could not base64-decode. Token: {token}")
    with STORE.lock:
        exps = []
        for row in STORE.q("SELECT * FROM experiments"):
            if row[3] not in stages:
                continue
            e = STORE.experiment_json(row)
            tags = {t["key"]: t["value"] for t in e.get("tags", [])}
            ok = True
            for entity, key, op, value in clauses:
                actual = tags.get(key) if entity == "tags" else \
                    (int(e[key]) if key == "experiment_id" else e[key])
                if not _compare(actual, op, value):
                    ok = False
                    break
            if ok:
                exps.append(e)
    exps.sort(key=lambda e: int(e["experiment_id"]))
    for key, desc in reversed(order):
        exps.sort(key=lambda e: int(e[key]) if key == "experiment_id" else e[key], reverse=desc)
    page = exps[offset:offset + max_results]
    resp = {}
    if page:
        resp["experiments"] = page
    if offset + max_results < len(exps):
        resp["next_page_token"] = base64.b64encode(
            json.dumps({"offset": offset + max_results}).encode()).decode()
    return resp


# ---------------------------------------------------------------------------------------------
# Model registry handlers (mlflow.server.handlers + the SQL model registry store)
# ---------------------------------------------------------------------------------------------

_ALIAS_REGEX = re.compile(r"^[\w\-]*$")
_ALIAS_VERSION_REGEX = re.compile(r"^[vV]\d+$")


def validate_model_name(name):
    if name is None or name == "":
        raise MlflowError("Missing value for required parameter 'name'.")


def validate_model_version(version):
    try:
        int(version)
    except (ValueError, TypeError):
        raise MlflowError(f"Parameter 'version' must be an integer, got '{version}'.") from None


def validate_alias(alias):
    if alias is None or alias == "":
        raise MlflowError("Registered model alias name cannot be empty.")
    if not _ALIAS_REGEX.match(alias):
        raise MlflowError(f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
                          "underscores (_), and dashes (-).")
    validate_length("Registered model alias name", MAX_REGISTERED_MODEL_ALIAS_LENGTH, alias)
    if alias.lower() == "latest":
        raise MlflowError("'latest' alias name (case insensitive) is reserved.")
    if _ALIAS_VERSION_REGEX.match(alias):
        raise MlflowError(f"Version alias name '{alias}' is reserved.")


def registry_tags(tags):
    """Registered-model / model-version tags: run-tag key rules, key <= 250, value <= 5000
    (refused, never truncated); the last of two equal keys wins."""
    out = {}
    for t in tags:
        key, value = t.get("key", ""), t.get("value", "")
        validate_name("Tag", key)
        validate_length("key", MAX_MODEL_REGISTRY_TAG_KEY_LENGTH, key)
        validate_length("value", MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, value)
        out[key] = value
    return out


def is_local_uri(uri):
    """mlflow.utils.uri.is_local_uri on a POSIX server."""
    parsed = urlsplit(uri)
    if parsed.scheme == "":
        return True
    try:
        host = parsed.hostname
    except ValueError:
        host = None
    remote = bool(host) and not (host == "." or host.startswith("localhost") or
                                 host.startswith("127.0.0.1"))
    if parsed.scheme == "file":
        if remote:
            raise MlflowError(f"{uri} is not a valid remote uri. For remote access on windows, "
                              "please consider using a different scheme such as SMB (e.g. "
                              "smb://<hostname>/<path>).", "INTERNAL_ERROR")
        return True
    return False


def local_uri_path(uri):
    return unquote(urlsplit(uri).path) if uri.startswith("file:") else uri


def validate_model_version_source(source, run_id):
    """handlers._validate_source: a local source must lie inside the (local) artifact
    directory of the given run; any other source must be free of relative path parts."""
    if is_local_uri(source):
        if run_id:
            with STORE.lock:
                run = STORE.run_row(run_id)
            art = run[8]
            src = os.path.abspath(local_uri_path(source))
            if is_local_uri(art):
                art_dir = os.path.abspath(local_uri_path(art))
                if src == art_dir or src.startswith(art_dir.rstrip("/") + "/"):
                    return
            source = src
        raise MlflowError(
            f"Invalid model version source: '{source}'. To use a local path as a model version "
            "source, the run_id request parameter has to be specified and the local path has to "
            "be contained within the artifact directory of the run specified by the run_id.")
    message = (
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
        "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
        "provided without relative path references present. Please provide an absolute path.")
    for _ in range(100):
        unquoted = unquote_plus(source)
        if unquoted == source:
            break
        source = unquoted
    from urllib.parse import urlparse
    source_path = re.sub(r"/+", "/", urlparse(source).path.rstrip("/"))
    if "\x00" in source_path or any(p == ".." for p in source.split("/")):
        raise MlflowError(message)
    # MLflow compares with pathlib.Path(source_path).resolve(): a relative (or empty) path
    # resolves against the server's working directory and never matches.
    resolved = posixpath.normpath(source_path) if source_path.startswith("/") else None
    if resolved != source_path:
        raise MlflowError(message)


def resolve_models_uri(st, source):
    """Storage location behind a models:/<name>/<version> or models:/<name>@<alias> source."""
    rest = source[len("models:"):].lstrip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        found = st.q1("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                      (name, alias))
        if found is None:
            raise MlflowError(f"Registered model alias {alias} not found.")
        version = str(found[0])
    else:
        name, _, version = rest.rpartition("/")
        validate_model_version(version)
    row = st.model_version_row(name, version)
    return row[8] or row[7]


def h_create_registered_model(req):
    msg = req.message(M_CREATE_REGISTERED_MODEL, {
        "name": [assert_string, assert_required],
        "tags": [assert_array],
        "description": [assert_string],
    })
    name = msg.get("name", "")
    validate_model_name(name)
    tags = registry_tags(msg.get("tags", []))
    with STORE.tx() as st:
        if st.q1("SELECT 1 FROM registered_models WHERE name = ?", (name,)):
            raise MlflowError(
                f"Registered Model (name={name}) already exists. Error: (raised by the test "
                "server) UNIQUE constraint failed: registered_models.name",
                "RESOURCE_ALREADY_EXISTS")
        t = now_ms()
        st.db.execute("INSERT INTO registered_models VALUES (?, ?, ?, ?, ?)",
                      (name, t, t, msg.get("description", ""), st.next_seq()))
        for k, v in tags.items():
            st.db.execute("INSERT INTO registered_model_tags VALUES (?, ?, ?, ?)",
                          (name, k, v, st.next_seq()))
        return {"registered_model": st.registered_model_json(st.registered_model_row(name))}


def h_get_registered_model(req):
    msg = req.message(M_NAME, {"name": [assert_string, assert_required]})
    name = msg.get("name", "")
    validate_model_name(name)
    with STORE.lock:
        return {"registered_model": STORE.registered_model_json(STORE.registered_model_row(name))}


def h_create_model_version(req):
    msg = req.message(M_CREATE_MODEL_VERSION, {
        "name": [assert_string, assert_required],
        "source": [assert_string, assert_required],
        "run_id": [assert_string],
        "tags": [assert_array],
        "run_link": [assert_string],
        "description": [assert_string],
    })
    name, source = msg.get("name", ""), msg.get("source", "")
    run_id = msg.get("run_id", "")
    validate_model_version_source(source, run_id)
    validate_model_name(name)
    tags = registry_tags(msg.get("tags", []))
    with STORE.tx() as st:
        storage_location = source
        if urlsplit(source).scheme == "models":
            try:
                storage_location = resolve_models_uri(st, source)
            except MlflowError as e:
                # MLflow raises this without an error code: a bare 500.  400 is kinder.
                raise MlflowError(f"Unable to fetch model from model URI source artifact "
                                  f"location '{source}'.Error: {e.message}") from None
        st.registered_model_row(name)
        (latest,) = st.q1("SELECT MAX(version) FROM model_versions WHERE name = ?", (name,))
        version = (latest or 0) + 1
        t = now_ms()
        st.db.execute("INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, NULL, 'None', ?, ?, ?, "
                      "?, 'READY', NULL)",
                      (name, version, t, t, msg.get("description", ""), source, storage_location,
                       run_id, msg.get("run_link", "")))
        st.db.execute("UPDATE registered_models SET last_updated_time = ? WHERE name = ?",
                      (t, name))
        for k, v in tags.items():
            st.db.execute("INSERT INTO model_version_tags VALUES (?, ?, ?, ?, ?)",
                          (name, version, k, v, st.next_seq()))
        return {"model_version": st.model_version_json(st.model_version_row(name, str(version)))}


def h_get_model_version(req):
    msg = req.message(M_NAME_VERSION, {
        "name": [assert_string, assert_required],
        "version": [assert_string, assert_required],
    })
    name, version = msg.get("name", ""), msg.get("version", "")
    validate_model_name(name)
    validate_model_version(version)
    with STORE.lock:
        return {"model_version": STORE.model_version_json(STORE.model_version_row(name, version))}


def h_get_model_version_download_uri(req):
    msg = req.message(M_NAME_VERSION, None)  # MLflow gives this one no schema
    name, version = msg.get("name", ""), msg.get("version", "")
    validate_model_name(name)
    validate_model_version(version)
    with STORE.lock:
        row = STORE.model_version_row(name, version)
    return {"artifact_uri": row[8] or row[7]}


def h_set_registered_model_alias(req):
    msg = req.message(M_SET_ALIAS, {
        "name": [assert_string, assert_required],
        "alias": [assert_string, assert_required],
        "version": [assert_string, assert_required],
    })
    name, alias, version = msg.get("name", ""), msg.get("alias", ""), msg.get("version", "")
    validate_model_name(name)
    validate_alias(alias)
    validate_model_version(version)
    with STORE.tx() as st:
        st.model_version_row(name, version)
        st.db.execute("INSERT INTO registered_model_aliases VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
                      (name, alias, int(version), st.next_seq()))
    return {}


def h_delete_registered_model_alias(req):
    msg = req.message(M_NAME_ALIAS, {
        "name": [assert_string, assert_required],
        "alias": [assert_string, assert_required],
    })
    name, alias = msg.get("name", ""), msg.get("alias", "")
    validate_model_name(name)
    validate_alias(alias)
    with STORE.tx() as st:
        st.registered_model_row(name)
        st.db.execute("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?",
                      (name, alias))  # an alias that is not there: fine
    return {}


def h_get_model_version_by_alias(req):
    msg = req.message(M_NAME_ALIAS, {
        "name": [assert_string, assert_required],
        "alias": [assert_string, assert_required],
    })
    name, alias = msg.get("name", ""), msg.get("alias", "")
    validate_model_name(name)
    validate_alias(alias)
    with STORE.lock:
        found = STORE.q1("SELECT version FROM registered_model_aliases WHERE name = ? AND "
                         "alias = ?", (name, alias))
        if found is None:
            # Not 404: the SQL store says INVALID_PARAMETER_VALUE (also for an unknown model).
            raise MlflowError(f"Registered model alias {alias} not found.")
        row = STORE.model_version_row(name, str(found[0]))
        return {"model_version": STORE.model_version_json(row)}


M_SEARCH_MODEL_VERSIONS = {"filter": STRING, "max_results": INT64, "order_by": REP(STRING),
                           "page_token": STRING}
_MV_FILTER = re.compile(r"^\s*(run_id|name)\s*=\s*'([^']*)'\s*$")


def h_search_model_versions(req):
    msg = req.message(M_SEARCH_MODEL_VERSIONS, {"filter": [assert_string],
                                                "page_token": [assert_string]})
    m = _MV_FILTER.match(msg.get("filter") or "")
    if not m:
        raise MlflowError(f"Unsupported filter for this test server: {msg.get('filter')!r}")
    col = "run_id" if m.group(1) == "run_id" else "name"
    token = msg.get("page_token") or "0"
    if not token.isdigit():
        raise MlflowError(f"Invalid page token {token!r}")
    offset = int(token)
    with STORE.lock:
        rows = STORE.q(f"SELECT * FROM model_versions WHERE {col} = ? AND "
                       "current_stage != 'Deleted_Internal' ORDER BY name, version DESC "
                       "LIMIT 101 OFFSET ?", (m.group(2), offset))
        out = {"model_versions": [STORE.model_version_json(r) for r in rows[:100]]}
    if not out["model_versions"]:
        del out["model_versions"]
    if len(rows) > 100:
        out["next_page_token"] = str(offset + 100)
    return out


def h_list_artifacts(req):
    """GET artifacts/list (the tracking API's ListArtifacts), run-relative paths."""
    msg = req.message(M_LIST_ARTIFACTS, {
        "run_id": [assert_string, assert_required],
        "path": [assert_string],
        "page_token": [assert_string],
    })
    path = safe_artifact_path(msg["path"], allow_empty=True) if "path" in msg else ""
    run_id = run_id_of(msg)
    with STORE.lock:
        run = STORE.run_row(run_id)
    root_uri = run[8]
    resp = {"root_uri": root_uri}
    if root_uri.startswith("mlflow-artifacts:") and CONFIG.serve_artifacts:
        base = urlsplit(root_uri).path.strip("/")
        files = []
        for info in ARTIFACTS.list_dir(posixpath.join(base, path) if path else base):
            info["path"] = posixpath.join(path, info["path"]) if path else info["path"]
            files.append(info)
        if files:
            resp["files"] = files
    # Any other artifact root (s3://...) would be listed by the server with its own
    # credentials; the test server has no such store and lists nothing.
    return resp


# path (relative to /api/2.0/mlflow/) -> {method: handler}
ROUTES = {
    "experiments/get-by-name": {"GET": h_get_experiment_by_name},
    "experiments/create": {"POST": h_create_experiment},
    "experiments/get": {"GET": h_get_experiment},
    "experiments/search": {"POST": h_search_experiments, "GET": h_search_experiments},
    "runs/create": {"POST": h_create_run},
    "runs/update": {"POST": h_update_run},
    "runs/delete": {"POST": h_delete_run},
    "runs/restore": {"POST": h_restore_run},
    "runs/get": {"GET": h_get_run},
    "runs/log-batch": {"POST": h_log_batch},
    "runs/log-metric": {"POST": h_log_metric},
    "runs/log-parameter": {"POST": h_log_param},
    "runs/set-tag": {"POST": h_set_tag},
    "runs/delete-tag": {"POST": h_delete_tag},
    "runs/log-inputs": {"POST": h_log_inputs},
    "runs/search": {"POST": h_search_runs},
    "metrics/get-history": {"GET": h_get_metric_history},
    "artifacts/list": {"GET": h_list_artifacts},
    "registered-models/create": {"POST": h_create_registered_model},
    "registered-models/get": {"GET": h_get_registered_model},
    "registered-models/alias": {"POST": h_set_registered_model_alias,
                                "DELETE": h_delete_registered_model_alias,
                                "GET": h_get_model_version_by_alias},
    "model-versions/create": {"POST": h_create_model_version},
    "model-versions/get": {"GET": h_get_model_version},
    "model-versions/search": {"GET": h_search_model_versions},
    "model-versions/get-download-uri": {"GET": h_get_model_version_download_uri},
}

# ---------------------------------------------------------------------------------------------
# Proxied artifacts (/api/2.0/mlflow-artifacts/...) and S3-like presigned part uploads
# ---------------------------------------------------------------------------------------------

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow-artifacts/")
PRESIGNED_PREFIX = "/_presigned/"
INTERNAL_DIR = ".mlflow-test-server"  # under the artifact root: staging files, upload parts
STREAM_CHUNK = 1024 * 1024
MAX_PARTS = 10000  # S3's limit on part numbers
UNSUPPORTED_MPU_MESSAGE = "Multipart upload is not supported for the current artifact repository"
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f]")


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _check_artifact_name(p, file=False):
    """mlflow.utils.uri.validate_path_is_safe on a POSIX server, a little stricter: also
    refuses backslashes and control characters (MLflow on Windows refuses the first; on POSIX
    it would keep both in the stored name)."""
    if ("#" in p or "\\" in p or _CONTROL_CHARS.search(p) or p.startswith("/")
            or p.lower().startswith("file:") or pathlib.PureWindowsPath(p).is_absolute()
            or ".." in p.split("/") or (file and p.endswith("/"))):
        raise MlflowError("Invalid path")


def safe_artifact_path(raw, allow_empty=False, file=False):
    """The artifact path of a request, checked and normalised ("a//b/./c" -> "a/b/c").  As
    MLflow, the (already URL-decoded) path is decoded again until it no longer changes, so
    %252e%252e is caught too.  Errors: 400 INVALID_PARAMETER_VALUE "Invalid path"."""
    p = raw
    for _ in range(10):
        decoded = unquote(p)
        if decoded == p:
            break
        p = decoded
    else:
        raise MlflowError("Invalid path")
    _check_artifact_name(p, file=file)
    norm = posixpath.normpath(p) if p else "."
    if norm == ".":
        if allow_empty:
            return ""
        raise MlflowError("Invalid path")
    if norm.split("/")[0] == INTERNAL_DIR:
        raise MlflowError("Invalid path")
    return norm


def guess_mime_type(rel):
    """mlflow.utils.mime_type_utils._guess_mime_type, near enough."""
    name = posixpath.basename(rel)
    ext = os.path.splitext(name)[1].lstrip(".") or name
    if ext in ("MLmodel", "MLproject"):
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def presign_query(upload_id, part_number, secret):
    """An S3-style presigned query string (SigV4 look-alike; %2F included on purpose)."""
    sig = hmac.new(secret, f"{upload_id}/{part_number}".encode(), hashlib.sha256).hexdigest()
    return (f"uploadId={upload_id}&partNumber={part_number}&X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=MLOTESTACCESSKEY%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={sig}")


def s3_error(status, code, message, headers=None, **extra):
    def esc(t):
        return str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    fields = "".join(f"<{k}>{esc(v)}</{k}>" for k, v in extra.items())
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{esc(message)}</Message>{fields}"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")
    return Response(status, body, "application/xml", headers)


def mpu_error(operation, code, text, error_code="INVALID_PARAMETER_VALUE"):
    """An S3 error as botocore words it (real MLflow lets these through as a bare 500)."""
    return MlflowError(f"An error occurred ({code}) when calling the {operation} operation: "
                       f"{text}", error_code)


NO_SUCH_UPLOAD = ("The specified upload does not exist. The upload ID may be invalid, or the "
                  "upload may have been aborted or completed.")


class ArtifactStore:
    """Files under the artifact root, exactly at their artifact paths; the server's own
    scratch space (staging files, multipart parts) lives in <root>/.mlflow-test-server/.
    Uploads stream into a staging file and are renamed into place, so a reader never sees a
    half-written artifact and an interrupted upload leaves nothing behind."""

    def __init__(self):
        self.lock = threading.RLock()
        self.root = None
        self.owned = False
        self.uploads = {}  # upload_id -> {dest, num_parts, secret, parts: {n: (size, md5)}}
        self.completed = {}  # upload_id -> (dest, [(n, etag)]): a retried complete is fine
        self._hash_cache = {}

    def setup(self, root=None):
        if root is None:
            root = tempfile.mkdtemp(prefix="mlflow-test-artifacts-")
            self.owned = True
        else:
            root = os.path.abspath(root)
            os.makedirs(root, exist_ok=True)
            entries = os.listdir(root)
            if entries and INTERNAL_DIR not in entries:
                raise ValueError(
                    f"--artifact-root {root} is not empty and was not made by this server: "
                    "/_test/reset empties the artifact root, so give an empty or new directory")
        self.root = os.path.realpath(root)
        for sub in ("staging", "mpu"):
            os.makedirs(os.path.join(self.root, INTERNAL_DIR, sub), exist_ok=True)

    def ensure(self):
        if self.root is None:
            with self.lock:
                if self.root is None:
                    self.setup(None)
                    atexit.register(self.cleanup)

    def cleanup(self):
        if self.owned and self.root:
            shutil.rmtree(self.root, ignore_errors=True)

    def fs(self, rel):
        self.ensure()
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def internal(self, *parts):
        self.ensure()
        return os.path.join(self.root, INTERNAL_DIR, *parts)

    def new_staging_file(self):
        fd, tmp = tempfile.mkstemp(dir=self.internal("staging"), prefix="upload-")
        return os.fdopen(fd, "wb"), tmp

    def commit(self, tmp, rel):
        dest = self.fs(rel)
        with self.lock:
            try:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.isdir(dest):
                    raise IsADirectoryError(21, "Is a directory")
                os.replace(tmp, dest)
            except OSError as e:
                _unlink(tmp)
                raise MlflowError(f"mlflow_test_server: could not store artifact '{rel}': "
                                  f"{e.strerror or e}", "INTERNAL_ERROR") from None

    def open_file(self, rel):
        """(file object, size) of a stored file, or None.  The open file keeps its content
        even if an upload replaces the artifact meanwhile."""
        try:
            f = open(self.fs(rel), "rb")
        except OSError:
            return None
        size = os.fstat(f.fileno()).st_size
        return f, size

    def list_dir(self, rel):
        """Entries directly under rel, as FileInfo JSON (basename only), sorted; [] when rel
        is not a directory."""
        p = self.fs(rel)
        if not os.path.isdir(p):
            return []
        out = []
        for name in sorted(os.listdir(p)):
            if not rel and name == INTERNAL_DIR:
                continue
            full = os.path.join(p, name)
            if os.path.isdir(full):
                out.append({"path": name, "is_dir": True})
            else:
                try:
                    size = os.path.getsize(full)
                except OSError:
                    continue
                out.append({"path": name, "is_dir": False, "file_size": size})
        return out

    def delete(self, rel):
        p = self.fs(rel)
        with self.lock:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                _unlink(p)

    def reset(self):
        with self.lock:
            self.uploads.clear()
            self.completed.clear()
            self._hash_cache.clear()
            if self.root is None:
                return
            for name in os.listdir(self.root):
                full = os.path.join(self.root, name)
                if name == INTERNAL_DIR:
                    for sub in ("staging", "mpu"):
                        shutil.rmtree(os.path.join(full, sub), ignore_errors=True)
                        os.makedirs(os.path.join(full, sub), exist_ok=True)
                elif os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    _unlink(full)

    def listing(self):
        """Every stored file: path, size, sha256 (cached per inode/size/mtime)."""
        if self.root is None:
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == self.root:
                dirnames[:] = [d for d in dirnames if d != INTERNAL_DIR]
            for fn in filenames:
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                try:
                    with open(full, "rb") as f:
                        st = os.fstat(f.fileno())
                        key = (rel, st.st_ino, st.st_size, st.st_mtime_ns)
                        digest = self._hash_cache.get(key)
                        if digest is None:
                            h = hashlib.sha256()
                            while True:
                                chunk = f.read(STREAM_CHUNK)
                                if not chunk:
                                    break
                                h.update(chunk)
                            digest = self._hash_cache[key] = h.hexdigest()
                except OSError:
                    continue
                out.append({"path": rel, "size": st.st_size, "sha256": digest})
        out.sort(key=lambda e: e["path"])
        return out

    def uploads_dump(self):
        with self.lock:
            return [{"upload_id": uid, "path": up["dest"], "num_parts": up["num_parts"],
                     "parts": {str(n): {"size": size, "etag": f'"{md5}"'}
                               for n, (size, md5) in sorted(up["parts"].items())}}
                    for uid, up in self.uploads.items()]

    # --- multipart (the S3 side) -----------------------------------------------------------

    def create_upload(self, dest, num_parts):
        upload_id = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
        secret = os.urandom(16)
        with self.lock:
            os.makedirs(self.internal("mpu", upload_id), exist_ok=True)
            self.uploads[upload_id] = {"dest": dest, "num_parts": num_parts, "secret": secret,
                                       "parts": {}}
        return upload_id, secret

    def store_part(self, upload_id, n, reader):
        """Streams a part to disk; returns its md5 hex, or None if the upload is gone."""
        part_dir = self.internal("mpu", upload_id)
        try:
            fd, tmp = tempfile.mkstemp(dir=part_dir, prefix=f".part-{n}-")
        except OSError:
            return None  # aborted or completed meanwhile
        h = hashlib.md5()
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                while True:
                    chunk = reader.read(STREAM_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
        except BaseException:
            _unlink(tmp)
            raise
        md5 = h.hexdigest()
        with self.lock:
            up = self.uploads.get(upload_id)
            if up is None:
                _unlink(tmp)
                return None
            try:
                os.replace(tmp, os.path.join(part_dir, str(n)))
            except OSError:
                _unlink(tmp)
                return None
            up["parts"][n] = (size, md5)
        return md5

    def complete_upload(self, upload_id, dest, parts):
        op = "CompleteMultipartUpload"
        requested = [(p.get("part_number", 0), p.get("etag", "").strip().strip('"'))
                     for p in parts]
        with self.lock:
            up = self.uploads.get(upload_id)
            if up is None or up["dest"] != dest:
                done = self.completed.get(upload_id)
                if done is not None and done == (dest, requested):
                    return  # a retry of a complete that worked: S3 answers 200 again
                raise mpu_error(op, "NoSuchUpload", NO_SUCH_UPLOAD, "RESOURCE_DOES_NOT_EXIST")
            if not requested:
                raise mpu_error(op, "MalformedXML", "The XML you provided was not well-formed "
                                "or did not validate against our published schema")
            numbers = [n for n, _ in requested]
            if any(b <= a for a, b in zip(numbers, numbers[1:])):
                raise mpu_error(op, "InvalidPartOrder", "The list of parts was not in ascending "
                                "order. Parts must be ordered by part number.")
            chosen = []
            for n, etag in requested:
                got = up["parts"].get(n)
                if got is None or got[1] != etag:
                    raise mpu_error(op, "InvalidPart", "One or more of the specified parts could "
                                    "not be found.  The part may not have been uploaded, or the "
                                    "specified entity tag may not match the part's entity tag.")
                chosen.append((n, got[0]))
            for n, size in chosen[:-1]:
                if size < CONFIG.mpu_min_part_size:
                    raise mpu_error(op, "EntityTooSmall", "Your proposed upload is smaller than "
                                    "the minimum allowed size")
            del self.uploads[upload_id]  # claimed: part PUTs and aborts now see it gone
            self.completed[upload_id] = (dest, requested)
        part_dir = self.internal("mpu", upload_id)
        try:
            f, tmp = self.new_staging_file()
            try:
                with f:
                    for n, _ in chosen:
                        with open(os.path.join(part_dir, str(n)), "rb") as src:
                            shutil.copyfileobj(src, f, STREAM_CHUNK)
            except BaseException:
                _unlink(tmp)
                raise
            self.commit(tmp, dest)
        finally:
            shutil.rmtree(part_dir, ignore_errors=True)

    def abort_upload(self, upload_id, dest):
        with self.lock:
            up = self.uploads.get(upload_id)
            if up is None or up["dest"] != dest:
                raise mpu_error("AbortMultipartUpload", "NoSuchUpload", NO_SUCH_UPLOAD,
                                "RESOURCE_DOES_NOT_EXIST")
            del self.uploads[upload_id]
        shutil.rmtree(self.internal("mpu", upload_id), ignore_errors=True)


ARTIFACTS = ArtifactStore()


def artifact_route(fn):
    """handlers._disable_unless_serve_artifacts: 503 plain text when not serving."""

    def wrapper(req, arg):
        if not CONFIG.serve_artifacts:
            return Response(
                503,
                f"Endpoint: {req.rule} disabled due to the mlflow server running with "
                "`--no-serve-artifacts`. To enable artifacts server functionality, run "
                "`mlflow server` with `--serve-artifacts`",
                "text/html; charset=utf-8")
        return fn(req, arg)

    wrapper.__name__ = fn.__name__
    return wrapper


@artifact_route
def ma_upload(req, arg):
    rel = safe_artifact_path(arg, file=True)
    f, tmp = ARTIFACTS.new_staging_file()
    try:
        with f:
            while True:
                chunk = req.reader.read(STREAM_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
    except BaseException:
        _unlink(tmp)
        raise
    ARTIFACTS.commit(tmp, rel)
    return json_response(200, {})


@artifact_route
def ma_download(req, arg):
    rel = safe_artifact_path(arg)
    opened = ARTIFACTS.open_file(rel)
    if opened is None:
        if CONFIG.missing_artifact_status == 500:
            return html_response(500, HTML_500)  # what MLflow really answers (an OSError)
        raise MlflowError(f"Artifact '{rel}' does not exist", "RESOURCE_DOES_NOT_EXIST")
    f, size = opened
    name = posixpath.basename(rel)
    return Response(200, b"", guess_mime_type(rel),
                    [("Content-Disposition", f"attachment; filename={name}"),
                     ("X-Content-Type-Options", "nosniff")], fileobj=f, file_size=size)


@artifact_route
def ma_list(req, _arg):
    msg = req.message(M_MA_LIST, None)
    rel = safe_artifact_path(msg["path"], allow_empty=True) if "path" in msg else ""
    files = ARTIFACTS.list_dir(rel)
    return json_response(200, {"files": files} if files else {}, indent=2)


@artifact_route
def ma_delete(req, arg):
    rel = safe_artifact_path(arg)
    req.message({}, None)
    ARTIFACTS.delete(rel)
    return json_response(200, {})


def mpu_destination(route_rel, local_path):
    """As MLflow's S3 repository: <route path>/<basename of the body's "path">; the body's
    path is the client's local file name."""
    name = posixpath.basename(local_path)
    if name in ("", ".", ".."):
        raise MlflowError("Invalid path")
    _check_artifact_name(name, file=True)
    return posixpath.join(route_rel, name)


@artifact_route
def ma_mpu_create(req, arg):
    rel = safe_artifact_path(arg)
    msg = req.message(M_MPU_CREATE, {"path": [assert_required, assert_string],
                                     "num_parts": [assert_intlike]})
    if not CONFIG.multipart:
        raise MlflowError(UNSUPPORTED_MPU_MESSAGE, "NOT_IMPLEMENTED")
    dest = mpu_destination(rel, msg.get("path", ""))
    num_parts = max(0, msg.get("num_parts", 0))
    if num_parts > MAX_PARTS:
        raise MlflowError(f"mlflow_test_server: num_parts {num_parts} is more than S3's "
                          f"{MAX_PARTS} parts")
    upload_id, secret = ARTIFACTS.create_upload(dest, num_parts)
    base = CONFIG.public_base or "http://127.0.0.1"
    creds = [{"url": f"{base}{PRESIGNED_PREFIX}{upload_id}/{n}?"
                     f"{presign_query(upload_id, n, secret)}",
              "part_number": n, "headers": {}} for n in range(1, num_parts + 1)]
    resp = {"upload_id": upload_id}
    if creds:
        resp["credentials"] = creds
    return json_response(200, resp, indent=2)


@artifact_route
def ma_mpu_complete(req, arg):
    rel = safe_artifact_path(arg)
    msg = req.message(M_MPU_COMPLETE, {"path": [assert_required, assert_string],
                                       "upload_id": [assert_string],
                                       "parts": [assert_required]})
    if not CONFIG.multipart:
        raise MlflowError(UNSUPPORTED_MPU_MESSAGE, "NOT_IMPLEMENTED")
    dest = mpu_destination(rel, msg.get("path", ""))
    ARTIFACTS.complete_upload(msg.get("upload_id", ""), dest, msg.get("parts", []))
    return json_response(200, {})


@artifact_route
def ma_mpu_abort(req, arg):
    rel = safe_artifact_path(arg)
    msg = req.message(M_MPU_ABORT, {"path": [assert_required, assert_string],
                                    "upload_id": [assert_string]})
    if not CONFIG.multipart:
        raise MlflowError(UNSUPPORTED_MPU_MESSAGE, "NOT_IMPLEMENTED")
    dest = mpu_destination(rel, msg.get("path", ""))
    ARTIFACTS.abort_upload(msg.get("upload_id", ""), dest)
    return json_response(200, {})


def resolve_artifact_route(prefix, rest):
    """(Flask url rule, {method: handler}, path argument) for a path under
    .../mlflow-artifacts/, or None (404).  rest is still percent-encoded."""
    base = prefix.rstrip("/")
    if rest == "artifacts":
        return base + "/artifacts", {"GET": ma_list}, None
    if rest.startswith("artifacts/"):
        return (base + "/artifacts/<path:artifact_path>",
                {"GET": ma_download, "PUT": ma_upload, "DELETE": ma_delete},
                rest[len("artifacts/"):])
    for op, fn in (("create", ma_mpu_create), ("complete", ma_mpu_complete),
                   ("abort", ma_mpu_abort)):
        head = f"mpu/{op}/"
        if rest.startswith(head) and len(rest) > len(head):
            return base + f"/mpu/{op}/<path:artifact_path>", {"POST": fn}, rest[len(head):]
    return None


def handle_presigned(method, url, headers, reader):
    """PUT /_presigned/<upload_id>/<part>?<signed query>: an S3 UploadPart through a presigned
    URL.  Like S3: XML errors, an Authorization header is refused (400, only one auth
    mechanism), chunked bodies are refused (501) and Content-Length is required (411); the
    answer is 200 with ETag: "<md5 of the part>" and no body."""
    pieces = url.path[len(PRESIGNED_PREFIX):].split("/")
    if len(pieces) != 2 or not pieces[0]:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    upload_id, part = pieces
    if method != "PUT":
        return s3_error(405, "MethodNotAllowed",
                        "The specified method is not allowed against this resource.",
                        Method=method, ResourceType="OBJECT")
    if headers.get("Authorization") is not None:
        return s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the "
                        "X-Amz-Algorithm query parameter, Signature query string parameter or "
                        "the Authorization header should be specified",
                        ArgumentName="Authorization",
                        ArgumentValue=headers.get("Authorization"))
    with ARTIFACTS.lock:
        up = ARTIFACTS.uploads.get(upload_id)
        secret = up["secret"] if up else None
        num_parts = up["num_parts"] if up else 0
    if up is None:
        return s3_error(404, "NoSuchUpload", NO_SUCH_UPLOAD, UploadId=upload_id)
    if (not re.fullmatch(r"[0-9]{1,5}", part) or not 1 <= int(part) <= num_parts or
            parse_qs(url.query, keep_blank_values=True) !=
            parse_qs(presign_query(upload_id, int(part), secret), keep_blank_values=True)):
        return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does "
                        "not match the signature you provided. Check your key and signing "
                        "method.")
    if reader.chunked:
        return s3_error(501, "NotImplemented", "A header you provided implies functionality "
                        "that is not implemented", Header="Transfer-Encoding")
    if not reader.has_length:
        return s3_error(411, "MissingContentLength",
                        "You must provide the Content-Length HTTP header.")
    md5 = ARTIFACTS.store_part(upload_id, int(part), reader)
    if md5 is None:
        return s3_error(404, "NoSuchUpload", NO_SUCH_UPLOAD, UploadId=upload_id)
    return Response(200, b"", None, [("ETag", f'"{md5}"')])


def is_streamed_upload(method, path):
    """Requests whose body the handler streams to disk instead of reading it into memory."""
    return method == "PUT" and (path.startswith(PRESIGNED_PREFIX) or any(
        path.startswith(p + "artifacts/") for p in ARTIFACT_PREFIXES))


# (absolute path prefix, resolver): resolver(prefix, rest of the path) -> (Flask-style url
# rule, {method: handler}, argument) or None for 404; handler(req, argument) -> Response.
# The handler may stream the request body from req.reader (is_streamed_upload) and answer a
# file (Response.fileobj), both in chunks.
PREFIX_ROUTES = [(prefix, resolve_artifact_route) for prefix in ARTIFACT_PREFIXES]


# ---------------------------------------------------------------------------------------------
# Faults, request log
# ---------------------------------------------------------------------------------------------

FAULT_KEYS = {"status", "count", "retry_after", "body", "content_type", "delay_ms", "drop",
              "reset_mid_response", "path_prefix", "method", "process", "close", "headers",
              "drop_after_bytes"}
# A relative path_prefix ("runs/log-batch", "mlflow-artifacts/artifacts/") is tried against
# each of these.
FAULT_RELATIVE_BASES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/",
                        "/ajax-api/2.0/")


class FaultRule:
    """One queued fault; see the description of POST /_test/faults in handle_control()."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(spec) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        self.status = spec.get("status")
        if self.status is not None and (not isinstance(self.status, int) or
                                        isinstance(self.status, bool) or
                                        not 100 <= self.status <= 599):
            raise ValueError("status must be an integer 100..599")
        self.count = spec.get("count", 1)
        if not isinstance(self.count, int) or isinstance(self.count, bool):
            raise ValueError("count must be an integer (negative: unlimited)")
        self.retry_after = spec.get("retry_after")
        if self.retry_after is not None and not isinstance(self.retry_after, (int, float, str)):
            raise ValueError("retry_after must be a number of seconds or a string")
        self.body = spec.get("body")
        if self.body is not None and not isinstance(self.body, str):
            raise ValueError("body must be a string")
        self.content_type = spec.get("content_type")
        if self.content_type is not None and not isinstance(self.content_type, str):
            raise ValueError("content_type must be a string")
        self.delay_ms = spec.get("delay_ms", 0)
        if not isinstance(self.delay_ms, (int, float)) or self.delay_ms < 0:
            raise ValueError("delay_ms must be a non-negative number")
        self.drop = bool(spec.get("drop", False))
        self.drop_after_bytes = spec.get("drop_after_bytes")
        if self.drop_after_bytes is not None and (
                not isinstance(self.drop_after_bytes, int) or
                isinstance(self.drop_after_bytes, bool) or self.drop_after_bytes < 0):
            raise ValueError("drop_after_bytes must be a non-negative integer")
        self.reset_mid_response = bool(spec.get("reset_mid_response", False))
        self.close = bool(spec.get("close", False))
        self.path_prefix = spec.get("path_prefix")
        if self.path_prefix is not None and not isinstance(self.path_prefix, str):
            raise ValueError("path_prefix must be a string")
        self.method = spec.get("method")
        if self.method is not None and not isinstance(self.method, str):
            raise ValueError("method must be a string")
        self.headers = spec.get("headers") or {}
        if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ValueError("headers must be an object of strings")
        default_process = self.status is None and not self.drop
        self.process = bool(spec.get("process", default_process))
        self.spec = dict(spec)

    def matches(self, method, path):
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path_prefix is None:
            return True
        if self.path_prefix.startswith("/"):
            return path.startswith(self.path_prefix)
        for prefix in FAULT_RELATIVE_BASES:  # relative prefix: "runs/log-batch"
            if path.startswith(prefix) and path[len(prefix):].startswith(self.path_prefix):
                return True
        return False

    def describe(self):
        d = dict(self.spec)
        d["remaining"] = self.count
        return d


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, specs):
        rules = [FaultRule(s) for s in specs]  # validate all before queuing any
        with self.lock:
            self.rules.extend(r for r in rules if r.count != 0)
        return len(rules)

    def take(self, method, path):
        with self.lock:
            for r in self.rules:
                if r.matches(method, path):
                    if r.count > 0:
                        r.count -= 1
                        if r.count == 0:
                            self.rules.remove(r)
                    return r
        return None

    def clear(self):
        with self.lock:
            n = len(self.rules)
            self.rules = []
            return n

    def list(self):
        with self.lock:
            return [r.describe() for r in self.rules]


FAULTS = Faults()


class RequestLog:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def add(self, entry):
        with self.lock:
            entry["seq"] = len(self.entries) + 1
            self.entries.append(entry)

    def list(self):
        with self.lock:
            return [dict(e) for e in self.entries]

    def clear(self):
        with self.lock:
            self.entries = []


REQUESTS = RequestLog()


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def log(msg):
    try:
        sys.stderr.write(f"mlflow_test_server: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


class BadRequest(Exception):
    pass


class ClientGone(ConnectionError):
    """The client closed the connection before the end of its request body."""


class Response:
    """A response: body bytes, or an open file (fileobj, file_size) streamed in chunks.
    content_type None: no Content-Type header."""

    def __init__(self, status, body=b"", content_type="application/json", headers=None,
                 fileobj=None, file_size=0):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers or [])
        self.fileobj = fileobj
        self.file_size = file_size

    def close(self):
        if self.fileobj is not None:
            try:
                self.fileobj.close()
            except OSError:
                pass
            self.fileobj = None


class BodyReader:
    """The request body, read on demand in pieces: Content-Length or chunked (any chunk size,
    read a piece at a time).  count: payload bytes read so far.  Raises BadRequest on bad
    framing, ClientGone on EOF before the end."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self.count = 0
        self.chunk_left = 0
        self.has_length = False
        self.left = 0
        if not self.chunked:
            cl = headers.get("Content-Length")
            if cl is not None:
                try:
                    n = int(cl.strip())
                except ValueError:
                    raise BadRequest("bad Content-Length") from None
                if n < 0:
                    raise BadRequest("bad Content-Length")
                self.left = n
                self.has_length = True
        self.done = not self.chunked and self.left == 0

    def read(self, n=STREAM_CHUNK):
        if self.done or n <= 0:
            return b""
        if not self.chunked:
            data = self.rfile.read(min(n, self.left))
            if not data:
                raise ClientGone("EOF in body")
            self.left -= len(data)
            self.count += len(data)
            self.done = self.left == 0
            return data
        if self.chunk_left == 0:
            line = self.rfile.readline(65537)
            if not line:
                raise ClientGone("EOF in chunked body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size < 0:
                raise BadRequest("bad chunk size")
            if size == 0:
                while True:  # trailers
                    t = self.rfile.readline(65537)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                self.done = True
                return b""
            self.chunk_left = size
        data = self.rfile.read(min(n, self.chunk_left))
        if not data:
            raise ClientGone("EOF in chunk")
        self.chunk_left -= len(data)
        self.count += len(data)
        if self.chunk_left == 0:
            self.rfile.readline(3)  # the CRLF after the chunk
        return data

    def read_all(self):
        parts = []
        while True:
            data = self.read(STREAM_CHUNK)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def skip(self, limit):
        while self.count < limit and self.read(min(STREAM_CHUNK, limit - self.count)):
            pass

    def drain(self):
        while self.read(STREAM_CHUNK):
            pass


def json_response(status, obj, indent=None):
    return Response(status, json.dumps(obj, indent=indent, allow_nan=False))


def error_response(err):
    return json_response(err.status, err.body())


def html_response(status, html, headers=None):
    return Response(status, html, "text/html; charset=utf-8", headers)


def default_fault_body(status):
    if status in (502, 504):
        reason = {502: "Bad Gateway", 504: "Gateway Time-out"}[status]
        return nginx_html(status, reason), "text/html"
    code = STATUS_ERROR_CODE.get(status, "INTERNAL_ERROR")
    return json.dumps({"error_code": code,
                       "message": f"Injected fault (HTTP {status}) by mlflow_test_server"}), \
        "application/json"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def server_bind(self):
        # Skip HTTPServer.server_bind's socket.getfqdn(): a reverse DNS lookup that can stall.
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        if CONFIG.verbose:
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlflow-test-server"
    sys_version = ""
    # Buffered writes (status line, headers and body leave in one segment) plus TCP_NODELAY:
    # otherwise Nagle + delayed ACK cost ~40 ms per keep-alive request.
    wbufsize = -1
    conn_counter = 0
    conn_lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------

    def setup(self):
        with Handler.conn_lock:
            Handler.conn_counter += 1
            self.conn_id = Handler.conn_counter
        ctx = getattr(self.server, "ssl_ctx", None)
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        idle = getattr(self.server, "idle_timeout", None)
        if idle:
            self.timeout = idle
        super().setup()

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        if CONFIG.verbose:
            log("%s - %s" % (self.address_string(), format % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def handle_expect_100(self):
        # The base class leaves "100 Continue" in our write buffer; a client would wait for
        # it (curl: 1 s) before sending the body.
        ok = super().handle_expect_100()
        try:
            self.wfile.flush()
        except OSError:
            pass
        return ok

    def send(self, resp, partial=False, close=False):
        try:
            self.send_response(resp.status)
            if resp.content_type:
                self.send_header("Content-Type", resp.content_type)
            chunked = False
            if resp.fileobj is not None:
                chunked = CONFIG.chunked_downloads and self.command != "HEAD"
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(resp.file_size))
            else:
                self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                self.send_header(k, v)
            if close or partial or CONFIG.close_all:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                pass
            elif resp.fileobj is not None:
                self.send_file_body(resp, partial, chunked)
            else:
                body = resp.body[: len(resp.body) // 2] if partial else resp.body
                if body:
                    self.wfile.write(body)
            self.wfile.flush()
        finally:
            resp.close()

    def send_file_body(self, resp, partial, chunked):
        left = resp.file_size // 2 if partial else resp.file_size
        while left > 0:
            data = resp.fileobj.read(min(STREAM_CHUNK, left))
            if not data:  # cannot happen (we never truncate files in place); be safe
                self.close_connection = True
                return
            left -= len(data)
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data))
                self.wfile.write(data)
                self.wfile.write(b"\r\n")
            else:
                self.wfile.write(data)
        if chunked and not partial:
            self.wfile.write(b"0\r\n\r\n")

    def abort_connection(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def dispatch(self):
        try:
            self._dispatch()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            self.close_connection = True
        except Exception as e:  # last resort; should not happen
            log(f"unexpected error: {e!r}")
            self.close_connection = True
            try:
                self.send(json_response(500, {"error_code": "INTERNAL_ERROR",
                                              "message": f"mlflow_test_server: {e!r}"}),
                          close=True)
            except Exception:
                pass

    def _dispatch(self):
        method = self.command
        url = urlsplit(self.path)
        path = url.path
        try:
            reader = BodyReader(self.rfile, self.headers)
            if path == "/_test" or path.startswith("/_test/"):
                body = reader.read_all()
                self.send(self.handle_control(method, path, url.query, body))
                return
        except BadRequest:
            self.send(html_response(400, HTML_400), close=True)
            return

        entry = {
            "conn": self.conn_id,
            "time_ms": now_ms(),
            "method": method,
            "path": path,
            "query": url.query,
            "status": None,
            "user_agent": self.headers.get("User-Agent"),
            "authorization": self.headers.get("Authorization"),
            "has_authorization": self.headers.get("Authorization") is not None,
            "content_type": self.headers.get("Content-Type"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "connection": self.headers.get("Connection"),
            "body_len": 0,
            "fault": None,
        }
        REQUESTS.add(entry)
        fault = FAULTS.take(method, path)
        if fault is not None:
            entry["fault"] = fault.describe()
        try:
            self.answer(method, url, reader, entry, fault)
        except BadRequest:
            entry["body_len"] = reader.count
            entry["status"] = 400
            self.send(html_response(400, HTML_400), close=True)
        except ClientGone:
            entry["body_len"] = reader.count
            entry["status"] = 0
            entry["error"] = "the client closed the connection before the end of the body"
            self.close_connection = True
        finally:
            entry["body_len"] = reader.count

    def answer(self, method, url, reader, entry, fault):
        if fault is not None and fault.drop_after_bytes is not None:
            reader.skip(fault.drop_after_bytes)  # then hang up, mid-upload
            entry["body_len"] = reader.count
            entry["status"] = 0
            self.abort_connection()
            return
        # Artifact uploads stream their body to disk; everything else is read first.
        body = None if is_streamed_upload(method, url.path) else reader.read_all()
        if fault is None:
            resp = self.handle_api(method, url, body, reader)
            reader.drain()
            entry["body_len"] = reader.count  # logged before answering: no race with the
            entry["status"] = resp.status     # client reading /_test/requests
            self.send(resp)
            return

        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000.0)
        resp = None
        if fault.process or (fault.status is None and not fault.drop):
            resp = self.handle_api(method, url, body, reader)
        reader.drain()
        entry["body_len"] = reader.count
        if fault.drop:
            if resp is not None:
                resp.close()
            entry["status"] = 0
            self.abort_connection()
            return
        if fault.status is not None:
            if resp is not None:
                resp.close()
            fbody, ftype = default_fault_body(fault.status)
            if fault.body is not None:
                fbody = fault.body
                ftype = "text/plain; charset=utf-8"
            if fault.content_type is not None:
                ftype = fault.content_type
            headers = list(fault.headers.items())
            if fault.retry_after is not None:
                ra = fault.retry_after
                if isinstance(ra, float) and ra.is_integer():
                    ra = int(ra)
                headers.append(("Retry-After", str(ra)))
            resp = Response(fault.status, fbody, ftype, headers)
        entry["status"] = resp.status
        self.send(resp, partial=fault.reset_mid_response, close=fault.close)

    # --- the MLflow API -------------------------------------------------------------------

    def handle_api(self, method, url, body, reader=None):
        path = url.path
        presigned = path.startswith(PRESIGNED_PREFIX)
        if CONFIG.artifacts_down and (presigned or path.startswith(ARTIFACT_PREFIXES)):
            if presigned:
                return s3_error(503, "ServiceUnavailable", "Service is unable to handle request.")
            return json_response(503, {"error_code": "TEMPORARILY_UNAVAILABLE",
                                       "message": "mlflow_test_server: the artifact store is "
                                                  "down (artifacts_down)"})
        if presigned:  # "S3": no tracking-server authentication, no client certificate
            try:
                return handle_presigned(method, url, self.headers, reader)
            except (BadRequest, ClientGone):
                raise
            except Exception as e:
                return s3_error(500, "InternalError", f"mlflow_test_server: {e!r}")
        if CONFIG.client_cert_required:
            try:
                cert = self.connection.getpeercert()
            except Exception:
                cert = None
            if not cert:
                return html_response(400, NGINX_NO_CLIENT_CERT)
        if CONFIG.require_auth is not None and \
                self.headers.get("Authorization") != CONFIG.require_auth:
            return Response(401, UNAUTHENTICATED_TEXT, "text/plain; charset=utf-8",
                            [("WWW-Authenticate", 'Basic realm="mlflow"')])
        routes = None
        rest = None
        rule = None
        for prefix in API_PREFIXES:
            if path.startswith(prefix):
                routes = ROUTES.get(path[len(prefix):])
                break
        if routes is None:
            for prefix, resolver in PREFIX_ROUTES:
                if path.startswith(prefix):
                    found = resolver(prefix, path[len(prefix):])
                    if found is not None:
                        rule, routes, rest = found
                    break
        if routes is None:
            return html_response(404, HTML_404)
        lookup = "GET" if method == "HEAD" else method
        allowed = sorted(set(routes) | ({"HEAD"} if "GET" in routes else set()) | {"OPTIONS"})
        if method == "OPTIONS":
            return Response(200, b"", "text/html; charset=utf-8", [("Allow", ", ".join(allowed))])
        handler = routes.get(lookup)
        if handler is None:
            return html_response(405, HTML_405, [("Allow", ", ".join(allowed))])
        query = parse_qs(url.query, keep_blank_values=True)
        req = Request(lookup, path, query, self.headers, body)
        req.reader = reader
        req.rule = rule
        try:
            if rule is not None:
                return handler(req, rest)
            return json_response(200, handler(req), indent=2)
        except MlflowError as e:
            return error_response(e)
        except (BadRequest, ClientGone):
            raise
        except Exception as e:
            if CONFIG.verbose:
                import traceback
                traceback.print_exc()
            return json_response(500, {"error_code": "INTERNAL_ERROR",
                                       "message": f"mlflow_test_server: {e!r}"})

    # --- /_test/ --------------------------------------------------------------------------

    def handle_control(self, method, path, query, body):
        """Test control endpoints (not logged, never faulted):

        POST /_test/faults        one rule object or a list of them; each applies to the next
                                  `count` matching API requests (default 1; negative: until
                                  cleared).  Keys: status, count, retry_after (seconds -> a
                                  Retry-After header), body (raw string), content_type,
                                  headers ({name: value}), delay_ms, drop (close without
                                  answering), reset_mid_response (headers + half the body,
                                  then close), close (answer, then close the connection),
                                  path_prefix (absolute "/api/..." or relative to
                                  /api/2.0/mlflow/, e.g. "runs/log-batch"), method, process
                                  (run the real handler too, so data gets stored; default
                                  true only when neither status nor drop is given).
                                  Without status/drop the real answer is sent (after delay_ms,
                                  possibly cut by reset_mid_response).  Default fault body:
                                  MLflow JSON error, or nginx HTML for 502/504.
        GET  /_test/faults        queued rules with their remaining counts
        POST /_test/faults/clear  remove all rules
                                  drop_after_bytes (read that many bytes of the request
                                  body, then close without answering: a failure mid-upload).
                                  Artifact routes are targeted by absolute prefix
                                  ("/api/2.0/mlflow-artifacts/artifacts/", "/_presigned/") or
                                  relative to /api/2.0/ ("mlflow-artifacts/mpu/complete/").
        GET  /_test/dump          everything stored: experiments, runs (with inputs), datasets
                                  (per experiment, with the runs linking them),
                                  registered_models (tags, aliases {alias: version}, versions
                                  with their tags and aliases), artifacts ([{path, size,
                                  sha256}] under the artifact root) and multipart_uploads (the
                                  pending ones: upload_id, path, num_parts, parts received)
        GET  /_test/requests      the API request log (presigned part PUTs included; body_len
                                  = body bytes received, also for streamed uploads;
                                  has_authorization); POST /_test/requests/clear empties it
        POST /_test/reset         clear data (Default experiment stays), stored artifacts and
                                  pending uploads, request log, faults (not the config)
        POST /_test/config        {"truncate_long_values": bool|null, "close": bool,
                                   "require_auth": "<Authorization value>"|null,
                                   "serve_artifacts": bool, "multipart": bool,
                                   "artifacts_down": bool, "chunked_downloads": bool,
                                   "mpu_min_part_size": bytes, "missing_artifact_status":
                                   404|500}; answers the resulting config (and artifact_root)
        GET  /_test/ping          {"ok": true}
        POST /_test/shutdown      stop the server
        """
        try:
            args = json.loads(body) if body.strip() else None
        except Exception:
            return json_response(400, {"error": "body is not valid JSON"})
        try:
            if path == "/_test/ping":
                return json_response(200, {"ok": True, "pid": os.getpid()})
            if path == "/_test/faults" and method == "POST":
                specs = args if isinstance(args, list) else [args]
                try:
                    n = FAULTS.add(specs)
                except ValueError as e:
                    return json_response(400, {"error": str(e)})
                return json_response(200, {"queued": n, "rules": FAULTS.list()})
            if path == "/_test/faults" and method == "GET":
                return json_response(200, {"rules": FAULTS.list()})
            if path == "/_test/faults/clear" and method == "POST":
                return json_response(200, {"cleared": FAULTS.clear()})
            if path == "/_test/dump" and method == "GET":
                d = STORE.dump()
                d["artifacts"] = ARTIFACTS.listing()
                d["multipart_uploads"] = ARTIFACTS.uploads_dump()
                return json_response(200, d, indent=1)
            if path == "/_test/requests" and method == "GET":
                return json_response(200, REQUESTS.list())
            if path == "/_test/requests/clear" and method == "POST":
                REQUESTS.clear()
                return json_response(200, {"ok": True})
            if path == "/_test/reset" and method == "POST":
                STORE.reset()
                ARTIFACTS.reset()
                REQUESTS.clear()
                FAULTS.clear()
                return json_response(200, {"ok": True})
            if path == "/_test/config" and method == "POST":
                if not isinstance(args, dict):
                    return json_response(400, {"error": "expected a JSON object"})
                if "truncate_long_values" in args:
                    v = args["truncate_long_values"]
                    CONFIG.truncate_override = None if v is None else bool(v)
                if "close" in args:
                    CONFIG.close_all = bool(args["close"])
                if "require_auth" in args:
                    v = args["require_auth"]
                    CONFIG.require_auth = v if isinstance(v, str) else None
                for key in ("serve_artifacts", "multipart", "artifacts_down",
                            "chunked_downloads"):
                    if key in args:
                        setattr(CONFIG, key, bool(args[key]))
                if "mpu_min_part_size" in args:
                    v = args["mpu_min_part_size"]
                    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                        return json_response(400, {"error": "mpu_min_part_size: bytes, >= 0"})
                    CONFIG.mpu_min_part_size = v
                if "missing_artifact_status" in args:
                    v = args["missing_artifact_status"]
                    if v not in (404, 500):
                        return json_response(400, {"error": "missing_artifact_status: 404|500"})
                    CONFIG.missing_artifact_status = v
                return json_response(200, {
                    "truncate_long_values": CONFIG.truncate_long_values(),
                    "close": CONFIG.close_all,
                    "require_auth": CONFIG.require_auth,
                    "serve_artifacts": CONFIG.serve_artifacts,
                    "multipart": CONFIG.multipart,
                    "artifacts_down": CONFIG.artifacts_down,
                    "chunked_downloads": CONFIG.chunked_downloads,
                    "mpu_min_part_size": CONFIG.mpu_min_part_size,
                    "missing_artifact_status": CONFIG.missing_artifact_status,
                    "artifact_root": ARTIFACTS.root})
            if path == "/_test/shutdown" and method == "POST":
                self.close_connection = True
                # stop a moment later: the answer must reach the caller before
                # the process exits (a thread setting it at once raced the reply)
                t = threading.Timer(0.3, self.server.stop_event.set)
                t.daemon = True
                t.start()
                return json_response(200, {"ok": True})
            return json_response(404, {"error": f"unknown test endpoint {method} {path}"})
        except Exception as e:
            return json_response(500, {"error": repr(e)})


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description="MLflow-compatible tracking server for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--close", action="store_true",
                    help="answer every response with Connection: close (gunicorn sync workers)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca",
                    help="require a client certificate signed by this CA for API requests "
                         "(answered like nginx: 400 HTML when none was sent)")
    ap.add_argument("--artifact-root", metavar="DIR",
                    help="keep proxied artifacts here (created if missing; must be empty or a "
                         "previous artifact root of this server; /_test/reset empties it); "
                         "default: a temporary directory removed at exit")
    ap.add_argument("--no-serve-artifacts", action="store_true",
                    help="like `mlflow server --no-serve-artifacts`: new runs get "
                         "s3://mlo-test-bucket/... artifact URIs, artifact routes answer 503")
    ap.add_argument("--no-multipart", action="store_true",
                    help="mpu/create answers 501 NOT_IMPLEMENTED (a local artifact store)")
    ap.add_argument("--idle-timeout", type=float, default=None,
                    help="close a keep-alive connection idle this many seconds")
    ap.add_argument("--require-basic", metavar="USER:PASS",
                    help="answer 401 unless Authorization: Basic base64(USER:PASS)")
    ap.add_argument("--require-bearer", metavar="TOKEN",
                    help="answer 401 unless Authorization: Bearer TOKEN")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)

    CONFIG.close_all = args.close
    CONFIG.verbose = args.verbose
    CONFIG.artifact_root = args.artifact_root
    CONFIG.serve_artifacts = not args.no_serve_artifacts
    CONFIG.multipart = not args.no_multipart
    try:
        ARTIFACTS.setup(args.artifact_root)
    except (OSError, ValueError) as e:
        ap.error(str(e))
    atexit.register(ARTIFACTS.cleanup)
    STORE.reset()  # the Default experiment's artifact location follows --no-serve-artifacts
    if args.require_basic:
        CONFIG.require_auth = "Basic " + base64.b64encode(args.require_basic.encode()).decode()
    elif args.require_bearer:
        CONFIG.require_auth = "Bearer " + args.require_bearer

    ssl_ctx = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            ap.error("--tls-cert and --tls-key go together")
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ssl_ctx.load_verify_locations(args.tls_client_ca)
            ssl_ctx.verify_mode = ssl.CERT_OPTIONAL
            CONFIG.client_cert_required = True
    elif args.tls_client_ca:
        ap.error("--tls-client-ca needs --tls-cert and --tls-key")

    if ":" in args.host:
        Server.address_family = socket.AF_INET6
    srv = Server((args.host, args.port), Handler)
    srv.ssl_ctx = ssl_ctx
    srv.idle_timeout = args.idle_timeout
    srv.stop_event = threading.Event()
    host = args.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    CONFIG.public_base = (f"{'https' if ssl_ctx else 'http'}://{host}:"
                          f"{srv.server_address[1]}")

    def on_signal(signum, frame):
        srv.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    sys.stdout.write(f"PORT {srv.server_address[1]}\n")
    sys.stdout.flush()
    while not srv.stop_event.wait(0.5):
        pass
    srv.shutdown()
    srv.server_close()
    ARTIFACTS.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
