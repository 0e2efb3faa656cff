"""MLflow's model format, written and read without MLflow (as mlflow.models).

A model directory as MLflow 2.x's flavors write it (mlflow.sklearn.save_model):

    MLmodel                      YAML: artifact_path, flavors, mlflow_version,
                                 model_size_bytes, model_uuid, run_id, signature,
                                 saved_input_example_info, utc_time_created, metadata
    <model file>                 the flavor's data (model.pkl for sklearn)
    conda.yaml                   {channels: [conda-forge], dependencies: [python=X.Y.Z,
                                 pip<=V, {pip: <requirements>}], name: mlflow-env}
    python_env.yaml              python, build_dependencies (pip, setuptools, wheel),
                                 dependencies: [-r requirements.txt]
    requirements.txt             mlflow==<MLFLOW_VERSION> then the flavor's pinned packages
    input_example.json           when an input example is given, with
    serving_input_example.json   its form for the scoring server

The field names, their order in the run tag mlflow.log-model.history, the YAML and the
JSON layouts follow MLflow's sources (mlflow/models/model.py Model.to_dict /
get_tags_dict, mlflow/pyfunc add_to_model, mlflow/utils/environment.py,
mlflow/models/signature.py and mlflow/types/schema.py, mlflow/models/utils.py
_Example), as of MLflow 2.21; MLflow's mlflow.sklearn.load_model and
mlflow.pyfunc.load_model read these directories.  YAML is written by the standard
library (mlo._yaml, byte for byte what PyYAML's safe_dump writes).
"""

import datetime
import json
import math
import os
import sys
import uuid
import warnings

from . import _yaml
from ._errors import MloWarning

# The MLflow release whose model format mlo writes: the MLmodel's mlflow_version and the
# mlflow requirement of requirements.txt / conda.yaml (what serving installs).
MLFLOW_VERSION = "2.21.2"

MLMODEL_FILE_NAME = "MLmodel"
CONDA_ENV_FILE_NAME = "conda.yaml"
PYTHON_ENV_FILE_NAME = "python_env.yaml"
REQUIREMENTS_FILE_NAME = "requirements.txt"
CONSTRAINTS_FILE_NAME = "constraints.txt"
EXAMPLE_FILENAME = "input_example.json"
SERVING_INPUT_FILENAME = "serving_input_example.json"
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
MAX_TAG_VALUE = 8000

PYTHON_VERSION = "%d.%d.%d" % sys.version_info[:3]


def _warn(msg):
    warnings.warn(MloWarning(0, "", msg, "MLO_MODEL"), stacklevel=3)


# ---- schemas and signatures (mlflow/types/schema.py, mlflow/models/signature.py) -------------


def _numpy_dtype_to_datatype(dtype):
    """The MLflow DataType name of a numpy/pandas column dtype (mlflow's
    _infer_numpy_dtype)."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind in "iu":
        if kind == "u" and size >= 8:
            return "double"  # MLflow maps uint64 to a double (with a warning)
        if kind == "u" and size >= 4:
            return "long"
        return "integer" if size <= 4 else "long"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind in "US":
        return "string" if kind == "U" else "binary"
    return None


def _pandas_column_type(series):
    t = _numpy_dtype_to_datatype(series.dtype)
    if t is not None:
        return t
    if series.dtype.kind == "O":  # object: str, bytes, ...
        values = series.dropna()
        if len(values) and all(isinstance(v, str) for v in values):
            return "string"
        if len(values) and all(isinstance(v, (bytes, bytearray)) for v in values):
            return "binary"
        if len(values) and all(isinstance(v, bool) for v in values):
            return "boolean"
    if str(series.dtype) in ("string", "str"):
        return "string"
    return None


def _infer_schema(data):
    """A schema (list of column or tensor specs, as dicts in MLflow's JSON form) of numpy
    or pandas data, or None when mlo cannot infer one."""
    mod = type(data).__module__.split(".")[0]
    if mod == "numpy" and hasattr(data, "dtype") and hasattr(data, "shape"):
        if data.dtype.kind == "O":
            return None
        shape = [-1] + [int(x) for x in data.shape[1:]] if data.ndim else []
        return [{"type": "tensor", "tensor-spec": {"dtype": str(data.dtype), "shape": shape}}]
    if mod == "pandas" and hasattr(data, "columns"):
        out = []
        for col in data.columns:
            t = _pandas_column_type(data[col])
            if t is None:
                return None
            out.append({"type": t, "name": str(col), "required": True})
        return out
    if mod == "pandas" and hasattr(data, "dtype"):  # a Series
        t = _pandas_column_type(data)
        if t is None:
            return None
        spec = {"type": t}
        if getattr(data, "name", None) is not None:
            spec["name"] = str(data.name)
        spec["required"] = True
        return [spec]
    if isinstance(data, dict) and data and all(type(v).__module__ == "numpy"
                                               and hasattr(v, "dtype") for v in data.values()):
        return [{"name": str(k), "type": "tensor",
                 "tensor-spec": {"dtype": str(v.dtype),
                                 "shape": [-1] + [int(x) for x in v.shape[1:]]}}
                for k, v in data.items()]
    return None


class ModelSignature:
    """The input and output schemas of a model (mlflow.models.ModelSignature): inputs and
    outputs are lists of MLflow column or tensor specs (dicts); params is not inferred
    by mlo (None)."""

    def __init__(self, inputs=None, outputs=None, params=None):
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self):
        """As MLflow stores it in MLmodel: each schema a JSON string."""
        return {"inputs": json.dumps(self.inputs) if self.inputs is not None else None,
                "outputs": json.dumps(self.outputs) if self.outputs is not None else None,
                "params": json.dumps(self.params) if self.params else None}

    @classmethod
    def from_dict(cls, d):
        def parse(v):
            return json.loads(v) if isinstance(v, str) else v
        return cls(parse(d.get("inputs")), parse(d.get("outputs")), parse(d.get("params")))

    def __eq__(self, other):
        return isinstance(other, ModelSignature) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "ModelSignature(inputs=%r, outputs=%r)" % (self.inputs, self.outputs)


def infer_signature(model_input, model_output=None, params=None):
    """The signature of numpy arrays, pandas DataFrames or Series (mlflow's
    infer_signature; params are not supported)."""
    if params:
        raise ValueError("mlo.models.infer_signature does not infer params")
    inputs = _infer_schema(model_input)
    if inputs is None:
        raise TypeError("cannot infer a schema from %s (numpy arrays, pandas DataFrames or "
                        "Series)" % type(model_input).__name__)
    outputs = _infer_schema(model_output) if model_output is not None else None
    if model_output is not None and outputs is None:
        raise TypeError("cannot infer a schema from %s" % type(model_output).__name__)
    return ModelSignature(inputs, outputs)


# ---- input examples (mlflow/models/utils.py _Example) -----------------------------------------


def _jsonable(x):
    """numpy scalars and arrays as Python values; NaN as None (as MLflow's examples)."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if type(x).__module__ == "numpy":
        if hasattr(x, "tolist"):
            return _jsonable(x.tolist())
    if isinstance(x, (bytes, bytearray)):
        import base64
        return base64.encodebytes(bytes(x)).decode("ascii")
    if isinstance(x, (datetime.datetime, datetime.date)):
        return x.isoformat()
    return x


class _Example:
    def __init__(self, example):
        mod = type(example).__module__.split(".")[0]
        self.info = {"artifact_path": EXAMPLE_FILENAME}
        self.data = example
        if mod == "numpy" and hasattr(example, "dtype"):
            value = _jsonable(example)
            self.info["type"] = "ndarray"
            serving = {"inputs": value}
        elif mod == "pandas" and hasattr(example, "columns"):
            split = example.where(example.notnull(), None).to_dict(orient="split")
            del split["index"]
            if list(example.columns) == list(range(len(example.columns))):
                del split["columns"]
            value = _jsonable(split)
            serving = {"dataframe_split": value}
            self.info.update({"type": "dataframe",
                              "pandas_orient": "split" if "columns" in value else "values"})
        elif isinstance(example, dict) and example and all(
                type(v).__module__ == "numpy" and hasattr(v, "dtype") for v in example.values()):
            value = _jsonable(example)
            self.info["type"] = "ndarray"
            serving = {"inputs": value}
        elif isinstance(example, (dict, list, str, int, float, bool)):
            value = _jsonable(example)
            self.info["type"] = "json_object"
            serving = {"inputs": value}
        else:
            raise TypeError("input_example must be a numpy array, a pandas DataFrame, a dict or "
                            "a list, not %s" % type(example).__name__)
        self.json_input_example = json.dumps(value)
        self.json_serving_input = json.dumps(serving, indent=2)
        self.info["serving_input_path"] = SERVING_INPUT_FILENAME

    def save(self, path):
        with open(os.path.join(path, EXAMPLE_FILENAME), "w") as f:
            f.write(self.json_input_example)
        with open(os.path.join(path, SERVING_INPUT_FILENAME), "w") as f:
            f.write(self.json_serving_input)


# ---- environments (mlflow/utils/environment.py) ---------------------------------------------


def _installed_version(package, module=None):
    try:
        from importlib.metadata import version
        v = version(package)
    except Exception:  # noqa: BLE001 - not installed, or no metadata
        try:
            v = getattr(__import__(module or package), "__version__", None)
        except ImportError:
            v = None
    if v and "+" in v:
        v = v.split("+", 1)[0]  # a local version label cannot be installed from PyPI
    return v


def pinned_requirement(package, module=None):
    """"package==<installed version>", or None when it is not installed."""
    v = _installed_version(package, module)
    return "%s==%s" % (package, v) if v else None


def _parse_requirements(reqs):
    """(requirements, constraints) of a list of requirement strings or a requirements
    file path."""
    if isinstance(reqs, (str, os.PathLike)):
        with open(reqs) as f:
            lines = f.read().splitlines()
    else:
        lines = [str(r) for r in reqs]
    out, cons = [], []
    for ln in lines:
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        if ln.startswith("-c "):
            with open(ln[3:].strip()) as f:
                cons.extend(x.strip() for x in f.read().splitlines() if x.strip())
            continue
        out.append(ln)
    return out, cons


def _is_mlflow(req):
    name = req.split(";")[0]
    for sep in ("==", ">=", "<=", "!=", "~=", "<", ">", "[", " "):
        name = name.split(sep)[0]
    return name.strip().lower() in ("mlflow", "mlflow-skinny")


def process_requirements(default_reqs, pip_requirements=None, extra_pip_requirements=None):
    """(conda_env, requirements, constraints), as mlflow's _process_pip_requirements."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise ValueError("Only one of `conda_env`, `pip_requirements`, and "
                         "`extra_pip_requirements` can be specified")
    cons = []
    if pip_requirements is not None:
        reqs, cons = _parse_requirements(pip_requirements)
    elif extra_pip_requirements is not None:
        extra, cons = _parse_requirements(extra_pip_requirements)
        reqs = list(default_reqs) + extra
    else:
        reqs = list(default_reqs)
    if not any(_is_mlflow(r) for r in reqs):
        reqs.insert(0, "mlflow==" + MLFLOW_VERSION)
    if cons:
        reqs.append("-c " + CONSTRAINTS_FILE_NAME)
    return conda_env(reqs), reqs, cons


def conda_env(pip_reqs):
    """mlflow's _mlflow_conda_env(additional_pip_deps=pip_reqs, install_mlflow=False)."""
    pip = _installed_version("pip")
    return {"name": "mlflow-env", "channels": ["conda-forge"],
            "dependencies": ["python=" + PYTHON_VERSION, "pip<=" + pip if pip else "pip",
                             {"pip": list(pip_reqs)}]}


def python_env():
    """mlflow's _PythonEnv.current(): python, build_dependencies, dependencies."""
    build = []
    for p in ("pip", "setuptools", "wheel"):
        v = _installed_version(p)
        build.append("%s==%s" % (p, v) if v else p)
    return {"python": PYTHON_VERSION, "build_dependencies": build,
            "dependencies": ["-r " + REQUIREMENTS_FILE_NAME]}


def write_environment(path, conda, reqs, cons):
    with open(os.path.join(path, CONDA_ENV_FILE_NAME), "w") as f:
        f.write(_yaml.dump(conda))
    if cons:
        with open(os.path.join(path, CONSTRAINTS_FILE_NAME), "w") as f:
            f.write("\n".join(cons))
    with open(os.path.join(path, REQUIREMENTS_FILE_NAME), "w") as f:
        f.write("\n".join(reqs))
    with open(os.path.join(path, PYTHON_ENV_FILE_NAME), "w") as f:
        f.write(_yaml.dump({k: v for k, v in python_env().items() if v}, sort_keys=False))


# ---- the MLmodel file (mlflow/models/model.py) ----------------------------------------------


class Model:
    """An MLmodel: the flavors of a model directory and its metadata."""

    def __init__(self, artifact_path=None, run_id=None, utc_time_created=None, flavors=None,
                 signature=None, saved_input_example_info=None, model_uuid=None,
                 mlflow_version=MLFLOW_VERSION, metadata=None, model_size_bytes=None, **extra):
        # the attribute order is MLflow's: Model.to_dict() and get_tags_dict() follow it
        self.run_id = run_id
        self.artifact_path = artifact_path
        self.utc_time_created = str(utc_time_created or
                                    datetime.datetime.now(datetime.timezone.utc)
                                    .replace(tzinfo=None))
        self.flavors = flavors if flavors is not None else {}
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.mlflow_version = mlflow_version
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.extra = extra  # fields of newer MLflow versions, kept as read

    def add_flavor(self, name, **params):
        self.flavors[name] = params
        return self

    def to_dict(self):
        res = {}
        if self.run_id is not None:
            res["run_id"] = self.run_id
        if self.artifact_path is not None:
            res["artifact_path"] = self.artifact_path
        res["utc_time_created"] = self.utc_time_created
        res["flavors"] = self.flavors
        if self.model_uuid is not None:
            res["model_uuid"] = self.model_uuid
        if self.mlflow_version is not None:
            res["mlflow_version"] = self.mlflow_version
        res.update(self.extra)
        if self.signature is not None:
            res["signature"] = self.signature.to_dict()
        if self.saved_input_example_info is not None:
            res["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata is not None:
            res["metadata"] = self.metadata
        if self.model_size_bytes is not None:
            res["model_size_bytes"] = self.model_size_bytes
        return res

    def get_tags_dict(self):
        """The entry of the run tag mlflow.log-model.history (Model.get_tags_dict)."""
        d = self.to_dict()
        tags = {k: v for k, v in d.items()
                if k in ("run_id", "utc_time_created", "artifact_path", "model_uuid")}
        tags["flavors"] = {f: ({k: v for k, v in c.items() if k != "config"}
                               if isinstance(c, dict) else c)
                           for f, c in d.get("flavors", {}).items()}
        return tags

    def to_yaml(self):
        return _yaml.dump(self.to_dict())

    def save(self, path):
        with open(path, "w") as f:
            f.write(self.to_yaml())

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if isinstance(d.get("signature"), dict):
            d["signature"] = ModelSignature.from_dict(d["signature"])
        d.setdefault("mlflow_version", None)
        return cls(**d)

    @classmethod
    def load(cls, path):
        """The Model of a directory (or of its MLmodel file)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, MLMODEL_FILE_NAME)
        with open(path) as f:
            return cls.from_dict(_yaml.safe_load(f.read()) or {})

    def get_model_info(self, model_uri=None):
        return ModelInfo(self, model_uri or "runs:/%s/%s" % (self.run_id, self.artifact_path))


class ModelInfo:
    """What log_model returns (mlflow.models.model.ModelInfo)."""

    def __init__(self, model, model_uri, registered_model_version=None):
        self.artifact_path = model.artifact_path
        self.flavors = model.flavors
        self.model_uri = model_uri
        self.model_uuid = model.model_uuid
        self.run_id = model.run_id
        self.saved_input_example_info = model.saved_input_example_info
        self.signature = model.signature
        self.utc_time_created = model.utc_time_created
        self.mlflow_version = model.mlflow_version
        self.metadata = model.metadata
        self.registered_model_version = registered_model_version

    def __repr__(self):
        return "<ModelInfo %s>" % self.model_uri


def add_pyfunc_flavor(model, loader_module, model_path, predict_fn="predict", code=None):
    """mlflow.pyfunc.add_to_model as the sklearn flavor calls it."""
    params = {"model_path": model_path, "predict_fn": predict_fn,
              "loader_module": loader_module, "python_version": PYTHON_VERSION}
    if code:
        params["code"] = code
    params["env"] = {"conda": CONDA_ENV_FILE_NAME, "virtualenv": PYTHON_ENV_FILE_NAME}
    return model.add_flavor("python_function", **params)


def total_file_size(path):
    total = 0
    for d, _, files in os.walk(path):
        for fn in files:
            total += os.path.getsize(os.path.join(d, fn))
    return total


def prepare_target(path):
    """mlflow's _validate_and_prepare_target_save_path: a new or empty directory."""
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError("Path '%s' already exists and is not empty" % path)
    os.makedirs(path, exist_ok=True)


# ---- model URIs -----------------------------------------------------------------------------


def local_model_dir(model_uri, dst_path=None, what="load_model"):
    """A local directory holding the model at model_uri: runs:/<id>/<path>,
    models:/<name>/<version>, models:/<name>@<alias> (downloaded from the tracking
    server), file:// or a local path."""
    from . import _fluent, _rest
    uri = os.fspath(model_uri) if hasattr(model_uri, "__fspath__") else str(model_uri)
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit
        return unquote(urlsplit(uri).path)
    if uri.startswith(("runs:/", "models:/")):
        if not _fluent.get_tracking_uri():
            raise _rest.not_supported(
                "%s(%r) needs a tracking server (without one, the model is in the local "
                "store)" % (what, uri), "`mlo sync` the store to a server first, or load "
                "the model from a directory (mlo.sklearn.save_model)")
        client = _fluent.get_client()
        if uri.startswith("runs:/"):
            # this process's uploads of that run first, as mlflow's synchronous logging
            client.flush()
        return client.download_artifacts(uri, None, dst_path)
    if "://" in uri or ":/" in uri.split("/")[0]:
        raise _rest.not_supported("%s(%r)" % (what, uri), "a runs:/ or models:/ URI, or a "
                                  "local path")
    return uri


def get_model_info(model_uri):
    """The ModelInfo of a model (mlflow.models.get_model_info)."""
    m = Model.load(local_model_dir(model_uri, what="get_model_info"))
    return m.get_model_info(str(model_uri))
