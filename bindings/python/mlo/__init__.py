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
from ._client import (LIBRARY, ActiveRun, Client, FileInfo, Histogram, ModelVersion, Run, RunInfo,
                      error_for, ffi, strerror, version)
from ._fluent import (active_run, end_run, flush, get_client, get_tracking_uri, histogram,
                      log_artifact, log_artifacts, log_bytes, log_dataset, log_dict, log_text,
                      log_metric, log_metrics, log_param, log_params, register_model,
                      set_experiment, set_tag, set_tags, set_tracking_uri, start_run)
from . import artifacts
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
    "MloError", "MloInvalidArgumentError", "MloInvalidKeyError", "MloInvalidUtf8Error",
    "MloInvalidStatusError", "MloQueueFullError", "MloClosedError", "MloTimeoutError",
    "MloNetworkError", "MloConfigError", "MloNotSupportedError", "MloServerError",
    "MloNotFoundError", "MloPermissionError", "MloWarning", "MloIOError", "MloInvalidPathError",
    "MloArtifactsNotProxiedError", "MloNoMemoryError",
] + sorted(_errors.GENERATED)
