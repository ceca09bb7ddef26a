"""Stanford Cars: .mat annotations; split paths are relative to the dataset folder; year first in names."""
import os

from scipy.io import loadmat

from dassl.data.datasets import DATASET_REGISTRY, Datum
from dassl.data.datasets.folder_splits import split_trainval
from dassl.data.datasets.split_dataset import SplitJsonDataset

TRAIN_ANNOTATIONS = "devkit/cars_train_annos.mat"
TEST_ANNOTATIONS = "cars_test_annos_withlabels.mat"
META = "devkit/cars_meta.mat"


def year_first(name):
    """'AM General Hummer SUV 2000' -> '2000 AM General Hummer SUV'."""
    words = name.split(" ")
    return " ".join(words[-1:] + words[:-1])


@DATASET_REGISTRY.register()
class StanfordCars(SplitJsonDataset):
    """stanford_cars/{cars_train,cars_test}/*.jpg + devkit/ + split_zhou_StanfordCars.json."""

    dataset_dir = "stanford_cars"
    split_file = "split_zhou_StanfordCars.json"
    split_relative_to_dataset_dir = True
    fallback_files = (TRAIN_ANNOTATIONS, TEST_ANNOTATIONS, META)
    guide_anchor = "stanfordcars"

    def make_fallback_split(self):
        """Devkit train annotations split 80/20 per class; labelled test annotations as test."""
        train, val = split_trainval(self.read_annotations("cars_train", TRAIN_ANNOTATIONS))
        return train, val, self.read_annotations("cars_test", TEST_ANNOTATIONS)

    def read_annotations(self, image_folder, annotation_file):
        """Records with fields ``fname`` and ``class`` (1-based index into ``cars_meta.mat``'s class_names)."""
        names = loadmat(os.path.join(self.dataset_dir, META))["class_names"][0]
        records = loadmat(os.path.join(self.dataset_dir, annotation_file))["annotations"][0]
        items = []
        for record in records:
            label = int(record["class"][0, 0]) - 1
            items.append(Datum(impath=os.path.join(self.dataset_dir, image_folder, str(record["fname"][0])),
                               label=label, classname=year_first(str(names[label][0]))))
        return items
