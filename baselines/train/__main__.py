"""Command line: ``python -m baselines.train sft|rl [options]``.

Examples::

    python -m baselines.train sft --env ToolGym/Lookup-v0 --config baselines/train/configs/lookup_sft.yaml
    python -m baselines.train rl --env ToolGym/Lookup-v0 --init runs/lookup_sft/model \\
        --config baselines/train/configs/lookup_rl.yaml --supervision sft_mix,control_kl
    python -m baselines.train rl ... --set lr=2e-3 --set supervision.sft_mix_coef=0.1 --resume auto

Precedence: dataclass defaults < ``--config`` YAML < ``--set key=value`` < the named flags.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from baselines.train.config import RLConfig, SFTConfig, load_config, parse_supervision
from baselines.train.terms import help_text as supervision_help


def build_parser() -> argparse.ArgumentParser:
    """The ``sft`` / ``rl`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m baselines.train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("sft", "supervised fine-tuning on oracle trajectories"), ("rl", "GRPO with supervisory signals")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--env", help="Env id, e.g. ToolGym/Search-v0.")
        p.add_argument("--config", help="YAML file with config fields.")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="Override a field (dotted keys for nested sections); repeatable.")
        p.add_argument("--out", dest="out_dir", help="Output directory.")
        p.add_argument("--seed", type=int)
        p.add_argument("--steps", type=int)
        p.add_argument("--init", help="Local HF checkpoint to start from (required for rl).")
        p.add_argument("--quiet", action="store_true", help="No progress bar, warnings only.")
        if name == "rl":
            p.add_argument("--supervision", default=None,
                           help=supervision_help())
            p.add_argument("--ref", help="Reference policy checkpoint (default: --init).")
            p.add_argument("--resume", help="Checkpoint dir to resume from, or 'auto'.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (2 when training diverged)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    fields = {"env": args.env, "out_dir": args.out_dir, "seed": args.seed, "steps": args.steps, "init": args.init}
    if args.quiet:
        fields["progress"] = False
    try:
        if args.command == "sft":
            from baselines.train.sft import SFTTrainer

            config = load_config(SFTConfig, args.config, args.set, **fields)
            summary = SFTTrainer(config).train()
        else:
            from baselines.train.rl import RLTrainer

            if args.supervision is not None:
                fields["supervision.use"] = parse_supervision(args.supervision)
            fields["ref"] = args.ref
            config = load_config(RLConfig, args.config, args.set, **fields)
            summary = RLTrainer(config, resume=args.resume).train()
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, default=str))
    return 2 if summary.get("stopped") and "Non-finite" in str(summary.get("stopped")) else 0


if __name__ == "__main__":
    sys.exit(main())
