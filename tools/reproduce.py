"""One command per paper table: runs (or resumes) the sweep the table needs and
prints it with the paper's numbers beside the user's.

    python tools/reproduce.py --list
    python tools/reproduce.py cocoop-table2 --root $DATA --gpus 0 1 [--seeds 1 2 3] [--output output]

Any further tools/sweep.py argument passes through (e.g. --jobs 2, --warm,
--opts ...). The table list is tools/sweeping/paper_tables.py.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import sweep  # noqa: E402
from tools.sweeping.paper_tables import PAPER_TABLES, TABLES  # noqa: E402
from tools.sweeping.plan import closest_hint  # noqa: E402


def listing():
    lines = []
    for table in TABLES:
        line = f"{table.name:<22} {table.paper}: {table.table} [{table.protocol}; {' '.join(table.trainers)}]"
        lines.append(line + (f" - {table.note}" if table.note else ""))
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", help="a table name from --list")
    parser.add_argument("--list", action="store_true", help="name every table this command reproduces")
    return parser


def sweep_argv(name, extra):
    """The tools/sweep.py argv of table NAME with the user's arguments (theirs come last and win)."""
    return PAPER_TABLES[name].sweep_args() + list(extra)


def main(argv=None):
    args, extra = build_parser().parse_known_args(argv)
    if args.list:
        print(listing())
        return 0
    if args.table not in PAPER_TABLES:
        given = f"unknown table '{args.table}'{closest_hint(args.table or '', list(PAPER_TABLES))}" if args.table \
            else "name a table"
        print(f"error: {given}; `python tools/reproduce.py --list` names them", file=sys.stderr)
        return 2
    table = PAPER_TABLES[args.table]
    print(f"{table.name}: {table.paper}, {table.table}")
    return sweep.main(sweep_argv(args.table, extra))


if __name__ == "__main__":
    sys.exit(main())
