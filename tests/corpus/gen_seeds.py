#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz_pbjson.c, tests/fuzz_config.c,
tests/fuzz_manifest.c).

Run from anywhere: /usr/bin/python3 tests/corpus/gen_seeds.py
It (re)writes the files named below into tests/corpus/pbjson/, config/ and manifest/ and
leaves every other file there alone (regression inputs found by fuzzing are added by hand,
named crash-*, and stay).

Names: "ok-*" must be accepted (decoded / resolved / a valid key), "bad-*" refused: the
replay (tests/fuzz_replay.c) checks it, so the corpus is also a table of decisions.  Other
names only must not crash.  The response bodies are shaped like a real MLflow 2.21 server's
(see /work/shared/MLFLOW.md): int64 as numbers or strings, NaN/Infinity as strings,
lowerCamelCase accepted, unknown members ignored, HTML error pages from proxies.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# selector letters of tests/fuzz_pbjson.c
SEL = {
    "ErrorResponse": "A", "GetExperimentByName": "B", "CreateExperiment": "C",
    "CreateRun": "D", "GetRun": "E", "UpdateRun": "F", "LogBatch": "G",
    "GetMetricHistory": "H", "SearchRuns": "I", "GetExperiment": "J", "LogMetric": "K",
    "LogParam": "L", "SetTag": "M", "DeleteTag": "N", "LogInputs": "O", "dtoa": "P",
}

RID = "9f2c7a4e1b3d4c5e8f6a7b8c9d0e1f2a"
INFO = {
    "run_uuid": RID, "experiment_id": "1", "run_name": "bold-owl-42", "user_id": "alice",
    "status": "RUNNING", "start_time": 1700000000123, "artifact_uri":
    "mlflow-artifacts:/1/" + RID + "/artifacts", "lifecycle_stage": "active", "run_id": RID,
}
TAGS = [{"key": "mlflow.user", "value": "alice"},
        {"key": "mlflow.source.name", "value": "train.py"},
        {"key": "mlflow.source.type", "value": "LOCAL"},
        {"key": "mlflow.runName", "value": "bold-owl-42"}]
EXPERIMENT = {
    "experiment_id": "1", "name": "vision/resnet", "artifact_location": "mlflow-artifacts:/1",
    "lifecycle_stage": "active", "last_update_time": 1700000000000,
    "creation_time": 1699999999000, "tags": [{"key": "mlflow.note.content", "value": "notes"}],
}


def j(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode()


PBJSON = {
    # --- error bodies, and what proxies send instead ---
    "ok-error-not-found": ("ErrorResponse", j({
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Run with id=" + RID + " not found"})),
    "ok-error-invalid-param": ("ErrorResponse", j({
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Changing param values is not allowed. Param with key='lr' was already "
                   "logged with value='0.1' for run ID='" + RID + "'. Attempted logging new "
                   "value '0.2'."})),
    "ok-error-already-exists": ("ErrorResponse", j({
        "error_code": "RESOURCE_ALREADY_EXISTS",
        "message": "Experiment 'x' already exists."})),
    "ok-error-limit": ("ErrorResponse", j({
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "A batch logging request can contain at most 1000 metrics. Got 1001 "
                   "metrics. Please split up metrics across multiple requests and try again."})),
    "ok-error-extra-members": ("ErrorResponse", j({
        "error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy",
        "details": [{"@type": "x", "reason": None}], "stack_trace": "Traceback ...\n"})),
    "ok-error-unicode": ("ErrorResponse",
                         '{"error_code":"BAD_REQUEST","message":"cl\\u00e9 \\ud83d\\ude00 '
                         'größe \\"quoted\\" \\\\ \\/ \\b\\f\\n\\r\\t"}'.encode()),
    "ok-error-null-members": ("ErrorResponse", b'{"error_code":null,"message":null}'),
    "ok-error-empty-object": ("ErrorResponse", b"{}"),
    "ok-error-whitespace": ("ErrorResponse", b' \r\n\t{ "error_code" : "INTERNAL_ERROR" } \n'),
    "bad-error-html-404": ("ErrorResponse",
                           b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n"
                           b"<h1>Not Found</h1>\n<p>The requested URL was not found on the server."
                           b"</p>\n"),
    "bad-error-html-502-proxy": ("ErrorResponse",
                                 b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
                                 b"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
                                 b"<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"),
    "bad-error-empty-body": ("ErrorResponse", b""),
    "bad-error-null": ("ErrorResponse", b"null"),
    "bad-error-array": ("ErrorResponse", b'[{"error_code":"X"}]'),
    "bad-error-string": ("ErrorResponse", b'"INTERNAL_ERROR"'),
    "bad-error-truncated": ("ErrorResponse", b'{"error_code":"INVALID_PARAMETER_VAL'),
    "bad-error-trailing-garbage": ("ErrorResponse", b'{"error_code":"X"}garbage'),
    "bad-error-two-objects": ("ErrorResponse", b'{}{}'),
    "bad-error-number-message": ("ErrorResponse", b'{"error_code":"X","message":404}'),
    "bad-error-invalid-utf8": ("ErrorResponse", b'{"message":"\xc3\x28 \xff"}'),
    "bad-error-lone-surrogate": ("ErrorResponse", b'{"message":"\\ud800"}'),
    "bad-error-nul-escape": ("ErrorResponse", b'{"message":"a\\u0000b"}'),
    "bad-error-bom": ("ErrorResponse", b'\xef\xbb\xbf{}'),
    "bad-error-single-quotes": ("ErrorResponse", b"{'error_code':'X'}"),
    "ok-error-unknown-nested-deep": ("ErrorResponse", b'{"x":' * 2000 + b"1" + b"}" * 2000),
    "bad-error-nested-beyond-parser": ("ErrorResponse", b'{"x":' * 3000 + b"1" + b"}" * 3000),
    "error-raw-nul": ("ErrorResponse", b'{"message":"a\x00b"}'),
    # --- experiments ---
    "ok-get-experiment-by-name": ("GetExperimentByName", j({"experiment": EXPERIMENT})),
    "ok-get-experiment-by-name-camel": ("GetExperimentByName", j({"experiment": {
        "experimentId": "7", "name": "x", "artifactLocation": "file:///tmp/x",
        "lifecycleStage": "active", "lastUpdateTime": "1700000000000",
        "creationTime": 1.7e12}})),
    "ok-get-experiment": ("GetExperiment", j({"experiment": dict(EXPERIMENT, workspace="w")})),
    "ok-create-experiment": ("CreateExperiment", j({"experiment_id": "123456789012345678"})),
    "ok-create-experiment-empty": ("CreateExperiment", b"{}"),
    "bad-create-experiment-number-id": ("CreateExperiment", b'{"experiment_id":5}'),
    "bad-get-experiment-time-overflow": ("GetExperimentByName",
                                         b'{"experiment":{"creation_time":99999999999999999999}}'),
    "bad-get-experiment-time-fraction": ("GetExperimentByName",
                                         b'{"experiment":{"creation_time":1.5}}'),
    "bad-get-experiment-time-word": ("GetExperimentByName",
                                     b'{"experiment":{"creation_time":"soon"}}'),
    "bad-get-experiment-tags-object": ("GetExperimentByName",
                                       b'{"experiment":{"tags":{"key":"a","value":"b"}}}'),
    "bad-get-experiment-not-object": ("GetExperimentByName", b'{"experiment":[]}'),
    "ok-get-experiment-null": ("GetExperimentByName", b'{"experiment":null}'),
    # --- runs ---
    "ok-create-run": ("CreateRun", j({"run": {"info": INFO, "data": {"tags": TAGS},
                                              "inputs": {}}})),
    "ok-create-run-int64-strings": ("CreateRun", j({"run": {"info": dict(
        INFO, start_time="1700000000123", end_time="-9223372036854775808")}})),
    "ok-create-run-int64-limits": ("CreateRun",
                                   b'{"run":{"info":{"start_time":9223372036854775807,'
                                   b'"end_time":-9223372036854775808}}}'),
    "bad-create-run-int64-over": ("CreateRun",
                                  b'{"run":{"info":{"start_time":"9223372036854775808"}}}'),
    "ok-create-run-status-number": ("CreateRun", b'{"run":{"info":{"status":99}}}'),
    "bad-create-run-status-unknown": ("CreateRun", b'{"run":{"info":{"status":"PAUSED"}}}'),
    "bad-create-run-status-lower": ("CreateRun", b'{"run":{"info":{"status":"running"}}}'),
    "ok-get-run": ("GetRun", j({"run": {"info": dict(INFO, status="FINISHED",
                                                     end_time=1700000099999), "data": {
        "metrics": [
            {"key": "loss", "value": 0.25, "timestamp": 1700000000200, "step": 3},
            {"key": "nan", "value": "NaN", "timestamp": 1700000000201, "step": 0},
            {"key": "inf", "value": 1.7976931348623157e308, "timestamp": 1, "step": 1},
            {"key": "ninf", "value": "-Infinity", "timestamp": 1, "step": -5},
            {"key": "tiny", "value": 5e-324, "timestamp": 1, "step": "9223372036854775807"},
            {"key": "neg0", "value": -0.0, "timestamp": 1, "step": 0},
            {"key": "str", "value": "1e-7", "timestamp": 1, "step": 0},
        ],
        "params": [{"key": "lr", "value": "0.001"}, {"key": "layers", "value": "4"}],
        "tags": TAGS}, "inputs": {"dataset_inputs": [{
            "tags": [{"key": "mlflow.data.context", "value": "train"}],
            "dataset": {"name": "mnist", "digest": "abc123", "source_type": "local",
                        "source": "{\"uri\": \"/data\"}", "schema": "{}", "profile": "{}"}}],
            "model_inputs": [{"model_id": "m-1"}]},
        "outputs": {"model_outputs": [{"model_id": "m-2", "step": 10}]}}})),
    "ok-get-run-unknown-members": ("GetRun", j({"run": {"info": INFO, "future": {"x": [1, 2]},
                                                        "data": {"metrics": [], "extra": None}},
                                                "also": True})),
    "ok-get-run-long-strings": ("GetRun", j({"run": {"data": {
        "params": [{"key": "k" * 250, "value": "v" * 6000}],
        "tags": [{"key": "t", "value": "é" * 8000}]}}})),
    "bad-get-run-bare-nan": ("GetRun", b'{"run":{"data":{"metrics":[{"value":NaN}]}}}'),
    "bad-get-run-value-1e309": ("GetRun", b'{"run":{"data":{"metrics":[{"value":1e309}]}}}'),
    "bad-get-run-value-lower-nan": ("GetRun",
                                    b'{"run":{"data":{"metrics":[{"value":"nan"}]}}}'),
    "bad-get-run-value-bool": ("GetRun", b'{"run":{"data":{"metrics":[{"value":true}]}}}'),
    "bad-get-run-metrics-object": ("GetRun", b'{"run":{"data":{"metrics":{"key":"a"}}}}'),
    "bad-get-run-metric-not-object": ("GetRun", b'{"run":{"data":{"metrics":[1,2,3]}}}'),
    "bad-get-run-key-number": ("GetRun", b'{"run":{"data":{"params":[{"key":7}]}}}'),
    "ok-get-run-metric-null-entry-members": ("GetRun",
                                             b'{"run":{"data":{"metrics":[{"key":null,'
                                             b'"value":null,"timestamp":null}]}}}'),
    "get-run-null-in-array": ("GetRun", b'{"run":{"data":{"metrics":[null]}}}'),
    "get-run-duplicate-members": ("GetRun", b'{"run":{"info":{"run_id":"a","run_id":"b"}}}'),
    "get-run-camel-and-snake": ("GetRun",
                                b'{"run":{"info":{"run_id":"a","runId":"b","startTime":5}}}'),
    "ok-update-run": ("UpdateRun", j({"run_info": dict(INFO, status="KILLED",
                                                       end_time=1700000000999)})),
    "ok-search-runs": ("SearchRuns", j({"runs": [{"info": INFO, "data": {"tags": TAGS}},
                                                 {"info": dict(INFO, run_id="0" * 32)}],
                                        "next_page_token": "eyJvZmZzZXQiOiAxMDB9"})),
    "ok-search-runs-empty": ("SearchRuns", b'{}'),
    "ok-metric-history": ("GetMetricHistory", j({"metrics": [
        {"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1700000000000 + i, "step": i,
         "run_id": RID} for i in range(40)], "next_page_token": None})),
    "ok-metric-history-specials": ("GetMetricHistory",
                                   b'{"metrics":[{"value":"Infinity"},{"value":"-Infinity"},'
                                   b'{"value":"NaN"},{"value":1E+2},{"value":-1.5e-310},'
                                   b'{"value":0.1}]}'),
    # an integer beyond int64, even in a member the client ignores: jansson refuses the
    # whole body (MLflow's Python server never writes one; other servers might)
    "metric-history-bigint": ("GetMetricHistory",
                              b'{"metrics":[{"value":123456789012345678901234567890}]}'),
    "error-unknown-member-uint64": ("ErrorResponse",
                                    b'{"error_code":"X","size":18446744073709551615}'),
    # --- the empty answers of write calls ---
    "ok-log-batch": ("LogBatch", b"{}"),
    "ok-log-batch-extra": ("LogBatch", b'{"ignored":[1,{"a":null}]}'),
    "bad-log-batch-empty-body": ("LogBatch", b""),
    "bad-log-batch-html": ("LogBatch", b"<html><body>OK</body></html>"),
    "ok-log-metric": ("LogMetric", b"{}"),
    "ok-log-param": ("LogParam", b"{}"),
    "ok-set-tag": ("SetTag", b"{}"),
    "ok-delete-tag": ("DeleteTag", b"{}"),
    "ok-log-inputs": ("LogInputs", b"{}"),
}

DOUBLES = {
    "dtoa-0.1": 0.1, "dtoa-1e21": 1e21, "dtoa-min-subnormal": 5e-324, "dtoa-neg-zero": -0.0,
    "dtoa-max": 1.7976931348623157e308, "dtoa-123": 123.0, "dtoa-2p53": 2.0 ** 53,
    "dtoa-1e-7": 1e-7, "dtoa-third": 1.0 / 3, "dtoa-inf": float("inf"),
    "dtoa-neg-inf": float("-inf"), "dtoa-nan": float("nan"), "dtoa-1e15": 1e15,
    "dtoa-9007199254740993": 9007199254740993.0, "dtoa-min-normal": 2.2250738585072014e-308,
}

URI = "MLFLOW_TRACKING_URI=http://127.0.0.1:5000\n"
CONFIG = {
    "ok-env-uri": URI,
    "ok-env-uri-prefix-slashes": "MLFLOW_TRACKING_URI=https://mlflow.example.com/prefix///\n",
    "ok-env-uri-upper-scheme": "MLFLOW_TRACKING_URI=HTTPS://Example.COM:8443\n",
    "ok-env-uri-userinfo": "MLFLOW_TRACKING_URI=http://user:secret-in-uri@host:5000/\n",
    "ok-env-uri-ipv6": "MLFLOW_TRACKING_URI=http://[::1]:5000\n",
    "ok-option-uri-wins": "MLFLOW_TRACKING_URI=http://from-env:1\n@uri=https://from-option:2/p\n",
    "ok-option-uri-only": "@uri=http://localhost:5000\n",
    "ok-all-env": URI + "MLFLOW_EXPERIMENT_NAME=vision\nMLFLOW_EXPERIMENT_ID=17\n"
                  "MLFLOW_RUN_ID=9f2c7a4e1b3d4c5e8f6a7b8c9d0e1f2a\n"
                  "MLFLOW_TRACKING_USERNAME=alice\nMLFLOW_TRACKING_PASSWORD=hunter2hunter2\n"
                  "MLFLOW_TRACKING_TOKEN=ignored-when-basic-auth\n"
                  "MLFLOW_TRACKING_INSECURE_TLS=false\n"
                  "MLFLOW_TRACKING_SERVER_CERT_PATH=/etc/ssl/certs/ca.pem\n"
                  "MLFLOW_TRACKING_CLIENT_CERT_PATH=/tmp/client.pem\n"
                  "MLFLOW_HTTP_REQUEST_MAX_RETRIES=3\nMLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0.5\n"
                  "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER=0\nMLFLOW_HTTP_REQUEST_TIMEOUT=30\n"
                  "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER=true\n",
    "ok-all-options": "@uri=http://h:1\n@experiment_name=exp\n@experiment_id=3\n"
                      "@token=tok-tok-tok-tok\n@basic=bob:pw-pw-pw-pw-pw\n@insecure=1\n"
                      "@ca=/ca.pem\n@client_cert=/c.pem\n@retries=2,0.1,0.2,3\n"
                      "@queue_bytes=100000\n@full_policy=1,0\n@close_timeout=5\n"
                      "@flush_interval=10\n@callback\n",
    "ok-retries-capped": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=99\n",
    "ok-retries-hex": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=0x3\n",
    "ok-insecure-upper": URI + "MLFLOW_TRACKING_INSECURE_TLS=TRUE\n",
    "ok-empty-vars-are-unset": URI + "MLFLOW_HTTP_REQUEST_TIMEOUT=\n"
                               "MLFLOW_TRACKING_INSECURE_TLS=\n",
    "ok-option-retries-win": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=banana\n@retries=1,-1,-1,-1\n",
    "ok-noopts": URI + "@noopts\n",
    "ok-basic-half-ignored": URI + "MLFLOW_TRACKING_USERNAME=alice\n",
    "bad-scheme-ftp": "MLFLOW_TRACKING_URI=ftp://example.com\n",
    "bad-scheme-file": "MLFLOW_TRACKING_URI=file:///tmp/mlruns\n",
    "bad-scheme-only": "MLFLOW_TRACKING_URI=http://\n",
    "bad-uri-invalid-utf8": b"MLFLOW_TRACKING_URI=http://h\xff\xfe/\n",
    "bad-retries-fraction": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=2.5\n",
    "bad-retries-negative": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=-1\n",
    "bad-retries-nan": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=nan\n",
    "bad-retries-inf": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=inf\n",
    "bad-retries-word": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=five\n",
    "bad-retries-trailing": URI + "MLFLOW_HTTP_REQUEST_MAX_RETRIES=3 \n",
    "bad-backoff-negative": URI + "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=-0.5\n",
    "bad-backoff-huge": URI + "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=1e400\n",
    "bad-jitter-word": URI + "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER=lots\n",
    "bad-timeout-zero": URI + "MLFLOW_HTTP_REQUEST_TIMEOUT=0\n",
    "bad-timeout-nan": URI + "MLFLOW_HTTP_REQUEST_TIMEOUT=NaN\n",
    "bad-insecure-maybe": URI + "MLFLOW_TRACKING_INSECURE_TLS=maybe\n",
    "bad-retry-after-word": URI + "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER=sometimes\n",
    "bad-secret-not-in-message": URI + "MLFLOW_TRACKING_TOKEN=tok#SECRET#never-printed\n"
                                 "MLFLOW_TRACKING_PASSWORD=pw#SECRET#never-printed\n"
                                 "MLFLOW_TRACKING_USERNAME=u\n"
                                 "MLFLOW_HTTP_REQUEST_TIMEOUT=tok#SECRET#never-printed\n",
    "bad-secret-option-not-in-message": "@token=opt#SECRET#token\n@basic=me:opt#SECRET#pw\n"
                                        "MLFLOW_TRACKING_URI=gopher://opt#SECRET#pw\n",
    "option-setters-refuse": b"@uri=ftp://x\n@uri=http://\n@uri=\xff\n@experiment_name=\n"
                             b"@experiment_id=\n@basic=onlyuser\n@retries=11,0,0,0\n"
                             b"@retries=1,nan,0,1\n@retries=1,0,0,0\n@queue_bytes=1\n"
                             b"@queue_bytes=0x80000000\n@full_policy=7,0\n@full_policy=0,60001\n"
                             b"@flush_interval=0\n@flush_interval=60001\n" + URI.encode(),
    "option-uri-null-unsets": URI + "@uri=http://x\n@uri\n",
    # the store (durable run log): no URI means local runs, unless the store is off
    "ok-no-uri-local-store": "MLO_STORE_DIR=/tmp/mlo-fuzz-store\n",
    "ok-store-option-wins": URI + "MLO_STORE_DIR=/from/env\n@store_dir=/from/option\n"
                            "@durable=1\n@fsync=2,0\n",
    "ok-durable-off-with-uri": URI + "@durable=0\n@fsync=1,3600000\n",
    "bad-durable-off-no-uri": "@durable=0\n",
    "store-setters-refuse": URI.encode() + b"@store_dir=\n@store_dir=/s\xc3\n@fsync=3,0\n"
                            b"@fsync=-1,0\n@fsync=1,0\n@fsync=1,3600001\n@store_dir\n",
    # keys and values (MLflow's rules; the verdict is the last @key/@value line's)
    "ok-key-simple": "@key=loss\n",
    "ok-key-path": "@key=train/loss_1.val-2 x:y\n",
    "ok-key-dots-inside": "@key=a..b\n",
    "ok-key-unicode": "@key=größe/温度\n",
    "ok-key-250": "@key=" + "a" * 250 + "\n",
    "ok-key-250-multibyte": "@key=" + "é" * 250 + "\n",
    "bad-key-251": "@key=" + "a" * 251 + "\n",
    "bad-key-empty": "@key=\n",
    "bad-key-parent": "@key=../x\n",
    "bad-key-parent-inside": "@key=a/../b\n",
    "bad-key-dotdot-prefix": "@key=..x\n",
    "bad-key-double-slash": "@key=a//b\n",
    "bad-key-absolute": "@key=/abs\n",
    "bad-key-trailing-slash": "@key=a/\n",
    "bad-key-dot": "@key=.\n",
    "bad-key-dot-component": "@key=a/./b\n",
    "bad-key-bang": "@key=bad key!\n",
    "bad-key-comma": "@key=a,b\n",
    "bad-key-equals": "@key=a=b\n",
    "bad-key-tab": "@key=a\tb\n",
    "bad-key-emoji": "@key=loss\U0001F600\n",
    "bad-key-invalid-utf8": b"@key=a\xc3\x28\n",
    "bad-key-overlong-slash": b"@key=a\xc0\xafb\n",
    "bad-key-truncated-utf8": b"@key=a\xe2\x82\n",
    "ok-value-plain": "@value=0.001\n",
    "ok-value-long-truncated": "@value=" + "é" * 7000 + "\n",
    "bad-value-invalid-utf8": b"@value=\xc3\x28\n",
    "bad-value-surrogate": b"@value=\xed\xa0\x80\n",
    "bad-value-above-max": b"@value=\xf4\x90\x80\x80\n",
}


# Artifact manifests (tests/fuzz_manifest.c; format at the top of src/mlo_artifact.c).  The
# first four are what the library wrote for tests/cli_mkstore.c --api (a local store: uri "-").
SHA_DATA = "f541874101876255b4baf3a739778d04cb9cba25ffa38b30bc1fb8b0701f2a45"
SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LID = "1f5cc8bb305b6e74eb01d27845cbd3f0"


def manifest(path, size=3000, sha=SHA_DATA, uri="-", extra="", lid=LID, version="1"):
    return (f"mlo-artifact {version}\nrun {lid}\npath {path}\nsize {size}\nsha256 {sha}\n"
            f"created 1795683077968\nuri {uri}\n{extra}")


MANIFEST = {
    "ok-plain": manifest("data/data.csv"),
    "ok-bytes": manifest("model/weights.bin"),
    "ok-encoded-name": manifest("notes/100%25%20done.txt", 5,
                                "d117fa006ba9208500b2930ce69cbde436c647afa917cb7396a9bc9111a46dd2"),
    "ok-empty-file": manifest("empty.bin", 0, SHA_EMPTY),
    "ok-bound-uri": manifest("model/m.bin", uri="http://127.0.0.1:5000/mlflow%20prefix"),
    "ok-failed": manifest("model/m.bin", uri="https://mlflow.example.org",
                          extra="error artifact%20upload:%20INVALID_PARAMETER_VALUE%0Abad\n"),
    "ok-unicode-path": manifest("model/größe/温度.bin"),
    "bad-control-chars-encoded": manifest("a%09b/c%0Ad%7F%25"),  # the path rule refuses them
    "ok-unknown-keys-blank-lines": "future 7\n\n" + manifest("x.bin") + "\nnote a b c",
    "ok-no-trailing-newline": manifest("x.bin").rstrip("\n"),
    "ok-path-4096": manifest("/".join(["d" * 255] * 16) + "e"),  # the limit, in bytes
    "ok-path-nul-cuts": manifest("a%00/../../x"),  # the decoded path ends at the NUL: "a"
    "ok-last-wins": manifest("../x") + "path good.bin\n",
    # what identifies the staged blob (optional; malformed: unknown, still accepted), and a
    # digest the log call has not written yet
    "ok-blob-ident": manifest("model/m.bin", extra="blob 6f1c2a3e-9b7d-4e55-8a21-0c9d8e7f6a5b "
                              "2049 1311768 1795683077968123456 1795683077968223456\n"),
    "ok-blob-ident-malformed": manifest("model/m.bin", extra="blob not-a-boot-id 1 2 3 4\n"),
    "ok-blob-ident-trailing": manifest("model/m.bin", extra="blob 6f1c2a3e-9b7d-4e55-8a21-"
                                       "0c9d8e7f6a5b 1 2 3 4 5\n"),
    "ok-sha-pending": manifest("model/m.bin", sha="-" * 64),
    "bad-empty": "",
    "bad-version-2": manifest("x.bin", version="2"),
    "bad-no-version": manifest("x.bin").split("\n", 1)[1],
    "bad-no-run": manifest("x.bin").replace(f"run {LID}\n", ""),
    "bad-run-empty": manifest("x.bin", lid=""),
    "bad-no-path": manifest("x.bin").replace("path x.bin\n", ""),
    "bad-path-empty": manifest(""),
    "bad-no-size": manifest("x.bin").replace("size 3000\n", ""),
    "bad-size-negative": manifest("x.bin", size=-1),
    "bad-sha-short": manifest("x.bin", sha=SHA_DATA[:63]),
    "bad-sha-missing": manifest("x.bin").replace(f"sha256 {SHA_DATA}\n", ""),
    "bad-path-dotdot": manifest("../../etc/passwd"),
    "bad-path-inner-dotdot": manifest("model/../../../etc/passwd"),
    "bad-path-encoded-dotdot": manifest("%2E%2E/%2e%2e/etc/passwd"),
    "bad-path-absolute": manifest("/etc/passwd"),
    "bad-path-encoded-absolute": manifest("%2Fetc%2Fpasswd"),
    "bad-path-backslash": manifest("a%5C..%5C..%5Cb"),
    "bad-path-empty-segment": manifest("a//b"),
    "bad-path-trailing-slash": manifest("model/"),
    "bad-path-dot": manifest("./x"),
    "bad-path-dotdot-only": manifest(".."),
    "bad-path-invalid-utf8": manifest("%FF%FE.bin"),
    "bad-path-overlong-slash": manifest("a%C0%AFb"),
    "bad-path-nul-first": manifest("%00../x"),
    "bad-path-4097": manifest("/".join(["d" * 255] * 16) + "ee"),
    "bad-nul-before-path": manifest("x.bin").replace("path ", "\0path "),
    "bad-binary": bytes(range(256)) * 3,
}


def write(dirname, name, data):
    d = os.path.join(HERE, dirname)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for name, (msg, body) in PBJSON.items():
        write("pbjson", name, SEL[msg].encode() + body)
    for name, v in DOUBLES.items():
        write("pbjson", name, SEL["dtoa"].encode() + struct.pack("<d", v))
    for name, text in CONFIG.items():
        # str: UTF-8 text; bytes: raw (for the invalid UTF-8 cases)
        write("config", name, text if isinstance(text, bytes) else text.encode())
    for name, text in MANIFEST.items():
        write("manifest", name, text if isinstance(text, bytes) else text.encode())


if __name__ == "__main__":
    main()
