"""tools/reproduce.py: one entry per paper table, each planning the paper's protocol."""
import pytest

from tools import reproduce, sweep
from tools.sweeping.paper_tables import PAPER_TABLES, TABLES
from tools.sweeping.plan import check_plan

BENCHMARKS = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
              "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101"]
DG = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
EXPECTED = {  # name: (protocol, shots, targets or datasets)
    "coop-fewshot": ("fewshot", [1, 2, 4, 8, 16], BENCHMARKS),
    "coop-dg": ("dg", [16], DG),
    "cocoop-table1": ("base2new", [16], BENCHMARKS),
    "cocoop-table2": ("xd", [16], BENCHMARKS[1:]),
    "cocoop-table3": ("dg", [16], DG),
    "kgcoop-base2new": ("base2new", [16], BENCHMARKS),
    "kgcoop-fewshot": ("fewshot", [4], BENCHMARKS),
    "kgcoop-xd": ("xd", [16], BENCHMARKS[1:]),
    "kgcoop-dg": ("dg", [16], DG),
    "dpt-fewshot": ("fewshot", [1, 2, 4, 8, 16], BENCHMARKS),
    "tgpt-fewshot": ("fewshot", [1, 2, 4, 8, 16], BENCHMARKS),
    "tgpt-dg": ("dg", [16], DG[:2]),
    "textrefiner-base2new": ("base2new", [16], BENCHMARKS),
    "textrefiner-xd": ("xd", [16], BENCHMARKS[1:]),
    "textrefiner-dg": ("dg", [16], DG),
}


def plan_of(name, tmp_path):
    argv = reproduce.sweep_argv(name, ["--root", str(tmp_path), "--output", str(tmp_path / "out")])
    plan = sweep.plan_from_args(sweep.build_parser().parse_args(argv))
    check_plan(plan)  # every script, dataset and trainer config exists
    return plan


def test_list_names_every_table(capsys):
    assert reproduce.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [t.name for t in TABLES]
    assert set(EXPECTED) == set(PAPER_TABLES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_table_plans_the_papers_protocol(name, tmp_path):
    protocol, shots, datasets = EXPECTED[name]
    plan = plan_of(name, tmp_path)
    assert (plan.protocol, plan.shots, plan.datasets, plan.seeds) == (protocol, shots, datasets, [1, 2, 3])
    runs = plan.runs()
    if protocol in ("xd", "dg"):
        trained = [r for r in runs if r.phase == "fewshot"]
        # one source model per row and seed: 16 shots of ImageNet (zero-shot: 0), never per target
        assert {(r.dataset, r.shots) for r in trained} <= {("imagenet", 16), ("imagenet", 0)}
        assert len(trained) == len(plan.rows) * 3
        assert {r.dataset for r in runs if r.phase == "test_target"} == set(datasets)
    if protocol == "fewshot":
        trained = {(r.row.name, r.shots) for r in runs}
        assert all((row.name, k) in trained for row in plan.rows if not row.is_zero_shot for k in shots)


def test_coop_fewshot_uses_coops_configs_per_shot(tmp_path):
    runs = plan_of("coop-fewshot", tmp_path).runs()
    configs = {(r.dataset, r.shots): r.config for r in runs if r.row.name == "CoOp"}
    assert [configs[("eurosat", k)] for k in (1, 2, 4, 8, 16)] == ["rn50_ep50", "rn50_ep100", "rn50_ep100", "rn50", "rn50"]
    assert {configs[("imagenet", k)] for k in (1, 2, 4, 8, 16)} == {"rn50_ep50"}
    assert {r.config for r in runs if r.row.name == "ZeroshotCLIP"} == {"rn50"}


def test_cocoop_transfer_tables_run_coop_with_the_ep50_imagenet_config(tmp_path):
    for name in ("cocoop-table2", "cocoop-table3"):
        runs = plan_of(name, tmp_path).runs()
        assert {r.config for r in runs if r.row.name == "CoOp"} == {"vit_b16_ep50_ctxv1"}
        assert {r.config for r in runs if r.row.name == "CoCoOp"} == {"vit_b16_c4_ep10_batch1_ctxv1"}


def test_unknown_table_gets_a_hint(capsys):
    assert reproduce.main(["cocoop-tabel2"]) == 2
    assert "unknown table 'cocoop-tabel2' (did you mean cocoop-table2?)" in capsys.readouterr().err
