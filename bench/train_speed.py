"""Steady-state training and evaluation speed of the prompt learners, side by side with a baseline.

    python bench/train_speed.py --trainer CoCoOp --classes 50 --batch-size 1 --device cuda --prec fp16
    python bench/train_speed.py --all --device cuda             # ViT-B/16, 50 and 500 classes, every trainer
    python bench/train_speed.py --all --backbone small --device cpu --steps 3

The backbone has random weights of the named architecture (speed does not
depend on weight values); images are random tensors, so data loading is not
timed. For every configuration two implementations run in the same process:
- "fast": this toolkit (EOT cut, batched CoCoOp text passes, evaluation from
  the frozen image-feature cache);
- "baseline": the straightforward one (full 77-token text sequences, CoCoOp's
  per-image loop, evaluation through the image tower).
Peak memory is torch.cuda.max_memory_allocated on GPU; on CPU it is the
process's peak RSS (ru_maxrss), which only grows across configurations.
"""
import argparse
import functools
import os
import platform
import resource
import sys
import time

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from clip.layers import attention_heads  # noqa: E402
from clip.model import CLIP  # noqa: E402
from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner  # noqa: E402
from trainers.common import Precision, PromptLearner, frozen_text_features, normalize  # noqa: E402
from trainers.common.frozen_eval import ServedImageFeatures  # noqa: E402
from trainers.coop import CoOpCLIP  # noqa: E402
from trainers.kgcoop import KgCoOpCLIP  # noqa: E402

BACKBONES = {
    "vit_b16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                    transformer_width=512, transformer_layers=12),
    "small": dict(embed_dim=256, image_resolution=96, vision_layers=4, vision_width=256, vision_patch_size=16,
                  transformer_width=256, transformer_layers=4),
    "tiny": dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
                 transformer_width=64, transformer_layers=2),
}
TRAINERS = ("ZeroshotCLIP", "CoOp", "KgCoOp", "CoCoOp")
PAPER_BATCH = {"ZeroshotCLIP": 32, "CoOp": 32, "KgCoOp": 32, "CoCoOp": 1}


def build_clip(backbone, precision):
    dims = BACKBONES[backbone]
    model = CLIP(
        context_length=77, vocab_size=49408, transformer_heads=attention_heads(dims["transformer_width"]), **dims
    )
    if precision.mode == "fp16":
        from clip.model import convert_weights

        convert_weights(model)
    return model.requires_grad_(False).eval().to(precision.device)


class PerImageCoCoOpCLIP(CoCoOpCLIP):
    """Upstream CoCoOp: one text pass over n_cls prompts per image."""

    def forward(self, image, labels=None):
        image_features, _ = self.encode_image(image, labels is not None)
        rows = []
        for feature in image_features:
            prompts = self.prompt_learner(feature.unsqueeze(0))[0]
            text = normalize(self.clip_model.encode_text_from_embeddings(prompts, self.prompt_learner.eot_indices))
            rows.append(self.logits(feature.unsqueeze(0), text))
        logits = torch.cat(rows)
        return (logits, {}) if labels is not None else logits


def full_length_text(clip_model):
    """The baseline text tower: every prompt runs all 77 positions (no EOT cut)."""
    clip_model.encode_text_from_embeddings = functools.partial(
        CLIP.encode_text_from_embeddings, clip_model, truncate=False
    )


def build_model(trainer, clip_model, classnames, baseline):
    if baseline:
        full_length_text(clip_model)
    if trainer in ("CoOp", "ZeroshotCLIP"):
        return CoOpCLIP(clip_model, PromptLearner(classnames, clip_model, n_ctx=16))
    if trainer == "KgCoOp":
        model = KgCoOpCLIP(clip_model, PromptLearner(classnames, clip_model, n_ctx=4, ctx_init="a photo of a"), 8.0)
        model.anchor_features = frozen_text_features(clip_model, "a photo of a {}.", classnames)
        return model
    learner = ConditionalPromptLearner(classnames, clip_model, n_ctx=4, ctx_init="a photo of a")
    return (PerImageCoCoOpCLIP if baseline else CoCoOpCLIP)(clip_model, learner, text_chunk=4096)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, steps, warmup):
    """Seconds per call of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(trainer, backbone, n_classes, batch_size, prec, device, steps, warmup, baseline):
    """{train_ms_per_image, eval_ms_per_image, peak_mb} of one implementation."""
    precision = Precision(prec, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    clip_model = build_clip(backbone, precision)
    classnames = [f"class number {i}" for i in range(n_classes)]
    model = build_model(trainer, clip_model, classnames, baseline).to(device)
    resolution = clip_model.visual.input_resolution
    images = torch.randn(batch_size, 3, resolution, resolution, device=device)
    labels = torch.randint(n_classes, (batch_size,), device=device)
    optimizer = torch.optim.SGD(model.prompt_learner.parameters(), lr=1e-3)

    def train_step():
        with precision.autocast():
            logits, terms = model(images, labels)
            loss = F.cross_entropy(logits.float(), labels) + sum(t.float() for t in terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def eval_step():
        with precision.autocast():
            if baseline:
                return model(images)
            with model.serving_frozen_image_features(features):
                return model(None)

    with torch.no_grad(), precision.autocast():
        features = clip_model.visual(images.type(clip_model.dtype))
    result = {"eval_ms_per_image": 1e3 * timed(eval_step, device, steps, warmup) / batch_size}
    if trainer != "ZeroshotCLIP":
        result["train_ms_per_image"] = 1e3 * timed(train_step, device, steps, warmup) / batch_size
    result["peak_mb"] = peak_memory_mb(device)
    return result


def row(trainer, args, n_classes, batch_size):
    fast = measure(trainer, args.backbone, n_classes, batch_size, args.prec, args.device, args.steps, args.warmup, False)
    base = measure(trainer, args.backbone, n_classes, batch_size, args.prec, args.device, args.steps, args.warmup, True)
    cells = [trainer, str(n_classes), str(batch_size)]
    for key in ("train_ms_per_image", "eval_ms_per_image"):
        if key in fast:
            cells += [f"{base[key]:.2f}", f"{fast[key]:.2f}", f"{1e3 / fast[key]:.1f}", f"{base[key] / fast[key]:.1f}x"]
        else:
            cells += ["-"] * 4
    cells += [f"{base['peak_mb']:.0f}", f"{fast['peak_mb']:.0f}"]
    return cells


HEADER = [
    "trainer", "classes", "batch",
    "train ms/img base", "train ms/img fast", "train img/s fast", "train speed-up",
    "eval ms/img base", "eval ms/img fast", "eval img/s fast", "eval speed-up",
    "peak MB base", "peak MB fast",
]


def print_table(rows):
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for cells in rows:
        print("| " + " | ".join(cells) + " |", flush=True)


def describe_machine(device):
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    return f"{device.type} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", choices=TRAINERS, default="CoOp")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="vit_b16")
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the paper's (CoCoOp 1, others 32)")
    parser.add_argument("--prec", default=None, help="fp16 / fp32 / amp / bf16; default fp16 on cuda, fp32 on cpu")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="every trainer at 50 and 500 classes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.device = torch.device(args.device)
    args.prec = args.prec or ("fp16" if args.device.type == "cuda" else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {describe_machine(args.device)}; backbone {args.backbone} (random weights), PREC {args.prec}")
    configs = [(t, c) for c in (50, 500) for t in TRAINERS] if args.all else [(args.trainer, args.classes)]
    print_table(row(t, args, c, args.batch_size or PAPER_BATCH[t]) for t, c in configs)


if __name__ == "__main__":
    main()
