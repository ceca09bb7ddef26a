"""Config extension hooks: a trainer or dataset module owns its own config node."""
_EXTENSIONS = []


def register_cfg_extension(fn):
    """Decorator: `fn(cfg)` adds keys to the default tree; run by `apply_cfg_extensions`."""
    if not callable(fn):
        raise TypeError(f"register_cfg_extension expects a function cfg -> None, got {fn!r}")
    if fn not in _EXTENSIONS:
        _EXTENSIONS.append(fn)
    return fn


def registered_cfg_extensions():
    return list(_EXTENSIONS)


def apply_cfg_extensions(cfg):
    """Run every registered hook on `cfg`, in registration order; returns `cfg`."""
    for fn in _EXTENSIONS:
        try:
            fn(cfg)
        except Exception as exc:
            raise RuntimeError(
                f"config extension {fn.__module__}.{fn.__qualname__} failed: {exc}. "
                "Two modules may be defining the same key differently."
            ) from exc
    return cfg
