"""Packaging: a non-editable install works outside the repository, and import stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_import_toolgym_does_not_import_torch_or_docker() -> None:
    code = "import sys, toolgym; print(sorted(m for m in ('torch', 'transformers', 'docker', 'bm25s') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ToolGym installed non-editably (wheel built from this checkout) into a private directory."""
    target = tmp_path_factory.mktemp("site")
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(REPO)],
        check=True,
    )
    wheel = next(wheels.glob("toolgym-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    return target


def test_non_editable_install_makes_search_outside_the_repo(installed: Path, tmp_path: Path) -> None:
    code = (
        "import gymnasium as gym, toolgym\n"
        "assert 'site' in toolgym.__file__ and 'envs_data' in str(toolgym.core.tasks.data_root())\n"
        "env = gym.make('ToolGym/Search-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(len(env.unwrapped.task_set), info['task_id'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TOOLGYM_DATA_DIR"}
    env["PYTHONPATH"] = str(installed)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1].startswith("search-")
    assert (installed / "toolgym" / "envs_data" / "search" / "corpus.jsonl").is_file()
    assert (installed / "toolgym" / "py.typed").is_file()
