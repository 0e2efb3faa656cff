#!/usr/bin/python3
"""mlo.sklearn writes MLflow's model directory (issue 14, item 1).  The expectations are
MLflow 2.x's, from its sources:

  mlflow/sklearn/__init__.py  save_model: model.pkl (pickle.dump), the python_function
      flavor (pyfunc.add_to_model: loader_module mlflow.sklearn, model_path, predict_fn,
      python_version, env {conda: conda.yaml, virtualenv: python_env.yaml}) and the sklearn
      flavor (pickled_model, sklearn_version, serialization_format, code: null);
      model_size_bytes = the size of the directory before MLmodel is written; then
      conda.yaml, requirements.txt, python_env.yaml;
  mlflow/models/model.py  Model.to_dict (artifact_path, flavors, mlflow_version,
      model_uuid (32 hex), run_id, utc_time_created "YYYY-MM-DD HH:MM:SS.ffffff",
      signature, saved_input_example_info), written by yaml.safe_dump(default_flow_style=
      False); get_tags_dict, the entry of the run tag mlflow.log-model.history (run_id,
      artifact_path, utc_time_created, model_uuid, then flavors), a JSON list the server
      appends to per model;
  mlflow/models/signature.py, mlflow/types/schema.py  ModelSignature.to_dict: inputs and
      outputs as JSON strings of [{"type": "tensor", "tensor-spec": {"dtype": "float64",
      "shape": [-1, 4]}}] for numpy, params null;
  mlflow/models/utils.py  _Example: input_example.json (the array as a JSON list),
      serving_input_example.json ({"inputs": ...}, indent 2), saved_input_example_info
      {artifact_path, type: ndarray, serving_input_path};
  mlflow/utils/environment.py  requirements.txt ("\\n".join, mlflow pinned first),
      conda.yaml {channels: [conda-forge], dependencies: [python=X.Y.Z, pip<=V, {pip:
      reqs}], name: mlflow-env}, python_env.yaml (python, build_dependencies, dependencies
      [-r requirements.txt]; not key-sorted).

Every YAML file must also be what PyYAML's safe_dump writes for its data (byte for byte),
and read back by mlo's standard-library reader as PyYAML reads it.  Then log_model
against the test server: the files in the artifact root, the tag (two models in one
run), registration, and load_model from runs:/, models:/name/version, models:/name@alias
and a local path predicting as the model does.  Exits 77 without scikit-learn / PyYAML.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mlo_testserver import TestServer  # noqa: E402

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)
try:
    import numpy as np
    import sklearn
    import yaml
except ImportError as e:
    print("skipped: %s (apt-get install python3-sklearn python3-yaml)" % e)
    sys.exit(77)

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

# this process's own client (loading models) keeps its store out of the build directory
STORE = tempfile.mkdtemp(prefix="mlo-test-store-")
os.environ["MLO_STORE_DIR"] = STORE
import atexit  # noqa: E402
atexit.register(shutil.rmtree, STORE, True)

import mlo  # noqa: E402
import mlo.models  # noqa: E402
import mlo.pyfunc  # noqa: E402
import mlo.sklearn  # noqa: E402
from mlo import _yaml  # noqa: E402

X, Y = load_iris(return_X_y=True)
PY = "%d.%d.%d" % sys.version_info[:3]


def version(pkg):
    from importlib.metadata import version as v
    return v(pkg).split("+")[0]


class TestSaveModel(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mlo-sklearn-")
        self.model = DecisionTreeClassifier(random_state=0).fit(X, Y)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def read(self, path, name):
        with open(os.path.join(path, name)) as f:
            return f.read()

    def test_mlmodel_fields_and_files(self):
        path = os.path.join(self.tmp, "m")
        mlo.sklearn.save_model(self.model, path, input_example=X[:3])
        self.assertEqual(sorted(os.listdir(path)),
                         ["MLmodel", "conda.yaml", "input_example.json", "model.pkl",
                          "python_env.yaml", "requirements.txt", "serving_input_example.json"])
        text = self.read(path, "MLmodel")
        m = yaml.safe_load(text)
        self.assertEqual(text, yaml.safe_dump(m, default_flow_style=False))
        self.assertEqual(set(m), {"flavors", "mlflow_version", "model_size_bytes", "model_uuid",
                                  "utc_time_created", "signature", "saved_input_example_info"})
        self.assertEqual(m["flavors"], {
            "python_function": {"env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                                "loader_module": "mlflow.sklearn", "model_path": "model.pkl",
                                "predict_fn": "predict", "python_version": PY},
            "sklearn": {"code": None, "pickled_model": "model.pkl",
                        "serialization_format": "pickle",
                        "sklearn_version": sklearn.__version__}})
        self.assertEqual(m["mlflow_version"], mlo.models.MLFLOW_VERSION)
        self.assertRegex(m["model_uuid"], r"^[0-9a-f]{32}$")
        self.assertRegex(m["utc_time_created"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
        self.assertIsInstance(m["utc_time_created"], str)  # quoted, not a YAML timestamp
        self.assertEqual(m["model_size_bytes"], sum(
            os.path.getsize(os.path.join(path, f)) for f in
            ("model.pkl", "input_example.json", "serving_input_example.json")))
        # the signature inferred from the example: its tensor and the prediction's
        self.assertEqual(m["signature"]["params"], None)
        self.assertEqual(json.loads(m["signature"]["inputs"]),
                         [{"type": "tensor", "tensor-spec": {"dtype": "float64",
                                                           "shape": [-1, 4]}}])
        self.assertEqual(json.loads(m["signature"]["outputs"]),
                         [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}])
        self.assertEqual(m["saved_input_example_info"],
                         {"artifact_path": "input_example.json", "type": "ndarray",
                          "serving_input_path": "serving_input_example.json"})
        self.assertEqual(self.read(path, "input_example.json"), json.dumps(X[:3].tolist()))
        self.assertEqual(self.read(path, "serving_input_example.json"),
                         json.dumps({"inputs": X[:3].tolist()}, indent=2))
        # the environment
        reqs = self.read(path, "requirements.txt")
        self.assertEqual(reqs.split("\n"), [
            "mlflow==" + mlo.models.MLFLOW_VERSION, "numpy==" + version("numpy"),
            "scikit-learn==" + version("scikit-learn"), "scipy==" + version("scipy")])
        conda_text = self.read(path, "conda.yaml")
        conda = yaml.safe_load(conda_text)
        self.assertEqual(conda_text, yaml.safe_dump(conda, default_flow_style=False))
        self.assertEqual(conda, {"channels": ["conda-forge"], "name": "mlflow-env",
                                 "dependencies": ["python=" + PY, "pip<=" + version("pip"),
                                                  {"pip": reqs.split("\n")}]})
        env_text = self.read(path, "python_env.yaml")
        env = yaml.safe_load(env_text)
        self.assertEqual(env_text, yaml.safe_dump(env, default_flow_style=False,
                                                  sort_keys=False))
        self.assertEqual(list(env), ["python", "build_dependencies", "dependencies"])
        self.assertEqual(env["python"], PY)
        self.assertEqual(env["dependencies"], ["-r requirements.txt"])
        self.assertEqual([re.split("==", b)[0] for b in env["build_dependencies"]],
                         ["pip", "setuptools", "wheel"])
        # mlo's own YAML reader (used without PyYAML) reads what PyYAML reads
        for name in ("MLmodel", "conda.yaml", "python_env.yaml"):
            self.assertEqual(_yaml.load(self.read(path, name)),
                             yaml.safe_load(self.read(path, name)), name)
        # loaded back: the same predictions
        for loaded in (mlo.sklearn.load_model(path), mlo.pyfunc.load_model(path)):
            self.assertEqual(loaded.predict(X).tolist(), self.model.predict(X).tolist())

    def test_options(self):
        path = os.path.join(self.tmp, "m")
        sig = mlo.models.infer_signature(X, self.model.predict(X))
        mlo.sklearn.save_model(self.model, path, signature=sig,
                               pip_requirements=["scikit-learn", "numpy<2"],
                               metadata={"owner": "ml team", "n": 3})
        m = yaml.safe_load(self.read(path, "MLmodel"))
        self.assertNotIn("saved_input_example_info", m)
        self.assertEqual(m["metadata"], {"owner": "ml team", "n": 3})
        self.assertEqual(mlo.models.ModelSignature.from_dict(m["signature"]), sig)
        self.assertEqual(self.read(path, "requirements.txt").split("\n"),
                         ["mlflow==" + mlo.models.MLFLOW_VERSION, "scikit-learn", "numpy<2"])
        path2 = os.path.join(self.tmp, "m2")
        mlo.sklearn.save_model(self.model, path2, signature=False, input_example=X[:2],
                               extra_pip_requirements=["joblib"])
        m2 = yaml.safe_load(self.read(path2, "MLmodel"))
        self.assertNotIn("signature", m2)
        self.assertEqual(self.read(path2, "requirements.txt").split("\n")[-1], "joblib")
        with self.assertRaises(FileExistsError):
            mlo.sklearn.save_model(self.model, path)  # not empty
        with self.assertRaises(ValueError):
            mlo.sklearn.save_model(self.model, os.path.join(self.tmp, "x"),
                                   serialization_format="joblib")
        with self.assertRaises(mlo.MloNotSupportedError):
            mlo.sklearn.save_model(self.model, os.path.join(self.tmp, "y"),
                                   conda_env={"name": "x"})
        # a model without predict: no python_function flavor (and a warning)
        from sklearn.preprocessing import StandardScaler
        with self.assertWarns(mlo.MloWarning):
            mlo.sklearn.save_model(StandardScaler().fit(X), os.path.join(self.tmp, "s"))
        m3 = yaml.safe_load(self.read(os.path.join(self.tmp, "s"), "MLmodel"))
        self.assertEqual(list(m3["flavors"]), ["sklearn"])

    def test_yaml_reader_reads_mlflow_files(self):
        # the shapes of MLflow's own MLmodel files: a long signature folded at 80 columns,
        # quoted timestamps, null, nested env, indentless sequences
        doc = {"artifact_path": "model", "flavors": {"python_function": {
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "loader_module": "mlflow.sklearn", "model_path": "model.pkl",
            "python_version": "3.10.12"}, "sklearn": {"code": None}},
            "signature": {"inputs": json.dumps([{"type": "double", "name": "sepal length (cm)",
                                                 "required": True}] * 4), "params": None},
            "run_id": "0123", "utc_time_created": "2024-01-15 10:30:45.123456",
            "metadata": {"list": [[1, 2], {"a": "b"}], "f": 1.5, "t": True, "s": "yes"}}
        text = yaml.safe_dump(doc, default_flow_style=False)
        self.assertIn("\n    ", text)  # the signature is folded over lines
        self.assertEqual(_yaml.load(text), doc)
        self.assertEqual(_yaml.dump(doc), text)


class TestLogModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.art = tempfile.mkdtemp(prefix="mlo-sklearn-art-")
        cls.server = TestServer("--artifact-root", cls.art)
        mlo.set_tracking_uri(cls.server.url)

    @classmethod
    def tearDownClass(cls):
        mlo.set_tracking_uri(None)
        cls.server.stop()
        shutil.rmtree(cls.art, ignore_errors=True)

    def model_dir(self, run, path):
        uri = run["info"]["artifact_uri"]
        return os.path.join(self.art, *uri[len("mlflow-artifacts:/"):].strip("/").split("/"),
                            *path.split("/"))

    def test_log_register_and_load(self):
        tree = DecisionTreeClassifier(random_state=1).fit(X, Y)
        logreg = LogisticRegression(max_iter=300).fit(X, Y)
        mlo.set_experiment("sklearn-log")
        with mlo.start_run() as run:
            info = mlo.sklearn.log_model(tree, "model", registered_model_name="iris-tree",
                                         input_example=X[:2])
            info2 = mlo.sklearn.log_model(logreg, "models/logreg")
        rid = run.info.run_id
        self.assertEqual(info.model_uri, "runs:/%s/model" % rid)
        self.assertEqual(info.run_id, rid)
        self.assertEqual(info.registered_model_version, 1)
        self.assertEqual(info.flavors["sklearn"]["pickled_model"], "model.pkl")
        mlo.flush(30)
        stored = self.server.run(rid)
        history = json.loads(stored["tags"]["mlflow.log-model.history"])
        self.assertEqual([h["artifact_path"] for h in history], ["model", "models/logreg"])
        self.assertEqual([h["model_uuid"] for h in history], [info.model_uuid, info2.model_uuid])
        for h, path in zip(history, ("model", "models/logreg")):
            d = self.model_dir(stored, path)
            self.assertTrue({"MLmodel", "model.pkl", "conda.yaml", "python_env.yaml",
                             "requirements.txt"} <= set(os.listdir(d)), os.listdir(d))
            with open(os.path.join(d, "MLmodel")) as f:
                m = yaml.safe_load(f)
            self.assertEqual((m["run_id"], m["artifact_path"], m["model_uuid"]),
                             (rid, path, h["model_uuid"]))
            self.assertEqual(h, {"run_id": rid, "artifact_path": path,
                                 "utc_time_created": m["utc_time_created"],
                                 "model_uuid": m["model_uuid"], "flavors": m["flavors"]})
        # the registry: version 1 of iris-tree is the run's "model"
        reg = {m["name"]: m for m in self.server.dump()["registered_models"]}
        self.assertEqual([(v["version"], v["run_id"], v["source"])
                          for v in reg["iris-tree"]["versions"]],
                         [("1", rid, stored["info"]["artifact_uri"] + "/model")])
        mlo.get_client().set_model_alias("iris-tree", "champion", 1)
        want = tree.predict(X).tolist()
        for uri in ("runs:/%s/model" % rid, "models:/iris-tree/1", "models:/iris-tree@champion"):
            with self.subTest(uri=uri):
                self.assertEqual(mlo.sklearn.load_model(uri).predict(X).tolist(), want)
        self.assertEqual(mlo.sklearn.load_model("runs:/%s/models/logreg" % rid).predict(X).tolist(),
                         logreg.predict(X).tolist())
        dst = tempfile.mkdtemp(prefix="mlo-dl-")
        try:
            mlo.sklearn.load_model("runs:/%s/model" % rid, dst_path=dst)
            self.assertTrue(os.path.exists(os.path.join(dst, "model", "MLmodel")))
            info = mlo.models.get_model_info("runs:/%s/model" % rid)
            self.assertEqual(info.model_uuid, history[0]["model_uuid"])
        finally:
            shutil.rmtree(dst, True)

    def test_offline_load_needs_a_server(self):
        mlo.set_tracking_uri(None)
        try:
            with self.assertRaises(mlo.MloNotSupportedError) as cm:
                mlo.sklearn.load_model("runs:/0123/model")
            self.assertIn("mlo sync", str(cm.exception))
        finally:
            mlo.set_tracking_uri(self.server.url)


if __name__ == "__main__":
    unittest.main(verbosity=2)
