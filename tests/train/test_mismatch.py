"""The sampler–trainer mismatch switch (``RLConfig.sampler_dtype``) and its two fixes, the ``tis``
(truncated) and ``mis`` (masked importance sampling) supervision terms."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

from baselines.llm.model import quantize_sampler_, quantize_weights_, sampler_storage_dtype
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.rollout import EpisodeRequest, RolloutSettings, collect_episodes
from baselines.train.config import RLConfig, SupervisionConfig
from baselines.train.rl import RLTrainer, sampler_copy, token_terms
from baselines.train.supervision import mis_weight, sampler_ratio, tis_weight
from baselines.train.terms import sampled_by_sampler
from tests.train.test_trainers import rl_config

TIMING = ("train/rollout_s", "train/update_s", "train/step_s", "train/update_s_per_1k_tokens")


def same(a: float, b: float) -> bool:
    """Bit-equal floats (NaN equals NaN)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---------------------------------------------------------------- the weights on hand-built tensors


def test_tis_and_mis_weights_follow_the_formulas_and_are_detached() -> None:
    old = torch.tensor([[-1.0, -2.0, -0.5, -3.0, -0.2]], requires_grad=True)
    sample = torch.tensor([[-1.5, -1.0, -0.5, -0.1, -2.0]])
    where = torch.tensor([[True, True, True, False, True]])
    ratio = sampler_ratio(old, sample, where)
    assert not ratio.requires_grad
    e = math.exp
    expected = torch.tensor([[e(0.5), e(-1.0), 1.0, 1.0, e(1.8)]])  # not sampled: 1 (its raw ratio e^-2.9 is ignored)
    assert torch.allclose(ratio, expected)
    assert torch.allclose(tis_weight(ratio, 1.5), torch.tensor([[1.5, e(-1.0), 1.0, 1.0, 1.5]]))
    assert torch.equal(tis_weight(ratio, 2.0)[0, 2:4], torch.ones(2))
    # band [1/2, 2]: e^0.5 = 1.65 kept, e^-1 = 0.37 and e^1.8 = 6.0 masked; the ends are inside
    assert torch.equal(mis_weight(ratio, 2.0), torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]]))
    assert torch.allclose(mis_weight(ratio, 2.0, reweight=True), torch.tensor([[e(0.5), 0.0, 1.0, 1.0, 0.0]]))
    ends = torch.tensor([0.5, 2.0, 0.4999, 2.0001])
    assert torch.equal(mis_weight(ends, 2.0), torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_extreme_gaps_give_finite_weights() -> None:
    old, sample = torch.tensor([0.0, -200.0]), torch.tensor([-200.0, 0.0])
    ratio = sampler_ratio(old, sample, torch.tensor([True, True]))
    assert torch.equal(tis_weight(ratio, 2.0), torch.tensor([2.0, 0.0]))
    assert torch.equal(mis_weight(ratio, 2.0), torch.tensor([0.0, 0.0]))


# ---------------------------------------------------------------- the terms in the trainer's loss


@pytest.fixture()
def shifted(sft_checkpoint, tmp_path):
    """A batch with expert rows and hinted rows whose sampler log-probs are moved off the
    trainer's by up to ±1.5 nats on every sampled token (a stand-in for a low-precision sampler)."""
    sup = SupervisionConfig(use=["offpolicy_expert", "hint"], hint_per_group=1)
    cfg = rl_config(sft_checkpoint, tmp_path, supervision=sup)
    trainer = RLTrainer(cfg)
    prepared, _ = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    b = prepared.batch
    assert bool(b.is_expert.any()) and bool(b.is_hinted.any())
    gen = torch.Generator().manual_seed(0)
    delta = (torch.rand(b.targets.shape, generator=gen) * 3.0 - 1.5) * b.loss_mask
    b.sample_logprobs = torch.where(b.loss_mask > 0, prepared.old_logp - delta, b.sample_logprobs)
    logits = batch_logits_of(trainer, prepared)
    return cfg, prepared, logits, delta


def batch_logits_of(trainer: RLTrainer, prepared) -> torch.Tensor:
    from baselines.train.common import batch_logits

    with torch.no_grad():
        return batch_logits(trainer.model, prepared.batch, trainer.cfg.temperature)


def with_terms(cfg: RLConfig, *names: str, **fields) -> RLConfig:
    """``cfg`` with the named terms switched on too (and their fields set)."""
    sup = dataclasses.replace(cfg.supervision, use=[*cfg.supervision.use, *names], **fields)
    return dataclasses.replace(cfg, supervision=sup)


def test_tis_multiplies_sampled_tokens_by_the_truncated_ratio_only(shifted) -> None:
    cfg, prepared, logits, delta = shifted
    base = token_terms(logits, prepared, cfg)["pg"]
    pg = token_terms(logits, prepared, with_terms(cfg, "tis", tis_cap=1.5))["pg"]
    where = sampled_by_sampler(prepared)
    weight = torch.where(where, torch.exp(delta).clamp(max=1.5), torch.ones_like(delta))
    assert torch.allclose(pg, base * weight, atol=1e-6)
    untouched = ~where  # expert rows, hinted rows, prompt / tool / padding positions
    assert torch.equal(pg[untouched], base[untouched])
    assert bool((weight[where] < 1).any()) and bool((weight[where] == 1.5).any())


def test_tis_weight_scales_the_gradient_and_carries_none_itself(shifted) -> None:
    """The gradient (w.r.t. the logits and w.r.t. ``old_logp``, made differentiable here) is the base
    term's times the weight taken as a constant: nothing flows through the weight."""
    cfg, prepared, logits, delta = shifted
    mask = prepared.batch.loss_mask
    weight = torch.where(sampled_by_sampler(prepared), torch.exp(delta), torch.ones_like(delta)).clamp(max=1.5)

    def grads(config: RLConfig, factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = logits.clone().requires_grad_(True)
        old = prepared.old_logp.clone().requires_grad_(True)
        pg = token_terms(x, dataclasses.replace(prepared, old_logp=old), config)["pg"]
        return torch.autograd.grad((pg * factor * mask).sum(), (x, old))

    got = grads(with_terms(cfg, "tis", tis_cap=1.5), torch.ones_like(weight))
    expected = grads(cfg, weight)
    assert bool(got[1].abs().sum() > 0)
    for g, e in zip(got, expected, strict=True):
        assert torch.allclose(g, e, atol=1e-6)


def test_mis_zeroes_exactly_the_sampled_tokens_outside_the_band(shifted) -> None:
    cfg, prepared, logits, delta = shifted
    base = token_terms(logits, prepared, cfg)["pg"]
    pg = token_terms(logits, prepared, with_terms(cfg, "mis", mis_cap=2.0))["pg"]
    where = sampled_by_sampler(prepared)
    outside = where & ((delta > math.log(2.0)) | (delta < -math.log(2.0)))
    assert bool(outside.any()) and bool((where & ~outside).any())
    assert torch.equal(pg[outside], torch.zeros_like(pg[outside]))
    assert torch.equal(pg[~outside], base[~outside])
    re = token_terms(logits, prepared, with_terms(cfg, "mis", mis_cap=2.0, mis_reweight=True))["pg"]
    kept = where & ~outside
    assert torch.allclose(re[kept], base[kept] * torch.exp(delta[kept]), atol=1e-6)
    assert torch.equal(re[~where], base[~where])


def test_tis_and_mis_statistics(shifted) -> None:
    from baselines.train.rl import rl_loss

    cfg, prepared, logits, delta = shifted
    control_ids = torch.tensor([0])  # no term here uses them
    _, stats = rl_loss(logits, prepared, with_terms(cfg, "tis", "mis", tis_cap=1.5, mis_cap=2.0), control_ids)
    b = prepared.batch
    on_policy = (b.loss_mask > 0) & (~b.is_expert)[:, None]
    where = sampled_by_sampler(prepared)
    weight = torch.where(where, torch.exp(delta).clamp(max=1.5), torch.ones_like(delta))
    assert float(stats["tis_weight_mean"]) == pytest.approx(float(weight[on_policy].mean()), rel=1e-5)
    capped = where & (torch.exp(delta) > 1.5)
    assert float(stats["tis_capped_frac"]) == pytest.approx(float(capped[on_policy].float().mean()), rel=1e-5)
    outside = where & (delta.abs() > math.log(2.0))
    assert float(stats["mis_masked_frac"]) == pytest.approx(float(outside[on_policy].float().mean()), rel=1e-5)


# ---------------------------------------------------------------- the low-precision sampler


def test_config_rejects_unknown_dtypes_and_caps(tmp_path) -> None:
    with pytest.raises(ValueError, match="sampler_dtype must be one of .*got 'fp8'"):
        RLConfig(init="x", sampler_dtype="fp8")
    with pytest.raises(ValueError, match="tis_cap must be ≥ 1, got 0.5"):
        SupervisionConfig(use=["tis"], tis_cap=0.5)
    with pytest.raises(ValueError, match="mis_cap must be > 1"):
        SupervisionConfig(use=["mis"], mis_cap=1.0)


def test_float32_sampler_is_the_policy_itself(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path))
    assert trainer.sampler is trainer.policy and trainer.sampler_model is trainer.model
    prepared, diag = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    assert diag["train/logp_mismatch"] < 1e-5
    assert diag["train/sampler_ratio_max"] == pytest.approx(1.0, abs=1e-4)
    assert diag["train/sampler_ratio_min"] == pytest.approx(1.0, abs=1e-4)


def test_a_llama_policy_samples_with_the_log_probs_the_trainer_computes(tokenizer, chat, trajectories, tmp_path) -> None:
    """The base-mixture model is a Llama (RoPE): its rollouts (KV-cached, turn by turn) must score
    each sampled token as the trainer's full forward does, else RL would see a false mismatch."""
    from baselines.llm.model import TinyLMConfig, build_tiny_model, save_pretrained
    from baselines.train.sft import sft_step

    model = build_tiny_model(TinyLMConfig(arch="llama", d_model=48, n_layers=2, n_heads=4, d_ff=96, max_positions=512),
                             tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(20):
        sft_step(model, optimizer, chat, trajectories[step * 8 : step * 8 + 8], temperature=1.0, grad_clip=1.0,
                 max_observation_tokens=64, step=step)
    trainer = RLTrainer(rl_config(save_pretrained(model, tokenizer, tmp_path / "llama"), tmp_path / "rl"))
    prepared, diag = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    assert prepared.batch.loss_mask.sum() > 20  # sampled tokens were compared
    assert diag["train/logp_mismatch"] < 1e-5
    assert diag["train/sampler_ratio_max"] == pytest.approx(1.0, abs=1e-4)
    assert diag["train/sampler_ratio_min"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "int8", "int4"])
def test_low_precision_sampler_opens_a_logp_gap(sft_checkpoint, tmp_path, dtype) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, sampler_dtype=dtype))
    assert trainer.sampler_model is not trainer.model and trainer.policy.model is trainer.model
    assert {p.dtype for p in trainer.sampler_model.parameters()} == {sampler_storage_dtype(dtype)}
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    trainer.sync_sampler()
    prepared, diag = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    assert diag["train/logp_mismatch"] > 1e-4
    assert diag["train/sampler_ratio_max"] > 1.0 > diag["train/sampler_ratio_min"]
    assert prepared.old_logp.dtype == torch.float32


def test_sampler_is_refreshed_from_the_trained_weights_before_each_rollout(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, sampler_dtype="bfloat16", steps=1, eval_every=0))
    with torch.no_grad():  # an update of the float32 policy that the sampler has not seen yet
        for p in trainer.model.parameters():
            p.add_(0.01)
    assert any(not torch.equal(s, p.detach().to(torch.bfloat16))
               for s, p in zip(trainer.sampler_model.parameters(), trainer.model.parameters(), strict=True))
    seen = []
    collect = trainer.collect

    def checked(tasks):
        seen.append(all(torch.equal(s, p.detach().to(torch.bfloat16))
                        for s, p in zip(trainer.sampler_model.parameters(), trainer.model.parameters(), strict=True)))
        return collect(tasks)

    trainer.collect = checked
    trainer.train_step()
    assert seen == [True]


@pytest.mark.parametrize("bits", [8, 4])
def test_quantised_weights_sit_on_per_row_levels_within_half_a_step(bits) -> None:
    torch.manual_seed(0)
    top = 2 ** (bits - 1) - 1
    model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 32), torch.nn.LayerNorm(32),
                                torch.nn.Linear(32, 50, bias=False))
    with torch.no_grad():
        model[1].weight[3].zero_()  # an all-zero row must stay zero (no division by zero)
        model[3].weight[0, 5] = 40.0  # one outlier coarsens only its own row
    before = copy.deepcopy(model)
    quantize_weights_(model, bits)
    for i in (1, 3):
        w, w0 = model[i].weight, before[i].weight
        step = w0.abs().amax(dim=1, keepdim=True) / top
        levels = torch.where(step > 0, w / step, torch.zeros_like(w))
        assert torch.allclose(levels, levels.round(), atol=1e-3) and levels.abs().max() <= top + 1e-3
        assert ((w - w0).abs() <= step / 2 + 1e-6).all() and not torch.equal(w, w0)
        assert max(len(torch.unique(row)) for row in w) <= 2 * top + 1
    assert torch.equal(model[1].weight[3], torch.zeros(16))
    assert (model[3].weight[1] - before[3].weight[1]).abs().max() < (model[3].weight[0] - before[3].weight[0]).abs().max()
    for kept in ("0.weight", "1.bias", "2.weight", "2.bias"):  # embeddings, biases and norms are not quantised
        assert torch.equal(model.state_dict()[kept], before.state_dict()[kept]), kept
    again = quantize_weights_(copy.deepcopy(model), bits)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), model.parameters(), strict=True))
    untouched = quantize_sampler_(copy.deepcopy(before), "bfloat16")
    assert all(torch.equal(a, b) for a, b in zip(untouched.parameters(), before.parameters(), strict=True))
    with pytest.raises(ValueError, match="sampler dtype must be one of .*got 'int3'"):
        sampler_storage_dtype("int3")
    with pytest.raises(ValueError, match="bits must be in 2..16, got 1"):
        quantize_weights_(model, 1)


def test_int8_sampler_is_requantised_from_the_trained_weights_before_each_rollout(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, sampler_dtype="int8", steps=1, eval_every=0))

    def quantised_policy():
        return quantize_weights_(copy.deepcopy(trainer.model), 8).parameters()

    assert all(torch.equal(s, q) for s, q in zip(trainer.sampler_model.parameters(), quantised_policy(), strict=True))
    with torch.no_grad():  # an update of the float32 policy that the sampler has not seen yet
        for p in trainer.model.parameters():
            p.mul_(1.01)
    seen = []
    collect = trainer.collect

    def checked(tasks):
        seen.append(all(torch.equal(s, q) for s, q in zip(trainer.sampler_model.parameters(), quantised_policy(),
                                                          strict=True)))
        return collect(tasks)

    trainer.collect = checked
    trainer.train_step()
    assert seen == [True]


def test_a_float32_copy_reproduces_the_default_run(sft_checkpoint, tmp_path) -> None:
    """The copy-and-refresh path with no precision change reproduces the default (no copy) run: the
    same tokens, rewards and update counts, every metric equal to float rounding. (Bit equality is
    not expected of a copy: the checkpoint's weights sit at other memory alignments than a copy's,
    and CPU matmul kernels round the last bit by alignment -- a fresh deepcopy differs the same way.
    The default float32 sampler is no copy: it is the policy itself, the path every run took before.)"""
    cfg = dict(steps=2, eval_every=0, supervision=SupervisionConfig(use=["tis", "mis"]))
    plain = RLTrainer(rl_config(sft_checkpoint, tmp_path / "plain", **cfg))
    plain.train()
    copied = RLTrainer(rl_config(sft_checkpoint, tmp_path / "copy", **cfg))
    # a float32 copy that starts bf16-rounded: only the refresh before each rollout makes it right
    copied.sampler_model = fp32_copy = sampler_copy(copied.model, "bfloat16").to(torch.float32)
    copied.sampler = CausalLMPolicy(fp32_copy, copied.control, temperature=copied.cfg.temperature)
    assert copied.sampler_model is not copied.model
    copied.train()
    assert len(plain.history) == len(copied.history) == 2
    for a, b in zip(plain.history, copied.history, strict=True):
        assert a.keys() == b.keys()
        for key in ("train/success", "train/reward", "train/policy_tokens", "train/gen_tokens", "train/updates",
                    "train/skipped_updates"):
            assert a[key] == b[key], key
        for key in a.keys() - set(TIMING):
            assert same(a[key], b[key]) or a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    for p, q in zip(plain.model.parameters(), copied.model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_two_step_run_with_bf16_sampler_and_both_fixes(sft_checkpoint, tmp_path) -> None:
    sup = SupervisionConfig(use=["tis", "mis"], tis_cap=2.0, mis_cap=2.0)
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, sampler_dtype="bfloat16", supervision=sup, eval_every=2))
    summary = trainer.train()
    assert summary["steps"] == 2 and summary["stopped"] is None
    for m in trainer.history:
        for key in ("train/loss", "train/pg_loss", "train/tis_weight_mean", "train/tis_capped_frac",
                    "train/mis_masked_frac", "train/logp_mismatch", "train/sampler_ratio_max", "train/sampler_ratio_min"):
            assert math.isfinite(m[key]), key
        assert m["train/logp_mismatch"] > 0
        assert 0 < m["train/tis_weight_mean"] <= 2.0 and 0 <= m["train/mis_masked_frac"] <= 1
    assert "eval/success" in trainer.history[-1]


def test_resume_with_a_bf16_sampler_reproduces_the_next_steps_exactly(sft_checkpoint, tmp_path) -> None:
    """The sampler holds no state of its own: rebuilt from the checkpoint and refreshed before each
    rollout, it samples what the uninterrupted run sampled."""
    cfg = dict(sampler_dtype="bfloat16", eval_every=0, supervision=SupervisionConfig(use=["tis", "mis"]))
    straight = RLTrainer(rl_config(sft_checkpoint, tmp_path / "a", steps=3, **cfg))
    straight.train()
    RLTrainer(rl_config(sft_checkpoint, tmp_path / "b", steps=2, save_every=2, **cfg)).train()
    resumed = RLTrainer(rl_config(sft_checkpoint, tmp_path / "b", steps=3, save_every=2, **cfg), resume="auto")
    resumed.train()
    for key in ("train/loss", "train/logp_mismatch", "train/sampler_ratio_max", "train/tis_weight_mean",
                "train/policy_tokens", "train/success"):
        assert resumed.history[2][key] == straight.history[2][key], key


# ---------------------------------------------------------------- Ray rollout actors


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_ray_actor_samples_in_the_sampler_dtype(sft_checkpoint, chat, dtype) -> None:
    """An actor built for ``sampler_dtype`` and sent the trainer's sampler weights returns the
    episodes of the trainer's own sampler (in-process, no Ray cluster needed)."""
    from baselines.llm.model import load_pretrained
    from baselines.ray_rollout import RolloutWorker, WorkerSpec
    from baselines.train.envs import make_envs

    model, tokenizer = load_pretrained(sft_checkpoint)
    sampler = sampler_copy(model, dtype)
    settings = RolloutSettings(max_new_tokens=24, max_observation_tokens=32, per_episode_rng=True)
    requests = [EpisodeRequest(f"lookup-train-{i:05d}", seed=500 + i) for i in range(3)]
    spec = WorkerSpec("ToolGym/Lookup-v0", "train", {}, num_envs=3, model_config=model.config, tokenizer=tokenizer,
                      include_system_prompt=False, settings=settings, dtype=dtype)
    worker = RolloutWorker(spec)
    worker.load_weights(sampler.state_dict(), 0)
    assert {p.dtype for p in worker.model.parameters()} == {sampler_storage_dtype(dtype)}
    got = worker.rollout(requests, [None], 0)
    expected = collect_episodes(CausalLMPolicy(sampler, chat.control), chat, make_envs("ToolGym/Lookup-v0", 3, "train"),
                                requests, settings, context_length=256)
    assert [e.input_ids for e in got] == [e.input_ids for e in expected]
    assert [e.sample_logprobs for e in got] == [e.sample_logprobs for e in expected]


def test_ray_pool_is_built_with_the_sampler_dtype(monkeypatch, sft_checkpoint, tmp_path) -> None:
    pytest.importorskip("ray")
    from baselines import ray_rollout
    from baselines.llm.model import load_pretrained

    monkeypatch.setattr(ray_rollout, "RayRolloutPool", lambda spec, workers, **kwargs: spec)
    model, tokenizer = load_pretrained(sft_checkpoint)
    cfg = rl_config(sft_checkpoint, tmp_path, sampler_dtype="bfloat16", rollout_workers=2)
    spec = ray_rollout.pool_from_trainer(cfg, model, tokenizer, RolloutSettings())
    assert spec.dtype == "bfloat16"
