"""`torchrun --nproc_per_node=2 train.py ...` (gloo, CPU) trains and evaluates like one process with the same global batch."""
import json
import os
import subprocess
import sys

import pytest
import torch

import train
from dassl.engine.device import note_unused_gpus
from dassl.engine.distributed import GatheringEvaluator, gather_interleaved, local_batch_size, shard_indices
from tests.helpers.trainer_runs import REPO, base2new_argv, write_colour_images, write_tiny_clip_checkpoint

DETERMINISTIC_RUN = [
    "TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "4",
    "INPUT.TRANSFORMS", "('resize', 'normalize')",
    "DATALOADER.TRAIN_X.SAMPLER", "SequentialSampler",
    "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATALOADER.TEST.BATCH_SIZE", "3",
    "DATASET.NUM_SHOTS", "4", "OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0", "OPTIM.LR", "0.05",
]



def trained_ctx(output_dir):
    path = os.path.join(output_dir, "prompt_learner", "model.pth.tar-2")
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]["ctx"]


def test_two_process_run_equals_one_process_with_the_same_global_batch(tmp_path):
    root = write_colour_images(str(tmp_path / "data"), per_class=5)
    clip_path = write_tiny_clip_checkpoint(tmp_path / "tiny.pt")
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    single = train.main(base2new_argv("CoOp", "CoOp/vit_b16_ep50", root, clip_path, single_dir, "base", DETERMINISTIC_RUN))
    own_cache = ["TEST.FEATURE_CACHE_DIR", str(tmp_path / "ddp_cache")]
    argv = base2new_argv("CoOp", "CoOp/vit_b16_ep50", root, clip_path, ddp_dir, "base", DETERMINISTIC_RUN + own_cache)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py", *argv]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    torch.testing.assert_close(trained_ctx(ddp_dir), trained_ctx(single_dir), atol=2e-5, rtol=1e-3)
    assert not torch.equal(trained_ctx(single_dir), torch.zeros(4, 64))
    done = json.loads((ddp_dir / "done.json").read_text())
    assert done["results"] == pytest.approx(dict(single))
    log = (ddp_dir / "log.txt").read_text()
    assert log.count("Finish training") == 1 and log.count("* total: 6") == 1
    assert len(list((tmp_path / "ddp_cache").glob("*.pt"))) == 1


def test_global_batch_must_split_evenly_and_single_process_helpers_are_identities():
    assert local_batch_size(32) == 32 and shard_indices(5) == [0, 1, 2, 3, 4]
    rows = torch.arange(6.0).reshape(3, 2)
    assert gather_interleaved(rows) is rows


def test_gathering_evaluator_feeds_the_wrapped_evaluator_once():
    seen = []

    class Recorder:
        def reset(self):
            seen.clear()

        def process(self, mo, gt):
            seen.append((mo.clone(), gt.clone()))

        def evaluate(self):
            return {"batches": len(seen)}

    evaluator = GatheringEvaluator(Recorder())
    evaluator.process(torch.eye(3)[:2], torch.tensor([0, 1]))
    evaluator.process(torch.eye(3)[2:], torch.tensor([2]))
    assert evaluator.evaluate() == {"batches": 1}
    assert torch.equal(seen[0][0], torch.eye(3)) and torch.equal(seen[0][1], torch.tensor([0, 1, 2]))


def test_several_gpus_without_torchrun_train_on_one_and_say_how_to_use_all(capsys):
    note_unused_gpus(4, 1)
    assert capsys.readouterr().out.strip() == (
        "4 GPUs are visible; this run trains on one (cuda:0). To train on all 4, start it with "
        "`torchrun --nproc_per_node=4 train.py ...` (the batch stays the global batch)"
    )
    note_unused_gpus(4, 4)
    note_unused_gpus(1, 1)
    assert capsys.readouterr().out == ""
