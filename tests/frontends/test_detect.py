"""Format detection by content (then extension), dispatch to front-ends, and clear errors."""

from __future__ import annotations

import importlib.util
import json
import pickle

import numpy as np
import pytest

from ir.diagnostics import TimberError
from ir.verifier import verify
from timber import detect
from timber.detect import FORMATS, Format, detect_format, load_model

URDF = """<?xml version="1.0"?>
<robot name="arm">
  <link name="base"/><link name="tip"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="tip"/><axis xyz="0 0 1"/></joint>
</robot>
"""


@pytest.fixture(scope="module")
def xgb_model():
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    return xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, X[:, 0]), 2)


def _write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("name", ["model.json", "model.bin", "model", "m.JSON"])
def test_xgboost_json_by_content(xgb_model, tmp_path, name):
    p = _write(tmp_path / name, bytes(xgb_model.save_raw("json")))
    assert detect_format(p) == "xgboost"


@pytest.mark.parametrize("name", ["model.ubj", "model.bst", "weights.dat"])
def test_xgboost_ubj_by_content(xgb_model, tmp_path, name):
    assert detect_format(_write(tmp_path / name, bytes(xgb_model.save_raw("ubj")))) == "xgboost"


def test_legacy_xgboost_binary_by_extension(tmp_path):
    raw = np.array([0.5], "<f4").tobytes() + np.array([127, 0], "<u4").tobytes() + bytes(120)
    assert detect_format(_write(tmp_path / "old.model", raw)) == "xgboost"
    with pytest.raises(TimberError, match="legacy binary"):
        load_model(tmp_path / "old.model")
    with pytest.raises(TimberError, match="cannot tell which framework"):
        detect_format(_write(tmp_path / "old.dat", raw))


@pytest.mark.parametrize("name", ["model.txt", "model.model", "lgb"])
def test_lightgbm_text(tmp_path, name):
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    b = lgb.train({"objective": "regression", "num_leaves": 4, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, X[:, 0]), 2)
    assert detect_format(_write(tmp_path / name, b.model_to_string())) == "lightgbm"


def test_catboost_cbm_and_json(tmp_path):
    cb = pytest.importorskip("catboost")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    m = cb.CatBoostRegressor(iterations=3, depth=2, verbose=False, thread_count=1, allow_writing_files=False)
    m.fit(X, X[:, 0])
    m.save_model(str(tmp_path / "m.cbm"))
    m.save_model(str(tmp_path / "m.json"), format="json")
    assert detect_format(tmp_path / "m.cbm") == "catboost"
    assert detect_format(tmp_path / "m.json") == "catboost"


def test_catboost_json_with_ctr_tables_first(tmp_path):
    """A CatBoost JSON export of a model with CTRs starts with its (possibly huge) `ctr_data`
    tables: the keys the sniffer otherwise looks for may lie beyond the head it reads."""
    padding = ", ".join(f'"{i}": {{"hash_map": [{", ".join(["1"] * 50)}]}}' for i in range(2000))
    text = '{\n  "ctr_data":\n    {' + padding + '},\n  "features_info": {}\n}'
    assert detect_format(_write(tmp_path / "m.json", text)) == "catboost"


def test_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, producer_name="timber-test")
    for name in ("m.onnx", "m.bin"):
        onnx.save(model, str(tmp_path / name))
        assert detect_format(tmp_path / name) == "onnx"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_sklearn_pickle(tmp_path, protocol):
    lm = pytest.importorskip("sklearn.linear_model")
    model = lm.LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    assert detect_format(_write(tmp_path / "m.pkl", pickle.dumps(model, protocol=protocol))) == "sklearn"


def test_urdf(tmp_path):
    assert detect_format(_write(tmp_path / "arm.urdf", URDF)) == "urdf"
    assert detect_format(_write(tmp_path / "arm.xml", URDF)) == "urdf"


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("data.csv", "a,b\n1,2\n", "cannot tell which framework wrote"),
        ("notes.json", '{"hello": 1}', "cannot tell which framework wrote"),
        ("empty.json", "", "is empty"),
        ("blank.txt", "  \n\n", "is empty"),
    ],
)
def test_unrecognised_files(tmp_path, name, data, message):
    p = _write(tmp_path / name, data)
    with pytest.raises(TimberError) as e:
        detect_format(p)
    assert str(p) in str(e.value) and message in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TimberError, match="no such file"):
        detect_format(tmp_path / "nope.json")
    with pytest.raises(TimberError, match="is a directory"):
        detect_format(tmp_path)


def test_ambiguous_content_is_decided_by_extension_or_reported(tmp_path):
    both = json.dumps({"learner": {"gradient_booster": {}}, "oblivious_trees": []})
    assert detect_format(_write(tmp_path / "m.cbm", both)) == "catboost"  # only CatBoost uses .cbm
    with pytest.raises(TimberError, match="looks like XGBoost and CatBoost"):
        detect_format(_write(tmp_path / "m.json", both))


def test_load_model_dispatches_to_the_front_end(xgb_model, tmp_path):
    p = tmp_path / "model.json"
    xgb_model.save_model(str(p))
    m = load_model(p, source_name="renamed.json")
    verify(m)
    assert m.attributes["timber.format"].value == "xgboost"
    assert m.attributes["timber.source"].value == "renamed.json"


def test_a_format_without_front_end_says_what_is_supported(tmp_path, monkeypatch):
    """Adding a format is one `Format` row; until its front-end exists, loading names the supported ones."""
    toy = Format("toy_format_without_frontend", "Toy", (".toy",), lambda head: head.startswith(b"TOY1"))
    monkeypatch.setattr(detect, "FORMATS", FORMATS + (toy,))
    p = _write(tmp_path / "m.toy", "TOY1 model")
    assert detect_format(p) == "toy_format_without_frontend"
    with pytest.raises(TimberError) as e:
        load_model(p)
    msg = str(e.value)
    assert "Toy models are not supported yet; supported: " in msg and "xgboost" in msg and str(p) in msg


def test_supported_formats_are_those_with_a_front_end():
    have = detect.supported_formats()
    assert "xgboost" in have
    for f in FORMATS:
        assert (f.name in have) == (importlib.util.find_spec(f"timber.frontends.{f.name}") is not None)
