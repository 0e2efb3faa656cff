#!/usr/bin/python3
"""Self-test of tests/mlflow_test_server.py (the MLflow-compatible test server).

Design: plain unittest, standard library only.  One server process is started for the
module (subprocess, reading its "PORT <n>" line) and reset through POST /_test/reset before
each test; tests that need other command-line options start their own.  Requests go through
urllib.request (http.client where a test needs exact control of headers, chunked bodies or
the connection).  Every expectation is taken from /work/shared/MLFLOW.md.

Run:  /usr/bin/python3 tests/test_server_selftest.py [-v]     (exit status 0 = all passed)
"""

import base64
import http.client
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "mlflow_test_server.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
API = "/api/2.0/mlflow/"
MAX_DOUBLE = 1.7976931348623157e308

# Never let an http_proxy in the environment get between us and 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerProc:
    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([PYTHON, SERVER, "--port", "0", *args],
                                     stdout=subprocess.PIPE, env=env)
        line = b""
        deadline = time.monotonic() + 10
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop()
                raise RuntimeError("server did not print PORT in time")
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                self.stop()
                raise RuntimeError("server exited before printing PORT")
            line += ch
        assert line.startswith(b"PORT "), line
        self.port = int(line.split()[1])
        scheme = "https" if "--tls-cert" in args else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


SRV = None


def setUpModule():
    global SRV
    SRV = ServerProc()


def tearDownModule():
    if SRV:
        SRV.stop()


def call(method, path, body=None, headers=None, srv=None, raw=False, context=None):
    """Returns (status, headers, parsed JSON or raw text)."""
    srv = srv or SRV
    url = srv.base + (path if path.startswith("/") else API + path)
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        if context is not None:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                 urllib.request.HTTPSHandler(context=context))
        else:
            opener = OPENER
        with opener.open(req, timeout=20) as r:
            status, rh, text = r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        status, rh, text = e.code, e.headers, e.read().decode()
    if raw:
        return status, rh, text
    try:
        return status, rh, json.loads(text)
    except ValueError:
        return status, rh, text


def get(path, **kw):
    return call("GET", path, **kw)


def post(path, body, **kw):
    return call("POST", path, body, **kw)


def raw_post(path, body_bytes, headers, srv=None):
    """POST with exactly these headers (no Content-Type added)."""
    srv = srv or SRV
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    try:
        conn.putrequest("POST", API + path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if "Transfer-Encoding" not in headers:
            conn.putheader("Content-Length", str(len(body_bytes)))
        conn.endheaders()
        if body_bytes:
            conn.send(body_bytes)
        r = conn.getresponse()
        text = r.read().decode()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    finally:
        conn.close()


def dump(srv=None):
    status, _, d = get("/_test/dump", srv=srv)
    assert status == 200
    return d


def create_run(exp="0", srv=None, **extra):
    body = {"experiment_id": exp, "start_time": 1700000000000}
    body.update(extra)
    status, _, r = post("runs/create", body, srv=srv)
    assert status == 200, r
    return r["run"]["info"]["run_id"]


def batch(run_id, metrics=(), params=(), tags=(), srv=None):
    return post("runs/log-batch", {"run_id": run_id, "metrics": list(metrics),
                                   "params": list(params), "tags": list(tags)}, srv=srv)


def m(key, value=1.0, ts=1000, step=0):
    return {"key": key, "value": value, "timestamp": ts, "step": step}


def kv(key, value="v"):
    return {"key": key, "value": value}


def the_run(run_id, srv=None):
    for r in dump(srv)["runs"]:
        if r["info"]["run_id"] == run_id:
            return r
    raise AssertionError(f"run {run_id} not in dump")


class Base(unittest.TestCase):
    def setUp(self):
        status, _, _ = post("/_test/reset", {})
        self.assertEqual(status, 200)

    def assertError(self, resp, status, code, fragment=None):
        st, _, body = resp
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("error_code"), code, body)
        if fragment is not None:
            self.assertIn(fragment, body.get("message", ""))


class ExperimentTests(Base):
    def test_default_experiment(self):
        st, _, body = get("experiments/get-by-name?experiment_name=Default")
        self.assertEqual(st, 200)
        self.assertEqual(body["experiment"]["experiment_id"], "0")
        self.assertEqual(body["experiment"]["lifecycle_stage"], "active")
        st, _, body = get("experiments/get?experiment_id=0")
        self.assertEqual(st, 200)
        self.assertEqual(body["experiment"]["name"], "Default")

    def test_create_and_duplicate(self):
        st, _, body = post("experiments/create", {"name": "exp-a", "tags": [kv("team", "x")]})
        self.assertEqual(st, 200)
        exp_id = body["experiment_id"]
        self.assertIsInstance(exp_id, str)
        self.assertTrue(exp_id.isdigit() and exp_id != "0")
        st, _, body = get("experiments/get-by-name?experiment_name=exp-a")
        self.assertEqual(body["experiment"]["experiment_id"], exp_id)
        self.assertEqual(body["experiment"]["artifact_location"], f"mlflow-artifacts:/{exp_id}")
        self.assertEqual(body["experiment"]["tags"], [kv("team", "x")])
        self.assertError(post("experiments/create", {"name": "exp-a"}), 400,
                         "RESOURCE_ALREADY_EXISTS")

    def test_missing_experiment(self):
        self.assertError(get("experiments/get-by-name?experiment_name=nope"), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(get("experiments/get?experiment_id=12345"), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(post("experiments/create", {}), 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'name'")

    def test_concurrent_create_is_race_safe(self):
        results = []

        def worker():
            results.append(post("experiments/create", {"name": "raced"}))

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if r[0] == 200]
        dup = [r for r in results if r[0] == 400 and
               r[2].get("error_code") == "RESOURCE_ALREADY_EXISTS"]
        self.assertEqual(len(ok), 1)
        self.assertEqual(len(dup), 15)
        self.assertEqual(sum(e["name"] == "raced" for e in dump()["experiments"]), 1)


class RunTests(Base):
    def test_create_run(self):
        st, _, body = post("runs/create", {"experiment_id": "0", "start_time": 1700000000000,
                                           "run_name": "first", "user_id": "alice",
                                           "tags": [kv("mlflow.user", "alice")]})
        self.assertEqual(st, 200)
        info = body["run"]["info"]
        self.assertRegex(info["run_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(info["run_uuid"], info["run_id"])
        self.assertEqual(info["experiment_id"], "0")
        self.assertEqual(info["run_name"], "first")
        self.assertEqual(info["user_id"], "alice")
        self.assertEqual(info["status"], "RUNNING")
        self.assertEqual(info["start_time"], 1700000000000)
        self.assertEqual(info["lifecycle_stage"], "active")
        self.assertEqual(info["artifact_uri"], f"mlflow-artifacts:/0/{info['run_id']}/artifacts")
        tags = {t["key"]: t["value"] for t in body["run"]["data"]["tags"]}
        self.assertEqual(tags, {"mlflow.user": "alice", "mlflow.runName": "first"})

    def test_run_name_from_tag_or_generated(self):
        st, _, body = post("runs/create", {"experiment_id": "0", "start_time": 1,
                                           "tags": [kv("mlflow.runName", "from-tag")]})
        self.assertEqual(body["run"]["info"]["run_name"], "from-tag")
        st, _, body = post("runs/create", {"experiment_id": "0", "start_time": 1})
        name = body["run"]["info"]["run_name"]
        self.assertRegex(name, r"^[a-z]+-[a-z]+-\d+$")
        self.assertIn(kv("mlflow.runName", name), body["run"]["data"]["tags"])
        self.assertError(post("runs/create", {"experiment_id": "0", "run_name": "a",
                                              "tags": [kv("mlflow.runName", "b")]}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(post("runs/create", {"experiment_id": "777"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")

    def test_experiment_id_as_number(self):
        st, _, body = post("runs/create", {"experiment_id": 0, "start_time": "5"})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["run"]["info"]["start_time"], 5)

    def test_get_run_errors(self):
        self.assertError(get("runs/get?run_id=0123456789abcdef0123456789abcdef"), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(get("runs/get?run_id=bad%20id!"), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(get("runs/get"), 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'run_id'")

    def test_update_run(self):
        rid = create_run()
        st, _, body = post("runs/update", {"run_id": rid, "status": "FINISHED",
                                           "end_time": 1700000000500})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["run_info"]["status"], "FINISHED")
        self.assertEqual(body["run_info"]["end_time"], 1700000000500)
        # An invalid status: 200, nothing changes (the fields after it are not even read).
        st, _, body = post("runs/update", {"run_id": rid, "status": "DONE",
                                           "end_time": 1700000000999})
        self.assertEqual(st, 200, body)
        info = get(f"runs/get?run_id={rid}")[2]["run"]["info"]
        self.assertEqual(info["status"], "FINISHED")
        self.assertEqual(info["end_time"], 1700000000500)
        # Finished runs still accept logging.
        self.assertEqual(batch(rid, [m("x")])[0], 200)
        # Rename through update also moves the mlflow.runName tag.
        post("runs/update", {"run_id": rid, "run_name": "renamed"})
        run = the_run(rid)
        self.assertEqual(run["info"]["run_name"], "renamed")
        self.assertEqual(run["tags"]["mlflow.runName"], "renamed")

    def test_delete_restore(self):
        rid = create_run()
        self.assertEqual(post("runs/delete", {"run_id": rid})[0], 200)
        self.assertError(batch(rid, [m("x")]), 400, "INVALID_PARAMETER_VALUE",
                         "must be in the 'active' state")
        self.assertError(post("runs/log-metric", {"run_id": rid, "key": "x", "value": 1,
                                                  "timestamp": 1}),
                         400, "INVALID_PARAMETER_VALUE", "must be in the 'active' state")
        self.assertEqual(get(f"runs/get?run_id={rid}")[2]["run"]["info"]["lifecycle_stage"],
                         "deleted")
        self.assertEqual(post("runs/restore", {"run_id": rid})[0], 200)
        self.assertEqual(batch(rid, [m("x")])[0], 200)

    def test_set_delete_tag_and_single_calls(self):
        rid = create_run()
        self.assertEqual(post("runs/set-tag", {"run_id": rid, "key": "t", "value": "1"})[0], 200)
        self.assertEqual(post("runs/set-tag", {"run_id": rid, "key": "t", "value": "2"})[0], 200)
        self.assertEqual(the_run(rid)["tags"]["t"], "2")
        self.assertEqual(post("runs/delete-tag", {"run_id": rid, "key": "t"})[0], 200)
        self.assertNotIn("t", the_run(rid)["tags"])
        self.assertError(post("runs/delete-tag", {"run_id": rid, "key": "t"}), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertEqual(post("runs/log-parameter", {"run_id": rid, "key": "p",
                                                     "value": "1"})[0], 200)
        self.assertEqual(post("runs/log-parameter", {"run_id": rid, "key": "p",
                                                     "value": "1"})[0], 200)
        self.assertError(post("runs/log-parameter", {"run_id": rid, "key": "p", "value": "2"}),
                         400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
        self.assertEqual(post("runs/log-metric", {"run_id": rid, "key": "m", "value": 2.5,
                                                  "timestamp": 10, "step": 3})[0], 200)
        self.assertEqual(the_run(rid)["metrics"],
                         [{"key": "m", "value": 2.5, "timestamp": 10, "step": 3}])
        self.assertError(post("runs/log-metric", {"run_id": rid, "key": "m", "value": 1}),
                         400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'timestamp'")

    def test_log_inputs(self):
        rid = create_run()
        ds = {"tags": [kv("mlflow.data.context", "train")],
              "dataset": {"name": "d", "digest": "abc123", "source_type": "local",
                          "source": "{\"uri\": \"/tmp/x\"}", "schema": "{}"}}
        self.assertEqual(post("runs/log-inputs", {"run_id": rid, "datasets": [ds]})[0], 200)
        self.assertEqual(post("runs/log-inputs", {"run_id": rid, "datasets": [ds]})[0], 200)
        run = get(f"runs/get?run_id={rid}")[2]["run"]
        self.assertEqual(run["inputs"]["dataset_inputs"], [ds])
        self.assertEqual(len(the_run(rid)["inputs"]), 1)

    def test_search_runs(self):
        st, _, body = post("experiments/create", {"name": "s"})
        exp = body["experiment_id"]
        a = create_run(exp, tags=[kv("kind", "a")])
        b = create_run(exp, tags=[kv("kind", "b")], start_time=1800000000000)
        create_run("0")
        st, _, body = post("runs/search", {"experiment_ids": [exp]})
        self.assertEqual(st, 200, body)
        self.assertEqual([r["info"]["run_id"] for r in body["runs"]], [b, a])
        st, _, body = post("runs/search", {"experiment_ids": [exp],
                                           "filter": "tags.kind = 'a'"})
        self.assertEqual([r["info"]["run_id"] for r in body["runs"]], [a])
        st, _, body = post("runs/search", {"experiment_ids": [exp], "max_results": 1})
        self.assertEqual(len(body["runs"]), 1)
        st, _, body2 = post("runs/search", {"experiment_ids": [exp], "max_results": 1,
                                            "page_token": body["next_page_token"]})
        self.assertEqual(body2["runs"][0]["info"]["run_id"], a)
        self.assertNotIn("next_page_token", body2)
        self.assertEqual(post("runs/search", {"experiment_ids": ["4242"]})[2], {})
        batch(a, [m("loss", 0.25)], [kv("lr", "0.1")])
        batch(b, [m("loss", 0.75)], [kv("lr", "0.2")])
        for flt, want in (("metrics.loss < 0.5", [a]),
                          ("params.lr = '0.2' and tags.kind != 'a'", [b]),
                          ("attributes.status = 'RUNNING' AND tags.`kind` LIKE '%'", [b, a]),
                          (f"attributes.run_id = '{a}'", [a])):
            with self.subTest(filter=flt):
                st, _, body = post("runs/search", {"experiment_ids": [exp], "filter": flt})
                self.assertEqual(st, 200, body)
                self.assertEqual([r["info"]["run_id"] for r in body.get("runs", [])], want)
        self.assertError(post("runs/search", {"experiment_ids": [exp], "filter": "lol what"}),
                         400, "INVALID_PARAMETER_VALUE")


class BatchTests(Base):
    def test_limits(self):
        rid = create_run()
        self.assertEqual(batch(rid, [m("k", i, 1, i) for i in range(1000)])[0], 200)
        cases = [
            ([m("k", 1, 1, i) for i in range(1001)], [], [], "at most 1000 metrics"),
            ([], [kv(f"p{i}") for i in range(101)], [], "at most 100 params"),
            ([], [], [kv(f"t{i}") for i in range(101)], "at most 100 tags"),
            ([m("z", 1, 1, i) for i in range(901)], [kv(f"p{i}") for i in range(100)], [],
             "at most 1000 metrics, params, and tags"),
        ]
        for metrics, params, tags, frag in cases:
            with self.subTest(frag):
                resp = batch(rid, metrics, params, tags)
                self.assertError(resp, 400, "INVALID_PARAMETER_VALUE",
                                 "A batch logging request can contain " + frag)
        run = the_run(rid)
        self.assertEqual(len(run["metrics"]), 1000)
        self.assertEqual(run["params"], {})
        self.assertEqual(set(run["tags"]), {"mlflow.runName"})

    def test_duplicate_param_key_in_batch(self):
        rid = create_run()
        self.assertError(batch(rid, [m("x")], [kv("p", "1"), kv("p", "1")]), 400,
                         "INVALID_PARAMETER_VALUE", "Duplicate parameter keys")
        self.assertEqual(the_run(rid)["metrics"], [])

    def test_key_rules(self):
        rid = create_run()
        good = ["a..b", "a/b", "a b", "a:b", "a-b_c.d", "é", "日本語", "x" * 250, "A1/b2/c3"]
        bad = ["../x", "a//b", "/abs", "a/", ".", "a/./b", "bad key!", "a,b", "a=b",
               "a\tb", "😀", "x" * 251, "", "..", "a/../b"]
        for i, key in enumerate(good):
            with self.subTest(good=key):
                st, _, body = batch(rid, [m(key)], [kv(key, "v")], [kv(key, "v")])
                self.assertEqual(st, 200, body)
                st, _, body = post("runs/log-metric", {"run_id": rid, "key": key, "value": 1,
                                                       "timestamp": 1})
                self.assertEqual(st, 200, body)
        for key in bad:
            for kind in ("metrics", "params", "tags"):
                with self.subTest(bad=key, kind=kind):
                    args = {"metrics": [m("fine")], "params": [kv("fine_p", "v")],
                            "tags": [kv("fine_t", "v")]}
                    args[kind].append(m(key) if kind == "metrics" else kv(key))
                    before = the_run(rid)
                    self.assertError(batch(rid, **args), 400, "INVALID_PARAMETER_VALUE")
                    after = the_run(rid)
                    self.assertEqual(before, after, "a refused batch must store nothing")
            with self.subTest(bad=key, call="set-tag"):
                self.assertError(post("runs/set-tag", {"run_id": rid, "key": key, "value": "v"}),
                                 400, "INVALID_PARAMETER_VALUE")

    def test_truncation(self):
        rid = create_run()
        st, _, body = batch(rid, [], [kv("p", "x" * 6001)], [kv("t", "y" * 8001)])
        self.assertEqual(st, 200, body)
        run = the_run(rid)
        self.assertEqual(run["params"]["p"], "x" * 6000)
        self.assertEqual(run["tags"]["t"], "y" * 8000)
        self.assertEqual(post("runs/set-tag", {"run_id": rid, "key": "t2",
                                               "value": "z" * 9000})[0], 200)
        self.assertEqual(len(the_run(rid)["tags"]["t2"]), 8000)
        # Exactly at the limit: untouched.
        self.assertEqual(batch(rid, [], [kv("p2", "x" * 6000)], [kv("t3", "y" * 8000)])[0], 200)
        # Characters, not bytes.
        self.assertEqual(batch(rid, [], [kv("p3", "é" * 6000)])[0], 200)
        self.assertEqual(the_run(rid)["params"]["p3"], "é" * 6000)

    def test_truncation_disabled_by_config(self):
        rid = create_run()
        post("/_test/config", {"truncate_long_values": False})
        try:
            self.assertError(batch(rid, [m("a")], [kv("p", "x" * 6001)]), 400,
                             "INVALID_PARAMETER_VALUE", "exceeded length limit of 6000")
            self.assertError(batch(rid, [], [], [kv("t", "x" * 8001)]), 400,
                             "INVALID_PARAMETER_VALUE", "exceeded length limit of 8000")
            self.assertEqual(the_run(rid)["metrics"], [])
        finally:
            post("/_test/config", {"truncate_long_values": None})

    def test_truncation_disabled_by_env(self):
        env = dict(os.environ, MLFLOW_TRUNCATE_LONG_VALUES="false")
        srv = ServerProc(env=env)
        try:
            rid = create_run(srv=srv)
            self.assertError(batch(rid, [], [kv("p", "x" * 6001)], srv=srv), 400,
                             "INVALID_PARAMETER_VALUE")
        finally:
            srv.stop()

    def test_param_immutability(self):
        rid = create_run()
        self.assertEqual(batch(rid, [], [kv("lr", "0.1")])[0], 200)
        self.assertEqual(batch(rid, [], [kv("lr", "0.1")])[0], 200)
        self.assertError(batch(rid, [m("loss")], [kv("lr", "0.2"), kv("new", "1")],
                               [kv("t", "1")]),
                         400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
        run = the_run(rid)
        self.assertEqual(run["params"], {"lr": "0.1"})
        self.assertEqual(run["metrics"], [])
        self.assertNotIn("t", run["tags"])

    def test_tags_last_write_wins(self):
        rid = create_run()
        batch(rid, [], [], [kv("t", "1")])
        batch(rid, [], [], [kv("t", "2")])
        self.assertEqual(the_run(rid)["tags"]["t"], "2")

    def test_missing_fields(self):
        rid = create_run()
        self.assertError(batch(rid, [{"key": "a", "value": 1}]), 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'metrics[0].timestamp'")
        self.assertError(batch(rid, [{"key": "a", "timestamp": 1}]), 400,
                         "INVALID_PARAMETER_VALUE", "'metrics[0].value'")
        self.assertError(batch(rid, [], [{"value": "x"}]), 400, "INVALID_PARAMETER_VALUE",
                         "'params[0].key'")
        self.assertError(post("runs/log-batch", {"metrics": []}), 400,
                         "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'run_id'")
        self.assertError(batch("0123456789abcdef0123456789abcdef", [m("a")]), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(batch("../etc", [m("a")]), 400, "INVALID_PARAMETER_VALUE",
                         "Invalid run ID")


class MetricValueTests(Base):
    def test_nan_and_infinity_strings(self):
        rid = create_run()
        st, _, body = batch(rid, [m("n", "NaN", 1, 0), m("p", "Infinity", 2, 0),
                                  m("q", "-Infinity", 3, 0)])
        self.assertEqual(st, 200, body)
        pts = {p["key"]: p for p in the_run(rid)["metrics"]}
        self.assertEqual(pts["n"]["value"], "NaN")
        self.assertEqual(pts["p"]["value"], MAX_DOUBLE)
        self.assertEqual(pts["q"]["value"], -MAX_DOUBLE)
        st, _, body = get(f"metrics/get-history?run_id={rid}&metric_key=n")
        self.assertEqual(body["metrics"], [{"key": "n", "value": "NaN", "timestamp": 1,
                                            "step": 0}])
        data = get(f"runs/get?run_id={rid}")[2]["run"]["data"]
        latest = {x["key"]: x["value"] for x in data["metrics"]}
        self.assertEqual(latest, {"n": "NaN", "p": MAX_DOUBLE, "q": -MAX_DOUBLE})

    def test_silent_corruption_of_bare_tokens(self):
        rid = create_run()
        for token in ("NaN", "Infinity", "-Infinity", "1e309", '"nan"'):
            with self.subTest(token=token):
                post("/_test/reset", {})
                rid = create_run()
                body = ('{"run_id": "%s", "metrics": [{"key": "a", "value": %s, '
                        '"timestamp": 1234, "step": 7}]}' % (rid, token))
                st, _, resp = post("runs/log-batch", body)
                self.assertEqual(st, 200, resp)
                self.assertEqual(the_run(rid)["metrics"],
                                 [{"key": "a", "value": 0.0, "timestamp": 0, "step": 0}])

    def test_bare_nan_drops_the_rest_of_the_batch(self):
        # ParseDict stops at the bad value: later metrics, params, tags are silently lost.
        rid = create_run()
        body = ('{"run_id": "%s", "metrics": [{"key": "a", "value": NaN, "timestamp": 5}, '
                '{"key": "b", "value": 1, "timestamp": 5}], "params": [{"key": "p", '
                '"value": "1"}]}' % rid)
        self.assertEqual(post("runs/log-batch", body)[0], 200)
        run = the_run(rid)
        self.assertEqual([x["key"] for x in run["metrics"]], ["a"])
        self.assertEqual(run["params"], {})

    def test_timestamps(self):
        rid = create_run()
        st, _, body = batch(rid, [m("f", 3.5, 1.5, 2)])
        self.assertEqual(st, 200, body)
        self.assertEqual(the_run(rid)["metrics"],
                         [{"key": "f", "value": 3.5, "timestamp": 0, "step": 0}])
        self.assertError(batch(rid, [m("neg", 1, -1)]), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(batch(rid, [{"key": "nots", "value": 1}]), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertEqual(batch(rid, [{"key": "nostep", "value": 1, "timestamp": 9}])[0], 200)
        self.assertEqual(batch(rid, [m("negstep", 1, 9, -4)])[0], 200)
        # int64 as strings
        self.assertEqual(batch(rid, [{"key": "s", "value": "2.5", "timestamp": "1700000000000",
                                      "step": "9007199254740993"}])[0], 200)
        pts = {p["key"]: p for p in the_run(rid)["metrics"]}
        self.assertEqual(pts["nostep"]["step"], 0)
        self.assertEqual(pts["negstep"]["step"], -4)
        self.assertEqual(pts["s"], {"key": "s", "value": 2.5, "timestamp": 1700000000000,
                                    "step": 9007199254740993})

    def test_identical_points_stored_once(self):
        rid = create_run()
        pts = [m("a", 1.0, 5, 1), m("a", 1.0, 5, 1), m("a", 2.0, 5, 1), m("n", "NaN", 1, 1)]
        self.assertEqual(batch(rid, pts)[0], 200)
        self.assertEqual(batch(rid, pts)[0], 200)
        got = the_run(rid)["metrics"]
        self.assertEqual(got, [m("a", 1.0, 5, 1), m("a", 2.0, 5, 1), m("n", "NaN", 1, 1)])

    def test_latest_and_history_order(self):
        rid = create_run()
        pts = [m("l", 5.0, 100, 2), m("l", 1.0, 200, 1), m("l", 7.0, 50, 2), m("l", 6.0, 100, 2),
               m("l", 0.5, 10, 0)]
        self.assertEqual(batch(rid, pts)[0], 200)
        data = get(f"runs/get?run_id={rid}")[2]["run"]["data"]
        self.assertEqual(data["metrics"], [m("l", 6.0, 100, 2)])
        hist = get(f"metrics/get-history?run_id={rid}&metric_key=l")[2]["metrics"]
        self.assertEqual([(h["step"], h["timestamp"]) for h in hist],
                         [(0, 10), (1, 200), (2, 50), (2, 100), (2, 100)])
        self.assertEqual(get(f"metrics/get-history?run_id={rid}&metric_key=none")[2], {})


class WireTests(Base):
    def test_content_type(self):
        rid = create_run()
        body = json.dumps({"run_id": rid, "metrics": [m("a")]}).encode()
        st, resp = raw_post("runs/log-batch", body, {})
        self.assertEqual((st, resp["error_code"]), (400, "BAD_REQUEST"))
        st, resp = raw_post("runs/log-batch", body, {"Content-Type": "application/x-protobuf"})
        self.assertEqual((st, resp["error_code"]), (400, "BAD_REQUEST"))
        st, resp = raw_post("runs/log-batch", body,
                            {"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(st, 200, resp)

    def test_content_encoding_refused_misleadingly(self):
        import gzip
        rid = create_run()
        for enc in ("gzip", "zstd"):
            body = json.dumps({"run_id": rid, "metrics": [m("a")]}).encode()
            if enc == "gzip":
                body = gzip.compress(body)
            st, resp = raw_post("runs/log-batch", body, {"Content-Type": "application/json",
                                                         "Content-Encoding": enc})
            self.assertEqual(st, 400)
            self.assertEqual(resp["error_code"], "INVALID_PARAMETER_VALUE")
            self.assertIn("Missing value for required parameter 'run_id'", resp["message"])

    def test_malformed_json_reads_as_empty(self):
        self.assertError(post("runs/log-batch", b'{"run_id": '), 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'run_id'")

    def test_chunked_body(self):
        rid = create_run()
        body = json.dumps({"run_id": rid, "metrics": [m("c", 1.0, 1, i) for i in range(50)]})
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
        try:
            conn.request("POST", API + "runs/log-batch", body=iter([body[:100].encode(),
                                                                   body[100:].encode()]),
                         headers={"Content-Type": "application/json",
                                  "Transfer-Encoding": "chunked"}, encode_chunked=True)
            r = conn.getresponse()
            self.assertEqual(r.status, 200, r.read())
            r.read()
        finally:
            conn.close()
        self.assertEqual(len(the_run(rid)["metrics"]), 50)
        req = [e for e in get("/_test/requests")[2] if e["path"].endswith("log-batch")][-1]
        self.assertEqual(req["transfer_encoding"], "chunked")
        self.assertEqual(req["body_len"], len(body))

    def test_unknown_route_and_method_are_html(self):
        for method, path, status in (("GET", API + "runs/nope", 404), ("GET", "/nope", 404),
                                     ("POST", API + "experiments/list-all", 404),
                                     ("GET", API + "runs/log-batch", 405),
                                     ("POST", API + "runs/get", 405)):
            with self.subTest(path=path, method=method):
                st, hdrs, text = call(method, path, {} if method == "POST" else None, raw=True)
                self.assertEqual(st, status)
                self.assertTrue(hdrs["Content-Type"].startswith("text/html"))
                self.assertIn("<!doctype html>", text)

    def test_keep_alive_and_close(self):
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
        try:
            for _ in range(3):
                conn.request("GET", API + "experiments/get?experiment_id=0")
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                self.assertNotEqual((r.getheader("Connection") or "").lower(), "close")
        finally:
            conn.close()
        conns = {e["conn"] for e in get("/_test/requests")[2]}
        self.assertEqual(len(conns), 1)
        srv = ServerProc("--close")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
            conn.request("GET", API + "experiments/get?experiment_id=0")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Connection"), "close")
            conn.close()
        finally:
            srv.stop()

    def test_request_log(self):
        post("runs/create", {"experiment_id": "0"},
             headers={"User-Agent": "mlo/0.1", "Authorization": "Bearer tok"})
        log = get("/_test/requests")[2]
        self.assertEqual(len(log), 1)
        e = log[0]
        self.assertEqual(e["method"], "POST")
        self.assertEqual(e["path"], API + "runs/create")
        self.assertEqual(e["status"], 200)
        self.assertEqual(e["user_agent"], "mlo/0.1")
        self.assertEqual(e["authorization"], "Bearer tok")
        self.assertEqual(e["content_type"], "application/json")
        self.assertEqual(e["body_len"], len(json.dumps({"experiment_id": "0"})))

    def test_require_auth(self):
        srv = ServerProc("--require-basic", "user:pw")
        try:
            st, hdrs, _ = get("experiments/get?experiment_id=0", srv=srv, raw=True)
            self.assertEqual(st, 401)
            self.assertIn("Basic", hdrs["WWW-Authenticate"])
            auth = "Basic " + base64.b64encode(b"user:pw").decode()
            st, _, _ = get("experiments/get?experiment_id=0", srv=srv,
                           headers={"Authorization": auth})
            self.assertEqual(st, 200)
        finally:
            srv.stop()

    def test_never_500(self):
        rid = create_run()
        bodies = [b"", b"null", b"[]", b"5", b'"str"', b'"{\\"run_id\\": 5}"', b"\xff\xfe\x00",
                  b"[" * 100000, b'{"a":' * 5000, b'{"a":' * 900 + b"1" + b"}" * 900,
                  b'{"metrics": ' + b"[" * 900 + b"]" * 900 + b"}",
                  b'{"experiment_ids": [' + b"[" * 900 + b"]" * 900 + b"]}", b'{"run_id": 5}', b'{"run_id": null}',
                  b'{"run_id": []}', b'{"metrics": "x"}', b'{"metrics": [1, 2]}',
                  b'{"metrics": [null]}', b'{"metrics": [{"key": 5}]}',
                  b'{"params": [{"key": "a", "value": 5}]}', b'{"run_id": "\\ud800"}',
                  b'{"value": 1e999999}', b'{"experiment_id": {}}', b'{"experiment_ids": 5}',
                  b'{"experiment_ids": [{}]}', b'{"status": []}', b'{"max_results": "abc"}',
                  b'{"max_results": 1e30}', b'{"filter": "garbage ((("}',
                  b'{"datasets": [{"dataset": 5}]}', b'{"tags": [{"key": null}]}',
                  b'{"timestamp": true, "value": false, "key": "k"}',
                  ('{"run_id": "%s", "metrics": [{"key": "k", "value": 1, "timestamp": 1, '
                   '"step": 99999999999999999999}]}' % rid).encode(),
                  ('{"run_id": "%s", "key": "k", "value": "abc", "timestamp": 1}' % rid).encode(),
                  ('{"run_id": "%s", "key": "k", "value": 1, "timestamp": null}' % rid).encode(),
                  ('{"run_id": "%s", "datasets": [{"dataset": {"name": "x"}}]}' % rid).encode()]
        posts = ["experiments/create", "runs/create", "runs/update", "runs/delete",
                 "runs/restore", "runs/log-batch", "runs/log-metric", "runs/log-parameter",
                 "runs/set-tag", "runs/delete-tag", "runs/log-inputs", "runs/search"]
        for path in posts:
            for body in bodies:
                with self.subTest(path=path, body=body[:60]):
                    st, _, resp = post(path, body)
                    self.assertIn(st, (200, 400, 404), resp)
                    if st != 200:
                        self.assertIn("error_code", resp)
        queries = ["", "?", "?run_id=", "?run_id=%ff", "?run_id=a&run_id=b",
                   "?experiment_id=-1", "?experiment_id=99999999999999999999999",
                   "?experiment_name=%00", f"?run_id={rid}&metric_key=k&max_results=zz",
                   f"?run_id={rid}&metric_key=k&max_results=1e99"]
        for path in ["experiments/get", "experiments/get-by-name", "runs/get",
                     "metrics/get-history"]:
            for q in queries:
                with self.subTest(path=path, q=q):
                    st, _, resp = get(path + q)
                    self.assertIn(st, (200, 400, 404), resp)
        self.assertEqual(get("/_test/ping")[0], 200)


class FaultTests(Base):
    def fault(self, spec, srv=None):
        st, _, body = post("/_test/faults", spec, srv=srv)
        self.assertEqual(st, 200, body)

    def test_status_count_retry_after(self):
        self.fault({"status": 503, "count": 2, "retry_after": 7})
        for _ in range(2):
            st, hdrs, body = get("experiments/get?experiment_id=0")
            self.assertEqual(st, 503)
            self.assertEqual(hdrs["Retry-After"], "7")
            self.assertEqual(body["error_code"], "TEMPORARILY_UNAVAILABLE")
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 200)
        statuses = [e["status"] for e in get("/_test/requests")[2]]
        self.assertEqual(statuses, [503, 503, 200])

    def test_faulted_request_stores_nothing_unless_process(self):
        rid = create_run()
        self.fault({"status": 500, "path_prefix": "runs/log-batch"})
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 200)  # not matched
        self.assertEqual(batch(rid, [m("a")])[0], 500)
        self.assertEqual(the_run(rid)["metrics"], [])
        self.fault({"status": 502, "process": True, "path_prefix": "/api/2.0/mlflow/runs/"})
        st, hdrs, text = call("POST", "runs/log-batch", {"run_id": rid, "metrics": [m("a")]},
                              raw=True)
        self.assertEqual(st, 502)
        self.assertIn("nginx", text)
        self.assertEqual(len(the_run(rid)["metrics"]), 1)

    def test_custom_body(self):
        self.fault({"status": 403, "body": "<html>denied</html>", "content_type": "text/html"})
        st, hdrs, text = get("experiments/get?experiment_id=0", raw=True)
        self.assertEqual((st, text, hdrs["Content-Type"]), (403, "<html>denied</html>",
                                                            "text/html"))

    def test_drop(self):
        self.fault({"drop": True})
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
        try:
            conn.request("GET", API + "experiments/get?experiment_id=0")
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
                conn.getresponse()
        finally:
            conn.close()
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 200)
        self.assertEqual(get("/_test/requests")[2][0]["status"], 0)

    def test_drop_after_processing(self):
        rid = create_run()
        self.fault({"drop": True, "process": True})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError,
                                urllib.error.URLError)):
            batch(rid, [m("a")])
        self.assertEqual(len(the_run(rid)["metrics"]), 1)
        self.assertEqual(batch(rid, [m("a")])[0], 200)  # the retry is harmless
        self.assertEqual(len(the_run(rid)["metrics"]), 1)

    def test_reset_mid_response(self):
        self.fault({"reset_mid_response": True})
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
        try:
            conn.request("GET", API + "experiments/get?experiment_id=0")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            with self.assertRaises(http.client.IncompleteRead):
                r.read()
        finally:
            conn.close()

    def test_delay(self):
        self.fault({"delay_ms": 400})
        t0 = time.monotonic()
        st, _, _ = get("experiments/get?experiment_id=0")
        self.assertEqual(st, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.38)
        t0 = time.monotonic()
        get("experiments/get?experiment_id=0")
        self.assertLess(time.monotonic() - t0, 0.3)

    def test_several_rules_and_clear(self):
        self.fault([{"status": 429, "count": 1}, {"status": 500, "count": 1}])
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 429)
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 500)
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 200)
        self.fault({"status": 503, "count": -1})
        for _ in range(3):
            self.assertEqual(get("experiments/get?experiment_id=0")[0], 503)
        self.assertEqual(post("/_test/faults/clear", {})[0], 200)
        self.assertEqual(get("experiments/get?experiment_id=0")[0], 200)
        self.assertEqual(post("/_test/faults", {"status": "x"})[0], 400)
        self.assertEqual(post("/_test/faults", {"bogus": 1})[0], 400)

    def test_close_after_response(self):
        self.fault({"close": True})
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
        try:
            conn.request("GET", API + "experiments/get?experiment_id=0")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.getheader("Connection"), "close")
        finally:
            conn.close()


class ControlTests(Base):
    def test_dump_shape(self):
        st, _, body = post("experiments/create", {"name": "e", "tags": [kv("a", "b")]})
        rid = create_run(body["experiment_id"])
        batch(rid, [m("x", 1.0, 1, 0), m("x", 2.0, 2, 1)], [kv("p", "1")], [kv("t", "2")])
        d = dump()
        self.assertEqual([e["name"] for e in d["experiments"]], ["Default", "e"])
        self.assertEqual(d["experiments"][1]["tags"], {"a": "b"})
        run = d["runs"][0]
        self.assertEqual(run["info"]["run_id"], rid)
        self.assertEqual(run["params"], {"p": "1"})
        self.assertEqual(run["tags"]["t"], "2")
        self.assertEqual(run["metrics"], [m("x", 1.0, 1, 0), m("x", 2.0, 2, 1)])
        self.assertEqual(run["inputs"], [])

    def test_reset(self):
        post("experiments/create", {"name": "gone"})
        create_run()
        post("/_test/reset", {})
        d = dump()
        self.assertEqual([e["name"] for e in d["experiments"]], ["Default"])
        self.assertEqual(d["runs"], [])
        self.assertEqual(get("/_test/requests")[2], [])

    def test_shutdown_and_sigterm(self):
        srv = ServerProc()
        st, _, _ = post("/_test/shutdown", {}, srv=srv)
        self.assertEqual(st, 200)
        self.assertEqual(srv.proc.wait(10), 0)
        srv.stop()
        srv = ServerProc()
        srv.proc.terminate()
        self.assertEqual(srv.proc.wait(10), 0)
        srv.stop()


@unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
class TlsTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mlo-tls-")
        for name in ("server", "client"):
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", os.path.join(cls.dir, f"{name}.key"),
                 "-out", os.path.join(cls.dir, f"{name}.crt")],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, f):
        return os.path.join(self.dir, f)

    def ctx(self, client_cert=False):
        c = ssl.create_default_context(cafile=self.path("server.crt"))
        if client_cert:
            c.load_cert_chain(self.path("client.crt"), self.path("client.key"))
        return c

    def test_https(self):
        srv = ServerProc("--tls-cert", self.path("server.crt"), "--tls-key",
                         self.path("server.key"))
        try:
            self.assertTrue(srv.base.startswith("https://"))
            st, _, body = get("experiments/get?experiment_id=0", srv=srv, context=self.ctx())
            self.assertEqual(st, 200)
            # A client that does not trust the certificate fails the handshake.
            with self.assertRaises(urllib.error.URLError):
                get("experiments/get?experiment_id=0", srv=srv,
                    context=ssl.create_default_context())
            self.assertEqual(get("/_test/ping", srv=srv, context=self.ctx())[0], 200)
        finally:
            srv.stop()

    def test_client_certificate(self):
        srv = ServerProc("--tls-cert", self.path("server.crt"), "--tls-key",
                         self.path("server.key"), "--tls-client-ca", self.path("client.crt"))
        try:
            st, _, text = get("experiments/get?experiment_id=0", srv=srv, context=self.ctx(),
                              raw=True)
            self.assertEqual(st, 400)
            self.assertIn("No required SSL certificate was sent", text)
            st, _, _ = get("experiments/get?experiment_id=0", srv=srv,
                           context=self.ctx(client_cert=True))
            self.assertEqual(st, 200)
            self.assertEqual(get("/_test/ping", srv=srv, context=self.ctx())[0], 200)
        finally:
            srv.stop()


class IdleTimeoutTests(unittest.TestCase):
    def test_idle_connection_closed(self):
        srv = ServerProc("--idle-timeout", "0.3")
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /_test/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b'"ok"' not in data:
                data += s.recv(4096)
            time.sleep(0.8)
            self.assertEqual(s.recv(4096), b"")  # closed by the server
            s.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
