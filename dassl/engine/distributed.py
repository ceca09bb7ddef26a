"""Multi-process training through PyTorch's DistributedDataParallel (`torchrun --nproc_per_node=N train.py ...`).

Conventions:
- DATALOADER.TRAIN_X.BATCH_SIZE stays the *global* batch: each of the N ranks
  loads BATCH_SIZE / N images per step (it must divide), DDP averages the
  gradients, so a step equals a single-process step on the same images.
- Evaluation is sharded: rank r takes items r, r + N, ...; the outputs are
  gathered back in dataset order, so every rank gets the full result.
- Only rank 0 writes logs, checkpoints and the done marker.
- A model whose training step pools the batch (BatchNorm, a cache written
  from the batch) pools every rank's share (`BatchNormOverRanks`,
  `all_gather_rows`), and a mean over a varying number of items per rank
  (tokens not ignored) is weighted by `share_of_global_count`, so the step
  still equals the single-process one.
Without WORLD_SIZE > 1 in the environment nothing here changes anything.
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # noqa: F401  (all_reduce with a backward, for BatchNormOverRanks)
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler

from dassl.config.checks import invalid_value


def init_distributed_from_env():
    """Join the process group torchrun describes (WORLD_SIZE > 1); returns whether it did.

    NCCL on CUDA (one GPU per rank, LOCAL_RANK), gloo on CPU.
    """
    if requested_world_size() <= 1 or is_distributed():
        return is_distributed()
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if is_distributed() else 0


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main_process():
    return rank() == 0


def synchronize():
    if is_distributed():
        dist.barrier()


def requested_world_size():
    """The number of processes torchrun starts (WORLD_SIZE), known before the process group is joined."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_global_batch(global_batch_size, n_processes):
    """The global batch must split evenly over the processes (train.py checks it at config time)."""
    if global_batch_size % n_processes:
        raise invalid_value(
            "DATALOADER.TRAIN_X.BATCH_SIZE",
            global_batch_size,
            f"a multiple of the {n_processes} torchrun processes (it is the global batch, split over them)",
        )


def local_batch_size(global_batch_size):
    """This rank's share of the global batch."""
    check_global_batch(global_batch_size, world_size())
    return global_batch_size // world_size()


class _EpochAdvancingSampler(DistributedSampler):
    """A DistributedSampler that reshuffles on every pass without a set_epoch call."""

    def __iter__(self):
        indices = super().__iter__()
        self.set_epoch(self.epoch + 1)
        return indices


def distribute_train_loader(loader, seed):
    """The same loader with this rank's share of every global batch (shuffled iff it was)."""
    if not is_distributed():
        return loader
    sampler = _EpochAdvancingSampler(
        loader.dataset, shuffle=isinstance(loader.sampler, RandomSampler), seed=max(seed, 0)
    )
    return DataLoader(
        loader.dataset,
        batch_size=local_batch_size(loader.batch_size),
        sampler=sampler,
        num_workers=loader.num_workers,
        drop_last=loader.drop_last,
        pin_memory=loader.pin_memory,
        collate_fn=loader.collate_fn,
    )


def shard_indices(n):
    """This rank's evaluation items: r, r + N, r + 2N, ..."""
    return list(range(rank(), n, world_size()))


class _ShardSampler(Sampler):
    def __init__(self, n):
        self.indices = shard_indices(n)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def shard_loader(loader):
    """The evaluation loader over this rank's items (the loader itself when not distributed)."""
    if not is_distributed():
        return loader
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=_ShardSampler(len(loader.dataset)),
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        collate_fn=loader.collate_fn,
    )


def gather_interleaved(local_rows):
    """Rows of every rank's shard (r, r + N, ...) put back in dataset order, on every rank."""
    if not is_distributed():
        return local_rows
    parts = [None] * world_size()
    dist.all_gather_object(parts, local_rows.cpu())
    total = sum(len(part) for part in parts)
    rows = parts[0].new_empty((total, *parts[0].shape[1:]))
    for r, part in enumerate(parts):
        rows[r::world_size()] = part
    return rows


class GatheringEvaluator:
    """Wraps a Dassl evaluator: keeps this rank's (outputs, labels), hands the gathered ones over at evaluate()."""

    def __init__(self, evaluator):
        self.evaluator = evaluator
        self.reset()

    def reset(self):
        self.evaluator.reset()
        self._outputs, self._labels = [], []

    def process(self, mo, gt):
        self._outputs.append(mo.detach().float().cpu())
        self._labels.append(gt.detach().cpu())

    def _local(self, rows, like_shape):
        return torch.cat(rows) if rows else torch.empty(like_shape)

    def evaluate(self):
        n_classes = self._outputs[0].shape[1] if self._outputs else 0
        outputs = gather_interleaved(self._local(self._outputs, (0, n_classes)))
        labels = gather_interleaved(self._local(self._labels, (0,)).long())
        self.evaluator.reset()
        self.evaluator.process(outputs, labels)
        return self.evaluator.evaluate()

    def __getattr__(self, name):
        return getattr(self.evaluator, name)


def share_of_global_count(count):
    """count * N / (the ranks' total count), 1 outside torchrun: a loss averaged over this rank's `count`
    items, times this, makes DDP's average of the ranks' gradients that of the mean over all their items."""
    if not is_distributed():
        return 1.0
    total = count.detach().float().clone()
    dist.all_reduce(total)
    return count.float() * world_size() / total


def all_gather_rows(rows):
    """Every rank's `rows` (first dimensions may differ) concatenated in rank order, without gradient;
    `rows` itself outside torchrun."""
    if not is_distributed():
        return rows
    sizes = [torch.zeros(1, dtype=torch.long, device=rows.device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([rows.shape[0]], device=rows.device))
    longest = max(int(size) for size in sizes)
    padded = rows.new_zeros((longest, *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[: int(size)] for part, size in zip(parts, sizes)])


class BatchNormOverRanks(torch.nn.BatchNorm1d):
    """BatchNorm1d whose training statistics pool every rank's rows, as one process over the global
    batch would; the plain BatchNorm1d outside torchrun. (SyncBatchNorm does this on GPUs only.)"""

    def forward(self, rows):
        if not (self.training and is_distributed()):
            return super().forward(rows)
        count = torch.tensor([float(rows.shape[0])], device=rows.device)
        dist.all_reduce(count)
        sums = torch.distributed.nn.functional.all_reduce(torch.stack([rows.sum(0), (rows * rows).sum(0)]))
        mean = sums[0] / count
        variance = sums[1] / count - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(variance * count / (count - 1), self.momentum)
        return (rows - mean) * torch.rsqrt(variance + self.eps) * self.weight + self.bias


def wrap_for_training(model, device):
    """DDP over the whole model (only parameters that require grad are synchronised)."""
    if not is_distributed():
        return model
    device_ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


class RankOutput:
    """Stands in for the run logger on ranks > 0: their stdout is dropped, their tracebacks go to stderr."""

    def __init__(self):
        self.stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")
        self.file = sys.stderr

    def close(self):
        sys.stdout.close()
        sys.stdout = self.stdout
