"""CLIP model: agreement with open_clip, architecture inference, fp16 conversion, errors."""
import open_clip
import pytest
import torch
import torch.nn.functional as F

import clip
from clip.layers import LayerNorm, attention_heads, openai_heads
from clip.model import CLIP, HEAD_WIDTH_KEY, infer_config
from tests.helpers.tiny_clip import make_tiny_clip, randomize_, single_threaded_torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    with single_threaded_torch():
        yield


TEXTS = ["a photo of a dog.", "an origami crane on a red table", "x", "the 3 best pizzas in naples!!"]


def open_clip_twin(model, vision):
    """open_clip's independent implementation of the same tiny architecture."""
    if vision == "vit":
        vision_cfg = dict(layers=2, width=64, head_width=16, patch_size=8, image_size=32)
    else:
        vision_cfg = dict(layers=(1, 1, 1, 1), width=8, head_width=16, image_size=32)
    text_cfg = dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2)
    twin = open_clip.model.CLIP(32, vision_cfg, text_cfg, quick_gelu=True)
    state_dict = {k: v for k, v in model.state_dict().items() if k != HEAD_WIDTH_KEY}
    twin.load_state_dict(state_dict, strict=True)
    return twin.eval()


@pytest.mark.parametrize("vision,vision_layers", [("vit", 2), ("resnet", 1)])
def test_encoders_match_open_clip(vision, vision_layers):
    model = randomize_(make_tiny_clip(vision, vision_layers=vision_layers, seed=1), seed=2)
    twin = open_clip_twin(model, vision)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ids = clip.tokenize(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), twin.encode_image(images), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.encode_text(ids), twin.encode_text(ids), atol=1e-5, rtol=1e-5)


def test_encode_text_truncation_equals_full_length_computation():
    model = randomize_(make_tiny_clip())
    ids = clip.tokenize(TEXTS)
    with torch.no_grad():
        full = model.encode_text_from_embeddings(model.token_embedding(ids), ids.argmax(-1), truncate=False)
        torch.testing.assert_close(model.encode_text(ids), full, atol=1e-6, rtol=1e-6)


def test_text_attention_is_causal():
    model = randomize_(make_tiny_clip())
    ids = clip.tokenize(["a photo of a dog"])
    changed = ids.clone()
    changed[0, 7:] = 1234
    eot = torch.tensor([5])
    with torch.no_grad():
        a = model.encode_text_from_embeddings(model.token_embedding(ids), eot, truncate=False)
        b = model.encode_text_from_embeddings(model.token_embedding(changed), eot, truncate=False)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("vision", ["vit", "resnet"])
def test_build_model_infers_tiny_architecture_and_loads_strictly(vision):
    model = randomize_(make_tiny_clip(vision, vision_layers=1, layers=3))
    rebuilt = clip.build_model(model.state_dict())
    assert not rebuilt.training
    assert type(rebuilt.visual) is type(model.visual)
    assert rebuilt.transformer.layers == 3
    rebuilt_state = rebuilt.state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(rebuilt_state[key], value.to(rebuilt_state[key].dtype), atol=0, rtol=0)


TEXT_TOWER = dict(context_length=77, vocab_size=49408, transformer_layers=12)
REAL_ARCHITECTURES = {
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     transformer_width=512, transformer_heads=8, **TEXT_TOWER),
    "ViT-L/14@336px": dict(embed_dim=768, image_resolution=336, vision_layers=24, vision_width=1024,
                           vision_patch_size=14, transformer_width=768, transformer_heads=12, **TEXT_TOWER),
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, transformer_width=512, transformer_heads=8, **TEXT_TOWER),
    "RN50x4": dict(embed_dim=640, image_resolution=288, vision_layers=(4, 6, 10, 6), vision_width=80,
                   vision_patch_size=None, transformer_width=640, transformer_heads=10, **TEXT_TOWER),
}


@pytest.mark.parametrize("name", sorted(REAL_ARCHITECTURES))
def test_infer_config_reads_real_openai_sizes(name):
    with torch.device("meta"):
        state_dict = CLIP(**REAL_ARCHITECTURES[name]).state_dict()
    assert vars(infer_config(state_dict)) == {**REAL_ARCHITECTURES[name], "head_width": None}


@pytest.mark.parametrize("vision,vision_width", [("vit", 128), ("resnet", 8)])
def test_openai_format_state_dict_builds_openai_heads_and_matches_open_clip(vision, vision_width):
    """A small OpenAI-format state dict (no recorded head width) gives OpenAI's network:
    the same step-0 logits as open_clip's model built from the same state dict."""
    source = make_tiny_clip(vision, width=128, vision_width=vision_width, vision_layers=1, seed=3, head_width=None)
    state_dict = randomize_(source, seed=4).state_dict()
    assert HEAD_WIDTH_KEY not in state_dict
    model = clip.build_model(dict(state_dict)).float()
    reference = open_clip.model.build_model_from_openai_state_dict(dict(state_dict)).float().eval()
    assert model.transformer.resblocks[0].attn.heads == 2
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ids = clip.tokenize(TEXTS)
    with torch.no_grad():
        logits, _ = model(images, ids)
        image_features = reference.encode_image(images, normalize=True)
        text_features = reference.encode_text(ids, normalize=True)
        expected = reference.logit_scale.exp() * image_features @ text_features.t()
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_recorded_head_width_overrides_openai_rule():
    state_dict = make_tiny_clip(width=128, vision_width=128).state_dict()
    assert int(state_dict[HEAD_WIDTH_KEY]) == 16
    model = clip.build_model(state_dict)
    assert model.transformer.resblocks[0].attn.heads == 8
    assert model.visual.transformer.resblocks[0].attn.heads == 8


def test_openai_head_rule():
    assert [openai_heads(w) for w in (64, 96, 128, 512, 768, 1024)] == [1, 1, 2, 8, 12, 16]
    with pytest.raises(ValueError, match="width 32 has no 64-channel attention head"):
        openai_heads(32)


def test_attention_heads_rule():
    assert [attention_heads(w) for w in (512, 640, 768, 1024, 2048)] == [8, 10, 12, 16, 32]
    assert [attention_heads(w) for w in (8, 32, 64, 128)] == [1, 2, 4, 8]


def test_fp16_conversion_matches_openai_convert_weights():
    model = clip.build_model(make_tiny_clip().state_dict())
    half = {
        "visual.conv1.weight", "visual.proj", "text_projection",
        "transformer.resblocks.0.attn.in_proj_weight", "transformer.resblocks.0.attn.in_proj_bias",
        "transformer.resblocks.0.attn.out_proj.weight", "transformer.resblocks.0.mlp.c_fc.bias",
    }
    full = {
        "token_embedding.weight", "positional_embedding", "visual.class_embedding",
        "visual.positional_embedding", "ln_final.weight", "visual.ln_pre.bias", "logit_scale",
    }
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    assert {dtypes[k] for k in half} == {torch.float16}
    assert {dtypes[k] for k in full} == {torch.float32}
    assert model.dtype == torch.float16
    resnet = clip.build_model(make_tiny_clip("resnet", vision_layers=1).state_dict())
    assert resnet.visual.attnpool.q_proj.weight.dtype == torch.float16
    assert resnet.visual.layer1[0].bn1.weight.dtype == torch.float32


def test_fp16_model_runs_and_stays_close_to_fp32():
    fp16 = clip.build_model(make_tiny_clip().state_dict())
    fp32 = clip.build_model(make_tiny_clip().state_dict()).float()
    ids = clip.tokenize(TEXTS)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        text, image = fp16.encode_text(ids), fp16.encode_image(images)
        assert text.dtype == image.dtype == torch.float16
        torch.testing.assert_close(text.float(), fp32.encode_text(ids), atol=2e-2, rtol=2e-2)
        torch.testing.assert_close(image.float(), fp32.encode_image(images), atol=2e-2, rtol=2e-2)


def test_layer_norm_computes_in_fp32_and_casts_back():
    norm = LayerNorm(16)
    x = (torch.randn(4, 16) * 300).half()
    out = norm(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out, F.layer_norm(x.float(), (16,)).half())


def test_clip_forward_gives_scaled_cosine_logits():
    model = make_tiny_clip()
    logits_per_image, logits_per_text = model(torch.randn(2, 3, 32, 32), clip.tokenize(TEXTS))
    assert logits_per_image.shape == (2, len(TEXTS))
    torch.testing.assert_close(logits_per_text, logits_per_image.t())
    assert logits_per_image.abs().max() <= 1 / 0.07 + 1e-4


def test_unknown_state_dict_shapes_raise_clear_errors():
    state_dict = make_tiny_clip().state_dict()
    missing_width = {k: v for k, v in state_dict.items() if k != "ln_final.weight"}
    with pytest.raises(ValueError, match=r"no key 'ln_final.weight'.*OpenAI CLIP checkpoint"):
        clip.build_model(missing_width)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra.weight'\].*OpenAI CLIP checkpoint"):
        clip.build_model({**state_dict, "extra.weight": torch.zeros(1)})
    missing_block = {k: v for k, v in state_dict.items() if k != "visual.transformer.resblocks.1.ln_2.bias"}
    with pytest.raises(ValueError, match=r"missing keys \['visual.transformer.resblocks.1.ln_2.bias'\]"):
        clip.build_model(missing_block)
    wrong_shape = {**state_dict, "visual.ln_post.bias": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"visual.ln_post.bias: \(3,\) vs \(64,\)"):
        clip.build_model(wrong_shape)


def test_build_model_drops_checkpoint_only_entries():
    state_dict = make_tiny_clip().state_dict()
    extras = {
        "input_resolution": torch.tensor(32),
        "context_length": torch.tensor(77),
        "vocab_size": torch.tensor(49408),
    }
    assert clip.build_model({**state_dict, **extras}).visual.input_resolution == 32


def test_miniclip_records_its_16_channel_heads():
    """MiniCLIP was trained with 16-channel heads; its checkpoint says so, so it loads as trained."""
    state_dict = torch.load(clip.loader._LOCAL_MODELS["MiniCLIP"][0], weights_only=True)
    assert int(state_dict[HEAD_WIDTH_KEY]) == 16
    model = clip.build_model(state_dict)
    assert model.transformer.resblocks[0].attn.heads == 96 // 16
    assert model.visual.transformer.resblocks[0].attn.heads == 128 // 16
