"""Listing image folders once: which files and class folders a dataset folder holds.

Image existence is checked with one directory listing per folder, not one
``stat`` per image, and listings are sorted, so nothing depends on
``os.listdir`` order.
"""
import os

from .base_dataset import Datum


class FolderIndex:
    """Answers "which files are in this folder?" with one listing per folder, cached.

    Checking 1.3M images one ``stat`` at a time is slow on network storage;
    listing each folder once and looking names up in a set is not.
    """

    def __init__(self):
        self._entries = {}

    def entries(self, folder):
        """``{name: is_dir}`` of the non-hidden entries of ``folder`` (empty when it does not exist)."""
        folder = os.path.normpath(folder)
        if folder not in self._entries:
            try:
                with os.scandir(folder) as scan:
                    self._entries[folder] = {e.name: e.is_dir() for e in scan if not e.name.startswith(".")}
            except (FileNotFoundError, NotADirectoryError):
                self._entries[folder] = {}
        return self._entries[folder]

    def exists(self, path):
        """Whether ``path`` is listed in its parent folder."""
        folder, name = os.path.split(os.path.normpath(path))
        return name in self.entries(folder)

    def subfolders(self, folder):
        """Sorted names of the sub-folders of ``folder``."""
        return sorted(name for name, is_dir in self.entries(folder).items() if is_dir)

    def files(self, folder):
        """Sorted names of the files of ``folder``."""
        return sorted(name for name, is_dir in self.entries(folder).items() if not is_dir)


def list_class_folders(image_dir, index, ignored=()):
    """``[(folder name, sorted image file names), ...]`` for every class folder, sorted by name."""
    return [(folder, index.files(os.path.join(image_dir, folder)))
            for folder in index.subfolders(image_dir) if folder not in ignored]


def class_folder_items(parent_dir, classes, index):
    """Datums for every image of every ``(folder, label, classname)`` in ``classes``, images sorted by name."""
    return [Datum(impath=os.path.join(parent_dir, folder, name), label=label, classname=classname)
            for folder, label, classname in classes for name in index.files(os.path.join(parent_dir, folder))]
