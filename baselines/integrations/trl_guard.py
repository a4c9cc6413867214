"""Collapse guard for TRL's ``GRPOTrainer``: ToolGym's diagnostics and supervisory signals.

A user's existing ``GRPOTrainer`` script on a ToolGym env (:class:`toolgym.integrations.trl.TRLAdapter`)
gains, with a few lines:

* **diagnostics**, logged through TRL's own metrics (so they reach whatever ``report_to`` names):
  per control token, its probability where it belongs (``hit_mean``) and where it does not
  (``leak_*``, ``illegal_*``), teacher-forced on a fixed probe of oracle trajectories
  (``diag/probe/…``, every ``probe_every`` steps) and on the step's own completions
  (``diag/onpolicy/…``, needs :class:`GuardedGRPOTrainer`); p(end-of-turn right after the call
  opener) (``after_open_eot``); the format-error rate and the share of env steps per ToolGym error
  code (``toolgym/format_error_rate``, ``toolgym/errors/<code>``); the spike and collapse
  detectors (``diag/spike_*``, ``diag/collapse*``), with an optional stop or rollback to the last
  good checkpoint when one fires;
* **supervisory signals** (:class:`GuardedGRPOTrainer`): ``sft_mix``, ``control_kl``,
  ``control_clip``, ``spike_penalty`` and ``offpolicy_expert`` (expert replay), computed by the
  very functions ToolGym's own trainer uses (:mod:`baselines.train.supervision`) on the same
  per-position tensors (:func:`baselines.train.batch.collate`).

Usage (see ``examples/trl_collapse_guard.py``)::

    guard = CollapseGuard(adapter, supervision=["control_kl", "spike_penalty", "sft_mix"], on_spike="stop")
    trainer = GuardedGRPOTrainer(guard=guard, model=model, processing_class=tokenizer, args=args,
                                 **adapter.trainer_kwargs(num_tasks=512))

or, diagnostics only on an unchanged ``GRPOTrainer``: ``CollapseGuard(adapter).attach(trainer)``.

How each term sits in TRL's loop:

* ``sft_mix``: NLL of ``sft_mix_batch`` oracle trajectories (rendered with the tokenizer's chat
  template) added to every micro-batch's loss, weight ``sft_mix_coef``.
* ``control_kl``: full-vocabulary ``KL(π‖π_ref)`` at control positions of the completions. The
  reference is TRL's ``ref_model`` when ``beta > 0``, else a frozen copy of the initial policy.
* ``spike_penalty``: hinge on control-token probability where the turn grammar makes it illegal
  (or where it is not the target), on the completions' policy tokens; above ``spike_ref_factor`` ×
  the reference's probability of the same token at the same position (as ToolGym's trainer), or
  above a fixed ``spike_threshold`` with ``spike_threshold_mode="absolute"``.
* ``control_clip``: TRL's PPO clip with a tighter ε at control-token positions. TRL's clip range is
  a scalar, so the guard adds the difference between ToolGym's clipped surrogate with the control
  ε and with TRL's ε (zero except at control positions), normalised like TRL's ``loss_type``
  (``grpo``, ``bnpo``, ``dr_grpo``, ``dapo``). In TRL's default on-policy setting
  (``num_iterations=1``, ``steps_per_generation == gradient_accumulation_steps``) every ratio is 1
  and no clip is ever active, so the term is exactly 0: it matters only with stale ratios.
* ``offpolicy_expert``: each GRPO group gets the oracle trajectory of its task as an extra member;
  advantages of the whole group (sampled rollouts and expert) are ToolGym's
  (:func:`baselines.train.batch.group_advantages`), and the expert's tokens are trained with
  LUFFY's policy shaping ``-A·π/(π+γ)`` (token mean, weight ``expert_coef``).
* ``hint`` and ``interleaved_sft`` are not offered: a hint changes the sampling prompt, which
  TRL builds from the dataset row (put it in the dataset instead), and ``interleaved_sft`` is a
  separate SFT phase between RL steps (run TRL's ``SFTTrainer`` between ``GRPOTrainer`` runs).

TRL API used (tested with the versions in :data:`TESTED_TRL_VERSIONS`): ``GRPOTrainer`` and
``GRPOConfig``; ``compute_loss`` (public ``Trainer`` override point) to add the terms;
``TrainerCallback`` hooks ``on_step_end`` / ``on_save`` and ``TrainerControl.should_training_stop``
for the detectors; ``add_callback``. Private TRL members, each because no public hook exists:
``_metrics`` (the store ``GRPOTrainer.log`` averages and reports; its reward-function channel
``log_metric`` is only flushed during generation, so metrics computed after it would land one
step late), and ``_generate_and_score_completions`` (only with ``offpolicy_expert``: the one
place a generation batch's advantages can be changed before the loss sees them). ``use_vllm=True``
changes only how completions are sampled; the guard reads the same ``completion_ids`` /
``old_per_token_logps`` / ``importance_sampling_ratio`` tensors, so it works unchanged (not
tested here: no GPU).
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from toolgym.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from baselines.llm.rollout import Episode
    from baselines.llm.tokenizer import ControlTokens
    from baselines.train.batch import TokenBatch
    from toolgym.integrations.trl import TRLAdapter

TESTED_TRL_VERSIONS: tuple[str, ...] = ("1.16.0",)
"""TRL versions the guard's tests ran against (``pyproject.toml`` pins ``trl>=1.16,<2``)."""

TRL_SUPERVISIONS: tuple[str, ...] = ("sft_mix", "control_kl", "control_clip", "spike_penalty", "offpolicy_expert")
"""The supervisory signals offered in TRL (``hint`` and ``interleaved_sft`` are not: see the module docstring)."""

_CLIP_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
_ACTIONS = (None, "stop", "rollback")

# Names of the format's tags as ToolGym's control-token names (baselines.llm.tokenizer), by the
# ActionFormat attribute holding the tag string.
_FORMAT_TAGS: tuple[tuple[str, str], ...] = (
    ("tool_call", "call_open"),
    ("tool_call_end", "call_close"),
    ("answer", "answer_open"),
    ("answer_end", "answer_close"),
    ("tool_response", "response_open"),
    ("tool_response_end", "response_close"),
)
_TURN_MARKERS = ("im_start", "im_end", "eos")


# ------------------------------------------------------------------------------------------------
# Adapter layer over baselines.train: every call into ToolGym's loss terms and diagnostics goes
# through these functions, so a change of their signatures is fixed here only.
# ------------------------------------------------------------------------------------------------
class _ToolGym:
    """Thin calls into ``baselines.train`` (imported lazily: torch is not needed to import this module)."""

    @staticmethod
    def collate(episodes: Sequence[Episode], control: ControlTokens, advantages: Sequence[float] | None = None) -> TokenBatch:
        from baselines.train.batch import collate

        return collate(episodes, control, advantages)

    @staticmethod
    def logits(model: Any, batch: TokenBatch, temperature: float, skip: int = 0) -> torch.Tensor:
        """ToolGym's ``batch_logits`` (``[B, T-1, V]``, temperature applied); with ``skip`` > 0 the
        same without the first ``skip`` positions, computed through the model's ``logits_to_keep``
        (so they are never materialised)."""
        from baselines.train.common import batch_logits

        if skip <= 0:
            return batch_logits(model, batch, temperature)
        keep = batch.input_ids.shape[1] - skip
        try:
            out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep)
        except TypeError:  # a model without logits_to_keep: compute every position, then drop the prompt's
            return batch_logits(model, batch, temperature)[:, skip:]
        return out.logits[:, :-1, :].float() / temperature

    @staticmethod
    def trim(batch: TokenBatch, skip: int) -> TokenBatch:
        """``batch`` without its first ``skip`` target positions (token ids and attention kept whole)."""
        from dataclasses import fields, replace

        if skip <= 0:
            return batch
        per_position = {
            f.name: getattr(batch, f.name)[:, skip:]
            for f in fields(batch)
            if f.name not in ("input_ids", "attention_mask") and getattr(batch, f.name).dim() >= 2
        }
        return replace(batch, **per_position)

    @staticmethod
    def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return F.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)

    @staticmethod
    def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from baselines.train.supervision import masked_mean

        return masked_mean(values, mask)

    @staticmethod
    def control_kl(logits: torch.Tensor, ref_logits: torch.Tensor, batch: TokenBatch, control_ids: torch.Tensor) -> torch.Tensor:
        from baselines.train.supervision import control_kl, control_kl_positions

        ref_argmax = ref_logits.argmax(-1)
        positions = control_kl_positions(batch.targets, ref_argmax, batch.loss_mask, control_ids)
        return control_kl(logits, ref_logits, positions)

    @staticmethod
    def spike_penalty(
        logits: torch.Tensor, batch: TokenBatch, control_ids: torch.Tensor, positions: str,
        threshold: float | torch.Tensor,
    ) -> torch.Tensor:
        from baselines.train.supervision import non_target_mask, spike_penalty

        where = batch.illegal if positions == "illegal" else non_target_mask(batch.targets, control_ids)
        return spike_penalty(logits, control_ids, where, batch.loss_mask, threshold)

    @staticmethod
    def sft_nll(logits: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
        from baselines.train.supervision import sft_nll

        return sft_nll(logits, batch.targets, batch.loss_mask)

    @staticmethod
    def clipped_pg(
        logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, control_mask: torch.Tensor,
        eps_low: float, eps_high: float, control_eps: float | None,
    ) -> torch.Tensor:
        from baselines.train.supervision import clip_ranges, clipped_pg_loss

        low, high = clip_ranges(control_mask, eps_low, eps_high, control_eps)
        loss, _, _ = clipped_pg_loss(logp, old_logp, adv, low, high)
        return loss

    @staticmethod
    def policy_shaping(logp: torch.Tensor, adv: torch.Tensor, gamma: float, clip_eps: float | None) -> torch.Tensor:
        from baselines.train.supervision import policy_shaping_loss

        return policy_shaping_loss(logp, adv, gamma, clip_eps)

    @staticmethod
    def group_advantages(rewards: torch.Tensor, groups: torch.Tensor, eps: float) -> torch.Tensor:
        from baselines.train.batch import group_advantages

        return group_advantages(rewards, groups, eps)

    @staticmethod
    def control_stats(ctrl: torch.Tensor, batch: dict[str, torch.Tensor], control: ControlTokens, prefix: str) -> dict[str, float]:
        from baselines.train.diagnostics import control_prob_stats

        return control_prob_stats(
            ctrl, batch["targets"], batch["mask"], batch["illegal"], batch["after_open"], control.names,
            control.id_list, control.names_by_id[control.eot_id], prefix, target_probs=batch.get("target_p"),
        )

    @staticmethod
    def probe_stats(model: Any, batch: TokenBatch, control: ControlTokens, temperature: float) -> dict[str, float]:
        from baselines.train.common import probe_stats

        return probe_stats(model, batch, SimpleNamespace(control=control), temperature=temperature)

    @staticmethod
    def episode_stats(episodes: Sequence[Episode], prefix: str) -> dict[str, float]:
        from baselines.train.diagnostics import episode_stats

        return episode_stats(episodes, prefix)

    @staticmethod
    def detectors() -> tuple[Any, Any]:
        from baselines.train.diagnostics import CollapseDetector, SpikeDetector

        return SpikeDetector(), CollapseDetector()

    @staticmethod
    def episode(input_ids: list[int], loss_mask: list[int], prompt_len: int, *, task_id: str = "", reward: float = 0.0,
                success: bool = False, is_expert: bool = False, **outcome: Any) -> Episode:
        """A ToolGym episode; ``outcome``: ``actions``, ``turn_infos``, ``stop_reason``."""
        from baselines.llm.rollout import Episode

        return Episode(task_id=task_id, input_ids=input_ids, loss_mask=loss_mask, sample_logprobs=[0.0] * len(input_ids),
                       prompt_len=prompt_len, reward=reward, success=success, is_expert=is_expert, **outcome)


# ------------------------------------------------------------------------------------------------
# Control tokens and token sequences
# ------------------------------------------------------------------------------------------------
def _single_token(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None


def control_tokens(tokenizer: Any, action_format: Any = "hermes") -> ControlTokens:
    """The control tokens of ``tokenizer`` for an env's action format.

    The tags come from the format (``call_open``, ``answer_open``... of a tag format such as
    ``hermes`` or ``xml_call``; plain formats such as ``openai_json`` have none), the turn markers
    from the tokenizer (ChatML's ``<|im_start|>`` / ``<|im_end|>`` and its EOS). A string counts
    only if it encodes to a single token; the others are left out (their probability is not one
    softmax entry).

    Args:
        tokenizer: A Hugging Face tokenizer.
        action_format: A format name registered in :mod:`toolgym.core.formats` or an ``ActionFormat``.

    Raises:
        ValueError: if the tokenizer has no end-of-turn token (neither ``<|im_end|>`` nor EOS).
    """
    from baselines.llm.tokenizer import CONTROL_TOKEN_STRINGS, ControlTokens
    from toolgym.core.formats import get_action_format

    fmt = get_action_format(action_format)
    strings: dict[str, str] = {}
    for name, attr in _FORMAT_TAGS:
        tag = getattr(fmt, attr, None)
        if isinstance(tag, str) and tag:
            strings[name] = tag
    for name in _TURN_MARKERS:
        if name in CONTROL_TOKEN_STRINGS:
            strings[name] = CONTROL_TOKEN_STRINGS[name]
    ids = {name: i for name, s in strings.items() if (i := _single_token(tokenizer, s)) is not None}
    if tokenizer.eos_token_id is not None and int(tokenizer.eos_token_id) not in ids.values():
        ids.setdefault("eos", int(tokenizer.eos_token_id))
    eot = ids.get("im_end", ids.get("eos"))
    if eot is None:
        raise ValueError("The tokenizer has no end-of-turn token: expected '<|im_end|>' or an EOS token.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids.get("eos", eot)
    return ControlTokens(ids=ids, eot_id=int(eot), pad_id=int(pad))


def conversation_ids(
    tokenizer: Any, messages: Sequence[dict[str, Any]], tools: Sequence[Any] | None, eot_id: int
) -> tuple[list[int], list[int], int]:
    """Token ids of a chat conversation, rendered by the tokenizer's chat template piece by piece
    (as TRL builds multi-turn completions: prompt, then each assistant turn and tool suffix).

    Returns:
        ``(input_ids, loss_mask, prompt_len)``: ``loss_mask`` is 1 on each assistant turn's tokens
        up to and including its end-of-turn ``eot_id`` (what the model generates), 0 elsewhere.
    """

    def render(upto: int, generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            list(messages[:upto]), tools=list(tools) if tools else None, tokenize=False,
            add_generation_prompt=generation_prompt,
        )

    first = next((k for k, m in enumerate(messages) if m.get("role") == "assistant"), None)
    if first is None:
        raise ValueError("conversation_ids needs a conversation with at least one assistant message.")
    text = render(first, True)
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    mask = [0] * len(ids)
    prompt_len = len(ids)
    for k in range(first, len(messages)):
        nxt = k + 1 < len(messages) and messages[k + 1].get("role") == "assistant"
        is_assistant = messages[k].get("role") == "assistant"
        full = render(k + 1, nxt and not is_assistant)
        if not full.startswith(text):
            raise ValueError(f"The chat template does not render message {k} as an extension of the previous ones.")
        piece = list(tokenizer.encode(full[len(text):], add_special_tokens=False))
        text = full
        if is_assistant:
            end = piece.index(eot_id) + 1 if eot_id in piece else len(piece)
            mask += [1] * end + [0] * (len(piece) - end)
            # an assistant turn followed by a tool message: its generation prompt comes with that message
        else:
            mask += [0] * len(piece)
        ids += piece
    return ids, mask, prompt_len


def trl_episodes(inputs: dict[str, Any]) -> tuple[list[Episode], list[int]]:
    """ToolGym episodes of a TRL ``GRPOTrainer`` batch, and where each row's completion starts.

    Row ``i`` is its prompt without left padding followed by its completion without right
    padding; the loss mask is TRL's (``completion_mask × tool_mask``: generated tokens, not the
    tool results). ``starts[i]`` is the index, in ToolGym's target-aligned tensors
    (:class:`~baselines.train.batch.TokenBatch`), of the prediction of the first completion token.
    """
    prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
    completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
    tool_mask = inputs.get("tool_mask")
    episodes, starts = [], []
    for i in range(prompt_ids.shape[0]):
        prompt = prompt_ids[i][prompt_mask[i].bool()].tolist()
        n = int(completion_mask[i].sum())
        completion = completion_ids[i, :n].tolist()
        policy = completion_mask[i, :n] if tool_mask is None else completion_mask[i, :n] * tool_mask[i, :n]
        episodes.append(_ToolGym.episode(prompt + completion, [0] * len(prompt) + [int(m) for m in policy.tolist()], len(prompt)))
        starts.append(len(prompt) - 1)
    return episodes, starts


def _scatter(values: torch.Tensor, starts: Sequence[int], width: int, fill: float) -> torch.Tensor:
    """``[B, C]`` completion-aligned values placed at ToolGym's target positions ``[B, width]``."""
    import torch

    out = torch.full((values.shape[0], width), fill, dtype=values.dtype, device=values.device)
    for i, s in enumerate(starts):
        n = min(values.shape[1], width - s)
        out[i, s : s + n] = values[i, :n]
    return out


# ------------------------------------------------------------------------------------------------
# The guard
# ------------------------------------------------------------------------------------------------
@dataclass
class GuardConfig:
    """Weights and switches of the guard (field names as in ToolGym's ``SupervisionConfig``)."""

    supervision: list[str] = field(default_factory=list)
    """Enabled signals, any of :data:`TRL_SUPERVISIONS`; empty = diagnostics only."""
    sft_mix_coef: float = 0.3
    sft_mix_batch: int = 4
    control_kl_coef: float = 0.1
    control_clip_eps: float = 0.05
    spike_coef: float = 1.0
    spike_threshold_mode: str = "ref_relative"
    """``"ref_relative"`` (as ToolGym's trainer: τ = ``spike_ref_factor`` × the reference's p(c) at
    the same position) or ``"absolute"`` (τ = ``spike_threshold``)."""
    spike_ref_factor: float = 5.0
    spike_threshold: float = 0.05
    spike_positions: str = "illegal"
    expert_gamma: float = 0.1
    expert_clip: bool = False
    expert_coef: float = 1.0
    adv_eps: float = 1e-6
    probe_size: int = 8
    """Oracle trajectories in the teacher-forced probe (0 = no probe diagnostics)."""
    probe_every: int = 1
    onpolicy_diagnostics: bool = True
    on_spike: str | None = None
    """``None``, ``"stop"`` or ``"rollback"`` (to the last checkpoint saved before the spike, then stop)."""
    on_collapse: str | None = None
    action_format: str | None = None
    """The action format whose tags are the control tokens; ``None``: the env's."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.supervision if s not in TRL_SUPERVISIONS]
        if unknown:
            raise ConfigError(f"Unknown or unsupported supervision {unknown} in TRL; expected any of {list(TRL_SUPERVISIONS)}.")
        if self.spike_threshold_mode not in ("ref_relative", "absolute"):
            raise ConfigError(
                f"spike_threshold_mode must be 'ref_relative' or 'absolute', got {self.spike_threshold_mode!r}."
            )
        if self.spike_ref_factor < 1:
            raise ConfigError(f"spike_ref_factor must be ≥ 1, got {self.spike_ref_factor!r}.")
        if self.spike_positions not in ("illegal", "non_target"):
            raise ConfigError(f"spike_positions must be 'illegal' or 'non_target', got {self.spike_positions!r}.")
        for name in ("on_spike", "on_collapse"):
            if getattr(self, name) not in _ACTIONS:
                raise ConfigError(f"{name} must be None, 'stop' or 'rollback', got {getattr(self, name)!r}.")
        if not 0 < self.control_clip_eps < 1:
            raise ConfigError(f"control_clip_eps must be in (0, 1), got {self.control_clip_eps!r}.")
        if self.expert_gamma <= 0:
            raise ConfigError(f"expert_gamma must be > 0, got {self.expert_gamma!r}.")
        for name in ("sft_mix_coef", "control_kl_coef", "spike_coef", "expert_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0, got {getattr(self, name)!r}.")
        if self.sft_mix_batch < 1 or self.probe_size < 0 or self.probe_every < 1:
            raise ConfigError("sft_mix_batch and probe_every must be ≥ 1 and probe_size ≥ 0.")

    def enabled(self, name: str) -> bool:
        """Whether the signal ``name`` is on."""
        return name in self.supervision


class CollapseGuard:
    """ToolGym's collapse diagnostics and supervisory signals for one TRL run on a ToolGym env.

    Args:
        adapter: The run's :class:`~toolgym.integrations.trl.TRLAdapter` (env id, tools, episodes).
        config: A :class:`GuardConfig`; or give its fields as keyword arguments.
        **overrides: :class:`GuardConfig` fields.

    Attributes:
        control: The control tokens (set by :meth:`attach`).
        history: Every step's guard metrics (main process and others alike).
        fired: ``"spike"`` or ``"collapse"`` once a detector fired with an action, else ``None``.
        rolled_back_to: The checkpoint restored by ``"rollback"``, if any.
    """

    def __init__(self, adapter: TRLAdapter, config: GuardConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else GuardConfig()
        self.config = GuardConfig(**{**base.__dict__, **overrides}) if overrides else base
        self.adapter = adapter
        self.control: ControlTokens | None = None
        self.trainer: Any = None
        self.spikes, self.collapse = _ToolGym.detectors()
        self.history: list[dict[str, float]] = []
        self.fired: str | None = None
        self.rolled_back_to: Path | None = None
        self._conversations: dict[str, list[dict[str, Any]]] | None = None
        self._expert_rewards: dict[str, float] = {}
        self._episodes_seen = 0
        self._probe: TokenBatch | None = None
        self._ref_model: Any = None
        self._rng = random.Random(0)

    # -------------------------------------------------------------------------------- binding
    def attach(self, trainer: Any) -> CollapseGuard:
        """Bind to a ``GRPOTrainer`` (control tokens from its tokenizer, the probe, the reference
        for ``control_kl``) and add the diagnostics callback. Returns ``self``."""
        cfg = self.config
        if self.trainer is not None:
            raise ConfigError("This CollapseGuard is already attached to a trainer; make one guard per trainer.")
        args = trainer.args
        if cfg.supervision and not isinstance(trainer, __getattr__("GuardedGRPOTrainer")):
            raise ConfigError(
                f"The supervision terms {cfg.supervision} need GuardedGRPOTrainer; a plain GRPOTrainer only gets the "
                "diagnostics (CollapseGuard(adapter).attach(trainer))."
            )
        if cfg.enabled("control_clip"):
            if args.loss_type not in _CLIP_LOSS_TYPES or args.importance_sampling_level != "token" or args.delta is not None:
                raise ConfigError(
                    f"control_clip needs loss_type in {list(_CLIP_LOSS_TYPES)}, importance_sampling_level='token' and "
                    f"delta=None (got {args.loss_type!r}, {args.importance_sampling_level!r}, {args.delta!r})."
                )
            if args.top_entropy_quantile < 1.0 or args.off_policy_mask_threshold is not None:
                raise ConfigError("control_clip cannot be combined with top_entropy_quantile < 1 or off_policy_mask_threshold.")
        if cfg.enabled("offpolicy_expert"):
            funcs = list(getattr(trainer, "reward_funcs", []))
            if len(funcs) != 1 or getattr(funcs[0], "__func__", None) is not type(self.adapter).toolgym_reward:
                raise ConfigError("offpolicy_expert needs the adapter's toolgym_reward as the only reward function.")
        import trl

        if trl.__version__ not in TESTED_TRL_VERSIONS:
            warnings.warn(
                f"CollapseGuard was tested with TRL {', '.join(TESTED_TRL_VERSIONS)}, not {trl.__version__}; it uses "
                "GRPOTrainer._metrics (and _generate_and_score_completions for offpolicy_expert), which may have changed.",
                stacklevel=2,
            )
        self.trainer = trainer
        tokenizer = trainer.processing_class
        fmt = cfg.action_format or self._env_format()
        self.control = control_tokens(tokenizer, fmt)
        self._rng = random.Random(int(args.seed) * 1_000_003 + trainer.accelerator.process_index)
        if cfg.probe_size:
            self._probe = self._oracle_batch(self._task_ids()[: cfg.probe_size])
        if cfg.enabled("control_kl") and getattr(trainer, "ref_model", None) is None:
            model = trainer.accelerator.unwrap_model(trainer.model)
            ref = copy.deepcopy(model).eval().requires_grad_(False)
            # TRL patches the policy's forward per instance (fused LM head) with a closure over the
            # original model; the copy must use its own class forward, not that closure.
            ref.__dict__.pop("forward", None)
            self._ref_model = ref
        trainer.add_callback(__getattr__("CollapseGuardCallback")(self))
        return self

    def _env_format(self) -> Any:
        import gymnasium as gym

        env = gym.make(self.adapter.env_id, **self.adapter.env_kwargs)
        try:
            return env.unwrapped.format
        finally:
            env.close()

    def _task_ids(self) -> list[str]:
        return list(self.adapter._task_ids)

    def _oracle_conversation(self, task_id: str) -> list[dict[str, Any]]:
        if self._conversations is None:
            from toolgym.integrations._session import oracle_conversations

            ids = self._task_ids()
            convs = oracle_conversations(self.adapter.env_id, len(ids), **self.adapter.env_kwargs)
            self._conversations = dict(zip(ids, convs, strict=True))
        messages = self._conversations[task_id]
        if self.adapter.system_prompt:
            messages = [{"role": "system", "content": self.adapter.system_prompt}, *messages]
        return messages

    def oracle_episode(self, task_id: str, reward: float = 1.0) -> Episode:
        """The env oracle's trajectory on ``task_id``, tokenized with the trainer's chat template."""
        assert self.control is not None and self.trainer is not None
        ids, mask, prompt_len = conversation_ids(
            self.trainer.processing_class, self._oracle_conversation(task_id), self.adapter.tools, self.control.eot_id
        )
        return _ToolGym.episode(ids, mask, prompt_len, task_id=task_id, reward=reward, success=reward > 0, is_expert=True)

    def expert_reward(self, task_id: str) -> float:
        """The ToolGym reward of the oracle's trajectory on ``task_id``, replayed through the
        adapter's environment (so the env's rewards and penalties apply as to the rollouts)."""
        if task_id not in self._expert_rewards:
            env = self.adapter.environment_factory()
            env.reset(seed=0, task_id=task_id)  # the seed oracle_conversations plays with
            messages = self._oracle_conversation(task_id)
            for message in messages:
                for call in message.get("tool_calls") or []:
                    getattr(env, call["function"]["name"])(**call["function"]["arguments"])
            last = messages[-1]
            final = last.get("content") if last.get("role") == "assistant" and not last.get("tool_calls") else None
            self._expert_rewards[task_id] = float(env._finish(final).reward)
        return self._expert_rewards[task_id]

    def _oracle_batch(self, task_ids: Sequence[str], advantages: Sequence[float] | None = None) -> TokenBatch:
        assert self.control is not None
        return _ToolGym.collate([self.oracle_episode(t) for t in task_ids], self.control, advantages)

    @property
    def temperature(self) -> float:
        """The sampling temperature the trainer's logits are divided by."""
        return float(self.trainer.args.temperature)

    @property
    def control_ids(self) -> torch.Tensor:
        """``[C]`` control-token ids on the trainer's device."""
        import torch

        assert self.control is not None
        return torch.as_tensor(self.control.id_list, device=self.trainer.accelerator.device)

    # -------------------------------------------------------------------------------- diagnostics
    def probe_metrics(self, model: Any) -> dict[str, float]:
        """Teacher-forced control-token statistics on the oracle probe (``diag/probe/…``)."""
        if self._probe is None or self.control is None:
            return {}
        return _ToolGym.probe_stats(model, self._probe.to(next(model.parameters()).device), self.control, self.temperature)

    def onpolicy_metrics(self, logits: torch.Tensor, batch: TokenBatch) -> dict[str, float]:
        """Control-token statistics of a batch of completions (``diag/onpolicy/…``), over every
        process's rows (targets = the sampled tokens)."""
        import torch
        import torch.nn.functional as F

        assert self.control is not None
        with torch.no_grad():
            probs = F.softmax(logits.detach().float(), dim=-1)
            parts = {
                "ctrl": probs[..., self.control_ids],
                "targets": batch.targets,
                "mask": batch.loss_mask,
                "illegal": batch.illegal,
                "after_open": batch.after_open,
            }
            parts = self._gather_padded(parts)
            stats = _ToolGym.control_stats(parts["ctrl"], parts, self.control, "diag/onpolicy")
            for k, name in enumerate(self.control.names):
                hit = (parts["mask"] > 0) & (parts["targets"] == self.control.id_list[k])
                stats[f"diag/onpolicy/sampled_max/{name}"] = float(parts["ctrl"][..., k][hit].max()) if bool(hit.any()) else math.nan
        return stats

    def _gather_padded(self, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        accelerator = self.trainer.accelerator if self.trainer is not None else None
        if accelerator is None or accelerator.num_processes == 1:
            return parts
        out = {}
        for key, value in parts.items():  # rows differ in width across processes: pad with 0 (not in mask)
            padded = accelerator.pad_across_processes(value.float(), dim=1)
            out[key] = accelerator.gather(padded).to(value.dtype)
        return out

    def error_metrics(self) -> dict[str, float]:
        """ToolGym's outcome metrics (:func:`baselines.train.diagnostics.episode_stats`) of the
        episodes scored since the last call, over every process: ``toolgym/format_error_rate``
        (episodes with an invalid action) and ``toolgym/errors/<code>`` (share of env steps with
        that error code, every code present)."""
        records = self.adapter.episodes[self._episodes_seen :]
        self._episodes_seen = len(self.adapter.episodes)
        rows = [(r.actions, [dict(error=s.info.get("error")) for s in r.steps], r.reward, r.success, r.stop_reason)
                for r in records]
        accelerator = self.trainer.accelerator if self.trainer is not None else None
        if accelerator is not None and accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            rows = gather_object(rows)
        stats = _ToolGym.episode_stats([
            _ToolGym.episode([], [], 0, reward=reward, success=success, actions=actions, turn_infos=infos, stop_reason=stop)
            for actions, infos, reward, success, stop in rows
        ], "toolgym")
        return {k: v for k, v in stats.items() if k == "toolgym/format_error_rate" or k.startswith("toolgym/errors/")}

    def detect(self, step: int, metrics: dict[str, float]) -> dict[str, float]:
        """Feed the spike detector (probe ``illegal_total`` and ``after_open_eot``) and the collapse
        detector (``toolgym/success``); returns their ``diag/…`` outputs."""
        out: dict[str, float] = {}
        if "diag/probe/illegal_total" in metrics:
            out.update(self.spikes.update(step, metrics["diag/probe/illegal_total"], metrics.get("diag/probe/after_open_eot", math.nan)))
        if "toolgym/success" in metrics and not math.isnan(metrics["toolgym/success"]):
            out.update(self.collapse.update(step, metrics["toolgym/success"]))
        return out

    # -------------------------------------------------------------------------------- loss terms
    def loss_terms(self, model: Any, inputs: dict[str, Any], *, training: bool = True) -> tuple[torch.Tensor | None, dict[str, float]]:
        """The enabled supervision terms on one TRL micro-batch, weighted; and their statistics.

        Returns ``(loss, stats)``: ``loss`` (``None`` if no term is on) is the sum of
        ``coef × term``; each term is a mean over this micro-batch, divided by the gradient
        accumulation steps (TRL scales its own loss the same way). ``stats`` holds each unweighted
        term (``guard/<name>``) and, if on, the on-policy diagnostics.
        """
        import torch

        cfg, trainer = self.config, self.trainer
        ids = self.control_ids
        need_policy = any(cfg.enabled(s) for s in ("control_kl", "spike_penalty", "control_clip"))
        need_diag = cfg.onpolicy_diagnostics and training
        stats: dict[str, float] = {}
        terms: list[torch.Tensor] = []
        if need_policy or need_diag:
            episodes, starts = trl_episodes(inputs)
            full = _ToolGym.collate(episodes, self.control).to(ids.device)
            # only the positions from the earliest completion on carry policy tokens: the logits of the
            # prompts (often long tool lists) are never materialised, and every term is unchanged
            skip = min(starts)
            batch = _ToolGym.trim(full, skip)
            starts = [s - skip for s in starts]
            with torch.set_grad_enabled(need_policy and torch.is_grad_enabled()):
                logits = _ToolGym.logits(model, full, self.temperature, skip)
            if need_diag:
                stats.update(self.onpolicy_metrics(logits, batch))
            ref_logits = None
            spike_ref = cfg.enabled("spike_penalty") and cfg.spike_threshold_mode == "ref_relative"
            if cfg.enabled("control_kl") or spike_ref:
                with torch.no_grad():
                    ref_logits = _ToolGym.logits(self.ref_model, full, self.temperature, skip)
            if cfg.enabled("control_kl"):
                term = _ToolGym.control_kl(logits, ref_logits, batch, ids)
                terms.append(cfg.control_kl_coef * term)
                stats["guard/control_kl"] = float(term.detach())
            if cfg.enabled("spike_penalty"):
                threshold = (
                    cfg.spike_ref_factor * torch.softmax(ref_logits, -1)[..., ids] if spike_ref else cfg.spike_threshold
                )
                term = _ToolGym.spike_penalty(logits, batch, ids, cfg.spike_positions, threshold)
                terms.append(cfg.spike_coef * term)
                stats["guard/spike_penalty"] = float(term.detach())
            if cfg.enabled("control_clip"):
                term = self.control_clip_correction(logits, batch, starts, inputs)
                terms.append(term)
                stats["guard/control_clip"] = float(term.detach())
        if cfg.enabled("sft_mix"):
            tasks = [self._rng.choice(self._task_ids()) for _ in range(cfg.sft_mix_batch)]
            sft_batch = self._oracle_batch(tasks).to(ids.device)
            term = _ToolGym.sft_nll(_ToolGym.logits(model, sft_batch, self.temperature), sft_batch)
            terms.append(cfg.sft_mix_coef * term)
            stats["guard/sft_mix_nll"] = float(term.detach())
        if cfg.enabled("offpolicy_expert") and training:
            experts = trainer._guard_next_experts()
            if experts is not None:
                term = self.expert_term(model, experts)
                terms.append(cfg.expert_coef * term)
                stats["guard/offpolicy_expert"] = float(term.detach())
        if not terms:
            return None, stats
        scale = float(getattr(trainer, "current_gradient_accumulation_steps", 1) or 1) if training else 1.0
        return sum(terms) / scale, stats

    @property
    def ref_model(self) -> Any:
        """The reference policy of ``control_kl``: TRL's ``ref_model`` if it has one, else the guard's frozen copy."""
        ref = getattr(self.trainer, "ref_model", None)
        return ref if ref is not None else self._ref_model

    def control_clip_correction(
        self, logits: torch.Tensor, batch: TokenBatch, starts: Sequence[int], inputs: dict[str, Any]
    ) -> torch.Tensor:
        """What turns TRL's clipped surrogate into ToolGym's ``control_clip`` one: the per-token
        difference between ToolGym's clipped loss with the control ε and with TRL's ε (0 except at
        control positions), aggregated with TRL's ``loss_type`` normalisation (before the gradient
        accumulation scaling, which :meth:`loss_terms` applies)."""
        trainer, args = self.trainer, self.trainer.args
        width = batch.targets.shape[1]
        logp = _ToolGym.token_logprobs(logits, batch.targets)
        old = inputs.get("old_per_token_logps")
        old_logp = logp.detach() if old is None else _scatter(old, starts, width, 0.0)
        adv = inputs["advantages"]
        adv = adv[:, None].expand_as(logp) if adv.dim() == 1 else _scatter(adv, starts, width, 0.0)
        eps_low, eps_high = float(trainer.epsilon_low), float(trainer.epsilon_high)
        tight = _ToolGym.clipped_pg(logp, old_logp, adv, batch.control_mask, eps_low, eps_high, self.config.control_clip_eps)
        base = _ToolGym.clipped_pg(logp, old_logp, adv, batch.control_mask, eps_low, eps_high, None)
        diff = tight - base
        if "importance_sampling_ratio" in inputs:
            ratio = inputs["importance_sampling_ratio"]
            diff = diff * (_scatter(ratio, starts, width, 1.0) if ratio.shape[1] > 1 else ratio)
        mask = batch.loss_mask
        if args.loss_type == "grpo":
            return ((diff * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        if args.loss_type == "bnpo":
            return (diff * mask).sum() / mask.sum().clamp(min=1.0)
        if args.loss_type == "dr_grpo":
            return (diff * mask).sum() / (diff.shape[0] * args.max_completion_length)
        # dapo: TRL divides by the generation batch's token count per process and accumulation window
        normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / trainer.accelerator.num_processes
        normalizer = normalizer / args.steps_per_generation  # × accumulation steps, undone by loss_terms
        return (diff * mask).sum() / normalizer

    def expert_term(self, model: Any, experts: TokenBatch) -> torch.Tensor:
        """LUFFY policy shaping on expert episodes: token mean of ``-A·π/(π+γ)``."""
        cfg = self.config
        logits = _ToolGym.logits(model, experts, self.temperature)
        logp = _ToolGym.token_logprobs(logits, experts.targets)
        adv = experts.advantages[:, None].expand_as(logp)
        clip = float(self.trainer.epsilon_low) if cfg.expert_clip else None
        return _ToolGym.masked_mean(_ToolGym.policy_shaping(logp, adv, cfg.expert_gamma, clip), experts.loss_mask)

    # -------------------------------------------------------------------------------- actions
    def rollback(self, model: Any, checkpoints: Sequence[tuple[int, Path]], before: int) -> Path | None:
        """Load the weights of the last checkpoint saved before step ``before`` into ``model``."""
        good = [path for step, path in checkpoints if step < before and path.is_dir()]
        if not good:
            warnings.warn(f"No checkpoint saved before step {before}: nothing to roll back to; stopping.", stacklevel=2)
            return None
        path = good[-1]
        from safetensors.torch import load_file

        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{path} has no *.safetensors weights to roll back to.")
        state: dict[str, Any] = {}
        for file in files:
            state.update(load_file(str(file), device=str(next(model.parameters()).device)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or {})
        left = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
        if left or unexpected:
            raise RuntimeError(f"Rollback from {path}: missing {left[:5]}, unexpected {list(unexpected)[:5]}.")
        self.rolled_back_to = path
        return path


# ------------------------------------------------------------------------------------------------
# TRL side
# ------------------------------------------------------------------------------------------------
def _make_callback_class() -> type:
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    class _CollapseGuardCallback(TrainerCallback):
        """Logs the guard's diagnostics into TRL's metrics each step and acts on its detectors.

        At ``on_step_end`` (after the optimiser step, before TRL logs): the probe diagnostics
        every ``probe_every`` steps, the error-code rates of the step's episodes, the spike
        detector on the probe's ``illegal_total`` / ``after_open_eot`` and the collapse detector on
        ``toolgym/success``. If a detector fires and its action is ``"stop"`` or ``"rollback"``,
        training stops (``"rollback"`` first restores the last checkpoint saved before the step).
        """

        def __init__(self, guard: CollapseGuard) -> None:
            self.guard = guard
            self.checkpoints: list[tuple[int, Path]] = []

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            """Remember the checkpoint just written (a rollback target while no detector has fired)."""
            path = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            self.checkpoints.append((int(state.global_step), path))
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
            """Compute this step's guard metrics into TRL's metrics, feed the detectors, act on them."""
            guard, trainer = self.guard, self.guard.trainer
            step = int(state.global_step)
            metrics: dict[str, float] = {}
            if (step - 1) % guard.config.probe_every == 0:
                metrics.update(guard.probe_metrics(trainer.accelerator.unwrap_model(model if model is not None else trainer.model)))
            metrics.update(guard.error_metrics())
            success = trainer._metrics["train"].get("toolgym/success")
            if success:
                metrics["toolgym/success"] = float(success[-1])
            metrics.update(guard.detect(step, metrics))
            metrics.pop("toolgym/success", None)  # already logged by the adapter's reward function
            for key, value in metrics.items():
                trainer._metrics["train"][key].append(float(value))
            guard.history.append({"step": float(step), **metrics})
            cfg = guard.config
            fired = None
            if cfg.on_spike and (metrics.get("diag/spike_ratio", 0.0) > 0 or metrics.get("diag/spike_z", 0.0) > 0):
                fired, action = "spike", cfg.on_spike
            elif cfg.on_collapse and metrics.get("diag/collapse", 0.0) > 0:
                fired, action = "collapse", cfg.on_collapse
            if fired is not None and guard.fired is None:
                guard.fired = fired
                if action == "rollback":
                    guard.rollback(trainer.accelerator.unwrap_model(trainer.model), self.checkpoints, step)
                control.should_training_stop = True
            return control

    return _CollapseGuardCallback


def _make_trainer_class() -> type:
    import torch
    from trl import GRPOTrainer

    class _GuardedGRPOTrainer(GRPOTrainer):
        """``GRPOTrainer`` with a :class:`CollapseGuard`: its supervision terms added to the loss
        (through the public ``compute_loss``), its on-policy diagnostics logged with TRL's metrics.

        Args:
            guard: The guard (its config names the terms).
            *args, **kwargs: ``GRPOTrainer``'s arguments, unchanged.
        """

        def __init__(self, *args: Any, guard: CollapseGuard, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.guard = guard
            self._guard_experts: list[TokenBatch] = []
            guard.attach(self)

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            """TRL's GRPO loss plus the guard's weighted terms."""
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            training = self.model.training
            extra, stats = self.guard.loss_terms(model, inputs, training=training)
            mode = "train" if training else "eval"
            for key, value in stats.items():
                self._metrics[mode][key].append(value)
            return loss if extra is None else loss + extra

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            # Private TRL method, overridden only for offpolicy_expert: the one place where a generation
            # batch's advantages can be replaced before the loss uses them (no public hook exists).
            if not self.guard.config.enabled("offpolicy_expert") or not self.model.training:
                return super()._generate_and_score_completions(inputs)
            adapter = self.guard.adapter
            seen = len(adapter.episodes)
            output = super()._generate_and_score_completions(inputs)
            records = adapter.episodes[seen:]
            if len(records) != len(inputs):
                raise RuntimeError(f"offpolicy_expert: expected {len(inputs)} scored episodes, the adapter recorded {len(records)}.")
            self._guard_set_experts(inputs, records, output)
            return output

        def _guard_set_experts(self, inputs: list[dict[str, Any]], records: list[Any], output: dict[str, Any]) -> None:
            """Expert replay: one oracle episode per group, ToolGym advantages for the whole group."""
            guard, acc = self.guard, self.accelerator
            device = acc.device
            g = self.num_generations
            local = torch.tensor([r.reward for r in records], dtype=torch.float32, device=device)
            rewards = acc.gather(local).cpu()
            n_local, rank = len(records), acc.process_index
            offset = rank * n_local
            groups = torch.arange(len(rewards)) // g
            n_groups = int(groups.max()) + 1
            from accelerate.utils import gather_object

            tasks = gather_object([str(row["task_id"]) for row in inputs]) if acc.num_processes > 1 else [
                str(row["task_id"]) for row in inputs]
            expert_rewards = torch.tensor([guard.expert_reward(tasks[k * g]) for k in range(n_groups)])
            all_rewards = torch.cat([rewards, expert_rewards])
            all_groups = torch.cat([groups, torch.arange(n_groups)])
            adv = _ToolGym.group_advantages(all_rewards, all_groups, guard.config.adv_eps)
            output["advantages"] = adv[offset : offset + n_local].to(output["advantages"].dtype).to(device)
            # the expert of a group is trained on the rank holding the group's first rollout
            experts, expert_adv = [], []
            for i, row in enumerate(inputs):
                global_i = offset + i
                if global_i % g == 0:
                    group = global_i // g
                    experts.append(guard.oracle_episode(str(row["task_id"]), float(expert_rewards[group])))
                    expert_adv.append(float(adv[len(rewards) + group]))
            parts = max(1, int(self.args.steps_per_generation))
            self._guard_experts = [
                _ToolGym.collate(experts[k::parts], guard.control, expert_adv[k::parts]).to(device)
                for k in range(parts) if experts[k::parts]
            ]
            self._guard_expert_calls = 0

        def _guard_next_experts(self) -> TokenBatch | None:
            """The expert episodes of this micro-batch (the generation's experts split like its rows)."""
            if not self._guard_experts:
                return None
            k = self._guard_expert_calls % int(self.args.steps_per_generation)
            self._guard_expert_calls += 1
            return self._guard_experts[k] if k < len(self._guard_experts) else None

    return _GuardedGRPOTrainer


_LAZY = {"GuardedGRPOTrainer": _make_trainer_class, "CollapseGuardCallback": _make_callback_class}
_CACHE: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    """``GuardedGRPOTrainer`` and ``CollapseGuardCallback`` are built on first access (they
    subclass TRL / transformers classes, which are imported only then)."""
    if name in _LAZY:
        if name not in _CACHE:
            _CACHE[name] = _LAZY[name]()
            _CACHE[name].__name__ = _CACHE[name].__qualname__ = name
            _CACHE[name].__module__ = __name__
        return _CACHE[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TESTED_TRL_VERSIONS",
    "TRL_SUPERVISIONS",
    "CollapseGuard",
    "CollapseGuardCallback",  # noqa: F822 - built lazily by __getattr__
    "GuardConfig",
    "GuardedGRPOTrainer",  # noqa: F822
    "control_tokens",
    "conversation_ids",
    "trl_episodes",
]
