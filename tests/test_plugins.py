"""Third-party environments: the example plugin, installed for real, is seen by gym.make and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLUGIN, REPO


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed into a private directory (the test env stays clean)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE_PLUGIN)],
        check=True,
    )
    return target


def run_python(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)


def test_gym_make_sees_the_installed_plugin(plugin_site: Path) -> None:
    code = (
        "import gymnasium as gym, toolgym\n"
        "env = gym.make('Example/Weather-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(toolgym.env_ids(), toolgym.registry.plugin_of('Example/Weather-v0'), info['tools'][0]['function']['name'])\n"
    )
    result = run_python(plugin_site, "-c", code)
    assert result.returncode == 0, result.stderr
    assert "'Example/Weather-v0'" in result.stdout and "Example get_weather" in result.stdout


def test_toolgym_list_and_run_see_the_plugin(plugin_site: Path) -> None:
    listed = run_python(plugin_site, "-m", "toolgym.cli", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Example/Weather-v0" in listed.stdout and "plugin: Example" in listed.stdout
    ran = run_python(plugin_site, "-m", "toolgym.cli", "run", "Example/Weather-v0", "--agent", "oracle", "--split", "train")
    assert ran.returncode == 0, ran.stderr
    assert "1.000" in ran.stdout


def test_a_plugin_cannot_overwrite_toolgym_ids(tmp_path: Path) -> None:
    pkg = tmp_path / "evil"
    (pkg / "evil_plugin").mkdir(parents=True)
    (pkg / "evil_plugin" / "__init__.py").write_text(
        "import gymnasium\n"
        "def register():\n"
        "    gymnasium.register(id='Search-v0', entry_point='toolgym_example_plugin.weather:WeatherEnv')\n"
    )
    dist = tmp_path / "site" / "evil_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[toolgym.envs]\nEvil = evil_plugin:register\n")
    result = run_python(
        tmp_path / "site", "-c",
        f"import sys; sys.path.insert(0, {str(pkg)!r}); sys.path.insert(0, {str(EXAMPLE_PLUGIN)!r})\n"
        "import gymnasium as gym, toolgym\n"
        "print(gym.spec('ToolGym/Search-v0').entry_point, 'Evil/Search-v0' in toolgym.env_ids())",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["toolgym.envs.search.env:SearchEnv", "True"]


def test_a_broken_plugin_only_warns(tmp_path: Path) -> None:
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[toolgym.envs]\nBroken = no_such_module:register\n")
    result = run_python(tmp_path, "-c", "import toolgym; print(toolgym.env_ids())")
    assert result.returncode == 0, result.stderr
    assert "ToolGym/Search-v0" in result.stdout
    assert "plugin 'Broken'" in result.stderr and "failed to load" in result.stderr


def test_leaderboard_all_includes_the_plugin(plugin_site: Path, tmp_path: Path) -> None:
    ran = run_python(
        plugin_site, "-m", "toolgym.cli", "leaderboard", "--envs", "all", "--agents", "oracle",
        "--episodes", "1", "--workers", "1", "--out", str(tmp_path),
    )
    assert ran.returncode == 0, ran.stderr
    assert "| Example/Weather-v0 | 1.000 [0.207, 1.000] |" in (tmp_path / "LEADERBOARD.md").read_text()
