"""``ToolGym/Search-v0``: multi-hop question answering over a generated fictional knowledge base."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.tokenization import Tokenizer

from toolgym.core.env import ToolEnv
from toolgym.core.errors import ToolError
from toolgym.core.rewards import exact_match
from toolgym.core.tasks import Task, data_root
from toolgym.core.tools import Tool

SNIPPET_CHARS = 100
MAX_K = 20


class Corpus:
    """Documents with a BM25 index (``bm25s``, Lucene variant, English stop words).

    Args:
        path: A ``corpus.jsonl`` with one ``{"id", "title", "type", "text"}`` object per line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open(encoding="utf-8") as fh:
            self.docs: list[dict[str, Any]] = [json.loads(line) for line in fh if line.strip()]
        self.by_id = {doc["id"]: doc for doc in self.docs}
        self._tokenizer = Tokenizer(stopwords="en")
        ids = self._tokenizer.tokenize(
            [f"{d['title']} {d['text']}" for d in self.docs], return_as="ids", show_progress=False
        )
        self._bm25 = bm25s.BM25(method="lucene")
        self._bm25.index(ids, show_progress=False)
        self._lock = threading.Lock()  # the tokenizer is not thread-safe

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickle by path: the unpickling process loads (or reuses) its own cached index.
        return load_corpus, (str(self.path),)

    def search(self, query: str, k: int) -> list[tuple[dict[str, Any], float]]:
        """The top-``k`` documents for ``query`` with their BM25 scores (score > 0), best first;
        ties are broken by corpus order so results are deterministic."""
        with self._lock:
            tokens = self._tokenizer.tokenize(
                [query], update_vocab=False, return_as="ids", show_progress=False
            )[0]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.docs[i], float(scores[i])) for i in top if scores[i] > 0]


@lru_cache(maxsize=4)
def load_corpus(path: str) -> Corpus:
    """Load and index a corpus once per process (the index takes about a second to build)."""
    return Corpus(Path(path))


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "…"


class SearchEnv(ToolEnv):
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

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`; ``difficulty`` is ``"easy"`` (1 hop),
    ``"medium"`` (2) or ``"hard"`` (3).

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
        hits = self.corpus.search(query, k)
        if not hits:
            return f"No results for query {query[:200]!r}."
        return "\n".join(
            f"{rank}. [{doc['id']}] {doc['title']}: {_snippet(doc['text'])}"
            for rank, (doc, _score) in enumerate(hits, start=1)
        )

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
