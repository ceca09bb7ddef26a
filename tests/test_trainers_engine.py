"""Trainer-level tests through the Dassl engine, on a generated colour image folder and a tiny CLIP (CPU).

The data: one solid colour (plus noise) per class, read by ImageFolderDataset,
so the base/new split (first/second half of the classes) is the real one.
"""
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

import datasets.image_folder  # noqa: F401  (registers ImageFolderDataset)
import trainers.cocoop  # noqa: F401  (registers the trainers and their config nodes)
import trainers.coop  # noqa: F401
import trainers.kgcoop  # noqa: F401
import trainers.zsclip  # noqa: F401
from dassl.config import apply_cfg_extensions, get_cfg_default, merge_from_file, merge_from_list
from dassl.engine import build_trainer
from tests.helpers.tiny_clip import make_tiny_clip, save_openai_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (40, 50, 210),
    "yellow": (230, 220, 40),
    "dark_grey": (60, 60, 60),
    "violet": (150, 40, 200),
}
IMAGES_PER_CLASS = 10
RESOLUTION = 32


def write_colour_folder(root, folder="colours"):
    """DATA/<folder>/<class>/<i>.png: one noisy solid colour per class."""
    rng = np.random.RandomState(0)
    for name, colour in COLOURS.items():
        class_dir = os.path.join(root, folder, name)
        os.makedirs(class_dir, exist_ok=True)
        for i in range(IMAGES_PER_CLASS):
            noise = rng.randint(-25, 26, size=(12, 12, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(class_dir, f"{i}.png"))
    return root


def write_tiny_clip(path):
    """A tiny ViT CLIP whose logit scale is the trained CLIP's (100)."""
    model = make_tiny_clip(embed_dim=32, width=64, image_resolution=RESOLUTION, seed=0)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return save_openai_checkpoint(model, path)


def tiny_opts(clip_path, folder="colours"):
    """Overrides that point a real config at the tiny backbone and the colour folder."""
    return [
        "MODEL.BACKBONE.PATH", str(clip_path),
        "INPUT.SIZE", f"({RESOLUTION}, {RESOLUTION})",
        "DATASET.FOLDER", folder,
        "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TEST.BATCH_SIZE", "16",
        "USE_CUDA", "False",
        "TRAIN.PRINT_FREQ", "100",
    ]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_colour_folder(str(root))
    clip_path = write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny.pt")
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
    "CoOp": ("CoOp/vit_b16_ep50", ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CSC", "True"]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.CSC", "True", "TRAINER.COOP.W", "1.0"]),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["OPTIM.LR", "0.01"]),
}


@pytest.mark.parametrize("trainer_name", sorted(LEARNING_SETUPS))
def test_loss_falls_and_base_accuracy_rises(assets, tmp_path, trainer_name):
    root, clip_path = assets
    config, extra = LEARNING_SETUPS[trainer_name]
    opts = [
        "OPTIM.MAX_EPOCH", "6",
        "OPTIM.WARMUP_EPOCH", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
        "DATASET.NUM_SHOTS", "4",
        "DATASET.SUBSAMPLE_CLASSES", "base",
        f"TRAINER.{'COCOOP' if trainer_name == 'CoCoOp' else 'COOP'}.PREC", "fp32",
        "TEST.NO_TEST", "True",
        "OPTIM.LR", "0.005",
    ] + extra
    cfg = make_cfg(trainer_name, config, root, clip_path, tmp_path, opts)
    trainer = build_trainer(cfg)
    history = record_training(trainer)
    before = trainer.test()
    trainer.train()
    after = trainer.test()
    first_loss, first_acc = epoch_means(history, 0)
    last_loss, last_acc = epoch_means(history, 5)
    assert last_loss < 0.7 * first_loss
    assert last_acc >= first_acc + 20
    assert after >= before + 20
