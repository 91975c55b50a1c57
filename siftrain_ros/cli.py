"""`siftrain`: the project's command line. Each subcommand lives in ``siftrain_ros.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands
from .sift.image import InvalidImageError


def command_modules() -> list:
    """Every module in ``siftrain_ros.commands``: each provides ``add_parser(subparsers)``
    and sets ``args.run``, so a new subcommand is a new module and nothing else."""
    return [importlib.import_module(f"{commands.__name__}.{info.name}")
            for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siftrain", description="Rain-robust SIFT features (See SIFT in a Rain).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in command_modules():
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
