"""verifiers adapter: ``vf-eval`` on a ToolGym env scores like ``toolgym run`` (same model, seeds)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import ENV_ID, require

require("verifiers", "verifiers")

ROOT = Path(__file__).parents[2]
SHIM_DIR = ROOT / "examples" / "verifiers_toolgym"
EPISODES = 6
MAX_TURNS = 4
MAX_TOKENS = 48
SEED = 3

if str(SHIM_DIR) not in sys.path:
    sys.path.insert(0, str(SHIM_DIR))

from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN  # noqa: E402
from toolgym.integrations._session import EpisodeSession  # noqa: E402
from toolgym.integrations.verifiers import (  # noqa: E402
    ToolGymTasksetConfig,
    _play_reply,
    _play_text_reply,
    episode_to_json,
    load_environment,
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path) -> Iterator[Any]:
    """The tiny model behind the repo's OpenAI-compatible server."""
    from baselines.serve import serve_in_thread

    with serve_in_thread(tiny_checkpoint, host="127.0.0.1", port=0) as handle:
        yield handle


def test_load_environment_plans_the_episodes_toolgym_run_plays() -> None:
    env = load_environment(ENV_ID, num_episodes=3, seed=SEED, max_turns=MAX_TURNS)
    tasks = list(env.taskset)
    probe = EpisodeSession(ENV_ID, split="test", max_turns=MAX_TURNS)
    expected = [probe.reset(seed=SEED + i)[1]["task_id"] for i in range(3)]
    assert [t.data.task_id for t in tasks] == expected
    assert [t.data.seed for t in tasks] == [SEED, SEED + 1, SEED + 2]
    assert tasks[0].data.tools == probe.tool_schemas  # exact ToolGym schemas
    everything = load_environment(ENV_ID, split="dev")
    assert len(list(everything.taskset)) == len(list(probe.env.unwrapped.load_tasks("dev")))


def test_every_registered_env_loads_as_a_verifiers_environment(env_id: str) -> None:
    env = load_environment(env_id, split="train", num_episodes=1)
    (task,) = list(env.taskset)
    assert task.data.prompt and task.data.tools
    assert task.data.tools == [t for t in task.data.tools if t["type"] == "function"]


def test_unknown_kwargs_go_to_gymnasium_make() -> None:
    env = load_environment(ENV_ID, num_episodes=1, success_reward=2.0)
    assert env.taskset.config.env_kwargs == {"success_reward": 2.0}
    assert isinstance(env.taskset.config, ToolGymTasksetConfig)


def test_harness_keeps_typed_errors_and_step_info() -> None:
    session = EpisodeSession(ENV_ID, invalid_action={"penalty": -0.1}, max_turns=MAX_TURNS)
    session.reset(seed=0)
    messages: list[dict[str, Any]] = []
    bad_call = {"id": "c1", "type": "function", "function": {"name": "get", "arguments": '{"key": 5}'}}
    _play_reply(session, messages, {"role": "assistant", "content": None, "tool_calls": [bad_call]})
    unknown = {"id": "c2", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}
    _play_reply(session, messages, {"role": "assistant", "content": None, "tool_calls": [unknown]})
    broken = {"id": "c3", "type": "function", "function": {"name": "get", "arguments": "{key"}}
    _play_reply(session, messages, {"role": "assistant", "content": None, "tool_calls": [broken]})
    assert [m["content"].split("]")[0] for m in messages if m["role"] == "tool"] == [
        "Error [schema_violation",
        "Error [unknown_tool",
        "Error [bad_json",
    ]
    _play_reply(session, messages, {"role": "assistant", "content": ANSWER_OPEN + "D1" + ANSWER_CLOSE})
    episode = episode_to_json(session.record)
    assert [s["error"] for s in episode["steps"]] == ["schema_violation", "unknown_tool", "bad_json", None]
    assert episode["reward"] == pytest.approx(-0.3 + (1.0 if episode["success"] else 0.0))
    assert episode["steps"][-1]["parsed"] == {"type": "answer", "text": "D1"}
    json.dumps(episode)  # JSON-safe for traces.jsonl


def test_text_protocol_replies_are_actions_and_observations_are_user_messages() -> None:
    session = EpisodeSession(ENV_ID, max_turns=MAX_TURNS)
    _, info = session.reset(seed=0)
    messages: list[dict[str, Any]] = []
    call = '<tool_call>{"name": "get", "arguments": {"key": "K1"}}</tool_call>'
    _play_text_reply(session, messages, {"role": "assistant", "content": call})
    step = session.record.steps[-1]
    assert step.action == call and not session.done
    assert messages == [{"role": "assistant", "content": call}, {"role": "user", "content": step.observation}]
    assert step.observation.startswith("<tool_response>")  # the env's own wrapping, as in training
    _play_text_reply(session, messages, {"role": "assistant", "content": "<answer>D1</answer>"})
    assert session.done and episode_to_json(session.record)["steps"][-1]["parsed"] == {"type": "answer", "text": "D1"}


def test_protocol_reaches_the_tasks() -> None:
    (task,) = list(load_environment(ENV_ID, num_episodes=1, protocol="text").taskset)
    assert task.data.protocol == "text"


def _vf_eval(server: Any, out: Path) -> list[dict[str, Any]]:
    config = out / "eval.toml"
    config.write_text(
        f"""
model = "{server.model}"
num_rollouts = 1
max_concurrent = 4
push = false
output_dir = "{out}"

[env.taskset]
id = "toolgym-verifiers"
env_id = "{ENV_ID}"
num_episodes = {EPISODES}
seed = {SEED}
max_turns = {MAX_TURNS}

[client]
base_url = "{server.base_url}"

[sampling]
temperature = 0.0
max_tokens = {MAX_TOKENS}
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", "from verifiers.v1.cli.eval.main import main; main()", "@", str(config), "--no-rich"],
        capture_output=True, text=True, env=_env(), cwd=out, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    traces_files = list(out.rglob("traces.jsonl"))
    assert len(traces_files) == 1, result.stdout[-2000:]
    episodes = [json.loads(line) for line in traces_files[0].read_text().splitlines() if line.strip()]
    return [trace for episode in episodes for trace in episode["traces"]]


@pytest.mark.slow
def test_vf_eval_scores_match_toolgym_run(server: Any, tmp_path: Path) -> None:
    import gymnasium as gym

    from baselines.agents import make_agent
    from toolgym.evaluation import evaluate, summarize

    traces = _vf_eval(server, tmp_path)
    assert len(traces) == EPISODES
    assert all(t["ok"] and not t["errors"] for t in traces)
    by_seed = {t["info"]["toolgym"]["seed"]: t for t in traces}
    assert any(s["kind"] == "tool" for t in traces for s in t["info"]["toolgym"]["steps"])  # tools were used

    # What `toolgym run ENV --agent openai:MODEL@URL --episodes N --seed S --max-turns T` computes.
    spec = f"openai:{server.model}@{server.base_url}?temperature=0&max_tokens={MAX_TOKENS}"
    probe = gym.make(ENV_ID, split="test", max_turns=MAX_TURNS)
    agent = make_agent(spec, probe, seed=SEED)
    probe.close()
    results = evaluate(ENV_ID, agent, episodes=EPISODES, split="test", seed=SEED, env_kwargs={"max_turns": MAX_TURNS})

    for result in results:
        trace = by_seed[result.seed]
        episode = trace["info"]["toolgym"]
        assert episode["task_id"] == result.task_id
        assert trace["rewards"]["toolgym_reward"]["score"] == pytest.approx(result.reward)
        assert trace["metrics"]["toolgym_success"] == float(result.success)
        assert trace["metrics"]["toolgym_turns"] == result.turns
        assert episode["stop_reason"] == result.stop_reason
        codes: dict[str, int] = {}
        for step in episode["steps"]:
            if step["error"]:
                codes[step["error"]] = codes.get(step["error"], 0) + 1
        assert codes == result.error_codes

    # And the CLI's printed summary agrees with the verifiers scores.
    cli = subprocess.run(
        [sys.executable, "-c", "from toolgym.cli import main; main()", "run", ENV_ID, "--agent", spec,
         "--episodes", str(EPISODES), "--seed", str(SEED), "--max-turns", str(MAX_TURNS)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    summary = summarize(results)
    success = float(re.search(r"success rate\s+([0-9.]+)", cli.stdout).group(1))
    turns = float(re.search(r"mean turns\s+([0-9.]+)", cli.stdout).group(1))
    vf_success = sum(t["metrics"]["toolgym_success"] for t in traces) / EPISODES
    vf_turns = sum(t["metrics"]["toolgym_turns"] for t in traces) / EPISODES
    assert success == pytest.approx(round(vf_success, 3)) == pytest.approx(round(summary.success_rate, 3))
    assert turns == pytest.approx(round(vf_turns, 2))


def _vf_eval_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from verifiers.v1.cli.eval.main import main; main()", *args],
        capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300,
    )


def test_vf_eval_fails_loudly_when_every_rollout_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens: every model call fails
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _vf_eval_cli(
        ["toolgym-verifiers", "--env.taskset.env-id", ENV_ID, "--env.taskset.num-episodes", "2",
         "--model", "nothing", "--client.base-url", f"http://127.0.0.1:{port}/v1",
         "--no-push", "--no-rich", "-o", str(tmp_path / "out")],
        tmp_path,
    )
    assert result.returncode != 0
    assert "All 2 ToolGym rollouts failed" in result.stderr + result.stdout


@pytest.mark.slow
def test_readme_vf_eval_command_solves_lookup_with_the_committed_model(tmp_path: Path) -> None:
    """The README's command (text protocol, no system prompt: how the committed model was
    trained) against ``python -m baselines.serve`` serving the committed model."""
    from baselines.serve import serve_in_thread

    model = ROOT / "benchmarks" / "results" / "leaderboard" / "models" / "lookup_sft"
    with serve_in_thread(model, host="127.0.0.1", port=0) as handle:
        result = _vf_eval_cli(
            ["toolgym-verifiers", "--env.taskset.env-id", "ToolGym/Lookup-v0", "--env.taskset.num-episodes", "20",
             "--env.taskset.max-turns", "4", "--env.taskset.protocol", "text",
             "--env.taskset.native-system-prompt", "false", "--model", handle.model,
             "--client.base-url", handle.base_url, "--sampling.temperature", "0", "--no-push", "--no-rich",
             "-o", str(tmp_path / "outputs")],
            tmp_path,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    (traces_file,) = (tmp_path / "outputs").rglob("traces.jsonl")
    traces = [t for line in traces_file.read_text().splitlines() if line.strip() for t in json.loads(line)["traces"]]
    assert len(traces) == 20 and all(t["ok"] for t in traces)
    assert sum(t["metrics"]["toolgym_success"] for t in traces) / 20 > 0
