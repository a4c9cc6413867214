"""How long a second ``gym.make`` of each built-in env takes, with and without ToolGym's cache of
compiled tool validators, side by side in one run.

Every env instance builds its tools anew. Checking a tool's JSON Schema against the meta-schema
(``jsonschema``) and compiling its validator (``fastjsonschema``) used to happen for every
instance; ``toolgym.core.tools`` now does both once per process and schema. The *uncached* column
clears that cache before each ``gym.make``, which is exactly the previous cost. The first make of
each env (loading its data, building the search index) is excluded: it is done once before timing.

Same work: the envs made both ways must expose the same tools (same OpenAI schemas) whose
validators accept and reject the same sample arguments (checked and reported).

``Code-v0`` is made with ``sandbox="process"`` (no Docker calls) and, when Docker is available,
with ``sandbox="docker"`` on its own row: its construction checks the daemon and the image.

Docker, before and after the Engine API client (issue 25 item 4), side by side: the checks a
``DockerBackend`` makes at construction (before: ``docker version`` and ``docker image inspect``
as CLI processes; after: a ping and an image inspect on this process's SDK client), and starting
one pool container until its worker says hello (before: ``docker run -d`` as a CLI process, the
command line :meth:`DockerBackend.container_argv` still gives; after: create + start requests).
Same work: both ways report the same daemon version and image recipe, and every started
container's worker runs ``print(6 * 7)`` and prints 42 (checked, reported).

    python -m benchmarks.perf.make_latency --quick
    python -m benchmarks.perf.make_latency --write
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.perf._common import (
    header_lines,
    load,
    machine,
    md_table,
    percentile,
    script_parser,
    write_results,
)

TARGET_MS = 1.0
TARGET_CODE_MS = 5.0
SAMPLE_ARGUMENTS: tuple[Any, ...] = ({}, {"query": "x"}, {"expression": "1+1"}, {"key": 3}, [], {"code": ""})


def _make_kwargs(env_id: str, docker: bool = False) -> dict[str, Any]:
    return {"sandbox": "docker" if docker else "process"} if env_id.endswith("/Code-v0") else {}


def _fingerprint(env: Any) -> list[Any]:
    """The env's tools and their verdicts on sample arguments."""
    tools = env.unwrapped.tools
    return [(name, tool.to_openai(), [tool.validate(a) is None for a in SAMPLE_ARGUMENTS])
            for name, tool in sorted(tools.items())]


def time_makes(env_id: str, repeats: int, *, docker: bool = False) -> dict[str, Any]:
    """p50/p95 ms of ``gym.make`` + ``close`` with the validator cache warm, and with it cleared
    before each make (alternating), and whether both gave the same tools."""
    import gymnasium as gym

    from toolgym.core import tools as tools_module

    kwargs = _make_kwargs(env_id, docker)
    first = gym.make(env_id, **kwargs)  # data, index, validators: built once
    reference = _fingerprint(first)
    first.close()
    cached: list[float] = []
    uncached: list[float] = []
    same = True
    for _ in range(repeats):
        for clear, sink in ((False, cached), (True, uncached)):
            if clear:
                tools_module._validator_for.cache_clear()
            start = time.perf_counter()
            env = gym.make(env_id, **kwargs)
            sink.append((time.perf_counter() - start) * 1e3)
            same = same and _fingerprint(env) == reference
            env.close()
    return {"cached_p50_ms": percentile(cached, 0.5), "cached_p95_ms": percentile(cached, 0.95),
            "uncached_p50_ms": percentile(uncached, 0.5), "uncached_p95_ms": percentile(uncached, 0.95),
            "makes": repeats, "same_tools": same}


def docker_side_by_side(repeats: int) -> dict[str, Any]:
    """Construction checks and container starts through the docker CLI (before) and the Engine
    API (after), alternating; p50 ms of each and whether both did the same work."""
    import os
    import subprocess

    from toolgym.sandbox import engine
    from toolgym.sandbox.docker import DockerBackend
    from toolgym.sandbox.image import DEFAULT_IMAGE, RECIPE_LABEL, docker_cli, image_recipe, require_docker
    from toolgym.sandbox.pool import WorkerConnection

    cli = docker_cli()
    if cli is None:
        raise RuntimeError("the docker CLI is needed for the 'before' side")

    def checks_cli() -> tuple[str, str]:
        version = subprocess.run([cli, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        label = subprocess.run([cli, "image", "inspect", "--format", f'{{{{ index .Config.Labels "{RECIPE_LABEL}" }}}}',
                                DEFAULT_IMAGE], capture_output=True, text=True, check=True).stdout.strip()
        return version, label

    def checks_sdk() -> tuple[str, str]:
        return require_docker(DEFAULT_IMAGE), image_recipe(DEFAULT_IMAGE) or ""

    engine.api()  # the client (and its one version request) is made once per process, not timed
    backend = DockerBackend(pool_size=1, prestart=False)
    counter = iter(range(10**6))

    def start_cli() -> WorkerConnection:
        name = f"toolgym-bench-cli-{os.getpid()}-{next(counter)}"
        socket_dir = backend.make_socket_dir(name)
        return WorkerConnection(backend.container_argv(name, socket_dir), name=name, start_timeout=60,
                                on_kill=backend._remove_container, listen_path=os.path.join(socket_dir, "host.sock"))

    def works(conn: WorkerConnection) -> bool:
        return backend.execute(conn, "print(6 * 7)", timeout=10.0, files=None, wipe_after=True).stdout == "42\n"

    times: dict[str, list[float]] = {"checks_cli": [], "checks_sdk": [], "start_cli": [], "start_sdk": []}
    answers: dict[str, set[tuple[str, str]]] = {"cli": set(), "sdk": set()}
    all_ran = True
    try:
        for _ in range(repeats):
            for side, check in (("cli", checks_cli), ("sdk", checks_sdk)):
                t = time.perf_counter()
                answers[side].add(check())
                times[f"checks_{side}"].append((time.perf_counter() - t) * 1e3)
            for side, start in (("cli", start_cli), ("sdk", backend._start_worker)):
                t = time.perf_counter()
                conn = start()
                times[f"start_{side}"].append((time.perf_counter() - t) * 1e3)
                try:
                    all_ran = works(conn) and all_ran
                finally:
                    conn.kill()
    finally:
        backend.close()
    out: dict[str, Any] = {f"{k}_p50_ms": percentile(v, 0.5) for k, v in times.items()}
    out.update(repeats=repeats, same_answers=answers["cli"] == answers["sdk"] and len(answers["cli"]) == 1,
               answers={k: sorted(v) for k, v in answers.items()}, all_containers_ran=all_ran)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table; optionally write results."""
    parser = script_parser(__file__, __doc__)
    parser.add_argument("--quick", action="store_true", help="5 makes per env and variant.")
    parser.add_argument("--repeats", type=int, default=40, help="Makes per env and variant.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/make_latency.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 5
    import logging

    logging.disable(logging.WARNING)
    import toolgym  # noqa: F401 - registers the envs
    from toolgym.registry import BUILTIN_ENVS

    info = machine()
    results: dict[str, dict[str, Any]] = {}
    for entry in BUILTIN_ENVS:
        try:
            results[entry.id] = time_makes(entry.id, args.repeats)
        except Exception as exc:  # noqa: BLE001 - e.g. an optional package missing: report it
            results[entry.id] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
        r = results[entry.id]
        shown = r["error"] if "error" in r else (
            f"cached {r['cached_p50_ms']:.3f} ms, uncached {r['uncached_p50_ms']:.3f} ms")
        print(f"{entry.id:40s} {shown} (load {load()[0]})", flush=True)
    docker_row: dict[str, Any] | None = None
    try:
        from toolgym.sandbox.image import DEFAULT_IMAGE, daemon_reachable, image_present

        if daemon_reachable()[0] and image_present(DEFAULT_IMAGE):
            docker_row = time_makes("ToolGym/Code-v0", max(3, args.repeats // 4), docker=True)
    except Exception as exc:  # noqa: BLE001
        docker_row = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    docker_ab: dict[str, Any] | None = None
    if docker_row is not None and "error" not in docker_row:
        try:
            docker_ab = docker_side_by_side(max(3, args.repeats // 4))
        except Exception as exc:  # noqa: BLE001 - e.g. no docker CLI for the "before" side
            docker_ab = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    info["load_at_end"] = load()
    rows, verdicts = [], []
    for env_id, r in results.items():
        if "error" in r:
            rows.append([env_id, "n/a", "n/a", "n/a", "n/a", r["error"]])
            continue
        target = TARGET_CODE_MS if env_id.endswith("/Code-v0") else TARGET_MS
        met = r["cached_p50_ms"] <= target
        verdicts.append(met)
        rows.append([env_id + (' (sandbox="process")' if env_id.endswith("/Code-v0") else ""),
                     r["cached_p50_ms"], r["cached_p95_ms"], r["uncached_p50_ms"],
                     f"{r['uncached_p50_ms'] / r['cached_p50_ms']:.1f}×",
                     f"≤ {target:g} ms: {'met' if met else 'not met'}"])
    if docker_row is not None and "error" not in docker_row:
        rows.append(['ToolGym/Code-v0 (sandbox="docker")', docker_row["cached_p50_ms"], docker_row["cached_p95_ms"],
                     docker_row["uncached_p50_ms"], f"{docker_row['uncached_p50_ms'] / docker_row['cached_p50_ms']:.1f}×",
                     f"≤ {TARGET_CODE_MS:g} ms: {'met' if docker_row['cached_p50_ms'] <= TARGET_CODE_MS else 'not met'}"])
    non_code = [r for env_id, r in results.items() if "error" not in r and not env_id.endswith("/Code-v0")]
    all_met = all(r["cached_p50_ms"] <= TARGET_MS for r in non_code)
    same = all(r.get("same_tools", True) for r in results.values()) and (
        docker_row is None or docker_row.get("same_tools", True))
    lines = header_lines(
        "Second gym.make of each built-in env: with vs without the validator cache", info,
        [f"{args.repeats} makes (+ close) per env and variant, alternating; p50/p95 of wall time. Uncached = the "
         "validator cache cleared before each make (the previous cost: schema check + compilation per tool).", "",
         ("Same work: the envs made both ways had the same tools (OpenAI schemas) and their validators gave the "
          "same verdicts on sample arguments." if same else "**Same work NOT confirmed**: tools differed."), "",
         f"Target: a second gym.make of every non-code env ≤ {TARGET_MS:g} ms (p50): "
         f"**{'met' if all_met else 'not met'}** (slowest: "
         f"{max((r['cached_p50_ms'] for r in non_code), default=float('nan')):.3f} ms).", ""],
    )
    markdown = "\n".join([*lines, md_table(
        ["env", "p50 ms", "p95 ms", "uncached p50 ms", "uncached ÷ cached", "target"], rows)])
    if docker_ab is not None and "error" not in docker_ab:
        ab = docker_ab
        markdown += "\n".join([
            "", "", "## Docker: the CLI (before) and the Engine API client (after), side by side", "",
            f"{ab['repeats']} of each, alternating; p50 of wall time. "
            + ("Same work: both sides reported the same daemon version and image recipe "
               f"({ab['answers']['sdk'][0][0]}, {ab['answers']['sdk'][0][1]})" if ab["same_answers"]
               else f"**Same work NOT confirmed**: answers differed ({ab['answers']})")
            + ("; every started container's worker printed 42." if ab["all_containers_ran"]
               else "; **a started container did not run the test code**."), "",
            md_table(["operation", "CLI p50 ms", "Engine API p50 ms", "CLI ÷ API"], [
                ["construction checks (daemon, image)", ab["checks_cli_p50_ms"], ab["checks_sdk_p50_ms"],
                 f"{ab['checks_cli_p50_ms'] / ab['checks_sdk_p50_ms']:.1f}×"],
                ["start a pool container until its worker says hello", ab["start_cli_p50_ms"], ab["start_sdk_p50_ms"],
                 f"{ab['start_cli_p50_ms'] / ab['start_sdk_p50_ms']:.2f}×"],
            ]),
        ])
    elif docker_ab is not None:
        markdown += f"\n\nDocker side by side: not run ({docker_ab['error']})."
    print()
    print(markdown)
    if args.write:
        paths = write_results("make_latency", {"machine": info, "args": vars(args), "results": results,
                                               "code_docker": docker_row, "docker_cli_vs_api": docker_ab}, markdown)
        print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
