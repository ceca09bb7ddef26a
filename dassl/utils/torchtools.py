"""Checkpoint files: tensors and plain types only, written atomically, loaded with weights_only=True."""
import os
import pickle
import shutil
from collections import OrderedDict

import torch
from torch import nn

from .atomic import atomic_write, atomic_write_text
from .errors import MissingCheckpointError, UnreadableCheckpointError

POINTER_FILE = "checkpoint"
BEST_FILE = "model-best.pth.tar"
_PLAIN_TYPES = (int, float, bool, str, bytes, type(None), torch.dtype, torch.device, torch.Size)


def _ensure_plain(value, where):
    """Raise TypeError naming the first entry that weights_only=True could not load."""
    if isinstance(value, torch.Tensor) or isinstance(value, _PLAIN_TYPES):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _ensure_plain(key, f"{where} key")
            _ensure_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _ensure_plain(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}; checkpoints hold only tensors "
        "and plain types (so they load with torch.load(weights_only=True)): store its state_dict() or numbers instead"
    )


def _strip_module_prefix(state_dict):
    return OrderedDict((k[len("module.") :] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Save `state` to `save_dir/<model_name or model.pth.tar-<epoch>>`, atomically.

    A regular save (no `model_name`) also rewrites the `checkpoint` pointer
    file, which names the latest file for resuming; `is_best` copies the file
    to `model-best.pth.tar`.
    """
    _ensure_plain(state, "checkpoint")
    if remove_module_from_keys and "state_dict" in state:
        state = {**state, "state_dict": _strip_module_prefix(state["state_dict"])}
    fpath = os.path.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    atomic_write(fpath, lambda f: torch.save(state, f))
    print(f"Checkpoint saved to {fpath}")
    if not model_name:
        atomic_write_text(os.path.join(save_dir, POINTER_FILE), os.path.basename(fpath) + "\n")
    if is_best:
        best_path = os.path.join(save_dir, BEST_FILE)

        def copy_into(f):
            with open(fpath, "rb") as src:
                shutil.copyfileobj(src, f)

        atomic_write(best_path, copy_into)
        print(f'Best checkpoint saved to "{best_path}"')
    return fpath


def load_checkpoint(fpath):
    """Load a checkpoint on CPU with `weights_only=True` (never unpickles arbitrary objects)."""
    if not fpath:
        raise ValueError("load_checkpoint: the file path is empty")
    if not os.path.exists(fpath):
        raise MissingCheckpointError(f'No checkpoint file at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnreadableCheckpointError(
            f"{fpath} holds pickled Python objects (e.g. a checkpoint from upstream Dassl with a pickled "
            "scheduler) or is not a PyTorch checkpoint, and cannot be loaded safely with weights_only=True. "
            f"Re-save its tensors (state_dict) in a plain dict. Original error: {exc}"
        ) from exc
    except Exception as exc:  # random bytes end in any error of the zip / pickle readers (UnicodeDecodeError, IndexError, ...)
        raise UnreadableCheckpointError(
            f"{fpath} is truncated or corrupt ({type(exc).__name__}: {exc}); replace it with an intact copy, or "
            "delete the run folder and train again"
        ) from exc


def latest_checkpoint_path(fdir):
    """The file named by `fdir/checkpoint`, or None if there is no pointer file."""
    pointer = os.path.join(fdir, POINTER_FILE)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as f:
        name = f.readline().strip()
    return os.path.join(fdir, name)


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    """Load the latest checkpoint of `fdir` into model/optimizer/scheduler; returns its epoch."""
    fpath = latest_checkpoint_path(fdir)
    if fpath is None:
        raise MissingCheckpointError(f"No pointer file {os.path.join(fdir, POINTER_FILE)} to resume from")
    print(f"Loading checkpoint from {fpath}")
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def load_pretrained_weights(model, weight_path):
    """Load the entries of a checkpoint whose names and shapes match `model`; report the rest."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model_dict = model.state_dict()
    matched, discarded = OrderedDict(), []
    for key, value in _strip_module_prefix(state_dict).items():
        if key in model_dict and model_dict[key].size() == value.size():
            matched[key] = value
        else:
            discarded.append(key)
    if not matched:
        raise ValueError(
            f"None of the weights in {weight_path} match the model by name and shape; "
            "check that the checkpoint was saved from the same architecture"
        )
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    print(f"Successfully loaded pretrained weights from {weight_path}")
    if discarded:
        print(f"Layers discarded due to unmatched keys or size: {discarded}")


def count_num_param(model=None, params=None):
    """Number of scalar parameters of a module (or of an iterable of tensors)."""
    if model is not None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"count_num_param expects an nn.Module, got {type(model).__name__}")
        params = model.parameters()
    return sum(p.numel() for p in params)
