"""Datum and DatasetBase: the in-memory split lists every dataset class produces."""
import numbers
import random
from collections import defaultdict
from dataclasses import dataclass, fields

from ...utils.errors import InputError


class UnreadableDatumError(InputError, ValueError):
    """A pickled Datum whose attributes are neither this toolkit's nor Dassl.pytorch's."""


@dataclass(frozen=True)
class Datum:
    """One image: path, label, domain and class name.

    Unlike upstream Dassl the constructor does not stat the file (building a
    1.28M-image split must stay fast); existence is checked where a split is
    read and when the image is loaded.
    """

    impath: str = ""
    label: int = 0
    domain: int = 0
    classname: str = ""

    def __setstate__(self, state):
        """Unpickle this toolkit's Datum, or Dassl.pytorch's (same module path; attributes
        `_impath`, `_label`, `_domain`, `_classname`, as the CoOp-family few-shot `.pkl` files hold).

        Without it an upstream Datum would unpickle silently as impath "" and label 0.
        """
        names = [field.name for field in fields(self)]
        values = dict(state) if isinstance(state, dict) else None
        if values is not None and set(values) == {f"_{name}" for name in names}:
            values = {name: values[f"_{name}"] for name in names}
        if values is None or set(values) != set(names):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise UnreadableDatumError(
                f"Cannot unpickle a Datum with state {found}: expected Dassl.pytorch's attributes "
                f"{[f'_{name}' for name in names]} or this toolkit's {names}; rebuild the lists from the "
                "split JSON files instead"
            )
        for name in names:
            object.__setattr__(self, name, values[name])
        self.__post_init__()

    def __post_init__(self):
        if not isinstance(self.impath, str):
            raise TypeError(f"Datum.impath must be a str path, got {type(self.impath).__name__}: {self.impath!r}")
        if not isinstance(self.label, numbers.Integral) or isinstance(self.label, bool):
            raise TypeError(f"Datum.label must be an int, got {type(self.label).__name__} for {self.impath}")
        object.__setattr__(self, "label", int(self.label))
        object.__setattr__(self, "domain", int(self.domain))


class DatasetBase:
    """Holds train_x (labelled), train_u (unlabelled), val and test lists of Datum."""

    dataset_dir = ""
    domains = []
    source_files = ()  # split / few-shot files the lists were read from (hashed into the run's fingerprint)

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        if not train_x:
            raise ValueError(
                f"{type(self).__name__}: train_x is empty; the class list (num_classes, classnames) comes from it. "
                "For a test-only dataset pass the test list as train_x too."
            )
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self):
        return self._lab2cname

    @property
    def classnames(self):
        return self._classnames

    @property
    def num_classes(self):
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source):
        """max label + 1."""
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source):
        """({label: classname}, classnames sorted by label)."""
        mapping = {item.label: item.classname for item in data_source}
        labels = sorted(mapping)
        return {label: mapping[label] for label in labels}, [mapping[label] for label in labels]

    def generate_fewshot_dataset(self, *data_sources, num_shots=-1, repeat=False):
        """Sample `num_shots` items per label from each source with Python's global `random`.

        Labels are visited in order of first appearance. A class with fewer
        items keeps all of them (or is sampled with replacement if `repeat`).
        Returns one list per source (the list itself if a single source).
        """
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            dataset = []
            for items in self.split_dataset_by_label(data_source).values():
                if len(items) >= num_shots:
                    dataset.extend(random.sample(items, num_shots))
                elif repeat:
                    dataset.extend(random.choices(items, k=num_shots))
                else:
                    dataset.extend(items)
            output.append(dataset)
        return output[0] if len(output) == 1 else output

    @staticmethod
    def split_dataset_by_label(data_source):
        """{label: [items]} in order of first appearance."""
        output = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    @staticmethod
    def split_dataset_by_domain(data_source):
        """{domain: [items]} in order of first appearance."""
        output = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output
