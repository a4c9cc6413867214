"""The discrete-action wrapper and the Stable-Baselines3 baselines built on it."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

from toolgym.core.actions import FinalAnswer, ToolCall
from toolgym.core.errors import ConfigError
from toolgym.envs.calc import candidates as calc_candidates
from toolgym.envs.lookup import candidates as lookup_candidates
from toolgym.envs.search import candidates as search_candidates
from toolgym.evaluation import evaluate, summarize
from toolgym.wrappers import (
    NOOP_ACTION,
    CandidateGenerator,
    CandidateState,
    DiscreteActionWrapper,
    candidate_generator_for,
    discrete,
    extract_spans,
    hashed_bag_of_words,
    register_candidates,
)

from .conftest import EXAMPLE_ID

BUILTIN_IDS = [i for i in ("ToolGym/Search-v0", "ToolGym/Lookup-v0", "ToolGym/Calc-v0") if i in gym.registry]
GENERATOR_NAMES = {"ToolGym/Search-v0": "search", "ToolGym/Lookup-v0": "lookup", "ToolGym/Calc-v0": "calc"}


def _wrapped(env_id: str, **kwargs: Any) -> DiscreteActionWrapper:
    return DiscreteActionWrapper(gym.make(env_id, **kwargs))


def _checker_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    # Checking a wrapper (not env.unwrapped) always triggers this advisory warning.
    return [str(w.message) for w in caught if "different from the unwrapped" not in str(w.message)]


@pytest.fixture(params=BUILTIN_IDS)
def builtin_id(request: pytest.FixtureRequest) -> str:
    """Each built-in env that has its own candidate generator."""
    return request.param


# ------------------------------------------------------------------------------- the wrapper


def test_builtin_envs_use_their_own_generator(builtin_id: str) -> None:
    env = _wrapped(builtin_id)
    assert env.adapter.generator.name == GENERATOR_NAMES[builtin_id]
    assert env.action_space.n == len(env.adapter.generator.slot_names)


def test_wrapper_passes_gymnasium_check_env(builtin_id: str) -> None:
    env = _wrapped(builtin_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
    assert _checker_warnings(caught) == []


def test_wrapper_passes_sb3_check_env(builtin_id: str) -> None:
    sb3_env_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = _wrapped(builtin_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_env_checker.check_env(env, warn=True)
    assert _checker_warnings(caught) == []


def test_generic_generator_wraps_an_env_without_one() -> None:
    env = _wrapped(EXAMPLE_ID)
    assert env.adapter.generator.name == "generic"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
    assert _checker_warnings(caught) == []
    obs, _ = env.reset(seed=0)
    assert env.action_masks().any()
    assert obs.shape == env.observation_space.shape


def _play(env: DiscreteActionWrapper, seed: int, turns: int = 6) -> list[tuple[list[str | None], np.ndarray]]:
    """Take the first non-empty slot after the first ``turn`` slots; record candidates and features."""
    obs, _ = env.reset(seed=seed)
    trace = [(env.candidates(), obs)]
    for turn in range(turns):
        available = np.flatnonzero(env.action_masks())
        slot = int(available[turn % len(available)]) if len(available) else 0
        obs, _, terminated, truncated, _ = env.step(slot)
        trace.append((env.candidates(), obs))
        if terminated or truncated:
            break
    return trace


def test_candidates_and_features_are_deterministic(builtin_id: str) -> None:
    first, second = _play(_wrapped(builtin_id), seed=3), _play(_wrapped(builtin_id), seed=3)
    assert [c for c, _ in first] == [c for c, _ in second]
    for (_, a), (_, b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_observation_has_fixed_shape_dtype_and_bounds(builtin_id: str) -> None:
    env = _wrapped(builtin_id)
    for seed in range(3):
        for _, obs in _play(env, seed=seed, turns=env.unwrapped.max_turns):
            assert obs.shape == env.observation_space.shape
            assert obs.dtype == np.float32
            assert env.observation_space.contains(obs)


def test_empty_slot_sends_the_noop_text_and_is_masked() -> None:
    env = _wrapped("ToolGym/Search-v0")
    env.reset(seed=0)
    mask = env.action_masks()
    assert mask.dtype == bool and mask.shape == (env.action_space.n,)
    empty = int(np.flatnonzero(~mask)[0])
    assert env.candidates()[empty] is None
    _, _, _, _, info = env.step(empty)
    assert info["action_text"] == NOOP_ACTION
    assert info["error"] == "no_action"


def test_out_of_range_action_says_what_was_expected() -> None:
    env = _wrapped("ToolGym/Lookup-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"integer in \[0, 3\)"):
        env.step(3)


# ------------------------------------------------------------------------------- candidates

SEARCH_OPS = ("search(question entity)", "open(result 1)")
CALC_SLOT_OF_STEP = {
    "add": "v + x", "sub": "v - x", "add_packs": "v + x * y", "sub_packs": "v - x * y", "times": "v * x",
    "share": "v / x", "earn": "v + x", "spend": "v - x", "buy": "v - x * y", "wage": "v + x * y",
    "interest": "v * (1 + x / 100)", "donate": "v * (1 - x / 100)", "split": "v / (x + 1)",
}


def _gold_slots(env_id: str, metadata: dict[str, Any]) -> list[str]:
    """The slot sequence that solves a task (read from the task's metadata: tests only)."""
    if env_id == "ToolGym/Search-v0":
        chain = metadata["chain"]
        plan = list(SEARCH_OPS)
        for relation in chain[:-1]:
            plan += [f"search(doc.{relation})", "open(result 1)"]
        return [*plan, f"answer(doc.{chain[-1]})"]
    if env_id == "ToolGym/Lookup-v0":
        return ["get(prompt key)"] + ["get(last output)"] * (metadata["hops"] - 1) + ["answer(last output)"]
    return [f"calculator({CALC_SLOT_OF_STEP[s]})" for s in metadata["steps"]] + ["answer(v)"]


def test_candidates_contain_a_solution_for_every_difficulty(builtin_id: str) -> None:
    env = _wrapped(builtin_id, split="test")
    names = env.adapter.slot_names
    tasks = list(env.unwrapped.task_set)
    picked = [next(t for t in tasks if t.difficulty == level) for level in ("easy", "medium", "hard")]
    for task in picked:
        env.reset(seed=0, options={"task_id": task.id})
        for slot in _gold_slots(builtin_id, task.metadata):
            assert env.action_masks()[names.index(slot)], f"{task.id}: slot {slot} is empty"
            _, reward, terminated, truncated, info = env.step(names.index(slot))
        assert terminated and info["success"] and reward == 1.0, task.id


def test_calc_focus_is_the_sentence_of_the_next_number() -> None:
    prompt = "Ann has 5 pens. She buys 3 packs of 4 pens each. She loses 2 pens. How many pens does Ann have now?"
    state = CandidateState(prompt, [], prompt, 0, 12, [])
    assert calc_candidates.calc_focus(state) == "She buys 3 packs of 4 pens each."
    assert calc_candidates.calc_candidates(state)[4] == ToolCall("calculator", {"expression": "5 + 3 * 4"})
    state.history.append(discrete.Turn(4, ToolCall("calculator", {"expression": "5 + 3 * 4"}), "17", None))
    assert calc_candidates.calc_focus(state) == "She loses 2 pens."
    assert calc_candidates.calc_candidates(state)[1] == ToolCall("calculator", {"expression": "17 - 2"})
    assert calc_candidates.calc_candidates(state)[-1] == FinalAnswer("17")


def test_question_entity_skips_the_question_word() -> None:
    assert search_candidates.question_entity("In which city was Varnel Oskaru born?") == "Varnel Oskaru"
    assert search_candidates.question_entity("The city of Veikviby lies in which country?") == "Veikviby"


def test_extract_spans_finds_ids_keys_names_and_numbers() -> None:
    spans = extract_spans("Open d00042. Then ask Kelvani Systems about K7 and 12.5 units.")
    assert spans[:3] == ["d00042", "K7", "Kelvani Systems"]
    assert "12.5" in spans and "Then" not in spans


def test_hashed_bag_of_words_is_stable_and_binary() -> None:
    a = hashed_bag_of_words("Who founded Kelvani Systems in 1950?", 64)
    b = hashed_bag_of_words("who FOUNDED kelvani systems in 2001?", 64)
    np.testing.assert_array_equal(a, b)  # case and the value of numbers do not matter
    assert a.dtype == np.float32 and set(np.unique(a)) <= {0.0, 1.0}


def test_register_candidates_by_class_takes_precedence_over_generic() -> None:
    class Marker:
        pass

    class Child(Marker):
        pass

    generator = register_candidates(Marker, lambda s: [FinalAnswer("x")], slot_names=["answer(x)"])
    try:
        assert candidate_generator_for(None, Child) is generator
        assert candidate_generator_for(None, int, []).name == "generic"
    finally:
        discrete._GENERATORS.pop(Marker)


def test_register_candidates_needs_slot_names_for_a_plain_function() -> None:
    with pytest.raises(ConfigError, match="slot_names"):
        register_candidates("X/Y-v0", lambda s: [])
    with pytest.raises(ConfigError, match="duplicate"):
        CandidateGenerator(("a", "a"), lambda s: [])


def test_toolgym_wrappers_do_not_import_torch_or_sb3() -> None:
    code = (
        "import sys, toolgym.wrappers; "
        "bad = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------- SB3 training


@pytest.fixture(scope="module")
def tiny_ppo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PPO model trained for a few hundred steps on Lookup-v0 (easy tasks)."""
    pytest.importorskip("stable_baselines3")
    from baselines.agents.sb3 import TrainConfig, train

    out = tmp_path_factory.mktemp("sb3") / "lookup_ppo.zip"
    config = TrainConfig(
        env_id="ToolGym/Lookup-v0", out=str(out), algo="ppo", timesteps=256, seed=0, n_envs=2,
        difficulty=["easy"], hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 2},
    )
    return train(config)


def test_training_saves_model_and_sidecar(tiny_ppo: Path) -> None:
    from baselines.agents.sb3 import sidecar_path

    assert tiny_ppo.is_file() and tiny_ppo.stat().st_size < 5_000_000
    meta = json.loads(sidecar_path(tiny_ppo).read_text())
    assert meta["env_id"] == "ToolGym/Lookup-v0" and meta["algo"] == "ppo"
    assert meta["timesteps"] == 256 and meta["seed"] == 0 and meta["difficulty"] == ["easy"]
    assert meta["wrapper"]["slot_names"] == list(lookup_candidates.LOOKUP_SLOTS)
    assert set(meta["versions"]) >= {"toolgym", "stable_baselines3", "torch"}


def test_training_changes_the_parameters(tiny_ppo: Path) -> None:
    from stable_baselines3 import PPO

    from baselines.agents.sb3 import DEFAULT_HYPERPARAMS, make_env

    trained = PPO.load(tiny_ppo, device="cpu")
    env = make_env("ToolGym/Lookup-v0")
    hyper = {**DEFAULT_HYPERPARAMS["ppo"], "n_steps": 64, "batch_size": 64, "n_epochs": 2}
    initial = PPO("MlpPolicy", env, seed=0, device="cpu", **hyper)
    before, after = initial.policy.state_dict(), trained.policy.state_dict()
    assert before.keys() == after.keys()
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before)
    assert all(np.isfinite(v.numpy()).all() for v in after.values())


def test_sb3_agent_plays_through_evaluate(tiny_ppo: Path) -> None:
    from baselines.agents import make_agent
    from baselines.agents.sb3 import SB3Agent

    agent = make_agent(f"sb3:{tiny_ppo}", None, seed=0)
    assert isinstance(agent, SB3Agent)
    results = evaluate("ToolGym/Lookup-v0", agent, episodes=5, split="test", seed=0)
    summary = summarize(results)
    assert summary.episodes == 5
    assert summary.format_error_rate < 1.0  # it sends tool calls, not only empty slots


def test_sb3_agent_acts_like_the_policy_on_the_wrapped_env(tiny_ppo: Path) -> None:
    from baselines.agents.sb3 import SB3Agent

    agent = SB3Agent(tiny_ppo)
    text_env = gym.make("ToolGym/Lookup-v0", split="test")
    wrapped = _wrapped("ToolGym/Lookup-v0", split="test")
    for seed in range(3):
        obs, _ = wrapped.reset(seed=seed)
        text_obs, info = text_env.reset(seed=seed)
        agent.reset(seed=seed)
        done = False
        while not done:
            slot, _ = agent.model.predict(obs, deterministic=True)
            expected = wrapped.adapter.action_text(int(slot))
            assert agent.act(text_obs, info) == expected
            obs, _, terminated, truncated, _ = wrapped.step(int(slot))
            text_obs, _, t2, tr2, info = text_env.step(expected)
            assert (terminated or truncated) == (t2 or tr2)
            done = terminated or truncated


@pytest.mark.parametrize("algo", ["dqn", "maskable_ppo"])
def test_other_algorithms_train_and_load(algo: str, tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    if algo == "maskable_ppo":
        pytest.importorskip("sb3_contrib")
    from baselines.agents.sb3 import SB3Agent, TrainConfig, train

    hyper = {"learning_starts": 50} if algo == "dqn" else {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
    path = train(TrainConfig("ToolGym/Lookup-v0", str(tmp_path / algo), algo=algo, timesteps=128, n_envs=2,
                             hyperparams=hyper))
    results = evaluate("ToolGym/Lookup-v0", SB3Agent(path), episodes=3, split="test")
    assert len(results) == 3


def test_cli_train_and_eval_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("stable_baselines3")
    from baselines.agents.sb3 import main

    out = tmp_path / "m.zip"
    assert main(["train", "--env", "ToolGym/Lookup-v0", "--algo", "ppo", "--timesteps", "128", "--seed", "1",
                 "--out", str(out), "--n-envs", "2", "--hyperparams", '{"n_steps": 64, "batch_size": 64}']) == 0
    assert main(["eval", str(out), "--episodes", "3", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["agents"]) == {"sb3:ppo", "random", "random_slots"}
    assert "success" in capsys.readouterr().out


def test_sb3_agent_reports_a_missing_model(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    from baselines.agents.sb3 import SB3Agent

    with pytest.raises(ConfigError, match="No SB3 model"):
        SB3Agent(tmp_path / "nope.zip")
