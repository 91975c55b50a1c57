"""`siftrain`: the project's command line. Each subcommand lives in ``siftrain_ros.commands``."""

from __future__ import annotations

import argparse
import sys

from .commands import bench, demo, extract
from .sift.image import InvalidImageError

# Each module provides add_parser(subparsers) and sets args.run.
COMMANDS = (extract, bench, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siftrain", description="Rain-robust SIFT features (See SIFT in a Rain).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (InvalidImageError, FileNotFoundError, ValueError) as error:
        # Bad input is the user's to fix: one line, no traceback.
        print(f"siftrain {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
