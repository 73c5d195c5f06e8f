"""The model store and its commands: `timber load/list/inspect/remove/validate/bench`, atomic
writes under concurrent `timber load`, and damaged or foreign entries named with what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from timber.cli import main
from timber.store import Store, StoreError

from .models import DEMO, DEMO_ROWS, REPO


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A store holding the demo model, loaded once with `timber load`."""
    h = tmp_path_factory.mktemp("home")
    assert main(["load", str(DEMO), "--name", "demo", "--home", str(h)]) == 0
    return h


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_load_list_inspect_remove(home, capsys, tmp_path):
    code, out, err = run(capsys, "list", "--home", str(home))
    assert code == 0 and out.splitlines()[1].split()[:5] == ["demo", "xgboost", "binary:logistic", "30", "1"]
    code, out, _ = run(capsys, "inspect", "demo", "--json", "--home", str(home))
    info = json.loads(out)
    assert code == 0 and info["format"] == "xgboost" and info["n_features"] == 30 and info["runs_here"] is True
    assert info["source_path"] == str(DEMO.resolve()) and len(info["sha256"]) == 64
    code, out, _ = run(capsys, "inspect", "demo", "--home", str(home))
    assert "object code loads into the JIT" in out
    other = tmp_path / "h2"
    shutil.copytree(home, other)
    code, out, _ = run(capsys, "remove", "demo", "--home", str(other))
    assert code == 0 and out == "removed demo\n" and Store(other).names() == []
    code, out, _ = run(capsys, "list", "--home", str(other))
    assert "no models in" in out
    code, _, err = run(capsys, "remove", "ghost", "--home", str(other))
    assert code == 1 and "no model named 'ghost'" in err
    code, _, err = run(capsys, "load", str(DEMO), "--name", "../escape", "--home", str(other))
    assert code == 1 and "invalid model name '../escape'" in err


def test_damaged_and_foreign_entries_are_named_and_never_loaded(home, capsys, tmp_path):
    h = tmp_path / "h"
    shutil.copytree(home, h)
    models = h / "models"
    good = (models / "demo.timber").read_bytes()
    (models / "half.timber").write_bytes(good[: len(good) // 2])
    (models / "junk.timber").write_bytes(b"{'not': 'an artifact'}")
    (models / "notes.txt").write_text("hello")
    code, out, err = run(capsys, "list", "--home", str(h))
    assert code == 1 and "demo" in out
    assert "model 'half': checksum mismatch: the artifact is damaged or truncated; remove it with `timber remove half`" in err
    assert "model 'junk': not a Timber artifact" in err
    assert "notes.txt: foreign file in the store" in err
    with pytest.raises(StoreError, match="model 'half': checksum mismatch"):
        Store(h).load("half")
    code, _, err = run(capsys, "serve", "half", "--home", str(h), "--port", "1")  # refused before binding a port
    assert code == 1 and "model 'half'" in err and "timber load MODEL --name half" in err
    assert run(capsys, "inspect", "junk", "--home", str(h))[0] == 1


def test_two_loads_at_once_leave_one_complete_entry(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TIMBER_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "timber.cli", "load", str(DEMO), "--name", "same", "-p", ""]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert sorted(os.listdir(tmp_path / "models")) == ["same.timber"]  # no temporary files left
    model = Store(tmp_path).load("same")
    X = np.random.default_rng(0).normal(size=(10, 30))
    assert model.predict(X).shape == (10,)


def test_validate_against_the_framework(home, capsys, tmp_path):
    pytest.importorskip("xgboost")
    code, out, _ = run(capsys, "validate", "demo", "--data", str(DEMO_ROWS), "--home", str(home))
    assert code == 0 and "rows that differ: 0" in out and "result     identical" in out
    copy = tmp_path / "copy.json"
    shutil.copy(DEMO, copy)
    assert run(capsys, "load", str(copy), "--home", str(tmp_path / "h"), "-p", "")[0] == 0  # named after the file
    assert Store(tmp_path / "h").names() == ["copy"]
    copy.write_text(copy.read_text().replace("6.274165E-1", "5.274165E-1"))
    code, _, err = run(capsys, "validate", "copy", "--data", str(DEMO_ROWS), "--home", str(tmp_path / "h"))
    assert code == 1 and "changed since `timber load` stored 'copy'" in err
    # --source: the model file elsewhere (the demo holds what the copy held when it was loaded)
    code, out, _ = run(capsys, "validate", "copy", "--data", str(DEMO_ROWS), "--home", str(tmp_path / "h"), "--source", str(DEMO))
    assert code == 0 and "identical" in out


def test_bench_prints_percentiles_and_plots(home, capsys, tmp_path, monkeypatch):
    import importlib.util

    png = tmp_path / "bench.png"
    plot = ["--plot", str(png)] if importlib.util.find_spec("matplotlib") else []
    code, out, _ = run(capsys, "bench", "demo", "--home", str(home), "--calls", "200", "--seconds", "0.02", *plot)
    assert code == 0 and "p50" in out and "p99" in out and "M rows/s" in out
    if plot:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, _, err = run(capsys, "bench", "demo", "--home", str(home), "--plot", str(png))
    assert code == 1 and "--plot needs matplotlib" in err
