"""Front-end options: `timber.compile(model, **options)`, `timber compile/predict -O KEY=VALUE`
and `timber-opt -O KEY=VALUE` reach the front-end's `load`; an option it does not take is a
clear error naming the ones it does."""

import argparse

import pytest

import timber
from ir.diagnostics import TimberError
from timber.cli import DEMO_MODEL, main, parse_option
from timber.opt import main as opt_main


def test_option_values_are_json_when_they_parse_else_text():
    assert parse_option("method=predict") == ("method", "predict")
    assert parse_option("n=3") == ("n", 3)
    assert parse_option('frames=["a", "b"]') == ("frames", ["a", "b"])
    assert parse_option("flag=true") == ("flag", True)
    assert parse_option("ee=") == ("ee", "")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_option("no-equals-sign")


def test_compile_refuses_an_option_the_front_end_does_not_take():
    with pytest.raises(TimberError, match="XGBoost models take no option 'bogus'; it takes none"):
        timber.compile(str(DEMO_MODEL), bogus=1)


def test_lightgbm_option_reaches_its_front_end(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    b = lightgbm.train({"verbose": -1, "num_leaves": 4}, lightgbm.Dataset(X, X[:, 0]), num_boost_round=6)
    path = tmp_path / "m.txt"
    b.save_model(str(path))
    m = timber.compile(str(path), num_iteration=2)
    np.testing.assert_array_equal(m.predict(X), b.predict(X, num_iteration=2))
    with pytest.raises(TimberError, match="it takes: num_iteration"):
        timber.compile(str(path), nope=2)


def test_cli_option_errors_exit_1_without_traceback(capsys):
    assert main(["compile", str(DEMO_MODEL), "-O", "bogus=1"]) == 1
    err = capsys.readouterr().err
    assert "take no option 'bogus'" in err and "Traceback" not in err
    assert opt_main([str(DEMO_MODEL), "-O", "bogus=1"]) == 1
    assert "take no option 'bogus'" in capsys.readouterr().err


def test_cli_option_given_twice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compile", str(DEMO_MODEL), "-O", "a=1", "-O", "a=2"])
    assert e.value.code == 2
    assert "option 'a' given twice" in capsys.readouterr().err
