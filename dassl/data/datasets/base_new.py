"""Base-to-new generalisation: keep the base or the new half of the classes (upstream rule)."""
import math

from .base_dataset import Datum

SUBSAMPLE_CHOICES = ("all", "base", "new")


def subsample_classes(*args, subsample="all"):
    """Keep all classes, the base half or the new half, relabelled from 0 (upstream rule).

    The labels present in the FIRST list (the few-shot train set) are sorted;
    base = the first ceil(n/2), new = the rest. ``None`` lists pass through.
    """
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(f"DATASET.SUBSAMPLE_CLASSES must be one of {SUBSAMPLE_CHOICES}, got {subsample!r}")
    if subsample == "all":
        return args
    labels = sorted({item.label for item in args[0]})
    half = math.ceil(len(labels) / 2)
    selected = labels[:half] if subsample == "base" else labels[half:]
    relabel = {label: new_label for new_label, label in enumerate(selected)}
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    return tuple(
        None if items is None else [Datum(impath=item.impath, label=relabel[item.label], classname=item.classname)
                                    for item in items if item.label in relabel]
        for items in args)
