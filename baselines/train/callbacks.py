"""Callbacks on the RL trainer (Stable-Baselines3-style): what runs around an RL step without
being part of it.

:meth:`RLTrainer.train_step <baselines.train.rl.RLTrainer.train_step>` does the RL step itself
(rollouts, advantages, updates) and then calls, in order, every callback's :meth:`Callback.on_step`,
which may add metrics to the step's record; after the record is logged, :meth:`Callback.on_step_end`
may save or stop the run. The trainer's default list, in this order:

1. :class:`Evaluation` -- the RL policy on the fixed evaluation tasks every ``eval_every`` steps;
2. a supervision term's own callbacks (``interleaved_sft``: :class:`InterleavedSFT`, an SFT phase
   after the evaluation, so the evaluation measures the RL policy);
3. :class:`SpikeWarning` -- the relative spike detector on the probe's illegal control mass;
4. :class:`EarlyWarning` -- when ``warning_metric`` is set: an alarm when that logged metric
   jumps against its recent median (:mod:`baselines.train.early_warning`);
5. :class:`CollapseWatch` -- the collapse detector on training success (it skips a step sampled
   right after an SFT phase), and ``stop_on_collapse``;
6. :class:`Checkpoint` -- ``save_every``.

User callbacks (``RLTrainer(config, callbacks=[...])``) run after the defaults' ``on_step`` and
before the checkpoint. A callback's :meth:`Callback.state_dict` is saved in every checkpoint
under its :attr:`Callback.name` and restored on resume, so a resumed run continues exactly.

Example::

    class PrintSuccess(Callback):
        name = "print_success"

        def on_step(self, trainer, metrics):
            print(trainer.step, metrics["train/success"])
            return {}

    RLTrainer(cfg, callbacks=[PrintSuccess()]).train()
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any

from baselines.train.diagnostics import CollapseDetector, SpikeDetector
from baselines.train.early_warning import RelativeScore, WarningRule

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from baselines.train.rl import RLTrainer


class Callback:
    """Base class: every hook is a no-op. Subclasses set :attr:`name` (unique in a trainer)."""

    name: str = "callback"

    def on_train_start(self, trainer: RLTrainer) -> None:
        """Before the first step of :meth:`RLTrainer.train` (also after a resume)."""

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        """After the step's RL update (``trainer.step`` is the step's number); returns metrics to
        add to the step's record (``metrics`` holds those of the step so far)."""
        return {}

    def on_step_end(self, trainer: RLTrainer, metrics: dict[str, float]) -> str | None:
        """After the step's record is logged; return a reason to stop training, or ``None``."""
        return None

    def on_train_end(self, trainer: RLTrainer) -> None:
        """After the last step (before the final checkpoint)."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep to resume exactly (default: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""


class Evaluation(Callback):
    """The RL policy on the fixed evaluation tasks every ``eval_every`` steps (``eval/…``)."""

    name = "evaluation"

    def __init__(self, every: int) -> None:
        self.every = every

    def due(self, trainer: RLTrainer) -> bool:
        """Whether this step is evaluated (on the main process only)."""
        return bool(self.every and trainer.step % self.every == 0 and trainer.dist.is_main)

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        """Evaluate the RL policy if due."""
        return trainer._evaluate("eval") if self.due(trainer) else {}


class InterleavedSFT(Callback):
    """``interleaved_sft``: every ``interleave_every`` steps, an SFT phase on the expert
    trajectories of the tasks whose reward stayed 0 throughout the last ``interleave_window``
    steps; evaluated again as ``eval_after_sft/…`` when the step is evaluated. Never after the
    last RL step (the run's final policy stays the RL policy). Logs ``train/after_sft_phase``
    (1 for a step sampled right after a phase) for :class:`CollapseWatch`."""

    name = "interleaved_sft"

    def __init__(self, trainer: RLTrainer) -> None:
        sup = trainer.cfg.supervision
        self.window: deque[dict[str, float]] = deque(maxlen=sup.interleave_window)
        self.after_sft = False  # the previous step ran a phase

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        """Record the step's rewards per task; run the phase if due."""
        cfg = trainer.cfg
        record: dict[str, float] = {}
        for e in trainer.last_episodes:
            if not e.is_expert:
                record[e.task_id] = max(record.get(e.task_id, 0.0), e.reward)
        self.window.append(record)
        out: dict[str, float] = {}
        due = trainer.step % cfg.supervision.interleave_every == 0
        if due and trainer.step >= cfg.steps:
            out["train/interleaved_sft_skipped"] = 1.0
        elif due:
            out.update(trainer.interleaved_sft(self.window))
            if trainer.evaluation.due(trainer):
                out.update(trainer._evaluate("eval_after_sft"))
        after, self.after_sft = self.after_sft, bool(due and trainer.step < cfg.steps)
        out["train/after_sft_phase"] = float(after)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The reward window and whether the last step ran a phase."""
        return {"window": list(self.window), "after_sft": self.after_sft}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.window = deque(state["window"], maxlen=self.window.maxlen)
        self.after_sft = bool(state.get("after_sft", False))


class SpikeWarning(Callback):
    """The relative spike detector (:class:`~baselines.train.diagnostics.SpikeDetector`) on the
    probe's illegal control-token mass (``diag/spike…``)."""

    name = "spikes"

    def __init__(self, detector: SpikeDetector) -> None:
        self.detector = detector

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        """Feed the step's probe statistics."""
        return self.detector.update(
            trainer.step, metrics["diag/probe/illegal_total"], metrics.get("diag/probe/after_open_eot", math.nan)
        )

    def state_dict(self) -> dict[str, Any]:
        """The detector's state."""
        return self.detector.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the detector's state."""
        self.detector.load_state_dict(state)


class EarlyWarning(Callback):
    """An early-warning rule (:class:`~baselines.train.early_warning.WarningRule`) on one of the
    step's logged metrics: ``diag/warning`` (1 at an alarm step), ``diag/warning_score`` and
    ``diag/warning_first_step`` (-1 before the first alarm); the first alarm is also logged as a
    warning. A step without the metric gets no score."""

    name = "warning"

    def __init__(self, rule: WarningRule) -> None:
        self.rule = rule
        self.scorer = RelativeScore(rule.direction, rule.window)
        self.first_step: int | None = None

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        """Score the step's value of the rule's metric."""
        value = float(metrics.get(self.rule.metric, math.nan))
        score = self.scorer.push(value)
        alarm = not math.isnan(score) and score >= self.rule.threshold
        if alarm and self.first_step is None:
            self.first_step = trainer.step
            logger.warning(
                "Early warning at RL step %d: %s = %.3g, a log-ratio of %.2f against its median over the previous "
                "%d steps (threshold %.2f). In the collapse study such jumps came 2-10 steps before collapses; "
                "consider a lower lr or a supervisory signal.",
                trainer.step, self.rule.metric, value, score, self.rule.window, self.rule.threshold,
            )
        return {
            "diag/warning": float(alarm),
            "diag/warning_score": score,
            "diag/warning_first_step": float(self.first_step if self.first_step is not None else -1),
        }

    def state_dict(self) -> dict[str, Any]:
        """The scorer's history and the first alarm."""
        return {**self.scorer.state_dict(), "first_step": self.first_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.scorer.load_state_dict(state)
        self.first_step = state.get("first_step")


class CollapseWatch(Callback):
    """The collapse detector (:class:`~baselines.train.diagnostics.CollapseDetector`) on training
    success; a step sampled right after an SFT phase (``train/after_sft_phase``) is not fed, since
    the freshly fine-tuned policy's bump would reset its run of low steps. With ``stop`` the run
    stops once a collapse is detected."""

    name = "collapse"

    def __init__(self, detector: CollapseDetector, stop: bool = False) -> None:
        self.detector = detector
        self.stop = stop

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        """Feed the step's training success (unless it follows an SFT phase)."""
        if metrics.get("train/after_sft_phase", 0.0):
            return self.detector.status()
        return self.detector.update(trainer.step, metrics["train/success"])

    def on_step_end(self, trainer: RLTrainer, metrics: dict[str, float]) -> str | None:
        """Stop on a detected collapse if configured."""
        if self.stop and self.detector.collapsed:
            return f"collapse detected at step {self.detector.collapse_step}"
        return None

    def state_dict(self) -> dict[str, Any]:
        """The detector's state."""
        return self.detector.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the detector's state."""
        self.detector.load_state_dict(state)


class Checkpoint(Callback):
    """Save a checkpoint every ``every`` steps (main process)."""

    name = "checkpoint"

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step_end(self, trainer: RLTrainer, metrics: dict[str, float]) -> str | None:
        """Save if due."""
        if self.every and trainer.step % self.every == 0 and trainer.dist.is_main:
            trainer.save()
        return None


def check_names(callbacks: list[Callback]) -> None:
    """Raise ``ValueError`` if two callbacks share a name (their checkpoint states would clash)."""
    seen: set[str] = set()
    for cb in callbacks:
        if cb.name in seen:
            raise ValueError(f"Two trainer callbacks are named {cb.name!r}; give each a unique `name` (it keys its checkpoint state).")
        seen.add(cb.name)
