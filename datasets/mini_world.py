"""Where the mini world's data lives: shipped archives in ``mini_world/``, extracted on first use.

The repository ships each mini dataset as ``mini_world/<dataset_dir>.tar.xz``
(built by ``tools/build_mini_world.py``). Dataset classes call
``ensure_extracted`` so that ``DATASET.ROOT`` can be any folder: the first run
unpacks the archive there into the upstream layout, later runs reuse it.
"""
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from dassl.data.datasets.split_dataset import SplitJsonDataset

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "mini_world"
DATASET_DIRS = ("mini_fashion_mnist", "mini_clipart")
ARCHIVE_SUFFIX = ".tar.xz"
MARKER_NAME = ".archive_sha256"
PRETRAIN_LIST = "pretrain.json"
PRETRAIN_DIR = "pretrain"
ROOT_ENV = "MINI_WORLD_ROOT"


def default_root():
    """``$MINI_WORLD_ROOT`` if set, else a per-user cache folder."""
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "clip-prompt-toolkit" / "mini_world")


def archive_path(dataset_dir, shipped_dir=SHIPPED_DIR):
    """The shipped archive of one mini dataset."""
    if dataset_dir not in DATASET_DIRS:
        raise ValueError(f"unknown mini dataset {dataset_dir!r}; expected one of {DATASET_DIRS}")
    return Path(shipped_dir) / f"{dataset_dir}{ARCHIVE_SUFFIX}"


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _safe_members(archive, dataset_dir):
    """Refuse archives with entries outside ``dataset_dir/`` (or links), before extracting anything."""
    members = archive.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if not parts or parts[0] != dataset_dir or ".." in parts or member.issym() or member.islnk():
            raise ValueError(f"archive entry {member.name!r} is not a plain path inside {dataset_dir}/")
    return members


def ensure_extracted(dataset_dir, root, shipped_dir=SHIPPED_DIR):
    """Return ``root/dataset_dir``, unpacking the shipped archive there if it is absent.

    Unpacking goes through a temporary folder and one rename, so parallel jobs
    never see a half-written dataset. A folder extracted from an older archive
    raises (its split files would silently disagree with the shipped ones).
    """
    root = Path(os.path.expanduser(str(root)))
    target = root / dataset_dir
    archive = archive_path(dataset_dir, shipped_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"shipped archive {archive} is missing; rebuild it with `python tools/build_mini_world.py build`")
    digest = _sha256(archive)
    if not target.exists():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dataset_dir}-", dir=root))
        try:
            with tarfile.open(archive, "r:xz") as tar:
                tar.extractall(staging, members=_safe_members(tar, dataset_dir), filter="data")
            (staging / dataset_dir / MARKER_NAME).write_text(digest + "\n")
            try:
                os.rename(staging / dataset_dir, target)
            except OSError:
                if not target.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    marker = target / MARKER_NAME
    if marker.is_file() and marker.read_text().strip() != digest:
        raise RuntimeError(
            f"{target} was extracted from an older {archive.name}; delete {target} so that it is extracted again"
        )
    return target


class ShippedMiniDataset(SplitJsonDataset):
    """A mini-world dataset: unpacked from its shipped archive into ``DATASET.ROOT`` when first built.

    Only building the dataset unpacks; the dataset doctor (which only locates
    and inspects) never writes into the user's root. An empty ROOT is left to
    the loader, which reports it.
    """

    def __init__(self, cfg):
        if cfg.DATASET.ROOT:
            ensure_extracted(type(self).dataset_dir, cfg.DATASET.ROOT)
        super().__init__(cfg)


def extract_all(root=None, shipped_dir=SHIPPED_DIR):
    """Extract every shipped mini dataset under ``root`` (default: ``default_root()``); return the root."""
    root = Path(root) if root is not None else default_root()
    for dataset_dir in DATASET_DIRS:
        ensure_extracted(dataset_dir, root, shipped_dir)
    return root


def read_pretrain_list(dataset_folder):
    """``[(absolute image path, label, classname), ...]`` of a dataset's pretraining images.

    These images are disjoint from the split file's train/val/test images.
    """
    dataset_folder = Path(dataset_folder)
    listing = dataset_folder / PRETRAIN_LIST
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} is missing; is {dataset_folder} a mini-world dataset folder?")
    entries = json.loads(listing.read_text())
    return [(str(dataset_folder / PRETRAIN_DIR / path), int(label), classname) for path, label, classname in entries]
