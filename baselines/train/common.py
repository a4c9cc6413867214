"""Pieces shared by the SFT and RL trainers: model setup, evaluation, probes, guards."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from baselines.agents.llm import agent_settings_from_config, write_agent_settings
from baselines.llm.model import (
    TinyLMConfig,
    build_tiny_model,
    context_length,
    load_pretrained,
    save_pretrained,
)
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.rollout import Episode, EpisodeRequest, RolloutSettings, collect_episodes
from baselines.llm.tokenizer import ChatFormat, train_tokenizer
from baselines.procs import claim_dir
from baselines.train.batch import TokenBatch
from baselines.train.config import CommonConfig
from baselines.train.diagnostics import control_prob_stats, episode_stats
from toolgym.stats import wilson_interval

logger = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """A loss, gradient or logit became NaN/inf; training stops with this message."""


def check_finite(name: str, value: torch.Tensor | float, step: int, hint: str = "") -> None:
    """Raise :class:`TrainingDivergedError` if ``value`` has a NaN or an inf."""
    bad = not bool(torch.isfinite(value).all()) if isinstance(value, torch.Tensor) else not math.isfinite(value)
    if bad:
        raise TrainingDivergedError(
            f"Non-finite {name} at step {step} (value {value if not isinstance(value, torch.Tensor) else value.detach().flatten()[:4].tolist()}). "
            f"Training stopped; {hint or 'lower the learning rate or set grad_clip.'}"
        )


def configure_torch(threads: int | None) -> None:
    """Set torch's CPU thread count (results are bit-reproducible for a fixed count)."""
    if threads is not None:
        torch.set_num_threads(threads)


def new_tiny_policy(
    texts: Sequence[str], model_cfg: TinyLMConfig, *, vocab_size: int, seed: int
) -> tuple[Any, Any]:
    """Train a BPE tokenizer on ``texts`` and build a randomly initialised tiny model for it."""
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, model_max_length=model_cfg.max_positions)
    model = build_tiny_model(model_cfg, tokenizer, seed=seed)
    return model, tokenizer


def load_policy_checkpoint(path: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local checkpoint directory."""
    return load_pretrained(path)


STATE_FILE = "trainer_state.pt"  # a checkpoint's trainer state beside the model and tokenizer


def hold_out_dir(trainer: Any, is_main: bool) -> None:
    """Lock ``trainer.out`` for as long as ``trainer`` lives (main rank only): a second process
    training into the same folder fails at once with :class:`~baselines.procs.DirInUseError`
    instead of mixing its metrics and checkpoints with this one's."""
    if is_main:
        weakref.finalize(trainer, claim_dir(trainer.out))


def checkpoint_dir(out: Path, step: int) -> Path:
    """``out/checkpoints/step_NNNNNN``: where a trainer writes the checkpoint of ``step``."""
    return out / "checkpoints" / f"step_{step:06d}"


def prune_checkpoints(out: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` checkpoints under ``out/checkpoints``."""
    for old in sorted((out / "checkpoints").glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def save_policy(model: Any, tokenizer: Any, path: Path, cfg: CommonConfig) -> Path:
    """Save the model and tokenizer in ``path`` (:func:`~baselines.llm.model.save_pretrained`) with
    the agent settings they were trained with (``toolgym_agent.json``: text protocol, system prompt
    or not, tokens a turn, tool-output cut), so that ``llm:PATH`` plays the directory, or a copy of
    it anywhere, as trained; returns ``path``."""
    path = save_pretrained(model, tokenizer, path)
    write_agent_settings(path, agent_settings_from_config(dataclasses.asdict(cfg)))
    return path


def save_checkpoint(
    out: Path, step: int, model: Any, tokenizer: Any, state: dict[str, Any], keep: int, cfg: CommonConfig
) -> Path:
    """Write ``out/checkpoints/step_N`` (the model, tokenizer and agent settings as
    :func:`save_policy` does, and ``{"step": step, **state}`` in :data:`STATE_FILE`), then keep only
    the newest ``keep`` checkpoints; returns its path."""
    path = checkpoint_dir(out, step)
    save_policy(model, tokenizer, path, cfg)
    torch.save({"step": step, **state}, path / STATE_FILE)
    prune_checkpoints(out, keep)
    return path


def load_checkpoint_state(path: Path) -> dict[str, Any]:
    """The trainer state that :func:`save_checkpoint` wrote in ``path``."""
    return torch.load(path / STATE_FILE, weights_only=False, map_location="cpu")  # a GPU run resumes anywhere


def find_checkpoint(out: Path, resume: str | None, kind: str) -> Path | None:
    """The checkpoint to resume from: ``None`` for ``resume=None``; the newest under
    ``out/checkpoints`` (or ``None`` if there is none) for ``"auto"``; else the directory named.

    Raises:
        FileNotFoundError: if the directory named is not a checkpoint of a ``kind`` trainer.
    """
    if resume is None:
        return None
    if resume == "auto":
        found = sorted((out / "checkpoints").glob("step_*"))
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not an {kind} checkpoint (no {STATE_FILE}); expected a directory "
                                f"like {checkpoint_dir(Path('OUT_DIR'), 25)} or 'auto'.")
    return path


def fixed_requests(task_ids: Sequence[str], n: int, *, seed: int = 0) -> list[EpisodeRequest]:
    """``n`` evaluation requests cycling over ``task_ids`` with fixed seeds (same every eval)."""
    return [EpisodeRequest(task_id=task_ids[i % len(task_ids)], seed=seed + i) for i in range(n)]


def evaluate(
    policy: CausalLMPolicy,
    chat: ChatFormat,
    envs: Sequence[Any],
    requests: Sequence[EpisodeRequest],
    settings: RolloutSettings,
    *,
    seed: int,
    prefix: str = "eval",
) -> tuple[dict[str, float], list[Episode]]:
    """Roll out ``requests`` with a fresh generator seeded by ``seed`` (common random numbers
    across evaluations) and return ``episode_stats`` under ``prefix``, plus the 95% Wilson
    interval of the success rate (``{prefix}/success_ci_low``, ``{prefix}/success_ci_high``)."""
    generator = torch.Generator().manual_seed(seed)
    episodes = collect_episodes(
        policy, chat, envs, requests, settings, generator=generator, context_length=context_length(policy.model)
    )
    stats = episode_stats(episodes, prefix)
    low, high = wilson_interval(sum(e.success for e in episodes), len(episodes))  # 95% Wilson interval
    stats.update({f"{prefix}/success_ci_low": low, f"{prefix}/success_ci_high": high})
    return stats, episodes


def batch_logits(model: Any, batch: TokenBatch, temperature: float) -> torch.Tensor:
    """``[B, T-1, V]`` next-token logits (temperature applied) of a right-padded batch.

    Raises:
        ValueError: if the batch is longer than the model's context (a one-line message saying
            how to fix it, instead of an index error deep inside the model).
    """
    limit = context_length(getattr(model, "module", model))  # DDP wraps the model in .module
    if batch.input_ids.shape[1] > limit:
        raise ValueError(
            f"A training sequence of {batch.input_ids.shape[1]} tokens is longer than the model's context of "
            f"{limit} positions: build the model with a larger model.max_positions, extend a pretrained one "
            "(baselines.llm.model.extend_context), or shorten the episodes (max_observation_tokens, max_new_tokens)."
        )
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return out.logits[:, :-1, :].float() / temperature


def chunks(n: int, size: int) -> list[list[int]]:
    """Row indices ``0..n-1`` in consecutive chunks of at most ``size``."""
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def micro_groups(
    rows: Sequence[int],
    size: int | None,
    world_size: int = 1,
    *,
    lengths: Sequence[int] | None = None,
    tokens: int | None = None,
) -> list[list[int]]:
    """``rows`` (one minibatch) split into groups of rows that share a forward pass (gradient
    accumulation), each shared by ``world_size`` processes as ``group[rank::world_size]``.

    Without ``tokens``: the fewest strided groups ``rows[k::n]`` that give each process at most
    ``size`` rows (``size=None``: one group, the whole minibatch).

    With ``tokens`` (a budget of padded tokens per process and pass) and ``lengths`` (each row's
    tokens, indexed by row): the rows sorted by length, shortest first, and packed greedily into
    consecutive groups whose rows per process times the group's longest row stay within
    ``tokens`` (and whose rows per process stay within ``size``, when given). A pass is padded to
    its longest row, so packing rows of like lengths keeps one long episode from padding a whole
    minibatch to its length (verl's dynamic batch size); a row longer than the budget gets a pass
    of its own.

    Every group keeps at least ``world_size`` rows, so that each process gets one; that can
    leave a process one row more than ``size``, or a pass above the budget.

    Raises:
        ValueError: for a ``size`` or ``tokens`` below 1, or ``tokens`` without ``lengths``.
    """
    if size is not None and size < 1:
        raise ValueError(f"micro-batch size must be ≥ 1 or None, got {size!r}.")
    if tokens is not None:
        if tokens < 1:
            raise ValueError(f"micro-batch tokens must be ≥ 1 or None, got {tokens!r}.")
        if lengths is None:
            raise ValueError("micro-batch tokens need each row's length (lengths=...).")
        return length_buckets(rows, lengths, tokens, size=size, world_size=world_size)
    if size is None:
        return [list(rows)]
    n = max(1, math.ceil(len(rows) / (size * world_size)))
    n = min(n, max(1, len(rows) // world_size))
    return [list(rows[k::n]) for k in range(n)]


def length_buckets(
    rows: Iterable[int], lengths: Sequence[int], max_tokens: int, *, size: int | None = None, world_size: int = 1
) -> list[list[int]]:
    """``rows`` sorted by ``lengths[row]`` (shortest first; ties keep their order) and cut into
    consecutive buckets whose padded size per process, ``ceil(rows / world_size)`` × the bucket's
    longest row, is at most ``max_tokens`` and whose rows per process are at most ``size`` (when
    given). A row longer than ``max_tokens`` gets a bucket of its own; every bucket keeps at least
    ``world_size`` rows (a short last one joins the bucket before it). The SFT trainer's
    ``bucket_tokens`` and the RL trainer's ``micro_batch_tokens`` (:func:`micro_groups`)."""
    groups: list[list[int]] = []
    group: list[int] = []
    for row in sorted(rows, key=lambda r: lengths[r]):  # stable
        per_process = math.ceil((len(group) + 1) / world_size)
        fits = per_process * int(lengths[row]) <= max_tokens and (size is None or per_process <= size)
        if group and len(group) >= world_size and not fits:
            groups.append(group)
            group = []
        group.append(row)
    if group:
        if len(group) < world_size and groups:  # too few rows for every process: join the group before
            groups[-1].extend(group)
        else:
            groups.append(group)
    return groups


@torch.no_grad()
def probe_stats(
    model: Any,
    batch: TokenBatch,
    chat: ChatFormat,
    *,
    temperature: float,
    prefix: str = "diag/probe",
    chunk: int = 64,
) -> dict[str, float]:
    """Teacher-forced control-token statistics on a fixed batch (gold trajectories)."""
    control = chat.control
    ids = torch.as_tensor(control.id_list)
    parts: list[dict[str, torch.Tensor]] = []
    was_training = model.training
    model.eval()
    for rows in chunks(batch.size, chunk):
        sub = batch.select(rows)
        logits = batch_logits(model, sub, temperature)
        probs = F.softmax(logits, dim=-1)
        parts.append(
            {
                "ctrl": probs[..., ids],
                "target_p": probs.gather(-1, sub.targets[..., None]).squeeze(-1),
                "targets": sub.targets,
                "mask": sub.loss_mask,
                "illegal": sub.illegal,
                "after_open": sub.after_open,
            }
        )
    if was_training:
        model.train()
    cat = _cat_padded(parts)
    return control_prob_stats(
        cat["ctrl"],
        cat["targets"],
        cat["mask"],
        cat["illegal"],
        cat["after_open"],
        control.names,
        control.id_list,
        control.names_by_id[control.eot_id],
        prefix,
        target_probs=cat["target_p"],
    )


def _cat_padded(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate per-chunk ``[b, t, ...]`` tensors along rows, padding ``t`` with zeros."""
    width = max(p["mask"].shape[1] for p in parts)
    out: dict[str, torch.Tensor] = {}
    for key in parts[0]:
        padded = []
        for p in parts:
            x = p[key]
            pad = width - x.shape[1]
            if pad:
                shape = list(x.shape)
                shape[1] = pad
                x = torch.cat([x, x.new_zeros(shape)], 1)
            padded.append(x)
        out[key] = torch.cat(padded, 0)
    return out

