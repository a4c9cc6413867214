"""Where a Code-v0 call's CPU goes: the env's process, the sandbox worker, and what it forks.

Issue 25, item 1: 8 ``Code-v0`` envs reached 1.6× one env's episodes/s on 2 cores, because an
episode costs 14–23 ms of CPU, most of it in the sandbox. This script runs ``print(1 + 1)``
through ``Code-v0`` env steps on a one-worker pool of each backend, back to back and spaced by
20 ms, and reads before and after each block of calls:

* the env's process: CPU time and minor page faults of the whole process (``getrusage``);
* the sandbox worker: its own CPU time (user, system) and minor page faults
  (``/proc/PID/stat``: ``utime``, ``stime``, ``minflt``);
* the worker's children (the forked child that runs each call, and whatever the code started):
  the same fields for the children it has reaped (``cutime``, ``cstime``, ``cminflt``);
* the template, where the worker has one (the process that forks each call's child through an
  intermediate process, so that the child has never held another call's data; see
  ``docs/sandbox.md``): its own fields and its reaped children's (the intermediates).

A minor page fault after ``fork`` is mostly a copy-on-write copy of a 4 KiB page: the worker
(the parent) copies every page it writes while a child shares it, the child every page it writes.
Every output is checked to be ``2`` (same work); the worker must be the same process from start
to end (not restarted, so its counters cover every call). Per call, in ms and faults; the kernel's
CPU clock has a resolution of 1/``SC_CLK_TCK`` s, so blocks are long enough for it (default 400
calls).

Each backend runs twice, side by side: with the worker's template (the default) and with each
call's child forked by the worker itself (the design before: ``docker-worker-fork``, and
``process-worker-fork``, where the process backend's default isolation, bubblewrap here, also
forks the next child after the cleanup, as it did before it had a template).

    python -m benchmarks.perf.call_cost [--quick] [--backends docker,docker-worker-fork,process,process-worker-fork] [--write]
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

from benchmarks.perf._common import header_lines, load, machine, md_table, script_parser, write_results

CODE = "print(1 + 1)"
MODES = {"back to back": 0.0, "spaced 20 ms": 0.020}
TICK = os.sysconf("SC_CLK_TCK")


def proc_counters(pid: int) -> dict[str, float]:
    """CPU seconds and minor faults of ``pid`` and of its reaped children, from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        raw = fh.read()
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = raw[raw.rindex(")") + 2:].split()
    value = {name: int(fields[i - 3]) for name, i in
             (("minflt", 10), ("cminflt", 11), ("utime", 14), ("stime", 15), ("cutime", 16), ("cstime", 17))}
    return {
        "worker_user_s": value["utime"] / TICK, "worker_sys_s": value["stime"] / TICK,
        "worker_faults": value["minflt"], "children_user_s": value["cutime"] / TICK,
        "children_sys_s": value["cstime"] / TICK, "children_faults": value["cminflt"],
    }


def template_pid(worker: int) -> int | None:
    """The worker's template process: its child running ``worker.py --template`` that leads no
    session of its own (the standby children it forks inherit its command line, not its session)."""
    try:
        with open(f"/proc/{worker}/task/{worker}/children", encoding="ascii") as fh:
            children = [int(p) for p in fh.read().split()]
    except OSError:
        return None
    for pid in children:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                raw = fh.read()
        except OSError:
            continue
        session = int(raw[raw.rindex(")") + 2 :].split()[3])
        if b"--template" in cmdline and session != pid:
            return pid
    return None


def template_counters(worker: int) -> dict[str, float]:
    """CPU seconds and minor faults of the worker's template with its reaped children (the
    intermediates); zeros when there is none."""
    pid = template_pid(worker)
    if pid is None:
        return {"template_s": 0.0, "template_faults": 0, "template_pid": 0}
    c = proc_counters(pid)
    return {
        "template_s": c["worker_user_s"] + c["worker_sys_s"] + c["children_user_s"] + c["children_sys_s"],
        "template_faults": c["worker_faults"] + c["children_faults"],
        "template_pid": pid,
    }


def self_counters() -> dict[str, float]:
    """CPU seconds and minor faults of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"env_cpu_s": usage.ru_utime + usage.ru_stime, "env_faults": usage.ru_minflt}


BACKENDS = ("docker", "docker-worker-fork", "process", "process-worker-fork")
"""``docker-worker-fork``: Docker with the worker's ``--fork-from worker``;
``process-worker-fork``: the process backend with ``--standby after-cleanup --fork-from worker``
(how bubblewrap and ``unshare`` workers ran before they had a template: one ``kill(-1)`` per call,
the next child forked by the worker after it)."""


def make_env(kind: str) -> tuple[Any, Any, int]:
    """A Code-v0 env on a one-worker pool of ``kind`` (one of :data:`BACKENDS`), reset and
    warmed by 20 calls; returns ``(env, backend, worker host pid)``."""
    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the envs
    from toolgym.sandbox import make_backend

    if kind == "docker-worker-fork":
        from toolgym.sandbox.docker import DockerBackend

        backend = DockerBackend(pool_size=1, prestart=False)  # started below, with the option
        backend._worker_args = [*backend._worker_args, "--fork-from", "worker"]  # noqa: SLF001
    elif kind == "process-worker-fork":
        from toolgym.sandbox.process import ProcessBackend

        backend = ProcessBackend(pool_size=1, prestart=False)  # started below, with the options
        backend._worker_extra = ["--standby", "after-cleanup", "--fork-from", "worker"]  # noqa: SLF001
    else:
        backend = make_backend(kind, pool_size=1)
    env = gym.make("ToolGym/Code-v0", sandbox=backend, max_turns=10**9)
    env.reset(seed=0)
    for _ in range(20):
        call(env)
    # the pool's only worker (a benchmark may look inside: the counters need its host PID)
    conns = list(backend._pool._all)  # noqa: SLF001
    if len(conns) != 1 or conns[0].worker_pid is None:
        raise RuntimeError(f"expected one sandbox worker with a known PID, found {[c.worker_pid for c in conns]}")
    return env, backend, conns[0].worker_pid


def call(env: Any) -> str:
    """One ``run_python`` step of ``print(1 + 1)``; raises unless it printed 2."""
    action = '<tool_call>{"name": "run_python", "arguments": ' + json.dumps({"code": CODE}) + "}</tool_call>"
    obs, _, _, _, info = env.step(action)
    if info.get("error") is not None or "2" not in obs:
        raise RuntimeError(f"Code-v0 step did not print 2: {info.get('error')}: {obs[:200]!r}")
    return obs


def measure(env: Any, pid: int, calls: int, gap_s: float) -> dict[str, float]:
    """Per-call wall time, CPU and faults over ``calls`` calls spaced by ``gap_s``."""
    before = {**proc_counters(pid), **template_counters(pid), **self_counters()}
    start = time.perf_counter()
    sleeping = 0.0
    for _ in range(calls):
        call(env)
        if gap_s:
            t = time.perf_counter()
            time.sleep(gap_s)
            sleeping += time.perf_counter() - t
    wall = time.perf_counter() - start - sleeping
    after = {**proc_counters(pid), **template_counters(pid), **self_counters()}
    if before["template_pid"] != after["template_pid"]:
        raise RuntimeError("the sandbox worker's template was replaced during the measurement")
    d = {k: after[k] - before[k] for k in after if k != "template_pid"}
    ms = 1e3 / calls
    out = {
        "calls": calls, "wall_ms": wall * ms, "env_cpu_ms": d["env_cpu_s"] * ms, "env_faults": d["env_faults"] / calls,
        "worker_user_ms": d["worker_user_s"] * ms, "worker_sys_ms": d["worker_sys_s"] * ms,
        "worker_faults": d["worker_faults"] / calls, "children_user_ms": d["children_user_s"] * ms,
        "children_sys_ms": d["children_sys_s"] * ms, "children_faults": d["children_faults"] / calls,
        "template_ms": d["template_s"] * ms, "template_faults": d["template_faults"] / calls,
    }
    out["total_cpu_ms"] = (out["env_cpu_ms"] + out["worker_user_ms"] + out["worker_sys_ms"]
                           + out["children_user_ms"] + out["children_sys_ms"] + out["template_ms"])
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI: measure each backend and mode, print the table, optionally write the results."""
    parser = script_parser(__file__, __doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"Comma-separated, of {', '.join(BACKENDS)}.")
    parser.add_argument("--calls", type=int, default=400, help="Calls per block (default 400).")
    parser.add_argument("--repeats", type=int, default=3, help="Blocks per backend and mode (default 3).")
    parser.add_argument("--quick", action="store_true", help="40 calls, 1 repeat.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/call_cost.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.repeats = 40, 1
    kinds = [k.strip() for k in args.backends.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in BACKENDS]
    if unknown or not kinds:
        parser.error(f"--backends: unknown {unknown or kinds!r}; expected a comma-separated subset of {', '.join(BACKENDS)}")
    info = machine()
    results: dict[str, dict[str, list[dict[str, float]]]] = {kind: {mode: [] for mode in MODES} for kind in kinds}
    envs: dict[str, tuple[Any, Any, int]] = {}
    try:
        for kind in kinds:
            envs[kind] = make_env(kind)
        # side by side: each repeat measures every mode of every backend, in rotating order
        for repeat in range(args.repeats):
            order = kinds[repeat % len(kinds):] + kinds[: repeat % len(kinds)]
            for mode, gap in MODES.items():
                for kind in order:
                    env, _, pid = envs[kind]
                    results[kind][mode].append(measure(env, pid, args.calls, gap))
        for kind, (_, backend, pid) in envs.items():
            if [c.worker_pid for c in backend._pool._all] != [pid]:  # noqa: SLF001
                raise RuntimeError(f"the {kind} worker was replaced during the measurement")
    finally:
        for env, backend, _ in envs.values():
            env.close()
            backend.close()
    info["load_at_end"] = load()
    rows = []
    for kind, modes in results.items():
        for mode, blocks in modes.items():
            mid = sorted(blocks, key=lambda b: b["total_cpu_ms"])[len(blocks) // 2]  # the median block
            rows.append([kind, mode, f"{mid['calls'] * len(blocks)}", f"{mid['wall_ms']:.2f}", f"{mid['total_cpu_ms']:.2f}",
                         f"{mid['env_cpu_ms']:.2f}", f"{mid['worker_user_ms']:.2f} + {mid['worker_sys_ms']:.2f}",
                         f"{mid['worker_faults']:.0f}", f"{mid['children_user_ms']:.2f} + {mid['children_sys_ms']:.2f}",
                         f"{mid['children_faults']:.0f}", f"{mid['template_ms']:.2f}", f"{mid['template_faults']:.0f}"])
    table = md_table(["backend", "mode", "calls", "wall ms", "CPU ms, total", "env process CPU ms",
                      "worker CPU ms (user + sys)", "worker faults", "children CPU ms (user + sys)",
                      "children faults", "template CPU ms", "template faults"], rows)
    lines = header_lines("Where a Code-v0 call's CPU goes", info, [
        f"`{CODE}` through `Code-v0` env steps on a one-worker pool per backend; {args.repeats} blocks of "
        f"{args.calls} calls per backend and mode, the backends alternating block by block (rotating order); "
        "the row is the block with the median total CPU. Per call: "
        "wall time (sleeps excluded), CPU time of the env's process, of the sandbox worker and of the "
        "processes it forked (reaped children), of its template with the intermediates it forks (where it has "
        "one: each call's child is forked from it), and minor page faults (after `fork`, mostly copy-on-write "
        f"page copies). CPU clock resolution 1/{TICK} s.",
        "",
        "Same work: every call printed 2, and each backend's worker was the same process throughout.",
        "",
        table,
    ])
    markdown = "\n".join(lines)
    print(markdown)
    if args.write:
        json_path, md_path = write_results("call_cost", {"machine": info, "calls": args.calls, "repeats": args.repeats,
                                                         "results": results}, markdown)
        print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
