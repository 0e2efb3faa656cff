"""Client and Run: the explicit API over the generated ctypes layer.

Hot paths (Run.log_metric and the fluent mlo.log_metric) are kept thin: the C
function is pre-bound without ctypes argtypes (no per-argument Python-level
converter call), keys are encoded once and cached, and nothing is validated in
Python that the C side validates anyway.  Failures take the slow path, where the
status is turned into an exception carrying the library's own message.
"""

import collections
import ctypes
import json
import logging
import os
import posixpath
import sys
import tempfile
import threading
import warnings
import weakref

from . import _errors
from ._errors import (MloClosedError, MloError, MloInvalidArgumentError, MloInvalidKeyError,
                      MloInvalidStatusError, MloWarning)
from ._loader import load as _load

ffi, lib, LIBRARY = _load()
MISSING = ffi.bind(lib)

# the library loaded must be the header's major version, and not older
_libv = lib.mlo_version_number() if "mlo_version_number" not in MISSING else 0
if _libv >> 16 != ffi.HEADER_VERSION_NUMBER >> 16:
    raise ImportError("mlo: %s is version %d.%d, the bindings were generated for %d.%d"
                      % (LIBRARY, _libv >> 16, (_libv >> 8) & 255, *ffi.HEADER_VERSION[:2]))
if _libv < ffi.HEADER_VERSION_NUMBER & ~0xFF:
    import warnings as _w
    _w.warn("mlo: %s is older than the header the bindings were generated from; missing: %s"
            % (LIBRARY, ", ".join(MISSING) or "nothing"), stacklevel=2)

_log = logging.getLogger("mlo")
_tls = threading.local()  # per thread: what the library said about the call that failed
_C = ctypes
_cd = ctypes.c_double
_ci = ctypes.c_int64
_NO_FUNC = set(MISSING)


def _raw(name):
    """The function without argtypes (see ffi.raw); a stand-in answering
    MLO_ERR_NOT_SUPPORTED when the library loaded (or the header) lacks it."""
    def missing(*_a):
        msgs = getattr(_tls, "msgs", None)
        if msgs is None:
            msgs = _tls.msgs = []
        msgs.append("%s is not in the libmlo loaded (%s)" % (name, LIBRARY))
        return ffi.mlo_status.get("MLO_ERR_NOT_SUPPORTED", 19)
    if name in _NO_FUNC or name not in ffi.PROTOTYPES:
        return missing
    try:
        return ffi.raw(lib, name)
    except AttributeError:
        return missing


def _fn(name):
    """The function with its argtypes, or the stand-in of _raw when the library loaded
    (or the header) lacks it: functions newer than some libmlo are called through this."""
    if name in _NO_FUNC or name not in ffi.PROTOTYPES:
        return _raw(name)
    return getattr(lib, name)


# pre-bound hot functions (no argtypes: callers pass ctypes objects / bytes)
_f_log_metric = _raw("mlo_log_metric")
_f_log_metric_ts = _raw("mlo_log_metric_ts")
_f_histogram_new = _raw("mlo_histogram_new")
_f_histogram_record = _raw("mlo_histogram_record")
_f_histogram_free = _raw("mlo_histogram_free")
_cu = ctypes.c_uint

STATUS_NAMES = {v: k for k, v in ffi.mlo_status.items()}
_OK = ffi.mlo_status["MLO_OK"]
_EINVAL = ffi.mlo_status["MLO_ERR_INVALID_ARGUMENT"]
_ECLOSED = ffi.mlo_status["MLO_ERR_CLOSED"]
# warnings (not errors): numbered among the errors, so known by name
_WARNINGS = frozenset(v for k, v in ffi.mlo_status.items() if k.startswith("MLO_WARN_"))
_RUN_STATUS = {k[len("MLO_RUN_"):]: v for k, v in ffi.mlo_run_status.items()}
_RUN_STATUS_NAME = {v: k for k, v in _RUN_STATUS.items()}
_UINT_MAX = 0xFFFFFFFF

# fork(): a Client belongs to the process that opened it (its C client has threads
# there).  The child's copy is "inherited": the library answers MLO_ERR_CLOSED for it,
# and the binding drops it without closing (see _after_fork_child and _fluent).
_fork_gen = 0  # bumped in every child right after fork
_mp_exit_pid = None  # the process whose multiprocessing exit hook is registered


def _after_fork_child():
    global _fork_gen
    _fork_gen += 1
    for c in list(_clients):
        # the library does not refuse an inherited histogram (record, free); free
        # would even wait for a lock the parent's shipper may have held at fork: the
        # binding never hands them to C again
        for hist in list(c._hists):
            hist._h = None
    # the parent's clients are not this process's to close (or flush) at exit
    _clients.clear()


def _inherited_detail(client):
    return ("its client was opened in process %d and inherited across fork(): the library's "
            "threads are not in this process (%d).  Open a new mlo.Client here (resume_run("
            "run_id) joins the same run), or use the fluent API (mlo.log_metric, ...), which "
            "re-attaches to the active run by itself" % (client._pid, os.getpid()))


def _inherited_error(what, client):
    _take_details()
    return MloClosedError(_ECLOSED, strerror(_ECLOSED), "%s: %s" % (what, _inherited_detail(client)),
                          "MLO_ERR_CLOSED")


def _register_mp_exit():
    """In a multiprocessing child (fork, forkserver: it ends with os._exit, so atexit
    never runs), the exit handler of the fluent API (end our runs, close our clients:
    a bounded flush) runs as a multiprocessing finalizer instead, when the worker ends
    normally (Pool.close()+join(), a Process whose target returned)."""
    global _mp_exit_pid
    pid = os.getpid()
    if _mp_exit_pid == pid:
        return
    mp = sys.modules.get("multiprocessing")
    try:
        if mp is None or mp.parent_process() is None:
            return
        from multiprocessing import util as mp_util
        from . import _fluent
        mp_util.Finalize(None, _fluent._at_exit, exitpriority=0)
        _mp_exit_pid = pid
    except Exception as e:  # noqa: BLE001 - never let this break a client's open
        _log.debug("mlo: no multiprocessing exit hook: %s", e)


def version():
    """The version of the libmlo actually loaded ("0.1.0")."""
    return lib.mlo_version().decode()


def strerror(status):
    """The library's description of a status number."""
    return lib.mlo_strerror(int(status)).decode()


# ---- errors ------------------------------------------------------------------


def _take_details():
    msgs = getattr(_tls, "msgs", None)
    if not msgs:
        return None
    _tls.msgs = []
    return "; ".join(msgs[:5]) + ("; ... (%d more)" % (len(msgs) - 5) if len(msgs) > 5 else "")


def error_for(status, detail=None):
    """The exception for a status (MloError or a subclass), with the library's message."""
    name = STATUS_NAMES.get(status)
    cls = _errors.STATUS_CLASSES.get(name, MloError)
    return cls(status, strerror(status), detail, name)


def _raise(status, detail=None):
    d = _take_details()
    if detail and d:
        detail = detail + " (" + d + ")"
    raise error_for(status, detail or d)


def _check(rc):
    if rc:
        _raise(rc)


def _settle(client):
    """After a call that succeeded: what the library still reported about it (say, a
    store it could not use) is a warning, not the detail of some later error."""
    msgs = getattr(_tls, "msgs", None)
    if msgs:
        _tls.msgs = []
        if client is None or client._on_error is None:
            for m in msgs:
                warnings.warn(MloWarning(0, "", m, "MLO_REPORTED"), stacklevel=3)


def _default_on_error(w, sync):
    if sync:
        warnings.warn(w, stacklevel=4)
    elif w.name == "MLO_WARN_RETRY":
        _log.debug("%s", w)
    else:
        _log.warning("%s", w)


_handlers = {}  # client token -> weakref to Client
_next_token = [1]


@ffi.mlo_error_fn
def _on_error(user_data, status, message):
    # Called by the library: from the calling thread for failures of a call (the
    # exception raised for that call then carries the message), from the shipper
    # thread for failures found while sending.  Must never raise.
    try:
        msg = message.decode("utf-8", "replace") if message else ""
        sync = not isinstance(threading.current_thread(), threading._DummyThread)
        if sync and status not in _WARNINGS:
            msgs = getattr(_tls, "msgs", None)
            if msgs is None:
                msgs = _tls.msgs = []
            if len(msgs) < 64:
                msgs.append(msg)
        ref = _handlers.get(user_data)
        client = ref() if ref is not None else None
        handler = client._on_error if client is not None else None
        name = STATUS_NAMES.get(status, "MLO_STATUS_%d" % status)
        if handler is not None:
            handler(MloWarning(status, strerror(status), msg, name))
        elif not sync or status in _WARNINGS:
            _default_on_error(MloWarning(status, strerror(status), msg, name), sync)
    except BaseException:  # noqa: B902 - nothing may propagate into C
        pass


# ---- conversions (slow paths) ---------------------------------------------------

_keys = {}  # str -> UTF-8 bytes, the encoding cache of the hot path
_KEYS_MAX = 8192


def _key(key):
    """Encodes a key for C (and caches it); refuses what C would get wrong silently."""
    if isinstance(key, str):
        b = key.encode("utf-8", "surrogatepass")  # lone surrogates: C says INVALID_UTF8
    elif isinstance(key, bytes):
        b = key
    elif key is None:
        raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL), "key is None",
                                      "MLO_ERR_INVALID_ARGUMENT")
    else:
        raise MloInvalidKeyError(ffi.MLO_ERR_INVALID_KEY, strerror(ffi.MLO_ERR_INVALID_KEY),
                                 "key must be a str, not %s" % type(key).__name__,
                                 "MLO_ERR_INVALID_KEY")
    if b"\0" in b:
        raise MloInvalidKeyError(ffi.MLO_ERR_INVALID_KEY, strerror(ffi.MLO_ERR_INVALID_KEY),
                                 "key %r contains a NUL character" % (key,), "MLO_ERR_INVALID_KEY")
    if isinstance(key, str):
        if len(_keys) >= _KEYS_MAX:
            _keys.clear()
        _keys[key] = b
    return b


def _str(value, what):
    """A value for C: str() of it (as mlflow does), UTF-8, no NUL."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    b = value.encode("utf-8", "surrogatepass")
    if b"\0" in b:
        raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                      "%s contains a NUL character" % what,
                                      "MLO_ERR_INVALID_ARGUMENT")
    return b


def _val(value, what):
    """A param or tag value: str(value) as mlflow does, None included ("None")."""
    return _str("None" if value is None else value, what)


def _opt_str(value, what):
    return None if value is None else _str(os.fspath(value) if hasattr(value, "__fspath__")
                                           else value, what)


def _path(value, what):
    """A local path for C: str, bytes or os.PathLike; no NUL."""
    if value is None:
        return None
    value = os.fspath(value) if hasattr(value, "__fspath__") else value
    if isinstance(value, bytes):
        if b"\0" in value:
            raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                          "%s contains a NUL character" % what,
                                          "MLO_ERR_INVALID_ARGUMENT")
        return value
    if not isinstance(value, str):
        raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                      "%s must be a path (str, bytes or os.PathLike), not %s"
                                      % (what, type(value).__name__), "MLO_ERR_INVALID_ARGUMENT")
    return _str(value, what)


def _buffer(data):
    """(argument for a const void *, length) of a bytes-like object.

    bytes are passed as they are (ctypes points C at the object's own buffer); a
    writable contiguous buffer (bytearray, array.array, a numpy array, a writable
    memoryview) through ctypes' from_buffer, also without a copy; anything else that
    exports a buffer (a read-only memoryview, a non-contiguous array) is copied once;
    str is encoded as UTF-8."""
    if isinstance(data, bytes):
        return (data if data else None), len(data)
    if isinstance(data, str):
        b = data.encode("utf-8", "surrogatepass")
        return (b if b else None), len(b)
    try:
        mv = memoryview(data)
    except TypeError:
        raise MloInvalidArgumentError(
            _EINVAL, strerror(_EINVAL), "data must be bytes-like (bytes, bytearray, memoryview, "
            "array, numpy array) or str, not %s" % type(data).__name__,
            "MLO_ERR_INVALID_ARGUMENT") from None
    n = mv.nbytes
    if n == 0:
        return None, 0
    if not mv.readonly and mv.c_contiguous:
        try:
            return (_C.c_char * n).from_buffer(mv.cast("B") if mv.format != "B" or mv.ndim != 1
                                               else mv), n
        except (TypeError, ValueError):
            pass
    return mv.tobytes(), n


def _status_error(name, detail):
    """The exception of a status by name (MLO_ERR_...), with a detail of our own."""
    return error_for(ffi.mlo_status.get(name, _EINVAL), detail)


def _artifact_rel(path, what="path"):
    """An artifact path as the library would take it ("a/b"; None or "" for the root);
    refuses what could escape the root before it is ever joined to a local path."""
    if path is None:
        return ""
    p = os.fspath(path) if hasattr(path, "__fspath__") else path
    if isinstance(p, bytes):
        p = p.decode("utf-8", "surrogateescape")
    p = str(p)
    if "\0" in p or "\\" in p or p.startswith("/") or ".." in p.split("/"):
        raise _status_error("MLO_ERR_INVALID_PATH", "%s %r could escape the artifact root"
                            % (what, p))
    p = posixpath.normpath(p) if p else ""
    return "" if p == "." else p


def _bad_number(what, value):
    return MloInvalidArgumentError(_EINVAL, strerror(_EINVAL), "%s must be a number, not %r"
                                   % (what, type(value).__name__), "MLO_ERR_INVALID_ARGUMENT")


def _double(value, what="metric value"):
    try:
        return _cd(value)
    except (TypeError, OverflowError):
        try:
            return _cd(float(value))
        except (TypeError, ValueError, OverflowError):
            raise _bad_number(what, value) from None


def _int64(value, what="step"):
    if value is None:
        return _ci(0)
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad_number(what + " (a whole number)", value)
        value = int(value)
    try:
        v = value.__index__()
    except (AttributeError, TypeError):
        raise _bad_number(what, value) from None
    if not -(1 << 63) <= v < (1 << 63):
        raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL), "%s out of int64 range" % what,
                                      "MLO_ERR_INVALID_ARGUMENT")
    return _ci(v)


def _status_code(status):
    if isinstance(status, int):
        return status
    code = _RUN_STATUS.get(str(status).upper())
    if code is None:
        st = ffi.mlo_status["MLO_ERR_INVALID_STATUS"]
        raise MloInvalidStatusError(st, strerror(st), "unknown run status %r" % (status,),
                                    "MLO_ERR_INVALID_STATUS")
    return code


def _ms(timeout_s):
    if timeout_s is None:
        return None
    ms = int(float(timeout_s) * 1000)
    return max(0, min(ms, _UINT_MAX))


# ---- runs -------------------------------------------------------------------------


class FileInfo(collections.namedtuple("FileInfo", "path is_dir file_size")):
    """An artifact of a run, as mlflow's FileInfo: path relative to the run's artifact
    root ("model/weights.bin"), is_dir, and file_size in bytes (None for a directory);
    .size is file_size."""

    __slots__ = ()

    @property
    def size(self):
        return self.file_size


class ModelVersion(collections.namedtuple("ModelVersion", "name version run_id")):
    """A registered model version (the fields of mlflow's ModelVersion mlo knows):
    name, version (an int) and the run it came from."""

    __slots__ = ()


class RunInfo:
    """What the client knows about a run (mlflow's RunInfo, in part).

    run_id and experiment_id are read from the library each time: a run started while
    the server was unreachable has a local id until the library creates it on the
    server, then the server's id."""

    __slots__ = ("_run", "_run_id", "_experiment_id", "run_name", "status")

    def __init__(self, run, run_name, status="RUNNING"):
        self._run = run
        self._run_id = None
        self._experiment_id = None
        self.run_name = run_name
        self.status = status

    @property
    def run_id(self):
        h = self._run._h
        if h is not None:
            rid = lib.mlo_run_id(h)
            if rid:
                self._run_id = rid.decode()
        return self._run_id

    @property
    def experiment_id(self):
        h = self._run._h
        if h is not None:
            eid = lib.mlo_run_experiment_id(h)
            if eid:
                self._experiment_id = eid.decode()
        return self._experiment_id

    @property
    def run_uuid(self):
        return self.run_id

    def __repr__(self):
        return "<RunInfo: run_id=%r, experiment_id=%r, run_name=%r, status=%r>" % (
            self.run_id, self.experiment_id, self.run_name, self.status)


class Run:
    """A run of a Client.  Log to it directly, or use it as a context manager:
    leaving the block ends it FINISHED, or FAILED when an exception escapes."""

    __slots__ = ("_h", "_client", "info", "_fluent", "__weakref__")

    def __init__(self, client, handle, run_name=None):
        self._h = handle
        self._client = client
        self._fluent = False
        self.info = RunInfo(self, run_name)
        self.info.run_id, self.info.experiment_id  # noqa: B018 - remembered past close

    @property
    def run_id(self):
        return self.info.run_id

    @property
    def client(self):
        return self._client

    def __repr__(self):
        return "<mlo.Run %s (%s)>" % (self.info.run_id, self.info.status)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        status = "FINISHED" if exc_type is None else "FAILED"
        if self._fluent:
            from . import _fluent
            _fluent._end_run_object(self, status)
        elif self.info.status == "RUNNING":
            self.end(status)
        return False

    # -- failure path: an exception with the library's message
    def _fail(self, rc, hint=None):
        c = self._client
        if c is not None and c._gen != _fork_gen and rc in (_ECLOSED, _EINVAL):
            raise _inherited_error("run %s" % self.info._run_id, c)
        if self._h is None and rc == _EINVAL:
            _take_details()
            raise MloClosedError(_ECLOSED, strerror(_ECLOSED),
                                 "run %s: its client is closed" % self.info.run_id, "MLO_ERR_CLOSED")
        _raise(rc, hint if rc == _EINVAL else None)

    def log_metric(self, key, value, step=0, timestamp=None):
        """Logs one metric point.  value: anything float() accepts (numpy scalars
        included); step: an int (default 0); timestamp: ms since the epoch (default now)."""
        try:
            k = _keys[key]
        except (KeyError, TypeError):
            k = _key(key)
        try:
            if timestamp is None:
                rc = _f_log_metric(self._h, k, _cd(value), _ci(step))
            else:
                rc = _f_log_metric_ts(self._h, k, _cd(value), _ci(step), _ci(timestamp))
        except (TypeError, OverflowError):
            ts = None if timestamp is None else _int64(timestamp, "timestamp")
            if ts is None:
                rc = _f_log_metric(self._h, k, _double(value), _int64(step))
            else:
                rc = _f_log_metric_ts(self._h, k, _double(value), _int64(step), ts)
        if rc:
            self._fail(rc, None if timestamp is None else "timestamp must be >= 0")

    def log_metrics(self, metrics, step=0, timestamp=None):
        """Logs a dict of metrics at one step, in one call (mlo_log_metrics).  Each entry
        is validated on its own: the valid ones are logged; if any was refused, raises
        the error of the first, with the details of all."""
        items = list(metrics.items())
        n = len(items)
        if not n:
            return
        keys = (_C.c_char_p * n)(*[_key(k) for k, _ in items])
        try:
            vals = (_C.c_double * n)(*[v for _, v in items])
        except (TypeError, OverflowError):
            vals = (_C.c_double * n)(*[_double(v).value for _, v in items])
        steps = None
        if step:
            s = _int64(step).value
            steps = (_C.c_int64 * n)(*([s] * n))
        tss = None
        if timestamp is not None:
            t = _int64(timestamp, "timestamp").value
            tss = (_C.c_int64 * n)(*([t] * n))
        rc = lib.mlo_log_metrics(self._h, n, keys, vals, steps, tss)
        if rc:
            self._fail(rc)

    def log_param(self, key, value):
        """Logs a param (str(value), as mlflow).  Params are immutable on the server."""
        try:
            k = _keys[key]
        except (KeyError, TypeError):
            k = _key(key)
        rc = lib.mlo_log_param(self._h, k, _val(value, "param value"))
        if rc:
            self._fail(rc)
        return value

    def log_params(self, params):
        """Logs a dict of params in one call (mlo_log_params)."""
        self._kvs(lib.mlo_log_params, params, "param value")

    def set_tag(self, key, value):
        """Sets a tag (str(value)); last write wins."""
        try:
            k = _keys[key]
        except (KeyError, TypeError):
            k = _key(key)
        rc = lib.mlo_set_tag(self._h, k, _val(value, "tag value"))
        if rc:
            self._fail(rc)

    def set_tags(self, tags):
        """Sets a dict of tags in one call (mlo_set_tags)."""
        self._kvs(lib.mlo_set_tags, tags, "tag value")

    def _kvs(self, fn, d, what):
        items = list(d.items())
        n = len(items)
        if not n:
            return
        keys = (_C.c_char_p * n)(*[_key(k) for k, _ in items])
        vals = (_C.c_char_p * n)(*[_val(v, what) for _, v in items])
        rc = fn(self._h, n, keys, vals)
        if rc:
            self._fail(rc)

    # -- artifacts, models, datasets
    def log_artifact(self, local_path, artifact_path=None):
        """Logs a local file, or a directory with everything under it, as artifacts of
        the run under artifact_path (None: the artifact root).  A file keeps its name
        ("out/model.pkl", "model" -> "model/model.pkl"); a directory's content goes
        under artifact_path (as mlflow's log_artifacts).  Returns once the content is
        copied into the library's store: the file may be deleted or overwritten at
        once; the upload happens in the background (flush() waits for it)."""
        rc = _fn("mlo_log_artifact")(self._h, _path(local_path, "local_path"),
                                     _opt_str(artifact_path, "artifact_path"))
        if rc:
            self._fail(rc)
        _settle(self._client)

    def log_artifacts(self, local_dir, artifact_path=None):
        """Logs the content of a local directory under artifact_path (mlflow's
        log_artifacts)."""
        if not os.path.isdir(local_dir):
            raise _status_error("MLO_ERR_IO", "%s is not a directory" % (os.fspath(local_dir),))
        self.log_artifact(local_dir, artifact_path)

    def log_bytes(self, data, artifact_file):
        """Logs a buffer from memory as the artifact file artifact_file
        ("model/weights.bin"): bytes, bytearray, memoryview, array.array, a numpy array
        (its raw bytes), ...; bytes and writable contiguous buffers are not copied on
        the way to the library, which copies them into its store before returning."""
        buf, n = _buffer(data)
        rc = _fn("mlo_log_artifact_bytes")(self._h, buf, n, _opt_str(artifact_file, "artifact_file"))
        if rc:
            self._fail(rc, "artifact_file is required" if artifact_file is None else None)
        _settle(self._client)

    def log_text(self, text, artifact_file):
        """Logs a string as a UTF-8 text artifact (mlflow's log_text)."""
        if not isinstance(text, str):
            raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                          "text must be a str, not %s" % type(text).__name__,
                                          "MLO_ERR_INVALID_ARGUMENT")
        self.log_bytes(text.encode("utf-8", "surrogatepass"), artifact_file)

    def log_dict(self, dictionary, artifact_file):
        """Logs a JSON-serialisable object as a JSON artifact, or as YAML when
        artifact_file ends in .yaml or .yml (needs PyYAML) (mlflow's log_dict)."""
        ext = os.path.splitext(str(artifact_file))[1].lower()
        if ext in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise _status_error("MLO_ERR_NOT_SUPPORTED",
                                    "YAML needs PyYAML (apt-get install python3-yaml); "
                                    "or log to a .json file") from None
            text = yaml.safe_dump(dictionary, default_flow_style=False)
        else:
            text = json.dumps(dictionary, indent=2)
        self.log_text(text, artifact_file)

    def register_model(self, artifact_path, name):
        """Registers the run's artifact directory artifact_path ("model") as a new
        version of the registered model `name` (created if missing); returns the
        version number (an int).  Waits for the run's pending uploads first."""
        v = _C.c_int64(0)
        rc = _fn("mlo_register_model")(self._h, _opt_str(artifact_path, "artifact_path"),
                                       _opt_str(name, "name"), _C.byref(v))
        if rc:
            self._fail(rc)
        _settle(self._client)
        return v.value

    def log_dataset(self, name, source, digest=None):
        """Records that the run used a dataset (MLflow's "Datasets used"): name, source
        (a local path, a URL, "dvc://...", "lakefs://...") and digest (None: computed
        from a local file or directory source)."""
        rc = _fn("mlo_log_dataset")(self._h, _opt_str(name, "name"), _path(source, "source"),
                                    _opt_str(digest, "digest"))
        if rc:
            self._fail(rc)
        _settle(self._client)

    def histogram(self, key, interval_ms=1000):
        """A Histogram of this run: record() values (latencies, sizes, ...) from any
        number of threads; every interval the library logs key.p50, .p95, .p99, .max,
        .count and .rate as metrics of the run (step = the interval's number)."""
        c = self._client
        if c is not None and c._gen != _fork_gen:  # the library would take it (see above)
            raise _inherited_error("run %s" % self.info._run_id, c)
        h = _C.POINTER(ffi.mlo_histogram_t)()
        try:
            ms = _cu(interval_ms)
        except TypeError:
            raise _bad_number("interval_ms", interval_ms) from None
        rc = _f_histogram_new(self._h, _key(key), ms, _C.byref(h))
        if rc:
            self._fail(rc)
        hist = Histogram(self, h, key)
        if self._client is not None:
            self._client._hists.add(hist)
        return hist

    def end(self, status="FINISHED"):
        """Ends the run (FINISHED, FAILED or KILLED).  Does not wait: flush() to wait."""
        rc = lib.mlo_end_run(self._h, _status_code(status))
        if rc:
            self._fail(rc)
        self.info.status = _RUN_STATUS_NAME.get(_status_code(status), str(status))


ActiveRun = Run


class Histogram:
    """A stream of non-negative values aggregated by the library (mlo_histogram_*).
    record() is as thin as log_metric; close() (or leaving a ``with`` block) emits
    what is left and frees it.  Closing the client closes its histograms first."""

    __slots__ = ("_h", "_run", "key", "__weakref__")

    def __init__(self, run, handle, key):
        self._h = handle
        self._run = run
        self.key = key

    def __repr__(self):
        return "<mlo.Histogram %r of run %s%s>" % (self.key, self._run.info.run_id,
                                                   " (closed)" if self._h is None else "")

    def record(self, value):
        """Records one value (>= 0; NaN and negatives raise MloInvalidArgumentError)."""
        try:
            rc = _f_histogram_record(self._h, _cd(value))
        except (TypeError, OverflowError):
            rc = _f_histogram_record(self._h, _double(value, "value"))
        if rc:
            if self._h is None:
                c = self._run._client
                if c is not None and c._gen != _fork_gen:
                    raise _inherited_error("histogram %r" % (self.key,), c)
                raise MloClosedError(_ECLOSED, strerror(_ECLOSED), "the histogram is closed",
                                     "MLO_ERR_CLOSED")
            _raise(rc, "histogram values must be >= 0 and not NaN" if rc == _EINVAL else None)

    def close(self):
        h, self._h = self._h, None
        if h is None:
            return
        c = self._run._client
        if c is not None:
            c._hists.discard(self)
        _check(_f_histogram_free(h))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---- client --------------------------------------------------------------------------

_clients = weakref.WeakSet()


class Client:
    """A connection to one tracking server: its own queue, shipper thread and runs.

    Every argument left None falls back to MLflow's environment variable (as the C
    library does), then to the default.  Several clients may be open at once, to
    different servers.  Close it (or use it as a context manager) to flush and stop
    its thread; clients still open at exit are closed then.

    close_timeout: seconds mlo_client_close waits for unsent events; flush_interval_ms: how
    often the library's thread collects events that trickle in (default 100).
    store_dir / durable / fsync ("none", "interval", "always") / fsync_interval_ms: the
    library's durable store (default $MLO_STORE_DIR, else ./mlo-store).
    max_inflight: log-batch requests in flight at once, 1 to 16 (default $MLO_MAX_INFLIGHT,
    else 4); one run's requests are always sent one after the other.
    on_error: None (default: failures found later, on the shipper thread, are logged
    through the "mlo" logger, warnings of a call become Python warnings), or a callable
    taking an MloWarning (.status, .name, .detail), called from any thread.
    """

    def __init__(self, tracking_uri=None, *, experiment_name=None, experiment_id=None,
                 token=None, username=None, password=None, insecure_tls=None,
                 ca_cert_path=None, client_cert_path=None, max_retries=None,
                 backoff_factor=None, backoff_jitter=None, request_timeout=None,
                 queue_bytes=None, full_policy=None, full_wait_ms=None, close_timeout=None,
                 flush_interval_ms=None, store_dir=None, durable=None, fsync=None,
                 fsync_interval_ms=None, max_inflight=None, on_error=None):
        self._h = None
        self._pid = os.getpid()
        self._gen = _fork_gen
        self._runs = {}
        self._hists = weakref.WeakSet()
        self._on_error = on_error
        self._token = _next_token[0]
        _next_token[0] += 1
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        opts = lib.mlo_options_new()
        if not opts:
            raise MemoryError("mlo_options_new")
        try:
            def set_(fn, *a):
                _check(fn(opts, *a))

            def set_opt(name, *a):  # an option the loaded library may not have yet
                fn = getattr(lib, name, None) if name in ffi.PROTOTYPES else None
                if fn is None:
                    st = ffi.mlo_status["MLO_ERR_NOT_SUPPORTED"]
                    raise _errors.MloNotSupportedError(
                        st, strerror(st), "%s is not in this libmlo" % name,
                        "MLO_ERR_NOT_SUPPORTED")
                _check(fn(opts, *a))

            if tracking_uri is not None:
                set_(lib.mlo_options_set_tracking_uri, _str(tracking_uri, "tracking_uri"))
            if experiment_name is not None:
                set_(lib.mlo_options_set_experiment_name, _str(experiment_name, "experiment_name"))
            if experiment_id is not None:
                set_(lib.mlo_options_set_experiment_id, _str(experiment_id, "experiment_id"))
            if token is not None:
                set_(lib.mlo_options_set_token, _str(token, "token"))
            if username is not None or password is not None:
                set_(lib.mlo_options_set_basic_auth, _opt_str(username, "username"),
                     _opt_str(password, "password"))
            if insecure_tls is not None:
                set_(lib.mlo_options_set_insecure_tls, 1 if insecure_tls else 0)
            if ca_cert_path is not None:
                set_(lib.mlo_options_set_ca_cert_path, _opt_str(ca_cert_path, "ca_cert_path"))
            if client_cert_path is not None:
                set_(lib.mlo_options_set_client_cert_path,
                     _opt_str(client_cert_path, "client_cert_path"))
            if any(v is not None for v in (max_retries, backoff_factor, backoff_jitter,
                                           request_timeout)):
                neg = lambda v: -1 if v is None else v  # noqa: E731
                set_(lib.mlo_options_set_retries, int(neg(max_retries)),
                     float(neg(backoff_factor)), float(neg(backoff_jitter)),
                     float(neg(request_timeout)))
            if queue_bytes is not None:
                set_(lib.mlo_options_set_queue_bytes, int(queue_bytes))
            if full_policy is not None or full_wait_ms is not None:
                pol = full_policy if full_policy is not None else "wait"
                code = ffi.mlo_full_policy.get("MLO_FULL_" + str(pol).upper()) \
                    if not isinstance(pol, int) else pol
                if code is None:
                    raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                                  "full_policy must be 'wait' or 'drop'",
                                                  "MLO_ERR_INVALID_ARGUMENT")
                set_(lib.mlo_options_set_full_policy, code,
                     100 if full_wait_ms is None else int(full_wait_ms))
            if close_timeout is not None:
                set_(lib.mlo_options_set_close_timeout_ms, _ms(close_timeout))
            if flush_interval_ms is not None:
                set_opt("mlo_options_set_flush_interval_ms", int(flush_interval_ms))
            if store_dir is not None:
                set_opt("mlo_options_set_store_dir", _opt_str(store_dir, "store_dir"))
            if durable is not None:
                set_opt("mlo_options_set_durable", 1 if durable else 0)
            if fsync is not None or fsync_interval_ms is not None:
                pols = getattr(ffi, "mlo_fsync_policy", {})
                pol = fsync if fsync is not None else "interval"
                code = pol if isinstance(pol, int) else pols.get("MLO_FSYNC_" + str(pol).upper())
                if code is None:
                    raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                                  "fsync must be 'none', 'interval' or 'always'",
                                                  "MLO_ERR_INVALID_ARGUMENT")
                set_opt("mlo_options_set_fsync", code,
                        1000 if fsync_interval_ms is None else int(fsync_interval_ms))
            if max_inflight is not None:
                set_opt("mlo_options_set_max_inflight", int(max_inflight))
            set_(lib.mlo_options_set_error_callback, _on_error, self._token)
            _handlers[self._token] = weakref.ref(self)
            h = _C.POINTER(ffi.mlo_client_t)()
            rc = lib.mlo_client_open(opts, _C.byref(h))
            if rc:
                _handlers.pop(self._token, None)
                _raise(rc)
        finally:
            lib.mlo_options_free(opts)
        self._h = h
        _clients.add(self)
        _register_mp_exit()
        _settle(self)

    def __repr__(self):
        return "<mlo.Client %s%s>" % (self.tracking_uri, " (closed)" if self._h is None else
                                      " (inherited across fork)" if self._gen != _fork_gen else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if self._h is not None:
                self.close()
        except Exception:
            pass

    @property
    def closed(self):
        """True once closed, and in a child process for a client inherited across fork()."""
        return self._h is None or self._gen != _fork_gen

    def _handle(self):
        if self._gen != _fork_gen:
            raise _inherited_error("client %s" % (self.tracking_uri,), self)
        if self._h is None:
            raise MloClosedError(_ECLOSED, strerror(_ECLOSED), "the client is closed",
                                 "MLO_ERR_CLOSED")
        return self._h

    def _adopt(self, h, run_name=None):
        run = Run(self, h, run_name)
        known = self._runs.get(run.info.run_id)
        if known is not None and known._h is not None:
            known.info.status = "RUNNING"
            if run_name:
                known.info.run_name = run_name
            return known
        self._runs[run.info.run_id] = run
        return run

    def start_run(self, experiment_name=None, run_name=None, parent=None, tags=None,
                  description=None):
        """Creates a run (synchronously) and returns it.  experiment_name: created when
        missing (default: the client's, else $MLFLOW_EXPERIMENT_NAME/_ID, else
        "Default"); parent: a Run of this client to nest under; tags: a dict set at once;
        description: the mlflow.note.content tag.  With $MLFLOW_RUN_ID set (and no
        parent), that run is resumed instead."""
        h = _C.POINTER(ffi.mlo_run_t)()
        ph = None
        if parent is not None:
            if not isinstance(parent, Run) or parent._client is not self:
                raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                              "parent must be a Run of this client",
                                              "MLO_ERR_INVALID_ARGUMENT")
            ph = parent._h
        rc = lib.mlo_start_run(self._handle(), _opt_str(experiment_name, "experiment_name"),
                               _opt_str(run_name, "run_name"), ph, _C.byref(h))
        if rc:
            _raise(rc)
        _settle(self)
        run = self._adopt(h, run_name)
        if not (parent is None and os.environ.get("MLFLOW_RUN_ID")):
            # as mlflow's Python client: the source is the script, not the interpreter
            src = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
            if src:
                run.set_tag("mlflow.source.name", os.path.abspath(src)
                            if os.path.exists(src) else src)
        if tags:
            run.set_tags(tags)
        if description is not None:
            run.set_tag("mlflow.note.content", description)
        return run

    def resume_run(self, run_id):
        """Attaches to an existing run by id and sets it RUNNING (mlflow's
        start_run(run_id=...))."""
        h = _C.POINTER(ffi.mlo_run_t)()
        rc = lib.mlo_resume_run(self._handle(), _str(run_id, "run_id"), _C.byref(h))
        if rc:
            _raise(rc)
        return self._adopt(h)

    def get_run(self, run_id):
        """The Run of this client with that id, attaching to it (resume_run) if the
        client does not hold it yet."""
        run = self._runs.get(run_id)
        if run is not None and run._h is not None:
            return run
        return self.resume_run(run_id)

    # mlflow.MlflowClient-style calls taking a run id
    def log_metric(self, run_id, key, value, timestamp=None, step=None):
        self.get_run(run_id).log_metric(key, value, step or 0, timestamp)

    def log_param(self, run_id, key, value):
        return self.get_run(run_id).log_param(key, value)

    def set_tag(self, run_id, key, value):
        self.get_run(run_id).set_tag(key, value)

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        """metrics: (key, value[, timestamp[, step]]) tuples; params/tags: dicts or
        (key, value) pairs."""
        run = self.get_run(run_id)
        if params:
            run.log_params(dict(params))
        if tags:
            run.set_tags(dict(tags))
        for m in metrics:
            m = tuple(m)
            run.log_metric(m[0], m[1], m[3] if len(m) > 3 else 0, m[2] if len(m) > 2 else None)

    def set_terminated(self, run_id, status="FINISHED"):
        self.get_run(run_id).end(status or "FINISHED")

    def log_artifact(self, run_id, local_path, artifact_path=None):
        self.get_run(run_id).log_artifact(local_path, artifact_path)

    def log_artifacts(self, run_id, local_dir, artifact_path=None):
        self.get_run(run_id).log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id, text, artifact_file):
        self.get_run(run_id).log_text(text, artifact_file)

    def log_dict(self, run_id, dictionary, artifact_file):
        self.get_run(run_id).log_dict(dictionary, artifact_file)

    def log_bytes(self, run_id, data, artifact_file):
        self.get_run(run_id).log_bytes(data, artifact_file)

    # -- artifacts on the server, the model registry
    def _ref(self, run_id):
        if isinstance(run_id, Run):
            return _str(run_id.info.run_id, "run_id")
        return _str(run_id, "run_id") if run_id is not None else None

    def list_artifacts(self, run_id, path=None):
        """The artifacts directly under path (None: the root) of a run as the server has
        them (uploads still pending are not listed), as FileInfo(path, is_dir,
        file_size) sorted by path (mlflow's MlflowClient.list_artifacts).  run_id: a run
        id, a Run, or a URI ("runs:/<id>/<path>", "models:/<name>/<version>",
        "models:/<name>@<alias>"; paths are then relative to the URI's, as
        mlflow.artifacts.list_artifacts gives them).  An unknown path gives []."""
        entries = []
        failed = []

        def on_entry(_user_data, p, is_dir, size):
            try:
                entries.append(FileInfo(p.decode("utf-8", "surrogateescape") if p else "",
                                        bool(is_dir), None if is_dir or size < 0 else size))
                return 0
            except BaseException as e:  # noqa: B902 - nothing may propagate into C
                failed.append(e)
                return 1

        cb = ffi.mlo_artifact_fn(on_entry) if hasattr(ffi, "mlo_artifact_fn") else None
        rc = _fn("mlo_list_artifacts")(self._handle(), self._ref(run_id),
                                       _opt_str(path, "path") if path else None, cb, None)
        if failed:
            raise failed[0]
        if rc:
            _raise(rc)
        _settle(self)
        return sorted(entries, key=lambda e: e.path)

    def download_artifacts(self, run_id, path=None, dst_path=None):
        """Downloads an artifact file or directory of a run into dst_path (created if
        missing; None: a new temporary directory) and returns its local path, as
        mlflow's MlflowClient.download_artifacts: path "model" arrives as
        <dst_path>/model, the whole run (path None) as <dst_path>.  run_id may also be
        a URI: "runs:/<id>/<path>" (path then is below it), "models:/<name>/<version>"
        or "models:/<name>@<alias>" (the model version's files).  Nothing is written
        outside dst_path, whatever names the server gives (MloInvalidPathError)."""
        ref = run_id.info.run_id if isinstance(run_id, Run) else run_id
        ref = os.fspath(ref) if hasattr(ref, "__fspath__") else ref
        if not isinstance(ref, str) or not ref:
            raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                          "run_id must be a run id, a Run or a URI",
                                          "MLO_ERR_INVALID_ARGUMENT")
        rel = _artifact_rel(path)
        if ref.startswith("runs:/"):  # runs:/<id>/<path>: the path joins ours
            rid, _, inner = ref[len("runs:/"):].lstrip("/").partition("/")
            ref = rid
            rel = posixpath.join(_artifact_rel(inner, "the URI's path"), rel).strip("/")
        dst = os.path.abspath(os.fspath(dst_path) if dst_path is not None
                              else tempfile.mkdtemp(prefix="mlo-artifacts-"))
        if not rel:
            dest = local = dst
        else:
            # the library puts what is at rel *into* dest_dir: find whether rel is a
            # directory (its content goes to dst/rel) or a file (goes to dst/dirname)
            parent = posixpath.dirname(rel)
            base = posixpath.basename(rel)
            hit = [e for e in self.list_artifacts(ref, parent or None)
                   if posixpath.basename(e.path.rstrip("/")) == base]
            if not hit:
                raise _status_error("MLO_ERR_NOT_FOUND", "no artifact %r in %s" % (rel, ref))
            local = os.path.join(dst, *rel.split("/"))
            dest = local if hit[0].is_dir else os.path.dirname(local)
        rc = _fn("mlo_download_artifacts")(self._handle(), _str(ref, "run_id"),
                                           _str(rel, "path") if rel else None,
                                           _path(dest, "dst_path"))
        if rc:
            _raise(rc)
        _settle(self)
        return local

    def register_model(self, model_uri, name):
        """mlflow's register_model: model_uri "runs:/<run_id>/<artifact_path>" of a run
        this client holds (started, resumed or ended through it); returns a
        ModelVersion(name, version, run_id)."""
        uri = str(os.fspath(model_uri) if hasattr(model_uri, "__fspath__") else model_uri)
        if not uri.startswith("runs:/"):
            raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                          "model_uri must be runs:/<run_id>/<artifact_path>, "
                                          "not %r" % uri, "MLO_ERR_INVALID_ARGUMENT")
        rid, _, apath = uri[len("runs:/"):].lstrip("/").partition("/")
        run = self._runs.get(rid)
        if run is None or run._h is None:
            raise MloInvalidArgumentError(
                _EINVAL, strerror(_EINVAL), "run %s is not a run of this client: register "
                "through the client that logged it (Run.register_model)" % rid,
                "MLO_ERR_INVALID_ARGUMENT")
        return ModelVersion(name, run.register_model(apath or None, name), run.info.run_id)

    def set_model_alias(self, name, alias, version):
        """Points alias ("champion") of registered model `name` at version, so
        "models:/<name>@<alias>" resolves to it (moved if it pointed elsewhere)."""
        if isinstance(version, str) and version.strip().isdigit():
            version = int(version)  # mlflow's ModelVersion.version may be a string
        rc = _fn("mlo_set_model_alias")(self._handle(), _opt_str(name, "name"),
                                        _opt_str(alias, "alias"),
                                        _int64(version, "version").value)
        if rc:
            _raise(rc)
        _settle(self)

    set_registered_model_alias = set_model_alias  # mlflow.MlflowClient's name

    def flush(self, timeout_s=None):
        """Waits until everything logged so far is acknowledged by the server (or has
        failed for good).  timeout_s: None waits as long as it takes (interruptible);
        raises MloTimeoutError when the time runs out."""
        h = self._handle()
        if timeout_s is not None:
            _check(lib.mlo_client_flush(h, _ms(timeout_s)))
            return
        while True:  # in slices, so that Ctrl-C is seen
            rc = lib.mlo_client_flush(h, 1000)
            if rc != ffi.mlo_status["MLO_ERR_TIMEOUT"]:
                _check(rc)
                return

    def stats(self):
        """The client's counters: {"accepted": n, "sent": n, "dropped": n, ...}."""
        h = self._handle()
        out = {}
        v = _C.c_uint64()
        for name, code in ffi.mlo_stat.items():
            _check(lib.mlo_client_stat(h, code, _C.byref(v)))
            out[name[len("MLO_STAT_"):].lower()] = v.value
        return out

    def close(self):
        """Flushes (bounded by the close timeout), stops the shipper and frees the
        client.  Its runs cannot be used afterwards.  Runs still RUNNING stay RUNNING on
        the server: end them first.  Raises MloTimeoutError when some events could not
        be delivered in time (they are counted as failed)."""
        if self._h is None:
            return
        if self._gen != _fork_gen:
            # inherited across fork(): the C client is the parent's (the library answers
            # MLO_ERR_CLOSED here); forget the handles, close nothing
            self._h = None
            for run in self._runs.values():
                run._h = None
            for hist in list(self._hists):
                hist._h = None
            _clients.discard(self)
            from . import _fluent
            _fluent._forget_client(self)
            _handlers.pop(self._token, None)
            return
        for hist in list(self._hists):  # free them first: that emits their last interval
            try:
                hist.close()
            except MloError as e:
                _log.warning("mlo: closing %r: %s", hist, e)
        h, self._h = self._h, None
        for run in self._runs.values():
            run._h = None
        _clients.discard(self)
        from . import _fluent
        _fluent._forget_client(self)
        rc = lib.mlo_client_close(h)
        _handlers.pop(self._token, None)
        if rc:
            _raise(rc)


def _close_all():
    for c in list(_clients):
        try:
            c.close()
        except MloError as e:
            _log.warning("mlo: closing %r: %s", c, e)


os.register_at_fork(after_in_child=_after_fork_child)
