"""Peer helper: the original timber-compiler from PyPI, run inside its own virtual environment.

It installs a top-level package named `timber`, the same name as ours, so it cannot share a process
with us.  API used (read from the installed `timber/runtime/predictor.py`):
`TimberPredictor.from_model(path, format_hint=...)` emits C99, builds it with `gcc -O3` into a temporary
directory and loads it with ctypes; `predict(X)` runs the whole batch on one thread (it has no thread
option).  The built artifact directory is cached with its first build time, because a multi-thousand-
tree model takes gcc minutes; `from_artifact(dir)` reloads it.

Usage: <venv>/bin/python timber_compiler.py JOB.json   (see _common.py for the job format)
"""

import shutil
import sys
import time
from pathlib import Path

from _common import cached_compile_time, record_compile_time, run_helper


def body(job: dict, result) -> object:
    """Build (or reload) the compiled model and return predict(X, threads)."""
    from timber.runtime.predictor import TimberPredictor

    art = Path(job["artifact_dir"])
    stamp = art / "compile_time.json"
    cached = cached_compile_time(stamp)
    if cached is not None and any(art.glob("libtimber_model.*")):
        predictor = TimberPredictor.from_artifact(art, build=False)
        result.compile_s = cached
        result.compile_label = "compile (1st build, cached)"
    else:
        t0 = time.perf_counter()
        predictor = TimberPredictor.from_model(job["model"], format_hint=job.get("format_hint"))
        result.compile_s = time.perf_counter() - t0
        # from_model builds in a temporary directory that is deleted at exit; keep a copy.
        art.mkdir(parents=True, exist_ok=True)
        shutil.copytree(predictor._lib_path.parent, art, dirs_exist_ok=True)
        record_compile_time(stamp, result.compile_s)
    result.note = "single-threaded C, no thread option: the all-thread columns repeat 1T"

    def predict(X, threads):
        # The predictor has no thread control: every call runs on one thread.
        return predictor.predict(X)

    predict.single_threaded = True
    return predict


if __name__ == "__main__":
    run_helper(body, sys.argv[1])
