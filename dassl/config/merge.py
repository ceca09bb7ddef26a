"""Strict config merging: every unknown key or wrong type fails with one message saying
which key, where it came from, and the closest valid key.

Values are decoded with `ast.literal_eval` only (as yacs does); Python config
files are refused, so no config can run code. Each merged key remembers its
source (file or command line), see `key_source`.
"""
import os
from ast import literal_eval

import yaml
from yacs.config import CfgNode

from ..utils.errors import InputError
from ..utils.hints import closest_name_hint

_SOURCES_ATTR = "_key_sources"
_YAML_EXTENSIONS = (".yaml", ".yml")
BASE_KEY = "_BASE_"  # a config file's parent file, relative to it, merged first


class ConfigError(InputError, ValueError):
    """A config value that cannot be merged (unknown key, wrong type, missing file)."""


def all_keys(cfg, prefix=""):
    """Full dotted names of every leaf and node in `cfg`."""
    keys = []
    for name, value in cfg.items():
        full = f"{prefix}{name}"
        keys.append(full)
        if isinstance(value, CfgNode):
            keys += all_keys(value, full + ".")
    return keys


def key_source(cfg, full_key):
    """Where `full_key` was last set ("<file path>" or "command line ..."), or None if a default."""
    return cfg.__dict__.get(_SOURCES_ATTR, {}).get(full_key)


def _record_source(cfg, full_key, source):
    if _SOURCES_ATTR not in cfg.__dict__:
        cfg.__dict__[_SOURCES_ATTR] = {}
    cfg.__dict__[_SOURCES_ATTR][full_key] = source


def _decode(value):
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            return literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _unknown_key_error(root, full_key, source):
    hint = closest_name_hint(full_key, all_keys(root))
    extra = ""
    if full_key.startswith("TRAINER.") and full_key.count(".") >= 2:
        extra = " Method keys (TRAINER.<NODE>.*) exist only once the trainer module that registers them is imported."
    return ConfigError(f'Unknown config key "{full_key}" from {source}.{hint}{extra}')


def _coerce(value, default, full_key, source):
    """`value` converted to the type of `default`, or ConfigError."""
    if isinstance(default, CfgNode):
        raise ConfigError(
            f'Config key "{full_key}" from {source} is a group of keys ({", ".join(default)}), '
            f"not a single value; got {value!r}"
        )
    if type(value) is type(default) or value is None or default is None:
        return value
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return type(default)(value)
    if type(value) is int and type(default) is float:
        return float(value)
    raise ConfigError(
        f'Type mismatch for config key "{full_key}" from {source}: expected {type(default).__name__} '
        f"(default {default!r}) but got {type(value).__name__} {value!r}."
        + (' Quote it to pass a string, e.g. "True".' if isinstance(default, str) else "")
    )


def _merge_mapping(root, node, mapping, prefix, source):
    for name, raw in mapping.items():
        full_key = f"{prefix}{name}"
        if name not in node:
            raise _unknown_key_error(root, full_key, source)
        value = _decode(raw)
        if isinstance(value, dict):
            if not isinstance(node[name], CfgNode):
                raise ConfigError(
                    f'Config key "{full_key}" from {source} is a single value (default {node[name]!r}), '
                    f"not a group of keys; got {raw!r}"
                )
            _merge_mapping(root, node[name], value, full_key + ".", source)
            continue
        node[name] = _coerce(value, node[name], full_key, source)
        _record_source(root, full_key, source)


def merge_from_file(cfg, path, _children=()):
    """Merge a yaml config file into `cfg` (strict keys and types). A file naming another in
    `_BASE_: other.yaml` (relative to itself) is that file with its own keys merged on top, so a
    variant (fewer epochs) states only what differs."""
    if not path or not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path!r} (check the path given to --config-file / --dataset-config-file)")
    if not path.endswith(_YAML_EXTENSIONS):
        raise ConfigError(f"Config file {path} must be a .yaml or .yml file (Python config files are not supported)")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return cfg
    _ensure_mutable(cfg)
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of keys, got {type(data).__name__}")
    if BASE_KEY in data:
        _merge_base(cfg, path, data.pop(BASE_KEY), _children)
    _merge_mapping(cfg, cfg, data, "", path)
    return cfg


def _merge_base(cfg, path, base, children):
    if not isinstance(base, str) or not base.endswith(_YAML_EXTENSIONS):
        raise ConfigError(f"{BASE_KEY} in {path} must name a .yaml file beside it, e.g. {BASE_KEY}: mini.yaml; got {base!r}")
    chain = children + (os.path.realpath(path),)
    base_path = os.path.join(os.path.dirname(path), base)
    if os.path.realpath(base_path) in chain:
        raise ConfigError(f"{BASE_KEY} in {path} names {base_path}, which is already its own base; remove the loop")
    if not os.path.isfile(base_path):
        raise ConfigError(f"{BASE_KEY} in {path} names {base_path}, which does not exist")
    merge_from_file(cfg, base_path, chain)


def _ensure_mutable(cfg):
    if cfg.is_frozen():
        raise ConfigError("The config is frozen; merge files and overrides before cfg.freeze()")


def set_value(cfg, full_key, value, source="the command line"):
    """Set one dotted key with the same checks as a file (value given as a Python object or string)."""
    _ensure_mutable(cfg)
    node = cfg
    parts = full_key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, CfgNode) or part not in node:
            raise _unknown_key_error(cfg, full_key, source)
        if depth < len(parts) - 1:
            node = node[part]
    node[parts[-1]] = _coerce(_decode(value), node[parts[-1]], full_key, source)
    _record_source(cfg, full_key, source)
    return cfg


def merge_from_list(cfg, opts, source="the command line"):
    """Merge trailing `KEY VALUE KEY VALUE ...` pairs."""
    opts = list(opts or [])
    if len(opts) % 2 != 0:
        raise ConfigError(
            f"Config overrides from {source} must be KEY VALUE pairs; got an odd number of items: {opts}"
        )
    for full_key, value in zip(opts[0::2], opts[1::2]):
        set_value(cfg, full_key, value, source)
    return cfg
