#!/usr/bin/python3
"""unittest suite of the Python bindings' artifact, registry and dataset calls, against
tests/mlflow_test_server.py started with an artifact root of our own, so that what the
server stored is read straight from its files.

Run by meson (suite "bindings", test "python_artifacts"), or by hand from the repo:
    PYTHONPATH=bindings/python /usr/bin/python3 bindings/python/tests/test_artifacts.py
"""

import array
import atexit
import functools
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if "mlo" not in sys.modules:
    sys.path.insert(0, os.path.dirname(HERE))

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

STORE = tempfile.mkdtemp(prefix="mlo-test-store-")
os.environ["MLO_STORE_DIR"] = STORE
atexit.register(shutil.rmtree, STORE, True)

import mlo  # noqa: E402
from mlo_testserver import TestServer  # noqa: E402


def needs(*functions):
    """Skips a test whose C functions the library loaded lacks (an older libmlo given
    through $MLO_LIBRARY); with this tree's library every test runs."""
    def deco(test):
        @functools.wraps(test)
        def wrapper(self, *a, **kw):
            missing = [f for f in functions if f in mlo._client.MISSING]
            if missing:
                self.skipTest("the libmlo loaded lacks " + ", ".join(missing))
            return test(self, *a, **kw)
        return wrapper
    return deco


def tree(root):
    """{relative path: content} of every file under root."""
    out = {}
    for d, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = f.read()
    return out


class ArtifactTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.art_root = tempfile.mkdtemp(prefix="mlo-test-artifacts-")
        cls.server = TestServer("--artifact-root", cls.art_root)
        mlo.set_tracking_uri(cls.server.url)

    @classmethod
    def tearDownClass(cls):
        while mlo.active_run():
            mlo.end_run()
        mlo.set_tracking_uri(None)
        cls.server.stop()
        shutil.rmtree(cls.art_root, True)

    def tearDown(self):
        while mlo.active_run():
            mlo.end_run()

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="mlo-test-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def write(self, path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def on_server(self, run_id, flush=True):
        """The run's artifact directory in the server's artifact root."""
        if flush:
            mlo.flush(60)
        info = self.server.run(run_id)["info"]
        uri = info["artifact_uri"]
        self.assertTrue(uri.startswith("mlflow-artifacts:/"), uri)
        return os.path.join(self.art_root, *uri[len("mlflow-artifacts:/"):].strip("/").split("/"))


class TestLogArtifacts(ArtifactTestCase):
    @needs("mlo_log_artifact")
    def test_file_tree_and_empty_file(self):
        src = self.tmpdir()
        big = os.urandom(3 * 1024 * 1024 + 17)
        self.write(os.path.join(src, "model.bin"), big)
        self.write(os.path.join(src, "tree", "a.txt"), b"alpha\n")
        self.write(os.path.join(src, "tree", "sub", "b.txt"), b"beta\n")
        self.write(os.path.join(src, "tree", "empty"), b"")
        with mlo.start_run(run_name="artifacts") as run:
            mlo.log_artifact(os.path.join(src, "model.bin"), "model")
            mlo.log_artifact(os.path.join(src, "tree"))                # content at the root
            run.log_artifacts(os.path.join(src, "tree"), "copy")       # mlflow's log_artifacts
            mlo.log_artifact(__file__)                                  # its own name kept
        root = self.on_server(run.info.run_id)
        got = tree(root)
        self.assertEqual(got["model/model.bin"], big)
        for prefix in ("", "copy/"):
            self.assertEqual(got[prefix + "a.txt"], b"alpha\n")
            self.assertEqual(got[prefix + "sub/b.txt"], b"beta\n")
            self.assertEqual(got[prefix + "empty"], b"")
        with open(__file__, "rb") as f:
            self.assertEqual(got[os.path.basename(__file__)], f.read())
        self.assertEqual(self.server.run(run.info.run_id)["info"]["status"], "FINISHED")
        st = mlo.get_client().stats()
        self.assertGreaterEqual(st["artifact_files"], 8)
        self.assertGreaterEqual(st["artifact_bytes"], len(big) + 12)

    @needs("mlo_log_artifact")
    def test_caller_may_delete_its_file_at_once(self):
        src = self.tmpdir()
        p = self.write(os.path.join(src, "weights.bin"), b"w" * 100000)
        with mlo.start_run() as run:
            mlo.log_artifact(p, "m")
            os.unlink(p)  # the content is already in the store
            self.write(p, b"overwritten")
        self.assertEqual(tree(self.on_server(run.info.run_id))["m/weights.bin"], b"w" * 100000)

    @needs("mlo_log_artifact_bytes")
    def test_bytes_text_dict(self):
        ba = bytearray(b"from a bytearray")
        arr = array.array("d", [1.0, 2.5, -3.0])
        with mlo.start_run() as run:
            mlo.log_bytes(b"\x00\x01binary\xff", "raw/bytes.bin")
            mlo.log_bytes(ba, "raw/bytearray.bin")
            mlo.log_bytes(memoryview(b"0123456789")[2:6], "raw/view.bin")    # read-only slice
            mlo.log_bytes(memoryview(ba)[5:], "raw/wview.bin")                 # writable slice
            mlo.log_bytes(arr, "raw/doubles.bin")
            mlo.log_bytes(b"", "raw/empty.bin")
            mlo.log_text("héllo\nworld\n", "notes/summary.txt")
            mlo.log_dict({"lr": 0.1, "layers": [64, 32]}, "config.json")
            run.log_text("same run", "notes/again.txt")
        got = tree(self.on_server(run.info.run_id))
        self.assertEqual(got["raw/bytes.bin"], b"\x00\x01binary\xff")
        self.assertEqual(got["raw/bytearray.bin"], b"from a bytearray")
        self.assertEqual(got["raw/view.bin"], b"2345")
        self.assertEqual(got["raw/wview.bin"], b"a bytearray")
        self.assertEqual(got["raw/doubles.bin"], arr.tobytes())
        self.assertEqual(got["raw/empty.bin"], b"")
        self.assertEqual(got["notes/summary.txt"].decode("utf-8"), "héllo\nworld\n")
        self.assertEqual(json.loads(got["config.json"]), {"lr": 0.1, "layers": [64, 32]})
        self.assertEqual(got["notes/again.txt"], b"same run")

    @needs("mlo_log_artifact", "mlo_log_artifact_bytes")
    def test_bad_input_raises(self):
        with mlo.start_run():
            for bad in ("../escape", "/abs", "a/../../b", "a\\b", "a//b"):
                with self.assertRaises(mlo.MloInvalidPathError, msg=bad) as cm:
                    mlo.log_artifact(__file__, bad)
                self.assertIsInstance(cm.exception, mlo.MloInvalidArgumentError)
                with self.assertRaises(mlo.MloInvalidPathError, msg=bad):
                    mlo.log_bytes(b"x", bad + "/f.bin")
            with self.assertRaises(mlo.MloIOError) as cm:
                mlo.log_artifact(os.path.join(self.tmpdir(), "no-such-file"))
            self.assertIsInstance(cm.exception, OSError)
            self.assertIn("no-such-file", str(cm.exception))
            with self.assertRaises(mlo.MloIOError):
                mlo.log_artifacts(__file__)                      # not a directory
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_artifact(None)
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_bytes(b"x", None)                        # artifact_file is required
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_bytes(12345, "f.bin")                    # not bytes-like
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_text(b"bytes", "f.txt")
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_artifact("a\0b")


class TestReadBack(ArtifactTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = tempfile.mkdtemp(prefix="mlo-test-src-")
        cls.files = {
            "model/weights.bin": os.urandom(200000),
            "model/MLmodel": b"flavors: {}\n",
            "model/sub/deep.txt": b"deep",
            "plots/loss.csv": b"1,2,3\n",
        }
        for rel, data in cls.files.items():
            p = os.path.join(cls.src, *rel.split("/"))
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        # the files go to the server straight through its artifact API (PUT), so
        # that reading back is tested apart from mlo's uploads
        with mlo.start_run(run_name="read-back") as run:
            pass
        mlo.flush(30)
        cls.run_id = run.info.run_id
        uri = cls.server.run(cls.run_id)["info"]["artifact_uri"]
        base = uri[len("mlflow-artifacts:"):].strip("/")
        for rel, data in cls.files.items():
            req = urllib.request.Request(
                "%s/api/2.0/mlflow-artifacts/artifacts/%s/%s" % (cls.server.url, base, rel),
                data=data, method="PUT")
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.src, True)

    @needs("mlo_list_artifacts")
    def test_list(self):
        c = mlo.get_client()
        root = c.list_artifacts(self.run_id)
        self.assertEqual([(f.path, f.is_dir) for f in root], [("model", True), ("plots", True)])
        self.assertIsNone(root[0].file_size)
        model = c.list_artifacts(self.run_id, "model")
        self.assertEqual([(f.path, f.is_dir, f.file_size) for f in model],
                         [("model/MLmodel", False, 12), ("model/sub", True, None),
                          ("model/weights.bin", False, 200000)])
        self.assertIsInstance(model[0], mlo.FileInfo)
        self.assertEqual(model[2].size, 200000)
        self.assertEqual(c.list_artifacts(self.run_id, "nothing/here"), [])
        self.assertEqual(mlo.artifacts.list_artifacts(run_id=self.run_id, artifact_path="plots"),
                         [mlo.FileInfo("plots/loss.csv", False, 6)])
        # as mlflow.artifacts.list_artifacts: relative to the URI's path
        self.assertEqual(mlo.artifacts.list_artifacts("runs:/%s/plots" % self.run_id),
                         [mlo.FileInfo("loss.csv", False, 6)])
        with self.assertRaises(mlo.MloInvalidPathError):
            c.list_artifacts(self.run_id, "../x")
        with self.assertRaises(mlo.MloNotFoundError):
            c.list_artifacts("0" * 32)

    @needs("mlo_download_artifacts", "mlo_list_artifacts")
    def test_download(self):
        c = mlo.get_client()
        d = self.tmpdir()
        self.assertEqual(c.download_artifacts(self.run_id, None, d), d)       # everything
        self.assertEqual(tree(d), self.files)
        d = self.tmpdir()
        local = c.download_artifacts(self.run_id, "model", d)                 # a directory
        self.assertEqual(local, os.path.join(d, "model"))
        self.assertEqual(tree(d), {k: v for k, v in self.files.items() if k.startswith("model/")})
        d = self.tmpdir()
        local = c.download_artifacts(self.run_id, "model/weights.bin", d)     # a file
        self.assertEqual(local, os.path.join(d, "model", "weights.bin"))
        self.assertEqual(tree(d), {"model/weights.bin": self.files["model/weights.bin"]})
        d = self.tmpdir()                                                     # mlflow.artifacts
        local = mlo.artifacts.download_artifacts("runs:/%s/plots" % self.run_id, dst_path=d)
        self.assertEqual(local, os.path.join(d, "plots"))
        self.assertEqual(tree(d), {"plots/loss.csv": b"1,2,3\n"})
        local = mlo.artifacts.download_artifacts(run_id=self.run_id, artifact_path="plots/loss.csv")
        self.addCleanup(shutil.rmtree, os.path.dirname(os.path.dirname(local)), True)
        with open(local, "rb") as f:
            self.assertEqual(f.read(), b"1,2,3\n")
        # paths that could leave dst_path are refused before anything is written
        d = self.tmpdir()
        for bad in ("../x", "/etc", "model/../../x"):
            with self.assertRaises(mlo.MloInvalidPathError, msg=bad):
                c.download_artifacts(self.run_id, bad, d)
        self.assertEqual(os.listdir(d), [])
        with self.assertRaises(mlo.MloNotFoundError):
            c.download_artifacts(self.run_id, "model/missing.bin", d)
        with self.assertRaises(mlo.MloInvalidArgumentError):
            mlo.artifacts.download_artifacts("runs:/x", run_id="y")

    @needs("mlo_register_model", "mlo_set_model_alias", "mlo_download_artifacts")
    def test_register_alias_and_download_by_alias(self):
        name = "py-model-%s" % self.run_id[:8]
        c = mlo.get_client()
        run = c.get_run(self.run_id) if self.run_id in c._runs else None
        self.assertIsNotNone(run, "the run of setUpClass is held by the fluent client")
        v1 = run.register_model("model", name)
        self.assertEqual(v1, 1)
        mv = mlo.register_model("runs:/%s/model" % self.run_id, name)    # mlflow's form
        self.assertEqual(mv, mlo.ModelVersion(name, 2, self.run_id))
        c.set_model_alias(name, "champion", v1)
        c.set_registered_model_alias(name, "challenger", str(mv.version))
        models = {m["name"]: m for m in self.server.dump()["registered_models"]}
        self.assertIn(name, models)
        m = models[name]
        self.assertEqual([v["version"] for v in m["versions"]], ["1", "2"])
        self.assertEqual({v["run_id"] for v in m["versions"]}, {self.run_id})
        self.assertTrue(all(v["source"].endswith("/artifacts/model") for v in m["versions"]))
        self.assertEqual(m["aliases"], {"champion": "1", "challenger": "2"})
        c.set_model_alias(name, "champion", 2)                              # moved
        self.assertEqual({x["name"]: x for x in self.server.dump()["registered_models"]}
                         [name]["aliases"]["champion"], "2")
        want = {k[len("model/"):]: v for k, v in self.files.items() if k.startswith("model/")}
        for uri in ("models:/%s@champion" % name, "models:/%s/1" % name):
            d = self.tmpdir()
            self.assertEqual(mlo.artifacts.download_artifacts(uri, dst_path=d), d)
            self.assertEqual(tree(d), want, uri)
        self.assertEqual([f.path for f in c.list_artifacts("models:/%s@champion" % name)],
                         ["MLmodel", "sub", "weights.bin"])
        with self.assertRaises(mlo.MloServerError):
            c.set_model_alias(name, "latest", 1)                            # refused name
        with self.assertRaises(mlo.MloError):
            c.set_model_alias(name, "nope", 99)                             # no such version
        with self.assertRaises(mlo.MloInvalidArgumentError):
            mlo.register_model("s3://bucket/x", "y")
        with self.assertRaises(mlo.MloNotSupportedError):  # mlflow copies a version: not mlo
            mlo.register_model("models:/x/1", "y")


class TestDatasets(ArtifactTestCase):
    @needs("mlo_log_dataset")
    def test_log_dataset(self):
        src = self.tmpdir()
        data = self.write(os.path.join(src, "iris.csv"), b"a,b\n1,2\n")
        with mlo.start_run() as run:
            mlo.log_dataset("iris", data)                                     # digest computed
            run.log_dataset("imagenet", "s3://bucket/imagenet", digest="abc123")
            mlo.log_dataset("repo", "dvc://data/train.csv", "d1")
        mlo.flush(30)
        ds = {d["name"]: d for d in self.server.dump()["datasets"]
              if run.info.run_id in d["runs"]}
        self.assertEqual(set(ds), {"iris", "imagenet", "repo"})
        self.assertEqual(ds["imagenet"]["digest"], "abc123")
        self.assertIn("s3://bucket/imagenet", ds["imagenet"]["source"])
        self.assertEqual(ds["repo"]["digest"], "d1")
        self.assertIn(data, ds["iris"]["source"])
        self.assertRegex(ds["iris"]["digest"], r"^[0-9a-f]{8,36}$")
        with mlo.start_run():
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_dataset(None, data)
            with self.assertRaises(mlo.MloError):
                mlo.log_dataset("x", os.path.join(src, "missing.csv"))      # no digest to compute


class TestNotProxied(ArtifactTestCase):
    @needs("mlo_list_artifacts")
    def test_not_proxied_store_says_so(self):
        self.server.config(serve_artifacts=False)
        try:
            c = mlo.Client(self.server.url, experiment_name="py-not-proxied", on_error=lambda w: None)
            with c:
                run = c.start_run()
                with self.assertRaises(mlo.MloArtifactsNotProxiedError) as cm:
                    c.list_artifacts(run.info.run_id)
                self.assertIsInstance(cm.exception, mlo.MloConfigError)
                self.assertIn("serve-artifacts", str(cm.exception))
                run.end()
        finally:
            self.server.config(serve_artifacts=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
