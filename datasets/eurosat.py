"""EuroSAT (RGB): one folder per land-use class; CamelCase folders get descriptive names."""
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.split_dataset import SplitJsonDataset

NEW_CLASSNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitJsonDataset):
    """eurosat/2750/<class>/*.jpg + split_zhou_EuroSAT.json."""

    dataset_dir = "eurosat"
    image_dir = "2750"
    split_file = "split_zhou_EuroSAT.json"
    classes_are_folders = True
    new_classnames = NEW_CLASSNAMES
    guide_anchor = "eurosat"
