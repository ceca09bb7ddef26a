"""UCF-101 as one middle frame per video; CamelCase actions become "_"-joined folder and class names."""
import os
import re

from dassl.data.datasets import DATASET_REGISTRY, Datum
from dassl.data.datasets.annotation_files import read_text_lines
from dassl.data.datasets.dataset_errors import DatasetProblem
from dassl.data.datasets.folder_splits import split_trainval
from dassl.data.datasets.split_dataset import SplitJsonDataset

LISTS = "ucfTrainTestlist"


def split_camel_case(action):
    """'ApplyEyeMakeup' -> 'Apply_Eye_Makeup' (the mid-frame folder and the class name)."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(SplitJsonDataset):
    """ucf101/UCF-101-midframes/<Action_Name>/<video>.jpg + split_zhou_UCF101.json."""

    dataset_dir = "ucf101"
    image_dir = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"
    classes_are_folders = True
    fallback_files = tuple(f"{LISTS}/{name}" for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"))
    guide_anchor = "ucf101"

    def make_fallback_split(self):
        """trainlist01 split 80/20 per class; testlist01 as test; labels from classInd.txt."""
        labels = {}
        for line in read_text_lines(os.path.join(self.dataset_dir, LISTS, "classInd.txt")):
            number, action = line.split(" ")
            labels[action] = int(number) - 1
        train, val = split_trainval(self.read_annotations(labels, "trainlist01.txt"))
        return train, val, self.read_annotations(labels, "testlist01.txt")

    def read_annotations(self, labels, name):
        """Lines "<Action>/<video>.avi[ <label>]"; the frame is <Action_Name>/<video>.jpg."""
        path = os.path.join(self.dataset_dir, LISTS, name)
        items = []
        for line in read_text_lines(path):
            action, video = line.split(" ")[0].split("/")
            if action not in labels:
                raise DatasetProblem(f"{path}: action {action!r} is not in classInd.txt")
            classname = split_camel_case(action)
            frame = os.path.splitext(video)[0] + ".jpg"
            items.append(Datum(impath=os.path.join(self.image_dir, classname, frame), label=labels[action],
                               classname=classname))
        return items
