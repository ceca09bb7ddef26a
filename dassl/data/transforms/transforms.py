"""The train and test image pipelines built from INPUT.* (Dassl's `build_transform`)."""
from torchvision.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    InterpolationMode,
    Normalize,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

from ...config.checks import check_choice, invalid_value, is_int

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}

AVAILABLE_CHOICES = (
    "random_resized_crop",
    "random_flip",
    "random_crop",
    "center_crop",
    "resize",
    "normalize",
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
)


def _check_size(size):
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(is_int(s) and s > 0 for s in size):
        raise invalid_value("INPUT.SIZE", size, "two positive integers (height, width), e.g. (224, 224)")


def _check_blur_kernel(kernel):
    """torchvision's GaussianBlur takes only odd positive sizes."""
    if not is_int(kernel) or kernel <= 0 or kernel % 2 == 0:
        raise invalid_value("INPUT.GB_K", kernel, "an odd positive integer (the gaussian_blur kernel size)")


def check_input_cfg(cfg, choices=None):
    """ConfigError on an INPUT.* value the pipeline cannot be built with (`choices` default INPUT.TRANSFORMS)."""
    choices = cfg.INPUT.TRANSFORMS if choices is None else choices
    for i, choice in enumerate(choices):
        check_choice(f"INPUT.TRANSFORMS[{i}]", choice, AVAILABLE_CHOICES)
    check_choice("INPUT.INTERPOLATION", cfg.INPUT.INTERPOLATION, tuple(INTERPOLATION_MODES))
    _check_size(cfg.INPUT.SIZE)
    if "gaussian_blur" in choices:
        _check_blur_kernel(cfg.INPUT.GB_K)


def build_transform(cfg, is_train=True, choices=None):
    """Compose the train (`is_train`) or test pipeline; None if INPUT.NO_TRANSFORM."""
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    check_input_cfg(cfg, choices)
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    interpolation = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    build = _train_steps if is_train else _test_steps
    print("Building transform_" + ("train" if is_train else "test"))
    steps = build(cfg, choices, tuple(cfg.INPUT.SIZE), interpolation)
    steps.append(("to torch tensor of range [0, 1]", ToTensor()))
    if "normalize" in choices:
        steps.append((f"normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})", normalize))
    for description, _ in steps:
        print(f"+ {description}")
    return Compose([step for _, step in steps])


def _train_steps(cfg, choices, size, interpolation):
    """Training augmentations; a plain resize only if asked or if no crop gives the target size."""
    steps = []
    if "resize" in choices or not {"random_crop", "random_resized_crop"} & set(choices):
        steps.append((f"resize to {size[0]}x{size[1]}", Resize(size, interpolation=interpolation)))
    if "random_crop" in choices:
        padding = cfg.INPUT.CROP_PADDING
        steps.append((f"random crop (padding = {padding})", RandomCrop(size, padding=padding)))
    if "random_resized_crop" in choices:
        scale = tuple(cfg.INPUT.RRCROP_SCALE)
        steps.append(
            (f"random resized crop (size={size}, scale={scale})", RandomResizedCrop(size, scale=scale, interpolation=interpolation))
        )
    if "center_crop" in choices:
        steps.append((f"{size[0]}x{size[1]} center crop", CenterCrop(size)))
    if "random_flip" in choices:
        steps.append(("random flip", RandomHorizontalFlip()))
    if "colorjitter" in choices:
        jitter = ColorJitter(
            brightness=cfg.INPUT.COLORJITTER_B,
            contrast=cfg.INPUT.COLORJITTER_C,
            saturation=cfg.INPUT.COLORJITTER_S,
            hue=cfg.INPUT.COLORJITTER_H,
        )
        steps.append(("color jitter", jitter))
    if "randomgrayscale" in choices:
        steps.append((f"random gray scale (p={cfg.INPUT.RGS_P})", RandomGrayscale(p=cfg.INPUT.RGS_P)))
    if "gaussian_blur" in choices:
        kernel = cfg.INPUT.GB_K
        steps.append((f"gaussian blur (kernel={kernel}, p={cfg.INPUT.GB_P})", RandomApply([GaussianBlur(kernel)], p=cfg.INPUT.GB_P)))
    return steps


def _test_steps(cfg, choices, size, interpolation):
    """Resize the shorter side to max(SIZE), then center-crop SIZE (no randomness)."""
    return [
        (f"resize the smaller edge to {max(size)}", Resize(max(size), interpolation=interpolation)),
        (f"{size[0]}x{size[1]} center crop", CenterCrop(size)),
    ]
