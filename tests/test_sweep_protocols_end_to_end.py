"""Each protocol end to end: tools/sweep.py -> the real scripts/protocol.sh -> train.py,
for built-in rows on the tiny CLIP (few-shot, zero-shot included) and
for a trainer the user registers with --import (the toy trainer, no CLIP), ending with
the protocol's table. The repository is mirrored into a temporary folder whose
configs/ adds the trainer's configs/trainers/ToyTrainer/ and two toy dataset configs,
as a user's checkout would.
"""
import os
import re
import shutil

import pytest

from tests.helpers.tables import markdown_row
from tests.helpers.trainer_runs import REPO
from tests.test_train_end_to_end import TRAINER_YAML
from tools import sweep

@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A mirror of the repository (links) with the user's trainer and dataset configs."""
    root = tmp_path_factory.mktemp("checkout")
    repo = root / "repo"
    repo.mkdir()
    for name in os.listdir(REPO):
        if name not in ("configs", "output") and not name.startswith("."):
            os.symlink(os.path.join(REPO, name), repo / name)
    shutil.copytree(os.path.join(REPO, "configs"), repo / "configs")
    (repo / "configs/trainers/ToyTrainer").mkdir()
    (repo / "configs/trainers/ToyTrainer/toy.yaml").write_text(TRAINER_YAML)
    for stem in ("toy", "toy_b"):
        (repo / f"configs/datasets/{stem}.yaml").write_text("DATASET:\n  NAME: ToyDataset\n")
    # an own image folder gets its own two-line config, as DATASETS.md says
    (repo / "configs/datasets/colours.yaml").write_text("DATASET:\n  NAME: ImageFolderDataset\n  FOLDER: colours\n")
    (root / "data").mkdir()
    return root


def run_sweep(checkout, capsys, *extra):
    args = ["--root", str(checkout / "data"), "--output", str(checkout / "out"), "--scripts-dir",
            str(checkout / "repo/scripts"), "--trainers", "ToyTrainer:toy", "--import", "tests.helpers.toy_dataset",
            "--seeds", "1", "--opts", "OPTIM.MAX_EPOCH", "1", *extra]
    code = sweep.main(args)
    return code, capsys.readouterr().out




MEAN_STD = re.compile(r"\d+\.\d\d ± \d+\.\d\d")


def test_fewshot_sweep_of_an_imported_trainer(checkout, capsys):
    code, out = run_sweep(checkout, capsys, "--protocol", "fewshot", "--datasets", "toy", "--shots", "2")
    assert code == 0, out
    assert "Sweep: 1 done, 0 skipped, 0 failed, 0 not run" in out
    assert markdown_row(out, "ToyTrainer")[1:4] == ["toy", markdown_row(out, "Average")[1], "1"]
    row = markdown_row(out, "toy")
    assert MEAN_STD.fullmatch(row[1]) and row[1].endswith("± 0.00") and row[2] == "1"
    assert (checkout / "out/toy/ToyTrainer/toy_2shots/seed1/done.json").is_file()
    assert (checkout / "out/fewshot_results.csv").is_file()


def test_xd_then_dg_train_once_per_seed_and_evaluate_every_target(checkout, capsys):
    code, out = run_sweep(checkout, capsys, "--protocol", "xd", "--source", "toy", "--datasets", "toy_b")
    assert code == 0, out
    # the source run of 16 shots, then its evaluation on the target
    assert "Sweep: 2 done, 0 skipped, 0 failed, 0 not run" in out
    row = markdown_row(out, "ToyTrainer")
    assert row[1] == "toy" and MEAN_STD.fullmatch(row[2]) and MEAN_STD.fullmatch(row[3])
    assert row[4] == row[3].split(" ±")[0]  # the average over one target is that target
    evaluation = checkout / "out/evaluation/ToyTrainer/toy_16shots/toy_b/seed1"
    assert "ToyTrainer/toy_16shots/seed1/classifier/model.pth.tar-1 to classifier" in (evaluation / "log.txt").read_text()

    code, out = run_sweep(checkout, capsys, "--protocol", "dg", "--source", "toy", "--datasets", "toy")
    assert code == 0, out
    assert "Sweep: 1 done, 1 skipped, 0 failed, 0 not run" in out  # the source model is reused
    assert markdown_row(out, "ToyTrainer")[2] == row[2]


def test_fewshot_sweep_of_built_in_rows_on_the_tiny_clip(checkout, tmp_path, capsys):
    """Zero-shot CLIP (CoOp's configs, eval-only) and CoOp through scripts/protocol.sh and train.py,
    on an own image folder named by its own dataset config."""
    from tests.helpers.trainer_runs import tiny_opts, write_colour_images, write_tiny_clip_checkpoint

    root = write_colour_images(str(tmp_path / "data"))
    clip_path = write_tiny_clip_checkpoint(tmp_path / "tiny.pt", embed_dim=128)
    code = sweep.main(["--protocol", "fewshot", "--root", root, "--output", str(tmp_path / "out"),
                       "--scripts-dir", str(checkout / "repo/scripts"),
                       "--trainers", "ZeroshotCLIP", "CoOp:vit_b16_ep50", "--datasets", "colours",
                       "--shots", "1", "--seeds", "1", "--opts", *tiny_opts(clip_path), "OPTIM.MAX_EPOCH", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Sweep: 2 done, 0 skipped, 0 failed, 0 not run" in out
    zero_shot = markdown_row(out, "ZeroshotCLIP")
    coop = markdown_row(out, "CoOp")
    assert zero_shot[:2] == ["ZeroshotCLIP", "vit_b16"] and re.fullmatch(r"\d+\.\d\d", zero_shot[2]) and zero_shot[3] == ""
    assert coop[:3] == ["CoOp", "vit_b16", ""] and re.fullmatch(r"\d+\.\d\d", coop[3])
    assert "eval_only: True" in (tmp_path / "out/colours/ZeroshotCLIP/vit_b16_0shots/seed1/log.txt").read_text()
