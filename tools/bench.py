"""Timber's JIT next to the frameworks' own predict and the other tree compilers, on the same rows.

    python tools/bench.py                                  # everything (trains and caches the models once)
    python tools/bench.py --models demo,lgb500 --threads 1,all --rows 1000,100000
    python tools/bench.py --quick --models demo --peers timber,framework       # a few seconds
    python tools/bench.py --markdown > table.md            # the README's table, with the command line

For every model (see tools/bench_models.py) and every engine it prints: compile (or load) time,
single-row latency from Python, rows/s on 1k and 100k rows with one thread and with all threads, how
many times faster Timber is (the `vs` columns: Timber's rows/s over the engine's, the engine's latency
over Timber's), and the largest absolute difference from the framework's own output on the
benchmark rows, so that a fast wrong answer shows.

Engines: Timber (`timber.compile(path).predict`); the framework's own predict (XGBoost
`Booster.predict(DMatrix(X))` (the reference) and `Booster.inplace_predict`; LightGBM `Booster.predict`;
CatBoost `model.predict` and CatBoost's standalone C++ export built with g++); ONNX Runtime on the model
converted by onnxmltools (CatBoost: its own ONNX export); and, each in its own virtual environment and
process, treelite/tl2cgen, lleaves (needs llvmlite <= 0.44) and the original timber-compiler from PyPI
(it also imports as `timber`), YDF (the trees rebuilt through its tree-editing API: it reads no XGBoost or
LightGBM file) and daal4py (`daal4py.mb.convert_model` on the framework's booster, from
scikit-learn-intelex).  Virtual environments are created under the cache directory on first use; an
engine that cannot be installed or fails prints `n/a: reason` and the rest goes on.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import inspect
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))
sys.path.insert(1, str(TOOLS / "bench_peers"))

from _common import Result, error_text, measure_engine, throughput_key  # noqa: E402
from bench_models import DEFAULT_CACHE, MODELS, BenchModel, ensure_model  # noqa: E402

PEER_DIR = TOOLS / "bench_peers"
ALL_PEERS = ["timber", "framework", "onnxruntime", "timber-onnx", "catboost-cpp", "tl2cgen", "lleaves", "timber-compiler", "ydf", "daal4py"]
Predict = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class Venv:
    """A virtual environment under the cache for a peer that cannot live in Timber's environment."""

    name: str
    packages: list[str]
    system_site: bool  # see the main environment's numpy/xgboost/lightgbm/onnx
    reason: str  # why it is a separate environment/process (printed in the table)


VENVS = {
    "timber-compiler": Venv("timber-compiler", ["timber-compiler"], False, "PyPI timber-compiler also imports as `timber`"),
    "lleaves": Venv("lleaves", ["lleaves", "llvmlite<=0.44"], False, "lleaves needs llvmlite<=0.44, Timber uses 0.50"),
    "tl2cgen": Venv("tl2cgen", ["treelite", "tl2cgen"], True, "treelite/tl2cgen are not Timber dependencies"),
    "onnxmltools": Venv("onnxmltools", ["onnxmltools"], True, "converter only"),
    "ydf": Venv("ydf", ["ydf"], True, "ydf is not a Timber dependency"),
    # daal4py ships inside scikit-learn-intelex since 2025.0 (the standalone package stopped at 2024.7)
    "daal4py": Venv("daal4py", ["scikit-learn-intelex"], True, "daal4py is not a Timber dependency"),
}


class Bench:
    """One bench run: the options, the log, and the results per model."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cache: Path = args.cache
        self.threads = args.threads
        self.results: dict[str, list[Result]] = {}

    # ------------------------------------------------------------ utilities

    def log(self, msg: str) -> None:
        """Progress goes to stderr so that stdout holds only the table."""
        print(msg, file=sys.stderr, flush=True)

    def artifact_dir(self, engine: str, bm: BenchModel, path: Path) -> Path:
        """A cache folder for an engine's build of one model file, keyed by the file's contents."""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        d = self.cache / "artifacts" / engine / f"{bm.name}-{digest}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def ensure_venv(self, venv: Venv) -> Path:
        """Create the virtual environment on first use; return its python or raise with the reason."""
        root = self.cache / "venvs" / venv.name
        python = root / "bin" / "python"
        stamp = root / "timber-bench-packages.json"
        if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == venv.packages:
            return python
        if self.args.no_install:
            raise RuntimeError(f"virtualenv {root} not set up (--no-install)")
        self.log(f"creating virtualenv {root}: pip install {' '.join(venv.packages)} ...")
        cmd = [sys.executable, "-m", "venv", "--clear"] + (["--system-site-packages"] if venv.system_site else []) + [str(root)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *venv.packages], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
            raise RuntimeError(f"pip install {' '.join(venv.packages)} failed: {lines[-1] if lines else proc.returncode}")
        stamp.write_text(json.dumps(venv.packages))
        return python

    # ------------------------------------------------------------ the run

    def run(self) -> None:
        """Benchmark every requested model with every requested engine."""
        for name in self.args.models:
            bm = MODELS[name]
            try:
                path = ensure_model(bm, self.cache, log=self.log)
            except Exception as exc:  # noqa: BLE001 - e.g. a framework missing here: report it and go on
                self.results[name] = [Result(engine="(training the model)", error=error_text(exc))]
                continue
            rows_all = bm.rows(max(self.args.rows), 12345)
            rows = {n: np.ascontiguousarray(rows_all[:n]) for n in self.args.rows}
            single = np.ascontiguousarray(rows_all[:1])
            self.log(f"== {name}: {bm.description}")
            results, outputs = [], {}
            for engine, make in self.engines(bm):
                if not self.wanted(engine):
                    continue
                res, outs = self.run_engine(engine, make, bm, path, rows, single)
                results.append(res)
                outputs[res.engine] = outs
            self.check(results, outputs)
            self.results[name] = results

    def wanted(self, engine: str) -> bool:
        """Whether --peers selects this engine ('framework' selects all of the framework's own calls)."""
        group = engine.split(":")[0]
        return group in self.args.peers

    def engines(self, bm: BenchModel) -> list[tuple[str, Callable]]:
        """The engines for a model's framework, the framework's reference call first after Timber."""
        own = {
            "xgboost": [("framework:xgboost-dmatrix", self.xgb_dmatrix), ("framework:xgboost-inplace", self.xgb_inplace)],
            "lightgbm": [("framework:lightgbm", self.lgb_predict)],
            "catboost": [("framework:catboost", self.cb_predict), ("catboost-cpp", self.cb_cpp)],
            "sklearn": [("framework:sklearn", self.sk_predict)],
        }[bm.framework]
        if bm.framework == "sklearn":
            why = "a gradient-boosting compiler: no scikit-learn front-end"
            return [
                ("timber", self.timber),
                *own,
                ("onnxruntime", self.onnxruntime),
                ("timber-onnx", self.timber_onnx),
                ("tl2cgen", self.unsupported("tl2cgen", "treelite 4 reads scikit-learn forests only through its own API, not pickles")),
                ("lleaves", self.unsupported("lleaves", why)),
                ("ydf", self.unsupported("ydf", "the bench converts XGBoost and LightGBM trees into YDF only")),
                ("daal4py", self.unsupported("daal4py", "daal4py.mb converts gradient-boosting boosters only")),
            ]
        peers = [("onnxruntime", self.onnxruntime), ("tl2cgen", self.subprocess_peer("tl2cgen", "tl2cgen_peer.py"))]
        peers.append(("timber-onnx", self.timber_onnx))
        if bm.framework == "lightgbm":
            peers.append(("lleaves", self.subprocess_peer("lleaves", "lleaves_peer.py")))
        peers.append(("timber-compiler", self.subprocess_peer("timber-compiler", "timber_compiler.py")))
        if bm.framework == "catboost":
            peers[1] = ("tl2cgen", self.unsupported("tl2cgen", "treelite 4 has no CatBoost front-end"))
            if bm.categorical:
                own[1] = ("catboost-cpp", self.unsupported("catboost-cpp", "the C++ export takes categories as strings per row"))
                peers[0] = ("onnxruntime", self.unsupported("onnxruntime", "CatBoost's ONNX export has no categorical features"))
                peers[2] = ("timber-onnx", self.unsupported("timber-onnx", "CatBoost's ONNX export has no categorical features"))
        return [("timber", self.timber)] + own + peers + self.ydf_daal4py(bm)

    def ydf_daal4py(self, bm: BenchModel) -> list[tuple[str, Callable]]:
        """YDF and daal4py for a gradient-boosting model, or n/a rows where they cannot take it exactly."""
        ydf = ("ydf", self.subprocess_peer("ydf", "ydf_peer.py"))
        daal = ("daal4py", self.subprocess_peer("daal4py", "daal4py_peer.py"))
        if bm.framework == "catboost":
            ydf = ("ydf", self.unsupported("ydf", "the bench converts XGBoost and LightGBM trees into YDF only"))
        if bm.categorical:
            if bm.framework == "lightgbm":
                why = "YDF's categorical columns reserve code 0 for unseen values: LightGBM's category sets are not converted"
                ydf = ("ydf", self.unsupported("ydf", why))
            daal = ("daal4py", self.unsupported("daal4py", f"daal4py.mb converts no {bm.framework} categorical splits"))
        return [ydf, daal]

    @staticmethod
    def unsupported(engine: str, reason: str):
        """An engine that cannot take this model format: an n/a row with the reason, nothing run."""

        def make(bm, path, rows, single):
            return Result(engine=engine, error=reason), {}

        return make

    def run_engine(self, engine, make, bm, path, rows, single) -> tuple[Result, dict]:
        """Build one engine and measure it; any failure becomes an n/a row."""
        self.log(f"   {engine} ...")
        t0 = time.perf_counter()
        try:
            out = make(bm, path, rows, single)
        except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
            if self.args.debug:
                traceback.print_exc()
            res = Result(engine=engine.split(":")[-1], error=error_text(exc))
            return res, {}
        res, outs = out
        self.log(f"   {res.engine}: {'n/a: ' + res.error if res.error else 'done'} ({time.perf_counter() - t0:.1f} s)")
        return res, outs

    def measure(self, res: Result, predict: Predict, rows, single, single_threaded: bool = False) -> tuple[Result, dict]:
        """Time an in-process engine the same way the helpers time theirs."""
        try:
            outs = measure_engine(res, predict, rows, single, self.threads, self.args.min_time, self.args.reps, single_threaded)
        except Exception as exc:  # noqa: BLE001
            if self.args.debug:
                traceback.print_exc()
            res.error = error_text(exc)
            return res, {}
        return res, outs

    # ------------------------------------------------------------ engines in this process

    def timber(self, bm, path, rows, single):
        """Timber's JIT: timber.compile(path), predict(X, n_jobs=threads)."""
        res = Result(engine="timber")
        try:
            import timber

            t0 = time.perf_counter()
            model = timber.compile(str(path))
            res.compile_s = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - our own side may not have landed yet
            if self.args.debug:
                traceback.print_exc()
            res.error = f"not available: {error_text(exc)}"
            return res, {}
        if "n_jobs" in inspect.signature(model.predict).parameters:

            def predict(X, t):
                return model.predict(X, n_jobs=t)

        else:
            # Thread count fixed at compile time: one compiled model per setting, built on demand.
            models = {}

            def predict(X, t):
                if t not in models:
                    models[t] = timber.compile(str(path), n_jobs=t)
                return models[t].predict(X)

        return self.measure(res, predict, rows, single)

    def xgb_boosters(self, bm, path):
        """One Booster per thread setting: nthread is a booster parameter, and set_param per call would add latency."""
        import xgboost as xgb

        t0 = time.perf_counter()
        boosters = {t: xgb.Booster(model_file=str(bm.native_path(self.cache)), params={"nthread": t}) for t in {1, *self.threads}}
        return boosters, (time.perf_counter() - t0) / len(boosters)

    def xgb_dmatrix(self, bm, path, rows, single):
        """XGBoost Booster.predict(DMatrix(X)): the reference; the DMatrix construction is inside the timed call."""
        import xgboost as xgb

        boosters, load = self.xgb_boosters(bm, path)
        res = Result(engine="xgboost DMatrix predict", compile_s=load, compile_label="load", note="incl. DMatrix(X)")

        def predict(X, t):
            return boosters[t].predict(xgb.DMatrix(X, nthread=t))

        return self.measure(res, predict, rows, single)

    def xgb_inplace(self, bm, path, rows, single):
        """XGBoost Booster.inplace_predict(X)."""
        boosters, load = self.xgb_boosters(bm, path)
        res = Result(engine="xgboost inplace_predict", compile_s=load, compile_label="load")

        def predict(X, t):
            return boosters[t].inplace_predict(X)

        return self.measure(res, predict, rows, single)

    def lgb_predict(self, bm, path, rows, single):
        """LightGBM Booster.predict(X, num_threads=threads): the reference."""
        import lightgbm as lgb

        t0 = time.perf_counter()
        booster = lgb.Booster(model_file=str(path))
        res = Result(engine="lightgbm predict", compile_s=time.perf_counter() - t0, compile_label="load")

        def predict(X, t):
            return booster.predict(X, num_threads=t)

        return self.measure(res, predict, rows, single)

    def cb_predict(self, bm, path, rows, single):
        """CatBoost model.predict(X, thread_count=threads) on the .cbm: the reference (regression, so raw values)."""
        import catboost

        t0 = time.perf_counter()
        model = catboost.CatBoost()
        model.load_model(str(bm.native_path(self.cache)))
        res = Result(engine="catboost predict", compile_s=time.perf_counter() - t0, compile_label="load")
        if bm.categorical:
            # CatBoost takes categories as ints or strings: a Pool per batch, built once (untimed
            # after the warm-up call), so the time is CatBoost's prediction alone.
            from bench_models import catboost_pool

            pools = {}
            res.note = "Pool built once per batch, outside the timing"

            def predict(X, t):
                key = (X.__array_interface__["data"][0], X.shape)
                if key not in pools:
                    pools[key] = catboost_pool(X, bm.categorical)
                return model.predict(pools[key], prediction_type="Probability", thread_count=t)

            return self.measure(res, predict, rows, single)

        def predict(X, t):
            return model.predict(X, thread_count=t)

        return self.measure(res, predict, rows, single)

    def cb_cpp(self, bm, path, rows, single):
        """CatBoost's standalone C++ applier (`save_model(format='cpp')`), built with g++ -O3, called per batch via ctypes."""
        import ctypes

        import catboost

        res = Result(engine="catboost C++ export", note="g++ -O3 -march=native; single-threaded: all-thread columns repeat 1T")
        art = self.artifact_dir("catboost-cpp", bm, bm.native_path(self.cache))
        t0 = time.perf_counter()
        model = catboost.CatBoost()
        model.load_model(str(bm.native_path(self.cache)))
        model.save_model(str(art / "model.cpp"), format="cpp")
        # The export gives one function per row taking std::vector<float>; this C shim loops over a batch.
        (art / "shim.cpp").write_text(
            '#include "model.cpp"\n'
            'extern "C" void apply_batch(const float *x, long n, long nf, double *out) {\n'
            "  std::vector<float> row(nf);\n"
            "  for (long i = 0; i < n; ++i) { row.assign(x + i * nf, x + (i + 1) * nf); out[i] = ApplyCatboostModel(row); }\n"
            "}\n"
        )
        lib = art / "libcbmodel.so"
        cmd = ["g++", "-O3", "-march=native", "-shared", "-fPIC", "-o", str(lib), str(art / "shim.cpp")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.args.peer_timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"g++ failed: {proc.stderr.strip().splitlines()[-1:]}")
        res.compile_s = time.perf_counter() - t0
        cdll = ctypes.CDLL(str(lib))
        cdll.apply_batch.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long, ctypes.c_void_p]
        cdll.apply_batch.restype = None

        def predict(X, t):
            X = np.ascontiguousarray(X, dtype=np.float32)
            out = np.empty(X.shape[0], dtype=np.float64)
            cdll.apply_batch(X.ctypes.data, X.shape[0], X.shape[1], out.ctypes.data)
            return out

        return self.measure(res, predict, rows, single, single_threaded=True)

    def sk_predict(self, bm, path, rows, single):
        """scikit-learn's own predict_proba on the unpickled estimator, n_jobs = threads where it has n_jobs."""
        import pickle

        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            est = pickle.load(fh)  # our own file, written by bench_models.py
        res = Result(engine="sklearn predict_proba", compile_s=time.perf_counter() - t0, compile_label="load")
        has_jobs = "n_jobs" in est.get_params()
        if not has_jobs:
            res.note = "no n_jobs: threads as numpy/BLAS choose"

        def predict(X, t):
            if has_jobs:
                est.set_params(n_jobs=t)
            return est.predict_proba(X)

        return self.measure(res, predict, rows, single)

    def onnx_file(self, bm, path) -> tuple[Path, float, str]:
        """The model as ONNX (cached): onnxmltools in its own venv, or CatBoost's own exporter."""
        art = self.artifact_dir("onnx", bm, path)
        onx, stamp = art / "model.onnx", art / "model.json"
        if onx.exists() and stamp.exists():
            return onx, json.loads(stamp.read_text())["compile_s"], "convert: 1st run, cached"
        if bm.framework == "sklearn":
            import pickle

            from skl2onnx import to_onnx

            with open(path, "rb") as fh:
                est = pickle.load(fh)  # our own file, written by bench_models.py
            t0 = time.perf_counter()
            onx_model = to_onnx(est, np.zeros((1, bm.n_features), np.float32), options={id(est): {"zipmap": False}})
            onx.write_bytes(onx_model.SerializeToString())
            stamp.write_text(json.dumps({"compile_s": time.perf_counter() - t0}))
        elif bm.framework == "catboost":
            import catboost

            t0 = time.perf_counter()
            model = catboost.CatBoost()
            model.load_model(str(bm.native_path(self.cache)))
            model.save_model(str(onx), format="onnx")
            stamp.write_text(json.dumps({"compile_s": time.perf_counter() - t0}))
        else:
            python = self.ensure_venv(VENVS["onnxmltools"])
            cmd = [str(python), str(PEER_DIR / "to_onnx.py"), bm.framework, str(path), str(bm.n_features), str(onx)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.args.peer_timeout)
            if proc.returncode != 0:
                lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
                raise RuntimeError(f"onnxmltools conversion failed: {lines[-1] if lines else proc.returncode}")
        return onx, json.loads(stamp.read_text())["compile_s"], "convert"

    def onnxruntime(self, bm, path, rows, single):
        """ONNX Runtime, one InferenceSession per thread setting (intra_op_num_threads), in this process."""
        import onnxruntime as ort

        onx, convert_s, label = self.onnx_file(bm, path)
        conv = {"catboost": "CatBoost's ONNX export", "sklearn": "skl2onnx, float32"}.get(bm.framework, "onnxmltools")
        res = Result(engine="onnxruntime", compile_label=label, note=f"{conv}")
        if bm.framework not in ("catboost", "sklearn"):
            res.note += f" (converted in a separate process: {VENVS['onnxmltools'].reason})"
        t0 = time.perf_counter()
        sessions = {}
        for t in {1, *self.threads}:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            so.log_severity_level = 3  # CatBoost's export declares a 1-D output and ORT warns on every call
            sessions[t] = ort.InferenceSession(str(onx), so, providers=["CPUExecutionProvider"])
        res.compile_s = convert_s + (time.perf_counter() - t0) / len(sessions)
        name = sessions[1].get_inputs()[0].name
        binary = bm.framework != "catboost" and self.is_binary(bm)
        as_f32 = sessions[1].get_inputs()[0].type == "tensor(float)"

        def predict(X, t):
            outs = sessions[t].run(None, {name: X.astype(np.float32) if as_f32 else X})
            # Classifiers return (label, probabilities); regressors one (n, 1) tensor.
            out = np.asarray(outs[1] if len(outs) > 1 else outs[0])
            if out.ndim == 2 and out.shape[1] == 1:
                out = out[:, 0]
            if binary and out.ndim == 2 and out.shape[1] == 2:
                out = out[:, 1]
            return out

        return self.measure(res, predict, rows, single)

    def timber_onnx(self, bm, path, rows, single):
        """Timber compiling the very .onnx file ONNX Runtime runs (issue 11's comparison)."""
        import timber

        onx, _, _ = self.onnx_file(bm, path)
        res = Result(engine="timber-onnx", note="Timber on the ONNX file above")
        t0 = time.perf_counter()
        model = timber.compile(str(onx))
        res.compile_s = time.perf_counter() - t0
        binary = bm.framework != "catboost" and self.is_binary(bm)
        as_f32 = model._predict.in_dtype == np.float32

        def predict(X, t):
            out = model.predict(X.astype(np.float32) if as_f32 else X, n_jobs=t)
            if binary and out.ndim == 2 and out.shape[1] == 2:
                out = out[:, 1]
            return out

        return self.measure(res, predict, rows, single)

    @staticmethod
    def is_binary(bm: BenchModel) -> bool:
        """Whether the framework returns one probability per row (ONNX classifiers return two columns)."""
        return bm.name in ("demo", "xgb1000", "lgbcat")

    # ------------------------------------------------------------ engines in their own process

    def subprocess_peer(self, venv_name: str, script: str):
        """An engine run by a helper script inside its own virtualenv, in a separate process."""

        def make(bm, path, rows, single):
            venv = VENVS[venv_name]
            engine = venv_name
            try:
                python = self.ensure_venv(venv)
            except Exception as exc:  # noqa: BLE001
                return Result(engine=engine, error=error_text(exc)), {}
            run_dir = self.cache / "runs" / bm.name / engine
            run_dir.mkdir(parents=True, exist_ok=True)
            for old in run_dir.glob("*"):
                old.unlink()
            files = {}
            for n, X in rows.items():
                files[str(n)] = str(run_dir / f"X_{n}.npy")
                np.save(files[str(n)], X)
            np.save(run_dir / "X_single.npy", single)
            job = {
                "engine": engine,
                "framework": bm.framework,
                "model": str(path),
                "rows": files,
                "latency_row": str(run_dir / "X_single.npy"),
                "threads": self.threads,
                "min_time": self.args.min_time,
                "reps": self.args.reps,
                "out_dir": str(run_dir),
                "artifact_dir": str(self.artifact_dir(engine, bm, path)),
                "format_hint": bm.framework,
                "n_features": bm.n_features,
                "native_model": str(bm.native_path(self.cache)),
                "categorical": bm.categorical,
            }
            (run_dir / "job.json").write_text(json.dumps(job, indent=1))
            # Run from the cache so that no `timber` on the current directory shadows the venv's own.
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
            try:
                proc = subprocess.run(
                    [str(python), str(PEER_DIR / script), str(run_dir / "job.json")],
                    capture_output=True,
                    text=True,
                    timeout=self.args.peer_timeout,
                    cwd=str(run_dir),
                    env=env,
                )
            except subprocess.TimeoutExpired:
                return Result(engine=engine, error=f"timed out after {self.args.peer_timeout:.0f} s"), {}
            result_file = run_dir / "result.json"
            if not result_file.exists():
                lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
                return Result(engine=engine, error=f"helper exited {proc.returncode}: {lines[-1] if lines else ''}"[:300]), {}
            res = Result.from_json(json.loads(result_file.read_text()))
            res.note = (res.note + "; " if res.note else "") + f"separate process: {venv.reason}"
            outs = {n: np.load(run_dir / f"pred_{n}.npy") for n in rows if (run_dir / f"pred_{n}.npy").exists()}
            return res, outs

        return make

    # ------------------------------------------------------------ checking

    def check(self, results: list[Result], outputs: dict[str, dict]) -> None:
        """Compare every engine's output with the framework's reference call on the same rows."""
        ref_engine = next((r.engine for r in results if r.engine in REFERENCES and outputs.get(r.engine)), None)
        for r in results:
            outs = outputs.get(r.engine)
            if r.error or not outs:
                continue
            if ref_engine is None:
                r.check = "no reference"
                continue
            ref = outputs[ref_engine]
            worst, shape_msg, exact = 0.0, "", True
            for n, out in outs.items():
                expected = ref[n]
                if out.shape != expected.shape:
                    shape_msg = f"shape {out.shape} vs {expected.shape}"
                    continue
                a, b = out.astype(np.float64), expected.astype(np.float64)
                both_nan = np.isnan(a) & np.isnan(b)
                diff = np.where(both_nan, 0.0, np.abs(a - b))
                worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
                exact = exact and out.dtype == expected.dtype and np.array_equal(out, expected, equal_nan=True)
            if shape_msg:
                r.check = shape_msg
                continue
            r.max_abs_diff = worst
            if exact:
                r.check = "exact"
            elif worst == 0.0:
                r.check = "equal values, dtype differs"
            else:
                r.check = "differs"


REFERENCES = {"xgboost DMatrix predict", "lightgbm predict", "catboost predict", "sklearn predict_proba"}


# ---------------------------------------------------------------- report


def fmt_rate(x: float | None) -> str:
    """Rows per second, 3 significant digits with k/M suffixes."""
    if x is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{suf}"
    return f"{x:.3g}"


def fmt_time(s: float | None) -> str:
    """A duration in the unit that keeps 3 significant digits readable."""
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}x"


def table_rows(bench: Bench, model: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one model's table."""
    keys = [(n, t) for t in bench.threads for n in sorted(bench.args.rows)]
    header = ["engine", "compile", "latency 1 row", "vs"]
    for n, t in keys:
        header += [f"rows/s {fmt_rows(n)} {fmt_threads(t)}", "vs"]
    header += ["max|diff| vs framework", "note"]
    results = bench.results[model]
    timber = next((r for r in results if r.engine == "timber" and not r.error), None)
    cells = []
    for r in results:
        if r.error:
            cells.append([r.engine, f"n/a: {r.error}"] + [""] * (len(header) - 3) + [r.note])
            continue
        label = "" if r.compile_label == "compile" else r.compile_label
        if label.startswith("compile (") and label.endswith(")"):
            label = label[len("compile (") : -1]  # "compile (1st build, cached)" -> "1st build, cached"
        compile_cell = fmt_time(r.compile_s) + (f" ({label})" if label else "")
        lat_ratio = r.latency_s / timber.latency_s if timber and r.latency_s and timber.latency_s else None
        row = [r.engine, compile_cell, fmt_time(r.latency_s), fmt_ratio(lat_ratio)]
        for n, t in keys:
            v = r.throughput.get(throughput_key(n, t))
            tv = timber.throughput.get(throughput_key(n, t)) if timber else None
            row += [fmt_rate(v), fmt_ratio(tv / v if tv and v else None)]
        diff = "-" if r.max_abs_diff is None else ("0" if r.max_abs_diff == 0 else f"{r.max_abs_diff:.2g}")
        row += [f"{diff} ({r.check})" if r.check else diff, r.note]
        cells.append(row)
    return header, cells


def fmt_rows(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def fmt_threads(t: int) -> str:
    return f"{t}T"


def machine_lines(bench: Bench, load_start: tuple, load_end: tuple) -> list[str]:
    """CPU model, cores, load, versions: what a reader needs to judge the numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    for line in info:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl") if f in flags]
    if isa:
        cpu += f" ({' '.join(isa)})"
    versions = []
    for dist in ("numpy", "xgboost", "lightgbm", "catboost", "onnxruntime", "llvmlite"):
        # Package metadata, not imports: importing catboost alone takes a second.
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    return [
        f"machine: {cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}; "
        f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end (other processes may have been running)",
        f"software: Python {platform.python_version()}, {', '.join(versions)}; timber git {rev or '?'}",
        f"method: warm-up call, then timed repetitions until >= {bench.args.min_time} s, median of >= {bench.args.reps} "
        "repetitions (at least 3 for calls slower than that); rows/s = rows / median batch time; "
        "latency = one row (shape (1, F)) from Python on 1 thread; 1T pins every engine to one thread "
        "(nthread / num_threads / thread_count / intra_op_num_threads / n_jobs); "
        f"{fmt_threads(os.cpu_count() or 1)} = all cores; vs = how many times faster Timber is (>1: Timber faster); "
        "compile = the engine's build time (load time for the frameworks); the same input rows for every engine: "
        "float32, or float64 for the scikit-learn models (trained on float64, as users do)",
    ]


def render_text(header: list[str], cells: list[list[str]]) -> str:
    """A plain fixed-width table."""
    measured = [c for c in cells if not c[1].startswith("n/a")]  # n/a rows are printed on one free line
    widths = [max([len(h)] + [len(c[i]) for c in measured]) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the note column is last and left ragged
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        if c[1].startswith("n/a"):
            lines.append(f"{c[0].ljust(widths[0])}  {c[1]}" + (f"   [{c[-1]}]" if c[-1] else ""))
            continue
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
    return "\n".join(lines)


def render_markdown(header: list[str], cells: list[list[str]]) -> str:
    """A GitHub Markdown table (pipes in cells escaped)."""

    def row(vals):
        return "| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |"

    lines = [row(header), "|" + "|".join("---" for _ in header) + "|"]
    for c in cells:
        if c[1].startswith("n/a"):
            c = [c[0], c[1]] + [""] * (len(header) - 3) + [c[-1]]
        lines.append(row(c))
    return "\n".join(lines)


@dataclass
class Goal:
    """A target from the issues' "Done when": Timber's rows/s (or latency) against one engine's, per model."""

    model: str
    engine: str
    min_ratio: float  # Timber must be at least this many times faster
    what: str  # "rows/s" or "latency" or "compile"
    source: str
    ours: str = "timber"  # the Timber engine compared (timber-onnx: Timber on the ONNX file)
    rows: int | None = None  # only at this batch size (default: every one measured)


GOALS = [
    Goal("demo", "xgboost inplace_predict", 4.0, "rows/s", "issue 2"),
    Goal("demo", "timber-compiler", 1.0, "latency", "issue 2"),
    Goal("xgb1000", "xgboost inplace_predict", 1.0, "rows/s", "issue 2"),
    Goal("xgb10class", "xgboost inplace_predict", 1.0, "rows/s", "issue 2"),
    Goal("lgb500", "lightgbm predict", 4.5, "rows/s 1T", "issue 3 (lleaves' published 4.5x)"),
    Goal("lgb500", "lleaves", 1.0, "rows/s 1T", "issue 3"),
    Goal("lgbcat", "lleaves", 1.0, "rows/s 1T", "issue 3"),
    Goal("cb500", "catboost predict", 1.0, "rows/s", "issue 3"),
    Goal("rf100", "sklearn predict_proba", 3.0, "rows/s 1T", "issue 10"),
    *[Goal(m, "onnxruntime", 1.0, "rows/s 1T", "issue 10") for m in ("logreg", "mlp", "svc", "knn")],
    *[Goal(m, "onnxruntime", 1.0, "latency", "issue 10") for m in ("logreg", "mlp", "svc", "knn")],
    *[Goal(m, "onnxruntime", 5.0, "rows/s", "issue 11", ours="timber-onnx") for m in ("demo", "xgb1000", "xgb10class", "lgb500")],
    *[Goal(m, "onnxruntime", 1.0, "latency", "issue 11", ours="timber-onnx") for m in ("demo", "xgb1000", "lgb500")],
    Goal("demo", "xgboost inplace_predict", 4.2, "rows/s 1T", "issue 16 (the nested-if limit)", rows=100_000),
    Goal("lgb500", "lightgbm predict", 12.0, "rows/s 1T", "issue 16"),
    Goal("lgb500", "lightgbm predict", 6.0, "rows/s", "issue 16 (any batch size)"),
    Goal("lgbcat", "lightgbm predict", 1.0, "latency", "issue 16"),
]
# (model, seconds, source): issue 2: a 1000-tree depth-8 model JITs in under 10 s, issue 16: in 2 s;
# issue 10: the 100-tree forest in 5 s
COMPILE_LIMITS = [("xgb1000", 10.0, "issue 2"), ("xgb1000", 2.0, "issue 16"), ("rf100", 5.0, "issue 10")]
LATENCY_LIMITS = [("demo", 1.5e-6, "issue 16")]  # one row from Python, seconds
TWO_THREADS = (1.9, 100_000, "issue 16")  # 2 threads at least this many times 1 thread at this batch size


def goal_lines(bench: Bench) -> list[str]:
    """Each applicable goal with its measured ratios and whether it is met (only for models and engines that ran)."""
    lines = []
    for g in GOALS:
        results = {r.engine: r for r in bench.results.get(g.model, []) if not r.error}
        timber, other = results.get(g.ours), results.get(g.engine)
        if timber is None or other is None:
            continue
        if g.what == "latency":
            if not (timber.latency_s and other.latency_s):
                continue
            ratios = {"1 row": other.latency_s / timber.latency_s}
        else:
            keys = [(n, t) for t in bench.threads for n in bench.args.rows if (g.what == "rows/s" or t == 1) and g.rows in (None, n)]
            ratios = {}
            for n, t in keys:
                a, b = timber.throughput.get(throughput_key(n, t)), other.throughput.get(throughput_key(n, t))
                if a and b:
                    ratios[f"{fmt_rows(n)} {fmt_threads(t)}"] = a / b
        if not ratios:
            continue
        met = all(v >= g.min_ratio for v in ratios.values())
        shown = ", ".join(f"{k} {v:.3g}x" for k, v in ratios.items())
        lines.append(
            f"{g.model}: {g.ours} vs {g.engine} {g.what.split()[0]}: {shown} (goal >= {g.min_ratio:g}x, {g.source}): "
            + ("met" if met else "NOT met")
        )
    def ours(model):
        return next((r for r in bench.results.get(model, []) if r.engine == "timber" and not r.error), None)

    for model, limit, source in COMPILE_LIMITS:
        timber = ours(model)
        if timber and timber.compile_s is not None:
            lines.append(
                f"{model}: timber compile {timber.compile_s:.3g} s (goal < {limit:g} s, {source}): "
                + ("met" if timber.compile_s < limit else "NOT met")
            )
    for model, limit, source in LATENCY_LIMITS:
        timber = ours(model)
        if timber and timber.latency_s:
            lines.append(
                f"{model}: timber one row {timber.latency_s * 1e6:.3g} µs (goal <= {limit * 1e6:g} µs, {source}): "
                + ("met" if timber.latency_s <= limit else "NOT met")
            )
    ratio, n, source = TWO_THREADS
    if 2 in bench.threads and 1 in bench.threads and n in bench.args.rows:
        for model in bench.results:
            timber = ours(model)
            a = timber and timber.throughput.get(throughput_key(n, 1))
            b = timber and timber.throughput.get(throughput_key(n, 2))
            if a and b:
                lines.append(
                    f"{model}: timber 2T vs 1T rows/s at {fmt_rows(n)}: {b / a:.3g}x (goal >= {ratio:g}x, {source}): "
                    + ("met" if b / a >= ratio else "NOT met")
                )
    return lines


def report(bench: Bench, command: str, meta: list[str]) -> str:
    """The whole printed report: command, machine and method lines (`machine_lines`), one table per model, goals."""
    md = bench.args.markdown
    out = []
    if md:
        out.append(f"Command: `{command}`\n")
        out += [f"- {m}" for m in meta]
    else:
        out.append(f"command: {command}")
        out += meta
    for name, _ in bench.results.items():
        bm = MODELS[name]
        header, cells = table_rows(bench, name)
        out.append("")
        out.append(f"### {name}: {bm.description}" if md else f"== {name}: {bm.description}")
        out.append("")
        out.append(render_markdown(header, cells) if md else render_text(header, cells))
    goals = goal_lines(bench)
    if goals:
        out += ["", "### Goals", ""] if md else ["", "goals:"]
        out += [f"- {g}" if md else f"  {g}" for g in goals]
    return "\n".join(out) + "\n"


def passes_report(args: argparse.Namespace) -> str:
    """`--passes`: what the default exact pipeline does to each model — tree nodes before and
    after, time per pass — and Timber's single-thread rows/s with and without it (same rows;
    the outputs are checked to be identical)."""
    import timber
    from passes.manager import run_pipeline
    from timber.detect import load_model

    md = args.markdown
    header = [
        "model",
        "nodes before",
        "nodes after",
        "removed",
        "pipeline time",
        "changed by",
        "rows/s 100k 1T (no passes)",
        "rows/s (default)",
        "speed-up",
    ]
    cells = []
    corpus = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    extra = [
        corpus / f
        for f in ("lleaves/NYC_taxi/model.txt", "leaves/lg_kddcup99.model", "catboost-cxx/xor-model.json")
        if (corpus / f).exists()
    ]
    jobs = [(name, ensure_model(MODELS[name], args.cache, log=lambda *a: None), MODELS[name].rows) for name in args.models]
    jobs += [(f"corpus {p.relative_to(corpus)}", p, None) for p in extra]
    for name, path, rows in jobs:
        module = load_model(str(path))
        audit = run_pipeline(module, None, verify_each=False)
        before, after = audit[0].nodes_before, audit[-1].nodes_after
        changed = sorted({e.name for e in audit if e.changes})
        n_features = module.lookup("predict").function_type.inputs[0].shape[0]
        X = (
            rows(min(max(args.rows), 100_000), 7)
            if rows
            else np.random.default_rng(7).normal(size=(100_000, n_features)).astype(np.float32)
        )
        rates, outs = [], []
        for passes in ("", "default"):
            m = timber.compile(str(path), passes=passes, n_jobs=1)
            outs.append(m.predict(X))
            rates.append(len(X) / median_time(lambda m=m, X=X: m.predict(X), args.min_time, args.reps))
        same = outs[0].tobytes() == outs[1].tobytes()
        cells.append(
            [
                name,
                str(before),
                str(after),
                f"{before - after} ({(before - after) / max(before, 1):.1%})",
                fmt_time(sum(e.seconds for e in audit)),
                ", ".join(changed) or "nothing",
                fmt_rate(rates[0]),
                fmt_rate(rates[1]) + ("" if same else " (OUTPUT DIFFERS)"),
                fmt_ratio(rates[1] / rates[0]),
            ]
        )
    title = "### Default pass pipeline (exact)" if md else "== default pass pipeline (exact)"
    out = ["", title, "", render_markdown(header, cells) if md else render_text(header, cells)]
    return "\n".join(out) + "\n" + calibration_report(args, jobs) + scaler_report(args)


CALIBRATION_ROWS = 2000  # rows `tree-sort-branches` counts hits on: a sample drawn like the benchmark rows
LATENCY_ROWS = 256  # single-row latency cycles through this many rows (one repeated row would teach the branch predictor its path)


def calibration_report(args: argparse.Namespace, jobs: list) -> str:
    """`--passes`, second table: `tree-sort-branches{calibration=rows}` before the default
    pipeline (what `timber compile --calibration` runs) against the default pipeline alone:
    how many nodes the back-end turned into branch code (single rows only; see
    backends/llvm/plan.py for when), compile time, single-row latency from Python over
    LATENCY_ROWS different rows, and one-thread rows/s on the batch, each the best of
    `--reps` alternating turns.  Outputs are checked identical."""
    import tempfile

    import timber
    from backends.llvm.plan import BranchSegment
    from passes.manager import count_tree_nodes
    from timber.detect import load_model

    md = args.markdown
    n_batch = min(max(args.rows), 100_000)
    header = [
        "model",
        "branch code (nodes)",
        "compile",
        "compile (calibrated)",
        "1-row latency",
        "1-row latency (calibrated)",
        "speed-up",
        f"rows/s {fmt_rows(n_batch)} 1T",
        "rows/s (calibrated)",
        "speed-up",
    ]
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, rows in jobs:
            if rows:
                X, cal = rows(n_batch, 7), rows(CALIBRATION_ROWS, 11)
            else:  # corpus files: no generator of their own
                n_features = load_model(str(path)).lookup("predict").function_type.inputs[0].shape[0]
                rng = np.random.default_rng(7)
                X = rng.normal(size=(n_batch, n_features)).astype(np.float32)
                cal = rng.normal(size=(CALIBRATION_ROWS, n_features)).astype(np.float32)
            cal_path = Path(tmp) / "calibration.npy"
            np.save(cal_path, cal)
            singles = [np.ascontiguousarray(X[i : i + 1]) for i in range(min(LATENCY_ROWS, len(X)))]
            runs = []
            for passes in ("default", f'tree-sort-branches{{calibration="{cal_path}"}},default'):
                t0 = time.perf_counter()
                m = timber.compile(str(path), passes=passes, n_jobs=1)
                compile_s = time.perf_counter() - t0
                branch = sum(
                    t.table.n_nodes
                    for p in m.lowered.plans
                    for s in (p.row_segments or [])
                    if isinstance(s, BranchSegment)
                    for t in s.trees
                )
                outs = (m.predict(X).tobytes(), b"".join(m.predict(r).tobytes() for r in singles))
                runs.append((m, branch, count_tree_nodes(m.module), compile_s, outs))
            # the two models take turns, and each figure is the best of args.reps turns: other work on
            # the machine only ever slows a run down, and it would otherwise land on one side
            latency, rate = [float("inf")] * 2, [float("inf")] * 2
            for _ in range(args.reps):
                for i, (m, *_) in enumerate(runs):
                    latency[i] = min(
                        latency[i], median_time(lambda m=m, rs=singles: [m.predict(r) for r in rs], args.min_time, 1) / len(singles)
                    )
                    rate[i] = min(rate[i], median_time(lambda m=m, X=X: m.predict(X), args.min_time, 1))
            runs = [(b, n, c, latency[i], len(X) / rate[i], o) for i, (_, b, n, c, o) in enumerate(runs)]
            (_, _, c0, l0, r0, o0), (branch, total, c1, l1, r1, o1) = runs
            flag = "" if o0 == o1 else " (OUTPUT DIFFERS)"
            cells.append(
                [
                    name,
                    f"{branch} of {total}",
                    fmt_time(c0),
                    fmt_time(c1),
                    fmt_time(l0),
                    fmt_time(l1) + flag,
                    fmt_ratio(l0 / l1),
                    fmt_rate(r0),
                    fmt_rate(r1) + flag,
                    fmt_ratio(r1 / r0),
                ]
            )
    title = "### Branch sorting with calibration (exact)" if md else "== tree-sort-branches with calibration (exact)"
    note = f"Calibration: {CALIBRATION_ROWS} rows drawn like the benchmark rows (another seed); latency over {LATENCY_ROWS} different rows."
    return "\n".join(["", title, "", note, "", render_markdown(header, cells) if md else render_text(header, cells)]) + "\n"


SCALER_FEATURES = 50


def scaler_report(args: argparse.Namespace) -> str:
    """`--passes`, third table: `linear-fuse-scaler` on a StandardScaler ((x - mean) / scale on
    float32 rows widened to f64) feeding a 50-input `linear.affine` — synthetic, since no benchmark
    model has a scaler before a linear model: ops before and after, the pass's bound E, the largest
    relative error measured, and one-thread rows/s."""
    import timber
    from ir.dialects import arith, builtin, func, linear
    from ir.interpreter import run
    from ir.types import f32, f64, tensor
    from passes.manager import run_pipeline

    n, rng = SCALER_FEATURES, np.random.default_rng(0)
    mean, scale, w, b = rng.normal(size=n) * 5, rng.uniform(0.1, 10, size=n), rng.normal(size=(1, n)), rng.normal(size=1)

    def build():
        m = builtin.ModuleOp.build()
        fn = func.FuncOp.build("predict", [tensor(n, f32)], [tensor(1, f64)], arg_names=["x"])
        m.body.add_op(fn)
        v = fn.body.add_op(arith.ExtFOp.build(fn.args[0], tensor(n, f64))).result
        for cls, c in ((arith.SubFOp, mean), (arith.DivFOp, scale)):
            const = fn.body.add_op(arith.ConstantOp.build(c, tensor(n, f64))).result
            v = fn.body.add_op(cls.build(v, const)).result
        y = fn.body.add_op(linear.AffineOp.build(v, w, b, f64, "propagate")).result
        fn.body.add_op(func.ReturnOp(operands=[y]))
        return m

    pipeline = "linear-fuse-scaler{tolerance=1e-12}"
    original, fused = build(), build()
    (entry,) = run_pipeline(fused, pipeline)
    X = rng.normal(size=(min(max(args.rows), 100_000), n)).astype(np.float32) * 10
    rates = []
    for m in (original, fused):
        cm = timber.compile(m, passes=None, n_jobs=1)
        rates.append(len(X) / median_time(lambda cm=cm: cm.predict(X), args.min_time, args.reps))
    # the pass bounds |fused - original| by E·S, S = |b| + Σ|w|(|x| + |mean|)/scale (passes/linear_fuse_scaler.py)
    S = np.abs(b[0]) + (np.abs(X.astype(np.float64)) + np.abs(mean)) / scale @ np.abs(w[0])
    err = float(np.max(np.abs(run(original, X)[:, 0] - run(fused, X)[:, 0]) / S))
    ops = [len(m.lookup("predict").body.ops) for m in (original, fused)]
    header = ["model", "pass", "ops", "bound E", "max |Δ|/S measured", f"rows/s {fmt_rows(len(X))} 1T", "rows/s (fused)", "speed-up"]
    cells = [
        [
            f"StandardScaler -> linear.affine ({n} inputs, synthetic)",
            pipeline,
            f"{ops[0]} -> {ops[1]}",
            f"{entry.stats.get('max-relative-error', 0):.3g}",
            f"{err:.3g}",
            fmt_rate(rates[0]),
            fmt_rate(rates[1]),
            fmt_ratio(rates[1] / rates[0]),
        ]
    ]
    md = args.markdown
    title = "### Scaler fusion into a linear model (lossy, bounded)" if md else "== linear-fuse-scaler (lossy, bounded)"
    return "\n".join(["", title, "", render_markdown(header, cells) if md else render_text(header, cells)]) + "\n"


def median_time(fn, min_time: float, reps: int) -> float:
    """Median seconds of one call of `fn` over `reps` repetitions, each lasting at least `min_time`."""
    fn()
    times = []
    for _ in range(reps):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            if time.perf_counter() - t0 >= min_time:
                break
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description="Timber vs the frameworks and the other tree compilers.")
    ap.add_argument("--distributed", action="store_true", help="run tools/bench_distributed.py instead (Dask LocalCluster; its options follow)")
    ap.add_argument("--serve", action="store_true", help="run tools/bench_serve.py instead (HTTP server load; its options follow)")
    ap.add_argument("--models", help=f"comma-separated, from: {', '.join(MODELS)} (default: all; --quick: demo)")
    ap.add_argument("--threads", default="1,all", help="comma-separated thread counts, 'all' = every core (default %(default)s)")
    ap.add_argument("--rows", help="comma-separated batch sizes (default 1000,100000; --quick: 100,1000)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS), help=f"comma-separated engines, from: {', '.join(ALL_PEERS)}")
    ap.add_argument("--quick", action="store_true", help="tiny configuration for a smoke run: short timings, small batches")
    ap.add_argument("--min-time", type=float, help="seconds each measurement lasts at least (default 0.5, --quick 0.02)")
    ap.add_argument("--reps", type=int, help="repetitions whose median is reported (default 5, --quick 3)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="models, virtualenvs and build caches (default %(default)s)")
    ap.add_argument("--no-install", action="store_true", help="never create virtualenvs: peers that need one print n/a")
    ap.add_argument("--peer-timeout", type=float, default=1800.0, help="seconds a peer may take in all (default %(default)s)")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables (for the README) with the command line")
    ap.add_argument("--json", type=Path, help="also write the raw results as JSON to this file")
    ap.add_argument("--render", type=Path, help="print the report of a run saved with --json instead of running")
    ap.add_argument("--debug", action="store_true", help="print tracebacks of failing engines on stderr")
    ap.add_argument(
        "--passes",
        action="store_true",
        help="only report what the default pass pipeline, and branch sorting with calibration rows, do to each model (nodes, time, speed)",
    )
    args = ap.parse_args(argv)
    args.models = (args.models or ("demo" if args.quick else ",".join(MODELS))).split(",")
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        ap.error(f"unknown model {bad[0]!r}; known: {', '.join(MODELS)}")
    args.peers = args.peers.split(",")
    bad = [p for p in args.peers if p not in ALL_PEERS]
    if bad:
        ap.error(f"unknown engine {bad[0]!r}; known: {', '.join(ALL_PEERS)}")
    try:
        args.threads = sorted({os.cpu_count() or 1 if t == "all" else int(t) for t in args.threads.split(",")})
        args.rows = sorted({int(n) for n in (args.rows or ("100,1000" if args.quick else "1000,100000")).split(",")})
    except ValueError as exc:
        ap.error(f"--threads/--rows take comma-separated integers ('all' for threads): {exc}")
    if min(args.threads) < 1 or min(args.rows) < 1:
        ap.error("--threads and --rows must be positive")
    args.min_time = args.min_time if args.min_time is not None else (0.02 if args.quick else 0.5)
    args.reps = args.reps if args.reps is not None else (3 if args.quick else 5)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print the report.  `--distributed` and `--serve` hand the rest of the
    command line to tools/bench_distributed.py and tools/bench_serve.py."""
    argv = sys.argv[1:] if argv is None else list(argv)
    for flag, tool in (("--distributed", "bench_distributed"), ("--serve", "bench_serve")):
        if flag in argv:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            sys.argv = [f"tools/{tool}.py", *(a for a in argv if a != flag)]
            return __import__(tool).main() or 0
    args = parse_args(argv)
    if args.render:
        return render_saved(args)
    command = "python tools/bench.py " + " ".join(shlex.quote(a) for a in argv)
    if args.passes:
        sys.stdout.write((f"Command: `{command.strip()}`\n" if args.markdown else f"command: {command.strip()}\n") + passes_report(args))
        return 0
    load_start = os.getloadavg()
    bench = Bench(args)
    bench.run()
    meta = machine_lines(bench, load_start, os.getloadavg())
    sys.stdout.write(report(bench, command.strip(), meta))
    if args.json:
        data = {name: [r.to_json() for r in rs] for name, rs in bench.results.items()}
        saved = {
            "command": command.strip(),
            "meta": meta,
            "threads": args.threads,
            "rows": args.rows,
            "min_time": args.min_time,
            "reps": args.reps,
            "models": data,
        }
        args.json.write_text(json.dumps(saved, indent=1))
    return 0


def render_saved(args: argparse.Namespace) -> int:
    """Print the report of a run saved with --json (e.g. once as text, once as Markdown) without re-running it."""
    saved = json.loads(args.render.read_text())
    for key in ("threads", "rows", "min_time", "reps"):
        setattr(args, key, saved[key])
    bench = Bench(args)
    bench.results = {name: [Result.from_json(r) for r in rs] for name, rs in saved["models"].items()}
    sys.stdout.write(report(bench, saved["command"], saved["meta"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
