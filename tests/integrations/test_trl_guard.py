"""Collapse guard in TRL: the same diagnostics and loss terms as ToolGym's trainer, on the same tokens.

The ToolGym side of every comparison is built the way ``baselines.train.rl`` builds it: episodes
(prompt + completion ids, policy mask) collated by ``baselines.train.batch.collate``, logits from
``batch_logits``, then the functions of ``baselines.train.supervision`` / ``diagnostics``. The TRL
side is what ``GuardedGRPOTrainer`` sees: TRL's left-padded ``prompt_ids``, right-padded
``completion_ids`` with ``completion_mask`` and ``tool_mask``, advantages and old log-probs.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import ENV_ID, ENV_KWARGS, require

trl = require("trl", "trl")
require("datasets", "trl")
torch = require("torch", "train")

from baselines.integrations import trl_guard  # noqa: E402
from baselines.integrations.trl_guard import CollapseGuard, GuardConfig, control_tokens  # noqa: E402
from toolgym.integrations.trl import TRLAdapter, prepare_tokenizer  # noqa: E402

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
ROOT = Path(__file__).resolve().parents[2]
ALL_TERMS = ["sft_mix", "control_kl", "control_clip", "spike_penalty", "offpolicy_expert"]
TEMPERATURE = 0.7


def grpo_args(out: Path, **overrides: Any) -> Any:
    """A tiny CPU GRPOConfig (12 rollouts = 3 groups of 4 per step)."""
    from trl import GRPOConfig

    values = dict(
        output_dir=str(out), max_steps=2, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=64, max_tool_calling_iterations=3, learning_rate=1e-3, temperature=TEMPERATURE,
        logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
    )
    values.update(overrides)
    return GRPOConfig(**values)


def load(checkpoint: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(checkpoint, local_files_only=True)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(checkpoint, local_files_only=True))
    return model, tokenizer


@pytest.fixture(scope="module")
def adapter() -> TRLAdapter:
    return TRLAdapter(ENV_ID, system_prompt=None, **ENV_KWARGS)


@pytest.fixture(scope="module")
def guarded(tiny_checkpoint: Path, adapter: TRLAdapter, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A GuardedGRPOTrainer with every term on (not trained), its policy nudged away from the
    reference so that control_kl is not trivially 0."""
    torch.set_num_threads(2)
    model, tokenizer = load(tiny_checkpoint)
    guard = CollapseGuard(adapter, supervision=list(ALL_TERMS), probe_size=4, sft_mix_batch=3)
    trainer = trl_guard.GuardedGRPOTrainer(
        guard=guard, model=model, processing_class=tokenizer, args=grpo_args(tmp_path_factory.mktemp("g")),
        **adapter.trainer_kwargs(num_tasks=8),
    )
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return trainer


def trl_batch(guard: CollapseGuard, n: int = 5, seed: int = 0) -> dict[str, Any]:
    """TRL inputs from oracle conversations with some completion tokens replaced by random
    (often control) tokens, different prompt lengths, advantages and stale log-probs."""
    rng = random.Random(seed)
    control_ids = guard.control.id_list
    vocab = len(guard.trainer.processing_class)
    rows = []
    for task in guard._task_ids()[:n]:
        ep = guard.oracle_episode(task)
        ids, mask, p = list(ep.input_ids), list(ep.loss_mask), ep.prompt_len
        prompt = ids[: p - rng.randrange(0, 3)]  # vary prompt lengths (left padding)
        completion = ids[len(prompt):]
        policy = mask[len(prompt):]
        for j in range(len(completion)):
            if policy[j] and rng.random() < 0.15:
                completion[j] = rng.choice(control_ids) if rng.random() < 0.6 else rng.randrange(vocab)
        rows.append((prompt, completion, policy))
    pad = guard.trainer.processing_class.pad_token_id
    width_p = max(len(r[0]) for r in rows)
    width_c = max(len(r[1]) for r in rows)
    b = len(rows)
    prompt_ids = torch.full((b, width_p), pad)
    prompt_mask = torch.zeros((b, width_p), dtype=torch.long)
    completion_ids = torch.full((b, width_c), pad)
    completion_mask = torch.zeros((b, width_c), dtype=torch.long)
    tool_mask = torch.ones((b, width_c), dtype=torch.long)
    for i, (prompt, completion, policy) in enumerate(rows):
        prompt_ids[i, width_p - len(prompt):] = torch.tensor(prompt)
        prompt_mask[i, width_p - len(prompt):] = 1
        completion_ids[i, : len(completion)] = torch.tensor(completion)
        completion_mask[i, : len(completion)] = 1
        tool_mask[i, : len(completion)] = torch.tensor(policy)
    gen = torch.Generator().manual_seed(seed)
    loss_mask = completion_mask * tool_mask
    return {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
        "completion_mask": completion_mask, "tool_mask": tool_mask,
        "advantages": torch.randn(b, generator=gen),
        "old_per_token_logps": -torch.rand((b, width_c), generator=gen) * 3,
        "num_items_in_batch": loss_mask.sum(),
        "_rows": rows,
    }


def toolgym_batch(guard: CollapseGuard, inputs: dict[str, Any], control: Any) -> Any:
    """ToolGym's TokenBatch of the same rows (prompt + completion, policy mask), built directly."""
    from baselines.llm.rollout import Episode
    from baselines.train.batch import collate

    episodes = [
        Episode(task_id="t", input_ids=p + c, loss_mask=[0] * len(p) + m, sample_logprobs=[0.0] * (len(p) + len(c)), prompt_len=len(p))
        for p, c, m in inputs["_rows"]
    ]
    return collate(episodes, control)


def grads(model: Any) -> list[torch.Tensor]:
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def assert_same(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if math.isnan(b[key]):
            assert math.isnan(a[key]), key
        else:
            assert a[key] == pytest.approx(b[key], abs=1e-6), key


# ------------------------------------------------------------------------------------------------
def test_control_tokens_come_from_the_action_format_and_the_tokenizer(tiny_checkpoint: Path) -> None:
    from transformers import AutoTokenizer

    from baselines.llm.tokenizer import ChatFormat

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint, local_files_only=True)
    hermes = control_tokens(tokenizer, "hermes")
    assert hermes.ids == ChatFormat(tokenizer).control.ids  # ToolGym's own control tokens for its format
    assert hermes.eot_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    # xml_call's tags (<call>, <final>, <result>) are not single tokens here: only the turn markers remain
    xml = control_tokens(tokenizer, "xml_call")
    assert set(xml.names) == {"im_start", "im_end", "eos"}
    tokenizer.add_tokens(["<call>", "</call>"])
    xml = control_tokens(tokenizer, "xml_call")
    assert xml.ids["tool_call"] == tokenizer.convert_tokens_to_ids("<call>")
    assert xml.ids["tool_call_end"] == tokenizer.convert_tokens_to_ids("</call>")
    assert set(control_tokens(tokenizer, "openai_json").names) == {"im_start", "im_end", "eos"}


def test_installed_trl_is_a_tested_version() -> None:
    """The guard uses two private GRPOTrainer members: a TRL upgrade must be re-tested and added here."""
    assert trl.__version__ in trl_guard.TESTED_TRL_VERSIONS


def test_importing_the_guard_imports_neither_torch_nor_trl() -> None:
    code = "import baselines.integrations.trl_guard, sys; assert not {'trl', 'torch', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_guard_config_rejects_bad_values(adapter: TRLAdapter) -> None:
    with pytest.raises(Exception, match="hint"):
        GuardConfig(supervision=["hint"])
    with pytest.raises(Exception, match="on_spike"):
        GuardConfig(on_spike="halt")
    with pytest.raises(Exception, match="spike_positions"):
        CollapseGuard(adapter, spike_positions="everywhere")
    with pytest.raises(Exception, match="spike_threshold_mode must be 'ref_relative' or 'absolute', got 'auto'"):
        GuardConfig(spike_threshold_mode="auto")
    with pytest.raises(Exception, match="spike_ref_factor must be ≥ 1"):
        GuardConfig(spike_ref_factor=0.5)


def test_terms_need_the_guarded_trainer_and_a_compatible_loss(tiny_checkpoint: Path, adapter: TRLAdapter, tmp_path: Path) -> None:
    from trl import GRPOTrainer

    from toolgym.core.errors import ConfigError

    model, tokenizer = load(tiny_checkpoint)
    plain = GRPOTrainer(model=model, processing_class=tokenizer, args=grpo_args(tmp_path / "p"), **adapter.trainer_kwargs(num_tasks=8))
    with pytest.raises(ConfigError, match="GuardedGRPOTrainer"):
        CollapseGuard(adapter, supervision=["control_kl"]).attach(plain)
    guard = CollapseGuard(adapter, probe_size=2).attach(plain)  # diagnostics only: fine on a plain GRPOTrainer
    assert any(isinstance(cb, trl_guard.CollapseGuardCallback) for cb in plain.callback_handler.callbacks)
    assert guard.control is not None and guard._probe.size == 2
    with pytest.raises(ConfigError, match="control_clip needs loss_type"):
        trl_guard.GuardedGRPOTrainer(
            guard=CollapseGuard(adapter, supervision=["control_clip"]), model=model, processing_class=tokenizer,
            args=grpo_args(tmp_path / "c", loss_type="cispo"), **adapter.trainer_kwargs(num_tasks=8),
        )


def test_trl_rows_become_the_same_toolgym_tokens(guarded: Any) -> None:
    guard = guarded.guard
    inputs = trl_batch(guard)
    episodes, starts = trl_guard.trl_episodes(inputs)
    for ep, start, (p, c, m) in zip(episodes, starts, inputs["_rows"], strict=True):
        assert ep.input_ids == p + c and ep.loss_mask == [0] * len(p) + m and start == len(p) - 1


def test_onpolicy_metrics_equal_toolgym_diagnostics_on_the_same_batch(guarded: Any) -> None:
    import torch.nn.functional as F

    from baselines.llm.tokenizer import ChatFormat
    from baselines.train.common import batch_logits
    from baselines.train.diagnostics import control_prob_stats

    guard = guarded.guard
    inputs = trl_batch(guard)
    _, stats = guard.loss_terms(guarded.model, inputs)
    control = ChatFormat(guarded.processing_class).control
    batch = toolgym_batch(guard, inputs, control)
    with torch.no_grad():
        probs = F.softmax(batch_logits(guarded.model, batch, TEMPERATURE), -1)
    ctrl = probs[..., control.id_list]
    expected = control_prob_stats(ctrl, batch.targets, batch.loss_mask, batch.illegal, batch.after_open, control.names,
                                  control.id_list, control.names_by_id[control.eot_id], "diag/onpolicy")
    for k, name in enumerate(control.names):
        hit = (batch.loss_mask > 0) & (batch.targets == control.id_list[k])
        expected[f"diag/onpolicy/sampled_max/{name}"] = float(ctrl[..., k][hit].max()) if bool(hit.any()) else math.nan
    got = {k: v for k, v in stats.items() if k.startswith("diag/")}
    assert_same(got, expected)
    assert got["diag/onpolicy/illegal_total"] > 0  # the perturbed tokens put control tokens where they are illegal


def test_probe_metrics_equal_toolgym_probe_stats(guarded: Any) -> None:
    from baselines.llm.tokenizer import ChatFormat
    from baselines.train.common import probe_stats

    guard = guarded.guard
    expected = probe_stats(guarded.model, guard._probe, ChatFormat(guarded.processing_class), temperature=TEMPERATURE)
    assert_same(guard.probe_metrics(guarded.model), expected)
    assert guard._probe.size == 4 and not math.isnan(expected["diag/probe/after_open_eot"])


def _term_in_trl(guarded: Any, term: str, inputs: dict[str, Any]) -> tuple[float, list[torch.Tensor]]:
    guard = guarded.guard
    saved = list(guard.config.supervision), guard.config.onpolicy_diagnostics
    guard.config.supervision, guard.config.onpolicy_diagnostics = [term], False
    try:
        guarded.model.zero_grad(set_to_none=True)
        loss, _ = guard.loss_terms(guarded.model, inputs)
        loss.backward()
        return float(loss), grads(guarded.model)
    finally:
        guard.config.supervision, guard.config.onpolicy_diagnostics = saved


def _term_in_toolgym(model: Any, fn: Any) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    return float(loss.detach()), grads(model)


def _assert_term_equal(trl_side: tuple[float, list[torch.Tensor]], toolgym_side: tuple[float, list[torch.Tensor]]) -> None:
    value, g = trl_side
    value_t, g_t = toolgym_side
    assert value == pytest.approx(value_t, abs=1e-6)
    assert any(float(x.abs().max()) > 0 for x in g_t), "the term has no gradient: the comparison would be vacuous"
    for a, b in zip(g, g_t, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), float((a - b).abs().max())


def test_control_kl_spike_penalty_and_control_clip_equal_toolgym_value_and_gradient(guarded: Any, tiny_checkpoint: Path) -> None:
    from baselines.llm.tokenizer import ChatFormat
    from baselines.train import supervision as S
    from baselines.train.common import batch_logits

    guard, model, cfg = guarded.guard, guarded.model, guarded.guard.config
    inputs = trl_batch(guard, seed=3)
    control = ChatFormat(guarded.processing_class).control
    ids = torch.tensor(control.id_list)
    batch = toolgym_batch(guard, inputs, control)

    # the reference is the initial policy (a fresh load of the checkpoint), not the nudged one
    fresh, _ = load(tiny_checkpoint)
    with torch.no_grad():
        ref_logits = batch_logits(fresh, batch, TEMPERATURE)
        assert torch.allclose(batch_logits(guard.ref_model, batch, TEMPERATURE), ref_logits, atol=1e-6)

    def ckl() -> torch.Tensor:
        logits = batch_logits(model, batch, TEMPERATURE)
        positions = S.control_kl_positions(batch.targets, ref_logits.argmax(-1), batch.loss_mask, ids)
        return cfg.control_kl_coef * S.control_kl(logits, ref_logits, positions)

    _assert_term_equal(_term_in_trl(guarded, "control_kl", inputs), _term_in_toolgym(model, ckl))

    # spike_penalty: the threshold relative to the reference's own probability (ToolGym's default)
    assert cfg.spike_threshold_mode == "ref_relative"
    ref_control = torch.softmax(ref_logits, -1)[..., ids]

    def spike() -> torch.Tensor:
        logits = batch_logits(model, batch, TEMPERATURE)
        threshold = cfg.spike_ref_factor * ref_control
        return cfg.spike_coef * S.spike_penalty(logits, ids, batch.illegal, batch.loss_mask, threshold)

    _assert_term_equal(_term_in_trl(guarded, "spike_penalty", inputs), _term_in_toolgym(model, spike))
    cfg.spike_threshold_mode = "absolute"  # and the fixed threshold
    try:

        def spike_absolute() -> torch.Tensor:
            logits = batch_logits(model, batch, TEMPERATURE)
            return cfg.spike_coef * S.spike_penalty(logits, ids, batch.illegal, batch.loss_mask, cfg.spike_threshold)

        _assert_term_equal(_term_in_trl(guarded, "spike_penalty", inputs), _term_in_toolgym(model, spike_absolute))
    finally:
        cfg.spike_threshold_mode = "ref_relative"

    # control_clip: ToolGym's clipped surrogate with the tight ε at control positions minus TRL's
    # (the 'dapo' default: token sum over the batch's policy tokens)
    def clip() -> torch.Tensor:
        logits = batch_logits(model, batch, TEMPERATURE)
        logp = S.F.log_softmax(logits, -1).gather(-1, batch.targets[..., None]).squeeze(-1)
        old = torch.zeros_like(logp)
        for i, (p, _, _) in enumerate(inputs["_rows"]):
            n = min(inputs["old_per_token_logps"].shape[1], old.shape[1] - (len(p) - 1))
            old[i, len(p) - 1 : len(p) - 1 + n] = inputs["old_per_token_logps"][i, :n]
        adv = inputs["advantages"][:, None].expand_as(logp)
        eps = guarded.epsilon_low, guarded.epsilon_high
        tight, _, _ = S.clipped_pg_loss(logp, old, adv, *S.clip_ranges(batch.control_mask, *eps, cfg.control_clip_eps))
        base, _, _ = S.clipped_pg_loss(logp, old, adv, *S.clip_ranges(batch.control_mask, *eps, None))
        return ((tight - base) * batch.loss_mask).sum() / batch.loss_mask.sum()

    trl_clip = _term_in_trl(guarded, "control_clip", inputs)
    assert trl_clip[0] != 0  # stale ratios: some control position is clipped tighter
    _assert_term_equal(trl_clip, _term_in_toolgym(model, clip))


def test_trl_loss_with_control_clip_is_toolgyms_control_clipped_objective(tiny_checkpoint: Path, adapter: TRLAdapter, tmp_path: Path) -> None:
    """End to end through GRPOTrainer.compute_loss: TRL's own clipped loss plus the guard's correction
    equals ToolGym's surrogate with the tight ε at control positions (TRL's 'dapo' normalisation).

    A RoPE model (tiny Llama) is used: TRL's loss forward runs on left-padded prompts without
    position ids, which shifts absolute positions (GPT-2) but leaves rotary attention unchanged."""
    from baselines.llm.model import TinyLMConfig, build_tiny_model
    from baselines.llm.tokenizer import ChatFormat
    from baselines.train import supervision as S
    from baselines.train.common import batch_logits

    _, tokenizer = load(tiny_checkpoint)
    model = build_tiny_model(TinyLMConfig(arch="llama", d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=512), tokenizer, seed=0)
    guard = CollapseGuard(adapter, supervision=["control_clip"], probe_size=0, control_clip_eps=0.02)
    trainer = trl_guard.GuardedGRPOTrainer(
        guard=guard, model=model, processing_class=tokenizer, args=grpo_args(tmp_path, temperature=1.0),
        **adapter.trainer_kwargs(num_tasks=8),
    )
    trainer.current_gradient_accumulation_steps = 1
    model.train()
    inputs = trl_batch(guard, seed=5)
    inputs["old_per_token_logps"] = inputs["old_per_token_logps"] * 0.1 - 1.0
    control = ChatFormat(tokenizer).control
    batch = toolgym_batch(guard, inputs, control)

    def toolgym() -> torch.Tensor:
        logits = batch_logits(model, batch, 1.0)
        logp = S.F.log_softmax(logits, -1).gather(-1, batch.targets[..., None]).squeeze(-1)
        old = torch.zeros_like(logp)
        for i, (p, _, _) in enumerate(inputs["_rows"]):
            n = min(inputs["old_per_token_logps"].shape[1], old.shape[1] - (len(p) - 1))
            old[i, len(p) - 1 : len(p) - 1 + n] = inputs["old_per_token_logps"][i, :n]
        adv = inputs["advantages"][:, None].expand_as(logp)
        ranges = S.clip_ranges(batch.control_mask, trainer.epsilon_low, trainer.epsilon_high, 0.02)
        per_token, _, clipped = S.clipped_pg_loss(logp, old, adv, *ranges)
        assert bool((clipped & batch.control_mask).any())  # the tight range is active somewhere
        return (per_token * batch.loss_mask).sum() / batch.loss_mask.sum()

    def trl_side() -> torch.Tensor:
        return trainer.compute_loss(model, inputs)

    value_t, grads_t = _term_in_toolgym(model, toolgym)
    value, grads_trl = _term_in_toolgym(model, trl_side)
    assert value == pytest.approx(value_t, abs=1e-6)
    for a, b in zip(grads_trl, grads_t, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), float((a - b).abs().max())
    guard.config.supervision = []  # TRL alone clips control tokens with its own, wider ε
    with torch.no_grad():
        assert abs(float(trainer.compute_loss(model, inputs)) - value_t) > 1e-4


def test_sft_mix_and_expert_replay_equal_toolgym_value_and_gradient(guarded: Any) -> None:
    from baselines.train import supervision as S
    from baselines.train.batch import collate
    from baselines.train.common import batch_logits

    guard, model, cfg = guarded.guard, guarded.model, guarded.guard.config
    inputs = trl_batch(guard)
    guard._rng = random.Random(7)
    rng = random.Random(7)  # the guard draws its sft_mix tasks from the same stream
    tasks = [rng.choice(guard._task_ids()) for _ in range(cfg.sft_mix_batch)]
    sft = collate([guard.oracle_episode(t) for t in tasks], guard.control)

    def nll() -> torch.Tensor:
        return cfg.sft_mix_coef * S.sft_nll(batch_logits(model, sft, TEMPERATURE), sft.targets, sft.loss_mask)

    _assert_term_equal(_term_in_trl(guarded, "sft_mix", inputs), _term_in_toolgym(model, nll))

    assert [guard.expert_reward(t) for t in guard._task_ids()[:3]] == [1.0, 1.0, 1.0]  # the oracle solves Lookup
    experts = collate([guard.oracle_episode(t) for t in guard._task_ids()[:3]], guard.control, [0.5, -1.0, 1.5])
    guarded._guard_experts, guarded._guard_expert_calls = [experts], 0

    def shaping() -> torch.Tensor:
        logits = batch_logits(model, experts, TEMPERATURE)
        logp = S.F.log_softmax(logits, -1).gather(-1, experts.targets[..., None]).squeeze(-1)
        per_token = S.policy_shaping_loss(logp, experts.advantages[:, None].expand_as(logp), cfg.expert_gamma)
        return cfg.expert_coef * S.masked_mean(per_token, experts.loss_mask)

    _assert_term_equal(_term_in_trl(guarded, "offpolicy_expert", inputs), _term_in_toolgym(model, shaping))


def test_expert_replay_joins_each_group_with_toolgym_advantages(guarded: Any) -> None:
    from types import SimpleNamespace

    from baselines.train.batch import group_advantages

    tasks = guarded.guard._task_ids()[:2]
    inputs = [{"task_id": tasks[i // 4]} for i in range(8)]  # 2 groups of num_generations=4
    rewards = [0.0, 0.0, 1.0, -0.1, 0.0, 0.0, 0.0, 0.0]
    output = {"advantages": torch.zeros(8)}
    guarded._guard_set_experts(inputs, [SimpleNamespace(reward=r) for r in rewards], output)
    expected = group_advantages(torch.tensor(rewards + [1.0, 1.0]), torch.tensor([0] * 4 + [1] * 4 + [0, 1]), 1e-6)
    assert torch.allclose(output["advantages"], expected[:8])
    experts = guarded._guard_experts
    assert len(experts) == 1 and experts[0].size == 2 and bool(experts[0].is_expert.all())
    assert torch.allclose(experts[0].advantages, expected[8:])
    assert float(expected[9]) > float(expected[8]) > 0  # the expert of the all-failed group is the most advantaged


def test_error_metrics_count_toolgym_error_codes_per_env_step(adapter: TRLAdapter) -> None:
    from toolgym.core.errors import INVALID_ACTION_CODES

    guard = CollapseGuard(adapter, probe_size=0)
    guard._episodes_seen = len(adapter.episodes)
    env = adapter.environment_factory()
    env.reset(seed=0, task_id="lookup-train-00003")
    env.get(key=7)  # schema_violation
    env.get(key="K1", page=2)  # schema_violation
    env.get(key="K1")
    adapter.toolgym_reward([[{"role": "assistant", "content": "no idea"}]], [env])
    clean = adapter.environment_factory()
    clean.reset(seed=0, task_id="lookup-train-00003")
    adapter.toolgym_reward([[{"role": "assistant", "content": "no idea"}]], [clean])
    steps = len(env.episode.steps) + len(clean.episode.steps)
    metrics = guard.error_metrics()
    assert metrics["toolgym/errors/schema_violation"] == pytest.approx(2 / steps)
    invalid = {c.value for c in INVALID_ACTION_CODES}
    assert metrics["toolgym/format_error_rate"] == (0.5 if "schema_violation" in invalid else 0.0)
    assert sum(v for k, v in metrics.items() if k.startswith("toolgym/errors/")) == pytest.approx(2 / steps)
    assert guard.error_metrics()["toolgym/format_error_rate"] == 0.0  # nothing new since the last call


def test_detector_rollback_restores_the_last_good_checkpoint_and_stops(guarded: Any, tmp_path: Path) -> None:
    from transformers import TrainerControl, TrainerState

    guard = CollapseGuard(guarded.guard.adapter, on_spike="rollback", probe_size=0)
    guard.trainer, guard.control = guarded, guarded.guard.control
    callback = trl_guard.CollapseGuardCallback(guard)
    model = guarded.model
    args = type("A", (), {"output_dir": str(tmp_path)})()
    state, control = TrainerState(), TrainerControl()
    state.global_step = 1
    model.save_pretrained(tmp_path / "checkpoint-1")
    callback.on_save(args, state, control)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    values = iter([0.001, 0.9])  # the probe's illegal mass jumps at step 2
    guard.probe_metrics = lambda _model: {"diag/probe/illegal_total": next(values), "diag/probe/after_open_eot": 0.0}
    callback.on_step_end(args, state, control, model=model)
    assert not control.should_training_stop and guard.fired is None
    state.global_step = 2
    callback.on_step_end(args, state, control, model=model)
    assert control.should_training_stop and guard.fired == "spike"
    assert guard.rolled_back_to == tmp_path / "checkpoint-1"
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert guard.history[-1]["diag/spike_ratio"] == 1.0


def expected_metrics(tokenizer: Any) -> set[str]:
    """Every metric the guard must log with all terms on, named by ToolGym's own functions (so a
    rename in baselines.train is followed here)."""
    from baselines.train.diagnostics import CollapseDetector, SpikeDetector, control_prob_stats, episode_stats

    control = control_tokens(tokenizer, "hermes")
    c = len(control.names)
    z = torch.zeros((1, 1))
    names: set[str] = {"loss", "toolgym/success"} | {f"guard/{t}" for t in ("sft_mix_nll", "control_kl", "control_clip",
                                                                            "spike_penalty", "offpolicy_expert")}
    for prefix, target_p in (("diag/probe", z), ("diag/onpolicy", None)):
        names |= set(control_prob_stats(torch.zeros((1, 1, c)), z.long(), z, torch.zeros((1, 1, c), dtype=torch.bool),
                                        z.bool(), control.names, control.id_list, control.names_by_id[control.eot_id],
                                        prefix, target_probs=target_p))
    names |= {f"diag/onpolicy/sampled_max/{n}" for n in control.names}
    names |= set(SpikeDetector().update(1, 0.0, 0.0)) | set(CollapseDetector().update(1, 0.0))
    names |= {k for k in episode_stats([], "toolgym") if k == "toolgym/format_error_rate" or k.startswith("toolgym/errors/")}
    return names


@pytest.mark.slow
def test_two_grpo_steps_with_every_term_log_every_metric(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    torch.set_num_threads(2)
    model, tokenizer = load(tiny_checkpoint)
    adapter = TRLAdapter(ENV_ID, system_prompt=None, **ENV_KWARGS)
    logged: list[dict[str, Any]] = []

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, D102
            if logs and "loss" in logs:
                logged.append(dict(logs))

    guard = CollapseGuard(adapter, supervision=list(ALL_TERMS), probe_size=4, sft_mix_batch=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = trl_guard.GuardedGRPOTrainer(
        guard=guard, model=model, processing_class=tokenizer, args=grpo_args(tmp_path / "run"), callbacks=[Record()],
        **adapter.trainer_kwargs(num_tasks=16),
    )
    trainer.train()
    assert trainer.state.global_step == 2 and len(logged) == 2
    required = expected_metrics(tokenizer)
    assert len(required) > 100
    for entry in logged:
        missing = sorted(required - set(entry))
        assert not missing, missing
        for key in ("guard/sft_mix_nll", "guard/control_kl", "guard/spike_penalty", "guard/offpolicy_expert", "loss"):
            assert math.isfinite(entry[key]), key
    assert logged[1]["guard/control_kl"] > 0  # the policy moved away from its frozen reference
    # what TRL logged for the probe at the last step is ToolGym's probe_stats of the final model
    from baselines.llm.tokenizer import ChatFormat
    from baselines.train.common import probe_stats

    expected = probe_stats(model, guard._probe, ChatFormat(tokenizer), temperature=TEMPERATURE)
    for key, value in expected.items():
        got = logged[1][key]
        assert (got is None and math.isnan(value)) or got == pytest.approx(value, abs=1e-6), key
    assert any(not torch.equal(p.detach(), before[n]) for n, p in model.named_parameters())
    assert len(guard.history) == 2


@pytest.mark.slow
def test_example_under_accelerate_launch_with_two_processes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    require("accelerate", "accelerate")
    import json

    exe = shutil.which("accelerate")
    launcher = [exe] if exe else [sys.executable, "-m", "accelerate.commands.accelerate_cli"]
    out = tmp_path / "ddp"
    cmd = [*launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", "29531", str(ROOT / "examples" / "trl_collapse_guard.py"),
           "--model", str(tiny_checkpoint), "--env", ENV_ID, "--steps", "2", "--num-generations", "4",
           "--tasks-per-step", "1", "--max-completion-length", "48", "--probe-size", "2", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT),
           "TRL_EXPERIMENTAL_SILENCE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    logs = json.loads((out / "guard_metrics.json").read_text())
    assert logs["num_processes"] == 2
    assert len(logs["logs"]) == 2
    required = expected_metrics(load(tiny_checkpoint)[1])
    for entry in logs["logs"]:
        missing = sorted(required - set(entry))
        assert not missing, missing
