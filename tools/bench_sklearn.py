"""Timber next to ONNX Runtime on scikit-learn models with 50 features, one thread each.

    python tools/bench_sklearn.py                          # SVC(rbf, probability), MLP, KNN, LogisticRegression
    python tools/bench_sklearn.py --models svc,knn --rows 1000 --repeat 3
    python tools/bench_sklearn.py --clock cpu              # process CPU time: steadier on a shared machine

For every model it prints Timber's compile time, then for Timber (`timber.compile(est, n_jobs=1)`)
and ONNX Runtime (the skl2onnx conversion, `intra_op_num_threads=1`): rows/s on batches of 1k and
100k rows, single-row latency from Python, how many times faster Timber is (`vs`: Timber's rows/s
over ONNX Runtime's, ONNX Runtime's latency over Timber's), and each engine's largest absolute
difference from scikit-learn's own output on the benchmark rows.  ONNX Runtime is given float32
rows (what skl2onnx's converters compute in); Timber float64, as scikit-learn.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_models(names: list[str]):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    X, y = make_classification(1000, 50, n_informative=20, n_classes=3, random_state=0)
    makers = {
        "svc": lambda: SVC(kernel="rbf", probability=True, random_state=0),
        "mlp": lambda: MLPClassifier((100,), max_iter=200, random_state=0),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5),
        "logreg": lambda: LogisticRegression(max_iter=1000),
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in names:
            out[n] = makers[n]().fit(X, y)
    return out, X


CLOCK = time.perf_counter


def best_rate(fn, X: np.ndarray, repeat: int) -> float:
    fn(X[: min(len(X), 64)])  # warm up
    times = []
    for _ in range(repeat):
        t = CLOCK()
        fn(X)
        times.append(CLOCK() - t)
    return len(X) / max(min(times), 1e-9)


def latency(fn, row: np.ndarray, n: int = 2000) -> float:
    for _ in range(50):
        fn(row)
    times = []
    for _ in range(5):
        t = CLOCK()
        for _ in range(n // 5):
            fn(row)
        times.append((CLOCK() - t) / (n // 5))
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="svc,mlp,knn,logreg")
    ap.add_argument("--rows", default="1000,100000", help="batch sizes (comma separated)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per batch size (the best is kept)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time, or this process's CPU time")
    a = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter

    import onnxruntime as ort
    from skl2onnx import to_onnx

    import timber

    names = a.models.split(",")
    sizes = [int(s) for s in a.rows.split(",")]
    print(f"CPU: {cpu_model()}; one thread per engine; {a.clock} clock; Python {platform.python_version()}, onnxruntime {ort.__version__}")
    models, Xtrain = make_models(names)
    rng = np.random.default_rng(1)
    Xbig = rng.standard_normal((max(sizes), Xtrain.shape[1])) * Xtrain.std(axis=0) + Xtrain.mean(axis=0)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    header = f"{'model':8} {'engine':12} {'compile s':>9} " + " ".join(f"{f'rows/s {n}':>15} {'vs':>6}" for n in sizes)
    print(header + f" {'1 row µs':>10} {'vs':>6} {'max |err|':>10}")
    for name, est in models.items():
        method = "predict_proba"
        t = time.perf_counter()
        tm = timber.compile(est, n_jobs=1)
        ct = time.perf_counter() - t
        onx = to_onnx(est, Xtrain[:1].astype(np.float32), options={id(est): {"zipmap": False}} if hasattr(est, "predict_proba") else None)
        sess = ort.InferenceSession(onx.SerializeToString(), so, providers=["CPUExecutionProvider"])
        in_name = sess.get_inputs()[0].name
        out_idx = [i for i, o in enumerate(sess.get_outputs()) if "prob" in o.name] or [len(sess.get_outputs()) - 1]

        def ort_run(X, sess=sess, in_name=in_name, k=out_idx[0]):
            return sess.run(None, {in_name: np.asarray(X, np.float32).reshape(-1, Xtrain.shape[1])})[k]

        ref = getattr(est, method)(Xbig[:1000])
        engines = {"timber": (tm.predict, ct), "onnxruntime": (ort_run, None)}
        rates, lat, errs = {}, {}, {}
        for eng, (fn, _) in engines.items():
            errs[eng] = float(np.max(np.abs(np.asarray(fn(Xbig[:1000]), np.float64).reshape(ref.shape) - ref)))
            rates[eng] = [best_rate(fn, Xbig[:n], a.repeat if n <= 10000 else max(1, a.repeat - 1)) for n in sizes]
            lat[eng] = latency(fn, Xbig[0])
        for eng, (_, c) in engines.items():
            cols = []
            for i, _ in enumerate(sizes):
                vs = rates["timber"][i] / rates["onnxruntime"][i] if eng == "timber" else 1.0
                cols.append(f"{rates[eng][i]:>15,.0f} {vs:>5.2f}x")
            vl = lat["onnxruntime"] / lat["timber"] if eng == "timber" else 1.0
            cs = f"{c:9.2f}" if c is not None else f"{'':9}"
            print(f"{name:8} {eng:12} {cs} " + " ".join(cols) + f" {lat[eng] * 1e6:10.1f} {vl:5.2f}x {errs[eng]:10.2e}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
