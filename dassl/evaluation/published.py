"""Published base-to-new numbers (ViT-B/16, 16 shots) as data, so reports can
put a user's results beside the papers' without anyone retyping tables.

The numbers live in `published_results.json` next to this file; every method
records the paper and table they come from, the backbone they were measured on
and the config that reproduces them. They are comparable only with runs on the
same backbone (`comparable_backbones`): a LAION ViT-B/16 is not OpenAI's.
"""
import json
import re
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


def published_backbone(entry):
    """The backbone a published entry was measured on (OpenAI's CLIP name, e.g. `ViT-B/16`)."""
    return entry.get("backbone") or load_published()["setting"]["backbone"]


_OPENAI_ARCHITECTURE = re.compile(r"(ViT-[BLH])-(\d+)(?:-(\d+))?(?:-quickgelu)?|(RN\w+?)(?:-quickgelu)?")


def canonical_backbone(name):
    """OpenAI's name for a backbone name as logged: `ViT-B-16/openai` (open_clip's name for
    OpenAI's weights) -> `ViT-B/16`; any other name as it is."""
    architecture, _, tag = name.partition("/")
    match = _OPENAI_ARCHITECTURE.fullmatch(architecture) if tag == "openai" else None
    if match is None:
        return name
    vit, patch, size, resnet = match.groups()
    return resnet or f"{vit}/{patch}" + (f"@{size}px" if size else "")


def comparable_backbones(entry, run_backbones):
    """Whether `entry`'s numbers may stand beside runs on `run_backbones` (the names their logs
    give; runs whose logs name none are not counted against): every run must use its backbone."""
    paper = canonical_backbone(published_backbone(entry))
    return all(canonical_backbone(name) == paper for name in run_backbones)
