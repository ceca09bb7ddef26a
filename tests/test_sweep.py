"""tools/sweep.py against fake per-method scripts (tests/helpers/fake_logs.py).

Fake accuracies: Base = 60 + seed + len(dataset), New = 40 + 2 * seed,
+5 on both for rows with the TextRefiner opts.
"""
import os

import pytest

from tests.helpers.fake_logs import (
    base2new_dir,
    read_ledger,
    train_log,
    write_base2new_seed,
    write_fake_scripts,
    write_run,
    write_run_json,
)
from tools import sweep
from tools.sweeping import devices

DATASETS = ["dsa", "dsbb"]


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Fake scripts for coop/kgcoop, a data root, an output root and a ledger."""
    scripts = write_fake_scripts(tmp_path, ["coop", "kgcoop"], DATASETS)
    (tmp_path / "data").mkdir()
    ledger = tmp_path / "ledger.txt"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))
    monkeypatch.setenv("FAKE_STEPS", "2")
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    args = ["--root", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--scripts-dir", scripts]
    return dict(args=args, out=tmp_path / "out", ledger=str(ledger), root=tmp_path)


def run_sweep(world, *extra):
    return sweep.main(world["args"] + [str(e) for e in extra])


def table_row(text, title, dataset):
    section = text.split(f"### {title}")[1].split("### ")[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == dataset:
            return cells
    raise AssertionError(f"no row {dataset} in {title}")


def run_of(run_dir):
    """(phase, dataset, seed) of a run folder from the ledger."""
    parts = run_dir.split(os.sep)
    return parts[-6], parts[-5], int(parts[-1][len("seed"):])


def test_trains_before_testing_and_prints_the_table(world, capsys):
    code = run_sweep(world, "--trainers", "CoOp", "--datasets", *DATASETS, "--seeds", 1, 2)
    out = capsys.readouterr().out
    assert code == 0
    events = [(event, run_of(d)) for event, d, _, _ in read_ledger(world["ledger"])]
    assert [run for event, run in events if event == "start"] == [
        ("train_base", "dsa", 1), ("test_new", "dsa", 1), ("train_base", "dsa", 2), ("test_new", "dsa", 2),
        ("train_base", "dsbb", 1), ("test_new", "dsbb", 1), ("train_base", "dsbb", 2), ("test_new", "dsbb", 2),
    ]
    for dataset in DATASETS:
        for seed in (1, 2):
            train_done = events.index(("finish", ("train_base", dataset, seed)))
            assert train_done < events.index(("start", ("test_new", dataset, seed)))
    assert "Sweep: 8 done, 0 skipped, 0 failed, 0 not run" in out
    # dsa: Base 64, 65 -> 64.50 ± 0.50; New 42, 44 -> 43.00 ± 1.00; H = 2*64.5*43/107.5 = 51.60
    assert table_row(out, "CoOp / vit_b16_ctxv1", "dsa") == ["dsa", "64.50 ± 0.50", "43.00 ± 1.00", "51.60", "1,2"]
    assert (world["out"] / "base2new_results.md").is_file() and (world["out"] / "base2new_results.csv").is_file()


def test_skips_finished_runs_and_redoes_half_done_ones(world, capsys):
    write_base2new_seed(world["out"], "dsa", "CoOp", "vit_b16_ctxv1", 1, 90.0, None)
    write_run_json(base2new_dir(world["out"], "train_base", "dsa", "CoOp", "vit_b16_ctxv1", 1), {"config": {
        "TRAINER.NAME": "CoOp", "SEED": 1, "DATASET.NUM_SHOTS": 16, "DATASET.SUBSAMPLE_CLASSES": "base"}})
    half_done = base2new_dir(world["out"], "train_base", "dsa", "CoOp", "vit_b16_ctxv1", 2)
    write_run(half_done, train_log(0.0, finished=False), done=False)
    open(os.path.join(half_done, "step0"), "w").close()
    code = run_sweep(world, "--trainers", "CoOp", "--datasets", "dsa", "--seeds", 1, 2)
    out = capsys.readouterr().out
    assert code == 0
    starts = [run_of(d) for event, d, _, _ in read_ledger(world["ledger"]) if event == "start"]
    assert starts == [("test_new", "dsa", 1), ("train_base", "dsa", 2), ("test_new", "dsa", 2)]
    assert "Sweep: 3 done, 1 skipped, 0 failed, 0 not run" in out
    # Base: the finished 90 (seed 1) and the redone 65 (seed 2) -> 77.50 ± 12.50
    assert table_row(out, "CoOp / vit_b16_ctxv1", "dsa")[1] == "77.50 ± 12.50"


def test_rerun_with_other_opts_is_not_skipped_with_the_old_table(world, capsys):
    assert run_sweep(world, "--trainers", "CoOp", "--datasets", "dsa", "--seeds", 1, "--opts", "OPTIM.MAX_EPOCH", 2) == 0
    assert "Sweep: 2 done, 0 skipped" in capsys.readouterr().out
    assert run_sweep(world, "--trainers", "CoOp", "--datasets", "dsa", "--seeds", 1, "--opts", "OPTIM.MAX_EPOCH", 2) == 0
    assert "Sweep: 0 done, 2 skipped" in capsys.readouterr().out, "the same opts: the finished runs are reused"
    retrained = os.path.join(base2new_dir(world["out"], "train_base", "dsa", "CoOp", "vit_b16_ctxv1", 1), "run.json")
    with open(retrained, "a") as f:
        f.write("\n")  # the training run was redone (--restart): a test of the old weights is not reused
    assert run_sweep(world, "--trainers", "CoOp", "--datasets", "dsa", "--seeds", 1, "--opts", "OPTIM.MAX_EPOCH", 2) == 1
    assert "Sweep: 0 done, 1 skipped, 1 failed" in capsys.readouterr().out
    code = run_sweep(world, "--trainers", "CoOp", "--datasets", "dsa", "--seeds", 1, "--opts", "OPTIM.MAX_EPOCH", 5)
    captured = capsys.readouterr()
    assert code == 1 and "holds another run" in captured.err
    assert "Sweep: 0 done, 0 skipped, 1 failed, 1 not run" in captured.out


def test_spreads_runs_over_gpus_one_at_a_time(world, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_STEPS", "6")
    monkeypatch.setattr(devices, "usable_gpu_count", lambda: 4)
    code = run_sweep(world, "--trainers", "CoOp", "--datasets", *DATASETS, "--seeds", 1, 2, "--gpus", "0", "3")
    assert code == 0
    ledger = read_ledger(world["ledger"])
    intervals = {}
    for event, run_dir, gpu, moment in ledger:
        intervals.setdefault((run_dir, gpu), {})[event] = moment
    by_gpu = {}
    for (run_dir, gpu), span in intervals.items():
        by_gpu.setdefault(gpu, []).append((span["start"], span["finish"], run_of(run_dir)))
    assert sorted(by_gpu) == ["0", "3"]
    for spans in by_gpu.values():
        spans.sort()
        assert all(previous[1] <= following[0] for previous, following in zip(spans, spans[1:]))
    gpu_of = {run: gpu for gpu, spans in by_gpu.items() for _, _, run in spans}
    for dataset in DATASETS:
        for seed in (1, 2):
            assert gpu_of[("train_base", dataset, seed)] == gpu_of[("test_new", dataset, seed)]
    overlaps = [a[0] < b[1] and b[0] < a[1] for a in by_gpu["0"] for b in by_gpu["3"]]
    assert any(overlaps), by_gpu  # the two GPUs worked at the same time


def test_failing_run_is_reported_and_the_sweep_goes_on(world, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "dsa 1 train_base")
    code = run_sweep(world, "--trainers", "CoOp", "--datasets", "dsa", "--seeds", 1, 2)
    captured = capsys.readouterr()
    failed_dir = base2new_dir(world["out"], "train_base", "dsa", "CoOp", "vit_b16_ctxv1", 1)
    assert code == 1
    assert f"FAILED CoOp/vit_b16_ctxv1 dsa seed1 train_base: exit status 1; see {failed_dir}/log.txt" in captured.err
    assert "fake crash" in captured.err
    assert "Sweep: 2 done, 0 skipped, 1 failed, 1 not run" in captured.out
    assert f"  FAILED CoOp/vit_b16_ctxv1 dsa seed1 train_base: exit status 1; see {failed_dir}/log.txt" in captured.out
    assert f"dsa train_base seed1: unfinished (no done.json) - {failed_dir}" in captured.out
    assert table_row(captured.out, "CoOp / vit_b16_ctxv1", "dsa")[1:3] == ["65.00 ± 0.00", "44.00 ± 0.00"]


def test_plugin_row_gets_its_own_folder_and_opts(world, capsys):
    code = run_sweep(world, "--trainers", "KgCoOp+TextRefiner", "--datasets", "dsa", "--seeds", 1)
    out = capsys.readouterr().out
    assert code == 0
    assert os.path.isfile(base2new_dir(world["out"], "test_new", "dsa", "KgCoOp+TextRefiner", "vit_b16_ep100_ctxv1", 1) + "/done.json")
    # Base 60 + 1 + 3 + 5 = 69, New 40 + 2 + 5 = 47, H = 2*69*47/116 = 55.91
    assert table_row(out, "KgCoOp+TextRefiner / vit_b16_ep100_ctxv1", "dsa") == ["dsa", "69.00 ± 0.00", "47.00 ± 0.00", "55.91", "1"]


def test_environment_passed_to_the_scripts(world):
    args = sweep.build_parser().parse_args(world["args"] + ["--trainers", "KgCoOp+TextRefiner:cfg2", "--datasets", "dsa",
                                                            "--opts", "TRAINER.COOP.CTX_INIT", "a photo of a"])
    plan = sweep.plan_from_args(args)
    run = plan.jobs()[0][1]
    env = sweep.run_environment(plan, run, "3")
    assert env["EXTRA_OPTS"] == "TRAINER.TEXTREFINER.ENABLED True TRAINER.COOP.CTX_INIT 'a photo of a'"
    assert (env["TRAINER_DIR"], env["CUDA_VISIBLE_DEVICES"], env["SHOTS"]) == ("KgCoOp+TextRefiner", "3", "16")
    assert run.run_dir == world["out"] / "base2new/test_new/dsa/shots_16/KgCoOp+TextRefiner/cfg2/seed1"
    assert str(plan.script(run.row, run.phase)).endswith("kgcoop/base2new_test.sh")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--trainers", "KgCoOP", "--datasets", "dsa"], "unknown trainer 'KgCoOP' (did you mean KgCoOp?)"),
        (["--trainers", "CoCoOp", "--datasets", "dsa"], "cocoop/base2new_train.sh does not exist"),
        (["--trainers", "CoOp", "--datasets", "dsx"], "unknown dataset 'dsx' (did you mean dsa?)"),
        (["--trainers", "CoOp", "--datasets", "dsa", "--gpus", "0", "--jobs", "2"], "drop --jobs"),
        (["--trainers", "CoOp", "--datasets", "dsa", "--opts", "OPTIM.MAX_EPOCH"], "KEY VALUE pairs"),
    ],
)
def test_bad_arguments_fail_before_any_run(world, capsys, extra, message):
    assert run_sweep(world, *extra) == 2
    assert message in capsys.readouterr().err
    assert read_ledger(world["ledger"]) == []


def test_plugin_rows_need_scripts_that_honour_trainer_dir(world, capsys):
    for path in (world["root"] / "scripts").rglob("*.sh"):
        path.write_text(path.read_text().replace("$TRAINER_DIR", "KgCoOp"))
    assert run_sweep(world, "--trainers", "KgCoOp+TextRefiner", "--datasets", "dsa") == 2
    assert "need scripts that name the <Trainer> folder after $TRAINER_DIR" in capsys.readouterr().err


def test_per_dataset_configs_form_one_table_and_shared_scripts_get_the_trainer(world, capsys):
    scripts = write_fake_scripts(world["root"], ["tgpt", "dpt"], DATASETS)
    args = ["--root", str(world["root"] / "data"), "--output", str(world["out"]), "--scripts-dir", scripts]
    code = sweep.main(args + ["--trainers", "TGPT", "--datasets", *DATASETS, "--seeds", "1"])
    out = capsys.readouterr().out
    assert code == 0
    run_dirs = {d for _, d, _, _ in read_ledger(world["ledger"])}
    assert any(d.endswith(os.path.join("TGPT", "vit_b16_dsbb", "seed1")) for d in run_dirs)
    # One TGPT table over both datasets: dsbb Base = 60 + 1 + 4 = 65, New = 42 -> H = 2*65*42/107 = 51.03
    assert table_row(out, "TGPT / vit_b16_{dataset}", "dsbb")[1:4] == ["65.00 ± 0.00", "42.00 ± 0.00", "51.03"]
    assert table_row(out, "TGPT / vit_b16_{dataset}", "dsa")[1] == "64.00 ± 0.00"

    calls = []
    plan = sweep.plan_from_args(sweep.build_parser().parse_args(args + ["--trainers", "VLP", "--datasets", "dsa",
                                                                          "--seeds", "1"]))
    sweep.run_jobs(plan, runner=lambda argv, env, console: calls.append(argv) or 1)
    assert calls[0][-3:] == ["1", "vit_b16", "VLP"] and calls[0][1].endswith(os.path.join("dpt", "base2new_train.sh"))
