"""Composition: Pipeline, ColumnTransformer and FeatureUnion.

* `Pipeline`: every step but the last computes `transform` on the previous step's output;
  the last step computes the requested method (None: its default).  'passthrough' / None steps
  are skipped.  An error inside a step names the step's index and name.
* `ColumnTransformer`: each fitted transformer (`transformers_`, the remainder included)
  reads its columns (`_transformer_to_input_indices`, else the column spec: integers, slices,
  boolean masks, or names via `feature_names_in_`) and the outputs are joined in order;
  'drop' and transformers with no columns add nothing, 'passthrough' copies its columns.
* `FunctionTransformer`: no function (the identity; what a fitted ColumnTransformer holds for
  'passthrough'), or numpy's `log`, `log1p`, `exp` (the C library's, as numpy calls them).
* `FeatureUnion`: each transformer of `transformer_list` on the whole row, outputs joined
  (multiplied by `transformer_weights` when given).
"""

from __future__ import annotations

import numpy as np

from ir.diagnostics import TimberError
from ir.dialects import arith, math

from .linear import binop, concat, extract, unary
from .registry import CONVERTERS, METHODS, ConvertError, Emit, Obj, convert, converts


def _skipped(step) -> bool:
    return step is None or step == "passthrough"


def _step(emit: Emit, owner: str, label: str, est, x, method):
    """convert() one step; errors name the step ("Pipeline step 2 ('svc', SVC): ...")."""
    name = est.name if isinstance(est, Obj) else type(est).__name__
    with emit.at(label):
        try:
            return convert(emit, est, x, method)
        except TimberError as e:
            d = e.diagnostic
            if d.message.startswith(f"{owner} "):
                raise
            raise ConvertError(f"{owner} {label} ({name}): {d.message}", d.location, d.source_line, d.notes) from None


def _steps(emit: Emit, est: Obj) -> list[tuple[str, object]]:
    steps = est.attr("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, tuple) and len(s) == 2 for s in steps):
        emit.fail(est, "steps is not a non-empty list of (name, estimator) pairs")
    return steps


@converts("Pipeline", kind="meta", methods=METHODS)
def pipeline(emit: Emit, est: Obj, x, method):
    steps = _steps(emit, est)
    *head, (last_name, last) = steps
    for i, (name, step) in enumerate(head):
        if _skipped(step):
            continue
        conv = CONVERTERS.get(step.name) if isinstance(step, Obj) else None
        if conv is not None and conv.kind not in ("transformer", "meta"):
            emit.fail(
                est, f"step {i} ('{name}', {step.name}) is a {conv.kind}, but only the last step may be one; the others must transform"
            )
        x = _step(emit, "Pipeline", f"step {i} '{name}'", step, x, "transform")
    if _skipped(last):
        if method not in (None, "transform"):
            emit.fail(est, f"the last step is 'passthrough', which has no method '{method}'")
        return x
    return _step(emit, "Pipeline", f"step {len(steps) - 1} '{last_name}'", last, x, method)


def _take(emit: Emit, x, cols: list[int], name: str):
    """x[cols] as a new row (x itself when cols is every column in order)."""
    n = x.type.shape[0]
    if cols == list(range(n)):
        return x
    return concat(emit, [extract(emit, x, c, name=f"x{c}") for c in cols], name=name)


def _columns(emit: Emit, est: Obj, name: str, spec, n: int) -> list[int]:
    """The input column indices of one ColumnTransformer entry."""
    resolved = est.attr("_transformer_to_input_indices", None)
    if isinstance(resolved, dict) and name in resolved:
        cols = np.asarray(resolved[name]).reshape(-1)
    elif isinstance(spec, (int, np.integer)):
        cols = np.array([int(spec)])
    elif isinstance(spec, slice):
        cols = np.arange(n)[spec]
    elif isinstance(spec, str) or (isinstance(spec, (list, np.ndarray)) and len(spec) and isinstance(np.asarray(spec).reshape(-1)[0], str)):
        names = est.attr("feature_names_in_", None)
        if names is None:
            emit.fail(est, f"transformer '{name}' selects columns by name but the ColumnTransformer has no feature_names_in_")
        index = {str(s): i for i, s in enumerate(np.asarray(names).tolist())}
        wanted = [spec] if isinstance(spec, str) else [str(s) for s in np.asarray(spec).reshape(-1)]
        unknown = [w for w in wanted if w not in index]
        if unknown:
            emit.fail(est, f"transformer '{name}' selects unknown column {unknown[0]!r}")
        cols = np.array([index[w] for w in wanted])
    else:
        arr = np.asarray(spec)
        if arr.dtype == bool:
            if arr.shape != (n,):
                emit.fail(est, f"transformer '{name}' has a boolean column mask of shape {arr.shape} for {n} features")
            cols = np.flatnonzero(arr)
        elif arr.dtype.kind in "iu":
            cols = arr.reshape(-1)
        else:
            emit.fail(est, f"transformer '{name}' has a column specification Timber cannot read ({type(spec).__name__})")
    cols = cols.astype(np.int64)
    cols = np.where(cols < 0, cols + n, cols)
    if np.any((cols < 0) | (cols >= n)):
        emit.fail(est, f"transformer '{name}' selects columns outside the {n} inputs")
    return cols.tolist()


@converts("ColumnTransformer", kind="meta", methods=("transform",))
def column_transformer(emit: Emit, est: Obj, x, method):
    entries = est.attr("transformers_")
    if not isinstance(entries, list) or not all(isinstance(t, tuple) and len(t) == 3 for t in entries):
        emit.fail(est, "transformers_ is not the fitted list of (name, transformer, columns)")
    n = x.type.shape[0]
    if est.attr("sparse_output_", False):
        pass  # the values are the same; Timber returns them dense
    outs = []
    for name, trans, spec in entries:
        if isinstance(trans, str) and trans == "drop":
            continue
        cols = _columns(emit, est, name, spec, n)
        if not cols:
            continue
        sub = _take(emit, x, cols, f"{name}_in")
        if isinstance(trans, str) and trans == "passthrough":
            outs.append(sub)
            continue
        outs.append(_step(emit, "ColumnTransformer", f"transformer '{name}'", trans, sub, "transform"))
    if not outs:
        emit.fail(est, "every transformer is dropped or selects no columns: the output has no columns")
    return concat(emit, outs, name="columns")  # np.hstack: float32 when every part is


@converts("FeatureUnion", kind="meta", methods=("transform",))
def feature_union(emit: Emit, est: Obj, x, method):
    entries = est.attr("transformer_list")
    weights = est.attr("transformer_weights", None) or {}
    outs = []
    for name, trans in entries:
        if isinstance(trans, str) and trans == "drop" or trans is None:
            continue
        if isinstance(trans, str) and trans == "passthrough":
            out = x
        else:
            out = _step(emit, "FeatureUnion", f"transformer '{name}'", trans, x, "transform")
        if name in weights and weights[name] is not None:
            w = emit.const([float(weights[name])] * out.type.shape[0], f"{name}_weight")  # a Python number
            out = binop(emit, arith.MulFOp, out, w, name=f"{name}_weighted")
        outs.append(out)
    if not outs:
        emit.fail(est, "every transformer is dropped: the output has no columns")
    return concat(emit, outs, name="union")


_UFUNCS = {"numpy.log": math.LogOp, "numpy.log1p": math.Log1pOp, "numpy.exp": math.ExpOp}


@converts("FunctionTransformer", kind="transformer", methods=("transform",))
def function_transformer(emit: Emit, est: Obj, x, method):
    fn = est.attr("func", None)
    if fn is None:
        return x
    kw = est.attr("kw_args", None)
    if isinstance(fn, Obj) and fn.cls in _UFUNCS and not kw:
        return unary(emit, _UFUNCS[fn.cls], x, name=fn.cls.split(".")[1])
    what = fn.cls if isinstance(fn, Obj) else type(fn).__name__
    emit.fail(est, f"func {what} is not supported; supported: none (identity), {', '.join(_UFUNCS)}")
