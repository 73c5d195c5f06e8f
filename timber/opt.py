"""`timber-opt`: Timber's `mlir-opt`.  Reads a model file (any front-end) or textual IR, runs a
pass pipeline, prints IR.

    timber-opt model.json                                  # front-end + default pipeline, IR on stdout
    timber-opt model.tir                                   # parse, verify, print back (no passes)
    timber-opt model.json -p 'tree-fold-redundant-splits,tree-prune-leaves{tolerance=1e-3}' --print-ir-after-all
    timber-opt cases.tir --split-input-file --verify-diagnostics

IR dumps go to stderr under `// -----// IR Dump After Name (pass-name) //----- //` (a comment,
so a dump parses back); the final IR goes to stdout, or to `-o FILE`, written only on success.
A user error prints one diagnostic (`file:line:col: error: ...`, the source line and a caret)
on stderr and exits 1 with no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass

from ir.diagnostics import Diagnostic, Location, TimberError
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify
from timber.detect import IR_SUFFIXES, detect_format

SPLIT_MARKER = re.compile(r"^// -----[ \t]*$", re.M)
_EXPECTED = re.compile(r"//\s*expected-(error|warning|note|remark)\s*(@(?:[+-]\d+|above|below))?\s*\{\{(.*?)\}\}")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="timber-opt",
        description="Run Timber passes over a model file or textual IR and print the IR.",
        epilog="With no -p, model files get the default exact pipeline and textual IR gets none.",
    )
    ap.add_argument("input", nargs="?", default="-", help="model file, .tir/.mlir textual IR, or - for IR on stdin (default: -)")
    ap.add_argument("-p", "--passes", metavar="PIPELINE", help="pass pipeline, e.g. 'canonicalize,tree-prune-leaves{tolerance=1e-3}'")
    ap.add_argument("-o", metavar="FILE", dest="output", help="write the result here (only on success) instead of stdout")
    ap.add_argument("--emit", choices=("tir", "llvm"), default="tir", help="what to print: Timber IR (default) or LLVM IR")
    ap.add_argument("--print-generic", action="store_true", help="print ops in the generic form")
    ap.add_argument("--print-ir-before-all", action="store_true", help="dump the IR before every pass (stderr)")
    ap.add_argument("--print-ir-after-all", action="store_true", help="dump the IR after every pass (stderr)")
    ap.add_argument("--print-ir-before", metavar="NAMES", default="", help="dump the IR before these passes (comma-separated)")
    ap.add_argument("--print-ir-after", metavar="NAMES", default="", help="dump the IR after these passes (comma-separated)")
    ap.add_argument("--print-ir-after-change", action="store_true", help="dump only after passes that changed the IR")
    ap.add_argument("--verify-each", dest="verify_each", action="store_true", default=True, help="verify after every pass (default)")
    ap.add_argument("--no-verify-each", dest="verify_each", action="store_false", help="do not verify between passes")
    ap.add_argument("--timing", action="store_true", help="report wall time per pass (stderr)")
    ap.add_argument("--pass-statistics", action="store_true", help="report each pass's statistics (stderr)")
    ap.add_argument("--audit-log", metavar="FILE", help="write one JSON line per pass (what changed, nodes, time) to FILE, - for stderr")
    ap.add_argument("--list-passes", action="store_true", help="list passes, their options and the named pipelines, then exit")
    ap.add_argument("--split-input-file", action="store_true", help="split the input at '// -----' lines and process each part alone")
    ap.add_argument(
        "--verify-diagnostics", action="store_true", help="check diagnostics against '// expected-error {{...}}' comments in the input"
    )
    from timber.cli import option_arguments

    option_arguments(ap)
    return ap


def list_passes() -> str:
    from passes.registry import PIPELINES, all_passes

    out = ["Passes:"]
    for cls in all_passes():
        out.append(f"  {cls.name}{'' if cls.exact else '  [lossy]'}")
        out.append(f"      {cls.summary}")
        for s in cls.option_specs():
            kind = "|".join(s.choices) if s.choices else s.type.__name__
            default = "required" if s.required else f"default {s.default!r}"
            out.append(f"      {s.name}=<{kind}>  {s.doc} ({default})")
    out.append("Pipelines:")
    for name, text in sorted(PIPELINES.items()):
        out.append(f"  {name}: {text}")
    return "\n".join(out) + "\n"


@dataclass
class _Part:
    text: str | None  # IR text (None: a model file)
    first_line: int  # line of the input file where this part starts (1-based)


def _with_source(d: Diagnostic, text: str | None) -> Diagnostic:
    """Add the source line under a diagnostic located in the IR text we read."""
    if d.source_line is None and text is not None and isinstance(d.location, Location):
        lines = text.splitlines()
        if 0 < d.location.line <= len(lines):
            return Diagnostic(d.severity, d.message, d.location, lines[d.location.line - 1], d.notes)
    return d


class _Driver:
    def __init__(self, args, out_err):
        self.a = args
        self.err = out_err
        self.audit: list = []
        self.timing_extra: dict[str, float] = {}

    # ----- pipeline -----------------------------------------------------------------------
    def pipeline(self, is_model: bool):
        from passes.pipeline import parse_pipeline
        from passes.registry import PIPELINES

        if self.a.passes is not None:
            return parse_pipeline(self.a.passes)
        return parse_pipeline(PIPELINES["default"]) if is_model else []

    def instruments(self):
        from passes.manager import PrintIR, Statistics

        out = []
        a = self.a
        if a.print_ir_before_all or a.print_ir_after_all or a.print_ir_before or a.print_ir_after or a.print_ir_after_change:
            out.append(
                PrintIR(
                    self.err,
                    before=_names(a.print_ir_before),
                    after=_names(a.print_ir_after),
                    before_all=a.print_ir_before_all,
                    after_all=a.print_ir_after_all,
                    after_change=a.print_ir_after_change,
                    generic=a.print_generic,
                )
            )
        if a.pass_statistics:
            out.append(Statistics(self.err))
        return out

    def check_pass_names(self) -> None:
        from passes.registry import all_passes

        known = {p.name for p in all_passes()}
        for flag, value in (("--print-ir-before", self.a.print_ir_before), ("--print-ir-after", self.a.print_ir_after)):
            for n in (s.strip() for s in value.split(",")):
                if n and n not in known:
                    raise TimberError(f"unknown pass '{n}' in {flag}; see --list-passes")

    def options(self) -> dict:
        """Front-end options from `-O KEY=VALUE` (a key given twice is an error)."""
        out: dict = {}
        for key, value in self.a.option_list:
            if key in out:
                raise TimberError(f"option '{key}' given twice")
            out[key] = value
        return out

    # ----- one module -----------------------------------------------------------------------
    def process(self, part: _Part, path: str) -> str:
        """Load/parse, verify, run the pipeline, and return the text to print."""
        t0 = time.perf_counter()
        if part.text is None:
            from timber.detect import load_model

            module = load_model(path, **self.options())
        else:
            # Pad so that line numbers in diagnostics are those of the whole input file.
            module = parse_module("\n" * (part.first_line - 1) + part.text, path)
        verify(module)
        self.timing_extra["<parse and verify input>"] = self.timing_extra.get("<parse and verify input>", 0.0) + time.perf_counter() - t0
        from passes.manager import PassManager

        pm = PassManager(self.pipeline(part.text is None), verify_each=self.a.verify_each, instruments=self.instruments())
        entries = pm.run(module)
        self.audit.extend(entries)
        t1 = time.perf_counter()
        if self.a.emit == "llvm":
            text = _emit_llvm(module)
        else:
            text = print_op(module, generic=self.a.print_generic)
        self.timing_extra["output"] = self.timing_extra.get("output", 0.0) + time.perf_counter() - t1
        return text


def _names(text: str) -> list[str]:
    """Pass names of a comma-separated flag value."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _emit_llvm(module) -> str:
    try:
        from backends.llvm.lower import lower_module
        from backends.llvm.target import host_target
    except ImportError as e:  # pragma: no cover - the back-end ships with Timber
        raise TimberError(f"the LLVM back-end is not available: {e}") from None
    return lower_module(module, host_target()).text


def _split(text: str) -> list[_Part]:
    parts, start = [], 0
    for m in SPLIT_MARKER.finditer(text):
        parts.append(_Part(text[start : m.start()], text.count("\n", 0, start) + 1))
        start = min(m.end() + 1, len(text))  # the part starts on the line after the marker
    parts.append(_Part(text[start:], text.count("\n", 0, start) + 1))
    return parts


def _expected(part: _Part) -> list[tuple[int, str, str]]:
    """(line, severity, message) of every `// expected-...` comment in a part."""
    out = []
    for k, line_text in enumerate(part.text.splitlines()):
        line = part.first_line + k
        for m in _EXPECTED.finditer(line_text):
            off = m.group(2) or ""
            target = line
            if off in ("@above",):
                target = line - 1
            elif off in ("@below",):
                target = line + 1
            elif off:
                target = line + int(off[1:])
            out.append((target, m.group(1), m.group(3)))
    return out


def main(argv=None) -> int:
    """Entry point of `timber-opt`; returns the exit status."""
    a = _parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    if a.list_passes:
        out.write(list_passes())
        return 0
    d = _Driver(a, err)
    path = a.input
    text = None
    try:
        d.check_pass_names()
        if a.passes is not None:
            d.pipeline(False)  # report a bad pipeline before reading anything
        is_ir = path == "-" or path.endswith(IR_SUFFIXES) or _is_textual_ir(path)
        if is_ir:
            text = sys.stdin.read() if path == "-" else _read(path)
            display = "<stdin>" if path == "-" else path
        else:
            display = path
        parts = _split(text) if (is_ir and a.split_input_file) else [_Part(text, 1)]
        results, failed, mismatched = [], False, False
        for part in parts:
            if a.verify_diagnostics and part.text is not None:
                ok = _verify_diagnostics(d, part, display, text, err)
                mismatched |= not ok
                continue
            try:
                results.append(d.process(part, display))
            except TimberError as e:
                err.write(_with_source(e.diagnostic, text).render() + "\n")
                failed = True
                if not a.split_input_file:
                    return 1
    except TimberError as e:
        err.write(_with_source(e.diagnostic, text).render() + "\n")
        return 1
    if a.timing:
        from passes.manager import Timing

        err.write(Timing(err, d.timing_extra).report(d.audit))
    if a.audit_log:
        try:
            _write_audit(a.audit_log, d.audit, err)
        except OSError as e:
            err.write(f"error: cannot write the audit log {a.audit_log}: {e.strerror}\n")
            return 1
    if a.verify_diagnostics:
        return 1 if mismatched else 0
    if failed:
        return 1
    result = "// -----\n".join(results)
    if a.output:
        try:
            with open(a.output, "w") as fh:
                fh.write(result)
        except OSError as e:
            err.write(f"error: cannot write {a.output}: {e.strerror}\n")
            return 1
    else:
        out.write(result)
    return 0


def _is_textual_ir(path: str) -> bool:
    """IR text under another name (e.g. `model.txt` holding `module {...}`): no default pipeline,
    and `--split-input-file` applies.  Unreadable files are left to the loader to report."""
    try:
        return detect_format(path) == "tir"
    except TimberError:
        return False


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise TimberError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TimberError(f"cannot read {path}: {e}") from None


def _verify_diagnostics(d: _Driver, part: _Part, display: str, text: str, err) -> bool:
    """Run one part and compare its diagnostics with its `expected-*` comments."""
    expected = _expected(part)
    produced: list[Diagnostic] = []
    try:
        d.process(part, display)
    except TimberError as e:
        produced.append(e.diagnostic)
    ok = True
    for diag in produced:
        line = diag.location.line if isinstance(diag.location, Location) else None
        match = next((x for x in expected if x[0] == line and x[1] == diag.severity and x[2] in diag.message), None)
        if match is None:
            err.write(_with_source(Diagnostic("error", f"unexpected {diag.severity}: {diag.message}", diag.location), text).render() + "\n")
            ok = False
        else:
            expected.remove(match)
    for line, sev, msg in expected:
        loc = Location(display, line, 1)
        err.write(_with_source(Diagnostic("error", f'expected {sev} "{msg}" was not produced', loc), text).render() + "\n")
        ok = False
    return ok


def _write_audit(target: str, entries, err) -> None:
    lines = "".join(json.dumps(e.to_dict()) + "\n" for e in entries)
    if target == "-":
        err.write(lines)
        return
    with open(target, "w") as fh:
        fh.write(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["main", "list_passes"]
