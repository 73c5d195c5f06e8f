"""Reading scikit-learn model files: nothing in a file runs; pickles of every protocol, joblib
files (compressed too), live estimators; and one clear error for every bad input (payloads,
unfitted, unknown, not a model, truncated, corrupt, a pipeline step that cannot compile), with
exit status 1 and no traceback on the command line."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
import joblib  # noqa: E402
from sklearn import ensemble, tree  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

import timber  # noqa: E402
from ir.diagnostics import TimberError  # noqa: E402
from ir.printer import print_op  # noqa: E402
from timber.detect import detect_format  # noqa: E402
from timber.frontends import sklearn as sk  # noqa: E402

from .helpers import assert_parity, module_of, predict  # noqa: E402

RNG = np.random.default_rng(2)
X = RNG.standard_normal((120, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.fixture(scope="module")
def forest():
    return ensemble.RandomForestClassifier(4, max_depth=4, random_state=0).fit(X, Y)


@pytest.fixture(scope="module")
def forest_ir(forest):
    return print_op(module_of(forest))


# ----- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol_gives_the_live_estimators_module(tmp_path, forest, forest_ir, protocol):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(forest, protocol=protocol))
    module = sk.load(path)
    assert print_op(module).replace(str(path), "<estimator>") == forest_ir


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)], ids=str)
def test_joblib_files(tmp_path, forest, forest_ir, compress):
    path = tmp_path / "m.joblib"
    joblib.dump(forest, path, compress=compress)
    assert detect_format(path) == "sklearn"
    module = sk.load(path)
    assert print_op(module).replace(str(path), "<estimator>") == forest_ir


def test_joblib_object_arrays_and_string_classes(tmp_path):
    """String class labels live in an object array (a nested pickle in joblib's stream): loaded;
    predict_proba compiles, predict says why it cannot."""
    est = tree.DecisionTreeClassifier(max_depth=3).fit(X, np.where(Y == 1, "yes", "no"))
    path = tmp_path / "m.joblib"
    joblib.dump(est, path)
    assert_parity(est, "predict_proba", module=sk.load(path))
    with pytest.raises(TimberError, match="not numbers"):
        sk.load(path, method="predict")


def test_compile_a_path_with_method_option(tmp_path, forest):
    path = tmp_path / "forest.pkl"
    path.write_bytes(pickle.dumps(forest))
    m = timber.compile(str(path), method="predict")
    np.testing.assert_array_equal(m.predict(X), forest.predict(X))


# ----- nothing runs ---------------------------------------------------------------------------------


class _Payload:
    """Pickles as a call of `fn(*args)`: what a malicious model file does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker: str):
    import subprocess as sp

    touch = f"open({marker!r}, 'w').close()"
    return {
        "os.system": (_Payload(os.system, f"touch {marker}"), os.system.__module__ + ".system"),
        "builtins.eval": (_Payload(eval, touch), "builtins.eval"),
        "builtins.exec": (_Payload(exec, touch), "builtins.exec"),
        "subprocess.Popen": (_Payload(sp.Popen, ["touch", marker]), "subprocess.Popen"),
    }


_WHERE = ["top", "pipeline", "list", "joblib", "estimator-attribute"]
_KINDS = ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen"]
# every payload in a pipeline and os.system everywhere by default; the full matrix with -m slow
_CASES = [(k, "pipeline") for k in _KINDS] + [("os.system", w) for w in _WHERE if w != "pipeline"]
_CASES += [pytest.param(k, w, marks=pytest.mark.slow) for k in _KINDS[1:] for w in _WHERE if w != "pipeline"]


@pytest.mark.parametrize("kind,where", _CASES)
def test_payloads_never_run(tmp_path, forest, kind, where):
    marker = str(tmp_path / "pwned")
    payload, global_name = _payloads(marker)[kind]
    path = tmp_path / "evil.pkl"
    if where == "top":
        obj = payload
    elif where == "pipeline":
        obj = Pipeline([("evil", payload), ("model", forest)])
    elif where == "list":
        obj = [forest, payload]
    elif where == "estimator-attribute":
        obj = tree.DecisionTreeClassifier(max_depth=2).fit(X, Y)
        obj.some_attribute_ = payload
    else:
        obj = Pipeline([("model", forest), ("evil", payload)])
    if where == "joblib":
        joblib.dump(obj, path, compress=3)
    else:
        path.write_bytes(pickle.dumps(obj))
    with pytest.raises(TimberError) as e:
        sk.load(path)
    assert not os.path.exists(marker)
    assert f"refused to load global '{global_name}'" in str(e.value)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "data,needle",
    [
        (b"\x80\x04cnumpy\nload\n(S'/etc/passwd'\ntR.", "numpy.load"),
        (b"\x80\x02cnumpy\nndarray\n(K\x03\x85tR.", "may only be rebuilt"),
        (b"\x80\x02ccopyreg\n_reconstructor\n(c__builtin__\nobject\nc__builtin__\nobject\nNtR.", "only allowed on scikit-learn"),
        (b"\x80\x02c__builtin__\ngetattr\n.", "builtins.getattr"),
        (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85U\x01btR.", "non-empty shape"),
    ],
    ids=["numpy.load", "ndarray-call", "reconstructor", "getattr", "huge-array"],
)
def test_hand_made_pickles_are_refused(tmp_path, data, needle):
    path = tmp_path / "x.pkl"
    path.write_bytes(data)
    with pytest.raises(TimberError, match=needle):
        sk.load(path)


# ----- bad input ----------------------------------------------------------------------------------------


def _write(tmp_path, obj, name="m.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj))
    return path


def test_unfitted_estimator(tmp_path):
    with pytest.raises(TimberError, match=r"DecisionTreeClassifier\.\w+_ is missing \(is the estimator fitted\?\)"):
        sk.load(_write(tmp_path, tree.DecisionTreeClassifier()))


def test_unknown_class_lists_the_supported_ones(tmp_path):
    km = KMeans(2, n_init=1, random_state=0).fit(X)
    with pytest.raises(TimberError) as e:
        sk.load(_write(tmp_path, km))
    msg = str(e.value)
    assert "sklearn.cluster._kmeans.KMeans is not a scikit-learn estimator Timber compiles" in msg
    assert "RandomForestClassifier" in msg and "HistGradientBoostingRegressor" in msg


@pytest.mark.parametrize("obj,what", [({"a": 1}, "a dict"), (np.arange(3.0), "a numpy array of shape (3,)"), ([1, 2], "a list")])
def test_not_a_model(tmp_path, obj, what):
    with pytest.raises(TimberError, match=re.escape(f"holds {what}, not a fitted scikit-learn estimator")):
        sk.load(_write(tmp_path, obj))


def test_unknown_method_and_option(forest):
    with pytest.raises(TimberError, match="unknown method 'proba'"):
        sk.load(forest, method="proba")
    with pytest.raises(TimberError, match="has no method 'transform'"):
        sk.load(forest, method="transform")
    with pytest.raises(TimberError, match="take no option 'n_trees'; they take: method"):
        sk.load(forest, n_trees=3)


@pytest.mark.parametrize("cut", [0.999, 0.5, 0.05, 3])
def test_truncated_files(tmp_path, forest, cut):
    data = pickle.dumps(forest)
    n = int(len(data) * cut) if cut < 1 else cut
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[:n])
    with pytest.raises(TimberError, match="truncated|corrupt|empty"):
        sk.load(path)


def test_truncated_compressed_joblib(tmp_path, forest):
    path = tmp_path / "m.joblib"
    joblib.dump(forest, path, compress=("gzip", 3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TimberError, match="truncated|corrupt"):
        sk.load(path)


def test_corrupted_files(tmp_path, forest):
    data = bytearray(pickle.dumps(forest))
    rng = np.random.default_rng(0)
    for trial in range(40):
        bad = bytearray(data)
        for i in rng.integers(2, len(bad), 4):
            bad[i] = int(rng.integers(0, 256))
        path = tmp_path / f"bad{trial}.pkl"
        path.write_bytes(bytes(bad))
        try:
            module = sk.load(path)
        except TimberError:
            continue
        predict(module, X[:2])  # a corruption that still parses must give a verified, runnable module


def test_pipeline_step_that_cannot_compile_is_named(tmp_path, forest):
    pipe = Pipeline([("cluster", KMeans(2, n_init=1, random_state=0)), ("model", tree.DecisionTreeClassifier(max_depth=2))]).fit(X, Y)
    with pytest.raises(TimberError) as e:
        sk.load(_write(tmp_path, pipe))
    msg = str(e.value)
    assert "Pipeline step 0 'cluster' (KMeans)" in msg
    assert "is not a scikit-learn estimator Timber compiles" in msg


def test_pipeline_and_column_transformer(tmp_path):
    """Steps chain; 'passthrough' steps and columns pass through; 'drop' drops; the remainder
    follows; the last step's method (and its default) is the pipeline's."""
    ct = ColumnTransformer([("a", "passthrough", [3, 0]), ("b", "drop", [1])], remainder="passthrough")
    pipe = Pipeline([("cols", ct), ("nothing", "passthrough"), ("model", ensemble.GradientBoostingClassifier(n_estimators=5))])
    pipe.fit(X, Y)
    for method in ("predict_proba", "predict", "decision_function"):
        assert_parity(pipe, method, module=sk.load(_write(tmp_path, pipe), method=method))
    assert_parity(pipe.named_steps["cols"], "transform")


def test_cli_exit_status_and_no_traceback(tmp_path, forest):
    marker = str(tmp_path / "pwned")
    bad = _write(tmp_path, Pipeline([("evil", _payloads(marker)["os.system"][0]), ("m", forest)]), "bad.pkl")
    good = _write(tmp_path, forest, "good.pkl")
    run = lambda *a: subprocess.run([sys.executable, "-m", "timber.cli", *a], capture_output=True, text=True, timeout=300)  # noqa: E731
    r = run("compile", str(bad))
    assert r.returncode == 1 and "refused to load global" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(marker)
    r = run("compile", str(good), "-O", "method=predict")
    assert r.returncode == 0, r.stderr
    assert 'timber.method = "predict"' in r.stdout


def test_function_transformer_numpy_functions(tmp_path):
    """FunctionTransformer(np.log1p) pickles the ufunc by name: read as a name, never called, and
    compiled to the C library's log1p (what numpy calls)."""
    from sklearn.preprocessing import FunctionTransformer

    Xp = np.abs(X) * 3
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("model", tree.DecisionTreeRegressor(max_depth=5))]).fit(Xp, Xp[:, 0])
    assert_parity(pipe, "predict", X=np.abs(np.random.default_rng(1).standard_normal((200, 4))) * 4, module=sk.load(_write(tmp_path, pipe)))
    with pytest.raises(TimberError, match="func numpy.sqrt is not supported"):
        sk.load(_write(tmp_path, FunctionTransformer(np.sqrt).fit(Xp)))


def test_every_supported_class_unfitted_is_a_clear_error():
    """Each class the front-end compiles, pickled unfitted: a TimberError asking whether it is fitted."""
    from sklearn.compose import ColumnTransformer as CT
    from sklearn.pipeline import FeatureUnion
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import all_estimators

    make = dict(all_estimators())
    make.update(
        Pipeline=lambda: Pipeline([("s", StandardScaler())]),
        ColumnTransformer=lambda: CT([("a", "passthrough", [0])]),
        FeatureUnion=lambda: FeatureUnion([("s", StandardScaler())]),
    )
    missing = [name for name in sk.supported() if name not in make]
    assert not missing
    for name in sk.supported():
        with pytest.raises(TimberError, match=r"is missing \(is the estimator fitted\?\)"):
            sk.load(pickle.dumps(make[name]()), source_name=f"{name}.pkl")


def _bad_inputs(tmp_path, forest):
    """(file, what the error says) for each bad input of the issue."""
    data = pickle.dumps(forest)
    bad = bytearray(data)
    bad[11:51] = b"\xfe" * 40  # the first opcodes after the frame header
    pipe = Pipeline([("cluster", KMeans(2, n_init=1, random_state=0)), ("model", tree.DecisionTreeClassifier(max_depth=2))]).fit(X, Y)
    files = {
        "unfitted": (tree.DecisionTreeClassifier(), r"is missing \(is the estimator fitted\?\)"),
        "unknown-class": (
            KMeans(2, n_init=1, random_state=0).fit(X),
            r"KMeans is not a scikit-learn estimator Timber compiles; supported: ",
        ),
        "not-a-model": ({"weights": [1, 2]}, r"holds a dict, not a fitted scikit-learn estimator"),
        "pipeline-step": (pipe, r"Pipeline step 0 'cluster' \(KMeans\)"),
    }
    out = {k: (_write(tmp_path, obj, f"{k}.pkl"), needle) for k, (obj, needle) in files.items()}
    for k, body, needle in (("truncated", data[: len(data) // 2], "truncated"), ("corrupt", bytes(bad), "truncated|corrupt"),
                            ("empty", b"", "empty"), ("text", b"hello, not a model\n", None)):  # fmt: skip
        path = tmp_path / f"{k}.pkl"
        path.write_bytes(body)
        out[k] = (path, needle)
    return out


@pytest.mark.parametrize("kind", ["unfitted", "unknown-class", "not-a-model", "pipeline-step", "truncated", "corrupt", "empty", "text"])
def test_bad_input_on_the_command_line(tmp_path, forest, capsys, kind):
    """`timber compile FILE -o out`: exit status 1, the reason on stderr, no traceback, no output."""
    from timber.cli import main

    path, needle = _bad_inputs(tmp_path, forest)[kind]
    out = tmp_path / "out"
    assert main(["compile", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err and (needle is None or re.search(needle, err)), err
    assert not out.exists()
