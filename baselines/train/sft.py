"""Supervised fine-tuning on oracle trajectories: the starting policy of RL.

The loss is the token-mean NLL of the assistant turns only (prompt and tool outputs are masked),
optimised with AdamW, warm-up and a schedule (:mod:`baselines.train.optim`).
Partial success -- the realistic start for the collapse study -- comes from the pilot's *noisy
expert* (``expert_noise``: content values replaced at random, format intact) and/or early
stopping (``stop_at_success``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from baselines.llm.model import count_parameters
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.rollout import ExpertTrajectory, RolloutSettings
from baselines.llm.tokenizer import ChatFormat, conversation_text
from baselines.train.batch import collate
from baselines.train.common import (
    batch_logits,
    check_finite,
    configure_torch,
    evaluate,
    find_checkpoint,
    fixed_requests,
    hold_out_dir,
    length_buckets,
    load_checkpoint_state,
    load_policy_checkpoint,
    new_tiny_policy,
    save_checkpoint,
    save_policy,
)
from baselines.train.config import SFTConfig, parse_source, save_yaml
from baselines.train.envs import ExpertBank, ExpertNoise, PlayedNoise, make_envs, task_ids
from baselines.train.grammar import env_action_format, format_control_tokens
from baselines.train.logger import MetricLogger
from baselines.train.multiprocess import SINGLE, Distributed, NullLogger
from baselines.train.optim import optimizer_for, scheduled_lr, set_lr
from baselines.train.supervision import sft_nll

logger = logging.getLogger(__name__)


def sft_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    chat: ChatFormat,
    trajectories: list[ExpertTrajectory],
    *,
    temperature: float,
    grad_clip: float | None,
    max_observation_tokens: int,
    step: int,
    actions: list[list[str]] | None = None,
    dist: Distributed = SINGLE,
    bucket_tokens: int = 0,
) -> dict[str, float]:
    """One optimiser step of NLL on ``trajectories`` (optionally with replaced ``actions``).

    With ``bucket_tokens`` > 0 the episodes are forwarded in length-sorted buckets of at most that
    many padded positions (:func:`length_buckets`) and one backward runs on the summed loss: the
    same token-mean NLL over the whole batch, with less padding.

    Under multi-process training (``dist.enabled``; ``model`` is then the DDP wrapper) every rank
    passes the same global batch, keeps its shard ``[rank::world_size]`` and scales its loss so the
    gradient is that of the token-mean NLL over the whole batch; the returned loss is the global one.
    """
    if dist.enabled:
        dist.check_shardable(len(trajectories), "An SFT batch")
        rows = dist.shard(range(len(trajectories)))
        trajectories = [trajectories[i] for i in rows]
        actions = None if actions is None else [actions[i] for i in rows]
    episodes = [
        t.to_episode(chat, actions=None if actions is None else actions[i], max_observation_tokens=max_observation_tokens)
        for i, t in enumerate(trajectories)
    ]
    model.train()
    device = next(model.parameters()).device
    lengths = [len(e.input_ids) for e in episodes]
    groups = length_buckets(range(len(episodes)), lengths, bucket_tokens) if bucket_tokens else [list(range(len(episodes)))]
    means, counts = [], []
    for rows in groups:
        batch = collate([episodes[i] for i in rows], chat.control).to(device)
        means.append(sft_nll(batch_logits(model, batch, temperature), batch.targets, batch.loss_mask))
        counts.append(batch.loss_mask.sum())
    count = torch.stack(counts).sum()
    # one bucket: its token mean as is; several: the token mean over all of them
    loss = means[0] if len(means) == 1 else sum(m * c for m, c in zip(means, counts, strict=True)) / count.clamp(min=1.0)
    check_finite("SFT loss", dist.all_reduce(loss.detach().reshape(1)), step)  # every rank stops together
    tokens = float(count)
    if dist.enabled:
        scale, tokens = dist.token_scale(count)
        loss = loss * scale
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip is not None else float("inf"))
    check_finite("SFT gradient norm", norm, step)
    skipped = float(norm) == 0.0  # no signal: AdamW would still move the weights by momentum / decay
    if not skipped:
        optimizer.step()
    if dist.enabled:
        loss = dist.all_reduce(loss.detach().reshape(1), "mean")[0]
    return {"train/loss": float(loss.detach()), "train/grad_norm": float(norm), "train/tokens": tokens,
            "train/skipped_updates": float(skipped)}


class SFTTrainer:
    """Trains a policy on oracle trajectories; see :class:`~baselines.train.config.SFTConfig`.

    After :meth:`train`, ``out_dir/model`` is an HF checkpoint directory (model + tokenizer) that
    ``rl`` takes as ``init``, and ``out_dir/metrics.csv`` holds every logged step.

    Args:
        config: The run's config.
        resume: A checkpoint directory written by this trainer (``out_dir/checkpoints/step_N``,
            every ``save_every`` steps and at the end of :meth:`train`) or ``"auto"`` (the newest
            one in ``out_dir``, if any): continues exactly where it was (same weights as an
            uninterrupted run, for a fixed ``threads``).
    """

    def __init__(self, config: SFTConfig, *, resume: str | None = None) -> None:
        self.cfg = config
        configure_torch(config.threads)
        self.dist = Distributed.from_env(config.device)
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        hold_out_dir(self, self.dist.is_main)
        if self.dist.is_main:
            save_yaml(config, self.out / "config.yaml")
        self.rng = random.Random(config.seed)
        ckpt = find_checkpoint(self.out, resume, "SFT")
        # Setup takes tens of seconds before the first step (the oracle plays every training task,
        # a tokenizer may be trained): say which stage it is in.
        setup = _progress(3, "sft setup", config.progress and self.dist.is_main)
        stage = _stage_reporter(setup)
        started = time.perf_counter()
        stage(f"oracle trajectories of {config.env}" + (f" and {len(config.mixture)} more sources" if config.mixture else ""))
        self.sources = [_load_source(config.env, config.env, config.env_kwargs, config, 0)]
        for index, source in enumerate(config.mixture, start=1):
            env_id, fmt = parse_source(source)
            self.sources.append(_load_source(source, env_id, {"action_format": fmt} if fmt else {}, config, index))
        primary = self.sources[0]
        self.bank, self.train_ids, self.trajectories, self.noise = primary.bank, primary.task_ids, primary.trajectories, primary.noise
        stage("loading the model" if config.init or ckpt else "training a tokenizer, building the model")
        if ckpt is not None or config.init:
            self.model, self.tokenizer = load_policy_checkpoint(str(ckpt or config.init))
        else:
            pools = [s.trajectories for s in self.sources] + [s.played for s in self.sources if s.played]
            texts = _corpus(_interleave(pools)[: config.tokenizer_tasks], config.include_system_prompt)
            self.model, self.tokenizer = new_tiny_policy(texts, config.model, vocab_size=config.vocab_size, seed=config.seed)
        self.model.to(config.device)
        self.train_model = self.dist.wrap(self.model)  # the model itself, or its DDP wrapper
        self.chat = ChatFormat(self.tokenizer, include_system_prompt=config.include_system_prompt)
        self.chat.control = format_control_tokens(self.tokenizer, env_action_format(self.bank.env))
        self.policy = CausalLMPolicy(self.model, self.chat.control, temperature=config.temperature)
        self.optimizer = optimizer_for(self.model.parameters(), config)
        self.step = 0
        self.best = 0.0  # best eval success so far
        self.last_eval: dict[str, float] = {}
        if ckpt is not None:
            self._load_state(ckpt)
        self.settings = RolloutSettings(config.max_new_tokens, config.max_observation_tokens, greedy=config.eval_greedy)
        stage("evaluation envs")
        eval_env0 = make_envs(config.env, 1, config.eval_split, config.env_kwargs)[0]
        self.eval_requests = fixed_requests(task_ids(eval_env0), config.eval_episodes, seed=10_000)
        self.eval_envs = [eval_env0] + make_envs(config.env, min(config.eval_episodes, 64) - 1, config.eval_split, config.env_kwargs)
        logger.info(
            "SFT on %s: %d expert trajectories (%d played) from %d source(s), model %d parameters, vocab %d (setup %.1fs)",
            config.env, sum(len(s.trajectories) for s in self.sources), sum(len(s.played) for s in self.sources),
            len(self.sources), count_parameters(self.model), len(self.tokenizer), time.perf_counter() - started,
        )
        stage(None)

    def _sample_batch(self) -> tuple[list[ExpertTrajectory], list[list[str]] | None]:
        """One batch: each element draws a source uniformly (when there are several), then a
        played episode with probability ``played_episodes`` or else an oracle episode; oracle
        episodes get the noisy expert's content (``expert_noise``), played ones stay as played
        (their observations answer their own actions). Returns the episodes and the actions to
        train on (``None``: the episodes' own)."""
        cfg = self.cfg
        picks = []
        for _ in range(cfg.batch_size):
            source = self.sources[0] if len(self.sources) == 1 else self.rng.choice(self.sources)
            played = cfg.played_episodes > 0 and bool(source.played) and self.rng.random() < cfg.played_episodes
            picks.append((source, played, self.rng.choice(source.played if played else source.trajectories)))
        batch = [traj for _, _, traj in picks]
        if cfg.expert_noise <= 0:
            return batch, None
        return batch, [list(t.actions) if played else s.noise.corrupt(t.actions, self.rng) for s, played, t in picks]

    def evaluate(self) -> dict[str, float]:
        """Success etc. on the fixed evaluation tasks (``eval/…``)."""
        stats, _ = evaluate(self.policy, self.chat, self.eval_envs, self.eval_requests, self.settings, seed=self.cfg.seed + 7)
        return stats

    def train(self, steps: int | None = None) -> dict[str, Any]:
        """Run SFT until ``cfg.steps`` (or ``steps`` more steps); returns a summary (final/best eval
        success, steps, wall time, model path). Writes a checkpoint every ``save_every`` steps and
        at the end, and ``out_dir/model``."""
        cfg = self.cfg
        main = self.dist.is_main
        target = cfg.steps if steps is None else min(cfg.steps, self.step + steps)
        # steps already taken (a resumed run, or an earlier train() call) keep their rows
        log = MetricLogger(self.out, tensorboard=cfg.tensorboard, resume_step=self.step or None) if main else NullLogger()
        decoding = "greedy" if cfg.eval_greedy else f"sampled at T={cfg.temperature:g}"
        bar = _progress(cfg.steps, f"sft (eval success {decoding}, every {cfg.eval_every} steps)", cfg.progress and main, initial=self.step)
        started = time.perf_counter()
        try:
            while self.step < target:
                self.step += 1
                step = self.step
                lr = scheduled_lr(cfg, step)
                set_lr(self.optimizer, lr)
                batch, actions = self._sample_batch()
                metrics = sft_step(
                    self.train_model, self.optimizer, self.chat, batch, temperature=cfg.temperature,
                    grad_clip=cfg.grad_clip, max_observation_tokens=cfg.max_observation_tokens,
                    step=step, actions=actions, dist=self.dist, bucket_tokens=cfg.bucket_tokens,
                )
                metrics["train/lr"] = lr
                metrics["train/elapsed_s"] = time.perf_counter() - started
                stop = False
                due = cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps)
                if due and main:
                    self.last_eval = self.evaluate()
                    metrics.update(self.last_eval)
                    self.best = max(self.best, self.last_eval["eval/success"])
                    stop = cfg.stop_at_success is not None and self.last_eval["eval/success"] >= cfg.stop_at_success
                if self.dist.enabled and due:
                    stop = self.dist.broadcast_object(stop)  # rank 0 evaluates; every rank stops together
                log.log(step, metrics)
                if cfg.save_every and step % cfg.save_every == 0 and main:
                    self.save()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{metrics['train/loss']:.3f}", eval_success=f"{self.last_eval['eval/success']:.2f}" if self.last_eval else "pending")
                if stop:
                    logger.info("Eval success %.2f ≥ %.2f at step %d: stopping.", self.last_eval["eval/success"], cfg.stop_at_success, step)
                    break
        finally:
            if bar is not None:
                bar.close()
            log.close()
        if not main:  # rank 0 evaluates and writes the model
            self.dist.barrier()
            return {"steps": self.step, "final_success": float("nan"), "final_format_error_rate": float("nan"),
                    "best_success": float("nan"), "wall_s": time.perf_counter() - started,
                    "parameters": count_parameters(self.model), "model": str(self.out / "model")}
        if not self.last_eval:
            self.last_eval = self.evaluate()
        if not (cfg.save_every and self.step % cfg.save_every == 0):
            self.save()
        path = save_policy(self.model, self.tokenizer, self.out / "model", cfg)
        self.dist.barrier()
        return {
            "steps": self.step,
            "final_success": self.last_eval["eval/success"],
            "final_format_error_rate": self.last_eval["eval/format_error_rate"],
            "best_success": max(self.best, self.last_eval["eval/success"]),
            "wall_s": time.perf_counter() - started,
            "parameters": count_parameters(self.model),
            "model": str(path),
        }

    def close(self) -> None:
        """End the process group under ``accelerate launch`` (the trainer can no longer train
        afterwards); a no-op in a single process. Idempotent."""
        self.dist.close()

    def save(self) -> Path:
        """Write ``out_dir/checkpoints/step_N`` (model, tokenizer, optimizer, RNG state, best and
        last evaluation) and drop checkpoints beyond ``keep_checkpoints``."""
        state = {"optimizer": self.optimizer.state_dict(), "rng": self.rng.getstate(), "best": self.best,
                 "last_eval": self.last_eval}
        return save_checkpoint(self.out, self.step, self.model, self.tokenizer, state, self.cfg.keep_checkpoints, self.cfg)

    def _load_state(self, path: Path) -> None:
        state = load_checkpoint_state(path)
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.setstate(state["rng"])
        self.best = float(state["best"])
        self.last_eval = dict(state["last_eval"])
        logger.info("Resumed from %s at step %d", path, self.step)


@dataclass
class _Source:
    """One training source of SFT: an env (in one action format) and its episodes."""

    name: str
    bank: ExpertBank
    task_ids: list[str]
    trajectories: list[ExpertTrajectory]  # the oracle's solved episodes
    noise: ExpertNoise  # the noisy expert, in the source's action format
    played: list[ExpertTrajectory]  # episodes played with perturbed actions (may fail)


def _load_source(name: str, env_id: str, env_kwargs: dict[str, Any], cfg: SFTConfig, index: int) -> _Source:
    """The oracle's episodes on the source's training tasks and, when ``played_episodes`` > 0,
    one perturbed episode per task (seeded by ``cfg.seed`` and the source's ``index``).

    Raises:
        ValueError: if the oracle solved none of the source's training tasks.
    """
    bank = ExpertBank(env_id, cfg.split, env_kwargs)
    ids = task_ids(bank.env, cfg.num_tasks, cfg.skip_tasks)
    trajectories = [t for t in bank.many(ids) if t.success]
    if not trajectories:
        raise ValueError(f"The oracle of {name} solved none of the {len(ids)} training tasks.")
    noise = ExpertNoise(trajectories, cfg.expert_noise, env_action_format(bank.env))
    played: list[ExpertTrajectory] = []
    if cfg.played_episodes > 0:
        perturb = PlayedNoise(noise, content_p=cfg.played_content_noise, format_p=cfg.played_format_noise,
                              seed=cfg.seed * 1_000_003 + index)
        played = [bank.play(task, perturb, seed=i) for i, task in enumerate(ids)]
    return _Source(name, bank, ids, trajectories, noise, played)


def _interleave(pools: list[list[ExpertTrajectory]]) -> list[ExpertTrajectory]:
    """Round-robin over ``pools`` (a prefix then draws from every pool evenly)."""
    out: list[ExpertTrajectory] = []
    for i in range(max((len(p) for p in pools), default=0)):
        out.extend(pool[i] for pool in pools if i < len(pool))
    return out


def _corpus(trajectories: list[ExpertTrajectory], include_system_prompt: bool) -> list[str]:
    """Whole oracle episodes as ChatML text (the tokenizer's training corpus)."""
    return [
        conversation_text(t.system if include_system_prompt else None, t.user, t.actions, t.observations)
        for t in trajectories
    ]


def _stage_reporter(bar: Any) -> Callable[[str | None], None]:
    """``stage(name)`` advances a setup bar (if any) and shows ``name``; ``stage(None)`` closes it."""

    begun = False

    def stage(name: str | None) -> None:
        nonlocal begun
        if bar is None:
            return
        if begun:
            bar.update(1)  # the previous stage is done
        begun = True
        if name is None:
            bar.close()
        else:
            bar.set_postfix_str(name)

    return stage


def _progress(total: int, desc: str, enabled: bool, initial: int = 0) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)
