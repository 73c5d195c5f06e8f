"""Scoring on a real `distributed.LocalCluster` with 2 worker processes: the compiled model
travels pickled (as its artifact), each worker loads its object code without recompiling, and
`map_blocks`/`map_partitions` give the local model's bits with the right meta and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import timber
from tests.serve.models import DEMO, bits, require

require("dask", "the Dask tests need timber[dask]")
require("distributed", "the Dask tests need timber[dask]")
pd = require("pandas")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def demo():
    return timber.compile(str(DEMO))


def test_dask_array_and_dataframe_scoring(client, demo):
    import dask.array as da
    import dask.dataframe as dd

    import timber.distributed as td

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 30))
    X[rng.random(X.shape) < 0.05] = np.nan
    expected = demo.predict(X)

    dX = da.from_array(X, chunks=(1000, 10))  # features split across chunks: gathered per block
    y = td.predict_dask_array(demo, dX)
    assert y.dtype == np.float32 and y.shape == (4000,)
    assert np.array_equal(bits(y.compute()), bits(expected))
    assert np.array_equal(bits(td.predict_dask_array(demo, dX, output_margin=True).compute()), bits(demo.predict(X, output_margin=True)))

    cols = [f"f{i}" for i in range(30)]
    pdf = pd.DataFrame(X, columns=cols, index=pd.RangeIndex(100, 4100))
    pdf["id"] = np.arange(4000)
    ddf = dd.from_pandas(pdf, npartitions=4)
    s = td.predict_dask_dataframe(demo, ddf, columns=cols)
    assert s.dtype == np.float32 and s.name == "prediction"
    got = s.compute()
    assert got.index.equals(pdf.index) and np.array_equal(bits(got.to_numpy()), bits(expected))


def test_dataframe_partitions_of_mixed_dtypes_give_predicts_bits(client, demo):
    """Float32 beside float64 columns (read as one array, widened then rounded once) and frames
    with an integer column (read column by column) score as `predict` reads the pandas frame."""
    import dask.dataframe as dd

    import timber.distributed as td

    rng = np.random.default_rng(1)
    cols = [f"f{i}" for i in range(30)]
    pdf = pd.DataFrame(rng.normal(scale=1e3, size=(3000, 30)), columns=cols)
    pdf.iloc[rng.random(pdf.shape) < 0.05] = np.nan
    for c in cols[::3]:
        pdf[c] = pdf[c].astype(np.float32)
    with_int = pdf.assign(f7=rng.integers(-(2**40), 2**40, size=3000))
    for frame in (pdf, with_int):
        got = td.predict_dask_dataframe(demo, dd.from_pandas(frame, npartitions=3)).compute()
        assert np.array_equal(bits(got.to_numpy()), bits(demo.predict(frame)))


def test_tasks_use_one_thread_per_worker_thread_and_load_the_model_once(client, demo):
    """Dask's workers run with OMP_NUM_THREADS=1, so a task predicts with one thread (the demo
    model, compiled with the default n_jobs, would split a 16000-row block over every core of
    the machine), and every graph's tasks on a worker share one loaded model."""
    import dask.array as da

    import timber.distributed as td

    X = np.random.default_rng(2).normal(size=(32_000, 30)).astype(np.float32)
    dX = da.from_array(X, chunks=(16_000, 30))
    for _ in range(2):
        assert np.array_equal(bits(td.predict_dask_array(demo, dX).compute()), bits(demo.predict(X)))

    def state():
        return td.task_n_jobs(), len(td._LOADED), [m._pool is None for _, m in td._LOADED]

    states = client.run(state).values()
    assert all(threads == 1 and loaded <= 1 and all(no_pool) for threads, loaded, no_pool in states)
    assert any(loaded == 1 for _, loaded, _ in states)


def test_task_threads_follow_n_jobs_then_omp_num_threads(monkeypatch):
    import timber.distributed as td

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert td.task_n_jobs() == 3 and td.task_n_jobs(2) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert td.task_n_jobs() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert td.task_n_jobs() == 1


def test_workers_load_object_code_without_recompiling(client, demo):
    """Each worker's copy came from the artifact's object code (no LLVM optimisation or codegen)."""

    def timings_on_worker(model):
        return sorted(model.timings)

    futures = [client.submit(timings_on_worker, demo, pure=False, workers=[w]) for w in client.scheduler_info()["workers"]]
    for keys in client.gather(futures):
        assert "load_object" in keys and "optimize" not in keys and "codegen" not in keys
