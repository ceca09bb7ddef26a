"""A Datum pickled by Dassl.pytorch (attributes _impath, _label, _domain, _classname, as the
CoOp-family few-shot .pkl files hold) unpickles here with its values; other state is refused."""
import pickle

import pytest

from dassl.data.datasets import base_dataset
from dassl.data.datasets.base_dataset import Datum, UnreadableDatumError


class UpstreamDatum:
    """Dassl.pytorch's Datum as it pickles: a plain object with underscore attributes."""

    __module__ = base_dataset.__name__
    __qualname__ = "Datum"

    def __init__(self, impath, label, domain, classname):
        self._impath, self._label, self._domain, self._classname = impath, label, domain, classname


def pickled_as_dassl_datum(obj, monkeypatch, protocol):
    """Pickle bytes that name `dassl.data.datasets.base_dataset.Datum`, as upstream's files do."""
    with monkeypatch.context() as patch:
        patch.setattr(base_dataset, "Datum", UpstreamDatum)
        return pickle.dumps(obj, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_upstream_few_shot_lists_unpickle_with_their_paths_and_labels(monkeypatch, protocol):
    upstream = {"train": [UpstreamDatum("/data/eurosat/2750/Forest/Forest_1.jpg", 1, 0, "Forest"),
                          UpstreamDatum("/data/eurosat/2750/SeaLake/SeaLake_9.jpg", 2, 0, "Sea or Lake")]}
    data = pickle.loads(pickled_as_dassl_datum(upstream, monkeypatch, protocol))
    assert data["train"] == [Datum("/data/eurosat/2750/Forest/Forest_1.jpg", 1, 0, "Forest"),
                             Datum("/data/eurosat/2750/SeaLake/SeaLake_9.jpg", 2, 0, "Sea or Lake")]


def test_own_datum_round_trips():
    datum = Datum("a/b.jpg", 3, 1, "cat")
    assert pickle.loads(pickle.dumps(datum)) == datum


def test_any_other_state_is_refused_with_one_clear_line(monkeypatch):
    odd = UpstreamDatum("x.jpg", 0, 0, "x")
    odd._weight = 2.0
    with pytest.raises(UnreadableDatumError) as error:
        pickle.loads(pickled_as_dassl_datum(odd, monkeypatch, 2))
    assert str(error.value) == (
        "Cannot unpickle a Datum with state ['_classname', '_domain', '_impath', '_label', '_weight']: expected "
        "Dassl.pytorch's attributes ['_impath', '_label', '_domain', '_classname'] or this toolkit's "
        "['impath', 'label', 'domain', 'classname']; rebuild the lists from the split JSON files instead"
    )
