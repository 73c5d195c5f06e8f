"""`timber serve` end to end: a real server process (2 workers) on a free port over a store in a
temporary TIMBER_HOME, real HTTP clients (urllib, `tritonclient`, a load generator), every answer
compared bit for bit with the compiled model, every error's status and message, store changes
picked up while serving, and a clean Ctrl-C.  The server starts once per HTTP server (granian, uvicorn)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import orjson
import pytest

import timber
from tests.rows import adversarial_rows
from timber.artifact import to_artifact
from timber.server.loadgen import load, request_bytes
from timber.store import Store

from .models import DEMO, REPO, bits, require, xgboost_multiclass

require("uvicorn", "the server tests need timber[serve]")
require("prometheus_client", "the server tests need timber[serve]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home, port, proc, models):
        self.home, self.port, self.proc, self.models = home, port, proc, models
        self.url = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body=None, headers=None):
        """(status, decoded JSON or text) of one request."""
        data = body if isinstance(body, (bytes, type(None))) else orjson.dumps(body)
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw, ctype = r.status, r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            status, raw, ctype = e.code, e.read(), e.headers.get("content-type", "")
        return status, (json.loads(raw) if "json" in ctype else raw.decode())


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def server(request, tmp_path_factory):
    """A 2-worker `timber serve` on each HTTP server it can run on: granian (RSGI, the default)
    and uvicorn (ASGI); every test below runs against both."""
    if request.param == "granian":
        require("granian", "the granian server tests need granian")
    home = tmp_path_factory.mktemp("timber_home")
    tmp = tmp_path_factory.mktemp("models")
    store = Store(home)
    models = {
        "demo": timber.compile(str(DEMO)),
        "multi": timber.compile(str(xgboost_multiclass(tmp / "multi.json"))),
    }
    store.add("demo", to_artifact(models["demo"], source=DEMO))
    store.add("multi", to_artifact(models["multi"]))
    store.add("swap", to_artifact(models["demo"]))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TIMBER_HOME": str(home)}
    cmd = [sys.executable, "-m", "timber.cli", "serve", "--port", str(port), "--workers", "2"]
    cmd += ["--max-rows", "1000", "--max-body", str(1 << 20), "--server", request.param]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    srv = Server(home, port, proc, models)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"timber serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if srv.call("GET", "/api/health")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timber serve did not become ready in 90 s")
        time.sleep(0.1)
    yield srv
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _json_rows(X: np.ndarray) -> list:
    """Rows as JSON lists: NaN as null (JSON has no NaN); ±inf rows are left out by the caller."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in X]


def _rows(model, n=200):
    X = np.vstack([adversarial_rows(model.module), np.random.default_rng(0).normal(size=(n, model.n_features))])
    return X[~np.isinf(X).any(axis=1)]  # JSON carries no infinities (1e300 still becomes inf in float32)


def test_predict_answers_what_the_compiled_model_returns(server):
    demo, multi = server.models["demo"], server.models["multi"]
    X = _rows(demo)[:900]
    status, r = server.call("POST", "/api/predict", {"model": "demo", "inputs": _json_rows(X)})
    assert status == 200 and r["model"] == "demo" and r["latency_us"] > 0
    out = np.array(r["outputs"], np.float32)
    assert out.shape == (len(X),)  # a 1-D result stays 1-D
    assert np.array_equal(bits(out), bits(demo.predict(X)))
    for row in X[:10]:  # single rows: what predict returns for one row, a list of one
        status, r = server.call("POST", "/api/predict", {"model": "demo", "inputs": _json_rows(row[None])})
        assert status == 200 and np.array_equal(bits(np.array(r["outputs"], np.float32)), bits(demo.predict(row[None])))
    Xm = _rows(multi, 50)
    status, r = server.call("POST", "/api/predict", {"model": "multi", "inputs": _json_rows(Xm)})
    assert status == 200 and np.array_equal(bits(np.array(r["outputs"], np.float32)), bits(multi.predict(Xm)))
    assert np.array(r["outputs"]).shape == (len(Xm), 3)


def test_model_listing_and_health(server):
    status, r = server.call("GET", "/api/models")
    assert status == 200
    by_name = {m["name"]: m for m in r["models"]}
    assert {"demo", "multi", "swap"} <= set(by_name)
    assert by_name["demo"]["format"] == "xgboost" and by_name["demo"]["n_features"] == 30 and by_name["demo"]["n_outputs"] == 1
    assert by_name["multi"]["n_outputs"] == 3
    status, r = server.call("GET", "/api/model/demo")
    assert status == 200 and r["objective"] == "binary:logistic" and r["source_sha256"]
    assert server.call("GET", "/api/health") == (200, {"status": "ok", "models": r and server.call("GET", "/api/health")[1]["models"]})
    assert server.call("GET", "/v2/health/live")[0] == 200 and server.call("GET", "/v2/health/ready")[0] == 200


def test_open_inference_protocol_with_tritonclient(server):
    httpclient = require("tritonclient.http", "the KServe v2 test needs tritonclient[http]")
    from tritonclient.utils import InferenceServerException

    demo, multi = server.models["demo"], server.models["multi"]
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("demo")
    meta = client.get_model_metadata("demo")
    assert meta["inputs"][0]["shape"] == [-1, 30] and meta["inputs"][0]["datatype"] == "FP32"
    with np.errstate(over="ignore"):  # 1e300 is +inf in float32, as XGBoost casts it
        X = _rows(demo, 100)[:800].astype(np.float32)
    X = np.vstack([X, np.full((1, 30), np.inf, np.float32), np.full((1, 30), -np.inf, np.float32)])  # binary data carries ±inf
    for dtype, name, binary_in, binary_out in [
        (np.float32, "FP32", True, True),
        (np.float32, "FP32", False, False),
        (np.float64, "FP64", True, False),
    ]:
        Xd = X.astype(dtype) if binary_in else X[np.isfinite(X).all(axis=1)].astype(dtype)
        if not binary_in:
            Xd = np.nan_to_num(Xd, nan=0.5)  # JSON data without nulls
        inp = httpclient.InferInput("input-0", list(Xd.shape), name)
        inp.set_data_from_numpy(Xd, binary_data=binary_in)
        out = httpclient.InferRequestedOutput("output-0", binary_data=binary_out)
        result = client.infer("demo", [inp], outputs=[out])
        got = result.as_numpy("output-0")
        assert got.dtype == np.float32 and got.shape == (len(Xd),)
        assert np.array_equal(bits(got), bits(demo.predict(Xd)))
    with np.errstate(over="ignore"):
        Xm = _rows(multi, 20).astype(np.float32)
    inp = httpclient.InferInput("input-0", list(Xm.shape), "FP32")
    inp.set_data_from_numpy(Xm)
    got = client.infer("multi", [inp]).as_numpy("output-0")
    assert got.shape == (len(Xm), 3) and np.array_equal(bits(got), bits(multi.predict(Xm)))
    with pytest.raises(InferenceServerException, match="model 'nope' not found"):
        client.infer("nope", [inp])
    client.close()


def _error_cases():
    row = [0.5] * 30
    v2 = "/v2/models/demo/infer"
    return [
        ("POST", "/api/predict", {"model": "nope", "inputs": [row]}, 404, "model 'nope' not found"),
        ("GET", "/api/model/nope", None, 404, "model 'nope' not found"),
        ("GET", "/v2/models/nope", None, 404, "model 'nope' not found"),
        ("GET", "/v2/models/nope/ready", None, 404, "model 'nope' not found"),
        ("POST", "/v2/models/nope/infer", {"inputs": []}, 404, "model 'nope' not found"),
        ("GET", "/api/model/.demo", None, 404, "model '.demo' not found: not a valid model name"),
        (
            "POST",
            "/api/predict",
            {"model": "demo", "inputs": [[1.0, 2.0]]},
            400,
            "expected 30 features per row, got 2: expected shape [n, 30]",
        ),
        ("POST", "/api/predict", {"model": "demo", "inputs": [row, row[:5]]}, 400, "rows must all have 30 numbers"),
        ("POST", "/api/predict", {"model": "demo", "inputs": [["a"] + row[1:]]}, 400, "must hold numbers"),
        (
            "POST",
            "/api/predict",
            {"model": "demo", "inputs": [[None, "x"] + row[2:]]},
            400,
            "must hold numbers (or null for missing), found str",
        ),
        ("POST", "/api/predict", {"model": "demo", "inputs": [[True] + row[1:]]}, 400, "found boolean true"),
        ("POST", "/api/predict", {"model": "demo", "inputs": []}, 400, "non-empty list of rows"),
        ("POST", "/api/predict", {"model": "demo"}, 400, "'inputs' is missing"),
        ("POST", "/api/predict", [1, 2], 400, "must be a JSON object"),
        ("POST", "/api/predict", b'{"model": "demo", "inputs": [[1,', 400, "malformed JSON"),
        ("POST", "/api/predict", {"model": "demo", "inputs": [row] * 1001}, 413, "1001 rows in one request; the limit is 1000"),
        ("GET", "/api/predict", None, 405, "use POST"),
        ("GET", "/nothing/here", None, 404, "no such endpoint"),
        (
            "POST",
            v2,
            {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "INT64", "data": row}]},
            400,
            "datatype 'INT64' is not supported; use FP32 or FP64",
        ),
        ("POST", v2, {"inputs": [{"name": "x", "shape": [6, 5], "datatype": "FP32", "data": row}]}, 400, "expected [n, 30]"),
        (
            "POST",
            v2,
            {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP32", "data": row}]},
            400,
            "holds 30 values; shape [2, 30] needs 60",
        ),
        ("POST", v2, {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP32", "data": ["a"] * 30}]}, 400, "must hold numbers"),
        ("POST", v2, {"inputs": []}, 400, "takes one input tensor of shape [n, 30], got 0"),
        ("POST", v2, {"inputs": [{"name": "x", "shape": [1001, 30], "datatype": "FP32", "data": row * 1001}]}, 413, "limit is 1000"),
    ]


@pytest.mark.parametrize("method,path,body,status,message", _error_cases(), ids=[f"{c[3]}-{c[4][:40]}" for c in _error_cases()])
def test_errors_are_json_with_the_right_status(server, method, path, body, status, message):
    got, r = server.call(method, path, body)
    assert got == status, r
    assert isinstance(r, dict) and message in r["error"] and "\n" not in r["error"]


def test_a_body_over_the_limit_is_413_before_it_is_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert "request body of 2000000 bytes; the limit is 1048576" in orjson.loads(body)["error"]


def test_metrics_count_requests_errors_and_latency_per_model(server):
    for _ in range(3):
        server.call("POST", "/api/predict", {"model": "demo", "inputs": [[0.5] * 30]})
    server.call("POST", "/api/predict", {"model": "demo", "inputs": [[0.5]]})
    deadline = time.monotonic() + 5
    while True:  # each worker writes its counts within milliseconds (metrics.FLUSH_DELAY)
        status, text = server.call("GET", "/metrics")
        assert status == 200
        lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}
        if lines.get('timber_requests_total{endpoint="predict",model="demo",status="200"}', 0) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert lines['timber_requests_total{endpoint="predict",model="demo",status="200"}'] >= 3  # both workers' counts
    assert lines['timber_errors_total{endpoint="predict",model="demo",status="400"}'] >= 1
    assert lines['timber_request_latency_seconds_count{endpoint="predict",model="demo"}'] >= 3
    assert any(k.startswith("timber_batch_rows_bucket") for k in lines)


def _predict_requests(server, name, model, n=300):
    X = _rows(model, n)
    reqs = [
        request_bytes("127.0.0.1", server.port, "/api/predict", orjson.dumps({"model": name, "inputs": _json_rows(r[None])})) for r in X
    ]
    return X, reqs


@pytest.mark.parametrize("clients", [8, 64])
def test_load_every_answer_right_and_no_errors(server, clients):
    demo = server.models["demo"]
    X, reqs = _predict_requests(server, "demo", demo)
    expected = [bits(demo.predict(r[None])) for r in X]

    def check(i, status, body):
        return np.array_equal(bits(np.array(orjson.loads(body)["outputs"], np.float32)), expected[i])

    result = load("127.0.0.1", server.port, reqs, check, clients, seconds=0.6)
    assert result.errors == 0 and result.mismatches == 0, result.first_error
    assert result.requests >= clients


def test_store_changes_are_picked_up_while_serving_and_nothing_is_dropped(server):
    """`timber load` over a served name and `timber remove` while 8 clients keep asking: each
    answer is the old model's or the new one's, none fails; afterwards new requests see the
    last change."""
    store = Store(server.home)
    demo, variant = server.models["demo"], server.models["multi"]  # both take 30 features
    X, reqs = _predict_requests(server, "swap", demo, 100)
    old = [bits(demo.predict(r[None])) for r in X]
    new = [bits(variant.predict(r[None])) for r in X]
    assert sum(not np.array_equal(a, b) for a, b in zip(old, new)) > len(X) // 2

    def check(i, status, body):
        got = bits(np.array(orjson.loads(body)["outputs"], np.float32))
        return np.array_equal(got, old[i]) or np.array_equal(got, new[i])

    art_old, art_new = to_artifact(demo), to_artifact(variant)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=load("127.0.0.1", server.port, reqs, check, 8, seconds=1.0)))
    t.start()
    for k in range(4):
        time.sleep(0.2)
        store.add("swap", art_new if k % 2 == 0 else art_old)
    t.join()
    r = result["r"]
    assert r.errors == 0 and r.mismatches == 0, r.first_error
    for _ in range(4):  # both workers: the entry now holds the old model again
        status, body = server.call("POST", "/api/predict", {"model": "swap", "inputs": _json_rows(X[:1])})
        assert status == 200 and np.array_equal(bits(np.array(body["outputs"], np.float32)), old[0])
    store.add("swap", art_new)
    for _ in range(4):
        status, body = server.call("POST", "/api/predict", {"model": "swap", "inputs": _json_rows(X[:1])})
        assert np.array_equal(bits(np.array(body["outputs"], np.float32)), new[0])
    store.remove("swap")
    for _ in range(4):
        status, body = server.call("POST", "/api/predict", {"model": "swap", "inputs": _json_rows(X[:1])})
        assert status == 404 and "model 'swap' not found" in body["error"]
    store.add("later", art_old)  # served without a restart: the server serves the whole store
    status, body = server.call("POST", "/api/predict", {"model": "later", "inputs": _json_rows(X[:1])})
    assert status == 200


def test_ctrl_c_shuts_down_cleanly(server):
    server.proc.send_signal(signal.SIGINT)
    try:
        _, err = server.proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        pytest.fail("timber serve did not stop within 30 s of Ctrl-C")
    assert server.proc.returncode == 0, err
    assert "Traceback" not in err
