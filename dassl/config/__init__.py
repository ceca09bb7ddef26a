"""Config: the default tree, extension hooks and strict merging."""
from .defaults import build_default_cfg
from .extensions import apply_cfg_extensions, register_cfg_extension, registered_cfg_extensions
from .merge import ConfigError, all_keys, key_source, merge_from_file, merge_from_list, set_value


def get_cfg_default():
    """A fresh copy of the default config (without cfg extensions; see `apply_cfg_extensions`)."""
    return build_default_cfg()
