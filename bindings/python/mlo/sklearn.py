"""scikit-learn models as MLflow's mlflow.sklearn writes them, without MLflow.

    import mlo as mlflow
    import mlo.sklearn
    with mlflow.start_run():
        model = RandomForestClassifier().fit(X, y)
        mlflow.sklearn.log_model(model, "model", input_example=X[:5])
    model = mlo.sklearn.load_model("runs:/<run_id>/model")

log_model writes MLflow's model directory (mlo.models: MLmodel with the python_function
and sklearn flavors, model.pkl, conda.yaml, python_env.yaml, requirements.txt, the
input example and signature when given or inferable) and logs it as the run's artifacts
through the library: it returns once the files are in the store, uploads in the
background, and with no server (the local store) `mlo sync` uploads them later.  It sets
the run tag mlflow.log-model.history as MLflow's server does, and registers the model
when registered_model_name is given.  MLflow's own mlflow.sklearn.load_model and
mlflow.pyfunc.load_model load the result.

scikit-learn is needed only to make and use the models, not to import this module.
"""

import os
import pickle
import shutil
import tempfile
import warnings

from . import _fluent, _rest
from ._errors import MloError, MloWarning
from .models import (MLMODEL_FILE_NAME, LOG_MODEL_HISTORY_TAG, MAX_TAG_VALUE, Model, ModelInfo,
                     ModelSignature, _Example, _infer_schema, add_pyfunc_flavor,
                     local_model_dir, pinned_requirement, prepare_target,
                     process_requirements, total_file_size, write_environment)

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SUPPORTED_SERIALIZATION_FORMATS = [SERIALIZATION_FORMAT_PICKLE, SERIALIZATION_FORMAT_CLOUDPICKLE]
_MODEL_DATA_SUBPATH = "model.pkl"

# models this process logged, per run id: the entries of its mlflow.log-model.history tag
_history = {}


def _warn(msg):
    warnings.warn(MloWarning(0, "", msg, "MLO_MODEL"), stacklevel=3)


def get_default_pip_requirements(include_cloudpickle=False):
    """The pinned packages loading the model imports (as MLflow infers them for a
    scikit-learn model: scikit-learn and the packages MLflow itself depends on that it
    imports, numpy and scipy), sorted; mlflow is put first by the environment."""
    reqs = [pinned_requirement("scikit-learn", "sklearn"), pinned_requirement("numpy"),
            pinned_requirement("scipy")]
    if include_cloudpickle:
        reqs.append(pinned_requirement("cloudpickle"))
    return sorted(r for r in reqs if r)


def _not_supported(arg, nearest):
    return _rest.not_supported("mlo.sklearn: %s" % arg, nearest)


def _save_model(sk_model, output_path, serialization_format):
    with open(output_path, "wb") as out:
        if serialization_format == SERIALIZATION_FORMAT_PICKLE:
            pickle.dump(sk_model, out)
        else:
            try:
                import cloudpickle
            except ImportError:
                raise _not_supported("serialization_format='cloudpickle' without cloudpickle "
                                     "installed", "serialization_format='pickle'") from None
            cloudpickle.dump(sk_model, out)


def save_model(sk_model, path, conda_env=None, code_paths=None, mlflow_model=None,
               serialization_format=SERIALIZATION_FORMAT_PICKLE, signature=None,
               input_example=None, pip_requirements=None, extra_pip_requirements=None,
               pyfunc_predict_fn="predict", metadata=None):
    """Writes the model directory at path (new or empty), as mlflow.sklearn.save_model.
    signature: a ModelSignature (mlo.models.infer_signature), False for none; inferred
    from input_example (a numpy array or pandas DataFrame) when not given.  Returns the
    Model (the MLmodel's content)."""
    import sklearn
    if conda_env is not None:
        raise _not_supported("conda_env", "pip_requirements=[...] (conda.yaml is written from "
                             "them)")
    if code_paths:
        raise _not_supported("code_paths", "mlo.log_artifact(path) for code to keep next to "
                             "the model")
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise ValueError("Unrecognized serialization format: %s. Please specify one of the "
                         "following supported formats: %s."
                         % (serialization_format, SUPPORTED_SERIALIZATION_FORMATS))
    path = os.path.abspath(os.fspath(path))
    prepare_target(path)
    model = mlflow_model if mlflow_model is not None else Model()
    example = None
    if input_example is not None:
        example = _Example(input_example)
        example.save(path)
        model.saved_input_example_info = example.info
    if signature is None and example is not None:
        signature = _infer_signature(sk_model, example.data, pyfunc_predict_fn)
    elif signature is False:
        signature = None
    if signature is not None and not isinstance(signature, ModelSignature):
        raise TypeError("signature must be an mlo.models.ModelSignature (infer_signature), "
                        "not %s" % type(signature).__name__)
    model.signature = signature
    if metadata is not None:
        model.metadata = metadata
    _save_model(sk_model, os.path.join(path, _MODEL_DATA_SUBPATH), serialization_format)
    if hasattr(sk_model, pyfunc_predict_fn):
        add_pyfunc_flavor(model, "mlflow.sklearn", _MODEL_DATA_SUBPATH, pyfunc_predict_fn)
    else:
        _warn("Model was missing function: %s. Not logging python_function flavor!"
              % pyfunc_predict_fn)
    model.add_flavor(FLAVOR_NAME, pickled_model=_MODEL_DATA_SUBPATH,
                     sklearn_version=sklearn.__version__,
                     serialization_format=serialization_format, code=None)
    size = total_file_size(path)
    if size:
        model.model_size_bytes = size
    model.save(os.path.join(path, MLMODEL_FILE_NAME))
    default_reqs = None if pip_requirements is not None else get_default_pip_requirements(
        serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE)
    conda, reqs, cons = process_requirements(default_reqs or [], pip_requirements,
                                             extra_pip_requirements)
    write_environment(path, conda, reqs, cons)
    return model


def _infer_signature(sk_model, data, predict_fn):
    """The signature inferred from an input example: its schema, and the schema of the
    model's prediction on it (mlflow's _infer_signature_from_input_example)."""
    inputs = _infer_schema(data)
    if inputs is None:
        _warn("Failed to infer the model signature from the input example (a %s)"
              % type(data).__name__)
        return None
    try:
        pred = getattr(sk_model, predict_fn)(data)
    except Exception as e:  # noqa: BLE001 - as MLflow: a warning, and no outputs
        _warn("Failed to infer the model signature's outputs from the input example: %s" % e)
        return ModelSignature(inputs, None)
    return ModelSignature(inputs, _infer_schema(pred))


def _record_history(run, model):
    """The run tag mlflow.log-model.history, as MLflow's server keeps it (runs/log-model:
    a JSON list, one get_tags_dict() entry appended per model logged)."""
    import json
    rid = run.info.run_id
    prior = _history.get(rid)
    if prior is None:
        prior = []
        if run.client is not None and run.client.tracking_uri and run.info.run_id:
            # a run resumed from elsewhere may have models already
            try:
                rest = _rest.Rest(run.client.tracking_uri, getattr(run.client, "_options", None))
                tags = {t["key"]: t["value"] for t in rest.get("runs/get", run_id=rid)
                        ["run"].get("data", {}).get("tags", ())}
                prior = json.loads(tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
            except (MloError, ValueError):
                prior = []
    value = json.dumps(prior + [model.get_tags_dict()])
    if len(value) > MAX_TAG_VALUE:
        # MLflow's server refuses it (the tag limit) and MLflow warns: the same here
        _warn("Logging model metadata to the tracking server has failed (the %s tag would be "
              "%d characters, over %d). The model artifacts have been logged successfully."
              % (LOG_MODEL_HISTORY_TAG, len(value), MAX_TAG_VALUE))
        return
    run.set_tag(LOG_MODEL_HISTORY_TAG, value)
    _history[rid] = prior + [model.get_tags_dict()]


def log_model(sk_model, artifact_path, conda_env=None, code_paths=None,
              serialization_format=SERIALIZATION_FORMAT_PICKLE, registered_model_name=None,
              signature=None, input_example=None, await_registration_for=300,
              pip_requirements=None, extra_pip_requirements=None, pyfunc_predict_fn="predict",
              metadata=None, *, run_id=None):
    """Logs a scikit-learn model as the artifacts under artifact_path of the active run
    (started if none; or run_id's), as mlflow.sklearn.log_model: the model directory of
    save_model, the run tag mlflow.log-model.history, and a new version of the
    registered model registered_model_name when given (created if missing; the
    registration waits for the run's uploads).  serialization_format "pickle" (default
    here: no cloudpickle needed) or "cloudpickle".  Returns a ModelInfo
    (model_uri "runs:/<run_id>/<artifact_path>")."""
    run = _fluent._run(run_id)
    apath = str(artifact_path).strip("/")
    if not apath:
        raise _fluent._einval("artifact_path must name the model's directory (\"model\")")
    model = Model(artifact_path=apath, run_id=run.info.run_id)
    tmp = tempfile.mkdtemp(prefix="mlo-model-")
    try:
        local = os.path.join(tmp, "model")
        save_model(sk_model, local, conda_env=conda_env, code_paths=code_paths, mlflow_model=model,
                   serialization_format=serialization_format, signature=signature,
                   input_example=input_example, pip_requirements=pip_requirements,
                   extra_pip_requirements=extra_pip_requirements,
                   pyfunc_predict_fn=pyfunc_predict_fn, metadata=metadata)
        run.log_artifact(local, apath)  # in the store when this returns
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _record_history(run, model)
    version = None
    if registered_model_name is not None:
        version = run.register_model(apath, registered_model_name)
    return ModelInfo(model, "runs:/%s/%s" % (run.info.run_id, apath), version)


def _load_model_from_local_file(path, serialization_format):
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise ValueError("Unrecognized serialization format: %s. Please specify one of the "
                         "following supported formats: %s."
                         % (serialization_format, SUPPORTED_SERIALIZATION_FORMATS))
    with open(path, "rb") as f:
        if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
            try:
                import cloudpickle
            except ImportError:
                return pickle.load(f)  # cloudpickle's output is readable by pickle mostly
            return cloudpickle.load(f)
        return pickle.load(f)


def load_model(model_uri, dst_path=None):
    """The scikit-learn model at model_uri: "runs:/<run_id>/<path>",
    "models:/<name>/<version>", "models:/<name>@<alias>" (downloaded from the tracking
    server into dst_path, default a temporary directory), or a local directory written
    by mlo's or MLflow's mlflow.sklearn."""
    local = local_model_dir(model_uri, dst_path)
    model = Model.load(local)
    conf = model.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise _rest.not_supported("load_model(%r): the model has no sklearn flavor (flavors: %s)"
                                  % (str(model_uri), ", ".join(model.flavors) or "none"),
                                  "mlo.pyfunc.load_model for other python_function models")
    return _load_model_from_local_file(os.path.join(local, conf["pickled_model"]),
                                       conf.get("serialization_format",
                                                SERIALIZATION_FORMAT_PICKLE))


def autolog(*args, **kwargs):
    raise _rest.not_supported("mlo.sklearn.autolog", "log params and metrics with "
                              "mlo.log_params / mlo.log_metrics and the model with "
                              "mlo.sklearn.log_model")


__all__ = ["log_model", "save_model", "load_model", "get_default_pip_requirements",
           "SERIALIZATION_FORMAT_PICKLE", "SERIALIZATION_FORMAT_CLOUDPICKLE",
           "SUPPORTED_SERIALIZATION_FORMATS", "FLAVOR_NAME"]
