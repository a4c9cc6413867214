"""Loss terms: the clipped policy-gradient objective and the supervisory signals.

Each function is a pure tensor function (no model, no config), so it can be unit-tested on
hand-built numbers. Shapes: ``[B, T]`` per-token tensors aligned with targets, ``V`` the
vocabulary, ``C`` the control tokens. ``mask`` is the loss mask (1 = policy token).

=======================  =====================================================================
signal                   term (the maths; each term's unit in ``terms.py`` adds it with its weight)
=======================  =====================================================================
(base)                   token-level PPO clip: ``max(-A·ρ, -A·clip(ρ, 1-ε, 1+ε))``, token mean
``control_clip``         the same with a tighter ε at positions whose token is a control token
``offpolicy_expert``     expert tokens use ``-A·π/(π+γ)`` (LUFFY policy shaping) instead of ``ρ``
``control_kl``           ``KL(π‖π_ref)`` (or ``KL(π_ref‖π)``) over the full vocabulary, only where
                         the sampled token or the reference argmax is a control token (or: the
                         sampled token is one or follows one); ``control_kl_direction/positions``
``spike_penalty``        ``Σ_c max(0, π(c) - τ)`` where no control token belongs; τ a multiple of the
                         reference's own π_ref(c) there (or a fixed number)
``sft_mix``              NLL of expert (and/or own successful) episodes; ``sft_mix_positions`` keeps
                         its control-token or its content-token part (the sum of the two is the whole)
``tis``                  the policy-gradient term of each sampled token times the detached
                         ``min(π_train/π_sampler, C)`` (truncated importance sampling)
``mis``                  the same term zeroed where ``π_train/π_sampler ∉ [1/C, C]`` (masked
                         importance sampling; optionally times the ratio where kept)
``hint``                 no term: the hint is only in the sampling prompt, never in the loss
``interleaved_sft``      no term: SFT phases between RL steps (a callback, ``callbacks.py``)
``permuted_advantages``  control: advantages permuted within the batch (``terms.py``)
``sft_only``             control: the ``sft_mix`` NLL with the policy-gradient term off
=======================  =====================================================================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (0 if the mask is empty)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def clip_ranges(
    control_mask: torch.Tensor, eps_low: float, eps_high: float, control_eps: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token clip ranges ``(ε_low, ε_high)``: ``control_eps`` at control positions if given
    (``control_clip``), else the base range everywhere."""
    low = torch.full(control_mask.shape, eps_low, dtype=torch.float32, device=control_mask.device)
    high = torch.full(control_mask.shape, eps_high, dtype=torch.float32, device=control_mask.device)
    if control_eps is not None:
        low, high = tighten_at_control(low, high, control_mask, control_eps)
    return low, high


def tighten_at_control(
    low: torch.Tensor, high: torch.Tensor, control_mask: torch.Tensor, control_eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token clip ranges with ``control_eps`` where it is tighter, at control positions only."""
    low = torch.where(control_mask, torch.clamp(low, max=control_eps), low)
    high = torch.where(control_mask, torch.clamp(high, max=control_eps), high)
    return low, high


def clipped_pg_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: torch.Tensor | float,
    eps_high: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token.

    Args:
        logp: ``[B, T]`` current log-probs of the taken tokens.
        old_logp: ``[B, T]`` log-probs under the policy that collected the batch.
        advantages: ``[B, T]`` (or broadcastable) advantages.
        eps_low, eps_high: Clip range, scalars or ``[B, T]``.

    Returns:
        ``(loss, ratio, clipped)``: per-token loss ``max(-A·ρ, -A·clip(ρ))``, the ratio ρ, and
        where the clipped branch is active (the gradient is zero there).
    """
    ratio = torch.exp(logp - old_logp)
    low = 1.0 - torch.as_tensor(eps_low, dtype=ratio.dtype, device=ratio.device)
    high = 1.0 + torch.as_tensor(eps_high, dtype=ratio.dtype, device=ratio.device)
    unclipped = -advantages * ratio
    clipped_obj = -advantages * torch.minimum(torch.maximum(ratio, low), high)
    loss = torch.maximum(unclipped, clipped_obj)
    return loss, ratio, clipped_obj > unclipped


def policy_shaping_loss(
    logp: torch.Tensor, advantages: torch.Tensor, gamma: float, clip_eps: float | None = None
) -> torch.Tensor:
    """LUFFY's off-policy term per token: ``-A · f(π)`` with ``f = π / (π + γ)``.

    No importance ratio is used (the expert did not sample from π); ``f`` re-weights the gradient
    ``γ / (π + γ)² · ∇π`` towards low-probability expert tokens. With ``clip_eps`` the weight is
    clipped to ``[1-ε, 1+ε]`` as in the paper's repository.
    """
    prob = logp.exp()
    weight = prob / (prob + gamma)
    if clip_eps is not None:
        weight = weight.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    return -advantages * weight


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of ``KL(π‖π_ref)`` on sampled tokens: ``e^d - d - 1``, ``d = ref - logp``."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


CONTROL_KL_POSITIONS: tuple[str, ...] = ("target_or_ref_argmax", "target_or_follows")
"""Where ``control_kl`` applies (see :func:`control_kl_positions`)."""
CONTROL_KL_DIRECTIONS: tuple[str, ...] = ("policy_ref", "ref_policy")
"""``policy_ref`` = KL(π‖π_ref) (mode-seeking, the first study's); ``ref_policy`` = KL(π_ref‖π)
(mass-covering, the notes' / pilot's specification)."""


def control_kl_positions(
    targets: torch.Tensor,
    ref_argmax: torch.Tensor,
    mask: torch.Tensor,
    control_ids: torch.Tensor,
    mode: str = "target_or_ref_argmax",
) -> torch.Tensor:
    """Positions where ``control_kl`` applies, inside the loss mask. ``[B, T]`` bool.

    Args:
        targets: ``[B, T]`` target (sampled) tokens.
        ref_argmax: ``[B, T]`` the reference's most likely token.
        mask: ``[B, T]`` loss mask.
        control_ids: ``[C]`` control-token ids.
        mode: ``"target_or_ref_argmax"``: the target or the reference's argmax is a control token
            (the first study); ``"target_or_follows"``: the target is a control token or the
            previous token is one (``y_t ∈ C or y_{t-1} ∈ C``, the notes' specification: it covers
            the turn boundary right after ``<tool_call>`` where a collapsed policy ends the turn).

    Raises:
        ValueError: for an unknown mode.
    """
    is_ctrl = torch.isin(targets, control_ids)
    if mode == "target_or_ref_argmax":
        where = is_ctrl | torch.isin(ref_argmax, control_ids)
    elif mode == "target_or_follows":
        follows = torch.zeros_like(is_ctrl)
        follows[:, 1:] = is_ctrl[:, :-1]
        where = is_ctrl | follows
    else:
        raise ValueError(f"Unknown control_kl positions {mode!r}; expected one of {list(CONTROL_KL_POSITIONS)}.")
    return (mask > 0) & where


def control_kl(
    logits: torch.Tensor, ref_logits: torch.Tensor, positions: torch.Tensor, direction: str = "policy_ref"
) -> torch.Tensor:
    """Mean full-vocabulary KL between the policy and the reference over ``positions``.

    Args:
        logits: ``[B, T, V]`` policy logits (temperature applied).
        ref_logits: ``[B, T, V]`` reference logits (no gradient needed).
        positions: ``[B, T]`` bool from :func:`control_kl_positions`.
        direction: ``"policy_ref"`` = KL(π‖π_ref) or ``"ref_policy"`` = KL(π_ref‖π).

    Returns:
        A scalar ≥ 0; exactly 0 when the two distributions agree at every selected position, and
        independent of the logits at all other positions.

    Raises:
        ValueError: for an unknown direction.
    """
    if direction not in CONTROL_KL_DIRECTIONS:
        raise ValueError(f"Unknown control_kl direction {direction!r}; expected one of {list(CONTROL_KL_DIRECTIONS)}.")
    if not bool(positions.any()):
        return logits.sum() * 0.0
    logp = F.log_softmax(logits[positions], dim=-1)
    ref_logp = F.log_softmax(ref_logits[positions].detach(), dim=-1)
    if direction == "policy_ref":
        return (logp.exp() * (logp - ref_logp)).sum(-1).mean()
    return (ref_logp.exp() * (ref_logp - logp)).sum(-1).mean()


def spike_penalty(
    logits: torch.Tensor,
    control_ids: torch.Tensor,
    penalised: torch.Tensor,
    mask: torch.Tensor,
    threshold: float | torch.Tensor,
    *,
    return_active: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Hinge on control-token probability where none belongs.

    ``mean_t Σ_c max(0, π(c | s_t) - τ) · penalised[t, c]`` over positions in ``mask``.

    Args:
        logits: ``[B, T, V]`` policy logits.
        control_ids: ``[C]`` ids of the control tokens.
        penalised: ``[B, T, C]`` bool, True where token ``c`` does not belong (grammar-illegal,
            or simply not the target).
        mask: ``[B, T]`` loss mask.
        threshold: τ, a number or ``[B, T, C]`` (e.g. a multiple of the reference's own
            probability of ``c`` at that position); probabilities at or below it cost nothing.
        return_active: Also return the share of penalised (position, token) pairs in ``mask``
            where the hinge is active (detached).
    """
    probs = F.softmax(logits, dim=-1)[..., control_ids]
    over = probs - threshold
    hinge = torch.relu(over) * penalised.to(probs.dtype)
    value = masked_mean(hinge.sum(-1), mask)
    if not return_active:
        return value
    with torch.no_grad():
        pairs = penalised & (mask > 0)[..., None]
        active = ((over > 0) & pairs).sum().float() / pairs.sum().clamp(min=1).float()
    return value, active


def non_target_mask(targets: torch.Tensor, control_ids: torch.Tensor) -> torch.Tensor:
    """``[B, T, C]``: True where control token ``c`` is not the target (``spike_positions='non_target'``)."""
    return targets[..., None] != control_ids.view(*([1] * targets.dim()), -1)


SFT_MIX_POSITIONS: tuple[str, ...] = ("all", "control", "content")
"""Which target tokens the ``sft_mix`` NLL trains (see :func:`sft_nll`)."""


def sft_nll(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    control_mask: torch.Tensor | None = None,
    positions: str = "all",
) -> torch.Tensor:
    """Token-mean negative log-likelihood of ``targets`` over ``mask``.

    With ``positions="control"`` (or ``"content"``) only the targets where ``control_mask`` (the
    batch's ``[B, T]`` "target is a control token", :attr:`TokenBatch.control_mask`) is (is not)
    set add their NLL, and the sum is still divided by the number of tokens in ``mask``: each kept
    token weighs what it weighs in the whole mean, so the two parts add up to it and either part
    alone is the whole loss with the other part removed.
    """
    if positions not in SFT_MIX_POSITIONS:
        raise ValueError(f"Unknown sft_mix positions {positions!r}; expected one of {list(SFT_MIX_POSITIONS)}.")
    logp = F.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    if positions == "all":
        return masked_mean(-logp, mask)
    if control_mask is None:
        raise ValueError(f"sft_nll(positions={positions!r}) needs the batch's control-token mask.")
    keep = control_mask if positions == "control" else ~control_mask
    return masked_mean(-logp * keep, mask)


def sampler_ratio(old_logp: torch.Tensor, sample_logp: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """The trainer/sampler ratio ``π_train(y) / π_sampler(y) = exp(old_logp - sample_logp)`` of each
    token in ``where`` and 1 elsewhere; detached (a weight, never differentiated).

    Args:
        old_logp: ``[B, T]`` the trainer's (float32) log-probs of the targets before the step's updates.
        sample_logp: ``[B, T]`` the sampler's log-probs of the same tokens.
        where: ``[B, T]`` bool, the tokens the sampler produced (not expert, prompt or tool tokens).
    """
    ratio = torch.exp((old_logp - sample_logp).detach())
    return torch.where(where, ratio, torch.ones_like(ratio))


def tis_weight(ratio: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance weight ``min(ratio, cap)`` (Yao et al. 2025); 1 stays 1 for ``cap ≥ 1``."""
    return ratio.clamp(max=cap)


def mis_weight(ratio: torch.Tensor, cap: float, reweight: bool = False) -> torch.Tensor:
    """Masked importance weight: 0 where ``ratio ∉ [1/cap, cap]``, else 1 (or ``ratio`` with
    ``reweight``); 1 stays 1 for ``cap > 1``."""
    keep = (ratio >= 1.0 / cap) & (ratio <= cap)
    kept = ratio if reweight else torch.ones_like(ratio)
    return torch.where(keep, kept, torch.zeros_like(ratio))
