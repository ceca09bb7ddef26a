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
