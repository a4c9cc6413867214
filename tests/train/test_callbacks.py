"""Trainer callbacks (evaluation, SFT phases, detectors, checkpoints, stop-on-collapse, user
callbacks) and the supervision terms as units whose hooks the trainer calls (issue 18)."""

from __future__ import annotations

import csv
import inspect
import re
from typing import Any

import pytest
import torch

from baselines.train import config as config_module
from baselines.train import rl, terms
from baselines.train.callbacks import (
    Callback,
    Checkpoint,
    CollapseWatch,
    Evaluation,
    InterleavedSFT,
    SpikeWarning,
)
from baselines.train.config import SupervisionConfig
from baselines.train.rl import RLTrainer
from tests.train.test_trainers import rl_config


class Recorder(Callback):
    """Counts steps, adds a metric, keeps a state, and stops after ``stop_at`` steps."""

    name = "recorder"

    def __init__(self, stop_at: int | None = None) -> None:
        self.seen: list[int] = []
        self.events: list[str] = []
        self.stop_at = stop_at

    def on_train_start(self, trainer: RLTrainer) -> None:
        self.events.append("start")

    def on_step(self, trainer: RLTrainer, metrics: dict[str, float]) -> dict[str, float]:
        assert "train/success" in metrics and "diag/spike_ratio" in metrics  # after the built-in detectors
        self.seen.append(trainer.step)
        return {"custom/steps_seen": float(len(self.seen))}

    def on_step_end(self, trainer: RLTrainer, metrics: dict[str, float]) -> str | None:
        self.events.append(f"end{trainer.step}")
        return "recorder says stop" if self.stop_at is not None and trainer.step >= self.stop_at else None

    def on_train_end(self, trainer: RLTrainer) -> None:
        self.events.append("finish")

    def state_dict(self) -> dict[str, Any]:
        return {"seen": list(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seen = list(state["seen"])


def test_default_callbacks_run_in_the_documented_order(sft_checkpoint, tmp_path) -> None:
    sup = SupervisionConfig(use=["interleaved_sft"])
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, supervision=sup, save_every=1, stop_on_collapse=True))
    kinds = [type(cb) for cb in trainer.callbacks]
    assert kinds == [Evaluation, InterleavedSFT, SpikeWarning, CollapseWatch, Checkpoint]
    plain = RLTrainer(rl_config(sft_checkpoint, tmp_path / "plain"))
    assert InterleavedSFT not in [type(cb) for cb in plain.callbacks]  # a term's callback only when it is on


def test_user_callback_adds_metrics_stops_the_run_and_resumes_with_its_state(sft_checkpoint, tmp_path) -> None:
    recorder = Recorder(stop_at=2)
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, steps=3, save_every=1), callbacks=[recorder])
    assert isinstance(trainer.callbacks[-1], Checkpoint) and trainer.callbacks[-2] is recorder
    summary = trainer.train()
    assert summary["stopped"] == "recorder says stop" and trainer.step == 2
    assert recorder.events == ["start", "end1", "end2", "finish"]
    assert [m["custom/steps_seen"] for m in trainer.history] == [1.0, 2.0]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["custom/steps_seen"] for r in rows] == ["1.0", "2.0"]
    # the checkpoint keeps the callback's state; a resumed run restores it before its first step
    again = Recorder()
    resumed = RLTrainer(rl_config(sft_checkpoint, tmp_path, steps=3, save_every=1), resume="auto", callbacks=[again])
    assert resumed.step == 2 and again.seen == [1, 2]
    resumed.train()
    assert again.seen == [1, 2, 3]


def test_two_callbacks_with_one_name_are_refused(sft_checkpoint, tmp_path) -> None:
    with pytest.raises(ValueError, match="Two trainer callbacks are named 'recorder'"):
        RLTrainer(rl_config(sft_checkpoint, tmp_path), callbacks=[Recorder(), Recorder()])


def test_stop_on_collapse_is_the_collapse_callback(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, steps=4, stop_on_collapse=True, collapse_patience=1))
    watch = next(cb for cb in trainer.callbacks if isinstance(cb, CollapseWatch))
    watch.detector.best = 2.0  # any success is now below half the best: collapsed after one step
    summary = trainer.train()
    assert trainer.step == 1 and summary["stopped"] == "collapse detected at step 1"


# --------------------------------------------------------------------------- terms as units
def test_the_trainer_and_the_loss_name_no_supervision_term() -> None:
    """rl.py dispatches through the terms' hooks: no ``enabled("<term>")`` switch is left in it."""
    source = inspect.getsource(rl)
    assert not re.findall(r"enabled\(\"[a-z_]+\"\)", source)


def test_a_new_term_is_one_class(sft_checkpoint, tmp_path, monkeypatch) -> None:
    """A term declared in one place reaches the config, the loss, its statistics and the advantages."""

    class Tilt(terms.Term):
        def advantages(self, adv: torch.Tensor, trainer: Any) -> torch.Tensor:
            return adv + 1.0

        def loss(self, ctx: Any) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
            value = ctx.logits.float().pow(2).mean()
            return 0.5 * value, {"tilt": value.detach()}

    tilt = Tilt("tilt", "test term", stats={"tilt": "plain"})
    monkeypatch.setattr(terms, "TERMS", (*terms.TERMS, tilt))
    monkeypatch.setattr(config_module, "SUPERVISIONS", (*config_module.SUPERVISIONS, "tilt"))
    base = RLTrainer(rl_config(sft_checkpoint, tmp_path / "base", eval_every=0))
    tilted = RLTrainer(rl_config(sft_checkpoint, tmp_path / "tilt", eval_every=0, supervision=SupervisionConfig(use=["tilt"])))
    episodes = base.collect(base.train_ids[:2])
    p_base, _ = base.prepare(episodes)
    p_tilt, _ = tilted.prepare(episodes)
    assert torch.equal(p_tilt.batch.advantages, p_base.batch.advantages + 1.0)
    with torch.no_grad():
        logits = rl.batch_logits(base.model, p_tilt.batch, 1.0)
    loss_base, _ = rl.rl_loss(logits, p_tilt, base.cfg, base.control_ids)
    loss_tilt, stats = rl.rl_loss(logits, p_tilt, tilted.cfg, tilted.control_ids)
    assert float(loss_tilt - loss_base) == pytest.approx(0.5 * float(stats["tilt"]), rel=1e-5)


def test_only_a_hint_giving_term_makes_the_trainer_run_the_oracle(sft_checkpoint, tmp_path) -> None:
    """Looking up a task's expert trajectory runs the oracle: without ``hint`` no request needs it."""
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / "plain", supervision=SupervisionConfig(use=["control_clip"])))

    def no_oracle(task: str) -> Any:
        raise AssertionError(f"the oracle ran for {task}")

    trainer.bank.get = no_oracle
    requests, _ = trainer.make_requests(trainer.train_ids[:2])
    assert len(requests) == 2 * trainer.cfg.group_size and all(r.hint is None for r in requests)
    hinted = RLTrainer(rl_config(sft_checkpoint, tmp_path / "hint", supervision=SupervisionConfig(use=["hint"], hint_per_group=2)))
    requests, _ = hinted.make_requests(hinted.train_ids[:1])
    assert [r.hint is not None for r in requests] == [True, True] + [False] * (hinted.cfg.group_size - 2)


def test_early_warning_alarms_on_a_jump_against_its_recent_median_and_resumes_exactly(caplog) -> None:
    import math
    from types import SimpleNamespace

    from baselines.train.callbacks import EarlyWarning
    from baselines.train.early_warning import WarningRule, score_series

    values = [1e-5, 2e-5, 1e-5, 1e-5, 2e-5, 3e-3, 1e-5, float("nan"), 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 5e-3]
    rule = WarningRule("diag/onpolicy/illegal_total", direction=1, window=5, threshold=math.log(100))
    warn, trainer = EarlyWarning(rule), SimpleNamespace(step=0)
    out = []
    with caplog.at_level("WARNING", logger="baselines.train.callbacks"):
        for step, v in enumerate(values, start=1):
            trainer.step = step
            out.append(warn.on_step(trainer, {rule.metric: v}))
    alarms = [i + 1 for i, o in enumerate(out) if o["diag/warning"]]
    # step 6 jumps 300x its median of 1e-5 and step 14 500x; the steps after the missing value
    # have no score until 5 known values precede them again
    assert alarms == [6, 14]
    assert [math.isnan(o["diag/warning_score"]) for o in out[7:14]] == [True] * 6 + [False]  # steps 8-13, 14
    assert out[-1]["diag/warning_first_step"] == 6.0 and out[4]["diag/warning_first_step"] == -1.0
    assert len([r for r in caplog.records if "Early warning at RL step 6" in r.getMessage()]) == 1
    assert [o["diag/warning_score"] for o in out] == pytest.approx(score_series(values, 1, 5), nan_ok=True)
    # a resumed callback continues exactly
    again = EarlyWarning(rule)
    half = EarlyWarning(rule)
    for step, v in enumerate(values[:9], start=1):
        trainer.step = step
        half.on_step(trainer, {rule.metric: v})
    again.load_state_dict(half.state_dict())
    rest = []
    for step, v in enumerate(values[9:], start=10):
        trainer.step = step
        rest.append(again.on_step(trainer, {rule.metric: v}))
    assert rest == out[9:]
    with pytest.raises(ValueError, match="direction must be -1, 0 or 1"):
        WarningRule("x", direction=2)


def test_the_trainer_runs_the_configured_warning_and_reports_its_first_alarm(sft_checkpoint, tmp_path) -> None:
    cfg = rl_config(sft_checkpoint, tmp_path, steps=3, warning_metric="train/gen_tokens", warning_direction=0,
                    warning_window=1, warning_threshold=1e-9)
    trainer = RLTrainer(cfg)
    assert "warning" in [cb.name for cb in trainer.callbacks]
    summary = trainer.train()
    assert [m["diag/warning"] for m in trainer.history][0] == 0.0  # no baseline at step 1
    assert summary["first_warning_step"] in (2, 3) and trainer.history[-1]["diag/warning_first_step"] >= 2
    assert "warning" not in [cb.name for cb in RLTrainer(rl_config(sft_checkpoint, tmp_path / "off")).callbacks]
    with pytest.raises(ValueError, match="warning_window must be ≥ 1"):
        rl_config(sft_checkpoint, tmp_path, warning_window=0)
