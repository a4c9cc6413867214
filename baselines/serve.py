"""An OpenAI-compatible chat-completions server for a local model directory (FastAPI + uvicorn).

Serves any Hugging Face causal-LM checkpoint directory (our tiny models from
``python -m baselines.train``, or a user's local checkpoint) through the same code path as the local
agent (:class:`baselines.agents.llm.LocalChatModel`: chat template, batched KV-cache sampling,
stop at the checkpoint's stop tokens, tool calls parsed by ToolGym's format parsers). Nothing is
downloaded. Needs ``pip install 'toolgym[serve]'`` (FastAPI and uvicorn).

Command line (prints the base URL, then serves until Ctrl-C)::

    python -m baselines.serve --model benchmarks/results/leaderboard/models/lookup_sft --port 8000
    # Serving 'lookup_sft' at http://127.0.0.1:8000/v1

Python (stable API, used by tests)::

    from baselines.serve import serve_in_thread

    with serve_in_thread("runs/lookup_sft/model", host="127.0.0.1", port=0) as server:
        server.base_url   # "http://127.0.0.1:PORT/v1"
        server.model      # the served model name (the directory name)
    # or: server = serve_in_thread(...); ...; server.close()

Endpoints:

* ``POST /v1/chat/completions`` (also ``/chat/completions``). Supported request fields:

  - ``messages`` (required): roles ``system``, ``user``, ``assistant`` (with optional
    ``tool_calls``), ``tool``; ``content`` a string, null, or a list of ``{"type": "text"}`` parts;
  - ``model``: must be the served model's name (else 404 ``model_not_found``); may be omitted;
  - ``tools`` (OpenAI function schemas, rendered by the chat template) and ``tool_choice``
    (``"auto"``, or ``"none"`` which turns tool-call parsing off);
  - ``max_completion_tokens`` / ``max_tokens`` (≥ 1; default 256, clipped to the room left in the
    context), ``temperature`` (≥ 0; default 1; 0 is greedy), ``seed``, ``stop`` (a string or up to
    4 strings), ``n`` (1 to 16 choices, sampled in one batch);
  - ``stream`` (server-sent events of ``chat.completion.chunk`` objects, ending with
    ``data: [DONE]``) and ``stream_options.include_usage``;
  - ``logprobs`` (each choice gets ``logprobs.content``: ``token``, ``logprob`` under the sampling
    distribution, ``bytes``; ``top_logprobs`` must be 0 or absent);
  - accepted with no effect on the output: ``user``, ``metadata``, ``store: false``,
    ``parallel_tool_calls``, ``service_tier``, and the values that mean "default":
    ``top_p: 1``, ``frequency_penalty: 0``, ``presence_penalty: 0``, ``logit_bias: {}``,
    ``response_format: {"type": "text"}``.

  Every other field or value (``response_format`` JSON modes, a forced or ``"required"``
  ``tool_choice``, ``top_p < 1``, ``top_logprobs > 0``, ``audio``, ...) is answered with a 400
  naming the parameter. A reply's ``message`` has ``role: "assistant"`` and ``content`` (the
  generated text without the stop token, cut before the first stop string); when the request had
  tools and the text holds tool calls, it also has ``tool_calls`` (ids ``call_<unique>``,
  ``arguments`` a JSON string), ``content`` is the text before the first call (or null) and
  ``finish_reason`` is ``"tool_calls"``; otherwise ``"stop"`` or ``"length"``. ``usage`` counts
  prompt and completion tokens. A streamed reply is generated first and then sent as chunks (one
  per token of content; tool calls in one chunk each).
* ``GET /v1/models`` (the served model), ``GET /v1/models/{id}`` (404 for another id),
  ``GET /health`` (``{"status": "ok"}``).

Errors are OpenAI-style ``{"error": {"message", "type", "param", "code"}}``: 400 for an invalid or
unsupported request and for a prompt that leaves no room in the model's context
(``code: "context_length_exceeded"``), 404 for an unknown path or model, 405 for a wrong method,
500 for a failure inside the model. Generation runs one request at a time (concurrent requests
queue); the HTTP side (keep-alive, chunked bodies) is uvicorn's.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.concurrency import run_in_threadpool
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "baselines.serve needs FastAPI and uvicorn: pip install 'toolgym[serve]' (from a clone: pip install '.[serve]')."
    ) from exc
import typer
from starlette.exceptions import HTTPException

from baselines.agents.llm import DEFAULT_MAX_NEW_TOKENS, Completion, LocalChatModel
from baselines.cli import CONTEXT_SETTINGS, run_app

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant", "tool")
MAX_CHOICES = 16
MAX_STOP_STRINGS = 4

DEFAULT_VALUES: dict[str, tuple[Any, ...]] = {
    "top_p": (1, 1.0, None),
    "frequency_penalty": (0, 0.0, None),
    "presence_penalty": (0, 0.0, None),
    "logit_bias": ({}, None),
    "store": (False, None),
}
"""Parameters accepted only with the value that means "no effect" (anything else is a 400)."""

IGNORED_FIELDS = frozenset({"user", "metadata", "parallel_tool_calls", "service_tier"})
"""Parameters accepted and ignored (they do not change the reply)."""

HANDLED_FIELDS = frozenset(
    {
        "messages",
        "model",
        "tools",
        "tool_choice",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "seed",
        "stop",
        "n",
        "stream",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "response_format",
    }
)


class RequestError(ValueError):
    """A chat-completions request the server will not run (answered with an HTTP error).

    Args:
        message: For people: what was wrong and what is expected.
        code: Stable machine-readable code (``invalid_request``, ``unsupported_parameter``...).
        param: The request field at fault, if any.
        status: HTTP status (400 unless said otherwise).
    """

    def __init__(
        self, message: str, code: str = "invalid_request", param: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.status = status


@dataclass
class ChatRequest:
    """A validated chat-completions request."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    max_tokens: int
    temperature: float
    seed: int | None
    stop: list[str]
    n: int
    stream: bool
    include_usage: bool
    logprobs: bool
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))


def error_body(message: str, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error object."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ChatCompletionsService:
    """Validates chat-completions requests and answers them with a :class:`LocalChatModel`.

    Args:
        model: The model to serve.
    """

    def __init__(self, model: LocalChatModel) -> None:
        self.model = model
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ validation
    def parse(self, body: Any) -> ChatRequest:
        """Validate a request body.

        Raises:
            RequestError: naming the field that is invalid or not supported.
        """
        if not isinstance(body, dict):
            raise RequestError(f"The request body must be a JSON object, got {type(body).__name__}.")
        for key in body:
            if key not in HANDLED_FIELDS and key not in IGNORED_FIELDS and key not in DEFAULT_VALUES:
                raise RequestError(
                    f"Unsupported parameter {key!r}: this server implements "
                    f"{sorted(HANDLED_FIELDS | IGNORED_FIELDS | set(DEFAULT_VALUES))}.",
                    "unsupported_parameter",
                    key,
                )
        for key, allowed in DEFAULT_VALUES.items():
            if key in body and body[key] not in allowed:
                raise RequestError(
                    f"Unsupported value {key}={body[key]!r}: only the default ({allowed[0]!r}) is supported.",
                    "unsupported_value",
                    key,
                )
        model = body.get("model")
        if model is not None and model != self.model.name:
            raise RequestError(
                f"The model {model!r} does not exist; this server serves {self.model.name!r}.",
                "model_not_found",
                "model",
                status=404,
            )
        messages = self._messages(body.get("messages"))
        tools = body.get("tools")
        if tools is not None and (
            not isinstance(tools, list) or not all(isinstance(t, dict) and _tool_name(t) for t in tools)
        ):
            raise RequestError(
                "'tools' must be a list of {type: function, function: {name, ...}} objects.", param="tools"
            )
        choice = body.get("tool_choice", "auto")
        if choice not in ("auto", "none", None):
            raise RequestError(
                f"Unsupported tool_choice {choice!r}: only 'auto' and 'none' are supported (the "
                "server cannot force a call).",
                "unsupported_value",
                "tool_choice",
            )
        if choice == "none":
            tools = None
        response_format = body.get("response_format")
        if response_format is not None and response_format != {"type": "text"}:
            raise RequestError(
                f"Unsupported response_format {response_format!r}: only {{'type': 'text'}} is supported.",
                "unsupported_value",
                "response_format",
            )
        return ChatRequest(
            messages=messages,
            tools=tools or None,
            max_tokens=self._max_tokens(body),
            temperature=_number(body, "temperature", 1.0, minimum=0.0, maximum=2.0),
            seed=_optional_int(body, "seed"),
            stop=_stop(body.get("stop")),
            n=_int_in(body, "n", 1, 1, MAX_CHOICES),
            stream=_bool(body, "stream"),
            include_usage=self._include_usage(body),
            logprobs=self._logprobs(body),
        )

    @staticmethod
    def _messages(messages: Any) -> list[dict[str, Any]]:
        if not isinstance(messages, list) or not messages:
            raise RequestError(
                "'messages' must be a non-empty list of {role, content} objects.", param="messages"
            )
        out = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise RequestError(
                    f"messages[{i}] must be an object with role in {list(ROLES)}; got {str(message)[:200]}.",
                    param=f"messages[{i}]",
                )
            content = message.get("content")
            if isinstance(content, list):
                if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
                    raise RequestError(
                        f"messages[{i}].content: only text parts are supported.",
                        "unsupported_value",
                        f"messages[{i}].content",
                    )
                content = "".join(str(p.get("text", "")) for p in content)
            elif content is not None and not isinstance(content, str):
                raise RequestError(
                    f"messages[{i}].content must be a string, null or a list of text parts.",
                    param=f"messages[{i}].content",
                )
            out.append({**message, "content": content if content is not None else ""})
        return out

    @staticmethod
    def _max_tokens(body: dict[str, Any]) -> int:
        key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        value = body.get(key)
        if value is None:
            return DEFAULT_MAX_NEW_TOKENS
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"'{key}' must be an integer ≥ 1, got {value!r}.", param=key)
        return value

    @staticmethod
    def _include_usage(body: dict[str, Any]) -> bool:
        options = body.get("stream_options")
        if options is None:
            return False
        if not body.get("stream"):
            raise RequestError("'stream_options' is only allowed with stream=true.", param="stream_options")
        if not isinstance(options, dict) or set(options) - {"include_usage"}:
            raise RequestError(
                f"Unsupported stream_options {options!r}: only include_usage is supported.",
                "unsupported_value",
                "stream_options",
            )
        return _bool(options, "include_usage")

    @staticmethod
    def _logprobs(body: dict[str, Any]) -> bool:
        logprobs = _bool(body, "logprobs")
        top = body.get("top_logprobs")
        if top not in (None, 0):
            raise RequestError(
                f"Unsupported top_logprobs={top!r}: only the chosen tokens' logprobs are returned "
                "(top_logprobs 0).",
                "unsupported_value",
                "top_logprobs",
            )
        return logprobs

    # ------------------------------------------------------------------------------ generation
    def generate(self, request: ChatRequest) -> list[Completion]:
        """Run the model: ``request.n`` completions of one conversation, in one batch.

        Raises:
            RequestError: if the prompt leaves no room in the model's context.
        """
        import torch

        with self._lock:
            generator = None
            if request.seed is not None and request.temperature > 0:
                generator = torch.Generator().manual_seed(request.seed)
            completions = self.model.complete(
                [(request.messages, request.tools)] * request.n,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                generator=generator,
                stop=request.stop,
            )
        if completions[0].finish_reason == "context_length":
            raise RequestError(
                f"This model's context is {self.model.context_length} tokens; the prompt has "
                f"{completions[0].prompt_tokens}, leaving no room for a reply.",
                "context_length_exceeded",
                "messages",
            )
        return completions

    def complete(self, body: Any) -> dict[str, Any]:
        """Answer one (non-streaming) request body with a ``chat.completion`` object.

        Raises:
            RequestError: for an invalid or unsupported request, or a prompt that does not fit.
        """
        request = self.parse(body)
        return self.response(request, self.generate(request))

    def response(self, request: ChatRequest, completions: list[Completion]) -> dict[str, Any]:
        """The ``chat.completion`` object for generated ``completions``."""
        choices = []
        for index, completion in enumerate(completions):
            choice: dict[str, Any] = {
                "index": index,
                "message": completion.message,
                "logprobs": _logprobs(completion) if request.logprobs else None,
                "finish_reason": completion.finish_reason,
            }
            choices.append(choice)
        return {
            "id": request.id,
            "object": "chat.completion",
            "created": request.created,
            "model": self.model.name,
            "choices": choices,
            "usage": _usage(completions),
        }

    def chunks(self, request: ChatRequest, completions: list[Completion]) -> Iterator[dict[str, Any]]:
        """The ``chat.completion.chunk`` objects of a streamed reply (without ``[DONE]``)."""

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {
                "id": request.id,
                "object": "chat.completion.chunk",
                "created": request.created,
                "model": self.model.name,
                "choices": choices,
                **extra,
            }

        for index, completion in enumerate(completions):
            yield chunk(
                [
                    {
                        "index": index,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
            calls = completion.message.get("tool_calls") or []
            if calls:
                content = completion.message.get("content")
                if content:
                    yield chunk(
                        [
                            {
                                "index": index,
                                "delta": {"content": content},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ]
                    )
                for i, call in enumerate(calls):
                    delta = {"tool_calls": [{"index": i, **call}]}
                    yield chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])
            else:
                for piece, entry in _pieces(completion):
                    logprobs = {"content": [entry]} if request.logprobs else None
                    yield chunk(
                        [
                            {
                                "index": index,
                                "delta": {"content": piece},
                                "logprobs": logprobs,
                                "finish_reason": None,
                            }
                        ]
                    )
            yield chunk(
                [{"index": index, "delta": {}, "logprobs": None, "finish_reason": completion.finish_reason}]
            )
        if request.include_usage:
            yield chunk([], usage=_usage(completions))


def _tool_name(tool: dict[str, Any]) -> str | None:
    function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = function.get("name")
    return name if isinstance(name, str) and name else None


def _usage(completions: list[Completion]) -> dict[str, int]:
    prompt = completions[0].prompt_tokens if completions else 0
    generated = sum(c.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")), "top_logprobs": []}


def _pieces(completion: Completion) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(text piece, logprob entry)`` per generated token, pieces joining to the reply text (a
    stop string cuts the last piece)."""
    remaining = completion.text
    for token, logprob in zip(completion.tokens, completion.logprobs, strict=False):
        if not remaining:
            return
        piece = token if remaining.startswith(token) else remaining[: len(token)]
        remaining = remaining[len(piece) :]
        yield piece, _entry(token, logprob)
    if remaining:  # decoding merged bytes across tokens differently: send the rest as is
        yield remaining, _entry(remaining, 0.0)


def _logprobs(completion: Completion) -> dict[str, Any]:
    return {"content": [entry for _, entry in _pieces(completion)]}


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"'{key}' must be true or false, got {value!r}.", param=key)
    return value


def _number(body: dict[str, Any], key: str, default: float, *, minimum: float, maximum: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
        raise RequestError(f"'{key}' must be a number in [{minimum}, {maximum}], got {value!r}.", param=key)
    return float(value)


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(f"'{key}' must be an integer, got {value!r}.", param=key)
    return value


def _int_in(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"'{key}' must be an integer in [{low}, {high}], got {value!r}.", param=key)
    return value


def _stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or not all(isinstance(s, str) for s in stop)
        or len(stop) > MAX_STOP_STRINGS
    ):
        raise RequestError(
            f"'stop' must be a string or a list of up to {MAX_STOP_STRINGS} strings, got {stop!r}.",
            param="stop",
        )
    return [s for s in stop if s]


def create_app(service: ChatCompletionsService) -> FastAPI:
    """The FastAPI application serving ``service``."""
    app = FastAPI(title="ToolGym chat completions", docs_url=None, redoc_url=None, openapi_url=None)
    name = service.model.name

    def error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
        return JSONResponse(error_body(message, status, code, param), status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error(404, f"No such endpoint: {request.method} {request.url.path}.", "not_found")
        if exc.status_code == 405:
            return error(
                405, f"Method {request.method} is not allowed on {request.url.path}.", "method_not_allowed"
            )
        return error(exc.status_code, str(exc.detail), "http_error")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, f"Invalid request: {exc.errors()}", "invalid_request")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    def model_card() -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "toolgym"}

    @app.get("/v1/models")
    @app.get("/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    @app.get("/models/{model_id:path}")
    async def model(model_id: str) -> Any:
        if model_id != name:
            return error(
                404,
                f"The model {model_id!r} does not exist; this server serves {name!r}.",
                "model_not_found",
                "model",
            )
        return model_card()

    @app.post("/v1/chat/completions")
    @app.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            return error(400, f"The request body is not valid JSON: {exc}.", "invalid_json")
        try:
            parsed = service.parse(body)
            completions = await run_in_threadpool(service.generate, parsed)
        except RequestError as exc:
            return error(exc.status, str(exc), exc.code, exc.param)
        except Exception as exc:  # noqa: BLE001 - the client gets a 500, the server keeps serving
            logger.exception("Generation failed")
            return error(500, f"Generation failed: {type(exc).__name__}: {exc}", "internal_error")
        if not parsed.stream:
            return service.response(parsed, completions)

        def events() -> Iterator[str]:
            for chunk in service.chunks(parsed, completions):
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app


class ServerHandle:
    """A running server: ``base_url`` (``http://HOST:PORT/v1``), ``model`` (served name), ``close()``.

    Use it as a context manager to close it on exit.
    """

    def __init__(
        self, server: Any, thread: threading.Thread, sock: socket.socket, model: LocalChatModel
    ) -> None:
        self._server = server
        self._thread = thread
        self._socket = sock
        self.local_model = model
        host, port = sock.getsockname()[:2]
        self.host = str(host)
        self.port = int(port)
        self.base_url = f"http://{self.host}:{self.port}/v1"
        self.model = model.name

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_server(
    model: str | Path | LocalChatModel, host: str = "127.0.0.1", port: int = 0
) -> tuple[Any, socket.socket, LocalChatModel]:
    """Load ``model`` (a checkpoint directory, unless already loaded), bind a socket
    (``port=0`` picks a free port) and build the uvicorn server for it (not started).

    Returns:
        ``(uvicorn.Server, bound socket, model)``; run it with ``server.run(sockets=[sock])``.
    """
    import uvicorn

    local = model if isinstance(model, LocalChatModel) else LocalChatModel(model)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections made before uvicorn starts wait in the backlog
    config = uvicorn.Config(
        create_app(ChatCompletionsService(local)), log_level="warning", access_log=False, lifespan="off"
    )
    return uvicorn.Server(config), sock, local


def serve_in_thread(
    model_dir: str | Path | LocalChatModel, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0
) -> ServerHandle:
    """Serve ``model_dir`` from a background thread; returns when the server accepts requests.

    Args:
        model_dir: A checkpoint directory (or a :class:`LocalChatModel` already loaded).
        host: Interface to bind.
        port: Port (0: a free one; read it from ``handle.base_url``).
        timeout: Seconds to wait for the server to start.

    Raises:
        RuntimeError: if the server did not start within ``timeout``.
    """
    server, sock, local = make_server(model_dir, host, port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"serve:{local.name}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"The server for {local.name!r} did not start within {timeout} s.")
        time.sleep(0.01)
    return ServerHandle(server, thread, sock, local)


cli = typer.Typer(add_completion=False, rich_markup_mode="rich", context_settings=CONTEXT_SETTINGS)


@cli.command(help=__doc__.splitlines()[0].replace("(FastAPI + uvicorn).", "(FastAPI + uvicorn); serves until Ctrl-C."))
def serve(
    model: Annotated[str, typer.Option("--model", help="Hugging Face checkpoint directory to serve.")],
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8000,
    threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")] = None,
    tool_format: Annotated[str, typer.Option(
        "--tool-format", help="ToolGym action format tool calls are parsed with.")] = "auto",
) -> None:
    """Load the model, print the base URL and serve; exit code 1 for a model that cannot be loaded or
    an address that cannot be bound."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        local = LocalChatModel(model, threads=threads, tool_format=tool_format)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    try:
        server, sock, local = make_server(local, host, port)
    except OSError as exc:
        print(f"error: cannot bind {host}:{port}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"Serving {local.name!r} at http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m baselines.serve --model DIR [--host H] [--port P] [--threads N] [--tool-format F]``;
    returns the exit code."""
    return run_app(cli, argv, "python -m baselines.serve")


if __name__ == "__main__":
    raise SystemExit(main())
