"""ImageNet: train/val wnid folders and classnames.txt; its lists are cached as JSON, not a pickle.

Also home of the helpers the four ImageNet variants share.
"""
import os

from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.annotation_files import read_classnames
from dassl.data.datasets.dataset_errors import DatasetProblem
from dassl.data.datasets.folder_index import class_folder_items
from dassl.data.datasets.split_dataset import SplitJsonDataset


def wnid_classes(folders, classnames, source):
    """``[(folder, label, classname)]``: labels follow the sorted wnid folders, names come from classnames.txt."""
    unknown = [folder for folder in folders if folder not in classnames]
    if unknown:
        raise DatasetProblem(f"{source}: folder(s) {', '.join(unknown[:5])} have no line in classnames.txt; "
                             "use the classnames.txt of DATASETS.md#imagenet")
    return [(folder, label, classnames[folder]) for label, folder in enumerate(sorted(folders))]


@DATASET_REGISTRY.register()
class ImageNet(SplitJsonDataset):
    """imagenet/images/{train,val}/<wnid>/*.JPEG + classnames.txt; the official val set is test.

    There is no val list: val is the test list (upstream CoOp), or with
    DATASET.VAL_FROM_TRAIN N (TGP-T's configs) max(K, N) per class held out
    from the train images outside the K-shot sample.
    """

    dataset_dir = "imagenet"
    image_dir = "images"
    split_file = "split_imagenet.json"
    published_split = False
    split_keys = ("train", "test")
    required_files = ("classnames.txt",)
    guide_anchor = "imagenet"

    read_classnames = staticmethod(read_classnames)

    def class_folder_roots(self):
        return [os.path.join(self.image_dir, part) for part in ("train", "val")]

    def make_fallback_split(self):
        """List the train and val wnid folders once (one listing per folder); the JSON cache keeps the result."""
        problems = self.layout_problems()
        if problems:
            raise DatasetProblem(f"ImageNet: {'; '.join(problems)}")
        classnames = read_classnames(os.path.join(self.dataset_dir, "classnames.txt"))
        train_dir, val_dir = self.class_folder_roots()
        classes = wnid_classes(self.folder_index.subfolders(train_dir), classnames, train_dir)
        labels = {folder: label for folder, label, _ in classes}
        val_classes = [(folder, labels[folder], classnames[folder]) for folder in self.folder_index.subfolders(val_dir)]
        return (class_folder_items(train_dir, classes, self.folder_index), None,
                class_folder_items(val_dir, val_classes, self.folder_index))

    def layout_problems(self):
        """train/val must hold wnid folders named in classnames.txt; a flat val folder is the usual mistake."""
        index = self.folder_index
        train_dir, val_dir = self.class_folder_roots()
        train_folders = set(index.subfolders(train_dir))
        problems = [f"{path} has no class folders" for path in (train_dir, val_dir) if not index.subfolders(path)]
        flat = index.files(val_dir)
        if flat:
            problems.append(f"{val_dir} holds {len(flat)} image file(s) directly (e.g. {flat[0]}); sort them into "
                            "one folder per wnid as DATASETS.md#imagenet shows")
        stray = sorted(set(index.subfolders(val_dir)) - train_folders)
        if stray and train_folders:
            problems.append(f"{val_dir} has class folder(s) missing from train: {', '.join(stray[:5])}")
        classnames_file = os.path.join(self.dataset_dir, "classnames.txt")
        if os.path.isfile(classnames_file):
            unnamed = sorted(train_folders - set(read_classnames(classnames_file)))
            if unnamed:
                problems.append(f"train folder(s) without a line in classnames.txt: {', '.join(unnamed[:5])}")
        return problems


class ImageNetVariant(SplitJsonDataset):
    """An evaluation-only ImageNet variant: class folders under ``image_dir``, its own classnames.txt."""

    test_only = True
    classes_are_folders = True
    required_files = ("classnames.txt",)

    def make_fallback_split(self):
        """All images as the test list (also train_x, as upstream)."""
        classnames = read_classnames(os.path.join(self.dataset_dir, "classnames.txt"))
        classes = self.label_folders(self.folder_index.subfolders(self.image_dir), classnames)
        return None, None, class_folder_items(self.image_dir, classes, self.folder_index)

    def label_folders(self, folders, classnames):
        """``[(folder, label, classname)]`` for the variant's class folders (default: sorted wnids)."""
        return wnid_classes(folders, classnames, self.image_dir)
