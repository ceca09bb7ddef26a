"""Oxford Flowers-102: flat image folder, labels in imagelabels.mat, names in cat_to_name.json."""
import json
import os
from collections import defaultdict

from scipy.io import loadmat

from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.dataset_errors import DatasetProblem
from dassl.data.datasets.folder_splits import split_class_groups
from dassl.data.datasets.split_dataset import SplitJsonDataset


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitJsonDataset):
    """oxford_flowers/jpg/image_%05d.jpg + imagelabels.mat + cat_to_name.json + split_zhou_OxfordFlowers.json."""

    dataset_dir = "oxford_flowers"
    image_dir = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"
    fallback_files = ("imagelabels.mat", "cat_to_name.json")
    guide_anchor = "oxfordflowers"

    def make_fallback_split(self):
        """50/20/30 per class; image i (from 1) has label ``labels[i - 1]`` (1-based)."""
        labels = loadmat(os.path.join(self.dataset_dir, "imagelabels.mat"))["labels"][0]
        names_file = os.path.join(self.dataset_dir, "cat_to_name.json")
        with open(names_file) as f:
            names = json.load(f)
        by_label = defaultdict(list)
        for number, label in enumerate(labels, start=1):
            by_label[int(label)].append(os.path.join(self.image_dir, f"image_{number:05d}.jpg"))
        unnamed = [label for label in by_label if str(label) not in names]
        if unnamed:
            raise DatasetProblem(f"{names_file} has no name for label(s) {unnamed}; use the CoOp authors' file")
        return split_class_groups([(label - 1, names[str(label)], paths) for label, paths in by_label.items()])
