"""The dataset doctor's diagnosis: one dataset's status (OK, NOT FOUND, PROBLEM) and what is wrong.

It drives the loaders' own code (folder resolution, split reading, image
listing) without building a dataset: it reads the split read-only
(``load_split(inspect=True)``: a missing published split is a problem, a
stand-in split is built but not written), then adds what loading does not
check: empty class folders, the dataset's own layout rules
(``layout_problems``), few-shot files drawn from another split, unreadable
images and class names too long for CLIP. It writes nothing.
``tools/check_datasets.py`` is its command line.
"""
import os

from dassl.data.datasets.dataset_errors import DatasetNotFoundError, DatasetProblem
from dassl.data.datasets.few_shot import FEWSHOT_DIR, fewshot_cache_misfit
from dassl.data.datasets.folder_index import list_class_folders
from dassl.data.datasets.split_files import SPLIT_HASH_KEY, lists_sha256, read_split_unchecked, stored_key
from dassl.data.image_check import list_digest, read_record, record_path, unreadable_images
from trainers.common.class_names import DEFAULT_CONTEXT_TOKENS, longest_name_tokens, token_count
from trainers.tgpt.captions import present_caption_file

OK, NOT_FOUND, PROBLEM = "OK", "NOT FOUND", "PROBLEM"


def located(cls, cfg):
    """An instance of dataset class ``cls`` with its folders resolved and checked but no lists built."""
    dataset = cls.__new__(cls)
    dataset.locate(cfg)
    return dataset


def empty_class_folders(image_dir, index, ignored=()):
    """Names of class folders without a single image file."""
    return [folder for folder, images in list_class_folders(image_dir, index, ignored) if not images]


def layout_problems(dataset):
    """What the split does not reveal: empty class folders, then the dataset's own layout rules."""
    problems = []
    for folder in dataset.class_folder_roots():
        empty = empty_class_folders(folder, dataset.folder_index, dataset.ignored_folders)
        if empty:
            problems.append(f"empty class folder(s) in {folder}: {', '.join(empty)}")
    return problems + dataset.layout_problems()


def stale_fewshot_files(dataset, train, val):
    """Names of few-shot files in split_fewshot/ drawn from another split (the next run draws them again)."""
    drawn_from = lists_sha256({"train": train, "val": val}, dataset.dataset_dir)
    keys = ("train",) if val is None else ("train", "val")
    fewshot_dir = os.path.join(dataset.dataset_dir, FEWSHOT_DIR)
    stale = []
    # listed directly: a dataset's folder index may keep only image files
    for name in sorted(os.listdir(fewshot_dir) if os.path.isdir(fewshot_dir) else []):
        stem, extension = os.path.splitext(name)
        if extension != ".json" or not stem.startswith("shot_") or "-val_" in stem:
            continue
        path = os.path.join(fewshot_dir, name)
        recorded = stored_key(path, SPLIT_HASH_KEY)
        if recorded != drawn_from and (recorded is not None or fewshot_cache_misfit(
                read_split_unchecked(path, dataset.dataset_dir, keys), train, val)):
            stale.append(name)
    return stale


def inspect(dataset):
    """``(lists, counts, problems)``: the split's lists (None when unreadable), "classes" and each list's size."""
    problems = []
    lists, counts = None, {}
    try:
        train, val, test = dataset.load_split(inspect=True)
    except (DatasetProblem, OSError, ValueError) as error:
        problems.append(str(error))
    else:
        lists = {"train": train, "val": val, "test": test}
        counts = {key: len(items) for key, items in lists.items() if items is not None}
        counts["classes"] = len({item.label for item in (test if dataset.test_only else train)})
        counts["stale_fewshot"] = stale_fewshot_files(dataset, train, val)
    problems.extend(problem for problem in layout_problems(dataset)
                    if not any(problem in reported for reported in problems))
    return lists, counts, problems


def image_problems(dataset, lists):
    """Unreadable images (the lists a run already verified are skipped) and class names too long for CLIP."""
    record = record_path(dataset)
    verified = set(read_record(record)) if record else set()
    problems = []
    for split, items in lists.items():
        paths = sorted({item.impath for item in items or ()})
        if list_digest(split, paths) in verified:
            continue
        bad = unreadable_images(split, paths)
        if bad:
            problems.append(f"{len(bad)} unreadable image(s) in the {split} split, first {bad[0][0]} ({bad[0][1]}): "
                            "replace them (re-download the dataset) or remove them from the split")
    budget = longest_name_tokens(DEFAULT_CONTEXT_TOKENS)
    names = sorted({item.classname for items in lists.values() for item in items or ()})
    long_names = [name for name in names if token_count(name.replace("_", " ")) > budget]
    if long_names:
        problems.append(f"class name(s) longer than {budget} CLIP tokens, too long for a prompt with "
                        f"{DEFAULT_CONTEXT_TOKENS} context tokens: {', '.join(repr(name) for name in long_names)}; "
                        "shorten them (own folder: classnames.txt; else the split file)")
    return problems


def ok_detail(dataset, counts):
    """The OK line's detail: class and list sizes, the captions file, and notes that need no action."""
    captions = present_caption_file(dataset.dataset_dir)
    sizes = " / ".join(f"{key} {counts[key]}" for key in ("train", "val", "test") if key in counts)
    detail = (f"{counts['classes']} classes, {sizes}; "
              f"captions: {os.path.basename(captions) if captions else 'absent'}")
    if dataset.split_path and not os.path.isfile(dataset.split_path):
        detail += f"; {os.path.basename(dataset.split_path)} not written yet (the first run writes it)"
    if counts.get("stale_fewshot"):
        detail += (f"; few-shot file(s) drawn from another split: {', '.join(counts['stale_fewshot'])} "
                   "(the next run draws them again)")
    return detail


def check(cls, cfg):
    """``(status, detail)`` of dataset class ``cls`` under ``cfg.DATASET.ROOT``."""
    try:
        dataset = located(cls, cfg)
    except DatasetNotFoundError as error:
        return NOT_FOUND, str(error)
    lists, counts, problems = inspect(dataset)
    if not problems:
        problems = image_problems(dataset, lists)
    if problems:
        return PROBLEM, "; ".join(problems)
    return OK, ok_detail(dataset, counts)
