#!/bin/sh
# The main job: build mlo, start the bundled MLflow-compatible test server on a
# free loopback port, log a grid of training runs to it with examples/train,
# print what the server stored, stop the server.
set -eu
cd "$(dirname "$0")/.."
sh tests/install_deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

out=$(mktemp)
/usr/bin/python3 tests/mlflow_test_server.py --port 0 >"$out" &
srv=$!
trap 'kill $srv 2>/dev/null; rm -f "$out"' EXIT INT TERM
i=0
while ! grep -q '^PORT ' "$out"; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "test server did not start" >&2; exit 1; }
    sleep 0.1
done
port=$(awk '/^PORT /{print $2}' "$out")
export MLFLOW_TRACKING_URI="http://127.0.0.1:$port"
echo "test server: $MLFLOW_TRACKING_URI"
for lr in 0.01 0.1 1.0; do
    ./build/examples/train mlo-example "$lr" 30
done
/usr/bin/python3 - "$MLFLOW_TRACKING_URI" <<'PY'
import json, sys, urllib.request
uri = sys.argv[1]
d = json.load(urllib.request.urlopen(uri + "/_test/dump"))
exps = {e["experiment_id"]: e["name"] for e in d["experiments"]}
print()
print(f"{'run id':34} {'experiment':12} {'name':18} {'status':9} {'params':>6} {'points':>6} {'final_accuracy':>14}")
for r in d["runs"]:
    i = r["info"]
    fa = [m["value"] for m in r["metrics"] if m["key"] == "final_accuracy"]
    print(f"{i['run_id']:34} {exps.get(i['experiment_id'], '?'):12} {i['run_name']:18} {i['status']:9} "
          f"{len(r['params']):>6} {len(r['metrics']):>6} {fa[-1] if fa else float('nan'):>14.3f}")
print("\nThe same through MLflow's REST API, e.g.:")
print(f"  curl '{uri}/api/2.0/mlflow/runs/get?run_id={d['runs'][-1]['info']['run_id']}'")
PY
