"""Every image of a run's splits opens before training starts, not at the final evaluation.

Each image gets PIL's header read and `verify()` (no full decode); a JPEG
whose end-of-image marker is missing, the usual sign of a cut download, is
decoded fully to confirm. A list that passed is recorded, keyed by every
path with its size and mtime_ns, in `image_check.json` beside the few-shot
cache, so later runs on the same lists only stat the files.
"""
import hashlib
import json
import os

from PIL import Image
from tqdm import tqdm

from ..utils import console_stream, write_json
from ..utils.errors import UnreadableImageError
from .datasets.dataset_errors import MissingImagesError
from .datasets.few_shot import FEWSHOT_DIR

RECORD_FILE = "image_check.json"
MAX_RECORDS = 512  # verified lists kept; the oldest are dropped
PROGRESS_FROM = 2000  # images: smaller lists check without a bar
JPEG_EOI = b"\xff\xd9"
PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _jpeg_end_missing(path):
    with open(path, "rb") as f:
        f.seek(max(os.path.getsize(path) - 64, 0))
        return JPEG_EOI not in f.read()


def image_problem(path):
    """Why the image at `path` cannot be read (PIL's message), or None."""
    try:
        with Image.open(path) as img:
            is_jpeg = img.format == "JPEG"
            img.verify()
        if is_jpeg and _jpeg_end_missing(path):
            with Image.open(path) as img:
                img.load()
    except PIL_ERRORS as exc:
        return str(exc) or type(exc).__name__
    return None


def list_digest(split, paths):
    """sha256 of the paths with their size and mtime_ns; MissingImagesError names the first absent one."""
    digest = hashlib.sha256()
    for position, path in enumerate(paths):
        try:
            stat = os.stat(path)
        except OSError:
            raise MissingImagesError(f"{split} split: image {position} of {len(paths)}, {path}, does not exist; "
                                     "check --root and the image folder layout") from None
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def unreadable_images(split, paths):
    """``[(path, why), ...]`` for the images of the list that fail the check; a bar for long lists."""
    bar = tqdm(paths, desc=f"checking {split} images", file=console_stream(), leave=False,
               disable=len(paths) < PROGRESS_FROM)
    return [(path, why) for path in bar if (why := image_problem(path)) is not None]


def check_paths(split, paths):
    """Raise UnreadableImageError naming the first unreadable image of the list (and how many fail)."""
    problems = unreadable_images(split, paths)
    if problems:
        path, why = problems[0]
        others = f" ({len(problems)} of {len(paths)} images of the {split} split fail this check.)"
        others = others if len(problems) > 1 else ""
        raise UnreadableImageError(
            f"Cannot read image {path}: {why}. The file is corrupt or truncated; "
            f"replace it (re-download the dataset) or remove it from the split.{others}"
        )


def record_path(dataset):
    """`<dataset_dir>/split_fewshot/image_check.json`, or None for a dataset without an absolute folder."""
    folder = getattr(dataset, "dataset_dir", "")
    if not (isinstance(folder, str) and os.path.isabs(folder) and os.path.isdir(folder)):
        return None
    return os.path.join(folder, FEWSHOT_DIR, RECORD_FILE)


def read_record(path):
    """The digests of the lists verified so far (empty when the record is absent or unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            verified = json.load(f).get("verified", [])
        return [digest for digest in verified if isinstance(digest, str)]
    except (OSError, ValueError, AttributeError):
        return []


def check_dataset_images(dataset):
    """Check every image of train_x, train_u, val and test once per list; later runs skip verified lists."""
    record = record_path(dataset)
    verified = read_record(record) if record else []
    known, checked = set(verified), False
    splits = {"train": dataset.train_x, "unlabelled": dataset.train_u, "val": dataset.val, "test": dataset.test}
    for split, items in splits.items():
        paths = sorted({item.impath for item in items or ()})
        digest = list_digest(split, paths) if paths else None
        if digest is None or digest in known:
            continue
        check_paths(split, paths)
        known.add(digest)
        verified.append(digest)
        checked = True
    if record and checked:
        try:
            write_json({"verified": verified[-MAX_RECORDS:]}, record)
        except OSError as exc:  # a read-only shared DATA folder: check again next time
            print(f"Note: could not record the image check in {record} ({exc}); the next run checks again")
