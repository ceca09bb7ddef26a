"""A clean install: nothing shadows other packages, and outside code plugs in without edits.

These tests run in subprocesses from a folder outside the repository, the way a
researcher's own scripts see the installed toolkit (`pip install -e .`).
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_python(code, cwd, *args):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *args] if not code else [sys.executable, "-c", code, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_installed_packages_resolve_into_the_repository_and_nothing_else_does(tmp_path):
    code = textwrap.dedent(
        """
        import importlib.util, json
        print(json.dumps({name: getattr(importlib.util.find_spec(name), "origin", None)
                          for name in ("clip", "dassl", "trainers", "datasets")}))
        """
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    origins = json.loads(result.stdout)
    for name in ("clip", "dassl"):
        assert origins[name] is not None, f"`{name}` is not importable: run `pip install -e .` in {REPO} first"
        assert Path(origins[name]).resolve().is_relative_to(REPO), origins[name]
    for name in ("trainers", "datasets"):
        origin = origins[name]
        assert origin is None or not Path(origin).resolve().is_relative_to(REPO), (
            f"`import {name}` from outside the repository resolves into it ({origin}): it would shadow other packages"
        )


OUTSIDE_TRAINER = '''
"""A trainer written in a researcher's own folder, against the Dassl API only."""
import torch.nn.functional as F
from torch import nn

from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer


@TRAINER_REGISTRY.register()
class OutsideLinearProbe(TrainerX):
    def build_model(self):
        height, width = self.cfg.INPUT.SIZE
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(3 * height * width, self.num_classes)).to(self.device)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("probe", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
'''


def write_image_folder(root, classes, per_class=4):
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(0)
    for index, name in enumerate(classes):
        folder = root / "my_set" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((8, 8, 3), 40 * index, dtype=np.int64) + rng.randint(0, 30, size=(8, 8, 3))
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")


def test_a_trainer_outside_the_repository_runs_through_train_py_import(tmp_path):
    (tmp_path / "my_trainer.py").write_text(OUTSIDE_TRAINER)
    write_image_folder(tmp_path / "data", ["cat", "dog", "fish"], per_class=10)
    (tmp_path / "probe.yaml").write_text(
        textwrap.dedent(
            """
            INPUT:
              SIZE: (8, 8)
              TRANSFORMS: ["normalize"]
            DATALOADER:
              NUM_WORKERS: 0
              TRAIN_X:
                BATCH_SIZE: 4
            OPTIM:
              NAME: sgd
              LR: 0.01
              MAX_EPOCH: 2
              LR_SCHEDULER: cosine
            """
        )
    )
    out = tmp_path / "out"
    result = run_python(
        None, tmp_path, str(REPO / "train.py"), "--root", str(tmp_path / "data"), "--seed", "1",
        "--trainer", "OutsideLinearProbe", "--import", str(tmp_path / "my_trainer.py"),
        "--dataset-config-file", str(REPO / "configs/datasets/image_folder.yaml"),
        "--config-file", str(tmp_path / "probe.yaml"), "--output-dir", str(out), "DATASET.FOLDER", "my_set",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    log = (out / "log.txt").read_text()
    assert "Finish training" in log and "* accuracy:" in log
    assert (out / "probe" / "model.pth.tar-2").is_file()
    assert (out / "done.json").is_file()
