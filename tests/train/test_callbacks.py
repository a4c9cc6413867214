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
