from . import held_out_val  # noqa: F401  (registers DATASET.VAL_FROM_TRAIN, a key of every dataset)
from .base_dataset import DatasetBase, Datum
from .build import DATASET_REGISTRY, build_dataset
