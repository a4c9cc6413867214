"""Ray rollouts: same episodes as one process, lost work retried when an actor dies."""

from __future__ import annotations

import threading
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from baselines.llm.model import load_pretrained
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.rollout import EpisodeRequest, RolloutSettings, collect_episodes
from baselines.train.envs import make_envs

ENV_ID = "ToolGym/Lookup-v0"
SETTINGS = RolloutSettings(max_new_tokens=24, max_observation_tokens=32, per_episode_rng=True)
REQUESTS = [EpisodeRequest(f"lookup-train-{i:05d}", seed=1000 + i) for i in range(8)]


def assert_same_episodes(got: list, expected: list) -> None:
    """Every Episode field equal; behaviour log-probs equal up to float rounding (batching)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        for f in fields(a):
            if f.name == "sample_logprobs":
                assert torch.allclose(torch.tensor(a.sample_logprobs), torch.tensor(b.sample_logprobs), atol=1e-5)
            else:
                assert getattr(a, f.name) == getattr(b, f.name), f.name


def make_pool(ray_cluster, checkpoint: Path, num_workers: int = 2, chunk_size: int = 2):
    from baselines.ray_rollout import RayRolloutPool, WorkerSpec

    model, tokenizer = load_pretrained(checkpoint)
    spec = WorkerSpec(ENV_ID, "train", {}, num_envs=2, model_config=model.config, tokenizer=tokenizer,
                      include_system_prompt=False, settings=SETTINGS)
    pool = RayRolloutPool(spec, num_workers, chunk_size=chunk_size)
    pool.set_weights(model.state_dict())
    return pool


@pytest.fixture(scope="module")
def single_process_episodes(sft_checkpoint, chat) -> list:
    """The reference: one process, 3 envs (a batching different from the actors')."""
    model, _ = load_pretrained(sft_checkpoint)
    return collect_episodes(CausalLMPolicy(model, chat.control), chat, make_envs(ENV_ID, 3, "train"), REQUESTS, SETTINGS,
                            context_length=256)


def test_per_episode_rng_makes_episodes_independent_of_batching(sft_checkpoint, chat, single_process_episodes) -> None:
    model, _ = load_pretrained(sft_checkpoint)
    alone = [collect_episodes(CausalLMPolicy(model, chat.control), chat, make_envs(ENV_ID, 1, "train"), [r], SETTINGS,
                              context_length=256)[0] for r in REQUESTS[:3]]
    assert_same_episodes(alone, single_process_episodes[:3])


def test_two_actors_return_the_single_process_episodes(ray_cluster, sft_checkpoint, single_process_episodes) -> None:
    pool = make_pool(ray_cluster, sft_checkpoint)
    try:
        episodes = pool.collect(REQUESTS)
        info = pool.info()
    finally:
        pool.close()
    assert_same_episodes(episodes, single_process_episodes)
    assert len({i["pid"] for i in info}) == 2 and all(i["version"] == 0 for i in info)  # both actors worked
    assert pool.stats.actor_failures == 0 and pool.stats.chunks == 4


def test_actor_killed_mid_episode_loses_only_its_chunk(ray_cluster, sft_checkpoint, single_process_episodes) -> None:
    pool = make_pool(ray_cluster, sft_checkpoint, chunk_size=4)
    try:
        started = time.perf_counter()
        pool.collect(REQUESTS)  # warm-up: actors up, weights loaded; times one chunk
        chunk_s = time.perf_counter() - started
        started = time.perf_counter()
        pool.collect(REQUESTS)
        # 4 chunks over 2 actors: each actor runs 2 chunks back to back, so one chunk takes
        # about half of this collect. The kill comes an eighth of a chunk after the victim's first
        # chunk is sent, from the dispatch hook itself: the collect cannot move on (and miss the
        # death) before it lands, and the chunk cannot be done yet unless it ran 8x faster than
        # it just did. (A timer thread lost that race on a loaded machine: the kill landed after
        # the victim's last chunk.)
        chunk_s = (time.perf_counter() - started) / 2
        victim = pool.actors[0]
        killed = threading.Event()

        def kill_first(slot: int, chunk: int) -> None:
            if slot == 0 and not killed.is_set():  # early in the actor's first chunk
                killed.set()
                time.sleep(chunk_s / 8)
                ray_cluster.kill(victim)

        pool.on_dispatch = kill_first
        episodes = pool.collect(REQUESTS)
        alive = pool.info()
    finally:
        pool.close()
    assert killed.is_set()
    assert pool.stats.actor_failures == 1 and pool.stats.retried_requests == 4 and pool.stats.replaced_actors == 1
    assert len(alive) == 2 and pool.actors == [] and pool.stats.chunks == 2 + 2 + 2
    assert_same_episodes(episodes, single_process_episodes)


def test_rl_training_continues_after_an_actor_dies(ray_cluster, sft_checkpoint, tmp_path) -> None:
    from baselines.train.config import RLConfig
    from baselines.train.rl import RLTrainer

    def config(out: Path, **extra) -> RLConfig:
        return RLConfig(
            env=ENV_ID, init=str(sft_checkpoint), out_dir=str(out), include_system_prompt=False, steps=2,
            prompts_per_step=2, group_size=4, epochs=1, minibatches=2, lr=1e-3, max_new_tokens=24,
            max_observation_tokens=32, eval_every=0, probe_size=4, save_every=0, tensorboard=False,
            progress=False, num_tasks=40, threads=1, **extra,
        )

    reference = RLTrainer(config(tmp_path / "single", per_episode_rng=True))
    reference.train()
    trainer = RLTrainer(config(tmp_path / "ray", rollout_workers=2, envs_per_worker=2))
    pool = trainer.rollout_pool
    assert pool is not None and len(trainer.envs) == 1
    kills: list[int] = []

    def kill_once(slot: int, chunk: int) -> None:
        if not kills and chunk == 1:
            kills.append(slot)
            ray_cluster.kill(pool.actors[slot])

    pool.on_dispatch = kill_once
    try:
        summary = trainer.train()
    finally:
        trainer.close()
    assert summary["steps"] == 2 and summary["stopped"] is None and kills
    assert pool.stats.actor_failures == 1 and pool.stats.retried_requests == 2
    # the retried episodes are the ones that were lost: training is the single-process one
    for key in ("train/loss", "train/success", "train/policy_tokens"):
        assert [m[key] for m in trainer.history] == pytest.approx([m[key] for m in reference.history], rel=1e-4, abs=1e-6)
    for a, b in zip(trainer.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
