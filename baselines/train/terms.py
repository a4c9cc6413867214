"""The supervision terms, one unit each: name, summary, config fields, logged statistics with how
each is normalised across processes, and the term's effect on the trainer (its loss, its change to
the advantages, the clip ranges or the policy-gradient term, its rollouts, its callbacks).

This module is the one list the rest derives from: ``config.SUPERVISIONS`` (what
``--supervision`` accepts and its help), the collapse study's arms
(``benchmarks.collapse.settings.ARMS``), the DDP reduction of ``rl_loss`` statistics
(``multiprocess.TOKEN_STATS`` …) and what :func:`baselines.train.rl.rl_loss` and
:class:`~baselines.train.rl.RLTrainer` do for each enabled term. Adding a term means adding one
:class:`Term` subclass here (the pure tensor maths it needs goes in :mod:`baselines.train.supervision`)
and its test; a test checks that every ``SupervisionConfig`` field and every statistic ``rl_loss``
logs is declared by exactly one term.

Hooks of a term (each a no-op by default; the trainer calls them for enabled terms only, in the
order of :data:`TERMS`):

* :meth:`Term.advantages` -- change the batch's advantages (``permuted_advantages``);
* :meth:`Term.clip_ranges` -- change the per-token PPO clip ranges (``control_clip``);
* :meth:`Term.shape_pg` -- change the per-token policy-gradient term (``offpolicy_expert``,
  ``tis``, ``mis``);
* :attr:`Term.trains_pg` -- ``False`` switches the policy-gradient term off (``sft_only``);
* :meth:`Term.loss` -- an added loss and its statistics (``control_kl``, ``spike_penalty``,
  ``sft_mix``, ``sft_only``); :attr:`Term.needs_ref_logits` / :attr:`Term.needs_sft_batch` ask
  the trainer for the reference's logits / an SFT batch;
* :meth:`Term.hint` (with :attr:`Term.gives_hints`) and :attr:`Term.expert_in_group` -- rollouts
  (``hint``, ``offpolicy_expert``);
* :meth:`Term.callbacks` -- trainer callbacks (``interleaved_sft``'s SFT phases).

Normalisations of a statistic (how ``Distributed.reduce_stats`` combines ranks):

* ``tokens``: a mean over the loss mask (weighted by each rank's token share);
* ``on_policy``: a mean over the sampled (non-expert) tokens;
* ``control_kl``: a mean over the ``control_kl`` positions;
* ``max``: a maximum;
* ``plain``: already a share of the global value, or identical on every rank (plain mean).

Importing this module does not import torch (the config and CLI use it); the hooks import it when
they run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from baselines.train.callbacks import Callback
    from baselines.train.config import RLConfig, SupervisionConfig
    from baselines.train.rl import LossContext, PreparedBatch, RLTrainer

NORMALISATIONS: tuple[str, ...] = ("tokens", "on_policy", "control_kl", "max", "plain")


@dataclass(frozen=True)
class Term:
    """One supervision term (or the base objective, ``name="base"``); subclasses override hooks.

    Attributes:
        name: The ``--supervision`` name.
        summary: One line for help texts.
        config_fields: Its ``SupervisionConfig`` fields.
        stats: Statistic name (as returned by ``rl_loss``) -> normalisation (see the module docstring).
        control: A control arm rather than a supervisory signal.
    """

    name: str
    summary: str
    config_fields: tuple[str, ...] = ()
    stats: dict[str, str] = field(default_factory=dict)
    control: bool = False

    trains_pg = True
    """Whether the policy-gradient term is trained (``sft_only`` computes and logs it, trains 0)."""
    needs_ref_logits = False
    """Whether :meth:`loss` needs the reference model's logits of the minibatch."""
    needs_sft_batch = False
    """Whether :meth:`loss` needs an SFT batch (expert / own successful episodes) per update."""
    expert_in_group = False
    """Whether one slot of each rollout group is the expert's trajectory instead of a sample."""
    gives_hints = False
    """Whether :meth:`hint` may return a hint (the trainer then looks up the task's expert trajectory)."""

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.stats.items() if v not in NORMALISATIONS}
        if bad:
            raise ValueError(f"Term {self.name!r}: unknown normalisation {bad}; expected one of {list(NORMALISATIONS)}.")

    def advantages(self, adv: torch.Tensor, trainer: RLTrainer) -> torch.Tensor:
        """The batch's advantages ``[N]`` (one per episode) after this term."""
        return adv

    def clip_ranges(
        self, low: torch.Tensor, high: torch.Tensor, control_mask: torch.Tensor, sup: SupervisionConfig
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token PPO clip ranges ``(ε_low, ε_high)`` (``[B, T]``) after this term."""
        return low, high

    def shape_pg(
        self, pg: torch.Tensor, logp: torch.Tensor, adv: torch.Tensor, prepared: PreparedBatch, cfg: RLConfig
    ) -> torch.Tensor:
        """The per-token policy-gradient term ``[B, T]`` after this term (``logp``: the current
        log-probs, ``adv``: the advantages broadcast to tokens, ``prepared``: the minibatch with its
        old / sampler log-probs and row flags)."""
        return pg

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """This term's addition to the minibatch loss (weighted and scaled; ``None`` for none) and
        its statistics (detached, names declared in :attr:`stats`)."""
        return None, {}

    def hint(self, trajectory: Any, index: int, sup: SupervisionConfig) -> str | None:
        """The hint for the ``index``-th sampled episode of a group on ``trajectory``'s task."""
        return None

    def callbacks(self, trainer: RLTrainer) -> list[Callback]:
        """Trainer callbacks this term needs (see :mod:`baselines.train.callbacks`)."""
        return []


BASE = Term(
    "base",
    "token-level PPO-clip on GRPO advantages, optional k3-KL and entropy terms",
    stats={"pg_loss": "tokens", "kl_loss": "tokens", "entropy_bonus": "tokens", "entropy": "tokens",
           "clip_frac": "on_policy", "approx_kl": "on_policy", "ratio_max": "max", "loss": "plain",
           "grad_norm": "plain", "grad_norm_control": "plain"},
)

class OffpolicyExpert(Term):
    """One expert trajectory per group, trained with LUFFY policy shaping ``π/(π+γ)``: the expert's
    tokens were not sampled from π, so the importance ratio is replaced."""

    expert_in_group = True

    def shape_pg(
        self, pg: torch.Tensor, logp: torch.Tensor, adv: torch.Tensor, prepared: PreparedBatch, cfg: RLConfig
    ) -> torch.Tensor:
        """Expert rows: ``-A·π/(π+γ)`` instead of the clipped ratio."""
        import torch

        from baselines.train.supervision import policy_shaping_loss

        sup = cfg.supervision
        shaped = policy_shaping_loss(logp, adv, sup.expert_gamma, cfg.clip_eps if sup.expert_clip else None)
        return torch.where(prepared.batch.is_expert[:, None], shaped, pg)


class Hint(Term):
    """Some rollouts of each group sampled with a hint in the prompt (never in the loss)."""

    gives_hints = True

    def hint(self, trajectory: Any, index: int, sup: SupervisionConfig) -> str | None:
        """The task's hint for the first ``hint_per_group`` episodes of a group."""
        return trajectory.hint(sup.hint_style) if index < sup.hint_per_group else None


class InterleavedSFTTerm(Term):
    """SFT phases on the expert trajectories of failed tasks between RL steps (a callback)."""

    def callbacks(self, trainer: RLTrainer) -> list[Callback]:
        """The SFT-phase callback."""
        from baselines.train.callbacks import InterleavedSFT

        return [InterleavedSFT(trainer)]


class SFTMix(Term):
    """The NLL of expert (and/or own successful) episodes added to every update."""

    needs_sft_batch = True

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """``sft_mix_coef`` × the token-mean NLL of the update's SFT batch (at its
        ``sft_mix_positions``)."""
        if ctx.sft_logits is None or ctx.sft_batch is None:
            return None, {}
        from baselines.train.supervision import sft_nll

        sup, b = ctx.cfg.supervision, ctx.sft_batch
        nll = sft_nll(ctx.sft_logits, b.targets, b.loss_mask, b.control_mask, sup.sft_mix_positions)
        return sup.sft_mix_coef * nll, {"sft_mix_nll": nll.detach()}


class ControlKL(Term):
    """Full-vocabulary KL to the reference at control-token positions."""

    needs_ref_logits = True

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """``control_kl_coef`` × the KL at the configured positions and direction."""
        from baselines.train.supervision import control_kl, control_kl_positions

        if ctx.ref_logits is None:
            raise ValueError("control_kl needs the reference logits of the minibatch.")
        sup, b = ctx.cfg.supervision, ctx.prepared.batch
        positions = control_kl_positions(
            b.targets, ctx.prepared.ref_argmax, b.loss_mask, ctx.control_ids, sup.control_kl_positions
        )
        ckl = control_kl(ctx.logits, ctx.ref_logits, positions, sup.control_kl_direction)
        scale = ctx.scales.control_kl if ctx.scales is not None else 1.0
        return sup.control_kl_coef * scale * ckl, {"control_kl": ckl.detach()}


class ControlClip(Term):
    """A tighter ratio clip ε at control-token positions."""

    def clip_ranges(
        self, low: torch.Tensor, high: torch.Tensor, control_mask: torch.Tensor, sup: SupervisionConfig
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``control_clip_eps`` (if tighter) where the token is a control token."""
        from baselines.train.supervision import tighten_at_control

        return tighten_at_control(low, high, control_mask, sup.control_clip_eps)


class SpikePenalty(Term):
    """A hinge on control-token probability where the grammar makes it illegal."""

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """``spike_coef`` × the hinge (threshold relative to the reference or absolute)."""
        from baselines.train.supervision import non_target_mask, spike_penalty

        sup, b = ctx.cfg.supervision, ctx.prepared.batch
        where = b.illegal if sup.spike_positions == "illegal" else non_target_mask(b.targets, ctx.control_ids)
        threshold = (
            sup.spike_ref_factor * ctx.prepared.ref_control if sup.spike_threshold_mode == "ref_relative"
            else sup.spike_threshold
        )
        spike, active = spike_penalty(ctx.logits, ctx.control_ids, where, b.loss_mask, threshold, return_active=True)
        return sup.spike_coef * ctx.token_scale * spike, {"spike_penalty": spike.detach(), "spike_active_frac": active}


def sampled_by_sampler(prepared: PreparedBatch) -> torch.Tensor:
    """``[B, T]`` bool: the tokens the sampler produced from the training prompt (in the loss mask,
    not an expert row, not a hinted row: a hinted row's sampler saw another prompt, so its gap to the
    trainer is the hint's, not the sampler's). ``train/logp_mismatch`` averages over the same tokens."""
    b = prepared.batch
    return (b.loss_mask > 0) & (~b.is_expert)[:, None] & (~b.is_hinted)[:, None]


def _sampler_ratio(prepared: PreparedBatch) -> torch.Tensor:
    """:func:`~baselines.train.supervision.sampler_ratio` of a minibatch (1 off the sampled tokens)."""
    from baselines.train.supervision import sampler_ratio

    return sampler_ratio(prepared.old_logp, prepared.batch.sample_logprobs, sampled_by_sampler(prepared))


class TruncatedIS(Term):
    """Truncated importance sampling on the sampler/trainer ratio (Yao et al. 2025): each sampled
    token's policy-gradient term is multiplied by the detached ``min(π_train/π_sampler, C)``, with
    ``π_train`` the float32 policy before the step's updates (``old_logp``) and ``π_sampler`` the
    policy that sampled the token (``sample_logprobs``; see ``RLConfig.sampler_dtype``). Expert,
    hinted and non-sampled tokens keep weight 1."""

    def shape_pg(
        self, pg: torch.Tensor, logp: torch.Tensor, adv: torch.Tensor, prepared: PreparedBatch, cfg: RLConfig
    ) -> torch.Tensor:
        """``pg · min(ratio, tis_cap)``."""
        from baselines.train.supervision import tis_weight

        return pg * tis_weight(_sampler_ratio(prepared), cfg.supervision.tis_cap)

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """No added loss; the weight's mean and the share of capped tokens over the sampled tokens."""
        from baselines.train.supervision import masked_mean, tis_weight

        b = ctx.prepared.batch
        on_policy = b.loss_mask * (~b.is_expert)[:, None]
        ratio = _sampler_ratio(ctx.prepared)
        cap = ctx.cfg.supervision.tis_cap
        return None, {"tis_weight_mean": masked_mean(tis_weight(ratio, cap), on_policy),
                      "tis_capped_frac": masked_mean((ratio > cap).float(), on_policy)}


class MaskedIS(Term):
    """Masked importance sampling on the sampler/trainer ratio: sampled tokens whose
    ``π_train/π_sampler`` is outside ``[1/C, C]`` get zero policy-gradient weight (the others weight
    1, or their ratio with ``mis_reweight``). Expert, hinted and non-sampled tokens keep weight 1."""

    def shape_pg(
        self, pg: torch.Tensor, logp: torch.Tensor, adv: torch.Tensor, prepared: PreparedBatch, cfg: RLConfig
    ) -> torch.Tensor:
        """``pg · 1[ratio ∈ [1/mis_cap, mis_cap]]`` (× ratio with ``mis_reweight``)."""
        from baselines.train.supervision import mis_weight

        sup = cfg.supervision
        return pg * mis_weight(_sampler_ratio(prepared), sup.mis_cap, sup.mis_reweight)

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """No added loss; the share of masked tokens over the sampled tokens."""
        from baselines.train.supervision import masked_mean, mis_weight

        b = ctx.prepared.batch
        on_policy = b.loss_mask * (~b.is_expert)[:, None]
        masked = mis_weight(_sampler_ratio(ctx.prepared), ctx.cfg.supervision.mis_cap) == 0
        return None, {"mis_masked_frac": masked_mean(masked.float(), on_policy)}


class PermutedAdvantages(Term):
    """Control: the batch's advantages permuted within the batch (is an effect reward-driven?)."""

    def advantages(self, adv: torch.Tensor, trainer: RLTrainer) -> torch.Tensor:
        """A permutation from the trainer's own ``permutation`` stream."""
        import torch

        return adv[torch.randperm(len(adv), generator=trainer.streams.torch["permutation"])]


class SFTOnly(SFTMix):
    """Control: the ``sft_mix`` NLL with the policy-gradient term off (is it just SFT on expert data?)."""

    trains_pg = False

    def loss(self, ctx: LossContext) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """The ``sft_mix`` NLL, unless ``sft_mix`` is on too (then it is added once, by ``sft_mix``)."""
        if ctx.cfg.supervision.enabled("sft_mix"):
            return None, {}  # with sft_mix on, the NLL is its (added once)
        return super().loss(ctx)


TERMS: tuple[Term, ...] = (
    OffpolicyExpert("offpolicy_expert", "one expert trajectory per group, trained with LUFFY policy shaping π/(π+γ)",
                    ("expert_gamma", "expert_clip")),
    Hint("hint", "some rollouts sampled with a hint in the prompt (never in the loss)", ("hint_per_group", "hint_style")),
    InterleavedSFTTerm("interleaved_sft", "SFT phases on the expert trajectories of failed tasks between RL steps",
                       ("interleave_every", "interleave_window", "interleave_steps", "interleave_lr", "interleave_batch")),
    SFTMix("sft_mix", "NLL of expert (and/or own successful) episodes added to every update",
           ("sft_mix_coef", "sft_mix_source", "sft_mix_batch", "sft_mix_positions"), {"sft_mix_nll": "plain"}),
    ControlKL("control_kl", "full-vocabulary KL to the reference at control-token positions",
              ("control_kl_coef", "control_kl_direction", "control_kl_positions"), {"control_kl": "control_kl"}),
    ControlClip("control_clip", "a tighter ratio clip ε at control-token positions", ("control_clip_eps",)),
    SpikePenalty("spike_penalty", "hinge on control-token probability where the grammar makes it illegal",
                 ("spike_coef", "spike_threshold_mode", "spike_ref_factor", "spike_threshold", "spike_positions"),
                 {"spike_penalty": "tokens", "spike_active_frac": "tokens"}),
    TruncatedIS("tis", "truncated importance sampling: sampled tokens' policy gradient × min(π_train/π_sampler, C)",
                ("tis_cap",), {"tis_weight_mean": "on_policy", "tis_capped_frac": "on_policy"}),
    MaskedIS("mis", "masked importance sampling: sampled tokens with π_train/π_sampler outside [1/C, C] get no "
             "policy gradient", ("mis_cap", "mis_reweight"), {"mis_masked_frac": "on_policy"}),
    PermutedAdvantages("permuted_advantages",
                       "control: advantages permuted within the batch (is an effect reward-driven?)", control=True),
    SFTOnly("sft_only", "control: the sft_mix NLL with the policy-gradient term off (is it just SFT on expert data?)",
            control=True),
)
"""Every supervision term, in the order of help texts and of the study's arms."""


def term_names() -> tuple[str, ...]:
    """Names accepted by ``--supervision`` (besides ``none``)."""
    return tuple(t.name for t in TERMS)


def stats_normalised_by(kind: str) -> frozenset[str]:
    """Statistic names (of the base objective and every term) with normalisation ``kind``."""
    if kind not in NORMALISATIONS:
        raise ValueError(f"Unknown normalisation {kind!r}; expected one of {list(NORMALISATIONS)}.")
    return frozenset(name for t in (BASE, *TERMS) for name, k in t.stats.items() if k == kind)


def help_text() -> str:
    """``--supervision`` help: every term with its summary."""
    return "none, or a comma-separated list of: " + "; ".join(f"{t.name} ({t.summary})" for t in TERMS) + "."


def enabled_terms(sup: SupervisionConfig) -> tuple[Term, ...]:
    """The terms ``sup`` switches on, in the order of :data:`TERMS` (the order their hooks run)."""
    return tuple(t for t in TERMS if sup.enabled(t.name))
