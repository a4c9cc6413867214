"""Shared command-line machinery of the baselines' entry points (``python -m baselines.train``,
``python -m baselines.serve``, ``python -m baselines.agents.sb3``).

They use typer, like the ``toolgym`` command line, and take their help from the config
dataclasses: each field declares its help once, as ``field(metadata={"help": ...})``;
:func:`field_help` gives it to the option that sets the field and :func:`config_command` lists
every field (type, default, help) under ``--help``, including those only reachable through
``--config`` YAML or ``--set KEY=VALUE``.

Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
"""``context_settings`` of every baselines app: ``-h`` works as it did under argparse."""

MISSING_HELP = "(no help text)"


def field_help(cls: type, name: str) -> str:
    """The help text of field ``name`` of the config dataclass ``cls`` (its ``metadata["help"]``),
    escaped for typer's rich markup.

    Raises:
        KeyError: if ``cls`` has no field ``name`` (naming the fields it has).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise KeyError(f"{cls.__name__} has no field {name!r}; its fields are {sorted(fields)}.")
    return escape(fields[name].metadata.get("help", MISSING_HELP))


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of the config dataclass ``cls`` (``default_factory()`` for a
    factory; :data:`dataclasses.MISSING` for a required field)."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def type_name(typ: Any) -> str:
    """A field type as written in the source: ``int``, ``float | None``, ``list[str]``."""
    if isinstance(typ, type) and not typing.get_args(typ):
        return typ.__name__
    return str(typ).replace("typing.", "").replace("NoneType", "None")


def config_rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(key, type, default, help)`` for every field of the config dataclass ``cls``, in
    declaration order; a nested config dataclass (``supervision``, ``model``) contributes its own
    fields under dotted keys (``supervision.sft_mix_coef``), as ``--set`` and YAML spell them."""
    hints = typing.get_type_hints(cls)
    rows: list[tuple[str, str, str, str]] = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        typ = hints[field.name]
        if dataclasses.is_dataclass(typ):
            rows.extend(config_rows(typ, prefix=f"{prefix}{field.name}."))  # type: ignore[arg-type]
            continue
        default = field_default(cls, field.name)
        shown = "required" if default is dataclasses.MISSING else repr(default)
        rows.append((prefix + field.name, type_name(typ), shown, field.metadata.get("help", MISSING_HELP)))
    return rows


def config_panel_title(cls: type) -> str:
    """Title of the panel :func:`config_command` adds to ``--help``."""
    return f"{cls.__name__} fields (--config YAML or --set KEY=VALUE)"


class ConfigHelpCommand(TyperCommand):
    """A typer command whose ``--help`` ends with every field of :attr:`config_class` (type,
    default, help); subclass it through :func:`config_command`."""

    config_class: type | None = None

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        """typer's help, then the config fields (a rich panel, or a plain section without rich markup)."""
        super().format_help(ctx, formatter)
        if self.config_class is None:
            return
        rows = config_rows(self.config_class)
        title = config_panel_title(self.config_class)
        if self.rich_markup_mode is None:
            with formatter.section(title):
                formatter.write_dl([(f"{key} ({typ}, default {default})", text) for key, typ, default, text in rows])
            return
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, show_edge=False)
        for column, style in (("key", "bold cyan"), ("type", "yellow"), ("default", "dim"), ("help", "")):
            table.add_column(column, style=style, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        width = os.environ.get("TERMINAL_WIDTH")  # the variable typer's own help console honours
        console = Console(width=int(width) if width else None, highlight=False)
        console.print(Panel(table, title=title, title_align="left", border_style="dim"))


def config_command(cls: type) -> type[ConfigHelpCommand]:
    """A :class:`ConfigHelpCommand` class (for ``app.command(cls=...)``) that lists the fields of
    the config dataclass ``cls`` under ``--help``."""
    return type(f"{cls.__name__}HelpCommand", (ConfigHelpCommand,), {"config_class": cls})


def run_app(app: typer.Typer, argv: Sequence[str] | None, prog_name: str, obj: Any = None) -> int:
    """Run ``app`` on ``argv`` (``None``: ``sys.argv[1:]``) as typer runs a console script, but
    return the exit code instead of exiting: 0, the code of a ``typer.Exit`` the command raised,
    2 for a usage error (which typer shows on stderr). ``obj`` becomes the command's ``ctx.obj``."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name=prog_name, obj=obj)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


__all__ = [
    "CONTEXT_SETTINGS",
    "ConfigHelpCommand",
    "config_command",
    "config_panel_title",
    "config_rows",
    "field_default",
    "field_help",
    "run_app",
    "type_name",
]
