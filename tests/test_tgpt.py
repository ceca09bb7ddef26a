"""TGP-T's model on a tiny CLIP (CPU): shapes, cut sequences, token targets, head init and base-to-new rows."""
import pytest
import torch
import torch.nn.functional as F

import clip
from tests.helpers.tiny_clip import make_tiny_clip
from trainers.tgpt import (
    GENERIC_TEMPLATES,
    TGPTCLIP,
    TGPTPromptLearner,
    WiseFTEvaluator,
    category_targets,
    check_tgpt_cfg,
    load_tgpt_checkpoint,
    mined_templates,
)
from dassl.config import apply_cfg_extensions, get_cfg_default

CLASSES = ["red", "dark_grey", "blue"]
TEMPLATES = ["a photo of a {}.", "a cropped photo of the {}.", "itap of a {}."]


@pytest.fixture(scope="module")
def tiny_clip():
    return make_tiny_clip(embed_dim=32, width=64, seed=0)


def build(clip_model, classnames=CLASSES, **kwargs):
    torch.manual_seed(0)
    learner = TGPTPromptLearner(clip_model, classnames, TEMPLATES, **kwargs)
    return TGPTCLIP(clip_model, learner)


def bonder_parameters(width, image_width):
    """Parameters of one Bonder block (spec 2.2), written out sub-layer by sub-layer."""
    self_attention = 2 * width + 3 * width * width + width * width + width
    cross_attention = 2 * width + 2 * image_width + width * image_width + image_width * width + width
    mlp = 2 * width + 2 * (width * width + width)
    return self_attention + cross_attention + mlp


def tgpt_parameters(width, image_width, n_classes, n_category=32, n_content=64):
    return 2 * bonder_parameters(width, image_width) + (n_category + n_content) * width + n_classes * 2 * image_width


def test_trainable_parameters_follow_the_spec_shapes(tiny_clip):
    assert bonder_parameters(512, 512) == 2_103_296
    assert tgpt_parameters(512, 512, 0) == 4_255_744 and tgpt_parameters(512, 512, 10) == 4_255_744 + 10_240
    model = build(tiny_clip)
    learner = model.prompt_learner
    assert sum(p.numel() for p in learner.category_bonder.parameters()) == bonder_parameters(64, 32)
    assert sum(p.numel() for p in learner.parameters()) == tgpt_parameters(64, 32, len(CLASSES))
    assert learner.head.shape == (3, 64) and learner.category_queries.shape == (32, 64)


def test_ctx_init_words_seed_the_first_category_queries(tiny_clip):
    learner = build(tiny_clip).prompt_learner
    ids = clip.tokenize("a photo of a")[0, 1:5]
    assert torch.equal(learner.category_queries[:4].detach(), tiny_clip.token_embedding.weight[ids])
    assert not torch.equal(learner.category_queries[4].detach(), tiny_clip.token_embedding.weight[ids[0]])


@pytest.mark.parametrize("n_prompts,eot,length", [(32, 34, 35), (64, 66, 67)])
def test_cut_sequences_give_the_full_length_text_features(tiny_clip, n_prompts, eot, length):
    model = build(tiny_clip)
    prompts = torch.randn(2, n_prompts, 64)
    sequences, eot_indices = model.text_sequences(prompts)
    assert sequences.shape == (2, length, 64) and eot_indices.tolist() == [eot, eot]
    padding = tiny_clip.token_embedding.weight[0].expand(2, 77 - length, 64)
    full = torch.cat([sequences, padding], dim=1)
    cut_features = tiny_clip.encode_text_from_embeddings(sequences, eot_indices)
    full_features = tiny_clip.encode_text_from_embeddings(full, eot_indices, truncate=False)
    torch.testing.assert_close(cut_features, full_features, rtol=1e-5, atol=1e-5)
    ids = clip.tokenize(" ".join(["x"] * n_prompts) + ".")[0]
    assert int(ids.argmax()) == eot, "the layout is the tokenised 'X ... X.' pseudo-sentence"


def test_category_targets_are_the_tokenised_class_sentence():
    names = ["dark_grey", "Boeing 737-200 (freighter)", "red"]
    targets = category_targets(names, 32)
    sentences = ["a photo of a dark grey.", "a photo of a Boeing 737-200  freighter .", "a photo of a red."]
    assert torch.equal(targets, clip.tokenize(sentences)[:, 1:33])
    assert targets[2, :7].tolist() == clip.tokenize("a photo of a red.")[0, 1:8].tolist()
    assert (targets[2, 7:] == 0).all(), "positions after EOT are padding"


def test_token_loss_ignores_padding_positions(tiny_clip):
    model = build(tiny_clip)
    prompts = torch.randn(2, 32, 64)
    targets = category_targets(["red", "dark_grey"], 32)
    logits = prompts @ tiny_clip.token_embedding.weight.t()
    kept = targets != 0
    expected = F.cross_entropy(logits[kept], targets[kept], label_smoothing=0.1)
    torch.testing.assert_close(model.token_loss(prompts, targets), expected)
    changed = prompts.clone()
    changed[~kept] = 100.0
    torch.testing.assert_close(model.token_loss(changed, targets), expected)


def test_head_starts_as_the_normalised_duplicated_template_mean(tiny_clip):
    learner = build(tiny_clip).prompt_learner
    with torch.no_grad():
        features = torch.stack(
            [tiny_clip.encode_text(clip.tokenize([t.format(name) for name in CLASSES])) for t in TEMPLATES]
        )
    mean = features.mean(dim=0)
    expected = torch.cat([mean, mean], dim=1)
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(learner.head.detach(), expected)
    torch.testing.assert_close(learner.zero_shot_head, expected)
    assert "zero_shot_head" not in learner.state_dict()


def test_raw_class_names_format_the_templates(tiny_clip):
    with_underscore = build(tiny_clip, ["dark_grey"]).prompt_learner.head
    with_space = build(tiny_clip, ["dark grey"]).prompt_learner.head
    assert not torch.allclose(with_underscore, with_space)


def test_base_checkpoint_gives_learned_rows_to_known_names_and_zero_shot_rows_to_new(tiny_clip, tmp_path):
    base = build(tiny_clip, ["red", "dark_grey", "blue"]).prompt_learner
    with torch.no_grad():
        base.head.add_(torch.randn_like(base.head))
        base.category_queries.add_(1.0)
    path = tmp_path / "model.pth.tar-5"
    torch.save({"state_dict": base.state_dict(), "epoch": 5}, path)

    mixed = build(tiny_clip, ["blue", "violet", "red"]).prompt_learner
    zero_shot = mixed.zero_shot_head.clone()
    epoch, used = load_tgpt_checkpoint(mixed, str(path))
    assert (epoch, used) == (5, 2)
    torch.testing.assert_close(mixed.head[0].detach(), base.head[2].detach())
    torch.testing.assert_close(mixed.head[2].detach(), base.head[0].detach())
    torch.testing.assert_close(mixed.head[1].detach(), zero_shot[1])
    torch.testing.assert_close(mixed.category_queries.detach(), base.category_queries.detach())
    assert mixed.classnames == ["blue", "violet", "red"]


def test_checkpoint_without_class_names_is_refused(tiny_clip, tmp_path):
    learner = build(tiny_clip).prompt_learner
    state = {k: v for k, v in learner.state_dict().items() if k != "_extra_state"}
    torch.save({"state_dict": state, "epoch": 1}, tmp_path / "ckpt")
    with pytest.raises(ValueError, match="class names"):
        load_tgpt_checkpoint(learner, str(tmp_path / "ckpt"))


@pytest.mark.parametrize("n_classes", [3, 40])
def test_text_encoder_sees_two_sequences_per_image_whatever_the_classes(tiny_clip, monkeypatch, n_classes):
    model = build(tiny_clip, [f"class {i}" for i in range(n_classes)])
    calls = []
    encode = tiny_clip.encode_text_from_embeddings

    def counting(embeddings, eot_indices, truncate=True):
        calls.append(tuple(embeddings.shape))
        return encode(embeddings, eot_indices, truncate)

    monkeypatch.setattr(tiny_clip, "encode_text_from_embeddings", counting)
    images, labels = torch.randn(5, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1])
    logits, terms = model(images, labels, torch.randint(1, 1000, (5, 64)))
    sum(terms.values()).backward()
    assert calls == [(5, 35, 64), (5, 67, 64)]
    assert logits.shape == (5, n_classes) and set(terms) == {"category", "content"}


def test_insert_cls_writes_the_image_feature_into_slot_four():
    clip_model = make_tiny_clip(embed_dim=64, width=64, seed=1)
    model = build(clip_model, insert_cls=True)
    images = torch.randn(2, 3, 32, 32)
    logits, terms = model(images, torch.tensor([0, 1]))
    terms["category"].backward()
    grad = model.prompt_learner.category_queries.grad
    assert grad[4].abs().sum() == 0 and grad[3].abs().sum() > 0
    plain = build(clip_model)
    assert not torch.allclose(plain(images, torch.tensor([0, 1]))[0], logits)


def test_insert_cls_needs_equal_widths(tiny_clip):
    with pytest.raises(ValueError, match="INSERT_CLS False"):
        build(tiny_clip, insert_cls=True)


def test_evaluation_returns_plain_and_wiseft_logits(tiny_clip, capsys):
    model = build(tiny_clip).eval()
    with torch.no_grad():
        model.prompt_learner.head.mul_(-1.0)
        plain, wiseft = model(torch.randn(4, 3, 32, 32))
    assert torch.allclose(wiseft, torch.zeros_like(wiseft), atol=1e-5), "0.5 W + 0.5 W_zs cancels when W = -W_zs"

    class Recording:
        def reset(self):
            self.seen = []

        def process(self, mo, gt):
            self.seen.append(mo)

        def evaluate(self):
            print("* accuracy: 50.00%")
            return {"accuracy": 50.0}

    evaluator = WiseFTEvaluator(Recording())
    evaluator.process((torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])), torch.tensor([1, 0]))
    results = evaluator.evaluate()
    assert results == {"accuracy": 50.0, "wiseft_accuracy": 50.0}
    assert capsys.readouterr().out.endswith("* accuracy: 50.00%\n* wiseft_accuracy: 50.00%\n")


def test_mined_templates_per_dataset_and_generic_fallback(capsys):
    assert len(mined_templates("EuroSAT")) == 21
    assert mined_templates("ImageNetSketch") == mined_templates("ImageNet")
    assert mined_templates("MyOwnSet") == list(GENERIC_TEMPLATES)
    assert "No mined templates for dataset 'MyOwnSet'" in capsys.readouterr().out


@pytest.mark.parametrize(
    "key,value,message",
    [("PREC", "fp16", "fp32, amp, bf16"), ("N_Q_CONTENT", 0, "at least 1"), ("WISEFT_RATIO", 1.5, r"\[0, 1\]")],
)
def test_bad_tgpt_settings_are_refused(key, value, message):
    cfg = apply_cfg_extensions(get_cfg_default())
    cfg.TRAINER.TGPT[key] = value
    with pytest.raises(ValueError, match=message):
        check_tgpt_cfg(cfg.TRAINER.TGPT)
