"""TRL adapter: a ToolGym env id trains with TRL's GRPOTrainer, with ToolGym's rewards and errors."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import ENV_ID, ENV_KWARGS, require

trl = require("trl", "trl")
require("datasets", "trl")
transformers = require("transformers", "trl")

from toolgym.core.formats import ANSWER_OPEN, RESPONSE_OPEN  # noqa: E402
from toolgym.integrations._session import oracle_conversations, replay_reward  # noqa: E402
from toolgym.integrations.trl import TRLAdapter, prepare_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def adapter() -> TRLAdapter:
    """The Lookup env exposed to TRL, with an invalid-action penalty (so rewards vary)."""
    return TRLAdapter(ENV_ID, system_prompt=None, **ENV_KWARGS)


def test_each_toolgym_tool_is_an_environment_method_with_its_schema(adapter: TRLAdapter) -> None:
    from transformers.utils import get_json_schema

    env = adapter.environment_factory()
    for schema in adapter.tools:
        expected = schema["function"]
        rendered = get_json_schema(getattr(env, expected["name"]))["function"]
        assert rendered["name"] == expected["name"]
        assert rendered["description"] == " ".join(expected["description"].split())
        params = expected["parameters"]
        assert set(rendered["parameters"]["properties"]) == set(params["properties"])
        assert sorted(rendered["parameters"].get("required", [])) == sorted(params.get("required", []))
        for name, prop in params["properties"].items():
            assert rendered["parameters"]["properties"][name]["type"] == prop["type"]


def test_json_schema_types_survive_the_python_signature() -> None:
    from transformers.utils import get_json_schema

    from toolgym.integrations.trl import _tool_method

    parameters = {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["fast", "exact"], "description": "How to search."},
            "ids": {"type": "array", "items": {"type": "integer"}, "description": "Ids."},
            "limit": {"type": ["integer", "null"], "minimum": 1, "description": "At most this many."},
            "filters": {"type": "object", "description": "Field filters."},
            "weight": {"type": "number"},
        },
        "required": ["mode", "ids"],
    }
    method = _tool_method("find.items", "Find items.\nReturns: a list.", parameters)
    rendered = get_json_schema(method)["function"]
    props = rendered["parameters"]["properties"]
    assert rendered["name"] == "find.items"
    assert props["mode"]["enum"] == ["fast", "exact"]
    assert props["ids"] == {"type": "array", "items": {"type": "integer"}, "description": "Ids."}
    assert props["limit"]["type"] == "integer" and props["limit"]["nullable"] is True
    assert props["filters"]["type"] == "object" and props["weight"]["type"] == "number"
    assert sorted(rendered["parameters"]["required"]) == ["ids", "mode"]


def test_every_registered_env_exposes_all_its_tools_to_trl(env_id: str) -> None:
    from transformers.utils import get_json_schema

    adapter = TRLAdapter(env_id)
    env = adapter.environment_factory()
    names = [s["function"]["name"] for s in adapter.tools]
    assert [get_json_schema(getattr(env, name))["function"]["name"] for name in names] == names
    assert env.reset(seed=0) == env.episode.task_prompt != ""


def test_search_env_schemas_render_for_trl() -> None:
    from transformers.utils import get_json_schema

    search = TRLAdapter("ToolGym/Search-v0")
    env = search.environment_factory()
    rendered = get_json_schema(env.search)["function"]["parameters"]
    assert rendered["properties"]["k"]["type"] == "integer"
    assert rendered["required"] == ["query"]


def test_tool_calls_are_toolgym_steps_with_typed_errors_and_info(adapter: TRLAdapter) -> None:
    env = adapter.environment_factory()
    prompt = env.reset(seed=0, task_id="lookup-train-00003")
    assert prompt.startswith("Find the value of key")
    bad = env.get(key=7)
    assert bad.startswith("Error [schema_violation]:")
    assert RESPONSE_OPEN not in bad  # the chat template adds the wrapping
    unknown_arg = env.get(key="K1", page=2)
    assert unknown_arg.startswith("Error [schema_violation]:")
    steps = env.episode.steps
    assert [s.info["error"] for s in steps] == ["schema_violation", "schema_violation"]
    assert [s.reward for s in steps] == [-0.1, -0.1]
    assert steps[0].info["turn"] == 1 and steps[1].info["turn"] == 2


def test_oracle_conversation_through_the_adapter_succeeds(adapter: TRLAdapter) -> None:
    import gymnasium as gym

    task_id = next(iter(gym.make(ENV_ID).unwrapped.task_set)).id
    conversation = oracle_conversations(ENV_ID, 1, **ENV_KWARGS)[0]
    env = adapter.environment_factory()
    env.reset(seed=0, task_id=task_id)
    for message in conversation[1:]:
        for call in message.get("tool_calls") or []:
            output = getattr(env, call["function"]["name"])(**call["function"]["arguments"])
            assert not output.startswith("Error")
    rewards = adapter.toolgym_reward([conversation[1:]], [env])
    record = env.episode
    assert conversation[-1]["content"].startswith(ANSWER_OPEN)
    assert rewards == [1.0] and record.success and record.stop_reason == "answer"
    assert record.reward == replay_reward(record, **ENV_KWARGS)


def test_a_rollout_ending_on_a_tool_result_has_no_answer(adapter: TRLAdapter) -> None:
    env = adapter.environment_factory()
    env.reset(seed=0, task_id="lookup-train-00003")
    env.get(key="K1")
    completion = [
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get", "arguments": {"key": "K1"}}}]},
        {"role": "tool", "name": "get", "content": "x"},
    ]
    assert adapter.toolgym_reward([completion], [env]) == [0.0]
    assert env.episode.stop_reason == "no_final_reply"


def test_importing_toolgym_integrations_does_not_import_trl() -> None:
    code = "import toolgym, toolgym.integrations, sys; assert not {'trl', 'verifiers', 'torch'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_unknown_env_id_fails_clearly() -> None:
    import gymnasium as gym

    with pytest.raises(gym.error.Error, match="Lookup"):
        TRLAdapter("ToolGym/Lookupp-v0")


@pytest.mark.slow
def test_grpo_trainer_trains_on_a_toolgym_env_and_logs_its_rewards(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, local_files_only=True)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_checkpoint, local_files_only=True))
    adapter = TRLAdapter(ENV_ID, system_prompt=None, **ENV_KWARGS)
    logged: list[dict[str, Any]] = []

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, D102
            if logs and "rewards/toolgym_reward/mean" in logs:
                logged.append(dict(logs))

    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        per_device_train_batch_size=12,
        num_generations=4,
        max_completion_length=96,
        max_tool_calling_iterations=4,
        learning_rate=1e-3,
        temperature=1.0,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, args=args, callbacks=[Record()], **adapter.trainer_kwargs(num_tasks=24)
    )
    trainer.train()

    assert trainer.state.global_step == 2
    changed = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert changed, "GRPO did not change any parameter"

    # Every rollout is one ToolGym episode; replaying its actions in a fresh env gives its reward.
    assert len(adapter.episodes) == 24
    for record in adapter.episodes:
        assert record.reward == pytest.approx(replay_reward(record, **ENV_KWARGS), abs=1e-9)
    assert any(step.kind == "tool" for r in adapter.episodes for step in r.steps)  # TRL called tools
    # A GRPO group (4 rollouts) plays one task.
    for start in range(0, 24, 4):
        assert len({r.task_id for r in adapter.episodes[start : start + 4]}) == 1

    # The rewards TRL logged are ToolGym's rewards for the same episodes.
    assert len(logged) == 2
    for step, entry in enumerate(logged):
        rewards = [r.reward for r in adapter.episodes[step * 12 : (step + 1) * 12]]
        assert entry["rewards/toolgym_reward/mean"] == pytest.approx(statistics.fmean(rewards), abs=1e-6)
        assert entry["rewards/toolgym_reward/std"] == pytest.approx(statistics.stdev(rewards), abs=1e-6)
        assert entry["reward"] == pytest.approx(statistics.fmean(rewards), abs=1e-6)
        assert math.isfinite(entry["loss"])
        assert 0.0 <= entry["toolgym/success"] <= 1.0


def test_trl_extra_requires_the_transformers_environment_factory_needs() -> None:
    from pathlib import Path

    import tomllib
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    requirements = [Requirement(r) for r in pyproject["project"]["optional-dependencies"]["trl"]]
    transformers_pin = next(r for r in requirements if r.name == "transformers")
    assert "5.1.9" not in transformers_pin.specifier and "5.2.0" in transformers_pin.specifier


def test_trl_example_does_not_silence_upstream_warnings() -> None:
    example = (Path(__file__).parents[2] / "examples" / "trl_grpo_search.py").read_text()
    assert "TRL_EXPERIMENTAL_SILENCE" not in example
