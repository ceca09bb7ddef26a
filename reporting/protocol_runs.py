"""The runs of the few-shot and transfer protocols, found in an output tree.

The layout is the CoOp repositories' (and scripts/protocol.sh's):
    training (few-shot, and the xd/dg source):  OUTPUT/<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>
    evaluation on a target (xd, dg):            OUTPUT/evaluation/<Trainer>/<cfg>_<K>shots[/<variant>]/<target>/seed<S>
(`<variant>` is CoOp main.sh's nctx<N>_csc<C>_ctp<P> folder; it becomes part of the config.)
"""
import os
import re
from dataclasses import dataclass

from reporting.runs import read_run_value

TRAIN_DIR = re.compile(r"([^/]+)/([^/]+)/(.+?)_(\d+)shots(?:/([^/]+))?/seed(\d+)")
EVAL_DIR = re.compile(r"evaluation/([^/]+)/(.+?)_(\d+)shots(?:/([^/]+))?/([^/]+)/seed(\d+)")
NOT_DATASETS = ("base2new", "evaluation")


@dataclass(frozen=True)
class ProtocolRun:
    """One seed folder: a training run on `dataset` (kind "train") or an
    evaluation of a source model on `dataset` (kind "eval")."""

    kind: str
    dataset: str
    trainer: str
    config: str
    shots: int
    seed: int
    path: str
    value: float = None
    problem: str = None
    reference: bool = False

    @property
    def key(self):
        """What a sweep selects runs by: (trainer, config, dataset, shots, seed)."""
        return (self.trainer, self.config, self.dataset, self.shots, self.seed)


def seed_folders(root):
    """Relative paths (with /) of every seed<S> folder under ROOT."""
    found = []
    for parent, subdirs, _ in os.walk(root):
        subdirs.sort()
        for name in subdirs:
            if re.fullmatch(r"seed\d+", name):
                found.append(os.path.relpath(os.path.join(parent, name), root).replace(os.sep, "/"))
        subdirs[:] = [d for d in subdirs if not re.fullmatch(r"seed\d+", d)]
    return found


def config_name(config, variant):
    return f"{config}/{variant}" if variant else config


def collect_protocol_runs(output_root, keyword="accuracy"):
    """Every training and evaluation seed folder of the layout above."""
    runs = []
    for relative in seed_folders(output_root):
        path = os.path.join(output_root, relative)
        train = TRAIN_DIR.fullmatch(relative)
        evaluation = EVAL_DIR.fullmatch(relative)
        if evaluation:
            trainer, config, shots, variant, dataset, seed = evaluation.groups()
            kind = "eval"
        elif train and train.group(1) not in NOT_DATASETS:
            dataset, trainer, config, shots, variant, seed = train.groups()
            kind = "train"
        else:
            continue
        read = read_run_value(path, kind == "train", keyword)
        runs.append(ProtocolRun(kind, dataset, trainer, config_name(config, variant), int(shots), int(seed), path,
                                read.value, read.problem, read.reference))
    return runs
