"""TRAIN.CACHED_VIEWS K > 0: train on frozen image features of K augmented views per image.

For methods whose training forward reaches images only through the frozen
image tower (CoOp, KgCoOp, CoCoOp without a plug-in that asks for image
tokens), the tower's output for an augmented image does not change during
training. So before the first epoch every training image is augmented K times
and encoded once; each step then draws one of its K views per image instead
of decoding, augmenting and encoding it again. The numbers differ from plain
training (K fixed augmentations instead of a fresh one per epoch), so it is
off by default (K = 0). The trainer's FeatureServer
(trainers.common.feature_server) holds the views and serves them.
"""
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from dassl.config import register_cfg_extension

from .feature_cache import encode_frozen_images


@register_cfg_extension
def add_cached_views_cfg(cfg):
    cfg.TRAIN.CACHED_VIEWS = 0


class _IndexDataset(Dataset):
    """Items {"index", "label"} of a data source: what a step needs besides the cached features."""

    def __init__(self, data_source):
        self.labels = [item.label for item in data_source]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"index": index, "label": self.labels[index]}


def index_loader(image_loader):
    """A loader like `image_loader` (batch size, shuffling, drop_last) that yields indices and labels only."""
    dataset = _IndexDataset(image_loader.dataset.data_source)
    sampler = RandomSampler(dataset) if isinstance(image_loader.sampler, RandomSampler) else None
    return DataLoader(dataset, batch_size=image_loader.batch_size, sampler=sampler, drop_last=image_loader.drop_last)


def encode_augmented_views(clip_model, image_loader, n_views, precision, device):
    """(K, N, embed_dim) frozen features of K independently augmented passes over the loader's images.

    Runs on a fork of the RNGs, so the run's random stream (shuffling) is the one of plain training.
    """
    in_order = DataLoader(
        image_loader.dataset, batch_size=image_loader.batch_size, num_workers=image_loader.num_workers
    )
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device.type == "cuda" else []):
        return torch.stack([encode_frozen_images(clip_model, in_order, precision, device) for _ in range(n_views)])
