"""Frozen image features of evaluation splits, cached on disk and shared across runs.

The frozen CLIP image tower's output for a test image depends only on the
backbone checkpoint, the image, the test transform, the precision and the
device type, not on the trainer or the seed. So a sweep (every method x every
seed) encodes each evaluation image once: the first evaluation writes
`<digest>.pt` (one plain tensor, read back with weights_only=True) and
`<digest>.json` (the key in readable form) atomically, the next ones read the
tensor instead of decoding and encoding the images.

Config: TEST.FEATURE_CACHE (default True) and TEST.FEATURE_CACHE_DIR (default
"": `$CLIP_PROMPT_TOOLKIT_CACHE/features`, else
`~/.cache/clip_prompt_toolkit/features`). Delete the folder to start afresh.

The key holds each image's path, size and mtime_ns (`images_fingerprint`), so
an image replaced in place (new size or modification time) makes a new key;
stat-ing 50,000 files costs a small fraction of hashing their bytes (numbers
in the README). The `.json` beside a tensor records its key and the tensor's
SHA-256, shape and dtype; a tensor whose record does not match (another
split's file copied over it, a partial write) is encoded again and rewritten.
"""
import hashlib
import json
import os

import torch
from tqdm import tqdm

import clip
from clip.loader import file_sha256
from dassl.config import register_cfg_extension
from dassl.utils import console_stream
from dassl.utils.atomic import atomic_write, atomic_write_text

FORMAT_VERSION = 2
CACHE_ENV = "CLIP_PROMPT_TOOLKIT_CACHE"


@register_cfg_extension
def add_feature_cache_cfg(cfg):
    cfg.TEST.FEATURE_CACHE = True
    cfg.TEST.FEATURE_CACHE_DIR = ""


def feature_cache_dir(cfg):
    """TEST.FEATURE_CACHE_DIR, else the shared default under $CLIP_PROMPT_TOOLKIT_CACHE or ~/.cache."""
    if cfg.TEST.FEATURE_CACHE_DIR:
        return os.path.expanduser(cfg.TEST.FEATURE_CACHE_DIR)
    root = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "clip_prompt_toolkit")
    return os.path.join(os.path.expanduser(root), "features")


def backbone_fingerprint(cfg):
    """Fingerprint of the checkpoint file CLIP was loaded from (MODEL.BACKBONE.PATH, else NAME),
    and for open_clip files of the architecture they were read with (the file alone does not
    fix e.g. the activation)."""
    backbone = cfg.MODEL.BACKBONE
    weights = file_sha256(backbone.PATH or clip.loader.checkpoint_path(backbone.NAME))
    identity = clip.backbone_identity(backbone.NAME, backbone.PATH or None)
    if identity == clip.loader.OPENAI_FORMAT:
        return weights
    return hashlib.sha256(f"{weights}\n{identity}".encode()).hexdigest()


def precision_tag(precision):
    """What decides the tower's numerics besides its weights: precision mode and device type."""
    return f"{precision.mode}-{precision.device.type}"


def images_fingerprint(data_source):
    """SHA-256 over each image's path, size and mtime_ns, in order: replacing an image in place changes it."""
    digest = hashlib.sha256()
    for item in data_source:
        stat = os.stat(item.impath)
        digest.update(f"{item.impath}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def split_key(cfg, split, data_loader, precision):
    """Everything the cached features of one split depend on, as plain JSON values."""
    data_source = data_loader.dataset.data_source
    return {
        "format": FORMAT_VERSION,
        "backbone": backbone_fingerprint(cfg),
        "dataset": cfg.DATASET.NAME,
        "split": split,
        "subsample": cfg.DATASET.SUBSAMPLE_CLASSES,
        "n_images": len(data_source),
        "images_sha256": images_fingerprint(data_source),
        "transform": repr(data_loader.dataset.transform),
        "precision": precision_tag(precision),
        "torch": torch.__version__,
    }


def key_digest(key):
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


class FeatureCache:
    """`<digest>.pt` + `<digest>.json` files in one folder."""

    def __init__(self, directory):
        self.directory = directory

    def _path(self, key, suffix):
        return os.path.join(self.directory, key_digest(key) + suffix)

    def load(self, key):
        """The cached tensor for `key`, or None (missing, or a file its record does not vouch for)."""
        path = self._path(key, ".pt")
        if not os.path.isfile(path):
            return None
        features, problem = self._read(key, path)
        if problem:
            print(f"Ignoring feature cache file {path} ({problem}); encoding again")
            return None
        return features

    def _read(self, key, path):
        """(tensor, "") when `path` is the tensor its `.json` record names for `key`, else (None, why not)."""
        try:
            with open(self._path(key, ".json")) as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None, "no readable .json record beside it"
        if not isinstance(record, dict) or record.get("key") != key:
            return None, "its record holds another key"
        if file_sha256(path) != record.get("sha256"):
            return None, "it is not the tensor its record was written with"
        try:
            features = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            return None, f"unreadable: {type(error).__name__}"
        if not isinstance(features, torch.Tensor) or [list(features.shape), str(features.dtype)] != [
                record.get("shape"), record.get("dtype")] or len(features) != key["n_images"]:
            return None, "its shape, dtype or image count does not match"
        return features, ""

    def save(self, key, features):
        features = features.detach().cpu().contiguous()
        path = self._path(key, ".pt")
        atomic_write(path, lambda f: torch.save(features, f))
        record = {"key": key, "sha256": file_sha256(path), "shape": list(features.shape),
                  "dtype": str(features.dtype)}
        atomic_write_text(self._path(key, ".json"), json.dumps(record, indent=1, sort_keys=True))
        return path


@torch.no_grad()
def encode_frozen_images(clip_model, data_loader, precision, device):
    """(N, embed_dim) frozen image-tower outputs (not normalised) in dataset order.

    The same call a model's frozen pass makes: visual(images in CLIP's dtype)
    under the precision's autocast, batch by batch as the loader gives them.
    """
    rows = {}
    for batch in tqdm(data_loader, desc="encode images", file=console_stream(), disable=None, leave=False):
        images = batch["img"].to(device).type(clip_model.dtype)
        with precision.autocast():
            features = clip_model.visual(images)
        for index, row in zip(batch["index"].tolist(), features.cpu()):
            rows[index] = row
    return torch.stack([rows[i] for i in sorted(rows)])
