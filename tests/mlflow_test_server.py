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
* Every tracking route is a row in ROUTES (path -> {method: handler}); a handler takes a
  Request and returns the JSON response object or raises MlflowError.  PREFIX_ROUTES is
  there for the artifact routes to come (/api/2.0/mlflow-artifacts/...).
* Test control lives under /_test/ (never logged, never faulted): fault injection, a dump of
  everything stored, the request log, reset, config, shutdown (see Handler.handle_control).
* Nothing may crash the server: every request is wrapped; an unexpected exception in a
  handler gives 500 {"error_code": "INTERNAL_ERROR", ...}.

CLI:  mlflow_test_server.py [--host 127.0.0.1] [--port 0] [--close]
          [--tls-cert F --tls-key F [--tls-client-ca F]] [--artifact-root DIR]
          [--idle-timeout SECONDS] [--require-basic USER:PASS] [--require-bearer TOKEN]
          [--verbose]
Prints "PORT <n>" on stdout once listening; stops on SIGTERM/SIGINT or POST /_test/shutdown.
"""

import argparse
import base64
import json
import math
import os
import posixpath
import random
import re
import signal
import socket
import sqlite3
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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
CREATE TABLE inputs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_uuid TEXT, name TEXT, digest TEXT,
    source_type TEXT, source TEXT, schema TEXT, profile TEXT, tags TEXT
);
"""

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
                "INSERT INTO experiments VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active',"
                " ?, ?)",
                (t, t),
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
            "SELECT name, digest, source_type, source, schema, profile, tags FROM inputs "
            "WHERE run_uuid = ? ORDER BY seq", (run_id,)):
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
            return {"experiments": exps, "runs": runs}


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
                          (f"mlflow-artifacts:/{exp_id}", exp_id))
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
        artifact_uri = f"{exp[2].rstrip('/')}/{run_id}/artifacts"
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
    with STORE.tx() as st:
        st.active_run_row(run_id)
        for row in rows:
            if st.q1("SELECT 1 FROM inputs WHERE run_uuid = ? AND name = ? AND digest = ?",
                     (run_id, row[0], row[1])):
                continue  # the same dataset logged to the same run again is ignored
            st.db.execute("INSERT INTO inputs (run_uuid, name, digest, source_type, source, "
                          "schema, profile, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (run_id,) + row)
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


# path (relative to /api/2.0/mlflow/) -> {method: handler}
ROUTES = {
    "experiments/get-by-name": {"GET": h_get_experiment_by_name},
    "experiments/create": {"POST": h_create_experiment},
    "experiments/get": {"GET": h_get_experiment},
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
}

# (absolute path prefix, {method: handler}); handlers get the Request and the rest of the path
# and return (status, body bytes, content type).  Empty for now: the artifact routes
# (/api/2.0/mlflow-artifacts/artifacts/...) go here.
PREFIX_ROUTES = []


# ---------------------------------------------------------------------------------------------
# Faults, request log
# ---------------------------------------------------------------------------------------------

FAULT_KEYS = {"status", "count", "retry_after", "body", "content_type", "delay_ms", "drop",
              "reset_mid_response", "path_prefix", "method", "process", "close", "headers"}


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
        for prefix in API_PREFIXES:  # relative prefix: "runs/log-batch"
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


class Response:
    def __init__(self, status, body=b"", content_type="application/json", headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers or [])


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

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunked body")
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
                    break
                data = self.rfile.read(size)
                if len(data) < size:
                    raise ConnectionError("EOF in chunk")
                chunks.append(data)
                self.rfile.readline(3)
            return b"".join(chunks)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl.strip())
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if n < 0:
            raise BadRequest("bad Content-Length")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise ConnectionError("EOF in body")
        return data

    def send(self, resp, partial=False, close=False):
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers:
            self.send_header(k, v)
        if close or partial or CONFIG.close_all:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        body = resp.body
        if self.command == "HEAD":
            body = b""
        elif partial:
            body = body[: len(body) // 2]
        if body:
            self.wfile.write(body)
        self.wfile.flush()

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
            body = self.read_body()
        except BadRequest:
            self.send(html_response(400, HTML_400), close=True)
            return
        if path == "/_test" or path.startswith("/_test/"):
            self.send(self.handle_control(method, path, url.query, body))
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
            "content_type": self.headers.get("Content-Type"),
            "content_encoding": self.headers.get("Content-Encoding"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "connection": self.headers.get("Connection"),
            "body_len": len(body),
            "fault": None,
        }
        REQUESTS.add(entry)

        fault = FAULTS.take(method, path)
        if fault is None:
            resp = self.handle_api(method, url, body)
            entry["status"] = resp.status
            self.send(resp)
            return

        entry["fault"] = fault.describe()
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000.0)
        resp = self.handle_api(method, url, body) if fault.process else None
        if fault.drop:
            entry["status"] = 0
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault.status is not None:
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
        elif resp is None:
            resp = self.handle_api(method, url, body)
        entry["status"] = resp.status
        self.send(resp, partial=fault.reset_mid_response, close=fault.close)

    # --- the MLflow API -------------------------------------------------------------------

    def handle_api(self, method, url, body):
        path = url.path
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
        for prefix in API_PREFIXES:
            if path.startswith(prefix):
                routes = ROUTES.get(path[len(prefix):])
                break
        if routes is None:
            for prefix, table in PREFIX_ROUTES:
                if path.startswith(prefix):
                    routes, rest = table, path[len(prefix):]
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
        try:
            if rest is not None:
                status, data, ctype = handler(req, rest)
                return Response(status, data, ctype)
            return json_response(200, handler(req), indent=2)
        except MlflowError as e:
            return error_response(e)
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
        GET  /_test/dump          everything stored
        GET  /_test/requests      the API request log; POST /_test/requests/clear empties it
        POST /_test/reset         clear data (Default experiment stays), request log, faults
        POST /_test/config        {"truncate_long_values": bool|null, "close": bool,
                                   "require_auth": "<Authorization value>"|null}
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
                return json_response(200, STORE.dump(), indent=1)
            if path == "/_test/requests" and method == "GET":
                return json_response(200, REQUESTS.list())
            if path == "/_test/requests/clear" and method == "POST":
                REQUESTS.clear()
                return json_response(200, {"ok": True})
            if path == "/_test/reset" and method == "POST":
                STORE.reset()
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
                return json_response(200, {
                    "truncate_long_values": CONFIG.truncate_long_values(),
                    "close": CONFIG.close_all,
                    "require_auth": CONFIG.require_auth})
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
    ap.add_argument("--artifact-root", help="where proxied artifacts will be kept (later)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
