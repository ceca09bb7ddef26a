"""Published base-to-new numbers (ViT-B/16, 16 shots) as data, so reports can
put a user's results beside the papers' without anyone retyping tables.

The numbers live in `published_results.json` next to this file; every method
records the paper and table they come from and the config that reproduces them.
"""
import json
from functools import lru_cache
from pathlib import Path

PUBLISHED_FILE = Path(__file__).with_name("published_results.json")


@lru_cache(maxsize=1)
def load_published():
    """The whole file: `setting`, `benchmarks` (the 11 dataset stems) and
    `methods` (name -> display_name, aliases, source, config, datasets, average)."""
    with open(PUBLISHED_FILE, encoding="utf-8") as f:
        return json.load(f)


def published_method(trainer):
    """The published entry for a trainer folder name (or one of its aliases,
    e.g. `TextRefiner` for CoOp+TextRefiner), or None if no paper reports it."""
    methods = load_published()["methods"]
    if trainer in methods:
        return methods[trainer]
    for entry in methods.values():
        if trainer in entry["aliases"]:
            return entry
    return None


def published_for(trainer, dataset_stem):
    """`{"base", "new", "h"}` the paper reports for this trainer on this
    benchmark (dataset stem such as `oxford_pets`), or None when not published."""
    entry = published_method(trainer)
    if entry is None:
        return None
    return entry["datasets"].get(dataset_stem)
