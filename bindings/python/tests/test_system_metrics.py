#!/usr/bin/python3
"""System metrics from Python, as mlflow's: mlo.enable_system_metrics_logging(),
disable_system_metrics_logging(), start_run(log_system_metrics=...), Run.set_system_metrics,
the Client's system_metrics_* options; MLflow's names and steps on the test server
(tests/mlflow_test_server.py), a resumed run going on after its last system step.

The library's sampler thread reads this machine's /proc at a 50 ms interval here
(MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL); the exact values against a fake /proc and a
fake NVML are tests/test_sysmetrics.c's.
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if "mlo" not in sys.modules:
    sys.path.insert(0, os.path.dirname(HERE))

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

STORE = tempfile.mkdtemp(prefix="mlo-test-store-")
os.environ["MLO_STORE_DIR"] = STORE
os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "0.05"
os.environ.pop("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", None)
os.environ.pop("MLFLOW_SYSTEM_METRICS_NODE_ID", None)

import mlo  # noqa: E402
from mlo_testserver import TestServer  # noqa: E402

BASE = ["cpu_utilization_percentage", "system_memory_usage_megabytes",
        "system_memory_usage_percentage", "disk_usage_percentage", "disk_usage_megabytes",
        "disk_available_megabytes", "network_receive_megabytes", "network_transmit_megabytes"]


class SystemMetrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()
        mlo.set_tracking_uri(cls.server.url)

    @classmethod
    def tearDownClass(cls):
        mlo.get_client().close()
        cls.server.stop()
        shutil.rmtree(STORE, True)

    def tearDown(self):
        while mlo.active_run():
            mlo.end_run()
        os.environ.pop("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", None)

    def steps(self, run_id, key="system/cpu_utilization_percentage"):
        return sorted(m["step"] for m in self.server.run(run_id)["metrics"] if m["key"] == key)

    def wait_steps(self, client, run_id, n, key="system/cpu_utilization_percentage"):
        """The steps of key once there are n of them: the sampler logs one every 50 ms;
        each check flushes what was logged, then reads the server."""
        deadline = time.monotonic() + 30
        while True:
            client.flush()
            got = self.steps(run_id, key)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def test_fluent_switches(self):
        self.assertTrue(callable(mlo.enable_system_metrics_logging))
        mlo.enable_system_metrics_logging()
        self.assertEqual(os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"], "true")
        with mlo.start_run(run_name="on") as on:
            # a run started with log_system_metrics=False beside it gets none
            with mlo.start_run(run_name="off", nested=True, log_system_metrics=False) as off:
                steps = self.wait_steps(mlo.get_client(), on.info.run_id, 3)
        self.assertGreaterEqual(len(steps), 3)
        self.assertEqual(steps, list(range(len(steps))))  # 0, 1, 2, ... once each
        stored = self.server.run(on.info.run_id)
        keys = {m["key"] for m in stored["metrics"]}
        for name in BASE:
            self.assertIn("system/" + name, keys)
        for m in stored["metrics"]:
            if m["key"].endswith("_percentage"):
                self.assertTrue(0 <= m["value"] <= 100, m)
        self.assertFalse([m for m in self.server.run(off.info.run_id)["metrics"]
                          if m["key"].startswith("system/")])
        # ended: no step after the end
        mlo.flush()
        n = len(self.steps(on.info.run_id))
        mlo.disable_system_metrics_logging()
        self.assertEqual(os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"], "false")
        with mlo.start_run(run_name="after") as after:
            with mlo.start_run(run_name="probe", nested=True, log_system_metrics=True) as probe:
                self.wait_steps(mlo.get_client(), probe.info.run_id, 3)
        self.assertEqual(len(self.steps(on.info.run_id)), n)
        self.assertEqual(self.steps(after.info.run_id), [])

    def test_resume_goes_on(self):
        with mlo.start_run(run_name="resumed", log_system_metrics=True) as run:
            first = self.wait_steps(mlo.get_client(), run.info.run_id, 2)
        mlo.flush()
        first = self.steps(run.info.run_id)
        with mlo.start_run(run_id=run.info.run_id, log_system_metrics=True):
            steps = self.wait_steps(mlo.get_client(), run.info.run_id, len(first) + 2)
        # the resumed run's steps follow the first part's: no step twice
        self.assertEqual(steps, list(range(len(steps))))

    @unittest.skipIf("thread" in os.environ.get("MLO_SANITIZED", ""),
                     "ThreadSanitizer refuses threads in the child of a threaded process")
    def test_forked_child_logs_none(self):
        """A forked child (a DataLoader worker) re-attaches to the active run but does
        not sample it: the parent does (as mlflow's monitor, which a child never
        starts).  Its system steps stay once each."""
        mlo.enable_system_metrics_logging()
        with mlo.start_run(run_name="forked") as run:
            self.wait_steps(mlo.get_client(), run.info.run_id, 1)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    mlo.log_metric("child", 1.0)
                    # live through several of the parent's samples
                    time.sleep(0.3)
                    mlo.flush()
                except BaseException:
                    code = 1
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            n = len(self.steps(run.info.run_id))
            steps = self.wait_steps(mlo.get_client(), run.info.run_id, n + 2)
        self.assertEqual(steps, list(range(len(steps))))
        keys = [m["key"] for m in self.server.run(run.info.run_id)["metrics"]]
        self.assertIn("child", keys)

    def test_client_options(self):
        with mlo.Client(self.server.url, system_metrics=True, system_metrics_node_id="node_7",
                        system_metrics_sampling_interval=0.05,
                        system_metrics_samples_before_logging=2) as c:
            run = c.start_run(run_name="client")
            quiet = c.start_run(run_name="quiet", log_system_metrics=False)
            got = self.wait_steps(c, run.info.run_id, 2,
                                  "system/node_7/cpu_utilization_percentage")
            self.assertEqual(got[:2], [0, 1])
            run.set_system_metrics(False)
            c.flush()
            n = len(self.steps(run.info.run_id, "system/node_7/cpu_utilization_percentage"))
            quiet.set_system_metrics(True)
            self.wait_steps(c, quiet.info.run_id, 2, "system/node_7/cpu_utilization_percentage")
            self.assertEqual(
                len(self.steps(run.info.run_id, "system/node_7/cpu_utilization_percentage")), n)
            run.end()
            quiet.end()
        keys = {m["key"] for m in self.server.run(run.info.run_id)["metrics"]}
        self.assertFalse([k for k in keys if k.startswith("system/") and
                          not k.startswith("system/node_7/")])
        with self.assertRaises(mlo.MloInvalidArgumentError):
            mlo.Client(self.server.url, system_metrics_sampling_interval=0)
        with self.assertRaises(mlo.MloInvalidKeyError):
            mlo.Client(self.server.url, system_metrics_node_id="../x")

    def test_bad_variable(self):
        os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] = "maybe"
        with self.assertRaises(mlo.MloConfigError):
            mlo.start_run()
        self.assertIsNone(mlo.active_run())
        with self.assertRaises(mlo.MloConfigError):
            mlo.Client(self.server.url)


if __name__ == "__main__":
    unittest.main(verbosity=2)
