"""What a server worker needs to know, passed from `timber serve` to every worker process
through one environment variable (workers are separate processes started by the ASGI server)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

ENV = "TIMBER_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """`home`: the store.  `names`: the models to serve (empty: every model in the store, also
    ones loaded while serving).  `max_body` (bytes) and `max_rows`: larger requests get 413.
    `max_batch`: rows per batched call.  `batch_wait`: seconds a batch waits for more rows
    (0: none; rows that arrive while a call runs join the next batch anyway).  `threads`:
    prediction threads per worker (None: all cores).  `inline_work`: a call with at most this
    much work (rows x tree levels) runs on the event loop, where the hand-off to a thread would
    cost more than the call."""

    home: str | None = None
    names: list[str] = field(default_factory=list)
    max_body: int = 64 << 20
    max_rows: int = 100_000
    max_batch: int = 256
    batch_wait: float = 0.0
    threads: int | None = None
    inline_work: int = 20_000

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        text = os.environ.get(ENV)
        return cls(**json.loads(text)) if text else cls()
