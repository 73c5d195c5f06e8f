"""The inference server's application: Timber's own API, the Open Inference Protocol v2
(KServe / Triton / MLServer) and Prometheus metrics, over the models of a store.  One handler
serves both interfaces: ASGI (uvicorn, hypercorn) and RSGI (granian's native one).

    POST /api/predict                  {"model": NAME, "inputs": [[...], ...]} -> {"model", "outputs", "latency_us"}
    GET  /api/models, /api/model/NAME, /api/health
    GET  /v2, /v2/health/live, /v2/health/ready
    GET  /v2/models/NAME[/versions/V], /v2/models/NAME[/versions/V]/ready
    POST /v2/models/NAME[/versions/V]/infer   (JSON, and the binary tensor data extension)
    GET  /metrics

Models come from the store and are reloaded when their entry changes: every request looks at
the entry's file stamp (one `stat`), so after `timber load` or `timber remove` returns, the next
request sees the change while requests already running finish on the model they started with.

Single-row requests for one model read in the same turn of the event loop, or while a
prediction for it runs on the thread pool, are batched into one compiled call (`Batcher`); a
call with enough work runs on a thread pool (the compiled code releases the GIL), so the event
loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import orjson

from ir.diagnostics import TimberError

from .config import ServeConfig

DUMPS_OPTS = orjson.OPT_SERIALIZE_NUMPY
V2_DTYPES = {"FP32": np.float32, "FP64": np.float64}
V2_NAMES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}
JSON_HEADERS = [("content-type", "application/json")]
CPUS = os.cpu_count() or 1


class HttpError(Exception):
    """An error answered to the client: status and one-line message (never a traceback)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ----- served models --------------------------------------------------------------------------


@dataclass
class Served:
    """One model as served: the compiled model, the store stamp it was loaded at, its batcher."""

    name: str
    model: object
    stamp: tuple
    info: dict
    batcher: Batcher | None = None


class Registry:
    """The models this server answers for, kept in step with the store."""

    def __init__(self, config: ServeConfig, pool: ThreadPoolExecutor, metrics=None):
        from timber.store import Store

        self.metrics = metrics
        self.config = config
        self.store = Store(config.home)
        self.pool = pool
        self.models: dict[str, Served] = {}
        self._loading: dict[str, asyncio.Future] = {}
        self._paths: dict[str, str] = {}
        self.ready = False

    def allowed(self, name: str) -> bool:
        return not self.config.names or name in self.config.names

    def load_all(self) -> list[str]:
        """Load every model to serve at start.  Returns warnings about entries left out."""
        warnings = []
        names = self.config.names or self.store.names()
        for name in names:
            try:
                self.models[name] = self._load(name)
            except TimberError as e:
                if self.config.names:
                    raise
                warnings.append(f"not serving {name}: {e.diagnostic.message}")
        self.ready = True
        return warnings

    def _load(self, name: str) -> Served:
        from timber.store import StoreError

        stamp = self.store.stamp(name)
        if stamp is None:
            raise StoreError(f"no model named '{name}' in the store ({self.store.models})")
        model = self.store.load(name, n_jobs=self.config.threads)
        on_batch = (lambda rows: self.metrics.observe_batch(name, rows)) if self.metrics is not None else None
        return Served(name, model, stamp, model_info(name, model), Batcher(model, self.config, self.pool, on_batch))

    async def get(self, name: str) -> Served:
        """The current model `name`, reloaded if its store entry changed; 404 if not served."""
        path = self._paths.get(name)
        if path is None:
            path = self._path(name)
        current = self.models.get(name)
        try:
            st = os.stat(path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # as Store.stamp
        except FileNotFoundError:
            stamp = None
        if stamp is None:
            if current is not None:
                self.models.pop(name, None)
            raise HttpError(404, f"model '{name}' not found" + self._listing())
        if current is not None and current.stamp == stamp:
            return current
        return await self._reload(name)

    def _path(self, name: str) -> str:
        """The store file of a name this server may serve (checked once per name)."""
        from timber.store import check_name

        try:
            check_name(name)
        except TimberError:
            raise HttpError(404, f"model '{name}' not found: not a valid model name") from None
        if not self.allowed(name):
            raise HttpError(404, f"model '{name}' not found; this server serves: {', '.join(self.config.names)}")
        if len(self._paths) > 10_000:  # names asked for that never existed must not grow this forever
            self._paths.clear()
        path = self._paths[name] = str(self.store.path(name))
        return path

    async def _reload(self, name: str) -> Served:
        pending = self._loading.get(name)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = self._loading[name] = loop.run_in_executor(self.pool, self._load, name)
            pending.add_done_callback(lambda _f: self._loading.pop(name, None))
        try:
            served = await asyncio.shield(pending)
        except TimberError as e:
            raise HttpError(503, f"model '{name}' cannot be loaded: {e.diagnostic.message}") from None
        self.models[name] = served
        return served

    def _listing(self) -> str:
        names = sorted(self.models) if self.config.names else self.store.names()
        return f"; served models: {', '.join(names)}" if names else "; no models are served"

    async def refresh(self) -> list[Served]:
        """Every served model, after picking up store changes (for listings)."""
        names = self.config.names or self.store.names()
        out = []
        for name in names:
            try:
                out.append(await self.get(name))
            except HttpError:
                continue
        return out


def model_info(name: str, model) -> dict:
    """What `/api/models` and `/api/model/NAME` say about a model."""
    meta = getattr(model, "metadata", {}) or {}
    info = {
        "name": name,
        "format": meta.get("format"),
        "objective": meta.get("objective"),
        "n_features": model.n_features,
        "n_outputs": model.n_outputs,
        "input_dtype": np.dtype(model._predict.in_dtype).name,
        "output_dtype": np.dtype(model._predict.out_dtype).name,
        "output_shape": ["n"] if model.n_outputs == 1 else ["n", model.n_outputs],
    }
    for key in ("feature_names", "feature_types", "source", "source_sha256"):
        if key in meta:
            info[key] = meta[key]
    header = getattr(model, "_artifact_header", None)
    if header:
        info["timber_version"] = header["timber_version"]
        info["created"] = header["created"]
    return info


class Batcher:
    """Coalesces single-row requests for one model into batches.

    The first row schedules a batch for the loop's next turn, so rows whose requests are read in
    the same turn join it; rows that arrive while a batch runs on the thread pool form the next
    one (bounded by `config.max_batch` rows, and optionally waited for `config.batch_wait`
    seconds).  A batch small enough to run inline (`config.inline_work`) is one plain callback,
    no task.  Each row gets back exactly what `predict` returns for it: the compiled code handles
    every row on its own, so a row's result does not depend on its batch."""

    def __init__(self, model, config: ServeConfig, pool: ThreadPoolExecutor, on_batch=None):
        self.model = model
        self.config = config
        self.pool = pool
        self.on_batch = on_batch  # called with the rows of each batch (a metric)
        self.n_jobs = config.threads or CPUS  # given, so that predict does not ask the OS each call
        self.pending: list[tuple[np.ndarray, asyncio.Future]] = []  # rows of shape (1, n_features)
        self.busy = False  # a batch is scheduled or running

    def predict_row(self, row: np.ndarray) -> asyncio.Future:
        """`predict` of one row (shape (1, n_features)): a future of the (1,) or (1, n_outputs) result."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((row, fut))
        if not self.busy:
            self.busy = True
            self._schedule(loop)
        return fut

    def _schedule(self, loop) -> None:
        if self.config.batch_wait > 0 and len(self.pending) < self.config.max_batch:
            loop.call_later(self.config.batch_wait, self._run, loop)
        else:
            loop.call_soon(self._run, loop)

    def _run(self, loop) -> None:
        """Take the next batch and predict it: inline, or on the thread pool (then `_done`)."""
        batch = self.pending[: self.config.max_batch]
        del self.pending[: len(batch)]
        X = np.concatenate([r for r, _ in batch]) if len(batch) > 1 else batch[0][0]
        if self.on_batch is not None:
            self.on_batch(len(batch))
        if X.shape[0] * (self.model._work_per_row + 1) > self.config.inline_work:
            job = loop.run_in_executor(self.pool, functools.partial(self.model.predict, X, n_jobs=self.n_jobs))
            job.add_done_callback(functools.partial(self._finished, loop, batch))
            return
        try:
            Y = self.model.predict(X, n_jobs=self.n_jobs)
        except Exception as e:  # noqa: BLE001 - handed to every waiting request
            self._done(loop, batch, e, None)
        else:
            self._done(loop, batch, None, Y)

    def _finished(self, loop, batch, job: asyncio.Future) -> None:
        try:
            Y = job.result()
        except BaseException as e:  # noqa: BLE001 - handed to every waiting request
            self._done(loop, batch, e, None)
        else:
            self._done(loop, batch, None, Y)

    def _done(self, loop, batch, error, Y) -> None:
        for i, (_, f) in enumerate(batch):
            if not f.done():
                if error is not None:
                    f.set_exception(error)
                else:
                    f.set_result(Y[i : i + 1])
        if self.pending:
            self._schedule(loop)
        else:
            self.busy = False


async def run_predict(model, X: np.ndarray, pool: ThreadPoolExecutor, config: ServeConfig) -> np.ndarray:
    """`model.predict(X)`: on the thread pool when the call has enough work to be worth the
    hand-off (the compiled code releases the GIL), else right here (a few microseconds)."""
    work = X.shape[0] * (model._work_per_row + 1)
    n_jobs = config.threads or CPUS  # given, so that predict does not ask the OS for each call
    if work <= config.inline_work:
        return model.predict(X, n_jobs=n_jobs)
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(model.predict, X, n_jobs=n_jobs))


# ----- request decoding -----------------------------------------------------------------------


def rows_from_json(inputs, n_features: int, what: str = "inputs") -> np.ndarray:
    """Rows from JSON lists of numbers (`null` = missing, NaN) as float64; 400 on anything else."""
    if not isinstance(inputs, list) or not inputs:
        raise HttpError(400, f"'{what}' must be a non-empty list of rows (lists of {n_features} numbers)")
    try:
        X = np.array(inputs)
    except (ValueError, TypeError):
        raise HttpError(400, f"'{what}' rows must all have {n_features} numbers") from None
    if X.dtype.kind not in "fi":
        if X.dtype.kind != "O":
            raise HttpError(400, f"'{what}' must hold numbers (or null for missing), found {_kind(X.dtype)}")
        X = _with_nulls(X, n_features, what)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        raise HttpError(400, f"'{what}' must be rows of numbers: expected shape [n, {n_features}], got {list(X.shape)}")
    if X.shape[1] != n_features:
        raise HttpError(400, f"expected {n_features} features per row, got {X.shape[1]}: expected shape [n, {n_features}]")
    return X.astype(np.float64, copy=False)


def _kind(dtype) -> str:
    return {"U": "strings", "S": "strings", "b": "booleans"}.get(dtype.kind, str(dtype))


def _with_nulls(X: np.ndarray, n_features: int, what: str) -> np.ndarray:
    """An object array from JSON: numbers and None only (None is NaN), anything else a 400."""
    flat = X.reshape(-1)
    for v in flat:
        if v is None or (type(v) in (int, float)):
            continue
        if isinstance(v, list):
            raise HttpError(400, f"'{what}' rows must all have {n_features} numbers")
        raise HttpError(400, f"'{what}' must hold numbers (or null for missing), found {type(v).__name__} {_short(v)}")
    return np.array([np.nan if v is None else v for v in flat], np.float64).reshape(X.shape)


def _short(v) -> str:
    text = orjson.dumps(v).decode() if isinstance(v, (str, bool, dict)) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_no_bools(body: bytes, X_source) -> None:
    """JSON `true`/`false` among numbers become 1/0 in numpy: refuse them (only scanned for when
    the body contains such a literal)."""
    if b"true" not in body and b"false" not in body:
        return

    def walk(v):
        if isinstance(v, bool):
            raise HttpError(400, f"inputs must hold numbers (or null for missing), found boolean {str(v).lower()}")
        if isinstance(v, list):
            for x in v:
                walk(x)

    walk(X_source)


# ----- the application ------------------------------------------------------------------------


class App:
    """The ASGI application (one per worker process)."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.pool = ThreadPoolExecutor(max_workers=max(1, config.threads or os.cpu_count() or 1), thread_name_prefix="timber-serve")
        from .metrics import Metrics

        self.metrics = Metrics()
        self.registry = Registry(config, self.pool, self.metrics)
        self.started = False

    def startup(self) -> list[str]:
        warnings = self.registry.load_all()
        self.started = True
        return warnings

    async def __call__(self, scope, receive, send):
        """ASGI (uvicorn, hypercorn, granian's ASGI interface)."""
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind != "http":
            return
        status, body, headers = await self._handle(Request(scope["method"], scope["path"], _AsgiHeaders(scope), _asgi_chunks(receive)))
        hdrs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers] if headers else [(b"content-type", b"application/json")]
        hdrs.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    async def __rsgi__(self, scope, protocol):
        """RSGI, granian's native interface (its Rust HTTP server hands over the parsed request
        and takes the whole response in one call: the fastest path measured)."""
        if scope.proto != "http":
            return
        status, body, headers = await self._handle(Request(scope.method, scope.path, scope.headers, protocol, protocol))
        protocol.response_bytes(status, headers or JSON_HEADERS, body)

    def __rsgi_init__(self, loop) -> None:
        if not self.started:
            for w in self.startup():
                print(f"timber serve: warning: {w}", flush=True)

    def __rsgi_del__(self, loop) -> None:
        self.pool.shutdown(wait=True)

    async def _handle(self, req: Request) -> tuple[int, bytes, list | None]:
        """(status, body, headers or None for JSON) of one request, and its metrics."""
        t0 = time.perf_counter()
        label = "other"
        model = ""
        try:
            label, model, status, body, headers = await self._route(req)
        except HttpError as e:
            status, body, headers = e.status, orjson.dumps({"error": e.message}), None
            label, model = self._labels(req)
        except Exception as e:  # noqa: BLE001 - a bug must still answer JSON, not drop the connection
            status, body, headers = 500, orjson.dumps({"error": f"internal error: {type(e).__name__}: {e}"}), None
            label, model = self._labels(req)
        if label != "metrics":
            self.metrics.observe(label, model, status, time.perf_counter() - t0)
        return status, body, headers

    def _labels(self, req: Request) -> tuple[str, str]:
        """Metric labels of a failed request: its endpoint, and its model only if that model is
        served (an arbitrary name in a URL must not become a new time series)."""
        parts = [p for p in req.path.split("/") if p]
        model = req.model
        if parts[:1] == ["api"]:
            label = {"predict": "predict", "models": "models", "model": "model", "health": "health"}.get(
                parts[1] if len(parts) > 1 else "", "other"
            )
            if label == "model" and len(parts) == 3:
                model = parts[2]
        elif parts[:2] == ["v2", "models"] and len(parts) >= 3:
            label = "v2_infer" if parts[-1] == "infer" else "v2_ready" if parts[-1] == "ready" else "v2_metadata"
            model = parts[2]
        else:
            label = "other"
        return label, model if model in self.registry.models else ""

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if not self.started:
                        for w in self.startup():
                            print(f"timber serve: warning: {w}", flush=True)
                except TimberError as e:
                    await send({"type": "lifespan.startup.failed", "message": e.render()})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, req: Request):
        method, path = req.method, req.path
        if path == "/api/predict" and method == "POST":  # the hot path first
            return await self._predict(req)
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            return await self._api(method, parts[1:], req)
        if parts[:1] == ["v2"]:
            return await self._v2(method, parts[1:], req)
        if parts == ["metrics"]:
            _method(method, "GET")
            body, ctype = self.metrics.render()
            return "metrics", "", 200, body, [("content-type", ctype)]
        raise HttpError(404, f"no such endpoint: {method} {path}")

    # ----- Timber's own API ----------------------------------------------------------------------

    async def _api(self, method, parts, req):
        if parts == ["health"]:
            _method(method, "GET")
            status = "ok" if self.registry.ready else "starting"
            return (
                "health",
                "",
                200 if self.registry.ready else 503,
                orjson.dumps({"status": status, "models": len(self.registry.models)}),
                None,
            )
        if parts == ["models"]:
            _method(method, "GET")
            served = await self.registry.refresh()
            return "models", "", 200, orjson.dumps({"models": [s.info for s in served]}), None
        if len(parts) == 2 and parts[0] == "model":
            _method(method, "GET")
            served = await self.registry.get(parts[1])
            return "model", served.name, 200, orjson.dumps(served.info), None
        if parts == ["predict"]:
            _method(method, "POST")
            return await self._predict(req)
        raise HttpError(404, f"no such endpoint: {method} /api/{'/'.join(parts)}")

    async def _predict(self, req: Request):
        body = await self._body(req)
        t0 = time.perf_counter()
        doc = _json(body)
        if not isinstance(doc, dict):
            raise HttpError(400, 'the body must be a JSON object {"model": NAME, "inputs": [[...], ...]}')
        name = doc.get("model")
        if not isinstance(name, str):
            raise HttpError(400, "'model' must be the name of a served model (a string)")
        if "inputs" not in doc:
            raise HttpError(400, "'inputs' is missing: give a list of rows")
        served = await self.registry.get(name)
        req.model = name
        inputs = doc["inputs"]
        check_no_bools(body, inputs)
        X = rows_from_json(inputs, served.model.n_features)
        self._check_rows(X.shape[0])
        one_d_input = isinstance(inputs[0], (int, float)) or inputs[0] is None
        if X.shape[0] == 1 and not one_d_input:
            Y = await served.batcher.predict_row(X)
        else:
            Y = await run_predict(served.model, X, self.pool, self.config)
        latency = (time.perf_counter() - t0) * 1e6
        return "predict", name, 200, orjson.dumps({"model": name, "outputs": Y, "latency_us": round(latency, 1)}, option=DUMPS_OPTS), None

    # ----- Open Inference Protocol v2 ----------------------------------------------------------

    async def _v2(self, method, parts, req: Request):
        if not parts:
            _method(method, "GET")
            from timber import __version__

            meta = {"name": "timber", "version": __version__, "extensions": ["binary_tensor_data"]}
            return "v2_server", "", 200, orjson.dumps(meta), None
        if parts[0] == "health" and len(parts) == 2 and parts[1] in ("live", "ready"):
            _method(method, "GET")
            ok = parts[1] == "live" or self.registry.ready
            return "v2_health", "", 200 if ok else 503, orjson.dumps({"live" if parts[1] == "live" else "ready": ok}), None
        if parts[0] != "models" or len(parts) < 2:
            raise HttpError(404, f"no such endpoint: {method} /v2/{'/'.join(parts)}")
        name, rest = parts[1], parts[2:]
        if len(rest) >= 2 and rest[0] == "versions":
            if rest[1] != "1":
                await self.registry.get(name)  # an unknown model is a 404 about the model first
                raise HttpError(404, f"model '{name}' has no version '{rest[1]}'; its only version is 1")
            rest = rest[2:]
        if not rest:
            _method(method, "GET")
            served = await self.registry.get(name)
            return "v2_metadata", name, 200, orjson.dumps(_v2_metadata(served)), None
        if rest == ["ready"]:
            _method(method, "GET")
            await self.registry.get(name)
            return "v2_ready", name, 200, orjson.dumps({"name": name, "ready": True}), None
        if rest == ["infer"]:
            _method(method, "POST")
            return await self._v2_infer(name, req)
        raise HttpError(404, f"no such endpoint: {method} /v2/{'/'.join(parts)}")

    async def _v2_infer(self, name, req: Request):
        body = await self._body(req)
        served = await self.registry.get(name)
        model = served.model
        header_len = req.headers.get("inference-header-content-length")
        if header_len is not None:
            try:
                n = int(header_len)
            except ValueError:
                raise HttpError(400, "Inference-Header-Content-Length is not an integer") from None
            if not 0 <= n <= len(body):
                raise HttpError(400, f"Inference-Header-Content-Length {n} is outside the body ({len(body)} bytes)")
            req, binary = _json(body[:n]), memoryview(body)[n:]
        else:
            req, binary = _json(body), memoryview(b"")
        if not isinstance(req, dict) or not isinstance(req.get("inputs"), list):
            raise HttpError(400, 'the request must be a JSON object with "inputs": [{"name", "shape", "datatype", "data"}]')
        if len(req["inputs"]) != 1:
            raise HttpError(400, f"model '{name}' takes one input tensor of shape [n, {model.n_features}], got {len(req['inputs'])} inputs")
        if header_len is None and isinstance(req["inputs"][0], dict):
            check_no_bools(body, req["inputs"][0].get("data"))
        X = _v2_tensor(req["inputs"][0], binary, model.n_features)
        self._check_rows(X.shape[0])
        Y = await run_predict(model, X, self.pool, self.config)
        out_name = _v2_output_name(req)
        binary_out = _wants_binary(req)
        out = {"name": out_name, "shape": list(Y.shape), "datatype": V2_NAMES[Y.dtype]}
        resp = {"model_name": name, "model_version": "1", "outputs": [out]}
        if isinstance(req.get("id"), str):
            resp["id"] = req["id"]
        if not binary_out:
            out["data"] = Y.reshape(-1)
            return "v2_infer", name, 200, orjson.dumps(resp, option=DUMPS_OPTS), None
        raw = np.ascontiguousarray(Y).astype(Y.dtype.newbyteorder("<"), copy=False).tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        head = orjson.dumps(resp)
        headers = [("content-type", "application/octet-stream"), ("inference-header-content-length", str(len(head)))]
        return "v2_infer", name, 200, head + raw, headers

    # ----- helpers -------------------------------------------------------------------------------

    def _check_rows(self, n: int) -> None:
        if n > self.config.max_rows:
            raise HttpError(413, f"{n} rows in one request; the limit is {self.config.max_rows} (timber serve --max-rows)")

    async def _body(self, req: Request) -> bytes:
        """The request body; 413 from the declared length before reading, or once it grows past
        the limit (a body without Content-Length)."""
        limit = self.config.max_body
        declared = req.headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                raise HttpError(413, f"request body of {int(declared)} bytes; the limit is {limit} (timber serve --max-body)")
            if req.protocol is not None:  # RSGI: the server reads the declared length in one call
                return await req.protocol()
        chunks, size = [], 0
        async for chunk in req.chunks:
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"request body over {limit} bytes (timber serve --max-body)")
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Request:
    """What the handlers see of a request, from ASGI or RSGI: method, path, headers (`get` of a
    lower-case name), the body's chunks, and the model it named (for metric labels)."""

    __slots__ = ("method", "path", "headers", "chunks", "protocol", "model")

    def __init__(self, method: str, path: str, headers, chunks, protocol=None):
        self.method = method
        self.path = path
        self.headers = headers
        self.chunks = chunks
        self.protocol = protocol
        self.model = ""


class _AsgiHeaders:
    """`get(name)` over an ASGI scope's header list (names are lower-case bytes)."""

    __slots__ = ("scope",)

    def __init__(self, scope):
        self.scope = scope

    def get(self, key: str, default=None):
        k = key.encode("latin-1")
        for name, value in self.scope["headers"]:
            if name == k:
                return value.decode("latin-1")
        return default


async def _asgi_chunks(receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "the client disconnected")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise HttpError(405, f"method {method} not allowed here; use {allowed}")


def _json(body: bytes):
    if not body:
        raise HttpError(400, "empty request body: expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HttpError(400, f"malformed JSON: {e}") from None


def _v2_metadata(served: Served) -> dict:
    m = served.model
    in_t = V2_NAMES[np.dtype(m._predict.in_dtype)]
    out_t = V2_NAMES[np.dtype(m._predict.out_dtype)]
    out_shape = [-1] if m.n_outputs == 1 else [-1, m.n_outputs]
    return {
        "name": served.name,
        "versions": ["1"],
        "platform": "timber",
        "inputs": [{"name": "input-0", "datatype": in_t, "shape": [-1, m.n_features]}],
        "outputs": [{"name": "output-0", "datatype": out_t, "shape": out_shape}],
        "parameters": {k: v for k, v in served.info.items() if k in ("format", "objective")},
    }


def _v2_tensor(spec, binary: memoryview, n_features: int) -> np.ndarray:
    """The input tensor of a v2 request as a float64/float32 array of shape (n, n_features)."""
    if not isinstance(spec, dict):
        raise HttpError(400, "an input tensor must be an object {name, shape, datatype, data}")
    dtype_name = spec.get("datatype")
    if dtype_name not in V2_DTYPES:
        raise HttpError(400, f"input datatype {dtype_name!r} is not supported; use FP32 or FP64")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise HttpError(400, f"input 'shape' must be a list of sizes, e.g. [n, {n_features}]")
    if len(shape) != 2 or shape[1] != n_features:
        raise HttpError(400, f"input shape {shape} does not match the model: expected [n, {n_features}]")
    count = shape[0] * shape[1]
    dtype = np.dtype(V2_DTYPES[dtype_name]).newbyteorder("<")
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise HttpError(400, "input 'parameters' must be an object")
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        if not isinstance(size, int) or size != count * dtype.itemsize or size > len(binary):
            raise HttpError(400, f"binary_data_size {size!r} does not match shape {shape} of {dtype_name} ({count * dtype.itemsize} bytes)")
        return np.frombuffer(binary[:size], dtype).reshape(shape)
    if "data" not in spec:
        raise HttpError(400, "input tensor has no 'data'")
    data = spec["data"]
    if not isinstance(data, list):
        raise HttpError(400, "input 'data' must be a list of numbers")
    try:
        X = np.array(data)
    except (ValueError, TypeError):
        raise HttpError(400, "input 'data' must be a flat (or [n][f] nested) list of numbers") from None
    if X.dtype.kind == "O":
        X = _with_nulls(X, n_features, "data")
    elif X.dtype.kind not in "fi" and X.size:
        raise HttpError(400, f"input 'data' must hold numbers, found {_kind(X.dtype)}")
    if X.size != count:
        raise HttpError(400, f"input 'data' holds {X.size} values; shape {shape} needs {count}")
    return X.reshape(shape).astype(dtype, copy=False)


def _v2_output_name(req: dict) -> str:
    outs = req.get("outputs")
    if isinstance(outs, list) and outs and isinstance(outs[0], dict) and isinstance(outs[0].get("name"), str):
        return outs[0]["name"]
    return "output-0"


def _wants_binary(req: dict) -> bool:
    params = req.get("parameters")
    if isinstance(params, dict) and params.get("binary_data_output") is True:
        return True
    outs = req.get("outputs")
    if isinstance(outs, list):
        for o in outs:
            p = o.get("parameters") if isinstance(o, dict) else None
            if isinstance(p, dict) and p.get("binary_data") is True:
                return True
    return False


def create_app() -> App:
    """The application for a worker process, configured from the environment (`ServeConfig.from_env`)."""
    return App(ServeConfig.from_env())
