"""Numeric answer grading shared by Calc-v0, SQL-v0 and Multi-v0.

An answer is correct if it contains **exactly one number** and that number is close to the gold
value. Thousands separators (``1,234``), currency signs, units and surrounding words are
allowed; a Unicode minus counts as a minus sign; a simple fraction ``p/q`` counts as one number.
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction

logger = logging.getLogger(__name__)

REL_TOL = 1e-6
"""Default relative tolerance of a numeric answer."""
ABS_TOL = 1e-9
"""Absolute tolerance (for gold values at or near zero)."""

_NUMBER_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-−+]?)\s?\$?\s?"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:\s?/\s?(?P<den>\d+(?:\.\d+)?))?"
    r"(?:[eE](?P<exp>[-+]?\d{1,3}))?"
    r"(?![\d])"
)


def parse_numbers(text: str) -> list[Fraction]:
    """Every number in ``text`` (exactly, as fractions), left to right.

    >>> parse_numbers("$1,234.50 and -3/4")
    [Fraction(2469, 2), Fraction(-3, 4)]
    """
    out: list[Fraction] = []
    for m in _NUMBER_RE.finditer(text[:10_000]):
        value = Fraction(m.group("num").replace(",", ""))
        if m.group("den"):
            den = Fraction(m.group("den"))
            if den == 0:
                continue
            value /= den
        if m.group("exp"):
            value *= Fraction(10) ** int(m.group("exp"))
        if m.group("sign") in ("-", "−"):
            value = -value
        out.append(value)
    return out


def single_number(text: str) -> Fraction | None:
    """The one number in ``text``, or ``None`` if it has none or several."""
    found = parse_numbers(text)
    return found[0] if len(found) == 1 else None


def close(value: Fraction | float, gold: Fraction | float, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """Whether ``value`` is within ``max(rel_tol * |gold|, abs_tol)`` of ``gold``."""
    diff = abs(Fraction(value) - Fraction(gold))
    return diff <= max(Fraction(rel_tol) * abs(Fraction(gold)), Fraction(abs_tol))


def number_matches(answer: str, gold: str | float | int, *, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """Whether ``answer`` holds exactly one number and it is :func:`close` to ``gold``.

    A number too long to convert (Python refuses integers of more than 4,300 digits) makes the
    answer wrong, with a one-line warning: no traceback per answer for an agent to flood the
    logs with.
    """
    try:
        value = single_number(answer)
    except ValueError as exc:
        logger.warning("answer graded as wrong: it holds a number that cannot be read (%s)", str(exc)[:120])
        return False
    if value is None:
        return False
    if isinstance(gold, float) and not math.isfinite(gold):
        return False
    gold_value = Fraction(gold) if not isinstance(gold, str) else Fraction(gold.replace(",", ""))
    return close(value, gold_value, rel_tol=rel_tol, abs_tol=abs_tol)
