"""ONNX-ML front-end: an ONNX model (file, bytes or `onnx.ModelProto`) to a verified Timber
module whose `@predict` returns what `onnxruntime.InferenceSession(path).run(...)` returns for
the chosen output, one thread (see `trees.py` and `ml.py` for each op's exact semantics).

    module = load("model.onnx")                        # a classifier's probabilities, else the first non-label output
    module = load("model.onnx", output="variable")     # an output by name
    module = load("model.onnx", n_features=20)         # inputs declared [N, None]

The graph's one input `[N, F]` (float or double) is the row; each node is converted in graph
order into `arith`/`math`/`linear`/`tree` ops located at the node (`model.onnx: node 3
'TreeEnsembleClassifier' (ai.onnx.ml.TreeEnsembleClassifier)`), so `timber-opt model.onnx
--print-ir-after-all` points at ONNX nodes.  ZipMap outputs compile as the probability tensor
they wrap; string labels cannot be an output (Timber's outputs are numbers).

Nothing in the file is executed; external-data tensors are refused.  Every problem is a
`TimberError` naming the file, the node (index, name, op type, domain) and what is supported.
"""

from __future__ import annotations

import os

from ir.attributes import StringAttr, TypeAttr
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import func
from ir.dialects.builtin import ModuleOp
from ir.types import FunctionType, TensorType, f32, f64
from ir.verifier import verify

from .builder import Builder, OnnxError, Val
from .ops import CONVERTERS, ML_DOMAIN, OPSET_LIMITS, supported

MAX_BYTES = 2**31 - 1  # protobuf's own limit


def _read(path_or_model, source_name):
    """(ModelProto, source name)."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise TimberError("reading ONNX models needs the 'onnx' package: pip install 'timber[onnx]' (or pip install onnx)") from None
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, source_name or "<onnx.ModelProto>"
    from ..files import read_bounded

    data, source = read_bounded(path_or_model, source_name, MAX_BYTES)
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as e:  # noqa: BLE001  (protobuf's DecodeError and friends)
        raise TimberError(f"{source} is not a valid ONNX file (protobuf: {e})", NameLoc(source, "")) from None
    if not model.HasField("graph"):
        raise TimberError(f"{source} is not a valid ONNX file: it has no graph", NameLoc(source, ""))
    return model, source


def _check_opsets(model, source):
    for imp in model.opset_import:
        domain = imp.domain or "ai.onnx"
        limit = OPSET_LIMITS.get(domain)
        if limit is None:
            continue  # a domain no node uses is harmless; nodes are checked one by one
        if imp.version > limit:
            raise TimberError(
                f"the model imports {domain} opset {imp.version}; this front-end knows {domain} up to opset {limit}",
                NameLoc(source, "opset_import"),
            )


def _shape(vi):
    t = vi.type
    if t.WhichOneof("value") != "tensor_type":
        return None, None
    tt = t.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else None
    return tt.elem_type, dims


MAX_EXTERNAL = 2**31  # bytes one external tensor may take


def _constant(tensor, source, what, base_dir=None):
    """An initializer as numpy.  External data is read only from a file beside the model (a
    plain relative name in the model's directory: no absolute path, no `..`), within its size."""
    from onnx import numpy_helper

    where = NameLoc(source, what)
    if tensor.data_location == 1 or len(tensor.external_data):
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        if base_dir is None:
            raise TimberError(
                f"{what} stores its data in an external file; load the model from its path so it can be found beside it", where
            )
        parts = loc.replace("\\", "/").split("/")
        if not loc or os.path.isabs(loc) or ".." in parts or ":" in loc:
            raise TimberError(
                f"{what} names external data '{loc}': only files beside the model (no absolute or parent paths) are read", where
            )
        path = os.path.join(base_dir, *parts)
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
            size = os.path.getsize(path)
            if (
                offset < 0
                or offset > size
                or length > size - offset
                or (length < 0 and size - offset > MAX_EXTERNAL)
                or length > MAX_EXTERNAL
            ):
                raise TimberError(f"{what}: external data range offset {offset} length {length} is outside '{loc}' ({size} bytes)", where)
            with open(path, "rb") as fh:
                fh.seek(offset)
                raw = fh.read(length if length >= 0 else size - offset)
        except OSError as e:
            raise TimberError(f"{what}: cannot read external data '{loc}': {e.strerror}", where) from None
        except ValueError:
            raise TimberError(f"{what}: malformed external data offset/length", where) from None
        t = type(tensor)()
        t.CopyFrom(tensor)
        t.data_location = 0
        del t.external_data[:]
        t.raw_data = raw
        tensor = t
    try:
        return numpy_helper.to_array(tensor)
    except Exception as e:  # noqa: BLE001
        raise TimberError(f"{what} is a malformed tensor ({e})", where) from None


def load(path_or_model, *, output: str | None = None, n_features: int | None = None, source_name: str | None = None) -> ModuleOp:
    """Compile an ONNX model to a verified module.  `output`: the graph output `@predict`
    returns (default: a classifier's probabilities, else the first output that is not a
    label); `n_features`: the row width when the input declares none."""
    model, source = _read(path_or_model, source_name)
    base_dir = os.path.dirname(os.path.abspath(os.fspath(path_or_model))) if isinstance(path_or_model, (str, os.PathLike)) else None
    _check_opsets(model, source)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in inits]
    where = NameLoc(source, "graph.input")
    if len(inputs) != 1:
        names = ", ".join(vi.name for vi in inputs) or "none"
        raise TimberError(f"the graph has {len(inputs)} inputs ({names}); Timber compiles graphs with one input row", where)
    inp = inputs[0]
    elem, dims = _shape(inp)
    from onnx import TensorProto

    types = {TensorProto.FLOAT: f32, TensorProto.DOUBLE: f64}
    if elem not in types:
        raise TimberError(
            f"input '{inp.name}' is not a float or double tensor (ONNX type {elem}); Timber compiles float and double inputs", where
        )
    if dims is not None and len(dims) not in (1, 2):
        raise TimberError(f"input '{inp.name}' has {len(dims)} dimensions; expected [N, F]", where)
    width = dims[-1] if dims else None
    if n_features is not None:
        if width is not None and width != n_features:
            raise TimberError(f"n_features={n_features} but input '{inp.name}' declares {width} features", where)
        width = n_features
    if width is None or width < 1:
        raise TimberError(
            f"input '{inp.name}' has no fixed feature count (shape {dims}); give it: timber.compile(path, n_features=F) / -O n_features=F",
            where,
        )
    if width > 10_000_000:
        raise TimberError(f"input '{inp.name}' has {width} features; at most 10000000 are supported", where)
    x_t = TensorType((width,), types[elem])
    fn = func.FuncOp.build("predict", [x_t], [x_t], arg_names=["x"])
    b = Builder(fn.body, source)
    env: dict[str, Val] = {inp.name: Val(row=fn.args[0])}
    for name, t in inits.items():
        env[name] = Val(const=_constant(t, source, f"initializer '{name}'", base_dir))
    opsets = {(imp.domain or "ai.onnx"): imp.version for imp in model.opset_import}
    produced_by: dict[str, int] = {}
    for idx, node in enumerate(g.node):
        domain = node.domain or "ai.onnx"
        b.where = f"node {idx} '{node.name or node.op_type}' ({domain}.{node.op_type})"
        conv = CONVERTERS.get((domain, node.op_type))
        if conv is None:
            raise OnnxError(
                f"op {node.op_type} of domain {domain} (opset {opsets.get(domain, '?')}) is not supported; supported: {supported()}",
                b.loc(),
            )
        args = []
        for name in node.input:
            if name == "":
                args.append(None)
                continue
            if name not in env:
                b.fail(f"input '{name}' is not produced by an earlier node (nodes must be in topological order)")
            args.append(env[name])
        first_new = len(fn.body.ops)
        if any(a is not None and a.row is None and a.const is None for a in args):
            outs = [Val() for _ in node.output]  # computed from a label (not compiled): a label too
        else:
            outs = conv(b, node, args, opsets.get(domain, 1))
        new = {id(r) for op in fn.body.ops[first_new:] for r in op.results}
        for name, v in zip(node.output, outs):
            if name:
                env[name] = v
                produced_by[name] = idx
                if v.row is not None and id(v.row) in new:
                    v.row.name_hint = _hint(name)  # IR dumps name the ONNX tensor
    result, chosen = _output(b, g, env, output, source)
    fn.body.add_op(func.ReturnOp(operands=[result]))
    fn.attributes["function_type"] = TypeAttr(FunctionType((x_t,), (result.type,)))
    attrs = {
        "timber.format": "onnx",
        "timber.source": source,
        "timber.output": chosen,
    }
    if model.producer_name:
        attrs["timber.producer"] = f"{model.producer_name} {model.producer_version}".strip()
    module = ModuleOp.build({k: StringAttr(v) if isinstance(v, str) else v for k, v in attrs.items()})
    module.body.add_op(fn)
    verify(module)
    return module


def _hint(name: str) -> str:
    """An SSA name hint from an ONNX tensor name (letters, digits, `_ $ .`; not starting with a digit)."""
    h = "".join(c if c.isalnum() or c in "_$." else "_" for c in name)
    return h if h and (h[0].isalpha() or h[0] == "_") else "_" + h


def _output(b: Builder, g, env, output, source):
    where = NameLoc(source, "graph.output")
    names = [o.name for o in g.output]
    if output is not None:
        if output not in names:
            raise TimberError(f"the graph has no output '{output}'; its outputs: {', '.join(names)}", where)
        chosen = output
    else:
        probs = [n for n in names if n in env and env[n].zipmap]
        numeric = [n for n in names if n in env and env[n].row is not None and not env[n].label and env[n].row.type.element in (f32, f64)]
        prob_like = [n for n in numeric if "prob" in n.lower()]
        chosen = (probs or prob_like or numeric or [None])[0]
        if chosen is None:
            raise TimberError(f"no output of the graph is a numeric tensor Timber can return ({', '.join(names)})", where)
    v = env.get(chosen)
    if v is None or v.row is None:
        raise TimberError(f"output '{chosen}' is not computed from the input row (a constant or a string label?)", where)
    if v.row.type.element not in (f32, f64):
        raise TimberError(
            f"output '{chosen}' holds {v.row.type.element} values; Timber returns float outputs (probabilities, scores)", where
        )
    return v.row, chosen


__all__ = ["CONVERTERS", "ML_DOMAIN", "load", "supported"]
