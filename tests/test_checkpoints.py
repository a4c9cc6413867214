"""Checkpoints that standard tools read correctly, and agents for models of other families.

* The committed leaderboard model has a context that fits every env's first prompt with tools,
  and ``transformers.pipeline`` stops at its end of turn and keeps the tool-call tags.
* A freshly saved tiny checkpoint carries the chat conventions (EOS and ``generation_config``
  at ``<|im_end|>``, tags as non-special single tokens) and a Qwen2.5-style tool template.
* Tiny Qwen2- and Llama-3-style checkpoints (:mod:`tests.family_models`: built here from
  configs with tokenizers carrying each family's special tokens; nothing is downloaded) stop at
  their own stop tokens and have their tool calls parsed by ToolGym's format parsers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from baselines.agents.chat import parse_tool_calls  # noqa: E402
from baselines.agents.llm import LLMAgent, LocalChatModel  # noqa: E402
from baselines.llm.model import (  # noqa: E402
    TinyLMConfig,
    build_tiny_model,
    context_length,
    extend_context,
    load_pretrained,
    save_pretrained,
)
from baselines.llm.tokenizer import (  # noqa: E402
    CHAT_TEMPLATE,
    ENDOFTEXT,
    IM_END,
    SPECIAL_TOKENS,
    TAG_TOKENS,
    train_tokenizer,
)
from tests.family_models import LLAMA_CALL, QWEN_CALL, save_llama3, save_qwen2  # noqa: E402

ROOT = Path(__file__).parents[1]
COMMITTED = ROOT / "benchmarks" / "results" / "leaderboard" / "models" / "lookup_sft"
REPLY_ROOM = 256
"""Tokens a reply needs on top of the first prompt."""
TASKS_PER_ENV = 60


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------- item 1: context
TOOLGYM_IDS = sorted(i for i in gym.registry if i.startswith("ToolGym/"))


@pytest.mark.parametrize("env_id", TOOLGYM_IDS)
def test_committed_model_fits_every_env_first_prompt_with_tools(env_id: str) -> None:
    from baselines.agents.chat import NATIVE_SYSTEM_PROMPT
    from baselines.llm.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(COMMITTED)
    context = json.loads((COMMITTED / "config.json").read_text())["n_positions"]
    env = gym.make(env_id, split="test")
    longest = 0
    for task in list(env.unwrapped.task_set)[:TASKS_PER_ENV]:
        _, info = env.reset(seed=0, options={"task_id": task.id})
        messages = [
            {"role": "system", "content": NATIVE_SYSTEM_PROMPT},
            {"role": "user", "content": info["task_prompt"]},
        ]
        text = tokenizer.apply_chat_template(messages, tools=info["tools"], tokenize=False, add_generation_prompt=True)
        longest = max(longest, len(tokenizer.encode(text, add_special_tokens=False)))
    env.close()
    assert longest + REPLY_ROOM <= context, f"{env_id}: prompt of {longest} tokens, context {context}"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_extend_context_keeps_outputs_within_the_old_context(arch: str) -> None:
    tokenizer = train_tokenizer(["find the value of K1 and answer"] * 4, vocab_size=300)
    model = build_tiny_model(
        TinyLMConfig(arch=arch, d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=24), tokenizer, seed=0
    ).eval()
    short = torch.randint(9, len(tokenizer), (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(input_ids=short).logits
        extend_context(model, 64)
        after = model(input_ids=short).logits
        long_logits = model(input_ids=torch.cat([short, short], 1)).logits
    assert context_length(model) == 64
    assert torch.equal(before, after)
    assert long_logits.shape[1] == 48 and bool(torch.isfinite(long_logits).all())
    with pytest.raises(ValueError, match="below the model's context"):
        extend_context(model, 10)


# --------------------------------------------------------------------------- item 2: conventions
def test_pipeline_on_the_committed_model_stops_at_the_end_of_turn_and_keeps_tags() -> None:
    env = gym.make("ToolGym/Lookup-v0", split="test")
    _, info = env.reset(seed=0)
    env.close()
    messages = [{"role": "user", "content": info["task_prompt"]}]
    expected = LocalChatModel(COMMITTED).complete([(messages, None)], max_tokens=40)[0]
    assert expected.finish_reason == "stop" and expected.text.startswith("<tool_call>")
    generator = transformers.pipeline("text-generation", model=str(COMMITTED), device="cpu")
    reply = generator(messages, max_new_tokens=40, do_sample=False)[0]["generated_text"][-1]
    assert reply == {"role": "assistant", "content": expected.text}


def test_saved_tiny_checkpoint_carries_the_chat_conventions(tmp_path: Path) -> None:
    tokenizer = train_tokenizer(["<tool_call>{}</tool_call><answer>x</answer>"] * 4, vocab_size=300)
    model = build_tiny_model(TinyLMConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, max_positions=64), tokenizer)
    save_pretrained(model, tokenizer, tmp_path)
    loaded_model, loaded = load_pretrained(tmp_path)
    vocab = loaded.get_vocab()
    assert loaded.eos_token == IM_END and loaded.pad_token == ENDOFTEXT
    assert loaded_model.generation_config.eos_token_id == [vocab[IM_END], vocab[ENDOFTEXT]]
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))  # ids as before
    assert not set(TAG_TOKENS) & set(loaded.all_special_tokens)
    text = '<|im_start|>assistant\n<tool_call>{"name": "get"}</tool_call><answer>x</answer><|im_end|>'
    ids = loaded.encode(text, add_special_tokens=False)
    assert all(vocab[t] in ids for t in TAG_TOKENS[:4])  # each tag is one token
    assert loaded.decode(ids, skip_special_tokens=True) == (
        'assistant\n<tool_call>{"name": "get"}</tool_call><answer>x</answer>'
    )


def test_chat_template_renders_tools_like_qwen2_5() -> None:
    chat_template_utils = pytest.importorskip("trl.chat_template_utils")
    tokenizer = train_tokenizer(["x"] * 4, vocab_size=300)
    tools = [
        {"type": "function", "function": {"name": "get", "description": "Value of a key.",
                                          "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}},
    ]
    call = {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": {"key": "K1"}}}
    messages = [
        {"role": "system", "content": "You solve tasks."},
        {"role": "user", "content": "Find K1."},
        {"role": "assistant", "content": "", "tool_calls": [call, call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "D2"},
        {"role": "tool", "tool_call_id": "call_1", "content": "D2"},
        {"role": "assistant", "content": "<answer>D2</answer>"},
    ]
    ours = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    qwen = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True,
        chat_template=chat_template_utils.qwen2_5_chat_template,
    )
    assert ours == qwen


def test_chat_template_without_tools_or_system_renders_the_training_layout() -> None:
    tokenizer = train_tokenizer(["x"] * 4, vocab_size=300)
    messages = [{"role": "user", "content": "Find K1."}, {"role": "assistant", "content": "<answer>D2</answer>"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, chat_template=CHAT_TEMPLATE)
    assert text == "<|im_start|>user\nFind K1.<|im_end|>\n<|im_start|>assistant\n<answer>D2</answer><|im_end|>\n"


# --------------------------------------------------------------------- item 4: other model families
TOOLS = [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]
ASK = [{"role": "user", "content": "Find K1."}]


def test_llama3_checkpoint_stops_at_eot_id_from_its_generation_config(llama3_checkpoint: Path) -> None:
    reply = LocalChatModel(llama3_checkpoint).complete([(ASK, None)], max_tokens=24)[0]
    assert reply.text == "".join(LLAMA_CALL)
    assert reply.finish_reason == "stop" and reply.completion_tokens == len(LLAMA_CALL) + 1


def test_llama3_checkpoint_json_tool_call_becomes_a_tool_call(llama3_checkpoint: Path) -> None:
    reply = LocalChatModel(llama3_checkpoint).complete([(ASK, TOOLS)], max_tokens=24)[0]
    assert reply.finish_reason == "tool_calls"
    (call,) = reply.message["tool_calls"]
    assert call["function"] == {"name": "get", "arguments": '{"key": "K1"}'}


def test_qwen2_checkpoint_xml_tool_call_becomes_a_tool_call(qwen2_checkpoint: Path) -> None:
    reply = LocalChatModel(qwen2_checkpoint).complete([(ASK, TOOLS)], max_tokens=24)[0]
    assert reply.finish_reason == "tool_calls" and reply.completion_tokens == len(QWEN_CALL) + 3
    (call,) = reply.message["tool_calls"]
    assert call["function"] == {"name": "get", "arguments": '{"key": "K1"}'}


@pytest.mark.parametrize("family", ["llama3_checkpoint", "qwen2_checkpoint"])
def test_llm_agent_turns_each_family_call_into_a_toolgym_step(family: str, request: pytest.FixtureRequest) -> None:
    env = gym.make("ToolGym/Lookup-v0", split="test", max_turns=2)
    agent = LLMAgent(request.getfixturevalue(family), protocol="native", max_new_tokens=24)
    observation, info = env.reset(seed=0)
    agent.reset()
    action = agent.act(observation, info)
    _, _, _, _, step = env.step(action)
    env.close()
    assert action == '<tool_call>{"name": "get", "arguments": {"key": "K1"}}</tool_call>'
    assert step["error"] in (None, "tool_error")  # a well-formed call of the env's tool


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ('Let me look. <tool_call>{"name": "get", "arguments": {"key": "K1"}}</tool_call>', "Let me look."),
        ("<tool_call>\n<function=get>\n<parameter=key>\nK1\n</parameter>\n</function>\n</tool_call>", None),
        ('[TOOL_CALLS][{"name": "get", "arguments": {"key": "K1"}}]', None),
        ('{"name": "get", "arguments": {"key": "K1"}}', None),
        ("get(key='K1')", None),
    ],
)
def test_every_builtin_call_syntax_becomes_an_openai_tool_call(text: str, content: str | None) -> None:
    parsed_content, calls = parse_tool_calls(text, "auto", {"get"})
    assert parsed_content == content
    assert [c["function"] for c in calls] == [{"name": "get", "arguments": '{"key": "K1"}'}]


def test_text_that_only_looks_like_a_call_stays_text() -> None:
    assert parse_tool_calls("print(x)", "auto", {"get"}) == ("print(x)", [])
    assert parse_tool_calls('<tool_call>{"name": </tool_call>', "auto", {"get"})[1] == []


def test_tool_call_ids_are_unique_across_turns() -> None:
    text = '<tool_call>{"name": "get", "arguments": {}}</tool_call>'
    ids = [parse_tool_calls(text)[1][0]["id"] for _ in range(50)]
    assert len(set(ids)) == 50 and all(i.startswith("call_") for i in ids)


@pytest.fixture(scope="module")
def llama3_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A programmed Llama-3 style checkpoint (see :func:`tests.family_models.save_llama3`)."""
    return save_llama3(tmp_path_factory.mktemp("llama3") / "tiny-llama3")


@pytest.fixture(scope="module")
def qwen2_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A programmed Qwen2 style checkpoint (see :func:`tests.family_models.save_qwen2`)."""
    return save_qwen2(tmp_path_factory.mktemp("qwen2") / "tiny-qwen2")
