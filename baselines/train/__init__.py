"""Trainers for LLM policies on ToolGym envs: SFT on oracle trajectories, GRPO with supervisory
signals against multi-turn tool-use collapse, and the collapse diagnostics.

Run ``python -m baselines.train sft|rl --help``. Modules (import them directly; this package
imports nothing heavy): :mod:`~baselines.train.config` (dataclass configs),
:mod:`~baselines.train.sft`, :mod:`~baselines.train.rl`, :mod:`~baselines.train.supervision`
(loss terms), :mod:`~baselines.train.diagnostics` (metrics and detectors),
:mod:`~baselines.train.batch` (padding, masks, turn grammar), :mod:`~baselines.train.envs`.
Example configs live in ``baselines/train/configs/``.
"""
