#!/usr/bin/python3
"""The classic MLflow tutorial, with mlo instead of mlflow: a grid of random-forest
hyperparameters on the iris data, one run per configuration with its params, its
accuracy and macro-F1 on a held-out split, and the pickled model as an artifact.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 /usr/bin/python3 examples/python/iris_grid.py

Needs scikit-learn (Debian: apt-get install python3-sklearn); without it, says so
and exits 0.  mlo is imported from the installed package, else from bindings/python
of this source tree (with the library of ./build).
"""

import os
import pickle
import sys
import tempfile

try:
    import mlo
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "bindings", "python"))
    import mlo

try:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split
except ImportError:
    print("iris_grid: scikit-learn is not installed (apt-get install python3-sklearn): skipped")
    sys.exit(0)

GRID = [(n, d) for n in (10, 50, 100) for d in (2, 4, None)]


def main():
    if not mlo.get_tracking_uri():
        print("iris_grid: set MLFLOW_TRACKING_URI to the tracking server", file=sys.stderr)
        return 2
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42,
                                                        stratify=y)
    mlo.set_experiment("iris-random-forest")
    with tempfile.TemporaryDirectory() as tmp:
        for n_estimators, max_depth in GRID:
            name = "rf-n%d-d%s" % (n_estimators, max_depth)
            with mlo.start_run(run_name=name) as run:
                params = {"n_estimators": n_estimators, "max_depth": max_depth,
                          "random_state": 0}
                mlo.log_params(params)
                model = RandomForestClassifier(**params).fit(X_train, y_train)
                pred = model.predict(X_test)
                acc = accuracy_score(y_test, pred)
                f1 = f1_score(y_test, pred, average="macro")
                mlo.log_metrics({"accuracy": acc, "f1_macro": f1})
                path = os.path.join(tmp, "model.pkl")
                with open(path, "wb") as f:
                    pickle.dump(model, f)
                mlo.log_artifact(path, artifact_path="model")
                print("%s  %-14s accuracy=%.3f  f1_macro=%.3f" % (run.info.run_id, name, acc, f1))
    mlo.flush(60)
    print("%d runs logged to %s, experiment iris-random-forest" % (len(GRID), mlo.get_tracking_uri()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
