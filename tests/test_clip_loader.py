"""clip.load / load_clip_to_cpu: both OpenAI file formats, download cache, clear errors."""
import hashlib
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import clip
from clip import loader
from tests.helpers.tiny_clip import (
    make_tiny_clip,
    randomize_,
    round_weights_to_fp16_,
    save_openai_checkpoint,
    single_threaded_torch,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    with single_threaded_torch():
        yield


TEXTS = ["a photo of a dog.", "a blurry photo of a cat"]


@pytest.fixture(scope="module")
def tiny_models():
    return {
        "vit": round_weights_to_fp16_(randomize_(make_tiny_clip("vit"), seed=1)),
        "resnet": round_weights_to_fp16_(randomize_(make_tiny_clip("resnet", vision_layers=1), seed=2)),
    }


@pytest.fixture(scope="module")
def vit_checkpoint(tiny_models, tmp_path_factory):
    return save_openai_checkpoint(tiny_models["vit"], tmp_path_factory.mktemp("ckpt") / "tiny-vit.pt")


def cached_url_for(path, sha256=None):
    """A file:// URL laid out like OpenAI's (SHA256 as the parent folder)."""
    sha256 = sha256 or hashlib.sha256(path.read_bytes()).hexdigest()
    return f"file://{path.parent}/{sha256}/{path.name}"


@pytest.mark.parametrize("vision", ["vit", "resnet"])
@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_load_round_trips_both_openai_formats(tiny_models, tmp_path, vision, fmt):
    original = tiny_models[vision]
    path = save_openai_checkpoint(original, tmp_path / f"{vision}.pt", fmt=fmt)
    model, preprocess = clip.load(str(path), trust_torchscript=fmt == "torchscript")
    assert model.dtype == torch.float32 and not model.training
    images = torch.randn(2, 3, 32, 32)
    ids = clip.tokenize(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images), original.encode_image(images), atol=0, rtol=0)
        torch.testing.assert_close(model.encode_text(ids), original.encode_text(ids), atol=0, rtol=0)
    assert preprocess(Image.new("RGB", (50, 40))).shape == (3, 32, 32)


def test_preprocess_resizes_shorter_side_bicubic_center_crop_and_normalises():
    image = Image.new("L", (64, 32), color=255)
    image.paste(0, (0, 0, 24, 32))
    pixels = clip.build_preprocess(16)(image)
    assert pixels.shape == (3, 16, 16)
    black, white = (torch.tensor([(v - m) / s for m, s in zip(clip.CLIP_MEAN, clip.CLIP_STD)]) for v in (0, 1))
    torch.testing.assert_close(pixels[:, 8, 0], black)
    torch.testing.assert_close(pixels[:, 8, 7], white)
    torch.testing.assert_close(pixels[:, 8, 15], white)


def test_known_name_downloads_into_cache_and_verifies_checksum(vit_checkpoint, tmp_path, monkeypatch):
    url = cached_url_for(vit_checkpoint)
    (vit_checkpoint.parent / url.split("/")[-2]).mkdir()
    (vit_checkpoint.parent / url.split("/")[-2] / vit_checkpoint.name).write_bytes(vit_checkpoint.read_bytes())
    monkeypatch.setitem(loader._MODELS, "Tiny-ViT", url)
    model, _ = clip.load("Tiny-ViT", download_root=tmp_path / "cache")
    assert (tmp_path / "cache" / "tiny-vit.pt").read_bytes() == vit_checkpoint.read_bytes()
    assert not list((tmp_path / "cache").glob("*.part"))
    model_again, _ = clip.load("Tiny-ViT", download_root=tmp_path / "cache")
    assert torch.equal(model.text_projection, model_again.text_projection)


def test_cached_file_with_wrong_checksum_is_refused(vit_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(loader._MODELS, "Tiny-ViT", cached_url_for(vit_checkpoint, sha256="0" * 64))
    (tmp_path / "tiny-vit.pt").write_bytes(vit_checkpoint.read_bytes())
    with pytest.raises(RuntimeError, match=r"checksum mismatch for .*tiny-vit.pt.*expected 0{64}.*delete it"):
        clip.load("Tiny-ViT", download_root=tmp_path)


def test_download_with_wrong_checksum_is_discarded(vit_checkpoint, tmp_path, monkeypatch):
    wrong = tmp_path / ("f" * 64)
    wrong.mkdir()
    (wrong / "tiny-vit.pt").write_bytes(vit_checkpoint.read_bytes())
    monkeypatch.setitem(loader._MODELS, "Tiny-ViT", f"file://{wrong}/tiny-vit.pt")
    with pytest.raises(RuntimeError, match="downloaded file .* expected f{64}; the download was corrupted"):
        clip.load("Tiny-ViT", download_root=tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_failed_download_tells_user_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setitem(loader._MODELS, "Tiny-ViT", f"file://{tmp_path}/{'a' * 64}/missing.pt")
    expected_target = str(tmp_path / "cache" / "missing.pt")
    with pytest.raises(RuntimeError, match=f"Download the file manually to {expected_target}.*MODEL.BACKBONE.PATH"):
        clip.load("Tiny-ViT", download_root=tmp_path / "cache")


def test_unknown_name_lists_models_and_suggests_closest():
    with pytest.raises(ValueError, match=r"unknown CLIP model 'vit-b/16'.*'ViT-B/32'.*Did you mean 'ViT-B/16'\?"):
        clip.load("vit-b/16")


def test_missing_file_and_jit_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint file not found: .*nothing.pt"):
        clip.load(str(tmp_path / "nothing.pt"))
    with pytest.raises(ValueError, match="jit=True is not supported.*jit=False"):
        clip.load("ViT-B/16", jit=True)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_checkpoint_is_reported(vit_checkpoint, tmp_path, damage):
    data = vit_checkpoint.read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a checkpoint" * 100)
    with pytest.raises(RuntimeError, match=r"could not read checkpoint .*broken.pt.*corrupted or truncated"):
        clip.load(str(broken))


def test_checkpoint_of_another_model_is_reported(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="is this an OpenAI CLIP checkpoint"):
        clip.load(str(path))
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        clip.load(str(path))


def test_missing_local_model_names_its_build_script(tmp_path, monkeypatch):
    monkeypatch.setitem(loader._LOCAL_MODELS, "MiniCLIP", (tmp_path / "miniclip.pt", loader._LOCAL_MODELS["MiniCLIP"][1]))
    with pytest.raises(FileNotFoundError, match=r"local model 'MiniCLIP' not found .*tools/pretrain_miniclip.py"):
        clip.load("MiniCLIP")


def test_load_clip_to_cpu_by_registered_name_or_path(vit_checkpoint, tiny_models, monkeypatch):
    monkeypatch.setattr(loader, "_LOCAL_MODELS", dict(loader._LOCAL_MODELS))
    clip.register_local_model("TinyViT", vit_checkpoint)
    assert "TinyViT" in clip.available_models()
    by_name = clip.load_clip_to_cpu("TinyViT")
    by_path = clip.load_clip_to_cpu("ignored", path=str(vit_checkpoint))
    by_path_alone = clip.load_clip_to_cpu(vit_checkpoint)
    for model in (by_name, by_path, by_path_alone):
        assert model.dtype == torch.float16 and not model.training
        assert torch.equal(model.text_projection.float(), tiny_models["vit"].text_projection)
    with pytest.raises(FileNotFoundError, match="weights file not found: /no/such/file.pt"):
        clip.load_clip_to_cpu("RN50", path="/no/such/file.pt")
    config = SimpleNamespace(MODEL=SimpleNamespace(BACKBONE=SimpleNamespace(NAME="TinyViT", PATH="")))
    with pytest.raises(TypeError, match="from trainers.common.backbone import load_clip_to_cpu"):
        clip.load_clip_to_cpu(config)
    with pytest.raises(ValueError, match="is an OpenAI model name"):
        clip.register_local_model("RN50", vit_checkpoint)


def test_checkpoint_hash_is_memoised_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"first")
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a[0]) or real_open(*a, **k))
    first = loader.file_sha256(path)
    assert loader.file_sha256(path) == first and len(reads) == 1
    path.write_bytes(b"second, longer")
    assert loader.file_sha256(path) != first and len(reads) == 2
