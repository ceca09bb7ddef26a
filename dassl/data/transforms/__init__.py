from .transforms import AVAILABLE_CHOICES, INTERPOLATION_MODES, build_transform
