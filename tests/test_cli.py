"""The `timber` command line: compile, predict, demo, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify
from timber.cli import DEMO_MODEL, main

xgb = pytest.importorskip("xgboost")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A 5-tree binary:logistic XGBoost model with 4 features, saved as JSON."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, xgb.DMatrix(X, y), 5)
    path = tmp_path_factory.mktemp("m") / "model.json"
    b.save_model(str(path))
    return path, b, X


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_compile_emits_verified_ir_that_round_trips(small_model, capsys, tmp_path):
    path, _, _ = small_model
    out_file = tmp_path / "model.tir"
    code, _, err = run_cli(["compile", path, "--emit", "tir", "-o", out_file], capsys)
    assert code == 0, err
    text = out_file.read_text()
    m = parse_module(text, str(out_file))
    verify(m)
    assert print_op(m) == text


def test_compile_emits_llvm_ir(small_model, capsys):
    path, _, _ = small_model
    code, out, err = run_cli(["compile", path, "--emit", "llvm"], capsys)
    assert code == 0, err
    assert "define" in out and "timber_infer" in out


@pytest.mark.parametrize("fmt", ["npy", "csv"])
def test_predict_matches_xgboost(small_model, capsys, tmp_path, fmt):
    path, booster, X = small_model
    X = X.copy()
    X[3, 1] = np.nan
    inp, outp = tmp_path / f"X.{fmt}", tmp_path / "Y.npy"
    if fmt == "npy":
        np.save(inp, X)
    else:
        lines = ["a,b,c,d"] + [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X]
        inp.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(["predict", path, "--input", inp, "-o", outp], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(np.load(outp), booster.predict(xgb.DMatrix(X)))


def test_predict_margin_to_stdout(small_model, capsys, tmp_path):
    path, booster, X = small_model
    np.save(tmp_path / "X.npy", X[:7])
    code, out, _ = run_cli(["predict", path, "--input", tmp_path / "X.npy", "--margin"], capsys)
    assert code == 0
    got = np.array([float(v) for v in out.split()], np.float32)
    np.testing.assert_array_equal(got, booster.predict(xgb.DMatrix(X[:7]), output_margin=True))


def test_predict_math_timber_is_timbers_own_exp(small_model, capsys, tmp_path):
    from ir.interpreter import run
    from timber.detect import load_model

    path, booster, X = small_model
    np.save(tmp_path / "X.npy", X)
    code, _, err = run_cli(["predict", path, "--input", tmp_path / "X.npy", "-o", tmp_path / "Y.npy", "--math", "timber"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), run(load_model(str(path)), X).reshape(-1))


def one_line_error(code, err):
    assert code == 1
    assert "Traceback" not in err
    return err.strip().splitlines()[0]


def test_missing_model_file(capsys, tmp_path):
    code, _, err = run_cli(["compile", tmp_path / "nope.json"], capsys)
    assert "nope.json" in one_line_error(code, err)


def test_corrupt_json(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"learner": {"gradient_booster": ')
    code, _, err = run_cli(["compile", bad], capsys)
    assert "bad.json" in one_line_error(code, err)


def test_unsupported_objective(small_model, capsys, tmp_path):
    path, _, _ = small_model
    doc = json.loads(path.read_text())
    doc["learner"]["objective"]["name"] = "reg:made_up"
    bad = tmp_path / "weird.json"
    bad.write_text(json.dumps(doc))
    code, _, err = run_cli(["compile", bad], capsys)
    line = one_line_error(code, err)
    assert "reg:made_up" in line and "weird.json" in line


def test_wrong_feature_count(small_model, capsys, tmp_path):
    path, _, _ = small_model
    np.save(tmp_path / "X.npy", np.zeros((3, 7), np.float32))
    code, _, err = run_cli(["predict", path, "--input", tmp_path / "X.npy"], capsys)
    line = one_line_error(code, err)
    assert "4" in line and "7" in line


def test_bad_csv_names_line(small_model, capsys, tmp_path):
    path, _, _ = small_model
    (tmp_path / "X.csv").write_text("1,2,3,4\n1,2,x,4\n")
    code, _, err = run_cli(["predict", path, "--input", tmp_path / "X.csv"], capsys)
    assert one_line_error(code, err) == f"timber: error: {tmp_path / 'X.csv'}:2: not a number: 'x'"


def test_refuses_to_overwrite_the_model(small_model, capsys):
    path, _, _ = small_model
    before = path.read_bytes()
    code, _, err = run_cli(["compile", path, "-o", path], capsys)
    assert "refusing to overwrite" in one_line_error(code, err)
    assert path.read_bytes() == before


@pytest.mark.skipif(not DEMO_MODEL.exists(), reason="demo model not generated yet")
def test_demo_runs_from_the_console_script():
    r = subprocess.run([sys.executable, "-m", "timber.cli", "demo"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "rows/s" in r.stdout and "latency" in r.stdout


@pytest.mark.parametrize(
    "target,files", [("c99", {"model.h", "model.c", "model_data.c", "Makefile", "CMakeLists.txt"}), ("wat", {"model.wat", "model.js"})]
)
def test_compile_source_targets_write_a_directory(small_model, capsys, tmp_path, target, files):
    path, _, _ = small_model
    out = tmp_path / target
    code, stdout, err = run_cli(["compile", path, "--target", target, "-o", out], capsys)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == files
    # A user's edited file is not replaced without --force.
    victim = out / sorted(files)[0]
    victim.write_text("my edits\n")
    code, _, err = run_cli(["compile", path, "--target", target, "-o", out], capsys)
    assert one_line_error(code, err) and victim.read_text() == "my edits\n"
    code, _, err = run_cli(["compile", path, "--target", target, "-o", out, "--force"], capsys)
    assert code == 0 and victim.read_text() != "my edits\n"


def test_source_target_needs_a_directory(small_model, capsys):
    path, _, _ = small_model
    code, _, err = run_cli(["compile", path, "--target", "c99"], capsys)
    assert "give a directory with -o" in one_line_error(code, err)


def test_unknown_target(small_model, capsys):
    path, _, _ = small_model
    code, _, err = run_cli(["compile", path, "--target", "z80"], capsys)
    assert "z80" in one_line_error(code, err)


def test_object_target_writes_model_o_and_header(small_model, capsys, tmp_path):
    path, _, _ = small_model
    code, out, err = run_cli(["compile", path, "--target", "thumbv7m-none-eabi", "-o", tmp_path / "o", "--size"], capsys)
    assert code == 0, err
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"model.o", "model.h"}
    assert (tmp_path / "o" / "model.o").read_bytes()[:4] == b"\x7fELF"
    assert "flash" in out and "__aeabi_" in out and "timber_infer" in out


def test_object_size_alone_and_asm(small_model, capsys, tmp_path):
    path, _, _ = small_model
    code, out, err = run_cli(["compile", path, "--target", "aarch64-none-elf", "--size"], capsys)
    assert code == 0 and ".text" in out, err
    code, _, err = run_cli(["compile", path, "--target", "riscv32-unknown-elf", "--emit", "asm", "-o", tmp_path / "s"], capsys)
    assert code == 0, err
    assert "timber_infer" in (tmp_path / "s" / "model.s").read_text()


def test_obj_emit_needs_an_object_target(small_model, capsys):
    path, _, _ = small_model
    code, _, err = run_cli(["compile", path, "--emit", "obj"], capsys)
    assert "needs an object target" in one_line_error(code, err)


def test_calibration_records_hit_rates_and_keeps_predictions(small_model, capsys, tmp_path):
    from ir.interpreter import run

    path, booster, X = small_model
    np.save(tmp_path / "cal.npy", X[:50])
    code, sorted_ir, err = run_cli(["compile", path, "--calibration", tmp_path / "cal.npy"], capsys)
    assert code == 0, err
    assert "tree.hits = array<i64: 50," in sorted_ir
    code, plain_ir, _ = run_cli(["compile", path, "-p", ""], capsys)
    a, b = parse_module(sorted_ir), parse_module(plain_ir)
    verify(a)
    for fn in ("margin", "predict"):
        assert run(a, X, fn).tobytes() == run(b, X, fn).tobytes()


def test_original_timber_spelling_model_and_out(tmp_path):
    """`timber compile --model model.json --out dist/` (the original timber-compiler's documented
    spelling) works; the model given twice or not at all is a usage error."""
    from timber.cli import main

    demo = Path(__file__).parent.parent / "timber" / "examples" / "breast_cancer_xgb.json"
    assert main(["compile", "--model", str(demo), "--target", "c99", "--out", str(tmp_path / "dist")]) == 0
    assert (tmp_path / "dist" / "model.c").exists()
    for argv in (["compile", "--target", "c99"], ["compile", str(demo), "--model", str(demo)]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
