"""Published numbers as data, so reports can put a user's results beside the
papers' without anyone retyping tables.

Base-to-new (ViT-B/16, 16 shots) lives in `published_results.json`: every method
records the paper and table they come from and the config that reproduces them.
Few-shot, cross-dataset and DG numbers live in `published_protocols.json` (the
project's spec data, each number with the source it was read in; numbers nobody
found are absent, never filled in).
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


PROTOCOLS_FILE = Path(__file__).with_name("published_protocols.json")
PROTOCOL_KEYS = {"fewshot": "few_shot", "xd": "cross_dataset", "dg": "domain_generalization"}


@lru_cache(maxsize=1)
def load_protocols():
    """Few-shot, cross-dataset and DG numbers with their sources (`sources`,
    `benchmarks`, `dg_targets`, `protocols`); a copy of the project's spec data."""
    with open(PROTOCOLS_FILE, encoding="utf-8") as f:
        return json.load(f)


def citation(entry):
    """Where an entry's numbers were read: the paper and table, and the copies read."""
    averages = entry.get("averages_vit_b16") or entry.get("averages")
    if averages:
        backbone = averages.get("backbone", "ViT-B/16" if "averages_vit_b16" in entry else "backbone not stated")
        return f"11-dataset few-shot averages read in {averages['source']} ({backbone})"
    paper = entry.get("paper_source", {})
    parts = [paper.get("paper"), paper.get("table")] + [f"read in {r}" for r in entry.get("read_from", [])]
    return "; ".join(p for p in parts if p)


def published_protocol(protocol, trainer):
    """What a paper reports for `trainer` (a row name; TGPT = TGP-T) in `protocol`
    (fewshot, xd or dg), or None: `{"source": acc, "datasets": {stem: acc},
    "average": acc, "shots": {K: 11-dataset average}, "citation": text}`.
    Numbers that were not found are absent, never filled in."""
    data = load_protocols()
    methods = data["protocols"][PROTOCOL_KEYS[protocol]]["methods"]
    entry = next((e for name, e in methods.items() if name.replace("-", "") == trainer.replace("-", "")), None)
    if entry is None:
        return None
    datasets = entry.get("datasets")
    averages = entry.get("averages_vit_b16") or entry.get("averages") or {}
    result = {
        "source": entry.get("source_imagenet"),
        "datasets": {d: v["acc"] for d, v in datasets.items()} if isinstance(datasets, dict) else {},
        "average": entry.get("average"),
        "shots": {int(k): v for k, v in averages.get("shots", {}).items()},
        "citation": citation(entry),
    }
    has_numbers = result["source"] is not None or result["datasets"] or result["average"] is not None or result["shots"]
    return result if has_numbers else None


TRANSFER_SOURCE = "imagenet"  # the source of the papers' cross-dataset and DG protocols


def benchmarks():
    """The 11 datasets of the papers, in their order."""
    return list(load_protocols()["benchmarks"])


def dg_targets():
    """ImageNet-V2, -Sketch, -A and -R."""
    return list(load_protocols()["dg_targets"])


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
