"""LightGBM front-end parity: models trained here with the real LightGBM (seconds in all),
compiled with `timber.frontends.lightgbm.load`, evaluated with the IR interpreter, and compared
with `Booster.predict` on random and adversarial rows.

Bit for bit everywhere LightGBM is exact: the raw score (`@margin`), and `@predict` for every
objective without an `exp`.  Where the objective applies `exp` (sigmoid, softmax, poisson...),
LightGBM calls the C library's `exp` and Timber its own (`ir/dialects/mathimpl/`), which differ in the
last bit on a fraction of a percent of inputs: there `@predict` must be within 2 ulp (one ulp of
exp can move a sigmoid or softmax result by up to two), and separately LightGBM's formula
evaluated with the C library's exp (Python's `math.exp`) on Timber's margin must reproduce
`Booster.predict` bit for bit — so the formula is exact and only the exp differs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from ir.dialects.tree import ZERO_THRESHOLD, Pred  # noqa: E402
from ir.interpreter import run  # noqa: E402
from ir.parser import parse_module  # noqa: E402
from ir.printer import print_op  # noqa: E402
from tests.rows import adversarial_rows as shared_rows  # noqa: E402
from tests.rows import rows_strategy  # noqa: E402
from timber.frontends import lightgbm as tl  # noqa: E402

KZ = ZERO_THRESHOLD  # LightGBM's kZeroThreshold, 1e-35f as a double
EXP_OBJECTIVES = ("binary", "multiclass", "multiclassova", "cross_entropy", "cross_entropy_lambda", "poisson", "gamma", "tweedie")


# ----- helpers ----------------------------------------------------------------------------


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units in the last place of b (0 where equal or both NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        return np.where(same, 0.0, np.abs(a - b) / np.spacing(np.abs(b)))


def _libm_exp(v: float) -> float:
    try:
        return math.exp(v)  # the C library's exp, as LightGBM calls it
    except OverflowError:
        return math.inf


def lightgbm_formula(objective: str, margin: np.ndarray, n_iter: int = 1, average: bool = False) -> np.ndarray:
    """LightGBM's GBDT::Predict after PredictRaw, with the C library's exp."""
    vexp = np.vectorize(_libm_exp, otypes=[np.float64])

    def exp(a):
        with np.errstate(over="ignore"):  # exp overflowing to +inf is what the C library does too
            return vexp(a)

    words = objective.split()
    name, params = words[0], dict(w.split(":", 1) for w in words[1:] if ":" in w)
    s = margin / float(n_iter) if average else margin.copy()
    if name in ("binary", "multiclassova", "cross_entropy"):
        alpha = float(params.get("sigmoid", 1.0))
        return 1.0 / (1.0 + exp(-alpha * s))
    if name == "multiclass":
        wmax = s[:, 0].copy()
        for i in range(1, s.shape[1]):
            wmax = np.maximum(s[:, i], wmax)
        e = exp(s - wmax[:, None])
        wsum = np.zeros(len(s))
        for i in range(s.shape[1]):
            wsum = wsum + e[:, i]
        return e / wsum[:, None]
    if name in ("poisson", "gamma", "tweedie"):
        return exp(s)
    if name == "cross_entropy_lambda":
        return np.array([math.log1p(v) for v in exp(s).ravel()]).reshape(s.shape)  # the C library's log1p
    if "sqrt" in words[1:]:
        return np.sign(s) * s * s
    return s


def adversarial_rows(module, base: np.ndarray, rng, limit: int = 4000) -> np.ndarray:
    """`base` plus rows that put one feature on a split's edge: every threshold and its double
    neighbours, values around ±1e-35f, ±0, ±inf, NaN, and for categorical splits codes in and
    out of the set, past the bitset, negative, fractional, NaN, ±inf and beyond 2^31."""
    ens = next(op for op in module.lookup("margin").walk() if op.name == "tree.ensemble")
    special: dict[int, set[float]] = {}
    for t in ens.trees:
        tab = t.table
        for i in np.flatnonzero(tab.pred != Pred.LEAF).tolist():
            f = int(tab.feature[i])
            vals = special.setdefault(f, set())
            if tab.pred[i] == Pred.IN:
                cats = tab.category_set(i)
                top = 32 * int(tab.cat_len[i])
                for c in cats[:8] + [top, top + 1, top + 31]:
                    vals.update((float(c), c + 0.5, c + 0.999, c - 0.25))
                vals.update((-1.0, -0.5, -0.0, 2.0**31, 2.0**31 - 1, 1e10, -(2.0**31) - 0.5))
            else:
                thr = float(tab.threshold[i])
                vals.update((thr, np.nextafter(thr, -np.inf), np.nextafter(thr, np.inf)))
    common = [0.0, -0.0, KZ, -KZ, np.nextafter(KZ, 1), np.nextafter(-KZ, -1), np.nextafter(KZ, 0), 1e-36, -1e-36, 5e-324]
    common += [np.nan, np.inf, -np.inf, 1e300, -1e300]
    rows = []
    for f, vals in sorted(special.items()):
        for v in sorted(vals | set(common), key=lambda z: (np.isnan(z), z)):
            r = base[rng.integers(len(base))].copy()
            r[f] = v
            rows.append(r)
    rows = np.array(rows) if rows else np.zeros((0, base.shape[1]))
    if len(rows) > limit:
        rows = rows[rng.choice(len(rows), limit, replace=False)]
    all_nan = np.full((1, base.shape[1]), np.nan)
    all_zero_tiny = np.full((1, base.shape[1]), -KZ)
    # tests/rows.py: float32 and float64 neighbours, extremes; it builds one row per value per
    # feature, too many for very wide models (5057 features: millions of cells), where the rows
    # above already cover every threshold.
    shared = shared_rows(module, n_mixed=64) if base.shape[1] <= 300 else np.zeros((0, base.shape[1]))
    if len(shared) > limit:
        shared = shared[rng.choice(len(shared), limit, replace=False)]
    return np.vstack([base, rows, shared, all_nan, all_zero_tiny, np.zeros((1, base.shape[1]))])


def check(module, booster, X, *, num_iteration=None, exact_predict=None):
    """Margin bit for bit; predict bit for bit or (exp objectives) formula exact + within 2 ulp."""
    kw = {} if num_iteration is None else {"num_iteration": num_iteration}
    raw = booster.predict(X, raw_score=True, **kw)
    pred = booster.predict(X, **kw)
    m = run(module, X, "margin")
    p = run(module, X, "predict")
    assert m.shape[1] == (1 if raw.ndim == 1 else raw.shape[1])
    np.testing.assert_array_equal(m.reshape(raw.shape), raw)
    objective = module.attributes["timber.objective"].value
    name = objective.split()[0]
    if exact_predict is None:
        exact_predict = name not in EXP_OBJECTIVES
    if exact_predict:
        np.testing.assert_array_equal(p.reshape(pred.shape), pred)
        return
    text = booster.model_to_string()
    average = "\naverage_output\n" in text
    n_iter = module.attributes["timber.num_iteration"].value
    formula = lightgbm_formula(objective, m, n_iter, average)
    np.testing.assert_array_equal(formula.reshape(pred.shape), pred)
    assert ulps(p.reshape(pred.shape), pred).max() <= 2


def roundtrip(module) -> None:
    text = print_op(module)
    assert print_op(parse_module(text)) == text


def train(params, X, y, rounds=6, **kw):
    base = dict(verbose=-1, num_leaves=8, min_data_in_leaf=5, seed=1, deterministic=True, num_threads=1)
    return lgb.train({**base, **params}, lgb.Dataset(X, y, **kw), rounds)


def via_file(booster, tmp_path, name="model.txt"):
    """Save and reload, as users do: the reference is the Booster read back from the file."""
    path = tmp_path / name
    booster.save_model(str(path))
    return lgb.Booster(model_file=str(path)), path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _data(rng, n=400, f=5):
    X = rng.normal(size=(n, f))
    X[:, 1] = np.abs(X[:, 1])
    X[rng.random(n) < 0.3, 1] = 0.0  # exact zeros: LightGBM puts thresholds at ±1e-35f
    X[:, 2] = -np.abs(X[:, 2])
    X[rng.random(n) < 0.3, 2] = 0.0
    y = X[:, 0] + 2 * (X[:, 1] > 0) - (X[:, 2] < 0) + 0.3 * X[:, 3] + rng.normal(size=n) * 0.1
    return X, y


# ----- objectives ---------------------------------------------------------------------------


OBJECTIVES = [
    ("regression", {}),
    ("regression", {"reg_sqrt": True}),
    ("regression_l1", {}),
    ("regression_l1", {"reg_sqrt": True}),
    ("huber", {}),
    ("fair", {}),
    ("quantile", {"alpha": 0.3}),
    ("mape", {}),
    ("poisson", {}),
    ("gamma", {}),
    ("tweedie", {}),
    ("binary", {}),
    ("binary", {"sigmoid": 0.7}),
    ("cross_entropy", {}),
    ("cross_entropy_lambda", {}),
    ("multiclass", {"num_class": 3}),
    ("multiclassova", {"num_class": 3}),
    ("multiclassova", {"num_class": 3, "sigmoid": 1.5}),
]


@pytest.mark.parametrize("objective,extra", OBJECTIVES, ids=[o + ("+" + "+".join(e) if e else "") for o, e in OBJECTIVES])
def test_objective(objective, extra, rng, tmp_path):
    X, y = _data(rng)
    if objective in ("poisson", "gamma", "tweedie", "mape"):
        y = np.exp(y / 3)
    elif objective in ("binary", "cross_entropy", "cross_entropy_lambda"):
        y = (y > 1).astype(float)
    elif objective.startswith("multiclass"):
        y = np.digitize(y, [0.5, 1.8]).astype(float)
    b = train({"objective": objective, **extra}, X, y)
    b, path = via_file(b, tmp_path)
    module = tl.load(path)
    assert module.attributes["timber.objective"].value.split()[0] == objective
    Xt = adversarial_rows(module, rng.normal(size=(200, X.shape[1])) * 2, rng)
    check(module, b, Xt)
    roundtrip(module)


def test_sigmoid_alpha_uses_mulf(rng, tmp_path):
    """`binary sigmoid:0.7` computes 1/(1+exp(-(0.7*s))): an arith.mulf before math.sigmoid."""
    X, y = _data(rng)
    b, path = via_file(train({"objective": "binary", "sigmoid": 0.7}, X, (y > 1).astype(float)), tmp_path)
    text = print_op(tl.load(path))
    assert "arith.mulf" in text and "math.sigmoid" in text
    assert "sigmoid:0.7" in text


def test_ranking_objectives(rng, tmp_path):
    X, y = _data(rng, n=300)
    rel = np.digitize(y, [0.0, 1.0, 2.0])
    for objective in ("lambdarank", "rank_xendcg"):
        b = train({"objective": objective}, X, rel, group=[30] * 10)
        b, path = via_file(b, tmp_path, objective + ".txt")
        module = tl.load(path)
        check(module, b, adversarial_rows(module, X[:100], rng))


def test_custom_objective_is_raw(rng, tmp_path):
    X, y = _data(rng)

    def l2(preds, data):
        g = preds - data.get_label()
        return g, np.ones_like(g)

    b = train({"objective": l2}, X, y)
    b, path = via_file(b, tmp_path)
    assert "objective=" not in path.read_text().split("Tree=0")[0]
    module = tl.load(path)
    assert module.attributes["timber.objective"].value == "custom"
    check(module, b, adversarial_rows(module, X[:100], rng))


def test_cross_entropy_lambda_is_log1p_of_exp(rng, tmp_path):
    """`log1p(exp(s))` as two ops; with weights (the case the objective exists for) and margins
    far enough out that exp(s) is tiny or huge."""
    X, y = _data(rng)
    w = rng.uniform(0.5, 3.0, len(y))
    b, path = via_file(
        train({"objective": "cross_entropy_lambda", "learning_rate": 1.0}, X, (y > 1).astype(float), rounds=20, weight=w), tmp_path
    )
    module = tl.load(path)
    text = print_op(module)
    assert "math.exp" in text and "math.log1p" in text
    Xt = adversarial_rows(module, rng.normal(size=(300, X.shape[1])) * 3, rng)
    check(module, b, Xt)
    roundtrip(module)
    import timber

    # the JIT calls the C library's exp and log1p, as LightGBM does: its exact bits, batch and single row
    jit = timber.compile(str(path))
    want = b.predict(Xt)
    np.testing.assert_array_equal(jit.predict(Xt), want)
    np.testing.assert_array_equal(np.concatenate([jit.predict(Xt[i : i + 1]) for i in range(0, len(Xt), 97)]), want[::97])
    # with Timber's own exp and log1p: the interpreter's bits
    np.testing.assert_array_equal(timber.compile(str(path), math="timber").predict(Xt), run(module, Xt, "predict").reshape(-1))


# ----- boosting types -------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1, "objective": "binary"},
        {"boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1, "objective": "regression"},
        {"boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1, "objective": "multiclass", "num_class": 3},
        {"boosting": "dart", "drop_rate": 0.5, "objective": "binary"},
        {"boosting": "gbdt", "data_sample_strategy": "goss", "objective": "regression"},
    ],
    ids=["rf-binary", "rf-regression", "rf-multiclass", "dart", "goss"],
)
def test_boosting(params, rng, tmp_path):
    X, y = _data(rng)
    if params["objective"] == "binary":
        y = (y > 1).astype(float)
    elif params["objective"] == "multiclass":
        y = np.digitize(y, [0.5, 1.8]).astype(float)
    b, path = via_file(train(params, X, y, rounds=7), tmp_path)
    module = tl.load(path)
    Xt = adversarial_rows(module, rng.normal(size=(200, X.shape[1])), rng)
    check(module, b, Xt)
    if params["boosting"] == "rf":
        assert "arith.divf" in print_op(module.lookup("predict"))
        # the raw score is the plain sum of the trees; only predict() averages
        assert "arith.divf" not in print_op(module.lookup("margin"))
    for k in (1, 3):
        check(tl.load(path, num_iteration=k), b, Xt, num_iteration=k)


# ----- missing values and the zero threshold ----------------------------------------------


@pytest.mark.parametrize(
    "params,kinds",
    [({}, {"missing(nan)"}), ({"zero_as_missing": True}, {"missing(zero)"}), ({"use_missing": False}, {"missing(nan-as-zero)"})],
    ids=["nan", "zero", "none"],
)
def test_missing_types(params, kinds, rng, tmp_path):
    X, y = _data(rng, n=600)
    X[rng.random(len(X)) < 0.2, 0] = np.nan
    X[rng.random(len(X)) < 0.2, 3] = np.nan
    b, path = via_file(train({"objective": "regression", **params}, X, np.nan_to_num(y)), tmp_path)
    text = path.read_text()
    assert "e-35" in text, "the data should make LightGBM put thresholds at ±1e-35f"
    module = tl.load(path)
    printed = print_op(module)
    for kind in kinds:
        assert kind in printed
    assert "lt -1.0000000180025095e-35" in printed or "le 1.0000000180025095e-35" in printed
    Xt = adversarial_rows(module, X[:150], rng)
    check(module, b, Xt)


def test_default_left_both_ways(rng, tmp_path):
    """NaN-trained features get default_left true on some splits and false on others."""
    X, y = _data(rng, n=800)
    nan = rng.random(len(X)) < 0.25
    X[nan, 0] = np.nan
    y = np.where(nan, 3.0, y)  # missing rows pull to one side or the other per split
    b, path = via_file(train({"objective": "regression", "num_leaves": 16}, X, y, rounds=10), tmp_path)
    dts = set(" ".join(line[14:] for line in path.read_text().splitlines() if line.startswith("decision_type=")).split())
    assert {"8", "10"} <= dts
    module = tl.load(path)
    check(module, b, adversarial_rows(module, X[:150], rng))


# ----- categorical splits ------------------------------------------------------------------


def test_categorical(rng, tmp_path):
    n = 1500
    X = rng.normal(size=(n, 4))
    X[:, 0] = rng.integers(0, 40, n)  # more than one 32-bit word of categories
    X[:, 2] = rng.integers(0, 5, n)
    X[rng.random(n) < 0.1, 2] = np.nan
    effect = rng.normal(size=40) * 2
    y = effect[X[:, 0].astype(int)] + np.nan_to_num(X[:, 2]) + X[:, 1] + rng.normal(size=n) * 0.1
    params = {"objective": "regression", "num_leaves": 16, "min_data_per_group": 5, "cat_smooth": 1, "max_cat_to_onehot": 4}
    b, path = via_file(train(params, X, y, rounds=10, categorical_feature=[0, 2]), tmp_path)
    module = tl.load(path)
    printed = print_op(module)
    assert " in {" in printed and 'cat_negative = "code"' in printed
    assert module.attributes["timber.feature_types"].items[0].value == "c"
    Xt = adversarial_rows(module, X[:200], rng)
    # codes beyond anything seen, negative, fractional, NaN, ±inf, huge
    extra = X[:12].copy()
    extra[:, 0] = [40, 63, 64, 1000, -1, -0.5, 0.5, 7.9, np.nan, np.inf, -np.inf, 2.0**40]
    check(module, b, np.vstack([Xt, extra]))


def test_pandas_categorical_kept(rng, tmp_path):
    pd = pytest.importorskip("pandas")
    n = 500
    levels = ["red", "green", "blue", "black"]
    df = pd.DataFrame({"c": pd.Categorical(rng.choice(levels, n), categories=levels), "x": rng.normal(size=n)})
    y = df["c"].cat.codes.to_numpy() * 1.5 + df["x"].to_numpy()
    b, path = via_file(train({"objective": "regression"}, df, y), tmp_path)
    module = tl.load(path)
    assert tl.pandas_categories(module) == [levels]
    codes = np.column_stack([df["c"].cat.codes.to_numpy().astype(float), df["x"].to_numpy()])
    np.testing.assert_array_equal(run(module, codes, "predict").ravel(), b.predict(df))


# ----- linear trees, single leaves, iterations ----------------------------------------------


def test_linear_trees(rng, tmp_path):
    X, y = _data(rng, n=600)
    X[rng.random(len(X)) < 0.1, 3] = np.nan
    b, path = via_file(train({"objective": "regression", "linear_tree": True, "linear_lambda": 0.1}, X, y, rounds=8), tmp_path)
    assert "is_linear=1" in path.read_text()
    module = tl.load(path)
    assert "linear(" in print_op(module)
    Xt = adversarial_rows(module, X[:200], rng)
    # tiny and signed-zero inputs reach the linear terms as +0.0 in LightGBM
    tiny = X[:8].copy()
    tiny[:, :] = [[KZ], [-KZ], [1e-36], [-1e-36], [-0.0], [np.nextafter(KZ, 1)], [5e-324], [-5e-324]]
    check(module, b, np.vstack([Xt, tiny]))
    roundtrip(module)


def test_linear_binary(rng, tmp_path):
    X, y = _data(rng, n=600)
    b, path = via_file(train({"objective": "binary", "linear_tree": True}, X, (y > 1).astype(float)), tmp_path)
    module = tl.load(path)
    check(module, b, adversarial_rows(module, X[:200], rng))


def test_single_leaf_trees(rng, tmp_path):
    X, y = _data(rng)
    b, path = via_file(train({"objective": "regression", "min_data_in_leaf": 1000}, X, y, rounds=3), tmp_path)
    assert "num_leaves=1" in path.read_text()
    module = tl.load(path)
    check(module, b, adversarial_rows(module, X[:50], rng))
    roundtrip(module)


def test_num_iteration_and_best_iteration(rng, tmp_path):
    X, y = _data(rng, n=600)
    train_set = lgb.Dataset(X[:400], y[:400])
    valid = lgb.Dataset(X[400:], y[400:], reference=train_set)
    params = dict(verbose=-1, num_leaves=8, min_data_in_leaf=5, learning_rate=0.6, objective="regression", num_threads=1)
    b = lgb.train(params, train_set, 200, valid_sets=[valid], callbacks=[lgb.early_stopping(2, verbose=False)], keep_training_booster=True)
    assert 0 < b.best_iteration < b.current_iteration()
    Xt = adversarial_rows(tl.load(b), X[:100], rng)
    # A Booster in memory: load() follows Booster.predict's default (the best iteration).
    check(tl.load(b), b, Xt)
    assert tl.load(b).attributes["timber.num_iteration"].value == b.best_iteration
    for k in (1, 2, b.current_iteration(), 10_000):
        check(tl.load(b, num_iteration=k), b, Xt, num_iteration=k)
    # saved with a limit: the file holds only those iterations
    path = tmp_path / "limited.txt"
    b.save_model(str(path), num_iteration=2)
    limited = lgb.Booster(model_file=str(path))
    assert tl.load(path).attributes["timber.num_iteration"].value == 2
    check(tl.load(path), limited, Xt)


def test_booster_and_sklearn_objects(rng):
    X, y = _data(rng)
    reg = lgb.LGBMRegressor(n_estimators=5, num_leaves=8, verbose=-1, n_jobs=1).fit(X, y)
    module = tl.load(reg)
    assert module.attributes["timber.source"].value == "<lightgbm.Booster>"
    np.testing.assert_array_equal(run(module, X, "predict").ravel(), reg.predict(X))
    text = reg.booster_.model_to_string()
    assert print_op(tl.load(text, source_name="m.txt")) == print_op(tl.load(reg.booster_, source_name="m.txt"))


# ----- exact decision semantics on hand-written models ---------------------------------------


def _one_split(threshold, decision_type, *, num_cat=0, cat="", leaves=(1.0, 2.0)) -> str:
    """A one-split, two-leaf regression model in LightGBM's v4 text format."""
    return (
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=0\n"
        "objective=regression\nfeature_names=f0\nfeature_infos=[-1:1]\ntree_sizes=0\n\n"
        f"Tree=0\nnum_leaves=2\nnum_cat={num_cat}\nsplit_feature=0\nsplit_gain=1\nthreshold={threshold!r}\n"
        f"decision_type={decision_type}\nleft_child=-1\nright_child=-2\nleaf_value={leaves[0]!r} {leaves[1]!r}\n"
        f"leaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\ninternal_weight=0\ninternal_count=2\n{cat}"
        "is_linear=0\nshrinkage=1\n\n\nend of trees\n\npandas_categorical:null\n"
    )


PROBES = np.array(
    [-KZ, KZ, 0.0, -0.0, 5e-36, -5e-36, 3e-36, -3e-36, np.nan, np.nextafter(-KZ, -1), np.nextafter(KZ, 1), np.nextafter(-KZ, 0)]
    + [np.nextafter(KZ, 0), 1e-300, -1e-300, np.inf, -np.inf, 0.5, -0.5, 1.0, -1.0]
)


@pytest.mark.parametrize("threshold", [-KZ, KZ, 3e-36, -3e-36, 0.0, -0.0, np.nextafter(-KZ, -1), np.nextafter(KZ, 1), 0.5, -0.5])
@pytest.mark.parametrize("decision_type", [0, 2, 4, 6, 8, 10, 12, 14])
def test_numerical_decision(threshold, decision_type):
    """Every missing type (incl. the undefined 3) × default_left on thresholds around ±1e-35f."""
    text = _one_split(float(threshold), decision_type)
    module = tl.load(text)
    b = lgb.Booster(model_str=text)
    np.testing.assert_array_equal(run(module, PROBES[:, None], "predict").ravel(), b.predict(PROBES[:, None]))


CAT_PROBES = np.array([0, 1, 2, 3, 5, 31, 32, 33, 63, 64, 95, 96, 1000, -1, -0.5, -0.999, -1.0001, 0.5, 2.7, 32.9, np.nan, np.inf, -np.inf])
CAT_PROBES = np.concatenate(
    [CAT_PROBES, [2.0**31 - 1, 2.0**31, 2.0**31 + 0.5, 2.0**32 + 1, -(2.0**31), -(2.0**31) - 1, 1e300, KZ, -KZ, -0.0]]
)


@pytest.mark.parametrize("words", ["5", "0 4294967295", "2147483649 0 1", "0"], ids=["one-word", "two-words", "three-words", "empty-word"])
@pytest.mark.parametrize("decision_type", [1, 3, 5, 7, 9, 11])
def test_categorical_decision(words, decision_type):
    n = len(words.split())
    cat = f"cat_boundaries=0 {n}\ncat_threshold={words}\n"
    text = _one_split(0.0, decision_type, num_cat=1, cat=cat)
    module = tl.load(text)
    b = lgb.Booster(model_str=text)
    np.testing.assert_array_equal(run(module, CAT_PROBES[:, None], "predict").ravel(), b.predict(CAT_PROBES[:, None]))


def test_categorical_bit_without_num_cat_is_numerical():
    """GetLeaf calls NumericalDecision on every node when the tree says num_cat=0."""
    text = _one_split(0.5, 1 | 2)
    module = tl.load(text)
    b = lgb.Booster(model_str=text)
    np.testing.assert_array_equal(run(module, PROBES[:, None], "predict").ravel(), b.predict(PROBES[:, None]))


def _linear_split(const: float, coeffs: list[float]) -> str:
    """One split on feature 0 at 100; both leaves linear in features 0..len(coeffs)-1."""
    n = len(coeffs)
    feats = " ".join(str(j) for j in range(n))
    cs = " ".join(repr(c) for c in coeffs)
    return (
        f"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx={n - 1}\n"
        f"objective=regression\nfeature_names={' '.join(f'f{j}' for j in range(n))}\nfeature_infos={' '.join(['[-1:1]'] * n)}\n"
        "tree_sizes=0\n\nTree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=100\ndecision_type=2\n"
        "left_child=-1\nright_child=-2\nleaf_value=7.5 -7.5\nleaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\n"
        f"internal_weight=0\ninternal_count=2\nis_linear=1\nleaf_const={const!r} {const!r}\nnum_features={n} {n}\n"
        f"leaf_features={feats}  {feats} \nleaf_coeff={cs}  {cs} \nshrinkage=1\n\n\nend of trees\n\npandas_categorical:null\n"
    )


def test_linear_leaf_sees_tiny_values_as_zero():
    """LightGBM's dense predict turns |x| <= 1e-35f into +0.0 before the linear terms."""
    text = _linear_split(0.0, [1e30, -3.0])
    module = tl.load(text)
    b = lgb.Booster(model_str=text)
    v = np.array([KZ, -KZ, 1e-36, -0.0, np.nextafter(KZ, 1), 5e-324, np.nan, 2.0, -np.inf])
    X = np.array([[a, c] for a in v for c in v])
    np.testing.assert_array_equal(run(module, X, "predict").ravel(), b.predict(X))
    np.testing.assert_array_equal(run(module, X, "margin").ravel(), b.predict(X, raw_score=True))


def test_hypothesis_rows_categorical_nan_model(tmp_path_factory):
    """Property: on any rows drawn from the model's edge values and arbitrary doubles, Timber's
    margin and prediction equal LightGBM's (margin bit for bit)."""
    from hypothesis import HealthCheck, given, settings

    rng = np.random.default_rng(77)
    n = 800
    X = rng.normal(size=(n, 4))
    X[:, 0] = rng.integers(0, 12, n)
    X[rng.random(n) < 0.15, 1] = np.nan
    X[rng.random(n) < 0.3, 2] = 0.0
    y = np.sin(X[:, 0]) + np.nan_to_num(X[:, 1]) + (X[:, 2] > 0) + rng.normal(size=n) * 0.1
    params = {"objective": "binary", "min_data_per_group": 5, "cat_smooth": 1}
    b, path = via_file(train(params, X, (y > 0.5).astype(float), categorical_feature=[0]), tmp_path_factory.mktemp("hyp"))
    module = tl.load(path)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows_strategy(module, max_rows=16))
    def prop(X):
        check(module, b, X)

    prop()
