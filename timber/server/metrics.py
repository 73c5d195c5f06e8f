"""Prometheus metrics of the server: requests and errors per endpoint and model, and a latency
histogram per model.  With several worker processes (`PROMETHEUS_MULTIPROC_DIR` set by
`timber serve`), `/metrics` adds up every worker's counts."""

from __future__ import annotations

import os

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created gauges only double the output

        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._series: dict[tuple, tuple] = {}
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
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )

    def observe(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        key = (endpoint, model, status)
        series = self._series.get(key)
        if series is None:  # `labels()` costs microseconds: look each label set up once
            code = str(status)
            count = self.requests.labels(endpoint, model, code).inc
            if status >= 400:
                err = self.errors.labels(endpoint, model, code).inc
                series = self._series[key] = (count, lambda _s: err())
            else:
                series = self._series[key] = (count, self.latency.labels(endpoint, model).observe)
        series[0]()
        series[1](seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if self.multiprocess:
            from prometheus_client import CollectorRegistry, multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
