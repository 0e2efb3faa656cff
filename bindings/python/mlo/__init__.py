"""mlo: a fast MLflow tracking client (Python bindings of libmlo).

Use it as mlflow's fluent API::

    import mlo
    mlo.set_tracking_uri("http://127.0.0.1:5000")   # or $MLFLOW_TRACKING_URI
    with mlo.start_run(experiment_name="demo", run_name="try-1") as run:
        mlo.log_params({"lr": 0.1, "depth": 3})
        for step in range(100):
            mlo.log_metric("loss", 1.0 / (step + 1), step=step)
    # leaving the block ends the run FINISHED (FAILED on an exception)

or an explicit Client (several servers at once)::

    with mlo.Client("http://a:5000") as a, mlo.Client("http://b:5000") as b:
        with a.start_run(run_name="x") as run:
            run.log_metric("loss", 0.5, step=1)

Artifacts: log_artifact(path), log_text/log_dict/log_bytes (from memory) return once
the content is in the library's store and upload in the background;
mlo.artifacts.download_artifacts / list_artifacts read them back, register_model and
Client.set_model_alias use the model registry, log_dataset records data lineage.

Log calls never touch the network: they queue the event and return; a thread of
the C library ships batches to the server.  flush() waits for delivery.  Failures
of a call raise MloError (subclasses per family: MloInvalidKeyError, ...) with the
library's message; failures found later, while sending, go to the "mlo" logger (or
to the client's on_error).

The shared library is found through $MLO_LIBRARY, then a meson build directory
above this package, then the system loader.
"""

from ._errors import (MloClosedError, MloConfigError, MloError, MloInvalidArgumentError,
                      MloInvalidKeyError, MloInvalidStatusError, MloInvalidUtf8Error,
                      MloNetworkError, MloNotFoundError, MloNotSupportedError,
                      MloPermissionError, MloQueueFullError, MloServerError, MloTimeoutError,
                      MloWarning, MloIOError, MloInvalidPathError, MloArtifactsNotProxiedError,
                      MloNoMemoryError)
from . import _client
from ._client import (LIBRARY, ActiveRun, Client, FileInfo, Histogram, ModelVersion, Run, RunInfo,
                      error_for, ffi, strerror, version)
from ._fluent import (RunOperations, active_run, delete_tag, disable_system_metrics_logging,
                      enable_system_metrics_logging, end_run, flush, get_client,
                      get_tracking_uri, histogram, last_active_run, log_artifact, log_artifacts,
                      log_bytes, log_dataset, log_dict, log_text, log_metric, log_metrics,
                      log_param, log_params, register_model, set_tag, set_tags, set_tracking_uri,
                      start_run)
from ._tracking import (create_experiment, get_experiment, get_experiment_by_name, get_run,
                        search_experiments, search_runs, set_experiment)
from ._media import log_figure, log_image, log_input
from . import artifacts, entities
from . import _errors

# the exception classes of the statuses without a hand-written class (generated)
globals().update(_errors.GENERATED)

__version__ = "%d.%d.%d" % ffi.HEADER_VERSION

__all__ = [
    "ActiveRun", "Client", "Histogram", "Run", "RunInfo", "histogram", "LIBRARY", "__version__", "version", "strerror",
    "error_for", "start_run", "end_run", "active_run", "log_metric", "log_metrics",
    "log_param", "log_params", "set_tag", "set_tags", "log_artifact", "log_artifacts",
    "log_text", "log_dict", "log_bytes", "log_dataset", "register_model", "artifacts",
    "FileInfo", "ModelVersion", "flush",
    "set_tracking_uri", "get_tracking_uri", "set_experiment", "get_client",
    "last_active_run", "delete_tag", "log_figure", "log_image", "log_input", "get_run",
    "search_runs", "get_experiment", "get_experiment_by_name", "create_experiment",
    "search_experiments", "entities", "RunOperations", "enable_system_metrics_logging",
    "disable_system_metrics_logging",
    "MloError", "MloInvalidArgumentError", "MloInvalidKeyError", "MloInvalidUtf8Error",
    "MloInvalidStatusError", "MloQueueFullError", "MloClosedError", "MloTimeoutError",
    "MloNetworkError", "MloConfigError", "MloNotSupportedError", "MloServerError",
    "MloNotFoundError", "MloPermissionError", "MloWarning", "MloIOError", "MloInvalidPathError",
    "MloArtifactsNotProxiedError", "MloNoMemoryError",
] + sorted(_errors.GENERATED)


# ---- mlflow names mlo does not have: an error naming the nearest mlo call --------------------
# `import mlo as mlflow` turns a call of one of these into MloNotSupportedError (never a
# silent no-op).  The flavor modules mlflow loads lazily (mlflow.sklearn, mlflow.pyfunc,
# mlflow.models) are imported on first use, as mlflow does.

_LAZY = ("sklearn", "pyfunc", "models")

UNSUPPORTED = {
    "autolog": "log params and metrics with mlo.log_params / mlo.log_metrics, the model with "
               "mlo.sklearn.log_model",
    "log_table": "mlo.log_dict(table, 'table.json') or mlo.log_text(csv_text, 'table.csv')",
    "load_table": "mlo.artifacts.download_artifacts(run_id=..., artifact_path=...)",
    "evaluate": "compute the metrics and log them with mlo.log_metrics",
    "get_artifact_uri": "mlo.artifacts.list_artifacts / mlo.artifacts.download_artifacts "
                        "(\"runs:/<run_id>/<path>\")",
    "set_experiment_tag": "mlo.create_experiment(name, tags={...})",
    "set_experiment_tags": "mlo.create_experiment(name, tags={...})",
    "delete_experiment": "the MLflow UI (mlo never deletes)",
    "delete_run": "mlo.end_run('KILLED'), or the MLflow UI (mlo never deletes)",
    "get_parent_run": "mlo.get_run(run.data.tags['mlflow.parentRunId'])",
    "set_registry_uri": "mlo's registry is the tracking server's (mlo.set_tracking_uri)",
    "get_registry_uri": "mlo.get_tracking_uri() (the registry is the tracking server's)",
    "log_model": "mlo.sklearn.log_model (the flavor mlo writes)",
    "MlflowClient": "mlo.Client (MlflowClient's log calls with a run id first), mlo.get_run, "
                    "mlo.search_runs",
    "start_span": "mlo does not trace; log timings with mlo.log_metric or mlo.histogram",
    "trace": "mlo does not trace; log timings with mlo.log_metric or mlo.histogram",
    "get_trace": "mlo does not trace",
    "search_traces": "mlo does not trace",
    "log_trace": "mlo does not trace",
    "data": "mlo.log_dataset(name, source, digest) (the digest of a local file is computed)",
    "tracking": "the same calls at mlo's top level (mlo.get_run, mlo.search_runs, mlo.Client)",
    "projects": "run the code yourself; mlo only tracks",
    "deployments": "serve the model with MLflow (`mlflow models serve -m runs:/<id>/model`)",
    "genai": "mlo does not evaluate or trace LLMs",
    "langchain": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "openai": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "pytorch": "mlo.log_artifact(path) (torch.save the model): mlo writes only the sklearn flavor",
    "tensorflow": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "keras": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "xgboost": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "lightgbm": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "transformers": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "statsmodels": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
    "spark": "mlo.log_artifact(path): mlo writes only the sklearn flavor",
}


class _Unsupported:
    """A name of mlflow that mlo has not: calling it, or reading an attribute of it,
    raises MloNotSupportedError naming the nearest mlo call."""

    def __init__(self, name, nearest):
        self._name = name
        self._nearest = nearest

    def _error(self, what):
        return _client._status_error("MLO_ERR_NOT_SUPPORTED", "mlflow.%s is not in mlo; nearest: "
                                     "%s" % (what, self._nearest))

    def __call__(self, *args, **kwargs):
        raise self._error(self._name)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise self._error("%s.%s" % (self._name, attr))

    def __repr__(self):
        return "<mlo: mlflow.%s is not supported; nearest: %s>" % (self._name, self._nearest)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return importlib.import_module("." + name, __name__)
    if name in UNSUPPORTED:
        return _Unsupported(name, UNSUPPORTED[name])
    raise AttributeError("module 'mlo' has no attribute %r" % name)

