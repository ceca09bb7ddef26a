"""Cost of the per-epoch resumable save (#21) for every trainer at ViT-B/16 scale.

    python bench/save_cost.py                      # 100 and 1000 classes, every trainer that learns
    python bench/save_cost.py --classes 1000 --trainers CoOp TGPT --repeats 5

What a run saves each epoch is what this times, through the engine's own path
(TrainerBase.save_resumable_state: state dicts, optimizer state, RNG state,
atomic write, pointer, pruning): the parts each trainer registers
(`trainable_modules`, plus TextRefiner's plug-in) with their optimizer state
after one step (SGD momentum; AdamW for TGP-T, as the configs). The backbone
has random weights of the real architecture (built by bench/train_speed.py);
the sizes do not depend on the values.
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.train_speed import TRAINERS, build_clip, build_model, describe_machine  # noqa: E402
from dassl.engine import TRAINER_REGISTRY  # noqa: E402
from dassl.engine.trainer_base import TrainerBase  # noqa: E402
from train import PLUGIN_FOLDERS, import_plugins  # noqa: E402
from trainers.common import Precision  # noqa: E402

LEARNING_TRAINERS = tuple(t for t in TRAINERS if t != "ZeroshotCLIP")


def learned_parts(trainer, model):
    """Name -> module, as the trainer registers them (its trainable_modules, plus a text plug-in)."""
    trainer_class = TRAINER_REGISTRY.get(trainer)
    parts = trainer_class.trainable_modules(trainer_class.__new__(trainer_class), model)
    plugin = getattr(model, "text_plugin", None)
    if plugin is not None:
        parts[plugin.model_name] = plugin
    return parts


def stepped_optimizer(trainer, module):
    """The config's optimizer with its state filled by one step, as after the first epoch."""
    params = [p for p in module.parameters()]
    for param in params:
        param.requires_grad_(True)
        param.grad = torch.zeros_like(param)
    if trainer == "TGPT":
        optimizer = torch.optim.AdamW(params, lr=1e-3)
    else:
        optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    optimizer.step()
    return optimizer


def measure(trainer, clip_model, n_classes, precision, repeats):
    """(MB written, median seconds) of one resumable save."""
    model = build_model(trainer, clip_model, [f"class number {i}" for i in range(n_classes)], False, precision)
    engine = TrainerBase()
    for name, module in learned_parts(trainer, model).items():
        engine.register_model(name, module, stepped_optimizer(trainer, module))
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        for epoch in range(repeats):
            with contextlib.redirect_stdout(io.StringIO()):  # its "Checkpoint saved to" lines
                started = time.perf_counter()
                engine.save_resumable_state(epoch, folder, requested=lambda number: False)
                seconds.append(time.perf_counter() - started)
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files
                   if f.endswith(f"-{repeats}"))
    return size / 2**20, statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainers", nargs="+", choices=LEARNING_TRAINERS, default=list(LEARNING_TRAINERS))
    parser.add_argument("--classes", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--prec", default="fp32", help="the dtype of CLIP's (and so the prompts') weights")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import_plugins(PLUGIN_FOLDERS, [])
    device = torch.device("cpu")
    precision = Precision(args.prec, device)
    print(f"# {describe_machine(device)}; ViT-B/16 (random weights), PREC {args.prec}; median of {args.repeats} saves")
    torch.manual_seed(0)
    clip_model = build_clip("vit_b16", precision)
    print("| trainer | classes | saved per epoch (MB) | save time (ms) |")
    print("|---|---:|---:|---:|")
    for n_classes in args.classes:
        for trainer in args.trainers:
            size, seconds = measure(trainer, clip_model, n_classes, precision, args.repeats)
            print(f"| {trainer} | {n_classes} | {size:.1f} | {seconds * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
