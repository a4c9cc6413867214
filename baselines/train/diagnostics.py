"""Collapse diagnostics: episode outcomes, control-token probabilities, spike and collapse detectors.

Metric names are fixed and namespaced so runs can be compared:

* ``train/…`` outcomes of the rollout batch and optimisation statistics;
* ``eval/…`` outcomes on the fixed evaluation tasks;
* ``diag/probe/…`` teacher-forced probe on fixed gold (oracle) trajectories;
* ``diag/onpolicy/…`` the same statistics on the rollout batch (targets = sampled tokens);
* ``diag/spike…``, ``diag/collapse…`` detector outputs.

Per control token ``c`` (names from :data:`baselines.llm.tokenizer.CONTROL_TOKEN_STRINGS`):

* ``hit_mean/c`` -- mean p(c) where the target is c (it belongs there);
* ``leak_mean/c``, ``leak_max/c`` -- p(c) at policy positions whose target is not c;
* ``illegal_mean/c``, ``illegal_max/c`` -- p(c) where the turn grammar makes c illegal (the
  reliable early warning: no false alarms when a healthy policy changes strategy);
* ``after_open_eot`` -- p(end-of-turn) right after ``<tool_call>``, the "open tag then stop"
  signature of the collapse; ``content_p`` -- p(target) at non-control targets (capability).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import torch

from baselines.llm.rollout import Episode
from baselines.train.batch import signal_groups
from toolgym.core.errors import INVALID_ACTION_CODES, ErrorCode

# the env's invalid-action codes define the format-error rate
FORMAT_ERROR_CODES = frozenset(c.value for c in INVALID_ACTION_CODES)
ERROR_CODES: tuple[str, ...] = tuple(c.value for c in ErrorCode)


def _f(x: torch.Tensor | float) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def episode_stats(episodes: Sequence[Episode], prefix: str) -> dict[str, float]:
    """Outcome metrics of a set of episodes.

    Returns ``{prefix}/success``, ``/reward``, ``/format_error_rate`` (episodes with at least one
    invalid action), ``/errors/<code>`` (share of turns with that error code, every code of
    :class:`toolgym.core.errors.ErrorCode` always present), ``/turns``, ``/gen_tokens`` (policy
    tokens per episode), ``/seq_len``, ``/context_overflow``.
    """
    n = max(len(episodes), 1)
    turns = sum(e.num_turns for e in episodes)
    codes = Counter(code for e in episodes for code in e.errors())
    out = {
        f"{prefix}/success": sum(e.success for e in episodes) / n,
        f"{prefix}/reward": sum(e.reward for e in episodes) / n,
        f"{prefix}/format_error_rate": sum(any(c in FORMAT_ERROR_CODES for c in e.errors()) for e in episodes) / n,
        f"{prefix}/turns": turns / n,
        f"{prefix}/gen_tokens": sum(e.num_generated for e in episodes) / n,
        f"{prefix}/seq_len": sum(len(e.input_ids) for e in episodes) / n,
        f"{prefix}/context_overflow": sum(e.stop_reason == "context_length" for e in episodes) / n,
    }
    for code in sorted(set(ERROR_CODES) | set(codes)):
        out[f"{prefix}/errors/{code}"] = codes.get(code, 0) / max(turns, 1)
    return out


def group_stats(rewards: torch.Tensor, groups: torch.Tensor, prefix: str = "train") -> dict[str, float]:
    """``/zero_adv_group_frac`` (groups whose rewards are all equal: no GRPO gradient),
    ``/signal_groups`` (the number of the others) and ``/group_reward_std`` (mean within-group std)."""
    ids = torch.unique(groups)
    stds = [float(rewards[groups == g].std(unbiased=False)) for g in ids]
    signal = signal_groups(rewards, groups)
    return {
        f"{prefix}/zero_adv_group_frac": (len(ids) - signal) / max(len(ids), 1),
        f"{prefix}/signal_groups": float(signal),
        f"{prefix}/group_reward_std": sum(stds) / max(len(stds), 1),
    }


def control_prob_stats(
    ctrl_probs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    illegal: torch.Tensor,
    after_open: torch.Tensor,
    control_names: Sequence[str],
    control_ids: Sequence[int],
    eot_name: str,
    prefix: str,
    target_probs: torch.Tensor | None = None,
) -> dict[str, float]:
    """Control-token probability statistics (see the module docstring).

    Args:
        ctrl_probs: ``[B, T, C]`` p(c | prefix) for each control token.
        targets: ``[B, T]`` target ids.
        mask: ``[B, T]`` policy positions.
        illegal: ``[B, T, C]`` grammar-illegal positions per control token.
        after_open: ``[B, T]`` positions right after ``<tool_call>``.
        control_names, control_ids: The ``C`` control tokens.
        eot_name: Name of the end-of-turn control token.
        prefix: e.g. ``"diag/probe"``.
        target_probs: ``[B, T]`` p(target); gives ``content_p`` at non-control targets.

    Returns:
        Metric dict; an empty selection gives ``nan`` for means and maxima.
    """
    out: dict[str, float] = {}
    pos = mask > 0
    leak_total = 0.0
    illegal_total = 0.0
    for k, (name, cid) in enumerate(zip(control_names, control_ids, strict=True)):
        p = ctrl_probs[..., k]
        hit = pos & (targets == cid)
        leak = pos & (targets != cid)
        bad = pos & illegal[..., k]
        out[f"{prefix}/hit_mean/{name}"] = _f(p[hit].mean()) if bool(hit.any()) else math.nan
        leak_mean = _f(p[leak].mean()) if bool(leak.any()) else math.nan
        out[f"{prefix}/leak_mean/{name}"] = leak_mean
        out[f"{prefix}/leak_max/{name}"] = _f(p[leak].max()) if bool(leak.any()) else math.nan
        illegal_mean = _f(p[bad].mean()) if bool(bad.any()) else math.nan
        out[f"{prefix}/illegal_mean/{name}"] = illegal_mean
        out[f"{prefix}/illegal_max/{name}"] = _f(p[bad].max()) if bool(bad.any()) else math.nan
        leak_total += 0.0 if math.isnan(leak_mean) else leak_mean
        illegal_total += 0.0 if math.isnan(illegal_mean) else illegal_mean
    out[f"{prefix}/leak_total"] = leak_total
    out[f"{prefix}/illegal_total"] = illegal_total
    eot = list(control_names).index(eot_name)
    sel = pos & after_open
    out[f"{prefix}/after_open_eot"] = _f(ctrl_probs[..., eot][sel].mean()) if bool(sel.any()) else math.nan
    if target_probs is not None:
        content = pos & ~torch.isin(targets, torch.as_tensor(list(control_ids), device=targets.device))
        out[f"{prefix}/content_p"] = _f(target_probs[content].mean()) if bool(content.any()) else math.nan
    return out


class SpikeDetector:
    """Flags control-token spikes in a series of grammar-illegal control-token mass (one value per
    step, e.g. the probe's ``illegal_total``). Both rules are relative to the run's own history,
    so a jump from 0.0005 to 0.01 counts although the mass stays small:

    * ratio: ``x_t > ratio × median(x_{t-window..t-1})`` (and above ``abs_floor``, 0 = none), or the
      after-open end-of-turn probability above ``after_open_threshold``;
    * z-score: ``log x_t - EMA_{t-1} > max(z × σ, log min_jump)``, with the EMA (β=0.9) and the
      standard deviation σ of ``log x`` over the last ``window`` steps (from the 4th step on).

    The defaults (ratio 10, z 5) are about the 99th percentile of the step-to-step values of the
    non-collapsing runs of the first collapse study (about one false alarm per 100 steps; see
    docs/training.md).
    """

    def __init__(
        self,
        *,
        ratio: float = 10.0,
        z: float = 5.0,
        min_jump: float = 5.0,
        window: int = 20,
        abs_floor: float = 0.0,
        after_open_threshold: float = 0.3,
        beta: float = 0.9,
    ) -> None:
        self.ratio = ratio
        self.z = z
        self.min_jump = min_jump
        self.window = window
        self.abs_floor = abs_floor
        self.after_open_threshold = after_open_threshold
        self.beta = beta
        self.ema: float | None = None
        self.values: deque[float] = deque(maxlen=window)
        self.history: deque[float] = deque(maxlen=window)
        self.first_threshold_step: int | None = None
        self.first_z_step: int | None = None

    def update(self, step: int, illegal: float, after_open: float = math.nan) -> dict[str, float]:
        """Feed one step's illegal control-token mass; returns ``diag/spike_ratio`` and
        ``diag/spike_z`` (0/1 flags of the two rules), ``diag/spike_ratio_value`` (x over the
        running median; nan at the first step), ``diag/spike_log_illegal`` and
        ``diag/spike_first_step`` (-1 until the first spike)."""
        if math.isnan(illegal):
            illegal = 0.0
        x = math.log(illegal + 1e-8)
        ratio_value = math.nan
        flag = False
        if self.values:
            base = statistics.median(self.values)
            ratio_value = illegal / max(base, 1e-8)
            flag = ratio_value > self.ratio and illegal > self.abs_floor
        flag |= (not math.isnan(after_open)) and after_open > self.after_open_threshold
        z_flag = False
        if self.ema is not None and len(self.history) >= 3:
            mean = sum(self.history) / len(self.history)
            sigma = math.sqrt(sum((h - mean) ** 2 for h in self.history) / len(self.history))
            z_flag = x - self.ema > max(self.z * sigma, math.log(self.min_jump))
        self.ema = x if self.ema is None else self.beta * self.ema + (1 - self.beta) * x
        self.history.append(x)
        self.values.append(illegal)
        if flag and self.first_threshold_step is None:
            self.first_threshold_step = step
        if z_flag and self.first_z_step is None:
            self.first_z_step = step
        first = [s for s in (self.first_threshold_step, self.first_z_step) if s is not None]
        return {
            "diag/spike_ratio": float(flag),
            "diag/spike_ratio_value": ratio_value,
            "diag/spike_z": float(z_flag),
            "diag/spike_log_illegal": x,
            "diag/spike_first_step": float(min(first)) if first else -1.0,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return {
            "values": list(self.values),
            "ema": self.ema,
            "history": list(self.history),
            "first_threshold_step": self.first_threshold_step,
            "first_z_step": self.first_z_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.values = deque(state["values"], maxlen=self.window)
        self.ema = state["ema"]
        self.history = deque(state["history"], maxlen=self.window)
        self.first_threshold_step = state["first_threshold_step"]
        self.first_z_step = state["first_z_step"]


class CollapseDetector:
    """Marks the step where success falls below ``frac`` × its running best and stays there for
    ``patience`` consecutive updates; the reported step is where that run began.

    The RL trainer feeds it the *training* success of every RL step (the rollouts of the step,
    sampled before its updates), not the periodic evaluations."""

    def __init__(self, frac: float = 0.5, patience: int = 10) -> None:
        self.frac = frac
        self.patience = patience
        self.best = -math.inf
        self.run_start: int | None = None
        self.run_length = 0
        self.collapse_step: int | None = None

    def update(self, step: int, success: float) -> dict[str, float]:
        """Feed one step's success; returns ``diag/collapse`` (1 once collapsed), ``diag/collapse_step``
        (-1 before), ``diag/best_success`` and ``diag/below_best_run``."""
        if success > self.best:
            self.best = success
        if self.best > 0 and success < self.frac * self.best:
            if self.run_start is None:
                self.run_start = step
            self.run_length += 1
            if self.run_length >= self.patience and self.collapse_step is None:
                self.collapse_step = self.run_start
        else:
            self.run_start, self.run_length = None, 0
        return self.status()

    def status(self) -> dict[str, float]:
        """The metrics of :meth:`update` without feeding a value (a step the detector skips)."""
        return {
            "diag/collapse": float(self.collapse_step is not None),
            "diag/collapse_step": float(self.collapse_step if self.collapse_step is not None else -1),
            "diag/best_success": self.best,
            "diag/below_best_run": float(self.run_length),
        }

    @property
    def collapsed(self) -> bool:
        """Whether collapse has been detected."""
        return self.collapse_step is not None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return dict(best=self.best, run_start=self.run_start, run_length=self.run_length, collapse_step=self.collapse_step)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.best = state["best"]
        self.run_start = state["run_start"]
        self.run_length = state["run_length"]
        self.collapse_step = state["collapse_step"]
