"""The ``toolgym`` command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.conftest import EXAMPLE_ID
from toolgym.cli import app
from toolgym.core.formats import CALL_CLOSE, CALL_OPEN

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
    assert "1.000 ± 0.000" in oracle.output and "3.00" in oracle.output
    rnd = runner.invoke(app, ["run", EXAMPLE_ID, "--agent", "random", "--episodes", "20"])
    assert rnd.exit_code == 0, rnd.output
    assert "0.000 ± 0.000" in rnd.output and "error codes" in rnd.output
    bad = runner.invoke(app, ["run", EXAMPLE_ID, "--agent", "genius"])
    assert bad.exit_code != 0


def test_play_takes_actions_from_stdin() -> None:
    actions = CALL_OPEN + '{"name": "get_weather", "arguments": {"city": "Oslo"}}' + CALL_CLOSE + '\nnonsense\n:q\n'
    result = runner.invoke(app, ["play", EXAMPLE_ID, "--task-id", "weather-oslo-lima"], input=actions)
    assert result.exit_code == 0, result.output
    assert "Oslo: 3 °C" in result.output and "error code: no_action" in result.output
