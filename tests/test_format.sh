#!/bin/sh
# Every C source and header of the tree laid out as the committed
# .clang-format says (clang-format --dry-run -Werror: prints what differs).
# Usage: test_format.sh SOURCE_ROOT.  Exits 77 (skipped) without clang-format.
# A hand-laid table may sit between "// clang-format off" and "on".
# To fix: git ls-files '*.c' '*.h' | xargs clang-format -i
set -u
cd "$1" || exit 1
command -v clang-format >/dev/null 2>&1 || { echo "no clang-format"; exit 77; }
if [ -d .git ] && command -v git >/dev/null 2>&1; then
    files=$(git ls-files '*.c' '*.h')
else
    files=$(find include src tests examples bindings -name '*.[ch]' | sort)
fi
n=$(echo "$files" | wc -l)
# shellcheck disable=SC2086
if ! clang-format --dry-run -Werror $files; then
    echo "FAIL: not laid out as .clang-format says (above); fix with clang-format -i"
    exit 1
fi
echo "$n files laid out as .clang-format says"
