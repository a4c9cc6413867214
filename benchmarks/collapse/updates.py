"""Which updates break a saturated policy? The study's per-update records, by signalling groups.

On a saturated policy most groups of a batch have equal rewards and no GRPO gradient, so an
update is carried by a few groups, often by one (a *lone-failure update*: one failed episode in
a group of successes, scaled by GRPO's group standard deviation to a large negative advantage).
Search entry 20 found both of its slow collapses in such updates; this module asks whether, over
every update of the runs, the updates carried by fewer groups break the policy more often.

For every optimiser update taken (a step that is not idle, see
:func:`benchmarks.collapse.warning.idle`) from a batch whose training success is at least
``min_success`` (a saturated policy), the next logged step says whether the update *broke* the
policy: training success below ``broke_below``. (The next step's batch is the first one sampled
from the updated policy.) Per setting and arm, the updates are counted by their number of
signalling groups (groups whose rewards differ: 1, 2, or 3 and more), with the breaks, the break
rate's Wilson 95% interval and the median and 90th percentile of the approx-KL the update moved
the policy (``train/approx_kl_after_update``); Fisher's exact test (two-sided) compares the
lone-group updates' break rate with that of the others. Beside the table, for every collapse
after learning (:func:`benchmarks.collapse.warning.drop_step`), the signalling groups of the
update just before its drop step.

``max_success`` (exclusive) and ``after_success`` select a band instead: e.g. the updates a policy
that has learned takes from its batches below saturation (``--min-success 0.5 --max-success 0.9
--after-success 0.9``: batches with success in [0.5, 0.9) after the run's first batch at 0.9 or
more), which is what remains when the trainer drops the saturated ones (``max_signal_success``).
``max_step`` reads each run's first steps only, as if it had stopped there (an update at step
``max_step`` has no next step and is not counted): runs of different lengths compared over the
same window.

What the update changed (the ``kinds`` part): the teacher-forced probe (gold trajectories of
evaluation tasks, logged at every step before its update) read at the update's step and at the
next one gives, per update, the changes of :data:`PROBE_CHANGES`: how far the probability of a
gold control token fell (the largest fall over the control tokens), how far the illegal
control-token mass and p(end-of-turn | ``<tool_call>``) rose, and how far the gold content tokens'
probability fell. Per (setting, arm), for each change: its AUROC for telling the breaking updates
from the others (the probability that a breaking update's change exceeds a non-breaking one's,
ties counting half) and how many breaking updates exceed every non-breaking one. Each breaking
update is then of the *control* kind if one of the three control changes exceeds every
non-breaking update's, else of the *content* kind if its content change does, else *neither*.

Whether a break is *foreshadowed* (the ``foreshadowing`` part, with ``lead``): each candidate
warning signal of :data:`benchmarks.collapse.warning.SIGNALS`, as the warning scorer's score (log
ratio to its recent median, in its declared direction), read ``lead − 1`` steps before the update's
step, i.e. ``lead`` steps before the next step, the first batch sampled from the updated policy
(``lead=2``: the last step at which an alarm meets the warning bar's 2 steps). Per (setting, arm)
and signal: the AUROC for telling breaking updates from the others with a bootstrap 95% interval
over runs (updates of one run are not independent), and the per-update recall at a 1% alarm rate
(the share of breaking updates above the 99th percentile of the others' scores). The update's own
approx-KL (:data:`POSITIVE_CONTROL`; measured after the update, no warning) shows what a signal that
separates them looks like. And the break rate by the update's index among the run's saturated
updates (:data:`HAZARD_BINS`), with a Fisher test of the first ten against the later ones: a rate
that does not rise as saturated updates accumulate is a hazard without a build-up to warn of.

This is an observational reading of the logs, not an experiment: which updates come with which
batches is not assigned at random (lone-group updates come later in a run, on a more saturated
policy).

Usage::

    python -m benchmarks.collapse.updates --out DIR \\
        --setting "lr 2e-4=search/base_sft_lr2e-4,search/min_signal_groups" \\
        --setting "lr 5e-4=search/base_sft_lr5e-4,search/base_sft_lr5e-4_s4" \\
        [--min-success 0.9] [--max-success HIGH] [--after-success LEARNED] [--broke-below 0.5] [--max-step N] \\
        [--lead 2 [--resamples 2000] [--seed 0]]

writes ``updates.md`` and ``updates.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import statistics
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from baselines.train.guards import CONTROL_CHANGES, PROBE_CHANGES, exceeded, probe_changes
from benchmarks.collapse.controls import fisher_p
from benchmarks.collapse.phase import parse_setting
from benchmarks.collapse.report import _num, first_steps, load_distinct
from benchmarks.collapse.warning import SIGNALS, Protocol, idle, run_drop, run_scores
from toolgym.stats import wilson_interval

BINS: tuple[str, ...] = ("1", "2", "3+")
"""The signalling-group classes of the table."""

POSITIVE_CONTROL = "approx. KL of the update itself (after it; positive control, no warning)"
"""The foreshadowing table's control row: the update's own ``train/approx_kl_after_update``."""

HAZARD_BINS: tuple[tuple[int, float], ...] = ((1, 5), (6, 10), (11, 20), (21, math.inf))
"""Index ranges (1-based, inclusive) of a run's saturated updates for the break-rate-by-index table."""

ALARM_RATE = 0.01
"""The foreshadowing table's recall is read at this share of non-breaking updates alarmed."""


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a positive's value > a negative's), ties counting half (``nan`` without both kinds)."""
    pos, neg = _known(positives), _known(negatives)
    if not pos or not neg:
        return math.nan
    wins = sum(bisect.bisect_left(neg, p) + 0.5 * (bisect.bisect_right(neg, p) - bisect.bisect_left(neg, p)) for p in pos)
    return wins / (len(pos) * len(neg))


def break_kinds(updates: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``kinds`` record of one (setting, arm): per change its AUROC and the breaking updates
    above every non-breaking one, and the kind of each breaking update (module docstring)."""
    broke = [u for u in updates if u["broke"]]
    kept = [u for u in updates if not u["broke"]]
    tops = {name: max(_known([u[name] for u in kept]), default=math.nan) for name in PROBE_CHANGES}
    changes = {}
    for name in PROBE_CHANGES:
        values = [u[name] for u in broke]
        changes[name] = {"auroc": auroc(values, [u[name] for u in kept]), "kept_max": tops[name],
                         "broke_median": _median(values),
                         "broke_above_kept": sum(v > tops[name] for v in values if not math.isnan(tops[name]))}
    kinds = []
    for u in broke:
        above = exceeded(u, tops)
        kind = "control" if any(n in CONTROL_CHANGES for n in above) else "content" if "content_fall" in above else "neither"
        kinds.append({"step": u["step"], "run": u.get("run"), "kind": kind, "above": above})
    return {"updates": len(updates), "broke": len(broke), "changes": changes, "breaks": kinds,
            "counts": {k: sum(b["kind"] == k for b in kinds) for k in ("control", "content", "neither")}}


def signalling_groups(row: dict[str, Any], groups: int) -> int | None:
    """The number of groups of the step's batch whose rewards differ (``None``: not logged).

    Runs logged before ``train/signal_groups`` existed have only ``train/zero_adv_group_frac``;
    for them the count is ``groups × (1 − frac)``, with ``groups`` the batch's number of groups.

    Raises:
        ValueError: if that product is not a whole number (``groups`` is not the runs' count).
    """
    logged = _num(row.get("train/signal_groups"))
    if not math.isnan(logged):
        return round(logged)
    frac = _num(row.get("train/zero_adv_group_frac"))
    if math.isnan(frac):
        return None
    count = groups * (1.0 - frac)
    if abs(count - round(count)) > 1e-6:
        raise ValueError(f"train/zero_adv_group_frac={frac} at step {row.get('step')} is not a multiple of 1/{groups}; "
                         "pass the runs' number of groups per step with --groups.")
    return round(count)


def signal_bin(count: int) -> str:
    """The table's class of ``count`` signalling groups (``count ≥ 1``)."""
    return str(count) if count < 3 else "3+"


def saturated_updates(rows: Sequence[dict[str, Any]], *, min_success: float, broke_below: float,
                      groups: int, max_success: float = math.inf,
                      after_success: float | None = None) -> list[dict[str, Any]]:
    """The updates of one run taken from a batch with training success in ``[min_success,
    max_success)`` and followed by a logged next step: ``{"step", "signal_groups", "broke",
    "success", "next_success", "approx_kl_after_update"}`` each (``rows`` sorted by step). With
    ``after_success``, only the updates from the run's first batch with success at least that on."""
    out = []
    learned = after_success is None
    for row, nxt in pairwise(rows):
        success = _num(row.get("train/success"))
        learned = learned or success >= after_success
        if (int(nxt["step"]) != int(row["step"]) + 1 or idle(row) or not learned
                or not min_success <= success < max_success):
            continue
        count = signalling_groups(row, groups)
        if not count or _num(row.get("train/signal_dropped")) > 0:
            continue  # no policy-gradient signal, or the trainer dropped it (min_signal_groups)
        next_success = _num(nxt.get("train/success"))
        out.append({"step": int(row["step"]), "signal_groups": count, "broke": next_success < broke_below,
                    "success": success, "next_success": next_success,
                    "approx_kl_after_update": _num(row.get("train/approx_kl_after_update")), **probe_changes(row, nxt)})
    return out


def _known(values: Sequence[float]) -> list[float]:
    return sorted(v for v in values if not math.isnan(v))


def _median(values: Sequence[float]) -> float:
    vals = _known(values)
    return statistics.median(vals) if vals else math.nan


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (the value below which a share ``q`` of the others lie; ``nan`` for none)."""
    vals = _known(values)
    return vals[min(len(vals) - 1, int(q * len(vals)))] if vals else math.nan


def _p90(values: Sequence[float]) -> float:
    return _quantile(values, 0.9)


def signal_scores(rows: Sequence[dict[str, Any]], p: Protocol) -> dict[str, dict[int, float]]:
    """Every signal of :data:`SIGNALS` of one run (``rows`` sorted by step) as the warning scorer
    scores it: ``{signal: {step: score}}``, NaN where there is no score."""
    return {name: dict(zip(*run_scores(rows, column, direction, p), strict=True))
            for name, (column, direction) in SIGNALS.items()}


def foreshadow(updates: Sequence[dict[str, Any]], *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The foreshadowing record of one (setting, arm): per signal of the updates' ``"before"``
    scores (and :data:`POSITIVE_CONTROL`), the breaking and other updates it scores, the AUROC, its
    bootstrap 95% interval over runs (``resamples`` resamples of the runs with replacement,
    ``random.Random(seed)``; a resample without both kinds is redrawn, not counted) and the recall
    at :data:`ALARM_RATE`; and the break rate by the update's index in its run (:data:`HAZARD_BINS`).
    Each update needs ``"run"``, ``"index"``, ``"broke"``, ``"approx_kl_after_update"`` and
    ``"before"`` (``{signal: score}``)."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for u in updates:
        by_run.setdefault(u["run"], []).append(u)
    runs = sorted(by_run)
    names = list(SIGNALS) + [POSITIVE_CONTROL]

    def value(u: dict[str, Any], name: str) -> float:
        return u["approx_kl_after_update"] if name == POSITIVE_CONTROL else u["before"].get(name, math.nan)

    def split(group: Sequence[dict[str, Any]], name: str) -> tuple[list[float], list[float]]:
        return ([value(u, name) for u in group if u["broke"]], [value(u, name) for u in group if not u["broke"]])

    rng = random.Random(seed)
    signals = {}
    for name in names:
        broke, kept = split(updates, name)
        if not _known(broke) or not _known(kept):
            signals[name] = {"broke": len(_known(broke)), "kept": len(_known(kept)), "auroc": math.nan,
                             "ci_low": math.nan, "ci_high": math.nan, "recall_at_alarm_rate": math.nan}
            continue
        boot: list[float] = []
        draws = 0
        while len(boot) < resamples and draws < 20 * resamples:
            draws += 1
            sample = [u for run in (rng.choice(runs) for _ in runs) for u in by_run[run]]
            a = auroc(*split(sample, name))
            if not math.isnan(a):
                boot.append(a)
        boot.sort()
        top = _quantile(kept, 1.0 - ALARM_RATE)
        signals[name] = {"broke": len(_known(broke)), "kept": len(_known(kept)), "auroc": auroc(broke, kept),
                         "ci_low": boot[int(0.025 * (len(boot) - 1))] if boot else math.nan,
                         "ci_high": boot[int(math.ceil(0.975 * (len(boot) - 1)))] if boot else math.nan,
                         "recall_at_alarm_rate": sum(v > top for v in _known(broke)) / len(_known(broke))}
    hazard = []
    for low, high in HAZARD_BINS:
        cls = [u for u in updates if low <= u["index"] <= high]
        k, n = sum(u["broke"] for u in cls), len(cls)
        ci = wilson_interval(k, n)
        hazard.append({"first": low, "last": None if math.isinf(high) else int(high), "updates": n, "broke": k,
                       "rate": k / n if n else math.nan, "ci_low": ci[0], "ci_high": ci[1]})
    early = [u for u in updates if u["index"] <= 10]
    late = [u for u in updates if u["index"] > 10]
    fisher = (fisher_p(sum(u["broke"] for u in early), len(early), sum(u["broke"] for u in late), len(late))
              if early and late else math.nan)
    return {"updates": len(updates), "runs": len(runs), "signals": signals, "hazard": hazard,
            "fisher_p_first10_vs_later": fisher}


def update_table(settings: Sequence[tuple[str, list[Path]]], *, min_success: float = 0.9, broke_below: float = 0.5,
                 groups: int = 8, protocol: Protocol | None = None, max_success: float = math.inf,
                 after_success: float | None = None, max_step: int | None = None, lead: int | None = None,
                 resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per (setting, arm): the saturated updates (or those of the band ``[min_success,
    max_success)``, from the first batch at ``after_success`` on) by signalling-group class, and the breaking
    update of each collapse after learning (see the module docstring); with ``max_step``, on each
    run's steps ≤ ``max_step`` only (collapses too).

    Returns:
        ``{"rows": [...], "kinds": [...], "collapses": [...]}``: a row per (setting, arm, class) with ``updates``,
        ``broke``, ``rate``, ``ci_low``/``ci_high``, ``kl_median``/``kl_p90`` and, on the class
        ``"1"``, ``fisher_p_lone_vs_rest``; a :func:`break_kinds` record per (setting, arm); a
        collapse record per collapsing run with its drop step and the signalling groups of the
        update before it; with ``lead``, also ``"foreshadowing"``: a :func:`foreshadow` record per
        (setting, arm), each update's signals read ``lead − 1`` steps before its step.

    Raises:
        ValueError: if two directories of a setting hold the same run, on a bad group count, or if
            ``lead`` is below 1.
    """
    if lead is not None and lead < 1:
        raise ValueError(f"lead must be ≥ 1 (steps before the first batch sampled after the update), got {lead}.")
    p = protocol or Protocol()
    rows: list[dict[str, Any]] = []
    kinds: list[dict[str, Any]] = []
    collapses: list[dict[str, Any]] = []
    foreshadowing: list[dict[str, Any]] = []
    for label, dirs in settings:
        by_arm: dict[str, list[dict[str, Any]]] = {}
        for directory, (steps_by_run, runs, _) in load_distinct(dirs):
            for summary in runs:
                run_rows = first_steps(steps_by_run.get(summary["run"], []), max_step)
                updates = saturated_updates(run_rows, min_success=min_success, broke_below=broke_below, groups=groups,
                                            max_success=max_success, after_success=after_success)
                run = f"{directory.name}/{summary['run']}"
                if lead is not None:
                    by_signal = signal_scores(run_rows, p)
                    for index, u in enumerate(updates, start=1):
                        u["index"] = index
                        u["before"] = {name: by_step.get(u["step"] + 1 - lead, math.nan)
                                       for name, by_step in by_signal.items()}
                by_arm.setdefault(summary["arm"], []).extend({**u, "run": run} for u in updates)
                drop = run_drop(run_rows, p)
                if drop is not None:
                    before = next((r for r in run_rows if int(r["step"]) == drop - 1), None)
                    collapses.append({"setting": label, "arm": summary["arm"], "run": run,
                                      "drop": drop, "signal_groups_before": None if before is None
                                      else signalling_groups(before, groups)})
        for arm in sorted(by_arm, key=lambda a: (a != "none", a)):
            updates = by_arm[arm]
            kinds.append({"setting": label, "arm": arm, **break_kinds(updates)})
            if lead is not None:
                foreshadowing.append({"setting": label, "arm": arm, **foreshadow(updates, resamples=resamples, seed=seed)})
            lone = [u for u in updates if u["signal_groups"] == 1]
            rest = [u for u in updates if u["signal_groups"] > 1]
            for name in BINS:
                cls = [u for u in updates if signal_bin(u["signal_groups"]) == name]
                k, n = sum(u["broke"] for u in cls), len(cls)
                low, high = wilson_interval(k, n)
                kls = [u["approx_kl_after_update"] for u in cls]
                row = {"setting": label, "arm": arm, "signal_groups": name, "updates": n, "broke": k,
                       "rate": k / n if n else math.nan, "ci_low": low, "ci_high": high,
                       "kl_median": _median(kls), "kl_p90": _p90(kls)}
                if name == "1":
                    row["fisher_p_lone_vs_rest"] = (fisher_p(sum(u["broke"] for u in lone), len(lone),
                                                             sum(u["broke"] for u in rest), len(rest))
                                                    if lone and rest else math.nan)
                rows.append(row)
    return {"min_success": min_success, "max_success": None if math.isinf(max_success) else max_success,
            "after_success": after_success, "broke_below": broke_below, "groups": groups, "max_step": max_step,
            "rows": rows, "kinds": kinds, "collapses": collapses,
            **({"lead": lead, "resamples": resamples, "seed": seed, "foreshadowing": foreshadowing}
               if lead is not None else {})}


def _f(x: float, fmt: str) -> str:
    return "–" if math.isnan(x) else format(x, fmt)


def markdown(result: dict[str, Any]) -> str:
    """The table and the collapses' breaking updates as Markdown."""
    band = f"≥ {result['min_success']:g}"
    if result.get("max_success") is not None:
        band += f" and < {result['max_success']:g}"
    if result.get("after_success") is not None:
        band += f", from the run's first batch at ≥ {result['after_success']:g} on"
    if result.get("max_step") is not None:
        band += f", in each run's first {result['max_step']} steps"
    lines = [f"Updates taken from a batch with training success {band}, by the number of groups "
             f"whose rewards differ; *broke*: the next step's training success below {result['broke_below']:g}. "
             "Wilson 95% intervals; approx-KL: how far the update moved the policy on its own batch; Fisher: "
             "two-sided exact test of the lone-group updates' break rate against the others'. Observational: "
             "which batch an update has is not assigned at random.", "",
             "| setting / arm | signalling groups | updates | broke | rate [95% CI] | approx-KL median | approx-KL p90 "
             "| Fisher p (1 vs rest) |", "|---|---|---:|---:|---|---:|---:|---:|"]
    for r in result["rows"]:
        fisher = _f(r.get("fisher_p_lone_vs_rest", math.nan), ".3g") if r["signal_groups"] == "1" else ""
        rate = "–" if not r["updates"] else f"{r['rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        lines.append(f"| {r['setting']} / {r['arm']} | {r['signal_groups']} | {r['updates']} | {r['broke']} | {rate} | "
                     f"{_f(r['kl_median'], '.4f')} | {_f(r['kl_p90'], '.4f')} | {fisher} |")
    lines += ["", "What the updates changed on the teacher-forced probe (gold trajectories of evaluation tasks), "
              "the next step's value against the update's step's: AUROC for telling the breaking updates from the "
              "others, the breaking updates above every non-breaking one, and the kind of each break (control: a "
              "control change above every non-breaking update's; content: else the content change; else neither).", "",
              "| setting / arm | updates (broke) | " + " | ".join(PROBE_CHANGES.values()) + " | breaks: control / content / neither |",
              "|---|---:|" + "---|" * len(PROBE_CHANGES) + "---|"]
    for k in result.get("kinds", []):
        cells = [f"AUROC {_f(c['auroc'], '.2f')}, {c['broke_above_kept']} above" for c in k["changes"].values()]
        counts = k["counts"]
        lines.append(f"| {k['setting']} / {k['arm']} | {k['updates']} ({k['broke']}) | " + " | ".join(cells)
                     + f" | {counts['control']} / {counts['content']} / {counts['neither']} |")
    if "foreshadowing" in result:
        lines += foreshadowing_markdown(result)
    lines += ["", "Collapses after learning (scoring version 3) and the signalling groups of the update before the drop:", ""]
    if not result["collapses"]:
        lines.append("none")
    for c in result["collapses"]:
        groups = "not logged" if c["signal_groups_before"] is None else str(c["signal_groups_before"])
        lines.append(f"* {c['setting']} / {c['arm']}: `{c['run']}`, drop at step {c['drop']}, "
                     f"update of step {c['drop'] - 1}: {groups}")
    return "\n".join(lines) + "\n"


def foreshadowing_markdown(result: dict[str, Any]) -> list[str]:
    """The foreshadowing tables' lines (``result`` from :func:`update_table` with ``lead``)."""
    lead = result["lead"]
    lines = ["", f"Is a break foreshadowed? Each warning signal's score (scoring version 3: log ratio to the median "
             f"of the previous steps, in the signal's declared direction) {lead - 1} step(s) before the update's "
             f"step ({lead} before the first batch sampled after it): AUROC for telling breaking updates from the "
             f"others, with a bootstrap 95% interval over runs ({result['resamples']} resamples, seed "
             f"{result['seed']}), and the share of breaking updates above the {100 * (1 - ALARM_RATE):g}th "
             "percentile of the others' scores (the per-update recall at a "
             f"{100 * ALARM_RATE:g}% alarm rate). The last row is no warning: the update's own approx-KL, "
             "measured after it.", ""]
    for f in result["foreshadowing"]:
        lines += [f"**{f['setting']} / {f['arm']}** ({f['updates']} updates in {f['runs']} runs)", "",
                  "| signal | breaking / other updates scored | AUROC [95% CI] | recall at "
                  f"{100 * ALARM_RATE:g}% alarms |", "|---|---:|---|---:|"]
        for name, c in f["signals"].items():
            lines.append(f"| {name} | {c['broke']} / {c['kept']} | {_f(c['auroc'], '.2f')} "
                         f"[{_f(c['ci_low'], '.2f')}, {_f(c['ci_high'], '.2f')}] | {_f(c['recall_at_alarm_rate'], '.2f')} |")
        lines += ["", "| saturated updates, index in the run | updates | broke | rate [95% CI] |", "|---|---:|---:|---|"]
        for h in f["hazard"]:
            span = f"{h['first']}–{h['last']}" if h["last"] is not None else f"{h['first']} and later"
            rate = "–" if not h["updates"] else f"{h['rate']:.3f} [{h['ci_low']:.3f}, {h['ci_high']:.3f}]"
            lines.append(f"| {span} | {h['updates']} | {h['broke']} | {rate} |")
        lines += ["", f"Fisher exact test (two-sided), break rate of the first ten saturated updates of a run against "
                  f"the later ones: p = {_f(f['fisher_p_first10_vs_later'], '.3g')}.", ""]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.updates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Where updates.md and updates.json go.")
    parser.add_argument("--setting", action="append", required=True, metavar="LABEL=DIR[,DIR...]",
                        help="A setting and its results directories; repeatable.")
    parser.add_argument("--min-success", type=float, default=0.9,
                        help="Count updates from batches with at least this training success (default 0.9).")
    parser.add_argument("--max-success", type=float, default=math.inf,
                        help="... and below this (default: no bound).")
    parser.add_argument("--after-success", type=float, default=None,
                        help="Only from the run's first batch with at least this training success on (default: all).")
    parser.add_argument("--broke-below", type=float, default=0.5,
                        help="An update broke the policy when the next step's success is below this (default 0.5).")
    parser.add_argument("--groups", type=int, default=8,
                        help="Groups per step, for runs logged before train/signal_groups existed (default 8).")
    parser.add_argument("--max-step", type=int, default=None,
                        help="Read each run's first N steps only (default: whole runs).")
    parser.add_argument("--lead", type=int, default=None,
                        help="Also measure whether breaks are foreshadowed: the warning signals' scores this many steps "
                             "before the first batch sampled after each update (2: the warning bar's lead; default: off).")
    parser.add_argument("--resamples", type=int, default=2000,
                        help="Bootstrap resamples of the runs for the foreshadowing AUROCs (default 2000).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the bootstrap (default 0).")
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error(f"--resamples must be ≥ 1, got {args.resamples}.")
    for name, value in (("--min-success", args.min_success), ("--broke-below", args.broke_below),
                        ("--after-success", 0.0 if args.after_success is None else args.after_success)):
        if not 0.0 <= value <= 1.0:
            parser.error(f"{name} must be in [0, 1], got {value}.")
    if not args.max_success > args.min_success:
        parser.error(f"--max-success must be above --min-success={args.min_success:g}, got {args.max_success:g}.")
    if args.groups < 1:
        parser.error(f"--groups must be ≥ 1, got {args.groups}.")
    if args.max_step is not None and args.max_step < 2:
        parser.error(f"--max-step must be ≥ 2 (an update is read by the step after it), got {args.max_step}.")
    try:
        result = update_table([parse_setting(s) for s in args.setting], min_success=args.min_success,
                              broke_below=args.broke_below, groups=args.groups, max_success=args.max_success,
                              after_success=args.after_success, max_step=args.max_step, lead=args.lead,
                              resamples=args.resamples, seed=args.seed)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    md = markdown(result)
    (args.out / "updates.md").write_text(md, encoding="utf-8")
    (args.out / "updates.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
