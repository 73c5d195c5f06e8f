"""Benchmark `timber serve` under load, against the original timber-compiler's server in the
same run.

    python tools/bench_serve.py                      # Timber (granian and uvicorn, 2 workers) vs timber-compiler
    python tools/bench_serve.py --servers granian --workers 1,2,3 --no-peer   # choose a configuration

Cases: requests/s and p50/p99 latency of single-row `POST /api/predict` at 1, 8 and 64
concurrent keep-alive clients, and rows/s of 1000-row requests at 8 clients, on the demo model.
Every answer of a separate checking pass is compared with `timber.compile(demo).predict` (a
server whose answers differ is reported, not hidden).

The machine is shared and its load changes from second to second, so every server runs at once
(an idle server costs nothing) and each case is measured in `--rounds` rounds, every round
visiting every server in turn (alternating the order): a server's figure is the median of its
rounds with their range, and the ratio to the original is taken round by round (each pair
measured seconds apart), then its median and range reported.  Rates come from `wrk` (C, one
thread) when installed, else from the Python load generator (`timber/server/loadgen.py`); either
runs on the same machine as the servers and costs both sides alike.

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


BODY = b'{"model":"demo","outputs":[0.5],"latency_us":1.0}'


async def constant_app(scope, receive, send):
    """The ASGI server's ceiling: an app that answers every request with one fixed body."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def constant_rsgi(scope, protocol):
    """granian's RSGI ceiling: the same fixed answer."""
    await protocol()
    protocol.response_bytes(200, [("content-type", "application/json")], BODY)


def start_constant(server: str, workers: int, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tools")}
    if server == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "rsgi", "--port", str(port), "--workers", str(workers)]
        cmd += ["--log-level", "warning", "bench_serve:constant_rsgi"]
    else:
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
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 30).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("TIMBER_WRK"))
    except (subprocess.TimeoutExpired, StopIteration):  # e.g. connections stuck in a full listen backlog
        return {"requests": 0, "rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": clients, "failed": True}
    n, us, c, r, w, st, to, p50, p99 = line.split()[1:]
    errors = int(c) + int(r) + int(w) + int(st) + int(to)
    return {"requests": int(n), "rps": int(n) / (int(us) / 1e6), "p50_ms": float(p50) / 1e3, "p99_ms": float(p99) / 1e3, "errors": errors}


def cases(model, X: np.ndarray, args) -> list[dict]:
    """Single-row requests at each client count and `--batch-rows`-row requests at 8 clients:
    the bodies and, per body, the bits every answer must have."""
    rows = [[float(v) for v in r] for r in X]
    bodies = [orjson.dumps({"model": "demo", "inputs": [r]}) for r in rows]
    expected = [model.predict(np.array(r, np.float64)[None]).view(np.uint32) for r in rows]
    batch = args.batch_rows
    starts = range(0, len(rows) - batch + 1, batch)
    big_bodies = [orjson.dumps({"model": "demo", "inputs": rows[i : i + batch]}) for i in starts]
    big_expected = [model.predict(X[i : i + batch]).view(np.uint32) for i in starts]
    singles = [dict(case=f"1 row, {c} clients", clients=c, rows=1, bodies=bodies, expected=expected) for c in args.clients]
    big = dict(case=f"{batch} rows, 8 clients", clients=8, rows=batch, bodies=big_bodies, expected=big_expected)
    # the batch case before the floods of more than 8 clients: the original's server (a listen
    # backlog of 5) can stay stuck after one and would fail every later case
    return [c for c in singles if c["clients"] <= 8] + [big] + [c for c in singles if c["clients"] > 8]


def checked_pass(port: int, case: dict, seconds: float):
    """The Python load generator at the case's concurrency, every answer compared bit for bit."""
    reqs = [request_bytes("127.0.0.1", port, "/api/predict", b) for b in case["bodies"]]
    expected = case["expected"]

    def check(i, status, body):
        return np.array_equal(np.array(orjson.loads(body)["outputs"], np.float32).view(np.uint32), expected[i])

    return load("127.0.0.1", port, reqs, check, case["clients"], seconds=seconds)


def measure(port: int, case: dict, seconds: float, use_wrk: bool, tmp: Path) -> dict:
    """One timed run: requests/s, p50/p99 latency (ms) and errors."""
    if use_wrk:
        return wrk_run(port, case["bodies"], case["clients"], seconds, tmp)
    reqs = [request_bytes("127.0.0.1", port, "/api/predict", b) for b in case["bodies"]]
    res = load("127.0.0.1", port, reqs, None, case["clients"], seconds=seconds)
    return {
        "requests": res.requests,
        "rps": res.rps,
        "p50_ms": res.percentile(50) * 1e3,
        "p99_ms": res.percentile(99) * 1e3,
        "errors": res.errors,
    }


def run_cases(ports: dict, model, X: np.ndarray, args, tmp: Path) -> dict:
    """Every case on every server (label -> port), interleaved in rounds.  Returns label ->
    list of per-case results (with the per-round figures under "rounds")."""
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    labels = list(ports)
    results = {label: [] for label in labels}
    all_cases = cases(model, X, args)
    for label in labels:  # warm-up
        checked_pass(ports[label], all_cases[0], 0.5)
    for case in all_cases:
        checked = {label: checked_pass(ports[label], case, min(1.0, args.seconds)) for label in labels}
        rounds = {label: [] for label in labels}
        for r in range(args.rounds):
            for label in labels if r % 2 == 0 else labels[::-1]:
                rounds[label].append(measure(ports[label], case, args.seconds, use_wrk, tmp))
        for label in labels:
            rs, chk = rounds[label], checked[label]
            rps = [x["rps"] for x in rs]
            res = {
                "case": case["case"],
                "clients": case["clients"],
                "rows": case["rows"],
                "rps": float(np.median(rps)),
                "rps_range": [min(rps), max(rps)],
                "rows_per_s": float(np.median(rps)) * case["rows"],
                "p50_ms": _median_of_finished([x["p50_ms"] for x in rs]),
                "p99_ms": _median_of_finished([x["p99_ms"] for x in rs]),
                "failed_rounds": sum(1 for x in rs if x.get("failed")),
                "errors": sum(x["errors"] for x in rs) + chk.errors,
                "wrong": chk.mismatches,
                "checked": chk.requests,
                "first_error": chk.first_error,
                "rounds": rs,
            }
            results[label].append(res)
            print(
                f"  {label}, {case['case']}: {res['rps']:,.0f} req/s ({min(rps):,.0f}-{max(rps):,.0f}), p50 {res['p50_ms']:.2f} ms, "
                f"p99 {res['p99_ms']:.2f} ms, {res['errors']} errors, {res['wrong']} of {res['checked']} checked answers differ",
                file=sys.stderr,
            )
    return results


def _median_of_finished(values: list) -> float:
    """The median over the rounds that finished (a round wrk could not finish has no latency)."""
    done = [v for v in values if v == v]
    return float(np.median(done)) if done else float("nan")


def fmt_rate(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


PEER = "timber-compiler (original)"
DEFAULT = "timber (granian, 2 workers)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--servers", default="granian,uvicorn", help="Timber's HTTP servers to measure, comma-separated (granian, uvicorn, hypercorn)"
    )
    ap.add_argument("--workers", default="2", help="worker counts to measure, comma-separated (default 2)")
    ap.add_argument("--clients", default="1,8,64", help="concurrent clients for single-row requests (default 1,8,64)")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case (default 3)")
    ap.add_argument("--batch-rows", type=int, default=1000, help="rows per request in the batch case (default 1000)")
    ap.add_argument("--no-peer", action="store_true", help="skip the original timber-compiler's server")
    ap.add_argument("--baseline", action="store_true", help="also measure granian and uvicorn answering a constant (no parsing, no model)")
    ap.add_argument("--python-client", action="store_true", help="measure with the Python load generator even when wrk is installed")
    ap.add_argument("--json", help="write the results as JSON")
    args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]

    model = timber.compile(str(DEMO))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, model.n_features)) * 10 + 10  # demo features are positive measurements
    X[rng.random(X.shape) < 0.02] = 0.0
    workers = [int(w) for w in args.workers.split(",")]
    runs = [(f"timber ({s}, {w} worker{'s' if w > 1 else ''})", "timber", s, w) for s in args.servers.split(",") for w in workers]
    if args.baseline:
        runs += [
            (f"constant answer ({s}, {w} workers): the server's ceiling", "constant", s, w)
            for s in ("granian", "uvicorn")
            for w in workers[-1:]
        ]
    if not args.no_peer:
        runs.append((PEER, "peer", None, 1))
    procs, ports, starts, failed = {}, {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="timber-bench-serve-") as tmp:
        home = Path(tmp) / "home"
        Store(home).add("demo", to_artifact(model, source=DEMO))
        try:
            for label, kind, server, w in runs:
                port = free_port()
                print(f"{label}: starting on port {port}", file=sys.stderr)
                t0 = time.perf_counter()
                if kind == "timber":
                    proc = start_timber(home, server, w, port)
                elif kind == "constant":
                    proc = start_constant(server, w, port)
                else:
                    proc = start_peer(Path(tmp) / "peer-home", port)
                procs[label] = proc
                try:
                    wait_ready(port, proc)
                    starts[label], ports[label] = time.perf_counter() - t0, port
                except RuntimeError as e:
                    err = proc.stderr.read().decode(errors="replace")[-500:] if proc.poll() is not None else ""
                    failed[label] = f"{e} {err}"
                    print(f"  {label}: {e} {err}", file=sys.stderr)
            results = run_cases(ports, model, X, args, Path(tmp))
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
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
    print(
        f"method: demo model, all servers up at once, each case {args.rounds} interleaved rounds of {args.seconds:g} s per server measured by {client}, "
        "keep-alive connections, on the same machine; median (range) of the rounds; every answer of a separate 1 s pass at the same "
        "concurrency compared bit for bit with timber.compile(demo).predict\n"
    )
    names = list(dict.fromkeys(c["case"] for r in results.values() for c in r))
    print("| server | start | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for label, _, _, _ in runs:
        if label in failed:
            print(f"| {label} | failed: {failed[label][:80]} |")
            continue
        cells = []
        for c in results[label]:
            lo, hi = (v * c["rows"] for v in c["rps_range"])
            unit = "rows/s" if c["rows"] > 1 else "req/s"
            bad = f", {c['errors']} errors" if c["errors"] else ""
            bad += f", {c['failed_rounds']} of {args.rounds} rounds did not finish" if c["failed_rounds"] else ""
            bad += f", {c['wrong']} of {c['checked']} answers differ" if c["wrong"] else ""
            cells.append(
                f"{fmt_rate(c['rows_per_s'])} {unit} ({fmt_rate(lo)}-{fmt_rate(hi)}), p50 {c['p50_ms']:.2f} ms, p99 {c['p99_ms']:.2f} ms{bad}"
            )
        print(f"| {label} | {starts[label]:.1f} s | " + " | ".join(cells) + " |")
    ours = DEFAULT if DEFAULT in results else next((k for k in results if k.startswith("timber (")), None)
    if ours and PEER in results:
        o8 = next(c for c in results[ours] if c["case"] == "1 row, 8 clients")
        p8 = next(c for c in results[PEER] if c["case"] == "1 row, 8 clients")
        ratios = [a["rps"] / b["rps"] for a, b in zip(o8["rounds"], p8["rounds"])]
        ratio = float(np.median(ratios))
        met = ratio >= 5 and o8["p99_ms"] < 10
        print(
            f"\ngoal (issue 13): >= 5x the original's requests/s at 8 clients with p99 < 10 ms: {ours}: {ratio:.1f}x "
            f"(rounds {min(ratios):.1f}-{max(ratios):.1f}x), p99 {o8['p99_ms']:.2f} ms: {'met' if met else 'NOT met'}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": cpu, "load_average": load_avg, "results": results, "failed": failed}, indent=2))
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
