"""Building a train/val/test split from the raw images when no split file exists.

Fallback splits use a private generator with a fixed seed and sorted file
listings, so they do not depend on the run seed or on ``os.listdir`` order,
and they do not shift the global ``random`` stream the few-shot sample uses.
"""
import math
import os
import random
from collections import defaultdict

from .base_dataset import Datum
from .dataset_errors import DatasetProblem
from .folder_index import FolderIndex, list_class_folders

FALLBACK_SPLIT_SEED = 1


def fallback_rng():
    """The generator every fallback split uses: fixed seed, independent of the run's seed."""
    return random.Random(FALLBACK_SPLIT_SEED)


def split_class_groups(groups, p_trn=0.5, p_val=0.2, rng=None):
    """Split ``[(label, classname, impaths), ...]`` per class into train/val/test (default 50/20/30)."""
    rng = rng or fallback_rng()
    train, val, test = [], [], []
    for label, classname, impaths in groups:
        impaths = list(impaths)
        rng.shuffle(impaths)
        n_train = round(len(impaths) * p_trn)
        n_val = round(len(impaths) * p_val)
        if n_train < 1 or n_val < 1 or len(impaths) - n_train - n_val < 1:
            raise DatasetProblem(
                f"class {classname!r} has {len(impaths)} image(s): a {p_trn:.0%}/{p_val:.0%}/{1 - p_trn - p_val:.0%} "
                "split leaves a part empty; give every class at least 4 images")
        parts = (impaths[:n_train], impaths[n_train:n_train + n_val], impaths[n_train + n_val:])
        for target, part in zip((train, val, test), parts):
            target.extend(Datum(impath=impath, label=label, classname=classname) for impath in part)
    return train, val, test


def read_and_split_data(image_dir, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None, rng=None, index=None):
    """Split a one-folder-per-class image tree per class; labels follow the sorted folder names.

    ``ignored`` folders are skipped; ``new_cnames`` renames folders to class names.
    """
    new_cnames = new_cnames or {}
    folders = list_class_folders(image_dir, index or FolderIndex(), ignored)
    groups = [(label, new_cnames.get(folder, folder), [os.path.join(image_dir, folder, name) for name in images])
              for label, (folder, images) in enumerate(folders)]
    return split_class_groups(groups, p_trn, p_val, rng)


def split_trainval(trainval, p_val=0.2, rng=None):
    """Split a train+val list into train and val per class (default 80/20), classes in order of appearance."""
    rng = rng or fallback_rng()
    by_label = defaultdict(list)
    for item in trainval:
        by_label[item.label].append(item)
    train, val = [], []
    for label, items in by_label.items():
        n_val = round(len(items) * p_val)
        if n_val < 1:
            raise DatasetProblem(f"class {items[0].classname!r} has {len(items)} train+val image(s), too few for a "
                                 f"{p_val:.0%} validation part; it needs at least {math.ceil(0.5 / p_val)}")
        items = list(items)
        rng.shuffle(items)
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return train, val
