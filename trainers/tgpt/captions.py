"""Per-image content descriptions (TGP-T's content supervision), read from the dataset folder.

File: `captions.txt`, else `descriptions.txt` (the authors' name), UTF-8, one
TAB-separated line per image: relative image path, one-sentence description,
optional category (ignored). Keys are matched against the image path as the
split file stores it (relative to the image folder, or to the dataset folder
for StanfordCars). Authors' keys are normalised first: leading
"<dataset folder>/" and "<image folder>/" components are dropped (ImageNet's
"imagenet/images/train/<wnid>/<file>"), and StanfordCars' bare file names
are read as "cars_train/<name>".
"""
import os

from dassl.data.datasets.dataset_errors import DatasetNotFoundError, DatasetProblem
from dassl.utils.errors import InputError

CAPTION_FILES = ("captions.txt", "descriptions.txt")
DISABLE_OPTION = "TRAINER.TGPT.CONTENT_LOSS False"
BARE_NAME_FOLDERS = {"StanfordCars": "cars_train"}


class MissingDescriptionError(InputError, LookupError):
    """A training image has no line in the descriptions file."""


class CaptionFileError(DatasetProblem, ValueError):
    """The descriptions file is not UTF-8 text of '<image path>\t<description>' lines."""


def _absolute(folder, root):
    folder = os.path.expanduser(folder)
    return folder if os.path.isabs(folder) else os.path.join(os.path.abspath(root), folder)


def dataset_folders(dataset, root):
    """(dataset folder, folder that image keys are relative to), both absolute.

    SplitJsonDataset instances say so themselves (`dataset_dir`, `split_root`);
    other Dassl datasets are read through their `dataset_dir` (and `image_dir`
    if they have one), relative to DATASET.ROOT when not absolute.
    """
    folder = getattr(dataset, "dataset_dir", "")
    if not folder:
        raise DatasetProblem(
            f"{type(dataset).__name__} has no dataset_dir, so its descriptions file cannot be located; "
            f"give the dataset a dataset_dir or train with `{DISABLE_OPTION}`"
        )
    folder = _absolute(folder, root)
    key_root = getattr(dataset, "split_root", None) or getattr(dataset, "image_dir", "") or folder
    return folder, _absolute(key_root, root)


def present_caption_file(dataset_folder):
    """The first of CAPTION_FILES present in `dataset_folder`, or None."""
    for name in CAPTION_FILES:
        path = os.path.join(dataset_folder, name)
        if os.path.isfile(path):
            return path
    return None


def find_caption_file(dataset_folder):
    """The first of CAPTION_FILES present in `dataset_folder`; raises naming both and the way out."""
    path = present_caption_file(dataset_folder)
    if path:
        return path
    expected = " or ".join(os.path.join(dataset_folder, name) for name in CAPTION_FILES)
    raise DatasetNotFoundError(
        f"TGP-T's content loss needs one description per training image, but there is no {expected}. "
        "Add one (TAB-separated lines '<image path>\\t<description>'), or train without the content loss "
        f"with `{DISABLE_OPTION}`"
    )


def read_caption_file(path):
    """{key as written: description}; a line without a TAB or without text raises naming the line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\r") for line in f.read().split("\n")]
    except UnicodeDecodeError as exc:
        raise CaptionFileError(f"{path} is not UTF-8 text ({exc}); save it as UTF-8, one "
                               "'<image path>\\t<description>' line per image") from exc
    captions = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise CaptionFileError(
                f"{path}, line {number}: expected '<image path>\\t<description>[\\t<category>]', got {line[:80]!r}"
            )
        captions[fields[0].strip()] = fields[1].strip()
    return captions


def normalise_key(key, leading_parts, bare_name_folder=""):
    """A description key as a path relative to the key folder (see the module docstring)."""
    parts = [part for part in key.replace("\\", "/").split("/") if part not in ("", ".")]
    for leading in leading_parts:
        if len(parts) > 1 and parts[0] == leading:
            parts = parts[1:]
    if len(parts) == 1 and bare_name_folder:
        parts = [bare_name_folder] + parts
    return "/".join(parts)


def leading_folder_names(dataset_folder, key_root):
    """The components an authors' key may start with: the dataset folder's name, then the image folder's path."""
    relative = os.path.relpath(key_root, dataset_folder)
    image_parts = [] if relative == "." else relative.replace("\\", "/").split("/")
    return [os.path.basename(os.path.normpath(dataset_folder))] + image_parts


def image_descriptions(dataset, impaths, root, dataset_name=""):
    """The description of every image of `impaths`, in order.

    Raises before training when the file is missing or an image has no
    description (naming the image, the file and the option that turns the
    content loss off).
    """
    dataset_folder, key_root = dataset_folders(dataset, root)
    path = find_caption_file(dataset_folder)
    leading = leading_folder_names(dataset_folder, key_root)
    bare_folder = BARE_NAME_FOLDERS.get(dataset_name, "")
    captions = {normalise_key(key, leading, bare_folder): text for key, text in read_caption_file(path).items()}
    keys = [os.path.relpath(impath, key_root).replace(os.sep, "/") for impath in impaths]
    missing = [(key, impath) for key, impath in zip(keys, impaths) if key not in captions]
    if missing:
        key, impath = missing[0]
        raise MissingDescriptionError(
            f"{len(missing)} training image(s) have no description in {path}, first {key!r} ({impath}); "
            f"add a line '{key}\\t<description>' for each, or train without the content loss with `{DISABLE_OPTION}`"
        )
    return [captions[key] for key in keys]
