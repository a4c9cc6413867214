"""The ``Discrete(K)`` candidate generator of ``ToolGym/Lookup-v0`` (see
:mod:`toolgym.wrappers.discrete`), registered for that id when this package is imported."""

from __future__ import annotations

import re

from toolgym.core.actions import Action, FinalAnswer, ToolCall
from toolgym.wrappers.discrete import CandidateGenerator, CandidateState, register_candidates

_LOOKUP_KEY_RE = re.compile(r"\bK\d+\b")


def lookup_candidates(state: CandidateState) -> list[Action | None]:
    """``ToolGym/Lookup-v0``: get the prompt's key; get the key the last output returned; answer
    the last output."""
    start = _LOOKUP_KEY_RE.search(state.prompt)
    last = (state.last_output("get") or "").strip()
    return [
        ToolCall("get", {"key": start.group(0)}) if start else None,
        ToolCall("get", {"key": last}) if _LOOKUP_KEY_RE.fullmatch(last) else None,
        FinalAnswer(last) if last else None,
    ]


LOOKUP_SLOTS = ("get(prompt key)", "get(last output)", "answer(last output)")


GENERATOR = register_candidates(
    "ToolGym/Lookup-v0", CandidateGenerator(LOOKUP_SLOTS, lookup_candidates, None, name="lookup")
)
