"""Control tokens and legal positions come from the env's action format (issue 18, defect 9)."""

from __future__ import annotations

import copy

import pytest
import torch

from baselines.llm.rollout import Episode
from baselines.llm.tokenizer import ControlTokens
from baselines.train.batch import collate
from baselines.train.grammar import env_action_format, format_control_tokens


def test_hermes_gives_the_tokenizer_s_tags(tokenizer) -> None:
    control = format_control_tokens(tokenizer, "hermes")
    assert control.ids == ControlTokens.from_tokenizer(tokenizer).ids
    assert control.names[:4] == ["tool_call", "tool_call_end", "answer", "answer_end"]


def test_another_tag_format_maps_its_own_tags_and_grammar(tokenizer) -> None:
    tok = copy.deepcopy(tokenizer)
    tok.add_tokens(["<call>", "</call>", "<final>", "</final>"])
    control = format_control_tokens(tok, "xml_call")
    vocab = tok.get_vocab()
    assert control.ids["tool_call"] == vocab["<call>"] and control.ids["answer_end"] == vocab["</final>"]
    assert control.ids["tool_call"] != tokenizer.get_vocab()["<tool_call>"]
    # one assistant turn "<call>{}</call><eot>": inside the call only </call> is legal, then end-of-turn
    body = tok.encode("{}", add_special_tokens=False)
    turn = [control.ids["tool_call"], *body, control.ids["tool_call_end"], control.eot_id]
    prompt = tok.encode("hi", add_special_tokens=False)
    ids = prompt + turn
    ep = Episode(task_id="t", input_ids=ids, loss_mask=[0] * len(prompt) + [1] * len(turn),
                 sample_logprobs=[0.0] * len(ids), prompt_len=len(prompt))
    batch = collate([ep], control)
    names = control.names
    first_body = len(prompt)  # target index of the first body token (prediction after <call>)
    legal_in_call = [n for k, n in enumerate(names) if not bool(batch.illegal[0, first_body + 1, k])]
    assert legal_in_call == ["tool_call_end"]
    assert bool(batch.after_open[0, first_body])  # right after <call>
    assert int(batch.control_mask[0].sum()) == 3


def test_formats_the_trainer_cannot_analyse_fail_clearly(tokenizer) -> None:
    with pytest.raises(ValueError, match="cannot analyse action format 'openai_json'.*call and answer tags"):
        format_control_tokens(tokenizer, "openai_json")
    with pytest.raises(ValueError, match="tag '<call>' is not a single token of the tokenizer"):
        format_control_tokens(tokenizer, "xml_call")


def test_trainer_takes_the_format_from_the_env(sft_checkpoint, tmp_path) -> None:
    import gymnasium as gym

    from baselines.train.rl import RLTrainer
    from tests.train.test_trainers import rl_config

    env = gym.make("ToolGym/Lookup-v0", split="train", action_format="xml_call")
    assert env_action_format(env).name == "xml_call"
    with pytest.raises(ValueError, match="'xml_call': its tag '<call>' is not a single token"):
        RLTrainer(rl_config(sft_checkpoint, tmp_path, env_kwargs={"action_format": "xml_call"}))
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path / "ok"))
    assert trainer.control.ids == ControlTokens.from_tokenizer(trainer.tokenizer).ids
    assert torch.equal(trainer.control_ids, torch.as_tensor(trainer.control.id_list))
