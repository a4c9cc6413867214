"""The sandbox worker's standby designs side by side: back to back, spaced and interleaved.

Issue 25, item 2: a code call sent right after the previous reply used to wait for the worker's
cleanup and for the fork of the next call's child. The worker now keeps that child through the
cleanup where it can prove nothing else is left, and forks it during back-to-back calls
(``--standby auto``, the default; ``docs/sandbox.md``, "How a call runs"). This script runs two
``Code-v0`` envs on two one-container Docker pools, one per design (``auto`` and the earlier
``after-cleanup``), and times ``env.step`` of ``print(1 + 1)`` in each mode, alternating the two
designs call by call (each repeat measures every mode for both):

* **back to back**: bursts of 5 calls with nothing in between;
* **spaced**: one call after a sleep of 2, 5 or 20 ms;
* **interleaved**: one call after another program's call (a ``python -c`` subprocess, as a
  peer library's code tool makes), the way ``code_latency`` interleaves systems.

Every output is checked to contain ``2`` (same work). Ratios: p50 of ``after-cleanup`` ÷ p50 of
``auto`` per mode and repeat (above 1: the new design is faster), and back-to-back p50 ÷ the
20 ms-spaced p50 of each design.

    python -m benchmarks.perf.standby_ab [--quick] [--write]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.perf._common import header_lines, load, machine, md_table, script_parser, write_results

DESIGNS = ("auto", "after-cleanup")
MODES = ("back to back", "spaced 2 ms", "spaced 5 ms", "spaced 20 ms", "interleaved")
CODE = "print(1 + 1)"


def measure(calls: dict[str, Callable[[str], str]], rounds: int, bad: list[str]) -> dict[str, dict[str, list[float]]]:
    """One repeat: ``{mode: {design: [ms, ...]}}``, the designs alternating call by call."""
    out: dict[str, dict[str, list[float]]] = {mode: {d: [] for d in calls} for mode in MODES}

    def timed(design: str, mode: str) -> None:
        start = time.perf_counter()
        output = calls[design](CODE)
        out[mode][design].append((time.perf_counter() - start) * 1e3)
        if "2" not in output:
            bad.append(f"{design}/{mode}: {output[:80]!r}")

    for r in range(rounds):
        order = list(calls) if r % 2 == 0 else list(calls)[::-1]
        for design in order:
            for _ in range(5):
                timed(design, "back to back")
        for gap_ms in (2, 5, 20):
            for design in order:
                time.sleep(gap_ms / 1e3)
                timed(design, f"spaced {gap_ms} ms")
        for design in order:
            subprocess.run([sys.executable, "-c", "print(2)"], capture_output=True, check=True)
            timed(design, "interleaved")
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI: measure, print the tables, optionally write ``benchmarks/results/perf/standby_ab.*``."""
    parser = script_parser(__file__, __doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="Rounds per repeat (default 100).")
    parser.add_argument("--repeats", type=int, default=3, help="Repeats (default 3).")
    parser.add_argument("--quick", action="store_true", help="5 rounds, 1 repeat.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/standby_ab.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.repeats = 5, 1
    from benchmarks.perf.code_latency import toolgym_caller
    from toolgym.sandbox.image import daemon_reachable

    if not daemon_reachable()[0]:
        parser.exit(2, "error: the Docker daemon is not reachable; this benchmark needs the Docker sandbox.\n")
    info = machine()
    callers = {d: toolgym_caller("docker", d) for d in DESIGNS}
    calls = {d: c[0] for d, c in callers.items()}
    bad: list[str] = []
    try:
        for call in calls.values():
            for _ in range(10):
                call(CODE)  # warm-up
        reps = []
        for rep in range(args.repeats):
            reps.append(measure(calls, args.rounds, bad))
            print(f"repeat {rep + 1}/{args.repeats}; load {load()[0]}", flush=True)
    finally:
        for _call, close in callers.values():
            close()
    info["load_at_end"] = load()
    p50 = [{m: {d: statistics.median(v) for d, v in rep[m].items()} for m in MODES} for rep in reps]
    rows = []
    for i, rep in enumerate(p50, 1):
        for m in MODES:
            rows.append([i, m, rep[m]["auto"], rep[m]["after-cleanup"], f"{rep[m]['after-cleanup'] / rep[m]['auto']:.2f}"])
    b2b_rows = [[i, *(f"{rep['back to back'][d] / rep['spaced 20 ms'][d]:.2f}" for d in DESIGNS)]
                for i, rep in enumerate(p50, 1)]
    n = {m: len(reps[0][m]["auto"]) for m in MODES}
    check = (f"Same work: every output ({sum(len(v) for r in reps for m in r.values() for v in m.values()):,} calls) "
             "contained 2." if not bad else f"**Same work NOT confirmed**: {len(bad)} outputs lacked 2, e.g. {bad[:2]}")
    lines = header_lines(
        "Sandbox worker standby designs: back to back, spaced, interleaved", info,
        [f"Two Code-v0 envs on one-container Docker pools, worker `--standby auto` (default) and `--standby "
         f"after-cleanup` (the design before issue 25), `print(1 + 1)`, the designs alternating; {args.repeats} "
         f"repeats of {args.rounds} rounds; calls per design, mode and repeat: "
         + ", ".join(f"{m} {n[m]}" for m in MODES) + ".", "", check, ""],
    )
    markdown = "\n".join([
        *lines,
        "p50 ms per repeat and mode (ratio above 1: `auto` faster):", "",
        md_table(["repeat", "mode", "auto p50 ms", "after-cleanup p50 ms", "after-cleanup ÷ auto"], rows),
        "", "Back-to-back p50 ÷ spaced-20-ms p50 per design (issue 25's target for the default: ≤ 1.2):", "",
        md_table(["repeat", *DESIGNS], b2b_rows),
    ])
    print()
    print(markdown)
    if args.write:
        data: dict[str, Any] = {"machine": info, "args": vars(args), "p50_ms": p50, "same_work": not bad,
                                "bad_outputs": bad, "latencies_ms": reps}
        paths = write_results("standby_ab", data, markdown)
        print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
