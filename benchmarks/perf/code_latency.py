"""Code-execution tool latency side by side: ToolGym Code-v0 vs GEM and SkyRL-Gym's Python tools.

Every system runs the same snippets, interleaved call by call in one run, and the latency of one
tool call is timed from the agent's action text to the observation text:

* **ToolGym Code-v0, Docker warm pool**: ``env.step('<tool_call>{"name": "run_python", ...}')``
  on ``gym.make("ToolGym/Code-v0", sandbox="docker")`` (parse, schema validation, one fork of
  the warm container's worker, observation). Network off, read-only root, non-root, limits.
* **ToolGym Code-v0, process backend**: the same with ``sandbox="process"`` (the same worker on
  the host, under bubblewrap when available).
* **GEM**: ``PythonCodeTool().execute_action("<python>...</python>")`` (GEM's code tool:
  ``subprocess.run(["python", "-c", code])`` in a fresh temp dir, default ``sandbox_type="none"``).
* **SkyRL-Gym**: ``PythonCodeExecutorToolGroup().execute_tool("python", code)`` (its
  ``subprocess.run(["python", "-c", code])``).
* **docker run --rm per call** (a container-per-call design, few calls: it is slow): ``docker run
  --rm --network none --entrypoint python3 IMAGE -c CODE`` with ToolGym's sandbox image (whose own
  entrypoint is the worker, so ``--entrypoint`` is needed for the code to run at all).

Every call's output is checked for what its snippet must print (or, for the snippet that raises,
the exception), for every system, and the script says whether all systems did that same work.
Back to back (no pause between calls), every system that runs here is measured the same way, so
the back-to-back ratios compare back-to-back latencies on both sides.

For the peers, ``python`` on ``PATH`` is the benchmark's own interpreter (not a pyenv shim), their
best case. Ratios are p50 of a peer / p50 of ToolGym. If a peer cannot be imported here, it runs
in the peer venv's interpreter (``--peer-python`` or ``$TOOLGYM_PEER_PYTHON``) as a subprocess per
call when interleaved, timing its own call after a warm-up one, and in one subprocess per repeat
for its back-to-back calls.

    python -m benchmarks.perf.code_latency --quick
    TOOLGYM_PEER_PYTHON=/path/to/peer-venv/bin/python python -m benchmarks.perf.code_latency --write
    /path/to/peer-venv/bin/python -m benchmarks.perf.code_latency --write   # all in one process
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.perf._common import (
    header_lines,
    load,
    machine,
    md_table,
    peer_python,
    percentile,
    run_worker,
    script_module,
    script_parser,
    write_results,
)

SNIPPETS: dict[str, str] = {
    "print": "print(1 + 1)",
    "loop": "total = 0\nfor i in range(20000):\n    total += i * i\nprint(total)",
    "stdlib": "import json, math, collections\n"
              "c = collections.Counter('abracadabra')\nprint(json.dumps(c.most_common(2)), math.pi)",
    "function": "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(18))",
    "error": "raise ValueError('bad input')",
}
EXPECTED: dict[str, str] = {
    "print": "2",
    "loop": str(sum(i * i for i in range(20000))),
    "stdlib": '[["a", 5], ["b", 2]] 3.141592653589793',
    "function": "2584",
    "error": "ValueError: bad input",
}
"""What each snippet's output must contain."""
LABELS = {
    "toolgym_docker": "ToolGym Code-v0 step, Docker warm pool",
    "toolgym_docker_after": "ToolGym Code-v0 step, Docker warm pool, next child forked after the cleanup (before #25)",
    "toolgym_process": "ToolGym Code-v0 step, process backend",
    "gem": "GEM PythonCodeTool (subprocess python -c)",
    "skyrl": "SkyRL-Gym PythonCodeExecutorToolGroup (subprocess python -c)",
    "docker_run": "docker run --rm per call",
}
PEERS = {"gem": "gem", "skyrl": "skyrl_gym"}


def _python_first_on_path() -> None:
    """Make ``python`` resolve to this interpreter's directory first (peers call plain ``python``)."""
    bindir = str(Path(sys.executable).parent)
    if shutil.which("python") != str(Path(bindir) / "python"):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if not (Path(bindir) / "python").exists():
        shim = Path(tempfile.mkdtemp(prefix="toolgym-perf-bin-"))
        (shim / "python").symlink_to(sys.executable)
        os.environ["PATH"] = str(shim) + os.pathsep + os.environ["PATH"]


def toolgym_caller(kind: str, standby: str = "auto") -> tuple[Callable[[str], str], Callable[[], None]]:
    """``call(code) -> observation`` through a Code-v0 env step, and its close function;
    ``standby="after-cleanup"`` runs Docker's worker with the next call's child forked only
    after the cleanup (the design before issue 25), for a side-by-side comparison."""
    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the envs

    sandbox: Any = kind
    if standby != "auto":
        from toolgym.sandbox.docker import DockerBackend

        sandbox = DockerBackend(pool_size=1, prestart=False)
        sandbox._worker_args = [*sandbox._worker_args, "--standby", standby]
    env = gym.make("ToolGym/Code-v0", sandbox=sandbox, max_turns=1000)
    env.reset(seed=0)

    def call(code: str) -> str:
        action = '<tool_call>{"name": "run_python", "arguments": ' + json.dumps({"code": code}) + "}</tool_call>"
        obs, _, terminated, truncated, info = env.step(action)
        # the env's last turn still runs the call and reports the turn limit beside its result
        if info.get("error") not in (None, "too_many_turns"):
            raise RuntimeError(f"Code-v0 step failed: {info['error']}: {obs[:300]}")
        if terminated or truncated:
            env.reset()
        return obs

    def close() -> None:
        env.close()
        if sandbox is not kind:
            sandbox.close()

    return call, close


def gem_caller() -> tuple[Callable[[str], str], Callable[[], None]]:
    from gem.tools.python_code_tool import PythonCodeTool

    tool = PythonCodeTool()

    def call(code: str) -> str:
        _valid, _err, obs, _parsed = tool.execute_action(f"<python>{code}</python>")
        return obs

    return call, lambda: None


def skyrl_caller() -> tuple[Callable[[str], str], Callable[[], None]]:
    from skyrl_gym.tools.python import PythonCodeExecutorToolGroup

    group = PythonCodeExecutorToolGroup()
    return (lambda code: group.execute_tool("python", code)), (lambda: None)


def docker_run_caller() -> tuple[Callable[[str], str], Callable[[], None]]:
    from toolgym.sandbox.image import DEFAULT_IMAGE

    def call(code: str) -> str:
        proc = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", DEFAULT_IMAGE, "-c", code],
            capture_output=True, text=True, timeout=60,
        )
        return proc.stdout + proc.stderr

    return call, lambda: None


CALLERS: dict[str, Callable[[], tuple[Callable[[str], str], Callable[[], None]]]] = {
    "toolgym_docker": lambda: toolgym_caller("docker"),
    "toolgym_docker_after": lambda: toolgym_caller("docker", "after-cleanup"),
    "toolgym_process": lambda: toolgym_caller("process"),
    "gem": gem_caller,
    "skyrl": skyrl_caller,
    "docker_run": docker_run_caller,
}


class OutputCheck:
    """Counts the calls whose output lacks what their snippet must print."""

    def __init__(self) -> None:
        self.calls = 0
        self.bad: list[str] = []

    def __call__(self, system: str, name: str, output: str) -> None:
        self.calls += 1
        if EXPECTED[name] not in output:
            self.bad.append(f"{system}/{name}: {output[:120]!r}")


def time_calls(
    call: Callable[[str], str], rounds: int, only: str | None = None, check: Callable[[str, str], None] | None = None
) -> dict[str, list[float]]:
    """Latency in ms of each snippet (or just ``only``), ``rounds`` times, back to back;
    ``check(snippet name, output)`` sees every output."""
    out: dict[str, list[float]] = {name: [] for name in SNIPPETS if only in (None, name)}
    for _ in range(rounds):
        for name, code in SNIPPETS.items():
            if only not in (None, name):
                continue
            start = time.perf_counter()
            output = call(code)
            out[name].append((time.perf_counter() - start) * 1e3)
            if check is not None:
                check(name, output)
    return out


GAPS_MS = (0.0, 1.0, 2.0, 5.0)


def gap_sweep(call: Callable[[str], str], calls: int) -> dict[str, float]:
    """p50 ms of ``print(1 + 1)`` when each call starts a given time after the previous one
    returned (``GAPS_MS``): how much of the back-to-back latency is the worker's work between
    calls (cleanup, forking the next standby child) rather than the call itself."""
    out = {}
    for gap in GAPS_MS:
        times = []
        for _ in range(calls):
            if gap:
                time.sleep(gap / 1e3)
            start = time.perf_counter()
            call(SNIPPETS["print"])
            times.append((time.perf_counter() - start) * 1e3)
        out[f"{gap:g}"] = percentile(times, 0.5)
    return out


TOOLGYM = ("toolgym_docker", "toolgym_docker_after", "toolgym_process")
B2B_TARGET = 1.2
"""Issue 25: ToolGym's back-to-back p50 within 20% of its interleaved (spaced) p50."""
PEER_TARGET = 10.0
"""Issue 25: ToolGym ≥ 10× faster than each peer, interleaved and back to back, in every repeat."""


def measure_once(
    callers: dict[str, tuple[Callable[[str], str], Callable[[], None]]],
    active: list[str],
    args: argparse.Namespace,
    check: OutputCheck,
    external: str | None,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    """One repeat: every snippet interleaved across systems, then back to back per system."""
    lat: dict[str, dict[str, list[float]]] = {s: {n: [] for n in SNIPPETS} for s in active}
    # Interleaved per call: between two calls of one system the others run (tens of ms), as
    # an agent's generation separates two tool calls of an episode.
    turn = 0
    for r in range(args.rounds):
        for name, code in SNIPPETS.items():
            order = active[turn % len(active):] + active[: turn % len(active)]
            turn += 1
            for s in order:
                if s == "docker_run" and r >= args.docker_run_rounds:
                    continue
                if s in callers:
                    start = time.perf_counter()
                    output = callers[s][0](code)
                    lat[s][name].append((time.perf_counter() - start) * 1e3)
                    check(s, name, output)
                else:
                    lat[s][name] += time_external(external, s, 1, check, name)[name]  # type: ignore[arg-type]
        if (r + 1) % max(1, args.rounds // 5) == 0:
            print(f"round {r + 1}/{args.rounds}; load {load()[0]}", flush=True)
    # Back to back: the same snippets in a tight loop, nothing in between (a worst case for a
    # pool whose worker tidies up after replying), for every system measured in this process,
    # so that back-to-back latencies are compared with back-to-back latencies.
    burst_rounds = max(2, args.rounds // 3)
    burst = {s: time_calls(callers[s][0], burst_rounds, check=lambda name, output, s=s: check(s, name, output))
             for s in (*TOOLGYM, "gem", "skyrl") if s in callers}
    # A peer in its own venv times its calls back to back in one subprocess (after one warm-up
    # call), the same loop as above.
    for s in ("gem", "skyrl"):
        if s in active and s not in callers:
            burst[s] = time_external(external, s, burst_rounds, check)  # type: ignore[arg-type]
    return lat, burst


def time_external(
    python: str, system: str, rounds: int, check: OutputCheck, only: str | None = None
) -> dict[str, list[float]]:
    """:func:`time_calls` for ``system`` in ``python`` (a peer's own venv), in one subprocess
    that makes one warm-up call first; its outputs' verdicts go into ``check``."""
    got = run_worker(python, script_module(__file__), ["--worker", system, str(rounds), *([only] if only else [])])
    check.calls += sum(len(v) for v in got["latencies"].values())
    check.bad += [f"{system}/{b}" for b in got["bad"]]
    return got["latencies"]


def repeat_table(reps: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The per-repeat ratios (markdown table lines) and the targets' verdicts (lines)."""

    def p50(values: dict[str, list[float]]) -> float:
        return percentile([x for v in values.values() for x in v], 0.5)

    tools = [t for t in TOOLGYM if t in reps[0]["burst"]]
    peers = [p for p in ("gem", "skyrl") if p in reps[0]["lat"]]
    header = ["repeat", *(f"{t}: b2b ÷ interleaved" for t in tools)]
    header += [f"{p} ÷ {t} ({mode})" for t in ("toolgym_docker", "toolgym_process") if t in tools
               for p in peers for mode in ("interleaved", "b2b")]
    rows, worst_b2b, worst_peer = [], dict.fromkeys(tools, 0.0), {}
    for i, r in enumerate(reps, 1):
        row: list[Any] = [i]
        for t in tools:
            ratio = p50(r["burst"][t]) / p50(r["lat"][t])
            worst_b2b[t] = max(worst_b2b[t], ratio)
            row.append(f"{ratio:.2f}")
        for t in ("toolgym_docker", "toolgym_process"):
            if t not in tools:
                continue
            for p in peers:
                for mode, key in (("interleaved", "lat"), ("b2b", "burst")):
                    if p not in r[key]:
                        row.append("n/a")
                        continue
                    ratio = p50(r[key][p]) / p50(r[key][t])
                    worst_peer[(p, t, mode)] = min(worst_peer.get((p, t, mode), float("inf")), ratio)
                    row.append(f"{ratio:.1f}×")
        rows.append(row)
    targets = [f"Target, back to back within {B2B_TARGET - 1:.0%} of interleaved (worst repeat): "
               + "; ".join(f"{LABELS[t]}: {worst_b2b[t]:.2f} ({'met' if worst_b2b[t] <= B2B_TARGET else 'NOT met'})"
                           for t in tools)]
    if worst_peer:
        targets.append(f"Target, ≥ {PEER_TARGET:g}× each peer in every repeat (worst repeat): " + "; ".join(
            f"{p} ÷ {t.removeprefix('toolgym_')} {mode} {v:.1f}× ({'met' if v >= PEER_TARGET else 'NOT met'})"
            for (p, t, mode), v in worst_peer.items()))
    return md_table(header, rows).splitlines(), targets


def worker(system: str, rounds: int, only: str | None = None) -> None:
    """Subprocess entry: time ``rounds`` rounds of every snippet (or ``only``), print JSON."""
    _python_first_on_path()
    workdir = tempfile.mkdtemp(prefix="toolgym-perf-")
    os.chdir(workdir)  # GEM makes its temp dirs in the working directory
    call, close = CALLERS[system]()
    call(SNIPPETS["print"])
    bad: list[str] = []
    latencies = time_calls(call, rounds, only, lambda name, output: bad.extend(
        [] if EXPECTED[name] in output else [f"{name}: {output[:120]!r}"]))
    print(json.dumps({"latencies": latencies, "bad": bad}))
    close()
    shutil.rmtree(workdir, ignore_errors=True)


def available(system: str) -> str:
    """Where ``system`` can run: "in-process", "subprocess", or why it cannot."""
    if system in PEERS:
        return "in-process" if importlib.util.find_spec(PEERS[system]) else "subprocess"
    if system in ("toolgym_docker", "toolgym_docker_after", "docker_run"):
        from toolgym.sandbox.image import DEFAULT_IMAGE, daemon_reachable, image_present

        if not daemon_reachable()[0]:
            return "unavailable: Docker daemon not reachable"
        if not image_present(DEFAULT_IMAGE):
            return f"unavailable: image {DEFAULT_IMAGE} missing (run `toolgym sandbox build`)"
    if system.startswith("toolgym"):
        import gymnasium as gym

        import toolgym  # noqa: F401

        if "ToolGym/Code-v0" not in gym.registry:
            return "unavailable: ToolGym/Code-v0 is not registered"
    return "in-process"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and ratios; optionally write results."""
    parser = script_parser(__file__, __doc__)
    parser.add_argument("--quick", action="store_true", help="4 rounds (docker run: 1).")
    parser.add_argument("--rounds", type=int, default=30, help="Rounds of all snippets per system (per repeat).")
    parser.add_argument("--repeats", type=int, default=3, help="Repeats of the whole measurement (ratios must hold in each).")
    parser.add_argument("--docker-run-rounds", type=int, default=3, help="Rounds for docker run --rm.")
    parser.add_argument("--peer-python", help="Interpreter of a venv with gem-llm and skyrl-gym.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/code_latency.*")
    parser.add_argument("--worker", nargs="+", metavar="SYSTEM ROUNDS [SNIPPET]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2] if len(args.worker) > 2 else None)
        return
    if args.quick:
        args.rounds, args.docker_run_rounds, args.repeats = 4, 1, 1
    import logging

    logging.disable(logging.WARNING)
    _python_first_on_path()
    info = machine()
    external = peer_python(args.peer_python)
    where = {s: available(s) for s in CALLERS}
    for s, w in where.items():
        if w == "subprocess" and not external:
            where[s] = "unavailable: not importable and no peer venv"
        elif w == "subprocess":
            where[s] = f"subprocess ({external})"
    print(f"systems: {where}", flush=True)
    active = [s for s in CALLERS if not where[s].startswith("unavailable")]
    workdir = tempfile.mkdtemp(prefix="toolgym-perf-")
    cwd = os.getcwd()
    os.chdir(workdir)  # GEM makes its temp dirs in the working directory
    callers: dict[str, tuple[Callable[[str], str], Callable[[], None]]] = {}
    check = OutputCheck()
    try:
        for s in active:
            if where[s] == "in-process":
                callers[s] = CALLERS[s]()
                callers[s][0](SNIPPETS["print"])  # warm-up: first container use, imports
        reps: list[dict[str, Any]] = []
        for rep in range(args.repeats):
            lat, burst = measure_once(callers, active, args, check, external)
            reps.append({"lat": lat, "burst": burst})
            print(f"repeat {rep + 1}/{args.repeats} done; load {load()[0]}", flush=True)
        gaps = {s: gap_sweep(callers[s][0], max(10, 2 * args.rounds)) for s in TOOLGYM if s in callers}
    finally:
        for _call, close in callers.values():
            close()
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_at_end"] = load()
    lat = {sys_: {n: [x for r in reps for x in r["lat"][sys_][n]] for n in SNIPPETS} for sys_ in active}
    burst = {sys_: {n: [x for r in reps for x in r["burst"][sys_][n]] for n in SNIPPETS} for sys_ in reps[0]["burst"]}
    repeat_rows, targets = repeat_table(reps)
    summary: dict[str, Any] = {}
    for s in active:
        every = [x for values in lat[s].values() for x in values]
        summary[s] = {
            "label": LABELS[s], "where": where[s], "calls": len(every),
            "p50_ms": percentile(every, 0.5), "p95_ms": percentile(every, 0.95),
            "per_snippet_p50_ms": {n: percentile(v, 0.5) for n, v in lat[s].items()},
        }
    base = "toolgym_docker" if "toolgym_docker" in summary else "toolgym_process"
    rows = []
    for s in active:
        row = [LABELS[s], summary[s]["calls"], summary[s]["p50_ms"], summary[s]["p95_ms"]]
        for t in ("toolgym_docker", "toolgym_process"):
            row.append(f"{summary[s]['p50_ms'] / summary[t]['p50_ms']:.1f}×" if t in summary else "n/a")
        rows.append(row)
    burst_rows = []
    for s_name, values in burst.items():
        every = [x for v in values.values() for x in v]
        summary[s_name]["back_to_back"] = {"calls": len(every), "p50_ms": percentile(every, 0.5),
                                           "p95_ms": percentile(every, 0.95)}
    burst_base = [t for t in ("toolgym_docker", "toolgym_process") if t in burst]
    for s_name in burst:
        b2b = summary[s_name]["back_to_back"]
        burst_rows.append([LABELS[s_name] + ", back to back", b2b["calls"], b2b["p50_ms"], b2b["p95_ms"]]
                          + [f"{b2b['p50_ms'] / summary[t]['back_to_back']['p50_ms']:.1f}×" for t in burst_base])
    same_work = not check.bad
    check_line = (
        f"Same work: every call's output ({check.calls:,} calls, every system, interleaved and back to back) "
        "contained what its snippet must print (or the exception it raises)." if same_work else
        f"**Same work NOT confirmed**: {len(check.bad)} of {check.calls:,} outputs lacked the expected text, e.g. "
        + "; ".join(check.bad[:3]))
    snippet_rows = [[LABELS[s]] + [summary[s]["per_snippet_p50_ms"][n] for n in SNIPPETS] for s in active]
    missing = [f"{s}: {where[s]}" for s in CALLERS if where[s].startswith("unavailable")]
    lines = header_lines(
        "Code-execution tool latency: ToolGym Code-v0 vs GEM vs SkyRL-Gym", info,
        [f"{len(SNIPPETS)} snippets × {args.rounds} rounds per system (docker run --rm: "
         f"{args.docker_run_rounds} rounds), interleaved call by call (rotating order), so two calls of one system are "
         "separated by the others' calls, as agent turns separate tool calls; latency = one tool call from action "
         "text to observation text. Ratios: p50 of the row ÷ p50 of ToolGym (higher = ToolGym faster).", "",
         "Where each ran: " + ", ".join(f"{s}: {w}" for s, w in where.items() if s in active), "",
         check_line, ""]
        + ([f"Not measured: {'; '.join(missing)}", ""] if missing else []),
    )
    markdown = "\n".join([
        *lines,
        md_table(["system", "calls", "p50 ms", "p95 ms", "p50 ÷ ToolGym Docker", "p50 ÷ ToolGym process"], rows),
        "", "Back to back (nothing between two calls of a system; every system measured this way). Ratios: "
        "back-to-back p50 of the row ÷ back-to-back p50 of ToolGym:", "",
        md_table(["system", "calls", "p50 ms", "p95 ms"] + [f"p50 ÷ {LABELS[t].split(', ')[-1]} b2b"
                                                             for t in burst_base], burst_rows),
        "", f"Each of the {args.repeats} repeats (every system measured interleaved, then back to back, in each): "
        "back-to-back p50 ÷ interleaved p50 of ToolGym, and the peers' p50 ÷ ToolGym's p50, interleaved and back "
        "to back:", "",
        *repeat_rows, "", *targets,
        "", "ToolGym `print(1 + 1)` p50 (ms) by the time between the previous call's reply and the next call. "
        "Between two calls the worker kills every process but itself and removes the call's directory; one-off "
        "calls (Code-v0's) are also wiped. Where the worker forks the next call's child while the call runs, a "
        "call arriving at once need not wait for that fork (docs/sandbox.md, \"How a call runs\"):", "",
        md_table(["system", *(f"gap {g:g} ms" for g in GAPS_MS)],
                 [[LABELS[s], *gaps[s].values()] for s in gaps]),
        "", "p50 per snippet (ms):", "",
        md_table(["system", *SNIPPETS], snippet_rows),
    ])
    print()
    print(markdown)
    if args.write:
        data = {"machine": info, "args": vars(args), "baseline": base, "results": summary, "gap_sweep_p50_ms": gaps,
                "repeats": [{k: {sys_: percentile([x for v in r[k][sys_].values() for x in v], 0.5) for sys_ in r[k]}
                             for k in ("lat", "burst")} for r in reps],
                "snippets": SNIPPETS, "expected": EXPECTED, "same_work": same_work, "bad_outputs": check.bad,
                "latencies_ms": lat}
        paths = write_results("code_latency", data, markdown)
        print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
