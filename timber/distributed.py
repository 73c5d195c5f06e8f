"""Scoring with a compiled model on Dask, Ray and Spark workers.

A `CompiledModel` pickles as its artifact (verified IR + host object code, `timber/artifact.py`),
so it travels to workers like any Python object and loads there without recompiling (a worker
whose CPU lacks the object code's features recompiles from the IR, once per process).  Nothing
of Dask, Ray or Spark is imported until one of these helpers is called.  Each task predicts
with `task_n_jobs()` threads (one per worker thread, as the frameworks set `OMP_NUM_THREADS`),
not the driver's `n_jobs`, so scoring never oversubscribes a worker's cores.

    import timber, timber.distributed as td
    model = timber.compile("model.json")

    # Dask: arrays (rows chunked, all features in one chunk) and dataframes
    y = td.predict_dask_array(model, X)                       # X: dask.array (n, f) -> (n,) or (n, k)
    s = td.predict_dask_dataframe(model, ddf)                 # -> dask Series "prediction" (or k columns)

    # Ray Data: a callable class, so each worker process loads the model once
    ds.map_batches(td.RayPredictor, fn_constructor_kwargs=td.ray_kwargs(model), batch_format="numpy", concurrency=2)

    # Spark: mapInPandas
    sdf.mapInPandas(td.spark_map_in_pandas(model, feature_cols), schema=td.spark_schema(model))
"""

from __future__ import annotations

import os
import threading

import numpy as np

import timber.artifact  # noqa: F401  (CompiledModel pickles as its artifact)
from ir.diagnostics import TimberError

OUTPUT = "prediction"


def _model_info(model):
    """(features, outputs, output dtype) of `predict` (margins have the same shape and dtype)."""
    return model.n_features, model.n_outputs, np.dtype(model._predict.out_dtype)


def output_columns(model, name: str = OUTPUT) -> list[str]:
    """Result column names: `name` for one output, `name_0 .. name_{k-1}` for k."""
    return [name] if model.n_outputs == 1 else [f"{name}_{i}" for i in range(model.n_outputs)]


# ----- threads per task -----------------------------------------------------------------------


def task_n_jobs(n_jobs: int | None = None) -> int:
    """Threads one task's `predict` uses: `n_jobs` when given, else `OMP_NUM_THREADS`, else 1.

    The frameworks already run one task per worker thread (Dask's nanny sets `OMP_NUM_THREADS=1`
    in its worker processes, Ray sets it to a task's CPUs, PySpark to `spark.task.cpus`), which is
    also what XGBoost's and LightGBM's OpenMP threads follow; a model compiled with the default
    `n_jobs` (every core of the driver) would oversubscribe the worker's cores instead."""
    if n_jobs is not None:
        return max(1, int(n_jobs))
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


# Models loaded in this worker process, with the artifact bytes they came from.  Dask hands every
# task of a graph the same bytes object (a hit by identity), and each later graph an equal copy
# (a hit by comparing bytes, far cheaper than `from_artifact`'s checksum): one model per process.
_LOADED: list[tuple[bytes, object]] = []
_LOADED_MAX = 4
_LOADED_LOCK = threading.Lock()


def _worker_model(data: bytes):
    with _LOADED_LOCK:
        for held, model in _LOADED:
            if held is data:
                return model
        for held, model in _LOADED:
            if held == data:
                return model
    from timber.artifact import from_artifact

    model = from_artifact(data, what="Dask task model")
    with _LOADED_LOCK:
        _LOADED.insert(0, (data, model))
        del _LOADED[_LOADED_MAX:]
    return model


def _model_node(model):
    """The model as one graph node holding its artifact bytes (made once per model, cached on
    it): each worker receives and loads it once per graph, and a worker passing it on to another
    sends the bytes as they are.  (Passing the `CompiledModel` itself would make every worker
    that forwards it re-serialize it: about a second for a 1000-tree forest.)"""
    import dask

    from timber.artifact import to_artifact

    return dask.delayed(to_artifact(model), pure=True)


# ----- Dask -----------------------------------------------------------------------------------


def _predict_block(block, data, output_margin, n_jobs):
    return _worker_model(data).predict(block, output_margin=output_margin, n_jobs=task_n_jobs(n_jobs))


def predict_dask_array(model, X, output_margin: bool = False, n_jobs: int | None = None):
    """`model.predict` over a 2-D dask array, block by block (`map_blocks`).  Rows may be chunked
    as they are; the features are gathered into one chunk per block if they are split.  Result:
    a dask array of shape (n,) for one output, (n, k) for k, of the model's output dtype.
    `n_jobs`: threads per task (default `task_n_jobs()`: one per worker thread)."""
    import dask.array as da

    n_features, k, dtype = _model_info(model)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise TimberError(f"expected a 2-D dask array with {n_features} columns, got shape {X.shape}")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    node = _model_node(model)
    if k == 1:
        meta = np.empty((0,), dtype)
        return da.map_blocks(_predict_block, X, node, output_margin, n_jobs, dtype=dtype, drop_axis=1, chunks=(X.chunks[0],), meta=meta)
    meta = np.empty((0, 0), dtype)
    return da.map_blocks(_predict_block, X, node, output_margin, n_jobs, dtype=dtype, chunks=(X.chunks[0], (k,)), meta=meta)


def _predict_partition(df, data, columns, names, output_margin, n_jobs):
    import pandas as pd

    model = _worker_model(data)
    X = df[columns] if columns is not None else df  # predict reads all-float frames in one copy
    Y = model.predict(X, output_margin=output_margin, n_jobs=task_n_jobs(n_jobs))
    if Y.ndim == 1:
        return pd.Series(Y, index=df.index, name=names[0])
    return pd.DataFrame(Y, index=df.index, columns=names)


def predict_dask_dataframe(
    model, df, columns: list[str] | None = None, output_margin: bool = False, name: str = OUTPUT, n_jobs: int | None = None
):
    """`model.predict` over a dask DataFrame (`map_partitions`), with its columns in `columns`
    order (default: all, as they are).  Result: a dask Series `name` for one output, else a
    DataFrame with columns `name_0..`; index kept, dtype the model's output dtype.  `n_jobs`:
    threads per task (default `task_n_jobs()`: one per worker thread)."""
    import pandas as pd

    n_features, k, dtype = _model_info(model)
    cols = list(df.columns) if columns is None else list(columns)
    if len(cols) != n_features:
        raise TimberError(f"the model takes {n_features} features; {len(cols)} columns given")
    names = output_columns(model, name)
    if k == 1:
        meta = pd.Series(np.array([], dtype), name=names[0])
    else:
        meta = pd.DataFrame({c: np.array([], dtype) for c in names})
    return df.map_partitions(_predict_partition, _model_node(model), columns, names, output_margin, n_jobs, meta=meta)


# ----- Ray ------------------------------------------------------------------------------------


def ray_kwargs(
    model, columns: list[str] | None = None, output_column: str = OUTPUT, output_margin: bool = False, n_jobs: int | None = None
) -> dict:
    """`fn_constructor_kwargs` for `RayPredictor`: the model as artifact bytes (one copy in the
    object store for every actor)."""
    from timber.artifact import to_artifact

    return {
        "artifact": to_artifact(model),
        "columns": columns,
        "output_column": output_column,
        "output_margin": output_margin,
        "n_jobs": n_jobs,
    }


class RayPredictor:
    """A `ray.data.Dataset.map_batches` callable class: each actor loads the model once.

    Batches as numpy dicts (`batch_format="numpy"`) or pandas DataFrames; the features are
    the `columns` given (default: every column but `output_column`, in order).  Adds
    `output_column` (or `output_column_0..` for several outputs).  `n_jobs`: threads per batch
    (default `task_n_jobs()`: the actor's CPUs, as Ray sets `OMP_NUM_THREADS`)."""

    def __init__(self, artifact: bytes, columns=None, output_column: str = OUTPUT, output_margin: bool = False, n_jobs: int | None = None):
        from timber.artifact import from_artifact

        self.model = from_artifact(artifact, what="RayPredictor model", n_jobs=task_n_jobs(n_jobs))
        self.columns = columns
        self.names = output_columns(self.model, output_column)
        self.output_margin = output_margin

    def __call__(self, batch):
        if isinstance(batch, dict):
            cols = self.columns or [c for c in batch if c not in self.names]
            X = np.column_stack([np.asarray(batch[c]) for c in cols]) if cols else np.zeros((0, 0))
            Y = self.model.predict(X, output_margin=self.output_margin)
            out = dict(batch)
            if Y.ndim == 1:
                out[self.names[0]] = Y
            else:
                for i, n in enumerate(self.names):
                    out[n] = Y[:, i]
            return out
        cols = self.columns or [c for c in batch.columns if c not in self.names]
        Y = self.model.predict(batch[cols], output_margin=self.output_margin)
        out = batch.copy()
        out[self.names] = Y.reshape(len(batch), -1)
        return out


# ----- Spark ----------------------------------------------------------------------------------


def spark_schema(model, output_column: str = OUTPUT, keep: list | None = None):
    """The Spark schema of `spark_map_in_pandas`'s output: `keep` fields (a list of
    StructFields of the input) then one float/double column per output."""
    from pyspark.sql.types import DoubleType, FloatType, StructField, StructType

    _, _, dtype = _model_info(model)
    t = FloatType() if dtype == np.float32 else DoubleType()
    return StructType(list(keep or []) + [StructField(c, t, True) for c in output_columns(model, output_column)])


def spark_map_in_pandas(
    model,
    columns: list[str],
    output_column: str = OUTPUT,
    keep: list[str] | None = None,
    output_margin: bool = False,
    n_jobs: int | None = None,
):
    """A function for `DataFrame.mapInPandas(fn, schema=spark_schema(model, ...))`: the model
    travels inside it (pickled as its artifact) and is loaded once per Python worker.  `n_jobs`:
    threads per batch (default `task_n_jobs()`: `spark.task.cpus`, as PySpark sets
    `OMP_NUM_THREADS`)."""
    from timber.artifact import to_artifact

    data = to_artifact(model)
    names = output_columns(model, output_column)
    keep = list(keep or [])

    def score(batches):
        import pandas as pd

        from timber.artifact import from_artifact

        m = from_artifact(data, what="spark model", n_jobs=task_n_jobs(n_jobs))
        for pdf in batches:
            Y = m.predict(pdf[columns], output_margin=output_margin).reshape(len(pdf), -1)
            out = pd.DataFrame(Y, columns=names, index=pdf.index)
            yield pd.concat([pdf[keep], out], axis=1) if keep else out

    return score


__all__ = [
    "RayPredictor",
    "output_columns",
    "predict_dask_array",
    "predict_dask_dataframe",
    "ray_kwargs",
    "spark_map_in_pandas",
    "spark_schema",
    "task_n_jobs",
]
