"""Scoring of early-warning signals (benchmarks/collapse/warning.py) on hand-built runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from benchmarks.collapse import warning
from benchmarks.collapse.warning import Protocol, RunSignal, drop_step, evaluate_threshold, scores

P = Protocol(frac=0.5, patience=3, min_gain=0.15, window=3, min_lead=2, max_false_alarms=1.0, horizon=4, smooth=1)


def test_drop_step_is_collapse_after_learning_only() -> None:
    steps = list(range(1, 11))
    learned_then_broke = [0.3, 0.5, 0.7, 0.8, 0.8, 0.2, 0.1, 0.1, 0.1, 0.1]
    assert drop_step(learned_then_broke, steps, P) == 6
    never_learned = [0.3, 0.35, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]  # best only +0.05 over the start
    assert drop_step(never_learned, steps, P) is None
    assert drop_step(never_learned, steps, Protocol(patience=3, min_gain=0.0, smooth=1)) == 4
    recovered = [0.3, 0.8, 0.2, 0.2, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]  # 2 low steps < patience 3
    assert drop_step(recovered, steps, P) is None
    # learned: the first half of the same test, on its own (the phase table counts it per arm)
    assert warning.learned(learned_then_broke, P) and warning.learned(recovered, P)
    assert not warning.learned(never_learned, P) and not warning.learned([], P)
    smooth3 = Protocol(min_gain=0.15, smooth=3)
    assert not warning.learned([0.5, 0.5, 0.5, 0.8, 0.5, 0.5], smooth3)  # one lucky step: the 3-step mean rises 0.1
    assert warning.learned([0.5, 0.5, 0.5, 0.8, 0.7, 0.6], smooth3)  # (0.8 + 0.7 + 0.6) / 3 = 0.7: +0.2


def test_learning_is_judged_on_smoothed_success_so_one_lucky_step_is_not_learning() -> None:
    # a flat run at 0.5 with one noisy step at 0.8, then a break: version 2's single-step rule
    # calls it collapse after learning, the 3-step mean (best 0.6, +0.1 over the start) does not
    flat_then_broke = [0.5, 0.5, 0.5, 0.8, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
    steps = list(range(1, len(flat_then_broke) + 1))
    assert drop_step(flat_then_broke, steps, P) == 7
    assert drop_step(flat_then_broke, steps, Protocol(frac=0.5, patience=3, min_gain=0.15, smooth=3)) is None
    # a real rise survives the smoothing; the drop is still dated to the raw step it happened at
    rose_then_broke = [0.3, 0.3, 0.3, 0.6, 0.7, 0.8, 0.8, 0.8, 0.1, 0.1, 0.1]
    assert drop_step(rose_then_broke, steps, Protocol(frac=0.5, patience=3, min_gain=0.15, smooth=3)) == 9


def test_scores_are_log_ratios_to_the_recent_median_in_the_declared_direction() -> None:
    values = [1.0, 1.0, 1.0, 2.0, 0.5, math.nan, 1.0]
    up = scores(values, +1, 3)
    assert all(math.isnan(x) for x in up[:3])
    assert up[3] == pytest.approx(math.log(2.0), rel=1e-5)
    assert up[4] == pytest.approx(math.log(0.5), rel=1e-5)  # median of (1, 1, 2) is 1
    assert math.isnan(up[5])  # missing value
    assert math.isnan(up[6])  # a missing value in the window: no baseline
    down = scores(values, -1, 3)
    assert down[4] == pytest.approx(math.log(2.0), rel=1e-5)
    either = scores(values, 0, 3)
    assert either[3] == pytest.approx(either[4], rel=1e-5) == pytest.approx(math.log(2.0), rel=1e-5)


def test_recall_lead_and_false_alarms_count_exactly() -> None:
    steps = list(range(1, 11))
    nan3 = [math.nan] * 3
    warned = RunSignal(steps, nan3 + [0, 0, 1.0, 0, 0, 0, 0], drop=9)  # alarm at step 6: lead 3
    late = RunSignal(steps, nan3 + [0, 0, 0, 0, 1.0, 0, 0], drop=9)  # alarm at step 8: lead 1 < 2
    quiet = RunSignal(steps, nan3 + [1.0, 1.0, 0, 1.0, 0, 0, 0], drop=None)  # 3 alarm steps in 7 scored
    out = evaluate_threshold([warned, late, quiet], 0.5, P)
    assert out["recall"] == 0.5 and out["lead_mean"] == 3
    # scored outside the windows (steps 5-8 of the collapsing runs): quiet's 7 + step 4 of each
    assert out["false_alarms_per_100"] == pytest.approx(100 * 3 / 9)
    none = evaluate_threshold([warned, late, quiet], math.inf, P)
    assert none["recall"] == 0.0 and none["false_alarms_per_100"] == 0.0


def test_an_alarm_that_is_always_on_is_not_a_warning() -> None:
    """Version 1 of the scoring gave this recall 1 at one false alarm per run; now an alarm far
    ahead of the drop is a false alarm, every alarm step counts, and no threshold that fires
    all the time can stay within one false alarm per 100 steps."""
    steps = list(range(1, 41))
    always = [math.nan] * 3 + [5.0] * 37
    collapsing = RunSignal(steps, always, drop=35)  # window: steps 31-33
    healthy = RunSignal(steps, always, drop=None)
    out = evaluate_threshold([collapsing, healthy], 1.0, P)
    assert out["recall"] == 1.0  # it does fire inside the window...
    # ...but every one of its 27 + 37 alarm steps outside the windows is a false alarm
    assert out["false_alarms_per_100"] == pytest.approx(100.0)
    far = RunSignal(steps, [math.nan] * 3 + [0.0] * 5 + [5.0] + [0.0] * 31, drop=35)  # alarm at 9: lead 26
    assert evaluate_threshold([far], 1.0, P)["recall"] == 0.0


def _write_results(out: Path, runs: dict[str, tuple[list[float], list[float]]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "steps.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "step", "train/success", "diag/probe/illegal_total"])
        for run, (succ, sig) in runs.items():
            for i, (s, x) in enumerate(zip(succ, sig, strict=True), 1):
                w.writerow([run, i, s, x])
    with open(out / "runs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run"])
        for run in runs:
            w.writerow([run])


def test_cli_finds_a_signal_that_rises_before_the_drop(tmp_path: Path) -> None:
    learn = [0.3, 0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8]
    runs = {
        # the probe's illegal mass jumps 10x two steps before the drop, in both collapsing runs
        "a": (learn + [0.1] * 12, [0.01] * 6 + [0.1] * 14),
        "b": (learn + [0.1] * 12, [0.02] * 6 + [0.2] * 14),
        # a healthy run with a flat signal
        "c": ([0.5] * 20, [0.01] * 20),
    }
    _write_results(tmp_path, runs)
    assert warning.main(["--out", str(tmp_path), "--patience", "5", "--window", "3"]) == 0
    result = json.loads((tmp_path / "warning.json").read_text())
    assert result["drops"] == {"a": 9, "b": 9, "c": None}
    best = result["signals"]["illegal control mass (probe)"]["best"]
    assert best["recall"] == 1.0 and best["lead_mean"] == 2.0 and best["false_alarms_per_100"] == 0.0
    assert "illegal control mass (probe)" in (tmp_path / "warning.md").read_text()
    assert (tmp_path / "warning_roc.png").stat().st_size > 0


def test_held_out_runs_test_the_chosen_threshold_without_refitting(tmp_path: Path) -> None:
    learn = [0.3, 0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8]
    fit = {"a": (learn + [0.1] * 12, [0.01] * 6 + [0.1] * 14), "c": ([0.5] * 20, [0.01] * 20)}
    held = {
        "weak": (learn + [0.1] * 12, [0.01] * 6 + [0.03] * 14),  # a 3x rise: below the fitted 10x threshold
        "strong": (learn + [0.1] * 12, [0.01] * 6 + [1.0] * 14),  # a 100x rise: warned 2 steps ahead
        "noisy": ([0.5] * 20, [0.01, 0.01, 0.01, 0.01, 0.5] + [0.01] * 15),  # one false alarm
    }
    _write_results(tmp_path / "fit", fit)
    _write_results(tmp_path / "held", held)
    argv = ["--out", str(tmp_path / "scores"), "--runs", str(tmp_path / "fit"), "--held-out", str(tmp_path / "held"),
            "--patience", "5", "--window", "3"]
    assert warning.main(argv) == 0
    result = json.loads((tmp_path / "scores" / "warning.json").read_text())
    sig = result["signals"]["illegal control mass (probe)"]
    assert sig["best"]["theta"] == pytest.approx(math.log((0.1 + 1e-6) / (0.01 + 1e-6)))  # fitted on a and c only
    h = sig["held_out"]
    assert h["recall"] == 0.5 and h["lead_mean"] == 2.0
    # noisy's 17 scored steps (4-20, after the 3-step baseline); the collapsing runs' steps all lie in their windows
    assert h["false_alarms_per_100"] == pytest.approx(100 * 1 / 17)
    assert result["held_out_drops"] == {"held_weak": 9, "held_strong": 9, "held_noisy": None}
    assert "held-out recall" in (tmp_path / "scores" / "warning.md").read_text()
    assert warning.ranked_signals(result)[0] == "illegal control mass (probe)"
    assert (tmp_path / "scores" / "warning_runs.png").stat().st_size > 5_000
    # a run both scored and held out would test the threshold on the runs it was fitted to
    _write_results(tmp_path / "held_and_fit", {**held, "a": fit["a"]})
    with pytest.raises(SystemExit) as exit_info:
        warning.main(["--out", str(tmp_path / "s2"), "--runs", str(tmp_path / "fit"), "--held-out", str(tmp_path / "held_and_fit")])
    assert exit_info.value.code == 2


def test_cli_names_the_missing_results(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        warning.main(["--out", str(tmp_path)])
    assert exc.value.code == 2 and "benchmarks.collapse run" in capsys.readouterr().err


def test_the_stored_roc_curve_keeps_the_best_point_and_the_steps_of_the_full_curve() -> None:
    import random

    from benchmarks.collapse.warning import best_point, roc

    rng = random.Random(0)
    for _ in range(30):
        runs = []
        for _ in range(rng.randint(2, 5)):
            n = rng.randint(12, 40)
            steps = list(range(1, n + 1))
            drop = rng.choice([None, rng.randint(8, n)])
            runs.append(RunSignal(steps, [math.nan] * 3 + [round(rng.gauss(0, 1), 1) for _ in range(n - 3)], drop))
        thetas = sorted({z for r in runs for z in r.scores if not math.isnan(z)}, reverse=True)
        full = [evaluate_threshold(runs, t, P) for t in [math.inf, *thetas]]
        stored = roc(runs, P)

        def key(c: dict) -> tuple:
            return tuple(-1.0 if math.isnan(c[k]) else c[k] for k in ("theta", "recall", "false_alarms_per_100", "lead_mean"))

        assert key(best_point(stored, P)) == key(best_point(full, P))
        assert {key(c)[1] for c in stored} == {key(c)[1] for c in full}  # every recall level
        assert key(stored[0])[1:3] == key(full[0])[1:3] and key(stored[-1]) == key(full[-1])
        assert len(stored) <= len(full)


def test_phase_table_counts_collapses_after_learning_per_setting_with_intervals_and_fisher(tmp_path: Path) -> None:
    from benchmarks.collapse.phase import main as phase_main
    from benchmarks.collapse.phase import parse_setting, phase_table

    learn_then_break = [0.3] * 5 + [0.9] * 10 + [0.0] * 12
    learn_then_dip = [0.3] * 5 + [0.9] * 10 + [0.0] * 5 + [0.9] * 7
    never_learns = [0.3] * 27
    flat = [0.0] * 27
    _write_results(tmp_path / "a", {"r0": (learn_then_break, flat), "r1": (learn_then_break, flat),
                                    "r2": (learn_then_dip, flat)})
    _write_results(tmp_path / "b", {"r0": (never_learns, flat), "r1": (learn_then_dip, flat)})
    for d in ("a", "b"):  # phase reads the arm, seed and cost of each run from runs.csv
        runs = [f"r{i}" for i in range(3 if d == "a" else 2)]
        cpu = ",80" if d == "a" else ""  # b: a study that recorded only wall time
        (tmp_path / d / "runs.csv").write_text("run,arm,seed,final_id_success,run_wall_s" + (",run_cpu_s" if cpu else "")
                                               + "\n" + "".join(f"{r},none,{i},{0.5 * i},100{cpu}\n" for i, r in enumerate(runs)))
    rows = phase_table([("A", [tmp_path / "a"]), ("B", [tmp_path / "b"])], reference="B / none")
    a, b = rows
    assert (a["collapsed"], a["runs"], a["drops"], a["learned"]) == (2, 3, [16, 16, None], 3)
    assert (b["collapsed"], b["runs"], b["learned"]) == (0, 2, 1) and b["fisher_p_vs_reference"] == 1.0  # r0 never learns
    assert a["fisher_p_vs_reference"] == pytest.approx(0.4, abs=1e-9)  # 2/3 vs 0/2
    assert 0.0 < a["ci_low"] < 2 / 3 < a["ci_high"] < 1.0
    assert a["final_eval"] == [0.0, 0.5, 1.0] and a["final_eval_mean"] == 0.5
    assert (a["cpu_s_per_run"], a["cpu_s_measured"]) == (80, True)  # process CPU time where recorded
    assert (b["cpu_s_per_run"], b["cpu_s_measured"]) == (100, False)  # else wall time, marked † in the table
    assert 0.0 <= a["final_eval_ci"][0] < 0.5 < a["final_eval_ci"][1] <= 1.0
    # judged on the first 20 steps only, the low stretch is too short to count
    assert phase_table([("A", [tmp_path / "a"])], max_step=20)[0]["collapsed"] == 0
    assert parse_setting("x, y=p,q") == ("x, y", [Path("p"), Path("q")])
    with pytest.raises(ValueError, match="LABEL=DIR"):
        parse_setting("no-dirs=")
    with pytest.raises(ValueError, match="names no row"):
        phase_table([("A", [tmp_path / "a"])], reference="Z / none")
    assert phase_main(["--out", str(tmp_path / "o"), "--setting", f"A={tmp_path / 'a'}"]) == 0
    assert (tmp_path / "o" / "phase.png").stat().st_size > 5_000 and "| A / none | 3 | 3 | 2 |" in (tmp_path / "o" / "phase.md").read_text()
    two = phase_main(["--out", str(tmp_path / "o2"), "--setting", f"A={tmp_path / 'a'}", "--setting", f"B={tmp_path / 'b'}"])
    assert two == 0
    table = (tmp_path / "o2" / "phase.md").read_text()
    assert table.splitlines()[-2].endswith("| 80 |") and table.splitlines()[-1].endswith("| 100 † |")


def test_phase_refuses_a_run_that_two_directories_of_a_setting_both_hold(tmp_path: Path) -> None:
    """``run`` collects every finished run of its work dir, so two collections overlap; a run
    listed twice would count as two seeds."""
    from benchmarks.collapse.phase import phase_table

    broke = [0.3] * 5 + [0.9] * 10 + [0.0] * 12
    kept = [0.3] * 5 + [0.9] * 22
    flat = [0.0] * 27
    _write_results(tmp_path / "first", {"none_s0": (broke[:20], flat[:20])})  # collected while s0 ran
    _write_results(tmp_path / "later", {"none_s0": (broke, flat), "none_s1": (kept, flat)})
    _write_results(tmp_path / "other", {"none_s0": (kept, flat)})  # same name, another setting's run
    for d in ("first", "later", "other"):
        names = ["none_s0"] + (["none_s1"] if d == "later" else [])
        (tmp_path / d / "runs.csv").write_text("run,arm,seed\n" + "".join(f"{r},none,{r[-1]}\n" for r in names))
    with pytest.raises(ValueError, match=r"'none_s0' is in both .*first and .*later"):
        phase_table([("A", [tmp_path / "first", tmp_path / "later"])])
    with pytest.raises(ValueError, match="is in both"):
        phase_table([("A", [tmp_path / "later", tmp_path / "later"])])
    rows = phase_table([("A", [tmp_path / "later"]), ("B", [tmp_path / "other"])])
    assert [(r["runs"], r["collapsed"]) for r in rows] == [(2, 1), (1, 0)]
    assert phase_table([("A", [tmp_path / "later", tmp_path / "other"])])[0]["runs"] == 3  # different steps


def test_skip_idle_takes_steps_without_an_update_out_of_the_update_signals_baseline() -> None:
    """A saturated run: every other step is skipped (gradient norm exactly 0), the others have a
    gradient of about 1, and one real jump (×20) comes 3 steps before the drop."""
    rows = []
    for step in range(1, 41):
        skipped = step % 2 == 0 and step != 30
        norm = 0.0 if skipped else (20.0 if step == 31 else 1.0 + 0.01 * (step % 3))
        rows.append({"step": step, "train/success": 0.9 if step < 34 else 0.1, "train/updates": 4,
                     "train/skipped_updates": 4 if skipped else 0, "train/grad_norm": norm, "train/entropy": 0.5})
    by_run = {"r": rows}
    p = Protocol(frac=0.5, patience=3, min_gain=0.0, window=3, min_lead=2, horizon=4, smooth=1)
    drops = {"r": drop_step([r["train/success"] for r in rows], [r["step"] for r in rows], p)}
    assert drops["r"] == 34
    plain = warning._run_signals(by_run, drops, "train/grad_norm", +1, p)[0]
    assert evaluate_threshold([plain], math.log(5.0), p)["false_alarms_per_100"] > 30  # each real step jumps off the zeros
    skip = Protocol(**{**p.__dict__, "skip_idle": True})
    kept = warning._run_signals(by_run, drops, "train/grad_norm", +1, skip)[0]
    assert 2 not in kept.steps and 30 in kept.steps and len(kept.steps) == 21
    point = evaluate_threshold([kept], math.log(5.0), skip)
    assert (point["recall"], point["lead_mean"], point["false_alarms_per_100"]) == (1.0, 3.0, 0.0)
    # a signal measured on the rollouts keeps every step
    assert len(warning._run_signals(by_run, drops, "train/entropy", 0, skip)[0].steps) == 40
    assert not warning.idle({"train/updates": 4, "train/skipped_updates": 3})


def test_updates_count_breaks_of_saturated_updates_by_signalling_groups(tmp_path: Path) -> None:
    """Every saturated update is classed by its signalling groups; idle, dropped and unsaturated
    steps are not updates; the update before a collapse's drop is named with its groups."""
    from benchmarks.collapse.updates import main as updates_main
    from benchmarks.collapse.updates import signalling_groups, update_table

    # steps 1-5 learning, then saturated; the update of step 20 (one group) breaks it for good
    success = [0.3] * 5 + [0.95] * 14 + [0.95] + [0.0] * 11
    groups = [8] * 5 + [1, 2, 3, 0, 1, 2, 4, 1, 0, 2, 1, 3, 1, 2] + [1] + [0] * 11
    # a second run: saturated throughout; its one-group update at step 3 is followed by a dip
    dip = [0.95, 0.95, 0.95, 0.2, 0.95, 0.95]
    out = tmp_path / "a"
    out.mkdir()
    with open(out / "steps.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "step", "train/success", "train/zero_adv_group_frac", "train/updates",
                    "train/skipped_updates", "train/approx_kl_after_update", "train/signal_dropped"])
        for i, (s, g) in enumerate(zip(success, groups, strict=True), 1):
            w.writerow(["r0", i, s, (8 - g) / 8, 1, int(g == 0), 0.01 * g, 0])
        for i, s in enumerate(dip, 1):
            # step 5: signal dropped by min_signal_groups (the step is idle too, as the trainer logs it)
            w.writerow(["r1", i, s, 7 / 8, 1, int(i == 5), 0.5 if i == 3 else 0.01, int(i == 5)])
    (out / "runs.csv").write_text("run,arm,seed\nr0,none,0\nr1,none,1\n")

    result = update_table([("A", [out])])
    rows = {r["signal_groups"]: r for r in result["rows"]}
    # r0's saturated updates: steps 6-20 minus the two idle ones (groups 0): 13, the last (step 20, one group) broke;
    # r1's: steps 1-3 (step 4 is not saturated, step 5 dropped, step 6 has no next step); step 3's broke
    assert (rows["1"]["updates"], rows["1"]["broke"]) == (6 + 3, 2)
    assert (rows["2"]["updates"], rows["2"]["broke"]) == (4, 0)
    assert (rows["3+"]["updates"], rows["3+"]["broke"]) == (3, 0)
    assert rows["1"]["fisher_p_lone_vs_rest"] == pytest.approx(0.475)  # 2/9 vs 0/7: 1 - C(9,1)C(7,1)/C(16,2)
    assert rows["1"]["ci_low"] < 2 / 9 < rows["1"]["ci_high"]
    assert rows["3+"]["kl_median"] == pytest.approx(0.03)  # groups 3, 4, 3
    assert result["collapses"] == [{"setting": "A", "arm": "none", "run": "a/r0", "drop": 21, "signal_groups_before": 1}]
    # the logged count wins over the fraction; a fraction that is no multiple of 1/groups is refused
    assert signalling_groups({"train/signal_groups": "2", "train/zero_adv_group_frac": "0.5"}, 8) == 2
    assert signalling_groups({"train/zero_adv_group_frac": "0.75"}, 8) == 2
    assert signalling_groups({}, 8) is None
    # a band below saturation: r0's learning steps 1-5 (0.3; steps 1-4 followed by 0.3, "broke") count
    # only without after_success; after learning only r1's step 4 (0.2, one group, then 0.95) is in it
    band = {r["signal_groups"]: r for r in update_table([("A", [out])], min_success=0.2, max_success=0.9)["rows"]}
    assert [(band[k]["updates"], band[k]["broke"]) for k in ("1", "3+")] == [(1, 0), (5, 4)]
    learned = update_table([("A", [out])], min_success=0.2, max_success=0.9, after_success=0.9)
    assert [(r["updates"], r["broke"]) for r in learned["rows"]] == [(1, 0), (0, 0), (0, 0)]
    assert (learned["max_success"], learned["after_success"]) == (0.9, 0.9)
    with pytest.raises(ValueError, match="--groups"):
        signalling_groups({"step": "3", "train/zero_adv_group_frac": "0.3"}, 8)
    assert updates_main(["--out", str(tmp_path / "o"), "--setting", f"A={out}"]) == 0
    md = (tmp_path / "o" / "updates.md").read_text()
    assert "| A / none | 1 | 9 | 2 |" in md and "drop at step 21, update of step 20: 1" in md
    with pytest.raises(SystemExit):
        updates_main(["--out", str(tmp_path / "o"), "--setting", f"A={out}", "--broke-below", "2"])
    with pytest.raises(SystemExit):
        updates_main(["--out", str(tmp_path / "o"), "--setting", f"A={out}", "--max-success", "0.5"])
    assert updates_main(["--out", str(tmp_path / "b"), "--setting", f"A={out}", "--min-success", "0.2",
                         "--max-success", "0.9", "--after-success", "0.9"]) == 0
    assert "success ≥ 0.2 and < 0.9, from the run's first batch at ≥ 0.9 on" in (tmp_path / "b" / "updates.md").read_text()
    # the first 20 steps only: r0's update of step 20 has no next step there, so nothing broke and no collapse
    early = update_table([("A", [out])], max_step=20)
    assert [(r["updates"], r["broke"]) for r in early["rows"]] == [(5 + 3, 1), (4, 0), (3, 0)]
    assert (early["collapses"], early["max_step"]) == ([], 20)
    assert updates_main(["--out", str(tmp_path / "c"), "--setting", f"A={out}", "--max-step", "20"]) == 0
    assert "in each run's first 20 steps" in (tmp_path / "c" / "updates.md").read_text()
    with pytest.raises(SystemExit):
        updates_main(["--out", str(tmp_path / "o"), "--setting", f"A={out}", "--max-step", "1"])


def test_updates_class_each_break_by_what_it_changed_on_the_probe(tmp_path: Path) -> None:
    """Per update, the probe's changes to the next step; a break whose control change exceeds every
    non-breaking update's is of the control kind, else one whose content change does is of the
    content kind, else neither; the AUROC reads breaking against non-breaking updates."""
    from benchmarks.collapse.updates import auroc, probe_changes, update_table

    # (success, p(gold </tool_call>), p(gold </answer>), illegal mass, p(eot | <tool_call>), content p)
    steps = [
        (0.95, 0.99, 0.99, 1e-5, 1e-6, 0.999),
        (0.95, 0.98, 0.99, 2e-5, 1e-6, 0.998),  # small changes: not breaking
        (0.95, 0.99, 0.99, 1e-5, 1e-6, 0.999),  # this step's update breaks </tool_call>: control kind
        (0.20, 0.30, 0.99, 1e-5, 1e-6, 0.999),
        (0.95, 0.99, 0.99, 1e-5, 1e-6, 0.999),  # this one breaks the content: content kind
        (0.10, 0.99, 0.99, 1e-5, 1e-6, 0.950),
        (0.95, 0.99, 0.99, 1e-5, 1e-6, 0.999),  # breaks with changes no larger than the kept ones': neither
        (0.30, 0.98, 0.99, 2e-5, 1e-6, 0.998),
        (0.95, 0.99, 0.99, 1e-5, 1e-6, 0.999),
    ]
    out = tmp_path / "a"
    out.mkdir()
    cols = ["diag/probe/hit_mean/tool_call_end", "diag/probe/hit_mean/answer_end", "diag/probe/illegal_total",
            "diag/probe/after_open_eot", "diag/probe/content_p"]
    with open(out / "steps.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "step", "train/success", "train/signal_groups", "train/updates", "train/skipped_updates", *cols])
        for i, (s, *probe) in enumerate(steps, 1):
            w.writerow(["r0", i, s, 2, 8, 0, *probe])
    (out / "runs.csv").write_text("run,arm,seed\nr0,none,0\n")
    change = probe_changes({"diag/probe/hit_mean/a": "0.9", "diag/probe/hit_mean/b": "0.8", "diag/probe/content_p": "0.99"},
                           {"diag/probe/hit_mean/a": "0.5", "diag/probe/hit_mean/b": "0.9", "diag/probe/content_p": "0.97"})
    assert change["control_hit_fall"] == pytest.approx(0.4) and change["content_fall"] == pytest.approx(0.02)
    assert math.isnan(change["illegal_rise"])
    assert auroc([2.0, 1.0], [1.0, 0.0]) == pytest.approx((1 + 1 + 0.5 + 1) / 4) and math.isnan(auroc([], [1.0]))

    result = update_table([("A", [out])])
    (kinds,) = result["kinds"]
    # saturated updates: steps 1, 2, 3, 5, 7 (4, 6 and 8 are below 0.9; 9 has no next step); 3, 5 and 7 broke
    assert (kinds["updates"], kinds["broke"]) == (5, 3)
    assert [(b["step"], b["kind"]) for b in kinds["breaks"]] == [(3, "control"), (5, "content"), (7, "neither")]
    assert kinds["counts"] == {"control": 1, "content": 1, "neither": 1}
    assert kinds["changes"]["control_hit_fall"]["broke_above_kept"] == 1
    assert kinds["changes"]["control_hit_fall"]["kept_max"] == pytest.approx(0.01)
    assert 0.5 < kinds["changes"]["content_fall"]["auroc"] <= 1.0


def _foreshadow_runs(out: Path) -> None:
    """Four runs whose update at step ``b`` (15-18) breaks a saturated policy, the gradient norm
    spiking tenfold one step before it; a fifth without a break, with a twentyfold spike at step 20."""
    out.mkdir()
    with open(out / "steps.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "step", "train/success", "train/signal_groups", "train/updates", "train/skipped_updates",
                    "train/grad_norm", "train/entropy", "train/approx_kl_after_update"])
        for k in range(5):
            b = 15 + k if k < 4 else None
            for step in range(1, 31):
                success = 0.95 if b is None or step <= b else 0.1
                spike = (b is not None and step == b - 1) or (b is None and step == 20)
                w.writerow([f"r{k}", step, success, 2, 8, 0, (20.0 if b is None else 10.0) if spike else 1.0, 0.5,
                            1.0 if step == b else 0.01])
    (out / "runs.csv").write_text("run,arm,seed\n" + "".join(f"r{k},none,{k}\n" for k in range(5)))


def test_foreshadowing_reads_each_signal_lead_steps_before_the_first_batch_after_the_update(tmp_path: Path) -> None:
    """With lead 2 each saturated update is scored by the signal one step before its own step: a
    spike there separates the breaking updates (but for the non-breaking run's larger spike), a
    constant signal does not (AUROC 0.5), the update's own approx-KL does; with lead 1 the read
    moves to the update's step, where the spike has passed. The break rate is counted by index."""
    from benchmarks.collapse.updates import POSITIVE_CONTROL, update_table
    from benchmarks.collapse.updates import main as updates_main

    out = tmp_path / "a"
    _foreshadow_runs(out)
    result = update_table([("A", [out])], lead=2, resamples=200)
    (f,) = result["foreshadowing"]
    # saturated updates: r0-r3 steps 1..b (b = 15..18), r4 steps 1..29; 4 broke
    assert (f["updates"], f["runs"]) == (15 + 16 + 17 + 18 + 29, 5)
    grad = f["signals"]["gradient norm"]
    # scores exist from step 6 on, so updates from step 7 on are scored: 9+10+11+12 + 23 = 65, 4 of them breaking
    assert (grad["broke"], grad["kept"]) == (4, 61)
    assert grad["auroc"] == pytest.approx(1 - 1 / 61)  # each breaking update is below r4's update of step 21 only
    assert grad["ci_low"] <= grad["auroc"] <= grad["ci_high"] <= 1.0
    # with fewer than 100 others, a 1% alarm rate allows none of them: the threshold is their largest, r4's spike
    assert grad["recall_at_alarm_rate"] == 0.0
    assert f["signals"]["entropy"]["auroc"] == pytest.approx(0.5)
    assert f["signals"]["entropy"]["recall_at_alarm_rate"] == 0.0
    assert f["signals"][POSITIVE_CONTROL]["auroc"] == pytest.approx(1.0)
    assert f["signals"]["illegal control mass (probe)"]["broke"] == 0  # not logged: no numbers
    assert math.isnan(f["signals"]["illegal control mass (probe)"]["auroc"])
    hazard = {h["first"]: (h["updates"], h["broke"]) for h in f["hazard"]}
    assert hazard == {1: (25, 0), 6: (25, 0), 11: (5 + 6 + 7 + 8 + 10, 4), 21: (9, 0)}
    assert f["fisher_p_first10_vs_later"] < 0.05  # 0 of 50 against 4 of 45
    # lead 1: read at the update's own step; the spike belongs to the update before the breaking one
    (f1,) = update_table([("A", [out])], lead=1, resamples=50)["foreshadowing"]
    assert f1["signals"]["gradient norm"]["auroc"] < 0.5
    # the bootstrap is seeded: the same seed gives the same interval
    again = update_table([("A", [out])], lead=2, resamples=200)["foreshadowing"][0]["signals"]["gradient norm"]
    assert (again["ci_low"], again["ci_high"]) == (grad["ci_low"], grad["ci_high"])
    assert "foreshadowing" not in update_table([("A", [out])])
    with pytest.raises(ValueError, match="lead must be ≥ 1"):
        update_table([("A", [out])], lead=0)
    assert updates_main(["--out", str(tmp_path / "o"), "--setting", f"A={out}", "--lead", "2", "--resamples", "50"]) == 0
    md = (tmp_path / "o" / "updates.md").read_text()
    assert "Is a break foreshadowed?" in md and "| gradient norm | 4 / 61 | 0.98 [" in md
    assert "| 11–20 | 36 | 4 | 0.111 [" in md and "| 21 and later | 9 | 0 |" in md
    with pytest.raises(SystemExit):
        updates_main(["--out", str(tmp_path / "o"), "--setting", f"A={out}", "--lead", "0"])
