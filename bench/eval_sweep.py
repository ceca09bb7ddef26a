"""Evaluation of a seed sweep with and without the frozen image-feature cache.

    python bench/eval_sweep.py --device cuda --images 2000 --seeds 3
    python bench/eval_sweep.py --backbone small --device cpu --images 256

Every (trainer, seed) run evaluates the same test images. Without the cache
each run encodes them through the image tower; with it the first run encodes
and writes them (trainers.common.feature_cache.FeatureCache, a temporary
folder) and every run reads the file and evaluates from the features. Images
are random tensors, so decoding JPEGs, which the cache also saves, is not
counted: on real datasets the ratio is larger.
"""
import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_speed import BACKBONES, build_clip, build_model, describe_machine, infer, served_input, synchronize  # noqa: E402
from trainers.common import Precision  # noqa: E402
from trainers.common.feature_cache import FeatureCache  # noqa: E402

SWEEP_TRAINERS = ("ZeroshotCLIP", "CoOp", "KgCoOp", "CoCoOp")


@torch.no_grad()
def evaluate(model, batches, precision, features=None):
    with precision.autocast():
        for index, images in enumerate(batches):
            served = None if features is None else features[index * len(images):(index + 1) * len(images)]
            infer(model, served_input(model, images, served))


@torch.no_grad()
def sweep_seconds(args, cached):
    precision = Precision(args.prec, args.device)
    clip_model = build_clip(args.backbone, precision)
    classnames = [f"class number {i}" for i in range(args.classes)]
    models = [build_model(t, clip_model, classnames, False, precision).to(args.device) for t in SWEEP_TRAINERS]
    resolution = clip_model.visual.input_resolution
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.randn(args.batch_size, 3, resolution, resolution, generator=generator).to(args.device)
        for _ in range(args.images // args.batch_size)
    ]
    folder = tempfile.TemporaryDirectory(prefix="eval_sweep_")
    cache, key = FeatureCache(folder.name), {"n_images": len(batches) * args.batch_size}
    synchronize(args.device)
    start = time.perf_counter()
    for _ in range(args.seeds):
        for model in models:
            features = None
            if cached:
                features = cache.load(key)
                if features is None:
                    with precision.autocast():
                        encoded = torch.cat([clip_model.visual(images.type(clip_model.dtype)) for images in batches])
                    cache.save(key, encoded)
                    features = encoded
                features = features.to(args.device)
            evaluate(model, batches, precision, features)
    synchronize(args.device)
    seconds = time.perf_counter() - start
    folder.cleanup()
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="vit_b16")
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--prec", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    args.device = torch.device(args.device)
    args.prec = args.prec or ("fp16" if args.device.type == "cuda" else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runs = args.seeds * len(SWEEP_TRAINERS)
    print(f"# {describe_machine(args.device)}; backbone {args.backbone}, PREC {args.prec}")
    print(f"# sweep: {len(SWEEP_TRAINERS)} trainers x {args.seeds} seeds = {runs} evaluations of {args.images} images")
    plain, cached = sweep_seconds(args, cached=False), sweep_seconds(args, cached=True)
    print("| sweep evaluation | seconds | ms/image/run | speed-up |")
    print("|---|---|---|---|")
    for name, seconds in (("image tower every run", plain), ("feature cache", cached)):
        print(f"| {name} | {seconds:.2f} | {1e3 * seconds / (runs * args.images):.3f} | {plain / seconds:.1f}x |")


if __name__ == "__main__":
    main()
