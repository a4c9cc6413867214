"""Trainer configs: dataclasses with help text, validated in ``__post_init__``, loadable from YAML
and overridable from the command line (``--set rl.lr=2e-3`` style dotted keys).

Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from baselines.llm.model import SAMPLER_STORAGE, TinyLMConfig
from baselines.train.guards import GUARD_REFERENCES, PROBE_CHANGES
from baselines.train.terms import term_names

SCALE_REWARDS = ("group", "batch", "none")
"""How GRPO scales ``r - mean_g`` (:func:`baselines.train.batch.group_advantages`; as TRL's
``GRPOConfig.scale_rewards``)."""

SUPERVISIONS: tuple[str, ...] = term_names()
"""Names accepted by ``--supervision`` (comma-separated; ``none`` for the baseline), from the term
declarations of :mod:`baselines.train.terms`. The last two are controls: ``permuted_advantages``
permutes the advantages within the batch (is an effect reward-driven?), ``sft_only`` trains the
``sft_mix`` NLL with the policy-gradient term off (is it just supervised learning on expert data?)."""

SAMPLER_DTYPES: tuple[str, ...] = tuple(SAMPLER_STORAGE)
"""Values of ``RLConfig.sampler_dtype``: torch dtype names, and ``"int8"`` / ``"int4"`` (weight-only
integer quantisation)."""

T = TypeVar("T")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


@dataclass
class SupervisionConfig:
    """Supervisory signals added to the RL objective; every one is off unless named in ``use``."""

    use: list[str] = field(
        default_factory=list,
        metadata={"help": f"Enabled signals, any of {list(SUPERVISIONS)}; empty = vanilla GRPO."},
    )
    # offpolicy_expert (LUFFY / the paper's OPS)
    expert_gamma: float = field(
        default=0.1, metadata={"help": "offpolicy_expert: policy-shaping weight π/(π+γ) uses this γ."}
    )
    expert_clip: bool = field(
        default=False,
        metadata={"help": "offpolicy_expert: also clip the shaped weight to [1-ε, 1+ε] (the paper's repo)."},
    )
    # hint
    hint_per_group: int = field(
        default=1, metadata={"help": "hint: rollouts per group sampled with the hint in the prompt."}
    )
    hint_style: str = field(
        default="tools",
        metadata={"help": "hint: 'tools' (the expert's tool sequence) or 'first_call' (its first action)."},
    )
    # interleaved_sft (the paper's ETS)
    interleave_every: int = field(
        default=25, metadata={"help": "interleaved_sft: run an SFT phase every this many RL steps."}
    )
    interleave_window: int = field(
        default=10, metadata={"help": "interleaved_sft: failed tasks are those with reward 0 in the last N steps."}
    )
    interleave_steps: int = field(
        default=20, metadata={"help": "interleaved_sft: optimiser steps per SFT phase."}
    )
    interleave_lr: float = field(default=1e-3, metadata={"help": "interleaved_sft: SFT learning rate."})
    interleave_batch: int = field(default=32, metadata={"help": "interleaved_sft: episodes per SFT step."})
    # sft_mix
    sft_mix_coef: float = field(default=0.3, metadata={"help": "sft_mix / sft_only: λ of the NLL term."})
    sft_mix_source: str = field(
        default="expert",
        metadata={"help": "sft_mix / sft_only: 'expert' trajectories, the policy's 'own' successes, or 'both'."},
    )
    sft_mix_batch: int = field(default=32, metadata={"help": "sft_mix / sft_only: expert episodes per update."})
    sft_mix_positions: str = field(
        default="all",
        metadata={"help": "sft_mix / sft_only: the target tokens whose NLL is trained: 'all', 'control' (only the "
                          "control tokens) or 'content' (all but them); the sum is still divided by all the tokens, "
                          "so 'control' and 'content' are the two parts of 'all'."},
    )
    # control_kl
    control_kl_coef: float = field(
        default=1.0, metadata={"help": "control_kl: weight of the KL at control positions."}
    )
    control_kl_direction: str = field(
        default="policy_ref",
        metadata={"help": "control_kl: 'policy_ref' = KL(π‖π_ref) (the first study) or 'ref_policy' = KL(π_ref‖π) (the notes)."},
    )
    control_kl_positions: str = field(
        default="target_or_ref_argmax",
        metadata={"help": "control_kl: 'target_or_ref_argmax' (the first study) or 'target_or_follows' "
                          "(target is a control token or follows one; the notes)."},
    )
    # control_clip
    control_clip_eps: float = field(
        default=0.05, metadata={"help": "control_clip: ratio clip ε at control-token positions."}
    )
    # spike_penalty
    spike_coef: float = field(default=1.0, metadata={"help": "spike_penalty: weight of the hinge."})
    spike_threshold_mode: str = field(
        default="ref_relative",
        metadata={"help": "spike_penalty: 'ref_relative' (τ = spike_ref_factor × the reference's p(c) at the same "
                          "position) or 'absolute' (τ = spike_threshold)."},
    )
    spike_ref_factor: float = field(
        default=5.0, metadata={"help": "spike_penalty (ref_relative): p(c) above this × π_ref(c) is penalised."}
    )
    spike_threshold: float = field(
        default=0.1, metadata={"help": "spike_penalty (absolute): p(control) above this is penalised."}
    )
    spike_positions: str = field(
        default="illegal",
        metadata={"help": "spike_penalty: 'illegal' (grammar-illegal positions) or 'non_target'."},
    )
    # tis / mis (the sampler–trainer mismatch fixes; see RLConfig.sampler_dtype)
    tis_cap: float = field(
        default=2.0,
        metadata={"help": "tis: truncated importance sampling; each sampled token's policy-gradient term is "
                          "multiplied by min(π_train/π_sampler, C) with this C (Yao et al. 2025)."},
    )
    mis_cap: float = field(
        default=2.0,
        metadata={"help": "mis: masked importance sampling; sampled tokens whose ratio π_train/π_sampler is "
                          "outside [1/C, C] (this C) get zero policy-gradient weight."},
    )
    mis_reweight: bool = field(
        default=False,
        metadata={"help": "mis: also multiply the kept tokens by their ratio π_train/π_sampler "
                          "(token-level MIS, Liu et al. 2025); false = keep them with weight 1."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.use, str):
            self.use = parse_supervision(self.use)
        unknown = [u for u in self.use if u not in SUPERVISIONS]
        _check(not unknown, f"Unknown supervision {unknown}; expected any of {list(SUPERVISIONS)} or 'none'.")
        _check(self.expert_gamma > 0, f"expert_gamma must be > 0, got {self.expert_gamma!r}.")
        _check(self.hint_per_group >= 1, f"hint_per_group must be ≥ 1, got {self.hint_per_group!r}.")
        _check(self.hint_style in ("tools", "first_call"), f"hint_style must be 'tools' or 'first_call', got {self.hint_style!r}.")
        for name in ("interleave_every", "interleave_window", "interleave_steps", "interleave_batch", "sft_mix_batch"):
            _check(getattr(self, name) >= 1, f"{name} must be ≥ 1, got {getattr(self, name)!r}.")
        _check(self.sft_mix_source in ("expert", "own", "both"), f"sft_mix_source must be 'expert', 'own' or 'both', got {self.sft_mix_source!r}.")
        from baselines.train.supervision import CONTROL_KL_DIRECTIONS, CONTROL_KL_POSITIONS, SFT_MIX_POSITIONS

        _check(self.sft_mix_positions in SFT_MIX_POSITIONS,
               f"sft_mix_positions must be one of {list(SFT_MIX_POSITIONS)}, got {self.sft_mix_positions!r}.")

        _check(self.control_kl_direction in CONTROL_KL_DIRECTIONS,
               f"control_kl_direction must be one of {list(CONTROL_KL_DIRECTIONS)}, got {self.control_kl_direction!r}.")
        _check(self.control_kl_positions in CONTROL_KL_POSITIONS,
               f"control_kl_positions must be one of {list(CONTROL_KL_POSITIONS)}, got {self.control_kl_positions!r}.")
        _check(0 < self.control_clip_eps < 1, f"control_clip_eps must be in (0, 1), got {self.control_clip_eps!r}.")
        _check(0 <= self.spike_threshold < 1, f"spike_threshold must be in [0, 1), got {self.spike_threshold!r}.")
        _check(self.spike_threshold_mode in ("ref_relative", "absolute"),
               f"spike_threshold_mode must be 'ref_relative' or 'absolute', got {self.spike_threshold_mode!r}.")
        _check(self.spike_ref_factor >= 1, f"spike_ref_factor must be ≥ 1, got {self.spike_ref_factor!r}.")
        _check(self.spike_positions in ("illegal", "non_target"), f"spike_positions must be 'illegal' or 'non_target', got {self.spike_positions!r}.")
        _check(self.tis_cap >= 1, f"tis_cap must be ≥ 1, got {self.tis_cap!r}.")
        _check(self.mis_cap > 1, f"mis_cap must be > 1 (the band [1/C, C]), got {self.mis_cap!r}.")
        for name in ("sft_mix_coef", "control_kl_coef", "spike_coef", "interleave_lr"):
            _check(getattr(self, name) >= 0, f"{name} must be ≥ 0, got {getattr(self, name)!r}.")

    def enabled(self, name: str) -> bool:
        """Whether the named signal is on."""
        return name in self.use


def parse_supervision(text: str) -> list[str]:
    """``"none"`` -> ``[]``; ``"sft_mix,control_kl"`` -> ``["sft_mix", "control_kl"]``."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    return [] if names in ([], ["none"]) else names


@dataclass
class CommonConfig:
    """Settings shared by the SFT and RL trainers."""

    env: str = field(default="ToolGym/Lookup-v0", metadata={"help": "Gymnasium id of the ToolGym env."})
    env_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Extra gym.make kwargs (e.g. difficulty, max_turns, invalid_action)."}
    )
    split: str = field(default="train", metadata={"help": "Training task split."})
    eval_split: str = field(default="dev", metadata={"help": "Evaluation / probe task split."})
    num_tasks: int | None = field(default=None, metadata={"help": "Use only the first N training tasks (after skip_tasks)."})
    skip_tasks: int = field(
        default=0,
        metadata={"help": "Skip the split's first N training tasks; with num_tasks, a window of the split (e.g. SFT on "
                          "tasks 0-1199 with num_tasks=1200, RL on the rest with skip_tasks=1200)."},
    )
    include_system_prompt: bool = field(
        default=True, metadata={"help": "Put the env's system prompt (tools, format) in the model's prompt."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Tokens per assistant turn."})
    max_observation_tokens: int = field(default=256, metadata={"help": "Tokens kept per tool output."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (also used for log-probs)."})
    eval_every: int = field(default=10, metadata={"help": "Evaluate every N steps (0 = never)."})
    eval_episodes: int = field(default=64, metadata={"help": "Episodes per evaluation (fixed tasks)."})
    eval_greedy: bool = field(default=False, metadata={"help": "Evaluate with argmax decoding instead of sampling."})
    seed: int = field(default=0, metadata={"help": "Seed of every RNG the trainer uses."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (None = torch default)."})
    device: str = field(default="cpu", metadata={"help": "Torch device ('cpu', 'cuda')."})
    out_dir: str = field(default="runs/default", metadata={"help": "Directory for logs, checkpoints and the model."})
    tensorboard: bool = field(default=True, metadata={"help": "Also write TensorBoard event files."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    save_every: int = field(
        default=25, metadata={"help": "Checkpoint every N steps to out_dir/checkpoints (0 = only at the end); resume with --resume."}
    )
    keep_checkpoints: int = field(default=2, metadata={"help": "Checkpoints kept on disk (oldest removed)."})
    # optimiser (AdamW) and learning-rate schedule; the peak lr is each trainer's ``lr``
    warmup_steps: int = field(
        default=10, metadata={"help": "Linear lr warm-up over this many steps (step 1 uses lr / warmup_steps; 0 = off)."}
    )
    lr_schedule: str = field(
        default="constant", metadata={"help": "After warm-up: 'constant', 'linear' or 'cosine' decay to 0 at the end."}
    )
    optimizer: str = field(
        default="adamw",
        metadata={"help": "'adamw' (torch's) or 'stable_adamw' (torch-optimi's StableAdamW: AdamW whose step of each "
                          "tensor is divided by max(1, RMS of g²/v̂), Wortsman et al. 2023's update clipping; the "
                          "same betas, ε and weight decay)."},
    )
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW β1."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW β2."})
    adam_eps: float = field(default=1e-8, metadata={"help": "AdamW ε."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW (decoupled) weight decay."})
    grad_clip: float | None = field(default=1.0, metadata={"help": "Clip the global grad norm to this (None = off)."})

    def __post_init__(self) -> None:
        from baselines.train.optim import OPTIMIZERS, SCHEDULES

        _check(self.warmup_steps >= 0, f"warmup_steps must be ≥ 0, got {self.warmup_steps!r}.")
        _check(self.lr_schedule in SCHEDULES, f"lr_schedule must be one of {list(SCHEDULES)}, got {self.lr_schedule!r}.")
        _check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}.")
        _check(0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1,
               f"adam_beta1 and adam_beta2 must be in [0, 1), got {self.adam_beta1!r} and {self.adam_beta2!r}.")
        _check(self.adam_eps > 0, f"adam_eps must be > 0, got {self.adam_eps!r}.")
        _check(self.weight_decay >= 0, f"weight_decay must be ≥ 0, got {self.weight_decay!r}.")
        _check(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 or None, got {self.grad_clip!r}.")
        _check(self.max_new_tokens >= 1, f"max_new_tokens must be ≥ 1, got {self.max_new_tokens!r}.")
        _check(self.max_observation_tokens >= 8, f"max_observation_tokens must be ≥ 8, got {self.max_observation_tokens!r}.")
        _check(self.temperature > 0, f"temperature must be > 0, got {self.temperature!r}.")
        _check(self.eval_every >= 0, f"eval_every must be ≥ 0, got {self.eval_every!r}.")
        _check(self.eval_episodes >= 1, f"eval_episodes must be ≥ 1, got {self.eval_episodes!r}.")
        _check(self.num_tasks is None or self.num_tasks >= 1, f"num_tasks must be ≥ 1 or None, got {self.num_tasks!r}.")
        _check(self.skip_tasks >= 0, f"skip_tasks must be ≥ 0, got {self.skip_tasks!r}.")
        _check(self.threads is None or self.threads >= 1, f"threads must be ≥ 1 or None, got {self.threads!r}.")
        _check(self.save_every >= 0 and self.keep_checkpoints >= 1,
               f"save_every must be ≥ 0 and keep_checkpoints ≥ 1, got {self.save_every!r} and {self.keep_checkpoints!r}.")


def parse_source(source: str) -> tuple[str, str | None]:
    """``(env_id, action_format or None)`` of a mixture source ``'ENV_ID'`` or ``'ENV_ID@FORMAT'``.

    Raises:
        ValueError: one line naming the source and what was expected (a registered env id, a
            registered action format).
    """
    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the envs
    from toolgym.core.formats import action_format_names

    env_id, _, fmt = source.partition("@")
    _check(env_id in gym.registry, f"Mixture source {source!r}: {env_id!r} is not a registered env id "
                                   "(expected e.g. 'ToolGym/Calc-v0' or 'ToolGym/Calc-v0@pythonic').")
    _check(not fmt or fmt in action_format_names(),
           f"Mixture source {source!r}: unknown action format {fmt!r}; expected one of {action_format_names()}.")
    return env_id, fmt or None


@dataclass
class SFTConfig(CommonConfig):
    """Supervised fine-tuning on oracle trajectories (the starting policy of RL)."""

    init: str | None = field(
        default=None, metadata={"help": "Local HF checkpoint to start from; None = new tokenizer + tiny model."}
    )
    model: TinyLMConfig = field(default_factory=TinyLMConfig, metadata={"help": "Tiny model size (when init is None)."})
    vocab_size: int = field(default=2048, metadata={"help": "BPE vocabulary size (when init is None)."})
    tokenizer_tasks: int = field(default=600, metadata={"help": "Oracle episodes whose text trains the BPE."})
    steps: int = field(default=300, metadata={"help": "Optimiser steps."})
    batch_size: int = field(default=64, metadata={"help": "Episodes per step."})
    bucket_tokens: int = field(
        default=0,
        metadata={"help": "Forward the batch in length-sorted buckets of at most this many padded token positions "
                          "(0 = one forward over the whole padded batch). Same loss and gradient (the token mean over "
                          "the whole batch), far less padding when episode lengths differ (a mixture)."},
    )
    lr: float = field(default=1e-3, metadata={"help": "AdamW peak learning rate (see warmup_steps, lr_schedule)."})
    expert_noise: float = field(
        default=0.0,
        metadata={"help": "Noisy expert: each content value of an action is replaced at random with this probability."},
    )
    stop_at_success: float | None = field(
        default=None, metadata={"help": "Early stop once eval success reaches this (partial-success start)."}
    )
    mixture: list[str] = field(
        default_factory=list,
        metadata={"help": "More training sources beside env, 'ENV_ID' or 'ENV_ID@FORMAT' (its action format), "
                          "comma-separated on the command line; each batch element draws a source uniformly, then "
                          "an episode (a broad pretraining mixture). env stays the evaluation env."},
    )
    played_episodes: float = field(
        default=0.0,
        metadata={"help": "Fraction of each batch from episodes the oracle played with perturbed actions (the env's "
                          "real errors and failures; see played_content_noise, played_format_noise)."},
    )
    played_content_noise: float = field(
        default=0.3, metadata={"help": "Played episodes: probability of replacing each content value of an action."}
    )
    played_format_noise: float = field(
        default=0.1, metadata={"help": "Played episodes: probability of cutting an action short (an unparseable turn)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.model, dict):
            self.model = TinyLMConfig(**self.model)
        if isinstance(self.mixture, str):
            self.mixture = [part.strip() for part in self.mixture.split(",") if part.strip()]
        for source in self.mixture:
            parse_source(source)
        _check(0 <= self.played_episodes <= 1, f"played_episodes must be in [0, 1], got {self.played_episodes!r}.")
        for name in ("played_content_noise", "played_format_noise"):
            value = getattr(self, name)
            _check(0 <= value <= 1, f"{name} must be in [0, 1], got {value!r}.")
        _check(self.steps >= 1, f"steps must be ≥ 1, got {self.steps!r}.")
        _check(self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size!r}.")
        _check(self.bucket_tokens >= 0, f"bucket_tokens must be ≥ 0 (0 = off), got {self.bucket_tokens!r}.")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr!r}.")
        _check(0 <= self.expert_noise < 1, f"expert_noise must be in [0, 1), got {self.expert_noise!r}.")
        _check(self.vocab_size >= 300, f"vocab_size must be ≥ 300 (256 bytes + specials), got {self.vocab_size!r}.")
        _check(
            self.stop_at_success is None or 0 < self.stop_at_success <= 1,
            f"stop_at_success must be in (0, 1] or None, got {self.stop_at_success!r}.",
        )


@dataclass
class RLConfig(CommonConfig):
    """GRPO over multi-turn episodes with a token-level clipped policy-gradient loss."""

    init: str = field(default="", metadata={"help": "SFT checkpoint directory (the starting policy)."})
    ref: str | None = field(default=None, metadata={"help": "Reference policy checkpoint (default: init)."})
    steps: int = field(default=100, metadata={"help": "RL steps (one rollout batch each)."})
    prompts_per_step: int = field(default=8, metadata={"help": "Tasks per step (GRPO groups)."})
    group_size: int = field(default=8, metadata={"help": "Episodes per task (G)."})
    epochs: int = field(default=4, metadata={"help": "Passes over each rollout batch."})
    minibatches: int = field(default=2, metadata={"help": "Minibatches per pass (updates = epochs × minibatches)."})
    micro_batch_size: int | None = field(
        default=None,
        metadata={"help": "Rows per forward pass (per process) of an update, whose gradients accumulate over a "
                          "minibatch's micro-batches, and of the no-grad passes (old and reference log-probs, "
                          "KL after an update, guards). The update is the same up to float rounding; peak memory, "
                          "which grows with rows × sequence length × vocabulary, falls. None = a whole minibatch."},
    )
    micro_batch_tokens: int | None = field(
        default=None,
        metadata={"help": "Padded tokens (rows × longest row) per forward pass (per process) of an update and of the "
                          "no-grad passes: each minibatch's rows are sorted by length and packed into micro-batches "
                          "within this budget (verl's dynamic batch size), so that one long episode does not pad a "
                          "whole minibatch to its length; a longer row gets a pass of its own. With micro_batch_size "
                          "too, both limits hold. The update is the same up to float rounding. None = off."},
    )
    target_kl: float | None = field(
        default=None,
        metadata={"help": "PPO's early stop (Spinning Up, Stable-Baselines3): end a step's updates as soon as a "
                          "minibatch's approx-KL to the sampling policy, measured before its update, exceeds 1.5 × "
                          "this; that minibatch and the rest are not stepped (train/kl_stopped, train/updates). "
                          "None = off."},
    )
    target_kl_rollback: bool = field(
        default=False,
        metadata={"help": "With target_kl: also undo the Adam update that crossed the threshold (weights and optimiser "
                          "state restored, TRPO-style step rejection; still counted in train/updates), and check "
                          "the batch's approx-KL after the step's last update the same way (train/kl_rolled_back)."},
    )
    expert_guard: float | None = field(
        default=None,
        metadata={"help": "Undo an Adam update that raises the mean per-token NLL of a fixed batch of training-task "
                          "expert trajectories by more than this many nats (weights and optimiser state restored; the "
                          "step's remaining updates are not taken: train/expert_guard_rolled_back). inf = measure "
                          "only (train/expert_nll_rise_max). None = off."},
    )
    structure_guard: dict[str, float] | None = field(
        default=None,
        metadata={"help": "Undo an Adam update whose change of the probe statistics of the expert_guard batch exceeds "
                          "a threshold, by name: control_hit_fall, illegal_rise, after_open_eot_rise, content_fall "
                          "(probabilities; see baselines/train/guards.py), e.g. {content_fall: 0.03}; the step's "
                          "remaining updates are not taken (train/expert_guard_rolled_back; train/structure/NAME_max "
                          "is the step's largest change). inf = measure only. None = off."},
    )
    random_undo: float = field(
        default=0.0,
        metadata={"help": "The guards' control: undo each Adam update with this probability (weights and optimiser "
                          "state restored) and end the step, as expert_guard / structure_guard do, but at random "
                          "(train/expert_guard_rolled_back). 0 = off."},
    )
    guard_reference: str = field(
        default="update",
        metadata={"help": "What expert_guard / structure_guard compare the readings after an Adam update with: "
                          "'update', those after the step's last update kept (each update judged alone), or 'step', "
                          "those at the step's start (the step's updates judged together, so that updates that each "
                          "pass but add up are caught)."},
    )
    expert_guard_size: int = field(
        default=16, metadata={"help": "The expert_guard / structure_guard batch: the expert trajectories of the first this "
                                      "many training tasks (those the expert solves)."}
    )
    lr: float = field(default=1e-4, metadata={"help": "AdamW peak learning rate (see warmup_steps, lr_schedule)."})
    clip_eps: float = field(default=0.2, metadata={"help": "PPO ratio clip ε (lower and upper)."})
    clip_eps_high: float | None = field(default=None, metadata={"help": "Upper clip ε (DAPO clip-higher); None = clip_eps."})
    kl_coef: float = field(default=0.0, metadata={"help": "β of the k3 KL to the reference on all tokens."})
    entropy_coef: float = field(default=0.0, metadata={"help": "Entropy bonus weight."})
    adv_eps: float = field(default=1e-6, metadata={"help": "GRPO advantage = (r - mean) / (std + adv_eps)."})
    scale_rewards: str = field(
        default="group",
        metadata={"help": "Divide r - mean by the group's std ('group', GRPO), the batch's ('batch') or nothing "
                          "('none', Dr. GRPO), as TRL's scale_rewards."},
    )
    min_signal_groups: int = field(
        default=1,
        metadata={"help": "Drop a step's policy-gradient signal (advantages set to 0; without auxiliary terms the step "
                          "is skipped) when fewer than this many of its groups have differing rewards: the "
                          "lone-failure updates of a saturated policy. 1 = off."},
    )
    max_signal_success: float | None = field(
        default=None,
        metadata={"help": "Drop a step's policy-gradient signal (as min_signal_groups) when the share of its sampled "
                          "episodes that succeed is at least this: no policy-gradient update of a saturated "
                          "policy. None = off."},
    )
    signal_scaled_lr: bool = field(
        default=False,
        metadata={"help": "Multiply each step's learning rate by the share of its groups whose rewards differ "
                          "(signalling groups / groups): a saturated batch whose only signal is one group moves the "
                          "policy that much less far; a step with none takes no update, auxiliary terms included."},
    )
    probe_size: int = field(default=64, metadata={"help": "Gold trajectories in the teacher-forced probe."})
    collapse_frac: float = field(default=0.5, metadata={"help": "Collapse: success < frac × running best ..."})
    collapse_patience: int = field(default=10, metadata={"help": "... for this many consecutive steps."})
    spike_ratio: float = field(
        default=10.0,
        metadata={"help": "Spike (ratio rule): probe illegal mass above this × its running median (p99 of non-collapsing runs)."},
    )
    spike_z: float = field(
        default=5.0, metadata={"help": "Spike (z rule): log illegal-mass jump above z × rolling std (p99 of non-collapsing runs) ..."}
    )
    spike_min_jump: float = field(default=5.0, metadata={"help": "... and above log(this) (a factor)."})
    spike_abs: float = field(default=0.0, metadata={"help": "Spike (ratio rule): also require the mass above this floor (0 = none)."})
    spike_window: int = field(default=20, metadata={"help": "Steps of the running median / rolling std of the spike rules."})
    stop_on_collapse: bool = field(default=False, metadata={"help": "Stop training when collapse is detected."})
    warning_metric: str = field(
        default="",
        metadata={"help": "Early warning: the logged metric to watch, e.g. diag/onpolicy/illegal_total ('' = off); "
                          "diag/warning marks alarm steps (baselines/train/early_warning.py)."},
    )
    warning_direction: int = field(default=1, metadata={"help": "Early warning: +1 alarms on a rise, -1 on a fall, 0 on either."})
    warning_window: int = field(default=5, metadata={"help": "Early warning: steps of the median the value is compared with."})
    warning_threshold: float = field(
        default=4.6, metadata={"help": "Early warning: alarm at a log-ratio to that median ≥ this (4.6 ≈ a 100-fold jump)."}
    )
    control_grad_norm_every: int = field(
        default=1,
        metadata={"help": "Log train/grad_norm_control every N steps (0 = never). It costs a second backward pass "
                          "on the step's first minibatch (about +70% update time with one minibatch)."},
    )
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig, metadata={"help": "Supervisory signals."})
    per_episode_rng: bool = field(
        default=False,
        metadata={"help": "Seed each episode's sampling from its request seed (episodes independent of batching, "
                          "workers and ranks); always on with rollout_workers > 0 or under accelerate launch."},
    )
    sampler_dtype: str = field(
        default="float32",
        metadata={"help": "Sample rollouts with a copy of the policy cast to this dtype ('float32', 'bfloat16', "
                          "'float16') or with integer weights ('int8', 'int4': weight-only, per-row symmetric, float32 "
                          "activations), refreshed from the float32 weights before every step's rollouts; the loss "
                          "and old log-probs stay float32 (the vLLM-samples / FSDP-trains mismatch; see "
                          "supervision tis / mis). 'float32' = no copy."},
    )
    rollout_workers: int = field(
        default=0, metadata={"help": "Ray rollout actors (0 = roll out in the trainer's process); needs toolgym[ray]."}
    )
    envs_per_worker: int | None = field(
        default=None, metadata={"help": "Envs per Ray actor (None = ceil(episodes_per_step / rollout_workers))."}
    )
    ray_address: str | None = field(
        default=None, metadata={"help": "ray.init address ('auto', 'ray://head:10001'); None = local Ray."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.control_grad_norm_every >= 0, f"control_grad_norm_every must be ≥ 0, got {self.control_grad_norm_every!r}.")
        _check(self.sampler_dtype in SAMPLER_DTYPES,
               f"sampler_dtype must be one of {list(SAMPLER_DTYPES)}, got {self.sampler_dtype!r}.")
        _check(self.rollout_workers >= 0, f"rollout_workers must be ≥ 0, got {self.rollout_workers!r}.")
        _check(self.envs_per_worker is None or self.envs_per_worker >= 1, f"envs_per_worker must be ≥ 1 or None, got {self.envs_per_worker!r}.")
        if isinstance(self.supervision, dict):
            self.supervision = SupervisionConfig(**self.supervision)
        for name in ("steps", "prompts_per_step", "epochs", "minibatches", "probe_size", "expert_guard_size", "collapse_patience",
                     "spike_window"):
            _check(getattr(self, name) >= 1, f"{name} must be ≥ 1, got {getattr(self, name)!r}.")
        _check(self.group_size >= 2, f"group_size must be ≥ 2 (GRPO compares episodes of a task), got {self.group_size!r}.")
        _check(self.micro_batch_size is None or self.micro_batch_size >= 1,
               f"micro_batch_size must be ≥ 1 or None (a whole minibatch), got {self.micro_batch_size!r}.")
        _check(self.micro_batch_tokens is None or self.micro_batch_tokens >= 1,
               f"micro_batch_tokens must be ≥ 1 or None (no token budget), got {self.micro_batch_tokens!r}.")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr!r}.")
        _check(self.target_kl is None or self.target_kl > 0, f"target_kl must be > 0 or None, got {self.target_kl!r}.")
        _check(not self.target_kl_rollback or self.target_kl is not None, "target_kl_rollback needs target_kl (got None).")
        _check(self.guard_reference in GUARD_REFERENCES,
               f"guard_reference must be one of {list(GUARD_REFERENCES)}, got {self.guard_reference!r}.")
        _check(self.guard_reference == "update" or self.expert_guard is not None or self.structure_guard is not None,
               f"guard_reference={self.guard_reference!r} needs expert_guard or structure_guard (both are None).")
        _check(0 <= self.random_undo < 1, f"random_undo must be in [0, 1), got {self.random_undo!r}.")
        if self.structure_guard is not None:
            unknown = sorted(set(self.structure_guard) - set(PROBE_CHANGES))
            _check(not unknown and bool(self.structure_guard),
                   f"structure_guard takes thresholds for {list(PROBE_CHANGES)}, got {self.structure_guard!r}.")
            _check(all(v > 0 for v in self.structure_guard.values()),
                   f"structure_guard thresholds must be > 0 (inf = measure only), got {self.structure_guard!r}.")
        _check(self.expert_guard is None or self.expert_guard > 0,
               f"expert_guard must be > 0 (nats per token; inf = measure only) or None, got {self.expert_guard!r}.")
        _check(0 < self.clip_eps < 1, f"clip_eps must be in (0, 1), got {self.clip_eps!r}.")
        _check(self.clip_eps_high is None or self.clip_eps_high > 0, f"clip_eps_high must be > 0, got {self.clip_eps_high!r}.")
        _check(self.spike_ratio > 1 and self.spike_min_jump >= 1 and self.spike_z > 0 and self.spike_abs >= 0,
               "spike_ratio must be > 1, spike_min_jump ≥ 1, spike_z > 0 and spike_abs ≥ 0.")
        _check(1 <= self.min_signal_groups <= self.prompts_per_step,
               f"min_signal_groups must be in [1, prompts_per_step={self.prompts_per_step}], got {self.min_signal_groups!r}.")
        _check(self.max_signal_success is None or 0 < self.max_signal_success <= 1,
               f"max_signal_success must be in (0, 1] or None, got {self.max_signal_success!r}.")
        _check(self.scale_rewards in SCALE_REWARDS,
               f"scale_rewards must be one of {list(SCALE_REWARDS)}, got {self.scale_rewards!r}.")
        _check(0 < self.collapse_frac < 1, f"collapse_frac must be in (0, 1), got {self.collapse_frac!r}.")
        _check(self.warning_direction in (-1, 0, 1), f"warning_direction must be -1, 0 or 1, got {self.warning_direction!r}.")
        _check(self.warning_window >= 1, f"warning_window must be ≥ 1, got {self.warning_window!r}.")
        _check(self.warning_threshold > 0, f"warning_threshold must be > 0, got {self.warning_threshold!r}.")
        _check(self.kl_coef >= 0 and self.entropy_coef >= 0, "kl_coef and entropy_coef must be ≥ 0.")
        sup = self.supervision
        if sup.enabled("offpolicy_expert") or sup.enabled("hint"):
            used = int(sup.enabled("offpolicy_expert")) + (sup.hint_per_group if sup.enabled("hint") else 0)
            _check(used < self.group_size, f"group_size={self.group_size} leaves no plain rollout with offpolicy_expert/hint ({used} special per group).")

    @property
    def episodes_per_step(self) -> int:
        """``prompts_per_step × group_size``."""
        return self.prompts_per_step * self.group_size


# --------------------------------------------------------------------------- loading


def to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dict of a config dataclass (YAML-serialisable)."""
    return dataclasses.asdict(config)


def save_yaml(config: Any, path: str | Path) -> None:
    """Write ``config`` as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"Cannot set {key!r}: {part!r} is not a section.")
    node[parts[-1]] = value


def _known_keys(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _type_name(typ: Any) -> str:
    if typing.get_args(typ) or not hasattr(typ, "__name__"):
        return str(typ).replace("typing.", "")
    return typ.__name__


def convert_value(name: str, value: Any, typ: Any) -> Any:
    """``value`` converted to the declared field type ``typ`` (``float``, ``int``, ``bool``,
    ``str``, ``X | None``, ``list[...]``, ``dict[...]``, ``Any``); YAML reads ``5e-4`` as a string
    and ``1`` as an int, so both become the float a ``float`` field needs.

    Raises:
        ValueError: one line naming the field, the value and the expected type.
    """
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)

    def fail() -> ValueError:
        return ValueError(f"Config field {name!r}: cannot use {value!r} ({type(value).__name__}); expected {_type_name(typ)}.")

    if typ is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~")):
            if type(None) in args:
                return None
            raise fail()
        for option in (a for a in args if a is not type(None)):
            try:
                return convert_value(name, value, option)
            except ValueError:
                continue
        raise fail()
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise fail()
    if typ is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise fail() from None
        raise fail()
    if typ is int:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    raise fail() from None
                if f.is_integer():
                    return int(f)
        raise fail()
    if typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise fail()
    if origin is list:
        if isinstance(value, str):  # e.g. supervision.use="sft_mix,control_kl" (parsed by the dataclass)
            return value
        if not isinstance(value, (list, tuple)):
            raise fail()
        inner = args[0] if args else Any
        return [convert_value(f"{name}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise fail()
        inner = args[1] if len(args) == 2 else Any
        return {k: convert_value(f"{name}[{k!r}]", v, inner) for k, v in value.items()}
    if dataclasses.is_dataclass(typ):
        if isinstance(value, typ):
            return value
        if not isinstance(value, dict):
            raise fail()
        return _convert(typ, value, prefix=f"{name}.")
    return value


def _convert(cls: type, data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``data`` with every known key's value converted to its field's type (nested sections
    recursively). Raises ValueError for an unknown key (with a suggestion) or a bad value."""
    import difflib

    known = _known_keys(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" Did you mean {prefix}{close[0]!r}?" if close else ""
            raise ValueError(f"Unknown config key {prefix}{key!r} for {cls.__name__}.{hint}")
        out[key] = convert_value(f"{prefix}{key}", value, known[key])
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None, **fields: Any) -> T:
    """Build a config from an optional YAML file, ``key=value`` overrides (dotted keys reach nested
    sections, values parsed as YAML) and keyword fields (highest precedence). Every value is
    converted to its field's declared type (:func:`convert_value`: ``lr=5e-4`` is a float).

    Raises:
        ValueError: for an unknown key (with a suggestion), a value that cannot be converted to
            its field's type (naming field, value and type) or an invalid value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a YAML mapping, got {type(loaded).__name__}.")
        data.update(loaded)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"Override {item!r} must look like key=value.")
        _set_dotted(data, key.strip(), yaml.safe_load(raw))
    for key, value in fields.items():
        if value is not None:
            _set_dotted(data, key, value)
    return cls(**_convert(cls, data))
