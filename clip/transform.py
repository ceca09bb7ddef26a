"""CLIP's image preprocessing: bicubic resize of the shorter side, center crop, normalise."""
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INTERPOLATIONS = ("bicubic", "bilinear")
RESIZE_MODES = ("shortest", "squash")


def _to_rgb(image):
    return image.convert("RGB")


def build_preprocess(resolution, mean=CLIP_MEAN, std=CLIP_STD, interpolation="bicubic", resize_mode="shortest"):
    """PIL image -> normalised ``3 x resolution x resolution`` tensor, as OpenAI's ``load``.

    Checkpoints trained otherwise (open_clip's) pass their own normalisation,
    interpolation and resize mode: "shortest" resizes the shorter side and
    center-crops, "squash" resizes both sides (no crop).
    """
    # torchvision is imported here: it doubles `import clip` time and only preprocessing needs it.
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    if interpolation not in INTERPOLATIONS or resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"unsupported preprocessing (interpolation {interpolation!r}, resize mode {resize_mode!r}); "
            f"supported: interpolation {INTERPOLATIONS}, resize mode {RESIZE_MODES}"
        )
    mode = InterpolationMode.BICUBIC if interpolation == "bicubic" else InterpolationMode.BILINEAR
    if resize_mode == "squash":
        resize = [transforms.Resize((resolution, resolution), interpolation=mode)]
    else:
        resize = [transforms.Resize(resolution, interpolation=mode), transforms.CenterCrop(resolution)]
    return transforms.Compose([
        *resize,
        _to_rgb,
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
