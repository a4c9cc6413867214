"""ToolSyncVectorEnv: same outputs as Gymnasium's SyncVectorEnv, with a batched info merge."""

from __future__ import annotations

import json
import threading
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN, CALL_CLOSE, CALL_OPEN
from toolgym.registry import BUILTIN_ENVS
from toolgym.vector import ToolSyncVectorEnv, make_vector_env, merge_infos

ACTIONS = [
    CALL_OPEN + '{"name": "lookup", "arguments": {"key": "population of Drevmoor"}}' + CALL_CLOSE,
    CALL_OPEN + '{"name": "lookup", "arguments": {}}' + CALL_CLOSE,
    ANSWER_OPEN + "42" + ANSWER_CLOSE,
    "no action here",
    CALL_OPEN + "{not json" + CALL_CLOSE,
]


def assert_same(fast: Any, slow: Any, path: str = "infos") -> None:
    """Equal values, and for dicts the same key order, for arrays the same dtype and shape."""
    if isinstance(slow, dict):
        assert isinstance(fast, dict), path
        assert list(fast) == list(slow), f"{path}: key order {list(fast)} != {list(slow)}"
        for key in slow:
            assert_same(fast[key], slow[key], f"{path}[{key!r}]")
    elif isinstance(slow, np.ndarray):
        assert isinstance(fast, np.ndarray), path
        assert (fast.dtype, fast.shape) == (slow.dtype, slow.shape), f"{path}: {fast!r} != {slow!r}"
        for index, (a, b) in enumerate(zip(fast.ravel(), slow.ravel(), strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    elif isinstance(slow, tuple | list):
        assert type(fast) is type(slow) and len(fast) == len(slow), path
        for index, (a, b) in enumerate(zip(fast, slow, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    else:
        assert fast == slow or (fast != fast and slow != slow), f"{path}: {fast!r} != {slow!r}"


def test_make_vec_gives_the_tool_vector_env_for_every_builtin() -> None:
    for entry in BUILTIN_ENVS:
        assert gym.spec(entry.id).vector_entry_point is not None, entry.id
    envs = gym.make_vec("ToolGym/Lookup-v0", num_envs=3, split="test", autoreset_mode="SameStep")
    try:
        assert isinstance(envs, ToolSyncVectorEnv) and envs.num_envs == 3
        assert envs.autoreset_mode.value == "SameStep"
        assert all(env.unwrapped.split == "test" for env in envs.envs)
        assert envs.spec is not None and envs.spec.id == "ToolGym/Lookup-v0"
    finally:
        envs.close()
    plain = gym.make_vec("ToolGym/Lookup-v0", num_envs=2, vectorization_mode="sync")
    assert type(plain) is SyncVectorEnv
    plain.close()


@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_outputs_equal_gymnasium_sync_vector_env(mode: str) -> None:
    fast = gym.make_vec("ToolGym/Lookup-v0", num_envs=4, autoreset_mode=mode)
    slow = gym.make_vec(
        "ToolGym/Lookup-v0", num_envs=4, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}
    )
    rng = np.random.default_rng(0)
    try:
        for a, b in zip(fast.reset(seed=7), slow.reset(seed=7), strict=True):
            assert_same(a, b)
        for _ in range(60):
            actions = tuple(ACTIONS[i] for i in rng.integers(len(ACTIONS), size=4))
            out_fast, out_slow = fast.step(actions), slow.step(actions)
            for a, b in zip(out_fast, out_slow, strict=True):
                assert_same(a, b)
            done = np.logical_or(out_fast[2], out_fast[3])
            if mode == "Disabled" and done.any():
                options = {"reset_mask": done.copy()}
                reset_fast = fast.reset(options=dict(options))
                reset_slow = slow.reset(options=dict(options))
                for a, b in zip(reset_fast, reset_slow, strict=True):
                    assert_same(a, b)
        assert fast._pending is None  # nothing left recorded between calls
    finally:
        fast.close()
        slow.close()


def test_specs_stay_json_serialisable() -> None:
    spec = gym.spec("ToolGym/Lookup-v0")
    assert spec.vector_entry_point == "toolgym.vector:ToolGym/Lookup-v0"
    assert json.loads(gym.make("ToolGym/Lookup-v0").spec.to_json())["id"] == "ToolGym/Lookup-v0"


def test_the_module_only_resolves_registered_ids() -> None:
    import toolgym.vector

    assert getattr(toolgym.vector, "ToolGym/Lookup-v0").func is make_vector_env
    with pytest.raises(AttributeError, match="has no attribute 'Nope/Missing-v0'"):
        getattr(toolgym.vector, "Nope/Missing-v0")


def test_num_envs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got 0"):
        make_vector_env("ToolGym/Lookup-v0", 0)


# ---------------------------------------------------------------- merge_infos vs Gymnasium's _add_info
NUM_ENVS = 4
_reference = SyncVectorEnv([lambda: gym.make("ToolGym/Lookup-v0")] * NUM_ENVS)

keys = st.sampled_from(["turn", "error", "success", "score", "parsed", "final_obs", "nested", "x"])
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, width=32),
    st.text(max_size=3),
    st.lists(st.integers(0, 3), max_size=2),
    st.builds(np.float32, st.floats(-1, 1, width=32)),
    st.builds(lambda v: np.array([v, v]), st.integers(0, 3)),
)
infos = st.recursive(
    st.dictionaries(keys, leaves, max_size=5),
    lambda children: st.dictionaries(keys, st.one_of(leaves, children), max_size=4),
    max_leaves=12,
)
events = st.lists(st.tuples(infos, st.integers(0, NUM_ENVS - 1)), max_size=7)


def _sequential(evs: list[tuple[dict[str, Any], int]]) -> tuple[str, Any]:
    merged: dict[str, Any] = {}
    try:
        for info, index in evs:
            merged = _reference._add_info(merged, info, index)
    except Exception as exc:  # noqa: BLE001 - irregular infos may make Gymnasium's merge fail
        return "error", type(exc)
    return "ok", merged


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(evs=events, underscore=st.booleans())
def test_merge_infos_equals_gymnasium_add_info(evs: list[tuple[dict[str, Any], int]], underscore: bool) -> None:
    if underscore and evs:  # a key that collides with a mask key goes through Gymnasium's own merge
        evs = [({**evs[0][0], "_turn": 1, "turn": 2}, evs[0][1]), *evs[1:]]
    expected = _sequential(evs)
    try:
        got: tuple[str, Any] = ("ok", merge_infos(evs, NUM_ENVS, _reference._add_info))
    except Exception as exc:  # noqa: BLE001
        got = ("error", type(exc))
    assert got[0] == expected[0], (got, expected)
    if got[0] == "ok":
        assert_same(got[1], expected[1])
    else:
        assert got[1] is expected[1]


def test_a_plugin_env_opts_in_with_a_partial() -> None:
    env_id = "ExampleVec/Weather-v0"
    if env_id not in gym.registry:
        gym.register(
            id=env_id,
            entry_point="toolgym_example_plugin.weather:WeatherEnv",  # on sys.path via conftest
            vector_entry_point=f"toolgym.vector:{env_id}",
        )
    envs = gym.make_vec(env_id, num_envs=2)
    try:
        assert isinstance(envs, ToolSyncVectorEnv)
        obs, infos = envs.reset(seed=0)
        assert len(obs) == 2 and list(infos["_task_id"]) == [True, True]
        _, _, terminated, _, infos = envs.step((ANSWER_OPEN + "x" + ANSWER_CLOSE, "nothing"))
        assert list(terminated) == [True, False] and list(infos["error"]) == [None, "no_action"]
    finally:
        envs.close()


# ---------------------------------------------------------------- tool calls overlapping across sub-envs
@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_threaded_steps_equal_the_sequential_loop(mode: str) -> None:
    threaded = gym.make_vec("ToolGym/Lookup-v0", num_envs=5, autoreset_mode=mode, workers=5)
    sequential = gym.make_vec(
        "ToolGym/Lookup-v0", num_envs=5, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}
    )
    assert threaded.workers == 5 and threaded._executor is not None
    rng = np.random.default_rng(1)
    try:
        for a, b in zip(threaded.reset(seed=3), sequential.reset(seed=3), strict=True):
            assert_same(a, b)
        for _ in range(80):
            actions = tuple(ACTIONS[i] for i in rng.integers(len(ACTIONS), size=5))
            out_threaded, out_sequential = threaded.step(actions), sequential.step(actions)
            for a, b in zip(out_threaded, out_sequential, strict=True):
                assert_same(a, b)
            done = np.logical_or(out_threaded[2], out_threaded[3])
            if mode == "Disabled" and done.any():
                options = {"reset_mask": done.copy()}
                for a, b in zip(threaded.reset(options=dict(options)), sequential.reset(options=dict(options)), strict=True):
                    assert_same(a, b)
    finally:
        threaded.close()
        sequential.close()
    assert threaded._executor is None  # the pool stopped with the env


class _Rendezvous:
    """A barrier that every sub-env's tool (or warm) must reach before any may return: it only
    passes if all of them run at the same time."""

    barrier: threading.Barrier | None = None
    warmed: list[int] = []


def _rendezvous_env_class() -> type:
    from toolgym_example_plugin.weather import WeatherEnv

    class RendezvousWeather(WeatherEnv):
        concurrent_tools = True

        def warm(self) -> None:
            assert _Rendezvous.barrier is not None
            _Rendezvous.barrier.wait()
            _Rendezvous.warmed.append(id(self))

        def step(self, action: str):  # type: ignore[no-untyped-def]
            if "explode" in action:
                raise RuntimeError("boom")
            return super().step(action)

        def make_tools(self):  # type: ignore[no-untyped-def]
            tool = super().make_tools()[0]
            inner = tool.fn

            def get_weather(city: str) -> str:
                assert _Rendezvous.barrier is not None
                _Rendezvous.barrier.wait()
                return inner(city)

            tool.fn = get_weather
            return [tool]

    return RendezvousWeather


def _make_rendezvous(num_envs: int, **kwargs: Any) -> ToolSyncVectorEnv:
    cls = _rendezvous_env_class()
    return ToolSyncVectorEnv([cls] * num_envs, **kwargs)


def test_auto_workers_overlap_the_tool_calls_of_concurrent_envs() -> None:
    _Rendezvous.barrier, _Rendezvous.warmed = threading.Barrier(4, timeout=10), []
    envs = _make_rendezvous(4)  # construction warms all four at once (else the barrier breaks)
    try:
        assert envs.workers == 4 and len(set(_Rendezvous.warmed)) == 4
        envs.reset(seed=0)
        call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
        _, _, _, _, infos = envs.step((call,) * 4)  # all four calls wait for each other
        assert list(infos["tool_output"]) == ["Oslo: 3 °C"] * 4
    finally:
        envs.close()


def test_auto_workers_stay_sequential_for_pure_python_envs_and_warm_can_be_off() -> None:
    envs = gym.make_vec("ToolGym/Lookup-v0", num_envs=3)
    assert envs.workers == 1 and envs._executor is None
    envs.close()
    _Rendezvous.barrier, _Rendezvous.warmed = None, []
    envs = _make_rendezvous(2, warm=False, workers=1)
    assert _Rendezvous.warmed == [] and envs.workers == 1
    envs.close()


def test_an_error_in_one_sub_env_is_raised_after_the_others_finished() -> None:
    _Rendezvous.barrier, _Rendezvous.warmed = threading.Barrier(2, timeout=10), []
    envs = _make_rendezvous(3, warm=False, workers=3)
    try:
        envs.reset(seed=0)
        ok = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
        bad = "explode"
        with pytest.raises(RuntimeError, match="boom"):
            envs.step((ok, bad, ok))  # the two good calls meet at the barrier: both ran
        assert _Rendezvous.barrier.n_waiting == 0 and not _Rendezvous.barrier.broken
    finally:
        envs.close()


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "many"])
def test_workers_must_be_positive_or_auto(workers: Any) -> None:
    with pytest.raises(ValueError, match="workers must be a positive integer or 'auto', got"):
        make_vector_env("ToolGym/Lookup-v0", 2, workers=workers)


def test_code_env_vector_is_concurrent_and_its_sandboxes_start_at_construction() -> None:
    envs = gym.make_vec("ToolGym/Code-v0", num_envs=2, sandbox="process")
    try:
        assert envs.workers == 2
        assert all(env.unwrapped.backend is not None for env in envs.envs)  # warmed
        envs.reset(seed=0)
        call = '<tool_call>{"name": "run_python", "arguments": {"code": "print(6 * 7)"}}</tool_call>'
        _, _, _, _, infos = envs.step((call, call))
        assert all("stdout:\n42" in out for out in infos["tool_output"])
    finally:
        envs.close()
