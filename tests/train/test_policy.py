"""Batched KV-cache sampling: log-probs, padding, stopping, determinism."""

from __future__ import annotations

import torch

from baselines.llm.policy import token_logprobs
from baselines.llm.rollout import Episode
from baselines.train.batch import collate
from baselines.train.common import batch_logits


def _prompts(chat) -> list[list[int]]:
    return [
        chat.prompt_ids(None, "Find the value of key K3."),
        chat.prompt_ids(None, "Find the value of key K17, please, it is urgent."),
        chat.prompt_ids(None, "Hi"),
    ]


def test_sampled_logprobs_equal_teacher_forced_logprobs(policy, chat) -> None:
    """The sampler's log-probs (left-padded, KV cache) match a plain forward of each sequence."""
    prompts = _prompts(chat)
    gens = policy.generate(prompts, max_new_tokens=12, generator=torch.Generator().manual_seed(0))
    for prompt, gen in zip(prompts, gens, strict=True):
        ids = prompt + gen.token_ids
        episode = Episode("t", ids, [0] * len(prompt) + [1] * len(gen.token_ids), [0.0] * len(ids), len(prompt))
        batch = collate([episode], chat.control)
        logp, _ = token_logprobs(batch_logits(policy.model, batch, 1.0), batch.targets)
        expected = logp[0, len(prompt) - 1 :]
        assert torch.allclose(expected, torch.tensor(gen.logprobs), atol=1e-4)


def test_generation_is_deterministic_under_a_seed(policy, chat) -> None:
    a = policy.generate(_prompts(chat), max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    b = policy.generate(_prompts(chat), max_new_tokens=10, generator=torch.Generator().manual_seed(3))
    assert [g.token_ids for g in a] == [g.token_ids for g in b]


def test_greedy_row_does_not_depend_on_batch_padding(policy, chat) -> None:
    prompts = _prompts(chat)
    alone = policy.generate(prompts[2:], max_new_tokens=10, greedy=True)[0]
    batched = policy.generate(prompts, max_new_tokens=10, greedy=True)[2]
    assert alone.token_ids == batched.token_ids


def test_rows_stop_at_end_of_turn(policy, chat) -> None:
    """Bias the model towards <|im_end|>: every row stops after one token and is finished."""
    bias = torch.zeros(policy.model.config.vocab_size)
    bias[chat.control.eot_id] = 50.0
    policy.model.lm_head.register_forward_hook(lambda module, inputs, output: output + bias)
    gens = policy.generate(_prompts(chat), max_new_tokens=10, generator=torch.Generator().manual_seed(0))
    assert all(g.token_ids == [chat.control.eot_id] and g.finished for g in gens)
