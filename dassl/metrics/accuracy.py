"""Top-k accuracy of a batch, in percent."""


def compute_accuracy(output, target, topk=(1,)):
    """List of top-k accuracies (1-element tensors, %); a tuple output means (logits, ...)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand(maxk, -1))
    return [correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / batch_size) for k in topk]
