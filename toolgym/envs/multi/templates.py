"""Question templates shared by the Multi-v0 data generator and its scripted oracle.

A Multi-v0 question needs two tool families: facts (years) are found in the Search-v0 knowledge
base with ``search``/``open``, then combined with the ``calculator``. Each
:class:`MultiTemplate` names its entity slots (``{a}``, ``{b}``, ``{c}``), the facts to look up
(:class:`Lookup`: a slot and a chain of Search-v0 relations, e.g. ``founded_by`` then
``birth_year``) and the calculator expression over the looked-up values (``{0}``, ``{1}``...).
Relations and entity types are those of :mod:`toolgym.envs.search.templates`.

This module is deliberately **stdlib-only** (the generator loads it by file path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

LEVELS: tuple[str, ...] = ("easy", "medium", "hard")
"""easy: two 1-hop facts of two entities; medium: a 1-hop and a 2-hop fact of one entity;
hard: 2-hop facts of two entities, three entities, or a 4-hop fact."""

ANSWER_INSTRUCTION = "Answer with a single number."
"""Last sentence of every prompt."""

NAME_PATTERN = r"[A-Z][a-z]+(?: [A-Z][a-z]+){0,3}"
"""An entity name of the Search-v0 knowledge base (1-4 capitalised words)."""


@dataclass(frozen=True)
class Lookup:
    """A fact to find: follow ``relations`` from the entity in ``slot`` (of type ``start_type``)."""

    slot: str
    start_type: str
    relations: tuple[str, ...]


@dataclass(frozen=True)
class MultiTemplate:
    """A question type.

    Attributes:
        key: Stable identifier (``task.metadata["template"]``).
        level: Difficulty level.
        phrasings: Question texts with entity slots ``{a}``, ``{b}``, ``{c}``; unique across templates.
        lookups: The facts to find; the ``i``-th value is ``{i}`` in :attr:`expression`.
        expression: Calculator expression over the values, e.g. ``"{1} - {0}"``.
        constraint: What the generator requires of the result: ``"positive"``, ``"nonzero"``
            or ``"any"``; results must also be integers.
    """

    key: str
    level: str
    phrasings: tuple[str, ...]
    lookups: tuple[Lookup, ...]
    expression: str
    constraint: str = "any"

    def slots(self) -> dict[str, str]:
        """Entity slot -> entity type."""
        return {lk.slot: lk.start_type for lk in self.lookups}

    def render_expression(self, values: list[str]) -> str:
        """:attr:`expression` with the looked-up values filled in."""
        out = self.expression
        for i, value in enumerate(values):
            out = out.replace("{" + str(i) + "}", value)
        return out

    def prompt(self, index: int, names: dict[str, str]) -> str:
        """Phrasing ``index`` with the entity names filled in, plus the answer instruction."""
        text = self.phrasings[index]
        for slot, name in names.items():
            text = text.replace("{" + slot + "}", name)
        return f"{text} {ANSWER_INSTRUCTION}"


def _p(slot: str, *relations: str) -> Lookup:
    return Lookup(slot, "person", relations)


def _co(slot: str, *relations: str) -> Lookup:
    return Lookup(slot, "company", relations)


def _ci(slot: str, *relations: str) -> Lookup:
    return Lookup(slot, "city", relations)


TEMPLATES: tuple[MultiTemplate, ...] = (
    # -- easy ------------------------------------------------------------------------------
    MultiTemplate(
        "sum_birth_years", "easy",
        ("What is the sum of the birth years of {a} and {b}?",
         "If you add the birth year of {a} to the birth year of {b}, what do you get?"),
        (_p("a", "birth_year"), _p("b", "birth_year")),
        "{0} + {1}",
    ),
    MultiTemplate(
        "years_between_births", "easy",
        ("How many years after {a} was {b} born?",),
        (_p("a", "birth_year"), _p("b", "birth_year")),
        "{1} - {0}",
        "positive",
    ),
    MultiTemplate(
        "company_founding_gap", "easy",
        ("How many years apart were the companies {a} and {b} founded?",),
        (_co("a", "founding_year"), _co("b", "founding_year")),
        "abs({0} - {1})",
        "nonzero",
    ),
    MultiTemplate(
        "city_founding_gap", "easy",
        ("How many years before the city of {b} was the city of {a} founded?",),
        (_ci("a", "founding_year"), _ci("b", "founding_year")),
        "{1} - {0}",
        "positive",
    ),
    # -- medium ----------------------------------------------------------------------------
    MultiTemplate(
        "founder_age_at_founding", "medium",
        ("How old was the founder of {a} when the company was founded?",
         "How many years after the birth of its founder was the company {a} founded?"),
        (_co("a", "founding_year"), _co("a", "founded_by", "birth_year")),
        "{0} - {1}",
        "positive",
    ),
    MultiTemplate(
        "birthplace_age_at_birth", "medium",
        ("How many years after the founding of the city where {a} was born was {a} born?",),
        (_p("a", "birth_year"), _p("a", "born_in", "founding_year")),
        "{0} - {1}",
        "positive",
    ),
    MultiTemplate(
        "university_age_at_birth", "medium",
        ("How many years apart are the birth of {a} and the founding of the university {a} attended?",),
        (_p("a", "birth_year"), _p("a", "studied_at", "founding_year")),
        "abs({0} - {1})",
        "nonzero",
    ),
    MultiTemplate(
        "employer_age_at_birth", "medium",
        ("How many years apart are the birth of {a} and the founding of the company {a} works for?",),
        (_p("a", "birth_year"), _p("a", "works_for", "founding_year")),
        "abs({0} - {1})",
        "nonzero",
    ),
    # -- hard ------------------------------------------------------------------------------
    MultiTemplate(
        "sum_founder_birth_years", "hard",
        ("What is the sum of the birth years of the founders of {a} and {b}?",),
        (_co("a", "founded_by", "birth_year"), _co("b", "founded_by", "birth_year")),
        "{0} + {1}",
    ),
    MultiTemplate(
        "employer_university_gap", "hard",
        ("How many years apart were the company that {a} works for and the university that {a} "
         "attended founded?",),
        (_p("a", "works_for", "founding_year"), _p("a", "studied_at", "founding_year")),
        "abs({0} - {1})",
        "nonzero",
    ),
    MultiTemplate(
        "average_birth_year", "hard",
        ("What is the average birth year of {a}, {b} and {c}?",),
        (_p("a", "birth_year"), _p("b", "birth_year"), _p("c", "birth_year")),
        "({0} + {1} + {2}) / 3",
    ),
    MultiTemplate(
        "capital_age_at_birth", "hard",
        ("How many years apart are the birth of {a} and the founding of the capital of the country "
         "where {a} was born?",),
        (_p("a", "birth_year"), _p("a", "born_in", "located_in", "capital", "founding_year")),
        "abs({0} - {1})",
        "nonzero",
    ),
)
"""Every question type; the generator draws tasks from these, the oracle parses with them."""

TEMPLATES_BY_KEY: dict[str, MultiTemplate] = {t.key: t for t in TEMPLATES}
""":data:`TEMPLATES` keyed by :attr:`MultiTemplate.key`."""

_SLOT_RE = re.compile(r"\{([a-z])\}")


@cache
def _regexes() -> tuple[tuple[re.Pattern[str], MultiTemplate], ...]:
    compiled = []
    for template in TEMPLATES:
        for phrasing in template.phrasings:
            parts, pos, seen = [], 0, set()
            for m in _SLOT_RE.finditer(phrasing):
                parts.append(re.escape(phrasing[pos : m.start()]))
                slot = m.group(1)
                parts.append(f"(?P={slot})" if slot in seen else f"(?P<{slot}>{NAME_PATTERN})")
                seen.add(slot)
                pos = m.end()
            parts.append(re.escape(phrasing[pos:] + " " + ANSWER_INSTRUCTION))
            compiled.append((re.compile("".join(parts)), template))
    return tuple(compiled)


def parse_question(question: str) -> list[tuple[MultiTemplate, dict[str, str]]]:
    """Every ``(template, entity names by slot)`` reading of ``question`` (one for our tasks)."""
    text = " ".join(question.split())
    return [(t, m.groupdict()) for rx, t in _regexes() if (m := rx.fullmatch(text))]
