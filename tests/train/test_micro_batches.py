"""Micro-batches (``micro_batch_size``): an RL update's gradient accumulated over parts of each
minibatch is the whole minibatch's, and so are its logged statistics, up to float rounding."""

from __future__ import annotations

import pytest
import torch

from baselines.train.common import micro_groups
from baselines.train.config import RLConfig, SupervisionConfig
from baselines.train.multiprocess import LossScales, combine_micro_stats
from tests.train.test_optim import _trainer_and_batch
from tests.train.test_trainers import comparable_weight

COMPARED = ("loss", "pg_loss", "kl_loss", "control_kl", "spike_penalty", "spike_active_frac", "sft_mix_nll", "clip_frac",
            "approx_kl", "ratio_max", "entropy", "grad_norm", "grad_norm_max", "grad_norm_control", "adam_rms_max")


def test_micro_groups_are_the_fewest_strided_groups_within_the_size() -> None:
    rows = [3, 5, 8, 9, 12, 20, 21]
    assert micro_groups(rows, None) == [rows]
    assert micro_groups(rows, 7) == [rows]
    assert micro_groups(rows, 3) == [[3, 9, 21], [5, 12], [8, 20]]
    assert micro_groups(rows, 1) == [[r] for r in rows]
    for size in (1, 2, 3, 4):  # a partition of the rows, none above the size
        groups = micro_groups(rows, size)
        assert sorted(r for g in groups for r in g) == rows and max(map(len, groups)) <= size
    # two processes share each group and each needs a row: 7 rows give at most 3 groups
    assert [len(g) for g in micro_groups(rows, 1, world_size=2)] == [3, 2, 2]
    assert micro_groups(rows, 4, world_size=2) == [rows]
    with pytest.raises(ValueError, match=r"micro-batch size must be ≥ 1 or None, got 0"):
        micro_groups(rows, 0)


def test_micro_groups_with_a_token_budget_pack_rows_of_like_length() -> None:
    rows = [3, 5, 8, 9, 12, 20, 21]
    lengths = {3: 10, 5: 100, 8: 20, 9: 50, 12: 10, 20: 200, 21: 30}
    # shortest first; a pass holds rows × its longest row ≤ 60 tokens; a longer row goes alone
    assert micro_groups(rows, None, lengths=lengths, tokens=60) == [[3, 12, 8], [21], [9], [5], [20]]
    assert micro_groups(rows, None, lengths=lengths, tokens=10_000) == [[3, 12, 8, 21, 9, 5, 20]]
    assert micro_groups(rows, 2, lengths=lengths, tokens=10_000) == [[3, 12], [8, 21], [9, 5], [20]]  # both limits
    for tokens in (1, 40, 60, 150, 400):
        for world in (1, 2, 3):
            groups = micro_groups(rows, None, world, lengths=lengths, tokens=tokens)
            assert sorted(r for g in groups for r in g) == rows  # a partition
            assert all(len(g) >= world for g in groups)  # every process gets a row of every pass
            flat = [lengths[r] for g in groups for r in g]
            assert flat == sorted(flat)  # consecutive runs of the sorted rows
    # two processes: a pass's padded tokens per process are ceil(rows / 2) × its longest row
    assert micro_groups(rows, None, 2, lengths=lengths, tokens=60) == [[3, 12, 8, 21], [9, 5, 20]]
    with pytest.raises(ValueError, match=r"micro-batch tokens must be ≥ 1 or None, got 0"):
        micro_groups(rows, None, lengths=lengths, tokens=0)
    with pytest.raises(ValueError, match=r"micro-batch tokens need each row's length"):
        micro_groups(rows, None, tokens=60)


def test_micro_batch_size_config_error_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^micro_batch_size must be ≥ 1 or None \(a whole minibatch\), got 0\.$"):
        RLConfig(init="x", micro_batch_size=0)
    assert RLConfig(init="x").micro_batch_size is None
    with pytest.raises(ValueError, match=r"^micro_batch_tokens must be ≥ 1 or None \(no token budget\), got 0\.$"):
        RLConfig(init="x", micro_batch_tokens=0)
    assert RLConfig(init="x").micro_batch_tokens is None


def test_combined_statistics_weight_each_mean_by_its_count() -> None:
    a = ({"pg_loss": 1.0, "approx_kl": 0.5, "control_kl": 2.0, "ratio_max": 1.5, "loss": 0.25, "sft_mix_nll": 3.0},
         LossScales(tokens=0.75, on_policy=0.5, control_kl=0.0, total_tokens=8.0))
    b = ({"pg_loss": 3.0, "approx_kl": 1.5, "control_kl": 4.0, "ratio_max": 1.25, "loss": 0.5},
         LossScales(tokens=0.25, on_policy=0.5, control_kl=1.0, total_tokens=8.0))
    stats, scales = combine_micro_stats([a, b])
    assert stats == {"pg_loss": 1.5, "approx_kl": 1.0, "control_kl": 4.0, "ratio_max": 1.5, "loss": 0.75,
                     "sft_mix_nll": 3.0}
    assert scales == LossScales(tokens=1.0, on_policy=1.0, control_kl=1.0, total_tokens=8.0)


@pytest.mark.parametrize("setting", ["size=1", "size=3", "tokens=1", "tokens=2x"])
def test_micro_batches_give_the_update_of_the_whole_minibatch(sft_checkpoint, tmp_path, setting) -> None:
    """Every term of the loss (policy gradient, k3-KL, control_kl, spike_penalty, sft_mix once per
    minibatch), the gradient, the Adam step and the step's statistics, with 4 rows a minibatch
    split into 4 (size 1) or 2 (size 3) strided micro-batches, or packed by length: one row a
    pass (a budget of 1 token) or within twice the batch's longest row (two rows or more a pass)."""
    sup = SupervisionConfig(use=["control_kl", "spike_penalty", "sft_mix"], sft_mix_batch=2)
    common = dict(kl_coef=0.05, control_grad_norm_every=1, supervision=sup)
    whole, prepared, episodes = _trainer_and_batch(sft_checkpoint, tmp_path, "whole", **common)
    name, value = setting.split("=")
    if name == "size":
        micro_setting = {"micro_batch_size": int(value)}
    else:
        lengths = prepared.batch.lengths()
        tokens = 1 if value == "1" else 2 * max(lengths)
        micro_setting = {"micro_batch_tokens": tokens}
        packed = micro_groups(range(len(lengths)), None, lengths=lengths, tokens=tokens)
        sizes = sorted(map(len, packed))  # the batch's 8 rows: one a pass, or several passes of two or more
        assert sizes == [1] * len(lengths) if tokens == 1 else (len(sizes) > 1 and sizes[0] >= 2)
        assert len(set(lengths)) > 1  # rows of different lengths: the packing reorders them
    micro, prepared_m, episodes_m = _trainer_and_batch(sft_checkpoint, tmp_path, "micro", **micro_setting, **common)
    assert torch.equal(prepared.batch.targets, prepared_m.batch.targets)  # the same episodes
    # the no-grad passes in micro-batches too: the same old and reference log-probs where the loss
    # reads them (a shorter micro-batch is trimmed to its own width, so its padding is left at 0)
    mask = prepared.batch.loss_mask > 0
    torch.testing.assert_close(prepared_m.old_logp[mask], prepared.old_logp[mask], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(prepared_m.ref_logp[mask], prepared.ref_logp[mask], rtol=1e-5, atol=1e-6)
    expected, got = whole.update(prepared, episodes), micro.update(prepared_m, episodes_m)
    assert got["train/updates"] == expected["train/updates"] == 4.0
    for key in COMPARED:
        assert got[f"train/{key}"] == pytest.approx(expected[f"train/{key}"], rel=1e-4, abs=1e-7), key
    assert expected["train/control_kl"] > 0 and expected["train/sft_mix_nll"] > 0 and expected["train/grad_norm_control"] > 0
    for (name, a), b in zip(whole.model.named_parameters(), micro.model.parameters(), strict=True):
        torch.testing.assert_close(comparable_weight(name, b), comparable_weight(name, a), rtol=1e-4, atol=1e-5)
    moved = max(float((a - b).detach().abs().max())
                for a, b in zip(whole.model.parameters(), whole.ref_model.parameters(), strict=True))
    assert moved > 1e-4  # the update moved the weights by far more than the tolerance
