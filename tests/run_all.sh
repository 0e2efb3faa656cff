#!/bin/sh
# Runs every test of mlo: the normal build, then the whole suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, each
# in its own build directory.  Installs missing Debian packages first.
# Ends with the totals on a line of their own: "N passed, N failed".
# Every test may run beside the others (each has its own server, port and
# scratch directory); most wait on servers and timers, so 4 at once on a
# 2-core machine ($MLO_TEST_PROCESSES to change it).
set -u
cd "$(dirname "$0")/.."
MLO_WITH_SANITIZERS=1 sh tests/install_deps.sh || exit 1

builds="build:"
if [ "${MLO_SKIP_SANITIZERS:-0}" != 1 ]; then
    # -g1: line tables only (reports keep file:line), a sixth less compiling;
    # ASan+UBSan at -O1 (as ASan's documentation advises): UBSan's checks make
    # -O2 twice as slow to compile; warnings stay errors (strict: -O1 makes
    # the build type "custom")
    builds="$builds build-asan:-Db_sanitize=address,undefined:-Dc_args=-g1:-Doptimization=1:-Dstrict=enabled build-tsan:-Db_sanitize=thread:-Dc_args=-g1"
fi
status=0
# history_size=0: the smallest per-thread history (a tenth less CPU under
# TSan here); races are found as before, but a report may lack the stack of
# the earlier access: rerun the test with history_size=7 to get it
tsan_options="halt_on_error=1 second_deadlock_stack=1 history_size=0"
# Queue files the tests' processes leave in /dev/shm: a process that dies or
# exits without mlo_client_close keeps its queue file for the next client
# of its store (the crash journal), but the tests delete their temporary
# stores.  Removed at the end: files made during this run whose process is
# gone and that no one holds (the live owner keeps a lock on its file).
touch "${TMPDIR:-/tmp}/mlo-run-all.start"

# setup + compile of one build ("dir:opt:opt..."); its status in dir.built
compile() {
    dir=${1%%:*}
    opts=$(echo "${1#*:}" | tr ':' ' ')
    rm -f "$dir.built"
    if [ ! -f "$dir/build.ninja" ]; then
        # shellcheck disable=SC2086
        meson setup "$dir" $opts -Db_lundef=false >"$dir.setup.log" 2>&1 || {
            cat "$dir.setup.log" >"$dir.build.log"
            echo 1 >"$dir.built"
            return
        }
    fi
    ninja -C "$dir" >"$dir.build.log" 2>&1
    echo $? >"$dir.built"
}
# The builds after the first compile in the background at the lowest CPU
# priority, one after the other, from the start: the tests of the builds
# before them wait on servers and timers part of the time, and what they
# leave of the two cores goes to the compilers, not to nobody.
first=${builds%% *}
rest=${builds#"$first"}
for spec in $builds; do rm -f "${spec%%:*}.built"; done
if [ -n "$rest" ]; then
    (
        renice -n 19 -p "$(sh -c 'echo $PPID')" >/dev/null 2>&1 || true
        for spec in $rest; do compile "$spec"; done
    ) </dev/null >/dev/null 2>&1 &
fi
pending=""
for spec in $builds; do
    dir=${spec%%:*}
    echo "=== $dir ($(echo "${spec#*:}" | tr ':' ' '))"
    if [ "$spec" = "$first" ]; then
        compile "$spec"
    else
        while [ ! -f "$dir.built" ]; do sleep 1; done
    fi
    if [ "$(cat "$dir.built")" != 0 ]; then
        tail -50 "$dir.build.log"
        status=1
        continue
    fi
    # The bindings' suite runs beside the others, from the start: meson
    # would start its long tests last (its own log: meson-logs/testlog-bindings.*).
    rm -f "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog-bindings.json"
    if meson test -C "$dir" --no-rebuild --list --suite bindings 2>/dev/null | grep -q bindings; then
        env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            ASAN_OPTIONS=detect_leaks=1 \
            TSAN_OPTIONS="$tsan_options" \
            meson test -C "$dir" --no-rebuild --print-errorlogs --suite bindings \
            --logbase testlog-bindings --num-processes 2 >"$dir.bindings.log" 2>&1 &
        bindings=$!
    else
        # none in this build (tests/meson.build, "In the sanitizer builds")
        echo "(no bindings tests in $dir)" >"$dir.bindings.log"
        : >"$dir/meson-logs/testlog-bindings.json"
        bindings=""
    fi
    env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ASAN_OPTIONS=detect_leaks=1 \
        TSAN_OPTIONS="$tsan_options" \
        meson test -C "$dir" --no-rebuild --print-errorlogs --no-suite bindings \
        --num-processes "${MLO_TEST_PROCESSES:-4}" || status=1
    # not waited for here: the next build compiles and starts beside this
    # build's last binding tests (R CMD check, pip into a venv), which would
    # otherwise leave a core idle
    pending="$pending $dir:${bindings:-none}"
done
for p in $pending; do
    dir=${p%%:*}
    pid=${p#*:}
    if [ "$pid" != none ]; then wait "$pid" || status=1; fi
    echo "--- $dir: the bindings' suite"
    cat "$dir.bindings.log"
done

/usr/bin/python3 - $builds <<'PY'
import json, os, sys
passed = failed = skipped = 0
for spec in sys.argv[1:]:
    d = spec.split(':')[0]
    logs = [os.path.join(d, 'meson-logs', n) for n in ('testlog.json', 'testlog-bindings.json')]
    if not all(os.path.exists(log) for log in logs):
        failed += 1
        print(f"{d}: no test log (build failed)")
        continue
    for line in (line for log in logs for line in open(log)):
        r = json.loads(line)
        if r.get('result') in ('OK', 'EXPECTEDFAIL'):
            passed += 1
        elif r.get('result') == 'SKIP':
            skipped += 1
        else:
            failed += 1
            print(f"{d}: FAILED {r.get('name')}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
rc=$?
/usr/bin/python3 - "${TMPDIR:-/tmp}/mlo-run-all.start" <<'PY'
import fcntl, os, sys
start = os.stat(sys.argv[1]).st_mtime
d = "/dev/shm"
for n in os.listdir(d) if os.path.isdir(d) else []:
    p = os.path.join(d, n)
    parts = n.split("-")
    if not n.startswith("mlo-ring-") or len(parts) < 4 or not parts[3].isdigit():
        continue
    try:
        if os.stat(p).st_mtime < start or os.path.exists("/proc/" + parts[3]):
            continue
        with open(p, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(p)
    except OSError:
        pass
PY
[ $status = 0 ] && [ $rc = 0 ]
