"""The engine's iteration mode (OPTIM.MAX_ITER > 0) on the toy dataset and toy trainer, through train.main."""
import math
import re

import pytest
import torch

import dassl.engine.trainer_base as trainer_base
from dassl.config import get_cfg_default
from dassl.optim import build_optimizer
from dassl.utils import is_run_done
from tests.helpers.toy_dataset import ToyTrainer
from tests.helpers.trainer_runs import TOY_DATA_YAML, killed_after, write_toy_run_folder
from tests.helpers.trainer_runs import run_toy_training as run

TRAINER_YAML = TOY_DATA_YAML + """OPTIM:
  NAME: adamw
  LR: 0.01
  LR_SCHEDULER: cosine
  WARMUP_TYPE: linear
  MAX_ITER: 10
  WARMUP_ITER: 3
TRAIN:
  PRINT_FREQ: 2
  CHECKPOINT_FREQ: 5
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_run_folder(tmp_path_factory.mktemp("toy_iter"), TRAINER_YAML)


def spec_lr(k, base_lr, max_iter, warmup_iter):
    """Spec 2.4: eta * k / W during the linear warm-up, then eta * (1 + cos(pi (k - W) / MAX_ITER)) / 2."""
    if k < warmup_iter:
        return base_lr * k / warmup_iter
    return base_lr * 0.5 * (1 + math.cos(math.pi * (k - warmup_iter) / max_iter))


def record_step_lrs(monkeypatch):
    """The learning rate each optimiser step of ToyTrainer uses."""
    lrs = []
    step = ToyTrainer.forward_backward

    def recording(self, batch):
        lrs.append(self.optim.param_groups[0]["lr"])
        return step(self, batch)

    monkeypatch.setattr(ToyTrainer, "forward_backward", recording)
    return lrs


@pytest.fixture(scope="module")
def reference_run(toy):
    out = toy / "reference"
    return out, run(toy, out)


def test_lr_of_every_step_follows_warmup_and_cosine(toy, monkeypatch):
    lrs = record_step_lrs(monkeypatch)
    run(toy, toy / "lr", "OPTIM.MAX_ITER", "300", "OPTIM.WARMUP_ITER", "100", "OPTIM.LR", "0.002",
        "TRAIN.PRINT_FREQ", "100", "TRAIN.CHECKPOINT_FREQ", "0", "TEST.NO_TEST", "True")
    expected = [spec_lr(k, 0.002, 300, 100) for k in range(1, 301)]
    assert len(lrs) == 300
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert lrs[0] == pytest.approx(2e-5) and lrs[99] == pytest.approx(0.002) and lrs[-1] == pytest.approx(5e-4)


def test_iteration_log_lines_checkpoints_and_adam_eps(reference_run):
    out, results = reference_run
    log = (out / "log.txt").read_text()
    assert re.search(r"iter \[10/10\] time \d\.\d{3} \(\d\.\d{3}\) data .* loss .* acc .* lr \d\.\d{4}e-0\d eta \d:\d\d:\d\d", log)
    assert "iter [2/10]" in log and "epoch [" not in log
    assert sorted(p.name for p in (out / "classifier").iterdir()) == ["checkpoint", "model.pth.tar-10", "model.pth.tar-5"]
    assert torch.load(out / "classifier" / "model.pth.tar-5", weights_only=True)["epoch"] == 5
    assert is_run_done(out) and "* accuracy:" in log and results["accuracy"] >= 0
    cfg = get_cfg_default().OPTIM
    cfg.NAME, cfg.ADAM_EPS = "adamw", 1e-7
    assert build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg).defaults["eps"] == 1e-7
    assert get_cfg_default().OPTIM.ADAM_EPS == 1e-8 and get_cfg_default().OPTIM.MAX_ITER == 0


def test_run_killed_at_a_checkpoint_resumes_to_the_same_weights(toy, reference_run, monkeypatch):
    ref_out, ref_results = reference_run
    out = toy / "killed"
    with killed_after(ToyTrainer, "after_iteration", lambda trainer: trainer.iteration == 5):
        with pytest.raises(KeyboardInterrupt):
            run(toy, out)
    assert (out / "classifier" / "checkpoint").read_text() == "model.pth.tar-5\n" and not is_run_done(out)
    lrs = record_step_lrs(monkeypatch)

    results = run(toy, out)

    assert lrs == pytest.approx([spec_lr(k, 0.01, 10, 3) for k in range(6, 11)])
    final = torch.load(out / "classifier" / "model.pth.tar-10", weights_only=True)
    reference = torch.load(ref_out / "classifier" / "model.pth.tar-10", weights_only=True)
    for key, value in reference["state_dict"].items():
        assert torch.equal(final["state_dict"][key], value)
    assert results == pytest.approx(ref_results)


def test_best_val_keeps_the_first_best_state(toy, monkeypatch):
    scripted = iter([50.0, 70.0, 70.0, 60.0])
    original_test = ToyTrainer.test

    def scripted_val(self, split=None):
        if split == "val":
            original_test(self, split)
            return next(scripted)
        return original_test(self, split)

    monkeypatch.setattr(ToyTrainer, "test", scripted_val)
    saved = {}  # the run folder keeps only the last two epoch files: record what each save wrote
    real_save = trainer_base.save_checkpoint

    def recording_save(state, save_dir, **kwargs):
        saved.setdefault(state["epoch"], {"state_dict": {k: v.clone() for k, v in state["state_dict"].items()}})
        return real_save(state, save_dir, **kwargs)

    monkeypatch.setattr(trainer_base, "save_checkpoint", recording_save)
    out = toy / "best"
    run(toy, out, "OPTIM.MAX_ITER", "4", "TRAIN.VAL_FREQ", "1", "TEST.FINAL_MODEL", "best_val", "TRAIN.CHECKPOINT_FREQ", "1")
    best = torch.load(out / "classifier" / "model-best.pth.tar", weights_only=True)
    second = saved[2]
    assert best["epoch"] == 2 and best["val_result"] == 70.0
    for key, value in second["state_dict"].items():
        assert torch.equal(best["state_dict"][key], value)
    log = (out / "log.txt").read_text()
    assert "Deploy the model with the best val performance" in log and "val_result=70.0" in log
