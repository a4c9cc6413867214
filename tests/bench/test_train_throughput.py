"""``benchmarks/train_throughput.py`` (and ``benchmarks/perf/rl_update.py``, which shares its batch
builder) run on a fresh tiny model: the sampling comparison does the same work in every system
(same token counts; greedy rows identical to Hugging Face's ``generate``), and the RL update's
batch matches what the trainer's loss expects. Speeds are not judged here."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from baselines.train.config import RLConfig  # noqa: E402
from baselines.train.rl import rl_loss  # noqa: E402
from benchmarks import train_throughput as tt  # noqa: E402


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return tt.setup(None, n_trajectories=40)


def test_sampling_compares_same_work_with_hf_generate(setup) -> None:  # type: ignore[no-untyped-def]
    model, chat, trajectories = setup
    out = tt.bench_sampling(model, chat, trajectories, batch=4, new_tokens=8, naive_rows=1)
    # An untrained model's greedy rows must match HF's generate token for token (same model,
    # same left-padded prompts): anything else means the two loops compute different things.
    assert out["greedy_rows_identical_to_hf"] == "4/4"
    for key in ("batched_kv_tokens_per_s", "hf_generate_tokens_per_s", "naive_tokens_per_s"):
        assert out[key] > 0 and math.isfinite(out[key])
    assert out["speedup_vs_hf_generate"] == pytest.approx(
        out["batched_kv_tokens_per_s"] / out["hf_generate_tokens_per_s"]
    )


def test_update_batch_feeds_the_trainer_loss(setup) -> None:  # type: ignore[no-untyped-def]
    model, chat, trajectories = setup
    prepared = tt.update_batch(model, chat, [t.to_episode(chat) for t in trajectories[:8]], group_size=4)
    assert prepared.ref_control.shape == (*prepared.old_logp.shape, len(chat.control.id_list))
    loss, stats = rl_loss(
        tt.batch_logits(model, prepared.batch, 1.0),
        prepared,
        RLConfig(init="unused"),
        torch.as_tensor(chat.control.id_list),
    )
    assert torch.isfinite(loss)
    assert stats  # the loss reports its statistics
