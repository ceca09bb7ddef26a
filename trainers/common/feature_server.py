"""One object that serves the frozen image tower's outputs instead of running the tower.

A trainer holds a `FeatureServer` (composition, not a mixin). It serves:
- at evaluation, the frozen features of the split from the feature cache
  (trainers.common.feature_cache, TEST.FEATURE_CACHE);
- in training, one of K cached augmented views per image
  (trainers.common.cached_views, TRAIN.CACHED_VIEWS).

A model says what its evaluation forward needs from the image side
(`eval_image_input`):
- EVAL_INPUT_IMAGES: images only (prompted image passes; nothing to serve);
- EVAL_INPUT_FEATURES: only the frozen tower's features (CoOp, KgCoOp,
  CoCoOp, zero-shot CLIP): the images are not even decoded;
- EVAL_INPUT_BOTH: images for a prompted pass plus the frozen features (DPT's
  top-K zero-shot pass).
A served batch is a `ServedImageFeatures(features, images)`; the trainer hands
its parts to the model as explicit arguments, `model(images, ...,
frozen_features=features)` (`forward_arguments`), so nothing is set on the
model for the duration of a batch and DistributedDataParallel passes them
through. Results equal the uncached evaluation.
"""
from collections import namedtuple

import torch

from dassl.engine.distributed import (
    distribute_train_loader,
    gather_interleaved,
    is_main_process,
    shard_indices,
    shard_loader,
    synchronize,
)
from dassl.utils import capture_rng_state, restore_rng_state

from .cached_views import encode_augmented_views, index_loader
from .feature_cache import FeatureCache, encode_frozen_images, feature_cache_dir, split_key

EVAL_INPUT_IMAGES = "images"
EVAL_INPUT_FEATURES = "frozen_features"
EVAL_INPUT_BOTH = "images_and_frozen_features"

ServedImageFeatures = namedtuple("ServedImageFeatures", ["features", "images"])
ServedImageFeatures.__doc__ = "Frozen image-tower outputs of a batch (not normalised), with its images or None."


def forward_arguments(input):
    """(image argument, keyword arguments) of a model call for a batch input, served or not."""
    if isinstance(input, ServedImageFeatures):
        return input.images, {"frozen_features": input.features}
    return input, {}


class FeatureServer:
    """Frozen image features of a run: cached evaluation splits and cached training views.

    `clip_model` is the frozen CLIP whose `visual` the model's frozen pass
    runs; `eval_input` is the model's `eval_image_input`.
    """

    def __init__(self, cfg, clip_model, precision, device, eval_input):
        self.cfg = cfg
        self.clip_model = clip_model
        self.precision = precision
        self.device = device
        self.eval_input = eval_input if cfg.TEST.FEATURE_CACHE else EVAL_INPUT_IMAGES
        self.train_views = None
        self._split_memo = {}
        self._view_generator = None

    def evaluation_batches(self, data_loader, split, loader_batches, parse_batch):
        """(input, labels) of an evaluation, served where the model allows it.

        `loader_batches()` gives the trainer's batches of `data_loader` (its
        shard, with progress; not read when only features are served),
        `parse_batch` turns one into (images, labels).
        """
        if self.eval_input == EVAL_INPUT_IMAGES:
            yield from (parse_batch(batch) for batch in loader_batches())
            return
        features = self.split_features(data_loader, split)
        if self.eval_input == EVAL_INPUT_FEATURES:
            yield from self._feature_only_batches(features, data_loader)
            return
        for batch in loader_batches():
            images, labels = parse_batch(batch)
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
        digest = tuple(sorted(key.items()))
        if digest not in self._split_memo:
            cache = FeatureCache(feature_cache_dir(self.cfg))
            features = cache.load(key)
            if features is None:
                features = self._encode_split(data_loader)
                if is_main_process():
                    print(f"Cached frozen image features of the {split} split: {cache.save(key, features)}")
                synchronize()
            else:
                print(f"Frozen image features of the {split} split read from the cache ({len(features)} images)")
            self._split_memo[digest] = features
        return self._split_memo[digest]

    def _encode_split(self, data_loader):
        """Encode the split without touching the random streams: a cache miss (an extra loader
        pass, which draws a seed) must not change the rest of a run, so cold and warm caches
        give the same numbers."""
        rng_state = capture_rng_state()
        try:
            shard = shard_loader(data_loader)
            encoded = encode_frozen_images(self.clip_model, shard, self.precision, self.device)
            return gather_interleaved(encoded)
        finally:
            restore_rng_state(rng_state)

    def cache_training_views(self, image_loader, n_views):
        """Encode `n_views` augmented views of every training image; returns the loader of indices to train on."""
        print(f"Encoding {n_views} augmented views of {len(image_loader.dataset)} training images (TRAIN.CACHED_VIEWS)")
        self.train_views = encode_augmented_views(self.clip_model, image_loader, n_views, self.precision, self.device)
        self._view_generator = torch.Generator().manual_seed(max(self.cfg.SEED, 0))
        return distribute_train_loader(index_loader(image_loader), self.cfg.SEED)

    def training_batch(self, batch):
        """(ServedImageFeatures, labels) of an index batch: one randomly drawn cached view per image."""
        index = batch["index"]
        view = torch.randint(self.train_views.shape[0], (len(index),), generator=self._view_generator)
        features = self.train_views[view, index].to(self.device)
        return ServedImageFeatures(features, None), batch["label"].to(self.device)
