"""ImageNet-R: 200 wnid folders of renditions (labels 0..199 in sorted wnid order)."""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetR(ImageNetVariant):
    """imagenet-rendition/imagenet-r/<wnid>/*.jpg + classnames.txt."""

    dataset_dir = "imagenet-rendition"
    image_dir = "imagenet-r"
    guide_anchor = "imagenet-r"
