"""Train a tiny chat model on ToolGym/Search-v0 with TRL's GRPOTrainer, on CPU.

The TRL part is an ordinary GRPO script; only the env id is ToolGym-specific::

    adapter = TRLAdapter("ToolGym/Search-v0", max_turns=4)
    trainer = GRPOTrainer(model=..., processing_class=..., args=GRPOConfig(...),
                          **adapter.trainer_kwargs(num_tasks=...))

Without ``--model`` a tiny GPT-2 and BPE tokenizer are built from scratch (nothing is
downloaded) and warm-started for ``--sft-steps`` steps on the env's oracle episodes, so that
GRPO sees some tool calls and some reward variance. With ``--model PATH`` any local chat
checkpoint is used as is (Qwen2.5/Qwen3 tokenizers work out of the box).

Run::

    pip install 'toolgym[trl]'
    python examples/trl_grpo_search.py --steps 2 --out runs/trl_search

(about 9 minutes wall clock on a busy 2-core machine, 3.5 CPU-minutes: tokenizer and warm-start
on Search episodes of up to 1024 tokens, then 2 GRPO steps of 8 rollouts). The script shows the
plumbing; a model this small and this briefly warm-started rarely calls a tool correctly on
Search, so most rewards are 0 and GRPO has little signal. Use ``--sft-steps 500`` or
``--model`` with a real checkpoint (or ``--env ToolGym/Lookup-v0``) to see learning.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("trl_grpo_search")


def load_chat_model(path: str | None, env_id: str, sft_steps: int, env_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The local checkpoint at ``path`` (tokenizer left-padded, for generation), or without one a
    tiny model built from scratch by :func:`build_tiny_chat_model`."""
    if path:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        return model, AutoTokenizer.from_pretrained(path, local_files_only=True, padding_side="left")
    return build_tiny_chat_model(env_id, sft_steps, env_kwargs)


def build_tiny_chat_model(env_id: str, sft_steps: int, env_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """A from-scratch tiny GPT-2 + tokenizer with the ChatML template, warm-started on oracle
    episodes rendered by that template (native tool calls)."""

    from baselines.llm.model import TinyLMConfig, build_tiny_model, fit_sequences
    from baselines.llm.tokenizer import train_tokenizer
    from toolgym.integrations import oracle_conversations
    from toolgym.integrations.trl import TRLAdapter

    tools = TRLAdapter(env_id, **env_kwargs).tools
    conversations = oracle_conversations(env_id, 300, **env_kwargs)
    renderer = train_tokenizer(["x"], vocab_size=300)
    texts = [renderer.apply_chat_template(c, tools=tools, tokenize=False) for c in conversations]
    # EOS is <|im_end|> and generation_config stops there (train_tokenizer / build_tiny_model).
    tokenizer = train_tokenizer(texts, vocab_size=1024, model_max_length=1024)
    config = TinyLMConfig(arch="gpt2", d_model=64, n_layers=2, n_heads=4, d_ff=192, max_positions=1024)
    model = build_tiny_model(config, tokenizer, seed=0)
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"][: config.max_positions] for t in texts]

    def log(step: int, loss: float) -> None:
        if step % 10 == 0 or step == sft_steps - 1:
            logger.info("warm-start SFT step %d: loss %.3f", step, loss)

    fit_sequences(model, encoded, pad_id=tokenizer.pad_token_id, steps=sft_steps, batch_size=8, lr=3e-3, seed=0, on_step=log)
    return model, tokenizer


def main() -> None:
    """Parse arguments, build or load the model, and run GRPO on the env."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="ToolGym/Search-v0", help="Any ToolGym env id (plugins included).")
    parser.add_argument("--model", default=None, help="Local HF chat checkpoint; default: a tiny model built here.")
    parser.add_argument("--sft-steps", type=int, default=40, help="Warm-start steps for the tiny model.")
    parser.add_argument("--steps", type=int, default=4, help="GRPO optimisation steps.")
    parser.add_argument("--num-generations", type=int, default=4, help="Rollouts per task (GRPO group size).")
    parser.add_argument("--tasks-per-step", type=int, default=2, help="GRPO groups per step.")
    parser.add_argument("--lr", type=float, default=1e-4, help="Learning rate.")
    parser.add_argument("--out", default="runs/trl_grpo_search", help="Output directory.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch
    from trl import GRPOConfig, GRPOTrainer

    from toolgym.integrations.trl import TRLAdapter, prepare_tokenizer

    torch.manual_seed(0)
    env_kwargs: dict[str, Any] = {"max_turns": 4, "max_output_chars": 300}
    model, tokenizer = load_chat_model(args.model, args.env, args.sft_steps, env_kwargs)
    prepare_tokenizer(tokenizer)

    # ---- the ToolGym-specific part: one adapter per env id --------------------------------
    adapter = TRLAdapter(args.env, **env_kwargs)
    batch = args.num_generations * args.tasks_per_step
    config = GRPOConfig(
        output_dir=args.out,
        max_steps=args.steps,
        per_device_train_batch_size=batch,
        num_generations=args.num_generations,
        max_completion_length=256,
        max_tool_calling_iterations=4,
        learning_rate=args.lr,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=config,
        **adapter.trainer_kwargs(num_tasks=batch // args.num_generations * args.steps),
    )
    trainer.train()
    # -----------------------------------------------------------------------------------------

    rewards = [e.reward for e in adapter.episodes]
    errors = sum(len(e.error_codes) for e in adapter.episodes)
    logger.info(
        "%d episodes: mean ToolGym reward %.3f, success %.2f, %d typed ToolGym errors",
        len(rewards), sum(rewards) / max(len(rewards), 1),
        sum(e.success for e in adapter.episodes) / max(len(rewards), 1), errors,
    )
    trainer.save_model(str(Path(args.out) / "final"))
    logger.info("saved to %s", Path(args.out) / "final")


if __name__ == "__main__":
    main()
