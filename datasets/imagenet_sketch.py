"""ImageNet-Sketch: 1000 wnid folders of sketches."""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetVariant):
    """imagenet-sketch/images/<wnid>/*.JPEG + classnames.txt."""

    dataset_dir = "imagenet-sketch"
    image_dir = "images"
    guide_anchor = "imagenet-sketch"
