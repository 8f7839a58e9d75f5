"""The benchmark job for LangGraph Server: the same `create_agent` loop and tool Zerg runs.

Two graphs, `fast` and `slow`, differ only in the model server they talk to
(`PEER_FAST_MODEL_URL`, `PEER_SLOW_MODEL_URL`: OpenAI-compatible base URLs ending in /v1).
"""

import ast
import operator
import os
from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

MAX_EXPONENT = 100


def _power(base: float, exponent: float) -> float:
    # Checked before computing: 9 ** 9 ** 9 would take the CPU for minutes.
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent {exponent} is larger than {MAX_EXPONENT}")
    result: float = base**exponent
    return result


_OPERATORS: dict[type[ast.AST], Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: _power,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.AST) -> float:
    """The value of an expression tree made of numbers and `_OPERATORS` only."""
    constant = node.value if isinstance(node, ast.Constant) else None
    if isinstance(constant, int | float) and not isinstance(constant, bool):
        return constant
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported expression: {ast.dump(node)}")


# Async, like Zerg's calculator: a sync tool would hop to a worker thread on every call.
@tool
async def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (numbers, + - * / ** and parentheses)."""
    return str(_evaluate(ast.parse(expression, mode="eval").body))


def _agent(base_url_variable: str) -> Any:
    """The agent Zerg builds for `openai:bench` with the calculator tool, at one model server."""
    model = ChatOpenAI(
        model="bench",
        base_url=os.environ[base_url_variable],
        api_key="not-needed",
        timeout=120,
        max_retries=2,  # Zerg's default
        stream_usage=True,  # as Zerg sets it
    )
    return create_agent(model, tools=[calculator], system_prompt="You are a benchmark.")


fast = _agent("PEER_FAST_MODEL_URL")
slow = _agent("PEER_SLOW_MODEL_URL")
