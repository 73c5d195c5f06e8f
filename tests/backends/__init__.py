"""Back-end tests: LLVM JIT, C99 and WAT against the IR interpreter."""
