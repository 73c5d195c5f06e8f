"""Bad ONNX input: each problem is one TimberError naming the file (and the node, op, domain
and opset where there is one) and what is supported; mutated files never give a traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import timber
from ir.interpreter import run
from timber.detect import detect_format, load_model
from timber.frontends.onnx import load

from .onnxgen import tree_model


def _graph(nodes, inputs, outputs, inits=(), ml=3):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", ml)])
    m.ir_version = 8
    return m


X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])
Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])


def test_unsupported_op_names_node_op_domain_opset_and_lists_supported(tmp_path):
    p = tmp_path / "m.onnx"
    onnx.save(_graph([helper.make_node("Sin", ["X"], ["Y"], name="sine")], [X], [Y]), p)
    with pytest.raises(timber.TimberError) as e:
        load(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: node 0 'sine' (ai.onnx.Sin): error: op Sin of domain ai.onnx (opset 17) is not supported")
    assert "TreeEnsembleClassifier" in msg and "LinearRegressor" in msg


def test_opset_newer_than_known():
    m = tree_model("regressor")
    m.opset_import[1].version = 99
    with pytest.raises(timber.TimberError, match="imports ai.onnx.ml opset 99; this front-end knows ai.onnx.ml up to opset 5"):
        load(m)


@pytest.mark.parametrize("data", [b"", b"\x08\x07garbage\xff\xff\xff", tree_model("regressor").SerializeToString()[:57]])
def test_malformed_or_truncated_protobuf(tmp_path, data):
    p = tmp_path / "bad.onnx"
    p.write_bytes(data)
    with pytest.raises(timber.TimberError, match=rf"{p}.*(not a valid ONNX file|no graph)"):
        load(p)


def test_dynamic_feature_count_names_the_input_and_option():
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, None])
    with pytest.raises(timber.TimberError, match=r"input 'X' has no fixed feature count .*n_features=F"):
        load(_graph([helper.make_node("Identity", ["X"], ["Y"])], [x], [Y]))
    assert load(_graph([helper.make_node("Identity", ["X"], ["Y"])], [x], [Y]), n_features=3) is not None


def _external_model(location: str):
    t = numpy_helper.from_array(np.ones(3, np.float32), "offset")
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    e = t.external_data.add()
    e.key, e.value = "location", location
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])
    return _graph([helper.make_node("Add", ["X", "offset"], ["Y"])], [X], [y], inits=[t])


@pytest.mark.parametrize("location", ["/etc/passwd", "../secret.bin", "sub/../../x.bin"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path, location):
    p = tmp_path / "m.onnx"
    onnx.save(_external_model(location), p)
    with pytest.raises(timber.TimberError, match="only files beside the model"):
        load(p)
    with pytest.raises(timber.TimberError, match="load the model from its path"):
        load(_external_model(location))


def test_external_data_beside_the_model_is_read(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.array([1.5, -2.0, 4.0], np.float32).tobytes())
    p = tmp_path / "m.onnx"
    onnx.save(_external_model("w.bin"), p)
    X3 = np.array([[1.0, 2.0, 3.0]], np.float32)
    np.testing.assert_array_equal(run(load(p), X3), X3 + np.array([1.5, -2.0, 4.0], np.float32))
    onnx.save(_external_model("missing.bin"), p)
    with pytest.raises(timber.TimberError, match="cannot read external data 'missing.bin'"):
        load(p)


def test_unknown_output_lists_outputs():
    with pytest.raises(timber.TimberError, match=r"no output 'nope'; its outputs: label, probabilities"):
        load(tree_model("classifier", n_targets=3, multi=True), output="nope")


def test_string_label_output_is_refused():
    with pytest.raises(timber.TimberError, match="output 'label' is not computed from the input row"):
        load(tree_model("classifier", n_targets=3, multi=True), output="label")


def test_integer_input_is_refused():
    x = helper.make_tensor_value_info("X", TensorProto.INT64, [None, 3])
    with pytest.raises(timber.TimberError, match="input 'X' is not a float or double tensor"):
        load(_graph([helper.make_node("Identity", ["X"], ["Y"])], [x], [Y]))


def test_tree_with_a_cycle_is_refused():
    m = tree_model("regressor", seed=0, n_trees=1, depth=2)
    a = {at.name: at for at in m.graph.node[0].attribute}
    a["nodes_falsenodeids"].ints[1] = 0  # node 1's false child: the root
    with pytest.raises(timber.TimberError, match=r"node 0 'TreeEnsembleRegressor' .*(cycle|share a child|not a leaf)"):
        load(m)


def test_feature_out_of_range_names_node_and_tree():
    m = tree_model("regressor", seed=0, n_trees=1, depth=2)
    a = {at.name: at for at in m.graph.node[0].attribute}
    a["nodes_featureids"].ints[0] = 7
    with pytest.raises(timber.TimberError, match="node 0 of tree 0 reads feature 7; the input has 3"):
        load(m)


def test_detect_recognises_onnx_and_loads_through_timber_compile(tmp_path):
    p = tmp_path / "model.bin"  # content decides, not the extension
    onnx.save(tree_model("regressor", seed=1), p)
    assert detect_format(p) == "onnx"
    assert load_model(p).attributes["timber.format"].value == "onnx"
    with pytest.raises(timber.TimberError, match="take no option 'nope'"):
        load_model(p, nope=1)


def test_mutated_files_raise_only_timber_errors():
    """A small fuzzer: flipped, dropped and duplicated bytes of a valid model."""
    data = bytearray(tree_model("classifier", seed=3, n_targets=3, multi=True, post="SOFTMAX").SerializeToString())
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        d = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(len(d)))
            kind = rng.integers(3)
            if kind == 0:
                d[i] = int(rng.integers(256))
            elif kind == 1:
                del d[i : i + int(rng.integers(1, 8))]
            else:
                d[i:i] = d[i : i + int(rng.integers(1, 8))]
        try:
            load(bytes(d))
            outcomes["ok"] += 1
        except timber.TimberError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0
