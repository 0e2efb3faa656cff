"""PEP 517 build backend of the mlo Python package, so that

    pip install bindings/python

works offline and gives a self-contained package: the wheel carries libmlo
(mlo/_lib/libmlo.so.0) and the ctypes layer generated from include/mlo.h
(mlo/_mlo_ffi.py), so `import mlo` needs neither a system-wide libmlo nor a meson
build directory.  The library:
  * config setting "libmlo" (pip --config-settings libmlo=PATH) or $MLO_WHEEL_LIBRARY:
    that libmlo.so file is bundled as it is (packagers, the tests of a build);
    "system" bundles none (the package then uses the system's libmlo.so.0);
  * else it is compiled from the source tree this package sits in (../..) with
    Debian's tools, offline: meson setup (release, warnings not errors, no tests) and
    meson compile of the shared library only, in a temporary directory; config
    setting "buildtype" or $MLO_WHEEL_BUILDTYPE picks another of meson's build types
    (debug, plain, ...: the tests compile it at "plain", no optimisation, 3x faster);
  * an unpacked sdist has no C sources: it bundles none and says so.
The extension module mlo._ext (mlo/_ext.c: the hot calls in C, README "The Python
call") is compiled for the Python running the build, with cc and that Python's
headers (Debian's python3-dev); without them (or with config setting "ext=no" /
$MLO_WHEEL_NO_EXT=1) the package has none and uses its ctypes code alone.
With setuptools importable (pip's --no-build-isolation, Debian's python3-setuptools)
it hands the wheel to setuptools.build_meta (setup.py uses the functions below).  In
pip's default isolated build environment there is no setuptools and nothing can be
downloaded offline, so it builds the wheel itself with the standard library.  The
generated ctypes module comes from bindings/gen_bindings.py, run with `python -I` so
that the system's pycparser is visible from inside the isolated environment.
"""

import base64
import hashlib
import io
import os
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

try:  # pragma: no cover - depends on the environment pip gives us
    from setuptools import build_meta as _st
except ImportError:
    _st = None


def _meta():
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    proj = text.split("[project]", 1)[1].split("\n[", 1)[0]

    def field(name):
        m = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(name), proj, flags=re.M)
        return m.group(1) if m else None

    return {"name": field("name"), "version": field("version"),
            "summary": field("description"), "requires_python": field("requires-python")}


def generated_ffi():
    """The text of _mlo_ffi.py: generated from the header, else the package's copy."""
    header = os.environ.get("MLO_HEADER") or os.path.join(HERE, "..", "..", "include", "mlo.h")
    gen = os.path.join(HERE, "..", "gen_bindings.py")
    shipped = os.path.join(HERE, "mlo", "_mlo_ffi.py")
    if os.path.exists(header) and os.path.exists(gen):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
            subprocess.check_call([py, "-I", gen, "--header", header, "--outdir", d,
                                   "--only", "py"], env=env)
            with open(os.path.join(d, "_mlo_ffi.py"), encoding="utf-8") as f:
                return f.read()
    if os.path.exists(shipped):
        with open(shipped, encoding="utf-8") as f:
            return f.read()
    raise RuntimeError("mlo: cannot generate _mlo_ffi.py: %s not found (set MLO_HEADER)" % header)


SOURCE_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
LIB_NAME = "libmlo.so.0"  # the soname: what the package's loader opens
LIB_ARC = "mlo/_lib/" + LIB_NAME


def _setting(config_settings, key, env):
    v = (config_settings or {}).get(key)
    if isinstance(v, list):
        v = v[-1] if v else None
    return v or os.environ.get(env) or None


def _log(msg):
    sys.stderr.write("mlo_build_backend: %s\n" % msg)
    sys.stderr.flush()


def build_library(config_settings=None):
    """The bytes of the libmlo to bundle, or None (none bundled); see the module doc."""
    given = _setting(config_settings, "libmlo", "MLO_WHEEL_LIBRARY")
    if given == "system":
        _log("libmlo=system: no library bundled (the package uses the system's libmlo.so.0)")
        return None
    if given:
        with open(given, "rb") as f:
            _log("bundling %s" % given)
            return f.read()
    if not os.path.exists(os.path.join(SOURCE_ROOT, "meson.build")) or \
            not os.path.exists(os.path.join(SOURCE_ROOT, "include", "mlo.h")):
        _log("no source tree at %s: no library bundled (give libmlo=PATH, or install "
             "libmlo system-wide)" % SOURCE_ROOT)
        return None
    meson = shutil.which("meson")
    if meson is None:
        raise RuntimeError("mlo: meson is needed to compile libmlo (apt-get install meson "
                           "ninja-build gcc pkg-config libcurl4-openssl-dev libprotobuf-c-dev "
                           "protobuf-c-compiler libzstd-dev libjansson-dev libssl-dev), or give "
                           "a built one: pip install --config-settings libmlo=PATH ...")
    buildtype = _setting(config_settings, "buildtype", "MLO_WHEEL_BUILDTYPE") or "release"
    if not re.fullmatch(r"[a-z]+", buildtype):
        raise RuntimeError("mlo: buildtype=%r is not one of meson's build types" % buildtype)
    opts = ["--buildtype=" + buildtype, "-Dwerror=false"]
    for name in ("meson_options.txt", "meson.options"):
        path = os.path.join(SOURCE_ROOT, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                if re.search(r"option\(\s*'tests'", f.read()):
                    opts.append("-Dtests=false")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with tempfile.TemporaryDirectory(prefix="mlo-wheel-build-") as bd:
        _log("compiling libmlo from %s (meson, in %s)" % (SOURCE_ROOT, bd))
        for cmd in ([meson, "setup", bd, SOURCE_ROOT] + opts,
                    [meson, "compile", "-C", bd, "mlo:shared_library"]):
            r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if r.returncode != 0:
                raise RuntimeError("mlo: %s failed:\n%s" % (" ".join(cmd), r.stdout[-4000:]))
        r = subprocess.run([meson, "introspect", "--targets", bd], env=env,
                           capture_output=True, text=True, check=True)
        files = [fn for t in json.loads(r.stdout)
                 if t.get("name") == "mlo" and t.get("type") == "shared library"
                 for fn in t.get("filename", [])]
        if len(files) != 1 or not os.path.exists(files[0]):
            raise RuntimeError("mlo: the build has no shared library mlo (%s)" % files)
        with open(files[0], "rb") as f:
            return f.read()


def ext_file_name():
    return "_ext" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def build_extension(config_settings=None):
    """The bytes of mlo/_ext<EXT_SUFFIX> compiled for this Python, or None (see the
    module doc); never fails the build: without it the package uses ctypes."""
    if _setting(config_settings, "ext", "MLO_WHEEL_NO_EXT") in ("no", "1"):
        _log("mlo._ext not built (asked not to)")
        return None
    src = os.path.join(HERE, "mlo", "_ext.c")
    header = os.path.join(SOURCE_ROOT, "include", "mlo.h")
    pyinc = sysconfig.get_paths().get("include") or ""
    if not os.path.exists(src) or not os.path.exists(header):
        _log("mlo._ext not built: no %s here (an unpacked sdist?)" % (
            src if not os.path.exists(src) else header))
        return None
    if not os.path.exists(os.path.join(pyinc, "Python.h")):
        _log("mlo._ext not built: no Python.h in %s (apt-get install python3-dev); the "
             "package uses ctypes" % pyinc)
        return None
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not shutil.which(cc[0]):
        cc = ["cc"]
    with tempfile.TemporaryDirectory(prefix="mlo-ext-build-") as d:
        out = os.path.join(d, ext_file_name())
        cmd = cc + ["-std=c11", "-O2", "-fPIC", "-shared", "-fvisibility=hidden",
                    "-I", pyinc, "-I", os.path.dirname(header), src, "-o", out]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            _log("mlo._ext not built (%s failed): the package uses ctypes\n%s"
                 % (" ".join(cmd), r.stdout[-3000:]))
            return None
        _log("compiled mlo._ext (%s)" % ext_file_name())
        with open(out, "rb") as f:
            return f.read()


def python_tag():
    """The wheel tag's interpreter and ABI parts of a wheel holding mlo._ext."""
    t = "cp%d%d" % sys.version_info[:2]
    return "%s-%s%s" % (t, t, getattr(sys, "abiflags", ""))


def platform_tag():
    return re.sub(r"[^A-Za-z0-9]", "_", sysconfig.get_platform())


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def _files():
    out = []
    pkg = os.path.join(HERE, "mlo")
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py") and name != "_mlo_ffi.py":
            with open(os.path.join(pkg, name), "rb") as f:
                out.append(("mlo/" + name, f.read()))
    out.append(("mlo/_mlo_ffi.py", generated_ffi().encode("utf-8")))
    return out


def _metadata_text(m):
    lines = ["Metadata-Version: 2.1", "Name: %s" % m["name"], "Version: %s" % m["version"]]
    if m["summary"]:
        lines.append("Summary: %s" % m["summary"])
    if m["requires_python"]:
        lines.append("Requires-Python: %s" % m["requires_python"])
    lines.append("License: MIT")
    return "\n".join(lines) + "\n"


def _dist_info(m):
    return "%s-%s.dist-info" % (m["name"], m["version"])


# ---- PEP 517 hooks ---------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return _st.get_requires_for_build_wheel(config_settings) if _st else []


def get_requires_for_build_sdist(config_settings=None):
    return _st.get_requires_for_build_sdist(config_settings) if _st else []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    if _st:
        return _st.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    m = _meta()
    d = os.path.join(metadata_directory, _dist_info(m))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata_text(m))
    return _dist_info(m)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _st:
        # setup.py bundles the library too (it reads the same settings from the
        # environment: config settings do not reach it through setuptools)
        given = _setting(config_settings, "libmlo", "MLO_WHEEL_LIBRARY")
        if given:
            os.environ["MLO_WHEEL_LIBRARY"] = given
        if _setting(config_settings, "ext", "MLO_WHEEL_NO_EXT") in ("no", "1"):
            os.environ["MLO_WHEEL_NO_EXT"] = "1"
        return _st.build_wheel(wheel_directory, config_settings, metadata_directory)
    m = _meta()
    lib = build_library(config_settings)
    ext = build_extension(config_settings)
    if ext is not None:  # compiled for this interpreter
        tag = python_tag() + "-" + platform_tag()
    else:
        tag = "py3-none-" + platform_tag() if lib is not None else "py3-none-any"
    name = "%s-%s-%s.whl" % (m["name"], m["version"], tag)
    di = _dist_info(m)
    files = _files()
    if lib is not None:
        files.append((LIB_ARC, lib))
    ext_arc = "mlo/" + ext_file_name()
    if ext is not None:
        files.append((ext_arc, ext))
    files.append((di + "/METADATA", _metadata_text(m).encode()))
    files.append((di + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: mlo_build_backend\n"
                                  "Root-Is-Purelib: %s\nTag: %s\n"
                                  % ("false" if lib is not None or ext is not None else "true",
                                     tag)).encode()))
    record = "\n".join(_record_line(p, d) for p, d in files) + "\n%s/RECORD,,\n" % di
    files.append((di + "/RECORD", record.encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files:
            zi = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if p in (LIB_ARC, ext_arc) else 0o644) << 16
            z.writestr(zi, d, zipfile.ZIP_DEFLATED)
    return name


def build_sdist(sdist_directory, config_settings=None):
    if _st:
        return _st.build_sdist(sdist_directory, config_settings)
    m = _meta()
    base = "%s-%s" % (m["name"], m["version"])
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        def add(arc, data):
            ti = tarfile.TarInfo(base + "/" + arc)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
        for p, d in _files():  # the generated module included: the header is not
            add(p, d)
        for extra in ("pyproject.toml", "setup.py", "README.md", "mlo_build_backend.py"):
            with open(os.path.join(HERE, extra), "rb") as f:
                add(extra, f.read())
        add("PKG-INFO", _metadata_text(m).encode())
    return name
