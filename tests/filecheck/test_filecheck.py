"""Runs every `.tir` file under tests/filecheck, like LLVM's lit.

Each `// RUN:` line is a shell pipeline: `%s` is the file, `%S` its directory, `not CMD`
succeeds when CMD fails.  The usual shape, `[not] timber-opt ARGS [2>&1 [>/dev/null]] |
filecheck ARGS`, runs in this process (`timber.opt.main` and `filecheck.main.main`, ~10 ms
instead of a second per line); anything else runs through bash with this Python's modules."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
CASES = sorted(ROOT.rglob("*.tir"))
REPO = ROOT.parent.parent
PY = shlex.quote(sys.executable)


def run_lines(path: Path) -> list[str]:
    """RUN commands of a file (a trailing backslash continues a command on the next RUN line)."""
    cmds, cur = [], ""
    for line in path.read_text().splitlines():
        m = re.match(r"\s*//\s*RUN:\s?(.*)$", line)
        if not m:
            continue
        part = m.group(1).rstrip()
        if part.endswith("\\"):
            cur += part[:-1] + " "
            continue
        cmds.append(cur + part)
        cur = ""
    return cmds


def substitute(cmd: str, path: Path) -> str:
    return cmd.replace("%s", shlex.quote(str(path))).replace("%S", shlex.quote(str(path.parent)))


def _filecheck(args: list[str], text: str) -> tuple[int, str]:
    from filecheck.main import main as filecheck_main

    out = io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                filecheck_main(["filecheck", *args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdin = saved
    return code, out.getvalue()


def run_in_process(cmd: str) -> tuple[bool, str] | None:
    """(passed, log) for the common RUN shape, or None when the line needs a real shell."""
    stages = cmd.split("|")
    if len(stages) != 2:
        return None
    left, right = shlex.split(stages[0]), shlex.split(stages[1])
    negate = bool(left) and left[0] == "not"
    left = left[1:] if negate else left
    if not left or left[0] != "timber-opt" or not right or right[0] != "filecheck":
        return None
    args, feed = [], "stdout"
    for tok in left[1:]:
        if tok == "2>&1":
            feed = "both"
        elif tok == ">/dev/null":
            feed = "stderr" if feed == "both" else "none"
        elif tok.startswith((">", "2>", "<")):
            return None
        else:
            args.append(tok)
    from timber.opt import main as opt_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = opt_main(args)
    text = {"stdout": out.getvalue(), "stderr": err.getvalue(), "both": err.getvalue() + out.getvalue(), "none": ""}[feed]
    if (rc != 0) != negate:
        return False, f"timber-opt exited {rc}\n--- stdout ---\n{out.getvalue()}\n--- stderr ---\n{err.getvalue()}"
    code, log = _filecheck(right[1:], text)
    return code == 0, f"--- filecheck ---\n{log}\n--- input ---\n{text}"


def run_in_shell(cmd: str) -> tuple[bool, str]:
    cmd = re.sub(r"(?<![\w-])not\s+", f"{PY} {shlex.quote(str(ROOT / 'not_.py'))} ", cmd)
    cmd = re.sub(r"(?<![\w-])timber-opt(?![\w-])", f"{PY} -m timber.opt", cmd)
    cmd = re.sub(r"(?<![\w./-])filecheck(?![\w-])", f"{PY} -m filecheck", cmd)
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=120)
    return r.returncode == 0, f"--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"


def test_every_case_has_run_lines():
    assert CASES, "no .tir cases found"
    for path in CASES:
        assert run_lines(path), f"{path} has no RUN line"


def test_runner_reports_a_failing_check(tmp_path):
    """The harness itself can fail: a CHECK that does not match is reported."""
    f = tmp_path / "bad.tir"
    f.write_text("// RUN: timber-opt %s | filecheck %s\n// CHECK: tree.nothing\nmodule {\n}\n")
    (cmd,) = run_lines(f)
    ok, _ = run_in_process(substitute(cmd, f))
    assert not ok


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(ROOT)) for p in CASES])
def test_filecheck(path: Path):
    for cmd in run_lines(path):
        full = substitute(cmd, path)
        result = run_in_process(full)
        ok, log = result if result is not None else run_in_shell(full)
        assert ok, f"RUN: {cmd}\n{log}"
