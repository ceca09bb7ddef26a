"""Hand-written prompt templates per dataset, keyed by ``DATASET.NAME``.

Two tables because the methods differ: CoOp's zero-shot CLIP and KgCoOp's
hand-crafted anchors agree everywhere except DescribableTextures.
"""
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

# The 7 ImageNet templates CLIP's authors selected; ZeroshotCLIP2 averages over them.
IMAGENET_TEMPLATES_SELECT = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)


def get_template(dataset_name, kind="coop"):
    """The template of ``dataset_name`` ("{}" marks the class name); unknown datasets get "a photo of a {}."."""
    if kind not in TEMPLATE_TABLES:
        raise ValueError(f"template kind must be one of {sorted(TEMPLATE_TABLES)}, got {kind!r}")
    return TEMPLATE_TABLES[kind].get(dataset_name, DEFAULT_TEMPLATE)
