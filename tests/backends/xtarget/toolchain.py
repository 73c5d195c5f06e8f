"""Test tools for cross-target objects: find unicorn and zig, build zig's compiler-rt for a
target (cached), and link an object into a flat image or a host shared library.

A missing tool skips the test with a reason, except when TIMBER_REQUIRE_TEST_TOOLS=1 (CI),
where it fails: a missing emulator must never hide a regression.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from backends.llvm.targets import CrossTarget

# Everything at one fixed address; the unwind index is not needed to run.
LINKER_SCRIPT = """
SECTIONS {
  . = 0x10000;
  .text : { *(.text .text.*) }
  . = ALIGN(16);
  .rodata : { *(.rodata .rodata.* .srodata .srodata.*) }
  . = ALIGN(16);
  .data : { *(.data .data.* .sdata .sdata.*) }
  .bss : { *(.bss .bss.* .sbss .sbss.* COMMON) }
  /DISCARD/ : { *(.ARM.exidx*) *(.ARM.extab*) *(.eh_frame*) *(.comment) *(.riscv.attributes) }
}
"""


def require(module: str):
    """Import a test tool, or skip (fail under TIMBER_REQUIRE_TEST_TOOLS=1) when it is missing."""
    try:
        return __import__(module)
    except ImportError:
        message = f"{module} is not installed (pip install '.[test]')"
        if os.environ.get("TIMBER_REQUIRE_TEST_TOOLS") == "1":
            pytest.fail(f"TIMBER_REQUIRE_TEST_TOOLS=1 but {message}")
        pytest.skip(message)


def _zig(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    require("ziglang")
    r = subprocess.run([sys.executable, "-m", "ziglang", *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"zig {' '.join(args[:3])} failed:\n{r.stderr[-3000:]}")
    return r


def cache_dir() -> Path:
    """Where compiler-rt builds are kept between runs ($TIMBER_TEST_CACHE, else ~/.cache/timber-tests)."""
    d = Path(os.environ.get("TIMBER_TEST_CACHE") or Path.home() / ".cache" / "timber-tests")
    d.mkdir(parents=True, exist_ok=True)
    return d


def zig_target(t: CrossTarget) -> tuple[str, str]:
    """(zig -target, zig -mcpu) building compiler-rt with the target's CPU, FPU and float ABI."""
    arch = t.triple.split("-")[0]
    fam = t.family
    feats = [f for f in t.features.split(",") if f]
    if fam == "arm":
        env = "eabihf" if t.triple.endswith("hf") else "eabi"
        cpu = t.cpu.replace("-", "_")
        if "f32" in t.hardware_float and cpu == "cortex_m4":
            cpu += "+vfp4d16sp"  # zig's cortex_m4 has no FPU
        return f"{'thumb' if arch.startswith('thumb') else 'arm'}-freestanding-{env}", cpu
    if fam == "aarch64":
        return "aarch64-freestanding-none", "generic" + "".join(f.replace("-", "_") for f in feats if f == "+strict-align")
    if fam == "riscv32":
        return "riscv32-freestanding-none", "generic_rv32" + "".join(feats)
    raise ValueError(f"no compiler-rt recipe for {t.triple}")


@functools.cache
def compiler_rt(t: CrossTarget) -> Path:
    """zig's compiler-rt built for `t` (soft-float helpers, memcpy...), cached by zig version and target."""
    ztarget, mcpu = zig_target(t)
    version = _zig("version").stdout.strip()
    key = hashlib.sha256(f"{version} {ztarget} {mcpu}".encode()).hexdigest()[:16]
    out = cache_dir() / f"compiler_rt-{ztarget}-{key}.a"
    if out.exists():
        return out
    lib = Path(_zig("env").stdout.split('.lib_dir = "')[1].split('"')[0])
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        tmp_out = Path(tmp) / "compiler_rt.a"
        _zig(
            "build-lib",
            "-target",
            ztarget,
            "-mcpu",
            mcpu,
            "-O",
            "ReleaseSmall",
            "-ffunction-sections",
            "-fdata-sections",
            str(lib / "compiler_rt.zig"),
            f"-femit-bin={tmp_out}",
            cwd=tmp,
        )
        os.replace(tmp_out, out)  # atomic: a concurrent run sees the whole archive or none
    return out


def link_image(objs: list[bytes], t: CrossTarget, keep: list[str], workdir: Path) -> bytes:
    """Link objects with compiler-rt into a static ELF image at 0x10000, keeping the symbols
    `keep` (the entry points) and dropping unused code."""
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for i, obj in enumerate(objs):
        names.append(f"model{i}.o")
        (workdir / names[-1]).write_bytes(obj)
    (workdir / "flat.ld").write_text(LINKER_SCRIPT)
    args = ["ld.lld", "-static", "--gc-sections", "-e", keep[0]]
    for k in keep[1:]:
        args += ["-u", k]
    args += ["-T", "flat.ld", *names, str(compiler_rt(t)), "-o", "image.elf"]
    _zig(*args, cwd=str(workdir))
    return (workdir / "image.elf").read_bytes()


def link_shared(obj: bytes, workdir: Path) -> Path:
    """Link a position-independent host object into a shared library (for ctypes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "model.o").write_bytes(obj)
    _zig("ld.lld", "-shared", "model.o", "-o", "libmodel.so", cwd=str(workdir))
    return workdir / "libmodel.so"
