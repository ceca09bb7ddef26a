"""How tools/sweep.py runs its runs: its own interpreter, honest --gpus, the exit statuses
of a locked or preempted run, and a sweep stopped by Ctrl-C, SIGTERM or SIGKILL leaving
no run behind (#21 item 3, #18 items 6 to 8)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dassl.utils import exit_codes
from tests.helpers.fake_logs import read_ledger, write_fake_scripts
from tools import sweep
from tools.sweeping import devices

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(tmp_path, monkeypatch):
    scripts = write_fake_scripts(tmp_path, ["coop"], ["dsa"])
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger.txt"))
    monkeypatch.setenv("FAKE_STEPS", "2")
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    args = ["--root", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--scripts-dir", scripts,
            "--trainers", "CoOp", "--datasets", "dsa", "--seeds", "1", "2"]
    return dict(args=args, root=tmp_path, ledger=str(tmp_path / "ledger.txt"))


def plan_of(world, *extra):
    return sweep.plan_from_args(sweep.build_parser().parse_args(world["args"] + list(extra)))


def test_runs_get_the_sweeps_own_interpreter(world, monkeypatch, capsys):
    plan = plan_of(world)
    assert sweep.run_environment(plan, plan.jobs()[0][0], None)["PYTHON"] == sys.executable
    other_env = world["root"] / "other_env"
    other_env.mkdir()
    (other_env / "python").write_text("#!/bin/sh\necho 'another environment on PATH' >&2\nexit 97\n")
    (other_env / "python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{other_env}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHON", "python")
    assert sweep.main(world["args"]) == 0
    assert "Sweep: 4 done" in capsys.readouterr().out


def test_gpus_are_checked_before_any_run(world, monkeypatch, capsys):
    monkeypatch.setattr(devices, "usable_gpu_count", lambda: 0)
    assert sweep.main(world["args"] + ["--gpus", "0", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --gpus 0 1: this machine has no usable CUDA GPU (torch.cuda.is_available() is False in "
        f"{sys.executable}); drop --gpus to run on the CPU (--jobs N runs N at a time)"
    )
    monkeypatch.setattr(devices, "usable_gpu_count", lambda: 2)
    assert sweep.main(world["args"] + ["--gpus", "1", "2", "7"]) == 2
    assert capsys.readouterr().err.strip() == "error: --gpus 2 7: no such GPU; this machine has 2 (ids 0 to 1)"
    assert sweep.main(world["args"] + ["--gpus", "cuda:0"]) == 2
    assert "GPU ids are integers" in capsys.readouterr().err
    assert read_ledger(world["ledger"]) == []


def test_the_gpu_count_is_what_torch_sees():
    import torch

    assert devices.usable_gpu_count() == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_a_locked_or_preempted_run_is_reported_as_such_and_the_sweep_moves_on(world, capsys):
    statuses = {("1", "base2new_train.sh"): exit_codes.RUN_LOCKED, ("2", "base2new_train.sh"): exit_codes.PREEMPTED}

    def runner(argv, env, console):
        return statuses.get((argv[3], Path(argv[1]).name), 0)

    outcomes = sweep.run_jobs(plan_of(world), runner=runner)
    assert [o.status for o in outcomes] == ["running elsewhere", "not run", "preempted", "not run"]
    sweep.print_summary(outcomes)
    captured = capsys.readouterr()
    assert "FAILED" not in captured.err + captured.out
    assert "Sweep: 0 done, 0 skipped, 0 failed, 2 not run, 1 running elsewhere, 1 preempted" in captured.out
    assert "  RUNNING ELSEWHERE CoOp/vit_b16_ctxv1 dsa seed1 train_base: another process holds its run folder" in captured.out


def process_table():
    """{pid: (parent pid, state)} of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(pid):
    table, found, frontier = process_table(), set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def survivors(pids):
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def start_sweep(world, *extra):
    env = dict(os.environ, FAKE_STEPS="150", PYTHONPATH=str(REPO_ROOT), TMPDIR=str(world["root"]))
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "tools" / "sweep.py"), *world["args"], "--jobs", "2", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_starts(world, process, count):
    deadline = time.time() + 120
    while sum(e == "start" for e, *_ in read_ledger(world["ledger"])) < count and time.time() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


def wait_until_gone(pids, seconds=20):
    deadline = time.time() + seconds
    while survivors(pids) and time.time() < deadline:
        time.sleep(0.05)
    return survivors(pids)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_sweep_says_one_line_stops_its_runs_and_resumes(world, signum, capsys):
    process = start_sweep(world)
    wait_for_starts(world, process, 2)
    tree = descendants(process.pid)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == sweep.INTERRUPTED
    assert stderr.replace("\r", "\n").strip().splitlines()[-1] == "interrupted; run the same command again to resume"
    assert "FAILED" not in stdout + stderr and "Traceback" not in stdout + stderr and "Sweep:" not in stdout
    assert not wait_until_gone(tree, seconds=5), "the runs died with the sweep"
    assert not any((Path(d) / "done.json").exists() for e, d, *_ in read_ledger(world["ledger"]))

    assert sweep.main(world["args"]) == 0
    assert "Sweep: 4 done, 0 skipped, 0 failed, 0 not run" in capsys.readouterr().out
    finishes = [d for e, d, *_ in read_ledger(world["ledger"]) if e == "finish"]
    assert len(finishes) == len(set(finishes)) == 4


def test_a_warm_folder_left_by_a_dead_sweep_is_removed_at_the_next_start(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"sweep_warm_{dead.stdout.strip()}_abc"
    alive = tmp_path / f"sweep_warm_{os.getpid()}_def"
    for folder in (orphan, alive):
        folder.mkdir()
        (folder / "socket").write_text("")
    sweep.remove_orphaned_warm_folders(tmp_path)
    assert not orphan.exists() and alive.exists()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_warm_sweep_leaves_no_process_and_no_folder(world, signum):
    process = start_sweep(world, "--warm")
    wait_for_starts(world, process, 2)
    tree = descendants(process.pid)
    assert len(tree) >= 6, "guardian, warm server, two sessions and their runs, two scripts and clients"
    assert list(world["root"].glob("sweep_warm_*"))
    process.send_signal(signum)
    process.communicate(timeout=120)

    assert not wait_until_gone(tree), f"survivors: {survivors(tree)}"
    assert not list(world["root"].glob("sweep_warm_*"))
