"""bench/train_speed.py counts what its memory comparison claims: text-encoder sequences per training step."""
from argparse import Namespace

import pytest
import torch

from bench.train_speed import measure


@pytest.mark.parametrize("trainer", ["CoOp", "TGPT"])
def test_text_sequences_per_training_step(trainer):
    """CoOp encodes one prompt per class; TGP-T two prompts per image, whatever the number of classes."""
    args = Namespace(backbone="tiny", device=torch.device("cpu"), prec="fp32", steps=1, warmup=0, threads=None)
    for classes, batch in ((5, 2), (11, 3)):
        result = measure(trainer, args, classes, batch, baseline=False)
        assert result["text_sequences_per_step"] == {"CoOp": classes, "TGPT": 2 * batch}[trainer]
