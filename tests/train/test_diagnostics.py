"""Diagnostics on hand-built distributions, the turn grammar, and the detectors."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.llm.rollout import Episode
from baselines.train.batch import collate, grammar_masks, group_advantages
from baselines.train.diagnostics import (
    CollapseDetector,
    SpikeDetector,
    control_prob_stats,
    episode_stats,
    group_stats,
)


def test_control_prob_stats_on_hand_built_distribution() -> None:
    # two control tokens: "tool_call" (id 0) and "im_end" (id 1); four policy positions
    ctrl = torch.tensor([[[0.9, 0.01], [0.1, 0.02], [0.0, 0.6], [0.3, 0.8]]])
    targets = torch.tensor([[0, 5, 1, 5]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last position is not a policy token
    illegal = torch.tensor([[[False, True], [True, True], [True, False], [True, True]]])
    after_open = torch.tensor([[False, True, False, False]])
    stats = control_prob_stats(ctrl, targets, mask, illegal, after_open, ["tool_call", "im_end"], [0, 1], "im_end", "d",
                               target_probs=torch.tensor([[0.9, 0.7, 0.6, 0.1]]))
    assert stats["d/hit_mean/tool_call"] == pytest.approx(0.9)
    assert stats["d/leak_mean/tool_call"] == pytest.approx(0.05)  # positions 1, 2
    assert stats["d/leak_max/tool_call"] == pytest.approx(0.1)
    assert stats["d/hit_mean/im_end"] == pytest.approx(0.6)
    assert stats["d/leak_mean/im_end"] == pytest.approx(0.015)
    assert stats["d/illegal_mean/tool_call"] == pytest.approx(0.05)  # positions 1, 2
    assert stats["d/illegal_mean/im_end"] == pytest.approx(0.015)  # positions 0, 1
    assert stats["d/illegal_max/im_end"] == pytest.approx(0.02)
    assert stats["d/after_open_eot"] == pytest.approx(0.02)
    assert stats["d/illegal_total"] == pytest.approx(0.065)
    assert stats["d/content_p"] == pytest.approx(0.7)  # only position 1 is a content target


def test_control_prob_stats_empty_selection_is_nan() -> None:
    stats = control_prob_stats(torch.zeros(1, 2, 1), torch.tensor([[5, 5]]), torch.zeros(1, 2),
                               torch.zeros(1, 2, 1, dtype=torch.bool), torch.zeros(1, 2, dtype=torch.bool),
                               ["im_end"], [1], "im_end", "d")
    assert math.isnan(stats["d/hit_mean/im_end"]) and math.isnan(stats["d/after_open_eot"])


def test_grammar_marks_end_of_turn_after_open_tag_as_illegal(chat) -> None:
    c = chat.control.ids
    content = chat.encode("K3")
    # prompt token, then: <tool_call> K3 </tool_call> <|im_end|>
    ids = [c["im_start"]] + [c["tool_call"]] + content + [c["tool_call_end"], c["im_end"]]
    mask = [0] + [1] * (len(ids) - 1)
    g = grammar_masks(ids, mask, chat.control)
    names = chat.control.names
    col = {n: names.index(n) for n in names}
    # position 0 predicts <tool_call> (turn start): legal; im_end illegal
    assert g.turn_start[0] and not g.illegal[0, col["tool_call"]] and g.illegal[0, col["im_end"]]
    # position 1 predicts the first content token right after <tool_call>: every control illegal
    assert g.after_open[1] and g.illegal[1].all()
    # position len(content) + 1 predicts </tool_call>: inside the call, only </tool_call> is legal
    inside = len(content) + 1
    assert not g.illegal[inside, col["tool_call_end"]] and g.illegal[inside, col["im_end"]]
    # after </tool_call>, only end-of-turn is legal
    assert g.illegal[inside + 1].tolist() == [n != "im_end" for n in names]
    assert not g.after_open[0] and g.after_open.sum() == 1


def test_group_advantages_scale_by_group_batch_or_nothing() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    none = group_advantages(rewards, groups, scale="none")
    assert none.tolist() == pytest.approx([0.25, 0.25, 0.25, -0.75, 0.5, -0.5, 0.5, -0.5])
    group = group_advantages(rewards, groups, eps=0.0)  # default: GRPO's per-group std
    assert group[3] == pytest.approx(-0.75 / math.sqrt(3 / 16)) and group[5] == pytest.approx(-1.0)
    batch = group_advantages(rewards, groups, eps=0.0, scale="batch")
    assert batch.tolist() == pytest.approx((none / rewards.std(unbiased=False)).tolist())
    with pytest.raises(ValueError, match="scale must be one of"):
        group_advantages(rewards, groups, scale="rank")


def test_group_advantages_and_zero_advantage_groups() -> None:
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    adv = group_advantages(rewards, groups)
    assert adv[3:].abs().sum() == 0
    assert adv[:3].sum().abs() < 1e-5 and adv[0] > 0 > adv[1]
    stats = group_stats(rewards, groups)
    assert stats["train/zero_adv_group_frac"] == 0.5


def test_episode_stats_counts_error_codes_and_format_errors() -> None:
    def ep(success, errors):
        infos = [{"error": e} for e in errors]
        return Episode("t", [1, 2], [0, 1], [0.0, 0.0], 1, actions=["a"] * len(errors), turn_infos=infos,
                       reward=float(success), success=success)

    stats = episode_stats([ep(True, [None, None]), ep(False, ["bad_json"]), ep(False, ["tool_error", None])], "x")
    assert stats["x/success"] == pytest.approx(1 / 3)
    assert stats["x/format_error_rate"] == pytest.approx(1 / 3)  # tool_error is not a format error
    assert stats["x/errors/bad_json"] == pytest.approx(1 / 5)
    assert stats["x/turns"] == pytest.approx(5 / 3)


def test_spike_detector_ratio_and_z_rules() -> None:
    det = SpikeDetector(ratio=10, z=3, window=10)
    for step, illegal in enumerate([0.001, 0.0011, 0.0009, 0.001, 0.00105], start=1):
        out = det.update(step, illegal)
        assert out["diag/spike_ratio"] == 0 and out["diag/spike_z"] == 0
    out = det.update(6, 0.05)
    assert out["diag/spike_ratio"] == 1 and out["diag/spike_z"] == 1 and out["diag/spike_first_step"] == 6
    assert out["diag/spike_ratio_value"] == pytest.approx(0.05 / 0.001)
    assert det.update(7, 0.001, after_open=0.5)["diag/spike_ratio"] == 1  # after-open rule


def test_spike_detector_sees_a_relative_jump_below_the_old_absolute_floor() -> None:
    """The first study's floor (0.02) hid 39 of 41 step-2 jumps: 0.0004 -> 0.0136 must be a spike."""
    det = SpikeDetector()
    assert det.update(1, 0.0004)["diag/spike_ratio"] == 0
    out = det.update(2, 0.0136)
    assert out["diag/spike_ratio"] == 1 and out["diag/spike_first_step"] == 2
    quiet = SpikeDetector()  # a healthy run's step-to-step noise (factors below 10) raises nothing
    flags = [quiet.update(s, x) for s, x in enumerate([0.001, 0.002, 0.0008, 0.004, 0.0015, 0.003, 0.001], 1)]
    assert all(f["diag/spike_ratio"] == 0 and f["diag/spike_z"] == 0 for f in flags)
    restored = SpikeDetector()
    restored.load_state_dict(det.state_dict())
    assert restored.update(3, 0.02)["diag/spike_ratio_value"] == pytest.approx(0.02 / ((0.0004 + 0.0136) / 2))


def test_collapse_detector_marks_start_of_sustained_drop() -> None:
    det = CollapseDetector(frac=0.5, patience=3)
    series = [0.5, 0.8, 0.3, 0.7, 0.2, 0.1, 0.1, 0.0]
    flags = [det.update(step, s)["diag/collapse"] for step, s in enumerate(series, start=1)]
    assert flags == [0, 0, 0, 0, 0, 0, 1, 1]
    assert det.collapse_step == 5  # the dip at step 3 recovered; the run starting at 5 did not
    restored = CollapseDetector(0.5, 3)
    restored.load_state_dict(det.state_dict())
    assert restored.collapse_step == 5


def test_collate_aligns_masks_with_targets(chat, bank) -> None:
    ep = bank.get("lookup-train-00001").to_episode(chat)
    batch = collate([ep], chat.control)
    assert batch.loss_mask.shape == batch.targets.shape == (1, len(ep.input_ids) - 1)
    assert batch.loss_mask[0].tolist() == [float(m) for m in ep.loss_mask[1:]]
    assert batch.control_mask.sum() == len(ep.control_positions(chat.control))
