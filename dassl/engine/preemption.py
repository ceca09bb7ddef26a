"""Stopping a run cleanly when a scheduler asks it to (SIGTERM, or Slurm's `--signal` USR1 warning).

The loop saves a resumable state at the end of every epoch (TRAIN.SAVE_RESUMABLE_EVERY),
so on a stop request it only has to finish the step in progress and leave: the
next start resumes from that state and ends exactly like an uninterrupted run
(a state saved in the middle of an epoch could not promise that: the loader's
shuffle and augmentations of the epoch's remaining batches are not saved).
"""
import signal
import threading

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """Raised by the train loop after a stop request; train.py exits with exit_codes.PREEMPTED."""


class PreemptionWatch:
    """While entered, SIGTERM/SIGUSR1 only record a stop request that `check()` acts on between steps."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in PREEMPTION_SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _request(self, signum, frame):
        self.signal_name = signal.Signals(signum).name

    def check(self, where, saved):
        """Raise Preempted (naming `where` the run stopped and what `saved` state resumes) after a request."""
        if self.signal_name:
            raise Preempted(f"preempted by {self.signal_name} at {where}; {saved}; run the same command again to resume")
