"""Timing and the helper protocol shared by `tools/bench.py` and the peer scripts beside this file.

This module depends on numpy and the standard library only, because the peer scripts run inside
other virtual environments (lleaves with llvmlite 0.44, the PyPI timber-compiler, treelite) where
none of our packages is importable.

Protocol: the bench writes a job file (JSON) and the benchmark rows as `.npy` files into a work
directory, then runs `<venv>/bin/python tools/bench_peers/<peer>.py JOB.json`.  The helper times the
peer with `measure()` and writes `result.json` (see `Result`) plus `pred_<rows>.npy` with its output
on every row set, which the bench compares with the framework's own output.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Timing:
    """Median seconds per call over `reps` repetitions of `calls_per_rep` back-to-back calls."""

    seconds: float
    reps: int
    calls_per_rep: int


def measure(fn: Callable[[], object], min_time: float = 0.5, reps: int = 5, first: float | None = None) -> Timing:
    """Time `fn()` after the caller has warmed it up: repeat until at least `min_time` seconds, report the median.

    One calibration call fixes how many calls make one repetition (so that `reps` repetitions together
    take about `min_time`); very fast calls are batched because a single perf_counter pair costs about
    0.1 µs.  Calls slower than `min_time` are repeated 3 times at least, so the median is still a median.
    `first`, if given, is the duration of the caller's warm-up call: when that alone exceeds `min_time`
    it serves as the calibration call and first sample (a 100k-row batch on a 2000-tree model takes 30 s).
    """
    if first is None or first < min_time:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
    per_rep = min_time / reps
    calls = max(1, math.ceil(per_rep / max(first, 1e-9)))
    samples, total = [], 0.0
    if first >= min_time:
        # A call this slow is its own repetition: the calibration call counts, two more make a median of 3.
        reps, samples, total = min(reps, 3), [first], first
    # Keep going until both the repetition count and the time budget are met.
    while len(samples) < reps or total < min_time:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        dt = time.perf_counter() - t0
        samples.append(dt / calls)
        total += dt
        if len(samples) >= 1000:
            break
    return Timing(statistics.median(samples), len(samples), calls)


def throughput_key(rows: int, threads: int) -> str:
    """The key of one batch measurement in `Result.throughput`, e.g. '100000@1'."""
    return f"{rows}@{threads}"


@dataclass
class Result:
    """What one engine measured on one model.  Times are seconds, throughput is rows per second."""

    engine: str
    note: str = ""
    compile_s: float | None = None
    compile_label: str = "compile"
    latency_s: float | None = None
    throughput: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # Filled by the bench after comparing with the framework's output.
    max_abs_diff: float | None = None
    check: str = ""

    def to_json(self) -> dict:
        """A JSON-serialisable dict (NaN/inf-free: missing numbers are None)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Result:
        """Rebuild a Result written by `to_json` (unknown keys are ignored, so old helpers still load)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def measure_engine(
    result: Result,
    predict: Callable[[np.ndarray, int], np.ndarray],
    rows: dict[int, np.ndarray],
    single: np.ndarray,
    threads: list[int],
    min_time: float,
    reps: int,
    single_threaded: bool = False,
) -> dict[int, np.ndarray]:
    """Fill `result.latency_s` and `result.throughput` for `predict(X, threads)`; return its output per row set.

    Latency is one row (shape (1, F)) from Python on one thread.  Each batch measurement is preceded by
    a warm-up call; the warm-up output of the first thread setting is what gets checked against the
    framework, so a fast wrong answer cannot hide.  An engine without any thread control
    (`single_threaded`) is measured once per batch size and that figure is reported for every thread setting.
    """
    outputs: dict[int, np.ndarray] = {}
    predict(single, 1)
    result.latency_s = measure(lambda: predict(single, 1), min_time, reps).seconds
    for t in threads[:1] if single_threaded else threads:
        for n, X in sorted(rows.items()):
            t0 = time.perf_counter()
            out = predict(X, t)
            warm = time.perf_counter() - t0
            if n not in outputs:
                outputs[n] = np.asarray(out)
            timing = measure(lambda X=X, t=t: predict(X, t), min_time, reps, first=warm)
            result.throughput[throughput_key(n, t)] = n / timing.seconds
    if single_threaded:
        for t in threads[1:]:
            for n in rows:
                result.throughput[throughput_key(n, t)] = result.throughput[throughput_key(n, threads[0])]
    return outputs


def error_text(exc: BaseException) -> str:
    """One short line describing an exception, for the table's n/a column, with the file:line that raised it."""
    text = str(exc).strip().splitlines()
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:280] + where


def run_helper(body: Callable[[dict, Result], Callable[[np.ndarray, int], np.ndarray]], job_path: str) -> None:
    """Drive one peer helper: load the job, let `body` compile the model, then time and save predictions.

    `body(job, result)` compiles the model (filling `result.compile_s` and `result.note`) and returns
    `predict(X, threads) -> ndarray`.  Everything else (latency, batch throughput, saving outputs, and
    turning an exception into `result.error`) is done by `measure_engine` so that every engine, in this
    process or in the bench's, is measured the same way.
    """
    job = json.loads(Path(job_path).read_text())
    out_dir = Path(job["out_dir"])
    result = Result(engine=job["engine"])
    try:
        predict = body(job, result)
        rows = {int(n): np.load(p) for n, p in job["rows"].items()}
        single = np.load(job["latency_row"])
        st = bool(getattr(predict, "single_threaded", False))
        outputs = measure_engine(result, predict, rows, single, job["threads"], job["min_time"], job["reps"], st)
        for n, out in outputs.items():
            np.save(out_dir / f"pred_{n}.npy", out)
    except Exception as exc:  # noqa: BLE001 - any failure of a peer is reported, never fatal
        result.error = error_text(exc)
        (out_dir / "traceback.txt").write_text(traceback.format_exc())
    (out_dir / "result.json").write_text(json.dumps(result.to_json(), indent=1))


def cached_compile_time(stamp: Path) -> float | None:
    """The compile time recorded when an artifact was first built (None if it was never recorded)."""
    if not stamp.exists():
        return None
    return json.loads(stamp.read_text())["compile_s"]


def record_compile_time(stamp: Path, seconds: float) -> None:
    """Remember how long building a cached artifact took, so later runs can still report it."""
    stamp.write_text(json.dumps({"compile_s": seconds}))
