"""How numbers print in every table: two decimals, signed differences, mean ± spread."""


def fmt(value, signed=False):
    """Two decimals; a difference that rounds to zero prints as +0.00, not -0.00."""
    if value is None:
        return ""
    return f"{round(value, 2) + 0.0:+.2f}" if signed else f"{value:.2f}"


def fmt_stat(stat):
    return "" if stat is None else f"{stat.mean:.2f} ± {stat.spread:.2f}"


def diff(mine, paper):
    return None if mine is None or paper is None else mine - paper
