"""Seeded CPU runs are reproducible: two CoOp runs log the same numbers, and a run killed
after epoch 1 of 2 and resumed ends exactly where an uninterrupted run does.

CoOp trains for real (tiny CLIP via MODEL.BACKBONE.PATH, colour image folder,
fp32, random crops and flips, shuffled batches) through `train.main`.
"""

import pytest
import torch

import train
from dassl.utils import is_run_done
from tests.helpers.trainer_runs import (
    base2new_argv,
    killed_after,
    logged_epoch_numbers,
    write_colour_images,
    write_tiny_clip_checkpoint,
)

RUN_OPTS = [
    "TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CTX_INIT", "",
    "OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0", "TRAIN.CHECKPOINT_FREQ", "1",
    "DATASET.NUM_SHOTS", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "2",
]



@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")))
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")


def run_coop(assets, out):
    root, clip_path = assets
    argv = base2new_argv("CoOp", "CoOp/vit_b16_ep50", root, clip_path, out, "base", RUN_OPTS)
    return train.main(["--import", "trainers.coop", "--import", "datasets.image_folder", *argv], plugin_folders=())


def logged_numbers(out):
    """The epoch lines (loss, acc, lr; times and eta removed) and the result block of log.txt."""
    log = (out / "log.txt").read_text()
    return logged_epoch_numbers(log), [line for line in log.splitlines() if line.startswith("* ")]


def final_context(out):
    return torch.load(out / "prompt_learner" / "model.pth.tar-2", weights_only=True)["state_dict"]["ctx"]


@pytest.fixture(scope="module")
def reference(assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return out, run_coop(assets, out)


def test_two_seeded_runs_log_identical_numbers(assets, reference, tmp_path):
    ref_out, ref_results = reference
    results = run_coop(assets, tmp_path / "again")
    epochs, result_lines = logged_numbers(tmp_path / "again")
    assert len(epochs) == 6, "2 epochs x 3 batches (3 base classes x 2 shots, batch size 2)"
    assert any(line.startswith("* accuracy: ") for line in result_lines)
    assert (epochs, result_lines) == logged_numbers(ref_out)
    assert results == ref_results
    assert torch.equal(final_context(tmp_path / "again"), final_context(ref_out))


def test_run_killed_after_epoch_one_resumes_to_the_uninterrupted_result(assets, reference, tmp_path):
    from trainers.coop import CoOp

    ref_out, ref_results = reference
    out = tmp_path / "killed"
    with killed_after(CoOp, "after_epoch", lambda trainer: trainer.epoch == 0), pytest.raises(KeyboardInterrupt):
        run_coop(assets, out)
    assert not is_run_done(out)
    assert (out / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-1\n"

    results = run_coop(assets, out)

    log = (out / "log.txt").read_text()
    assert "Previous epoch: 1" in log and "KeyboardInterrupt: simulated kill" in log
    assert logged_numbers(out) == logged_numbers(ref_out)
    assert results == ref_results
    assert torch.equal(final_context(out), final_context(ref_out))
    assert is_run_done(out)


def test_a_cold_feature_cache_does_not_change_the_run(assets, tmp_path, monkeypatch):
    """best_val evaluates the val split after every epoch: encoding it on a cache miss must not
    shift the random stream that the next epoch's augmentations draw from."""
    logs = []
    for name in ("cold", "warm"):
        monkeypatch.setenv("CLIP_PROMPT_TOOLKIT_CACHE", str(tmp_path / "cache"))
        root, clip_path = assets
        out = tmp_path / name
        argv = base2new_argv("CoOp", "CoOp/vit_b16_ep50", root, clip_path, out, "base",
                             RUN_OPTS + ["TEST.FINAL_MODEL", "best_val", "INPUT.TRANSFORMS",
                                         '["random_resized_crop", "random_flip", "normalize"]'])
        train.main(["--import", "trainers.coop", "--import", "datasets.image_folder", *argv], plugin_folders=())
        logs.append(logged_numbers(out))
    assert "read from the cache" in (tmp_path / "warm" / "log.txt").read_text()
    assert "read from the cache" not in (tmp_path / "cold" / "log.txt").read_text().split("epoch [2/2]")[0]
    assert logs[0] == logs[1]
