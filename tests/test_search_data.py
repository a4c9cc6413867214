"""Search-v0 data and oracle: the generated knowledge base, its task splits, and the scripted
oracle that must solve them through the tools.

The stand-in driver below re-implements the env's two tools from their specification with
``bm25s`` (Lucene BM25, default tokenizer, English stop words over ``title + " " + text``), so the
data and the oracle are checked independently of ``toolgym/envs/search/env.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.search.oracle import SearchOracle, parse_document, parse_hits
from toolgym.envs.search.templates import (
    CHAINS,
    CHAINS_BY_KEY,
    ENTITY_TYPES,
    INTRO_TEMPLATES,
    RELATIONS,
    extract_relation,
    parse_question,
)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "envs_data" / "search"
SPLITS = ("train", "dev", "test")
EXPECTED_SIZES = {"train": 2001, "dev": 300, "test": 300}
DIFFICULTY = {1: "easy", 2: "medium", 3: "hard"}
SNIPPET_CHARS = 100


@lru_cache(maxsize=1)
def corpus() -> list[dict[str, str]]:
    with (DATA / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@lru_cache(maxsize=1)
def by_title() -> dict[str, dict[str, str]]:
    return {doc["title"]: doc for doc in corpus()}


@cache
def tasks(split: str) -> list[dict[str, Any]]:
    with (DATA / "tasks" / f"{split}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# ----------------------------------------------------------------------------- stand-in env
class StandInIndex:
    """BM25 over the corpus exactly as Search-v0 specifies (bm25s, Lucene, English stop words)."""

    def __init__(self, docs: list[dict[str, str]]) -> None:
        self.docs = docs
        self.by_id = {d["id"]: d for d in docs}
        tokens = bm25s.tokenize(
            [f"{d['title']} {d['text']}" for d in docs], stopwords="en", show_progress=False
        )
        self.vocab = tokens.vocab
        self.bm25 = bm25s.BM25(method="lucene")
        self.bm25.index(tokens, show_progress=False)

    def top(self, query: str, k: int) -> list[dict[str, str]]:
        """Best ``k`` documents with a positive score (ties in corpus order)."""
        words = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        words = [w for w in words if w in self.vocab]
        if not words:
            return []
        scores = self.bm25.get_scores(words)
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [self.docs[i] for i in order if scores[i] > 0]

    def search(self, query: str, k: int = 5) -> str:
        """The ``search`` tool's output."""
        hits = self.top(query, k)
        if not hits:
            return f"No results for query {query!r}."
        lines = []
        for rank, doc in enumerate(hits, start=1):
            flat = " ".join(doc["text"].split())
            snippet = flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "…"
            lines.append(f"{rank}. [{doc['id']}] {doc['title']}: {snippet}")
        return "\n".join(lines)

    def open(self, doc_id: str) -> str | None:
        """The ``open`` tool's output, or ``None`` for an unknown id (a tool error)."""
        doc = self.by_id.get(doc_id)
        return None if doc is None else f"[{doc['id']}] {doc['title']}\n{doc['text']}"


@pytest.fixture(scope="module")
def index() -> StandInIndex:
    return StandInIndex(corpus())


def play(
    index: StandInIndex, policy: SearchOracle, task: dict[str, Any], max_turns: int = 12
) -> tuple[bool, int]:
    """One episode of ``policy`` on ``task`` with the stand-in tools; ``(success, turns)``."""
    fmt = get_action_format("hermes")
    policy.reset(seed=0)
    observation = f"You answer questions with the search and open tools.\n\n{task['prompt']}"
    info: dict[str, Any] = {"turn": 0, "task_prompt": task["prompt"], "action_format": "hermes"}
    for turn in range(1, max_turns + 1):
        action = fmt.parse(policy.act(observation, info))
        if isinstance(action, FinalAnswer):
            gold = [task["answer"], *task["metadata"]["aliases"]]
            return action.text.strip().lower() in {g.lower() for g in gold}, turn
        assert isinstance(action, ToolCall), f"oracle emitted an invalid action: {action}"
        if action.name == "search":
            assert 1 <= action.arguments.get("k", 5) <= 20
            output: str | None = index.search(**action.arguments)
        else:
            assert action.name == "open" and set(action.arguments) == {"doc_id"}
            output = index.open(action.arguments["doc_id"])
        body = output if output is not None else "Error [tool_error]: no such document."
        observation = fmt.wrap_observation(body)
        info = {"turn": turn, "tool_output": output, "error": None if output else "tool_error"}
    return False, max_turns


# ----------------------------------------------------------------------------- corpus
def test_corpus_schema_sizes_and_unique_names() -> None:
    docs = corpus()
    assert 3000 <= len(docs) <= 5000
    assert (DATA / "corpus.jsonl").stat().st_size < 3 * 1024 * 1024
    assert all(list(d) == ["id", "title", "type", "text"] for d in docs)
    assert [d["id"] for d in docs] == [f"d{i:05d}" for i in range(1, len(docs) + 1)]
    assert len(by_title()) == len(docs), "entity names must be globally unique"
    assert set(Counter(d["type"] for d in docs)) == set(ENTITY_TYPES)
    stopwords = set(bm25s.stopwords.STOPWORDS_EN)
    for doc in docs:
        assert doc["title"].replace(" ", "").isalpha() and doc["title"].isascii()
        assert not {w.lower() for w in doc["title"].split()} & stopwords


def test_every_document_states_every_relation_of_its_type_once() -> None:
    for doc in corpus():
        for (subject_type, relation), _ in RELATIONS.items():
            if subject_type == doc["type"]:
                value = extract_relation(doc["title"], doc["text"], doc["type"], relation)
                assert value is not None, (doc["id"], relation)
                if RELATIONS[(subject_type, relation)].is_link:
                    target = by_title().get(value)
                    assert (
                        target is not None
                        and target["type"] == RELATIONS[(subject_type, relation)].object_type
                    )


def test_exact_name_search_finds_every_entity_in_the_top_5(index: StandInIndex) -> None:
    # Every entity a test task visits, plus every other entity: the guarantee is corpus-wide.
    misses = [d["title"] for d in corpus() if d["id"] not in {h["id"] for h in index.top(d["title"], 5)}]
    assert not misses, f"{len(misses)} entities not in the top 5 for their own name: {misses[:10]}"


# ----------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("split", SPLITS)
def test_every_task_chain_resolves_through_the_documents_to_its_answer(split: str) -> None:
    titles = by_title()
    for task in tasks(split):
        meta = task["metadata"]
        chain = CHAINS_BY_KEY[meta["chain_key"]]
        assert [(c.key, e) for c, e in parse_question(task["prompt"])] == [(chain.key, meta["start_entity"])]
        assert meta["chain"] == list(chain.relations) and meta["hops"] == chain.hops == len(
            meta["gold_doc_ids"]
        )
        assert task["difficulty"] == DIFFICULTY[chain.hops]
        value, subject_type, visited = meta["start_entity"], chain.start_type, []
        for relation in chain.relations:
            doc = titles[value]
            assert doc["type"] == subject_type
            visited.append(doc["id"])
            value = extract_relation(doc["title"], doc["text"], subject_type, relation)
            assert value is not None
            subject_type = RELATIONS[(subject_type, relation)].object_type
        assert value == task["answer"], task["id"]
        assert visited == meta["gold_doc_ids"]
        assert value != meta["start_entity"]


def test_task_ids_are_unique_and_splits_share_no_question() -> None:
    ids = [t["id"] for s in SPLITS for t in tasks(s)]
    assert len(ids) == len(set(ids))
    for split in SPLITS:
        assert all(t["id"].startswith(f"search-{split}-") for t in tasks(split))
    seen: dict[tuple[str, str], str] = {}
    prompts: dict[str, str] = {}
    for split in SPLITS:
        for t in tasks(split):
            key = (t["metadata"]["chain_key"], t["metadata"]["start_entity"])
            assert key not in seen, f"{t['id']} repeats a question of {seen[key]}"
            assert t["prompt"] not in prompts
            seen[key] = prompts[t["prompt"]] = t["id"]


@pytest.mark.parametrize("split", SPLITS)
def test_split_sizes_and_hop_balance(split: str) -> None:
    rows = tasks(split)
    assert len(rows) == EXPECTED_SIZES[split]
    hops = Counter(t["metadata"]["hops"] for t in rows)
    assert set(hops) == {1, 2, 3} and max(hops.values()) - min(hops.values()) <= 1
    per_chain = Counter(t["metadata"]["chain_key"] for t in rows)
    assert set(per_chain) == {c.key for c in CHAINS}, "every question type appears in every split"


def test_country_answers_accept_the_official_name_as_alias() -> None:
    countries = {d["title"] for d in corpus() if d["type"] == "country"}
    for task in tasks("test"):
        aliases = task["metadata"]["aliases"]
        if task["answer"] in countries:
            assert len(aliases) == 1 and aliases[0].endswith(f" of {task['answer']}")
            assert f"the {aliases[0]}." in by_title()[task["answer"]]["text"]
        else:
            assert aliases == []


# ----------------------------------------------------------------------------- templates
def test_question_phrasings_are_unique_and_read_back_to_their_chain() -> None:
    phrasings = [q for c in CHAINS for q in c.questions]
    assert len(phrasings) == len(set(phrasings))
    for chain in CHAINS:
        assert 1 <= chain.hops <= 3 and len(chain.questions) >= 2
        for q in chain.questions:
            assert [(c.key, e) for c, e in parse_question(q.replace("{e}", "Varnel Oskaru"))] == [
                (chain.key, "Varnel Oskaru")
            ]


def test_every_sentence_template_names_its_subject_exactly_once() -> None:
    templates = [t for r in RELATIONS.values() for t in r.templates]
    templates += [t for intro in INTRO_TEMPLATES.values() for t in intro]
    for t in templates:
        assert t.count("{S}") + t.count("{s}") == 1, t
        assert t.endswith(".") and t.count(".") == 1, t


# ----------------------------------------------------------------------------- oracle
def test_oracle_parses_tool_outputs() -> None:
    out = "1. [d00007] Varnel Oskaru: Varnel Oskaru is a baker…\n2. [d00008] Tamira Oskaru: x"
    assert parse_hits(out) == [("d00007", "Varnel Oskaru"), ("d00008", "Tamira Oskaru")]
    assert parse_document("[d00007] Varnel Oskaru\nVarnel Oskaru is a baker.") == (
        "d00007",
        "Varnel Oskaru",
        "Varnel Oskaru is a baker.",
    )
    assert parse_hits("No results for query 'x'.") == [] and parse_document("Error [tool_error]: x") is None


@pytest.mark.parametrize("split", ["test", "dev"])
def test_oracle_solves_every_task_with_the_stand_in_tools(index: StandInIndex, split: str) -> None:
    oracle = SearchOracle()
    failures = []
    for task in tasks(split):
        success, turns = play(index, oracle, task)
        if not success or turns != 2 * task["metadata"]["hops"] + 1:
            failures.append((task["id"], success, turns))
    assert not failures, f"{len(failures)} failures: {failures[:5]}"


def test_oracle_searches_wider_when_the_title_is_not_in_the_top_5() -> None:
    oracle = SearchOracle()
    fmt = get_action_format("hermes")
    question = "In what year was Varnel Oskaru born?"
    first = fmt.parse(oracle.act(question, {"turn": 0, "task_prompt": question}))
    assert first == ToolCall("search", {"query": "Varnel Oskaru", "k": 5})
    miss = "1. [d00008] Tamira Oskaru: Tamira Oskaru is a baker."
    second = fmt.parse(oracle.act(fmt.wrap_observation(miss), {"turn": 1, "tool_output": miss}))
    assert second == ToolCall("search", {"query": "Varnel Oskaru", "k": 20})
    hit = miss + "\n2. [d00007] Varnel Oskaru: Varnel Oskaru (born 1873) is a baker."
    third = fmt.parse(oracle.act(fmt.wrap_observation(hit), {"turn": 2, "tool_output": hit}))
    assert third == ToolCall("open", {"doc_id": "d00007"})
    doc = "[d00007] Varnel Oskaru\nVarnel Oskaru (born 1873) is a baker. His friend Tamira Oskaru was born in 1901."
    # Without info["tool_output"], the oracle unwraps the observation itself.
    assert fmt.parse(oracle.act(fmt.wrap_observation(doc), {"turn": 3})) == FinalAnswer("1873")


def test_oracle_gives_up_cleanly_on_an_unknown_question() -> None:
    oracle = SearchOracle()
    action = oracle.act("What is love?", {"turn": 0, "task_prompt": "What is love?"})
    assert get_action_format("hermes").parse(action) == FinalAnswer("unknown")


def test_oracle_renders_in_the_env_action_format() -> None:
    oracle = SearchOracle()
    question = "Where was Varnel Oskaru born?"
    action = oracle.act(question, {"turn": 0, "task_prompt": question, "action_format": "xml_call"})
    assert action.startswith("<call>") and get_action_format("xml_call").parse(action) == ToolCall(
        "search", {"query": "Varnel Oskaru", "k": 5}
    )
