"""A full disk, faked at the lowest level our writers use (the temp file's `write`), or a real tiny tmpfs."""
import contextlib
import errno
import os
import subprocess

import pytest

import dassl.utils.atomic as atomic


class _FullDiskFile:
    """A file object whose `write` stores half the data, then fails as a full disk does."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


def fail_writes(monkeypatch, target_names):
    """Atomic writes whose target file name is in `target_names` fail with ENOSPC (the others go through)."""
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        temp_name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        return _FullDiskFile(file) if any(temp_name.startswith(f".{name}.") for name in target_names) else file

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)


@contextlib.contextmanager
def tiny_filesystem(folder, size="1m"):
    """A tmpfs of `size` mounted on `folder` for the block; skips the test where mounting is not permitted."""
    os.makedirs(folder, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder):
    """Fill the file system of `folder` (a file `filler` that takes every free byte)."""
    with open(os.path.join(folder, "filler"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
