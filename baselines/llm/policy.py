"""A causal LM as a policy: batched KV-cache sampling and teacher-forced log-probs.

Sampling is our own loop on top of the model's KV cache (not ``generate``), so that it returns
exactly the sampled token ids and their log-probs under the sampling distribution, for a batch of
left-padded prompts of different lengths, stopping each row at its end-of-turn token.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from baselines.llm.tokenizer import ControlTokens


@dataclass
class Generation:
    """One sampled continuation.

    Attributes:
        token_ids: The sampled ids, ending with the end-of-turn id unless ``finished`` is False.
        logprobs: ``log π(token)`` under the sampling distribution (temperature applied), one per id.
        finished: Whether the end-of-turn token was sampled within ``max_new_tokens``.
    """

    token_ids: list[int]
    logprobs: list[float]
    finished: bool


def _cache_kwarg(model: Any) -> str:
    """Name of the KV-cache argument of ``model.forward`` (``cache`` in transformers ≥ 5.2)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


class CausalLMPolicy:
    """The causal LM being sampled and trained (the RL policy), with its tokenizer's control tokens.

    Not an agent (:class:`toolgym.core.policy.Policy`): it samples token ids and scores log-probs.
    The ``llm`` agent (:class:`baselines.agents.llm.LLMAgent`) samples with it through
    :class:`baselines.agents.llm.LocalChatModel`.

    Args:
        model: A ``transformers`` causal LM.
        control: Its :class:`ControlTokens` (end-of-turn and pad ids).
        temperature: Sampling temperature; log-probs for training use the same temperature.
    """

    def __init__(self, model: Any, control: ControlTokens, *, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.model = model
        self.control = control
        self.temperature = float(temperature)
        self._cache_kwarg = _cache_kwarg(model)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        greedy: bool = False,
    ) -> list[Generation]:
        """Sample one continuation per prompt, in one batch with a KV cache.

        Prompts are left-padded; position ids skip the padding, so each row computes exactly what
        it would alone. A row stops at its end-of-turn token; the loop stops when all rows have.

        Args:
            prompts: Token ids per row (any lengths ≥ 1).
            max_new_tokens: At most this many tokens per row.
            generator: Torch RNG for sampling (determinism); ``None`` uses the global RNG. A
                sequence gives one CPU generator per row: each row then draws only from its own
                generator, and only while it runs, so its tokens do not depend on the other rows
                of the batch (per-episode seeding, as used by distributed rollouts).
            greedy: Take the argmax instead of sampling (log-probs still from the tempered softmax).
        """
        if not prompts:
            return []
        was_training = self.model.training
        self.model.eval()
        device = self.device
        batch = len(prompts)
        row_generators = None if generator is None or isinstance(generator, torch.Generator) else list(generator)
        if row_generators is not None and len(row_generators) != batch:
            raise ValueError(f"Got {len(row_generators)} generators for {batch} prompts; pass one per prompt.")
        width = max(len(p) for p in prompts)
        input_ids = torch.full((batch, width), self.control.pad_id, dtype=torch.long)
        attention = torch.zeros((batch, width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            if not prompt:
                raise ValueError(f"Prompt {row} is empty; every prompt needs at least one token.")
            input_ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
            attention[row, width - len(prompt) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        # all positions' logits, though only the last is used: logits_to_keep=1 saved 10-25% of
        # generate's CPU time, but its small [B, 1, H] product was not bit-identical across two
        # copies of one int8 model (a Ray actor's log-probs differed from the trainer's sampler's
        # by 2e-7), and the actors must sample the trainer's episodes exactly
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        cache = _cache_of(out)
        logits = out.logits[:, -1, :]
        next_pos = positions[:, -1:] + 1
        tokens: list[list[int]] = [[] for _ in range(batch)]
        logps: list[list[float]] = [[] for _ in range(batch)]
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            logprobs = F.log_softmax(logits.float() / self.temperature, dim=-1)
            if greedy:
                chosen = logprobs.argmax(-1)
            elif row_generators is not None:
                chosen = _sample_rows(logprobs, done, row_generators, self.control.pad_id)
            else:
                chosen = _sample(logprobs, generator)
            chosen_lp = logprobs.gather(-1, chosen[:, None]).squeeze(-1)
            chosen = torch.where(done, torch.full_like(chosen, self.control.pad_id), chosen)
            chosen_ids, chosen_lps = chosen.tolist(), chosen_lp.tolist()  # one device sync, not one a row
            for row in torch.nonzero(~done).flatten().tolist():
                tokens[row].append(chosen_ids[row])
                logps[row].append(chosen_lps[row])
            done |= chosen == self.control.eot_id
            if bool(done.all()):
                break
            attention = torch.cat([attention, torch.ones((batch, 1), dtype=attention.dtype, device=device)], 1)
            out = self.model(
                input_ids=chosen[:, None],
                attention_mask=attention,
                position_ids=next_pos,
                use_cache=True,
                **{self._cache_kwarg: cache},
            )
            cache = _cache_of(out)
            logits = out.logits[:, -1, :]
            next_pos = next_pos + 1
        if was_training:
            self.model.train()
        return [
            Generation(token_ids=t, logprobs=lp, finished=bool(t) and t[-1] == self.control.eot_id)
            for t, lp in zip(tokens, logps, strict=True)
        ]

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits for right-padded sequences, divided by the temperature.

        Args:
            input_ids: ``[B, T]`` token ids (right-padded).
            attention_mask: ``[B, T]`` 1 for real tokens.

        Returns:
            ``[B, T-1, V]`` float logits; row ``t`` predicts token ``t+1``.
        """
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits[:, :-1, :].float() / self.temperature


def _sample(logprobs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from ``exp(logprobs)``, drawn on the generator's device (a CPU generator
    with a model on a GPU draws on the CPU, so a seed gives the same stream wherever the model
    runs), returned on ``logprobs``' device."""
    probs = logprobs.exp()
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(logprobs.device)


def _sample_rows(
    logprobs: torch.Tensor, done: torch.Tensor, generators: list[torch.Generator], pad_id: int
) -> torch.Tensor:
    """One token per running row, each drawn from that row's own (CPU) generator; ``pad_id`` for
    finished rows, which draw nothing."""
    probs = logprobs.exp().cpu()
    chosen = torch.full((probs.shape[0],), pad_id, dtype=torch.long)
    for row in torch.nonzero(~done.cpu()).flatten().tolist():
        chosen[row] = torch.multinomial(probs[row], 1, generator=generators[row])[0]
    return chosen.to(logprobs.device)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of ``targets`` and the entropy of each distribution.

    Args:
        logits: ``[B, T, V]``.
        targets: ``[B, T]`` token ids.

    Returns:
        ``(logp, entropy)``, both ``[B, T]``.
    """
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets[..., None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy
