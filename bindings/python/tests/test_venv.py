#!/usr/bin/python3
"""pip install bindings/python is self-contained (issue 14, item 4): in a fresh virtual
environment (a plain one: no system site-packages, so nothing of the system's Python is
visible), `pip install --no-index bindings/python` builds offline a package that carries
its own libmlo and generated ctypes layer; `import mlo` there finds both inside the
package (no $MLO_LIBRARY, no meson install, no build directory: the interpreter runs
outside the source tree), and a run logged from it lands on the test server.

The library bundled: in the plain build, compiled from the source tree by the package's
build backend (meson, release, the shared library only), as a user's pip install does;
in a sanitizer build, the build's own instrumented libmlo (MLO_WHEEL_LIBRARY), loaded
with the sanitizer runtime preloaded, so the packaging and loading path is checked
there too without compiling the library a second time.  Needs python3-venv (ensurepip);
exits 77 (skipped) without it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mlo_testserver import PYTHON, REPO, TestServer  # noqa: E402

PKG = os.path.join(REPO, "bindings", "python")

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

SCRIPT = r"""
import json, os, sys
import mlo
mlo.set_tracking_uri(sys.argv[1])
with mlo.start_run(experiment_name="venv-install", run_name="from-a-venv") as run:
    mlo.log_param("where", "venv")
    mlo.log_metric("x", 1.5, step=3)
mlo.flush(30)
print("RESULT " + json.dumps({"library": mlo.LIBRARY, "file": mlo.__file__,
                              "hot_path": mlo._client.HOT_PATH,
                              "ext": getattr(mlo._client._ext, "__file__", None),
                              "ffi": mlo.ffi.__file__, "prefix": sys.prefix,
                              "base_prefix": sys.base_prefix, "run_id": run.info.run_id,
                              "sys_path": sys.path}))
"""


def clean_env(preload=False, **extra):
    """The environment of a fresh shell: nothing of the build's Python setup.  preload:
    keep the sanitizer runtime a sanitizer build preloads (only the interpreter that
    loads libmlo needs it; venv and pip are much faster without)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLO_FFI", "MLO_LIBRARY", "MLO_EXT", "LD_LIBRARY_PATH",
                        "MLO_WHEEL_LIBRARY", "VIRTUAL_ENV", "PYTHONHOME")
           and not k.startswith("PIP_") and (preload or k != "LD_PRELOAD")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_WARN_SCRIPT_LOCATION="1", PIP_ROOT_USER_ACTION="ignore",
               PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


class TestVenvInstall(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mlo-venv-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_pip_install_into_a_fresh_venv_then_log_a_run(self):
        venv = os.path.join(self.tmp, "venv")
        p = subprocess.run([PYTHON, "-m", "venv", venv], env=clean_env(), capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0 and "ensurepip" in (p.stdout + p.stderr):
            raise unittest.SkipTest("python3-venv is not installed (apt-get install python3-venv)")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        vpy = os.path.join(venv, "bin", "python")
        # the backend compiles libmlo as a user's pip does, at meson's "plain"
        # build type rather than "release" (the same sources and steps, no
        # optimisation: a third of the compiling, for the suite's time)
        extra = {"MLO_WHEEL_BUILDTYPE": "plain"}
        if os.environ.get("MLO_SANITIZED"):
            extra = {"MLO_WHEEL_LIBRARY": os.environ["MLO_LIBRARY"]}
        p = subprocess.run([vpy, "-m", "pip", "install", "-v", "--no-index", PKG],
                           env=clean_env(**extra), capture_output=True, text=True,
                           timeout=600, cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        if "MLO_WHEEL_LIBRARY" not in extra:
            self.assertIn("compiling libmlo", p.stdout + p.stderr)  # the backend built it
        # a wheel with a library in it: for any Python 3, or for this one with mlo._ext
        # (compiled when Python's headers are there: python3-dev)
        import sysconfig
        has_ext = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
        self.assertIn("cp%d%d-cp%d%d-linux" % (sys.version_info[:2] * 2) if has_ext
                      else "py3-none-linux", p.stdout + p.stderr)

        with TestServer() as srv:
            store = os.path.join(self.tmp, "store")
            p = subprocess.run([vpy, "-c", SCRIPT, srv.url],
                               env=clean_env(preload=True, MLO_STORE_DIR=store),
                               capture_output=True, text=True, timeout=120, cwd="/")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            res = json.loads([ln for ln in p.stdout.splitlines()
                              if ln.startswith("RESULT ")][0][len("RESULT "):])
            site = os.path.realpath(venv)
            # everything came from the venv: the package, its generated layer, its library
            self.assertEqual(os.path.realpath(res["prefix"]), site)
            self.assertNotEqual(res["prefix"], res["base_prefix"])
            for key in ("file", "ffi"):
                self.assertTrue(os.path.realpath(res[key]).startswith(site + os.sep), res)
            libpath = res["library"].split(" (")[0]
            self.assertTrue(os.path.realpath(libpath).startswith(site + os.sep), res)
            self.assertIn("bundled in the package", res["library"])
            if has_ext:  # the package's own mlo._ext is the one in use
                self.assertEqual(res["hot_path"], "extension", res)
                self.assertTrue(os.path.realpath(res["ext"]).startswith(site + os.sep), res)
            else:
                self.assertEqual(res["hot_path"], "ctypes", res)
            self.assertFalse(any(p.startswith(REPO) for p in res["sys_path"] if p), res)
            self.assertFalse(any(p.endswith("dist-packages") for p in res["sys_path"]), res)
            run = srv.run(res["run_id"])
            self.assertEqual(run["info"]["status"], "FINISHED")
            self.assertEqual(run["params"], {"where": "venv"})
            self.assertEqual([(m["key"], m["value"], m["step"]) for m in run["metrics"]],
                             [("x", 1.5, 3)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
