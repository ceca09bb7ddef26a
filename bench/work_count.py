"""Work and memory of one training step and one evaluation step, counted rather than timed.

    python bench/work_count.py --all                        # ViT-B/16, fp32, every trainer at 50 classes
    python bench/work_count.py --trainer CoOp --classes 500 --no-baseline
    python bench/work_count.py --all --cached-views         # fast = training on cached views (CoOp, KgCoOp, CoCoOp)
    python bench/work_count.py --all --backbone small       # quick

Timings need the GPU they are about; these counts do not. For the same
models and steps as bench/train_speed.py (fast implementation and baseline)
it prints
- GFLOP per image of a training step and of an evaluation step, counted by
  torch.utils.flop_counter on the real code path (matrix products and
  attention; elementwise work is not counted), and their baseline / fast
  ratio: the share of work the exact speed-ups remove;
- the peak of live tensor bytes during a training step (parameters, inputs,
  activations kept for backward, gradients, temporaries), tracked at the
  dispatcher. It is what torch.cuda.max_memory_allocated would report for
  the same tensors, without the allocator's rounding and library
  workspaces. Counted in fp32 (CPUs compute fp16 slowly), it bounds the
  fp16 configs from above: every tensor there is the same size or half.
"""
import argparse
import os
import sys
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_speed import (  # noqa: E402
    BACKBONES,
    PAPER_BATCH,
    TRAINERS,
    BenchSetup,
    add_cached_views_option,
    describe_machine,
    print_table,
    selected_trainers,
)


class PeakTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages alive at once: `start` (tensors made before) plus every
    storage an operator creates inside, released when Python frees it."""

    def __init__(self, start_tensors):
        super().__init__()
        self._before = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in start_tensors}
        self._live = {}
        self.live_bytes = self.peak = self.start = sum(self._before.values())

    def _track(self, tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self._before or key in self._live or storage.nbytes() == 0:
            return
        self._live[key] = storage.nbytes()
        self.live_bytes += storage.nbytes()
        self.peak = max(self.peak, self.live_bytes)
        weakref.finalize(storage, self._release, key)

    def _release(self, key):
        self.live_bytes -= self._live.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(output):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return output


def count(trainer, args, n_classes, batch_size, baseline):
    """{train_gflop, eval_gflop (per image), peak_gib (training step)} of one implementation."""
    setup = BenchSetup(trainer, args, n_classes, batch_size, baseline)
    result = {}
    setup.eval_mode()
    with setup.evaluation_scope():
        setup.eval_step()  # what is encoded once per evaluation is not the per-image work
        with FlopCounterMode(display=False) as flops:
            setup.eval_step()
    result["eval_gflop"] = flops.get_total_flops() / batch_size / 1e9
    if setup.trains:
        setup.train_mode()
        start = [*setup.model.parameters(), *setup.model.buffers(), setup.images, setup.labels, *setup.extra]
        with FlopCounterMode(display=False) as flops, PeakTensorBytes(start) as memory:
            setup.train_step()
        result["train_gflop"] = flops.get_total_flops() / batch_size / 1e9
        result["peak_gib"] = memory.peak / 2**30
    return result


HEADER = [
    "trainer", "classes", "batch",
    "train GFLOP/img base", "train GFLOP/img fast", "train work ratio",
    "eval GFLOP/img base", "eval GFLOP/img fast", "eval work ratio",
    "train peak GiB base", "train peak GiB fast",
]


def format_ratio(base, fast):
    """Baseline / fast; served from the caches, evaluation is one product per image and the ratio is huge."""
    return ">1000x" if base > 1000 * fast else f"{base / fast:.1f}x"


def row(trainer, args, n_classes, batch_size):
    fast = count(trainer, args, n_classes, batch_size, False)
    base = count(trainer, args, n_classes, batch_size, True) if args.baseline else {}
    cells = [trainer, str(n_classes), str(batch_size)]
    for key in ("train_gflop", "eval_gflop"):
        if key not in fast:
            cells += ["-"] * 3
            continue
        ratio = format_ratio(base[key], fast[key]) if key in base else "-"
        cells += [f"{base[key]:.3g}" if key in base else "-", f"{fast[key]:.3g}", ratio]
    for result in (base, fast):
        cells.append(f"{result['peak_gib']:.2f}" if "peak_gib" in result else "-")
    return cells


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", choices=TRAINERS, default="CoOp")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="vit_b16")
    parser.add_argument("--classes", type=int, nargs="+", default=[50])
    parser.add_argument("--batch-size", type=int, default=None, help="default: the configs' (CoCoOp 1, TGPT 8, others 32)")
    parser.add_argument("--prec", default="fp32", help="fp32 (default; see the docstring) / fp16 / amp / bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--all", action="store_true", help="every trainer")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="count the fast implementation only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_cached_views_option(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {describe_machine(args.device)}; backbone {args.backbone} (random weights), PREC {args.prec}")
    configs = [(t, c) for c in args.classes for t in selected_trainers(args)]
    print_table((row(t, args, c, args.batch_size or PAPER_BATCH.get(t, 32)) for t, c in configs), HEADER)


if __name__ == "__main__":
    main()
