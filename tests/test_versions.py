"""Pinned env versions: specs record their data hash, changed data warns, results record versions."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import pytest

from baselines.leaderboard import read_csv, run_leaderboard, write_csv
from toolgym.core.tasks import data_fingerprint, data_root
from toolgym.registry import BUILTIN_ENVS, PINNED_DATA_FINGERPRINTS


@pytest.mark.parametrize("entry", BUILTIN_ENVS, ids=lambda e: e.id)
def test_every_builtin_spec_pins_the_shipped_data(entry) -> None:  # type: ignore[no-untyped-def]
    pinned = gym.spec(entry.id).kwargs.get("pinned_data_fingerprint")
    assert pinned == PINNED_DATA_FINGERPRINTS.get(entry.id), f"{entry.id} has no pinned data hash"
    data_name = gym.make(entry.id).unwrapped.data_name
    assert data_fingerprint(data_name) == pinned, (
        f"envs_data/{data_name} changed: bump the env version and update PINNED_DATA_FINGERPRINTS"
    )


def test_changed_data_warns_when_the_env_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(data_root() / "lookup", tmp_path / "lookup")
    with (tmp_path / "lookup" / "tasks" / "test.jsonl").open("a") as fh:
        fh.write('{"id": "extra", "prompt": "Find the value of key K1.", "answer": "D1"}\n')
    monkeypatch.setenv("TOOLGYM_DATA_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="differs from the data this env version was released with"):
        gym.make("ToolGym/Lookup-v0", split="test")


def test_the_old_pinned_data_hash_keyword_is_still_accepted() -> None:
    """``pinned_data_hash`` is the old name of ``pinned_data_fingerprint``: it still pins (and wins
    over the spec's value), with a DeprecationWarning; the old attribute still reads the pin."""
    fingerprint = PINNED_DATA_FINGERPRINTS["ToolGym/Lookup-v0"]
    with pytest.warns(DeprecationWarning, match="old name of pinned_data_fingerprint"):
        env = gym.make("ToolGym/Lookup-v0", pinned_data_hash=fingerprint)
    assert env.unwrapped.pinned_data_fingerprint == env.unwrapped.pinned_data_hash == fingerprint
    with (
        pytest.warns(DeprecationWarning),
        pytest.warns(UserWarning, match=r"differs from the data this env version was released with \(0{16}\)"),
    ):
        gym.make("ToolGym/Lookup-v0", pinned_data_hash="0" * 16)


def test_reset_info_and_results_record_versions(tmp_path: Path) -> None:
    _, info = gym.make("ToolGym/Lookup-v0").reset(seed=0)
    assert len(info["data_hash"]) == 16 and info["grader_version"]
    rows = run_leaderboard(["ToolGym/Lookup-v0"], ["oracle"], episodes=2, workers=1)
    assert rows[0]["data_hash"] == gym.make("ToolGym/Lookup-v0", split="test").unwrapped.task_set.content_hash()
    write_csv(rows, tmp_path / "ok.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_csv(tmp_path / "ok.csv")
    for row in rows:
        row["data_hash"] = "0000000000000000"
    write_csv(rows, tmp_path / "stale.csv")
    with pytest.warns(UserWarning, match="different task data"):
        read_csv(tmp_path / "stale.csv")
