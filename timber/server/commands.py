"""The store and server subcommands of `timber`: load, list, inspect, remove, serve, validate,
bench.  (`timber/cli.py` holds only their argparse wiring.)"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ir.diagnostics import TimberError


def _store(a):
    from timber.store import Store

    return Store(getattr(a, "home", None))


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# ----- load / list / inspect / remove ----------------------------------------------------------


def cmd_load(a) -> int:
    """Compile a model once and store it (IR, object code, metadata) under a name."""
    from timber.api import compile as tcompile
    from timber.artifact import to_artifact
    from timber.store import check_name, name_from_path

    path = Path(a.model)
    if not path.exists():
        raise TimberError(f"{a.model}: no such file")
    name = check_name(a.name) if a.name else name_from_path(path)
    store = _store(a)
    t0 = time.perf_counter()
    passes = "default" if a.passes is None else a.passes
    model = tcompile(str(path), n_jobs=a.n_jobs, math=a.math, passes=passes, **a.options)
    data = to_artifact(model, source=path)
    dest = store.add(name, data)
    meta = store.read(name).summary()
    kind = " ".join(str(x) for x in (meta.get("format"), meta.get("objective")) if x)
    _out(
        f"loaded {name}: {kind}, {meta['n_features']} features -> {meta['n_outputs']} output{'s' if meta['n_outputs'] != 1 else ''}, "
        f"in {time.perf_counter() - t0:.2f} s; {dest} ({_size(len(data))})"
    )
    return 0


def cmd_list(a) -> int:
    entries = _store(a).entries()
    if a.json:
        _out(json.dumps([{"name": e.name, **(e.summary or {}), **({"error": e.error} if e.error else {})} for e in entries], indent=2))
        return 0
    if not entries:
        _out(f"no models in {_store(a).models}; add one with `timber load MODEL --name NAME`")
        return 0
    rows = [("NAME", "FORMAT", "OBJECTIVE", "FEATURES", "OUTPUTS", "SIZE", "CREATED")]
    damaged = []
    for e in entries:
        if not e.ok:
            damaged.append(e)
            continue
        s = e.summary
        size = e.path.stat().st_size
        rows.append(
            (
                e.name,
                str(s.get("format", "?")),
                str(s.get("objective", "")),
                str(s["n_features"]),
                str(s["n_outputs"]),
                _size(size),
                s["created"],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        _out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for e in damaged:
        sys.stderr.write(f"timber: {e.name}: {e.error}\n")
    return 1 if damaged else 0


def cmd_inspect(a) -> int:
    store = _store(a)
    art = store.read(a.name)
    summary = {"name": a.name, "path": str(store.path(a.name)), **art.summary()}
    from timber.artifact import runs_here

    summary["runs_here"] = runs_here(art.header["target"])
    if a.json:
        _out(json.dumps(summary, indent=2))
        return 0
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        if isinstance(v, list) and len(v) > 12:
            v = ", ".join(map(str, v[:12])) + f", ... ({len(v)} in all)"
        elif isinstance(v, (list, dict)):
            v = json.dumps(v)
        elif k.endswith("_bytes"):
            v = _size(v)
        elif k == "runs_here":
            v = "yes: object code loads into the JIT" if v else "no: recompiled from the stored IR when loaded here"
        _out(f"{k.ljust(width)}  {v}")
    return 0


def cmd_remove(a) -> int:
    store = _store(a)
    for name in a.names:
        store.remove(name)
        _out(f"removed {name}")
    return 0


# ----- serve ----------------------------------------------------------------------------------


def cmd_serve(a) -> int:
    from .config import ServeConfig
    from .run import serve

    if a.workers < 1:
        raise TimberError("--workers must be at least 1")
    config = ServeConfig(
        home=str(_store(a).home),
        names=list(dict.fromkeys(a.names)),
        max_body=a.max_body,
        max_rows=a.max_rows,
        max_batch=a.max_batch,
        batch_wait=a.batch_wait_ms / 1000.0,
        threads=a.threads,
    )
    for n in config.names:
        from timber.store import check_name

        check_name(n)
    return serve(config, host=a.host, port=a.port, workers=a.workers, server=a.server, log=lambda m: sys.stderr.write(m + "\n"))


# ----- validate -------------------------------------------------------------------------------


def cmd_validate(a) -> int:
    """Compare the stored model with its source framework on rows from a file."""
    from timber.cli import read_matrix

    store = _store(a)
    art = store.read(a.name)
    meta = art.metadata
    source = Path(a.source) if a.source else Path(meta.get("source_path", ""))
    if not a.source and not meta.get("source_path"):
        raise TimberError(f"model '{a.name}' records no source file path: give it with --source MODEL")
    if not source.is_file():
        raise TimberError(f"{source}: the source model of '{a.name}' is not there: give its path with --source MODEL")
    from timber.artifact import _file_sha256

    if meta.get("source_sha256") and _file_sha256(source) != meta["source_sha256"]:
        raise TimberError(f"{source}: this file changed since `timber load` stored '{a.name}' (its SHA-256 differs)")
    X = read_matrix(a.data)
    model = store.load(a.name)
    ours = model.predict(X)
    ref, label = _framework_predict(meta.get("format"), source, X, meta)
    ref = np.asarray(ref)
    if ref.size != ours.size:
        raise TimberError(f"{label} returned shape {ref.shape}; the stored model returns {ours.shape}: they cannot be compared")
    ref = ref.reshape(ours.shape).astype(ours.dtype)
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    both_nan = np.isnan(ours) & np.isnan(ref)
    diff[both_nan] = 0
    diff[np.isnan(diff)] = np.inf
    rel = diff / np.maximum(np.abs(ref.astype(np.float64)), np.finfo(np.float64).tiny)
    rel[diff == 0] = 0
    bad_rows = np.flatnonzero(diff.reshape(len(X), -1).max(axis=1) > 0) if len(X) else np.array([], int)
    exact = np.array_equal(ours.view(np.uint8), ref.view(np.uint8)) or (len(bad_rows) == 0)
    _out(f"model      {a.name} ({meta.get('format')} {meta.get('objective', '')}) vs {label}")
    _out(f"rows       {len(X)}")
    _out(f"max |diff| {diff.max() if diff.size else 0:.3g}")
    _out(f"max rel    {rel.max() if rel.size else 0:.3g}")
    _out(f"rows that differ: {len(bad_rows)}" + (f" (first: {', '.join(map(str, bad_rows[:10]))})" if len(bad_rows) else ""))
    _out("result     " + ("identical" if exact else "DIFFERENT"))
    return 0 if exact else 1


def _framework_predict(fmt, source: Path, X: np.ndarray, meta: dict):
    """What the source framework's own predict returns for X (the call `timber.compile` matches)."""
    import importlib.util

    def need(module: str):
        if importlib.util.find_spec(module) is None:
            raise TimberError(f"validating a {fmt} model needs the {module} package (not installed here)")
        return __import__(module)

    if fmt == "xgboost":
        xgb = need("xgboost")
        booster = xgb.Booster(model_file=str(source))
        return booster.predict(
            xgb.DMatrix(np.asarray(X, np.float32), missing=np.nan)
        ), f"xgboost {xgb.__version__} Booster.predict(DMatrix)"
    if fmt == "lightgbm":
        lgb = need("lightgbm")
        booster = lgb.Booster(model_file=str(source))
        return booster.predict(np.asarray(X, np.float64)), f"lightgbm {lgb.__version__} Booster.predict"
    if fmt == "catboost":
        cb = need("catboost")
        model = cb.CatBoost()
        model.load_model(str(source), format="json" if source.suffix == ".json" else "cbm")
        objective = str(meta.get("objective", ""))
        if any(k in objective for k in ("Logloss", "CrossEntropy", "MultiClass")):
            kind = "Probability"  # predict_proba: [1 - p, p] for two classes
        elif any(k in objective for k in ("Poisson", "Tweedie")):
            kind = "Exponent"
        else:
            kind = "RawFormulaVal"
        return model.predict(
            np.asarray(X, np.float32), prediction_type=kind
        ), f"catboost {cb.__version__} predict(prediction_type={kind!r})"
    if fmt == "tir" or source.suffix in (".tir", ".mlir"):
        from ir.interpreter import run
        from timber.detect import load_model

        return run(load_model(str(source)), X), "the IR interpreter"
    raise TimberError(f"no reference framework for format '{fmt}': validate compares XGBoost, LightGBM, CatBoost and IR models")


# ----- bench ----------------------------------------------------------------------------------


def cmd_bench(a) -> int:
    """Latency percentiles of one-row calls and throughput of batches, optionally plotted."""
    from timber.cli import read_matrix

    if a.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise TimberError("--plot needs matplotlib: pip install matplotlib")
    store = _store(a)
    import timber.artifact  # noqa: F401  (import time is not load time)

    t0 = time.perf_counter()
    model = store.load(a.name)
    t_load = time.perf_counter() - t0
    if a.data:
        X = read_matrix(a.data)
    else:
        X = np.random.default_rng(0).normal(size=(1000, model.n_features))
    X = np.ascontiguousarray(X, model._predict.in_dtype)
    model.predict(X[:1])
    lat = np.empty(a.calls)
    for i in range(a.calls):
        row = X[i % len(X)]
        t = time.perf_counter()
        model.predict(row)
        lat[i] = time.perf_counter() - t
    pct = {p: np.percentile(lat, p) * 1e6 for p in (50, 90, 99, 99.9)}
    _out(f"model      {a.name}: {model.n_features} features -> {model.n_outputs} outputs (loaded in {t_load * 1000:.1f} ms)")
    _out(f"latency    one row, {a.calls} calls: " + ", ".join(f"p{p:g} {v:.1f} us" for p, v in pct.items()))
    rates = {}
    for n in (1_000, 100_000):
        big = np.ascontiguousarray(np.resize(X, (n, X.shape[1])))
        model.predict(big)
        reps, t = 0, time.perf_counter()
        while time.perf_counter() - t < a.seconds or reps < 3:
            model.predict(big)
            reps += 1
        rates[n] = reps * n / (time.perf_counter() - t)
        _out(f"throughput batches of {n} rows: {rates[n] / 1e6:.2f} M rows/s")
    if a.plot:
        _plot(a.plot, a.name, lat, pct, rates)
        _out(f"wrote {a.plot}")
    return 0


def _plot(path: str, name: str, lat, pct, rates) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    us = lat * 1e6
    ax1.hist(us[us <= np.percentile(us, 99.5)], bins=60)
    for p, v in pct.items():
        ax1.axvline(v, linestyle="--", linewidth=1)
        ax1.text(v, ax1.get_ylim()[1] * 0.9, f"p{p:g}", rotation=90, va="top")
    ax1.set_xlabel("one-row predict latency (us)")
    ax1.set_ylabel("calls")
    ax1.set_title(f"{name}: latency")
    ax2.bar([f"{n:,} rows" for n in rates], [r / 1e6 for r in rates.values()])
    ax2.set_ylabel("M rows/s")
    ax2.set_title("batch throughput")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
