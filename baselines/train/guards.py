"""What an update changed on a teacher-forced probe of gold trajectories. Torch-free.

The probe's statistics (:func:`baselines.train.diagnostics.control_prob_stats`: ``hit_mean/c``,
``illegal_total``, ``after_open_eot``, ``content_p``) read before and after an update give four
changes, each in probability units and positive when the update moved the policy away from the
gold trajectories' structure:

* ``control_hit_fall`` -- the largest fall, over the control tokens ``c``, of the mean
  p(c) where the gold trajectory has ``c`` (a ``</tool_call>`` no longer closed, ...);
* ``illegal_rise`` -- the rise of the mass on control tokens where the turn grammar forbids them;
* ``after_open_eot_rise`` -- the rise of p(end-of-turn) right after ``<tool_call>``;
* ``content_fall`` -- the fall of the mean p(gold content token).

The collapse study reads them from its logs (``benchmarks/collapse/updates.py``: which changes
the updates that broke a policy made); the RL trainer's ``structure_guard`` undoes an update whose
change on training-task expert trajectories exceeds a threshold, the change read from the last
update kept or from the step's start (:data:`GUARD_REFERENCES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PROBE_CHANGES: dict[str, str] = {
    "control_hit_fall": "fall of p(gold control token), the largest over the control tokens",
    "illegal_rise": "rise of the illegal control-token mass",
    "after_open_eot_rise": "rise of p(end-of-turn | <tool_call>)",
    "content_fall": "fall of p(gold content token)",
}
"""The changes across an update, by name (see the module docstring)."""

GUARD_REFERENCES: dict[str, str] = {
    "update": "the readings after the step's last update kept: each update judged alone",
    "step": "the readings at the step's start: the step's updates judged together",
}
"""What the RL trainer's guards compare an update's readings with (``RLConfig.guard_reference``)."""

CONTROL_CHANGES: tuple[str, ...] = ("control_hit_fall", "illegal_rise", "after_open_eot_rise")
"""The changes that concern the control tokens."""

HIT_PREFIX = "hit_mean/"
"""The per-control-token statistic ``control_hit_fall`` reads (after the probe's metric prefix)."""


def _value(stats: Mapping[str, Any], key: str) -> float:
    try:
        return float(stats.get(key, math.nan))
    except (TypeError, ValueError):  # an empty CSV cell
        return math.nan


def probe_changes(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "diag/probe/") -> dict[str, float]:
    """:data:`PROBE_CHANGES` from the probe statistics ``before`` and ``after`` an update (keys
    ``prefix + name``; values numbers or numeric strings); ``nan`` where one was not measured."""
    def delta(name: str) -> float:
        return _value(after, prefix + name) - _value(before, prefix + name)

    hits = [key[len(prefix):] for key in before if key.startswith(prefix + HIT_PREFIX)]
    falls = [f for f in (-delta(h) for h in hits) if not math.isnan(f)]
    return {"control_hit_fall": max(falls) if falls else math.nan,
            "illegal_rise": delta("illegal_total"),
            "after_open_eot_rise": delta("after_open_eot"),
            "content_fall": -delta("content_p")}


def exceeded(changes: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """The names whose change is above its threshold (a ``nan`` change exceeds nothing)."""
    return [name for name, limit in thresholds.items() if changes.get(name, math.nan) > limit]
