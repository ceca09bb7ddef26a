"""Loading prompt-module weights, possibly trained on another class list.

Class-dependent entries (the frozen class-token embeddings) are dropped, so a
prompt learner trained on base classes evaluates on new ones. Anything else
that does not fit raises an error that names the key and what to do.
"""
import os

import torch

from dassl.utils import load_checkpoint
from dassl.utils.errors import CheckpointMismatchError, MissingCheckpointError

BEST_FILE = "model-best.pth.tar"


def checkpoint_file(directory, model_name, epoch=None):
    """Path of `<directory>/<model_name>/model.pth.tar-<epoch>` (or model-best without epoch)."""
    folder = os.path.join(directory, model_name)
    filename = BEST_FILE if epoch is None else f"model.pth.tar-{epoch}"
    path = os.path.join(folder, filename)
    if os.path.isfile(path):
        return path
    found = sorted(f for f in os.listdir(folder) if f.startswith("model")) if os.path.isdir(folder) else []
    others = _other_model_folders(directory, model_name)
    if found:
        hint = f"found {', '.join(found)}; pass the epoch of one of them with --load-epoch"
    elif others:
        hint = (
            f"{directory} holds checkpoints of {', '.join(others)}, written by another trainer: "
            "evaluate it with the --trainer and --config-file of the run that wrote it"
        )
    else:
        hint = "that folder holds no checkpoint: check --model-dir, or train first"
    raise MissingCheckpointError(f"no checkpoint {path}; {hint}")


def _other_model_folders(directory, model_name):
    """Sub-folders of `directory` other than `model_name` that hold a checkpoint pointer file."""
    if not os.path.isdir(directory):
        return []
    return sorted(
        name for name in os.listdir(directory)
        if name != model_name and os.path.isfile(os.path.join(directory, name, "checkpoint"))
    )


def _strip_module_prefix(state_dict):
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state_dict.items()}


def _shape_hint(key, expected, found):
    if key == "ctx" and len(found) == 3 and len(expected) == 3 and found[0] != expected[0]:
        return (
            "class-specific context (CSC True) is tied to the class list it was trained on; "
            "evaluate it on the same classes or train with TRAINER.COOP.CSC False"
        )
    return (
        "the checkpoint was trained with other settings (N_CTX, CTX_INIT, CSC, backbone width); "
        "use the same trainer config and backbone as the training run"
    )


def load_module_state(module, state_dict, source, ignored_prefixes=()):
    """Load `state_dict` into `module`, skipping its class-dependent keys.

    `ignored_prefixes` lists checkpoint keys known to be unused (e.g. the
    dead modules upstream KgCoOp saves). Raises ValueError on missing,
    unexpected or mis-shaped keys.
    """
    class_keys = set(getattr(module, "class_dependent_keys", ()))
    state = {
        key: value
        for key, value in _strip_module_prefix(state_dict).items()
        if key not in class_keys and not key.startswith(tuple(ignored_prefixes))
    }
    expected = {key: value for key, value in module.state_dict().items() if key not in class_keys}
    unexpected = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    if unexpected or missing:
        raise CheckpointMismatchError(
            f"{source} does not fit {type(module).__name__}: unexpected keys {unexpected}, missing keys {missing}; "
            "it was probably saved by another trainer - load it with the trainer (and config) that wrote it"
        )
    for key, value in state.items():
        want, got = tuple(expected[key].shape), tuple(value.shape)
        if want != got:
            raise CheckpointMismatchError(
                f"{source}: key {key!r} has shape {got} but this model expects {want}; {_shape_hint(key, want, got)}"
            )
    module.load_state_dict(state, strict=False)


def load_module_checkpoint(module, path, ignored_prefixes=()):
    """Load a Dassl checkpoint file (dict with `state_dict`) into `module`; returns its epoch."""
    checkpoint = load_checkpoint(path)
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointMismatchError(f"{path} holds no tensor state dict; is it a checkpoint written by train.py?")
    load_module_state(module, state_dict, path, ignored_prefixes)
    return checkpoint.get("epoch")
