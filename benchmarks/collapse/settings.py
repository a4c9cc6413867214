"""What the collapse study runs: the supervision arms, per-env presets and the ``--quick`` budget.

Every arm of one study starts from the same SFT checkpoint and uses the same RL settings; the only
difference between arms is the supervisory switch (``RLConfig.supervision.use``). Settings that an
arm needs to act at all within a short run (e.g. how often ``interleaved_sft`` runs an SFT phase)
are fixed here, before any result is seen, and written to the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import baselines.train
from baselines.train.terms import term_names

CONFIG_DIR = Path(baselines.train.__file__).resolve().parent / "configs"

ARMS: tuple[str, ...] = ("none", *term_names())
"""The study's arms: ``none`` (vanilla GRPO), one per supervisory signal, and the two controls
(``permuted_advantages``: is an effect reward-driven? ``sft_only``: is it supervised learning on
the ``sft_mix`` expert data?). Combinations are written with ``+`` (``sft_mix+control_kl``)."""


def arm_supervision(arm: str) -> list[str]:
    """The ``supervision.use`` list of an arm name (``"none"`` -> ``[]``, ``"a+b"`` -> ``["a", "b"]``).

    Raises:
        ValueError: for an unknown signal name.
    """
    from baselines.train.config import SUPERVISIONS

    names = [] if arm == "none" else [n.strip() for n in arm.split("+") if n.strip()]
    unknown = [n for n in names if n not in SUPERVISIONS]
    if unknown or not (names or arm == "none"):
        raise ValueError(f"Unknown arm {arm!r}; expected 'none', one of {list(SUPERVISIONS)}, or a '+'-joined combination.")
    return names


@dataclass(frozen=True)
class Preset:
    """How to run the study on one env.

    Attributes:
        sft_config: YAML of the SFT trainer that makes the shared starting checkpoint.
        rl_config: YAML of the RL trainer shared by every arm.
        rl_overrides: ``key=value`` overrides applied on top of ``rl_config`` for every arm.
        sft_overrides: ``key=value`` overrides of ``sft_config``.
        lr: The study's default learning rate (the collapse-prone setting).
        steps: Default RL steps per run.
    """

    sft_config: Path
    rl_config: Path
    rl_overrides: tuple[str, ...] = ()
    sft_overrides: tuple[str, ...] = ()
    lr: float = 2e-3
    steps: int = 30


# Settings of the supervisory signals for short runs: the trainer's defaults assume runs of a
# few hundred steps (an SFT phase every 25 steps); with 30-step runs the phase must come sooner.
SHORT_RUN_SUPERVISION: tuple[str, ...] = (
    "supervision.interleave_every=5",
    "supervision.interleave_window=5",
    "supervision.interleave_steps=10",
)

STUDY_RL: tuple[str, ...] = SHORT_RUN_SUPERVISION + ("eval_every=10", "eval_episodes=64", "save_every=10")
"""RL overrides every preset shares: the short-run supervision settings, an evaluation on 64
episodes every 10 steps, and a checkpoint every 10 steps (for resumes and counterfactual replays)."""

STUDY_CONTEXT: dict[str, tuple[str, ...]] = {
    "ToolGym/Lookup-v0": ("model.max_positions=256",),
    "ToolGym/Search-v0": ("model.max_positions=640",),
}
"""The context the study's SFT models were built with. The shipped SFT configs now build
32,768-token models (so that saved checkpoints read any env's prompt with tools); the study keeps
the contexts its results were run with: the position table's size changes the initialisation of
every other weight, and a rollout that outgrows the context ends (``stop_reason="context_length"``)."""

PRESETS: dict[str, Preset] = {
    "ToolGym/Lookup-v0": Preset(
        sft_config=CONFIG_DIR / "lookup_sft.yaml",
        rl_config=CONFIG_DIR / "lookup_rl.yaml",
        rl_overrides=STUDY_RL,
        sft_overrides=STUDY_CONTEXT["ToolGym/Lookup-v0"],
        lr=2e-3,
        steps=30,
    ),
    "ToolGym/Search-v0": Preset(
        sft_config=CONFIG_DIR / "search_sft.yaml",
        rl_config=CONFIG_DIR / "search_rl.yaml",
        rl_overrides=STUDY_RL + ("split=train", "eval_split=train"),
        sft_overrides=STUDY_CONTEXT["ToolGym/Search-v0"],
        lr=2e-3,
        steps=30,
    ),
    "ToolGym/Calc-v0": Preset(
        sft_config=CONFIG_DIR / "calc_sft_from_base.yaml",
        rl_config=CONFIG_DIR / "calc_rl.yaml",
        rl_overrides=STUDY_RL,
        lr=5e-4,
        steps=60,
    ),
    "ToolGym/SQL-v0": Preset(
        sft_config=CONFIG_DIR / "calc_sft_from_base.yaml",
        rl_config=CONFIG_DIR / "sql_rl.yaml",
        rl_overrides=STUDY_RL,
        sft_overrides=("env=ToolGym/SQL-v0",),
        lr=5e-4,
        steps=60,
    ),
}
"""Per-env presets. Search-v0's tiny SFT policy does not generalise to held-out questions (see
``benchmarks/results/train/README.md``), so its study trains and evaluates on the training split.
Calc-v0's start is the base model SFT'd on Calc (``calc_sft_from_base.yaml``: 0.60 on 128 held-out
dev episodes; search log entry 12; committed as ``benchmarks/results/collapse/search/calc_start/model``,
pass it with ``--sft`` to skip the hour of SFT); its defaults are the second edition's setting
(lr 5e-4, 60 steps). SQL-v0's start is the same recipe on SQL (the leaderboard's ``llm:sql_sft``,
``benchmarks/results/leaderboard/models/sql_sft``; search log entry 46), with 128 new tokens a turn
for SQL's longer calls."""

QUICK_SFT: tuple[str, ...] = (
    "init=null", "steps=20", "batch_size=8", "tokenizer_tasks=60", "vocab_size=512", "eval_every=0", "eval_episodes=8",
    "model={arch: gpt2, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, max_positions: 2048}",
    "max_new_tokens=40", "expert_noise=0.2",
)
QUICK_RL: tuple[str, ...] = (
    "steps=3", "prompts_per_step=2", "group_size=4", "epochs=1", "minibatches=1", "eval_every=3",
    "eval_episodes=8", "probe_size=8", "save_every=2", "collapse_patience=2", "max_new_tokens=40",
    "supervision.interleave_every=2", "supervision.interleave_window=2", "supervision.interleave_steps=2",
    "supervision.interleave_batch=4", "supervision.sft_mix_batch=4",
)
"""``--quick``: a tiny model trained from scratch (also where the preset's SFT starts from a
pretrained one) and a few RL steps, to run the whole pipeline in minutes (not a result)."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study: an arm, a seed and the RL hyper-parameters that vary."""

    arm: str
    seed: int
    lr: float
    kl_coef: float = 0.0
    extra: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """Directory name of the run, e.g. ``none_lr0.002_kl0_s1``."""
        return f"{self.arm}_lr{self.lr:g}_kl{self.kl_coef:g}_s{self.seed}"

    def overrides(self) -> list[str]:
        """The ``key=value`` overrides that make this run differ from the shared config."""
        return [f"lr={self.lr!r}", f"kl_coef={self.kl_coef!r}", f"seed={self.seed}", *self.extra]

    def labels(self) -> dict[str, Any]:
        """Columns identifying the run in the merged CSV."""
        return {"arm": self.arm, "lr": self.lr, "kl_coef": self.kl_coef, "seed": self.seed, "run": self.name}
