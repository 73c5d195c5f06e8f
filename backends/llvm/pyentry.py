"""A CPython function for one-row prediction, written in LLVM IR and JIT-compiled once per process.

`one_row_function(...)` returns a builtin function `one(X)` that does in machine code what
`CompiledModel.predict` does for the common single row.  It takes X when X is exactly a
`numpy.ndarray` of shape (n,) or (1, n) whose dtype is the builtin float32 or float64 (any
strides, any alignment), or exactly a list of n exact floats, or a list holding one such list
(numpy reads both as float64).  The row is converted to the model's input type as numpy casts
(`fpext` / `fptrunc`: round to nearest, NaN stays NaN, -0.0 stays -0.0) into a stack buffer (a
contiguous row of the input type is passed as it is), the model's `infer_single` runs on it,
and the result is a new C-contiguous array of the output dtype, shape (k,) or (1, k).  For
anything else `one` returns None and touches nothing, so the caller's general path (with its
conversions and error messages) decides; so it does too for a row whose cast numpy would report
(overflow, underflow, a signalling NaN: a warning or an error under `np.errstate`) and when
`infer_single` returns a status other than OK.

Why not ctypes: a ctypes call converts its arguments and releases and re-takes the GIL (~0.7 µs
on Zen 3), `.ctypes.data`/numpy assignment and a copy of the output add ~1 µs more; this
function costs ~0.1 µs around the model's own work.

How it reads arrays: through numpy's public struct `PyArrayObject_fields` (data, nd, dimensions,
strides, descr), as every compiled numpy extension does, and makes the result with numpy's C API
table (`_ARRAY_API`, `PyArray_NewFromDescr`).  The offsets are checked on live arrays before
the function is built (`_layout`); on an interpreter or numpy where they do not hold (or a 32-bit
one), `available()` says why and the caller keeps its Python path.  numpy's buffer protocol
would be the documented route, but on a new array it allocates its buffer info (~150 ns), as
much as the rest of the call.

Lifetime: the builtin's `self` is a capsule holding the per-model context (the entry point's
address, sizes, dtypes); the capsule's context is a tuple owning everything the call needs (the
ctypes context and method definition, and whatever the caller passes as `keep`, e.g. the JIT
engine that owns the model's code), released by the capsule's destructor.  So the function stays
valid for as long as anyone holds it.  The function keeps no state between calls and is as
thread-safe as `infer_single` (reentrant, ABI).
"""

from __future__ import annotations

import ctypes
import struct
import sys
import sysconfig
import threading

import llvmlite.binding as llvm
import numpy as np

# Rows wider than this are converted on the stack only up to this many elements (8 bytes each);
# wider rows that need a conversion are left to the caller.
MAX_STACK_ELEMENTS = 4096
METH_O = 0x0008

# Python C API functions the generated code calls (resolved to this interpreter's addresses).
_PY_SYMBOLS = ("PyCapsule_GetPointer", "PyCapsule_GetContext", "Py_IncRef", "Py_DecRef", "PyEval_SaveThread", "PyEval_RestoreThread")


class _Context(ctypes.Structure):
    """What one model's `one(X)` needs; `%ctx` in the IR below has the same layout."""

    _fields_ = [
        ("single", ctypes.c_void_p),  # int infer_single(const in*, out*, const void*)
        ("n_in", ctypes.c_int64),
        ("in_f64", ctypes.c_int64),  # the model reads float64 (else float32)
        ("out_descr", ctypes.c_void_p),  # PyArray_Descr* of the result
        ("out_nd", ctypes.c_int64),
        ("out_dims", ctypes.c_int64 * 2),
        ("f32_descr", ctypes.c_void_p),  # numpy's builtin float32 / float64 descriptors
        ("f64_descr", ctypes.c_void_p),
        ("ndarray", ctypes.c_void_p),  # &PyArray_Type
        ("new_from_descr", ctypes.c_void_p),  # PyArray_NewFromDescr
        ("release_gil", ctypes.c_int64),
        ("none", ctypes.c_void_p),  # Py_None
        ("list", ctypes.c_void_p),  # &PyList_Type
        ("float", ctypes.c_void_p),  # &PyFloat_Type
    ]


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p), ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_IR = """
%ctx = type {{ ptr, i64, i64, ptr, i64, [2 x i64], ptr, ptr, ptr, ptr, i64, ptr, ptr, ptr }}

declare ptr @PyCapsule_GetPointer(ptr, ptr)
declare ptr @PyCapsule_GetContext(ptr)
declare void @Py_IncRef(ptr)
declare void @Py_DecRef(ptr)
declare ptr @PyEval_SaveThread()
declare void @PyEval_RestoreThread(ptr)
declare float @llvm.fabs.f32(float)
declare double @llvm.fabs.f64(double)

; The capsule's destructor: drop the tuple that keeps the model's code and context alive.
define void @timber_pyentry_release(ptr %capsule) {{
entry:
  %keep = call ptr @PyCapsule_GetContext(ptr %capsule)
  call void @Py_DecRef(ptr %keep)
  ret void
}}

; one(X): METH_O, self is the capsule of a %ctx.  Returns a new array, NULL with an exception
; set (only if numpy cannot allocate the result), or None: "not a row this function takes".
define ptr @timber_pyentry_one_row(ptr %self, ptr %x) {{
entry:
  %ctx = call ptr @PyCapsule_GetPointer(ptr %self, ptr null)
  %ndarray.p = getelementptr %ctx, ptr %ctx, i32 0, i32 8
  %ndarray = load ptr, ptr %ndarray.p
  %type.p = getelementptr i8, ptr %x, i64 {ob_type}
  %type = load ptr, ptr %type.p
  %is_array = icmp eq ptr %type, %ndarray
  br i1 %is_array, label %array, label %not_array

not_array:
  %list_type.p = getelementptr %ctx, ptr %ctx, i32 0, i32 12
  %list_type = load ptr, ptr %list_type.p
  %is_list = icmp eq ptr %type, %list_type
  %n_in.l.p = getelementptr %ctx, ptr %ctx, i32 0, i32 1
  %n_in.l = load i64, ptr %n_in.l.p
  %in_f64.l.p = getelementptr %ctx, ptr %ctx, i32 0, i32 2
  %in_f64.l = load i64, ptr %in_f64.l.p
  %want64.l = icmp ne i64 %in_f64.l, 0
  br i1 %is_list, label %list, label %fallback

; A list of exact floats, or a list holding one such list: numpy reads it as float64 values.
list:
  %size.p = getelementptr i8, ptr %x, i64 {list_size}
  %size = load i64, ptr %size.p
  %items.p = getelementptr i8, ptr %x, i64 {list_items}
  %items = load ptr, ptr %items.p
  %size_one = icmp eq i64 %size, 1
  br i1 %size_one, label %list.first, label %list.flat

list.first:
  %first = load ptr, ptr %items
  %first_type.p = getelementptr i8, ptr %first, i64 {ob_type}
  %first_type = load ptr, ptr %first_type.p
  %nested = icmp eq ptr %first_type, %list_type
  br i1 %nested, label %list.nested, label %list.flat

list.nested:
  %size.in.p = getelementptr i8, ptr %first, i64 {list_size}
  %size.in = load i64, ptr %size.in.p
  %items.in.p = getelementptr i8, ptr %first, i64 {list_items}
  %items.in = load ptr, ptr %items.in.p
  br label %list.flat

list.flat:
  %row_size = phi i64 [ %size, %list ], [ %size, %list.first ], [ %size.in, %list.nested ]
  %row = phi ptr [ %items, %list ], [ %items, %list.first ], [ %items.in, %list.nested ]
  %row_ok = icmp eq i64 %row_size, %n_in.l
  %row_fits = icmp ule i64 %row_size, {max_stack}
  %row_take = and i1 %row_ok, %row_fits
  br i1 %row_take, label %list.buffer, label %fallback

list.buffer:
  %lbuf = alloca double, i64 %row_size, align 16
  %float_type.p = getelementptr %ctx, ptr %ctx, i32 0, i32 13
  %float_type = load ptr, ptr %float_type.p
  br i1 %want64.l, label %items.d, label %items.f
{list_loops}
array:
  %nd.p = getelementptr i8, ptr %x, i64 {nd}
  %nd = load i32, ptr %nd.p
  %dims.p = getelementptr i8, ptr %x, i64 {dims}
  %dims = load ptr, ptr %dims.p
  %strides.p = getelementptr i8, ptr %x, i64 {strides}
  %strides = load ptr, ptr %strides.p
  switch i32 %nd, label %fallback [ i32 1, label %rank1
                                    i32 2, label %rank2 ]

rank1:
  %n1 = load i64, ptr %dims
  %s1 = load i64, ptr %strides
  br label %shape

rank2:
  %rows = load i64, ptr %dims
  %one_row = icmp eq i64 %rows, 1
  br i1 %one_row, label %rank2.row, label %fallback

rank2.row:
  %n2.p = getelementptr i64, ptr %dims, i64 1
  %n2 = load i64, ptr %n2.p
  %s2.p = getelementptr i64, ptr %strides, i64 1
  %s2 = load i64, ptr %s2.p
  br label %shape

shape:
  %n = phi i64 [ %n1, %rank1 ], [ %n2, %rank2.row ]
  %stride = phi i64 [ %s1, %rank1 ], [ %s2, %rank2.row ]
  %n_in.p = getelementptr %ctx, ptr %ctx, i32 0, i32 1
  %n_in = load i64, ptr %n_in.p
  %n_ok = icmp eq i64 %n, %n_in
  br i1 %n_ok, label %dtype, label %fallback

dtype:
  %descr.p = getelementptr i8, ptr %x, i64 {descr}
  %descr = load ptr, ptr %descr.p
  %f32.p = getelementptr %ctx, ptr %ctx, i32 0, i32 6
  %f32 = load ptr, ptr %f32.p
  %f64.p = getelementptr %ctx, ptr %ctx, i32 0, i32 7
  %f64 = load ptr, ptr %f64.p
  %is32 = icmp eq ptr %descr, %f32
  %is64 = icmp eq ptr %descr, %f64
  %is_float = or i1 %is32, %is64
  br i1 %is_float, label %typed, label %fallback

typed:
  %data.p = getelementptr i8, ptr %x, i64 {data}
  %data = load ptr, ptr %data.p
  %in_f64.p = getelementptr %ctx, ptr %ctx, i32 0, i32 2
  %in_f64 = load i64, ptr %in_f64.p
  %want64 = icmp ne i64 %in_f64, 0
  %same = icmp eq i1 %is64, %want64
  %itemsize = select i1 %is64, i64 8, i64 4
  %contiguous = icmp eq i64 %stride, %itemsize
  %address = ptrtoint ptr %data to i64
  %mask = sub i64 %itemsize, 1
  %misaligned = and i64 %address, %mask
  %aligned = icmp eq i64 %misaligned, 0
  %direct.0 = and i1 %same, %contiguous
  %direct = and i1 %direct.0, %aligned
  br i1 %direct, label %run, label %convert

convert:
  %fits = icmp ule i64 %n, {max_stack}
  br i1 %fits, label %buffer, label %fallback

buffer:
  %buf = alloca double, i64 %n, align 16
  br i1 %want64, label %to64, label %to32

to64:
  br i1 %is64, label %loop.d.d, label %loop.f.d
to32:
  br i1 %is64, label %loop.d.f, label %loop.f.f
{loops}
run:
  %in = phi ptr [ %data, %typed ], [ %buf, %done.d.d ], [ %buf, %done.f.d ], [ %buf, %done.d.f ], [ %buf, %done.f.f ], [ %lbuf, %items.done.d ], [ %lbuf, %items.done.f ]
  %out_descr.p = getelementptr %ctx, ptr %ctx, i32 0, i32 3
  %out_descr = load ptr, ptr %out_descr.p
  call void @Py_IncRef(ptr %out_descr)  ; PyArray_NewFromDescr steals a reference, even on failure
  %out_nd.p = getelementptr %ctx, ptr %ctx, i32 0, i32 4
  %out_nd.64 = load i64, ptr %out_nd.p
  %out_nd = trunc i64 %out_nd.64 to i32
  %out_dims = getelementptr %ctx, ptr %ctx, i32 0, i32 5
  %new.p = getelementptr %ctx, ptr %ctx, i32 0, i32 9
  %new = load ptr, ptr %new.p
  %out = call ptr %new(ptr %ndarray, ptr %out_descr, i32 %out_nd, ptr %out_dims, ptr null, ptr null, i32 0, ptr null)
  %failed = icmp eq ptr %out, null
  br i1 %failed, label %error, label %allocated

error:
  ret ptr null

allocated:
  %out_data.p = getelementptr i8, ptr %out, i64 {data}
  %out_data = load ptr, ptr %out_data.p
  %single.p = getelementptr %ctx, ptr %ctx, i32 0, i32 0
  %single = load ptr, ptr %single.p
  %release.p = getelementptr %ctx, ptr %ctx, i32 0, i32 10
  %release = load i64, ptr %release.p
  %unlocked = icmp ne i64 %release, 0
  br i1 %unlocked, label %call.nogil, label %call.gil

call.gil:
  %rc.gil = call i32 %single(ptr %in, ptr %out_data, ptr null)
  br label %called

call.nogil:
  %state = call ptr @PyEval_SaveThread()
  %rc.nogil = call i32 %single(ptr %in, ptr %out_data, ptr null)
  call void @PyEval_RestoreThread(ptr %state)
  br label %called

called:
  %rc = phi i32 [ %rc.gil, %call.gil ], [ %rc.nogil, %call.nogil ]
  %ok = icmp eq i32 %rc, 0
  br i1 %ok, label %done, label %bad_status

done:
  ret ptr %out

bad_status:                               ; the general path calls again and reports the status
  call void @Py_DecRef(ptr %out)
  br label %fallback

fallback:
  %none.p = getelementptr %ctx, ptr %ctx, i32 0, i32 11
  %none = load ptr, ptr %none.p
  call void @Py_IncRef(ptr %none)
  ret ptr %none
}}
"""

# Every converting loop also tracks whether numpy's cast would raise a floating-point flag it
# reports (np.errstate: "overflow/underflow/invalid value encountered in cast", a warning or an
# error): such rows go to the caller, so that numpy reports it exactly as before.
_LOOP = """
loop.{s}.{d}:
  %i.{s}.{d} = phi i64 [ 0, %{entry} ], [ %next.{s}.{d}, %body.{s}.{d} ]
  %over.{s}.{d} = phi i1 [ false, %{entry} ], [ %over.{s}.{d}.next, %body.{s}.{d} ]
  %more.{s}.{d} = icmp ult i64 %i.{s}.{d}, %n
  br i1 %more.{s}.{d}, label %body.{s}.{d}, label %done.{s}.{d}

body.{s}.{d}:
  %off.{s}.{d} = mul i64 %i.{s}.{d}, %stride
  %src.{s}.{d} = getelementptr i8, ptr %data, i64 %off.{s}.{d}
  %v.{s}.{d} = load {st}, ptr %src.{s}.{d}, align 1
  {cast}
  %dst.{s}.{d} = getelementptr {dt}, ptr %buf, i64 %i.{s}.{d}
  store {dt} %w.{s}.{d}, ptr %dst.{s}.{d}
  %next.{s}.{d} = add i64 %i.{s}.{d}, 1
  br label %loop.{s}.{d}

done.{s}.{d}:
  br i1 %over.{s}.{d}, label %fallback, label %run
"""

_LIST_LOOP = """
items.{d}:
  %j.{d} = phi i64 [ 0, %list.buffer ], [ %j.next.{d}, %item.store.{d} ]
  %over.{d} = phi i1 [ false, %list.buffer ], [ %over.{d}.next, %item.store.{d} ]
  %more.j.{d} = icmp ult i64 %j.{d}, %row_size
  br i1 %more.j.{d}, label %item.check.{d}, label %items.done.{d}

item.check.{d}:
  %item.p.{d} = getelementptr ptr, ptr %row, i64 %j.{d}
  %item.{d} = load ptr, ptr %item.p.{d}
  %item_type.p.{d} = getelementptr i8, ptr %item.{d}, i64 {ob_type}
  %item_type.{d} = load ptr, ptr %item_type.p.{d}
  %is_float.{d} = icmp eq ptr %item_type.{d}, %float_type
  br i1 %is_float.{d}, label %item.store.{d}, label %fallback

item.store.{d}:
  %value.p.{d} = getelementptr i8, ptr %item.{d}, i64 {float_value}
  %value.{d} = load double, ptr %value.p.{d}
  {cast}
  %slot.{d} = getelementptr {dt}, ptr %lbuf, i64 %j.{d}
  store {dt} %value.w.{d}, ptr %slot.{d}
  %j.next.{d} = add i64 %j.{d}, 1
  br label %items.{d}

items.done.{d}:
  br i1 %over.{d}, label %fallback, label %run
"""

_INF = "0x7FF0000000000000"  # +inf, in LLVM's hex syntax for float and double alike
_FLT_MIN = "0x3810000000000000"  # 2^-126, the smallest normal float


def _cast(v: str, w: str, flag: str, st: str, dt: str) -> str:
    """`w = v` converted from `st` to `dt`, and `flag.next = flag or (numpy's cast of v would
    report a floating-point exception)`: overflow (a finite double becomes an infinite float),
    underflow (an inexact result below 2^-126; numpy's `under` is ignored by default, but a
    caller may have set it) or invalid (a signalling NaN, quieted by the conversion)."""
    lines = []
    if st == dt:
        lines += [f"{w} = bitcast {st} {v} to {dt}", f"{flag}.next = or i1 {flag}, false"]
    elif dt == "double":
        lines += [
            f"{w} = fpext float {v} to double",
            f"{v}.bits = bitcast float {v} to i32",
            f"{v}.top = and i32 {v}.bits, {0x7FC00000}",  # exponent and quiet bit
            f"{v}.snan = icmp eq i32 {v}.top, {0x7F800000}",
            f"{v}.nan = fcmp uno float {v}, {v}",
            f"{w}.invalid = and i1 {v}.snan, {v}.nan",
            f"{flag}.next = or i1 {flag}, {w}.invalid",
        ]
    else:
        lines += [
            f"{w} = fptrunc double {v} to float",
            f"{w}.abs = call float @llvm.fabs.f32(float {w})",
            f"{v}.abs = call double @llvm.fabs.f64(double {v})",
            f"{w}.inf = fcmp oeq float {w}.abs, {_INF}",
            f"{v}.finite = fcmp olt double {v}.abs, {_INF}",
            f"{w}.over = and i1 {w}.inf, {v}.finite",
            f"{v}.tiny = fcmp olt double {v}.abs, {_FLT_MIN}",
            f"{w}.back = fpext float {w} to double",
            f"{w}.inexact = fcmp une double {w}.back, {v}",
            f"{w}.under = and i1 {v}.tiny, {w}.inexact",
            f"{v}.bits = bitcast double {v} to i64",
            f"{v}.top = and i64 {v}.bits, {0x7FF8000000000000}",
            f"{v}.snan = icmp eq i64 {v}.top, {0x7FF0000000000000}",
            f"{v}.nan = fcmp uno double {v}, {v}",
            f"{w}.invalid = and i1 {v}.snan, {v}.nan",
            f"{w}.e1 = or i1 {w}.over, {w}.under",
            f"{w}.e2 = or i1 {w}.e1, {w}.invalid",
            f"{flag}.next = or i1 {flag}, {w}.e2",
        ]
    return "\n  ".join(lines)


def _list_loops(layout: dict[str, int]) -> str:
    """The two loops reading a list's floats into a double or a float buffer."""
    return "".join(
        _LIST_LOOP.format(d=d, dt=dt, cast=_cast(f"%value.{d}", f"%value.w.{d}", f"%over.{d}", "double", dt), **layout)
        for d, dt in (("d", "double"), ("f", "float"))
    )


def _loops() -> str:
    """The four copy loops (source float/double × destination float/double), strided reads."""
    out = []
    for s, d in (("d", "d"), ("f", "d"), ("d", "f"), ("f", "f")):
        st, dt = {"d": "double", "f": "float"}[s], {"d": "double", "f": "float"}[d]
        cast = _cast(f"%v.{s}.{d}", f"%w.{s}.{d}", f"%over.{s}.{d}", st, dt)
        entry = "to64" if d == "d" else "to32"
        out.append(_LOOP.format(s=s, d=d, st=st, dt=dt, cast=cast, entry=entry))
    return "".join(out)


# ----- checking the layouts this code relies on ------------------------------------------------


def _layout() -> dict[str, int] | str:
    """Byte offsets of `ob_type` and of numpy's array fields, checked on live arrays; or the
    reason they cannot be used."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return "a 64-bit interpreter is needed"
    if sys.implementation.name != "cpython":
        return f"CPython is needed, this is {sys.implementation.name}"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "a free-threaded interpreter (the entry reads lists without locking them)"
    head = object.__basicsize__
    off = {"ob_type": head - 8, "data": head, "nd": head + 8, "dims": head + 16, "strides": head + 24, "descr": head + 40}
    # PyListObject: ob_size, then ob_item; PyFloatObject: ob_fval (PyList_GET_ITEM, PyFloat_AS_DOUBLE)
    off.update(list_size=head, list_items=head + 8, float_value=head)
    if np.ndarray.__basicsize__ < head + 48:
        return "numpy's array struct is smaller than PyArrayObject_fields"

    def word(obj, offset: int) -> int:
        return ctypes.c_uint64.from_address(id(obj) + offset).value

    probes = [np.zeros((3, 5))[:, ::2], np.arange(7, dtype=np.float32), np.empty((1, 4), np.float64, order="F")]
    for a in probes:
        # pointer-sized fields first; the shape and strides arrays are read only once these hold
        if word(a, off["ob_type"]) != id(np.ndarray) or word(a, off["descr"]) != id(a.dtype):
            return "numpy arrays do not have the expected layout (ob_type, descr)"
        if word(a, off["data"]) != a.__array_interface__["data"][0] or ctypes.c_int32.from_address(id(a) + off["nd"]).value != a.ndim:
            return "numpy arrays do not have the expected layout (data, nd)"
        dims, strides = word(a, off["dims"]), word(a, off["strides"])
        if not dims or not strides:
            return "numpy arrays do not have the expected layout (dimensions, strides)"
        if tuple((ctypes.c_int64 * a.ndim).from_address(dims)) != a.shape:
            return "numpy arrays do not have the expected layout (dimensions)"
        if tuple((ctypes.c_int64 * a.ndim).from_address(strides)) != a.strides:
            return "numpy arrays do not have the expected layout (strides)"
    row = [0.25, -0.0, float("nan"), 1e300]
    if word(row, off["ob_type"]) != id(list) or word(row, off["list_size"]) != len(row):
        return "lists do not have the expected layout (ob_type, ob_size)"
    items = word(row, off["list_items"])
    if not items or tuple((ctypes.c_uint64 * len(row)).from_address(items)) != tuple(map(id, row)):
        return "lists do not have the expected layout (ob_item)"
    for v in row:
        if word(v, off["ob_type"]) != id(float) or word(v, off["float_value"]) != struct.unpack("<Q", struct.pack("<d", v))[0]:
            return "floats do not have the expected layout (ob_fval)"
    return off


def _array_api() -> ctypes.Array | str:
    """numpy's C API table (what `import_array()` reads), checked against two entries."""
    try:
        from numpy._core import _multiarray_umath as mu
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as mu
    capsule = getattr(mu, "_ARRAY_API", None)
    if capsule is None:
        return "numpy exports no _ARRAY_API"
    table = _capsule_get_pointer(capsule, None)
    if not table:
        return "numpy's _ARRAY_API is empty"
    api = (ctypes.c_void_p * 100).from_address(table)
    # PyArray_Type is entry 2 and PyArrayDescr_Type entry 3 in every numpy release (numpy_api.py)
    if api[2] != id(np.ndarray) or api[3] != id(np.dtype):
        return "numpy's C API table does not have the expected entries"
    return api


class _Entry:
    """The process's compiled entry code (one MCJIT engine, kept for the life of the process)."""

    def __init__(self, layout: dict[str, int], api):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        for name in _PY_SYMBOLS:
            llvm.add_symbol(name, ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value)
        text = _IR.format(loops=_loops(), list_loops=_list_loops(layout), max_stack=MAX_STACK_ELEMENTS, **layout)
        mod = llvm.parse_assembly(text)
        mod.verify()
        tm = llvm.Target.from_default_triple().create_target_machine(opt=2, jit=True)
        self.engine = llvm.create_mcjit_compiler(mod, tm)
        self.engine.finalize_object()
        self.one_row = self.engine.get_function_address("timber_pyentry_one_row")
        self.release = self.engine.get_function_address("timber_pyentry_release")
        self.new_from_descr = api[94]  # PyArray_NewFromDescr
        self.text = text


_ENTRY: _Entry | str | None = None
_ENTRY_LOCK = threading.Lock()


def _entry() -> _Entry | str:
    global _ENTRY
    with _ENTRY_LOCK:
        if _ENTRY is None:
            layout = _layout()
            api = _array_api() if isinstance(layout, dict) else layout
            _ENTRY = _Entry(layout, api) if not isinstance(api, str) else api
        return _ENTRY


def available() -> str | None:
    """None if `one_row_function` works in this process, else why not."""
    e = _entry()
    return e if isinstance(e, str) else None


def entry_ir() -> str:
    """The LLVM IR of the entry code (for debugging and tests)."""
    e = _entry()
    if isinstance(e, str):
        raise RuntimeError(e)
    return e.text


# ----- building one model's function -----------------------------------------------------------


def _c_api(name: str, restype, *argtypes):
    """A C API function of this interpreter with its own prototype (setting `restype` on
    `ctypes.pythonapi.<name>` would change it for everyone else in the process)."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


_capsule_get_pointer = _c_api("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)
# a `py_object` result is a new reference that ctypes takes over (no extra count)
_capsule_new = _c_api("PyCapsule_New", ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
_capsule_set_context = _c_api("PyCapsule_SetContext", ctypes.c_int, ctypes.py_object, ctypes.c_void_p)
_cfunction_new = _c_api("PyCFunction_NewEx", ctypes.py_object, ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p)
_incref = _c_api("Py_IncRef", None, ctypes.py_object)
_decref = _c_api("Py_DecRef", None, ctypes.py_object)


def one_row_function(
    single_address: int,
    n_inputs: int,
    in_dtype,
    out_dtype,
    out_shape: tuple[int, ...],
    *,
    keep: tuple = (),
    release_gil: bool = False,
    name: str = "one_row",
):
    """`one(X)` (see the module docstring) for an entry point `int infer_single(const in*, out*,
    const void*)` at `single_address` reading `n_inputs` values of `in_dtype` (float32 or
    float64) and writing `out_shape` (`(k,)` or `(1, k)`) values of `out_dtype`.  `keep`: objects
    that must live as long as the function (the JIT engine owning the entry point).
    `release_gil`: run the model with the GIL released (for rows that take long).  Raises
    `RuntimeError` if `available()` is not None, `ValueError` for arguments it does not take."""
    e = _entry()
    if isinstance(e, str):
        raise RuntimeError(e)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype)
    if in_dtype not in (np.float32, np.float64) or in_dtype.byteorder not in "=|":
        raise ValueError(f"inputs of {in_dtype} are not supported (float32 or float64)")
    if not single_address or n_inputs < 1 or len(out_shape) not in (1, 2) or (len(out_shape) == 2 and out_shape[0] != 1):
        raise ValueError(f"unsupported entry: address {single_address}, {n_inputs} inputs, output shape {out_shape}")
    f32, f64, odt = np.dtype(np.float32), np.dtype(np.float64), np.dtype(out_dtype.str)  # the builtin descriptors
    ctx = _Context(
        single=single_address,
        n_in=n_inputs,
        in_f64=int(in_dtype == np.float64),
        out_descr=id(odt),
        out_nd=len(out_shape),
        out_dims=(ctypes.c_int64 * 2)(*out_shape, *([0] * (2 - len(out_shape)))),
        f32_descr=id(f32),
        f64_descr=id(f64),
        ndarray=id(np.ndarray),
        new_from_descr=e.new_from_descr,
        release_gil=int(release_gil),
        none=id(None),
        list=id(list),
        float=id(float),
    )
    label, doc = name.encode(), b"one(X): one row through the compiled model, or None"
    method = _MethodDef(label, e.one_row, METH_O, doc)
    owned = (ctx, method, label, doc, f32, f64, odt, e, *keep)
    capsule = _capsule_new(ctypes.addressof(ctx), None, e.release)
    _incref(owned)  # the capsule's reference, dropped by timber_pyentry_release
    if _capsule_set_context(capsule, id(owned)) != 0:
        _decref(owned)
        raise RuntimeError("PyCapsule_SetContext failed")
    return _cfunction_new(ctypes.addressof(method), capsule, None)
