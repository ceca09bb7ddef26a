"""Checkpoints: plain content, weights_only loading, atomic writes, clear full-disk errors."""
import errno
import fractions
import os

import pytest
import torch

from dassl.utils import load_checkpoint, load_pretrained_weights, resume_from_checkpoint, save_checkpoint
from tests.helpers.disk_full import fail_writes


def make_state(epoch, value=1.0):
    model = torch.nn.Linear(2, 2)
    torch.nn.init.constant_(model.weight, value)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    state = {
        "state_dict": model.state_dict(),
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": None,
        "val_result": None,
    }
    return model, optimizer, state


def test_saved_checkpoint_loads_with_weights_only_and_updates_pointer(tmp_path):
    model, optimizer, state = make_state(3)
    path = save_checkpoint(state, str(tmp_path / "learner"))
    assert path.endswith("model.pth.tar-3")
    assert (tmp_path / "learner" / "checkpoint").read_text() == "model.pth.tar-3\n"
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["state_dict"]["weight"], model.weight.detach())
    fresh = torch.nn.Linear(2, 2)
    assert resume_from_checkpoint(str(tmp_path / "learner"), fresh) == 3
    assert torch.equal(fresh.weight, model.weight)


def test_best_save_keeps_the_pointer_on_the_last_regular_checkpoint(tmp_path):
    _, _, state = make_state(2)
    save_checkpoint(state, str(tmp_path))
    save_checkpoint({**state, "val_result": 80.0}, str(tmp_path), model_name="model-best.pth.tar")
    assert (tmp_path / "checkpoint").read_text() == "model.pth.tar-2\n"
    assert load_checkpoint(str(tmp_path / "model-best.pth.tar"))["val_result"] == 80.0


def test_objects_that_weights_only_cannot_load_are_refused_before_writing(tmp_path):
    _, _, state = make_state(1)
    state["scheduler"] = {"inner": object()}
    with pytest.raises(TypeError, match=r"checkpoint\['scheduler'\]\['inner'\].*weights_only"):
        save_checkpoint(state, str(tmp_path))
    assert not os.listdir(tmp_path)


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    _, _, first = make_state(1, value=1.0)
    path = save_checkpoint(first, str(tmp_path), model_name="model.pth.tar-1")
    original = open(path, "rb").read()
    fail_writes(monkeypatch, ["model.pth.tar-1"])
    _, _, second = make_state(1, value=2.0)
    with pytest.raises(OSError, match=r"No space left.*model\.pth\.tar-1.*intact") as info:
        save_checkpoint(second, str(tmp_path), model_name="model.pth.tar-1")
    assert info.value.errno == errno.ENOSPC
    assert open(path, "rb").read() == original
    assert os.listdir(tmp_path) == ["model.pth.tar-1"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_checkpoint(str(tmp_path / "nothing.pth"))
    pickled = tmp_path / "pickled.pth"
    torch.save({"scheduler": fractions.Fraction(1, 3)}, pickled)
    with pytest.raises(RuntimeError, match="pickled.pth.*weights_only"):
        load_checkpoint(str(pickled))


def test_pretrained_weights_load_by_matching_name_and_shape(tmp_path, capsys):
    source = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 3))
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pth")
    target = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 5))
    load_pretrained_weights(target, str(tmp_path / "w.pth"))
    assert torch.equal(target[0].weight, source[0].weight)
    assert "1.weight" in capsys.readouterr().out
