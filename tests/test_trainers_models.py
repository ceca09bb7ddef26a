"""Model-level tests of the shared prompt blocks and the CoOp / CoCoOp / KgCoOp models (tiny CLIP, CPU)."""
import math

import pytest
import torch
import torch.nn.functional as F

import clip
from tests.helpers.tiny_clip import make_tiny_clip
from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner
from trainers.common import (
    Precision,
    PromptLearner,
    SquaredCosineWarmupLR,
    TextFeaturePlugin,
    ensure_finite_loss,
    frozen_text_features,
    load_module_state,
    normalize,
)
from trainers.coop import CoOpCLIP
from trainers.kgcoop import KgCoOpCLIP, knowledge_guided_score

CLASSNAMES = ["dog", "sea_lion", "golden retriever", "tabby cat"]
VIS_DIM, WIDTH, RESOLUTION = 32, 64, 32


@pytest.fixture(scope="module")
def fp32_clip():
    return make_tiny_clip(embed_dim=VIS_DIM, width=WIDTH, image_resolution=RESOLUTION).requires_grad_(False)


@pytest.fixture(scope="module")
def fp16_clip(fp32_clip):
    """As clip.load_clip_to_cpu returns it: OpenAI's fp16 conversion of the same weights."""
    return clip.build_model(fp32_clip.state_dict()).requires_grad_(False)


def images(batch, seed=0):
    return torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(seed))


def trainable_count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class TestPromptLearner:
    def test_random_generic_and_class_specific_context(self, fp32_clip):
        generic = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=8)
        specific = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=8, csc=True)
        assert generic.ctx.shape == (8, WIDTH) and trainable_count(generic) == 8 * WIDTH
        assert specific.ctx.shape == (4, 8, WIDTH) and trainable_count(specific) == 4 * 8 * WIDTH
        assert 0.01 < generic.ctx.std().item() < 0.03
        assert generic().shape == (4, generic.seq_len, WIDTH)
        assert generic.token_suffix.shape == (4, 77 - 1 - 8, WIDTH)

    def test_word_init_sets_n_ctx_ignores_csc_and_copies_embeddings(self, fp32_clip):
        learner = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=16, ctx_init="a_photo of a", csc=True)
        tokens = clip.tokenize(["a photo of a"])
        assert learner.n_ctx == 4 and learner.ctx.shape == (4, WIDTH)
        assert torch.equal(learner.ctx.data, fp32_clip.token_embedding(tokens)[0, 1:5])

    def test_word_init_rejects_multi_token_words(self, fp32_clip):
        with pytest.raises(ValueError, match="BPE tokens"):
            PromptLearner(CLASSNAMES, fp32_clip, ctx_init="a photograph of xylophonist")

    def test_underscores_become_spaces_and_eot_is_argmax(self, fp32_clip):
        learner = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=2)
        expected = clip.tokenize(["X X dog.", "X X sea lion.", "X X golden retriever.", "X X tabby cat."])
        assert torch.equal(learner.tokenized_prompts, expected)
        assert torch.equal(learner.eot_indices, expected.argmax(dim=-1))
        assert learner.seq_len == int(expected.argmax(dim=-1).max()) + 1

    def test_context_dtype_follows_clip(self, fp16_clip):
        assert PromptLearner(CLASSNAMES, fp16_clip, n_ctx=4).ctx.dtype == torch.float16

    @pytest.mark.parametrize("position", ["middle", "front"])
    @pytest.mark.parametrize("csc", [False, True])
    def test_class_token_positions_equal_hand_built_layout(self, fp32_clip, position, csc):
        learner = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=5, csc=csc, class_token_position=position)
        ctx = learner.expanded_context()
        rows = []
        for i, name_len in enumerate(learner.name_lens):
            prefix, suffix = learner.token_prefix[i : i + 1], learner.token_suffix[i : i + 1]
            name, rest = suffix[:, :name_len], suffix[:, name_len:]
            if position == "middle":
                parts = [prefix, ctx[i : i + 1, :2], name, ctx[i : i + 1, 2:], rest]
            else:
                parts = [prefix, name, ctx[i : i + 1], rest]
            rows.append(torch.cat(parts, dim=1))
        hand_built = torch.cat(rows)[:, : learner.seq_len]
        assert torch.equal(learner(), hand_built)

    def test_unknown_class_token_position_is_refused(self, fp32_clip):
        with pytest.raises(ValueError, match="end, middle, front"):
            PromptLearner(CLASSNAMES, fp32_clip, class_token_position="back")


class TestTextFeatures:
    def test_word_init_prompts_equal_clip_encode_text(self, fp32_clip):
        model = CoOpCLIP(fp32_clip, PromptLearner(CLASSNAMES, fp32_clip, ctx_init="a photo of a"))
        reference = frozen_text_features(fp32_clip, "a photo of a {}.", CLASSNAMES)
        torch.testing.assert_close(model.learned_text_features(), reference, atol=1e-5, rtol=1e-5)

    def test_frozen_features_are_cached_per_template_and_classes(self, fp32_clip, monkeypatch):
        calls = []
        original = fp32_clip.encode_text
        monkeypatch.setattr(fp32_clip, "encode_text", lambda ids: calls.append(len(ids)) or original(ids))
        first = frozen_text_features(fp32_clip, "itap of a {}.", CLASSNAMES)
        second = frozen_text_features(fp32_clip, "itap of a {}.", CLASSNAMES)
        other = frozen_text_features(fp32_clip, "itap of a {}.", CLASSNAMES[:2])
        assert first is second and calls == [4, 2]
        torch.testing.assert_close(first[:2], other)
        torch.testing.assert_close(first.norm(dim=-1), torch.ones(4))

    def test_template_without_slot_is_refused(self, fp32_clip):
        with pytest.raises(ValueError, match="slot"):
            frozen_text_features(fp32_clip, "a photo", CLASSNAMES)


class TestCoCoOp:
    def test_trainable_parameters_follow_reference_formula(self, fp32_clip):
        learner = ConditionalPromptLearner(CLASSNAMES, fp32_clip, n_ctx=4, ctx_init="")
        hidden = VIS_DIM // 16
        expected = 4 * WIDTH + (VIS_DIM * hidden + hidden) + (hidden * WIDTH + WIDTH)
        assert trainable_count(learner) == expected
        names = {name for name, p in learner.named_parameters() if p.requires_grad}
        assert names == {"ctx", "meta_net.linear1.weight", "meta_net.linear1.bias", "meta_net.linear2.weight", "meta_net.linear2.bias"}

    @pytest.mark.parametrize("chunk", [0, 3])
    def test_batched_text_features_equal_per_image_loop(self, fp32_clip, chunk):
        torch.manual_seed(0)
        learner = ConditionalPromptLearner(CLASSNAMES, fp32_clip, n_ctx=4, ctx_init="a photo of a")
        model = CoCoOpCLIP(fp32_clip, learner, text_chunk=chunk)
        batch = images(3)
        logits = model(batch)
        image_features = normalize(fp32_clip.visual(batch))
        looped = []
        for feature in image_features:
            ctx = learner.ctx + learner.meta_net(feature)
            prompts = torch.cat(
                [learner.token_prefix, ctx.expand(len(CLASSNAMES), -1, -1), learner.token_suffix], dim=1
            )
            text = normalize(fp32_clip.encode_text_from_embeddings(prompts, learner.eot_indices, truncate=False))
            looped.append(fp32_clip.logit_scale.exp() * feature @ text.t())
        assert logits.shape == (3, len(CLASSNAMES))
        torch.testing.assert_close(logits, torch.stack(looped), atol=1e-4, rtol=1e-5)

    def test_training_forward_returns_logits_and_no_loss(self, fp32_clip):
        model = CoCoOpCLIP(fp32_clip, ConditionalPromptLearner(CLASSNAMES, fp32_clip, 4, ""))
        logits, terms = model(images(2), torch.tensor([0, 1]))
        assert logits.shape == (2, 4) and terms == {}


class TestKgCoOp:
    def anchors(self, clip_model, template):
        return frozen_text_features(clip_model, template, CLASSNAMES)

    def test_term_is_zero_when_context_equals_hand_crafted_prompt(self, fp32_clip):
        learner = PromptLearner(CLASSNAMES, fp32_clip, ctx_init="a photo of a")
        model = KgCoOpCLIP(fp32_clip, learner, 8.0, self.anchors(fp32_clip, "a photo of a {}."))
        _, terms = model(images(2), torch.tensor([0, 3]))
        assert abs(terms["kg"].item()) < 1e-5

    def test_term_is_weighted_one_minus_mean_cosine(self, fp32_clip):
        torch.manual_seed(1)
        model = KgCoOpCLIP(fp32_clip, PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4), 8.0, self.anchors(fp32_clip, "a photo of a {}."))
        _, terms = model(images(2), torch.tensor([0, 3]))
        cosine = (model.learned_text_features() * model.anchor_features).sum(-1).mean()
        assert terms["kg"].item() > 1e-3
        assert terms["kg"].item() == pytest.approx(8.0 * (1 - cosine.item()), rel=1e-4)

    def test_score_of_identical_features_is_zero(self):
        features = normalize(torch.randn(5, 8))
        assert knowledge_guided_score(features, features).item() == pytest.approx(0.0, abs=1e-6)

    def test_only_the_context_is_a_parameter(self, fp32_clip):
        learner = PromptLearner(CLASSNAMES, fp32_clip, ctx_init="a photo of a")
        KgCoOpCLIP(fp32_clip, learner, 8.0, self.anchors(fp32_clip, "a photo of a {}."))
        assert [name for name, _ in learner.named_parameters()] == ["ctx"]


class TestPrecision:
    @pytest.mark.parametrize("mode", ["fp16", "fp32", "amp"])
    @pytest.mark.parametrize("host", ["coop", "cocoop"])
    def test_forward_and_backward_are_finite_on_cpu(self, fp32_clip, mode, host):
        precision = Precision(mode, "cpu")
        clip_model = precision.prepare_clip(clip.build_model(fp32_clip.state_dict())).requires_grad_(False)
        assert clip_model.dtype == (torch.float16 if mode == "fp16" else torch.float32)
        if host == "coop":
            model = CoOpCLIP(clip_model, PromptLearner(CLASSNAMES, clip_model, ctx_init="a photo of a"))
        else:
            model = CoCoOpCLIP(clip_model, ConditionalPromptLearner(CLASSNAMES, clip_model, 4, "a photo of a"))
        with precision.autocast():
            logits, _ = model(images(2), torch.tensor([0, 1]))
            loss = F.cross_entropy(logits.float(), torch.tensor([0, 1]))
        loss.backward()
        assert torch.isfinite(logits).all() and torch.isfinite(loss)
        assert torch.isfinite(model.prompt_learner.ctx.grad).all()
        assert model.prompt_learner.ctx.dtype == clip_model.dtype
        assert precision.make_grad_scaler() is None

    def test_unknown_precision_is_refused(self):
        with pytest.raises(ValueError, match="fp16, fp32, amp"):
            Precision("half", "cpu")

    def test_non_finite_loss_stops_with_position_and_hint(self):
        ensure_finite_loss(torch.tensor(1.5), 0, 10, 0, 5, "fp16")
        with pytest.raises(FloatingPointError, match=r"epoch \[3/10\] batch \[5/7\].*TRAINER.COOP.PREC amp or fp32"):
            ensure_finite_loss(torch.tensor(float("nan")), 2, 10, 4, 7, "fp16", "TRAINER.COOP.PREC")


class TestCheckpointLoading:
    def test_class_dependent_buffers_are_dropped_on_new_classes(self, fp32_clip):
        base = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4)
        new = PromptLearner(["zebra", "dump_truck"], fp32_clip, n_ctx=4)
        prefix_before = new.token_suffix.clone()
        load_module_state(new, {f"module.{k}": v for k, v in base.state_dict().items()}, "ckpt")
        assert torch.equal(new.ctx, base.ctx) and torch.equal(new.token_suffix, prefix_before)

    def test_checkpoint_of_another_trainer_is_refused(self, fp32_clip):
        cocoop = ConditionalPromptLearner(CLASSNAMES, fp32_clip, 4, "")
        coop = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4)
        with pytest.raises(ValueError, match=r"meta_net\.linear1\.weight.*another trainer"):
            load_module_state(coop, cocoop.state_dict(), "cocoop.pth")

    def test_incompatible_shape_names_key_shapes_and_fix(self, fp32_clip):
        saved = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=8).state_dict()
        with pytest.raises(ValueError, match=r"'ctx' has shape \(8, 64\) but this model expects \(4, 64\).*N_CTX"):
            load_module_state(PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4), saved, "ckpt")

    def test_class_specific_context_on_other_classes_explains_csc(self, fp32_clip):
        saved = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4, csc=True).state_dict()
        with pytest.raises(ValueError, match="CSC"):
            load_module_state(PromptLearner(["zebra"], fp32_clip, n_ctx=4, csc=True), saved, "ckpt")

    def test_ignored_prefixes_skip_upstream_dead_modules(self, fp32_clip):
        learner = PromptLearner(CLASSNAMES, fp32_clip, n_ctx=4)
        saved = {**learner.state_dict(), "bias_vectors": torch.zeros(1, 512), "meta_net.linear1.weight": torch.zeros(2)}
        load_module_state(learner, saved, "kgcoop.pth", ignored_prefixes=("bias_vectors", "meta_net."))


class RecordingPlugin(TextFeaturePlugin):
    """Negates the text features and reports a constant term, recording the shapes it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, text_features, image_features, visual_output, labels):
        self.seen.append(tuple(text_features.shape))
        return -text_features, {"plugin": torch.tensor(0.5)}


class TestTextPluginHook:
    @pytest.mark.parametrize("host", ["coop", "kgcoop", "cocoop"])
    def test_every_host_routes_text_features_through_the_plugin(self, fp32_clip, host):
        learner_cls = ConditionalPromptLearner if host == "cocoop" else PromptLearner
        learner = learner_cls(CLASSNAMES, fp32_clip, n_ctx=4, ctx_init="")
        anchors = frozen_text_features(fp32_clip, "a photo of a {}.", CLASSNAMES)
        hosts = {
            "coop": lambda plugin: CoOpCLIP(fp32_clip, learner, text_plugin=plugin),
            "cocoop": lambda plugin: CoCoOpCLIP(fp32_clip, learner, text_plugin=plugin),
            "kgcoop": lambda plugin: KgCoOpCLIP(fp32_clip, learner, 1.0, anchors, text_plugin=plugin),
        }
        plain = hosts[host](None)(images(2))
        model = hosts[host](RecordingPlugin())
        logits, terms = model(images(2), torch.tensor([0, 1]))
        torch.testing.assert_close(logits, -plain)
        assert terms["plugin"].item() == 0.5
        expected_shape = (2, 4, VIS_DIM) if host == "cocoop" else (4, VIS_DIM)
        assert model.text_plugin.seen == [expected_shape]


class TestSquaredCosineSchedule:
    def test_reproduces_kgcoop_author_log_and_warmup(self):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.002)
        scheduler = SquaredCosineWarmupLR(optimizer, max_epoch=100, warmup_epoch=1, warmup_lr=1e-5)
        lrs = [optimizer.param_groups[0]["lr"]]
        for _ in range(60):
            optimizer.step()
            scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        assert lrs[0] == pytest.approx(1e-5)
        assert lrs[1] == pytest.approx(0.002)
        assert [lrs[46], lrs[50], lrs[51]] == pytest.approx([6.686703e-04, 5.319041e-04, 5.0e-04], rel=1e-6)
        plain_cosine = 0.002 * (1 + math.cos(math.pi * 49 / 100)) / 2
        assert lrs[50] < plain_cosine

    def test_state_round_trips_through_weights_only_load(self, tmp_path):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.002)
        scheduler = SquaredCosineWarmupLR(optimizer, max_epoch=10, warmup_epoch=1)
        for _ in range(3):
            optimizer.step()
            scheduler.step()
        torch.save(scheduler.state_dict(), tmp_path / "sched.pt")
        resumed = SquaredCosineWarmupLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.002), 10, 1)
        resumed.load_state_dict(torch.load(tmp_path / "sched.pt", weights_only=True))
        assert resumed.last_epoch == 3 and resumed.get_last_lr() == scheduler.get_last_lr()
