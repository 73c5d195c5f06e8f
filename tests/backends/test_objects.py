"""Object files for Cortex-M, AArch64, RISC-V and x86-64 (backends/llvm/objfile.py), checked
with llvmlite alone, so these tests always run: target names become full triples, bad CPUs
and features are errors (and an LLVM abort cannot take the process down), every object exports
the ABI and needs nothing but the target's allowed libcalls, Cortex-M3 / RV32IMAC code holds
no FPU instruction and no target contracts a multiply-add, the header is the C99 back-end's,
the demo fits in far less flash and stack than the original Timber's, and every entry point
of a real object gets a stack figure.  The stack analysis itself (LLVM's call-frame
information) is tests/backends/test_stack_sizes.py; running the objects is
tests/backends/test_objects_emulated.py.
"""

from __future__ import annotations

import functools
import re

import llvmlite.binding as llvm
import numpy as np
import pytest

from backends.c99 import emit_c99
from backends.llvm.lower import lower_module
from backends.llvm.objfile import ElfFile, compile_for, emit_object, frame_assembly, max_stack, read_frames, write_object
from backends.llvm.targets import PRESETS, resolve_target, target_names
from ir.diagnostics import TimberError
from tests.backends import test_c99_wat_models as hand
from tests.backends.xtarget import models

TARGETS = [p.names[0] for p in PRESETS]
EM = {"arm": 40, "aarch64": 183, "riscv32": 243, "x86_64": 62}  # ELF e_machine
# Original timber-compiler's published numbers for a 50-tree model on Cortex-M (README).
ORIGINAL_FLASH, ORIGINAL_STACK = 43 * 1024, 200


MODELS = {
    "demo": models.demo,
    # LightGBM-like: f64 rows, thresholds, leaves and sums, categorical codes, sigmoid
    "f64": lambda: models._default(hand.lgb_binary()),
    "softmax": lambda: models._default(hand.multiclass_softmax()),
    # every elementwise op (64-row block code for it is large: microcontrollers only in this file)
    "arith": lambda: models._default(hand.arith_zoo()),
}


@functools.cache
def module(name: str):
    return MODELS[name]()


@functools.cache
def obj(name: str, target: str, cpu: str | None = None, prefix: str = "timber_"):
    """The object of a model for a target, emitted once per test session."""
    return emit_object(module(name), target, cpu=cpu, prefix=prefix)


@pytest.fixture(scope="module")
def demo():
    return module("demo")


@pytest.fixture(scope="module")
def f64_model():
    return module("f64")


# ----- targets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, triple, cpu, abi, hw, small",
    [
        ("thumbv7m-none-eabi", "thumbv7m-unknown-none-eabi", "cortex-m3", "", set(), True),
        ("thumbv7em-none-eabihf", "thumbv7em-unknown-none-eabihf", "cortex-m4", "", {"f32"}, True),
        ("aarch64-none-elf", "aarch64-unknown-none-elf", "generic", "", {"f32", "f64"}, False),
        ("aarch64-linux-gnu", "aarch64-unknown-linux-gnu", "generic", "", {"f32", "f64"}, False),
        ("riscv32-unknown-elf", "riscv32-unknown-none-elf", "generic-rv32", "ilp32", set(), True),
        ("riscv32imac-unknown-none-elf", "riscv32-unknown-none-elf", "generic-rv32", "ilp32", set(), True),
        ("riscv32imafc-unknown-none-elf", "riscv32-unknown-none-elf", "generic-rv32", "ilp32f", {"f32"}, True),
        ("x86_64", "x86_64-unknown-linux-gnu", "x86-64", "", {"f32", "f64"}, False),
        ("thumbv8m.main-none-eabihf", "thumbv8m.main-unknown-none-eabihf", "cortex-m33", "", {"f32"}, True),
        ("riscv32imc-unknown-none-elf", "riscv32-unknown-none-elf", "generic-rv32", "ilp32", set(), True),
    ],
)
def test_short_triples_become_full_triples(typed, triple, cpu, abi, hw, small):
    t = resolve_target(typed)
    assert (t.triple, t.cpu, t.abiname, set(t.hardware_float), t.small) == (triple, cpu, abi, hw, small)
    assert len(t.triple.split("-")) == 4
    assert t.reloc == ("pic" if "linux" in triple else "static")


def test_riscv_features_choose_the_float_abi():
    t = resolve_target("riscv32-unknown-elf", features="+f")
    assert t.abiname == "ilp32f" and t.hardware_float == {"f32"}
    assert resolve_target("riscv32-unknown-elf+f").abiname == "ilp32f"
    assert resolve_target("riscv32imafc-unknown-none-elf", features="-f").abiname == "ilp32"


def test_cpu_override_changes_the_fpu():
    m7 = resolve_target("thumbv7em-none-eabihf", cpu="cortex-m7")
    assert m7.hardware_float == {"f32", "f64"}
    assert not any(n.startswith("__aeabi_d") for n in m7.allowed_libcalls)
    assert "__aeabi_dadd" in resolve_target("thumbv7em-none-eabihf").allowed_libcalls
    assert "__aeabi_fadd" not in resolve_target("thumbv7em-none-eabihf").allowed_libcalls


@pytest.mark.parametrize(
    "args, message",
    [
        (("thumbv7m-none-eabi", "cortex-m99", None), "does not know the CPU 'cortex-m99'"),
        (("thumbv7m-none-eabi", None, "+nosuchfeature"), "does not know the feature '\\+nosuchfeature'"),
        (("thumbv7m-none-eabi", None, "f"), "must start with '\\+'"),
        (("thumbv7em-none-eabihf", "cortex-m3", None), "hard-float ABI.*no FPU"),
        (("mips-none-elf", None, None), "unknown target 'mips-none-elf'"),
        (("thumb-none-eabi", None, None), "name the ARM architecture version"),
        (("riscv32imq-unknown-none-elf", None, None), "not a RISC-V ISA string"),
    ],
)
def test_bad_targets_are_user_errors(args, message):
    with pytest.raises(TimberError, match=message):
        resolve_target(*args)


def test_an_llvm_abort_does_not_take_the_process_down():
    """An unknown RISC-V CPU makes LLVM abort ("RV32 target requires an RV32 CPU"); the target
    is tried in a child process first, so this process gets a TimberError instead."""
    with pytest.raises(TimberError, match="LLVM cannot compile for target riscv32.*RV32 target requires an RV32 CPU"):
        resolve_target("riscv32-unknown-elf", cpu="sifive-u74")


def test_target_names_cover_the_issue():
    names = [n for n, _ in target_names()]
    for n in (
        "thumbv7m-none-eabi",
        "thumbv7em-none-eabihf",
        "aarch64-none-elf",
        "aarch64-linux-gnu",
        "riscv32-unknown-elf",
        "x86_64-linux-gnu",
    ):
        assert n in names


# ----- objects --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_objects_export_the_abi_and_need_only_allowed_libcalls(target):
    small = resolve_target(target).small
    for r in [obj(name, target) for name in (["demo", "f64", "softmax", "arith"] if small else ["demo"])]:
        elf = ElfFile(r.object)
        assert elf.type == 1 and elf.machine == EM[r.target.family]  # ET_REL for the target's ISA
        assert elf.is64 == (r.target.family in ("aarch64", "x86_64"))
        for sym in r.exports:
            s = elf.symbol(sym)
            assert s.bind == 1 and s.type == 2, sym  # a global function
        assert {"timber_infer", "timber_infer_single"} <= set(r.exports)
        extra = set(r.undefined_symbols) - r.target.allowed_libcalls
        assert not extra, f"{target}: unexpected undefined symbols {sorted(extra)}"
        assert not {"exp", "expf", "exp2", "pow"} & set(r.undefined_symbols)  # no libm: Timber's own exp


def test_soft_float_cores_report_their_helpers():
    m3 = obj("f64", "thumbv7m-none-eabi")
    assert {"__aeabi_dadd", "__aeabi_dcmpge"} & set(m3.undefined_symbols)
    m4f = obj("f64", "thumbv7em-none-eabihf")
    assert not any(n.startswith("__aeabi_f") and n != "__aeabi_f2d" for n in m4f.undefined_symbols)
    rv = obj("f64", "riscv32-unknown-elf")
    assert "__adddf3" in rv.undefined_symbols
    assert set(obj("f64", "aarch64-none-elf").undefined_symbols) <= {"memcpy", "memset"}  # no float helpers


VFP = re.compile(r"^\s+(v[a-z]+(\.[a-z0-9]+)*|vmrs|vmsr|fmrx|fmxr)\s", re.M)
RISCV_F = re.compile(r"^\s+(f[a-z]+\.(s|d|w|x)(\.[a-z]+)?|flw|fsw|fld|fsd|fmv\.[a-z.]+|frcsr|fscsr)\s", re.M)


def test_cortex_m3_and_rv32imac_code_has_no_fpu_instructions():
    for name in MODELS:
        asm = obj(name, "thumbv7m-none-eabi").asm
        assert not VFP.search(asm), VFP.search(asm).group(0)
        assert ".fpu" not in asm or re.search(r"\.fpu\s+(none|softvfp)", asm)
        assert not RISCV_F.search(obj(name, "riscv32-unknown-elf").asm)
    # the checks do see FPU code where there is some
    assert VFP.search(obj("demo", "thumbv7em-none-eabihf").asm)
    assert RISCV_F.search(obj("demo", "riscv32imafc-unknown-none-elf").asm)


FUSED = re.compile(r"^\s+(vfma|vfms|vfnma|vfnms|fmadd|fmsub|fnmadd|fnmsub|fmla|fmls|vfmadd|vfmsub|vfnmadd|vfnmsub)\S*\s", re.M)


@pytest.mark.parametrize(
    "target, cpu",
    [("thumbv7em-none-eabihf", None), ("riscv32imafc-unknown-none-elf", None), ("aarch64-linux-gnu", None), ("x86_64", "haswell")],
)
def test_no_multiply_add_is_fused(target, cpu):
    """Bits must equal the host JIT's: a fused multiply-add rounds once where the IR rounds
    twice (Haswell and AArch64 have FMA instructions; they must not be used)."""
    for name in ("demo", "softmax", "arith") if resolve_target(target).small else ("demo",):
        asm = obj(name, target, cpu).asm
        assert not FUSED.search(asm), FUSED.search(asm).group(0)


def test_microcontrollers_get_single_row_code(demo):
    t = resolve_target("thumbv7m-none-eabi").target_info()
    text = lower_module(demo, t).text
    assert "_b64" not in text and "_b1(" in text
    assert "plain" not in text  # the missing-aware kernels alone: no second copy
    big = [int(n) for n in re.findall(r"alloca \[(\d+) x", text)]
    assert max(big, default=0) <= 30, big  # one row of 30 features at most
    host = lower_module(demo, resolve_target("aarch64-linux-gnu").target_info()).text
    assert "_b64" in host


def test_header_is_the_c99_header():
    for name in ("demo", "f64"):
        r = obj(name, "thumbv7m-none-eabi", prefix="m_")
        assert r.header == emit_c99(module(name), "m_")["model.h"]
        for sym in r.exports:
            assert f" {sym}(" in r.header
    assert "typedef double m_input_t;" in obj("f64", "thumbv7m-none-eabi", prefix="m_").header


def test_prefix_renames_every_export(demo):
    r = emit_object(demo, "riscv32-unknown-elf", prefix="gesture_")
    assert set(r.exports) == {"gesture_infer", "gesture_infer_single", "gesture_infer_margin"}
    defined = {s.name for s in r.elf.symbols if s.bind == 1 and not s.undefined}
    assert defined == set(r.exports)  # tables and kernels stay local: two models link side by side


def test_demo_beats_the_original_timber_on_cortex_m3(demo):
    """The demo model (XGBoost, 50 trees of depth 4) for thumbv7m-none-eabi: flash (.text +
    .rodata, plus the unwind index) and the stack of every entry point, against the original
    Timber's ~43 KB and ~200 B.  Measured: 1120 B .text + 10048 B .rodata (+ 104 B unwind
    index: 11.3 KB) and 104 B of stack for timber_infer, libcalls not counted.  Linked with
    zig's compiler-rt (soft-float helpers included) the image has 4024 B .text + 10080 B
    .rodata, and under emulation the deepest call uses 188 B of stack."""
    s = obj("demo", "thumbv7m-none-eabi").sizes()
    assert s.text + s.rodata < ORIGINAL_FLASH / 3
    assert s.flash < ORIGINAL_FLASH / 3
    assert all(v is not None and v < ORIGINAL_STACK * 0.6 for v in s.stack.values()), s.stack
    assert s.data == s.bss == 0  # no mutable state
    text = str(s)
    for word in (".text", ".rodata", "flash", "timber_infer_single", "__aeabi_fadd", "compiler-rt"):
        assert word in text


@pytest.mark.parametrize("target", ["thumbv7m-none-eabi", "aarch64-linux-gnu", "riscv32-unknown-elf", "x86_64"])
def test_section_sizes_agree_with_llvm(target):
    r = obj("demo", target)
    theirs = {s.name().decode(): s.size() for s in llvm.ObjectFileRef.from_data(r.object).sections() if s.name()}
    ours = {s.name: s.size for s in r.elf.sections if s.name}
    assert ours == theirs
    s = r.sizes()
    assert s.text == sum(v for k, v in theirs.items() if k.startswith(".text"))
    assert s.rodata == sum(v for k, v in theirs.items() if k.startswith(".rodata"))


def test_write_object_refuses_to_replace_a_different_file(tmp_path, demo):
    paths, r = write_object(demo, tmp_path, "thumbv7m-none-eabi")
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["model.h", "model.o"]
    assert (tmp_path / "model.o").read_bytes() == r.object
    write_object(demo, tmp_path, "thumbv7m-none-eabi")  # the same bytes again: fine
    with pytest.raises(TimberError, match="model.o"):
        write_object(demo, tmp_path, "riscv32-unknown-elf")
    write_object(demo, tmp_path, "riscv32-unknown-elf", force=True)
    assert ElfFile((tmp_path / "model.o").read_bytes()).machine == EM["riscv32"]
    paths, _ = write_object(demo, tmp_path / "asm", "riscv32-unknown-elf", emit="asm")
    assert (tmp_path / "asm" / "model.s").read_text().count("timber_infer_single:") == 1
    write_object(demo, tmp_path / "ll", "thumbv7em-none-eabihf", emit="llvm")
    assert 'target triple = "thumbv7em-unknown-none-eabihf"' in (tmp_path / "ll" / "model.ll").read_text()
    with pytest.raises(TimberError, match="--emit wat"):
        write_object(demo, tmp_path, "thumbv7m-none-eabi", emit="wat")


def test_no_inline_assembly_ever(demo):
    """llvmlite has no assembler for other targets: inline asm would abort the process."""
    for name in MODELS:
        text = lower_module(module(name), resolve_target("thumbv7m-none-eabi").target_info()).text
        assert " asm " not in text and "asm sideeffect" not in text
    assert "asm sideeffect" not in obj("demo", "aarch64-linux-gnu").llvm_ir


def test_missing_emulation_tools_skip_unless_required(monkeypatch):
    """CI sets TIMBER_REQUIRE_TEST_TOOLS=1: then a missing emulator fails the run instead of skipping."""
    from tests.backends.xtarget.toolchain import require

    monkeypatch.delenv("TIMBER_REQUIRE_TEST_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require("timber_no_such_tool")
    monkeypatch.setenv("TIMBER_REQUIRE_TEST_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="TIMBER_REQUIRE_TEST_TOOLS=1"):
        require("timber_no_such_tool")


def test_objects_are_deterministic(demo):
    assert emit_object(demo, "thumbv7m-none-eabi").object == emit_object(demo, "thumbv7m-none-eabi").object


def test_small_code_chooses_tables_by_size():
    """On microcontrollers: node words as i16, the heap kernel for the demo's dense depth-4
    trees, the walk kernel for deep sparse ones (where padding a heap would cost flash)."""
    from backends.llvm.plan import HeapSegment, WalkSegment, plan_ensemble
    from ir.dialects import tree
    from ir.types import f64

    (ens,) = [op for op in module("demo").walk() if isinstance(op, tree.EnsembleOp)]
    p = plan_ensemble(ens, small=True)
    assert p.word == "i16" and all(isinstance(s, HeapSegment) and s.words.dtype == np.uint16 for s in p.segments)
    assert plan_ensemble(ens).word == "i32"
    deep = hand.random_forest(12, 6, 1, 9, seed=5, compare=f64, leaves=f64, acc=f64)  # depth-9 trees, not complete
    (ens,) = [op for op in deep.walk() if isinstance(op, tree.EnsembleOp)]
    small, fast = plan_ensemble(ens, small=True), plan_ensemble(ens)
    assert all(isinstance(s, WalkSegment) for s in small.segments) and small.left == "i16"
    assert any(isinstance(s, HeapSegment) for s in fast.segments)
    m3 = emit_object(deep, "thumbv7m-none-eabi").sizes()
    host = emit_object(deep, "aarch64-none-elf").sizes()
    assert m3.rodata < 0.6 * host.rodata  # measured 71 KB against 129 KB


def test_stack_analysis_of_real_objects():
    """Microcontroller code keeps every frame on the stack pointer: each entry point has a
    figure (measured: 32 to 128 B for the demo).  The 64-row block code of AArch64 and x86-64
    keeps its rows in stack buffers that backends/llvm/emit.py aligns to 64 bytes: LLVM
    re-aligns the stack for them and defines the CFA from the frame pointer from there on, so
    an entry point with such a buffer is unknown; with buffers at the ABI's 16-byte stack
    alignment every entry point has a figure."""
    for target in ("thumbv7m-none-eabi", "thumbv7em-none-eabihf", "riscv32-unknown-elf", "riscv32imafc-unknown-none-elf"):
        s = obj("demo", target).sizes()
        assert all(v is not None and 16 <= v <= 256 for v in s.stack.values()), (target, s.stack)
    rows = 64 * 30 * 4  # the transposed 64-row input block alone
    for target in ("aarch64-none-elf", "x86_64"):
        r = obj("demo", target)
        s = r.sizes()
        for sym in r.exports:
            body = r.llvm_ir[r.llvm_ir.index(f"@{sym}(") :].split("\n}\n")[0]
            realigned = any(int(a) > 16 for a in re.findall(r"= alloca .*, align (\d+)", body))
            assert (r.frames[sym].size is None) == realigned and (s.stack[sym] is None) == realigned, sym
        kernel = r.frames["f_margin_b64"]  # the 64-row kernel: its spilled vectors, on the stack pointer
        assert kernel.size is not None and 512 < kernel.size < 4096 and kernel.calls == []
        assert ("unknown: a frame" in str(s)) == (None in s.stack.values())
        t = r.target
        aligned16 = compile_for(re.sub(r"(= alloca .*), align 64$", r"\1, align 16", r.lowered.text, flags=re.M), t, r._opt)
        frames = read_frames(frame_assembly(aligned16, t, r._opt), t.family)
        stack = {sym: max_stack(frames, sym) for sym in r.exports}
        assert stack["timber_infer"] > rows and stack["timber_infer_single"] < 1024, stack


def test_elf_reader_reads_symbols_of_both_classes():
    for target in ("thumbv7m-none-eabi", "aarch64-none-elf"):
        r = obj("demo", target)
        names = {s.name for s in r.elf.symbols}
        assert set(r.exports) <= names and "__aeabi_fadd" not in names or target.startswith("thumb")
        text = next(s for s in r.elf.sections if s.name == ".text")
        assert text.kind == "text" and text.alloc
    assert np.dtype(np.float32).itemsize == 4
