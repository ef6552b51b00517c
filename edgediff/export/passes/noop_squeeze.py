"""Drop ``squeeze(dim)`` calls on dimensions that are not of size 1.

In PyTorch such a squeeze is a no-op, but the ONNX exporter lowers it to ``Squeeze(axes=[dim])``,
which ONNX Runtime rejects at load time ("Dimension of input 1 must be 1"). PixArt's transformer does
exactly this (``hidden_states.squeeze(1)`` on a (B, tokens, C) tensor). With fixed export shapes the
sizes are known, so the no-ops can be removed before conversion.
"""

from __future__ import annotations

import torch

_SQUEEZE_DIM = {torch.ops.aten.squeeze.dim, torch.ops.aten.squeeze.dims}


def _is_noop(node: torch.fx.Node) -> bool:
    if node.target not in _SQUEEZE_DIM:
        return False
    source = node.args[0]
    value = source.meta.get("val") if isinstance(source, torch.fx.Node) else None
    if value is None:
        return False
    dims = node.args[1] if isinstance(node.args[1], (list, tuple)) else [node.args[1]]
    shape = value.shape
    return all(shape[d] != 1 for d in dims)


def remove_noop_squeezes(program: torch.export.ExportedProgram) -> int:
    """Remove no-op squeezes in place; returns how many were removed."""
    graph = program.graph_module.graph
    removed = 0
    for node in list(graph.nodes):
        if node.op == "call_function" and _is_noop(node):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            removed += 1
    if removed:
        graph.lint()
        program.graph_module.recompile()
    return removed
