"""Tee stdout and stderr into the run's log.txt (the file parse_test_res.py reads).

A log file that cannot be written (a full disk) never takes the console
with it: the tee warns once and goes on writing to the console only, and a
run that starts on a disk without room is refused with the DiskFullError.
"""
import os
import sys
import time

from .atomic import ensure_free_space

MIN_FREE_BYTES = 1 << 20  # a run needs room for its log and checkpoints; less is a full disk
_active = None


class _Tee:
    """A text stream that writes to the console stream and to the log file."""

    def __init__(self, console, log_file):
        self.console = console
        self.log_file = log_file

    def _log(self, action):
        if self.log_file is None or self.log_file.closed:
            return
        try:
            action(self.log_file)
        except OSError as exc:
            self.console.write(f"\nWarning: cannot write {self.log_file.name} ({exc}); logging to the console only\n")
            self.log_file = None

    def write(self, msg):
        self.console.write(msg)
        self._log(lambda f: f.write(msg))
        return len(msg)

    def flush(self):
        self.console.flush()
        self._log(lambda f: f.flush())

    def __getattr__(self, name):
        return getattr(self.console, name)


class RunLogger:
    """Handle returned by `setup_logger`; `close()` puts the original streams back."""

    def __init__(self, fpath):
        self.fpath = fpath
        self.file = open(fpath, "a", encoding="utf-8", buffering=1)
        self.stdout, self.stderr = sys.stdout, sys.stderr
        sys.stdout = _Tee(self.stdout, self.file)
        sys.stderr = _Tee(self.stderr, self.file)

    def close(self):
        global _active
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self.stdout, self.stderr
        try:
            self.file.close()
        except OSError as exc:  # the last buffered lines did not fit on the disk
            print(f"Warning: cannot finish writing {self.fpath} ({exc})", file=sys.stderr)
        if _active is self:
            _active = None


def setup_logger(output=None):
    """Tee stdout and stderr to `output/log.txt` (or to `output` if it ends in .txt/.log).

    Unlike upstream Dassl, which writes a second run into a new time-stamped
    file, an existing log.txt is APPENDED to, after a `=== resumed <time> ===`
    line: parse_test_res.py reads only log.txt, so a resumed run's final
    result must land there. Returns a RunLogger; calling again closes the
    previous one first.
    """
    global _active
    if output is None:
        return None
    fpath = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
    os.makedirs(os.path.dirname(os.path.abspath(fpath)), exist_ok=True)
    ensure_free_space(os.path.dirname(os.path.abspath(fpath)), MIN_FREE_BYTES, fpath)
    resumed = os.path.isfile(fpath) and os.path.getsize(fpath) > 0
    if _active is not None:
        _active.close()
    _active = RunLogger(fpath)
    if resumed:
        print(f"\n=== resumed {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
    return _active


def console_stream():
    """The terminal's stderr, bypassing the log tee (progress bars stay out of log.txt)."""
    stream = sys.stderr
    return stream.console if isinstance(stream, _Tee) else stream
