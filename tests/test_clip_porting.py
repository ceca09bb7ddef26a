"""A trainer file written for the CoOp codebase runs here unchanged but for its backbone loader."""
import pytest
import torch

import clip
import train
from dassl.utils import is_run_done
from tests.helpers.tiny_clip import make_tiny_clip, randomize_, single_threaded_torch
from tests.helpers.trainer_runs import (
    REPO,
    base2new_argv,
    logged_epoch_numbers,
    write_colour_images,
    write_tiny_clip_checkpoint,
)

PORTED = f"{REPO}/docs/examples/ported_coop.py"
RUN_OPTS = [
    "TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CTX_INIT", "", "OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0",
    "DATASET.NUM_SHOTS", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "2",
]


@pytest.fixture(scope="module")
def ported():
    from dassl.utils.plugins import import_module_or_file

    return import_module_or_file(PORTED)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")))
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")


def run(assets, out, trainer, prec, phase="base", model_dir=None):
    root, clip_path = assets
    argv = base2new_argv(trainer, "CoOp/vit_b16_ep50", root, clip_path, out, phase,
                         [*RUN_OPTS, "TRAINER.COOP.PREC", prec], model_dir=model_dir, load_epoch=2 if model_dir else None)
    imports = ["--import", "trainers.coop", "--import", "datasets.image_folder", "--import", PORTED]
    with single_threaded_torch():
        return train.main([*imports, *argv], plugin_folders=())


def test_upstream_names_import():
    from clip import clip as clip_module
    from clip.simple_tokenizer import SimpleTokenizer
    from dassl.engine import TRAINER_REGISTRY, TrainerX  # noqa: F401
    from dassl.metrics import compute_accuracy  # noqa: F401
    from dassl.optim import build_lr_scheduler, build_optimizer  # noqa: F401
    from dassl.utils import load_checkpoint, load_pretrained_weights  # noqa: F401

    ids = SimpleTokenizer().encode("a photo of a dog.")
    assert clip_module.tokenize("a photo of a dog.")[0, 1 : 1 + len(ids)].tolist() == ids
    assert SimpleTokenizer().decode(ids) == "a photo of a dog . "
    assert clip_module.load is clip.load and "ViT-B/16" in clip_module._MODELS


def test_local_model_names_have_no_url_and_say_what_to_use():
    from clip import clip as clip_module

    with pytest.raises(KeyError, match="'MiniCLIP' has no OpenAI download URL.*from trainers.common.backbone import load_clip_to_cpu"):
        clip_module._MODELS["MiniCLIP"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_upstream_text_encoder_equals_encode_text(ported, dtype):
    model = randomize_(make_tiny_clip(), seed=5).to(dtype)
    ids = clip.tokenize(["a photo of a dog.", "x", "an origami crane on a red table"])
    with torch.no_grad():
        upstream = ported.TextEncoder(model)(model.token_embedding(ids).type(dtype), ids)
        expected = model.encode_text(ids)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-3
    torch.testing.assert_close(upstream, expected, atol=tolerance, rtol=tolerance)


def test_public_transformer_call_is_sequence_first_and_causal_for_text():
    model = randomize_(make_tiny_clip(), seed=6)
    x = torch.randn(2, 9, model.transformer.width)
    with torch.no_grad():
        public = model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        torch.testing.assert_close(public, model.transformer(x, batch_first=True))
        assert not torch.allclose(public, model.transformer(x, batch_first=True, causal=False))
        images = model.visual.embed(torch.randn(2, 3, 32, 32))
        visual = model.visual.transformer(images.permute(1, 0, 2)).permute(1, 0, 2)
        torch.testing.assert_close(visual, model.visual.transformer(images, batch_first=True))
    with pytest.raises(TypeError, match="without batch_first=True"):
        model.transformer(x, causal=True)  # the old batch-first call must not pass as the sequence-first one


def test_ported_trainer_trains_to_the_built_in_coop_numbers(assets, tmp_path):
    built_in = run(assets, tmp_path / "builtin", "CoOp", "fp32")
    ported_result = run(assets, tmp_path / "ported", "PortedCoOp", "fp32")
    logs = [logged_epoch_numbers((tmp_path / name / "log.txt").read_text()) for name in ("builtin", "ported")]
    assert len(logs[0]) == 6 and logs[0] == logs[1]
    assert ported_result == built_in
    contexts = [torch.load(tmp_path / name / "prompt_learner" / "model.pth.tar-2", weights_only=True)["state_dict"]["ctx"]
                for name in ("builtin", "ported")]
    torch.testing.assert_close(contexts[1], contexts[0], atol=1e-6, rtol=0)
    new_classes = [run(assets, tmp_path / f"{name}_new", trainer, "fp32", "new", tmp_path / name)
                   for name, trainer in (("builtin", "CoOp"), ("ported", "PortedCoOp"))]
    assert new_classes[0] and new_classes[1] == new_classes[0]


def test_ported_trainer_runs_in_amp(assets, tmp_path):
    run(assets, tmp_path / "amp", "PortedCoOp", "amp")
    assert is_run_done(tmp_path / "amp")


def test_ported_trainer_runs_in_fp16(assets, tmp_path):
    run(assets, tmp_path / "fp16", "PortedCoOp", "fp16")
    assert is_run_done(tmp_path / "fp16")
