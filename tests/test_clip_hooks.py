"""Prompt-learning hooks: text from embeddings, deep/generated visual prompts, tokens, CLS attention."""
import pytest
import torch

import clip
from tests.helpers.tiny_clip import make_tiny_clip, randomize_, single_threaded_torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    with single_threaded_torch():
        yield


BATCH = 2
NUM_IMAGE_TOKENS = (32 // 8) ** 2 + 1


@pytest.fixture(scope="module")
def model():
    return randomize_(make_tiny_clip(vision_layers=3, seed=3), seed=4)


@pytest.fixture(scope="module")
def images():
    return torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def reference_visual(visual, images, inserted):
    """Hand-written loop: before block i append ``inserted(i, x)`` (list of B x n x width), keep the image tokens after."""
    x = visual.embed(images)
    streams = []
    for index, block in enumerate(visual.transformer.resblocks):
        streams.append(x)
        x = block(torch.cat([x, *inserted(index, x)], dim=1))[:, :NUM_IMAGE_TOKENS]
    return visual.ln_post(x[:, 0]) @ visual.proj, streams


def reference_cls_attention(block, stream):
    """Head-averaged softmax of the CLS query over all keys of ``stream``, from in_proj by hand."""
    attn = block.attn
    width = stream.shape[-1]
    q, k, _ = torch.nn.functional.linear(block.ln_1(stream), attn.in_proj_weight, attn.in_proj_bias).split(width, -1)
    heads = attn.heads
    q = q.view(BATCH, -1, heads, width // heads).transpose(1, 2)
    k = k.view(BATCH, -1, heads, width // heads).transpose(1, 2)
    probs = (q @ k.transpose(-1, -2) / (width // heads) ** 0.5).softmax(-1)
    return probs.mean(1)[:, 0]


def test_text_from_token_embeddings_equals_encode_text(model):
    ids = clip.tokenize(["a photo of a cat.", "a satellite photo of a very large annual crop field"])
    with torch.no_grad():
        embeddings = model.token_embedding(ids)
        expected = model.encode_text(ids)
        truncated = model.encode_text_from_embeddings(embeddings, ids.argmax(-1))
        full = model.encode_text_from_embeddings(embeddings, ids.argmax(-1), truncate=False)
    torch.testing.assert_close(truncated, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(full, expected, atol=1e-6, rtol=1e-6)


def test_text_from_embeddings_with_arbitrary_eot_and_short_sequences(model):
    embeddings = torch.randn(3, 40, 64, generator=torch.Generator().manual_seed(6))
    eot = torch.tensor([34, 5, 39])
    with torch.no_grad():
        out = model.encode_text_from_embeddings(embeddings, eot)
        for row in range(3):
            single = model.encode_text_from_embeddings(embeddings[row : row + 1, : eot[row] + 1], [int(eot[row])])
            torch.testing.assert_close(out[row : row + 1], single, atol=1e-6, rtol=1e-6)
    assert out.shape == (3, 32)


def test_text_from_embeddings_rejects_bad_input(model):
    with pytest.raises(ValueError, match=r"expected embeddings of shape \(N, L, 64\)"):
        model.encode_text_from_embeddings(torch.zeros(2, 5, 63), [1, 2])
    with pytest.raises(ValueError, match="exceeds the context length 77"):
        model.encode_text_from_embeddings(torch.zeros(1, 78, 64), [3])
    with pytest.raises(ValueError, match=r"EOT indices must lie in \[0, 5\)"):
        model.encode_text_from_embeddings(torch.zeros(2, 5, 64), [1, 5])
    with pytest.raises(ValueError, match="expected 2 EOT indices"):
        model.encode_text_from_embeddings(torch.zeros(2, 5, 64), [1])


def test_text_gradient_reaches_prompt_embeddings(model):
    context = torch.zeros(1, 4, 64, requires_grad=True)
    prefix = model.token_embedding(clip.tokenize(["X X X X dog."]))[:, :1].detach()
    suffix = model.token_embedding(clip.tokenize(["X X X X dog."]))[:, 5:].detach()
    model.encode_text_from_embeddings(torch.cat([prefix, context, suffix], 1), [7]).sum().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0


def test_features_without_prompts_equal_encode_image(model, images):
    with torch.no_grad():
        out = model.visual.forward_features(images)
        assert isinstance(out, clip.VisualOutput)
        assert torch.equal(out.pooled, model.encode_image(images))
    assert out.tokens is None and out.attention is None


def test_deep_prompts_match_hand_written_block_loop(model, images):
    generator = torch.Generator().manual_seed(7)
    shared = torch.randn(3, 64, generator=generator)
    per_image = torch.randn(BATCH, 2, 64, generator=generator)
    deep = [shared, None, per_image]
    by_block = {0: [shared.expand(BATCH, -1, -1)], 1: [], 2: [per_image]}
    with torch.no_grad():
        out = model.visual.forward_features(images, deep_prompts=deep)
        expected, _ = reference_visual(model.visual, images, lambda i, x: by_block[i])
    torch.testing.assert_close(out.pooled, expected, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(out.pooled, model.encode_image(images))


def test_prompt_fn_sees_stream_without_earlier_prompts_and_follows_deep_prompts(model, images):
    deep = [torch.randn(4, 64), torch.randn(1, 64), None]
    seen = {}

    def generate(index, x):
        seen[index] = x
        return None if index == 1 else x[:, :3] * 0.5 + index

    with torch.no_grad():
        out = model.visual.forward_features(images, deep_prompts=deep, prompt_fn=generate)

        def inserted(i, x):
            extra = [] if deep[i] is None else [deep[i].expand(BATCH, -1, -1)]
            return extra + ([] if i == 1 else [x[:, :3] * 0.5 + i])

        expected, streams = reference_visual(model.visual, images, inserted)
    assert sorted(seen) == [0, 1, 2]
    for index, stream in enumerate(streams):
        assert seen[index].shape == (BATCH, NUM_IMAGE_TOKENS, 64)
        torch.testing.assert_close(seen[index], stream, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.pooled, expected, atol=1e-6, rtol=1e-6)


def test_deep_prompts_receive_gradients(model, images):
    prompts = torch.zeros(3, 2, 64, requires_grad=True)
    model.visual.forward_features(images, deep_prompts=prompts).pooled.sum().backward()
    assert prompts.grad.abs().sum(dim=(1, 2)).gt(0).all()


def test_token_modes(model, images):
    with torch.no_grad():
        plain = model.visual.forward_features(images, tokens="proj")
        normed = model.visual.forward_features(images, tokens="ln_post_proj", deep_prompts=[torch.randn(2, 64)] * 3)
        x = model.visual.transformer(model.visual.embed(images), batch_first=True)
    assert plain.tokens.shape == normed.tokens.shape == (BATCH, NUM_IMAGE_TOKENS, 32)
    torch.testing.assert_close(plain.tokens, x @ model.visual.proj, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(normed.tokens[:, 0], normed.pooled, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(plain.tokens[:, 0], plain.pooled)


def test_cls_attention_is_last_block_softmax_row_without_renormalising(model, images):
    prompts = torch.randn(3, 64, generator=torch.Generator().manual_seed(8))
    seen = {}
    with torch.no_grad():
        plain = model.visual.forward_features(images)
        out = model.visual.forward_features(images, cls_attention=True, prompt_fn=lambda i, x: seen.update({i: x}))
        prompted = model.visual.forward_features(images, cls_attention=True, deep_prompts=[None, None, prompts])
        last = model.visual.transformer.resblocks[-1]
        full_row = reference_cls_attention(last, seen[2])
        _, streams = reference_visual(model.visual, images, lambda i, x: [prompts.expand(BATCH, -1, -1)] if i == 2 else [])
        prompted_row = reference_cls_attention(last, torch.cat([streams[2], prompts.expand(BATCH, -1, -1)], 1))
    assert torch.equal(out.pooled, plain.pooled)
    assert out.attention.shape == (BATCH, NUM_IMAGE_TOKENS - 1)
    assert out.attention.min() >= 0
    torch.testing.assert_close(full_row.sum(-1), torch.ones(BATCH))
    torch.testing.assert_close(out.attention, full_row[:, 1:], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.attention.sum(-1) + full_row[:, 0], torch.ones(BATCH))
    torch.testing.assert_close(prompted.attention, prompted_row[:, 1:NUM_IMAGE_TOKENS], atol=1e-6, rtol=1e-6)
    assert (prompted.attention.sum(-1) + prompted_row[:, 0] < 1).all()


def test_forward_features_rejects_bad_requests(model, images):
    with pytest.raises(ValueError, match="tokens must be one of"):
        model.visual.forward_features(images, tokens="all")
    with pytest.raises(ValueError, match=r"one entry per block \(3\), got 2"):
        model.visual.forward_features(images, deep_prompts=[None, None])
    with pytest.raises(ValueError, match=r"deep_prompts\[1\] has shape \(3, 1, 64\); expected \(n, 64\) or \(2, n, 64\)"):
        model.visual.forward_features(images, deep_prompts=[None, torch.zeros(3, 1, 64), None])
    with pytest.raises(ValueError, match="prompt_fn output for block 0"):
        model.visual.forward_features(images, prompt_fn=lambda i, x: torch.zeros(BATCH, 2, 10))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 32, 32\)"):
        model.visual.forward_features(torch.zeros(1, 3, 224, 224))


def test_resnet_features_support_pooled_only():
    resnet = make_tiny_clip("resnet", vision_layers=1)
    images = torch.randn(BATCH, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(resnet.visual.forward_features(images).pooled, resnet.encode_image(images))
    with pytest.raises(ValueError, match="support only pooled features, not tokens, cls_attention; use a ViT"):
        resnet.visual.forward_features(images, tokens="proj", cls_attention=True)
