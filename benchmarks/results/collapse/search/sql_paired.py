"""Entries 50-55: arms on SQL-v0 compared step by step on the same tasks.

Runs with the same seed draw the same tasks at every step, so the difference of two arms'
training success at a step is the difference the arms make with the tasks' difficulty taken out.
Each argument after ``OUT.png`` is ``ARM=DIR``: the runs of ``ARM`` in the result directory
``DIR`` (finished or ``partial/``); the first is the baseline. Prints, per seed, each other arm's
mean difference from the baseline over blocks of 10 steps (``--block N`` as the first argument
for blocks of N, as entry 54 reads), and every arm's dev success at each
evaluation (and the start's, from the first ``DIR``'s ``start_eval.json``); plots, one column per
seed, the differences (bars for one other arm, 5-step means for several), dev success, format
errors (5-step means) and the probe's illegal control-token mass, to ``OUT.png``. Run from the
repository root, e.g. entry 50's figure:

    S=benchmarks/results/collapse/search
    python $S/sql_paired.py $S/sql_half_lr1e-4_paired.png permuted_advantages=$S/sql_half_permuted_lr1e-4 none=$S/sql_half_lr1e-4
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sql_breaks, beside this file
from sql_breaks import run_rows  # noqa: E402

COLORS = ("tab:orange", "black", "tab:blue", "tab:green", "tab:purple", "tab:red")


def _by_seed(result_dir: Path, arm: str) -> dict[int, list[dict[str, str]]]:
    """The rows (sorted by step) of each of ``arm``'s runs in ``result_dir`` (the study's merge
    lists every finished run of its work dir, other arms' too), keyed by the seed its name ends
    with (``<arm>_lr..._sN``)."""
    out = {}
    for name, rows, _ in run_rows(result_dir):
        if name.startswith(f"{arm}_lr"):
            out[int(name.rsplit("_s", 1)[1])] = sorted((r for r in rows if r.get("train/success")), key=lambda r: int(r["step"]))
    return out


def _column(rows: list[dict[str, str]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _mean5(values: list[float]) -> list[float]:
    return [sum(values[max(0, i - 4):i + 1]) / len(values[max(0, i - 4):i + 1]) for i in range(len(values))]


def _parse(args: list[str]) -> list[tuple[str, Path]]:
    arms = []
    for arg in args:
        arm, sep, directory = arg.partition("=")
        if not sep or not arm or not Path(directory).is_dir():
            raise SystemExit(f"sql_paired.py: expected ARM=DIR with an existing result directory, got {arg!r}")
        arms.append((arm, Path(directory)))
    return arms


def main(argv: list[str]) -> int:
    """Print the paired differences and write the figure (see the module docstring)."""
    block = 10
    if argv[:1] == ["--block"]:
        if len(argv) < 2 or not argv[1].isdigit() or int(argv[1]) < 1:
            print("sql_paired.py: --block expects a positive whole number of steps", file=sys.stderr)
            return 2
        block, argv = int(argv[1]), argv[2:]
    if len(argv) < 3:
        print("usage: sql_paired.py [--block N] OUT.png BASE_ARM=DIR ARM=DIR [ARM=DIR ...]", file=sys.stderr)
        return 2
    arms = _parse(argv[1:])
    runs = {arm: _by_seed(d, arm) for arm, d in arms}
    seeds = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not seeds:
        print("no seed has a run of every arm given", file=sys.stderr)
        return 2
    start_file = arms[0][1] / "start_eval.json"
    start = json.loads(start_file.read_text())["final_id_success"] if start_file.exists() else None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = arms[0][0]
    others = [arm for arm, _ in arms[1:]]
    fig, axes = plt.subplots(4, len(seeds), figsize=(max(6.5, 4.4 * len(seeds)), 9.5), sharex=True, squeeze=False)
    for col, seed in enumerate(seeds):
        ax = axes[0][col]
        for k, arm in enumerate(others, 1):
            a, b = (dict(zip(*_column(runs[name][seed], "train/success"), strict=True)) for name in (arm, base))
            common = sorted(set(a) & set(b))  # paired by step number: the same tasks
            diff = [a[s] - b[s] for s in common]
            blocks = [(common[i], common[min(i + block, len(common)) - 1], sum(diff[i:i + block]) / len(diff[i:i + block]))
                      for i in range(0, len(common), block)]
            print(f"seed {seed}: {arm} - {base} training success, steps {common[0]}-{common[-1]}, by block: "
                  + ", ".join(f"{lo}-{hi} {m:+.3f}" for lo, hi, m in blocks))
            if len(others) == 1:
                ax.bar(common, diff, color=["tab:green" if d >= 0 else "tab:red" for d in diff])
            else:
                ax.plot(common, _mean5(diff), color=COLORS[k % len(COLORS)], label=arm)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"seed {seed}")
        if len(others) > 1:
            ax.legend(fontsize=7)
        if col == 0:
            ax.set_ylabel(f"training success,\n{'arm' if len(others) > 1 else others[0]} − {base}\n(same tasks"
                          + (", 5-step mean)" if len(others) > 1 else ")"))
        for k, (arm, _) in enumerate(arms):
            rows, color = runs[arm][seed], COLORS[k % len(COLORS)]
            steps, dev = _column(rows, "eval/success")
            print(f"  {arm:20s} dev success " + " ".join(f"{s}:{v:.2f}" for s, v in zip(steps, dev, strict=True)))
            axes[1][col].plot(steps, dev, marker="o", ms=3, color=color, label=arm)
            steps, fmt = _column(rows, "train/format_error_rate")
            axes[2][col].plot(steps, _mean5(fmt), color=color, label=arm)
            steps, mass = _column(rows, "diag/probe/illegal_total")
            axes[3][col].plot(steps, mass, color=color, label=arm)
        if start is not None:
            axes[1][col].axhline(start, color="grey", ls="--", lw=1, label="start")
        axes[1][col].legend(fontsize=7)
        axes[3][col].set_yscale("log")
        axes[3][col].set_xlabel("RL step")
        if col == 0:
            axes[1][col].set_ylabel("dev success (64 episodes)")
            axes[2][col].set_ylabel("format errors\n(training, 5-step mean)")
            axes[3][col].set_ylabel("illegal control mass (probe)")
    fig.suptitle("SQL-v0, the same tasks each step:\n" + ", ".join(a for a, _ in arms), fontsize=10)
    fig.tight_layout()
    fig.savefig(argv[0], dpi=110)
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
