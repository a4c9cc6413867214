"""GRPO over multi-turn ToolGym episodes, with switchable supervisory signals and diagnostics.

One RL step:

0. set the step's learning rate (warm-up, schedule: :mod:`baselines.train.optim`; with
   ``signal_scaled_lr``, once the batch is prepared, times the share of its groups whose rewards
   differ);
1. pick ``prompts_per_step`` tasks (from the run's own task stream); roll out ``group_size`` episodes of each (some may be the
   expert's trajectory, or sampled with a hint, if those signals are on). With ``sampler_dtype``
   other than float32 the rollouts are sampled by a copy of the policy in that dtype, refreshed
   from the float32 weights first (the sampler–trainer mismatch of vLLM sampling / FSDP training);
2. advantages ``A = (r - mean_group) / (std_group + eps)`` per episode, broadcast to its tokens
   (all 0 when fewer than ``min_signal_groups`` groups have differing rewards, or when the share
   of sampled episodes that succeed is at least ``max_signal_success``;
   ``permuted_advantages``, a control: permuted within the batch);
3. recompute the behaviour log-probs on the training sequences (without hints), reference
   statistics, and the diagnostics (teacher-forced probe on gold trajectories, on-policy control
   token probabilities);
4. ``epochs × minibatches`` updates of :func:`rl_loss` (stale ratios, as in PPO; with
   ``micro_batch_size`` each minibatch's gradient is accumulated over parts of that many rows,
   with ``micro_batch_tokens`` over parts packed by length within that many padded tokens,
   and the no-grad passes of step 3 run on such parts too); an update whose
   gradient is exactly zero (no learning signal), or whose learning rate is 0, is skipped, not
   stepped (``train/skipped_updates``); with ``target_kl``, the step's updates end at the first
   minibatch whose approx-KL before its update exceeds ``1.5 × target_kl`` (PPO's early stop,
   ``train/kl_stopped``); with ``target_kl_rollback`` the update that crossed it is also undone,
   and the batch's approx-KL after the last update is checked too (``train/kl_rolled_back``);
   with ``expert_guard`` an update that raises the NLL of fixed training-task expert trajectories
   by more than the guard is undone and ends the step (``train/expert_guard_rolled_back``), and
   so, with ``structure_guard``, is one that changes their probe statistics (a gold control
   token's probability, illegal control mass, content probability) more than its thresholds,
   each read from the last update kept or, with ``guard_reference="step"``, from the step's start
   (``random_undo``, their control, undoes updates at random instead);
5. the callbacks (:mod:`baselines.train.callbacks`), in order: evaluation of the RL policy (every
   ``eval_every`` steps); the supervision terms' own callbacks (``interleaved_sft``: an SFT phase
   on the expert trajectories of the tasks that failed in the window, never at the last step,
   evaluated again as ``eval_after_sft/…``); the spike and collapse detectors (the collapse
   detector skips the step right after an SFT phase: it follows the RL policy); user callbacks;
   then, once the step is logged, checkpoints and ``stop_on_collapse``.

Each supervision term is one unit of :mod:`baselines.train.terms` (its config fields, statistics,
loss and hooks); this module calls the enabled terms' hooks and knows no term by name.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from baselines.llm.model import context_length, load_pretrained, quantize_sampler_, sampler_storage_dtype
from baselines.llm.policy import CausalLMPolicy, token_logprobs
from baselines.llm.rollout import Episode, EpisodeRequest, RolloutSettings, collect_episodes
from baselines.llm.tokenizer import ChatFormat
from baselines.train.batch import TokenBatch, collate, group_advantages, signal_groups
from baselines.train.callbacks import (
    Callback,
    Checkpoint,
    CollapseWatch,
    EarlyWarning,
    Evaluation,
    SpikeWarning,
    check_names,
)
from baselines.train.common import (
    TrainingDivergedError,
    batch_logits,
    check_finite,
    chunks,
    configure_torch,
    evaluate,
    find_checkpoint,
    fixed_requests,
    hold_out_dir,
    load_checkpoint_state,
    micro_groups,
    probe_stats,
    save_checkpoint,
    save_policy,
)
from baselines.train.config import RLConfig, save_yaml
from baselines.train.diagnostics import (
    CollapseDetector,
    SpikeDetector,
    control_prob_stats,
    episode_stats,
    group_stats,
)
from baselines.train.early_warning import WarningRule
from baselines.train.envs import ExpertBank, make_envs, task_ids
from baselines.train.grammar import env_action_format, format_control_tokens
from baselines.train.guards import exceeded, probe_changes
from baselines.train.logger import MetricLogger
from baselines.train.multiprocess import Distributed, LossScales, NullLogger, combine_micro_stats
from baselines.train.optim import RandomStreams, adam_update_rms, optimizer_for, scheduled_lr, set_lr
from baselines.train.sft import sft_step
from baselines.train.supervision import clip_ranges, clipped_pg_loss, control_kl_positions, k3_kl, masked_mean
from baselines.train.terms import enabled_terms

logger = logging.getLogger(__name__)

@dataclass
class PreparedBatch:
    """A rollout batch with the per-token quantities fixed for the whole step.

    Attributes:
        batch: The padded episodes.
        old_logp: ``[B, T-1]`` log-probs under the policy before this step's updates.
        ref_logp: ``[B, T-1]`` log-probs under the reference policy.
        ref_argmax: ``[B, T-1]`` the reference's most likely token.
        ref_control: ``[B, T-1, C]`` the reference's probability of each control token (the
            ``spike_penalty`` threshold is relative to it).
    """

    batch: TokenBatch
    old_logp: torch.Tensor
    ref_logp: torch.Tensor
    ref_argmax: torch.Tensor
    ref_control: torch.Tensor

    def select(self, rows: list[int]) -> PreparedBatch:
        """Sub-batch of ``rows`` (trimmed like :meth:`TokenBatch.select`)."""
        sub = self.batch.select(rows)
        width = sub.targets.shape[1]
        idx = torch.as_tensor(rows)
        return PreparedBatch(
            sub, self.old_logp[idx, :width], self.ref_logp[idx, :width], self.ref_argmax[idx, :width],
            self.ref_control[idx, :width],
        )


class TrainerSnapshot(NamedTuple):
    """:meth:`RLTrainer.snapshot`: the weights, the optimiser state and the random streams."""

    weights: dict[str, Any]
    optimizer: dict[str, Any]
    streams: dict[str, Any]


@dataclass
class LossContext:
    """What a supervision term's :meth:`~baselines.train.terms.Term.loss` sees of one minibatch.

    Attributes:
        logits: ``[B, T-1, V]`` policy logits (temperature applied).
        prepared: The minibatch with old / reference quantities.
        cfg: The RL config.
        control_ids: ``[C]`` control-token ids.
        ref_logits: Reference logits of the minibatch (when a term ``needs_ref_logits``).
        sft_logits, sft_batch: Logits and batch of the update's SFT episodes (``needs_sft_batch``).
        scales: This rank's shares of the global token means under multi-process training.
    """

    logits: torch.Tensor
    prepared: PreparedBatch
    cfg: RLConfig
    control_ids: torch.Tensor
    ref_logits: torch.Tensor | None = None
    sft_logits: torch.Tensor | None = None
    sft_batch: TokenBatch | None = None
    scales: LossScales | None = None

    @property
    def token_scale(self) -> float | torch.Tensor:
        """The factor of a token-mean term: this rank's token share (1 in one process)."""
        return self.scales.tokens if self.scales is not None else 1.0


def token_terms(logits: torch.Tensor, prepared: PreparedBatch, cfg: RLConfig) -> dict[str, torch.Tensor]:
    """The per-token pieces of the token-mean part of :func:`rl_loss` (``[B, T]`` each): ``logp``,
    ``entropy``, ``ratio``, ``clipped``, ``pg`` (PPO-clip with ``clip_eps_high``, then each enabled
    term's :meth:`~baselines.train.terms.Term.clip_ranges` and
    :meth:`~baselines.train.terms.Term.shape_pg`), ``kl`` (k3 to the reference) and ``trained``:
    the per-token sum that the loss trains, ``pg`` (0 when a term does not train it)
    ``+ kl_coef·kl - entropy_coef·entropy``."""
    terms = enabled_terms(cfg.supervision)
    b = prepared.batch
    logp, entropy = token_logprobs(logits, b.targets)
    adv = b.advantages[:, None].expand_as(logp)
    eps_high = cfg.clip_eps_high if cfg.clip_eps_high is not None else cfg.clip_eps
    eps_lo, eps_hi = clip_ranges(b.control_mask, cfg.clip_eps, eps_high, None)
    for term in terms:
        eps_lo, eps_hi = term.clip_ranges(eps_lo, eps_hi, b.control_mask, cfg.supervision)
    pg_tok, ratio, clipped = clipped_pg_loss(logp, prepared.old_logp, adv, eps_lo, eps_hi)
    for term in terms:
        pg_tok = term.shape_pg(pg_tok, logp, adv, prepared, cfg)
    kl_tok = k3_kl(logp, prepared.ref_logp)
    trained = pg_tok if trains_pg(cfg) else pg_tok * 0.0
    if cfg.kl_coef > 0:
        trained = trained + cfg.kl_coef * kl_tok
    if cfg.entropy_coef > 0:
        trained = trained - cfg.entropy_coef * entropy
    return {"logp": logp, "entropy": entropy, "ratio": ratio, "clipped": clipped, "pg": pg_tok, "kl": kl_tok,
            "trained": trained}


def trains_pg(cfg: RLConfig) -> bool:
    """Whether the policy-gradient term is trained (no enabled term switches it off)."""
    return all(t.trains_pg for t in enabled_terms(cfg.supervision))


def rl_loss(
    logits: torch.Tensor,
    prepared: PreparedBatch,
    cfg: RLConfig,
    control_ids: torch.Tensor,
    *,
    ref_logits: torch.Tensor | None = None,
    sft_logits: torch.Tensor | None = None,
    sft_batch: TokenBatch | None = None,
    scales: LossScales | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The RL objective for one minibatch: the base clipped policy gradient (with the k3-KL and
    entropy regularisers), then each enabled supervision term's
    :meth:`~baselines.train.terms.Term.loss`.

    Args:
        logits: ``[B, T-1, V]`` policy logits (temperature applied) for ``prepared.batch``.
        prepared: The minibatch with old / reference log-probs.
        cfg: The RL config (weights and switches).
        control_ids: ``[C]`` control-token ids.
        ref_logits: Reference logits of the same minibatch (needed by ``control_kl``).
        sft_logits, sft_batch: Logits and batch of the ``sft_mix`` episodes.
        scales: Under multi-process training, this rank's shares of the global token means
            (:class:`~baselines.train.multiprocess.LossScales`); None (one process) = 1.

    Returns:
        ``(loss, stats)``, ``stats`` holding each term (detached) and the ratio statistics.
    """
    ctx = LossContext(logits, prepared, cfg, control_ids, ref_logits, sft_logits, sft_batch, scales)
    b = prepared.batch
    mask = b.loss_mask
    tok = ctx.token_scale
    terms = token_terms(logits, prepared, cfg)
    logp, entropy, ratio, clipped = terms["logp"], terms["entropy"], terms["ratio"], terms["clipped"]
    on_policy = mask * (~b.is_expert)[:, None]
    pg_loss = masked_mean(terms["pg"], mask)
    # a term may switch the policy gradient off (sft_only): it is still computed and logged
    loss = tok * pg_loss if trains_pg(cfg) else logits.sum() * 0.0
    stats: dict[str, torch.Tensor] = {"pg_loss": pg_loss.detach()}

    # -- regularisers of the base algorithm
    if cfg.kl_coef > 0:
        kl_loss = masked_mean(terms["kl"], mask)
        loss = loss + cfg.kl_coef * tok * kl_loss
        stats["kl_loss"] = kl_loss.detach()
    if cfg.entropy_coef > 0:
        ent = masked_mean(entropy, mask)
        loss = loss - cfg.entropy_coef * tok * ent
        stats["entropy_bonus"] = ent.detach()

    # -- supervisory signals (baselines.train.terms)
    for term in enabled_terms(cfg.supervision):
        added, term_stats = term.loss(ctx)
        if added is not None:
            loss = loss + added
        stats.update(term_stats)

    with torch.no_grad():
        sampled = on_policy > 0
        stats["clip_frac"] = masked_mean(clipped.float(), on_policy)
        stats["ratio_max"] = ratio[sampled].max() if bool(sampled.any()) else torch.tensor(1.0)
        stats["approx_kl"] = masked_mean(prepared.old_logp - logp, on_policy)
        stats["entropy"] = masked_mean(entropy, mask)
    return loss, stats


def uses_sft_batch(cfg: RLConfig) -> bool:
    """Whether the updates need an SFT batch (a term ``needs_sft_batch``: ``sft_mix``, ``sft_only``)."""
    return any(t.needs_sft_batch for t in enabled_terms(cfg.supervision))


def _rewards_and_groups(episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``[B]`` episode rewards (float32) and group indices of a rollout batch, and the share of its
    sampled (not expert) episodes that succeed (``train/success``)."""
    sampled = [e for e in episodes if not e.is_expert]
    return (torch.tensor([e.reward for e in episodes], dtype=torch.float32),
            torch.tensor([e.group for e in episodes]),
            sum(e.success for e in sampled) / max(len(sampled), 1))


class UpdateChecks:
    """The checks made after each Adam update of one step: ``expert_guard``, ``structure_guard``
    and their control ``random_undo``.

    Built at the start of the step's updates, it takes the guards' first readings of the expert
    batch; :meth:`undo` decides, after each update, whether to undo it (the step then ends);
    :meth:`metrics` reports the step's largest changes and whether an update was undone. An
    update's readings (``expert_guard``'s NLL, ``structure_guard``'s probe statistics) are compared
    with those after the last update kept, or with ``guard_reference="step"`` with those at the
    step's start (:data:`~baselines.train.guards.GUARD_REFERENCES`). The random draw of
    ``random_undo`` is made after every update, whatever the guards decide, so that a run's draws
    do not depend on them.
    """

    def __init__(self, trainer: RLTrainer) -> None:
        cfg = trainer.cfg
        self.trainer, self.cfg = trainer, cfg
        self.nll_guard = cfg.expert_guard is not None
        self.structure = cfg.structure_guard is not None
        self.at_random = cfg.random_undo > 0
        self.active = self.nll_guard or self.structure or self.at_random
        """Whether any check is on (the trainer then keeps the state before each update)."""
        self.nll_ref = trainer._expert_nll() if self.nll_guard else math.nan
        self.probe_ref = trainer._expert_probe() if self.structure else {}
        self.rise_max = -math.inf
        self.change_max = dict.fromkeys(cfg.structure_guard or {}, -math.inf)
        self.undone = False
        """Whether an update of this step was undone."""

    def undo(self) -> bool:
        """After an Adam update: whether to undo it (an expert-NLL rise or a probe change above
        its threshold, or ``random_undo``'s draw); its readings become the reference if kept."""
        cfg, trainer = self.cfg, self.trainer
        undo = False
        if self.nll_guard:
            nll = trainer._expert_nll()
            self.rise_max = max(self.rise_max, nll - self.nll_ref)
            undo = nll - self.nll_ref > float(cfg.expert_guard)
        if self.structure:
            probe = trainer._expert_probe()
            changes = trainer._probe_changes(self.probe_ref, probe)
            self.change_max = {k: max(v, changes[k]) for k, v in self.change_max.items()}
            undo = undo or bool(exceeded(changes, cfg.structure_guard))
        if self.at_random:
            undo = trainer.streams.py["random_undo"].random() < cfg.random_undo or undo
        if undo:
            self.undone = True
        elif cfg.guard_reference == "update":
            self.nll_ref = nll if self.nll_guard else math.nan
            self.probe_ref = probe if self.structure else {}
        return undo

    def metrics(self) -> dict[str, float]:
        """``train/expert_nll_rise_max``, ``train/structure/NAME_max`` (the step's largest, ``nan``
        without an update) and ``train/expert_guard_rolled_back``, for the checks that are on."""
        out: dict[str, float] = {}
        if self.nll_guard:
            out["train/expert_nll_rise_max"] = self.rise_max if self.rise_max > -math.inf else math.nan
        for name, value in self.change_max.items():
            out[f"train/structure/{name}_max"] = value if value > -math.inf else math.nan
        if self.active:
            out["train/expert_guard_rolled_back"] = float(self.undone)
        return out


class RLTrainer:
    """GRPO trainer; see the module docstring and :class:`~baselines.train.config.RLConfig`.

    Args:
        config: The run's config.
        resume: A checkpoint directory written by this trainer (``out_dir/checkpoints/step_N``)
            or ``"auto"`` (the latest one in ``out_dir``, if any): continues exactly where it was.
        callbacks: Extra :class:`~baselines.train.callbacks.Callback` objects; they run after the
            built-in ones (evaluation, the terms' callbacks, the detectors) and before the
            checkpoint, and their state is saved in checkpoints.
    """

    def __init__(
        self, config: RLConfig, *, resume: str | None = None, callbacks: Sequence[Callback] = ()
    ) -> None:
        if not config.init:
            raise ValueError("RLConfig.init must name the SFT checkpoint to start from (e.g. runs/sft/model).")
        self.cfg = cfg = config
        configure_torch(cfg.threads)
        self.dist = Distributed.from_env(cfg.device)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        hold_out_dir(self, self.dist.is_main)
        if self.dist.is_main:
            save_yaml(cfg, self.out / "config.yaml")
        ckpt = find_checkpoint(self.out, resume, "RL")
        self.model, self.tokenizer = load_pretrained(ckpt if ckpt is not None else cfg.init)
        self.ref_model, _ = load_pretrained(cfg.ref or cfg.init)
        self.model.to(cfg.device)
        self.ref_model.to(cfg.device).eval().requires_grad_(False)
        self.envs = make_envs(cfg.env, 1 if cfg.rollout_workers else cfg.episodes_per_step, cfg.split, cfg.env_kwargs)
        self.chat = ChatFormat(self.tokenizer, include_system_prompt=cfg.include_system_prompt)
        # the control tokens and their grammar come from the env's action format
        self.chat.control = format_control_tokens(self.tokenizer, env_action_format(self.envs[0]))
        self.control = self.chat.control
        self.control_ids = torch.as_tensor(self.control.id_list, device=cfg.device)
        self.policy = CausalLMPolicy(self.model, self.control, temperature=cfg.temperature)  # evaluation
        # the rollouts' sampler: the policy itself, or a copy in cfg.sampler_dtype (sync_sampler)
        self.sampler_model = sampler_copy(self.model, cfg.sampler_dtype)
        self.sampler = (
            self.policy if self.sampler_model is self.model
            else CausalLMPolicy(self.sampler_model, self.control, temperature=cfg.temperature)
        )
        per_episode_rng = cfg.per_episode_rng or cfg.rollout_workers > 0 or self.dist.enabled
        self.settings = RolloutSettings(cfg.max_new_tokens, cfg.max_observation_tokens, per_episode_rng=per_episode_rng)
        self.eval_settings = RolloutSettings(cfg.max_new_tokens, cfg.max_observation_tokens, greedy=cfg.eval_greedy)
        self.train_ids = task_ids(self.envs[0], cfg.num_tasks, cfg.skip_tasks)
        self.bank = ExpertBank(cfg.env, cfg.split, cfg.env_kwargs)
        eval_bank = ExpertBank(cfg.env, cfg.eval_split, cfg.env_kwargs)
        eval_ids = task_ids(eval_bank.env)
        self.eval_envs = make_envs(cfg.env, min(cfg.eval_episodes, 64), cfg.eval_split, cfg.env_kwargs)
        self.eval_requests = fixed_requests(eval_ids, cfg.eval_episodes, seed=10_000)
        gold = [t for t in eval_bank.many(eval_ids[: cfg.probe_size]) if t.success]
        self.probe = collate([t.to_episode(self.chat, max_observation_tokens=cfg.max_observation_tokens) for t in gold], self.control).to(cfg.device)
        self.guard_batch: TokenBatch | None = None  # expert_guard's and structure_guard's batch, built on first use
        self.optimizer = optimizer_for(self.model.parameters(), cfg)
        # one stream per purpose: arms with the same seed draw the same tasks at every step
        self.streams = RandomStreams(
            cfg.seed, python=("tasks", "sft_mix", "interleaved_sft", "random_undo"), torch_=("minibatches", "permutation")
        )
        self.generator = torch.Generator().manual_seed(cfg.seed)  # token sampling (without per_episode_rng)
        self.spikes = SpikeDetector(
            ratio=cfg.spike_ratio, z=cfg.spike_z, min_jump=cfg.spike_min_jump, window=cfg.spike_window,
            abs_floor=cfg.spike_abs,
        )
        self.collapse = CollapseDetector(cfg.collapse_frac, cfg.collapse_patience)
        self.warning = (
            EarlyWarning(WarningRule(cfg.warning_metric, cfg.warning_direction, cfg.warning_window, cfg.warning_threshold))
            if cfg.warning_metric else None
        )
        self.evaluation = Evaluation(cfg.eval_every)
        self.callbacks: list[Callback] = [
            self.evaluation,
            *(cb for term in enabled_terms(cfg.supervision) for cb in term.callbacks(self)),
            SpikeWarning(self.spikes),
            *([self.warning] if self.warning is not None else []),
            CollapseWatch(self.collapse, stop=cfg.stop_on_collapse),
            *callbacks,
            Checkpoint(cfg.save_every),
        ]
        check_names(self.callbacks)
        self.last_episodes: list[Episode] = []  # the current step's rollouts (for callbacks)
        self.step = 0
        self.history: list[dict[str, float]] = []
        if ckpt is not None:
            self._load_state(ckpt)
        self.train_model = self.dist.wrap(self.model)  # the model itself, or its DDP wrapper
        self.rollout_pool = None
        if cfg.rollout_workers and self.dist.is_main:
            from baselines.ray_rollout import pool_from_trainer

            self.rollout_pool = pool_from_trainer(cfg, self.model, self.tokenizer, self.settings)
        self.logger = (
            MetricLogger(self.out, tensorboard=cfg.tensorboard, resume_step=self.step if ckpt is not None else None)
            if self.dist.is_main else NullLogger()
        )

    # ------------------------------------------------------------------ one step
    def make_requests(self, tasks: list[str]) -> tuple[list[EpisodeRequest], list[int]]:
        """Sampling requests for the step's tasks, and the group of each; the expert slot (if
        ``offpolicy_expert``) is filled separately, so each group has ``group_size`` episodes."""
        sup = self.cfg.supervision
        terms = enabled_terms(sup)
        n_sampled = self.cfg.group_size - sum(t.expert_in_group for t in terms)
        hinting = [t for t in terms if t.gives_hints]  # only they need the task's expert trajectory
        requests, groups = [], []
        for g, task in enumerate(tasks):
            expert = self.bank.get(task) if hinting else None
            for k in range(n_sampled):
                seed = self.cfg.seed * 1_000_003 + self.step * 10_007 + g * 101 + k
                hints = [h for t in hinting if (h := t.hint(expert, k, sup)) is not None]
                requests.append(EpisodeRequest(task, seed, hints[0] if hints else None))
                groups.append(g)
        return requests, groups

    def collect(self, tasks: list[str]) -> list[Episode]:
        """Roll out the step's episodes (plus one expert episode per group with ``offpolicy_expert``)."""
        requests, groups = self.make_requests(tasks)
        if self.dist.enabled or self.rollout_pool is not None:
            episodes = self.dist.collect(requests, self._rollout, pool=self.rollout_pool, model=self.sampler_model)
        else:
            episodes = self._rollout(requests)
        for ep, g in zip(episodes, groups, strict=True):
            ep.group = g
        if any(t.expert_in_group for t in enabled_terms(self.cfg.supervision)):
            for g, task in enumerate(tasks):
                expert = self.bank.get(task).to_episode(self.chat, max_observation_tokens=self.cfg.max_observation_tokens)
                expert.group = g
                episodes.append(expert)
            episodes.sort(key=lambda e: e.group)  # stable: each group's expert comes last
        return episodes

    def _rollout(self, requests: list[EpisodeRequest]) -> list[Episode]:
        """Episodes of ``requests`` from this process's envs, sampled by :attr:`sampler`."""
        return collect_episodes(
            self.sampler, self.chat, self.envs, requests, self.settings,
            generator=self.generator, context_length=context_length(self.model),
        )

    @torch.no_grad()
    def sync_sampler(self) -> None:
        """Copy the float32 policy's weights into the low-precision sampler (cast to its dtype, or
        quantised again for ``"int8"`` / ``"int4"``); a no-op when the sampler is the policy itself
        (``sampler_dtype="float32"``)."""
        if self.sampler_model is self.model:
            return
        pairs = [*zip(self.sampler_model.parameters(), self.model.parameters(), strict=True),
                 *zip(self.sampler_model.buffers(), self.model.buffers(), strict=True)]
        for dst, src in pairs:
            dst.copy_(src)
        quantize_sampler_(self.sampler_model, self.cfg.sampler_dtype)

    def episode_advantages(self, episodes: Sequence[Episode]) -> torch.Tensor:
        """``[B]`` advantages of a rollout batch: GRPO's within each group (``scale_rewards``),
        then each enabled term's transformation (e.g. ``permuted_advantages``, a control)."""
        return self._advantages(*_rewards_and_groups(episodes))[0]

    def signal_dropped(self, rewards: torch.Tensor, groups: torch.Tensor, success: float) -> bool:
        """Whether the step's policy-gradient signal is dropped: fewer than ``min_signal_groups``
        groups have differing ``rewards``, or the batch's ``success`` (share of sampled episodes
        that succeed) is at least ``max_signal_success``."""
        cfg = self.cfg
        return ((cfg.min_signal_groups > 1 and signal_groups(rewards, groups) < cfg.min_signal_groups)
                or (cfg.max_signal_success is not None and success >= cfg.max_signal_success))

    @staticmethod
    def signal_lr_scale(episodes: Sequence[Episode]) -> float:
        """The factor ``signal_scaled_lr`` puts on a step's learning rate: the share of the batch's
        groups whose rewards differ (1 when every group signals; 1/8 for a lone failure among 8
        groups; 0 when none does)."""
        rewards, groups, _ = _rewards_and_groups(episodes)
        return signal_groups(rewards, groups) / max(len(torch.unique(groups)), 1)

    def _advantages(self, rewards: torch.Tensor, groups: torch.Tensor, success: float) -> tuple[torch.Tensor, bool]:
        """The batch's advantages (see :meth:`episode_advantages`) and whether its policy-gradient
        signal was dropped (:meth:`signal_dropped`)."""
        adv = group_advantages(rewards, groups, self.cfg.adv_eps, self.cfg.scale_rewards)
        dropped = self.signal_dropped(rewards, groups, success)
        if dropped:
            adv = torch.zeros_like(adv)  # too little signal, or a saturated batch: no policy gradient this step
        for term in enabled_terms(self.cfg.supervision):
            adv = term.advantages(adv, self)
        return adv, dropped

    @torch.no_grad()
    def prepare(self, episodes: list[Episode]) -> tuple[PreparedBatch, dict[str, float]]:
        """Advantages, old / reference log-probs and the on-policy diagnostics of a rollout batch."""
        cfg = self.cfg
        rewards, groups, success = _rewards_and_groups(episodes)
        adv, dropped = self._advantages(rewards, groups, success)
        batch = collate(episodes, self.control, adv.tolist()).to(cfg.device)
        shape, dev = batch.targets.shape, batch.targets.device
        old_logp = torch.zeros(shape, device=dev)
        ref_logp = torch.zeros(shape, device=dev)
        ref_argmax = torch.zeros(shape, dtype=torch.long, device=dev)
        entropy = torch.zeros(shape, device=dev)
        kl_ref = torch.zeros(shape, device=dev)
        ctrl = torch.zeros((*shape, len(self.control.id_list)), device=dev)
        ref_ctrl = torch.zeros_like(ctrl)
        self.model.eval()
        for rows in self._row_groups(batch):
            sub = batch.select(rows)
            w = sub.targets.shape[1]
            idx = torch.as_tensor(rows)
            logits = batch_logits(self.model, sub, cfg.temperature)
            ref_logits = batch_logits(self.ref_model, sub, cfg.temperature)
            check_finite("policy logits", logits, self.step)
            lp_all = F.log_softmax(logits, -1)
            ref_all = F.log_softmax(ref_logits, -1)
            old_logp[idx, :w] = lp_all.gather(-1, sub.targets[..., None]).squeeze(-1)
            ref_logp[idx, :w] = ref_all.gather(-1, sub.targets[..., None]).squeeze(-1)
            ref_argmax[idx, :w] = ref_all.argmax(-1)
            p_all = lp_all.exp()
            entropy[idx, :w] = -(p_all * lp_all).sum(-1)
            kl_ref[idx, :w] = (p_all * (lp_all - ref_all)).sum(-1)
            ctrl[idx, :w] = p_all[..., self.control_ids]
            ref_ctrl[idx, :w] = ref_all[..., self.control_ids].exp()
        self.model.train()
        mask = batch.loss_mask
        sampled = mask * (~batch.is_expert)[:, None]
        plain = sampled * (~batch.is_hinted)[:, None]
        is_ctrl = batch.control_mask
        sampler_ratio = torch.exp(old_logp - batch.sample_logprobs)
        stats = {
            "train/entropy": float(masked_mean(entropy, mask)),
            "train/entropy_control": float(masked_mean(entropy, mask * is_ctrl)),
            "train/entropy_content": float(masked_mean(entropy, mask * ~is_ctrl)),
            "train/kl_ref": float(masked_mean(kl_ref, mask)),
            "train/kl_ref_control": float(masked_mean(kl_ref, mask * is_ctrl)),
            "train/min_logp": float(old_logp[sampled > 0].min()) if bool((sampled > 0).any()) else math.nan,
            "train/low_prob_frac": float(masked_mean((old_logp < math.log(1e-3)).float(), sampled)),
            # sampler vs trainer log-probs of the same tokens: ~0 when token-in/token-out holds and
            # the sampler is the float32 policy; the precision gap with a low-precision sampler
            "train/logp_mismatch": float(masked_mean((batch.sample_logprobs - old_logp).abs(), plain)),
            # the largest / smallest trainer/sampler ratio π_train/π_sampler (tis / mis act on it)
            "train/sampler_ratio_max": float(sampler_ratio[plain > 0].max()) if bool((plain > 0).any()) else math.nan,
            "train/sampler_ratio_min": float(sampler_ratio[plain > 0].min()) if bool((plain > 0).any()) else math.nan,
            "train/adv_abs_mean": float(adv.abs().mean()),
        }
        stats.update(group_stats(rewards, groups))
        stats["train/signal_dropped"] = float(stats["train/signal_groups"] > 0 and dropped)
        stats.update(
            control_prob_stats(
                ctrl, batch.targets, sampled, batch.illegal, batch.after_open, self.control.names,
                self.control.id_list, self.control.names_by_id[self.control.eot_id], "diag/onpolicy",
            )
        )
        for k, name in enumerate(self.control.names):  # on-policy max p(c) where c was sampled
            hit = (sampled > 0) & (batch.targets == self.control.id_list[k])
            stats[f"diag/onpolicy/sampled_max/{name}"] = float(ctrl[..., k][hit].max()) if bool(hit.any()) else math.nan
        return PreparedBatch(batch, old_logp, ref_logp, ref_argmax, ref_ctrl), stats

    def sft_mix_batch(self, own: list[Episode]) -> TokenBatch | None:
        """The ``sft_mix`` episodes of one update: fresh expert trajectories and/or own successes."""
        sup = self.cfg.supervision
        episodes: list[Episode] = []
        if sup.sft_mix_source in ("expert", "both"):
            rng = self.streams.py["sft_mix"]
            tasks = [rng.choice(self.train_ids) for _ in range(sup.sft_mix_batch)]
            episodes += [
                t.to_episode(self.chat, max_observation_tokens=self.cfg.max_observation_tokens)
                for t in self.bank.many(tasks) if t.success
            ]
        if sup.sft_mix_source in ("own", "both"):
            episodes += own
        return collate(episodes, self.control).to(self.cfg.device) if episodes else None

    def update(self, prepared: PreparedBatch, episodes: list[Episode]) -> dict[str, float]:
        """``epochs × minibatches`` optimiser steps on the batch; returns averaged statistics."""
        cfg = self.cfg
        own = [e for e in episodes if e.success and not e.is_expert]
        sums: dict[str, float] = {}
        maxima = {"ratio_max": 0.0, "grad_norm_max": 0.0, "adam_rms_max": 0.0}
        n_updates = skipped = 0
        kl_stopped = False
        rollback = cfg.target_kl_rollback  # the config requires target_kl with it
        checks = UpdateChecks(self)  # expert_guard, structure_guard, random_undo: their first readings
        before_last: tuple[dict[str, Any], dict[str, Any]] | None = None  # the state before the last Adam step
        rolled_back = 0
        size = prepared.batch.size
        for epoch in range(cfg.epochs):
            if kl_stopped or checks.undone:
                break
            order = torch.randperm(size, generator=self.streams.torch["minibatches"]).tolist()
            for mb in range(cfg.minibatches):
                rows = sorted(order[mb::cfg.minibatches])
                if not rows:
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                every = cfg.control_grad_norm_every
                loss, stats, scales = self._backward_minibatch(
                    prepared, rows, own, control_norm=bool(epoch == 0 and mb == 0 and every and self.step % every == 0)
                )
                # under DDP every rank must stop together: check the sum over ranks
                check_finite("RL loss", self.dist.all_reduce(loss.detach().reshape(1)), self.step)
                if cfg.target_kl is not None:
                    kl = self.dist.reduce_stats({"approx_kl": stats["approx_kl"]}, scales)["approx_kl"]
                    kl_stopped = self._past_target_kl(kl)  # every rank decides on the global value
                if kl_stopped:  # this minibatch is not stepped, nor any after it
                    if rollback and before_last is not None:  # nor kept: the update that crossed it
                        self._restore(before_last)
                        rolled_back = 1
                    if n_updates:
                        break
                    norm = torch.zeros(())  # the step's first minibatch: logged as one skipped update
                    skipped += 1
                else:
                    norm = torch.nn.utils.clip_grad_norm_(
                        self.model.parameters(), cfg.grad_clip if cfg.grad_clip is not None else float("inf")
                    )
                    check_finite("gradient norm", norm, self.step)
                    if float(norm) > 0 and self.optimizer.param_groups[0]["lr"] > 0:
                        maxima["adam_rms_max"] = max(maxima["adam_rms_max"], adam_update_rms(self.optimizer))
                        if rollback or checks.active:
                            before_last = (copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()))
                        self.optimizer.step()
                        if checks.active and checks.undo():
                            self._restore(before_last)
                    else:  # no learning signal (e.g. every advantage 0, no auxiliary term) or a zero lr
                        skipped += 1  # (signal_scaled_lr): AdamW would still move its moments, or the weights
                n_updates += 1
                stats["loss"] = loss
                stats["grad_norm"] = norm.detach()
                if self.dist.enabled:
                    stats = self.dist.reduce_stats(stats, scales)
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                maxima["ratio_max"] = max(maxima["ratio_max"], float(stats["ratio_max"]))
                maxima["grad_norm_max"] = max(maxima["grad_norm_max"], float(norm))
                if kl_stopped or checks.undone:
                    break
        out = {f"train/{k}": v / max(n_updates, 1) for k, v in sums.items() if k not in ("ratio_max", "grad_norm_control")}
        out["train/grad_norm_control"] = sums.get("grad_norm_control", math.nan)
        out.update({f"train/{k}": v for k, v in maxima.items()})
        out["train/updates"] = float(n_updates)
        out["train/skipped_updates"] = float(skipped)
        out["train/kl_stopped"] = float(kl_stopped)
        out["train/approx_kl_after_update"] = self._kl_after_update(prepared)
        out.update(checks.metrics())
        if rollback:
            if not rolled_back and not checks.undone and before_last is not None:  # did the last update cross it? (the whole batch)
                kl = float(self.dist.all_reduce(torch.tensor([out["train/approx_kl_after_update"]]), "mean"))
                if self._past_target_kl(kl):
                    self._restore(before_last)
                    rolled_back = 1
                    out["train/approx_kl_after_update"] = self._kl_after_update(prepared)
            out["train/kl_rolled_back"] = float(rolled_back)
        return out

    def _backward_minibatch(
        self, prepared: PreparedBatch, rows: list[int], own: list[Episode], *, control_norm: bool = False
    ) -> tuple[torch.Tensor, dict[str, Any], LossScales | None]:
        """Forward and backward passes of one minibatch's :func:`rl_loss`, leaving its gradient in
        the parameters' ``.grad``: this process's share of ``rows`` under multi-process training,
        in micro-batches of ``micro_batch_size`` rows (or packed by length within
        ``micro_batch_tokens``: :func:`micro_groups`) whose scaled losses add up to the
        minibatch's (gradient accumulation; each backward frees its micro-batch's logits).

        Returns:
            ``(loss, stats, scales)``: the minibatch's loss (detached), its statistics on this
            process (with ``grad_norm_control`` when ``control_norm``) and this process's
            :class:`LossScales` (None in one process without micro-batches).
        """
        cfg, sup = self.cfg, self.cfg.supervision
        if self.dist.enabled:  # this rank's rows; global token means (see multiprocess.py)
            self.dist.check_shardable(len(rows), "An RL minibatch")
        lengths = prepared.batch.lengths() if cfg.micro_batch_tokens is not None else None
        groups = micro_groups(rows, cfg.micro_batch_size, self.dist.world_size, lengths=lengths, tokens=cfg.micro_batch_tokens)
        parts = [prepared.select(self.dist.shard(group)) for group in groups]
        scales: list[LossScales | None] = [None]
        if self.dist.enabled or len(parts) > 1:
            masks = []
            for part in parts:
                pb = part.batch
                positions = control_kl_positions(
                    pb.targets, part.ref_argmax, pb.loss_mask, self.control_ids, sup.control_kl_positions
                )
                masks.append((pb.loss_mask, pb.loss_mask * (~pb.is_expert)[:, None], positions))
            scales = list(self.dist.micro_loss_scales(masks))
        needs_ref = any(t.needs_ref_logits for t in enabled_terms(sup))
        sft_batch = self.sft_mix_batch(own) if uses_sft_batch(cfg) else None  # replicated: on the first micro-batch only
        total: torch.Tensor | None = None
        per_part: list[tuple[dict[str, Any], LossScales | None]] = []
        control_grads: list[torch.Tensor] | None = None
        for i, (part, part_scales) in enumerate(zip(parts, scales, strict=True)):  # [None]: one part
            logits = batch_logits(self.train_model, part.batch, cfg.temperature)
            ref_logits = None
            if needs_ref:
                with torch.no_grad():
                    ref_logits = batch_logits(self.ref_model, part.batch, cfg.temperature)
            sft_logits = None
            part_sft = sft_batch if i == 0 else None
            if part_sft is not None:
                sft_logits = batch_logits(self.train_model, part_sft, cfg.temperature)
            loss, stats = rl_loss(
                logits, part, cfg, self.control_ids, ref_logits=ref_logits, sft_logits=sft_logits, sft_batch=part_sft,
                scales=part_scales,
            )
            if control_norm:
                grads = self._control_grads(logits, part, part_scales)
                control_grads = grads if control_grads is None else [a + b for a, b in zip(control_grads, grads, strict=True)]
            # under DDP, gradients are averaged over ranks once, at the last micro-batch's backward
            sync = self.dist.enabled and i < len(parts) - 1
            with self.train_model.no_sync() if sync else contextlib.nullcontext():
                loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
            per_part.append((stats, part_scales))
        if len(per_part) == 1:
            stats, rank_scales = per_part[0]
        else:
            stats, rank_scales = combine_micro_stats(per_part)  # type: ignore[arg-type]
        if control_grads is not None:
            stats["grad_norm_control"] = torch.tensor(self._control_grad_norm(control_grads))
        assert total is not None  # micro_groups gives at least one part
        return total, stats, rank_scales

    def snapshot(self) -> TrainerSnapshot:
        """Copies of the weights, the optimiser state and the random streams, for :meth:`restore`
        (counterfactual replays and side-by-side measurements branch from one step's state)."""
        return TrainerSnapshot(copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()),
                               copy.deepcopy(self.streams.state_dict()))

    def restore(self, snapshot: TrainerSnapshot) -> None:
        """Put back a :meth:`snapshot`; the same snapshot can be restored any number of times."""
        self.model.load_state_dict(snapshot.weights)
        # a copy each time: load_state_dict keeps the moment tensors it is given, which the next Adam step changes in place
        self.optimizer.load_state_dict(copy.deepcopy(snapshot.optimizer))
        self.streams.load_state_dict(snapshot.streams)

    def _restore(self, state: tuple[dict[str, Any], dict[str, Any]]) -> None:
        """Put back the weights and optimiser state saved before an Adam step (``target_kl_rollback``)."""
        self.model.load_state_dict(state[0])
        self.optimizer.load_state_dict(state[1])

    def _expert_batch(self) -> TokenBatch:
        """The guards' fixed batch: the expert trajectories of the first ``expert_guard_size``
        training tasks the expert solves (built on first use)."""
        if self.guard_batch is None:
            size = self.cfg.expert_guard_size
            solved = [t for t in self.bank.many(self.train_ids[:size]) if t.success]
            if not solved:
                raise ValueError(f"expert_guard/structure_guard need expert-solved training tasks; none of the first {size} is.")
            episodes = [t.to_episode(self.chat, max_observation_tokens=self.cfg.max_observation_tokens) for t in solved]
            self.guard_batch = collate(episodes, self.control).to(self.cfg.device)
        return self.guard_batch

    def _expert_probe(self) -> dict[str, float]:
        """The probe's statistics (``guard/…``) on the guards' batch under the current policy."""
        return probe_stats(self.model, self._expert_batch(), self.chat, temperature=self.cfg.temperature, prefix="guard")

    def _probe_changes(self, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """:func:`~baselines.train.guards.probe_changes` between two ``_expert_probe`` readings (the
        mean over ranks under multi-process training, so that every rank decides alike)."""
        changes = probe_changes(before, after, prefix="guard/")
        names = list(changes)
        mean = self.dist.all_reduce(torch.tensor([changes[n] for n in names], dtype=torch.float64), "mean")
        return dict(zip(names, (float(v) for v in mean), strict=True))

    def _expert_nll(self) -> float:
        """Mean per-token NLL of the guards' batch under the current policy (the mean over ranks
        under multi-process training, so that every rank decides alike)."""
        nll = self._token_mean(self._expert_batch(), lambda rows, part, logp: (-logp * part.loss_mask, part.loss_mask))
        return float(self.dist.all_reduce(torch.tensor([nll], dtype=torch.float64), "mean"))

    def _row_groups(self, batch: TokenBatch) -> list[list[int]]:
        """The row groups of the no-grad passes over ``batch``: consecutive chunks of
        :meth:`_chunk_rows` rows or, with ``micro_batch_tokens``, its rows packed by length within
        that budget and that many rows (:func:`micro_groups`)."""
        size = self._chunk_rows(batch.size)
        if self.cfg.micro_batch_tokens is None:
            return chunks(batch.size, size)
        return micro_groups(range(batch.size), size, lengths=batch.lengths(), tokens=self.cfg.micro_batch_tokens)

    def _chunk_rows(self, n: int) -> int:
        """Rows per forward pass of the no-grad passes over a batch of ``n`` rows (old and reference
        log-probs, the KL after an update, the guards' readings): a minibatch's, or at most
        ``micro_batch_size``."""
        size = max(1, n // self.cfg.minibatches)
        return size if self.cfg.micro_batch_size is None else min(size, self.cfg.micro_batch_size)

    @torch.no_grad()
    def _token_mean(
        self, batch: TokenBatch,
        term: Callable[[list[int], TokenBatch, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    ) -> float:
        """``sum(values) / sum(weights)`` over ``batch`` in minibatch-sized chunks, in eval mode:
        ``term(rows, part, logp)`` gives a chunk's per-token ``values`` and ``weights`` from its
        rows, its sub-batch and ``logp``, the log-probs of its targets under the current policy."""
        total = num = 0.0
        self.model.eval()
        try:
            for rows in self._row_groups(batch):
                part = batch.select(rows)
                logp, _ = token_logprobs(batch_logits(self.model, part, self.cfg.temperature), part.targets)
                values, weights = term(rows, part, logp)
                num += float(values.sum())
                total += float(weights.sum())
        finally:
            self.model.train()
        return num / max(total, 1.0)

    def _past_target_kl(self, approx_kl: float) -> bool:
        """PPO's early-stop rule: an approx-KL (the global value under multi-process training, so
        that every rank decides alike) above ``1.5 × target_kl``; never without ``target_kl``."""
        return approx_kl > 1.5 * float(self.cfg.target_kl or math.inf)

    @torch.no_grad()
    def _kl_after_update(self, prepared: PreparedBatch) -> float:
        """``mean(old_logp - logp)`` over the sampled tokens, ``logp`` under the policy after the
        step's last update: how far the step moved the policy from the one that sampled the batch
        (``train/approx_kl`` averages the same estimate over the minibatches *before* each update)."""
        batch = prepared.batch
        sampled = batch.loss_mask * (~batch.is_expert)[:, None]
        if not bool((sampled > 0).any()):
            return 0.0

        def kl_terms(rows: list[int], part: TokenBatch, logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = part.loss_mask * (~part.is_expert)[:, None]
            return (prepared.old_logp[torch.as_tensor(rows), : logp.shape[1]] - logp) * m, m

        return self._token_mean(batch, kl_terms)

    def _control_grads(self, logits: torch.Tensor, part: PreparedBatch, scales: LossScales | None = None) -> list[torch.Tensor]:
        """This process's per-parameter gradient of the trained token-mean loss terms
        (:func:`token_terms`' ``trained``: the policy gradient with the run's clip ranges and
        policy shaping, plus the k3-KL and entropy terms) restricted to positions whose target is a
        control token, divided by the minibatch's loss-mask tokens (over every process and
        micro-batch: ``scales.total_tokens``); zeros for a part without control tokens."""
        b = part.batch
        params = [p for p in self.model.parameters() if p.requires_grad]
        per_token = token_terms(logits, part, self.cfg)["trained"]
        ctrl = b.loss_mask * b.control_mask
        total = scales.total_tokens if scales is not None and scales.total_tokens is not None else b.loss_mask.sum()
        loss = (per_token * ctrl).sum() / torch.as_tensor(total).clamp(min=1.0)
        if not loss.requires_grad or float(ctrl.sum()) == 0:
            return [torch.zeros_like(p) for p in params]
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params, strict=True)]

    def _control_grad_norm(self, grads: list[torch.Tensor]) -> float:
        """Norm of the control-position gradient (:meth:`_control_grads`, summed over a
        minibatch's micro-batches) of the step's first minibatch. Under multi-process training
        the gradients of all ranks are summed before taking the norm."""
        if self.dist.enabled:  # every rank must join the all-reduce, even with no control token
            flat = torch.cat([g.flatten() for g in grads])
            return float(self.dist.all_reduce(flat.double()).norm())
        return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads)))

    def interleaved_sft(self, window: Iterable[dict[str, float]]) -> dict[str, float]:
        """SFT phase on expert trajectories of the tasks with reward 0 throughout ``window`` (one
        ``{task: best reward}`` record per RL step; see :class:`~baselines.train.callbacks.InterleavedSFT`)."""
        sup = self.cfg.supervision
        best: dict[str, float] = {}
        for record in window:
            for task, r in record.items():
                best[task] = max(best.get(task, 0.0), r)
        failed = sorted(t for t, r in best.items() if r <= 0)
        trajectories = [t for t in self.bank.many(failed) if t.success]
        if not trajectories:
            return {"train/interleaved_sft_tasks": 0.0}
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=sup.interleave_lr)
        nll = 0.0
        for _ in range(sup.interleave_steps):
            batch = [self.streams.py["interleaved_sft"].choice(trajectories) for _ in range(sup.interleave_batch)]
            stats = sft_step(
                self.model, optimizer, self.chat, batch, temperature=self.cfg.temperature,
                grad_clip=1.0, max_observation_tokens=self.cfg.max_observation_tokens, step=self.step,
            )
            nll += stats["train/loss"] / sup.interleave_steps
        self.dist.broadcast_parameters(self.model)  # replicated phase: keep ranks bit-identical
        return {"train/interleaved_sft_tasks": float(len(trajectories)), "train/interleaved_sft_nll": nll}

    def begin_step(self) -> tuple[list[Episode], PreparedBatch, dict[str, float]]:
        """The first half of an RL step: advance the step counter, set its learning rate, sample
        its tasks and roll them out, and prepare the batch (advantages, old / reference log-probs,
        diagnostics, the probe). Returns ``(episodes, prepared batch, metrics so far)``; the
        update (:meth:`update`) and the callbacks are the second half (:meth:`train_step` does
        both; :mod:`benchmarks.collapse.counterfactual` branches in between)."""
        cfg = self.cfg
        started = time.perf_counter()
        self.step += 1
        for param in self.model.parameters():  # a corrupt checkpoint or last update: stop before sampling
            check_finite("model parameters", param, self.step, "the policy's weights hold NaN/inf.")
        self.lr = scheduled_lr(cfg, self.step)
        set_lr(self.optimizer, self.lr)
        tasks = self.streams.py["tasks"].sample(self.train_ids, min(cfg.prompts_per_step, len(self.train_ids)))
        self.sync_sampler()
        episodes = self.collect(tasks)
        rollout_s = time.perf_counter() - started
        sampled = [e for e in episodes if not e.is_expert]
        metrics = episode_stats(sampled, "train")
        prepared, diag = self.prepare(episodes)
        metrics.update(diag)
        if cfg.signal_scaled_lr:
            metrics["train/lr_scale"] = scale = self.signal_lr_scale(episodes)
            self.lr *= scale
            set_lr(self.optimizer, self.lr)
        metrics.update(probe_stats(self.model, self.probe, self.chat, temperature=cfg.temperature))
        metrics["train/rollout_s"] = rollout_s
        return episodes, prepared, metrics

    def train_step(self) -> dict[str, float]:
        """One full RL step (rollouts, updates, diagnostics, callbacks); returns its metrics."""
        started = time.perf_counter()
        episodes, prepared, metrics = self.begin_step()
        update_started = time.perf_counter()
        metrics.update(self.update(prepared, episodes))
        update_s = time.perf_counter() - update_started
        self.last_episodes = episodes
        for callback in self.callbacks:  # evaluation, the terms' callbacks, detectors (callbacks.py)
            metrics.update(callback.on_step(self, metrics))
        tokens = float(prepared.batch.loss_mask.sum())
        metrics.update({
            "train/lr": self.lr,
            "train/update_s": update_s,
            "train/step_s": time.perf_counter() - started,
            "train/update_s_per_1k_tokens": 1000 * update_s / max(tokens, 1.0),
            "train/policy_tokens": tokens,
        })
        return metrics

    def _evaluate(self, prefix: str) -> dict[str, float]:
        """The current policy on the fixed evaluation tasks (common random numbers), under ``prefix``."""
        stats, _ = evaluate(
            self.policy, self.chat, self.eval_envs, self.eval_requests, self.eval_settings, seed=self.cfg.seed + 7,
            prefix=prefix,
        )
        return stats

    # ------------------------------------------------------------------ loop, checkpoints
    def train(self, steps: int | None = None) -> dict[str, Any]:
        """Run until ``cfg.steps`` (or ``steps`` more steps); returns a summary dict."""
        cfg = self.cfg
        target = cfg.steps if steps is None else self.step + steps
        bar = None
        if cfg.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            # Training success is over sampled rollouts (temperature cfg.temperature), not greedy like `toolgym run`.
            bar = tqdm(total=target, initial=self.step, desc=f"rl (success sampled at T={cfg.temperature:g})", dynamic_ncols=True)
        started = time.perf_counter()
        stopped = None
        for callback in self.callbacks:
            callback.on_train_start(self)
        try:
            while self.step < target:
                try:
                    metrics = self.train_step()
                except TrainingDivergedError as exc:
                    stopped = str(exc)
                    logger.error("%s", exc)
                    break
                self.history.append(metrics)
                self.logger.log(self.step, metrics)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(success=f"{metrics['train/success']:.2f}", illegal=f"{metrics['diag/probe/illegal_total']:.3f}")
                reasons = [r for cb in self.callbacks if (r := cb.on_step_end(self, metrics)) is not None]
                if reasons:
                    stopped = "; ".join(reasons)
                    break
        finally:
            if bar is not None:
                bar.close()
        for callback in self.callbacks:
            callback.on_train_end(self)
        if self.dist.is_main:
            self.save()
            save_policy(self.model, self.tokenizer, self.out / "model", self.cfg)
        self.logger.close()
        self.dist.barrier()
        return self.summary(time.perf_counter() - started, stopped)

    def summary(self, wall_s: float, stopped: str | None = None) -> dict[str, Any]:
        """Final / best success, collapse and spike steps of the run so far."""
        succ = [m["train/success"] for m in self.history]
        evals = [m["eval/success"] for m in self.history if "eval/success" in m]
        tail = succ[-10:]
        return {
            "steps": self.step,
            "first_success": succ[0] if succ else math.nan,
            "final_success": sum(tail) / len(tail) if tail else math.nan,
            "best_success": max(succ) if succ else math.nan,
            "eval_success": evals[-1] if evals else math.nan,
            "collapse_step": self.collapse.collapse_step,
            "first_spike_step": self.spikes.first_threshold_step,
            "first_spike_z_step": self.spikes.first_z_step,
            "first_warning_step": self.warning.first_step if self.warning is not None else None,
            "wall_s": wall_s,
            "stopped": stopped,
        }

    def close(self) -> None:
        """End the Ray rollout actors, if any, and the process group under ``accelerate launch``
        (the trainer can no longer collect or train afterwards). Idempotent."""
        if self.rollout_pool is not None:
            self.rollout_pool.close()
            self.rollout_pool = None
        self.dist.close()

    def save(self) -> Path:
        """Write ``out_dir/checkpoints/step_N`` (model, tokenizer, optimizer, RNG and callback
        states) and drop checkpoints beyond ``keep_checkpoints``."""
        state = {
            "optimizer": self.optimizer.state_dict(),
            "streams": self.streams.state_dict(),
            "generator": self.generator.get_state(),
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
            "history": self.history,
        }
        return save_checkpoint(self.out, self.step, self.model, self.tokenizer, state, self.cfg.keep_checkpoints, self.cfg)

    def _load_state(self, path: Path) -> None:
        state = load_checkpoint_state(path)
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.streams.load_state_dict(state["streams"])
        self.generator.set_state(state["generator"])
        saved = state.get("callbacks")
        if saved is None:  # written before the callbacks (state under fixed keys)
            saved = {"spikes": state["spikes"], "collapse": state["collapse"],
                     "interleaved_sft": {"window": state["window"], "after_sft": state.get("after_sft", False)}}
        for callback in self.callbacks:
            if callback.name in saved:
                callback.load_state_dict(saved[callback.name])
        self.history = list(state.get("history", []))
        logger.info("Resumed from %s at step %d", path, self.step)


def sampler_copy(model: Any, dtype: str) -> Any:
    """The model that samples rollouts for ``RLConfig.sampler_dtype``: ``model`` itself for
    ``"float32"`` (no copy), else a frozen copy cast to ``dtype`` (``"bfloat16"``, ``"float16"``) or
    with its linear weights quantised to integer levels (``"int8"``, ``"int4"``: weight-only, float32
    activations; :func:`~baselines.llm.model.quantize_weights_`), refreshed by
    :meth:`RLTrainer.sync_sampler`."""
    if dtype == "float32":
        return model
    sampler = copy.deepcopy(model).to(dtype=sampler_storage_dtype(dtype)).eval().requires_grad_(False)
    return quantize_sampler_(sampler, dtype)
