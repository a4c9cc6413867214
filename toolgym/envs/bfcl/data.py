"""Loading BFCL's multi-turn data from an installed ``bfcl-eval`` package.

``bfcl-eval`` pins old numpy and many heavy dependencies, so ToolGym never depends on it: it is
installed with ``--no-deps`` and only its data files, its API simulators
(``eval_checker/multi_turn_eval/func_source_code``) and its multi-turn checker are used, all of
which import nothing beyond the standard library and ``mpmath`` (for ``MathAPI``).

Splits are a fixed function of the task ids: the four categories are variants of the same 200
scenarios (``multi_turn_base_17``, ``multi_turn_miss_func_17``... share scenario 17), so a
scenario goes to one split in every category. Scenario ``n`` is in ``train`` if
``sha256(str(n))`` (as an integer) mod 10 is 0-6, ``dev`` if 7 and ``test`` if 8-9; the split
``all`` holds every task.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from toolgym.core.errors import ConfigError, ToolGymError, did_you_mean
from toolgym.core.tasks import Task, TaskSet, data_root

PACKAGE = "bfcl_eval"
DISTRIBUTION = "bfcl-eval"
TESTED_VERSION = "2026.3.23"
INSTALL_COMMAND = f"pip install 'bfcl-eval=={TESTED_VERSION}' --no-deps && pip install mpmath"
CATEGORIES: tuple[str, ...] = ("base", "miss_func", "miss_param", "long_context")
SPLITS: tuple[str, ...] = ("train", "dev", "test", "all")
DATA_NAME = "bfcl"
MULTI_TURN_CLASSES: tuple[str, ...] = (
    "GorillaFileSystem",
    "MathAPI",
    "MessageAPI",
    "TwitterAPI",
    "TicketAPI",
    "TradingBot",
    "TravelAPI",
    "VehicleControlAPI",
)
"""The API classes of the multi-turn categories (BFCL's memory / web-search classes are not used)."""
HOLDOUT_USER_MESSAGE = "I have updated some more functions you can choose from. What about now?"
"""BFCL's user message for a ``miss_func`` turn that adds the held-out functions."""


class BFCLNotInstalledError(ToolGymError, ImportError):
    """``bfcl-eval`` (or ``mpmath``, which its ``MathAPI`` needs) is not installed."""


def require_package() -> Path:
    """The directory of the installed ``bfcl_eval`` package.

    Raises:
        BFCLNotInstalledError: if it is not installed, naming the install command.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BFCLNotInstalledError(
            "The BFCL multi-turn environments need the 'bfcl-eval' package (its data and API "
            "simulators), which is not installed. Install it without its heavy dependencies:\n"
            f"    {INSTALL_COMMAND}\n"
            "(or: pip install 'toolgym[bfcl]' && pip install bfcl-eval --no-deps)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def installed_version() -> str | None:
    """The installed ``bfcl-eval`` version (``None`` if unknown)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def import_module(name: str) -> ModuleType:
    """Import a ``bfcl_eval`` submodule, turning a missing dependency into a clear error.

    Raises:
        BFCLNotInstalledError: if ``bfcl_eval`` or a module it imports is missing.
    """
    require_package()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise BFCLNotInstalledError(
            f"Importing {name} failed: module {exc.name!r} is missing. The BFCL environments need "
            f"bfcl-eval (installed with --no-deps) and mpmath:\n    {INSTALL_COMMAND}"
        ) from exc


def data_dir() -> Path:
    """``bfcl_eval/data`` of the installed package."""
    return require_package() / "data"


def source_files(category: str) -> dict[str, Path]:
    """The package data files a category is built from, by their path relative to ``data``."""
    names = [
        f"BFCL_v4_multi_turn_{category}.json",
        f"possible_answer/BFCL_v4_multi_turn_{category}.json",
    ]
    names += [f"multi_turn_func_doc/{doc}" for doc in sorted(func_doc_files().values())]
    root = data_dir()
    return {name: root / name for name in names}


@lru_cache(maxsize=1)
def func_doc_files() -> dict[str, str]:
    """API class name -> its function-doc file name (BFCL's own mapping)."""
    config = import_module("bfcl_eval.constants.executable_backend_config")
    mapping: dict[str, str] = config.MULTI_TURN_FUNC_DOC_FILE_MAPPING
    return {name: mapping[name] for name in MULTI_TURN_CLASSES}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise BFCLNotInstalledError(
            f"{path} is missing from the installed bfcl-eval ({installed_version()}); ToolGym is "
            f"tested with bfcl-eval {TESTED_VERSION}:\n    {INSTALL_COMMAND}"
        )
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@lru_cache(maxsize=1)
def func_docs() -> dict[str, tuple[dict[str, Any], ...]]:
    """API class name -> its BFCL function docs (``name``, ``description``, ``parameters``...)."""
    root = data_dir() / "multi_turn_func_doc"
    return {cls: tuple(_read_jsonl(root / file)) for cls, file in func_doc_files().items()}


@lru_cache(maxsize=8192)
def split_of(task_id: str) -> str:
    """The split of a task id (see the module docstring); cached, as every env instance asks for
    every task's split when it loads its tasks."""
    scenario = scenario_index(task_id)
    bucket = int(hashlib.sha256(str(scenario).encode()).hexdigest(), 16) % 10
    return "train" if bucket < 7 else ("dev" if bucket == 7 else "test")


def scenario_index(task_id: str) -> int:
    """The scenario number at the end of a BFCL id (``multi_turn_miss_func_17`` -> 17)."""
    tail = task_id.rsplit("_", 1)[-1]
    if not tail.isdigit():
        raise ConfigError(f"{task_id!r} is not a BFCL multi-turn task id (expected '..._<number>').")
    return int(tail)


def category_of(task_id: str) -> str:
    """The category of a BFCL multi-turn id (``multi_turn_miss_func_17`` -> ``miss_func``)."""
    stem = task_id.rsplit("_", 1)[0]
    category = stem.removeprefix("multi_turn_")
    if category not in CATEGORIES:
        raise ConfigError(f"{task_id!r} is not a BFCL multi-turn task id; categories: {CATEGORIES}.")
    return category


KNOWN_ORACLE_FAILURES: dict[str, str] = {
    **{
        f"multi_turn_{c}_173": "the ground truth passes ticket_id='ticket_001' to close_ticket, whose "
        "doc declares an integer: a schema violation here, so the ticket stays open"
        for c in ("base", "miss_func", "miss_param", "long_context")
    },
    "multi_turn_miss_func_49": "the ground truth of turn 1 calls tail, which is held back until turn 3",
}
"""Tasks that BFCL's own ground truth cannot solve under ToolGym's schema checks (see
``docs/bfcl.md``); recorded as ``metadata["known_oracle_failure"]`` so that ``toolgym check``
does not count them as grader problems."""


def _task(row: dict[str, Any], ground_truth: list[list[str]], category: str) -> Task:
    turns: list[str | None] = []
    for index, messages in enumerate(row["question"]):
        if not messages:
            turns.append(None)  # a miss_func turn: the held-out functions arrive
            continue
        contents = [m["content"] for m in messages if m.get("role") == "user"]
        if len(contents) != len(messages):
            raise ConfigError(f"BFCL task {row['id']} turn {index} has non-user messages: {messages!r}")
        turns.append("\n\n".join(contents))
    if turns[0] is None:
        raise ConfigError(f"BFCL task {row['id']} starts with an empty turn.")
    if len(ground_truth) != len(turns):
        raise ConfigError(
            f"BFCL task {row['id']} has {len(turns)} turns but {len(ground_truth)} ground-truth turns."
        )
    missed = {int(k): list(v) for k, v in (row.get("missed_function") or {}).items()}
    return Task(
        id=row["id"],
        prompt=turns[0],
        answer=ground_truth,
        difficulty=category,
        metadata={
            "category": category,
            "scenario": scenario_index(row["id"]),
            "turns": turns,
            "initial_config": row.get("initial_config", {}),
            "involved_classes": list(row["involved_classes"]),
            "missed_function": missed,
            **({"known_oracle_failure": KNOWN_ORACLE_FAILURES[row["id"]]} if row["id"] in KNOWN_ORACLE_FAILURES else {}),
        },
    )


@lru_cache(maxsize=8)
def category_tasks(category: str) -> tuple[Task, ...]:
    """Every task of a category, in BFCL's order.

    Raises:
        ConfigError: for an unknown category.
        BFCLNotInstalledError: if the package or its data is missing.
    """
    if category not in CATEGORIES:
        raise ConfigError(
            f"Unknown BFCL category {category!r}; expected one of {CATEGORIES} or 'all'."
            + did_you_mean(category, CATEGORIES)
        )
    files = source_files(category)
    rows = _read_jsonl(files[f"BFCL_v4_multi_turn_{category}.json"])
    answers = {
        a["id"]: a["ground_truth"]
        for a in _read_jsonl(files[f"possible_answer/BFCL_v4_multi_turn_{category}.json"])
    }
    return tuple(_task(row, answers[row["id"]], category) for row in rows)


def load_tasks(category: str, split: str) -> TaskSet:
    """One split of one category (or ``category="all"``: the four categories in turn).

    Raises:
        ConfigError: for an unknown category or split.
        BFCLNotInstalledError: if the package or its data is missing.
    """
    if split not in SPLITS:
        raise ConfigError(
            f"Split {split!r} not found for BFCL; available splits: {list(SPLITS)}."
            + did_you_mean(split, SPLITS)
        )
    categories = CATEGORIES if category == "all" else (category,)
    tasks = [t for c in categories for t in category_tasks(c) if split == "all" or split_of(t.id) == split]
    return TaskSet(tasks, name=DATA_NAME, split=split)


def task_by_id(task_id: str) -> Task:
    """The task with this id, in any category."""
    for task in category_tasks(category_of(task_id)):
        if task.id == task_id:
            return task
    raise ConfigError(f"No BFCL task {task_id!r}.")


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned_sources() -> dict[str, Any]:
    """``envs_data/bfcl/source.json``: the bfcl-eval version and file hashes this env was released with."""
    with (data_root() / DATA_NAME / "source.json").open(encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=8)
def check_sources(category: str) -> list[str]:
    """Compare the installed package's files of ``category`` with the pinned hashes.

    Returns:
        The relative paths that differ (a warning is issued once per category if any do).
    """
    pinned = pinned_sources()["sha256"]
    changed = [
        name
        for name, path in source_files(category).items()
        if name in pinned and (not path.is_file() or file_digest(path) != pinned[name])
    ]
    if changed:
        warnings.warn(
            f"The installed bfcl-eval ({installed_version()}) has different data than the release this "
            f"env version pins ({pinned_sources()['version']}): {changed[:4]}. Results will not be "
            f"comparable; install the pinned version:\n    {INSTALL_COMMAND}",
            stacklevel=3,
        )
    return changed


def write_source_manifest(path: Path) -> dict[str, Any]:
    """(Re)write ``source.json`` from the installed package (used when moving to a new bfcl-eval)."""
    hashes: dict[str, str] = {}
    for category in CATEGORIES:
        hashes.update({name: file_digest(p) for name, p in source_files(category).items()})
    manifest = {
        "distribution": DISTRIBUTION,
        "version": installed_version(),
        "sha256": dict(sorted(hashes.items())),
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
