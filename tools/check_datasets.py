"""Dataset doctor: is every dataset laid out the way its loader expects?

    python tools/check_datasets.py --root DATA [--dataset NAME ...] [--folder MY_SET ...]

One line per dataset: OK with class and split counts, NOT FOUND, or
PROBLEM with what is missing and where DATASETS.md says to get it. The checks
run the loaders' own code (folder resolution, split reading, image listing),
one directory listing per folder, then open every image's header (the check
train.py runs; lists a run already verified are skipped) and measure every
class name against CLIP's context, and write nothing. `--dataset` takes
registry names and config stems, per-folder yamls of your own data included.
This file is the command line; tools/dataset_doctor.py diagnoses one dataset.

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
from dassl.config import apply_cfg_extensions, get_cfg_default, merge_from_file  # noqa: E402
from dassl.data.datasets import DATASET_REGISTRY  # noqa: E402
from dassl.data.datasets.split_dataset import SplitJsonDataset  # noqa: E402
from dassl.utils.hints import closest_name_hint  # noqa: E402
from tools.dataset_doctor import NOT_FOUND, PROBLEM, check  # noqa: E402

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
    """``{yaml stem: (registry name, DATASET.FOLDER)}`` from configs/datasets (so `oxford_pets` works as well
    as `OxfordPets`, and a per-folder yaml of your own data names its folder)."""
    stems = {}
    for file_name in sorted(os.listdir(CONFIG_DIR)):
        if file_name.endswith(".yaml"):
            cfg = apply_cfg_extensions(get_cfg_default())
            merge_from_file(cfg, os.path.join(CONFIG_DIR, file_name))
            stems[file_name[:-len(".yaml")]] = (cfg.DATASET.NAME, cfg.DATASET.FOLDER)
    return stems


def resolve_names(requested, known):
    """``(label, registry name, folder)`` for the ``--dataset`` arguments; an unknown name exits before any check."""
    lookup = {name.lower(): (name, name, "") for name in known}
    for stem, (name, folder) in config_stems().items():
        if name in known:
            lookup[stem.lower()] = (name, name, "")
        elif name == FOLDER_DATASET and folder:
            lookup[stem.lower()] = (f"{stem} ({folder})", name, folder)
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
    default = [] if args.folder else [(name, name, "") for name in sorted(known)]
    named = resolve_names(args.dataset, known) if args.dataset else default
    named += [(f"{FOLDER_DATASET}:{folder}", FOLDER_DATASET, folder) for folder in args.folder]
    jobs = [(label, DATASET_REGISTRY.get(name), doctor_cfg(args.root, folder)) for label, name, folder in named]
    statuses = []
    for label, cls, cfg in jobs:
        status, detail = check(cls, cfg)
        statuses.append(status)
        print(f"{status:<10} {label:<20} {detail}", flush=True)
    explicit = bool(args.dataset or args.folder)
    failed = PROBLEM in statuses or (explicit and NOT_FOUND in statuses)
    if not explicit and statuses.count(NOT_FOUND) == len(statuses):
        print(f"No dataset found under {args.root}: is --root the folder that holds the dataset folders?")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
