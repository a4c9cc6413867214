"""Early warning, scored: does a logged signal rise (or fall) *before* a run collapses?

For every candidate signal and every alarm threshold, over all runs of a results directory
(``steps.csv`` from ``python -m benchmarks.collapse run``):

* **collapse** of a run (fixed before looking at any signal): training success falls below
  ``frac`` × its running best and stays there for ``patience`` consecutive steps, after the best
  had risen at least ``min_gain`` above the run's start (``min_gain=0.15`` is the second study's
  "collapse after learning"; ``0`` counts any collapse). Start and best are means over
  ``smooth`` (5) consecutive steps, so one lucky step of 64 sampled episodes is not "learning"
  (version 3; ``--smooth 1`` is version 2's single-step rule). The **drop step** is the first
  step of that low stretch.
* **score** of a signal at step t: ``direction × log((s_t + ε) / (b_t + ε))``, with ``b_t`` the
  median of the previous ``window`` steps (no score during the first ``window`` steps), so a score
  of log 2 means "twice its recent level" whatever the signal's scale. ``direction`` is +1 for a
  signal expected to rise before a collapse, -1 for one expected to fall, 0 for either
  (absolute value). The directions are declared in :data:`SIGNALS`, before any run is scored.
* an **alarm** at threshold θ is a step whose score is ≥ θ.
* **recall**: the share of collapsing runs with an alarm in the **warning window**, from
  ``horizon`` steps before the drop step to ``min_lead`` steps before it; the **lead time** is
  drop step − the first alarm in that window. An alarm further ahead is not a warning of this
  drop (it is a false alarm, below).
* **false alarms per 100 steps**: alarm *steps* outside every warning window, per 100 scored
  steps outside them: every alarm step of a run without collapse, and those of a collapsing run
  before its window (its steps from the window on are not counted either way). Counting steps,
  not onsets, is what makes an alarm that is always on cost an alarm per step.
* the **ROC curve** sweeps θ; the summary row of a signal is its best recall with at most
  ``max_false_alarms`` (1) false alarms per 100 steps.

Version 2 of the scoring (issue 19, search entry 2). Version 1 counted a hit for an alarm at any
lead ≥ ``min_lead`` and false alarms as alarm *onsets* on non-collapsing runs only; on runs of
150 steps an alarm that fires at the first scored step and never stops then scored recall 1 at
0.7 false alarms per 100 steps, i.e. the measure rewarded a signal that says nothing.
Version 3 (search entry 4): the start and the best are ``smooth``-step means; version 2 used
single steps, and entry 2's four "collapses after learning" were peaks of that noise.
``--skip-idle`` (search entry 21): on a saturated policy about every other step has no learning
signal and is skipped, so its gradient norm is exactly 0; a baseline of such zeros makes every
real update look like a jump. With it, those steps are no observation of the update signals
(:data:`UPDATE_COLUMNS`).

Usage::

    python -m benchmarks.collapse.warning --out benchmarks/results/train/issue18_grid_30 [--min-gain 0]
    python -m benchmarks.collapse.warning --out SCORES_DIR --runs RESULTS_DIR_1 RESULTS_DIR_2 ... \\
        [--held-out RESULTS_DIR_3 ...]   # thresholds chosen on --runs, tested unchanged on these

writes ``warning.md`` (the table), ``warning.json``, ``warning_roc.png`` and ``warning_runs.png``
(training success and the best signal per run, alarms and drops marked; on the held-out runs when
there are any) in the results directory (with ``--runs``: in ``--out``, scoring the runs of several
directories together).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines.train.early_warning import EPS, score_series
from benchmarks.collapse.report import _num, check_distinct_runs, load

SIGNALS: dict[str, tuple[str, int]] = {
    "illegal control mass (probe)": ("diag/probe/illegal_total", +1),
    "illegal control mass (on-policy)": ("diag/onpolicy/illegal_total", +1),
    "p(end-of-turn right after <tool_call>) (probe)": ("diag/probe/after_open_eot", +1),
    "p(end-of-turn right after <tool_call>) (on-policy)": ("diag/onpolicy/after_open_eot", +1),
    "max importance ratio": ("train/ratio_max", +1),
    "approx. KL of the update": ("train/approx_kl", +1),
    "sampler/trainer log-prob gap": ("train/logp_mismatch", +1),
    "gradient norm at control positions": ("train/grad_norm_control", +1),
    "gradient norm": ("train/grad_norm", +1),
    "content-token probability (probe)": ("diag/probe/content_p", -1),
    "entropy": ("train/entropy", 0),
    "reward spread within groups": ("train/group_reward_std", -1),
    "expert-trajectory NLL rise of the update (expert_guard)": ("train/expert_nll_rise_max", +1),
}
"""Candidate signal -> (metric column, expected direction before a collapse: +1 up, -1 down, 0 either)."""

UPDATE_COLUMNS = frozenset(
    {"train/ratio_max", "train/approx_kl", "train/grad_norm_control", "train/grad_norm", "train/expert_nll_rise_max"}
)
"""The signals measured on the step's optimiser updates. A step whose every update was skipped
(no learning signal) logs them as exactly 0 (1 for the ratio); with ``Protocol.skip_idle`` such a
step is no observation of them: neither scored nor part of a later step's baseline."""



@dataclass(frozen=True)
class Protocol:
    """The fixed definitions of the scoring (see the module docstring)."""

    frac: float = 0.5
    patience: int = 10
    min_gain: float = 0.15
    window: int = 5
    min_lead: int = 2
    max_false_alarms: float = 1.0
    horizon: int = 10
    smooth: int = 5
    skip_idle: bool = False


def _smoothed(success: Sequence[float], p: Protocol) -> tuple[float, list[float]]:
    """``(start, means)``: the mean of the first ``p.smooth`` steps, and the mean of every
    ``p.smooth`` consecutive steps (``means[j]`` ends at step index ``j + p.smooth - 1``); the
    smoothing both halves of the collapse test share. ``success`` must not be empty."""
    k = max(1, p.smooth)
    means = [statistics.fmean(success[j : j + k]) for j in range(len(success) - k + 1)]
    return statistics.fmean(success[:k]), means


def drop_step(success: Sequence[float], steps: Sequence[int], p: Protocol) -> int | None:
    """The first step of the run's collapse (``None`` if it does not collapse under ``p``).

    The run has *learned* once the mean of its last ``p.smooth`` steps is ``p.min_gain`` above
    the mean of its first ``p.smooth`` steps; the drop is measured against that smoothed best, on
    the raw per-step success (so a drop is dated to the step, not smeared by the mean).
    """
    if not success:
        return None
    k = max(1, p.smooth)
    start, means = _smoothed(success, p)
    best, low_since, low_run = -math.inf, None, 0
    for i, (step, value) in enumerate(zip(steps, success, strict=True)):
        if low_run and value >= p.frac * best:
            low_since, low_run = None, 0
        if value < p.frac * best and best >= start + p.min_gain:
            if low_run == 0:
                low_since = step
            low_run += 1
            if low_run >= p.patience:
                return low_since
        if i + 1 >= k:
            best = max(best, means[i + 1 - k])
    return None


def learned(success: Sequence[float], p: Protocol) -> bool:
    """Whether the run *learned* under ``p`` (the first half of :func:`drop_step`'s test): some
    mean of ``p.smooth`` consecutive steps is ``p.min_gain`` above the mean of the first ones."""
    if not success:
        return False
    start, means = _smoothed(success, p)
    return any(m >= start + p.min_gain for m in means)


def scores(values: Sequence[float], direction: int, window: int) -> list[float]:
    """Per-step score (NaN where there is no baseline yet or the value is missing): the trainer's
    own online rule (:func:`baselines.train.early_warning.score_series`)."""
    return score_series(values, direction, window)


@dataclass
class RunSignal:
    """One run's scores of one signal and its drop step."""

    steps: list[int]
    scores: list[float]
    drop: int | None


def evaluate_threshold(runs: Sequence[RunSignal], theta: float, p: Protocol) -> dict[str, float]:
    """Recall, mean lead time and false alarms per 100 steps at threshold ``theta``."""
    hits, leads, collapsing, false_alarms, scored = 0, [], 0, 0, 0
    for run in runs:
        window_start = math.inf if run.drop is None else run.drop - p.horizon
        warned = None
        for step, z in zip(run.steps, run.scores, strict=True):
            if math.isnan(z):
                continue
            alarm = z >= theta
            if step < window_start:
                scored += 1
                false_alarms += int(alarm)
            elif alarm and warned is None and run.drop is not None and step <= run.drop - p.min_lead:
                warned = step
        if run.drop is not None:
            collapsing += 1
            if warned is not None:
                hits += 1
                leads.append(run.drop - warned)
    return {
        "theta": theta,
        "recall": hits / collapsing if collapsing else math.nan,
        "lead_mean": statistics.mean(leads) if leads else math.nan,
        "false_alarms_per_100": 100.0 * false_alarms / scored if scored else math.nan,
        "collapsing_runs": float(collapsing),
        "scored_steps_without_collapse": float(scored),
    }


def roc(runs: Sequence[RunSignal], p: Protocol) -> list[dict[str, float]]:
    """The curve over every distinct score as threshold (plus +inf: no alarm at all), as a step
    curve: recall and false alarms only grow as the threshold falls, so of each recall level
    only its first point (fewest false alarms) and its last are kept, and of thresholds giving
    the same point the lowest; :func:`best_point` chooses the same point from it as from all."""
    thetas = sorted({z for r in runs for z in r.scores if not math.isnan(z)}, reverse=True)
    curve: list[dict[str, float]] = []
    for theta in [math.inf, *thetas]:
        point = evaluate_threshold(runs, theta, p)
        if curve and _same(curve[-1], point):
            curve[-1] = point
        else:
            curve.append(point)
    return [c for i, c in enumerate(curve)
            if i in (0, len(curve) - 1) or not _same_recall(c, curve[i - 1]) or not _same_recall(c, curve[i + 1])]


def _same_recall(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["recall"] == b["recall"] or (math.isnan(a["recall"]) and math.isnan(b["recall"]))


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    keys = ("recall", "false_alarms_per_100", "lead_mean")
    return all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in keys)


def best_point(curve: Sequence[dict[str, float]], p: Protocol) -> dict[str, float]:
    """The point with the highest recall within ``max_false_alarms`` (ties: fewer false alarms)."""
    ok = [c for c in curve if not math.isnan(c["recall"]) and (math.isnan(c["false_alarms_per_100"]) or c["false_alarms_per_100"] <= p.max_false_alarms)]
    if not ok:
        return curve[0]
    return max(ok, key=lambda c: (c["recall"], -_nan0(c["false_alarms_per_100"]), -c["theta"]))


def _nan0(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def run_drop(rows: Sequence[dict[str, Any]], p: Protocol) -> int | None:
    """:func:`drop_step` of one run's logged steps (``rows`` sorted by step)."""
    return drop_step([_num(r["train/success"]) for r in rows], [int(r["step"]) for r in rows], p)


def _drops(steps_by_run: dict[str, list[dict[str, Any]]], p: Protocol) -> dict[str, int | None]:
    return {run: run_drop(rows, p) for run, rows in steps_by_run.items()}


def idle(row: dict[str, Any]) -> bool:
    """Whether every optimiser update of the step was skipped (no learning signal)."""
    updates, skipped = _num(row.get("train/updates")), _num(row.get("train/skipped_updates"))
    return updates > 0 and skipped >= updates


def observed_rows(rows: Sequence[dict[str, Any]], column: str, p: Protocol) -> list[dict[str, Any]]:
    """The steps of a run that observe ``column``: all of them, or with ``p.skip_idle`` and a
    signal of :data:`UPDATE_COLUMNS`, those with at least one update taken."""
    if p.skip_idle and column in UPDATE_COLUMNS:
        return [r for r in rows if not idle(r)]
    return list(rows)


def run_scores(rows: Sequence[dict[str, Any]], column: str, direction: int, p: Protocol) -> tuple[list[int], list[float]]:
    """One run's ``(steps, scores)`` of ``column``: the steps that observe it (:func:`observed_rows`)
    and their scores (:func:`scores`; NaN where there is none)."""
    observed = observed_rows(rows, column, p)
    return [int(r["step"]) for r in observed], scores([_num(r.get(column)) for r in observed], direction, p.window)


def _run_signals(steps_by_run: dict[str, list[dict[str, Any]]], drops: dict[str, int | None], column: str,
                 direction: int, p: Protocol) -> list[RunSignal]:
    return [RunSignal(*run_scores(rows, column, direction, p), drops[run]) for run, rows in steps_by_run.items()]


def score_signals(steps_by_run: dict[str, list[dict[str, Any]]], p: Protocol,
                  held_out: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Every signal of :data:`SIGNALS` present in the runs, scored: ``{"runs": …, "signals": {name: …}}``.

    With ``held_out`` runs, each signal's best threshold (chosen on ``steps_by_run``) is also
    evaluated, unchanged, on them (``"held_out"`` of each signal; ``"held_out_drops"``): a
    threshold fitted and scored on the same runs flatters the signal.
    """
    drops = _drops(steps_by_run, p)
    out: dict[str, Any] = {"protocol": p.__dict__, "drops": drops, "signals": {}}
    held_drops = _drops(held_out, p) if held_out else None
    if held_drops is not None:
        out["held_out_drops"] = held_drops
    for name, (column, direction) in SIGNALS.items():
        if not any(column in rows[0] for rows in steps_by_run.values() if rows):
            continue
        curve = roc(_run_signals(steps_by_run, drops, column, direction, p), p)
        out["signals"][name] = {"column": column, "direction": direction, "best": best_point(curve, p), "roc": curve}
        if held_out and held_drops is not None:
            theta = out["signals"][name]["best"]["theta"]
            out["signals"][name]["held_out"] = evaluate_threshold(
                _run_signals(held_out, held_drops, column, direction, p), theta, p)
    return out


def markdown(result: dict[str, Any]) -> str:
    """The summary table, best signal first."""
    p = Protocol(**result["protocol"])
    drops = result["drops"]
    n_collapse = sum(d is not None for d in drops.values())
    lines = [
        f"Runs: {len(drops)}, collapsing under the protocol: {n_collapse} "
        f"(frac {p.frac}, patience {p.patience}, min gain {p.min_gain} on {p.smooth}-step means); baseline window "
        f"{p.window} steps, a hit needs an alarm {p.min_lead}–{p.horizon} steps before the drop; false alarms are "
        f"alarm steps outside those windows (scoring version {3 if p.smooth > 1 else 2}"
        f"{'; steps without an update are no observation of the update signals' if p.skip_idle else ''}); best threshold with "
        f"≤ {p.max_false_alarms:g} false alarms per 100 steps.",
        "",
        "| signal | column | direction | threshold (log ratio) | recall | mean lead (steps) | false alarms / 100 steps |"
        + (" held-out recall | held-out lead | held-out false alarms / 100 |" if "held_out_drops" in result else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|---|" if "held_out_drops" in result else ""),
    ]
    if "held_out_drops" in result:
        held = result["held_out_drops"]
        lines[0] += (f" Held out: {len(held)} runs ({sum(d is not None for d in held.values())} collapsing), each "
                     "signal at the threshold chosen on the runs above.")
    for name in ranked_signals(result):
        sig = result["signals"][name]
        b = sig["best"]
        arrow = {1: "up", -1: "down", 0: "either"}[sig["direction"]]
        lines.append(
            f"| {name} | `{sig['column']}` | {arrow} | {b['theta']:.2f} | {_fmt(b['recall'])} | {_fmt(b['lead_mean'], 1)} | "
            f"{_fmt(b['false_alarms_per_100'], 2)} |"
            + (f" {_fmt(h['recall'])} | {_fmt(h['lead_mean'], 1)} | {_fmt(h['false_alarms_per_100'], 2)} |"
               if (h := sig.get("held_out")) else "")
        )
    return "\n".join(lines) + "\n"


def _fmt(x: float, digits: int = 2) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def plot_roc(result: dict[str, Any], path: Path) -> None:
    """ROC curves (false alarms per 100 steps vs recall), one line per signal; with held-out runs,
    each signal's held-out point at its chosen threshold is a hollow marker of the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 5.2))
    colors = plt.get_cmap("tab20").colors
    styles = ("-", "--", "-.", ":")
    held_out = "held_out_drops" in result
    for i, (name, sig) in enumerate(result["signals"].items()):
        color, style = colors[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20], styles[i % len(styles)]
        pts = [(c["false_alarms_per_100"], c["recall"]) for c in sig["roc"] if not math.isnan(c["recall"])]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.step(xs, ys, where="post", label=name, color=color, ls=style, lw=1.4)
        h = sig.get("held_out")
        if held_out and h and not math.isnan(h["recall"]):
            ax.plot([h["false_alarms_per_100"]], [h["recall"]], marker="o", ms=7, mfc="none", mec=color, mew=1.6, ls="none")
    ax.axvline(Protocol(**result["protocol"]).max_false_alarms, color="grey", ls=":", lw=1)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("false alarms per 100 steps (alarm steps outside the warning windows; linear below 1, log above)")
    ax.set_ylabel(
        f"recall (collapsing runs warned {result['protocol']['min_lead']}–{result['protocol'].get('horizon', '?')} steps ahead)"
    )
    ax.set_ylim(-0.02, 1.02)
    if ax.get_legend_handles_labels()[0]:
        ax.set_title("Early warning of collapse: ROC per signal"
                     + ("\nlines: the runs the thresholds are chosen on; ○: held-out runs at the chosen threshold"
                        if held_out else ""), fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.set_title("Early warning of collapse: no run collapses under the protocol, nothing to score")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def ranked_signals(result: dict[str, Any]) -> list[str]:
    """Signal names, best first: by held-out recall and false alarms when held-out runs were scored,
    then by the fitted point's recall and false alarms."""
    def key(name: str) -> tuple[float, ...]:
        sig = result["signals"][name]
        b, h = sig["best"], sig.get("held_out")
        held = (-_nan0(h["recall"]), _nan0(h["false_alarms_per_100"])) if h else ()
        return (*held, -_nan0(b["recall"]), _nan0(b["false_alarms_per_100"]))

    return sorted(result["signals"], key=key)


def plot_runs(steps_by_run: dict[str, list[dict[str, Any]]], result: dict[str, Any], signal: str, path: Path,
              *, drops_key: str = "drops", max_quiet: int = 4) -> None:
    """One panel per run (every collapsing run, and up to ``max_quiet`` others): training success,
    the signal on a log axis, its alarm steps at the chosen threshold (red ▼) and the drop step
    (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sig = result["signals"][signal]
    column, direction, theta = sig["column"], sig["direction"], sig["best"]["theta"]
    p = Protocol(**result["protocol"])
    drops = result[drops_key]
    collapsing = [r for r in steps_by_run if drops.get(r) is not None]
    quiet = [r for r in steps_by_run if drops.get(r) is None][:max_quiet]
    names = collapsing + quiet
    if not names:
        return
    cols = min(4, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.4 * cols, 2.6 * rows_n), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names, strict=False):
        every = steps_by_run[name]
        ax.plot([int(r["step"]) for r in every], [_num(r["train/success"]) for r in every], color="black", lw=1)
        ax.set_ylim(-0.05, 1.05)
        rows = observed_rows(every, column, p)
        steps = [int(r["step"]) for r in rows]
        values = [_num(r.get(column)) for r in rows]
        twin = ax.twinx()
        twin.plot(steps, [abs(v) + EPS for v in values], color="tab:blue", lw=0.9, alpha=0.8)
        twin.set_yscale("log")
        twin.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        twin.tick_params(which="both", labelsize=6, colors="tab:blue")
        for step, z in zip(steps, scores(values, direction, p.window), strict=True):
            if not math.isnan(z) and z >= theta:
                ax.plot([step], [1.02], "v", color="tab:red", ms=4)
        if drops.get(name) is not None:
            ax.axvline(drops[name], color="tab:red", ls="--", lw=0.9)
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"training success (black), {signal} (blue, log); ▼ alarm at log-ratio ≥ {theta:.2f}; "
                 "dashed: drop step", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # room for the suptitle
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: score every signal of a results directory."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.warning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="Results directory with steps.csv / runs.csv; where the scores are written.")
    parser.add_argument("--runs", type=Path, nargs="+", metavar="DIR",
                        help="Score the runs of these results directories together instead (run names prefixed "
                             "by their directory's name); --out then only receives the scores.")
    parser.add_argument("--held-out", type=Path, nargs="+", metavar="DIR",
                        help="Results directories whose runs test each signal's threshold, chosen on the scored "
                             "runs, without refitting it.")
    defaults = Protocol()
    for name in ("frac", "min_gain", "max_false_alarms"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    for name in ("patience", "window", "min_lead", "horizon", "smooth"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--skip-idle", action="store_true",
                        help="A step whose every update was skipped (no learning signal) is no observation of the "
                             "update signals (gradient norms, approx-KL, max ratio): neither scored nor in a baseline.")
    args = parser.parse_args(argv)
    p = Protocol(args.frac, args.patience, args.min_gain, args.window, args.min_lead, args.max_false_alarms, args.horizon,
                 args.smooth, args.skip_idle)
    try:
        scored = [(d, load(d)[0]) for d in (args.runs or [args.out])]
        held_out = [(d, load(d)[0]) for d in (args.held_out or [])]
        check_distinct_runs(scored + held_out)  # a held-out run that is also scored would leak into the fit
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    if args.runs:
        steps = {f"{d.name}_{run}": rows for d, by_run in scored for run, rows in by_run.items()}
    else:
        steps = scored[0][1]
    args.out.mkdir(parents=True, exist_ok=True)
    held = None
    if args.held_out:
        held = {f"{d.name}_{run}": rows for d, by_run in held_out for run, rows in by_run.items()}
    result = score_signals(steps, p, held)
    (args.out / "warning.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    table = markdown(result)
    (args.out / "warning.md").write_text(table, encoding="utf-8")
    plot_roc(result, args.out / "warning_roc.png")
    if result["signals"]:
        best = ranked_signals(result)[0]
        plot_runs(held or steps, result, best, args.out / "warning_runs.png",
                  drops_key="held_out_drops" if held else "drops")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
