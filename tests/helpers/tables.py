"""Reading the Markdown tables the reports print, for tests that check them cell by cell."""


def markdown_row(text, first, after=""):
    """The cells of the first table row whose first cell is `first` (after the text `after`, when given)."""
    text = text.split(after, 1)[1] if after else text
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}" + (f" after {after!r}" if after else ""))
