"""Checkpoint files: tensors and plain types only, written atomically, loaded with weights_only=True.

Each checkpoint carries the sha256 of its content (`integrity`), checked on
load, so a flipped bit or a zeroed block is an UnreadableCheckpointError,
never silently changed weights. A run folder keeps its newest resumable
checkpoint and the previous one: resuming falls back to the previous one
when the newest cannot be read.
"""
import hashlib
import io
import os
import pickle
import re
from collections import OrderedDict

import torch
from torch import nn

from .atomic import atomic_write_bytes, atomic_write_text
from .errors import MissingCheckpointError, UnreadableCheckpointError

POINTER_FILE = "checkpoint"
BEST_FILE = "model-best.pth.tar"
MID_PASS_FILE = "preempted.pth.tar"  # the state a preemption signal saves in the middle of a loader pass
EPOCH_FILE = re.compile(r"^model\.pth\.tar-(\d+)$")
INTEGRITY_KEY = "integrity"
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


def _feed(digest, value):
    """Add `value` (tensors, plain types, dicts, lists, tuples) to the sha256 `digest`, types and shapes included."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"P{type(value).__name__}:{value!r};".encode())


def content_digest(state):
    """sha256 (hex) of a checkpoint's content, the same before saving and after loading."""
    digest = hashlib.sha256()
    _feed(digest, state)
    return digest.hexdigest()


def checkpoint_bytes(state):
    """The file content of `state` with its integrity digest, serialised in memory.

    torch's zip writer hides a full disk behind a RuntimeError; writing ready
    bytes with plain file I/O raises the real ENOSPC instead.
    """
    buffer = io.BytesIO()
    torch.save({**state, INTEGRITY_KEY: content_digest(state)}, buffer)
    return buffer.getvalue()


def checkpoint_epoch(name):
    """The N of `model.pth.tar-N`, or None for any other file name."""
    match = EPOCH_FILE.match(name)
    return int(match.group(1)) if match else None


def _strip_module_prefix(state_dict):
    return OrderedDict((k[len("module.") :] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Save `state` to `save_dir/<model_name or model.pth.tar-<epoch>>`, atomically.

    A regular save (no `model_name`) also rewrites the `checkpoint` pointer
    file, which names the latest file for resuming (the trainer prunes the
    resume-only files it supersedes); `is_best` writes the same bytes to
    `model-best.pth.tar`.
    """
    _ensure_plain(state, "checkpoint")
    if remove_module_from_keys and "state_dict" in state:
        state = {**state, "state_dict": _strip_module_prefix(state["state_dict"])}
    fpath = os.path.join(save_dir, model_name or f"model.pth.tar-{state['epoch']}")
    data = checkpoint_bytes(state)
    atomic_write_bytes(fpath, data)
    print(f"Checkpoint saved to {fpath}")
    if not model_name:
        atomic_write_text(os.path.join(save_dir, POINTER_FILE), os.path.basename(fpath) + "\n")
    if is_best:
        best_path = os.path.join(save_dir, BEST_FILE)
        atomic_write_bytes(best_path, data)
        print(f'Best checkpoint saved to "{best_path}"')
    return fpath


def load_checkpoint(fpath):
    """Load a checkpoint on CPU with `weights_only=True` (never unpickles arbitrary objects).

    A checkpoint that carries an integrity digest must match it; files
    without one (upstream's, older ones) load as they are.
    """
    if not fpath:
        raise ValueError("load_checkpoint: the file path is empty")
    if not os.path.exists(fpath):
        raise MissingCheckpointError(f'No checkpoint file at "{fpath}"')
    try:
        checkpoint = torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnreadableCheckpointError(
            f"{fpath} holds pickled Python objects (e.g. a checkpoint from upstream Dassl with a pickled "
            "scheduler) or is not a PyTorch checkpoint, and cannot be loaded safely with weights_only=True. "
            f"Re-save its tensors (state_dict) in a plain dict. Original error: {exc}"
        ) from exc
    except Exception as exc:  # random bytes end in any error of the readers (UnicodeDecodeError, IndexError, ...)
        raise UnreadableCheckpointError(
            f"{fpath} is truncated or corrupt ({type(exc).__name__}: {exc}); replace it with an intact copy, or "
            "delete the run folder and train again"
        ) from exc
    if isinstance(checkpoint, dict) and INTEGRITY_KEY in checkpoint:
        expected = checkpoint.pop(INTEGRITY_KEY)
        if expected != content_digest(checkpoint):
            raise UnreadableCheckpointError(
                f"{fpath} is truncated or corrupt (its content does not match the sha256 written with it); replace "
                "it with an intact copy, or delete the run folder and train again"
            )
    return checkpoint


def _pointer_problem(fdir):
    """Why `fdir/checkpoint` names no file (empty, or a file that is gone), or None."""
    pointer = os.path.join(fdir, POINTER_FILE)
    with open(pointer, encoding="utf-8", errors="replace") as f:
        name = f.readline().strip()
    if not name:
        return f"the checkpoint pointer {pointer} is empty"
    if os.path.basename(name) != name or not os.path.isfile(os.path.join(fdir, name)):
        return f"the checkpoint pointer {pointer} names {name!r}, which is not a file in {fdir}"
    return None


def latest_checkpoint_path(fdir):
    """The file named by `fdir/checkpoint`, or None if there is no pointer file.

    An empty or dangling pointer raises MissingCheckpointError naming it.
    """
    pointer = os.path.join(fdir, POINTER_FILE)
    if not os.path.isfile(pointer):
        return None
    problem = _pointer_problem(fdir)
    if problem:
        raise MissingCheckpointError(f"{problem}; restore that file, or delete the pointer to train from scratch")
    with open(pointer, encoding="utf-8") as f:
        return os.path.join(fdir, f.readline().strip())


def resume_candidates(fdir):
    """Checkpoint files to resume from, best first: the pointer's file, then older epoch files, newest first.

    An empty or dangling pointer is warned about (naming it) and the epoch
    files are tried; with none, MissingCheckpointError names the pointer.
    """
    problem = _pointer_problem(fdir)
    epoch_files = sorted((name for name in os.listdir(fdir) if checkpoint_epoch(name) is not None),
                         key=checkpoint_epoch, reverse=True)
    if problem and not epoch_files:
        raise MissingCheckpointError(f"{problem}, and {fdir} holds no other checkpoint; restore that file, or delete "
                                     "the pointer to train from scratch")
    if problem:
        print(f"Warning: {problem}; resuming from the newest checkpoint file instead")
        return [os.path.join(fdir, name) for name in epoch_files]
    newest = latest_checkpoint_path(fdir)
    return [newest] + [os.path.join(fdir, name) for name in epoch_files if name != os.path.basename(newest)]


def apply_checkpoint(checkpoint, model, optimizer=None, scheduler=None):
    """Load a checkpoint's weights (and optimizer / scheduler state, if stored) into the given objects."""
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")


def load_first_readable(paths, load=load_checkpoint):
    """(path, load(path)) for the first of `paths` that loads; a warning line for each one skipped."""
    failures = []
    for path in paths:
        try:
            return path, load(path)
        except (UnreadableCheckpointError, MissingCheckpointError) as exc:
            failures.append(str(exc))
            print(f"Warning: cannot resume from {path} ({exc}); trying the previous checkpoint")
    raise UnreadableCheckpointError(f"no readable checkpoint to resume from: {'; '.join(failures)}")


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    """Load the latest readable checkpoint of `fdir` into model/optimizer/scheduler; returns its epoch."""
    if not os.path.isfile(os.path.join(fdir, POINTER_FILE)):
        raise MissingCheckpointError(f"No pointer file {os.path.join(fdir, POINTER_FILE)} to resume from")
    fpath, checkpoint = load_first_readable(resume_candidates(fdir))
    print(f"Loading checkpoint from {fpath}")
    apply_checkpoint(checkpoint, model, optimizer, scheduler)
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
