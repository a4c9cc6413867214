"""The agent registry (toolgym/agents.py): agents found by spec prefix through the
``toolgym.agents`` entry-point group, which the baselines fill (issue 23, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from importlib.metadata import EntryPoint
from typing import Any

import pytest

import toolgym.agents as agents
from tests.conftest import REPO
from toolgym.core.errors import ConfigError


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """An empty registry whose entry points are the ``plugins`` list (name -> ``module:attr``)."""
    state = types.SimpleNamespace(plugins={})
    monkeypatch.setattr(agents, "_kinds", {})
    monkeypatch.setattr(agents, "_loaded", set())
    monkeypatch.setattr(agents, "_leaderboard", [])

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == "toolgym.agents"
        return [EntryPoint(name, value, group) for name, value in state.plugins.items()]

    monkeypatch.setattr(agents, "entry_points", fake_entry_points)
    return state


class _Echo:
    def __init__(self, spec: str, seed: int | None) -> None:
        self.spec, self.seed = spec, seed

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, observation: str, info: dict[str, Any]) -> str:
        return self.spec


def register_fake() -> None:
    """What a third-party plugin's entry point does."""
    agents.register_agent("echo", lambda spec, env, seed: _Echo(spec, seed), help="echo")
    agents.register_agent(
        "say", lambda spec, env, seed: _Echo(spec, seed), takes_argument=True, help="say:TEXT",
        check=lambda spec: None if spec != "say:" else (_ for _ in ()).throw(ConfigError("say: needs TEXT")),
        skip=lambda spec, env_id: None if env_id == "A" else "only plays A",
    )
    agents.register_leaderboard(lambda: "runner")


def broken_plugin() -> None:
    raise RuntimeError("boom")


def test_kinds_come_from_entry_points_and_are_found_by_prefix(fresh: types.SimpleNamespace) -> None:
    fresh.plugins["fake"] = f"{__name__}:register_fake"
    assert [k.help for k in agents.agent_kinds()] == ["echo", "say:TEXT"]
    agent = agents.make_agent("say:hello", None, seed=3)
    assert isinstance(agent, _Echo) and (agent.spec, agent.seed) == ("say:hello", 3)
    agents.check_agent_spec("echo")
    with pytest.raises(ConfigError, match="needs TEXT"):
        agents.check_agent_spec("say:")
    assert agents.skip_reason("say:x", "A") is None
    assert agents.skip_reason("say:x", "B") == "only plays A"
    assert agents.skip_reason("echo", "B") is None
    assert agents.leaderboard_runner() == "runner"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ecko", "Unknown agent 'ecko'; expected echo or say:TEXT. Did you mean 'echo'?"),
        ("sya:hi", "Unknown agent 'sya:hi'; expected echo or say:TEXT. Did you mean 'say'?"),
        ("echo:x", "Unknown agent 'echo:x'"),  # echo takes no argument
        ("say", "Unknown agent 'say'"),  # say needs one
    ],
)
def test_unknown_specs_are_config_errors_with_a_did_you_mean(
    fresh: types.SimpleNamespace, spec: str, message: str
) -> None:
    fresh.plugins["fake"] = f"{__name__}:register_fake"
    with pytest.raises(ConfigError) as info:
        agents.make_agent(spec, None)
    assert str(info.value).startswith(message)


def test_without_the_entry_point_the_error_says_to_reinstall(fresh: types.SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="no agents are registered.*pip install -e"):
        agents.check_agent_spec("random")
    with pytest.raises(ConfigError, match="No leaderboard runner.*pip install -e"):
        agents.leaderboard_runner()


def test_a_broken_plugin_only_warns(fresh: types.SimpleNamespace) -> None:
    fresh.plugins["bad"] = f"{__name__}:broken_plugin"
    fresh.plugins["fake"] = f"{__name__}:register_fake"
    with pytest.warns(UserWarning, match="'bad'.*RuntimeError: boom"):
        kinds = agents.agent_kinds()
    assert [k.name for k in kinds] == ["echo", "say"]
    agents.agent_kinds()  # loaded once: no second warning (pytest's filter would not show it anyway)
    assert agents._loaded == {"bad", "fake"}


def test_kind_names_are_checked(fresh: types.SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="must be non-empty and contain no ':'"):
        agents.register_agent("a:b", lambda spec, env, seed: _Echo(spec, seed))


def test_the_baselines_declare_their_entry_point() -> None:
    # (tomllib is Python >= 3.11; the package supports 3.10)
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.entry-points."toolgym.agents"]\nbaselines = "baselines.agents:register"\n' in text


def test_the_baseline_agents_register_in_order_without_torch(fresh: types.SimpleNamespace) -> None:
    from baselines.agents import register

    register()
    assert [k.help for k in agents._kinds.values()] == ["random", "oracle", "sb3:PATH", "llm:PATH", "openai:MODEL@BASE_URL"]
    code = (
        "import sys\n"
        "from baselines.agents import register; register()\n"
        "from toolgym.agents import check_agent_spec, skip_reason\n"
        "check_agent_spec('random'); check_agent_spec('oracle')\n"
        "assert skip_reason('oracle', 'ToolGym/Lookup-v0') is None\n"
        "assert 'torch' not in sys.modules and 'baselines.leaderboard' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr


def test_the_installed_metadata_has_the_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="toolgym.agents")}
    assert names.get("baselines") == "baselines.agents:register", (
        "the installed toolgym metadata lacks the toolgym.agents entry point: reinstall with `pip install -e .`"
    )
