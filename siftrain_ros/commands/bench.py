"""`siftrain bench`: per-stage SIFT timings against OpenCV's SIFT in the same run."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from .. import samples
from ..device import resolve_device
from ..sift import SiftConfig, build_scale_space, gradient_pyramid, read_gray
from ..sift.descriptor import describe
from ..sift.detect import detect
from ..sift.image import as_tensor, to_gray_float
from ..sift.orientation import assign_orientations
from ..sift.pipeline import keep_strongest, remove_duplicates


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from error
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return width, height


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time the SIFT stages and OpenCV SIFT on the same image")
    p.add_argument("--size", type=parse_size, default=(640, 480), metavar="WxH")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--image", type=Path, default=None,
                   help="image to time (default: a bundled TUM frame), resized to --size")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    p.set_defaults(run=run)


def _timed(fn: Callable[[], object], device: torch.device) -> tuple[object, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, (time.perf_counter() - start) * 1000.0


def time_stages(gray: np.ndarray, config: SiftConfig, device: torch.device
                ) -> tuple[dict[str, float], int]:
    """One pass through the pipeline, timing each stage in milliseconds."""
    ms: dict[str, float] = {}
    with torch.inference_mode():
        image = as_tensor(to_gray_float(gray), device)

        def scale_space() -> object:
            space = build_scale_space(image, config)
            return space, gradient_pyramid(space, config)

        (space, gradients), ms["scale_space"] = _timed(scale_space, device)
        keypoints, ms["detection"] = _timed(lambda: detect(space.dogs, config), device)
        oriented, ms["orientation"] = _timed(
            lambda: keep_strongest(remove_duplicates(
                assign_orientations(keypoints, gradients, config)), config.max_keypoints), device)
        _, ms["description"] = _timed(lambda: describe(oriented, gradients, config), device)
    return ms, len(oriented)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    path = args.image or samples.tum_frames()[0]
    gray = cv2.resize(read_gray(path), args.size, interpolation=cv2.INTER_AREA)
    config = SiftConfig()
    opencv = cv2.SIFT_create()
    runs: list[dict[str, float]] = []
    opencv_ms: list[float] = []
    for i in range(args.warmup + args.repeats):
        stages, n_ours = time_stages(gray, config, device)
        start = time.perf_counter()
        keypoints, _ = opencv.detectAndCompute(gray, None)
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= args.warmup:
            runs.append(stages)
            opencv_ms.append(elapsed)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    total = statistics.median(sum(r.values()) for r in runs)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                 if device.type == "cuda" else ""),
        "torch": torch.__version__, "opencv": cv2.__version__,
        "image": str(path), "size": list(args.size), "repeats": args.repeats,
        "stages_ms": median, "total_ms": total, "opencv_sift_ms": statistics.median(opencv_ms),
        "ratio_to_opencv": total / statistics.median(opencv_ms),
        "keypoints": {"ours": n_ours, "opencv": len(keypoints)},
    }
    table = Table(title=f"SIFT at {args.size[0]}x{args.size[1]} on {report['device']} "
                        f"(median of {args.repeats})")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    for name, value in median.items():
        table.add_row(name, f"{value:.1f}")
    table.add_row("total", f"{total:.1f}")
    table.add_row("OpenCV SIFT detectAndCompute", f"{report['opencv_sift_ms']:.1f}")
    table.add_row("ratio total / OpenCV", f"{report['ratio_to_opencv']:.2f}")
    table.add_row("keypoints ours / OpenCV", f"{n_ours} / {len(keypoints)}")
    Console().print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0
