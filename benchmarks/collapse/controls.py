"""Arm × learning-rate table of a collapse study with its controls (issue 18's acceptance grid).

    python -m benchmarks.collapse.controls --out runs/grid/out [--reference none]

Per (arm, lr): seeds finished, training success at step 1 ("first"), the best step, the last
step and the final in-distribution evaluation (64 episodes), each as the mean over seeds with
its 95% t-interval; the lowest training success of the run; two collapse counts with a two-sided
Fisher exact test against the reference arm at the same lr:

* *step-2 crash*: training success at step 2 below half of step 1 (the first study's one-step
  collapse);
* *collapsed*: the trainer's collapse detector fired (success below ``collapse_frac`` × running
  best for ``collapse_patience`` consecutive steps, as configured for the study).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.collapse.report import _num, _opt_int, fmt_ci, load

HEADER = (
    "| arm | lr | seeds | first (step 1) | best step | lowest step | last step | final eval (in-dist.) | "
    "step-2 crash | Fisher p vs ref | collapsed (detector) | Fisher p vs ref |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def fisher_p(a: int, n: int, b: int, m: int) -> float:
    """Two-sided Fisher exact p of ``a`` of ``n`` against ``b`` of ``m``."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[a, n - a], [b, m - b]])[1])


def records(out_dir: Path) -> dict[tuple[str, float], list[dict[str, Any]]]:
    """Per-run quantities grouped by ``(arm, lr)``."""
    steps, runs, _ = load(out_dir)
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for summary in runs:
        rows = steps.get(summary["run"], [])
        succ = [_num(r["train/success"]) for r in rows]
        if len(succ) < 2:
            continue
        groups[(summary["arm"], _num(summary["lr"]))].append({
            "seed": int(_num(summary["seed"])),
            "first": succ[0],
            "best": max(succ),
            "lowest": min(succ),
            "last": succ[-1],
            "eval": _num(summary.get("final_id_success")),
            "crash": succ[1] < 0.5 * succ[0],
            "collapsed": _opt_int(summary.get("collapse_step")) is not None,
        })
    return dict(groups)


def table(out_dir: Path, reference: str = "none") -> str:
    """The markdown table (see the module docstring)."""
    groups = records(out_dir)
    lines = [HEADER]
    for (arm, lr), recs in sorted(groups.items(), key=lambda kv: (-kv[0][1], kv[0][0] != reference, kv[0][0])):
        ref = groups.get((reference, lr), [])
        crash = sum(r["crash"] for r in recs)
        coll = sum(r["collapsed"] for r in recs)
        if arm != reference and ref:
            p_crash = f"{fisher_p(crash, len(recs), sum(r['crash'] for r in ref), len(ref)):.2f}"
            p_coll = f"{fisher_p(coll, len(recs), sum(r['collapsed'] for r in ref), len(ref)):.2f}"
        else:
            p_crash = p_coll = "–"
        lines.append(
            f"| {arm} | {lr:g} | {len(recs)} | {fmt_ci([r['first'] for r in recs])} | {fmt_ci([r['best'] for r in recs])} | "
            f"{fmt_ci([r['lowest'] for r in recs])} | {fmt_ci([r['last'] for r in recs])} | "
            f"{fmt_ci([r['eval'] for r in recs])} | {crash}/{len(recs)} | {p_crash} | {coll}/{len(recs)} | {p_coll} |"
        )
    return "\n".join(lines)


def per_step(out_dir: Path, key: str = "train/success") -> str:
    """Mean ``key`` per step for each (arm, lr), one markdown row each."""
    steps, runs, _ = load(out_dir)
    by: dict[tuple[str, float], list[list[float]]] = defaultdict(list)
    for summary in runs:
        rows = steps.get(summary["run"], [])
        by[(summary["arm"], _num(summary["lr"]))].append([_num(r[key]) for r in rows])
    width = max((len(s) for series in by.values() for s in series), default=0)
    lines = ["| arm | lr | " + " | ".join(str(i) for i in range(1, width + 1)) + " |",
             "|---|---|" + "---|" * width]
    for (arm, lr), series in sorted(by.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        cells = []
        for i in range(width):
            vals = [s[i] for s in series if len(s) > i]
            cells.append(f"{statistics.fmean(vals):.2f}" if vals else "–")
        lines.append(f"| {arm} | {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the tables; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.controls", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Results directory with steps.csv / runs.csv.")
    parser.add_argument("--reference", default="none", help="Arm the Fisher tests compare with (default none).")
    args = parser.parse_args(argv)
    try:
        print(table(args.out, args.reference))
        print()
        print("Mean training success per step:\n")
        print(per_step(args.out))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
