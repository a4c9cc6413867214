"""The baseline leaderboard: jobs, CSV, markdown and chart."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from toolgym_example_plugin.weather import WeatherEnv
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
from toolgym.registry import env_ids


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
    assert "toolgym leaderboard --test" in markdown and "1.000 [0.342, 1.000]" in markdown
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_leaderboard_writes_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["leaderboard", "--envs", "ToolGym/Lookup-v0", "--agents", "oracle,random",
              "--episodes", "2", "--workers", "1", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"leaderboard.csv", "LEADERBOARD.md", "leaderboard.png"}
    assert "| ToolGym/Lookup-v0 | 1.000 [0.342, 1.000] |" in result.output


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
    assert "**1.000** (1 of 2 envs)" in markdown
    assert f"| {EXAMPLE_ID} | 1.000 [0.207, 1.000] | 1.000 [0.207, 1.000] |" in markdown
    assert "| ToolGym/Lookup-v0 | 1.000 [0.207, 1.000] | – |" in markdown


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
    skipped: list[tuple[str, str]] = []
    assert resolve_envs("all", on_skip=lambda env_id, reason: skipped.append((env_id, reason))) == envs
    assert [e for e, _ in skipped] == [e for e in env_ids() if "BFCL" in e]
    assert all(reason == "bfcl-eval is not installed" for _, reason in skipped)


def test_cli_skips_a_missing_package_with_one_line_per_env(monkeypatch, tmp_path: Path) -> None:
    from toolgym.envs.bfcl import data

    def missing() -> None:
        raise data.BFCLNotInstalledError("bfcl-eval is not installed:\n  pip install 'toolgym[bfcl]' bfcl-eval --no-deps")

    monkeypatch.setattr(data, "require_package", missing)
    monkeypatch.setattr("baselines.leaderboard.run_leaderboard", lambda *a, **k: [])
    monkeypatch.setattr("baselines.leaderboard.write_outputs", lambda rows, out, *a: {"md": _empty_md(out)})
    result = CliRunner().invoke(app, ["leaderboard", "--agents", "random", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("skipping")]
    bfcl = [e for e in env_ids() if "BFCL" in e]
    assert lines == [f"skipping {bfcl[0]}: bfcl-eval is not installed: pip install 'toolgym[bfcl]' bfcl-eval --no-deps"] + [
        f"skipping {e}: same as above" for e in bfcl[1:]]
    assert "Warning" not in result.output and "warnings.warn" not in result.output


def _empty_md(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "LEADERBOARD.md").write_text("")
    return out / "LEADERBOARD.md"


class NoOracleWeatherEnv(WeatherEnv):
    """The example env without a scripted oracle (``oracle_cls`` is optional)."""

    oracle_cls = None


NO_ORACLE_ID = "Example/WeatherNoOracle-v0"


def test_agents_that_do_not_apply_are_skipped_with_one_line(tmp_path: Path) -> None:
    if NO_ORACLE_ID not in gym.registry:
        gym.register(id=NO_ORACLE_ID, entry_point=NoOracleWeatherEnv)
    result = CliRunner().invoke(
        app, ["leaderboard", "--envs", f"{EXAMPLE_ID},{NO_ORACLE_ID}", "--agents", "random,oracle",
              "--episodes", "2", "--workers", "1", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    skips = [line for line in result.output.splitlines() if line.startswith("skipping")]
    assert skips == [f"skipping oracle on {NO_ORACLE_ID}: the env declares no oracle_cls"]
    rows = read_csv(tmp_path / "leaderboard.csv")
    assert sorted({(r["env"], r["agent"]) for r in rows}) == [
        (EXAMPLE_ID, "oracle"), (EXAMPLE_ID, "random"), (NO_ORACLE_ID, "random")]
    assert f"| {NO_ORACLE_ID} | 0.000 [0.000, 0.658] | – |" in result.output


def test_intervals_are_wilson_not_normal_approximation() -> None:
    rows = [dict(env="E", agent="a", success=True, turns=1, format_errors=0, env_s=0.0, tool_s=0.0)] * 10
    rows += [dict(env="E", agent="b", success=i < 7, turns=1, format_errors=0, env_s=0.0, tool_s=0.0) for i in range(10)]
    cells = aggregate(rows)
    assert (round(cells[("E", "a")].ci_low, 3), cells[("E", "a")].ci_high) == (0.722, 1.0)  # 10/10 is not certainty
    assert (round(cells[("E", "b")].ci_low, 3), round(cells[("E", "b")].ci_high, 3)) == (0.397, 0.892)
    assert cells[("E", "b")].rate_text() == "0.700 [0.397, 0.892]"


def test_figure_groups_envs_and_states_split_and_episodes(tmp_path: Path) -> None:
    from baselines.leaderboard import caption, env_kind, plot

    assert [env_kind(e) for e in ("ToolGym/Search-v0", "ToolGym/BFCL-MultiTurn-v0", EXAMPLE_ID)] == [
        "generated", "BFCL", "plugin"]
    rows = run_leaderboard(["ToolGym/Lookup-v0", EXAMPLE_ID], ["random", "oracle"], episodes=3, workers=1)
    text = caption(rows)
    assert "test split" in text and "3 episodes per cell" in text and "Wilson" in text
    drawn: list[str] = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.text

    def spy(self, x, y, s, *args, **kwargs):  # noqa: ANN001, ANN202 - matplotlib's signature
        drawn.append(str(s))
        return original(self, x, y, s, *args, **kwargs)

    matplotlib.axes.Axes.text = spy
    try:
        plot(rows, tmp_path / "f.png", ["random", "oracle"])
    finally:
        matplotlib.axes.Axes.text = original
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Values and intervals are written in every cell, zeros included; groups and the macro row too.
    # Two cells each, plus the macro average row.
    assert drawn.count("0.00") == 3 and drawn.count("1.00") == 3 and drawn.count("[0.00, 0.56]") == 2
    assert {"generated", "plugin", "macro average", "Lookup", "Weather"} <= set(drawn)


def test_replace_cells_swaps_only_the_rerun_cells(tmp_path: Path) -> None:
    from baselines.leaderboard import replace_cells
    from toolgym.core.errors import ConfigError

    base = run_leaderboard([EXAMPLE_ID, "ToolGym/Lookup-v0"], ["random", "oracle"], episodes=2, seeds=1, workers=1)
    write_outputs(base, tmp_path / "board", command="toolgym leaderboard --envs x --agents random,oracle")
    rerun = run_leaderboard(["ToolGym/Lookup-v0"], ["random"], episodes=3, seeds=1, workers=1)
    write_outputs(rerun, tmp_path / "rerun", command="toolgym leaderboard --rerun")
    replaced = replace_cells(tmp_path / "board", tmp_path / "rerun" / "leaderboard.csv")
    assert replaced == [("ToolGym/Lookup-v0", "random")]
    merged = read_csv(tmp_path / "board" / "leaderboard.csv")
    cell = [r for r in merged if (r["env"], r["agent"]) == ("ToolGym/Lookup-v0", "random")]
    assert [r["task_id"] for r in cell] == [r["task_id"] for r in rerun]  # 3 episodes now, not 2
    kept = [r for r in merged if (r["env"], r["agent"]) != ("ToolGym/Lookup-v0", "random")]
    assert [(r["env"], r["agent"], r["task_id"]) for r in kept] == [
        (r["env"], r["agent"], r["task_id"]) for r in base if (r["env"], r["agent"]) != ("ToolGym/Lookup-v0", "random")
    ]
    assert "| ToolGym/Lookup-v0 | random | 3 |" in (tmp_path / "board" / "LEADERBOARD.md").read_text()
    unknown = run_leaderboard(["ToolGym/Calc-v0"], ["random"], episodes=1, seeds=1, workers=1)
    write_outputs(unknown, tmp_path / "unknown", command="toolgym leaderboard --other")
    with pytest.raises(ConfigError, match=r"not in .* \(a rerun only replaces cells; pass add=True"):
        replace_cells(tmp_path / "board", tmp_path / "unknown" / "leaderboard.csv")


def test_replace_cells_with_add_appends_a_new_agents_cells(tmp_path: Path) -> None:
    from baselines.leaderboard import replace_cells

    base = run_leaderboard(["ToolGym/Lookup-v0", "ToolGym/Calc-v0"], ["random"], episodes=2, seeds=1, workers=1)
    write_outputs(base, tmp_path / "board", command="toolgym leaderboard --envs x --agents random")
    new = run_leaderboard(["ToolGym/Lookup-v0"], ["oracle"], episodes=3, seeds=1, workers=1)
    write_outputs(new, tmp_path / "new", command="toolgym leaderboard --agents oracle")
    assert replace_cells(tmp_path / "board", tmp_path / "new" / "leaderboard.csv", add=True) == [
        ("ToolGym/Lookup-v0", "oracle")
    ]
    merged = read_csv(tmp_path / "board" / "leaderboard.csv")
    assert [(r["env"], r["agent"], r["task_id"]) for r in merged[: len(base)]] == [
        (r["env"], r["agent"], r["task_id"]) for r in base
    ]
    assert [r["task_id"] for r in merged[len(base):]] == [r["task_id"] for r in new]
    md = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "--agents random\n" in md  # the recorded command is kept as it was
    header = next(line for line in md.splitlines() if line.startswith("| env |"))
    assert header.index("random") < header.index("oracle")  # the new agent's column comes last
    assert "| ToolGym/Lookup-v0 | oracle | 3 |" in md
