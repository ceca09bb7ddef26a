"""One process per run folder: an exclusive `flock` on `<output_dir>/.run.lock`.

The OS drops the lock when the holder dies (even on SIGKILL), so a lock is
never stale and nothing has to clean it up. A second `train.py` on the same
folder gets RunLockedError, and train.py exits with
`dassl.utils.exit_codes.RUN_LOCKED` ("running elsewhere").
"""
import errno
import fcntl
import os

from ..utils.errors import InputError

LOCK_FILE = ".run.lock"


class RunLockedError(InputError, RuntimeError):
    """Another process holds the run folder's lock: the run is going on elsewhere."""


class RunFolderLock:
    """Hold it for the whole run; `release()` (or process exit) lets the next one in."""

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LOCK_FILE)
        self._fd = None

    def acquire(self):
        """Take the lock without waiting and write our pid into the file; raise RunLockedError if it is held."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{os.path.dirname(self.path)} is running elsewhere (pid {holder}); wait for that run to end, "
                "or pass another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # the pid only informs; a full disk is reported by the run's first real write
            if exc.errno != errno.ENOSPC:
                raise
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
