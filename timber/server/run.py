"""Starting the HTTP server: granian (its native RSGI interface) or uvicorn (ASGI, with uvloop
and httptools); hypercorn is kept for measuring.

Measured with `tools/bench_serve.py` on the shared 2-core AMD EPYC (demo model, 2 workers,
keep-alive clients sending single-row `POST /api/predict`, wrk, all servers measured in
interleaved rounds): granian answers as many requests per second as uvicorn at 8 clients and
about twice as many at 64 (its HTTP stack is Rust and takes a whole response in one call; a
constant-answer app reaches 18-23k requests/s on granian, 7-9k on uvicorn at 64 clients), while
uvicorn answers one client at a time with lower latency (p50 0.26 against 0.37 ms).
hypercorn (pure-Python h11) is far behind both.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile

from ir.diagnostics import TimberError

from .config import ENV, ServeConfig

SERVERS = ("uvicorn", "granian", "hypercorn")
APP = "timber.server.app:create_app"


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 11434, workers: int = 1, server: str = "uvicorn", log=print) -> int:
    """Check the models, then run the server until Ctrl-C / SIGTERM (clean shutdown)."""
    if server not in SERVERS:
        raise TimberError(f"unknown server '{server}'; choose one of: {', '.join(SERVERS)}")
    _check_installed(server)
    _check_models(config, log)
    os.environ[ENV] = config.to_env()
    metrics_dir = None
    if workers > 1:
        # prometheus_client adds up the workers' counts from files in this directory
        metrics_dir = tempfile.mkdtemp(prefix="timber-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    log(f"timber serve: http://{host}:{port} ({server}, {workers} worker{'s' if workers > 1 else ''}); Ctrl-C stops")
    try:
        if server == "uvicorn":
            _uvicorn(host, port, workers)
        elif server == "granian":
            _granian(host, port, workers)
        else:
            _hypercorn(host, port, workers)
    except KeyboardInterrupt:
        pass
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _check_installed(server: str) -> None:
    import importlib.util

    missing = [
        m
        for m in ({"uvicorn": ("uvicorn",), "granian": ("granian",), "hypercorn": ("hypercorn",)}[server] + ("orjson", "prometheus_client"))
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise TimberError(f"timber serve needs {', '.join(missing)}: pip install 'timber[serve]'")


def _check_models(config: ServeConfig, log) -> None:
    """Fail before binding a port if a named model is missing or damaged; warn about others."""
    from timber.store import Store

    store = Store(config.home)
    names = config.names or store.names()
    for name in names:
        try:
            store.read(name)
        except TimberError as e:
            if config.names:
                raise
            log(f"timber serve: warning: not serving {name}: {e.diagnostic.message}")
    if not names:
        log(f"timber serve: warning: the store {store.models} is empty; models added with `timber load` are served as they arrive")


def _uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if _has("uvloop") else "asyncio",
        http="httptools" if _has("httptools") else "h11",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def _granian(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(APP, factory=True, address=host, port=port, workers=workers, interface=Interfaces.RSGI, log_level="warning").serve()


def _hypercorn(host: str, port: int, workers: int) -> None:
    from hypercorn.config import Config
    from hypercorn.run import run

    cfg = Config()
    cfg.bind = [f"{host}:{port}"]
    cfg.workers = workers
    cfg.application_path = APP + "()"
    cfg.loglevel = "WARNING"
    if workers == 1:
        # hypercorn's run() with one worker serves in this process
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(cfg)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
