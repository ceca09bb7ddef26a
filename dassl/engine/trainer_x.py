"""TrainerX: one pass over the labelled loader per epoch, with the Dassl log line."""
import datetime
import time

from tqdm import tqdm

from ..utils import AverageMeter, MetricMeter, console_stream
from .iteration_mode import IterationLoop
from .simple_trainer import SimpleTrainer


class TrainerX(IterationLoop, SimpleTrainer):
    """Trains on labelled data only. Subclasses implement `forward_backward(batch) -> dict`.

    The LR schedule is per epoch; trainers step it themselves by calling
    `update_lr()` at the last batch (`self.batch_idx + 1 == self.num_batches`).
    With OPTIM.MAX_ITER > 0 training runs in iteration mode instead (see
    IterationLoop), where the engine steps the scheduler before every step.
    """

    def train(self):
        if self.cfg.OPTIM.MAX_ITER > 0:
            return self.train_by_iterations()
        return super().train()

    def run_epoch(self):
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        bar = tqdm(
            total=self.num_batches, desc=f"epoch {self.epoch + 1}", file=console_stream(), disable=None, position=1, leave=False
        )
        end = time.time()
        for self.batch_idx, batch in self.train_batches():
            data_time.update(time.time() - end)
            loss_summary = self.forward_backward(batch)
            self.stop_if_preempted(
                f"epoch {self.epoch + 1} batch {self.batch_idx + 1}",
                self.epoch,
                f"epoch {self.epoch + 1} batch {self.batch_idx + 2}",
            )
            batch_time.update(time.time() - end)
            losses.update(loss_summary)
            bar.update(1)
            if self._should_print():
                self._print_progress(losses, batch_time, data_time)
            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)
            end = time.time()
        bar.close()

    def _should_print(self):
        freq = self.cfg.TRAIN.PRINT_FREQ
        return (self.batch_idx + 1) % freq == 0 or self.num_batches < freq

    def _print_progress(self, losses, batch_time, data_time):
        remaining = self.num_batches - self.batch_idx - 1 + (self.max_epoch - self.epoch - 1) * self.num_batches
        eta = datetime.timedelta(seconds=int(batch_time.avg * remaining))
        print(
            f"epoch [{self.epoch + 1}/{self.max_epoch}] "
            f"batch [{self.batch_idx + 1}/{self.num_batches}] "
            f"time {batch_time.val:.3f} ({batch_time.avg:.3f}) "
            f"data {data_time.val:.3f} ({data_time.avg:.3f}) "
            f"{losses} "
            f"lr {self.get_current_lr():.4e} "
            f"eta {eta}"
        )

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
