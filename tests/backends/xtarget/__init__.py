"""Running cross-target objects in the tests: zig's linker and compiler-rt (`toolchain.py`) and
the unicorn CPU emulator (`emulator.py`).  See ../shared/xtarget.md for the recipe."""
