"""A val set held out from the training images the few-shot sample left (``DATASET.VAL_FROM_TRAIN``).

A split without a val list (ImageNet) validates on its test list, as
upstream, unless ``DATASET.VAL_FROM_TRAIN N`` asks for max(K, N) images per
class held out from train instead (any method may ask; the TGP-T configs do),
cached beside the few-shot sample. Registered as a config extension when
``dassl.data.datasets`` is imported.
"""
import os
import random

from ...config import register_cfg_extension
from .base_dataset import DatasetBase
from .dataset_errors import SplitFileError
from .few_shot import FEWSHOT_DIR


@register_cfg_extension
def add_val_from_train_key(cfg):
    """``DATASET.VAL_FROM_TRAIN``: 0 validates a split without a val list on its test list (upstream).

    N >= 1 validates it on max(K, N) images per class held out from the
    training images outside the K-shot sample instead. Splits with a val list
    ignore it.
    """
    cfg.DATASET.VAL_FROM_TRAIN = 0


def held_out_val_cache_path(dataset_dir, num_shots, seed, per_class):
    """``<dataset_dir>/split_fewshot/shot_{K}-seed_{S}-val_{M}.json``, beside the few-shot sample it leaves out."""
    return os.path.join(dataset_dir, FEWSHOT_DIR, f"shot_{num_shots}-seed_{seed}-val_{per_class}.json")


def held_out_rng(seed):
    """The held-out val's generator: fixed by the run seed, yet a stream apart from the few-shot sample's."""
    return random.Random(f"held-out val, seed {seed}")


def sample_per_class(items, count, rng):
    """``count`` items per label drawn with ``rng`` (all of a smaller class), labels in order of first appearance."""
    sample = []
    for group in DatasetBase.split_dataset_by_label(items).values():
        sample.extend(rng.sample(group, count) if len(group) >= count else group)
    return sample


def check_disjoint(val, train, source):
    """Raise when a cached held-out val names images of the current few-shot train sample."""
    trained = {item.impath for item in train}
    shared = [item.impath for item in val if item.impath in trained]
    if shared:
        raise SplitFileError(f"{source} holds {len(shared)} image(s) of the few-shot train sample (e.g. {shared[0]}), "
                             "so it was drawn for another sample; delete it to draw it again")
