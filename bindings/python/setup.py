"""Build hook for setuptools (pip install --no-build-isolation, Debian's
python3-setuptools): generates mlo/_mlo_ffi.py from the C header and bundles libmlo
as mlo/_lib/libmlo.so.0, and compiles mlo._ext when it can, as the in-tree backend
does (mlo_build_backend.py: the same functions, the same settings: $MLO_WHEEL_LIBRARY,
else libmlo compiled from the source tree with meson; $MLO_WHEEL_NO_EXT).

The header is include/mlo.h of the source tree (or $MLO_HEADER); the generator is
bindings/gen_bindings.py (needs pycparser: Debian's python3-pycparser).  When the
header cannot be found (building from an unpacked sdist), an _mlo_ffi.py already
present in the package is used as it is.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mlo_build_backend as backend  # noqa: E402


class build_py_with_ffi(build_py):
    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "mlo")
        with open(os.path.join(out, "_mlo_ffi.py"), "w", encoding="utf-8") as f:
            f.write(backend.generated_ffi())
        lib = backend.build_library()
        if lib is not None:
            os.makedirs(os.path.join(out, "_lib"), exist_ok=True)
            path = os.path.join(out, "_lib", backend.LIB_NAME)
            with open(path, "wb") as f:
                f.write(lib)
            os.chmod(path, 0o755)
        ext = backend.build_extension()  # mlo._ext, the hot calls in C (optional)
        if ext is not None:
            path = os.path.join(out, backend.ext_file_name())
            with open(path, "wb") as f:
                f.write(ext)
            os.chmod(path, 0o755)


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: not pure Python."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": build_py_with_ffi}, distclass=BinaryDistribution)
