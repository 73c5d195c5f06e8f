"""The rewrite toolkit: the worklist driver reaches a fixpoint deterministically and turns a
loop into a diagnostic, the rewriter records every change, the op-graph view follows rewrites,
and tree graphs round-trip."""

import numpy as np
import pytest

from ir.diagnostics import TimberError
from ir.dialects import arith, func
from ir.dialects.tree import NodeTable, TreeOp
from ir.parser import parse_module
from ir.printer import print_op
from passes.graph import OpGraph, op_graph
from passes.rewrite import OpPattern, Rewriter, apply_patterns
from passes.tree_rewrite import TreeGraph, TreeRewriter
from tests import irgen

TEXT = """module {
  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
    %a = arith.negf %x : tensor<2xf32>
    %b = arith.negf %a : tensor<2xf32>
    %c = arith.negf %b : tensor<2xf32>
    %d = arith.negf %c : tensor<2xf32>
    %e = arith.addf %d, %x : tensor<2xf32>
    func.return %e : tensor<2xf32>
  }
}"""


class DoubleNeg(OpPattern):
    root = "arith.negf"

    def match_and_rewrite(self, op, rewriter):
        inner = op.operands[0].owner
        if not isinstance(inner, arith.NegFOp):
            return False
        rewriter.replace_op(op, [inner.operands[0]])
        return True


class Flip(OpPattern):
    """Swaps addf operands forever: never converges."""

    root = "arith.addf"

    def match_and_rewrite(self, op, rewriter):
        a, b = op.operands
        rewriter.set_operand(op, 0, b)
        rewriter.set_operand(op, 1, a)
        return True


def test_fixpoint_and_recorded_changes():
    m = parse_module(TEXT)
    fn = m.lookup("f")
    r = Rewriter()
    view = OpGraph(fn.body)
    r.listeners.append(view)
    n = apply_patterns(list(fn.body.ops), [DoubleNeg()], r)
    assert n == 2
    # -(-x) twice: the addf now reads x directly; the dangling negs are still there (no DCE).
    add = next(o for o in fn.body.ops if o.name == "arith.addf")
    assert add.operands[0] is fn.args[0]
    assert [c.kind for c in r.changes] == ["replace", "replace"]
    fresh = op_graph(fn.body)
    assert sorted((str(type(u).__name__), str(type(v).__name__), k) for u, v, k in view.graph.edges(keys=True)) == sorted(
        (str(type(u).__name__), str(type(v).__name__), k) for u, v, k in fresh.edges(keys=True)
    )
    assert set(view.graph.nodes) == set(fresh.nodes)


def test_driver_is_deterministic():
    texts = set()
    for _ in range(3):
        m = parse_module(TEXT)
        apply_patterns(list(m.lookup("f").body.ops), [DoubleNeg()], Rewriter())
        texts.add(print_op(m))
    assert len(texts) == 1


def test_non_convergence_is_a_diagnostic():
    m = parse_module(TEXT)
    with pytest.raises(TimberError, match="did not converge after 20 rewrites .*Flip on 'arith.addf'"):
        apply_patterns(list(m.lookup("f").body.ops), [Flip()], Rewriter(), max_rewrites=20)


def test_op_graph_shape():
    m = irgen.random_module(0, transform="sigmoid")
    g = op_graph(m.lookup("predict").body)
    kinds = [d["kind"] for _, d in g.nodes(data=True)]
    assert kinds.count("arg") == 1
    call = next(n for n in g.nodes if isinstance(n, func.CallOp))
    assert list(g.predecessors(call)) == [m.lookup("predict").args[0]]
    assert g.number_of_edges() == 3  # x -> call, call -> sigmoid, sigmoid -> return


def test_tree_graph_round_trip_and_rewrites():
    rng = np.random.default_rng(1)
    for _ in range(20):
        t = irgen.random_table(rng, 4, 4, np.float32, np.float32, linear=rng.random() < 0.3)
        tg = TreeGraph(t, hits=np.arange(t.n_nodes))
        back, hits = tg.to_table()
        assert back.n_nodes == t.n_nodes and back.check(4) is None
        np.testing.assert_array_equal(np.sort(hits), np.arange(t.n_nodes))
        if t.n_nodes > 1:
            rw = TreeRewriter(tg)
            y, _ = tg.kids(0)
            rw.replace_node(0, y)
            small, _ = tg.to_table()
            assert small.check(4) is None and small.n_nodes == len(tg.subtree(tg.root))
            rw.make_leaf(tg.root, np.array([7.0], np.float32))
            leaf, _ = tg.to_table()
            assert leaf.n_nodes == 1 and leaf.leaf[0, 0] == 7.0


def test_tree_ops_accept_rebuilt_tables():
    m = irgen.random_module(2)
    for op in m.walk():
        if isinstance(op, TreeOp):
            table, _ = TreeGraph(op.table).to_table()
            assert isinstance(table, NodeTable)
            op.table = table
    from ir.verifier import verify

    verify(m)


def test_tree_graph_matches_the_ir_graph_view():
    """TreeGraph builds the same graph as `NodeTable.as_graph()` (faster), and either rebuild
    path gives the same table."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        t = irgen.random_table(rng, 4, 4, np.float64, np.float64, leaf_dim=2 if rng.random() < 0.3 else 1)
        ours, theirs = TreeGraph(t).g, t.as_graph()
        assert set(ours.edges(data="branch")) == set(theirs.edges(data="branch"))
        for n, d in theirs.nodes(data=True):
            for k, v in d.items():
                mine = ours.nodes[n][k]
                if k in ("categories", "linear"):
                    assert mine == v
                else:  # same value, bit for bit, in the IR's dtype (ours may hold Python ints)
                    assert np.asarray(mine, np.asarray(v).dtype).tobytes() == np.asarray(v).tobytes(), (n, k)
        a, _ = TreeGraph(t).to_table()
        b = NodeTable.from_graph(theirs)
        assert a.equals(b)
