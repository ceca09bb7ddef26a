"""The mini world behaves like the real one: base-to-new with the shipped MiniCLIP through train.py.

CoOp and KgCoOp train on the base classes of one mini dataset (one seed, the
`mini` configs the main job uses) and are evaluated on the new classes; CoOp's
base accuracy must beat zero-shot CLIP's, as in the papers.
"""
import pytest

import train

DATASET = "mini_clipart"
MARGIN = 2.0  # accuracy points


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini_data")
    out = tmp_path_factory.mktemp("mini_out")

    def run(trainer, config, phase, *extra):
        argv = [
            "--root", str(root), "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", f"configs/datasets/{DATASET}.yaml",
            "--config-file", f"configs/trainers/{config}/mini.yaml",
            "--output-dir", str(out / trainer / phase), *extra,
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", phase,
        ]
        return train.main(argv)["accuracy"]

    results = {("ZeroshotCLIP", phase): run("ZeroshotCLIP", "CoOp", phase, "--eval-only") for phase in ("base", "new")}
    for trainer in ("CoOp", "KgCoOp"):
        results[trainer, "base"] = run(trainer, trainer, "base")
        results[trainer, "new"] = run(
            trainer, trainer, "new", "--eval-only", "--model-dir", str(out / trainer / "base"),
            "--load-epoch", str(max_epoch(trainer)),
        )
    return results


def max_epoch(trainer):
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    cfg.set_new_allowed(True)
    cfg.merge_from_file(f"configs/trainers/{trainer}/mini.yaml")
    return cfg.OPTIM.MAX_EPOCH


def test_coop_base_accuracy_beats_zero_shot(runs):
    assert runs["CoOp", "base"] > runs["ZeroshotCLIP", "base"] + MARGIN, runs


def test_kgcoop_trains_base_to_new_with_real_new_class_skill(runs):
    chance_new = 100.0 / 16  # MiniClipart has 16 new classes
    assert runs["KgCoOp", "base"] > runs["ZeroshotCLIP", "base"], runs
    assert runs["KgCoOp", "new"] > 3 * chance_new and runs["CoOp", "new"] > 2 * chance_new, runs
