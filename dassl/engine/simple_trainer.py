"""SimpleTrainer: data, model, evaluator, and the epoch-based train / test loop."""
import datetime
import os
import time

import numpy as np
import torch
from tqdm import tqdm

from ..data import DataManager
from ..evaluation import build_evaluator
from ..utils import console_stream, mkdir_if_missing
from .device import resolve_device
from .distributed import GatheringEvaluator, distribute_train_loader, is_distributed, shard_loader
from .trainer_base import TrainerBase


def format_elapsed(seconds):
    return str(datetime.timedelta(seconds=int(round(seconds))))


class SimpleTrainer(TrainerBase):
    """Builds the data loaders (`build_data_loader`) and the model (`build_model`, by subclasses)."""

    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        self.device = resolve_device(cfg)
        self.start_epoch = self.epoch = 0
        self.batch_idx = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.last_test_results = None
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        if is_distributed():
            self.evaluator = GatheringEvaluator(self.evaluator)
        self.best_result = -np.inf

    def check_cfg(self, cfg):
        """Hook: raise on config values this trainer cannot run with (runs before anything is built)."""

    def build_data_loader(self):
        dm = DataManager(self.cfg)
        self.train_loader_x = distribute_train_loader(dm.train_loader_x, self.cfg.SEED)
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self):
        """Build, move to `self.device` and `register_model` the learnable modules."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement build_model(): build the model, its optimizer "
            "(dassl.optim.build_optimizer) and scheduler (build_lr_scheduler), then self.register_model(...)"
        )

    def train(self):
        """Train from the start epoch (or a resumed one) to OPTIM.MAX_EPOCH; returns the final test results."""
        return super().train(self.start_epoch, self.max_epoch)

    def before_train(self):
        directory = self.cfg.RESUME or self.cfg.OUTPUT_DIR
        self.start_epoch = self.resume_model_if_exist(directory)
        writer_dir = os.path.join(self.output_dir, "tensorboard")
        mkdir_if_missing(writer_dir)
        self.init_writer(writer_dir)
        self.time_start = time.time()
        self.epoch_bar = tqdm(
            total=self.max_epoch, initial=self.start_epoch, desc="epochs", file=console_stream(), disable=None, position=0
        )

    def after_epoch(self):
        last_epoch = (self.epoch + 1) == self.max_epoch
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        meet_checkpoint_freq = freq > 0 and (self.epoch + 1) % freq == 0
        if not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            if curr_result > self.best_result:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        every = self.cfg.TRAIN.SAVE_RESUMABLE_EVERY
        resumable = every > 0 and (self.epoch + 1) % every == 0
        if meet_checkpoint_freq or last_epoch or resumable:
            self.save_resumable_state(self.epoch, self.output_dir, self.checkpoint_requested)
        self.epoch_bar.update(1)

    def checkpoint_requested(self, number):
        """Whether checkpoint `model.pth.tar-<number>` is one the user keeps (CHECKPOINT_FREQ, or the final one)."""
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        return number == self.max_epoch or (freq > 0 and number % freq == 0)

    def stop_if_preempted(self, where, done, resume_at):
        """After a SIGTERM/SIGUSR1: save the mid-pass state (`done` epochs or iterations finished; a restart
        resumes at `resume_at`) where it is exact, then raise Preempted."""
        if not self.preemption.signal_name:
            return
        unsupported = self.mid_pass_state_unsupported()
        if unsupported:
            print(f"No mid-epoch state saved ({unsupported}); a restart resumes from the last end-of-epoch state")
            saved = f"the run resumes from its last saved state in {self.output_dir}" if done else "nothing was saved yet"
        else:
            self.save_mid_pass_state(done, self.pass_batches_done, resume_at)
            saved = f"its state is saved in {self.output_dir} and a restart resumes at {resume_at}"
        self.preemption.check(where, saved)

    def mid_pass_state_unsupported(self):
        """Why a mid-pass state would not resume exactly (None where it would)."""
        if self.cfg.TRAIN.SAVE_RESUMABLE_EVERY <= 0:
            return "TRAIN.SAVE_RESUMABLE_EVERY is 0"
        if is_distributed():
            return "the per-rank loaders of torchrun are not restored mid-pass"
        return None

    def after_train(self):
        self.epoch_bar.close()
        print("Finish training")
        results = None
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
            results = self.last_test_results
        print(f"Elapsed: {format_elapsed(time.time() - self.time_start)}")
        self.close_writer()
        return results

    @torch.no_grad()
    def test(self, split=None):
        """Evaluate on TEST.SPLIT (or `split`); returns the first metric (accuracy)."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = split or self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        print(f"Evaluate on the *{split}* set")
        for input, label in self.evaluation_batches(data_loader, split):
            self.evaluator.process(self.model_inference(input), label)
        results = self.evaluator.evaluate()
        for key, value in results.items():
            self.write_scalar(f"{split}/{key}", value, self.epoch)
        self.last_test_results = results
        return list(results.values())[0]

    def evaluation_loader(self, data_loader, split):
        """The batches this process evaluates (its shard under torchrun), with a progress bar."""
        return tqdm(shard_loader(data_loader), desc=f"eval {split}", file=console_stream(), disable=None, leave=False)

    def evaluation_batches(self, data_loader, split):
        """(model input, labels) of an evaluation; a hook (e.g. inputs served from a feature cache)."""
        for batch in self.evaluation_loader(data_loader, split):
            yield self.parse_batch_test(batch)

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
