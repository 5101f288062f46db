"""The nodes' choices come from the library's constants, so a new mutation, world, optimizer or
aggregator reaches the node without an edit there: no combo in nodes/ lists its options as a
literal."""

from __future__ import annotations

import ast
from pathlib import Path

NODES = Path(__file__).resolve().parents[2] / "nodes"


def literal_options(tree: ast.AST) -> list[int]:
    """Lines of ``Combo.Input(..., options=<a list or tuple written out>)``."""
    return [call.lineno for call in ast.walk(tree)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "Input" and ast.unparse(call.func.value).endswith("Combo")
            for kw in call.keywords
            if kw.arg == "options" and isinstance(kw.value, (ast.List, ast.Tuple))]


def test_the_check_finds_a_combo_with_written_out_options():
    assert literal_options(ast.parse('io.Combo.Input("x", options=["a", "b"], default="a")')) == [1]
    assert literal_options(ast.parse('io.Combo.Input("x", options=list(CHOICES))')) == []


def test_no_node_lists_its_options_as_a_literal():
    found = {f"{path.name}:{line}" for path in NODES.glob("*.py")
             for line in literal_options(ast.parse(path.read_text()))}
    assert not found, f"options written out instead of taken from a constant: {sorted(found)}"
