"""Pickles written by older scikit-learn releases (other state layouts) compile and return what
that release's own call returned.  The files and the old release's outputs are made by
`tools/sklearn_old_pickles.py` in a virtualenv of that release (1.2.2: no `missing_go_to_left`,
class counts in tree values, IsolationForest path lengths computed at predict time, HGB categories
read raw).  A layout this front-end does not know is an error naming the attribute."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from ir.diagnostics import TimberError
from timber.frontends import sklearn as sk
from timber.frontends.sklearn.unpickle import read_file

from .helpers import predict, ulp_distance

DATA = os.path.join(os.path.dirname(__file__), "data")
FILES = sorted(glob.glob(os.path.join(DATA, "*.pkl")))


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p)[:-4] for p in FILES])
def test_old_release_pickles(path):
    """No scikit-learn needed: the old release's outputs are stored beside its pickle."""
    ref = np.load(path[:-4] + ".npz")
    methods = [k for k in ref.files if k != "X"]
    assert methods
    for method in methods:
        got = predict(sk.load(path, method=method), ref["X"])
        want = ref[method]
        assert got.shape == want.shape
        if method == "score_samples":  # 2 ** x is pow in numpy and exp(x·ln2) in Timber: 1 ulp
            assert ulp_distance(got, want).max() <= 1
        else:
            np.testing.assert_array_equal(got, want)


def _tree_record():
    est, _ = read_file(next(p for p in FILES if p.endswith("dt_clf.pkl")))
    return est


def test_unknown_tree_layout_names_the_field():
    est = _tree_record()
    nodes = est.state["tree_"].state["nodes"]
    names = list(nodes.dtype.names)
    names[names.index("threshold")] = "split_value"
    renamed = nodes.copy()
    renamed.dtype.names = names
    est.state["tree_"].state["nodes"] = renamed
    with pytest.raises(TimberError, match="tree_.nodes has no field 'threshold'"):
        sk.build_module(est, "old.pkl", None)


def test_missing_attribute_is_named():
    est = _tree_record()
    del est.state["n_classes_"]
    with pytest.raises(TimberError, match=r"DecisionTreeClassifier\.n_classes_ is missing"):
        sk.build_module(est, "old.pkl", None)
