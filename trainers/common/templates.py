"""Prompt templates of the trainers: hand-written per dataset, ensembles per backbone family.

Per dataset (keyed by ``DATASET.NAME``) there are two tables because the
methods differ: CoOp's zero-shot CLIP and KgCoOp's hand-crafted anchors agree
everywhere except DescribableTextures. These hand-written templates are the
same on every backbone, so that methods are compared like for like.

What depends on the backbone family is the zero-shot ensemble (ZeroshotCLIP2):
OpenAI CLIP backbones (and OpenAI-format files, MiniCLIP) average CLIP's 7
selected ImageNet templates, as CoOp's ZeroshotCLIP2 does (its published
numbers); open_clip backbones average the 80 ImageNet templates of OpenAI's
CLIP notebook, which open_clip ships and with which its published zero-shot
numbers were measured (read from the open_clip package, not copied here).
"""
from clip import open_clip_adapter

DEFAULT_TEMPLATE = "a photo of a {}."

IMAGENET_FAMILY = ("ImageNet", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")

_SPECIFIC = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "EuroSAT": "a centered satellite photo of {}.",
    "Food101": "a photo of {}, a type of food.",
    "UCF101": "a photo of a person doing {}.",
}
_GENERIC = ("StanfordCars", "SUN397", "Caltech101") + IMAGENET_FAMILY

COOP_TEMPLATES = {**{name: DEFAULT_TEMPLATE for name in _GENERIC}, **_SPECIFIC,
                  "DescribableTextures": "{} texture."}
KGCOOP_TEMPLATES = {**COOP_TEMPLATES, "DescribableTextures": "a photo of a {}, a type of texture."}

TEMPLATE_TABLES = {"coop": COOP_TEMPLATES, "kgcoop": KGCOOP_TEMPLATES}

# The 7 ImageNet templates CLIP's authors selected; CoOp's ZeroshotCLIP2 averages over them.
IMAGENET_TEMPLATES_SELECT = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

OPENAI_FAMILY = "openai"
OPEN_CLIP_FAMILY = "open_clip"

# Template sets the zero-shot trainers can use (TRAINER.ZSCLIP.TEMPLATES).
DATASET_SET = "dataset"  # the dataset's hand-written (CoOp) template alone
IMAGENET_SELECT_SET = "imagenet_select"
IMAGENET_80_SET = "imagenet_80"
TEMPLATE_SETS = (DATASET_SET, IMAGENET_SELECT_SET, IMAGENET_80_SET)

# The ensemble ZeroshotCLIP2 uses by default, per backbone family (see the module docstring).
DEFAULT_ENSEMBLE = {OPENAI_FAMILY: IMAGENET_SELECT_SET, OPEN_CLIP_FAMILY: IMAGENET_80_SET}


def get_template(dataset_name, kind="coop"):
    """The template of ``dataset_name`` ("{}" marks the class name); unknown datasets get "a photo of a {}."."""
    if kind not in TEMPLATE_TABLES:
        raise ValueError(f"template kind must be one of {sorted(TEMPLATE_TABLES)}, got {kind!r}")
    return TEMPLATE_TABLES[kind].get(dataset_name, DEFAULT_TEMPLATE)


def open_clip_imagenet_templates():
    """open_clip's copy of the 80 ImageNet templates of OpenAI's CLIP notebook, as "{}" strings."""
    open_clip = open_clip_adapter.import_open_clip()
    return tuple(template("{}") for template in open_clip.OPENAI_IMAGENET_TEMPLATES)


# The ImageNet templates of each ensemble set (open_clip's are read when used).
ENSEMBLES = {IMAGENET_SELECT_SET: lambda: IMAGENET_TEMPLATES_SELECT, IMAGENET_80_SET: open_clip_imagenet_templates}


def zero_shot_templates(set_name, dataset_name):
    """The templates a zero-shot classifier averages: the dataset's CoOp template alone (``dataset``),
    or an ensemble plus that template except on ImageNet itself (whose ensemble it already is)."""
    dataset_template = get_template(dataset_name, kind="coop")
    if set_name == DATASET_SET:
        return [dataset_template]
    templates = list(ENSEMBLES[set_name]())
    if dataset_name != "ImageNet":
        templates.append(dataset_template)
    return templates
