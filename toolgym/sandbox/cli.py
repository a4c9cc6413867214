"""``toolgym sandbox build|check|sweep``: a typer sub-app (mounted by ``toolgym.cli``).

Also runnable on its own: ``python -m toolgym.sandbox.cli build``.
"""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from toolgym.sandbox.base import SandboxError, SandboxUnavailable
from toolgym.sandbox.image import BUILD_METHODS, DEFAULT_IMAGE, apt_mirror, build_image, check

app = typer.Typer(help="Build and check the code sandbox (Docker image, process fallback).")
console = Console()


@app.command()
def build(
    method: str = typer.Option(
        "auto", help=f"One of {', '.join(BUILD_METHODS)}: debootstrap needs no registry."
    ),
    name: str = typer.Option(DEFAULT_IMAGE, help="Image name:tag to create."),
    mirror: str | None = typer.Option(
        None, help="Debian mirror for debootstrap (default: from /etc/apt sources)."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Print every build step and every line of its output."
    ),
) -> None:
    """Build the sandbox image (Debian bookworm + python3 + the worker).

    The spinner shows the build's latest output line; ``-v`` prints all of it.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    if method in ("auto", "debootstrap"):
        console.print(f"apt mirror: [bold]{mirror or apt_mirror()}[/bold]")
    title = f"building {name} ({method})"
    try:
        with console.status(f"{title} ...") as status:

            def show(line: str) -> None:
                if verbose:
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
                else:
                    status.update(f"{title}: [dim]{escape(_shorten(line.strip()))}[/dim]")

            report = build_image(method, name, mirror=mirror, on_output=show)
    except (SandboxError, SandboxUnavailable) as exc:
        console.print(f"[red]build failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]built[/green] {report.name} with {report.method} in {report.seconds} s"
        + (f", {report.size_mb} MB" if report.size_mb else "")
    )


@app.command("check")
def check_command(
    name: str = typer.Option(DEFAULT_IMAGE, help="Image to check."),
    process: bool = typer.Option(True, help="Also check the process backend."),
) -> None:
    """Report whether the sandboxes work here, with timings."""
    report = check(name)
    table = Table(title="ToolGym sandbox")
    table.add_column("check")
    table.add_column("result")
    table.add_row("docker daemon", _mark(report.daemon, report.daemon_detail))
    table.add_row(
        "image " + name, _mark(report.image_present, "present" if report.image_present else "missing")
    )
    if report.start_s is not None:
        table.add_row("container start", f"{report.start_s} s")
    if report.first_call_ms is not None:
        table.add_row("first call", f"{report.first_call_ms} ms")
    if report.p50_ms is not None:
        table.add_row("call p50 (print(1+1))", f"{report.p50_ms} ms")
    table.add_row("docker backend", _mark(report.ok, "works" if report.ok else "unavailable"))
    process_ok = True
    if process:
        from toolgym.sandbox.process import ProcessBackend

        try:
            with ProcessBackend(pool_size=1) as backend:
                result = backend.run("print(1 + 1)")
                process_ok = result.stdout == "2\n"
                table.add_row(
                    "process backend",
                    _mark(process_ok, f"isolation={backend.isolation} ({backend.isolation_detail})"),
                )
        except (SandboxError, SandboxUnavailable) as exc:
            process_ok = False
            table.add_row("process backend", _mark(False, str(exc)))
    console.print(table)
    for problem in report.problems:
        console.print(f"[yellow]-[/yellow] {problem}")
    if not report.ok and not process_ok:
        raise typer.Exit(1)


@app.command()
def sweep(
    all_owners: bool = typer.Option(
        False, "--all", help="Remove every sandbox container and staging dir, not only orphans."
    ),
) -> None:
    """Remove leftovers of dead processes: sandbox containers and staging directories."""
    from toolgym.sandbox.docker import sweep_containers
    from toolgym.sandbox.pool import sweep_staging

    removed = sweep_containers(all_owners=all_owners)
    console.print(f"removed {len(removed)} container(s)" + (f": {', '.join(removed)}" if removed else ""))
    dirs = sweep_staging(all_owners=all_owners)
    console.print(f"removed {len(dirs)} staging dir(s)" + (f": {', '.join(dirs)}" if dirs else ""))


def _shorten(line: str, width: int = 100) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def _mark(ok: bool, detail: str) -> str:
    return f"[green]ok[/green]  {detail}" if ok else f"[red]no[/red]  {detail}"


if __name__ == "__main__":
    app()
