"""Peak memory and time of an RL step's training passes with and without micro-batches
(``micro_batch_size``, ``micro_batch_tokens``).

An RL step's no-grad passes (:meth:`RLTrainer.prepare`: old and reference log-probs, entropy, KL to
the reference, control-token probabilities) and its updates (:meth:`RLTrainer.update`) hold
``[rows, length, vocabulary]`` float tensors, several at once, so their memory grows with a
minibatch's rows × its longest sequence × the vocabulary. A broken policy writes every turn up to
the token cap: on SQL-v0 (collapse study, entry 46) such steps peaked at 8–15 GB for a 2.6M-parameter
model. With ``micro_batch_size`` the same passes run on a few rows at a time and the update's
gradient accumulates over them. A pass is padded to its longest row, so a batch of mostly short
episodes with a few long ones (a policy whose format erodes: SQL, search log entry 55) pays for
its long ones on every row; ``micro_batch_tokens`` packs rows of like length into passes within a
token budget instead (``--short-length``: one episode in each group of 8 at ``--length``, the
others at that length).

Each setting runs in its own process (``--worker``), on the same trainer config and the same
synthetic batch: ``--episodes`` episodes of ``--length`` tokens (a prompt, then random "policy"
tokens drawn from the vocabulary with a fixed seed, as a broken policy's noise), rewards alternating
within each GRPO group of 8; with ``--short-length``, all but the first episode of each group have
that many tokens. A setting is ``none``, a ``micro_batch_size`` (``8``) or ``tokens:N`` (a
``micro_batch_tokens`` of N). With ``--repeats R`` every setting runs R times, in rotating order,
and the medians are reported. The worker builds the trainer (``RLTrainer``, from ``--checkpoint`` on
``--env``), resets the process's peak-RSS counter (``/proc/self/clear_refs``), runs ``prepare`` and
one ``update`` (``epochs=1``: ``--minibatches`` Adam steps), and reports the peak RSS above the RSS
before, the time, and the update's loss and gradient norm; it saves the weights after the update.

Same work: the settings must log the same loss and gradient norm (relative 1e-4) and end with the
same weights up to a tenth of the learning rate (Adam divides each gradient element by its own
size, so rounding in an element near 0 moves its weight by a share of lr), except GPT-2's
attention ``c_attn`` biases, whose key third gets a gradient of exactly 0 up to rounding, which
Adam's first steps turn into lr-sized moves.

    python -m benchmarks.perf.rl_memory --quick     # 16 episodes of 256 tokens, about a minute
    python -m benchmarks.perf.rl_memory --write     # 64 of 1,536 (SQL's broken steps), writes results
    python -m benchmarks.perf.rl_memory --write --length 1024 --short-length 192 --micro none,8,tokens:4096 --repeats 3
                                                    # SQL's eroding steps: writes rl_memory_mixed.*
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.perf._common import (
    ROOT,
    header_lines,
    machine,
    md_table,
    run_worker,
    script_parser,
    write_results,
)

DEFAULT_CHECKPOINT = "benchmarks/results/leaderboard/models/sql_sft"
GROUP_SIZE = 8
PROMPT_TOKENS = 96
LR = 5e-4


def _rss_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line; this benchmark needs Linux.")


def _episodes(n: int, length: int, vocab: int, seed: int, short_length: int = 0) -> list[Any]:
    """``n`` synthetic episodes of ``length`` tokens (with ``short_length``, all but the first of
    each group of 8 have that many): a prompt, then policy tokens (in the loss)."""
    from baselines.llm.rollout import Episode

    rng = random.Random(seed)
    out = []
    for i, tokens in enumerate(_lengths(n, length, short_length)):
        ids = [rng.randrange(vocab) for _ in range(tokens)]
        mask = [0] * PROMPT_TOKENS + [1] * (tokens - PROMPT_TOKENS)
        success = i % 2 == 0
        out.append(Episode(task_id=f"t{i // GROUP_SIZE}", input_ids=ids, loss_mask=mask, sample_logprobs=[0.0] * tokens,
                           prompt_len=PROMPT_TOKENS, reward=float(success), success=success, group=i // GROUP_SIZE))
    return out


def _lengths(n: int, length: int, short_length: int) -> list[int]:
    """The batch's episode lengths (see :func:`_episodes`)."""
    return [length if not short_length or i % GROUP_SIZE == 0 else short_length for i in range(n)]


def _micro_settings(setting: str) -> dict[str, int | None]:
    """The trainer's micro-batch fields for a setting (``none``, ``8``, ``tokens:4096``)."""
    if setting == "none":
        return {"micro_batch_size": None, "micro_batch_tokens": None}
    if setting.startswith("tokens:"):
        return {"micro_batch_size": None, "micro_batch_tokens": int(setting.removeprefix("tokens:"))}
    return {"micro_batch_size": int(setting), "micro_batch_tokens": None}


def _label(setting: str) -> str:
    """A setting as the trainer's field and value (``micro_batch_size=8``)."""
    return f"micro_batch_tokens={setting.removeprefix('tokens:')}" if setting.startswith("tokens:") else f"micro_batch_size={setting}"


def worker(args: Any) -> dict[str, Any]:
    """One setting in this process: build the trainer, then measure ``prepare`` + ``update``."""
    import torch

    from baselines.train.config import RLConfig
    from baselines.train.rl import RLTrainer

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        cfg = RLConfig(env=args.env, init=args.checkpoint, out_dir=out, include_system_prompt=False, steps=1,
                       prompts_per_step=args.episodes // GROUP_SIZE, group_size=GROUP_SIZE, epochs=1,
                       minibatches=args.minibatches, lr=LR, warmup_steps=0, eval_every=0, probe_size=4, save_every=0,
                       tensorboard=False, progress=False, threads=1, control_grad_norm_every=0,
                       **_micro_settings(args.micro))
        trainer = RLTrainer(cfg)
        vocab = int(trainer.model.get_input_embeddings().weight.shape[0])
        episodes = _episodes(args.episodes, args.length, vocab, seed=0, short_length=args.short_length)
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _rss_kib("VmRSS")
        start = time.perf_counter()
        prepared, _ = trainer.prepare(episodes)
        stats = trainer.update(prepared, episodes)
        seconds = time.perf_counter() - start
        peak = _rss_kib("VmHWM")
        weights = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if not k.endswith("attn.c_attn.bias")}
        torch.save(weights, args.weights)
    return {"peak_above_start_mib": (peak - before) / 1024, "rss_start_mib": before / 1024,
            "seconds": seconds, "loss": stats["train/loss"], "grad_norm": stats["train/grad_norm"],
            "updates": stats["train/updates"], "vocab": vocab,
            "tokens": sum(_lengths(args.episodes, args.length, args.short_length))}


def main(argv: list[str] | None = None) -> int:
    """Run every setting in its own process, print the table and the same-work check."""
    parser = script_parser(__file__, __doc__)
    parser.add_argument("--quick", action="store_true", help="16 episodes of 256 tokens, micro-batches none and 2.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/rl_memory.{json,md}.")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="Policy checkpoint (default: the SQL start).")
    parser.add_argument("--env", default="ToolGym/SQL-v0", help="Env of the trainer (its probe and tokens).")
    parser.add_argument("--episodes", type=int, default=64, help="Episodes in the batch (a multiple of 8).")
    parser.add_argument("--length", type=int, default=1536, help="Tokens per episode.")
    parser.add_argument("--minibatches", type=int, default=2, help="Minibatches (Adam steps) of the update.")
    parser.add_argument("--short-length", type=int, default=0,
                        help="Tokens of all but the first episode of each group of 8 (0: every episode has --length).")
    parser.add_argument("--micro", default="none,8,2",
                        help="Comma-separated settings: 'none' (off), a micro_batch_size ('8') or 'tokens:N' (micro_batch_tokens).")
    parser.add_argument("--repeats", type=int, default=1, help="Runs of every setting, in rotating order (medians reported).")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if args.quick:
        args.episodes, args.length, args.micro = 16, 256, "none,2"
    if args.episodes % GROUP_SIZE or args.episodes < GROUP_SIZE:
        parser.error(f"--episodes must be a positive multiple of {GROUP_SIZE}, got {args.episodes}.")
    for name in ("length", "short_length"):
        value = getattr(args, name)
        if value and value <= PROMPT_TOKENS:
            parser.error(f"--{name.replace('_', '-')} must be more than the {PROMPT_TOKENS}-token prompt, got {value}.")
    if args.repeats < 1:
        parser.error(f"--repeats must be ≥ 1, got {args.repeats}.")
    settings = [s.strip() for s in args.micro.split(",") if s.strip()]
    for setting in settings:
        try:
            fields = _micro_settings(setting)
        except ValueError:
            parser.error(f"--micro: {setting!r} is not 'none', a row count ('8') or 'tokens:N'.")
        if any(v is not None and v < 1 for v in fields.values()):
            parser.error(f"--micro: {setting!r} must be at least 1.")
    if "none" not in settings:
        settings.insert(0, "none")
    info = machine()
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            shift = repeat % len(settings)
            for setting in settings[shift:] + settings[:shift]:
                path = str(Path(tmp) / f"w_{setting.replace(':', '_')}_{repeat}.pt")
                row = run_worker(sys.executable, "benchmarks.perf.rl_memory", [
                    "--worker", "--micro", setting, "--weights", path, "--checkpoint", args.checkpoint, "--env", args.env,
                    "--episodes", str(args.episodes), "--length", str(args.length), "--minibatches", str(args.minibatches),
                    "--short-length", str(args.short_length),
                ], timeout=3600)
                row["weights"] = path
                runs[setting].append(row)
                print(f"{_label(setting)}: peak {row['peak_above_start_mib']:,.0f} MiB above the start, "
                      f"{row['seconds']:.1f} s", flush=True)
        results = [_median_row(setting, rows) for setting, rows in runs.items()]
        same, detail = _same_work(results)
    base = results[0]
    rows = [[r["setting"], r["peak_above_start_mib"], r["peak_above_start_mib"] / base["peak_above_start_mib"],
             r["seconds"], r["seconds"] / base["seconds"], r["loss"], r["grad_norm"]] for r in results]
    table = md_table(["setting", "peak RSS above start (MiB)", "× none", "seconds", "× none", "loss",
                      "grad norm"], rows)
    info["load_at_end"] = list(os.getloadavg())
    shape = (f"{args.episodes} episodes of {args.length} tokens" if not args.short_length else
             f"{args.episodes} episodes, one in each group of 8 of {args.length} tokens and the others of {args.short_length}")
    lines = header_lines("Peak memory and time of an RL step's passes, with and without micro-batches", info, [
        f"Batch: {shape} ({base['tokens']:,} tokens, vocabulary {base['vocab']:,}), {args.minibatches} minibatches of "
        f"{args.episodes // args.minibatches} rows, one epoch; checkpoint `{args.checkpoint}` on `{args.env}`. Each "
        f"setting in its own process: `RLTrainer.prepare` + `RLTrainer.update`; {args.repeats} run(s) of each, in "
        "rotating order, medians.", "",
    ])
    markdown = "\n".join([*lines, table, "", f"Same work: {'yes' if same else 'NO'} ({detail})."])
    print(markdown)
    if args.write:
        for r in results:
            r.pop("weights", None)
        paths = write_results("rl_memory_mixed" if args.short_length else "rl_memory", {"machine": info, "args": vars(args), "results": results, "same_work": same,
                                            "same_work_detail": detail}, markdown)
        print("wrote", *paths)
    return 0 if same else 1


def _median_row(setting: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One setting's runs as one row: the median peak and time, the first run's loss, gradient
    norm and weights (the runs of a setting must agree exactly: the same process, the same work)."""
    first = rows[0]
    if any((r["loss"], r["grad_norm"]) != (first["loss"], first["grad_norm"]) for r in rows):
        raise RuntimeError(f"{_label(setting)}: repeated runs logged different losses: {[r['loss'] for r in rows]}")
    return {**first, "setting": _label(setting), "micro": setting,
            "peak_above_start_mib": statistics.median(r["peak_above_start_mib"] for r in rows),
            "seconds": statistics.median(r["seconds"] for r in rows), "seconds_all": [r["seconds"] for r in rows]}


def _same_work(results: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether every setting logged the first one's loss and gradient norm and ended with its weights."""
    import torch

    base = results[0]
    ref = torch.load(base["weights"])
    worst_w = worst_stat = 0.0
    for r in results[1:]:
        other = torch.load(r["weights"])
        worst_w = max(worst_w, max(float((ref[k] - other[k]).abs().max()) for k in ref))
        for key in ("loss", "grad_norm"):
            worst_stat = max(worst_stat, abs(r[key] - base[key]) / max(abs(base[key]), 1e-12))
    same = worst_w <= 0.1 * LR and worst_stat <= 1e-4 and all(r["updates"] == base["updates"] for r in results)
    return same, f"largest weight difference {worst_w:.1e}, largest relative loss / grad-norm difference {worst_stat:.1e}"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
