"""skops files (`skops.io.dump`): read with exactly the types skops does not trust itself trusted,
each checked against the front-end's one allowlist (`unpickle.known_global`) first; a file naming
anything else is refused, naming it, before skops constructs anything.  A skops-loaded estimator
compiles to the very module of the live estimator (same path: it is then read back through the
restricted unpickler)."""

from __future__ import annotations

import io
import json
import os
import sys
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("sklearn")
sio = pytest.importorskip("skops.io")
from sklearn import ensemble, impute, linear_model, naive_bayes, neighbors, neural_network, svm, tree  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

import timber  # noqa: E402
from ir.diagnostics import TimberError  # noqa: E402
from ir.printer import print_op  # noqa: E402
from timber.detect import detect_format  # noqa: E402
from timber.frontends import sklearn as sk  # noqa: E402
from timber.frontends.sklearn.unpickle import known_global  # noqa: E402

from .helpers import assert_parity  # noqa: E402

RNG = np.random.default_rng(5)
X = RNG.standard_normal((150, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)
Y3 = np.digitize(X[:, 2], [-0.5, 0.5])


def _fit(est, X=X, y=Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


# each estimator's skops file holds types skops does not trust by default (Tree, TreePredictor,
# functools.partial + check_array, KDTree + its metric, the MLP's optimiser, numpy.dtype)
ESTIMATORS = {
    "DecisionTree": lambda: _fit(tree.DecisionTreeClassifier(max_depth=4, random_state=0)),
    "RandomForestRegressor": lambda: _fit(ensemble.RandomForestRegressor(3, max_depth=3, random_state=0), y=X[:, 3]),
    "GradientBoosting-3class": lambda: _fit(ensemble.GradientBoostingClassifier(n_estimators=3, max_depth=2), y=Y3),
    "HistGradientBoosting": lambda: _fit(ensemble.HistGradientBoostingClassifier(max_iter=3)),
    "KNeighbors": lambda: _fit(neighbors.KNeighborsClassifier(3)),
    "MLP": lambda: _fit(neural_network.MLPClassifier((5,), max_iter=20, random_state=0)),
    "SVC": lambda: _fit(svm.SVC(probability=True, random_state=0), y=Y3),
    "SimpleImputer": lambda: impute.SimpleImputer(add_indicator=True).fit(np.where(X > 1, np.nan, X)),
    "Pipeline-scaler-pca-logistic": lambda: _fit(make_pipeline(StandardScaler(), PCA(3), linear_model.LogisticRegression()), y=Y3),
    "Pipeline-columns-log1p-nb": lambda: _fit(
        Pipeline(
            [
                ("cols", ColumnTransformer([("log", FunctionTransformer(np.log1p), [0, 1])], remainder="passthrough")),
                ("nb", naive_bayes.GaussianNB()),
            ]
        ),
        X=np.abs(X),
    ),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_skops_file_compiles_to_the_live_estimators_module(tmp_path, name):
    est = ESTIMATORS[name]()
    path = tmp_path / "m.skops"
    sio.dump(est, path)
    assert detect_format(path) == "sklearn"
    assert print_op(sk.load(path)).replace(str(path), "<estimator>") == print_op(sk.load(est))


def test_skops_pipeline_matches_sklearn_bit_for_bit(tmp_path):
    pipe = _fit(make_pipeline(StandardScaler(), ensemble.ExtraTreesClassifier(4, max_depth=5, random_state=0)), y=Y3)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    rows = np.vstack([X, RNG.standard_normal((200, 4)) * 3, [[-0.0, 0.0, 1e300, -1e-300]]])
    assert_parity(pipe, "predict_proba", module=sk.load(path), X=rows)
    m = timber.compile(str(path), method="predict")
    np.testing.assert_array_equal(m.predict(X), pipe.predict(X))


# ----- hostile and damaged files -------------------------------------------------------------------


def _schema_edit(data: bytes, edit) -> bytes:
    """The skops zip `data` with `edit(schema)` applied to its schema.json."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            body = src.read(item)
            if item == "schema.json":
                schema = json.loads(body)
                edit(schema)
                body = json.dumps(schema).encode()
            dst.writestr(item, body)
    return out.getvalue()


def _eval_payload(marker: str):
    """The tree's reduce node (`Tree(*args)`) turned into a loss node, whose constructor the
    schema names (`LossNode`): `builtins.eval("open(marker, 'w').close()")`."""

    def edit(schema):
        node = schema["content"]["content"]["tree_"]
        node["__module__"], node["__class__"], node["__loader__"] = "builtins", "eval", "LossNode"
        code = f"open({marker!r}, 'w').close()"
        node["__reduce__"]["args"]["content"] = [
            {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(code), "is_json": True}
        ]

    return edit


def _os_system(schema):
    """The pipeline's first step's class pointed at `os.system`."""
    step = schema["content"]["content"]["steps"]["content"][0]["content"][1]
    step["__module__"], step["__class__"] = "os", "system"


def test_skops_eval_payload_is_refused_and_never_runs(tmp_path):
    marker = str(tmp_path / "pwned")
    data = _schema_edit(sio.dumps(_fit(tree.DecisionTreeClassifier(max_depth=2))), _eval_payload(marker))
    path = tmp_path / "evil.skops"
    path.write_bytes(data)
    with pytest.raises(TimberError) as e:
        sk.load(path)
    assert "refused to load type 'builtins.eval'" in str(e.value) and str(path) in str(e.value)
    assert not os.path.exists(marker)
    # the payload is live: trusting every type skops reports (what Timber refuses to do) runs it
    with pytest.raises(Exception):  # noqa: B017  (eval's None then takes no state)
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert os.path.exists(marker)


def test_skops_foreign_class_in_a_pipeline_is_refused(tmp_path):
    data = _schema_edit(sio.dumps(_fit(make_pipeline(StandardScaler(), tree.DecisionTreeClassifier(max_depth=2)))), _os_system)
    with pytest.raises(TimberError, match=r"refused to load type 'os\.system'"):
        sk.load(data, source_name="evil.skops")


@pytest.mark.parametrize(
    "name,kind",
    [
        ("sklearn.datasets.dump_svmlight_file", "sklearn"),  # a scikit-learn name, but not one a model holds: it writes files
        ("numpy.memmap", "guarded"),  # the unpickler's stand-in checks it; skops would call numpy's own
        ("copyreg._reconstructor", "guarded"),
        ("subprocess.Popen", None),
    ],
)
def test_skops_trusts_only_what_the_allowlist_admits(tmp_path, name, kind):
    assert known_global(name) == kind
    module, cls = name.rsplit(".", 1)

    def edit(schema):
        schema["content"]["content"]["tree_"].update(__module__=module, __class__=cls)

    data = _schema_edit(sio.dumps(_fit(tree.DecisionTreeClassifier(max_depth=2))), edit)
    with pytest.raises(TimberError, match=f"refused to load type '{name}'"):
        sk.load(data)


@pytest.mark.parametrize("cut", [0.5, 0.99, 30])
def test_truncated_skops_file(tmp_path, cut):
    data = sio.dumps(_fit(tree.DecisionTreeClassifier(max_depth=2)))
    path = tmp_path / "cut.skops"
    path.write_bytes(data[: int(len(data) * cut) if cut < 1 else cut])
    with pytest.raises(TimberError, match="truncated or corrupt skops file"):
        sk.load(path)


def test_skops_unpacked_size_is_bounded(monkeypatch):
    from timber.frontends.sklearn import unpickle

    data = sio.dumps(_fit(tree.DecisionTreeClassifier(max_depth=2)))
    monkeypatch.setattr(unpickle, "MAX_DECOMPRESSED_BYTES", 1000)
    with pytest.raises(TimberError, match="unpacks to .* MiB, more than"):
        sk.load(data)


def test_corrupt_skops_schema(tmp_path):
    path = tmp_path / "m.skops"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("schema.json", "{}")
    assert detect_format(path) == "sklearn"
    with pytest.raises(TimberError, match="corrupt skops file"):
        sk.load(path)


def test_skops_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(TimberError, match="pip install skops"):
        sk.load(sio.dumps(_fit(tree.DecisionTreeClassifier(max_depth=2))))


def test_skops_refusal_on_the_command_line(tmp_path, capsys):
    from timber.cli import main

    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.skops"
    path.write_bytes(_schema_edit(sio.dumps(_fit(tree.DecisionTreeClassifier(max_depth=2))), _eval_payload(marker)))
    assert main(["compile", str(path), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "refused to load type 'builtins.eval'" in err and "Traceback" not in err
    assert not os.path.exists(marker) and not (tmp_path / "out").exists()
