"""Small helpers: seeding, environment info, json, paths, file hashes, images, the run-completion marker."""
import hashlib
import json
import os
import platform
import random
import time

import numpy as np
import PIL
import torch
from PIL import Image

from .atomic import atomic_write_text
from .errors import UnreadableImageError

DONE_MARKER = "done.json"
_HASH_CHUNK = 1 << 22


def set_random_seed(seed):
    """Seed python `random`, numpy and torch (CPU and every CUDA device); 0 is a valid seed."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def collect_env_info():
    """A short, fast environment summary for the top of log.txt."""
    import torchvision

    lines = [
        f"Python: {platform.python_version()} ({platform.platform()})",
        f"PyTorch: {torch.__version__}",
        f"Torchvision: {torchvision.__version__}",
        f"NumPy: {np.__version__}",
        f"Pillow: {PIL.__version__}",
        f"CUDA available: {torch.cuda.is_available()}",
    ]
    if torch.cuda.is_available():
        lines.append(f"CUDA: {torch.version.cuda}, cuDNN: {torch.backends.cudnn.version()}")
        lines += [f"GPU {i}: {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    return "\n".join(lines)


def mkdir_if_missing(dirname):
    os.makedirs(dirname, exist_ok=True)


def check_isfile(fpath):
    """True if `fpath` is a file; False (with a printed note) otherwise."""
    isfile = os.path.isfile(fpath)
    if not isfile:
        print(f'No file found at "{fpath}"')
    return isfile


def file_sha256(path):
    """SHA-256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(fpath):
    with open(fpath, encoding="utf-8") as f:
        return json.load(f)


def write_json(obj, fpath):
    """Write `obj` as indented json, atomically."""
    atomic_write_text(fpath, json.dumps(obj, indent=4, separators=(",", ": ")))


def listdir_nohidden(path, sort=False):
    """Entries of `path` that do not start with a dot."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


def read_image(path):
    """Open an image as RGB; a missing, corrupt or truncated file raises an error naming it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No image file at {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImageError(
            f"Cannot read image {path}: {exc}. The file is corrupt or truncated; "
            "replace it (re-download the dataset) or remove it from the split."
        ) from exc


def write_done_marker(output_dir, results):
    """Write `output_dir/done.json` (final results + time) atomically: the run is finished."""
    payload = {
        "results": {str(k): float(v) for k, v in (results or {}).items()},
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    atomic_write_text(os.path.join(output_dir, DONE_MARKER), json.dumps(payload, indent=4))


def read_done_marker(output_dir):
    """The content of `output_dir/done.json`, or None if the run is not finished.

    Finished means a JSON object whose `results` maps names to numbers (or null); a
    missing, truncated, undecodable or malformed file is not finished, for the
    sweep and the results parser alike.
    """
    try:
        content = read_json(os.path.join(output_dir, DONE_MARKER))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    results = content.get("results") if isinstance(content, dict) else None
    if not isinstance(results, dict):
        return None
    if not all(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
               for value in results.values()):
        return None
    return content


def is_run_done(output_dir):
    """True if `output_dir` holds a valid done.json (log.txt alone does not mean finished)."""
    return read_done_marker(output_dir) is not None
