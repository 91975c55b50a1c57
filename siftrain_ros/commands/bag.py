"""`siftrain bag process IN OUT` (add feature clouds to a bag) and `siftrain bag play IN`
(replay a bag through rclpy at its recorded timing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..frontend.arguments import add_frontend_arguments

    p = sub.add_parser("bag", help="rosbag2 tools: process (add feature clouds), play")
    verbs = p.add_subparsers(dest="verb", required=True)
    proc = verbs.add_parser("process", help="write OUT = IN's messages + feature clouds")
    proc.add_argument("input", type=Path, help="rosbag2 directory (sqlite3 or mcap)")
    proc.add_argument("output", type=Path, help="new rosbag2 directory")
    proc.add_argument("--image-topic", default=None,
                      help="image topic (default: the bag's only Image/CompressedImage topic)")
    proc.add_argument("--features-topic", default=None,
                      help="default: <image topic's namespace>/features")
    proc.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    proc.add_argument("--no-progress", action="store_true")
    add_frontend_arguments(proc)
    proc.set_defaults(run=run_process)

    play = verbs.add_parser("play", help="publish a bag's messages with their recorded timing")
    play.add_argument("input", type=Path)
    play.add_argument("--rate", type=float, default=1.0, help="speed factor")
    play.add_argument("--loop", action="store_true")
    play.add_argument("--topics", nargs="+", default=None, help="only these topics")
    play.add_argument("--wait-subscribers", type=float, default=0.0, metavar="SEC",
                      help="wait up to SEC seconds for subscribers on every topic first")
    play.add_argument("--min-subscribers", type=int, default=1, metavar="N",
                      help="with --wait-subscribers: wait for N subscribers per topic")
    play.set_defaults(run=run_play)


def run_process(args: argparse.Namespace) -> int:
    from ..bags.process import process_bag
    from ..frontend.arguments import frontend_from_args

    if not args.input.exists():
        raise FileNotFoundError(f"{args.input}: no such bag")
    frontend = frontend_from_args(args, log=lambda line: print(line, file=sys.stderr))
    written, rejected = process_bag(
        args.input, args.output, frontend, image_topic=args.image_topic,
        features_topic=args.features_topic, storage=args.storage,
        progress=not args.no_progress, warn=lambda line: print(line, file=sys.stderr))
    print(f"{args.output}: {written} feature clouds written, {rejected} frames rejected")
    return 0


def run_play(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from ..bags.play import play_bag

    if not args.input.exists():
        raise FileNotFoundError(f"{args.input}: no such bag")
    rclpy.init(args=[])  # SIGINT/SIGTERM shut the context down; the loop polls rclpy.ok()
    node = rclpy.create_node("siftrain_bag_player")
    try:
        count = play_bag(node, args.input, rate=args.rate, loop=args.loop, topics=args.topics,
                         wait_subscribers=args.wait_subscribers,
                         min_subscribers=args.min_subscribers,
                         should_stop=lambda: not rclpy.ok())
        print(f"played {count} messages from {args.input}")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
