"""bench/train_speed.py measures what it claims: the baseline does the upstream amount of work
and computes the same numbers as the fast implementation; the sequence counts are right."""
from argparse import Namespace

import pytest
import torch

from bench.train_speed import TRAINERS, BenchSetup, counting_text_sequences, measure

ARGS = Namespace(backbone="tiny", device=torch.device("cpu"), prec="fp32", steps=1, warmup=0, threads=None)


@pytest.mark.parametrize("trainer", ["CoOp", "TGPT"])
def test_text_sequences_per_training_step(trainer):
    """CoOp encodes one prompt per class; TGP-T two prompts per image, whatever the number of classes."""
    for classes, batch in ((5, 2), (11, 3)):
        result = measure(trainer, ARGS, classes, batch, baseline=False)
        assert result["text_sequences_per_step"] == {"CoOp": classes, "TGPT": 2 * batch}[trainer]


@pytest.mark.parametrize("trainer", [t for t in TRAINERS if t not in ("ZeroshotCLIP", "VPT")])
def test_baseline_runs_all_77_positions_and_fast_runs_fewer(trainer):
    """(ZeroshotCLIP does not train; VPT's class texts are fixed, encoded before training.)"""
    positions = {}
    for baseline in (False, True):
        setup = BenchSetup(trainer, ARGS, 6, 2, baseline)
        setup.train_mode()
        with counting_text_sequences(setup.clip_model) as shapes:
            setup.train_step()
        positions[baseline] = {length for _, length in shapes}
    assert positions[True] == {77}
    assert max(positions[False]) < 77


@pytest.mark.parametrize("trainer", TRAINERS)
def test_baseline_and_fast_evaluation_give_the_same_logits(trainer):
    """Same weights, same images: the extra work of the baseline changes no number."""
    outputs = []
    for baseline in (False, True):
        setup = BenchSetup(trainer, ARGS, 6, 3, baseline)
        setup.eval_mode()
        with setup.evaluation_scope():
            output = setup.eval_step()
        outputs.append(output[0] if isinstance(output, tuple) else output)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)


def test_peak_tensor_bytes_counts_storages_alive_at_once():
    from bench.work_count import PeakTensorBytes

    before = torch.zeros(1000)
    with PeakTensorBytes([before]) as memory:
        first = before + 1
        second = first * 2
        view = second[:10]
        del first, second, view
        third = before + 2
    assert memory.start == 4000
    assert memory.peak == 12000  # `before`, `first` and `second`; the view adds nothing, `third` reuses freed room
    del third


def test_counted_work_and_memory_of_the_baseline_exceed_the_fast_path():
    from bench.work_count import count

    fast, base = (count("CoOp", ARGS, 6, 2, baseline) for baseline in (False, True))
    assert base["train_gflop"] > 1.5 * fast["train_gflop"]
    assert base["peak_gib"] > fast["peak_gib"]


@pytest.mark.parametrize("trainer", ["CoOp", "CoCoOp"])
def test_cached_views_steps_never_run_the_image_tower(trainer):
    args = Namespace(**vars(ARGS), cached_views=True)
    setup = BenchSetup(trainer, args, 6, 2, baseline=False)
    setup.train_mode()
    calls = []
    handle = setup.clip_model.visual.register_forward_pre_hook(lambda *_: calls.append(1))
    setup.train_step()
    handle.remove()
    assert calls == []
    assert not BenchSetup(trainer, args, 6, 2, baseline=True).cached_views, "the baseline always runs the tower"
