"""Prompt templates: per dataset (the same on every backbone), zero-shot ensembles per backbone family."""
import pytest

from dassl.config import get_cfg_default
from trainers.common.backbone import backbone_family
from trainers.common.templates import (
    COOP_TEMPLATES,
    DEFAULT_ENSEMBLE,
    IMAGENET_TEMPLATES_SELECT,
    get_template,
    zero_shot_templates,
)
from trainers.zsclip import CUSTOM_TEMPLATES

# CoOp's zsclip.py CUSTOM_TEMPLATES and CLIP's 7 selected ImageNet templates, written out: the
# OpenAI-backbone numbers of the papers depend on every character.
COOP_PAPER_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
}
CLIP_SELECT_TEMPLATES = [
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
]


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
    with pytest.raises(ValueError, match="kind"):
        get_template("ImageNet", kind="clip")


def test_openai_backbones_keep_the_papers_templates_exactly():
    assert COOP_TEMPLATES == COOP_PAPER_TEMPLATES and CUSTOM_TEMPLATES is COOP_TEMPLATES
    assert list(IMAGENET_TEMPLATES_SELECT) == CLIP_SELECT_TEMPLATES
    assert DEFAULT_ENSEMBLE["openai"] == "imagenet_select"
    assert zero_shot_templates("imagenet_select", "EuroSAT") == CLIP_SELECT_TEMPLATES + ["a centered satellite photo of {}."]
    assert zero_shot_templates("imagenet_select", "ImageNet") == CLIP_SELECT_TEMPLATES
    assert zero_shot_templates("imagenet_select", "ImageNetV2") == CLIP_SELECT_TEMPLATES + ["a photo of a {}."]
    assert zero_shot_templates("dataset", "DescribableTextures") == ["{} texture."]


def test_open_clip_backbones_average_open_clips_80_imagenet_templates():
    open_clip = pytest.importorskip("open_clip")
    assert DEFAULT_ENSEMBLE["open_clip"] == "imagenet_80"
    eighty = [template("{}") for template in open_clip.OPENAI_IMAGENET_TEMPLATES]
    assert len(eighty) == 80 and eighty[0] == "a bad photo of a {}." and set(CLIP_SELECT_TEMPLATES) <= set(eighty)
    assert zero_shot_templates("imagenet_80", "ImageNet") == eighty
    assert zero_shot_templates("imagenet_80", "Food101") == eighty + ["a photo of {}, a type of food."]


def _backbone_cfg(name, path=""):
    cfg = get_cfg_default()
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.BACKBONE.PATH = path
    return cfg


@pytest.mark.parametrize("name", ["ViT-B/16", "RN50", "MiniCLIP"])
def test_openai_names_are_the_openai_family(name):
    assert backbone_family(_backbone_cfg(name)) == "openai"


def test_open_clip_names_and_files_are_the_open_clip_family(tmp_path):
    pytest.importorskip("open_clip")
    assert backbone_family(_backbone_cfg("ViT-B-16/laion2b_s34b_b88k")) == "open_clip"
    weights = tmp_path / "open_clip_pytorch_model.bin"
    weights.write_bytes(b"")
    assert backbone_family(_backbone_cfg("", str(weights))) == "openai"  # a bare file is read as OpenAI's format
    (tmp_path / "open_clip_config.json").write_text("{}")
    assert backbone_family(_backbone_cfg("", str(weights))) == "open_clip"
