"""WebAssembly back-end: `emit_wat(module, prefix)` gives a self-contained WAT module exporting the ABI
of `backends/common/abi.py` over its memory; `emit_wat_bundle` adds a JS loader; `write_wat` writes them."""

from .emit import emit_wat, emit_wat_bundle, write_wat

__all__ = ["emit_wat", "emit_wat_bundle", "write_wat"]
