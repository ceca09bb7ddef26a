"""Reading and writing split files: ``{key: [[relative_path, label, classname], ...]}`` JSON.

The upstream ``split_zhou_<Name>.json`` files and the few-shot (held-out val)
caches share this format; paths are relative to a folder, so a moved data
folder keeps working, and nothing is ever unpickled. A file drawn from a split
records the SHA-256 of the lists it was drawn from under ``SPLIT_HASH_KEY``.
"""
import hashlib
import json
import os
import tempfile

from ...utils.atomic import default_file_mode
from .base_dataset import Datum
from .dataset_errors import MissingImagesError, SplitFileError
from .folder_index import FolderIndex
from .split_paths import check_entries_inside

SPLIT_HASH_KEY = "drawn_from_split_sha256"  # in a few-shot (held-out val) file: the lists it was drawn from


def relative_path(impath, path_prefix):
    prefix = os.path.join(path_prefix, "")
    if not impath.startswith(prefix):
        raise ValueError(f"image {impath} is not inside {path_prefix}; a split file can only name images below it")
    return impath[len(prefix):]


def _rows(items, path_prefix):
    return [[relative_path(item.impath, path_prefix), item.label, item.classname] for item in items]


def lists_sha256(lists, path_prefix):
    """SHA-256 of ``{key: Datum list}`` as a split file writes it (relative paths, labels, class names)."""
    content = {key: _rows(items, path_prefix) for key, items in lists.items() if items is not None}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def write_split(lists, filepath, path_prefix, extra=None):
    """Write ``{key: [[relative_path, label, classname], ...]}`` (indent 4) atomically.

    ``lists`` maps keys to Datum lists; ``None`` entries are left out;
    ``extra`` adds plain keys (e.g. the hash of what a sample was drawn
    from). The temporary file + rename keeps parallel runs from reading half
    a file.
    """
    content = {key: _rows(items, path_prefix) for key, items in lists.items() if items is not None}
    content.update(extra or {})
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".split-", suffix=".json")
    try:
        os.fchmod(handle, default_file_mode())  # readable by the lab, as a plain open would make it
        with os.fdopen(handle, "w") as f:
            json.dump(content, f, indent=4, separators=(",", ": "))
        os.replace(temporary, filepath)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _load_json(filepath):
    try:
        with open(filepath) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SplitFileError(
            f"{filepath} is not valid JSON ({error}); replace it with an intact copy or delete it to rebuild it"
        ) from error


def _valid_entry(entry):
    return (isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[0], str)
            and isinstance(entry[1], int) and not isinstance(entry[1], bool) and isinstance(entry[2], str))


def _parse_entries(content, filepath, keys):
    if not isinstance(content, dict) or any(not isinstance(content.get(key), list) for key in keys):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise SplitFileError(f"{filepath} must be a JSON object with the lists {list(keys)}, found {found}; "
                             "replace it with an intact copy or delete it to rebuild it")
    for key in keys:
        for position, entry in enumerate(content[key]):
            if not _valid_entry(entry):
                raise SplitFileError(f"{filepath}: entry {key}[{position}] = {entry!r} is not "
                                     "[relative_path, int_label, classname]; replace the file with an intact copy")
    return {key: content[key] for key in keys}


def check_images_exist(paths, source, index):
    """Raise naming the first missing image of ``{key: [absolute path, ...]}``; ``source`` says where they came from."""
    missing = [(key, position, path) for key, key_paths in paths.items()
               for position, path in enumerate(key_paths) if not index.exists(path)]
    if missing:
        key, position, path = missing[0]
        total = sum(len(key_paths) for key_paths in paths.values())
        raise MissingImagesError(f"{source}: {len(missing)} of {total} entries name images that do not exist, "
                                 f"first {key}[{position}] {path}; check --root and the image folder layout")


def read_split(filepath, path_prefix, keys=("train", "val", "test"), index=None):
    """Read a split file into ``{key: [Datum, ...]}`` with absolute paths under ``path_prefix``.

    Every named image must exist; the first missing one is named in the error.
    """
    split = read_split_unchecked(filepath, path_prefix, keys)
    check_images_exist({key: [item.impath for item in items] for key, items in split.items()}, filepath,
                       index or FolderIndex())
    return split


def read_split_unchecked(filepath, path_prefix, keys):
    """``read_split`` without looking at the disk: the lists as the file names them."""
    entries = _parse_entries(_load_json(filepath), filepath, keys)
    paths = {key: [os.path.join(path_prefix, row[0]) for row in rows] for key, rows in entries.items()}
    check_entries_inside(paths, path_prefix, filepath)
    return {key: [Datum(impath=path, label=row[1], classname=row[2]) for path, row in zip(paths[key], rows)]
            for key, rows in entries.items()}


def read_split_lists(filepath, path_prefix):
    """Upstream's ``read_split``: ``(train, val, test)`` Datum lists from a ``split_zhou_*.json``."""
    split = read_split(filepath, path_prefix)
    return split["train"], split["val"], split["test"]


def save_split_lists(train, val, test, filepath, path_prefix):
    """Upstream's ``save_split``: write the three lists with paths relative to ``path_prefix``."""
    write_split({"train": train, "val": val, "test": test}, filepath, path_prefix)


def stored_key(filepath, key):
    """The value of ``key`` in a JSON cache file (None when absent)."""
    content = _load_json(filepath)
    return content.get(key) if isinstance(content, dict) else None
