"""Tasks and task sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolgym import ConfigError, Task, TaskSet


def write_split(root: Path, name: str, split: str, rows: list[dict]) -> None:
    path = root / name / "tasks"
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


ROWS = [
    {"id": "a", "prompt": "p1", "answer": 1, "difficulty": "easy"},
    {"id": "b", "prompt": "p2", "answer": 2, "difficulty": "hard", "metadata": {"hops": 3}},
    {"id": "c", "prompt": "p3", "answer": 3, "difficulty": "easy"},
]


def test_load_filter_and_lookup(tmp_path: Path) -> None:
    write_split(tmp_path, "toy", "dev", ROWS)
    tasks = TaskSet.load("toy", "dev", root=tmp_path)
    assert len(tasks) == 3 and tasks[1].metadata == {"hops": 3}
    assert tasks.difficulties() == {"easy": 2, "hard": 1}
    assert [t.id for t in tasks.filter(difficulty="easy")] == ["a", "c"]
    assert [t.id for t in tasks.filter(task_ids=["c", "a"])] == ["c", "a"]
    assert tasks.by_id("b").answer == 2


def test_errors_name_what_exists(tmp_path: Path) -> None:
    write_split(tmp_path, "toy", "dev", ROWS)
    tasks = TaskSet.load("toy", "dev", root=tmp_path)
    with pytest.raises(ConfigError, match=r"Available splits: \['dev'\]"):
        TaskSet.load("toy", "tset", root=tmp_path)
    with pytest.raises(ConfigError, match="expected one of \\['easy', 'hard'\\]"):
        tasks.filter(difficulty="medium")
    with pytest.raises(ConfigError, match="No task 'z'"):
        tasks.by_id("z")
    with pytest.raises(ConfigError, match="duplicate task ids"):
        TaskSet([Task("x", "p"), Task("x", "q")])
    with pytest.raises(ConfigError, match="missing the required key 'prompt'"):
        Task.from_dict({"id": "x"})


def test_content_hash_tracks_the_data() -> None:
    one = TaskSet([Task("a", "p", answer=1)])
    assert one.content_hash() == TaskSet([Task("a", "p", answer=1)]).content_hash()
    assert one.content_hash() != TaskSet([Task("a", "p", answer=2)]).content_hash()
