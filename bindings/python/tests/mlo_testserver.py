"""Starts tests/mlflow_test_server.py on a free port for the bindings' tests,
benchmark and examples, and reads back what it stored; also the number stand-ins
(Float, Index) the tests pass where numpy scalars would go."""

import json
import os
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SERVER = os.environ.get("MLO_TEST_SERVER") or os.path.join(REPO, "tests", "mlflow_test_server.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class Float:
    """A non-float number type with __float__ (what numpy scalars offer)."""

    def __init__(self, v):
        self.v = v

    def __float__(self):
        return float(self.v)


class Index:
    """A non-int type with __index__ (what numpy integers offer)."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class TestServer:
    def __init__(self, *extra):
        self.proc = subprocess.Popen([PYTHON, SERVER, "--port", "0"] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("test server did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def _req(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="GET" if data is None
                                     else "POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def dump(self):
        return self._req("/_test/dump")

    def reset(self):
        return self._req("/_test/reset", {})

    def config(self, **settings):
        """POST /_test/config (serve_artifacts=False, multipart=False, ...)."""
        return self._req("/_test/config", settings)

    def run(self, run_id):
        for r in self.dump()["runs"]:
            if r["info"]["run_id"] == run_id:
                return r
        raise KeyError(run_id)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
