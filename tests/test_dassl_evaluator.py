"""The Classification evaluator's printed block (the parse contract) and its metrics."""
import pytest
import torch

from dassl.config import get_cfg_default
from dassl.evaluation import build_evaluator, macro_f1_score
from dassl.metrics import compute_accuracy


def logits_for(preds, num_classes=3):
    return torch.nn.functional.one_hot(torch.tensor(preds), num_classes).float()


def test_result_block_text_and_returned_metrics(capsys):
    evaluator = build_evaluator(get_cfg_default(), lab2cname={0: "a", 1: "b", 2: "c"})
    evaluator.process(logits_for([0, 1, 1]), torch.tensor([0, 1, 2]))
    evaluator.process(logits_for([2]), torch.tensor([2]))
    results = evaluator.evaluate()
    assert capsys.readouterr().out == (
        "=> result\n* total: 4\n* correct: 3\n* accuracy: 75.00%\n* error: 25.00%\n* macro_f1: 77.78%\n"
    )
    assert list(results) == ["accuracy", "error_rate", "macro_f1"]
    assert results["accuracy"] == 75.0 and results["macro_f1"] == pytest.approx(700 / 9)


def test_macro_f1_counts_labels_that_are_only_predicted():
    assert macro_f1_score([0, 0], [0, 1]) == pytest.approx((2 / 3 + 0) / 2)


def test_per_class_result_and_confusion_matrix(tmp_path, capsys):
    cfg = get_cfg_default()
    cfg.TEST.PER_CLASS_RESULT = True
    cfg.TEST.COMPUTE_CMAT = True
    cfg.OUTPUT_DIR = str(tmp_path)
    evaluator = build_evaluator(cfg, lab2cname={0: "cat", 1: "dog"})
    evaluator.process(logits_for([0, 1, 1, 1], 2), torch.tensor([0, 0, 1, 1]))
    results = evaluator.evaluate()
    out = capsys.readouterr().out
    assert "* class: 0 (cat)\ttotal: 2\tcorrect: 1\tacc: 50.00%" in out and "* average: 75.00%" in out
    assert results["perclass_accuracy"] == 75.0
    assert torch.equal(torch.load(tmp_path / "cmat.pt", weights_only=True), torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=torch.float64))


def test_compute_accuracy_top_k_and_tuple_outputs():
    output = torch.tensor([[0.1, 0.7, 0.2], [0.8, 0.15, 0.05]])
    top1, top2 = compute_accuracy((output, None), torch.tensor([2, 0]), topk=(1, 2))
    assert top1.item() == 50.0 and top2.item() == 100.0
