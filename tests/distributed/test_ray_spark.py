"""Ray Data and Spark scoring with a compiled model.  Starting Ray (~10 s) or a Spark session
(~15 s, and it needs a JVM) costs more than the default run's budget, so these run with
`-m slow`; each skips with its reason when its framework is not installed here."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import timber
from tests.serve.models import DEMO, bits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    return timber.compile(str(DEMO))


def test_ray_map_batches_with_a_callable_class(demo):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'timber[ray]')")
    import pandas as pd

    import timber.distributed as td

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cols = [f"f{i}" for i in range(30)]
        X = np.random.default_rng(0).normal(size=(2000, 30)).astype(np.float32)
        ds = ray.data.from_pandas(pd.DataFrame(X, columns=cols))
        for fmt in ("numpy", "pandas"):
            kwargs = td.ray_kwargs(demo, columns=cols)
            out = ds.map_batches(td.RayPredictor, fn_constructor_kwargs=kwargs, batch_format=fmt, concurrency=2).to_pandas()
            Xo = out[cols].to_numpy(np.float32)
            assert len(out) == 2000
            assert np.array_equal(bits(out["prediction"].to_numpy(np.float32)), bits(demo.predict(Xo)))
    finally:
        ray.shutdown()


def test_spark_map_in_pandas(demo):
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'timber[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (no `java` on PATH); the README's recipe shows the same code")
    from pyspark.sql import SparkSession
    from pyspark.sql.types import LongType, StructField

    import timber.distributed as td

    spark = SparkSession.builder.master("local[2]").appName("timber-test").config("spark.ui.enabled", "false").getOrCreate()
    try:
        import pandas as pd

        X = np.random.default_rng(0).normal(size=(1000, 30))
        cols = [f"f{i}" for i in range(30)]
        pdf = pd.DataFrame(X, columns=cols)
        pdf.insert(0, "id", np.arange(1000))
        sdf = spark.createDataFrame(pdf)
        schema = td.spark_schema(demo, keep=[StructField("id", LongType(), False)])
        scored = sdf.mapInPandas(td.spark_map_in_pandas(demo, cols, keep=["id"]), schema=schema).toPandas().sort_values("id")
        assert np.array_equal(bits(scored["prediction"].to_numpy(np.float32)), bits(demo.predict(X)))
    finally:
        spark.stop()
