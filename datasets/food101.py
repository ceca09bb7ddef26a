"""Food-101: one folder per dish."""
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.split_dataset import SplitJsonDataset


@DATASET_REGISTRY.register()
class Food101(SplitJsonDataset):
    """food-101/images/<class>/*.jpg + split_zhou_Food101.json."""

    dataset_dir = "food-101"
    image_dir = "images"
    split_file = "split_zhou_Food101.json"
    classes_are_folders = True
    guide_anchor = "food101"
