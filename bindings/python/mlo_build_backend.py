"""PEP 517 build backend of the mlo Python package, so that

    pip install bindings/python

works offline.  With setuptools importable (pip's --no-build-isolation, Debian's
python3-setuptools) it hands everything to setuptools.build_meta (setup.py then
generates mlo/_mlo_ffi.py).  In pip's default isolated build environment there is
no setuptools and nothing can be downloaded offline, so it builds the (pure
Python) wheel itself with the standard library.  The generated ctypes module comes
from bindings/gen_bindings.py, run with `python -I` so that the system's pycparser
is visible from inside the isolated environment.
"""

import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
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


def _generated_ffi():
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
    out.append(("mlo/_mlo_ffi.py", _generated_ffi().encode("utf-8")))
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
        return _st.build_wheel(wheel_directory, config_settings, metadata_directory)
    m = _meta()
    name = "%s-%s-py3-none-any.whl" % (m["name"], m["version"])
    di = _dist_info(m)
    files = _files()
    files.append((di + "/METADATA", _metadata_text(m).encode()))
    files.append((di + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: mlo_build_backend\n"
                  b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "\n".join(_record_line(p, d) for p, d in files) + "\n%s/RECORD,,\n" % di
    files.append((di + "/RECORD", record.encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files:
            zi = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
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
