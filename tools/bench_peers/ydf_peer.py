"""Peer helper: YDF (Yggdrasil Decision Forests) running XGBoost / LightGBM trees, in its own virtual environment.

YDF reads no XGBoost or LightGBM file, so the trees are rebuilt through its public tree-editing API:
a 1-tree GradientBoostedTreesModel is trained on a few made-up rows with the model's feature count and
task (so that it has the right data spec, loss and output activation), its tree is removed, every tree
of the framework's model is added as a `ydf.tree.Tree`, and the framework's base score becomes
`set_initial_predictions`.  YDF then picks its own inference engine (QuickScorer for trees of at most
64 leaves, a generic tree walker otherwise) and computes in float32.

Split semantics, so that every row takes the framework's path:
- YDF's `NumericalHigherThanCondition` sends `x >= t` to `pos_child`.  XGBoost sends `x < t` left, so
  `pos_child` is XGBoost's right child with the same float32 threshold.  LightGBM sends `x <= t` left
  with t a double compared to the float32 input widened to double, so `x > t` becomes `x >= t'` with
  t' the smallest float32 above t.
- A missing value (NaN) takes the condition's `missing` result: XGBoost's `default_left`; LightGBM's
  `default_left` for missing_type NaN, and for missing_type None the side 0.0 takes (LightGBM reads
  NaN as 0 there).  LightGBM's missing_type Zero (0 is missing too) cannot be written as one
  threshold condition and is refused, as are categorical splits.

Usage: <venv>/bin/python ydf_peer.py JOB.json   (see _common.py for the job format)
"""

import json
import math
import sys
import time

import numpy as np
from _common import run_helper


class Unsupported(ValueError):
    """A model feature this conversion cannot express exactly."""


def float32_above(t: float) -> float:
    """The smallest float32 strictly greater than the double t (LightGBM's `x <= t` is `not x >= this`)."""
    t32 = np.float32(t)
    if float(t32) <= t:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return float(t32)


# ---------------------------------------------------------------- the framework's trees, as plain nodes
# A node is ("leaf", value) or ("split", feature, threshold_for_higher_than, missing_goes_pos, pos, neg).


def xgboost_forest(path: str) -> tuple[list, list[float], str, int]:
    """Trees, margin base per class, objective and class count of an XGBoost JSON model."""
    with open(path) as fh:
        learner = json.load(fh)["learner"]
    objective = learner["objective"]["name"]
    booster = learner["gradient_booster"]
    if booster["name"] != "gbtree":
        raise Unsupported(f"booster {booster['name']!r}: only gbtree is converted")
    model = booster["model"]
    k = max(1, int(learner["learner_model_param"].get("num_class", "0")))
    raw = learner["learner_model_param"]["base_score"].strip("[]")
    base = [float(v) for v in raw.split(",")]
    base = base * k if len(base) == 1 else base
    if objective == "binary:logistic":
        # base_score is a probability; the trees add to its logit
        base = [math.log(p / (1 - p)) for p in base]
    elif objective not in ("reg:squarederror", "multi:softprob", "multi:softmax", "binary:logitraw"):
        raise Unsupported(f"objective {objective!r}: not converted")
    trees = []
    for i, (tree, cls) in enumerate(zip(model["trees"], model["tree_info"])):
        if cls != i % k:
            raise Unsupported(f"tree {i} belongs to class {cls}, YDF expects trees in class order per iteration")
        if any(int(s) != 0 for s in tree.get("split_type", [])):
            raise Unsupported(f"tree {i} has categorical splits")
        trees.append(xgboost_tree(tree))
    return trees, base, objective, k


def xgboost_tree(tree: dict):
    """One XGBoost tree: `x < t` goes left, so YDF's `x >= t` (pos) is the right child."""
    left, right = tree["left_children"], tree["right_children"]
    feat, cond, default_left = tree["split_indices"], tree["split_conditions"], tree["default_left"]

    def node(j: int):
        if left[j] == -1:
            return ("leaf", float(cond[j]))
        return ("split", int(feat[j]), float(np.float32(cond[j])), not bool(default_left[j]), node(right[j]), node(left[j]))

    return node(0)


def lightgbm_forest(path: str) -> tuple[list, list[float], str, int]:
    """Trees, init (0: LightGBM folds its average into the first tree), objective and class count."""
    import lightgbm as lgb

    dump = lgb.Booster(model_file=path).dump_model()
    objective = dump["objective"].split()[0]
    k = int(dump.get("num_tree_per_iteration", 1))
    if objective == "binary" and "sigmoid:1" not in dump["objective"]:
        raise Unsupported(f"objective {dump['objective']!r}: YDF's sigmoid has slope 1")
    if objective not in ("regression", "binary", "multiclass"):
        raise Unsupported(f"objective {objective!r}: not converted")
    return [lightgbm_node(t["tree_structure"]) for t in dump["tree_info"]], [0.0] * k, objective, k


def lightgbm_node(n: dict):
    """One LightGBM node: `x <= t` goes left, so YDF's `x >= t'` (pos) is the right child."""
    if "leaf_value" in n:
        return ("leaf", float(n["leaf_value"]))
    if n["decision_type"] != "<=":
        # YDF's categorical columns take integer codes with 0 reserved for out-of-vocabulary values, so
        # LightGBM's float-coded categories would need a shifted integer column built on every call
        raise Unsupported("categorical splits are not converted (YDF categorical columns reserve code 0 for unseen values)")
    t = float(n["threshold"])
    if n["missing_type"] == "NaN":
        missing_pos = not n["default_left"]
    elif n["missing_type"] == "None":
        missing_pos = 0.0 > t  # LightGBM reads NaN as 0.0 here
    else:
        raise Unsupported(f"split {n['split_index']}: missing_type {n['missing_type']} (zero is missing) has no YDF condition")
    return (
        "split",
        int(n["split_feature"]),
        float32_above(t),
        missing_pos,
        lightgbm_node(n["right_child"]),
        lightgbm_node(n["left_child"]),
    )


# ---------------------------------------------------------------- the YDF model


def feature_name(i: int) -> str:
    return f"f{i:05d}"


def skeleton(n_features: int, task: str, k: int):
    """A trained 1-tree YDF GBT model with the right data spec, loss and activation, its tree removed."""
    import ydf

    rng = np.random.default_rng(0)
    n = 20 * max(k, 2)
    data = {feature_name(i): rng.normal(size=n).astype(np.float32) for i in range(n_features)}
    if task == "regression":
        data["label"], ytask = rng.normal(size=n).astype(np.float32), ydf.Task.REGRESSION
    else:
        # every class equally often: YDF orders classes by frequency, so the order is read back below
        data["label"], ytask = np.arange(n) % max(k, 2), ydf.Task.CLASSIFICATION
    learner = ydf.GradientBoostedTreesLearner(label="label", task=ytask, num_trees=1, validation_ratio=0.0)
    model = learner.train(data, verbose=0)
    while model.num_trees():
        model.remove_tree(0)
    return model


def to_ydf_tree(root, attribute: list[int]):
    """A plain node tree as a `ydf.tree.Tree` (leaves are RegressionValue, as in YDF's own GBTs)."""
    from ydf.model import tree as T

    def build(n):
        if n[0] == "leaf":
            return T.Leaf(value=T.RegressionValue(num_examples=1.0, value=n[1]))
        _, f, thr, missing_pos, pos, neg = n
        cond = T.NumericalHigherThanCondition(missing=missing_pos, score=0.0, attribute=attribute[f], threshold=thr)
        return T.NonLeaf(condition=cond, pos_child=build(pos), neg_child=build(neg))

    return T.Tree(root=build(root))


def body(job: dict, result) -> object:
    """Convert the model into YDF and return predict(X, threads)."""
    framework = job["framework"]
    if framework not in ("xgboost", "lightgbm"):
        raise Unsupported(f"the bench converts XGBoost and LightGBM trees into YDF, not {framework}")
    import ydf

    t0 = time.perf_counter()
    trees, base, objective, k = (xgboost_forest if framework == "xgboost" else lightgbm_forest)(job["model"])
    n_features = int(job["n_features"])
    task = "regression" if objective in ("regression", "reg:squarederror") else "classification"
    if objective == "binary:logitraw":
        raise Unsupported("binary:logitraw returns margins; YDF's classifiers return probabilities")
    model = skeleton(n_features, task, k)
    columns = {c.name: i for i, c in enumerate(model.data_spec().columns)}
    attribute = [columns[feature_name(i)] for i in range(n_features)]
    # For classifiers, YDF's tree j of an iteration scores its class label_classes()[j] (K > 2; binary: 1 tree).
    classes = [int(c) for c in model.label_classes()] if task == "classification" else [0]
    if k > 1:
        order = classes
    else:
        if task == "classification" and classes != [0, 1]:
            raise RuntimeError(f"YDF ordered the binary classes {classes}")
        order = [0]
    for it in range(len(trees) // k):
        for cls in order:
            model.add_tree(to_ydf_tree(trees[it * k + cls], attribute))
    model.set_initial_predictions([base[c] for c in order])
    result.compile_s = time.perf_counter() - t0
    result.compile_label = "convert"
    engines = model.list_compatible_engines()
    # YDF lists the engines it can use fastest first, and predicts with the first
    result.note = (
        f"ydf {ydf.__version__}, float32, engine {engines[0]}; rows passed as a dict of columns, "
        "which YDF turns into its dataset in Python on every call (inside the timing)"
    )
    names = [feature_name(i) for i in range(n_features)]
    # multi-class output columns follow label_classes(); put them back in class order
    perm = np.argsort(classes) if k > 1 else None

    def predict(X, threads):
        out = model.predict({name: X[:, i] for i, name in enumerate(names)}, num_threads=threads)
        return out[:, perm] if perm is not None else out

    return predict


if __name__ == "__main__":
    run_helper(body, sys.argv[1])
