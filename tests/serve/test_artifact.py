"""Compiled-model artifacts and pickles: the same bits after a round trip for every front-end's
models, object code loaded without recompiling, recompiling from the IR when this CPU lacks the
object's features, and damaged or tampered bytes refused with a clear error before anything in
them runs."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import struct

import numpy as np
import pytest

import timber
from ir.diagnostics import TimberError
from tests.rows import adversarial_rows
from timber import artifact
from timber.artifact import ArtifactError, from_artifact, read_artifact, to_artifact

from .models import DEMO, bits, lightgbm_binary


@pytest.fixture(scope="module")
def demo():
    return timber.compile(str(DEMO))


@pytest.fixture(scope="module")
def lgb_model(tmp_path_factory):
    # a non-default option, which the artifact must carry: one thread
    return timber.compile(str(lightgbm_binary(tmp_path_factory.mktemp("lgb") / "m.txt")), n_jobs=1)


@pytest.fixture(scope="module")
def catboost_model():
    catboost = pytest.importorskip("catboost")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    m = catboost.CatBoostClassifier(iterations=8, depth=3, verbose=False, allow_writing_files=False, random_seed=0)
    m.fit(X, y)
    return timber.compile(m)


@pytest.fixture(scope="module")
def sklearn_model():
    """scikit-learn's transform of one component: (n, 1) outputs, which the artifact must keep."""
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = np.random.default_rng(4).normal(size=(100, 5))
    # and a non-default math option, which the artifact must carry too
    return timber.compile(decomposition.PCA(n_components=1).fit(X), method="transform", math="timber")


@pytest.fixture(scope="module")
def tir_model(demo, tmp_path_factory):
    """Timber IR text as the model file (the `.tir` front-end)."""
    path = tmp_path_factory.mktemp("tir") / "m.tir"
    path.write_text(demo.ir)
    return timber.compile(str(path), passes="")


def _rows(model, n=300):
    X = adversarial_rows(model.module)
    if X.size == 0:  # no trees to read thresholds from
        X = np.zeros((0, model.n_features))
    rng = np.random.default_rng(0)
    return np.vstack([X, rng.normal(size=(n, X.shape[1]))])


def _same_predictions(a, b, X):
    assert a.predict(X).shape == b.predict(X).shape
    assert np.array_equal(bits(a.predict(X)), bits(b.predict(X)))
    if a._margin is not None:
        assert np.array_equal(bits(a.predict(X, output_margin=True)), bits(b.predict(X, output_margin=True)))
    for row in X[:20]:  # the one-row entry point too
        assert np.array_equal(bits(a.predict(row)), bits(b.predict(row)))


@pytest.mark.parametrize("name", ["demo", "lgb_model", "catboost_model", "sklearn_model", "tir_model"])
def test_pickle_round_trip_gives_the_same_bits_without_recompiling(name, request):
    model = request.getfixturevalue(name)
    data = pickle.dumps(model)
    artifact._JIT_CACHE.clear()
    loaded = artifact.loads(data)
    assert isinstance(loaded, timber.CompiledModel)
    assert "load_object" in loaded.timings and "optimize" not in loaded.timings  # object code, no LLVM codegen
    assert (loaded.n_features, loaded.n_outputs) == (model.n_features, model.n_outputs)
    assert loaded.feature_names == model.feature_names
    _same_predictions(model, loaded, _rows(model))
    assert loaded.ir == model.ir
    again = artifact.loads(pickle.dumps(loaded))  # a loaded model pickles again, to the same bytes
    assert pickle.dumps(again) == pickle.dumps(loaded)


def test_plain_pickle_loads_calls_only_from_artifact(demo):
    import pickletools

    data = pickle.dumps(demo)
    strings = [arg for op, arg, _ in pickletools.genops(data) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")]
    globals_named = [op.name for op, _, _ in pickletools.genops(data) if op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ")]
    assert globals_named == ["STACK_GLOBAL"] and strings == ["timber.artifact", "from_artifact"]
    m = pickle.loads(data)
    X = _rows(demo, 50)
    assert np.array_equal(bits(m.predict(X)), bits(demo.predict(X)))


def test_a_loaded_model_pickles_as_the_bytes_it_was_loaded_from(demo):
    """Pickling a model loaded from an artifact again (a worker forwarding it, Ray, Spark) sends
    the very bytes it came from, unless its options changed since."""
    data = pickle.dumps(demo)
    loaded = timber.load_pickle(data)
    art = loaded.__reduce__()[1][0]
    assert art is loaded.__dict__["_loaded_bytes"][1] and pickle.dumps(loaded) == data
    loaded.n_jobs = 3
    again = timber.load_pickle(pickle.dumps(loaded))
    assert again.n_jobs == 3
    X = np.random.default_rng(0).normal(size=(50, demo.n_features))
    np.testing.assert_array_equal(again.predict(X), demo.predict(X))


def test_artifact_metadata_and_options(demo, lgb_model, sklearn_model):
    art = read_artifact(to_artifact(demo, source=DEMO))
    s = art.summary()
    assert s["format"] == "xgboost" and s["objective"] == "binary:logistic"
    assert s["n_features"] == 30 and s["n_outputs"] == 1
    assert s["source_sha256"] == hashlib.sha256(DEMO.read_bytes()).hexdigest()
    assert s["timber_version"] == timber.__version__
    assert art.header["target"]["triple"] and art.header["target"]["features"]
    assert art.header["options"] == {"n_jobs": None, "math": "libm", "prefix": "timber_"}
    loaded = artifact.loads(pickle.dumps(lgb_model))
    assert loaded.n_jobs == 1 and loaded.jit.target.libm is True
    assert artifact.loads(pickle.dumps(sklearn_model)).jit.target.libm is False
    assert read_artifact(to_artifact(loaded)).summary()["format"] == "lightgbm"
    loaded.n_jobs = 2  # a changed option travels with the next pickle
    assert artifact.loads(pickle.dumps(loaded)).n_jobs == 2


def test_kernels_say_what_runs_the_model_and_travel_with_the_artifact(demo):
    """`CompiledModel.kernels` names the block size, each kernel kind with its trees, and the
    target's choices; a model loaded from an artifact reports the same plan (older artifacts,
    without the field, say so)."""
    text = demo.kernels
    assert text.startswith("blocks of ") and "50 trees heap (1 segment)" in text
    assert f"cpu {demo.jit.target.cpu}" in text
    data = to_artifact(demo)
    loaded = from_artifact(data)
    assert loaded.kernels == text
    old = _rewrite(data, lambda h: h.pop("kernels") and None)
    assert "not recorded" in from_artifact(old).kernels


def _rewrite(data: bytes, edit) -> bytes:
    """Artifact bytes with the header changed by `edit` and a valid checksum again (a forged or
    newer artifact, not a damaged one)."""
    magic, version, hlen = struct.unpack_from("<8sII", data)
    header = json.loads(data[16 : 16 + hlen])
    version = edit(header) or version
    head = json.dumps(header).encode()
    body = struct.pack("<8sII", magic, version, len(head)) + head + data[16 + hlen : -32]
    return body + hashlib.sha256(body).digest()


def test_recompiles_from_the_ir_when_this_cpu_lacks_a_feature(demo):
    def foreign(h):
        h["target"]["features"] += ",+timber-test-feature"
        h["target"]["cpu"] = "some-other-cpu"

    data = _rewrite(to_artifact(demo), foreign)
    assert not artifact.runs_here(read_artifact(data).header["target"])
    artifact._JIT_CACHE.clear()
    m = from_artifact(data)
    assert "recompile" in m.timings and "load_object" not in m.timings
    _same_predictions(demo, m, _rows(demo))
    again = from_artifact(data)  # once per process
    assert again.jit is m.jit


def test_untrusted_artifacts_never_load_their_object_code(demo, monkeypatch):
    """`trust_code=False` recompiles from the (parsed and verified) IR instead of loading the
    stored object code; the dispatch is what is tested here (recompiling is tested above)."""
    import backends.llvm.jit as jit

    calls = []
    monkeypatch.setattr(jit, "load_object", lambda *a, **k: calls.append("object"))
    monkeypatch.setattr(artifact, "_recompile", lambda art, what: calls.append("ir") or (demo.lowered, demo.jit))
    artifact._JIT_CACHE.clear()
    m = from_artifact(to_artifact(demo), trust_code=False)
    assert calls == ["ir"]
    X = _rows(demo, 20)
    assert np.array_equal(bits(m.predict(X)), bits(demo.predict(X)))
    artifact._JIT_CACHE.clear()


@pytest.mark.parametrize(
    "where",
    ["magic", "header", "ir", "object", "digest", "truncated", "empty"],
)
def test_damaged_bytes_are_refused_with_a_clear_error(demo, where):
    data = bytearray(to_artifact(demo))
    hlen = struct.unpack_from("<I", data, 12)[0]
    sections = json.loads(data[16 : 16 + hlen])["sections"]
    base = 16 + hlen
    if where == "magic":
        data[1] ^= 0xFF
    elif where == "header":
        data[20] ^= 0x01
    elif where in ("ir", "object"):
        data[base + sections[where][0] + sections[where][1] // 2] ^= 0x40
    elif where == "digest":
        data[-1] ^= 0x01
    elif where == "truncated":
        data = data[: len(data) // 2]
    else:
        data = bytearray()
    with pytest.raises(ArtifactError, match="not a Timber artifact" if where in ("magic", "empty") else "checksum mismatch|not a Timber"):
        from_artifact(bytes(data))


def test_forged_headers_are_checked_field_by_field(demo):
    data = to_artifact(demo)

    def newer(h):
        return 99

    with pytest.raises(ArtifactError, match="format version 99, made by a newer Timber"):
        read_artifact(_rewrite(data, newer))
    edits = {
        "exports[0].in_dtype": lambda h: h["exports"][0].__setitem__("in_dtype", "int8"),
        "options.math": lambda h: h["options"].__setitem__("math", "fast"),
        "sections.ir": lambda h: h["sections"].__setitem__("ir", [0, 10, "lzma", 10]),
        "block_rows": lambda h: h.__setitem__("block_rows", True),
    }
    for field, edit in edits.items():
        with pytest.raises(ArtifactError, match=re.escape(f"header field '{field}'")):
            read_artifact(_rewrite(data, edit))

    def lie_about_size(h):
        h["sections"]["object"][3] += 1

    with pytest.raises(ArtifactError, match="section 'object' holds"):
        read_artifact(_rewrite(data, lie_about_size))


def test_a_tampered_pickle_never_runs_its_code(demo, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(TimberError, match=r"refusing to unpickle: the pickle names (posix|nt)\.system"):
        artifact.loads(pickle.dumps(Evil()))
    assert not marker.exists()
    # a model pickle whose artifact bytes were altered: the checksum refuses it
    data = bytearray(pickle.dumps(demo))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(TimberError, match="checksum mismatch"):
        artifact.loads(bytes(data))
    with pytest.raises(TimberError, match="not a Timber model pickle"):
        artifact.loads(b"\x80\x05garbage")
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(demo))
    X = _rows(demo, 20)
    assert np.array_equal(bits(timber.artifact.load_pickle(path).predict(X)), bits(demo.predict(X)))
