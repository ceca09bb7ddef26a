"""Evaluation that takes the frozen image tower's output from the feature cache.

A model says what its evaluation forward needs from the image side
(`eval_image_input`):
- EVAL_INPUT_IMAGES: images only (prompted image passes; nothing to serve);
- EVAL_INPUT_FEATURES: only the frozen tower's features (CoOp, KgCoOp,
  CoCoOp, zero-shot CLIP): the images are not even decoded;
- EVAL_INPUT_BOTH: images for a prompted pass plus the frozen features (DPT's
  top-K zero-shot pass).
The trainer then hands the model a `ServedImageFeatures(features, images)`
instead of images; results equal the uncached evaluation.
"""
from collections import namedtuple

import torch

from dassl.engine.distributed import gather_interleaved, is_main_process, shard_indices, shard_loader, synchronize
from dassl.utils import capture_rng_state, restore_rng_state

from .feature_cache import FeatureCache, encode_frozen_images, feature_cache_dir, split_key

EVAL_INPUT_IMAGES = "images"
EVAL_INPUT_FEATURES = "frozen_features"
EVAL_INPUT_BOTH = "images_and_frozen_features"

ServedImageFeatures = namedtuple("ServedImageFeatures", ["features", "images"])
ServedImageFeatures.__doc__ = "Frozen image-tower outputs of a batch (not normalised), with its images or None."


class FrozenFeatureEvaluation:
    """Mixin placed before TrainerX; the host says what to serve and from which CLIP."""

    def frozen_eval_input(self):
        """One of EVAL_INPUT_IMAGES, EVAL_INPUT_FEATURES, EVAL_INPUT_BOTH."""
        raise NotImplementedError

    def frozen_image_tower(self):
        """The frozen CLIP whose `visual` the model's frozen pass runs."""
        raise NotImplementedError

    def evaluation_batches(self, data_loader, split):
        mode = self.frozen_eval_input() if self.cfg.TEST.FEATURE_CACHE else EVAL_INPUT_IMAGES
        if mode == EVAL_INPUT_IMAGES:
            yield from super().evaluation_batches(data_loader, split)
            return
        features = self.split_features(data_loader, split)
        if mode == EVAL_INPUT_FEATURES:
            yield from self._feature_only_batches(features, data_loader)
            return
        for batch in self.evaluation_loader(data_loader, split):
            images, labels = self.parse_batch_test(batch)
            yield ServedImageFeatures(features[batch["index"]].to(self.device), images), labels

    def _feature_only_batches(self, features, data_loader):
        data_source = data_loader.dataset.data_source
        indices = torch.tensor(shard_indices(len(data_source)), dtype=torch.long)
        for chunk in indices.split(data_loader.batch_size):
            labels = torch.tensor([data_source[i].label for i in chunk.tolist()], device=self.device)
            yield ServedImageFeatures(features[chunk].to(self.device), None), labels

    def split_features(self, data_loader, split):
        """The split's frozen features: from memory, from the cache folder, or encoded (and saved) now."""
        key = split_key(self.cfg, split, data_loader, self.precision)
        memo = self.__dict__.setdefault("_frozen_feature_memo", {})
        digest = tuple(sorted(key.items()))
        if digest not in memo:
            cache = FeatureCache(feature_cache_dir(self.cfg))
            features = cache.load(key)
            if features is None:
                features = self._encode_split(data_loader)
                if is_main_process():
                    print(f"Cached frozen image features of the {split} split: {cache.save(key, features)}")
                synchronize()
            else:
                print(f"Frozen image features of the {split} split read from the cache ({len(features)} images)")
            memo[digest] = features
        return memo[digest]

    def _encode_split(self, data_loader):
        """Encode the split without touching the random streams: a cache miss (an extra loader
        pass, which draws a seed) must not change the rest of a run, so cold and warm caches
        give the same numbers."""
        rng_state = capture_rng_state()
        try:
            shard = shard_loader(data_loader)
            encoded = encode_frozen_images(self.frozen_image_tower(), shard, self.precision, self.device)
            return gather_interleaved(encoded)
        finally:
            restore_rng_state(rng_state)
