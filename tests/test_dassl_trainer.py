"""TrainerBase bookkeeping that the end-to-end runs do not reach."""
import pytest
import torch
from yacs.config import CfgNode as CN

from dassl.config import get_cfg_default
from dassl.engine import TrainerBase


def trainer_with_model():
    trainer = TrainerBase()
    trainer.cfg = get_cfg_default()
    trainer.cfg.TRAINER.COOP = CN()
    trainer.cfg.TRAINER.COOP.PREC = "fp16"
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer.register_model("learner", model, optimizer, None)
    return trainer, model


def test_non_finite_loss_raises_with_epoch_batch_and_precision_hint():
    trainer, model = trainer_with_model()
    trainer.epoch, trainer.batch_idx = 2, 6
    loss = model(torch.ones(1, 2)).sum() * float("nan")
    with pytest.raises(FloatingPointError, match=r"epoch 3, batch 7.*TRAINER\.COOP\.PREC amp or fp32"):
        trainer.model_backward_and_update(loss)


def test_backward_and_update_steps_the_registered_optimizer():
    trainer, model = trainer_with_model()
    before = model.weight.detach().clone()
    trainer.model_backward_and_update(model(torch.ones(1, 2)).sum())
    assert torch.allclose(model.weight, before - 0.5)
    assert trainer.get_current_lr() == 0.5 and trainer.get_model_names() == ["learner"]


def test_registration_and_mode_errors_are_explicit():
    trainer, model = trainer_with_model()
    with pytest.raises(KeyError, match="already registered"):
        trainer.register_model("learner", model)
    with pytest.raises(KeyError, match="'train', 'eval'"):
        trainer.set_model_mode("training")
    trainer.set_model_mode("eval")
    assert not model.training
    with pytest.raises(KeyError, match="registered"):
        trainer.get_model_names("other")


def test_save_then_load_model_by_epoch(tmp_path):
    trainer, model = trainer_with_model()
    trainer.save_model(epoch=4, directory=str(tmp_path))
    fresh, fresh_model = trainer_with_model()
    fresh.load_model(str(tmp_path), epoch=5)
    assert torch.equal(fresh_model.weight, model.weight)
    with pytest.raises(FileNotFoundError, match=r"model\.pth\.tar-9.*\['model\.pth\.tar-5'\].*--load-epoch"):
        fresh.load_model(str(tmp_path), epoch=9)
