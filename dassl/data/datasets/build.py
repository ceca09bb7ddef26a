"""DATASET_REGISTRY and build_dataset."""
from ...utils import Registry

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Instantiate `DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)`."""
    name = cfg.DATASET.NAME
    if not name:
        raise ValueError("DATASET.NAME is empty: pass --dataset-config-file configs/datasets/<name>.yaml")
    dataset_class = DATASET_REGISTRY.get(name)
    if cfg.VERBOSE:
        print(f"Loading dataset: {name}")
    return dataset_class(cfg)
