"""Describable Textures: one folder per texture class."""
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.split_dataset import SplitJsonDataset


@DATASET_REGISTRY.register()
class DescribableTextures(SplitJsonDataset):
    """dtd/images/<class>/*.jpg + split_zhou_DescribableTextures.json."""

    dataset_dir = "dtd"
    image_dir = "images"
    split_file = "split_zhou_DescribableTextures.json"
    classes_are_folders = True
    guide_anchor = "describabletextures"
