"""Build hook: generates mlo/_mlo_ffi.py from the C header while building.

The header is include/mlo.h of the source tree (or $MLO_HEADER); the generator is
bindings/gen_bindings.py (needs pycparser: Debian's python3-pycparser).  When the
header cannot be found (building from an unpacked sdist), an _mlo_ffi.py already
present in the package is used as it is.
"""

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class build_py_with_ffi(build_py):
    def run(self):
        super().run()
        header = os.environ.get("MLO_HEADER") or os.path.join(HERE, "..", "..", "include", "mlo.h")
        gen = os.path.join(HERE, "..", "gen_bindings.py")
        out = os.path.join(self.build_lib, "mlo")
        if os.path.exists(header) and os.path.exists(gen):
            subprocess.check_call([sys.executable, gen, "--header", header, "--outdir", out,
                                   "--only", "py"])
        elif not os.path.exists(os.path.join(HERE, "mlo", "_mlo_ffi.py")):
            raise SystemExit("mlo: cannot generate _mlo_ffi.py: %s not found (set MLO_HEADER)"
                             % header)


setup(cmdclass={"build_py": build_py_with_ffi})
