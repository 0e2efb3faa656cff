#!/bin/sh
# test_report.sh MLO CLI_MKSTORE TRAIN_GRID PYTHON
#
# `mlo report` (issue 17), checked as written and as a browser shows it:
#  - escaping: cli_mkstore --hostile plants markup, quotes, control
#    characters and invalid UTF-8 in every string of two runs; the page has
#    exactly one script (the CSP's nonce on it), no element or attribute
#    that could run code or load anything (tests/report_check.py static),
#    and in headless Chromium no planted script runs, the planted strings
#    are shown as text, NaN/Infinity are gaps, 5000 points are drawn min/max
#    per pixel column, no console message (report_check.py hostile);
#  - the main job: examples/train_grid's 9 runs; in Chromium the rows are
#    best first, one chart per metric, every loss/train_accuracy path has as
#    many vertices as `mlo show` counts points, the gate's cells and colours
#    are what `mlo gate` decides, the screenshot is not blank and shows both
#    gate colours, no console message (report_check.py mainjob);
#  - the command's errors: no -o, no runs, a store that is not there.
# Chromium is Debian's package `chromium` (tests/install_deps.sh installs it
# for the test suite); without it the browser checks are skipped, saying so.
# Prints "ok"/"FAIL" per check; exits 1 if any failed.
set -u
MLO=$1 MKSTORE=$2 GRID=$3 PY=$4
case $MLO in /*) ;; *) MLO=$(pwd)/$MLO ;; esac
case $MKSTORE in /*) ;; *) MKSTORE=$(pwd)/$MKSTORE ;; esac
case $GRID in /*) ;; *) GRID=$(pwd)/$GRID ;; esac
CHECK=$(cd "$(dirname "$0")" && pwd)/report_check.py
T=$(mktemp -d "${TMPDIR:-/tmp}/mlo-report.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
export TZ=UTC LC_ALL=C
unset MLO_STORE_DIR MLFLOW_TRACKING_URI
fails=0
n=0
ok() { n=$((n + 1)); echo "ok: $1"; }
bad() {
    n=$((n + 1))
    fails=$((fails + 1))
    echo "FAIL: $1"
    [ -f "${2:-}" ] && sed 's/^/    /' "$2" | head -30
}
# run RC WHAT CMD...: CMD's exit code must be RC (output in $T/out, $T/err)
run() {
    want=$1 what=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" = "$want" ]; then ok "$what"; else bad "$what: exit $got, want $want" "$T/err"; fi
}
CHROME=$(command -v chromium || true)
# chrome NAME PAGE: headless Chromium's DOM after the scripts ran
# ($T/NAME.dom), a screenshot ($T/NAME.png) and its log ($T/NAME.err:
# console messages are its ":CONSOLE" lines).  Flags as
# /work/.library/env/machines/c.md says work here.
chrome() {
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --user-data-dir="$T/profile-$1" --enable-logging=stderr --v=0 \
        --window-size=1280,1400 --dump-dom --screenshot="$T/$1.png" "file://$2" \
        >"$T/$1.dom" 2>"$T/$1.err"
}

# ---- escaping
"$MKSTORE" --hostile "$T/hostile" || { echo "FAIL: cli_mkstore --hostile"; exit 1; }
EVIL="acc<script>document.title='PWNED'</script>"
run 0 "report of the hostile store" "$MLO" report "$T/hostile" --sort "$EVIL" --gate 'loss<1' \
    -o "$T/hostile.html"
if "$PY" "$CHECK" static "$T/hostile.html" >"$T/check" 2>&1; then ok "hostile page as written"
else bad "hostile page as written" "$T/check"; fi
grep -q "PWNED" "$T/hostile.html" && grep -q "&lt;script&gt;document.title=&#39;PWNED&#39;" \
    "$T/hostile.html" && ok "planted markup is escaped" || bad "planted markup is escaped"

# ---- the main job's 9 runs
mkdir -p "$T/job"
(cd "$T/job" && MLO_STORE_DIR="$T/job/store" "$GRID" >grid.out 2>&1) ||
    { echo "FAIL: train_grid"; cat "$T/job/grid.out"; exit 1; }
S=$T/job/store
run 0 "report of the main job" "$MLO" report "$S" --sort accuracy --gate 'accuracy>=0.9' \
    -o "$T/job.html"
grep -q "wrote $T/job.html (9 runs, 4 charts" "$T/out" && ok "says what it wrote" ||
    bad "says what it wrote" "$T/out"
if "$PY" "$CHECK" static "$T/job.html" >"$T/check" 2>&1; then ok "main job page as written"
else bad "main job page as written" "$T/check"; fi
# what the page must show, from mlo ls/show/gate (not from the report)
"$MLO" ls "$S" --sort accuracy --long | awk 'NR>1{print $1}' >"$T/ids"
: >"$T/expect.txt"
for id in $(cat "$T/ids"); do
    for m in loss train_accuracy; do
        pts=$("$MLO" show "$id" "$S" --metric "$m" | sed -n 's/.* \([0-9][0-9]*\) points, .*/\1/p')
        echo "points $id $m $pts" >>"$T/expect.txt"
    done
    "$MLO" gate "$id" "$S" 'accuracy>=0.9' >/dev/null && echo "pass $id" >>"$T/expect.txt"
done
"$PY" - "$T/expect.txt" "$T/ids" >"$T/expect.json" <<'PY'
import json, sys
e = {"points": {}, "passes": 0, "metrics": ["loss", "train_accuracy", "accuracy", "f1_macro"],
     "best_first": open(sys.argv[2]).read().split()}
for line in open(sys.argv[1]):
    w = line.split()
    if w[0] == "points":
        e["points"].setdefault(w[1], {})[w[2]] = int(w[3])
    else:
        e["passes"] += 1
print(json.dumps(e))
PY

if [ -z "$CHROME" ]; then
    echo "SKIP: the browser checks: no chromium (Debian package chromium; tests/install_deps.sh)"
else
    if chrome hostile "$T/hostile.html"; then ok "chromium rendered the hostile page"
    else bad "chromium rendered the hostile page" "$T/hostile.err"; fi
    if "$PY" "$CHECK" hostile "$T/hostile.dom" "$T/hostile.err" >"$T/check" 2>&1; then
        ok "no planted script ran; planted strings shown as text"
    else bad "hostile page in chromium" "$T/check"; fi
    # the self-check: what the browser computed, written into the DOM
    nonce=$(sed -n "s/.*script-src 'nonce-\([0-9a-f]*\)'.*/\1/p" "$T/job.html" | head -1)
    sed "s|</body>|<script nonce=\"$nonce\">(function(){function st(s){var e=document.querySelector(s);if(!e)return {};var c=getComputedStyle(e);return {bg:c.backgroundColor,fg:c.color}}var p=st('td.gate.pass'),f=st('td.gate.fail');var o={pass_bg:p.bg,pass_fg:p.fg,fail_bg:f.bg,fail_fg:f.fg,ready:document.documentElement.getAttribute('data-ready')};var pre=document.createElement('pre');pre.id='selfcheck';pre.textContent=JSON.stringify(o);document.body.appendChild(pre)})();</script></body>|" \
        "$T/job.html" >"$T/job-check.html"
    if chrome job "$T/job-check.html"; then ok "chromium rendered the main job's page"
    else bad "chromium rendered the main job's page" "$T/job.err"; fi
    if "$PY" "$CHECK" mainjob "$T/job.dom" "$T/job.err" "$T/job.png" "$T/expect.json" \
        >"$T/check" 2>&1; then
        ok "main job in chromium: rows, charts, point counts, gate colours, screenshot"
    else bad "main job in chromium" "$T/check"; fi
fi

# ---- errors
run 2 "no -o" "$MLO" report "$S"
grep -q "give -o" "$T/err" && ok "says -o is missing" || bad "says -o is missing" "$T/err"
run 2 "no store" "$MLO" report "$T/nowhere" -o "$T/x.html"
run 2 "no runs of that experiment" "$MLO" report "$S" --experiment nosuch -o "$T/x.html"
run 2 "unknown run" "$MLO" report "$S" --runs zzzz -o "$T/x.html"
run 0 "two runs by name" "$MLO" report "$S" --runs softmax-lr0.3-l2_0 softmax-lr0.003-l2_0 \
    --metric loss -o "$T/two.html"
[ "$(grep -c '<tr data-run=' "$T/two.html")" = 2 ] && [ "$(grep -c '<figure' "$T/two.html")" = 1 ] &&
    ok "--runs and --metric select" || bad "--runs and --metric select" "$T/two.html"
run 0 "help" "$MLO" report --help
grep -q "usage: mlo report" "$T/out" && ok "usage" || bad "usage" "$T/out"

echo "$n checks, $fails failure(s)"
[ "$fails" = 0 ]
