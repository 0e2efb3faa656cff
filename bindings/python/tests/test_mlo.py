#!/usr/bin/python3
"""unittest suite of the Python bindings, against tests/mlflow_test_server.py.

Run by meson (suite "bindings") with /usr/bin/python3, or by hand from the repo:
    PYTHONPATH=bindings/python /usr/bin/python3 bindings/python/tests/test_mlo.py
(the library and the generated _mlo_ffi.py are then found in ./build).
"""

import atexit
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if "mlo" not in sys.modules:
    sys.path.insert(0, os.path.dirname(HERE))

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

# the library's durable store: one of our own, not ./mlo-store of whoever runs us
STORE = tempfile.mkdtemp(prefix="mlo-test-store-")
os.environ["MLO_STORE_DIR"] = STORE
atexit.register(shutil.rmtree, STORE, True)

import mlo  # noqa: E402
from mlo_testserver import PYTHON, Float, Index, TestServer  # noqa: E402

try:
    import numpy
except ImportError:  # numpy is optional: the same protocol is tested with stand-ins
    numpy = None



class MloTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()
        mlo.set_tracking_uri(cls.server.url)

    @classmethod
    def tearDownClass(cls):
        while mlo.active_run():
            mlo.end_run()
        mlo.set_tracking_uri(None)
        cls.server.stop()

    def tearDown(self):
        while mlo.active_run():
            mlo.end_run()

    def stored(self, run_id, flush=True):
        if flush:
            mlo.flush(30)
        return self.server.run(run_id)

    def metric_points(self, run, key):
        return sorted(((m["step"], m["value"]) for m in run["metrics"] if m["key"] == key))


class TestFluent(MloTestCase):
    def test_context_manager_finished(self):
        with mlo.start_run(experiment_name="py-fluent", run_name="ok") as run:
            self.assertIs(mlo.active_run(), run)
            self.assertEqual(len(run.info.run_id), 32)
            self.assertEqual(mlo.log_param("lr", 0.01), 0.01)
            mlo.log_params({"depth": 3, "name": "forest"})
            for step in range(5):
                mlo.log_metric("loss", 1.0 / (step + 1), step=step)
            mlo.log_metrics({"acc": 0.9, "f1": 0.8}, step=7)
            mlo.set_tag("team", "ml")
            mlo.set_tags({"a": "1", "b": 2})
        self.assertIsNone(mlo.active_run())
        r = self.stored(run.info.run_id)
        self.assertEqual(r["info"]["status"], "FINISHED")
        self.assertEqual(r["info"]["run_name"], "ok")
        self.assertEqual(r["params"], {"lr": "0.01", "depth": "3", "name": "forest"})
        self.assertEqual(self.metric_points(r, "loss"),
                         [(s, 1.0 / (s + 1)) for s in range(5)])
        self.assertEqual(self.metric_points(r, "acc"), [(7, 0.9)])
        self.assertEqual(self.metric_points(r, "f1"), [(7, 0.8)])
        self.assertEqual(r["tags"]["team"], "ml")
        self.assertEqual(r["tags"]["b"], "2")
        self.assertEqual(r["tags"]["mlflow.runName"], "ok")
        self.assertEqual(r["tags"]["mlflow.source.name"], os.path.abspath(sys.argv[0]))
        exps = {e["experiment_id"]: e["name"] for e in self.server.dump()["experiments"]}
        self.assertEqual(exps[r["info"]["experiment_id"]], "py-fluent")

    def test_context_manager_failed(self):
        with self.assertRaises(ZeroDivisionError):
            with mlo.start_run(run_name="boom") as run:
                mlo.log_metric("x", 1.0)
                1 / 0
        self.assertIsNone(mlo.active_run())
        r = self.stored(run.info.run_id)
        self.assertEqual(r["info"]["status"], "FAILED")
        self.assertEqual(self.metric_points(r, "x"), [(0, 1.0)])

    def test_end_run_status(self):
        run = mlo.start_run(run_name="killed")
        mlo.end_run("KILLED")
        self.assertIsNone(mlo.active_run())
        self.assertEqual(self.stored(run.info.run_id)["info"]["status"], "KILLED")
        mlo.end_run()  # no active run: no-op

    def test_nested_runs(self):
        with mlo.start_run(run_name="parent") as parent:
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.start_run(run_name="not nested")
            with mlo.start_run(run_name="child", nested=True) as child:
                self.assertIs(mlo.active_run(), child)
                mlo.log_metric("m", 2.0)
            self.assertIs(mlo.active_run(), parent)
        c = self.stored(child.info.run_id)
        self.assertEqual(c["tags"]["mlflow.parentRunId"], parent.info.run_id)
        self.assertEqual(c["info"]["status"], "FINISHED")
        self.assertEqual(self.stored(parent.info.run_id)["info"]["status"], "FINISHED")

    def test_resume_by_run_id(self):
        with mlo.start_run(run_name="first") as run:
            mlo.log_metric("m", 1.0, step=1)
        with mlo.start_run(run_id=run.info.run_id) as again:
            self.assertEqual(again.info.run_id, run.info.run_id)
            mlo.log_metric("m", 2.0, step=2)
        r = self.stored(run.info.run_id)
        self.assertEqual(self.metric_points(r, "m"), [(1, 1.0), (2, 2.0)])
        self.assertEqual(r["info"]["status"], "FINISHED")

    def test_auto_start(self):
        self.assertIsNone(mlo.active_run())
        mlo.log_metric("auto", 3.0, step=4)
        run = mlo.active_run()
        self.assertIsNotNone(run)
        mlo.end_run()
        r = self.stored(run.info.run_id)
        self.assertEqual(self.metric_points(r, "auto"), [(4, 3.0)])
        self.assertEqual(r["info"]["status"], "FINISHED")

    def test_number_types(self):
        with mlo.start_run() as run:
            mlo.log_metric("stand_in", Float(1.5), step=Index(6))
            mlo.log_metric("int", 7, step=True)
            mlo.log_metric("step_none", 1.0, step=None)
            mlo.log_metric("whole_float_step", 1.0, step=3.0)
            mlo.log_metric("ts", 2.0, step=1, timestamp=123456)
            mlo.log_metric("nan", float("nan"))
            mlo.log_metric("inf", float("inf"))
            run.log_metric("direct", Float(4), step=Index(9), timestamp=Index(5000))
            if numpy is not None:
                mlo.log_metric("np32", numpy.float32(0.25), step=numpy.int64(11))
                mlo.log_metric("np64", numpy.float64(0.125), step=numpy.int32(12))
                mlo.log_metrics({"npd": numpy.float16(0.5)}, step=numpy.uint8(13))
        r = self.stored(run.info.run_id)
        self.assertEqual(self.metric_points(r, "stand_in"), [(6, 1.5)])
        self.assertEqual(self.metric_points(r, "int"), [(1, 7.0)])
        self.assertEqual(self.metric_points(r, "step_none"), [(0, 1.0)])
        self.assertEqual(self.metric_points(r, "whole_float_step"), [(3, 1.0)])
        ts = [m for m in r["metrics"] if m["key"] == "ts"][0]
        self.assertEqual((ts["timestamp"], ts["step"], ts["value"]), (123456, 1, 2.0))
        d = [m for m in r["metrics"] if m["key"] == "direct"][0]
        self.assertEqual((d["timestamp"], d["step"], d["value"]), (5000, 9, 4.0))
        nan = [m for m in r["metrics"] if m["key"] == "nan"][0]["value"]
        self.assertTrue(nan == "NaN" or (isinstance(nan, float) and math.isnan(nan)), nan)
        self.assertGreater(float([m for m in r["metrics"] if m["key"] == "inf"][0]["value"]), 1e300)
        if numpy is not None:
            self.assertEqual(self.metric_points(r, "np32"), [(11, 0.25)])
            self.assertEqual(self.metric_points(r, "np64"), [(12, 0.125)])
            self.assertEqual(self.metric_points(r, "npd"), [(13, 0.5)])

    def test_bad_input_raises_and_logs_nothing(self):
        with mlo.start_run() as run:
            with self.assertRaises(mlo.MloInvalidKeyError) as cm:
                mlo.log_metric("bad key!", 1.0)
            e = cm.exception
            self.assertIsInstance(e, ValueError)
            self.assertIsInstance(e, mlo.MloInvalidArgumentError)
            self.assertEqual(e.status, mlo.ffi.MLO_ERR_INVALID_KEY)
            self.assertEqual(e.name, "MLO_ERR_INVALID_KEY")
            self.assertEqual(e.message, mlo.strerror(mlo.ffi.MLO_ERR_INVALID_KEY))
            self.assertIn("bad key!", str(e))  # the library's detail, via the callback
            for key in ("", "../x", "a//b", "/abs", "a" * 251):
                with self.assertRaises(mlo.MloInvalidKeyError):
                    mlo.log_metric(key, 1.0)
            with self.assertRaises(mlo.MloInvalidKeyError):
                mlo.log_param("a\0b", "v")
            with self.assertRaises(mlo.MloInvalidKeyError):
                mlo.log_metric(42, 1.0)
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_metric(None, 1.0)
            with self.assertRaises(mlo.MloInvalidUtf8Error):
                mlo.set_tag("t", "\udc80")
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_metric("v", "not a number")
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_metric("v", 1.0, step=1.5)
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_metric("v", 1.0, timestamp=-1)
            with self.assertRaises(mlo.MloInvalidStatusError):
                mlo.end_run("BOGUS")
            with self.assertRaises(mlo.MloInvalidStatusError):
                run.end("RUNNING")
            # one bad entry in a batch: the others are logged, the error names the bad one
            with self.assertRaises(mlo.MloInvalidKeyError) as cm:
                mlo.log_metrics({"good": 1.0, "bad key!": 2.0, "good2": 3.0})
            self.assertIn("bad key!", str(cm.exception))
            with self.assertRaises(mlo.MloInvalidKeyError):
                mlo.log_params({"p ok": 1, "p bad!": 2})
            mlo.log_metric("fine", 1.0)
        r = self.stored(run.info.run_id)
        self.assertEqual(r["info"]["status"], "FINISHED")
        self.assertEqual(sorted({m["key"] for m in r["metrics"]}), ["fine", "good", "good2"])
        self.assertEqual(r["params"], {"p ok": "1"})
        self.assertNotIn("t", r["tags"])
        st = mlo.get_client().stats()
        self.assertGreaterEqual(st["rejected"], 8)

    def test_artifact_bad_input(self):
        # artifacts themselves: test_artifacts.py
        with mlo.start_run():
            with self.assertRaises((mlo.MloInvalidArgumentError, mlo.MloIOError)):
                mlo.log_artifact("")
            with self.assertRaises(mlo.MloInvalidArgumentError):
                mlo.log_artifact(None)

    def test_truncation_warns(self):
        with mlo.start_run() as run:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                mlo.log_param("long", "x" * 7000)
            self.assertTrue(any(issubclass(x.category, mlo.MloWarning) and "truncated" in
                                str(x.message) for x in w), [str(x.message) for x in w])
        self.assertEqual(len(self.stored(run.info.run_id)["params"]["long"]), 6000)

    def test_threads_share_the_active_run(self):
        n, per = 4, 500
        with mlo.start_run() as run:
            def work(t):
                for i in range(per):
                    mlo.log_metric("t%d" % t, float(i), step=i)
            threads = [threading.Thread(target=work, args=(t,)) for t in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        r = self.stored(run.info.run_id)
        for t in range(n):
            self.assertEqual(self.metric_points(r, "t%d" % t), [(i, float(i)) for i in range(per)])

    def test_many_points_in_order(self):
        with mlo.start_run() as run:
            for i in range(5000):
                mlo.log_metric("series", i * 0.5, step=i)
        r = self.stored(run.info.run_id)
        pts = self.metric_points(r, "series")
        self.assertEqual(len(pts), 5000)
        self.assertEqual(pts[-1], (4999, 4999 * 0.5))


class TestClient(MloTestCase):
    def test_two_servers_at_once(self):
        with TestServer() as other:
            with mlo.Client(self.server.url) as a, mlo.Client(other.url) as b:
                ra = a.start_run(experiment_name="A", run_name="on-a")
                rb = b.start_run(experiment_name="B", run_name="on-b")
                ra.log_metric("m", 1.0, step=1)
                rb.log_metric("m", 2.0, step=2)
                rb.log_params({"p": "b"})
                ra.end()
                rb.end("FAILED")
                a.flush(30)
                b.flush(30)
                st = a.stats()
                self.assertEqual(st["accepted"], st["sent"])
                self.assertEqual(st["failed"] + st["dropped"] + st["rejected"], 0)
            sa = self.server.run(ra.info.run_id)
            sb = other.run(rb.info.run_id)
            self.assertEqual(self.metric_points(sa, "m"), [(1, 1.0)])
            self.assertEqual(self.metric_points(sb, "m"), [(2, 2.0)])
            self.assertEqual(sb["params"], {"p": "b"})
            self.assertEqual(sa["info"]["status"], "FINISHED")
            self.assertEqual(sb["info"]["status"], "FAILED")
            self.assertNotIn(rb.info.run_id, [r["info"]["run_id"] for r in self.server.dump()["runs"]])

    def test_run_context_manager_and_mlflow_client_calls(self):
        with mlo.Client(self.server.url) as c:
            with self.assertRaises(RuntimeError):
                with c.start_run(run_name="cm", tags={"k": "v"}, description="hello") as run:
                    rid = run.info.run_id
                    c.log_metric(rid, "m", 1.5, step=2)
                    c.log_param(rid, "p", 1)
                    c.set_tag(rid, "t", "x")
                    c.log_batch(rid, metrics=[("b", 1.0, 1000, 3)], params={"q": 2})
                    raise RuntimeError("inside")
            c.flush(30)
        r = self.server.run(rid)
        self.assertEqual(r["info"]["status"], "FAILED")
        self.assertEqual(r["tags"]["k"], "v")
        self.assertEqual(r["tags"]["mlflow.note.content"], "hello")
        self.assertEqual(r["params"], {"p": "1", "q": "2"})
        b = [m for m in r["metrics"] if m["key"] == "b"][0]
        self.assertEqual((b["value"], b["timestamp"], b["step"]), (1.0, 1000, 3))

    def test_hot_path_both_ways(self):
        """Run.log_metric and mlo.log_metric call C with the GIL held for a client that
        drops when its queue is full (it never waits), released for the default "wait"
        client: the same conversions, checks and errors either way."""
        from mlo import _client, _fluent
        for policy, held in (("drop", True), ("wait", False), (None, False)):
            with self.subTest(full_policy=policy):
                with mlo.Client(self.server.url, full_policy=policy) as c:
                    run = c.start_run(run_name="hot-%s" % policy)
                    want = _client._f_log_metric_held if held else _client._f_log_metric
                    self.assertIs(run._flm, want)
                    if held:
                        self.assertIsNot(want, _client._f_log_metric)
                    _fluent._stack.append(run)
                    _fluent._set_cur()
                    try:
                        self.assertIs(_fluent._cur_f, want)
                        for p, log in (("r", run.log_metric), ("m", mlo.log_metric)):
                            log(p + "f", 0.5, 3)
                            log(p + "f", Float(1.5), Index(4))
                            log(p + "f", 7, True)  # step True: 1 (an int)
                            log(p + "f", 2.5)  # no step: 0
                            log(p + "f", 3.5, 0.0)  # a whole float step
                            log(p + "nan", float("nan"), 1)
                            log(p + "inf", float("-inf"), 1)
                            with self.assertRaises(mlo.MloInvalidKeyError):
                                log("bad key!", 1.0, 1)
                            with self.assertRaises(mlo.MloInvalidKeyError):
                                log(42, 1.0, 1)
                            with self.assertRaises(mlo.MloInvalidArgumentError):
                                log(p + "f", "not a number", 1)
                            with self.assertRaises(mlo.MloInvalidArgumentError):
                                log(p + "f", 1.0, 1.5)
                            with self.assertRaises(mlo.MloInvalidArgumentError):
                                log(p + "f", 1.0, [1, 2])  # not a step; its truth is no step
                            if numpy is not None:
                                log(p + "f", numpy.float32(0.25), numpy.int64(5))
                                with self.assertRaises(mlo.MloInvalidArgumentError):
                                    log(p + "f", 1.0, numpy.array([1, 2]))  # ambiguous truth
                    finally:
                        _fluent._stack.remove(run)
                        _fluent._set_cur()
                    run.end()
                    c.flush(30)
                    r = self.server.run(run.info.run_id)
                    want_pts = [(0, 2.5), (0, 3.5), (1, 7.0), (3, 0.5), (4, 1.5)]
                    if numpy is not None:
                        want_pts.append((5, 0.25))
                    for p in "rm":
                        self.assertEqual(self.metric_points(r, p + "f"), want_pts)
                        nan = [m["value"] for m in r["metrics"] if m["key"] == p + "nan"]
                        self.assertEqual(len(nan), 1)
                        self.assertTrue(nan[0] == "NaN" or math.isnan(nan[0]), nan)
                        inf = [m["value"] for m in r["metrics"] if m["key"] == p + "inf"]
                        self.assertEqual(len(inf), 1)
                        self.assertLess(float(inf[0]), -1e300)
                    self.assertEqual(sorted({m["key"] for m in r["metrics"]}),
                                     ["mf", "minf", "mnan", "rf", "rinf", "rnan"])
                # closed: the argument objects went with the handle
                self.assertIsNone(run._hp)
                with self.assertRaises(mlo.MloClosedError):
                    run.log_metric("f", 1.0, 9)

    def test_closed_client(self):
        c = mlo.Client(self.server.url)
        run = c.start_run()
        c.close()
        self.assertTrue(c.closed)
        with self.assertRaises(mlo.MloClosedError):
            run.log_metric("m", 1.0)
        with self.assertRaises(mlo.MloClosedError):
            run.log_param("p", "v")
        with self.assertRaises(mlo.MloClosedError):
            c.flush(1)
        with self.assertRaises(mlo.MloClosedError):
            c.start_run()
        c.close()  # twice: no-op

    def test_config_errors(self):
        with self.assertRaises(mlo.MloConfigError) as cm:
            mlo.Client("ftp://example.com")
        self.assertEqual(cm.exception.status, mlo.ffi.MLO_ERR_CONFIG)
        with self.assertRaises(mlo.MloInvalidArgumentError):
            mlo.Client(self.server.url, full_policy="sometimes")

    def test_options(self):
        extra = {}
        if "mlo_options_set_flush_interval_ms" in mlo.ffi.PROTOTYPES:
            extra["flush_interval_ms"] = 20
        if "mlo_options_set_fsync" in mlo.ffi.PROTOTYPES:
            extra.update(fsync="none", store_dir=os.path.join(STORE, "opts"))
        with mlo.Client(self.server.url, experiment_name="opt-exp", queue_bytes=1 << 20,
                        full_policy="drop", close_timeout=5, max_retries=1,
                        backoff_factor=0.1, request_timeout=10, **extra) as c:
            run = c.start_run()
            run.log_metric("m", 1.0)
            run.end()
            c.flush(30)
        r = self.server.run(run.info.run_id)
        exps = {e["experiment_id"]: e["name"] for e in self.server.dump()["experiments"]}
        self.assertEqual(exps[r["info"]["experiment_id"]], "opt-exp")

    def test_options_are_the_headers(self):
        # one keyword per parameter of each mlo_options_set_* setter (generated): a value
        # a setter refuses is refused, so backoff_jitter reaches mlo_options_set_retries
        import inspect
        want = {o["keyword"] for o in mlo.ffi.OPTIONS}
        self.assertEqual(set(inspect.signature(mlo.Client).parameters), want)
        self.assertIn("backoff_jitter", want)
        with self.assertRaises(mlo.MloInvalidArgumentError) as cm:
            mlo.Client(self.server.url, backoff_jitter=3601)  # at most 3600 s
        self.assertEqual(cm.exception.name, "MLO_ERR_INVALID_ARGUMENT")
        with self.assertRaises(mlo.MloInvalidArgumentError):
            mlo.Client(self.server.url, fsync="sometimes")
        with self.assertRaises(TypeError):
            mlo.Client(self.server.url, no_such_option=1)
        with mlo.Client(self.server.url, backoff_jitter=0.25, full_wait_ms=50) as c:
            c.start_run().end()
        # every error status has its class, under its family
        self.assertTrue(issubclass(mlo.MloTLSError, mlo.MloNetworkError))
        self.assertIs(type(mlo.error_for(mlo.ffi.MLO_ERR_TLS)), mlo.MloTLSError)
        self.assertIs(type(mlo.error_for(mlo.ffi.MLO_ERR_SERVER_INVALID)),
                      mlo.MloServerInvalidError)
        self.assertTrue(issubclass(mlo.MloServerInvalidError, mlo.MloServerError))
        for name in mlo.ffi.STATUS_ERRORS:
            self.assertTrue(issubclass(type(mlo.error_for(mlo.ffi.mlo_status[name])),
                                       mlo.MloError), name)

    def test_async_failure_goes_to_on_error(self):
        got = []
        with mlo.Client(self.server.url, on_error=got.append) as c:
            run = c.start_run()
            run.log_param("p", "one")
            c.flush(30)
            run.log_param("p", "two")  # the server refuses to change a param, later
            c.flush(30)
            self.assertGreaterEqual(c.stats()["failed"], 1)
        self.assertTrue(any(w.name == "MLO_ERR_SERVER_INVALID" for w in got),
                        [str(w) for w in got])
        self.assertEqual(self.server.run(run.info.run_id)["params"], {"p": "one"})

    def test_histogram(self):
        if "mlo_histogram_new" in mlo._client.MISSING:
            with mlo.Client(self.server.url) as c:
                with self.assertRaises(mlo.MloNotSupportedError) as cm:
                    c.start_run().histogram("lat")
                self.assertIn("not in the libmlo loaded", str(cm.exception))
            self.skipTest("the libmlo loaded has no histograms")
        with mlo.Client(self.server.url) as c:
            run = c.start_run()
            with run.histogram("lat", interval_ms=100) as h:
                for v in range(1, 101):
                    h.record(v)
                h.record(Float(50))
                with self.assertRaises(mlo.MloInvalidArgumentError):
                    h.record(-1.0)
                with self.assertRaises(mlo.MloInvalidArgumentError):
                    h.record(float("nan"))
                with self.assertRaises(mlo.MloInvalidArgumentError):
                    h.record("slow")
            with self.assertRaises(mlo.MloClosedError):
                h.record(1.0)
            with self.assertRaises(mlo.MloInvalidKeyError):
                run.histogram("bad key!")
            kept = run.histogram("kept", interval_ms=100)  # closed by the client's close
            kept.record(2.0)
            run.end()
            c.flush(30)
        with self.assertRaises(mlo.MloClosedError):
            kept.record(1.0)
        r = self.server.run(run.info.run_id)
        count = sum(m["value"] for m in r["metrics"] if m["key"] == "lat.count")
        self.assertEqual(count, 101)
        self.assertEqual(max(m["value"] for m in r["metrics"] if m["key"] == "lat.max"), 100)
        p50 = [m["value"] for m in r["metrics"] if m["key"] == "lat.p50"]
        self.assertTrue(p50 and all(0 < v <= 100 for v in p50), p50)
        self.assertIn("kept.count", {m["key"] for m in r["metrics"]})

    def test_not_found(self):
        with mlo.Client(self.server.url, max_retries=0) as c:
            with self.assertRaises(mlo.MloNotFoundError):
                c.resume_run("0" * 32)


class TestExit(unittest.TestCase):
    """Process exit: active runs are ended, the queue is flushed, nothing hangs."""

    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def fresh_store(self):
        d = tempfile.mkdtemp(prefix="mlo-test-store-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def run_script(self, body, timeout=60):
        env = dict(os.environ, MLFLOW_TRACKING_URI=self.server.url,
                   MLO_STORE_DIR=self.fresh_store())
        code = "import sys; sys.path[:0] = %r\nimport mlo\n" % [p for p in sys.path if p] + \
            textwrap.dedent(body)
        t0 = time.monotonic()
        p = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                           timeout=timeout)
        return p, time.monotonic() - t0

    def test_exit_finishes_active_run_and_flushes(self):
        p, _ = self.run_script("""
            run = mlo.start_run(run_name="left-open")
            for i in range(1000):
                mlo.log_metric("m", i, step=i)
            print(run.info.run_id)
        """)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = self.server.run(p.stdout.strip())
        self.assertEqual(r["info"]["status"], "FINISHED")
        self.assertEqual(len([m for m in r["metrics"] if m["key"] == "m"]), 1000)

    def test_uncaught_exception_fails_active_run(self):
        p, _ = self.run_script("""
            run = mlo.start_run(run_name="dies")
            print(run.info.run_id, flush=True)
            raise SystemError("crash")
        """)
        self.assertNotEqual(p.returncode, 0)
        r = self.server.run(p.stdout.strip())
        self.assertEqual(r["info"]["status"], "FAILED")

    def test_no_hang_when_server_is_gone(self):
        with TestServer() as doomed:
            env_url = doomed.url
            p = subprocess.Popen(
                [PYTHON, "-c", "import sys; sys.path[:0] = %r\nimport mlo\n" % [x for x in sys.path if x]
                 + textwrap.dedent("""
                    c = mlo.Client(%r, close_timeout=2, max_retries=1, backoff_factor=0.1)
                    run = c.start_run()
                    print("started", flush=True)
                    sys.stdin.readline()
                    for i in range(100):
                        run.log_metric("m", i, step=i)
                 """ % env_url)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, MLO_STORE_DIR=self.fresh_store()))
            self.assertEqual(p.stdout.readline().strip(), "started")
        # the server is gone now: logging, then exiting, must finish within the close timeout
        t0 = time.monotonic()
        p.stdin.write("go\n")
        p.stdin.flush()
        try:
            p.wait(20)
        finally:
            p.kill()
            p.communicate()
        self.assertLess(time.monotonic() - t0, 15)


if __name__ == "__main__":
    unittest.main(verbosity=2)
