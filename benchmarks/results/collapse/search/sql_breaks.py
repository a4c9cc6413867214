"""Entries 46-55: did GRPO learn on SQL-v0 before it broke, and when did it break?

Reads a result directory's ``steps.csv`` and ``runs.csv`` (``python -m benchmarks.collapse run``'s
merged output) and prints one row per run: the first and best 5-step means of training success
(learned: the study's rule, :func:`benchmarks.collapse.warning.learned`, a 5-step mean at least
0.15 above the first), the break (the first step whose training success is below half of the first
5-step mean), the lr and the largest approx-KL up to it, the entropy at step 1 and at the break,
the share of zero-advantage groups in the first 20 steps (or all steps, if fewer) and before the
break, the detector's collapse step, the study's ``drop_step`` (collapse after learning), entry
49's lasting fall (the first step from which every step is below half of the first 5-step mean,
with at least 3 steps after it), the probe's illegal control-token mass at steps 1, 10, 20, ... and
the last, entry 55's learned rule read on dev success (with ``--dev-above X``: see :func:`dev_rule`), the
final evaluation and process CPU-seconds per step (of the last process over all the
run's steps: too low for a run resumed from a checkpoint, whose earlier steps another process ran). Runs
stopped before they finished are read from ``partial/<run>.csv`` (copies of their
``metrics.csv``). Run from the repository root:

    python benchmarks/results/collapse/search/sql_breaks.py benchmarks/results/collapse/search/sql_none_lr5e-4 \
        benchmarks/results/collapse/search/sql_permuted_lr5e-4 [--dev-above 0.570]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository root, for `benchmarks`
from benchmarks.collapse.warning import Protocol, drop_step, learned  # noqa: E402


def _f(row: dict[str, str], key: str) -> float | None:
    value = row.get(key, "")
    return float(value) if value not in ("", None) else None


def dev_rule(evals: list[tuple[int, float]], above: float) -> tuple[int | None, int | None]:
    """Entry 55's learned rule on dev success: ``(learned, fell)``, the steps of the second of the
    first two consecutive evaluations above ``above`` (learned on dev), and of the second of the
    first two consecutive evaluations after that below half of the best evaluation so far (a fall
    after learning on dev); ``None`` where it did not happen."""
    pairs = list(itertools.pairwise(evals))
    learned_at = next((b[0] for a, b in pairs if a[1] > above and b[1] > above), None)
    if learned_at is None:
        return None, None
    bests = list(itertools.accumulate((v for _, v in evals), max))[1:]  # the best up to each pair's second
    fell = next((b[0] for (a, b), best in zip(pairs, bests, strict=True)
                 if a[0] > learned_at and a[1] < best / 2 and b[1] < best / 2), None)
    return learned_at, fell


def _summary(name: str, rows: list[dict[str, str]], run: dict[str, str] | None,
             dev_above: float | None = None) -> dict[str, object]:
    rows = sorted((r for r in rows if r.get("train/success")), key=lambda r: int(r["step"]))
    success = [float(r["train/success"]) for r in rows]
    means = [sum(success[i:i + 5]) / 5 for i in range(len(success) - 4)]
    first = means[0]
    broke = next((i for i, s in enumerate(success) if s < first / 2), None)
    upto = rows[: (broke + 1) if broke is not None else len(rows)]
    zero = [float(r["train/zero_adv_group_frac"]) for r in rows[:20]]
    zero_before = [float(r["train/zero_adv_group_frac"]) for r in upto[:-1]] if broke else zero
    steps = [int(r["step"]) for r in rows]
    lasting = next((i for i in range(len(success) - 3) if all(s < first / 2 for s in success[i:])), None)
    marked = [int(float(r["diag/collapse_step"])) for r in rows if (_f(r, "diag/collapse_step") or -1) > 0]
    evals = [(int(r["step"]), float(r["eval/success"])) for r in rows if r.get("eval/success")]
    dev = dev_rule(evals, dev_above) if dev_above is not None else None
    return {
        "run": name, "partial": run is None, "steps": len(rows),
        "first5": round(first, 3), "best5": round(max(means), 3), "learned": learned(success, Protocol()),
        "break_step": int(rows[broke]["step"]) if broke is not None else None,
        "lr_at_break": _f(rows[broke], "train/lr") if broke is not None else None,
        "max_approx_kl_to_break": round(max(_f(r, "train/approx_kl") or 0.0 for r in upto), 4),
        "entropy_step1": round(float(rows[0]["train/entropy"]), 4),
        "entropy_at_break": round(float(rows[broke]["train/entropy"]), 4) if broke is not None else None,
        "zero_adv_share_first20": round(sum(zero) / len(zero), 3),
        "zero_adv_share_before_break": round(sum(zero_before) / len(zero_before), 3),
        "detector_collapse_step": marked[0] if marked else None,
        "drop_step": drop_step(success, steps, Protocol()),
        "lasting_fall_step": steps[lasting] if lasting is not None else None,
        "probe_illegal": [
            (int(r["step"]), float(f"{float(r['diag/probe/illegal_total']):.2g}"))
            for i, r in enumerate(rows) if (i == 0 or int(r["step"]) % 10 == 0 or i == len(rows) - 1)
            and r.get("diag/probe/illegal_total")
        ],
        "eval": evals,
        **({"dev_learned_step": dev[0], "dev_fall_step": dev[1]} if dev is not None else {}),
        "final_id_success": _f(run, "final_id_success") if run else None,
        "cpu_s_per_step": round(float(run["run_cpu_s"]) / len(rows), 1) if run else None,
    }


def run_rows(result_dir: Path) -> list[tuple[str, list[dict[str, str]], dict[str, str] | None]]:
    """``(run, per-step rows, runs.csv row or None)`` for every run of ``result_dir``: the finished
    runs of its ``steps.csv``/``runs.csv`` (none when the directory has only partial runs), then the
    partial runs' ``metrics.csv`` copies in ``partial/`` (with ``None``)."""
    finished = (result_dir / "runs.csv").exists()
    steps = list(csv.DictReader((result_dir / "steps.csv").open())) if finished else []
    runs = sorted(csv.DictReader((result_dir / "runs.csv").open()), key=lambda r: int(r["seed"])) if finished else []
    out: list[tuple[str, list[dict[str, str]], dict[str, str] | None]] = [
        (r["run"], [s for s in steps if s["run"] == r["run"]], r) for r in runs
    ]
    for path in sorted((result_dir / "partial").glob("*.csv")):
        out.append((path.stem, list(csv.DictReader(path.open())), None))
    return out


def breaks(result_dir: Path, dev_above: float | None = None) -> list[dict[str, object]]:
    """One summary per run of ``result_dir`` (see the module docstring and :func:`run_rows`)."""
    return [_summary(name, rows, run, dev_above) for name, rows, run in run_rows(result_dir)]


def main(argv: list[str]) -> int:
    """Print and save (``breaks.json`` beside each input) the summaries of the given result directories."""
    parser = argparse.ArgumentParser(prog="sql_breaks.py", description=__doc__.strip().splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="RESULT_DIR")
    parser.add_argument("--dev-above", type=float, default=None, metavar="X",
                        help="read entry 55's learned rule on dev success with this threshold (e.g. the start's upper bound)")
    args = parser.parse_args(argv)
    if args.dev_above is not None and not 0 <= args.dev_above <= 1:
        parser.error(f"--dev-above must be a success rate in [0, 1], got {args.dev_above}")
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        parser.error(f"no result directory {', '.join(missing)}")
    for d in args.dirs:
        rows = breaks(d, args.dev_above)
        (d / "breaks.json").write_text(json.dumps(rows, indent=1) + "\n")
        print(f"== {d}")
        for r in rows:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
