"""networkx views of the IR for passes.

* `OpGraph`: the op graph of one block (a function body) as a `MultiDiGraph` — block arguments
  and ops are nodes (insertion order = block order), each def-use pair an edge keyed
  `(result index, operand index)`.  A use inside an op's regions counts as a use by that op.
  Register it with a `Rewriter` (`rewriter.listeners.append(view)`) and it stays consistent
  with the IR as patterns rewrite it.
* Trees: `passes.rewrite.TreeGraph` wraps `NodeTable.as_graph()` (a `DiGraph` with yes/no edges).
"""

from __future__ import annotations

from ir.core import Block, BlockArgument, Operation, Value

from .rewrite import RewriteListener


class OpGraph(RewriteListener):
    """Def-use graph of one block, kept in sync through rewriter notifications."""

    def __init__(self, block: Block):
        import networkx as nx  # imported when a pass builds a view (a compile may need none)

        self.block = block
        self.graph = nx.MultiDiGraph()
        for a in block.args:
            self.graph.add_node(a, kind="arg", index=a.index)
        for op in block.ops:
            self.graph.add_node(op, kind="op", name=op.name)
        for op in block.ops:
            self._add_in_edges(op)

    # ----- queries ------------------------------------------------------------------------
    def node_of(self, v: Value):
        """The graph node that defines `v` (an op, or the block argument itself)."""
        if isinstance(v, BlockArgument):
            return v
        return self._top(v.owner)

    def _top(self, op: Operation) -> Operation | None:
        """The op of this block that `op` is (or is nested in)."""
        while op is not None and op.parent is not self.block:
            op = op.parent_op
        return op

    def producers(self, op: Operation) -> list:
        """Nodes whose values `op` uses, in operand order, without repeats."""
        seen = []
        for p, _, _key in sorted(self.graph.in_edges(op, keys=True), key=lambda e: e[2][1]):
            if p not in seen:
                seen.append(p)
        return seen

    def users(self, node) -> list[Operation]:
        """Ops using any value of `node`, in block order, without repeats."""
        users = {u for _, u in self.graph.out_edges(node)}
        return [op for op in self.block.ops if op in users]

    def ops_in_order(self) -> list[Operation]:
        """Ops in a deterministic topological order (the block's own order is one)."""
        return [op for op in self.block.ops if op in self.graph]

    # ----- maintenance ----------------------------------------------------------------------
    def _add_in_edges(self, op: Operation) -> None:
        for inner in op.walk():
            for i, v in enumerate(inner.operands):
                src = self.node_of(v)
                if src is None or src is op:
                    continue  # defined inside op itself
                self.graph.add_edge(src, op, key=(v.index if not isinstance(v, BlockArgument) else 0, i), value=v)

    def _refresh(self, op: Operation) -> None:
        top = self._top(op)
        if top is None or top not in self.graph:
            return
        self.graph.remove_edges_from(list(self.graph.in_edges(top, keys=True)))
        self._add_in_edges(top)

    def op_inserted(self, op: Operation) -> None:
        if op.parent is not self.block:
            self._refresh(op)
            return
        self.graph.add_node(op, kind="op", name=op.name)
        self._add_in_edges(op)

    def op_erased(self, op: Operation) -> None:
        if op in self.graph:
            self.graph.remove_node(op)
        else:
            self._refresh(op)

    def op_modified(self, op: Operation) -> None:
        self._refresh(op)

    def uses_replaced(self, old: Value, new: Value) -> None:
        for user, _ in new.uses:
            self._refresh(user)


def op_graph(block: Block):
    """A snapshot def-use MultiDiGraph of a block (see `OpGraph` for a view that follows rewrites)."""
    return OpGraph(block).graph
