"""A small OpenAI-compatible chat-completions server for a local model directory.

Serves any Hugging Face causal-LM checkpoint directory (our tiny models from
``python -m baselines.train``, or a user's local checkpoint) through the same code path as the local
agent (:class:`baselines.agents.llm.LocalChatModel`: chat template, batched KV-cache sampling,
stop at end of turn). Standard library HTTP only; nothing is downloaded.

Command line (prints the base URL, then serves until Ctrl-C)::

    python -m baselines.serve --model runs/lookup_sft/model --host 127.0.0.1 --port 0
    # Serving 'model' at http://127.0.0.1:PORT/v1

Python (stable API, used by tests)::

    from baselines.serve import serve_in_thread

    with serve_in_thread("runs/lookup_sft/model", host="127.0.0.1", port=0) as server:
        server.base_url   # "http://127.0.0.1:PORT/v1"
        server.model      # the served model name (the directory name)
    # or: server = serve_in_thread(...); ...; server.close()

Endpoints:

* ``POST /v1/chat/completions``. Request fields: ``messages`` (required; roles ``system``,
  ``user``, ``assistant`` with optional ``tool_calls``, ``tool``), ``tools`` (OpenAI function
  schemas, rendered by the chat template), ``tool_choice`` (``"none"`` disables tool-call
  parsing), ``max_tokens`` / ``max_completion_tokens`` (default 256), ``temperature`` (default 1;
  0 is greedy), ``seed`` (reproducible sampling), ``stop`` (a string or a list), ``model``
  (accepted and ignored: one model is served), ``n`` (only 1), ``stream`` (only false); other
  OpenAI fields (``top_p``, ...) are ignored. The reply is a ``chat.completion`` object:
  ``choices[0].message`` has ``role: "assistant"`` and ``content`` (the generated text without the
  end-of-turn token, cut before the first stop string); when the request had ``tools`` and the
  text holds valid Hermes ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, it
  also has ``tool_calls`` (ids ``call_0``, ``call_1``, ..., ``arguments`` as a JSON string), its
  ``content`` is the text before the first block (or null), and ``finish_reason`` is
  ``"tool_calls"``; otherwise ``finish_reason`` is ``"stop"`` or ``"length"``. ``usage`` counts
  prompt and completion tokens.
* ``GET /v1/models``: the served model. ``GET /health``: ``{"status": "ok"}``.

Errors are OpenAI-style ``{"error": {"message", "type", "code"}}``: 400 for an invalid request and
for a prompt that leaves no room in the model's context (``code: "context_length_exceeded"``),
404 for an unknown path, 500 for a failure inside the model. Requests are answered one at a time
(a lock around generation); concurrent clients queue.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from baselines.agents.llm import DEFAULT_MAX_NEW_TOKENS, LocalChatModel

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant", "tool")


class RequestError(ValueError):
    """An invalid chat-completions request (answered with HTTP 400)."""

    def __init__(self, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.code = code


class ChatCompletionsService:
    """Turns chat-completions request bodies into replies with a :class:`LocalChatModel`.

    Args:
        model: The model to serve.
    """

    def __init__(self, model: LocalChatModel) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._count = 0

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one request body with a ``chat.completion`` object.

        Raises:
            RequestError: for an invalid request or a prompt that does not fit the context.
        """
        import torch

        messages, tools, options = self._validate(body)
        with self._lock:
            generator = None
            if options["seed"] is not None and options["temperature"] > 0:
                generator = torch.Generator().manual_seed(options["seed"])
            completion = self.model.complete(
                [(messages, tools)],
                max_tokens=options["max_tokens"],
                temperature=options["temperature"],
                generator=generator,
                stop=options["stop"],
            )[0]
            self._count += 1
            number = self._count
        if completion.finish_reason == "context_length":
            raise RequestError(
                f"This model's context is {self.model.context_length} tokens; the prompt has "
                f"{completion.prompt_tokens}, leaving no room for a reply.",
                code="context_length_exceeded",
            )
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model.name,
            "choices": [
                {"index": 0, "message": completion.message, "finish_reason": completion.finish_reason}
            ],
            "usage": {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            },
        }

    @staticmethod
    def _validate(body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any]]:
        if not isinstance(body, dict):
            raise RequestError(f"The request body must be a JSON object, got {type(body).__name__}.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("'messages' must be a non-empty list of {role, content} objects.")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise RequestError(
                    f"messages[{i}] must be an object with role in {list(ROLES)}; got {str(message)[:200]}."
                )
        tools = body.get("tools")
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
            raise RequestError("'tools' must be a list of function schema objects.")
        if body.get("tool_choice") == "none":
            tools = None
        if body.get("stream"):
            raise RequestError("Streaming is not supported; send stream=false.")
        if body.get("n", 1) != 1:
            raise RequestError(f"Only n=1 is supported, got n={body.get('n')!r}.")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) or DEFAULT_MAX_NEW_TOKENS
        temperature = body.get("temperature", 1.0)
        seed = body.get("seed")
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise RequestError(f"'max_tokens' must be a positive integer, got {max_tokens!r}.")
        if not isinstance(temperature, int | float) or temperature < 0:
            raise RequestError(f"'temperature' must be a number ≥ 0, got {temperature!r}.")
        if seed is not None and not isinstance(seed, int):
            raise RequestError(f"'seed' must be an integer, got {seed!r}.")
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise RequestError(f"'stop' must be a string or a list of strings, got {stop!r}.")
        options = {"max_tokens": max_tokens, "temperature": float(temperature), "seed": seed, "stop": stop}
        return messages, tools or None, options


def _handler(service: ChatCompletionsService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.rstrip("/")
            if path == "/health":
                self._send(200, {"status": "ok"})
            elif path in ("/v1/models", "/models"):
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": service.model.name, "object": "model", "owned_by": "toolgym"}],
                    },
                )
            else:
                self._error(404, f"No such endpoint: GET {self.path}.", "not_found")

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(
                    404, f"No such endpoint: POST {self.path}; use /v1/chat/completions.", "not_found"
                )
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
            except (ValueError, json.JSONDecodeError) as exc:
                self._error(400, f"The request body is not valid JSON: {exc}.", "invalid_json")
                return
            try:
                self._send(200, service.complete(body))
            except RequestError as exc:
                self._error(400, str(exc), exc.code)
            except Exception as exc:  # noqa: BLE001 - the client gets a 500, the server keeps serving
                logger.exception("Generation failed")
                self._error(500, f"Generation failed: {type(exc).__name__}: {exc}", "internal_error")

        def _error(self, status: int, message: str, code: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send(status, {"error": {"message": message, "type": kind, "code": code}})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            logger.debug("%s " + format, self.address_string(), *args)

    return Handler


class ServerHandle:
    """A running server: ``base_url`` (``http://HOST:PORT/v1``), ``model`` (served name), ``close()``.

    Use it as a context manager to close it on exit.
    """

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread, model: LocalChatModel) -> None:
        self._server = server
        self._thread = thread
        self.local_model = model
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.base_url = f"http://{self.host}:{self.port}/v1"
        self.model = model.name

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_server(
    model: str | Path | LocalChatModel, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, LocalChatModel]:
    """Load ``model`` (a checkpoint directory, unless already loaded) and bind an HTTP server to it
    (``port=0`` picks a free port)."""
    local = model if isinstance(model, LocalChatModel) else LocalChatModel(model)
    server = ThreadingHTTPServer((host, port), _handler(ChatCompletionsService(local)))
    server.daemon_threads = True
    return server, local


def serve_in_thread(
    model_dir: str | Path | LocalChatModel, host: str = "127.0.0.1", port: int = 0
) -> ServerHandle:
    """Serve ``model_dir`` from a background thread; returns when the server accepts requests.

    Args:
        model_dir: A checkpoint directory (or a :class:`LocalChatModel` already loaded).
        host: Interface to bind.
        port: Port (0: a free one; read it from ``handle.base_url``).
    """
    server, local = make_server(model_dir, host, port)
    thread = threading.Thread(target=server.serve_forever, name=f"serve:{local.name}", daemon=True)
    thread.start()
    return ServerHandle(server, thread, local)


def main(argv: list[str] | None = None) -> int:
    """``python -m baselines.serve --model DIR [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog="python -m baselines.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face checkpoint directory to serve.")
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="Port (0 picks a free one; default 8000).")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        local = LocalChatModel(args.model, threads=args.threads)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(1, f"error: {exc}\n")
    server, local = make_server(local, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"Serving {local.name!r} at http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
