"""Stopping a run cleanly when a scheduler asks it to (SIGTERM, or Slurm's `--signal` USR1 warning).

The loop saves a resumable state at the end of every epoch (TRAIN.SAVE_RESUMABLE_EVERY);
on a stop request it finishes the step in progress, saves the state after it
(with the RNG state of the epoch's start, from which a restart redraws the
loader's shuffle and skips the batches already trained on: see
TrainerBase.train_batches) and leaves. The next start resumes at the next batch
and ends exactly like an uninterrupted run.
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
