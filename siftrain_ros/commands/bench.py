"""`siftrain bench [sift|pipeline]`: per-stage timings against OpenCV's SIFT in the same run.

``sift`` (the default) times the SIFT stages on the frame; ``pipeline`` times the whole front
end as the node runs it: pre-processing, the two networks on a backend, both scale spaces,
detection and description, with fps and peak memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from .. import samples
from ..device import resolve_device
from ..frontend.backend import DerainBackend, DerainOutput
from ..sift import Features, SiftConfig, build_scale_space, gradient_pyramid, read_gray
from ..sift.descriptor import describe
from ..sift.detect import detect
from ..sift.image import as_tensor, to_gray_float
from ..sift.keypoints import ScaleSpaceKeypoints
from ..sift.orientation import assign_orientations
from ..sift.pipeline import keep_strongest, pack_features, remove_duplicates
from ..sift.scale_space import GradientPyramid, ScaleSpace


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
    from ..frontend.arguments import add_backend_arguments

    p = sub.add_parser("bench", help="time the SIFT stages (or the whole pipeline) and OpenCV "
                                     "SIFT on the same image",
                       description="bench [sift]: SIFT stages. bench pipeline: pre-processing, "
                                   "networks, scale space, detection, description, fps and "
                                   "peak memory.")
    p.add_argument("target", nargs="?", choices=("sift", "pipeline"), default="sift",
                   help="what to time (default sift)")
    p.add_argument("--size", type=parse_size, default=(640, 480), metavar="WxH")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--image", type=Path, default=None,
                   help="image to time (default: a bundled TUM frame), resized to --size")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    pipeline = p.add_argument_group("pipeline only")
    pipeline.add_argument("--derain", choices=("on", "off"), default="on")
    add_backend_arguments(pipeline)
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
    if args.target == "pipeline":
        return run_pipeline(args)
    return run_sift(args)


def run_sift(args: argparse.Namespace) -> int:
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


# --------------------------------------------------------------------------- bench pipeline


def _machine() -> dict[str, object]:
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__, "opencv": cv2.__version__,
        "command": "siftrain " + " ".join(sys.argv[1:]),
    }


def pipeline_stages(gray: np.ndarray, scale: float, backend: DerainBackend | None,
                    config: SiftConfig, device: torch.device) -> tuple[dict[str, float], int]:
    """One frame through the front end as :class:`FeatureFrontEnd` runs it, timed per stage.

    Args:
        gray: (H, W) uint8 frame.
        scale: processing scale.
        backend: the networks, or None for plain SIFT (derain off).

    Returns:
        (milliseconds per stage, ``total`` included; number of keypoints).
    """
    ms: dict[str, float] = {}
    start = time.perf_counter()
    with torch.inference_mode():
        def preprocess() -> torch.Tensor:
            frame = to_gray_float(gray)
            if scale != 1.0:
                size = (max(1, round(frame.shape[1] * scale)),
                        max(1, round(frame.shape[0] * scale)))
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1
                                   else cv2.INTER_LINEAR)
            return as_tensor(frame, device)

        image, ms["preprocess"] = _timed(preprocess, device)
        assert isinstance(image, torch.Tensor)
        detect_in = describe_in = image
        ms["networks"] = 0.0
        if backend is not None:
            out, ms["networks"] = _timed(lambda: backend(image / 255.0), device)
            assert isinstance(out, DerainOutput)
            detect_in = out.detect * 255.0
            describe_in = detect_in if out.describe is out.detect else out.describe * 255.0

        def scale_space() -> tuple[ScaleSpace, GradientPyramid]:
            space = build_scale_space(detect_in, config)
            other = space if describe_in is detect_in else build_scale_space(describe_in, config)
            return space, gradient_pyramid(other, config)

        spaces, ms["scale_space"] = _timed(scale_space, device)
        space, gradients = cast(tuple[ScaleSpace, GradientPyramid], spaces)
        keypoints, ms["detection"] = _timed(lambda: detect(space.dogs, config), device)

        def description() -> Features:
            oriented = keep_strongest(remove_duplicates(assign_orientations(
                cast(ScaleSpaceKeypoints, keypoints), gradients, config)), config.max_keypoints)
            return pack_features(oriented, describe(oriented, gradients, config), config)

        features, ms["description"] = _timed(description, device)
    ms["total"] = (time.perf_counter() - start) * 1000.0
    return ms, len(cast(Features, features))


def run_pipeline(args: argparse.Namespace) -> int:
    """`siftrain bench pipeline`: the whole front end vs OpenCV SIFT, in the same run."""
    from ..frontend.factory import make_backend

    device = resolve_device(args.device)
    if not 0.05 <= args.scale <= 4.0:
        raise ValueError(f"scale must be in [0.05, 4], got {args.scale}")
    path = args.image or samples.tum_frames()[0]
    gray = cv2.resize(read_gray(path), args.size, interpolation=cv2.INTER_AREA)
    proc = (max(1, round(args.size[0] * args.scale)), max(1, round(args.size[1] * args.scale)))
    backend = None
    if args.derain == "on":
        backend = make_backend(args.backend, precision=args.precision, device=device,
                               weights_dir=args.weights_dir, engine_dir=args.engine_dir,
                               size_hw=(proc[1], proc[0]),
                               log=lambda m: print(m, file=sys.stderr))
    config = SiftConfig()
    opencv = cv2.SIFT_create()
    runs: list[dict[str, float]] = []
    opencv_ms: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup + args.repeats):
        stages, n_ours = pipeline_stages(gray, args.scale, backend, config, device)
        start = time.perf_counter()
        keypoints, _ = opencv.detectAndCompute(gray, None)
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= args.warmup:
            runs.append(stages)
            opencv_ms.append(elapsed)
    memory: dict[str, float] = {
        # Whole process, imports and weights included: what the node would occupy.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        memory["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        # One extra untimed pass: tracemalloc sees numpy and Python allocations (not torch's
        # own CPU allocator), and slows the pass down, so it never overlaps the timing.
        tracemalloc.start()
        pipeline_stages(gray, args.scale, backend, config, device)
        memory["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    cv_ms = statistics.median(opencv_ms)
    report = {
        **_machine(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                 if device.type == "cuda" else ""),
        "backend": getattr(backend, "name", "none (derain off)"), "precision": args.precision,
        "image": str(path), "size": list(args.size), "scale": args.scale,
        "processing_size": list(proc), "repeats": args.repeats,
        "stages_ms": median, "total_ms": median["total"], "fps": 1000.0 / median["total"],
        "opencv_sift_ms": cv_ms, "ratio_to_opencv": median["total"] / cv_ms,
        "memory": memory, "keypoints": {"ours": n_ours, "opencv": len(keypoints)},
    }
    table = Table(title=f"pipeline at {args.size[0]}x{args.size[1]} x {args.scale} on "
                        f"{report['device']}, backend {report['backend']} {args.precision} "
                        f"(median of {args.repeats})")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    for name, value in median.items():
        table.add_row(name, f"{value:.1f}")
    table.add_row("fps", f"{report['fps']:.1f}")
    table.add_row("OpenCV SIFT detectAndCompute", f"{cv_ms:.1f}")
    table.add_row("ratio total / OpenCV", f"{report['ratio_to_opencv']:.2f}")
    table.add_row("keypoints ours / OpenCV", f"{n_ours} / {len(keypoints)}")
    for name, value in memory.items():
        table.add_row(name, f"{value:.0f}")
    Console().print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0
