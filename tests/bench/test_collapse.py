"""The collapse study's pipeline (``python -m benchmarks.collapse``): runner, resumability, report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import gymnasium as gym
import pytest

from toolgym.core.formats import RESPONSE_CLOSE, RESPONSE_OPEN

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from benchmarks.collapse.__main__ import main  # noqa: E402
from benchmarks.collapse.ood import (  # noqa: E402
    ShiftedPresentation,
    ShiftedToolOutputs,
    shift_prompt,
    shift_tool_output,
)
from benchmarks.collapse.report import main_setting, mean_ci, run_record, start_line  # noqa: E402
from benchmarks.collapse.runner import write_manifest  # noqa: E402
from benchmarks.collapse.settings import RunSpec, arm_supervision  # noqa: E402

ARMS = ["none", "interleaved_sft"]  # offpolicy_expert etc. are covered by tests/train


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One ``--quick`` study (3 arms × 2 seeds), run once for the module."""
    root = tmp_path_factory.mktemp("collapse")
    args = ["run", "--quick", "--configs", ",".join(ARMS), "--work-dir", str(root / "work"), "--out", str(root / "out")]
    assert main(args) == 0
    return {"root": root, "args": args}


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_quick_study_writes_every_step_of_every_run(study: dict) -> None:
    out = study["root"] / "out"
    runs = _rows(out / "runs.csv")
    assert sorted((r["arm"], r["seed"]) for r in runs) == sorted((a, str(s)) for a in ARMS for s in (0, 1))
    for r in runs:
        assert 0.0 <= float(r["final_id_success"]) <= 1.0
        assert 0.0 <= float(r["final_ood_success"]) <= 1.0
        assert 0.0 <= float(r["final_ood_tool_success"]) <= 1.0
        assert int(r["steps"]) == 3
        assert 0.0 < float(r["run_cpu_s"]) <= float(r["run_wall_s"]) * 4  # the run's own CPU time, recorded
    start = json.loads((out / "start_eval.json").read_text())
    assert {"final_id_success", "final_ood_success", "final_ood_tool_success"} <= set(start)
    steps = _rows(out / "steps.csv")
    assert len(steps) == 4 * 3
    assert {"train/success", "diag/probe/illegal_total", "diag/collapse", "arm", "seed", "lr"} <= set(steps[0])
    by_run = {(r["run"], r["step"]) for r in steps}
    assert len(by_run) == len(steps)  # no duplicated step rows
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["env"] == "ToolGym/Lookup-v0" and manifest["quick"] is True
    assert any("--quick" in c for c in manifest["commands"])


def test_manifest_and_report_name_the_given_start_not_the_preset_sft_config(tmp_path: Path) -> None:
    common = {"env_id": "ToolGym/Lookup-v0", "init": "runs/x/model", "shared": [], "quick": False, "command": "c",
              "work_dir": tmp_path / "work", "specs": [RunSpec("none", 0, 5e-4)]}
    (tmp_path / "trained").mkdir()
    (tmp_path / "given").mkdir()
    write_manifest(tmp_path / "trained", **common)
    trained = json.loads((tmp_path / "trained" / "manifest.json").read_text())
    assert trained["sft_config"] == "baselines/train/configs/lookup_sft.yaml"
    assert start_line(trained) == "* SFT config: `baselines/train/configs/lookup_sft.yaml`."
    write_manifest(tmp_path / "given", **common, sft_given=True)
    given = json.loads((tmp_path / "given" / "manifest.json").read_text())
    assert given["sft_config"] is None and given["sft_checkpoint"] == "runs/x/model"
    assert start_line(given) == "* Start: the checkpoint `runs/x/model`, given with `--sft` (not trained by this study)."


def test_rerun_skips_finished_runs(study: dict, capsys: pytest.CaptureFixture[str]) -> None:
    summary = next((study["root"] / "work" / "runs").glob("*/summary.json"))
    before = summary.stat().st_mtime_ns
    assert main(study["args"]) == 0
    assert "4 of 4 runs already done; running 0" in capsys.readouterr().out
    assert summary.stat().st_mtime_ns == before


def test_rerun_leaves_a_run_another_process_is_training_to_it(study: dict, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    summary = sorted((study["root"] / "work" / "runs").glob("*/summary.json"))[0]
    saved = summary.read_text()
    summary.unlink()  # the run looks unfinished ...
    holder = subprocess.Popen(  # ... and another process holds its folder
        [sys.executable, "-c", "import sys, time\nfrom baselines.procs import claim_dir\nclaim_dir(sys.argv[1])\n"
         "print('held', flush=True)\ntime.sleep(120)", str(summary.parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(study["args"]) == 0
        out = capsys.readouterr().out
        assert "3 of 4 runs already done; running 1" in out
        assert f"skipped, being trained by another process: {summary.parent.name} (pid {holder.pid})" in out
        assert not summary.exists()  # not trained twice
    finally:
        holder.kill()
        holder.wait()
        summary.write_text(saved)


def test_first_seed_selects_later_seeds_of_the_same_setting(study: dict, capsys: pytest.CaptureFixture[str]) -> None:
    # the quick study ran seeds 0 and 1: starting at seed 1 with one seed finds those runs done
    assert main([*study["args"], "--first-seed", "1", "--seeds", "1"]) == 0
    assert "2 of 2 runs already done; running 0" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*study["args"], "--first-seed", "-1"])


def test_rerun_backfills_an_evaluation_variant_a_run_lacks(study: dict, capsys: pytest.CaptureFixture[str]) -> None:
    summary_path = next((study["root"] / "work" / "runs").glob("*/summary.json"))
    summary = json.loads(summary_path.read_text())
    expected = summary.pop("final_ood_tool_success")
    summary.pop("final_ood_tool_format_error_rate")
    summary_path.write_text(json.dumps(summary))
    assert main(study["args"]) == 0
    assert f"backfilled ood_tool evaluation of {summary_path.parent.name}" in capsys.readouterr().out
    assert json.loads(summary_path.read_text())["final_ood_tool_success"] == expected  # same seeds: same result


def test_report_has_tables_and_plots(study: dict) -> None:
    out = study["root"] / "out"
    assert main(["report", "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    for arm in ARMS:
        assert f"| `{arm}` | 2 |" in text
    assert "python -m benchmarks.collapse run --quick" in text
    for png in ("success.png", "control_tokens.png"):
        assert (out / png).stat().st_size > 5_000


def test_controls_table_counts_and_tests_against_the_reference(study: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.collapse.controls import fisher_p, records
    from benchmarks.collapse.controls import main as controls_main

    out = study["root"] / "out"
    groups = records(out)
    assert sorted(arm for arm, _ in groups) == sorted(ARMS) and all(len(r) == 2 for r in groups.values())
    assert controls_main(["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| none |" in text and "| interleaved_sft |" in text and "Mean training success per step" in text
    assert fisher_p(0, 5, 5, 5) == pytest.approx(0.00794, abs=1e-4)  # the first study's sft_mix vs none
    assert fisher_p(2, 5, 5, 5) == pytest.approx(0.1667, abs=1e-3)


def test_unknown_arm_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--quick", "--configs", "none,sft_mixx"]) == 1
    assert "sft_mixx" in capsys.readouterr().err
    assert arm_supervision("none") == []
    assert arm_supervision("sft_mix+control_kl") == ["sft_mix", "control_kl"]


def test_run_record_lead_time_and_ci() -> None:
    rows = [{"step": str(i), "train/success": str(s), "train/format_error_rate": "0.1"} for i, s in enumerate([0.5, 0.6, 0.1], 1)]
    summary = {"run": "r", "arm": "none", "lr": "0.002", "kl_coef": "0", "seed": "0", "collapse_step": "3",
               "first_spike_step": "2", "final_id_success": "0.25", "final_ood_success": "0.5", "run_wall_s": "1"}
    rec = run_record(summary, rows)
    assert rec["best"] == 0.6 and rec["collapse"] == 3 and rec["spike"] == 2 and rec["lead"] == 1
    assert rec["final"] == pytest.approx(0.4)
    assert rec["updates"] is None and rec["updates_before_collapse"] is None  # a log without update counts
    for row, (updates, skipped) in zip(rows, [("8", "0"), ("8", "5"), ("8", "")], strict=True):
        row.update({"train/updates": updates, "train/skipped_updates": skipped})
    rec = run_record(summary, rows)
    assert (rec["updates"], rec["updates_before_collapse"]) == (19, 11)  # 8 + 3 + 8; before step 3: 8 + 3
    assert run_record({**summary, "collapse_step": ""}, rows)["updates_before_collapse"] is None
    m, h = mean_ci([0.0, 1.0])
    assert m == 0.5 and h == pytest.approx(6.353, abs=1e-3)  # t(0.975, 1) * 0.7071 / sqrt(2)
    assert math.isnan(mean_ci([0.3])[1])
    groups = {("none", 2e-3, 0.0): [], ("sft_mix", 2e-3, 0.0): [], ("none", 1e-3, 0.0): []}
    assert main_setting(groups) == (2e-3, 0.0)
    assert RunSpec("none", 1, 2e-3).name == "none_lr0.002_kl0_s1"


def test_shifted_presentation_changes_only_what_the_policy_reads() -> None:
    assert shift_tool_output(RESPONSE_OPEN + "\nK5\n" + RESPONSE_CLOSE) == RESPONSE_OPEN + '\n{"result": "K5"}\n' + RESPONSE_CLOSE
    assert shift_tool_output("Error [bad_json]: ...") == "Error [bad_json]: ..."
    plain = gym.make("ToolGym/Lookup-v0", split="dev")
    shifted = ShiftedPresentation(gym.make("ToolGym/Lookup-v0", split="dev"))
    obs_p, info_p = plain.reset(seed=3)
    obs_s, info_s = shifted.reset(seed=3)
    assert info_s["task_prompt"] == shift_prompt(info_p["task_prompt"]) and obs_s.endswith(info_s["task_prompt"])
    oracle = plain.unwrapped.make_oracle()
    oracle.reset()
    action = oracle.act(obs_p, info_p)
    o1, r1, t1, _, _ = plain.step(action)
    o2, r2, t2, _, _ = shifted.step(action)
    assert (r1, t1) == (r2, t2) and o2 == shift_tool_output(o1) and o1 != o2


def test_shifted_tool_outputs_keep_the_prompt() -> None:
    plain = gym.make("ToolGym/Lookup-v0", split="dev")
    shifted = ShiftedToolOutputs(gym.make("ToolGym/Lookup-v0", split="dev"))
    obs_p, info_p = plain.reset(seed=3)
    obs_s, info_s = shifted.reset(seed=3)
    assert (obs_s, info_s["task_prompt"]) == (obs_p, info_p["task_prompt"])
    oracle = plain.unwrapped.make_oracle()
    oracle.reset()
    action = oracle.act(obs_p, info_p)
    assert shifted.step(action)[0] == shift_tool_output(plain.step(action)[0])


def test_run_study_reports_rl_steps_done_and_in_all(study: dict, tmp_path) -> None:
    from benchmarks.collapse.runner import run_study

    calls: list[tuple[int, int]] = []
    run_study(
        [RunSpec("none", 7, 2e-3, 0.0)], env_id="ToolGym/Lookup-v0", work_dir=study["root"] / "work",
        out_dir=tmp_path / "out", quick=True, on_steps=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (0, 3)  # nothing logged yet; one run of 3 quick steps to do
    assert calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_run_study_rejects_zero_threads_before_any_work(tmp_path) -> None:
    from benchmarks.collapse.runner import run_study

    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        run_study([RunSpec("none", 0, 2e-3, 0.0)], env_id="ToolGym/Lookup-v0", work_dir=tmp_path / "w",
                  out_dir=tmp_path / "o", quick=True, threads=0)
    assert not (tmp_path / "w").exists()


def test_report_without_results_is_a_one_line_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path} has no steps.csv/runs.csv; run `python -m benchmarks.collapse run` first."]


@pytest.mark.parametrize(("env_id", "turn_cap"), [("ToolGym/Calc-v0", 64), ("ToolGym/SQL-v0", 128)])
def test_the_base_model_presets_load_their_configs_and_are_env_choices(env_id: str, turn_cap: int) -> None:
    from baselines.train.config import RLConfig, SFTConfig, load_config
    from benchmarks.collapse.__main__ import build_parser
    from benchmarks.collapse.runner import preset_for

    preset = preset_for(env_id)
    sft = load_config(SFTConfig, preset.sft_config, list(preset.sft_overrides))
    rl = load_config(RLConfig, preset.rl_config, list(preset.rl_overrides), init="unused")
    assert sft.env == rl.env == env_id and Path(sft.init, "model.safetensors").is_file()
    assert (preset.lr, preset.steps, rl.supervision.interleave_every, rl.max_new_tokens) == (5e-4, 60, 5, turn_cap)
    args = build_parser().parse_args(["run", "--env", env_id, "--quick"])
    assert args.env == env_id


def test_steps_logged_counts_metric_rows_and_target_steps_follow_overrides(tmp_path) -> None:
    from benchmarks.collapse.runner import _steps_logged, _target_steps, preset_for

    assert _steps_logged(tmp_path) == 0
    (tmp_path / "metrics.csv").write_text("step,train/success\n1,0.5\n2,0.4\n")
    assert _steps_logged(tmp_path) == 2
    preset = preset_for("ToolGym/Lookup-v0")
    assert _target_steps(preset, ["steps=3", "lr=1e-3", "steps=7"]) == 7
    assert _target_steps(preset, []) > 0


def test_starting_policy_reports_play_and_breadth(study: dict, tmp_path) -> None:
    from benchmarks.collapse import starting_policy

    sft = next((study["root"] / "work").rglob("sft/model"))
    assert starting_policy.main(["--model", f"start={sft}", "--episodes", "8", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "starting_policy.json").read_text())["results"]["start"]
    vocab = json.loads((sft / "config.json").read_text())["vocab_size"]
    assert 0.0 < result["entropy"] < math.log(vocab)
    assert 0.0 < result["content_p"] <= 1.0 and result["illegal_total"] >= 0.0
    assert result["id/success_ci_low"] <= result["id/success"] <= result["id/success_ci_high"]
    assert f"| start | `{sft}` |" in (tmp_path / "starting_policy.md").read_text()


def test_starting_policy_names_a_bad_model_spec(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    from benchmarks.collapse import starting_policy

    with pytest.raises(SystemExit):
        starting_policy.main(["--model", f"x={tmp_path}"])
    assert "is not a model directory (no config.json)" in capsys.readouterr().err


def test_sampler_gap_grows_with_coarser_weights(study: dict, tmp_path) -> None:
    from benchmarks.collapse import sampler_gap

    sft = next((study["root"] / "work").rglob("sft/model"))
    small = ["--set", "prompts_per_step=2", "--set", "group_size=4", "--set", "max_new_tokens=16"]
    assert sampler_gap.main(["--init", str(sft), "--dtypes", "int8,int4", "--out", str(tmp_path), *small]) == 0
    rows = json.loads((tmp_path / "sampler_gap.json").read_text())["rows"]
    for row in rows.values():
        assert set(row) == set(sampler_gap.GAP_KEYS) and row["tokens"] > 0
        assert row["ratio_min"] <= 1.0 <= row["ratio_max"] and 0.0 <= row["outside_cap"] <= 1.0
        inside = 0.5 <= row["ratio_min"] and row["ratio_max"] <= 2.0
        assert not (inside and row["outside_cap"] > 0)
    assert 0 < rows["int8"]["logp_mismatch"] < rows["int4"]["logp_mismatch"]  # 7 levels a side against 127
    assert "| int4 |" in (tmp_path / "sampler_gap.md").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--dtypes", "float32"], "not low-precision samplers"),
    (["--dtypes", "fp8"], "not low-precision samplers"),
])
def test_sampler_gap_names_a_bad_dtype_or_model(study: dict, capsys: pytest.CaptureFixture[str], tmp_path,
                                               args: list[str], message: str) -> None:
    from benchmarks.collapse import sampler_gap

    sft = next((study["root"] / "work").rglob("sft/model"))
    with pytest.raises(SystemExit):
        sampler_gap.main(["--init", str(sft), *args])
    assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sampler_gap.main(["--init", str(tmp_path)])
    assert "not a model directory (no config.json)" in capsys.readouterr().err
