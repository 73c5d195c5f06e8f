"""A small HTTP/1.1 load generator: N keep-alive connections, each sending requests back to
back for a fixed time (or count), recording latency and checking every answer.

Used by the server's load test and by `tools/bench_serve.py`.  It speaks just enough HTTP for
a server that answers with Content-Length (uvicorn, granian, hypercorn, the original
timber-compiler's HTTP/1.0 server, reconnecting when a server closes the connection): no
chunked bodies, no pipelining.  The time to reconnect counts in the request's latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    clients: int
    seconds: float
    requests: int = 0
    errors: int = 0
    mismatches: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        return float(np.percentile(self.latencies, p)) if self.latencies else float("nan")

    def summary(self) -> str:
        return (
            f"{self.clients} clients: {self.rps:,.0f} req/s, p50 {self.percentile(50) * 1e3:.2f} ms, "
            f"p99 {self.percentile(99) * 1e3:.2f} ms, {self.requests} requests, {self.errors} errors, {self.mismatches} wrong answers"
        )


def request_bytes(host: str, port: int, path: str, body: bytes, method: str = "POST", headers: dict | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    version, status = lines[0].split(b" ", 2)[:2]
    keep = version == b"HTTP/1.1"
    length = 0
    for line in lines[1:]:
        key = line[:16].lower()
        if key.startswith(b"content-length:"):
            length = int(line[15:].strip())
        elif key.startswith(b"connection:"):
            keep = line[11:].strip().lower() == b"keep-alive" or (keep and line[11:].strip().lower() != b"close")
    body = await reader.readexactly(length) if length else b""
    return int(status), body, keep


async def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    check: Callable[[int, int, bytes], bool] | None,
    clients: int,
    seconds: float,
    max_requests: int | None = None,
) -> LoadResult:
    """`clients` connections send `requests` (round robin, each client from its own offset)
    for `seconds` (and at most `max_requests` in all).  `check(i, status, body)` says whether
    the answer to requests[i] is right."""
    result = LoadResult(clients, seconds)
    deadline = time.perf_counter() + seconds
    budget = [max_requests if max_requests is not None else 1 << 62]

    async def client(k: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:  # refused, or timed out in a full listen backlog: an error, not a crash
            result.errors += 1
            result.first_error = result.first_error or f"connect: {e}"
            return
        i = (k * 7919) % len(requests)
        try:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                t = time.perf_counter()
                writer.write(requests[i])
                try:
                    status, body, keep = await _read_response(reader)
                    if not keep:  # an HTTP/1.0 server (the original timber-compiler's): a connection per request
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                except (asyncio.IncompleteReadError, OSError) as e:
                    result.errors += 1
                    result.first_error = result.first_error or f"connection: {e}"
                    return
                result.latencies.append(time.perf_counter() - t)
                result.requests += 1
                if status != 200:
                    result.errors += 1
                    result.first_error = result.first_error or f"status {status}: {body[:200]!r}"
                elif check is not None and not check(i, status, body):
                    result.mismatches += 1
                    result.first_error = result.first_error or f"wrong answer to request {i}: {body[:200]!r}"
                i = (i + 1) % len(requests)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    result.seconds = time.perf_counter() - t0
    return result


def load(host, port, requests, check, clients, seconds, max_requests=None) -> LoadResult:
    """`run_load` from synchronous code (uses uvloop when installed)."""
    try:
        import uvloop

        return uvloop.run(run_load(host, port, requests, check, clients, seconds, max_requests))
    except ImportError:
        return asyncio.run(run_load(host, port, requests, check, clients, seconds, max_requests))
