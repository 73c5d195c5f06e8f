"""CatBoost CTR features compiled to `arith` IR: each CTR the trees test becomes one extra input
column, `x' = arith.concat(x, ctr_0, ..., ctr_m)`, and a CTR split is `x'[n + j] gt border` in
float32 like any float split.  No new ops: the hashing and the table search are integer `arith`
ops every back-end lowers.  What CatBoost 1.2 computes (`catboost/libs/model/`:
`static_ctr_provider.cpp`, `ctr_provider.h`, `online_ctr.h`, `dense_hash_view.h`,
`json_model_helpers.cpp`):

1. Each categorical value is hashed: the low 32 bits of CityHash64 (v1.0.2) of the category
   string, as `ui32`.  Timber computes this IN THE IR at run time from the input code: by default
   code c means the string `str(c)` (c an integer, |c| <= `cat_code_bound`); its decimal digits
   come from exact integer division by 10 (`(a * 0xCCCCCCCD) >> 35`, exact for a < 2^32), packed
   little-endian into two i64 words, then CityHash64's short-string path (`HashLen0to16`: strings
   of 1..9 bytes) in wrapping i64 arithmetic.  With `cat_vocab` the hash of each word is computed
   at compile time and read with `arith.lookup` at the code.
2. The projection hash, in ui64: `h = 0; h = CalcHash(h, v)` with
   `CalcHash(a, b) = 0x4906ba494954cb65 * (a + 0x4906ba494954cb65 * b)` over, in this order, the
   projection's categorical hashes (each `ui32` hash widened through `int`: sign extension), its
   binarized float features (`x > border` as 0/1, NaN as the feature's nan_value_treatment says)
   and its one-hot elements (`hash == value` as 0/1).
3. The hash is looked up in the CTR's table (`ctr_data`: a CatBoost dense hash with linear
   probing; a key is found iff it is stored, and the empty-bucket marker 2^64-1 is never found).
   Timber stores the keys sorted (unsigned), padded with 2^64-1 to a power of two, and runs an
   unrolled binary search (`arith.lookup`, `cmpi ult`, `select`).  The CTR value of every key is
   computed at compile time, in float32 exactly as CatBoost's `TModelCtr::Calc`:
   `ctr = (good + prior_num) / (total + prior_denom); value = (ctr + shift) * scale`, with
   (good, total) per type: Borders (2 classes) (n1, n0 + n1), (more) (Σ classes above
   target_border_idx, Σ all); Buckets (n[target_border_idx], Σ all); Counter and FeatureFreq
   (count, counter_denominator); BinarizedTargetMeanValue / FloatTargetMeanValue (sum, count).
   A hash that is not in the table gives `Calc(0, counter_denominator)` for Counter/FeatureFreq and
   `Calc(0, 0)` for every other type.

Input codes no category string can be made of — NaN, ±inf, a fraction, |c| > `cat_code_bound`, a
code outside the vocabulary — are categories the model never saw: a CTR whose projection holds
such a value as a categorical element takes the not-found value (what CatBoost gives a category
string absent from its tables), and a one-hot element of the projection is 0 (no one-hot value
matches).  A valid code that was not in the training data is hashed like any other, exactly as
CatBoost hashes its string.

JSON models are read as CatBoost reads them: a mean history's `sum` goes through NJson's
`GetInteger()` (a non-integral double reads as 0); `.cbm` files and model objects keep the float.
"""

from __future__ import annotations

import json

import numpy as np

from ir.diagnostics import NameLoc
from ir.dialects.mathimpl.dsl import E, Emitter, f32, i64, where

MAGIC = 0x4906BA494954CB65
_M64 = (1 << 64) - 1
_K2, _K3, _KMUL = 0x9AE16A3B2F90404F, 0xC949D7C7509E6557, 0x9DDFEA08EB382D69
EMPTY_KEY = _M64  # CatBoost's TBucket::InvalidHashValue: never found
CTR_TYPES = ("Borders", "Buckets", "Counter", "FeatureFreq", "BinarizedTargetMeanValue", "FloatTargetMeanValue")


def s64(v: int) -> int:
    """An unsigned 64-bit value as the signed int64 with the same bits."""
    v &= _M64
    return v - (1 << 64) if v >= 1 << 63 else v


def calc_hash(a: int, b: int) -> int:
    """CatBoost's CalcHash(a, b) in ui64."""
    return (MAGIC * ((a + MAGIC * b) & _M64)) & _M64


class _Ctr:
    """One CTR feature (features_info.ctrs[j]) with the value of every key of its table."""

    def __init__(self, j: int, ctr_type: str, cats, floats, onehots, prior_num, prior_denom, shift, scale, tbi, borders, path):
        self.j, self.type, self.path = j, ctr_type, path
        self.cats = cats  # [cat_feature_index]
        self.floats = floats  # [(float_feature_index, float32 border)]
        self.onehots = onehots  # [(cat_feature_index, int32 value)]
        self.prior_num, self.prior_denom, self.shift, self.scale = prior_num, prior_denom, shift, scale
        self.tbi = tbi
        self.borders = borders
        self.column = -1

    @property
    def projection(self):
        return (tuple(self.cats), tuple((i, float(b)) for i, b in self.floats), tuple(self.onehots))

    def calc(self, good, total) -> np.float32:
        """TModelCtr::Calc in float32."""
        with np.errstate(all="ignore"):
            ctr = (np.float32(good) + self.prior_num) / (np.float32(total) + self.prior_denom)
            return (ctr + self.shift) * self.scale


class _Table:
    """A ctr_data entry: keys (ui64) and per-key statistics."""

    def __init__(self, keys: list[int], rows: list[list], counter_denominator: int):
        self.keys, self.rows, self.denominator = keys, rows, counter_denominator


class CtrPlan:
    """The model's CTR features, their tables, and which ones the trees use (one column each)."""

    def __init__(self, m, feats, exact_sums: bool):
        self.m, self.feats = m, feats
        self.exact_sums = exact_sums
        self.ctrs: list[_Ctr] = []
        self.used: dict[int, _Ctr] = {}
        info = m.doc.get("features_info", {})
        raw = info.get("ctrs") or []
        if not isinstance(raw, list):
            m.fail("features_info.ctrs", "'ctrs' must be a list")
        for j, c in enumerate(raw):
            self.ctrs.append(self._ctr(j, c, f"features_info.ctrs[{j}]"))
        # split_index numbers the binary features: every float border, every one-hot value, then every CTR border
        self.first_ctr_split = sum(len(f.get("borders") or []) for f in info.get("float_features") or [])
        self.first_ctr_split += sum(len(c.get("values") or []) for c in info.get("categorical_features") or [])
        self.tables: dict[tuple, _Table] = {}

    # ----- reading -----------------------------------------------------------------------------

    def _f32(self, c, key, path, default=None) -> np.float32:
        v = c.get(key, default)
        if v is None:
            self.m.fail(path, f"missing '{key}'")
        return np.float32(self.m.num(v, f"{path}.{key}"))

    def _elements(self, elems, path):
        m, feats = self.m, self.feats
        if not isinstance(elems, list) or not elems:
            m.fail(path, "a CTR needs a non-empty list of 'elements'")
        cats, floats, onehots = [], [], []
        for k, e in enumerate(elems):
            p = f"{path}[{k}]"
            kind = m.get(e, "combination_element", p, str)
            if kind == "cat_feature_value":
                idx = m.get(e, "cat_feature_index", p, int)
                if idx not in feats.cat_flat:
                    m.fail(f"{p}.cat_feature_index", f"cat_feature_index {idx} names no categorical feature")
                cats.append(idx)
            elif kind == "float_feature":
                idx = m.get(e, "float_feature_index", p, int)
                if idx not in feats.float_flat:
                    m.fail(f"{p}.float_feature_index", f"float_feature_index {idx} names no float feature")
                floats.append((idx, np.float32(m.num(m.get(e, "border", p, (int, float)), f"{p}.border"))))
            elif kind == "cat_feature_exact_value":
                idx = m.get(e, "cat_feature_index", p, int)
                if idx not in feats.cat_flat:
                    m.fail(f"{p}.cat_feature_index", f"cat_feature_index {idx} names no categorical feature")
                value = m.get(e, "value", p, int)
                if not -(2**31) <= value < 2**32:
                    m.fail(f"{p}.value", f"one-hot value {value} is not a 32-bit hash")
                onehots.append((idx, value - 2**32 if value >= 2**31 else value))  # as the signed hash
            else:
                m.fail(
                    f"{p}.combination_element",
                    f"unknown combination_element '{kind}'; supported: cat_feature_value, float_feature, cat_feature_exact_value",
                )
        return cats, floats, onehots

    def _ctr(self, j: int, c, path: str) -> _Ctr:
        m = self.m
        if not isinstance(c, dict):
            m.fail(path, "a CTR must be an object")
        ctr_type = m.get(c, "ctr_type", path, str)
        if ctr_type not in CTR_TYPES:
            m.fail(f"{path}.ctr_type", f"unknown ctr_type '{ctr_type}'; supported: {', '.join(CTR_TYPES)}")
        cats, floats, onehots = self._elements(c.get("elements"), f"{path}.elements")
        borders = c.get("borders") or []
        if not isinstance(borders, list):
            m.fail(f"{path}.borders", "'borders' must be a list")
        return _Ctr(
            j,
            ctr_type,
            cats,
            floats,
            onehots,
            self._f32(c, "prior_numerator", path, 0.0),
            self._f32(c, "prior_denomerator", path, 1.0),
            self._f32(c, "shift", path, 0.0),
            self._f32(c, "scale", path, 1.0),
            m.get(c, "target_border_idx", path, int, 0),
            [np.float32(m.num(b, f"{path}.borders[{i}]")) for i, b in enumerate(borders)],
            path,
        )

    def _table_key(self, ctr: _Ctr) -> tuple:
        return (ctr.type,) + ctr.projection

    def _load_tables(self) -> None:
        m = self.m
        data = m.doc.get("ctr_data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            m.fail("ctr_data", "'ctr_data' must be an object")
        for key, entry in data.items():
            path = f"ctr_data[{key!r}]"
            try:
                ident = json.loads(key)
                elems, ctr_type = ident["identifier"], ident["type"]
            except (ValueError, TypeError, KeyError):
                m.fail(path, 'a ctr_data key must be a CTR identifier: {"identifier": [elements], "type": ctr_type}')
            cats, floats, onehots = self._elements(elems, f"{path}.identifier")
            proj = (tuple(cats), tuple((i, float(b)) for i, b in floats), tuple(onehots))
            stride = m.get(entry, "hash_stride", path, int)
            flat = m.get(entry, "hash_map", path, list)
            if stride < 2 or len(flat) % stride:
                m.fail(f"{path}.hash_map", f"{len(flat)} values do not make rows of hash_stride {stride}")
            denominator = m.get(entry, "counter_denominator", path, int, 0)
            table: dict[int, list] = {}
            for r in range(0, len(flat), stride):
                p = f"{path}.hash_map[{r}]"
                h = flat[r]
                if not (isinstance(h, str) and h.isdigit() and int(h) <= _M64):
                    m.fail(p, f"a hash must be a string holding an unsigned 64-bit integer, found {h!r}")
                vals = flat[r + 1 : r + stride]
                for k, v in enumerate(vals):
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        m.fail(f"{path}.hash_map[{r + 1 + k}]", f"expected a number, found {type(v).__name__}")
                table[int(h)] = vals  # a repeated hash: CatBoost's AddIndex reuses the bucket, the last row wins
            table.pop(EMPTY_KEY, None)  # an empty bucket's marker: CatBoost's GetIndex never finds it
            keys = sorted(table)
            self.tables[(ctr_type,) + proj] = _Table(keys, [table[k] for k in keys], denominator)

    # ----- splits ------------------------------------------------------------------------------

    def use(self, split, path: str) -> tuple[_Ctr, np.float32]:
        """The CTR an OnlineCtr split tests and its border (checked against the CTR's borders)."""
        m = self.m
        k = m.get(split, "split_index", path, int)
        border = np.float32(m.num(m.get(split, "border", path, (int, float)), f"{path}.border"))
        k -= self.first_ctr_split
        for ctr in self.ctrs:
            if 0 <= k < len(ctr.borders):
                if ctr.borders[k] != border:
                    m.fail(f"{path}.border", f"border {float(border)!r} is not border {k} of {ctr.path} ({float(ctr.borders[k])!r})")
                tbi = split.get("ctr_target_border_idx", ctr.tbi)
                if tbi != ctr.tbi:
                    m.fail(f"{path}.ctr_target_border_idx", f"ctr_target_border_idx {tbi} differs from {ctr.path}'s {ctr.tbi}")
                self.used.setdefault(ctr.j, ctr)
                return ctr, border
            k -= len(ctr.borders)
        m.fail(f"{path}.split_index", f"split_index {split.get('split_index')} names no CTR border of features_info.ctrs")

    def assign_columns(self, n: int) -> None:
        """Column n + r for the r-th used CTR (in features_info order); loads the tables they read."""
        self._load_tables()
        for r, j in enumerate(sorted(self.used)):
            ctr = self.used[j]
            ctr.column = n + r
            if self._table_key(ctr) not in self.tables:
                self.m.fail(ctr.path, f"{self.describe(ctr)} has no table in ctr_data")
            self._values(ctr)

    def training_hashes(self) -> dict[int, set[int]]:
        """{flat categorical feature: hashes of its training categories}, from the tables of CTRs
        over that feature alone: such a table is keyed by CalcHash(0, h) = M²·h (M odd, so
        invertible mod 2^64), which gives back the hash h of every category seen in training."""
        inv2 = pow(MAGIC, -2, 1 << 64)
        seen: dict[int, set[int]] = {}
        for key, table in self.tables.items():
            _, cat_ids, floats, onehots = key
            if len(cat_ids) != 1 or floats or onehots:
                continue
            for k in table.keys:
                h = (k * inv2) & _M64
                if h < 1 << 31 or h >= (1 << 64) - (1 << 31):
                    seen.setdefault(self.feats.cat_flat[cat_ids[0]], set()).add(s64(h))
        return seen

    def check_categories(self, cats, seen: dict[int, set[int]]) -> None:
        """Every training category of a decimal-coded column must be the string of a code in
        range: one that is not (a word, a code past `cat_code_bound`) could never be entered, so it
        is refused, as for one-hot splits, rather than compiled into a model that never finds it."""
        for flat, hashes in sorted(seen.items()):
            if cats.encoding.get(flat) != "decimal":
                continue
            missing = sorted(h for h in hashes if h not in cats.preimages)
            if missing:
                self.m.fail(
                    f"features_info.categorical_features (flat feature {self.feats.describe(flat)})",
                    f"categorical feature {self.feats.describe(flat)}: the CTR statistics hold {len(missing)} of {len(hashes)} training "
                    f"categories (CatBoost hash {missing[0]}{', ...' if len(missing) > 1 else ''}) that are not the decimal string of "
                    f"any integer code in [-{cats.bound}, {cats.bound}]",
                    notes=[
                        f"pass cat_vocab={{{flat}: [...]}} listing the category strings (code i then means the i-th string), "
                        f"or a larger cat_code_bound (at most 2^24) for longer integer codes"
                    ],
                )

    def describe(self, ctr: _Ctr) -> str:
        feats = self.feats
        names = [feats.describe(feats.cat_flat[i]) for i in ctr.cats + [i for i, _ in ctr.onehots]]
        what = "categorical feature " if len(names) == 1 else "categorical features "
        extra = " and binarized float features" if ctr.floats else ""
        return f"the {ctr.type} CTR over {what}{', '.join(names)}{extra}"

    # ----- values ------------------------------------------------------------------------------

    def _values(self, ctr: _Ctr) -> None:
        """ctr.values[i]: the CTR of the i-th key; ctr.empty: the value of a hash not in the table."""
        m = self.m
        t = self.tables[self._table_key(ctr)]
        path = f"ctr_data (table of {ctr.path})"
        if ctr.type in ("Counter", "FeatureFreq"):
            ctr.empty = ctr.calc(0, t.denominator)
            ctr.values = [ctr.calc(r[0], t.denominator) for r in t.rows]
        elif ctr.type in ("BinarizedTargetMeanValue", "FloatTargetMeanValue"):
            if t.rows and len(t.rows[0]) != 2:
                m.fail(path, f"a mean history has 2 values (sum, count), found {len(t.rows[0])}")
            ctr.empty = ctr.calc(0, 0)
            ctr.values = [ctr.calc(self._sum(r[0]), int(r[1])) for r in t.rows]
        else:
            classes = len(t.rows[0]) if t.rows else 2
            if not 0 <= ctr.tbi < classes or (ctr.type == "Borders" and classes < 2):
                m.fail(ctr.path, f"target_border_idx {ctr.tbi} does not fit a table of {classes} classes")
            ctr.empty = ctr.calc(0, 0)
            vals = []
            for r in t.rows:
                r = [int(v) for v in r]
                if ctr.type == "Buckets":
                    good, total = r[ctr.tbi], sum(r)
                elif classes > 2:
                    good = sum(r[ctr.tbi + 1 :])
                    total = sum(r[: ctr.tbi + 1]) + good
                else:
                    good, total = r[1], r[0] + r[1]
                vals.append(ctr.calc(good, total))
            ctr.values = vals

    def _sum(self, v) -> np.float32:
        if self.exact_sums or float(v).is_integer():
            return np.float32(v)
        return np.float32(0.0)  # NJson's GetInteger() of a non-integral double

    # ----- IR ----------------------------------------------------------------------------------

    def emit(self, block, x, cats, name: str):
        """Ops appended to `block` computing x' = concat(x, ctr columns); returns x'.

        Vectorised across features: the categorical hashes of all columns are one tensor
        computation, and the binary searches of every CTR column run together on a tensor of
        hashes over one key table holding every CTR's keys in its own section."""
        used = [self.used[j] for j in sorted(self.used)]
        em = Emitter((1,), location=NameLoc(name, "features_info.ctrs"))
        X = em.wrap(x)
        feats = self.feats
        need = sorted({i for c in used for i in c.cats + [i for i, _ in c.onehots]})
        hashes = self._cat_hashes(em, X, need, cats)
        bits: dict[tuple, E] = {}
        hash_of: dict[tuple, E] = {}  # one projection hash per table (CTR types of one projection share it)
        for ctr in used:
            if self._table_key(ctr) in hash_of:
                continue
            em.location = NameLoc(name, ctr.path)
            # h = CalcHash(...CalcHash(CalcHash(0, v_0), v_1)..., v_{L-1}) = Σ M^(L+1-i) · v_i (mod 2^64):
            # a multiply per categorical value, a select per 0/1 value
            L = len(ctr.cats) + len(ctr.floats) + len(ctr.onehots)
            coef = [s64(pow(MAGIC, L + 1 - i, 1 << 64)) for i in range(L)]
            terms, valid = [], None
            for idx in ctr.cats:
                terms.append(hashes[idx][0] * coef[len(terms)])
                valid = hashes[idx][1] if valid is None else valid & hashes[idx][1]
            for idx, border in ctr.floats:
                b = bits.get(("f", idx, float(border)))
                if b is None:
                    b = bits[("f", idx, float(border))] = _float_bit(X.extract(feats.float_flat[idx]), border, feats.nan_treatment[idx])
                terms.append(where(b, em.const(coef[len(terms)], i64), em.const(0, i64)))
            for idx, value in ctr.onehots:
                hv, ok = hashes[idx]
                terms.append(where(ok & hv.eq(value), em.const(coef[len(terms)], i64), em.const(0, i64)))
            h = terms[0]
            for t in terms[1:]:
                h = h + t
            if valid is not None:  # a categorical value no string is made of: a hash never found
                h = where(valid, h, h.const(s64(EMPTY_KEY)))
            hash_of[self._table_key(ctr)] = _name(h, f"ctr{ctr.j}_hash")
        em.location = NameLoc(name, "features_info.ctrs")
        # One search per distinct table, the tables of one padded width searched together.
        tables: list[tuple] = []
        for ctr in used:
            if self._table_key(ctr) not in tables:
                tables.append(self._table_key(ctr))
        width = {t: max(2, _padded(len(self.tables[t].keys))) for t in tables}
        keys: list[int] = []  # every table's sorted keys, padded with 2^64-1 to its width
        offset: dict[tuple, int] = {}
        for t in tables:
            offset[t] = len(keys)
            keys += self.tables[t].keys + [EMPTY_KEY] * (width[t] - len(self.tables[t].keys))
        key_table = np.array([s64(k) for k in keys] + [s64(EMPTY_KEY)] * (_padded(len(keys) - 1) - len(keys)), np.int64)
        where_is: dict[tuple, tuple[E, E]] = {}  # table -> (index of the key <= hash, found)
        for w in sorted(set(width.values())):
            group = [t for t in tables if width[t] == w]
            tag = "ctr_w" + str(w)
            H = _name(_join([hash_of[t] for t in group]), f"{tag}_hash")
            idx, found = _search(em, H, [offset[t] for t in group], w, keys, key_table, tag)
            for lane, t in enumerate(group):
                where_is[t] = (idx, found) if len(group) == 1 else (idx.extract(lane), found.extract(lane))
        # the value table: per CTR column, the value of each key of its table (padding: not found)
        values: list = []
        shift: list[int] = []
        for ctr in used:
            t = self._table_key(ctr)
            shift.append(len(values) - offset[t])
            values += list(ctr.values) + [ctr.empty] * (width[t] - len(ctr.values))
        value_table = np.array(values + [np.float32(0)] * (_padded(len(values) - 1) - len(values)), np.float32)
        idx = _join([where_is[self._table_key(c)][0] for c in used])
        found = _name(_join([where_is[self._table_key(c)][1] for c in used]), "ctr_found")
        stat = _name((idx + _vec(em, shift, i64)).lookup(value_table, f32), "ctr_stat")
        ctr_values = _name(where(found, stat, _vec(em, [c.empty for c in used], f32)), "ctr")
        out = _name(X.concat(ctr_values), "x_ctr")
        for op in em.ops:
            block.add_op(op)
        return out.v

    def _cat_hashes(self, em, X: E, need: list[int], cats) -> dict[int, tuple[E, E]]:
        """{cat_feature_index: (hash, valid)}: the decimal-coded columns hashed together as one
        tensor, the vocabulary-coded ones read from one table of their words' hashes."""
        feats = self.feats
        decimal = [i for i in need if isinstance(cats.encoding[feats.cat_flat[i]], str)]
        vocab = [i for i in need if i not in decimal]
        out: dict[int, tuple[E, E]] = {}
        for group, enc in ((decimal, "decimal"), (vocab, "vocab")):
            if not group:
                continue
            cols = [X.extract(feats.cat_flat[i]) for i in group]
            v = cols[0].concat(*cols[1:]) if len(cols) > 1 else cols[0]
            tag = "cat" + "_".join(str(feats.cat_flat[i]) for i in group)
            if enc == "decimal":
                h, ok = _decimal_hash(em, v, cats.bound, tag)
            else:
                h, ok = _vocab_hash(em, v, [cats.encoding[feats.cat_flat[i]] for i in group])
            _name(ok, f"{tag}_ok")
            _name(h, f"{tag}_hash")
            for lane, i in enumerate(group):
                if len(group) == 1:
                    out[i] = (h, ok)
                else:
                    out[i] = (_name(h.extract(lane), f"cat{feats.cat_flat[i]}_hash"), _name(ok.extract(lane), f"cat{feats.cat_flat[i]}_ok"))
        return out


def _join(es: list[E]) -> E:
    return es[0].concat(*es[1:]) if len(es) > 1 else es[0]


def _search(em, H: E, offsets: list[int], w: int, keys: list[int], key_table: np.ndarray, tag: str) -> tuple[E, E]:
    """Per lane: the index of the last key <= H in the lane's section of `w` sorted keys (each
    section ends in 2^64-1), and whether that key is H.  The first two levels of the binary
    search read constants (one candidate, then two); the others read the table."""
    last_le = _vec(em, [o - 1 for o in offsets], i64)  # index of the last key known to be <= H
    last = _vec(em, [s64(EMPTY_KEY)] * len(offsets), i64)  # that key
    step, level, went = w // 2, 0, None
    while step >= 1:
        if level == 0:
            at = _vec(em, [o + step - 1 for o in offsets], i64)
            probe = _vec(em, [s64(keys[o + step - 1]) for o in offsets], i64)
        elif level == 1:
            at = last_le + step
            up = _vec(em, [s64(keys[o + 2 * step + step - 1]) for o in offsets], i64)
            probe = where(went, up, _vec(em, [s64(keys[o + step - 1]) for o in offsets], i64))
        else:
            at = last_le + step
            probe = at.lookup(key_table, i64)
        went = probe.cmp("ule", H)
        last_le = where(went, at, last_le)
        last = where(went, probe, last)
        step, level = step // 2, level + 1
    return _name(last_le, f"{tag}_index"), _name(last.eq(H), f"{tag}_found")


def _vec(em, values, elem) -> E:
    """A constant tensor with one value per lane."""
    from ir.dialects import arith
    from ir.types import TensorType

    arr = np.asarray(values, elem.numpy)
    return em.emit(arith.ConstantOp.build(arr, TensorType((len(arr),), elem)))


def _name(e: E, hint: str) -> E:
    e.v.name_hint = hint
    return e


def _padded(n: int) -> int:
    """A power of two > n (at least one padding key, so the search never wraps)."""
    size = 1
    while size <= n:
        size *= 2
    return size


def _float_bit(v: E, border: np.float32, treatment: str) -> E:
    """The binarized float feature: x > border (NaN: true only under AsTrue), as i1."""
    bit = v.gt(float(border))
    return bit | v.isnan() if treatment == "AsTrue" else bit


# ----- the category hash at run time ----------------------------------------------------------


def _hash16(u: E, v: E) -> E:
    kmul = s64(_KMUL)
    a = (u ^ v) * kmul
    a = a ^ a.lshr(47)
    b = (v ^ a) * kmul
    b = b ^ b.lshr(47)
    return b * kmul


def _vocab_hash(em, v: E, vocabs: list[list[str]]) -> tuple[E, E]:
    """(hash, valid) per lane: code i of lane r is vocabs[r][i]; the hashes come from one table."""
    from .catboost import cat_hash

    c = v.to_int(i64)
    ok = c.to_float(f32).eq(v) & c.cmp("sge", 0) & c.cmp("slt", _vec(em, [len(w) for w in vocabs], i64))
    offsets, table = [], []
    for words in vocabs:
        offsets.append(len(table))
        table += [cat_hash(w) for w in words]
    table = np.array(table + [0] * (_padded(len(table) - 1) - len(table)), np.int64)
    h = (where(ok, c, 0) + _vec(em, offsets, i64)).lookup(table, i64)
    return h, ok


def _decimal_hash(em, v: E, bound: int, tag: str = "cat") -> tuple[E, E]:
    """(hash, valid) per lane: the ui32 CatBoost hash of str(c) sign-extended to i64, and whether
    the input is an integer code c with |c| <= bound at all.

    The digits are found in i32 (cheap in every back-end's vectors): a = hi·10^4 + lo with
    hi = trunc(a / 10^4) in f64 (exact: a < 2^24, the quotient's error is far below the 10^-4 gap
    to the next integer), then x // 10 = (x · 52429) >> 19, exact for x < 43699.  Only the
    CityHash multiplications need i64."""
    from ir.dialects.mathimpl.dsl import f64, i32

    c = v.to_int(i32)  # saturating: |v| >= 2^31 fails the check below
    ok = c.to_float(f32).eq(v)  # an integer (NaN, ±inf and fractions fail)
    neg = c.lt(0)
    a = where(neg, -c, c)
    ok = ok & a.cmp("ule", bound)  # unsigned: -2^31 (a saturated code) is out of range too
    a = where(ok, a, 0)  # 0 <= a <= 2^24 from here on
    hi = (a.to_float(f64) / 10000.0).to_int(i32)
    lo = a - hi * 10000
    digits = []  # least significant first
    for x in (lo, hi):
        for _ in range(4):
            q = (x * 52429).lshr(19)
            digits.append(x - q * 10)
            x = q
    one, zero = a.const(1), a.const(0)
    nd = one
    for k in range(1, 8):  # number of digits, 1..8
        nd = nd + where(a.cmp("sge", 10**k), one, zero)
    # the 8 digit characters, most significant in byte 0: digits 7..4 then 3..0
    top = bottom = None
    for k in range(4):
        t = (digits[4 + k] + 48) << (8 * (3 - k))
        b = (digits[k] + 48) << (8 * (3 - k))
        top = t if top is None else top | t
        bottom = b if bottom is None else bottom | b
    full = top.ext(i64) | (bottom.ext(i64) << 32)
    word = _name(full.lshr(((8 - nd) << 3).ext(i64)), f"{tag}_digits")  # the nd digit characters, little-endian
    n32 = _name(nd + where(neg, one, zero), f"{tag}_len")  # string length, 1..9
    n = n32.ext(i64)
    w0 = _name(where(neg, (word << 8) | 45, word), f"{tag}_bytes")  # '-' first
    w1 = where(neg, word.lshr(56), word.const(0))  # the 9th byte of "-dddddddd"
    # CityHash64 HashLen0to16: 1..3 bytes
    k2, k3 = s64(_K2), s64(_K3)
    byte0 = w0 & 255
    mid = w0.lshr((n32.lshr(1) << 3).ext(i64)) & 255
    last = w0.lshr(((n32 - 1) << 3).ext(i64)) & 255
    y = byte0 + (mid << 8)
    z = n + (last << 2)
    hs = (y * k2) ^ (z * k3)
    h_short = (hs ^ hs.lshr(47)) * k2
    # 4..8 bytes: HashLen16(n + (first4 << 3), last4); 9 bytes: HashLen16(first8, Rotate(last8 + n, 9)) ^ last8
    long_ = n32.cmp("sgt", 8)
    last8 = w0.lshr(8) | (w1 << 56)
    bn = last8 + n
    u = where(long_, w0, n + ((w0 & 0xFFFFFFFF) << 3))
    w = where(long_, bn.lshr(9) | (bn << 55), w0.lshr(((n32 - 4) << 3).ext(i64)) & 0xFFFFFFFF)
    h16 = _hash16(u, w)
    h = where(n32.cmp("sle", 3), h_short, where(long_, h16 ^ last8, h16))
    h = (h << 32) >> 32  # the low 32 bits (ui32), widened through int: sign extension
    return h, ok
