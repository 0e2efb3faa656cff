#!/bin/sh
# The main job's path without any server: the iris grid into a fresh local
# store, then read back with `mlo ls`, `mlo show` and `mlo gate` (exit codes).
# usage: test_main_job.sh BUILD_DIR
set -eu
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp"
unset MLFLOW_TRACKING_URI
export MLO_STORE_DIR="$tmp/store"
"$build/examples/train_grid" >grid.out

"$build/src/mlo" ls "$MLO_STORE_DIR" --sort accuracy --long >ls.out
cat ls.out
runs=$(grep -c ' FINISHED ' ls.out)
[ "$runs" -eq 9 ] || { echo "expected 9 finished runs, got $runs"; exit 1; }
[ "$(grep -c 'iris-grid' ls.out)" -eq 9 ] || { echo "runs not in experiment iris-grid"; exit 1; }
head -1 ls.out | grep -q accuracy || { echo "no accuracy column"; exit 1; }

best=$(awk 'NR==2{print $1}' ls.out)
worst=$(awk 'END{print $1}' ls.out)
# best first: the first row's accuracy is the largest
/usr/bin/python3 - ls.out <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
end = lines[0].index("accuracy") + len("accuracy")  # columns are right-aligned
acc = [float(l[:end].split()[-1]) for l in lines[1:]]
assert acc == sorted(acc, reverse=True), acc
assert acc[0] > 0.9 and acc[-1] < acc[0], acc
PY

"$build/src/mlo" show "$best" "$MLO_STORE_DIR" >show.out
for want in learning_rate l2 epochs loss accuracy f1_macro FINISHED; do
    grep -q "$want" show.out || { echo "mlo show lacks $want"; cat show.out; exit 1; }
done
grep -q '60 points' show.out || { echo "per-epoch loss history missing"; exit 1; }

"$build/src/mlo" gate "$best" "$MLO_STORE_DIR" 'accuracy>=0.9' 'f1_macro>=0.9' >gate.out
rc=0
"$build/src/mlo" gate "$worst" "$MLO_STORE_DIR" 'accuracy>=0.95' >gate2.out || rc=$?
[ $rc -eq 1 ] || { echo "gate on the worst run: exit $rc, expected 1"; cat gate2.out; exit 1; }
rc=0
"$build/src/mlo" gate "$best" "$MLO_STORE_DIR" 'no_such_metric>1' >gate3.out || rc=$?
[ $rc -eq 1 ] || { echo "gate on a missing metric: exit $rc, expected 1"; exit 1; }
rc=0
"$build/src/mlo" gate >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || { echo "gate without arguments: exit $rc, expected 2"; exit 1; }
echo "main job path: 9 runs in the local store, best first, gate exit codes right"
