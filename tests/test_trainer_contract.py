"""The trainer contract, checked for every trainer the repository registers (as timm tests every model).

A trainer gets every check here by registering: build; one training step in
fp32 and amp (the registered parts train, everything else stays frozen);
evaluation; the checkpoint round trip; resume from an epoch checkpoint equals
an uninterrupted run; DDP (gloo, 2 processes, spawned in-process on the
trainer API, so the base's real DDP wrapping and loader sharding run) equals
one process with the same global batch. A trainer that registers no part
(zero-shot CLIP) is evaluation-only: it must leave every parameter frozen.

Tiny CLIP, the generated colour folder (6 classes, 1 shot each, one batch of 4
per epoch), defaults of each trainer's config node, CPU.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import train
from dassl.config import apply_cfg_extensions, get_cfg_default, merge_from_file, merge_from_list
from dassl.engine import TRAINER_REGISTRY, build_trainer
from dassl.utils import set_random_seed
from dassl.utils.errors import InputError
from dassl.utils.plugins import import_folder_modules, import_module_or_file
from tests.helpers.trainer_runs import REPO, killed_after, tiny_opts, write_colour_images, write_tiny_clip_checkpoint
from tests.test_tgpt_train import write_captions
from trainers.common import PromptCLIPTrainer
from trainers.coop import CoOpCLIP, build_coop_prompt_learner

for _folder in train.PLUGIN_FOLDERS:
    import_folder_modules(_folder)

# docs/new_method.md's example: a method outside trainers/ gets the same checks by registering
NEW_METHOD_EXAMPLE = import_module_or_file(os.path.join(REPO, "docs/examples/anchored_coop.py")).__name__

TRAINERS = sorted(
    name for name in TRAINER_REGISTRY.registered_names()
    if TRAINER_REGISTRY.get(name).__module__.startswith("trainers.")
    or TRAINER_REGISTRY.get(name).__module__ == NEW_METHOD_EXAMPLE
)
# Defaults that assume ViT-B/16's 12 blocks, set for the tiny CLIP's 2.
TINY_BACKBONE_OPTS = {"DPT": ["TRAINER.TOPDOWN_SECOVPT.BOTTOMLIMIT", "2"]}
CLIP_NORMALISATION = [
    "INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]",
    "INPUT.PIXEL_STD", "[0.26862954, 0.26130258, 0.27577711]",
]
# Unshuffled, unaugmented: 6 images, one batch of 4 per epoch (the last 2 dropped). SGD, not Adam: Adam's
# first step moves a parameter by +-LR whatever its gradient, so a gradient of 1e-9 whose sign differs
# between two summation orders (DDP's all-reduce) would move it by 2 LR.
RUN_OPTS = [
    "OPTIM.NAME", "sgd",
    "DATASET.NUM_SHOTS", "1",
    "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
    "DATALOADER.TRAIN_X.SAMPLER", "SequentialSampler",
    "INPUT.TRANSFORMS", "('resize', 'normalize')",
    "OPTIM.LR", "0.01",
    "TEST.NO_TEST", "True",
    "TEST.FEATURE_CACHE", "False",
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """(data root with TGP-T's captions, tiny CLIP checkpoint)."""
    root = write_colour_images(str(tmp_path_factory.mktemp("data")), per_class=4)
    write_captions(os.path.join(root, "colours"))
    return root, str(write_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip") / "tiny.pt"))


def make_cfg(name, assets, output_dir, prec="fp32", epochs=1):
    root, clip_path = assets
    cfg = apply_cfg_extensions(get_cfg_default())
    merge_from_file(cfg, os.path.join(REPO, "configs/datasets/image_folder.yaml"))
    prec_key = f"TRAINER.{TRAINER_REGISTRY.get(name).cfg_node}.PREC"
    merge_from_list(
        cfg,
        ["TRAINER.NAME", name, "DATASET.ROOT", root, "OUTPUT_DIR", str(output_dir), "SEED", "1", prec_key, prec,
         "OPTIM.MAX_EPOCH", str(epochs), *tiny_opts(clip_path), *CLIP_NORMALISATION, *RUN_OPTS,
         *TINY_BACKBONE_OPTS.get(name, [])],
    )
    return cfg


def build(name, assets, output_dir, **kwargs):
    """The trainer as train.py builds it (seeded first: the few-shot sample and the inits draw from it)."""
    cfg = make_cfg(name, assets, output_dir, **kwargs)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def modules_of(trainer):
    """Every nn.Module the trainer holds (the model, CLIP, the registered parts), unwrapped."""
    modules = [value for value in vars(trainer).values() if isinstance(value, nn.Module)]
    return [module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module for module in modules]


def parameters_of(trainer):
    """name -> parameter, over every module the trainer holds (shared ones once)."""
    seen, named = set(), {}
    for index, module in enumerate(modules_of(trainer)):
        for name, parameter in module.named_parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                named[f"{index}.{name}"] = parameter
    return named


def trained_state(trainer):
    """Registered part -> its state dict (tensors copied)."""
    return {
        name: {key: value.detach().clone() for key, value in trainer._models[name].state_dict().items() if torch.is_tensor(value)}
        for name in trainer.get_model_names()
    }


def class_independent(state, module):
    """`state` without the keys that load_model rebuilds for the current classes instead of loading."""
    rebuilt = set(getattr(module, "class_dependent_keys", ()))
    return {key: value for key, value in state.items() if key not in rebuilt}


def outputs_on_test(trainer):
    """The model's outputs on every test image, in order (the whole loader, also on a torchrun rank)."""
    trainer.set_model_mode("eval")
    with torch.no_grad():
        outputs = [trainer.model_inference(trainer.parse_batch_test(batch)[0]) for batch in trainer.test_loader]
    return [torch.cat(parts) for parts in zip(*outputs)] if isinstance(outputs[0], tuple) else [torch.cat(outputs)]


def assert_outputs_equal(actual, expected):
    assert len(actual) == len(expected) and all(torch.equal(a, e) for a, e in zip(actual, expected))


def assert_states_equal(actual, expected, **tolerance):
    assert actual.keys() == expected.keys()
    for part in expected:
        assert actual[part].keys() == expected[part].keys(), part
        for key in expected[part]:
            if tolerance:
                torch.testing.assert_close(
                    actual[part][key], expected[part][key], msg=lambda default: f"{part}.{key}: {default}", **tolerance
                )
            else:
                assert torch.equal(actual[part][key], expected[part][key]), f"{part}.{key}"


def assert_evaluation_only(trainer):
    """A trainer without registered parts trains nothing (train.py only evaluates it)."""
    assert trainer.get_model_names() == []
    assert not any(parameter.requires_grad for parameter in parameters_of(trainer).values())


@pytest.mark.parametrize("name", TRAINERS)
def test_a_missing_backbone_fails_the_config_check_before_the_dataset_is_read(name, assets, tmp_path, monkeypatch):
    cfg = make_cfg(name, assets, tmp_path)
    cfg.merge_from_list(["MODEL.BACKBONE.PATH", str(tmp_path / "missing.pt"), "DATASET.ROOT", str(tmp_path / "no_data")])
    read = []
    monkeypatch.setattr(TRAINER_REGISTRY.get(name), "build_data_loader", lambda self: read.append(True))
    with pytest.raises(InputError, match="missing.pt"):
        build_trainer(cfg)
    assert read == [], "the dataset is read only after the config check"


@pytest.mark.parametrize("name", TRAINERS)
def test_build_registers_the_trainable_parts_and_freezes_the_rest(name, assets, tmp_path):
    trainer = build(name, assets, tmp_path)
    if not trainer.get_model_names():
        assert_evaluation_only(trainer)
        return
    registered = {id(p) for part in trainer.get_model_names() for p in trainer._models[part].parameters()}
    trainable = {id(p) for p in parameters_of(trainer).values() if p.requires_grad}
    assert trainable == registered
    for part in trainer.get_model_names():
        assert trainer._optims[part] is not None and trainer._scheds[part] is not None, part
    assert not isinstance(trainer.model, nn.parallel.DistributedDataParallel), "one process: no DDP wrapper"


def model_shape(model):
    """What a finished model holds: its children, its buffers that are set, its plain attributes (by identity)."""
    return (
        {name: id(child) for name, child in model.named_children()},
        sorted(name for name, buffer in model.named_buffers(recurse=False) if buffer is not None),
        {key: id(value) for key, value in vars(model).items() if not key.startswith("_") and key != "training"},
    )


@pytest.mark.parametrize("name", [name for name in TRAINERS if issubclass(TRAINER_REGISTRY.get(name), PromptCLIPTrainer)])
def test_the_factory_returns_the_complete_model(name, assets, tmp_path, monkeypatch):
    """Nothing is assigned to the model after build_custom_clip: plug-in and frozen class features are given to it."""
    trainer_cls, shapes = TRAINER_REGISTRY.get(name), []
    factory = trainer_cls.build_custom_clip

    def recording_factory(self, *args):
        model = factory(self, *args)
        shapes.append(model_shape(model))
        return model

    monkeypatch.setattr(trainer_cls, "build_custom_clip", recording_factory)
    trainer = build(name, assets, tmp_path)
    assert shapes == [model_shape(trainer.custom_clip)]


def test_a_factory_that_drops_the_text_plugin_fails_the_build(assets, tmp_path):
    class ForgetfulCoOp(TRAINER_REGISTRY.get("CoOp")):
        def build_custom_clip(self, cfg, classnames, clip_model):
            return CoOpCLIP(clip_model, build_coop_prompt_learner(cfg, classnames, clip_model))

    cfg = make_cfg("CoOp", assets, tmp_path)
    with pytest.raises(TypeError, match=r"ForgetfulCoOp.build_custom_clip must give its model self.build_text_plugin"):
        ForgetfulCoOp(cfg)


@pytest.mark.parametrize("prec", ["fp32", "amp"])
@pytest.mark.parametrize("name", TRAINERS)
def test_one_step_trains_the_registered_parts_and_nothing_else(name, prec, assets, tmp_path):
    trainer = build(name, assets, tmp_path, prec=prec)
    if not trainer.get_model_names():
        assert_evaluation_only(trainer)
        return
    before = {key: p.detach().clone() for key, p in parameters_of(trainer).items()}
    losses = []
    step = trainer.forward_backward

    def recording_step(batch):
        summary = step(batch)
        losses.append(summary["loss"])
        return summary

    trainer.forward_backward = recording_step
    trainer.train()
    assert len(losses) == 1 and torch.isfinite(torch.tensor(losses)).all()
    after = parameters_of(trainer)
    for key, parameter in after.items():
        if not parameter.requires_grad:
            assert torch.equal(parameter, before[key]), f"frozen {key} changed"
        else:
            assert parameter.dtype == torch.float32, f"{key}: fp32 and amp train fp32 parameters"
    for part in trainer.get_model_names():
        changed = [not torch.equal(p, before[key]) for key, p in after.items() if any(p is q for q in trainer._models[part].parameters())]
        assert any(changed), f"no parameter of {part} changed"


@pytest.mark.parametrize("name", TRAINERS)
def test_evaluation_returns_an_accuracy(name, assets, tmp_path):
    trainer = build(name, assets, tmp_path)
    accuracy = trainer.test()
    assert 0.0 <= accuracy <= 100.0
    assert trainer.last_test_results["accuracy"] == accuracy


@pytest.fixture(scope="module")
def uninterrupted(assets, tmp_path_factory):
    """name -> (output folder, trained state, test outputs, accuracy) of an uninterrupted 2-epoch run, run once."""
    runs = {}

    def run(name):
        if name not in runs:
            out = tmp_path_factory.mktemp(f"uninterrupted_{name}")
            trainer = build(name, assets, out, epochs=2)
            if trainer.get_model_names():
                trainer.train()
            runs[name] = out, trained_state(trainer), outputs_on_test(trainer), trainer.test()
        return runs[name]

    return run


@pytest.mark.parametrize("name", TRAINERS)
def test_checkpoint_round_trip_restores_the_trained_state(name, assets, tmp_path, uninterrupted):
    """load_model restores every trained tensor except the class-dependent ones it rebuilds (for evaluation
    on other classes); the test outputs are exactly the trained model's."""
    out, trained, outputs, _ = uninterrupted(name)
    fresh = build(name, assets, tmp_path)
    if not fresh.get_model_names():
        assert_evaluation_only(fresh)
        return
    assert any(not torch.equal(value, trained[part][key]) for part, state in trained_state(fresh).items()
               for key, value in state.items()), "the trained state must differ from a fresh build"
    fresh.load_model(str(out), epoch=2)
    parts = {name: fresh._models[name] for name in fresh.get_model_names()}
    loaded = {part: class_independent(state, parts[part]) for part, state in trained_state(fresh).items()}
    assert_states_equal(loaded, {part: class_independent(state, parts[part]) for part, state in trained.items()})
    assert_outputs_equal(outputs_on_test(fresh), outputs)


@pytest.mark.parametrize("name", TRAINERS)
def test_resume_from_an_epoch_checkpoint_equals_the_uninterrupted_run(name, assets, tmp_path, uninterrupted):
    _, trained, outputs, _ = uninterrupted(name)
    killed = build(name, assets, tmp_path, epochs=2)
    if not killed.get_model_names():
        assert_evaluation_only(killed)
        return
    with killed_after(type(killed), "after_epoch", lambda trainer: trainer.epoch == 0), pytest.raises(KeyboardInterrupt):
        killed.train()
    resumed = build(name, assets, tmp_path, epochs=2)
    resumed.train()
    assert resumed.start_epoch == 1
    assert_states_equal(trained_state(resumed), trained)
    assert_outputs_equal(outputs_on_test(resumed), outputs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_rank(rank, port, assets, folder):
    """One of 2 gloo ranks: every trainer trains 2 epochs of one step (global batch 4) and evaluates;
    rank 0 saves the outcome."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    outcome = {}
    for name in TRAINERS:
        trainer = build(name, assets, os.path.join(folder, name), epochs=2)
        if trainer.get_model_names():
            trainer.train()
        wrapped = isinstance(trainer.__dict__.get("model"), nn.parallel.DistributedDataParallel)
        outcome[name] = {
            "state": trained_state(trainer), "outputs": outputs_on_test(trainer), "accuracy": trainer.test(), "wrapped": wrapped
        }
    if rank == 0:
        torch.save(outcome, os.path.join(folder, "outcome.pt"))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_outcome(assets, tmp_path_factory):
    """name -> (state, test outputs, accuracy, DDP-wrapped) after 2 steps under 2 spawned gloo ranks, for every trainer."""
    folder = str(tmp_path_factory.mktemp("ddp"))
    mp.spawn(ddp_rank, args=(free_port(), assets, folder), nprocs=2, join=True)
    return torch.load(os.path.join(folder, "outcome.pt"), weights_only=True)


@pytest.mark.parametrize("name", TRAINERS)
def test_ddp_with_two_processes_equals_one_process_with_the_same_global_batch(name, assets, ddp_outcome, uninterrupted):
    """The uninterrupted 2-epoch run is the single process."""
    _, single_state, single_outputs, single_accuracy = uninterrupted(name)
    outcome = ddp_outcome[name]
    assert outcome["wrapped"] == bool(single_state), "a trainer with trainable parts trains them in DDP"
    assert_states_equal(outcome["state"], single_state, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(outcome["outputs"], single_outputs, atol=1e-4, rtol=1e-4)
    assert outcome["accuracy"] == pytest.approx(single_accuracy), "sharded evaluation, gathered"

