#!/usr/bin/python3
"""Builds, installs, tests and checks the mlo R package from a meson build.

    run_r.py stage|install|test|check|example --build-dir B --source-dir S [--work DIR]

stage    copies bindings/r and the generated glue and stubs (B/bindings/mlo_r_glue.c,
         mlo_r_stubs.R) into WORK/pkg/mlo: the package as R CMD build would see it;
install  stage + R CMD INSTALL into WORK/lib, linked against B/src/libmlo.so
         (MLO_CFLAGS/MLO_LIBS point configure at the build; rpath set);
test     install + the testthat suite (against tests/mlflow_test_server.py);
check    stage + R CMD build + R CMD check --no-manual; fails unless "Status: OK"
         and the testthat suite it runs (against the test server) passed whole
         (no skip, no failure): the meson test of the R package;
example  install + Rscript examples/r/iris_grid.R against a test server;
pkgconfig  R CMD INSTALL of a plain copy of bindings/r (no generated files: its
         configure generates them) found through pkg-config ("mlo", from the
         build's uninstalled .pc file), then loads it without LD_LIBRARY_PATH;
prefix   the same against libmlo installed under a prefix outside the loader's
         paths (meson install --destdir into WORK, the .pc prefix pointed there):
         the package's RUNPATH names that libdir and ldd resolves libmlo there.

Exits 77 (meson's "skipped") when R is not installed or the build uses sanitizers
(an instrumented libmlo cannot be loaded into an uninstrumented R).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


def sh(cmd, env=None, cwd=None, check=True, capture=False):
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, env=env, cwd=cwd, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None)
    if capture:
        sys.stdout.write(r.stdout)
    if check and r.returncode != 0:
        sys.exit("command failed (%d): %s" % (r.returncode, " ".join(cmd)))
    return r


def env_for(a):
    libdir = os.path.join(a.build_dir, "src")
    env = dict(os.environ)
    env["MLO_CFLAGS"] = "-I" + os.path.join(a.source_dir, "include")
    env["MLO_LIBS"] = "-L%s -lmlo -Wl,-rpath,%s" % (libdir, libdir)
    env["MLO_TEST_SERVER"] = os.path.join(a.source_dir, "tests", "mlflow_test_server.py")
    env["MLO_TEST_PYTHON"] = "/usr/bin/python3"
    env["R_LIBS"] = os.path.join(a.work, "lib")
    env["MLO_STORE_DIR"] = os.path.join(a.work, "store")  # not ./mlo-store of the caller
    env.setdefault("_R_CHECK_FORCE_SUGGESTS_", "false")
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    return env


def stage(a):
    pkg = os.path.join(a.work, "pkg", "mlo")
    if os.path.exists(pkg):
        shutil.rmtree(pkg)
    src = os.path.join(a.source_dir, "bindings", "r")
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns(
        "*.o", "*.so", "Makevars", "mlo_r_glue.c", "mlo_r_stubs.R", "mlo_client.Rd",
        ".Rhistory"))
    gen = os.path.join(a.build_dir, "bindings")
    shutil.copy(os.path.join(gen, "mlo_r_glue.c"), os.path.join(pkg, "src"))
    shutil.copy(os.path.join(gen, "mlo_r_stubs.R"), os.path.join(pkg, "R"))
    shutil.copy(os.path.join(gen, "mlo_client.Rd"), os.path.join(pkg, "man"))
    return pkg


def install(a):
    pkg = stage(a)
    lib = os.path.join(a.work, "lib")
    os.makedirs(lib, exist_ok=True)
    sh(["R", "CMD", "INSTALL", "--no-multiarch", "-l", lib, pkg], env=env_for(a))
    return pkg


def install_with_pkgconfig(a, env, pc_text, header, libdir):
    """R CMD INSTALL of a plain copy of bindings/r (no generated files: its configure
    generates them) finding libmlo through pkg-config alone (the .pc text given), then
    loads it with no LD_LIBRARY_PATH: the package's shared object must name libdir in
    its RUNPATH and the loader must take libmlo from there."""
    src = os.path.join(a.work, "src")
    if os.path.exists(src):
        shutil.rmtree(src)
    # the layout configure expects: bindings/{r,gen_bindings.py}; the header: MLO_HEADER
    shutil.copytree(os.path.join(a.source_dir, "bindings", "r"), os.path.join(src, "r"),
                    ignore=shutil.ignore_patterns("*.o", "*.so", "Makevars", "mlo_r_glue.c",
                                                  "mlo_r_stubs.R", "mlo_client.Rd"))
    shutil.copy(os.path.join(a.source_dir, "bindings", "gen_bindings.py"), src)
    pc = os.path.join(a.work, "pkgconfig")
    os.makedirs(pc, exist_ok=True)
    with open(os.path.join(pc, "mlo.pc"), "w") as f:
        f.write(pc_text)
    for k in ("MLO_CFLAGS", "MLO_LIBS", "LD_LIBRARY_PATH", "MLO_NO_RPATH"):
        env.pop(k, None)
    env["PKG_CONFIG_PATH"] = pc
    env["MLO_HEADER"] = header
    lib = os.path.join(a.work, "lib")
    if os.path.exists(lib):
        shutil.rmtree(lib)
    os.makedirs(lib)
    r = sh(["R", "CMD", "INSTALL", "--no-multiarch", "-l", lib, os.path.join(src, "r")],
           env=env, check=False, capture=True)
    if r.returncode != 0 or "mlo: found with pkg-config" not in r.stdout:
        print("R CMD INSTALL failed or did not use pkg-config")
        return 1
    for gen in ("src/mlo_r_glue.c", "R/mlo_r_stubs.R", "man/mlo_client.Rd"):
        if not os.path.exists(os.path.join(src, "r", gen)):
            print("configure did not generate %s" % gen)
            return 1
    so = os.path.join(lib, "mlo", "libs", "mlo.so")
    real = os.path.realpath(libdir)
    d = subprocess.run(["readelf", "-d", so], capture_output=True, text=True)
    runpath = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[(.*)\]", d.stdout)
    print("%s: RUNPATH %s" % (so, runpath))
    if not any(real in map(os.path.realpath, p.split(":")) for p in runpath):
        print("the package's shared object has no RUNPATH to %s" % libdir)
        return 1
    ld = subprocess.run(["ldd", so], capture_output=True, text=True, env=env)
    hit = re.search(r"libmlo\.so\.\d+ => (\S+)", ld.stdout)
    print("ldd: libmlo from %s" % (hit.group(1) if hit else "nowhere"))
    if not hit or os.path.realpath(os.path.dirname(hit.group(1))) != real:
        print(ld.stdout)
        print("libmlo is not loaded from %s" % libdir)
        return 1
    r = sh(["Rscript", "-e", "library(mlo); cat('mlo', mlo_version(), 'loaded\\n')"],
           env=env, check=False, capture=True)
    return 0 if r.returncode == 0 and "loaded" in r.stdout else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["stage", "install", "test", "check", "example",
                                     "pkgconfig", "prefix"])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--work", help="working directory (default BUILD/bindings/r-<what>)")
    ap.add_argument("--sanitized", default="none")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    a.source_dir = os.path.abspath(a.source_dir)
    a.work = os.path.abspath(a.work or os.path.join(a.build_dir, "bindings", "r-" + a.what))
    if a.what != "stage":
        if not shutil.which("R") or not shutil.which("Rscript"):
            print("R is not installed (apt-get install r-base-dev r-cran-testthat): skipped")
            return SKIP
        if a.sanitized not in ("", "none"):
            print("sanitized build (%s): libmlo cannot be loaded into R: skipped" % a.sanitized)
            return SKIP
    os.makedirs(a.work, exist_ok=True)
    env = env_for(a)
    if a.what == "stage":
        print(stage(a))
    elif a.what == "install":
        install(a)
    elif a.what == "test":
        pkg = install(a)
        code = ("library(testthat); library(mlo); "
                "res <- test_dir(%r, reporter = 'summary', stop_on_failure = TRUE); "
                "invisible(res)" % os.path.join(pkg, "tests", "testthat"))
        r = sh(["Rscript", "-e", code], env=env, cwd=a.work, check=False)
        return r.returncode
    elif a.what == "check":
        pkg = stage(a)
        os.makedirs(os.path.join(a.work, "lib"), exist_ok=True)
        for f in os.listdir(a.work):
            if f.endswith(".tar.gz"):
                os.remove(os.path.join(a.work, f))
        sh(["R", "CMD", "build", "--no-manual", pkg], env=env, cwd=a.work)
        tarball = [f for f in os.listdir(a.work) if f.startswith("mlo_") and f.endswith(".tar.gz")][0]
        r = sh(["R", "CMD", "check", "--no-manual", "-o", a.work, tarball], env=env, cwd=a.work,
               check=False, capture=True)
        log = os.path.join(a.work, "mlo.Rcheck", "00check.log")
        text = open(log).read() if os.path.exists(log) else r.stdout
        if r.returncode != 0 or "Status: OK" not in text:
            for sub in ("tests/testthat.Rout.fail", "00install.out"):
                p = os.path.join(a.work, "mlo.Rcheck", sub)
                if os.path.exists(p):
                    print("---- %s" % p)
                    print(open(p).read()[-6000:])
            print("R CMD check is not clean (want Status: OK)")
            return 1
        # the check ran the testthat suite against the test server: every
        # expectation ran (a skip would mean no server), none failed
        rout = os.path.join(a.work, "mlo.Rcheck", "tests", "testthat.Rout")
        m = re.search(r"\[ FAIL (\d+) \| WARN \d+ \| SKIP (\d+) \| PASS (\d+) \]",
                      open(rout).read() if os.path.exists(rout) else "")
        if not m or m.group(1) != "0" or m.group(2) != "0" or int(m.group(3)) == 0:
            print("the testthat suite did not run whole in R CMD check: %s"
                  % (m.group(0) if m else "no summary in " + rout))
            return 1
        print("R CMD check: Status: OK; testthat: %s" % m.group(0))
    elif a.what == "pkgconfig":
        # the build's uninstalled .pc file: -L<build>/src
        with open(os.path.join(a.build_dir, "meson-uninstalled", "mlo-uninstalled.pc")) as f:
            text = f.read()
        return install_with_pkgconfig(a, env, text, os.path.join(a.source_dir, "include",
                                                                 "mlo.h"),
                                      os.path.join(a.build_dir, "src"))
    elif a.what == "prefix":
        # libmlo installed under a prefix outside the loader's paths (meson install
        # --destdir, the .pc file's prefix pointed there as --prefix would have written
        # it): the package must load it without LD_LIBRARY_PATH
        meson = shutil.which("meson")
        if not meson:
            print("meson is not on PATH: skipped")
            return SKIP
        dest = os.path.join(a.work, "destdir")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        sh([meson, "install", "-C", a.build_dir, "--no-rebuild", "--quiet", "--destdir", dest],
           env=env)
        pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "mlo.pc"]
        headers = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "mlo.h"]
        if len(pcs) != 1 or len(headers) != 1:
            print("meson install put %d mlo.pc and %d mlo.h under %s" % (len(pcs), len(headers),
                                                                      dest))
            return 1
        with open(pcs[0]) as f:
            text = f.read()
        m = re.search(r"^prefix=(.*)$", text, flags=re.M)
        if not m:
            print("no prefix= in %s" % pcs[0])
            return 1
        text = text.replace(m.group(0), "prefix=" + dest + m.group(1), 1)
        libdir = os.path.dirname(os.path.dirname(pcs[0]))
        return install_with_pkgconfig(a, env, text, headers[0], libdir)
    elif a.what == "example":
        install(a)
        sys.path.insert(0, os.path.join(HERE, "python", "tests"))
        from mlo_testserver import TestServer
        with TestServer() as srv:
            env["MLFLOW_TRACKING_URI"] = srv.url
            sh(["Rscript", os.path.join(a.source_dir, "examples", "r", "iris_grid.R")], env=env)
            d = srv.dump()
            runs = [r for r in d["runs"]
                    if r["tags"].get("mlflow.source.name", "").endswith("iris_grid.R")]
            # the model file, an RDS (gzip) of each run, on the server
            stored = {a["path"]: a["size"] for a in d.get("artifacts", [])}
            bad = [r for r in runs if r["info"]["status"] != "FINISHED"
                   or "accuracy" not in {m["key"] for m in r["metrics"]}
                   or "f1_macro" not in {m["key"] for m in r["metrics"]} or "k" not in r["params"]
                   or stored.get("%s/%s/artifacts/model/model.rds" % (
                       r["info"]["experiment_id"], r["info"]["run_id"]), 0) < 20]
            print("%d runs stored by the R example (with model/model.rds), %d incomplete"
                  % (len(runs), len(bad)))
            if len(runs) < 2 or bad:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
