"""Finds and loads libmlo and its generated ctypes declarations (_mlo_ffi).

The shared library, in this order:
  1. $MLO_LIBRARY (a path to libmlo.so*);
  2. the copy bundled in the package by pip install (mlo/_lib/libmlo.so.0);
  3. a meson build directory found by walking up from this package: a directory
     that is itself a build directory (has src/libmlo.so and meson-info/), or one
     with build*/src/libmlo.so in it ("build" first, then the most recent; builds
     with sanitizers last, as they cannot be loaded into a plain interpreter);
  4. the system loader: libmlo.so.0, then ctypes.util.find_library("mlo").

The generated module _mlo_ffi: the copy installed inside the package (pip install),
else $MLO_FFI, else <build dir>/bindings/_mlo_ffi.py next to the library chosen.

The optional extension module mlo._ext (the hot calls in C, _ext.c): none with
$MLO_PY_NO_EXT=1; else the copy installed inside the package (pip install), else
$MLO_EXT, else <build dir>/bindings/_ext*.so next to the _mlo_ffi.py chosen.  When it
cannot be loaded the binding uses ctypes alone, and says why (mlo._client.HOT_PATH).
"""

import ctypes
import ctypes.util
import glob
import importlib.machinery
import importlib.util
import json
import os
import sys

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_SONAME = "libmlo.so.0"
_BUNDLED = os.path.join(_PKG_DIR, "_lib", _SONAME)  # put there by pip install


def _sanitized(build_dir):
    try:
        with open(os.path.join(build_dir, "meson-info", "intro-buildoptions.json")) as f:
            for o in json.load(f):
                if o.get("name") == "b_sanitize":
                    return o.get("value") not in (None, "none", [])
    except (OSError, ValueError):
        pass
    return os.path.basename(build_dir).endswith(("-asan", "-tsan", "-ubsan", "-msan"))


def _mtime(path):
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def build_dirs(start=_PKG_DIR):
    """Meson build directories holding src/libmlo.so, nearest first."""
    found = []
    d = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(d, "src", "libmlo.so")) and \
                os.path.isdir(os.path.join(d, "meson-info")):
            found.append(d)
        # os.path.exists: a build being made may hold a libmlo.so link to nothing yet
        cands = [os.path.dirname(os.path.dirname(p))
                 for p in glob.glob(os.path.join(d, "build*", "src", "libmlo.so"))
                 if os.path.exists(p)]
        cands.sort(key=lambda b: (_sanitized(b), os.path.basename(b) != "build",
                                  -_mtime(os.path.join(b, "src", "libmlo.so"))))
        found.extend(c for c in cands if c not in found)
        parent = os.path.dirname(d)
        if parent == d:
            return found
        d = parent


def _load_module_from(path):
    spec = importlib.util.spec_from_file_location("mlo._mlo_ffi", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["mlo._mlo_ffi"] = mod
    return mod


def load():
    """Returns (ffi module, CDLL, how the library was found)."""
    tried = []
    lib = None
    libpath = os.environ.get("MLO_LIBRARY")
    how = "$MLO_LIBRARY"
    builds = []
    if libpath:
        try:
            lib = ctypes.CDLL(libpath)
        except OSError as e:
            raise ImportError("mlo: cannot load $MLO_LIBRARY=%s: %s" % (libpath, e))
    elif os.path.exists(_BUNDLED):
        try:
            lib = ctypes.CDLL(_BUNDLED)
        except OSError as e:
            raise ImportError("mlo: cannot load the bundled %s: %s" % (_BUNDLED, e))
        libpath, how = _BUNDLED, "bundled in the package"
    else:
        builds = build_dirs()
        for b in builds:
            p = os.path.join(b, "src", "libmlo.so")
            try:
                lib = ctypes.CDLL(p)
                libpath, how = p, "build directory " + b
                break
            except OSError as e:
                tried.append("%s (%s)" % (p, e))
        if lib is None:
            for name in (_SONAME, ctypes.util.find_library("mlo")):
                if not name:
                    continue
                try:
                    lib = ctypes.CDLL(name)
                    libpath, how = name, "system loader"
                    break
                except OSError as e:
                    tried.append("%s (%s)" % (name, e))
    if lib is None:
        raise ImportError(
            "mlo: libmlo not found.  Set MLO_LIBRARY to the path of libmlo.so, build it "
            "(meson setup build && ninja -C build) or install it.  Tried: " + "; ".join(tried))

    ffi = None
    try:
        from . import _mlo_ffi as ffi  # installed by pip, generated at install time
    except ImportError:
        cands = []
        if os.environ.get("MLO_FFI"):
            cands.append(os.environ["MLO_FFI"])
        if libpath and os.path.isabs(libpath):
            cands.append(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(libpath))),
                                      "bindings", "_mlo_ffi.py"))
            cands.append(os.path.join(os.path.dirname(os.path.dirname(libpath)),
                                      "bindings", "_mlo_ffi.py"))
        found = next((c for c in cands if os.path.exists(c)), None)
        if found is None:  # the build directories only when nothing nearer has it
            more = [os.path.join(b, "bindings", "_mlo_ffi.py") for b in builds or build_dirs()]
            cands += more
            found = next((c for c in more if os.path.exists(c)), None)
        if found is not None:
            ffi = _load_module_from(found)
        if ffi is None:
            raise ImportError(
                "mlo: the generated module _mlo_ffi.py was not found (looked in the package, "
                "$MLO_FFI and %s).  Build with meson (ninja -C build) or pip install "
                "bindings/python." % ", ".join(cands or ["no build directory"]))
    return ffi, lib, "%s (%s)" % (libpath, how)


EXT_ABI = 2  # the interface _client.py expects of mlo._ext (its MLO_EXT_ABI)


def load_ext(ffi):
    """(the extension module mlo._ext or None, where it came from or why there is none)."""
    if os.environ.get("MLO_PY_NO_EXT", "") not in ("", "0"):
        return None, "$MLO_PY_NO_EXT is set"
    mod, where = None, None
    try:
        from . import _ext as mod  # installed by pip, compiled at install time
        where = getattr(mod, "__file__", "the package")
    except ImportError as e:
        why = "not in the package (%s)" % e
        cands = []
        if os.environ.get("MLO_EXT"):
            cands.append(os.environ["MLO_EXT"])
        ffi_file = getattr(ffi, "__file__", None)
        if ffi_file:
            d = os.path.dirname(os.path.abspath(ffi_file))
            cands += sorted(p for sfx in importlib.machinery.EXTENSION_SUFFIXES
                            for p in glob.glob(os.path.join(d, "_ext" + sfx)))
        path = next((c for c in cands if os.path.exists(c)), None)
        if path is None:
            return None, why + "; not built (%s)" % (", ".join(cands) or "no build directory")
        try:
            loader = importlib.machinery.ExtensionFileLoader("mlo._ext", path)
            spec = importlib.util.spec_from_file_location("mlo._ext", path, loader=loader)
            mod = importlib.util.module_from_spec(spec)
            loader.exec_module(mod)
        except (ImportError, OSError) as e2:
            return None, "%s cannot be loaded: %s" % (path, e2)
        sys.modules["mlo._ext"] = mod
        where = path
    if getattr(mod, "ABI", None) != EXT_ABI:
        return None, "%s is of another version (ABI %r, not %d): rebuild it" % (
            where, getattr(mod, "ABI", None), EXT_ABI)
    return mod, where
