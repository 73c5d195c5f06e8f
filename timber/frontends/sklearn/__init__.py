"""scikit-learn front-end: fitted estimators and pipelines, from pickle / joblib / skops files
or live objects, to a Timber module whose `@predict` returns what the estimator's own method
returns.

    module = load("model.pkl")                         # .pkl/.pickle, .joblib (compressed too), .skops
    module = load(estimator)                           # a fitted estimator, Pipeline, ColumnTransformer
    module = load("model.joblib", method="predict")    # or predict_proba, predict_log_proba,
                                                       # decision_function, score_samples, transform

Nothing in a file is executed: `unpickle.py` reads pickles with an unpickler that resolves only
scikit-learn classes (as inert `Obj` records), numpy arrays and dtypes, and a few builtins, and
refuses every other global by name.  Live estimators are reduced to the same records, so one
code path compiles both; scikit-learn itself is not needed to compile a pickle.  A skops file is
loaded by skops (when installed) trusting exactly the types skops reports as untrusted, and only
when each is on the unpickler's allowlist; the estimator then takes the live-estimator path.

Each estimator class has a converter (`registry.py`); every module of this package is imported
here so that its converters register themselves.  The module is

    func.func @predict(%x: tensor<Nxf64>) -> tensor<Kxf64>

with float64 outputs, as scikit-learn returns; a single output column is returned by
`CompiledModel.predict` as shape (n,), as scikit-learn returns a 1-D array then.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

import numpy as np

from ir.attributes import TypeAttr
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import arith, func
from ir.dialects.builtin import ModuleOp
from ir.types import FunctionType, TensorType, f32, f64
from ir.verifier import verify

from .registry import CONVERTERS, METHODS, ConvertError, Emit, Obj, convert, converts, supported

OPTIONS = ("method", "dtype")
DTYPES = ("float64", "float32")


def _import_converters() -> None:
    """Import every module of this package (each registers its converters)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("registry", "unpickle") and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_import_converters()


def n_features_of(est: Obj, source: str) -> int:
    """The width of the rows `est` takes (its `n_features_in_`, or a pipeline's first step's)."""
    for key in ("n_features_in_", "n_features_"):
        v = est.attr(key, None)
        if v is not None:
            try:
                n = int(v)
            except (TypeError, ValueError):
                break
            if n < 1:
                raise ConvertError(f"{est.name}.{key} is {n}", NameLoc(source, est.name))
            return n
    if est.name == "Pipeline":
        for step in est.attr("steps"):
            if isinstance(step, tuple) and len(step) == 2 and isinstance(step[1], Obj):
                return n_features_of(step[1], source)
    if est.name == "FeatureUnion":  # it stores none: its n_features_in_ is a property reading the first transformer's
        for entry in est.attr("transformer_list"):
            if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Obj):
                return n_features_of(entry[1], source)
    raise ConvertError(
        f"{est.name}.n_features_in_ is missing (is the estimator fitted?); cannot tell the input width", NameLoc(source, est.name)
    )


def _feature_names(est: Obj):
    """`feature_names_in_` (fitted on a DataFrame); a Pipeline stores none (its property reads
    the first step's): the first step's."""
    names = est.attr("feature_names_in_", None)
    if names is None and est.name == "Pipeline":
        steps = [s for s in est.attr("steps") if isinstance(s, tuple) and len(s) == 2]
        if steps and isinstance(steps[0][1], Obj):
            return _feature_names(steps[0][1])
    return names


def _transforms(est: Obj, method: str | None) -> bool:
    """Whether the compiled method is a `transform` (of the pipeline's last step)."""
    if method is not None:
        return method == "transform"
    while est.name == "Pipeline":
        steps = [s for s in est.attr("steps") if isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], Obj)]
        if not steps:
            return False
        est = steps[-1][1]
    conv = CONVERTERS.get(est.name)
    return conv is not None and conv.kind == "transformer"


def build_module(est: Obj, source: str, method: str | None, dtype: str = "float64") -> ModuleOp:
    """The verified module computing `method` of the record `est` on rows of `dtype`."""
    n = n_features_of(est, source)
    rows_f32 = dtype == "float32"
    x_t = TensorType((n,), f32 if rows_f32 else f64)
    fn = func.FuncOp.build("predict", [x_t], [x_t], arg_names=["x"])
    emit = Emit(fn.body, source, rows_f32=rows_f32)
    x = fn.args[0]
    if rows_f32:  # the float32 row, widened (exactly): converters compute on f64 values
        x = emit.op(arith.ExtFOp.build(x, TensorType((n,), f64), name="x64"))
        emit.f32.add(x)
    out = convert(emit, est, x, method)
    if emit.is32(out):  # scikit-learn returns float32 here
        out = emit.op(arith.TruncFOp.build(out, TensorType(out.type.shape, f32), name="out32"))
    fn.body.add_op(func.ReturnOp(operands=[out]))
    fn.attributes["function_type"] = TypeAttr(FunctionType((x_t,), (out.type,)))  # the width is known now
    attrs = {
        "timber.format": "sklearn",
        "timber.source": source,
        "timber.estimator": est.cls,
        "timber.method": method or "default",
    }
    if rows_f32:
        attrs["timber.dtype"] = "float32"
    if _transforms(est, method):
        attrs["timber.output_rank"] = 2  # transform() returns (n, k) even for k = 1
    version = est.attr("_sklearn_version", None)
    if isinstance(version, str):
        attrs["timber.sklearn_version"] = version
    names = _feature_names(est)
    if isinstance(names, np.ndarray) and len(names) == n and names.dtype.kind in "OU":
        attrs["timber.feature_names"] = [str(s) for s in names]
    module = ModuleOp.build(attrs)
    module.body.add_op(fn)
    verify(module)
    return module


def load(path_or_estimator, *, method: str | None = None, dtype: str = "float64", source_name: str | None = None, **unknown) -> ModuleOp:
    """Compile a fitted scikit-learn estimator (a pickle/joblib/skops file, its bytes, or the
    live object) to a verified module whose `@predict` is `estimator.<method>(X)`.

    `method`: "predict", "predict_proba", "predict_log_proba", "decision_function",
    "score_samples" or "transform"; None: classifiers `predict_proba` (`decision_function` when
    they have none), regressors `predict`, outlier detectors `decision_function`, transformers
    `transform`.

    `dtype`: the dtype of the rows the compiled model will be given ("float64", or "float32"
    for float32 data: scikit-learn then computes some steps in float32 and returns float32; the
    module takes float32 rows and does the same, see README).  Raises `TimberError` naming the
    file and construct for anything refused."""
    if unknown:
        raise TimberError(
            f"scikit-learn models take no option {', '.join(repr(k) for k in sorted(unknown))}; they take: {', '.join(OPTIONS)}"
        )
    if method is not None and method not in METHODS:
        raise TimberError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    dtype = str(getattr(dtype, "__name__", dtype))  # "float32", np.float32 or np.dtype("float32")
    if dtype not in DTYPES:
        raise TimberError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    from .unpickle import from_estimator, read_file

    if isinstance(path_or_estimator, (str, os.PathLike, bytes, bytearray)):
        est, source = read_file(path_or_estimator, source_name)
    else:
        source = source_name or "<estimator>"
        est = from_estimator(path_or_estimator, source)
    if not isinstance(est, Obj):
        what = f"a numpy array of shape {est.shape}" if isinstance(est, np.ndarray) else f"a {type(est).__name__}"
        raise TimberError(f"the file holds {what}, not a fitted scikit-learn estimator", NameLoc(source, ""))
    return build_module(est, source, method, dtype)


__all__ = ["CONVERTERS", "METHODS", "ConvertError", "Emit", "Obj", "converts", "load", "supported"]
