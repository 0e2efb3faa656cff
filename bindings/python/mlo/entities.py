"""What the tracking server answers, as mlflow.entities names it: Experiment, Run (with
RunInfo and RunData), read by mlo.get_run, mlo.search_runs(output_format="list"),
mlo.get_experiment_by_name, mlo.search_experiments.  Plain read-only objects made from
the server's JSON (the live handles you log to are mlo.Run)."""

import math


class _Entity:
    __slots__ = ()

    def __repr__(self):
        return "<%s: %s>" % (type(self).__name__, ", ".join(
            "%s=%r" % (k, getattr(self, k)) for k in self.__slots__ if not k.startswith("_")))

    def __eq__(self, other):
        return type(self) is type(other) and all(getattr(self, k) == getattr(other, k)
                                                 for k in self.__slots__)

    def __iter__(self):  # dict(entity), as mlflow's entities allow
        for k in self.__slots__:
            if not k.startswith("_"):
                yield k, getattr(self, k)


def _tags(items):
    return {t["key"]: t.get("value", "") for t in items or ()}


def _metric_value(v):
    if isinstance(v, str):  # the server sends NaN and the infinities as strings
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, math.nan)
    return float(v)


class Experiment(_Entity):
    """An experiment: experiment_id, name, artifact_location, lifecycle_stage, tags (a
    dict), creation_time and last_update_time (ms since the epoch)."""

    __slots__ = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "tags",
                 "creation_time", "last_update_time")

    def __init__(self, experiment_id, name, artifact_location=None, lifecycle_stage="active",
                 tags=None, creation_time=None, last_update_time=None):
        self.experiment_id = experiment_id
        self.name = name
        self.artifact_location = artifact_location
        self.lifecycle_stage = lifecycle_stage
        self.tags = dict(tags or {})
        self.creation_time = creation_time
        self.last_update_time = last_update_time

    @classmethod
    def from_json(cls, js):
        return cls(str(js.get("experiment_id")), js.get("name"), js.get("artifact_location"),
                   js.get("lifecycle_stage", "active"), _tags(js.get("tags")),
                   js.get("creation_time"), js.get("last_update_time"))


class RunInfo(_Entity):
    """run_id (run_uuid), experiment_id, run_name, user_id, status, start_time,
    end_time, artifact_uri, lifecycle_stage."""

    __slots__ = ("run_id", "experiment_id", "run_name", "user_id", "status", "start_time",
                 "end_time", "artifact_uri", "lifecycle_stage")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def run_uuid(self):
        return self.run_id

    @classmethod
    def from_json(cls, js):
        return cls(run_id=js.get("run_id") or js.get("run_uuid"),
                   experiment_id=str(js.get("experiment_id")), run_name=js.get("run_name"),
                   user_id=js.get("user_id"), status=js.get("status"),
                   start_time=js.get("start_time"), end_time=js.get("end_time"),
                   artifact_uri=js.get("artifact_uri"),
                   lifecycle_stage=js.get("lifecycle_stage"))


class RunData(_Entity):
    """metrics (key -> latest value), params (key -> value), tags (key -> value)."""

    __slots__ = ("metrics", "params", "tags")

    def __init__(self, metrics=None, params=None, tags=None):
        self.metrics = dict(metrics or {})
        self.params = dict(params or {})
        self.tags = dict(tags or {})

    @classmethod
    def from_json(cls, js):
        return cls({m["key"]: _metric_value(m.get("value", 0)) for m in js.get("metrics", ())},
                   _tags(js.get("params")), _tags(js.get("tags")))


class RunInputs(_Entity):
    """dataset_inputs: [{"dataset": {name, digest, source_type, source, ...}, "tags": [...]}]"""

    __slots__ = ("dataset_inputs",)

    def __init__(self, dataset_inputs=None):
        self.dataset_inputs = list(dataset_inputs or ())


class Run(_Entity):
    """A run as the server has it: .info (RunInfo), .data (RunData), .inputs."""

    __slots__ = ("info", "data", "inputs")

    def __init__(self, info, data, inputs=None):
        self.info = info
        self.data = data
        self.inputs = inputs or RunInputs()

    @classmethod
    def from_json(cls, js):
        return cls(RunInfo.from_json(js.get("info", {})), RunData.from_json(js.get("data", {})),
                   RunInputs((js.get("inputs") or {}).get("dataset_inputs")))


class ViewType:
    """Which runs or experiments a search sees (mlflow.entities.ViewType)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @staticmethod
    def to_string(v):
        return {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}.get(v, v if isinstance(v, str)
                                                                   else "ACTIVE_ONLY")
