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
import hashlib
import http.client
import json
import os
import random
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
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "mlflow_test_server.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
API = "/api/2.0/mlflow/"
MAX_DOUBLE = 1.7976931348623157e308

# Never let an http_proxy in the environment get between us and 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerProc:
    def __init__(self, *args, env=None, stderr=None):
        self.proc = subprocess.Popen([PYTHON, SERVER, "--port", "0", *args],
                                     stdout=subprocess.PIPE, env=env, stderr=stderr)
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


    def test_search_experiments(self):
        ids = {}
        for name in ("alpha", "beta", "alphabet"):
            st, _, body = post("experiments/create", {"name": name,
                                                      "tags": [kv("team", name[:4])]})
            self.assertEqual(st, 200, body)
            ids[name] = body["experiment_id"]
        st, _, body = post("experiments/search", {})
        self.assertEqual(st, 200, body)
        names = [e["name"] for e in body["experiments"]]
        self.assertEqual(sorted(names), ["Default", "alpha", "alphabet", "beta"])
        order = [(-e["creation_time"], int(e["experiment_id"])) for e in body["experiments"]]
        self.assertEqual(order, sorted(order))  # newest first, then by id
        for flt, want in (("name = 'beta'", ["beta"]),
                          ("name LIKE 'alpha%'", ["alpha", "alphabet"]),
                          ("attribute.name ILIKE 'ALPHA'", ["alpha"]),
                          ("tags.team = 'alph'", ["alpha", "alphabet"]),
                          ("tags.team = 'beta' and name != 'x'", ["beta"])):
            with self.subTest(filter=flt):
                st, _, body = post("experiments/search", {"filter": flt,
                                                          "order_by": ["name ASC"]})
                self.assertEqual(st, 200, body)
                self.assertEqual([e["name"] for e in body.get("experiments", [])], want)
        st, _, body = post("experiments/search", {"max_results": 2, "order_by": ["name"]})
        self.assertEqual([e["name"] for e in body["experiments"]], ["Default", "alpha"])
        st, _, body = post("experiments/search", {"max_results": 2, "order_by": ["name"],
                                                  "page_token": body["next_page_token"]})
        self.assertEqual([e["name"] for e in body["experiments"]], ["alphabet", "beta"])
        self.assertNotIn("next_page_token", body)
        st, _, body = get("experiments/search?filter=name%20%3D%20'beta'")
        self.assertEqual([e["experiment_id"] for e in body["experiments"]], [ids["beta"]])
        self.assertError(post("experiments/search", {"filter": "params.x = '1'"}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(post("experiments/search", {"max_results": 0}), 400,
                         "INVALID_PARAMETER_VALUE")


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
                  ('{"run_id": "%s", "datasets": [{"dataset": {"name": "x"}}]}' % rid).encode(),
                  b'{"name": "m", "source": 5}', b'{"name": "m", "version": 1}',
                  b'{"name": "m", "alias": null, "version": "1"}', b'{"name": "m", "alias": "a"}',
                  b'{"name": "m", "source": "models:/m/9"}', b'{"name": "m", "source": "\\u0000"}',
                  b'{"name": "m", "source": "models:/zz@a"}', b'{"name": "m", "version": "1e3"}',
                  b'{"name": "m", "tags": [{"key": 5}]}', b'{"name": ["m"]}',
                  b'{"path": "f", "num_parts": "zz"}', b'{"path": "f", "num_parts": -3}',
                  b'{"path": "f", "upload_id": 5, "parts": "x"}', b'{"path": "..", "parts": []}',
                  b'{"path": "f", "upload_id": "u", "parts": [{"part_number": "x"}]}',
                  b'{"path": "f", "upload_id": "u", "parts": [null]}']
        post("registered-models/create", {"name": "m"})
        post("model-versions/create", {"name": "m", "source": "s3://b/m"})
        posts = ["experiments/create", "runs/create", "runs/update", "runs/delete",
                 "runs/restore", "runs/log-batch", "runs/log-metric", "runs/log-parameter",
                 "runs/set-tag", "runs/delete-tag", "runs/log-inputs", "runs/search",
                 "registered-models/create", "model-versions/create",
                 "registered-models/alias", "/api/2.0/mlflow-artifacts/mpu/create/a/b",
                 "/api/2.0/mlflow-artifacts/mpu/complete/a",
                 "/api/2.0/mlflow-artifacts/mpu/abort/a"]
        for path in posts:
            for body in bodies:
                with self.subTest(path=path, body=body[:60]):
                    st, _, resp = post(path, body)
                    self.assertIn(st, (200, 400, 404), resp)
                    if st != 200:
                        self.assertIn("error_code", resp)
        for body in bodies:
            with self.subTest(path="DELETE alias", body=body[:60]):
                st, _, resp = call("DELETE", "registered-models/alias", body)
                self.assertIn(st, (200, 400, 404), resp)
        queries = ["", "?", "?run_id=", "?run_id=%ff", "?run_id=a&run_id=b",
                   "?experiment_id=-1", "?experiment_id=99999999999999999999999",
                   "?experiment_name=%00", f"?run_id={rid}&metric_key=k&max_results=zz",
                   f"?run_id={rid}&metric_key=k&max_results=1e99"]
        queries += ["?name=m&version=x", "?name=m&version=1", "?name=m&alias=%00",
                    "?name=&alias=", "?name=m&version=99999999999999999999999",
                    "?name=m&version=-1", "?path=../..", "?path=%00", f"?run_id={rid}&path=/x",
                    "?filter=run_id%3D'x'&page_token=zz", "?filter=name%3D'm'&page_token=-1",
                    "?filter=run_id%20IN%20('a')"]
        for path in ["experiments/get", "experiments/get-by-name", "runs/get",
                     "metrics/get-history", "registered-models/get", "model-versions/get",
                     "model-versions/get-download-uri", "model-versions/search",
                     "registered-models/alias",
                     "artifacts/list", "/api/2.0/mlflow-artifacts/artifacts"]:
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


# ---------------------------------------------------------------------------------------------
# Issue 5: artifacts, multipart, model registry, dataset inputs
# ---------------------------------------------------------------------------------------------

MA = "/api/2.0/mlflow-artifacts/"
ART = MA + "artifacts/"


def raw_request(method, url, body=None, headers=None, srv=None, timeout=60):
    """http.client request with exactly these headers.  url: a path on srv or an absolute
    URL (a presigned one).  body: bytes, or an iterable of bytes (sent chunked unless a
    Content-Length header is given).  Returns (status, headers, body bytes)."""
    srv = srv or SRV
    if url.startswith("http"):
        u = urlsplit(url)
        host, port, target = u.hostname, u.port, u.path + ("?" + u.query if u.query else "")
    else:
        host, port, target = "127.0.0.1", srv.port, url
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)) and \
                "Content-Length" not in hdrs:
            conn.request(method, target, body=body, headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def put_artifact(path, data, srv=None, headers=None):
    return raw_request("PUT", ART + path, data, headers, srv=srv)


def get_artifact(path, srv=None):
    return raw_request("GET", ART + path, srv=srv)


def jbody(raw):
    return json.loads(raw.decode()) if raw else None


def stored(srv=None):
    return {a["path"]: a for a in dump(srv)["artifacts"]}


def requests_log(srv=None):
    return get("/_test/requests", srv=srv)[2]


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def config(srv=None, **kw):
    st, _, body = post("/_test/config", kw, srv=srv)
    assert st == 200, body
    return body


class ArtifactUriTests(Base):
    def test_experiment_and_run_uris(self):
        exp = post("experiments/create", {"name": "art"})[2]["experiment_id"]
        self.assertEqual(get(f"experiments/get?experiment_id={exp}")[2]["experiment"]
                         ["artifact_location"], f"mlflow-artifacts:/{exp}")
        rid = create_run(exp)
        want = f"mlflow-artifacts:/{exp}/{rid}/artifacts"
        self.assertEqual(get(f"runs/get?run_id={rid}")[2]["run"]["info"]["artifact_uri"], want)
        runs = post("runs/search", {"experiment_ids": [exp]})[2]["runs"]
        self.assertEqual(runs[0]["info"]["artifact_uri"], want)

    def check_not_serving(self, srv):
        for method, path, body in (("PUT", ART + "0/x/artifacts/f.txt", b"data"),
                                   ("GET", ART + "0/x/artifacts/f.txt", None),
                                   ("GET", MA + "artifacts?path=0", None),
                                   ("DELETE", ART + "0/x", None),
                                   ("POST", MA + "mpu/create/0/x", b'{"path": "f", '
                                                                    b'"num_parts": 1}')):
            with self.subTest(method=method, path=path):
                st, hdrs, text = raw_request(method, path, body,
                                             {"Content-Type": "application/json"}, srv=srv)
                self.assertEqual(st, 503)
                self.assertTrue(hdrs["Content-Type"].startswith("text/html"))
                self.assertIn(b"disabled due to the mlflow server running with "
                              b"`--no-serve-artifacts`", text)
        st, _, text = raw_request("PUT", ART + "a/b.bin", b"x", srv=srv)
        self.assertIn(b"Endpoint: /api/2.0/mlflow-artifacts/artifacts/<path:artifact_path> "
                      b"disabled", text)

    def test_no_serve_artifacts_flag(self):
        srv = ServerProc("--no-serve-artifacts")
        try:
            st, _, body = get("experiments/get?experiment_id=0", srv=srv)
            self.assertEqual(body["experiment"]["artifact_location"], "s3://mlo-test-bucket/0")
            rid = create_run(srv=srv)
            self.assertEqual(get(f"runs/get?run_id={rid}", srv=srv)[2]["run"]["info"]
                             ["artifact_uri"], f"s3://mlo-test-bucket/0/{rid}/artifacts")
            exp = post("experiments/create", {"name": "e"}, srv=srv)[2]["experiment_id"]
            self.assertEqual(get(f"experiments/get?experiment_id={exp}", srv=srv)[2]
                             ["experiment"]["artifact_location"], f"s3://mlo-test-bucket/{exp}")
            self.check_not_serving(srv)
            self.assertEqual(dump(srv)["artifacts"], [])
        finally:
            srv.stop()

    def test_serve_artifacts_config(self):
        try:
            self.assertFalse(config(serve_artifacts=False)["serve_artifacts"])
            rid = create_run()
            self.assertEqual(get(f"runs/get?run_id={rid}")[2]["run"]["info"]["artifact_uri"],
                             f"s3://mlo-test-bucket/0/{rid}/artifacts")
            self.check_not_serving(SRV)
        finally:
            config(serve_artifacts=True)
        rid = create_run()
        self.assertTrue(get(f"runs/get?run_id={rid}")[2]["run"]["info"]["artifact_uri"]
                        .startswith("mlflow-artifacts:/0/"))
        self.assertEqual(put_artifact("0/r/artifacts/f", b"1")[0], 200)


class ArtifactTests(Base):
    def test_put_get_list_delete(self):
        st, hdrs, body = put_artifact("1/r1/artifacts/model/MLmodel", b"flavors: {}\n",
                                      headers={"Content-Type": "text/plain"})
        self.assertEqual((st, jbody(body)), (200, {}))
        self.assertEqual(hdrs["Content-Type"], "application/json")
        put_artifact("1/r1/artifacts/model/weights.bin", b"\x00\x01" * 1000)
        put_artifact("1/r1/artifacts/metrics.json", b"{}")
        st, hdrs, body = get_artifact("1/r1/artifacts/model/weights.bin")
        self.assertEqual((st, body), (200, b"\x00\x01" * 1000))
        self.assertEqual(hdrs["Content-Length"], "2000")
        self.assertEqual(hdrs["Content-Type"], "application/octet-stream")
        self.assertEqual(hdrs["Content-Disposition"], "attachment; filename=weights.bin")
        self.assertEqual(get_artifact("1/r1/artifacts/model/MLmodel")[1]["Content-Type"],
                         "text/plain")
        st, _, body = get(MA + "artifacts?path=1/r1/artifacts")
        self.assertEqual(body, {"files": [
            {"path": "metrics.json", "is_dir": False, "file_size": 2},
            {"path": "model", "is_dir": True}]})
        st, _, body = get(MA + "artifacts?path=1/r1/artifacts/model")
        self.assertEqual([f["path"] for f in body["files"]], ["MLmodel", "weights.bin"])
        self.assertEqual(get(MA + "artifacts")[2], {"files": [{"path": "1", "is_dir": True}]})
        self.assertEqual(get(MA + "artifacts?path=")[2], {"files": [{"path": "1",
                                                                      "is_dir": True}]})
        self.assertEqual(get(MA + "artifacts?path=nope/none")[2], {})
        self.assertEqual(get(MA + "artifacts?path=1/r1/artifacts/metrics.json")[2], {})
        # ajax-api works too; HEAD gives the length without the body
        self.assertEqual(raw_request("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/1/r1/"
                                     "artifacts/metrics.json")[2], b"{}")
        st, hdrs, body = raw_request("HEAD", ART + "1/r1/artifacts/model/weights.bin")
        self.assertEqual((st, hdrs["Content-Length"], body), (200, "2000", b""))
        # overwrite, then delete a file and a directory
        put_artifact("1/r1/artifacts/metrics.json", b'{"a": 1}')
        self.assertEqual(get_artifact("1/r1/artifacts/metrics.json")[2], b'{"a": 1}')
        self.assertEqual(raw_request("DELETE", ART + "1/r1/artifacts/metrics.json")[0], 200)
        self.assertEqual(raw_request("DELETE", ART + "1/r1/artifacts/model")[0], 200)
        self.assertEqual(raw_request("DELETE", ART + "1/r1/artifacts/gone")[0], 200)
        self.assertEqual(get(MA + "artifacts?path=1/r1/artifacts")[2], {})
        self.assertEqual(dump()["artifacts"], [])

    def test_missing_and_wrong_method(self):
        st, hdrs, body = get_artifact("0/none/artifacts/x")
        self.assertEqual(st, 404)
        self.assertEqual(jbody(body)["error_code"], "RESOURCE_DOES_NOT_EXIST")
        put_artifact("0/d/f", b"x")
        self.assertEqual(get_artifact("0/d")[0], 404)  # a directory is not a file
        try:
            config(missing_artifact_status=500)
            st, hdrs, body = get_artifact("0/none/artifacts/x")
            self.assertEqual(st, 500)
            self.assertIn(b"Internal Server Error", body)
        finally:
            config(missing_artifact_status=404)
        st, hdrs, body = raw_request("POST", ART + "0/d/f", b"{}",
                                     {"Content-Type": "application/json"})
        self.assertEqual(st, 405)
        self.assertIn(b"<!doctype html>", body)
        self.assertEqual(raw_request("PUT", MA + "artifacts", b"x")[0], 405)
        self.assertEqual(raw_request("GET", MA + "nope/x")[0], 404)
        self.assertEqual(raw_request("POST", MA + "mpu/create/", b"{}",
                                     {"Content-Type": "application/json"})[0], 404)

    def test_rejected_paths(self):
        bad = ["a/../b", "..", "../x", "%2e%2e/x", "a/%252e%252e/b", "%2Fabs", "/abs", "C:/x",
               "a%5Cb", "a%00b", "a%0Ab", "", "x%23y", "file:/etc/passwd",
               ".mlflow-test-server/staging/x", "dir/"]
        for p in bad:
            with self.subTest(path=p):
                st, _, body = put_artifact(p, b"x")
                self.assertEqual(st, 400, body)
                self.assertEqual(jbody(body), {"error_code": "INVALID_PARAMETER_VALUE",
                                               "message": "Invalid path"})
                if p != "dir/":
                    self.assertEqual(get_artifact(p)[0], 400)
        for q in ("../x", "a/%2e%2e/b", "/etc", "a%5Cb"):
            with self.subTest(list=q):
                st, _, body = get(MA + "artifacts?path=" + q)
                self.assertEqual((st, body["error_code"]), (400, "INVALID_PARAMETER_VALUE"))
        self.assertEqual(dump()["artifacts"], [])
        # fine: normalised like the local artifact repository does
        self.assertEqual(put_artifact("a//b/./c%20d.txt", b"x")[0], 200)
        self.assertEqual(put_artifact("a..b/x", b"x")[0], 200)
        self.assertEqual(sorted(stored()), ["a..b/x", "a/b/c d.txt"])

    def test_50mb_streamed_round_trip(self):
        srv = ServerProc()  # fresh process: its memory high-water mark is ours to read
        try:
            mb = 1 << 20
            n = 50
            h = hashlib.sha256()
            blocks = []
            for i in range(n):
                b = random.Random(i).randbytes(mb)
                h.update(b)
                blocks.append(b)
            digest = h.hexdigest()
            before = vm_hwm_kb(srv.proc.pid)
            path = "7/abc/artifacts/big.bin"
            st, _, body = put_artifact(path, iter(blocks), srv=srv,
                                       headers={"Content-Length": str(n * mb)})
            self.assertEqual(st, 200, body)
            self.assertEqual(stored(srv)[path], {"path": path, "size": n * mb,
                                                 "sha256": digest})
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            try:
                conn.request("GET", ART + path)
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.getheader("Content-Length"), str(n * mb))
                g = hashlib.sha256()
                got = 0
                while True:
                    chunk = r.read(mb)
                    if not chunk:
                        break
                    g.update(chunk)
                    got += len(chunk)
            finally:
                conn.close()
            self.assertEqual((got, g.hexdigest()), (n * mb, digest))
            grew_mb = (vm_hwm_kb(srv.proc.pid) - before) / 1024
            self.assertLess(grew_mb, 20, "the server must not hold the body in memory")
            put = [e for e in requests_log(srv) if e["method"] == "PUT"]
            self.assertEqual([(e["path"], e["body_len"], e["status"]) for e in put],
                             [(ART + path, n * mb, 200)])
        finally:
            srv.stop()

    def test_chunked_put(self):
        pieces = [b"a" * 10, b"b" * (3 << 20), b"", b"c" * 12345]
        data = b"".join(pieces)
        st, _, body = put_artifact("0/r/artifacts/chunked.bin", iter(p for p in pieces if p))
        self.assertEqual(st, 200, body)
        self.assertEqual(get_artifact("0/r/artifacts/chunked.bin")[2], data)
        e = [e for e in requests_log() if e["method"] == "PUT"][-1]
        self.assertEqual((e["transfer_encoding"], e["body_len"]), ("chunked", len(data)))
        # Expect: 100-continue is answered at once (curl would otherwise wait a second)
        t0 = time.monotonic()
        s = socket.create_connection(("127.0.0.1", SRV.port), timeout=10)
        try:
            s.sendall(f"PUT {ART}0/r/artifacts/expect HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n".encode())
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 100"))
            s.sendall(b"xyz")
            self.assertIn(b"200 OK", s.recv(1000))
        finally:
            s.close()
        self.assertLess(time.monotonic() - t0, 0.9)
        self.assertEqual(get_artifact("0/r/artifacts/expect")[2], b"xyz")

    def test_interrupted_upload_stores_nothing(self):
        s = socket.create_connection(("127.0.0.1", SRV.port), timeout=10)
        s.sendall(f"PUT {ART}0/r/artifacts/cut.bin HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Length: {1 << 20}\r\n\r\n".encode() + b"x" * 100000)
        s.close()
        self.assertTrue(wait_for(lambda: any(e["status"] == 0 for e in requests_log())))
        e = requests_log()[-1]
        self.assertEqual((e["status"], e["body_len"]), (0, 100000))
        self.assertEqual(dump()["artifacts"], [])
        self.assertEqual(os.listdir(os.path.join(config()["artifact_root"],
                                                 ".mlflow-test-server", "staging")), [])

    def test_faults_on_artifact_puts(self):
        st, _, _ = post("/_test/faults", {"status": 503, "count": 3, "method": "PUT",
                                          "path_prefix": "/api/2.0/mlflow-artifacts/artifacts/"})
        self.assertEqual(st, 200)
        for _ in range(3):
            st, hdrs, body = put_artifact("0/r/artifacts/f.txt", b"x" * 5000)
            self.assertEqual(st, 503)
            self.assertEqual(jbody(body)["error_code"], "TEMPORARILY_UNAVAILABLE")
            self.assertEqual(get_artifact("0/r/artifacts/f.txt")[0], 404)  # GET not faulted
        self.assertEqual(put_artifact("0/r/artifacts/f.txt", b"x" * 5000)[0], 200)
        puts = [(e["status"], e["body_len"]) for e in requests_log() if e["method"] == "PUT"]
        self.assertEqual(puts, [(503, 5000)] * 3 + [(200, 5000)])
        # drop (close without answering) after storing; relative prefix under /api/2.0/
        post("/_test/faults", {"drop": True, "process": True,
                               "path_prefix": "mlflow-artifacts/artifacts/"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            put_artifact("0/r/artifacts/g.txt", b"stored anyway")
        self.assertEqual(get_artifact("0/r/artifacts/g.txt")[2], b"stored anyway")
        # the download can be cut in half
        post("/_test/faults", {"reset_mid_response": True, "method": "GET"})
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
        try:
            conn.request("GET", ART + "0/r/artifacts/f.txt")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            with self.assertRaises(http.client.IncompleteRead):
                r.read()
        finally:
            conn.close()

    def test_drop_after_bytes(self):
        post("/_test/faults", {"drop_after_bytes": 300000, "path_prefix": ART})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError,
                                BrokenPipeError)):
            put_artifact("0/r/artifacts/big", b"z" * (4 << 20))
        self.assertTrue(wait_for(lambda: requests_log() and
                                 requests_log()[-1]["status"] == 0))
        self.assertEqual(requests_log()[-1]["body_len"], 300000)
        self.assertEqual(dump()["artifacts"], [])
        self.assertEqual(put_artifact("0/r/artifacts/big", b"z" * 1000)[0], 200)
        self.assertEqual(post("/_test/faults", {"drop_after_bytes": -1})[0], 400)

    def test_artifacts_down(self):
        put_artifact("0/r/artifacts/a", b"1")
        up = post(MA + "mpu/create/0/r/artifacts", {"path": "p", "num_parts": 1})[2]
        try:
            config(artifacts_down=True)
            for method, path, body in (("PUT", ART + "0/r/artifacts/b", b"2"),
                                       ("GET", ART + "0/r/artifacts/a", None),
                                       ("GET", MA + "artifacts?path=0", None)):
                st, _, resp = raw_request(method, path, body)
                self.assertEqual(st, 503)
                self.assertEqual(jbody(resp)["error_code"], "TEMPORARILY_UNAVAILABLE")
            st, hdrs, resp = raw_request("PUT", up["credentials"][0]["url"], b"part")
            self.assertEqual(st, 503)
            self.assertIn(b"<Code>ServiceUnavailable</Code>", resp)
            self.assertEqual(get("experiments/get?experiment_id=0")[0], 200)  # tracking is up
        finally:
            config(artifacts_down=False)
        self.assertEqual(put_artifact("0/r/artifacts/b", b"2")[0], 200)
        self.assertEqual(sorted(stored()), ["0/r/artifacts/a", "0/r/artifacts/b"])

    def test_chunked_downloads(self):
        put_artifact("0/r/artifacts/c", b"q" * 3000000)
        try:
            config(chunked_downloads=True)
            conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=20)
            try:
                conn.request("GET", ART + "0/r/artifacts/c")
                r = conn.getresponse()
                self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
                self.assertIsNone(r.getheader("Content-Length"))
                self.assertEqual(r.read(), b"q" * 3000000)
                conn.request("GET", ART + "0/r/artifacts/c")  # the connection is reusable
                self.assertEqual(len(conn.getresponse().read()), 3000000)
            finally:
                conn.close()
        finally:
            config(chunked_downloads=False)

    def test_tracking_list_artifacts(self):
        exp = post("experiments/create", {"name": "la"})[2]["experiment_id"]
        rid = create_run(exp)
        base = f"{exp}/{rid}/artifacts"
        put_artifact(f"{base}/model/MLmodel", b"m")
        put_artifact(f"{base}/a.txt", b"abc")
        st, _, body = get(f"artifacts/list?run_id={rid}")
        self.assertEqual(st, 200, body)
        self.assertEqual(body, {"root_uri": f"mlflow-artifacts:/{base}", "files": [
            {"path": "a.txt", "is_dir": False, "file_size": 3},
            {"path": "model", "is_dir": True}]})
        st, _, body = get(f"artifacts/list?run_id={rid}&path=model")
        self.assertEqual(body["files"], [{"path": "model/MLmodel", "is_dir": False,
                                          "file_size": 1}])
        self.assertEqual(get(f"artifacts/list?run_id={rid}&path=none")[2],
                         {"root_uri": f"mlflow-artifacts:/{base}"})
        self.assertError(get(f"artifacts/list?run_id={rid}&path=../x"), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(get("artifacts/list?run_id=0123456789abcdef0123456789abcdef"), 404,
                         "RESOURCE_DOES_NOT_EXIST")

    def test_artifact_root_option(self):
        d = tempfile.mkdtemp(prefix="mlo-selftest-root-")
        try:
            srv = ServerProc("--artifact-root", d)
            try:
                self.assertEqual(put_artifact("0/r/artifacts/x.txt", b"on disk", srv=srv)[0],
                                 200)
                with open(os.path.join(d, "0", "r", "artifacts", "x.txt"), "rb") as f:
                    self.assertEqual(f.read(), b"on disk")
                self.assertEqual(config(srv=srv)["artifact_root"], os.path.realpath(d))
            finally:
                srv.stop()
            self.assertTrue(os.path.exists(os.path.join(d, "0")))  # kept: not ours to remove
            srv = ServerProc("--artifact-root", d)  # a previous root of ours: fine
            try:
                self.assertEqual(get_artifact("0/r/artifacts/x.txt", srv=srv)[2], b"on disk")
                post("/_test/reset", {}, srv=srv)
                self.assertEqual(sorted(os.listdir(d)), [".mlflow-test-server"])
            finally:
                srv.stop()
            foreign = tempfile.mkdtemp(prefix="mlo-selftest-foreign-")
            try:
                open(os.path.join(foreign, "precious"), "w").close()
                with self.assertRaises(RuntimeError):
                    ServerProc("--artifact-root", foreign, stderr=subprocess.DEVNULL)
                self.assertEqual(os.listdir(foreign), ["precious"])
            finally:
                shutil.rmtree(foreign)
        finally:
            shutil.rmtree(d)


class MultipartTests(Base):
    def create(self, route="0/r/artifacts/model", local="/home/me/data/weights.bin", parts=2,
               srv=None):
        st, _, body = post(MA + f"mpu/create/{route}", {"path": local, "num_parts": parts},
                           srv=srv)
        self.assertEqual(st, 200, body)
        return body

    def put_part(self, cred, data, headers=None):
        st, hdrs, body = raw_request("PUT", cred["url"], data, headers)
        return st, hdrs.get("ETag"), body

    def complete(self, up, parts, route="0/r/artifacts/model", local="weights.bin"):
        return post(MA + f"mpu/complete/{route}",
                    {"path": local, "upload_id": up["upload_id"], "parts": parts})

    def test_create_parts_complete(self):
        up = self.create()
        self.assertEqual([c["part_number"] for c in up["credentials"]], [1, 2])
        for c in up["credentials"]:
            self.assertTrue(c["url"].startswith(
                f"http://127.0.0.1:{SRV.port}/_presigned/{up['upload_id']}/{c['part_number']}?"))
            self.assertIn("X-Amz-Signature=", c["url"])
            self.assertEqual(c["headers"], {})
        p1 = random.Random(1).randbytes(5 << 20)
        p2 = b"tail" * 1000
        parts = []
        for cred, data in zip(up["credentials"], (p1, p2)):
            st, etag, body = self.put_part(cred, data)
            self.assertEqual((st, body), (200, b""))
            self.assertEqual(etag, '"%s"' % hashlib.md5(data).hexdigest())
            parts.append({"part_number": cred["part_number"], "etag": etag, "url": cred["url"]})
        pending = dump()["multipart_uploads"]
        self.assertEqual(pending[0]["path"], "0/r/artifacts/model/weights.bin")
        self.assertEqual(sorted(pending[0]["parts"]), ["1", "2"])
        st, _, body = self.complete(up, parts)
        self.assertEqual((st, body), (200, {}))
        st, _, got = get_artifact("0/r/artifacts/model/weights.bin")
        self.assertEqual(got, p1 + p2)
        self.assertEqual(stored()["0/r/artifacts/model/weights.bin"]["sha256"],
                         hashlib.sha256(p1 + p2).hexdigest())
        self.assertEqual(dump()["multipart_uploads"], [])
        self.assertEqual(self.complete(up, parts)[0], 200)  # a retried complete is fine
        log = [e for e in requests_log() if e["path"].startswith("/_presigned/")]
        self.assertEqual([(e["method"], e["status"], e["body_len"], e["has_authorization"])
                          for e in log], [("PUT", 200, len(p1), False), ("PUT", 200, len(p2),
                                                                          False)])

    def test_s3_errors_on_complete(self):
        config(mpu_min_part_size=0)
        try:
            up = self.create(parts=3)
            creds = up["credentials"]
            etags = [self.put_part(c, b"part%d" % i)[1] for i, c in enumerate(creds[:2])]
            p = [{"part_number": 1, "etag": etags[0]}, {"part_number": 2, "etag": etags[1]}]
            cases = [
                ([p[0], p[1], {"part_number": 3, "etag": etags[0]}], "InvalidPart"),
                ([p[0], {"part_number": 2, "etag": '"0000"'}], "InvalidPart"),
                ([p[1], p[0]], "InvalidPartOrder"),
                ([], "MalformedXML"),
            ]
            for parts, code in cases:
                with self.subTest(code=code, parts=parts):
                    self.assertError(self.complete(up, parts), 400, "INVALID_PARAMETER_VALUE",
                                     f"({code})")
            # unquoted ETags are accepted too; a subset of the parts is fine (as S3)
            st, _, body = self.complete(up, [{"part_number": 1,
                                              "etag": etags[0].strip('"')}])
            self.assertEqual(st, 200, body)
            self.assertEqual(get_artifact("0/r/artifacts/model/weights.bin")[2], b"part0")
        finally:
            config(mpu_min_part_size=5 << 20)
        up = self.create()
        e = [self.put_part(c, b"small")[1] for c in up["credentials"]]
        self.assertError(self.complete(up, [{"part_number": 1, "etag": e[0]},
                                            {"part_number": 2, "etag": e[1]}]),
                         400, "INVALID_PARAMETER_VALUE", "(EntityTooSmall)")
        self.assertError(self.complete({"upload_id": "nope"}, [{"part_number": 1, "etag": "x"}]),
                         404, "RESOURCE_DOES_NOT_EXIST", "(NoSuchUpload)")
        # the upload id belongs to its object
        self.assertError(self.complete(up, [{"part_number": 1, "etag": e[0]}],
                                       route="0/other"), 404, "RESOURCE_DOES_NOT_EXIST")

    def test_abort(self):
        up = self.create()
        self.assertEqual(self.put_part(up["credentials"][0], b"x")[0], 200)
        st, _, body = post(MA + "mpu/abort/0/r/artifacts/model",
                           {"path": "weights.bin", "upload_id": up["upload_id"]})
        self.assertEqual((st, body), (200, {}))
        self.assertEqual(dump()["multipart_uploads"], [])
        st, _, body = self.put_part(up["credentials"][1], b"late")
        self.assertEqual(st, 404)
        self.assertIn(b"<Code>NoSuchUpload</Code>", body)
        self.assertError(self.complete(up, [{"part_number": 1, "etag": "x"}]), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(post(MA + "mpu/abort/0/r/artifacts/model",
                              {"path": "weights.bin", "upload_id": up["upload_id"]}),
                         404, "RESOURCE_DOES_NOT_EXIST")
        self.assertEqual(dump()["artifacts"], [])
        parts_dir = os.path.join(config()["artifact_root"], ".mlflow-test-server", "mpu")
        self.assertEqual(os.listdir(parts_dir), [])

    def test_presigned_put_rules(self):
        up = self.create()
        cred = up["credentials"][0]
        st, _, body = self.put_part(cred, b"x", {"Authorization": "Bearer secret"})
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidArgument</Code>", body)
        e = requests_log()[-1]
        self.assertTrue(e["path"].startswith("/_presigned/"))
        self.assertTrue(e["has_authorization"])
        tampered = dict(cred, url=cred["url"].split("?")[0])
        self.assertEqual(self.put_part(tampered, b"x")[0], 403)
        other = dict(cred, url=cred["url"].replace(f"/{up['upload_id']}/1?",
                                                   f"/{up['upload_id']}/2?"))
        self.assertEqual(self.put_part(other, b"x")[0], 403)  # signed for part 1
        # re-encoding the query (%2F -> /) is harmless, as with S3
        self.assertEqual(self.put_part(dict(cred, url=cred["url"].replace("%2F", "/")),
                                       b"x")[0], 200)
        st, _, body = self.put_part(cred, iter([b"chunk", b"ed"]))
        self.assertEqual(st, 501)
        self.assertIn(b"<Code>NotImplemented</Code>", body)
        u = urlsplit(cred["url"])
        s = socket.create_connection(("127.0.0.1", SRV.port), timeout=10)
        try:
            s.sendall(f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            self.assertIn(b" 411 ", s.recv(1000))
        finally:
            s.close()
        st, _, body = raw_request("GET", cred["url"])
        self.assertEqual(st, 405)
        self.assertEqual(raw_request("PUT", "/_presigned/nope/1?x=1", b"x")[0], 404)
        # faults reach presigned URLs too
        post("/_test/faults", {"status": 500, "path_prefix": "/_presigned/"})
        self.assertEqual(self.put_part(cred, b"x")[0], 500)
        self.assertEqual(self.put_part(cred, b"x")[0], 200)

    def test_presigned_needs_no_tracking_auth(self):
        srv = ServerProc("--require-bearer", "tok")
        try:
            auth = {"Authorization": "Bearer tok"}
            self.assertEqual(post(MA + "mpu/create/0/r", {"path": "f", "num_parts": 1},
                                  srv=srv)[0], 401)
            st, _, up = post(MA + "mpu/create/0/r", {"path": "f", "num_parts": 1}, srv=srv,
                             headers=auth)
            self.assertEqual(st, 200, up)
            st, hdrs, _ = raw_request("PUT", up["credentials"][0]["url"], b"data")
            self.assertEqual(st, 200)
            st, _, body = post(MA + "mpu/complete/0/r", {
                "path": "f", "upload_id": up["upload_id"],
                "parts": [{"part_number": 1, "etag": hdrs["ETag"]}]}, srv=srv, headers=auth)
            self.assertEqual((st, body), (200, {}))
            self.assertEqual(stored(srv)["0/r/f"]["size"], 4)
        finally:
            srv.stop()

    def test_multipart_disabled(self):
        try:
            config(multipart=False)
            for op in ("create", "complete", "abort"):
                self.assertError(post(MA + f"mpu/{op}/0/r", {"path": "f", "num_parts": 1,
                                                             "upload_id": "u", "parts": []}),
                                 501, "NOT_IMPLEMENTED",
                                 "Multipart upload is not supported for the current artifact "
                                 "repository")
        finally:
            config(multipart=True)
        srv = ServerProc("--no-multipart")
        try:
            self.assertError(post(MA + "mpu/create/0/r", {"path": "f", "num_parts": 1},
                                  srv=srv), 501, "NOT_IMPLEMENTED")
        finally:
            srv.stop()

    def test_create_validation(self):
        self.assertError(post(MA + "mpu/create/a/../b", {"path": "f", "num_parts": 1}), 400,
                         "INVALID_PARAMETER_VALUE", "Invalid path")
        self.assertError(post(MA + "mpu/create/a", {"num_parts": 1}), 400,
                         "INVALID_PARAMETER_VALUE", "Missing value for required parameter "
                                                    "'path'")
        self.assertError(post(MA + "mpu/create/a", {"path": "dir/", "num_parts": 1}), 400,
                         "INVALID_PARAMETER_VALUE", "Invalid path")
        self.assertError(post(MA + "mpu/create/a", {"path": "f", "num_parts": 10001}), 400,
                         "INVALID_PARAMETER_VALUE")
        st, _, resp = raw_request("POST", MA + "mpu/create/a", b'{"path": "f"}')
        self.assertEqual((st, jbody(resp)["error_code"]), (400, "BAD_REQUEST"))
        up = self.create(parts=0)
        self.assertNotIn("credentials", up)


class RegistryTests(Base):
    def create_model(self, name="m", **extra):
        st, _, body = post("registered-models/create", dict({"name": name}, **extra))
        self.assertEqual(st, 200, body)
        return body["registered_model"]

    def create_version(self, name="m", source="runs:/abc/model", **extra):
        st, _, body = post("model-versions/create", dict({"name": name, "source": source},
                                                         **extra))
        self.assertEqual(st, 200, body)
        return body["model_version"]

    def test_create_get_conflict(self):
        t0 = int(time.time() * 1000)
        rm = self.create_model("clf", tags=[kv("team", "a")], description="d")
        self.assertEqual(set(rm), {"name", "creation_timestamp", "last_updated_timestamp",
                                   "description", "tags"})
        self.assertEqual(rm["tags"], [kv("team", "a")])
        self.assertGreaterEqual(rm["creation_timestamp"], t0)
        self.assertEqual(rm["creation_timestamp"], rm["last_updated_timestamp"])
        self.assertNotIn("description", self.create_model("plain"))
        self.assertError(post("registered-models/create", {"name": "clf"}), 400,
                         "RESOURCE_ALREADY_EXISTS", "Registered Model (name=clf) already exists.")
        st, _, body = get("registered-models/get?name=clf")
        self.assertEqual((st, body["registered_model"]), (200, rm))
        self.assertError(get("registered-models/get?name=nope"), 404, "RESOURCE_DOES_NOT_EXIST",
                         "Registered Model with name=nope not found")
        for body in ({}, {"name": ""}):
            self.assertError(post("registered-models/create", body), 400,
                             "INVALID_PARAMETER_VALUE",
                             "Missing value for required parameter 'name'")
        self.assertError(post("registered-models/create", {"name": 5}), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(post("registered-models/create", {"name": "t",
                                                           "tags": [kv("bad key!", "v")]}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(post("registered-models/create", {"name": "t",
                                                           "tags": [kv("k", "v" * 5001)]}),
                         400, "INVALID_PARAMETER_VALUE")
        self.assertError(get("registered-models/get"), 400, "INVALID_PARAMETER_VALUE")
        self.assertEqual([m["name"] for m in dump()["registered_models"]], ["clf", "plain"])

    def test_versions(self):
        self.create_model()
        rid = create_run()
        v1 = self.create_version(run_id=rid, tags=[kv("stage", "x")], run_link="http://l")
        self.assertEqual(v1, {"name": "m", "version": "1",
                              "creation_timestamp": v1["creation_timestamp"],
                              "last_updated_timestamp": v1["creation_timestamp"],
                              "current_stage": "None", "description": "",
                              "source": "runs:/abc/model", "run_id": rid, "status": "READY",
                              "tags": [kv("stage", "x")], "run_link": "http://l"})
        v2 = self.create_version(source="mlflow-artifacts:/0/r/artifacts/model")
        self.assertEqual((v2["version"], v2["run_id"], v2["run_link"]), ("2", "", ""))
        self.assertEqual(self.create_version("m")["version"], "3")
        self.create_model("other")
        self.assertEqual(self.create_version("other")["version"], "1")
        self.assertError(post("model-versions/create", {"name": "nope", "source": "s3://b/k"}),
                         404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope")
        self.assertError(post("model-versions/create", {"name": "m"}), 400,
                         "INVALID_PARAMETER_VALUE", "'source'")
        # a run id is not checked (unless the source is local), as MLflow
        self.create_version(run_id="0123456789abcdef0123456789abcdef")
        st, _, body = get("model-versions/get?name=m&version=2")
        self.assertEqual(body["model_version"], v2)
        # model-versions/search by run id (the only versions of that run) and by name
        st, _, body = get(f"model-versions/search?filter=run_id%3D%27{rid}%27")
        self.assertEqual((st, body), (200, {"model_versions": [v1]}))
        st, _, body = get("model-versions/search?filter=name+%3D+%27other%27")
        self.assertEqual([v["version"] for v in body["model_versions"]], ["1"])
        self.assertEqual(get("model-versions/search?filter=run_id%3D%27none%27")[2], {})
        self.assertError(get("model-versions/get?name=m&version=99"), 404,
                         "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=99) not found")
        self.assertError(get("model-versions/get?name=m&version=abc"), 400,
                         "INVALID_PARAMETER_VALUE",
                         "Parameter 'version' must be an integer, got 'abc'.")
        self.assertEqual(get("model-versions/get-download-uri?name=m&version=2")[2],
                         {"artifact_uri": "mlflow-artifacts:/0/r/artifacts/model"})
        self.assertError(get("model-versions/get-download-uri?version=2"), 400,
                         "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
        rm = get("registered-models/get?name=m")[2]["registered_model"]
        self.assertEqual([v["version"] for v in rm["latest_versions"]], ["4"])
        self.assertEqual(rm["last_updated_timestamp"],
                         rm["latest_versions"][0]["creation_timestamp"])
        # models:/ sources resolve to what they point to
        self.create_version("other", source="models:/m/2")
        self.assertEqual(get("model-versions/get-download-uri?name=other&version=2")[2],
                         {"artifact_uri": "mlflow-artifacts:/0/r/artifacts/model"})
        d = {m["name"]: m for m in dump()["registered_models"]}
        self.assertEqual([v["version"] for v in d["m"]["versions"]], ["1", "2", "3", "4"])
        self.assertEqual(d["m"]["versions"][0]["tags"], {"stage": "x"})

    def test_source_rules(self):
        self.create_model()
        for source in ("/tmp/model", "file:///tmp/model", "relative/model",
                       "runs:/abc/../model", "mlflow-artifacts:/0/%2e%2e/x",
                       "s3://b/a/./b", "http://h/api/2.0/mlflow-artifacts/artifacts/%252e%252e/x"):
            with self.subTest(source=source):
                self.assertError(post("model-versions/create", {"name": "m", "source": source}),
                                 400, "INVALID_PARAMETER_VALUE", "Invalid model version source")
        for source in ("s3://bucket/path/model", "runs:/abc/model", "mlflow-artifacts:/0/x",
                       "gs://b/m", "https://h/api/2.0/mlflow-artifacts/artifacts/0/x"):
            with self.subTest(source=source):
                self.create_version(source=source)
        # a local source inside a local run artifact directory is fine
        exp = post("experiments/create", {"name": "local", "artifact_location": "/srv/art"}
                   )[2]["experiment_id"]
        rid = create_run(exp)
        self.create_version(source=f"/srv/art/{rid}/artifacts/model", run_id=rid)
        self.assertError(post("model-versions/create", {"name": "m", "run_id": rid,
                                                        "source": "/srv/elsewhere"}),
                         400, "INVALID_PARAMETER_VALUE")

    def test_aliases(self):
        self.create_model()
        self.create_version()
        self.create_version()

        def set_alias(alias, version="1", name="m"):
            return post("registered-models/alias", {"name": name, "alias": alias,
                                                    "version": version})

        for alias, frag in (("latest", "'latest' alias name (case insensitive) is reserved."),
                            ("LaTeSt", "is reserved"), ("v1", "Version alias name 'v1' is "
                                                              "reserved."),
                            ("V12", "is reserved"), ("bad alias", "Invalid alias name"),
                            ("a.b", "Invalid alias name"), ("x" * 256, "exceeded length limit")):
            with self.subTest(alias=alias[:20]):
                self.assertError(set_alias(alias), 400, "INVALID_PARAMETER_VALUE", frag)
        self.assertError(set_alias(""), 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'alias'")
        self.assertError(set_alias("champ", "7"), 404, "RESOURCE_DOES_NOT_EXIST",
                         "Model Version (name=m, version=7) not found")
        self.assertError(set_alias("champ", "one"), 400, "INVALID_PARAMETER_VALUE",
                         "must be an integer")
        self.assertError(set_alias("champ", "1", name="nope"), 404, "RESOURCE_DOES_NOT_EXIST")
        self.assertError(post("registered-models/alias", {"name": "m", "alias": "champ",
                                                          "version": 1}),
                         400, "INVALID_PARAMETER_VALUE")  # version is a string field
        for ok in ("champ", "v1a", "x" * 255, "with-dash_1"):
            st, _, body = set_alias(ok)
            self.assertEqual((st, body), (200, {}))
        st, _, body = get("registered-models/alias?name=m&alias=champ")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["model_version"]["version"], "1")
        self.assertEqual(body["model_version"]["aliases"], ["champ", "v1a", "x" * 255,
                                                            "with-dash_1"])
        self.assertEqual(set_alias("champ", "2")[0], 200)  # moves
        rm = get("registered-models/get?name=m")[2]["registered_model"]
        self.assertIn({"alias": "champ", "version": "2"}, rm["aliases"])
        self.assertEqual(get("registered-models/alias?name=m&alias=champ")[2]
                         ["model_version"]["version"], "2")
        self.assertEqual(get("model-versions/get?name=m&version=2")[2]["model_version"]
                         ["aliases"], ["champ"])
        self.assertEqual(dump()["registered_models"][0]["aliases"]["champ"], "2")
        # unknown alias or model: 400, as MLflow's SQL store
        self.assertError(get("registered-models/alias?name=m&alias=nope"), 400,
                         "INVALID_PARAMETER_VALUE", "Registered model alias nope not found.")
        self.assertError(get("registered-models/alias?name=zz&alias=champ"), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertError(get("registered-models/alias?name=m&alias=latest"), 400,
                         "INVALID_PARAMETER_VALUE", "reserved")
        # delete: JSON body (MLflow reads no query string on DELETE)
        st, _, body = call("DELETE", "registered-models/alias", {"name": "m", "alias": "champ"})
        self.assertEqual((st, body), (200, {}))
        self.assertError(get("registered-models/alias?name=m&alias=champ"), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertEqual(call("DELETE", "registered-models/alias",
                              {"name": "m", "alias": "champ"})[0], 200)
        self.assertError(call("DELETE", "registered-models/alias",
                              {"name": "zz", "alias": "champ"}), 404, "RESOURCE_DOES_NOT_EXIST")
        self.assertError(call("DELETE", "registered-models/alias?name=m&alias=v1a"), 400,
                         "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
        self.assertNotIn("champ", dump()["registered_models"][0]["aliases"])


class LogInputsTests(Base):
    def ds(self, name="d", digest="abc123", source="s3://b/train.csv", tags=None, **extra):
        d = {"name": name, "digest": digest, "source_type": "s3", "source": source}
        d.update(extra)
        return {"tags": tags if tags is not None else [kv("mlflow.data.context", "train")],
                "dataset": d}

    def log(self, rid, *datasets):
        return post("runs/log-inputs", {"run_id": rid, "datasets": list(datasets)})

    def test_dedupe(self):
        rid = create_run()
        a, b = self.ds(), self.ds("e", "ffff", schema='{"x": 1}', profile='{"n": 3}')
        self.assertEqual(self.log(rid, a, a, b)[0], 200)
        self.assertEqual(self.log(rid, b, self.ds(tags=[kv("mlflow.data.context", "eval")]))[0],
                         200)
        run = get(f"runs/get?run_id={rid}")[2]["run"]
        self.assertEqual(run["inputs"]["dataset_inputs"], [a, b])
        self.assertEqual(len(the_run(rid)["inputs"]), 2)
        found = post("runs/search", {"experiment_ids": ["0"]})[2]["runs"][0]
        self.assertEqual(found["inputs"]["dataset_inputs"], [a, b])
        self.assertEqual(self.log(rid)[0], 200)  # nothing to log is fine
        self.assertEqual(post("runs/log-inputs", {"run_id": rid})[0], 200)

    def test_datasets_are_per_experiment(self):
        r1, r2 = create_run(), create_run()
        exp = post("experiments/create", {"name": "x"})[2]["experiment_id"]
        r3 = create_run(exp)
        self.log(r1, self.ds(source="first"))
        self.log(r2, self.ds(source="second", tags=[]))
        self.log(r3, self.ds(source="third"))
        src = {r: the_run(r)["inputs"][0]["dataset"]["source"] for r in (r1, r2, r3)}
        self.assertEqual(src, {r1: "first", r2: "first", r3: "third"})  # the first one wins
        self.assertNotIn("tags", the_run(r2)["inputs"][0])
        d = dump()["datasets"]
        self.assertEqual([(x["experiment_id"], x["source"], x["runs"]) for x in d],
                         [("0", "first", [r1, r2]), (exp, "third", [r3])])

    def test_validation(self):
        rid = create_run()
        cases = [
            (self.ds(digest="x" * 37), "digest"),
            (self.ds(name="n" * 501), "name"),
            (self.ds(source="s" * 65536), "source"),
            (self.ds(schema="s" * 1048576), "schema"),
            (self.ds(tags=[kv("k" * 256, "v")]), "key"),
            (self.ds(tags=[kv("k", "v" * 501)]), "value"),
        ]
        for item, frag in cases:
            with self.subTest(frag):
                self.assertError(self.log(rid, self.ds("ok", "1"), item), 400,
                                 "INVALID_PARAMETER_VALUE", frag)
        for field in ("name", "digest", "source_type", "source"):
            item = self.ds()
            del item["dataset"][field]
            with self.subTest(missing=field):
                self.assertError(self.log(rid, item), 400, "INVALID_PARAMETER_VALUE", field)
        self.assertEqual(the_run(rid)["inputs"], [])  # nothing of a refused request
        # the limits themselves are fine
        self.assertEqual(self.log(rid, self.ds("n" * 500, "x" * 36, "s" * 65535))[0], 200)
        self.assertError(self.log("0123456789abcdef0123456789abcdef", self.ds()), 404,
                         "RESOURCE_DOES_NOT_EXIST")
        self.assertError(self.log("bad id!", self.ds()), 400, "INVALID_PARAMETER_VALUE")
        self.assertError(post("runs/log-inputs", {"datasets": [self.ds()]}), 400,
                         "INVALID_PARAMETER_VALUE", "'run_id'")
        post("runs/delete", {"run_id": rid})
        self.assertError(self.log(rid, self.ds("new", "2")), 400, "INVALID_PARAMETER_VALUE",
                         "must be in the 'active' state")


class Issue5ControlTests(Base):
    def test_dump_and_reset(self):
        rid = create_run()
        post("runs/log-inputs", {"run_id": rid, "datasets": [
            {"dataset": {"name": "d", "digest": "1", "source_type": "local", "source": "x"}}]})
        post("registered-models/create", {"name": "m"})
        post("model-versions/create", {"name": "m", "source": "runs:/a/m"})
        post("registered-models/alias", {"name": "m", "alias": "prod", "version": "1"})
        put_artifact(f"0/{rid}/artifacts/a.txt", b"abc")
        post(MA + "mpu/create/0/x", {"path": "p", "num_parts": 1})
        d = dump()
        self.assertEqual(d["artifacts"], [{"path": f"0/{rid}/artifacts/a.txt", "size": 3,
                                           "sha256": hashlib.sha256(b"abc").hexdigest()}])
        self.assertEqual(len(d["multipart_uploads"]), 1)
        self.assertEqual(d["datasets"][0]["name"], "d")
        rm = d["registered_models"][0]
        self.assertEqual((rm["name"], rm["aliases"], rm["versions"][0]["aliases"]),
                         ("m", {"prod": "1"}, ["prod"]))
        self.assertEqual(rm["versions"][0]["source"], "runs:/a/m")
        post("/_test/reset", {})
        d = dump()
        for key in ("artifacts", "multipart_uploads", "datasets", "registered_models", "runs"):
            self.assertEqual(d[key], [], key)

    def test_config_answer(self):
        cfg = config()
        for key, value in (("serve_artifacts", True), ("multipart", True),
                           ("artifacts_down", False), ("chunked_downloads", False),
                           ("mpu_min_part_size", 5 << 20), ("missing_artifact_status", 404)):
            self.assertEqual(cfg[key], value, key)
        self.assertTrue(os.path.isdir(cfg["artifact_root"]))
        self.assertEqual(post("/_test/config", {"missing_artifact_status": 418})[0], 400)
        self.assertEqual(post("/_test/config", {"mpu_min_part_size": -1})[0], 400)

    def test_temporary_artifact_root_removed_at_exit(self):
        srv = ServerProc()
        root = config(srv=srv)["artifact_root"]
        put_artifact("0/r/artifacts/x", b"x", srv=srv)
        self.assertTrue(os.path.isdir(root))
        srv.stop()
        self.assertFalse(os.path.exists(root))


if __name__ == "__main__":
    unittest.main()
