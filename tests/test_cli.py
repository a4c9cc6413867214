"""The ``toolgym`` command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.conftest import EXAMPLE_ID, REPO
from toolgym.cli import app
from toolgym.core.formats import CALL_CLOSE, CALL_OPEN
from toolgym.registry import env_ids

runner = CliRunner()


def test_list_shows_builtins() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "ToolGym/Search-v0" in result.output


def test_info_reports_tools_splits_and_hashes() -> None:
    result = runner.invoke(app, ["info", EXAMPLE_ID, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [t["name"] for t in report["tools"]] == ["get_weather"]
    assert report["splits"]["test"]["size"] == 15
    assert report["splits"]["test"]["difficulty"] == {"easy": 15}
    assert len(report["splits"]["test"]["data_hash"]) == 16
    human = runner.invoke(app, ["info", EXAMPLE_ID])
    assert human.exit_code == 0 and "get_weather" in human.output


def test_unknown_env_suggests_a_close_id() -> None:
    result = runner.invoke(app, ["info", "ToolGym/Serch-v0"])
    assert result.exit_code == 2
    assert "Did you mean 'ToolGym/Search-v0'" in result.output


def test_run_prints_success_turns_and_format_errors() -> None:
    oracle = runner.invoke(app, ["run", EXAMPLE_ID, "--agent", "oracle"])
    assert oracle.exit_code == 0, oracle.output
    # 15/15 successes: the 95% Wilson interval is [0.796, 1], not "± 0".
    assert "1.000 [0.796, 1.000] (95% Wilson interval)" in oracle.output and "3.00" in oracle.output
    rnd = runner.invoke(app, ["run", EXAMPLE_ID, "--agent", "random", "--episodes", "20"])
    assert rnd.exit_code == 0, rnd.output
    assert "0.000 [0.000, 0.161]" in rnd.output and "error codes" in rnd.output
    bad = runner.invoke(app, ["run", EXAMPLE_ID, "--agent", "genius"])
    assert bad.exit_code == 2


def test_play_takes_actions_from_stdin() -> None:
    actions = CALL_OPEN + '{"name": "get_weather", "arguments": {"city": "Oslo"}}' + CALL_CLOSE + '\nnonsense\n:q\n'
    result = runner.invoke(app, ["play", EXAMPLE_ID, "--task-id", "weather-oslo-lima"], input=actions)
    assert result.exit_code == 0, result.output
    assert "Oslo: 3 °C" in result.output and "error code: no_action" in result.output


@pytest.mark.parametrize("stop", ["quit\n", "exit\n", "QUIT\n", ""], ids=["quit", "exit", "upper", "ctrl-d"])
def test_play_quits_with_a_summary_and_counts_turns(stop: str) -> None:
    actions = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n' + stop
    result = runner.invoke(app, ["play", EXAMPLE_ID, "--task-id", "weather-oslo-lima"], input=actions)
    assert result.exit_code == 0, result.output
    assert "turn 1/10>" in result.output and "turn 2/10>" in result.output
    # "quit" / "exit" / Ctrl-D end the session instead of being sent to the env as an action.
    assert "error code" not in result.output
    assert "Stopped after 1 of 10 turns: reward 0 so far, episode not finished" in result.output


def test_play_defaults_to_the_test_split_like_run() -> None:
    import inspect

    from toolgym.cli import play, run

    assert inspect.signature(play).parameters["split"].default == "test"
    assert inspect.signature(play).parameters["split"].default == inspect.signature(run).parameters["split"].default
    result = runner.invoke(app, ["play", "ToolGym/Lookup-v0"], input="")
    assert result.exit_code == 0, result.output
    assert "split test" in result.output and "lookup-test-" in result.output


def _one_error_line(result: Any) -> str:
    """The output of a failed command: exactly one line, 'Error: ...', no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "ToolGym/Lookup-v0", "--agent", "orcale"], "Did you mean 'oracle'?"),
        (["run", "ToolGym/Lookup-v0", "--split", "tset"], "Did you mean 'test'?"),
        (["run", "Lokup-v0"], "Did you mean 'ToolGym/Lookup-v0'?"),
        (["play", "ToolGym/Lookup-v0", "--task-id", "lookup-test-0201"], "Did you mean 'lookup-test-00201'?"),
        (["play", "ToolGym/Lookup-v0", "--split", "tset"], "Did you mean 'test'?"),
        (["run", "ToolGym/Lookup-v0", "--max-turns", "-1"], "--max-turns must be ≥ 1, got -1"),
        (["run", "ToolGym/Lookup-v0", "--max-turns", "0"], "--max-turns must be ≥ 1, got 0"),
        (["run", "ToolGym/Lookup-v0", "--seed", "-1"], "--seed must be ≥ 0, got -1"),
        (["run", "ToolGym/Lookup-v0", "--episodes", "-3"], "--episodes must be ≥ 0, got -3"),
        (["run", "ToolGym/Lookup-v0", "--batch-size", "0"], "--batch-size must be ≥ 1, got 0"),
        (["play", "ToolGym/Lookup-v0", "--seed", "-1"], "--seed must be ≥ 0, got -1"),
        (["run", "ToolGym/Lookup-v0", "--agent", "llm:no/such/dir"], "no model directory at 'no/such/dir'"),
        (["run", "ToolGym/Lookup-v0", "--agent", "openai:tiny"], "Expected openai:MODEL@BASE_URL"),
        (["leaderboard", "--agents", "random,foo"], "Unknown agent 'foo'"),
        (["leaderboard", "--agents", "random,orcale"], "Did you mean 'oracle'?"),
        (["leaderboard", "--envs", "ToolGym/Lookup-v0,Serch-v0"], "Did you mean 'ToolGym/Search-v0'?"),
        (["leaderboard", "--envs", "ToolGym/Lookup-v0", "--split", "tset"], "Did you mean 'test'?"),
        (["leaderboard", "--episodes", "0"], "--episodes must be ≥ 1, got 0"),
        (["leaderboard", "--episodes", "-3"], "--episodes must be ≥ 1, got -3"),
        (["leaderboard", "--seeds", "0"], "--seeds must be ≥ 1, got 0"),
        (["leaderboard", "--workers", "0"], "--workers must be ≥ 1, got 0"),
        (["leaderboard", "--batch-size", "0"], "--batch-size must be ≥ 1, got 0"),
        (["info", "ToolGym/Serch-v0"], "Did you mean 'ToolGym/Search-v0'?"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(args: list[str], expected: str) -> None:
    assert expected in _one_error_line(runner.invoke(app, args))


def test_error_lines_keep_square_brackets() -> None:
    # Messages are shown verbatim, not as rich markup ("[bfcl]" in an install command must survive).
    line = _one_error_line(runner.invoke(app, ["run", "ToolGym/Lookup-v0", "--agent", "llm:x?bad=1"]))
    assert "['device', 'max_new_tokens'" in line


def test_leaderboard_checks_every_agent_before_any_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    import baselines.leaderboard as lb

    def no_episodes(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an episode ran before the agent specs were checked")

    monkeypatch.setattr(lb, "run_job", no_episodes)
    monkeypatch.setattr(lb, "run_leaderboard", no_episodes)
    line = _one_error_line(runner.invoke(app, ["leaderboard", "--agents", "random,oracle,foo", "--workers", "1"]))
    assert "Unknown agent 'foo'" in line


def test_agent_specs_are_checked_without_importing_torch() -> None:
    code = (
        "import sys; from baselines.leaderboard import check_agent_spec\n"
        "for spec in ('random', 'oracle', 'openai:m@http://127.0.0.1:1/v1'): check_agent_spec(spec)\n"
        "for spec in ('orcale', 'llm:missing'):\n"
        "    try: check_agent_spec(spec)\n"
        "    except ValueError: pass\n"
        "    else: raise SystemExit(spec)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr


def test_list_never_cuts_ids_when_piped() -> None:
    # Through a pipe (`toolgym list | cat`), rich assumes 80 columns.
    done = subprocess.run([sys.executable, "-m", "toolgym.cli", "list"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**{k: v for k, v in os.environ.items() if k != "COLUMNS"},
                                                       "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    for env_id in env_ids():
        assert env_id in done.stdout, f"{env_id} is cut in:\n{done.stdout}"


def test_one_sandbox_notice_for_all_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    import toolgym.sandbox.image as image
    from toolgym.cli import _one_sandbox_notice
    from toolgym.sandbox.base import SandboxUnavailable

    def unavailable(*args: Any, **kwargs: Any) -> str:
        raise SandboxUnavailable("no daemon")

    monkeypatch.setattr(image, "require_docker", unavailable)
    monkeypatch.delenv("TOOLGYM_SANDBOX", raising=False)
    buffer = io.StringIO()
    monkeypatch.setattr("toolgym.cli.console", Console(file=buffer, width=200))
    with _one_sandbox_notice(["ToolGym/Lookup-v0", "ToolGym/Code-v0"]):
        assert os.environ["TOOLGYM_SANDBOX"] == "process"  # inherited by every worker process
    assert "TOOLGYM_SANDBOX" not in os.environ
    assert buffer.getvalue().count("Docker sandbox unavailable") == 1
    with _one_sandbox_notice(["ToolGym/Lookup-v0"]):  # no env that runs code: nothing to say
        assert "TOOLGYM_SANDBOX" not in os.environ


@pytest.mark.parametrize(("command", "flag"), [("run", "--agent"), ("leaderboard", "--agents")])
def test_agent_help_lists_the_registered_specs(monkeypatch: pytest.MonkeyPatch, command: str, flag: str) -> None:
    import toolgym.agents as agents
    agents.load_agent_plugins()
    monkeypatch.setattr(agents, "_kinds", dict(agents._kinds))
    agents.register_agent("fake", lambda spec, env, seed: None, takes_argument=True, help="fake:RECIPE")  # type: ignore[arg-type,return-value]
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "2000", "TERMINAL_WIDTH": "2000"})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if f"{flag} " in line)
    specs = [kind.help for kind in agents.agent_kinds()]
    assert specs[-1] == "fake:RECIPE" and {"random", "oracle"} <= set(specs)
    assert agents.agent_specs_text() == ", ".join(specs[:-1]) + " or fake:RECIPE"
    assert agents.agent_specs_text() in line, line
