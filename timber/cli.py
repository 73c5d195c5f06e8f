"""The `timber` command: compile, predict, demo.

User errors (bad model, bad input, wrong shape) print one diagnostic and exit 1 with no
traceback; a traceback means a bug in Timber.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from ir.diagnostics import TimberError

EXAMPLES = Path(__file__).parent / "examples"
DEMO_MODEL = EXAMPLES / "breast_cancer_xgb.json"
DEMO_ROWS = EXAMPLES / "breast_cancer_rows.csv"


# ----- input and output files -------------------------------------------------------------


def read_matrix(path: str) -> np.ndarray:
    """Rows from `.npy` (any float dtype kept) or `.csv`/`.tsv` (float64; empty fields and
    NaN/nan are missing; a non-numeric first line is a header)."""
    p = Path(path)
    if not p.exists():
        raise TimberError(f"{path}: no such file")
    if p.suffix == ".npy":
        try:
            X = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise TimberError(f"{path}: not a readable .npy array ({e})") from None
        if X.dtype.kind not in "fiub":
            raise TimberError(f"{path}: expected a numeric array, found dtype {X.dtype}")
        return X
    if p.suffix not in (".csv", ".tsv", ".txt"):
        raise TimberError(f"{path}: unknown input format '{p.suffix}'; expected .npy or .csv")
    delim = "\t" if p.suffix == ".tsv" else ","
    rows = []
    with open(p, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            fields = [f.strip() for f in line.split(delim)]
            try:
                rows.append([float(f) if f else np.nan for f in fields])
            except ValueError:
                if line_no == 1 and not rows:
                    continue  # header
                bad = next(f for f in fields if f and not _is_number(f))
                raise TimberError(f"{path}:{line_no}: not a number: '{bad}'") from None
    if not rows:
        raise TimberError(f"{path}: no rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise TimberError(f"{path}: rows have different numbers of columns ({sorted(widths)})")
    return np.array(rows, dtype=np.float64)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def write_matrix(Y: np.ndarray, path: str | None) -> None:
    if path is None:
        fmt = "%.9g" if Y.dtype == np.float32 else "%.17g"
        np.savetxt(sys.stdout, Y.reshape(len(Y), -1), fmt=fmt, delimiter=",")
        return
    p = Path(path)
    if p.suffix == ".npy":
        np.save(p, Y)
    elif p.suffix in (".csv", ".txt"):
        fmt = "%.9g" if Y.dtype == np.float32 else "%.17g"
        np.savetxt(p, Y.reshape(len(Y), -1), fmt=fmt, delimiter=",")
    else:
        raise TimberError(f"{path}: unknown output format '{p.suffix}'; expected .npy or .csv")


def write_text(text: str, out: str | None, model_path: str) -> None:
    """Write to `out` (or stdout).  Never over the model file itself."""
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    if Path(model_path).exists() and Path(out).exists() and os.path.samefile(out, model_path):
        raise TimberError(f"{out}: refusing to overwrite the input model")
    tmp = Path(out).with_name(Path(out).name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)


# ----- commands -----------------------------------------------------------------------------


def cmd_compile(a) -> int:
    from timber.detect import load_model

    a.emit_given = a.emit is not None
    a.emit = a.emit or "tir"

    module = load_model(a.model, **a.options)
    _run_passes(module, a.passes, a.calibration)
    if getattr(a, "misra", False) and a.target != "c99":
        raise TimberError("--misra applies to --target c99 (the MISRA C:2012 profile of the C sources)")
    if a.target in ("c99", "wat"):
        return _write_source_target(a, module)
    if a.target != "host":
        return _write_object_target(a, module)
    if a.size or a.cpu or a.features:
        raise TimberError("--size, --cpu and --features apply to object targets (e.g. --target thumbv7m-none-eabi)")
    if a.emit in ("obj", "asm"):
        raise TimberError(f"--emit {a.emit} needs an object target, e.g. --target x86_64 or --target thumbv7m-none-eabi")
    if a.emit == "tir":
        from ir.printer import print_op

        write_text(print_op(module, generic=a.generic), a.output, a.model)
    elif a.emit == "llvm":
        from timber.api import compile as tcompile

        write_text(tcompile(module, prefix=a.prefix).llvm_ir, a.output, a.model)
    else:  # pragma: no cover - argparse restricts choices
        raise TimberError(f"unknown --emit {a.emit}")
    return 0


def _write_source_target(a, module) -> int:
    """`--target c99|wat -o DIR`: write the source files of a back-end into a directory."""
    if a.output is None or a.output == "-":
        raise TimberError(f"--target {a.target} writes several files: give a directory with -o")
    if a.emit not in ("tir",) and a.emit_given:
        raise TimberError(f"--emit {a.emit} does not apply to --target {a.target}")
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise TimberError(f"{out}: exists and is not a directory")
    if a.target == "c99":
        from backends.c99 import write_c99

        paths = write_c99(module, out, prefix=a.prefix, force=a.force, misra=a.misra)
    else:
        from backends.wat import write_wat

        paths = write_wat(module, out, prefix=a.prefix, force=a.force, wasm=a.wasm)
    for p in paths:
        sys.stdout.write(f"wrote {p}\n")
    return 0


def _write_object_target(a, module) -> int:
    """`--target TRIPLE -o DIR`: model.o (or model.s / model.ll with --emit asm|llvm) and model.h,
    built by LLVM for that target with no C compiler; `--size` reports flash, RAM, stack and the
    libcalls the firmware must provide."""
    from backends.llvm.objfile import emit_object, write_object

    emit = {"tir": "obj"}.get(a.emit, a.emit) if a.emit_given else "obj"
    if a.output is None or a.output == "-":
        if not a.size:
            raise TimberError(f"--target {a.target} writes model.o and model.h: give a directory with -o (or --size alone)")
        r = emit_object(module, a.target, cpu=a.cpu, features=a.features, prefix=a.prefix)
        sys.stdout.write(r.size_report().rstrip("\n") + "\n")
        return 0
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise TimberError(f"{out}: exists and is not a directory")
    paths, r = write_object(module, out, a.target, cpu=a.cpu, features=a.features, prefix=a.prefix, emit=emit, force=a.force)
    for p in paths:
        sys.stdout.write(f"wrote {p}\n")
    if a.size:
        sys.stdout.write(r.size_report().rstrip("\n") + "\n")
    return 0


def _run_passes(module, pipeline: str | None, calibration: str | None = None) -> None:
    """Run `pipeline` (None: the default exact pipeline; "": none) over the module in place.

    `--calibration rows` sorts branches by measured hit rates first (sorting clears the shape
    analyses that the default pipeline then recomputes)."""
    from passes.manager import run_pipeline

    if calibration is not None:
        if not Path(calibration).exists():
            raise TimberError(f"{calibration}: no such file")
        quoted = '"' + calibration.replace("\\", "\\\\").replace('"', '\\"') + '"'
        pipeline = f"tree-sort-branches{{calibration={quoted}}}," + (pipeline if pipeline else "default")
    if pipeline == "":
        return
    # The result is verified by the back-end anyway: verifying after every pass costs ~1.5 s on big models.
    run_pipeline(module, pipeline, verify_each=False)


def cmd_predict(a) -> int:
    from timber.api import compile as tcompile

    X = read_matrix(a.input)
    model = tcompile(a.model, n_jobs=a.n_jobs, math=a.math, **a.options)
    Y = model.predict(X, output_margin=a.margin)
    write_matrix(Y, a.output)
    return 0


def cmd_demo(a) -> int:
    """Compile the model that ships with Timber, predict, and time it."""
    from timber.api import compile as tcompile

    if not DEMO_MODEL.exists():
        raise TimberError(f"the demo model is missing from this installation: {DEMO_MODEL}")
    out = sys.stdout
    t0 = time.perf_counter()
    model = tcompile(str(DEMO_MODEL))
    t_compile = time.perf_counter() - t0
    X = read_matrix(str(DEMO_ROWS)) if DEMO_ROWS.exists() else _synthetic_rows(model, 100)
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    out.write(f"model      {DEMO_MODEL.name}: XGBoost binary:logistic, 50 trees of depth 4, {model.n_features} features\n")
    out.write(f"compiled   in {t_compile * 1000:.0f} ms (parse, verify, lower to LLVM, JIT for this CPU)\n")
    p = model.predict(Xf)
    out.write("predict    P(benign) for the first 5 rows: " + ", ".join(f"{v:.6f}" for v in p[:5]) + "\n")
    big = np.ascontiguousarray(np.tile(Xf, (max(1, 100_000 // len(Xf)), 1)))
    for n_jobs in (1, None):
        m = model if n_jobs is None else tcompile(str(DEMO_MODEL), n_jobs=1)
        m.predict(big)
        reps, t = 0, time.perf_counter()
        while time.perf_counter() - t < 0.5 or reps < 3:
            m.predict(big)
            reps += 1
        rate = reps * len(big) / (time.perf_counter() - t)
        label = "1 thread" if n_jobs == 1 else "all cores"
        out.write(f"throughput {rate / 1e6:.1f} M rows/s ({label}, batches of {len(big)} rows)\n")
    row = Xf[0]
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < 0.3:
        model.predict(row)
        reps += 1
    out.write(f"latency    {(time.perf_counter() - t) / reps * 1e6:.1f} us per single-row predict() call from Python\n")
    return 0


def _synthetic_rows(model, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, model.n_features))


# ----- entry point --------------------------------------------------------------------------


def _model_arguments(parser: argparse.ArgumentParser, help: str) -> None:
    """The model, positional or as `--model PATH` (the original timber-compiler's spelling)."""
    parser.add_argument("model", nargs="?", help=help)
    parser.add_argument("--model", dest="model_option", metavar="MODEL", help="the model file (an alias of the positional argument)")


def parse_option(text: str) -> tuple[str, object]:
    """`KEY=VALUE` of `--option`: VALUE as JSON when it parses (numbers, lists, true/false, null),
    else the text itself (`--option ee=tool0`, `--option frames='["a","b"]'`)."""
    import json

    key, eq, value = text.partition("=")
    if not eq or not key.strip() or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found '{text}'")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def option_arguments(parser: argparse.ArgumentParser) -> None:
    """`-O/--option KEY=VALUE`: front-end options (e.g. `method=predict` for scikit-learn,
    `ee=tool0` for URDF), passed to the front-end's `load` as keyword arguments."""
    parser.add_argument(
        "-O",
        "--option",
        dest="option_list",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="front-end option, repeatable (VALUE is JSON when it parses, else text), e.g. -O method=predict",
    )


def _resolve_options(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if "option_list" not in vars(a):
        return
    a.options = {}
    for key, value in a.option_list:
        if key in a.options:
            ap.subcommands[a.command].error(f"option '{key}' given twice")
        a.options[key] = value


def _resolve_model(ap: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    given = [m for m in (getattr(a, "model", None), getattr(a, "model_option", None)) if m is not None]
    if "model_option" not in vars(a):
        return
    if len(given) != 1:
        ap.subcommands[a.command].error("give the model once: as the first argument or as --model" if given else "the model file is required")
    a.model = given[0]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="timber", description="Compile trained classical ML models to fast native code.")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a model and write IR, LLVM IR, C99, WAT or object files")
    _model_arguments(
        c,
        "model file (.json/.ubj XGBoost, .txt LightGBM, .json/.cbm CatBoost, .pkl/.joblib scikit-learn, .onnx ONNX-ML, "
        ".urdf robot, .tir Timber IR)",
    )
    c.add_argument(
        "--target",
        default="host",
        help="host (default: IR or LLVM IR for this machine), c99 (C sources + Makefile/CMake), wat (WebAssembly text + JS loader), "
        "or an object target: thumbv7m-none-eabi, thumbv7em-none-eabihf, aarch64-none-elf, aarch64-linux-gnu, riscv32-unknown-elf[+f], x86_64",
    )
    c.add_argument(
        "--emit",
        choices=["tir", "llvm", "obj", "asm"],
        default=None,
        help="host: tir (default) or llvm; object targets: obj (default), asm, llvm",
    )
    c.add_argument("--cpu", help="object targets: CPU name for LLVM (e.g. cortex-m4)")
    c.add_argument("--features", help="object targets: LLVM feature string (e.g. +f for RISC-V single-precision floats)")
    c.add_argument(
        "--size", action="store_true", help="object targets: print .text/.rodata/.data/.bss, max stack per entry point (from LLVM's call-frame information) and required libcalls"
    )
    c.add_argument("-o", "--output", "--out", help="output file, or directory for c99/wat (default: stdout); --out is an alias")
    c.add_argument("--force", action="store_true", help="replace existing different files in the output directory")
    c.add_argument("--wasm", action="store_true", help="with --target wat: also assemble model.wasm")
    c.add_argument(
        "--misra",
        action="store_true",
        help="with --target c99: the MISRA C:2012 profile (same results; adds model_data.h and DEVIATIONS.md)",
    )
    c.add_argument(
        "-p", "--passes", help="pass pipeline, e.g. 'tree-fold-redundant-splits' (default: 'default', the exact pipeline; '' for none)"
    )
    c.add_argument("--calibration", help="rows (.npy/.csv) whose branch hit rates order the branches (exact: predictions do not change)")
    c.add_argument("--prefix", default="timber_", help="symbol prefix of the exported functions (default: timber_)")
    c.add_argument("--generic", action="store_true", help="print IR in the generic form")
    option_arguments(c)
    c.set_defaults(func=cmd_compile)

    p = sub.add_parser("predict", help="compile a model and predict rows from a .npy or .csv file")
    _model_arguments(p, "model file: any format compile reads, .tir textual IR included")
    p.add_argument("--input", "-i", required=True, help="rows: .npy, or .csv (header optional, empty = missing)")
    p.add_argument("-o", "--output", "--out", help="predictions: .npy or .csv (default: CSV on stdout); --out is an alias")
    p.add_argument("--margin", action="store_true", help="raw scores before the objective's transform")
    p.add_argument("--n-jobs", type=int, default=None, help="threads (default: all cores)")
    p.add_argument(
        "--math",
        choices=("libm", "timber"),
        default="libm",
        help="exp/log1p: the C library's, as the frameworks call it (default: their exact bits), or Timber's own (vectorised)",
    )
    option_arguments(p)
    p.set_defaults(func=cmd_predict)

    ap.subcommands = {"compile": c, "predict": p}  # for errors in a subcommand's own usage
    d = sub.add_parser("demo", help="compile the example model shipped with Timber, predict and time it")
    d.set_defaults(func=cmd_demo)
    _store_subcommands(sub, ap)
    return ap


def _store_command(name: str):
    """A subcommand implemented in `timber/server/commands.py` (imported when it runs)."""

    def run(a):
        from timber.server import commands

        return getattr(commands, name)(a)

    return run


def _store_subcommands(sub, ap: argparse.ArgumentParser) -> None:
    """The model store and server: load, list, inspect, remove, serve, validate, bench."""

    def home(parser):
        parser.add_argument("--home", help="the store directory (default: $TIMBER_HOME, else ~/.timber)")

    ld = sub.add_parser("load", help="compile a model once and keep it in the store under a name (IR, object code, metadata)")
    ld.add_argument("model", help="model file (any format compile reads)")
    ld.add_argument("--name", help="the name to store it under (default: the file name without its extension)")
    ld.add_argument("--math", choices=("libm", "timber"), default="libm", help="as for predict (default: libm)")
    ld.add_argument("--n-jobs", type=int, default=None, help="threads a loaded model's predict uses (default: all cores)")
    ld.add_argument("-p", "--passes", help="pass pipeline (default: 'default', the exact pipeline; '' for none)")
    option_arguments(ld)
    home(ld)
    ld.set_defaults(func=_store_command("cmd_load"))
    ap.subcommands["load"] = ld

    ls = sub.add_parser("list", help="list the models in the store (damaged entries are named on stderr)")
    ls.add_argument("--json", action="store_true", help="JSON instead of a table")
    home(ls)
    ls.set_defaults(func=_store_command("cmd_list"))

    ins = sub.add_parser("inspect", help="show a stored model: format, objective, features, outputs, target CPU, sizes")
    ins.add_argument("name")
    ins.add_argument("--json", action="store_true", help="JSON instead of text")
    home(ins)
    ins.set_defaults(func=_store_command("cmd_inspect"))

    rm = sub.add_parser("remove", help="remove models from the store")
    rm.add_argument("names", nargs="+", metavar="NAME")
    home(rm)
    rm.set_defaults(func=_store_command("cmd_remove"))

    sv = sub.add_parser("serve", help="serve stored models over HTTP (Timber's API, KServe v2 / Triton, /metrics)")
    sv.add_argument("names", nargs="*", metavar="NAME", help="models to serve (default: every model in the store, also ones loaded later)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    sv.add_argument("--port", type=int, default=11434, help="port (default: 11434)")
    sv.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    sv.add_argument("--threads", type=int, default=None, help="prediction threads per worker (default: all cores)")
    sv.add_argument("--max-body", type=int, default=64 << 20, help="largest request body in bytes; larger gets 413 (default: 64 MiB)")
    sv.add_argument("--max-rows", type=int, default=100_000, help="most rows in one request; more gets 413 (default: 100000)")
    sv.add_argument("--max-batch", type=int, default=256, help="most single-row requests batched into one call (default: 256)")
    sv.add_argument("--batch-wait-ms", type=float, default=0.0, help="how long a batch waits for more rows (default: 0)")
    sv.add_argument(
        "--server",
        default="granian",
        choices=("granian", "uvicorn", "hypercorn"),
        help="HTTP server (default: granian, the most requests per second from 8 clients up; uvicorn: the lowest latency for one client)",
    )
    home(sv)
    sv.set_defaults(func=_store_command("cmd_serve"))

    va = sub.add_parser("validate", help="compare a stored model with its source framework on rows from a file")
    va.add_argument("name")
    va.add_argument("--data", required=True, help="rows: .npy or .csv")
    va.add_argument("--source", help="the model file it was loaded from (default: the path recorded by timber load)")
    home(va)
    va.set_defaults(func=_store_command("cmd_validate"))

    be = sub.add_parser("bench", help="latency percentiles and throughput of a stored model")
    be.add_argument("name")
    be.add_argument("--data", help="rows: .npy or .csv (default: 1000 random rows)")
    be.add_argument("--calls", type=int, default=5000, help="one-row calls timed (default: 5000)")
    be.add_argument("--seconds", type=float, default=0.5, help="time per throughput measurement (default: 0.5)")
    be.add_argument("--plot", help="write a latency histogram and throughput chart (PNG; needs matplotlib)")
    home(be)
    be.set_defaults(func=_store_command("cmd_bench"))


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    _resolve_model(ap, a)
    _resolve_options(ap, a)
    try:
        return a.func(a)
    except TimberError as e:
        text = e.render()
        sys.stderr.write(("timber: " if e.diagnostic.location is None else "") + text + "\n")
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
