"""`timber.compile`: a model file (or IR module) → machine code for this CPU → `CompiledModel`.

    model = timber.compile("model.json")      # any format `timber.detect` recognises
    model.predict(X)                           # what the framework's own predict returns
    model.predict(X, output_margin=True)       # the raw score (@margin)

`predict` converts X to the model's input element type the way the framework does (XGBoost
casts to float32, LightGBM reads float64), checks the feature count, splits big batches
across threads (the compiled code runs with the GIL released) and returns the result element
type: shape (n,) for one output, (n, K) for K.  One float row (a numpy array or a list) goes
through a builtin generated in LLVM IR (`backends/llvm/pyentry.py`; ~0.1 µs around the model's
own work), which keeps the GIL unless the row takes long (`RELEASE_GIL_WORK`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from backends.common.abi import OK, STATUS
from backends.common.plan import check_prefix
from backends.llvm import pyentry
from backends.llvm.jit import JitModule, compile_lowered
from backends.llvm.lower import Export, Lowered, lower_module
from backends.llvm.target import host_target
from ir.diagnostics import TimberError
from ir.dialects.builtin import ModuleOp
from ir.printer import print_op
from ir.verifier import verify

MIN_WORK_PER_THREAD = 2_000_000  # tree levels (+ features) per thread before splitting pays off
MAX_ROWS_PER_CALL = 2**30  # the C ABI counts rows in an int
RELEASE_GIL_WORK = 2_000  # tree levels (+ features) per row (~3-10 µs) from which one row runs without the GIL


MATH_CHOICES = ("libm", "timber")


def compile(  # noqa: A001
    model, *, n_jobs: int | None = None, prefix: str = "timber_", passes="default", math: str = "libm", **options
) -> CompiledModel:
    """Compile `model` for this machine.

    `model`: a path to a model file (format detected by `timber.detect`), a verified Timber IR
    module, or a framework object Timber reads directly (`lightgbm.Booster` / `LGBMModel`,
    `xgboost.Booster` / `XGBModel`, `catboost.CatBoost` models).  `n_jobs`: threads `predict` may use (default: all
    cores).  `prefix`: prefix of the exported C symbols.  `passes`: the pass pipeline (text or
    list of passes) run before lowering: "default" (the exact default pipeline; predictions do
    not change), or "" / None for none.  `math`: where `exp` and `log1p` (sigmoid, softmax, exp
    links) come from: "libm", the C library this process uses, which is what XGBoost and
    LightGBM call, so probabilities are their exact bits; or "timber", Timber's own functions
    (`ir/dialects/mathimpl/`: vectorised, faster, the same bits as the C99, WebAssembly and
    object-file back-ends, and within one ulp of glibc).  Other keyword arguments are front-end
    options, passed to the front-end's `load` (e.g. `method="predict"` for scikit-learn,
    `ee="tool0"` for URDF); each front-end names the options it takes when given others."""
    if math not in MATH_CHOICES:
        raise TimberError(f"unknown math '{math}'; choose one of: {', '.join(MATH_CHOICES)}")
    check_prefix(prefix)
    t0 = time.perf_counter()
    module = _load(model, options)
    if passes:
        from passes.manager import run_pipeline

        if isinstance(model, ModuleOp):
            module = _clone(module)  # never rewrite the caller's module in place
        # verify() below checks the result once; verifying after every pass too costs ~1.5 s on big forests.
        run_pipeline(module, passes, verify_each=False)
    verify(module)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    target = dataclasses.replace(host_target(), libm=math == "libm")
    lowered = lower_module(module, target, prefix)
    t_lower = time.perf_counter() - t1
    jit = compile_lowered(lowered, target)
    timings = {"load": t_load, "lower": t_lower, **jit.timings, "total": time.perf_counter() - t0}
    return CompiledModel(module, lowered, jit, n_jobs=n_jobs, timings=timings, prefix=prefix)


def _load(model, options: dict) -> ModuleOp:
    if isinstance(model, ModuleOp):
        if options:
            raise TimberError(f"a Timber IR module takes no front-end options, found: {', '.join(sorted(options))}")
        return model
    if isinstance(model, (str, os.PathLike)):
        from .detect import load_model

        return load_model(model, **options)
    kind = type(model).__module__.split(".")[0]
    if kind not in ("sklearn", "lightgbm", "catboost", "xgboost", "onnx"):
        raise TimberError(
            "timber.compile takes a model file path, a Timber IR module, or a LightGBM/XGBoost/CatBoost/scikit-learn model object "
            "or an onnx.ModelProto; "
            f"found {type(model).__name__}"
        )
    from importlib import import_module

    from .detect import check_options

    frontend = import_module(f"timber.frontends.{kind}")
    check_options(frontend.load, type(model).__name__, options)
    if kind == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        return frontend.load(bytes(booster.save_raw("json")), source_name="<xgboost.Booster>", **options)
    return frontend.load(model, **options)


def _clone(module: ModuleOp) -> ModuleOp:
    from ir.parser import parse_module

    return parse_module(print_op(module, generic=False), "<module>")


class CompiledModel:
    """A model compiled to machine code in this process.

    Attributes: `n_features`, `n_outputs` (of `predict`), `ir` (the module's text),
    `llvm_ir` (the LLVM IR it was compiled from), `timings` (seconds per compile phase)."""

    def __init__(
        self,
        module: ModuleOp,
        lowered: Lowered,
        jit: JitModule,
        n_jobs: int | None = None,
        timings: dict | None = None,
        prefix: str = "timber_",
    ):
        self.module = module
        self.lowered = lowered
        self.jit = jit
        self.n_jobs = n_jobs
        self.timings = timings or {}
        self.prefix = prefix  # of the exported symbols, as given to timber.compile
        self._predict = lowered.export(f"{prefix}infer")
        self._single = lowered.export(f"{prefix}infer_single")
        self._margin = lowered.export(f"{prefix}infer_margin")
        if self._predict is None:
            raise TimberError("the module has no public @predict function to compile")
        self._single_fn = jit.function(self._single.symbol) if self._single is not None else None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._work_per_row = lowered.cost_per_row + self._predict.n_inputs
        # One output column is returned as a 1-D array (as predict does), unless the front-end says
        # its call returns a matrix (scikit-learn's transform: (n, 1) for one component).
        rank = module.attributes.get("timber.output_rank")
        self._matrix_output = rank is not None and getattr(rank, "value", None) == 2
        self._tls = threading.local()  # per-thread one-row buffers (see _one_row_path)
        self._one = None  # the one-row path (`_one_row_path`), built at its first use

    def __reduce__(self):
        """Pickles as its artifact (verified IR + host object code + options): unpickling calls
        `timber.artifact.from_artifact(bytes)` only, which loads the object code without
        recompiling (or recompiles from the IR on a CPU lacking its features)."""
        from .artifact import reduce_compiled_model

        return reduce_compiled_model(self)

    # ----- metadata ---------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self._predict.n_inputs

    @property
    def n_outputs(self) -> int:
        return self._predict.n_outputs

    @property
    def feature_names(self) -> list[str] | None:
        """The input columns' names when the model file names them (URDF: the joints, in order)."""
        names = self.module.attributes.get("timber.feature_names")
        return None if names is None else [a.value for a in names]

    @property
    def ir(self) -> str:
        """The verified Timber IR this model was compiled from, as text."""
        return print_op(self.module)

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR this model was compiled from, as text."""
        return self.lowered.text

    @property
    def kernels(self) -> str:
        """Which kernels run the model on this machine: the block size and, per tree ensemble,
        how many trees each kernel kind (heap, walk, bitvector, oblivious, branch code, node
        tables) runs, for batches and single rows; then the target's choices.  See
        `backends/llvm/plan.py` for the rules and their measurements."""
        t = self.jit.target
        flags = [f"{t.lanes} lanes"] + [name for name, on in (("split gathers", t.split_gathers), ("bitvectors", t.bitvectors)) if on]
        return f"{self.lowered.kernels}\ntarget: {t.triple}, cpu {t.cpu}, {', '.join(flags)}"

    def __repr__(self) -> str:
        fmt = self.module.attributes.get("timber.format")
        kind = f"{fmt.value} " if fmt is not None else ""
        return f"<CompiledModel {kind}model: {self.n_features} features -> {self.n_outputs} outputs>"

    # ----- prediction -------------------------------------------------------------------------
    def predict(self, X, output_margin: bool = False, n_jobs: int | None = None) -> np.ndarray:
        """Predict rows X: what the framework's own predict returns (`output_margin=True`: the
        raw score).  X: a 2-D array (float32/float64/ints/bools, C or Fortran order), a pandas
        DataFrame, a scipy sparse matrix (absent entries are missing, as in XGBoost) or one 1-D
        row.  `n_jobs` overrides the thread count given to `compile` for this call."""
        if not output_margin:
            one = self._one or self._first_row()
            out = one(X)  # one float row (array or list): the lean path, else None
            if out is not None:
                return out
        entry = self._predict
        if output_margin:
            entry = self._margin
            if entry is None:
                raise TimberError("this model has no @margin function, so output_margin=True is not available")
        X = self._rows(X, entry)
        n, k = X.shape[0], entry.n_outputs
        out = np.empty((n, k), entry.out_dtype)
        if n == 1 and not output_margin and self._single is not None:
            one = (self._one or self._first_row())(X)  # a converted row (ints, frame): the lean path takes it
            if one is not None:
                return one
            _check_status(self._single_fn(_address(X), _address(out), None), self._single.symbol)
        elif n:
            self._run(entry, X, out, n_jobs if n_jobs is not None else self.n_jobs)
        return out.reshape(n) if k == 1 and not self._matrix_output else out

    def _first_row(self):
        """The one-row path, built at its first use: the entry code is compiled once per process
        (~25 ms), which loading or compiling a model, or batches, need not wait for."""
        self._one = one = self._one_row_path() if self._single is not None else _no_row
        return one

    def _one_row_path(self, native: bool = True):
        """`one(X)`: the result of `predict(X)` for one row, or None when X is not a row it
        takes (then `predict`'s general path, with its conversions and errors, answers).

        `native`: a builtin function generated in LLVM IR (`backends/llvm/pyentry.py`) that
        takes a numpy float32/float64 row of shape (n,) or (1, n), any strides, converts it on
        the stack and calls `infer_single` directly (no ctypes, no per-call Python code); it
        releases the GIL only for models whose row takes long (`RELEASE_GIL_WORK`).  Where it
        cannot be built (`pyentry.available()` says why) or with `native=False`: the Python
        version below, through ctypes with this thread's preallocated buffers."""
        entry = self._single
        k = entry.n_outputs
        flat = k == 1 and not self._matrix_output
        if native and entry.n_inputs > 0 and entry.in_dtype in (np.float32, np.float64) and pyentry.available() is None:
            return pyentry.one_row_function(
                ctypes.cast(self._single_fn, ctypes.c_void_p).value,
                entry.n_inputs,
                entry.in_dtype,
                entry.out_dtype,
                (k,) if flat else (1, k),
                keep=(self.jit,),  # owns the machine code the function calls
                release_gil=self._work_per_row >= RELEASE_GIL_WORK,
                name=f"{entry.symbol}_row",
            )
        return self._python_one_row(flat)

    def _python_one_row(self, flat: bool):
        """The one-row path in Python: numpy's assignment casts into this thread's input buffer
        (any number type), ctypes calls `infer_single`, the output buffer is copied out."""
        entry, fn, tls = self._single, self._single_fn, self._tls
        n_in, k, symbol = entry.n_inputs, entry.n_outputs, entry.symbol
        shape2 = (1, n_in)

        def buffers():
            xin, xout = np.empty(n_in, entry.in_dtype), np.empty(k, entry.out_dtype)
            b = tls.bufs = (xin, xin.reshape(shape2), xout if flat else xout.reshape(1, k), _address(xin), _address(xout))
            return b

        def one(X):
            if type(X) is not np.ndarray:
                return None
            try:
                xin, xin2, xout, a_in, a_out = tls.bufs
            except AttributeError:
                xin, xin2, xout, a_in, a_out = buffers()
            if X.dtype.kind not in "fiub":
                return None
            if X.shape == shape2:
                xin2[...] = X  # what np.ascontiguousarray(X, dtype) does: an unsafe cast
            elif X.ndim == 1 and X.shape[0] == n_in:
                xin[...] = X
            else:
                return None
            rc = fn(a_in, a_out, None)
            if rc != OK:
                _check_status(rc, symbol)
            return xout.copy()

        return one

    def jacobian(self, Q, n_jobs: int | None = None) -> np.ndarray:
        """A URDF model's geometric Jacobian at configurations Q, in the base frame:
        (n, 6, n_joints), or (n, frames, 6, n_joints) with several frames."""
        from .frontends import urdf

        return urdf.jacobian(self, Q, n_jobs=n_jobs)

    def _run(self, entry: Export, X: np.ndarray, out: np.ndarray, n_jobs: int | None) -> None:
        fn = self.jit.function(entry.symbol)
        n = X.shape[0]
        threads = n_jobs if n_jobs is not None and n_jobs > 0 else _CPUS
        # only split when each thread gets enough work to pay for the hand-off
        threads = max(1, min(threads, n * self._work_per_row // MIN_WORK_PER_THREAD))
        if threads == 1 and n <= MAX_ROWS_PER_CALL:  # small batches: one call, nothing else
            _check_status(fn(_address(X), n, _address(out), None), entry.symbol)
            return
        block = self.lowered.block_rows
        per = -(-n // threads)
        per = min(-(-per // block) * block, MAX_ROWS_PER_CALL)
        chunks = [(s, min(n, s + per)) for s in range(0, n, per)]
        xp, op, row_in, row_out = _address(X), _address(out), X.strides[0], out.strides[0]

        def call(chunk):
            s, e = chunk
            return fn(xp + s * row_in, e - s, op + s * row_out, None)

        if len(chunks) == 1 or threads == 1:
            statuses = [call(c) for c in chunks]
        else:
            statuses = list(self._executor(threads).map(call, chunks))
        for rc in statuses:
            _check_status(rc, entry.symbol)

    def _executor(self, threads: int) -> ThreadPoolExecutor:
        """A pool of at least `threads` workers.  A smaller pool is replaced, never shut down: a
        call in another thread may be submitting to it right now (its workers exit once the last
        user drops it)."""
        with self._pool_lock:
            if self._pool is None or self._pool._max_workers < threads:
                self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="timber")
            return self._pool

    def _rows(self, X, entry: Export) -> np.ndarray:
        """X as a C-contiguous (n, n_features) array of the entry's input type."""
        dtype = entry.in_dtype
        if type(X) is np.ndarray:
            pass
        elif hasattr(X, "columns") and hasattr(X, "dtypes"):
            X = _from_dataframe(X, dtype)
        elif hasattr(X, "tocoo") and hasattr(X, "nnz"):
            X = _from_sparse(X, dtype)
        else:
            X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2:
            raise TimberError(f"expected a 2-D array of rows (or one 1-D row), got an array of shape {X.shape}")
        if X.shape[1] != entry.n_inputs:
            raise TimberError(f"expected {entry.n_inputs} features, got {X.shape[1]}")
        if X.dtype.kind not in "fiub":
            raise TimberError(f"expected numbers, got an array of {X.dtype}")
        return np.ascontiguousarray(X, dtype=dtype)

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


_CPUS = os.cpu_count() or 1  # read once: os.cpu_count() reads /sys on every call


def _no_row(X) -> None:
    """The one-row path of a model without `infer_single`: never taken."""
    return None


def _check_status(rc: int, symbol: str) -> None:
    """An entry point's status (the ABI's, `backends/common/abi.py`) as an error unless it is OK."""
    if rc != OK:
        raise TimberError(f"{symbol} returned status {rc} ({STATUS.get(rc, 'an unknown error')})")


def _address(a: np.ndarray) -> int:
    """The data address of a C-contiguous array (`a.ctypes.data` costs microseconds per call,
    which matters for one-row predictions)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError):  # read-only or empty arrays
        return a.ctypes.data


def _from_dataframe(df, dtype) -> np.ndarray:
    """Column by column, as XGBoost reads a DataFrame: numbers cast to the input type,
    categorical columns as their codes with missing (-1) as NaN.  All numpy float columns: one
    conversion of the whole frame (float32 -> float64 -> the input type is exact, so the values
    are the per-column casts'), 3-5x faster on 100 columns."""
    dts = list(df.dtypes)
    if dts and all(isinstance(d, np.dtype) and d.kind == "f" for d in dts):
        return np.ascontiguousarray(df.to_numpy(dtype=np.float64 if dtype == np.float64 else None), dtype=dtype)
    cols = []
    for name in df.columns:
        col = df[name]
        if str(col.dtype) == "category":
            codes = col.cat.codes.to_numpy()
            cols.append(np.where(codes < 0, np.nan, codes).astype(dtype))
            continue
        values = col.to_numpy()
        if values.dtype.kind not in "fiub":
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                raise TimberError(f"column '{name}' holds {col.dtype} values; expected numbers or a categorical column") from None
        cols.append(values.astype(dtype))
    if not cols:
        return np.zeros((len(df), 0), dtype)
    return np.column_stack(cols).astype(dtype, copy=False)


def _from_sparse(m, dtype) -> np.ndarray:
    """Dense rows with NaN where the sparse matrix has no entry (missing, as in a DMatrix)."""
    coo = m.tocoo()
    dense = np.full(coo.shape, np.nan, dtype)
    dense[coo.row, coo.col] = coo.data.astype(dtype)
    return dense


__all__ = ["CompiledModel", "compile"]
