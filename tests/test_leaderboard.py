"""The baseline leaderboard: jobs, CSV, markdown and chart."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from baselines.leaderboard import (
    CSV_COLUMNS,
    aggregate,
    read_csv,
    resolve_envs,
    run_leaderboard,
    write_outputs,
)
from tests.conftest import EXAMPLE_ID
from toolgym.cli import app


def test_rows_are_tidy_and_agents_see_the_same_tasks() -> None:
    rows = run_leaderboard([EXAMPLE_ID], ["random", "oracle"], episodes=3, seeds=2, workers=1)
    assert len(rows) == 2 * 2 * 3
    assert set(CSV_COLUMNS) <= set(rows[0])
    by_agent = {a: [r["task_id"] for r in rows if r["agent"] == a] for a in ("random", "oracle")}
    assert by_agent["random"] == by_agent["oracle"]
    cells = aggregate(rows)
    assert cells[(EXAMPLE_ID, "oracle")].success == 1.0
    oracle_rows = [r for r in rows if r["agent"] == "oracle"]
    assert all(r["env_s"] > r["tool_s"] > 0 and r["output_chars"] > 0 for r in oracle_rows)
    assert cells[(EXAMPLE_ID, "oracle")].tool_ms_per_step > 0
    assert cells[(EXAMPLE_ID, "random")].success < 1.0


def test_parallel_workers_give_the_same_rows_as_serial() -> None:
    def strip(rows: list[dict]) -> list[tuple]:
        return [(r["agent"], r["seed"], r["task_id"], r["success"], r["turns"]) for r in rows]

    serial = run_leaderboard(["ToolGym/Lookup-v0"], ["random", "oracle"], episodes=4, seeds=1, workers=1)
    parallel = run_leaderboard(["ToolGym/Lookup-v0"], ["random", "oracle"], episodes=4, seeds=1, workers=2)
    assert strip(serial) == strip(parallel)


def test_outputs_round_trip(tmp_path: Path) -> None:
    rows = run_leaderboard([EXAMPLE_ID], ["oracle"], episodes=2, seeds=1, workers=1)
    paths = write_outputs(rows, tmp_path, command="toolgym leaderboard --test")
    back = read_csv(paths["csv"])
    assert [r["task_id"] for r in back] == [r["task_id"] for r in rows] and back[0]["success"] is True
    markdown = paths["md"].read_text()
    assert "toolgym leaderboard --test" in markdown and "1.000 ± 0.000" in markdown
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_leaderboard_writes_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["leaderboard", "--envs", "ToolGym/Lookup-v0", "--agents", "oracle,random",
              "--episodes", "2", "--workers", "1", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"leaderboard.csv", "LEADERBOARD.md", "leaderboard.png"}
    assert "| ToolGym/Lookup-v0 | 1.000 ± 0.000 |" in result.output


def test_all_means_every_registered_env() -> None:
    assert "ToolGym/Search-v0" in resolve_envs("all")


def test_sb3_models_run_only_on_the_env_they_were_trained_on() -> None:
    from baselines.leaderboard import agent_applies

    model = "sb3:benchmarks/results/sb3/calc_ppo.zip"
    assert agent_applies(model, "ToolGym/Calc-v0")
    assert not agent_applies(model, "ToolGym/Search-v0")
    assert agent_applies("random", "ToolGym/Search-v0")


def test_macro_average_says_when_an_agent_skipped_envs() -> None:
    from baselines.leaderboard import to_markdown

    rows = run_leaderboard(["ToolGym/Lookup-v0", EXAMPLE_ID], ["oracle"], episodes=1, workers=1)
    rows += [dict(r, agent="partial") for r in rows if r["env"] == EXAMPLE_ID]
    markdown = to_markdown(rows, "cmd")
    assert "**1.000** (1 of 2 envs)" in markdown and f"| {EXAMPLE_ID} | 1.000 ± 0.000 | 1.000 ± 0.000 |" in markdown
    assert "| ToolGym/Lookup-v0 | 1.000 ± 0.000 | – |" in markdown


def test_agent_columns_have_short_names() -> None:
    from baselines.leaderboard import display_name

    assert display_name("sb3:benchmarks/results/sb3/calc_ppo.zip") == "sb3:calc_ppo"
    assert display_name("llm:runs/lookup_sft/model?temperature=1") == "llm:model?temperature=1"
    assert display_name("openai:tiny@http://127.0.0.1:8000/v1") == "openai:tiny"
    assert display_name("oracle") == "oracle"


def test_columns_follow_the_agent_order_given() -> None:
    from baselines.leaderboard import to_markdown

    rows = run_leaderboard([EXAMPLE_ID], ["random", "oracle"], episodes=1, workers=1)
    assert "| env | oracle | random |" in to_markdown(rows, "cmd", agents=["oracle", "random"])


def test_all_skips_envs_whose_optional_package_is_missing(monkeypatch) -> None:
    import pytest

    from toolgym.envs.bfcl import data

    def missing() -> None:
        raise data.BFCLNotInstalledError("bfcl-eval is not installed")

    monkeypatch.setattr(data, "require_package", missing)
    with pytest.warns(UserWarning, match="Skipping ToolGym/BFCL-MultiTurn-v0: bfcl-eval is not installed"):
        envs = resolve_envs("all")
    assert "ToolGym/Search-v0" in envs and not any("BFCL" in e for e in envs)
