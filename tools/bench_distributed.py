"""Distributed scoring benchmark (issue 14): Timber's pickled `CompiledModel` on a Dask
`LocalCluster` of 2 worker processes against XGBoost's own `xgboost.dask.inplace_predict` on the
same cluster, the same persisted rows and the same partitions, in the same run; plus what each
worker spends getting the model (unpickling the artifact vs compiling from the JSON) and the
pickle sizes.

    python tools/bench_distributed.py                       # 10M rows, the 1000-tree model
    python tools/bench_distributed.py --rows 1000000        # quicker
    (from Python: `bench_distributed.main(["--rows", "1000000"])`, or `run(...)` for the numbers)

The rows (float32, the model's features) are generated on the workers and persisted before
timing, and the results stay on the workers, so a timing is graph submission plus scoring.
Both engines run with their defaults on workers of one thread each: Dask's nanny sets
`OMP_NUM_THREADS=1`, which XGBoost's OpenMP threads and `timber.distributed.task_n_jobs` both
follow.  The engines alternate over `--rounds` rounds (the machine may be shared: each round's
ratio is reported), and besides wall-clock rows/s the table gives rows per worker-process CPU
second, which other processes on the machine disturb much less.  Every row's outputs are
compared between the engines.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

ENGINES = ("timber", "xgboost")


def worker_load_times(data: bytes, json_path: str, repeat: int = 3) -> dict:
    """On a worker: unpickling the model (`timber.artifact.loads` with its cache cleared: the
    object code loaded into a new JIT) vs `timber.compile(json)`.  The first load in the fresh
    process (imports of the JIT's modules included) is reported apart; `load_s` is the best of
    `repeat` later ones, each as wall-clock and this thread's CPU time."""
    import timber
    from timber import artifact

    def timed(fn):
        artifact._JIT_CACHE.clear()
        t, c = time.perf_counter(), time.thread_time()
        fn()
        return time.perf_counter() - t, time.thread_time() - c

    first_s, _ = timed(lambda: artifact.loads(data))
    load_s, load_cpu_s = min(timed(lambda: artifact.loads(data)) for _ in range(repeat))
    compile_s, compile_cpu_s = timed(lambda: timber.compile(json_path))
    artifact._JIT_CACHE.clear()
    return {
        "first_load_s": first_s,
        "load_s": load_s,
        "load_cpu_s": load_cpu_s,
        "compile_s": compile_s,
        "compile_cpu_s": compile_cpu_s,
        "pid": os.getpid(),
    }


def _load(data: bytes) -> None:
    from timber import artifact

    artifact.loads(data)


def _cpu_seconds() -> float:
    return time.process_time()


def run(rows: int = 10_000_000, chunk: int = 100_000, model: str = "xgb1000", rounds: int = 2, workers: int = 2) -> dict:
    """Start the cluster, measure, stop it; the numbers as a dict (see `report`)."""
    import dask
    import dask.array as da
    import xgboost
    import xgboost.dask  # noqa: F401
    from bench_models import MODELS, ensure_model
    from distributed import Client, LocalCluster, get_task_stream, wait

    import timber
    import timber.distributed as td

    bm = MODELS[model]
    path = ensure_model(bm)
    t = time.perf_counter()
    compiled = timber.compile(str(path))  # defaults: the Dask helpers pick threads per task
    compile_here = time.perf_counter() - t
    booster = xgboost.Booster(model_file=str(path))  # defaults: nthread follows OMP_NUM_THREADS
    demo_path = REPO / "timber" / "examples" / "breast_cancer_xgb.json"
    data = pickle.dumps(compiled)  # what a worker receives
    sizes = {
        "demo": (len(pickle.dumps(timber.compile(str(demo_path)))), demo_path.stat().st_size),
        model: (len(data), path.stat().st_size),
    }

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    runs: list[dict] = []
    try:
        addresses = list(client.scheduler_info()["workers"])
        load_times = client.gather([client.submit(worker_load_times, data, str(path), workers=[w], pure=False) for w in addresses])

        X = da.random.RandomState(0).standard_normal((rows, bm.n_features), chunks=(chunk, bm.n_features)).astype(np.float32)
        X = X.persist()
        wait(X)
        graphs = {
            "timber": lambda: td.predict_dask_array(compiled, X),
            "xgboost": lambda: xgboost.dask.inplace_predict(client, booster, X),
        }
        # warm both engines on every worker (imports, the model loaded once per process)
        client.run(_load, data)
        warm = X[: min(rows, 2 * workers * chunk)]
        td.predict_dask_array(compiled, warm).compute()
        xgboost.dask.inplace_predict(client, booster, warm).compute()

        results = {}
        for r in range(rounds):
            for name in ENGINES if r % 2 == 0 else ENGINES[::-1]:
                results.pop(name, None)
                cpu0 = client.run(_cpu_seconds)
                with get_task_stream(client) as ts:
                    t0 = time.perf_counter()
                    y = graphs[name]().persist()
                    wait(y)
                    wall = time.perf_counter() - t0
                cpu1 = client.run(_cpu_seconds)
                moved = sum(s["stop"] - s["start"] for task in ts.data for s in task["startstops"] if s["action"] != "compute")
                runs.append({"round": r, "engine": name, "wall_s": wall, "cpu_s": sum(cpu1[w] - cpu0[w] for w in cpu0), "moved_s": moved})
                results[name] = y
            if r == 0:
                yt, yx = results["timber"], results["xgboost"]
                diff = float(da.max(da.abs(yt.astype(np.float64) - yx.astype(np.float64))).compute())
                unequal = int((yt != yx).sum().compute())
                del yt, yx  # a later round must compute its graph, not find it persisted
        results.clear()
    finally:
        client.close()
        cluster.close()

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
    return {
        "rows": rows,
        "chunk": chunk,
        "features": bm.n_features,
        "model": model,
        "workers": workers,
        "runs": runs,
        "max_abs_diff": diff,
        "unequal": unequal,
        "load_times": load_times,
        "compile_driver_s": compile_here,
        "sizes": sizes,
        "machine": f"{cpu}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f} at the end",
        "software": f"dask {dask.__version__}, xgboost {xgboost.__version__}, timber git {_git()}",
    }


def report(res: dict) -> str:
    """`run`'s numbers as the README's Markdown (table, checks, goal lines)."""
    rows, runs = res["rows"], res["runs"]
    out = [
        f"machine: {res['machine']}",
        f"software: {res['software']}",
        f"cluster: LocalCluster(n_workers={res['workers']}, threads_per_worker=1, processes=True); model {res['model']}; "
        f"{rows:,} float32 rows x {res['features']} in blocks of {res['chunk']:,} rows, persisted on the workers",
        "",
        "| round | engine | seconds | rows/s | rows per worker CPU-second | transfer + deserialize (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        out.append(
            f"| {r['round'] + 1} | {r['engine']} | {r['wall_s']:.2f} | {rows / r['wall_s']:,.0f} | {rows / r['cpu_s']:,.0f} | {r['moved_s']:.2f} |"
        )
    by_round: dict[int, dict] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["engine"]] = r
    walls = [d["xgboost"]["wall_s"] / d["timber"]["wall_s"] for d in by_round.values()]
    cpus = [d["xgboost"]["cpu_s"] / d["timber"]["cpu_s"] for d in by_round.values()]
    best = {e: min(r["wall_s"] for r in runs if r["engine"] == e) for e in ENGINES}
    out += [
        "",
        f"Timber / XGBoost, wall-clock rows/s per round: {_range(walls)}; per worker CPU-second: {_range(cpus)}; "
        f"best runs: Timber {rows / best['timber']:,.0f} rows/s, XGBoost {rows / best['xgboost']:,.0f} rows/s",
        f"outputs: {res['unequal']} of {rows:,} differ, max |timber - xgboost| = {res['max_abs_diff']:.3g}",
        "",
        "model on each worker: load the pickled artifact vs compile from the JSON",
    ]
    for r in res["load_times"]:
        out.append(
            f"  worker pid {r['pid']}: load {r['load_s'] * 1e3:.0f} ms ({r['load_cpu_s'] * 1e3:.0f} ms CPU), "
            f"compile {r['compile_s']:.2f} s ({r['compile_cpu_s']:.2f} s CPU): load = {r['load_s'] / r['compile_s']:.1%} of compile "
            f"({r['load_cpu_s'] / r['compile_cpu_s']:.1%} in CPU time); the process's first load, imports included: {r['first_load_s'] * 1e3:.0f} ms"
        )
    out.append(f"  (compile in the driver: {res['compile_driver_s']:.2f} s)")
    out.append("pickle sizes: " + ", ".join(f"{k}: {p / 1e6:.3f} MB (model file {f / 1e6:.2f} MB)" for k, (p, f) in res["sizes"].items()))
    ratio = min(walls)
    worst = max(r["load_s"] / r["compile_s"] for r in res["load_times"])
    worst_cpu = max(r["load_cpu_s"] / r["compile_cpu_s"] for r in res["load_times"])
    out.append(
        f"\ngoals (issue 14): >= 3x XGBoost's Dask throughput: {_range(walls)} wall-clock {'met' if ratio >= 3 else 'NOT met'} "
        f"(per CPU-second {_range(cpus)}); load <= 5% of recompile: {worst:.1%} wall-clock, {worst_cpu:.1%} CPU "
        f"{'met' if worst <= 0.05 else 'NOT met'}"
    )
    return "\n".join(out)


def _range(xs: list[float]) -> str:
    lo, hi = min(xs), max(xs)
    return f"{lo:.2f}x" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=100_000, help="rows per block (default 100000)")
    ap.add_argument("--model", default="xgb1000", help="an XGBoost bench model from tools/bench_models.py (default xgb1000)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of both engines (default 2)")
    args = ap.parse_args(argv)
    print(report(run(args.rows, args.chunk, args.model, args.rounds)))
    return 0


def _git() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
