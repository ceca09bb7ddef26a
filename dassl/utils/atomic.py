"""Write-then-rename, so a crash or a full disk never leaves a half-written file behind."""
import errno
import os
import tempfile

from .errors import DiskFullError


def atomic_write(path, write_fn, mode="wb"):
    """Call `write_fn(file)` on a temp file next to `path`, then `os.replace` it onto `path`.

    The previous content of `path` stays intact if anything fails. A full disk
    raises an OSError that names the path and says so.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as exc:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise DiskFullError(
                errno.ENOSPC,
                f"No space left on device while writing {path}; the previous version of that file "
                "(if any) is intact. Free some disk space and run again (training resumes from the last checkpoint).",
            ) from exc
        raise


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), mode="w")
