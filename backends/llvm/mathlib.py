"""Timber's own `exp` and `log1p` in LLVM IR: the operation sequences of `ir/mathfn.py`, step for step.

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


def _libm_call(fn: Function, mod: Module, func: str, x: str, t: str, lanes: int, hint: str) -> str:
    """`func` (exp, log1p) of every lane of `x` by the C library: `exp`/`expf` through LLVM's
    intrinsic (which becomes those calls: no fast-math flags, no vector library), `log1p`/`log1pf`
    called lane by lane."""
    suffix = "f" if t == "float" else ""
    if func == "exp":
        intrinsic = f"llvm.exp.{'v%d' % lanes if lanes else ''}{'f32' if t == 'float' else 'f64'}"
        mod.declare(intrinsic, f"declare {vec(lanes, t)} {{name}}({vec(lanes, t)})")
        return fn.op(hint, f"call {vec(lanes, t)} @{intrinsic}({vec(lanes, t)} {x})")
    mod.declare(func + suffix, f"declare {t} {{name}}({t}) nounwind")
    if not lanes:
        return fn.op(hint, f"call {t} @{func}{suffix}({t} {x})")
    v = "poison"
    for i in range(lanes):
        e = fn.op(hint + ".in", f"extractelement {vec(lanes, t)} {x}, i64 {i}")
        r = fn.op(hint + ".out", f"call {t} @{func}{suffix}({t} {e})")
        v = fn.op(hint, f"insertelement {vec(lanes, t)} {v}, {t} {r}, i64 {i}")
    return v


def fmath_exp_f64(mod: Module, lanes: int) -> str:
    """Define (once) `<lanes x double> @timber_fmath_exp_v{lanes}` — fmath's expd, CatBoost's exp —
    following `ir/mathfn.py` `fmath_exp_f64` step for step, and return its name."""
    name = f"timber_fmath_exp_v{lanes}"
    if mod.has(name):
        return name
    m = mathfn
    if mod.once("timber_fmath_table"):
        vals = ", ".join(f"i64 {int(v)}" for v in m.FMATH_T.tolist())
        mod.globals.append(f"@timber_fmath_t = internal constant [{len(m.FMATH_T)} x i64] [{vals}], align 64")
    vd, vi, vb = vec(lanes, "double"), vec(lanes, "i64"), vec(lanes, "i1")
    fn = mod.add(Function(name, vd, [(vd, "%x")], attrs="nounwind alwaysinline"))
    c = lambda v: _dconst(v, lanes)  # noqa: E731
    ci = lambda v: splat(v, "i64", lanes)  # noqa: E731
    below = fn.op("below", f"fcmp olt {vd} %x, {c(m.FMATH_HI)}")  # NaN: false, so NaN becomes the bound (x86 minpd)
    x = fn.op("x", f"select {vb} {below}, {vd} %x, {vd} {c(m.FMATH_HI)}")
    above = fn.op("above", f"fcmp ogt {vd} {x}, {c(m.FMATH_LO)}")
    x = fn.op("x", f"select {vb} {above}, {vd} {x}, {vd} {c(m.FMATH_LO)}")
    d = fn.op("d", f"fmul {vd} {x}, {c(m.FMATH_A)}")
    d = fn.op("d", f"fadd {vd} {d}, {c(m.FMATH_B)}")
    di = fn.op("di", f"bitcast {vd} {d} to {vi}")
    t = fn.op("t", f"fsub {vd} {d}, {c(m.FMATH_B)}")
    t = fn.op("t", f"fmul {vd} {t}, {c(m.FMATH_RA)}")
    t = fn.op("t", f"fsub {vd} {t}, {x}")
    y = fn.op("y", f"fsub {vd} {c(m.FMATH_C3)}, {t}")
    y = fn.op("y", f"fmul {vd} {y}, {fn.op('tt', f'fmul {vd} {t}, {t}')}")
    y = fn.op("y", f"fmul {vd} {y}, {c(m.FMATH_C2)}")
    y = fn.op("y", f"fsub {vd} {y}, {t}")
    y = fn.op("y", f"fadd {vd} {y}, {c(m.FMATH_C1)}")
    j = fn.op("j", f"and {vi} {di}, {ci((1 << m.FMATH_BITS) - 1)}")
    tj = gather(fn, mod, "i64", "@timber_fmath_t", j, lanes, "i64", hint="tj")
    u = fn.op("u", f"add {vi} {di}, {ci(m.FMATH_ADJ)}")
    u = fn.op("u", f"ashr {vi} {u}, {ci(m.FMATH_BITS)}")
    u = fn.op("u", f"shl {vi} {u}, {ci(52)}")
    u = fn.op("u", f"or {vi} {u}, {tj}")
    out = fn.op("out", f"fmul {vd} {y}, {fn.op('scale', f'bitcast {vi} {u} to {vd}')}")
    fn.emit(f"ret {vd} {out}")
    return name


def exp(fn: Function, mod: Module, x: str, t: str, lanes: int, hint: str = "exp", impl: str | None = None) -> str:
    """Emit the exp of `x` (`<lanes x t>`, t float or double): fmath's if `impl` says so (CatBoost),
    else the C library's if the module says so (host JIT), else Timber's own; f32 (for Timber's
    and fmath's) is the f64 result rounded once."""
    if impl == "fmath":
        name = fmath_exp_f64(mod, lanes)
        return _call_f64(fn, name, x, t, lanes, hint)
    if mod.libm:
        return _libm_call(fn, mod, "exp", x, t, lanes, hint)
    return _call_f64(fn, exp_f64(mod, lanes), x, t, lanes, hint)


def _call_f64(fn: Function, name: str, x: str, t: str, lanes: int, hint: str) -> str:
    """Call a `<lanes x double>` helper on `x`; a float `x` is widened and the result rounded once."""
    vd = vec(lanes, "double")
    if t == "double":
        return fn.op(hint, f"call {vd} @{name}({vd} {x})")
    vf = vec(lanes, "float")
    xd = fn.op(hint + ".wide", f"fpext {vf} {x} to {vd}")
    yd = fn.op(hint + ".d", f"call {vd} @{name}({vd} {xd})")
    return fn.op(hint, f"fptrunc {vd} {yd} to {vf}")


def log1p_f64(mod: Module, lanes: int) -> str:
    """Define (once) `<lanes x double> @timber_log1p_v{lanes}(<lanes x double>)` and return its name.

    Every lane computes every case of `ir/mathfn.py`'s log1p and the case is selected at the end,
    exactly as the reference does; the integer steps work on the high word in i64."""
    name = f"timber_log1p_v{lanes}"
    if mod.has(name):
        return name
    vd, vi, vb = vec(lanes, "double"), vec(lanes, "i64"), vec(lanes, "i1")
    m = mathfn
    fn = mod.add(Function(name, vd, [(vd, "%x")], attrs="nounwind alwaysinline"))
    c = lambda v: _dconst(v, lanes)  # noqa: E731
    ci = lambda v: splat(v, "i64", lanes)  # noqa: E731

    def f(op: str, a: str, b: str, hint: str = "t") -> str:
        return fn.op(hint, f"{op} {vd} {a}, {b}")

    def i(op: str, a: str, b: str, hint: str = "t") -> str:
        return fn.op(hint, f"{op} {vi} {a}, {b}")

    def sel(cond: str, a: str, b: str, hint: str = "sel") -> str:
        return fn.op(hint, f"select {vb} {cond}, {vd} {a}, {vd} {b}")

    def seli(cond: str, a: str, b: str, hint: str = "seli") -> str:
        return fn.op(hint, f"select {vb} {cond}, {vi} {a}, {vi} {b}")

    def icmp(pred: str, a: str, b: str, hint: str = "c") -> str:
        return fn.op(hint, f"icmp {pred} {vi} {a}, {b}")

    def fcmp(pred: str, a: str, b: str, hint: str = "c") -> str:
        return fn.op(hint, f"fcmp {pred} {vd} {a}, {b}")

    def b_and(a: str, b: str) -> str:
        return fn.op("m", f"and {vb} {a}, {b}")

    def b_not(a: str) -> str:
        return fn.op("m", f"xor {vb} {a}, {splat(1, 'i1', lanes)}")

    bits = fn.op("bits", f"bitcast {vd} %x to {vi}")
    hx = i("ashr", bits, ci(32), "hx")
    ax = i("and", hx, ci(0x7FFFFFFF), "ax")
    low = icmp("slt", hx, ci(m.HX_K0_HIGH), "low")
    le_m1 = b_and(low, icmp("sge", ax, ci(m.AX_MINUS_ONE)))
    not_m1 = b_and(low, b_not(le_m1))
    tiny = b_and(not_m1, icmp("slt", ax, ci(m.AX_TINY), "tinyax"))
    mid = fn.op("m", f"or {vb} {icmp('sgt', hx, ci(0))}, {icmp('sle', hx, ci(m.HX_K0_LOW))}")
    k0 = b_and(b_and(not_m1, b_not(tiny)), mid)
    # argument reduction: 1+x = 2^k (1+f)
    big = icmp("sge", hx, ci(m.HX_BIG), "big")
    u = sel(big, "%x", f("fadd", c(1.0), "%x"), "u")
    ub = fn.op("ub", f"bitcast {vd} {u} to {vi}")
    hu = i("ashr", ub, ci(32), "hu")
    k = i("sub", i("ashr", hu, ci(20)), ci(1023), "k")
    kpos = icmp("sgt", k, ci(0))
    corr = sel(kpos, f("fsub", c(1.0), f("fsub", u, "%x")), f("fsub", "%x", f("fsub", u, c(1.0))), "corr")
    cc = sel(big, c(0.0), f("fdiv", corr, u), "cc")
    hu = i("and", hu, ci(0xFFFFF), "hu")
    up = icmp("slt", hu, ci(m.HU_SQRT2), "up")
    top = seli(up, i("or", hu, ci(0x3FF00000)), i("or", hu, ci(0x3FE00000)), "top")
    k = seli(up, k, i("add", k, ci(1)), "k")
    hu = seli(up, hu, i("ashr", i("sub", ci(0x100000), hu), ci(2)), "hu")
    ubn = i("or", i("shl", top, ci(32)), i("and", ub, ci(0xFFFFFFFF)), "ubn")
    fr = f("fsub", fn.op("un", f"bitcast {vi} {ubn} to {vd}"), c(1.0), "fr")
    fv = sel(k0, "%x", fr, "f")
    k = seli(k0, ci(0), k, "k")
    hu = seli(k0, ci(1), hu, "hu")
    kd = fn.op("kd", f"sitofp {vi} {k} to {vd}")
    kzero = icmp("eq", k, ci(0), "kzero")
    hfsq = f("fmul", f("fmul", c(0.5), fv), fv, "hfsq")
    khi = f("fmul", kd, c(m.LOG_LN2_HI), "khi")
    klo = f("fmul", kd, c(m.LOG_LN2_LO), "klo")
    # |f| < 2^-20
    rs = f("fmul", hfsq, f("fsub", c(1.0), f("fmul", c(m.TWO_THIRDS), fv)), "rs")
    small_k = f("fsub", khi, f("fsub", f("fsub", rs, f("fadd", klo, cc)), fv))
    small = sel(kzero, f("fsub", fv, rs), small_k, "small")
    fzero_k = f("fadd", khi, f("fadd", cc, klo))
    small = sel(fcmp("oeq", fv, c(0.0)), sel(kzero, c(0.0), fzero_k), small, "small")
    # the general case
    s = f("fdiv", fv, f("fadd", c(2.0), fv), "s")
    z = f("fmul", s, s, "z")
    z2 = f("fmul", z, z, "z2")
    z4 = f("fmul", z2, z2, "z4")
    z6 = f("fmul", z4, z2, "z6")
    r = f("fadd", f("fmul", z, c(m.LP1)), f("fmul", z2, f("fadd", c(m.LP2), f("fmul", z, c(m.LP3)))), "r")
    r = f("fadd", r, f("fmul", z4, f("fadd", c(m.LP4), f("fmul", z, c(m.LP5)))), "r")
    r = f("fadd", r, f("fmul", z6, f("fadd", c(m.LP6), f("fmul", z, c(m.LP7)))), "r")
    t = f("fmul", s, f("fadd", hfsq, r), "t")
    main_k = f("fsub", khi, f("fsub", f("fsub", hfsq, f("fadd", t, f("fadd", klo, cc))), fv))
    out = sel(kzero, f("fsub", fv, f("fsub", hfsq, t)), main_k, "main")
    out = sel(icmp("eq", hu, ci(0)), small, out, "out")
    tiny_v = sel(icmp("slt", ax, ci(m.AX_TINIER)), "%x", f("fsub", "%x", f("fmul", f("fmul", "%x", "%x"), c(0.5))))
    out = sel(tiny, tiny_v, out, "out")
    out = sel(le_m1, sel(fcmp("oeq", "%x", c(-1.0)), c(float("-inf")), c(float("nan"))), out, "out")
    special = b_and(b_not(low), icmp("sge", hx, ci(0x7FF00000)))
    out = sel(special, f("fadd", "%x", "%x"), out, "out")
    out = sel(fcmp("uno", "%x", "%x"), "%x", out, "out")
    fn.emit(f"ret {vd} {out}")
    return name


def log1p(fn: Function, mod: Module, x: str, t: str, lanes: int, hint: str = "log1p") -> str:
    """Emit the log1p of `x` (`<lanes x t>`): the C library's if the module says so, else
    Timber's own, where f32 is the f64 result rounded once."""
    if mod.libm:
        return _libm_call(fn, mod, "log1p", x, t, lanes, hint)
    return _call_f64(fn, log1p_f64(mod, lanes), x, t, lanes, hint)
