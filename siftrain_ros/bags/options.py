"""Command-line options that build a ``FeatureFrontEnd`` (bag processing, demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..frontend import BACKENDS, PRECISIONS, FeatureFrontEnd, FrontEndConfig, make_backend
from ..sift import SiftConfig


def add_frontend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--derain", choices=("on", "off"), default="on",
                        help="run DPRNet/GGIRNet before SIFT (off: plain SIFT)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="processing scale; keypoints stay in input pixels")
    parser.add_argument("--max-keypoints", type=int, default=0)
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="directory of <net>_lite.safetensors (default: shipped weights)")
    parser.add_argument("--engine-dir", type=Path, default=None)


def frontend_from_args(args: argparse.Namespace, log: object = print) -> FeatureFrontEnd:
    """Raises MissingWeightsError / ValueError with a one-line reason (the CLI prints it)."""
    config = FrontEndConfig(derain=args.derain == "on", scale=args.scale,
                            sift=SiftConfig(max_keypoints=args.max_keypoints))
    backend = None
    if config.derain:
        backend = make_backend(args.backend, precision=args.precision, device=args.device,
                               weights_dir=args.weights_dir, engine_dir=args.engine_dir,
                               log=log)  # type: ignore[arg-type]
    return FeatureFrontEnd(config, backend, device=args.device)
