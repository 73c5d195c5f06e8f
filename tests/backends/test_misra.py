"""The MISRA C:2012 profile of the C99 back-end (`emit_c99(..., misra=True)`, `timber compile
--target c99 --misra`): cppcheck's MISRA addon reports nothing on every model kind; the issue's
explicit rules hold in the text (fixed-width types, Boolean conditions, braces, ended `else if`
chains, no union, no pointer arithmetic, one exit per function); results are the plain C99
output's bit for bit; DEVIATIONS.md is written beside the sources.

cppcheck comes from the distribution (`apt-get install cppcheck`, done by .ci/run).  Without it
the cppcheck tests skip, saying so, unless TIMBER_REQUIRE_TEST_TOOLS=1 (CI), where they fail.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from backends.c99 import emit_c99
from backends.c99.misra import _brace_line
from backends.common.plan import plan_module
from ir.attributes import StringAttr
from ir.types import f32, f64, tensor

_spec = importlib.util.spec_from_file_location("timber_backend_models_misra", Path(__file__).with_name("test_c99_wat_models.py"))
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-ffp-contract=off", "-O2"]
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _require_tool(name: str, what: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({what})"
        if os.environ.get("TIMBER_REQUIRE_TEST_TOOLS") == "1":
            pytest.fail(f"TIMBER_REQUIRE_TEST_TOOLS=1 but {message}")
        pytest.skip(message)
    return path


def cppcheck() -> str:
    return _require_tool("cppcheck", "apt-get install cppcheck; .ci/run installs it")


def c_compiler() -> list[str]:
    """The C compiler test_c99.py uses (gcc, else cc), else the suite's zig cc."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is not None:
        return [cc]
    from tests.backends.xtarget.toolchain import require

    require("ziglang")
    return [sys.executable, "-m", "ziglang", "cc"]


# ----- the models: every kind the C99 back-end compiles -------------------------------------------


def _default_passes(m):
    from passes.manager import run_pipeline

    run_pipeline(m, "default", verify_each=False)
    return m


def _math_all():
    """Every math expansion (exp, fmath exp, log, log1p, sin, cos, tanh, erfinv, sigmoid) in f32
    and f64, one exported function each."""
    from ir.opdef import OP_REGISTRY

    m = models.new_module(format="hand", source="hand/math_all.tir")
    for spec in models.MATH_OPS:
        name, _, impl = spec.partition(":")
        for el in (f32, f64):
            fname = "predict" if (spec, el) == ("math.exp", f64) else f"{spec.replace('.', '_').replace(':', '_')}_{el}"
            f, x = models.add_func(m, fname, tensor(1, el), tensor(1, el))
            models.ret(f, models.add(f, OP_REGISTRY[name].build(x, **({"impl": StringAttr(impl)} if impl else {}))))
    return m


def _data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int), (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def _lightgbm():
    """Categorical splits and linear trees in one small model."""
    import lightgbm as lgb

    from timber.frontends import lightgbm as fl

    X, _, _ = _data()
    X[:, 2] = np.random.default_rng(1).integers(0, 8, len(X))
    params = {"objective": "regression", "verbose": -1, "num_leaves": 7, "linear_tree": True, "min_data_per_group": 5, "cat_smooth": 1}
    b = lgb.train(params, lgb.Dataset(X, X[:, 0] * 2 + (X[:, 2] == 3), categorical_feature=[2]), 6)
    return _default_passes(fl.load(b))


def _xgboost():
    import xgboost as xgb

    from timber.frontends import xgboost as fx

    X, _, y3 = _data()
    b = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3}, xgb.DMatrix(X, y3), 3)
    return _default_passes(fx.load(bytes(b.save_raw("json"))))


def _catboost():
    import catboost as cb

    from timber.frontends import catboost as fc

    X, y, _ = _data()
    m = cb.CatBoostClassifier(iterations=5, depth=3, verbose=0, allow_writing_files=False, thread_count=1).fit(X, y)
    return _default_passes(fc.load(m))


def _catboost_ctr():
    """Categorical features as CTRs: CatBoost's hashes in 64-bit integer arithmetic."""
    import catboost as cb

    from timber.frontends import catboost as fc

    X, _, _ = _data()
    rng = np.random.default_rng(2)
    cats = np.stack([rng.integers(0, 6, len(X)), rng.integers(0, 3, len(X))], axis=1)
    y = ((X[:, 0] > 0) ^ (cats[:, 0] == 1)).astype(int)
    rows = [[float(x), str(c0), str(c1)] for x, c0, c1 in zip(X[:, 0], cats[:, 0], cats[:, 1])]
    m = cb.CatBoostClassifier(iterations=5, depth=3, verbose=0, allow_writing_files=False, thread_count=1, cat_features=[1, 2])
    return _default_passes(fc.load(m.fit(rows, y)))


def _sklearn(kind: str):
    from timber.frontends import sklearn as fs

    X, _, y3 = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "svc":  # kernel.gram, kernel.couple (probabilities), libsvm's vote
            from sklearn.svm import SVC

            est = SVC(kernel="rbf", probability=True, random_state=0).fit(X[:60], y3[:60])
        elif kind == "forest":
            from sklearn.ensemble import RandomForestClassifier

            est = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y3)
        elif kind == "linear":
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression().fit(X, y3)
        elif kind == "knn":  # kernel.distances, kernel.topk, kernel.take, kernel.sqrt
            from sklearn.neighbors import KNeighborsClassifier

            est = KNeighborsClassifier(3, weights="distance").fit(X[:40], y3[:40])
        else:  # mlp
            from sklearn.neural_network import MLPClassifier

            est = MLPClassifier((4,), max_iter=30, random_state=0).fit(X, y3)
    return _default_passes(fs.load(est))


def _onnx(tmp: Path):
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    from timber.frontends import onnx as fo

    X, _, y3 = _data()
    X = X.astype(np.float32)
    p = tmp / "rf.onnx"
    p.write_bytes(to_onnx(RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y3), X[:1]).SerializeToString())
    return _default_passes(fo.load(str(p)))


def _urdf(dtype: str):
    from timber.frontends import urdf

    path = CORPUS / "urdf" / "ur5.urdf"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    return _default_passes(urdf.load(str(path), ee="tool0", dtype=dtype))


BUILDERS = {
    "int_zoo": lambda tmp: models.int_zoo(),  # every integer/bit helper
    "lgb_binary": lambda tmp: models.lgb_binary(),  # categorical sets, NaN/zero missing, exp
    "math_all": lambda tmp: _math_all(),
    "sklearn_svc": lambda tmp: _sklearn("svc"),
    "lightgbm": lambda tmp: _lightgbm(),
    # under -m slow
    "urdf_f32": lambda tmp: _urdf("f32"),
    "catboost_like": lambda tmp: models.catboost_like(),
    "empty_and_constant": lambda tmp: models.empty_and_constant(),
    "predicate_zoo": lambda tmp: models.predicate_zoo(),
    "arith_zoo": lambda tmp: models.arith_zoo(),
    "multiclass_softmax": lambda tmp: models.multiclass_softmax(),
    "multiclass_argmax": lambda tmp: models.multiclass_argmax(),
    "xgboost": lambda tmp: _xgboost(),
    "catboost": lambda tmp: _catboost(),
    "catboost_ctr": lambda tmp: _catboost_ctr(),
    "sklearn_forest": lambda tmp: _sklearn("forest"),
    "sklearn_linear": lambda tmp: _sklearn("linear"),
    "sklearn_mlp": lambda tmp: _sklearn("mlp"),
    "sklearn_knn": lambda tmp: _sklearn("knn"),
    "onnx": _onnx,
    "urdf_f64": lambda tmp: _urdf("f64"),
}
DEFAULT = ["int_zoo", "lgb_binary", "math_all", "sklearn_svc"]  # the rest: -m slow
ALL = [pytest.param(n, marks=() if n in DEFAULT else pytest.mark.slow) for n in BUILDERS]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("misra")


class Built:
    """One model: its module, both C outputs written to disk."""

    def __init__(self, name: str, workdir: Path):
        self.module = BUILDERS[name](workdir)
        self.plain = emit_c99(self.module)
        self.misra = emit_c99(self.module, misra=True)
        self.dirs = {}
        for kind, files in (("plain", self.plain), ("misra", self.misra)):
            d = workdir / name / kind
            d.mkdir(parents=True, exist_ok=True)
            for fname, text in files.items():
                (d / fname).write_text(text)
            self.dirs[kind] = d


_built: dict[str, Built] = {}


def built(name: str, workdir: Path) -> Built:
    if name not in _built:
        _built[name] = Built(name, workdir)
    return _built[name]


# ----- cppcheck --------------------------------------------------------------------------------------


def misra_findings(d: Path) -> list[str]:
    """cppcheck's MISRA findings on model.c and model_data.c in `d`, one "file:line: rule" each."""
    r = subprocess.run(
        [cppcheck(), "--addon=misra", "--std=c99", "-q", "--template={file}:{line}: {id}", "model.c", "model_data.c"],
        cwd=d,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return [s for s in r.stderr.splitlines() if "misra" in s or "error" in s.lower()]


def test_cppcheck_reports_a_known_violation(tmp_path):
    """The check itself works: a violation in the generated style is reported (else a broken
    addon would pass every model)."""
    cppcheck()
    (tmp_path / "model.c").write_text(
        "#include <stdint.h>\nint32_t f(int32_t a);\nint32_t f(int32_t a)\n{\n    int32_t r = 0;\n    if (a > 0)\n        r = 1;\n    return r;\n}\n"
    )
    (tmp_path / "model_data.c").write_text("#include <stdint.h>\nconst uint8_t t[1] = {1U};\n")
    found = misra_findings(tmp_path)
    assert any("15.6" in s for s in found) and any("8.4" in s for s in found), found


@pytest.mark.parametrize("name", ALL)
def test_cppcheck_misra_addon_finds_nothing(name, workdir):
    b = built(name, workdir)
    found = misra_findings(b.dirs["misra"])
    assert found == [], f"{name}: cppcheck --addon=misra reports:\n" + "\n".join(found)


# ----- the rules in the text ---------------------------------------------------------------------------


def _functions(text: str) -> dict[str, list[str]]:
    """Function name -> body lines (the generated code puts `{` and `}` of a function in column 0)."""
    out, name, body = {}, None, []
    lines = text.splitlines()
    for i, s in enumerate(lines):
        if s == "{" and i > 0:
            m = re.search(r"(\w+)\(", lines[i - 1])
            name, body = (m.group(1) if m else lines[i - 1]), []
        elif s == "}" and name is not None:
            out[name] = body
            name = None
        elif name is not None:
            body.append(s)
    return out


@pytest.mark.parametrize("name", ALL)
def test_issue_rules_hold_in_the_text(name, workdir):
    b = built(name, workdir)
    c, data, h = (re.sub(r"/\*.*?\*/", "", b.misra[f], flags=re.S) for f in ("model.c", "model_data.c", "model_data.h"))
    prefix = "timber_"
    for text in (c, data, h):
        assert not re.search(r"\bunion\b", text)
        assert "memcpy" not in text and "<string.h>" not in text
        assert not re.search(r"\b(long|short|signed)\b", text)
    # Fixed-width types: `int` only where the ABI of model.h has it (status, n_samples, the row
    # loop); `unsigned char` only for byte access in the bit-copy helpers.
    for s in c.splitlines():
        if re.search(r"\bint\b", s):
            assert s.startswith(f"int {prefix}") or "int rc" in s or "for (int i = 0; i < n_samples" in s, s
        if "unsigned char" in s:
            assert re.search(r"unsigned char \*(const )?[pq] = \((const )?unsigned char \*\)&[xy];", s), s
        if re.search(r"\bunsigned\b(?! char)", s) or "unsigned char" in s and "(unsigned char)(" in s:
            raise AssertionError(s)
    # Every table is const, declared once in model_data.h and defined in model_data.c.
    decls = re.findall(r"^extern const \w+ (\w+)\[\d+\];$", h, re.M)
    defs = re.findall(r"^const \w+ (\w+)\[\d+\] = \{$", data, re.M)
    assert decls and sorted(decls) == sorted(defs)
    assert "extern" not in c and '#include "model_data.h"' in c and '#include "model_data.h"' in data
    for fname, body in _functions(c).items():
        code = [s for s in body if s.strip() and not s.strip().startswith("/*")]
        # One exit: at most one return, and it is the last statement.
        returns = [i for i, s in enumerate(code) if re.search(r"\breturn\b", s)]
        assert len(returns) <= 1 and (not returns or returns[0] == len(code) - 1), (fname, code)
        for i, s in enumerate(code):
            # Every if/else/for/while body is a compound statement.
            assert _brace_line(s) == s, (fname, s)
            assert not re.search(r"\bgoto\b", s), (fname, s)
            # Every if / else if chain ends with else.
            m = re.match(r"^(\s*)\} else if \(.*\{$", s)
            if m:
                end = next(t for t in code[i + 1 :] if t.startswith(m.group(1) + "}"))
                assert end.startswith(m.group(1) + "} else"), (fname, s, end)
        # No pointer arithmetic: pointers are only indexed (a pointer name followed by + or -).
        params = re.findall(r"\*(\w+)", next((s for s in c.splitlines() if re.search(rf"\b{fname}\(", s) and "(" in s), ""))
        for p in params:
            assert not any(re.search(rf"\b{p}\s*[+-][^+-=]", s) for s in code), (fname, p)
    # Booleans are bool: every comparison result, condition and i1 value.
    assert "(unsigned char)(" not in c


# ----- same results as the plain output ------------------------------------------------------------------


class _Lib:
    def __init__(self, d: Path, plan):
        so = d / "libmodel.so"
        if not so.exists():
            key = hashlib.sha256((d / "model.c").read_bytes()).hexdigest()[:8]
            r = subprocess.run(
                [*c_compiler(), *CFLAGS, "-fPIC", "-shared", "-o", f"lib{key}.so", "model.c", "model_data.c"],
                cwd=d,
                capture_output=True,
                text=True,
            )
            assert r.returncode == 0 and not r.stderr.strip(), r.stderr
            os.replace(d / f"lib{key}.so", so)
        self.lib = ctypes.CDLL(str(so))
        self.plan = plan

    def __call__(self, ex, X) -> tuple[int, np.ndarray]:
        X = np.ascontiguousarray(X, ex.in_elem.numpy)
        out = np.full((len(X), ex.n_out), 0x7B, ex.out_elem.numpy)
        f = getattr(self.lib, ex.batch_symbol)
        f.restype, f.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        return f(X.ctypes.data, len(X), out.ctypes.data, None), out


def _rows(name: str, module, ex) -> np.ndarray:
    if name == "math_all":
        return models.math_inputs(ex.in_elem.numpy)[::10].reshape(-1, 1)
    if name == "int_zoo":
        return models.int_rows(module, ex.func.sym_name, n_random=300)
    return models.adversarial_rows(module, func_name=ex.func.sym_name, max_rows=3000)


@pytest.mark.parametrize("name", ALL)
def test_misra_output_is_bit_identical_to_the_plain_output(name, workdir):
    """Both outputs built with one compiler (-Werror, the Makefile's flags), every export on
    adversarial rows (NaN, +-inf, -0.0, thresholds and their neighbours; integer edge cases;
    10^4 math inputs), and the single-row entry point; status codes too."""
    b = built(name, workdir)
    plan = plan_module(b.module, "timber_", "c99")
    plain, misra = _Lib(b.dirs["plain"], plan), _Lib(b.dirs["misra"], plan)
    for ex in plan.exports:
        X = _rows(name, b.module, ex)
        rc_p, y_p = plain(ex, X)
        rc_m, y_m = misra(ex, X)
        assert rc_p == rc_m == 0
        np.testing.assert_array_equal(y_m.view(f"u{y_m.itemsize}"), y_p.view(f"u{y_p.itemsize}"), err_msg=f"{name} {ex.batch_symbol}")
    # Error codes and the single-row entry point through the misra wrappers.
    ex = plan.predict
    f = getattr(misra.lib, ex.batch_symbol)
    f.restype, f.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    assert f(None, -1, None, None) == -3 and f(None, 1, None, None) == -1 and f(None, 0, None, None) == 0
    single = getattr(misra.lib, ex.single_symbol)
    single.restype, single.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    X = np.ascontiguousarray(_rows(name, b.module, ex)[:50], ex.in_elem.numpy)
    out = np.zeros(ex.n_out, ex.out_elem.numpy)
    _, want = plain(ex, X)
    for i in range(len(X)):
        assert single(X[i].ctypes.data, out.ctypes.data, None) == 0
        np.testing.assert_array_equal(out.view(f"u{out.itemsize}"), want[i].view(f"u{out.itemsize}"))
    assert single(None, out.ctypes.data, None) == -1


# ----- files, DEVIATIONS.md, the CLI ------------------------------------------------------------------------


def test_files_and_deviations_record(workdir):
    b = built("lgb_binary", workdir)
    assert set(b.misra) == set(b.plain) | {"model_data.h", "DEVIATIONS.md"}
    assert b.misra["model.h"] == b.plain["model.h"]  # the same ABI
    assert "model_data.h" in b.misra["Makefile"]
    dev = b.misra["DEVIATIONS.md"]
    rows = [s for s in dev.splitlines() if re.match(r"^\| D\d+ \|", s)]
    assert rows, dev
    for row in rows:  # each deviation: rule, category, where, reason
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 5 and all(cells), row
        assert re.match(r"(Rule|Directive) \d+\.\d+", cells[1]) and cells[2] in ("advisory", "required", "mandatory")
    assert "hand/lgb_binary.txt" in dev and "`bits_f64`" in dev and "No required or mandatory rule is deviated." in dev
    for f in ("model.c", "model_data.c", "model_data.h", "model.h"):
        assert f"`{f}`" in dev


def test_model_without_tables_has_no_unused_typedef():
    """ISO C forbids an empty translation unit: model_data.c defines a declared placeholder rather
    than an unused typedef (Rule 2.3)."""
    m = models.new_module(format="hand", source="hand/identity.tir")
    f, x = models.add_func(m, "predict", tensor(2, f64), tensor(2, f64))
    models.ret(f, x)
    files = emit_c99(m, misra=True)
    assert "typedef" not in files["model_data.c"] and "extern const uint8_t timber_no_tables[1];" in files["model_data.h"]


def test_cli_misra_flag(tmp_path, capsys):
    from ir.printer import print_op
    from timber.cli import main

    (tmp_path / "m.tir").write_text(print_op(models.xgb_binary()))
    assert main(["compile", str(tmp_path / "m.tir"), "--target", "c99", "--misra", "-o", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["CMakeLists.txt", "DEVIATIONS.md", "Makefile", "model.c", "model.h", "model_data.c", "model_data.h"]
    assert main(["compile", str(tmp_path / "m.tir"), "--target", "wat", "--misra", "-o", str(tmp_path / "w")]) != 0
    assert "--misra applies to --target c99" in capsys.readouterr().err
