"""SUN397: images under letter/class[/sub-class] folders; names read those folders backwards."""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum
from dassl.data.datasets.annotation_files import read_text_lines
from dassl.data.datasets.dataset_errors import DatasetProblem
from dassl.data.datasets.folder_splits import split_trainval
from dassl.data.datasets.split_dataset import SplitJsonDataset


def scene_name(class_folder):
    """'a/apse/indoor' -> 'indoor apse' (letter folder dropped, remaining parts reversed)."""
    return " ".join(class_folder.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(SplitJsonDataset):
    """sun397/SUN397/<letter>/<class>/*.jpg + ClassName.txt, Training_01.txt, Testing_01.txt + split json."""

    dataset_dir = "sun397"
    image_dir = "SUN397"
    split_file = "split_zhou_SUN397.json"
    fallback_files = ("ClassName.txt", "Training_01.txt", "Testing_01.txt")
    guide_anchor = "sun397"

    def make_fallback_split(self):
        """Training_01 split 80/20 per class; Testing_01 as test; labels follow ClassName.txt."""
        folders = [line.lstrip("/") for line in read_text_lines(os.path.join(self.dataset_dir, "ClassName.txt"))]
        labels = {folder: label for label, folder in enumerate(folders)}
        train, val = split_trainval(self.read_annotations(labels, "Training_01.txt"))
        return train, val, self.read_annotations(labels, "Testing_01.txt")

    def read_annotations(self, labels, name):
        """Lines "/<letter>/<class>/<image>"."""
        path = os.path.join(self.dataset_dir, name)
        items = []
        for line in read_text_lines(path):
            relative = line.lstrip("/")
            folder = os.path.dirname(relative)
            if folder not in labels:
                raise DatasetProblem(f"{path}: class folder {folder!r} of {line} is not in ClassName.txt")
            items.append(Datum(impath=os.path.join(self.image_dir, relative), label=labels[folder],
                               classname=scene_name(folder)))
        return items
