"""The `calculator` tool: arithmetic over an AST whitelist, never `eval`.

Only numbers, `+ - * / // % **`, unary signs, parentheses, the constants `pi`, `e` and `tau` and
the functions in `FUNCTIONS` are accepted; anything else (names, attributes, strings, comparisons)
is refused. Results are capped at `MAX_DIGITS` digits so one expression cannot eat the CPU or
memory; powers are checked *before* they are computed.
"""

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

Number = int | float

MAX_EXPRESSION_LENGTH = 1_000
MAX_DIGITS = 1_000
_MAX_INT = 10**MAX_DIGITS


@dataclass(frozen=True)
class Function:
    fn: Callable[..., Number]
    min_args: int
    max_args: int


def _round(x: Number, ndigits: Number = 0) -> Number:
    if not isinstance(ndigits, int) or abs(ndigits) > 100:
        raise ToolException("round(): ndigits must be an integer between -100 and 100")
    return round(x, ndigits) if ndigits else round(x)


FUNCTIONS: dict[str, Function] = {
    "abs": Function(abs, 1, 1),
    "round": Function(_round, 1, 2),
    "min": Function(lambda *xs: min(xs), 1, 100),
    "max": Function(lambda *xs: max(xs), 1, 100),
    "sqrt": Function(math.sqrt, 1, 1),
    "exp": Function(math.exp, 1, 1),
    "log": Function(math.log, 1, 2),
    "log10": Function(math.log10, 1, 1),
    "floor": Function(math.floor, 1, 1),
    "ceil": Function(math.ceil, 1, 1),
    "sin": Function(math.sin, 1, 1),
    "cos": Function(math.cos, 1, 1),
    "tan": Function(math.tan, 1, 1),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: lambda base, exponent: _power(base, exponent),
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ALLOWED = (
    "numbers, + - * / // % **, parentheses, the constants "
    + ", ".join(CONSTANTS)
    + " and the functions "
    + ", ".join(FUNCTIONS)
)


class CalculatorArgs(BaseModel):
    expression: str = Field(
        description="An arithmetic expression, e.g. '(2 + 3) * 4 ** 2' or 'sqrt(2) / 3'.",
    )


def evaluate(expression: str) -> Number:
    """The value of an arithmetic `expression`; raises `ToolException` saying what is wrong."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ToolException(f"Expression too long (more than {MAX_EXPRESSION_LENGTH} characters)")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolException(f"Invalid expression: {exc.msg}") from None
    try:
        return _checked(_eval(tree.body))
    except ZeroDivisionError:
        raise ToolException("Division by zero") from None
    except OverflowError:
        raise ToolException(f"Result too large (limit: {MAX_DIGITS} digits)") from None
    except RecursionError:
        raise ToolException("Expression nested too deeply") from None


def _eval(node: ast.expr) -> Number:
    match node:
        case ast.Constant(value=int() | float() as value) if not isinstance(value, bool):
            return _checked(value)
        case ast.Constant(value=value):
            raise ToolException(f"Unsupported value {value!r}; only real numbers are allowed")
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return _checked(_BINARY[type(op)](_eval(left), _eval(right)))
        case ast.BinOp(op=ast.BitXor()):
            raise ToolException("'^' is not supported; use ** for powers")
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_eval(operand))
        case ast.Name(id=name):
            if name not in CONSTANTS:
                raise ToolException(f"Unknown name {name!r}; allowed: {_ALLOWED}")
            return CONSTANTS[name]
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]):
            return _call(name, args)
        case ast.Call():
            raise ToolException(f"Unsupported call; allowed: {_ALLOWED}")
        case ast.Attribute():
            raise ToolException("Attribute access is not allowed")
    raise ToolException(f"Unsupported syntax ({type(node).__name__}); allowed: {_ALLOWED}")


def _call(name: str, arg_nodes: list[ast.expr]) -> Number:
    function = FUNCTIONS.get(name)
    if function is None:
        raise ToolException(f"Unknown function {name!r}; allowed: {', '.join(FUNCTIONS)}")
    if not function.min_args <= len(arg_nodes) <= function.max_args:
        raise ToolException(f"{name}() takes {_arity(function)}, got {len(arg_nodes)}")
    args = [_eval(arg) for arg in arg_nodes]
    try:
        return _checked(function.fn(*args))
    except ValueError:
        shown = ", ".join(map(str, args))
        raise ToolException(f"{name}(): math domain error for {shown}") from None


def _power(base: Number, exponent: Number) -> Number:
    # Estimate the size first: 9 ** 9 ** 9 must be refused, not computed.
    if base != 0 and exponent * math.log10(abs(base)) > MAX_DIGITS:
        raise ToolException(
            f"Result too large: {_show_power(base, exponent)} (limit: {MAX_DIGITS} digits)"
        )
    result: Number = base**exponent
    if isinstance(result, complex):
        raise ToolException(f"{_show_power(base, exponent)} is not a real number")
    return result


def _checked(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolException(f"Result is not a finite number ({value})")
    if isinstance(value, int) and abs(value) >= _MAX_INT:
        raise ToolException(f"Result too large (limit: {MAX_DIGITS} digits)")
    return value


def _arity(function: Function) -> str:
    if function.min_args == function.max_args:
        return f"{function.min_args} argument" + ("s" if function.min_args > 1 else "")
    return f"{function.min_args} to {function.max_args} arguments"


def _show_power(base: Number, exponent: Number) -> str:
    return " ** ".join(f"({x})" if x < 0 else str(x) for x in (base, exponent))


def calculator(expression: str) -> str:
    return str(evaluate(expression))


async def _calculator_inline(expression: str) -> str:
    # Bounded arithmetic costs less than the hop to a worker thread a sync tool would take.
    return calculator(expression)


def calculator_tool() -> BaseTool:
    return StructuredTool.from_function(
        func=calculator,
        coroutine=_calculator_inline,
        name="calculator",
        description=(
            "Evaluate an arithmetic expression exactly and return the result. Supports "
            f"{_ALLOWED}. Integers are exact; use ** for powers."
        ),
        args_schema=CalculatorArgs,
    )
