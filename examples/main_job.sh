#!/bin/sh
# The main job: build mlo, train the iris hyperparameter grid (9 runs) into
# the local run store — no server needed — and show the runs, best first.
set -eu
cd "$(dirname "$0")/.."
sh tests/install_deps.sh
build=${MLO_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null

# The local store: $MLO_STORE_DIR, else ./mlo-store.  No MLFLOW_TRACKING_URI:
# the runs are recorded on disk only.
unset MLFLOW_TRACKING_URI
export MLO_STORE_DIR="${MLO_STORE_DIR:-$PWD/mlo-store}"
"$build/examples/train_grid"
echo
echo "Runs in the local store $MLO_STORE_DIR, best accuracy first:"
"$build/src/mlo" ls "$MLO_STORE_DIR" --sort accuracy
best=$("$build/src/mlo" ls "$MLO_STORE_DIR" --sort accuracy --long | awk 'NR==2{print $1}')
cat <<MSG

Next:
  $build/src/mlo show $best          # params, tags and metric charts of the best run
  $build/src/mlo report --sort accuracy -o report.html   # one HTML page: table, charts, gate
  $build/src/mlo gate $best 'accuracy>=0.9'   # exit 0 on pass, 1 on fail (for CI)
  $build/src/mlo sync --to http://HOST:5000   # upload every run to an MLflow server,
                                                # then open its UI (mlflow server / mlflow ui)
MSG
