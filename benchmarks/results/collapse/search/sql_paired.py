"""Entry 50: real against permuted advantages on SQL-v0, step by step on the same tasks.

Runs with the same seed draw the same tasks at every step, so the difference of their training
success at a step is the reward's effect with the tasks' difficulty taken out. Reads the ``none``
runs of ``REAL_DIR`` and the ``permuted_advantages`` runs of ``PERMUTED_DIR``. Prints, per seed,
the mean difference (real − permuted) over blocks of 10 steps, the dev success of each at every
evaluation (and the start's, from ``REAL_DIR/start_eval.json``), and the probe's illegal
control-token mass; plots the three, one column per seed, to ``OUT.png``. Run from the repository root:

    python benchmarks/results/collapse/search/sql_paired.py benchmarks/results/collapse/search/sql_half_lr1e-4 \\
        benchmarks/results/collapse/search/sql_half_permuted_lr1e-4 benchmarks/results/collapse/search/sql_half_lr1e-4_paired.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sql_breaks, beside this file
from sql_breaks import run_rows  # noqa: E402


def _by_seed(result_dir: Path, arm: str) -> dict[int, list[dict[str, str]]]:
    """The rows (sorted by step) of each of ``arm``'s runs in ``result_dir`` (the study's merge
    lists every finished run of its work dir, other arms' too), keyed by the seed its name ends
    with (``<arm>_lr..._sN``)."""
    out = {}
    for name, rows, _ in run_rows(result_dir):
        if not name.startswith(f"{arm}_lr"):
            continue
        out[int(name.rsplit("_s", 1)[1])] = sorted((r for r in rows if r.get("train/success")), key=lambda r: int(r["step"]))
    return out


def _column(rows: list[dict[str, str]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def main(argv: list[str]) -> int:
    """Print the paired differences and write the figure (see the module docstring)."""
    if len(argv) != 3:
        print("usage: sql_paired.py REAL_DIR PERMUTED_DIR OUT.png", file=sys.stderr)
        return 2
    real, permuted = _by_seed(Path(argv[0]), "none"), _by_seed(Path(argv[1]), "permuted_advantages")
    seeds = sorted(set(real) & set(permuted))
    if not seeds:
        print(f"no seed has runs in both {argv[0]} and {argv[1]}", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start_file = Path(argv[0]) / "start_eval.json"
    start = json.loads(start_file.read_text())["final_id_success"] if start_file.exists() else None
    fig, axes = plt.subplots(3, len(seeds), figsize=(4.2 * len(seeds), 7.5), sharex=True, squeeze=False)
    for col, seed in enumerate(seeds):
        a, b = real[seed], permuted[seed]
        n = min(len(a), len(b))
        diff = [float(x["train/success"]) - float(y["train/success"]) for x, y in zip(a[:n], b[:n], strict=True)]
        blocks = [(i + 1, min(i + 10, n), sum(diff[i:i + 10]) / len(diff[i:i + 10])) for i in range(0, n, 10)]
        print(f"seed {seed}: steps in common 1-{n}; real - permuted training success by block: "
              + ", ".join(f"{lo}-{hi} {m:+.3f}" for lo, hi, m in blocks))
        for label, rows in (("real", a), ("permuted", b)):
            steps, dev = _column(rows, "eval/success")
            print(f"  {label:8s} dev success " + " ".join(f"{s}:{v:.2f}" for s, v in zip(steps, dev, strict=True)))
        ax = axes[0][col]
        ax.bar(range(1, n + 1), diff, color=["tab:green" if d >= 0 else "tab:red" for d in diff])
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"seed {seed}")
        ax.set_ylabel("training success,\nreal − permuted (same tasks)" if col == 0 else "")
        for key, ax, ylabel in (("eval/success", axes[1][col], "dev success (64 episodes)"),
                                ("diag/probe/illegal_total", axes[2][col], "illegal control mass (probe)")):
            for label, rows, color in (("real advantages", a, "black"), ("permuted", b, "tab:orange")):
                steps, values = _column(rows, key)
                ax.plot(steps, values, marker="o" if key == "eval/success" else None, ms=3, color=color, label=label)
            ax.set_ylabel(ylabel if col == 0 else "")
            if key == "diag/probe/illegal_total":
                ax.set_yscale("log")
                ax.set_xlabel("RL step")
        if start is not None:
            axes[1][col].axhline(start, color="grey", ls="--", lw=1, label="start")
        axes[1][col].legend(fontsize=8)
    fig.suptitle("SQL-v0, half start, lr 1e-4: real against permuted advantages (entry 50)")
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    print(f"wrote {argv[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
