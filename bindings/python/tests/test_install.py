#!/usr/bin/python3
"""The Python package installs offline with pip (both ways) and imports from the
build tree.  Run by meson with /usr/bin/python3 (suite "bindings")."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)  # bindings/python
REPO = os.path.dirname(os.path.dirname(PKG))
PY = "/usr/bin/python3"

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLO_FFI", "MLO_LIBRARY", "MLO_EXT")
           and not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_WARN_SCRIPT_LOCATION="1",
               PIP_ROOT_USER_ACTION="ignore")
    env.update(extra)
    return env


PROBE = ("import mlo, os; print(os.path.dirname(mlo.__file__)); print(mlo.ffi.__file__); "
         "print(mlo.LIBRARY); print(mlo.version()); print(mlo._client.HOT_PATH); "
         "print(getattr(mlo._client._ext, '__file__', None))")


class TestInstall(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mlo-install-")
        # a copy of the parts of the tree the build reads (pip builds in place)
        src = os.path.join(self.tmp, "src")
        shutil.copytree(PKG, os.path.join(src, "bindings", "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "tests",
                                                      "__pycache__"))
        shutil.copy(os.path.join(REPO, "bindings", "gen_bindings.py"),
                    os.path.join(src, "bindings"))
        os.makedirs(os.path.join(src, "include"))
        shutil.copy(os.path.join(REPO, "include", "mlo.h"), os.path.join(src, "include"))
        self.src = os.path.join(src, "bindings", "python")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def pip_install(self, *flags):
        target = os.path.join(self.tmp, "site")
        # the build's libmlo is bundled as it is (test_venv.py compiles one from the tree)
        p = subprocess.run([PY, "-m", "pip", "install", "--no-index", "--no-deps", "--target",
                            target] + list(flags) + [self.src],
                           env=clean_env(MLO_WHEEL_LIBRARY=os.environ.get("MLO_LIBRARY", "")),
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return target

    def probe(self, path, **env):
        p = subprocess.run([PY, "-c", PROBE], env=clean_env(PYTHONPATH=path, **env),
                           capture_output=True, text=True, cwd=self.tmp, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split("\n")

    def check_installed(self, target):
        pkg_dir, ffi, lib, version, hot_path, ext = self.probe(
            target, MLO_LIBRARY=os.environ.get("MLO_LIBRARY", ""))[:6]
        self.assertEqual(os.path.realpath(pkg_dir), os.path.realpath(os.path.join(target, "mlo")))
        self.assertEqual(os.path.realpath(ffi),
                         os.path.realpath(os.path.join(target, "mlo", "_mlo_ffi.py")))
        self.assertTrue(version.count(".") == 2, version)
        with open(os.path.join(REPO, "include", "mlo.h"), "rb") as f:
            import hashlib
            digest = hashlib.sha256(f.read()).hexdigest()
        with open(ffi) as f:
            self.assertIn(digest, f.read())  # generated from this header, at install time
        # mlo._ext, compiled at install time when Python's headers are there (python3-dev)
        import sysconfig
        if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
            self.assertEqual(hot_path, "extension")
            self.assertEqual(os.path.dirname(os.path.realpath(ext)),
                             os.path.realpath(os.path.join(target, "mlo")))
        else:
            self.assertEqual(hot_path, "ctypes")
        bundled = os.path.join(target, "mlo", "_lib", "libmlo.so.0")
        self.assertTrue(os.path.exists(bundled))  # the library bundled in the package
        if os.environ.get("MLO_LIBRARY"):
            with open(bundled, "rb") as f, open(os.environ["MLO_LIBRARY"], "rb") as g:
                self.assertEqual(f.read(), g.read())

    def test_pip_install_offline_isolated(self):
        """Plain "pip install bindings/python": the in-tree backend, nothing to download."""
        target = self.pip_install()
        self.check_installed(target)
        info = [d for d in os.listdir(target) if d.endswith(".dist-info")]
        self.assertEqual(info, ["mlo-0.1.0.dist-info"])

    def test_pip_install_with_debian_setuptools(self):
        """"pip install --no-build-isolation bindings/python": setuptools of the system."""
        try:
            import setuptools  # noqa: F401
        except ImportError:
            self.skipTest("python3-setuptools is not installed")
        target = self.pip_install("--no-build-isolation")
        self.check_installed(target)

    def test_import_from_the_source_tree(self):
        """PYTHONPATH=bindings/python: the library and the generated module of a build
        directory of the tree are found without MLO_LIBRARY / MLO_FFI."""
        sys.path.insert(0, PKG)
        from mlo import _loader  # only the finder: loads nothing
        builds = _loader.build_dirs(os.path.join(PKG, "mlo"))
        if not builds:
            self.skipTest("no build directory with src/libmlo.so in the tree")
        pkg_dir, ffi, lib, _ = self.probe(PKG)[:4]
        self.assertEqual(os.path.realpath(pkg_dir), os.path.realpath(os.path.join(PKG, "mlo")))
        self.assertIn("build directory", lib)
        self.assertTrue(ffi.endswith(os.path.join("bindings", "_mlo_ffi.py")), ffi)


if __name__ == "__main__":
    unittest.main(verbosity=2)
