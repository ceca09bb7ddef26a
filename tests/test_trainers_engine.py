"""Trainer-level tests through the Dassl engine, on a generated colour image folder and a tiny CLIP (CPU).

The data: one solid colour (plus noise) per class, read by ImageFolderDataset,
so the base/new split (first/second half of the classes) is the real one.
"""
import math
import os

import pytest
import torch

import datasets.image_folder  # noqa: F401  (registers ImageFolderDataset)
import trainers.cocoop  # noqa: F401  (registers the trainers and their config nodes)
import trainers.coop  # noqa: F401
import trainers.kgcoop  # noqa: F401
import trainers.zsclip  # noqa: F401
from dassl.config import apply_cfg_extensions, get_cfg_default, merge_from_file, merge_from_list
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from tests.helpers.trainer_runs import REPO, write_colour_images, write_tiny_clip_checkpoint, tiny_opts

@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_colour_images(str(root))
    clip_path = write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt", embed_dim=128)
    return str(root), clip_path


def make_cfg(trainer, config, root, clip_path, output_dir, opts=()):
    cfg = apply_cfg_extensions(get_cfg_default())
    merge_from_file(cfg, os.path.join(REPO, "configs/datasets/image_folder.yaml"))
    merge_from_file(cfg, os.path.join(REPO, f"configs/trainers/{config}.yaml"))
    merge_from_list(
        cfg,
        ["TRAINER.NAME", trainer, "DATASET.ROOT", root, "OUTPUT_DIR", str(output_dir), "SEED", "1"]
        + tiny_opts(clip_path)
        + list(opts),
    )
    set_random_seed(cfg.SEED)  # as train.py does before building the trainer (the few-shot sample uses it)
    return cfg


def record_training(trainer):
    """Wrap forward_backward to keep every batch summary, tagged with its epoch."""
    history = []
    step = trainer.forward_backward

    def recording_step(batch):
        summary = step(batch)
        history.append((trainer.epoch, summary["loss"], summary["acc"]))
        return summary

    trainer.forward_backward = recording_step
    return history


def epoch_means(history, epoch):
    rows = [(loss, acc) for e, loss, acc in history if e == epoch]
    return sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows) / len(rows)


LEARNING_SETUPS = {
    "CoOp": ("CoOp/vit_b16_ep50", ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CSC", "True", "TRAINER.COOP.PREC", "fp32"]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.W", "1.0", "TRAINER.COOP.PREC", "fp32"]),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
}


def learning_opts(seed):
    """6 short epochs on the base classes; Adam keeps the tiny random backbone's optimisation robust."""
    return [
        "SEED", str(seed),
        "OPTIM.NAME", "adam",
        "OPTIM.LR", "0.01",
        "OPTIM.MAX_EPOCH", "6",
        "OPTIM.WARMUP_EPOCH", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
        "DATASET.NUM_SHOTS", "4",
        "DATASET.SUBSAMPLE_CLASSES", "base",
        "TEST.NO_TEST", "True",
    ]


@pytest.mark.parametrize("trainer_name", sorted(LEARNING_SETUPS))
def test_loss_falls_and_base_accuracy_rises(assets, tmp_path, trainer_name):
    root, clip_path = assets
    config, extra = LEARNING_SETUPS[trainer_name]
    trainer = build_trainer(make_cfg(trainer_name, config, root, clip_path, tmp_path, learning_opts(1) + extra))
    history = record_training(trainer)
    before = trainer.test()
    trainer.train()
    after = trainer.test()
    first_loss, first_acc = epoch_means(history, 0)
    last_loss, last_acc = epoch_means(history, 5)
    assert last_loss < 0.7 * first_loss
    assert last_acc >= first_acc + 20
    assert after >= before + 30


def short_opts(subsample="base", epochs=1):
    return [
        "OPTIM.MAX_EPOCH", str(epochs),
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
        "DATASET.NUM_SHOTS", "2",
        "DATASET.SUBSAMPLE_CLASSES", subsample,
        "TEST.NO_TEST", "True",
    ]


FP32 = {
    "CoOp": ("CoOp/vit_b16_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
}


@pytest.mark.parametrize("trainer_name", sorted(FP32))
def test_base_trained_prompts_evaluate_on_new_classes(assets, tmp_path, trainer_name):
    root, clip_path = assets
    config, extra = FP32[trainer_name]
    base = build_trainer(make_cfg(trainer_name, config, root, clip_path, tmp_path / "base", short_opts() + extra))
    base.train()
    new = build_trainer(make_cfg(trainer_name, config, root, clip_path, tmp_path / "new", short_opts("new") + extra))
    assert set(new.dm.dataset.classnames).isdisjoint(base.dm.dataset.classnames)
    new.load_model(str(tmp_path / "base"), epoch=1)
    trained, loaded = base.custom_clip.prompt_learner.state_dict(), new.custom_clip.prompt_learner.state_dict()
    for key in trained:
        if key not in ("token_prefix", "token_suffix"):
            assert torch.equal(trained[key], loaded[key]), key
    assert not torch.equal(trained["token_suffix"], loaded["token_suffix"])
    if trainer_name == "KgCoOp":
        assert new.custom_clip.anchor_features.shape[0] == len(new.dm.dataset.classnames)
    assert 0.0 <= new.test() <= 100.0


def test_checkpoint_of_another_trainer_is_refused(assets, tmp_path):
    root, clip_path = assets
    config, extra = FP32["CoCoOp"]
    build_trainer(make_cfg("CoCoOp", config, root, clip_path, tmp_path / "cocoop", short_opts() + extra)).train()
    coop_config, coop_extra = FP32["CoOp"]
    coop = build_trainer(make_cfg("CoOp", coop_config, root, clip_path, tmp_path / "coop", short_opts() + coop_extra))
    with pytest.raises(ValueError, match="meta_net.*another trainer"):
        coop.load_model(str(tmp_path / "cocoop"), epoch=1)
    with pytest.raises(FileNotFoundError, match="model.pth.tar-1.*--load-epoch"):
        coop.load_model(str(tmp_path / "cocoop"), epoch=7)


@pytest.mark.parametrize("trainer_name", sorted(FP32))
def test_non_finite_loss_stops_the_run_with_a_hint(assets, tmp_path, trainer_name):
    root, clip_path = assets
    config, extra = FP32[trainer_name]
    trainer = build_trainer(make_cfg(trainer_name, config, root, clip_path, tmp_path, short_opts() + extra))
    with torch.no_grad():
        trainer.custom_clip.prompt_learner.ctx.fill_(float("nan"))
    node = "COCOOP" if trainer_name == "CoCoOp" else "COOP"
    with pytest.raises(FloatingPointError, match=rf"epoch \[1/1\] batch \[1/\d+\].*TRAINER.{node}.PREC=fp32"):
        trainer.train()


def test_fp16_trains_fp16_prompts_on_cpu(assets, tmp_path):
    """fp16 (the reference's mode); amp is in the contract test of every trainer."""
    root, clip_path = assets
    opts = short_opts() + ["TRAINER.COOP.PREC", "fp16"]
    trainer = build_trainer(make_cfg("CoOp", "CoOp/vit_b16_ctxv1", root, clip_path, tmp_path, opts))
    history = record_training(trainer)
    trainer.train()
    ctx = trainer.custom_clip.prompt_learner.ctx
    assert ctx.dtype == torch.float16
    assert torch.isfinite(ctx).all() and all(math.isfinite(loss) for _, loss, _ in history)


def test_kgcoop_offers_the_squared_cosine_schedule(assets, tmp_path):
    from trainers.common import SquaredCosineWarmupLR

    root, clip_path = assets
    config, extra = FP32["KgCoOp"]
    opts = short_opts() + extra + ["TRAINER.COOP.KG_SCHEDULE", "squared_cosine"]
    trainer = build_trainer(make_cfg("KgCoOp", config, root, clip_path, tmp_path, opts))
    assert isinstance(trainer._scheds["prompt_learner"], SquaredCosineWarmupLR)
    with pytest.raises(ValueError, match="KG_SCHEDULE must be one of cosine, squared_cosine"):
        build_trainer(make_cfg("KgCoOp", config, root, clip_path, tmp_path, ["TRAINER.COOP.KG_SCHEDULE", "square"]))


def test_bad_precision_fails_before_loading_anything(assets, tmp_path):
    root, clip_path = assets
    with pytest.raises(ValueError, match="TRAINER.COCOOP.PREC must be one of fp16, fp32, amp"):
        build_trainer(make_cfg("CoCoOp", "CoCoOp/vit_b16_c4_ep10_batch1", root, clip_path, tmp_path, ["TRAINER.COCOOP.PREC", "half"]))


def test_zero_shot_clip_classifies_with_frozen_template_features(assets, tmp_path, capsys):
    from trainers.common import frozen_text_features

    root, clip_path = assets
    opts = ["DATASET.SUBSAMPLE_CLASSES", "new", "TRAINER.COOP.PREC", "fp32"]
    trainer = build_trainer(make_cfg("ZeroshotCLIP", "CoOp/vit_b16", root, clip_path, tmp_path, opts))
    assert (f"Zero-shot templates: dataset (ZeroshotCLIP's default on openai backbones) for backbone ViT-B/16, "
            f"from {clip_path} (openai), 1 template(s): ['a photo of a {{}}.']") in capsys.readouterr().out
    expected = frozen_text_features(trainer.clip_model, "a photo of a {}.", trainer.dm.dataset.classnames)
    assert trainer.text_features is expected
    assert 0.0 <= trainer.test() <= 100.0


def test_zero_shot_clip2_averages_the_select_templates_and_the_dataset_template(assets, tmp_path, capsys):
    from trainers.common import frozen_text_features
    from trainers.common.templates import IMAGENET_TEMPLATES_SELECT

    root, clip_path = assets
    opts = ["TRAINER.COOP.PREC", "fp32"]
    trainer = build_trainer(make_cfg("ZeroshotCLIP2", "CoOp/vit_b16", root, clip_path, tmp_path, opts))
    assert "Zero-shot templates: imagenet_select (ZeroshotCLIP2's default on openai backbones)" in capsys.readouterr().out
    templates = list(IMAGENET_TEMPLATES_SELECT) + ["a photo of a {}."]
    expected = frozen_text_features(trainer.clip_model, templates, trainer.dm.dataset.classnames)
    torch.testing.assert_close(trainer.text_features, expected)
    single = frozen_text_features(trainer.clip_model, templates[0], trainer.dm.dataset.classnames)
    assert not torch.allclose(trainer.text_features, single)
