"""`siftrain demo-bag OUT`: a rainy image sequence (bundled TUM frames) as a rosbag2."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..rain import INTENSITIES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-bag", help="write a rainy demo sequence as a rosbag2")
    p.add_argument("output", type=Path, help="new rosbag2 directory")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=10.0, help="frames per second (bag time)")
    p.add_argument("--rain", choices=INTENSITIES, default="heavy")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    p.add_argument("--no-clean", action="store_true",
                   help="leave out the clean frames (topic /camera/rgb/image_clean)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.demo import CLEAN_TOPIC, IMAGE_TOPIC, INFO_TOPIC, write_demo_bag

    count = write_demo_bag(args.output, frames=args.frames, seed=args.seed, rate_hz=args.rate,
                           storage=args.storage, rain=args.rain, clean=not args.no_clean)
    topics = [IMAGE_TOPIC, INFO_TOPIC] + ([] if args.no_clean else [CLEAN_TOPIC])
    print(f"{args.output}: {count} frames ({args.storage}) on {', '.join(topics)}")
    return 0
