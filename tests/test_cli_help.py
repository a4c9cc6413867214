"""``--help`` of every entry point comes from one place: the config dataclasses' field help
(``python -m baselines.train``, ``python -m baselines.agents.sb3``) and the agent registry
(``toolgym run`` / ``toolgym leaderboard``); all of them are typer apps (issue 23, item 7)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("yaml")  # the trainer configs load YAML (the train extra)

from baselines.agents.sb3 import TrainConfig
from baselines.agents.sb3 import cli as sb3_cli
from baselines.cli import MISSING_HELP, config_command, config_panel_title, config_rows, run_app
from baselines.llm.model import TinyLMConfig
from baselines.train.__main__ import app as train_app
from baselines.train.__main__ import main as train_main
from baselines.train.config import RLConfig, SFTConfig, SupervisionConfig
from tests.conftest import REPO

WIDE = {"COLUMNS": "2000", "TERMINAL_WIDTH": "2000"}
"""No wrapping: a help line is one output line."""


def help_of(app: typer.Typer, *args: str) -> str:
    """The ``--help`` output of ``app args``, unwrapped."""
    result = CliRunner().invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _help(cls: type, name: str) -> str:
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["help"]


@pytest.mark.parametrize("cls", [SFTConfig, RLConfig, SupervisionConfig, TinyLMConfig, TrainConfig])
def test_every_config_field_declares_its_help(cls: type) -> None:
    missing = [key for key, _, _, text in config_rows(cls) if text == MISSING_HELP or not text.strip()]
    assert not missing, f"{cls.__name__} fields without metadata help: {missing}"


@pytest.mark.parametrize(("command", "cls"), [("sft", SFTConfig), ("rl", RLConfig)])
def test_train_help_lists_every_config_field_with_type_default_and_help(command: str, cls: type) -> None:
    text = help_of(train_app, command)
    assert config_panel_title(cls) in text
    lines = text.splitlines()
    for key, typ, default, field_text in config_rows(cls):
        row = next((line for line in lines if line.strip("│ ").startswith(key + " ")), None)
        assert row is not None, f"{key} is not listed under `{command} --help`"
        assert typ in row and default in row and field_text in row, row


def test_train_help_shows_named_fields_help_where_it_was_declared() -> None:
    rl = help_of(train_app, "rl")
    sft = help_of(train_app, "sft")
    for name in ("warmup_steps", "grad_clip", "lr_schedule"):
        assert _help(RLConfig, name) in rl and _help(SFTConfig, name) in sft
    assert _help(SupervisionConfig, "sft_mix_coef") in rl and "supervision.sft_mix_coef" in rl
    assert _help(TinyLMConfig, "d_model") in sft and "model.d_model" in sft
    # the named options take their help from the field they set
    steps_rl = next(line for line in rl.splitlines() if "--steps" in line)
    steps_sft = next(line for line in sft.splitlines() if "--steps" in line)
    assert _help(RLConfig, "steps") in steps_rl and _help(SFTConfig, "steps") in steps_sft


def test_train_keeps_its_flags_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    rl = help_of(train_app, "rl")
    for flag in ("--env", "--config", "--set", "--out", "--seed", "--steps", "--init", "--quiet",
                 "--supervision", "--ref", "--resume", "-h"):
        assert flag in rl
    assert train_main(["rl", "--no-such-flag"]) == 2
    assert "No such option: --no-such-flag" in capsys.readouterr().err
    assert train_main(["sft", "-h"]) == 0
    assert train_main(["rl", "--init", "x", "--set", "lrr=1", "--quiet"]) == 1
    assert "Unknown config key 'lrr' for RLConfig. Did you mean 'lr'?" in capsys.readouterr().err


def test_config_fields_are_listed_without_rich_markup_too() -> None:
    app = typer.Typer(rich_markup_mode=None)

    @app.command(cls=config_command(TinyLMConfig))
    def only() -> None:
        """A command configured by TinyLMConfig."""

    text = help_of(app)
    assert config_panel_title(TinyLMConfig) in text
    assert "d_model (int, default 128)" in text and _help(TinyLMConfig, "d_model") in text


def test_run_app_returns_the_exit_code_a_command_raises() -> None:
    app = typer.Typer()

    @app.command()
    def only(code: int) -> None:
        raise typer.Exit(code)

    assert run_app(app, ["3"], "prog") == 3
    assert run_app(app, ["0"], "prog") == 0
    assert run_app(app, [], "prog") == 2  # missing argument: a usage error


def test_sb3_train_options_take_help_and_defaults_from_train_config() -> None:
    text = help_of(sb3_cli, "train")
    for flag, name in (("--env", "env_id"), ("--out", "out"), ("--timesteps", "timesteps"),
                       ("--n-envs", "n_envs"), ("--torch-threads", "torch_threads"), ("--split", "split")):
        line = next(line for line in text.splitlines() if f"{flag} " in line)
        assert _help(TrainConfig, name) in line, line
        default = next(f for f in dataclasses.fields(TrainConfig) if f.name == name).default
        if default is not dataclasses.MISSING:
            assert f"[default: {default}]" in line, line
    assert "ppo|dqn|maskable_ppo" in text
    assert {"train", "eval"} <= set(help_of(sb3_cli).split())


def test_serve_help_names_its_flags() -> None:
    for module in ("torch", "transformers", "fastapi", "uvicorn"):  # the serve and train extras
        pytest.importorskip(module)
    from baselines.serve import cli as serve_cli
    from baselines.serve import main as serve_main

    text = help_of(serve_cli)
    for flag in ("--model", "--host", "--port", "--threads", "--tool-format"):
        assert flag in text
    assert "[default: 8000]" in text
    assert serve_main(["--port", "1"]) == 2  # --model is required


def test_python_m_train_help_lists_the_fields_without_importing_torch() -> None:
    code = ("import sys, runpy; sys.argv = ['baselines.train', 'rl', '--help']\n"
            "try: runpy.run_module('baselines.train', run_name='__main__')\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**WIDE, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "warmup_steps" in done.stdout and _help(RLConfig, "grad_clip") in done.stdout
