"""Grouped Base/New/H bars, one group per trainer/config, so a sweep's
average trade-off between base and new classes is visible at a glance."""
import os

BARS = (("Base", "#4c72b0"), ("New", "#dd8452"), ("H", "#55a868"))


def plot_averages(groups, path):
    """Write a PNG of `groups` = [(label, base, new, h), ...] (accuracies in %)."""
    if not groups:
        raise ValueError(f"nothing to plot into {path}: no trainer has both Base and New results yet")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.27
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups) + 1.5), 4.0))
    for offset, (name, color) in enumerate(BARS):
        xs = [i + (offset - 1) * width for i in range(len(groups))]
        values = [group[offset + 1] for group in groups]
        bars = ax.bar(xs, values, width, label=name, color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([group[0] for group in groups], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Base-to-new: average over datasets")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
