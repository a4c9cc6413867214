"""Turn the study's CSVs into ``REPORT.md`` and its plots.

Definitions (the trainer's detectors, fixed before the study was run):

* **collapse** -- training success (64 episodes per step) falls below half of its running best
  and stays there for ``collapse_patience`` (10) consecutive steps; the collapse step is where that
  stretch begins (``baselines.train.diagnostics.CollapseDetector``);
* **spike** -- the first step where the teacher-forced probe's grammar-illegal control-token mass
  exceeds ``max(0.02, 10 × its first value)`` or p(end-of-turn | ``<tool_call>``) exceeds 0.3
  (``SpikeDetector``'s threshold rule);
* **spike lead time** -- collapse step minus first spike step (positive: the spike came first);
* **final success** -- mean training success over the last 10 steps; **best** -- the maximum;
* **in- / out-of-distribution success** -- the final policy on the evaluation split, as trained,
  with the shifted presentation of :mod:`benchmarks.collapse.ood` (prompt and tool outputs), and
  with only the tool outputs shifted (same tasks and seeds).

Intervals are 95% t-intervals over seeds (none with one seed).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.collapse.settings import ARMS

GroupKey = tuple[str, float, float]  # arm, lr, kl_coef


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _opt_int(value: Any) -> int | None:
    v = _num(value)
    return None if math.isnan(v) else int(v)


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% t-interval (``nan`` half-width for fewer than 2 values)."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    m = statistics.fmean(vals)
    if len(vals) < 2:
        return m, math.nan
    from scipy.stats import t

    return m, float(t.ppf(0.975, len(vals) - 1)) * statistics.stdev(vals) / math.sqrt(len(vals))


def fmt_ci(values: Sequence[float]) -> str:
    """``"0.52 ± 0.10"`` (or ``"0.52"`` without an interval, ``"–"`` without values)."""
    m, h = mean_ci(values)
    if math.isnan(m):
        return "–"
    return f"{m:.2f}" if math.isnan(h) else f"{m:.2f} ± {h:.2f}"


def load(out_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], dict[str, Any]]:
    """``(steps by run, run summaries, manifest)`` from a results directory.

    Raises:
        FileNotFoundError: naming the command that makes the missing files.
    """
    steps_path, runs_path = out_dir / "steps.csv", out_dir / "runs.csv"
    if not steps_path.exists() or not runs_path.exists():
        raise FileNotFoundError(f"{out_dir} has no steps.csv/runs.csv; run `python -m benchmarks.collapse run` first.")
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with open(steps_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            steps[row["run"]].append(row)
    for rows in steps.values():
        rows.sort(key=lambda r: int(r["step"]))
    with open(runs_path, newline="", encoding="utf-8") as fh:
        runs = list(csv.DictReader(fh))
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    return dict(steps), runs, manifest


def load_distinct(dirs: Sequence[Path]) -> list[tuple[Path, tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], dict[str, Any]]]]:
    """``[(directory, load(directory)), ...]`` for ``dirs``, refused if two of them hold the same run
    (:func:`check_distinct_runs`).

    Raises:
        FileNotFoundError: as :func:`load`.
        ValueError: naming the run and both directories.
    """
    loaded = [(directory, load(directory)) for directory in dirs]
    check_distinct_runs([(directory, steps) for directory, (steps, _, _) in loaded])
    return loaded


def first_steps(rows: Sequence[dict[str, Any]], max_step: int | None) -> list[dict[str, Any]]:
    """The logged rows of a run at steps ≤ ``max_step`` (all of them for ``None``): the run read as
    if it had stopped there, so that runs of different lengths are judged over one window."""
    return [r for r in rows if max_step is None or int(r["step"]) <= max_step]


def check_distinct_runs(steps_by_dir: Sequence[tuple[Path, dict[str, list[dict[str, Any]]]]]) -> None:
    """Refuse a run that two results directories both hold, so that no run is counted twice.

    ``steps_by_dir`` pairs each directory with its steps by run (:func:`load`'s first item); a
    directory listed twice holds every one of its runs twice.

    ``run`` collects every finished run of its work dir into its ``--out``, so two directories
    collected from one work dir at different times overlap. A run is the same run when its name
    and its logged steps agree (on the steps and columns both hold: one copy may be a partial
    one); runs of one name in different settings (another start or learning rate) differ from
    their first logged step.

    Raises:
        ValueError: naming the run and both directories.
    """
    seen: dict[str, list[tuple[Path, list[dict[str, Any]]]]] = defaultdict(list)
    for directory, steps in steps_by_dir:
        for run, rows in steps.items():
            for other, other_rows in seen[run]:
                n = min(len(rows), len(other_rows))
                shared = (set(rows[0]) & set(other_rows[0])) if n else set()
                if n and all({k: a[k] for k in shared} == {k: b[k] for k in shared}
                             for a, b in zip(rows[:n], other_rows[:n], strict=True)):
                    raise ValueError(f"run {run!r} is in both {other} and {directory} (the same logged steps); "
                                     "list each run once, e.g. only the directory collected last.")
            seen[run].append((directory, rows))


def updates_taken(rows: Sequence[dict[str, Any]], before: int | None = None) -> int | None:
    """Optimiser updates a run took (``train/updates`` less ``train/skipped_updates``, the updates
    without learning signal), over all its logged steps or those before step ``before``; ``None``
    for a log without ``train/updates`` (written before the trainer counted them)."""
    kept = [r for r in rows if before is None or int(_num(r["step"])) < before]
    if any(math.isnan(_num(r.get("train/updates"))) for r in kept):
        return None
    skipped = (_num(r.get("train/skipped_updates")) for r in kept)
    return int(sum(_num(r["train/updates"]) for r in kept) - sum(0.0 if math.isnan(x) else x for x in skipped))


def run_record(summary: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run quantities of the summary table."""
    succ = [_num(r["train/success"]) for r in rows]
    fmt = [_num(r["train/format_error_rate"]) for r in rows]
    collapse = _opt_int(summary.get("collapse_step"))
    spike = _opt_int(summary.get("first_spike_step"))
    return {
        "run": summary["run"],
        "arm": summary["arm"],
        "lr": _num(summary["lr"]),
        "kl_coef": _num(summary["kl_coef"]),
        "seed": int(_num(summary["seed"])),
        "steps": len(rows),
        "best": max(succ) if succ else math.nan,
        "final": statistics.fmean(succ[-10:]) if succ else math.nan,
        "first": succ[0] if succ else math.nan,
        "final_fmt": statistics.fmean(fmt[-10:]) if fmt else math.nan,
        "collapse": collapse,
        "spike": spike,
        "lead": (collapse - spike) if collapse is not None and spike is not None else None,
        "id": _num(summary.get("final_id_success")),
        "ood": _num(summary.get("final_ood_success")),
        "ood_tool": _num(summary.get("final_ood_tool_success")),
        "wall_s": _num(summary.get("run_wall_s")),
        "updates": updates_taken(rows),
        "updates_before_collapse": updates_taken(rows, collapse) if collapse is not None else None,
    }


def group_records(records: list[dict[str, Any]]) -> dict[GroupKey, list[dict[str, Any]]]:
    """Records grouped by ``(arm, lr, kl_coef)``, seeds sorted."""
    groups: dict[GroupKey, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[(rec["arm"], rec["lr"], rec["kl_coef"])].append(rec)
    for recs in groups.values():
        recs.sort(key=lambda r: r["seed"])
    return dict(groups)


def main_setting(groups: dict[GroupKey, list[dict[str, Any]]]) -> tuple[float, float]:
    """The ``(lr, kl_coef)`` of the arm comparison: the setting with the most distinct arms."""
    arms_at: dict[tuple[float, float], set[str]] = defaultdict(set)
    for arm, lr, kl in groups:
        arms_at[(lr, kl)].add(arm)
    return max(arms_at, key=lambda k: (len(arms_at[k]), -k[1]))


def summary_row(label: str, recs: list[dict[str, Any]]) -> str:
    """One markdown row of the summary table."""
    collapsed = [r for r in recs if r["collapse"] is not None]
    leads = [r["lead"] for r in collapsed if r["lead"] is not None]
    median_collapse = f"{statistics.median(r['collapse'] for r in collapsed):g}" if collapsed else "–"
    lead = f"{statistics.median(leads):g} ({', '.join(str(x) for x in leads)})" if leads else "–"
    return (
        f"| {label} | {len(recs)} | {len(collapsed)}/{len(recs)} | {median_collapse} | "
        f"{fmt_ci([r['best'] for r in recs])} | {fmt_ci([r['final'] for r in recs])} | "
        f"{fmt_ci([r['final_fmt'] for r in recs])} | {lead} | "
        f"{fmt_ci([r['id'] for r in recs])} | {fmt_ci([r['ood'] for r in recs])} | "
        f"{fmt_ci([r['ood_tool'] for r in recs])} |"
    )


TABLE_HEADER = (
    "| setting | seeds | collapsed | median collapse step | best success | final success (last 10) | "
    "final format-error rate | spike lead time, median (each) | final eval, in-dist. | final eval, shifted (OOD) | "
    "final eval, tool outputs shifted |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = _num(r.get(key))
        if not math.isnan(v):
            xs.append(int(r["step"]))
            ys.append(v)
    return xs, ys


def _mean_band(
    all_rows: list[list[dict[str, Any]]], key: str, *, log: bool = False, bounds: tuple[float, float] | None = None
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per step: the mean over seeds and its 95% band; with ``log``, the geometric mean and a band
    computed on log10 values (a band on raw values would reach below zero on a log axis); the
    band is clipped to the seeds' own range at that step (with two seeds left, a t-interval spans
    tens of decades on a log axis) and to ``bounds`` (e.g. a success rate's [0, 1])."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for rows in all_rows:
        for x, y in zip(*_series(rows, key), strict=True):
            by_step[x].append(math.log10(max(y, 1e-12)) if log else y)
    xs = sorted(by_step)
    means, lows, highs = [], [], []
    for x in xs:
        m, h = mean_ci(by_step[x])
        h = 0.0 if math.isnan(h) else h
        values = (m, max(m - h, min(by_step[x])), min(m + h, max(by_step[x])))
        if log:
            values = tuple(10**v for v in values)
        low, high = values[1], values[2]
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        means.append(values[0])
        lows.append(low)
        highs.append(high)
    return xs, means, lows, highs


def plot_panels(
    path: Path, panels: list[tuple[str, list[dict[str, Any]]]], steps: dict[str, list[dict[str, Any]]], key: str,
    ylabel: str, *, log: bool = False, markers: bool = False, bounds: tuple[float, float] | None = None,
) -> None:
    """One subplot per setting: each seed faintly, the mean with its 95% band (geometric with
    ``log``); with ``markers``,
    ▲ at each seed's first spike and a dashed line at its collapse step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(4, n)
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.6 * cols, 2.8 * rows_n), sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (title, recs) in zip(axes.flat, panels, strict=False):
        run_rows = [steps.get(r["run"], []) for r in recs]
        for rec, rows in zip(recs, run_rows, strict=True):
            xs, ys = _series(rows, key)
            (line,) = ax.plot(xs, ys, lw=0.8, alpha=0.35)
            if markers:
                if rec["spike"] is not None and rec["spike"] in xs:
                    ax.plot([rec["spike"]], [ys[xs.index(rec["spike"])]], "^", color=line.get_color(), ms=6)
                if rec["collapse"] is not None:
                    ax.axvline(rec["collapse"], color=line.get_color(), ls="--", lw=0.8, alpha=0.7)
        xs, means, lows, highs = _mean_band(run_rows, key, log=log, bounds=bounds)
        ax.plot(xs, means, color="black", lw=1.6)
        ax.fill_between(xs, lows, highs, color="black", alpha=0.12, lw=0)
        ax.set_title(title, fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("RL step")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _arm_order(arm: str) -> tuple[int, str]:
    return (ARMS.index(arm) if arm in ARMS else len(ARMS), arm)


def start_line(manifest: dict[str, Any]) -> str:
    """The report's line on where the runs started: the SFT config the study trained the start
    with, or the checkpoint given with ``--sft`` (``sft_config`` is ``None`` then)."""
    if "sft_config" in manifest and manifest["sft_config"] is None:
        return f"* Start: the checkpoint `{manifest.get('sft_checkpoint', '?')}`, given with `--sft` (not trained by this study)."
    return f"* SFT config: `{manifest.get('sft_config', '?')}`."


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/REPORT.md`` and ``out_dir/*.png``; returns the report's path.

    A hand-written ``out_dir/DISCUSSION.md``, if present, is included verbatim under
    "Findings", so regenerating the report never loses the interpretation.
    """
    out_dir = Path(out_dir)
    steps, runs, manifest = load(out_dir)
    records = [run_record(s, steps.get(s["run"], [])) for s in runs]
    groups = group_records(records)
    if not groups:
        raise FileNotFoundError(f"{out_dir}/runs.csv lists no finished run.")
    lr0, kl0 = main_setting(groups)
    main = sorted(((k, v) for k, v in groups.items() if k[1:] == (lr0, kl0)), key=lambda kv: _arm_order(kv[0][0]))
    sweep = sorted(((k, v) for k, v in groups.items() if k[0] == "none"), key=lambda kv: (kv[0][1], kv[0][2]))
    panels = [(arm, recs) for (arm, _, _), recs in main]
    plot_panels(out_dir / "success.png", panels, steps, "train/success", "success (training batch)", bounds=(0.0, 1.0))
    plot_panels(out_dir / "control_tokens.png", panels, steps, "diag/probe/illegal_total", "illegal control p (probe)", log=True, markers=True)
    if len(sweep) > 1:
        plot_panels(out_dir / "sweep_success.png", [(f"lr {lr:g}, KL {kl:g}", recs) for (_, lr, kl), recs in sweep], steps, "train/success", "success", bounds=(0.0, 1.0))

    lines = [
        "# The collapse experiment",
        "",
        f"Env **{manifest.get('env', '?')}**, every arm from the same SFT checkpoint "
        f"(`{manifest.get('sft_checkpoint', '?')}`), identical GRPO settings except the supervisory switch. "
        f"Arm comparison at lr {lr0:g}, KL coefficient {kl0:g}."
        + (" **`--quick` run: a pipeline check with a tiny budget, not a result.**" if manifest.get("quick") else ""),
        "",
    ]
    discussion = out_dir / "DISCUSSION.md"
    if discussion.exists():
        lines += ["## Findings", "", discussion.read_text(encoding="utf-8").strip(), ""]
    lines += ["## Arms at the collapse-prone setting", ""]
    start = out_dir / "start_eval.json"
    if start.exists():
        ref = json.loads(start.read_text(encoding="utf-8"))
        lines += [
            f"The starting SFT checkpoint, evaluated as the final policies are: in-distribution success "
            f"{ref['final_id_success']:.2f} (format-error rate {ref['final_id_format_error_rate']:.2f}), shifted "
            f"(OOD) {ref['final_ood_success']:.2f} (format-error rate {ref['final_ood_format_error_rate']:.2f}), "
            f"tool outputs shifted {_num(ref.get('final_ood_tool_success')):.2f} "
            f"(format-error rate {_num(ref.get('final_ood_tool_format_error_rate')):.2f}).",
            "",
        ]
    lines += [TABLE_HEADER]
    lines += [summary_row(f"`{arm}`", recs) for (arm, _, _), recs in main]
    lines += [
        "",
        "![success per arm](success.png)",
        "",
        "Success per step (training episodes of that step): each seed faint, mean in black with its 95% band.",
        "",
        "![control-token probability](control_tokens.png)",
        "",
        "Grammar-illegal control-token probability in the teacher-forced probe (log scale; geometric mean "
        "over seeds with its 95% band); ▲ first "
        "spike of a seed, dashed line its detected collapse step.",
        "",
    ]
    if len(sweep) > 1:
        lines += ["## When does vanilla GRPO collapse? (learning rate × KL to the reference)", "", TABLE_HEADER]
        lines += [summary_row(f"lr {lr:g}, KL {kl:g}", recs) for (_, lr, kl), recs in sweep]
        lines += ["", "![sweep](sweep_success.png)", ""]
    lines += [
        "## Per run",
        "",
        "| run | steps | first | best | final | collapse step | first spike | lead | optimiser updates taken "
        "(before the collapse step) | in-dist. | OOD | OOD, tool outputs | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in sorted(records, key=lambda r: (_arm_order(r["arm"]), r["lr"], r["kl_coef"], r["seed"])):
        updates = "–" if rec["updates"] is None else str(rec["updates"])
        if rec["updates_before_collapse"] is not None:
            updates += f" ({rec['updates_before_collapse']})"
        lines.append(
            f"| {rec['run']} | {rec['steps']} | {rec['first']:.2f} | {rec['best']:.2f} | {rec['final']:.2f} | "
            f"{'–' if rec['collapse'] is None else rec['collapse']} | {'–' if rec['spike'] is None else rec['spike']} | "
            f"{'–' if rec['lead'] is None else rec['lead']} | {updates} | {rec['id']:.2f} | {rec['ood']:.2f} | "
            f"{rec['ood_tool']:.2f} | {rec['wall_s']:.0f} |"
        )
    lines += ["", "## How this was made", ""]
    lines += ["```", *manifest.get("commands", []), "python -m benchmarks.collapse report", "```", ""]
    if len(manifest.get("commands", [])) > 1:
        lines += [
            "The invocations in the order they were run. The study resumes: each command runs only the runs "
            "that earlier ones did not finish, so the last `run` and the last `sweep` alone reproduce all "
            "results (same seeds, same SFT checkpoint training).",
            "",
        ]
    lines += [
        f"* RL config: `{manifest.get('rl_config', '?')}` with overrides `{' '.join(manifest.get('shared_overrides', []))}`;"
        " each run adds `lr`, `kl_coef`, `seed` and its `supervision.use`.",
        start_line(manifest),
        f"* Versions: {json.dumps(manifest.get('versions', {}))}.",
        "* Files: `steps.csv` (every logged step of every run), `runs.csv` (one row per run), `manifest.json`.",
        "",
        "### Definitions",
        "",
        (__doc__ or "").split("Definitions (the trainer's detectors, fixed before the study was run):")[-1].strip(),
        "",
    ]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
