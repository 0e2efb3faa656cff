import mlo as mlflow  # was: import mlflow
import mlo.sklearn  # was: import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)

mlflow.set_experiment("iris-random-forest")

for n_estimators in [10, 50, 100]:
    for max_depth in [2, 5, None]:
        with mlflow.start_run(run_name=f"rf_{n_estimators}_{max_depth}"):
            mlflow.log_param("n_estimators", n_estimators)
            mlflow.log_param("max_depth", max_depth)

            model = RandomForestClassifier(
                n_estimators=n_estimators, max_depth=max_depth, random_state=42
            )
            model.fit(X_train, y_train)

            accuracy = accuracy_score(y_test, model.predict(X_test))
            mlflow.log_metric("accuracy", accuracy)
            mlflow.sklearn.log_model(model, "model")

            print(f"n_estimators={n_estimators}, max_depth={max_depth}, accuracy={accuracy:.3f}")
