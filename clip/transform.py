"""CLIP's image preprocessing: bicubic resize of the shorter side, center crop, normalise."""
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _to_rgb(image):
    return image.convert("RGB")


def build_preprocess(resolution):
    """PIL image -> normalised ``3 x resolution x resolution`` tensor, as OpenAI's ``load``."""
    # torchvision is imported here: it doubles `import clip` time and only preprocessing needs it.
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    return transforms.Compose([
        transforms.Resize(resolution, interpolation=InterpolationMode.BICUBIC),
        transforms.CenterCrop(resolution),
        _to_rgb,
        transforms.ToTensor(),
        transforms.Normalize(CLIP_MEAN, CLIP_STD),
    ])
