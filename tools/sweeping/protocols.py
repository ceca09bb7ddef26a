"""What each protocol runs, as data: the datasets, the source and targets of the
transfer protocols, and the config each method trains with per shot count.

Base-to-new and few-shot train on every dataset; cross-dataset (xd) and domain
generalisation (dg) train once per seed on the source, 16 shots of all its
classes (--shots changes it), and evaluate that one model on every target.
"""
from reporting.published import TRANSFER_SOURCE, benchmarks, dg_targets

PROTOCOLS = ("base2new", "fewshot", "xd", "dg")
FEWSHOT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_SOURCE = TRANSFER_SOURCE


def default_datasets(protocol, source=DEFAULT_SOURCE):
    """The datasets a protocol runs on when --datasets is not given (the targets for xd and dg)."""
    if protocol == "dg":
        return dg_targets()
    if protocol == "xd":
        return [d for d in benchmarks() if d != source]
    return benchmarks()


# Per-shot configs, method (the trainer a row launches) -> {shots: config}. A
# row given with an explicit `Trainer:cfg` uses that config at every shot count.
# Sources: CoOp's COOP.md (RN50: rn50_ep50 for 1 shot, rn50_ep100 for 2 and 4,
# rn50 for 8 and 16; the *_ep50 configs on ImageNet at every shot count). The
# other papers give no per-shot configs: their default config serves every shot
# count (TGP-T's authors reuse their 16-shot files; KgCoOp's few-shot script runs
# its base-to-new config; DPT's configs hold its few-shot settings).
COOP_FEWSHOT = {1: "rn50_ep50", 2: "rn50_ep100", 4: "rn50_ep100", 8: "rn50", 16: "rn50"}
FEWSHOT_CONFIGS = {"CoOp": COOP_FEWSHOT}
IMAGENET_FEWSHOT_CONFIGS = {"CoOp": dict.fromkeys(FEWSHOT_SHOTS, "rn50_ep50")}


def fewshot_config(trainer, default_config, dataset, shots):
    """The config a method trains with on `dataset` at `shots` shots."""
    table = IMAGENET_FEWSHOT_CONFIGS if dataset == "imagenet" else FEWSHOT_CONFIGS
    return table.get(trainer, {}).get(shots, default_config)


# Config families: a row `Trainer:<family>` runs, per shot count, the config its trainer's
# table names (for a shot count not listed, the entry of the largest listed count below it;
# without a shot count, as in base-to-new, the 16-shot entry).
#
# mini_fewshot (scripts/mini_fewshot.sh): the mini world's few-shot protocol within about
# 1,200 CPU-seconds (10 minutes on 2 cores) for all its 276 runs. A step costs the same at
# every shot count while an epoch has one batch per 32 training images, so the 20-epoch mini
# schedule spends 16x more steps at 16 shots than at 1 (620 of the 820 steps per seed on the
# two datasets go to 8 and 16 shots). Here 1, 2 and 4 shots keep the mini configs and 8 and
# 16 shots train for 10 and 5 epochs: at most 80 steps per run on MiniClipart (33 classes).
# As in the papers, the schedule is chosen per shot count (CoOp: 50 epochs at 1 shot, 200 at
# 16); unlike them, the epochs fall as the shots grow, which keeps the steps per run level.
# CoCoOp (a text pass per image, batch 8) and TGP-T (49408-way token losses) cost 3-4x more
# per step: CoCoOp keeps 10-66 steps per run, TGP-T 40 iterations at every shot count.
EPOCHS_FALL_WITH_SHOTS = {1: "mini", 2: "mini", 4: "mini", 8: "mini_ep10", 16: "mini_ep5"}
CONFIG_FAMILIES = {
    "mini_fewshot": {
        "ZeroshotCLIP": {1: "mini"},
        "CoOp": EPOCHS_FALL_WITH_SHOTS,
        "KgCoOp": EPOCHS_FALL_WITH_SHOTS,
        "TextRefiner": EPOCHS_FALL_WITH_SHOTS,
        "VPT": EPOCHS_FALL_WITH_SHOTS,
        "VLP": EPOCHS_FALL_WITH_SHOTS,
        "DPT": EPOCHS_FALL_WITH_SHOTS,
        "CoCoOp": {1: "mini", 2: "mini_ep5", 4: "mini_ep2", 8: "mini_ep1"},
        "TGPT": {1: "mini_it40"},
    },
}


def family_config(family, trainer, shots=None):
    """The config of `trainer` in config family `family` at `shots` shots (None: 16)."""
    table = CONFIG_FAMILIES[family][trainer]
    shots = 16 if shots is None else shots
    return table[max([k for k in table if k <= shots] or [min(table)])]
