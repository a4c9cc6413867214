"""Counterfactual updates at a step (benchmarks/collapse/counterfactual.py, issue 19): the replay
reproduces the run's own update exactly, and the other variants change only the advantages."""

from __future__ import annotations

import math

import pytest

from baselines.train.config import RLConfig, SupervisionConfig, save_yaml
from baselines.train.rl import RLTrainer
from benchmarks.collapse.counterfactual import branch, latest_checkpoint_before, main, markdown
from tests.train.test_trainers import rl_config


def test_branch_replays_the_runs_update_and_varies_only_the_advantages(sft_checkpoint, tmp_path) -> None:
    run = tmp_path / "run"
    # an expert in every group: its reward 1 gives the step non-zero advantages whatever the samples do
    sup = SupervisionConfig(use=["offpolicy_expert"])
    straight = RLTrainer(rl_config(sft_checkpoint, run, steps=3, save_every=1, eval_every=0, supervision=sup))
    straight.train()
    assert latest_checkpoint_before(run, 3).name == "step_000002"
    result = branch(run, 3, ["real", "permuted", "zeroed"], eval_episodes=4)
    assert result["start_checkpoint"].endswith("step_000002")
    real, permuted, zeroed = (result["variants"][v] for v in ("real", "permuted", "zeroed"))
    # the replayed step 3 is the run's step 3: same rollouts, same update
    assert result["training_success_at_step"] == straight.history[2]["train/success"]
    assert real["approx_kl_after_update"] == straight.history[2]["train/approx_kl_after_update"]
    assert real["grad_norm"] == straight.history[2]["train/grad_norm"]
    assert straight.history[2]["train/grad_norm"] > 0
    assert real["weight_change_l2"] > 0 and permuted["weight_change_l2"] > 0
    assert permuted["approx_kl_after_update"] != real["approx_kl_after_update"]
    # no auxiliary term in this config: zero advantages leave no gradient, the update is skipped
    assert zeroed["weight_change_l2"] == 0.0 and zeroed["skipped_updates"] > 0
    for row in (real, permuted, zeroed):
        assert 0.0 <= row["eval/success"] <= 1.0 and "diag/probe/illegal_total" in row


def test_each_variant_starts_from_the_saved_optimiser_state_whatever_ran_before(sft_checkpoint, tmp_path) -> None:
    """``Optimizer.load_state_dict`` keeps the tensors it is given and the update changes them in
    place: restoring one saved state for every variant must hand each its own copy, or the variants
    after the first start from Adam moments that the earlier variants' updates have moved."""
    run = tmp_path / "run"
    sup = SupervisionConfig(use=["offpolicy_expert"])
    straight = RLTrainer(rl_config(sft_checkpoint, run, steps=3, save_every=1, eval_every=0, supervision=sup))
    straight.train()
    first = branch(run, 3, ["real", "permuted"], eval_episodes=2)["variants"]
    after = branch(run, 3, ["negated", "permuted", "real"], eval_episodes=2)["variants"]
    for name in ("real", "permuted"):
        assert after[name]["grad_norm"] == first[name]["grad_norm"]
        assert after[name]["weight_change_l2"] == first[name]["weight_change_l2"]
        assert after[name]["approx_kl_after_update"] == first[name]["approx_kl_after_update"]
    assert after["real"]["grad_norm"] == straight.history[2]["train/grad_norm"]  # last, and still the run's own update


def test_update_overrides_change_the_examined_update_only(sft_checkpoint, tmp_path) -> None:
    run = tmp_path / "run"
    sup = SupervisionConfig(use=["offpolicy_expert"])
    straight = RLTrainer(rl_config(sft_checkpoint, run, steps=3, save_every=1, eval_every=0, supervision=sup))
    straight.train()
    base = branch(run, 3, ["real"], eval_episodes=2)
    one_pass = branch(run, 3, ["real"], eval_episodes=2, update_overrides=["epochs=1"])
    tiny_lr = branch(run, 3, ["real"], eval_episodes=2, update_overrides=[f"lr={straight.cfg.lr / 1000}"])
    # the replay up to the step is the run's: the same rollouts and the same state before
    assert one_pass["training_success_at_step"] == base["training_success_at_step"] == straight.history[2]["train/success"]
    assert one_pass["before"] == base["before"] and one_pass["update_overrides"] == ["epochs=1"]
    # one pass instead of two, and a 1000x smaller lr, move the weights less
    assert 0 < one_pass["variants"]["real"]["weight_change_l2"] < base["variants"]["real"]["weight_change_l2"]
    assert 0 < tiny_lr["variants"]["real"]["weight_change_l2"] < base["variants"]["real"]["weight_change_l2"] / 100
    assert "the update with epochs=1" in markdown(one_pass)
    # PPO's early stop: the update ends at the first minibatch with sampled tokens after an Adam
    # step (a minibatch of expert rows alone has no approx-KL)
    stopped = branch(run, 3, ["real"], eval_episodes=2, update_overrides=["target_kl=1e-9"])["variants"]["real"]
    assert (base["variants"]["real"]["updates"], base["variants"]["real"]["kl_stopped"]) == (4.0, 0.0)
    assert stopped["kl_stopped"] == 1.0 and 1 <= stopped["updates"] < 4
    assert 0 < stopped["weight_change_l2"] < base["variants"]["real"]["weight_change_l2"]
    # the guards, measuring only: the run's own update, with what the guards read
    measured = branch(run, 3, ["real"], eval_episodes=2, update_overrides=[
        "expert_guard=inf", "structure_guard={content_fall: .inf, illegal_rise: .inf}"])["variants"]["real"]
    assert measured["approx_kl_after_update"] == base["variants"]["real"]["approx_kl_after_update"]
    assert measured["expert_guard_rolled_back"] == 0.0 and math.isfinite(measured["expert_nll_rise_max"])
    assert math.isfinite(measured["structure/content_fall_max"]) and "structure/control_hit_fall_max" not in measured
    # advantages recomputed under the update's config: unchanged settings give the run's own update,
    # scale_rewards=none gives another one
    same = branch(run, 3, ["real"], eval_episodes=2, update_overrides=[f"scale_rewards={straight.cfg.scale_rewards}"])
    assert same["variants"]["real"]["approx_kl_after_update"] == straight.history[2]["train/approx_kl_after_update"]
    unscaled = branch(run, 3, ["real"], eval_episodes=2, update_overrides=["scale_rewards=none"])
    assert unscaled["variants"]["real"]["approx_kl_after_update"] != straight.history[2]["train/approx_kl_after_update"]


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--run", str(tmp_path), "--step", "2"])
    assert exc.value.code == 2 and "has no config.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--run", str(tmp_path), "--step", "2", "--variants", "real,sideways"])
    assert exc.value.code == 2 and "Unknown counterfactual variants ['sideways']" in capsys.readouterr().err
    save_yaml(RLConfig(init="x"), tmp_path / "config.yaml")
    with pytest.raises(SystemExit) as exc:
        main(["--run", str(tmp_path), "--step", "2", "--update-set", "optimizer=stable_adamw"])
    assert exc.value.code == 2 and "--update-set cannot change the optimizer ('adamw' → 'stable_adamw')" in capsys.readouterr().err
