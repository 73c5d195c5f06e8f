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


def test_workers_load_object_code_without_recompiling(client, demo):
    """Each worker's copy came from the artifact's object code (no LLVM optimisation or codegen)."""

    def timings_on_worker(model):
        return sorted(model.timings)

    futures = [client.submit(timings_on_worker, demo, pure=False, workers=[w]) for w in client.scheduler_info()["workers"]]
    for keys in client.gather(futures):
        assert "load_object" in keys and "optimize" not in keys and "codegen" not in keys
