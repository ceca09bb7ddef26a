"""Means over seeds with their spread (numpy std, ddof 0 as upstream, or the 95% confidence half-width)."""
from dataclasses import dataclass

import numpy as np


def compute_ci95(values):
    return 1.96 * np.std(values) / np.sqrt(len(values))


def spread(values, ci95):
    """Numpy std (ddof 0, as upstream) or the 95% confidence half-width."""
    return compute_ci95(values) if ci95 else np.std(values)


@dataclass
class Stat:
    """A mean over seeds with its spread and the seeds it came from."""

    mean: float
    spread: float
    seeds: tuple

    @classmethod
    def of(cls, by_seed, ci95):
        if not by_seed:
            return None
        seeds = tuple(sorted(by_seed))
        values = [by_seed[s] for s in seeds]
        return cls(float(np.mean(values)), float(spread(values, ci95)), seeds)
