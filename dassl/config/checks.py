"""The one message for a bad config value, and the small checks that raise it.

The early validation (`check_cfg_values`, run by train.py before anything is
built) and the builders that read the same values (optimizer, scheduler,
transforms, samplers) use these, so a bad value reads the same wherever it is
caught.
"""
from ..utils.hints import closest_name_hint
from .merge import ConfigError


def invalid_value(key, value, requirement, hint=""):
    """ConfigError naming the key, what it must be, what it got, and where to fix it."""
    fix_key = key.split("[")[0]
    return ConfigError(
        f"{key} must be {requirement}; got {value!r}.{hint} "
        f"Set {fix_key} in the config file or on the command line."
    )


def check_choice(key, value, choices):
    """`value` is one of `choices`; a typo gets the closest valid name."""
    if value not in choices:
        hint = closest_name_hint(value, choices)
        raise invalid_value(key, value, "one of " + ", ".join(str(c) for c in choices), hint)


def is_int(value):
    """True for ints but not bools (a bool is an int to isinstance)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int_at_least(key, value, minimum):
    """`value` is an int >= `minimum` (counts, frequencies, sizes)."""
    if not is_int(value) or value < minimum:
        raise invalid_value(key, value, f"an integer >= {minimum}")


def check_number_at_least(key, value, minimum):
    """`value` is a real number >= `minimum` (learning rates, weight decay)."""
    if not (is_int(value) or isinstance(value, float)) or value < minimum:
        raise invalid_value(key, value, f"a number >= {minimum}")
