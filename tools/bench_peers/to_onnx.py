"""Peer helper: convert an XGBoost or LightGBM model file to ONNX with onnxmltools (run in its own venv).

onnxmltools is not a Timber dependency, so it lives in a virtual environment that sees the main
environment's xgboost/lightgbm/onnx (`--system-site-packages`).  ONNX Runtime itself is timed in the
bench's own process.  Writes the .onnx file and a JSON with the conversion time.

Usage: <venv>/bin/python to_onnx.py FRAMEWORK MODEL N_FEATURES OUT.onnx
"""

import json
import sys
import time
from pathlib import Path


def convert(framework: str, model_path: str, n_features: int, out: Path) -> float:
    """Convert the model and save it to `out`; return the seconds the conversion took."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("input", FloatTensorType([None, n_features]))]
    t0 = time.perf_counter()
    if framework == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=model_path)
        onx = onnxmltools.convert_xgboost(booster, initial_types=types)
    elif framework == "lightgbm":
        import lightgbm

        booster = lightgbm.Booster(model_file=model_path)
        onx = onnxmltools.convert_lightgbm(booster, initial_types=types, zipmap=False)
    else:
        raise ValueError(f"onnxmltools does not convert {framework}")
    seconds = time.perf_counter() - t0
    out.write_bytes(onx.SerializeToString())
    return seconds


if __name__ == "__main__":
    fw, path, nf, dest = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    secs = convert(fw, path, nf, dest)
    dest.with_suffix(".json").write_text(json.dumps({"compile_s": secs}))
