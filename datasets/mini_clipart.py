"""Mini clip-art: 33 object/symbol classes of public-domain clip-art, for fast end-to-end runs with MiniCLIP."""
from dassl.data.datasets import DATASET_REGISTRY

from .mini_world import ShippedMiniDataset


@DATASET_REGISTRY.register()
class MiniClipart(ShippedMiniDataset):
    """mini_clipart/images/<class>/*.png + split_zhou_MiniClipart.json.

    Unpacked from the shipped ``mini_world/mini_clipart.tar.xz`` into
    ``DATASET.ROOT`` on first use.
    """

    dataset_dir = "mini_clipart"
    image_dir = "images"
    split_file = "split_zhou_MiniClipart.json"
