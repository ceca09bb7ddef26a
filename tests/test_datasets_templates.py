"""Per-dataset prompt templates."""
import pytest

from datasets.templates import IMAGENET_TEMPLATES_SELECT, get_template


def test_coop_and_kgcoop_templates_differ_only_for_dtd():
    assert get_template("DescribableTextures") == "{} texture."
    assert get_template("DescribableTextures", kind="kgcoop") == "a photo of a {}, a type of texture."
    for name in ("OxfordPets", "EuroSAT", "Food101", "UCF101", "FGVCAircraft", "OxfordFlowers", "SUN397"):
        assert get_template(name) == get_template(name, kind="kgcoop")
    assert get_template("Food101").format("pizza") == "a photo of pizza, a type of food."


def test_imagenet_variants_and_unknown_datasets():
    assert {get_template(name) for name in ("ImageNet", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")} \
        == {"a photo of a {}."}
    assert get_template("ImageFolderDataset", kind="kgcoop") == "a photo of a {}."
    assert len(IMAGENET_TEMPLATES_SELECT) == 7 and all("{}" in t for t in IMAGENET_TEMPLATES_SELECT)
    with pytest.raises(ValueError, match="kind"):
        get_template("ImageNet", kind="clip")
