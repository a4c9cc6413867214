"""Rollout and RL-update throughput of the LLM trainer (CPU or GPU).

Measures, on the same tiny model in the same run:

* sampling tokens/s of the batched KV-cache loop (:meth:`baselines.llm.policy.CausalLMPolicy.generate`)
  against Hugging Face's own batched ``model.generate`` (KV cache, left padding) on the same model
  and prompts (the fair baseline), and against a naive loop (one sequence at a time, full forward
  per token, no cache; the upper bound of what a hand-written loop can lose). Same work: every
  system generates exactly the same number of tokens per row, and greedy decoding of the first
  rows must give identical tokens in ToolGym's loop and in ``generate`` (checked, printed);
* multi-turn rollout tokens/s against ``ToolGym/Lookup-v0`` (policy tokens, envs included);
* RL update time per 1k policy tokens (forward, clipped PG loss, backward, AdamW step).

Usage::

    python benchmarks/train_throughput.py            # full sizes
    python benchmarks/train_throughput.py --quick    # a few seconds
    python benchmarks/train_throughput.py --model runs/lookup_sft/model --out benchmarks/results/train/throughput.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from transformers import PreTrainedModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.llm.model import TinyLMConfig, build_tiny_model, count_parameters, load_pretrained  # noqa: E402
from baselines.llm.policy import CausalLMPolicy  # noqa: E402
from baselines.llm.rollout import Episode, EpisodeRequest, RolloutSettings, collect_episodes  # noqa: E402
from baselines.llm.tokenizer import ChatFormat, conversation_text, train_tokenizer  # noqa: E402
from baselines.train.batch import collate, group_advantages  # noqa: E402
from baselines.train.common import batch_logits  # noqa: E402
from baselines.train.config import RLConfig  # noqa: E402
from baselines.train.envs import ExpertBank, ExpertTrajectory, make_envs, task_ids  # noqa: E402
from baselines.train.rl import PreparedBatch, rl_loss  # noqa: E402

ENV = "ToolGym/Lookup-v0"


@torch.no_grad()
def naive_generate(model: PreTrainedModel, prompt: list[int], max_new_tokens: int, generator: torch.Generator) -> list[int]:
    """One sequence, no KV cache: a full forward pass over the whole prefix for every token."""
    ids = list(prompt)
    for _ in range(max_new_tokens):
        logits = model(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)
        ).logits[0, -1]
        ids.append(int(torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)))
    return ids[len(prompt) :]


@torch.no_grad()
def hf_generate(
    model: PreTrainedModel, prompts: list[list[int]], pad_id: int, max_new_tokens: int, *, greedy: bool
) -> list[list[int]]:
    """Hugging Face's batched ``model.generate`` (KV cache) on left-padded ``prompts``; new tokens per row."""
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.as_tensor(prompt)
        attention[row, width - len(prompt) :] = 1
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention,
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,
        do_sample=not greedy,
        top_k=0,
        top_p=1.0,
        temperature=1.0,
        pad_token_id=pad_id,
    )
    return [row[width:].tolist() for row in out]


def setup(
    model_path: str | None, n_trajectories: int = 300
) -> tuple[PreTrainedModel, ChatFormat, list[ExpertTrajectory]]:
    """The model (loaded, or a fresh tiny GPT with a tokenizer trained on the trajectories), its
    chat format and ``n_trajectories`` oracle trajectories of the train split."""
    bank = ExpertBank(ENV, "train")
    trajectories = bank.many(task_ids(bank.env, n_trajectories))
    if model_path:
        model, tokenizer = load_pretrained(model_path)
    else:
        texts = [conversation_text(None, t.user, t.actions, t.observations) for t in trajectories]
        tokenizer = train_tokenizer(texts, vocab_size=1024)
        model = build_tiny_model(
            TinyLMConfig(d_model=128, n_layers=3, n_heads=4, d_ff=512, max_positions=512), tokenizer
        )
    model.eval()
    chat = ChatFormat(tokenizer, include_system_prompt=False)
    return model, chat, trajectories


def bench_sampling(
    model: PreTrainedModel, chat: ChatFormat, trajectories: list[ExpertTrajectory], batch: int, new_tokens: int,
    naive_rows: int,
) -> dict[str, float]:
    """Sampling tokens/s of ToolGym's batched loop, Hugging Face's ``generate`` and the naive loop
    on the same ``batch`` prompts, ``new_tokens`` per row (the naive loop on ``naive_rows`` rows)."""
    # the prompts of real episodes up to their second assistant turn (so prefixes vary in length)
    prompts = [t.to_episode(chat).input_ids[:-8] for t in trajectories[:batch]]
    policy = CausalLMPolicy(model, chat.control)
    eot = chat.control.eot_id
    with torch.no_grad():  # suppress end-of-turn so every row generates exactly new_tokens
        bias = torch.zeros(model.config.vocab_size)
        bias[eot] = -1e4
        handle = model.get_output_embeddings().register_forward_hook(lambda m, i, o: o + bias)
    try:
        gen = torch.Generator().manual_seed(0)
        policy.generate(prompts[:2], max_new_tokens=4, generator=gen)  # warm-up
        hf_generate(model, prompts[:2], chat.control.pad_id, 4, greedy=False)
        check_rows = min(4, len(prompts))
        ours_greedy = [
            g.token_ids for g in policy.generate(prompts[:check_rows], max_new_tokens=16, greedy=True)
        ]
        hf_greedy = hf_generate(model, prompts[:check_rows], chat.control.pad_id, 16, greedy=True)
        same_greedy = [list(a) == list(b) for a, b in zip(ours_greedy, hf_greedy, strict=True)]
        start = time.perf_counter()
        out = policy.generate(prompts, max_new_tokens=new_tokens, generator=gen)
        batched_s = time.perf_counter() - start
        batched_tokens = sum(len(g.token_ids) for g in out)
        torch.manual_seed(0)
        start = time.perf_counter()
        hf_out = hf_generate(model, prompts, chat.control.pad_id, new_tokens, greedy=False)
        hf_s = time.perf_counter() - start
        hf_tokens = sum(len(row) for row in hf_out)
        start = time.perf_counter()
        naive_tokens = sum(len(naive_generate(model, p, new_tokens, gen)) for p in prompts[:naive_rows])
        naive_s = time.perf_counter() - start
    finally:
        handle.remove()
    if batched_tokens != hf_tokens or batched_tokens != batch * new_tokens:
        raise RuntimeError(
            f"Not the same work: ToolGym generated {batched_tokens} tokens, HF generate {hf_tokens}, "
            f"expected {batch * new_tokens}"
        )
    batched = batched_tokens / batched_s
    naive = naive_tokens / naive_s
    hf = hf_tokens / hf_s
    return {
        "batched_kv_tokens_per_s": batched,
        "hf_generate_tokens_per_s": hf,
        "naive_tokens_per_s": naive,
        "speedup_vs_hf_generate": batched / hf,
        "speedup": batched / naive,
        "greedy_rows_identical_to_hf": f"{sum(same_greedy)}/{len(same_greedy)}",
        "batch": batch,
        "new_tokens": new_tokens,
        "naive_rows": naive_rows,
    }


def bench_rollout(model: PreTrainedModel, chat: ChatFormat, episodes: int) -> dict[str, float]:
    """Policy tokens/s of ``episodes`` multi-turn Lookup-v0 rollouts (envs included)."""
    policy = CausalLMPolicy(model, chat.control)
    envs = make_envs(ENV, episodes, "dev")
    ids = task_ids(envs[0])
    requests = [EpisodeRequest(ids[i % len(ids)], i) for i in range(episodes)]
    start = time.perf_counter()
    out = collect_episodes(
        policy,
        chat,
        envs,
        requests,
        RolloutSettings(max_new_tokens=40),
        generator=torch.Generator().manual_seed(0),
        context_length=512,
    )
    seconds = time.perf_counter() - start
    tokens = sum(e.num_generated for e in out)
    return {
        "rollout_policy_tokens_per_s": tokens / seconds,
        "episodes": episodes,
        "policy_tokens": tokens,
        "seconds": seconds,
    }


def update_batch(model: PreTrainedModel, chat: ChatFormat, episodes: list[Episode], group_size: int = 8) -> PreparedBatch:
    """The RL batch of ``episodes`` as an update sees it (shared with ``benchmarks/perf/rl_update.py``).

    Consecutive episodes form GRPO groups of ``group_size`` with rewards alternating 0 / 1 (so every
    advantage is about ±1); the old and reference log-probs (and the reference's control-token
    probabilities) are the model's current ones (ratio 1). Sets each episode's ``group``.
    """
    for i, e in enumerate(episodes):
        e.group = i // group_size
    rewards = torch.tensor([float(i % 2) for i in range(len(episodes))])
    adv = group_advantages(rewards, torch.tensor([e.group for e in episodes]))
    batch = collate(episodes, chat.control, adv.tolist())
    with torch.no_grad():
        logits = batch_logits(model, batch, 1.0)
        logp = torch.log_softmax(logits, -1)
        old = logp.gather(-1, batch.targets[..., None]).squeeze(-1)
        ref_control = logp[..., torch.as_tensor(chat.control.id_list)].exp()
    return PreparedBatch(batch, old, old.clone(), logits.argmax(-1), ref_control)


def bench_update(
    model: PreTrainedModel, chat: ChatFormat, trajectories: list[ExpertTrajectory], episodes: int, repeats: int
) -> dict[str, float]:
    """Seconds per RL update (forward, loss, backward, AdamW step) on ``episodes`` expert
    episodes, and per 1k policy tokens; the mean of ``repeats`` after one warm-up."""
    model.train()
    prepared = update_batch(model, chat, [t.to_episode(chat) for t in trajectories[:episodes]])
    batch = prepared.batch
    cfg = RLConfig(init="unused")
    control_ids = torch.as_tensor(chat.control.id_list)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    tokens = float(batch.loss_mask.sum())
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss, _ = rl_loss(batch_logits(model, batch, 1.0), prepared, cfg, control_ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    per_update = sum(times[1:]) / repeats
    return {
        "update_s_per_1k_tokens": 1000 * per_update / tokens,
        "update_s": per_update,
        "policy_tokens_per_update": tokens,
        "sequence_tokens_per_update": float(batch.attention_mask.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes (seconds).")
    parser.add_argument("--model", help="Local checkpoint to measure (default: a fresh tiny GPT).")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", help="Also write the results as markdown here.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = (
        dict(batch=16, new_tokens=32, naive_rows=4, rollout=16, update=32, repeats=2)
        if args.quick
        else dict(batch=64, new_tokens=64, naive_rows=8, rollout=64, update=64, repeats=5)
    )
    model, chat, trajectories = setup(args.model)
    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()} torch={torch.__version__} "
        f"threads={torch.get_num_threads()} python={platform.python_version()}",
        "model_parameters": count_parameters(model),
        "sampling": bench_sampling(
            model, chat, trajectories, sizes["batch"], sizes["new_tokens"], sizes["naive_rows"]
        ),
        "rollout": bench_rollout(model, chat, sizes["rollout"]),
        "update": bench_update(model, chat, trajectories, sizes["update"], sizes["repeats"]),
    }
    print(json.dumps(results, indent=2))
    s, r, u = results["sampling"], results["rollout"], results["update"]
    lines = [
        "# LLM trainer throughput",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {results['machine']}  ",
        f"Model: tiny GPT-2, {results['model_parameters']:,} parameters",
        "",
        "| measure | value |",
        "|---|---|",
        f"| sampling, batched KV cache (batch {s['batch']}, {s['new_tokens']} new tokens) | {s['batched_kv_tokens_per_s']:.0f} tokens/s |",
        f"| sampling, Hugging Face batched `model.generate` (KV cache), same model and prompts | {s['hf_generate_tokens_per_s']:.0f} tokens/s |",
        f"| speed-up over `model.generate` (the fair baseline) | {s['speedup_vs_hf_generate']:.2f}x |",
        f"| sampling, naive per-sequence loop without cache | {s['naive_tokens_per_s']:.0f} tokens/s |",
        f"| speed-up over the naive loop (what a hand-written loop without cache or batching loses) | {s['speedup']:.1f}x |",
        f"| same work: greedy rows identical to `model.generate` (16 tokens) | {s['greedy_rows_identical_to_hf']} |",
        f"| multi-turn rollouts on Lookup-v0 ({r['episodes']} episodes, envs included) | {r['rollout_policy_tokens_per_s']:.0f} policy tokens/s |",
        f"| RL update (fwd + clipped PG + bwd + AdamW), {u['policy_tokens_per_update']:.0f} policy / {u['sequence_tokens_per_update']:.0f} sequence tokens | {u['update_s_per_1k_tokens']:.3f} s per 1k policy tokens |",
    ]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
