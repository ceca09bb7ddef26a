"""SlowToyTrainer: ToyTrainer with a pause after every step, so that a test can signal or kill
a run in the middle of its training (the pause changes no number)."""
import time

from dassl.engine import TRAINER_REGISTRY
from tests.helpers.toy_dataset import ToyTrainer

STEP_SECONDS = 0.05


@TRAINER_REGISTRY.register()
class SlowToyTrainer(ToyTrainer):
    def forward_backward(self, batch):
        summary = super().forward_backward(batch)
        time.sleep(STEP_SECONDS)
        return summary
