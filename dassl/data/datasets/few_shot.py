"""The few-shot sample's cache files and the checks around drawing it.

Departure from upstream: the cache is JSON with paths relative to the dataset
folder (``split_fewshot/shot_{K}-seed_{S}.json``), so a moved data folder
reuses it and nothing is ever unpickled (an upstream ``.pkl`` beside it is
ignored); it records the SHA-256 of the train/val lists it was drawn from and
is drawn again when the split changed (see ``fewshot_cache_misfit`` for files
written before the hash was recorded).
"""
import os
from collections import defaultdict

FEWSHOT_DIR = "split_fewshot"


def fewshot_cache_path(dataset_dir, num_shots, seed):
    """``<dataset_dir>/split_fewshot/shot_{K}-seed_{S}.json``."""
    return os.path.join(dataset_dir, FEWSHOT_DIR, f"shot_{num_shots}-seed_{seed}.json")


def fewshot_cache_misfit(cached, train, val):
    """Why a few-shot file without a recorded split hash (written before it was recorded) does not fit the split.

    "" when it fits: each cached train (val) image is in the current train
    (val) list with the same label and class name, and the cached classes are
    the split's classes.
    """
    def rows(items):
        return {(item.impath, item.label, item.classname) for item in items or ()}

    if not rows(cached["train"]) <= rows(train) or not rows(cached.get("val")) <= rows(val):
        return "names images that are not in the current split's train/val lists"
    if {item.label for item in cached["train"]} != {item.label for item in train}:
        return "does not cover the current split's classes"
    return ""


def classes_short_of(items, num_shots):
    """Class names that have fewer than ``num_shots`` items, in label order."""
    counts = defaultdict(int)
    names = {}
    for item in items:
        counts[item.label] += 1
        names[item.label] = item.classname
    return [names[label] for label in sorted(counts) if counts[label] < num_shots]
