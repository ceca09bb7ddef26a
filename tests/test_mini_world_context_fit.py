"""The shipped MiniCLIP's text tower must respond to learned context, or prompt learning cannot work.

CoOp's shared context, trained on a fixed batch of a mini dataset's base-class
training shots (frozen image features), should fit far more of them than the
hand-written prompt it starts from, and ideally about as many as a linear
probe on the same features (90-100 %). The tiny random CLIP is the control:
its text tower responds to context, so the diagnostic can pass.
"""
import pytest
import torch
import torch.nn.functional as F

import clip
from datasets.mini_world import extract_all
from tests.helpers.tiny_clip import make_tiny_clip
from tests.helpers.tool_scripts import load_tool

context_fit = load_tool("context_fit")
STEPS = 300
TARGET = 0.9
# Measured on the shipped MiniCLIP (300 steps, lr 0.1; tools/pretrain_miniclip.py's docstring has the
# recipes behind it): an unregularised linear probe fits 99 % / 100 % of these shots.
SHIPPED_FIT = {"mini_clipart": "28.3 % -> 37.9 %", "mini_fashion_mnist": "36.3 % -> 82.5 %"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return extract_all(tmp_path_factory.mktemp("mini_world"))


@pytest.mark.parametrize("dataset_dir", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"shipped MiniCLIP's context fit is {fit}"))
    for name, fit in SHIPPED_FIT.items()
])
def test_learned_context_fits_the_base_training_shots_of_the_shipped_miniclip(root, dataset_dir):
    torch.set_num_threads(1)
    model, preprocess = clip.load("MiniCLIP")
    result = context_fit.measure(model, preprocess, root / dataset_dir, steps=STEPS)
    assert result["after"] >= TARGET, result


def test_learned_context_moves_the_shipped_miniclip_far_beyond_its_hand_written_prompt(root):
    """Issue #22's guard: on MiniFashionMNIST, MiniCLIP's domain gap, learned context must fit far more base
    shots than "a photo of a" does; a text tower that ignores the context words stays near the zero-step fit."""
    torch.set_num_threads(1)
    model, preprocess = clip.load("MiniCLIP")
    result = context_fit.measure(model, preprocess, root / "mini_fashion_mnist", steps=STEPS)
    assert result["after"] >= 0.75 and result["after"] - result["before"] >= 0.3, result


def test_learned_context_fits_a_fixed_batch_through_a_text_tower_that_responds_to_it():
    torch.manual_seed(0)
    model = make_tiny_clip()
    classnames = ["cat", "dog", "car", "tree", "boat", "lamp"]
    features = F.normalize(torch.randn(len(classnames) * 4, model.text_projection.shape[1]), dim=-1)
    labels = torch.arange(len(classnames)).repeat(4)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    before = context_fit.context_fit_accuracy(model, features, labels, classnames, steps=0)
    after = context_fit.context_fit_accuracy(model, features, labels, classnames, steps=STEPS)
    assert after >= TARGET > before
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_a_low_logit_scale_caps_what_free_class_vectors_fit():
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(8, 16), dim=-1)
    labels = torch.arange(8).repeat(6)
    features = F.normalize(centres[labels] + 0.5 * torch.randn(len(labels), 16), dim=-1)
    low = context_fit.free_class_vector_fit(features, labels, logit_scale=1.0)
    assert context_fit.free_class_vector_fit(features, labels, logit_scale=15.0) == 1.0 > low


def test_base_training_shots_take_the_first_shots_of_each_base_class(root):
    chosen, classnames = context_fit.base_training_shots(root / "mini_clipart", shots=3)
    assert len(classnames) == 17  # ceil(33 / 2)
    assert [label for _, label in chosen] == [label for label in range(17) for _ in range(3)]
    assert all(path.is_file() for path, _ in chosen)
