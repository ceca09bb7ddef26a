"""Issue #18, items 5, 9 and 10: full disks, checkpoint integrity and fallback, temp files, modes, done.json.

The fuzz test mutates a real checkpoint a few hundred ways: each mutant must
be refused (UnreadableCheckpointError) or load the exact original content.
The full-disk tests mount a tiny tmpfs (skipped where mounting is refused;
tests/test_errors.py fakes ENOSPC at the temp file's write instead).
"""
import errno
import json
import os
import random
import subprocess
import sys
import time

import pytest
import torch

import dassl.engine.trainer_base as trainer_base
from dassl.data.datasets.base_dataset import Datum
from dassl.data.datasets.split_files import write_split
from dassl.utils import is_run_done, load_checkpoint, read_done_marker, resume_from_checkpoint, save_checkpoint
from dassl.utils.atomic import atomic_write_text, remove_stale_temp_files
from dassl.utils.errors import DiskFullError, MissingCheckpointError, UnreadableCheckpointError
from dassl.utils.torchtools import content_digest
from tests.helpers.disk_full import fill, tiny_filesystem
from tests.helpers.trainer_runs import REPO
from tests.test_errors import files, run_cli, run_toy, toy_argv, toy_run  # noqa: F401 (fixtures)


def make_state(epoch, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    return {"state_dict": model.state_dict(), "epoch": epoch, "optimizer": optimizer.state_dict(),
            "scheduler": None, "val_result": 50.0 + epoch}


def mutants(data, rng, count):
    """(kind, bytes): bit flips, zeroed blocks, random bytes over a block, random files, cut files."""
    for case in range(count):
        kind = ("bit flips", "zeroed block", "random block", "random file", "cut")[case % 5]
        mutant = bytearray(data)
        if kind == "bit flips":
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(mutant))
                mutant[position] ^= 1 << rng.randrange(8)
        elif kind in ("zeroed block", "random block"):
            start, size = rng.randrange(len(mutant)), rng.randint(1, 512)
            block = bytes(size) if kind == "zeroed block" else rng.randbytes(size)
            mutant[start:start + size] = block[: len(mutant) - start]
        elif kind == "random file":
            mutant = bytearray(rng.randbytes(rng.randint(0, 2 * len(data))))
        else:
            mutant = mutant[: rng.randrange(len(mutant))]
        if bytes(mutant) != data:
            yield kind, bytes(mutant)


def test_fuzzed_checkpoints_are_never_loaded_silently(tmp_path):
    original = make_state(3)
    path = save_checkpoint(original, str(tmp_path), model_name="model.pth.tar-3")
    data = open(path, "rb").read()
    expected = content_digest(load_checkpoint(path))
    assert expected == content_digest(original)
    refused, silent = 0, []
    for kind, mutant in mutants(data, random.Random(18), 400):
        with open(path, "wb") as f:
            f.write(mutant)
        try:
            loaded = load_checkpoint(path)
        except UnreadableCheckpointError:
            refused += 1
            continue
        if content_digest(loaded) != expected:
            silent.append(kind)
    assert silent == [], "mutants loaded with changed content"
    assert refused > 300


def test_resume_falls_back_to_the_previous_checkpoint(tmp_path, capsys):
    for epoch in (1, 2, 3):
        save_checkpoint(make_state(epoch, seed=epoch), str(tmp_path))
    newest = tmp_path / "model.pth.tar-3"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    model = torch.nn.Linear(8, 4)
    assert resume_from_checkpoint(str(tmp_path), model) == 2
    assert f"Warning: cannot resume from {newest} ({newest} is truncated or corrupt" in capsys.readouterr().out
    assert torch.equal(model.weight, make_state(2, seed=2)["state_dict"]["weight"])


@pytest.mark.parametrize("pointer_text, problem", [
    ("", "is empty"), ("model.pth.tar-9\n", "names 'model.pth.tar-9', which is not a file in"),
])
def test_an_empty_or_dangling_pointer_is_named(tmp_path, capsys, pointer_text, problem):
    pointer = tmp_path / "checkpoint"
    pointer.write_text(pointer_text)
    with pytest.raises(MissingCheckpointError, match=f"^the checkpoint pointer {pointer} {problem}"):
        resume_from_checkpoint(str(tmp_path), torch.nn.Linear(8, 4))
    save_checkpoint(make_state(1), str(tmp_path))
    pointer.write_text(pointer_text)
    assert resume_from_checkpoint(str(tmp_path), torch.nn.Linear(8, 4)) == 1
    assert f"Warning: the checkpoint pointer {pointer} {problem}" in capsys.readouterr().out


def test_a_run_resumes_from_the_previous_checkpoint_when_the_newest_is_corrupt(files, toy_run, tmp_path, capsys):
    root, _ = toy_run
    out = tmp_path / "run"
    run_toy(files, root, out, "OPTIM.MAX_EPOCH", "2")
    (out / "done.json").unlink()
    newest = out / "classifier" / "model.pth.tar-2"
    newest.write_bytes(newest.read_bytes()[:100])
    capsys.readouterr()
    run_toy(files, root, out, "OPTIM.MAX_EPOCH", "2")
    log = capsys.readouterr().out
    assert f"Warning: cannot resume from {newest}" in log and "Previous epoch: 1" in log
    assert is_run_done(out)


def test_stale_temp_files_are_removed_on_the_next_start(files, toy_run, tmp_path):
    root, _ = toy_run
    out = tmp_path / "run"
    (out / "classifier").mkdir(parents=True)
    stale = out / "classifier" / ".model.pth.tar-1.k3j_x9ab.tmp"
    foreign = out / "classifier" / "notes.tmp"
    for path in (stale, foreign):
        path.write_bytes(b"half")
        os.utime(path, (time.time() - 86400, time.time() - 86400))  # before this (test) process started
    run_toy(files, root, out, "--no-train")
    assert not stale.exists() and foreign.exists()
    live = out / ".log.txt.abcdefgh.tmp"
    live.write_text("being written")
    assert remove_stale_temp_files(str(out), older_than=time.time() - 3600) == [] and live.exists()


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(str(tmp_path / "a.txt"), "x")
        write_split({"train": [Datum(impath=str(tmp_path / "img.png"), label=0, classname="c")]},
                    str(tmp_path / "split.json"), str(tmp_path))
    finally:
        os.umask(previous)
    assert oct(os.stat(tmp_path / "a.txt").st_mode & 0o777) == "0o644"
    assert oct(os.stat(tmp_path / "split.json").st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("content", [
    b'{"results": {"accuracy": 71.2}, "finished', b"\xff\xfe\x00", b"[1, 2]", b'{"finished_at": "today"}',
    b'{"results": {"accuracy": "high"}}', b"",
])
def test_a_corrupt_done_marker_is_not_finished(tmp_path, content):
    (tmp_path / "done.json").write_bytes(content)
    assert read_done_marker(str(tmp_path)) is None
    assert not is_run_done(str(tmp_path))
    (tmp_path / "done.json").write_text(json.dumps({"results": {"accuracy": 71.2}}))
    assert is_run_done(str(tmp_path)) and read_done_marker(str(tmp_path))["results"] == {"accuracy": 71.2}


# ---------------------------------------------------------------- a real full disk


def test_a_disk_full_at_start_gives_the_documented_line(files, toy_run, tmp_path):
    root, _ = toy_run
    with tiny_filesystem(tmp_path / "disk", size="512k") as disk:
        fill(disk)
        out = disk / "run"
        result = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), *toy_argv(files, root, out)],
                                cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"train.py: error: [Errno {errno.ENOSPC}] No space left on device while writing {out / 'log.txt'}; the previous "
        "version of that file (if any) is intact. Free some disk space and run again (training resumes from the last "
        "checkpoint)."
    ]


def test_a_disk_that_fills_during_training_gives_the_documented_line(files, toy_run, tmp_path, monkeypatch):
    root, _ = toy_run
    real_save = trainer_base.save_checkpoint

    def save_then_fill(state, save_dir, **kwargs):
        path = real_save(state, save_dir, **kwargs)
        fill(os.path.dirname(os.path.dirname(save_dir)))
        return path

    monkeypatch.setattr(trainer_base, "save_checkpoint", save_then_fill)
    with tiny_filesystem(tmp_path / "disk", size="4m") as disk:
        out = disk / "run"
        line = run_cli(monkeypatch, toy_argv(files, root, out, "OPTIM.MAX_EPOCH", "2"))
        assert line == (
            f"train.py: error: [Errno {errno.ENOSPC}] No space left on device while writing "
            f"{out / 'classifier' / 'model.pth.tar-2'}; the previous version of that file (if any) is intact. Free some "
            "disk space and run again (training resumes from the last checkpoint)."
        )
        assert (out / "classifier" / "checkpoint").read_text() == "model.pth.tar-1\n"
        assert sorted(os.listdir(out / "classifier")) == ["checkpoint", "model.pth.tar-1"]
        assert not is_run_done(out)
    assert issubclass(DiskFullError, OSError)
