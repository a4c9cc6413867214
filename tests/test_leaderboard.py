"""The baseline leaderboard: jobs, CSV, markdown and chart."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from baselines.leaderboard import CSV_COLUMNS, aggregate, read_csv, resolve_envs, run_leaderboard, write_outputs
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
