"""One train.py per run folder: a second process on a locked folder exits with RUN_LOCKED and
one line naming the holder's pid; the lock dies with its holder (no stale locks)."""
import os
import signal
import subprocess
import sys

import pytest

from dassl.engine.run_lock import RunFolderLock, RunLockedError
from dassl.utils.exit_codes import RUN_LOCKED
from tests.helpers.trainer_runs import REPO, write_toy_run_folder

HOLD_LOCK = (
    "import sys; from dassl.engine.run_lock import RunFolderLock; "
    "RunFolderLock(sys.argv[1]).acquire(); print('locked', flush=True); sys.stdin.read()"
)


@pytest.fixture
def holder(tmp_path):
    """A second process holding the lock of tmp_path/run until it is killed."""
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert process.stdout.readline().strip() == "locked"
    yield out, process
    process.kill()
    process.wait()


def test_second_train_py_on_a_locked_folder_exits_running_elsewhere(holder, tmp_path):
    out, process = holder
    (tmp_path / "toy").mkdir()
    toy = write_toy_run_folder(tmp_path / "toy", "OPTIM:\n  MAX_EPOCH: 1\n")
    argv = ["--root", str(toy / "data"), "--output-dir", str(out), "--seed", "0", "--trainer", "ToyTrainer",
            "--dataset-config-file", str(toy / "toy.yaml"), "--config-file", str(toy / "trainer.yaml"),
            "--import", "tests.helpers.toy_dataset"]
    result = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), *argv], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == RUN_LOCKED
    assert result.stderr.strip().splitlines() == [
        f"train.py: {out} is running elsewhere (pid {process.pid}); wait for that run to end, or pass another --output-dir"
    ]
    assert sorted(os.listdir(out)) == [".run.lock"], "the locked folder was not touched"


def test_the_lock_is_released_when_its_holder_is_killed(holder):
    out, process = holder
    with pytest.raises(RunLockedError):
        RunFolderLock(out).acquire()
    process.send_signal(signal.SIGKILL)
    process.wait()
    lock = RunFolderLock(out).acquire()
    assert (out / ".run.lock").read_text() == f"{os.getpid()}\n"
    lock.release()
