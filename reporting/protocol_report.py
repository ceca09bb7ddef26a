"""Markdown, tidy CSV and figures of the few-shot, xd and dg tables; the
report a sweep and `parse_test_res.py --fewshot/--xd/--dg` print.

The CSV has one row per cell: average rows are flagged in `is_average` (not
disguised as datasets), and the spread column is named `std` or `ci95`.
"""
import csv
import os

from tabulate import tabulate

from reporting.cells import diff, fmt, fmt_stat
from reporting.errors import ReportError
from reporting.published import TRANSFER_SOURCE as DEFAULT_SOURCE
from reporting.protocol_runs import collect_protocol_runs
from reporting.protocol_tables import build_fewshot_tables, build_transfer_table, seeds_text, target_protocol

TITLES = {"fewshot": "Few-shot (all classes)", "xd": "Cross-dataset transfer", "dg": "Domain generalisation"}


def markdown_grid(headers, body):
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def problem_lines(problems):
    return ["Not counted / flagged:", ""] + [f"- {p}" for p in problems] + [""] if problems else []


# ----------------------------------------------------------------------------- few-shot


def fewshot_config_note(table):
    by_shots = {k: sorted({c for d in table.datasets for c in table.configs.get((d, k), [])}) for k in table.shots}
    return "Configs: " + "; ".join(f"{k} shots {', '.join(c)}" for k, c in by_shots.items()) + "."


def fewshot_markdown(table, spread_name):
    headers = ["Dataset"] + [f"{k}-shot (± {spread_name})" for k in table.shots] + ["Seeds"]
    body = []
    for dataset in table.datasets:
        stats = [table.cells.get((dataset, k)) for k in table.shots]
        seeds = sorted({s for stat in stats if stat for s in stat.seeds})
        body.append([dataset] + [fmt_stat(stat) for stat in stats] + [seeds_text(seeds)])
    body.append(["Average"] + [fmt(table.average[k]) for k in table.shots] + [""])
    if table.paper:
        paper = [table.paper["shots"].get(k) for k in table.shots]
        body.append(["Average, paper"] + [fmt(p) for p in paper] + [""])
        body.append(["Average, diff"] + [fmt(diff(table.average[k], p), True) for k, p in zip(table.shots, paper)] + [""])
    parts = [f"### {table.title}", "", fewshot_config_note(table), ""]
    if table.paper:
        parts += [f"Paper: {table.paper['citation']}.", ""]
    return "\n".join(parts + [markdown_grid(headers, body), ""] + problem_lines(table.problems))


def fewshot_comparison_markdown(tables):
    """Methods as rows: the average over datasets at each shot count."""
    shots = sorted({k for t in tables for k in t.shots})
    headers = ["Method", "Config family"] + [f"{k}-shot" for k in shots] + ["Datasets"]
    body = []
    for table in tables:
        body.append([table.trainer, table.family] + [fmt(table.average.get(k)) for k in shots] + [len(table.datasets)])
        if table.paper:
            body.append([f"{table.trainer} (paper)", ""] + [fmt(table.paper["shots"].get(k)) for k in shots] + [""])
    note = ("Config family: a method's configs that differ only by their epochs; "
            "its own table below names the config of each shot count.")
    return "\n".join(["### Few-shot: average over datasets, methods as rows", "", markdown_grid(headers, body), "",
                      note, ""])


def fewshot_records(tables, spread_name):
    for table in tables:
        for dataset in table.datasets + ["average"]:
            for k in table.shots:
                average = dataset == "average"
                stat = None if average else table.cells.get((dataset, k))
                mean = table.average[k] if average else (stat.mean if stat else None)
                paper = table.paper["shots"].get(k) if average and table.paper else None
                yield dict(protocol="fewshot", trainer=table.trainer, config=table.family, dataset=dataset,
                           role="average" if average else "dataset", shots=k, is_average=average, mean=fmt(mean),
                           **{spread_name: fmt(stat.spread) if stat else ""},
                           seeds=seeds_text(stat.seeds) if stat else "", paper=fmt(paper),
                           diff=fmt(diff(mean, paper), True))


# ----------------------------------------------------------------------------- xd and dg


def transfer_markdown(table, spread_name):
    headers = ["Method", "Config", f"{table.source} (source)"] + table.targets + ["Average", "Seeds"]
    body = []
    for row in table.rows:
        seeds = sorted({s for stat in [row.source, *row.targets.values()] if stat for s in stat.seeds})
        body.append([row.trainer, row.config, fmt_stat(row.source)] + [fmt_stat(row.targets[t]) for t in table.targets]
                    + [fmt(row.average), seeds_text(seeds)])
        if row.paper:
            paper = [row.paper["datasets"].get(t) for t in table.targets]
            body.append([f"{row.trainer} (paper)", "", fmt(row.paper["source"])] + [fmt(p) for p in paper]
                        + [fmt(row.paper["average"]), ""])
            mine = [row.targets[t].mean if row.targets[t] else None for t in table.targets]
            body.append([f"{row.trainer} (diff)", "", fmt(diff(row.source.mean if row.source else None,
                                                                 row.paper["source"]), True)]
                        + [fmt(diff(m, p), True) for m, p in zip(mine, paper)]
                        + [fmt(diff(row.average, row.paper["average"]), True), ""])
    parts = [f"### {TITLES[table.protocol]}: {table.source} -> {len(table.targets)} target(s)", "",
             f"Cells: mean ± {spread_name} over seeds; Average: over the targets (source excluded); "
             "diff = yours - paper.", ""]
    citations = [f"- {row.trainer}: {row.paper['citation']}" for row in table.rows if row.paper]
    if citations:
        parts += ["Paper numbers:", ""] + citations + [""]
    return "\n".join(parts + [markdown_grid(headers, body), ""] + problem_lines(table.problems))


def transfer_records(table, spread_name):
    for row in table.rows:
        cells = [(table.source, "source", row.source)] + [(t, "target", row.targets[t]) for t in table.targets]
        paper = row.paper or {"datasets": {}, "source": None, "average": None}
        for dataset, role, stat in cells:
            mine = stat.mean if stat else None
            published = paper["source"] if role == "source" else paper["datasets"].get(dataset)
            yield dict(protocol=table.protocol, trainer=row.trainer, config=row.config, dataset=dataset, role=role,
                       shots=row.shots, is_average=False, mean=fmt(mine),
                       **{spread_name: fmt(stat.spread) if stat else ""},
                       seeds=seeds_text(stat.seeds) if stat else "", paper=fmt(published),
                       diff=fmt(diff(mine, published), True))
        yield dict(protocol=table.protocol, trainer=row.trainer, config=row.config, dataset="average of targets",
                   role="average", shots=row.shots, is_average=True, mean=fmt(row.average), **{spread_name: ""},
                   seeds="", paper=fmt(paper["average"]), diff=fmt(diff(row.average, paper["average"]), True))


# ----------------------------------------------------------------------------- report


def write_report(markdown, records, out_prefix, spread_name):
    """OUT_PREFIX.md and OUT_PREFIX.csv; returns their paths."""
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    columns = ["protocol", "trainer", "config", "dataset", "role", "shots", "is_average", "mean", spread_name,
               "seeds", "paper", "diff"]
    with open(f"{out_prefix}.md", "w", encoding="utf-8") as f:
        f.write(markdown)
    with open(f"{out_prefix}.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    return [f"{out_prefix}.md", f"{out_prefix}.csv"]


def protocol_tables(protocol, output_root, keyword="accuracy", ci95=False, select=None, source=DEFAULT_SOURCE):
    """(markdown, csv records, tables) of one protocol under OUTPUT_ROOT."""
    if not os.path.isdir(output_root):
        raise ReportError(f"{output_root} is not a directory; pass the output root of the runs (OUTPUT)")
    runs = collect_protocol_runs(output_root, keyword)
    spread_name = "ci95" if ci95 else "std"
    if protocol == "fewshot":
        tables = build_fewshot_tables(runs, ci95, select)
        if not tables:
            return "No few-shot runs found.\n", [], tables
        parts = [fewshot_comparison_markdown(tables)] + [fewshot_markdown(t, spread_name) for t in tables]
        return "\n".join(parts), list(fewshot_records(tables, spread_name)), tables
    table = build_transfer_table(protocol, runs, ci95, select, source)
    if not table.rows:
        return f"No {TITLES[protocol].lower()} runs found.\n", [], [table]
    return transfer_markdown(table, spread_name), list(transfer_records(table, spread_name)), [table]


def report_protocol(protocol, output_root, keyword="accuracy", ci95=False, out_prefix=None, plot_path=None,
                    select=None, source=DEFAULT_SOURCE):
    """Print one protocol's tables, write them as Markdown and CSV (and the figure when asked)."""
    markdown, records, tables = protocol_tables(protocol, output_root, keyword, ci95, select, source)
    print(markdown)
    out_prefix = out_prefix or os.path.join(output_root, f"{protocol}_results")
    for path in write_report(markdown, records, out_prefix, "ci95" if ci95 else "std"):
        print(f"Saved {path}")
    if plot_path:
        from reporting.plots import plot_fewshot, plot_transfer

        try:
            (plot_fewshot if protocol == "fewshot" else plot_transfer)(tables, plot_path)
        except ValueError as error:
            raise ReportError(str(error)) from error
        print(f"Saved {plot_path}")
    return tables


def detected_protocols(output_root):
    """The protocols whose runs are under OUTPUT_ROOT, in PROTOCOLS order."""
    runs = collect_protocol_runs(output_root)
    found = ["base2new"] if os.path.isdir(os.path.join(output_root, "base2new")) else []
    found += ["fewshot"] if any(r.kind == "train" for r in runs) else []
    evaluated = {target_protocol(r.dataset) for r in runs if r.kind == "eval"}
    return found + [p for p in ("xd", "dg") if p in evaluated]
