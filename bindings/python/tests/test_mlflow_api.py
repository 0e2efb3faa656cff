#!/usr/bin/python3
"""The fluent API a tutorial touches, with mlflow's names and arguments (issue 14, item 2),
checked against what the test server stores; and the mlflow calls mlo does not have
raise MloNotSupportedError naming the nearest mlo call, never a silent no-op."""

import json
import os
import shutil
import struct
import sys
import tempfile
import unittest
import warnings
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mlo_testserver import TestServer  # noqa: E402

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

STORE = tempfile.mkdtemp(prefix="mlo-test-store-")
os.environ["MLO_STORE_DIR"] = STORE
import atexit  # noqa: E402
atexit.register(shutil.rmtree, STORE, True)

import mlo  # noqa: E402
from mlo.entities import Experiment, Run  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None
try:
    import yaml
except ImportError:
    yaml = None


def png_pixels(data):
    """(width, height, color type, raw rows without filter bytes) of a PNG mlo wrote."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, color = hdr[0], hdr[1], hdr[2], hdr[3]
    assert depth == 8
    raw = zlib.decompress(idat)
    stride = len(raw) // h
    assert all(raw[y * stride] == 0 for y in range(h))  # filter "none"
    return w, h, color, b"".join(raw[y * stride + 1:(y + 1) * stride] for y in range(h))


class MlflowApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.art = tempfile.mkdtemp(prefix="mlo-api-art-")
        cls.server = TestServer("--artifact-root", cls.art)

    @classmethod
    def tearDownClass(cls):
        mlo.set_tracking_uri(None)
        cls.server.stop()
        shutil.rmtree(cls.art, ignore_errors=True)

    def setUp(self):
        while mlo.active_run():
            mlo.end_run()
        mlo.set_tracking_uri(self.server.url)

    def artifact(self, run_id, path):
        run = self.server.run(run_id)
        uri = run["info"]["artifact_uri"]
        with open(os.path.join(self.art, *uri[len("mlflow-artifacts:/"):].strip("/").split("/"),
                               *path.split("/")), "rb") as f:
            return f.read()

    def test_experiments(self):
        exp = mlo.set_experiment("xp-exp")
        self.assertIsInstance(exp, Experiment)
        self.assertEqual(exp.name, "xp-exp")
        self.assertTrue(exp.experiment_id)
        self.assertEqual(mlo.get_experiment_by_name("xp-exp").experiment_id, exp.experiment_id)
        self.assertIsNone(mlo.get_experiment_by_name("no-such-experiment"))
        self.assertEqual(mlo.get_experiment(exp.experiment_id).name, "xp-exp")
        eid = mlo.create_experiment("xp-created", tags={"team": "ml"})
        with self.assertRaises(mlo.MloAlreadyExistsError):
            mlo.create_experiment("xp-created")
        found = mlo.search_experiments(filter_string="name LIKE 'xp-%'", order_by=["name"])
        self.assertEqual([e.name for e in found], ["xp-created", "xp-exp"])
        self.assertEqual(found[0].experiment_id, eid)
        self.assertEqual(found[0].tags, {"team": "ml"})
        self.assertEqual(len(mlo.search_experiments(max_results=1)), 1)
        # by id: later runs go to it
        self.assertEqual(mlo.set_experiment(experiment_id=eid).name, "xp-created")
        with mlo.start_run() as run:
            pass
        self.assertEqual(run.info.experiment_id, eid)
        with mlo.start_run(experiment_id=exp.experiment_id) as run:
            pass
        self.assertEqual(run.info.experiment_id, exp.experiment_id)
        mlo.set_experiment("xp-exp")

    def test_runs_params_metrics_tags(self):
        mlo.set_experiment("api-runs")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            # mlflow's signature, system metrics included (test_system_metrics.py)
            parent = mlo.start_run(run_name="parent", tags={"kind": "grid"},
                                   description="the grid", log_system_metrics=True)
        self.assertFalse(any("system metrics" in str(x.message) for x in w))
        self.assertIs(mlo.active_run(), parent)
        mlo.log_param("depth", None)  # mlflow stores "None"
        self.assertEqual(mlo.log_param("lr", 0.1), 0.1)
        mlo.log_params({"a": 1, "b": "x"})
        mlo.log_metric("loss", 0.5)
        mlo.log_metric("loss", 0.25, step=2, timestamp=1700000000000)
        self.assertIsNone(mlo.log_metric("acc", 0.9, synchronous=True))
        # synchronous=True: on the server when the call returns (no flush)
        self.assertEqual([m["value"] for m in self.server.run(parent.info.run_id)["metrics"]
                          if m["key"] == "acc"], [0.9])
        ops = mlo.log_metric("f1", 0.8, synchronous=False)
        self.assertIsInstance(ops, mlo.RunOperations)
        ops.wait()
        mlo.log_metrics({"p": 0.7, "r": 0.6}, step=3)
        mlo.set_tag("stage", "dev")
        mlo.set_tags({"owner": "me", "drop": "me"})
        mlo.delete_tag("drop")
        child = mlo.start_run(run_name="child", nested=True)
        mlo.end_run()
        other = mlo.start_run(run_name="adopted", parent_run_id=parent.info.run_id)
        mlo.end_run()
        mlo.end_run()
        self.assertIsNone(mlo.active_run())
        last = mlo.last_active_run()
        self.assertIsInstance(last, Run)
        self.assertEqual(last.info.run_id, parent.info.run_id)
        run = mlo.get_run(parent.info.run_id)
        self.assertEqual(run.info.status, "FINISHED")
        self.assertEqual(run.data.params, {"depth": "None", "lr": "0.1", "a": "1", "b": "x"})
        # latest value per key (step 2 is later than step 0)
        self.assertEqual(run.data.metrics, {"loss": 0.25, "acc": 0.9, "f1": 0.8, "p": 0.7,
                                            "r": 0.6})
        self.assertEqual(run.data.tags["stage"], "dev")
        self.assertEqual(run.data.tags["mlflow.note.content"], "the grid")
        self.assertEqual(run.data.tags["kind"], "grid")
        self.assertNotIn("drop", run.data.tags)
        stored = self.server.run(parent.info.run_id)
        self.assertIn({"key": "loss", "value": 0.25, "step": 2, "timestamp": 1700000000000},
                      stored["metrics"])
        self.assertEqual([m["step"] for m in stored["metrics"] if m["key"] == "p"], [3])
        for r in (child, other):
            self.assertEqual(mlo.get_run(r.info.run_id).data.tags["mlflow.parentRunId"],
                             parent.info.run_id)
        # search_runs: mlflow's columns; a DataFrame with pandas, else rows
        rows = mlo.search_runs(filter_string="tags.kind = 'grid'")
        try:
            import pandas  # noqa: F401
            rows = rows.to_dict("records")
        except ImportError:
            self.assertIsInstance(rows, list)
        self.assertEqual([r["run_id"] for r in rows], [parent.info.run_id])
        self.assertEqual(rows[0]["params.depth"], "None")
        self.assertEqual(rows[0]["metrics.acc"], 0.9)
        self.assertEqual(rows[0]["tags.stage"], "dev")
        self.assertEqual(rows[0]["status"], "FINISHED")
        self.assertEqual(list(rows[0])[:6], ["run_id", "experiment_id", "status", "artifact_uri",
                                            "start_time", "end_time"])
        listed = mlo.search_runs(experiment_names=["api-runs"], output_format="list",
                                 filter_string="metrics.acc > 0.5")
        self.assertEqual([r.info.run_id for r in listed], [parent.info.run_id])
        self.assertEqual(len(mlo.search_runs(experiment_names=["api-runs"],
                                             output_format="list")), 3)
        with mlo.start_run():
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.start_run()  # a second active run without nested=True

    def test_artifacts_images_inputs(self):
        mlo.end_run()
        mlo.set_experiment("api-artifacts")
        with mlo.start_run() as run:
            mlo.log_text("hello", "notes/a.txt")
            mlo.log_dict({"b": [1, 2], "a": {"x": "y: z"}}, "conf/c.yaml")
            mlo.log_dict({"k": 1}, "conf/c.json")
            if np is not None:
                img = np.zeros((2, 3, 3), dtype=np.uint8)
                img[0, 0] = (255, 0, 0)
                img[1, 2] = (0, 0, 255)
                mlo.log_image(img, "images/rgb.png")
                with self.assertWarns(mlo.MloWarning):  # 2.0 is out of [0, 1]: clipped
                    mlo.log_image(np.array([[0.0, 1.0], [0.5, 2.0]]), "images/grey.png")
            with self.assertRaises(mlo.MloNotSupportedError):
                mlo.log_image(img if np is not None else b"", key="x", step=1)

            class Dataset:
                name = "iris"
                digest = "abc123"
                source = "https://example.org/iris.csv"
            mlo.log_input(Dataset())
            with self.assertRaises(mlo.MloNotSupportedError) as cm:
                mlo.log_input(Dataset(), context="training")
            self.assertIn("log_dataset", str(cm.exception))
            try:
                import matplotlib
                matplotlib.use("Agg")
                import matplotlib.pyplot as plt
                fig = plt.figure()
                plt.plot([1, 2, 3])
                mlo.log_figure(fig, "plots/line.png")
                has_plt = True
            except ImportError:
                has_plt = False
            with self.assertRaises(TypeError):
                mlo.log_figure(object(), "x.png")
        mlo.flush(30)
        rid = run.info.run_id
        self.assertEqual(self.artifact(rid, "notes/a.txt"), b"hello")
        text = self.artifact(rid, "conf/c.yaml").decode()
        self.assertEqual(text, "a:\n  x: 'y: z'\nb:\n- 1\n- 2\n")
        if yaml is not None:
            self.assertEqual(text, yaml.safe_dump({"b": [1, 2], "a": {"x": "y: z"}},
                                                  default_flow_style=False))
        self.assertEqual(json.loads(self.artifact(rid, "conf/c.json")), {"k": 1})
        if np is not None:
            w, h, color, pix = png_pixels(self.artifact(rid, "images/rgb.png"))
            self.assertEqual((w, h, color), (3, 2, 2))
            self.assertEqual(pix, img.tobytes())
            w, h, color, pix = png_pixels(self.artifact(rid, "images/grey.png"))
            self.assertEqual((w, h, color, list(pix)), (2, 2, 0, [0, 255, 127, 255]))
        if has_plt:
            self.assertEqual(self.artifact(rid, "plots/line.png")[:4], b"\x89PNG")
        ds = [d["dataset"] for d in self.server.run(rid)["inputs"]]
        # the source as MLflow stores it: the JSON of its DatasetSource
        self.assertEqual([(d["name"], d["digest"], json.loads(d["source"])) for d in ds],
                         [("iris", "abc123", {"url": "https://example.org/iris.csv"})])

    def test_register_model_of_another_process_run(self):
        mlo.set_experiment("api-registry")
        with mlo.Client(self.server.url) as other:  # not the fluent client: like another process
            r = other.start_run()
            r.log_text("weights", "model/w.txt")
            r.end()
            other.flush(30)
        mv = mlo.register_model("runs:/%s/model" % r.info.run_id, "api-model")
        self.assertEqual((mv.name, mv.version, mv.run_id), ("api-model", 1, r.info.run_id))
        reg = {m["name"]: m for m in self.server.dump()["registered_models"]}
        self.assertEqual(reg["api-model"]["versions"][0]["run_id"], r.info.run_id)

    def test_not_supported_names_the_nearest_call(self):
        cases = [(lambda: mlo.autolog(), "mlo.log_params"),
                 (lambda: mlo.log_table({"a": [1]}, "t.json"), "mlo.log_dict"),
                 (lambda: mlo.evaluate(None), "mlo.log_metrics"),
                 (lambda: mlo.get_artifact_uri(), "mlo.artifacts"),
                 (lambda: mlo.MlflowClient(), "mlo.Client"),
                 (lambda: mlo.pytorch.log_model(None, "m"), "mlo.log_artifact"),
                 (lambda: mlo.data.from_numpy(None), "mlo.log_dataset"),
                 (lambda: mlo.sklearn.autolog(), "mlo.sklearn.log_model")]
        for call, nearest in cases:
            with self.assertRaises(mlo.MloNotSupportedError) as cm:
                call()
            self.assertIn(nearest, str(cm.exception))
        with self.assertRaises(AttributeError):
            mlo.no_such_function_anywhere()

    def test_offline_reads_name_the_mlo_tool(self):
        mlo.set_tracking_uri(None)
        exp = mlo.set_experiment("offline-exp")  # works: created when the run reaches a server
        self.assertEqual((exp.name, exp.experiment_id), ("offline-exp", None))
        for call, nearest in ((lambda: mlo.get_run("x"), "mlo show"),
                              (lambda: mlo.search_runs(), "mlo ls"),
                              (lambda: mlo.search_experiments(), "mlo ls"),
                              (lambda: mlo.create_experiment("x"), "mlo.set_experiment"),
                              (lambda: mlo.get_experiment_by_name("x"), "mlo.set_experiment")):
            with self.assertRaises(mlo.MloNotSupportedError) as cm:
                call()
            self.assertIn(nearest, str(cm.exception))
        with mlo.start_run():
            with self.assertRaises(mlo.MloNotSupportedError) as cm:
                mlo.delete_tag("x")
            self.assertIn("set_tag", str(cm.exception))
        mlo.set_tracking_uri(self.server.url)


if __name__ == "__main__":
    unittest.main(verbosity=2)
