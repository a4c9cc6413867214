"""One place per supervision term: config fields, stats and their DDP normalisation are declared
in baselines/train/terms.py, and the CLI help, the study's arms and the DDP reduction derive from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

from baselines.train import multiprocess
from baselines.train.__main__ import app
from baselines.train.config import SUPERVISIONS, SupervisionConfig
from baselines.train.terms import BASE, TERMS, Term, stats_normalised_by
from benchmarks.collapse.settings import ARMS


def test_every_supervision_config_field_belongs_to_exactly_one_term() -> None:
    declared = [f for t in TERMS for f in t.config_fields]
    assert len(declared) == len(set(declared))
    fields = {f.name for f in dataclasses.fields(SupervisionConfig)} - {"use"}
    assert set(declared) == fields


def test_names_help_arms_and_ddp_sets_derive_from_the_terms() -> None:
    names = tuple(t.name for t in TERMS)
    assert SUPERVISIONS == names and ARMS == ("none", *names)
    help_text = CliRunner().invoke(app, ["rl", "--help"], env={"COLUMNS": "2000"}).output
    assert all(name in help_text for name in names)
    assert multiprocess.TOKEN_STATS == stats_normalised_by("tokens")
    assert multiprocess.CONTROL_KL_STATS == {"control_kl"} and multiprocess.MAX_STATS == {"ratio_max"}
    with pytest.raises(ValueError, match="unknown normalisation"):
        Term("x", "y", stats={"s": "median"})


def test_every_statistic_rl_loss_logs_has_a_declared_normalisation(sft_checkpoint, tmp_path) -> None:
    """A new statistic left out of the declarations would be averaged with the wrong weights under DDP."""
    from baselines.train.common import batch_logits
    from baselines.train.rl import RLTrainer, rl_loss
    from tests.train.test_trainers import ALL, rl_config

    sup = SupervisionConfig(use=[*(n for n in ALL if n != "interleaved_sft"), "tis", "mis"], sft_mix_batch=2)
    cfg = rl_config(sft_checkpoint, tmp_path, eval_every=0, kl_coef=0.1, entropy_coef=0.01, supervision=sup,
                    sampler_dtype="bfloat16")
    trainer = RLTrainer(cfg)
    prepared, _ = trainer.prepare(trainer.collect(trainer.train_ids[:1]))
    sft_batch = trainer.sft_mix_batch([])
    with torch.no_grad():
        logits = batch_logits(trainer.model, prepared.batch, cfg.temperature)
        ref = batch_logits(trainer.ref_model, prepared.batch, cfg.temperature)
        sft_logits = batch_logits(trainer.model, sft_batch, cfg.temperature)
    _, stats = rl_loss(logits, prepared, cfg, trainer.control_ids, ref_logits=ref, sft_logits=sft_logits, sft_batch=sft_batch)
    declared = {name for t in (BASE, *TERMS) for name in t.stats}
    assert set(stats) | {"loss", "grad_norm", "grad_norm_control"} <= declared


def test_sft_mix_positions_selects_the_part_of_the_nll_the_term_trains() -> None:
    """``sft_mix`` (and ``sft_only``) train the NLL part named by ``sft_mix_positions``; an unknown
    name is a one-line config error."""
    from types import SimpleNamespace

    from baselines.train.supervision import sft_nll

    sft_mix = next(t for t in TERMS if t.name == "sft_mix")
    sft_only = next(t for t in TERMS if t.name == "sft_only")
    control_ids = torch.tensor([0, 1])
    targets = torch.tensor([[0, 4, 5, 1], [3, 1, 6, 7]])
    mask = torch.ones(2, 4)
    logits = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))
    for positions in ("all", "control", "content"):
        for term, use in ((sft_mix, ["sft_mix"]), (sft_only, ["sft_only"])):
            sup = SupervisionConfig(use=use, sft_mix_coef=0.5, sft_mix_positions=positions)
            control_mask = torch.isin(targets, control_ids)
            ctx = SimpleNamespace(cfg=SimpleNamespace(supervision=sup), sft_logits=logits,
                                  sft_batch=SimpleNamespace(targets=targets, loss_mask=mask, control_mask=control_mask))
            added, stats = term.loss(ctx)
            expected = sft_nll(logits, targets, mask, control_mask, positions)
            assert torch.allclose(added, 0.5 * expected) and torch.allclose(stats["sft_mix_nll"], expected)
    with pytest.raises(ValueError, match="sft_mix_positions must be one of \\['all', 'control', 'content'\\], got 'tags'"):
        SupervisionConfig(sft_mix_positions="tags")
