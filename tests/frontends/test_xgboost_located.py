"""The XGBoost reader's all-trees-at-once path (`_Builder.trees_at_once`) against the
tree-by-tree reference (`_Builder.tree`): the same module for every valid model, and for a
malformed one the same error, located in the same tree and at the same index.

Each check is broken in the first, a middle and the last tree (and for some, twice: in an
earlier tree by a later check and in a later tree by an earlier one), in JSON and in UBJSON
(whose columns arrive as numpy arrays)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from ir.diagnostics import TimberError
from ir.printer import print_op
from timber.frontends import ubjson
from timber.frontends import xgboost as xf

xgb = pytest.importorskip("xgboost")
pytestmark = pytest.mark.filterwarnings("ignore:.*Found JSON model saved before:UserWarning")

N_TREES = 7
MID, LAST = 3, N_TREES - 1
MODEL = "learner.gradient_booster.model"


@pytest.fixture(scope="module")
def booster():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) + rng.normal(size=len(X)) * 0.1
    params = {"objective": "reg:squarederror", "max_depth": 3, "nthread": 1, "seed": 0}
    return xgb.train(params, xgb.DMatrix(X, y), N_TREES)


@pytest.fixture(scope="module")
def json_doc(booster):
    return json.loads(bytes(booster.save_raw("json")))


@pytest.fixture(scope="module")
def ubj_doc(booster):
    return ubjson.decode(bytes(booster.save_raw("ubj")))


def _reference(monkeypatch):
    """Make `load` read tree by tree, as before the all-trees path existed."""
    monkeypatch.setattr(xf._Builder, "trees_at_once", lambda self, *a: None)


def _outcome(load) -> str:
    """The printed module, or the error message."""
    try:
        return print_op(load())
    except TimberError as e:
        return f"error: {e}"


def _both(monkeypatch, load) -> str:
    """`load()` through the all-trees path and the reference; they must agree."""
    fast = _outcome(load)
    with monkeypatch.context() as m:
        _reference(m)
        ref = _outcome(load)
    assert fast == ref
    return fast


def _load_json(doc):
    return lambda: xf.load(json.dumps(doc).encode(), source_name="m.json")


def _load_ubj(doc):
    return lambda: xf._Builder(doc, "m.ubj", "m.ubj", from_decimal=False).build()


def _tree(doc, k):
    return doc["learner"]["gradient_booster"]["model"]["trees"][k]


def _split(t) -> int:
    """A split node with a split child, so moving its children makes a visible change."""
    left = list(t["left_children"])
    return next(i for i in range(len(left)) if left[i] != -1 and left[left[i]] != -1)


def _set(t, key, i, value):
    col = t[key]
    if isinstance(col, np.ndarray):  # UBJ columns are read-only numpy arrays: a copy, widened only for a fraction
        col = col.astype(np.float64) if col.dtype.kind in "iu" and not float(value).is_integer() else col.copy()
    else:
        col = list(col)
    col[i] = value
    t[key] = col


# (name, mutate(tree, node) -> (key, index or None), expected message pattern with {n} = num_nodes)
def _child_out_of_range(t, i):
    _set(t, "left_children", i, 999)
    return "left_children", i, "child index 999 out of range for a tree of {n} nodes"


def _right_child_zero(t, i):
    _set(t, "right_children", i, 0)
    return "right_children", i, "child index 0 out of range for a tree of {n} nodes"


def _feature_out_of_range(t, i):
    _set(t, "split_indices", i, 77)
    return "split_indices", i, "feature index 77 out of range: the model has 6 features"


def _unknown_split_type(t, i):
    _set(t, "split_type", i, 3)
    return "split_type", i, "unknown split type 3; supported: 0 (numerical), 1 (categorical)"


def _nan_threshold(t, i):
    _set(t, "split_conditions", i, float("nan"))
    return "split_conditions", i, "a numerical split has a NaN threshold"


def _reached_twice(t, i):
    _set(t, "left_children", i, int(t["right_children"][i]))
    return "left_children", None, f"node {int(t['right_children'][i])} is reached twice: the nodes do not form a tree"


def _cycle(t, i):
    # a grandchild points back at its grandparent's other child: that node then has two parents
    kid = int(t["left_children"][i])
    _set(t, "left_children", kid, int(t["right_children"][i]))
    return "left_children", None, "is reached twice: the nodes do not form a tree"


def _not_an_integer(t, i):
    _set(t, "left_children", i, 1.5)
    return "left_children", i, "expected an integer, found 1.5"


def _not_a_number(t, i):
    _set(t, "default_left", i, "yes")
    return "default_left", i, "expected a number, found the string 'yes'"


def _nested_arrays(t, i):
    col = list(t["left_children"])
    col[i], col[i + 1] = [1, 2], [3]  # ragged: numpy refuses to make an array of the column
    t["left_children"] = col
    return "left_children", i, "expected a number, found an array"


def _column_too_long(t, i):
    t["split_indices"] = list(t["split_indices"]) + [0]
    return "split_indices", None, "has {n1} entries for a tree of {n} nodes (tree_param.num_nodes)"


def _no_nodes(t, i):
    t["tree_param"] = dict(t["tree_param"], num_nodes="0")
    return "tree_param.num_nodes", None, "a tree needs at least one node, found 0"


def _missing_column(t, i):
    del t["split_conditions"]
    return "split_conditions", None, "missing key 'split_conditions'"


JSON_CHECKS = [
    _child_out_of_range,
    _right_child_zero,
    _feature_out_of_range,
    _unknown_split_type,
    _nan_threshold,
    _reached_twice,
    _cycle,
    _not_an_integer,
    _not_a_number,
    _nested_arrays,
    _column_too_long,
    _no_nodes,
    _missing_column,
]
UBJ_CHECKS = [c for c in JSON_CHECKS if c not in (_not_a_number, _nested_arrays)]


def _expect(t, n, key, index, pattern, k, source):
    where = f"{source}: {MODEL}.trees[{k}].{key}" + (f"[{index}]" if index is not None else "")
    return where, pattern.format(n=n, n1=n + 1)


@pytest.mark.parametrize("k", [0, MID, LAST], ids=["first", "middle", "last"])
@pytest.mark.parametrize("check", JSON_CHECKS, ids=lambda c: c.__name__.strip("_"))
def test_json_error_located_in_its_tree(json_doc, monkeypatch, check, k):
    doc = copy.deepcopy(json_doc)
    t = _tree(doc, k)
    n = int(t["tree_param"]["num_nodes"])
    key, index, pattern = check(t, _split(t))
    msg = _both(monkeypatch, _load_json(doc))
    where, what = _expect(t, n, key, index, pattern, k, "m.json")
    assert msg.startswith(f"error: {where}:") and what in msg, msg


@pytest.mark.parametrize("k", [0, MID, LAST], ids=["first", "middle", "last"])
@pytest.mark.parametrize("check", UBJ_CHECKS, ids=lambda c: c.__name__.strip("_"))
def test_ubj_error_located_in_its_tree(ubj_doc, monkeypatch, check, k):
    doc = copy.deepcopy(ubj_doc)
    t = _tree(doc, k)
    n = int(t["tree_param"]["num_nodes"])
    key, index, pattern = check(t, _split(t))
    msg = _both(monkeypatch, _load_ubj(doc))
    where, what = _expect(t, n, key, index, pattern, k, "m.ubj")
    assert msg.startswith(f"error: {where}") and what in msg, msg


@pytest.mark.parametrize("k", [0, MID, LAST], ids=["first", "middle", "last"])
def test_tree_info_out_of_range_names_the_list(json_doc, monkeypatch, k):
    doc = copy.deepcopy(json_doc)
    doc["learner"]["gradient_booster"]["model"]["tree_info"][k] = 5
    msg = _both(monkeypatch, _load_json(doc))
    assert msg == f"error: m.json: {MODEL}.tree_info: error: tree writes output 5, but the model has 1 outputs", msg


@pytest.mark.parametrize(
    "early,late",
    [(_feature_out_of_range, _child_out_of_range), (_reached_twice, _nan_threshold), (_nan_threshold, _no_nodes)],
    ids=["range-then-range", "walk-then-nan", "nan-then-tree_param"],
)
def test_the_first_tree_with_a_problem_is_reported(json_doc, monkeypatch, early, late):
    """A problem found by a later check in an earlier tree wins over an earlier check's problem
    in a later tree, as when reading tree by tree."""
    doc = copy.deepcopy(json_doc)
    t1, t5 = _tree(doc, 1), _tree(doc, 5)
    early(t1, _split(t1))
    late(t5, _split(t5))
    msg = _both(monkeypatch, _load_json(doc))
    assert msg.startswith(f"error: m.json: {MODEL}.trees[1]."), msg


def test_tree_info_error_before_a_later_trees_check(json_doc, monkeypatch):
    """tree_info is checked per tree, after that tree's columns: a broken tree before it wins."""
    doc = copy.deepcopy(json_doc)
    doc["learner"]["gradient_booster"]["model"]["tree_info"][4] = 5
    _child_out_of_range(_tree(doc, 2), _split(_tree(doc, 2)))
    msg = _both(monkeypatch, _load_json(doc))
    assert msg.startswith(f"error: m.json: {MODEL}.trees[2].left_children["), msg


def _midpoint_double(t, i):
    """Make split_conditions[i] a decimal whose nearest double lies halfway between two floats."""
    f = np.float32(t["split_conditions"][i])
    mid = (float(f) + float(np.nextafter(f, np.float32(np.inf)))) / 2
    t["split_conditions"] = list(t["split_conditions"])
    t["split_conditions"][i] = mid


@pytest.mark.parametrize("k", [0, MID, LAST], ids=["first", "middle", "last"])
def test_exact_rounding_retry_from_any_tree(json_doc, monkeypatch, k):
    doc = copy.deepcopy(json_doc)
    t = _tree(doc, k)
    _midpoint_double(t, _split(t))
    calls = []
    real = xf._parse_json
    monkeypatch.setattr(xf, "_parse_json", lambda text, source, exact, **kw: calls.append(exact) or real(text, source, exact, **kw))
    _both(monkeypatch, _load_json(doc))
    assert calls == [False, True, False, True]  # fast path, then reference: each re-reads exactly


def test_midpoint_and_error_order(json_doc, monkeypatch):
    """A float needing exact rounding in tree 1 and an error in tree 4 (and the reverse): the
    outcome is the reference's either way."""
    for first, second in ((1, 4), (4, 1)):
        doc = copy.deepcopy(json_doc)
        _midpoint_double(_tree(doc, first), _split(_tree(doc, first)))
        doc["learner"]["gradient_booster"]["model"]["tree_info"][second] = 5
        assert "tree_info" in _both(monkeypatch, _load_json(doc))


def test_valid_models_take_the_all_trees_path(json_doc, ubj_doc, monkeypatch):
    """Guard for the speed: a plain model must not fall back to the tree-by-tree reader."""
    monkeypatch.setattr(xf._Builder, "tree", lambda *a: pytest.fail("read tree by tree"))
    xf.load(json.dumps(json_doc).encode())
    _load_ubj(ubj_doc)()


def test_unreachable_nodes_in_several_trees(json_doc, monkeypatch):
    doc = copy.deepcopy(json_doc)
    for k in (0, MID, LAST):
        t = _tree(doc, k)
        n = int(t["tree_param"]["num_nodes"])
        for key, extra in (
            ("left_children", -1),
            ("right_children", -1),
            ("split_indices", 0),
            ("split_conditions", 99.0),
            ("default_left", 0),
            ("split_type", 0),
        ):
            t[key] = list(t[key]) + [extra]
        t["tree_param"] = dict(t["tree_param"], num_nodes=str(n + 1))
    out = _both(monkeypatch, _load_json(doc))
    assert not out.startswith("error")


CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
CORPUS_MODELS = (
    sorted(
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.suffix in (".json", ".ubj") and "xgb" in str(p).lower() and not p.name.endswith(("expected.json", "input.json"))
    )
    if CORPUS.is_dir()
    else []
)


@pytest.mark.parametrize("rel", CORPUS_MODELS)
def test_corpus_same_module_both_ways(rel, monkeypatch):
    """Every XGBoost file of the corpus (dart, categorical, vector leaves, gblinear, ...): the
    same printed module, or the same error, both ways."""
    raw = (CORPUS / rel).read_bytes()
    _both(monkeypatch, lambda: xf.load(raw, source_name=rel))


def test_categorical_vector_leaf_and_dart_models_both_ways(monkeypatch, tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    X[:, 3] = rng.integers(0, 9, size=len(X))
    y = X[:, 0] + (X[:, 3] > 4) + rng.normal(size=len(X)) * 0.1
    d = xgb.DMatrix(X, y, feature_types=["q", "q", "q", "c"], enable_categorical=True)
    cases = [
        ({"objective": "reg:squarederror", "max_depth": 3, "max_cat_to_onehot": 1}, d),
        ({"objective": "reg:squarederror", "booster": "dart", "rate_drop": 0.3, "max_depth": 3}, xgb.DMatrix(X[:, :3], y)),
        (
            {"objective": "reg:squarederror", "multi_strategy": "multi_output_tree", "tree_method": "hist", "max_depth": 3},
            xgb.DMatrix(X[:, :3], np.stack([y, -y], 1)),
        ),
    ]
    for params, dm in cases:
        b = xgb.train({**params, "nthread": 1, "seed": 0}, dm, 6)
        for fmt in ("json", "ubj"):
            raw = bytes(b.save_raw(fmt))
            out = _both(monkeypatch, lambda raw=raw, fmt=fmt: xf.load(raw, source_name=f"m.{fmt}"))
            assert not out.startswith("error"), out


def _ints_as_floats(doc):
    t = _tree(doc, MID)
    t["left_children"] = [float(v) for v in t["left_children"]]  # 2.0 is still an integer


def _bool_default_left(doc):
    for k in range(N_TREES):
        t = _tree(doc, k)
        t["default_left"] = [bool(v) for v in t["default_left"]]


def _some_bools(doc):
    t = _tree(doc, LAST)
    t["default_left"] = [bool(v) for v in t["default_left"]]


def _no_split_type(doc):
    for k in (0, MID):
        del _tree(doc, k)["split_type"]


def _int_thresholds(doc):
    t = _tree(doc, MID)
    t["split_conditions"] = [int(v) for v in t["split_conditions"]]


def _huge_int(doc):
    t = _tree(doc, LAST)
    t["split_indices"] = list(t["split_indices"])
    t["split_indices"][_split(t)] = 2**64  # not an int64: the tree-by-tree reader says what it makes of it


def _huge_default_left(doc):
    t = _tree(doc, MID)
    t["default_left"] = [2**63] * len(t["default_left"])  # uint64 in numpy: refused, not wrapped to a negative "true"


@pytest.mark.parametrize(
    "change", [_ints_as_floats, _bool_default_left, _some_bools, _no_split_type, _int_thresholds, _huge_int, _huge_default_left]
)
def test_unusual_json_columns_read_alike(json_doc, monkeypatch, change):
    """Columns XGBoost does not write but the reader accepts (or refuses) take the same path to
    the same module (or error) both ways."""
    doc = copy.deepcopy(json_doc)
    change(doc)
    out = _both(monkeypatch, _load_json(doc))
    if change is _huge_int:
        i = _split(_tree(doc, LAST))
        assert out.startswith(
            f"error: m.json: {MODEL}.trees[{LAST}].split_indices[{i}]: error: integer 18446744073709551616 out of range"
        ), out
    elif change is _huge_default_left:
        want = f"error: m.json: {MODEL}.trees[{MID}].default_left[0]: error: integer 9223372036854775808 out of range"
        assert out.startswith(want), out
    else:
        assert not out.startswith("error"), out


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
def test_ubj_columns_of_other_widths_read_alike(ubj_doc, monkeypatch, dtype):
    doc = copy.deepcopy(ubj_doc)
    t = _tree(doc, MID)
    key = "split_conditions" if dtype is np.float64 else "left_children"
    t[key] = np.asarray(t[key]).astype(dtype)
    assert not _both(monkeypatch, _load_ubj(doc)).startswith("error")


NASTY = [
    -2,
    -1,
    0,
    1,
    2,
    5,
    6,
    14,
    15,
    999,
    2**31,
    2**63,
    2**64,
    -(2**63),
    1.5,
    2.0,
    -0.0,
    float("nan"),
    float("inf"),
    "x",
    "1",
    None,
    True,
    False,
    [1],
    {},
]
COLUMNS = ["left_children", "right_children", "split_indices", "split_conditions", "default_left", "split_type"]


def test_random_damage_reads_alike(json_doc, monkeypatch):
    """Seeded random damage (one to three bad entries, columns or counts changed, anywhere):
    the all-trees path and the tree-by-tree reader give the same module or the same error."""
    rng = np.random.default_rng(16)
    outcomes = set()
    for _ in range(300):
        doc = copy.deepcopy(json_doc)
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(N_TREES))
            t = _tree(doc, k)
            what = rng.random()
            if what < 0.75:
                key = COLUMNS[int(rng.integers(len(COLUMNS)))]
                col = list(t[key])
                col[int(rng.integers(len(col)))] = NASTY[int(rng.integers(len(NASTY)))]
                t[key] = col
            elif what < 0.85:
                key = COLUMNS[int(rng.integers(len(COLUMNS)))]
                t[key] = list(t[key])[:-1] if rng.random() < 0.5 else list(t[key]) + [0]
            elif what < 0.95:
                doc["learner"]["gradient_booster"]["model"]["tree_info"][k] = NASTY[int(rng.integers(len(NASTY)))]
            else:
                t["tree_param"] = dict(t["tree_param"], num_nodes=str(int(rng.integers(-1, 20))))
        out = _both(monkeypatch, _load_json(doc))
        outcomes.add(out.split(": error: ")[-1][:30] if out.startswith("error") else "module")
    assert len(outcomes) > 10  # the damage reaches many different checks


def test_random_damage_reads_alike_in_ubj(ubj_doc, monkeypatch):
    """The same for UBJ documents, whose columns are numpy arrays (damaged in place, widened to
    int64 or float64 when the bad value does not fit, or given another width)."""
    rng = np.random.default_rng(17)
    numeric = [v for v in NASTY if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 2**63]
    for _ in range(200):
        doc = copy.deepcopy(ubj_doc)
        for _ in range(int(rng.integers(1, 4))):
            t = _tree(doc, int(rng.integers(N_TREES)))
            key = COLUMNS[int(rng.integers(len(COLUMNS)))]
            col = np.array(t[key])
            if rng.random() < 0.2:
                t[key] = col.astype([np.float32, np.float64, np.int64, np.int32, np.uint8][int(rng.integers(5))])
                continue
            v = numeric[int(rng.integers(len(numeric)))]
            if (
                isinstance(v, float)
                and col.dtype.kind != "f"
                or isinstance(v, int)
                and col.dtype.kind != "f"
                and not (np.iinfo(col.dtype).min <= v <= np.iinfo(col.dtype).max)
            ):
                col = col.astype(np.float64 if isinstance(v, float) else np.int64)
            col[int(rng.integers(len(col)))] = v
            t[key] = col
        _both(monkeypatch, _load_ubj(doc))
