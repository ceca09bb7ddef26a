"""DPT, VLP and VPT through train.py: base-class training (guidance phase, then plain
CE) and new-class evaluation of the saved checkpoints, on a tiny 12-block CLIP, in
fp32, amp and the reference's fp16 (all on CPU)."""
import json
import math

import pytest
import torch

import train
from tests.helpers.tiny_clip import make_tiny_clip, save_openai_checkpoint
from tests.helpers.trainer_runs import RESOLUTION, base2new_argv, write_colour_images

SHORT_RUN = [
    "OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "1", "PRETRAIN.C", "1",
    "DATASET.NUM_SHOTS", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "2",
    "TRAINER.COOP.N_CTX", "4", "TRAINER.VPT.N_CTX", "2", "TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT", "11",
    "TRAINER.SELECTED_COVPT.CPN", "2", "TRAINER.DPT.N_KEY_TOKENS", "3", "TRAINER.DPT.TEXT_LR", "0.004",
]
REGISTERED = {
    "DPT": ["prompt_learner", "visual_prompts", "class_aware_prompts"],
    "VLP": ["prompt_learner", "visual_prompts"],
    "VPT": ["visual_prompts"],
}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")))
    model = make_tiny_clip(embed_dim=32, width=64, vision_layers=12, image_resolution=RESOLUTION, seed=0)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return root, save_openai_checkpoint(model, tmp_path_factory.mktemp("clip") / "tiny12.pt")



def new_class_argv(trainer, root, clip_path, output_dir, opts, model_dir, epoch):
    argv = base2new_argv(trainer, f"{trainer}/vit_b16", root, clip_path, output_dir, "new", opts, model_dir=model_dir)
    flags_end = argv.index("--eval-only") + 1
    return argv[:flags_end] + ["--load-epoch", str(epoch)] + argv[flags_end:]


@pytest.mark.parametrize("precision", ["fp32", "amp", "fp16"])
@pytest.mark.parametrize("trainer", sorted(REGISTERED))
def test_train_py_trains_on_base_and_evaluates_on_new(assets, tmp_path, trainer, precision):
    root, clip_path = assets
    opts = SHORT_RUN + ["TRAINER.COOP.PREC", precision]
    base_dir, new_dir = tmp_path / "train_base", tmp_path / "test_new"
    base = train.main(base2new_argv(trainer, f"{trainer}/vit_b16", root, clip_path, base_dir, "base", opts))
    new = train.main(new_class_argv(trainer, root, clip_path, new_dir, opts, base_dir, 2))
    for results, run_dir in ((base, base_dir), (new, new_dir)):
        assert math.isfinite(results["accuracy"]) and json.loads((run_dir / "done.json").read_text())
        assert "nan" not in (run_dir / "log.txt").read_text().lower()
    new_log = (new_dir / "log.txt").read_text()
    for name in REGISTERED[trainer]:
        checkpoint = torch.load(base_dir / name / "model.pth.tar-2", weights_only=True)
        base_lr = checkpoint["optimizer"]["param_groups"][0]["initial_lr"]
        assert base_lr == (0.004 if name == "prompt_learner" else 0.01)
        assert f"Loading weights to {name} from {base_dir / name / 'model.pth.tar-2'}" in new_log
        for value in checkpoint["state_dict"].values():
            assert torch.isfinite(value).all()
    assert sorted(p.name for p in base_dir.iterdir() if (p / "checkpoint").is_file()) == sorted(REGISTERED[trainer])
