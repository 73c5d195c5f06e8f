"""Prometheus metrics of the server: requests and errors per endpoint and model, a latency
histogram per model and the rows of each batched call.  With several worker processes
(`PROMETHEUS_MULTIPROC_DIR` set by `timber serve`), `/metrics` adds up every worker's counts.

Observations are gathered in plain lists and written to the prometheus_client metrics in bulk
at most `FLUSH_DELAY` seconds later (and before this worker renders `/metrics`): one counter or
histogram update per label set and flush instead of several per request, which matters with
several workers, where every update is a locked write to a memory-mapped file.  A scrape can
therefore miss the last few milliseconds of another worker's requests."""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FLUSH_DELAY = 0.005  # seconds


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created gauges only double the output

        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._pending: dict[tuple, list[float]] = {}  # (endpoint, model, status) -> latencies
        self._pending_batches: dict[str, list[int]] = {}  # model -> rows per batched call
        self._flush_scheduled = False
        self._series: dict[tuple, tuple] = {}  # (endpoint, model, status) -> metric children
        self.requests = Counter("timber_requests", "HTTP requests answered", ["endpoint", "model", "status"], registry=self.registry)
        self.errors = Counter(
            "timber_errors", "HTTP requests answered with an error (status >= 400)", ["endpoint", "model", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "timber_request_latency_seconds",
            "time from request to response, per model",
            ["endpoint", "model"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "timber_batch_rows",
            "single-row requests answered by one compiled call, per model",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        """One answered request (written out by the next flush)."""
        key = (endpoint, model, status)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = []
        pending.append(seconds)
        if not self._flush_scheduled:
            self._schedule()

    def observe_batch(self, model: str, rows: int) -> None:
        """One batched compiled call of `rows` single-row requests."""
        pending = self._pending_batches.get(model)
        if pending is None:
            pending = self._pending_batches[model] = []
        pending.append(rows)
        if not self._flush_scheduled:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving (a direct call): write at once
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write the gathered observations to the prometheus_client metrics."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        batches, self._pending_batches = self._pending_batches, {}
        for key, values in pending.items():
            count, series = self._children(key)
            count.inc(len(values))
            if key[2] >= 400:
                series.inc(len(values))
            else:
                _observe_many(series, BUCKETS, values)
        for model, values in batches.items():
            _observe_many(self.batch_rows.labels(model), BATCH_BUCKETS, values)

    def _children(self, key: tuple) -> tuple:
        """The request counter and the error counter or latency histogram of one label set
        (`labels()` costs microseconds: each set is looked up once)."""
        children = self._series.get(key)
        if children is None:
            endpoint, model, status = key
            code = str(status)
            series = self.errors.labels(endpoint, model, code) if status >= 400 else self.latency.labels(endpoint, model)
            children = self._series[key] = (self.requests.labels(endpoint, model, code), series)
        return children

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.flush()
        if self.multiprocess:
            from prometheus_client import CollectorRegistry, multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _observe_many(histogram, bounds: tuple, values: list) -> None:
    """`histogram.observe(v)` for every v, as one update of each bucket hit and of the sum.
    (prometheus_client has no bulk observe; this writes the same `_buckets` and `_sum` values
    its `observe` does: a value goes to the first bucket whose bound is >= it.)"""
    counts = [0] * (len(bounds) + 1)  # the last: +Inf
    for v in values:
        counts[bisect_left(bounds, v)] += 1
    histogram._sum.inc(float(sum(values)))
    for i, c in enumerate(counts):
        if c:
            histogram._buckets[i].inc(c)
