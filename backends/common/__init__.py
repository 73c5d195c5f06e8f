"""What every back-end shares and no back-end owns: module planning and exports, packed ensemble
tables, the ABI header (`abi.model_h`), writing files, and the bookkeeping of lowering tables and
math expansions (`lowering`).  Imports only `ir/`."""
