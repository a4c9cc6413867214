"""Multi-v0: questions over the Search-v0 knowledge base that need search, open and calculator.

The registry-wide suites (``tests/test_env_contract.py``, ``tests/test_oracles.py``) cover the env
contract and the oracle; these tests specify the data (built from the Search-v0 corpus) and that
the tools are exactly Search-v0's and Calc-v0's.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import pytest

from toolgym.core.actions import ToolCall, get_action_format
from toolgym.envs.calc.calculator import calculate
from toolgym.envs.multi.env import MultiEnv
from toolgym.envs.multi.templates import LEVELS, TEMPLATES, parse_question
from toolgym.envs.search.env import SearchEnv
from toolgym.envs.search.templates import RELATIONS, extract_relation

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "envs_data" / "multi"
CORPUS = REPO / "envs_data" / "search" / "corpus.jsonl"
HERMES = get_action_format("hermes")


@cache
def documents() -> dict[str, dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as fh:
        return {doc["title"]: doc for doc in map(json.loads, fh)}


@cache
def env(split: str) -> MultiEnv:
    return MultiEnv(split=split)


# ----------------------------------------------------------------------------- data
def test_data_was_built_from_the_shipped_search_corpus() -> None:
    manifest = json.loads((DATA / "MANIFEST.json").read_text(encoding="utf-8"))
    corpus_sha = hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    assert manifest["source_sha256"]["search/corpus.jsonl"] == corpus_sha, (
        "envs_data/search/corpus.jsonl changed: regenerate envs_data/multi and bump Multi-v0's version"
    )


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_splits_are_balanced_and_use_every_template(split: str) -> None:
    tasks = env(split).task_set
    levels = tasks.difficulties()
    assert set(levels) == set(LEVELS) and len(set(levels.values())) == 1
    assert {t.metadata["template"] for t in tasks} == {t.key for t in TEMPLATES}


def test_questions_are_unique_across_splits() -> None:
    keys = [
        (t.metadata["template"], tuple(sorted(t.metadata["entities"].items())))
        for split in ("train", "dev", "test")
        for t in env(split).task_set
    ]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_answer_follows_from_the_documents_and_the_calculator(split: str) -> None:
    # Independent of the oracle and of BM25: read facts straight from the documents by title.
    docs = documents()
    for task in env(split).task_set:
        readings = parse_question(task.prompt)
        assert [(t.key, n) for t, n in readings] == [(task.metadata["template"], task.metadata["entities"])]
        template, names = readings[0]
        values = []
        for lookup in template.lookups:
            entity, kind = names[lookup.slot], lookup.start_type
            for relation in lookup.relations:
                doc = docs[entity]
                assert doc["type"] == kind, task.id
                value = extract_relation(entity, doc["text"], kind, relation)
                assert value is not None, (task.id, entity, relation)
                entity, kind = value, RELATIONS[(kind, relation)].object_type
            values.append(entity)
        assert values == task.metadata["values"], task.id
        assert calculate(template.render_expression(values)) == task.answer, task.id


# ----------------------------------------------------------------------------- tools
def test_tools_are_search_open_and_calculator_with_the_reference_schemas() -> None:
    multi = env("test")
    search = SearchEnv(split="test")
    assert list(multi.tools) == ["search", "open", "calculator"]
    for name in ("search", "open"):
        assert multi.tools[name].to_openai() == search.tools[name].to_openai()
    assert multi.corpus is search.corpus  # the same cached index, not a copy


def test_search_open_and_calculator_behave_as_in_their_own_envs() -> None:
    multi = MultiEnv(split="test", max_turns=50)
    search = SearchEnv(split="test", max_turns=50)
    multi.reset(seed=0)
    search.reset(seed=0)
    for call in (
        ToolCall("search", {"query": "founded company", "k": 3}),
        ToolCall("open", {"doc_id": "d00001"}),
        ToolCall("open", {"doc_id": "../../etc/passwd"}),
    ):
        a = multi.step(HERMES.render(call))[4]
        b = search.step(HERMES.render(call))[4]
        assert (a["error"], a["tool_output"]) == (b["error"], b["tool_output"])
    for expression, error in (("1990 - 1955", None), ("9**9**9", "tool_error"), ("__import__('os')", "tool_error")):
        info = multi.step(HERMES.render(ToolCall("calculator", {"expression": expression})))[4]
        assert info["error"] == error
    assert info["error_message"] and "Unknown function" in info["error_message"]


def test_hard_questions_need_more_documents_than_easy_ones() -> None:
    tasks = env("test").task_set
    easy = max(t.metadata["documents"] for t in tasks if t.difficulty == "easy")
    hard = max(t.metadata["documents"] for t in tasks if t.difficulty == "hard")
    assert hard > easy


def test_grading_needs_exactly_one_close_number() -> None:
    multi = env("test")
    task = multi.task_set[0]
    assert multi.check_answer(task, f"{task.answer} years")
    assert not multi.check_answer(task, f"{int(task.answer) + 1}")
    assert not multi.check_answer(task, f"{task.answer} or {int(task.answer) + 1}")
