"""TextRefiner's cache write under nn.DataParallel, simulated on the CPU.

DataParallel runs each forward on replicas that it throws away afterwards; on
a CPU it calls the module itself, and `nn.parallel.replicate` refuses CPU
tensors. `cpu_replica` therefore builds the replica the way `replicate` does
(`_replicate_for_data_parallel` per module, parameters as plain tensors,
buffers shared as on the first device).
"""
import copy
from types import SimpleNamespace

import pytest
import torch

from tests.helpers.tiny_clip import make_tiny_clip
from trainers.common import normalize
from trainers.common.base_trainer import apply_plugin_replica_updates
from trainers.textrefiner import TextRefinerPlugin

EMBED, RESOLUTION = 32, 32
CPU_DEVICE_IDS = [-1]  # Tensor.get_device() of a CPU tensor


@pytest.fixture(scope="module")
def clip_model():
    return make_tiny_clip(embed_dim=EMBED, width=64, image_resolution=RESOLUTION).requires_grad_(False)


def cpu_replica(module):
    """What `nn.parallel.replicate` builds for one device, without the copies to that device."""
    replica = module._replicate_for_data_parallel()
    for name, parameter in module._parameters.items():
        setattr(replica, name, None if parameter is None else parameter.view_as(parameter))
    for name, child in module._modules.items():
        replica._modules[name] = cpu_replica(child)
    return replica


def training_inputs(clip_model, plugin, batch=4, seed=0):
    """(text features, image features, visual output, labels) of one training step."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, RESOLUTION, RESOLUTION, generator=generator)
    visual = clip_model.visual.forward_features(images, **plugin.visual_request)
    text = normalize(torch.randn(3, EMBED, generator=generator))
    return text, normalize(visual.pooled), visual, torch.arange(batch) % 3


def fresh_plugin(clip_model):
    torch.manual_seed(0)
    return TextRefinerPlugin(EMBED, clip_model.logit_scale.exp().item()).train()


def test_a_replica_posts_its_write_and_the_real_module_makes_it_as_one_device_would(clip_model):
    single = fresh_plugin(clip_model)
    wrapped = copy.deepcopy(single)
    before = wrapped.local_cache.clone()
    inputs = training_inputs(clip_model, single)
    refined, terms = single(*inputs)
    replica_refined, replica_terms = cpu_replica(wrapped)(*inputs)
    assert torch.equal(wrapped.local_cache, before), "a replica must not write the cache itself"
    wrapped.apply_replica_updates(CPU_DEVICE_IDS)
    assert torch.equal(wrapped.local_cache, single.local_cache) and not torch.equal(before, single.local_cache)
    assert torch.equal(replica_refined, refined)
    assert all(torch.equal(replica_terms[name], terms[name]) for name in terms)
    wrapped.apply_replica_updates(CPU_DEVICE_IDS)
    assert torch.equal(wrapped.local_cache, single.local_cache), "a posted write is made once"


def test_chunks_posted_by_several_replicas_are_written_in_batch_order(clip_model):
    plugin = fresh_plugin(clip_model)
    tokens = torch.randn(6, 7, EMBED, generator=torch.Generator().manual_seed(1))
    expected = copy.deepcopy(plugin)
    expected.write(tokens)
    replica = cpu_replica(plugin)
    replica._replica_writes.update({1: tokens[3:], 0: tokens[:3]})
    plugin.apply_replica_updates([0, 1])
    assert torch.equal(plugin.local_cache, expected.local_cache)


def test_the_data_parallel_hook_applies_the_plugins_posted_writes(clip_model):
    plugin = fresh_plugin(clip_model)
    before = plugin.local_cache.clone()
    cpu_replica(plugin)(*training_inputs(clip_model, plugin))
    wrapper = SimpleNamespace(module=SimpleNamespace(text_plugin=plugin), device_ids=CPU_DEVICE_IDS)
    apply_plugin_replica_updates(wrapper, (), None)
    assert not torch.equal(plugin.local_cache, before)
    apply_plugin_replica_updates(SimpleNamespace(module=SimpleNamespace(text_plugin=None), device_ids=[0]), (), None)


def test_outside_data_parallel_the_write_is_immediate(clip_model):
    plugin = fresh_plugin(clip_model)
    before = plugin.local_cache.clone()
    plugin(*training_inputs(clip_model, plugin))
    assert not torch.equal(plugin.local_cache, before) and plugin._replica_writes == {}
