"""Dataset doctor: is every dataset laid out the way its loader expects?

    python tools/check_datasets.py --root DATA [--dataset NAME ...] [--folder MY_SET ...]

One line per dataset: OK with class and split counts, NOT FOUND, or
PROBLEM with what is missing and where DATASETS.md says to get it. The checks
run the loaders' own code (folder resolution, split reading, image listing),
one directory listing per folder, and write nothing.

Exit status: 1 when a dataset that is present has a problem, when a dataset
named with --dataset/--folder is not found, or when no dataset is found at all
(probably a wrong --root); 0 otherwise. Without --dataset, datasets absent from
DATA are reported as NOT FOUND but do not fail the check.
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import datasets  # noqa: E402  (repository package, importable only after the path insert)
from dassl.config import apply_cfg_extensions, get_cfg_default  # noqa: E402
from dassl.data.datasets import DATASET_REGISTRY  # noqa: E402
from dassl.data.datasets.split_dataset import DatasetNotFoundError, SplitJsonDataset  # noqa: E402
from dassl.utils.hints import closest_name_hint  # noqa: E402

FOLDER_DATASET = "ImageFolderDataset"
CONFIG_DIR = os.path.join(REPO, "configs", "datasets")


def known_datasets():
    """``{registry name: class}`` of every split-pattern dataset, the folder dataset excepted."""
    datasets.import_all()
    known = {}
    for name in DATASET_REGISTRY.registered_names():
        cls = DATASET_REGISTRY.get(name)
        if isinstance(cls, type) and issubclass(cls, SplitJsonDataset) and name != FOLDER_DATASET:
            known[name] = cls
    return known


def config_stems():
    """``{yaml stem: registry name}`` from configs/datasets (so `oxford_pets` works as well as `OxfordPets`)."""
    stems = {}
    for file_name in sorted(os.listdir(CONFIG_DIR)):
        if file_name.endswith(".yaml"):
            cfg = get_cfg_default()
            cfg.merge_from_file(os.path.join(CONFIG_DIR, file_name))
            stems[file_name[:-len(".yaml")]] = cfg.DATASET.NAME
    return stems


def resolve_names(requested, known):
    """Registry names for the ``--dataset`` arguments; an unknown name exits before any check."""
    lookup = {name.lower(): name for name in known}
    lookup.update({stem.lower(): name for stem, name in config_stems().items() if name in known})
    resolved = []
    for name in requested:
        if name.lower() not in lookup:
            sys.exit(f"error: unknown dataset {name!r}.{closest_name_hint(name, sorted(lookup))} "
                     f"Known: {', '.join(sorted(known))} (use --folder for your own image folder)")
        resolved.append(lookup[name.lower()])
    return resolved


def doctor_cfg(root, folder=""):
    cfg = apply_cfg_extensions(get_cfg_default())
    cfg.DATASET.ROOT = root
    if folder:
        cfg.DATASET.FOLDER = folder
    return cfg


def check(cls, cfg):
    """``(status, detail)`` with status ``OK``, ``NOT FOUND`` or ``PROBLEM``."""
    try:
        dataset = cls.located(cfg)
    except DatasetNotFoundError as error:
        return "NOT FOUND", str(error)
    counts, problems = dataset.inspect()
    if problems:
        return "PROBLEM", "; ".join(problems)
    captions = dataset.caption_file()
    sizes = " / ".join(f"{key} {counts[key]}" for key in ("train", "val", "test") if key in counts)
    detail = (f"{counts['classes']} classes, {sizes}; "
              f"captions: {os.path.basename(captions) if captions else 'absent'}")
    if dataset.split_path and not os.path.isfile(dataset.split_path):
        detail += f"; {os.path.basename(dataset.split_path)} not written yet (the first run writes it)"
    if counts.get("stale_fewshot"):
        detail += (f"; few-shot file(s) drawn from another split: {', '.join(counts['stale_fewshot'])} "
                   "(the next run draws them again)")
    return "OK", detail


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the DATA folder passed to train.py as --root")
    parser.add_argument("--dataset", nargs="+", default=[], help="check only these (registry names or config stems)")
    parser.add_argument("--folder", nargs="+", default=[], help="your own image folders under --root to check")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.root):
        sys.exit(f"error: --root {args.root} is not a folder")
    known = known_datasets()
    names = resolve_names(args.dataset, known) if args.dataset else ([] if args.folder else sorted(known))
    jobs = [(name, known[name], doctor_cfg(args.root)) for name in names]
    folder_dataset = DATASET_REGISTRY.get(FOLDER_DATASET)
    jobs += [(f"{FOLDER_DATASET}:{folder}", folder_dataset, doctor_cfg(args.root, folder)) for folder in args.folder]
    statuses = []
    for label, cls, cfg in jobs:
        status, detail = check(cls, cfg)
        statuses.append(status)
        print(f"{status:<10} {label:<20} {detail}", flush=True)
    explicit = bool(args.dataset or args.folder)
    failed = "PROBLEM" in statuses or (explicit and "NOT FOUND" in statuses)
    if not explicit and statuses.count("NOT FOUND") == len(statuses):
        print(f"No dataset found under {args.root}: is --root the folder that holds the dataset folders?")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
