"""Mini Fashion-MNIST: 10 clothing classes of real 28x28 photos, for fast end-to-end runs with MiniCLIP."""
from dassl.data.datasets import DATASET_REGISTRY

from .mini_world import ShippedMiniDataset


@DATASET_REGISTRY.register()
class MiniFashionMNIST(ShippedMiniDataset):
    """mini_fashion_mnist/images/<class>/*.png + split_zhou_MiniFashionMNIST.json.

    Unpacked from the shipped ``mini_world/mini_fashion_mnist.tar.xz`` into
    ``DATASET.ROOT`` on first use.
    """

    dataset_dir = "mini_fashion_mnist"
    image_dir = "images"
    split_file = "split_zhou_MiniFashionMNIST.json"
