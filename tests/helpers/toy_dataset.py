"""Toy fixtures written only against the Dassl API, as an outside repository would:
`ToyDataset` (generated 8x8 PNGs, one solid colour plus noise per class) and
`ToyTrainer` (a linear classifier trained the CoOp way: SGD + scheduler
stepped at the last batch of each epoch).
"""
import os

import numpy as np
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210)}
SPLIT_SIZES = {"train": 6, "val": 2, "test": 4}
IMAGE_SIZE = 8


def write_toy_images(dataset_dir):
    """Write the PNGs once (deterministically, without touching the global RNGs)."""
    rng = np.random.RandomState(0)
    for split, per_class in SPLIT_SIZES.items():
        for name, colour in COLOURS.items():
            folder = os.path.join(dataset_dir, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                noise = rng.randint(-40, 41, size=(IMAGE_SIZE, IMAGE_SIZE, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))


def read_split(dataset_dir, split):
    return [
        Datum(impath=os.path.join(dataset_dir, split, name, f"{i}.png"), label=label, classname=name)
        for label, name in enumerate(COLOURS)
        for i in range(SPLIT_SIZES[split])
    ]


@DATASET_REGISTRY.register()
class ToyDataset(DatasetBase):
    dataset_dir = "toy"

    def __init__(self, cfg):
        dataset_dir = os.path.join(cfg.DATASET.ROOT, self.dataset_dir)
        if not os.path.isdir(dataset_dir):
            write_toy_images(dataset_dir)
        train = self.generate_fewshot_dataset(read_split(dataset_dir, "train"), num_shots=cfg.DATASET.NUM_SHOTS)
        super().__init__(train_x=train, val=read_split(dataset_dir, "val"), test=read_split(dataset_dir, "test"))


@TRAINER_REGISTRY.register()
class ToyTrainer(TrainerX):
    def build_model(self):
        height, width = self.cfg.INPUT.SIZE
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(3 * height * width, self.num_classes)).to(self.device)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("classifier", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        summary = {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary
