"""Speed options that are off by default: cached augmented views, bf16 autocast, text-tower checkpointing."""

import pytest
import torch

import train
from dassl.data.dataset_wrapper import DatasetWrapper
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from tests.helpers.tiny_clip import make_tiny_clip, randomize_
from tests.helpers.trainer_runs import base2new_argv, write_colour_images, write_tiny_clip_checkpoint
from trainers.common import Precision, PromptLearner

DETERMINISTIC_INPUT = ["INPUT.TRANSFORMS", "('resize', 'normalize')"]
SHORT_RUN = [
    "OPTIM.MAX_EPOCH", "2", "OPTIM.WARMUP_EPOCH", "0", "DATASET.NUM_SHOTS", "4",
    "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "TEST.NO_TEST", "True",
]
TRAINERS = {
    "CoOp": ("CoOp/vit_b16_ep50", ["TRAINER.COOP.PREC", "fp32"]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
    "TextRefiner": ("TextRefiner/vit_b16_ep10_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")), per_class=6)
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")



def built_trainer(assets, output_dir, name, opts=()):
    root, clip_path = assets
    config, trainer_opts = TRAINERS[name]
    argv = base2new_argv(name, config, root, clip_path, output_dir, "base", [*SHORT_RUN, *trainer_opts, *opts])
    train.import_plugins(train.PLUGIN_FOLDERS, [])
    set_random_seed(1)
    return build_trainer(train.setup_cfg(train.build_parser().parse_args(argv)))


def trained_state(trainer):
    trainer.train()
    return {k: v.clone() for k, v in trainer.custom_clip.prompt_learner.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("name", ["CoOp", "KgCoOp", "CoCoOp"])
def test_one_cached_view_of_deterministic_images_trains_like_plain_training(assets, tmp_path, monkeypatch, name):
    plain = trained_state(built_trainer(assets, tmp_path / "plain", name, DETERMINISTIC_INPUT))
    cached = built_trainer(assets, tmp_path / "cached", name, [*DETERMINISTIC_INPUT, "TRAIN.CACHED_VIEWS", "1"])
    reads = []
    getitem = DatasetWrapper.__getitem__
    monkeypatch.setattr(DatasetWrapper, "__getitem__", lambda wrapper, i: reads.append(i) or getitem(wrapper, i))
    cached_state = trained_state(cached)
    assert len(reads) == len(cached.dm.dataset.train_x)
    assert plain.keys() == cached_state.keys()
    for key in plain:
        torch.testing.assert_close(cached_state[key], plain[key], atol=1e-5, rtol=1e-4)


def test_k_augmented_views_are_encoded_once_and_drawn_per_step(assets, tmp_path, monkeypatch):
    trainer = built_trainer(assets, tmp_path / "run", "CoOp", ["TRAIN.CACHED_VIEWS", "3"])
    calls = []
    visual = trainer.custom_clip.clip_model.visual
    forward = visual.forward
    monkeypatch.setattr(visual, "forward", lambda images: calls.append(len(images)) or forward(images))
    initial = trainer.custom_clip.prompt_learner.ctx.detach().clone()
    trainer.train()
    n_train = len(trainer.dm.dataset.train_x)
    assert trainer.feature_server.train_views.shape == (3, n_train, visual.output_dim)
    assert sum(calls) == 3 * n_train
    assert not torch.allclose(trainer.feature_server.train_views[0], trainer.feature_server.train_views[1])
    assert not torch.equal(trainer.custom_clip.prompt_learner.ctx, initial)


def test_cached_views_refuse_a_plugin_that_needs_image_tokens(assets, tmp_path):
    trainer = built_trainer(assets, tmp_path / "run", "TextRefiner", ["TRAIN.CACHED_VIEWS", "2"])
    with pytest.raises(ValueError, match="TRAIN.CACHED_VIEWS needs a model whose training images only go through"):
        trainer.train()


def test_bf16_autocasts_on_fp32_parameters_and_trains(assets, tmp_path):
    precision = Precision("bf16", "cpu")
    with precision.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert precision.make_grad_scaler() is None
    trainer = built_trainer(assets, tmp_path / "run", "CoOp", ["TRAINER.COOP.PREC", "bf16", "OPTIM.MAX_EPOCH", "1"])
    assert trainer.custom_clip.clip_model.dtype == torch.float32
    initial = trainer.custom_clip.prompt_learner.ctx.detach().clone()
    trainer.train()
    ctx = trainer.custom_clip.prompt_learner.ctx
    assert ctx.dtype == torch.float32 and torch.isfinite(ctx).all() and not torch.equal(ctx, initial)


def test_text_tower_checkpointing_gives_the_same_gradients_and_follows_the_config(assets, tmp_path):
    clip_model = randomize_(make_tiny_clip(embed_dim=32, width=64, seed=6), seed=7).requires_grad_(False)
    torch.manual_seed(0)
    learner = PromptLearner(["cat", "sea lion", "airliner"], clip_model, n_ctx=4)
    grads = []
    for checkpointing in (False, True):
        clip_model.transformer.gradient_checkpointing = checkpointing
        learner.ctx.grad = None
        clip_model.encode_text_from_embeddings(learner(), learner.eot_indices).pow(2).sum().backward()
        grads.append(learner.ctx.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-6)
    assert grads[0].abs().sum() > 0
    trainer = built_trainer(assets, tmp_path / "run", "CoOp", ["TRAIN.TEXT_CHECKPOINTING", "True"])
    assert trainer.custom_clip.clip_model.transformer.gradient_checkpointing
    assert not built_trainer(assets, tmp_path / "off", "CoOp").custom_clip.clip_model.transformer.gradient_checkpointing
