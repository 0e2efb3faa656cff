"""The fluent API, as mlflow's: a default client and a stack of active runs.

The active-run stack is process-wide (not per thread): a run started in the main
thread is the active run of worker threads too.  Threads that need runs of their
own use a Client and its Run objects.

fork(): the child inherits the active runs, not the client (its threads stay in the
parent).  The first fluent call of the child that needs the run opens the child's own
client and re-attaches to the parent's active runs (resume_run), so mlo.log_metric in a
multiprocessing worker (fork, as a DataLoader's) logs to the parent's run as mlflow
would.  Those runs stay the parent's: the child never ends them (end_run only detaches
them there).  A multiprocessing child flushes at its normal end (a finalizer; atexit
does not run there); a worker killed (Pool.terminate) leaves what it logged in the
store's crash journal, sent by the next process that opens the store or `mlo sync`.
"""

import atexit
import os
import sys
import threading
import weakref

from . import _client
from ._client import (Client, _ci, _cd, _double, _f_log_metric, _f_log_metric_ts, _int64,
                      _key, _keys, _status_code, _EINVAL, strerror)
from ._errors import MloInvalidArgumentError

_lock = threading.RLock()
_default = None  # the Client of the fluent API, opened at the first start_run
_tracking_uri = None
_experiment_name = None
_stack = []  # active runs, innermost last
_cur = None  # handle of _stack[-1] (None: no active run), read by the hot path
# In a forked child, until its first fluent call that needs them: the parent's active
# runs as (run_id, run_name), outermost first (None: nothing to re-attach).
_inherited = None
_adopted = weakref.WeakSet()  # the runs re-attached from a parent: not ours to end


def _before_fork():
    # the ids as the library has them now (a run started offline gets its server id
    # later): the child can read nothing from the parent's client
    for r in list(_stack):
        r.info.run_id  # noqa: B018 - refreshes the cached id


def _after_fork_child():
    global _lock, _default, _inherited, _cur
    # a parent thread may have held the lock at fork (a start_run waiting for the
    # server): the child would wait for it forever
    _lock = threading.RLock()
    held = [(r.info._run_id, r.info.run_name) for r in _stack if r.info._run_id]
    if held:
        _inherited = list(_inherited or ()) + held
    _stack[:] = []
    _cur = None
    _default = None  # the parent's: the child opens its own on first use


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_child)


def _attach_inherited():
    """In a forked child, under _lock: the parent's active runs, re-attached through
    this process's own client (resume_run), become the active-run stack."""
    global _inherited
    if not _inherited:
        return
    client = get_client()
    runs = []
    for run_id, run_name in _inherited:
        run = client.resume_run(run_id)  # raises (nothing changed) when that fails
        if run_name and not run.info.run_name:
            run.info.run_name = run_name
        runs.append(run)
    _inherited = None
    for run in runs:
        run._fluent = True
        _adopted.add(run)
    _stack[:0] = runs
    _set_cur()


def _set_cur():
    global _cur
    _cur = _stack[-1]._h if _stack else None


def set_tracking_uri(uri):
    """Sets the tracking server of the fluent API (default: $MLFLOW_TRACKING_URI).
    Takes effect for the next run; refused while a run is active."""
    global _tracking_uri, _default
    with _lock:
        if _stack or _inherited:
            raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                          "end the active run before changing the tracking URI",
                                          "MLO_ERR_INVALID_ARGUMENT")
        _tracking_uri = None if uri is None else os.fspath(uri)
        if _default is not None:
            old, _default = _default, None
            old.close()


def get_tracking_uri():
    return _tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")


def set_experiment(experiment_name):
    """Sets the experiment (by name) of the runs started next; created when missing."""
    global _experiment_name
    _experiment_name = experiment_name


def get_client():
    """The Client behind the fluent API (opened now if needed)."""
    global _default
    with _lock:
        if _default is None or _default.closed:
            _default = Client(tracking_uri=_tracking_uri)
        return _default


def _forget_client(client):
    """Called by Client.close: drops the client's runs from the active stack."""
    global _default
    with _lock:
        if client is _default:
            _default = None
        _stack[:] = [r for r in _stack if r._client is not client]
        _set_cur()


def start_run(experiment_name=None, run_name=None, nested=False, run_id=None, tags=None,
              description=None):
    """Starts a run and makes it the active run; returns it (an ActiveRun: use it in a
    ``with`` block to end it FINISHED, or FAILED when an exception escapes).

    nested=True nests it under the active run; without it, a run already active is an
    error (as in mlflow).  run_id attaches to an existing run instead."""
    with _lock:
        _attach_inherited()
        client = get_client()
        if _stack and not nested and run_id is None:
            raise MloInvalidArgumentError(
                _EINVAL, strerror(_EINVAL),
                "run %s is already active; end it first or pass nested=True"
                % _stack[-1].info.run_id, "MLO_ERR_INVALID_ARGUMENT")
        if run_id is not None:
            run = client.resume_run(run_id)
            if tags:
                run.set_tags(tags)
            if description is not None:
                run.set_tag("mlflow.note.content", description)
        else:
            parent = _stack[-1] if (nested and _stack) else None
            run = client.start_run(experiment_name or _experiment_name, run_name, parent, tags,
                                   description)
        run._fluent = True
        _stack.append(run)
        _set_cur()
        return run


def _end_run_object(run, status):
    _status_code(status)  # a bad status raises before anything is popped
    with _lock:
        if run not in _stack:
            return
        # ending a run ends the runs nested in it that are still active (innermost first)
        while _stack:
            top = _stack.pop()
            _set_cur()
            try:
                # a run re-attached from the parent process is the parent's to end
                if top.info.status == "RUNNING" and top._h is not None and \
                        top not in _adopted:
                    top.end(status)
            finally:
                top._fluent = False
            if top is run:
                break


def end_run(status="FINISHED"):
    """Ends the active run (FINISHED, FAILED or KILLED); no-op without one.  In a forked
    child, a run of the parent's is only detached (the parent ends it)."""
    global _inherited
    with _lock:
        if _stack:
            _end_run_object(_stack[-1], status)
        elif _inherited:  # not re-attached yet: nothing to ask the server
            _status_code(status)
            _inherited = _inherited[:-1] or None


def active_run():
    """The active run (with .info.run_id), or None.  In a forked child, the parent's
    (re-attached through the child's own client)."""
    if _inherited:
        with _lock:
            _attach_inherited()
    return _stack[-1] if _stack else None


def _run(run_id=None):
    """The run a fluent call logs to: run_id's, else the active one (started if none)."""
    if run_id is not None:
        return get_client().get_run(run_id)
    if _stack:
        return _stack[-1]
    if _inherited:
        with _lock:
            _attach_inherited()
            if _stack:
                return _stack[-1]
    return start_run()


def log_metric(key, value, step=0, timestamp=None, *, run_id=None):
    """Logs a metric point to the active run (started if there is none)."""
    try:
        k = _keys[key]
    except (KeyError, TypeError):
        k = _key(key)
    if run_id is None:
        try:
            if timestamp is None:
                rc = _f_log_metric(_cur, k, _cd(value), _ci(step))
            else:
                rc = _f_log_metric_ts(_cur, k, _cd(value), _ci(step), _ci(timestamp))
        except (TypeError, OverflowError):
            if timestamp is None:
                rc = _f_log_metric(_cur, k, _double(value), _int64(step))
            else:
                rc = _f_log_metric_ts(_cur, k, _double(value), _int64(step),
                                      _int64(timestamp, "timestamp"))
        if not rc:
            return
        if _cur is not None or rc != _EINVAL:
            if _stack:
                _stack[-1]._fail(rc, None if timestamp is None else "timestamp must be >= 0")
            _client._raise(rc)
    _run(run_id).log_metric(key, value, step, timestamp)


def log_metrics(metrics, step=0, timestamp=None, *, run_id=None):
    """Logs a dict of metrics at one step in one call."""
    _run(run_id).log_metrics(metrics, step, timestamp)


def log_param(key, value, *, run_id=None):
    """Logs a param to the active run; returns value (as mlflow)."""
    return _run(run_id).log_param(key, value)


def log_params(params, *, run_id=None):
    _run(run_id).log_params(params)


def set_tag(key, value, *, run_id=None):
    _run(run_id).set_tag(key, value)


def set_tags(tags, *, run_id=None):
    _run(run_id).set_tags(tags)


def log_artifact(local_path, artifact_path=None, *, run_id=None):
    """Logs a local file (or a directory's content) as artifacts of the active run
    (see Run.log_artifact): returns once it is in the store; uploaded in the background."""
    _run(run_id).log_artifact(local_path, artifact_path)


def log_artifacts(local_dir, artifact_path=None, *, run_id=None):
    """Logs the content of a local directory under artifact_path."""
    _run(run_id).log_artifacts(local_dir, artifact_path)


def log_text(text, artifact_file, *, run_id=None):
    """Logs a string as a text artifact (artifact_file: "notes/summary.txt")."""
    _run(run_id).log_text(text, artifact_file)


def log_dict(dictionary, artifact_file, *, run_id=None):
    """Logs a dict as a JSON (or .yaml/.yml: YAML) artifact."""
    _run(run_id).log_dict(dictionary, artifact_file)


def log_bytes(data, artifact_file, *, run_id=None):
    """Logs a bytes-like buffer (bytes, bytearray, memoryview, numpy array) as an
    artifact file, without writing it to a file first."""
    _run(run_id).log_bytes(data, artifact_file)


def log_dataset(name, source, digest=None, *, run_id=None):
    """Records a dataset the active run used (see Run.log_dataset)."""
    _run(run_id).log_dataset(name, source, digest)


def register_model(model_uri, name):
    """mlflow's register_model: model_uri is "runs:/<run_id>/<artifact_path>" of a run
    of the fluent API (active or ended in this process); returns a ModelVersion."""
    return get_client().register_model(model_uri, name)


def histogram(key, interval_ms=1000, *, run_id=None):
    """A Histogram of the active run (see Run.histogram)."""
    return _run(run_id).histogram(key, interval_ms)


def flush(timeout_s=None):
    """Waits until everything logged through the fluent API is acknowledged."""
    if _default is not None and not _default.closed:
        _default.flush(timeout_s)


def _at_exit():
    # also a multiprocessing finalizer in a worker process (_client._register_mp_exit):
    # may run twice, the second time finds nothing to do
    # As mlflow: runs still active at exit are ended (FAILED when the program is dying
    # of an uncaught exception, else FINISHED); then every client is closed, which
    # flushes with the close timeout and never hangs when the server is gone.
    failed = getattr(sys, "last_value", None) is not None and \
        not isinstance(sys.last_value, SystemExit)
    global _inherited
    try:
        _inherited = None  # a forked child's parent runs: the parent's to end
        while _stack:
            _end_run_object(_stack[-1], "FAILED" if failed else "FINISHED")
    except Exception as e:  # noqa: BLE001
        _client._log.warning("mlo: ending the active run at exit: %s", e)
    _client._close_all()


atexit.register(_at_exit)
