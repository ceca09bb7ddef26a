"""Classification evaluator: the `=> result` block that parse_test_res.py reads."""
import os
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from ..utils import Registry

EVALUATOR_REGISTRY = Registry("EVALUATOR")


class EvaluatorBase:
    """Accumulates (model output, ground truth) batches; `evaluate()` prints and returns metrics."""

    def __init__(self, cfg):
        self.cfg = cfg

    def reset(self):
        raise NotImplementedError

    def process(self, mo, gt):
        raise NotImplementedError

    def evaluate(self):
        raise NotImplementedError


def macro_f1_score(y_true, y_pred):
    """Mean F1 over the labels present in y_true or y_pred (sklearn's default label set)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for label in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == label) & (y_true == label))
        fp = np.sum((y_pred == label) & (y_true != label))
        fn = np.sum((y_pred != label) & (y_true == label))
        scores.append(2.0 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def confusion_matrix(y_true, y_pred, num_labels):
    """Rows = true label, normalised to sum to 1 (rows of absent labels stay 0)."""
    cmat = torch.zeros(num_labels, num_labels, dtype=torch.float64)
    for t, p in zip(y_true, y_pred):
        cmat[t, p] += 1
    return cmat / cmat.sum(dim=1, keepdim=True).clamp(min=1)


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Accuracy, error rate and macro-F1 (optionally per-class accuracy and a confusion matrix)."""

    def __init__(self, cfg, lab2cname=None, **kwargs):
        super().__init__(cfg)
        self._lab2cname = lab2cname
        if cfg.TEST.PER_CLASS_RESULT and lab2cname is None:
            raise ValueError("TEST.PER_CLASS_RESULT needs the class names (lab2cname) of the dataset")
        self.reset()

    def reset(self):
        self._correct = 0
        self._total = 0
        self._y_true = []
        self._y_pred = []
        self._per_class_res = defaultdict(list) if self.cfg.TEST.PER_CLASS_RESULT else None

    def process(self, mo, gt):
        """`mo`: logits (batch x classes); `gt`: labels (batch)."""
        pred = mo.max(1)[1]
        matches = pred.eq(gt).int()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.cpu().tolist())
        self._y_pred.extend(pred.cpu().tolist())
        if self._per_class_res is not None:
            for label, match in zip(gt.cpu().tolist(), matches.cpu().tolist()):
                self._per_class_res[label].append(match)

    def evaluate(self):
        if self._total == 0:
            raise RuntimeError("Classification.evaluate() called before any batch was processed")
        acc = 100.0 * self._correct / self._total
        err = 100.0 - acc
        macro_f1 = 100.0 * macro_f1_score(self._y_true, self._y_pred)
        results = OrderedDict(accuracy=acc, error_rate=err, macro_f1=macro_f1)
        print(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.2f}%\n"
            f"* error: {err:.2f}%\n"
            f"* macro_f1: {macro_f1:.2f}%"
        )
        if self._per_class_res is not None:
            results["perclass_accuracy"] = self._print_per_class()
        if self.cfg.TEST.COMPUTE_CMAT:
            self._save_confusion_matrix()
        return results

    def _print_per_class(self):
        print("=> per-class result")
        accs = []
        for label in sorted(self._per_class_res):
            res = self._per_class_res[label]
            correct, total = sum(res), len(res)
            accs.append(100.0 * correct / total)
            print(
                f"* class: {label} ({self._lab2cname[label]})\t"
                f"total: {total:,}\tcorrect: {correct:,}\tacc: {accs[-1]:.2f}%"
            )
        mean_acc = float(np.mean(accs))
        print(f"* average: {mean_acc:.2f}%")
        return mean_acc

    def _save_confusion_matrix(self):
        num_labels = max(self._y_true + self._y_pred) + 1
        if self._lab2cname:
            num_labels = max(num_labels, len(self._lab2cname))
        cmat = confusion_matrix(self._y_true, self._y_pred, num_labels)
        os.makedirs(self.cfg.OUTPUT_DIR, exist_ok=True)
        save_path = os.path.join(self.cfg.OUTPUT_DIR, "cmat.pt")
        torch.save(cmat, save_path)
        print(f"Confusion matrix is saved to {save_path}")
