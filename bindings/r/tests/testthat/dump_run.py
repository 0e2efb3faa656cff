"""Prints what the test server stored, as tab-separated lines, for R.

  dump_run.py URL RUN_ID          status, experiment, artifact_uri, param, tag, metric and
                                  dataset (name, digest, source) rows of a run
  dump_run.py --models URL NAME   version (version, run_id, source) and alias (alias,
                                  version) rows of a registered model
  dump_run.py --put URL RUN_ID DIR  uploads the files under DIR to the run's artifact
                                  root through the server's artifact API; prints them
"""
import json
import os
import sys
import urllib.request


def clean(s):
    return str(s).replace("\t", " ").replace("\n", " ")


def dump(url):
    return json.load(urllib.request.urlopen(url + "/_test/dump", timeout=30))


def run_of(d, run_id):
    for r in d["runs"]:
        if r["info"]["run_id"] == run_id:
            return r
    return None


def main(argv):
    if argv[0] == "--models":
        url, name = argv[1], argv[2]
        for m in dump(url)["registered_models"]:
            if m["name"] != name:
                continue
            for v in m["versions"]:
                print("version\t%s\t%s\t%s" % (v["version"], v["run_id"], clean(v["source"])))
            for a, v in m["aliases"].items():
                print("alias\t%s\t%s" % (clean(a), v))
        return
    if argv[0] == "--put":
        url, run_id, top = argv[1], argv[2], argv[3]
        uri = run_of(dump(url), run_id)["info"]["artifact_uri"]
        base = uri[len("mlflow-artifacts:"):].strip("/")
        for d, _dirs, files in os.walk(top):
            for f in sorted(files):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, top).replace(os.sep, "/")
                with open(p, "rb") as fh:
                    req = urllib.request.Request(
                        "%s/api/2.0/mlflow-artifacts/artifacts/%s/%s" % (url, base, rel),
                        data=fh.read(), method="PUT")
                urllib.request.urlopen(req, timeout=30).read()
                print("put\t%s" % rel)
        return
    url, run_id = argv[0], argv[1]
    d = dump(url)
    exps = {e["experiment_id"]: e["name"] for e in d["experiments"]}
    r = run_of(d, run_id)
    if r is None:
        return
    print("status\t%s" % r["info"]["status"])
    print("experiment\t%s" % exps.get(r["info"]["experiment_id"], ""))
    print("artifact_uri\t%s" % r["info"].get("artifact_uri", ""))
    for k, v in r["params"].items():
        print("param\t%s\t%s" % (clean(k), clean(v)))
    for k, v in r["tags"].items():
        print("tag\t%s\t%s" % (clean(k), clean(v)))
    for m in r["metrics"]:
        print("metric\t%s\t%r\t%d\t%d" % (clean(m["key"]), float(m["value"]), m["step"],
                                          m["timestamp"]))
    for ds in d.get("datasets", []):
        if run_id in ds.get("runs", []):
            print("dataset\t%s\t%s\t%s" % (clean(ds["name"]), clean(ds["digest"]),
                                           clean(ds["source"])))


if __name__ == "__main__":
    main(sys.argv[1:])
