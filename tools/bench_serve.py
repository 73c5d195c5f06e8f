"""Benchmark `timber serve` under load, against the original timber-compiler's server in the
same run.

    python tools/bench_serve.py                      # Timber (uvicorn, 2 workers) vs timber-compiler
    python tools/bench_serve.py --servers uvicorn,granian,hypercorn --no-peer   # choose a server

For each server: requests/s and p50/p99 latency of single-row `POST /api/predict` at 1, 8 and
64 concurrent keep-alive clients, and rows/s of 1000-row requests at 8 clients, on the demo
model.  Every answer is checked against `timber.compile(demo).predict` (a server whose answers
differ is reported, not hidden).  The load generator (`timber/server/loadgen.py`) runs in this
process and shares the machine with the server, as any client on the same host would.

The original timber-compiler (PyPI) installs a package also named `timber`, so it runs from its
own virtualenv under ~/.cache/timber-bench/venvs/timber-compiler (created on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import timber  # noqa: E402
from timber.artifact import to_artifact  # noqa: E402
from timber.server.loadgen import load, request_bytes  # noqa: E402
from timber.store import Store  # noqa: E402

DEMO = REPO / "timber" / "examples" / "breast_cancer_xgb.json"
CACHE = Path(os.environ.get("TIMBER_BENCH_CACHE", Path.home() / ".cache" / "timber-bench"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready in time")


def start_timber(home: Path, server: str, workers: int, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TIMBER_HOME": str(home)}
    cmd = [sys.executable, "-m", "timber.cli", "serve", "--port", str(port), "--workers", str(workers), "--server", server]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def constant_app(scope, receive, send):
    """The ASGI server's ceiling: an app that answers every request with one fixed body."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"model":"demo","outputs":[0.5],"latency_us":1.0}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def start_constant(workers: int, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tools")}
    cmd = [sys.executable, "-m", "uvicorn", "bench_serve:constant_app", "--port", str(port), "--workers", str(workers)]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def peer_python() -> Path:
    root = CACHE / "venvs" / "timber-compiler"
    python = root / "bin" / "python"
    if not python.exists():
        print(f"creating {root}: pip install timber-compiler ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "timber-compiler"], check=True)
    return python


def start_peer(home: Path, port: int) -> subprocess.Popen:
    python = peer_python()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TIMBER_HOME": str(home)}
    env.pop("PYTHONPATH", None)
    cmd = [str(python), "-m", "timber.cli", "serve", str(DEMO), "--name", "demo", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("TIMBER_BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "/api/predict", nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TIMBER_WRK %d %d %d %d %d %d %d %f %f\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_run(port: int, bodies: list[bytes], clients: int, seconds: float, tmp: Path) -> dict:
    """Requests/s and latency percentiles measured by wrk (C: it leaves the CPU to the server)."""
    script, lines = tmp / "bench.lua", tmp / "bodies.jsonl"
    script.write_text(WRK_SCRIPT)
    lines.write_bytes(b"\n".join(bodies) + b"\n")
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"]
    env = {**os.environ, "TIMBER_BENCH_BODIES": str(lines)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("TIMBER_WRK"))
    n, us, c, r, w, st, to, p50, p99 = line.split()[1:]
    errors = int(c) + int(r) + int(w) + int(st) + int(to)
    return {"requests": int(n), "rps": int(n) / (int(us) / 1e6), "p50_ms": float(p50) / 1e3, "p99_ms": float(p99) / 1e3, "errors": errors}


def scenarios(port: int, model, X: np.ndarray, args, tmp: Path) -> list[dict]:
    """Single-row requests at each client count, then 1000-row requests at 8 clients: rates and
    latencies from wrk when it is installed (else from the Python load generator), and every
    answer of a separate checking pass compared with the compiled model."""
    rows = [[float(v) for v in r] for r in X]
    bodies = [orjson.dumps({"model": "demo", "inputs": [r]}) for r in rows]
    singles = [request_bytes("127.0.0.1", port, "/api/predict", b) for b in bodies]
    expected = [model.predict(np.array(r, np.float64)[None]).view(np.uint32) for r in rows]

    def check_single(i, status, body):
        return np.array_equal(np.array(orjson.loads(body)["outputs"], np.float32).view(np.uint32), expected[i])

    batch = args.batch_rows
    starts = range(0, len(rows) - batch + 1, batch)
    big_bodies = [orjson.dumps({"model": "demo", "inputs": rows[i : i + batch]}) for i in starts]
    big = [request_bytes("127.0.0.1", port, "/api/predict", b) for b in big_bodies]
    big_expected = [model.predict(X[i : i + batch]).view(np.uint32) for i in starts]

    def check_big(i, status, body):
        return np.array_equal(np.array(orjson.loads(body)["outputs"], np.float32).view(np.uint32), big_expected[i])

    use_wrk = shutil.which("wrk") is not None and not args.python_client
    out = []
    load("127.0.0.1", port, singles, None, 8, seconds=1.0)  # warm-up
    cases = [(f"1 row, {c} clients", c, 1, singles, bodies, check_single) for c in args.clients]
    cases.append((f"{batch} rows, 8 clients", 8, batch, big, big_bodies, check_big))
    for name, clients, n_rows, reqs, raw, check in cases:
        checked = load("127.0.0.1", port, reqs, check, clients, seconds=min(1.0, args.seconds))
        if use_wrk:
            r = wrk_run(port, raw, clients, args.seconds, tmp)
        else:
            res = load("127.0.0.1", port, reqs, None, clients, seconds=args.seconds)
            r = {"requests": res.requests, "rps": res.rps, "p50_ms": res.percentile(50) * 1e3, "p99_ms": res.percentile(99) * 1e3}
            r["errors"] = res.errors
        r.update(case=name, clients=clients, rows=n_rows, rows_per_s=r["rps"] * n_rows, checked=checked.requests)
        r.update(errors=r["errors"] + checked.errors, wrong=checked.mismatches, first_error=checked.first_error)
        out.append(r)
        print(
            f"  {name}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['errors']} errors, "
            f"{r['wrong']} of {r['checked']} checked answers differ",
            file=sys.stderr,
        )
    return out


def fmt_rate(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="uvicorn", help="Timber's ASGI servers to measure, comma-separated (uvicorn, granian, hypercorn)")
    ap.add_argument("--workers", default="2", help="worker counts to measure, comma-separated (default 2)")
    ap.add_argument("--clients", default="1,8,64", help="concurrent clients for single-row requests (default 1,8,64)")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement (default 5)")
    ap.add_argument("--batch-rows", type=int, default=1000, help="rows per request in the batch case (default 1000)")
    ap.add_argument("--no-peer", action="store_true", help="skip the original timber-compiler's server")
    ap.add_argument("--baseline", action="store_true", help="also measure uvicorn answering a constant (no parsing, no model)")
    ap.add_argument("--python-client", action="store_true", help="measure with the Python load generator even when wrk is installed")
    ap.add_argument("--json", help="write the results as JSON")
    args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]

    model = timber.compile(str(DEMO))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, model.n_features)) * 10 + 10  # demo features are positive measurements
    X[rng.random(X.shape) < 0.02] = 0.0
    results = {}
    with tempfile.TemporaryDirectory(prefix="timber-bench-serve-") as tmp:
        home = Path(tmp) / "home"
        Store(home).add("demo", to_artifact(model, source=DEMO))
        runs = [(f"timber ({s}, {w} workers)", "timber", s, int(w)) for s in args.servers.split(",") for w in args.workers.split(",")]
        if args.baseline:
            runs += [
                (f"constant answer (uvicorn, {w} workers): the server's ceiling", "constant", None, int(w)) for w in args.workers.split(",")
            ]
        if not args.no_peer:
            runs.append(("timber-compiler (original)", "peer", None, 1))
        for label, kind, server, workers in runs:
            port = free_port()
            print(f"{label}: starting on port {port}", file=sys.stderr)
            t0 = time.perf_counter()
            if kind == "timber":
                proc = start_timber(home, server, workers, port)
            elif kind == "constant":
                proc = start_constant(workers, port)
            else:
                proc = start_peer(Path(tmp) / "peer-home", port)
            try:
                wait_ready(port, proc)
                start = time.perf_counter() - t0
                results[label] = {"start_s": start, "cases": scenarios(port, model, X, args, Path(tmp))}
            except RuntimeError as e:
                err = proc.stderr.read().decode(errors="replace")[-500:] if proc.poll() is not None else ""
                results[label] = {"error": f"{e} {err}"}
                print(f"  {label}: {e} {err}", file=sys.stderr)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    cpu = _cpu()
    load_avg = os.getloadavg()
    print(
        f"\nmachine: {cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, load average {load_avg[0]:.2f} at the end"
    )
    client = "wrk -t1 (one client thread)" if shutil.which("wrk") and not args.python_client else "the Python load generator"
    print(f"method: demo model, {args.seconds:g} s per case measured by {client}, keep-alive connections, on the same machine;")
    print("every answer of a separate 1 s pass at the same concurrency compared bit for bit with timber.compile(demo).predict\n")
    cases = [c["case"] for r in results.values() if "cases" in r for c in r["cases"]]
    cases = list(dict.fromkeys(cases))
    print("| server | start | " + " | ".join(cases) + " |")
    print("|---|---|" + "---|" * len(cases))
    for label, r in results.items():
        if "error" in r:
            print(f"| {label} | failed: {r['error'][:80]} |")
            continue
        cells = []
        for c in r["cases"]:
            rate = f"{fmt_rate(c['rows_per_s'])} rows/s" if c["rows"] > 1 else f"{fmt_rate(c['rps'])} req/s"
            bad = f", {c['errors']} errors" if c["errors"] else ""
            bad += f", {c['wrong']} of {c['checked']} answers differ" if c["wrong"] else ""
            cells.append(f"{rate}, p50 {c['p50_ms']:.2f} ms, p99 {c['p99_ms']:.2f} ms{bad}")
        print(f"| {label} | {r['start_s']:.1f} s | " + " | ".join(cells) + " |")
    peer = results.get("timber-compiler (original)", {})
    default = "timber (uvicorn, 2 workers)"
    ours = (
        results.get(default)
        if "cases" in results.get(default, {})
        else next((r for k, r in results.items() if k.startswith("timber (") and "cases" in r), None)
    )
    if ours and "cases" in peer:
        o8 = next(c for c in ours["cases"] if c["case"] == "1 row, 8 clients")
        p8 = next(c for c in peer["cases"] if c["case"] == "1 row, 8 clients")
        ratio = o8["rps"] / p8["rps"]
        met = ratio >= 5 and o8["p99_ms"] < 10
        print(
            f"\ngoal (issue 13): >= 5x the original's requests/s at 8 clients with p99 < 10 ms: {ratio:.1f}x, p99 {o8['p99_ms']:.2f} ms: {'met' if met else 'NOT met'}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": cpu, "results": results}, indent=2))
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
