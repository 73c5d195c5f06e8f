"""Peer helper: lleaves (LightGBM -> LLVM), run inside a virtual environment with llvmlite <= 0.44.

lleaves 1.3 does not run on the llvmlite 0.50 that Timber uses, hence the separate environment and process.
`Model.compile(cache=path)` writes the object file the first time and loads it afterwards, so the first
compile time is recorded beside it.  `predict(X, n_jobs=threads)` applies the objective's transform.

Usage: <venv>/bin/python lleaves_peer.py JOB.json   (see _common.py for the job format)
"""

import sys
import time
from pathlib import Path

from _common import cached_compile_time, record_compile_time, run_helper


def body(job: dict, result) -> object:
    """Compile (or reload) the model with lleaves and return predict(X, threads)."""
    import lleaves

    art = Path(job["artifact_dir"])
    art.mkdir(parents=True, exist_ok=True)
    obj, stamp = art / "lleaves.o", art / "compile_time.json"
    model = lleaves.Model(model_file=job["model"])
    cached = cached_compile_time(stamp)
    if cached is not None and obj.exists():
        model.compile(cache=str(obj))
        result.compile_s = cached
        result.compile_label = "compile (1st build, cached)"
    else:
        obj.unlink(missing_ok=True)
        t0 = time.perf_counter()
        model.compile(cache=str(obj))
        result.compile_s = time.perf_counter() - t0
        record_compile_time(stamp, result.compile_s)

    def predict(X, threads):
        return model.predict(X, n_jobs=threads)

    return predict


if __name__ == "__main__":
    run_helper(body, sys.argv[1])
