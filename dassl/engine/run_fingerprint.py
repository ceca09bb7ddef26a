"""What a run is, recorded in `<output_dir>/run.json`, so a folder is reused only for the same run.

A fingerprint is a dict of sections of plain JSON values:
- "mode": "train" or "eval-only";
- "config": the merged config, flattened to dotted keys, without the
  RESULT_NEUTRAL_KEYS (TRAINER.NAME, SEED and DATASET.NAME are config keys);
- "data": the class list and the SHA-256 of each split / few-shot file the
  dataset read (its `source_files`);
- "backbone": the SHA-256 of the backbone checkpoint file;
- "eval": for --eval-only runs, --load-epoch and the model folder's run.json
  and weight files.

Comparisons only look at the sections (and, in dict sections, the keys) the
caller gives, so a cheap partial fingerprint (the config alone, or the few
keys the sweep knows) is checked against the full one stored.
"""
import glob
import json
import os
import shutil
import time

from ..config import apply_cfg_extensions, get_cfg_default
from ..utils import atomic_write_text, file_sha256, read_json
from ..utils.errors import InputError
from ..utils.tools import DONE_MARKER, is_run_done
from ..utils.torchtools import MID_PASS_FILE, POINTER_FILE

RUN_FILE = "run.json"
FORMAT_VERSION = 1

# Keys that cannot change a number the run reports: where things go, how often
# they are printed or saved, how many loader workers, which machine.
RESULT_NEUTRAL_KEYS = frozenset({
    "OUTPUT_DIR",
    "RESUME",
    "VERBOSE",
    "USE_CUDA",
    "DATASET.ROOT",  # the data itself is fingerprinted by its split files and class list
    "MODEL.BACKBONE.PATH",  # the checkpoint is fingerprinted by its SHA-256
    "DATALOADER.NUM_WORKERS",
    "DATALOADER.DECODED_CACHE_MB",
    "TRAIN.PRINT_FREQ",
    "TRAIN.CHECKPOINT_FREQ",
    "TEST.PER_CLASS_RESULT",
    "TEST.COMPUTE_CMAT",
    "TEST.FEATURE_CACHE",
    "TEST.FEATURE_CACHE_DIR",
})

FINISHED, MISMATCH, RESUMABLE, NEW = "finished", "mismatch", "resumable", "new"


class RunFolderMismatchError(InputError, ValueError):
    """The output folder holds another run (other trainer, config, data, seed or backbone)."""


def _plain(value):
    """Config values as JSON keeps them (tuples become lists), so stored and fresh compare equal."""
    return json.loads(json.dumps(value))


def flat_config(cfg, prefix=""):
    """`{"OPTIM.LR": 0.002, ...}` for every leaf of a CfgNode, result-neutral keys left out."""
    flat = {}
    for key, value in cfg.items():
        name = prefix + key
        if hasattr(value, "items"):
            flat.update(flat_config(value, name + "."))
        elif name not in RESULT_NEUTRAL_KEYS:
            flat[name] = _plain(value)
    return flat


def data_section(dataset):
    """The class list and the hash of each file the dataset's lists came from."""
    files = {os.path.basename(path): file_sha256(path) for path in getattr(dataset, "source_files", ())}
    return {"classnames": list(dataset.classnames), "files": files}


def model_dir_section(model_dir, weight_filename, load_epoch):
    """What an --eval-only run evaluates: the model folder's run.json and the weight files it loads."""
    run_file = os.path.join(model_dir, RUN_FILE)
    weights = sorted(glob.glob(os.path.join(model_dir, "*", weight_filename)))
    return {
        "load_epoch": load_epoch,
        "model_run": file_sha256(run_file) if os.path.isfile(run_file) else None,
        "weights": {os.path.relpath(path, model_dir): file_sha256(path) for path in weights},
    }


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def default_config():
    """The flattened default config, registered extensions included."""
    return flat_config(apply_cfg_extensions(get_cfg_default()))


def added_since(stored_config, key, value, defaults):
    """A config key the stored run.json lacks, set to its default: the key was added to the toolkit
    after that run, and a new key's default keeps the behaviour it had before (docs/architecture.md)."""
    return key not in stored_config and key in defaults and defaults[key] == value


def differences(stored, current):
    """`["OPTIM.LR 0.002 -> 0.5", ...]` for what `current` has and `stored` has otherwise.

    In a dict section only the keys `current` gives are compared, so a partial
    fingerprint checks what it names. A config key that the stored fingerprint
    lacks does not count while it holds its default (`added_since`).
    """
    found = []
    defaults = None
    for section, values in current.items():
        old = stored.get(section)
        if section == "data":
            found += data_differences(old, values) if old is not None else []
        elif isinstance(values, dict):
            old = old if isinstance(old, dict) else {}
            changed = {key: value for key, value in values.items() if old.get(key) != value}
            if section == "config" and any(key not in old for key in changed):
                defaults = default_config() if defaults is None else defaults
                changed = {key: value for key, value in changed.items() if not added_since(old, key, value, defaults)}
            prefix = "" if section == "config" else f"{section}."
            found += [f"{prefix}{key} {_short(old.get(key))} -> {_short(value)}" for key, value in sorted(changed.items())]
        elif old != values:
            found.append(f"{section} {_short(old)} -> {_short(values)}")
    return found


def data_differences(old, new):
    found = []
    if old.get("classnames") != new["classnames"]:
        found.append(f"class list ({len(old.get('classnames') or [])} classes {_short(old.get('classnames'))} -> "
                     f"{len(new['classnames'])} classes {_short(new['classnames'])})")
    old_files, new_files = old.get("files") or {}, new["files"]
    changed = sorted(name for name in set(old_files) | set(new_files) if old_files.get(name) != new_files.get(name))
    if changed:
        found.append(f"split/few-shot files changed ({', '.join(changed)})")
    return found


def read_fingerprint(output_dir):
    """The stored fingerprint, or None when the folder has no readable run.json."""
    path = os.path.join(output_dir, RUN_FILE)
    try:
        return read_json(path)["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_fingerprint(output_dir, fingerprint):
    """Write run.json atomically (rank 0)."""
    payload = {"format": FORMAT_VERSION, "fingerprint": fingerprint, "written_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_text(os.path.join(output_dir, RUN_FILE), json.dumps(payload, indent=1, sort_keys=True))


def resumable_files(output_dir):
    """The `checkpoint` pointers and mid-pass states (MID_PASS_FILE) of the model folders: what a run resumes."""
    return [path for name in (POINTER_FILE, MID_PASS_FILE) for path in glob.glob(os.path.join(output_dir, "*", name))]


def has_checkpoint(output_dir):
    """Whether any model folder holds a `checkpoint` pointer or a mid-pass state (a run to resume)."""
    return bool(resumable_files(output_dir))


def run_folder_state(output_dir, fingerprint):
    """`(state, differences)`: FINISHED / RESUMABLE (same run), MISMATCH, or NEW (nothing to reuse).

    A folder with a done.json or a checkpoint but no run.json (written before
    fingerprints existed) cannot be checked and is a MISMATCH.
    """
    finished = is_run_done(output_dir)
    if not finished and not has_checkpoint(output_dir):
        return NEW, []
    stored = read_fingerprint(output_dir)
    if stored is None:
        return MISMATCH, [f"no {RUN_FILE} says which run wrote it"]
    found = differences(stored, fingerprint)
    if found:
        return MISMATCH, found
    return (FINISHED if finished else RESUMABLE), []


def summary(found):
    """The first differences, for a one-line message."""
    return "; ".join(found[:4]) + (f"; and {len(found) - 4} more" if len(found) > 4 else "")


def mismatch_error(output_dir, found):
    """One line naming the first differences and the two ways out."""
    return RunFolderMismatchError(
        f"{output_dir} holds another run ({summary(found)}): pass a new --output-dir, or add --restart to discard "
        "that folder's checkpoints and results"
    )


def clear_run_state(output_dir):
    """--restart: remove what makes a folder resumable or finished; log.txt is kept under a new name."""
    for folder in {os.path.dirname(path) for path in resumable_files(output_dir)}:
        shutil.rmtree(folder)
    for name in (DONE_MARKER, RUN_FILE):
        if os.path.exists(os.path.join(output_dir, name)):
            os.remove(os.path.join(output_dir, name))
    log = os.path.join(output_dir, "log.txt")
    if os.path.isfile(log):
        os.replace(log, f"{log}.before-restart-{time.strftime('%Y%m%d-%H%M%S')}")
