"""Tokenizer, chat template and control-token identification."""

from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from baselines.llm.model import load_pretrained, save_pretrained
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.rollout import EpisodeRequest, RolloutSettings, collect_episodes
from baselines.llm.tokenizer import CONTROL_TOKEN_STRINGS, ChatFormat, ControlTokens, load_tokenizer
from baselines.train.envs import make_envs
from toolgym.core.formats import CALL_CLOSE, CALL_OPEN, RESPONSE_CLOSE, RESPONSE_OPEN


def test_control_tokens_are_single_special_tokens(tokenizer) -> None:
    for text in CONTROL_TOKEN_STRINGS.values():
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert len(ids) == 1, text
        assert tokenizer.decode(ids) == text


def test_control_tokens_found_and_eot_is_im_end(tokenizer) -> None:
    control = ControlTokens.from_tokenizer(tokenizer)
    assert set(control.names) == set(CONTROL_TOKEN_STRINGS)
    assert control.eot_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = torch.tensor([control.ids["tool_call"], 100, control.eot_id])
    assert control.mask(ids).tolist() == [True, False, True]


def test_chat_template_matches_rollout_pieces(tokenizer, trajectories) -> None:
    """The jinja template renders the same text as ChatFormat's pieces + the assistant turns."""
    chat = ChatFormat(tokenizer, include_system_prompt=True)
    traj = trajectories[1]
    messages = [{"role": "system", "content": traj.system}, {"role": "user", "content": traj.user}]
    pieces = chat.prompt_text(traj.system, traj.user)
    for turn, action in enumerate(traj.actions[:-1]):
        output = traj.observations[turn].removeprefix(RESPONSE_OPEN + "\n").removesuffix("\n" + RESPONSE_CLOSE)
        messages += [{"role": "assistant", "content": action}, {"role": "tool", "content": output}]
        pieces += action + "<|im_end|>" + chat.observation_text(traj.observations[turn])
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == pieces
    episode = traj.to_episode(chat)
    assert tokenizer.decode(episode.input_ids).startswith(pieces)


def test_chat_template_renders_tools_and_tool_calls(tokenizer) -> None:
    tools = [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]
    call = {"type": "function", "function": {"name": "get", "arguments": {"key": "K1"}}}
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Find K1."}, {"role": "assistant", "content": "", "tool_calls": [call]}],
        tools=tools,
        tokenize=False,
    )
    assert '<tools>\n{"type": "function", "function": {"name": "get"' in text  # Qwen2.5 layout
    assert CALL_OPEN + '\n{"name": "get", "arguments": {"key": "K1"}}\n' + CALL_CLOSE + "<|im_end|>" in text


def test_tokenizer_round_trips_through_save_pretrained(tokenizer, tmp_path) -> None:
    tokenizer.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    text = '<|im_start|>assistant\n' + CALL_OPEN + '{"name": "get"}' + CALL_CLOSE + '<|im_end|>'
    assert again.encode(text, add_special_tokens=False) == tokenizer.encode(text, add_special_tokens=False)
    assert again.chat_template == tokenizer.chat_template


def _qwen_style_tokenizer() -> PreTrainedTokenizerFast:
    """A local stand-in for a Qwen2.5 tokenizer: ChatML and tool-call tags are special tokens,
    ``<answer>`` is not (it is plain text there), ids are not ours."""
    vocab = {ch: i for i, ch in enumerate(sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}\":,.<>/_\n")))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="a"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=core)
    tok.add_special_tokens({"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", CALL_OPEN, CALL_CLOSE]})
    return tok


def test_qwen_style_checkpoint_control_tokens_and_rollout(tmp_path) -> None:
    """Any local HF checkpoint works: control tokens come from its tokenizer; rollouts run."""
    tok = _qwen_style_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    save_pretrained(LlamaForCausalLM(config), tok, tmp_path)
    model, loaded = load_pretrained(tmp_path)
    control = ControlTokens.from_tokenizer(loaded)
    assert set(control.names) == {"im_start", "im_end", "tool_call", "tool_call_end", "eos"}
    assert control.eot_id == loaded.convert_tokens_to_ids("<|im_end|>")
    assert control.ids["tool_call"] == loaded.convert_tokens_to_ids(CALL_OPEN)
    chat = ChatFormat(loaded, include_system_prompt=False)
    envs = make_envs("ToolGym/Lookup-v0", 2, "train")
    episodes = collect_episodes(CausalLMPolicy(model, control), chat, envs, [EpisodeRequest("lookup-train-00000", 0)] * 2,
                                RolloutSettings(max_new_tokens=8), generator=torch.Generator().manual_seed(0))
    assert all(e.num_turns >= 1 and e.num_generated >= 1 for e in episodes)
