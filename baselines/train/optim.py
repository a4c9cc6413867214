"""Sound optimisation shared by the SFT and RL trainers: AdamW from the config, learning-rate
warm-up and schedule, and one seeded random stream per purpose.

* :func:`make_optimizer` builds AdamW (torch's, or torch-optimi's StableAdamW) with the config's
  betas, eps and weight decay; :func:`adam_update_rms` measures the gradients about to be stepped
  against the second moment the step divides by.
* :func:`lr_at` is the learning rate of a (1-based) step: linear warm-up over ``warmup_steps``
  steps (step 1 uses ``lr / warmup_steps``), then ``constant``, or ``linear`` / ``cosine`` decay
  towards 0 at the end of the run. The RL trainer sets it once per RL step (all
  minibatch updates of a step share it); the SFT trainer once per optimiser step. It depends on
  the step number only, so a resumed run continues the schedule exactly.
* :class:`RandomStreams` gives every purpose (task sampling, the ``sft_mix`` batch, the
  interleaved SFT batches, minibatch order, advantage permutation, sampling) its own generator
  seeded from ``(seed, purpose)``, so two arms with the same seed draw the same tasks at every
  step however much the other purposes consume.

Nothing here reads a config type: the functions take the few fields they need.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable
from typing import Any

import torch

SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")
"""Learning-rate schedules after warm-up."""

OPTIMIZERS: tuple[str, ...] = ("adamw", "stable_adamw")
"""The optimisers :func:`make_optimizer` builds."""


def lr_at(step: int, *, lr: float, warmup_steps: int, schedule: str, total_steps: int) -> float:
    """Learning rate of 1-based ``step``.

    Args:
        step: The step about to be taken (1 = the first).
        lr: Peak learning rate.
        warmup_steps: Steps of linear warm-up from ``lr / warmup_steps`` to ``lr`` (0 = none).
        schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` decay after warm-up, reaching 0 one
            step after ``total_steps`` (so the last step still learns).
        total_steps: The run's last step.

    Raises:
        ValueError: for an unknown schedule or a step < 1.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown lr schedule {schedule!r}; expected one of {list(SCHEDULES)}.")
    if step < 1:
        raise ValueError(f"lr_at takes a 1-based step, got {step!r}.")
    if warmup_steps > 0 and step <= warmup_steps:
        return lr * step / warmup_steps
    if schedule == "constant":
        return lr
    progress = min(max((step - warmup_steps) / (total_steps - warmup_steps + 1), 0.0), 1.0)
    if schedule == "linear":
        return lr * (1.0 - progress)
    return lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    kind: str = "adamw",
) -> torch.optim.Optimizer:
    """AdamW with the config's settings: torch's (``kind="adamw"``) or torch-optimi's StableAdamW
    (``"stable_adamw"``: the same step, divided per tensor by ``max(1, RMS_t)``, ``RMS_t`` as in
    :func:`adam_update_rms`).

    Raises:
        ValueError: for an unknown ``kind``.
        ImportError: (one line) for ``stable_adamw`` without torch-optimi installed.
    """
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if kind != "stable_adamw":
        raise ValueError(f"Unknown optimizer {kind!r}; expected one of {list(OPTIMIZERS)}.")
    try:
        from optimi import StableAdamW
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("optimizer='stable_adamw' needs torch-optimi: pip install 'toolgym[train]'.") from None
    return StableAdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False, triton=False)


@torch.no_grad()
def adam_update_rms(optimizer: torch.optim.Optimizer) -> float:
    """How large the gradients about to be stepped are against Adam's memory of them: the largest,
    over the parameter tensors, of ``sqrt(mean(g² / max(v̂, ε²)))``, with ``v̂`` the bias-corrected
    second moment that Adam(W)'s next step will divide by (``g`` included).

    It is the ``RMS_t`` of StableAdamW's update clipping (Wortsman et al., 2023): about 1 when the
    gradient is as large as its running RMS (exactly 1 at a tensor's first step), far above 1 when
    a gradient much larger than the ones before arrives, where Adam's normalised step is largest.
    Call it after ``backward`` (and clipping), before ``optimizer.step()``; 0.0 without gradients.
    """
    worst = 0.0
    for group in optimizer.param_groups:
        eps = group["eps"]
        beta2 = group["betas"][1] if "betas" in group else group["beta2"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g2 = p.grad.detach().float().pow(2)
            state = optimizer.state.get(p, {})
            if "step" in group:  # torch-optimi: one step count per group, moments kept debiased
                t = int(group["step"]) + 1
                b = (beta2**t - beta2) / (beta2**t - 1)  # optimi's debias_beta
                v_hat = state["exp_avg_sq"].float() * b + (1 - b) * g2 if "exp_avg_sq" in state else g2
            else:  # torch: raw moments and a step count per parameter
                t = int(state["step"]) + 1 if "step" in state else 1
                v = state["exp_avg_sq"].float() * beta2 + (1 - beta2) * g2 if "exp_avg_sq" in state else (1 - beta2) * g2
                v_hat = v / (1 - beta2**t)
            worst = max(worst, float((g2 / v_hat.clamp(min=eps * eps)).mean().sqrt()))
    return worst


def _seed_of(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class RandomStreams:
    """One Python and/or torch generator per purpose, seeded from ``(seed, purpose)``.

    Args:
        seed: The run's seed.
        python: Purposes that need a :class:`random.Random`.
        torch_: Purposes that need a :class:`torch.Generator`.
    """

    def __init__(self, seed: int, python: Iterable[str] = (), torch_: Iterable[str] = ()) -> None:
        self.seed = seed
        self.py: dict[str, random.Random] = {p: random.Random(_seed_of(seed, p)) for p in python}
        self.torch: dict[str, torch.Generator] = {p: torch.Generator().manual_seed(_seed_of(seed, p)) for p in torch_}

    def state_dict(self) -> dict[str, Any]:
        """Every stream's state (for exact resume)."""
        return {"py": {k: r.getstate() for k, r in self.py.items()}, "torch": {k: g.get_state() for k, g in self.torch.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        for k, s in state["py"].items():
            self.py[k].setstate(s)
        for k, s in state["torch"].items():
            self.torch[k].set_state(s)


def optimizer_for(params: Iterable[torch.nn.Parameter], cfg: Any) -> torch.optim.Optimizer:
    """:func:`make_optimizer` from a trainer config's ``optimizer``, ``lr``, ``adam_beta1/2``,
    ``adam_eps`` and ``weight_decay``."""
    return make_optimizer(
        params, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps, weight_decay=cfg.weight_decay,
        kind=cfg.optimizer,
    )


def scheduled_lr(cfg: Any, step: int) -> float:
    """:func:`lr_at` from a trainer config's ``lr``, ``warmup_steps``, ``lr_schedule`` and ``steps``."""
    return lr_at(step, lr=cfg.lr, warmup_steps=cfg.warmup_steps, schedule=cfg.lr_schedule, total_steps=cfg.steps)
