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
from ._client import (Client, _ci, _cd, _cdp, _cip, _double, _ext, _f_log_metric, _f_log_metric_ts,
                      _int64, _key, _keys, _status_code, _CI0, _EINVAL, strerror)
from ._errors import MloInvalidArgumentError

_lock = threading.RLock()
_default = None  # the Client of the fluent API, opened at the first start_run
_tracking_uri = None
_experiment_name = None
_last_run = None  # the run most recently active (mlflow's last_active_run)
_stack = []  # active runs, innermost last
_cur = None  # handle of _stack[-1] as an argument object (None: no active run), read by
# the hot path
_cur_f = _f_log_metric  # mlo_log_metric as the client of _stack[-1] may call it
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
    global _lock, _default, _inherited, _cur, _cur_f
    # a parent thread may have held the lock at fork (a start_run waiting for the
    # server): the child would wait for it forever
    _lock = threading.RLock()
    held = [(r.info._run_id, r.info.run_name) for r in _stack if r.info._run_id]
    if held:
        _inherited = list(_inherited or ()) + held
    _stack[:] = []
    _cur = None
    _cur_f = _f_log_metric
    if _ext is not None:
        _ext.set_current(None)
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
        # raises (nothing changed) when that fails; the parent's sampler, not ours,
        # logs the run's system metrics (as mlflow's monitor, which a child never starts)
        run = client.resume_run(run_id, log_system_metrics=False)
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
    global _cur, _cur_f
    _cur = _stack[-1]._hp if _stack else None
    _cur_f = _stack[-1]._flm if _stack else _f_log_metric
    if _ext is not None:  # mlo._ext's log_metric reads the active run's handle itself
        _ext.set_current(_stack[-1] if _stack else None)


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


def _set_experiment_name(name):
    global _experiment_name
    _experiment_name = name


def _einval(detail):
    return MloInvalidArgumentError(_EINVAL, strerror(_EINVAL), detail, "MLO_ERR_INVALID_ARGUMENT")


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


_SYSTEM_METRICS_VAR = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"


def enable_system_metrics_logging():
    """Runs started from now on by start_run log MLflow's system metrics (CPU, memory,
    disk, network, GPUs: system/cpu_utilization_percentage, ...), unless started with
    log_system_metrics=False; as mlflow's, by setting $MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
    (so mlo.Client objects opened later default to it too).  The sampling interval,
    samples per step and node id are mlflow's $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL,
    _SAMPLES_BEFORE_LOGGING and _NODE_ID (or the Client options system_metrics_*)."""
    os.environ[_SYSTEM_METRICS_VAR] = "true"


def disable_system_metrics_logging():
    """Runs started from now on by start_run log no system metrics, unless started with
    log_system_metrics=True (sets $MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING to false, as
    mlflow's)."""
    os.environ[_SYSTEM_METRICS_VAR] = "false"


def _system_metrics_default():
    return _client._env_bool(_SYSTEM_METRICS_VAR)


def start_run(run_id=None, experiment_id=None, run_name=None, nested=False, parent_run_id=None,
              tags=None, description=None, log_system_metrics=None, *, experiment_name=None):
    """Starts a run and makes it the active run; returns it (an ActiveRun: use it in a
    ``with`` block to end it FINISHED, or FAILED when an exception escapes).  mlflow's
    arguments: run_id attaches to an existing run instead; experiment_id (needs the
    server to know its name) or the experiment of set_experiment; nested=True nests it
    under the active run (without it, a run already active is an error, as in mlflow);
    parent_run_id makes it a child of that run (mlflow.parentRunId); tags; description
    (mlflow.note.content); log_system_metrics: True/False to log mlflow's system metrics
    for this run or not (None: enable_system_metrics_logging() /
    $MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING decide; a resumed run goes on after its last
    system step).  experiment_name (mlo's): the experiment by name, created if missing."""
    if log_system_metrics is None:
        log_system_metrics = _system_metrics_default()
    if experiment_id is not None and experiment_name is None and run_id is None:
        from . import _tracking
        experiment_name = _tracking.experiment_name_of(str(experiment_id))
    with _lock:
        _attach_inherited()
        client = get_client()
        if _stack and not nested and run_id is None and parent_run_id is None:
            raise MloInvalidArgumentError(
                _EINVAL, strerror(_EINVAL),
                "run %s is already active; end it first or pass nested=True"
                % _stack[-1].info.run_id, "MLO_ERR_INVALID_ARGUMENT")
        if run_id is not None:
            run = client.resume_run(run_id, log_system_metrics=bool(log_system_metrics))
            if tags:
                run.set_tags(tags)
            if description is not None:
                run.set_tag("mlflow.note.content", description)
        else:
            parent = None
            if parent_run_id is not None:
                parent = next((r for r in _stack if r.info.run_id == parent_run_id), None)
            elif nested and _stack:
                parent = _stack[-1]
            run = client.start_run(experiment_name or _experiment_name, run_name, parent, tags,
                                   description, log_system_metrics=bool(log_system_metrics))
            if parent_run_id is not None and parent is None:
                run.set_tag("mlflow.parentRunId", parent_run_id)
        run._fluent = True
        _stack.append(run)
        _set_cur()
        return run


def _end_run_object(run, status):
    global _last_run
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
        _last_run = run


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


def last_active_run():
    """The run most recently active in this process (the active one, else the last
    ended), as mlflow's last_active_run: read from the server (an mlo.entities.Run with
    its data) when there is one, else the local mlo.Run; None if there was none."""
    run = _stack[-1] if _stack else _last_run
    if run is None:
        return None
    if get_tracking_uri():
        from . import _tracking
        return _tracking.get_run(run.info.run_id)
    return run


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


class RunOperations:
    """What a log call with synchronous=False returns (mlflow's RunOperations): wait()
    returns once what was logged so far is acknowledged by the server."""

    __slots__ = ("_client",)

    def __init__(self, client):
        self._client = client

    def wait(self, timeout_s=None):
        if self._client is not None and not self._client.closed:
            self._client.flush(timeout_s)


def _after(run, synchronous):
    """mlflow's synchronous argument: True waits for the server's acknowledgement (mlo
    always logs asynchronously; this is a flush), False returns a RunOperations."""
    if synchronous:
        run._client.flush()
        return None
    if synchronous is False:
        return RunOperations(run._client)
    return None


def log_metric(key, value, step=None, synchronous=None, timestamp=None, run_id=None):
    """Logs a metric point to the active run (started if there is none), as mlflow's
    log_metric (step None: 0; timestamp: ms since the epoch, default now).  mlo logs
    asynchronously: synchronous=True waits until the server has it, False returns a
    RunOperations."""
    try:
        k = _keys[key]
    except (KeyError, TypeError):
        k = _key(key)
    if run_id is None and synchronous is None:
        try:
            if timestamp is None:
                rc = _cur_f(_cur, k, _cdp(value), _cip(step) if step else _CI0)
            else:
                rc = _f_log_metric_ts(_cur, k, _cd(value), _ci(step or 0), _ci(timestamp))
        except (TypeError, OverflowError, ValueError):  # ValueError: an array's truth
            if timestamp is None:
                rc = _cur_f(_cur, k, _double(value), _int64(step))
            else:
                rc = _f_log_metric_ts(_cur, k, _double(value), _int64(step),
                                      _int64(timestamp, "timestamp"))
        if not rc:
            return None
        if _cur is not None or rc != _EINVAL:
            if _stack:
                _stack[-1]._fail(rc, None if timestamp is None else "timestamp must be >= 0")
            _client._raise(rc)
    run = _run(run_id)
    run.log_metric(key, value, step or 0, timestamp)
    return _after(run, synchronous)


def _fail_cur(rc, timestamp_given):
    """The failure of mlo._ext's log_metric on the active run (as log_metric's)."""
    if _stack:
        _stack[-1]._fail(rc, "timestamp must be >= 0" if timestamp_given else None)
    _client._raise(rc)


_py_log_metric = log_metric  # the ctypes code, also mlo._ext's for what it leaves to Python
if _ext is not None:
    _ext.setup_fluent(_py_log_metric, _fail_cur)
    log_metric = _ext.log_metric


def log_metrics(metrics, step=None, synchronous=None, run_id=None, timestamp=None):
    """Logs a dict of metrics at one step in one call (mlflow's log_metrics)."""
    run = _run(run_id)
    run.log_metrics(metrics, step or 0, timestamp)
    return _after(run, synchronous)


def log_param(key, value, synchronous=None, *, run_id=None):
    """Logs a param to the active run; returns value (as mlflow)."""
    run = _run(run_id)
    run.log_param(key, value)
    _after(run, synchronous)
    return value


def log_params(params, synchronous=None, run_id=None):
    run = _run(run_id)
    run.log_params(params)
    return _after(run, synchronous)


def set_tag(key, value, synchronous=None, *, run_id=None):
    run = _run(run_id)
    run.set_tag(key, value)
    return _after(run, synchronous)


def set_tags(tags, synchronous=None, *, run_id=None):
    run = _run(run_id)
    run.set_tags(tags)
    return _after(run, synchronous)


def delete_tag(key, *, run_id=None):
    """Deletes a tag of the active run on the server (mlflow's delete_tag): waits for
    what was logged before (so the tag is there to delete), then asks the server.  Needs
    a tracking server."""
    from . import _tracking
    _tracking.delete_tag(_run(run_id), key)


def log_artifact(local_path, artifact_path=None, run_id=None):
    """Logs a local file (or a directory's content) as artifacts of the active run
    (see Run.log_artifact): returns once it is in the store; uploaded in the background."""
    _run(run_id).log_artifact(local_path, artifact_path)


def log_artifacts(local_dir, artifact_path=None, run_id=None):
    """Logs the content of a local directory under artifact_path."""
    _run(run_id).log_artifacts(local_dir, artifact_path)


def log_text(text, artifact_file, run_id=None):
    """Logs a string as a text artifact (artifact_file: "notes/summary.txt")."""
    _run(run_id).log_text(text, artifact_file)


def log_dict(dictionary, artifact_file, run_id=None):
    """Logs a dict as a JSON (or .yaml/.yml: YAML) artifact."""
    _run(run_id).log_dict(dictionary, artifact_file)


def log_bytes(data, artifact_file, *, run_id=None):
    """Logs a bytes-like buffer (bytes, bytearray, memoryview, numpy array) as an
    artifact file, without writing it to a file first."""
    _run(run_id).log_bytes(data, artifact_file)


def log_dataset(name, source, digest=None, *, run_id=None):
    """Records a dataset the active run used (see Run.log_dataset)."""
    _run(run_id).log_dataset(name, source, digest)


def register_model(model_uri, name, await_registration_for=300, *, tags=None):
    """mlflow's register_model: a new version of the registered model `name` (created if
    missing) from model_uri "runs:/<run_id>/<artifact_path>"; returns a ModelVersion.
    A run of this process is registered through the library (after its pending
    uploads); another run through the server's registry API.  Registration is
    synchronous here: await_registration_for is accepted and not needed."""
    from . import _tracking
    return _tracking.register_model(model_uri, name, tags)


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
