"""Issue #8: a sweep killed with SIGKILL at random points and resumed ends with
the same Base/New/H table as an uninterrupted one, and never reruns a finished run."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.fake_logs import read_ledger, write_fake_scripts
from tools import sweep

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = ["dsa", "dsbb"]
KILLS = 4


def sweep_args(root):
    return [
        "--root", str(root / "data"), "--output", str(root / "out"), "--scripts-dir", str(root / "scripts"),
        "--trainers", "CoOp", "KgCoOp+TextRefiner", "--datasets", *DATASETS, "--seeds", "1", "2", "--jobs", "2",
    ]


def make_world(root):
    write_fake_scripts(root, ["coop", "kgcoop"], DATASETS)
    (root / "data").mkdir()
    return root


def starts(ledger):
    return sum(event == "start" for event, *_ in read_ledger(ledger))


def interrupted_runs(ledger):
    """Runs whose start was not followed by their finish."""
    last_event = {}
    interrupted = set()
    for event, run_dir, *_ in read_ledger(ledger):
        if event == "start" and last_event.get(run_dir) == "start":
            interrupted.add(run_dir)
        last_event[run_dir] = event
    return interrupted | {d for d, e in last_event.items() if e == "start"}


def kill_during_runs(root, ledger, rng, env):
    """Start the sweep, wait until it has started a random number of runs,
    SIGKILL its whole process group a moment later (a fake run lasts >= 0.1 s)."""
    target = starts(ledger) + rng.randint(1, 6)
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tools" / "sweep.py"), *sweep_args(root)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 20
    while starts(ledger) < target and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.08))
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_killed_and_resumed_sweep_matches_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_STEPS", "5")
    monkeypatch.delenv("FAKE_FAIL", raising=False)

    reference = make_world(tmp_path / "reference")
    monkeypatch.setenv("FAKE_LEDGER", str(reference / "ledger.txt"))
    assert sweep.main(sweep_args(reference)) == 0

    killed = make_world(tmp_path / "killed")
    ledger = str(killed / "ledger.txt")
    monkeypatch.setenv("FAKE_LEDGER", ledger)
    rng = random.Random(8)
    for _ in range(KILLS):
        kill_during_runs(killed, ledger, rng, dict(os.environ))
    assert interrupted_runs(ledger), "no kill landed in the middle of a run"
    assert sweep.main(sweep_args(killed)) == 0
    capsys.readouterr()

    assert (killed / "out" / "base2new_results.md").read_text() == (reference / "out" / "base2new_results.md").read_text()
    assert (killed / "out" / "base2new_results.csv").read_text() == (reference / "out" / "base2new_results.csv").read_text()
    per_run = {}
    for event, run_dir, *_ in read_ledger(ledger):
        per_run.setdefault(run_dir, []).append(event)
    assert len(per_run) == 16
    for run_dir, run_events in per_run.items():
        assert os.path.isfile(os.path.join(run_dir, "done.json"))
        assert run_events.count("finish") <= 1
        if "finish" in run_events:
            assert "start" not in run_events[run_events.index("finish"):], f"{run_dir} ran again after it finished"
