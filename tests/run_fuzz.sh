#!/bin/sh
# run_fuzz.sh FUZZER CORPUS_DIR SECONDS OUT_DIR [DICT]
#
# One bounded libFuzzer run of FUZZER (a clang -fsanitize=fuzzer binary) for
# SECONDS, starting from the committed CORPUS_DIR.  New inputs go to a
# scratch directory, never into the source tree; a crashing input is kept in
# OUT_DIR/<name>-crash-* and printed (hex) so it can be committed to the corpus
# as a regression input.  Prints libFuzzer's final statistics and one summary
# line, and appends it to OUT_DIR/fuzz-stats.txt:
#   FUZZ <name>: <N> executions in <T> s (<N/T>/s), corpus <seeds> -> <units>
# Exit status: libFuzzer's (0 = nothing found).
set -u
fuzzer=$1 corpus=$2 seconds=$3 out=$4 dict=${5:-}
name=$(basename "$fuzzer")
mkdir -p "$out"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/mlo-$name.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT INT TERM
log="$out/$name.log"
rm -f "$out/$name"-crash-* "$out/$name"-leak-* "$out/$name"-timeout-* "$out/$name"-oom-*
# -error_exitcode: libFuzzer's default, 77, is what meson reads as "skipped"
set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -error_exitcode=1 -timeout_exitcode=1 \
    -artifact_prefix="$out/$name-" -close_fd_mask=1
[ -n "$dict" ] && set -- "$@" -dict="$dict"
start=$(date +%s)
"$fuzzer" "$@" "$scratch" "$corpus" >"$log" 2>&1
rc=$?
end=$(date +%s)
# the last lines: libFuzzer's summary and final stats
grep -E '^(Done|stat::|INFO: (seed|Seed)|==[0-9]+==|SUMMARY|fuzz_)' "$log" | tail -30
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
units=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | sed 's/corp: //')
seeds=$(find "$corpus" -type f | wc -l)
secs=$((end - start))
[ "$secs" -gt 0 ] || secs=1
line="FUZZ $name: ${execs:-?} executions in $secs s ($(( ${execs:-0} / secs ))/s), corpus $seeds -> ${units:-?} units, exit $rc"
echo "$line"
echo "$line" >>"$out/fuzz-stats.txt"
if [ $rc != 0 ]; then
    echo "--- libFuzzer log (tail) ---"
    tail -60 "$log"
    for f in "$out/$name"-crash-* "$out/$name"-leak-* "$out/$name"-timeout-* "$out/$name"-oom-*; do
        [ -f "$f" ] || continue
        echo "--- input $f (commit it under $corpus as a regression input) ---"
        od -A d -c "$f" | head -40
    done
fi
[ $rc = 77 ] && rc=1 # never let a failure pass for a skip
exit $rc
