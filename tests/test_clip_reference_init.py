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


def initial_prompt_learner(trainer_name, trainer_module, config, clip_path, root, out, opts):
    """The prompt learner's state right after the trainer built it (the run stops there)."""
    import importlib

    import train
    from tests.helpers.trainer_runs import base2new_argv, killed_after

    trainer_class = getattr(importlib.import_module(trainer_module), trainer_name)
    captured = {}

    def capture(trainer):
        captured.update({k: v.clone() for k, v in trainer.model.prompt_learner.state_dict().items()})
        return True

    argv = base2new_argv(trainer_name, config, root, clip_path, out, "base", opts)
    with killed_after(trainer_class, "build_model", capture), pytest.raises(KeyboardInterrupt):
        train.main(["--import", trainer_module, "--import", "datasets.image_folder", *argv], plugin_folders=())
    return captured


def test_coop_and_cocoop_start_from_the_reference_prompts(tmp_path):
    """Upstream: set_random_seed(1), data, load_clip_to_cpu (OpenAI's build_model), then the
    context's normal_(std=0.02) and, for CoCoOp, the meta-net's two Linear layers."""
    from tests.helpers.trainer_runs import write_colour_images, write_tiny_clip_checkpoint

    root = write_colour_images(str(tmp_path / "data"), per_class=4)
    clip_path = write_tiny_clip_checkpoint(tmp_path / "tiny.pt")
    state_dict = torch.load(clip_path, weights_only=True)

    def reference_after_build():
        torch.manual_seed(1)
        model = clip.build_model(dict(state_dict))
        width, vis_dim = model.ln_final.weight.shape[0], model.visual.output_dim
        ctx = torch.nn.init.normal_(torch.empty(4, width), std=0.02)
        return ctx, width, vis_dim

    ctx, _, _ = reference_after_build()
    coop = initial_prompt_learner("CoOp", "trainers.coop", "CoOp/vit_b16_ep50", clip_path, root, tmp_path / "coop",
                                  ["TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CTX_INIT", ""])
    assert torch.equal(coop["ctx"], ctx)

    ctx, width, vis_dim = reference_after_build()
    linear1 = torch.nn.Linear(vis_dim, vis_dim // 16)
    linear2 = torch.nn.Linear(vis_dim // 16, width)
    cocoop = initial_prompt_learner(
        "CoCoOp", "trainers.cocoop", "CoCoOp/vit_b16_c16_ep10_batch1", clip_path, root, tmp_path / "cocoop",
        ["TRAINER.COCOOP.PREC", "fp32", "TRAINER.COCOOP.N_CTX", "4", "TRAINER.COCOOP.CTX_INIT", ""])
    assert torch.equal(cocoop["ctx"], ctx)
    assert torch.equal(cocoop["meta_net.linear1.weight"], linear1.weight)
    assert torch.equal(cocoop["meta_net.linear2.bias"], linear2.bias)
