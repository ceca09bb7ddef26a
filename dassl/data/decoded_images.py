"""Decoded images kept in memory for the next pass over the same list (DATALOADER.DECODED_CACHE_MB).

A few-shot run reads the same training images every epoch, and on a CPU with a
small model (the mini world) decoding them again is a sizable share of a step.
Up to the budget, the first read of a path keeps its decoded RGB image; every
read hands the transforms a copy, so a transform that edited its input in place
could not change a later epoch: the batches are the same as without the cache.
"""
from ..utils import read_image


class DecodedImages:
    """read(path) -> PIL RGB image, decoded once per path while `budget_mb` MiB of pixels last."""

    def __init__(self, budget_mb):
        self.budget = int(budget_mb * 2**20)
        self.used = 0
        self.images = {}

    def read(self, path):
        image = self.images.get(path)
        if image is None:
            image = read_image(path)
            size = image.width * image.height * len(image.getbands())
            if self.used + size > self.budget:
                return image
            self.images[path] = image
            self.used += size
        return image.copy()
