"""``ToolGym/Search-v0``: multi-hop question answering over a generated fictional knowledge base."""

from __future__ import annotations

from typing import Any

from toolgym.core.answers import exact_match
from toolgym.core.errors import ToolError
from toolgym.core.tasks import Task, data_root
from toolgym.core.tools import Tool
from toolgym.envs.search.index import SNIPPET_CHARS, Corpus, load_corpus, snippet
from toolgym.envs.turn_end import SingleRequestEnv

__all__ = ["MAX_K", "SNIPPET_CHARS", "Corpus", "SearchEnv", "load_corpus", "snippet"]

MAX_K = 20


class SearchEnv(SingleRequestEnv):
    """Multi-hop question answering over a fictional knowledge base.

    ## Description
    Each task is a question about fictional people, cities, countries, companies and
    universities whose answer needs 1–3 hops through the knowledge base (e.g. "In which country
    was X born?" needs X's birthplace, then that city's country). The knowledge base is generated, so a model cannot
    know the answers in advance: it has to search.

    ## Action Space
    Text in the env's action format (default Hermes): a call of ``search(query, k=5)`` or
    ``open(doc_id)``, or a final answer ``<answer>...</answer>``.

    ## Observation Space
    Text: first the instructions and the question, then each tool's output. ``search`` returns
    one line per hit, ``"{rank}. [{doc_id}] {title}: {snippet}"``; ``open`` returns
    ``"[{doc_id}] {title}\\n{text}"``.

    ## Rewards
    ``success_reward`` (1.0) for a correct answer (normalised exact match against the answer or
    an alias), 0 otherwise; invalid actions add the ``invalid_action`` penalty (0 by default).

    ## Starting State
    A question drawn with the env's RNG from the split (or the one named in ``options``).

    ## Episode End
    Terminates on a final answer (or on too many invalid actions if the policy says so);
    truncates after ``max_turns`` steps.
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``turn_end`` (``"tool"``, default, or
    ``"no_call"``: see :class:`~toolgym.envs.turn_end.SingleRequestEnv`); ``difficulty`` is
    ``"easy"`` (1 hop), ``"medium"`` (2) or ``"hard"`` (3).

    ## Version History
    * v0: initial release.
    """

    data_name = "search"
    oracle_cls = "toolgym.envs.search.oracle:SearchOracle"

    def __init__(self, **kwargs: Any) -> None:
        self.corpus = load_corpus(str(data_root() / "search" / "corpus.jsonl"))
        super().__init__(**kwargs)

    def make_tools(self) -> list[Tool]:
        """``search`` and ``open``."""
        return [
            Tool(
                name="search",
                description=(
                    "Search the knowledge base with BM25. Returns the top k documents as lines "
                    "'rank. [doc_id] title: snippet'."
                ),
                parameters={
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "minLength": 1, "description": "Search terms."},
                        "k": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_K,
                            "default": 5,
                            "description": "Number of results.",
                        },
                    },
                    "required": ["query"],
                    "additionalProperties": False,
                },
                fn=self._search,
            ),
            Tool(
                name="open",
                description="Open a document by its id and return its full text.",
                parameters={
                    "type": "object",
                    "properties": {
                        "doc_id": {"type": "string", "description": "A document id such as 'd00042'."}
                    },
                    "required": ["doc_id"],
                    "additionalProperties": False,
                },
                fn=self._open,
            ),
        ]

    def _search(self, query: str, k: int = 5) -> str:
        hits = self.corpus.top_k(query, k)
        if not hits:
            return f"No results for query {query[:200]!r}."
        lines = self.corpus.hit_lines
        return "\n".join(f"{rank}. {lines[i]}" for rank, (i, _score) in enumerate(hits, start=1))

    def _open(self, doc_id: str) -> str:
        doc = self.corpus.by_id.get(doc_id.strip())
        if doc is None:
            raise ToolError(
                f"No document with id {doc_id[:80]!r}. Document ids look like 'd00042'; "
                "use search to find them."
            )
        return f"[{doc['id']}] {doc['title']}\n{doc['text']}"

    def check_answer(self, task: Task, answer: str) -> bool:
        """Normalised exact match against the answer and its aliases."""
        return exact_match(answer, str(task.answer), task.metadata.get("aliases", ()))
