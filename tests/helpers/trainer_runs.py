"""Trainers end to end on CPU through `train.main`: a generated colour image
folder (read by ImageFolderDataset, so base/new subsampling is the real one), a
tiny OpenAI-format CLIP checkpoint, and the overrides that point a shipped
trainer config at both; the toy trainer's run folder; and what resume tests
share (killing a run at a hook, the logged numbers two runs must share).
"""
import contextlib
import math
import os
import re

import numpy as np
import torch
from PIL import Image

import train
from tests.helpers.tiny_clip import make_tiny_clip, save_openai_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESOLUTION = 32
CLASS_COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (40, 50, 210),
    "yellow": (230, 220, 40),
    "dark_grey": (60, 60, 60),
    "violet": (150, 40, 200),
}


def write_colour_images(root, per_class=10):
    """root/colours/<class>/<i>.png, one noisy solid colour per class; returns root."""
    rng = np.random.RandomState(0)
    for name, colour in CLASS_COLOURS.items():
        class_dir = os.path.join(root, "colours", name)
        os.makedirs(class_dir, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.randint(-25, 26, size=(12, 12, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(class_dir, f"{i}.png"))
    return root


def write_tiny_clip_checkpoint(path, embed_dim=32):
    """A tiny ViT CLIP saved like OpenAI's files, with the trained logit scale (100)."""
    model = make_tiny_clip(embed_dim=embed_dim, width=64, image_resolution=RESOLUTION, seed=0)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return save_openai_checkpoint(model, path)


def tiny_opts(clip_path, folder="colours"):
    """Overrides that point a shipped config at the tiny backbone and the colour folder, on the CPU."""
    return [
        "MODEL.BACKBONE.PATH", str(clip_path),
        "INPUT.SIZE", f"({RESOLUTION}, {RESOLUTION})",
        "DATASET.FOLDER", folder,
        "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TEST.BATCH_SIZE", "16",
        "USE_CUDA", "False",
        "TRAIN.PRINT_FREQ", "100",
    ]


def base2new_argv(trainer, config, root, clip_path, output_dir, phase, opts=(), model_dir=None, load_epoch=None):
    """train.py argv for one base-to-new phase ("base": train, "new": evaluate `model_dir`,
    at `load_epoch` or its best-val checkpoint)."""
    argv = [
        "--root", str(root), "--seed", "1", "--trainer", trainer, "--output-dir", str(output_dir),
        "--dataset-config-file", os.path.join(REPO, "configs/datasets/image_folder.yaml"),
        "--config-file", os.path.join(REPO, f"configs/trainers/{config}.yaml"),
    ]
    if phase == "new":
        argv += ["--eval-only", "--model-dir", str(model_dir)]
        argv += [] if load_epoch is None else ["--load-epoch", str(load_epoch)]
    return argv + ["DATASET.SUBSAMPLE_CLASSES", phase, *tiny_opts(clip_path), *opts]


def logged_epoch_numbers(log_text):
    """The log's epoch lines with their timings removed: what two identical runs must share."""
    lines = [line for line in log_text.splitlines() if line.startswith("epoch [")]
    return [re.sub(r" (time|data) \S+ \(\S+\)| eta \S+", "", line) for line in lines]


@contextlib.contextmanager
def killed_after(trainer_class, hook, when):
    """Inside, `trainer_class.<hook>` runs and then raises KeyboardInterrupt("simulated kill")
    once `when(trainer)` holds: a job killed right after that point (the checkpoint is written)."""
    original = getattr(trainer_class, hook)

    def hook_then_kill(self):
        original(self)
        if when(self):
            raise KeyboardInterrupt("simulated kill")

    setattr(trainer_class, hook, hook_then_kill)
    try:
        yield
    finally:
        setattr(trainer_class, hook, original)


TOY_DATASET_YAML = "DATASET:\n  NAME: ToyDataset\n"
# The toy runs' input and loaders (8 px images, batches of 4); each test adds its OPTIM / TRAIN.
TOY_DATA_YAML = """
INPUT:
  SIZE: (8, 8)
  TRANSFORMS: ["random_flip", "normalize"]
DATALOADER:
  NUM_WORKERS: 0
  TRAIN_X:
    BATCH_SIZE: 4
  TEST:
    BATCH_SIZE: 8
"""
TOY_EPOCHS_YAML = TOY_DATA_YAML + """OPTIM:
  NAME: sgd
  LR: 0.002
  MAX_EPOCH: 8
  LR_SCHEDULER: cosine
TRAIN:
  PRINT_FREQ: 2
"""  # 8 epochs of 5 toy batches, no CHECKPOINT_FREQ: the resume tests' run


def write_toy_run_folder(base, trainer_yaml):
    """base/data (empty: ToyDataset writes its images there), base/toy.yaml and base/trainer.yaml."""
    (base / "data").mkdir()
    (base / "toy.yaml").write_text(TOY_DATASET_YAML)
    (base / "trainer.yaml").write_text(trainer_yaml)
    return base


def toy_training_argv(toy, out, *extra):
    """train.py arguments of a seeded ToyTrainer run in a folder made by `write_toy_run_folder`."""
    return [
        "--root", str(toy / "data"), "--output-dir", str(out), "--seed", "0", "--trainer", "ToyTrainer",
        "--dataset-config-file", str(toy / "toy.yaml"), "--config-file", str(toy / "trainer.yaml"),
        "--import", "tests.helpers.toy_dataset", *extra,
    ]


def run_toy_training(toy, out, *extra):
    """A seeded ToyTrainer run through train.main in a folder made by `write_toy_run_folder`."""
    return train.main(toy_training_argv(toy, out, *extra), plugin_folders=())
