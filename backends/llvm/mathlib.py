"""Timber's own `exp` in LLVM IR: the operation sequence of `ir/mathfn.py`, step for step.

Every back-end must give the same bits, so this is not `llvm.exp` (which becomes a libm call
whose last bit differs between C libraries, and which bare-metal targets lack).  Only IEEE
double `+ - * /`, compares/selects, int conversions, shifts and a 128-entry table are used,
each written as its own instruction with no fast-math flags, so LLVM can neither contract a
multiply-add into an FMA nor reassociate.
"""

from __future__ import annotations

from ir import mathfn

from .emit import Function, Module, float_const, gather, splat, vec


def _dconst(v: float, lanes: int) -> str:
    return splat(v, "double", lanes)


def exp_f64(mod: Module, lanes: int) -> str:
    """Define (once) `<lanes x double> @timber_exp_v{lanes}(<lanes x double>)` and return its name."""
    name = f"timber_exp_v{lanes}"
    if mod.has(name):
        return name
    if mod.once("timber_exp_tables"):
        hi = ", ".join(f"double {float_const(v, 'double')}" for v in mathfn.T_HI.tolist())
        lo = ", ".join(f"double {float_const(v, 'double')}" for v in mathfn.T_LO.tolist())
        mod.globals.append(f"@timber_exp_hi = internal constant [{mathfn.N} x double] [{hi}], align 64")
        mod.globals.append(f"@timber_exp_lo = internal constant [{mathfn.N} x double] [{lo}], align 64")
    vd, vi = vec(lanes, "double"), vec(lanes, "i64")
    fn = mod.add(Function(name, vd, [(vd, "%x")], attrs="nounwind alwaysinline"))
    c = lambda v: _dconst(v, lanes)  # noqa: E731
    # NaN is handled at the end; clamp first so that the integer steps stay in range.
    isnan = fn.op("isnan", f"fcmp uno {vd} %x, %x")
    x0 = fn.op("x0", f"select {vec(lanes, 'i1')} {isnan}, {vd} {c(0.0)}, {vd} %x")
    low = fn.op("low", f"fcmp olt {vd} {x0}, {c(mathfn.UNDERFLOW - 1.0)}")
    x1 = fn.op("x1", f"select {vec(lanes, 'i1')} {low}, {vd} {c(mathfn.UNDERFLOW - 1.0)}, {vd} {x0}")
    high = fn.op("high", f"fcmp ogt {vd} {x1}, {c(mathfn.OVERFLOW + 1.0)}")
    xc = fn.op("xc", f"select {vec(lanes, 'i1')} {high}, {vd} {c(mathfn.OVERFLOW + 1.0)}, {vd} {x1}")
    # kd = round-half-even(x * N/ln2) by the 1.5*2^52 shift.
    z = fn.op("z", f"fmul {vd} {xc}, {c(mathfn.INV_LN2_N)}")
    zs = fn.op("zs", f"fadd {vd} {z}, {c(mathfn.SHIFT)}")
    kd = fn.op("kd", f"fsub {vd} {zs}, {c(mathfn.SHIFT)}")
    # r = (x - kd*L1) - kd*L2
    t1 = fn.op("t1", f"fmul {vd} {kd}, {c(mathfn.LN2_HI_N)}")
    r0 = fn.op("r0", f"fsub {vd} {xc}, {t1}")
    t2 = fn.op("t2", f"fmul {vd} {kd}, {c(mathfn.LN2_LO_N)}")
    r = fn.op("r", f"fsub {vd} {r0}, {t2}")
    # p = r + r*r*(C2 + r*(C3 + r*(C4 + r*C5)))
    q = fn.op("q", f"fmul {vd} {r}, {c(mathfn.C5)}")
    q = fn.op("q", f"fadd {vd} {c(mathfn.C4)}, {q}")
    q = fn.op("q", f"fmul {vd} {r}, {q}")
    q = fn.op("q", f"fadd {vd} {c(mathfn.C3)}, {q}")
    q = fn.op("q", f"fmul {vd} {r}, {q}")
    q = fn.op("q", f"fadd {vd} {c(mathfn.C2)}, {q}")
    rr = fn.op("rr", f"fmul {vd} {r}, {r}")
    q = fn.op("q", f"fmul {vd} {rr}, {q}")
    p = fn.op("p", f"fadd {vd} {r}, {q}")
    # k = int(kd); j = k & (N-1); e = k >> log2(N)
    k = fn.op("k", f"fptosi {vd} {kd} to {vi}")
    j = fn.op("j", f"and {vi} {k}, {splat(mathfn.N - 1, 'i64', lanes)}")
    e = fn.op("e", f"ashr {vi} {k}, {splat(mathfn.LOG2N, 'i64', lanes)}")
    th = gather(fn, mod, "double", "@timber_exp_hi", j, lanes, "i64", hint="th")
    tl = gather(fn, mod, "double", "@timber_exp_lo", j, lanes, "i64", hint="tl")
    # y = T_hi + (T_lo + T_hi*p)
    y = fn.op("y", f"fmul {vd} {th}, {p}")
    y = fn.op("y", f"fadd {vd} {tl}, {y}")
    y = fn.op("y", f"fadd {vd} {th}, {y}")
    # scale by 2^e in two normal steps
    e1 = fn.op("e1", f"ashr {vi} {e}, {splat(1, 'i64', lanes)}")
    e2 = fn.op("e2", f"sub {vi} {e}, {e1}")
    scales = []
    for ei in (e1, e2):
        b = fn.op("b", f"add {vi} {ei}, {splat(1023, 'i64', lanes)}")
        b = fn.op("b", f"shl {vi} {b}, {splat(52, 'i64', lanes)}")
        scales.append(fn.op("s", f"bitcast {vi} {b} to {vd}"))
    out = fn.op("out", f"fmul {vd} {y}, {scales[0]}")
    out = fn.op("out", f"fmul {vd} {out}, {scales[1]}")
    over = fn.op("over", f"fcmp ogt {vd} %x, {c(mathfn.OVERFLOW)}")
    out = fn.op("out", f"select {vec(lanes, 'i1')} {over}, {vd} {c(float('inf'))}, {vd} {out}")
    under = fn.op("under", f"fcmp olt {vd} %x, {c(mathfn.UNDERFLOW)}")
    out = fn.op("out", f"select {vec(lanes, 'i1')} {under}, {vd} {c(0.0)}, {vd} {out}")
    out = fn.op("out", f"select {vec(lanes, 'i1')} {isnan}, {vd} %x, {vd} {out}")
    fn.emit(f"ret {vd} {out}")
    return name


def exp(fn: Function, mod: Module, x: str, t: str, lanes: int, hint: str = "exp") -> str:
    """Emit Timber's exp of `x` (`<lanes x t>`, t float or double); f32 is the f64 result rounded once."""
    name = exp_f64(mod, lanes)
    vd = vec(lanes, "double")
    if t == "double":
        return fn.op(hint, f"call {vd} @{name}({vd} {x})")
    vf = vec(lanes, "float")
    xd = fn.op(hint + ".wide", f"fpext {vf} {x} to {vd}")
    yd = fn.op(hint + ".d", f"call {vd} @{name}({vd} {xd})")
    return fn.op(hint, f"fptrunc {vd} {yd} to {vf}")
