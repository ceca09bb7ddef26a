"""Text-tower passes sized to the free memory (trainers.common.text_encoding), on a tiny CLIP (CPU)."""
import math
import os

import pytest
import torch

import trainers.cocoop  # noqa: F401  (registers CoCoOp and its config node)
from dassl.config import ConfigError, apply_cfg_extensions, get_cfg_default, merge_from_file, merge_from_list
from dassl.engine import build_trainer
from tests.helpers.tiny_clip import make_tiny_clip
from tests.helpers.trainer_runs import REPO
from trainers.cocoop import CoCoOpCLIP, ConditionalPromptLearner
from trainers.common import text_encoding
from trainers.common.text_encoding import (
    FREE_MEMORY_FRACTION,
    auto_text_chunk,
    encode_prompt_embeddings,
    free_memory_bytes,
    sequence_working_bytes,
    text_compute_dtype,
)

CLASSNAMES = ["dog", "sea_lion", "golden retriever", "tabby cat"]


@pytest.fixture(scope="module")
def fp32_clip():
    return make_tiny_clip().requires_grad_(False)


@pytest.fixture
def learner(fp32_clip):
    torch.manual_seed(0)
    return ConditionalPromptLearner(CLASSNAMES, fp32_clip, n_ctx=4, ctx_init="a photo of a")


def images(clip_model, batch):
    size = clip_model.visual.input_resolution
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def per_sequence_bytes(clip_model, seq_len):
    transformer = clip_model.transformer
    return sequence_working_bytes(transformer.width, transformer.resblocks[0].attn.heads, seq_len, clip_model.dtype)


def free_memory_for(sequences, clip_model, seq_len):
    """A free-memory reading that leaves room for exactly `sequences` sequences per pass."""
    return math.ceil(sequences * per_sequence_bytes(clip_model, seq_len) / FREE_MEMORY_FRACTION)


def pretend_free_memory(monkeypatch, nbytes):
    monkeypatch.setattr(text_encoding, "free_memory_bytes", lambda device: nbytes)


def count_text_passes(clip_model):
    """A list that gets one entry (the batch size) per text-tower pass, and the hook's handle."""
    passes = []
    handle = clip_model.transformer.register_forward_pre_hook(lambda module, args: passes.append(args[0].shape[0]))
    return passes, handle


def flat_prompts(learner, batch=3):
    """CoCoOp's evaluation prompts for `batch` images, flattened to (batch x n_cls, L, D), with their EOT indices."""
    image_dim = learner.meta_net.linear1.in_features
    with torch.no_grad():
        prompts = learner(torch.randn(batch, image_dim, generator=torch.Generator().manual_seed(1)))
    eot = learner.eot_indices.expand(batch, -1).reshape(-1)
    return prompts.reshape(-1, *prompts.shape[-2:]), eot


class TestAutomaticChunks:
    def test_small_free_memory_gives_small_chunks_and_equal_features(self, fp32_clip, learner, monkeypatch):
        prompts, eot = flat_prompts(learner)
        seq_len = int(eot.max()) + 1
        with torch.no_grad():
            one_pass = encode_prompt_embeddings(fp32_clip, prompts, eot, chunk_size=len(prompts))
            pretend_free_memory(monkeypatch, free_memory_for(5, fp32_clip, seq_len))
            assert auto_text_chunk(fp32_clip, seq_len, prompts.device, fp32_clip.dtype) == 5
            passes, handle = count_text_passes(fp32_clip)
            try:
                chunked = encode_prompt_embeddings(fp32_clip, prompts, eot, chunk_size=0)
            finally:
                handle.remove()
        assert passes == [5, 5, 2]
        torch.testing.assert_close(chunked, one_pass)

    def test_cocoop_evaluation_uses_the_automatic_chunk(self, fp32_clip, learner, monkeypatch):
        model = CoCoOpCLIP(fp32_clip, learner, text_chunk=0)
        seq_len = int(learner.eot_indices.max()) + 1
        with torch.no_grad():
            one_pass = CoCoOpCLIP(fp32_clip, learner, text_chunk=100)(images(fp32_clip, 3))
            pretend_free_memory(monkeypatch, free_memory_for(4, fp32_clip, seq_len))
            passes, handle = count_text_passes(fp32_clip)
            try:
                logits = model(images(fp32_clip, 3))
            finally:
                handle.remove()
        assert passes == [4, 4, 4]
        torch.testing.assert_close(logits, one_pass)

    def test_training_runs_one_pass_whatever_the_free_memory(self, fp32_clip, learner, monkeypatch):
        pretend_free_memory(monkeypatch, 0)
        model = CoCoOpCLIP(fp32_clip, learner, text_chunk=0)
        passes, handle = count_text_passes(fp32_clip)
        try:
            model(images(fp32_clip, 3), torch.tensor([0, 1, 2]))
        finally:
            handle.remove()
        assert passes == [3 * len(CLASSNAMES)]

    def test_a_fixed_chunk_is_kept_without_measuring(self, fp32_clip, learner, monkeypatch):
        monkeypatch.setattr(text_encoding, "free_memory_bytes", lambda device: pytest.fail("memory was measured"))
        prompts, eot = flat_prompts(learner)
        passes, handle = count_text_passes(fp32_clip)
        try:
            with torch.no_grad():
                encode_prompt_embeddings(fp32_clip, prompts, eot, chunk_size=7)
        finally:
            handle.remove()
        assert passes == [7, 5]

    def test_more_free_memory_never_gives_a_smaller_chunk(self, fp32_clip, monkeypatch):
        chunks = []
        for nbytes in [0, 1, 10**4, 10**6, 10**8, 10**10, 10**12]:
            pretend_free_memory(monkeypatch, nbytes)
            chunks.append(auto_text_chunk(fp32_clip, 20, torch.device("cpu"), torch.float32))
        assert chunks == sorted(chunks)
        assert chunks[0] == chunks[1] == 1 and chunks[-1] > 1000 * chunks[2]

    def test_autocast_sizes_with_its_dtype(self, fp32_clip):
        assert text_compute_dtype(fp32_clip, "cpu") == torch.float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert text_compute_dtype(fp32_clip, "cpu") == torch.bfloat16


class TestEstimate:
    def test_grows_with_sequence_length_width_heads_and_dtype(self):
        base = sequence_working_bytes(512, 8, 20, torch.float16)
        assert sequence_working_bytes(512, 8, 77, torch.float16) > base
        assert sequence_working_bytes(768, 8, 20, torch.float16) > base
        assert sequence_working_bytes(512, 12, 20, torch.float16) > base
        assert sequence_working_bytes(512, 8, 20, torch.float32) > base

    def test_covers_at_least_the_mlp_hidden_activation(self):
        width, seq_len = 512, 20
        assert sequence_working_bytes(width, 8, seq_len, torch.float16) >= 4 * width * seq_len * 2

    def test_refuses_empty_dimensions(self):
        with pytest.raises(ValueError, match="seq_len must be >= 1"):
            sequence_working_bytes(512, 8, 0, torch.float16)


class TestFreeMemory:
    def test_cpu_reading_is_positive(self):
        assert free_memory_bytes("cpu") > 0

    def test_cuda_reading_adds_the_allocators_cached_blocks(self, monkeypatch):
        """The caching allocator hands out its reserved-but-unallocated blocks before the driver's free memory."""
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 8000))
        monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 700)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 500)
        assert free_memory_bytes("cuda:0") == 1200

    def test_unmeasurable_memory_falls_back_to_a_fixed_size(self, fp32_clip, monkeypatch):
        assert free_memory_bytes("meta") is None
        monkeypatch.setattr(text_encoding, "meminfo_available", lambda: None)
        monkeypatch.setattr(text_encoding.os, "sysconf_names", {})
        assert free_memory_bytes("cpu") is None
        assert auto_text_chunk(fp32_clip, 20, torch.device("cpu"), torch.float32) == text_encoding.UNMEASURED_CHUNK


def test_negative_chunk_size_is_refused(fp32_clip, learner):
    prompts, eot = flat_prompts(learner)
    with pytest.raises(ValueError, match="chunk_size must be >= 0"):
        encode_prompt_embeddings(fp32_clip, prompts, eot, chunk_size=-1)


def cocoop_cfg(opts):
    cfg = apply_cfg_extensions(get_cfg_default())
    merge_from_file(cfg, os.path.join(REPO, "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml"))
    merge_from_list(cfg, ["TRAINER.NAME", "CoCoOp"] + list(opts))
    return cfg


def test_text_chunk_defaults_to_automatic():
    assert cocoop_cfg([]).TRAINER.COCOOP.TEXT_CHUNK == 0


def test_negative_text_chunk_is_a_config_error():
    with pytest.raises(ConfigError, match=r"TRAINER.COCOOP.TEXT_CHUNK must be >= 0 \(0 = text passes sized"):
        build_trainer(cocoop_cfg(["TRAINER.COCOOP.TEXT_CHUNK", "-1"]))
