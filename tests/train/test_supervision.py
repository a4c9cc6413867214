"""The loss terms of the supervisory signals, on hand-built tensors and on trainer batches."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.train.supervision import (
    clip_ranges,
    clipped_pg_loss,
    control_kl,
    control_kl_positions,
    masked_mean,
    non_target_mask,
    policy_shaping_loss,
    sft_nll,
    spike_penalty,
)

V = 12
CONTROL = torch.tensor([0, 1, 2])  # ids 0..2 are control tokens in these hand-built tests


def _logits(seed: int, shape=(2, 5, V)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- control_kl
def test_control_kl_is_zero_when_policy_equals_reference() -> None:
    logits = _logits(0)
    targets = torch.tensor([[0, 5, 6, 1, 7], [8, 2, 9, 9, 9]])
    pos = control_kl_positions(targets, logits.argmax(-1), torch.ones(2, 5), CONTROL)
    assert pos.any()
    assert control_kl(logits, logits.clone(), pos).item() == pytest.approx(0.0, abs=1e-7)


def test_control_kl_is_positive_when_policy_differs() -> None:
    logits, ref = _logits(0), _logits(1)
    targets = torch.tensor([[0, 5, 6, 1, 7], [8, 2, 9, 9, 9]])
    pos = control_kl_positions(targets, ref.argmax(-1), torch.ones(2, 5), CONTROL)
    assert control_kl(logits, ref, pos).item() > 0


def test_control_kl_directions_are_the_two_kls() -> None:
    logits, ref = _logits(0), _logits(1)
    pos = torch.ones(2, 5, dtype=torch.bool)
    p, q = torch.log_softmax(logits, -1), torch.log_softmax(ref, -1)
    forward = (p.exp() * (p - q)).sum(-1).mean()
    reverse = (q.exp() * (q - p)).sum(-1).mean()
    assert control_kl(logits, ref, pos, "policy_ref").item() == pytest.approx(forward.item(), rel=1e-6)
    assert control_kl(logits, ref, pos, "ref_policy").item() == pytest.approx(reverse.item(), rel=1e-6)
    assert abs(forward.item() - reverse.item()) > 1e-3
    with pytest.raises(ValueError, match="Unknown control_kl direction 'both'"):
        control_kl(logits, ref, pos, "both")


def test_control_kl_positions_target_or_follows() -> None:
    """y_t ∈ C or y_{t-1} ∈ C: the position right after <tool_call> is covered whatever the reference says."""
    targets = torch.tensor([[0, 5, 6, 1, 7], [8, 2, 9, 9, 2]])
    ref_argmax = torch.full((2, 5), 9)
    pos = control_kl_positions(targets, ref_argmax, torch.ones(2, 5), CONTROL, "target_or_follows")
    expected = torch.tensor([[1, 1, 0, 1, 1], [0, 1, 1, 0, 1]], dtype=torch.bool)
    assert torch.equal(pos, expected)
    with pytest.raises(ValueError, match="Unknown control_kl positions"):
        control_kl_positions(targets, ref_argmax, torch.ones(2, 5), CONTROL, "all")


def test_control_kl_touches_only_control_positions() -> None:
    """Positions: sampled token is a control token, or the reference argmax is one; nothing else."""
    ref = _logits(1)
    ref[0, 2, 1] = 100.0  # reference argmax is control token 1 at (0, 2) although the target is not
    targets = torch.tensor([[0, 5, 6, 1, 7], [8, 2, 9, 9, 9]])
    ref[..., :3] = ref[..., :3].clamp(max=0.0)
    ref[0, 2, 1] = 100.0
    mask = torch.ones(2, 5)
    mask[1, 1] = 0  # a control target outside the loss mask does not count
    pos = control_kl_positions(targets, ref.argmax(-1), mask, CONTROL)
    expected = torch.zeros(2, 5, dtype=torch.bool)
    expected[0, 0] = expected[0, 3] = expected[0, 2] = True
    assert torch.equal(pos, expected)
    logits = _logits(0).requires_grad_(True)
    control_kl(logits, ref, pos).backward()
    touched = logits.grad.abs().sum(-1) > 0
    assert torch.equal(touched, expected)


# ---------------------------------------------------------------------------- control_clip
def test_control_clip_clips_only_control_positions() -> None:
    control_mask = torch.tensor([[True, False, True, False]])
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.1, 1.1, 0.9, 0.9]]))  # ratios ±10%: inside 0.2, outside 0.05
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    low, high = clip_ranges(control_mask, 0.2, 0.2, control_eps=0.05)
    assert torch.allclose(high, torch.tensor([[0.05, 0.2, 0.05, 0.2]]))
    logp = logp.requires_grad_(True)
    loss, ratio, clipped = clipped_pg_loss(logp, old, adv, low, high)
    assert clipped.tolist() == [[True, False, True, False]]
    loss.sum().backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 2] == 0
    assert logp.grad[0, 1] != 0 and logp.grad[0, 3] != 0
    base_low, base_high = clip_ranges(control_mask, 0.2, 0.2, control_eps=None)
    _, _, base_clipped = clipped_pg_loss(logp.detach(), old, adv, base_low, base_high)
    assert not base_clipped.any()


def test_clipped_pg_loss_matches_ppo_formula() -> None:
    logp, old = torch.log(torch.tensor([1.5, 0.5])), torch.zeros(2)
    adv = torch.tensor([2.0, -1.0])
    loss, ratio, _ = clipped_pg_loss(logp, old, adv, 0.2, 0.2)
    assert torch.allclose(loss, torch.tensor([-2.0 * 1.2, 1.0 * 0.8]))
    assert torch.allclose(ratio, torch.tensor([1.5, 0.5]))


# ---------------------------------------------------------------------------- spike_penalty
def test_spike_penalty_is_zero_below_threshold_and_positive_above() -> None:
    logits = torch.zeros(1, 3, V)  # uniform: p(c) = 1/12 ≈ 0.083 for every token
    everywhere = torch.ones(1, 3, 3, dtype=torch.bool)
    mask = torch.ones(1, 3)
    assert spike_penalty(logits, CONTROL, everywhere, mask, threshold=0.1).item() == 0.0
    logits[0, 1, 2] = 5.0  # p(token 2) ≈ 0.93 at position 1
    value = spike_penalty(logits, CONTROL, everywhere, mask, threshold=0.1).item()
    p = math.exp(5) / (math.exp(5) + 11)
    assert value == pytest.approx((p - 0.1) / 3, rel=1e-5)
    only_elsewhere = everywhere.clone()
    only_elsewhere[0, 1, 2] = False  # token 2 belongs at position 1: no penalty there
    assert spike_penalty(logits, CONTROL, only_elsewhere, mask, threshold=0.1).item() == 0.0


def test_spike_penalty_relative_to_the_reference_and_its_active_fraction() -> None:
    """τ = factor × π_ref(c): the reference itself is never penalised, however large its p(c); a
    tenfold rise of a tiny p(c) is (an absolute τ of 0.1 missed both)."""
    ref = _logits(3)
    ref[0, 0, 1] = 6.0  # the reference puts most mass on control token 1 at (0, 0)
    ref[1, 2, 0] = -4.0  # and little on token 0 at (1, 2)
    ref_probs = torch.softmax(ref, -1)[..., CONTROL]
    everywhere = torch.ones(2, 5, 3, dtype=torch.bool)
    mask = torch.ones(2, 5)
    value, active = spike_penalty(ref, CONTROL, everywhere, mask, 5.0 * ref_probs, return_active=True)
    assert value.item() == 0.0 and active.item() == 0.0
    policy = ref.clone()
    policy[1, 2, 0] += math.log(20.0)  # p(token 0) at (1, 2) grows about 20x (it was small)
    assert torch.softmax(policy, -1)[1, 2, 0] < 0.1  # an absolute τ = 0.1 would not see it
    value, active = spike_penalty(policy, CONTROL, everywhere, mask, 5.0 * ref_probs, return_active=True)
    assert value.item() > 0 and active.item() == pytest.approx(1 / 30)
    there = torch.zeros(2, 5)
    there[1, 2] = 1.0
    token0 = torch.zeros_like(everywhere)
    token0[..., 0] = True
    assert spike_penalty(policy, CONTROL, token0, there, 0.1).item() == 0.0  # absolute τ: blind to it
    assert spike_penalty(policy, CONTROL, token0, there, 5.0 * ref_probs).item() > 0


def test_non_target_mask_marks_control_tokens_that_are_not_the_target() -> None:
    targets = torch.tensor([[0, 7]])
    assert non_target_mask(targets, CONTROL).tolist() == [[[False, True, True], [True, True, True]]]


# ---------------------------------------------------------------------------- offpolicy_expert
def test_policy_shaping_weight_and_gradient() -> None:
    """f = π/(π+γ); d(-A f)/d log π = -A γ π / (π+γ)²."""
    p = torch.tensor([0.05, 0.5, 0.9])
    logp = p.log().requires_grad_(True)
    adv = torch.tensor([1.0, 1.0, -2.0])
    loss = policy_shaping_loss(logp, adv, gamma=0.1)
    assert torch.allclose(loss, -adv * p / (p + 0.1))
    loss.sum().backward()
    assert torch.allclose(logp.grad, -adv * 0.1 * p / (p + 0.1) ** 2, atol=1e-6)
    clipped = policy_shaping_loss(p.log(), adv, gamma=0.1, clip_eps=0.2)
    assert torch.allclose(clipped, -adv * (p / (p + 0.1)).clamp(0.8, 1.2))


def test_masked_mean_ignores_masked_values() -> None:
    assert masked_mean(torch.tensor([1.0, 100.0, 3.0]), torch.tensor([1.0, 0.0, 1.0])).item() == 2.0
    assert masked_mean(torch.tensor([1.0]), torch.tensor([0.0])).item() == 0.0


# ---------------------------------------------------------------------------- sft_mix positions
def test_sft_nll_control_and_content_parts_add_up_and_touch_only_their_tokens() -> None:
    """``sft_mix_positions``: each part keeps the whole mean's per-token weight, so the two add up to
    it, and each part's gradient reaches only the logits of its own target tokens."""
    targets = torch.tensor([[0, 5, 6, 1, 7], [8, 2, 9, 9, 9]])
    mask = torch.ones(2, 5)
    mask[1, 3:] = 0  # padding: in neither part nor in the divisor
    logits = _logits(3)
    control_mask = torch.isin(targets, CONTROL) & mask.bool()  # as TokenBatch.control_mask
    whole = sft_nll(logits, targets, mask)
    parts = {p: sft_nll(logits, targets, mask, control_mask, p) for p in ("control", "content")}
    assert torch.allclose(parts["control"] + parts["content"], whole)
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)
    assert torch.allclose(parts["control"], -(logp[0, 0] + logp[0, 3] + logp[1, 1]) / 8)
    is_ctrl = torch.tensor([[True, False, False, True, False], [False, True, False, False, False]])
    for part, where in (("control", is_ctrl), ("content", ~is_ctrl & mask.bool())):
        x = logits.clone().requires_grad_(True)
        sft_nll(x, targets, mask, control_mask, part).backward()
        assert torch.equal(x.grad.abs().sum(-1) > 0, where)
    assert torch.equal(sft_nll(logits, targets, mask, None, "all"), whole)
    with pytest.raises(ValueError, match="needs the batch's control-token mask"):
        sft_nll(logits, targets, mask, None, "control")
    with pytest.raises(ValueError, match="expected one of"):
        sft_nll(logits, targets, mask, control_mask, "tags")
