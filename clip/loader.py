"""Find, download, verify and read CLIP checkpoints; ``load`` and ``load_clip_to_cpu``.

Plain arguments only (model name, weights path, trust flag): the trainers'
layer (``trainers/common/backbone.py``) translates MODEL.BACKBONE into them.

Accepts OpenAI's two file formats (TorchScript archives and plain state dicts)
and always rebuilds an eager ``CLIP`` (the prompt-learning hooks need it).
open_clip's models (``ViT-B-16/laion2b_s34b_b88k``, or a file in open_clip's
format plus its architecture name) go through ``clip.open_clip_adapter``.
No code runs while a checkpoint loads: state dicts load with
``weights_only=True``, and a TorchScript archive (whose loading runs code stored
in it) is opened only when it is one of OpenAI's released files (by SHA256) or
the caller trusts it explicitly (``trust_torchscript=True``).
"""
import difflib
import hashlib
import os
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import torch
from tqdm import tqdm

from . import open_clip_adapter
from .model import build_model
from .transform import build_preprocess

_OPENAI_URL = "https://openaipublic.azureedge.net/clip/models/{sha256}/{file}"
_MODELS = {
    name: _OPENAI_URL.format(sha256=sha256, file=file)
    for name, sha256, file in [
        ("RN50", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762", "RN50.pt"),
        ("RN101", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599", "RN101.pt"),
        ("RN50x4", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd", "RN50x4.pt"),
        ("RN50x16", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa", "RN50x16.pt"),
        ("RN50x64", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c", "RN50x64.pt"),
        ("ViT-B/32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32.pt"),
        ("ViT-B/16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"),
        ("ViT-L/14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"),
        ("ViT-L/14@336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px.pt"),
    ]
}

_OPENAI_SHA256 = frozenset(url.split("/")[-2] for url in _MODELS.values())

_PACKAGE_DIR = Path(__file__).resolve().parent
_LOCAL_MODELS = {
    "MiniCLIP": (_PACKAGE_DIR / "pretrained" / "miniclip.pt", "python tools/pretrain_miniclip.py"),
}
OPENAI_FORMAT = "openai-format"
_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".tar"}
_CHUNK = 1 << 20
WEIGHTS_ONLY_REFUSAL = "Weights only load failed"  # torch's message when weights_only meets other objects


def available_models():
    """Names ``load`` accepts: OpenAI's released models, then registered local models."""
    return list(_MODELS) + list(_LOCAL_MODELS)


def register_local_model(name, path, how_to_build=None):
    """Make ``load(name)`` / ``MODEL.BACKBONE.NAME: name`` read the checkpoint at ``path``.

    ``how_to_build`` is shown to the user when the file does not exist yet.
    """
    if name in _MODELS:
        raise ValueError(f"{name!r} is an OpenAI model name; register the local model under another name")
    _LOCAL_MODELS[name] = (Path(path), how_to_build)


def _default_cache_dir():
    return Path(os.path.expanduser("~/.cache/clip"))


_FILE_HASHES = {}


def file_sha256(path):
    """SHA-256 of a file's bytes, read once per process for each (path, mtime, size): a run checks
    a checkpoint's trust, loads it and fingerprints it, and reads its (large) bytes once for all."""
    path = os.path.realpath(os.path.expanduser(os.fspath(path)))
    stat = os.stat(path)
    memo_key = (path, stat.st_mtime_ns, stat.st_size)
    if memo_key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        _FILE_HASHES[memo_key] = digest.hexdigest()
    return _FILE_HASHES[memo_key]


def _download(url, target):
    """Download ``url`` to ``target`` through a temporary file, verifying its SHA256."""
    expected = url.split("/")[-2]
    partial = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url) as source, open(partial, "wb") as output:
            total = int(source.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="iB", unit_scale=True, unit_divisor=1024, desc=target.name) as bar:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    output.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"could not download {url} ({error}). Download the file manually to {target}, "
            "or set MODEL.BACKBONE.PATH to a local checkpoint"
        ) from error
    actual = file_sha256(partial)
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"downloaded file from {url} has SHA256 {actual}, expected {expected}; "
            f"the download was corrupted: try again or download it manually to {target}"
        )
    os.replace(partial, target)


def _openai_checkpoint(name, download_root):
    url = _MODELS[name]
    target = Path(download_root or _default_cache_dir()) / url.split("/")[-1]
    if not target.exists():
        _download(url, target)
        return target
    expected = url.split("/")[-2]
    actual = file_sha256(target)
    if actual != expected:
        raise RuntimeError(
            f"checksum mismatch for {target}: SHA256 is {actual}, expected {expected} for {name}; "
            f"the file is corrupted or is another model: delete it to download it again from {url}"
        )
    return target


def _local_checkpoint(name):
    path, how_to_build = _LOCAL_MODELS[name]
    if not path.is_file():
        hint = f"; build it with `{how_to_build}`" if how_to_build else ""
        raise FileNotFoundError(f"checkpoint of local model {name!r} not found at {path}{hint}")
    return path


def _unknown_name_error(name):
    names = available_models()
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.5)
    hint = f" Did you mean {by_lower[close[0]]!r}?" if close else ""
    if not open_clip_adapter.is_installed():
        hint += (
            f" open_clip models (e.g. {open_clip_adapter.EXAMPLE}) need the optional open_clip package: "
            f"{open_clip_adapter.INSTALL_HINT}."
        )
    return ValueError(
        f"unknown CLIP model {name!r} (and no file with that path). Available models: {names}.{hint} "
        "To use a local checkpoint, pass its file path (MODEL.BACKBONE.PATH)."
    )


def _looks_like_path(name):
    return Path(name).suffix in _CHECKPOINT_SUFFIXES or os.path.isabs(name) or name.startswith(".")


def open_clip_source(name, path=None):
    """The open_clip source a model name plus an optional weights file denote, or None.
    An open_clip architecture[/tag] name is one; so is a file with open_clip's
    ``open_clip_config.json`` beside it (unless the name gives the architecture).
    Names of OpenAI's or registered local models, and other files, keep their meaning."""
    name = os.fspath(name or "")
    if path is None and Path(os.path.expanduser(name)).is_file():
        name, path = "", name
    if name not in _MODELS and name not in _LOCAL_MODELS and open_clip_adapter.names_architecture(name):
        return open_clip_adapter.source_for(name, path)
    config_file = path and open_clip_adapter.saved_config(path)
    return open_clip_adapter.source_with_saved_config(path, config_file) if config_file else None


def checkpoint_path(name_or_path, download_root=None):
    """Model name or file path -> local checkpoint file (downloading OpenAI and open_clip models if needed)."""
    name_or_path = os.fspath(name_or_path)
    if name_or_path in _MODELS:
        return _openai_checkpoint(name_or_path, download_root)
    source = open_clip_source(name_or_path)
    if source is not None:
        return open_clip_adapter.checkpoint_file(source, download_root)
    return _existing_checkpoint(name_or_path)


def check_checkpoint_source(name_or_path, trust_torchscript=False):
    """Raise now what loading would raise for a local name or file that is not there, for an
    untrusted TorchScript archive or an unsupported open_clip name, reading no weights and
    downloading nothing (an OpenAI name passes: its file is fetched and verified when loaded;
    an open_clip name has its architecture and tag checked)."""
    name_or_path = os.fspath(name_or_path)
    source = open_clip_source(name_or_path)
    if source is not None:
        open_clip_adapter.model_config(source)
    elif name_or_path not in _MODELS:
        path = _existing_checkpoint(name_or_path)
        if is_torchscript_archive(path):
            _check_torchscript_trusted(path, trust_torchscript)


def _existing_checkpoint(name_or_path):
    if name_or_path in _LOCAL_MODELS:
        return _local_checkpoint(name_or_path)
    path = Path(os.path.expanduser(name_or_path))
    if path.is_file():
        return path
    if _looks_like_path(name_or_path):
        raise FileNotFoundError(
            f"checkpoint file not found: {path}; check the path (MODEL.BACKBONE.PATH) or use a model name "
            f"from {available_models()}"
        )
    raise _unknown_name_error(name_or_path)


class UntrustedCheckpointError(RuntimeError):
    """A TorchScript archive that is not a released OpenAI checkpoint and was not trusted explicitly."""


def is_torchscript_archive(path):
    """TorchScript archives are zip files holding serialized code (``<name>/code/``), which
    ``torch.save`` files never hold. Reads the zip directory only."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())


def _check_torchscript_trusted(path, trust_torchscript):
    if trust_torchscript:
        return
    digest = file_sha256(path)
    if digest not in _OPENAI_SHA256:
        raise UntrustedCheckpointError(
            f"{path} is a TorchScript archive that is not one of OpenAI's released CLIP checkpoints "
            f"(SHA256 {digest[:16]}...), and loading one runs code stored in the file; save its weights "
            "as a plain state dict (torch.save(model.state_dict(), ...)) from a source you trust, or, if "
            "you trust this file, set MODEL.BACKBONE.TRUST_TORCHSCRIPT True (clip.load(..., trust_torchscript=True))"
        )


def _read_weights_only(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        reason = error
    if zipfile.is_zipfile(path) and WEIGHTS_ONLY_REFUSAL in str(reason):  # intact torch.save file
        raise UntrustedCheckpointError(
            f"{path} holds Python objects besides tensors, and loading them could run code; "
            "save only the model's state dict (torch.save(model.state_dict(), ...))"
        ) from reason
    raise RuntimeError(
        f"could not read checkpoint {path}: it is neither a TorchScript archive nor a state dict "
        f"({type(reason).__name__}); the file is corrupted or truncated: delete it and download "
        "or build it again"
    ) from reason


def read_state_dict(path, trust_torchscript=False):
    """State dict of a checkpoint file: a ``weights_only``-safe state dict, or a TorchScript
    archive that is one of OpenAI's released files or explicitly trusted (see module docstring)."""
    if is_torchscript_archive(path):
        _check_torchscript_trusted(path, trust_torchscript)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    checkpoint = _read_weights_only(path)
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"{path} holds a {type(checkpoint).__name__}, not a state dict; is this an OpenAI CLIP checkpoint?"
        )
    return checkpoint


def load(name_or_path, device="cpu", jit=False, download_root=None, architecture=None, trust_torchscript=False):
    """Load a CLIP model by name or path -> ``(model, preprocess)``.

    Names: OpenAI's (``ViT-B/16``), registered local models, or open_clip's
    architecture and pretrained tag (``ViT-B-16/laion2b_s34b_b88k``, downloaded
    through open_clip's registry and cache). A path is read as an OpenAI
    checkpoint, or as an open_clip one of ``architecture`` (e.g. ``ViT-B-16``,
    or ``ViT-B-16/laion2b_s34b_b88k`` for that tag's preprocessing) if given.
    On CPU the model is cast to fp32 (as OpenAI's ``load``); elsewhere OpenAI's
    models keep ``build_model``'s fp16 weights and open_clip's their fp32 ones.
    The preprocessing is the checkpoint's (resolution, normalisation).
    ``trust_torchscript`` allows TorchScript archives other than OpenAI's
    released files (their loading runs code).
    """
    if jit:
        raise ValueError(
            "jit=True is not supported: this toolkit always rebuilds an eager CLIP (the prompt hooks "
            "need it); call clip.load(..., jit=False)"
        )
    if architecture:
        source = open_clip_adapter.source_for(architecture, name_or_path)
    else:
        source = open_clip_source(name_or_path)
    if source is not None:
        model = open_clip_adapter.load(source, download_root).to(device)
    else:
        verified = name_or_path in _MODELS  # its SHA256 was checked against OpenAI's on the way
        state_dict = read_state_dict(checkpoint_path(name_or_path, download_root), trust_torchscript or verified)
        model = build_model(state_dict).to(device)
    if torch.device(device).type == "cpu":
        model.float()
    return model, preprocess_for(model)


def preprocess_for(model):
    """The preprocessing ``model``'s weights were trained with (OpenAI's unless its loader says otherwise)."""
    return build_preprocess(
        model.visual.input_resolution,
        mean=model.image_mean,
        std=model.image_std,
        interpolation=getattr(model, "image_interpolation", "bicubic"),
        resize_mode=getattr(model, "image_resize_mode", "shortest"),
    )


def backbone_checkpoint_source(name, path=None):
    """The checkpoint a backbone is read from: ``path`` (which must exist) if given, else ``name``."""
    if not path:
        return name
    checkpoint = Path(os.path.expanduser(os.fspath(path)))
    if not checkpoint.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return checkpoint


def check_backbone_source(name, path=None, trust_torchscript=False):
    """Raise now what ``load_clip_to_cpu(name, path, trust_torchscript)`` would raise for a missing
    file, an unknown name, an untrusted TorchScript archive or an unsupported open_clip
    architecture, reading and downloading nothing."""
    source = open_clip_source(name, path or None)
    if source is None:
        check_checkpoint_source(backbone_checkpoint_source(name, path), trust_torchscript)
        return
    open_clip_adapter.model_config(source)
    if source.path is not None:
        backbone_checkpoint_source(name, path)


def backbone_identity(name, path=None):
    """What decides the backbone's features besides its weights file (for cache keys):
    OpenAI-format files fix their architecture; open_clip's depend on the named config."""
    source = open_clip_source(name, path or None)
    return OPENAI_FORMAT if source is None else open_clip_adapter.identity(source)


def load_clip_to_cpu(name, path=None, trust_torchscript=False):
    """CLIP on CPU, eval mode, from the weights file ``path`` if given, else the model ``name``:
    OpenAI's checkpoints with fp16 weights, open_clip's (``name`` an open_clip architecture[/tag],
    or open_clip's saved config beside ``path``) with fp32 ones. ``trust_torchscript`` as in ``load``.
    A trainer's config goes through ``trainers.common.backbone.load_clip_to_cpu(cfg)``."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(
            f"clip.load_clip_to_cpu takes a model name or checkpoint path, not a {type(name).__name__}; "
            "a trainer file that passes its cfg should use `from trainers.common.backbone import load_clip_to_cpu`"
        )
    source = open_clip_source(name, path or None)
    if source is not None:
        return open_clip_adapter.load(source)
    checkpoint = backbone_checkpoint_source(name, path)
    verified = checkpoint in _MODELS  # its SHA256 was checked against OpenAI's on the way
    return build_model(read_state_dict(checkpoint_path(checkpoint), trust_torchscript or verified))
