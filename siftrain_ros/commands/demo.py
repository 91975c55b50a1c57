"""`siftrain demo`: the main job, end to end over ROS 2 (see ``siftrain_ros.demo``); with
``--offline``, the SIFT-only table on the bundled frames next to OpenCV's SIFT."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
from rich.console import Console
from rich.table import Table

from .. import samples
from ..evaluation.matching import (
    homography_inlier_share,
    nearest_neighbours,
    ratio_matches,
)
from ..rain import RainParams, add_rain
from ..sift import Features, Sift, read_gray


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="node + bag player + consumer on a rainy sequence (ROS 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic rain")
    p.add_argument("--frames", type=int, default=10, help="frames in the rainy sequence")
    p.add_argument("--scale", type=float, default=0.5, help="node image_scale")
    p.add_argument("--rate", type=float, default=0.1,
                   help="playback speed factor (the sequence is recorded at 10 Hz)")
    p.add_argument("--out", type=Path, default=Path("out"), help="where the overlay goes")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="network weights (default: shipped with the package)")
    p.add_argument("--offline", action="store_true",
                   help="no ROS: SIFT on clean and rainy frames next to OpenCV, as a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.offline:
        from ..demo import run_demo

        return run_demo(args)
    return run_offline(args)


def run_offline(args: argparse.Namespace) -> int:
    sift = Sift(device=args.device)
    opencv = cv2.SIFT_create()
    table = Table(title="siftrain demo: SIFT on bundled frames (clean and with synthetic rain)")
    for column in ("frame", "size", "ours clean", "OpenCV clean", "ours/OpenCV within 1.5 px",
                   "ours rainy", "ms ours", "ms OpenCV"):
        table.add_column(column, justify="right")
    for i, path in enumerate(samples.tum_frames()):
        gray = read_gray(path)
        start = time.perf_counter()
        ours = sift(gray)
        ms_ours = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        reference = Features.from_cv(*opencv.detectAndCompute(gray, None))
        ms_cv = (time.perf_counter() - start) * 1000
        distance, _ = nearest_neighbours(reference.xy, ours.xy)
        rainy = sift(add_rain(gray, seed=args.seed + i, params=RainParams.preset("heavy")))
        table.add_row(path.name, f"{gray.shape[1]}x{gray.shape[0]}", str(len(ours)),
                      str(len(reference)), f"{(distance < 1.5).mean():.1%}", str(len(rainy)),
                      f"{ms_ours:.0f}", f"{ms_cv:.0f}")
    console = Console()
    console.print(table)
    first, second, homography = samples.hpatches_pair()
    a, b = sift(read_gray(first)), sift(read_gray(second))
    ia, ib = ratio_matches(a.descriptors, b.descriptors)
    ca = Features.from_cv(*opencv.detectAndCompute(read_gray(first), None))
    cb = Features.from_cv(*opencv.detectAndCompute(read_gray(second), None))
    ja, jb = ratio_matches(ca.descriptors, cb.descriptors)
    console.print(
        f"HPatches v_churchill 1->2, ratio test 0.8: ours {len(ia)} matches, "
        f"{homography_inlier_share(a.xy, b.xy, ia, ib, homography):.1%} consistent with the "
        f"ground-truth homography; OpenCV {len(ja)} matches, "
        f"{homography_inlier_share(ca.xy, cb.xy, ja, jb, homography):.1%}.")
    console.print("The rain-recovery networks (DPRNet/GGIRNet) are not wired in yet: "
                  "'ours rainy' is plain SIFT on the rainy frame.")
    return 0
