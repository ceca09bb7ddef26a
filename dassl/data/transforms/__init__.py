from .transforms import AVAILABLE_CHOICES, INTERPOLATION_MODES, build_transform, check_input_cfg
