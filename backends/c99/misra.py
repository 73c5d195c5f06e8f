"""The MISRA C:2012 profile of the C99 back-end (`emit_c99(module, misra=True)`, `timber compile
--target c99 --misra`): what differs from the plain output, and the `DEVIATIONS.md` shipped with it.

The plain output is already free of what costs nothing (every loop and `if` body braced, fixed-width
loop counters, unsigned literals suffixed, index arithmetic instead of pointer arithmetic, one
category test helper per mode with an index).  The profile adds what changes the text's shape:

* `model_data.h` declares every table once; `model.c` and `model_data.c` include it (Rules 8.4, 8.5).
* `i1` values are `bool` (essentially Boolean: comparisons, `?:` conditions, `&&`/`||`), never
  `unsigned char` used as a truth value (Rules 10.1, 10.3, 14.4).
* Every function has one exit (Rule 15.5): the small helpers below and the exported wrappers keep
  a result variable; every `if`/`else if` chain ends with `else` (Rule 15.7).
* Signed bitwise operations and shifts are done on the unsigned type (Rule 10.1), then wrapped
  back to signed with `wrap_i64`/`wrap_i32` (no implementation-defined conversion, Rule 10.8-safe:
  no composite expression is cast to another essential type category).
* Bit casts copy bytes through `unsigned char` pointers (the Rule 11.3 exception) instead of
  `memcpy` (whose discarded result and mixed pointer types Rules 17.7 and 21.15 object to); no
  `<string.h>`; no union (Rule 19.2).
* Shifts of constants shift a cast to the full width (`(uint64_t)1U << 52U`), so the left operand's
  essential type is wide enough (Rule 12.2).

Results are bit-identical to the plain output (tests/backends/test_misra.py builds both and compares).
"""

from __future__ import annotations

import re

# MISRA versions of the small helpers (`emit._SMALL`): one exit, braces, essentially-typed
# operands.  Same results as the plain ones for every input.
SMALL: dict[str, list[str]] = {
    # Conditional expressions rather than if/else: one exit, and compilers keep them branch-free.
    "wrap_i64": [
        "static int64_t wrap_i64(uint64_t u)",
        "{",
        "    const uint64_t m = u - ((uint64_t)INT64_MAX + 1U); /* for u > INT64_MAX: u - 2^64 == m + INT64_MIN, m <= INT64_MAX */",
        "    return (u <= (uint64_t)INT64_MAX) ? (int64_t)u : ((int64_t)m + (-INT64_MAX - 1));",
        "}",
    ],
    "wrap_i32": [
        "static int32_t wrap_i32(uint32_t u)",
        "{",
        "    const uint32_t m = u - ((uint32_t)INT32_MAX + 1U); /* for u > INT32_MAX: u - 2^32 == m + INT32_MIN, m <= INT32_MAX */",
        "    return (u <= (uint32_t)INT32_MAX) ? (int32_t)u : ((int32_t)m + (-INT32_MAX - 1));",
        "}",
    ],
    # Arithmetic shift right on the unsigned bits, branch-free: ~((~a) >> s) for a negative a is floor(a / 2^s).
    "shrs_i64": [
        "static int64_t shrs_i64(int64_t a, int64_t b)",
        "{",
        "    const uint64_t s = (uint64_t)b & 63U;",
        "    const uint64_t ua = (uint64_t)a;",
        "    const uint64_t neg = (uint64_t)0U - (ua >> 63U); /* all ones when a < 0 */",
        "    return wrap_i64(((ua ^ neg) >> s) ^ neg);",
        "}",
    ],
    "shrs_i32": [
        "static int32_t shrs_i32(int32_t a, int32_t b)",
        "{",
        "    const uint32_t s = (uint32_t)b & 31U;",
        "    const uint32_t ua = (uint32_t)a;",
        "    const uint32_t neg = (uint32_t)0U - (ua >> 31U); /* all ones when a < 0 */",
        "    return wrap_i32(((ua ^ neg) >> s) ^ neg);",
        "}",
    ],
    "fptosi_i64": [
        "static int64_t fptosi_i64(double x)",
        "{",
        "    return (x != x) ? 0 : ((x >= 0x1p+63) ? INT64_MAX : ((x < -0x1p+63) ? (-INT64_MAX - 1) : (int64_t)x));",
        "}",
    ],
    "fptosi_i32": [
        "static int32_t fptosi_i32(double x)",
        "{",
        "    return (x != x) ? 0 : ((x >= 0x1p+31) ? INT32_MAX : ((x < -0x1p+31) ? (-INT32_MAX - 1) : (int32_t)x));",
        "}",
    ],
    "ksqrt_f64": [
        "static double ksqrt_f64(double x)",
        "{",
        "    double r = x;",
        "    const uint64_t u = ubits_f64(x);",
        "    if ((x == x) && (x != 0.0) && (u != UINT64_C(0x7FF0000000000000))) {",
        "        if ((u >> 63U) != 0U) {",
        "            r = (x - x) / (x - x);",
        "        } else {",
        "            const uint64_t eb = u >> 52U;",
        "            int32_t e = (int32_t)eb;",
        "            uint64_t m = u & (((uint64_t)1U << 52U) - 1U);",
        "            uint64_t rem = 0U;",
        "            uint64_t root = 0U;",
        "            if (e == 0) {",
        "                e = 1;",
        "                while ((m & ((uint64_t)1U << 52U)) == 0U) {",
        "                    m <<= 1U;",
        "                    --e;",
        "                }",
        "            } else {",
        "                m |= (uint64_t)1U << 52U;",
        "            }",
        "            e -= 1075; /* x = m * 2^e, 2^52 <= m < 2^53 */",
        "            if ((e % 2) != 0) {",
        "                m <<= 1U;",
        "                --e;",
        "            }",
        "            /* root = floor(sqrt(m * 2^52)): 53 steps over the radicand's 106 bits, two at a time */",
        "            for (int32_t i = 0; i < 53; ++i) {",
        "                const int32_t hi = 53 - (2 * i);",
        "                uint64_t two;",
        "                if (hi >= 1) {",
        "                    const int32_t sh = hi - 1;",
        "                    two = (m >> (uint32_t)sh) & 3U;",
        "                } else if (hi == 0) {",
        "                    two = (m << 1U) & 2U;",
        "                } else {",
        "                    two = 0U;",
        "                }",
        "                const uint64_t trial = (root << 2U) | 1U;",
        "                rem = (rem << 2U) | two;",
        "                root <<= 1U;",
        "                if (rem >= trial) {",
        "                    rem -= trial;",
        "                    root |= 1U;",
        "                }",
        "            }",
        "            if (rem > root) {",
        "                root += 1U;",
        "            }",
        "            const int32_t be = ((e / 2) - 26) + 1074;",
        "            const uint64_t ub = (uint64_t)be;",
        "            r = ufloat_f64((ub << 52U) + root);",
        "        }",
        "    }",
        "    return r;",
        "}",
    ],
    "ksqrt_f32": ["static float ksqrt_f32(float x)", "{", "    return (float)ksqrt_f64((double)x);", "}"],
    "kabs_f64": ["static double kabs_f64(double x)", "{", "    return ufloat_f64(ubits_f64(x) & ~((uint64_t)1U << 63U));", "}"],
    "kabs_f32": ["static float kabs_f32(float x)", "{", "    return ufloat_f32(ubits_f32(x) & ~((uint32_t)1U << 31U));", "}"],
}


def _copy(name: str, src_t: str, dst_t: str, init: str, n: int) -> list[str]:
    """`dst_t name(src_t x)`: the same `n` bytes read as the other type, copied one `unsigned char`
    at a time (the character-type exception of Rule 11.3), no memcpy, no union.  Written out
    rather than looped: compilers turn it into one register move and still inline the callers."""
    return [
        f"static {dst_t} {name}({src_t} x)",
        "{",
        f"    {dst_t} y = {init};",
        "    const unsigned char *const p = (const unsigned char *)&x;",
        "    unsigned char *const q = (unsigned char *)&y;",
        *[f"    q[{i}] = p[{i}];" for i in range(n)],
        "    return y;",
        "}",
    ]


for _n, _s, _d, _i, _b in (
    ("bits_f64", "double", "int64_t", "0", 8),
    ("float_i64", "int64_t", "double", "0.0", 8),
    ("bits_f32", "float", "int32_t", "0", 4),
    ("float_i32", "int32_t", "float", "0.0f", 4),
    ("ubits_f64", "double", "uint64_t", "0U", 8),
    ("ufloat_f64", "uint64_t", "double", "0.0", 8),
    ("ubits_f32", "float", "uint32_t", "0U", 4),
    ("ufloat_f32", "uint32_t", "float", "0.0f", 4),
):
    SMALL[_n] = _copy(_n, _s, _d, _i, _b)

for _w in (32, 64):
    _t = "float" if _w == 32 else "double"
    for _name, _rel in (("max", ">"), ("min", "<")):
        # numpy's maximum/minimum: NaN if either is NaN; on a tie (-0.0 vs +0.0 too) the second operand.
        SMALL[f"{_name}_f{_w}"] = [
            f"static {_t} {_name}_f{_w}({_t} a, {_t} b)",
            "{",
            f"    return (a != a) ? a : ((b != b) ? b : ((a {_rel} b) ? a : b));",
            "}",
        ]


# Helpers a MISRA helper calls (emitted before it).
DEPS = {
    "shrs_i64": ["wrap_i64"],
    "shrs_i32": ["wrap_i32"],
    "ksqrt_f64": ["ubits_f64", "ufloat_f64"],
    "ksqrt_f32": ["ksqrt_f64"],
    "kabs_f64": ["ubits_f64", "ufloat_f64"],
    "kabs_f32": ["ubits_f32", "ufloat_f32"],
}


def helper_order(needed: set[str], names: list[str]) -> list[str]:
    """`needed` with their `DEPS`, in `names` order, every dependency before its user."""
    out: list[str] = []

    def visit(n: str) -> None:
        if n in out:
            return
        for d in DEPS.get(n, []):
            visit(d)
        out.append(n)

    for n in [*names, *SMALL]:
        if n in needed:
            visit(n)
    return out


# ----- statement shape: braces and fixed-width locals ---------------------------------------------

_HEAD = re.compile(r"^(\s*)(?:\}\s*else\s+)?(if|while|for|switch)\s*\(")
_ELSE = re.compile(r"^(\s*)(\}\s*)?else\s+(?!if\b|\{)(.+)$")


def _close(s: str, i: int) -> int:
    """Index just past the parenthesis matching the `(` at s[i]."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _brace_line(line: str) -> str:
    m = _HEAD.match(line)
    if m:
        end = _close(line, m.end() - 1)
        rest = line[end:].strip() if end > 0 else ""
        if rest and not rest.startswith("{") and rest.endswith(";"):
            return f"{line[:end]} {{ {_brace_line(rest)} }}"
        return line
    m = _ELSE.match(line)
    if m and m.group(3).endswith(";"):
        return f"{m.group(1)}{m.group(2) or ''}else {{ {_brace_line(m.group(3))} }}"
    return line


_INT_DECL = re.compile(r"(?<![\w])(?:int|unsigned)(?= [A-Za-z_]\w*(?: =|;|\[|,))")
_INT_CAST = re.compile(r"\((?:int|unsigned)\)")


def shape(lines: list[str]) -> list[str]:
    """Body statements with every single-statement `if`/`else`/`for`/`while` braced (Rule 15.6)
    and `int`/`unsigned` locals and casts as `int32_t`/`uint32_t` (Directive 4.6).  Used on the
    routine bodies only (the exported wrappers keep the ABI's `int`)."""
    out = []
    for s in lines:
        s = _brace_line(s)
        if not s.lstrip().startswith("/*"):
            s = _INT_DECL.sub(lambda m: "int32_t" if m.group(0) == "int" else "uint32_t", s)
            s = _INT_CAST.sub(lambda m: "(int32_t)" if "int)" == m.group(0)[1:] else "(uint32_t)", s)
        out.append(s)
    return out


# ----- DEVIATIONS.md ---------------------------------------------------------------------------------


def deviations(source: str, prefix: str, helpers: list[str], files: list[str]) -> str:
    """The deviation record shipped beside the MISRA sources (`DEVIATIONS.md`)."""
    bytecopy = [
        h for h in helpers if h in ("bits_f64", "float_i64", "bits_f32", "float_i32", "ubits_f64", "ufloat_f64", "ubits_f32", "ufloat_f32")
    ]
    where_copy = ", ".join(f"`{h}`" for h in bytecopy) if bytecopy else "none in this output"
    lines = [
        "# MISRA C:2012 compliance record",
        "",
        f"Generated by Timber (`timber compile --target c99 --misra`) from `{source}`, with symbol prefix `{prefix}`.",
        f"Files: {', '.join(f'`{f}`' for f in files)}.  Do not edit them; regenerate.",
        "",
        "## Claim",
        "",
        "The code is written to comply with every mandatory and required rule of MISRA C:2012 (with",
        "Amendments 1 and 2 where cppcheck implements them), except the deviations below.  It is",
        "checked with `cppcheck --addon=misra --std=c99 model.c model_data.c` (Timber's test suite",
        "runs it on every model kind and fails on any finding).  cppcheck does not decide every rule",
        "(notably parts of the essential type model, Rules 10.1-10.8): those are met by construction",
        "of the generator, and an assessor should confirm them with the project's own qualified tool.",
        "",
        "Build assumptions (Directive 1.1, implementation-defined behaviour relied on):",
        "",
        "- `float` and `double` are IEEE 754 binary32 and binary64 (C99 Annex F) and evaluate without",
        "  excess precision: `model.c` stops the build with `#error` unless `FLT_EVAL_METHOD == 0`.",
        "- No floating-point contraction: build with `-ffp-contract=off` (GCC/Clang) or `/fp:precise`",
        "  (MSVC); the generated Makefile and CMakeLists.txt do.  A fused multiply-add would change",
        "  the last bit of results.",
        "- `<stdint.h>` provides the exact-width types `int32_t`, `int64_t`, `uint8_t`..`uint64_t`.",
        "",
        "## Deviations",
        "",
        "| # | Rule | Category | Where | Reason and safety argument |",
        "|---|------|----------|-------|----------------------------|",
        "| D1 | Directive 4.6 (typedefs indicating size and signedness) | advisory | `model.h`: the return type"
        " and `n_samples` of every exported function (`int`); `float`/`double` throughout | The exported ABI is"
        " shared with Timber's object files and JIT and is `int` for status codes and row counts; floating types"
        " are IEEE binary32/binary64 by the build assumption above, so `float`/`double` already indicate their size"
        " (a `float32_t`/`float64_t` typedef would add nothing the ABI's `<prefix>input_t`/`<prefix>output_t` do not say)."
        "  Advisory: recorded, not required. |",
        "| D2 | Rule 1.2 (language extensions) | advisory | `model.c`, `model_data.c`: the `TIMBER_NAN` and `TIMBER_INFINITY`"
        " definitions (only in models with non-finite constants) | A freestanding build (`__STDC_HOSTED__ == 0`) has no"
        ' `<math.h>`; there, with GCC or Clang, infinity and NaN are `__builtin_inff()` and `__builtin_nanf("")`, the'
        " constants `<math.h>` itself expands to on those compilers.  Any other build includes `<math.h>` for `INFINITY`"
        " and `NAN` (the macros only, no function).  Advisory: recorded, not required. |",
        "",
        "No required or mandatory rule is deviated.",
        "",
        "## Notes for the assessor",
        "",
        f"- Bit reinterpretation of floats ({where_copy}) copies bytes through `unsigned char` pointers:"
        " the conversion to a pointer to character type is the exception Rule 11.3 permits; there is no"
        " union (Rule 19.2) and no `memcpy` (Rules 17.7, 21.15).",
        "- Every function has a single point of exit (Rule 15.5) and every `if`/`else if` chain ends with"
        " `else` (Rule 15.7); every loop and selection body is a compound statement (Rule 15.6).",
        "- Integer arithmetic that must wrap (the IR's modulo 2^n `addi`/`subi`/`muli`, shifts, bitwise"
        " operations) is computed on `uint32_t`/`uint64_t` and converted back by `wrap_i32`/`wrap_i64`"
        " without an implementation-defined conversion; signed values are never shifted or used with"
        " bitwise operators (Rule 10.1).",
        "- Float-to-integer conversions check NaN and the range first (no undefined behaviour, Rule 1.3).",
        "- No dynamic memory (Rule 21.3), no recursion (Rule 17.2), no `<stdio.h>` (Rule 21.6), no `<string.h>`,",
        "  no libm function (at most the `NAN`/`INFINITY` macros of `<math.h>`, see D2): the sources build",
        "  freestanding; no mutable object with static storage.",
        "- Tables are `const` arrays defined in `model_data.c` and declared once in `model_data.h`, which both",
        "  `.c` files include (Rules 8.4, 8.5).",
        "",
    ]
    return "\n".join(lines)
