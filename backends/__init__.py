"""Back-ends: LLVM (JIT and objects), C99, WebAssembly text."""
