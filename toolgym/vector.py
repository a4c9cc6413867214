"""A faster synchronous vector env for ToolGym environments.

``gym.make_vec("ToolGym/Search-v0", num_envs=8)`` returns a :class:`ToolSyncVectorEnv`: Gymnasium's
:class:`~gymnasium.vector.SyncVectorEnv` with the same ``reset``/``step`` logic and the same
outputs, but with the per-step info dicts merged in one pass per key instead of one call per env
and key. ToolGym envs return about a dozen info keys per step, and Gymnasium's ``_add_info``
spent 43% of a vector step on them in a profile of 8 envs stepping a trivial tool; merging them
once per batch halves that cost (``benchmarks/perf/step_breakdown.py`` measures both).

The vector-level options of :class:`~gymnasium.vector.SyncVectorEnv` (``autoreset_mode``,
``copy``, ``observation_mode``) are passed as keywords to ``make_vec``, next to the env's own
keywords::

    envs = gym.make_vec("ToolGym/Search-v0", num_envs=8, autoreset_mode="SameStep", split="test")

``vectorization_mode="sync"`` still gives Gymnasium's own ``SyncVectorEnv`` (needed for
``wrappers=`` and ``vector_kwargs=``, which Gymnasium does not allow with a custom vector env), and
``vectorization_mode="async"`` its ``AsyncVectorEnv``.

An env opts in by registering ``vector_entry_point="toolgym.vector:<its full id>"`` (the built-ins
do; so can a plugin, e.g. ``"toolgym.vector:Example/Weather-v0"``). Gymnasium resolves that
string with ``getattr(toolgym.vector, "<id>")``, which gives :func:`make_vector_env` bound to the
id. A string rather than a ``functools.partial`` keeps ``env.spec.to_json()`` working (Gymnasium
cannot serialise callables in a spec).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

__all__ = ["ToolSyncVectorEnv", "make_vector_env", "merge_infos", "vector_entry_point"]

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
    """Gymnasium's :class:`~gymnasium.vector.SyncVectorEnv` with a batched info merge.

    ``reset`` and ``step`` are Gymnasium's own (every autoreset mode behaves as documented there);
    only the info dict is built differently, by :func:`merge_infos`, with the same result.
    Takes the same arguments as :class:`~gymnasium.vector.SyncVectorEnv`.
    """

    _pending: list[InfoEvent] | None = None

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
        self._pending = []
        try:
            observations, rewards, terminations, truncations, _ = super().step(actions)
            infos = merge_infos(self._pending, self.num_envs, super()._add_info)
            return observations, rewards, terminations, truncations, infos
        finally:
            self._pending = None

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
        **env_kwargs: Passed to :func:`gymnasium.make` for every sub-env (env keywords and
            ``gym.make`` options such as ``max_episode_steps`` or ``render_mode``).

    Raises:
        ValueError: if ``num_envs`` is not a positive integer.
    """
    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}.")

    def make_one() -> gym.Env:
        return gym.make(env_id, **env_kwargs)

    return ToolSyncVectorEnv(
        [make_one] * num_envs, copy=copy, observation_mode=observation_mode, autoreset_mode=autoreset_mode
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
