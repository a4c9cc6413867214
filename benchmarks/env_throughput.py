"""Env throughput: tool steps per second of every ToolGym env, single process.

The oracle's actions are recorded first; then only the env is timed while it replays them
(reset + each tool call's parsing, schema validation, tool execution and observation
formatting + the final answer), so the figure is the env's own overhead, not the agent's.

    python benchmarks/env_throughput.py            # every registered env
    python benchmarks/env_throughput.py --quick    # fewer episodes
    python benchmarks/env_throughput.py --env ToolGym/Search-v0 --episodes 500
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

import gymnasium as gym

import toolgym
from toolgym.registry import env_ids


def record(env_id: str, episodes: int, seed: int = 0) -> list[tuple[int, list[str]]]:
    """The oracle's action sequences for ``episodes`` episodes (seeds ``seed, seed + 1, ...``)."""
    env = gym.make(env_id, split="test")
    oracle = env.unwrapped.make_oracle()
    plans = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        oracle.reset(seed=seed + i)
        actions: list[str] = []
        while True:
            action = oracle.act(obs, info)
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        plans.append((seed + i, actions))
    env.close()
    return plans


def replay(env_id: str, plans: list[tuple[int, list[str]]], repeats: int) -> dict[str, Any]:
    """Time the env alone replaying the recorded actions; return steps/s and episodes/s."""
    env = gym.make(env_id, split="test").unwrapped  # no checker wrappers: the raw env's cost
    if plans:  # warm-up episode: one-off costs (index build, sandbox start) are not per-step costs
        seed, actions = plans[0]
        env.reset(seed=seed)
        for action in actions:
            env.step(action)
    steps = episodes = 0
    start = time.perf_counter()
    for _ in range(repeats):
        for seed, actions in plans:
            env.reset(seed=seed)
            for action in actions:
                env.step(action)
            steps += len(actions)
            episodes += 1
    elapsed = time.perf_counter() - start
    env.close()
    return {
        "env": env_id,
        "episodes": episodes,
        "tool_steps": steps,
        "seconds": elapsed,
        "steps_per_s": steps / elapsed,
        "episodes_per_s": episodes / elapsed,
        "us_per_step": 1e6 * elapsed / steps,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", help="Env id (repeatable); default: all built-ins.")
    parser.add_argument("--episodes", type=int, default=200, help="Distinct recorded episodes per env.")
    parser.add_argument("--repeats", type=int, default=5, help="Times each recorded episode is replayed.")
    parser.add_argument("--quick", action="store_true", help="20 episodes, 1 repeat.")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.repeats = 20, 1
    ids = args.env or env_ids(plugins=False)
    print(f"# ToolGym env throughput (toolgym {toolgym.__version__})")
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, single process; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (other jobs inflate the times)")
    print()
    print("| env | episodes | tool steps | steps/s | episodes/s | µs/step |")
    print("|---|---:|---:|---:|---:|---:|")
    for env_id in ids:
        plans = record(env_id, args.episodes)
        replay(env_id, plans[:5], 1)  # warm caches (index, validators) before timing
        r = replay(env_id, plans, args.repeats)
        print(f"| {env_id} | {r['episodes']} | {r['tool_steps']} | {r['steps_per_s']:,.0f} | "
              f"{r['episodes_per_s']:,.0f} | {r['us_per_step']:.0f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
