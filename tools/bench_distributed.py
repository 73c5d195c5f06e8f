"""Distributed scoring benchmark (issue 14): Timber's pickled `CompiledModel` on a Dask
`LocalCluster` of 2 worker processes against XGBoost's own `xgboost.dask.inplace_predict` on the
same cluster and the same rows, in the same run; plus what each worker spends getting the model
(unpickling the artifact vs compiling from the JSON) and the pickle sizes.

    python tools/bench_distributed.py                       # 10M rows, the 1000-tree model
    python tools/bench_distributed.py --rows 1000000        # quicker

The rows (float32, 100 features) are generated on the workers and persisted before timing, so
the timings are scoring only.  Each worker runs one thread (both engines get the same cores).
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


def worker_load_times(data: bytes, json_path: str) -> dict:
    """On a worker: unpickling the model cold (`timber.artifact.loads`, its cache cleared) vs `timber.compile(json)`."""
    import timber
    from timber import artifact

    artifact._JIT_CACHE.clear()
    t = time.perf_counter()
    artifact.loads(data)
    load_s = time.perf_counter() - t
    artifact._JIT_CACHE.clear()
    t = time.perf_counter()
    timber.compile(json_path)
    compile_s = time.perf_counter() - t
    return {"load_s": load_s, "compile_s": compile_s, "pid": os.getpid()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=250_000, help="rows per block (default 250000)")
    ap.add_argument("--model", default="xgb1000", help="a bench model from tools/bench_models.py (default xgb1000)")
    args = ap.parse_args()

    import dask
    import dask.array as da
    import xgboost
    import xgboost.dask  # noqa: F401
    from bench_models import MODELS, ensure_model
    from distributed import Client, LocalCluster, wait

    import timber
    import timber.artifact  # noqa: F401  (CompiledModel's pickling, until CompiledModel defines __reduce__)
    import timber.distributed as td

    bm = MODELS[args.model]
    path = ensure_model(bm)
    t = time.perf_counter()
    model = timber.compile(str(path), n_jobs=1)  # one thread per worker, as XGBoost's nthread=1
    compile_here = time.perf_counter() - t
    booster = xgboost.Booster(model_file=str(path))
    booster.set_param({"nthread": 1})
    demo = timber.compile(str(REPO / "timber" / "examples" / "breast_cancer_xgb.json"))
    sizes = {
        "demo": (len(pickle.dumps(demo)), (REPO / "timber" / "examples" / "breast_cancer_xgb.json").stat().st_size),
        args.model: (len(pickle.dumps(model)), path.stat().st_size),
    }
    data = pickle.dumps(model)  # what a worker receives

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    try:
        loads = [client.submit(worker_load_times, data, str(path), workers=[w], pure=False) for w in client.scheduler_info()["workers"]]
        load_times = client.gather(loads)

        X = da.random.RandomState(0).standard_normal((args.rows, bm.n_features), chunks=(args.chunk, bm.n_features)).astype(np.float32)
        X = X.persist()
        wait(X)

        def timed(make):
            y = make().persist()
            t0 = time.perf_counter()
            wait(y)
            return time.perf_counter() - t0, y

        # warm both engines on one block (workers import and load), then time the full runs
        td.predict_dask_array(model, X[: args.chunk]).compute()
        xgboost.dask.inplace_predict(client, booster, X[: args.chunk]).compute()
        t_timber, y_timber = timed(lambda: td.predict_dask_array(model, X))
        t_xgb, y_xgb = timed(lambda: xgboost.dask.inplace_predict(client, booster, X))
        first = np.asarray(y_timber[: args.chunk].compute())
        ref = np.asarray(y_xgb[: args.chunk].compute())
        diff = float(np.max(np.abs(first.astype(np.float64) - ref))) if len(ref) else 0.0
        del y_timber, y_xgb
    finally:
        client.close()
        cluster.close()

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"software: dask {dask.__version__}, xgboost {xgboost.__version__}, timber git {_git()}")
    print(
        f"cluster: LocalCluster(n_workers=2, threads_per_worker=1, processes=True); {args.rows:,} float32 rows x {bm.n_features}, blocks of {args.chunk:,}\n"
    )
    print("| engine | seconds | rows/s | vs XGBoost |")
    print("|---|---|---|---|")
    print(f"| timber (timber.distributed.predict_dask_array) | {t_timber:.2f} | {args.rows / t_timber:,.0f} | {t_xgb / t_timber:.2f}x |")
    print(f"| xgboost.dask.inplace_predict | {t_xgb:.2f} | {args.rows / t_xgb:,.0f} | 1x |")
    print(f"\nmax |timber - xgboost| on the first block: {diff:.3g}" + (" (exact)" if diff == 0 else ""))
    print("\nmodel on each worker: load the pickled artifact vs compile from the JSON")
    for r in load_times:
        print(
            f"  worker pid {r['pid']}: load {r['load_s'] * 1e3:.1f} ms, compile {r['compile_s']:.2f} s: load = {r['load_s'] / r['compile_s']:.1%} of compile"
        )
    print(f"  (compile in the driver: {compile_here:.2f} s)")
    print("\npickle sizes: " + ", ".join(f"{k}: {p / 1e6:.3f} MB (model file {f / 1e6:.2f} MB)" for k, (p, f) in sizes.items()))
    ratio = t_xgb / t_timber
    worst = max(r["load_s"] / r["compile_s"] for r in load_times)
    print(
        f"\ngoals (issue 14): >= 3x XGBoost's Dask throughput: {ratio:.2f}x {'met' if ratio >= 3 else 'NOT met'}; "
        f"load <= 5% of recompile: {worst:.1%} {'met' if worst <= 0.05 else 'NOT met'}"
    )
    return 0


def _git() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
