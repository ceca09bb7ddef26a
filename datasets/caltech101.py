"""Caltech-101: one folder per class; two folders are not object classes, four names are plural."""
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.split_dataset import SplitJsonDataset


@DATASET_REGISTRY.register()
class Caltech101(SplitJsonDataset):
    """caltech-101/101_ObjectCategories/<class>/*.jpg + split_zhou_Caltech101.json."""

    dataset_dir = "caltech-101"
    image_dir = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    classes_are_folders = True
    ignored_folders = ("BACKGROUND_Google", "Faces_easy")
    new_classnames = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
    guide_anchor = "caltech101"
