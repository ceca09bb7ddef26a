"""Oxford-IIIT Pets: flat image folder; the breed is the file name minus its trailing number."""
import os

from dassl.data.datasets import DATASET_REGISTRY, Datum
from dassl.data.datasets.annotation_files import read_text_lines
from dassl.data.datasets.folder_splits import split_trainval
from dassl.data.datasets.split_dataset import SplitJsonDataset


def breed_of(image_name):
    """'Abyssinian_12' -> 'abyssinian', 'american_bulldog_3' -> 'american_bulldog'."""
    return image_name.rsplit("_", 1)[0].lower()


@DATASET_REGISTRY.register()
class OxfordPets(SplitJsonDataset):
    """oxford_pets/images/*.jpg + annotations/{trainval,test}.txt + split_zhou_OxfordPets.json."""

    dataset_dir = "oxford_pets"
    image_dir = "images"
    split_file = "split_zhou_OxfordPets.json"
    fallback_files = ("annotations/trainval.txt", "annotations/test.txt")
    guide_anchor = "oxfordpets"

    def make_fallback_split(self):
        """trainval.txt split 80/20 per class; test.txt as test."""
        train, val = split_trainval(self.read_annotations("trainval.txt"))
        return train, val, self.read_annotations("test.txt")

    def read_annotations(self, name):
        """Lines "<image name> <class id 1..37> <species> <breed id>"."""
        items = []
        for line in read_text_lines(os.path.join(self.dataset_dir, "annotations", name)):
            if line.startswith("#"):
                continue
            image_name, class_id = line.split()[:2]
            items.append(Datum(impath=os.path.join(self.image_dir, image_name + ".jpg"), label=int(class_id) - 1,
                               classname=breed_of(image_name)))
        return items
