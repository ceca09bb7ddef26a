"""Write-then-rename, so a crash or a full disk never leaves a half-written file behind.

Temp files are named `.<file>.<8 random chars>.tmp` beside their target; a
killed write leaves one behind, which `remove_stale_temp_files` deletes on
the next start. They get the mode a plain `open` would (the umask's), not
mkstemp's 0600, so split files in a shared DATA folder stay readable.
"""
import errno
import os
import re
import shutil
import tempfile
import time

from .errors import DiskFullError

TEMP_SUFFIX = ".tmp"
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$|^\.split-[a-z0-9_]{8}\.json$")  # ours, and write_split's
PROCESS_START = time.time()


def disk_full_error(path):
    """The DiskFullError for a write of `path` that found no space."""
    return DiskFullError(
        errno.ENOSPC,
        f"No space left on device while writing {path}; the previous version of that file "
        "(if any) is intact. Free some disk space and run again (training resumes from the last checkpoint).",
    )


def ensure_free_space(folder, needed, path):
    """Raise the DiskFullError for `path` when `folder`'s file system has fewer than `needed` bytes free."""
    if shutil.disk_usage(folder).free < needed:
        raise disk_full_error(path)


def default_file_mode():
    """0666 less the umask: the mode `open(path, "w")` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write_fn, mode="wb"):
    """Call `write_fn(file)` on a temp file next to `path`, then `os.replace` it onto `path`.

    The previous content of `path` stays intact if anything fails. A full disk
    raises the DiskFullError that names the path and says so.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as exc:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and not isinstance(exc, DiskFullError):
            raise disk_full_error(path) from exc
        raise


def atomic_write_bytes(path, data):
    """`atomic_write` of ready bytes, refused up front (DiskFullError) when they cannot fit."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ensure_free_space(folder, len(data), path)
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), mode="w")


def remove_stale_temp_files(folder, recursive=False, older_than=None):
    """Delete our temp files in `folder` last modified before `older_than` (default: this process's start).

    Only names of the temp pattern are touched; returns the paths removed.
    """
    older_than = PROCESS_START if older_than is None else older_than
    removed = []
    walk = os.walk(folder) if recursive else [(folder, [], os.listdir(folder) if os.path.isdir(folder) else [])]
    for parent, _, names in walk:
        for name in names:
            path = os.path.join(parent, name)
            try:
                if TEMP_NAME.match(name) and os.path.getmtime(path) < older_than:
                    os.remove(path)
                    removed.append(path)
            except OSError:  # gone meanwhile, or not ours to remove
                continue
    return removed
