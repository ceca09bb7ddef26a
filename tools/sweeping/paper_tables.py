"""Every table (or figure) the six papers report, as the sweep that reproduces it.

Configs follow the papers' released scripts (the specs under shared/spec): CoOp's
few-shot figure runs RN50 with its per-shot configs; CoCoOp's transfer tables run
CoOp with vit_b16_ep50_ctxv1 on ImageNet; the others run each method's default
config. Where a paper's numbers are in reporting/published*.json the tables put
them beside the user's.
"""
from dataclasses import dataclass

from tools.sweeping.protocols import FEWSHOT_SHOTS


@dataclass(frozen=True)
class PaperTable:
    name: str
    paper: str
    table: str
    protocol: str
    trainers: tuple
    shots: tuple = ()
    datasets: tuple = ()  # empty: the protocol's default datasets
    note: str = ""

    def sweep_args(self):
        """tools/sweep.py arguments of this table (besides --root, --output and the machine)."""
        args = ["--protocol", self.protocol, "--trainers", *self.trainers]
        args += ["--shots", *map(str, self.shots)] if self.shots else []
        args += ["--datasets", *self.datasets] if self.datasets else []
        return args


ALL_SHOTS = FEWSHOT_SHOTS
COCOOP_COOP = "CoOp:vit_b16_ep50_ctxv1"  # CoCoOp's xd_train.sh comment: CoOp on ImageNet
TABLES = [
    PaperTable("coop-fewshot", "CoOp (IJCV 2022)", "few-shot figure, 11 datasets, RN50", "fewshot",
               ("ZeroshotCLIP:rn50", "CoOp"), ALL_SHOTS,
               note="per-shot configs rn50_ep50 / rn50_ep100 / rn50, rn50_ep50 on ImageNet"),
    PaperTable("coop-dg", "CoOp (IJCV 2022)", "domain generalisation table, RN50", "dg",
               ("ZeroshotCLIP:rn50", "CoOp:rn50_ep50"), note="16 shots of ImageNet, rn50_ep50"),
    PaperTable("cocoop-table1", "CoCoOp (CVPR 2022)", "Table 1: base-to-new", "base2new",
               ("ZeroshotCLIP", "CoOp", "CoCoOp")),
    PaperTable("cocoop-table2", "CoCoOp (CVPR 2022)", "Table 2: cross-dataset transfer", "xd",
               (COCOOP_COOP, "CoCoOp")),
    PaperTable("cocoop-table3", "CoCoOp (CVPR 2022)", "Table 3: domain generalisation", "dg",
               ("ZeroshotCLIP", COCOOP_COOP, "CoCoOp")),
    PaperTable("kgcoop-base2new", "KgCoOp (CVPR 2023)", "base-to-new table", "base2new",
               ("ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp")),
    PaperTable("kgcoop-fewshot", "KgCoOp (CVPR 2023)", "few-shot table (4 shots, all classes)", "fewshot",
               ("ZeroshotCLIP", "CoOp:vit_b16_ctxv1", "CoCoOp", "KgCoOp"), (4,),
               note="4 shots as the authors' script runs it (inferred, not read in the paper)"),
    PaperTable("kgcoop-xd", "KgCoOp (CVPR 2023)", "cross-dataset table", "xd", (COCOOP_COOP, "CoCoOp", "KgCoOp")),
    PaperTable("kgcoop-dg", "KgCoOp (CVPR 2023)", "domain generalisation table", "dg",
               ("ZeroshotCLIP", COCOOP_COOP, "CoCoOp", "KgCoOp")),
    PaperTable("dpt-fewshot", "DPT", "few-shot table, 11 datasets (with the VPT and VLP ablations)", "fewshot",
               ("ZeroshotCLIP", "CoOp:vit_b16", "VPT", "VLP", "DPT"), ALL_SHOTS),
    PaperTable("tgpt-fewshot", "TGP-T", "few-shot table, 11 datasets", "fewshot",
               ("ZeroshotCLIP", "CoOp:vit_b16", "TGPT"), ALL_SHOTS,
               note="the authors' 16-shot per-dataset configs serve every shot count"),
    PaperTable("tgpt-dg", "TGP-T", "ImageNet -> ImageNet-V2 / -Sketch", "dg", ("ZeroshotCLIP", "TGPT"),
               datasets=("imagenetv2", "imagenet_sketch")),
    PaperTable("textrefiner-base2new", "TextRefiner (AAAI 2025)", "base-to-new table", "base2new",
               ("ZeroshotCLIP", "CoOp", "TextRefiner")),
    PaperTable("textrefiner-xd", "TextRefiner (AAAI 2025)", "cross-dataset table", "xd", ("CoOp", "TextRefiner")),
    PaperTable("textrefiner-dg", "TextRefiner (AAAI 2025)", "domain generalisation table", "dg",
               ("ZeroshotCLIP", "CoOp", "TextRefiner")),
]
PAPER_TABLES = {table.name: table for table in TABLES}
