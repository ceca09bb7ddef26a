"""The sweep's child process groups, stopped together whatever way the sweep ends.

Every run script (and the warm-start server) runs in its own process group,
so that Ctrl-C at the terminal reaches only the sweep, which then stops its
runs in order (`stop_all`: SIGTERM, the run saves and exits, then SIGKILL for
what is left). If the sweep is killed outright, its guardian process
(tools/sweeping/guardian.py) kills the groups and removes the temporary folders.
"""
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

GUARDIAN = Path(__file__).resolve().with_name("guardian.py")
EXIT_CODES = Path(__file__).resolve().parents[2] / "dassl" / "utils" / "exit_codes.py"


def load_exit_codes():
    """dassl.utils.exit_codes, read without importing dassl.utils (which imports torch), so that
    a sweep and its status view start at once."""
    spec = importlib.util.spec_from_file_location("sweep_exit_codes", EXIT_CODES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ChildGroups:
    """Live process groups of one sweep, mirrored to its guardian."""

    def __init__(self):
        self.lock = threading.Lock()
        self.groups = set()
        self.stopping = threading.Event()
        self.guardian = None

    def start_guardian(self):
        self.guardian = subprocess.Popen(
            [sys.executable, "-I", str(GUARDIAN), str(os.getpid())], stdin=subprocess.PIPE, start_new_session=True
        )

    def _tell_guardian(self, line):
        if self.guardian is not None:
            self.guardian.stdin.write(f"{line}\n".encode())
            self.guardian.stdin.flush()

    def add(self, pgid):
        with self.lock:
            self._add_locked(pgid)

    def _add_locked(self, pgid):
        self.groups.add(pgid)
        self._tell_guardian(f"+{pgid}")

    def discard(self, pgid):
        with self.lock:
            self.groups.discard(pgid)
            self._tell_guardian(f"-{pgid}")

    def remove_on_crash(self, folder):
        with self.lock:
            self._tell_guardian(f"rm {folder}")

    def run(self, argv, **popen_kwargs):
        """subprocess.run in a new process group that stop_all reaches; returns the exit status."""
        with self.lock:  # a group started here is one stop_all stops
            if self.stopping.is_set():
                return -signal.SIGTERM
            process = subprocess.Popen(argv, start_new_session=True, **popen_kwargs)
            self._add_locked(process.pid)
        try:
            return process.wait()
        finally:
            self.discard(process.pid)

    def stop_all(self, grace_seconds=60):
        """SIGTERM every group (a run finishes its step, saves, exits), wait, then SIGKILL the rest."""
        with self.lock:
            self.stopping.set()
            groups = set(self.groups)
        signal_groups(groups, signal.SIGTERM)
        deadline = time.time() + grace_seconds
        while time.time() < deadline and any(group_alive(pgid) for pgid in groups):
            time.sleep(0.05)
        signal_groups(groups, signal.SIGKILL)

    def close(self):
        """The sweep ends normally: the guardian exits without killing anything."""
        if self.guardian is not None:
            self._tell_guardian("exit")
            self.guardian.stdin.close()
            self.guardian.wait()
            self.guardian = None


def signal_groups(groups, signum):
    for pgid in groups:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def group_alive(pgid):
    """Whether the group has a member that is not a zombie (an orphan's zombie may never be reaped
    in a container whose init does not reap); without /proc, whether it has any member."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False
