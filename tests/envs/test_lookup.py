"""Lookup-v0: the generated key-value tables, the ``get`` tool and the exact-match grader.

The registry-wide suites (``tests/test_env_contract.py``, ``tests/test_oracles.py``,
``tests/test_env_data.py``) cover the env contract, the oracle and the data's manifest; these
tests specify what the data means.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.lookup.env import UNKNOWN_KEY_OUTPUT, LookupEnv

HERMES = get_action_format("hermes")
HOPS = {"easy": 1, "medium": 2, "hard": 3}
KEY = re.compile(r"K(?:[0-9]|1[0-9]|2[0-3])")
VALUE = re.compile(r"D[0-9]")


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_table_chains_from_the_start_key_to_the_answer_in_hops_lookups(split: str) -> None:
    for task in LookupEnv(split=split).task_set:
        meta = task.metadata
        assert meta["hops"] == HOPS[task.difficulty], task.id
        assert task.prompt == f"Find the value of key {meta['start']}.", task.id
        assert all(KEY.fullmatch(k) for k in meta["table"]), task.id
        assert all(KEY.fullmatch(v) or VALUE.fullmatch(v) for v in meta["table"].values()), task.id
        current = meta["start"]
        for _ in range(meta["hops"]):
            current = meta["table"][current]
        assert current == task.answer and VALUE.fullmatch(current), task.id
        assert meta["start"] not in meta["table"].values(), f"{task.id}: a key leads back to the start"


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_splits_are_balanced_across_difficulties(split: str) -> None:
    tasks = LookupEnv(split=split).task_set
    counts = Counter(t.difficulty for t in tasks)
    assert set(counts) == set(HOPS) and len(set(counts.values())) == 1


def test_get_follows_the_table_and_says_none_for_an_unknown_key() -> None:
    env = LookupEnv(split="test", difficulty="hard")
    _, info = env.reset(seed=0)
    task = env.unwrapped.task
    missing = next(f"K{i}" for i in range(24) if f"K{i}" not in task.metadata["table"])
    _, _, _, _, info = env.step(HERMES.render(ToolCall("get", {"key": missing})))
    assert info["tool_output"] == UNKNOWN_KEY_OUTPUT and info["error"] is None
    key = task.metadata["start"]
    for _ in range(task.metadata["hops"]):
        _, _, _, _, info = env.step(HERMES.render(ToolCall("get", {"key": f" {key} "})))
        key = info["tool_output"]
    assert key == task.answer
    _, reward, terminated, _, info = env.step(HERMES.render(FinalAnswer(f"  {key}\n")))
    assert terminated and info["success"] and reward == 1.0


def test_a_wrong_value_scores_zero() -> None:
    env = LookupEnv(split="test")
    env.reset(seed=1)
    wrong = next(f"D{i}" for i in range(10) if f"D{i}" != env.unwrapped.task.answer)
    _, reward, terminated, _, info = env.step(HERMES.render(FinalAnswer(wrong)))
    assert terminated and not info["success"] and reward == 0.0
