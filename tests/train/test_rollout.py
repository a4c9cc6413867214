"""Multi-turn rollouts: token layout, loss mask, token-in/token-out."""

from __future__ import annotations

import torch

from baselines.llm.policy import token_logprobs
from baselines.llm.rollout import EpisodeRequest, RolloutSettings, collect_episodes, run_oracle
from baselines.train.batch import collate
from baselines.train.common import batch_logits
from baselines.train.envs import make_envs
from baselines.train.supervision import clipped_pg_loss, sft_nll
from toolgym.core.formats import ANSWER_OPEN


def _rollouts(policy, chat, n=4, max_new_tokens=24):
    envs = make_envs("ToolGym/Lookup-v0", n, "train")
    reqs = [EpisodeRequest(f"lookup-train-{i:05d}", i) for i in range(n)]
    return collect_episodes(policy, chat, envs, reqs, RolloutSettings(max_new_tokens=max_new_tokens),
                            generator=torch.Generator().manual_seed(0), context_length=256)


def test_expert_episode_masks_prompt_and_tool_outputs(chat, bank) -> None:
    traj = bank.get("lookup-train-00002")
    ep = traj.to_episode(chat)
    assert ep.loss_mask[: ep.prompt_len] == [0] * ep.prompt_len
    masked = [tok for tok, m in zip(ep.input_ids, ep.loss_mask, strict=True) if m]
    expected = []
    for action in traj.actions:
        expected += chat.action_ids(action)
    assert masked == expected  # exactly the assistant turns, each ending with <|im_end|>
    response = chat.control.ids["tool_response"]
    assert all(m == 0 for tok, m in zip(ep.input_ids, ep.loss_mask, strict=True) if tok == response)


def test_rollout_keeps_sampled_ids_token_in_token_out(sft_checkpoint, chat) -> None:
    from baselines.llm.model import load_pretrained
    from baselines.llm.policy import CausalLMPolicy

    model, _ = load_pretrained(sft_checkpoint)
    episodes = _rollouts(CausalLMPolicy(model, chat.control), chat)
    for ep in episodes:
        assert len(ep.input_ids) == len(ep.loss_mask) == len(ep.sample_logprobs)
        assert ep.num_turns == len(ep.turn_infos) == len(ep.turn_rewards)
        # the produced tokens decode to the actions sent to the env, turn by turn
        runs, current = [], []
        for tok, m in zip(ep.input_ids, ep.loss_mask, strict=True):
            if m:
                current.append(tok)
            elif current:
                runs.append(current)
                current = []
        if current:
            runs.append(current)
        assert [chat.decode_action(r) for r in runs] == ep.actions
        assert all(lp <= 0 for lp, m in zip(ep.sample_logprobs, ep.loss_mask, strict=True) if m)


def test_tool_output_tokens_get_no_loss_gradient(chat, bank, model) -> None:
    """Perturbing tool-output tokens as targets, or the logits predicting them, changes nothing."""
    episodes = [bank.get(f"lookup-train-{i:05d}").to_episode(chat) for i in (1, 2, 5)]
    batch = collate(episodes, chat.control, advantages=[1.0, -0.5, 0.3])
    logits = batch_logits(model, batch, 1.0).detach().requires_grad_(True)
    logp, _ = token_logprobs(logits, batch.targets)
    adv = batch.advantages[:, None].expand_as(logp)
    pg, _, _ = clipped_pg_loss(logp, logp.detach() - 0.1, adv, 0.2, 0.2)
    loss = (pg * batch.loss_mask).sum() / batch.loss_mask.sum() + sft_nll(logits, batch.targets, batch.loss_mask)
    loss.backward()
    observation = (batch.loss_mask == 0)
    assert observation.any()
    assert torch.count_nonzero(logits.grad[observation]) == 0
    assert torch.count_nonzero(logits.grad[batch.loss_mask > 0]) > 0
    # replacing every non-policy target (prompt, tool outputs) by another id leaves the loss unchanged
    perturbed = batch.targets.clone()
    perturbed[observation] = (perturbed[observation] + 7) % logits.shape[-1]
    logp2, _ = token_logprobs(logits.detach(), perturbed)
    pg2, _, _ = clipped_pg_loss(logp2, logp.detach() - 0.1, adv, 0.2, 0.2)
    loss2 = (pg2 * batch.loss_mask).sum() / batch.loss_mask.sum() + sft_nll(logits.detach(), perturbed, batch.loss_mask)
    assert torch.equal(loss.detach(), loss2)


def test_oracle_trajectory_solves_lookup(bank) -> None:
    traj = run_oracle(bank.env, "lookup-train-00002")
    assert traj.success and traj.reward == 1.0
    assert traj.tool_names == ["get"] * (len(traj.actions) - 1)
    assert traj.actions[-1].startswith(ANSWER_OPEN)
