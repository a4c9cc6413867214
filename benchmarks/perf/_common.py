"""Shared helpers of the side-by-side performance benchmarks (machine info, statistics, output)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "perf"
PEER_PYTHON_ENV = "TOOLGYM_PEER_PYTHON"
"""Environment variable naming the peer venv's interpreter (see README.md here)."""


def script_module(path: str | os.PathLike[str]) -> str:
    """The dotted module name of a script in this repository (``benchmarks/perf/x.py`` gives
    ``benchmarks.perf.x``), the name to run it by with ``python -m`` from the repository root.

    Raises:
        ValueError: if ``path`` is not a ``.py`` file inside the repository.
    """
    resolved = Path(path).resolve()
    if resolved.suffix != ".py" or not resolved.is_relative_to(ROOT):
        raise ValueError(f"{path} is not a .py file inside {ROOT}; expected a script of this repository.")
    parts = resolved.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__main__" else parts)


def script_parser(path: str | os.PathLike[str], description: str | None) -> argparse.ArgumentParser:
    """The command-line parser of the script at ``path``: its usage line shows how to run it
    (``python -m benchmarks.perf.<script>``) and its help shows ``description`` as written."""
    return argparse.ArgumentParser(prog=f"python -m {script_module(path)}", description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def command_line() -> str:
    """The command that reproduces this run, from the repository root:
    ``python -m benchmarks.perf.<script> ARGS``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:  # run with -m
        module = spec.name.removesuffix(".__main__")
    else:  # run by path, with the repository on PYTHONPATH
        try:
            module = script_module(sys.argv[0])
        except ValueError:
            return shlex.join(["python", *sys.argv])
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def load() -> tuple[float, float, float]:
    """The 1/5/15-minute load averages."""
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (else what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU, core count, OS and Python of this machine, plus the current load."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_at_start": load(),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """Median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def peer_python(explicit: str | None = None) -> str | None:
    """The interpreter of the venv holding the peer libraries, if one is configured.

    Order: ``explicit`` (a script's ``--peer-python``), then ``$TOOLGYM_PEER_PYTHON``; there is
    no default location.

    Raises:
        FileNotFoundError: if the configured interpreter does not exist.
    """
    for source, candidate in (("--peer-python", explicit), (f"${PEER_PYTHON_ENV}", os.environ.get(PEER_PYTHON_ENV))):
        if candidate:
            if not Path(candidate).exists():
                raise FileNotFoundError(f"{source} names {candidate!r}, which does not exist; expected the "
                                        "python of a venv with the peer libraries (see benchmarks/perf/README.md).")
            return candidate
    return None


def run_worker(python: str, module: str, args: Sequence[str], timeout: float = 600) -> dict[str, Any]:
    """Run ``python -m module --worker ...`` (from the repository root, which is also put on
    ``PYTHONPATH``) and return the JSON object it prints on its last line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [python, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {python} -m {module} {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (numbers right-aligned)."""

    def cell(x: Any) -> str:
        if isinstance(x, float):
            if x != x:  # NaN
                return "n/a"
            return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``benchmarks/results/perf/<name>.json`` and ``.md``; return their paths."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {**data, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    json_path = RESULTS / f"{name}.json"
    md_path = RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path


def header_lines(title: str, info: dict[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """The markdown preamble: title, reproducing command, machine and load."""
    busy = info["load_at_start"][0] > (info["cores"] or 1)
    lines = [
        f"# {title}",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}, Python {info['python']}; "
        f"load average {info['load_at_start']} at start, {info.get('load_at_end')} at end.",
        "",
    ]
    if busy:
        lines += [
            "**The machine was shared and busy** (load above its core count): absolute numbers are "
            "inflated and noisy; the systems were measured in the same run (interleaved where the text "
            "below says so), so compare "
            "the ratios, not the absolute numbers across runs.",
            "",
        ]
    return lines + list(extra)
