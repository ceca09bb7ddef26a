"""Closest-name suggestions, so a typo in a name fails with the fix in the message."""
import difflib


def closest_name_hint(name, candidates):
    """' Did you mean "X"?' for the closest candidate, or '' when nothing is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f' Did you mean "{matches[0]}"?' if matches else ""
