"""ImageNet-V2 (matched frequency): folders 0..999 are ImageNet labels; names in ImageNet order."""
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.dataset_errors import DatasetProblem

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetVariant):
    """imagenetv2/imagenetv2-matched-frequency-format-val/<label>/*.jpeg + classnames.txt."""

    dataset_dir = "imagenetv2"
    image_dir = "imagenetv2-matched-frequency-format-val"
    guide_anchor = "imagenetv2"

    def label_folders(self, folders, classnames):
        """Folder "k" holds class k of classnames.txt (ImageNet's sorted wnid order)."""
        names = list(classnames.values())
        invalid = [folder for folder in folders if not folder.isdigit() or int(folder) >= len(names)]
        if invalid:
            raise DatasetProblem(f"{self.image_dir}: folder(s) {', '.join(invalid[:5])} are not labels 0..{len(names) - 1}")
        return [(folder, int(folder), names[int(folder)]) for folder in sorted(folders, key=int)]
