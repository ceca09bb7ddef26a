"""What can be wrong with a dataset on disk, as errors that say what to fix and where DATASETS.md explains it."""
from ...utils.errors import InputError

DATASETS_GUIDE = "DATASETS.md"


class DatasetProblem(InputError):
    """Something about a dataset on disk that the user has to fix; the message says what and how."""


class DatasetNotFoundError(DatasetProblem, FileNotFoundError):
    """A dataset folder, image folder or annotation file is absent."""


class SplitFileError(DatasetProblem, ValueError):
    """A split or few-shot JSON file cannot be read as ``{key: [[path, label, classname], ...]}``."""


class MissingImagesError(DatasetProblem, FileNotFoundError):
    """A split file names images that are not on disk."""


def guide_section(anchor):
    """Where DATASETS.md explains a dataset, e.g. ``DATASETS.md#caltech101``."""
    return f"{DATASETS_GUIDE}#{anchor}" if anchor else DATASETS_GUIDE
