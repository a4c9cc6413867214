"""An agent backed by any OpenAI-compatible chat-completions server (vLLM, llama.cpp, hosted APIs).

Two ways to talk to the model:

* ``native_tools=True`` (default): the env's tools go in the request's ``tools`` field; the
  server's ``tool_calls`` are rendered into the env's action format, tool outputs go back as
  ``role: "tool"`` messages, and a reply without tool calls is the final answer.
* ``native_tools=False`` (prompt mode): the env's own instructions are the system prompt, the
  model's text is the action as is, and each observation is the next user message.

Requests are retried with exponential backoff on connection errors, timeouts, 429 and 5xx;
at most ``max_concurrency`` requests per server are in flight across all agents of the process.
Only the standard library is used.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.core.errors import ToolGymError

logger = logging.getLogger(__name__)

NATIVE_SYSTEM_PROMPT = (
    "You solve the user's task with the tools provided, one tool call at a time. "
    "When you know the answer, reply with the answer only, without calling a tool."
)

_semaphores: dict[str, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


class ServerError(ToolGymError):
    """The server could not be reached or kept failing after all retries."""


def _semaphore(base_url: str, limit: int) -> threading.BoundedSemaphore:
    with _semaphores_lock:
        if base_url not in _semaphores:
            _semaphores[base_url] = threading.BoundedSemaphore(limit)
        return _semaphores[base_url]


class OpenAIChatAgent:
    """Plays ToolGym envs through an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Args:
        base_url: Server root, e.g. ``http://127.0.0.1:8000/v1``.
        model: Model name sent in requests.
        api_key: Sent as a bearer token if given.
        native_tools: Use the ``tools`` / ``tool_calls`` protocol (else prompt mode).
        temperature: Sampling temperature.
        max_tokens: Completion limit per turn.
        timeout: Seconds per HTTP request.
        retries: Extra attempts after a failed request.
        backoff: First retry delay in seconds (doubles each time).
        max_concurrency: Requests in flight to this server, shared by all agents in the process.
        seed: Sent as the request ``seed`` (servers that support it sample reproducibly).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        native_tools: bool = True,
        temperature: float = 0.0,
        max_tokens: int = 256,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_concurrency: int = 8,
        seed: int | None = None,
    ) -> None:
        if retries < 0 or max_concurrency < 1 or timeout <= 0:
            raise ValueError(
                f"Need retries >= 0, max_concurrency >= 1 and timeout > 0; got {retries}, "
                f"{max_concurrency}, {timeout}."
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.native_tools = native_tools
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.seed = seed
        self._semaphore = _semaphore(self.base_url, max_concurrency)
        self.tokens_used = 0
        self.requests = 0
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self._pending_call_id: str | None = None

    # ------------------------------------------------------------------ Policy interface
    def reset(self, *, seed: int | None = None) -> None:
        """Start a new conversation (``seed`` replaces the request seed if given)."""
        if seed is not None:
            self.seed = seed
        self.messages = []
        self._pending_call_id = None

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """Send the conversation so far and return the model's reply as an action."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        if not self.messages:
            self.tools = list(info.get("tools", []))
            if self.native_tools:
                self.messages = [
                    {"role": "system", "content": NATIVE_SYSTEM_PROMPT},
                    {"role": "user", "content": info.get("task_prompt", observation)},
                ]
            else:
                self.messages = [
                    {"role": "system", "content": info.get("system_prompt", "")},
                    {"role": "user", "content": info.get("task_prompt", observation)},
                ]
        elif self.native_tools and self._pending_call_id is not None:
            content = info.get("tool_output")
            if content is None:
                content = info.get("error_message") or observation
            self.messages.append({"role": "tool", "tool_call_id": self._pending_call_id, "content": content})
            self._pending_call_id = None
        else:
            self.messages.append({"role": "user", "content": observation})
        message = self._complete()
        return self._to_action(message, fmt)

    # ------------------------------------------------------------------ internals
    def _to_action(self, message: dict[str, Any], fmt: Any) -> str:
        calls = message.get("tool_calls") or []
        if self.native_tools and calls:
            call = calls[0]
            function = call.get("function", {})
            raw_args = function.get("arguments") or "{}"
            try:
                arguments = json.loads(raw_args) if isinstance(raw_args, str) else raw_args
            except json.JSONDecodeError:
                arguments = None
            call_id = str(call.get("id") or f"call_{len(self.messages)}")
            self.messages.append(
                {"role": "assistant", "content": message.get("content"), "tool_calls": [call]}
            )
            self._pending_call_id = call_id
            if not isinstance(arguments, dict):
                # The env then reports the missing arguments (schema_violation) to the model.
                logger.warning("Server returned non-object arguments %r; sending {}", str(raw_args)[:200])
                arguments = {}
            return fmt.render(ToolCall(str(function.get("name", "")), arguments))
        content = message.get("content") or ""
        self.messages.append({"role": "assistant", "content": content})
        return fmt.render(FinalAnswer(content.strip())) if self.native_tools else content

    def _complete(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.native_tools and self.tools:
            body["tools"] = self.tools
        reply = self._post("/chat/completions", body)
        self.requests += 1
        self.tokens_used += int(reply.get("usage", {}).get("total_tokens", 0))
        try:
            return reply["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(f"Malformed reply from {self.base_url}: {str(reply)[:300]}") from exc

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        delay = self.backoff
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
            try:
                with self._semaphore, urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code != 429 and exc.code < 500:
                    detail = exc.read().decode(errors="replace")[:300]
                    raise ServerError(f"{self.base_url}{path} answered {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = exc
            if attempt < self.retries:
                logger.warning("Request to %s failed (%s); retrying in %.1fs", self.base_url, last, delay)
                time.sleep(delay)
                delay *= 2
        raise ServerError(
            f"{self.base_url}{path} failed after {self.retries + 1} attempts: {last}"
        ) from last
