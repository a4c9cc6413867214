"""``toolgym sandbox build`` streams its commands' output (issue 22 item 7), without building."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from typer.testing import CliRunner

from toolgym.sandbox import cli
from toolgym.sandbox.base import SandboxError
from toolgym.sandbox.image import OUTPUT_TAIL_CHARS, BuildReport, _run_step

PRINT_LINES = (
    "import sys\nfor i in range(3):\n    print(f'line {i}', flush=True)\nprint('to stderr', file=sys.stderr)"
)


def test_run_step_streams_every_line_stdout_and_stderr() -> None:
    seen: list[str] = []
    steps: list[str] = []
    _run_step([sys.executable, "-c", PRINT_LINES], steps, timeout=30, on_output=seen.append)
    assert seen == ["line 0", "line 1", "line 2", "to stderr"]
    assert steps == [f"{sys.executable} -c {PRINT_LINES}"]


def test_run_step_splits_carriage_return_progress_into_lines() -> None:
    seen: list[str] = []
    code = "import sys\nsys.stdout.write('10%\\r50%\\r100%\\ndone')"
    _run_step([sys.executable, "-c", code], [], timeout=30, on_output=seen.append)
    assert seen == ["10%", "50%", "100%", "done"]


def test_a_failing_step_quotes_the_tail_of_its_output() -> None:
    code = (
        "import sys\nprint('early ' * 1000)\nprint('late line', flush=True)\n"
        "print('the real cause', file=sys.stderr)\nsys.exit(3)"
    )
    with pytest.raises(SandboxError) as info:
        _run_step([sys.executable, "-c", code], [], timeout=30)
    message = str(info.value)
    assert "failed with status 3" in message
    assert "late line" in message and "the real cause" in message
    tail = message.split(":\n", 1)[1]
    assert len(tail) <= OUTPUT_TAIL_CHARS
    assert tail.startswith("early")  # the start of the 5000-char line is cut off


def test_a_step_past_its_deadline_is_killed_with_its_output() -> None:
    code = "import time\nprint('started', flush=True)\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)"
    seen: list[str] = []
    with pytest.raises(SandboxError, match=r"did not finish within 0\.5 s") as info:
        _run_step([sys.executable, "-c", code], [], timeout=0.5, on_output=seen.append)
    assert "started" in str(info.value) and "tick" in str(info.value)
    assert seen[0] == "started" and "tick" in seen


def test_a_silent_step_past_its_deadline_is_killed() -> None:
    with pytest.raises(SandboxError, match="did not finish within 0.3 s"):
        _run_step([sys.executable, "-c", "import time; time.sleep(30)"], [], timeout=0.3)


def fake_build(lines: list[str]) -> Any:
    def build_image(method: str, name: str, *, mirror: str | None, on_output: Any) -> BuildReport:
        for line in lines:
            on_output(line)
        return BuildReport(name, "dockerfile", 1.5, 42.0, ["docker build ..."])

    return build_image


LINES = [
    "#1 [internal] load build definition",
    "#5 [2/3] RUN apt-get install [python3]",
    "#7 writing image sha256:abc",
]


def test_build_verbose_prints_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "build_image", fake_build(LINES))
    result = CliRunner().invoke(cli.app, ["build", "--method", "dockerfile", "-v"])
    assert result.exit_code == 0, result.output
    for line in LINES:
        assert line in result.output  # printed verbatim, "[python3]" not eaten as markup
    assert "built toolgym-sandbox:latest with dockerfile" in result.output


def test_build_shows_the_latest_line_in_the_spinner(monkeypatch: pytest.MonkeyPatch) -> None:
    updates: list[str] = []

    class Status:
        def update(self, text: str) -> None:
            updates.append(text)

    @contextmanager
    def status(text: str) -> Iterator[Status]:
        updates.append(text)
        yield Status()

    monkeypatch.setattr(cli, "build_image", fake_build([*LINES, "x" * 300]))
    monkeypatch.setattr(cli.console, "status", status)
    result = CliRunner().invoke(cli.app, ["build", "--method", "dockerfile"])
    assert result.exit_code == 0, result.output
    assert updates[0] == "building toolgym-sandbox:latest (dockerfile) ..."
    assert "load build definition" in updates[1]
    assert "RUN apt-get install \\[python3]" in updates[2]  # escaped for rich markup
    assert updates[-1].endswith("x" * 97 + "...[/dim]")  # long lines are shortened
    assert not any(line in result.output for line in LINES)  # quiet mode prints no log lines
