#!/bin/sh
# test_cli.sh MLO CLI_MKSTORE PYTHON TEST_SERVER_PY
#
# The `mlo` tool end to end: cli_mkstore writes a local store (see
# tests/cli_mkstore.c for its runs A-D, one segment with a corrupted block)
# and, through the public API, a second one whose run has artifacts waiting
# for `mlo sync` and two datasets; then ls, show (datasets, pending and
# failed artifacts), gate (local store and, against the test server, --uri),
# sync (the second store: the test server's /_test/dump must then hold the
# run, both datasets and every artifact with its SHA-256, once, also after a
# second sync), sync's argument errors and --help, --json of ls/show/gate
# (parsed: fields, full precision, ms and ISO 8601 times), mlo report --uri,
# each checked for output and exit code.
# Prints "ok"/"FAIL" per check; exits 1 if any failed.
set -u
MLO=$1 MKSTORE=$2 PY=$3 SRV=$4
case $MLO in /*) ;; *) MLO=$(pwd)/$MLO ;; esac
case $MKSTORE in /*) ;; *) MKSTORE=$(pwd)/$MKSTORE ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/mlo-cli.XXXXXX") || exit 1
# queue files of this script's processes in a directory of its own: every
# client that opens a store reclaims orphaned ones, so a test running beside
# this one would take the dead process's file before `mlo gc` can
mkdir -p "$T/shm" && export MLO_SHM_DIR="$T/shm"
srv_pid=""
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
export TZ=UTC LC_ALL=C
unset MLO_STORE_DIR MLFLOW_TRACKING_URI MLFLOW_TRACKING_TOKEN MLFLOW_TRACKING_USERNAME
S=$T/store
"$MKSTORE" "$S" || { echo "FAIL: cli_mkstore"; exit 1; }
# a second store, written through the public API: one run with artifacts
# waiting for `mlo sync` and two datasets (see tests/cli_mkstore.c)
SA=$T/store-api
mkdir -p "$T/files"
AR=$("$MKSTORE" --api "$SA" "$T/files") || { echo "FAIL: cli_mkstore --api"; exit 1; }
DATA_SHA=$(sha256sum "$T/files/data.csv" | cut -d' ' -f1)
DONE_SHA=$(printf 'done\n' | sha256sum | cut -d' ' -f1)
EMPTY_SHA=$(printf '' | sha256sum | cut -d' ' -f1)

fails=0
n=0
# run RC CMD...: runs CMD, output in $T/out, stderr in $T/err, checks the exit code
run() {
    want=$1
    shift
    n=$((n + 1))
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: exit $got, expected $want: $*"
        sed 's/^/    out: /' "$T/out" | head -20
        sed 's/^/    err: /' "$T/err" | head -20
        fails=$((fails + 1))
        return 1
    fi
    echo "ok: $*"
    return 0
}
# has FILE TEXT [WHAT]: fixed-string search
has() {
    if ! grep -qF -- "$2" "$T/$1"; then
        echo "FAIL: $1 of the last command lacks '$2'"
        sed 's/^/    /' "$T/$1" | head -30
        fails=$((fails + 1))
    fi
}
hasnt() {
    if grep -qF -- "$2" "$T/$1"; then
        echo "FAIL: $1 of the last command has '$2'"
        fails=$((fails + 1))
    fi
}
# line_of PATTERN: line number of the first line of out containing it
line_of() { grep -nF -- "$1" "$T/out" | head -1 | cut -d: -f1; }
before() {
    a=$(line_of "$1")
    b=$(line_of "$2")
    if [ -z "$a" ] || [ -z "$b" ] || [ "$a" -ge "$b" ]; then
        echo "FAIL: '$1' not listed before '$2'"
        sed 's/^/    /' "$T/out"
        fails=$((fails + 1))
    fi
}

# ---- help and usage
run 0 "$MLO" --help && has out "Exit status" && has out "gate RUN"
run 0 "$MLO" --version && has out "mlo 0."
for c in ls show sync gate gc rm; do
    run 0 "$MLO" $c --help && has out "usage: mlo $c" && has out "Exit status"
    run 0 "$MLO" help $c && has out "usage: mlo $c"
done
run 2 "$MLO"
run 2 "$MLO" frobnicate && has err "unknown command"
run 2 "$MLO" ls --bogus "$S" && has err "unknown option"

# ---- ls
run 0 "$MLO" ls "$S"
has out "RUN" && has out "knn-k1" && has out "knn-k5" && has out "knn-k9" && has out "damaged-run"
has out "FINISHED" && has out "RUNNING" && has out "2023-11-14 22:13:20"
has out "srv-b-0001" # runs.map
has err "0003.seg" && has err "checksum mismatch"
before "damaged-run" "knn-k9" # newest first
before "knn-k9" "knn-k5"
before "knn-k5" "knn-k1"
run 0 "$MLO" ls --sort accuracy "$S"
before "knn-k5" "knn-k1" # 0.96 > 0.93 > 0.7 > 0.55
before "knn-k1" "knn-k9"
before "knn-k9" "damaged-run"
grep -F "knn-k1" "$T/out" | grep -qF "0.93" || { echo "FAIL: latest accuracy of A"; fails=$((fails + 1)); }
grep -F "damaged-run" "$T/out" | grep -qF "0.55" || { echo "FAIL: D's latest is step 2"; fails=$((fails + 1)); }
run 0 "$MLO" ls --sort latency.p95 --asc "$S"
before "knn-k1" "knn-k5" # 80 < 120; runs without it after
before "knn-k5" "knn-k9"
run 0 "$MLO" ls --sort nosuch "$S" && has err "no run has a metric 'nosuch'"
run 2 "$MLO" ls --asc "$S"
run 0 "$MLO" ls --metrics accuracy,f1 --experiment iris --long "$S"
has out "aaaa0000000000000000000000000001" && hasnt out "knn-k9" && hasnt out "loss"
MLO_STORE_DIR=$S run 0 "$MLO" ls && has out "knn-k1"
mkdir -p "$T/empty/mlo-store"
cd "$T/empty" && run 0 "$MLO" ls && has out "no runs" # ./mlo-store by default
cd - >/dev/null || exit 1
run 2 "$MLO" ls "$T/nowhere" && has err "no store at"

# ---- show
run 0 "$MLO" show aaaa "$S" --ascii
has out "aaaa0000000000000000000000000001" && has out "knn-k1" && has out "FINISHED"
has out "(3.2 s)" && has out "distance  euclid" && has out "seed      42" && has out "team"
has out "accuracy" && has out "last 0.93 (step 3)" && has out "4 points, steps 0..3"
has out "_:+#"       # the ASCII sparkline of 0.80 0.85 0.90 0.93
has out "#:-...____" # loss: 1/(step+1)
run 0 env LC_ALL=C.UTF-8 "$MLO" show aaaa "$S"
has out "▁▄▆█"
run 0 "$MLO" show knn-k9 "$S" --history # by name
has out "RUNNING" && has out "last NaN" && has out "0.7"
[ "$(grep -c '  0.7$' "$T/out")" = 1 ] || { echo "FAIL: duplicate point shown twice"; fails=$((fails + 1)); }
run 0 "$MLO" show srv-b-0001 "$S" # by server id
has out "Server run  srv-b-0001" && has out "knn-k5"
run 0 "$MLO" show damaged-run "$S" --metric accuracy --history
has out "2 points, steps 0..2" && hasnt out "0.6"
[ "$(grep -c 'checksum mismatch' "$T/err")" = 1 ] || { echo "FAIL: the warning once"; fails=$((fails + 1)); }
run 2 "$MLO" show zzzz "$S" && has err "no run 'zzzz'"
run 2 "$MLO" show "$S" 2>/dev/null
run 2 "$MLO" show knn-k1 "$S" --metric nosuch && has err "no metric 'nosuch'"

# ---- show: a run's datasets and its artifacts not uploaded yet
run 0 "$MLO" show "$AR" "$SA" --ascii
has out "with-artifacts" && has out "k  7"
has out "Datasets (2)"
has out "iris-train  digest 0123456789abcdef0123456789abcdef  s3 s3://bucket/iris/train.csv"
has out "iris-local  digest $(echo "$DATA_SHA" | cut -c1-32)  local $T/files/data.csv"
has out "Artifacts not uploaded yet (4)"
has out "data/data.csv  3000 bytes  pending (mlo sync uploads it)"
has out "model/weights.bin  3000 bytes  pending (mlo sync uploads it)"
has out "notes/100% done.txt  5 bytes  pending (mlo sync uploads it)" # decoded from the manifest
has out "empty.bin  0 bytes  pending (mlo sync uploads it)"
before "Datasets (2)" "Artifacts not uploaded yet" && before "Artifacts not uploaded yet" "Metrics (1)"
run 0 "$MLO" show with-artifacts "$SA" --ascii && has out "Artifacts not uploaded yet (4)" # by name
# a manifest refused for good (kept as .failed, with its reason) is shown as failed
f=$(grep -l 'path empty.bin' "$SA"/artifacts/*.art)
cp "$f" "$T/empty.art"
{ cat "$f"; printf 'error server%%20said%%3A%%20no\n'; } >"${f%.art}.failed" && rm "$f"
run 0 "$MLO" show "$AR" "$SA" --ascii && has out "empty.bin  0 bytes  failed: server said: no"
has out "Artifacts not uploaded yet (4)"
# the other store's runs show none of it
run 0 "$MLO" show aaaa "$S" --ascii && hasnt out "Datasets" && hasnt out "Artifacts"
rm "${f%.art}.failed" && cp "$T/empty.art" "$f" # pending again

# ---- gate, local store
run 0 "$MLO" gate aaaa "$S" 'accuracy>=0.9' 'latency.p95<100' 'demographic_parity_diff<0.1'
has out "result: pass (3 conditions)" && has out "accuracy >= 0.9" && has out "pass"
run 1 "$MLO" gate bbbb "$S" 'accuracy>=0.9' 'latency.p95<100'
has out "FAIL (1 of 2 conditions failed)"
run 1 "$MLO" gate aaaa "$S" 'accuracy>=baseline:bbbb'
has out "0.96" && has out "result: FAIL"
run 0 "$MLO" gate bbbb "$S" 'accuracy >= baseline:aaaa0000' 'f1>baseline:knn-k1'
run 1 "$MLO" gate aaaa "$S" 'precision>0.5' && has out "no such metric"
run 1 "$MLO" gate knn-k9 --store "$S" 'weird<1' && has out "NaN"
run 1 "$MLO" gate aaaa "$S" 'accuracy>=baseline:cccc' 'f1>=baseline:cccc' && has out "baseline has no such metric"
run 0 "$MLO" gate aaaa "$S" 'accuracy==0.93' 'accuracy!=0.5' 'loss<=0.1' 'accuracy>0.92'
run 2 "$MLO" gate aaaa "$S" 'accuracy>=baseline:zzzz' && has err "no run 'zzzz'"
run 2 "$MLO" gate aaaa "$S" 'accuracy>=high' && has err "not a number"
run 2 "$MLO" gate aaaa "$S" '>=0.9'
run 2 "$MLO" gate aaaa "$S" && has err "no conditions"
run 2 "$MLO" gate zzzz "$S" 'accuracy>0' && has err "no run"
run 2 "$MLO" gate aaaa "$S" "$S" 'accuracy>0' && has err "not a condition"
cat >"$T/gate.txt" <<'EOF'
# deploy gate for the iris model
accuracy >= 0.9
latency.p95 < 100   # ms

demographic_parity_diff < 0.1
EOF
MLO_STORE_DIR=$S run 0 "$MLO" gate aaaa --file "$T/gate.txt" && has out "pass (3 conditions)"
MLO_STORE_DIR=$S run 1 "$MLO" gate bbbb --file "$T/gate.txt" 'f1>0.99'
has out "FAIL (2 of 4 conditions failed)"
printf 'accuracy >>= 1\n' >"$T/bad.txt"
run 2 "$MLO" gate aaaa "$S" --file "$T/bad.txt" && has err "line 1"
run 2 "$MLO" gate aaaa "$S" --file "$T/nofile.txt"

# ---- --json on ls, show and gate, parsed; show prints the shortest exact digits
run 0 "$MLO" show aaaa "$S" --history --ascii && has out "0.3333333333333333" && has out "last 0.93 (step 3)"
run 0 "$MLO" ls "$S" --json --sort accuracy && cp "$T/out" "$T/ls.json"
run 0 "$MLO" show aaaa "$S" --json --history && cp "$T/out" "$T/show.json"
run 0 "$MLO" show knn-k9 "$S" --json --metric weird && cp "$T/out" "$T/show9.json"
run 0 "$MLO" show "$AR" "$SA" --json && cp "$T/out" "$T/showa.json"
run 1 "$MLO" gate aaaa "$S" --json 'accuracy>=0.9' 'precision>0.5' 'accuracy>=baseline:bbbb' &&
    cp "$T/out" "$T/gate.json"
run 0 "$MLO" gate bbbb "$S" --json 'accuracy>=0.9' && cp "$T/out" "$T/gate0.json"
n=$((n + 1))
if "$PY" - "$T" "$AR" >"$T/json.out" 2>&1 <<'EOF'
import datetime, json, sys
t, ar = sys.argv[1:]
def load(name):
    text = open(f"{t}/{name}").read()
    assert text.count("\n") == 1, f"{name}: one document on one line"
    return json.loads(text)
def iso_ok(obj, name):
    ms, iso = obj[name + "_ms"], obj[name]
    if ms is None:
        assert iso is None, (name, obj)
        return
    d = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert round(d.timestamp() * 1000) == ms, (name, ms, iso)
ls = load("ls.json")
names = [r["name"] for r in ls["runs"]]
assert names == ["knn-k5", "knn-k1", "knn-k9", "damaged-run"], names
a = ls["runs"][1]
assert a["id"] == "aaaa0000000000000000000000000001" and a["status"] == "FINISHED", a
assert a["experiment"] == "iris" and a["server_id"] is None, a
assert ls["runs"][0]["server_id"] == "srv-b-0001", ls["runs"][0]
assert a["start_time_ms"] == 1700000000000 and a["end_time_ms"] == 1700000003200, a
assert a["metrics"]["accuracy"] == {"step": 3, "timestamp_ms": 1700000000300,
    "timestamp": "2023-11-14T22:13:20.300Z", "value": 0.93}, a["metrics"]["accuracy"]
assert a["metrics"]["loss"]["value"] == 0.1 and ls["damaged"] >= 1, a
for r in ls["runs"]:
    iso_ok(r, "start_time"); iso_ok(r, "end_time")
    for m in r["metrics"].values():
        iso_ok(m, "timestamp")
s = load("show.json")
assert s["params"] == {"k": "1", "distance": "euclid", "seed": "42"}, s["params"]
assert s["tags"]["team"] == "vision" and s["duration_s"] == 3.2, s
h = s["metrics"]["loss"]["history"]
assert [p["value"] for p in h] == [1.0 / (i + 1) for i in range(10)], h  # full precision
assert [p["step"] for p in h] == list(range(10)) and s["metrics"]["loss"]["count"] == 10
assert s["metrics"]["loss"]["min"] == 0.1 and s["metrics"]["loss"]["max"] == 1
assert s["metrics"]["accuracy"]["latest"]["value"] == 0.93
for p in h:
    iso_ok(p, "timestamp")
s9 = load("show9.json")
assert list(s9["metrics"]) == ["weird"] and s9["metrics"]["weird"]["latest"]["value"] == "NaN", s9
assert "history" not in s9["metrics"]["weird"] and s9["end_time"] is None, s9
sa = load("showa.json")
assert sorted(d["name"] for d in sa["datasets"]) == ["iris-local", "iris-train"], sa["datasets"]
arts = {x["path"]: x for x in sa["artifacts_pending"]}
assert sorted(arts) == ["data/data.csv", "empty.bin", "model/weights.bin", "notes/100% done.txt"], arts
assert arts["empty.bin"]["size"] == 0 and arts["empty.bin"]["state"] == "pending", arts
g = load("gate.json")
assert g["passed"] is False and g["failed"] == 2, g
c = g["conditions"]
assert c[0] == {"condition": "accuracy >= 0.9", "metric": "accuracy", "op": ">=", "baseline": None,
                "threshold": 0.9, "value": 0.93, "passed": True, "reason": None}, c[0]
assert c[1]["value"] is None and c[1]["reason"] == "no such metric", c[1]
assert c[2]["baseline"] == "bbbb" and c[2]["threshold"] == 0.96 and not c[2]["passed"], c[2]
assert g["run"]["name"] == "knn-k1", g["run"]
g0 = load("gate0.json")
assert g0["passed"] is True and g0["failed"] == 0, g0
print("json ok")
EOF
then
    echo "ok: --json outputs parsed"
else
    echo "FAIL: --json outputs"
    sed 's/^/    /' "$T/json.out"
    fails=$((fails + 1))
fi

# ---- sync: argument checks (the upload itself is tested with the store)
run 2 "$MLO" sync "$S" && has err "no server to sync to"
run 2 "$MLO" sync "$T/nowhere" --to http://127.0.0.1:9 && has err "no store at"
run 2 "$MLO" sync "$S" --to http://127.0.0.1:9 --max-inflight 0 && has err "1 to 16"
run 0 "$MLO" sync --help && has out "--max-inflight" && has out "3 the server could not be"

# ---- sync against a port where nothing listens: one clear line, well within 10 s
dead=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
t0=$(date +%s%N)
run 3 timeout 30 "$MLO" sync "$S" --to "http://127.0.0.1:$dead"
t1=$(date +%s%N)
has err "cannot reach http://127.0.0.1:$dead" && has err "Failed to connect" && has err "nothing is lost"
has err "run \`mlo sync\` again"
[ "$(wc -l <"$T/err")" = 1 ] || { echo "FAIL: sync to a dead port: one line expected"; sed 's/^/    /' "$T/err"; fails=$((fails + 1)); }
ms=$(((t1 - t0) / 1000000))
[ "$ms" -lt 10000 ] || { echo "FAIL: sync to a dead port took $ms ms"; fails=$((fails + 1)); }
echo "    (sync to a dead port ended after $ms ms)"
run 3 timeout 30 "$MLO" sync "$S" --to "http://nosuch.invalid:5000" && has err "cannot reach http://nosuch.invalid:5000"

# ---- gc and rm on local stores: runs never sent are never removed by gc
cp -r "$S" "$T/rmstore"
run 0 "$MLO" gc "$T/rmstore" --retention 0 && has out "removed 0 files"
run 0 "$MLO" ls "$T/rmstore" && has out "knn-k1" && has out "knn-k5"
run 2 "$MLO" gc "$T/rmstore" --retention forever && has err "MLO_STORE_RETENTION"
run 0 "$MLO" rm knn-k1 --store "$T/rmstore" --dry-run && has out "would remove run aaaa0000000000000000000000000001"
run 0 "$MLO" ls "$T/rmstore" && has out "knn-k1"
run 0 "$MLO" rm knn-k1 bbbb --store "$T/rmstore"
has out "removed run aaaa0000000000000000000000000001 (knn-k1)" && has out "(knn-k5); it stays on the server"
run 0 "$MLO" ls "$T/rmstore" && hasnt out "knn-k1" && hasnt out "knn-k5" && has out "knn-k9"
run 0 "$MLO" show knn-k9 "$T/rmstore" --history && has out "0.7"
run 2 "$MLO" rm zzzz --store "$T/rmstore" && has err "no run 'zzzz'"
run 2 "$MLO" rm --store "$T/rmstore" && has err "which runs"

# ---- $MLO_SHM_DIR: the queue file of a dead process whose store was deleted
if [ -d "$MLO_SHM_DIR" ]; then
    ring=$("$MKSTORE" --dead-ring "$T/doomed")
    if [ -z "$ring" ] || [ ! -f "$ring" ]; then
        echo "FAIL: cli_mkstore --dead-ring left no queue file"
        fails=$((fails + 1))
    else
        run 0 "$MLO" gc "$T/rmstore" --dry-run && hasnt out "$ring" # its store is still there
        rm -rf "$T/doomed"
        run 0 "$MLO" gc "$T/rmstore" --dry-run && has out "would remove $ring" && has out "its store is gone"
        [ -f "$ring" ] || { echo "FAIL: gc --dry-run removed $ring"; fails=$((fails + 1)); }
        run 0 "$MLO" gc "$T/rmstore" && has out "removed $ring"
        [ ! -e "$ring" ] || { echo "FAIL: gc left $ring"; fails=$((fails + 1)); }
    fi
fi

# ---- gate --uri against the MLflow-compatible test server
"$PY" "$SRV" --port 0 >"$T/srv.out" 2>"$T/srv.err" &
srv_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^PORT //p' "$T/srv.out")
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "FAIL: the test server did not start"
    cat "$T/srv.err"
    fails=$((fails + 1))
else
    URI=http://127.0.0.1:$port
    ids=$("$PY" - "$URI" <<'EOF'
import json, sys, urllib.request
uri = sys.argv[1]
def call(path, body):
    req = urllib.request.Request(uri + "/api/2.0/mlflow/" + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read() or b"{}")
exp = call("experiments/create", {"name": "gate-test"})["experiment_id"]
out = []
for name, acc, lat in (("good", 0.95, 40.0), ("bad", 0.80, 250.0)):
    run = call("runs/create", {"experiment_id": exp, "run_name": name, "start_time": 1})["run"]
    rid = run["info"]["run_id"]
    metrics = [{"key": "accuracy", "value": 0.5, "timestamp": 1, "step": 0},
               {"key": "accuracy", "value": acc, "timestamp": 2, "step": 1},
               {"key": "latency.p95", "value": lat, "timestamp": 2, "step": 1}]
    call("runs/log-batch", {"run_id": rid, "metrics": metrics})
    out.append(rid)
print(" ".join(out))
EOF
)
    good=${ids% *}
    bad=${ids#* }
    if [ -z "$good" ] || [ "$good" = "$ids" ]; then
        echo "FAIL: could not create runs on the test server"
        fails=$((fails + 1))
    else
        run 0 "$MLO" gate "$good" --uri "$URI" 'accuracy>=0.9' 'latency.p95<100'
        has out "(good)" && has out "0.95" && has out "result: pass"
        run 1 "$MLO" gate "$bad" --uri "$URI/" 'accuracy>=0.9' 'latency.p95<100'
        has out "FAIL (2 of 2 conditions failed)"
        run 0 "$MLO" gate "$good" --uri "$URI" "accuracy>baseline:$bad"
        run 1 "$MLO" gate "$bad" --uri "$URI" "accuracy>baseline:$good"
        run 2 "$MLO" gate 0123456789abcdef0123456789abcdef --uri "$URI" 'accuracy>0' && has err "no run"
        run 2 "$MLO" gate "$good" --uri "$URI" "$S" 'accuracy>0'
        # mlo report from the server (runs/search, metrics/get-history)
        run 0 "$MLO" report --uri "$URI" --experiment gate-test --sort accuracy \
            --gate 'accuracy>=0.9' -o "$T/srv.html"
        has out "(2 runs, 2 charts"
        [ "$(grep -o '<td class="gate [a-z]*"' "$T/srv.html" | tr '\n' ' ')" = \
            '<td class="gate pass" <td class="gate fail" ' ] ||
            { echo "FAIL: report --uri: good passes, bad fails, best first"; fails=$((fails + 1)); }
        grep -q "data-run=\"$good\" d=\"M[^\"]*l[^\"]*\" data-points=\"2\"" "$T/srv.html" ||
            { echo "FAIL: report --uri: accuracy history of 2 points"; fails=$((fails + 1)); }
        run 2 "$MLO" report --uri "$URI" --experiment nosuch -o "$T/x.html" && has err "no experiment"
        # registered model versions (model-versions/search run_id='...'): two
        # versions of a model with markup in its name from the good run, an
        # alias on the second, and 101 of another (two pages); the bad run has none
        "$PY" - "$URI" "$good" <<'EOF'
import json, sys, urllib.request
uri, rid = sys.argv[1], sys.argv[2]
def call(path, body):
    req = urllib.request.Request(uri + "/api/2.0/mlflow/" + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read() or b"{}")
name = "iris<b>&\"clf'"
call("registered-models/create", {"name": name})
for _ in range(2):
    call("model-versions/create", {"name": name, "run_id": rid,
                                   "source": "mlflow-artifacts:/x/model"})
call("registered-models/alias", {"name": name, "alias": "champion", "version": "2"})
# and 101 versions of another: the server answers 100 a page, the second
# page comes by the first's next_page_token
call("registered-models/create", {"name": "many"})
for _ in range(101):
    call("model-versions/create", {"name": "many", "run_id": rid,
                                   "source": "mlflow-artifacts:/x/model"})
EOF
        run 0 "$MLO" report --uri "$URI" --experiment gate-test -o "$T/mv.html"
        n=$((n + 1))
        if "$PY" - "$T/mv.html" "$good" "$bad" >"$T/mv.out" 2>&1 <<'EOF'
import re, sys
page, good, bad = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
def details(rid):
    m = re.search(r'<details data-run="%s">.*?</details>' % rid, page, re.S)
    assert m, rid
    return m.group(0)
g, b = details(good), details(bad)
name = "iris&lt;b&gt;&amp;&quot;clf&#39;"
assert "103 model versions</span>" in g, g[:400]
assert '<tr><td>many</td><td class="num">101</td><td>READY</td>' in g, g
for v, aliases in (("2", "champion"), ("1", "")):
    row = ('<tr><td>%s</td><td class="num">%s</td><td>READY</td><td>%s</td></tr>'
           % (name, v, aliases))
    assert row in g, (row, g)
assert "0 model versions</span>" in b and "Registered model" not in b, b
assert "iris<b>" not in page and "clf'" not in page
print("ok")
EOF
        then echo "ok: report --uri: model versions of the run, escaped, none for the other"
        else echo "FAIL: report --uri: model versions"; sed 's/^/    /' "$T/mv.out"; fails=$((fails + 1)); fi
    fi

    # ---- sync of the API store: the run, its datasets and its artifacts
    # dump_check WHAT: the server's /_test/dump holds exactly one run of
    # local id $AR, linked to both datasets once each, and the four artifacts
    # under that run's artifact root with their SHA-256
    dump_check() {
        n=$((n + 1))
        if "$PY" - "$URI" "$AR" "$T/files/data.csv" "$DATA_SHA" "$DONE_SHA" "$EMPTY_SHA" \
            >"$T/dump.out" 2>&1 <<'EOF'
import json, sys, urllib.request
uri, lid, data_path, data_sha, done_sha, empty_sha = sys.argv[1:]
d = json.loads(urllib.request.urlopen(uri + "/_test/dump", timeout=10).read())
runs = [r for r in d["runs"] if r["tags"].get("mlo.local_id") == lid]
assert len(runs) == 1, f"{len(runs)} runs with mlo.local_id {lid}"
run = runs[0]
rid, exp = run["info"]["run_id"], run["info"]["experiment_id"]
assert run["info"]["status"] == "FINISHED", run["info"]
assert run["params"] == {"k": "7"}, run["params"]
assert sorted((m["step"], m["value"]) for m in run["metrics"] if m["key"] == "accuracy") == \
    [(0, 0.5), (1, 0.75)], run["metrics"]
ds = {x["name"]: x for x in d["datasets"]}
assert sorted(ds) == ["iris-local", "iris-train"], sorted(ds)
assert ds["iris-train"]["digest"] == "0123456789abcdef0123456789abcdef"
assert ds["iris-train"]["source_type"] == "s3"
assert json.loads(ds["iris-train"]["source"]) == {"uri": "s3://bucket/iris/train.csv"}
assert ds["iris-local"]["digest"] == data_sha[:32], ds["iris-local"]
assert ds["iris-local"]["source_type"] == "local"
assert json.loads(ds["iris-local"]["source"]) == {"uri": data_path}
for x in ds.values():
    assert x["runs"] == [rid], x
inputs = sorted(i["dataset"]["name"] for i in run["inputs"])
assert inputs == ["iris-local", "iris-train"], run["inputs"]
root = f"{exp}/{rid}/artifacts/"
arts = {a["path"][len(root):]: a for a in d["artifacts"] if a["path"].startswith(root)}
want = {"data/data.csv": (3000, data_sha), "model/weights.bin": (3000, data_sha),
        "notes/100% done.txt": (5, done_sha), "empty.bin": (0, empty_sha)}
got = {p: (a["size"], a["sha256"]) for p, a in arts.items()}
assert got == want, got
print("dump ok:", rid, len(arts), "artifacts,", len(ds), "datasets")
EOF
        then
            echo "ok: dump after $1"
        else
            echo "FAIL: dump after $1"
            sed 's/^/    /' "$T/dump.out"
            fails=$((fails + 1))
        fi
    }
    run 0 "$MLO" sync "$SA" --to "$URI" && has out "synced"
    dump_check "mlo sync"
    run 0 "$MLO" show "$AR" "$SA" --ascii
    has out "Server run" && has out "Datasets (2)" && hasnt out "Artifacts not uploaded yet"
    [ -z "$(find "$SA/artifacts" -name '*.art' -o -name '*.failed' -o -name '*.blob' 2>/dev/null)" ] ||
        { echo "FAIL: manifests or blobs left after the sync"; fails=$((fails + 1)); }
    run 0 "$MLO" sync "$SA" --to "$URI" # again: nothing twice
    dump_check "a second mlo sync"
    # retention: everything of the synced store acknowledged goes at once
    # with --retention 0; ls, show and gate read the run's summary instead
    run 0 "$MLO" ls "$SA" --json && cp "$T/out" "$T/ls-before.json"
    run 0 "$MLO" show "$AR" "$SA" --json && cp "$T/out" "$T/show-before.json"
    run 0 "$MLO" gc "$SA" --dry-run && has out "would remove 0 files" # 7 days by default
    run 0 "$MLO" gc "$SA" --retention 0 && has out "removed segments/" && has out "retention: acknowledged"
    [ -z "$(find "$SA/segments" -name '*.seg')" ] || { echo "FAIL: segments left after gc --retention 0"; fails=$((fails + 1)); }
    run 0 "$MLO" ls "$SA" --json && cp "$T/out" "$T/ls-after.json"
    cmp -s "$T/ls-before.json" "$T/ls-after.json" || { echo "FAIL: ls --json changed by gc"; fails=$((fails + 1)); }
    run 0 "$MLO" show "$AR" "$SA" --ascii && has out "Server run" && has out "k  7" && has out "Datasets (2)"
    has out "last 0.75 (step 1)  min 0.5  max 0.75  2 points  (2 removed by the store's retention"
    run 0 "$MLO" show "$AR" "$SA" --history --ascii && has out "2 earlier points are no longer in the store"
    run 0 "$MLO" gate "$AR" "$SA" 'accuracy>=0.7' && has out "result: pass"
    run 0 "$MLO" show "$AR" "$SA" --json && cp "$T/out" "$T/show-after.json"
    n=$((n + 1))
    if "$PY" - "$T" >"$T/json.out" 2>&1 <<'EOF'
import json, sys
t = sys.argv[1]
b = json.load(open(f"{t}/show-before.json"))
a = json.load(open(f"{t}/show-after.json"))
ma, mb = a.pop("metrics"), b.pop("metrics")
assert a == b, (a, b)
assert mb["accuracy"]["removed"] == 0 and ma["accuracy"]["removed"] == 2, (ma, mb)
for k in ("latest", "count", "min", "max"):
    assert ma["accuracy"][k] == mb["accuracy"][k], k
print("ok")
EOF
    then echo "ok: show --json after gc"; else echo "FAIL: show --json after gc"; sed 's/^/    /' "$T/json.out"; fails=$((fails + 1)); fi
    # the synced run's page from the server: datasets and uploaded artifacts
    run 0 "$MLO" report --uri "$URI" --experiment artifacts -o "$T/art.html"
    for a in data/data.csv model/weights.bin "notes/100% done.txt" empty.bin; do
        grep -qF "<td>$a</td><td class=\"num\">" "$T/art.html" ||
            { echo "FAIL: report --uri lacks artifact $a"; fails=$((fails + 1)); }
    done
    [ "$(grep -o "<td>on the server</td>" "$T/art.html" | wc -l)" = 4 ] && grep -qF "<td>iris-train</td>" "$T/art.html" ||
        { echo "FAIL: report --uri: artifacts on the server, datasets"; fails=$((fails + 1)); }

    # ---- sync against a server that answers 503 twice: a line per retry,
    # progress lines (--progress: stderr is not a terminal here), then done
    SB=$T/store-503
    mkdir -p "$T/files503"
    "$MKSTORE" --api "$SB" "$T/files503" >/dev/null || { echo "FAIL: cli_mkstore --api (503)"; fails=$((fails + 1)); }
    "$PY" - "$URI" <<'EOF'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/_test/faults",
    json.dumps({"status": 503, "count": 2, "path_prefix": "runs/log-batch"}).encode(),
    {"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
EOF
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0.1 run 0 "$MLO" sync "$SB" --to "$URI" --progress --max-inflight 2
    has err "HTTP 503 from POST /api/2.0/mlflow/runs/log-batch; retry 1 of 5 in"
    has err "HTTP 503 from POST /api/2.0/mlflow/runs/log-batch; retry 2 of 5 in"
    has err "sync 100%  1/1 runs" && has err "events" && has err "ETA 0:00" && has out "synced"
    grep -q '^sync   0%  0/1 runs  0/[0-9]* events' "$T/err" || { echo "FAIL: no progress line before the upload"; fails=$((fails + 1)); }
    run 0 "$MLO" sync "$SB" --to "$URI" --quiet && has out "synced"
    [ ! -s "$T/err" ] || { echo "FAIL: --quiet printed on stderr"; fails=$((fails + 1)); }

    kill "$srv_pid" 2>/dev/null
    wait "$srv_pid" 2>/dev/null
    srv_pid=""
    run 2 "$MLO" gate "$good" --uri "$URI" 'accuracy>0' && has err "127.0.0.1"
fi

echo "$n commands checked, $fails failure(s)"
[ "$fails" = 0 ]
