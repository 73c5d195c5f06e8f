"""Running cross-target objects in the tests: zig's linker and compiler-rt (`toolchain.py`) and
the unicorn CPU emulator (`emulator.py`): link each object with compiler-rt for its CPU, load the image, call the ABI entry points, compare bits with the host JIT."""
