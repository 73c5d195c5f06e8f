"""tools/bench.py runs end to end on a tiny configuration, and its timing and checking parts do their job.

The smoke run uses only Timber and the framework's own predict (no virtualenvs are created), so it
passes where the peers are not installed; the full run over every model and peer is marked slow.
"""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "tools" / "bench.py"


def load_bench():
    """Import tools/bench.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("timber_bench_tool", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is created
    spec.loader.exec_module(mod)
    return mod


def run_bench(*args, timeout=300):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_quick_run_end_to_end(tmp_path):
    pytest.importorskip("xgboost")
    out = tmp_path / "res.json"
    args = ["--quick", "--models", "demo", "--peers", "timber,framework", "--rows", "50,200", "--threads", "1",
            "--no-install", "--cache", str(tmp_path / "cache"), "--json", str(out)]
    proc = run_bench(*args)
    assert proc.returncode == 0, proc.stderr
    assert "== demo" in proc.stdout and "machine:" in proc.stdout and "command: python tools/bench.py --quick" in proc.stdout
    results = {r["engine"]: r for r in json.loads(out.read_text())["models"]["demo"]}
    assert set(results) == {"timber", "xgboost DMatrix predict", "xgboost inplace_predict"}
    for name in ("xgboost DMatrix predict", "xgboost inplace_predict"):
        r = results[name]
        assert r["error"] is None
        assert set(r["throughput"]) == {"50@1", "200@1"} and min(r["throughput"].values()) > 0
        assert 0 < r["latency_s"] < 1
        assert r["check"] == "exact" and r["max_abs_diff"] == 0
    timber = results["timber"]
    # Until timber.compile lands the row must say why; once it does, it must match XGBoost bit for bit.
    if timber["error"] is not None:
        assert timber["error"].startswith("not available:")
        assert "n/a: not available" in proc.stdout
    else:
        assert timber["check"] == "exact", timber
        assert "x" in proc.stdout.split("xgboost inplace_predict", 1)[1].splitlines()[0]  # ratio column is filled


def test_markdown_and_bad_arguments(tmp_path):
    pytest.importorskip("xgboost")
    proc = run_bench("--quick", "--peers", "framework", "--rows", "20", "--threads", "1", "--no-install",
                     "--cache", str(tmp_path), "--markdown")
    assert proc.returncode == 0, proc.stderr
    assert "Command: `python tools/bench.py --quick --peers framework" in proc.stdout
    assert "| engine | compile | latency 1 row | vs | rows/s 20 1T | vs |" in proc.stdout
    bad = run_bench("--models", "nosuch", "--no-install")
    assert bad.returncode == 2 and "unknown model 'nosuch'" in bad.stderr
    bad = run_bench("--threads", "x")
    assert bad.returncode == 2 and "--threads/--rows" in bad.stderr


def test_measure_batches_fast_calls_and_takes_the_median():
    bench = load_bench()
    measure = bench.measure_engine.__globals__["measure"]
    t = measure(lambda: None, min_time=0.02, reps=3)
    assert t.calls_per_rep > 100 and t.reps >= 3 and t.seconds < 1e-5

    def sleepy():
        time.sleep(0.002)

    t = measure(sleepy, min_time=0.03, reps=5)
    assert t.reps >= 5 and 0.0019 < t.seconds < 0.02


def test_check_flags_wrong_and_misshapen_outputs():
    """A fast wrong answer must be visible: the checker compares every engine with the framework's call."""
    bench_mod = load_bench()
    Result = bench_mod.Result
    args = bench_mod.parse_args(["--quick", "--no-install"])
    bench = bench_mod.Bench(args)
    ref = np.array([0.25, 0.5, np.nan], dtype=np.float32)
    results = [Result("xgboost DMatrix predict"), Result("good"), Result("wrong"), Result("shape"), Result("f64"), Result("broken", error="x")]
    outputs = {
        "xgboost DMatrix predict": {3: ref},
        "good": {3: ref.copy()},
        "wrong": {3: np.array([0.25, 0.5 + 2**-20, np.nan], dtype=np.float32)},
        "shape": {3: ref.reshape(3, 1)},
        "f64": {3: ref.astype(np.float64)},
        "broken": {},
    }
    bench.check(results, outputs)
    by = {r.engine: r for r in results}
    assert by["good"].check == "exact" and by["good"].max_abs_diff == 0
    assert by["wrong"].check == "differs" and by["wrong"].max_abs_diff == pytest.approx(2**-20)
    assert by["shape"].check.startswith("shape (3, 1)")
    assert by["f64"].check == "equal values, dtype differs"
    assert by["broken"].check == ""


def test_table_ratios_are_timber_over_engine():
    bench_mod = load_bench()
    args = bench_mod.parse_args(["--quick", "--rows", "1000", "--threads", "1", "--no-install"])
    bench = bench_mod.Bench(args)
    R = bench_mod.Result
    bench.results["demo"] = [
        R("timber", compile_s=0.5, latency_s=1e-6, throughput={"1000@1": 4e6}, check="exact", max_abs_diff=0.0),
        R("peer", compile_s=2.0, latency_s=5e-6, throughput={"1000@1": 1e6}, check="differs", max_abs_diff=1e-7),
        R("gone", error="pip install failed: no matching distribution", note="separate process: reason"),
    ]
    header, cells = bench_mod.table_rows(bench, "demo")
    peer = dict(zip(header[:6], cells[1][:6]))
    assert cells[1][3] == "5x" and cells[1][5] == "4x" and peer["rows/s 1k 1T"] == "1M"
    assert cells[1][6] == "1e-07 (differs)"
    text = bench_mod.render_text(header, cells)
    assert "gone" in text and "n/a: pip install failed" in text and "[separate process: reason]" in text


@pytest.mark.slow
def test_full_quick_run_every_model_and_peer(tmp_path):
    """Every model and every peer on tiny batches (trains the models and creates the virtualenvs on first use)."""
    for mod in ("xgboost", "lightgbm", "catboost", "onnxruntime"):
        pytest.importorskip(mod)
    out = tmp_path / "res.json"
    models = "demo,xgb1000,xgb10class,lgb500,lgbcat,cb500"
    proc = run_bench("--quick", "--models", models, "--json", str(out), timeout=5400)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())["models"]
    for name in models.split(","):
        refs = [r for r in data[name] if r["engine"] in ("xgboost DMatrix predict", "lightgbm predict", "catboost predict")]
        assert refs and refs[0]["check"] == "exact"
