"""Reading artifacts back, as mlflow.artifacts: download_artifacts and list_artifacts.

    local = mlo.artifacts.download_artifacts("runs:/<run_id>/model", dst_path="/tmp/m")
    local = mlo.artifacts.download_artifacts("models:/iris@champion")
    for f in mlo.artifacts.list_artifacts(run_id=run_id, artifact_path="model"):
        print(f.path, f.is_dir, f.file_size)

The calls go to the fluent API's tracking server (mlo.set_tracking_uri, else
$MLFLOW_TRACKING_URI), or to tracking_uri when given.  They are synchronous.
"""

import contextlib

from ._client import Client, MloInvalidArgumentError, _EINVAL, strerror
from . import _fluent

__all__ = ["download_artifacts", "list_artifacts"]


@contextlib.contextmanager
def _client(tracking_uri):
    if tracking_uri is None:
        yield _fluent.get_client()
    else:
        with Client(tracking_uri, durable=False) as c:
            yield c


def _which(artifact_uri, run_id, artifact_path):
    if artifact_uri is not None:
        if run_id is not None or artifact_path is not None:
            raise MloInvalidArgumentError(
                _EINVAL, strerror(_EINVAL),
                "if artifact_uri is given, run_id and artifact_path must not be",
                "MLO_ERR_INVALID_ARGUMENT")
        return artifact_uri, None
    if run_id is None:
        raise MloInvalidArgumentError(_EINVAL, strerror(_EINVAL),
                                      "give artifact_uri, or run_id (and artifact_path)",
                                      "MLO_ERR_INVALID_ARGUMENT")
    return run_id, artifact_path


def download_artifacts(artifact_uri=None, run_id=None, artifact_path=None, dst_path=None,
                       tracking_uri=None):
    """Downloads the artifacts at artifact_uri ("runs:/<id>/<path>",
    "models:/<name>/<version>", "models:/<name>@<alias>") or at run_id/artifact_path
    into dst_path (None: a new temporary directory); returns the local path of what
    was downloaded (mlflow.artifacts.download_artifacts)."""
    ref, path = _which(artifact_uri, run_id, artifact_path)
    with _client(tracking_uri) as c:
        return c.download_artifacts(ref, path, dst_path)


def list_artifacts(artifact_uri=None, run_id=None, artifact_path=None, tracking_uri=None):
    """The FileInfo(path, is_dir, file_size) entries directly under artifact_uri or
    run_id/artifact_path (mlflow.artifacts.list_artifacts)."""
    ref, path = _which(artifact_uri, run_id, artifact_path)
    with _client(tracking_uri) as c:
        return c.list_artifacts(ref, path)
