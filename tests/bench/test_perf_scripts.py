"""The performance scripts run end to end in their quick modes (ToolGym side only: the peers live
in a separate venv). Only that they run and report sane numbers is checked here; speed targets are
judged from the committed results, never in tests. Every script starts as a module from the
repository root (``python -m benchmarks.perf.<script>``), the spelling its recorded command uses."""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.perf import env_overhead, make_latency, step_breakdown
from benchmarks.perf._common import ROOT, command_line, run_worker, script_module

SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks" / "perf").glob("[!_]*.py"))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The scripts' ``main`` silences logging (``logging.disable``) for clean output; undo that
    so later tests still see log records."""
    yield
    logging.disable(logging.NOTSET)


def test_env_overhead_quick_reports_toolgym_and_the_ceiling(capsys: pytest.CaptureFixture[str]) -> None:
    env_overhead.main(["--quick", "--libs", "toolgym", "--repeats", "2"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| ToolGym"))
    cells = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
    single_steps_per_s, vector_steps_per_s = float(cells[1]), float(cells[3])
    assert single_steps_per_s > 0 and vector_steps_per_s > 0
    floor = float(re.search(r"takes ([\d.]+) CPU µs per step", out).group(1))  # type: ignore[union-attr]
    assert 0 < floor < 1e6 / single_steps_per_s  # the tool alone costs less than a whole step


def test_tool_floor_is_below_a_full_step() -> None:
    assert 0 < env_overhead.tool_floor_us_per_step(repeats=1, episodes=200) < 1_000


def test_step_breakdown_quick_times_every_component_and_both_vector_envs(capsys: pytest.CaptureFixture[str]) -> None:
    step_breakdown.main(["--quick"])
    out = capsys.readouterr().out
    timings = dict(re.findall(r"^(\S.*?|\s+\S.*?)\s{2,}([\d.]+)", out, flags=re.M))
    labels = {label.strip() for label in timings}
    for expected in ("tool-call step", "parse action", "schema validation", "final-answer step (parse + grade)",
                     "vector, per env-step: gym.make_vec default", "vector, per env-step: Gymnasium SyncVectorEnv"):
        assert expected in labels, f"{expected!r} missing from:\n{out}"
    assert all(float(v) > 0 for v in timings.values())
    assert "(ToolSyncVectorEnv)" in out and "(SyncVectorEnv)" in out


def test_env_overhead_checks_toolgym_did_the_shared_work() -> None:
    assert env_overhead.same_work_problem("toolgym", episodes=2) is None


def test_real_tool_overhead_times_the_tool_inside_each_step() -> None:
    real = env_overhead.real_tool_overhead(episodes=2)
    assert set(real) == set(env_overhead.REAL_TOOL_ENVS)
    for row in real.values():
        assert row["tool_steps"] > 0 and row["solved"] == row["episodes"]
        assert 0 < row["tool_us"] < row["step_us"]


def test_make_latency_compares_cached_and_uncached_makes_with_the_same_tools() -> None:
    got = make_latency.time_makes("ToolGym/Lookup-v0", repeats=3)
    assert got["same_tools"] is True
    assert got["cached_p50_ms"] > 0 and got["uncached_p50_ms"] > 0


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_starts_as_a_module_from_the_repository_root(script: str) -> None:
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.perf.{script}", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m benchmarks.perf.{script} ")


def test_command_line_records_the_module_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(ROOT / "benchmarks" / "perf" / "make_latency.py")
    monkeypatch.setattr(sys, "argv", [path, "--repeats", "3", "--write"])
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.util.find_spec("benchmarks.perf.make_latency")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert command_line() == "python -m benchmarks.perf.make_latency --repeats 3 --write"
    main.__spec__ = None  # run by path: the same command
    assert command_line() == "python -m benchmarks.perf.make_latency --repeats 3 --write"


def test_script_module_names_a_script_of_this_repository() -> None:
    assert script_module(env_overhead.__file__) == "benchmarks.perf.env_overhead"
    with pytest.raises(ValueError, match="not a .py file inside"):
        script_module(Path("/tmp/elsewhere.py"))


def test_run_worker_runs_the_script_as_a_module() -> None:
    module = script_module(env_overhead.__file__)
    blocks = run_worker(sys.executable, module, ["--worker", "toolgym", "single", "5", "1"])
    assert blocks[0]["steps"] > 0 and blocks[0]["seconds"] > 0


def test_code_latency_targets_are_judged_on_the_worst_repeat() -> None:
    from benchmarks.perf.code_latency import SNIPPETS, repeat_table

    def times(ms: float) -> dict[str, list[float]]:
        return {name: [ms] for name in SNIPPETS}

    reps = [  # repeat 2: back to back 1.5x interleaved, and GEM only 8x ToolGym back to back
        {"lat": {"toolgym_docker": times(2.0), "gem": times(40.0)}, "burst": {"toolgym_docker": times(2.2), "gem": times(40.0)}},
        {"lat": {"toolgym_docker": times(2.0), "gem": times(40.0)}, "burst": {"toolgym_docker": times(3.0), "gem": times(24.0)}},
    ]
    rows, targets = repeat_table(reps)
    assert len(rows) == 2 + 2  # header, separator, one row per repeat
    assert "1.50 (NOT met)" in targets[0]
    assert "gem ÷ docker interleaved 20.0× (met)" in targets[1]
    assert "gem ÷ docker b2b 8.0× (NOT met)" in targets[1]


def test_code_latency_worker_times_every_snippet_back_to_back() -> None:
    # how a peer in its own venv is measured back to back: one subprocess, every snippet per round
    from benchmarks.perf.code_latency import SNIPPETS

    got = run_worker(sys.executable, "benchmarks.perf.code_latency", ["--worker", "toolgym_process", "2"])
    assert got["bad"] == [], got["bad"]
    assert {name: len(times) for name, times in got["latencies"].items()} == dict.fromkeys(SNIPPETS, 2)
    assert all(t > 0 for times in got["latencies"].values() for t in times)
