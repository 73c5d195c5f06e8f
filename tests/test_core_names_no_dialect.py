"""The core files name no dialect: ops and attributes register their own semantics, syntax,
derived attributes and sizes, so a new dialect costs no edit here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CORE = ["ir/interpreter.py", "ir/printer.py", "ir/parser.py", "passes/rewrite.py", "passes/manager.py"]
# `builtin` (the module) is part of the core, as in MLIR: its ops may be written without a prefix.
DIALECTS = ("arith", "func", "linear", "math", "tree")


@pytest.mark.parametrize("path", CORE)
def test_core_file_names_no_dialect(path):
    source = (ROOT / path).read_text()
    code = re.sub(r'"""[\s\S]*?"""', "", source)  # docstrings may explain, code may not name
    code = "\n".join(line.split("#")[0] for line in code.splitlines())
    for d in DIALECTS:
        assert not re.search(rf"dialects\.{d}\b|dialects import .*\b{d}\b", code), f"{path} imports the {d} dialect"
        assert not re.search(rf"[\"']{d}\.[a-z_]+[\"']", code), f"{path} names an op or attribute of the {d} dialect"
