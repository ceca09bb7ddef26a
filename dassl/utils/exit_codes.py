"""Exit statuses of `train.py` that the scripts, the sweep and a scheduler act on.

Kept in one place so the run, the shell scripts and the sweep agree on them.
"""

OK = 0
FAILED = 1  # an input error (one line on stderr) or a bug (traceback in log.txt)
USAGE = 2  # bad command-line arguments
PREEMPTED = 85  # SIGTERM / SIGUSR1: resumable state saved; run the same command again to resume
RUN_LOCKED = 86  # another process holds the run folder's lock: the run is going on elsewhere
