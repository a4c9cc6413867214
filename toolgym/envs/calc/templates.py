"""Word-problem templates shared by the Calc-v0 data generator and its scripted oracle.

A Calc-v0 problem is a short story about one person's running quantity (a number of items, or an
amount of money): a *start* sentence sets it, each *step* sentence changes it by one operation,
and a *question* asks for the final value. The generator (``envs_data/calc/generate.py``) renders
every sentence from the templates below; the oracle (:mod:`toolgym.envs.calc.oracle`) reads the
story back with regular expressions compiled from the same templates and turns each step into a
calculator expression (:attr:`Step.expression`). Keeping both directions in this one module is
what guarantees that the oracle parses everything the generator writes.

This module is deliberately **stdlib-only**: the generator loads it by file path, without
importing the ``toolgym`` package.

Template slots:

* ``{name}``: the person's first name; ``{P}``, ``{p}``, ``{obj}``, ``{pos}``, ``{refl}``: their
  pronoun (``She``/``she``/``her``/``her``/``herself``).
* ``{unit}``: the plural noun counted (``apples``); money stories count ``dollars``.
* ``{x}``, ``{y}``: numbers, written as plain digits (``12``, ``12.50``), never with separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

LEVELS: tuple[str, ...] = ("easy", "medium", "hard")
"""Difficulty levels: easy = 2 integer steps with small numbers; medium = 3-4 integer steps with
products, multiples and exact divisions; hard = 4-6 money steps with cents, percentages and
parenthesised sub-expressions."""

ANSWER_INSTRUCTION = "Answer with a single number."
"""Last sentence of every prompt."""

PRONOUNS: dict[str, dict[str, str]] = {
    "she": {"P": "She", "p": "she", "obj": "her", "pos": "her", "refl": "herself"},
    "he": {"P": "He", "p": "he", "obj": "him", "pos": "his", "refl": "himself"},
}
"""Pronoun forms by slot."""

NUMBER_PATTERN = r"[0-9]+(?:\.[0-9]+)?"
"""A number as written in a problem (non-negative, optional decimals)."""
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.?!])\s+")
"""Splits a prompt into sentences (numbers never have a space after their decimal point)."""


@dataclass(frozen=True)
class Step:
    """One operation on the running value ``v``.

    Attributes:
        key: Stable identifier (recorded in task metadata).
        story: ``"items"`` or ``"money"``.
        phrasings: Sentence templates; each uses ``{x}`` (and ``{y}`` if :attr:`arity` is 2).
        expression: Calculator expression of the new value, with ``{v}``, ``{x}``, ``{y}``.
        levels: Difficulty levels the step may appear in.
    """

    key: str
    story: str
    phrasings: tuple[str, ...]
    expression: str
    levels: tuple[str, ...]

    @property
    def arity(self) -> int:
        """Number of numeric parameters (1 or 2)."""
        return 2 if "{y}" in self.expression else 1

    def render_expression(self, v: str, x: str, y: str = "") -> str:
        """The calculator expression for this step (``v`` is the previous value's text)."""
        return self.expression.replace("{v}", v).replace("{x}", x).replace("{y}", y)


START: dict[str, tuple[str, ...]] = {
    "items": (
        "{name} has {x} {unit}.",
        "{name} starts the day with {x} {unit}.",
        "At first, {name} owns {x} {unit}.",
    ),
    "money": (
        "{name} has {x} dollars.",
        "{name} starts the month with {x} dollars in savings.",
        "At first, {name} has {x} dollars in a bank account.",
    ),
}
"""Start sentences (``{x}`` is the starting value) by story kind."""

QUESTIONS: dict[str, tuple[str, ...]] = {
    "items": (
        "How many {unit} does {name} have now?",
        "How many {unit} does {name} have in the end?",
    ),
    "money": (
        "How many dollars does {name} have now?",
        "How much money, in dollars, does {name} have in the end?",
    ),
}
"""Question sentences by story kind."""

STEPS: tuple[Step, ...] = (
    # -- items: integers -----------------------------------------------------------------
    Step(
        "add",
        "items",
        ("{P} buys {x} more {unit}.", "{P} finds {x} more {unit}.", "A friend gives {obj} {x} {unit}."),
        "{v} + {x}",
        ("easy", "medium"),
    ),
    Step(
        "sub",
        "items",
        ("{P} gives away {x} {unit}.", "{P} loses {x} {unit}.", "{P} gives {x} {unit} to a neighbour."),
        "{v} - {x}",
        ("easy", "medium"),
    ),
    Step(
        "add_packs",
        "items",
        ("{P} buys {x} packs of {y} {unit} each.", "{P} receives {x} boxes with {y} {unit} in every box."),
        "{v} + {x} * {y}",
        ("medium",),
    ),
    Step(
        "sub_packs",
        "items",
        ("{P} gives {x} friends {y} {unit} each.", "{P} hands out {y} {unit} to each of {x} classmates."),
        "{v} - {x} * {y}",
        ("medium",),
    ),
    Step(
        "times",
        "items",
        ("After a lucky trade, {p} has {x} times as many {unit} as before.",),
        "{v} * {x}",
        ("medium",),
    ),
    Step(
        "share",
        "items",
        ("{P} splits the {unit} into {x} equal groups and keeps just one group.",),
        "{v} / {x}",
        ("medium",),
    ),
    # -- money: cents, percentages, parentheses ------------------------------------------
    Step(
        "earn",
        "money",
        ("{P} earns {x} dollars.", "{P} is paid {x} dollars for a small job."),
        "{v} + {x}",
        ("hard",),
    ),
    Step(
        "spend",
        "money",
        ("{P} spends {x} dollars on groceries.", "{P} pays a bill of {x} dollars."),
        "{v} - {x}",
        ("hard",),
    ),
    Step(
        "buy",
        "money",
        ("{P} buys {x} notebooks at {y} dollars each.", "{P} orders {x} meals that cost {y} dollars apiece."),
        "{v} - {x} * {y}",
        ("hard",),
    ),
    Step(
        "wage",
        "money",
        ("{P} works {x} hours at {y} dollars per hour.",),
        "{v} + {x} * {y}",
        ("hard",),
    ),
    Step(
        "interest",
        "money",
        ("{P} receives {x}% interest on all of {pos} money.",),
        "{v} * (1 + {x} / 100)",
        ("hard",),
    ),
    Step(
        "donate",
        "money",
        ("{P} donates {x}% of {pos} money to charity.",),
        "{v} * (1 - {x} / 100)",
        ("hard",),
    ),
    Step(
        "split",
        "money",
        ("{P} divides {pos} money equally between {refl} and {x} siblings and keeps {pos} own share.",),
        "{v} / ({x} + 1)",
        ("hard",),
    ),
)
"""Every operation; the generator draws steps from these, the oracle parses with them."""

STEPS_BY_KEY: dict[str, Step] = {s.key: s for s in STEPS}
""":data:`STEPS` keyed by :attr:`Step.key`."""


def render(template: str, *, name: str, pronoun: str, unit: str, x: str = "", y: str = "") -> str:
    """Fill a template's slots."""
    out = template.replace("{name}", name).replace("{unit}", unit).replace("{x}", x).replace("{y}", y)
    for slot, word in PRONOUNS[pronoun].items():
        out = out.replace("{" + slot + "}", word)
    return out


_SLOT_RE = re.compile(r"\{(\w+)\}")


@cache
def _regex(template: str) -> re.Pattern[str]:
    """Regex of a template: ``x``/``y``/``name``/``unit`` captured, pronouns matched."""
    parts: list[str] = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        slot = m.group(1)
        if slot in ("x", "y"):
            parts.append(f"(?P<{slot}>{NUMBER_PATTERN})")
        elif slot == "name":
            parts.append(r"(?P<name>[A-Z][a-z]+)")
        elif slot == "unit":
            parts.append(r"(?P<unit>[a-z]+(?: [a-z]+)?)")
        else:
            forms = sorted({forms[slot] for forms in PRONOUNS.values()})
            parts.append(f"(?:{'|'.join(map(re.escape, forms))})")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts))


@dataclass(frozen=True)
class Parsed:
    """What one sentence says: its kind, the step (for step sentences) and its numbers."""

    kind: str
    """``"start"``, ``"step"`` or ``"question"``."""
    step: Step | None
    x: str
    y: str


def parse_sentence(sentence: str) -> list[Parsed]:
    """Every reading of ``sentence`` under the templates (exactly one for generated sentences)."""
    found: list[Parsed] = []
    for templates in START.values():
        for t in templates:
            if m := _regex(t).fullmatch(sentence):
                found.append(Parsed("start", None, m.group("x"), ""))
    for step in STEPS:
        for t in step.phrasings:
            if m := _regex(t).fullmatch(sentence):
                found.append(Parsed("step", step, m.group("x"), m.group("y") if step.arity == 2 else ""))
    for templates in QUESTIONS.values():
        for t in templates:
            if _regex(t).fullmatch(sentence):
                found.append(Parsed("question", None, "", ""))
    # An item sentence about "dollars" reads like a money sentence: identical readings count once.
    return list(dict.fromkeys(found))


def parse_problem(prompt: str) -> tuple[str, list[tuple[Step, str, str]]] | None:
    """Read a problem: the starting value's text and the steps ``(step, x, y)`` in order.

    Returns:
        ``None`` if a sentence is not understood or the story has no start or no question.
    """
    start: str | None = None
    steps: list[tuple[Step, str, str]] = []
    asked = False
    for sentence in SENTENCE_SPLIT_RE.split(" ".join(prompt.split())):
        if sentence == ANSWER_INSTRUCTION:
            continue
        readings = parse_sentence(sentence)
        if len(readings) != 1:
            return None
        reading = readings[0]
        if reading.kind == "start":
            start = reading.x
        elif reading.kind == "step" and reading.step is not None:
            steps.append((reading.step, reading.x, reading.y))
        else:
            asked = True
    if start is None or not asked:
        return None
    return start, steps


def decimal_text(value: Fraction) -> str:
    """Exact decimal text of a terminating fraction (``Fraction(51, 4)`` -> ``"12.75"``).

    Raises:
        ValueError: if the decimal expansion does not terminate.
    """
    q, places = value.denominator, 0
    while q % 10 == 0 or q % 2 == 0 or q % 5 == 0:
        if q % 10 == 0:
            q //= 10
        elif q % 2 == 0:
            q //= 2
        else:
            q //= 5
        places += 1
    if q != 1:
        raise ValueError(f"{value} has no terminating decimal expansion")
    scaled = value * 10**places
    while places and scaled.numerator % 10 == 0:
        scaled /= 10
        places -= 1
    digits = abs(scaled.numerator)
    whole, frac = divmod(digits, 10**places)
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}" if places == 0 else f"{sign}{whole}.{frac:0{places}d}"
