"""The shared pattern of the split-file benchmarks, written once: ``SplitJsonDataset``.

CoOp-family datasets all do the same thing: read a fixed train/val/test split
(``split_zhou_<Name>.json``) or build one from the raw annotations, sample
few-shot subsets with a per-(shots, seed) cache, keep the base or new half of
the classes, and hand the three lists to ``DatasetBase``. This class ties
those steps together; each lives in its own module (``split_files``,
``folder_splits``, ``few_shot``, ``held_out_val``, ``base_new``), so a dataset
file only states what is specific to it: folder names, class-name rules and
where a fallback split comes from.
"""
import os

from ...config import ConfigError
from ...config.checks import check_int_at_least
from .base_dataset import DatasetBase
from .base_new import subsample_classes
from .dataset_errors import DATASETS_GUIDE, DatasetNotFoundError, DatasetProblem, guide_section
from .few_shot import classes_short_of, fewshot_cache_misfit, fewshot_cache_path
from .folder_index import FolderIndex
from .folder_splits import read_and_split_data, split_trainval
from .held_out_val import check_disjoint, held_out_rng, held_out_val_cache_path, sample_per_class
from .split_files import (
    SPLIT_HASH_KEY, check_images_exist, lists_sha256, read_split, read_split_lists, read_split_unchecked,
    relative_path, save_split_lists, stored_key, write_split,
)


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
        return relative_path(impath, self.split_root)

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
