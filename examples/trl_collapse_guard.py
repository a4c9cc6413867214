"""GRPO with TRL on a ToolGym env, guarded against collapse: ToolGym's diagnostics and supervision in TRL.

An ordinary ``GRPOTrainer`` script with the guard added; the lines that differ are marked
``# guard``::

    adapter = TRLAdapter("ToolGym/Lookup-v0", max_turns=4)
    guard = CollapseGuard(adapter, supervision=["sft_mix", "control_kl", "spike_penalty"], on_spike="stop")  # guard
    trainer = GuardedGRPOTrainer(guard=guard, model=..., processing_class=..., args=GRPOConfig(...),       # guard
                                 **adapter.trainer_kwargs(num_tasks=...))
    trainer.train()

Every metric goes through TRL's logging (``report_to``): ``diag/probe/…`` and ``diag/onpolicy/…``
(control-token probabilities), ``toolgym/errors/<code>``, ``diag/spike_*`` / ``diag/collapse*`` and
``guard/<term>``. This script also writes the logged entries to ``OUT/guard_metrics.json`` (main
process), which the tests read.

Without ``--model`` a tiny GPT-2 and BPE tokenizer are built from scratch (nothing is downloaded)
and warm-started for ``--sft-steps`` steps on oracle episodes. Runs under ``accelerate launch``
unchanged (CPU: ``accelerate launch --multi_gpu --num_processes 2 examples/trl_collapse_guard.py``).

Run::

    pip install 'toolgym[trl]'
    python examples/trl_collapse_guard.py --steps 2 --out runs/trl_guard
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

logger = logging.getLogger("trl_collapse_guard")


def main() -> None:
    """Parse arguments, build or load the model, and run guarded GRPO on the env."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="ToolGym/Lookup-v0", help="Any ToolGym env id.")
    parser.add_argument("--model", default=None, help="Local HF chat checkpoint; default: a tiny model built here.")
    parser.add_argument("--sft-steps", type=int, default=40, help="Warm-start steps for the tiny model.")
    parser.add_argument("--steps", type=int, default=4, help="GRPO optimisation steps.")
    parser.add_argument("--num-generations", type=int, default=4, help="Rollouts per task (GRPO group size).")
    parser.add_argument("--tasks-per-step", type=int, default=2, help="GRPO groups per step and process.")
    parser.add_argument("--max-completion-length", type=int, default=128, help="Tokens per rollout.")
    parser.add_argument("--probe-size", type=int, default=8, help="Oracle trajectories in the teacher-forced probe.")
    parser.add_argument("--supervision", default="sft_mix,control_kl,control_clip,spike_penalty,offpolicy_expert",
                        help="Comma-separated supervision terms ('' for diagnostics only).")
    parser.add_argument("--on-spike", default=None, choices=["stop", "rollback"], help="Action when the spike detector fires.")
    parser.add_argument("--lr", type=float, default=1e-4, help="Learning rate.")
    parser.add_argument("--out", default="runs/trl_collapse_guard", help="Output directory.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch
    from transformers import TrainerCallback
    from trl import GRPOConfig

    from baselines.integrations.trl_guard import CollapseGuard, GuardedGRPOTrainer
    from toolgym.integrations.trl import TRLAdapter, prepare_tokenizer

    torch.manual_seed(0)
    env_kwargs: dict[str, Any] = {"max_turns": 4, "max_output_chars": 300}
    from trl_grpo_search import load_chat_model

    model, tokenizer = load_chat_model(args.model, args.env, args.sft_steps, env_kwargs)
    prepare_tokenizer(tokenizer)

    logged: list[dict[str, Any]] = []

    class KeepLogs(TrainerCallback):
        def on_log(self, _args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                logged.append(dict(logs))

    adapter = TRLAdapter(args.env, **env_kwargs)
    batch = args.num_generations * args.tasks_per_step
    config = GRPOConfig(
        output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=batch,
        num_generations=args.num_generations, max_completion_length=args.max_completion_length,
        max_tool_calling_iterations=4, learning_rate=args.lr, logging_steps=1, report_to=[],
        save_strategy="no", use_cpu=not torch.cuda.is_available(), seed=0, disable_tqdm=True,
    )
    supervision = [s for s in args.supervision.split(",") if s]
    guard = CollapseGuard(adapter, supervision=supervision, probe_size=args.probe_size, sft_mix_batch=2,  # guard
                          on_spike=args.on_spike)
    trainer = GuardedGRPOTrainer(
        guard=guard, model=model, processing_class=tokenizer, args=config, callbacks=[KeepLogs()],  # guard
        **adapter.trainer_kwargs(num_tasks=batch * trainer_processes() * args.steps),
    )
    trainer.train()

    if trainer.accelerator.is_main_process:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        record = {"num_processes": trainer.accelerator.num_processes, "fired": guard.fired, "logs": logged}
        (out / "guard_metrics.json").write_text(json.dumps(record, indent=1, default=float), encoding="utf-8")
        last = logged[-1] if logged else {}
        logger.info(
            "%d steps on %d process(es): probe illegal_total %.4f, on-policy illegal_total %.4f, control_kl %s, "
            "spike flag %s; metrics in %s", trainer.state.global_step, trainer.accelerator.num_processes,
            last.get("diag/probe/illegal_total", float("nan")), last.get("diag/onpolicy/illegal_total", float("nan")),
            last.get("guard/control_kl"), last.get("diag/spike_ratio"), out / "guard_metrics.json",
        )
    # every rank leaves together and the process group is torn down before the interpreter exits
    # (a rank that exits while another still writes can abort in the collective backend's teardown)
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    if trainer_processes() > 1:
        # Under a distributed launch, leave without the interpreter's own teardown: with the
        # process group already destroyed, torch's collective-backend threads can still abort
        # the process at exit ("terminate called without an active exception", SIGABRT), about
        # one launch in four on a 2-core CPU machine, after all work and output are done.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def trainer_processes() -> int:
    """Processes of this launch (``accelerate launch`` sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


if __name__ == "__main__":
    main()
