"""Where collapse after learning appears: the share of seeds that collapse, per setting and arm.

Each setting is one or more results directories of ``python -m benchmarks.collapse run`` (an
entry of the search log); every arm found in them is a row. A run's verdict uses the fixed
definition of :func:`benchmarks.collapse.warning.drop_step` (collapse after learning, scoring
version 3), optionally on its first ``--max-step`` steps only (to compare runs of different
lengths on a common horizon), and beside it whether the run learned at all
(:func:`benchmarks.collapse.warning.learned`): a run that never learned cannot collapse after
learning, so an arm with no collapses and no learning did not hold, it failed differently. Each
row gets its Wilson 95% interval and, against the reference row, Fisher's exact test (two-sided)
on the counts. A run that two directories of one setting both hold is refused, not counted twice
(``run`` collects every finished run of its work dir, so collections made at different times
overlap).

Usage::

    python -m benchmarks.collapse.phase --out DIR \\
        --setting "old start, lr 5e-4=search/lr5e-4,search/fp32_s4_7" \\
        --setting "base start, lr 5e-4=search/base_sft_lr5e-4" --reference "base start, lr 5e-4 / none" \\
        [--max-step 60]

writes ``phase.md``, ``phase.json`` and ``phase.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.collapse.controls import fisher_p
from benchmarks.collapse.report import _num, first_steps, load_distinct
from benchmarks.collapse.warning import Protocol, drop_step, learned
from toolgym.stats import wilson_interval


def parse_setting(text: str) -> tuple[str, list[Path]]:
    """``"LABEL=DIR[,DIR...]"`` -> ``(label, [dirs])``.

    Raises:
        ValueError: naming what is missing.
    """
    label, sep, dirs = text.partition("=")
    paths = [Path(d.strip()) for d in dirs.split(",") if d.strip()]
    if not sep or not label.strip() or not paths:
        raise ValueError(f"--setting must look like 'LABEL=DIR[,DIR...]', got {text!r}.")
    return label.strip(), paths


def bootstrap_ci(values: Sequence[float], *, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean of ``values`` (``nan`` for none; one value
    gives a zero-width interval)."""
    import numpy as np

    vals = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(vals) == 0:
        return math.nan, math.nan
    means = np.random.default_rng(seed).choice(vals, size=(resamples, len(vals)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def verdicts(dirs: Sequence[Path], protocol: Protocol, max_step: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per arm, one ``{"run", "seed", "learned", "drop", "steps", "final_eval", "cpu_s", "cpu_measured"}``
    per run of ``dirs`` (``learned``: whether it learned at all; ``drop``: the drop step of a
    collapse after learning, ``None`` without one), judged on steps ≤ ``max_step``;
    ``final_eval`` is the run's final in-distribution evaluation (at its end or stop); ``cpu_s``
    is the run's process CPU time where the study recorded it (``cpu_measured``), else its wall
    time on one torch thread.

    Raises:
        ValueError: if two of ``dirs`` hold the same run (:func:`benchmarks.collapse.report.check_distinct_runs`).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for directory, (steps_by_run, runs, _) in load_distinct(dirs):
        for summary in runs:
            rows = first_steps(steps_by_run.get(summary["run"], []), max_step)
            success = [float(r["train/success"]) for r in rows]
            drop = drop_step(success, [int(r["step"]) for r in rows], protocol)
            out.setdefault(summary["arm"], []).append(
                {"run": f"{directory.name}/{summary['run']}", "seed": int(float(summary["seed"])),
                 "learned": learned(success, protocol), "drop": drop, "steps": len(rows),
                 "final_eval": _num(summary.get("final_id_success")), **_cost(summary)})
    return out


def _cost(summary: dict[str, Any]) -> dict[str, Any]:
    cpu = _num(summary.get("run_cpu_s"))
    measured = not math.isnan(cpu)
    return {"cpu_s": cpu if measured else _num(summary.get("run_wall_s")), "cpu_measured": measured}


def phase_table(settings: Sequence[tuple[str, list[Path]]], *, reference: str | None = None,
                max_step: int | None = None, protocol: Protocol | None = None) -> list[dict[str, Any]]:
    """One row per (setting, arm): runs, runs that learned, collapses after learning, their share
    with its Wilson 95% CI, Fisher p vs ``reference``.

    Raises:
        ValueError: if ``reference`` names no row.
    """
    p = protocol or Protocol()
    rows: list[dict[str, Any]] = []
    for label, dirs in settings:
        by_arm = verdicts(dirs, p, max_step)
        for arm in sorted(by_arm, key=lambda a: (a != "none", a)):
            runs = by_arm[arm]
            k, n = sum(r["drop"] is not None for r in runs), len(runs)
            low, high = wilson_interval(k, n)
            finals = [r["final_eval"] for r in runs]
            known = [f for f in finals if not math.isnan(f)]
            costs = [r["cpu_s"] for r in runs if not math.isnan(r["cpu_s"])]
            rows.append({"row": f"{label} / {arm}", "setting": label, "arm": arm, "runs": n,
                         "learned": sum(r["learned"] for r in runs), "collapsed": k,
                         "share": k / n if n else math.nan, "ci_low": low, "ci_high": high,
                         "drops": [r["drop"] for r in runs], "run_names": [r["run"] for r in runs],
                         "final_eval": finals, "final_eval_mean": sum(known) / len(known) if known else math.nan,
                         "final_eval_ci": bootstrap_ci(finals), "cpu_s_per_run": sum(costs) / len(costs) if costs else math.nan,
                         "cpu_s_measured": all(r["cpu_measured"] for r in runs)})
    if reference is not None:
        ref = next((r for r in rows if r["row"] == reference), None)
        if ref is None:
            raise ValueError(f"--reference {reference!r} names no row; rows are {[r['row'] for r in rows]}.")
        for r in rows:
            r["fisher_p_vs_reference"] = (
                1.0 if r is ref else fisher_p(r["collapsed"], r["runs"], ref["collapsed"], ref["runs"]))
    return rows


def markdown(rows: Sequence[dict[str, Any]], *, reference: str | None, max_step: int | None,
             protocol: Protocol | None = None) -> str:
    """The table as Markdown (``protocol``: the one the rows were judged with, for the legend)."""
    p = protocol or Protocol()
    horizon = f"first {max_step} steps of each run" if max_step else "whole runs"
    lines = [f"Collapse after learning (scoring version 3), {horizon}; Wilson 95% intervals"
             + (f"; Fisher's exact test (two-sided) against `{reference}`" if reference else "")
             + f". Learned: runs whose {p.smooth}-step mean success rose at least {p.min_gain:g} above their "
               f"first {p.smooth} steps "
               "(a run that never learned cannot collapse after learning)"
             + ". Final eval: each run's last in-distribution evaluation (64 dev episodes, at its end or its "
               "stop), mean over seeds; CPU-s: a run's process CPU time, or (†) its wall time on one torch "
               "thread where the study did not record CPU time (runs before it did; inflated when other jobs "
               "shared the cores).", "",
             "| setting / arm | runs | learned | collapsed | share [95% CI] | drop steps | Fisher p | final eval success "
             "[bootstrap 95% CI] | CPU-s per run |",
             "|---|---:|---:|---:|---|---|---:|---|---:|"]
    for r in rows:
        drops = ", ".join("–" if d is None else str(d) for d in r["drops"])
        fisher = r.get("fisher_p_vs_reference")
        low, high = r["final_eval_ci"]
        final = "–" if math.isnan(r["final_eval_mean"]) else f"{r['final_eval_mean']:.2f} [{low:.2f}, {high:.2f}]"
        cost = "–" if math.isnan(r["cpu_s_per_run"]) else f"{r['cpu_s_per_run']:.0f}" + ("" if r["cpu_s_measured"] else " †")
        lines.append(f"| {r['row']} | {r['runs']} | {r['learned']} | {r['collapsed']} | {r['share']:.2f} [{r['ci_low']:.2f}, "
                     f"{r['ci_high']:.2f}] | {drops} | {'–' if fisher is None else f'{fisher:.3g}'} | {final} | {cost} |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict[str, Any]], path: Path, *, max_step: int | None) -> None:
    """Horizontal bars: share of seeds collapsing per row, with Wilson intervals and ``k/n``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.6))
    ys = list(range(len(rows)))[::-1]
    shares = [r["share"] for r in rows]
    err = [[r["share"] - r["ci_low"] for r in rows], [r["ci_high"] - r["share"] for r in rows]]
    colors = ["#c0392b" if r["share"] >= 0.6 else "#7f8c8d" for r in rows]
    ax.barh(ys, shares, xerr=err, color=colors, capsize=3, alpha=0.85)
    ax.set_yticks(ys, [f"{r['row']}  ({r['collapsed']}/{r['runs']}; learned {r['learned']})" for r in rows], fontsize=8)
    ax.axvline(0.6, color="k", ls=":", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of seeds that collapse after learning (Wilson 95% CI)")
    ax.set_title("Where collapse after learning appears" + (f" (first {max_step} steps)" if max_step else "")
                 + "; dotted: the 60% bar", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the title can be wider than the axes
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.phase", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Where phase.md, phase.json and phase.png go.")
    parser.add_argument("--setting", action="append", required=True, metavar="LABEL=DIR[,DIR...]",
                        help="A setting and its results directories; repeatable.")
    parser.add_argument("--reference", help="The row ('LABEL / ARM') the others are tested against.")
    parser.add_argument("--max-step", type=int, help="Judge each run on its first N steps only.")
    args = parser.parse_args(argv)
    if args.max_step is not None and args.max_step < 1:
        parser.error(f"--max-step must be ≥ 1, got {args.max_step}.")
    try:
        settings = [parse_setting(s) for s in args.setting]
        rows = phase_table(settings, reference=args.reference, max_step=args.max_step)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows, reference=args.reference, max_step=args.max_step)
    (args.out / "phase.md").write_text(md, encoding="utf-8")
    (args.out / "phase.json").write_text(json.dumps({"max_step": args.max_step, "reference": args.reference,
                                                     "rows": rows}, indent=2), encoding="utf-8")
    plot(rows, args.out / "phase.png", max_step=args.max_step)
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
