"""Errors caused by the user's input (paths, names, config, data, checkpoints, machine).

Their messages say what is wrong, where, and what to do, so `train.py` prints
them as one line instead of a traceback; anything else is a bug and keeps its
traceback. Each class also derives from the built-in error it replaces, so
callers catching e.g. FileNotFoundError keep working. The table of inputs
and messages is docs/errors.md.
"""


class InputError(Exception):
    """Bad input the user has to fix; the message is complete without a traceback."""


class MissingCheckpointError(InputError, FileNotFoundError):
    """No checkpoint where one was asked for (--model-dir, --load-epoch, MODEL.INIT_WEIGHTS)."""


class CheckpointMismatchError(InputError, ValueError):
    """A checkpoint that does not fit the model (another trainer, class list or setting)."""


class UnreadableCheckpointError(InputError, RuntimeError):
    """A checkpoint file that is truncated, corrupt or needs unsafe unpickling."""


class BackboneLoadError(InputError, RuntimeError):
    """The CLIP weights named by MODEL.BACKBONE.NAME / PATH cannot be found or read."""


class UnreadableImageError(InputError, OSError):
    """An image file that is corrupt or truncated."""


class CudaUnavailableError(InputError, RuntimeError):
    """CUDA was asked for explicitly on a machine without a usable GPU."""


class DiskFullError(InputError, OSError):
    """The disk filled up while a file was being written (the previous version is intact)."""


class ClassNameTooLongError(InputError, ValueError):
    """A class name whose prompt does not fit CLIP's 77-token context."""


class TrainingDivergedError(InputError, FloatingPointError):
    """The loss became NaN or infinite (settings the user can change: LR, precision)."""
