"""Split entries stay inside their dataset: a split file names images below its folder, nothing else.

`os.path.join(folder, "/abs/x.jpg")` is `/abs/x.jpg`, and `../` climbs out,
so an edited or foreign split file could train on (and write caches about)
files anywhere; such an entry is refused with its position and file.
"""
import os

from ...utils.errors import InputError


class SplitEntryOutsideError(InputError, ValueError):
    """A split-file entry whose image path leaves the dataset's image folder."""


def leaves_folder(path, folder):
    """True if `path` (joined and normalised) is not below `folder`."""
    inside = os.path.join(os.path.normpath(folder), "")
    return not os.path.normpath(path).startswith(inside)


def check_entries_inside(paths, folder, source):
    """Raise naming the first entry of ``{key: [absolute path, ...]}`` outside `folder`; `source` is the split file."""
    for key, key_paths in paths.items():
        for position, path in enumerate(key_paths):
            if leaves_folder(path, folder):
                raise SplitEntryOutsideError(
                    f"{source}: entry {key}[{position}] names {path}, outside the image folder {folder}; a split "
                    "file holds paths relative to that folder: fix the entry, or replace the file with an intact copy"
                )
