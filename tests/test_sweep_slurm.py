"""The sweep's Slurm backend (#21 item 2) through a real one-node Slurm cluster
(tools/ci/slurm_up.sh; .ci/run starts one). Skipped where Slurm is not available."""
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.fake_logs import write_fake_scripts
from tests.helpers.trainer_runs import (
    REPO,
    TOY_EPOCHS_YAML,
    run_toy_training,
    toy_training_argv,
    write_toy_run_folder,
)
from tools import sweep
from tools.sweeping import slurm


def slurm_is_up():
    if not shutil.which("sinfo") or importlib.util.find_spec("submitit") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip() != ""


needs_slurm = pytest.mark.skipif(
    not slurm_is_up(), reason="no Slurm cluster or no submitit (tools/ci/slurm_up.sh starts one; pip install -e .[slurm])"
)

SLOW = ("--import", "tests.helpers.slow_toy")
TOY_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
common="$1/shots_$SHOTS/$TRAINER_DIR/$3/seed$2"
train_dir="$OUTPUT/base2new/train_base/$common"
dir="$OUTPUT/base2new/{phase}/$common"
[ -f "$dir/done.json" ] && exit 0
cd {repo}
exec "$PYTHON" train.py {argv}
"""


def fake_world(root, trainers=("coop", "kgcoop")):
    scripts = write_fake_scripts(root, list(trainers), ["dsa"])
    (root / "data").mkdir()
    return ["--root", str(root / "data"), "--output", str(root / "out"), "--scripts-dir", scripts,
            "--datasets", "dsa", "--seeds", "1", "2"]


@needs_slurm
def test_a_sweep_through_slurm_ends_with_the_table_of_the_local_sweep(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_STEPS", "2")
    tables = {}
    for backend in ("local", "slurm"):
        root = tmp_path / backend
        root.mkdir()
        monkeypatch.setenv("FAKE_LEDGER", str(root / "ledger.txt"))
        args = fake_world(root) + ["--trainers", "CoOp", "KgCoOp+TextRefiner"]
        assert sweep.main(args + (["--slurm", "--slurm-time", "10"] if backend == "slurm" else [])) == 0
        tables[backend] = (root / "out" / "base2new_results.md").read_text()
        assert sweep.main(args + ["--status"]) == 0
    out = capsys.readouterr().out
    assert tables["slurm"] == tables["local"]
    assert "Status: 4 done, 0 running, 0 pending, 0 failed, 0 not submitted" in out
    logs = list((tmp_path / "slurm" / "out").rglob("slurm/*_log.out"))
    assert len(logs) == 4, "one job per (trainer, dataset, seed), its logs in its train_base run folder"


def toy_scripts(root, toy):
    """scripts/coop/base2new_{train,test}.sh running the slow toy trainer through train.py."""
    train = toy_training_argv(toy, "OUT_DIR", *SLOW) + ["TRAINER.NAME", "SlowToyTrainer"]
    test = toy_training_argv(toy, "OUT_DIR", *SLOW) + ["--eval-only", "--model-dir", "TRAIN_DIR", "--load-epoch", "8"]
    for phase, name, argv in (("train_base", "base2new_train.sh", train), ("test_new", "base2new_test.sh", test)):
        folder = root / "scripts" / "coop"
        folder.mkdir(parents=True, exist_ok=True)
        text = shlex.join(argv).replace("OUT_DIR", '"$dir"').replace("TRAIN_DIR", '"$train_dir"')
        (folder / name).write_text(TOY_SCRIPT.format(phase=phase, repo=REPO, argv=text))
    (root / "configs" / "datasets").mkdir(parents=True)
    (root / "configs" / "datasets" / "toy.yaml").write_text("")
    (root / "configs" / "trainers" / "CoOp").mkdir(parents=True)  # the row's config, checked up front
    (root / "configs" / "trainers" / "CoOp" / "vit_b16_ctxv1.yaml").write_text("")
    (root / "data").mkdir()
    return ["--root", str(root / "data"), "--output", str(root / "out"), "--scripts-dir", str(root / "scripts"),
            "--trainers", "CoOp", "--datasets", "toy", "--seeds", "1", "--slurm", "--slurm-time", "10"]


def pointer_epoch(run_dir):
    try:
        return int((run_dir / "classifier" / "checkpoint").read_text().strip().rsplit("-", 1)[1])
    except (OSError, IndexError, ValueError):
        return 0


@needs_slurm
def test_a_job_preempted_mid_run_is_requeued_and_ends_like_an_uninterrupted_run(tmp_path):
    (tmp_path / "toy").mkdir()
    toy = write_toy_run_folder(tmp_path / "toy", TOY_EPOCHS_YAML)
    reference = run_toy_training(toy, tmp_path / "reference")
    args = toy_scripts(tmp_path / "world", toy)
    plan = sweep.plan_from_args(sweep.build_parser().parse_args(args))
    train_run, test_run = plan.jobs()[0]
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen([sys.executable, str(Path(REPO) / "tools" / "sweep.py"), *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while pointer_epoch(train_run.run_dir) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None and pointer_epoch(train_run.run_dir) < 8, "the run ended before the signal"
    job_id = (train_run.run_dir / "slurm" / "job_id").read_text().strip()
    subprocess.run(["scancel", "--signal=USR1", job_id], check=True)
    output, _ = process.communicate(timeout=300)

    assert process.returncode == 0, output
    log = (train_run.run_dir / "log.txt").read_text()
    assert "preempted by SIGUSR1" in log or "preempted by SIGTERM" in log
    resumed_from = int(log.split("Previous epoch: ")[1].split()[0])
    assert resumed_from >= 2, "the requeued job resumed the run, not from epoch 0"
    assert log.count("Finish training") == 1
    assert "=== resumed" not in (test_run.run_dir / "log.txt").read_text(), "the finished run was not redone"
    final = torch.load(train_run.run_dir / "classifier" / "model.pth.tar-8", weights_only=True)["state_dict"]
    expected = torch.load(tmp_path / "reference" / "classifier" / "model.pth.tar-8", weights_only=True)["state_dict"]
    for key in expected:
        assert torch.equal(final[key], expected[key])
    assert json.loads((train_run.run_dir / "done.json").read_text())["results"] == pytest.approx(reference)
    submitit_log = "".join(p.read_text() for p in (train_run.run_dir / "slurm").glob("*_log.err"))
    assert "Caught signal SIGUSR1" in submitit_log and "DUE TO JOB REQUEUE" in submitit_log


def test_status_reads_the_output_tree_and_the_queue(tmp_path, monkeypatch):
    args = fake_world(tmp_path, ["coop"]) + ["--trainers", "CoOp"]
    plan = sweep.plan_from_args(sweep.build_parser().parse_args(args))
    (first, second) = plan.jobs()
    for run in first:
        run.run_dir.mkdir(parents=True)
        (run.run_dir / "done.json").write_text('{"results": {"accuracy": 50.0}}')
    (second[0].run_dir / "slurm").mkdir(parents=True)
    (second[0].run_dir / "slurm" / "job_id").write_text("42\n")
    for queued, state in (({"42": "PENDING"}, "PENDING"), ({"42": "RUNNING"}, "RUNNING"), ({}, "FAILED")):
        monkeypatch.setattr(slurm, "queue_states", lambda queued=queued: queued)
        monkeypatch.setattr(slurm.shutil, "which", lambda tool: "/usr/bin/" + tool)
        lines = slurm.status(plan, sweep.is_done)
        assert lines[1] == f"  {state} {second[0].label} (job 42, logs in {second[0].run_dir / 'slurm'})"
    assert lines[0] == "Status: 1 done, 0 running, 0 pending, 1 failed, 0 not submitted"


def test_a_rerun_submits_only_what_is_neither_finished_nor_queued(tmp_path, monkeypatch):
    args = fake_world(tmp_path, ["coop"]) + ["--trainers", "CoOp", "--seeds", "1", "2", "3"]
    plan = sweep.plan_from_args(sweep.build_parser().parse_args(args))
    done, queued, fresh = plan.jobs()
    for run in done:
        run.run_dir.mkdir(parents=True)
        (run.run_dir / "done.json").write_text('{"results": {"accuracy": 50.0}}')
    (queued[0].run_dir / "slurm").mkdir(parents=True)
    (queued[0].run_dir / "slurm" / "job_id").write_text("7\n")
    polls = iter([{"7": "RUNNING"}, {"7": "RUNNING", "8": "PENDING"}, {}])
    monkeypatch.setattr(slurm, "queue_states", lambda: next(polls))
    monkeypatch.setattr(slurm, "POLL_SECONDS", 0)
    submitted = []
    monkeypatch.setattr(slurm, "submit", lambda plan, job, settings, steps_of: submitted.append(job) or "8")
    outcomes = slurm.run_on_slurm(plan, slurm.SlurmSettings(), None, sweep.is_done, sweep.Outcome)
    assert submitted == [fresh]
    assert [o.status for o in outcomes] == ["done", "done", "failed", "failed", "failed", "failed"]


def test_a_job_carries_the_sweeps_variables_not_the_login_nodes_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    args = fake_world(tmp_path, ["coop"]) + ["--trainers", "CoOp"]
    plan = sweep.plan_from_args(sweep.build_parser().parse_args(args))
    train_step = sweep.slurm_steps(plan)(plan.jobs()[0])[0]
    assert train_step.env["PYTHON"] == sys.executable and train_step.env["TRAINER_DIR"] == "CoOp"
    assert "CUDA_VISIBLE_DEVICES" not in train_step.env and "PATH" not in train_step.env


def test_slurm_refuses_the_local_execution_flags(tmp_path, capsys):
    args = fake_world(tmp_path, ["coop"]) + ["--trainers", "CoOp", "--slurm"]
    assert sweep.main(args + ["--warm"]) == 2
    assert "--slurm gives every job its own allocation: drop --gpus, --warm and --jobs" in capsys.readouterr().err


def test_slurm_without_its_tools_says_what_is_missing(tmp_path, monkeypatch, capsys):
    args = fake_world(tmp_path, ["coop"]) + ["--trainers", "CoOp", "--slurm"]
    monkeypatch.setattr(slurm.shutil, "which", lambda tool: None)
    assert sweep.main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --slurm needs Slurm's sbatch and squeue on PATH; run the sweep on a Slurm login node"
    )


def test_settings_come_from_flags_over_the_site_defaults_file(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm, "DEFAULTS_FILE", tmp_path / "no_site_defaults.yaml")
    defaults = tmp_path / "slurm.yaml"
    defaults.write_text("partition: gpu\naccount: lab\ntime: 120\ngpus: 1\nsetup: [module load cuda]\n")
    settings = slurm.settings_from({"time": 30, "partition": None, "mem_gb": 16}, defaults)
    parameters = settings.executor_parameters()
    assert (parameters["partition"], parameters["account"], parameters["time"]) == ("gpu", "lab", 30)
    assert parameters["gpus_per_node"] == 1 and parameters["mem"] == "16384MB" and parameters["signal_delay_s"] == 90
    assert parameters["setup"][2] == "module load cuda" and parameters["setup"][0].startswith(f"export PYTHONPATH={REPO}")
    defaults.write_text("partitions: gpu\n")
    with pytest.raises(slurm.SlurmError, match="unknown setting.*partitions"):
        slurm.settings_from({}, defaults)
    with pytest.raises(slurm.SlurmError, match="does not exist"):
        slurm.settings_from({}, tmp_path / "missing.yaml")
    with pytest.raises(slurm.SlurmError, match="Slurm time must be a whole number >= 1; got 0"):
        slurm.settings_from({"time": 0}, None)
