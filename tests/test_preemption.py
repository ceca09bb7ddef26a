"""Preemption-safe runs (#21 item 1): a resumable state at the end of every epoch (iteration mode:
loader pass), the newest two kept; SIGTERM/SIGUSR1 stop the run after its step with exit status
PREEMPTED and a state saved after that step; a run killed or preempted anywhere resumes where it was
and ends like an uninterrupted one."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from dassl.engine.run_fingerprint import has_checkpoint
from dassl.utils import is_run_done
from dassl.utils.torchtools import MID_PASS_FILE
from dassl.utils.exit_codes import PREEMPTED
from tests.helpers.trainer_runs import (
    REPO,
    TOY_EPOCHS_YAML,
    run_toy_training,
    toy_training_argv,
    write_toy_run_folder,
)

ITERATION_OPTS = ("OPTIM.MAX_ITER", "40")  # 8 passes of the 5 toy batches
SLOW_IMPORT = ("--import", "tests.helpers.slow_toy")
SLOW_TRAINER = ("TRAINER.NAME", "SlowToyTrainer")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_run_folder(tmp_path_factory.mktemp("toy_preempt"), TOY_EPOCHS_YAML)


@pytest.fixture(scope="module")
def references(toy):
    """Uninterrupted runs, epoch mode and iteration mode: (folder, results)."""
    runs = {}
    for mode, opts in (("epochs", ()), ("iterations", ITERATION_OPTS)):
        out = toy / f"reference_{mode}"
        runs[mode] = out, run_toy_training(toy, out, *opts)
    return runs


def checkpoints(out):
    return sorted(os.listdir(out / "classifier"))


def pointer_number(out):
    """The number of the checkpoint the resume pointer names (0 before the first save)."""
    try:
        return int((out / "classifier" / "checkpoint").read_text().strip().rsplit("-", 1)[1])
    except (OSError, IndexError, ValueError):
        return 0


def start_run(toy, out, *opts, env=()):
    """A slow toy run in its own `python train.py` process (`env`: more environment variables)."""
    argv = [sys.executable, "train.py", *toy_training_argv(toy, out, *SLOW_IMPORT), *opts, *SLOW_TRAINER]
    env = dict(os.environ, PYTHONPATH=REPO, **dict(env))
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(process, out, number):
    deadline = time.time() + 120
    while pointer_number(out) < number and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before the test could stop it"


def assert_same_final_model(out, reference, name):
    final = torch.load(out / "classifier" / name, weights_only=True)["state_dict"]
    expected = torch.load(reference / "classifier" / name, weights_only=True)["state_dict"]
    for key in expected:
        assert torch.equal(final[key], expected[key])


def test_every_epoch_saves_a_resumable_state_and_keeps_the_newest_two(references, toy):
    out, _ = references["epochs"]
    assert checkpoints(out) == ["checkpoint", "model.pth.tar-7", "model.pth.tar-8"]
    iterations, _ = references["iterations"]
    assert checkpoints(iterations) == ["checkpoint", "model.pth.tar-35", "model.pth.tar-40"]
    asked = toy / "checkpoint_freq"
    run_toy_training(toy, asked, "TRAIN.CHECKPOINT_FREQ", "3")
    assert checkpoints(asked) == ["checkpoint", "model.pth.tar-3", "model.pth.tar-6", "model.pth.tar-7", "model.pth.tar-8"]
    off = toy / "off"
    run_toy_training(toy, off, "TRAIN.SAVE_RESUMABLE_EVERY", "0")
    assert checkpoints(off) == ["checkpoint", "model.pth.tar-8"]


def test_a_run_sigkilled_at_a_random_epoch_resumes_there_with_the_same_numbers(toy, references):
    ref_out, ref_results = references["epochs"]
    out = toy / "sigkilled"
    process = start_run(toy, out)
    wait_for_checkpoint(process, out, random.Random().randint(1, 5))
    process.kill()
    process.communicate()
    saved = pointer_number(out)
    assert saved >= 1 and not is_run_done(out)

    results = run_toy_training(toy, out, *SLOW_IMPORT, *SLOW_TRAINER)

    assert f"Previous epoch: {saved}" in (out / "log.txt").read_text()
    assert results == pytest.approx(ref_results)
    assert_same_final_model(out, ref_out, "model.pth.tar-8")


@pytest.mark.parametrize("signum, mode", [(signal.SIGTERM, "epochs"), (signal.SIGUSR1, "iterations")])
def test_a_preemption_signal_stops_the_run_with_its_status_and_a_resumable_folder(toy, references, signum, mode):
    ref_out, ref_results = references[mode]
    opts = ITERATION_OPTS if mode == "iterations" else ()
    out = toy / f"preempted_{mode}"
    process = start_run(toy, out, *opts)
    wait_for_checkpoint(process, out, 1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == PREEMPTED
    assert stderr.strip().splitlines()[-1].startswith(f"train.py: preempted by {signal.Signals(signum).name} at ")
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    assert not is_run_done(out) and pointer_number(out) >= 1

    results = run_toy_training(toy, out, *SLOW_IMPORT, *opts, *SLOW_TRAINER)

    assert results == pytest.approx(ref_results)
    assert_same_final_model(out, ref_out, checkpoints(ref_out)[-1])


@pytest.mark.parametrize(
    "mode, opts, step, saved, resume_at",
    [
        ("epochs", (), 7, 1, "epoch 2 batch 4"),  # 4 batches an epoch
        ("epochs", (), 2, 0, "epoch 1 batch 3"),  # before the first end-of-epoch save
        ("epochs", ("DATALOADER.NUM_WORKERS", "2"), 7, 1, "epoch 2 batch 4"),
        ("iterations", ITERATION_OPTS, 7, 5, "iteration 8"),  # 5 batches a loader pass
    ],
)
def test_a_signal_mid_epoch_saves_the_state_after_its_step_and_the_run_resumes_at_the_next_batch(
    toy, references, mode, opts, step, saved, resume_at
):
    if opts[:1] == ("DATALOADER.NUM_WORKERS",):
        ref_out = toy / "reference_workers"
        ref_results = run_toy_training(toy, ref_out, *opts)
    else:
        ref_out, ref_results = references[mode]
    out = toy / f"mid_epoch_{mode}_{len(opts)}_{step}"
    process = start_run(toy, out, *opts, env={"SLOW_TOY_SIGTERM_AT_STEP": str(step)})
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == PREEMPTED, stderr
    assert f"a restart resumes at {resume_at}" in stderr.strip().splitlines()[-1]
    assert pointer_number(out) == saved and MID_PASS_FILE in checkpoints(out)
    assert has_checkpoint(out) and not is_run_done(out)

    results = run_toy_training(toy, out, *SLOW_IMPORT, *opts, *SLOW_TRAINER)

    assert f"Resume at {resume_at}" in (out / "log.txt").read_text()
    assert MID_PASS_FILE not in checkpoints(out)
    assert results == pytest.approx(ref_results, abs=0)
    assert_same_final_model(out, ref_out, checkpoints(ref_out)[-1])
