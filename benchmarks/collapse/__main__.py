"""Command line of the collapse study.

    python -m benchmarks.collapse run    --configs none,sft_mix --seeds 5 [--env ToolGym/Lookup-v0] [--quick]
    python -m benchmarks.collapse sweep  --lrs 5e-4,1e-3,2e-3 --kls 0,0.05 --seeds 3
    python -m benchmarks.collapse report

``run`` trains the arms × seeds from one SFT checkpoint at the study's learning rate; ``sweep``
trains the vanilla arm over a learning-rate × KL grid (where does collapse appear?); both add
to the same work directory and CSVs, so ``report`` sees everything. Both are resumable: run the
same command again after an interruption.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks.collapse.settings import ARMS, PRESETS, RunSpec, arm_supervision

DEFAULT_ENV = "ToolGym/Lookup-v0"


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _slug(env_id: str) -> str:
    return env_id.replace("/", "_").lower()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default=DEFAULT_ENV, choices=sorted(PRESETS), help=f"Env of the study (default {DEFAULT_ENV}).")
    p.add_argument("--seeds", type=int, default=3, help="Seeds per setting: 0..N-1 (default 3).")
    p.add_argument("--first-seed", type=int, default=0,
                   help="Start the seeds here (FIRST..FIRST+N-1): more seeds of a setting, in another work dir.")
    p.add_argument("--steps", type=int, help="RL steps per run (default: the env preset's).")
    p.add_argument("--jobs", type=int, default=1, help="Runs in parallel, one torch thread each (default 1).")
    p.add_argument("--threads", type=int,
                   help="Torch threads per run (default: 1 with several jobs, else every core); "
                        "--jobs 1 --threads 1 lets two studies share two cores.")
    p.add_argument("--quick", action="store_true", help="Tiny budget, 2 seeds: checks the pipeline in minutes (not a result).")
    p.add_argument("--sft", help="Existing SFT checkpoint to start from (default: train one in the work dir).")
    p.add_argument("--work-dir", type=Path, help="Checkpoints and per-run logs (default runs/collapse[_quick]/<env>).")
    p.add_argument("--out", type=Path, help="CSVs, manifest and report (default runs/collapse[_quick]/results; the committed studies are under benchmarks/results/collapse/).")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="RL config override for every run; repeatable.")


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` / ``sweep`` / ``report`` parser."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="arms × seeds at the study's learning rate")
    _common(run)
    run.add_argument("--configs", default=",".join(ARMS), help=f"Comma-separated arms (default: all of {','.join(ARMS)}).")
    run.add_argument("--lr", type=float, help="Learning rate (default: the env preset's collapse-prone lr).")
    run.add_argument("--kl-coef", type=float, default=0.0, help="k3 KL to the reference on all tokens (default 0).")
    sweep = sub.add_parser("sweep", help="one arm over a learning-rate × KL grid")
    _common(sweep)
    sweep.add_argument("--arm", default="none", help="Arm to sweep (default none = vanilla GRPO).")
    sweep.add_argument("--lrs", type=_floats, default=[5e-4, 1e-3, 2e-3], help="Learning rates (default 5e-4,1e-3,2e-3).")
    sweep.add_argument("--kls", type=_floats, default=[0.0, 0.05], help="KL coefficients (default 0,0.05).")
    report = sub.add_parser("report", help="write REPORT.md and plots from the CSVs")
    report.add_argument("--out", type=Path, help="Directory with steps.csv / runs.csv (default runs/collapse[_quick]/results).")
    report.add_argument("--quick", action="store_true", help="Report on the --quick results directory.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    suffix = "_quick" if args.quick else ""
    out = args.out or Path(f"runs/collapse{suffix}") / "results"
    if args.command == "report":
        from benchmarks.collapse.report import write_report

        try:
            path = write_report(out)
        except FileNotFoundError as exc:  # no results there yet: one line, not a traceback
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
        return 0

    from benchmarks.collapse.runner import preset_for, run_study

    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}.")
    seeds = list(range(args.first_seed, args.first_seed + (2 if args.quick and args.seeds == 3 else args.seeds)))
    preset = preset_for(args.env)
    try:
        if args.command == "run":
            arms = [a.strip() for a in args.configs.split(",") if a.strip()]
            for arm in arms:
                arm_supervision(arm)
            lr = args.lr if args.lr is not None else preset.lr
            specs = [RunSpec(arm, seed, lr, args.kl_coef) for seed in seeds for arm in arms]  # seed-major: an interrupted study has every arm
        else:
            arm_supervision(args.arm)
            specs = [RunSpec(args.arm, seed, lr, kl) for seed in seeds for lr in args.lrs for kl in args.kls]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    work = args.work_dir or Path(f"runs/collapse{suffix}") / _slug(args.env)
    command = "python -m benchmarks.collapse " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    from tqdm.auto import tqdm

    # One bar over the RL steps of every run still to do (with the time left), and a line per
    # finished run above it.
    with tqdm(total=0, desc="collapse study: RL steps", unit="step", dynamic_ncols=True) as bar:

        def on_steps(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            run_study(
                specs, env_id=args.env, work_dir=work, out_dir=out, quick=args.quick, steps=args.steps, sft=args.sft,
                jobs=args.jobs, threads=args.threads, extra=args.set, command=command, progress=bar.write,
                on_steps=on_steps,
            )
        except (ValueError, FileNotFoundError) as exc:  # a bad setting (e.g. --set, --sft): one line, as the trainers'
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return 1
    where = f" --out {shlex.quote(str(out))}" if args.out else (" --quick" if args.quick else "")
    print(f"results in {out}; next: python -m benchmarks.collapse report{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
