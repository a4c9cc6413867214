"""Rollout workers as Ray actors, fed with policy weights by the learner.

Each :class:`RolloutWorker` actor hosts its own ToolGym envs (and therefore its own sandbox pool
for envs that execute code) and a copy of the policy. The learner's :class:`RayRolloutPool`

1. puts the policy's ``state_dict`` in the object store once per version (:meth:`set_weights`);
2. splits the requests into chunks and hands each idle actor the next chunk together with a
   reference to the current weights (an actor loads them only when the version changed);
3. returns the episodes in request order, as :class:`~baselines.llm.rollout.Episode` objects
   identical to those of :func:`~baselines.llm.rollout.collect_episodes`.

Episodes are sampled with ``per_episode_rng``: each episode's generator is seeded from its
request seed, so an episode is the same whichever actor runs it and whatever else shares its
batch, and equals the single-process rollout with the same settings.

Fault tolerance: an actor that dies (killed, OOM, lost node) loses only the chunk it was running;
the pool re-queues that chunk, replaces the actor with a fresh one, and carries on. Errors raised
by the env or the policy code itself are not retried (they would fail again) and are re-raised.

Nothing here is imported by ToolGym or the trainers unless Ray rollouts are asked for, and importing
this module does not import Ray; install it with ``pip install 'toolgym[ray]'``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from baselines.llm.model import sampler_storage_dtype
from baselines.llm.rollout import Episode, EpisodeRequest, RolloutSettings

logger = logging.getLogger(__name__)

INSTALL_HINT = "Ray rollouts need Ray: pip install 'toolgym[ray]'."


def require_ray() -> Any:
    """Import and return the ``ray`` module, with an install hint if it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray


@dataclass(frozen=True)
class WorkerSpec:
    """Everything an actor needs to build its envs and its copy of the policy (no weights).

    Attributes:
        env_id: Gymnasium id of the ToolGym env.
        split: Task split of the envs.
        env_kwargs: Extra ``gym.make`` kwargs.
        num_envs: Envs per actor (episodes it runs in one batch).
        model_config: The policy's ``transformers`` config (the model is rebuilt from it).
        tokenizer: The policy's tokenizer (picklable HF tokenizer).
        include_system_prompt: As in the trainer config.
        temperature: Sampling temperature.
        settings: Rollout limits; ``per_episode_rng`` is forced on.
        threads: torch CPU threads per actor.
        device: Torch device of the actor's policy (``"cuda"`` for an actor with a GPU).
        dtype: The actor's policy dtype (``RLConfig.sampler_dtype``: ``"float32"``, ``"bfloat16"``,
            ``"float16"``, or ``"int8"`` / ``"int4"``, held in float32); the weights it is sent (the
            trainer's sampler copy, already quantised for the integer ones) are cast to it.
    """

    env_id: str
    split: str
    env_kwargs: dict[str, Any]
    num_envs: int
    model_config: Any
    tokenizer: Any
    include_system_prompt: bool = True
    temperature: float = 1.0
    settings: RolloutSettings = field(default_factory=RolloutSettings)
    threads: int = 1
    device: str = "cpu"
    dtype: str = "float32"


class RolloutWorker:
    """One rollout actor's state: its envs and its copy of the policy.

    Used through :class:`RayRolloutPool` (which wraps it with ``ray.remote``); it is a plain class
    so it can also be built in-process (tests, debugging).

    Args:
        spec: See :class:`WorkerSpec`.
    """

    def __init__(self, spec: WorkerSpec) -> None:
        from transformers import AutoModelForCausalLM

        import toolgym  # noqa: F401  (registers the ToolGym envs in this process)
        from baselines.llm.policy import CausalLMPolicy
        from baselines.llm.tokenizer import ChatFormat
        from baselines.train.envs import make_envs

        torch.set_num_threads(spec.threads)
        self.spec = spec
        self.settings = replace(spec.settings, per_episode_rng=True)
        self.envs = make_envs(spec.env_id, spec.num_envs, spec.split, spec.env_kwargs)
        self.model = AutoModelForCausalLM.from_config(spec.model_config).to(spec.device, sampler_storage_dtype(spec.dtype)).eval()
        self.chat = ChatFormat(spec.tokenizer, include_system_prompt=spec.include_system_prompt)
        self.policy = CausalLMPolicy(self.model, self.chat.control, temperature=spec.temperature)
        self.version = -1

    def load_weights(self, state_dict: dict[str, torch.Tensor], version: int) -> None:
        """Load the learner's weights (``version`` identifies them; cast to the actor's dtype)."""
        self.model.load_state_dict(state_dict)
        self.version = int(version)

    def rollout(self, requests: Sequence[EpisodeRequest], weights: list[Any], version: int) -> list[Episode]:
        """Episodes of ``requests`` under weights ``version``.

        Args:
            requests: What to roll out (any number; run ``num_envs`` at a time).
            weights: A one-element list holding the object ref of the ``state_dict`` (a list, so
                Ray does not fetch the weights unless this actor's version is stale).
            version: The weights' version.
        """
        from baselines.llm.model import context_length
        from baselines.llm.rollout import collect_episodes

        if version != self.version:
            import ray

            self.load_weights(ray.get(weights[0]), version)
        return collect_episodes(
            self.policy, self.chat, self.envs, list(requests), self.settings, context_length=context_length(self.model)
        )

    def info(self) -> dict[str, Any]:
        """Where this actor runs: ``pid``, ``host``, ``num_envs`` and the loaded weights ``version``."""
        import os
        import socket

        return {"pid": os.getpid(), "host": socket.gethostname(), "num_envs": len(self.envs), "version": self.version}

    def close(self) -> None:
        """Close the envs (and their sandbox pools)."""
        for env in self.envs:
            env.close()


@dataclass
class PoolStats:
    """Counters of a :class:`RayRolloutPool` since it started.

    Attributes:
        actor_failures: Actors that died while running a chunk.
        retried_requests: Requests re-queued because their actor died.
        replaced_actors: Fresh actors started in place of dead ones.
        chunks: Chunks completed.
    """

    actor_failures: int = 0
    retried_requests: int = 0
    replaced_actors: int = 0
    chunks: int = 0


class RayRolloutPool:
    """A pool of :class:`RolloutWorker` actors that turns requests into episodes.

    Args:
        spec: What each actor builds (:class:`WorkerSpec`).
        num_workers: Number of actors.
        address: ``ray.init(address=...)`` target (``"auto"``, ``"ray://host:10001"``); None starts
            or joins a local Ray. Ignored when Ray is already initialised.
        chunk_size: Requests per task sent to an actor (default ``spec.num_envs``). Smaller chunks
            balance load better and lose less work when an actor dies.
        max_failures: Actor deaths tolerated before :meth:`collect` gives up.
        chunk_timeout_s: An actor still running one chunk after this long is killed and its chunk
            retried elsewhere (a hung tool or sandbox); None = wait forever.
        ready_timeout_s: How long to wait for every actor to start; then a clear error (e.g. the
            cluster has fewer CPUs than ``num_workers × num_cpus``). None = do not wait.
        actor_options: ``.options(...)`` of each actor (e.g. ``{"num_cpus": 1, "num_gpus": 0.25}``;
            default ``{"num_cpus": 1}``).
        init_kwargs: Extra ``ray.init`` kwargs (``runtime_env``, ``num_cpus`` ...).
    """

    def __init__(
        self,
        spec: WorkerSpec,
        num_workers: int,
        *,
        address: str | None = None,
        chunk_size: int | None = None,
        max_failures: int = 16,
        chunk_timeout_s: float | None = None,
        ready_timeout_s: float | None = 600.0,
        actor_options: dict[str, Any] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be ≥ 1, got {num_workers!r}.")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be ≥ 1 or None, got {chunk_size!r}.")
        ray = require_ray()
        if not ray.is_initialized():
            ray.init(address=address, **(init_kwargs or {}))
        self._ray = ray
        self.spec = spec
        self.chunk_size = chunk_size or spec.num_envs
        self.max_failures = max_failures
        self.chunk_timeout_s = chunk_timeout_s
        self.stats = PoolStats()
        self._options = {"num_cpus": 1, **(actor_options or {}), "max_restarts": 0}
        self._remote_cls = ray.remote(RolloutWorker)
        self._spec_ref = ray.put(spec)
        self.actors: list[Any] = [self._new_actor() for _ in range(num_workers)]
        self._weights: list[Any] | None = None
        self.version = -1
        if ready_timeout_s is not None:
            self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout: float) -> None:
        """Block until every actor has started, or raise with the cluster's resources."""
        refs = [a.info.remote() for a in self.actors]
        ready, pending = self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
        self._ray.get(ready)  # surfaces a failed actor constructor (e.g. ToolGym not importable there)
        if pending:
            raise RuntimeError(
                f"Only {len(ready)} of {len(refs)} rollout actors started within {timeout:.0f} s; the Ray cluster "
                f"has {self._ray.cluster_resources()} and each actor asks for {self._options}. Lower the number "
                "of workers or their num_cpus / num_gpus, or add nodes."
            )

    def _new_actor(self) -> Any:
        return self._remote_cls.options(**self._options).remote(self._spec_ref)

    def set_weights(self, state_dict: dict[str, torch.Tensor]) -> int:
        """Publish new policy weights (copied to CPU, put in the object store once); returns the
        new version. Actors load them with their next chunk."""
        cpu = {k: v.detach().to("cpu", copy=True) for k, v in state_dict.items()}
        self._weights = [self._ray.put(cpu)]
        self.version += 1
        return self.version

    def collect(self, requests: Sequence[EpisodeRequest]) -> list[Episode]:
        """Episodes of ``requests`` in request order (same format as ``collect_episodes``).

        Raises:
            RuntimeError: if :meth:`set_weights` was never called, or more than ``max_failures``
                actors died.
        """
        if self._weights is None:
            raise RuntimeError("Call set_weights(model.state_dict()) before collect().")
        ray = self._ray
        from ray.exceptions import RayActorError

        requests = list(requests)
        chunks = [requests[i : i + self.chunk_size] for i in range(0, len(requests), self.chunk_size)]
        results: list[list[Episode] | None] = [None] * len(chunks)
        queue = deque(range(len(chunks)))
        running: dict[Any, tuple[int, int]] = {}  # object ref -> (actor slot, chunk index)
        started: dict[Any, float] = {}
        idle = deque(range(len(self.actors)))
        while queue or running:
            while queue and idle:
                slot, chunk = idle.popleft(), queue.popleft()
                ref = self.actors[slot].rollout.remote(chunks[chunk], self._weights, self.version)
                running[ref] = (slot, chunk)
                started[ref] = time.monotonic()
                self.on_dispatch(slot, chunk)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=self.chunk_timeout_s)
            if not ready and self.chunk_timeout_s is not None:
                for ref, (slot, chunk) in running.items():
                    if time.monotonic() - started[ref] > self.chunk_timeout_s:
                        logger.warning("Rollout actor %d ran chunk %d for over %.0f s: killing it.", slot, chunk,
                                       self.chunk_timeout_s)
                        ray.kill(self.actors[slot], no_restart=True)  # its ref now fails: retried below
                continue
            for ref in ready:
                started.pop(ref, None)
                slot, chunk = running.pop(ref)
                try:
                    results[chunk] = ray.get(ref)
                except RayActorError as exc:
                    self._recover(slot, chunk, len(chunks[chunk]), exc)
                    queue.appendleft(chunk)
                else:
                    self.stats.chunks += 1
                idle.append(slot)
        return [ep for part in results for ep in (part or [])]

    def on_dispatch(self, slot: int, chunk: int) -> None:
        """Hook called after a chunk is sent to actor ``slot`` (no-op; tests override it)."""

    def _recover(self, slot: int, chunk: int, n_requests: int, exc: Exception) -> None:
        """Replace the dead actor of ``slot``; its chunk is re-queued by the caller."""
        self.stats.actor_failures += 1
        self.stats.retried_requests += n_requests
        logger.warning(
            "Rollout actor %d died running chunk %d (%d requests re-queued): %s", slot, chunk, n_requests,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        if self.stats.actor_failures > self.max_failures:
            raise RuntimeError(
                f"{self.stats.actor_failures} rollout actors died (max_failures={self.max_failures}); giving up. "
                "Check the Ray dashboard / logs for the cause (OOM, lost nodes)."
            ) from exc
        try:
            self._ray.kill(self.actors[slot], no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.actors[slot] = self._new_actor()
        self.stats.replaced_actors += 1

    def info(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """:meth:`RolloutWorker.info` of every actor (blocks until they are up)."""
        return self._ray.get([a.info.remote() for a in self.actors], timeout=timeout)

    def close(self) -> None:
        """Close every actor's envs and end the actors (Ray itself stays initialised)."""
        refs = [a.close.remote() for a in self.actors]
        deadline = time.monotonic() + 30
        try:
            self._ray.wait(refs, num_returns=len(refs), timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for actor in self.actors:
                self._ray.kill(actor, no_restart=True)
            self.actors = []


def pool_from_trainer(
    config: Any, model: Any, tokenizer: Any, settings: RolloutSettings, **kwargs: Any
) -> RayRolloutPool:
    """A :class:`RayRolloutPool` for an :class:`~baselines.train.config.RLConfig`:
    ``config.rollout_workers`` actors with ``ceil(episodes_per_step / rollout_workers)`` envs each
    (or ``config.envs_per_worker``), joined to ``config.ray_address``; the actors sample in
    ``config.sampler_dtype`` (the trainer sends its sampler copy's weights)."""
    import os

    workers = int(config.rollout_workers)
    per_worker = config.envs_per_worker or -(-config.episodes_per_step // workers)
    ray = require_ray()
    if config.ray_address is None and not ray.is_initialized():
        # a local Ray: one logical CPU per actor even on a small machine (they then share the cores)
        kwargs.setdefault("init_kwargs", {"num_cpus": max(os.cpu_count() or 1, workers)})
    spec = WorkerSpec(
        env_id=config.env,
        split=config.split,
        env_kwargs=dict(config.env_kwargs),
        num_envs=per_worker,
        model_config=model.config,
        tokenizer=tokenizer,
        include_system_prompt=config.include_system_prompt,
        temperature=config.temperature,
        settings=replace(settings, per_episode_rng=True),
        threads=config.threads or 1,
        dtype=config.sampler_dtype,
    )
    return RayRolloutPool(spec, workers, address=config.ray_address, **kwargs)
