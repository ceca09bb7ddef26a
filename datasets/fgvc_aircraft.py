"""FGVC-Aircraft: the official variant split files are the split (no JSON); labels follow variants.txt."""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum
from dassl.data.datasets.annotation_files import read_text_lines
from dassl.data.datasets.dataset_errors import DatasetProblem
from dassl.data.datasets.split_dataset import SplitJsonDataset

PARTS = ("train", "val", "test")


@DATASET_REGISTRY.register()
class FGVCAircraft(SplitJsonDataset):
    """fgvc_aircraft/images/<id>.jpg + variants.txt + images_variant_{train,val,test}.txt."""

    dataset_dir = "fgvc_aircraft"
    image_dir = "images"
    required_files = ("variants.txt",) + tuple(f"images_variant_{part}.txt" for part in PARTS)
    guide_anchor = "fgvcaircraft"

    def make_fallback_split(self):
        """The official train/val/test files, read every time (they are the published split)."""
        variants = read_text_lines(os.path.join(self.dataset_dir, "variants.txt"))
        labels = {variant: label for label, variant in enumerate(variants)}
        return tuple(self.read_annotations(labels, f"images_variant_{part}.txt") for part in PARTS)

    def read_annotations(self, labels, name):
        """Lines "<image id> <variant name>"."""
        path = os.path.join(self.dataset_dir, name)
        items = []
        for line in read_text_lines(path):
            image_id, _, variant = line.partition(" ")
            if variant not in labels:
                raise DatasetProblem(f"{path}: variant {variant!r} of image {image_id} is not in variants.txt")
            items.append(Datum(impath=os.path.join(self.image_dir, image_id + ".jpg"), label=labels[variant],
                               classname=variant))
        return items
