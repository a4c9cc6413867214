"""A faster synchronous vector env for ToolGym environments.

``gym.make_vec("ToolGym/Search-v0", num_envs=8)`` returns a :class:`ToolSyncVectorEnv`: Gymnasium's
:class:`~gymnasium.vector.SyncVectorEnv` with the same ``reset``/``step`` logic and the same
outputs, but with the per-step info dicts merged in one pass per key instead of one call per env
and key. ToolGym envs return about a dozen info keys per step, and Gymnasium's ``_add_info``
spent 43% of a vector step on them in a profile of 8 envs stepping a trivial tool; merging them
once per batch halves that cost (``python -m benchmarks.perf.step_breakdown`` measures both).

The vector-level options of :class:`~gymnasium.vector.SyncVectorEnv` (``autoreset_mode``,
``copy``, ``observation_mode``) are passed as keywords to ``make_vec``, next to the env's own
keywords::

    envs = gym.make_vec("ToolGym/Search-v0", num_envs=8, autoreset_mode="SameStep", split="test")

``vectorization_mode="sync"`` still gives Gymnasium's own ``SyncVectorEnv`` (needed for
``wrappers=`` and ``vector_kwargs=``, which Gymnasium does not allow with a custom vector env), and
``vectorization_mode="async"`` its ``AsyncVectorEnv``.

**Overlapping tool calls.** Sub-envs whose tools wait on something outside Python (the
``Code-v0`` sandbox waits on a socket, and releases the GIL meanwhile) are stepped in a thread
pool, one sub-env per thread, so their tool calls overlap: ``workers`` (default ``"auto"``) is the
number of threads, and ``"auto"`` means one per sub-env, up to :data:`MAX_AUTO_WORKERS`, for envs
that declare ``concurrent_tools = True`` (``Code-v0`` does) and a single thread (Gymnasium's own
loop) for the others, whose steps are pure Python and only lose to thread hand-offs. Each sub-env
is only ever touched by one thread at a time, and the batch is assembled in env order, so the
outputs are exactly those of the sequential loop. If a sub-env raises, every other sub-env has
still finished its step, and the error of the lowest index is raised. ``warm=True`` (default) also
starts every sub-env's sandbox at construction, in parallel (sub-envs with a ``warm()`` method),
instead of one after another at each sub-env's first tool call; :meth:`ToolSyncVectorEnv.warm` does
the same at any time, e.g. before ``reset``::

    envs = gym.make_vec("ToolGym/Code-v0", num_envs=8)              # 8 threads, sandboxes started
    envs = gym.make_vec("ToolGym/Code-v0", num_envs=8, workers=1)   # sequential, as Gymnasium

An env opts in by registering ``vector_entry_point="toolgym.vector:<its full id>"`` (the built-ins
do; so can a plugin, e.g. ``"toolgym.vector:Example/Weather-v0"``). Gymnasium resolves that
string with ``getattr(toolgym.vector, "<id>")``, which gives :func:`make_vector_env` bound to the
id. A string rather than a ``functools.partial`` keeps ``env.spec.to_json()`` working (Gymnasium
cannot serialise callables in a spec).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate, iterate

__all__ = ["MAX_AUTO_WORKERS", "ToolSyncVectorEnv", "make_vector_env", "merge_infos", "vector_entry_point"]

logger = logging.getLogger(__name__)

MAX_AUTO_WORKERS = 64
"""Most threads ``workers="auto"`` starts for one vector env."""

Workers = int | Literal["auto"]

InfoEvent = tuple[dict[str, Any], int]
"""One ``(info, env_index)`` pair, in the order the vector env produced them."""


class _IrregularInfos(Exception):
    """Raised inside :func:`_merge` when the infos need Gymnasium's one-at-a-time merge."""


def merge_infos(
    events: Sequence[InfoEvent],
    num_envs: int,
    add_info: Callable[[dict[str, Any], dict[str, Any], int], dict[str, Any]],
) -> dict[str, Any]:
    """Merge per-env infos into the batched dict that Gymnasium's ``VectorEnv._add_info`` builds
    when called once per event: the same keys in the same order, each followed by its boolean
    mask ``_key``, the same array dtypes (taken from the first value of a key) and the same values.

    Args:
        events: ``(info, env_index)`` pairs in the order they happened (a same-step autoreset
            gives two events for one env: ``final_obs``/``final_info``, then the reset info).
        num_envs: Batch size of the arrays.
        add_info: Gymnasium's ``_add_info`` (bound to the vector env), used as it is when the
            infos are irregular: a key that starts with ``_`` (it could collide with a mask), a
            key whose values are dicts in some envs and not in others, or values that cannot
            go into the array of their key. Its result (or its exception) is then exactly
            Gymnasium's.

    Returns:
        The merged info dict.
    """
    try:
        return _merge(events, num_envs)
    except Exception:  # noqa: BLE001 - irregular infos: redo the merge Gymnasium's way
        merged: dict[str, Any] = {}
        for info, index in events:
            merged = add_info(merged, info, index)
        return merged


_SCALARS = (int, float, bool)


@functools.lru_cache(maxsize=64)
def _true_template(num_envs: int) -> np.ndarray:
    template = np.ones(num_envs, dtype=np.bool_)
    template.flags.writeable = False
    return template


def _all_true(num_envs: int) -> np.ndarray:
    # Copying a template is ~6x cheaper than np.ones (a Python-level function) for small arrays.
    return _true_template(num_envs).copy()


def _merge(events: Iterable[InfoEvent], num_envs: int) -> dict[str, Any]:
    # Group the values of each key in first-appearance order (the order in which Gymnasium's
    # merge inserts keys), then build each key's array and mask once. Scalar numpy writes in a
    # loop are used rather than fancy indexing, which costs more for a handful of envs.
    groups: dict[Any, tuple[list[Any], list[int]]] = {}
    for info, index in events:
        for key, value in info.items():
            group = groups.get(key)
            if group is None:
                groups[key] = ([value], [index])
            else:
                group[0].append(value)
                group[1].append(index)
    everyone = list(range(num_envs))
    merged: dict[str, Any] = {}
    for key, (values, indices) in groups.items():
        if isinstance(key, str) and key.startswith("_"):  # could collide with a mask key
            raise _IrregularInfos
        full = indices == everyone
        if key == "final_obs":
            array: Any = _fill(np.empty(num_envs, dtype=object), values, indices, nested_ok=True)
        elif isinstance(values[0], dict):
            if not all(isinstance(value, dict) for value in values):
                raise _IrregularInfos
            array = _merge(zip(values, indices, strict=True), num_envs)
        else:
            array = _value_array(values, indices, num_envs, full)
        if full:
            mask = _all_true(num_envs)
        else:
            mask = np.zeros(num_envs, dtype=np.bool_)
            for index in indices:
                mask[index] = True
        merged[key] = array
        merged[f"_{key}"] = mask
    return merged


def _value_array(values: list[Any], indices: list[int], num_envs: int, full: bool) -> np.ndarray:
    """The array of one non-dict key; its dtype comes from the first value, as in Gymnasium."""
    first = values[0]
    kind = type(first)
    if kind in _SCALARS or issubclass(kind, np.number):
        if full and all(type(value) is kind for value in values):
            return np.array(values, dtype=kind)
        array = np.zeros(num_envs, dtype=kind)
    elif isinstance(first, np.ndarray):
        array = np.zeros((num_envs, *first.shape), dtype=first.dtype)
    else:
        array = np.empty(num_envs, dtype=object)  # filled with None
    return _fill(array, values, indices, nested_ok=False)


def _fill(array: np.ndarray, values: list[Any], indices: list[int], *, nested_ok: bool) -> np.ndarray:
    for value, index in zip(values, indices, strict=True):
        if not nested_ok and isinstance(value, dict):  # dicts in some envs only
            raise _IrregularInfos
        array[index] = value
    return array


class ToolSyncVectorEnv(SyncVectorEnv):
    """Gymnasium's :class:`~gymnasium.vector.SyncVectorEnv` with a batched info merge, and tool
    calls that overlap across sub-envs (see the module docstring).

    With one worker, ``reset`` and ``step`` are Gymnasium's own (every autoreset mode behaves as
    documented there); only the info dict is built differently, by :func:`merge_infos`, with the
    same result. With more, ``step`` runs the same per-env logic in a thread pool and assembles
    the same batch.

    Args:
        env_fns: As :class:`~gymnasium.vector.SyncVectorEnv`.
        workers: Threads stepping sub-envs: a positive int, or ``"auto"`` (one per sub-env up to
            :data:`MAX_AUTO_WORKERS` if the sub-envs declare ``concurrent_tools = True``, else 1).
        warm: Call every sub-env's ``warm()`` (if it has one) at construction, in parallel.
        **kwargs: ``copy``, ``observation_mode``, ``autoreset_mode``, as ``SyncVectorEnv``.

    Raises:
        ValueError: if ``workers`` is neither a positive int nor ``"auto"``.
    """

    _pending: list[InfoEvent] | None = None
    _executor: ThreadPoolExecutor | None = None

    def __init__(
        self,
        env_fns: Iterable[Callable[[], gym.Env]],
        *,
        workers: Workers = "auto",
        warm: bool = True,
        **kwargs: Any,
    ) -> None:
        if workers != "auto" and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"workers must be a positive integer or 'auto', got {workers!r}.")
        super().__init__(env_fns, **kwargs)
        if workers == "auto":
            concurrent = all(getattr(env.unwrapped, "concurrent_tools", False) for env in self.envs)
            workers = min(self.num_envs, MAX_AUTO_WORKERS) if concurrent else 1
        self.workers: int = min(workers, self.num_envs)
        if self.workers > 1:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="toolgym-vector")
        if warm:
            self.warm()

    def warm(self) -> None:
        """Call ``warm()`` on every sub-env that has one (``Code-v0``: start its sandbox), all
        at once. A sub-env that fails to warm logs a warning; it starts at its first tool call."""
        targets = [env.unwrapped for env in self.envs if callable(getattr(env.unwrapped, "warm", None))]

        def warm_one(env: Any) -> None:
            try:
                env.warm()
            except Exception as exc:  # noqa: BLE001 - the first tool call retries and reports it
                logger.warning("Warming %s failed: %s", type(env).__name__, exc)

        if len(targets) > 1:
            with ThreadPoolExecutor(min(len(targets), MAX_AUTO_WORKERS)) as pool:
                list(pool.map(warm_one, targets))
        elif targets:
            warm_one(targets[0])

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every sub-env (or those in ``options["reset_mask"]``); see ``SyncVectorEnv.reset``."""
        self._pending = []
        try:
            observations, _ = super().reset(seed=seed, options=options)
            return observations, merge_infos(self._pending, self.num_envs, super()._add_info)
        finally:
            self._pending = None

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env; see ``SyncVectorEnv.step``."""
        if self._executor is not None:
            return self._concurrent_step(actions)
        self._pending = []
        try:
            observations, rewards, terminations, truncations, _ = super().step(actions)
            infos = merge_infos(self._pending, self.num_envs, super()._add_info)
            return observations, rewards, terminations, truncations, infos
        finally:
            self._pending = None

    def _step_one(self, index: int, action: Any) -> tuple[Any, float, bool, bool, list[InfoEvent]]:
        """``SyncVectorEnv.step``'s loop body for one sub-env, returning its info events."""
        env = self.envs[index]
        mode = self.autoreset_mode
        if mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[index]:
            observation, info = env.reset()
            return observation, 0.0, False, False, [(info, index)]
        if mode == AutoresetMode.DISABLED:
            assert not self._autoreset_envs[index], f"{self._autoreset_envs=}"
        elif mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"Unexpected autoreset mode, {mode}")
        observation, reward, terminated, truncated, info = env.step(action)
        events: list[InfoEvent] = []
        if mode == AutoresetMode.SAME_STEP and (terminated or truncated):
            events.append(({"final_obs": observation, "final_info": info}, index))
            observation, info = env.reset()
        events.append((info, index))
        return observation, reward, terminated, truncated, events

    def _concurrent_step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        assert self._executor is not None
        batch = list(iterate(self.action_space, actions))
        if len(batch) != self.num_envs:
            raise ValueError(f"Expected {self.num_envs} actions, got {len(batch)}.")
        futures = [self._executor.submit(self._step_one, index, action) for index, action in enumerate(batch)]
        errors = [future.exception() for future in futures]  # waits for every sub-env
        for error in errors:
            if error is not None:
                raise error
        events: list[InfoEvent] = []
        for index, future in enumerate(futures):
            observation, reward, terminated, truncated, env_events = future.result()
            self._env_obs[index] = observation
            self._rewards[index] = reward
            self._terminations[index] = terminated
            self._truncations[index] = truncated
            events += env_events
        infos = merge_infos(events, self.num_envs, super()._add_info)
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            deepcopy(self._observations) if self.copy else self._observations,
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close the sub-envs (in parallel when stepping concurrently: closing a sandbox waits
        on it) and stop the thread pool."""
        executor, self._executor = self._executor, None
        if executor is None:
            super().close_extras(**kwargs)
            return
        try:
            if hasattr(self, "envs"):
                list(executor.map(lambda env: env.close(), self.envs))
        finally:
            executor.shutdown(wait=True)

    def _add_info(
        self, vector_infos: dict[str, Any], env_info: dict[str, Any], env_num: int
    ) -> dict[str, Any]:
        # Inside reset/step: record the event; the merge happens once, after the loop.
        if self._pending is None:
            return super()._add_info(vector_infos, env_info, env_num)
        self._pending.append((env_info, env_num))
        return vector_infos


def make_vector_env(
    env_id: str,
    num_envs: int = 1,
    *,
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    copy: bool = True,
    observation_mode: str | tuple[gym.Space, gym.Space] = "same",
    workers: Workers = "auto",
    warm: bool = True,
    **env_kwargs: Any,
) -> ToolSyncVectorEnv:
    """Build a :class:`ToolSyncVectorEnv` of ``num_envs`` copies of ``env_id``.

    Bound to an env's id, this is the vector entry point of the built-in envs (see the module
    docstring), so it is what ``gym.make_vec(env_id, num_envs, ...)`` calls by default.

    Args:
        env_id: Registered id of the env (with its namespace).
        num_envs: Number of sub-envs (≥ 1).
        autoreset_mode: Gymnasium autoreset mode (``"NextStep"``, ``"SameStep"``, ``"Disabled"``).
        copy: Return copies of the batched observations (as ``SyncVectorEnv``).
        observation_mode: As ``SyncVectorEnv``.
        workers: Threads stepping sub-envs (see :class:`ToolSyncVectorEnv`).
        warm: Warm every sub-env at construction (see :class:`ToolSyncVectorEnv`).
        **env_kwargs: Passed to :func:`gymnasium.make` for every sub-env (env keywords and
            ``gym.make`` options such as ``max_episode_steps`` or ``render_mode``).

    Raises:
        ValueError: if ``num_envs`` is not a positive integer, or ``workers`` is invalid.
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}.")

    def make_one() -> gym.Env:
        return gym.make(env_id, **env_kwargs)

    return ToolSyncVectorEnv(
        [make_one] * num_envs,
        workers=workers,
        warm=warm,
        copy=copy,
        observation_mode=observation_mode,
        autoreset_mode=autoreset_mode,
    )


def vector_entry_point(env_id: str) -> str:
    """The ``vector_entry_point`` string that makes ``gym.make_vec(env_id, ...)`` build a
    :class:`ToolSyncVectorEnv`: ``"toolgym.vector:<env_id>"``."""
    return f"{__name__}:{env_id}"


def __getattr__(name: str) -> Callable[..., ToolSyncVectorEnv]:
    # Gymnasium loads "toolgym.vector:<env id>" as getattr(toolgym.vector, "<env id>").
    if name in gym.registry:
        creator = functools.partial(make_vector_env, name)
        functools.update_wrapper(creator, make_vector_env)
        return creator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
