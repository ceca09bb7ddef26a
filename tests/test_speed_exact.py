"""Exact speed-ups give the same numbers as the straightforward computation, gradients included.

Forward equality of the EOT cut and of CoCoOp's batched text passes is tested
in test_clip_hooks.py / test_trainers_models.py; here: the backward passes
training relies on, and fixed-prompt features encoded once per run.
"""
import sys

import pytest
import torch
import torch.nn.functional as F

import train
from clip.model import CLIP
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from tests.helpers.tiny_clip import make_tiny_clip, randomize_
from tests.helpers.trainer_runs import base2new_argv, write_colour_images, write_tiny_clip_checkpoint
from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner
from trainers.common import PromptLearner, normalize

CLASSNAMES = ["dog", "sea_lion", "golden retriever", "tabby cat", "an airliner with four engines"]


@pytest.fixture(scope="module")
def fp32_clip():
    return randomize_(make_tiny_clip(embed_dim=32, width=64, seed=2), seed=3).requires_grad_(False)


def images(batch):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(4))


def test_eot_cut_gives_the_full_length_gradients(fp32_clip):
    torch.manual_seed(0)
    learner = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4, csc=True)
    target = torch.randn(len(CLASSNAMES), 32, generator=torch.Generator().manual_seed(1))
    results = {}
    for truncate in (True, False):
        learner.ctx.grad = None
        features = fp32_clip.encode_text_from_embeddings(learner(), learner.eot_indices, truncate=truncate)
        (normalize(features) * target).sum().backward()
        results[truncate] = (features.detach(), learner.ctx.grad.clone())
    assert int(learner.eot_indices.max()) + 1 < 77
    torch.testing.assert_close(results[True][0], results[False][0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(results[True][1], results[False][1], atol=1e-6, rtol=1e-5)
    assert results[True][1].abs().sum() > 0


def per_image_reference_logits(clip_model, learner, batch):
    """Upstream CoCoOp: one text pass of n_cls full 77-token prompts per image."""
    image_features = normalize(clip_model.visual(batch))
    rows = []
    for feature in image_features:
        ctx = learner.ctx + learner.meta_net(feature)
        prompts = torch.cat([learner.token_prefix, ctx.expand(learner.n_cls, -1, -1), learner.token_suffix], dim=1)
        text = normalize(clip_model.encode_text_from_embeddings(prompts, learner.eot_indices, truncate=False))
        rows.append(clip_model.logit_scale.exp() * feature @ text.t())
    return torch.stack(rows)


@pytest.mark.parametrize("chunk", [0, 4])
def test_batched_cocoop_training_step_equals_the_per_image_loop(fp32_clip, chunk):
    torch.manual_seed(0)
    learner = ConditionalPromptLearner(CLASSNAMES, fp32_clip, n_ctx=4, ctx_init="")
    model = CoCoOpCLIP(fp32_clip, learner, text_chunk=chunk)
    batch, labels = images(3), torch.tensor([0, 4, 2])
    grads = []
    for logits_of in (lambda: model(batch, labels)[0], lambda: per_image_reference_logits(fp32_clip, learner, batch)):
        learner.zero_grad(set_to_none=True)
        logits = logits_of()
        F.cross_entropy(logits, labels).backward()
        grads.append((logits.detach(), {name: p.grad.clone() for name, p in learner.named_parameters()}))
    (batched, batched_grads), (looped, looped_grads) = grads
    torch.testing.assert_close(batched, looped, atol=1e-4, rtol=1e-5)
    assert batched_grads.keys() == looped_grads.keys() and len(batched_grads) == 5
    for name in batched_grads:
        torch.testing.assert_close(batched_grads[name], looped_grads[name], atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = write_colour_images(str(tmp_path_factory.mktemp("data")), per_class=4)
    return root, write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt")


@pytest.mark.parametrize(
    "trainer, config", [("KgCoOp", "KgCoOp/vit_b16_ep100_ctxv1"), ("ZeroshotCLIP", "CoOp/vit_b16")]
)
def test_fixed_prompt_features_are_encoded_once_per_run(assets, tmp_path, monkeypatch, trainer, config):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    root, clip_path = assets
    opts = ["TRAINER.COOP.PREC", "fp32", "OPTIM.MAX_EPOCH", "2", "DATASET.NUM_SHOTS", "2", "TEST.FEATURE_CACHE", "False"]
    argv = base2new_argv(trainer, config, root, clip_path, tmp_path, "base", opts)
    train.import_plugins(train.PLUGIN_FOLDERS, [])
    calls = []
    real_encode_text = CLIP.encode_text
    monkeypatch.setattr(CLIP, "encode_text", lambda model, ids: calls.append(len(ids)) or real_encode_text(model, ids))
    set_random_seed(1)
    run = build_trainer(train.setup_cfg(train.build_parser().parse_args(argv)))
    if trainer == "KgCoOp":
        run.train()
    run.test()
    run.test()
    assert calls == [len(run.dm.dataset.classnames)]


def test_learned_text_features_are_encoded_once_per_prompt_state_in_evaluation(fp32_clip, monkeypatch):
    from trainers.coop import CoOpCLIP

    torch.manual_seed(0)
    model = CoOpCLIP(fp32_clip, PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4)).eval()
    calls = []
    encode = model.encode_prompts
    monkeypatch.setattr(model, "encode_prompts", lambda *args: calls.append(1) or encode(*args))
    batch = images(3)
    with torch.no_grad():
        first, second = model(batch), model(batch[:2])
        assert len(calls) == 1
        torch.testing.assert_close(second, first[:2])
        model.prompt_learner.ctx.add_(torch.randn_like(model.prompt_learner.ctx))  # as an optimizer step does
        after_step = model(batch)
        assert len(calls) == 2
    with torch.enable_grad():
        fresh = model(batch)
    assert len(calls) == 3
    torch.testing.assert_close(after_step, fresh.detach())
    assert not torch.allclose(after_step, first)
