"""The python_function flavor of the models mlo writes (mlflow.pyfunc, in part):

    model = mlo.pyfunc.load_model("runs:/<run_id>/model")
    labels = model.predict(X)

load_model reads a model directory whose python_function flavor mlo can serve without
MLflow: loader_module mlflow.sklearn (what mlo.sklearn and mlflow.sklearn write).  The
input is passed to the model's predict function as it is (MLflow's signature
enforcement is not applied).  Other flavors raise MloNotSupportedError."""

import os

from . import _rest
from .models import Model, local_model_dir

FLAVOR_NAME = "python_function"


class PyFuncModel:
    """A loaded python_function model: predict(data), metadata (the Model), and
    unwrap_python_model() / the native model as .model_impl."""

    def __init__(self, metadata, impl, predict_fn):
        self.metadata = metadata
        self.model_impl = impl
        self._predict = getattr(impl, predict_fn)

    def predict(self, data, params=None):
        if params:
            raise _rest.not_supported("PyFuncModel.predict(params=...)", "predict(data)")
        return self._predict(data)

    def __repr__(self):
        return "mlo.pyfunc.PyFuncModel(flavor: %s)" % ", ".join(self.metadata.flavors)


def load_model(model_uri, suppress_warnings=False, dst_path=None):
    local = local_model_dir(model_uri, dst_path, "mlo.pyfunc.load_model")
    model = Model.load(local)
    conf = model.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise _rest.not_supported("mlo.pyfunc.load_model(%r): no python_function flavor"
                                  % str(model_uri), "the flavor's own load_model")
    loader = conf.get("loader_module")
    if loader != "mlflow.sklearn":
        raise _rest.not_supported("mlo.pyfunc.load_model: loader_module %r" % loader,
                                  "mlo.sklearn.load_model (mlo serves scikit-learn models)")
    from . import sklearn
    skconf = model.flavors.get("sklearn", {})
    impl = sklearn._load_model_from_local_file(
        os.path.join(local, conf.get("model_path") or skconf.get("pickled_model", "model.pkl")),
        skconf.get("serialization_format", "pickle"))
    return PyFuncModel(model, impl, conf.get("predict_fn", "predict"))
