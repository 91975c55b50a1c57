"""`siftrain extract IMAGE... --out DIR`: SIFT features of image files to ``.npz``, through the
rain-recovery networks unless ``--derain off``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..frontend import FeatureFrontEnd, FrontEndConfig
from ..frontend.factory import BACKENDS, EXTRA_BACKENDS, PRECISIONS, make_backend
from ..sift import SiftConfig, read_gray


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """``--backend --precision --scale --weights-dir --engine-dir``, shared with bench."""
    p.add_argument("--backend", choices=BACKENDS + EXTRA_BACKENDS, default="auto",
                   help="network runtime; auto tries tensorrt, tensorrt_rtx, onnxruntime, "
                        "torch (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp16 needs CUDA, int8 needs TensorRT (default fp32)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="process at S x the image size; keypoints stay in image pixels")
    p.add_argument("--weights-dir", type=Path, default=None, metavar="DIR",
                   help="network weights <net>_lite.safetensors (default: shipped weights)")
    p.add_argument("--engine-dir", type=Path, default=None, metavar="DIR",
                   help="cache of ONNX exports and TensorRT engines (default "
                        "$SIFTRAIN_ENGINE_DIR or ~/.cache/siftrain_ros/engines)")


def stderr_log(message: str) -> None:
    """Progress and backend choices go to stderr, results to stdout."""
    print(message, file=sys.stderr)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="detect and describe SIFT features of image files",
                       description="Writes DIR/<image stem>.npz with arrays xy, size, angle, "
                                   "response, octave, descriptors.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--max-keypoints", type=int, default=0, metavar="N",
                   help="keep the N strongest keypoints (0: all)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--derain", choices=("on", "off"), default="on",
                   help="run DPRNet/GGIRNet before SIFT (off: plain SIFT; default on)")
    add_backend_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = FrontEndConfig(derain=args.derain == "on", scale=args.scale,
                            sift=SiftConfig(max_keypoints=args.max_keypoints))
    backend = None
    if config.derain:
        backend = make_backend(args.backend, precision=args.precision, device=args.device,
                               weights_dir=args.weights_dir, engine_dir=args.engine_dir,
                               log=stderr_log)
    frontend = FeatureFrontEnd(config, backend, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        features = frontend(read_gray(path)).features
        target = args.out / f"{path.stem}.npz"
        features.save_npz(target)
        print(f"{path}: {len(features)} keypoints -> {target}")
    return 0
