"""Code-tool rollouts with vector envs: episodes/s for 1, 4, 8, 16 and 64 envs, side by side.

Every system plays the same episodes: three code-tool calls (``print(sum(i * i for i in
range(N)))``, a different ``N`` per call and episode), then a final answer. All sub-envs of a
vector env play in lockstep (same-step autoreset), so one round = 4 vector steps = one episode
per sub-env. Each tool output is checked against the value the snippet must print, and the script
says whether every system did this same work.

* **ToolGym**: ``gym.make_vec("ToolGym/Code-v0", num_envs=n, sandbox="docker")`` as a user gets it:
  ``workers="auto"`` steps the sub-envs in n threads, and every sub-env's Docker pool (one warm
  container each) is started at construction, in parallel. The final answer does not compile, so
  grading runs nothing in the sandbox (the peers' answers are string matches). A second row,
  ``workers=1``, is the sequential loop (Gymnasium's ``SyncVectorEnv`` behaviour) on the same
  pools.
* **ToolGym, simulated remote sandbox**: the same loop on a benchmark env whose ``run_python``
  tool only waits (``--wait-ms``, default 5 ms, e.g. a remote sandbox or API) and then returns
  the value the snippet prints; it declares ``concurrent_tools = True``. It shows how the vector
  env scales when tool calls wait rather than compute (the local Docker sandbox's calls cost CPU
  in the container, which caps scaling at the machine's cores: see the CPU table).
* **GEM**: its thread-pool vector env ``gem.vector.AsyncVectorEnv`` of
  ``ToolEnvWrapper(QaEnv, tools=[PythonCodeTool()])`` (``<python>`` actions; the tool runs
  ``python -c`` in a fresh temp dir per call), with a list-backed QaEnv.
* **SkyRL-Gym**: ``skyrl_gym.make("searchcode")`` (its env with ``PythonCodeExecutorToolGroup``:
  ``python -c`` per call), one env per episode as SkyRL's generator makes them; SkyRL-Gym has no
  vector env, so its n envs are stepped in a thread pool of n threads, as SkyRL's generator runs
  ``env.step`` off its event loop (its best case).

For the peers, ``python`` on ``PATH`` is this interpreter (not a pyenv shim). Episodes/s =
episodes finished ÷ wall seconds of the timed rounds (construction and warm-up excluded; the
construction time is reported separately). Systems are interleaved per repeat at each size; the
median of the repeats is reported. The peers must import in this interpreter: if they do not and
a peer interpreter is configured (``--peer-python`` or ``$TOOLGYM_PEER_PYTHON``), the script
re-runs itself there (with this checkout on ``PYTHONPATH``); otherwise ToolGym runs alone.

    python -m benchmarks.perf.vector_rollout --quick
    TOOLGYM_PEER_PYTHON=/path/to/peer-venv/bin/python python -m benchmarks.perf.vector_rollout --write
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.perf._common import (
    ROOT,
    header_lines,
    load,
    machine,
    md_table,
    peer_python,
    script_module,
    script_parser,
    write_results,
)
from benchmarks.perf.code_latency import _python_first_on_path

CALLS = 3
"""Code-tool calls per episode (then a final answer)."""
SIZES = (1, 4, 8, 16, 64)
TARGET_SIZE, TARGET_SPEEDUP = 8, 5.0
SYSTEMS = ("toolgym", "toolgym_seq", "toolgym_wait", "gem", "skyrl")
WAIT_ENV_ID = "ToolGymBench/WaitCode-v0"
LABELS = {
    "toolgym": "ToolGym make_vec Code-v0 (Docker pools, workers=auto)",
    "toolgym_seq": "ToolGym make_vec Code-v0 (Docker pools, workers=1: sequential)",
    "toolgym_wait": "ToolGym make_vec, simulated remote sandbox (tool waits, workers=auto)",
    "gem": "GEM AsyncVectorEnv, ToolEnvWrapper + PythonCodeTool",
    "skyrl": "SkyRL-Gym searchcode envs in a thread pool",
}
PEER_MODULES = {"gem": "gem", "skyrl": "skyrl_gym"}


def snippet(episode: int, call: int) -> tuple[str, str]:
    """The code of ``call`` in ``episode`` and the line it must print."""
    n = 1000 + 7 * episode + call
    return f"print(sum(i * i for i in range({n})))", str(sum(i * i for i in range(n)))


Outputs = list[tuple[str, str]]
"""(expected line, observation text) of every timed tool call."""


class Rollout:
    """A vector of ``n`` envs that plays rounds of episodes; ``run(rounds)`` returns the tool
    outputs, ``close()`` frees everything."""

    def run(self, rounds: int) -> Outputs:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _register_wait_env(wait_s: float) -> None:
    """Register :data:`WAIT_ENV_ID`: one ``run_python`` tool that waits ``wait_s`` and returns
    what the benchmark's snippet prints (a stand-in for a remote sandbox)."""
    import re

    import gymnasium as gym

    from toolgym.core.env import ToolEnv
    from toolgym.core.tasks import Task, TaskSet
    from toolgym.core.tools import Tool
    from toolgym.vector import vector_entry_point

    class WaitCodeEnv(ToolEnv):
        concurrent_tools = True

        def __init__(self, **kwargs: Any) -> None:
            tasks = [Task(id=f"t{i}", prompt="Compute it.", answer="1") for i in range(8)]
            super().__init__(tasks=TaskSet(tasks, name="bench", split="train"), **kwargs)

        def make_tools(self) -> list[Tool]:
            def run_python(code: str) -> str:
                time.sleep(wait_s)
                n = int(re.search(r"range\((\d+)\)", code).group(1))  # type: ignore[union-attr]
                return f"exit code: 0\nstdout:\n{sum(i * i for i in range(n))}"

            return [Tool("run_python", "Run Python remotely.", {
                "type": "object", "properties": {"code": {"type": "string", "minLength": 1}},
                "required": ["code"], "additionalProperties": False}, fn=run_python)]

        def check_answer(self, task: Task, answer: str) -> bool:
            return answer.strip() == str(task.answer)

    if WAIT_ENV_ID in gym.registry:
        del gym.registry[WAIT_ENV_ID]
    gym.register(id=WAIT_ENV_ID, entry_point=WaitCodeEnv, vector_entry_point=vector_entry_point(WAIT_ENV_ID))


class ToolGymRollout(Rollout):
    def __init__(self, n: int, workers: int | str, env_id: str = "ToolGym/Code-v0") -> None:
        import gymnasium as gym

        import toolgym  # noqa: F401 - registers the envs

        self.n = n
        kwargs = {"sandbox": "docker"} if env_id == "ToolGym/Code-v0" else {}
        self.envs = gym.make_vec(env_id, num_envs=n, autoreset_mode="SameStep", workers=workers,
                                 max_turns=CALLS + 1, **kwargs)
        self.envs.reset(seed=0)
        self.episode = 0

    def run(self, rounds: int) -> Outputs:
        out: Outputs = []
        for _ in range(rounds):
            base = self.episode
            for call in range(CALLS):
                codes = [snippet(base + j, call) for j in range(self.n)]
                actions = tuple('<tool_call>{"name": "run_python", "arguments": {"code": "' + code + '"}}</tool_call>'
                                for code, _ in codes)
                obs, *_ = self.envs.step(actions)
                out += [(expected, obs[j]) for j, (_, expected) in enumerate(codes)]
            self.envs.step(tuple("<answer>not python (</answer>" for _ in range(self.n)))
            self.episode += self.n
        return out

    def close(self) -> None:
        self.envs.close()


class GemRollout(Rollout):
    def __init__(self, n: int) -> None:
        from gem.tools.python_code_tool import PythonCodeTool
        from gem.vector.async_vector_env import AsyncVectorEnv

        from benchmarks.perf.env_overhead import _gem_env

        self.n = n
        self.envs = AsyncVectorEnv(
            env_ids=["qa"] * n,
            env_fns=[(lambda j=j: _gem_env(True, seed=j, tool=PythonCodeTool())) for j in range(n)],
        )
        self.envs.reset()
        self.episode = 0

    def run(self, rounds: int) -> Outputs:
        out: Outputs = []
        for _ in range(rounds):
            base = self.episode
            for call in range(CALLS):
                codes = [snippet(base + j, call) for j in range(self.n)]
                obs, *_ = self.envs.step([f"<python>{code}</python>" for code, _ in codes])
                out += [(expected, obs[j]) for j, (_, expected) in enumerate(codes)]
            self.envs.step(["<answer>Country 1</answer>"] * self.n)
            self.episode += self.n
        return out

    def close(self) -> None:
        self.envs.thread_pool_executer.shutdown()  # GEM's vector envs have no close()


class SkyrlRollout(Rollout):
    def __init__(self, n: int) -> None:
        self.n = n
        self.pool = ThreadPoolExecutor(n)
        self.episode = 0

    @staticmethod
    def _new_env() -> Any:
        import skyrl_gym

        env = skyrl_gym.make("searchcode", extras={"reward_spec": {"ground_truth": {"target": "1"}},
                                                   "max_turns": CALLS + 1})
        env.init([{"role": "user", "content": "Question: compute it.\n"}])
        return env

    def _episode(self, episode: int) -> Outputs:
        env = self._new_env()
        out: Outputs = []
        for call in range(CALLS):
            code, expected = snippet(episode, call)
            step = env.step(f"<tool><python>{code}</python></tool>")
            out.append((expected, " ".join(m["content"] for m in step["observations"])))
        step = env.step("<solution>1</solution>")
        assert step["done"], "SkyRL-Gym episode did not end on <solution>"
        env.close()
        return out

    def run(self, rounds: int) -> Outputs:
        # Each sub-env steps in its own thread; a whole episode per task is the same lockstep
        # work as 4 vector steps (the threads never wait for each other between steps, which
        # only favours SkyRL-Gym).
        out: Outputs = []
        for _ in range(rounds):
            for result in self.pool.map(self._episode, range(self.episode, self.episode + self.n)):
                out += result
            self.episode += self.n
        return out

    def close(self) -> None:
        self.pool.shutdown()


FACTORIES: dict[str, Callable[[int], Rollout]] = {
    "toolgym": lambda n: ToolGymRollout(n, "auto"),
    "toolgym_seq": lambda n: ToolGymRollout(n, 1),
    "toolgym_wait": lambda n: ToolGymRollout(n, "auto", WAIT_ENV_ID),
    "gem": GemRollout,
    "skyrl": SkyrlRollout,
}


def _container_cpu_s() -> float:
    """CPU seconds used so far by this process's sandbox containers (cgroup v1 or v2 accounting;
    0 when neither can be read)."""
    import subprocess

    from toolgym.sandbox.docker import LABEL, owner_label

    ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label={LABEL}.owner={owner_label()}"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    total = 0.0
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        try:
            if v1.exists():
                total += int(v1.read_text()) / 1e9
            elif v2.exists():
                usage = next(line for line in v2.read_text().splitlines() if line.startswith("usage_usec"))
                total += int(usage.split()[1]) / 1e6
        except (OSError, StopIteration, ValueError):
            continue
    return total


def _cpu_s(system: str) -> float:
    """CPU seconds used so far by this process, its children (the peers' ``python -c``) and, for
    ToolGym, its sandbox containers."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + (
        _container_cpu_s() if system in ("toolgym", "toolgym_seq") else 0.0)


def checked(outputs: Outputs) -> tuple[int, int]:
    """(calls whose observation contains the expected line, calls)."""
    return sum(expected in observation for expected, observation in outputs), len(outputs)


def measure(system: str, n: int, rounds: int) -> dict[str, Any]:
    """Build ``system`` with ``n`` envs, warm it up with one round, time ``rounds`` rounds."""
    start = time.perf_counter()
    rollout = FACTORIES[system](n)
    built = time.perf_counter() - start
    try:
        rollout.run(1)  # warm-up: first calls, imports, thread start
        cpu = _cpu_s(system)
        start = time.perf_counter()
        outputs = rollout.run(rounds)
        seconds = time.perf_counter() - start
        cpu = _cpu_s(system) - cpu
    finally:
        rollout.close()
    good, calls = checked(outputs)
    return {"episodes": rounds * n, "seconds": seconds, "episodes_per_s": rounds * n / seconds,
            "cpu_ms_per_episode": cpu * 1e3 / (rounds * n), "construct_s": built, "calls": calls, "calls_ok": good}


def _rerun_in_peer(argv: list[str], explicit: str | None) -> bool:
    """Re-run this script with the peer interpreter if the peers do not import here."""
    if all(importlib.util.find_spec(m) for m in PEER_MODULES.values()):
        return False
    python = peer_python(explicit)
    # Venv interpreters are symlinks to one base interpreter: compare the venvs, not the targets.
    if python is None or os.path.abspath(python) == os.path.abspath(sys.executable):
        return False
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    print(f"peers not importable here: re-running with {python}", flush=True)
    os.execve(python, [python, "-m", script_module(__file__), *argv], env)
    return True  # pragma: no cover - execve does not return


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table; optionally write results."""
    parser = script_parser(__file__, __doc__)
    parser.add_argument("--quick", action="store_true", help="Sizes 1 and 8, 1 repeat, 8 episodes per size.")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="Comma-separated numbers of envs.")
    parser.add_argument("--episodes", type=int, default=64, help="Episodes timed per system, size and repeat.")
    parser.add_argument("--repeats", type=int, default=3, help="Repeats per size (median reported).")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"Subset of {','.join(SYSTEMS)}.")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="Wait per call of the simulated remote sandbox.")
    parser.add_argument("--peer-python", help="Interpreter of a venv with gem-llm and skyrl-gym.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/vector_rollout.*")
    raw = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(raw)
    if _rerun_in_peer(raw, args.peer_python):
        return
    if args.quick:
        args.sizes, args.repeats, args.episodes = "1,8", 1, 8
    import logging

    logging.disable(logging.WARNING)
    _python_first_on_path()
    from toolgym.sandbox.image import DEFAULT_IMAGE, daemon_reachable, image_present

    _register_wait_env(args.wait_ms / 1e3)
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = [s for s in args.systems.split(",") if s]
    missing: dict[str, str] = {}
    for system in wanted:
        if system in PEER_MODULES and importlib.util.find_spec(PEER_MODULES[system]) is None:
            missing[system] = f"{PEER_MODULES[system]} not importable (no peer interpreter configured)"
        elif system in ("toolgym", "toolgym_seq") and not (daemon_reachable()[0] and image_present(DEFAULT_IMAGE)):
            missing[system] = f"Docker daemon or image {DEFAULT_IMAGE} missing"
    active = [s for s in wanted if s not in missing]
    info = machine()
    print(f"systems: {active}; not measured: {missing or 'none'}", flush=True)
    workdir = tempfile.mkdtemp(prefix="toolgym-perf-")
    cwd = os.getcwd()
    os.chdir(workdir)  # GEM makes its temp dirs in the working directory
    results: dict[str, dict[int, list[dict[str, Any]]]] = {s: {n: [] for n in sizes} for s in active}
    try:
        for n in sizes:
            rounds = max(1, math.ceil(args.episodes / n))
            for repeat in range(args.repeats):
                order = active[repeat % len(active):] + active[: repeat % len(active)]
                for system in order:
                    got = measure(system, n, rounds)
                    results[system][n].append(got)
                    print(f"n={n:>2} {system:<12} {got['episodes_per_s']:8.1f} episodes/s "
                          f"(built in {got['construct_s']:.1f} s; outputs ok {got['calls_ok']}/{got['calls']}; "
                          f"load {load()[0]})", flush=True)
    finally:
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_at_end"] = load()

    summary: dict[str, dict[int, dict[str, Any]]] = {}
    for system in active:
        summary[system] = {}
        for n in sizes:
            runs = results[system][n]
            summary[system][n] = {
                "episodes_per_s": statistics.median(r["episodes_per_s"] for r in runs),
                "construct_s": statistics.median(r["construct_s"] for r in runs),
                "cpu_ms_per_episode": statistics.median(r["cpu_ms_per_episode"] for r in runs),
                "calls_ok": sum(r["calls_ok"] for r in runs), "calls": sum(r["calls"] for r in runs),
            }
    same_work = all(summary[s][n]["calls_ok"] == summary[s][n]["calls"] for s in active for n in sizes)
    rows = []
    for system in active:
        one = summary[system][sizes[0]]["episodes_per_s"]
        rows.append([LABELS[system]] + [summary[system][n]["episodes_per_s"] for n in sizes]
                    + [f"{summary[system][sizes[-1]]['episodes_per_s'] / one:.1f}×"])
    ratio_rows = []
    if "toolgym" in summary:
        for peer in ("toolgym_seq", "gem", "skyrl"):
            if peer in summary:
                ratio_rows.append([f"ToolGym ÷ {LABELS[peer]}"] + [
                    f"{summary['toolgym'][n]['episodes_per_s'] / summary[peer][n]['episodes_per_s']:.1f}×"
                    for n in sizes])
    construct_rows = [[LABELS[s]] + [summary[s][n]["construct_s"] for n in sizes] for s in active]
    cores = os.cpu_count() or 1
    cpu_rows = [[LABELS[s]] + [f"{summary[s][n]['cpu_ms_per_episode']:.1f} ({1e3 * cores / summary[s][n]['cpu_ms_per_episode']:,.0f})"
                               for n in sizes] for s in active]
    verdict: list[str] = []
    if "toolgym" in summary and TARGET_SIZE in sizes and 1 in sizes:
        speedup = summary["toolgym"][TARGET_SIZE]["episodes_per_s"] / summary["toolgym"][1]["episodes_per_s"]
        verdict = [f"Target: {TARGET_SIZE} Code-v0 envs with the Docker pool ≥ {TARGET_SPEEDUP:g}× the episodes/s "
                   f"of one env: **{'met' if speedup >= TARGET_SPEEDUP else 'not met'}** ({speedup:.1f}×).", ""]
    if "toolgym_wait" in summary and TARGET_SIZE in sizes and 1 in sizes:
        wait_speedup = (summary["toolgym_wait"][TARGET_SIZE]["episodes_per_s"]
                        / summary["toolgym_wait"][1]["episodes_per_s"])
        verdict.append(f"With a tool that waits {args.wait_ms:g} ms per call instead of computing (simulated remote "
                       f"sandbox), {TARGET_SIZE} envs reach {wait_speedup:.1f}× the episodes/s of one.")
        verdict.append("")
    check = ("Same work: every system's every timed tool output contained the value its snippet must print "
             f"({sum(summary[s][n]['calls'] for s in active for n in sizes):,} calls checked)."
             if same_work else
             "**Same work NOT confirmed**: some outputs lacked the expected value: " + "; ".join(
                 f"{s} n={n}: {summary[s][n]['calls_ok']}/{summary[s][n]['calls']}"
                 for s in active for n in sizes if summary[s][n]["calls_ok"] != summary[s][n]["calls"]))
    lines = header_lines(
        "Code-tool rollouts with vector envs: ToolGym vs GEM vs SkyRL-Gym", info,
        [f"Episodes of {CALLS} code-tool calls + a final answer, all sub-envs in lockstep; {args.episodes} episodes "
         f"timed per system, size and repeat (rounded up to whole rounds), after one warm-up round; median of "
         f"{args.repeats} repeats, systems interleaved. See the script's docstring for each system's setup.", "",
         check, ""]
        + ([f"Not measured: {'; '.join(f'{s}: {w}' for s, w in missing.items())}", ""] if missing else []),
    )
    markdown = "\n".join([
        *lines, *verdict,
        "Episodes per second by number of envs:", "",
        md_table(["system", *(f"{n} envs" for n in sizes), f"{sizes[-1]} ÷ {sizes[0]}"], rows), "",
        *(["ToolGym (workers=auto) ÷ each row, same number of envs:", "",
           md_table(["ratio", *(f"{n} envs" for n in sizes)], ratio_rows), ""] if ratio_rows else []),
        f"CPU ms per episode, all processes of the system (ToolGym: this process and its sandbox containers; "
        f"peers: this process and its `python -c` children), and in brackets the episodes/s that {cores} fully "
        "free cores could give at that cost (a CPU-bound ceiling; the machine was shared, so the other jobs' "
        "CPU is not in it):", "",
        md_table(["system", *(f"{n} envs" for n in sizes)], cpu_rows), "",
        "Construction seconds (make_vec, including starting and warming every sub-env's sandbox for ToolGym):", "",
        md_table(["system", *(f"{n} envs" for n in sizes)], construct_rows),
    ])
    print()
    print(markdown)
    if args.write:
        data = {"machine": info, "args": vars(args), "same_work": same_work, "summary": summary, "runs": results}
        paths = write_results("vector_rollout", data, markdown)
        print(f"\nwrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
