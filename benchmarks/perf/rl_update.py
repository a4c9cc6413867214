"""RL update time per 1k policy tokens: ToolGym's GRPO update vs TRL's ``GRPOTrainer`` on the same batch.

Only the update is timed (forward, loss, backward, one AdamW step), never generation. Every system
gets a copy of the same tiny model (the from-scratch GPT-2 of ``benchmarks/train_throughput.py``:
BPE tokenizer trained on Lookup oracle episodes, 3 layers, d=128) and the same batch of sequences:
64 oracle episodes of ``ToolGym/Lookup-v0`` built as in that script (:func:`update_batch`), in GRPO
groups of 8 with advantages of about ±1, and old log-probs equal to the current ones (ratio 1).

Two workloads, each with identical ``[B, T]`` token tensors for every system:

* **single-turn**: the task prompt, then the policy tokens of the oracle episode (its assistant
  turns, concatenated; tool outputs removed). This is the plain prompt/completion case of
  ``GRPOTrainer``.
* **multi-turn**: the episode as ToolGym trains on it (assistant turns and tool outputs); the tool
  outputs are excluded from the loss by ToolGym's ``loss_mask`` and by TRL's ``tool_mask``, the
  mask TRL's own tool-calling loop builds.

Systems (measured interleaved in rotating order, one update each per round; medians reported):

* **ToolGym**: ``batch_logits`` + ``rl_loss`` (token-level PPO-clip on GRPO advantages, no KL, no
  supervisory term) + backward + ``torch.optim.AdamW`` built as ``RLTrainer`` builds it.
* **ToolGym ``RLTrainer.update``**: the trainer's own update with ``epochs=1, minibatches=1``
  (one optimizer step), as shipped: it adds a per-update diagnostic (the gradient norm of the
  loss restricted to control tokens, an extra ``autograd.grad`` pass), the global grad norm and
  the finiteness checks. Shown for information; the comparison with TRL is the row above.
* **TRL**: ``GRPOTrainer.compute_loss`` (``loss_type="dapo"``, ``beta=0``) +
  ``accelerator.backward`` + one step of the optimizer the trainer creates
  (``create_optimizer``: TRL's default ``adamw_torch_fused``), on the ``inputs`` dict its
  ``_generate_and_score_completions`` would return (``prompt_ids``, ``prompt_mask``,
  ``completion_ids``, ``completion_mask``, ``advantages``, ``old_per_token_logps``,
  ``num_items_in_batch``, and ``tool_mask`` for multi-turn).

ToolGym's loss is the mean of the per-token loss over the batch's policy tokens. TRL's ``dapo``
divides by the policy tokens of the global batch and ``bnpo`` by those of the local batch; with one
process and one micro-batch both are that same mean. Before timing, the script computes the loss
and the gradients of ToolGym and TRL on identical weights and prints them (they must agree), and
reports the loss ``RLTrainer.update`` logs on its first call.

``trl`` is ToolGym's ``trl`` extra (``pip install -e ".[train,trl]"``). If it does not import in
this interpreter, the whole script is re-run with the peer venv's interpreter (``--peer-python``,
``$TOOLGYM_PEER_PYTHON``), which then needs those extras.

    python -m benchmarks.perf.rl_update --quick     # 3 rounds per workload
    python -m benchmarks.perf.rl_update --write     # 15 rounds, writes benchmarks/results/perf/rl_update.*
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.perf._common import (
    ROOT,
    header_lines,
    load,
    machine,
    md_table,
    median,
    peer_python,
    percentile,
    script_module,
    script_parser,
    write_results,
)

GROUP_SIZE = 8
WORKLOADS = ("single_turn", "multi_turn")
SYSTEMS = ("toolgym", "toolgym_trainer", "trl")
LABELS = {
    "toolgym": "ToolGym (rl_loss + backward + AdamW)",
    "toolgym_trainer": "ToolGym RLTrainer.update (as shipped, with its diagnostics)",
    "trl": "TRL GRPOTrainer (compute_loss + backward + its AdamW)",
}
PHASES = ("forward_loss_s", "backward_s", "optimizer_s")

if TYPE_CHECKING:  # annotations only: torch, transformers and trl are imported when the benchmark runs
    import torch

    from baselines.llm.rollout import Episode
    from baselines.train.rl import PreparedBatch, RLTrainer


def single_turn(episode: Episode) -> Episode:
    """The single-turn version of a multi-turn episode: its prompt, then its policy tokens only.

    The assistant turns are concatenated in order and the tool outputs dropped, so the whole
    completion is in the loss, as in a plain prompt/completion GRPO batch.
    """
    from baselines.llm.rollout import Episode

    policy = [t for t, m in zip(episode.input_ids, episode.loss_mask, strict=True) if m]
    ids = episode.input_ids[: episode.prompt_len] + policy
    return Episode(
        task_id=episode.task_id,
        input_ids=ids,
        loss_mask=[0] * episode.prompt_len + [1] * len(policy),
        sample_logprobs=[0.0] * len(ids),
        prompt_len=episode.prompt_len,
        reward=episode.reward,
        success=episode.success,
    )


def trl_inputs(prepared: PreparedBatch) -> dict[str, torch.Tensor]:
    """The batch in the form ``GRPOTrainer.compute_loss`` takes, over the same ``[B, T]`` tensors.

    The prompt is the first ``P`` columns, ``P`` the shortest prompt of the batch, so it needs no
    left padding and the token positions are those of ToolGym's right-padded batch. The
    completion is the rest (right-padded, ``completion_mask`` = real tokens). Where the
    completion holds tokens outside ToolGym's loss mask (tool outputs, the tail of a longer
    prompt), ``tool_mask`` is 0 there, as TRL's tool-calling loop sets it.
    """
    import torch

    b = prepared.batch
    policy = b.loss_mask > 0
    # loss_mask[:, t] is about token t + 1: the first policy token of a row is argmax + 1
    split = int((policy.float().argmax(-1) + 1).min())
    completion_mask = b.attention_mask[:, split:]
    in_loss = policy[:, split - 1 :]
    inputs = {
        "prompt_ids": b.input_ids[:, :split],
        "prompt_mask": b.attention_mask[:, :split],
        "completion_ids": b.input_ids[:, split:],
        "completion_mask": completion_mask,
        "advantages": b.advantages,
        "old_per_token_logps": prepared.old_logp[:, split - 1 :].clone(),
        "num_items_in_batch": b.loss_mask.sum(),
    }
    if not torch.equal(in_loss, completion_mask.bool()):
        inputs["tool_mask"] = torch.where(completion_mask.bool(), in_loss, True).long()
    if not torch.equal(completion_mask.bool() & inputs.get("tool_mask", completion_mask).bool(), in_loss):
        raise AssertionError("TRL's loss mask differs from ToolGym's")
    return inputs


def make_trl_trainer(model: Any, tokenizer: Any, batch_size: int, lr: float, workdir: str) -> Any:
    """A ``GRPOTrainer`` on ``model`` set for the comparison: ``dapo`` loss, ``beta=0``, ε=0.2,
    temperature 1, learning rate ``lr``, no weight decay, CPU, a dummy reward and dataset
    (nothing is generated)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=workdir, per_device_train_batch_size=batch_size, num_generations=GROUP_SIZE,
        beta=0.0, loss_type="dapo", epsilon=0.2, temperature=1.0, learning_rate=lr, weight_decay=0.0,
        use_cpu=True, bf16=False, fp16=False, report_to="none", logging_strategy="no", save_strategy="no",
    )
    dataset = Dataset.from_dict({"prompt": ["Find the value of key K1."] * GROUP_SIZE})
    trainer = GRPOTrainer(
        model=model, reward_funcs=lambda completions, **_: [0.0] * len(completions), args=args,
        train_dataset=dataset, processing_class=tokenizer,
    )
    trainer.model.train()  # as Trainer.training_step does
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's training loop otherwise
    trainer.create_optimizer()
    return trainer


def make_rl_trainer(model: Any, tokenizer: Any, lr: float, threads: int, workdir: str) -> RLTrainer:
    """ToolGym's ``RLTrainer`` started from a checkpoint of ``model``, one update per call."""
    from baselines.llm.model import save_pretrained
    from baselines.train.config import RLConfig
    from baselines.train.rl import RLTrainer

    path = save_pretrained(model, tokenizer, Path(workdir) / "init")
    cfg = RLConfig(
        init=str(path), out_dir=str(Path(workdir) / "run"), epochs=1, minibatches=1, lr=lr, threads=threads,
        eval_episodes=1, probe_size=4, include_system_prompt=False, tensorboard=False, progress=False,
    )
    trainer = RLTrainer(cfg)
    trainer.model.train()
    return trainer


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def toolgym_step(model: Any, prepared: PreparedBatch, cfg: Any, control_ids: torch.Tensor,
                 optimizer: Any) -> tuple[float, dict[str, float]]:
    """One ToolGym update; returns the loss and the seconds of each phase."""
    from baselines.train.common import batch_logits
    from baselines.train.rl import rl_loss

    (loss, _), t_fwd = _timed(lambda: rl_loss(batch_logits(model, prepared.batch, cfg.temperature), prepared, cfg,
                                              control_ids))
    optimizer.zero_grad(set_to_none=True)
    _, t_bwd = _timed(loss.backward)
    _, t_opt = _timed(optimizer.step)
    return float(loss.detach()), dict(zip(PHASES, (t_fwd, t_bwd, t_opt), strict=True))


def trl_step(trainer: Any, inputs: dict[str, torch.Tensor]) -> tuple[float, dict[str, float]]:
    """One TRL update; returns the loss and the seconds of each phase."""
    loss, t_fwd = _timed(lambda: trainer.compute_loss(trainer.model, inputs))
    trainer.optimizer.zero_grad(set_to_none=True)
    _, t_bwd = _timed(lambda: trainer.accelerator.backward(loss))
    _, t_opt = _timed(trainer.optimizer.step)
    return float(loss.detach()), dict(zip(PHASES, (t_fwd, t_bwd, t_opt), strict=True))


def trainer_step(trainer: RLTrainer, prepared: PreparedBatch, episodes: list[Episode]) -> tuple[float, dict[str, float]]:
    """One ``RLTrainer.update`` (a single optimizer step); returns its logged loss (no phases)."""
    stats = trainer.update(prepared, episodes)
    return stats["train/loss"], {}


def same_work(core: Any, prepared: PreparedBatch, cfg: Any, control_ids: torch.Tensor, trl: Any,
              inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss and gradients of ToolGym and TRL on identical weights (no optimizer step)."""
    import torch

    from baselines.train.common import batch_logits
    from baselines.train.rl import rl_loss

    ours, _ = rl_loss(batch_logits(core, prepared.batch, cfg.temperature), prepared, cfg, control_ids)
    ours.backward()
    theirs = trl.compute_loss(trl.model, inputs)
    theirs.backward()
    pairs = list(zip(core.parameters(), trl.model.parameters(), strict=True))
    grad_diff = max(float((a.grad - b.grad).abs().max()) for a, b in pairs)
    grad_max = max(float(a.grad.abs().max()) for a, _ in pairs)
    weights_equal = all(torch.equal(a, b) for a, b in pairs)
    core.zero_grad(set_to_none=True)
    trl.model.zero_grad(set_to_none=True)
    return {"toolgym_loss": float(ours.detach()), "trl_loss": float(theirs.detach()),
            "loss_abs_diff": abs(float(ours.detach()) - float(theirs.detach())),
            "grad_max_abs_diff": grad_diff, "grad_max_abs": grad_max, "weights_equal": weights_equal}


def run_workload(name: str, model: Any, chat: Any, episodes: list[Episode], rounds: int, threads: int,
                 workdir: str) -> dict[str, Any]:
    """Build the three systems on copies of ``model``, check they do the same work, then time
    ``rounds`` interleaved updates of each (rotating order)."""
    import torch

    from baselines.train.config import RLConfig
    from benchmarks.train_throughput import update_batch

    model.eval()
    prepared = update_batch(model, chat, episodes, GROUP_SIZE)
    cfg = RLConfig(init="unused")  # defaults: lr 1e-4, β2 0.999, no weight decay, ε 0.2, T 1, no KL
    control_ids = torch.as_tensor(chat.control.id_list)
    core = copy.deepcopy(model).train()
    core_opt = torch.optim.AdamW(core.parameters(), lr=cfg.lr, betas=(0.9, cfg.adam_beta2),
                                 weight_decay=cfg.weight_decay)  # as RLTrainer builds it
    trl = make_trl_trainer(copy.deepcopy(model), chat.tokenizer, prepared.batch.size, cfg.lr,
                           os.path.join(workdir, f"trl_{name}"))
    rl = make_rl_trainer(model, chat.tokenizer, cfg.lr, threads, os.path.join(workdir, f"toolgym_{name}"))
    inputs = trl_inputs(prepared)
    check = same_work(core, prepared, cfg, control_ids, trl, inputs)
    steps: dict[str, Callable[[], tuple[float, dict[str, float]]]] = {
        "toolgym": lambda: toolgym_step(core, prepared, cfg, control_ids, core_opt),
        "toolgym_trainer": lambda: trainer_step(rl, prepared, episodes),
        "trl": lambda: trl_step(trl, inputs),
    }
    # warm-up (Adam state, allocator); RLTrainer's first update runs on the initial weights
    check["toolgym_trainer_loss"] = steps["toolgym_trainer"]()[0]
    steps["toolgym"]()
    steps["trl"]()
    print(f"[{name}] same work: ToolGym loss {check['toolgym_loss']:.9f}, TRL loss {check['trl_loss']:.9f}, "
          f"RLTrainer.update loss {check['toolgym_trainer_loss']:.9f}; max |Δgrad| {check['grad_max_abs_diff']:.2e} "
          f"(max |grad| {check['grad_max_abs']:.2e})", flush=True)
    times: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    phases: dict[str, dict[str, list[float]]] = {s: {p: [] for p in PHASES} for s in SYSTEMS}
    for r in range(rounds):
        order = SYSTEMS[r % len(SYSTEMS):] + SYSTEMS[: r % len(SYSTEMS)]
        for s in order:
            gc.collect()
            (_, parts), seconds = _timed(steps[s])
            times[s].append(seconds)
            for p, v in parts.items():
                phases[s][p].append(v)
        print(f"[{name}] round {r + 1}/{rounds}: "
              + ", ".join(f"{s} {times[s][-1]:.3f}s" for s in SYSTEMS) + f"; load {load()[0]}", flush=True)
    rl.close()
    b = prepared.batch
    policy_tokens = int(b.loss_mask.sum())
    summary: dict[str, Any] = {
        "batch_shape": list(b.input_ids.shape), "episodes": b.size, "policy_tokens": policy_tokens,
        "sequence_tokens": int(b.attention_mask.sum()),
        "trl_inputs": {k: list(v.shape) for k, v in inputs.items() if v.dim() > 0},
        "same_work": check, "systems": {},
    }
    for s in SYSTEMS:
        med = median(times[s])
        summary["systems"][s] = {
            "label": LABELS[s], "median_s": med, "p25_s": percentile(times[s], 0.25),
            "p75_s": percentile(times[s], 0.75), "s_per_1k_policy_tokens": 1000 * med / policy_tokens,
            **{f"median_{p}": median(v) for p, v in phases[s].items() if v},
            "times_s": times[s],
        }
    base = summary["systems"]["toolgym"]["median_s"]
    summary["ratio_trl_over_toolgym"] = summary["systems"]["trl"]["median_s"] / base
    summary["ratio_trl_over_toolgym_trainer"] = (summary["systems"]["trl"]["median_s"]
                                                 / summary["systems"]["toolgym_trainer"]["median_s"])
    return summary


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("torch", "transformers", "trl", "accelerate")}


def _rerun_in_peer(argv: list[str], explicit: str | None) -> None:
    python = peer_python(explicit)
    if not python or os.path.abspath(python) == os.path.abspath(sys.executable):  # venvs share one base binary
        raise SystemExit('trl is not importable here and there is no peer venv: pip install -e ".[train,trl]"')
    print(f"trl is not importable here; running this script with {python}", flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    raise SystemExit(subprocess.call([python, "-m", script_module(__file__), *argv], env=env, cwd=ROOT))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the tables and the TRL/ToolGym ratio; optionally write results."""
    parser = script_parser(__file__, __doc__)
    parser.add_argument("--quick", action="store_true", help="3 rounds per workload, print only.")
    parser.add_argument("--rounds", type=int, default=15, help="Interleaved rounds (one update per system each).")
    parser.add_argument("--episodes", type=int, default=64, help="Episodes in the batch (a multiple of 8).")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    parser.add_argument("--peer-python", help="Interpreter of a venv with trl, if this one has none.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/rl_update.*")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("trl") is None:
        _rerun_in_peer(sys.argv[1:] if argv is None else argv, args.peer_python)
    if args.quick:
        args.rounds = 3
    if args.episodes % GROUP_SIZE:
        parser.error(f"--episodes must be a multiple of {GROUP_SIZE}")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    from benchmarks.train_throughput import setup

    info = machine()
    model, chat, trajectories = setup(None)
    multi = [t.to_episode(chat) for t in trajectories[: args.episodes]]
    for e in multi:
        e.is_expert = False  # an RL batch of sampled episodes (to_episode marks oracle episodes as expert)
    batches = {"single_turn": [single_turn(e) for e in multi], "multi_turn": multi}
    workdir = tempfile.mkdtemp(prefix="toolgym-perf-rl-")
    try:
        results = {w: run_workload(w, model, chat, batches[w], args.rounds, args.threads, workdir) for w in WORKLOADS}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_at_end"] = load()
    info["torch_threads"] = args.threads
    versions = _versions()

    def sec(x: float) -> str:
        return f"{x:.3f}"

    sections = []
    for w in WORKLOADS:
        r = results[w]
        rows = []
        for s in SYSTEMS:
            v = r["systems"][s]
            rows.append([v["label"], sec(v["median_s"]), f"{sec(v['p25_s'])}–{sec(v['p75_s'])}",
                         sec(v["s_per_1k_policy_tokens"]),
                         *[sec(v[f"median_{p}"]) if f"median_{p}" in v else "–" for p in PHASES],
                         f"{v['median_s'] / r['systems']['toolgym']['median_s']:.2f}×"])
        c = r["same_work"]
        sections += [
            f"## {w.replace('_', '-')}: batch {r['batch_shape'][0]} × {r['batch_shape'][1]} tokens, "
            f"{r['policy_tokens']:,} policy / {r['sequence_tokens']:,} sequence tokens", "",
            f"**TRL ÷ ToolGym = {r['ratio_trl_over_toolgym']:.2f}×** (median update time; above 1 = ToolGym faster). "
            f"TRL ÷ ToolGym `RLTrainer.update` = {r['ratio_trl_over_toolgym_trainer']:.2f}×.", "",
            md_table(["system", "median s", "p25–p75 s", "s per 1k policy tokens", "fwd + loss s", "backward s",
                      "optimizer s", "÷ ToolGym"], rows), "",
            f"Same work (identical weights, before any step): ToolGym loss {c['toolgym_loss']:.9f}, TRL loss "
            f"{c['trl_loss']:.9f} (|Δ| {c['loss_abs_diff']:.1e}), `RLTrainer.update` loss {c['toolgym_trainer_loss']:.9f}; "
            f"largest gradient difference ToolGym vs TRL {c['grad_max_abs_diff']:.1e} (largest gradient "
            f"{c['grad_max_abs']:.1e}). TRL inputs: "
            + ", ".join(f"`{k}` {v}" for k, v in r["trl_inputs"].items()) + ".", "",
        ]
    lines = header_lines(
        "RL update per 1k policy tokens: ToolGym GRPO vs TRL GRPOTrainer", info,
        [f"torch {versions['torch']} ({args.threads} thread), transformers {versions['transformers']}, "
         f"trl {versions['trl']}, accelerate {versions['accelerate']}. Tiny GPT-2 built from scratch "
         f"({sum(p.numel() for p in model.parameters()):,} parameters, vocabulary {model.config.vocab_size}), one "
         f"copy per system. {args.rounds} interleaved rounds per workload (one update per system per round, "
         "rotating order, after one warm-up update each); only the update is timed: forward, loss, backward, "
         "one AdamW step (TRL: `compute_loss` + `accelerator.backward` + the optimizer `GRPOTrainer` creates). "
         "Losses: ToolGym token-level PPO-clip (ε 0.2, no KL) vs TRL `loss_type=\"dapo\"`, `beta=0`, ε 0.2; both "
         "are the mean over the batch's policy tokens here. Old log-probs = current ones.", "",
         "What is not the same: TRL's `compute_loss` gets log-probs and entropy from the fused LM head "
         "TRL patches into the model (`add_fused_lm_head`, chunked; on CPU it scores every position), ToolGym "
         "materialises the `[B, T-1, V]` logits and takes `log_softmax`; TRL's optimizer is the fused AdamW "
         "(`adamw_torch_fused`, its default), ToolGym's `RLTrainer` builds `torch.optim.AdamW` with torch's CPU "
         "default (per-parameter loop). Each is timed as its trainer ships it. `RLTrainer.update` also computes "
         "a control-token gradient norm (a second `autograd.grad` pass) and the global grad norm on every update; "
         "TRL's `Trainer` loop would add its own grad clipping (`max_grad_norm` 1.0) and LR scheduler step, which "
         "are not timed here.", ""],
    )
    markdown = "\n".join([*lines, *sections])
    print()
    print(markdown)
    if args.write:
        data = {"machine": info, "versions": versions, "args": vars(args), "model_parameters":
                sum(p.numel() for p in model.parameters()), "results": results}
        paths = write_results("rl_update", data, markdown)
        print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
