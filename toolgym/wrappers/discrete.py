"""A discrete-action, vector-observation view of a ToolGym env, for classical RL (e.g. SB3).

:class:`DiscreteActionWrapper` turns a text env into a ``Discrete(K)`` / ``Box`` env:

* **Actions.** Each turn, a *candidate generator* proposes up to ``K`` text actions (tool calls and
  final answers) built from templates and the episode so far: slot ``i`` always means the same
  *kind* of action (e.g. "open the 2nd search result", "answer the birth year read from the last
  opened document"), so a policy can learn what each slot is good for. A slot with no candidate this
  turn maps to the fixed :data:`NOOP_ACTION` text, which the env rejects as an invalid action, so
  ``K`` never changes. :meth:`~DiscreteActionWrapper.action_masks` tells which slots hold a
  candidate (for ``sb3_contrib.MaskablePPO``).
* **Observations.** A fixed-size ``float32`` vector in ``[0, 1]`` (see :class:`ActionAdapter` for
  the layout): hashed bags of words (unigrams and bigrams, digits folded to ``<num>``) of the task
  prompt, of the latest observation and of the generator's *focus* text, then turn features.

Candidate generators are looked up per env family with :func:`candidate_generator_for`: first by
env id (``"ToolGym/Search-v0"``), then by env class (walking the MRO), else the generic
:func:`generic_generator`, built from the tools' JSON schemas and spans found in the text (ids like
``d00042``, keys like ``K7``, capitalised phrases, numbers). This module knows no particular env:
each env registers its own generator with :func:`register_candidates` when its package is imported
(the built-ins in ``toolgym/envs/<name>/candidates.py``), and a lookup by id imports the env's
module first.

Both the wrapper and :class:`baselines.agents.sb3.SB3Agent` drive the same :class:`ActionAdapter`
from ``(observation, info)`` pairs, so a trained policy sees identical features whether it plays
the wrapped env or the raw text env.

This module needs numpy only (no torch, no SB3).
"""

from __future__ import annotations

import importlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from toolgym.core.actions import Action, ActionFormat, FinalAnswer, ToolCall, get_action_format
from toolgym.core.errors import ConfigError

NOOP_ACTION = "(no action: this candidate slot is empty)"
"""Text sent to the env for a slot that holds no candidate this turn. It is not a valid action in
any built-in action format, so the env answers with an invalid-action error (``no_action``)."""

DEFAULT_PROMPT_DIM = 256
DEFAULT_OBSERVATION_DIM = 256
DEFAULT_FOCUS_DIM = 64
DEFAULT_MAX_TOOLS = 8
DEFAULT_SPANS = 6
"""Spans per tool (and for the answer) in the generic generator."""
TURN_FEATURES = 5
"""Scalar turn features: turn / max_turns, last action errored, last action was a no-op,
available candidates / K, first turn."""

# ---------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Turn:
    """One past step of the episode, as the candidate generator sees it.

    Attributes:
        slot: The discrete action taken (``None`` if the action did not come from a slot).
        action: The candidate action taken (``None`` for a no-op).
        output: The tool output (``info["tool_output"]``), ``None`` after an error or an answer.
        error: The env's error code (``info["error"]``) or ``None``.
    """

    slot: int | None
    action: Action | None
    output: str | None
    error: str | None

    @property
    def tool(self) -> str | None:
        """Name of the tool called, or ``None`` (answer, no-op)."""
        return self.action.name if isinstance(self.action, ToolCall) else None


@dataclass
class CandidateState:
    """What a candidate generator may read: only what an agent sees.

    Attributes:
        prompt: The task prompt (``info["task_prompt"]``).
        tools: OpenAI-style function schemas of the available tools (``info["tools"]``).
        observation: The latest observation text.
        turn: Steps taken so far in the episode.
        max_turns: The env's turn limit.
        history: Every step so far, oldest first.
    """

    prompt: str
    tools: list[dict[str, Any]]
    observation: str
    turn: int
    max_turns: int
    history: list[Turn] = field(default_factory=list)

    @property
    def tool_names(self) -> list[str]:
        """Names of the available tools, in the env's order."""
        return [t["function"]["name"] for t in self.tools]

    def last_output(self, tool: str | None = None) -> str | None:
        """The latest successful output (of ``tool`` if given), or ``None``."""
        for past in reversed(self.history):
            if past.output is not None and past.error is None and (tool is None or past.tool == tool):
                return past.output
        return None

    def calls(self, tool: str) -> int:
        """How many times ``tool`` was called (successfully or not)."""
        return sum(1 for past in self.history if past.tool == tool)


CandidateFn = Callable[[CandidateState], Sequence[Action | None]]
"""Returns the candidates for a state, aligned with the generator's slot names (``None`` = empty);
a shorter list leaves the remaining slots empty."""
FocusFn = Callable[[CandidateState], str]
"""Returns the text the policy should attend to now (hashed into the observation's focus block)."""


@dataclass(frozen=True)
class CandidateGenerator:
    """Candidate actions for one env family.

    Attributes:
        slot_names: What each slot means (its length is the default ``K``).
        candidates: The :data:`CandidateFn`.
        focus: Optional :data:`FocusFn`; without it the focus block is all zeros.
        name: A label recorded with trained models.
    """

    slot_names: tuple[str, ...]
    candidates: CandidateFn
    focus: FocusFn | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not self.slot_names:
            raise ConfigError(f"Candidate generator {self.name!r} needs at least one slot name, got none.")
        if len(set(self.slot_names)) != len(self.slot_names):
            raise ConfigError(f"Candidate generator {self.name!r} has duplicate slot names: {self.slot_names}.")


_GENERATORS: dict[str | type, CandidateGenerator] = {}


def register_candidates(
    env_cls_or_id: str | type,
    fn: CandidateFn | CandidateGenerator,
    *,
    slot_names: Sequence[str] | None = None,
    focus: FocusFn | None = None,
) -> CandidateGenerator:
    """Register the candidate generator of an env family (replacing any previous one).

    Args:
        env_cls_or_id: An env id (``"ToolGym/Search-v0"``) or an env class (subclasses match too).
        fn: A :class:`CandidateGenerator`, or a :data:`CandidateFn` together with ``slot_names``.
        slot_names: The slots ``fn``'s candidates are aligned with (required unless ``fn`` is a
            :class:`CandidateGenerator`).
        focus: Optional :data:`FocusFn` (only with a plain ``fn``).

    Returns:
        The registered generator.

    Raises:
        ConfigError: for a bad key, or a plain ``fn`` without ``slot_names``.
    """
    if not isinstance(env_cls_or_id, str | type):
        raise ConfigError(
            f"register_candidates expects an env id (str) or an env class, got {type(env_cls_or_id).__name__}."
        )
    if isinstance(fn, CandidateGenerator):
        generator = fn
    else:
        if slot_names is None:
            raise ConfigError(
                "register_candidates(key, fn) needs slot_names=[...] (what each candidate slot means) "
                "when fn is a plain function."
            )
        label = env_cls_or_id if isinstance(env_cls_or_id, str) else env_cls_or_id.__name__
        generator = CandidateGenerator(tuple(slot_names), fn, focus, name=label)
    _GENERATORS[env_cls_or_id] = generator
    return generator


def candidate_generator_for(
    env_id: str | None = None,
    env_cls: type | None = None,
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    spans: int = DEFAULT_SPANS,
) -> CandidateGenerator:
    """The registered generator for ``env_id`` or ``env_cls`` (id first, then the class's MRO),
    else :func:`generic_generator` over ``tools``.

    An env registers its generator when its module is imported, so an id not registered yet has
    the module of its Gymnasium entry point imported first (an env that cannot be imported gets
    the generic generator, as does an unknown id)."""
    if env_id is not None and env_id not in _GENERATORS:
        _import_entry_point(env_id)
    if env_id is not None and env_id in _GENERATORS:
        return _GENERATORS[env_id]
    if env_cls is not None:
        for cls in env_cls.__mro__:
            if cls in _GENERATORS:
                return _GENERATORS[cls]
    return generic_generator(tools, spans=spans)


def _import_entry_point(env_id: str) -> None:
    """Import the module of ``env_id``'s Gymnasium entry point (which registers its generator)."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error:
        return
    if isinstance(entry_point, str):
        try:
            importlib.import_module(entry_point.partition(":")[0])
        except ImportError:
            return


# ---------------------------------------------------------------------------------------- spans

_ID_RE = re.compile(r"\b[a-z]\d{3,}\b")
_KEY_RE = re.compile(r"\b[A-Z]\d+\b")
_CAPITALISED_RE = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_RESPONSE_RE = re.compile(r"\A\s*<(?P<tag>[\w.-]+)>\n?(?P<body>.*?)\n?</(?P=tag)>\s*\Z", re.DOTALL)


def extract_spans(text: str, limit: int | None = None) -> list[str]:
    """Candidate argument / answer spans in ``text``, deduplicated, in this order: ids (``d00042``),
    keys (``K7``), capitalised phrases (not a sentence's first word alone), numbers."""
    found: list[str] = []
    found += _ID_RE.findall(text)
    found += _KEY_RE.findall(text)
    for m in _CAPITALISED_RE.finditer(text):
        phrase = m.group(0)
        at_sentence_start = m.start() == 0 or text[: m.start()].rstrip()[-1:] in ".?!\n:"
        if at_sentence_start:
            head, _, rest = phrase.partition(" ")
            if not rest:
                continue
            phrase = rest
        found.append(phrase)
    found += _NUMBER_RE.findall(text)
    spans = list(dict.fromkeys(s for s in found if s))
    return spans if limit is None else spans[:limit]


def _fill(schema: Mapping[str, Any], span: str | None) -> Any:
    """A value for ``schema``: ``span`` for strings (and numbers if numeric), else a default."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    typ = schema.get("type", "string")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ == "string":
        return span
    if typ in ("integer", "number"):
        if span is not None:
            try:
                value = float(span)
            except ValueError:
                return None
            return int(value) if typ == "integer" and value.is_integer() else (value if typ == "number" else None)
        return schema.get("minimum", 1)
    if typ == "boolean":
        return False
    if typ == "array":
        return []
    if typ == "object":
        return {}
    return None


def generic_generator(tools: Sequence[Mapping[str, Any]], *, spans: int = DEFAULT_SPANS) -> CandidateGenerator:
    """The fallback generator, built from the tools' JSON schemas.

    Slots: for each tool, ``spans`` calls whose first required parameter (or first parameter) is
    the ``j``-th span of :func:`extract_spans` over the latest tool output then the prompt (other
    required parameters get their default, first enum value or minimum); a tool without
    parameters has one slot. Then ``spans`` final answers with the same spans.
    """
    functions = [dict(t.get("function", t)) for t in tools]
    slot_names: list[str] = []
    plans: list[tuple[str, str | None, dict[str, Any]]] = []
    for fn in functions:
        params = fn.get("parameters", {}) or {}
        props: dict[str, Any] = dict(params.get("properties", {}))
        required = [k for k in params.get("required", []) if k in props]
        main = required[0] if required else next(iter(props), None)
        if main is None:
            slot_names.append(f"{fn['name']}()")
            plans.append((fn["name"], None, {}))
            continue
        for j in range(spans):
            slot_names.append(f"{fn['name']}({main}=span{j})")
            plans.append((fn["name"], main, props))
    slot_names += [f"answer(span{j})" for j in range(spans)]
    required_by_tool = {
        fn["name"]: [k for k in (fn.get("parameters", {}) or {}).get("required", [])] for fn in functions
    }

    def candidates(state: CandidateState) -> list[Action | None]:
        latest = state.last_output() or ""
        pool = list(dict.fromkeys(extract_spans(latest) + extract_spans(state.prompt)))
        out: list[Action | None] = []
        index: dict[str, int] = {}
        for name, main, props in plans:
            if main is None:
                out.append(ToolCall(name, {}))
                continue
            j = index.get(name, 0)
            index[name] = j + 1
            span = pool[j] if j < len(pool) else None
            value = _fill(props[main], span) if span is not None else None
            if value is None:
                out.append(None)
                continue
            arguments = {main: value}
            for key in required_by_tool[name]:
                if key != main:
                    filled = _fill(props.get(key, {}), None)
                    if filled is None:
                        break
                    arguments[key] = filled
            else:
                out.append(ToolCall(name, arguments))
                continue
            out.append(None)
        out += [FinalAnswer(pool[j]) if j < len(pool) else None for j in range(spans)]
        return out

    return CandidateGenerator(tuple(slot_names), candidates, None, name="generic")


# ---------------------------------------------------------------------------------------- hashing

_TOKEN_RE = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


@lru_cache(maxsize=65_536)
def _bucket(token: str, dim: int) -> int:
    return zlib.crc32(token.encode("utf-8")) % dim


def hashed_bag_of_words(text: str, dim: int, out: np.ndarray | None = None) -> np.ndarray:
    """Binary hashed bag of lower-cased words and word bigrams of ``text`` (digits → ``<num>``).

    Uses CRC32, so buckets are the same in every process (unlike :func:`hash`).

    Returns:
        ``out`` (or a new array) of shape ``(dim,)``, dtype ``float32``, values in ``{0, 1}``.
    """
    vec = np.zeros(dim, dtype=np.float32) if out is None else out
    if dim <= 0:
        return vec
    words = ["<num>" if w[0].isdigit() else w for w in _TOKEN_RE.findall(text.lower())]
    for w in words:
        vec[_bucket(w, dim)] = 1.0
    for a, b in zip(words, words[1:], strict=False):
        vec[_bucket(f"{a} {b}", dim)] = 1.0
    return vec


def strip_enclosing_tag(observation: str) -> str:
    """The body of an observation enclosed in one XML-style tag pair, whichever the tag
    (``<x>\nbody\n</x>``), else the observation itself.

    Not :meth:`ActionFormat.unwrap_observation`: it knows no format, and leaves alone any other
    wrapping and a notice after the closing tag, so the features do not depend on the format."""
    m = _RESPONSE_RE.match(observation)
    return m.group("body") if m else observation


# ---------------------------------------------------------------------------------------- adapter


class ActionAdapter:
    """Per-episode candidate state and featuriser, driven by ``(observation, info)`` pairs.

    Observation vector layout (``float32``, all values in ``[0, 1]``), in order:

    1. ``prompt_dim``: hashed bag of words of the task prompt;
    2. ``obs_dim``: of the latest observation (the task prompt at reset, then each step's
       observation with its response tags stripped);
    3. ``focus_dim``: of the generator's focus text;
    4. :data:`TURN_FEATURES` scalars: turn / max_turns, last action errored, last action was a
       no-op, available candidates / K, first turn;
    5. ``max_tools``: one-hot of the tool called last;
    6. ``max_tools``: calls of each tool so far / max_turns (clipped to 1);
    7. ``K``: which slots hold a candidate now;
    8. ``K``: one-hot of the slot taken last.

    Args:
        generator: The :class:`CandidateGenerator`.
        num_actions: ``K``; default: the generator's number of slots. Extra candidates are dropped.
        max_turns: The env's turn limit (for the turn features).
        action_format: Format used to render candidates; default: ``info["action_format"]`` at
            :meth:`start`.
        prompt_dim, obs_dim, focus_dim: Sizes of the hashed blocks.
        max_tools: Tools covered by the tool features (more are ignored there).
        noop_action: The text of an empty slot.
    """

    def __init__(
        self,
        generator: CandidateGenerator,
        *,
        num_actions: int | None = None,
        max_turns: int,
        action_format: str | ActionFormat | None = None,
        prompt_dim: int = DEFAULT_PROMPT_DIM,
        obs_dim: int = DEFAULT_OBSERVATION_DIM,
        focus_dim: int = DEFAULT_FOCUS_DIM,
        max_tools: int = DEFAULT_MAX_TOOLS,
        noop_action: str = NOOP_ACTION,
    ) -> None:
        k = len(generator.slot_names) if num_actions is None else num_actions
        for label, value, low in (
            ("num_actions", k, 1), ("max_turns", max_turns, 1), ("prompt_dim", prompt_dim, 0),
            ("obs_dim", obs_dim, 0), ("focus_dim", focus_dim, 0), ("max_tools", max_tools, 0),
        ):
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"{label} must be an integer ≥ {low}, got {value!r}.")
        self.generator = generator
        self.num_actions = k
        self.max_turns = max_turns
        self.prompt_dim, self.obs_dim, self.focus_dim = prompt_dim, obs_dim, focus_dim
        self.max_tools = max_tools
        self.noop_action = noop_action
        self._format = None if action_format is None else get_action_format(action_format)
        self.dim = prompt_dim + obs_dim + focus_dim + TURN_FEATURES + 2 * max_tools + 2 * k
        self._state: CandidateState | None = None
        self._candidates: list[Action | None] = [None] * k
        self._texts: list[str] = [noop_action] * k
        self._prompt_vec = np.zeros(prompt_dim, dtype=np.float32)
        self._last_obs = ""

    @property
    def slot_names(self) -> tuple[str, ...]:
        """What each of the ``K`` slots means (padded with ``"empty{i}"`` beyond the generator's)."""
        names = self.generator.slot_names[: self.num_actions]
        return names + tuple(f"empty{i}" for i in range(len(names), self.num_actions))

    @property
    def state(self) -> CandidateState:
        """The current :class:`CandidateState` (after :meth:`start`)."""
        if self._state is None:
            raise RuntimeError("No episode: call start(observation, info) first (after env.reset).")
        return self._state

    def settings(self) -> dict[str, Any]:
        """The constructor settings as a JSON-able dict (recorded beside trained models)."""
        return {
            "generator": self.generator.name,
            "slot_names": list(self.slot_names),
            "num_actions": self.num_actions,
            "max_turns": self.max_turns,
            "prompt_dim": self.prompt_dim,
            "obs_dim": self.obs_dim,
            "focus_dim": self.focus_dim,
            "max_tools": self.max_tools,
            "noop_action": self.noop_action,
        }

    # -- episode --------------------------------------------------------------------------------
    def start(self, observation: str, info: Mapping[str, Any]) -> np.ndarray:
        """Begin an episode from the env's reset ``observation`` and ``info``; returns the features."""
        if self._format is None or ("action_format" in info and info["action_format"] != self._format.name):
            self._format = get_action_format(info.get("action_format", "hermes"))
        prompt = str(info.get("task_prompt") or observation)
        tools = [dict(t) for t in info.get("tools", [])]
        self._state = CandidateState(prompt, tools, observation, 0, self.max_turns, [])
        self._prompt_vec = hashed_bag_of_words(prompt, self.prompt_dim)
        self._last_obs = prompt
        self._refresh()
        return self.features()

    def record(self, slot: int | None, observation: str, info: Mapping[str, Any]) -> np.ndarray:
        """Record the outcome of a step that took ``slot``; returns the new features."""
        state = self.state
        action = self._candidates[slot] if slot is not None and 0 <= slot < self.num_actions else None
        output = info.get("tool_output")
        state.history.append(
            Turn(slot, action, None if output is None else str(output), info.get("error"))
        )
        state.turn = int(info.get("turn", state.turn + 1))
        state.observation = observation
        self._last_obs = strip_enclosing_tag(observation)
        self._refresh()
        return self.features()

    def _refresh(self) -> None:
        proposed = list(self.generator.candidates(self.state))[: self.num_actions]
        proposed += [None] * (self.num_actions - len(proposed))
        self._candidates = proposed
        fmt = self._format if self._format is not None else get_action_format("hermes")
        self._texts = [self.noop_action if a is None else fmt.render(a) for a in proposed]

    # -- views ----------------------------------------------------------------------------------
    def candidates(self) -> list[str | None]:
        """The action text of every slot now (``None`` for an empty slot)."""
        return [None if a is None else t for a, t in zip(self._candidates, self._texts, strict=True)]

    def candidate_actions(self) -> list[Action | None]:
        """The parsed candidate of every slot now (``None`` for an empty slot)."""
        return list(self._candidates)

    def action_masks(self) -> np.ndarray:
        """Boolean array of shape ``(K,)``: which slots hold a candidate now."""
        return np.array([a is not None for a in self._candidates], dtype=bool)

    def action_text(self, slot: int) -> str:
        """The text to send to the env for ``slot`` (:data:`NOOP_ACTION`-like text if empty).

        Raises:
            ValueError: if ``slot`` is not in ``[0, K)``.
        """
        if not 0 <= int(slot) < self.num_actions:
            raise ValueError(f"Action {slot!r} is out of range: expected an integer in [0, {self.num_actions}).")
        return self._texts[int(slot)]

    def features(self) -> np.ndarray:
        """The observation vector (shape ``(dim,)``, ``float32``); see the class docstring."""
        state = self.state
        k, t = self.num_actions, self.max_tools
        vec = np.zeros(self.dim, dtype=np.float32)
        pos = 0
        vec[: self.prompt_dim] = self._prompt_vec
        pos += self.prompt_dim
        hashed_bag_of_words(self._last_obs, self.obs_dim, vec[pos : pos + self.obs_dim])
        pos += self.obs_dim
        if self.generator.focus is not None and self.focus_dim:
            hashed_bag_of_words(self.generator.focus(state), self.focus_dim, vec[pos : pos + self.focus_dim])
        pos += self.focus_dim
        last = state.history[-1] if state.history else None
        mask = self.action_masks()
        vec[pos : pos + TURN_FEATURES] = (
            min(state.turn / self.max_turns, 1.0),
            float(last is not None and last.error is not None),
            float(last is not None and last.action is None),
            mask.sum() / k,
            float(last is None),
        )
        pos += TURN_FEATURES
        names = state.tool_names[:t]
        if last is not None and last.tool in names:
            vec[pos + names.index(last.tool)] = 1.0
        pos += t
        for i, name in enumerate(names):
            vec[pos + i] = min(state.calls(name) / self.max_turns, 1.0)
        pos += t
        vec[pos : pos + k] = mask
        pos += k
        if last is not None and last.slot is not None and 0 <= last.slot < k:
            vec[pos + last.slot] = 1.0
        return vec


# ---------------------------------------------------------------------------------------- wrapper


class DiscreteActionWrapper(gym.Wrapper[np.ndarray, np.int64, str, str], gym.utils.RecordConstructorArgs):
    """``Discrete(K)`` actions over candidate text actions and a ``Box`` vector observation.

    Wraps a ToolGym text env (anything with the :class:`~toolgym.core.env.ToolEnv` contract:
    ``info`` with ``task_prompt``, ``tools``, ``action_format``, ``turn``, ``tool_output`` and
    ``error``). Rewards, termination and truncation pass through unchanged; ``info`` gains
    ``action_text`` (what was sent), ``action_mask`` and ``candidates`` (the next turn's slots).

    Args:
        env: The text env (possibly already wrapped, e.g. by ``gym.make``'s wrappers).
        generator: A :class:`CandidateGenerator`; default: :func:`candidate_generator_for` the
            env's id, then its class, else the generic one over its tools.
        num_actions: ``K`` (default: the generator's number of slots).
        prompt_dim, obs_dim, focus_dim, max_tools: Feature sizes (see :class:`ActionAdapter`).
        noop_action: Text sent for an empty slot.

    Example::

        env = DiscreteActionWrapper(gym.make("ToolGym/Search-v0", difficulty="easy"))
        obs, info = env.reset(seed=0)          # obs.shape == env.observation_space.shape
        obs, reward, terminated, truncated, info = env.step(env.action_masks().argmax())
    """

    def __init__(
        self,
        env: gym.Env[str, str],
        *,
        generator: CandidateGenerator | None = None,
        num_actions: int | None = None,
        prompt_dim: int = DEFAULT_PROMPT_DIM,
        obs_dim: int = DEFAULT_OBSERVATION_DIM,
        focus_dim: int = DEFAULT_FOCUS_DIM,
        max_tools: int = DEFAULT_MAX_TOOLS,
        noop_action: str = NOOP_ACTION,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, generator=generator, num_actions=num_actions, prompt_dim=prompt_dim, obs_dim=obs_dim,
            focus_dim=focus_dim, max_tools=max_tools, noop_action=noop_action,
        )
        gym.Wrapper.__init__(self, env)
        base: Any = env.unwrapped
        if not hasattr(base, "max_turns") or not hasattr(base, "tools"):
            raise ConfigError(
                f"DiscreteActionWrapper expects a ToolGym text env (with max_turns and tools), "
                f"got {type(base).__name__}."
            )
        spec = env.spec or base.spec
        self.env_id: str | None = spec.id if spec is not None else None
        if generator is None:
            schemas = [t.to_openai() for t in base.tools.values()]
            generator = candidate_generator_for(self.env_id, type(base), schemas)
        self.adapter = ActionAdapter(
            generator,
            num_actions=num_actions,
            max_turns=int(base.max_turns),
            action_format=getattr(base, "format", None),
            prompt_dim=prompt_dim,
            obs_dim=obs_dim,
            focus_dim=focus_dim,
            max_tools=max_tools,
            noop_action=noop_action,
        )
        self.action_space = spaces.Discrete(self.adapter.num_actions)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.adapter.dim,), dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the env and return the features of its first observation."""
        observation, info = self.env.reset(seed=seed, options=options)
        features = self.adapter.start(observation, info)
        return features, self._decorate(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Send slot ``action``'s text to the env.

        Raises:
            ValueError: if ``action`` is not an integer in ``[0, K)``.
        """
        try:
            slot = int(action)
        except (TypeError, ValueError):
            raise ValueError(
                f"DiscreteActionWrapper expects an integer action in [0, {self.adapter.num_actions}), "
                f"got {action!r}."
            ) from None
        text = self.adapter.action_text(slot)
        observation, reward, terminated, truncated, info = self.env.step(text)
        features = self.adapter.record(slot, observation, info)
        info = self._decorate(info)
        info["action_text"] = text
        return features, float(reward), bool(terminated), bool(truncated), info

    def _decorate(self, info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        info["action_mask"] = self.adapter.action_masks()
        info["candidates"] = self.adapter.candidates()
        return info

    def action_masks(self) -> np.ndarray:
        """Which of the ``K`` slots hold a candidate now (for ``sb3_contrib.MaskablePPO``)."""
        return self.adapter.action_masks()

    def candidates(self) -> list[str | None]:
        """The action text of every slot now (``None`` for an empty slot)."""
        return self.adapter.candidates()

    def settings(self) -> dict[str, Any]:
        """The wrapper settings as a JSON-able dict (see :meth:`ActionAdapter.settings`)."""
        return {"env_id": self.env_id, **self.adapter.settings()}
