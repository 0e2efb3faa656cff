"""Reads (and a few writes) of the MLflow REST API that the C library has no call for:
experiments by name, search, runs and their data, delete-tag, the model registry seen
from another process.  Used by the fluent API's get_run, search_runs,
get_experiment_by_name, create_experiment, search_experiments, delete_tag and friends.

Everything the library logs goes through the library (queue, store, retries); these are
synchronous questions to the server, so they need one: with the local store (no
tracking URI) each raises MloNotSupportedError naming the nearest mlo call.  They honour
the client's options and MLflow's environment variables for the server: basic auth or
token, TLS (insecure, CA bundle, client certificate), the request timeout, and retry
408/429/5xx and connection failures a few times.  (The C library keeps its transport to
itself; when it exposes one, this module goes.)
"""

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from . import _client

_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)

# MLflow error codes -> mlo statuses (as the C library maps them)
_CODES = {
    "RESOURCE_DOES_NOT_EXIST": "MLO_ERR_NOT_FOUND",
    "RESOURCE_ALREADY_EXISTS": "MLO_ERR_ALREADY_EXISTS",
    "INVALID_PARAMETER_VALUE": "MLO_ERR_SERVER_INVALID",
    "BAD_REQUEST": "MLO_ERR_SERVER_INVALID",
    "INVALID_STATE": "MLO_ERR_SERVER_INVALID",
    "PERMISSION_DENIED": "MLO_ERR_PERMISSION",
    "UNAUTHENTICATED": "MLO_ERR_PERMISSION",
    "REQUEST_LIMIT_EXCEEDED": "MLO_ERR_RATE_LIMITED",
    "RESOURCE_EXHAUSTED": "MLO_ERR_RATE_LIMITED",
}


def not_supported(what, nearest):
    """The error of a call mlo cannot make (here, now), naming the nearest mlo call."""
    return _client._status_error("MLO_ERR_NOT_SUPPORTED", "%s: %s" % (what, nearest))


class Rest:
    """The REST endpoint of a tracking server, with a client's options (the keywords
    given to mlo.Client) and MLflow's environment variables for what they leave unset."""

    def __init__(self, tracking_uri, options=None):
        opts = options or {}
        env = os.environ

        def opt(key, var):
            v = opts.get(key)
            return v if v is not None else env.get(var)

        self.uri = (tracking_uri or "").rstrip("/")
        self.headers = {"User-Agent": "mlo/%s (python)" % _client.version(),
                        "Content-Type": "application/json"}
        user, password = opt("username", "MLFLOW_TRACKING_USERNAME"), \
            opt("password", "MLFLOW_TRACKING_PASSWORD")
        token = opt("token", "MLFLOW_TRACKING_TOKEN")
        if user and password:
            self.headers["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()
        elif token:
            self.headers["Authorization"] = "Bearer " + token
        insecure = opt("insecure_tls", "MLFLOW_TRACKING_INSECURE_TLS")
        if isinstance(insecure, str):
            insecure = insecure.strip().lower() in ("1", "true")
        self.context = None
        if self.uri.startswith("https:"):
            ctx = ssl.create_default_context(cafile=opt("ca_cert_path",
                                                        "MLFLOW_TRACKING_SERVER_CERT_PATH"))
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            cert = opt("client_cert_path", "MLFLOW_TRACKING_CLIENT_CERT_PATH")
            if cert:
                ctx.load_cert_chain(cert)
            self.context = ctx
        timeout = opt("request_timeout", "MLFLOW_HTTP_REQUEST_TIMEOUT")
        try:
            self.timeout = float(timeout) if timeout not in (None, "") and float(timeout) > 0 \
                else 120.0
        except ValueError:
            self.timeout = 120.0
        handlers = []
        host = urllib.parse.urlsplit(self.uri).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            handlers.append(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        if self.context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.context))
        self.opener = urllib.request.build_opener(*handlers)

    def call(self, method, endpoint, body=None, query=None, retries=3):
        """The JSON answer of <uri>/api/2.0/mlflow/<endpoint>; raises the mlo error of a
        failure (MloNotFoundError for RESOURCE_DOES_NOT_EXIST, ...)."""
        url = "%s/api/2.0/mlflow/%s" % (self.uri, endpoint)
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode("utf-8")
        delay = 0.5
        for attempt in range(retries + 1):
            req = urllib.request.Request(url, data=data, method=method, headers=self.headers)
            try:
                with self.opener.open(req, timeout=self.timeout) as r:
                    raw = r.read()
                try:
                    return json.loads(raw or b"{}")
                except ValueError:
                    raise _client._status_error("MLO_ERR_PROTOCOL", "%s %s: the answer is not "
                                                "JSON" % (method, endpoint)) from None
            except urllib.error.HTTPError as e:
                raw = e.read()
                if e.code in _RETRY_STATUSES and attempt < retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise _http_error(method, endpoint, e.code, raw) from None
            except (urllib.error.URLError, OSError) as e:
                if attempt < retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                reason = getattr(e, "reason", e)
                status = "MLO_ERR_TLS" if isinstance(reason, ssl.SSLError) else "MLO_ERR_NETWORK"
                raise _client._status_error(status, "%s %s: %s" % (method, url, reason)) from None
        raise AssertionError("unreachable")

    def get(self, endpoint, **query):
        return self.call("GET", endpoint, query={k: v for k, v in query.items()
                                                 if v is not None})

    def post(self, endpoint, body):
        return self.call("POST", endpoint, body=body)


def _http_error(method, endpoint, code, raw):
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_code" in body:
        name = _CODES.get(body.get("error_code"))
        if name is None:
            name = "MLO_ERR_PERMISSION" if code in (401, 403) else \
                "MLO_ERR_RATE_LIMITED" if code == 429 else \
                "MLO_ERR_SERVER" if code >= 500 else "MLO_ERR_SERVER_INVALID"
        return _client._status_error(name, "%s %s: %s %s" % (method, endpoint, body["error_code"],
                                                             body.get("message", "")))
    name = "MLO_ERR_PERMISSION" if code in (401, 403) else \
        "MLO_ERR_NOT_FOUND" if code == 404 else "MLO_ERR_PROTOCOL"
    return _client._status_error(name, "%s %s: HTTP %d (not an MLflow answer)"
                                 % (method, endpoint, code))


def for_client(client, what, nearest):
    """The Rest of a client with a tracking server; else the NotSupported error of what."""
    return for_uri(client.tracking_uri, getattr(client, "_options", None), what, nearest)


def for_uri(tracking_uri, options, what, nearest):
    if not tracking_uri:
        raise not_supported(what + " needs a tracking server (without one, runs are in the "
                            "local store)", nearest)
    return Rest(tracking_uri, options)
