"""TextRefiner through the real trainers and train.py: base-to-new runs of every host,
exact equality with CoOp when switched to a no-op, parameters, checkpoints (tiny CLIP, CPU)."""
import json
import math
import os
import subprocess

import pytest
import torch

import train
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from tests.helpers.trainer_runs import REPO, base2new_argv, write_colour_images, write_tiny_clip_checkpoint

HOSTS = {
    "TextRefiner": ("TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1", "COOP", []),
    "KgCoOp+TextRefiner": ("KgCoOp", "KgCoOp/vit_b16_ep100_ctxv1", "COOP", ["TRAINER.TEXTREFINER.ENABLED", "True"]),
    "CoCoOp+TextRefiner": ("CoCoOp", "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", "COCOOP", ["TRAINER.TEXTREFINER.ENABLED", "True"]),
}
SHORT_RUN = [
    "OPTIM.MAX_EPOCH", "1", "OPTIM.WARMUP_EPOCH", "0", "DATASET.NUM_SHOTS", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "2", "TRAIN.CHECKPOINT_FREQ", "1",
]
EMBED, TEXT_WIDTH = 32, 64


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")))
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")



def built_trainer(assets, tmp_path, trainer, config, opts=()):
    root, clip_path = assets
    args = train.build_parser().parse_args(base2new_argv(trainer, config, root, clip_path, tmp_path, "base", opts))
    train.import_plugins(train.PLUGIN_FOLDERS, [])
    set_random_seed(1)
    return build_trainer(train.setup_cfg(args))


def first_batch(trainer):
    return next(iter(trainer.train_loader_x))


def train_step(trainer, batch):
    """One optimisation step outside the epoch loop (not the epoch's last batch: no LR step)."""
    trainer.set_model_mode("train")
    trainer.batch_idx, trainer.num_batches = 0, 2
    return trainer.forward_backward(batch)


@pytest.mark.parametrize("precision", ["fp32", "amp"])
@pytest.mark.parametrize("row", sorted(HOSTS))
def test_train_py_trains_on_base_and_evaluates_on_new(assets, tmp_path, row, precision):
    root, clip_path = assets
    trainer, config, node, enable = HOSTS[row]
    opts = SHORT_RUN + enable + [f"TRAINER.{node}.PREC", precision]
    base_dir, new_dir = tmp_path / "train_base" / row, tmp_path / "test_new" / row
    base = train.main(base2new_argv(trainer, config, root, clip_path, base_dir, "base", opts))
    new = train.main(base2new_argv(trainer, config, root, clip_path, new_dir, "new", opts, base_dir, 1))
    for results, run_dir in ((base, base_dir), (new, new_dir)):
        assert math.isfinite(results["accuracy"]) and json.loads((run_dir / "done.json").read_text())
        assert "nan" not in (run_dir / "log.txt").read_text().lower()
    saved = torch.load(base_dir / "text_refiner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert saved["local_cache"].shape == (25, EMBED) and torch.isfinite(saved["local_cache"]).all()
    assert "Loading weights to text_refiner" in (new_dir / "log.txt").read_text()


def test_trainable_parameters_follow_the_spec_formula(assets, tmp_path):
    trainer = built_trainer(assets, tmp_path, "TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1", ["TRAINER.COOP.PREC", "fp32"])
    trainable = {name: p.numel() for name, p in trainer.model.named_parameters() if p.requires_grad}
    mlp = 2 * (EMBED * EMBED + EMBED) + 2 * EMBED
    assert sum(trainable.values()) == 4 * TEXT_WIDTH + mlp + 2 * EMBED * EMBED
    assert trainer.get_model_names() == ["prompt_learner", "text_refiner"]
    assert trainer.cfg.TRAINER.TEXTREFINER.ENABLED


def test_no_op_settings_give_exactly_coop(assets, tmp_path):
    no_op = ["TRAINER.COOP.PREC", "fp32", "TRAINER.TEXTREFINER.ALPHA", "0.0", "TRAINER.TEXTREFINER.SEM_LOSS", "False",
             "TRAINER.TEXTREFINER.DISTILL", "0.0"]
    coop = built_trainer(assets, tmp_path / "coop", "CoOp", "TextRefiner/vit_b16_ep10_ctxv1", no_op)
    refined = built_trainer(assets, tmp_path / "tr", "TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1", no_op)
    assert coop.model.text_plugin is None and refined.model.text_plugin is not None
    batch = first_batch(coop)
    image, label = coop.parse_batch_train(batch)
    logits, terms = refined.model(image, label)
    coop_logits, _ = coop.model(image, label)
    assert terms == {} and torch.equal(logits, coop_logits)
    assert train_step(coop, batch)["loss"] == train_step(refined, batch)["loss"]
    assert torch.equal(coop.model.prompt_learner.ctx, refined.model.prompt_learner.ctx)


def test_checkpointed_cache_is_restored_and_evaluation_only_reads_it(assets, tmp_path):
    opts = ["TRAINER.COOP.PREC", "fp16"]
    trainer = built_trainer(assets, tmp_path / "a", "TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1", opts)
    plugin = trainer.model.text_plugin
    initial = plugin.local_cache.clone()
    train_step(trainer, first_batch(trainer))
    trained = plugin.local_cache.clone()
    assert trained.dtype == torch.float16 and not torch.equal(trained, initial)
    trainer.test()
    assert torch.equal(plugin.local_cache, trained)
    trainer.save_model(0, str(tmp_path / "a"))
    fresh = built_trainer(assets, tmp_path / "b", "TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1", opts)
    fresh.load_model(str(tmp_path / "a"), epoch=1)
    assert torch.equal(fresh.model.text_plugin.local_cache, trained)
    assert fresh.test() == trainer.test()


def run_script(tmp_path, script, *args, **env):
    """Run scripts/textrefiner/<script> with a stub interpreter; returns the argv train.py got."""
    stub = tmp_path / "python.sh"
    stub.write_text('#!/usr/bin/env bash\necho "$@" > "$STUB_ARGV"\n')
    stub.chmod(0o755)
    argv_file = tmp_path / "argv.txt"
    argv_file.unlink(missing_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    environment = {**os.environ, "DATA": str(tmp_path / "data"), "OUTPUT": str(tmp_path / "out"),
                   "PYTHON": str(stub), "STUB_ARGV": str(argv_file), **env}
    done = subprocess.run(["bash", os.path.join(REPO, "scripts/textrefiner", script), *args], env=environment,
                          capture_output=True, text=True)
    return done, (argv_file.read_text().split() if argv_file.exists() else [])


def test_scripts_run_a_host_with_textrefiner_into_its_own_folder(tmp_path):
    _, argv = run_script(tmp_path, "base2new_train.sh", "eurosat", "2")
    assert argv[argv.index("--trainer") + 1] == "TextRefiner"
    assert argv[argv.index("--output-dir") + 1].endswith("shots_16/TextRefiner/vit_b16_ep10_ctxv1/seed2")
    _, argv = run_script(tmp_path, "base2new_train.sh", "eurosat", "2", HOST="KgCoOp")
    assert argv[argv.index("--trainer") + 1] == "KgCoOp"
    assert argv[argv.index("--config-file") + 1] == "configs/trainers/KgCoOp/vit_b16_ep100_ctxv1.yaml"
    assert argv[argv.index("--output-dir") + 1].endswith("/KgCoOp+TextRefiner/vit_b16_ep100_ctxv1/seed2")
    assert argv[-2:] == ["TRAINER.TEXTREFINER.ENABLED", "True"]
    done, argv = run_script(tmp_path, "base2new_test.sh", "eurosat", "2", HOST="Foo")
    assert done.returncode == 2 and "HOST=Foo cannot host TextRefiner" in done.stderr and not argv
