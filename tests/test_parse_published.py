"""The published numbers file is internally consistent and matches the papers' tables."""
import pytest

from reporting.published import load_published, published_for, published_method

BENCHMARKS = [
    "imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101",
]
METHODS = load_published()["methods"]


def harmonic(base, new):
    return 2 * base * new / (base + new)


def test_benchmarks_and_methods():
    assert load_published()["benchmarks"] == BENCHMARKS
    assert list(METHODS) == ["ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp", "CoOp+TextRefiner"]


@pytest.mark.parametrize("name", list(METHODS))
def test_every_h_is_the_harmonic_mean(name):
    entry = METHODS[name]
    for numbers in list(entry["datasets"].values()) + [entry["average"]]:
        assert abs(harmonic(numbers["base"], numbers["new"]) - numbers["h"]) <= 0.01


@pytest.mark.parametrize("name", ["ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp"])
def test_per_dataset_means_reproduce_published_averages(name):
    entry = METHODS[name]
    assert sorted(entry["datasets"]) == sorted(BENCHMARKS)
    for key in ("base", "new"):
        mean = sum(d[key] for d in entry["datasets"].values()) / 11
        assert abs(mean - entry["average"][key]) <= 0.01


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_names_its_source_and_config(name):
    entry = METHODS[name]
    assert entry["source"]["paper"] and entry["source"]["table"] and entry["config"]


def test_spot_values_copied_from_the_spec():
    assert published_for("KgCoOp", "eurosat") == {"name": "EuroSAT", "base": 85.64, "new": 64.34, "h": 73.48}
    assert published_for("CoOp", "oxford_flowers")["new"] == 59.67
    assert published_for("CoCoOp", "fgvc_aircraft")["h"] == 27.74
    assert published_for("ZeroshotCLIP", "imagenet")["base"] == 72.43
    assert METHODS["CoOp+TextRefiner"]["average"] == {"base": 79.74, "new": 74.32, "h": 76.94}
    assert METHODS["CoOp"]["config"] == "vit_b16_ctxv1"
    assert METHODS["CoCoOp"]["config"] == "vit_b16_c4_ep10_batch1_ctxv1"
    assert METHODS["KgCoOp"]["config"] == "vit_b16_ep100_ctxv1"


def test_lookup_by_alias_and_unknowns():
    assert published_method("TextRefiner") is METHODS["CoOp+TextRefiner"]
    assert published_for("TextRefiner", "dtd") is None
    assert published_for("CoOp", "mini_fashion") is None
    assert published_method("DPT") is None
