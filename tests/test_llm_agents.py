"""LLM agents: the local agent, the OpenAI-compatible server and the server agent, end to end.

One tiny GPT (trained for a few seconds on Lookup oracle trajectories, with our BPE tokenizer) is
built per session; the server serves it from a thread on 127.0.0.1, so the server agent talks to
a real model over HTTP, and its results must equal the local agent's under greedy decoding.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from baselines.agents import AGENT_NAMES, make_agent, parse_llm_spec  # noqa: E402
from baselines.agents.chat import ChatTranscript, parse_tool_calls  # noqa: E402
from baselines.agents.llm import AGENT_SETTINGS_FILE, LLMAgent, LocalChatModel, read_agent_settings  # noqa: E402
from baselines.agents.openai_server import OpenAIChatAgent, ServerError, agent_from_spec  # noqa: E402
from baselines.leaderboard import run_leaderboard  # noqa: E402
from baselines.llm.tokenizer import IM_START  # noqa: E402
from baselines.serve import ServerHandle, serve_in_thread  # noqa: E402
from toolgym.core.errors import ConfigError  # noqa: E402
from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN, CALL_CLOSE, CALL_OPEN  # noqa: E402
from toolgym.core.policy import supports_batch  # noqa: E402
from toolgym.evaluation import EpisodeResult, run_episode, run_episodes_batched  # noqa: E402

LOOKUP = "ToolGym/Lookup-v0"
MAX_NEW_TOKENS = 32


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def expert_trajectories() -> list[Any]:
    """Oracle trajectories on 64 Lookup training tasks."""
    from baselines.train.envs import ExpertBank, task_ids

    bank = ExpertBank(LOOKUP, "train")
    return bank.many(task_ids(bank.env, 64))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, expert_trajectories: list[Any]) -> Path:
    """A tiny GPT-2 with our BPE tokenizer, briefly SFT-trained on Lookup, saved as an HF directory
    with ``toolgym_agent.json`` (text protocol, no system prompt: how it was trained)."""
    from baselines.llm.model import TinyLMConfig, build_tiny_model, save_pretrained
    from baselines.llm.tokenizer import ChatFormat, conversation_text, train_tokenizer
    from baselines.train.sft import sft_step

    texts = [conversation_text(t.system, t.user, t.actions, t.observations) for t in expert_trajectories]
    tokenizer = train_tokenizer(texts, vocab_size=400, model_max_length=512)
    model = build_tiny_model(
        TinyLMConfig(d_model=48, n_layers=2, n_heads=4, d_ff=96, max_positions=512), tokenizer, seed=0
    )
    chat = ChatFormat(tokenizer, include_system_prompt=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(30):
        batch = [expert_trajectories[(step * 16 + i) % len(expert_trajectories)] for i in range(16)]
        sft_step(
            model,
            optimizer,
            chat,
            batch,
            temperature=1.0,
            grad_clip=1.0,
            max_observation_tokens=64,
            step=step,
        )
    path = save_pretrained(model, tokenizer, tmp_path_factory.mktemp("tiny") / "model")
    settings = {"protocol": "text", "system": "none", "max_new_tokens": MAX_NEW_TOKENS}
    (path / AGENT_SETTINGS_FILE).write_text(json.dumps(settings))
    return path


@pytest.fixture(scope="module")
def local_model(model_dir: Path) -> LocalChatModel:
    """The tiny model loaded once (shared by the local agents and the server)."""
    return LocalChatModel(model_dir)


@pytest.fixture(scope="module")
def server(local_model: LocalChatModel) -> Iterator[ServerHandle]:
    """``baselines.serve`` serving the tiny model on 127.0.0.1 (a free port)."""
    with serve_in_thread(local_model, host="127.0.0.1", port=0) as handle:
        yield handle


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _key(result: EpisodeResult) -> tuple[Any, ...]:
    return (
        result.task_id,
        result.success,
        result.reward,
        result.turns,
        result.error_codes,
        result.stop_reason,
    )


# ---------------------------------------------------------------------------------------- prompts
def test_rendered_prompts_equal_the_training_token_layout(
    local_model: LocalChatModel, expert_trajectories: list[Any]
) -> None:
    from baselines.llm.tokenizer import ChatFormat

    chat = ChatFormat(local_model.tokenizer, include_system_prompt=False)
    for traj in expert_trajectories[:5]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": traj.user}]
        expected = chat.prompt_ids(None, traj.user)
        for turn, action in enumerate(traj.actions):
            assert local_model.encode(local_model.render(messages)) == expected
            messages.append({"role": "assistant", "content": action})
            expected = expected + chat.action_ids(action)
            if turn < len(traj.observations):
                messages.append({"role": "user", "content": traj.observations[turn]})
                expected = expected + chat.observation_ids(traj.observations[turn])


def test_agent_cuts_observations_as_the_trainer_does(local_model: LocalChatModel) -> None:
    from baselines.llm.tokenizer import ChatFormat

    chat = ChatFormat(local_model.tokenizer, include_system_prompt=False)
    agent = LLMAgent(local_model, protocol="text", system="none", max_observation_tokens=24)
    agent.reset(seed=0)
    long = "Result: " + " ".join(f"row {i} has value {i * 7}" for i in range(40)) + " </tool_response>"
    task = "Look up " + " ".join(f"item {i}" for i in range(30))
    agent.act(task, {"task_prompt": task})  # the task prompt is never cut
    assert agent.transcripts[0].messages[0]["content"] == task and len(chat.encode(task)) > 24
    agent.act(long, {})
    cut = agent.transcripts[0].messages[2]["content"]
    trained = chat.observation_ids(long, 24)[len(chat.encode(f"\n{IM_START}user\n")):]
    assert cut.endswith("</tool_response>") and len(chat.encode(cut)) <= 24 + 2  # a merge at the cut at most
    assert chat.encode(cut)[:10] == trained[:10] and len(chat.encode(long)) > 100
    short = "Result: 42"
    assert agent.cut(short) is short
    with pytest.raises(ConfigError, match="needs protocol='text'"):
        LLMAgent(local_model, protocol="native", max_observation_tokens=24)
    with pytest.raises(ConfigError, match="must be > 4"):
        LLMAgent(local_model, protocol="text", system="none", max_observation_tokens=4)


def test_agent_settings_come_from_the_checkpoint(model_dir: Path, tmp_path: Path) -> None:
    assert read_agent_settings(model_dir) == {
        "protocol": "text",
        "system": "none",
        "max_new_tokens": MAX_NEW_TOKENS,
    }
    (tmp_path / "config.yaml").write_text("include_system_prompt: true\nmax_new_tokens: 40\nmax_observation_tokens: 128\n")
    (tmp_path / "model").mkdir()
    assert read_agent_settings(tmp_path / "model") == {
        "protocol": "text",
        "system": "env",
        "max_new_tokens": 40,
        "max_observation_tokens": 128,
    }
    assert read_agent_settings(tmp_path) == {}


# ------------------------------------------------------------------------------------ local agent
def test_llm_agent_plays_every_env(env_id: str, model_dir: Path) -> None:
    env = gym.make(env_id, split="test")
    agent = make_agent(f"llm:{model_dir}", env)
    assert isinstance(agent, LLMAgent) and supports_batch(agent)
    for seed in (0, 1):
        result = run_episode(env, agent, seed=seed, env_id=env_id)
        assert result.turns >= 1 and (agent.tokens_used > 0 or agent.context_overflows > 0)
        assert agent.transcripts[0].messages[0]["role"] == "user"  # no system prompt: as trained
        assert all(m["role"] in ("user", "assistant") for m in agent.transcripts[0].messages)
    env.close()


def test_trained_tiny_model_emits_tool_calls(local_model: LocalChatModel) -> None:
    env = gym.make(LOOKUP, split="test")
    agent = LLMAgent(local_model)
    replies = []
    for seed in range(3):
        run_episode(env, agent, seed=seed)
        replies += [m["content"] for m in agent.transcripts[0].messages if m["role"] == "assistant"]
    assert any(r.startswith(CALL_OPEN + '{"name": "get", "arguments": {"key": "') for r in replies), replies
    env.close()


def test_batched_episodes_equal_sequential_ones(local_model: LocalChatModel) -> None:
    env = gym.make(LOOKUP, split="test", record_timing=True)
    agent = LLMAgent(local_model)
    seeds = [0, 1, 2, 3, 4]
    sequential = [run_episode(env, agent, seed=s, env_id=LOOKUP) for s in seeds]
    batched = run_episodes_batched(env, agent, seeds, batch_size=3, env_id=LOOKUP)
    assert [_key(r) for r in sequential] == [_key(r) for r, _ in batched]
    assert all(tokens > 0 for _, tokens in batched)
    env.close()


def test_sampling_is_seeded(local_model: LocalChatModel) -> None:
    env = gym.make(LOOKUP, split="test")
    agent = LLMAgent(local_model, temperature=1.0)
    first = run_episode(env, agent, seed=7)
    texts = [m["content"] for m in agent.transcripts[0].messages]
    second = run_episode(env, agent, seed=7)
    assert _key(first) == _key(second) and texts == [m["content"] for m in agent.transcripts[0].messages]
    env.close()


def test_context_overflow_ends_the_episode_with_an_empty_answer(local_model: LocalChatModel) -> None:
    env = gym.make(LOOKUP, split="test")
    agent = LLMAgent(local_model, max_new_tokens=8)
    observation, info = env.reset(seed=0)
    agent.reset(seed=0)
    long_info = {**info, "task_prompt": "K1 " * 2000}
    assert agent.act(observation, long_info) == ANSWER_OPEN + ANSWER_CLOSE
    assert agent.context_overflows == 1
    env.close()


# ------------------------------------------------------------------------------------------ server
def test_server_answers_chat_completions(server: ServerHandle) -> None:
    status, models = _post(server.base_url.replace("/v1", "/v1/chat/completions"), {"messages": []})
    assert status == 400 and "messages" in models["error"]["message"]
    body = {
        "model": server.model,
        "messages": [{"role": "user", "content": "Find the value of K3."}],
        "max_tokens": 12,
        "temperature": 0,
    }
    status, reply = _post(server.base_url + "/chat/completions", body)
    assert status == 200 and reply["object"] == "chat.completion"
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    assert (
        reply["usage"]["total_tokens"]
        == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]
    )
    with urllib.request.urlopen(server.base_url + "/models", timeout=10) as response:
        assert json.loads(response.read())["data"][0]["id"] == server.model


def test_serve_command_prints_its_url_and_serves(model_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "baselines.serve", "--model", str(model_dir), "--port", "0", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving 'model' at http://127.0.0.1:"), line
        base_url = line.split(" at ")[1].strip()
        with urllib.request.urlopen(base_url.removesuffix("/v1") + "/health", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_server_sampling_is_reproducible_with_a_seed(server: ServerHandle) -> None:
    body = {
        "messages": [{"role": "user", "content": "Find the value of K3."}],
        "max_tokens": 16,
        "temperature": 1.0,
        "seed": 3,
    }
    first = _post(server.base_url + "/chat/completions", body)[1]["choices"][0]["message"]["content"]
    second = _post(server.base_url + "/chat/completions", body)[1]["choices"][0]["message"]["content"]
    assert first == second


def test_server_cuts_at_stop_strings(server: ServerHandle) -> None:
    body = {
        "messages": [{"role": "user", "content": "Find the value of K3."}],
        "max_tokens": 24,
        "temperature": 0,
    }
    full = _post(server.base_url + "/chat/completions", body)[1]["choices"][0]["message"]["content"]
    assert len(full) > 2
    stop = full[1:3]
    cut = _post(server.base_url + "/chat/completions", {**body, "stop": [stop]})[1]["choices"][0]
    assert cut["message"]["content"] == full[: full.index(stop)] and cut["finish_reason"] == "stop"


def test_server_rejects_bad_requests_clearly(server: ServerHandle) -> None:
    url = server.base_url + "/chat/completions"
    status, error = _post(url, {"messages": [{"role": "user", "content": "x " * 3000}], "max_tokens": 4})
    assert status == 400 and error["error"]["code"] == "context_length_exceeded"
    status, error = _post(url, {"messages": [{"role": "wizard", "content": "x"}]})
    assert status == 400 and "role" in error["error"]["message"]
    status, error = _post(url, {"messages": [{"role": "user", "content": "x"}], "temperature": -1})
    assert status == 400 and "temperature" in error["error"]["message"]
    status, error = _post(server.base_url + "/completions", {"prompt": "x"})
    assert status == 404


def test_tool_call_blocks_become_openai_tool_calls() -> None:
    content, calls = parse_tool_calls('ok ' + CALL_OPEN + '{"name": "get", "arguments": {"key": "K3"}}' + CALL_CLOSE)
    assert content == "ok" and calls[0]["function"] == {"name": "get", "arguments": '{"key": "K3"}'}
    assert parse_tool_calls(CALL_OPEN + '{"name": "get", "arguments": ' + CALL_CLOSE) == (
        CALL_OPEN + '{"name": "get", "arguments": ' + CALL_CLOSE,
        [],
    )


def test_native_transcript_round_trips_tool_calls_and_outputs() -> None:
    env = gym.make(LOOKUP, split="test")
    observation, info = env.reset(seed=0)
    transcript = ChatTranscript(protocol="native", system="auto")
    transcript.observe(observation, info)
    assert transcript.messages[0]["role"] == "system" and transcript.request_tools == info["tools"]
    call = {"id": "call_0", "type": "function", "function": {"name": "get", "arguments": '{"key": "K1"}'}}
    action = transcript.reply({"content": None, "tool_calls": [call]})
    assert action == CALL_OPEN + '{"name": "get", "arguments": {"key": "K1"}}' + CALL_CLOSE
    observation, *_, info = env.step(action)
    transcript.observe(observation, info)
    assert transcript.messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": info["tool_output"],
    }
    assert transcript.reply({"content": "D7"}) == ANSWER_OPEN + "D7" + ANSWER_CLOSE
    assert transcript.reply({"content": ANSWER_OPEN + "D7" + ANSWER_CLOSE}) == ANSWER_OPEN + "D7" + ANSWER_CLOSE
    env.close()


# ------------------------------------------------------------------------------------ server agent
def _compare_server_and_local(
    env_id: str, protocol: str, system: str, server: ServerHandle, local_model: LocalChatModel
) -> None:
    env = gym.make(env_id, split="test")
    local = LLMAgent(local_model, protocol=protocol, system=system, max_new_tokens=MAX_NEW_TOKENS)
    remote = make_agent(
        f"openai:{server.model}@{server.base_url}?protocol={protocol}&system={system}&max_tokens={MAX_NEW_TOKENS}",
        env,
    )
    assert isinstance(remote, OpenAIChatAgent)
    for seed in (0, 1):
        mine = run_episode(env, local, seed=seed, env_id=env_id)
        theirs = run_episode(env, remote, seed=seed, env_id=env_id)
        assert _key(mine) == _key(theirs)
        assert remote.transcripts[0].messages == local.transcripts[0].messages
        assert remote.tokens_used == local.tokens_used
        assert local.tokens_used > 0 or local.context_overflows > 0
        assert remote.context_overflows == local.context_overflows
    env.close()


def test_server_agent_equals_local_agent(
    env_id: str, server: ServerHandle, local_model: LocalChatModel
) -> None:
    """Text protocol (how the tiny model was trained), a couple of episodes on every env."""
    _compare_server_and_local(env_id, "text", "none", server, local_model)


@pytest.mark.parametrize("env_id", [LOOKUP, "ToolGym/Calc-v0"])
def test_server_agent_equals_local_agent_with_native_tools(
    env_id: str, server: ServerHandle, local_model: LocalChatModel
) -> None:
    """Native protocol: tools in the request, tool_calls parsed by the server, role "tool" replies."""
    _compare_server_and_local(env_id, "native", "auto", server, local_model)


def test_server_agent_batches_concurrently(server: ServerHandle, local_model: LocalChatModel) -> None:
    env = gym.make(LOOKUP, split="test", record_timing=True)
    remote = OpenAIChatAgent(
        server.base_url,
        server.model,
        protocol="text",
        system="none",
        max_tokens=MAX_NEW_TOKENS,
        max_concurrency=3,
    )
    local = LLMAgent(local_model)
    seeds = [0, 1, 2, 3]
    theirs = run_episodes_batched(env, remote, seeds, batch_size=4, env_id=LOOKUP)
    mine = [run_episode(env, local, seed=s, env_id=LOOKUP) for s in seeds]
    assert [_key(r) for r, _ in theirs] == [_key(r) for r in mine]
    env.close()


def test_leaderboard_runs_llm_agents(model_dir: Path) -> None:
    rows = run_leaderboard([LOOKUP], ["oracle", f"llm:{model_dir}"], episodes=3, workers=1, batch_size=2)
    llm_rows = [r for r in rows if r["agent"].startswith("llm:")]
    assert len(llm_rows) == 3 and all(r["tokens"] > 0 for r in llm_rows)
    oracle_rows = [r for r in rows if r["agent"] == "oracle"]
    assert [r["task_id"] for r in llm_rows] == [r["task_id"] for r in oracle_rows]


# ------------------------------------------------------------------- reliability of the HTTP client
class _Stub:
    """A canned chat server for client-side failure tests: fails ``failures`` times with
    ``status``, sleeps ``delay`` s per request, and records the peak number of requests in flight."""

    def __init__(self, *, failures: int = 0, status: int = 503, delay: float = 0.0) -> None:
        self.failures, self.status, self.delay = failures, status, delay
        self.calls = self.in_flight = self.peak = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                with stub.lock:
                    stub.calls += 1
                    stub.in_flight += 1
                    stub.peak = max(stub.peak, stub.in_flight)
                    fail = stub.calls <= stub.failures
                time.sleep(stub.delay)
                with stub.lock:
                    stub.in_flight -= 1
                if fail:
                    payload, code = {"error": {"message": "busy", "code": "busy"}}, stub.status
                else:
                    message = {"role": "assistant", "content": ANSWER_OPEN + "x" + ANSWER_CLOSE}
                    payload, code = {"choices": [{"message": message}], "usage": {"total_tokens": 5}}, 200
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _info() -> dict[str, Any]:
    return {"task_prompt": "t", "tools": [], "action_format": "hermes"}


def test_client_retries_server_errors_with_backoff() -> None:
    stub = _Stub(failures=2, status=503)
    try:
        agent = OpenAIChatAgent(stub.url, "m", retries=2, backoff=0.01)
        assert agent.act("t", _info()) == ANSWER_OPEN + "x" + ANSWER_CLOSE and stub.calls == 3
        assert agent.tokens_used == 5
    finally:
        stub.close()


def test_client_gives_up_with_a_clear_error() -> None:
    stub = _Stub(failures=10, status=503)
    try:
        agent = OpenAIChatAgent(stub.url, "m", retries=1, backoff=0.01)
        with pytest.raises(ServerError, match="failed after 2 attempt"):
            agent.act("t", _info())
    finally:
        stub.close()
    bad = _Stub(failures=10, status=401)
    try:
        with pytest.raises(ServerError, match="HTTP 401"):
            OpenAIChatAgent(bad.url, "m", retries=3, backoff=0.01).act("t", _info())
        assert bad.calls == 1  # client errors are not retried
    finally:
        bad.close()


def test_client_times_out() -> None:
    stub = _Stub(delay=1.0)
    try:
        agent = OpenAIChatAgent(stub.url, "m", timeout=0.2, retries=0)
        with pytest.raises(ServerError, match="timeout 0.2s"):
            agent.act("t", _info())
    finally:
        stub.close()


def test_client_limits_concurrency() -> None:
    stub = _Stub(delay=0.1)
    try:
        agent = OpenAIChatAgent(stub.url, "m", max_concurrency=2)
        agent.reset_batch(6)
        actions = agent.act_batch(["t"] * 6, [_info()] * 6)
        assert actions == [ANSWER_OPEN + "x" + ANSWER_CLOSE] * 6 and stub.peak == 2
    finally:
        stub.close()


# ------------------------------------------------------------------------------------- agent specs
def test_agent_specs_parse_and_fail_clearly() -> None:
    assert {"llm:PATH", "openai:MODEL@BASE_URL"} <= set(AGENT_NAMES)
    assert parse_llm_spec("runs/x/model?max_new_tokens=40&system=none") == (
        "runs/x/model",
        {"max_new_tokens": 40, "system": "none"},
    )
    agent = agent_from_spec("tiny@http://127.0.0.1:9/v1?protocol=text&max_tokens=7&retries=0")
    assert (agent.base_url, agent.model, agent.protocol, agent.max_tokens) == (
        "http://127.0.0.1:9/v1",
        "tiny",
        "text",
        7,
    )
    with pytest.raises(ConfigError, match="MODEL@BASE_URL"):
        agent_from_spec("tiny")
    with pytest.raises(ConfigError, match="Unknown option 'colour'"):
        agent_from_spec("tiny@http://127.0.0.1:9/v1?colour=red")
    with pytest.raises(ConfigError, match="protocol"):
        ChatTranscript(protocol="smoke")
    with pytest.raises(ConfigError, match="Unknown option"):
        parse_llm_spec("x?colour=red")
    with pytest.raises(FileNotFoundError, match="config.json"):
        make_agent("llm:/nonexistent/model", None)


def test_unreachable_server_fails_clearly() -> None:
    agent = OpenAIChatAgent("http://127.0.0.1:9/v1", "m", retries=0, timeout=2)
    with pytest.raises(ServerError, match="127.0.0.1:9"):
        agent.act("t", _info())


def test_server_agent_and_transcripts_do_not_import_torch() -> None:
    code = (
        "import sys, toolgym, baselines.agents, baselines.agents.openai_server, baselines.agents.chat; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
