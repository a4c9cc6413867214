"""The CLI sub-app, the image helpers and the latency benchmark's quick mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from toolgym.sandbox.cli import app
from toolgym.sandbox.image import apt_mirror

REPO = Path(__file__).resolve().parents[2]


def load_benchmark() -> ModuleType:
    path = REPO / "benchmarks" / "sandbox_latency.py"
    spec = importlib.util.spec_from_file_location("sandbox_latency", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_apt_mirror_is_a_url() -> None:
    assert apt_mirror().startswith(("http://", "https://", "file:"))


def test_build_rejects_an_unknown_method() -> None:
    result = CliRunner().invoke(app, ["build", "--method", "magic"])
    assert result.exit_code == 1
    assert "method must be one of" in result.output


def test_check_reports_both_backends() -> None:
    result = CliRunner().invoke(app, ["check"])
    assert "docker daemon" in result.output
    assert "process backend" in result.output
    assert result.exit_code == 0, result.output  # the process backend always works


def test_bench_backend_measures_a_runner(process_backend: object) -> None:
    bench = load_benchmark()
    stats = bench.bench_backend(process_backend, "print(1+1)", n=5)
    assert stats["n"] == 5 and 0 < stats["p50_ms"] <= stats["p95_ms"]


def test_bench_backend_refuses_a_broken_sandbox(process_backend: object) -> None:
    bench = load_benchmark()
    with pytest.raises(RuntimeError, match="sandbox call failed"):
        bench.bench_backend(process_backend, "raise SystemExit(2)", n=1)


@pytest.mark.docker
def test_benchmark_quick_mode_runs_end_to_end(docker_backend: object) -> None:
    bench = load_benchmark()
    report = bench.run_benchmark(quick=True, threads=2)
    labels = [row["label"] for row in report["rows"]]
    assert any(label.startswith("(a)") for label in labels)
    assert all(row["p50_ms"] for row in report["rows"]), report["rows"]
    markdown = bench.to_markdown(report)
    assert "vs (b)" in markdown and report["command"] in markdown


@pytest.mark.docker
def test_before_after_comparison_runs_end_to_end(docker_backend: object) -> None:
    from tests.sandbox.conftest import IMAGE

    bench = load_benchmark()
    comparison = bench.compare_trees(REPO, REPO, IMAGE, rounds=2, n=3)
    modes = [row["mode"] for row in comparison["rows"]]
    assert modes == [
        "DockerBackend.run",
        "handle.run, back to back",
        "handle.run, 5 ms apart",
        "Code-v0 step, back to back",
        "Code-v0 step, 5 ms apart",
    ]
    for row in comparison["rows"]:
        assert row["n"] == 6 and 0 < row["before_p50_ms"] <= row["before_p95_ms"], row
        assert row["median_round_ratio"] > 0
    assert "after / before" in bench.compare_markdown(comparison)


def _call_cost_rows(out: str) -> dict[tuple[str, str], list[float]]:
    """``{(backend, mode): [numbers...]}`` from call_cost's table (``a + b`` cells summed)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 12 and cells[0] in ("docker", "docker-worker-fork", "process", "process-worker-fork"):
            rows[(cells[0], cells[1])] = [sum(float(x) for x in c.split(" + ")) for c in cells[2:]]
    return rows


def _check_call_cost(out: str, *backends: str) -> None:
    rows = _call_cost_rows(out)
    assert set(rows) == {(b, mode) for b in backends for mode in ("back to back", "spaced 20 ms")}, out
    for (backend, _), row in rows.items():
        calls, wall, total, env_cpu, worker_cpu, _, children_cpu, children_faults, template_cpu, template_faults = row
        assert calls == 40 and wall > 0
        # the parts add up to the total, and every call forks a child that faults on its pages
        assert total == pytest.approx(env_cpu + worker_cpu + children_cpu + template_cpu, abs=0.03)
        assert children_faults > 0
        # every default worker forks through a template; --fork-from worker does not
        assert (template_faults > 0) is (not backend.endswith("-worker-fork")), (backend, row)
    assert "every call printed 2" in out


def test_call_cost_quick_splits_a_process_backend_call(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.perf import call_cost

    call_cost.main(["--quick", "--backends", "process,process-worker-fork"])
    _check_call_cost(capsys.readouterr().out, "process", "process-worker-fork")


@pytest.mark.docker
def test_call_cost_quick_splits_a_docker_call(docker_backend: object, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.perf import call_cost

    call_cost.main(["--quick", "--backends", "docker,docker-worker-fork"])
    _check_call_cost(capsys.readouterr().out, "docker", "docker-worker-fork")


def test_call_cost_rejects_an_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.perf import call_cost

    with pytest.raises(SystemExit):
        call_cost.main(["--backends", "podman"])
    assert "expected a comma-separated subset of docker, docker-worker-fork, process, process-worker-fork" in capsys.readouterr().err
