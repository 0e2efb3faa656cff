#!/usr/bin/python3
"""MLflow's tutorial runs with mlo (issue 14, item 3): examples/python/mlflow_tutorial.py is
MLflow's iris random-forest grid with exactly two lines changed (`import mlo as mlflow`,
`import mlo.sklearn`).  It is run twice:

  server  against the test server (MLFLOW_TRACKING_URI set);
  store   with no tracking URI (the local store), then `mlo sync` to a fresh test server;

and each time the server must hold: the 9 runs of experiment iris-random-forest,
FINISHED, named rf_<n>_<depth>, params n_estimators and max_depth ("None" included) and
the metric accuracy of each grid point (recomputed here: the forests are seeded); each
run's model directory (MLmodel, model.pkl, conda.yaml, python_env.yaml,
requirements.txt) in the server's artifact root; the run tag mlflow.log-model.history
naming that model; and mlo.sklearn.load_model("runs:/<run_id>/model") (and
mlo.pyfunc.load_model) must predict the same labels as the model trained here.

Exits 77 (skipped) when scikit-learn is not installed (Debian: python3-sklearn)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mlo_testserver import PYTHON, REPO, TestServer  # noqa: E402

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)
try:
    import sklearn  # noqa: F401
    import yaml
except ImportError as e:
    print("skipped: %s (apt-get install python3-sklearn python3-yaml)" % e)
    sys.exit(77)

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

# this process's own client (loading models) keeps its store out of the build directory
STORE = tempfile.mkdtemp(prefix="mlo-test-store-")
os.environ["MLO_STORE_DIR"] = STORE
import atexit  # noqa: E402
atexit.register(shutil.rmtree, STORE, True)

import mlo  # noqa: E402
import mlo.pyfunc  # noqa: E402
import mlo.sklearn  # noqa: E402

TUTORIAL = os.path.join(REPO, "examples", "python", "mlflow_tutorial.py")
CHANGED = {"import mlo as mlflow  # was: import mlflow": "import mlflow",
           "import mlo.sklearn  # was: import mlflow.sklearn": "import mlflow.sklearn"}
MODEL_FILES = {"MLmodel", "model.pkl", "conda.yaml", "python_env.yaml", "requirements.txt"}
GRID = [(n, d) for n in (10, 50, 100) for d in (2, 5, None)]


def trained():
    """The tutorial's split and models, trained here: (X_test, {(n, depth): model})."""
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    models = {}
    for n, d in GRID:
        models[(n, d)] = RandomForestClassifier(n_estimators=n, max_depth=d,
                                                random_state=42).fit(X_train, y_train)
    return X_test, y_test, models


X_TEST, Y_TEST, MODELS = trained()


class TestTutorial(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mlo-tutorial-")
        self.art = os.path.join(self.tmp, "artifacts")

    def tearDown(self):
        mlo.set_tracking_uri(None)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_tutorial(self, env_extra):
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(env_extra)
        p = subprocess.run([PYTHON, TUTORIAL], env=env, capture_output=True, text=True,
                           timeout=300, cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len([ln for ln in p.stdout.splitlines() if "accuracy=" in ln]), 9,
                         p.stdout)
        return p

    def test_exactly_two_lines_differ_from_mlflows_tutorial(self):
        with open(TUTORIAL) as f:
            lines = f.read().splitlines()
        changed = [ln for ln in lines if "mlo" in ln]
        self.assertEqual(sorted(changed), sorted(CHANGED))
        original = [CHANGED.get(ln, ln) for ln in lines]
        self.assertFalse(any("mlo" in ln.replace("mlflow", "") for ln in original))
        self.assertIn("mlflow.sklearn.log_model(model, \"model\")", "\n".join(original))

    def test_against_the_server(self):
        with TestServer("--artifact-root", self.art) as srv:
            self.run_tutorial({"MLFLOW_TRACKING_URI": srv.url,
                               "MLO_STORE_DIR": os.path.join(self.tmp, "store")})
            self.check(srv, offline=False)

    def test_local_store_then_mlo_sync(self):
        store = os.path.join(self.tmp, "store")
        self.run_tutorial({"MLO_STORE_DIR": store})
        with TestServer("--artifact-root", self.art) as srv:
            self.assertEqual(srv.dump()["runs"], [])
            tool = os.environ.get("MLO_TOOL") or os.path.join(REPO, "build", "src", "mlo")
            p = subprocess.run([tool, "sync", store, "--to", srv.url], capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.check(srv, offline=True)

    def check(self, srv, offline):
        dump = srv.dump()
        exps = [e for e in dump["experiments"] if e["name"] == "iris-random-forest"]
        self.assertEqual(len(exps), 1, dump["experiments"])
        runs = [r for r in dump["runs"] if r["info"]["experiment_id"] == exps[0]["experiment_id"]]
        self.assertEqual(len(runs), 9)
        seen = set()
        mlo.set_tracking_uri(srv.url)
        for r in runs:
            rid = r["info"]["run_id"]
            p = r["params"]
            self.assertEqual(set(p), {"n_estimators", "max_depth"})
            n = int(p["n_estimators"])
            d = None if p["max_depth"] == "None" else int(p["max_depth"])
            self.assertIn((n, d), MODELS)
            seen.add((n, d))
            self.assertEqual(r["info"]["status"], "FINISHED")
            self.assertEqual(r["tags"]["mlflow.runName"], "rf_%d_%s" % (n, d))
            acc = [m["value"] for m in r["metrics"] if m["key"] == "accuracy"]
            want = accuracy_score(Y_TEST, MODELS[(n, d)].predict(X_TEST))
            self.assertEqual(acc, [want])
            # the model directory, as mlflow.sklearn writes it
            uri = r["info"]["artifact_uri"]
            self.assertTrue(uri.startswith("mlflow-artifacts:/"), uri)
            mdir = os.path.join(self.art, *uri[len("mlflow-artifacts:/"):].strip("/").split("/"),
                                "model")
            self.assertEqual(set(os.listdir(mdir)), MODEL_FILES)
            with open(os.path.join(mdir, "MLmodel")) as f:
                mlmodel = yaml.safe_load(f)
            # a run made offline was created on the server by mlo sync: its MLmodel names
            # the run's local id (the run's mlo.local_id tag)
            own_id = r["tags"]["mlo.local_id"] if offline else rid
            self.assertEqual(mlmodel["run_id"], own_id)
            self.assertEqual(mlmodel["artifact_path"], "model")
            self.assertEqual(mlmodel["flavors"]["python_function"]["loader_module"],
                             "mlflow.sklearn")
            self.assertEqual(mlmodel["flavors"]["sklearn"]["pickled_model"], "model.pkl")
            history = json.loads(r["tags"]["mlflow.log-model.history"])
            self.assertEqual(len(history), 1)
            self.assertEqual(list(history[0]), ["run_id", "artifact_path", "utc_time_created",
                                                "model_uuid", "flavors"])
            self.assertEqual(history[0]["run_id"], own_id)
            self.assertEqual(history[0]["model_uuid"], mlmodel["model_uuid"])
            self.assertEqual(history[0]["utc_time_created"], mlmodel["utc_time_created"])
            self.assertEqual(history[0]["flavors"], mlmodel["flavors"])
            # loaded back without MLflow, it predicts what the model trained here does
            loaded = mlo.sklearn.load_model("runs:/%s/model" % rid,
                                            dst_path=os.path.join(self.tmp, "dl", rid))
            self.assertEqual(loaded.predict(X_TEST).tolist(),
                             MODELS[(n, d)].predict(X_TEST).tolist())
            if (n, d) == GRID[-1]:  # and as a python_function model (one is enough)
                pyf = mlo.pyfunc.load_model("runs:/%s/model" % rid)
                self.assertEqual(pyf.predict(X_TEST).tolist(),
                                 MODELS[(n, d)].predict(X_TEST).tolist())
        self.assertEqual(seen, set(GRID))


if __name__ == "__main__":
    unittest.main(verbosity=2)
