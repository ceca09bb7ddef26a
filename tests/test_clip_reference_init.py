"""Building CLIP leaves the global torch generator where OpenAI's build_model leaves it."""
import pytest
import torch

import clip
from clip.model import CLIP
from tests.helpers.tiny_clip import make_tiny_clip

TEXT_TOWER = dict(context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)
ARCHITECTURES = {
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32),
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None),
}
# Measured with OpenAI's code: torch.manual_seed(1); build_model(sd); torch.randn(4)
REFERENCE_RANDN_AFTER_BUILD = {
    "ViT-B/16": [0.517885, 0.453917, 0.407922, -1.446576],
    "ViT-B/32": [0.519965, -1.299832, 0.577109, 1.222154],
    "RN50": [-2.154885, 1.540505, -0.604275, 0.904267],
}


def meta_state_dict(name):
    """A state dict with the real model's keys and shapes, holding no memory."""
    with torch.device("meta"):
        return CLIP(**ARCHITECTURES[name], **TEXT_TOWER).state_dict()


@pytest.mark.parametrize("name", sorted(REFERENCE_RANDN_AFTER_BUILD))
def test_build_model_advances_the_generator_as_openai_build_model(name):
    state_dict = meta_state_dict(name)
    torch.manual_seed(1)
    clip.build_model(state_dict)
    torch.testing.assert_close(torch.randn(4), torch.tensor(REFERENCE_RANDN_AFTER_BUILD[name]), atol=1e-6, rtol=0)
    if name == "ViT-B/16":  # then a CoOp-style context init, as measured with the reference
        ctx = torch.nn.init.normal_(torch.empty(16, 512), std=0.02)
        torch.testing.assert_close(ctx[0, :3], torch.tensor([-0.0127289, -0.0078609, -0.0186454]), atol=1e-7, rtol=0)


def test_built_model_owns_its_weights_and_trains_like_before():
    source = make_tiny_clip()
    state_dict = source.state_dict()
    model = clip.build_model(state_dict).float()
    with torch.no_grad():
        model.ln_final.weight.add_(1.0)
    assert torch.equal(source.ln_final.weight, state_dict["ln_final.weight"])
    assert not torch.equal(model.ln_final.weight, source.ln_final.weight)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(t.is_meta for t in model.state_dict().values())
