"""No code runs while a CLIP checkpoint loads: TorchScript only when released by OpenAI or trusted."""
from typing import Tuple

import pytest
import torch
from torch import nn

import clip
import train
from clip import loader
from dassl.utils.errors import BackboneLoadError
from tests.helpers.tiny_clip import make_tiny_clip, save_openai_checkpoint
from tests.helpers.trainer_runs import base2new_argv

MARKER = "PAYLOAD RAN"


class Payload(nn.Module):
    """A TorchScript module whose __setstate__ runs (prints) while the archive loads."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return (self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
        print("PAYLOAD RAN")
        self.weight = state[0]
        self.training = state[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    path = tmp_path_factory.mktemp("payload") / "clip.pt"
    torch.jit.save(torch.jit.script(Payload()), str(path))
    return path


def test_the_payload_runs_code_when_torch_loads_it(payload, capfd):
    torch.jit.load(str(payload))
    assert MARKER in capfd.readouterr().out


def test_untrusted_torchscript_is_refused_before_anything_runs(payload, capfd):
    with pytest.raises(loader.UntrustedCheckpointError) as error:
        clip.load(str(payload))
    message = str(error.value)
    assert "\n" not in message
    assert "is a TorchScript archive that is not one of OpenAI's released CLIP checkpoints" in message
    assert "MODEL.BACKBONE.TRUST_TORCHSCRIPT True" in message
    assert MARKER not in capfd.readouterr().out


def test_train_py_refuses_the_payload_in_one_line_before_reading_data(payload, tmp_path, capfd):
    no_data = tmp_path / "no_data"  # an empty root: the backbone is checked before the dataset is looked for
    no_data.mkdir()
    argv = base2new_argv("CoOp", "CoOp/vit_b16_ep50", no_data, payload, tmp_path / "out", "base")
    with pytest.raises(BackboneLoadError, match=r"^Cannot load the CLIP backbone .*not one of OpenAI's released"):
        train.main(["--import", "trainers.coop", "--import", "datasets.image_folder", *argv], plugin_folders=())
    assert MARKER not in capfd.readouterr().out


def test_torchscript_with_a_released_sha256_or_explicit_trust_loads(tmp_path, monkeypatch):
    path = save_openai_checkpoint(make_tiny_clip(), tmp_path / "tiny.pt", fmt="torchscript")
    with pytest.raises(loader.UntrustedCheckpointError):
        loader.read_state_dict(path)
    assert "text_projection" in loader.read_state_dict(path, trust_torchscript=True)
    monkeypatch.setattr(loader, "_OPENAI_SHA256", loader._OPENAI_SHA256 | {loader.file_sha256(path)})
    assert "text_projection" in loader.read_state_dict(path)


def test_pickled_python_objects_are_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(make_tiny_clip(), path)
    with pytest.raises(loader.UntrustedCheckpointError, match="holds Python objects besides tensors"):
        clip.load(str(path))
