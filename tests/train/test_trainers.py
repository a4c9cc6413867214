"""SFT and RL trainers end to end on tiny configs: they train, log, checkpoint and resume."""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import toolgym  # noqa: F401  (registers the ToolGym envs)
from baselines.agents.llm import AGENT_SETTINGS_FILE, read_agent_settings
from baselines.train import __main__ as train_cli
from baselines.train.common import TrainingDivergedError
from baselines.train.config import RLConfig, SFTConfig, SupervisionConfig, load_config
from baselines.train.rl import RLTrainer, rl_loss
from baselines.train.sft import SFTTrainer

ALL = ["offpolicy_expert", "hint", "interleaved_sft", "sft_mix", "control_kl", "control_clip", "spike_penalty"]


def rl_config(init: Path, out: Path, **overrides) -> RLConfig:
    fields = dict(
        env="ToolGym/Lookup-v0", init=str(init), out_dir=str(out), include_system_prompt=False,
        steps=2, prompts_per_step=2, group_size=4, epochs=2, minibatches=2, lr=1e-3,
        max_new_tokens=24, max_observation_tokens=32, eval_every=2, eval_episodes=4, probe_size=4,
        save_every=0, tensorboard=False, progress=False, num_tasks=40,
    )
    fields.update(overrides)
    return RLConfig(**fields)


def params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def comparable_weight(name: str, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` without GPT-2's key bias, for comparing two runs' weights that should agree up
    to float rounding. The key bias shifts every attention logit of a query equally, so softmax
    cancels it and its gradient is exactly 0 up to rounding; Adam divides that noise by its own
    size and turns it into lr-sized steps. Only the query and value biases are kept."""
    if not name.endswith("attn.c_attn.bias"):
        return weight
    d = weight.shape[0] // 3
    return torch.cat([weight[:d], weight[2 * d :]])


def test_sft_trains_logs_and_saves(tmp_path) -> None:
    cfg = SFTConfig(
        env="ToolGym/Lookup-v0", out_dir=str(tmp_path), include_system_prompt=False, num_tasks=60,
        tokenizer_tasks=60, vocab_size=320, model={"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "max_positions": 192},
        steps=4, batch_size=8, eval_every=2, eval_episodes=4, max_new_tokens=16, expert_noise=0.2,
        tensorboard=True, progress=False,
    )
    trainer = SFTTrainer(cfg)
    before = params(trainer.model)
    summary = trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 4 and all(math.isfinite(float(r["train/loss"])) for r in rows)
    assert rows[1]["eval/success"] != "" and "eval/errors/bad_json" in rows[0]
    assert (tmp_path / "model" / "config.json").is_file() and list((tmp_path / "tb").iterdir())
    assert 0.0 <= summary["final_success"] <= 1.0
    # The model and every checkpoint say how they were trained, so that a copy of one, away from the
    # trainer's config.yaml, is still played as trained by `llm:`.
    trained = {"protocol": "text", "system": "none", "max_new_tokens": 16, "max_observation_tokens": 256}
    moved = shutil.copytree(tmp_path / "model", tmp_path / "elsewhere" / "model")
    checkpoints = list((tmp_path / "checkpoints").iterdir())
    assert read_agent_settings(moved) == trained and checkpoints
    assert all(read_agent_settings(c) == trained for c in checkpoints)


@pytest.mark.parametrize(("env_id", "fmt"), [("ToolGym/Lookup-v0", "hermes"), ("ToolGym/Calc-v0", "pythonic"),
                                             ("ToolGym/SQL-v0", "xml_call")])
def test_noisy_expert_changes_content_not_format(env_id, fmt) -> None:
    import random

    from baselines.train.envs import ExpertBank, ExpertNoise, task_ids
    from toolgym.core.formats import ToolCall, get_action_format

    bank = ExpertBank(env_id, "train", {"action_format": fmt})
    trajs = bank.many(task_ids(bank.env, 50))
    noise = ExpertNoise(trajs, p=0.9, action_format=fmt)
    parse = get_action_format(fmt).parse
    rng = random.Random(0)
    changed = 0
    for t in trajs:
        noisy = noise.corrupt(t.actions, rng)
        for clean, dirty in zip(t.actions, noisy, strict=True):
            a, b = parse(clean), parse(dirty)
            assert type(a) is type(b) and (not isinstance(a, ToolCall) or (a.name, a.arguments.keys()) == (b.name, b.arguments.keys()))
            changed += clean != dirty
    assert changed > 0.3 * sum(len(t.actions) for t in trajs)


def test_played_episodes_record_what_the_env_really_answered() -> None:
    from baselines.train.envs import ExpertBank, ExpertNoise, PlayedNoise, task_ids

    bank = ExpertBank("ToolGym/Lookup-v0", "train")
    ids = task_ids(bank.env, 30)
    noise = ExpertNoise(bank.many(ids), 0.0)
    # Every action cut short: every turn is a parse error, and no episode succeeds.
    broken = [bank.play(task, PlayedNoise(noise, content_p=0.0, format_p=1.0, seed=1), seed=0) for task in ids[:5]]
    assert all(not t.success and all(info["error"] for info in t.turn_infos) for t in broken)
    # Content replaced: some episodes fail; replaying the recorded actions gives the recorded observations.
    perturb = PlayedNoise(noise, content_p=0.5, format_p=0.0, seed=2)
    played = [bank.play(task, perturb, seed=i) for i, task in enumerate(ids)]
    assert 0 < sum(t.success for t in played) < len(played)
    env = bank.env
    for i, traj in enumerate(played):
        env.reset(seed=i, options={"task_id": traj.task_id})
        seen = [env.step(action)[0] for action in traj.actions]
        assert seen[:-1] == traj.observations


def test_sft_on_a_mixture_of_envs_formats_and_played_episodes(tmp_path) -> None:
    cfg = SFTConfig(
        env="ToolGym/Lookup-v0", mixture="ToolGym/Calc-v0@pythonic, ToolGym/SQL-v0@xml_call", played_episodes=0.5,
        out_dir=str(tmp_path), include_system_prompt=False, num_tasks=20, tokenizer_tasks=60, vocab_size=400,
        model={"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "max_positions": 512}, max_observation_tokens=64,
        steps=3, batch_size=6, eval_every=3, eval_episodes=4, max_new_tokens=16, expert_noise=0.2,
        tensorboard=False, progress=False,
    )
    trainer = SFTTrainer(cfg)
    assert [s.name for s in trainer.sources] == ["ToolGym/Lookup-v0", "ToolGym/Calc-v0@pythonic", "ToolGym/SQL-v0@xml_call"]
    assert all(len(s.played) == 20 for s in trainer.sources)
    assert any(not t.success for s in trainer.sources for t in s.played)
    assert trainer.sources[1].trajectories[0].actions[0].startswith("calculator(")
    drawn = [trainer._sample_batch()[0] for _ in range(30)]
    ids = {t.task_id for batch in drawn for t in batch}
    played_ids = {id(t) for s in trainer.sources for t in s.played}
    assert all(any(i.startswith(p) for i in ids) for p in ("lookup-", "calc-", "sql-"))
    share = sum(id(t) in played_ids for batch in drawn for t in batch) / (30 * 6)
    assert 0.35 < share < 0.65
    assert trainer.tokenizer.convert_ids_to_tokens(trainer.tokenizer.encode("calculator")) == ["calculator"]
    summary = trainer.train()
    assert summary["steps"] == 3 and math.isfinite(summary["final_success"])


def test_length_buckets_sort_and_bound_the_padded_size() -> None:
    from baselines.train.common import length_buckets

    lengths = [50, 10, 400, 12, 30, 900, 11]
    buckets = length_buckets(range(7), lengths, 100)
    assert sorted(i for b in buckets for i in b) == list(range(7))
    assert [[lengths[i] for i in b] for b in buckets] == [[10, 11, 12], [30, 50], [400], [900]]
    assert all(len(b) * max(lengths[i] for i in b) <= 100 or len(b) == 1 for b in buckets)


def test_bucketed_sft_step_has_the_loss_and_gradient_of_the_padded_batch(tmp_path) -> None:
    from baselines.train.sft import sft_step

    cfg = SFTConfig(
        env="ToolGym/Lookup-v0", mixture=["ToolGym/Booking-v0", "ToolGym/Calc-v0@pythonic"], out_dir=str(tmp_path),
        include_system_prompt=False, num_tasks=12, tokenizer_tasks=36, vocab_size=400, steps=1, batch_size=12,
        model={"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "max_positions": 4096}, max_observation_tokens=48,
        eval_every=0, tensorboard=False, progress=False, threads=1,
    )
    trainer = SFTTrainer(cfg)
    batch, actions = trainer._sample_batch()
    lengths = [len(t.to_episode(trainer.chat, max_observation_tokens=48).input_ids) for t in batch]
    assert max(lengths) > 3 * min(lengths)  # a real spread of lengths, so buckets differ from the batch
    results = []
    for bucket_tokens in (0, 4 * max(lengths)):
        model = copy.deepcopy(trainer.model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the weights: compare gradients
        stats = sft_step(model, optimizer, trainer.chat, batch, temperature=1.0, grad_clip=None,
                         max_observation_tokens=48, step=1, actions=actions, bucket_tokens=bucket_tokens)
        results.append((stats, [p.grad.clone() for p in model.parameters()]))
    (padded, g_padded), (bucketed, g_bucketed) = results
    assert bucketed["train/tokens"] == padded["train/tokens"]
    assert bucketed["train/loss"] == pytest.approx(padded["train/loss"], rel=1e-5)
    for a, b in zip(g_padded, g_bucketed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_sft_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path) -> None:
    def cfg(out: str, **extra) -> SFTConfig:
        return SFTConfig(
            env="ToolGym/Lookup-v0", mixture=["ToolGym/Calc-v0@pythonic"], played_episodes=0.5, expert_noise=0.2,
            out_dir=str(tmp_path / out), include_system_prompt=False, num_tasks=20, tokenizer_tasks=40, vocab_size=360,
            model={"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "max_positions": 512}, max_observation_tokens=48,
            steps=6, batch_size=4, eval_every=3, eval_episodes=2, max_new_tokens=12, lr_schedule="cosine", warmup_steps=2,
            tensorboard=False, progress=False, threads=1, **extra,
        )

    straight = SFTTrainer(cfg("a"))
    straight.train()
    first = SFTTrainer(cfg("b", save_every=2, keep_checkpoints=1))
    assert first.train(steps=4)["steps"] == 4
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step_000004"]
    resumed = SFTTrainer(cfg("b", save_every=2, keep_checkpoints=1), resume="auto")
    assert resumed.step == 4 and resumed.last_eval == first.last_eval
    summary = resumed.train()
    assert summary["steps"] == 6 and summary["best_success"] == max(straight.best, straight.last_eval["eval/success"])
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    rows = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    straight_rows = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    assert [r["train/loss"] for r in rows] == [r["train/loss"] for r in straight_rows]
    twice = SFTTrainer(cfg("c"))  # one trainer, two train() calls: the second continues the log
    twice.train(steps=3)
    twice.train()
    rows = list(csv.DictReader((tmp_path / "c" / "metrics.csv").open()))
    assert [r["train/loss"] for r in rows] == [r["train/loss"] for r in straight_rows]


def test_a_sequence_longer_than_the_context_is_a_one_line_error(tmp_path, capsys) -> None:
    """Expert episodes longer than a from-scratch model's context fail with what to change, not
    with an index error inside the position embedding."""
    argv = ["sft", "--set", "env=ToolGym/Lookup-v0", "--set", "include_system_prompt=false", "--set", "num_tasks=20",
            "--set", "tokenizer_tasks=20", "--set", "vocab_size=300", "--set", "steps=1", "--set", "batch_size=2",
            "--set", "eval_every=0", "--set", "tensorboard=false", "--set", f"out_dir={tmp_path}", "--quiet",
            "--set", "model={d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, max_positions: 32}"]
    assert train_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err  # (transformers' own tokenizer warning may come before the error line)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: A training sequence of ") and "longer than the model's context of 32 positions" in last
    assert "model.max_positions" in last


def test_skip_tasks_gives_the_rl_trainer_a_window_disjoint_from_the_sfts_tasks(sft_checkpoint, tmp_path) -> None:
    """``num_tasks=N`` for the SFT and ``skip_tasks=N`` for RL split the training tasks in two, so
    that RL's training success is not read on tasks the SFT policy has memorised."""
    from baselines.train.envs import make_env, task_ids

    env = make_env("ToolGym/Lookup-v0", "train", {})
    every = task_ids(env)
    assert task_ids(env, 20) == every[:20] and task_ids(env, 20, skip=20) == every[20:40]
    assert task_ids(env, None, skip=len(every) - 1) == every[-1:]
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, num_tasks=None, skip_tasks=20))
    assert trainer.train_ids == every[20:] and not set(trainer.train_ids) & set(every[:20])
    with pytest.raises(ValueError, match=f"^skip_tasks={len(every)} leaves no task: the env's task set has {len(every)}"):
        task_ids(env, skip=len(every))
    with pytest.raises(ValueError, match="skip_tasks must be ≥ 0, got -1"):
        SFTConfig(skip_tasks=-1)


def test_sft_resume_from_a_directory_that_is_no_checkpoint_says_so(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="is not an SFT checkpoint .*expected a directory like"):
        SFTTrainer(SFTConfig(out_dir=str(tmp_path), progress=False), resume=str(tmp_path))


@pytest.mark.parametrize(("source", "message"), [("ToolGym/Nope-v0", "not a registered env id"),
                                                 ("ToolGym/Calc-v0@yaml", "unknown action format 'yaml'")])
def test_a_bad_mixture_source_is_named_in_one_line(source, message) -> None:
    with pytest.raises(ValueError, match=message) as err:
        SFTConfig(mixture=[source])
    assert source in str(err.value) and "\n" not in str(err.value)


def test_rl_with_every_supervision_trains_and_logs_namespaced_metrics(sft_checkpoint, tmp_path) -> None:
    cfg = rl_config(sft_checkpoint, tmp_path, supervision=SupervisionConfig(use=ALL, interleave_every=2, interleave_window=2,
                                                                                 interleave_steps=1, interleave_batch=4, sft_mix_batch=4))
    trainer = RLTrainer(cfg)
    before = params(trainer.model)
    summary = trainer.train()
    assert summary["steps"] == 2 and summary["stopped"] is None
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    last = trainer.history[-1]
    for key in ("train/success", "train/loss", "train/pg_loss", "train/control_kl", "train/spike_penalty",
                "train/sft_mix_nll", "train/clip_frac", "train/ratio_max", "train/grad_norm", "train/grad_norm_control",
                "train/zero_adv_group_frac", "train/entropy", "train/kl_ref", "train/turns", "train/gen_tokens",
                "train/format_error_rate", "eval/success", "diag/probe/illegal_mean/tool_call",
                "diag/probe/leak_max/im_end", "diag/probe/hit_mean/tool_call", "diag/probe/after_open_eot",
                "diag/onpolicy/illegal_total", "diag/spike_ratio", "diag/spike_z", "train/skipped_updates", "train/approx_kl_after_update", "diag/collapse"):
        assert key in last, key
    assert all(math.isfinite(last[k]) for k in ("train/loss", "train/control_kl", "train/spike_penalty", "train/sft_mix_nll"))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert json.loads((tmp_path / "model" / AGENT_SETTINGS_FILE).read_text()) == {
        "protocol": "text", "system": "none", "max_new_tokens": 24, "max_observation_tokens": 32}


def test_offpolicy_expert_puts_exactly_one_expert_in_each_group(sft_checkpoint, tmp_path) -> None:
    cfg = rl_config(sft_checkpoint, tmp_path, supervision=SupervisionConfig(use=["offpolicy_expert"]))
    trainer = RLTrainer(cfg)
    tasks = trainer.train_ids[:2]
    episodes = trainer.collect(tasks)
    for g, task in enumerate(tasks):
        group = [e for e in episodes if e.group == g]
        assert len(group) == cfg.group_size and {e.task_id for e in group} == {task}
        experts = [e for e in group if e.is_expert]
        assert len(experts) == 1
        assert experts[0].actions == trainer.bank.get(task).actions and experts[0].reward == 1.0


def test_offpolicy_expert_tokens_use_policy_shaping_not_the_ratio(sft_checkpoint, tmp_path) -> None:
    cfg = rl_config(sft_checkpoint, tmp_path, supervision=SupervisionConfig(use=["offpolicy_expert"], expert_gamma=0.1))
    trainer = RLTrainer(cfg)
    prepared, _ = trainer.prepare(trainer.collect(trainer.train_ids[:2]))
    b = prepared.batch
    assert int(b.is_expert.sum()) == 2
    logits = trainer.policy.logits(b.input_ids, b.attention_mask).detach()
    loss, stats = rl_loss(logits, prepared, cfg, trainer.control_ids)
    logp = torch.log_softmax(logits, -1).gather(-1, b.targets[..., None]).squeeze(-1)
    adv = b.advantages[:, None]
    ratio = torch.exp(logp - prepared.old_logp)
    plain = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    shaped = -adv * logp.exp() / (logp.exp() + 0.1)
    expected = (torch.where(b.is_expert[:, None], shaped, plain) * b.loss_mask).sum() / b.loss_mask.sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    prepared.old_logp[b.is_expert] = -50.0  # the expert's (meaningless) old log-probs play no part
    again, _ = rl_loss(logits, prepared, cfg, trainer.control_ids)
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)


def test_hint_is_shown_while_sampling_but_never_enters_the_loss(sft_checkpoint, tmp_path) -> None:
    cfg = rl_config(sft_checkpoint, tmp_path, supervision=SupervisionConfig(use=["hint"], hint_per_group=2))
    trainer = RLTrainer(cfg)
    task = trainer.train_ids[0]
    episodes = trainer.collect([task])
    hinted = [e for e in episodes if e.hint is not None]
    assert len(hinted) == 2 and all("Hint:" in e.hint for e in hinted)
    traj = trainer.bank.get(task)
    clean_prompt = trainer.chat.prompt_ids(None, traj.user)
    hint_ids = trainer.chat.encode(hinted[0].hint)
    for ep in episodes:
        assert ep.input_ids[: ep.prompt_len] == clean_prompt
        text = trainer.tokenizer.decode(ep.input_ids)
        assert "Hint:" not in text
    for ep in hinted:
        assert ep.sample_prompt_ids != clean_prompt
        sample_text = trainer.tokenizer.decode(ep.sample_prompt_ids)
        assert ep.hint in sample_text
    prepared, _ = trainer.prepare(episodes)
    rows = prepared.batch.input_ids.tolist()
    for row in rows:  # the hint's token sequence appears in no training row
        assert not any(row[i : i + len(hint_ids)] == hint_ids for i in range(len(row) - len(hint_ids) + 1))


def test_resume_reproduces_the_next_steps_exactly(sft_checkpoint, tmp_path) -> None:
    sup = SupervisionConfig(use=["offpolicy_expert", "hint", "sft_mix", "interleaved_sft"], interleave_every=3,
                            interleave_window=2, interleave_steps=1, interleave_batch=4, sft_mix_batch=4)
    straight = RLTrainer(rl_config(sft_checkpoint, tmp_path / "a", steps=4, supervision=sup))
    straight.train()
    first = RLTrainer(rl_config(sft_checkpoint, tmp_path / "b", steps=2, save_every=2, supervision=sup))
    first.train()
    resumed = RLTrainer(rl_config(sft_checkpoint, tmp_path / "b", steps=4, save_every=2, supervision=sup), resume="auto")
    assert resumed.step == 2
    resumed.train()
    for key in ("train/loss", "train/pg_loss", "train/sft_mix_nll", "train/success", "train/grad_norm"):
        assert [m[key] for m in resumed.history[2:]] == [m[key] for m in straight.history[2:]], key
    assert resumed.history[2]["train/interleaved_sft_nll"] == straight.history[2]["train/interleaved_sft_nll"]
    rows = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]


def test_non_finite_values_stop_training_with_a_clear_message(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path))
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="Non-finite .* at step 1"):
        trainer.train_step()


def test_interleaved_sft_trains_on_failed_tasks_only(sft_checkpoint, tmp_path) -> None:
    trainer = RLTrainer(rl_config(sft_checkpoint, tmp_path, supervision=SupervisionConfig(use=["interleaved_sft"], interleave_steps=2, interleave_batch=4)))
    a, b = trainer.train_ids[:2]
    before = params(trainer.model)
    stats = trainer.interleaved_sft([{a: 0.0, b: 1.0}, {a: 0.0}])
    assert stats["train/interleaved_sft_tasks"] == 1
    assert any(not torch.equal(x, y) for x, y in zip(before, trainer.model.parameters(), strict=True))


def test_config_validation_quotes_the_bad_value(tmp_path) -> None:
    with pytest.raises(ValueError, match="Unknown supervision \\['sft_mixx'\\]"):
        SupervisionConfig(use=["sft_mixx"])
    with pytest.raises(ValueError, match="clip_eps must be in \\(0, 1\\), got 1.5"):
        RLConfig(init="x", clip_eps=1.5)
    with pytest.raises(ValueError, match="Did you mean 'lr'"):
        load_config(RLConfig, overrides=["lrr=1"], init="x")
    path = tmp_path / "c.yaml"
    path.write_text("lr: 2.0e-3\nsupervision: {use: [sft_mix], sft_mix_coef: 0.1}\n")
    cfg = load_config(RLConfig, path, ["supervision.control_clip_eps=0.1"], init="x", steps=7)
    assert (cfg.lr, cfg.steps, cfg.supervision.use, cfg.supervision.sft_mix_coef) == (2e-3, 7, ["sft_mix"], 0.1)
    assert cfg.supervision.control_clip_eps == 0.1


def test_cli_parses_combined_supervision_and_named_flags_beat_set(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import baselines.train.rl as rl_module

    seen: list[RLConfig] = []

    class Recorder:
        def __init__(self, config: RLConfig, resume: str | None = None) -> None:
            seen.append(config)

        def train(self) -> dict:
            return {"steps": 0}

        def close(self) -> None:
            closed.append(True)

    closed: list[bool] = []
    monkeypatch.setattr(rl_module, "RLTrainer", Recorder)
    argv = ["rl", "--env", "ToolGym/Search-v0", "--init", "m", "--supervision", "sft_mix,control_kl",
            "--set", "steps=5", "--steps", "7", "--set", "supervision.sft_mix_coef=0.1", "--quiet"]
    assert train_cli.main(argv) == 0
    (config,) = seen
    assert config.supervision.use == ["sft_mix", "control_kl"] and config.supervision.sft_mix_coef == 0.1
    assert (config.env, config.init, config.steps, config.progress) == ("ToolGym/Search-v0", "m", 7, False)
    assert '"steps": 0' in capsys.readouterr().out
    assert closed == [True]  # the CLI ends Ray actors and the process group itself
    from baselines.train.config import parse_supervision

    assert parse_supervision("none") == []


def test_control_grad_norm_every_skips_the_extra_backward_but_not_the_update(sft_checkpoint, tmp_path) -> None:
    """The diagnostic's second backward pass can be thinned out; the update itself is unchanged."""
    runs = {}
    for every in (1, 2):
        cfg = rl_config(sft_checkpoint, tmp_path / f"every{every}", eval_every=0, control_grad_norm_every=every)
        trainer = RLTrainer(cfg)
        trainer.train()
        runs[every] = (trainer.history, params(trainer.model))
    (hist1, weights1), (hist2, weights2) = runs[1], runs[2]
    assert all(math.isfinite(h["train/grad_norm_control"]) for h in hist1)
    assert math.isnan(hist2[0]["train/grad_norm_control"]) and math.isfinite(hist2[1]["train/grad_norm_control"])  # steps 1, 2
    assert all(torch.equal(a, b) for a, b in zip(weights1, weights2, strict=True))
    with pytest.raises(ValueError, match="control_grad_norm_every"):
        rl_config(sft_checkpoint, tmp_path, control_grad_norm_every=-1)


def test_the_base_mixture_config_names_every_generated_env_in_two_formats() -> None:
    from baselines.train.config import parse_source

    cfg = load_config(SFTConfig, "baselines/train/configs/base_mixture.yaml")
    sources = [(cfg.env, None)] + [parse_source(s) for s in cfg.mixture]
    envs = {env for env, _ in sources}
    assert envs == {f"ToolGym/{n}-v0" for n in ("Lookup", "Calc", "Search", "SQL", "Multi", "Booking", "Code")}
    for env in envs:
        assert len({fmt or "hermes" for e, fmt in sources if e == env}) == 2, env
    assert cfg.played_episodes > 0 and cfg.expert_noise > 0 and cfg.model.arch == "llama"


SHIPPED_CONFIGS = sorted((Path(__file__).parents[2] / "baselines" / "train" / "configs").glob("*.yaml"))


def test_the_shipped_configs_are_found() -> None:
    assert len(SHIPPED_CONFIGS) >= 7  # the parametrised test below is not silently empty


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_with_its_trainer(path: Path) -> None:
    kind = RLConfig if path.stem.endswith("_rl") else SFTConfig
    cfg = load_config(kind, path, [], **({"init": "runs/x"} if kind is RLConfig else {}))
    assert cfg.env.startswith("ToolGym/") and cfg.env in gym.registry, cfg.env
    if path.name.endswith("_from_base.yaml"):  # SFT from the base model, with the collapse study's format
        base = load_config(SFTConfig, "baselines/train/configs/base_mixture.yaml")
        committed = Path(cfg.init)
        assert (committed / "model.safetensors").is_file() and cfg.include_system_prompt == base.include_system_prompt
        assert load_config(SFTConfig, committed / "train_config.yaml").model == base.model  # trained by base_mixture.yaml
