"""Command-line options that build a ``FeatureFrontEnd``, shared by extract, bench and bag."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..sift import SiftConfig
from .factory import BACKENDS, EXTRA_BACKENDS, PRECISIONS, make_backend
from .frontend import (
    DEFAULT_CORRECTION_STRENGTH,
    DEFAULT_KEYPOINT_RAIN_GATE,
    DEFAULT_LOCAL_RAIN_GATE,
    DEFAULT_RAIN_GATE,
    FeatureFrontEnd,
    FrontEndConfig,
)


def stderr_log(message: str) -> None:
    """Progress and backend choices go to stderr, results to stdout."""
    print(message, file=sys.stderr)


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """``--backend --precision --scale --weights-dir --engine-dir``."""
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


def add_frontend_arguments(p: argparse.ArgumentParser) -> None:
    """Everything ``frontend_from_args`` reads: derain, device, max keypoints and the backend."""
    p.add_argument("--derain", choices=("on", "off"), default="on",
                   help="run DPRNet/GGIRNet before SIFT (off: plain SIFT; default on)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--max-keypoints", type=int, default=0, metavar="N",
                   help="keep the N strongest keypoints (0: all)")
    add_recovery_arguments(p, DEFAULT_RAIN_GATE, DEFAULT_LOCAL_RAIN_GATE,
                           DEFAULT_CORRECTION_STRENGTH, DEFAULT_KEYPOINT_RAIN_GATE)
    add_backend_arguments(p)


def add_recovery_arguments(p: argparse.ArgumentParser, default: float, local_default: float,
                           strength_default: float, keypoint_default: float = 0.0) -> None:
    """How the networks' output is used. ``--rain-gate GL``: frames the net changes by less
    than GL gray levels on average are treated as dry (plain SIFT); ``--local-rain-gate GL``:
    the same per pixel; ``--keypoint-rain-gate GL``: the same per keypoint;
    ``--correction-strength S``: the share of the nets' correction applied;
    ``--flip-ensemble``: average the nets over the frame and its mirror image."""
    p.add_argument("--rain-gate", type=float, default=default, metavar="GL",
                   help="treat a frame as dry (plain SIFT) when DPRNet changes it by less than "
                        f"GL gray levels on average; 0 never gates (default {default})")
    p.add_argument("--local-rain-gate", type=float, default=local_default, metavar="GL",
                   help="per pixel: keep the frame's detail where the nets' fine correction is "
                        f"weaker than GL gray levels; 0 uses their output as is (default "
                        f"{local_default})")
    add_keypoint_rain_gate_argument(p, keypoint_default)
    p.add_argument("--correction-strength", type=float, default=strength_default, metavar="S",
                   help="apply S (0..1) of the nets' correction: frame + S (output - frame); "
                        f"below 1 keeps some of the frame's own structure (default "
                        f"{strength_default:g})")
    add_flip_ensemble_argument(p)


def add_keypoint_rain_gate_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup,
                                    default: float) -> None:
    """``--keypoint-rain-gate GL``, for every command whose front end can run it."""
    p.add_argument("--keypoint-rain-gate", type=float, default=default, metavar="GL",
                   help="per keypoint: detect on the frame itself where DPRNet's local "
                        f"correction is below GL gray levels; 0 detects on its output only "
                        f"(default {default})")


def add_flip_ensemble_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--flip-ensemble``, for every command whose front end can run it (it changes the
    features, the rain level and the networks' time)."""
    p.add_argument("--flip-ensemble", action="store_true",
                   help="also run the nets on the mirrored frame and average (2x network time)")


def recovery_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`FrontEndConfig` fields :func:`add_recovery_arguments` sets, by name (also
    what the JSON reports record)."""
    return {"rain_gate": args.rain_gate, "local_rain_gate": args.local_rain_gate,
            "keypoint_rain_gate": args.keypoint_rain_gate,
            "correction_strength": args.correction_strength,
            "flip_ensemble": args.flip_ensemble}


def frontend_from_args(args: argparse.Namespace,
                       log: Callable[[str], None] = stderr_log) -> FeatureFrontEnd:
    """Build the front end the options describe.

    Raises:
        MissingWeightsError, ValueError: with a one-line reason (the CLI prints it).
    """
    config = FrontEndConfig(derain=args.derain == "on", scale=args.scale,
                            sift=SiftConfig(max_keypoints=args.max_keypoints),
                            **recovery_options(args))
    backend = None
    if config.derain:
        backend = make_backend(args.backend, precision=args.precision, device=args.device,
                               weights_dir=args.weights_dir, engine_dir=args.engine_dir, log=log)
    return FeatureFrontEnd(config, backend, device=args.device)
