"""The supervision terms as declarations: name, summary, config fields and logged statistics with
how each is normalised across processes.

This module is the one list the rest derives from: ``config.SUPERVISIONS`` (what
``--supervision`` accepts and its help), the collapse study's arms
(``benchmarks.collapse.settings.ARMS``) and the DDP reduction of ``rl_loss`` statistics
(``multiprocess.TOKEN_STATS`` …). Adding a term means adding its :class:`Term` here (a test checks
that every ``SupervisionConfig`` field and every statistic ``rl_loss`` logs is declared by
exactly one term) and its loss in ``rl.py`` / ``supervision.py``.

Normalisations of a statistic (how ``Distributed.reduce_stats`` combines ranks):

* ``tokens``: a mean over the loss mask (weighted by each rank's token share);
* ``on_policy``: a mean over the sampled (non-expert) tokens;
* ``control_kl``: a mean over the ``control_kl`` positions;
* ``max``: a maximum;
* ``plain``: already a share of the global value, or identical on every rank (plain mean).

Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NORMALISATIONS: tuple[str, ...] = ("tokens", "on_policy", "control_kl", "max", "plain")


@dataclass(frozen=True)
class Term:
    """One supervision term (or the base objective, ``name="base"``).

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

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.stats.items() if v not in NORMALISATIONS}
        if bad:
            raise ValueError(f"Term {self.name!r}: unknown normalisation {bad}; expected one of {list(NORMALISATIONS)}.")


BASE = Term(
    "base",
    "token-level PPO-clip on GRPO advantages, optional k3-KL and entropy terms",
    stats={"pg_loss": "tokens", "kl_loss": "tokens", "entropy_bonus": "tokens", "entropy": "tokens",
           "clip_frac": "on_policy", "approx_kl": "on_policy", "ratio_max": "max", "loss": "plain",
           "grad_norm": "plain", "grad_norm_control": "plain"},
)

TERMS: tuple[Term, ...] = (
    Term("offpolicy_expert", "one expert trajectory per group, trained with LUFFY policy shaping π/(π+γ)",
         ("expert_gamma", "expert_clip")),
    Term("hint", "some rollouts sampled with a hint in the prompt (never in the loss)", ("hint_per_group", "hint_style")),
    Term("interleaved_sft", "SFT phases on the expert trajectories of failed tasks between RL steps",
         ("interleave_every", "interleave_window", "interleave_steps", "interleave_lr", "interleave_batch")),
    Term("sft_mix", "NLL of expert (and/or own successful) episodes added to every update",
         ("sft_mix_coef", "sft_mix_source", "sft_mix_batch"), {"sft_mix_nll": "plain"}),
    Term("control_kl", "full-vocabulary KL to the reference at control-token positions",
         ("control_kl_coef", "control_kl_direction", "control_kl_positions"), {"control_kl": "control_kl"}),
    Term("control_clip", "a tighter ratio clip ε at control-token positions", ("control_clip_eps",)),
    Term("spike_penalty", "hinge on control-token probability where the grammar makes it illegal",
         ("spike_coef", "spike_threshold_mode", "spike_ref_factor", "spike_threshold", "spike_positions"),
         {"spike_penalty": "tokens", "spike_active_frac": "tokens"}),
    Term("permuted_advantages", "control: advantages permuted within the batch (is an effect reward-driven?)",
         control=True),
    Term("sft_only", "control: the sft_mix NLL with the policy-gradient term off (is it just SFT on expert data?)",
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
