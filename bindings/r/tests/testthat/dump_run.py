"""Prints what the test server stored for one run as tab-separated lines, for R:
status, experiment, param, tag and metric rows.  Usage: dump_run.py URL RUN_ID"""
import json
import sys
import urllib.request

url, run_id = sys.argv[1], sys.argv[2]
dump = json.load(urllib.request.urlopen(url + "/_test/dump", timeout=30))
exps = {e["experiment_id"]: e["name"] for e in dump["experiments"]}
for r in dump["runs"]:
    if r["info"]["run_id"] != run_id:
        continue
    clean = lambda s: str(s).replace("\t", " ").replace("\n", " ")  # noqa: E731
    print("status\t%s" % r["info"]["status"])
    print("experiment\t%s" % exps.get(r["info"]["experiment_id"], ""))
    for k, v in r["params"].items():
        print("param\t%s\t%s" % (clean(k), clean(v)))
    for k, v in r["tags"].items():
        print("tag\t%s\t%s" % (clean(k), clean(v)))
    for m in r["metrics"]:
        print("metric\t%s\t%r\t%d\t%d" % (clean(m["key"]), float(m["value"]), m["step"],
                                          m["timestamp"]))
