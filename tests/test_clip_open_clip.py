"""open_clip checkpoints loaded as the toolkit's CLIP: features equal open_clip's, the hooks run on
them, unsupported architectures and a missing open_clip are refused in one line, and named weights
come through open_clip's registry (stubbed here, served by a local HTTP server)."""
import functools
import json
import http.server
import sys
import threading
from types import SimpleNamespace

import pytest
import torch

import clip
from clip.loader import file_sha256
from tests.helpers.tiny_open_clip import SERVABLE, make_open_clip_model, register_tiny_configs, save_open_clip_weights
from trainers.common.feature_cache import backbone_fingerprint

open_clip = pytest.importorskip("open_clip")

STUB_TAG = "stubtag"
STUB_MEAN, STUB_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """name -> (open_clip reference model, its weights file in open_clip's format)."""
    register_tiny_configs(tmp_path_factory.mktemp("configs"))
    folder = tmp_path_factory.mktemp("weights")
    files = {}
    for name in SERVABLE:
        model = make_open_clip_model(name)
        files[name] = (model, save_open_clip_weights(model, folder / f"{name}.bin"))
    return files


def relative_difference(ours, reference):
    return ((ours - reference).norm() / reference.norm()).item()


def inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(3, 3, 32, 32, generator=generator)
    return images, clip.tokenize(["a photo of a dog.", "itap of a sea lion", "x"])


@pytest.mark.parametrize("name", SERVABLE)
def test_features_equal_open_clip(weights, name):
    reference, path = weights[name]
    model, _ = clip.load(path, architecture=name)
    images, tokens = inputs()
    with torch.no_grad():
        image_error = relative_difference(model.encode_image(images), reference.encode_image(images))
        text_error = relative_difference(model.encode_text(tokens), reference.encode_text(tokens))
        pooled = model.visual.forward_features(images).pooled
    assert image_error < 1e-5 and text_error < 1e-5
    torch.testing.assert_close(pooled, model.encode_image(images))
    assert model.logit_scale.exp().item() == pytest.approx(100.0)
    expected_activation = torch.nn.GELU if "QuickGELU" not in name else clip.layers.QuickGELU
    assert type(model.transformer.resblocks[0].mlp.gelu) is expected_activation


def test_safetensors_and_data_parallel_prefixes_are_read(weights, tmp_path):
    from safetensors.torch import save_file

    reference, _ = weights["Tiny-RN"]
    state = {f"module.{k}": v.contiguous() for k, v in reference.state_dict().items()}
    save_file(state, str(tmp_path / "open_clip_model.safetensors"))
    model, _ = clip.load(tmp_path / "open_clip_model.safetensors", architecture="Tiny-RN")
    images, tokens = inputs()
    with torch.no_grad():
        assert relative_difference(model.encode_image(images), reference.encode_image(images)) < 1e-5


def test_openai_reading_of_a_gelu_checkpoint_would_differ(weights):
    """What the config adds: the same file read as an OpenAI checkpoint (QuickGELU) gives other features."""
    reference, path = weights["Tiny-ViT-GELU"]
    openai_reading, _ = clip.load(path)
    images, tokens = inputs()
    with torch.no_grad():
        assert relative_difference(openai_reading.encode_image(images), reference.encode_image(images)) > 1e-3
        assert relative_difference(openai_reading.encode_text(tokens), reference.encode_text(tokens)) > 1e-3


@pytest.mark.parametrize("name", ["Tiny-ViT-GELU", "Tiny-ViT-QuickGELU"])
def test_prompt_hooks_match_open_clip(weights, name):
    """The text hook (embeddings + EOT) and the visual hooks (deep prompts, tokens) on open_clip weights."""
    reference, path = weights[name]
    model, _ = clip.load(path, architecture=name)
    images, tokens = inputs()
    eot = tokens.argmax(dim=-1)
    with torch.no_grad():
        text = model.encode_text_from_embeddings(model.token_embedding(tokens), eot)
        assert relative_difference(text, reference.encode_text(tokens)) < 1e-5
        blocks = len(model.visual.transformer.resblocks)
        prompted = model.visual.forward_features(
            images, deep_prompts=[torch.zeros(2, model.visual.conv1.out_channels)] * blocks, tokens="proj"
        )
    assert prompted.tokens.shape[:2] == (3, 1 + (32 // model.visual.conv1.kernel_size[0]) ** 2)
    assert not torch.allclose(prompted.pooled, model.encode_image(images))


def test_architectures_the_hooks_cannot_serve_are_refused_by_name(weights):
    _, path = weights["Tiny-ViT-GELU"]
    with pytest.raises(ValueError) as error:
        clip.load(path, architecture="Tiny-SigLIP-Text")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("open_clip model Tiny-SigLIP-Text cannot run on this toolkit's CLIP hooks: ")
    for problem in ("init_logit_bias", "text_cfg.no_causal_mask = True", "text_cfg.pool_type = 'last'",
                    "text_cfg.proj_bias = True"):
        assert problem in message
    for real, problem in (("ViT-B-16-SigLIP", "vision_cfg.timm_model_name"), ("coca_ViT-B-32", "multimodal_cfg")):
        with pytest.raises(ValueError, match=rf"open_clip model {real} cannot run.*{problem}"):
            clip.check_backbone_source(real, str(path))


def test_weights_of_another_architecture_and_unknown_architectures_are_named(weights):
    _, path = weights["Tiny-ViT-QuickGELU"]
    with pytest.raises(ValueError, match=r"^state dict shapes do not match .*visual.conv1.weight: \(48, 3, 8, 8\) vs "
                                         r"\(64, 3, 8, 8\).*is this a checkpoint of open_clip's Tiny-ViT-GELU "
                                         r"\(MODEL.BACKBONE.NAME\)\?$"):
        clip.load(path, architecture="Tiny-ViT-GELU")
    with pytest.raises(ValueError, match=r"^unknown open_clip architecture 'ViT-B-61'. Did you mean 'ViT-B-16'\?$"):
        clip.load(path, architecture="ViT-B-61")


def test_names_without_weights_say_what_to_write():
    with pytest.raises(ValueError, match=r"'ViT-B-16' needs a pretrained tag, e.g. 'ViT-B-16/openai' .*MODEL.BACKBONE.PATH"):
        clip.check_checkpoint_source("ViT-B-16")
    with pytest.raises(ValueError, match=r"no pretrained weights 'laion9b' for ViT-B-16; its tags: \[.*laion2b_s34b_b88k"):
        clip.check_checkpoint_source("ViT-B-16/laion9b")
    clip.check_checkpoint_source("ViT-B-16/laion2b_s34b_b88k")  # a known tag: checked, nothing downloaded


def test_without_open_clip_openai_models_load_and_open_clip_names_name_the_extra(weights, tmp_path, monkeypatch):
    from tests.helpers.tiny_clip import make_tiny_clip, save_openai_checkpoint

    monkeypatch.setitem(sys.modules, "open_clip", None)  # `import open_clip` now fails
    openai_file = save_openai_checkpoint(make_tiny_clip(), tmp_path / "openai.pt")
    assert clip.load(openai_file)[0].visual.input_resolution == 32
    with pytest.raises(ValueError, match=r"unknown CLIP model 'ViT-B-16/laion2b_s34b_b88k'.*"
                                         r"need the optional open_clip package: pip install -e \"\.\[open_clip\]\""):
        clip.load("ViT-B-16/laion2b_s34b_b88k")
    with pytest.raises(RuntimeError, match=r"^open_clip models need the optional open_clip package; install it with "
                                           r"pip install -e \"\.\[open_clip\]\"$"):
        clip.load(weights["Tiny-ViT-GELU"][1], architecture="Tiny-ViT-GELU")


def test_cache_identity_includes_the_architecture(weights, tmp_path):
    """One weights file read as two architectures must not share cached features."""
    _, path = weights["Tiny-ViT-GELU"]
    gelu = SimpleNamespace(MODEL=SimpleNamespace(BACKBONE=SimpleNamespace(NAME="Tiny-ViT-GELU", PATH=str(path))))
    quick = SimpleNamespace(MODEL=SimpleNamespace(BACKBONE=SimpleNamespace(NAME="Tiny-ViT-GELU-quickgelu", PATH=str(path))))
    openai = SimpleNamespace(MODEL=SimpleNamespace(BACKBONE=SimpleNamespace(NAME="ViT-B/16", PATH=str(path))))
    fingerprints = {backbone_fingerprint(cfg) for cfg in (gelu, quick, openai)}
    assert len(fingerprints) == 3
    assert backbone_fingerprint(openai) == file_sha256(path)
    images, _ = inputs()
    with torch.no_grad():
        a = clip.load(path, architecture="Tiny-ViT-GELU")[0].encode_image(images)
        b = clip.load(path, architecture="Tiny-ViT-GELU-quickgelu")[0].encode_image(images)
    assert relative_difference(a, b) > 1e-3


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served_weights(weights, tmp_path):
    """The Tiny-ViT-GELU weights served on 127.0.0.1; yields their URL and stops the server after."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "tiny_weights.bin").write_bytes(weights["Tiny-ViT-GELU"][1].read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tiny_weights.bin", server
    finally:
        server.shutdown()
        server.server_close()


def stub_registry(monkeypatch, url):
    """open_clip's registry knows `Tiny-ViT-GELU/stubtag`: weights at `url`, its own normalisation."""
    real = open_clip.get_pretrained_cfg
    entry = {"url": url, "hf_hub": "", "mean": STUB_MEAN, "std": STUB_STD, "interpolation": "bilinear",
             "resize_mode": "squash"}

    def get_pretrained_cfg(model, tag):
        return dict(entry) if (model, tag) == ("Tiny-ViT-GELU", STUB_TAG) else real(model, tag)

    monkeypatch.setattr(open_clip, "get_pretrained_cfg", get_pretrained_cfg)


def test_named_weights_download_through_open_clips_registry_and_cache(weights, served_weights, tmp_path, monkeypatch):
    url, server = served_weights
    stub_registry(monkeypatch, url)
    reference = weights["Tiny-ViT-GELU"][0]
    cache = tmp_path / "cache"
    model, preprocess = clip.load(f"Tiny-ViT-GELU/{STUB_TAG}", download_root=cache)
    assert (cache / "tiny_weights.bin").read_bytes() == weights["Tiny-ViT-GELU"][1].read_bytes()
    images, tokens = inputs()
    with torch.no_grad():
        assert relative_difference(model.encode_image(images), reference.encode_image(images)) < 1e-5
    normalize = preprocess.transforms[-1]
    assert tuple(normalize.mean) == STUB_MEAN and tuple(normalize.std) == STUB_STD
    assert preprocess.transforms[0].size == (32, 32)  # "squash": both sides resized, no crop
    server.shutdown()
    again, _ = clip.load(f"Tiny-ViT-GELU/{STUB_TAG}", download_root=cache)  # from the cache, offline
    torch.testing.assert_close(again.encode_text(tokens), model.encode_text(tokens))


def test_a_failed_download_names_the_model_and_the_manual_route(weights, tmp_path, monkeypatch):
    stub_registry(monkeypatch, "http://127.0.0.1:9/nowhere.bin")
    with pytest.raises(RuntimeError, match=r"^could not download open_clip weights Tiny-ViT-GELU/stubtag \(.*\); "
                                           r"download them manually and set MODEL.BACKBONE.PATH"):
        clip.load(f"Tiny-ViT-GELU/{STUB_TAG}", download_root=tmp_path)


def test_a_tag_trained_with_quickgelu_runs_quickgelu(weights, monkeypatch):
    """As MetaCLIP's tags on open_clip's plain ViT-B-16 name: the tag, not the name, says QuickGELU."""
    real = open_clip.get_pretrained_cfg
    monkeypatch.setattr(open_clip, "get_pretrained_cfg",
                        lambda model, tag: {"url": "", "quick_gelu": True} if tag == "quick" else real(model, tag))
    _, path = weights["Tiny-ViT-GELU"]
    tagged, _ = clip.load(path, architecture="Tiny-ViT-GELU/quick")
    named, _ = clip.load(path, architecture="Tiny-ViT-GELU-quickgelu")
    images, _ = inputs()
    assert type(tagged.visual.transformer.resblocks[0].mlp.gelu) is clip.layers.QuickGELU
    with torch.no_grad():
        torch.testing.assert_close(tagged.encode_image(images), named.encode_image(images))


def write_hub_folder(folder, name, reference, preprocess):
    """open_clip's Hugging Face layout: the weights and an open_clip_config.json beside them."""
    from tests.helpers.tiny_open_clip import TINY_CONFIGS

    folder.mkdir()
    config = {"model_cfg": TINY_CONFIGS[name], "preprocess_cfg": preprocess}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return save_open_clip_weights(reference, folder / "open_clip_pytorch_model.bin")


def test_a_file_with_open_clips_saved_config_needs_no_architecture_name(weights, tmp_path):
    reference, _ = weights["Tiny-RN"]
    path = write_hub_folder(tmp_path / "hub", "Tiny-RN", reference, {"mean": STUB_MEAN, "std": STUB_STD})
    model, preprocess = clip.load(path)
    images, tokens = inputs()
    with torch.no_grad():
        assert relative_difference(model.encode_text(tokens), reference.encode_text(tokens)) < 1e-5
        assert relative_difference(model.encode_image(images), reference.encode_image(images)) < 1e-5
    assert tuple(preprocess.transforms[-1].mean) == STUB_MEAN
    clip.check_backbone_source("ViT-B/16", str(path))  # the default NAME: the saved config decides
    assert clip.load_clip_to_cpu("ViT-B/16", str(path)).image_std == STUB_STD
    siglip = write_hub_folder(tmp_path / "siglip", "Tiny-SigLIP-Text", reference, {})
    with pytest.raises(ValueError, match=r"open_clip model .*open_clip_config.json cannot run .*no_causal_mask"):
        clip.check_backbone_source("ViT-B/16", str(siglip))
