#!/usr/bin/python3
"""Drift test: every public function of include/mlo.h has a binding in Python and R.

Checks, for each function the header declares (parsed with pycparser, as the
generator does):
  1. the generated files of the build are up to date with the header (digest);
  2. the generated Python layer (_mlo_ffi.py) declares it with the right arity;
  3. the generated R glue (mlo_r_glue.c) defines and registers a wrapper with the
     right arity, and the R stubs (mlo_r_stubs.R) define .c_<function>;
  4. the hand-written layers use it: the Python package (mlo/*.py) names it, and
     the R package (R/*.R) calls .c_<function>; a function deliberately left out
     must be named in a comment there, with the reason;
  5. the library built exports it;
  6. the client options and the error classes follow the header: mlo.Client takes
     exactly the keywords generated from the mlo_options_set_* setters (its
     signature, read from a Python that loads the package with the generated
     module) and the R package sets mlo_client's arguments from the generated
     .mlo_options; every MLO_ERR_* status has its Python exception (error_for gives
     it, it is exported by mlo, under its family's class) and its R condition
     classes in the generated .mlo_conditions, which mlo.R uses.  An option setter
     counts as used by both packages through those tables.
Then it checks itself: a copy of the header with one more function must be
reported as drifted; with one more option setter and one more status, the
regenerated layers must carry them into mlo.Client's signature, its exceptions
and the R tables without a change to the hand-written code.

Usage: test_drift.py --header H --gen-dir DIR --python-pkg DIR --r-pkg DIR [--library SO] [--cc CC]
Exit status 0 when everything is bound, 1 otherwise.
"""

import argparse
import ctypes
import json
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_bindings  # noqa: E402


def load_py(path):
    spec = importlib.util.spec_from_file_location("_drift_ffi_%d" % id(path), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def hand_written(pkg_dir, pattern, exclude):
    text = ""
    for p in sorted(glob.glob(os.path.join(pkg_dir, pattern))):
        if os.path.basename(p) not in exclude:
            text += read(p)
    return text


def check(api, gen_dir, py_pkg, r_pkg, library=None, check_digest=True):
    """Returns a list of problems (empty: no drift)."""
    problems = []
    funcs = api.functions
    # 1 + 2: Python generated layer
    ffi_path = os.path.join(gen_dir, "_mlo_ffi.py")
    try:
        ffi = load_py(ffi_path)
    except Exception as e:  # noqa: BLE001
        return ["cannot load %s: %s" % (ffi_path, e)]
    if check_digest and ffi.HEADER_SHA256 != api.sha256:
        problems.append("%s was generated from another version of the header: rebuild" % ffi_path)
    for f in funcs:
        proto = ffi.PROTOTYPES.get(f.name)
        if proto is None:
            problems.append("python: %s has no ctypes prototype in _mlo_ffi.py" % f.name)
        elif len(proto[1]) != len(f.params):
            problems.append("python: %s has %d argtypes, the header %d parameters"
                            % (f.name, len(proto[1]), len(f.params)))
    # 3: R generated glue and stubs
    glue = read(os.path.join(gen_dir, "mlo_r_glue.c"))
    stubs = read(os.path.join(gen_dir, "mlo_r_stubs.R"))
    registered = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'\{"(mlo_\w+)", \(DL_FUNC\)&mlor_\1, (\d+)\}', glue)}
    for f in funcs:
        nargs = len(gen_bindings.r_args(f))
        if not re.search(r"\bstatic SEXP mlor_%s\(" % f.name, glue):
            problems.append("R: %s has no .Call wrapper in mlo_r_glue.c" % f.name)
        if registered.get(f.name) != nargs:
            problems.append("R: %s is not registered in R_init_mlo with %d arguments"
                            % (f.name, nargs))
        if not re.search(r"^\.c_%s <- function\(" % f.name, stubs, flags=re.M):
            problems.append("R: %s has no stub .c_%s in mlo_r_stubs.R" % (f.name, f.name))
    # 4: the hand-written layers (an option setter is applied through the generated
    # table when the package applies that table: checked in 6)
    py_text = hand_written(py_pkg, "*.py", {"_mlo_ffi.py"})
    r_text = hand_written(os.path.join(r_pkg, "R"), "*.R", {"mlo_r_stubs.R"})
    setters = {o.setter for o in api.options}
    py_tables = "ffi.OPTIONS" in py_text
    r_tables = ".mlo_options" in r_text and "formals(mlo_client)" in r_text
    for f in funcs:
        if f.name in setters and py_tables and r_tables:
            continue
        if not re.search(r"\b%s\b" % f.name, py_text):
            problems.append("python: the mlo package never uses %s (wrap it, or name it in a "
                            "comment saying why not)" % f.name)
        if not re.search(r"(\.c_|\bC_)%s\b" % f.name, r_text) and \
                not re.search(r"#.*\b%s\b" % f.name, r_text):
            problems.append("R: the mlo package never calls .c_%s or C_%s (wrap it, or name it "
                            "in a comment saying why not)" % (f.name, f.name))
    # 6: options and errors, as the packages see them
    problems += check_tables(api, gen_dir, py_pkg, r_pkg, stubs, r_text, library)
    # 5: the library
    if library:
        lib = ctypes.CDLL(library)
        for f in funcs:
            if not hasattr(lib, f.name):
                problems.append("library: %s does not export %s" % (library, f.name))
    return problems


PY_SURFACE = r"""
import inspect, json, sys
import mlo
from mlo import _client
sig = inspect.signature(mlo.Client)
out = {"keywords": [p.name for p in sig.parameters.values()], "errors": {}}
for name, value in _client.ffi.mlo_status.items():
    if not name.startswith("MLO_ERR_"):
        continue
    cls = type(mlo.error_for(value))
    out["errors"][name] = {"class": cls.__name__, "mro": [c.__name__ for c in cls.__mro__],
                           "exported": getattr(mlo, cls.__name__, None) is cls}
print("SURFACE " + json.dumps(out))
"""


def python_surface(gen_dir, py_pkg, library):
    """What a Python loading the package with this generated module sees."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["MLO_FFI"] = os.path.join(gen_dir, "_mlo_ffi.py")
    env["PYTHONPATH"] = os.path.dirname(os.path.abspath(py_pkg))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if library:
        env["MLO_LIBRARY"] = library
    r = subprocess.run([sys.executable, "-c", PY_SURFACE], env=env, capture_output=True,
                       text=True, timeout=120)
    for line in r.stdout.splitlines():
        if line.startswith("SURFACE "):
            return json.loads(line[len("SURFACE "):]), None
    return None, "python: cannot load the package with %s: %s" % (env["MLO_FFI"],
                                                                 r.stderr.strip()[-800:])


def check_tables(api, gen_dir, py_pkg, r_pkg, stubs, r_text, library):
    problems = []
    kws = [o.keyword for o in api.options]
    r_kws = [o.keyword for o in api.options if o.kind != "callback"]
    # Python: the signature of mlo.Client, the exception of each status
    surf, err = python_surface(gen_dir, py_pkg, library)
    if err:
        return [err]
    got = [k for k in surf["keywords"] if k != "self"]
    if sorted(got) != sorted(kws):
        problems.append("python: mlo.Client's keywords differ from the header's options: "
                        "missing %s, extra %s" % (sorted(set(kws) - set(got)),
                                                  sorted(set(got) - set(kws))))
    by = {e.status: e for e in api.errors}
    for e in api.errors:
        seen = surf["errors"].get(e.status)
        if seen is None:
            problems.append("python: %s has no exception" % e.status)
            continue
        if seen["class"] != e.py_class or not seen["exported"]:
            problems.append("python: %s raises %s (exported: %s), expected mlo.%s"
                            % (e.status, seen["class"], seen["exported"], e.py_class))
        fam = e.family
        while fam:
            if by[fam].py_class not in seen["mro"]:
                problems.append("python: %s is not a %s (its family %s)"
                                % (e.py_class, by[fam].py_class, fam))
            fam = by[fam].family
        if "MloError" not in seen["mro"]:
            problems.append("python: %s is not an MloError" % e.py_class)
    # R: the generated tables have every option and status; mlo.R applies them
    for k in r_kws:
        if not re.search(r'list\(keyword = "%s",' % re.escape(k), stubs):
            problems.append("R: option %s is not in .mlo_options (mlo_r_stubs.R)" % k)
    for e in api.errors:
        classes = gen_bindings.r_condition_classes(api, e)
        want = "  %s = c(%s)" % (e.status, ", ".join('"%s"' % c for c in classes))
        if want not in stubs:
            problems.append("R: %s has no condition classes %s in .mlo_conditions"
                            % (e.status, classes))
    if "formals(mlo_client) <- " not in r_text or ".mlo_option_keywords" not in r_text:
        problems.append("R: mlo_client's arguments are not set from .mlo_option_keywords")
    if "mlo_apply_options" not in r_text or ".mlo_conditions" not in r_text:
        problems.append("R: mlo.R does not apply .mlo_options / .mlo_conditions")
    for hand in ("MLO_ERR_INVALID_KEY = ", '"mlo_invalid_key"'):
        if hand in r_text:
            problems.append("R: mlo.R holds a hand-written status table (%s)" % hand)
    rd = os.path.join(gen_dir, "mlo_client.Rd")
    if os.path.exists(rd):
        text = read(rd)
        for k in r_kws:
            if not re.search(r"\b%s = NULL" % re.escape(k), text):
                problems.append("R: mlo_client.Rd does not document %s" % k)
    else:
        problems.append("R: %s is missing" % rd)
    return problems


def self_test(header, gen_dir, py_pkg, r_pkg, cc):
    """A header with one more function must be reported as drifted."""
    text = read(header)
    extra = "MLO_API int mlo_drift_probe(mlo_run_t *run, const char *key);\n"
    marker = "#ifdef __cplusplus\n}"
    if marker not in text:
        return ["self-test: cannot find where to add a function in the header"]
    with tempfile.TemporaryDirectory() as d:
        h2 = os.path.join(d, "mlo.h")
        with open(h2, "w", encoding="utf-8") as f:
            f.write(text.replace(marker, extra + marker, 1))
        api2 = gen_bindings.parse_header(h2, cc)
        if "mlo_drift_probe" not in [f.name for f in api2.functions]:
            return ["self-test: the parser did not see the added function"]
        # against the current generated files: everything about the probe is missing
        p1 = check(api2, gen_dir, py_pkg, r_pkg, check_digest=False)
        if not any("mlo_drift_probe" in p for p in p1):
            return ["self-test: a function missing from the bindings was not reported"]
        # regenerated: the low-level layers have it, the hand-written ones still do not
        out = os.path.join(d, "gen")
        if gen_bindings.main(["--header", h2, "--outdir", out, "--cc", cc]) != 0:
            return ["self-test: the generator failed on the extended header"]
        p2 = check(api2, out, py_pkg, r_pkg)
        if [p for p in p2 if "mlo_drift_probe" not in p]:
            return ["self-test: unexpected problems: %s" % p2]
        if not any(p.startswith("python: the mlo package never uses mlo_drift_probe")
                   for p in p2) or not any(p.startswith("R: the mlo package never calls")
                                           for p in p2):
            return ["self-test: an unwrapped generated function was not reported: %s" % p2]
        # an option and a status added to the header reach both packages unchanged
        h4 = os.path.join(d, "mlo4.h")
        probe_opt = "MLO_API int mlo_options_set_drift_probe_ms(mlo_options_t *opts, unsigned probe_ms);\n"
        t4 = text.replace(marker, probe_opt + marker, 1)
        last = "    MLO_ERR_ARTIFACTS_NOT_PROXIED = 26,\n"
        if last not in t4:
            return ["self-test: cannot find the last status of the header"]
        t4 = t4.replace(last, last + "    /** A probe of the drift test. */\n"
                        "    MLO_ERR_DRIFT_PROBE = 27,\n", 1)
        with open(h4, "w", encoding="utf-8") as f:
            f.write(t4)
        out4 = os.path.join(d, "gen4")
        if gen_bindings.main(["--header", h4, "--outdir", out4, "--cc", cc]) != 0:
            return ["self-test: the generator failed on a header with a new option"]
        api4 = gen_bindings.parse_header(h4, cc)
        p4 = check(api4, out4, py_pkg, r_pkg, check_digest=False)
        p4 = [p for p in p4 if not p.startswith("library:")]
        if p4:
            return ["self-test: a new option or status did not reach the packages: %s" % p4]
        surf, err = python_surface(out4, py_pkg, os.environ.get("MLO_LIBRARY"))
        if err or "drift_probe_ms" not in surf["keywords"] or \
                surf["errors"].get("MLO_ERR_DRIFT_PROBE", {}).get("class") != "MloDriftProbeError":
            return ["self-test: mlo.Client / mlo.error_for did not pick up the probe: %s"
                    % (err or surf)]
        # an unbindable type must stop the generator, not be skipped
        h3 = os.path.join(d, "mlo3.h")
        with open(h3, "w", encoding="utf-8") as f:
            f.write(text.replace(marker, "MLO_API int mlo_drift_bad(float **x);\n" + marker, 1))
        r = subprocess.run([sys.executable, os.path.join(HERE, "gen_bindings.py"), "--header", h3,
                            "--outdir", os.path.join(d, "gen3"), "--cc", cc],
                           capture_output=True, text=True)
        if r.returncode == 0 or "mlo_drift_bad" not in r.stderr:
            return ["self-test: the generator accepted a parameter it cannot bind"]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", required=True)
    ap.add_argument("--gen-dir", required=True)
    ap.add_argument("--python-pkg", required=True)
    ap.add_argument("--r-pkg", required=True)
    ap.add_argument("--library")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    a = ap.parse_args()
    if not shutil.which(a.cc.split()[0]):
        a.cc = "cc"
    api = gen_bindings.parse_header(a.header, a.cc)
    if a.library:
        os.environ.setdefault("MLO_LIBRARY", a.library)
    problems = check(api, a.gen_dir, a.python_pkg, a.r_pkg, a.library)
    if problems:
        print("DRIFT: %d problem(s) between %s and the bindings:" % (len(problems), a.header))
        for p in problems:
            print("  - " + p)
        return 1
    print("%d public functions of %s, all bound in Python and R:" % (len(api.functions), a.header))
    for f in api.functions:
        print("  %-34s R args: %s" % (f.name, ", ".join(gen_bindings.r_args(f) and
                                                          [p.name for p in gen_bindings.r_args(f)]) or "-"))
    st = self_test(a.header, a.gen_dir, a.python_pkg, a.r_pkg, a.cc)
    if st:
        print("SELF-TEST FAILED: " + "; ".join(st))
        return 1
    print("self-test: an added header function is reported until both bindings wrap it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
