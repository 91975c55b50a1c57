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

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from .. import samples
from ..device import resolve_device
from ..sift import (
    SiftConfig,
    build_scale_space,
    features_from_pyramids,
    gradient_pyramid,
    read_gray,
)
from ..sift.image import as_tensor, to_gray_float

# A timed pass: (milliseconds per stage, number of keypoints).
StagePass = Callable[[], tuple[dict[str, float], int]]


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
    from ..frontend import DEFAULT_KEYPOINT_RAIN_GATE
    from ..frontend.arguments import (
        add_backend_arguments,
        add_flip_ensemble_argument,
        add_keypoint_rain_gate_argument,
    )

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
    add_flip_ensemble_argument(pipeline)
    # The node's default, so the pipeline is timed as the node runs a frame it derains.
    add_keypoint_rain_gate_argument(pipeline, DEFAULT_KEYPOINT_RAIN_GATE)
    add_backend_arguments(pipeline)
    p.set_defaults(run=run)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_stages(gray: np.ndarray, config: SiftConfig, device: torch.device
                ) -> tuple[dict[str, float], int]:
    """One pass of the SIFT alone: scale space (with gradients), then detection, orientation
    and description as ``features_from_pyramids`` times them, in milliseconds."""
    with torch.inference_mode():
        image = as_tensor(to_gray_float(gray), device)
        _sync(device)
        start = time.perf_counter()
        space = build_scale_space(image, config)
        gradients = gradient_pyramid(space, config)
        _sync(device)
        ms = {"scale_space": (time.perf_counter() - start) * 1000.0}
        features = features_from_pyramids(space.dogs, gradients, config, ms)
    return ms, len(features)


def _repeat(one_pass: StagePass, gray: np.ndarray, warmup: int, repeats: int
            ) -> tuple[list[dict[str, float]], list[float], int, int]:
    """Alternate our pass and OpenCV's ``detectAndCompute`` on the same image, so both see the
    same machine load; returns our stage timings and OpenCV's milliseconds after warm-up."""
    opencv = cv2.SIFT_create()
    runs: list[dict[str, float]] = []
    opencv_ms: list[float] = []
    n_ours = n_opencv = 0
    for i in range(warmup + repeats):
        stages, n_ours = one_pass()
        start = time.perf_counter()
        keypoints, _ = opencv.detectAndCompute(gray, None)
        elapsed = (time.perf_counter() - start) * 1000.0
        n_opencv = len(keypoints)
        if i >= warmup:
            runs.append(stages)
            opencv_ms.append(elapsed)
    return runs, opencv_ms, n_ours, n_opencv


def _device_name(device: torch.device) -> str:
    return str(device) + (f" ({torch.cuda.get_device_name(device)})"
                          if device.type == "cuda" else "")


def _frame(args: argparse.Namespace) -> tuple[Path, np.ndarray]:
    path = args.image or samples.tum_frames()[0]
    return path, cv2.resize(read_gray(path), args.size, interpolation=cv2.INTER_AREA)


def _publish(title: str, rows: list[tuple[str, str]], report: dict[str, object],
             json_path: Path | None) -> None:
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("ms", justify="right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))


def run(args: argparse.Namespace) -> int:
    if args.target == "pipeline":
        return run_pipeline(args)
    return run_sift(args)


def run_sift(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    path, gray = _frame(args)
    config = SiftConfig()
    runs, opencv_ms, n_ours, n_opencv = _repeat(
        lambda: time_stages(gray, config, device), gray, args.warmup, args.repeats)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    total = statistics.median(sum(r.values()) for r in runs)
    cv_ms = statistics.median(opencv_ms)
    report = {
        **_machine(), "device": _device_name(device),
        "image": str(path), "size": list(args.size), "repeats": args.repeats,
        "stages_ms": median, "total_ms": total, "opencv_sift_ms": cv_ms,
        "ratio_to_opencv": total / cv_ms, "keypoints": {"ours": n_ours, "opencv": n_opencv},
    }
    rows = [(name, f"{value:.1f}") for name, value in median.items()]
    rows += [("total", f"{total:.1f}"), ("OpenCV SIFT detectAndCompute", f"{cv_ms:.1f}"),
             ("ratio total / OpenCV", f"{total / cv_ms:.2f}"),
             ("keypoints ours / OpenCV", f"{n_ours} / {n_opencv}")]
    _publish(f"SIFT at {args.size[0]}x{args.size[1]} on {report['device']} "
             f"(median of {args.repeats})", rows, report, args.json)
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


def run_pipeline(args: argparse.Namespace) -> int:
    """`siftrain bench pipeline`: the whole front end, exactly as the node runs it, against
    OpenCV SIFT in the same run."""
    from ..frontend import FeatureFrontEnd, FrontEndConfig
    from ..frontend.factory import make_backend

    device = resolve_device(args.device)
    if not 0.05 <= args.scale <= 4.0:
        raise ValueError(f"scale must be in [0.05, 4], got {args.scale}")
    path, gray = _frame(args)
    proc = (max(1, round(args.size[0] * args.scale)), max(1, round(args.size[1] * args.scale)))
    backend = None
    if args.derain == "on":
        backend = make_backend(args.backend, precision=args.precision, device=device,
                               weights_dir=args.weights_dir, engine_dir=args.engine_dir,
                               size_hw=(proc[1], proc[0]),
                               log=lambda m: print(m, file=sys.stderr))
    config = FrontEndConfig(derain=backend is not None, scale=args.scale, sift=SiftConfig(),
                            flip_ensemble=args.flip_ensemble,
                            keypoint_rain_gate=args.keypoint_rain_gate)
    frontend = FeatureFrontEnd(config, backend, device=device)

    def one_pass() -> tuple[dict[str, float], int]:
        result = frontend(gray)
        return result.timings_ms, len(result.features)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs, opencv_ms, n_ours, n_opencv = _repeat(one_pass, gray, args.warmup, args.repeats)
    memory: dict[str, float] = {
        # Whole process, imports and weights included: what the node would occupy.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        memory["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        # One extra untimed pass: tracemalloc sees numpy and Python allocations (not torch's
        # own CPU allocator), and slows the pass down, so it never overlaps the timing.
        tracemalloc.start()
        one_pass()
        memory["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    cv_ms = statistics.median(opencv_ms)
    report = {
        **_machine(), "device": _device_name(device),
        "backend": getattr(backend, "name", "none (derain off)"), "precision": args.precision,
        "image": str(path), "size": list(args.size), "scale": args.scale,
        "processing_size": list(proc), "flip_ensemble": args.flip_ensemble,
        "keypoint_rain_gate": args.keypoint_rain_gate,
        "repeats": args.repeats,
        "stages_ms": median, "total_ms": median["total"], "fps": 1000.0 / median["total"],
        "opencv_sift_ms": cv_ms, "ratio_to_opencv": median["total"] / cv_ms,
        "memory": memory, "keypoints": {"ours": n_ours, "opencv": n_opencv},
    }
    rows = [(name, f"{value:.1f}") for name, value in median.items()]
    rows += [("fps", f"{report['fps']:.1f}"), ("OpenCV SIFT detectAndCompute", f"{cv_ms:.1f}"),
             ("ratio total / OpenCV", f"{median['total'] / cv_ms:.2f}"),
             ("keypoints ours / OpenCV", f"{n_ours} / {n_opencv}")]
    rows += [(name, f"{value:.0f}") for name, value in memory.items()]
    options = (", flip ensemble" if args.flip_ensemble else "") + (
        f", keypoint rain gate {args.keypoint_rain_gate:g}" if args.keypoint_rain_gate else "")
    _publish(f"pipeline at {args.size[0]}x{args.size[1]} x {args.scale} on {report['device']}, "
             f"backend {report['backend']} {args.precision}{options} "
             f"(median of {args.repeats})",
             rows, report, args.json)
    return 0
