"""Textual IR is an input like any model file: `timber compile x.tir`, `timber predict x.tir`
and `timber.compile("x.tir")` parse and verify it (errors are `file:line:col: error:` with the
source line, exit status 1, no traceback) and compile it to every target, matching the
interpreter bit for bit."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.diagnostics import TimberError
from ir.interpreter import run
from ir.parser import parse_module
from ir.verifier import verify
from timber.cli import main
from timber.detect import detect_format, load_model

# Only math ops, hand-written: no `module` wrapper, no timber.* attributes.
SOFTPLUS_TIR = """\
// log1p(exp(x)), elementwise
func.func @predict(%x: tensor<4xf64>) -> tensor<4xf64> {
  %e = math.exp %x : tensor<4xf64>
  %r = math.log1p %e : tensor<4xf64>
  func.return %r : tensor<4xf64>
}
"""

# The same in a module carrying attributes of its own, which loading keeps.
MODULE_TIR = """\
module attributes {note.author = "hand", note.version = 3 : i64} {
  func.func @predict(%x: tensor<4xf64>) -> tensor<4xf64> {
    %e = math.exp %x : tensor<4xf64>
    %r = math.log1p %e : tensor<4xf64>
    func.return %r : tensor<4xf64>
  }
}
"""


def rows() -> np.ndarray:
    """Ordinary values, exp's overflow/underflow edges, and the special values."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(size=(48, 4)) * 10, rng.uniform(-800, 800, size=(48, 4))])
    edge = [np.nan, np.inf, -np.inf, 0.0, -0.0, 709.78, 709.79, -745.2, -708.4, 1e-300, -1e-300, 36.0]
    return np.concatenate([X, np.array(edge, np.float64).reshape(-1, 4)])


@pytest.fixture
def tir(tmp_path) -> Path:
    p = tmp_path / "softplus.tir"
    p.write_text(SOFTPLUS_TIR)
    return p


@pytest.fixture
def X(tmp_path) -> tuple[np.ndarray, Path]:
    x = rows()
    p = tmp_path / "X.npy"
    np.save(p, x)
    return x, p


def want(math: str) -> np.ndarray:
    m = parse_module(SOFTPLUS_TIR, "softplus.tir")
    verify(m)
    return run(m, rows(), math=math)


def same_bits(got: np.ndarray, expected: np.ndarray) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    same = (got.view(np.uint64) == expected.view(np.uint64)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), (got[~same][:5], expected[~same][:5])


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ----- detection and loading --------------------------------------------------------------------


def test_detected_by_suffix_and_by_content(tmp_path):
    for name, text in [("a.tir", SOFTPLUS_TIR), ("a.mlir", MODULE_TIR), ("softplus.txt", SOFTPLUS_TIR), ("model", MODULE_TIR)]:
        p = tmp_path / name
        p.write_text(text)
        assert detect_format(p) == "tir", name
    generic = tmp_path / "generic.ir"
    generic.write_text('// generic form\n\n"builtin.module"() ({\n}) : () -> ()\n')
    assert detect_format(generic) == "tir"
    # Words that merely start like IR are not IR.
    other = tmp_path / "notes.txt"
    other.write_text("modules of the tree\n")
    with pytest.raises(TimberError, match="cannot tell which framework"):
        detect_format(other)


def test_load_keeps_the_files_own_attributes(tmp_path):
    p = tmp_path / "m.tir"
    p.write_text(MODULE_TIR)
    m = load_model(p)
    assert sorted(m.attributes) == ["note.author", "note.version"]
    assert "timber.format" not in m.attributes


def test_timber_compile_a_tir_file(tir):
    import timber

    for math in ("libm", "timber"):
        model = timber.compile(str(tir), math=math)
        assert "timber.format" not in model.module.attributes
        assert model.n_features == 4 and model.n_outputs == 4
        same_bits(model.predict(rows()), want(math))
    assert repr(model) == "<CompiledModel model: 4 features -> 4 outputs>"


def test_timber_compile_keeps_module_attributes(tmp_path):
    import timber

    p = tmp_path / "m.mlir"
    p.write_text(MODULE_TIR)
    model = timber.compile(p)
    assert model.module.attributes["note.author"].value == "hand"
    same_bits(model.predict(rows()), want("libm"))


# ----- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("math", ["libm", "timber"])
def test_predict_command(tir, X, tmp_path, capsys, math):
    _, xpath = X
    out = tmp_path / "Y.npy"
    code, _, err = cli(capsys, "predict", tir, "--input", xpath, "-o", out, "--math", math)
    assert code == 0, err
    same_bits(np.load(out).reshape(-1, 4), want(math))


def test_compile_to_tir_runs_the_default_pipeline(tir, capsys):
    code, out, err = cli(capsys, "compile", tir)
    assert code == 0, err
    m = parse_module(out, "out.tir")
    verify(m)
    same_bits(run(m, rows()), want("timber"))


def test_compile_c99(tir, capsys, tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    out = tmp_path / "c99"
    code, stdout, err = cli(capsys, "compile", tir, "--target", "c99", "-o", out)
    assert code == 0, err
    assert "wrote" in stdout and (out / "model.h").exists()
    sources = sorted(str(p) for p in out.glob("*.c"))
    lib = out / "libmodel.so"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-ffp-contract=off", "-O2", "-fPIC", "-shared"]
    r = subprocess.run([cc, *flags, "-o", str(lib), *sources], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fn = ctypes.CDLL(str(lib)).timber_infer
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    x = np.ascontiguousarray(rows())
    y = np.full(x.shape, 0x7B, np.float64)
    assert fn(x.ctypes.data, len(x), y.ctypes.data, None) == 0
    same_bits(y, want("timber"))


def test_compile_wat(tir, capsys, tmp_path):
    wasmtime = pytest.importorskip("wasmtime")
    out = tmp_path / "wat"
    code, _, err = cli(capsys, "compile", tir, "--target", "wat", "-o", out)
    assert code == 0, err
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    ex = wasmtime.Instance(store, wasmtime.Module(engine, (out / "model.wat").read_text()), []).exports(store)
    mem, fn = ex["memory"], ex["timber_infer"]
    in_ptr, out_ptr, batch = (ex[f"timber_{k}"].value(store) for k in ("input_ptr", "output_ptr", "batch_rows"))
    x = rows()
    got = []
    for s in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[s : s + batch], "<f8")
        mem.write(store, chunk.tobytes(), in_ptr)
        assert fn(store, in_ptr, len(chunk), out_ptr, 0) == 0
        got.append(np.frombuffer(bytes(mem.read(store, out_ptr, out_ptr + chunk.nbytes)), "<f8").reshape(-1, 4))
    same_bits(np.concatenate(got).astype(np.float64), want("timber"))


def test_compile_cortex_m3_object(tir, capsys, tmp_path):
    out = tmp_path / "obj"
    code, stdout, err = cli(capsys, "compile", tir, "--target", "thumbv7m-none-eabi", "-o", out)
    assert code == 0, err
    obj = (out / "model.o").read_bytes()
    assert obj[:4] == b"\x7fELF" and int.from_bytes(obj[18:20], "little") == 40  # EM_ARM
    assert "timber_infer" in (out / "model.h").read_text()
    # Run it: linked with compiler-rt, on an emulated Cortex-M3 (when unicorn and zig are installed).
    pytest.importorskip("unicorn")
    pytest.importorskip("ziglang")
    from backends.llvm.targets import resolve_target
    from tests.backends.xtarget.emulator import Emulator
    from tests.backends.xtarget.toolchain import link_image

    target = resolve_target("thumbv7m-none-eabi")
    emu = Emulator(link_image([obj], target, ["timber_infer"], tmp_path / "link"), target)
    rc, got = emu.infer("timber_infer", rows(), 4, np.float64)
    assert rc == 0
    same_bits(got, want("timber"))


# ----- errors -----------------------------------------------------------------------------------


def test_bad_tir_is_a_located_diagnostic(tmp_path, capsys, X):
    _, xpath = X
    bad = tmp_path / "bad.tir"
    bad.write_text(
        "func.func @predict(%x: tensor<4xf64>) -> tensor<4xf64> {\n  %r = math.exp %y : tensor<4xf64>\n  func.return %r : tensor<4xf64>\n}\n"
    )
    for args in (["compile", bad, "--target", "c99", "-o", tmp_path / "out"], ["compile", bad], ["predict", bad, "--input", xpath]):
        code, out, err = cli(capsys, *args)
        assert code == 1 and out == ""
        lines = err.splitlines()
        assert lines[0] == f"{bad}:2:17: error: use of undeclared SSA value name '%y'", err
        assert lines[1:3] == ["  %r = math.exp %y : tensor<4xf64>", " " * 16 + "^"]
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_invalid_tir_is_a_located_verifier_diagnostic(tmp_path, capsys):
    bad = tmp_path / "bad.tir"
    bad.write_text("func.func @predict(%x: tensor<4xf64>) -> tensor<3xf64> {\n  func.return %x : tensor<4xf64>\n}\n")
    code, out, err = cli(capsys, "compile", bad)
    assert code == 1 and out == ""
    first, src, caret = err.splitlines()[:3]
    assert first.startswith(f"{bad}:1:1: error: 'func.func' op returns (tensor<4xf64>) but the function type says")
    assert src == "func.func @predict(%x: tensor<4xf64>) -> tensor<3xf64> {" and caret == "^"


def test_unknown_dialect_attribute_in_a_tir_file(tmp_path, capsys):
    bad = tmp_path / "bad.tir"
    bad.write_text('module attributes {x.y = #foo.bar<1>} {\n}\n')
    code, _, err = cli(capsys, "compile", bad)
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith(f"{bad}:1:26: error: unknown attribute '#foo.bar'; registered attributes: ")
    assert "#tree.nodes" in first and "#tree.levels" in first


def test_non_ir_text_with_a_tir_suffix_reaches_the_parser(tmp_path, capsys):
    bad = tmp_path / "notes.tir"
    bad.write_text("hello\n")
    code, _, err = cli(capsys, "compile", bad)
    assert code == 1 and err.startswith(f"{bad}:1:1: error: ")


def test_the_console_script_reports_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.tir"
    bad.write_text("module {\n  func.func @f(\n")
    r = subprocess.run([sys.executable, "-m", "timber.cli", "compile", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith(f"{bad}:") and "error:" in r.stderr and "Traceback" not in r.stderr


def test_timber_opt_treats_content_detected_ir_as_ir(tmp_path, capsys):
    """A file holding IR under another name prints back as is (no default pipeline), like `.tir`."""
    from timber.opt import main as opt_main

    p = tmp_path / "softplus.txt"
    p.write_text(MODULE_TIR)
    assert opt_main([str(p)]) == 0
    out, _ = capsys.readouterr()
    assert out == MODULE_TIR
