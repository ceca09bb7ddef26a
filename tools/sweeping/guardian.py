"""Kills a sweep's runs when the sweep itself dies without cleaning up (SIGKILL, OOM killer).

    python guardian.py SWEEP_PID      (started by tools/sweeping/children.py, in its own session)

The sweep writes lines on this process's stdin: `+PGID` / `-PGID` as it starts and
ends a process group (a run's script, the warm-start server), `rm PATH` for a
folder to delete, `exit` when it ends normally. When the sweep's PID stops being
this process's parent (checked every 50 ms) or stdin closes without `exit`, the
groups get SIGKILL, as if the sweep's own process group had been killed, and the
folders are removed. Standard library only, so it starts in milliseconds.
"""
import os
import select
import shutil
import signal
import sys

POLL_SECONDS = 0.05


def kill_and_clean(groups, folders):
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def watch(sweep_pid, stream):
    """Follow the sweep's messages until it exits normally (return) or dies (kill and clean)."""
    groups, folders, pending = set(), set(), b""
    while os.getppid() == sweep_pid:
        readable, _, _ = select.select([stream], [], [], POLL_SECONDS)
        if not readable:
            continue
        data = os.read(stream.fileno(), 4096)
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in (raw.decode() for raw in lines):
            if line == "exit":
                return
            if line.startswith("rm "):
                folders.add(line[3:])
            elif line[:1] in "+-" and line[1:].isdigit():
                (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    kill_and_clean(groups, folders)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]), sys.stdin)
