"""The fluent calls that ask the tracking server something, as mlflow names them:
set_experiment, get_experiment(_by_name), create_experiment, search_experiments,
get_run, search_runs, delete_tag, and register_model for a run of another process.

The library logs asynchronously; a read that must see what this process logged
(get_run, search_runs, last_active_run, delete_tag) first waits for the fluent client's
acknowledgements (at most READ_FLUSH_S).  Without a tracking server (the local store)
these raise MloNotSupportedError naming the nearest mlo call; set_experiment works
offline (the experiment is created when the run reaches a server)."""

import datetime
import math
import os
import warnings

from . import _client, _fluent, _rest
from ._errors import (MloNetworkError, MloNotFoundError, MloServerError, MloTimeoutError,
                      MloWarning)
from .entities import Experiment, Run, ViewType

READ_FLUSH_S = 60
SEARCH_PAGE = 1000  # runs/search and experiments/search page size (MLflow's default)
SEARCH_MAX_RESULTS_PANDAS = 100000  # mlflow.search_runs' default

_names = {}  # experiment id -> name (resolved through the server)


def _rest_for(what, nearest):
    return _rest.for_uri(_fluent.get_tracking_uri(), None, what, nearest)


def _wait_for_logged():
    """What this process logged through the fluent API, acknowledged (bounded)."""
    c = _fluent._default
    if c is None or c.closed:
        return
    try:
        c.flush(READ_FLUSH_S)
    except MloTimeoutError:
        warnings.warn(MloWarning(0, "", "the server has not acknowledged everything logged "
                                 "within %d s: the answer may miss some of it" % READ_FLUSH_S,
                                 "MLO_ERR_TIMEOUT"), stacklevel=3)


# ---- experiments -----------------------------------------------------------------------


def set_experiment(experiment_name=None, experiment_id=None):
    """Sets the experiment of the runs started next, by name or by id, and returns it
    (an mlo.entities.Experiment).  With a tracking server, as mlflow: found or created
    now.  Without one (the local store), or while the server cannot be reached, it is
    created when its first run reaches a server: the Experiment returned has
    experiment_id None."""
    if (experiment_name is None) == (experiment_id is None):
        raise _fluent._einval("give experiment_name or experiment_id (one of them)")
    uri = _fluent.get_tracking_uri()
    if experiment_id is not None:
        exp = get_experiment(str(experiment_id))
        _fluent._set_experiment_name(exp.name)
        return exp
    name = str(experiment_name)
    _fluent._set_experiment_name(name)
    if not uri:
        return Experiment(None, name)
    rest = _rest.Rest(uri)
    try:
        try:
            exp = Experiment.from_json(rest.get("experiments/get-by-name",
                                                experiment_name=name)["experiment"])
        except MloNotFoundError:
            try:
                rest.post("experiments/create", {"name": name})
            except MloServerError as e:  # created by someone else meanwhile
                if e.name != "MLO_ERR_ALREADY_EXISTS":
                    raise
            exp = Experiment.from_json(rest.get("experiments/get-by-name",
                                                experiment_name=name)["experiment"])
    except (MloNetworkError, MloTimeoutError) as e:
        warnings.warn(MloWarning(e.status, e.message, "set_experiment(%r): the server cannot be "
                                 "reached now (%s); the experiment is created when the run "
                                 "reaches it" % (name, e.detail), e.name), stacklevel=2)
        return Experiment(None, name)
    if exp.lifecycle_stage == "deleted":
        raise _fluent._einval("experiment %r is deleted: restore it (MLflow UI) or choose another "
                              "name" % name)
    _names[exp.experiment_id] = exp.name
    return exp


def get_experiment_by_name(name):
    """The experiment called name (an mlo.entities.Experiment), or None."""
    rest = _rest_for("get_experiment_by_name", "mlo.set_experiment(name) makes runs go to it "
                     "(created when the first run reaches a server); `mlo ls` lists the store")
    try:
        js = rest.get("experiments/get-by-name", experiment_name=name)["experiment"]
    except MloNotFoundError:
        return None
    exp = Experiment.from_json(js)
    _names[exp.experiment_id] = exp.name
    return exp


def get_experiment(experiment_id):
    rest = _rest_for("get_experiment", "mlo.set_experiment(experiment_name=...) (by name)")
    exp = Experiment.from_json(rest.get("experiments/get",
                                        experiment_id=str(experiment_id))["experiment"])
    _names[exp.experiment_id] = exp.name
    return exp


def experiment_name_of(experiment_id):
    if experiment_id not in _names:
        rest = _rest_for("start_run(experiment_id=...)", "mlo.start_run(experiment_name=...) or "
                         "mlo.set_experiment(name)")
        _names[experiment_id] = Experiment.from_json(
            rest.get("experiments/get", experiment_id=experiment_id)["experiment"]).name
    return _names[experiment_id]


def create_experiment(name, artifact_location=None, tags=None):
    """Creates an experiment; returns its id (mlflow's create_experiment).  An existing
    name raises MloAlreadyExistsError."""
    rest = _rest_for("create_experiment", "mlo.set_experiment(name) (created when its first "
                     "run reaches a server)")
    body = {"name": name}
    if artifact_location is not None:
        body["artifact_location"] = artifact_location
    if tags:
        body["tags"] = [{"key": str(k), "value": str(v)} for k, v in tags.items()]
    eid = rest.post("experiments/create", body)["experiment_id"]
    _names[str(eid)] = name
    return str(eid)


def search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=None, filter_string=None,
                       order_by=None):
    """The experiments matching filter_string ("name LIKE 'iris%'", "tags.team = 'ml'"),
    in order_by order (default: newest first), as a list of Experiment."""
    rest = _rest_for("search_experiments", "`mlo ls` lists the experiments of the local store")
    out, token = [], None
    while max_results is None or len(out) < max_results:
        body = {"max_results": SEARCH_PAGE if max_results is None
                else min(SEARCH_PAGE, max_results - len(out)),
                "view_type": ViewType.to_string(view_type)}
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if token:
            body["page_token"] = token
        js = rest.post("experiments/search", body)
        out.extend(Experiment.from_json(e) for e in js.get("experiments", ()))
        token = js.get("next_page_token")
        if not token:
            break
    for e in out:
        _names[e.experiment_id] = e.name
    return out


# ---- runs ---------------------------------------------------------------------------------


def get_run(run_id):
    """The run as the server has it (mlo.entities.Run: .info, .data.metrics/params/tags),
    after what this process logged is acknowledged."""
    rest = _rest_for("get_run", "`mlo show RUN` reads a run of the local store")
    _wait_for_logged()
    return Run.from_json(rest.get("runs/get", run_id=run_id)["run"])


def _ms_to_datetime(ms):
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)


def _rows(runs):
    """search_runs' table, with mlflow's column names."""
    metric_keys = sorted({k for r in runs for k in r.data.metrics})
    param_keys = sorted({k for r in runs for k in r.data.params})
    tag_keys = sorted({k for r in runs for k in r.data.tags})
    rows = []
    for r in runs:
        row = {"run_id": r.info.run_id, "experiment_id": r.info.experiment_id,
               "status": r.info.status, "artifact_uri": r.info.artifact_uri,
               "start_time": _ms_to_datetime(r.info.start_time),
               "end_time": _ms_to_datetime(r.info.end_time)}
        for k in metric_keys:
            row["metrics." + k] = r.data.metrics.get(k, math.nan)
        for k in param_keys:
            row["params." + k] = r.data.params.get(k)
        for k in tag_keys:
            row["tags." + k] = r.data.tags.get(k)
        rows.append(row)
    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"] + \
        ["metrics." + k for k in metric_keys] + ["params." + k for k in param_keys] + \
        ["tags." + k for k in tag_keys]
    return rows, columns


def search_runs(experiment_ids=None, filter_string="", run_view_type=ViewType.ACTIVE_ONLY,
                max_results=SEARCH_MAX_RESULTS_PANDAS, order_by=None, output_format="pandas",
                search_all_experiments=False, experiment_names=None):
    """The runs matching filter_string ("metrics.accuracy > 0.9 and params.depth = '4'")
    in the experiments given (default: the active experiment, or all of them with
    search_all_experiments=True), as mlflow's search_runs: output_format "pandas" gives
    a pandas DataFrame when pandas is importable, else a list of rows (dicts) with the
    same columns (run_id, experiment_id, status, artifact_uri, start_time, end_time,
    metrics.<key>, params.<key>, tags.<key>); "list" gives mlo.entities.Run objects."""
    if output_format not in ("pandas", "list"):
        raise _fluent._einval("output_format must be 'pandas' or 'list', not %r"
                              % (output_format,))
    rest = _rest_for("search_runs", "`mlo ls` lists the runs of the local store")
    _wait_for_logged()
    if experiment_ids is not None and experiment_names is not None:
        raise _fluent._einval("give experiment_ids or experiment_names, not both")
    if isinstance(experiment_ids, (str, int)):
        experiment_ids = [experiment_ids]
    ids = [str(e) for e in experiment_ids] if experiment_ids is not None else None
    if experiment_names is not None:
        ids = []
        for n in experiment_names:
            e = get_experiment_by_name(n)
            if e is not None:
                ids.append(e.experiment_id)
    elif ids is None:
        if search_all_experiments:
            ids = [e.experiment_id for e in search_experiments(view_type=ViewType.ALL)]
        elif _fluent._experiment_name:
            e = get_experiment_by_name(_fluent._experiment_name)
            ids = [e.experiment_id] if e is not None else []
        else:
            ids = ["0"]
    runs, token = [], None
    while ids and len(runs) < max_results:
        body = {"experiment_ids": ids, "max_results": min(SEARCH_PAGE, max_results - len(runs)),
                "run_view_type": ViewType.to_string(run_view_type)}
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if token:
            body["page_token"] = token
        js = rest.post("runs/search", body)
        runs.extend(Run.from_json(r) for r in js.get("runs", ()))
        token = js.get("next_page_token")
        if not token:
            break
    if output_format == "list":
        return runs
    rows, columns = _rows(runs)
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows, columns=columns)


def delete_tag(run, key):
    rest = _rest.for_client(run._client, "delete_tag",
                            "mlo.set_tag(key, '') (tags are last-write-wins)")
    run._client.flush()  # the set_tag calls before it first
    rest.post("runs/delete-tag", {"run_id": run.info.run_id, "key": key})


# ---- the model registry -----------------------------------------------------------------------


def register_model(model_uri, name, tags=None):
    if tags:
        raise _rest.not_supported("register_model(tags=...)", "register without tags and set "
                                  "them in the MLflow UI (the library has no model version tags)")
    uri = str(os.fspath(model_uri) if hasattr(model_uri, "__fspath__") else model_uri)
    if uri.startswith("models:/"):
        raise _rest.not_supported("register_model(%r) (a copy of a model version)" % uri,
                                  "mlo.register_model('runs:/<run_id>/<path>', name) of the "
                                  "run that logged it")
    if not uri.startswith("runs:/"):
        raise _fluent._einval("model_uri must be runs:/<run_id>/<artifact_path>, not %r" % uri)
    rid, _, apath = uri[len("runs:/"):].lstrip("/").partition("/")
    client = _fluent.get_client()
    run = client._runs.get(rid)
    if run is not None and run._h is not None:
        mv = client.register_model(uri, name)
    else:
        # a run of another process: through the registry API (nothing of it is pending here)
        rest = _rest.for_client(client, "register_model of a run of another process",
                                "register it from the process that logged it "
                                "(Run.register_model), or `mlo sync` first")
        info = rest.get("runs/get", run_id=rid)["run"]["info"]
        try:
            rest.post("registered-models/create", {"name": name})
        except MloServerError as e:
            if e.name != "MLO_ERR_ALREADY_EXISTS":
                raise
        source = info["artifact_uri"].rstrip("/") + ("/" + apath.strip("/") if apath else "")
        js = rest.post("model-versions/create", {"name": name, "source": source,
                                                 "run_id": rid})["model_version"]
        mv = _client.ModelVersion(name, int(js["version"]), rid)
    return mv


__all__ = ["set_experiment", "get_experiment_by_name", "get_experiment", "create_experiment",
           "search_experiments", "get_run", "search_runs", "register_model"]
