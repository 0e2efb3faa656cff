#!/usr/bin/python3
"""Runs examples/python/iris_grid.py against the test server and checks what it
stored: one FINISHED run per configuration, with params, accuracy and macro-F1, and
the pickled model as the artifact model/model.pkl (read from the server's artifact
root).  Exits 77 (skipped) when scikit-learn is not installed."""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mlo_testserver import PYTHON, REPO, TestServer  # noqa: E402

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

EXAMPLE = os.path.join(REPO, "examples", "python", "iris_grid.py")


def main():
    art_root = tempfile.mkdtemp(prefix="mlo-example-artifacts-")
    try:
        return check(art_root)
    finally:
        shutil.rmtree(art_root, True)


def check(art_root):
    with TestServer("--artifact-root", art_root) as srv:
        store = tempfile.mkdtemp(prefix="mlo-example-store-")
        env = dict(os.environ, MLFLOW_TRACKING_URI=srv.url, MLO_STORE_DIR=store)
        try:
            p = subprocess.run([PYTHON, EXAMPLE], env=env, capture_output=True, text=True,
                               timeout=500)
        finally:
            shutil.rmtree(store, True)
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        if p.returncode != 0:
            print("the example failed (%d)" % p.returncode)
            return 1
        if "scikit-learn is not installed" in p.stdout:
            return 77
        dump = srv.dump()
        exp = [e["experiment_id"] for e in dump["experiments"] if e["name"] == "iris-random-forest"]
        runs = [r for r in dump["runs"] if exp and r["info"]["experiment_id"] == exp[0]]
        problems = []
        if len(runs) != 9:
            problems.append("%d runs stored, expected 9" % len(runs))
        for r in runs:
            keys = {m["key"]: m["value"] for m in r["metrics"]}
            if r["info"]["status"] != "FINISHED":
                problems.append("%s: status %s" % (r["info"]["run_id"], r["info"]["status"]))
            if set(r["params"]) != {"n_estimators", "max_depth", "random_state"}:
                problems.append("%s: params %s" % (r["info"]["run_id"], r["params"]))
            for k in ("accuracy", "f1_macro"):
                if not 0.5 <= float(keys.get(k, -1)) <= 1.0:
                    problems.append("%s: %s = %s" % (r["info"]["run_id"], k, keys.get(k)))
            if not r["tags"].get("mlflow.source.name", "").endswith("iris_grid.py"):
                problems.append("%s: source %s" % (r["info"]["run_id"], r["tags"]))
            uri = r["info"].get("artifact_uri", "")
            model = os.path.join(art_root, *uri[len("mlflow-artifacts:/"):].strip("/").split("/"),
                                 "model", "model.pkl")
            try:
                with open(model, "rb") as f:
                    head = f.read(2)
            except OSError as e:
                problems.append("%s: no model artifact (%s)" % (r["info"]["run_id"], e))
            else:
                if not head.startswith(b"\x80"):
                    problems.append("%s: model/model.pkl is not a pickle" % r["info"]["run_id"])
        if "artifacts are not supported" in p.stdout:
            problems.append("the example says artifacts are not supported")
        for pr in problems:
            print("PROBLEM: " + pr)
        print("%d runs checked" % len(runs))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
