"""Timber's intermediate representation: MLIR-style typed SSA ops, a printer and parser
that round-trip exactly, and a verifier.  Nothing here imports the rest of Timber."""
