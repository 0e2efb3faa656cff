#!/bin/sh
# Installs, from Debian's packages, whatever of mlo's build and test
# dependencies is missing.  Used by both of the README's set-up commands.
set -eu
# What the build needs (the main job): compilers, meson, the libraries,
# cmocka (tests build by default) and pycparser (the bindings' generator).
pkgs="meson ninja-build gcc pkg-config libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler
libzstd-dev libjansson-dev libcmocka-dev libssl-dev python3 python3-pycparser"
# What the tests need on top (tests/run_all.sh sets MLO_WITH_SANITIZERS=1):
# openssl for the TLS certificates, git for the system-tag test, R for the R
# binding, strace for a benchmark, valgrind for the examples' memcheck,
# clang's runtime for libFuzzer, Chromium for the `mlo report` page,
# python3-venv for the Python package's install test (a fresh venv),
# python3-sklearn for the MLflow tutorial and mlo.sklearn tests, clang-format
# for the layout check of the sources (.clang-format), python3-dev for the
# Python binding's C extension mlo._ext (built only when its headers are there;
# the python_ext test compares it with the ctypes code).
[ "${MLO_WITH_SANITIZERS:-0}" = 1 ] &&
    pkgs="$pkgs openssl git r-base-dev r-cran-testthat strace valgrind libclang-rt-14-dev clang
chromium python3-venv python3-sklearn clang-format python3-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
