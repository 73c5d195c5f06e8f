"""Call the exported functions of a linked ELF image inside unicorn, as a C caller would.

    emu = Emulator(image, target)
    rc, out = emu.infer("timber_infer", X, n_outputs, np.float32)

The image's loadable segments are mapped at their addresses, with a stack and an I/O area for
arguments.  A call sets the argument registers, the stack pointer and the return address (a
sentinel; bit 0 set on Thumb), runs until the sentinel, and checks that it really got there
(unicorn returns silently when a time limit stops it).  With `measure_stack`, the stack is
filled with a pattern before each call, so `stack_used` is the deepest byte the calls wrote.
"""

from __future__ import annotations

import numpy as np

from backends.llvm.objfile import ElfFile
from backends.llvm.targets import CrossTarget

from .toolchain import require

PAGE = 0x1000
STACK_TOP = 0x0800_0000
STACK_SIZE = {True: 0x1_0000, False: 0x10_0000}  # microcontroller code / host-style 64-row blocks (~15 KiB)
IO_BASE = 0x1000_0000
SENTINEL = 0x0F00_0000  # a mapped page holding no code: returning here ends the call
FILL = 0xA5


def _align(n: int, a: int = PAGE) -> int:
    return (n + a - 1) // a * a


class Emulator:
    """One CPU with the image loaded.  `cpu` chooses the unicorn CPU model (defaults per target)."""

    def __init__(self, image: bytes, target: CrossTarget):
        uc_mod = require("unicorn")
        self.target = target
        self.elf = ElfFile(image)
        fam = target.family
        self.thumb = fam == "arm"
        if fam == "arm":
            from unicorn import arm_const as c

            self.uc = uc_mod.Uc(uc_mod.UC_ARCH_ARM, uc_mod.UC_MODE_THUMB | uc_mod.UC_MODE_MCLASS)
            model = {"cortex-m0plus": c.UC_CPU_ARM_CORTEX_M0, "cortex-m3": c.UC_CPU_ARM_CORTEX_M3}.get(target.cpu, c.UC_CPU_ARM_CORTEX_M4)
            if "f64" in target.hardware_float:
                model = c.UC_CPU_ARM_CORTEX_M7
            self.uc.ctl_set_cpu_model(model)
            self.args = [c.UC_ARM_REG_R0, c.UC_ARM_REG_R1, c.UC_ARM_REG_R2, c.UC_ARM_REG_R3]
            self.sp, self.ret, self.pc = c.UC_ARM_REG_SP, c.UC_ARM_REG_LR, c.UC_ARM_REG_PC
        elif fam == "aarch64":
            from unicorn import arm64_const as c

            self.uc = uc_mod.Uc(uc_mod.UC_ARCH_ARM64, uc_mod.UC_MODE_ARM)
            self.uc.ctl_set_cpu_model(c.UC_CPU_ARM64_A53)
            self.uc.reg_write(c.UC_ARM64_REG_CPACR_EL1, 3 << 20)  # FP/SIMD enabled at EL1
            self.args = [c.UC_ARM64_REG_X0, c.UC_ARM64_REG_X1, c.UC_ARM64_REG_X2, c.UC_ARM64_REG_X3]
            self.sp, self.ret, self.pc = c.UC_ARM64_REG_SP, c.UC_ARM64_REG_LR, c.UC_ARM64_REG_PC
        elif fam == "riscv32":
            from unicorn import riscv_const as c

            self.uc = uc_mod.Uc(uc_mod.UC_ARCH_RISCV, uc_mod.UC_MODE_RISCV32)
            hw = "f32" in target.hardware_float
            self.uc.ctl_set_cpu_model(c.UC_CPU_RISCV32_SIFIVE_U34 if hw else c.UC_CPU_RISCV32_SIFIVE_E31)
            if hw:
                self.uc.reg_write(c.UC_RISCV_REG_MSTATUS, self.uc.reg_read(c.UC_RISCV_REG_MSTATUS) | (3 << 13))  # FS = dirty
            self.args = [c.UC_RISCV_REG_A0, c.UC_RISCV_REG_A1, c.UC_RISCV_REG_A2, c.UC_RISCV_REG_A3]
            self.sp, self.ret, self.pc = c.UC_RISCV_REG_SP, c.UC_RISCV_REG_RA, c.UC_RISCV_REG_PC
        else:
            raise ValueError(f"no emulator for {target.triple}")
        self.word = 8 if fam == "aarch64" else 4
        self.stack_size = STACK_SIZE[target.small]
        self._load()
        self.io_size = 0
        self.stack_used = 0

    def _load(self) -> None:
        uc = self.uc
        pages = sorted({p for seg in self.elf.segments for p in range(seg.vaddr // PAGE, _align(seg.vaddr + seg.memsz) // PAGE)})
        runs: list[list[int]] = []  # segments may share pages: map whole runs of pages once
        for p in pages:
            if runs and runs[-1][1] == p:
                runs[-1][1] = p + 1
            else:
                runs.append([p, p + 1])
        for lo, hi in runs:
            uc.mem_map(lo * PAGE, (hi - lo) * PAGE)
        for seg in self.elf.segments:
            uc.mem_write(seg.vaddr, self.elf.data[seg.offset : seg.offset + seg.filesz])
        uc.mem_map(STACK_TOP - self.stack_size, self.stack_size)
        uc.mem_map(SENTINEL, PAGE)

    def address(self, symbol: str) -> int:
        return self.elf.symbol(symbol).value

    def call(self, symbol: str, args: list[int], timeout_s: float = 120.0, measure_stack: bool = False) -> int:
        """Call `symbol(args...)`; return its int result (sign-extended from 32 bits).  With
        `measure_stack`, `stack_used` becomes the bytes below the caller's SP it wrote."""
        uc = self.uc
        for reg, v in zip(self.args, args):
            uc.reg_write(reg, v & ((1 << (8 * self.word)) - 1))
        size = self.stack_size
        if measure_stack:
            uc.mem_write(STACK_TOP - size, bytes([FILL]) * size)
        uc.reg_write(self.sp, STACK_TOP - 64)  # a little headroom above, as a caller's frame would leave
        uc.reg_write(self.ret, SENTINEL | (1 if self.thumb else 0))
        entry = self.address(symbol)
        uc.emu_start(entry | (1 if self.thumb else 0), SENTINEL, timeout=int(timeout_s * 1e6))
        pc = uc.reg_read(self.pc)
        if pc != SENTINEL:
            raise RuntimeError(f"{symbol} did not return (pc = {pc:#x}): time limit or a wild jump")
        if measure_stack:
            stack = np.frombuffer(bytes(uc.mem_read(STACK_TOP - size, size - 64)), np.uint8)
            touched = np.flatnonzero(stack != FILL)
            self.stack_used = max(self.stack_used, len(stack) - int(touched[0]) if len(touched) else 0)
        rc = uc.reg_read(self.args[0]) & 0xFFFFFFFF
        return rc - (1 << 32) if rc >= 1 << 31 else rc

    def _io(self, nbytes: int) -> None:
        if nbytes > self.io_size:
            if self.io_size:
                self.uc.mem_unmap(IO_BASE, self.io_size)
            self.io_size = _align(nbytes)
            self.uc.mem_map(IO_BASE, self.io_size)

    def infer(
        self, symbol: str, X: np.ndarray, n_outputs: int, out_dtype, single: bool = False, measure_stack: bool = False
    ) -> tuple[int, np.ndarray]:
        """Run a batch entry point (`symbol(X, n, out, NULL)`) on the rows of X, or the
        single-row one on each row; return (the return codes or-ed, outputs)."""
        self.stack_used = 0
        X = np.ascontiguousarray(X)
        n = len(X)
        out = np.full((n, n_outputs), -12345, out_dtype)
        in_bytes = _align(max(X.nbytes, 1), 64)
        self._io(in_bytes + out.nbytes + 64)
        self.uc.mem_write(IO_BASE, X.tobytes())
        out_addr = IO_BASE + in_bytes
        self.uc.mem_write(out_addr, out.tobytes())
        if single:
            rc = 0
            for i in range(n):
                rc |= self.call(symbol, [IO_BASE + i * X[0].nbytes, out_addr + i * out[0].nbytes, 0], measure_stack=measure_stack)
        else:
            rc = self.call(symbol, [IO_BASE, n, out_addr, 0], measure_stack=measure_stack)
        got = np.frombuffer(bytes(self.uc.mem_read(out_addr, out.nbytes)), out_dtype).reshape(n, n_outputs)
        return rc, got.copy()
