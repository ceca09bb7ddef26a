"""The shared pattern of the split-file benchmarks, written once.

CoOp-family datasets all do the same thing: read a fixed train/val/test split
(``split_zhou_<Name>.json``) or build one from the raw annotations, sample
few-shot subsets with a per-(shots, seed) cache, keep the base or new half of
the classes, and hand the three lists to ``DatasetBase``. This module holds
that pattern (``SplitJsonDataset``) and its helpers, so a dataset file only
states what is specific to it: folder names, class-name rules and where a
fallback split comes from.

Departures from upstream, on purpose:
- the few-shot cache is JSON with paths relative to the dataset folder
  (``split_fewshot/shot_{K}-seed_{S}.json``), so a moved data folder reuses it
  and nothing is ever unpickled (an upstream ``.pkl`` beside it is ignored);
  it records the SHA-256 of the train/val lists it was drawn from and is
  drawn again when the split changed (see ``fewshot_cache_misfit``);
- image existence is checked with one directory listing per folder;
- fallback splits use a private generator with a fixed seed and sorted file
  listings, so they do not depend on the run seed or on ``os.listdir`` order,
  and they do not shift the global ``random`` stream the few-shot sample uses;
- a split without a val list (ImageNet) validates on its test list, as
  upstream, unless ``DATASET.VAL_FROM_TRAIN N`` asks for a val set held out
  from the training images the few-shot sample left (any method may ask; the
  TGP-T configs do), cached beside the few-shot sample.
"""
import hashlib
import json
import math
import os
import random
import tempfile
from collections import defaultdict

from ...config import ConfigError, register_cfg_extension
from ...config.checks import check_int_at_least
from ...utils.atomic import default_file_mode
from ...utils.errors import InputError
from .base_dataset import DatasetBase, Datum
from .split_paths import check_entries_inside

DATASETS_GUIDE = "DATASETS.md"
FALLBACK_SPLIT_SEED = 1
FEWSHOT_DIR = "split_fewshot"
SUBSAMPLE_CHOICES = ("all", "base", "new")
SPLIT_HASH_KEY = "drawn_from_split_sha256"  # in a few-shot (held-out val) file: the lists it was drawn from


@register_cfg_extension
def add_val_from_train_key(cfg):
    """``DATASET.VAL_FROM_TRAIN``: 0 validates a split without a val list on its test list (upstream).

    N >= 1 validates it on max(K, N) images per class held out from the
    training images outside the K-shot sample instead. Splits with a val list
    ignore it.
    """
    cfg.DATASET.VAL_FROM_TRAIN = 0


class DatasetProblem(InputError):
    """Something about a dataset on disk that the user has to fix; the message says what and how."""


class DatasetNotFoundError(DatasetProblem, FileNotFoundError):
    """A dataset folder, image folder or annotation file is absent."""


class SplitFileError(DatasetProblem, ValueError):
    """A split or few-shot JSON file cannot be read as ``{key: [[path, label, classname], ...]}``."""


class MissingImagesError(DatasetProblem, FileNotFoundError):
    """A split file names images that are not on disk."""


def guide_section(anchor):
    """Where DATASETS.md explains a dataset, e.g. ``DATASETS.md#caltech101``."""
    return f"{DATASETS_GUIDE}#{anchor}" if anchor else DATASETS_GUIDE


class FolderIndex:
    """Answers "which files are in this folder?" with one listing per folder, cached.

    Checking 1.3M images one ``stat`` at a time is slow on network storage;
    listing each folder once and looking names up in a set is not.
    """

    def __init__(self):
        self._entries = {}

    def entries(self, folder):
        """``{name: is_dir}`` of the non-hidden entries of ``folder`` (empty when it does not exist)."""
        folder = os.path.normpath(folder)
        if folder not in self._entries:
            try:
                with os.scandir(folder) as scan:
                    self._entries[folder] = {e.name: e.is_dir() for e in scan if not e.name.startswith(".")}
            except (FileNotFoundError, NotADirectoryError):
                self._entries[folder] = {}
        return self._entries[folder]

    def exists(self, path):
        """Whether ``path`` is listed in its parent folder."""
        folder, name = os.path.split(os.path.normpath(path))
        return name in self.entries(folder)

    def subfolders(self, folder):
        """Sorted names of the sub-folders of ``folder``."""
        return sorted(name for name, is_dir in self.entries(folder).items() if is_dir)

    def files(self, folder):
        """Sorted names of the files of ``folder``."""
        return sorted(name for name, is_dir in self.entries(folder).items() if not is_dir)


def read_text_lines(path):
    """The stripped, non-empty lines of an annotation file."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def read_classnames(text_file):
    """``{folder: class name}`` from "folder class name words" lines (ImageNet's classnames.txt format)."""
    classnames = {}
    for line in read_text_lines(text_file):
        folder, _, classname = line.partition(" ")
        classnames[folder] = classname.strip()
    return classnames


def list_class_folders(image_dir, index, ignored=()):
    """``[(folder name, sorted image file names), ...]`` for every class folder, sorted by name."""
    return [(folder, index.files(os.path.join(image_dir, folder)))
            for folder in index.subfolders(image_dir) if folder not in ignored]


def class_folder_items(parent_dir, classes, index):
    """Datums for every image of every ``(folder, label, classname)`` in ``classes``, images sorted by name."""
    return [Datum(impath=os.path.join(parent_dir, folder, name), label=label, classname=classname)
            for folder, label, classname in classes for name in index.files(os.path.join(parent_dir, folder))]


# ----------------------------------------------------------------------------- split files


def _relative_path(impath, path_prefix):
    prefix = os.path.join(path_prefix, "")
    if not impath.startswith(prefix):
        raise ValueError(f"image {impath} is not inside {path_prefix}; a split file can only name images below it")
    return impath[len(prefix):]


def _rows(items, path_prefix):
    return [[_relative_path(item.impath, path_prefix), item.label, item.classname] for item in items]


def lists_sha256(lists, path_prefix):
    """SHA-256 of ``{key: Datum list}`` as a split file writes it (relative paths, labels, class names)."""
    content = {key: _rows(items, path_prefix) for key, items in lists.items() if items is not None}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def write_split(lists, filepath, path_prefix, extra=None):
    """Write ``{key: [[relative_path, label, classname], ...]}`` (indent 4) atomically.

    ``lists`` maps keys to Datum lists; ``None`` entries are left out;
    ``extra`` adds plain keys (e.g. the hash of what a sample was drawn
    from). The temporary file + rename keeps parallel runs from reading half
    a file.
    """
    content = {key: _rows(items, path_prefix) for key, items in lists.items() if items is not None}
    content.update(extra or {})
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".split-", suffix=".json")
    try:
        os.fchmod(handle, default_file_mode())  # readable by the lab, as a plain open would make it
        with os.fdopen(handle, "w") as f:
            json.dump(content, f, indent=4, separators=(",", ": "))
        os.replace(temporary, filepath)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _load_json(filepath):
    try:
        with open(filepath) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SplitFileError(
            f"{filepath} is not valid JSON ({error}); replace it with an intact copy or delete it to rebuild it"
        ) from error


def _valid_entry(entry):
    return (isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[0], str)
            and isinstance(entry[1], int) and not isinstance(entry[1], bool) and isinstance(entry[2], str))


def _parse_entries(content, filepath, keys):
    if not isinstance(content, dict) or any(not isinstance(content.get(key), list) for key in keys):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise SplitFileError(f"{filepath} must be a JSON object with the lists {list(keys)}, found {found}; "
                             "replace it with an intact copy or delete it to rebuild it")
    for key in keys:
        for position, entry in enumerate(content[key]):
            if not _valid_entry(entry):
                raise SplitFileError(f"{filepath}: entry {key}[{position}] = {entry!r} is not "
                                     "[relative_path, int_label, classname]; replace the file with an intact copy")
    return {key: content[key] for key in keys}


def check_images_exist(paths, source, index):
    """Raise naming the first missing image of ``{key: [absolute path, ...]}``; ``source`` says where they came from."""
    missing = [(key, position, path) for key, key_paths in paths.items()
               for position, path in enumerate(key_paths) if not index.exists(path)]
    if missing:
        key, position, path = missing[0]
        total = sum(len(key_paths) for key_paths in paths.values())
        raise MissingImagesError(f"{source}: {len(missing)} of {total} entries name images that do not exist, "
                                 f"first {key}[{position}] {path}; check --root and the image folder layout")


def read_split(filepath, path_prefix, keys=("train", "val", "test"), index=None):
    """Read a split file into ``{key: [Datum, ...]}`` with absolute paths under ``path_prefix``.

    Every named image must exist; the first missing one is named in the error.
    """
    split = read_split_unchecked(filepath, path_prefix, keys)
    check_images_exist({key: [item.impath for item in items] for key, items in split.items()}, filepath,
                       index or FolderIndex())
    return split


def read_split_unchecked(filepath, path_prefix, keys):
    """``read_split`` without looking at the disk: the lists as the file names them."""
    entries = _parse_entries(_load_json(filepath), filepath, keys)
    paths = {key: [os.path.join(path_prefix, row[0]) for row in rows] for key, rows in entries.items()}
    check_entries_inside(paths, path_prefix, filepath)
    return {key: [Datum(impath=path, label=row[1], classname=row[2]) for path, row in zip(paths[key], rows)]
            for key, rows in entries.items()}


def read_split_lists(filepath, path_prefix):
    """Upstream's ``read_split``: ``(train, val, test)`` Datum lists from a ``split_zhou_*.json``."""
    split = read_split(filepath, path_prefix)
    return split["train"], split["val"], split["test"]


def save_split_lists(train, val, test, filepath, path_prefix):
    """Upstream's ``save_split``: write the three lists with paths relative to ``path_prefix``."""
    write_split({"train": train, "val": val, "test": test}, filepath, path_prefix)


# ----------------------------------------------------------------------------- fallback splits


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


# ----------------------------------------------------------------------------- few-shot and base/new


def fewshot_cache_path(dataset_dir, num_shots, seed):
    """``<dataset_dir>/split_fewshot/shot_{K}-seed_{S}.json``."""
    return os.path.join(dataset_dir, FEWSHOT_DIR, f"shot_{num_shots}-seed_{seed}.json")


def held_out_val_cache_path(dataset_dir, num_shots, seed, per_class):
    """``<dataset_dir>/split_fewshot/shot_{K}-seed_{S}-val_{M}.json``, beside the few-shot sample it leaves out."""
    return os.path.join(dataset_dir, FEWSHOT_DIR, f"shot_{num_shots}-seed_{seed}-val_{per_class}.json")


def stored_key(filepath, key):
    """The value of ``key`` in a JSON cache file (None when absent)."""
    content = _load_json(filepath)
    return content.get(key) if isinstance(content, dict) else None


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


def classes_short_of(items, num_shots):
    """Class names that have fewer than ``num_shots`` items, in label order."""
    counts = defaultdict(int)
    names = {}
    for item in items:
        counts[item.label] += 1
        names[item.label] = item.classname
    return [names[label] for label in sorted(counts) if counts[label] < num_shots]


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


# ----------------------------------------------------------------------------- the dataset pattern


class SplitJsonDataset(DatasetBase):
    """root check -> split (file or fallback) -> few-shot (cached) -> base/new -> ``DatasetBase``.

    Subclasses set the class attributes below and, when the split file may be
    absent, override ``make_fallback_split``. After construction the instance
    attributes ``dataset_dir``, ``image_dir`` and ``split_path`` hold absolute
    paths (as upstream dataset classes have them).
    """

    dataset_dir = ""            # folder under DATASET.ROOT
    image_dir = ""              # folder under dataset_dir holding the images ("" = dataset_dir itself)
    split_file = ""             # split JSON under dataset_dir ("" = the split is always built, never stored)
    split_relative_to_dataset_dir = False  # split paths relative to dataset_dir instead of image_dir
    published_split = True      # split_file is the CoOp authors' file: a fallback is only a stand-in
    split_keys = ("train", "val", "test")  # ("train", "test"): no val list, test doubles as val
    required_files = ()         # files under dataset_dir that every load needs
    fallback_files = ()         # files under dataset_dir that building the fallback split needs
    classes_are_folders = False  # image_dir holds one folder per class (fallback: 50/20/30 per folder)
    ignored_folders = ()        # sub-folders of image_dir that are not classes
    new_classnames = None       # {folder: class name} renaming rules for folder classes
    test_only = False           # evaluation-only dataset: no few-shot, no base/new, train_x = test
    guide_anchor = ""           # section of DATASETS.md

    read_split = staticmethod(read_split_lists)  # upstream's static helpers, for ported CoOp-family code
    save_split = staticmethod(save_split_lists)
    split_trainval = staticmethod(split_trainval)
    subsample_classes = staticmethod(subsample_classes)
    read_and_split_data = staticmethod(read_and_split_data)

    def __init__(self, cfg):
        self.locate(cfg)
        val_per_class = self.held_out_val_size(cfg)
        train, val, test = self.load_split()
        if self.test_only:
            super().__init__(train_x=test, test=test)
            return
        sampled, val = self.sample_few_shot(train, val, cfg.DATASET.NUM_SHOTS, cfg.SEED)
        if val_per_class:
            val = self.held_out_val(train, sampled, cfg.DATASET.NUM_SHOTS, cfg.SEED, val_per_class)
        elif val is None and cfg.TEST.FINAL_MODEL == "best_val":
            print(f"Warning: {type(self).__name__} has no val split, so best_val selects on the test set "
                  "(as upstream CoOp); DATASET.VAL_FROM_TRAIN 8 validates on held-out training images instead")
        train, val, test = subsample_classes(sampled, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=test if val is None else val, test=test)

    # ---- folders

    def dataset_folder_name(self, cfg):
        """The dataset's folder under ``DATASET.ROOT``."""
        return type(self).dataset_dir

    def locate(self, cfg):
        """Resolve the absolute folders and fail early, naming what is missing and where to get it."""
        self.folder_index = FolderIndex()
        self.source_files = []
        if not cfg.DATASET.ROOT:
            raise DatasetNotFoundError("DATASET.ROOT is empty: pass --root DATA, the folder that holds the dataset "
                                       f"folders (see {DATASETS_GUIDE})")
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        folder_name = self.dataset_folder_name(cfg)
        self.dataset_dir = os.path.join(root, folder_name)
        self.image_dir = os.path.join(self.dataset_dir, type(self).image_dir) if type(self).image_dir else self.dataset_dir
        self.split_path = os.path.join(self.dataset_dir, self.split_file) if self.split_file else ""
        if not os.path.isdir(self.dataset_dir):
            raise DatasetNotFoundError(f"{type(self).__name__}: expected the folder {folder_name!r} under --root {root} "
                                       f"({self.dataset_dir} does not exist); see {self.guide()}")

    def guide(self):
        """Pointer to this dataset's section of DATASETS.md."""
        return guide_section(self.guide_anchor)

    def require_files(self, names):
        """Raise one error naming every missing file of ``names`` (relative to the dataset folder)."""
        missing = [name for name in names if not os.path.exists(os.path.join(self.dataset_dir, name))]
        if missing:
            raise DatasetNotFoundError(f"{type(self).__name__}: missing {', '.join(missing)} in {self.dataset_dir}; "
                                       f"see {self.guide()}")

    def require_image_dir(self):
        """Raise when the image folder is absent."""
        if not os.path.isdir(self.image_dir):
            raise DatasetNotFoundError(f"{type(self).__name__}: image folder {self.image_dir} does not exist; "
                                       f"see {self.guide()}")

    @property
    def split_root(self):
        """The folder that split-file paths are relative to."""
        return self.dataset_dir if self.split_relative_to_dataset_dir else self.image_dir

    def relative_impath(self, impath):
        """An image's path as the split file writes it."""
        return _relative_path(impath, self.split_root)

    # ---- split

    def load_split(self, inspect=False):
        """``(train, val, test)`` from the split file, else from ``make_fallback_split`` (then saved).

        ``val`` is None for ``("train", "test")`` splits. With ``inspect`` a
        missing published split raises instead of being replaced, and nothing
        is written.
        """
        self.require_files(self.required_files)
        self.require_image_dir()
        if self.split_path and os.path.isfile(self.split_path):
            split = read_split(self.split_path, self.split_root, self.split_keys, self.folder_index)
            self.source_files.append(self.split_path)
            return split["train"], split.get("val"), split["test"]
        if self.split_path and self.published_split and inspect:
            raise DatasetNotFoundError(f"split file {self.split_path} not found; get {self.split_file} as "
                                       f"{self.guide()} says (without it a random stand-in split is built)")
        self.require_files(self.fallback_files)
        if self.split_path and not inspect:
            print(f"{type(self).__name__}: no {self.split_file}, building it from the raw dataset")
        train, val, test = self.make_fallback_split()
        built = {key: [item.impath for item in items] for key, items in zip(("train", "val", "test"), (train, val, test))
                 if items is not None}
        check_images_exist(built, f"{type(self).__name__} lists built from {self.dataset_dir}", self.folder_index)
        if self.split_path and not inspect:
            lists = dict(zip(("train", "val", "test"), (train, val, test)))
            write_split({key: lists[key] for key in self.split_keys}, self.split_path, self.split_root)
            self.source_files.append(self.split_path)
            print(f"Saved the split to {self.split_path}")
        return train, val, test

    def make_fallback_split(self):
        """Build ``(train, val, test)`` from the raw dataset when no split file exists.

        The default serves one-folder-per-class datasets: 50/20/30 per class.
        """
        if not self.classes_are_folders:
            raise DatasetNotFoundError(f"{type(self).__name__}: split file {self.split_path} not found and this "
                                       f"dataset cannot build one; see {self.guide()}")
        return read_and_split_data(self.image_dir, ignored=self.ignored_folders, new_cnames=self.new_classnames,
                                   index=self.folder_index)

    # ---- few-shot

    def sample_few_shot(self, train, val, num_shots, seed):
        """Sample K shots per class (val: min(K, 4)) with the global ``random``, as upstream; cached as JSON."""
        if num_shots < 1:
            return train, val
        cache = fewshot_cache_path(self.dataset_dir, num_shots, seed)
        keys = ("train",) if val is None else ("train", "val")
        drawn_from = lists_sha256({"train": train, "val": val}, self.dataset_dir)
        if os.path.isfile(cache):
            cached = self.cached_few_shot(cache, keys, drawn_from, train, val)
            if cached is not None:
                return cached["train"], cached.get("val")
            print(f"The split changed since {cache} was drawn from it: drawing the few-shot sample again")
        short = classes_short_of(train, num_shots)
        if short:
            print(f"Warning: NUM_SHOTS={num_shots} but {len(short)} class(es) have fewer training images, "
                  f"all of their images are kept: {', '.join(short)}")
        train = self.generate_fewshot_dataset(train, num_shots=num_shots)
        if val is not None:
            val = self.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
        write_split({"train": train, "val": val}, cache, self.dataset_dir, extra={SPLIT_HASH_KEY: drawn_from})
        self.source_files.append(cache)
        print(f"Saved the few-shot data to {cache}")
        return train, val

    def cached_few_shot(self, cache, keys, drawn_from, train, val):
        """The cached sample when it was drawn from this split (``drawn_from``), else None.

        A file without the recorded hash is used only if it fits the split
        (``fewshot_cache_misfit``).
        """
        recorded = stored_key(cache, SPLIT_HASH_KEY)
        if recorded is not None and recorded != drawn_from:
            return None
        if recorded is None:
            misfit = fewshot_cache_misfit(read_split_unchecked(cache, self.dataset_dir, keys), train, val)
            if misfit:
                print(f"{cache} {misfit}")
                return None
        print(f"Loading few-shot data from {cache}")
        self.source_files.append(cache)
        return read_split(cache, self.dataset_dir, keys, self.folder_index)

    def held_out_val_size(self, cfg):
        """Val images per class held out from train: max(K, DATASET.VAL_FROM_TRAIN), or 0 for none.

        Only a split without a val list holds any out. Checked before the
        split is read, so a setting that cannot work stops the run at once.
        """
        minimum, num_shots = cfg.DATASET.VAL_FROM_TRAIN, cfg.DATASET.NUM_SHOTS
        check_int_at_least("DATASET.VAL_FROM_TRAIN", minimum, 0)
        if minimum == 0 or self.test_only or "val" in self.split_keys:
            return 0
        if num_shots < 1:
            raise ConfigError(f"DATASET.VAL_FROM_TRAIN {minimum} holds val images out of the few-shot train sample, "
                              f"but DATASET.NUM_SHOTS is {num_shots}, so every training image is trained on; set "
                              "DATASET.NUM_SHOTS >= 1, or DATASET.VAL_FROM_TRAIN 0 to validate on the test list")
        return max(num_shots, minimum)

    def held_out_val(self, train, sampled, num_shots, seed, per_class):
        """``per_class`` images per class of ``train`` outside the few-shot ``sampled``, drawn with the seed; cached.

        The cache holds every class, so base and new runs share it as they
        share the few-shot sample.
        """
        cache = held_out_val_cache_path(self.dataset_dir, num_shots, seed, per_class)
        drawn_from = lists_sha256({"train": train, "sampled": sampled}, self.dataset_dir)
        recorded = stored_key(cache, SPLIT_HASH_KEY) if os.path.isfile(cache) else None
        if recorded is not None and recorded != drawn_from:
            print(f"The split or the few-shot sample changed since {cache} was drawn: drawing it again")
        elif os.path.isfile(cache):
            print(f"Loading the held-out val data from {cache}")
            val = read_split(cache, self.dataset_dir, ("val",), self.folder_index)["val"]
            check_disjoint(val, sampled, cache)
            self.source_files.append(cache)
            return val
        trained = {item.impath for item in sampled}
        val = sample_per_class([item for item in train if item.impath not in trained], per_class, held_out_rng(seed))
        if not val:
            raise DatasetProblem(f"{type(self).__name__}: the {num_shots}-shot sample takes every training image, "
                                 "none is left to validate on; lower DATASET.NUM_SHOTS or set DATASET.VAL_FROM_TRAIN 0")
        write_split({"val": val}, cache, self.dataset_dir, extra={SPLIT_HASH_KEY: drawn_from})
        self.source_files.append(cache)
        print(f"Saved the held-out val data ({per_class} per class) to {cache}")
        return val

    # ---- inspection

    def class_folder_roots(self):
        """Folders whose sub-folders are classes (checked for empty class folders)."""
        return [self.image_dir] if self.classes_are_folders else []

    def layout_problems(self):
        """Dataset-specific layout rules the split does not reveal (default: none); the doctor reports them."""
        return []
