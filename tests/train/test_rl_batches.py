"""``benchmarks/perf/rl_batches.py`` on a tiny run: each batch is the run's own (its update under
the run's setting is the run's logged one, and the next step follows from it), and packing the
passes by length does the same work. Times are not judged here."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from baselines.train.config import SupervisionConfig  # noqa: E402
from baselines.train.rl import RLTrainer  # noqa: E402
from benchmarks.perf import rl_batches  # noqa: E402
from tests.train.test_trainers import rl_config  # noqa: E402


def test_rl_batches_measures_the_runs_own_updates_with_the_same_work(sft_checkpoint, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    # an expert in every group: its reward 1 gives every step non-zero advantages, permuted from a
    # stream of the trainer's (drawn once a step: the replay must not draw it again)
    straight = RLTrainer(rl_config(sft_checkpoint, run, steps=4, save_every=1, eval_every=0, keep_checkpoints=10,
                                   supervision=SupervisionConfig(use=["offpolicy_expert", "permuted_advantages"])))
    straight.train()
    rows = rl_batches.measure(run, from_step=3, batches=2, tokens=1, progress=False)
    assert [(r["step"], r["setting"]) for r in rows] == [
        (3, "run's own"), (3, "micro_batch_tokens=1"), (4, "micro_batch_tokens=1"), (4, "run's own")]
    for r in rows:  # steps 3 and 4 are the run's: the same batch and update, whichever setting
        logged = straight.history[r["step"] - 1]
        assert r["grad_norm"] == pytest.approx(logged["train/grad_norm"], rel=1e-4) and logged["train/grad_norm"] > 0
        assert r["same"] and r["cpu_s"] > 0 and r["tokens"] >= r["longest"] > 0
    own = [r for r in rows if r["setting"] == "run's own"]
    assert [r["grad_norm"] for r in own] == [straight.history[2]["train/grad_norm"], straight.history[3]["train/grad_norm"]]
    assert rl_batches.main(["--run", str(run), "--from-step", "4", "--batches", "1", "--tokens", "1"]) == 0
    assert "Same work: yes" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the run keeps checkpoints 1-4: nothing before step 1
        rl_batches.main(["--run", str(run), "--from-step", "1"])
    assert "has no checkpoint before step 1; pick a later --from-step" in capsys.readouterr().err


def test_rl_batches_errors_are_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        rl_batches.main(["--run", str(tmp_path), "--from-step", "2"])
    assert f"{tmp_path} has no config.yaml; pass the out_dir of an RL run." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rl_batches.main(["--run", str(tmp_path), "--from-step", "2", "--tokens", "0"])
    assert "--tokens must be ≥ 1, got 0." in capsys.readouterr().err
