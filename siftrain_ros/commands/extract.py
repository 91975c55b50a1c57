"""`siftrain extract IMAGE... --out DIR`: SIFT features of image files to ``.npz``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..sift import Sift, SiftConfig, read_gray


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="detect and describe SIFT features of image files",
                       description="Writes DIR/<image stem>.npz with arrays xy, size, angle, "
                                   "response, octave, descriptors.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--max-keypoints", type=int, default=0, metavar="N",
                   help="keep the N strongest keypoints (0: all)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sift = Sift(SiftConfig(max_keypoints=args.max_keypoints), device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        features = sift(read_gray(path))
        target = args.out / f"{path.stem}.npz"
        features.save_npz(target)
        print(f"{path}: {len(features)} keypoints -> {target}")
    return 0
