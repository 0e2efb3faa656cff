#!/bin/sh
# bench_syscalls.sh - system calls made by the thread that calls mlo_log_metric,
# counted by strace: an independent check of bench_client's perf counter.
#
# Usage: bench_syscalls.sh BENCH_CLIENT [CALLS]     (CALLS default 1000000)
#
# Two modes per queue (ring, mutex): a burst of CALLS calls as fast as
# possible, and CALLS/10 calls paced at 50,000 calls/s.
#
# Starts the loopback test server outside the trace, then runs
# `BENCH_CLIENT --probe N ring|mutex RATE` under `strace -f`.  The probe warms
# up (200,000 calls + flush), prints its logging thread's id, writes the marker
# "mlo-probe-begin" (a write to fd -1: EBADF, harmless), makes CALLS
# mlo_log_metric calls, writes "mlo-probe-end".  Every system call strace
# records for that thread between the two markers was made by a log call.
# Calls of the other threads in the same window (the shipper, libcurl) are
# listed too, for information.
set -eu
exe=${1:?usage: bench_syscalls.sh BENCH_CLIENT [CALLS]}
calls=${2:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
python=${MLO_TEST_PYTHON:-/usr/bin/python3}

if ! command -v strace >/dev/null 2>&1; then
    echo "strace is not installed (sh tests/install_deps.sh installs it): skipped"
    exit 77
fi

tmp=$(mktemp -d)
srv_pid=""
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$python" "$here/mlflow_test_server.py" --port 0 >"$tmp/srv.out" 2>"$tmp/srv.err" &
srv_pid=$!
i=0
while ! grep -q '^PORT ' "$tmp/srv.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "test server did not start"; cat "$tmp/srv.err"; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/^PORT //p' "$tmp/srv.out")

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: CPU ${model:-unknown}, $(nproc) cores online; $(strace -V | head -1)"
echo "method: strace -f of '$(basename "$exe") --probe N ring|mutex RATE', counting the system calls of the"
echo "        logging thread between its begin/end markers (the marker writes not counted)"
echo

# burst: CALLS as fast as possible; paced: CALLS/10 at 50,000 calls/s (a rate
# the test server keeps up with, so the shipper's timer does the collecting)
for q in ring mutex; do
  for mode in burst paced; do
    if [ $mode = burst ]; then n=$calls; rate=0; else n=$((calls / 10)); rate=50000; fi
    MLFLOW_TRACKING_URI="http://127.0.0.1:$port" \
        strace -f -qq -o "$tmp/trace" "$exe" --probe "$n" "$q" "$rate" >"$tmp/probe" 2>&1 || {
        cat "$tmp/probe"
        exit 1
    }
    tid=$(sed -n 's/.*logging thread tid \([0-9]*\).*/\1/p' "$tmp/probe")
    [ -n "$tid" ] || { cat "$tmp/probe"; exit 1; }
    # Lines are "TID name(args) = ret", "TID name(args <unfinished ...>" (counted:
    # the call started) or "TID <... name resumed> ..." (not counted again).
    awk -v tid="$tid" -v label="$q $mode" -v calls="$n" '
        $1 == tid && /write\(-1, "mlo-probe-begin"/ { on = 1; next }
        $1 == tid && /write\(-1, "mlo-probe-end"/   { on = 0; next }
        on && $2 !~ /^<\.\.\./ && $2 ~ /^[a-z_0-9]+\(/ {
            name = $2; sub(/\(.*/, "", name)
            if ($1 == tid) { mine++; by[name]++ } else { other++; oby[name]++ }
        }
        END {
            printf "%-13s logging thread: %d system calls in %d log calls = %.3g per call",
                   label, mine, calls, mine / calls
            sep = " ("
            for (n in by) { printf "%s%s %d", sep, n, by[n]; sep = ", " }
            print (mine ? ")" : "")
            printf "%-13s other threads (shipper, curl) meanwhile: %d", "", other
            sep = " ("
            for (n in oby) { printf "%s%s %d", sep, n, oby[n]; sep = ", " }
            print (other ? ")" : "")
        }' "$tmp/trace"
    sed -n 's/^probe: dropped /              dropped: /p' "$tmp/probe"
  done
done
echo
echo "target: 0 system calls per log call in steady state"
