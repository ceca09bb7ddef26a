"""DataManager: dataset + transforms + loaders, as the trainers expect them."""
import os
import time

import torch
from tabulate import tabulate
from torch.utils.data import DataLoader

from .dataset_wrapper import DatasetWrapper
from ..utils.atomic import remove_stale_temp_files
from .datasets import build_dataset
from .datasets.dataset_errors import DatasetProblem
from .datasets.few_shot import FEWSHOT_DIR
from .image_check import check_dataset_images
from .samplers import build_sampler
from .transforms import build_transform


def build_data_loader(cfg, sampler_type, data_source, batch_size, tfm=None, is_train=True, dataset_wrapper=None, n_domain=0, n_ins=2):
    """A DataLoader; drop_last only in epoch-mode training and only if there is at least one full batch."""
    if not data_source:
        raise DatasetProblem("Cannot build a data loader over an empty list of images; check the dataset's split "
                             "file and DATASET.NUM_SHOTS / DATASET.SUBSAMPLE_CLASSES")
    wrapper = (dataset_wrapper or DatasetWrapper)(cfg, data_source, transform=tfm, is_train=is_train)
    loader = DataLoader(
        wrapper,
        batch_size=batch_size,
        sampler=build_sampler(sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size, n_domain=n_domain, n_ins=n_ins),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(data_source) >= batch_size and cfg.OPTIM.MAX_ITER <= 0,
        pin_memory=torch.cuda.is_available() and cfg.USE_CUDA,
    )
    assert len(loader) > 0
    return loader


STALE_TEMP_AGE = 3600  # seconds: parallel runs write split files too, but never for this long


def remove_dataset_temp_files(dataset):
    """Temp files of split / few-shot writes that were killed (older than an hour) in the dataset's folders."""
    folder = getattr(dataset, "dataset_dir", "")
    if isinstance(folder, str) and os.path.isabs(folder):
        for path in (folder, os.path.join(folder, FEWSHOT_DIR)):
            remove_stale_temp_files(path, older_than=time.time() - STALE_TEMP_AGE)


class DataManager:
    """Builds the dataset named by DATASET.NAME and its train_x / train_u / val / test loaders."""

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None):
        dataset = build_dataset(cfg)
        remove_dataset_temp_files(dataset)
        check_dataset_images(dataset)
        if custom_tfm_train is None:
            tfm_train = build_transform(cfg, is_train=True)
        else:
            print("* Using custom transform for training")
            tfm_train = custom_tfm_train
        if custom_tfm_test is None:
            tfm_test = build_transform(cfg, is_train=False)
        else:
            print("* Using custom transform for testing")
            tfm_test = custom_tfm_test
        loaders = cfg.DATALOADER

        def eval_loader(data_source):
            return build_data_loader(
                cfg, loaders.TEST.SAMPLER, data_source, loaders.TEST.BATCH_SIZE, tfm_test, False, dataset_wrapper
            )

        self.train_loader_x = build_data_loader(
            cfg, loaders.TRAIN_X.SAMPLER, dataset.train_x, loaders.TRAIN_X.BATCH_SIZE, tfm_train, True, dataset_wrapper,
            loaders.TRAIN_X.N_DOMAIN, loaders.TRAIN_X.N_INS,
        )
        self.train_loader_u = None
        if dataset.train_u:
            unlabelled = loaders.TRAIN_X if loaders.TRAIN_U.SAME_AS_X else loaders.TRAIN_U
            self.train_loader_u = build_data_loader(
                cfg, unlabelled.SAMPLER, dataset.train_u, unlabelled.BATCH_SIZE, tfm_train, True, dataset_wrapper,
                unlabelled.N_DOMAIN, unlabelled.N_INS,
            )
        self.val_loader = eval_loader(dataset.val) if dataset.val else None
        if not dataset.test:
            raise DatasetProblem(f"Dataset {cfg.DATASET.NAME} has an empty test split; check its split file "
                                 "and DATASET.SUBSAMPLE_CLASSES")
        self.test_loader = eval_loader(dataset.test)
        self.dataset = dataset
        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self):
        return self._num_classes

    @property
    def num_source_domains(self):
        return self._num_source_domains

    @property
    def lab2cname(self):
        return self._lab2cname

    def show_dataset_summary(self, cfg):
        table = [["Dataset", cfg.DATASET.NAME]]
        if cfg.DATASET.SOURCE_DOMAINS:
            table.append(["Source", cfg.DATASET.SOURCE_DOMAINS])
        if cfg.DATASET.TARGET_DOMAINS:
            table.append(["Target", cfg.DATASET.TARGET_DOMAINS])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.train_u:
            table.append(["# train_u", f"{len(self.dataset.train_u):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        print(tabulate(table))
