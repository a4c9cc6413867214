"""Long training work says what it is doing (issue 22 item 7)."""

from __future__ import annotations

import io

from tqdm import tqdm

from baselines.train.sft import _stage_reporter


def test_sft_setup_shows_each_stage_then_completes() -> None:
    out = io.StringIO()
    bar = tqdm(total=3, desc="sft setup", file=out, mininterval=0)
    stage = _stage_reporter(bar)
    stage("oracle trajectories of ToolGym/Lookup-v0")
    assert bar.n == 0 and "oracle trajectories" in bar.postfix
    stage("training a tokenizer, building the model")
    assert bar.n == 1 and "tokenizer" in bar.postfix
    stage("evaluation envs")
    stage(None)
    assert bar.n == 3 and bar.disable  # closed at 3/3
    assert "sft setup" in out.getvalue()

