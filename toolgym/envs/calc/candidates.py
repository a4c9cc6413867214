"""The ``Discrete(K)`` candidate generator of ``ToolGym/Calc-v0`` (see
:mod:`toolgym.wrappers.discrete`), registered for that id when this package is imported."""

from __future__ import annotations

import re
from functools import lru_cache

from toolgym.core.actions import Action, FinalAnswer, ToolCall
from toolgym.wrappers.discrete import CandidateGenerator, CandidateState, register_candidates

_CALC_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_CALC_SENTENCE_RE = re.compile(r"(?<=[.?!])\s+")
_CALC_RESULT_RE = re.compile(r"\A≈?\s*(-?\d+(?:\.\d+)?)")
CALC_OPERATIONS: tuple[tuple[str, str, int], ...] = (
    ("v + x", "{v} + {x}", 1),
    ("v - x", "{v} - {x}", 1),
    ("v * x", "{v} * {x}", 1),
    ("v / x", "{v} / {x}", 1),
    ("v + x * y", "{v} + {x} * {y}", 2),
    ("v - x * y", "{v} - {x} * {y}", 2),
    ("v * (1 + x / 100)", "{v} * (1 + {x} / 100)", 1),
    ("v * (1 - x / 100)", "{v} * (1 - {x} / 100)", 1),
    ("v / (x + 1)", "{v} / ({x} + 1)", 1),
)
"""Calc-v0 slots: (name, calculator expression over the running value ``v`` and the next unused
prompt numbers ``x``, ``y``, how many prompt numbers it uses)."""
CALC_SLOTS = (*(f"calculator({name})" for name, _, _ in CALC_OPERATIONS), "answer(v)")


@lru_cache(maxsize=256)
def _calc_numbers(prompt: str) -> tuple[tuple[str, int], ...]:
    """Every number of the prompt with the index of its sentence, in order."""
    sentences = _CALC_SENTENCE_RE.split(" ".join(prompt.split()))
    return tuple((m.group(0), i) for i, s in enumerate(sentences) for m in _CALC_NUMBER_RE.finditer(s))


def _calc_progress(state: CandidateState) -> tuple[str | None, int]:
    """The running value ``v`` (the last calculator result, else the prompt's first number) and
    the index of the next prompt number not used yet."""
    numbers = _calc_numbers(state.prompt)
    value = numbers[0][0] if numbers else None
    pointer = 1
    for past in state.history:
        if past.tool == "calculator" and past.error is None and past.slot is not None and past.slot < len(CALC_OPERATIONS):
            pointer += CALC_OPERATIONS[past.slot][2]
            m = _CALC_RESULT_RE.match((past.output or "").strip())
            if m:
                value = m.group(1)
    return value, pointer


def calc_candidates(state: CandidateState) -> list[Action | None]:
    """``ToolGym/Calc-v0``: combine the running value ``v`` with the next unused numbers of the
    prompt by one of :data:`CALC_OPERATIONS`; answer ``v``.

    The running value starts as the prompt's first number and becomes each calculator result;
    a successful calculator call uses up the numbers its slot took. The generator does not read
    the words of the story: the policy learns the operation from the focus text (the sentence
    holding the next unused number).
    """
    numbers = _calc_numbers(state.prompt)
    value, pointer = _calc_progress(state)
    out: list[Action | None] = []
    for _, template, uses in CALC_OPERATIONS:
        if value is None or pointer + uses > len(numbers):
            out.append(None)
            continue
        x = numbers[pointer][0]
        y = numbers[pointer + 1][0] if uses == 2 else ""
        out.append(ToolCall("calculator", {"expression": template.format(v=value, x=x, y=y)}))
    out.append(None if value is None else FinalAnswer(value))
    return out


def calc_focus(state: CandidateState) -> str:
    """The sentence holding the next unused prompt number (the last sentence once all are used)."""
    numbers = _calc_numbers(state.prompt)
    _, pointer = _calc_progress(state)
    sentences = _CALC_SENTENCE_RE.split(" ".join(state.prompt.split()))
    if pointer < len(numbers):
        return sentences[numbers[pointer][1]]
    return "all numbers used " + (sentences[-2] if len(sentences) > 1 else sentences[-1])


GENERATOR = register_candidates(
    "ToolGym/Calc-v0", CandidateGenerator(CALC_SLOTS, calc_candidates, calc_focus, name="calc")
)
