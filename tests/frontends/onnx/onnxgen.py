"""Hand-built ONNX-ML models for the front-end's parity tests (onnx.helper), and the reference:
ONNX Runtime with one thread.

`tree_model(...)` draws a random small ensemble for any op/attribute variant: every node mode,
NaN tracking, several targets per leaf (and a target twice), base values, float or double."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
GRID = np.float32([-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 3.0])  # thresholds rows can hit exactly


def ort_run(model: onnx.ModelProto, X: np.ndarray, output: str) -> np.ndarray:
    """`output` of the model on X, ONNX Runtime on one thread (ZipMap dicts as columns)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    r = s.run([output], {s.get_inputs()[0].name: X})[0]
    if isinstance(r, list):
        return np.array([list(d.values()) for d in r], np.float32)
    return np.asarray(r)


def _trees(rng, n_trees, n_features, depth, modes, targets, multi, double):
    """Node and leaf lists in ONNX's flat layout (tree ids, node ids, ...)."""
    cols = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "true", "false", "miss")}
    w = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}

    def grow(d, t, counter):
        i = counter[0]
        counter[0] += 1
        k = len(cols["treeids"])
        for c in cols:
            cols[c].append(0)
        cols["treeids"][k], cols["nodeids"][k] = t, i
        if d == depth or (d > 0 and rng.random() < 0.25):
            cols["modes"][k] = "LEAF"
            picks = rng.choice(targets, size=rng.integers(1, 3) if multi else 1)
            for tg in picks:
                w["treeids"].append(t)
                w["nodeids"].append(i)
                w["ids"].append(int(tg))
                w["weights"].append(float(np.float32(rng.normal())))
            return i
        cols["modes"][k] = modes[rng.integers(len(modes))]
        cols["featureids"][k] = int(rng.integers(n_features))
        v = rng.choice(GRID) if rng.random() < 0.7 else rng.normal()
        cols["values"][k] = float(v) if double else float(np.float32(v))
        cols["miss"][k] = int(rng.random() < 0.5)
        cols["true"][k] = grow(d + 1, t, counter)
        cols["false"][k] = grow(d + 1, t, counter)
        return i

    for t in range(n_trees):
        grow(0, t, [0])
    return cols, w


def tree_model(
    kind: str = "regressor",
    *,
    seed: int = 0,
    n_trees: int = 4,
    n_features: int = 3,
    depth: int = 3,
    n_targets: int = 1,
    agg: str = "SUM",
    post: str = "NONE",
    base=None,
    double_input: bool = False,
    as_tensor: bool = False,
    modes=MODES,
    multi: bool = False,
    class_ids=None,
    positive: bool = False,
    opset: int = 3,
) -> onnx.ModelProto:
    """A one-node TreeEnsembleRegressor/Classifier model; outputs `variable` / (`label`, `probabilities`)."""
    rng = np.random.default_rng(seed)
    targets = list(range(n_targets)) if class_ids is None else list(class_ids)
    cols, w = _trees(rng, n_trees, n_features, depth, modes, targets, multi, as_tensor)
    if positive:
        w["weights"] = [abs(v) for v in w["weights"]]
    pre = "target" if kind == "regressor" else "class"
    a = dict(
        nodes_treeids=cols["treeids"],
        nodes_nodeids=cols["nodeids"],
        nodes_featureids=cols["featureids"],
        nodes_modes=cols["modes"],
        nodes_truenodeids=cols["true"],
        nodes_falsenodeids=cols["false"],
        nodes_missing_value_tracks_true=cols["miss"],
        post_transform=post,
        **{f"{pre}_treeids": w["treeids"], f"{pre}_nodeids": w["nodeids"], f"{pre}_ids": w["ids"]},
    )
    if as_tensor:
        a["nodes_values_as_tensor"] = numpy_helper.from_array(np.array(cols["values"], np.float64), "v")
        a[f"{pre}_weights_as_tensor"] = numpy_helper.from_array(np.array(w["weights"], np.float64), "w")
        if base is not None:
            a["base_values_as_tensor"] = numpy_helper.from_array(np.array(base, np.float64), "b")
    else:
        a["nodes_values"] = cols["values"]
        a[f"{pre}_weights"] = w["weights"]
        if base is not None:
            a["base_values"] = list(base)
    in_t = TensorProto.DOUBLE if double_input else TensorProto.FLOAT
    x = helper.make_tensor_value_info("X", in_t, [None, n_features])
    if kind == "regressor":
        a["n_targets"] = n_targets
        a["aggregate_function"] = agg
        node = helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain="ai.onnx.ml", **a)
        outs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, n_targets])]
    else:
        a["classlabels_int64s"] = list(range(n_targets))
        node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml", **a)
        outs = [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_targets]),
        ]
    g = helper.make_graph([node], "g", [x], outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", opset)])
    m.ir_version = 8
    return m


def tree_v5_model(*, seed=0, n_trees=3, n_features=3, n_targets=2, agg=1, post=0, double=False, member=True, depth=3) -> onnx.ModelProto:
    """A TreeEnsemble (ai.onnx.ml opset 5) model with numeric and (optionally) MEMBER splits."""
    rng = np.random.default_rng(seed)
    dt = np.float64 if double else np.float32
    feats, splits, modes, tids, tleafs, fids, fleafs, miss, members = [], [], [], [], [], [], [], [], []
    leaf_t, leaf_w, roots = [], [], []

    def leaf():
        leaf_t.append(int(rng.integers(n_targets)))
        leaf_w.append(float(dt(rng.normal())))
        return len(leaf_t) - 1

    def grow(d):
        k = len(feats)
        for c in (feats, splits, modes, tids, tleafs, fids, fleafs, miss):
            c.append(0)
        feats[k] = int(rng.integers(n_features))
        mode = int(rng.integers(7 if member else 6))
        modes[k] = mode
        if mode == 6:
            # ONNX Runtime implements integer members only, and fractional inputs erratically
            # when a member is negative (see trees._member_split): non-negative members here
            members.extend(float(v) for v in rng.choice([0.0, 1.0, 3.0, 7.0], size=rng.integers(1, 4), replace=False))
            members.append(float("nan"))
        else:
            splits[k] = float(rng.choice(GRID) if rng.random() < 0.7 else rng.normal())
        miss[k] = int(rng.random() < 0.5)
        for ids, leafs in ((tids, tleafs), (fids, fleafs)):
            if d + 1 >= depth or rng.random() < 0.3:
                ids[k], leafs[k] = leaf(), 1
            else:
                ids[k], leafs[k] = grow(d + 1), 0
        return k

    for _ in range(n_trees):
        roots.append(grow(0))
    t = TensorProto.DOUBLE if double else TensorProto.FLOAT
    a = dict(
        nodes_featureids=feats,
        nodes_splits=numpy_helper.from_array(np.array(splits, dt), "s"),
        nodes_modes=numpy_helper.from_array(np.array(modes, np.uint8), "m"),
        nodes_truenodeids=tids,
        nodes_trueleafs=tleafs,
        nodes_falsenodeids=fids,
        nodes_falseleafs=fleafs,
        nodes_missing_value_tracks_true=miss,
        tree_roots=roots,
        leaf_targetids=leaf_t,
        leaf_weights=numpy_helper.from_array(np.array(leaf_w, dt), "w"),
        n_targets=n_targets,
        aggregate_function=agg,
        post_transform=post,
    )
    if members:
        a["membership_values"] = numpy_helper.from_array(np.array(members[:-1], dt), "mv")
    node = helper.make_node("TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", **a)
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", t, [None, n_features])], [helper.make_tensor_value_info("Y", t, [None, n_targets])]
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    m.ir_version = 10
    return m
