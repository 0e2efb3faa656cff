#!/usr/bin/python3
"""mlo._ext (the hot calls in C, bindings/python/mlo/_ext.c) against the ctypes code.

The same script of calls (good and bad arguments to mlo.log_metric and Run.log_metric,
both GIL policies, the timestamp path, no active run, a closed client) runs in two
child processes against one test server: one with the extension (when meson built it:
$MLO_EXT), one with MLO_PY_NO_EXT=1 (ctypes).  Both must raise the same exceptions
and the server must store the same points for both.

    meson test -C build python_ext --print-errorlogs
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if "mlo" not in sys.modules:
    sys.path.insert(0, os.path.dirname(HERE))

if os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

from mlo_testserver import Float, Index  # noqa: E402



class Boom(Exception):
    pass


class BadFloat:
    def __float__(self):
        raise Boom("no float")


class BadIndex:
    def __index__(self):
        raise Boom("no index")


class Str:
    def __str__(self):
        return "custom"


class Truthless:
    """An __index__ whose truth cannot be told (as a numpy array's)."""

    def __index__(self):
        return 4

    def __bool__(self):
        raise ValueError("ambiguous")


def child(url):
    """Runs the calls, prints {"hot_path", "held", "runs", "outcomes"} as JSON."""
    import decimal
    import fractions
    import mlo
    from mlo import _client
    try:
        import numpy
    except ImportError:
        numpy = None

    mlo.set_tracking_uri(url)
    out = {"hot_path": _client.HOT_PATH, "detail": _client.HOT_PATH_DETAIL,
           "fluent_is_c": type(mlo.log_metric).__name__ == "builtin_function_or_method",
           "outcomes": [], "runs": {}}
    ids = []

    def norm(text):
        for rid in ids:
            text = text.replace(rid, "<run>")
        return text

    def attempt(label, fn, *a, **kw):
        try:
            r = fn(*a, **kw)
            res = ["ok", type(r).__name__]
        except Exception as e:  # noqa: BLE001 - what is raised is the point
            text = norm(str(e))
            # the library's words on a refused call ('set_tag: key "" refused: ...')
            # come through its error callback, at most 20 a second per client: with
            # them or without depends on timing, so the status's message stands for both
            generic = "%s [%s]" % (getattr(e, "message", None), getattr(e, "name", None))
            if isinstance(e, mlo.MloError) and text.endswith(generic):
                text = generic
            res = [type(e).__name__, getattr(e, "name", None), text]
        out["outcomes"].append([label] + res)

    values = [("float", 1.5), ("int", 2), ("bool", True), ("str", "2.5"),
              ("float_obj", Float(3.25)),
              ("decimal", decimal.Decimal("4.5")), ("fraction", fractions.Fraction(1, 4)),
              ("bigint", 2 ** 70), ("inf", float("inf")), ("nan", float("nan")), ("negzero", -0.0),
              ("index_obj", Index(8)),
              ("none", None), ("word", "abc"), ("object", object()), ("list", [1]),
              ("huge", 10 ** 400), ("complex", 1j), ("badfloat", BadFloat())]
    steps = [("absent", None), ("zero", 0), ("five", 5), ("true", True), ("float2", 2.0),
             ("index7", Index(7)), ("masked", 2 ** 64 + 5), ("negative", -3), ("float15", 1.5),
             ("str", "3"), ("object", object()), ("badindex", BadIndex()),
             ("truthless", Truthless()),
             ("huge_float", 1e30)]
    keys = [("str", "k_str"), ("bytes", b"k_bytes"), ("none", None), ("int", 5), ("nul", "a\0b"),
            ("surrogate", "k\ud800"), ("empty", ""), ("list", ["x"]), ("long", "k" * 300),
            ("slash", "a/b"), ("bad_chars", "bad key!?")]
    stamps = [("valid", 1700000000123), ("negative", -1), ("str", "x"), ("float", 1.5),
              ("float_whole", 1700000000000.0), ("masked", 2 ** 64 + 1700000000456)]
    if numpy is not None:
        values += [("np_f32", numpy.float32(0.5)), ("np_f64", numpy.float64(0.75)),
                   ("np_i64", numpy.int64(6)), ("np_array", numpy.array([1.0, 2.0]))]
        steps += [("np_i64", numpy.int64(9)), ("np_array", numpy.array([1, 2]))]

    pvals = [("str", "v"), ("int", 5), ("float", 1.5), ("none", None), ("bool", True),
             ("bytes", b"b"), ("list", [1, 2]), ("strobj", Str()), ("nul", "a\0b"),
             ("surrogate", "x\ud800"), ("long", "v" * 7000), ("bigint", 10 ** 5000),
             ("unicode", "d\u00e9j\u00e0 \u2713")]

    def kv_calls(prefix, log_param, set_tag):
        for what, fn, tag in (("param", log_param, "p"), ("tag", set_tag, "g")):
            for name, v in pvals:
                attempt("%s %s %s" % (prefix, what, name), fn, "%s_%s_%s" % (prefix, tag, name), v)
            for name, k in keys:
                attempt("%s %s key %s" % (prefix, what, name), fn, k, "kv")
            attempt("%s %s kw" % (prefix, what), fn, key="%s_%s_kw" % (prefix, tag), value="w")
            attempt("%s %s kw unknown" % (prefix, what), fn, "%s_%s_u" % (prefix, tag), "w", x=1)
            attempt("%s %s missing value" % (prefix, what), fn, "%s_%s_m" % (prefix, tag))
            attempt("%s %s again" % (prefix, what), fn, "%s_%s_str" % (prefix, tag), "other")

    def calls(prefix, log, fluent):
        for name, v in values:
            attempt("%s value %s" % (prefix, name), log, "%s_v_%s" % (prefix, name), v, 1)
        for name, s in steps:
            if s is None:
                attempt("%s step %s" % (prefix, name), log, "%s_s_%s" % (prefix, name), 1.0)
            else:
                attempt("%s step %s" % (prefix, name), log, "%s_s_%s" % (prefix, name), 1.0, s)
            attempt("%s step= %s" % (prefix, name), log, "%s_sk_%s" % (prefix, name), 2.0, step=s)
        for name, k in keys:
            attempt("%s key %s" % (prefix, name), log, k, 1.0, 2)
        for name, t in stamps:
            attempt("%s ts %s" % (prefix, name), log, "%s_t_%s" % (prefix, name), 3.0, 4,
                    timestamp=t)
            attempt("%s ts %s no step" % (prefix, name), log, "%s_tn_%s" % (prefix, name), 3.5,
                    timestamp=t)
            attempt("%s ts %s bad value" % (prefix, name), log, "%s_tb_%s" % (prefix, name), "no",
                    timestamp=t)
        attempt("%s kw all" % prefix, log, key="%s_kw" % prefix, value=5.0, step=6, timestamp=None)
        attempt("%s kw unknown" % prefix, log, "%s_kwu" % prefix, 1.0, foo=1)
        attempt("%s kw twice" % prefix, log, "%s_kw2" % prefix, 1.0, value=2.0)
        attempt("%s missing value" % prefix, log, "%s_mv" % prefix)
        attempt("%s too many" % prefix, log, "%s_tm" % prefix, 1.0, 2, 3, 4, 5, 6, 7)
        attempt("%s no args" % prefix, log)
        if fluent:
            attempt("%s synchronous" % prefix, log, "%s_sync" % prefix, 1.25, 1, synchronous=True)
            attempt("%s asynchronous" % prefix, log, "%s_async" % prefix, 1.5, 1,
                    synchronous=False)
            attempt("%s run_id" % prefix, log, "%s_runid" % prefix, 1.75, 1,
                    run_id=mlo.active_run().info.run_id)

    # no active run: a bad value raises before any run starts; a good one starts one
    attempt("no run bad value", mlo.log_metric, "nr_bad", "abc")
    out["active_after_bad"] = mlo.active_run() is not None
    attempt("no run bad key", mlo.log_metric, None, 1.0)
    attempt("no run", mlo.log_metric, "nr_ok", 0.5, 3)
    auto = mlo.active_run()
    ids.append(auto.info.run_id)
    out["runs"]["auto"] = auto.info.run_id
    mlo.end_run()

    # the fluent API: the default client ("wait": the GIL is released around the call)
    with mlo.start_run(run_name="fluent") as run:
        ids.append(run.info.run_id)
        out["runs"]["fluent"] = run.info.run_id
        calls("fl", mlo.log_metric, True)
        calls("wr", run.log_metric, False)  # a Run of a "wait" client
        kv_calls("fl", mlo.log_param, mlo.set_tag)
        kv_calls("wr", run.log_param, run.set_tag)
        out["held"] = {"wait": getattr(run, "_held", None)}
    # a client that drops when full: mlo_log_metric called with the GIL held
    with mlo.Client(url, full_policy="drop") as c:
        run = c.start_run(run_name="drop")
        ids.append(run.info.run_id)
        out["runs"]["drop"] = run.info.run_id
        out["held"]["drop"] = getattr(run, "_held", None)
        calls("dr", run.log_metric, False)
        kv_calls("dr", run.log_param, run.set_tag)
        run.end()
        c.flush(30)
    # a run of a closed client
    c = mlo.Client(url)
    run = c.start_run(run_name="closed")
    ids.append(run.info.run_id)
    run.end()
    c.close()
    attempt("closed client", run.log_metric, "cl", 1.0, 1)
    attempt("closed client ts", run.log_metric, "cl", 1.0, 1, timestamp=5)
    attempt("closed client param", run.log_param, "cl", 1.0)
    attempt("closed client tag", run.set_tag, "cl", 1.0)
    mlo.flush(30)
    print("RESULT " + json.dumps(out))


def run_child(url, **env):
    e = dict(os.environ, **env)
    e["MLO_STORE_DIR"] = tempfile.mkdtemp(prefix="mlo-test-ext-store-")
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", url], env=e,
                           capture_output=True, text=True, timeout=240)
    finally:
        shutil.rmtree(e["MLO_STORE_DIR"], True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    # in a sanitizer build: what UBSan reports without stopping the process
    if p.returncode != 0 or not lines or "runtime error:" in p.stderr or \
            "Sanitizer" in p.stderr:
        raise AssertionError("child failed (%s):\n%s\n%s" % (p.returncode, p.stdout[-3000:],
                                                            p.stderr[-3000:]))
    return json.loads(lines[-1][len("RESULT "):])


def points(run):
    """{key: [(step, value as repr, timestamp)]} of a stored run."""
    out = {}
    for m in run["metrics"]:
        v = m["value"]
        v = repr(float(v)) if not isinstance(v, str) else v
        out.setdefault(m["key"], []).append((m["step"], v, m["timestamp"]))
    return {k: sorted(v) for k, v in out.items()}


class TestExtension(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from mlo_testserver import TestServer
        cls.server = TestServer()
        cls.ext = run_child(cls.server.url)
        cls.ctypes = run_child(cls.server.url, MLO_PY_NO_EXT="1")
        cls.dump = {r["info"]["run_id"]: r for r in cls.server.dump()["runs"]}

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_which_path(self):
        self.assertEqual(self.ctypes["hot_path"], "ctypes")
        self.assertFalse(self.ctypes["fluent_is_c"])
        if not os.environ.get("MLO_EXT"):
            self.skipTest("mlo._ext not built here (no python3-dev?): %s" % self.ext["detail"])
        # built by meson: it must be the one in use, in this process too
        self.assertEqual(self.ext["hot_path"], "extension", self.ext["detail"])
        self.assertTrue(self.ext["fluent_is_c"])
        self.assertEqual(self.ext["held"], {"wait": False, "drop": True})
        import mlo
        self.assertEqual(mlo._client.HOT_PATH, "extension")
        self.assertIs(mlo.log_metric, mlo._client._ext.log_metric)
        self.assertIs(mlo.Run.log_metric, mlo._client._ext.RunBase.log_metric)

    def test_same_exceptions(self):
        a, b = self.ext["outcomes"], self.ctypes["outcomes"]
        self.assertEqual([o[0] for o in a], [o[0] for o in b])
        for x, y in zip(a, b):
            self.assertEqual(x, y)
        self.assertEqual(self.ext["active_after_bad"], self.ctypes["active_after_bad"])
        self.assertFalse(self.ext["active_after_bad"])
        # what the calls give, whichever path: a few fixed points
        got = {o[0]: o[1:] for o in b}
        self.assertEqual(got["fl value str"], ["ok", "NoneType"])
        self.assertEqual(got["dr value word"][0], "MloInvalidArgumentError")
        self.assertEqual(got["dr value badfloat"][0], "Boom")
        self.assertEqual(got["fl step badindex"][0], "Boom")
        self.assertEqual(got["dr step float15"][0], "MloInvalidArgumentError")
        self.assertEqual(got["wr key none"][0], "MloInvalidArgumentError")
        self.assertEqual(got["wr key int"][0], "MloInvalidKeyError")
        self.assertEqual(got["dr key nul"][0], "MloInvalidKeyError")
        self.assertEqual(got["fl key surrogate"][0], "MloInvalidUtf8Error")
        self.assertEqual(got["fl ts negative"][0:2], ["MloInvalidArgumentError",
                                                      "MLO_ERR_INVALID_ARGUMENT"])
        self.assertIn("timestamp must be >= 0", got["dr ts negative"][2])
        self.assertEqual(got["fl kw unknown"][0], "TypeError")
        self.assertEqual(got["dr missing value"][0], "TypeError")
        self.assertEqual(got["fl asynchronous"], ["ok", "RunOperations"])
        self.assertEqual(got["closed client"][0], "MloClosedError")
        self.assertEqual(got["closed client tag"][0], "MloClosedError")
        self.assertEqual(got["dr param int"], ["ok", "int"])  # log_param returns the value
        self.assertEqual(got["dr tag int"], ["ok", "NoneType"])
        self.assertEqual(got["wr param nul"][0], "MloInvalidArgumentError")
        self.assertEqual(got["dr tag surrogate"][0], "MloInvalidUtf8Error")
        self.assertEqual(got["dr param bigint"][0], "ValueError")  # str() of it
        self.assertEqual(got["fl tag kw unknown"][0], "TypeError")
        self.assertEqual(got["dr param key int"][0], "MloInvalidKeyError")
        self.assertEqual(got["no run bad value"][0], "MloInvalidArgumentError")

    def test_same_points_stored(self):
        for which in ("auto", "fluent", "drop"):
            with self.subTest(which):
                a = points(self.dump[self.ext["runs"][which]])
                b = points(self.dump[self.ctypes["runs"][which]])
                self.assertEqual(sorted(a), sorted(b))
                for k in a:
                    # timestamps: the same when given, else "now" of each process
                    if k.split("_")[1:2] in (["t"], ["tn"]):
                        self.assertEqual(a[k], b[k], k)
                    else:
                        self.assertEqual([p[:2] for p in a[k]], [p[:2] for p in b[k]], k)
        # and what was stored is what was logged (the same on both: not both wrong)
        fl = points(self.dump[self.ctypes["runs"]["fluent"]])
        dr = points(self.dump[self.ext["runs"]["drop"]])
        self.assertEqual([p[:2] for p in fl["fl_v_str"]], [(1, "2.5")])
        self.assertEqual([p[:2] for p in dr["dr_v_float_obj"]], [(1, "3.25")])
        self.assertEqual([p[:2] for p in dr["dr_v_fraction"]], [(1, "0.25")])
        self.assertEqual([p[:2] for p in dr["dr_v_index_obj"]], [(1, "8.0")])
        self.assertTrue(math.isnan(float(dr["dr_v_nan"][0][1])))
        self.assertEqual([p[:2] for p in dr["dr_s_masked"]], [(5, "1.0")])
        self.assertEqual([p[:2] for p in dr["dr_s_index7"]], [(7, "1.0")])
        self.assertEqual([p[:2] for p in dr["dr_sk_float2"]], [(2, "2.0")])
        self.assertEqual([p[:2] for p in dr["dr_s_truthless"]], [(4, "1.0")])
        self.assertEqual(dr["dr_t_valid"], [(4, "3.0", 1700000000123)])
        self.assertEqual(dr["dr_tn_valid"], [(0, "3.5", 1700000000123)])
        self.assertEqual(fl["fl_tn_valid"], [(0, "3.5", 1700000000123)])
        self.assertEqual([p[:2] for p in fl["k_bytes"]], [(2, "1.0")] * 2)  # fl and wr
        self.assertEqual([p[:2] for p in fl["fl_sync"]], [(1, "1.25")])
        self.assertEqual([p[:2] for p in fl["fl_runid"]], [(1, "1.75")])
        self.assertNotIn("fl_v_word", fl)
        self.assertNotIn("dr_t_negative", dr)
        for which in ("fluent", "drop"):
            with self.subTest(which):
                a = self.dump[self.ext["runs"][which]]
                b = self.dump[self.ctypes["runs"][which]]
                mine = lambda d: {k: v for k, v in d.items()  # noqa: E731
                                  if k.split("_")[0] in ("fl", "wr", "dr", "k", "a/b")}
                self.assertEqual(mine(a["params"]), mine(b["params"]))
                self.assertEqual(mine(a["tags"]), mine(b["tags"]))
        dr = self.dump[self.ext["runs"]["drop"]]
        self.assertEqual(dr["params"]["dr_p_int"], "5")
        self.assertEqual(dr["params"]["dr_p_none"], "None")
        self.assertEqual(dr["params"]["dr_p_strobj"], "custom")
        self.assertEqual(dr["params"]["dr_p_bytes"], "b'b'")
        self.assertEqual(dr["params"]["dr_p_unicode"], "d\u00e9j\u00e0 \u2713")
        self.assertEqual(dr["tags"]["dr_g_float"], "1.5")
        self.assertEqual(dr["tags"]["dr_g_str"], "other")  # last write wins
        self.assertEqual(dr["tags"]["dr_g_kw"], "w")
        self.assertNotIn("dr_p_nul", dr["params"])
        auto = points(self.dump[self.ext["runs"]["auto"]])
        self.assertEqual([p[:2] for p in auto["nr_ok"]], [(3, "0.5")])
        self.assertNotIn("nr_bad", auto)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        sys.exit(0)
    unittest.main(verbosity=2)
