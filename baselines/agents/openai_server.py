"""An agent backed by any OpenAI-compatible chat-completions server (vLLM, llama.cpp, hosted APIs,
or ``python -m baselines.serve`` for a model of this repo).

The conversation is a :class:`~baselines.agents.chat.ChatTranscript`: with ``protocol="native"``
(default) the env's tools go in the request's ``tools`` field and the server's ``tool_calls`` become
the env's tool-call actions; with ``protocol="text"`` the model's text is the action as is (see
:mod:`baselines.agents.chat`). The local :class:`~baselines.agents.llm.LLMAgent` uses the same
transcript, so both agents send a model the same conversation.

Reliability: each request has a ``timeout``; connection errors, timeouts, HTTP 408, 409, 429 and
5xx are retried ``retries`` times with exponential backoff (``backoff``, doubling; a server's
``Retry-After`` is honoured); other 4xx fail at once with :class:`ServerError` quoting the
server's message. At most ``max_concurrency`` requests per base URL are in flight across all
agents of the process (the first agent for a URL sets the limit). A conversation that outgrows
the server's context (HTTP 400 with ``context_length_exceeded``) ends the episode with an empty
final answer instead of failing the run. Only the standard library is used.

Agent spec for :func:`baselines.agents.make_agent` and the leaderboard::

    openai:MODEL@BASE_URL[?key=value&...]
    openai:gpt-4o-mini@https://api.openai.com/v1
    openai:tiny@http://127.0.0.1:8000/v1?protocol=text&system=none&max_tokens=40

Keys: ``protocol``, ``system``, ``temperature``, ``max_tokens``, ``timeout``, ``retries``,
``backoff``, ``max_concurrency``, ``api_key_env`` (name of the environment variable holding the
key; default ``OPENAI_API_KEY``, sent only if set).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from baselines.agents.chat import ChatAgentSlots, ChatTranscript, check_protocol
from toolgym.core.errors import ConfigError, ToolGymError

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429})
"""HTTP statuses (besides 5xx) that are retried."""

_semaphores: dict[str, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


class ServerError(ToolGymError):
    """The server could not be reached, refused the request, or kept failing after all retries."""


class ContextLengthExceeded(ServerError):
    """The server says the conversation does not fit the model's context."""


def _semaphore(base_url: str, limit: int) -> threading.BoundedSemaphore:
    with _semaphores_lock:
        if base_url not in _semaphores:
            _semaphores[base_url] = threading.BoundedSemaphore(limit)
        return _semaphores[base_url]


class OpenAIChatAgent(ChatAgentSlots):
    """Plays ToolGym envs through an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: Server root including the API version, e.g. ``http://127.0.0.1:8000/v1``.
        model: Model name sent in requests.
        api_key: Sent as a bearer token if given.
        protocol: ``"native"`` (tools / tool_calls) or ``"text"`` (see :mod:`baselines.agents.chat`).
        system: ``"auto"``, ``"env"`` or ``"none"``: the system prompt.
        temperature: Sampling temperature (0: greedy).
        max_tokens: Completion limit per turn.
        timeout: Seconds per HTTP request.
        retries: Extra attempts after a failed request.
        backoff: First retry delay in seconds (doubles each time).
        max_concurrency: Requests in flight to this server, shared by all agents in the process.
        seed: Sent as the request ``seed`` (``reset(seed=...)`` replaces it per episode).

    Raises:
        ConfigError: for invalid settings.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        protocol: str = "native",
        system: str = "auto",
        temperature: float = 0.0,
        max_tokens: int = 256,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_concurrency: int = 8,
        seed: int | None = None,
    ) -> None:
        check_protocol(protocol, system)
        if retries < 0 or max_concurrency < 1 or timeout <= 0 or backoff < 0 or max_tokens < 1:
            raise ConfigError(
                "Need retries ≥ 0, max_concurrency ≥ 1, timeout > 0, backoff ≥ 0 and max_tokens ≥ 1; got "
                f"retries={retries}, max_concurrency={max_concurrency}, timeout={timeout}, "
                f"backoff={backoff}, max_tokens={max_tokens}."
            )
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}.")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.protocol = protocol
        self.system = system
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_concurrency = int(max_concurrency)
        self.seed = seed
        self._request_seed = seed
        self._semaphore = _semaphore(self.base_url, max_concurrency)
        self.requests = 0
        """Requests answered since the agent was built."""
        self.context_overflows = 0
        self.transcripts: list[ChatTranscript] = []
        self.slot_tokens: list[int] = []
        self._counter_lock = threading.Lock()
        self.reset_batch(1)

    # ------------------------------------------------------------------ Policy interface
    def _start(self, seed: int | None) -> None:
        """New conversations send ``seed`` as the request seed."""
        self._request_seed = seed

    def act_batch(
        self,
        observations: Sequence[str],
        infos: Sequence[dict[str, Any]],
        slots: Sequence[int] | None = None,
    ) -> list[str]:
        """One action per running conversation; requests are sent concurrently (at most
        ``max_concurrency`` at a time). Arguments as :meth:`baselines.agents.llm.LLMAgent.act_batch`."""
        slots = list(range(len(observations))) if slots is None else list(slots)
        if not len(observations) == len(infos) == len(slots):
            raise ValueError(
                f"Got {len(observations)} observations, {len(infos)} infos and {len(slots)} slots; they must match."
            )
        if any(not 0 <= s < len(self.transcripts) for s in slots):
            raise ValueError(
                f"Slots {slots} out of range for {len(self.transcripts)} episodes; call reset_batch(n)."
            )
        for slot, observation, info in zip(slots, observations, infos, strict=True):
            self.transcripts[slot].observe(observation, info)
        if len(slots) == 1:
            return [self._turn(slots[0])]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(slots))) as pool:
            return list(pool.map(self._turn, slots))

    # ------------------------------------------------------------------ internals
    def _turn(self, slot: int) -> str:
        transcript = self.transcripts[slot]
        try:
            reply = self.complete(transcript.messages, transcript.request_tools)
        except ContextLengthExceeded as exc:
            with self._counter_lock:
                self.context_overflows += 1
                first = self.context_overflows == 1
            (logger.warning if first else logger.debug)("%s; answering empty.", exc)
            return transcript.give_up()
        usage = reply.get("usage") or {}
        with self._counter_lock:
            self.slot_tokens[slot] += int(usage.get("total_tokens", 0) or 0)
        try:
            message = reply["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(f"Malformed reply from {self.base_url}: {str(reply)[:300]}") from exc
        if not isinstance(message, dict):
            raise ServerError(f"Malformed message from {self.base_url}: {str(message)[:300]}")
        return transcript.reply(message)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """POST one chat-completions request with this agent's settings; return the reply object.

        Raises:
            ContextLengthExceeded: if the server says the prompt is too long.
            ServerError: for any other failure after the retries.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self._request_seed is not None:
            body["seed"] = self._request_seed
        if tools:
            body["tools"] = tools
        reply = self._post("/chat/completions", body)
        with self._counter_lock:
            self.requests += 1
        return reply

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url + path
        delay = self.backoff
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            retry_after: float | None = None
            try:
                with self._semaphore, urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read())
                if not isinstance(payload, dict):
                    raise ServerError(f"{url} answered with {type(payload).__name__}, not a JSON object.")
                return payload
            except urllib.error.HTTPError as exc:
                last = exc
                detail = exc.read().decode(errors="replace")[:500]
                if exc.code not in RETRY_STATUS and exc.code < 500:
                    if "context_length_exceeded" in detail or "maximum context length" in detail:
                        raise ContextLengthExceeded(
                            f"{url}: the conversation exceeds the model's context ({detail})"
                        ) from exc
                    raise ServerError(f"{url} answered HTTP {exc.code}: {detail}") from exc
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                last = ServerError(f"HTTP {exc.code}: {detail[:200]}")
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last = exc
            if attempt < self.retries:
                wait = max(delay, retry_after or 0.0)
                logger.warning(
                    "Request to %s failed (%s); retry %d/%d in %.1fs",
                    url,
                    last,
                    attempt + 1,
                    self.retries,
                    wait,
                )
                time.sleep(wait)
                delay *= 2
        raise ServerError(
            f"{url} failed after {self.retries + 1} attempt(s) (timeout {self.timeout}s each): {last}"
        ) from last


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None


_SPEC_CASTS: dict[str, Any] = {
    "protocol": str,
    "system": str,
    "temperature": float,
    "max_tokens": int,
    "timeout": float,
    "retries": int,
    "backoff": float,
    "max_concurrency": int,
}


def agent_from_spec(spec: str, *, seed: int | None = None) -> OpenAIChatAgent:
    """Build an agent from ``MODEL@BASE_URL[?key=value&...]`` (the part after ``openai:``).

    Raises:
        ConfigError: for a malformed spec or an unknown / invalid option.
    """
    if "@" not in spec:
        raise ConfigError(
            f"Expected openai:MODEL@BASE_URL (e.g. openai:tiny@http://127.0.0.1:8000/v1), got 'openai:{spec}'."
        )
    model, _, rest = spec.partition("@")
    base_url, _, query = rest.partition("?")
    if not model or not base_url:
        raise ConfigError(f"Both MODEL and BASE_URL are needed in 'openai:{spec}'.")
    kwargs: dict[str, Any] = {}
    key_env = "OPENAI_API_KEY"
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigError(
            f"Malformed options {query!r} in 'openai:{spec}'; expected key=value&key=value."
        ) from exc
    for key, value in pairs:
        if key == "api_key_env":
            key_env = value
        elif key in _SPEC_CASTS:
            try:
                kwargs[key] = _SPEC_CASTS[key](value)
            except ValueError as exc:
                raise ConfigError(
                    f"Option {key}={value!r} in 'openai:{spec}' is not a valid {_SPEC_CASTS[key].__name__}."
                ) from exc
        else:
            raise ConfigError(
                f"Unknown option {key!r} in 'openai:{spec}'; known: {sorted([*_SPEC_CASTS, 'api_key_env'])}."
            )
    return OpenAIChatAgent(base_url, model, api_key=os.environ.get(key_env) or None, seed=seed, **kwargs)
