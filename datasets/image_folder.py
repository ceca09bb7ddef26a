"""Your own data: ``DATA/<DATASET.FOLDER>/<class>/<images>``, split once and saved beside the images."""
import os

from dassl.config import register_cfg_extension
from dassl.config.checks import invalid_value
from dassl.data.datasets import DATASET_REGISTRY
from dassl.data.datasets.annotation_files import read_classnames
from dassl.data.datasets.dataset_errors import DatasetNotFoundError, DatasetProblem
from dassl.data.datasets.few_shot import FEWSHOT_DIR
from dassl.data.datasets.folder_index import FolderIndex
from dassl.data.datasets.folder_splits import read_and_split_data
from dassl.data.datasets.split_dataset import SplitJsonDataset

CLASSNAMES_FILE = "classnames.txt"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class ImageFileIndex(FolderIndex):
    """A FolderIndex whose `files` are images by extension; the other files (Thumbs.db, notes.txt) are remembered."""

    def __init__(self):
        super().__init__()
        self.skipped = {}

    def files(self, folder):
        names = super().files(folder)
        images = [name for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
        for name in names:
            if name not in images:
                self.skipped[os.path.join(folder, name)] = True
        return images

    def report_skipped(self):
        """One line naming the files left out (not images by their extension)."""
        if self.skipped:
            names = sorted({os.path.basename(path) for path in self.skipped})
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            print(f"Note: skipped {len(self.skipped)} file(s) that are not images by their extension "
                  f"({', '.join(IMAGE_EXTENSIONS)}): {shown}")


@register_cfg_extension
def add_folder_key(cfg):
    """``DATASET.FOLDER``: the folder under ``DATASET.ROOT`` that ``ImageFolderDataset`` reads."""
    cfg.DATASET.FOLDER = ""


@DATASET_REGISTRY.register()
class ImageFolderDataset(SplitJsonDataset):
    """One sub-folder per class; a 50/20/30 split with a fixed seed is written to ``split_<folder>.json``.

    Class names: ``classnames.txt`` ("folder class name" lines) if present, else
    the folder names with underscores read as spaces.
    """

    published_split = False
    classes_are_folders = True
    ignored_folders = (FEWSHOT_DIR,)
    guide_anchor = "your-own-image-folder"

    def dataset_folder_name(self, cfg):
        folder = cfg.DATASET.FOLDER
        if not folder:
            raise DatasetNotFoundError("ImageFolderDataset needs DATASET.FOLDER, the folder under --root with one "
                                       f"sub-folder per class (e.g. `DATASET.FOLDER my_set`); see {self.guide()}")
        if os.path.isabs(os.path.expanduser(folder)) or os.path.normpath(folder).split(os.sep)[0] == os.pardir:
            raise invalid_value("DATASET.FOLDER", folder, "a folder under --root (not an absolute path, no '..' "
                                "leaving it), as the split and few-shot files are written there")
        return folder

    def locate(self, cfg):
        self.split_file = f"split_{os.path.basename(os.path.normpath(self.dataset_folder_name(cfg)))}.json"
        super().locate(cfg)
        self.folder_index = ImageFileIndex()

    def make_fallback_split(self):
        folders = [folder for folder in self.folder_index.subfolders(self.image_dir) if folder not in self.ignored_folders]
        if not folders:
            raise DatasetNotFoundError(f"{self.image_dir} has no class folders; put each class's images in "
                                       f"{self.image_dir}/<class name>/ (see {self.guide()})")
        lists = read_and_split_data(self.image_dir, ignored=self.ignored_folders,
                                    new_cnames=self.folder_classnames(folders), index=self.folder_index)
        self.folder_index.report_skipped()
        return lists

    def folder_classnames(self, folders):
        """``{folder: class name}`` from classnames.txt, or from the folder names."""
        path = os.path.join(self.dataset_dir, CLASSNAMES_FILE)
        if not os.path.isfile(path):
            return {folder: folder.replace("_", " ") for folder in folders}
        classnames = read_classnames(path)
        unnamed = [folder for folder in folders if not classnames.get(folder)]
        if unnamed:
            raise DatasetProblem(f"{path} has no class name for folder(s) {', '.join(unnamed)}; add a line "
                                 "\"<folder> <class name>\" for each, or delete the file to use the folder names")
        return classnames
