"""Reading one run folder: its result, or why it does not count.

A run of this toolkit counts only with its done.json (read by the sweep's own
reader, so a corrupt file is unfinished to both), and the value comes from
done.json: a line appended to log.txt later cannot change it. A folder written
by the CoOp-family repositories has no done.json; it counts when its log holds
the end signal and a result, flagged as a reference log. A folder is this
toolkit's when it holds a file only the toolkit writes (done.json, even
unreadable, its temporary file, or the sweep's console file).
"""
import os
import re
from dataclasses import dataclass

from dassl.utils import is_run_done, read_done_marker

TRAIN_END_SIGNALS = ("Finish training", "Finished training")
TEST_END_SIGNAL = "=> result"
DONE_MARKER = "done.json"
TOOLKIT_FILES = (DONE_MARKER, DONE_MARKER + ".tmp", "sweep_console.txt")


def metric_regex(keyword):
    """The evaluator line `* <keyword>: X%` (1 or 2 decimals, or exponent)."""
    return re.compile(rf"\* {re.escape(keyword)}: ([\.\deE+-]+)%")


def scan_log(log_path, keyword, end_signals):
    """(whether an end signal was seen, last keyword value after the first end signal)."""
    regex = metric_regex(keyword)
    seen_end = False
    value = None
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if line in end_signals:
                seen_end = True
            match = regex.search(line)
            if match and seen_end:
                value = float(match.group(1))
    return seen_end, value


def log_files(run_dir):
    """log.txt, then the timestamped logs a restarted run writes beside it (oldest first)."""
    names = [n for n in os.listdir(run_dir) if n == "log.txt" or n.startswith("log.txt-")]
    return [os.path.join(run_dir, n) for n in sorted(names)]


def log_value(log_path, trained, keyword):
    """A training run: the last value after the training end line, or the
    `=> result` block of an eval-only run (zero-shot). Otherwise the eval-only block."""
    if trained:
        seen_end, value = scan_log(log_path, keyword, TRAIN_END_SIGNALS)
        if seen_end:
            return value
    return scan_log(log_path, keyword, (TEST_END_SIGNAL,))[1]


@dataclass(frozen=True)
class RunValue:
    """A run folder's result (`value`) or the reason it does not count (`problem`)."""

    value: float = None
    problem: str = None
    reference: bool = False


def is_toolkit_run(run_dir):
    return any(os.path.exists(os.path.join(run_dir, name)) for name in TOOLKIT_FILES)


def last_log_value(run_dir, trained, keyword):
    values = [v for v in (log_value(p, trained, keyword) for p in log_files(run_dir)) if v is not None]
    return values[-1] if values else None


def read_run_value(run_dir, trained, keyword="accuracy"):
    """The result of one run folder; `trained`: a training run (else eval-only)."""
    if not is_run_done(run_dir):
        if not is_toolkit_run(run_dir) and log_files(run_dir):
            value = last_log_value(run_dir, trained, keyword)
            if value is not None:
                return RunValue(value, reference=True)
        return RunValue(problem=f"unfinished (no {DONE_MARKER})" if not os.path.exists(
            os.path.join(run_dir, DONE_MARKER)) else f"unfinished (unreadable {DONE_MARKER})")
    results = (read_done_marker(run_dir) or {}).get("results") or {}
    if results.get(keyword) is not None:
        return RunValue(float(results[keyword]))
    if not log_files(run_dir):
        return RunValue(problem="no log.txt")
    value = last_log_value(run_dir, trained, keyword)
    if value is None:
        return RunValue(problem=f"no '* {keyword}: X%' result in its log")
    return RunValue(value)


BACKBONE_LINE = re.compile(r"^Loading CLIP \(backbone: (.+?)(?:, from .+)?\)$", re.M)


def logged_backbone(logs):
    """MODEL.BACKBONE.NAME as the last log names it (`Loading CLIP (backbone: NAME[, from PATH])`,
    as CoOp logs it), or None if no log names one. With PATH, NAME still names the architecture
    (open_clip's, e.g. `ViT-B-16`, for open_clip files)."""
    found = None
    for path in logs:
        with open(path, encoding="utf-8", errors="replace") as f:
            found = (BACKBONE_LINE.findall(f.read()) or [found])[-1]
    return found
