"""Sound optimisation (issue 18): no step without signal, warm-up and schedules, one random
stream per purpose, typed config values, and the two control arms."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from baselines.train.batch import group_advantages
from baselines.train.callbacks import InterleavedSFT
from baselines.train.config import RLConfig, SFTConfig, SupervisionConfig, load_config
from baselines.train.guards import PROBE_CHANGES
from baselines.train.optim import adam_update_rms, lr_at, make_optimizer, scheduled_lr
from baselines.train.rl import RLTrainer, rl_loss
from tests.train.test_trainers import params, rl_config


# --------------------------------------------------------------------------- defect 1
def test_update_without_learning_signal_leaves_every_parameter_bit_identical(sft_checkpoint, tmp_path) -> None:
    """All advantages 0 and no auxiliary term: AdamW must not coast along its momentum."""
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, eval_every=0, weight_decay=0.1))
    for p in trainer.model.parameters():  # momentum from an earlier update
        p.grad = torch.randn_like(p)
    trainer.optimizer.step()
    episodes = trainer.collect(trainer.train_ids[:2])
    prepared, _ = trainer.prepare(episodes)
    prepared.batch.advantages.zero_()
    before = params(trainer.model)
    stats = trainer.update(prepared, episodes)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert stats["train/skipped_updates"] == stats["train/updates"] == 4.0
    assert stats["train/grad_norm"] == 0.0 and stats["train/adam_rms_max"] == 0.0  # nothing stepped


def test_update_with_signal_is_not_skipped(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, eval_every=0))
    episodes = trainer.collect(trainer.train_ids[:2])
    prepared, _ = trainer.prepare(episodes)
    prepared.batch.advantages.copy_(torch.linspace(-1, 1, prepared.batch.size))
    before = params(trainer.model)
    stats = trainer.update(prepared, episodes)
    assert stats["train/skipped_updates"] == 0.0
    assert stats["train/adam_rms_max"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def test_min_signal_groups_drops_the_lone_failure_update_and_the_step_is_skipped(sft_checkpoint, tmp_path) -> None:
    """A saturated batch whose only signal is one group (entry 20's breaking updates) gives no
    policy gradient with ``min_signal_groups=2``; two signalling groups keep GRPO's advantages."""
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, eval_every=0, min_signal_groups=2))
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    one = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    two = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    adv, dropped = trainer._advantages(one, groups, 8 / 9)
    assert dropped and adv.abs().sum() == 0
    adv, dropped = trainer._advantages(two, groups, 7 / 9)
    assert not dropped and torch.equal(adv, group_advantages(two, groups))
    episodes = trainer.collect(trainer.train_ids[:2])
    for i, ep in enumerate(episodes):  # only group 0 has differing rewards
        ep.reward = float(ep.group != 0 or i % 2 == 0)
    prepared, stats = trainer.prepare(episodes)
    assert (stats["train/signal_groups"], stats["train/signal_dropped"]) == (1.0, 1.0)
    assert prepared.batch.advantages.abs().sum() == 0
    update = trainer.update(prepared, episodes)
    assert update["train/skipped_updates"] == update["train/updates"]
    with pytest.raises(ValueError, match=r"min_signal_groups must be in \[1, prompts_per_step=8\], got 9"):
        RLConfig(init="x", min_signal_groups=9)


def test_max_signal_success_drops_the_update_of_a_saturated_batch_only(sft_checkpoint, tmp_path) -> None:
    """With ``max_signal_success=0.9`` a batch whose sampled episodes succeed 90% of the time or
    more gives no policy gradient, whatever its signalling groups; one below keeps GRPO's
    advantages; success is counted over the sampled episodes, as ``train/success``."""
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, eval_every=0, max_signal_success=0.9))
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    adv, dropped = trainer._advantages(rewards, groups, 0.9)
    assert dropped and adv.abs().sum() == 0
    adv, dropped = trainer._advantages(rewards, groups, 0.89)
    assert not dropped and torch.equal(adv, group_advantages(rewards, groups))
    episodes = trainer.collect(trainer.train_ids[:2])
    assert len(episodes) == 8 and len({e.group for e in episodes}) == 2
    for i, ep in enumerate(episodes):  # 7 of 8 succeed (0.875 < 0.9), only group 0 signals: kept
        ep.reward = float(i != 0)
        ep.success = i != 0
    prepared, stats = trainer.prepare(episodes)
    assert (stats["train/signal_groups"], stats["train/signal_dropped"]) == (1.0, 0.0)
    assert prepared.batch.advantages.abs().sum() > 0
    episodes[0].success = True  # the same rewards, all 8 counted as successes (1.0 ≥ 0.9): dropped
    prepared, stats = trainer.prepare(episodes)
    assert (stats["train/signal_groups"], stats["train/signal_dropped"]) == (1.0, 1.0)
    assert prepared.batch.advantages.abs().sum() == 0
    update = trainer.update(prepared, episodes)
    assert update["train/skipped_updates"] == update["train/updates"]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"max_signal_success must be in \(0, 1\] or None, got {bad}"):
            RLConfig(init="x", max_signal_success=bad)


def test_signal_scaled_lr_scales_the_step_by_the_share_of_signalling_groups(sft_checkpoint, tmp_path, monkeypatch) -> None:
    """``signal_scaled_lr``: the step's learning rate is the scheduled one times the share of its
    groups whose rewards differ (one of two: half); with none it is 0 and no Adam step is taken,
    so the weights and AdamW's moments stay as they were, even when the KL term has a gradient."""
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, eval_every=0, signal_scaled_lr=True, kl_coef=0.1))
    with torch.no_grad():  # away from the reference, so that the KL term has a gradient
        for p in trainer.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    episodes = trainer.collect(trainer.train_ids[:2])
    monkeypatch.setattr(trainer, "collect", lambda tasks: episodes)
    for i, ep in enumerate(episodes):  # only group 0 has differing rewards
        ep.reward = float(ep.group != 0 or i % 2 == 0)
    _, _, metrics = trainer.begin_step()
    assert metrics["train/lr_scale"] == 0.5
    assert trainer.lr == pytest.approx(scheduled_lr(trainer.cfg, 1) / 2) and trainer.lr > 0
    assert all(group["lr"] == trainer.lr for group in trainer.optimizer.param_groups)
    for ep in episodes:
        ep.reward = 1.0
    _, prepared, metrics = trainer.begin_step()
    assert (metrics["train/lr_scale"], trainer.lr) == (0.0, 0.0)
    before = params(trainer.model)
    update = trainer.update(prepared, episodes)
    assert update["train/grad_norm"] > 0  # the KL term has a gradient: the lr alone stops the step
    assert update["train/skipped_updates"] == update["train/updates"] == 4.0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert not trainer.optimizer.state
    assert RLConfig(init="x").signal_scaled_lr is False  # off by default


def _trainer_and_batch(sft_checkpoint, root, name: str, **overrides):
    """A trainer in ``root / name`` and one prepared batch of two tasks, its advantages fixed to
    ``linspace(-1, 1)``: the same update for every config compared."""
    torch.manual_seed(0)
    trainer = RLTrainer(rl_config(sft_checkpoint, root / name, eval_every=0, **overrides))
    episodes = trainer.collect(trainer.train_ids[:2])
    prepared, _ = trainer.prepare(episodes)
    prepared.batch.advantages.copy_(torch.linspace(-1, 1, prepared.batch.size))
    return trainer, prepared, episodes


def test_target_kl_ends_the_steps_updates_at_the_first_minibatch_past_the_threshold(sft_checkpoint, tmp_path, monkeypatch) -> None:
    """PPO's early stop: with ``target_kl`` the step's updates end at the first minibatch whose
    approx-KL before its update exceeds 1.5 × target_kl; that minibatch is not stepped. A target
    no minibatch reaches changes nothing, bit for bit."""
    def step_once(**overrides):
        trainer, prepared, episodes = _trainer_and_batch(sft_checkpoint, tmp_path, str(len(overrides)), **overrides)
        return trainer, prepared, episodes, trainer.update(prepared, episodes)

    plain, _, _, free = step_once()
    loose, _, _, never = step_once(target_kl=1e9)
    for stats in (free, never):
        assert (stats["train/kl_stopped"], stats["train/updates"]) == (0.0, 4.0)
    assert all(torch.equal(a, b) for a, b in zip(params(plain.model), params(loose.model), strict=True))
    # the first minibatch is measured on the sampling weights (approx-KL 0); any later one has moved
    tight, prepared, episodes, stopped = step_once(target_kl=1e-9)
    assert (stopped["train/kl_stopped"], stopped["train/updates"], stopped["train/skipped_updates"]) == (1.0, 1.0, 0.0)
    assert all(state["step"] == 1 for state in tight.optimizer.state.values())
    # a policy already past the threshold at the first minibatch: no Adam step, the step still logged
    monkeypatch.setattr(tight, "_past_target_kl", lambda approx_kl: True)
    before = params(tight.model)
    first = tight.update(prepared, episodes)
    assert (first["train/kl_stopped"], first["train/updates"], first["train/skipped_updates"]) == (1.0, 1.0, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, tight.model.parameters(), strict=True))
    assert "train/approx_kl" in first and first["train/grad_norm"] == 0.0
    with pytest.raises(ValueError, match=r"target_kl must be > 0 or None, got 0.0"):
        RLConfig(init="x", target_kl=0.0)
    assert RLConfig(init="x").target_kl is None  # off by default


def test_target_kl_rollback_undoes_the_update_that_crossed_the_threshold(sft_checkpoint, tmp_path, monkeypatch) -> None:
    """With ``target_kl_rollback`` the Adam update after which a minibatch's approx-KL is past the
    threshold is undone (weights and optimiser state as before it), and a last update that takes
    the batch's approx-KL past it is undone too; without a crossing nothing changes."""
    trainer_and_batch = functools.partial(_trainer_and_batch, sft_checkpoint, tmp_path)

    # every minibatch after the first has moved past a tiny target: the first update is undone
    trainer, prepared, episodes = trainer_and_batch("tiny", target_kl=1e-9, target_kl_rollback=True)
    before = params(trainer.model)
    stats = trainer.update(prepared, episodes)
    assert (stats["train/kl_stopped"], stats["train/kl_rolled_back"], stats["train/updates"]) == (1.0, 1.0, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert not trainer.optimizer.state and stats["train/approx_kl_after_update"] == 0.0
    # no minibatch crosses it, the batch's KL after the last update does: the last update is undone
    plain, prepared, episodes = trainer_and_batch("plain")
    states, step = [], plain.optimizer.step
    monkeypatch.setattr(plain.optimizer, "step", lambda: (states.append(params(plain.model)), step()))
    plain.update(prepared, episodes)
    last, prepared, episodes = trainer_and_batch("last", target_kl=1e-9, target_kl_rollback=True)
    rule, calls = last._past_target_kl, []

    def after_the_minibatches(approx_kl: float) -> bool:  # 4 minibatch checks (2 epochs × 2) say no,
        calls.append(approx_kl)  # the 5th, on the batch after the last update, is the real rule
        return len(calls) > 4 and rule(approx_kl)

    monkeypatch.setattr(last, "_past_target_kl", after_the_minibatches)
    stats = last.update(prepared, episodes)
    assert len(calls) == 5
    assert (stats["train/kl_stopped"], stats["train/kl_rolled_back"], stats["train/updates"]) == (0.0, 1.0, 4.0)
    assert all(torch.equal(a, b) for a, b in zip(states[-1], last.model.parameters(), strict=True))
    assert all(int(s["step"]) == 3 for s in last.optimizer.state.values())
    # a target no update reaches: the update is the plain one, bit for bit
    loose, prepared, episodes = trainer_and_batch("loose", target_kl=1e9, target_kl_rollback=True)
    assert loose.update(prepared, episodes)["train/kl_rolled_back"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(params(plain.model), loose.model.parameters(), strict=True))
    with pytest.raises(ValueError, match=r"target_kl_rollback needs target_kl \(got None\)"):
        RLConfig(init="x", target_kl_rollback=True)


def test_expert_guard_undoes_an_update_that_raises_the_expert_nll_and_measures_only_at_inf(sft_checkpoint, tmp_path) -> None:
    """``expert_guard``: after each Adam update the mean per-token NLL of the first training tasks'
    expert trajectories is measured; an update that raises it by more than the guard is undone
    (weights and optimiser state as before it) and ends the step. ``inf`` measures without ever
    undoing: the update is the plain one, bit for bit, and the rise it reports is the real one."""
    trainer_and_batch = functools.partial(_trainer_and_batch, sft_checkpoint, tmp_path)

    plain, prepared, episodes = trainer_and_batch("plain")
    states, step = [], plain.optimizer.step
    plain.optimizer.step = lambda: (states.append(params(plain.model)), step())
    free = plain.update(prepared, episodes)
    assert "train/expert_guard_rolled_back" not in free and plain.guard_batch is None
    measure, prepared, episodes = trainer_and_batch("measure", expert_guard=float("inf"))
    nll_start = measure._expert_nll()
    stats = measure.update(prepared, episodes)
    assert (stats["train/expert_guard_rolled_back"], stats["train/updates"]) == (0.0, 4.0)
    assert all(torch.equal(a, b) for a, b in zip(params(plain.model), measure.model.parameters(), strict=True))
    rises = []  # the rise of each update, recomputed from the plain run's weights before each step
    for before, after in zip(states, [*states[1:], params(plain.model)], strict=True):
        for p, w in zip(measure.model.parameters(), before, strict=True):
            p.data.copy_(w)
        a = measure._expert_nll()
        for p, w in zip(measure.model.parameters(), after, strict=True):
            p.data.copy_(w)
        rises.append(measure._expert_nll() - a)
    assert stats["train/expert_nll_rise_max"] == pytest.approx(max(rises), rel=1e-6, abs=1e-9)
    assert nll_start > 0 and measure.guard_batch is not None
    assert measure.guard_batch.size <= measure.cfg.expert_guard_size
    # a guard every update crosses: the first update is undone and the step ends there
    tight, prepared, episodes = trainer_and_batch("tight", expert_guard=1e-12)
    tight_before = params(tight.model)
    real_nll, calls = tight._expert_nll, []
    tight._expert_nll = lambda: (calls.append(0), real_nll() + len(calls))[1]  # each call 1 nat above the last
    stats = tight.update(prepared, episodes)
    assert (stats["train/expert_guard_rolled_back"], stats["train/updates"], len(calls)) == (1.0, 1.0, 2)
    assert stats["train/expert_nll_rise_max"] > 0.5  # 1 nat plus the update's own (small) change
    assert all(torch.equal(a, b) for a, b in zip(tight_before, tight.model.parameters(), strict=True))
    assert not tight.optimizer.state
    with pytest.raises(ValueError, match=r"expert_guard must be > 0 \(nats per token; inf = measure only\) or None, got 0.0"):
        RLConfig(init="x", expert_guard=0.0)
    assert RLConfig(init="x").expert_guard is None  # off by default


def test_structure_guard_undoes_an_update_that_moves_the_expert_probe_past_a_threshold(sft_checkpoint, tmp_path) -> None:
    """``structure_guard``: after each Adam update the probe statistics of the expert batch are
    read again; an update whose change exceeds a threshold (by name) is undone and ends the step.
    Thresholds at ``inf`` measure only: the update is the plain one, bit for bit, and the largest
    change logged is the one recomputed from the plain run's weights."""
    trainer_and_batch = functools.partial(_trainer_and_batch, sft_checkpoint, tmp_path)

    plain, prepared, episodes = trainer_and_batch("plain")
    states, step = [], plain.optimizer.step
    plain.optimizer.step = lambda: (states.append(params(plain.model)), step())
    plain.update(prepared, episodes)
    inf = float("inf")
    measure, prepared, episodes = trainer_and_batch("measure", structure_guard=dict.fromkeys(PROBE_CHANGES, inf))
    stats = measure.update(prepared, episodes)
    assert (stats["train/expert_guard_rolled_back"], stats["train/updates"]) == (0.0, 4.0)
    assert all(torch.equal(a, b) for a, b in zip(params(plain.model), measure.model.parameters(), strict=True))
    falls = []  # each update's content fall, recomputed from the plain run's weights around each step
    for before, after in zip(states, [*states[1:], params(plain.model)], strict=True):
        readings = []
        for weights in (before, after):
            for p, w in zip(measure.model.parameters(), weights, strict=True):
                p.data.copy_(w)
            readings.append(measure._expert_probe())
        falls.append(measure._probe_changes(*readings)["content_fall"])
    assert stats["train/structure/content_fall_max"] == pytest.approx(max(falls), rel=1e-6, abs=1e-12)
    assert set(PROBE_CHANGES) == {k.split("/")[2].removesuffix("_max") for k in stats if k.startswith("train/structure/")}
    # a threshold the first update crosses: it is undone, and the step ends there
    tight, prepared, episodes = trainer_and_batch("tight", structure_guard={"content_fall": 0.5})
    before = params(tight.model)
    real = tight._probe_changes
    tight._probe_changes = lambda a, b: {**real(a, b), "content_fall": 0.9}
    stats = tight.update(prepared, episodes)
    assert (stats["train/expert_guard_rolled_back"], stats["train/updates"]) == (1.0, 1.0)
    assert stats["train/structure/content_fall_max"] == 0.9
    assert all(torch.equal(a, b) for a, b in zip(before, tight.model.parameters(), strict=True))
    assert not tight.optimizer.state
    with pytest.raises(ValueError, match=r"structure_guard takes thresholds for \['control_hit_fall'"):
        RLConfig(init="x", structure_guard={"content": 0.1})
    assert RLConfig(init="x").structure_guard is None  # off by default
    # YAML reads 2e-5 as a string: the thresholds become floats like any float field
    assert load_config(RLConfig, overrides=["init=x", "structure_guard={content_fall: 2e-5}"]).structure_guard == {"content_fall": 2e-5}


def test_random_undo_undoes_updates_at_random_like_a_guard(sft_checkpoint, tmp_path) -> None:
    """``random_undo``, the guards' control: each Adam update is undone with the given probability
    (from its own random stream) and the step ends there, as when a guard undoes one."""
    trainer_and_batch = functools.partial(_trainer_and_batch, sft_checkpoint, tmp_path)
    always, prepared, episodes = trainer_and_batch("always", random_undo=0.999999)
    before = params(always.model)
    stats = always.update(prepared, episodes)
    assert (stats["train/expert_guard_rolled_back"], stats["train/updates"]) == (1.0, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, always.model.parameters(), strict=True))
    assert not always.optimizer.state
    # a rate no draw reaches: the plain update, bit for bit, and the other streams untouched
    plain, prepared, episodes = trainer_and_batch("plain")
    plain.update(prepared, episodes)
    rare, prepared, episodes = trainer_and_batch("rare", random_undo=1e-12)
    assert rare.update(prepared, episodes)["train/expert_guard_rolled_back"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(params(plain.model), rare.model.parameters(), strict=True))
    with pytest.raises(ValueError, match=r"random_undo must be in \[0, 1\), got 1.0"):
        RLConfig(init="x", random_undo=1.0)
    assert RLConfig(init="x").random_undo == 0.0  # off by default


def test_adam_update_rms_is_the_gradient_against_the_second_moment_adam_will_divide_by() -> None:
    """1 at a tensor's first step; after many small gradients a large one gives a large value, the
    one computed from the ``v̂`` that AdamW then actually used; no gradient, no value."""
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.AdamW([w], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    assert adam_update_rms(opt) == 0.0
    w.grad = torch.tensor([0.5, -2.0, 1.0])
    assert adam_update_rms(opt) == pytest.approx(1.0)
    opt.step()
    for _ in range(20):
        w.grad = torch.full((3,), 0.01)
        opt.step()
    w.grad = torch.full((3,), 1.0)
    rms = adam_update_rms(opt)
    opt.step()
    v_hat = opt.state[w]["exp_avg_sq"] / (1 - 0.999 ** float(opt.state[w]["step"]))
    assert rms == pytest.approx(float((w.grad.pow(2) / v_hat).mean().sqrt()), rel=1e-5)
    assert rms > 3  # a gradient 100x its recent size, against a 22-step memory that holds it


def test_stable_adamw_divides_adamws_step_by_the_update_rms_and_equals_it_below_one() -> None:
    """``optimizer=stable_adamw``: the same moments as AdamW; a tensor's step is AdamW's divided by
    ``max(1, RMS_t)`` (:func:`adam_update_rms`), so after small gradients a large one moves the
    weights ``RMS_t`` times less; the config rejects an unknown optimiser in one line."""
    def run(kind: str) -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
        w = torch.nn.Parameter(torch.ones(4))
        return w, make_optimizer([w], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, kind=kind)

    (a, adam), (s, stable) = run("adamw"), run("stable_adamw")
    grads = [torch.tensor([0.3, -0.1, 0.2, 0.05])] * 5 + [torch.tensor([3.0, -1.0, 2.0, 0.5])]
    for i, g in enumerate(grads):
        before_a, before_s = a.detach().clone(), s.detach().clone()
        a.grad, s.grad = g.clone(), g.clone()
        rms = adam_update_rms(stable)
        assert rms == pytest.approx(adam_update_rms(adam), rel=1e-5)
        adam.step()
        stable.step()
        step_a, step_s = a.detach() - before_a, s.detach() - before_s
        assert torch.allclose(step_s * max(1.0, rms), step_a, rtol=1e-4, atol=1e-9), i
    assert rms > 2  # the last gradient is 10x the earlier ones: StableAdamW's step is that much shorter
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adamw', 'stable_adamw'\], got 'sgd'"):
        RLConfig(init="x", optimizer="sgd")
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        make_optimizer([a], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, kind="sgd")


def test_rl_with_stable_adamw_trains_and_resumes_exactly(sft_checkpoint, tmp_path) -> None:
    """StableAdamW's state (one step count per group, debiased moments) survives a checkpoint."""
    kw = dict(optimizer="stable_adamw", entropy_coef=0.01)  # the entropy term: a gradient at every step
    straight = RLTrainer(rl_config(sft_checkpoint, tmp_path / "a", steps=4, **kw))
    straight.train()
    RLTrainer(rl_config(sft_checkpoint, tmp_path / "b", steps=2, save_every=2, **kw)).train()
    resumed = RLTrainer(rl_config(sft_checkpoint, tmp_path / "b", steps=4, save_every=2, **kw), resume="auto")
    assert type(resumed.optimizer).__name__ == "StableAdamW" and resumed.step == 2
    resumed.train()
    for key in ("train/loss", "train/success", "train/grad_norm", "train/adam_rms_max"):
        assert [m[key] for m in resumed.history[2:]] == [m[key] for m in straight.history[2:]], key
    assert all(m["train/adam_rms_max"] > 0 for m in straight.history)


# --------------------------------------------------------------------------- defect 2
def test_lr_warmup_and_schedules() -> None:
    assert [lr_at(s, lr=1.0, warmup_steps=4, schedule="constant", total_steps=10) for s in (1, 2, 4, 5, 10)] == [
        0.25, 0.5, 1.0, 1.0, 1.0]
    linear = [lr_at(s, lr=1.0, warmup_steps=0, schedule="linear", total_steps=4) for s in (1, 2, 3, 4)]
    assert linear == pytest.approx([0.8, 0.6, 0.4, 0.2])
    cosine = [lr_at(s, lr=1.0, warmup_steps=2, schedule="cosine", total_steps=5) for s in range(1, 6)]
    assert cosine[:2] == [0.5, 1.0] and cosine[2] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert all(a > b > 0 for a, b in zip(cosine[1:], cosine[2:], strict=False))
    assert lr_at(3, lr=2e-3, warmup_steps=0, schedule="constant", total_steps=3) == 2e-3
    with pytest.raises(ValueError, match="Unknown lr schedule 'step'"):
        lr_at(1, lr=1.0, warmup_steps=0, schedule="step", total_steps=3)


def test_sound_optimiser_defaults_and_config_validation() -> None:
    for cfg in (RLConfig(init="x"), SFTConfig()):
        assert (cfg.warmup_steps, cfg.lr_schedule, cfg.grad_clip) == (10, "constant", 1.0)
        assert (cfg.adam_beta1, cfg.adam_beta2, cfg.weight_decay) == (0.9, 0.999, 0.0)
    cfg = load_config(RLConfig, "baselines/train/configs/lookup_rl.yaml", [], init="x")
    assert (cfg.warmup_steps, cfg.grad_clip) == (10, 1.0)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        RLConfig(init="x", lr_schedule="exp")
    with pytest.raises(ValueError, match="grad_clip must be > 0 or None, got 0"):
        RLConfig(init="x", grad_clip=0)


def test_rl_and_sft_warm_up_their_learning_rate(sft_checkpoint, tmp_path) -> None:
    from baselines.train.sft import SFTTrainer

    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / "rl", steps=2, eval_every=0, warmup_steps=4, lr=1e-3))
    trainer.train()
    assert [m["train/lr"] for m in trainer.history] == pytest.approx([2.5e-4, 5e-4])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    sft = SFTTrainer(SFTConfig(
        env="ToolGym/Lookup-v0", init=str(sft_checkpoint), out_dir=str(tmp_path / "sft"), include_system_prompt=False,
        num_tasks=20, steps=2, batch_size=4, eval_every=0, eval_episodes=2, max_new_tokens=8, lr=1e-3,
        warmup_steps=2, tensorboard=False, progress=False,
    ))
    sft.train()
    import csv

    rows = list(csv.DictReader((tmp_path / "sft" / "metrics.csv").open()))
    assert [float(r["train/lr"]) for r in rows] == pytest.approx([5e-4, 1e-3])


# --------------------------------------------------------------------------- defect 7
def test_arms_with_the_same_seed_sample_the_same_tasks_at_every_step(sft_checkpoint, tmp_path) -> None:
    seen: dict[str, list[list[str]]] = {}
    for arm in ("none", "sft_mix", "interleaved_sft"):
        sup = SupervisionConfig(use=[] if arm == "none" else [arm], sft_mix_batch=4, interleave_every=1,
                                interleave_window=1, interleave_steps=1, interleave_batch=2)
        trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / arm, steps=3, eval_every=0, epochs=1, supervision=sup))
        tasks: list[list[str]] = []
        collect = trainer.collect
        trainer.collect = lambda t, collect=collect, tasks=tasks: (tasks.append(list(t)), collect(t))[1]
        trainer.train()
        seen[arm] = tasks
    assert len(seen["none"]) == 3
    assert seen["none"] == seen["sft_mix"] == seen["interleaved_sft"]


# --------------------------------------------------------------------------- defect 10
def test_config_values_are_converted_to_the_declared_type(tmp_path) -> None:
    cfg = load_config(RLConfig, overrides=["lr=5e-4", "steps=3.0", "grad_clip=null", "supervision.sft_mix_coef=1"], init="x")
    assert (cfg.lr, cfg.steps, cfg.grad_clip, cfg.supervision.sft_mix_coef) == (5e-4, 3, None, 1.0)
    assert isinstance(cfg.lr, float) and isinstance(cfg.steps, int) and isinstance(cfg.supervision.sft_mix_coef, float)
    path = tmp_path / "c.yaml"
    path.write_text("lr: 5e-4\nkl_coef: 1e-4\nwarmup_steps: '3'\n")
    cfg = load_config(RLConfig, path, [], init="x")
    assert (cfg.lr, cfg.kl_coef, cfg.warmup_steps) == (5e-4, 1e-4, 3)
    with pytest.raises(ValueError, match=r"^Config field 'lr': cannot use 'fast' \(str\); expected float\.$"):
        load_config(RLConfig, overrides=["lr=fast"], init="x")
    with pytest.raises(ValueError, match=r"^Config field 'steps': cannot use 2.5 \(float\); expected int\.$"):
        load_config(RLConfig, overrides=["steps=2.5"], init="x")
    with pytest.raises(ValueError, match="Config field 'supervision.spike_coef': cannot use 'x'"):
        load_config(RLConfig, overrides=["supervision.spike_coef=x"], init="x")


def test_cli_accepts_an_exponent_learning_rate(tmp_path, capsys) -> None:
    from baselines.train.__main__ import main

    assert main(["rl", "--init", str(tmp_path / "missing"), "--set", "lr=5e-4", "--set", "steps=x", "--quiet"]) == 1
    assert "Config field 'steps': cannot use 'x' (str); expected int." in capsys.readouterr().err


# --------------------------------------------------------------------------- controls
def test_permuted_advantages_permutes_within_the_batch(sft_checkpoint, tmp_path) -> None:
    prepared = {}
    for arm in ("none", "permuted_advantages"):
        sup = SupervisionConfig(use=[] if arm == "none" else [arm])
        trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / arm, eval_every=0, supervision=sup))
        episodes = trainer.collect(trainer.train_ids[:2])
        for i, e in enumerate(episodes):  # rewards with within-group variance, same in both arms
            e.reward = float(i % 3 == 0)
        prepared[arm], _ = trainer.prepare(episodes)
    a, b = prepared["none"].batch.advantages, prepared["permuted_advantages"].batch.advantages
    assert torch.equal(a.sort().values, b.sort().values) and not torch.equal(a, b)


def test_sft_only_trains_the_expert_nll_without_the_policy_gradient(sft_checkpoint, tmp_path) -> None:
    sup = SupervisionConfig(use=["sft_only"], sft_mix_batch=4, sft_mix_coef=0.3)
    cfg = rl_config(sft_checkpoint, tmp_path, eval_every=0, supervision=sup)
    trainer = RLTrainer(cfg)
    episodes = trainer.collect(trainer.train_ids[:2])
    prepared, _ = trainer.prepare(episodes)
    sft_batch = trainer.sft_mix_batch([])
    b = prepared.batch
    logits = trainer.policy.logits(b.input_ids, b.attention_mask)
    sft_logits = trainer.policy.logits(sft_batch.input_ids, sft_batch.attention_mask)
    grads = []
    for adv in (torch.zeros(b.size), torch.linspace(-2, 2, b.size)):
        prepared.batch.advantages.copy_(adv)
        loss, stats = rl_loss(logits, prepared, cfg, trainer.control_ids, sft_logits=sft_logits, sft_batch=sft_batch)
        assert loss.item() == pytest.approx(0.3 * stats["sft_mix_nll"].item(), rel=1e-6)
        grads.append(torch.autograd.grad(loss, logits, retain_graph=True)[0])
    assert torch.equal(grads[0], grads[1])  # the advantages play no part
    before = params(trainer.model)
    summary = trainer.train()
    assert summary["stopped"] is None and math.isfinite(trainer.history[-1]["train/sft_mix_nll"])
    assert any(not torch.equal(x, y) for x, y in zip(before, trainer.model.parameters(), strict=True))


# --------------------------------------------------------------------------- defect 8
def test_grad_norm_control_follows_the_trained_loss(sft_checkpoint, tmp_path) -> None:
    """Expert rows use policy shaping (their old log-probs play no part); under sft_only the
    policy gradient is not trained, so its control-position gradient is 0."""
    sup = SupervisionConfig(use=["offpolicy_expert"])
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / "ope", eval_every=0, supervision=sup))
    prepared, _ = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    b = prepared.batch
    prepared.batch.advantages.copy_(torch.linspace(-1, 1, b.size))
    logits = trainer.policy.logits(b.input_ids, b.attention_mask)
    norm = trainer._control_grad_norm(trainer._control_grads(logits, prepared))
    prepared.old_logp[b.is_expert] = -50.0
    again = trainer._control_grad_norm(trainer._control_grads(logits, prepared))
    assert norm > 0 and again == pytest.approx(norm, rel=1e-6)
    sup = SupervisionConfig(use=["sft_only"], sft_mix_batch=2)
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / "sft_only", eval_every=0, supervision=sup))
    prepared, _ = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    prepared.batch.advantages.copy_(torch.linspace(-1, 1, prepared.batch.size))
    logits = trainer.policy.logits(prepared.batch.input_ids, prepared.batch.attention_mask)
    assert trainer._control_grad_norm(trainer._control_grads(logits, prepared)) == 0.0


def test_kl_after_the_last_update_is_logged(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, eval_every=0))
    episodes = trainer.collect(trainer.train_ids[:2])
    prepared, _ = trainer.prepare(episodes)
    prepared.batch.advantages.zero_()
    stats = trainer.update(prepared, episodes)  # skipped: the policy did not move
    assert stats["train/approx_kl_after_update"] == pytest.approx(0.0, abs=1e-6)
    prepared.batch.advantages.copy_(torch.linspace(-3, 3, prepared.batch.size))
    stats = trainer.update(prepared, episodes)
    b = prepared.batch
    with torch.no_grad():
        trainer.model.eval()
        logp = torch.log_softmax(trainer.policy.logits(b.input_ids, b.attention_mask), -1)
        logp = logp.gather(-1, b.targets[..., None]).squeeze(-1)
    m = b.loss_mask * (~b.is_expert)[:, None]
    expected = float(((prepared.old_logp - logp) * m).sum() / m.sum())
    assert stats["train/approx_kl_after_update"] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert expected != 0.0


# --------------------------------------------------------------------------- defect 3
def test_interleaved_sft_is_evaluated_before_its_phase_and_not_at_the_end(sft_checkpoint, tmp_path) -> None:
    sup = SupervisionConfig(use=["interleaved_sft"], interleave_every=1, interleave_window=1, interleave_steps=1,
                            interleave_batch=2)
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, steps=3, eval_every=1, epochs=1, supervision=sup))
    order: list[str] = []
    evaluate, phase = trainer._evaluate, trainer.interleaved_sft
    trainer._evaluate = lambda prefix: (order.append(prefix), evaluate(prefix))[1]
    (sft_callback,) = [cb for cb in trainer.callbacks if isinstance(cb, InterleavedSFT)]
    sft_callback.window.append({trainer.train_ids[0]: 0.0})  # a failed task, so every phase trains

    def logged_phase(window):
        order.append("sft")
        window.append({trainer.train_ids[0]: 0.0})
        return phase(window)

    trainer.interleaved_sft = logged_phase
    trainer.train()
    assert order == ["eval", "sft", "eval_after_sft"] * 2 + ["eval"]  # no phase after the last RL step
    h = trainer.history
    assert "eval_after_sft/success" in h[0] and "eval_after_sft/success" not in h[2]
    assert h[2]["train/interleaved_sft_skipped"] == 1.0
    # the collapse detector follows the RL steps: steps 2 and 3 sampled right after a phase
    assert [m["train/after_sft_phase"] for m in h] == [0.0, 1.0, 1.0]
    assert trainer.collapse.best == h[0]["train/success"]


def test_guard_reference_step_reads_each_update_from_the_steps_start(sft_checkpoint, tmp_path) -> None:
    """``guard_reference="step"``: the guards compare each update's readings with the step's first
    ones, not with the last update's, so that updates that each pass but add up are caught. With
    thresholds at ``inf`` the update is the plain one, bit for bit, and the largest change logged is
    the largest recomputed from the step's start; a threshold the step's sum crosses undoes the
    update that crossed it."""
    trainer_and_batch = functools.partial(_trainer_and_batch, sft_checkpoint, tmp_path)
    plain, prepared, episodes = trainer_and_batch("plain")
    states, step = [], plain.optimizer.step
    plain.optimizer.step = lambda: (states.append(params(plain.model)), step())
    plain.update(prepared, episodes)
    start, after_each = states[0], [*states[1:], params(plain.model)]
    inf = float("inf")
    measure, prepared, episodes = trainer_and_batch(
        "measure", structure_guard=dict.fromkeys(PROBE_CHANGES, inf), expert_guard=inf, guard_reference="step"
    )
    stats = measure.update(prepared, episodes)
    assert (stats["train/expert_guard_rolled_back"], stats["train/updates"]) == (0.0, 4.0)
    assert all(torch.equal(a, b) for a, b in zip(params(plain.model), measure.model.parameters(), strict=True))

    def readings(weights):
        for p, w in zip(measure.model.parameters(), weights, strict=True):
            p.data.copy_(w)
        return measure._expert_probe(), measure._expert_nll()

    probe0, nll0 = readings(start)
    later = [readings(w) for w in after_each]
    falls = [measure._probe_changes(probe0, probe)["content_fall"] for probe, _ in later]
    assert stats["train/structure/content_fall_max"] == pytest.approx(max(falls), rel=1e-6, abs=1e-12)
    assert stats["train/expert_nll_rise_max"] == pytest.approx(max(n - nll0 for _, n in later), rel=1e-6, abs=1e-9)
    # each update moves the content by 0.01 from the last: per update it passes 0.025; from the
    # step's start the third crosses it, is undone, and the step ends there with two kept
    for reference, expected in (("update", (0.0, 4.0)), ("step", (1.0, 3.0))):
        tight, prepared, episodes = trainer_and_batch(f"tight_{reference}", structure_guard={"content_fall": 0.025},
                                                      guard_reference=reference)
        count = [0]

        def probe(count=count):
            count[0] += 1
            return {"guard/content_p": 1.0 - 0.01 * count[0]}

        tight._expert_probe = probe
        stats = tight.update(prepared, episodes)
        assert (stats["train/expert_guard_rolled_back"], stats["train/updates"]) == expected, reference
        assert stats["train/structure/content_fall_max"] == pytest.approx(0.01 if reference == "update" else 0.03)
    with pytest.raises(ValueError, match=r"guard_reference must be one of \['update', 'step'\], got 'epoch'"):
        RLConfig(init="x", guard_reference="epoch")
    with pytest.raises(ValueError, match=r"guard_reference='step' needs expert_guard or structure_guard"):
        RLConfig(init="x", guard_reference="step")
    assert RLConfig(init="x").guard_reference == "update"  # each update judged alone by default
