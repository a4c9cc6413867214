"""``baselines.serve`` speaks the OpenAI chat-completions protocol, checked with the official SDK.

The server serves a programmed tiny Qwen2-style checkpoint (:mod:`tests.family_models`: its greedy
reply to any prompt is one Qwen3-Coder style tool call) from a thread on 127.0.0.1. The ``openai``
package is an optional test dependency (the ``dev`` extra); raw-socket checks cover what the SDK
hides (keep-alive after an error, chunked request bodies).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from baselines.serve import ServerHandle, serve_in_thread  # noqa: E402
from tests.family_models import QWEN_CALL, save_qwen2  # noqa: E402

ASK = [{"role": "user", "content": "Find K1."}]
TOOLS = [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]
REPLY = "<tool_call>" + QWEN_CALL[0] + "</tool_call>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    path = save_qwen2(tmp_path_factory.mktemp("serve") / "tiny-qwen2")
    with serve_in_thread(path, host="127.0.0.1", port=0) as handle:
        yield handle


@pytest.fixture(scope="module")
def client(server: ServerHandle) -> Any:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=30)


def _create(client: Any, server: ServerHandle, **kwargs: Any) -> Any:
    options = {"temperature": 0, "max_tokens": 16, **kwargs}
    return client.chat.completions.create(model=server.model, messages=ASK, **options)


def test_tool_calls_come_back_as_openai_tool_calls_with_unique_ids(client: Any, server: ServerHandle) -> None:
    first = _create(client, server, tools=TOOLS)
    second = _create(client, server, tools=TOOLS)
    for reply in (first, second):
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        assert choice.message.tool_calls[0].function.name == "get"
        assert json.loads(choice.message.tool_calls[0].function.arguments) == {"key": "K1"}
    assert first.choices[0].message.tool_calls[0].id != second.choices[0].message.tool_calls[0].id
    assert first.id != second.id


def test_streaming_sends_the_same_reply_as_chunks(client: Any, server: ServerHandle) -> None:
    whole = _create(client, server).choices[0].message.content
    chunks = list(_create(client, server, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole == REPLY and text == whole
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == 4  # three tokens and <|im_end|>


def test_streamed_tool_calls(client: Any, server: ServerHandle) -> None:
    chunks = list(_create(client, server, stream=True, tools=TOOLS))
    calls = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert [call.function.name for call in calls] == ["get"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_n_choices_and_logprobs(client: Any, server: ServerHandle) -> None:
    reply = client.chat.completions.create(
        model=server.model, messages=ASK, temperature=1.0, seed=0, max_tokens=16, n=3, logprobs=True
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    for choice in reply.choices:
        entries = choice.logprobs.content
        assert "".join(e.token for e in entries) == choice.message.content
        assert all(e.logprob <= 0 for e in entries)
    assert reply.usage.completion_tokens == sum(4 for _ in reply.choices)


def test_models_endpoints(client: Any, server: ServerHandle) -> None:
    assert [m.id for m in client.models.list()] == [server.model]
    assert client.models.retrieve(server.model).id == server.model
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 0}, "n"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tool_choice": "required", "tools": TOOLS}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "get"}}, "tools": TOOLS}, "tool_choice"),
        ({"top_p": 0.5}, "top_p"),
        ({"top_logprobs": 2, "logprobs": True}, "top_logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"5": 10}}, "logit_bias"),
        ({"extra_body": {"best_of": 2}}, "best_of"),
    ],
)
def test_every_unsupported_parameter_is_a_clear_400(
    client: Any, server: ServerHandle, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _create(client, server, **kwargs)
    error = info.value.body
    assert error["param"] == param and param in error["message"]


def test_unknown_model_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=ASK)


def test_the_sdk_keeps_working_after_an_unknown_path(client: Any, server: ServerHandle) -> None:
    with pytest.raises(openai.NotFoundError):
        client.post("/completions", body={"model": server.model, "prompt": "x"}, cast_to=object)
    assert _create(client, server).choices[0].message.content == REPLY


def _request(sock: socket.socket, head: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Send one HTTP/1.1 request on ``sock`` and read one response (bounded reads)."""
    sock.sendall(head.encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    header, _, rest = data.partition(b"\r\n\r\n")
    lines = header.decode().split("\r\n")
    length = int(next(v for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "content-length"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), json.loads(rest[:length])


def test_keep_alive_survives_an_unknown_path_and_chunked_bodies_are_read(server: ServerHandle) -> None:
    body = json.dumps({"model": server.model, "messages": ASK, "max_tokens": 16, "temperature": 0}).encode()
    host = f"Host: {server.host}:{server.port}\r\n"
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        status, error = _request(
            sock, f"POST /v1/nowhere HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n", body,
        )
        assert status == 404 and error["error"]["code"] == "not_found"
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
        status, reply = _request(
            sock, f"POST /v1/chat/completions HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n", chunked,
        )
        assert status == 200 and reply["choices"][0]["message"]["content"] == REPLY


def test_served_checkpoint_directory_name_is_the_model_name(server: ServerHandle) -> None:
    assert server.model == Path(server.local_model.model_dir).name == "tiny-qwen2"
