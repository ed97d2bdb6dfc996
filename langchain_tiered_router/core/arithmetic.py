"""Evaluate plain arithmetic found in model answers, safely (no ``eval``).

Used by verifiers that check a worked answer's calculations: the trained verifier's
features and the demo's GSM8K gate.
"""

from __future__ import annotations

import ast
import operator

__all__ = ["evaluate_arithmetic"]

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate_arithmetic(expr: str) -> float | None:
    """``+ - * /``, unary minus and parentheses over numbers (``x`` read as ``*``, commas
    and ``$`` dropped); ``None`` for anything else."""
    try:
        node = ast.parse(expr.replace(",", "").replace("x", "*").replace("$", ""), mode="eval").body
    except SyntaxError:
        return None

    def walk(n: ast.AST) -> float:
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return float(n.value)
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](walk(n.left), walk(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -walk(n.operand)
        raise ValueError("not arithmetic")

    try:
        return walk(node)
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        return None
