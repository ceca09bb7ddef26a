"""ImageNet-A: 200 wnid folders (labels 0..199 in sorted wnid order); README.txt is not a class."""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetA(ImageNetVariant):
    """imagenet-adversarial/imagenet-a/<wnid>/*.jpg + classnames.txt."""

    dataset_dir = "imagenet-adversarial"
    image_dir = "imagenet-a"
    guide_anchor = "imagenet-a"
