"""Figures a researcher would put on a slide, drawn with matplotlib (Agg).

- few-shot: CoOp's figure: one small panel per dataset plus the average,
  accuracy vs shots, one line per method, zero-shot CLIP as a flat marker;
- bars (base-to-new, xd, dg): error bars from the seeds where there are seeds,
  zero-shot first, and a y axis fitted to the values so differences show.
"""
import math
import os

ZERO_SHOT = "ZeroshotCLIP"
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def zero_shot_first(items, trainer_of):
    return sorted(items, key=lambda item: trainer_of(item) != ZERO_SHOT)


def fitted_limits(lows, highs):
    """A y range around the values (not 0-100), with a margin, within 0-100."""
    low, high = min(lows), max(highs)
    margin = max(2.0, 0.15 * (high - low))
    return max(0.0, math.floor(low - margin)), min(100.0, math.ceil(high + margin))


def fewshot_panels(tables):
    """{panel: {label: [(shots, accuracy)]}} with the average panel last."""
    datasets = list(dict.fromkeys(d for t in tables for d in t.datasets))
    panels = {}
    for panel in datasets + ["Average"]:
        for table in tables:
            if panel == "Average":
                points = [(k, v) for k, v in table.average.items() if v is not None]
            else:
                points = [(k, table.cells[(panel, k)].mean) for k in table.shots if table.cells.get((panel, k))]
            if points:
                panels.setdefault(panel, {})[table.title] = points
    return panels


def plot_fewshot(tables, path):
    """The few-shot figure of `tables` (reporting.protocol_tables.FewshotTable)."""
    panels = fewshot_panels(tables)
    if not panels:
        raise ValueError(f"nothing to plot into {path}: no few-shot result yet")
    plt = pyplot()
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.6 * rows), squeeze=False)
    shots = sorted({k for t in tables for k in t.shots if k > 0})
    colors = {t.title: COLORS[i % len(COLORS)] for i, t in enumerate(tables)}
    for ax, (panel, lines) in zip(axes.flat, panels.items()):
        for label, points in lines.items():
            if all(k == 0 for k, _ in points):  # zero-shot: a flat marker at the first shot count
                ax.plot([shots[0] if shots else 1], [points[0][1]], marker="*", markersize=11, linestyle="none",
                        color=colors[label], label=label)
            else:
                ax.plot([k for k, _ in points], [v for _, v in points], marker="o", markersize=4,
                        color=colors[label], label=label)
        ax.set_title(panel, fontsize=9)
        ax.set_xscale("log", base=2)
        ax.set_xticks(shots or [1])
        ax.set_xticklabels([str(k) for k in shots or [1]], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("accuracy (%)", fontsize=8)
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    labels = list(legend)
    fig.legend(list(legend.values()), labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7)
    fig.suptitle("Few-shot: accuracy vs shots per class", fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * math.ceil(len(labels) / 4), 1, 0.96))
    save(fig, path)


def plot_bars(groups, series, title, path):
    """Grouped bars: groups = [(label, {series: (mean, error or None)})], zero-shot first."""
    if not groups:
        raise ValueError(f"nothing to plot into {path}: no finished result yet")
    plt = pyplot()
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(4.0, (0.5 + 0.35 * len(series)) * len(groups) + 1.5), 4.0))
    lows, highs = [], []
    for offset, name in enumerate(series):
        xs, means, errors = [], [], []
        for i, (_, values) in enumerate(groups):
            if values.get(name) is not None:
                mean, error = values[name]
                xs.append(i + (offset - (len(series) - 1) / 2) * width)
                means.append(mean)
                errors.append(error or 0.0)
                lows.append(mean - (error or 0.0))
                highs.append(mean + (error or 0.0))
        bars = ax.bar(xs, means, width, yerr=errors, capsize=2, label=name, color=COLORS[offset % len(COLORS)])
        ax.bar_label(bars, fmt="%.1f", fontsize=6)
    ax.set_ylim(*fitted_limits(lows, highs))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([label for label, _ in groups], fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=min(len(series), 6))
    fig.tight_layout()
    save(fig, path)


def plot_transfer(tables, path):
    """Bars per method: the source and the average over the targets, with the seeds' std."""
    table = tables[0]
    groups = []
    for row in zero_shot_first(table.rows, lambda r: r.trainer):
        values = {"source": (row.source.mean, row.source.spread) if row.source else None,
                  "targets (average)": (row.average, None) if row.average is not None else None}
        groups.append((f"{row.trainer}\n{row.config}", values))
    plot_bars(groups, ["source", "targets (average)"], f"{table.protocol}: {table.source} -> targets", path)


def plot_base2new(groups, path):
    """Base/New/H of each base-to-new table's average row: groups = [(label, base, new, h)]."""
    bars = [(label, {"Base": (base, None), "New": (new, None), "H": (h, None)}) for label, base, new, h in groups]
    plot_bars(zero_shot_first(bars, lambda g: g[0].split(" /")[0]), ["Base", "New", "H"],
              "Base-to-new: average over datasets", path)
