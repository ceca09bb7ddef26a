"""Steady-state training and evaluation speed of the prompt learners, side by side with a baseline.

    python bench/train_speed.py --trainer CoCoOp --classes 50 --batch-size 1 --device cuda --prec fp16
    python bench/train_speed.py --all --device cuda             # ViT-B/16, 50 and 500 classes, every trainer
    python bench/train_speed.py --all --backbone small --device cpu --steps 3
    python bench/train_speed.py --trainer TextRefiner --versus CoOp    # the plug-in's cost beside its host
    python bench/train_speed.py --trainer TGPT --versus CoOp --classes 1000 --batch-size 8 --isolate

The backbone has random weights of the named architecture (speed does not
depend on weight values); images are random tensors, so data loading is not
timed. For every configuration two implementations run in the same process:
- "fast": this toolkit (EOT cut, batched CoCoOp text passes, evaluation from
  the frozen image-feature cache where the model allows it, DPT/VLP class
  texts encoded once per evaluation);
- "baseline": the straightforward one (full 77-token text sequences, CoCoOp's
  per-image loop, evaluation through the image tower, DPT/VLP texts per batch).
Evaluation runs the trainers' own inference (ZeroshotCLIP.model_inference,
the models' forward with the served features), so ZeroshotCLIP encodes its
class texts once, outside the timed loop.
Peak memory is torch.cuda.max_memory_allocated on GPU; on CPU it is the
process's peak RSS (ru_maxrss), which only grows across configurations unless
`--isolate` runs each one in a fresh process.
"""
import argparse
import contextlib
import multiprocessing
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from clip.layers import attention_heads  # noqa: E402
from clip.model import CLIP  # noqa: E402
from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner  # noqa: E402
from trainers.common import Precision, PromptLearner, frozen_text_features, normalize  # noqa: E402
from trainers.common.feature_server import (  # noqa: E402
    EVAL_INPUT_BOTH,
    EVAL_INPUT_FEATURES,
    EVAL_INPUT_IMAGES,
    ServedImageFeatures,
    forward_arguments,
)
from trainers.common.visual_prompts import DeepVisualPrompts  # noqa: E402
from trainers.coop import CoOpCLIP  # noqa: E402
from trainers.dpt import ClassAwarePromptGenerator, DualPromptCLIP, VPTCLIP  # noqa: E402
from trainers.kgcoop import KgCoOpCLIP  # noqa: E402
from trainers.textrefiner import TextRefinerPlugin  # noqa: E402
from trainers.tgpt import TGPTCLIP, TGPTPromptLearner  # noqa: E402
from trainers.zsclip import ZeroshotCLIP  # noqa: E402

BACKBONES = {
    "vit_b16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                    transformer_width=512, transformer_layers=12),
    "small": dict(embed_dim=256, image_resolution=96, vision_layers=4, vision_width=256, vision_patch_size=16,
                  transformer_width=256, transformer_layers=4),
    "tiny": dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
                 transformer_width=64, transformer_layers=2),
}
TRAINERS = ("ZeroshotCLIP", "CoOp", "KgCoOp", "CoCoOp", "TextRefiner", "VPT", "VLP", "DPT", "TGPT")
CACHED_VIEW_TRAINERS = ("CoOp", "KgCoOp", "CoCoOp")  # TRAIN.CACHED_VIEWS applies to them
PAPER_BATCH = {"CoCoOp": 1, "TGPT": 8}  # the configs' TRAIN_X batch; 32 for the others
TEMPLATE = "a photo of a {}."
VISUAL_PROMPTS, CPN, KEY_TOKENS, AUX_WEIGHT = 10, 10, 10, 0.3  # configs/trainers/DPT/vit_b16.yaml


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
    """The baseline text tower: every prompt runs all 77 positions, as upstream's prompts do.

    The prompt learners hand over sequences already cut after the last EOT, so
    the baseline pads them back with the padding token's embedding (what
    upstream's tokenised prompts carry after EOT) and switches the cut off;
    under the causal mask the features are the same, only the work differs.
    """
    padding_embedding = clip_model.token_embedding.weight[0]

    def encode_full_length(embeddings, eot_indices, truncate=True):
        batch, length, width = embeddings.shape
        padding = padding_embedding.type(embeddings.dtype).expand(batch, clip_model.context_length - length, width)
        return CLIP.encode_text_from_embeddings(
            clip_model, torch.cat([embeddings, padding], dim=1), eot_indices, truncate=False
        )

    clip_model.encode_text_from_embeddings = encode_full_length


class BenchZeroshotCLIP(ZeroshotCLIP):
    """The real ZeroshotCLIP inference without a dataset: the class texts are encoded once, here."""

    eval_image_input = EVAL_INPUT_FEATURES

    def __init__(self, clip_model, precision, classnames):  # TrainerX.__init__ would need a cfg and a dataset
        self.clip_model, self.precision = clip_model, precision
        self.text_features = frozen_text_features(clip_model, TEMPLATE, classnames)

    def to(self, device):
        """Already on CLIP's device (as a trainer, it is no module)."""
        return self


def build_text_refiner(clip_model):
    """TextRefiner with the reference defaults (configs/trainers/TextRefiner), in CLIP's dtype."""
    return TextRefinerPlugin(clip_model.visual.output_dim, clip_model.logit_scale.exp().item(), dtype=clip_model.dtype)


def build_visual_prompt_model(trainer, clip_model, classnames):
    """VPT / VLP / DPT as configs/trainers/*/vit_b16.yaml; DPT's CAVPT in the last block (BOTTOMLIMIT = blocks)."""
    n_blocks = len(clip_model.visual.transformer.resblocks)
    width = clip_model.visual.conv1.out_channels
    class_aware = None
    if trainer == "DPT":
        text_dim = clip_model.text_projection.shape[1]
        class_aware = ClassAwarePromptGenerator(1, text_dim, width, len(classnames), KEY_TOKENS).to(clip_model.dtype)
    prompts = DeepVisualPrompts(n_blocks - (class_aware is not None), VISUAL_PROMPTS, width, clip_model.dtype)
    zero_shot_text = frozen_text_features(clip_model, TEMPLATE, classnames)
    if trainer == "VPT":
        return VPTCLIP(clip_model, prompts, zero_shot_text)
    learner = PromptLearner(classnames, clip_model, n_ctx=16)
    return DualPromptCLIP(clip_model, learner, prompts, zero_shot_text, class_aware, cpn=CPN, aux_weight=AUX_WEIGHT)


def build_model(trainer, clip_model, classnames, baseline, precision):
    if baseline:
        full_length_text(clip_model)
    if trainer == "ZeroshotCLIP":
        return BenchZeroshotCLIP(clip_model, precision, classnames)
    if trainer in ("CoOp", "TextRefiner"):  # TextRefiner on CoOp's bench host, so the ratio is the plug-in's cost
        learner = PromptLearner(classnames, clip_model, n_ctx=16)
        return CoOpCLIP(clip_model, learner, text_plugin=build_text_refiner(clip_model) if trainer == "TextRefiner" else None)
    if trainer in ("VPT", "VLP", "DPT"):
        return build_visual_prompt_model(trainer, clip_model, classnames)
    if trainer == "TGPT":
        learner = TGPTPromptLearner(clip_model, classnames, [TEMPLATE])
        return TGPTCLIP(clip_model, learner)
    if trainer == "KgCoOp":
        learner = PromptLearner(classnames, clip_model, n_ctx=4, ctx_init="a photo of a")
        return KgCoOpCLIP(clip_model, learner, 8.0, frozen_text_features(clip_model, TEMPLATE, classnames))
    learner = ConditionalPromptLearner(classnames, clip_model, n_ctx=4, ctx_init="a photo of a")
    return (PerImageCoCoOpCLIP if baseline else CoCoOpCLIP)(clip_model, learner)


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


def served_input(model, images, features):
    """What a trainer's evaluation hands the model: the images, or the cached frozen features
    (with the images when the model still needs them; trainers.common.feature_server)."""
    mode = model.eval_image_input
    if features is None or mode == EVAL_INPUT_IMAGES:
        return images
    return ServedImageFeatures(features, images if mode == EVAL_INPUT_BOTH else None)


def infer(model, input):
    """One evaluation forward as the trainer runs it (ZeroshotCLIP: its own model_inference)."""
    if isinstance(model, ZeroshotCLIP):
        return model.model_inference(input)
    image, served = forward_arguments(input)
    return model(image, **served)


def evaluation_scope(model, baseline):
    """DPT/VLP encode the class texts once per evaluation (the trainer's test()); the baseline per batch."""
    if baseline or not isinstance(model, DualPromptCLIP):
        return contextlib.nullcontext()
    return model.text_features_fixed()


@contextlib.contextmanager
def counting_text_sequences(clip_model):
    """Yields a list that receives (sequences, positions) of every pass through the text transformer."""
    shapes = []
    handle = clip_model.transformer.register_forward_pre_hook(lambda _, inputs: shapes.append(inputs[0].shape[:2]))
    try:
        yield shapes
    finally:
        handle.remove()


def trainer_precision(trainer, prec):
    """TGP-T trains fp32 parameters (its PREC is fp32 / amp / bf16): fp16 becomes fp32 for it."""
    return "fp32" if trainer == "TGPT" and prec == "fp16" else prec


class BenchSetup:
    """One implementation of one trainer, ready to run: its model and its training and evaluation steps."""

    def __init__(self, trainer, args, n_classes, batch_size, baseline):
        device, self.prec = args.device, trainer_precision(trainer, args.prec)
        self.trainer, self.baseline, self.batch_size = trainer, baseline, batch_size
        self.cached_views = getattr(args, "cached_views", False) and not baseline
        self.precision = Precision(self.prec, device)
        torch.manual_seed(0)
        self.clip_model = build_clip(args.backbone, self.precision)
        classnames = [f"class number {i}" for i in range(n_classes)]
        self.model = build_model(trainer, self.clip_model, classnames, baseline, self.precision).to(device)
        resolution = self.clip_model.visual.input_resolution
        self.images = torch.randn(batch_size, 3, resolution, resolution, device=device)
        self.labels = torch.randint(n_classes, (batch_size,), device=device)
        self.extra = (torch.randint(1, 49000, (batch_size, 64), device=device),) if trainer == "TGPT" else ()
        with torch.no_grad(), self.precision.autocast():
            self.features = self.clip_model.visual(self.images.type(self.clip_model.dtype))
        self.optimizer = None

    @property
    def trains(self):
        return self.trainer != "ZeroshotCLIP"

    def train_mode(self):
        """Prompt modules in training mode, CLIP frozen in eval mode (as the trainers set them)."""
        self.model.train()
        self.clip_model.eval()
        self.optimizer = torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad], lr=1e-3)

    def eval_mode(self):
        if self.trains:
            self.model.eval()

    def train_step(self):
        with self.precision.autocast():
            logits, terms = self.model(self.images, self.labels, *self.extra, **self.served_training_features())
            loss = F.cross_entropy(logits.float(), self.labels) + sum(t.float() for t in terms.values())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def served_training_features(self):
        """TRAIN.CACHED_VIEWS: a step reads cached frozen features of its views instead of running the image tower."""
        return {"frozen_features": self.features} if self.cached_views else {}

    @torch.no_grad()
    def eval_step(self):
        with self.precision.autocast():
            features = None if self.baseline else self.features
            return infer(self.model, served_input(self.model, self.images, features))

    def evaluation_scope(self):
        return evaluation_scope(self.model, self.baseline)


def measure(trainer, args, n_classes, batch_size, baseline):
    """{train_ms_per_image, eval_ms_per_image, peak_mb, text_sequences_per_step, prec} of one implementation."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    setup = BenchSetup(trainer, args, n_classes, batch_size, baseline)
    result = {"prec": setup.prec}
    setup.eval_mode()
    with setup.evaluation_scope():
        result["eval_ms_per_image"] = 1e3 * timed(setup.eval_step, device, args.steps, args.warmup) / batch_size
    if setup.trains:
        setup.train_mode()
        result["train_ms_per_image"] = 1e3 * timed(setup.train_step, device, args.steps, args.warmup) / batch_size
        with counting_text_sequences(setup.clip_model) as shapes:
            setup.train_step()
        result["text_sequences_per_step"] = sum(n for n, _ in shapes)
        result["text_positions"] = max(length for _, length in shapes)
    result["peak_mb"] = peak_memory_mb(device)
    return result


def measure_isolated(*args):
    """`measure` in a fresh process, so that the CPU peak RSS belongs to this configuration alone."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


def row(trainer, args, n_classes, batch_size):
    run = measure_isolated if args.isolate else measure
    fast = run(trainer, args, n_classes, batch_size, False)
    base = run(trainer, args, n_classes, batch_size, True)
    cells = [trainer, str(n_classes), str(batch_size)]
    for key in ("train_ms_per_image", "eval_ms_per_image"):
        if key in fast:
            cells += [f"{base[key]:.3f}", f"{fast[key]:.3f}", f"{1e3 / fast[key]:.1f}", f"{base[key] / fast[key]:.1f}x"]
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


VERSUS_HEADER = ["trainer", "PREC", "classes", "batch", "train ms/img", "eval ms/img", "peak MB", "text sequences/step"]


def print_table(rows, header=HEADER):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |", flush=True)


def versus(args, batch_size):
    """The fast implementations of --trainer and --versus at one batch, side by side, with their ratios."""
    run = measure_isolated if args.isolate else measure
    results = {t: run(t, args, args.classes, batch_size, False) for t in (args.trainer, args.versus)}
    print_table(
        (
            [t, r["prec"], str(args.classes), str(batch_size), f"{r['train_ms_per_image']:.3f}",
             f"{r['eval_ms_per_image']:.3f}", f"{r['peak_mb']:.0f}", str(r["text_sequences_per_step"])]
            for t, r in results.items()
        ),
        VERSUS_HEADER,
    )
    mine, theirs = results[args.trainer], results[args.versus]
    for key in ("train_ms_per_image", "eval_ms_per_image", "peak_mb"):
        print(f"# {key} {args.trainer} / {args.versus}: {mine[key] / theirs[key]:.2f}x")


def describe_machine(device):
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    return f"{device.type} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", choices=TRAINERS, default="CoOp")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="vit_b16")
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the configs' (CoCoOp 1, TGPT 8, others 32)")
    parser.add_argument("--prec", default=None, help="fp16 / fp32 / amp / bf16; default fp16 on cuda, fp32 on cpu")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="every trainer at 50 and 500 classes")
    parser.add_argument("--versus", choices=TRAINERS, default=None, help="compare --trainer with this one (fast only)")
    parser.add_argument("--isolate", action="store_true", help="each measurement in a fresh process (CPU peak RSS)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_cached_views_option(parser)
    return parser


def add_cached_views_option(parser):
    parser.add_argument(
        "--cached-views", action="store_true",
        help=f"the fast implementation trains on cached view features (TRAIN.CACHED_VIEWS; {', '.join(CACHED_VIEW_TRAINERS)})",
    )


def selected_trainers(args):
    """--all: every trainer (those TRAIN.CACHED_VIEWS applies to, with --cached-views); else --trainer, checked."""
    if args.cached_views and not args.all and args.trainer not in CACHED_VIEW_TRAINERS:
        raise SystemExit(f"--cached-views applies to {', '.join(CACHED_VIEW_TRAINERS)}, not {args.trainer}")
    if not args.all:
        return (args.trainer,)
    return CACHED_VIEW_TRAINERS if args.cached_views else TRAINERS


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.device = torch.device(args.device)
    args.prec = args.prec or ("fp16" if args.device.type == "cuda" else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {describe_machine(args.device)}; backbone {args.backbone} (random weights), PREC {args.prec}")
    if args.versus:
        versus(args, args.batch_size or PAPER_BATCH.get(args.trainer, 32))
        return
    classes = (50, 500) if args.all else (args.classes,)
    configs = [(t, c) for c in classes for t in selected_trainers(args)]
    print_table(row(t, args, c, args.batch_size or PAPER_BATCH.get(t, 32)) for t, c in configs)


if __name__ == "__main__":
    main()
