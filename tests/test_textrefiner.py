"""TextRefiner plug-in on the CoOp-family hosts: cache write, read and aggregation,
losses, host rules, precision and test-time reuse (tiny CLIP, CPU)."""
import pytest
import torch
import torch.nn.functional as F
from yacs.config import CfgNode as CN

import clip
from tests.helpers.tiny_clip import make_tiny_clip
from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner
from trainers.common import Precision, PromptLearner, frozen_text_features, normalize
from trainers.coop import CoOpCLIP
from trainers.kgcoop import KgCoOpCLIP
from trainers.textrefiner import (
    TextRefinerPlugin,
    add_textrefiner_cfg,
    build_text_refiner,
    semantic_tokens,
    write_cache,
)

CLASSNAMES = ["dog", "sea_lion", "golden retriever", "tabby cat"]
EMBED, RESOLUTION = 32, 32
NUM_TOKENS = (RESOLUTION // 8) ** 2 + 1


@pytest.fixture(scope="module")
def fp32_clip():
    return make_tiny_clip(embed_dim=EMBED, width=64, image_resolution=RESOLUTION).requires_grad_(False)


def images(batch, seed=0):
    return torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(seed))


def labels(*values):
    return torch.tensor(values)


def refiner(clip_model, **options):
    torch.manual_seed(0)
    return TextRefinerPlugin(EMBED, clip_model.logit_scale.exp().item(), dtype=clip_model.dtype, **options)


def coop_with_refiner(clip_model, host="coop", **options):
    """A CoOp (or CoCoOp) model from "a photo of a" with a TextRefiner plugged in."""
    if host == "cocoop":
        learner = ConditionalPromptLearner(CLASSNAMES, clip_model, 4, "a photo of a")
        return CoCoOpCLIP(clip_model, learner, text_plugin=refiner(clip_model, **options))
    learner = PromptLearner(CLASSNAMES, clip_model, ctx_init="a photo of a")
    return CoOpCLIP(clip_model, learner, text_plugin=refiner(clip_model, **options))


def looped_write(cache, tokens, momentum, rule):
    """The reference write, entry by entry, in float64."""
    cache, units = cache.double(), normalize(tokens.double())
    similarity = units @ cache.t()
    probabilities = similarity.softmax(dim=0)
    assignment = similarity.argmax(dim=1)
    new = cache.clone()
    for entry in range(cache.shape[0]):
        members = [j for j in range(len(units)) if assignment[j] == entry]
        if not members:
            continue
        peak = probabilities[:, entry].max()
        weights = [probabilities[j, entry] / peak for j in members]
        total = sum(w * units[j] for w, j in zip(weights, members))
        if rule == "ema":
            total = total / sum(weights)
        new[entry] = momentum * cache[entry] + (1 - momentum) * total
    return normalize(new)


class TestCacheWrite:
    @pytest.mark.parametrize("rule", ["reference", "ema"])
    def test_vectorised_write_equals_per_entry_loop_with_empty_entries(self, rule):
        generator = torch.Generator().manual_seed(3)
        cache = normalize(torch.rand(25, 16, generator=generator))
        tokens = torch.randn(14, 16, generator=generator) * 3
        chosen = (normalize(tokens) @ cache.t()).argmax(dim=1).unique()
        assert 1 < len(chosen) < 25
        written = write_cache(cache, tokens, 0.8, rule)
        torch.testing.assert_close(written.double(), looped_write(cache, tokens, 0.8, rule), atol=1e-6, rtol=1e-6)
        untouched = torch.ones(25, dtype=torch.bool)
        untouched[chosen] = False
        torch.testing.assert_close(written[untouched], cache[untouched])
        assert not torch.allclose(written[chosen], cache[chosen])

    def test_reference_rule_lets_new_tokens_dominate_unlike_ema(self):
        cache = normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tokens = torch.tensor([[1.0, 0.3]]).repeat(50, 1)
        reference = write_cache(cache, tokens, 0.8, "reference")
        ema = write_cache(cache, tokens, 0.8, "ema")
        target = normalize(tokens[:1])[0]
        assert (reference[0] @ target) > 0.999 > (ema[0] @ target)
        assert torch.equal(reference[1], cache[1])

    def test_fp16_write_stays_fp16_and_close_to_loop(self):
        generator = torch.Generator().manual_seed(4)
        cache = normalize(torch.rand(8, 16, generator=generator)).half()
        tokens = torch.randn(40, 16, generator=generator).half()
        written = write_cache(cache, tokens, 0.8, "reference")
        assert written.dtype == torch.float16
        torch.testing.assert_close(written.double(), looped_write(cache, tokens, 0.8, "reference"), atol=3e-3, rtol=0)


class TestRefinement:
    def test_refined_features_follow_the_formula_and_are_not_renormalised(self, fp32_clip):
        plugin = refiner(fp32_clip, alpha=0.2).eval()
        text = normalize(torch.randn(4, EMBED))
        read = (text @ plugin.local_cache.t()).softmax(-1) @ plugin.local_cache
        expected = text + 0.2 * torch.cat([text, read], -1) @ plugin.aggregate.weight.t()
        with torch.no_grad():
            refined, terms = plugin(text, None, None, None)
        torch.testing.assert_close(refined, expected)
        assert terms == {} and not torch.allclose(refined.norm(dim=-1), torch.ones(4))

    def test_semantic_tokens_are_cls_top_patches_and_mean(self):
        aligned = torch.randn(2, 6, 3)
        attention = torch.tensor([[0.1, 0.5, 0.0, 0.3, 0.05], [0.4, 0.0, 0.2, 0.1, 0.3]])
        queries = semantic_tokens(aligned, attention, topk=2)
        torch.testing.assert_close(queries[0], torch.stack([aligned[0, 0], aligned[0, 2], aligned[0, 4], aligned[0].mean(0)]))
        torch.testing.assert_close(queries[1], torch.stack([aligned[1, 0], aligned[1, 1], aligned[1, 5], aligned[1].mean(0)]))
        with pytest.raises(ValueError, match="TOPK is 6 but the image has only 5"):
            semantic_tokens(aligned, attention, topk=6)

    def test_parameters_match_the_spec_at_vit_b16_widths(self):
        plugin = TextRefinerPlugin(512, 100.0)
        assert sum(p.numel() for p in plugin.align.parameters()) == 526_336
        assert plugin.aggregate.weight.numel() == 524_288
        assert sum(p.numel() for p in plugin.parameters()) + 4 * 512 == 1_052_672
        assert plugin.local_cache.shape == (25, 512) and not plugin.local_cache.requires_grad


class TestTrainingStep:
    def test_losses_follow_the_formulas_and_the_cache_is_written_after_the_read(self, fp32_clip):
        model = coop_with_refiner(fp32_clip)
        plugin = model.text_plugin.train()
        before = plugin.local_cache.clone()
        batch, target = images(3), labels(0, 2, 1)
        logits, terms = model(batch, target)
        with torch.no_grad():
            text = model.learned_text_features()
            out = fp32_clip.visual.forward_features(batch, **plugin.visual_request)
            plugin_eval = refiner(fp32_clip).eval()
            plugin_eval.load_state_dict(plugin.state_dict())
            plugin_eval.local_cache = before
            refined = plugin_eval.refine(text)
        scale = fp32_clip.logit_scale.exp()
        torch.testing.assert_close(logits, scale * normalize(out.pooled) @ refined.t())
        assert not torch.equal(plugin.local_cache, before)
        aligned = plugin.align(out.tokens)
        queries = semantic_tokens(aligned, out.attention, 5)
        sem = F.cross_entropy(scale * (queries @ text.t()).reshape(-1, 4), target.repeat_interleave(7))
        torch.testing.assert_close(terms["textrefiner_sem"], sem / 50)
        torch.testing.assert_close(terms["textrefiner_reg"], 20 * (normalize(refined) - text).abs().mean())

    def test_mlp_learns_from_the_semantic_loss_only_and_aggregation_from_the_others(self, fp32_clip):
        model = coop_with_refiner(fp32_clip)
        logits, terms = model(images(2), labels(0, 1))
        (F.cross_entropy(logits, labels(0, 1)) + terms["textrefiner_reg"]).backward(retain_graph=True)
        plugin = model.text_plugin
        assert plugin.align.layers.fc1.weight.grad is None and plugin.aggregate.weight.grad.abs().sum() > 0
        terms["textrefiner_sem"].backward()
        assert plugin.align.layers.fc1.weight.grad.abs().sum() > 0
        assert plugin.align.layers.norm.weight.grad.abs().sum() > 0
        assert model.prompt_learner.ctx.grad.abs().sum() > 0

    def test_zero_alpha_and_switched_off_terms_give_exactly_the_host(self, fp32_clip):
        host = CoOpCLIP(fp32_clip, PromptLearner(CLASSNAMES, fp32_clip, ctx_init="a photo of a"))
        model = coop_with_refiner(fp32_clip, alpha=0.0, semantic_weight=0.0, regularisation_weight=0.0)
        logits, terms = model(images(2), labels(0, 1))
        host_logits, _ = host(images(2), labels(0, 1))
        assert terms == {} and torch.equal(logits, host_logits)
        assert torch.equal(model(images(2)), host(images(2)))
        assert not torch.equal(coop_with_refiner(fp32_clip)(images(2)), host(images(2)))

    def test_missing_visual_outputs_name_the_host_fix(self, fp32_clip):
        with pytest.raises(ValueError, match="forward_features"):
            refiner(fp32_clip)(normalize(torch.randn(4, EMBED)), None, None, labels(0))


class TestHostRules:
    def test_cocoop_rows_are_refined_per_image_and_scored_against_their_own_features(self, fp32_clip):
        model = coop_with_refiner(fp32_clip, host="cocoop")
        learner = model.prompt_learner
        batch, target = images(2, seed=5), labels(3, 1)
        logits, terms = model(batch, target)
        plugin = model.text_plugin
        with torch.no_grad():
            out = fp32_clip.visual.forward_features(batch, **plugin.visual_request)
            features = normalize(out.pooled)
            text = normalize(model.encode_prompts(learner(features), learner.eot_indices))
            queries = semantic_tokens(plugin.align(out.tokens), out.attention, 5)
        scale = fp32_clip.logit_scale.exp()
        per_image = torch.cat([scale * queries[b] @ text[b].t() for b in range(2)])
        sem = F.cross_entropy(per_image, target.repeat_interleave(7))
        assert logits.shape == (2, 4)
        torch.testing.assert_close(terms["textrefiner_sem"], sem / 50, atol=1e-5, rtol=1e-5)
        assert terms["textrefiner_reg"].dim() == 0

    def test_kgcoop_term_uses_the_unrefined_features(self, fp32_clip):
        learner = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4)
        anchors = frozen_text_features(fp32_clip, "a photo of a {}.", CLASSNAMES)
        _, plain_terms = KgCoOpCLIP(fp32_clip, learner, 8.0, anchors)(images(2), labels(0, 1))
        _, terms = KgCoOpCLIP(fp32_clip, learner, 8.0, anchors, text_plugin=refiner(fp32_clip))(images(2), labels(0, 1))
        assert set(terms) == {"kg", "textrefiner_sem", "textrefiner_reg"}
        assert torch.equal(terms["kg"], plain_terms["kg"])

    def test_requested_visual_outputs_leave_the_image_feature_unchanged(self, fp32_clip):
        model = coop_with_refiner(fp32_clip)
        plain, _ = model.encode_image(images(2), training=False)
        features, out = model.encode_image(images(2), training=True)
        assert torch.equal(features, plain)
        assert out.tokens.shape == (2, NUM_TOKENS, EMBED) and out.attention.shape == (2, NUM_TOKENS - 1)
        last = fp32_clip.visual.transformer.resblocks[-1]
        stream = fp32_clip.visual.embed(images(2))
        for block in fp32_clip.visual.transformer.resblocks[:-1]:
            stream = block(stream)
        _, full_row = last.forward_with_first_query_weights(stream)
        torch.testing.assert_close(full_row.sum(-1), torch.ones(2))
        torch.testing.assert_close(out.attention, full_row[:, 1:])


class TestTestTime:
    def count_refines(self, plugin, monkeypatch):
        calls = []
        original = plugin.refine
        monkeypatch.setattr(plugin, "refine", lambda text: calls.append(1) or original(text))
        return calls

    def test_refined_matrix_is_computed_once_per_class_set_and_cache_is_only_read(self, fp32_clip, monkeypatch):
        model = coop_with_refiner(fp32_clip)
        model(images(2), labels(0, 1))
        plugin = model.text_plugin.eval()
        calls = self.count_refines(plugin, monkeypatch)
        cache = plugin.local_cache.clone()
        with torch.no_grad():
            first = [model(images(4, seed=s)) for s in range(3)]
            assert len(calls) == 1
            model.prompt_learner = PromptLearner(CLASSNAMES[:2], fp32_clip, ctx_init="a photo of a")
            assert model(images(4)).shape == (4, 2) and len(calls) == 2
            plugin.load_state_dict(plugin.state_dict())
            model(images(4))
            assert len(calls) == 3
            plugin.train().eval()
            model(images(4))
            assert len(calls) == 4
        assert torch.equal(plugin.local_cache, cache)
        fresh = coop_with_refiner(fp32_clip)
        fresh.text_plugin.load_state_dict(plugin.state_dict())
        fresh.text_plugin.eval()
        with torch.no_grad():
            torch.testing.assert_close(fresh(images(4, seed=2)), first[2])

    def test_cache_and_weights_survive_a_weights_only_round_trip(self, fp32_clip, tmp_path):
        model = coop_with_refiner(fp32_clip)
        model(images(2), labels(0, 1))
        torch.save(model.text_plugin.state_dict(), tmp_path / "refiner.pt")
        loaded = torch.load(tmp_path / "refiner.pt", weights_only=True)
        restored = refiner(fp32_clip, alpha=0.2)
        assert not torch.equal(restored.local_cache, model.text_plugin.local_cache)
        restored.load_state_dict(loaded)
        assert torch.equal(restored.local_cache, model.text_plugin.local_cache)


class TestPrecision:
    @pytest.mark.parametrize("mode, host", [(mode, host) for mode in ("fp16", "fp32", "amp") for host in ("coop", "cocoop")])
    def test_training_step_is_finite_in_every_precision(self, fp32_clip, mode, host):
        precision = Precision(mode, "cpu")
        as_loaded = clip.build_model(fp32_clip.state_dict())
        clip_model = precision.prepare_clip(as_loaded).requires_grad_(False)
        model = coop_with_refiner(clip_model, host=host)
        plugin = model.text_plugin
        with precision.autocast():
            logits, terms = model(images(2), labels(0, 1))
            loss = F.cross_entropy(logits.float(), labels(0, 1)) + sum(t.float() for t in terms.values())
        loss.backward()
        working = torch.float16 if mode == "fp16" else torch.float32
        assert plugin.aggregate.weight.dtype == plugin.local_cache.dtype == plugin.align.layers.fc1.weight.dtype == working
        assert plugin.align.layers.norm.weight.dtype == plugin.align.layers.norm.running_mean.dtype == torch.float32
        assert torch.isfinite(loss) and torch.isfinite(plugin.local_cache).all()
        for parameter in plugin.parameters():
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all()


def textrefiner_cfg(backbone="ViT-B/16", **values):
    cfg = CN()
    cfg.TRAINER = CN()
    cfg.MODEL = CN({"BACKBONE": CN({"NAME": backbone})})
    add_textrefiner_cfg(cfg)
    cfg.TRAINER.TEXTREFINER.update(values)
    return cfg


class TestBuilder:
    def test_off_by_default_and_built_from_the_config_when_enabled(self, fp32_clip):
        precision = Precision("fp32", "cpu")
        assert build_text_refiner(textrefiner_cfg(), fp32_clip, precision) is None
        plugin = build_text_refiner(textrefiner_cfg(ENABLED=True, SEM_LOSS=False, DISTILL=0.0), fp32_clip, precision)
        assert (plugin.semantic_weight, plugin.regularisation_weight, plugin.local_cache.shape) == (0.0, 0.0, (25, EMBED))
        assert build_text_refiner(textrefiner_cfg(ENABLED=True), fp32_clip, precision).semantic_weight == 1 / 50

    @pytest.mark.parametrize(
        "values, message",
        [
            ({"CACHE_UPDATE": "mean"}, "CACHE_UPDATE must be one of reference, ema"),
            ({"BALANCE": 0.0}, "SEM_LOSS False"),
            ({"MOMENTUM": 1.5}, "MOMENTUM"),
            ({"DISTILL": -1.0}, "DISTILL"),
        ],
    )
    def test_bad_values_are_refused_with_the_fix(self, fp32_clip, values, message):
        with pytest.raises(ValueError, match=message):
            build_text_refiner(textrefiner_cfg(ENABLED=True, **values), fp32_clip, Precision("fp32", "cpu"))

    def test_resnet_backbone_is_refused(self):
        resnet = make_tiny_clip(vision="resnet", embed_dim=EMBED, image_resolution=32)
        with pytest.raises(ValueError, match="needs a ViT"):
            build_text_refiner(textrefiner_cfg("RN50", ENABLED=True), resnet, Precision("fp32", "cpu"))
