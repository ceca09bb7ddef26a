"""docs/new_method.md's example, docs/examples/anchored_coop.py, runs through train.py --import:
with W = 0 it is CoOp to the last bit; with W > 0 its loss term holds the context near its start;
a bad W is one config error before anything is read."""
import pytest
import torch

import clip
import train
from dassl.config import ConfigError
from trainers.common.prompt_learner import context_from_words
from tests.helpers.tiny_clip import single_threaded_torch
from tests.helpers.trainer_runs import REPO, base2new_argv, write_colour_images, write_tiny_clip_checkpoint

EXAMPLE = f"{REPO}/docs/examples/anchored_coop.py"
IMPORTS = ["--import", "trainers.coop", "--import", "datasets.image_folder", "--import", EXAMPLE]
RUN = ["OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0", "OPTIM.LR", "0.05", "DATASET.NUM_SHOTS", "2",
       "DATALOADER.TRAIN_X.BATCH_SIZE", "2"]
COOP = ["TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.CTX_INIT", "a photo of a"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")), per_class=4)
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")


def run(assets, out, trainer, opts):
    root, clip_path = assets
    argv = base2new_argv(trainer, "CoOp/vit_b16_ep50", root, clip_path, out, "base", [*RUN, *opts])
    with single_threaded_torch():
        results = train.main([*IMPORTS, *argv], plugin_folders=())
    ctx = torch.load(out / "prompt_learner/model.pth.tar-2", map_location="cpu", weights_only=True)["state_dict"]["ctx"]
    return results, ctx


def anchored(weight):
    return ["TRAINER.ANCHORED.PREC", "fp32", "TRAINER.ANCHORED.W", str(weight)]


@pytest.fixture(scope="module")
def coop_run(assets, tmp_path_factory):
    return run(assets, tmp_path_factory.mktemp("coop") / "out", "CoOp", COOP)


def test_weight_zero_is_coop_bit_for_bit(assets, coop_run, tmp_path):
    results, ctx = run(assets, tmp_path / "out", "AnchoredCoOp", anchored(0))
    coop_results, coop_ctx = coop_run
    assert torch.equal(ctx, coop_ctx)
    assert results == coop_results


def initial_context(clip_path):
    """The embeddings of "a photo of a", where both runs' context starts."""
    model, _ = clip.load(str(clip_path), device="cpu", jit=False)
    return context_from_words(model.float(), "a photo of a")[0]


def test_the_anchor_term_holds_the_context_near_its_start(assets, coop_run, tmp_path):
    _, ctx = run(assets, tmp_path / "out", "AnchoredCoOp", anchored(50))
    _, coop_ctx = coop_run
    start = initial_context(assets[1])
    assert (ctx - start).norm() < 0.5 * (coop_ctx - start).norm()
    assert "loss_anchor" in (tmp_path / "out/log.txt").read_text()


def test_a_bad_weight_is_one_config_error_before_the_run_folder(assets, tmp_path):
    root, clip_path = assets
    argv = base2new_argv("AnchoredCoOp", "CoOp/vit_b16_ep50", root, clip_path, tmp_path / "out", "base",
                         ["TRAINER.ANCHORED.W", "-1.0"])
    with pytest.raises(ConfigError, match=r"^TRAINER\.ANCHORED\.W must be >= 0 \(0 is CoOp\), got -1\.0$"):
        train.main([*IMPORTS, *argv], plugin_folders=())
    assert not (tmp_path / "out").exists()
