"""`siftrain rain-level INPUT...`: how much DPRNet changes each frame, to calibrate the rain gate.

Run it on rain-free footage of your camera (image files, folders, rosbag2 directories): frames
the net changes by less than ``rain_gate`` gray levels get plain SIFT, so the gate belongs just
above what dry frames measure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ..evaluation.recovery import image_files
from ..frontend.arguments import (
    add_backend_arguments,
    add_flip_ensemble_argument,
    frontend_from_args,
)
from ..ros.image_conversion import ImageConversionError
from ..sift import read_gray
from ..sift.image import InvalidImageError

GATE_STEP = 0.5  # gray levels; the suggestion is the next step above the dry maximum


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rain-level", help="rain level of frames (calibrates the node's rain_gate)",
                       description="Runs DPRNet on every frame and reports its mean absolute "
                                   "correction in gray levels. On rain-free footage the "
                                   "suggested rain_gate is the next 0.5 above the maximum.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="image files, folders of images, or rosbag2 directories")
    p.add_argument("--image-topic", default=None,
                   help="image topic of the bags (default: their only image topic)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--json", type=Path, metavar="OUT", help="per-frame levels and the summary")
    # The mean of the frame and its mirror image changes the level slightly.
    add_flip_ensemble_argument(p)
    add_backend_arguments(p)
    # The level is measured before the gates and the correction strength apply.
    p.set_defaults(run=run, derain="on", max_keypoints=0, rain_gate=0.0, local_rain_gate=0.0,
                   keypoint_rain_gate=0.0, correction_strength=1.0)


def frames_of(source: Path, image_topic: str | None = None
              ) -> Iterator[tuple[str, np.ndarray | None]]:
    """(name, image) of every frame of an image file, a folder or a rosbag2 directory; the
    image is None for a bag message that cannot be decoded (it is reported, not fatal).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: a folder with no images, or a bag without a (unique) image topic.
    """
    if (source / "metadata.yaml").is_file():
        yield from _bag_frames(source, image_topic)
    elif source.is_dir():
        files = image_files(source)
        if not files:
            raise ValueError(f"{source}: no images in this folder")
        for path in files:
            yield path.name, read_gray(path)
    elif source.is_file():
        yield source.name, read_gray(source)
    else:
        raise FileNotFoundError(f"{source}: no such file, folder or bag")


def _bag_frames(bag: Path, image_topic: str | None) -> Iterator[tuple[str, np.ndarray | None]]:
    from rosbags.rosbag2 import Reader

    from ..bags.process import pick_image_topic
    from ..bags.store import typestore
    from ..node.decode import decode_image

    store = typestore()
    with Reader(bag) as reader:
        topic = pick_image_topic(reader, image_topic)
        connections = [c for c in reader.connections if c.topic == topic]
        for conn, timestamp, raw in reader.messages(connections=connections):
            name = f"{topic}@{timestamp}"
            try:
                yield name, decode_image(store.deserialize_cdr(raw, conn.msgtype))
            except ImageConversionError as error:
                print(f"{name}: skipped: {error}", file=sys.stderr)
                yield name, None


def summarise(levels: list[float]) -> dict[str, float]:
    """min / median / p95 / max of the levels and the gate just above all of them."""
    values = np.asarray(levels, np.float64)
    top = float(values.max())
    return {"frames": len(values), "min": float(values.min()),
            "median": float(np.median(values)), "p95": float(np.percentile(values, 95)),
            "max": top, "suggested_rain_gate": (math.floor(top / GATE_STEP) + 1) * GATE_STEP}


def run(args: argparse.Namespace) -> int:
    for source in args.inputs:  # before loading the networks
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such file, folder or bag")
    frontend = frontend_from_args(args)
    per_source: dict[str, list[dict]] = {}
    for source in args.inputs:
        rows = per_source.setdefault(str(source), [])
        for name, image in frames_of(source, args.image_topic):
            if image is None:  # an undecodable bag message, already reported
                continue
            try:
                rows.append({"frame": name, "rain_level": frontend(image).rain_level})
            except InvalidImageError as error:
                print(f"{name}: skipped: {error}", file=sys.stderr)
        if not rows:
            raise ValueError(f"{source}: no frame could be processed")
    table = Table(title="Rain level: DPRNet's mean absolute correction, gray levels")
    for column in ("input", "frames", "min", "median", "p95", "max", "gate above all"):
        table.add_column(column, justify="left" if column == "input" else "right")
    report: dict = {"scale": args.scale, "sources": {}}
    summaries = {source: summarise([r["rain_level"] for r in rows])
                 for source, rows in per_source.items()}
    for source, rows in per_source.items():
        report["sources"][source] = {"summary": summaries[source], "frames": rows}
    if len(per_source) > 1:
        summaries["all"] = report["all"] = summarise(
            [r["rain_level"] for rows in per_source.values() for r in rows])
    for source, summary in summaries.items():
        table.add_row(source, str(summary["frames"]), *(f"{summary[k]:.2f}" for k in
                      ("min", "median", "p95", "max")), f"{summary['suggested_rain_gate']:g}")
    Console().print(table)
    print("On rain-free footage, set the node's rain_gate to the last column (at the same "
          "image_scale); frames below it get plain SIFT.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0
