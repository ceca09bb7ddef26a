"""DPT, VLP and VPT models on a tiny CLIP with 12 visual blocks (CPU): parameters, the
prompted image pass, CAVPT, the auxiliary and guidance losses, base-to-new loading."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import clip
from dassl.config import apply_cfg_extensions, get_cfg_default
from tests.helpers.tiny_clip import make_tiny_clip
from trainers.common import Precision, frozen_text_features, load_module_state, normalize
from trainers.common.visual_prompts import DeepVisualPrompts
from trainers.dpt import (
    DPT,
    VLP,
    VPT,
    VisuallyPromptedCLIP,
    auxiliary_loss,
)

EMBED, TEXT_WIDTH, VISION_WIDTH, BLOCKS, RESOLUTION = 32, 64, 48, 12, 32
CLASSNAMES = ["dog", "sea_lion", "golden retriever", "tabby cat", "red fox"]
TEMPLATE = "a photo of a {}."


@pytest.fixture(scope="module")
def tiny_clip():
    model = make_tiny_clip(
        embed_dim=EMBED, width=TEXT_WIDTH, vision_width=VISION_WIDTH, vision_layers=BLOCKS, image_resolution=RESOLUTION
    )
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return model.requires_grad_(False)


def make_cfg(**overrides):
    cfg = apply_cfg_extensions(get_cfg_default())
    cfg.TRAINER.COOP.N_CTX = 4
    cfg.TRAINER.VPT.N_CTX = 3
    cfg.TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT = 10
    cfg.TRAINER.SELECTED_COVPT.CPN = 2
    cfg.TRAINER.DPT.N_KEY_TOKENS = 4
    cfg.TRAINER.ALPHA = 0.3
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


def build(trainer_cls, clip_model, cfg=None, classnames=CLASSNAMES, seed=0):
    """The trainer's model for `classnames`, as build_model makes it (without data loaders), T_zs from TEMPLATE."""
    trainer = trainer_cls.__new__(trainer_cls)
    trainer.device, trainer.precision = torch.device("cpu"), Precision("fp32", "cpu")
    trainer.zero_shot_text_features = lambda cfg, clip_model, classnames: frozen_text_features(
        clip_model, TEMPLATE, classnames
    )
    torch.manual_seed(seed)
    model = trainer.build_custom_clip(cfg or make_cfg(), classnames, clip_model)
    return trainer, model


def images(batch, seed=0):
    return torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(seed))


def dpt_trainable_count(text_width, text_ctx, width, embed, vpt_ctx, bottom, blocks, key_tokens, n_cls):
    """Spec 1.2: text context + deep prompts in blocks 1..b-1 + one CAVPT copy per block b..L."""
    per_copy = (embed * width + width) + 2 * width * 32 + width * width + 2 * 2 * width + key_tokens * width
    return text_ctx * text_width + (bottom - 1) * vpt_ctx * width + (blocks - bottom + 1) * (per_copy + width * n_cls)


class TestParameters:
    def test_formula_gives_the_spec_count_at_vit_b16(self):
        for n_cls in (1, 50, 1000):
            assert dpt_trainable_count(512, 16, 768, 512, 10, 12, 12, 10, n_cls) == 1_136_384 + 768 * n_cls

    def test_dpt_trainable_parameters_follow_the_formula(self, tiny_clip):
        trainer, model = build(DPT, tiny_clip)
        parts = trainer.trainable_modules(model)
        assert list(parts) == ["prompt_learner", "visual_prompts", "class_aware_prompts"]
        count = sum(p.numel() for part in parts.values() for p in part.parameters())
        assert count == dpt_trainable_count(TEXT_WIDTH, 4, VISION_WIDTH, EMBED, 3, 10, BLOCKS, 4, len(CLASSNAMES))
        copies = range(3)
        expected = {"prompt_learner.ctx", "visual_prompts.prompts"} | {
            f"class_aware.{name}.{j}{suffix}"
            for j in copies
            for name, suffix in [
                ("meta_nets", ".weight"), ("meta_nets", ".bias"), ("key_projs", ".weight"), ("query_projs", ".weight"),
                ("out_projs", ".weight"), ("aux_norms", ".weight"), ("aux_norms", ".bias"), ("classifiers", ".weight"),
                ("token_norms", ".weight"), ("token_norms", ".bias"), ("key_tokens", ""),
            ]
        }
        names = {name for name, p in model.named_parameters() if not name.startswith("clip_model.")}
        assert names == expected
        assert model.visual_prompts.prompts.shape == (9, 3, VISION_WIDTH)
        assert model.class_aware.classifiers[0].weight.shape == (len(CLASSNAMES), VISION_WIDTH)

    def test_vlp_and_vpt_prompt_every_block(self, tiny_clip):
        vlp_trainer, vlp = build(VLP, tiny_clip)
        vpt_trainer, vpt = build(VPT, tiny_clip)
        assert vlp.class_aware is None and vlp.visual_prompts.prompts.shape == (BLOCKS, 3, VISION_WIDTH)
        assert list(vlp_trainer.trainable_modules(vlp)) == ["prompt_learner", "visual_prompts"]
        assert list(vpt_trainer.trainable_modules(vpt)) == ["visual_prompts"] and vpt.prompt_learner is None
        assert sum(p.numel() for p in vpt.visual_prompts.parameters()) == BLOCKS * 3 * VISION_WIDTH

    def test_initialisation_follows_the_reference_order(self, tiny_clip):
        _, model = build(DPT, tiny_clip, seed=7)
        torch.manual_seed(7)
        ctx = torch.empty(4, TEXT_WIDTH).normal_(std=0.02)
        prompts = torch.empty(9, 3, VISION_WIDTH).normal_(std=0.02)
        meta_nets = [nn.Linear(EMBED, VISION_WIDTH) for _ in range(3)]
        projections = [[nn.Linear(VISION_WIDTH, d, bias=False) for d in (32, 32, VISION_WIDTH)] for _ in range(3)]
        classifiers = [nn.Linear(VISION_WIDTH, len(CLASSNAMES), bias=False) for _ in range(3)]
        key_tokens = [torch.empty(4, VISION_WIDTH).normal_(std=0.02) for _ in range(3)]
        generator = model.class_aware
        assert torch.equal(model.prompt_learner.ctx, ctx) and torch.equal(model.visual_prompts.prompts, prompts)
        for j in range(3):
            assert torch.equal(generator.meta_nets[j].weight, meta_nets[j].weight)
            assert torch.equal(generator.key_projs[j].weight, projections[j][0].weight)
            assert torch.equal(generator.query_projs[j].weight, projections[j][1].weight)
            assert torch.equal(generator.out_projs[j].weight, projections[j][2].weight)
            assert torch.equal(generator.classifiers[j].weight, classifiers[j].weight)
            assert torch.equal(generator.key_tokens[j], key_tokens[j])

    def test_bad_layout_is_refused_with_the_key_name(self, tiny_clip):
        with pytest.raises(ValueError, match="BOTTOMLIMIT must be between 1 and 12"):
            build(DPT, tiny_clip, make_cfg(**{"TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT": 13}))
        with pytest.raises(ValueError, match="TRAINER.VPT.N_CTX"):
            build(VLP, tiny_clip, make_cfg(**{"TRAINER.VPT.N_CTX": 0}))

    def test_resnet_backbone_is_refused(self):
        resnet = make_tiny_clip(vision="resnet", embed_dim=EMBED, width=TEXT_WIDTH, vision_layers=1)
        with pytest.raises(ValueError, match="ViT backbone"):
            build(VPT, resnet)


class TestImagePass:
    def test_without_prompts_the_feature_equals_encode_image(self, tiny_clip):
        batch = images(3)
        reference = normalize(tiny_clip.encode_image(batch))
        for prompts in (None, DeepVisualPrompts(0, 2, VISION_WIDTH, torch.float32)):
            model = VisuallyPromptedCLIP(tiny_clip, None, prompts, zero_shot_text_features=None)
            features, visual_output = model.encode_prompted_image(batch, training=True)
            torch.testing.assert_close(features, reference, atol=1e-6, rtol=1e-5)
            assert visual_output is None

    def test_deep_prompts_equal_a_plain_loop_over_blocks(self, tiny_clip):
        torch.manual_seed(0)
        prompts = DeepVisualPrompts(BLOCKS, 3, VISION_WIDTH, torch.float32)
        model = VisuallyPromptedCLIP(tiny_clip, None, prompts, zero_shot_text_features=None)
        batch = images(2)
        visual = tiny_clip.visual
        x = visual.embed(batch)
        for block, block_prompts in zip(visual.transformer.resblocks, prompts.prompts):
            x = block(torch.cat([x, block_prompts.expand(2, -1, -1)], dim=1))[:, : x.shape[1]]
        looped = normalize(visual.ln_post(x[:, 0]) @ visual.proj)
        features, _ = model.encode_prompted_image(batch, training=False)
        torch.testing.assert_close(features, looped, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(features, normalize(tiny_clip.encode_image(batch)), atol=1e-3)

    def test_dpt_forward_equals_a_hand_written_pass(self, tiny_clip):
        cfg = make_cfg(**{"TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT": 12})
        _, model = build(DPT, tiny_clip, cfg)
        batch, labels = images(3), torch.tensor([0, 1, 2])
        logits, _ = model(batch, labels)

        visual, generator = tiny_clip.visual, model.class_aware
        text = model.encode_prompts(model.prompt_learner(), model.prompt_learner.eot_indices)
        zero_shot_image = normalize(tiny_clip.encode_image(batch))
        top_k = (100 * zero_shot_image @ model.zero_shot_text_features.t()).argsort(dim=-1, descending=True)[:, :2]
        x = visual.embed(batch)
        for index, block in enumerate(visual.transformer.resblocks):
            if index < 11:
                extra = model.visual_prompts.prompts[index].expand(3, -1, -1)
            else:
                q = generator.meta_nets[0](text[top_k])
                kv = torch.cat([x, generator.key_tokens[0].expand(3, -1, -1)], dim=1)
                queries, keys = q @ generator.query_projs[0].weight.t(), kv @ generator.key_projs[0].weight.t()
                attention = (queries @ keys.transpose(1, 2) / math.sqrt(32)).softmax(dim=-1)
                attended = attention @ kv @ generator.out_projs[0].weight.t()
                norm = generator.token_norms[0]
                extra = F.layer_norm(attended + q, (VISION_WIDTH,), norm.weight, norm.bias)
            x = block(torch.cat([x, extra], dim=1))[:, : x.shape[1]]
        image_features = normalize(visual.ln_post(x[:, 0]) @ visual.proj)
        expected = 100 * image_features @ normalize(text).t()
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-5)


class TestLosses:
    def test_auxiliary_loss_is_one_mean_over_matching_pairs(self):
        generator = torch.Generator().manual_seed(0)
        aux_logits = [torch.randn(3, 2, 4, generator=generator) for _ in range(2)]
        top_k = torch.tensor([[2, 0], [1, 3], [3, 0]])
        labels = torch.tensor([0, 2, 3])
        pairs = [(b, rank) for b, rank in ((0, 1), (2, 0))]
        hand = sum(
            -F.log_softmax(aux_logits[j][b, rank], dim=-1)[labels[b]] for j in range(2) for b, rank in pairs
        ) / (2 * len(pairs))
        torch.testing.assert_close(auxiliary_loss(aux_logits, top_k, labels), hand)

    def test_auxiliary_loss_is_absent_when_no_label_is_in_the_top_k(self, tiny_clip):
        assert auxiliary_loss([torch.randn(2, 1, 3)], torch.tensor([[0], [1]]), torch.tensor([2, 2])) is None
        _, model = build(DPT, tiny_clip, make_cfg(**{"TRAINER.SELECTED_COVPT.CPN": 1}))
        batch = images(4)
        top_1 = model.top_k_classes(normalize(tiny_clip.encode_image(batch)))[:, 0]
        not_top = (top_1 + 1) % len(CLASSNAMES)
        _, terms = model(batch, not_top)
        assert "aux" not in terms
        _, terms = model(batch, top_1)
        assert terms["aux"] > 0

    def test_guidance_terms_before_pretrain_c_and_plain_ce_after(self, tiny_clip):
        cfg = make_cfg(**{"PRETRAIN.C": 2})
        trainer, model = build(VLP, tiny_clip, cfg)
        trainer.cfg, trainer.model = cfg, model
        batch, labels = images(4), torch.tensor([0, 1, 2, 3])
        text = normalize(model.encode_prompts(model.prompt_learner(), model.prompt_learner.eot_indices))
        zero_shot_image = normalize(tiny_clip.encode_image(batch))
        prompted_image, _ = model.encode_prompted_image(batch, training=False)
        guidance_image = F.cross_entropy(100 * zero_shot_image @ text.t(), labels)
        guidance_text = F.cross_entropy(100 * prompted_image @ model.zero_shot_text_features.t(), labels)
        for epoch, guided in ((0, True), (1, True), (2, False), (5, False)):
            trainer.epoch = epoch
            trainer.before_epoch()
            assert model.guidance_active is guided
            logits, terms = model(batch, labels)
            loss = trainer.compute_loss(logits, labels, terms)
            main = F.cross_entropy(100 * prompted_image @ text.t(), labels)
            if guided:
                assert set(terms) == {"guidance_image", "guidance_text"}
                expected = 0.1 * main + guidance_image + guidance_text
            else:
                assert terms == {}
                expected = main
            torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


class TestClassSets:
    def test_base_to_new_load_skips_aux_classifiers_and_class_buffers_only(self, tiny_clip):
        trainer, base = build(DPT, tiny_clip, classnames=CLASSNAMES, seed=1)
        _, new = build(DPT, tiny_clip, classnames=["zebra", "kiwi", "lynx"], seed=2)
        base_parts, new_parts = trainer.trainable_modules(base), trainer.trainable_modules(new)
        for name, part in base_parts.items():
            load_module_state(new_parts[name], part.state_dict(), f"base {name}")
        assert torch.equal(new.class_aware.meta_nets[1].weight, base.class_aware.meta_nets[1].weight)
        assert torch.equal(new.visual_prompts.prompts, base.visual_prompts.prompts)
        assert torch.equal(new.prompt_learner.ctx, base.prompt_learner.ctx)
        assert new.class_aware.classifiers[0].weight.shape == (3, VISION_WIDTH)
        assert new.top_k == 2 and new.zero_shot_text_features.shape == (3, EMBED)
        assert "zero_shot_text_features" not in new.state_dict()
        broken = dict(base_parts["class_aware_prompts"].state_dict())
        del broken["key_tokens.0"]
        with pytest.raises(ValueError, match="missing keys \\['key_tokens.0'\\]"):
            load_module_state(new_parts["class_aware_prompts"], broken, "broken")

    def test_k_is_at_most_the_number_of_classes(self, tiny_clip):
        _, model = build(DPT, tiny_clip, make_cfg(**{"TRAINER.SELECTED_COVPT.CPN": 10}), classnames=CLASSNAMES[:3])
        assert model.top_k == 3
        assert model(images(2)).shape == (2, 3)

    def test_text_features_are_encoded_once_per_evaluation(self, tiny_clip, monkeypatch):
        _, model = build(VLP, tiny_clip)
        calls = []
        original = model.encode_prompts
        monkeypatch.setattr(model, "encode_prompts", lambda *a: calls.append(1) or original(*a))
        with torch.no_grad():
            plain = model(images(2))
            with model.text_features_fixed():
                fixed = [model(images(2)), model(images(2, seed=1))]
            model(images(2))
        assert len(calls) == 3
        torch.testing.assert_close(fixed[0], plain)


def test_fp16_training_step_keeps_fp16_parameters_and_finite_loss(tiny_clip):
    fp16_clip = clip.build_model(tiny_clip.state_dict()).requires_grad_(False)
    trainer, model = build(DPT, fp16_clip, make_cfg(**{"TRAINER.SELECTED_COVPT.CPN": 5}))
    model.guidance_active = True
    logits, terms = model(images(3), torch.tensor([0, 1, 2]))
    loss = sum(terms.values()) + F.cross_entropy(logits.float(), torch.tensor([0, 1, 2]))
    loss.backward()
    assert math.isfinite(loss.item()) and "aux" in terms
    for part in trainer.trainable_modules(model).values():
        for parameter in part.parameters():
            assert parameter.dtype == torch.float16 and parameter.grad is not None


def test_config_keys_keep_the_reference_names_and_defaults():
    cfg = apply_cfg_extensions(get_cfg_default())
    assert cfg.TRAINER.VPT.N_CTX == 5 and cfg.TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT == 12
    assert cfg.TRAINER.SELECTED_COVPT.CPN == 5 and cfg.PRETRAIN.C == 30 and cfg.TRAINER.ALPHA == 1.0
    assert (cfg.TRAINER.DPT.N_KEY_TOKENS, cfg.TRAINER.DPT.TEXT_LR, cfg.TRAINER.DPT.TEXT_WARMUP_EPOCH) == (10, 0.002, 1)
    assert cfg.TRAINER.COOP.PREC == "fp16"
