"""Corrupt and unsupported LightGBM models give a `TimberError` that names the file, the line and
column, the construct, and what is supported — never a KeyError, IndexError or traceback."""

from __future__ import annotations

import re

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from ir.diagnostics import TimberError  # noqa: E402
from timber.frontends import lightgbm as tl  # noqa: E402


@pytest.fixture(scope="module")
def text() -> str:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    X[:, 2] = rng.integers(0, 6, 300)
    y = X[:, 0] + (X[:, 2] == 3) + rng.normal(size=300) * 0.1
    params = dict(verbose=-1, num_leaves=6, min_data_in_leaf=5, objective="regression", num_threads=1, min_data_per_group=5, cat_smooth=1)
    b = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[2]), 4)
    s = b.model_to_string()
    assert "num_cat=1" in s
    return s


def line_of(text: str, prefix: str, nth: int = 0) -> int:
    """1-based line number of the nth line starting with `prefix`."""
    hits = [i + 1 for i, s in enumerate(text.splitlines()) if s.startswith(prefix)]
    return hits[nth]


def replace_line(text: str, prefix: str, new: str, nth: int = 0) -> str:
    lines = text.splitlines()
    i = line_of(text, prefix, nth) - 1
    lines[i] = new
    return "\n".join(lines) + "\n"


def expect(text: str, pattern: str, name: str = "bad.txt"):
    with pytest.raises(TimberError) as e:
        tl.load(text, source_name=name)
    msg = str(e.value)
    assert re.search(pattern, msg), msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(TimberError, match=r"cannot read LightGBM model '.*nope.txt'"):
        tl.load(tmp_path / "nope.txt")


def test_not_a_model():
    expect('{"name": "tree", "version": "v4"}\n', r"bad.txt:1:1: error: not a LightGBM text model: .*dump_model")
    expect("hello\nworld\n", r"bad.txt:1:1: error: not a LightGBM text model")
    expect("\n\n", r"bad.txt:1:1: error: empty LightGBM model")


def test_unsupported_version(text):
    bad = replace_line(text, "version=", "version=v9")
    expect(bad, r"bad.txt:2:9: error: unsupported LightGBM model version 'v9'; supported: v2, v3, v4")


def test_bad_number_points_at_the_token(text):
    bad = replace_line(text, "threshold=", "threshold=0.5 zebra 1 2 3", nth=0)
    n = line_of(text, "threshold=")
    msg = expect(bad, rf"bad.txt:{n}:15: error: Tree=0: threshold\[1\] must be a number, found 'zebra'")
    assert msg.splitlines()[1] == "threshold=0.5 zebra 1 2 3" and msg.splitlines()[2] == " " * 14 + "^"


def test_wrong_count(text):
    bad = replace_line(text, "leaf_value=", "leaf_value=1 2", nth=1)
    expect(bad, rf"bad.txt:{line_of(text, 'leaf_value=', 1)}:\d+: error: Tree=1: 'leaf_value' has 2 values, expected \d+")


def test_child_out_of_range(text):
    n = line_of(text, "left_child=")
    old = text.splitlines()[n - 1]
    count = len(old.split("=")[1].split())
    bad = replace_line(text, "left_child=", "left_child=" + " ".join(["99"] * count))
    expect(bad, rf"bad.txt:{n}:12: error: Tree=0: left_child\[0\] = 99 names no node")


def test_not_a_tree(text):
    n = line_of(text, "left_child=")
    count = len(text.splitlines()[n - 1].split("=")[1].split())
    # every internal node points back at node 1: node 1 gets many parents, others none
    bad = replace_line(text, "left_child=", "left_child=" + " ".join(["1"] * count))
    expect(bad, rf"bad.txt:{line_of(text, 'Tree=0')}:1: error: Tree=0 is not a tree: node \d+ (has \d+ parents|is unreachable)")


def test_split_feature_out_of_range(text):
    n = line_of(text, "split_feature=")
    count = len(text.splitlines()[n - 1].split("=")[1].split())
    bad = replace_line(text, "split_feature=", "split_feature=" + " ".join(["7"] * count))
    expect(bad, rf"bad.txt:{n}:15: error: Tree=0: split_feature\[0\] = 7 is out of range for 3 features")


def test_unknown_objective(text):
    bad = replace_line(text, "objective=", "objective=softmax_plus")
    expect(bad, r"bad.txt:7:11: error: unsupported LightGBM objective 'softmax_plus'; supported: binary, multiclassova, multiclass")


def test_binary_without_sigmoid(text):
    expect(replace_line(text, "objective=", "objective=binary"), r"objective 'binary' needs 'sigmoid:α' with α > 0, found None")
    expect(replace_line(text, "objective=", "objective=binary sigmoid:-2"), r"found '-2'")


def test_multiclass_counts_disagree(text):
    bad = replace_line(text, "objective=", "objective=multiclass num_class:3")
    expect(bad, r"objective 'multiclass' with num_class 1 and 1 trees per iteration: they must agree")


def test_trees_out_of_order(text):
    bad = replace_line(text, "Tree=1", "Tree=5")
    expect(bad, rf"bad.txt:{line_of(text, 'Tree=1')}:1: error: trees are out of order: found Tree=5 where Tree=1 was expected")


def test_tree_sizes_mismatch(text):
    bad = replace_line(text, "tree_sizes=", "tree_sizes=10 20")
    expect(bad, r"tree_sizes lists 2 trees but the file holds 4")


def test_truncated_tree(text):
    cut = text[: text.index("leaf_value=", text.index("Tree=2"))]
    expect(cut, rf"bad.txt:{line_of(text, 'Tree=2')}:1: error: Tree=2 has no 'leaf_value=' line")


def test_categorical_bitset_missing(text):
    bad = replace_line(text, "cat_boundaries=", "cat_boundaries=0 1 2")
    expect(bad, r"Tree=\d+: 'cat_boundaries' has 3 values, expected 2")
    bad = replace_line(text, "cat_threshold=", "cat_threshold=-4")
    expect(bad, r"Tree=\d+: cat_threshold\[0\] is not a 32-bit word")


def test_header_fields(text):
    bad = replace_line(text, "max_feature_idx=", "max_feature_idx=two")
    expect(bad, r"bad.txt:6:17: error: the header: 'max_feature_idx' must be an integer, found 'two'")
    lines = [s for s in text.splitlines() if not s.startswith("version=")]
    expect("\n".join(lines), r"bad.txt:1:1: error: the header has no 'version=' line")


def test_linear_leaf_feature_out_of_range():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    b = lgb.train(dict(verbose=-1, linear_tree=True, num_leaves=4, objective="regression"), lgb.Dataset(X, X[:, 0] * 2), 2)
    s = b.model_to_string()
    n = line_of(s, "leaf_features=0")
    bad = replace_line(s, "leaf_features=0", "leaf_features=9  0  0  0  ")
    tree = s[: s.index("leaf_features=0")].count("Tree=") - 1
    expect(bad, rf"bad.txt:{n}:15: error: Tree={tree}: leaf_features\[0\] = 9 is out of range for 2 features")


def test_not_a_booster():
    with pytest.raises(TimberError, match=r"cannot load a dict as a LightGBM model: pass a path, the model text or a lightgbm.Booster"):
        tl.load({"trees": []})
