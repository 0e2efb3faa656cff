#!/bin/sh
# valgrind memcheck on the examples (issue 8, item 9): no invalid access, no
# use of uninitialised memory, no leak (definite or possible), in
#  1. examples/train_grid (3 epochs, 9 runs) against the test server,
#  2. examples/inference_server (2 s, 2 threads, the model train_grid wrote)
#     against the test server,
#  3. train_grid (1 epoch) into the local store, no server,
#  4. inference_server (2 s) started while no server listens on the port
#     (retries, the offline run, events waiting in the store), the server
#     started 3 s later on the same port: everything delivered.
# Each must exit 0 under `valgrind --error-exitcode=1 --leak-check=full`.
#
#   test_valgrind.sh BUILD_ROOT SOURCE_ROOT B_SANITIZE
#
# Skips (exit 77) in a sanitizer build (valgrind and ASan/TSan exclude each
# other) and when valgrind is missing (tests/install_deps.sh installs it).
set -u
build=$1
src=$2
sanitize=${3:-none}
if [ "$sanitize" != none ]; then
    echo "SKIP: b_sanitize=$sanitize: valgrind runs in the plain build only"
    exit 77
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP: valgrind is not installed (sh tests/install_deps.sh with MLO_WITH_SANITIZERS=1)"
    exit 77
fi
python=/usr/bin/python3
tmp=$(mktemp -d /tmp/mlo-valgrind-XXXXXX)
srv_pid=""
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
    # queue files a killed client would leave in /dev/shm are linked from the stores
    for l in "$tmp"/*/rings/*.ring; do [ -L "$l" ] && rm -f "$(readlink "$l")"; done 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$python" "$src/tests/mlflow_test_server.py" --port 0 >"$tmp/server.out" 2>"$tmp/server.err" &
srv_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/server.out")
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "FAIL: the test server did not start"; cat "$tmp/server.err"; exit 1
fi

vg="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible --num-callers=30 --child-silent-after-fork=yes"
status=0

run() { # name expected-status command...
    name=$1 want=$2
    shift 2
    start=$(date +%s)
    "$@" >"$tmp/$name.log" 2>&1
    rc=$?
    el=$(( $(date +%s) - start ))
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$tmp/$name.log" | tail -1)
    leaks=$(grep -E "definitely lost|possibly lost" "$tmp/$name.log" | sed 's/==[0-9]*== *//' | tr '\n' ';')
    case " $want " in
    *" $rc "*) echo "VALGRIND $name: clean (exit $rc, $errs errors; $leaks ${el} s)" ;;
    *) echo "VALGRIND $name: FAILED (exit $rc, want $want)"; tail -60 "$tmp/$name.log"; return 1 ;;
    esac
}

export MLO_STORE_DIR="$tmp/store"
export MLFLOW_TRACKING_URI="http://127.0.0.1:$port"
export MLFLOW_HTTP_REQUEST_MAX_RETRIES=2 MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0.1
export MLFLOW_HTTP_REQUEST_BACKOFF_JITTER=0.05
run train_grid 0 $vg "$build/examples/train_grid" --epochs 3 --out "$tmp/models" \
    --experiment valgrind-grid || status=1
model=$(ls "$tmp"/models/*.model 2>/dev/null | head -1)
[ -n "$model" ] || { echo "FAIL: train_grid wrote no model"; exit 1; }
run inference_server 0 $vg "$build/examples/inference_server" --seconds 2 --threads 2 \
    --interval-ms 500 --model "$model" --experiment valgrind-serving || status=1

# what the server got: the nine runs, each with its metrics
"$python" - "$port" <<'PY' || status=1
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_test/dump"))
runs = d["runs"]
grid = [r for r in runs if "learning_rate" in r["params"]]
serving = [r for r in runs if any(m["key"].startswith("latency_ms") for m in r["metrics"])]
print(f"VALGRIND server: {len(runs)} runs, {sum(len(r['metrics']) for r in runs)} metric points "
      f"({len(grid)} grid runs, {len(serving)} serving run)")
sys.exit(0 if len(grid) == 9 and len(serving) == 1 else 1)
PY

# the local store: no server at all
uri=$MLFLOW_TRACKING_URI
unset MLFLOW_TRACKING_URI
export MLO_STORE_DIR="$tmp/local"
run local_store 0 $vg "$build/examples/train_grid" --epochs 1 --out "$tmp/models-local" \
    --experiment valgrind-local || status=1
export MLFLOW_TRACKING_URI="$uri"

# the server gone: nothing listens on the port when the example starts (its
# run starts offline, events wait in the store); 3 s later a new server
# starts on the same port and everything is delivered
kill "$srv_pid" 2>/dev/null
wait "$srv_pid" 2>/dev/null
srv_pid=""
export MLFLOW_HTTP_REQUEST_TIMEOUT=2
export MLO_STORE_DIR="$tmp/gone"
run server_gone 0 $vg "$build/examples/inference_server" --seconds 2 --threads 2 \
    --interval-ms 500 --model "$model" --experiment valgrind-gone &
example=$!
sleep 3
"$python" "$src/tests/mlflow_test_server.py" --port "$port" >"$tmp/server2.out" 2>"$tmp/server2.err" &
srv_pid=$!
wait "$example" || status=1
"$python" - "$port" <<'PY' || status=1
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_test/dump"))
n = sum(len(r["metrics"]) for r in d["runs"])
print(f"VALGRIND server back: {len(d['runs'])} run, {n} metric points delivered after the outage")
sys.exit(0 if len(d["runs"]) == 1 and n > 0 else 1)
PY
exit $status
