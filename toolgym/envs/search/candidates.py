"""The ``Discrete(K)`` candidate generator of ``ToolGym/Search-v0`` (see
:mod:`toolgym.wrappers.discrete`), registered for that id when this package is imported."""

from __future__ import annotations

import re
from functools import lru_cache

from toolgym.core.actions import Action, FinalAnswer, ToolCall
from toolgym.envs.search.templates import ENTITY_TYPES, RELATIONS, extract_all
from toolgym.wrappers.discrete import CandidateGenerator, CandidateState, register_candidates

_QUESTION_ENTITY_RE = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+(?: [A-Z][a-z]+){0,3}")
_SEARCH_OPEN_SLOTS = 5
_SEARCH_DOC_RE = re.compile(r"\A\[(?P<id>[^\]]+)\] (?P<title>[^\n]*)\n(?P<text>.*)\Z", re.DOTALL)
_SEARCH_HIT_RE = re.compile(r"^\d+\. \[(?P<id>[^\]]+)\] ", re.MULTILINE)


RELATION_NAMES: tuple[str, ...] = tuple(dict.fromkeys(name for _, name in RELATIONS))
"""Every relation name, in template order (one ``answer(doc.NAME)`` slot each)."""
LINK_NAMES: tuple[str, ...] = tuple(dict.fromkeys(r.name for r in RELATIONS.values() if r.is_link))
"""Names of the relations whose value is another entity (one ``search(doc.NAME)`` slot each)."""


def question_entity(question: str) -> str | None:
    """The entity a question is about: its first capitalised phrase that does not start the question."""
    m = _QUESTION_ENTITY_RE.search(" ".join(question.split()))
    return m.group(0) if m else None


@lru_cache(maxsize=1024)
def _document_facts(document: str) -> dict[str, str]:
    """Relation values stated about an opened Search-v0 document's subject, by relation name."""
    m = _SEARCH_DOC_RE.match(document.strip())
    if m is None:
        return {}
    title, text = m.group("title").strip(), m.group("text")
    facts: dict[str, str] = {}
    for entity_type in ENTITY_TYPES:
        for name, value in extract_all(title, text, entity_type).items():
            if value is not None:
                facts.setdefault(name, value)
    return facts


SEARCH_SLOTS: tuple[str, ...] = (
    "search(question entity)",
    *(f"open(result {i + 1})" for i in range(_SEARCH_OPEN_SLOTS)),
    *(f"search(doc.{name})" for name in LINK_NAMES),
    *(f"answer(doc.{name})" for name in RELATION_NAMES),
)


def search_candidates(state: CandidateState) -> list[Action | None]:
    """``ToolGym/Search-v0``: search the question's entity; open the i-th hit of the last search;
    search a linked entity read from the last opened document; answer a fact read from it.

    Facts are read with the sentence templates of :mod:`toolgym.envs.search.templates` (as the
    scripted oracle does), one slot per relation name, so that slot ``answer(doc.capital)`` always
    answers a capital: the policy has to learn which relations the question asks for, in which
    order.
    """
    entity = question_entity(state.prompt)
    out: list[Action | None] = [None if entity is None else ToolCall("search", {"query": entity})]
    hits = _SEARCH_HIT_RE.findall(state.last_output("search") or "")
    out += [ToolCall("open", {"doc_id": hits[i]}) if i < len(hits) else None for i in range(_SEARCH_OPEN_SLOTS)]
    document = state.last_output("open")
    facts = _document_facts(document) if document else {}
    out += [ToolCall("search", {"query": facts[n]}) if n in facts else None for n in LINK_NAMES]
    out += [FinalAnswer(facts[n]) if n in facts else None for n in RELATION_NAMES]
    return out


GENERATOR = register_candidates(
    "ToolGym/Search-v0", CandidateGenerator(SEARCH_SLOTS, search_candidates, None, name="search")
)
