"""Every trainer trains one step and evaluates on open_clip backbones through train.py, and the
backbone's normalisation and unsupported architectures are checked before any work starts."""
import json
import math

import pytest
import torch

import train
from clip import open_clip_adapter
from dassl.config import ConfigError
from dassl.utils.errors import BackboneLoadError
from tests.helpers.tiny_open_clip import make_open_clip_model, register_tiny_configs, save_open_clip_weights
from tests.helpers.trainer_runs import base2new_argv, write_colour_images
from tests.test_tgpt_train import write_captions

pytest.importorskip("open_clip")

ONE_STEP = ["OPTIM.MAX_EPOCH", "1", "OPTIM.WARMUP_EPOCH", "0", "DATASET.NUM_SHOTS", "2",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "6"]
VISUAL_PROMPTS = ["TRAINER.VPT.N_CTX", "2", "TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT", "1", "TRAINER.SELECTED_COVPT.CPN", "2",
                  "TRAINER.DPT.N_KEY_TOKENS", "3", "PRETRAIN.C", "1"]
TRAINERS = {
    "ZeroshotCLIP": ("CoOp/vit_b16", ["TRAINER.COOP.PREC", "fp32"]),
    "CoOp": ("CoOp/vit_b16_ep50", ["TRAINER.COOP.PREC", "fp32", *ONE_STEP]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.PREC", "fp32", *ONE_STEP]),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32", *ONE_STEP]),
    "TextRefiner": ("TextRefiner/vit_b16_ep10_ctxv1", ["TRAINER.COOP.PREC", "fp32", *ONE_STEP]),
    "DPT": ("DPT/vit_b16", ["TRAINER.COOP.PREC", "fp32", *ONE_STEP, *VISUAL_PROMPTS]),
    "VPT": ("VPT/vit_b16", ["TRAINER.COOP.PREC", "fp32", *ONE_STEP, *VISUAL_PROMPTS]),
    "VLP": ("VLP/vit_b16", ["TRAINER.COOP.PREC", "fp32", *ONE_STEP, *VISUAL_PROMPTS]),
    "TGPT": ("TGPT/vit_b16_caltech101", [
        "TRAINER.TGPT.PREC", "fp32", "OPTIM.MAX_ITER", "1", "OPTIM.WARMUP_ITER", "0", "TRAIN.VAL_FREQ", "1",
        "TRAIN.CHECKPOINT_FREQ", "1", "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATASET.NUM_SHOTS", "2",
        "TRAINER.TGPT.N_Q_CONTENT", "16",
    ]),
}
RESNET_TRAINERS = ("ZeroshotCLIP", "CoOp", "KgCoOp", "CoCoOp")  # the others need a ViT's tokens or blocks
RUNS = [(trainer, backbone) for backbone in ("Tiny-ViT-GELU", "Tiny-ViT-QuickGELU") for trainer in TRAINERS]
RUNS += [(trainer, "Tiny-RN") for trainer in RESNET_TRAINERS]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Colour images with captions, and name -> open_clip weights file of each tiny backbone."""
    root = tmp_path_factory.mktemp("data")
    write_colour_images(str(root), per_class=6)
    write_captions(str(root / "colours"))
    register_tiny_configs(tmp_path_factory.mktemp("configs"))
    folder = tmp_path_factory.mktemp("weights")
    files = {name: save_open_clip_weights(make_open_clip_model(name), folder / f"{name}.bin")
             for name in ("Tiny-ViT-GELU", "Tiny-ViT-QuickGELU", "Tiny-RN")}
    return root, files


def run(assets, out, trainer, backbone, opts=(), clip_path=None):
    root, files = assets
    config, trainer_opts = TRAINERS[trainer]
    argv = base2new_argv(trainer, config, root, clip_path or files[backbone], out, "base",
                         [*trainer_opts, "MODEL.BACKBONE.NAME", backbone, *opts])
    if trainer == "ZeroshotCLIP":
        argv = ["--eval-only", *argv]
    return train.main(argv, plugin_folders=train.PLUGIN_FOLDERS)


@pytest.mark.parametrize("trainer, backbone", RUNS)
def test_trainer_trains_and_evaluates_on_open_clip_backbone(assets, tmp_path, monkeypatch, trainer, backbone):
    loaded = []
    load = open_clip_adapter.load
    monkeypatch.setattr(open_clip_adapter, "load", lambda source, *args: loaded.append(source) or load(source, *args))
    results = run(assets, tmp_path, trainer, backbone)
    log = (tmp_path / "log.txt").read_text()
    assert [source.architecture for source in loaded] == [backbone]
    assert math.isfinite(results["accuracy"]) and json.loads((tmp_path / "done.json").read_text())
    assert ("Finish training" in log) == (trainer != "ZeroshotCLIP")


def test_fp16_runs_the_fp32_open_clip_weights_in_half_precision(assets, tmp_path, monkeypatch):
    built = []
    load = open_clip_adapter.load
    monkeypatch.setattr(open_clip_adapter, "load", lambda source, *args: built.append(load(source, *args)) or built[-1])
    results = run(assets, tmp_path, "CoOp", "Tiny-ViT-GELU", ["TRAINER.COOP.PREC", "fp16"])
    assert math.isfinite(results["accuracy"])
    assert built[0].dtype == torch.float16


def test_normalisation_other_than_the_backbones_is_refused(assets, tmp_path, monkeypatch):
    import open_clip

    real = open_clip.get_pretrained_cfg
    stub = {"url": "", "hf_hub": "", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    monkeypatch.setattr(open_clip, "get_pretrained_cfg",
                        lambda model, tag: dict(stub) if tag == "halves" else real(model, tag))
    _, files = assets
    with pytest.raises(ConfigError) as error:
        run(assets, tmp_path / "a", "CoOp", "Tiny-ViT-GELU/halves", clip_path=files["Tiny-ViT-GELU"])
    assert str(error.value).startswith(
        "INPUT.PIXEL_MEAN is [0.48145466, 0.4578275, 0.40821073] but Tiny-ViT-GELU/halves was trained with "
        "[0.5, 0.5, 0.5]; set INPUT.PIXEL_MEAN [0.5, 0.5, 0.5] and INPUT.PIXEL_STD [0.25, 0.25, 0.25]"
    )
    fixed = ["INPUT.PIXEL_MEAN", "[0.5, 0.5, 0.5]", "INPUT.PIXEL_STD", "[0.25, 0.25, 0.25]"]
    results = run(assets, tmp_path / "b", "CoOp", "Tiny-ViT-GELU/halves", fixed, clip_path=files["Tiny-ViT-GELU"])
    assert math.isfinite(results["accuracy"])


def test_unsupported_architecture_fails_before_the_dataset_is_read(assets, tmp_path):
    with pytest.raises(BackboneLoadError, match=(
        r"^Cannot load the CLIP backbone \(MODEL.BACKBONE.NAME / PATH\): open_clip model ViT-B-16-SigLIP cannot run "
        r"on this toolkit's CLIP hooks: .*vision_cfg.timm_model_name"
    )):
        run(assets, tmp_path / "missing_data" / "out", "CoOp", "ViT-B-16-SigLIP",
            clip_path=assets[1]["Tiny-ViT-GELU"])


def _zero_shot_run(assets, out, trainer, opts=()):
    root, files = assets
    argv = base2new_argv(trainer, "CoOp/vit_b16", root, files["Tiny-ViT-GELU"], out, "base",
                         ["TRAINER.COOP.PREC", "fp32", "MODEL.BACKBONE.NAME", "Tiny-ViT-GELU", *opts])
    train.main(["--eval-only", *argv], plugin_folders=train.PLUGIN_FOLDERS)
    return [line for line in (out / "log.txt").read_text().splitlines() if line.startswith("Zero-shot templates:")]


@pytest.mark.parametrize("trainer, opts, expected", [
    ("ZeroshotCLIP", [], "dataset (ZeroshotCLIP's default on open_clip backbones)"),
    ("ZeroshotCLIP2", [], "imagenet_80 (ZeroshotCLIP2's default on open_clip backbones)"),
    ("ZeroshotCLIP2", ["TRAINER.ZSCLIP.TEMPLATES", "imagenet_select"], "imagenet_select (set by TRAINER.ZSCLIP.TEMPLATES)"),
])
def test_zero_shot_log_names_the_template_set_and_the_open_clip_backbone(assets, tmp_path, trainer, opts, expected):
    counts = {"dataset": 1, "imagenet_80": 81, "imagenet_select": 8}
    [line] = _zero_shot_run(assets, tmp_path, trainer, opts)
    set_name = expected.split()[0]
    assert line.startswith(f"Zero-shot templates: {expected} for backbone Tiny-ViT-GELU, from ")
    assert f"(open_clip), {counts[set_name]} template(s): " in line


def test_unknown_template_set_is_refused_with_the_closest_name(assets, tmp_path):
    with pytest.raises(ConfigError, match=r'^TRAINER.ZSCLIP.TEMPLATES must be one of dataset, imagenet_select, '
                                          r'imagenet_80; got \'imagenet80\'. Did you mean "imagenet_80"\?'):
        _zero_shot_run(assets, tmp_path, "ZeroshotCLIP2", ["TRAINER.ZSCLIP.TEMPLATES", "imagenet80"])
