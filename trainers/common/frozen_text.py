"""Text features of fixed (hand-written) prompts, encoded once per class list.

Zero-shot classifiers and KgCoOp's anchors use the frozen CLIP text tower on
prompts like "a photo of a {}.". The features depend only on the CLIP
instance, the templates and the class names, so they are cached per CLIP
instance (never a second CLIP copy) and keyed by (templates, class names,
device, dtype).
"""
import weakref

import torch

from .class_names import tokenize_class_prompts
from .prompt_learner import readable_classnames
from .text_encoding import normalize

_CACHE = weakref.WeakKeyDictionary()


def _as_template_tuple(templates):
    templates = (templates,) if isinstance(templates, str) else tuple(templates)
    if not templates:
        raise ValueError("at least one prompt template is needed")
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"prompt template {template!r} has no '{{}}' slot for the class name")
    return templates


def _encode_template(clip_model, template, classnames, device, chunk_size):
    tokens = tokenize_class_prompts([template.format(name) for name in classnames], classnames).to(device)
    features = torch.cat([clip_model.encode_text(chunk) for chunk in tokens.split(chunk_size)])
    return normalize(features.float())


def frozen_text_features(clip_model, templates, classnames, chunk_size=256):
    """Normalised (n_cls, embed_dim) features; several templates are averaged and renormalised.

    Returned in CLIP's working dtype on CLIP's device; computed without grad.
    """
    templates = _as_template_tuple(templates)
    classnames = tuple(readable_classnames(classnames))
    device = clip_model.token_embedding.weight.device
    key = (templates, classnames, str(device), clip_model.dtype)
    per_model = _CACHE.setdefault(clip_model, {})
    if key not in per_model:
        with torch.no_grad():
            stacked = torch.stack(
                [_encode_template(clip_model, t, classnames, device, chunk_size) for t in templates]
            )
            per_model[key] = normalize(stacked.mean(dim=0)).type(clip_model.dtype)
    return per_model[key]
