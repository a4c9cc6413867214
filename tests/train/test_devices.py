"""The trainers and the sampler on every torch device this machine has (the CPU everywhere, a CUDA
GPU where there is one): RL steps with the supervisory terms that touch the most tensors, a seeded
sampler that stays reproducible when the model is on a GPU and the generator on the CPU, and a GPU
run's checkpoint resuming on the CPU."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.llm.policy import CausalLMPolicy
from baselines.train.config import SupervisionConfig
from baselines.train.rl import RLTrainer
from tests.train.test_trainers import rl_config

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_a_cpu_generator_samples_reproducibly_whatever_the_models_device(device, model, chat) -> None:
    policy = CausalLMPolicy(model.to(device), chat.control, temperature=1.5)
    prompts = [[chat.control.id_list[0], 5, 6], [7]]
    runs = [policy.generate(prompts, max_new_tokens=12, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert [g.token_ids for g in runs[0]] == [g.token_ids for g in runs[1]]
    assert all(len(g.token_ids) == len(g.logprobs) > 0 for g in runs[0])
    assert all(lp <= 0 for g in runs[0] for lp in g.logprobs)


@pytest.mark.parametrize("device", DEVICES)
def test_rl_steps_run_on_the_device_and_the_checkpoint_resumes_on_the_cpu(device, sft_checkpoint, tmp_path) -> None:
    sup = SupervisionConfig(use=["sft_mix", "control_kl", "spike_penalty", "interleaved_sft"], sft_mix_batch=4,
                            interleave_every=1, interleave_window=1, interleave_steps=1, interleave_batch=4)
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, steps=2, save_every=2, device=device, supervision=sup,
                                  sampler_dtype="bfloat16"))
    assert next(trainer.model.parameters()).device.type == device
    trainer.train()
    for key in ("train/loss", "train/grad_norm", "train/kl_ref", "diag/probe/illegal_total", "eval/success"):
        assert math.isfinite(trainer.history[-1][key]), key
    assert any(m.get("train/interleaved_sft_tasks", 0) > 0 for m in trainer.history)  # an SFT phase ran there too
    resumed = RLTrainer(rl_config(sft_checkpoint, tmp_path, steps=3, save_every=2, device="cpu", supervision=sup,
                                  sampler_dtype="bfloat16"), resume="auto")
    assert resumed.step == 2
    assert next(resumed.model.parameters()).device.type == "cpu"
    resumed.train()
    assert resumed.step == 3 and len(resumed.history) == 3 and math.isfinite(resumed.history[-1]["train/loss"])
