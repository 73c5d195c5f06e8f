"""C99 back-end: `emit_c99(module, prefix)` gives model.h, model_data.c, model.c, CMakeLists.txt and a
Makefile exporting the ABI of `backends/common/abi.py` (README: "C99 and WebAssembly"); `write_c99` writes them to a directory."""

from .emit import emit_c99, write_c99

__all__ = ["emit_c99", "write_c99"]
