"""The server's in-process parts: the batcher of single-row requests (rows read together become
one compiled call, each row gets exactly what `predict` returns for it, errors reach every row)
and the metrics' bulk writes (the same counts prometheus_client's own `observe` makes)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import timber

from .models import DEMO, bits, require

require("prometheus_client", "the metrics tests need timber[serve]")
require("orjson", "the server needs timber[serve]")

from timber.server.app import Batcher  # noqa: E402
from timber.server.config import ServeConfig  # noqa: E402
from timber.server.metrics import BUCKETS, Metrics  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    return timber.compile(str(DEMO))


def _rows(model, n=60):
    return np.random.default_rng(3).normal(size=(n, model.n_features)) * 10 + 10


async def _ask_together(batcher, X):
    return await asyncio.gather(*(batcher.predict_row(X[i : i + 1]) for i in range(len(X))))


@pytest.mark.parametrize("inline_work", [20_000, 0], ids=["inline", "thread-pool"])
def test_rows_asked_together_are_one_call_and_each_gets_its_own_answer(demo, inline_work):
    X = _rows(demo)
    sizes = []
    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher(demo, ServeConfig(max_batch=16, inline_work=inline_work), pool, sizes.append)
        answers = asyncio.run(_ask_together(batcher, X))
    assert sizes == [16, 16, 16, 12]  # bounded by max_batch, nothing lost
    assert all(a.shape == (1,) for a in answers)
    assert np.array_equal(bits(np.concatenate(answers)), bits(demo.predict(X)))
    assert not batcher.busy and not batcher.pending


def test_a_failing_call_fails_every_row_of_its_batch_and_the_next_batch_runs(demo):
    X = _rows(demo, 5)

    class Flaky:
        _work_per_row, calls = demo._work_per_row, 0

        def predict(self, X, n_jobs=None):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")
            return demo.predict(X)

    async def scenario(batcher):
        first = await asyncio.gather(*(batcher.predict_row(X[i : i + 1]) for i in range(3)), return_exceptions=True)
        second = await batcher.predict_row(X[3:4])
        return first, second

    with ThreadPoolExecutor(1) as pool:
        first, second = asyncio.run(scenario(Batcher(Flaky(), ServeConfig(), pool)))
    assert all(isinstance(e, RuntimeError) and str(e) == "boom" for e in first)
    assert np.array_equal(bits(second), bits(demo.predict(X[3:4])))


def test_bulk_metric_writes_count_what_observe_would():
    values = [0.00005, 0.0001, 0.0003, 0.0003, 0.004, 7.0, 0.0001]
    bulk = Metrics()
    for v in values:
        bulk.observe("predict", "m", 200, v)
    bulk.observe("predict", "m", 400, 0.001)
    bulk.observe_batch("m", 3)  # outside an event loop: written at once
    one_by_one = Metrics()
    for v in values:
        one_by_one.latency.labels("predict", "m").observe(v)

    def samples(metrics, name):
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metrics.registry.collect() if m.name == name for s in m.samples}

    assert samples(bulk, "timber_request_latency_seconds") == samples(one_by_one, "timber_request_latency_seconds")
    text = bulk.render()[0].decode()
    assert 'timber_requests_total{endpoint="predict",model="m",status="200"} 7.0' in text
    assert 'timber_errors_total{endpoint="predict",model="m",status="400"} 1.0' in text
    assert 'timber_batch_rows_count{model="m"} 1.0' in text
    assert len(BUCKETS) + 1 == len(bulk.latency.labels("predict", "m")._buckets)
