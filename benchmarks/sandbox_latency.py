"""Latency and throughput of running ``print(1+1)`` in a sandbox, four ways, in one run.

(a) ``docker run --rm`` per call (a fresh container each time);
(b) ``subprocess.run([sys.executable, "-c", code])`` per call (a fresh interpreter: what
    peer projects do; the baseline every ratio is taken against);
(c) ``DockerBackend``: warm pool of containers, one fork per call;
(d) ``ProcessBackend``: the same worker on the host (bubblewrap if available).

For (c) and (d) both the one-off ``backend.run`` and an episode handle's ``handle.run`` are
measured. Throughput uses 8 concurrent caller threads.

With ``--before DIR`` (another checkout of the project, e.g. ``git worktree add /tmp/before
main``) it also compares two versions of the sandbox side by side: the warm Docker pool's
``backend.run``, an episode handle's ``handle.run`` (back to back, and 5 ms apart) and a
``ToolGym/Code-v0`` step through it. Both versions run at once, each in its own subprocess
importing its own tree (and mounting its own worker), taking turns in short bursts so that both
see the same load (see :func:`compare_trees`).

Usage::

    python benchmarks/sandbox_latency.py            # full run (~1 min)
    python benchmarks/sandbox_latency.py --quick    # a few iterations (used by the tests)
    python benchmarks/sandbox_latency.py --write    # also write benchmarks/results/sandbox_latency.{md,json}
    python benchmarks/sandbox_latency.py --before /tmp/before --write   # plus before/after

Environment code (e.g. a ``ToolGym/Code-v0`` step) can reuse :func:`bench_backend`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.perf._common import cpu_name  # noqa: E402
from toolgym.sandbox import SandboxUnavailable  # noqa: E402
from toolgym.sandbox.image import DEFAULT_IMAGE, daemon_reachable, image_present  # noqa: E402

CODE = "print(1+1)"
PACE_S = 0.005
"""Pause between calls in the paced measurement (not timed): in an env the agent generates its
next action between two tool calls, and the worker finishes its cleanup meanwhile."""
RESULTS = ROOT / "benchmarks" / "results"


@dataclass
class Row:
    """One measured configuration."""

    label: str
    n: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    mean_ms: float | None = None
    throughput_per_s: float | None = None
    note: str = ""


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def bench_callable(fn: Callable[[], Any], n: int, warmup: int = 3) -> dict[str, float]:
    """Call ``fn`` ``warmup`` + ``n`` times; return p50/p95/mean latency in ms of the last n."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {
        "p50_ms": round(_percentile(times, 0.5), 3),
        "p95_ms": round(_percentile(times, 0.95), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "n": n,
    }


def bench_backend(backend: Any, code: str = CODE, n: int = 200) -> dict[str, float]:
    """Latency of ``backend.run(code)`` (anything with a sandbox ``run`` method, e.g. a
    backend, an episode handle, or an env step wrapped in an object with ``run``).

    Checks the first result so that a broken sandbox cannot produce fast numbers.
    """
    first = backend.run(code)
    if getattr(first, "error", None) is not None or getattr(first, "exit_code", 0) != 0:
        raise RuntimeError(f"sandbox call failed: {first}")
    return bench_callable(lambda: backend.run(code), n)


def bench_paced(runner: Any, code: str, n: int, pause_s: float = PACE_S) -> dict[str, float]:
    """Latency of ``runner.run(code)`` with ``pause_s`` (untimed) before each call."""
    times = []
    for _ in range(n):
        time.sleep(pause_s)
        start = time.perf_counter()
        runner.run(code)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {
        "p50_ms": round(_percentile(times, 0.5), 3),
        "p95_ms": round(_percentile(times, 0.95), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "n": n,
    }


def bench_throughput(fn: Callable[[], Any], threads: int, calls_per_thread: int) -> float:
    """Calls per second with ``threads`` concurrent callers each making ``calls_per_thread``."""
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        barrier.wait()
        for _ in range(calls_per_thread):
            fn()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return round(threads * calls_per_thread / (time.perf_counter() - start), 1)


def machine_info() -> dict[str, Any]:
    """The machine the numbers come from."""
    cpu = cpu_name()
    ok, docker_version = daemon_reachable()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker_server": docker_version if ok else None,
        "loadavg_start": os.getloadavg(),
    }


def run_benchmark(quick: bool = False, threads: int = 8, image: str = DEFAULT_IMAGE) -> dict[str, Any]:
    """Measure (a)-(d); returns ``{"machine", "command", "rows"}``."""
    n_fast = 20 if quick else 500
    n_subprocess = 5 if quick else 100
    n_docker_run = 2 if quick else 15
    per_thread = 5 if quick else 50
    info = machine_info()
    rows: list[Row] = []
    docker_ok = info["docker_server"] is not None and image_present(image)

    # (a) docker run --rm per call
    if docker_ok:
        argv = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", CODE]
        stats = bench_callable(lambda: subprocess.run(argv, capture_output=True, check=True), n_docker_run, 1)
        row = Row("(a) docker run --rm per call", **stats)
        if not quick:
            row.throughput_per_s = bench_throughput(
                lambda: subprocess.run(argv, capture_output=True, check=True), threads, 2
            )
        rows.append(row)
    else:
        rows.append(Row("(a) docker run --rm per call", 0, note="docker unavailable"))

    # (b) a fresh interpreter per call (baseline)
    argv_b = [sys.executable, "-c", CODE]
    stats = bench_callable(lambda: subprocess.run(argv_b, capture_output=True, check=True), n_subprocess)
    row_b = Row("(b) subprocess.run([python, -c]) per call", **stats)
    row_b.throughput_per_s = bench_throughput(
        lambda: subprocess.run(argv_b, capture_output=True, check=True), threads, max(2, per_thread // 5)
    )
    rows.append(row_b)

    # (c) warm DockerBackend, (d) ProcessBackend
    from toolgym.sandbox.process import ProcessBackend

    backends: list[tuple[str, Callable[[], Any]]] = []
    if docker_ok:
        from toolgym.sandbox.docker import DockerBackend

        backends.append(("(c) DockerBackend", lambda: DockerBackend(image=image, pool_size=threads)))
    else:
        rows.append(Row("(c) DockerBackend", 0, note="docker unavailable"))
    backends.append(("(d) ProcessBackend", lambda: ProcessBackend(pool_size=threads, prestart=True)))
    for label, factory in backends:
        try:
            backend = factory()
        except SandboxUnavailable as exc:
            rows.append(Row(label, 0, note=str(exc)))
            continue
        with backend:
            iso = f"isolation={backend.isolation}"
            row = Row(f"{label}.run", **bench_backend(backend, CODE, n_fast), note=iso)
            row.throughput_per_s = bench_throughput(lambda b=backend: b.run(CODE), threads, per_thread)
            rows.append(row)
            with backend.acquire() as handle:
                rows.append(
                    Row(f"{label} episode handle.run", **bench_backend(handle, CODE, n_fast), note=iso)
                )
                paced = bench_paced(handle, CODE, n_fast)
                rows.append(
                    Row(
                        f"{label} episode handle.run, {PACE_S * 1e3:.0f} ms between calls",
                        **paced,
                        note=iso + "; pause = an agent generating its next step",
                    )
                )
    info["loadavg_end"] = os.getloadavg()
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    return {"machine": info, "command": command, "rows": [asdict(r) for r in rows]}


COMPARE_PROBE = r"""
import json, sys, time
import gymnasium as gym
import toolgym  # noqa: F401 - registers the envs
from toolgym.sandbox.docker import DockerBackend

image = sys.argv[1]
code = "print(1+1)"
backend = DockerBackend(image=image, pool_size=2)  # one for run(), one held by the handle
first = backend.run(code)
assert first.stdout == "2\n" and first.error is None, first
env = gym.make("ToolGym/Code-v0", sandbox="docker", sandbox_options={"image": image, "pool_size": 1},
               max_turns=10**6)
env.reset(seed=0)
action = '<tool_call>{"name": "run_python", "arguments": ' + json.dumps({"code": code}) + "}</tool_call>"
handle = None


def step():
    obs, _, terminated, truncated, info = env.step(action)
    if info.get("error") is not None or "2" not in obs:
        raise RuntimeError(f"Code-v0 step failed: {info.get('error')}: {obs[:300]}")
    if terminated or truncated:
        env.reset()


def handle_run():
    result = handle.run(code)
    if result.stdout != "2\n":
        raise RuntimeError(f"handle.run failed: {result}")


def backend_run():
    result = backend.run(code)
    if result.stdout != "2\n":
        raise RuntimeError(f"backend.run failed: {result}")


calls = {"run": backend_run, "handle": handle_run, "step": step}
with backend.acquire() as handle:
    for fn in calls.values():
        for _ in range(5):
            fn()
    print("ready", flush=True)
    for line in sys.stdin:
        name, count, pause = line.split()
        fn, pause = calls[name], float(pause)
        out = []
        for _ in range(int(count)):
            if pause:
                time.sleep(pause)
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1e3)
        print(json.dumps(out), flush=True)
env.close()
backend.close()
"""
COMPARE_MODES = (
    ("DockerBackend.run", "run", 0.0),
    ("handle.run, back to back", "handle", 0.0),
    (f"handle.run, {PACE_S * 1e3:.0f} ms apart", "handle", PACE_S),
    ("Code-v0 step, back to back", "step", 0.0),
    (f"Code-v0 step, {PACE_S * 1e3:.0f} ms apart", "step", PACE_S),
)
"""Rows of the before/after comparison: (label, probe call, pause before each call)."""


def compare_trees(before: Path, after: Path, image: str, rounds: int, n: int) -> dict[str, Any]:
    """Docker-pool latency of two checkouts, measured in lockstep: ``{"rows", ...}``.

    One :data:`COMPARE_PROBE` subprocess per tree (its ``PYTHONPATH`` and working directory are
    that tree, so it imports that version and mounts its worker) keeps a backend, an episode
    handle and a Code-v0 env open. For each of ``rounds`` rounds and each mode, the two probes
    take turns (order alternating) running bursts of ``n`` calls: both versions see the same
    load from moment to moment. Each round gives one after/before ratio of burst medians.
    """
    probes = {}
    try:
        for name, tree in (("before", before), ("after", after)):
            probes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and probe
                [sys.executable, "-c", COMPARE_PROBE, image],
                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        for name, proc in probes.items():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {name} probe did not start (exit {proc.wait()})")
        samples: dict[str, dict[str, list[float]]] = {
            label: {"before": [], "after": []} for label, *_ in COMPARE_MODES
        }
        ratios: dict[str, list[float]] = {label: [] for label, *_ in COMPARE_MODES}
        for index in range(rounds):
            for label, call, pause in COMPARE_MODES:
                order = ["before", "after"] if index % 2 == 0 else ["after", "before"]
                medians = {}
                for name in order:
                    proc = probes[name]
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(f"{call} {n} {pause}\n")
                    proc.stdin.flush()
                    reply = proc.stdout.readline()
                    if not reply:
                        raise RuntimeError(f"the {name} probe died (exit {proc.wait()})")
                    values = json.loads(reply)
                    samples[label][name] += values
                    medians[name] = statistics.median(values)
                ratios[label].append(medians["after"] / medians["before"])
    finally:
        for proc in probes.values():
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    rows = []
    for label, *_ in COMPARE_MODES:
        b, a = sorted(samples[label]["before"]), sorted(samples[label]["after"])
        r = sorted(ratios[label])
        rows.append({
            "mode": label,
            "n": len(a),
            "before_p50_ms": round(_percentile(b, 0.5), 3),
            "after_p50_ms": round(_percentile(a, 0.5), 3),
            "ratio_p50": round(_percentile(a, 0.5) / _percentile(b, 0.5), 3),
            "median_round_ratio": round(statistics.median(r), 3),
            "round_ratio_q1_q3": [round(_percentile(r, 0.25), 3), round(_percentile(r, 0.75), 3)],
            "before_p95_ms": round(_percentile(b, 0.95), 3),
            "after_p95_ms": round(_percentile(a, 0.95), 3),
        })  # fmt: skip
    return {"before": str(before), "after": str(after), "rounds": rounds, "n_per_burst": n, "rows": rows}


def compare_markdown(comparison: dict[str, Any]) -> str:
    """Render :func:`compare_trees` as a markdown section."""
    lines = [
        "",
        "## Before/after: the Docker pool, two versions side by side",
        "",
        f"`before` = {comparison['before']}, `after` = {comparison['after']}. Both versions run at "
        f"once (one subprocess each, importing its own tree and mounting its own worker) and take "
        f"turns: {comparison['rounds']} rounds, each a burst of {comparison['n_per_burst']} calls "
        "per row and version, alternating which goes first, so both see the same load. p50/p95 "
        "over all samples; each round also gives an after/before ratio of the two bursts' "
        "medians (median and quartiles of those ratios: the spread is this machine's noise).",
        "",
        "| call | n | before p50 ms | after p50 ms | after / before (p50) | median round ratio [Q1, Q3] "
        "| before p95 ms | after p95 ms |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in comparison["rows"]:
        q1, q3 = r["round_ratio_q1_q3"]
        lines.append(
            f"| {r['mode']} | {r['n']} | {r['before_p50_ms']} | {r['after_p50_ms']} | "
            f"{r['ratio_p50']:.3f} | {r['median_round_ratio']:.3f} [{q1:.3f}, {q3:.3f}] | "
            f"{r['before_p95_ms']} | {r['after_p95_ms']} |"
        )
    return "\n".join(lines) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    """Render a report as a markdown table with ratios against (b)."""
    rows = report["rows"]
    base = next(r for r in rows if r["label"].startswith("(b)"))
    machine = report["machine"]
    lines = [
        "# Sandbox latency: `print(1+1)`",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}, Docker server {machine['docker_server']}; "
        f"load average {tuple(round(x, 2) for x in machine['loadavg_start'])} at start, "
        f"{tuple(round(x, 2) for x in machine['loadavg_end'])} at end.",
        "",
        *(
            [
                f"**The machine was busy** (load average above its {machine['cores']} cores, from other "
                "jobs): latencies are inflated; compare rows within this run, not across runs.",
                "",
            ]
            if max(machine["loadavg_start"][0], machine["loadavg_end"][0]) > (machine["cores"] or 1)
            else []
        ),
        "| method | n | p50 ms | p95 ms | p50 speed-up vs (b) | throughput, 8 threads (calls/s) | vs (b) | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        speed = f"{base['p50_ms'] / r['p50_ms']:.1f}x" if r["p50_ms"] else ""
        thr = f"{r['throughput_per_s'] / base['throughput_per_s']:.1f}x" if r["throughput_per_s"] else ""
        lines.append(
            f"| {r['label']} | {r['n']} | {r['p50_ms'] or ''} | {r['p95_ms'] or ''} | {speed} "
            f"| {r['throughput_per_s'] or ''} | {thr} | {r['note']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; returns the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (seconds)")
    parser.add_argument(
        "--write", action="store_true", help="write benchmarks/results/sandbox_latency.{md,json}"
    )
    parser.add_argument("--threads", type=int, default=8, help="concurrent callers for throughput")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument(
        "--before", type=Path, default=None, help="another checkout to compare the Docker pool with"
    )
    parser.add_argument("--rounds", type=int, default=40, help="before/after rounds (with --before)")
    parser.add_argument("--compare-n", type=int, default=25, help="calls per burst (with --before)")
    parser.add_argument("--compare-only", action="store_true", help="only the before/after comparison")
    args = parser.parse_args(argv)
    if args.before is not None and not (args.before / "toolgym" / "sandbox").is_dir():
        parser.error(f"--before {args.before}: not a checkout of this project (no toolgym/sandbox)")
    if args.compare_only:
        report = {"machine": machine_info(), "rows": []}
    else:
        report = run_benchmark(quick=args.quick, threads=args.threads, image=args.image)
    if args.before is not None:
        report["comparison"] = compare_trees(args.before, ROOT, args.image, args.rounds, args.compare_n)
        report["machine"]["loadavg_end"] = os.getloadavg()
    report["command"] = "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *(sys.argv[1:] if argv is None else argv)]
    )
    if report["rows"]:
        markdown = to_markdown(report)
    else:
        machine = report["machine"]
        markdown = (
            f"# Sandbox latency: before/after\n\nCommand: `{report['command']}`\n\nMachine: {machine['cpu']}, "
            f"{machine['cores']} cores, Linux {machine['kernel']}, Python {machine['python']}, Docker "
            f"server {machine['docker_server']}; load average "
            f"{tuple(round(x, 2) for x in machine['loadavg_start'])} at start, "
            f"{tuple(round(x, 2) for x in machine['loadavg_end'])} at end.\n"
        )
    if "comparison" in report:
        markdown += compare_markdown(report["comparison"])
    sys.stdout.write(markdown)
    if args.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "sandbox_latency.md").write_text(markdown)
        (RESULTS / "sandbox_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
