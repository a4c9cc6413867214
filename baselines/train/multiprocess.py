"""Multi-process training glue: the trainers under ``accelerate launch`` (DDP), and Ray rollouts.

A single-process run never imports ``accelerate`` and gets :data:`SINGLE`, whose methods are
identities, so the trainers' default behaviour is unchanged.

Under ``accelerate launch --num_processes W`` (``WORLD_SIZE > 1``) every rank holds the whole
rollout batch (each rank rolls out its shard of the requests and the shards are all-gathered, or
rank 0 collects them from Ray actors and broadcasts them), so advantages, diagnostics and
checkpoints are computed on the *global* batch. Each minibatch is then split by rows over the
ranks, and the token-mean loss is made equal to the single-process one:

* a term normalised by a count over the rows (the loss mask for the policy gradient, KL, entropy
  and spike terms; the selected positions for ``control_kl``) is multiplied on rank ``r`` by
  ``W · n_r / N`` (``n_r`` its local count, ``N`` the all-reduced global count). DDP averages the
  gradients over ranks, so the gradient is exactly that of ``Σ_tokens ℓ / N``;
* a term every rank computes identically on the same data (``sft_mix`` on the expert batch) is
  left unscaled: the average of identical gradients is that gradient.

Logged statistics are reduced the same way (``mean_r(stat_r · scale_r)``; maxima with ``max``), so
``train/loss`` and every other metric keep their single-process meaning and name. Only rank 0
logs, evaluates and writes checkpoints.

Micro-batches (``micro_batch_size``, gradient accumulation) use the same shares one level down: a
rank's share of a minibatch runs in parts, part ``m`` scaled by ``W · n_{r,m} / N``
(:meth:`Distributed.micro_loss_scales`; ``n_{r,m} / N`` in one process), so the accumulated
gradient is the whole minibatch's; a replicated term (``sft_mix``) is computed on the first part
only, and :func:`combine_micro_stats` turns the parts' statistics into the rank's before
:meth:`Distributed.reduce_stats`. Under DDP the gradients are all-reduced once, at the last part's
backward.

FSDP / DeepSpeed configs of ``accelerate`` are rejected with a clear error: rollouts sample from
the full, unsharded model on every rank, which DDP keeps and FSDP does not (see docs/scaling.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from baselines.train.terms import stats_normalised_by

if TYPE_CHECKING:
    from baselines.llm.rollout import Episode, EpisodeRequest

T = TypeVar("T")

logger = logging.getLogger(__name__)

TOKEN_STATS = stats_normalised_by("tokens")
"""``rl_loss`` statistics that are means over the loss mask (declared in :mod:`baselines.train.terms`;
``spike_active_frac``, a mean over penalised pairs, is weighted by the token share: an approximation)."""
ON_POLICY_STATS = stats_normalised_by("on_policy")
"""``rl_loss`` statistics that are means over the sampled (non-expert) tokens."""
CONTROL_KL_STATS = stats_normalised_by("control_kl")
"""``rl_loss`` statistics that are means over the ``control_kl`` positions."""
MAX_STATS = stats_normalised_by("max")
"""``rl_loss`` statistics reduced with ``max``."""
SCALE_OF: dict[str, str] = {
    **{k: "tokens" for k in TOKEN_STATS}, **{k: "on_policy" for k in ON_POLICY_STATS},
    **{k: "control_kl" for k in CONTROL_KL_STATS},
}
"""The :class:`LossScales` field that weights each mean statistic (the others are ``max`` or ``plain``)."""


def launched_world_size() -> int:
    """``WORLD_SIZE`` set by ``accelerate launch`` / ``torchrun`` (1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


@dataclass(frozen=True)
class LossScales:
    """Per-rank multipliers that turn local token means into shares of the global token mean.

    Attributes:
        tokens: ``W · n_r / N`` for terms normalised by the loss mask.
        on_policy: The same for the sampled (non-expert) tokens (statistics only).
        control_kl: The same for the ``control_kl`` positions.
        total_tokens: ``N``, the minibatch's loss-mask tokens over all ranks.
    """

    tokens: float = 1.0
    on_policy: float = 1.0
    control_kl: float = 1.0
    total_tokens: float | None = None


def combine_micro_stats(
    parts: Sequence[tuple[dict[str, torch.Tensor | float], LossScales]],
) -> tuple[dict[str, float], LossScales]:
    """One rank's ``rl_loss`` statistics and :class:`LossScales` for a whole minibatch, from those
    of its micro-batches (gradient accumulation): a token / on-policy / control-KL mean is the
    micro-batches' means weighted by their counts (their scales), a maximum the largest, and a
    ``plain`` statistic (a share of the whole, like the loss, or a term computed on one
    micro-batch only, like ``sft_mix``'s NLL) their sum. The scales add up, so the result goes on
    to :meth:`Distributed.reduce_stats` as one micro-batch's would."""
    first = parts[0][1]
    total = LossScales(
        sum(s.tokens for _, s in parts), sum(s.on_policy for _, s in parts), sum(s.control_kl for _, s in parts),
        first.total_tokens,
    )
    out: dict[str, float] = {}
    for key in {k for stats, _ in parts for k in stats}:
        values = [(float(stats[key]), scales) for stats, scales in parts if key in stats]
        if key in MAX_STATS:
            out[key] = max(v for v, _ in values)
        elif key in SCALE_OF:
            kind = SCALE_OF[key]
            weighted = [(v, getattr(s, kind)) for v, s in values if getattr(s, kind) > 0]
            norm = sum(w for _, w in weighted)
            out[key] = sum(v * w for v, w in weighted) / norm if norm > 0 else values[0][0]
        else:
            out[key] = sum(v for v, _ in values)
    return out, total


class Distributed:
    """Rank information and the few collectives the trainers need.

    Build it with :meth:`from_env`; a single process gets :data:`SINGLE` (no ``accelerate``).

    Args:
        accelerator: An ``accelerate.Accelerator`` (None for a single process).
    """

    def __init__(self, accelerator: Any = None) -> None:
        self.accelerator = accelerator
        self.rank = int(accelerator.process_index) if accelerator is not None else 0
        self.world_size = int(accelerator.num_processes) if accelerator is not None else 1

    @classmethod
    def from_env(cls, device: str = "cpu") -> Distributed:
        """:data:`SINGLE` unless launched with ``WORLD_SIZE > 1``; then an ``Accelerator`` (gloo on
        CPU when ``device`` is ``"cpu"``, NCCL on GPUs) that has set up the process group.

        Raises:
            ImportError: if ``accelerate`` is missing (``pip install 'toolgym[train]' accelerate``).
            ValueError: for an FSDP / DeepSpeed / Megatron accelerate config (DDP only).
        """
        if launched_world_size() <= 1:
            return SINGLE
        try:
            from accelerate import Accelerator
            from accelerate.utils import DistributedType
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Multi-process training needs accelerate: pip install 'toolgym[accelerate]'."
            ) from exc
        accelerator = Accelerator(cpu=str(device).startswith("cpu"))
        supported = {DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU}
        if accelerator.distributed_type not in supported:
            raise ValueError(
                f"accelerate distributed_type={accelerator.distributed_type} is not supported by the ToolGym "
                "trainers (rollouts need the full model on every rank); use DDP (MULTI_GPU / MULTI_CPU)."
            )
        dist = cls(accelerator)
        logger.info("Distributed training: rank %d of %d (%s, device %s)", dist.rank, dist.world_size,
                    accelerator.distributed_type, accelerator.device)
        return dist

    # ------------------------------------------------------------------ basics
    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 (the one that logs, evaluates and checkpoints)."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """Device of this rank's collectives (CPU for gloo, this rank's GPU for NCCL)."""
        if self.accelerator is None:
            return torch.device("cpu")
        return torch.device(self.accelerator.device)

    def wrap(self, model: Any) -> Any:
        """The module to run training forwards through: ``model`` itself for one process, its
        DDP wrapper (``accelerator.prepare_model``) otherwise. Parameters are shared, and DDP
        broadcasts rank 0's weights on construction."""
        if not self.enabled:
            return model
        return self.accelerator.prepare_model(model, device_placement=False)

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share ``items[rank::world_size]`` (all of them for one process)."""
        return list(items) if not self.enabled else list(items[self.rank :: self.world_size])

    def check_shardable(self, n: int, what: str) -> None:
        """Raise a ValueError if ``n`` rows cannot give every rank at least one."""
        if n < self.world_size:
            raise ValueError(
                f"{what} has {n} rows but {self.world_size} processes need at least one each; "
                "raise the batch size or lower minibatches / --num_processes."
            )

    # ------------------------------------------------------------------ collectives
    def all_reduce(self, values: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Element-wise ``sum`` / ``max`` / ``mean`` over ranks (a copy; identity for one process)."""
        if not self.enabled:
            return values
        import torch.distributed as dist

        out = values.detach().to(self.device, torch.float64 if values.is_floating_point() else values.dtype).clone()
        dist.all_reduce(out, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        if op == "mean":
            out = out / self.world_size
        return out.to(values.device, values.dtype)

    def broadcast_object(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj: T) -> list[T]:
        """Every rank's ``obj``, in rank order."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            self.accelerator.wait_for_everyone()

    def close(self) -> None:
        """End the process group (``Accelerator.end_training``); a no-op for a single process.

        Call it once every rank is done with collectives (the command line does, after training).
        Without it gloo's worker threads outlive the interpreter and a rank can abort at exit with
        "terminate called without an active exception" (pytorch/pytorch#190489) after training
        finished. Idempotent."""
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                self.accelerator.end_training()

    def broadcast_parameters(self, model: Any) -> None:
        """Copy rank 0's parameters to every rank (after a replicated phase that may drift on GPUs)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for param in model.parameters():
            dist.broadcast(param.data, src=0)

    # ------------------------------------------------------------------ losses and statistics
    def loss_scales(self, tokens: torch.Tensor, on_policy: torch.Tensor, control_kl: torch.Tensor) -> LossScales:
        """:class:`LossScales` of this rank's minibatch shard from its local counts (one all-reduce)."""
        return self.micro_loss_scales([(tokens, on_policy, control_kl)])[0]

    def micro_loss_scales(self, masks: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> list[LossScales]:
        """:class:`LossScales` of each micro-batch of this rank's minibatch shard (gradient
        accumulation), from the ``(tokens, on_policy, control_kl)`` masks of each: ``W · n / N``
        with ``n`` the micro-batch's count and ``N`` the whole minibatch's over every rank and
        micro-batch (one all-reduce). One micro-batch gives :meth:`loss_scales`; in one process
        the factors are the micro-batches' shares ``n / N`` of the minibatch's token means."""
        local = torch.stack([torch.stack([m.float().sum() for m in counts]) for counts in masks]).cpu()
        total = self.all_reduce(local.sum(0))
        w = float(self.world_size)
        out = []
        for row in local:
            ratio = [w * float(n) / float(t) if float(t) > 0 else 0.0 for n, t in zip(row, total, strict=True)]
            out.append(LossScales(ratio[0], ratio[1], ratio[2], float(total[0])))
        return out

    def token_scale(self, tokens: torch.Tensor) -> tuple[float, float]:
        """``(W · n_r / N, N)`` for one token count (SFT)."""
        scales = self.loss_scales(tokens, tokens, tokens)
        return scales.tokens, float(scales.total_tokens or 0.0)

    def reduce_stats(self, stats: dict[str, torch.Tensor | float], scales: LossScales | None) -> dict[str, float]:
        """Global values of ``rl_loss``-style statistics (see the module docstring): weighted means
        over ranks for the token / on-policy / control-KL means, ``max`` for :data:`MAX_STATS`, the
        plain mean over ranks for anything else (already-scaled or replicated values)."""
        if not self.enabled or scales is None:
            return {k: float(v) for k, v in stats.items()}
        keys = sorted(stats)
        weight = {k: getattr(scales, kind) for k, kind in SCALE_OF.items()}
        means = torch.tensor([float(stats[k]) * weight.get(k, 1.0) for k in keys if k not in MAX_STATS], dtype=torch.float64)
        maxima = torch.tensor([float(stats[k]) for k in keys if k in MAX_STATS], dtype=torch.float64)
        means = self.all_reduce(means, "mean")
        maxima = self.all_reduce(maxima, "max") if len(maxima) else maxima
        out = dict(zip([k for k in keys if k not in MAX_STATS], means.tolist(), strict=True))
        out.update(zip([k for k in keys if k in MAX_STATS], maxima.tolist(), strict=True))
        return out

    # ------------------------------------------------------------------ rollouts
    def collect(
        self,
        requests: Sequence[EpisodeRequest],
        rollout: Callable[[Sequence[EpisodeRequest]], list[Episode]],
        *,
        pool: Any = None,
        model: Any = None,
    ) -> list[Episode]:
        """Episodes of ``requests`` in request order, the same on every rank.

        With a Ray ``pool`` (:class:`baselines.ray_rollout.RayRolloutPool`, held by
        rank 0), rank 0 sends ``model``'s weights and collects every episode from the actors, then
        broadcasts them. Without one, each rank runs ``rollout`` on its shard and the shards are
        all-gathered. Requests must be sampled with ``per_episode_rng`` for this to equal one
        process's rollout.
        """
        if pool is not None:
            episodes = None
            if self.is_main:
                pool.set_weights(model.state_dict())
                episodes = pool.collect(requests)
            return self.broadcast_object(episodes) if self.enabled else episodes
        if not self.enabled:
            return rollout(requests)
        shards = self.gather_objects(rollout(self.shard(requests)))
        ordered: list[Any] = [None] * len(requests)
        for rank, shard in enumerate(shards):
            ordered[rank :: self.world_size] = shard
        return ordered


SINGLE = Distributed()
"""The single-process context: rank 0 of 1, no collectives, no accelerate."""


class NullLogger:
    """Stands in for :class:`~baselines.train.logger.MetricLogger` on ranks other than 0."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Drop the metrics."""

    def close(self) -> None:
        """Nothing to close."""
