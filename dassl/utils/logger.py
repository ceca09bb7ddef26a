"""Tee stdout and stderr into the run's log.txt (the file parse_test_res.py reads)."""
import os
import sys
import time

_active = None


class _Tee:
    """A text stream that writes to the console stream and to the log file."""

    def __init__(self, console, log_file):
        self.console = console
        self.log_file = log_file

    def write(self, msg):
        self.console.write(msg)
        self.log_file.write(msg)
        return len(msg)

    def flush(self):
        self.console.flush()
        self.log_file.flush()

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
        self.file.close()
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
