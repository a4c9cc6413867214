"""Episodes -> padded tensors, with the masks the losses and diagnostics need.

Shapes: ``B`` episodes, ``T`` tokens of the longest one, ``C`` control tokens of the tokenizer.
All per-position tensors are aligned with *targets*: position ``t`` holds the prediction of token
``t+1`` of the sequence, so they have length ``T-1``.

The grammar of an assistant turn of a tag action format decides where each control token is
*legal* (Hermes tags shown; the control tokens come from the env's format, see
:mod:`baselines.train.grammar`):

=================  ==============================================
state (prefix)     legal next control tokens
=================  ==============================================
turn start / text  ``<tool_call>``, ``<answer>``
after ``<tool_call>`` / ``<answer>`` (empty)  none (the "open tag then stop" signature lives here)
inside a call      ``</tool_call>``
inside an answer   ``</answer>``
after a close tag  end-of-turn
after an error     none
=================  ==============================================

Every other control token at a policy position is *illegal* there. Unlike "not the gold token",
illegality does not fire when a healthy policy merely changes strategy (the pilot's finding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from baselines.llm.rollout import Episode
from baselines.llm.tokenizer import ControlTokens
from baselines.train.config import SCALE_REWARDS

_START, _TEXT, _CALL_EMPTY, _CALL, _ANSWER_EMPTY, _ANSWER, _DONE, _ERROR = range(8)


def _legal_names(state: int, eot_name: str) -> frozenset[str]:
    return {
        _START: frozenset({"tool_call", "answer"}),
        _TEXT: frozenset({"tool_call", "answer"}),
        _CALL_EMPTY: frozenset(),
        _CALL: frozenset({"tool_call_end"}),
        _ANSWER_EMPTY: frozenset(),
        _ANSWER: frozenset({"answer_end"}),
        _DONE: frozenset({eot_name}),
        _ERROR: frozenset(),
    }[state]


def _next_state(state: int, name: str | None) -> int:
    if name is None:  # content token
        return {_START: _TEXT, _CALL_EMPTY: _CALL, _ANSWER_EMPTY: _ANSWER}.get(state, state)
    if state in (_START, _TEXT) and name == "tool_call":
        return _CALL_EMPTY
    if state in (_START, _TEXT) and name == "answer":
        return _ANSWER_EMPTY
    if state == _CALL and name == "tool_call_end":
        return _DONE
    if state == _ANSWER and name == "answer_end":
        return _DONE
    return _ERROR


@dataclass
class GrammarMasks:
    """Per-position grammar facts of one sequence (aligned with targets, length ``T-1``).

    Attributes:
        illegal: ``[T-1, C]`` True where control token ``c`` is illegal as the next token.
        after_open: ``[T-1]`` True right after an opening ``<tool_call>`` (nothing inside yet).
        turn_start: ``[T-1]`` True at the first position of each assistant turn.
    """

    illegal: torch.Tensor
    after_open: torch.Tensor
    turn_start: torch.Tensor


def grammar_masks(input_ids: Sequence[int], loss_mask: Sequence[int], control: ControlTokens) -> GrammarMasks:
    """Run the turn grammar over one episode's assistant turns (see the module docstring)."""
    names = control.names
    eot_name = control.names_by_id[control.eot_id]
    n = max(len(input_ids) - 1, 0)
    illegal = torch.zeros((n, len(names)), dtype=torch.bool)
    after_open = torch.zeros(n, dtype=torch.bool)
    turn_start = torch.zeros(n, dtype=torch.bool)
    cache: dict[int, torch.Tensor] = {}
    state = _START
    for t in range(1, len(input_ids)):
        if not loss_mask[t]:
            continue
        if not loss_mask[t - 1]:
            state = _START
            turn_start[t - 1] = True
        row = cache.get(state)
        if row is None:
            legal = _legal_names(state, eot_name)
            row = torch.tensor([name not in legal for name in names], dtype=torch.bool)
            cache[state] = row
        illegal[t - 1] = row
        after_open[t - 1] = state == _CALL_EMPTY
        state = _next_state(state, control.names_by_id.get(int(input_ids[t])))
    return GrammarMasks(illegal=illegal, after_open=after_open, turn_start=turn_start)


@dataclass
class TokenBatch:
    """A padded batch of episodes (see the module docstring for shapes).

    Attributes:
        input_ids: ``[B, T]`` right-padded token ids.
        attention_mask: ``[B, T]`` 1 for real tokens.
        targets: ``[B, T-1]`` next tokens.
        loss_mask: ``[B, T-1]`` float, 1 where the target was produced by the policy (never the
            prompt, the observations / tool outputs, or padding).
        sample_logprobs: ``[B, T-1]`` behaviour log-probs of the targets (0 where not sampled).
        advantages: ``[B]`` per-episode advantage.
        rewards: ``[B]`` episode rewards.
        is_expert: ``[B]`` off-policy expert episodes.
        is_hinted: ``[B]`` episodes sampled with a hint.
        control_mask: ``[B, T-1]`` target is a control token (and in the loss mask).
        illegal: ``[B, T-1, C]`` control token ``c`` is grammar-illegal at this position.
        after_open: ``[B, T-1]`` position right after ``<tool_call>``.
        turn_start: ``[B, T-1]`` first position of an assistant turn.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    targets: torch.Tensor
    loss_mask: torch.Tensor
    sample_logprobs: torch.Tensor
    advantages: torch.Tensor
    rewards: torch.Tensor
    is_expert: torch.Tensor
    is_hinted: torch.Tensor
    control_mask: torch.Tensor
    illegal: torch.Tensor
    after_open: torch.Tensor
    turn_start: torch.Tensor

    @property
    def size(self) -> int:
        """Number of episodes ``B``."""
        return int(self.input_ids.shape[0])

    def lengths(self) -> list[int]:
        """Each row's tokens (its unpadded length)."""
        return [int(n) for n in self.attention_mask.sum(-1).tolist()]

    def select(self, rows: torch.Tensor | Sequence[int]) -> TokenBatch:
        """The sub-batch of these rows, trimmed to its longest sequence."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        width = int(self.attention_mask[idx].sum(-1).max())
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)[idx]
            if value.dim() >= 2:
                value = value[:, : width if f.name in ("input_ids", "attention_mask") else width - 1]
            out[f.name] = value
        return TokenBatch(**out)

    def to(self, device: torch.device | str) -> TokenBatch:
        """The batch on ``device``."""
        return TokenBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def collate(
    episodes: Sequence[Episode],
    control: ControlTokens,
    advantages: Sequence[float] | None = None,
) -> TokenBatch:
    """Pad episodes into a :class:`TokenBatch` (advantages default to 0)."""
    if not episodes:
        raise ValueError("collate needs at least one episode.")
    batch = len(episodes)
    width = max(len(e.input_ids) for e in episodes)
    n_ctrl = len(control.names)
    input_ids = torch.full((batch, width), control.pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.float32)
    sample_lp = torch.zeros((batch, width), dtype=torch.float32)
    illegal = torch.zeros((batch, width - 1, n_ctrl), dtype=torch.bool)
    after_open = torch.zeros((batch, width - 1), dtype=torch.bool)
    turn_start = torch.zeros((batch, width - 1), dtype=torch.bool)
    for row, ep in enumerate(episodes):
        n = len(ep.input_ids)
        if not (len(ep.loss_mask) == len(ep.sample_logprobs) == n):
            raise ValueError(f"Episode {row} ({ep.task_id}) has misaligned ids / mask / log-probs.")
        input_ids[row, :n] = torch.as_tensor(ep.input_ids, dtype=torch.long)
        attention[row, :n] = 1
        mask[row, :n] = torch.as_tensor(ep.loss_mask, dtype=torch.float32)
        sample_lp[row, :n] = torch.as_tensor(ep.sample_logprobs, dtype=torch.float32)
        g = grammar_masks(ep.input_ids, ep.loss_mask, control)
        illegal[row, : n - 1] = g.illegal
        after_open[row, : n - 1] = g.after_open
        turn_start[row, : n - 1] = g.turn_start
    targets = input_ids[:, 1:]
    loss_mask = mask[:, 1:]
    adv = torch.as_tensor(list(advantages) if advantages is not None else [0.0] * batch, dtype=torch.float32)
    return TokenBatch(
        input_ids=input_ids,
        attention_mask=attention,
        targets=targets,
        loss_mask=loss_mask,
        sample_logprobs=sample_lp[:, 1:],
        advantages=adv,
        rewards=torch.tensor([e.reward for e in episodes], dtype=torch.float32),
        is_expert=torch.tensor([e.is_expert for e in episodes], dtype=torch.bool),
        is_hinted=torch.tensor([e.hint is not None for e in episodes], dtype=torch.bool),
        control_mask=control.mask(targets) & (loss_mask > 0),
        illegal=illegal,
        after_open=after_open,
        turn_start=turn_start,
    )


def signal_groups(rewards: torch.Tensor, groups: torch.Tensor) -> int:
    """How many groups of a batch carry a GRPO signal: their ``rewards`` are not all equal.

    Args:
        rewards: ``[B]`` episode rewards.
        groups: ``[B]`` group index of each episode.
    """
    return sum(int(bool((r != r[0]).any())) for r in (rewards[groups == g] for g in torch.unique(groups)))


def group_advantages(rewards: torch.Tensor, groups: torch.Tensor, eps: float = 1e-6, scale: str = "group") -> torch.Tensor:
    """GRPO advantages ``(r - mean_g) / (std + eps)`` within each group.

    Args:
        rewards: ``[B]`` episode rewards.
        groups: ``[B]`` group index of each episode.
        eps: Added to the (population) standard deviation.
        scale: ``"group"`` divides by the group's standard deviation (GRPO), ``"batch"`` by the
            whole batch's, ``"none"`` not at all (Dr. GRPO: a lone failure in a group of
            successes then weighs ``1 - 1/G`` instead of about ``sqrt(G - 1)``).

    Returns:
        ``[B]`` advantages; exactly 0 for every episode of a group whose rewards are all equal.

    Raises:
        ValueError: for an unknown ``scale``.
    """
    if scale not in SCALE_REWARDS:
        raise ValueError(f"scale must be one of {list(SCALE_REWARDS)}, got {scale!r}.")
    adv = torch.zeros_like(rewards)
    batch_std = rewards.std(unbiased=False)
    for g in torch.unique(groups):
        sel = groups == g
        r = rewards[sel]
        centred = r - r.mean()
        if scale == "group":
            adv[sel] = centred / (r.std(unbiased=False) + eps)
        elif scale == "batch":
            adv[sel] = centred / (batch_std + eps)
        else:
            adv[sel] = centred
    return adv
