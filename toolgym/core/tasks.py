"""Tasks and task sets.

A :class:`Task` is data: an id, the prompt shown to the agent, the ground truth the env's
checker compares against, and metadata (difficulty, hops, ...). A :class:`TaskSet` is one split
of an env's tasks, loaded from ``envs_data/<env>/tasks/<split>.jsonl``.

Three hashes identify data; each has one name:

* **task-set hash** (:meth:`TaskSet.content_hash`; ``info["data_hash"]`` at reset, the
  ``data_hash`` column of leaderboard CSVs): the tasks of one split as loaded, so results say which
  tasks they were measured on;
* **data fingerprint** (:func:`data_fingerprint`; pinned per env version as the spec kwarg
  ``pinned_data_fingerprint``, old name ``pinned_data_hash``): every data file of
  ``envs_data/<env>`` (tasks, corpora, databases), so data changed without a ``-vN`` bump warns;
* **file SHA-256s** (``envs_data/<env>/MANIFEST.json``, written by the generators): each generated
  file's full digest, so a re-run of ``generate.py`` is checked byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from toolgym.core.errors import ConfigError, did_you_mean

SPLITS: tuple[str, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class Task:
    """One task.

    Attributes:
        id: Unique id within the env (stable across releases of the same env version).
        prompt: The task text shown to the agent.
        answer: Ground truth used by the env's checker (any JSON value).
        difficulty: ``"easy"``, ``"medium"``, ``"hard"`` (or an env-specific level).
        metadata: Anything else (hops, templates, expected state...). Never shown to the agent.
    """

    id: str
    prompt: str
    answer: Any = None
    difficulty: str = "medium"
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Task:
        """Build a task from a JSON row with keys ``id``, ``prompt``, ``answer``, ``difficulty``,
        ``metadata`` (only ``id`` and ``prompt`` are required)."""
        try:
            return cls(
                id=str(row["id"]),
                prompt=str(row["prompt"]),
                answer=row.get("answer"),
                difficulty=str(row.get("difficulty", "medium")),
                metadata=dict(row.get("metadata", {})),
            )
        except KeyError as exc:
            raise ConfigError(f"Task row is missing the required key {exc.args[0]!r}: {row!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Inverse of :meth:`from_dict`."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "answer": self.answer,
            "difficulty": self.difficulty,
            "metadata": self.metadata,
        }


def data_root() -> Path:
    """Directory holding the shipped task data (``envs_data``).

    Looked up in this order: the ``TOOLGYM_DATA_DIR`` environment variable; ``envs_data`` inside
    the installed ``toolgym`` package (non-editable installs); ``envs_data`` beside the package
    (source checkouts and editable installs).
    """
    override = os.environ.get("TOOLGYM_DATA_DIR")
    if override:
        return Path(override)
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "envs_data", package_dir.parent / "envs_data"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(
        "Cannot find ToolGym's task data (envs_data). Reinstall the package, or point "
        "TOOLGYM_DATA_DIR at a copy of the envs_data directory."
    )


class TaskSet(Sequence[Task]):
    """An ordered, immutable collection of tasks (one split of one env).

    Args:
        tasks: The tasks, in a fixed order (task choice under a seed indexes into it).
        name: Env data name, e.g. ``"search"``.
        split: Split name, e.g. ``"test"``.
    """

    def __init__(self, tasks: Iterable[Task], *, name: str = "", split: str = "") -> None:
        self._tasks = tuple(tasks)
        self.name = name
        self.split = split
        self._by_id = {task.id: i for i, task in enumerate(self._tasks)}
        self._hash: str | None = None
        if len(self._by_id) != len(self._tasks):
            dupes = [k for k, v in Counter(t.id for t in self._tasks).items() if v > 1]
            raise ConfigError(f"TaskSet {name}/{split} has duplicate task ids: {dupes[:5]}")

    @classmethod
    def load(cls, name: str, split: str, *, root: Path | None = None) -> TaskSet:
        """Load ``<root>/<name>/tasks/<split>.jsonl`` (root defaults to :func:`data_root`).

        Raises:
            ConfigError: if the split does not exist (the message lists the ones that do).
        """
        return _load_cached(name, split, str(root or data_root()))

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index: int) -> Task:  # type: ignore[override]
        return self._tasks[index]

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __repr__(self) -> str:
        return f"TaskSet(name={self.name!r}, split={self.split!r}, size={len(self)})"

    def by_id(self, task_id: str) -> Task:
        """Return the task with this id.

        Raises:
            ConfigError: if there is none (with a "did you mean" suggestion).
        """
        try:
            return self._tasks[self._by_id[task_id]]
        except KeyError:
            raise ConfigError(
                f"No task {task_id!r} in {self.name}/{self.split} ({len(self)} tasks)."
                + did_you_mean(task_id, self._by_id)
            ) from None

    def filter(
        self, *, difficulty: str | Sequence[str] | None = None, task_ids: Sequence[str] | None = None
    ) -> TaskSet:
        """Return the subset with the given difficulty level(s) and/or ids, order preserved.

        Raises:
            ConfigError: if a requested id or difficulty does not exist, or nothing is left.
        """
        tasks: Sequence[Task] = self._tasks
        if task_ids is not None:
            tasks = [self.by_id(t) for t in task_ids]
        if difficulty is not None:
            wanted = {difficulty} if isinstance(difficulty, str) else set(difficulty)
            known = set(self.difficulties())
            unknown = wanted - known
            if unknown:
                raise ConfigError(
                    f"Unknown difficulty {sorted(unknown)} for {self.name}/{self.split}; "
                    f"expected one of {sorted(known)}."
                )
            tasks = [t for t in tasks if t.difficulty in wanted]
        if not tasks:
            raise ConfigError(f"No tasks left in {self.name}/{self.split} after filtering.")
        return TaskSet(tasks, name=self.name, split=self.split)

    def difficulties(self) -> dict[str, int]:
        """Number of tasks per difficulty level."""
        return dict(sorted(Counter(t.difficulty for t in self._tasks).items()))

    def content_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the tasks' canonical JSON: changes iff the data does."""
        if self._hash is None:
            digest = hashlib.sha256()
            for task in self._tasks:
                digest.update(json.dumps(task.to_dict(), sort_keys=True).encode())
                digest.update(b"\n")
            self._hash = digest.hexdigest()[:16]
        return self._hash


DATA_SUFFIXES = (".jsonl", ".json", ".sql", ".db", ".csv", ".txt")


def data_fingerprint(name: str, root: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of every data file of ``envs_data/<name>`` (paths and bytes;
    generator scripts, READMEs and manifests excluded). Pinned in the registry, so data that
    changes without a version bump is detected. Computed once per process and directory."""
    return _fingerprint(name, str(root or data_root()))


@lru_cache(maxsize=64)
def _fingerprint(name: str, root: str) -> str:
    directory = Path(root) / name
    if not directory.is_dir():
        raise ConfigError(f"No data directory {directory} for {name!r}.")
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES):
        if path.name == "MANIFEST.json":
            continue
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=64)
def _load_cached(name: str, split: str, root: str) -> TaskSet:
    path = Path(root) / name / "tasks" / f"{split}.jsonl"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.jsonl")) if path.parent.is_dir() else []
        raise ConfigError(
            f"Split {split!r} not found for {name!r} (looked for {path}). "
            f"Available splits: {available or 'none'}." + did_you_mean(split, available)
        )
    with path.open(encoding="utf-8") as fh:
        tasks = [Task.from_dict(json.loads(line)) for line in fh if line.strip()]
    return TaskSet(tasks, name=name, split=split)
