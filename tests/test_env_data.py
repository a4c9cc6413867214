"""The shipped data of every generated env: ``envs_data/<name>/`` holds ``generate.py``, a
``README.md`` and a ``MANIFEST.json`` (seed, generator version, SHA-256 of every file), and
regenerating with the manifest's seed reproduces every file byte for byte.

One parametrised suite for all envs (each env's own test file specifies what its data means).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from tests.conftest import REPO
from toolgym.registry import BUILTIN_ENVS

DATA_ROOT = REPO / "envs_data"
GENERATED = sorted(p.parent.name for p in DATA_ROOT.glob("*/generate.py"))
"""Every env whose data is generated here (BFCL's comes from the bfcl-eval package instead)."""
MAX_FILE_BYTES = 2 * 1024 * 1024
LARGER_FILES = {"booking/tasks/train.jsonl": 4 * 1024 * 1024, "search/corpus.jsonl": 3 * 1024 * 1024}
"""Files allowed past :data:`MAX_FILE_BYTES` (the repository stays small), with their limit."""
NOT_DATA = {"MANIFEST.json", "generate.py"}


def manifest(name: str) -> dict:
    """``envs_data/<name>/MANIFEST.json``."""
    return json.loads((DATA_ROOT / name / "MANIFEST.json").read_text(encoding="utf-8"))


def test_every_builtin_env_with_generated_data_ships_a_manifest_and_a_readme() -> None:
    names = set()
    for entry in BUILTIN_ENVS:
        module, _, cls = gym.spec(entry.id).entry_point.partition(":")  # type: ignore[union-attr]
        names.add(getattr(importlib.import_module(module), cls).data_name)
    generated = names & set(GENERATED)
    assert {"search", "lookup", "calc", "sql", "multi", "booking", "code"} <= generated
    for name in sorted(generated):
        for required in ("MANIFEST.json", "README.md"):
            assert (DATA_ROOT / name / required).is_file(), f"envs_data/{name}/{required} is missing"


@pytest.mark.parametrize("name", GENERATED)
def test_regenerating_with_the_manifest_seed_is_byte_identical(name: str, tmp_path: Path) -> None:
    data, shipped = DATA_ROOT / name, manifest(name)
    subprocess.run(
        [sys.executable, str(data / "generate.py"), "--seed", str(shipped["seed"]), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # set/dict order must not leak into the data
        cwd=tmp_path,
    )
    for rel, expected in shipped["sha256"].items():
        assert hashlib.sha256((data / rel).read_bytes()).hexdigest() == expected, f"{name}/{rel} differs from MANIFEST"
        assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == expected, (
            f"{name}/{rel} regenerates differently"
        )
    assert (tmp_path / "MANIFEST.json").read_bytes() == (data / "MANIFEST.json").read_bytes()


@pytest.mark.parametrize("name", GENERATED)
def test_manifest_covers_every_data_file_and_files_are_small(name: str) -> None:
    data, shipped = DATA_ROOT / name, manifest(name)
    assert isinstance(shipped["seed"], int) and shipped["generator_version"]
    on_disk = {
        p.relative_to(data).as_posix()
        for p in data.rglob("*")
        if p.is_file() and p.name not in NOT_DATA and "__pycache__" not in p.parts
    }
    assert on_disk == set(shipped["sha256"])
    for rel in on_disk:
        limit = LARGER_FILES.get(f"{name}/{rel}", MAX_FILE_BYTES)
        assert (data / rel).stat().st_size < limit, f"{name}/{rel} is over {limit} bytes"
