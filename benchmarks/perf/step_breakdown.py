"""Where a ToolGym step's time goes: CPU microseconds per component, on the env_overhead workload.

Each component is timed with this thread's CPU time, taking the minimum over repeats (robust on a
shared machine). The components are a whole episode through ``gym.make`` (reset + 3 tool calls +
answer), the same without wrappers, reset, one tool-call step, action parsing, tool dispatch
(validation + the trivial tool), schema validation alone, the tool alone, the final-answer
step (parsing + grading), and one env-step of 8 envs stepped together (same-step autoreset) by
``gym.make_vec``'s default vector env and by Gymnasium's ``SyncVectorEnv``. ``--profile`` adds a
cProfile of 2,000 episodes.

To compare two checkouts (for example before and after a change), run the script once with each,
from this repository's root. ``--toolgym-root`` changes only where ``toolgym`` is imported from:
the workload (``benchmarks.perf.env_overhead``) is always this checkout's.

    python -m benchmarks.perf.step_breakdown
    python -m benchmarks.perf.step_breakdown --toolgym-root /tmp/toolgym-before   # another checkout
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Print the breakdown (and optionally a profile)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.perf.step_breakdown", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toolgym-root", help="Import toolgym from this checkout instead of this one.")
    parser.add_argument("--profile", action="store_true", help="Also print a cProfile of 2,000 episodes.")
    parser.add_argument("--quick", action="store_true", help="Fewer repeats.")
    args = parser.parse_args(argv)
    # toolgym from this checkout (not an installed copy) unless --toolgym-root names another one;
    # benchmarks.perf (the workload) is already this checkout's package when run with -m.
    here = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(here))
    if args.toolgym_root:
        sys.path.insert(0, str(Path(args.toolgym_root).resolve()))
    import gymnasium as gym

    import toolgym
    from benchmarks.perf import env_overhead as eo

    print(f"toolgym from {Path(toolgym.__file__).parent}")
    eo._toolgym_register()
    env = gym.make(eo.ENV_ID)
    raw = env.unwrapped
    env.reset(seed=0)
    actions = eo._toolgym_actions(3)
    number, repeat = (500, 3) if args.quick else (2000, 9)

    def best(fn: object) -> float:
        return min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.thread_time)) / number * 1e6

    def episode(e: object) -> None:
        e.reset()  # type: ignore[attr-defined]
        for action in actions:
            e.step(action)  # type: ignore[attr-defined]

    def step_once(action: str) -> None:
        raw._turn, raw._done = 0, False  # keep the episode open: time one step in isolation
        raw.step(action)

    raw.reset()
    call = raw._parse(actions[0])
    tool = raw.tools["search"]
    rows = [
        ("episode via gym.make (reset + 3 calls + answer)", lambda: episode(env)),
        ("episode, unwrapped env", lambda: episode(raw)),
        ("reset", raw.reset),
        ("tool-call step", lambda: step_once(actions[0])),
        ("  parse action", lambda: raw._parse(actions[0])),
        ("  dispatch: validate + run tool", lambda: raw._call_tool(call)),
        ("    schema validation", lambda: tool.validate(call.arguments)),
        ("    the trivial tool itself", lambda: tool(**call.arguments)),
        ("final-answer step (parse + grade)", lambda: step_once(actions[-1])),
    ]
    print(f"{'component':50s} CPU µs (min of {repeat} × {number})")
    for label, fn in rows:
        print(f"{label:50s} {best(fn):8.1f}")
    vector_steps = number // 10
    same_step = {"autoreset_mode": "SameStep"}
    # A checkout from before toolgym.vector has no vector entry point: make_vec then gives
    # Gymnasium's SyncVectorEnv, which takes its options as vector_kwargs.
    default = same_step if gym.spec(eo.ENV_ID).vector_entry_point else {"vector_kwargs": same_step}
    for label, kwargs in (
        ("vector, per env-step: gym.make_vec default", default),
        ("vector, per env-step: Gymnasium SyncVectorEnv", {"vectorization_mode": "sync", "vector_kwargs": same_step}),
    ):
        envs = gym.make_vec(eo.ENV_ID, num_envs=eo.NUM_ENVS, **kwargs)
        vector_run = eo._vector_loop(envs, [eo._toolgym_actions(i) for i in range(eo.N_TASKS)], tuple)
        per_env_step = min(timeit.repeat(lambda run=vector_run: run(vector_steps), number=1, repeat=repeat,
                                         timer=time.thread_time))
        print(f"{label:50s} {per_env_step / (vector_steps * eo.NUM_ENVS) * 1e6:8.1f}   ({type(envs).__name__})")
        envs.close()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(2000):
            episode(env)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
