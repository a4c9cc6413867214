"""A safe calculator: arithmetic expressions parsed with :mod:`ast` and evaluated exactly.

Agent text is **never** passed to ``eval``. :func:`evaluate` parses the expression with
:func:`ast.parse` (``mode="eval"``) and walks only an allow-list of nodes: numbers, the binary
operators ``+ - * / // % **``, unary ``+``/``-``, parentheses, the functions in
:data:`FUNCTIONS` and the constants in :data:`CONSTANTS`. Anything else (names, attributes,
subscripts, strings, lambdas, comparisons, calls of anything but an allowed function...) is refused
with a :class:`~toolgym.core.errors.ToolError` that says what is allowed.

Arithmetic is exact: numbers are :class:`fractions.Fraction` (``0.1 + 0.2`` is exactly ``0.3``).
Only ``sqrt`` of a non-square, non-integer powers, the constants ``pi``/``e`` and results that
would need more than :data:`MAX_DIGITS` decimals (long powers such as ``1.005 ** 360``: 40
significant digits) are approximate, and the result then says so (``≈``). Sizes are bounded *before* anything expensive is computed:
expressions are at most :data:`MAX_EXPRESSION_CHARS` characters and :data:`MAX_NODES` nodes,
exponents at most :data:`MAX_EXPONENT`, and every intermediate value must stay below
``10**MAX_DIGITS`` (checked from logarithms before a power is computed), so ``9**9**9`` or
``10**100000`` are refused in microseconds.

This module is stdlib-only and shared by ``ToolGym/Calc-v0`` and ``ToolGym/Multi-v0``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction

from toolgym.core.errors import ToolError, did_you_mean
from toolgym.core.tools import Tool

MAX_EXPRESSION_CHARS = 500
"""Longest accepted expression (characters)."""
MAX_NODES = 200
"""Most syntax-tree nodes in one expression."""
MAX_DEPTH = 60
"""Deepest accepted nesting of operations."""
MAX_EXPONENT = 10_000
"""Largest accepted absolute integer exponent (for bases other than 0, 1 and -1)."""
MAX_DIGITS = 100
"""Every intermediate value must be below ``10**MAX_DIGITS`` in magnitude (else: overflow error);
values that need more than this many decimals are rounded to that many (and marked approximate)."""
MAX_DECIMALS = 30
"""Exact results with at most this many decimals are written out in full; others are rounded."""
SIGNIFICANT_DIGITS = 16
"""Significant digits of a rounded (non-terminating or approximate) result."""

_MAX_BITS = int(MAX_DIGITS * math.log2(10)) + 1
_LIMIT = 10**MAX_DIGITS
_EXPONENT_RE = re.compile(r"[eE]([-+]?[0-9_]+)")
_OPERATORS = "+ - * / // % ** (^ means **)"
_CONSTANTS: dict[str, Fraction] = {
    "pi": Fraction(math.pi),
    "e": Fraction(math.e),
}
CONSTANTS: tuple[str, ...] = tuple(_CONSTANTS)
"""Named constants (approximate)."""
FUNCTIONS: tuple[str, ...] = ("abs", "sqrt", "round", "floor", "ceil", "min", "max")
"""Named functions: ``abs(x)``, ``sqrt(x)``, ``round(x)`` / ``round(x, ndigits)`` (halves away
from zero), ``floor(x)``, ``ceil(x)``, ``min(x, y, ...)``, ``max(x, y, ...)``."""

_REPLACEMENTS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "^": "**"})
_DESCRIBE = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "indexing (a[b])",
    ast.Lambda: "lambda functions",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "conditional expressions",
    ast.Tuple: "tuples (a comma outside a function call: write numbers without thousands separators)",
    ast.List: "lists",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignments (:=)",
    ast.JoinedStr: "strings",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class Value:
    """A calculator value: an exact fraction, and whether an approximation went into it."""

    __slots__ = ("exact", "number")

    def __init__(self, number: Fraction, exact: bool = True) -> None:
        self.number = number
        self.exact = exact


def _fail(message: str) -> ToolError:
    return ToolError(message)


def _bounded(value: Fraction, exact: bool = True) -> Value:
    """``value`` as a :class:`Value`, refused if its magnitude reaches ``10**MAX_DIGITS`` and
    rounded to ``MAX_DIGITS`` decimals (then marked approximate) if it needs more precision."""
    if abs(value) >= _LIMIT:
        raise _fail(f"Overflow: a result is larger than 10**{MAX_DIGITS}; numbers must stay below that.")
    if value.denominator.bit_length() > _MAX_BITS:
        return Value(Fraction(round(value * _LIMIT), _LIMIT), False)
    return Value(value, exact)


def _literal(node: ast.Constant, source: str) -> Value:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "strings" if isinstance(value, str | bytes) else f"{type(value).__name__} values"
        raise _fail(f"{kind.capitalize()} are not allowed in expressions; use numbers only.")
    if isinstance(value, int):
        return _bounded(Fraction(value))
    text = ast.get_source_segment(source, node) or repr(value)
    exponent = _EXPONENT_RE.search(text)
    if not math.isfinite(value) or (exponent and abs(int(exponent.group(1))) > 2 * MAX_DIGITS):
        raise _fail(f"Overflow: the number {text[:40]!r} is out of range (at most {MAX_DIGITS} digits).")
    try:  # exact decimal value of the literal as written ("0.1" is 1/10, not the nearest float)
        return _bounded(Fraction(text.replace("_", "")))
    except (ValueError, ZeroDivisionError):  # a literal Fraction cannot read: use the float
        return _bounded(Fraction(value), False)


def _power(base: Value, exponent: Value) -> Value:
    b, x = base.number, exponent.number
    exact = base.exact and exponent.exact
    if x.denominator == 1:
        n = x.numerator
        if b == 0 and n < 0:
            raise _fail("Division by zero: 0 cannot be raised to a negative power.")
        if abs(b) == 1 or b == 0:
            return Value(b**n, exact)
        if abs(n) > MAX_EXPONENT:
            raise _fail(f"Overflow: exponent {n} is too large (at most {MAX_EXPONENT} in absolute value).")
        digits = n * (math.log10(abs(b.numerator)) - math.log10(b.denominator))
        if digits >= MAX_DIGITS:
            raise _fail(f"Overflow: the power is larger than 10**{MAX_DIGITS}; numbers must stay below that.")
        bits = max(b.numerator.bit_length(), b.denominator.bit_length())
        if bits * abs(n) <= 2 * _MAX_BITS:
            return _bounded(b**n, exact)
        with localcontext() as ctx:  # exact would be too long (1.005 ** 360): 40 significant digits
            ctx.prec = 40
            approx = (Decimal(b.numerator) / Decimal(b.denominator)) ** n
        return _bounded(Fraction(approx), False)
    if b < 0:
        raise _fail("A negative number cannot be raised to a fractional power (the result is not real).")
    if b == 0:
        return Value(Fraction(0), exact)
    try:
        result = math.pow(float(b), float(x))
    except (OverflowError, ValueError):
        raise _fail(f"Overflow: the power is larger than 10**{MAX_DIGITS}.") from None
    if not math.isfinite(result):
        raise _fail(f"Overflow: the power is larger than 10**{MAX_DIGITS}.")
    return _bounded(Fraction(result), False)


def _binary(op: ast.operator, left: Value, right: Value) -> Value:
    a, b = left.number, right.number
    exact = left.exact and right.exact
    if isinstance(op, ast.Pow):
        return _power(left, right)
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and b == 0:
        raise _fail("Division by zero.")
    if isinstance(op, ast.Add):
        result = a + b
    elif isinstance(op, ast.Sub):
        result = a - b
    elif isinstance(op, ast.Mult):  # operands are below 10**MAX_DIGITS: the product is cheap
        result = a * b
    elif isinstance(op, ast.Div):
        result = a / b
    elif isinstance(op, ast.FloorDiv):
        result = Fraction(a // b)
    elif isinstance(op, ast.Mod):
        result = a % b
    else:
        symbol = {ast.BitXor: "^", ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>",
                  ast.MatMult: "@"}.get(type(op), type(op).__name__)
        raise _fail(f"The operator {symbol!r} is not supported; allowed operators: {_OPERATORS}.")
    return _bounded(result, exact)


def _round_half_away(x: Fraction, ndigits: int) -> Fraction:
    scale = Fraction(10) ** ndigits
    scaled = abs(x) * scale
    rounded = math.floor(scaled + Fraction(1, 2))
    return Fraction(rounded if x >= 0 else -rounded) / scale


def _sqrt(x: Value) -> Value:
    n = x.number
    if n < 0:
        raise _fail("sqrt of a negative number is not real.")
    p, q = n.numerator, n.denominator
    rp, rq = math.isqrt(p), math.isqrt(q)
    if rp * rp == p and rq * rq == q:
        return Value(Fraction(rp, rq), x.exact)
    with localcontext() as ctx:
        ctx.prec = 40
        root = (Decimal(p) / Decimal(q)).sqrt()
    return _bounded(Fraction(root), False)


def _call(name: str, args: list[Value]) -> Value:
    exact = all(a.exact for a in args)
    one: dict[str, Callable[[Fraction], Fraction]] = {
        "abs": abs,
        "floor": lambda v: Fraction(math.floor(v)),
        "ceil": lambda v: Fraction(math.ceil(v)),
    }
    if name in one or name == "sqrt":
        if len(args) != 1:
            raise _fail(f"{name}() takes exactly one argument, got {len(args)}.")
        return _sqrt(args[0]) if name == "sqrt" else Value(one[name](args[0].number), exact)
    if name == "round":
        if len(args) not in (1, 2):
            raise _fail(f"round() takes one or two arguments (x, ndigits), got {len(args)}.")
        ndigits = 0
        if len(args) == 2:
            digits = args[1].number
            if digits.denominator != 1 or not -MAX_DIGITS <= digits <= MAX_DIGITS:
                raise _fail(f"round(x, ndigits): ndigits must be an integer between -{MAX_DIGITS} and {MAX_DIGITS}.")
            ndigits = int(digits)
        return _bounded(_round_half_away(args[0].number, ndigits), exact)
    if not args:
        raise _fail(f"{name}() needs at least one argument.")
    pick = min if name == "min" else max
    return Value(pick(a.number for a in args), exact)


class _Evaluator:
    def __init__(self, source: str) -> None:
        self.source = source

    def eval(self, node: ast.AST, depth: int = 0) -> Value:
        if depth > MAX_DEPTH:
            raise _fail(f"The expression is nested too deeply (more than {MAX_DEPTH} levels).")
        if isinstance(node, ast.Expression):
            return self.eval(node.body, depth + 1)
        if isinstance(node, ast.Constant):
            return _literal(node, self.source)
        if isinstance(node, ast.BinOp):
            left = self.eval(node.left, depth + 1)
            right = self.eval(node.right, depth + 1)
            return _binary(node.op, left, right)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub | ast.UAdd):
                operand = self.eval(node.operand, depth + 1)
                sign = -1 if isinstance(node.op, ast.USub) else 1
                return Value(sign * operand.number, operand.exact)
            raise _fail("Only unary '-' and '+' are allowed ('not' and '~' are not).")
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return Value(_CONSTANTS[node.id], False)
            if node.id in FUNCTIONS:
                raise _fail(f"{node.id} is a function: call it, e.g. {node.id}(16).")
            raise _fail(
                f"Unknown name {node.id[:40]!r}." + did_you_mean(node.id, (*FUNCTIONS, *CONSTANTS))
                + f" Allowed functions: {', '.join(FUNCTIONS)}; constants: {', '.join(CONSTANTS)}."
            )
        if isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name):
                what = "attribute access and method calls" if isinstance(func, ast.Attribute) else "this call"
                raise _fail(f"Not allowed: {what}. Only the functions {', '.join(FUNCTIONS)} can be called.")
            if func.id not in FUNCTIONS:
                raise _fail(
                    f"Unknown function {func.id[:40]!r}." + did_you_mean(func.id, FUNCTIONS)
                    + f" Allowed functions: {', '.join(FUNCTIONS)}."
                )
            if node.keywords:
                raise _fail(f"{func.id}() takes positional arguments only.")
            return _call(func.id, [self.eval(arg, depth + 1) for arg in node.args])
        what = _DESCRIBE.get(type(node), type(node).__name__)
        raise _fail(
            f"Not allowed: {what}. Allowed: numbers, parentheses, the operators "
            f"{_OPERATORS}, functions {', '.join(FUNCTIONS)}, constants {', '.join(CONSTANTS)}."
        )


def evaluate(expression: str) -> Value:
    """Evaluate an arithmetic expression safely and exactly.

    Args:
        expression: E.g. ``"3 * (24 - 7) / 2"``. ``^``, ``×``, ``÷`` and ``−`` are accepted as
            ``**``, ``*``, ``/`` and ``-``.

    Returns:
        The :class:`Value` (an exact :class:`~fractions.Fraction` and whether it is exact).

    Raises:
        ToolError: for an empty, too long or malformed expression, a disallowed construct, an
            unknown name, division by zero, or a result or exponent beyond the size limits.
    """
    text = expression.translate(_REPLACEMENTS).strip()
    if not text:
        raise _fail("The expression is empty; write an arithmetic expression such as '3 * (4 + 5)'.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _fail(
            f"The expression has {len(text)} characters; at most {MAX_EXPRESSION_CHARS} are allowed. "
            "Split the computation into several calls."
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise _fail(
            f"Syntax error{where}: {exc.msg}. Write an arithmetic expression such as '3 * (4 + 5) / 2' "
            f"(operators: {_OPERATORS})."
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, giant literals, deep nesting
        raise _fail(f"The expression cannot be parsed ({type(exc).__name__}); use plain numbers and operators.") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise _fail(f"The expression is too complex ({nodes} syntax nodes, at most {MAX_NODES}); split it up.")
    return _Evaluator(text).eval(tree)


def _decimal_places(q: int) -> int | None:
    """Decimal places of ``p/q`` (lowest terms) if it terminates, else ``None``."""
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    return max(twos, fives) if q == 1 else None


def format_number(value: Fraction, *, exact: bool = True) -> str:
    """Render a value: integers and terminating decimals in full when exact (``"12.9675"``),
    else rounded to :data:`SIGNIFICANT_DIGITS` significant digits with an ``≈`` prefix and, for
    exact fractions, the fraction itself (``"≈0.3333333333333333 (exactly 1/3)"``)."""
    places = _decimal_places(value.denominator)
    if exact and places is not None and places <= MAX_DECIMALS:
        if places == 0:
            return str(value.numerator)
        digits = abs(value.numerator) * (10**places // value.denominator)
        whole, frac = divmod(digits, 10**places)
        return f"{'-' if value < 0 else ''}{whole}.{frac:0{places}d}"
    # normalize() rounds to the active context's precision too: stay inside our own context, so
    # the result never depends on what the caller set with decimal.getcontext().
    with localcontext() as ctx:
        ctx.prec = SIGNIFICANT_DIGITS
        approx = (Decimal(value.numerator) / Decimal(value.denominator)).normalize()
    text = format(approx, "f") if abs(approx.adjusted()) < 25 else str(approx).lower()
    return f"≈{text}" + (f" (exactly {value.numerator}/{value.denominator})" if exact else "")


def calculate(expression: str) -> str:
    """The ``calculator`` tool: :func:`evaluate` then :func:`format_number`."""
    value = evaluate(expression)
    return format_number(value.number, exact=value.exact)


def calculator_tool() -> Tool:
    """The ``calculator(expression)`` tool (stateless; one instance may serve many envs)."""
    return Tool(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression exactly and return the result. Supports numbers "
            f"(integers and decimals), parentheses, the operators {_OPERATORS}, the functions "
            f"{', '.join(FUNCTIONS)} and the constants {', '.join(CONSTANTS)}. Exact results are "
            "written in full (e.g. '12.9675'); approximate ones start with '≈'."
        ),
        parameters={
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The expression, e.g. '3 * (24 - 7) / 2'.",
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
        fn=calculate,
    )
