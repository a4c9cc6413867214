"""Rollout scaling on Ray: episodes/s with 1, 2 and 4 rollout actors (``RayRolloutPool``).

Two workloads, both on ``ToolGym/Lookup-v0`` with a tiny GPT policy (briefly trained on oracle
trajectories) and ``invalid_action="continue"``, so every episode runs several turns whatever the
policy writes:

* **compute-bound**: the env as is. An episode costs CPU for the policy's forward passes and the
  env's Python; actors can only go as fast as there are free cores.
* **tool-latency**: every env step also waits ``--tool-latency-ms`` (a sleep, like a sandboxed
  code run, a web API or a database round-trip in agentic RL). Waiting costs no CPU, so actors
  overlap their waits and scale past the core count.

Each actor hosts ``--envs-per-actor`` envs and runs them as one batch; the total number of
episodes is fixed, so with more actors each does less. ``in-process`` is the same rollout in the
driver with ``collect_episodes`` (no Ray), the baseline for Ray's overhead. Scaling efficiency is
``rate(N) / (N × rate(1))``.

    python -m benchmarks.perf.rollout_scaling --quick      # fewer episodes, prints only
    python -m benchmarks.perf.rollout_scaling --write      # writes benchmarks/results/perf/rollout_scaling.{json,md}
    python -m benchmarks.perf.rollout_scaling --address auto --actors 1 2 4 8 16   # on a Ray cluster
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import gymnasium as gym

from benchmarks.perf._common import (
    ROOT,
    header_lines,
    load,
    machine,
    md_table,
    script_parser,
    write_results,
)

SLOW_ENV = "ToolGymBench/SlowLookup-v0"
SLOW_ENV_REF = f"benchmarks.perf.rollout_scaling:{SLOW_ENV}"
"""Env id that imports this module first (so Ray actors register it too)."""


class ToolLatency(gym.Wrapper):
    """Adds a fixed wait to every ``step`` (an emulated slow tool: sandbox, web API, database)."""

    def __init__(self, env: gym.Env, latency_ms: float) -> None:
        super().__init__(env)
        self.latency_s = latency_ms / 1000.0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Wait, then step the wrapped env."""
        time.sleep(self.latency_s)
        return self.env.step(action)


def make_slow_lookup(latency_ms: float = 50.0, **kwargs: Any) -> gym.Env:
    """``ToolGym/Lookup-v0`` whose every step waits ``latency_ms``."""
    import toolgym  # noqa: F401

    return ToolLatency(gym.make("ToolGym/Lookup-v0", **kwargs), latency_ms)


if SLOW_ENV not in gym.registry:
    gym.register(id=SLOW_ENV, entry_point=make_slow_lookup)


def tiny_policy(sft_steps: int, seed: int = 0) -> tuple[Any, Any]:
    """A tiny GPT-2 and tokenizer trained for ``sft_steps`` steps on Lookup oracle episodes."""
    import torch

    from baselines.llm.model import TinyLMConfig, build_tiny_model
    from baselines.llm.tokenizer import ChatFormat, conversation_text, train_tokenizer
    from baselines.train.envs import ExpertBank, task_ids
    from baselines.train.sft import sft_step

    bank = ExpertBank("ToolGym/Lookup-v0", "train")
    trajs = bank.many(task_ids(bank.env, 200))
    texts = [conversation_text(t.system, t.user, t.actions, t.observations) for t in trajs]
    cfg = TinyLMConfig(arch="gpt2", d_model=64, n_layers=2, n_heads=4, d_ff=128, max_positions=256)
    tokenizer = train_tokenizer(texts, vocab_size=400, model_max_length=cfg.max_positions)
    model = build_tiny_model(cfg, tokenizer, seed=seed)
    chat = ChatFormat(tokenizer, include_system_prompt=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(sft_steps):
        batch = [trajs[(step * 16 + i) % len(trajs)] for i in range(16)]
        sft_step(model, optimizer, chat, batch, temperature=1.0, grad_clip=1.0, max_observation_tokens=64, step=step)
    return model.eval(), tokenizer


def requests(n: int, offset: int = 0) -> list[Any]:
    """``n`` requests over the first 200 train tasks with distinct seeds."""
    from baselines.llm.rollout import EpisodeRequest

    return [EpisodeRequest(f"lookup-train-{(offset + i) % 200:05d}", seed=offset + i) for i in range(n)]


class InProcess:
    """``collect_episodes`` in this process with ``envs`` envs in one batch (no Ray): the baseline."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], model: Any, tokenizer: Any, settings: Any,
                 envs: int) -> None:
        import torch

        from baselines.llm.policy import CausalLMPolicy
        from baselines.llm.tokenizer import ChatFormat
        from baselines.train.envs import make_envs

        torch.set_num_threads(1)
        self.chat = ChatFormat(tokenizer, include_system_prompt=False)
        self.policy = CausalLMPolicy(model, self.chat.control)
        self.envs = make_envs(env_id, envs, "train", env_kwargs)
        self.settings = settings
        self.collect(requests(envs, 10_000))  # warm-up

    def collect(self, reqs: list[Any]) -> list[Any]:
        """The episodes of ``reqs``."""
        from baselines.llm.rollout import collect_episodes

        return collect_episodes(self.policy, self.chat, self.envs, reqs, self.settings, context_length=256)

    def close(self) -> None:
        """Nothing to release."""


class OnRay:
    """A :class:`RayRolloutPool` of ``actors`` actors, warmed up (start-up and weights not timed)."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], model: Any, tokenizer: Any, settings: Any,
                 actors: int, envs: int) -> None:
        from baselines.ray_rollout import RayRolloutPool, WorkerSpec

        spec = WorkerSpec(env_id, "train", env_kwargs, num_envs=envs, model_config=model.config, tokenizer=tokenizer,
                          include_system_prompt=False, settings=settings, threads=1)
        self.pool = RayRolloutPool(spec, actors, actor_options={"num_cpus": 1})
        self.pool.set_weights(model.state_dict())
        self.pool.collect(requests(envs * actors, 10_000))  # every actor up, with the weights

    def collect(self, reqs: list[Any]) -> list[Any]:
        """The episodes of ``reqs``."""
        return self.pool.collect(reqs)

    def close(self) -> None:
        """End the actors."""
        self.pool.close()


def timed(runner: Any, episodes: int) -> tuple[float, float]:
    """``(episodes/s, turns per episode)`` of one collection of ``episodes`` requests."""
    started = time.perf_counter()
    eps = runner.collect(requests(episodes))
    return len(eps) / (time.perf_counter() - started), sum(e.num_turns for e in eps) / len(eps)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a markdown report and optionally writes it under results/perf."""
    parser = script_parser(__file__, __doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--episodes", type=int, default=96, help="Episodes per timed measurement.")
    parser.add_argument("--envs-per-actor", type=int, default=8)
    parser.add_argument("--tool-latency-ms", type=float, default=100.0)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--address", default=None, help="ray.init address of an existing cluster (default: local).")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved repeats per configuration (median).")
    parser.add_argument("--quick", action="store_true", help="48 episodes, 2 repeats, 20 SFT steps.")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/rollout_scaling.*")
    args = parser.parse_args(argv)
    if args.quick:
        args.episodes, args.repeats, args.sft_steps = 48, 2, 20

    import ray

    from baselines.llm.rollout import RolloutSettings
    info = machine()
    init: dict[str, Any] = {"runtime_env": {"env_vars": {"PYTHONPATH": str(ROOT)}}, "include_dashboard": False,
                            "log_to_driver": False}
    if args.address is None:  # logical CPUs: every actor of every size is alive at once (idle ones cost nothing)
        init["num_cpus"] = max(os.cpu_count() or 1, sum(args.actors))
    ray.init(address=args.address, **init)
    started = time.perf_counter()
    model, tokenizer = tiny_policy(args.sft_steps)
    settings = RolloutSettings(max_new_tokens=args.max_new_tokens, max_observation_tokens=64, per_episode_rng=True)
    # invalid actions do not end an episode, so every episode runs several turns whatever the policy
    lookup = {"invalid_action": "continue"}
    workloads = [("compute-bound", "ToolGym/Lookup-v0", lookup),
                 (f"tool-latency {args.tool_latency_ms:g} ms/step", SLOW_ENV_REF, {**lookup, "latency_ms": args.tool_latency_ms})]
    rows: list[dict[str, Any]] = []
    for name, env_id, kwargs in workloads:
        runners: dict[Any, Any] = {"in-process": InProcess(env_id, kwargs, model, tokenizer, settings, args.envs_per_actor)}
        for n in args.actors:
            runners[n] = OnRay(env_id, kwargs, model, tokenizer, settings, n, args.envs_per_actor)
        rates: dict[Any, list[float]] = {k: [] for k in runners}
        turns: dict[Any, float] = {}
        try:
            for _ in range(args.repeats):  # interleaved, so load changes hit every configuration alike
                for key, runner in runners.items():
                    rate, turns[key] = timed(runner, args.episodes)
                    rates[key].append(rate)
        finally:
            for runner in runners.values():
                runner.close()
        one = statistics.median(rates[args.actors[0]]) if args.actors[0] == 1 else float("nan")
        for key in runners:
            med = statistics.median(rates[key])
            row = {"workload": name, "actors": key, "episodes_per_s": med, "min": min(rates[key]), "max": max(rates[key]),
                   "turns_per_episode": turns[key]}
            if key != "in-process":
                row["speedup_vs_1"] = med / one
                row["efficiency"] = med / one / key
            rows.append(row)
            print(f"{name}: {key} {med:.2f} episodes/s (runs {[round(r, 1) for r in rates[key]]})", flush=True)
    info["load_at_end"] = load()
    ray.shutdown()
    table = md_table(
        ["workload", "actors", "episodes/s (median)", "min", "max", "speed-up vs 1 actor", "efficiency", "turns/episode"],
        [[r["workload"], r["actors"], r["episodes_per_s"], r["min"], r["max"], r.get("speedup_vs_1", float("nan")),
          r.get("efficiency", float("nan")), r["turns_per_episode"]] for r in rows],
    )
    extra = [
        f"{args.episodes} episodes per measurement, median of {args.repeats} interleaved repeats; {args.envs_per_actor} "
        f"envs per actor (one batch); tiny GPT-2 (d=64, 2 layers) after {args.sft_steps} SFT steps, ≤{args.max_new_tokens} "
        "new tokens per turn, 1 torch thread per actor and in-process; actor start-up and weight loading not timed. "
        f"Total wall time {time.perf_counter() - started:.0f} s.",
        "",
    ]
    report = "\n".join(header_lines("Rollout scaling on Ray actors", info, extra)) + "\n" + table + "\n"
    print(report)
    print(explain(rows, info["cores"] or 1, info["load_at_start"][0], args.envs_per_actor))
    if args.write:
        data = {"machine": info, "args": vars(args), "rows": rows}
        paths = write_results("rollout_scaling", data, report + "\n" + explain(rows, info["cores"] or 1, info["load_at_start"][0], args.envs_per_actor))
        print("wrote", *paths)
    return 0


def explain(rows: list[dict[str, Any]], cores: int, load_avg: float, envs: int) -> str:
    """The "reading the numbers" section, with this run's numbers filled in."""

    def rate(workload: str, actors: Any) -> float:
        return next((r["episodes_per_s"] for r in rows if r["workload"].startswith(workload) and r["actors"] == actors),
                    float("nan"))

    def best(workload: str) -> tuple[Any, float]:
        found = [(r["actors"], r.get("speedup_vs_1", float("nan"))) for r in rows
                 if r["workload"].startswith(workload) and r["actors"] != "in-process"]
        return max(found, key=lambda x: x[1]) if found else ("n/a", float("nan"))

    cb_n, cb_x = best("compute")
    tl_n, tl_x = best("tool")
    share = rate("compute", 1) / rate("compute", "in-process")
    return f"""## Reading the numbers

* **Compute-bound** rollouts are limited by cores: this machine has {cores} cores (and a load average of
  {load_avg:.1f} from other jobs at the start), so the speed-up cannot exceed {cores}× whatever the number
  of actors; the best here was {cb_x:.2f}× with {cb_n} actors. Going past the free cores only adds context
  switches. On a machine with more cores (or one actor per GPU) the same code keeps scaling until the
  learner, not the rollouts, is the bottleneck.
* **Tool-latency** rollouts spend most of their time waiting for the (emulated) tool, which costs no CPU,
  so actors overlap their waits: the best speed-up was {tl_x:.2f}× with {tl_n} actors, beyond the core count.
  This is the agentic-RL case Ray rollouts are for: sandboxes, web APIs and databases dominate an
  episode, and more actors (each with its own sandbox pool) hide their latency.
* **Ray overhead**: one actor reached {share:.0%} of the in-process rate on the compute-bound workload
  (one Ray call per chunk of {envs} episodes, episodes pickled back to the driver; Ray's own daemons also
  take CPU from the 2 cores).
  Start-up (a few seconds per actor on this machine) is not timed: actors are started once per training
  run, not per step.
* Efficiency below 1 at 4 actors on {cores} cores is expected, not a defect; absolute numbers on a shared
  machine are noisy, compare the ratios measured in the same run.
"""


if __name__ == "__main__":
    sys.exit(main())
