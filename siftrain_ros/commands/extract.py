"""`siftrain extract IMAGE... --out DIR`: SIFT features of image files to ``.npz``, through the
rain-recovery networks unless ``--derain off``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..frontend.arguments import add_frontend_arguments, frontend_from_args
from ..sift import read_gray


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="detect and describe SIFT features of image files",
                       description="Writes DIR/<image stem>.npz with arrays xy, size, angle, "
                                   "response, octave, descriptors.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    add_frontend_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    frontend = frontend_from_args(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        features = frontend(read_gray(path)).features
        target = args.out / f"{path.stem}.npz"
        features.save_npz(target)
        print(f"{path}: {len(features)} keypoints -> {target}")
    return 0
