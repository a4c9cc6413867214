"""Command line: ``python -m baselines.train sft|rl [options]``.

Examples::

    python -m baselines.train sft --env ToolGym/Lookup-v0 --config baselines/train/configs/lookup_sft.yaml
    python -m baselines.train rl --env ToolGym/Lookup-v0 --init runs/lookup_sft/model \\
        --config baselines/train/configs/lookup_rl.yaml --supervision sft_mix,control_kl
    python -m baselines.train rl ... --set lr=2e-3 --set supervision.sft_mix_coef=0.1 --resume auto

Precedence: dataclass defaults < ``--config`` YAML < ``--set key=value`` < the named flags.
``--help`` of each command lists every config field with its type, default and help, read from
the field declarations in :mod:`baselines.train.config`.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any

import typer

from baselines.cli import CONTEXT_SETTINGS, config_command, field_help, run_app
from baselines.procs import DirInUseError
from baselines.train.config import CommonConfig, RLConfig, SFTConfig, load_config, parse_supervision
from baselines.train.terms import help_text as supervision_help

PROG = "python -m baselines.train"
PRECEDENCE = ("Precedence: the defaults listed below < --config YAML < --set KEY=VALUE < the named options.")

app = typer.Typer(
    help="Train a policy on a ToolGym env: SFT on oracle trajectories (sft), then GRPO (rl).", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    context_settings=CONTEXT_SETTINGS,
)

EnvOption = Annotated[str | None, typer.Option("--env", help=field_help(CommonConfig, "env"))]
ConfigOption = Annotated[str | None, typer.Option("--config", help="YAML file with config fields.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config field (dotted keys for nested sections, e.g. supervision.sft_mix_coef=0.1); "
         "repeatable.")]
OutOption = Annotated[str | None, typer.Option("--out", help=field_help(CommonConfig, "out_dir"))]
SeedOption = Annotated[int | None, typer.Option("--seed", help=field_help(CommonConfig, "seed"))]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar, warnings only.")]
ResumeOption = Annotated[str | None, typer.Option(
    "--resume", help="Checkpoint dir (OUT/checkpoints/step_N) to continue from, or 'auto' (the newest in --out, if any).")]


def _train(kind: str, config_path: str | None, overrides: list[str] | None, quiet: bool,
           fields: dict[str, Any], resume: str | None = None) -> int:
    """Build the config of ``kind`` (``sft`` or ``rl``), train, print the summary as JSON and return
    the exit code: 1 for a bad config or an ``out_dir`` another process is training into, 2 when
    training diverged."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if quiet:
        fields["progress"] = False
    try:
        trainer: Any
        if kind == "sft":
            from baselines.train.sft import SFTTrainer

            trainer = SFTTrainer(load_config(SFTConfig, config_path, overrides, **fields), resume=resume)
        else:
            from baselines.train.rl import RLTrainer

            trainer = RLTrainer(load_config(RLConfig, config_path, overrides, **fields), resume=resume)
        try:
            summary = trainer.train()
        finally:
            trainer.close()  # Ray actors and the process group end here, not at interpreter exit
    except (ValueError, FileNotFoundError, DirInUseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, default=str))
    return 2 if summary.get("stopped") and "Non-finite" in str(summary.get("stopped")) else 0


@app.command("sft", cls=config_command(SFTConfig), help=f"Supervised fine-tuning on oracle trajectories. {PRECEDENCE}")
def sft(
    env: EnvOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    out: OutOption = None,
    seed: SeedOption = None,
    steps: Annotated[int | None, typer.Option("--steps", help=field_help(SFTConfig, "steps"))] = None,
    init: Annotated[str | None, typer.Option("--init", help=field_help(SFTConfig, "init"))] = None,
    quiet: QuietOption = False,
    resume: ResumeOption = None,
) -> None:
    """Build the SFTConfig from the options, train and exit with the code of :func:`_train`."""
    fields = {"env": env, "out_dir": out, "seed": seed, "steps": steps, "init": init}
    raise typer.Exit(_train("sft", config, overrides, quiet, fields, resume=resume))


@app.command("rl", cls=config_command(RLConfig), help=f"GRPO with supervisory signals. {PRECEDENCE}")
def rl(
    env: EnvOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    out: OutOption = None,
    seed: SeedOption = None,
    steps: Annotated[int | None, typer.Option("--steps", help=field_help(RLConfig, "steps"))] = None,
    init: Annotated[str | None, typer.Option(
        "--init", help=field_help(RLConfig, "init") + " Required (here, in --config or with --set).")] = None,
    quiet: QuietOption = False,
    supervision: Annotated[str | None, typer.Option("--supervision", help=supervision_help())] = None,
    ref: Annotated[str | None, typer.Option("--ref", help=field_help(RLConfig, "ref"))] = None,
    resume: ResumeOption = None,
) -> None:
    """Build the RLConfig from the options, train and exit with the code of :func:`_train`."""
    fields: dict[str, Any] = {"env": env, "out_dir": out, "seed": seed, "steps": steps, "init": init, "ref": ref}
    if supervision is not None:
        fields["supervision.use"] = parse_supervision(supervision)
    raise typer.Exit(_train("rl", config, overrides, quiet, fields, resume=resume))


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit code (1 for a
    bad config, 2 for a usage error or when training diverged)."""
    return run_app(app, argv, PROG)


if __name__ == "__main__":
    sys.exit(main())
